// Scenario: a day of a clinic on one simulated node. SBM's real actors, wired as the node wires
// them (cli/node_command.cpp): the speaker shard with its speakers, its scheduled quality measurers
// and its outbox relay; the event bus with the verification scheduler as its durable subscriber;
// the reports actor with its saga; the pattern index (scheduled); the verification sessions. They
// keep their state in the in-memory stores, whose one server the seed makes fail: down, slow,
// refusing calls, losing answers after the commit. InstaNote's jobs, the corrections and the audit
// log are stand-ins (their families are exercised by other scenarios); the corrections name the
// reports QA filed for the speaker, so the marks reach real patterns.
//
// The day: quality samples for N speakers (bucket changes follow), QA filing error reports under
// Idempotency-Keys and re-sending them with the same key whenever the answer is lost, late or a
// refusal for now (and, after an acknowledgement, once with another body under the same key),
// verification sessions opened, marked and submitted. Then the faults stop and the day drains:
// every client finishes, every saga is done, every outbox row delivered. Invariants:
// - every acknowledged report exists exactly once under its key, with the id every answer gave;
//   a key reused with another body is refused;
// - every bucket change (a policy entry of a speaker's history that moved its bucket) has exactly
//   one outbox row, delivered to the bus (the listener saw its event id, with its content) and
//   exactly one schedule entry (the scheduler's rule: one per event id, any bucket; SPEC
//   "Verification scheduling"); every report has one keyed entry ("report:<id>") from its saga;
// - pattern weights stay in [0, 1] and equal what the applied sessions' verdicts give (store.hpp's
//   rule: one tenth per verdict, clamped, in the order the sessions were applied), in the reports
//   store, the patterns store and the index's view;
// - no queue a component reports (metrics_atom) is ever deeper than its bound (probed every
//   second); the bounds are small enough that the day meets them (clients are answered overloaded
//   and re-send);
// - the same seed gives the same trace.
#include <gtest/gtest.h>

#include <caf/actor_cast.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/send.hpp>
#include <caf/stateful_actor.hpp>

#include <algorithm>
#include <iostream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "actors/events/events.hpp"
#include "actors/patterns/patterns.hpp"
#include "actors/reports/reports.hpp"
#include "actors/speakers/speakers.hpp"
#include "actors/verification/sessions.hpp"
#include "actors/verification/verification.hpp"
#include "messages/errors.hpp"
#include "messages/metrics.hpp"
#include "runtime/domain/vocabulary.hpp"
#include "runtime/logging/logging.hpp"
#include "tests/sim/harness.hpp"
#include "tests/sim/memory_server.hpp"
#include "tests/sim/patterns_memory.hpp"
#include "tests/sim/reports_memory.hpp"
#include "tests/sim/speakers_memory.hpp"
#include "tests/sim/verification_memory.hpp"

namespace {

using namespace std::chrono_literals;
using namespace sbm;

constexpr int speaker_count = 24;
constexpr int sample_count = 90;
constexpr int filing_count = 30;
constexpr int session_count = 6;
constexpr auto day = 60s;            // traffic and faults
constexpr auto drain_limit = 10min;  // virtual time allowed to drain after the faults stop
constexpr auto request_deadline = 5s;
constexpr int max_attempts = 400;
constexpr std::uint32_t shard_max_queued = 48;
constexpr std::uint32_t reports_max_queued = 8;
constexpr sim::pacing calm_pace{0.05, std::chrono::milliseconds{10}};
const std::string fernet_key = "cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4=";
const std::string draft = "patient takes asprin and metforman daily";

bool planted_bug = false;  // the SecondEntryForOneEvent test: the schedule keeps an event twice

std::string speaker_name(int i) { return "spk-" + std::to_string(i); }

// What the clients were told and what reached the scenario's listeners. One thread (the test
// coordinator) touches it.
struct ledger {
  std::map<std::string, std::int64_t> filed;                       // key -> report id acknowledged
  std::map<std::string, std::vector<std::int64_t>> reports_of;     // speaker -> ids acknowledged
  std::set<std::string> samples_acked;                             // job ids
  std::map<std::int64_t, std::vector<pattern_verdict>> verdicts;   // session -> as marked and acknowledged
  std::set<std::int64_t> submitted;                                // sessions acknowledged submitted
  std::map<std::int64_t, bucket_changed> events;                   // event id -> as the bus told it
  std::map<std::string, std::pair<std::uint64_t, std::uint64_t>> deepest;  // queue -> (depth, bound)
  std::vector<std::string> violations;
  int clients = 0, done = 0;
  std::set<std::string> waiting;  // clients not finished, by what they do
  std::uint64_t attempts = 0, reuses_refused = 0, overloaded = 0;
  std::chrono::milliseconds latest_answer{0};  // past its request's deadline, at most
};

using led_ptr = std::shared_ptr<ledger>;
using again_atom = caf::atom_constant<caf::atom("simagain")>;
using probe_atom = caf::atom_constant<caf::atom("simprobe")>;

// A client's patience, drawn per attempt: often shorter than the deadline the server works to, so
// a re-send may race its first attempt still in progress (as an HTTP client that gives up first).
template <class State>
std::chrono::milliseconds patience(caf::stateful_actor<State>* self) {
  return std::chrono::milliseconds{std::uniform_int_distribution<int>{500, 8000}(self->state.rng)};
}

request_context context(caf::local_actor* self, const std::string& key, const std::string& digest) {
  request_context ctx;
  ctx.until = deadline::after(self->clock().now(), request_deadline);
  ctx.principal = "user:qa";
  ctx.idempotency_key = key;
  ctx.request_digest = digest;
  return ctx;
}

// --- the neighbours that are stand-ins ------------------------------------------------------------

caf::behavior jobs_fn(caf::event_based_actor*) {
  auto pulls = std::make_shared<int>(0);
  return {[pulls](pull_atom, job_pull_request& r) {
    job_pull p;
    p.source = "instanote";
    ++*pulls;
    for (int n = 1; n <= 2; ++n) {
      verification_job j;
      j.job_id = r.speaker_id + "-vjob-" + std::to_string(*pulls) + "-" + std::to_string(n);
      j.speaker_id = r.speaker_id;
      j.client_id = "c1";
      j.original_draft = draft;
      j.created_at_ms = r.from_ms + n;
      p.jobs.push_back(std::move(j));
    }
    return p;
  }};
}

// Corrects the draft's two misspellings from the reports QA filed for the speaker (the latest two
// acknowledged), as the correction workers would from the speaker's patterns.
caf::behavior corrections_fn(caf::event_based_actor*, led_ptr led) {
  return {[led](correct_atom, correction_request& c) {
    corrected_draft d;
    d.original_text = c.draft_text;
    d.corrected_text = "patient takes aspirin and metformin daily";
    const auto& ids = led->reports_of[c.speaker_id];
    if (!ids.empty()) d.corrections.push_back({14, 20, "asprin", "aspirin", ids.back(), 0.9, true, "exact"});
    if (ids.size() > 1)
      d.corrections.push_back({25, 34, "metforman", "metformin", ids[ids.size() - 2], 0.8, true, "exact"});
    d.applied = static_cast<std::uint32_t>(d.corrections.size());
    d.segments = 1;
    return d;
  }};
}

caf::behavior audit_fn(caf::event_based_actor*) {
  return {[](audit_atom, audit_record&) { return true; }};
}

// A listener on the bus, as the gateway's event feed is one: every event it is told.
caf::behavior listener_fn(caf::event_based_actor*, led_ptr led) {
  return {[led](publish_atom, bucket_changed& ev) {
    auto [it, fresh] = led->events.emplace(ev.event_id, ev);
    if (!fresh && (it->second.speaker_id != ev.speaker_id || it->second.new_bucket != ev.new_bucket))
      led->violations.push_back("event " + std::to_string(ev.event_id) + " told twice with other contents");
  }};
}

// --- clients: each retries what may be retried, under the same key --------------------------------

struct client_base {
  led_ptr led;
  std::mt19937_64 rng;
  int attempts = 0;
  std::string what;
};

template <class State>
void finish(caf::stateful_actor<State>* self) {
  ++self->state.led->done;
  self->state.led->waiting.erase(self->state.what);
  self->quit();
}

// A refusal for now, a lost or late answer: again after a pause the seed draws. Anything else is
// a violation unless `expected` (the caller's) takes it.
template <class State>
void on_error(caf::stateful_actor<State>* self, const caf::error& e) {
  auto& st = self->state;
  if (code_of(e) == errc::overloaded) ++st.led->overloaded;
  if (!sim::retryable(e)) {
    st.led->violations.push_back(st.what + " refused for good: " + self->system().render(e));
    return finish(self);
  }
  if (++st.attempts > max_attempts) {
    st.led->violations.push_back(st.what + " gave up after " + std::to_string(max_attempts) +
                                 " attempts, the last answered " + self->system().render(e));
    return finish(self);
  }
  self->delayed_send(self, std::chrono::milliseconds{std::uniform_int_distribution<int>{20, 1500}(st.rng)},
                     again_atom::value);
}

// How long after its deadline an answer came. Not a violation by itself: under the seeded
// scheduler virtual time may jump (pacing::max_jump) while an answer already sent waits in the
// client's mailbox. Work past its deadline is refused where it would be applied (the store server
// refuses such calls), which the refusals' count shows.
template <class State>
void check_deadline(caf::stateful_actor<State>* self, const request_context& ctx) {
  const auto past = -ctx.until.remaining(self->clock().now());
  auto& worst = self->state.led->latest_answer;
  worst = std::max(worst, std::chrono::duration_cast<std::chrono::milliseconds>(past));
}

struct sampler_state : client_base {
  static inline const char* name = "sim.sampler";
  quality_sample sample;
};

caf::behavior sampler_fn(caf::stateful_actor<sampler_state>* self, speaker_shard_actor shard, led_ptr led,
                         quality_sample s, std::uint64_t seed) {
  auto& st = self->state;
  st.led = led;
  st.rng.seed(seed);
  st.what = "sample " + s.job_id;
  led->waiting.insert(st.what);
  st.sample = std::move(s);
  auto attempt = [self, shard] {
    ++self->state.led->attempts;
    auto s = self->state.sample;
    s.ctx = context(self, "sample-" + s.job_id, "digest-" + s.job_id);
    self->request(shard, patience(self), sample_atom::value, s)
      .then(
        [self, ctx = s.ctx](speaker_view&) {
          check_deadline(self, ctx);
          self->state.led->samples_acked.insert(self->state.sample.job_id);
          finish(self);
        },
        [self](caf::error& e) { on_error(self, e); });
  };
  attempt();
  return {[attempt](again_atom) { attempt(); }};
}

struct filer_state : client_base {
  static inline const char* name = "sim.filer";
  report_submission sub;
  std::string key;
  bool reuse = false;        // once acknowledged, send another body under the key
  bool reusing = false;
};

caf::behavior filer_fn(caf::stateful_actor<filer_state>* self, reports_actor reports, led_ptr led,
                       report_submission sub, bool reuse, std::uint64_t seed) {
  auto& st = self->state;
  st.led = led;
  st.rng.seed(seed);
  st.key = "file-" + sub.job_id;
  st.what = "filing " + st.key;
  led->waiting.insert(st.what);
  st.sub = std::move(sub);
  st.reuse = reuse;
  auto attempt = [self, reports] {
    auto& st = self->state;
    ++st.led->attempts;
    auto sub = st.sub;
    if (st.reusing) sub.corrected_text += " (edited)";
    // The digest stands for the body, as the gateway's does.
    sub.ctx = context(self, st.key, sub.job_id + "|" + sub.corrected_text);
    self->request(reports, patience(self), file_atom::value, sub)
      .then(
        [self, ctx = sub.ctx](report_receipt& r) {
          auto& st = self->state;
          check_deadline(self, ctx);
          if (st.reusing) {
            st.led->violations.push_back(st.what + ": another body under the key was answered (report " +
                                         std::to_string(r.report.id) + ")");
            return finish(self);
          }
          if (r.outcome != report_receipt::accepted) {
            st.led->violations.push_back(st.what + " refused: " + r.reason);
            return finish(self);
          }
          auto [it, fresh] = st.led->filed.emplace(st.key, r.report.id);
          if (!fresh && it->second != r.report.id)
            st.led->violations.push_back(st.what + " answered report " + std::to_string(r.report.id) +
                                         " after report " + std::to_string(it->second));
          if (fresh) st.led->reports_of[st.sub.speaker_id].push_back(r.report.id);
          if (!st.reuse) return finish(self);
          st.reusing = true;
          st.attempts = 0;
          self->send(self, again_atom::value);
        },
        [self](caf::error& e) {
          auto& st = self->state;
          if (st.reusing && code_of(e) == errc::key_reused) {
            ++st.led->reuses_refused;
            return finish(self);
          }
          on_error(self, e);
        });
  };
  attempt();
  return {[attempt](again_atom) { attempt(); }};
}

// Opens a session for its speaker once QA filed a report for it, marks every correction (the
// verdicts drawn once), counts residual errors, submits. A session that expired under it (conflict)
// starts a new round under new keys.
struct qa_state : client_base {
  static inline const char* name = "sim.qa";
  std::string speaker;
  int round = 0;
  session_view view;  // as opened; id 0: none yet
  bool marked = false;
};

caf::behavior qa_fn(caf::stateful_actor<qa_state>* self, verification_sessions_actor sessions, led_ptr led,
                    std::string speaker, std::uint64_t seed) {
  auto& st = self->state;
  st.led = led;
  st.rng.seed(seed);
  st.speaker = std::move(speaker);
  st.what = "session of " + st.speaker;
  led->waiting.insert(st.what);
  auto expired = [self](const caf::error& e) {
    if (code_of(e) != errc::conflict) return false;
    auto& st = self->state;
    ++st.round;
    st.view = {};
    st.marked = false;
    st.attempts = 0;
    self->send(self, again_atom::value);
    return true;
  };
  auto step = [self, sessions, expired] {
    auto& st = self->state;
    ++st.led->attempts;
    const auto round = st.speaker + "." + std::to_string(st.round);
    if (st.view.id == 0) {
      session_start s;
      s.ctx = context(self, "open-" + round, "open-" + round);
      s.speaker_id = st.speaker;
      s.from_ms = 1;
      s.to_ms = 1000;
      s.max_jobs = 5;
      s.owner = "qa-" + st.speaker;
      self->request(sessions, patience(self), open_atom::value, s)
        .then(
          [self, ctx = s.ctx](session_view& v) {
            check_deadline(self, ctx);
            self->state.view = std::move(v);
            self->state.attempts = 0;
            self->send(self, again_atom::value);
          },
          [self](caf::error& e) { on_error(self, e); });
    } else if (!st.marked) {
      session_marks m;
      m.ctx = context(self, "marks-" + round, "marks-" + round);
      m.id = st.view.id;
      // Drawn from the session's id and round, so a re-send carries the same marks.
      std::mt19937_64 verdicts{static_cast<std::uint64_t>(st.view.id * 31 + st.round)};
      for (const auto& j : st.view.jobs) {
        for (auto c : j.correction_ids)
          m.marks.push_back({c, std::string{domain::verdicts[verdicts() % 2]}});
        m.residuals.push_back({j.job.job_id, static_cast<std::uint32_t>(verdicts() % 4)});
      }
      self->request(sessions, patience(self), marks_atom::value, m)
        .then(
          [self, expired, ctx = m.ctx](marks_receipt& r) {
            auto& st = self->state;
            check_deadline(self, ctx);
            if (r.outcome != marks_receipt::accepted) {
              st.led->violations.push_back(st.what + ": marks refused: " + r.reason);
              return finish(self);
            }
            // The verdicts the submit will apply: each mark's pattern, in the order committed.
            std::map<std::int64_t, std::int64_t> pattern_of;
            for (const auto& j : st.view.jobs)
              for (std::size_t i = 0; i < j.correction_ids.size(); ++i)
                pattern_of[j.correction_ids[i]] = j.draft.corrections[i].pattern_id;
            auto& out = st.led->verdicts[st.view.id];
            out.clear();
            for (const auto& mk : r.session.marks)
              if (auto it = pattern_of.find(mk.correction_id); it != pattern_of.end())
                out.push_back({it->second, mk.verdict});
            st.marked = true;
            st.attempts = 0;
            self->send(self, again_atom::value);
          },
          [self, expired](caf::error& e) {
            if (!expired(e)) on_error(self, e);
          });
    } else {
      session_submit s;
      s.ctx = context(self, "submit-" + round, "submit-" + round);
      s.id = st.view.id;
      s.actor = "qa-" + st.speaker;
      self->request(sessions, patience(self), submit_atom::value, s)
        .then(
          [self, ctx = s.ctx](session_view& v) {
            check_deadline(self, ctx);
            if (v.status != "submitted")
              self->state.led->violations.push_back(self->state.what + ": submit answered " + v.status);
            self->state.led->submitted.insert(v.id);
            finish(self);
          },
          [self, expired](caf::error& e) {
            if (!expired(e)) on_error(self, e);
          });
    }
  };
  self->send(self, again_atom::value);
  return {[step](again_atom) { step(); }};
}

// --- the store's faults, and the probe of every component's queues -----------------------------

using weather_atom = caf::atom_constant<caf::atom("simweathr")>;

// Every few seconds the seed picks the store's weather: fair, down, slow (past the callers'
// timeouts), lossy (refusals and answers lost after the commit), or every Nth call failing.
// Stops at `calm` (an exit could come after a change already due).
caf::behavior weather_fn(caf::event_based_actor* self, std::shared_ptr<sim::faults> f,
                         std::shared_ptr<const bool> calm, std::uint64_t seed) {
  auto rng = std::make_shared<std::mt19937_64>(seed ^ 0xc11c);
  auto change = [self, f, calm, rng] {
    if (*calm) return self->quit();
    sim::faults w;
    w.latency = 2ms;
    w.jitter = 40ms;
    switch ((*rng)() % 5) {
      case 0: break;
      case 1: w.down = true; break;
      case 2: w.jitter = 2500ms; break;
      case 3: w.fail_chance = 0.15; w.lose_chance = 0.15; break;
      case 4: w.fail_every = 4; w.lose_every = 5; break;
    }
    *f = w;
    self->delayed_send(self, std::chrono::milliseconds{std::uniform_int_distribution<int>{1000, 6000}(*rng)},
                       weather_atom::value);
  };
  change();
  return {[change](weather_atom) { change(); }};
}

struct probed {
  std::vector<caf::actor> components;
};

caf::behavior probe_fn(caf::event_based_actor* self, probed p, led_ptr led) {
  self->send(self, probe_atom::value);
  return {[self, p, led](probe_atom) {
    for (const auto& c : p.components)
      self->request(c, 2s, metrics_atom::value)
        .then(
          [led](component_metrics& m) {
            for (const auto& q : m.queues) {
              auto& d = led->deepest[q.name];
              d = {std::max(d.first, q.depth), q.bound};
              if (q.bound > 0 && q.depth > q.bound)
                led->violations.push_back("queue " + q.name + " at " + std::to_string(q.depth) + ", past its bound " +
                                          std::to_string(q.bound));
            }
          },
          [](caf::error&) {});
    self->delayed_send(self, 1s, probe_atom::value);
  }};
}

// --- one run ------------------------------------------------------------------------------------

struct run_result {
  std::vector<std::string> failures;
  std::vector<std::string> trace;
  std::uint64_t filed = 0, samples = 0, submitted = 0, changes = 0, answers_lost = 0, refused = 0, reuses = 0,
                overloaded = 0;
  std::chrono::milliseconds latest_answer{0};
};

run_result run_seed(std::uint64_t seed) {
  run_result out;
  sim::world w{seed};
  auto& sys = w.sys();
  auto& rng = w.rng();
  auto led = std::make_shared<ledger>();
  auto server = sim::spawn_memory_server(sys, seed);
  auto speakers_t = std::make_shared<sim::speaker_tables>();
  auto reports_t = std::make_shared<sim::reports_tables>();
  auto patterns_t = std::make_shared<sim::patterns_tables>();
  auto verification_t = std::make_shared<sim::verification_tables>();
  verification_t->skip_event_dedup = planted_bug;
  for (int i = 0; i < speaker_count; ++i) {
    auto& row = speakers_t->speakers[speaker_name(i)];
    row.view.speaker_id = speaker_name(i);
    row.view.client_id = "c1";
    row.view.bucket = "high_touch";
  }
  std::vector<caf::actor> owned{server.handle};
  auto own = [&](auto a) {
    owned.push_back(caf::actor_cast<caf::actor>(a));
    return a;
  };

  auto bus = own(events::spawn_event_bus(sys, 2s, 1));
  auto scheduler = own(verification::spawn_verification_scheduler(
    sys, postgres_actor{}, bus, 2s, sim::memory_verification_store(server.handle, verification_t)));
  auto listener = own(sys.spawn(listener_fn, led));
  caf::anon_send(bus, subscribe_atom::value, listener, false);

  speakers::speakers_settings sp;
  sp.db = own(sim::spawn_quiet_db(sys));  // required, unused: the store is in memory
  sp.store = sim::memory_speaker_store(server.handle, speakers_t);
  sp.bus = bus;
  sp.policy.window_size = 4;
  sp.policy.promotion_margin = 0.2;
  sp.idle_timeout = 20s;
  sp.relay_interval = 500ms;
  sp.db_timeout = 2s;
  sp.measurers = 1;
  sp.detached_measurers = false;
  sp.max_queued = shard_max_queued;
  sp.max_queued_per_speaker = 8;
  auto shard = own(speakers::spawn_speakers(sys, sp));

  patterns::pattern_index_settings pi;
  pi.make_store = sim::memory_patterns_store(server.handle, patterns_t);
  pi.dimension = 64;
  pi.snapshot_path.clear();
  pi.db_timeout = 2s;
  pi.build_threads = 1;
  pi.detached = false;
  auto index = own(patterns::spawn_pattern_index(sys, pi));

  reports::reports_settings rs;
  rs.store = sim::memory_reports_store(server.handle, reports_t);
  rs.speakers = shard;
  rs.patterns = index;
  rs.schedule = scheduler;
  rs.fernet_key = fernet_key;
  rs.db_timeout = 1s;  // shorter than a client's deadline: a filing may still commit after its timeout
  rs.lookup_timeout = 2s;
  rs.step_timeout = 3s;
  rs.relay_interval = 1s;
  rs.claim = 10s;
  rs.backoff = {0, 200ms, 5s, 0.2};
  rs.max_queued = reports_max_queued;
  auto reports = own(reports::spawn_reports(sys, rs));

  verification::sessions_settings vs;
  vs.make_store = sim::memory_verification_store(server.handle, verification_t);
  vs.jobs = caf::actor_cast<instanote_actor>(own(sys.spawn(jobs_fn)));
  vs.corrections = caf::actor_cast<correction_actor>(own(sys.spawn(corrections_fn, led)));
  vs.speakers = shard;
  vs.reports = reports;
  vs.audit = caf::actor_cast<audit_actor>(own(sys.spawn(audit_fn)));
  vs.idle_timeout = 40s;
  vs.sweep_interval = 10s;
  vs.max_active = 8;
  vs.db_timeout = 2s;
  vs.call_timeout = 5s;
  vs.content_key = fernet_key;
  auto sessions = own(verification::spawn_sessions(sys, vs));

  own(sys.spawn(probe_fn,
                probed{{caf::actor_cast<caf::actor>(shard), caf::actor_cast<caf::actor>(reports),
                        caf::actor_cast<caf::actor>(sessions), caf::actor_cast<caf::actor>(index)}},
                led));
  auto calm = std::make_shared<bool>(false);
  sys.spawn(weather_fn, server.faults_now, calm, seed);

  // The day's traffic, at virtual instants the seed picks.
  enum class act { sample, file, session };
  std::vector<std::pair<std::int64_t, act>> timeline;
  const auto at = [&](std::int64_t lo) { return std::uniform_int_distribution<std::int64_t>{lo, day.count() * 1000 - 5000}(rng); };
  for (int i = 0; i < sample_count; ++i) timeline.emplace_back(at(100), act::sample);
  for (int i = 0; i < filing_count; ++i) timeline.emplace_back(at(100), act::file);
  for (int i = 0; i < session_count; ++i) timeline.emplace_back(at(10000), act::session);
  std::stable_sort(timeline.begin(), timeline.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  const auto start = w.now();
  const auto any_speaker = [&] { return speaker_name(std::uniform_int_distribution<int>{0, speaker_count - 1}(rng)); };
  std::set<std::string> with_session;
  int next = 0;
  for (const auto& [when, what] : timeline) {
    w.run_until([&] { return w.now() >= start + std::chrono::milliseconds{when}; }, day);
    ++led->clients;
    const auto n = std::to_string(next++);
    switch (what) {
      case act::sample: {
        quality_sample s;
        s.speaker_id = any_speaker();
        s.job_id = "job-" + n;
        s.actor = "qa-sim";
        if (rng() % 4 == 0) {
          // Measured from texts on the shard's measurer.
          s.from_texts = true;
          s.delivered_text = draft;
          s.verified_text = rng() % 2 ? draft : "patient takes aspirin and metformin daily";
        } else {
          s.errors_per_100_words = std::uniform_int_distribution<int>{0, 120}(rng) / 10.0;
        }
        own(sys.spawn(sampler_fn, shard, led, s, rng()));
        break;
      }
      case act::file: {
        report_submission r;
        r.speaker_id = any_speaker();
        r.client_id = "c1";
        r.job_id = "rjob-" + n;
        r.original_text = rng() % 2 ? "asprin" : "metforman";
        r.corrected_text = r.original_text == "asprin" ? "aspirin" : "metformin";
        r.error_categories = {"drug_name"};
        r.audio_quality = "good";
        r.speaker_clarity = "clear";
        r.background_noise = "low";
        r.context_text = draft;
        r.additional_notes = "seen twice this week";
        r.actor = "user:qa";
        reports_t->draft_jobs[r.job_id] = r.speaker_id;
        own(sys.spawn(filer_fn, reports, led, r, rng() % 4 == 0, rng()));
        break;
      }
      case act::session: {
        // QA verifies a speaker it filed reports for, at most one session per speaker a day.
        std::vector<std::string> candidates;
        for (const auto& [spk, ids] : led->reports_of)
          if (!with_session.count(spk)) candidates.push_back(spk);
        if (candidates.empty()) {
          --led->clients;
          break;
        }
        const auto spk = candidates[std::uniform_int_distribution<std::size_t>{0, candidates.size() - 1}(rng)];
        with_session.insert(spk);
        own(sys.spawn(qa_fn, sessions, led, spk, rng()));
        break;
      }
    }
  }
  w.run_until([&] { return w.now() >= start + day; }, day);

  // The faults stop; the day drains.
  *calm = true;
  *server.faults_now = sim::faults{};
  w.pace(calm_pace);
  auto drained = [&] {
    if (led->done < led->clients) return false;
    for (const auto& [id, s] : reports_t->sagas)
      if (s.step != "done") return false;
    for (const auto& row : speakers_t->outbox)
      if (row.topic == bucket_changed_topic && !row.delivered) return false;
    for (const auto& [id, s] : verification_t->sessions)
      if (s.record.head.status == "submitted" && !s.record.head.effects_done) return false;
    return true;
  };
  const bool finished = w.run_until(drained, drain_limit);
  // What the last steps set off (a sample's bucket change, its event) settles.
  w.run_for(5s);
  w.run_until(drained, drain_limit);

  auto fail = [&](std::string what) { out.failures.push_back(std::move(what)); };
  if (!finished || !drained()) {
    std::size_t sagas = 0, rows = 0;
    for (const auto& [id, s] : reports_t->sagas) sagas += s.step != "done";
    for (const auto& row : speakers_t->outbox) rows += !row.delivered && row.topic == bucket_changed_topic;
    fail("not drained " + std::to_string(drain_limit.count()) + " min after the faults stopped: " +
         std::to_string(led->clients - led->done) + " client(s) waiting (" +
         (led->waiting.empty() ? std::string{} : *led->waiting.begin()) + "...), " + std::to_string(sagas) +
         " saga(s) not done, " + std::to_string(rows) + " event(s) not delivered");
  }
  for (const auto& v : led->violations) fail(v);

  // Reports: each acknowledged key holds exactly the one row every answer named.
  std::map<std::string, std::vector<std::int64_t>> rows_of_key;
  for (const auto& [id, row] : reports_t->reports)
    if (!row.idem_key.empty()) rows_of_key[row.idem_key].push_back(id);
  for (const auto& [key, id] : led->filed) {
    const auto& rows = rows_of_key[key];
    if (rows.size() != 1 || rows.front() != id)
      fail("acknowledged " + key + " (report " + std::to_string(id) + ") is stored as " + std::to_string(rows.size()) +
           " row(s)");
  }
  for (const auto& [key, rows] : rows_of_key)
    if (rows.size() > 1) fail("key " + key + " holds " + std::to_string(rows.size()) + " reports");

  // Bucket changes: one outbox row each, delivered, told on the bus, one schedule entry each.
  std::map<std::string, std::vector<std::string>> changes, rows_to;
  for (const auto& [id, entries] : speakers_t->history)
    for (const auto& h : entries)
      if (h.kind == "policy" && h.previous_bucket != h.new_bucket) changes[id].push_back(h.new_bucket);
  std::map<std::int64_t, int> entries_of_event;
  std::map<std::string, int> entries_of_key;
  for (const auto& e : verification_t->schedule) {
    if (e.row.source_event_id > 0) ++entries_of_event[e.row.source_event_id];
    if (!e.row.source_key.empty()) ++entries_of_key[e.row.source_key];
  }
  std::set<std::int64_t> event_rows;
  for (const auto& row : speakers_t->outbox) {
    if (row.topic != bucket_changed_topic) continue;
    ++out.changes;
    event_rows.insert(row.id);
    rows_to[row.speaker_id].push_back(row.new_bucket);
    const auto which = "bucket change " + std::to_string(row.id) + " of " + row.speaker_id;
    if (!row.delivered) fail(which + " never delivered to the bus");
    auto ev = led->events.find(row.id);
    if (ev == led->events.end())
      fail(which + " never told on the bus");
    else if (ev->second.speaker_id != row.speaker_id || ev->second.new_bucket != row.new_bucket)
      fail(which + " told as " + ev->second.speaker_id + " -> " + ev->second.new_bucket);
    if (entries_of_event[row.id] != 1)
      fail(which + " has " + std::to_string(entries_of_event[row.id]) + " schedule entries");
  }
  for (int i = 0; i < speaker_count; ++i) {
    const auto id = speaker_name(i);
    if (changes[id] != rows_to[id])
      fail(id + ": " + std::to_string(changes[id].size()) + " bucket change(s) in its history, " +
           std::to_string(rows_to[id].size()) + " event(s) in the outbox");
    const auto& view = speakers_t->speakers[id].view;
    if (!changes[id].empty() && view.bucket != changes[id].back())
      fail(id + " is " + view.bucket + " but its last change was to " + changes[id].back());
  }
  for (const auto& [event, n] : entries_of_event)
    if (!event_rows.count(event)) fail("schedule entry for event " + std::to_string(event) + ", which no change made");
  for (const auto& [id, row] : reports_t->reports) {
    const auto key = "report:" + std::to_string(id);
    if (entries_of_key[key] != 1) fail(key + " has " + std::to_string(entries_of_key[key]) + " schedule entries");
  }

  // Weights: what the applied sessions' verdicts give, everywhere the pattern is kept.
  std::map<std::int64_t, long> tenths;
  for (const auto& [id, row] : reports_t->reports) tenths[id] = 5;
  for (auto session : reports_t->sessions_in_order) {
    if (!led->verdicts.count(session)) {
      fail("session " + std::to_string(session) + " applied, but no client's marks were acknowledged for it");
      continue;
    }
    // store.hpp: each verdict moves its report one tenth, clamped to [0, 1], in the order given.
    for (const auto& v : led->verdicts[session])
      if (tenths.count(v.report_id))
        tenths[v.report_id] = std::clamp(tenths[v.report_id] + (v.verdict == domain::verdicts[0] ? 1L : -1L), 0L, 10L);
  }
  for (auto session : led->submitted)
    if (!reports_t->sessions.count(session)) fail("session " + std::to_string(session) + " acknowledged submitted, its verdicts never applied");
  auto index_view = std::make_shared<std::map<std::int64_t, double>>();
  auto asked = std::make_shared<int>(0);
  int asking = 0;
  for (const auto& [spk, ids] : led->reports_of) {
    ++asking;
    pattern_search q;
    q.query_text = draft;
    q.filter.speaker_id = spk;
    q.top_k = 1000;
    sys.spawn([index, q, index_view, asked](caf::event_based_actor* self) {
      self->request(index, 5s, search_atom::value, q)
        .then(
          [index_view, asked](pattern_hits& h) {
            for (const auto& hit : h.hits) (*index_view)[hit.pattern.pattern_id] = hit.pattern.weight;
            ++*asked;
          },
          [asked](caf::error&) { ++*asked; });
    });
  }
  w.run_until([&] { return *asked == asking; }, 30s);
  for (const auto& [id, row] : reports_t->reports) {
    const auto which = "report " + std::to_string(id);
    const double want = static_cast<double>(tenths[id]) / 10;
    const double have = row.stored.report.weight;
    if (have < 0 || have > 1) fail(which + " weighs " + std::to_string(have) + ", outside [0, 1]");
    if (std::abs(have - want) > 1e-9)
      fail(which + " weighs " + std::to_string(have) + ", its verdicts give " + std::to_string(want));
    auto p = patterns_t->rows.find(id);
    if (p == patterns_t->rows.end())
      fail(which + " is not in the patterns store");
    else if (std::abs(p->second.entry.weight - want) > 1e-9)
      fail(which + " weighs " + std::to_string(p->second.entry.weight) + " in the patterns store, its verdicts give " +
           std::to_string(want));
    auto x = index_view->find(id);
    if (x == index_view->end())
      fail(which + " is not in the index's view of its speaker");
    else if (std::abs(x->second - want) > 1e-9)
      fail(which + " weighs " + std::to_string(x->second) + " in the index, its verdicts give " + std::to_string(want));
  }

  out.filed = led->filed.size();
  out.samples = led->samples_acked.size();
  out.submitted = led->submitted.size();
  out.answers_lost = server.stats->lost;
  out.refused = server.stats->refused;
  out.reuses = led->reuses_refused;
  out.overloaded = led->overloaded;
  out.latest_answer = led->latest_answer;
  for (auto& a : owned) caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
  w.run_for(1s);
  out.trace = w.trace();
  return out;
}

std::string report(std::uint64_t seed, const run_result& r) {
  return sim::failure_report("sim_clinic_day", seed, r.failures, r.trace);
}

struct seed_set_result : sim::seed_set {
  std::uint64_t filed = 0, samples = 0, submitted = 0, changes = 0, answers_lost = 0, refused = 0, reuses = 0,
                overloaded = 0;
  std::chrono::milliseconds latest_answer{0};
};

seed_set_result run_seeds(sim::seed_range range, std::size_t stop_after, bool print) {
  seed_set_result out;
  static_cast<sim::seed_set&>(out) = sim::run_seed_set(
    range, stop_after, "sim_clinic_day",
    [&out](std::uint64_t seed) {
      auto r = run_seed(seed);
      out.filed += r.filed;
      out.samples += r.samples;
      out.submitted += r.submitted;
      out.changes += r.changes;
      out.answers_lost += r.answers_lost;
      out.refused += r.refused;
      out.reuses += r.reuses;
      out.overloaded += r.overloaded;
      out.latest_answer = std::max(out.latest_answer, r.latest_answer);
      return sim::seed_run{std::move(r.failures), std::move(r.trace)};
    },
    [print](const std::string& report) {
      if (print) ADD_FAILURE() << report;
    });
  return out;
}

TEST(ClinicDaySim, EveryAcknowledgedWriteOnceEveryChangeOneEventAndEntryWeightsAsMarked) {
  auto r = run_seeds(sim::seeds(200), 5, true);
  std::cout << r.runs << " seed(s): " << r.filed << " reports acknowledged, " << r.reuses
            << " reused keys refused, " << r.samples << " samples, " << r.changes << " bucket changes, " << r.submitted
            << " sessions submitted, " << r.refused << " store calls refused, " << r.answers_lost
            << " store answers lost, " << r.overloaded << " answered overloaded; the latest answer came "
            << r.latest_answer.count() << " ms past its deadline\n";
  // The day must reach what it tests: changes, sessions, reuses, lost answers.
  if (r.runs >= 50) {
    EXPECT_GT(r.filed, r.runs * filing_count / 2);
    EXPECT_GT(r.changes, r.runs);
    EXPECT_GT(r.submitted, r.runs / 2);
    EXPECT_GT(r.reuses, 0u);
    EXPECT_GT(r.answers_lost, 0u);
    EXPECT_GT(r.overloaded, 0u);
  }
}

// The planted bug: the schedule's store adds an entry for an event it has already (the relay
// delivers at least once: a stamp whose answer was lost sends the event again). Some seed of the
// ctest set must catch the second entry.
TEST(ClinicDaySim, SecondScheduleEntryForOneEventIsCaughtWithinTheSeedSet) {
  planted_bug = true;
  auto r = run_seeds(sim::seeds(200), 1, false);
  planted_bug = false;
  ASSERT_FALSE(r.failed.empty()) << "no seed of the set caught a second schedule entry for one event";
  std::cout << "the planted bug was caught: " << r.first_report;
}

// Seeds that found bugs, kept whatever the ctest seed range becomes.
// Seeds 164, 187: a start of a verification session re-sent under its key while the first attempt
// was still running: the first stored the key, the second's create then met it (conflict) and the
// client was answered 409 instead of the session; sessions.cpp's on_open now replays the key.
// (An earlier form of this scenario, seed 3, found the reports actor answering 500 "unreadable
// stored answer" when its key lookup timed out, and the pattern index failing as if a row were
// corrupt when a store call timed out: CAF's request_timeout reads as errc::internal through
// code_of; both now tell them apart through db::failure.)
TEST(ClinicDaySim, Regressions) {
  for (std::uint64_t seed : {164, 187}) {
    auto r = run_seed(seed);
    EXPECT_TRUE(r.failures.empty()) << report(seed, r);
  }
}

TEST(ClinicDaySim, TheSameSeedGivesTheSameTrace) {
  std::uint64_t filed = 0;
  EXPECT_EQ(sim::same_seed_same_trace([&](std::uint64_t seed) {
    auto r = run_seed(seed);
    filed += r.filed;
    return r.trace;
  }), "");
  EXPECT_GT(filed, 0u);
}

}  // namespace

int main(int argc, char** argv) {
  sbm::sim::parse_seed_flags(argc, argv);
  sbm::log::setup("error", sbm::log::format::text);
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}

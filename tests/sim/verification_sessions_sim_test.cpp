// Scenario: verification sessions under a flapping store. The verification family's real actors
// (the sessions supervisor and its session actors) keep their state in the in-memory store, whose
// server goes down and up, refuses calls, loses answers after applying the write, and answers
// late, all drawn from the seed; the families around them are stand-ins that keep a ledger of
// what reached them. QA clients start, mark and submit sessions, retrying with the same
// Idempotency-Key as a client of the API must. After the faults heal, the invariants:
// - every submit a client saw acknowledged is submitted in the store, answered as submitted, and
//   its effects (verdicts, quality samples, the audit record) were applied exactly once;
// - no session is open past its expiry, no schedule entry is held by a closed session, and every
//   client finished;
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

#include "actors/verification/sessions.hpp"
#include "messages/errors.hpp"
#include "tests/sim/harness.hpp"
#include "tests/sim/memory_server.hpp"
#include "tests/sim/verification_memory.hpp"

namespace {

using namespace std::chrono_literals;
using namespace sbm;

constexpr int clients = 3;
constexpr auto chaos = 90s;           // faults during this much virtual time, then healed
constexpr auto settle = 10min;        // virtual time allowed to finish after the heal
constexpr int max_attempts = 60;      // per step of a client: it gives up after that many
const std::string fernet_key = "cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4=";

// What reached the neighbours, and what the clients were told.
struct ledger {
  std::map<std::int64_t, int> verdicts_applied;                // session -> applications that changed weights
  std::map<std::int64_t, std::vector<pattern_verdict>> verdicts;  // session -> the verdicts applied
  std::map<std::string, int> samples;                          // job -> samples accepted
  std::map<std::string, int> audits;                           // source_key -> rows
  std::map<int, std::int64_t> submitted;                       // client -> session acknowledged submitted
  std::map<int, session_view> submit_answer;                   // client -> the view it was answered
  std::map<int, std::vector<session_mark>> marks_acked;        // client -> marks acknowledged last
  std::map<int, std::string> gave_up;                          // client -> why
  std::vector<std::string> violations;                         // seen while running
};

std::string job_of(const std::string& speaker, int n) { return speaker + "-job-" + std::to_string(n); }

// --- the neighbours (their families are not ported yet: stand-ins with the same contracts) -----

caf::behavior jobs_fn(caf::event_based_actor*) {
  return {[](pull_atom, job_pull_request& r) {
    job_pull p;
    p.source = "instanote";
    for (int n = 1; n <= 2; ++n) {
      verification_job j;
      j.job_id = job_of(r.speaker_id, n);
      j.speaker_id = r.speaker_id;
      j.client_id = "c1";
      j.original_draft = "patient takes asprin and metforman daily";
      j.created_at_ms = r.from_ms + n;
      p.jobs.push_back(std::move(j));
    }
    return p;
  }};
}

caf::behavior corrections_fn(caf::event_based_actor*) {
  return {[](correct_atom, correction_request& c) {
    corrected_draft d;
    d.original_text = c.draft_text;
    d.corrected_text = "patient takes aspirin and metformin daily";
    d.corrections = {{14, 21, "asprin", "aspirin", 101, 0.9, true, "exact"},
                     {26, 35, "metforman", "metformin", 102, 0.8, true, "exact"}};
    d.applied = 2;
    d.segments = 1;
    return d;
  }};
}

caf::behavior speakers_fn(caf::event_based_actor*, std::shared_ptr<ledger> led) {
  auto view = [](const std::string& id) {
    speaker_view v;
    v.speaker_id = id;
    v.client_id = "c1";
    v.bucket = "low_touch";
    return v;
  };
  return {
    [view](get_atom, const std::string& id) { return view(id); },
    // A job counts once per speaker, as the speaker actor keeps it.
    [view, led](sample_atom, quality_sample& s) -> caf::result<speaker_view> {
      if (s.actor.empty()) led->violations.push_back("a quality sample without an actor for " + s.job_id);
      if (led->samples[s.job_id]++ > 0) {
        --led->samples[s.job_id];
        return make_error(errc::duplicate, "job counted already");
      }
      return view(s.speaker_id);
    },
  };
}

caf::behavior reports_fn(caf::event_based_actor*, std::shared_ptr<ledger> led) {
  return {[led](verify_atom, verification_verdicts& v) {
    // Idempotent on the session, as the reports actor is: a repeat changes no weight.
    if (!led->verdicts.count(v.session_id)) {
      led->verdicts[v.session_id] = v.verdicts;
      ++led->verdicts_applied[v.session_id];
    } else if (led->verdicts[v.session_id].size() != v.verdicts.size()) {
      led->violations.push_back("session " + std::to_string(v.session_id) + " applied with other verdicts");
    }
    if (v.actor.empty()) led->violations.push_back("verdicts without an actor");
    verdicts_applied out;
    for (const auto& x : v.verdicts) out.weights.push_back({x.report_id, "verified", 0.5});
    return out;
  }};
}

caf::behavior audit_fn(caf::event_based_actor*, std::shared_ptr<ledger> led) {
  return {[led](audit_atom, audit_record& r) {
    if (r.actor.empty()) led->violations.push_back("an audit record without an actor: " + r.target);
    led->audits[r.source_key] = 1;  // one row per key, as the audit log keeps it
    return true;
  }};
}

// --- a QA client: start, mark, submit, retrying what may be retried with the same key ----------

struct client_state {
  static inline const char* name = "sim.qa_client";
  int n = 0;
  int round = 0;       // a new round after its session expired under it
  int attempts = 0;
  std::int64_t session = 0;
  std::vector<session_mark> marks;
};

using step_atom = caf::atom_constant<caf::atom("simstep")>;

request_context context(caf::event_based_actor* self, const std::string& key) {
  request_context ctx;
  ctx.until = deadline::after(self->clock().now(), 30s);
  ctx.principal = "user:qa";
  ctx.idempotency_key = key;
  ctx.request_digest = key;
  return ctx;
}

caf::behavior client_fn(caf::stateful_actor<client_state>* self, int n, verification_sessions_actor sessions,
                        std::shared_ptr<ledger> led) {
  self->state.n = n;
  const std::string speaker = "spk-" + std::to_string(n);
  auto again = [self, led](const caf::error& e, const char* what) {
    if (++self->state.attempts > max_attempts) {
      led->gave_up[self->state.n] = std::string(what) + ": " + to_string(code_of(e));
      self->quit();
      return;
    }
    self->delayed_send(self, 1s, step_atom::value);
  };
  auto expired = [self](const caf::error& e) {
    // Only a closed session answers conflict here: start over with a new session.
    if (code_of(e) != errc::conflict) return false;
    ++self->state.round;
    self->state.session = 0;
    self->state.marks.clear();
    self->state.attempts = 0;
    self->send(self, step_atom::value);
    return true;
  };
  self->send(self, step_atom::value);
  return {[=](step_atom) {
    auto& st = self->state;
    const auto round = std::to_string(st.n) + "." + std::to_string(st.round);
    if (st.session == 0) {
      session_start s;
      s.ctx = context(self, "open-" + round);
      s.speaker_id = speaker;
      s.from_ms = 1;
      s.to_ms = 1000;
      s.max_jobs = 5;
      s.owner = "qa-" + std::to_string(st.n);
      self->request(sessions, 30s, open_atom::value, std::move(s))
        .then(
          [=](session_view& v) {
            self->state.session = v.id;
            self->state.attempts = 0;
            self->send(self, step_atom::value);
          },
          [=](caf::error& e) {
            if (sim::retryable(e)) return again(e, "open");
            led->gave_up[self->state.n] = "open refused: " + std::string(to_string(code_of(e)));
            self->quit();
          });
    } else if (st.marks.empty()) {
      session_marks m;
      m.ctx = context(self, "marks-" + round);
      m.id = st.session;
      // Corrections are numbered 1..4 in the session (two jobs, two corrections each).
      for (std::int64_t c = 1; c <= 4; ++c) m.marks.push_back({c, (c + st.n) % 3 ? "rectified" : "not_rectified"});
      m.residuals = {{job_of(speaker, 1), 1}, {job_of(speaker, 2), 0}};
      self->request(sessions, 30s, marks_atom::value, std::move(m))
        .then(
          [=](marks_receipt& r) {
            if (r.outcome != marks_receipt::accepted) {
              led->violations.push_back("marks refused: " + r.reason);
              return self->quit();
            }
            self->state.marks = r.session.marks;
            led->marks_acked[self->state.n] = r.session.marks;
            self->state.attempts = 0;
            self->send(self, step_atom::value);
          },
          [=](caf::error& e) {
            if (expired(e)) return;
            if (sim::retryable(e)) return again(e, "marks");
            led->gave_up[self->state.n] = "marks refused: " + std::string(to_string(code_of(e)));
            self->quit();
          });
    } else {
      session_submit s;
      s.ctx = context(self, "submit-" + round);
      s.id = st.session;
      s.actor = "qa-" + std::to_string(st.n);
      self->request(sessions, 30s, submit_atom::value, std::move(s))
        .then(
          [=](session_view& v) {
            led->submitted[self->state.n] = v.id;
            led->submit_answer[self->state.n] = v;
            self->quit();
          },
          [=](caf::error& e) {
            if (expired(e)) return;
            if (sim::retryable(e)) return again(e, "submit");
            led->gave_up[self->state.n] = "submit refused: " + std::string(to_string(code_of(e)));
            self->quit();
          });
    }
  }};
}

// --- faults: the store flaps while the chaos lasts -----------------------------------------------

using flap_atom = caf::atom_constant<caf::atom("simflap")>;

caf::behavior flapper_fn(caf::event_based_actor* self, std::shared_ptr<sim::faults> f, std::uint64_t seed) {
  auto rng = std::make_shared<std::mt19937_64>(seed ^ 0x5eed);
  auto next = [self, rng] {
    self->delayed_send(self, std::chrono::milliseconds{std::uniform_int_distribution<int>{500, 8000}(*rng)},
                       flap_atom::value);
  };
  next();
  return {[f, next](flap_atom) {
    f->down = !f->down;
    next();
  }};
}

// --- one run ----------------------------------------------------------------------------------

struct run_result {
  std::vector<std::string> failures;
  std::vector<std::string> trace;
};

run_result run_seed(std::uint64_t seed) {
  run_result out;
  sim::world w{seed};
  auto& sys = w.sys();
  auto led = std::make_shared<ledger>();
  auto server = sim::spawn_memory_server(sys, seed);
  auto tables = std::make_shared<sim::verification_tables>();
  std::vector<caf::actor> owned{server.handle};
  auto own = [&](caf::actor a) {
    owned.push_back(a);
    return a;
  };
  verification::sessions_settings s;
  s.make_store = sim::memory_verification_store(server.handle, tables);
  s.jobs = caf::actor_cast<instanote_actor>(own(sys.spawn(jobs_fn)));
  s.corrections = caf::actor_cast<correction_actor>(own(sys.spawn(corrections_fn)));
  s.speakers = caf::actor_cast<speaker_shard_actor>(own(sys.spawn(speakers_fn, led)));
  s.reports = caf::actor_cast<reports_actor>(own(sys.spawn(reports_fn, led)));
  s.audit = caf::actor_cast<audit_actor>(own(sys.spawn(audit_fn, led)));
  s.idle_timeout = 40s;
  s.sweep_interval = 10s;
  s.max_active = 8;
  s.content_key = fernet_key;
  auto sessions = verification::spawn_sessions(sys, s);
  owned.push_back(caf::actor_cast<caf::actor>(sessions));

  auto& f = *server.faults_now;
  f.latency = 2ms;
  f.jitter = 300ms;
  f.fail_chance = 0.05;
  f.lose_chance = 0.05;
  auto flapper = sys.spawn(flapper_fn, server.faults_now, seed);
  owned.push_back(flapper);
  std::vector<caf::actor> qa;
  for (int n = 1; n <= clients; ++n) qa.push_back(sys.spawn(client_fn, n, sessions, led));

  w.run_for(chaos);
  caf::anon_send_exit(flapper, caf::exit_reason::user_shutdown);
  f = sim::faults{};
  const bool finished = w.run_until(
    [&] { return static_cast<int>(led->submitted.size() + led->gave_up.size()) == clients; }, settle);
  // Effects interrupted by the chaos finish on the session's retry or the sweep.
  w.run_for(2min);

  auto fail = [&](std::string what) { out.failures.push_back(std::move(what)); };
  if (!finished) fail("not every client finished within " + std::to_string(settle.count()) + " min after the heal");
  for (const auto& [n, why] : led->gave_up) fail("client " + std::to_string(n) + " gave up: " + why);
  for (const auto& v : led->violations) fail(v);
  const auto now = sim::ms_of(w.now());
  for (const auto& [n, id] : led->submitted) {
    const auto who = "client " + std::to_string(n) + " (session " + std::to_string(id) + "): ";
    auto it = tables->sessions.find(id);
    if (it == tables->sessions.end()) {
      fail(who + "acknowledged submit of a session the store does not hold");
      continue;
    }
    const auto& h = it->second.record.head;
    if (h.status != "submitted") fail(who + "acknowledged submit but the store says " + h.status);
    if (!h.effects_done) fail(who + "the submit's effects never finished");
    const auto& answer = led->submit_answer[n];
    if (answer.status != "submitted") fail(who + "the submit was answered with status " + answer.status);
    if (answer.submitted_by.empty()) fail(who + "the submit was answered without submitted_by");
    if (led->verdicts_applied[id] != 1)
      fail(who + "verdicts applied " + std::to_string(led->verdicts_applied[id]) + " times");
    if (led->audits["verification.submit:" + std::to_string(id)] != 1) fail(who + "no audit record");
    const auto speaker = "spk-" + std::to_string(n);
    if (led->samples[job_of(speaker, 1)] != 1) fail(who + "job 1 sampled " + std::to_string(led->samples[job_of(speaker, 1)]) + " times");
  }
  for (const auto& [id, row] : tables->sessions) {
    const auto& h = row.record.head;
    if (h.status == "open" && h.expires_at_ms <= now)
      fail("session " + std::to_string(id) + " is open past its expiry");
    if (h.status == "submitted" && !h.effects_done) fail("session " + std::to_string(id) + " submitted, effects not done");
  }
  for (const auto& e : tables->schedule)
    if (e.row.status == "taken") {
      auto it = tables->sessions.find(e.session_id);
      if (it == tables->sessions.end() || it->second.record.head.status != "open")
        fail("schedule entry " + std::to_string(e.row.id) + " held by a closed session");
    }

  for (auto& a : qa) caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
  for (auto& a : owned) caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
  out.trace = w.trace();
  return out;
}

std::string report(std::uint64_t seed, const run_result& r) {
  return sim::failure_report("sim_verification_sessions", seed, r.failures, r.trace);
}

TEST(VerificationSessionsSim, FlappingStoreKeepsEveryAcknowledgedSubmitExactlyOnce) {
  const auto range = sim::seeds(200);
  std::size_t failed = 0;
  for (auto seed = range.first; seed < range.first + range.count; ++seed) {
    auto r = run_seed(seed);
    if (sim::trace_wanted()) std::cout << "seed " << seed << " trace:\n" << sim::tail(r.trace, r.trace.size());
    if (!r.failures.empty()) {
      ++failed;
      ADD_FAILURE() << report(seed, r);
      if (failed >= 5) break;  // enough to go on; each prints how to re-run it alone
    }
  }
}

// Seeds that found bugs, kept whatever the ctest seed range becomes.
// Seed 1: a submit whose commit answer was lost (outcome unknown), retried under its key, was
// answered "open" without submitted_by, and its effects ran with an empty actor (verdicts,
// quality samples and the audit record): the replay path took the session actor's stale view
// instead of the submit the store holds.
TEST(VerificationSessionsSim, Regressions) {
  for (std::uint64_t seed : {1}) {
    auto r = run_seed(seed);
    EXPECT_TRUE(r.failures.empty()) << report(seed, r);
  }
}

TEST(VerificationSessionsSim, TheSameSeedGivesTheSameTrace) {
  EXPECT_EQ(sim::same_seed_same_trace([](std::uint64_t seed) { return run_seed(seed).trace; }), "");
}

}  // namespace

int main(int argc, char** argv) {
  sbm::sim::parse_seed_flags(argc, argv);
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}

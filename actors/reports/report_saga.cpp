#include "actors/reports/report_saga.hpp"

#include <caf/actor_system.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <deque>
#include <exception>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "actors/reports/store.hpp"
#include "messages/errors.hpp"
#include "runtime/logging/logging.hpp"

namespace sbm::reports {

namespace {

using time_point = caf::actor_clock::time_point;

// last_error and log notes quote other actors' errors; they are for people, so a bounded excerpt.
constexpr std::size_t max_error_bytes = 500;
// Group commit of acknowledgements (see send_next_acks).
constexpr std::size_t max_ack_batch = 128;
constexpr int max_acks_in_flight = 2;
// Group commit of the index and schedule steps (see send_next_batch), within their targets' caps.
constexpr std::size_t max_step_batch = 128;
constexpr int max_step_batches_in_flight = 2;
// The saga's full share: every kind of statement at its own cap.
constexpr std::uint32_t full_share = max_acks_in_flight + 2 * max_step_batches_in_flight;
constexpr const char* no_subscriber_note =
  "no pattern-learning subscriber on this node; the pattern is searchable, nothing else to tell";

struct running_saga {
  saga_step step = saga_step::index;
  std::int64_t revision = 0;
  std::int32_t attempts = 0;
  pattern_record pattern;
  bool nudged = false;  // asked to run again while running: reload once this run ends
  time_point since{};   // when this node took it up: the saga's lag is measured from here
};

// A saga nudged while max_running were running. One filed on this node keeps what its first step
// needs, so it starts without reading its row back when a slot frees (under a burst of filings
// most sagas wait here, and a read per saga was a commit per saga).
struct waiting_saga {
  std::int64_t id = 0;
  std::optional<pattern_record> filed;
};

// Sagas at a step whose target takes many requests in one message, waiting for a batch. A saga is
// queued at most once and only while it runs, so reports.max-running-sagas bounds each queue too.
struct step_queue {
  std::deque<std::int64_t> ids;
  int in_flight = 0;
};

// An acknowledged step waiting to be recorded.
struct pending_ack {
  std::int64_t id = 0;
  std::int64_t revision = 0;
  std::string step;
  saga_step next = saga_step::done;
  std::vector<std::pair<std::string, std::string>> log;  // (step, note) lines, in order
};

struct saga_state {
  static inline const char* name = "sbm.report_saga";

  reports_settings settings;
  std::string claim;  // this runner's name in the rows it holds
  std::unordered_map<std::int64_t, running_saga> running;
  std::deque<waiting_saga> waiting;  // nudged while max_running sagas were already running
  std::deque<pending_ack> acks;  // acknowledged steps waiting for a statement
  int acks_in_flight = 0;
  step_queue indexes;    // at the index step (index_step)
  step_queue schedules;  // at the schedule step (schedule_step)
  time_point next_tick{};
  time_point last_filed{};  // the last filing handed over: filings arrive while it is recent
  bool recheck_armed = false;  // a recheck_atom is on its way for when filings may have stopped
  // While a batch's answers are being handled, the sagas they move on queue without sending: the
  // next statements go after, each with every saga that reached its step meanwhile.
  int holding = 0;
  bool claiming = false;
  bool backlog = false;  // the last claim filled every free slot: claim again when one frees
  int claim_failures = 0;
  time_point claim_resume_at{};
  time_point last_purge{};
  std::minstd_rand jitter;
  std::shared_ptr<spdlog::logger> log;
  std::unique_ptr<store> db;  // the family's port (store.hpp)
};

using self_ptr = report_saga_actor::stateful_pointer<saga_state>;

std::string excerpt(std::string text) {
  if (text.size() > max_error_bytes) {
    text.resize(max_error_bytes);
    // Never cut inside a UTF-8 sequence: PostgreSQL refuses invalid UTF-8.
    while (!text.empty() && (static_cast<unsigned char>(text.back()) & 0xC0) == 0x80) text.pop_back();
    if (!text.empty() && (static_cast<unsigned char>(text.back()) & 0x80) != 0) text.pop_back();
    text += "...";
  }
  return text;
}

void run(self_ptr self, std::int64_t id);
void load(self_ptr self, std::int64_t id);
void start_filed(self_ptr self, pattern_record pattern);

void finish(self_ptr self, std::int64_t id) {
  auto& st = self->state;
  auto it = st.running.find(id);
  if (it == st.running.end()) return;
  const bool again = it->second.nudged;
  st.running.erase(it);
  if (again) {
    run(self, id);
    return;
  }
  if (!st.waiting.empty()) {
    auto next = std::move(st.waiting.front());
    st.waiting.pop_front();
    if (next.filed && st.running.count(next.id) == 0)
      start_filed(self, std::move(*next.filed));
    else
      run(self, next.id);
  } else if (st.backlog) {
    st.backlog = false;
    self->send(self, flush_atom::value);
  }
}

// The step failed: the row remembers it and when to try again; the timer picks it up from there.
void failed(self_ptr self, std::int64_t id, const std::string& why) {
  auto& st = self->state;
  auto it = st.running.find(id);
  if (it == st.running.end()) return;
  auto& r = it->second;
  const auto delay = resilience::backoff_delay(st.settings.backoff, r.attempts,
                                               static_cast<std::uint64_t>(st.jitter()));
  const std::string step{to_string(r.step)};
  st.log->warn("report saga: report {} step {} failed (attempt {}): {}; retrying in {} ms", id, step,
               r.attempts + 1, why, delay.count());
  step_failure f{id, r.revision, step, excerpt(why), delay, caf::none};
  // The first failure of a step goes into the log; the row keeps the count and the latest error,
  // so a long outage does not grow the log by one line per attempt.
  if (r.attempts == 0) f.log_note = excerpt(step + " failed: " + why + "; retrying with backoff");
  // A lost failure record only means the step is tried again sooner.
  st.db->record_failure(f, st.claim, [self, id](caf::expected<bool> done) {
    // Not recorded: the claim lapses and the step is tried again then.
    if (!done)
      self->state.log->warn("report saga: report {}: cannot record the failure: {}", id,
                            self->system().render(done.error()));
    finish(self, id);
  });
}

void proceed(self_ptr self, std::int64_t id);

void after_recorded(self_ptr self, const pending_ack& ack, bool moved) {
  auto it = self->state.running.find(ack.id);
  if (it == self->state.running.end()) return;
  if (!moved) {
    load(self, ack.id);  // rewound or moved elsewhere: start from what the row says now
    return;
  }
  if (ack.next == saga_step::done) {
    finish(self, ack.id);
    return;
  }
  it->second.step = ack.next;
  it->second.attempts = 0;
  proceed(self, ack.id);
}

void pump(self_ptr self);

void send_acks(self_ptr self, std::vector<pending_ack> batch) {
  auto& st = self->state;
  std::vector<step_ack> acks;
  for (const auto& a : batch) acks.push_back({a.id, a.revision, a.step, std::string{to_string(a.next)}, a.log});
  ++st.acks_in_flight;
  auto shared = std::make_shared<std::vector<pending_ack>>(std::move(batch));
  // An acknowledgement lost in a crash re-runs its (idempotent) step.
  st.db->record_steps(acks, st.settings.claim, st.claim, [self, shared](caf::expected<std::vector<std::int64_t>> r) {
    --self->state.acks_in_flight;
    ++self->state.holding;
    if (!r) {
      // Done but not recorded: the steps run again once their claims lapse, which is harmless.
      self->state.log->warn("report saga: cannot record {} finished steps: {}", shared->size(),
                            self->system().render(r.error()));
      for (const auto& a : *shared) finish(self, a.id);
    } else {
      std::unordered_set<std::int64_t> moved(r->begin(), r->end());
      for (const auto& a : *shared) after_recorded(self, a, moved.count(a.id) > 0);
    }
    --self->state.holding;
    pump(self);
  });
}

// Group commit for acknowledgements: while statements are running, new ones wait and go in the
// next statement together, so under load many sagas share a commit; a lone one goes at once.
void send_next_acks(self_ptr self) {
  auto& st = self->state;
  std::vector<pending_ack> batch;
  while (!st.acks.empty() && batch.size() < max_ack_batch) {
    batch.push_back(std::move(st.acks.front()));
    st.acks.pop_front();
  }
  send_acks(self, std::move(batch));
}

// The step's target acknowledged: record it, then go on with the next step.
void acked(self_ptr self, std::int64_t id, std::string note) {
  auto& st = self->state;
  auto it = st.running.find(id);
  if (it == st.running.end()) return;
  auto& r = it->second;
  pending_ack ack;
  ack.id = id;
  ack.revision = r.revision;
  ack.step = std::string{to_string(r.step)};
  ack.next = next_step(r.step);
  if (r.attempts > 0) note += " (after " + std::to_string(r.attempts) + " failed attempts)";
  ack.log.emplace_back(ack.step, excerpt(std::move(note)));
  // With nobody to notify, the notify step has nothing to wait for: it is recorded with this one,
  // which saves a commit per report.
  if (ack.next == saga_step::notify && !st.settings.learning) {
    ack.log.emplace_back(std::string{to_string(saga_step::notify)}, no_subscriber_note);
    ack.next = next_step(ack.next);
  }
  st.acks.push_back(std::move(ack));
  pump(self);
}

verification_request schedule_request(std::int64_t id, const pattern_record& p) {
  std::string categories;
  for (const auto& c : p.error_categories) categories += (categories.empty() ? "" : ", ") + c;
  return {p.speaker_id, std::string{verification_priority(p.bucket_type)},
          "error report " + std::to_string(id) + " (" + categories + ")", "report:" + std::to_string(id),
          p.client_id};
}

// The steps sent in batches: what a saga sends its target, how the requests form one message and
// what its log says when the step is done. A batch is answered as a whole (true: every request is
// committed), so each saga of the batch is acknowledged, or fails, with it.
struct index_step {
  using request = pattern_record;
  using batch = pattern_record_batch;
  static constexpr std::size_t max_batch = std::min(max_step_batch, max_pattern_batch);
  static constexpr const char* missing = "no pattern index on this node";
  static constexpr const char* refused = "the pattern index did not store the pattern";
  static step_queue& queue(saga_state& st) { return st.indexes; }
  static const pattern_index_actor& target(const saga_state& st) { return st.settings.patterns; }
  static upsert_atom atom() { return upsert_atom::value; }
  static request make(std::int64_t, running_saga& r) {
    r.pattern.saga_revision = r.revision;
    return r.pattern;
  }
  static std::string note(std::int64_t id, const request&) { return "indexed as pattern " + std::to_string(id); }
  static void add(batch& b, request r) { b.records.push_back(std::move(r)); }
};

struct schedule_step {
  using request = verification_request;
  using batch = verification_request_batch;
  static constexpr std::size_t max_batch = std::min(max_step_batch, max_verification_batch);
  static constexpr const char* missing = "no verification scheduler on this node";
  static constexpr const char* refused = "the verification scheduler refused the request";
  static step_queue& queue(saga_state& st) { return st.schedules; }
  static const verification_scheduler_actor& target(const saga_state& st) { return st.settings.schedule; }
  static schedule_atom atom() { return schedule_atom::value; }
  static request make(std::int64_t id, running_saga& r) { return schedule_request(id, r.pattern); }
  static std::string note(std::int64_t, const request& req) {
    return "verification scheduled, priority " + req.priority;
  }
  static void add(batch& b, request r) { b.requests.push_back(std::move(r)); }
};

template <class Step>
void answered(self_ptr self, std::int64_t id, bool ok, std::string note) {
  if (ok)
    acked(self, id, std::move(note));
  else
    failed(self, id, Step::refused);
}

// One saga's step on its own: after a batch was refused as invalid, so that a request the target
// refuses fails only its own saga.
template <class Step>
void step_alone(self_ptr self, std::int64_t id) {
  auto& st = self->state;
  auto it = st.running.find(id);
  if (it == st.running.end()) return;
  auto req = Step::make(id, it->second);
  auto note = Step::note(id, req);
  self->request(Step::target(st), st.settings.step_timeout, Step::atom(), std::move(req))
    .then([self, id, note](bool ok) { answered<Step>(self, id, ok, note); },
          [self, id](caf::error& e) { failed(self, id, self->system().render(e)); });
}

template <class Step>
void send_batch(self_ptr self, std::vector<std::pair<std::int64_t, std::string>> sagas, typename Step::batch batch) {
  auto& st = self->state;
  ++Step::queue(st).in_flight;
  auto shared = std::make_shared<std::vector<std::pair<std::int64_t, std::string>>>(std::move(sagas));
  self->request(Step::target(st), st.settings.step_timeout, Step::atom(), std::move(batch))
    .then(
      [self, shared](bool ok) {
        --Step::queue(self->state).in_flight;
        ++self->state.holding;
        for (auto& [id, note] : *shared) answered<Step>(self, id, ok, std::move(note));
        --self->state.holding;
        pump(self);
      },
      [self, shared](caf::error& e) {
        --Step::queue(self->state).in_flight;
        ++self->state.holding;
        if (code_of(e) == errc::invalid_argument && shared->size() > 1) {
          for (const auto& s : *shared) step_alone<Step>(self, s.first);
        } else {
          const auto why = self->system().render(e);
          for (const auto& s : *shared) failed(self, s.first, why);
        }
        --self->state.holding;
        pump(self);
      });
}

// Group commit for the index and schedule steps, as for acknowledgements: while batches are being
// stored, the sagas reaching the step wait and go in the next one together (one statement and one
// commit for many reports instead of one transaction each); a lone one goes at once.
template <class Step>
void send_next_batch(self_ptr self) {
  auto& st = self->state;
  auto& q = Step::queue(st);
  std::vector<std::pair<std::int64_t, std::string>> sagas;
  typename Step::batch batch;
  while (!q.ids.empty() && sagas.size() < Step::max_batch) {
    const auto id = q.ids.front();
    q.ids.pop_front();
    auto it = st.running.find(id);
    if (it == st.running.end()) continue;
    auto req = Step::make(id, it->second);
    sagas.emplace_back(id, Step::note(id, req));
    Step::add(batch, std::move(req));
  }
  if (!sagas.empty()) send_batch<Step>(self, std::move(sagas), std::move(batch));
}

int statements_in_flight(const saga_state& st) {
  return st.acks_in_flight + st.indexes.in_flight + st.schedules.in_flight;
}

bool filings_arriving(self_ptr self) {
  const auto& st = self->state;
  return st.last_filed != time_point{} && self->clock().now() - st.last_filed < st.settings.saga_quiet;
}

std::uint32_t statements_allowed(self_ptr self) {
  const auto& st = self->state;
  auto rule = st.settings.share;
  // Past max_waiting undone sagas wait in PostgreSQL, out of this count: a bound above it could
  // never be reached.
  rule.backlog = std::min(rule.backlog, st.settings.max_waiting);
  return saga_statements_allowed(rule, filings_arriving(self), st.running.size() + st.waiting.size(),
                                 full_share);
}

// Sends what the saga's share allows: at its full share every kind of statement up to its own cap;
// while it yields to filings the kind with the most sagas waiting first, so each statement carries
// as many as it can. Once filings stop (saga_quiet after the last), the recheck takes the full
// share up again.
void pump(self_ptr self) {
  auto& st = self->state;
  if (st.holding > 0) return;
  for (;;) {
    if (statements_in_flight(st) >= static_cast<int>(statements_allowed(self))) break;
    std::size_t most = 0;
    int pick = -1;
    if (st.acks_in_flight < max_acks_in_flight && st.acks.size() > most) {
      most = st.acks.size();
      pick = 0;
    }
    if (st.indexes.in_flight < max_step_batches_in_flight && st.indexes.ids.size() > most) {
      most = st.indexes.ids.size();
      pick = 1;
    }
    if (st.schedules.in_flight < max_step_batches_in_flight && st.schedules.ids.size() > most) {
      most = st.schedules.ids.size();
      pick = 2;
    }
    if (pick == 0)
      send_next_acks(self);
    else if (pick == 1)
      send_next_batch<index_step>(self);
    else if (pick == 2)
      send_next_batch<schedule_step>(self);
    else
      break;
  }
  const bool queued = !st.acks.empty() || !st.indexes.ids.empty() || !st.schedules.ids.empty();
  if (queued && !st.recheck_armed && filings_arriving(self)) {
    st.recheck_armed = true;
    const auto wait = st.last_filed + st.settings.saga_quiet - self->clock().now();
    self->delayed_send(self, std::chrono::duration_cast<std::chrono::milliseconds>(wait) +
                               std::chrono::milliseconds{1}, recheck_atom::value);
  }
}

template <class Step>
void queue_step(self_ptr self, std::int64_t id) {
  auto& st = self->state;
  if (!Step::target(st)) return failed(self, id, Step::missing);
  Step::queue(st).ids.push_back(id);
  pump(self);
}

void run_step(self_ptr self, std::int64_t id) {
  auto& st = self->state;
  auto it = st.running.find(id);
  if (it == st.running.end()) return;
  auto& r = it->second;
  const auto timeout = st.settings.step_timeout;
  auto on_error = [self, id](caf::error& e) { failed(self, id, self->system().render(e)); };
  switch (r.step) {
    case saga_step::index:
      return queue_step<index_step>(self, id);
    case saga_step::notify: {
      if (!st.settings.learning) return acked(self, id, no_subscriber_note);
      pattern_learned ev{id, r.revision, r.pattern.speaker_id, r.pattern.client_id,
                         r.pattern.status, r.pattern.weight};
      self->request(st.settings.learning, timeout, publish_atom::value, std::move(ev))
        .then(
          [self, id](bool taken) {
            if (taken)
              acked(self, id, std::string{pattern_learned_topic} + " acknowledged");
            else
              failed(self, id, "the pattern-learning subscriber refused the notice");
          },
          on_error);
      return;
    }
    case saga_step::schedule:
      return queue_step<schedule_step>(self, id);
    case saga_step::done:
      finish(self, id);
      return;
  }
}

void proceed(self_ptr self, std::int64_t id) {
  const auto delay = self->state.settings.step_delay;
  if (delay.count() > 0)
    self->delayed_send(self, delay, step_atom::value, id);
  else
    run_step(self, id);
}

// Reads the saga and what its steps need, extending this node's claim in the same statement.
void load(self_ptr self, std::int64_t id) {
  auto& st = self->state;
  // Only a claim this runner holds, or one nobody holds any more, is extended: a saga another
  // runner is moving is left to it.
  st.db->claim(id, st.settings.claim, st.claim, [self, id](caf::expected<caf::optional<saga_position>> got) {
    auto it = self->state.running.find(id);
    if (it == self->state.running.end()) return;
    if (!got) {
      if (code_of(got.error()) == errc::internal) return failed(self, id, detail_of(got.error()));
      self->state.log->warn("report saga: report {}: cannot load: {}", id, self->system().render(got.error()));
      finish(self, id);
      return;
    }
    if (!*got) {
      finish(self, id);  // done, no such report, or another runner holds it
      return;
    }
    auto& pos = **got;
    auto step = parse_saga_step(pos.step);
    if (!step) return failed(self, id, "corrupt saga row: unknown step");
    auto& r = it->second;
    r.step = *step;
    r.revision = pos.revision;
    r.attempts = pos.attempts;
    r.pattern = std::move(pos.pattern);
    proceed(self, id);
  });
}

void run(self_ptr self, std::int64_t id) {
  auto& st = self->state;
  auto it = st.running.find(id);
  if (it != st.running.end()) {
    it->second.nudged = true;
    return;
  }
  if (st.running.size() >= st.settings.max_running) {
    if (st.waiting.size() < st.settings.max_waiting) st.waiting.push_back({id, std::nullopt});
    return;
  }
  running_saga r;
  r.since = self->clock().now();
  st.running.emplace(id, std::move(r));
  load(self, id);
}

// The filing node knows everything the first step needs, and its claim was set in the filing
// transaction, so the saga starts without reading its row back.
void run_filed(self_ptr self, pattern_record pattern) {
  auto& st = self->state;
  st.last_filed = self->clock().now();
  const auto id = pattern.pattern_id;
  if (st.running.count(id) > 0) {
    run(self, id);
    return;
  }
  if (st.running.size() >= st.settings.max_running) {
    // Past max_waiting the poll finds it in PostgreSQL once its claim lapses.
    if (st.waiting.size() < st.settings.max_waiting) st.waiting.push_back({id, std::move(pattern)});
    pump(self);  // the backlog may have passed its bound: the full share again
    return;
  }
  start_filed(self, std::move(pattern));
}

void start_filed(self_ptr self, pattern_record pattern) {
  auto& st = self->state;
  const auto id = pattern.pattern_id;
  running_saga r;
  r.pattern = std::move(pattern);
  r.since = self->clock().now();
  st.running.emplace(id, std::move(r));
  proceed(self, id);
}

// Claims sagas that are due (a backoff ran out, or the node that held them stopped) so that no
// other node runs them at the same time, then runs them.
void claim_due(self_ptr self) {
  auto& st = self->state;
  const auto now = self->clock().now();
  if (st.claiming || now < st.claim_resume_at) return;
  if (st.running.size() >= st.settings.max_running) {
    st.backlog = true;
    return;
  }
  const auto free_slots = st.settings.max_running - st.running.size();
  st.claiming = true;
  st.db->claim_due(st.settings.claim, static_cast<std::uint32_t>(free_slots), st.claim,
                   [self, free_slots](caf::expected<std::vector<std::int64_t>> ids) {
    auto& st = self->state;
    st.claiming = false;
    if (!ids) {
      const auto delay = resilience::backoff_delay(st.settings.backoff, st.claim_failures,
                                                   static_cast<std::uint64_t>(st.jitter()));
      if (st.claim_failures == 0)
        st.log->warn("report saga: cannot poll for due steps: {}; retrying in {} ms",
                     self->system().render(ids.error()), delay.count());
      ++st.claim_failures;
      st.claim_resume_at = self->clock().now() + delay;
      return;
    }
    if (st.claim_failures > 0)
      st.log->info("report saga: the database answers again after {} failed polls", st.claim_failures);
    st.claim_failures = 0;
    st.backlog = ids->size() >= free_slots;
    for (auto id : *ids) run(self, id);
  });
}

// Keys older than the retention are removed once an hour, with the saga's own timer.
void maybe_purge_keys(self_ptr self) {
  auto& st = self->state;
  const auto now = self->clock().now();
  if (st.last_purge != time_point{} && now - st.last_purge < std::chrono::hours{1}) return;
  st.last_purge = now;
  st.db->purge_keys(st.settings.idempotency_retention, [](caf::expected<bool>) {});  // the next hour tries again
}

report_saga_actor::behavior_type saga_fn(self_ptr self, reports_settings settings,
                                         std::string claim) {
  auto& st = self->state;
  st.settings = std::move(settings);
  st.claim = std::move(claim);
  st.jitter.seed(static_cast<std::minstd_rand::result_type>(self->id()));
  st.log = log::get("reports");
  st.db = open_store(self, st.settings.store, st.settings.db, st.settings.db_timeout);
  self->send(self, flush_atom::value);
  return {
    [self](flush_atom) {
      auto& st = self->state;
      // Only one timer is ever pending: nudges poll without re-arming it.
      const auto now = self->clock().now();
      if (now >= st.next_tick) {
        st.next_tick = now + st.settings.relay_interval;
        self->delayed_send(self, st.settings.relay_interval, flush_atom::value);
      }
      claim_due(self);
      maybe_purge_keys(self);
    },
    [self](flush_atom, std::int64_t id) { run(self, id); },
    [self](metrics_atom) {
      auto& st = self->state;
      const auto now = self->clock().now();
      time_point oldest = now;
      for (const auto& [id, r] : st.running)
        oldest = std::min(oldest, r.since);
      component_metrics m;
      m.component = "report-saga";
      m.samples.push_back({"sbm_report_saga_lag_seconds", {},
                           std::chrono::duration<double>(now - oldest).count()});
      m.queues.push_back({"reports.running-sagas", "reports.max-running-sagas", st.running.size(),
                          st.settings.max_running});
      m.queues.push_back({"reports.waiting-sagas", "reports.max-waiting-sagas", st.waiting.size(),
                          st.settings.max_waiting});
      const auto allowed = statements_allowed(self);
      m.samples.push_back({"sbm_report_saga_statements", {}, static_cast<double>(statements_in_flight(st))});
      m.samples.push_back({"sbm_report_saga_statements_allowed", {}, static_cast<double>(allowed)});
      return m;
    },
    [self](flush_atom, pattern_record& pattern) { run_filed(self, std::move(pattern)); },
    [self](step_atom, std::int64_t id) { run_step(self, id); },
    [self](recheck_atom) {
      self->state.recheck_armed = false;
      pump(self);
    },
  };
}

}  // namespace

report_saga_actor spawn_report_saga(caf::actor_system& sys, reports_settings settings,
                                    std::string claim) {
  return sys.spawn(saga_fn, std::move(settings), std::move(claim));
}

}  // namespace sbm::reports

#include "actors/reports/report_saga.hpp"

#include <caf/actor_system.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <nlohmann/json.hpp>
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

#include "actors/reports/report_rows.hpp"
#include "messages/errors.hpp"
#include "runtime/db/commit.hpp"
#include "runtime/db/idempotency.hpp"
#include "runtime/logging/logging.hpp"

namespace sbm::reports {

namespace {

using time_point = caf::actor_clock::time_point;

// last_error and log notes quote other actors' errors; they are for people, so a bounded excerpt.
constexpr std::size_t max_error_bytes = 500;
// Group commit of acknowledgements (see flush_acks).
constexpr std::size_t max_ack_batch = 128;
constexpr int max_acks_in_flight = 2;
// Group commit of schedule steps (see flush_schedules), within the scheduler's own cap.
constexpr std::size_t max_schedule_batch = std::min<std::size_t>(128, max_verification_batch);
constexpr int max_schedules_in_flight = 2;
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
  // Sagas at the schedule step waiting for a batch. A saga is queued at most once and only while
  // it runs, so reports.max-running-sagas bounds this queue too.
  std::deque<std::int64_t> schedules;
  int schedules_in_flight = 0;
  time_point next_tick{};
  bool claiming = false;
  bool backlog = false;  // the last claim filled every free slot: claim again when one frees
  int claim_failures = 0;
  time_point claim_resume_at{};
  time_point last_purge{};
  std::minstd_rand jitter;
  std::shared_ptr<spdlog::logger> log;
};

using self_ptr = report_saga_actor::stateful_pointer<saga_state>;

std::string ms_param(std::chrono::milliseconds d) { return std::to_string(d.count()); }

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
  std::vector<db_statement> tx;
  tx.push_back(
    {"UPDATE reports.report_saga SET attempts = attempts + 1, last_error = $4, updated_at = now(), "
     "next_attempt_at = now() + make_interval(secs => $5::double precision / 1000) "
     "WHERE report_id = $1 AND revision = $2 AND step = $3 AND claim = $6",
     {std::to_string(id), std::to_string(r.revision), step, excerpt(why), ms_param(delay), st.claim},
     -1});
  // The first failure of a step goes into the log; the row keeps the count and the latest error,
  // so a long outage does not grow the log by one line per attempt.
  if (r.attempts == 0)
    tx.push_back({"INSERT INTO reports.saga_log (report_id, step, note) VALUES ($1, 'retry', $2)",
                             {std::to_string(id), excerpt(step + " failed: " + why +
                                                           "; retrying with backoff")},
                             -1});
  // Unflushed, as every write of the saga's own (runtime/db/commit.hpp): a lost failure record
  // only means the step is tried again sooner.
  self->request(st.settings.db, st.settings.db_timeout, transact_atom::value, db::unflushed(std::move(tx)))
    .then([self, id](db_results&) { finish(self, id); },
          [self, id](caf::error& e) {
            // The claim lapses and the step is tried again then.
            self->state.log->warn("report saga: report {}: cannot record the failure: {}", id,
                                  self->system().render(e));
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

void flush_acks(self_ptr self);

// One statement records a whole batch: each row moves on only if it is still at the revision and
// step its step ran for, and every log line is written either way, because the step happened
// whether or not the row still waited for it. The values travel as JSON parameters, never as SQL
// text; the statement answers the ids of the rows that moved. The rows are found by an array of
// their ids (one primary-key probe each): joined to the input alone, the plan PostgreSQL settled
// on while the table was small hashed the whole table on every call, so each batch cost more the
// more reports there were (pg_stat_statements, bench/PROFILE-reports.md).
const char* const record_acks_sql =
  "WITH input AS MATERIALIZED (SELECT * FROM jsonb_to_recordset($1::jsonb) AS t(report_id bigint, "
  "revision bigint, step text, next text)), "
  "moved AS (UPDATE reports.report_saga s SET step = i.next, attempts = 0, last_error = NULL, "
  "updated_at = now(), next_attempt_at = now() + make_interval(secs => $2::double precision / 1000), "
  "completed_at = CASE WHEN i.next = 'done' THEN now() END FROM input i "
  "WHERE s.report_id = ANY (ARRAY(SELECT report_id FROM input)) "
  "AND s.report_id = i.report_id AND s.revision = i.revision AND s.step = i.step "
  "AND s.claim = $4 RETURNING s.report_id), "
  "logged AS (INSERT INTO reports.saga_log (report_id, step, note) SELECT report_id, step, note "
  "FROM ROWS FROM (jsonb_to_recordset($3::jsonb) AS (report_id bigint, step text, note text)) "
  "WITH ORDINALITY AS l(report_id, step, note, n) ORDER BY n) "
  "SELECT report_id FROM moved";

void send_acks(self_ptr self, std::vector<pending_ack> batch) {
  auto& st = self->state;
  nlohmann::json rows = nlohmann::json::array();
  nlohmann::json lines = nlohmann::json::array();
  for (const auto& a : batch) {
    rows.push_back({{"report_id", a.id}, {"revision", a.revision}, {"step", a.step},
                    {"next", std::string{to_string(a.next)}}});
    for (const auto& [step, note] : a.log) lines.push_back({{"report_id", a.id}, {"step", step}, {"note", note}});
  }
  std::string rows_text, lines_text;
  try {
    rows_text = rows.dump();
    lines_text = lines.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  } catch (const std::exception& ex) {
    st.log->error("report saga: cannot encode acknowledgements: {}", ex.what());
    for (const auto& a : batch) finish(self, a.id);
    return;
  }
  ++st.acks_in_flight;
  auto shared = std::make_shared<std::vector<pending_ack>>(std::move(batch));
  // Unflushed: an acknowledgement lost in a crash re-runs its (idempotent) step, and the step's
  // own write came earlier in the WAL, so it is never lost while its acknowledgement is kept.
  std::vector<db_statement> statement;
  statement.push_back(db_statement{record_acks_sql, {std::move(rows_text), ms_param(st.settings.claim),
                                                     std::move(lines_text), st.claim}, -1});
  self->request(st.settings.db, st.settings.db_timeout, transact_atom::value,
                db::unflushed(std::move(statement)))
    .then(
      [self, shared](db_results& res) {
        --self->state.acks_in_flight;
        std::unordered_set<std::int64_t> moved;
        const auto at = db::unflushed_result(0);
        for (const auto& row : at < res.results.size() ? res.results[at].rows : std::vector<db_row>{}) {
          try {
            moved.insert(int_column(row, 0));
          } catch (const std::exception&) {
            // Unreadable: that saga reads its row again, which is always safe.
          }
        }
        for (const auto& a : *shared) after_recorded(self, a, moved.count(a.id) > 0);
        flush_acks(self);
      },
      [self, shared](caf::error& e) {
        --self->state.acks_in_flight;
        // Done but not recorded: the steps run again once their claims lapse, which is harmless.
        self->state.log->warn("report saga: cannot record {} finished steps: {}", shared->size(),
                              self->system().render(e));
        for (const auto& a : *shared) finish(self, a.id);
        flush_acks(self);
      });
}

// Group commit for acknowledgements: while statements are running, new ones wait and go in the
// next statement together, so under load many sagas share a commit; a lone one goes at once.
void flush_acks(self_ptr self) {
  auto& st = self->state;
  while (st.acks_in_flight < max_acks_in_flight && !st.acks.empty()) {
    std::vector<pending_ack> batch;
    while (!st.acks.empty() && batch.size() < max_ack_batch) {
      batch.push_back(std::move(st.acks.front()));
      st.acks.pop_front();
    }
    send_acks(self, std::move(batch));
  }
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
  flush_acks(self);
}

verification_request schedule_request(std::int64_t id, const pattern_record& p) {
  std::string categories;
  for (const auto& c : p.error_categories) categories += (categories.empty() ? "" : ", ") + c;
  return {p.speaker_id, std::string{verification_priority(p.bucket_type)},
          "error report " + std::to_string(id) + " (" + categories + ")", "report:" + std::to_string(id),
          p.client_id};
}

void scheduled(self_ptr self, std::int64_t id, bool ok, const std::string& priority) {
  if (ok)
    acked(self, id, "verification scheduled, priority " + priority);
  else
    failed(self, id, "the verification scheduler refused the request");
}

// One saga's schedule step on its own: after a batch was refused as invalid, so that a request
// the scheduler refuses fails only its own saga.
void schedule_alone(self_ptr self, std::int64_t id) {
  auto& st = self->state;
  auto it = st.running.find(id);
  if (it == st.running.end()) return;
  auto req = schedule_request(id, it->second.pattern);
  auto priority = req.priority;
  self->request(st.settings.schedule, st.settings.step_timeout, schedule_atom::value, std::move(req))
    .then([self, id, priority](bool ok) { scheduled(self, id, ok, priority); },
          [self, id](caf::error& e) { failed(self, id, self->system().render(e)); });
}

void flush_schedules(self_ptr self);

void send_schedules(self_ptr self, std::vector<std::int64_t> ids, verification_request_batch batch) {
  auto& st = self->state;
  std::vector<std::string> priorities;
  for (const auto& req : batch.requests) priorities.push_back(req.priority);
  ++st.schedules_in_flight;
  auto shared = std::make_shared<std::pair<std::vector<std::int64_t>, std::vector<std::string>>>(
    std::move(ids), std::move(priorities));
  self->request(st.settings.schedule, st.settings.step_timeout, schedule_atom::value, std::move(batch))
    .then(
      [self, shared](bool ok) {
        --self->state.schedules_in_flight;
        for (std::size_t i = 0; i < shared->first.size(); ++i)
          scheduled(self, shared->first[i], ok, shared->second[i]);
        flush_schedules(self);
      },
      [self, shared](caf::error& e) {
        --self->state.schedules_in_flight;
        if (code_of(e) == errc::invalid_argument && shared->first.size() > 1) {
          for (auto id : shared->first) schedule_alone(self, id);
        } else {
          const auto why = self->system().render(e);
          for (auto id : shared->first) failed(self, id, why);
        }
        flush_schedules(self);
      });
}

// Group commit for schedule steps, as for acknowledgements: while batches are being stored, the
// sagas reaching this step wait and go in the next one together (one statement and one commit
// for many reports instead of one transaction each); a lone one goes at once.
void flush_schedules(self_ptr self) {
  auto& st = self->state;
  while (st.schedules_in_flight < max_schedules_in_flight && !st.schedules.empty()) {
    std::vector<std::int64_t> ids;
    verification_request_batch batch;
    while (!st.schedules.empty() && ids.size() < max_schedule_batch) {
      const auto id = st.schedules.front();
      st.schedules.pop_front();
      auto it = st.running.find(id);
      if (it == st.running.end()) continue;
      batch.requests.push_back(schedule_request(id, it->second.pattern));
      ids.push_back(id);
    }
    if (!ids.empty()) send_schedules(self, std::move(ids), std::move(batch));
  }
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
      if (!st.settings.patterns) return failed(self, id, "no pattern index on this node");
      r.pattern.saga_revision = r.revision;
      self->request(st.settings.patterns, timeout, upsert_atom::value, r.pattern)
        .then(
          [self, id](bool stored) {
            if (stored)
              acked(self, id, "indexed as pattern " + std::to_string(id));
            else
              failed(self, id, "the pattern index did not store the pattern");
          },
          on_error);
      return;
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
      if (!st.settings.schedule) return failed(self, id, "no verification scheduler on this node");
      st.schedules.push_back(id);
      flush_schedules(self);
      return;
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
  std::vector<db_statement> stmt;
  stmt.push_back({std::string("UPDATE reports.report_saga s SET next_attempt_at = now() + "
                                "make_interval(secs => $2::double precision / 1000), claim = $3 "
                                "FROM reports.error_reports r WHERE s.report_id = $1 "
                                "AND r.id = s.report_id AND s.step <> 'done' "
                                "AND (s.claim IS NULL OR s.claim = $3 OR s.next_attempt_at <= now()) "
                                "RETURNING ") +
                      saga_columns,
                    {std::to_string(id), ms_param(st.settings.claim), st.claim},
                    -1});
  // Unflushed: a claim lost in a crash has lapsed by the time anyone looks again.
  self->request(st.settings.db, st.settings.db_timeout, transact_atom::value, db::unflushed(std::move(stmt)))
    .then(
      [self, id](db_results& res) {
        auto it = self->state.running.find(id);
        if (it == self->state.running.end()) return;
        const auto at = db::unflushed_result(0);
        static const db_rows none;
        const auto& rows = at < res.results.size() ? res.results[at] : none;
        if (rows.rows.empty()) {
          finish(self, id);  // done, no such report, or another runner holds it
          return;
        }
        try {
          auto pos = saga_from_row(rows.rows.front());
          auto step = parse_saga_step(pos.step);
          if (!step) throw std::runtime_error("unknown step");
          auto& r = it->second;
          r.step = *step;
          r.revision = pos.revision;
          r.attempts = pos.attempts;
          r.pattern = std::move(pos.pattern);
        } catch (const std::exception& ex) {
          failed(self, id, std::string("corrupt saga row: ") + ex.what());
          return;
        }
        proceed(self, id);
      },
      [self, id](caf::error& e) {
        self->state.log->warn("report saga: report {}: cannot load: {}", id, self->system().render(e));
        finish(self, id);
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
  const auto id = pattern.pattern_id;
  if (st.running.count(id) > 0) {
    run(self, id);
    return;
  }
  if (st.running.size() >= st.settings.max_running) {
    // Past max_waiting the poll finds it in PostgreSQL once its claim lapses.
    if (st.waiting.size() < st.settings.max_waiting) st.waiting.push_back({id, std::move(pattern)});
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
  std::vector<db_statement> stmt;
  stmt.push_back({"UPDATE reports.report_saga s SET next_attempt_at = now() + "
                    "make_interval(secs => $1::double precision / 1000), claim = $3 "
                    "FROM (SELECT report_id FROM reports.report_saga "
                    "WHERE step <> 'done' AND next_attempt_at <= now() "
                    "ORDER BY next_attempt_at LIMIT $2 FOR UPDATE SKIP LOCKED) due "
                    "WHERE s.report_id = due.report_id RETURNING s.report_id",
                    {ms_param(st.settings.claim), std::to_string(free_slots), st.claim},
                    -1});
  self->request(st.settings.db, st.settings.db_timeout, transact_atom::value, db::unflushed(std::move(stmt)))
    .then(
      [self, free_slots](db_results& res) {
        auto& st = self->state;
        const auto at = db::unflushed_result(0);
        static const db_rows none;
        const auto& rows = at < res.results.size() ? res.results[at] : none;
        st.claiming = false;
        if (st.claim_failures > 0)
          st.log->info("report saga: the database answers again after {} failed polls",
                       st.claim_failures);
        st.claim_failures = 0;
        st.backlog = rows.rows.size() >= free_slots;
        for (const auto& row : rows.rows) {
          try {
            run(self, int_column(row, 0));
          } catch (const std::exception& ex) {
            st.log->error("report saga: unreadable claim row: {}", ex.what());
          }
        }
      },
      [self](caf::error& e) {
        auto& st = self->state;
        st.claiming = false;
        const auto delay = resilience::backoff_delay(st.settings.backoff, st.claim_failures,
                                                     static_cast<std::uint64_t>(st.jitter()));
        if (st.claim_failures == 0)
          st.log->warn("report saga: cannot poll for due steps: {}; retrying in {} ms",
                       self->system().render(e), delay.count());
        ++st.claim_failures;
        st.claim_resume_at = self->clock().now() + delay;
      });
}

// Keys older than the retention are removed once an hour, with the saga's own timer.
void maybe_purge_keys(self_ptr self) {
  auto& st = self->state;
  const auto now = self->clock().now();
  if (st.last_purge != time_point{} && now - st.last_purge < std::chrono::hours{1}) return;
  st.last_purge = now;
  self->request(st.settings.db, st.settings.db_timeout, query_atom::value,
                db::idempotency::purge("reports.idempotency_keys", st.settings.idempotency_retention))
    .then([](db_rows&) {}, [](caf::error&) {});  // the next hour tries again
}

report_saga_actor::behavior_type saga_fn(self_ptr self, reports_settings settings,
                                         std::string claim) {
  auto& st = self->state;
  st.settings = std::move(settings);
  st.claim = std::move(claim);
  st.jitter.seed(static_cast<std::minstd_rand::result_type>(self->id()));
  st.log = log::get("reports");
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
      return m;
    },
    [self](flush_atom, pattern_record& pattern) { run_filed(self, std::move(pattern)); },
    [self](step_atom, std::int64_t id) { run_step(self, id); },
  };
}

}  // namespace

report_saga_actor spawn_report_saga(caf::actor_system& sys, reports_settings settings,
                                    std::string claim) {
  return sys.spawn(saga_fn, std::move(settings), std::move(claim));
}

}  // namespace sbm::reports

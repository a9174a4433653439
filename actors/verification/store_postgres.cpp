// The verification store over PostgreSQL: the only file with verification's SQL. Statements are
// constant text with $n parameters; lists travel as one JSON or array parameter.
#include <nlohmann/json.hpp>

#include <stdexcept>
#include <utility>

#include "actors/verification/store.hpp"
#include "messages/errors.hpp"
#include "runtime/db/commit.hpp"
#include "runtime/db/rows.hpp"

namespace sbm::verification {

const char* const drafts_purge_sql =
  // The drafts of closed sessions created longer ago than the retention ($1 ms), at most $2 at a
  // time. Open sessions keep theirs until they close, and so do submits whose effects are not
  // done: the effects read the drafts (pattern ids, word counts).
  "WITH due AS ("
  "  SELECT id FROM verification.sessions"
  "  WHERE created_at < now() - make_interval(secs => $1::double precision / 1000)"
  "    AND (content IS NOT NULL OR content_token IS NOT NULL)"
  "    AND (status = 'expired' OR (status = 'submitted' AND effects_done))"
  "  ORDER BY created_at LIMIT $2::integer FOR UPDATE SKIP LOCKED)"
  " UPDATE verification.sessions s SET content = NULL, content_token = NULL, content_purged_at = now()"
  " FROM due WHERE s.id = due.id RETURNING s.id";

namespace {

using nlohmann::json;

constexpr const char* keys_table = "verification.idempotency_keys";

std::string ms_text(const char* column) {
  return std::string("coalesce((extract(epoch from ") + column + ") * 1000)::bigint, 0)";
}

std::string marks_sql() {
  return "SELECT correction_id, verdict FROM verification.session_marks WHERE session_id = $1 ORDER BY seq";
}

// Uses the session: while open and unexpired its expiry moves to now + its idle timeout; past it,
// it expires here (and its schedule entries are scheduled again) in the same statement.
db_statement touch_statement(std::int64_t id) {
  return {"WITH s AS (UPDATE verification.sessions SET "
          "status = CASE WHEN status = 'open' AND expires_at <= now() THEN 'expired' ELSE status END, "
          "expires_at = CASE WHEN status = 'open' AND expires_at > now() "
          "THEN now() + make_interval(secs => idle_timeout_ms::double precision / 1000) ELSE expires_at END "
          "WHERE id = $1 RETURNING status, expires_at), "
          "q AS (UPDATE verification.schedule SET status = 'scheduled', session_id = NULL "
          "WHERE session_id = $1 AND status = 'taken' AND EXISTS (SELECT 1 FROM s WHERE status = 'expired')) "
          "SELECT status, " + ms_text("expires_at") + " FROM s",
          {std::to_string(id)}, -1};
}

caf::optional<session_status> status_of(const db_rows& rows) {
  if (rows.rows.empty()) return caf::none;
  return session_status{db::text_column(rows.rows.front(), 0), db::int_column(rows.rows.front(), 1)};
}

std::vector<session_mark> marks_of(const db_rows& rows) {
  std::vector<session_mark> out;
  for (const auto& m : rows.rows) out.push_back({db::int_column(m, 0), db::text_column(m, 1)});
  return out;
}

json to_json(const submit_outcome& o) {
  json weights = json::array();
  for (const auto& w : o.weights)
    weights.push_back({{"report_id", w.report_id}, {"status", w.status}, {"weight", w.weight}});
  return {{"weights", std::move(weights)}, {"jobs_sampled", o.jobs_sampled},
          {"bucket_before", o.bucket_before}, {"bucket_after", o.bucket_after}};
}

submit_outcome outcome_of(const json& v) {
  submit_outcome o;
  for (const auto& w : v.at("weights"))
    o.weights.push_back({w.at("report_id").get<std::int64_t>(), w.at("status").get<std::string>(),
                         w.at("weight").get<double>()});
  o.jobs_sampled = v.at("jobs_sampled").get<std::vector<std::string>>();
  o.bucket_before = v.at("bucket_before").get<std::string>();
  o.bucket_after = v.at("bucket_after").get<std::string>();
  return o;
}

session_record record_of(const db_results& res) {
  const auto& row = res.results.at(0).rows.front();
  session_record r;
  auto& v = r.head;
  v.id = db::int_column(row, 0);
  v.speaker_id = db::text_column(row, 1);
  v.client_id = db::text_column(row, 2);
  v.owner = db::text_column(row, 3);
  v.status = db::text_column(row, 4);
  v.from_ms = db::int_column(row, 5);
  v.to_ms = db::int_column(row, 6);
  v.error_types = db::text_array_column(row, 7);
  v.max_jobs = static_cast<std::uint32_t>(db::int_column(row, 8));
  v.source = db::text_column(row, 9);
  v.stale = db::bool_column(row, 10);
  v.stale_since_ms = db::int_column(row, 11);
  v.stale_reason = db::text_column(row, 12);
  v.created_at_ms = db::int_column(row, 13);
  v.expires_at_ms = db::int_column(row, 14);
  v.submitted_at_ms = db::int_column(row, 15);
  v.submitted_by = db::text_column(row, 16);
  v.effects_done = db::bool_column(row, 17);
  r.content_plain = row.at(18);
  if (row.at(19)) v.outcome = outcome_of(json::parse(*row[19]));
  r.content_token = row.at(20);
  v.drafts_purged_at_ms = db::int_column(row, 21);
  v.marks = marks_of(res.results.at(1));
  for (const auto& x : res.results.at(2).rows)
    r.residuals.push_back({db::text_column(x, 0), static_cast<std::uint32_t>(db::int_column(x, 1))});
  return r;
}

using db::read_into;

class postgres_store final : public store {
 public:
  explicit postgres_store(db::store_link link) : link_{std::move(link)} {}

  void find_key(const request_context& ctx, std::chrono::seconds retention,
                completion<db::idempotency::lookup_result> done) override {
    link_.query(db::idempotency::lookup(keys_table, ctx, retention), [done, ctx](caf::expected<db_rows> rows) {
      read_into<db::idempotency::lookup_result>(rows, done, "idempotency row",
                                                [&](const db_rows& r) { return db::idempotency::judge(r, ctx); });
    });
  }

  void create(const new_session& s, const request_context& ctx, completion<std::int64_t> done) override {
    db_transaction tx;
    tx.until = ctx.until;
    tx.statements.push_back(
      {"INSERT INTO verification.sessions (speaker_id, client_id, owner, from_at, to_at, error_types, "
       "max_jobs, source, stale, stale_since, stale_reason, content_token, idle_timeout_ms, expires_at) "
       "VALUES ($1, $2, $3, to_timestamp($4::double precision / 1000), to_timestamp($5::double precision / 1000), "
       "$6::text[], $7::integer, $8, $9::boolean, "
       "CASE WHEN $9::boolean THEN to_timestamp($10::double precision / 1000) END, $11, $12, $13::bigint, "
       "now() + make_interval(secs => $13::double precision / 1000)) RETURNING id",
       {s.speaker_id, s.client_id, s.owner, std::to_string(s.from_ms), std::to_string(s.to_ms),
        db::text_array_param(s.error_types), std::to_string(s.max_jobs), s.source, s.stale ? "true" : "false",
        std::to_string(s.stale_since_ms), s.stale_reason, s.content_token, std::to_string(s.idle_timeout.count())},
       1});
    // The queue: this speaker's scheduled entries are taken by the session.
    tx.statements.push_back({"UPDATE verification.schedule SET status = 'taken', "
                             "session_id = currval(pg_get_serial_sequence('verification.sessions', 'id')) "
                             "WHERE speaker_id = $1 AND status = 'scheduled'",
                             {s.speaker_id}, -1});
    if (ctx.keyed())
      tx.statements.push_back(db::idempotency::store(
        keys_table, ctx, 0, "currval(pg_get_serial_sequence('verification.sessions', 'id'))::text", {}));
    link_.transact(std::move(tx), [done](caf::expected<db_results> res) {
      read_into<std::int64_t>(res, done, "session id",
                              [](const db_results& r) { return db::int_column(r.results.at(0).rows.at(0), 0); });
    });
  }

  void load(std::int64_t id, const deadline& until, completion<caf::optional<session_record>> done) override {
    const auto key = std::to_string(id);
    db_transaction tx;
    tx.until = until;
    tx.statements.push_back(
      {"SELECT id, speaker_id, client_id, owner, "
       "CASE WHEN status = 'open' AND expires_at <= now() THEN 'expired' ELSE status END, " +
         ms_text("from_at") + ", " + ms_text("to_at") + ", array_to_json(error_types)::text, max_jobs, source, "
         "stale, " + ms_text("stale_since") + ", stale_reason, " + ms_text("created_at") + ", " +
         ms_text("expires_at") + ", " + ms_text("submitted_at") + ", submitted_by, effects_done, "
         "content::text, outcome::text, content_token, " + ms_text("content_purged_at") +
         " FROM verification.sessions WHERE id = $1",
       {key}, -1});
    tx.statements.push_back({marks_sql(), {key}, -1});
    tx.statements.push_back({"SELECT job_id, residual_errors FROM verification.session_residuals "
                             "WHERE session_id = $1",
                             {key}, -1});
    link_.transact(std::move(tx), [done](caf::expected<db_results> res) {
      read_into<caf::optional<session_record>>(res, done, "session row", [](const db_results& r) {
        if (r.results.size() < 3 || r.results[0].rows.empty()) return caf::optional<session_record>{};
        return caf::optional<session_record>{record_of(r)};
      });
    });
  }

  void touch(std::int64_t id, const deadline& until, completion<caf::optional<session_status>> done) override {
    auto stmt = touch_statement(id);
    stmt.until = until;
    link_.query(std::move(stmt), [done](caf::expected<db_rows> rows) {
      read_into<caf::optional<session_status>>(rows, done, "session row", status_of);
    });
  }

  void save_marks(std::int64_t id, const std::vector<session_mark>& marks, const std::vector<job_residual>& residuals,
                  const deadline& until, completion<caf::optional<marks_saved>> done) override {
    json mark_rows = json::array();
    for (const auto& m : marks) mark_rows.push_back({{"correction_id", m.correction_id}, {"verdict", m.verdict}});
    json residual_rows = json::array();
    for (const auto& r : residuals) residual_rows.push_back({{"job_id", r.job_id}, {"residual_errors", r.residual_errors}});
    const auto key = std::to_string(id);
    db_transaction tx;
    tx.until = until;
    tx.statements.push_back(touch_statement(id));
    // Saved only while the session is still open (the touch above may just have expired it).
    tx.statements.push_back(
      {"INSERT INTO verification.session_marks (session_id, correction_id, verdict) "
       "SELECT $1, x.correction_id, x.verdict FROM json_to_recordset($2::json) AS x(correction_id bigint, verdict text) "
       "WHERE EXISTS (SELECT 1 FROM verification.sessions WHERE id = $1 AND status = 'open') "
       "ON CONFLICT (session_id, correction_id) DO UPDATE SET verdict = EXCLUDED.verdict, "
       "seq = nextval('verification.session_mark_seq'), updated_at = now()",
       {key, mark_rows.dump()}, -1});
    tx.statements.push_back(
      {"INSERT INTO verification.session_residuals (session_id, job_id, residual_errors) "
       "SELECT $1, x.job_id, x.residual_errors FROM json_to_recordset($2::json) AS x(job_id text, residual_errors integer) "
       "WHERE EXISTS (SELECT 1 FROM verification.sessions WHERE id = $1 AND status = 'open') "
       "ON CONFLICT (session_id, job_id) DO UPDATE SET residual_errors = EXCLUDED.residual_errors, updated_at = now()",
       {key, residual_rows.dump()}, -1});
    // The marks in commit order, as the submit will apply them.
    tx.statements.push_back({marks_sql(), {key}, -1});
    link_.transact(std::move(tx), [done](caf::expected<db_results> res) {
      read_into<caf::optional<marks_saved>>(res, done, "session row", [](const db_results& r) {
        if (r.results.size() < 4) throw std::runtime_error("short answer");
        auto now = status_of(r.results[0]);
        if (!now) return caf::optional<marks_saved>{};
        return caf::optional<marks_saved>{marks_saved{*now, marks_of(r.results[3])}};
      });
    });
  }

  void submit(std::int64_t id, const std::string& actor, const request_context& ctx,
              completion<submitted> done) override {
    db_transaction tx;
    tx.until = ctx.until;
    tx.statements.push_back({"UPDATE verification.sessions SET status = 'submitted', submitted_at = now(), "
                             "submitted_by = $2 WHERE id = $1 AND status = 'open' AND expires_at > now() "
                             "RETURNING " + ms_text("submitted_at"),
                             {std::to_string(id), actor}, 1});
    tx.statements.push_back({"UPDATE verification.schedule SET status = 'done' "
                             "WHERE session_id = $1 AND status = 'taken'",
                             {std::to_string(id)}, -1});
    if (ctx.keyed()) tx.statements.push_back(db::idempotency::store_text(keys_table, ctx, 0, std::to_string(id)));
    link_.transact(std::move(tx), [done](caf::expected<db_results> res) {
      if (!res) {
        const auto& e = res.error();
        // The expect_rows checks: not open (statement 0), or the key committed by a concurrent
        // attempt (statement 2).
        if (code_of(e) == errc::conflict && info_of(e).statement == 0) return done(submitted{submitted::not_open, 0});
        if (code_of(e) == errc::conflict && info_of(e).statement == 2) return done(submitted{submitted::key_taken, 0});
        return done(std::move(res.error()));
      }
      read_into<submitted>(res, done, "session row", [](const db_results& r) {
        submitted s;
        if (!r.results.empty() && !r.results[0].rows.empty()) s.submitted_at_ms = db::int_column(r.results[0].rows.front(), 0);
        return s;
      });
    });
  }

  void finish_effects(std::int64_t id, const submit_outcome& outcome, completion<bool> done) override {
    db_statement stmt{"UPDATE verification.sessions SET effects_done = true, outcome = $2::jsonb WHERE id = $1",
                      {std::to_string(id), to_json(outcome).dump()}, 1};
    link_.query(std::move(stmt), [done](caf::expected<db_rows> rows) {
      if (!rows) return done(std::move(rows.error()));
      done(true);
    });
  }

  void drafts_purged_at(std::int64_t id, const deadline& until, completion<std::int64_t> done) override {
    db_statement stmt{"SELECT " + ms_text("content_purged_at") + " FROM verification.sessions WHERE id = $1",
                      {std::to_string(id)}, -1};
    stmt.until = until;
    link_.query(std::move(stmt), [done](caf::expected<db_rows> rows) {
      read_into<std::int64_t>(rows, done, "session row", [](const db_rows& r) {
        return r.rows.empty() ? std::int64_t{0} : db::int_column(r.rows.front(), 0);
      });
    });
  }

  void sweep(std::chrono::seconds retention, completion<sweep_result> done) override {
    db_transaction tx;
    tx.statements.push_back(
      {"WITH gone AS (UPDATE verification.sessions SET status = 'expired' "
       "WHERE status = 'open' AND expires_at <= now() RETURNING id), "
       "q AS (UPDATE verification.schedule SET status = 'scheduled', session_id = NULL "
       "WHERE status = 'taken' AND session_id IN (SELECT id FROM gone)) SELECT id FROM gone",
       {}, -1});
    tx.statements.push_back({"SELECT id FROM verification.sessions WHERE status = 'submitted' AND NOT effects_done "
                             "AND submitted_at < now() - interval '5 seconds' ORDER BY submitted_at LIMIT 100",
                             {}, -1});
    tx.statements.push_back(db::idempotency::purge(keys_table, retention));
    link_.transact(std::move(tx), [done](caf::expected<db_results> res) {
      read_into<sweep_result>(res, done, "session row", [](const db_results& r) {
        sweep_result out;
        for (const auto& row : r.results.at(0).rows) out.expired.push_back(db::int_column(row, 0));
        for (const auto& row : r.results.at(1).rows) out.unfinished.push_back(db::int_column(row, 0));
        return out;
      });
    });
  }

  void schedule(const schedule_entry& e, completion<bool> done) override {
    if (!e.source_key.empty()) return schedule_keyed({e}, std::move(done));
    db_statement stmt{"INSERT INTO verification.schedule (speaker_id, priority, reason, status, source_event_id, client_id) "
                      "VALUES ($1, $2, $3, 'scheduled', $4, $5) ON CONFLICT (source_event_id) DO NOTHING",
                      {e.speaker_id, e.priority, e.reason, std::to_string(e.source_event_id), e.client_id}, -1};
    link_.query(std::move(stmt), [done](caf::expected<db_rows> res) {
      if (!res) return done(std::move(res.error()));
      done(true);
    });
  }

  // One statement for the batch: rows as positional JSON arrays (speaker_id, priority, reason,
  // source_key, client_id). DO NOTHING also skips a key repeated inside the batch.
  void schedule_keyed(const std::vector<schedule_entry>& entries, completion<bool> done) override {
    if (entries.empty()) return done(true);
    nlohmann::json rows = nlohmann::json::array();
    for (const auto& e : entries)
      rows.push_back({e.speaker_id, e.priority, e.reason, e.source_key, e.client_id});
    std::string text;
    try {
      text = rows.dump(-1, ' ', false, nlohmann::json::error_handler_t::strict);
    } catch (const std::exception& ex) {
      return done(make_error(errc::invalid_argument, std::string("schedule: ") + ex.what()));
    }
    db_statement stmt{"INSERT INTO verification.schedule (speaker_id, priority, reason, status, source_key, client_id) "
                      "SELECT r->>0, r->>1, r->>2, 'scheduled', r->>3, r->>4 "
                      "FROM jsonb_array_elements($1::jsonb) AS rows(r) ON CONFLICT (source_key) DO NOTHING",
                      {std::move(text)}, -1};
    // A keyed request comes from a report saga, which records its acknowledgement after this
    // commit and re-runs the step (keyed, so once) if a crash loses both: no need to wait for the
    // WAL flush (runtime/db/commit.hpp).
    link_.transact(db::unflushed({std::move(stmt)}), [done](caf::expected<db_results> res) {
      if (!res) return done(std::move(res.error()));
      done(true);
    });
  }

  void list_schedule(const schedule_query& q, std::uint32_t limit, completion<verification_schedule> done) override {
    caf::optional<std::string> priority, speaker;
    if (!q.priority.empty()) priority = q.priority;
    if (!q.speaker_id.empty()) speaker = q.speaker_id;
    db_statement stmt{"SELECT id, speaker_id, priority, reason, status, source_event_id, "
                      "(extract(epoch from created_at) * 1000)::bigint, source_key, client_id "
                      "FROM verification.schedule "
                      "WHERE ($1::text IS NULL OR priority = $1) "
                      "AND ($2::text IS NULL OR speaker_id = $2) AND " +
                        db::scope_clause("client_id", 4) + " ORDER BY id LIMIT $3",
                      {priority, speaker, std::to_string(limit), db::scope_param(q.scope)}, -1};
    link_.query(std::move(stmt), [done](caf::expected<db_rows> rows) {
      read_into<verification_schedule>(rows, done, "schedule row", [](const db_rows& r) {
        verification_schedule out;
        for (const db_row& row : r.rows) {
          if (row.size() < 9) throw std::runtime_error("short row");
          scheduled_verification v;
          v.id = db::int_column(row, 0);
          v.speaker_id = db::text_column(row, 1);
          v.priority = db::text_column(row, 2);
          v.reason = db::text_column(row, 3);
          v.status = db::text_column(row, 4);
          v.source_event_id = row[5] ? db::int_column(row, 5) : 0;
          v.created_at_ms = db::int_column(row, 6);
          v.source_key = db::text_column(row, 7);
          v.client_id = db::text_column(row, 8);
          out.items.push_back(std::move(v));
        }
        return out;
      });
    });
  }

 private:
  db::store_link link_;
};

}  // namespace

std::unique_ptr<store> make_postgres_store(const db::store_link& link) {
  return std::make_unique<postgres_store>(link);
}

}  // namespace sbm::verification

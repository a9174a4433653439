// The reports store over PostgreSQL: with report_rows.cpp (column lists, the filing statement and
// their parsers) the only file with the family's SQL. Every value is bound, never spliced; lists
// travel as one JSON or array parameter; times are the database's now().
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <exception>
#include <stdexcept>
#include <utility>

#include "actors/reports/report_rows.hpp"
#include "actors/reports/store.hpp"
#include "messages/errors.hpp"
#include "runtime/db/commit.hpp"
#include "runtime/db/idempotency.hpp"
#include "runtime/db/rows.hpp"
#include "runtime/domain/vocabulary.hpp"

namespace sbm::reports {

namespace {

// $1 retention (ms), $2 batch; at most $2 rows, FOR UPDATE SKIP LOCKED so two nodes purging at
// once do not queue; one row per report purged.
const char* const notes_purge_sql =
  "WITH due AS ("
  "  SELECT id FROM reports.error_reports"
  "  WHERE created_at < now() - make_interval(secs => $1::double precision / 1000)"
  "    AND (additional_notes_token IS NOT NULL OR context_notes_token IS NOT NULL)"
  "  ORDER BY id LIMIT $2::integer FOR UPDATE SKIP LOCKED)"
  " UPDATE reports.error_reports r SET additional_notes_token = NULL, context_notes_token = NULL,"
  "   updated_at = now()"
  " FROM due WHERE r.id = due.id RETURNING r.id";

constexpr const char* keys_table = "reports.idempotency_keys";

std::string ms_param(std::chrono::milliseconds d) { return std::to_string(d.count()); }

// Decimal text that PostgreSQL parses back to the identical double.
std::string sql_number(double value) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.17g", value);
  return buffer;
}

const std::string select_report =
  std::string("SELECT ") + report_columns +
  " FROM reports.error_reports r LEFT JOIN reports.report_saga s ON s.report_id = r.id";
const std::string select_report_by_id = select_report + " WHERE r.id = $1";

// The rows of statement i of an unflushed() transaction (none when it is missing).
const db_rows& unflushed_rows(const db_results& res, std::size_t i) {
  static const db_rows none;
  return i < res.results.size() ? res.results[i] : none;
}

// Rewinds sagas to their index step at a new revision, unclaimed: a status change re-indexes.
const char* const rewind_one_sql =
  "UPDATE reports.report_saga SET step = 'index', revision = revision + 1, attempts = 0, "
  "last_error = NULL, completed_at = NULL, updated_at = now(), claim = NULL, "
  "next_attempt_at = now() + make_interval(secs => $2::double precision / 1000) "
  "WHERE report_id = $1";

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

class postgres_store final : public store {
 public:
  explicit postgres_store(db::store_link link) : link_{std::move(link)} {}

  void find_key(const request_context& ctx, std::chrono::seconds retention,
                completion<db::idempotency::lookup_result> done) override {
    link_.query(db::idempotency::lookup(keys_table, ctx, retention), [done, ctx](caf::expected<db_rows> r) {
      db::read_into<db::idempotency::lookup_result>(
        r, done, "stored answer", [&ctx](const db_rows& rows) { return db::idempotency::judge(rows, ctx); });
    });
  }

  void file(const std::vector<filing_row>& batch, std::chrono::milliseconds claim, const std::string& claimant,
            const deadline& until, completion<std::vector<filed>> done) override {
    std::string rows;
    try {
      nlohmann::json list = nlohmann::json::array();
      for (std::size_t i = 0; i < batch.size(); ++i) {
        const auto& f = batch[i];
        const auto& s = f.sub;
        auto token = [](const caf::optional<std::string>& t) {
          return t ? nlohmann::json(*t) : nlohmann::json(nullptr);
        };
        // In filing_batch_sql's order (report_rows.hpp).
        list.push_back(nlohmann::json::array(
          {i, s.speaker_id, s.client_id, s.job_id, s.original_text, s.corrected_text, s.context_text,
           s.error_categories, f.bucket_type, s.audio_quality, s.speaker_clarity, s.background_noise,
           s.number_of_speakers, s.overlapping_speech, s.requires_specialized_knowledge,
           token(f.additional_token), token(f.context_token), s.actor, f.note, s.ctx.principal,
           s.ctx.keyed() ? nlohmann::json(s.ctx.idempotency_key) : nlohmann::json(nullptr),
           s.ctx.request_digest}));
      }
      rows = list.dump();
    } catch (const std::exception& ex) {
      // Validation lets only valid UTF-8 through, so this is a bug, not a client's mistake.
      return done(make_error(errc::internal, std::string("cannot encode: ") + ex.what()));
    }
    db_statement stmt{filing_batch_sql, {std::move(rows), ms_param(claim), claimant}, -1, until};
    // One statement is its own transaction: one round trip, not three. A connection lost under it
    // answers outcome_unknown, which the reports actor passes on (keys settle it on retry).
    stmt.autocommit = true;
    const auto n = batch.size();
    link_.query(std::move(stmt), [done, n](caf::expected<db_rows> r) {
      if (!r) return done(std::move(r.error()));
      std::vector<filed> out(n);
      for (const auto& row : r->rows) {
        // A row that does not read stays unknown: the batch committed, so it is no failure.
        try {
          const auto ord = static_cast<std::size_t>(int_column(row, 0));
          if (ord >= n || out[ord].outcome != filed::unknown) continue;
          out[ord].outcome = bool_column(row, 3) ? filed::written : filed::key_taken;
          out[ord].id = int_column(row, 1);
          out[ord].created_at_ms = int_column(row, 2);
        } catch (const std::exception&) {
        }
      }
      done(std::move(out));
    });
  }

  void job_owners(const std::vector<std::string>& job_ids,
                  completion<std::map<std::string, std::string>> done) override {
    // Replacing never fires (job ids are validated UTF-8); it only keeps dump() from throwing.
    auto ids = nlohmann::json(job_ids).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    link_.query(db_statement{job_owners_sql, {std::move(ids)}, -1}, [done](caf::expected<db_rows> r) {
      if (!r) return done(std::move(r.error()));
      std::map<std::string, std::string> owners;
      for (const auto& row : r->rows)
        if (row.size() == 2 && row[0] && row[1]) owners.emplace(*row[0], *row[1]);
      done(std::move(owners));
    });
  }

  void load(std::int64_t id, bool with_log, completion<caf::optional<stored_report>> done) override {
    if (!with_log) {
      link_.query(db_statement{select_report_by_id, {std::to_string(id)}, -1}, [done](caf::expected<db_rows> r) {
        db::read_into<caf::optional<stored_report>>(r, done, "report row", [](const db_rows& rows) {
          if (rows.rows.empty()) return caf::optional<stored_report>{};
          return caf::optional<stored_report>{report_from_row(rows.rows.front())};
        });
      });
      return;
    }
    db_transaction tx;
    tx.statements.push_back({select_report_by_id, {std::to_string(id)}, -1});
    tx.statements.push_back({std::string("SELECT ") + log_columns +
                               " FROM reports.saga_log WHERE report_id = $1 ORDER BY id",
                             {std::to_string(id)},
                             -1});
    link_.transact(std::move(tx), [done](caf::expected<db_results> r) {
      db::read_into<caf::optional<stored_report>>(r, done, "report row", [](const db_results& res) {
        if (res.results.size() < 2 || res.results[0].rows.empty()) return caf::optional<stored_report>{};
        auto out = report_from_row(res.results[0].rows.front());
        for (const auto& row : res.results[1].rows) out.report.saga_log.push_back(log_entry_from_row(row));
        return caf::optional<stored_report>{std::move(out)};
      });
    });
  }

  void list(const report_query& q, std::uint32_t fetch, completion<std::vector<stored_report>> done) override {
    auto given = [](const std::string& s) { return s.empty() ? caf::optional<std::string>{} : caf::optional<std::string>{s}; };
    auto given_id = [](std::int64_t v) {
      return v == 0 ? caf::optional<std::string>{} : caf::optional<std::string>{std::to_string(v)};
    };
    // Every filter is a bound parameter; "$n IS NULL OR ..." keeps one statement for all of them.
    db_statement stmt{select_report +
                        " WHERE ($1::text IS NULL OR r.speaker_id = $1) "
                        "AND ($2::text IS NULL OR r.status = $2) "
                        "AND ($3::text IS NULL OR r.error_categories @> ARRAY[$3::text]) "
                        // Integer microsecond arithmetic: no float rounding at the bounds.
                        "AND ($4::bigint IS NULL OR r.created_at >= "
                        "'epoch'::timestamptz + $4::bigint * interval '1 millisecond') "
                        "AND ($5::bigint IS NULL OR r.created_at < "
                        "'epoch'::timestamptz + ($5::bigint + 1) * interval '1 millisecond') "
                        "AND ($6::bigint IS NULL OR r.id < $6::bigint) "
                        "AND " + db::scope_clause("r.client_id", 8) +
                        " ORDER BY r.id DESC LIMIT $7",
                      {given(q.speaker_id), given(q.status), given(q.category), given_id(q.from_ms), given_id(q.to_ms),
                       given_id(q.before_id), std::to_string(fetch), db::scope_param(q.scope)},
                      -1};
    link_.query(std::move(stmt), [done](caf::expected<db_rows> r) {
      db::read_into<std::vector<stored_report>>(r, done, "report row", [](const db_rows& rows) {
        std::vector<stored_report> out;
        for (const auto& row : rows.rows) out.push_back(report_from_row(row));
        return out;
      });
    });
  }

  void read_status(std::int64_t id, const client_scope& scope, const request_context& ctx,
                   std::chrono::seconds retention, completion<caf::optional<status_read>> done) override {
    db_transaction read;
    read.until = ctx.until;
    read.statements.push_back(
      // A report of a client the caller may not reach reads as missing (its existence is not told).
      {"SELECT status, weight FROM reports.error_reports WHERE id = $1 AND " + db::scope_clause("client_id", 2),
       {std::to_string(id), db::scope_param(scope)}, -1});
    if (ctx.keyed()) read.statements.push_back(db::idempotency::lookup(keys_table, ctx, retention));
    link_.transact(std::move(read), [done, ctx](caf::expected<db_results> r) {
      db::read_into<caf::optional<status_read>>(r, done, "report row", [&ctx](const db_results& res) {
        if (res.results.empty() || res.results[0].rows.empty()) return caf::optional<status_read>{};
        status_read out;
        if (ctx.keyed() && res.results.size() > 1) out.key = db::idempotency::judge(res.results[1], ctx);
        out.status = text_column(res.results[0].rows.front(), 0);
        out.weight = double_column(res.results[0].rows.front(), 1);
        return caf::optional<status_read>{std::move(out)};
      });
    });
  }

  void set_status(const status_write& w, std::chrono::milliseconds claim, const request_context& ctx,
                  completion<verdict_saved> done) override {
    const auto id = std::to_string(w.id);
    db_transaction tx;
    tx.until = ctx.until;
    // Conditional on the status read before: two verdicts racing cannot both apply their weight
    // change to the same starting point.
    tx.statements.push_back({"UPDATE reports.error_reports SET status = $2, weight = $3::double precision, "
                             "updated_at = now() WHERE id = $1 AND status = $4",
                             {id, w.new_status, sql_number(w.new_weight), w.old_status},
                             1});
    tx.statements.push_back({rewind_one_sql, {id, ms_param(claim)}, 1});
    tx.statements.push_back(
      {"INSERT INTO reports.saga_log (report_id, step, note) VALUES ($1, 'status', $2)", {id, w.log_note}, 1});
    const auto key_statement = static_cast<std::int32_t>(tx.statements.size());
    if (ctx.keyed()) tx.statements.push_back(db::idempotency::store_text(keys_table, ctx, 0, id));
    link_.transact(std::move(tx), [done, key_statement](caf::expected<db_results> r) {
      if (r) return done(verdict_saved::done);
      if (code_of(r.error()) == errc::conflict)
        return done(info_of(r.error()).statement == key_statement ? verdict_saved::key_taken
                                                                   : verdict_saved::status_moved);
      done(std::move(r.error()));
    });
  }

  void apply_verdicts(const verification_verdicts& v, std::chrono::milliseconds claim,
                      completion<bool> done) override {
    std::vector<std::int64_t> distinct;
    for (const auto& x : v.verdicts)
      if (std::find(distinct.begin(), distinct.end(), x.report_id) == distinct.end()) distinct.push_back(x.report_id);
    const auto ids = id_array(distinct);
    const auto session = std::to_string(v.session_id);
    db_transaction tx;
    tx.until = v.ctx.until;
    tx.statements.push_back({"INSERT INTO reports.session_verdicts (session_id, speaker_id, verdicts) "
                             "VALUES ($1, $2, $3)",
                             {session, v.speaker_id, std::to_string(v.verdicts.size())},
                             -1});
    for (const auto& x : v.verdicts)
      tx.statements.push_back(
        {"UPDATE reports.error_reports SET weight = greatest(0, least(10, round(weight * 10)::int + $2::int)) "
         "::double precision / 10, status = $3, updated_at = now() WHERE id = $1 AND speaker_id = $4",
         {std::to_string(x.report_id), x.verdict == domain::verdicts[0] ? "1" : "-1", x.verdict, v.speaker_id},
         -1});
    if (!distinct.empty()) {
      tx.statements.push_back(
        {"UPDATE reports.report_saga SET step = 'index', revision = revision + 1, attempts = 0, "
         "last_error = NULL, completed_at = NULL, updated_at = now(), claim = NULL, "
         "next_attempt_at = now() + make_interval(secs => $2::double precision / 1000) "
         "WHERE report_id = ANY($1::bigint[]) AND report_id IN "
         "(SELECT id FROM reports.error_reports WHERE speaker_id = $3)",
         {ids, ms_param(claim), v.speaker_id},
         -1});
      tx.statements.push_back(
        {"INSERT INTO reports.saga_log (report_id, step, note) SELECT id, 'status', "
         "'verification session ' || $2 || ' by ' || $3 || ': now ' || status || ', weight ' || weight "
         "FROM reports.error_reports WHERE id = ANY($1::bigint[]) AND speaker_id = $4",
         {ids, session, v.actor, v.speaker_id},
         -1});
    }
    link_.transact(std::move(tx), [done](caf::expected<db_results> r) {
      if (r) return done(true);
      // The session's verdicts were applied before (the first statement's key): a retry.
      const auto& e = r.error();
      if (code_of(e) == errc::duplicate || (code_of(e) == errc::conflict && info_of(e).statement == 0))
        return done(false);
      done(std::move(r.error()));
    });
  }

  void weights(const std::vector<std::int64_t>& ids, const std::string& speaker_id, const deadline& until,
               completion<verdicts_applied> done) override {
    db_statement q{"SELECT id, status, weight FROM reports.error_reports "
                   "WHERE id = ANY($1::bigint[]) AND speaker_id = $2 ORDER BY id",
                   {id_array(ids), speaker_id}, -1, until};
    link_.query(std::move(q), [done](caf::expected<db_rows> r) {
      db::read_into<verdicts_applied>(r, done, "report row", [](const db_rows& rows) {
        verdicts_applied out;
        for (const auto& row : rows.rows)
          out.weights.push_back({int_column(row, 0), text_column(row, 1), double_column(row, 2)});
        return out;
      });
    });
  }

  void claim(std::int64_t id, std::chrono::milliseconds claim, const std::string& claimant,
             completion<caf::optional<saga_position>> done) override {
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
                    {std::to_string(id), ms_param(claim), claimant},
                    -1});
    // Unflushed: a claim lost in a crash has lapsed by the time anyone looks again.
    link_.transact(db::unflushed(std::move(stmt)), [done](caf::expected<db_results> r) {
      db::read_into<caf::optional<saga_position>>(r, done, "saga row", [](const db_results& res) {
        const auto& rows = unflushed_rows(res, 0);
        if (rows.rows.empty()) return caf::optional<saga_position>{};
        return caf::optional<saga_position>{saga_from_row(rows.rows.front())};
      });
    });
  }

  void claim_due(std::chrono::milliseconds claim, std::uint32_t limit, const std::string& claimant,
                 completion<std::vector<std::int64_t>> done) override {
    std::vector<db_statement> stmt;
    stmt.push_back({"UPDATE reports.report_saga s SET next_attempt_at = now() + "
                    "make_interval(secs => $1::double precision / 1000), claim = $3 "
                    "FROM (SELECT report_id FROM reports.report_saga "
                    "WHERE step <> 'done' AND next_attempt_at <= now() "
                    "ORDER BY next_attempt_at LIMIT $2 FOR UPDATE SKIP LOCKED) due "
                    "WHERE s.report_id = due.report_id RETURNING s.report_id",
                    {ms_param(claim), std::to_string(limit), claimant},
                    -1});
    link_.transact(db::unflushed(std::move(stmt)), [done](caf::expected<db_results> r) {
      db::read_into<std::vector<std::int64_t>>(r, done, "claim row", [](const db_results& res) {
        std::vector<std::int64_t> ids;
        for (const auto& row : unflushed_rows(res, 0).rows) ids.push_back(int_column(row, 0));
        return ids;
      });
    });
  }

  void record_steps(const std::vector<step_ack>& acks, std::chrono::milliseconds claim, const std::string& claimant,
                    completion<std::vector<std::int64_t>> done) override {
    nlohmann::json rows = nlohmann::json::array();
    nlohmann::json lines = nlohmann::json::array();
    for (const auto& a : acks) {
      rows.push_back({{"report_id", a.id}, {"revision", a.revision}, {"step", a.step}, {"next", a.next}});
      for (const auto& [step, note] : a.log) lines.push_back({{"report_id", a.id}, {"step", step}, {"note", note}});
    }
    std::string rows_text, lines_text;
    try {
      rows_text = rows.dump();
      lines_text = lines.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    } catch (const std::exception& ex) {
      return done(make_error(errc::internal, std::string("cannot encode acknowledgements: ") + ex.what()));
    }
    // Unflushed: an acknowledgement lost in a crash re-runs its (idempotent) step, and the step's
    // own write came earlier in the WAL, so it is never lost while its acknowledgement is kept.
    std::vector<db_statement> statement;
    statement.push_back(
      db_statement{record_acks_sql, {std::move(rows_text), ms_param(claim), std::move(lines_text), claimant}, -1});
    link_.transact(db::unflushed(std::move(statement)), [done](caf::expected<db_results> r) {
      if (!r) return done(std::move(r.error()));
      std::vector<std::int64_t> moved;
      for (const auto& row : unflushed_rows(*r, 0).rows) {
        try {
          moved.push_back(int_column(row, 0));
        } catch (const std::exception&) {
          // Unreadable: that saga reads its row again, which is always safe.
        }
      }
      done(std::move(moved));
    });
  }

  void record_failure(const step_failure& f, const std::string& claimant, completion<bool> done) override {
    std::vector<db_statement> tx;
    tx.push_back(
      {"UPDATE reports.report_saga SET attempts = attempts + 1, last_error = $4, updated_at = now(), "
       "next_attempt_at = now() + make_interval(secs => $5::double precision / 1000) "
       "WHERE report_id = $1 AND revision = $2 AND step = $3 AND claim = $6",
       {std::to_string(f.id), std::to_string(f.revision), f.step, f.error, ms_param(f.retry_in), claimant},
       -1});
    if (f.log_note)
      tx.push_back({"INSERT INTO reports.saga_log (report_id, step, note) VALUES ($1, 'retry', $2)",
                    {std::to_string(f.id), *f.log_note},
                    -1});
    // Unflushed, as every write of the saga's own (runtime/db/commit.hpp): a lost failure record
    // only means the step is tried again sooner.
    link_.transact(db::unflushed(std::move(tx)), [done](caf::expected<db_results> r) {
      if (!r) return done(std::move(r.error()));
      done(true);
    });
  }

  void purge_keys(std::chrono::seconds retention, completion<bool> done) override {
    link_.query(db::idempotency::purge(keys_table, retention), [done](caf::expected<db_rows> r) {
      if (!r) return done(std::move(r.error()));
      done(true);
    });
  }

  void purge_notes(std::chrono::milliseconds retention, std::uint32_t batch, completion<std::uint32_t> done) override {
    link_.query(db_statement{notes_purge_sql, {ms_param(retention), std::to_string(batch)}, -1},
                [done](caf::expected<db_rows> r) {
                  if (!r) return done(std::move(r.error()));
                  done(static_cast<std::uint32_t>(r->rows.size()));
                });
  }

 private:
  static std::string id_array(const std::vector<std::int64_t>& ids) {
    std::string out = "{";
    for (std::size_t i = 0; i < ids.size(); ++i) out += (i ? "," : "") + std::to_string(ids[i]);
    return out + "}";
  }

  db::store_link link_;
};

}  // namespace

std::unique_ptr<store> make_postgres_store(const db::store_link& link) {
  return std::make_unique<postgres_store>(link);
}

}  // namespace sbm::reports

// The InstaNote adapter over PostgreSQL: the only file with InstaNote's SQL. Statements are
// constant text with $n parameters (the connection workers prepare them once per connection), so
// no filter value ever becomes SQL text; error types travel as one JSON array parameter.
#include <nlohmann/json.hpp>

#include <stdexcept>
#include <utility>

#include "actors/instanote/store.hpp"
#include "messages/errors.hpp"
#include "runtime/db/rows.hpp"

namespace sbm::instanote {

namespace {

// Column list shared by both reads, in the order job_from_row expects.
#define SBM_INSTANOTE_JOB_COLUMNS                                                              \
  "SELECT job_id, speaker_id, client_id, draft_text, "                                         \
  "(extract(epoch FROM created_at) * 1000)::bigint, "                                          \
  "coalesce(audio_metadata->>'quality', 'unknown'), "                                          \
  "CASE WHEN jsonb_typeof(audio_metadata->'duration') = 'number' "                             \
  "THEN audio_metadata->>'duration' END, "                                                     \
  "coalesce(source_system, 'instanote'), array_to_json(coalesce(error_types, '{}'))::text "    \
  "FROM public.draft_jobs "

const char* const pull_sql =
  SBM_INSTANOTE_JOB_COLUMNS
  "WHERE speaker_id = $1 "
  "AND created_at >= to_timestamp($2::bigint / 1000.0) "
  "AND created_at < to_timestamp($3::bigint / 1000.0) "
  "AND ($4::jsonb IS NULL OR error_types && ARRAY(SELECT jsonb_array_elements_text($4::jsonb))) "
  "ORDER BY created_at DESC, job_id DESC LIMIT $5::integer";

const char* const job_sql = SBM_INSTANOTE_JOB_COLUMNS "WHERE job_id = $1";

#undef SBM_INSTANOTE_JOB_COLUMNS

verification_job job_from_row(const db_row& row, std::int64_t now_ms) {
  verification_job j;
  j.job_id = db::required_text(row, 0);
  j.speaker_id = db::required_text(row, 1);
  j.client_id = db::required_text(row, 2);
  j.original_draft = db::required_text(row, 3);
  j.created_at_ms = db::int_column(row, 4);
  j.audio_quality = db::text_column(row, 5);
  if (row.size() > 6 && row[6])
    j.duration_s = db::double_column(row, 6);
  j.source_system = db::text_column(row, 7);
  auto types = nlohmann::json::parse(db::text_column(row, 8), nullptr, false);
  if (!types.is_array())
    throw std::runtime_error("column 8 (error_types) is not an array");
  for (const auto& t : types)
    if (t.is_string())
      j.error_types.push_back(t.get<std::string>());
  j.retrieved_at_ms = now_ms;
  return j;
}

class postgres_store final : public store {
 public:
  postgres_store(query_runner query, status_runner status)
    : query_{std::move(query)}, status_{std::move(status)} {}

  void pull_jobs(const job_pull_request& r, std::int64_t now_ms,
                 completion<std::vector<verification_job>> done) override {
    caf::optional<std::string> types;
    if (!r.error_types.empty())
      types = nlohmann::json(r.error_types).dump();
    db_statement st{pull_sql,
                    {r.speaker_id, std::to_string(r.from_ms), std::to_string(r.to_ms), types,
                     std::to_string(r.max_jobs)},
                    -1};
    query_(std::move(st), [done, now_ms](caf::expected<db_rows> rows) {
      if (!rows)
        return done(db::failure(rows.error()));
      std::vector<verification_job> jobs;
      try {
        for (const auto& row : rows->rows)
          jobs.push_back(job_from_row(row, now_ms));
      } catch (const std::exception& e) {
        return done(make_error(errc::internal, std::string{"instanote: unreadable job row: "} + e.what()));
      }
      done(std::move(jobs));
    });
  }

  void job(const std::string& job_id, std::int64_t now_ms, completion<verification_job> done) override {
    query_(db_statement{job_sql, {job_id}, -1}, [done, now_ms, job_id](caf::expected<db_rows> rows) {
      if (!rows)
        return done(db::failure(rows.error()));
      if (rows->rows.empty())
        return done(make_error(errc::not_found, "InstaNote has no job '" + job_id + "'"));
      try {
        done(job_from_row(rows->rows.front(), now_ms));
      } catch (const std::exception& e) {
        done(make_error(errc::internal, std::string{"instanote: unreadable job row: "} + e.what()));
      }
    });
  }

  void health(completion<dependency_status> done) override { status_(std::move(done)); }

 private:
  query_runner query_;
  status_runner status_;
};

}  // namespace

std::unique_ptr<store> make_postgres_store(query_runner query, status_runner status) {
  return std::make_unique<postgres_store>(std::move(query), std::move(status));
}

}  // namespace sbm::instanote

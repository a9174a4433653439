#include "actors/speakers/speaker_rows.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>

#include "messages/errors.hpp"
#include "runtime/db/idempotency.hpp"
#include "runtime/db/rows.hpp"

namespace sbm::speakers {

const char* const speaker_columns =
  "speaker_id, client_id, display_name, bucket, pinned, pin_reason, pinned_by, "
  "coalesce((extract(epoch from pinned_at) * 1000)::bigint, 0), window_size, window_mean, "
  "samples_total, bucket_changes, (extract(epoch from created_at) * 1000)::bigint, "
  "(extract(epoch from updated_at) * 1000)::bigint, version";

const std::string& speaker_answer_sql() {
  // json_build_array is variadic, so the column list reads as its arguments.
  static const std::string sql = std::string("json_build_array(") + speaker_columns +
                                 ")::text FROM speakers.speakers WHERE speaker_id = $5";
  return sql;
}

speaker_record speaker_from_answer(const std::string& answer, std::uint32_t window_capacity) {
  return speaker_from_row(db::idempotency::row_of_answer(answer), window_capacity);
}

speaker_record speaker_from_row(const db_row& row, std::uint32_t window_capacity) {
  speaker_record out;
  speaker_view& v = out.view;
  v.speaker_id = text_column(row, 0);
  v.client_id = text_column(row, 1);
  v.display_name = text_column(row, 2);
  v.bucket = text_column(row, 3);
  v.pinned = bool_column(row, 4);
  v.pin_reason = text_column(row, 5);
  v.pinned_by = text_column(row, 6);
  v.pinned_at_ms = int_column(row, 7);
  v.window_size = static_cast<std::uint32_t>(int_column(row, 8));
  v.window_capacity = window_capacity;
  v.window_mean = double_column(row, 9);
  v.samples_total = static_cast<std::uint64_t>(int_column(row, 10));
  v.bucket_changes = static_cast<std::uint64_t>(int_column(row, 11));
  v.created_at_ms = int_column(row, 12);
  v.updated_at_ms = int_column(row, 13);
  out.version = int_column(row, 14);
  return out;
}

db_statement samples_statement(const samples_query& q, std::uint32_t fetch) {
  // Bounds as integer milliseconds added to the epoch: exact, and bound, never spliced. The time
  // shown is floored to the millisecond, so a sample's own `at` given back as `from` keeps it and
  // as `to` leaves it out.
  return {"SELECT q.id, q.job_id, q.errors_per_100_words, q.actor, "
          "floor(extract(epoch from q.created_at) * 1000)::bigint FROM speakers.speakers s "
          "LEFT JOIN LATERAL (SELECT id, job_id, errors_per_100_words, actor, created_at "
          "FROM speakers.quality_samples WHERE speaker_id = s.speaker_id "
          "AND ($2::bigint IS NULL OR created_at >= timestamptz 'epoch' + $2::bigint * interval '1 millisecond') "
          "AND ($3::bigint IS NULL OR created_at < timestamptz 'epoch' + $3::bigint * interval '1 millisecond') "
          "ORDER BY id DESC LIMIT $4) q ON true WHERE s.speaker_id = $1 AND " +
            db::scope_clause("s.client_id", 5),
          {q.speaker_id,
           q.has_from ? caf::optional<std::string>{std::to_string(q.from_ms)} : caf::none,
           q.has_to ? caf::optional<std::string>{std::to_string(q.to_ms)} : caf::none,
           std::to_string(fetch), db::scope_param(q.scope)},
          -1};
}

bool samples_from_rows(const db_rows& rows, std::uint32_t limit, quality_samples& out) {
  if (rows.rows.empty()) return false;
  for (const db_row& row : rows.rows) {
    if (row.empty() || !row[0]) break;  // the speaker's row without samples
    if (out.items.size() == limit) {
      out.truncated = true;
      break;
    }
    quality_point p;
    p.id = int_column(row, 0);
    p.job_id = text_column(row, 1);
    p.errors_per_100_words = double_column(row, 2);
    p.actor = text_column(row, 3);
    p.at_ms = int_column(row, 4);
    out.items.push_back(std::move(p));
  }
  std::reverse(out.items.begin(), out.items.end());
  return true;
}

std::string sql_number(double value) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.17g", value);
  return buffer;
}

}  // namespace sbm::speakers

#include "actors/speakers/speaker_rows.hpp"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>

namespace sbm::speakers {

const char* const speaker_columns =
  "speaker_id, client_id, display_name, bucket, pinned, pin_reason, pinned_by, "
  "coalesce((extract(epoch from pinned_at) * 1000)::bigint, 0), window_size, window_mean, "
  "samples_total, bucket_changes, (extract(epoch from created_at) * 1000)::bigint, "
  "(extract(epoch from updated_at) * 1000)::bigint, version";


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

std::string sql_number(double value) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.17g", value);
  return buffer;
}

}  // namespace sbm::speakers

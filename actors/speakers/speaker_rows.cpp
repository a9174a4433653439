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

namespace {

const std::string& present(const db_row& row, std::size_t index) {
  if (index >= row.size() || !row[index])
    throw std::runtime_error("column " + std::to_string(index) + " is missing or NULL");
  return *row[index];
}

}  // namespace

std::int64_t int_column(const db_row& row, std::size_t index) {
  const std::string& text = present(row, index);
  errno = 0;
  char* end = nullptr;
  const long long value = std::strtoll(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || errno == ERANGE)
    throw std::runtime_error("column " + std::to_string(index) + " is not an integer: " + text);
  return value;
}

double double_column(const db_row& row, std::size_t index) {
  const std::string& text = present(row, index);
  errno = 0;
  char* end = nullptr;
  const double value = std::strtod(text.c_str(), &end);
  if (text.empty() || *end != '\0' || errno == ERANGE)
    throw std::runtime_error("column " + std::to_string(index) + " is not a number: " + text);
  return value;
}

bool bool_column(const db_row& row, std::size_t index) {
  const std::string& text = present(row, index);
  if (text == "t" || text == "true") return true;
  if (text == "f" || text == "false") return false;
  throw std::runtime_error("column " + std::to_string(index) + " is not a boolean: " + text);
}

std::string text_column(const db_row& row, std::size_t index) {
  if (index >= row.size())
    throw std::runtime_error("column " + std::to_string(index) + " is missing");
  return row[index] ? *row[index] : std::string{};
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

std::string sql_number(double value) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.17g", value);
  return buffer;
}

}  // namespace sbm::speakers

#include "actors/patterns/pattern_rows.hpp"

#include "runtime/db/rows.hpp"
#include "runtime/domain/ids.hpp"
#include "runtime/domain/vocabulary.hpp"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <utility>

namespace sbm::patterns {

namespace {

using domain::max_id_bytes;
constexpr std::size_t max_categories = 64;

// Comma-separated hex items, decoded in order; '' is no item at all.
constexpr const char* categories_from_param =
    "ARRAY(SELECT convert_from(decode(h, 'hex'), 'UTF8') "
    "FROM unnest(string_to_array($8::text, ',')) WITH ORDINALITY AS c(h, n) ORDER BY n)";

constexpr const char* categories_to_column =
    "array_to_string(ARRAY(SELECT encode(convert_to(c, 'UTF8'), 'hex') "
    "FROM unnest(error_categories) WITH ORDINALITY AS u(c, n) ORDER BY n), ',')";

// Decimal text PostgreSQL parses back to the identical double.
std::string sql_number(double value) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.17g", value);
  return buffer;
}

std::string join_hex(const std::vector<std::string>& items) {
  std::string out;
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += ',';
    out += to_hex(items[i]);
  }
  return out;
}

std::vector<std::string> split_hex(const std::string& joined) {
  std::vector<std::string> out;
  if (joined.empty()) return out;
  std::size_t start = 0;
  for (;;) {
    const std::size_t comma = joined.find(',', start);
    out.push_back(from_hex(joined.substr(start, comma - start)));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

}  // namespace

std::string to_hex(const std::string& bytes) {
  static const char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out += digits[c >> 4];
    out += digits[c & 0x0f];
  }
  return out;
}

std::string from_hex(const std::string& hex) {
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    throw std::runtime_error("malformed hex text");
  };
  if (hex.size() % 2 != 0) throw std::runtime_error("malformed hex text");
  std::string out;
  out.reserve(hex.size() / 2);
  for (std::size_t i = 0; i < hex.size(); i += 2)
    out += static_cast<char>(nibble(hex[i]) * 16 + nibble(hex[i + 1]));
  return out;
}

db_statement upsert_statement(const pattern_record& r, const std::string& embedder_name) {
  static const std::string sql =
      std::string(
          "INSERT INTO patterns.patterns (pattern_id, speaker_id, client_id, bucket_type, "
          "original_text, corrected_text, context_text, error_categories, audio_quality, "
          "speaker_clarity, background_noise, number_of_speakers, overlapping_speech, "
          "requires_specialized_knowledge, status, weight, embedder, created_at, saga_revision) "
          "VALUES ($1::bigint, $2, $3, $4, $5, $6, $7, ") +
      categories_from_param +
      ", $9, $10, $11, $12::integer, $13::boolean, $14::boolean, $15, $16::double precision, $17, "
      "CASE WHEN $18::bigint > 0 THEN timestamptz 'epoch' + $18::bigint * interval '1 millisecond' "
      "ELSE now() END, $19::bigint) "
      "ON CONFLICT (pattern_id) DO UPDATE SET speaker_id = EXCLUDED.speaker_id, "
      "client_id = EXCLUDED.client_id, bucket_type = EXCLUDED.bucket_type, "
      "original_text = EXCLUDED.original_text, corrected_text = EXCLUDED.corrected_text, "
      "context_text = EXCLUDED.context_text, error_categories = EXCLUDED.error_categories, "
      "audio_quality = EXCLUDED.audio_quality, speaker_clarity = EXCLUDED.speaker_clarity, "
      "background_noise = EXCLUDED.background_noise, "
      "number_of_speakers = EXCLUDED.number_of_speakers, "
      "overlapping_speech = EXCLUDED.overlapping_speech, "
      "requires_specialized_knowledge = EXCLUDED.requires_specialized_knowledge, "
      "status = EXCLUDED.status, weight = EXCLUDED.weight, embedder = EXCLUDED.embedder, "
      "created_at = CASE WHEN $18::bigint > 0 THEN EXCLUDED.created_at "
      "ELSE patterns.patterns.created_at END, saga_revision = EXCLUDED.saga_revision "
      "WHERE patterns.patterns.saga_revision <= EXCLUDED.saga_revision "
      "RETURNING version, (extract(epoch from created_at) * 1000)::bigint";
  return {sql,
          {std::to_string(r.pattern_id), r.speaker_id, r.client_id, r.bucket_type, r.original_text,
           r.corrected_text, r.context_text, join_hex(r.error_categories), r.audio_quality,
           r.speaker_clarity, r.background_noise, std::to_string(r.number_of_speakers),
           std::string(r.overlapping_speech ? "true" : "false"),
           std::string(r.requires_specialized_knowledge ? "true" : "false"), r.status,
           sql_number(r.weight), embedder_name, std::to_string(r.created_at_ms),
           std::to_string(r.saga_revision)},
          -1};  // no row: the stored one came from a newer saga revision
}

db_statement delete_statement(std::int64_t pattern_id) {
  return {"DELETE FROM patterns.patterns WHERE pattern_id = $1::bigint",
          {std::to_string(pattern_id)},
          -1};
}

db_statement page_statement(std::int64_t after, std::uint32_t limit) {
  static const std::string sql =
      std::string(
          "SELECT pattern_id, speaker_id, client_id, bucket_type, original_text, corrected_text, "
          "context_text, ") +
      categories_to_column +
      ", audio_quality, speaker_clarity, background_noise, number_of_speakers, "
      "overlapping_speech, requires_specialized_knowledge, status, weight, "
      "(extract(epoch from created_at) * 1000)::bigint, version "
      "FROM patterns.patterns WHERE pattern_id > $1::bigint ORDER BY pattern_id LIMIT $2::integer";
  return {sql, {std::to_string(after), std::to_string(limit)}, -1};
}

db_statement digest_statement() {
  return {"SELECT (SELECT instance_id::text FROM patterns.instance), count(*), "
          "coalesce(max(version), 0), "
          "(coalesce(sum(version::numeric), 0) % 18446744073709551616)::text, "
          "(coalesce(sum(pattern_id::numeric * version), 0) % 18446744073709551616)::text "
          "FROM patterns.patterns",
          {},
          -1};
}

pattern_entry entry_from_row(const db_row& row) {
  pattern_entry e;
  e.pattern_id = db::int_column(row, 0);
  e.speaker_id = db::required_text(row, 1);
  e.client_id = db::required_text(row, 2);
  e.bucket_type = db::required_text(row, 3);
  e.original_text = db::required_text(row, 4);
  e.corrected_text = db::required_text(row, 5);
  e.context_text = db::required_text(row, 6);
  e.error_categories = split_hex(db::required_text(row, 7));
  e.audio_quality = db::required_text(row, 8);
  e.speaker_clarity = db::required_text(row, 9);
  e.background_noise = db::required_text(row, 10);
  e.number_of_speakers = static_cast<std::int32_t>(db::int_column(row, 11));
  e.overlapping_speech = db::bool_column(row, 12);
  e.requires_specialized_knowledge = db::bool_column(row, 13);
  e.status = db::required_text(row, 14);
  e.weight = db::double_column(row, 15);
  e.created_at_ms = db::int_column(row, 16);
  e.version = db::int_column(row, 17);
  return e;
}

durable_state durable_state_from_row(const db_row& row) {
  durable_state out;
  out.instance_id = db::required_text(row, 0);
  out.digest.count = db::unsigned_column(row, 1);
  out.digest.max_version = db::int_column(row, 2);
  out.digest.version_sum = db::unsigned_column(row, 3);
  out.digest.id_version_sum = db::unsigned_column(row, 4);
  return out;
}

std::pair<std::int64_t, std::int64_t> upserted_from_rows(const db_rows& rows) {
  if (rows.rows.size() != 1) throw std::runtime_error("upsert returned no row");
  return {db::int_column(rows.rows[0], 0), db::int_column(rows.rows[0], 1)};
}

std::optional<std::string> invalid_record(const pattern_record& r, std::size_t max_text_bytes) {
  auto too_long = [&](const std::string& s) { return s.size() > max_text_bytes; };
  if (r.pattern_id <= 0) return "pattern_id: must be positive";
  if (auto why = domain::id_problem(r.speaker_id)) return "speaker_id: " + *why;
  if (r.client_id.size() > max_id_bytes) return "client_id: at most " + std::to_string(max_id_bytes) + " bytes";
  if (r.bucket_type.size() > max_id_bytes) return "bucket_type: at most " + std::to_string(max_id_bytes) + " bytes";
  if (r.original_text.empty()) return "original_text: must not be empty";
  if (too_long(r.original_text)) return "original_text: too long";
  if (too_long(r.corrected_text)) return "corrected_text: too long";
  if (too_long(r.context_text)) return "context_text: too long";
  if (r.error_categories.size() > max_categories) return "error_categories: at most 64";
  for (const auto& c : r.error_categories)
    if (c.empty() || c.size() > max_id_bytes)
      return "error_categories: each must be 1 to " + std::to_string(max_id_bytes) + " bytes";
  if (r.audio_quality.size() > max_id_bytes || r.speaker_clarity.size() > max_id_bytes ||
      r.background_noise.size() > max_id_bytes)
    return "audio metadata: at most " + std::to_string(max_id_bytes) + " bytes each";
  if (!domain::is_one_of(domain::report_statuses, r.status))
    return "status: must be " + domain::choices_text(domain::report_statuses);
  if (!std::isfinite(r.weight) || r.weight < 0 || r.weight > 1) return "weight: must be in [0, 1]";
  if (r.created_at_ms < 0) return "created_at_ms: must not be negative";
  return std::nullopt;
}

void canonicalise(pattern_record& r) {
  auto& c = r.error_categories;
  std::sort(c.begin(), c.end());
  c.erase(std::unique(c.begin(), c.end()), c.end());
}

pattern_entry to_entry(const pattern_record& r, std::int64_t version, std::int64_t created_at_ms) {
  pattern_entry e;
  e.pattern_id = r.pattern_id;
  e.speaker_id = r.speaker_id;
  e.client_id = r.client_id;
  e.bucket_type = r.bucket_type;
  e.original_text = r.original_text;
  e.corrected_text = r.corrected_text;
  e.context_text = r.context_text;
  e.error_categories = r.error_categories;
  e.audio_quality = r.audio_quality;
  e.speaker_clarity = r.speaker_clarity;
  e.background_noise = r.background_noise;
  e.number_of_speakers = r.number_of_speakers;
  e.overlapping_speech = r.overlapping_speech;
  e.requires_specialized_knowledge = r.requires_specialized_knowledge;
  e.status = r.status;
  e.weight = r.weight;
  e.created_at_ms = created_at_ms;
  e.version = version;
  return e;
}

pattern_record to_record(const pattern_entry& e) {
  pattern_record r;
  r.pattern_id = e.pattern_id;
  r.speaker_id = e.speaker_id;
  r.client_id = e.client_id;
  r.bucket_type = e.bucket_type;
  r.original_text = e.original_text;
  r.corrected_text = e.corrected_text;
  r.context_text = e.context_text;
  r.error_categories = e.error_categories;
  r.audio_quality = e.audio_quality;
  r.speaker_clarity = e.speaker_clarity;
  r.background_noise = e.background_noise;
  r.number_of_speakers = e.number_of_speakers;
  r.overlapping_speech = e.overlapping_speech;
  r.requires_specialized_knowledge = e.requires_specialized_knowledge;
  r.status = e.status;
  r.weight = e.weight;
  r.created_at_ms = e.created_at_ms;
  return r;
}

search_filter to_filter(const pattern_filter& f) {
  search_filter out;
  out.speaker_id = f.speaker_id;
  out.client_id = f.client_id;
  out.bucket_type = f.bucket_type;
  out.audio_quality = f.audio_quality;
  out.status = f.status;
  out.error_category = f.error_category;
  if (f.requires_specialized_knowledge) out.requires_specialized_knowledge = *f.requires_specialized_knowledge;
  out.from_ms = f.from_ms;
  out.to_ms = f.to_ms;
  out.min_weight = f.min_weight;
  if (f.scope.limited) out.client_ids = f.scope.client_ids;
  return out;
}

}  // namespace sbm::patterns

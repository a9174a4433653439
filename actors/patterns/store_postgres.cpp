// The pattern store over PostgreSQL: the only file with the patterns family's SQL. Parameters
// always travel separate from the SQL text: writes as one JSON parameter, categories read back as
// one column of comma-separated hex items, so no character of theirs needs escapes. Values come
// back from the connection actor as PostgreSQL prints them.
#include <nlohmann/json.hpp>

#include <cstdio>
#include <stdexcept>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "actors/patterns/store.hpp"
#include "messages/errors.hpp"
#include "runtime/db/commit.hpp"
#include "runtime/db/rows.hpp"

namespace sbm::patterns {

namespace {

using db::read_into;

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

constexpr const char* categories_to_column =
    "array_to_string(ARRAY(SELECT encode(convert_to(c, 'UTF8'), 'hex') "
    "FROM unnest(error_categories) WITH ORDINALITY AS u(c, n) ORDER BY n), ',')";

// Decimal text PostgreSQL parses back to the identical double.
std::string sql_number(double value) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.17g", value);
  return buffer;
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

// Many records in one statement: rows as positional JSON arrays (the order of upsert_statement's
// parameters; categories as a JSON array, weight as the decimal text sql_number gives). A record
// without created_at keeps the stored row's, read in the SELECT, since DO UPDATE sees only EXCLUDED.
db_statement upsert_batch_statement(const std::vector<pattern_record>& records, const std::string& embedder_name) {
  static const std::string sql =
      "INSERT INTO patterns.patterns (pattern_id, speaker_id, client_id, bucket_type, "
      "original_text, corrected_text, context_text, error_categories, audio_quality, "
      "speaker_clarity, background_noise, number_of_speakers, overlapping_speech, "
      "requires_specialized_knowledge, status, weight, embedder, created_at, saga_revision) "
      "SELECT (r->>0)::bigint, r->>1, r->>2, r->>3, r->>4, r->>5, r->>6, "
      "ARRAY(SELECT c FROM jsonb_array_elements_text(r->7) WITH ORDINALITY AS u(c, n) ORDER BY n), "
      "r->>8, r->>9, r->>10, (r->>11)::integer, (r->>12)::boolean, (r->>13)::boolean, r->>14, "
      "(r->>15)::double precision, $2, "
      "CASE WHEN (r->>16)::bigint > 0 THEN timestamptz 'epoch' + (r->>16)::bigint * interval '1 millisecond' "
      "ELSE coalesce((SELECT p.created_at FROM patterns.patterns p WHERE p.pattern_id = (r->>0)::bigint), now()) END, "
      "(r->>17)::bigint "
      "FROM jsonb_array_elements($1::jsonb) AS rows(r) "
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
      "created_at = EXCLUDED.created_at, saga_revision = EXCLUDED.saga_revision "
      "WHERE patterns.patterns.saga_revision <= EXCLUDED.saga_revision "
      "RETURNING pattern_id, version, (extract(epoch from created_at) * 1000)::bigint";
  nlohmann::json rows = nlohmann::json::array();
  for (const auto& r : records)
    rows.push_back({r.pattern_id, r.speaker_id, r.client_id, r.bucket_type, r.original_text,
                    r.corrected_text, r.context_text, r.error_categories, r.audio_quality,
                    r.speaker_clarity, r.background_noise, r.number_of_speakers, r.overlapping_speech,
                    r.requires_specialized_knowledge, r.status, sql_number(r.weight), r.created_at_ms,
                    r.saga_revision});
  // strict: invalid UTF-8 throws here (the caller answers invalid_argument), as PostgreSQL would refuse it.
  return {sql, {rows.dump(-1, ' ', false, nlohmann::json::error_handler_t::strict), embedder_name}, -1};
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


class postgres_store final : public store {
 public:
  explicit postgres_store(db::store_link link) : link_{std::move(link)} {}

  void durable(completion<durable_state> done) override {
    link_.query(digest_statement(), [done](caf::expected<db_rows> rows) {
      read_into<durable_state>(rows, done, "pattern digest", [](const db_rows& r) {
        if (r.rows.size() != 1) throw std::runtime_error("digest query returned no row");
        return durable_state_from_row(r.rows.front());
      });
    });
  }

  void page(std::int64_t after, std::uint32_t limit, completion<std::vector<pattern_entry>> done) override {
    link_.query(page_statement(after, limit), [done](caf::expected<db_rows> rows) {
      read_into<std::vector<pattern_entry>>(rows, done, "pattern row", [](const db_rows& r) {
        std::vector<pattern_entry> out;
        out.reserve(r.rows.size());
        for (const auto& row : r.rows) out.push_back(entry_from_row(row));
        return out;
      });
    });
  }

  // A batch of one: one statement for both.
  void upsert(const pattern_record& record, const std::string& embedder_name, completion<upserted> done) override {
    upsert_batch({record}, embedder_name, [done](caf::expected<std::vector<upserted>> got) {
      if (!got) return done(std::move(got.error()));
      done(got->empty() ? upserted{} : got->front());
    });
  }

  // One commit for the batch, unflushed (runtime/db/commit.hpp): the report saga is the writer,
  // and it re-runs the step from its outbox row if a PostgreSQL crash loses the rows together with
  // the step's acknowledgement, which the WAL holds after them.
  void upsert_batch(const std::vector<pattern_record>& records, const std::string& embedder_name,
                    completion<std::vector<upserted>> done) override {
    if (records.empty()) return done(std::vector<upserted>{});
    std::unordered_set<std::int64_t> ids;
    for (const auto& r : records)
      if (!ids.insert(r.pattern_id).second)
        return done(make_error(errc::invalid_argument,
                               "patterns: pattern_id " + std::to_string(r.pattern_id) + " twice in one batch"));
    db_statement stmt;
    try {
      stmt = upsert_batch_statement(records, embedder_name);
    } catch (const std::exception& e) {
      return done(make_error(errc::invalid_argument, std::string("patterns: ") + e.what()));
    }
    auto order = std::make_shared<std::vector<std::int64_t>>();
    order->reserve(records.size());
    for (const auto& r : records) order->push_back(r.pattern_id);
    link_.transact(db::unflushed({std::move(stmt)}), [done, order](caf::expected<db_results> res) {
      read_into<std::vector<upserted>>(res, done, "upserted pattern", [&order](const db_results& r) {
        std::unordered_map<std::int64_t, upserted> by_id;
        if (!r.results.empty())
          for (const auto& row : r.results[0].rows) {
            upserted u;
            u.applied = true;
            u.version = db::int_column(row, 1);
            u.created_at_ms = db::int_column(row, 2);
            by_id[db::int_column(row, 0)] = u;
          }
        // A record without a row came from an older saga revision than the stored one.
        std::vector<upserted> out;
        out.reserve(order->size());
        for (auto id : *order) out.push_back(by_id.count(id) > 0 ? by_id[id] : upserted{});
        return out;
      });
    });
  }

  void erase(std::int64_t pattern_id, completion<bool> done) override {
    link_.query(delete_statement(pattern_id), [done](caf::expected<db_rows> rows) {
      read_into<bool>(rows, done, "deleted pattern", [](const db_rows& r) { return r.affected > 0; });
    });
  }

 private:
  db::store_link link_;
};

}  // namespace

std::unique_ptr<store> make_postgres_store(const db::store_link& link) {
  return std::make_unique<postgres_store>(link);
}

}  // namespace sbm::patterns

#pragma once
// patterns.patterns as the pattern index actor writes and reads it: the statements (parameters
// always separate from the SQL text), the row parser, and the conversions between the message
// type and the core's entry. Values come back from the connection actor as PostgreSQL prints them.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "actors/patterns/core/pattern_index.hpp"
#include "messages/connections.hpp"
#include "messages/patterns.hpp"

namespace sbm::patterns {

// Insert or replace by pattern_id. created_at keeps the stored value when the record's is 0 (and
// is now() for a new row). Returns one row: version, created_at in ms.
db_statement upsert_statement(const pattern_record& record, const std::string& embedder_name);

// Affects one row when the pattern existed, none otherwise.
db_statement delete_statement(std::int64_t pattern_id);

// Up to `limit` rows with pattern_id > after, ascending, in the order entry_from_row reads.
db_statement page_statement(std::int64_t after, std::uint32_t limit);

// One row: the instance id of patterns.instance, count, max(version), sum(version) mod 2^64,
// sum(pattern_id * version) mod 2^64.
db_statement digest_statement();

struct durable_state {
  std::string instance_id;
  version_digest digest;
};

// Throws std::runtime_error when a column is missing or malformed.
pattern_entry entry_from_row(const db_row& row);
durable_state durable_state_from_row(const db_row& row);
// What upsert_statement returned: {version, created_at_ms}.
std::pair<std::int64_t, std::int64_t> upserted_from_rows(const db_rows& rows);

// What a pattern must satisfy before it is written; the problem names the field.
std::optional<std::string> invalid_record(const pattern_record& record, std::size_t max_text_bytes);

// Categories become a set (sorted, once each): the index holds them as one, and the row and the
// memory must read back the same after a restart.
void canonicalise(pattern_record& record);

pattern_entry to_entry(const pattern_record& record, std::int64_t version,
                       std::int64_t created_at_ms);
pattern_record to_record(const pattern_entry& entry);
search_filter to_filter(const pattern_filter& filter);

// Text as lowercase hex of its bytes: how categories travel through one text parameter or column
// without any character of theirs needing escapes.
std::string to_hex(const std::string& bytes);
std::string from_hex(const std::string& hex);  // throws std::runtime_error on a malformed string

}  // namespace sbm::patterns

#pragma once
// A pattern as the pattern index actor receives, checks and holds it: the checks before a write
// and the conversions between the message type and the core's entry (no SQL: store.hpp).
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "actors/patterns/core/pattern_index.hpp"
#include "messages/patterns.hpp"

namespace sbm::patterns {

// What a pattern must satisfy before it is written; the problem names the field.
std::optional<std::string> invalid_record(const pattern_record& record, std::size_t max_text_bytes);

// Categories become a set (sorted, once each): the index holds them as one, and the row and the
// memory must read back the same after a restart.
void canonicalise(pattern_record& record);

pattern_entry to_entry(const pattern_record& record, std::int64_t version,
                       std::int64_t created_at_ms);
pattern_record to_record(const pattern_entry& entry);
search_filter to_filter(const pattern_filter& filter);

}  // namespace sbm::patterns

#pragma once
// The speakers table as this family reads it: one column list and one parser, shared by the speaker
// actor (load) and the shard (list), so the two can never disagree about column order. Values come
// back from the connection actor as text, exactly as PostgreSQL prints them.
#include <cstddef>
#include <cstdint>
#include <string>

#include "messages/connections.hpp"
#include "messages/speakers.hpp"
#include "runtime/db/rows.hpp"

namespace sbm::speakers {

// SELECT list of speakers.speakers in the order speaker_from_row expects (no leading SELECT).
extern const char* const speaker_columns;

struct speaker_record {
  speaker_view view;
  std::int64_t version = 0;
};

// Throws std::runtime_error when a column is missing or malformed: a corrupt row is a failure of
// the reader, which its supervisor handles, not a value to guess at.
speaker_record speaker_from_row(const db_row& row, std::uint32_t window_capacity);

using db::bool_column;
using db::double_column;
using db::int_column;
using db::text_column;

// Decimal text that PostgreSQL parses back to the identical double.
std::string sql_number(double value);

}  // namespace sbm::speakers

#pragma once
// The speakers table as this family reads it: one column list and one parser, shared by the speaker
// actor (load) and the shard (list), so the two can never disagree about column order. Values come
// back from the connection actor as text, exactly as PostgreSQL prints them.
#include <cstddef>
#include <cstdint>
#include <string>

#include <caf/expected.hpp>

#include "messages/connections.hpp"
#include "messages/speakers.hpp"
#include "runtime/db/rows.hpp"

namespace sbm::speakers {

// Outbox topic of audit entries committed with a pin or unpin (the relay delivers them).
inline constexpr const char* audit_topic = "audit.record";

// SELECT list of speakers.speakers in the order speaker_from_row expects (no leading SELECT).
extern const char* const speaker_columns;
inline constexpr std::size_t speaker_column_count = 15;

struct speaker_record {
  speaker_view view;
  std::int64_t version = 0;
};

// Throws std::runtime_error when a column is missing or malformed: a corrupt row is a failure of
// the reader, which its supervisor handles, not a value to guess at.
speaker_record speaker_from_row(const db_row& row, std::uint32_t window_capacity);

// What an Idempotency-Key stores for a speaker write: the row as the write left it, as a JSON array
// of speaker_columns (json_build_array over the same list), read back by speaker_from_answer.
// $5 is the speaker id.
const std::string& speaker_answer_sql();

// Throws std::runtime_error when the stored answer is not such an array.
speaker_record speaker_from_answer(const std::string& answer, std::uint32_t window_capacity);

using db::bool_column;
using db::double_column;
using db::int_column;
using db::text_column;

// The newest `fetch` samples of q's speaker in q's range, newest first, in one statement that
// also answers whether the speaker exists within q.scope: no row at all means it does not (or is
// another client's), one row of NULLs that it has no samples there.
db_statement samples_statement(const samples_query& q, std::uint32_t fetch);

// Reads samples_statement's rows into `out` (oldest first, at most `limit`, `truncated` when more
// came). False when the speaker is not visible. Throws std::runtime_error on a corrupt row.
bool samples_from_rows(const db_rows& rows, std::uint32_t limit, quality_samples& out);

// Decimal text that PostgreSQL parses back to the identical double.
std::string sql_number(double value);

}  // namespace sbm::speakers

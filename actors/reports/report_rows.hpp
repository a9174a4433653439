#pragma once
// The reports tables as this family reads them: one SELECT list and one parser per shape, shared by
// the reports actor and the saga so the column order is written down once. Values arrive as text,
// exactly as PostgreSQL prints them; a value that cannot be read throws std::runtime_error (a
// corrupt row is the reader's failure, not the caller's).
#include <caf/fwd.hpp>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "messages/connections.hpp"
#include "messages/patterns.hpp"
#include "messages/reports.hpp"
#include "actors/reports/store.hpp"
#include "runtime/db/rows.hpp"

namespace sbm::reports {

// SELECT list over `reports.error_reports r LEFT JOIN reports.report_saga s ON s.report_id = r.id`
// in the order report_from_row expects (no leading SELECT).
extern const char* const report_columns;

// The notes stay their stored tokens (NULL: none); the reports actor decrypts them.
stored_report report_from_row(const db_row& row);

// SELECT list over `reports.report_saga s JOIN reports.error_reports r ON r.id = s.report_id`
// for the saga: its position first, then what the pattern index needs.
extern const char* const saga_columns;

saga_position saga_from_row(const db_row& row);

// SELECT list over reports.saga_log in the order log_entry_from_row expects.
extern const char* const log_columns;
saga_entry log_entry_from_row(const db_row& row);

// The filings' group commit: one statement (one round trip, one flushed commit) writes a batch,
// each report with its saga row (the outbox), its first log line and its Idempotency-Key. $1: the
// rows as one JSON array of arrays, positional (no key per value to build and to parse): ord,
// speaker_id, client_id, job_id, original_text, corrected_text, context_text, error_categories (an
// array), bucket_type, audio_quality, speaker_clarity, background_noise, number_of_speakers,
// overlapping_speech, requires_specialized_knowledge, additional_notes_token,
// context_notes_token, filed_by, note, principal, idem_key, request_digest (null for none).
// $2: the saga claim in milliseconds, $3: the claimant. Answers one row per input
// row: ord, id, created_at in ms, and whether it was written (false: its key was stored by
// another request meanwhile, and nothing of this row was written).
extern const char* const filing_batch_sql;

// InstaNote's job check for many filings at once: $1 is a JSON array of job ids; answers
// (job_id, speaker_id) for those InstaNote has, in no particular order.
extern const char* const job_owners_sql;

// Categories travel to PostgreSQL as one text parameter: they are validated members of a fixed
// enumeration (lowercase letters and '_'), so a comma can never occur inside one.
std::string join_categories(const std::vector<std::string>& categories);
std::vector<std::string> split_categories(const std::string& joined);

using db::bool_column;
using db::double_column;
using db::int_column;
using db::text_column;

}  // namespace sbm::reports

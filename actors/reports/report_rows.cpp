#include "actors/reports/report_rows.hpp"

#include <caf/actor_system.hpp>
#include <caf/error.hpp>

#include <cerrno>
#include <cstdlib>
#include <stdexcept>

#include "messages/errors.hpp"

namespace sbm::reports {

// Times are floored to milliseconds, so a report's created_at_ms used as a "from" or "to" bound
// (both inclusive at millisecond precision) always includes that report.
const char* const report_columns =
  "r.id, r.speaker_id, r.client_id, r.job_id, r.original_text, r.corrected_text, r.context_text, "
  "array_to_string(r.error_categories, ','), r.bucket_type, r.audio_quality, r.speaker_clarity, "
  "r.background_noise, r.number_of_speakers, r.overlapping_speech, "
  "r.requires_specialized_knowledge, r.additional_notes_token, r.context_notes_token, r.status, "
  "r.weight, r.filed_by, floor(extract(epoch from r.created_at) * 1000)::bigint, "
  "floor(extract(epoch from r.updated_at) * 1000)::bigint, coalesce(s.step, 'done'), "
  "coalesce(s.attempts, 0), s.last_error";

const char* const saga_columns =
  "s.step, s.revision, s.attempts, r.id, r.speaker_id, r.client_id, r.bucket_type, "
  "r.original_text, r.corrected_text, r.context_text, array_to_string(r.error_categories, ','), "
  "r.audio_quality, r.speaker_clarity, r.background_noise, r.number_of_speakers, "
  "r.overlapping_speech, r.requires_specialized_knowledge, r.status, r.weight, "
  "floor(extract(epoch from r.created_at) * 1000)::bigint";

// Ids are drawn first so each answer finds its own id (a skipped row leaves a gap, which is
// harmless). ON CONFLICT DO NOTHING waits for a concurrent writer of the same key and then skips
// that row, so one request that lost a race does not fail the others in its batch. The claim
// starts now because this node runs the sagas right after the commit.
const char* const filing_batch_sql =
  "WITH input AS MATERIALIZED (SELECT nextval(pg_get_serial_sequence('reports.error_reports', 'id')) "
  "AS id, (r->>0)::integer AS ord, r->>1 AS speaker_id, r->>2 AS client_id, r->>3 AS job_id, "
  "r->>4 AS original_text, r->>5 AS corrected_text, r->>6 AS context_text, "
  "ARRAY(SELECT jsonb_array_elements_text(r->7)) AS error_categories, r->>8 AS bucket_type, "
  "r->>9 AS audio_quality, r->>10 AS speaker_clarity, r->>11 AS background_noise, "
  "(r->>12)::integer AS number_of_speakers, (r->>13)::boolean AS overlapping_speech, "
  "(r->>14)::boolean AS requires_specialized_knowledge, r->>15 AS additional_notes_token, "
  "r->>16 AS context_notes_token, r->>17 AS filed_by, r->>18 AS note, r->>19 AS principal, "
  "r->>20 AS idem_key, r->>21 AS request_digest FROM jsonb_array_elements($1::jsonb) AS rows(r)), "
  "keyed AS (INSERT INTO reports.idempotency_keys (principal, idem_key, request_digest, outcome, "
  "answer) SELECT principal, idem_key, request_digest, 0, id::text FROM input "
  "WHERE idem_key IS NOT NULL "
  // One order for every batch: two batches holding the same keys (a burst re-sent to two nodes)
  // wait for each other's first shared key instead of deadlocking on the unique index.
  "ORDER BY principal, idem_key ON CONFLICT (principal, idem_key) DO NOTHING RETURNING principal, idem_key), "
  "fresh AS MATERIALIZED (SELECT i.* FROM input i WHERE i.idem_key IS NULL OR EXISTS "
  "(SELECT 1 FROM keyed k WHERE k.principal = i.principal AND k.idem_key = i.idem_key)), "
  "report AS (INSERT INTO reports.error_reports (id, speaker_id, client_id, job_id, original_text, "
  "corrected_text, context_text, error_categories, bucket_type, audio_quality, speaker_clarity, "
  "background_noise, number_of_speakers, overlapping_speech, requires_specialized_knowledge, "
  "additional_notes_token, context_notes_token, filed_by) SELECT id, speaker_id, client_id, job_id, "
  "original_text, corrected_text, context_text, error_categories, bucket_type, audio_quality, "
  "speaker_clarity, background_noise, number_of_speakers, overlapping_speech, "
  "requires_specialized_knowledge, additional_notes_token, context_notes_token, filed_by FROM fresh), "
  "saga AS (INSERT INTO reports.report_saga (report_id, step, next_attempt_at, claim) SELECT id, "
  "'index', now() + make_interval(secs => $2::double precision / 1000), $3 FROM fresh), "
  "entry AS (INSERT INTO reports.saga_log (report_id, step, note) SELECT id, 'store', note FROM fresh) "
  "SELECT i.ord, i.id, floor(extract(epoch from now()) * 1000)::bigint, "
  "EXISTS (SELECT 1 FROM fresh f WHERE f.ord = i.ord) FROM input i";

const char* const job_owners_sql =
  "SELECT j.job_id, j.speaker_id FROM public.draft_jobs j "
  // An array, not IN (subquery): one index scan whatever plan the prepared statement settles on.
  "WHERE j.job_id = ANY (ARRAY(SELECT jsonb_array_elements_text($1::jsonb)))";

const char* const log_columns = "floor(extract(epoch from created_at) * 1000)::bigint, step, note";

std::string join_categories(const std::vector<std::string>& categories) {
  std::string out;
  for (const auto& c : categories) {
    if (!out.empty()) out += ',';
    out += c;
  }
  return out;
}

std::vector<std::string> split_categories(const std::string& joined) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start < joined.size()) {
    auto comma = joined.find(',', start);
    if (comma == std::string::npos) comma = joined.size();
    out.push_back(joined.substr(start, comma - start));
    start = comma + 1;
  }
  return out;
}

stored_report report_from_row(const db_row& row) {
  stored_report out;
  auto& r = out.report;
  r.id = int_column(row, 0);
  auto& f = r.fields;
  f.speaker_id = text_column(row, 1);
  f.client_id = text_column(row, 2);
  f.job_id = text_column(row, 3);
  f.original_text = text_column(row, 4);
  f.corrected_text = text_column(row, 5);
  f.context_text = text_column(row, 6);
  f.error_categories = split_categories(text_column(row, 7));
  r.bucket_type = text_column(row, 8);
  f.audio_quality = text_column(row, 9);
  f.speaker_clarity = text_column(row, 10);
  f.background_noise = text_column(row, 11);
  f.number_of_speakers = static_cast<std::int32_t>(int_column(row, 12));
  f.overlapping_speech = bool_column(row, 13);
  f.requires_specialized_knowledge = bool_column(row, 14);
  // NULL means no note; an empty token is not a Fernet token, so it goes to the reader (and fails).
  if (row.size() > 15 && row[15]) out.additional_token = *row[15];
  if (row.size() > 16 && row[16]) out.context_token = *row[16];
  r.status = text_column(row, 17);
  r.weight = double_column(row, 18);
  f.actor = text_column(row, 19);
  r.created_at_ms = int_column(row, 20);
  r.updated_at_ms = int_column(row, 21);
  r.saga_step = text_column(row, 22);
  r.saga_attempts = static_cast<std::int32_t>(int_column(row, 23));
  r.saga_last_error = text_column(row, 24);
  return out;
}

saga_position saga_from_row(const db_row& row) {
  saga_position s;
  s.step = text_column(row, 0);
  s.revision = int_column(row, 1);
  s.attempts = static_cast<std::int32_t>(int_column(row, 2));
  auto& p = s.pattern;
  p.pattern_id = int_column(row, 3);
  p.speaker_id = text_column(row, 4);
  p.client_id = text_column(row, 5);
  p.bucket_type = text_column(row, 6);
  p.original_text = text_column(row, 7);
  p.corrected_text = text_column(row, 8);
  p.context_text = text_column(row, 9);
  p.error_categories = split_categories(text_column(row, 10));
  p.audio_quality = text_column(row, 11);
  p.speaker_clarity = text_column(row, 12);
  p.background_noise = text_column(row, 13);
  p.number_of_speakers = static_cast<std::int32_t>(int_column(row, 14));
  p.overlapping_speech = bool_column(row, 15);
  p.requires_specialized_knowledge = bool_column(row, 16);
  p.status = text_column(row, 17);
  p.weight = double_column(row, 18);
  p.created_at_ms = int_column(row, 19);
  return s;
}

saga_entry log_entry_from_row(const db_row& row) {
  return {int_column(row, 0), text_column(row, 1), text_column(row, 2)};
}


}  // namespace sbm::reports

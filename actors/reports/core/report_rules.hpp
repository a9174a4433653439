#pragma once
// What makes an error report acceptable, and the small rules the report saga follows. Pure: no CAF,
// no I/O. The reports actor applies these to every submission whoever sends it (the gateway, a
// cluster peer, a test), so there is one definition of a valid report.
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <vector>

#include "runtime/domain/ids.hpp"
#include "runtime/domain/vocabulary.hpp"
#include "runtime/text/utf8.hpp"

namespace sbm::reports {

// The enumerations and the id rule are the shared vocabulary's (runtime/domain), named here too
// so the family's code reads as before.
using domain::audio_qualities;
using domain::background_noises;
using domain::choices_text;
using domain::error_categories;
using domain::id_problem;
using domain::is_one_of;
using domain::max_id_bytes;
using domain::max_speakers;
using domain::min_speakers;
using domain::report_statuses;
using domain::speaker_clarities;

struct report_limits {
  std::size_t max_text_bytes = 2000;    // original_text, corrected_text: the erroneous span
  std::size_t max_notes_bytes = 10000;  // additional_notes, context_notes, context_text
};

// Why a report is refused, naming the field. `unprocessable`: well-formed but wrong in meaning
// (HTTP 422), e.g. a correction identical to the original; otherwise malformed (HTTP 400).
struct field_problem {
  std::string field;
  std::string reason;
  bool unprocessable = false;
};

// The fields a submission carries, borrowed; see check_report below.
struct report_fields {
  std::string_view speaker_id;
  std::string_view client_id;
  std::string_view job_id;
  std::string_view original_text;
  std::string_view corrected_text;
  const std::vector<std::string>* error_categories = nullptr;
  std::string_view audio_quality;
  std::string_view speaker_clarity;
  std::string_view background_noise;
  std::int64_t number_of_speakers = 0;
  std::string_view additional_notes;
  std::string_view context_notes;
  std::string_view context_text;
};

// The first problem in field order, or nullopt. Ids: 1..128 bytes of UTF-8 without control
// characters or '/' (they appear in URLs). Texts: valid UTF-8, no NUL or control characters other
// than tab and line breaks; the span texts must not be blank. Categories: at least one, each from
// error_categories, no duplicates. original_text and corrected_text equal after trimming
// surrounding whitespace is `unprocessable`: such a report teaches nothing.
std::optional<field_problem> check_report(const report_fields& report, const report_limits& limits);

// The same for any struct with these members (the message type), without this header knowing it.
template <class Report>
std::optional<field_problem> check_report(const Report& r, const report_limits& limits) {
  report_fields f;
  f.speaker_id = r.speaker_id;
  f.client_id = r.client_id;
  f.job_id = r.job_id;
  f.original_text = r.original_text;
  f.corrected_text = r.corrected_text;
  f.error_categories = &r.error_categories;
  f.audio_quality = r.audio_quality;
  f.speaker_clarity = r.speaker_clarity;
  f.background_noise = r.background_noise;
  f.number_of_speakers = r.number_of_speakers;
  f.additional_notes = r.additional_notes;
  f.context_notes = r.context_notes;
  f.context_text = r.context_text;
  return check_report(f, limits);
}

using text::valid_utf8;

// --- the saga ------------------------------------------------------------------------------
// After the report and its saga row are committed together, these steps run in order; each is
// idempotent, so a step that may or may not have happened before a crash is simply run again.
enum class saga_step : std::uint8_t { index, notify, schedule, done };

std::string_view to_string(saga_step step);
std::optional<saga_step> parse_saga_step(std::string_view text);
// The step after `step` (done stays done).
saga_step next_step(saga_step step);

// While filings arrive the saga runs at a background share: at most `background` statements in
// flight for all its steps and acknowledgements together (its batches grow meanwhile instead), so
// filings get the database and the cores. Past `backlog` undone sagas it takes its full share
// again, so an endless stream of filings slows filings rather than growing the backlog without
// limit. background 0: the saga never yields.
struct saga_share_rule {
  std::uint32_t background = 1;
  std::uint32_t backlog = 2000;
};

// How many statements the saga may have in flight now (`full` when it does not yield).
std::uint32_t saga_statements_allowed(const saga_share_rule& rule, bool filings_arriving,
                                      std::size_t backlog, std::uint32_t full);

// A report on a no_touch speaker means drafts went out unedited with this error: verify first.
std::string_view verification_priority(std::string_view bucket_type);

// Seed 3.2: a verification moves the pattern's weight, rectified +0.1, not_rectified -0.1, within
// [0, 1]. Setting the status a report already has changes nothing, so a repeated PATCH is harmless.
double weight_after(std::string_view old_status, std::string_view new_status, double weight);

}  // namespace sbm::reports

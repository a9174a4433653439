#pragma once
// The demo InstaNote's drafts: clinical notes from curated templates, each with its clean
// reference, and per speaker a handful of systematic ASR errors that recur across that speaker's
// drafts, never letter for letter (another split point, another vowel, another dose with the same
// unit missing, capitalised at a sentence start). Deterministic for a seed. Pure: no CAF, and no
// I/O beyond reading the word list it is given a path to.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sbm::instanote {

enum class error_kind : std::uint8_t {
  split_word,      // "hypertension" -> "hyper tension" | "hyperten sion"
  vowel_slip,      // "erythema" -> "erythima" | "erythemo"
  drug_near_miss,  // "metoprolol" -> "metroprolol" | "metoprolo"
  dropped_unit,    // "metoprolol 25 mg" -> "metoprolol 25" (one drug's doses, any strength)
  homophone,       // "dysphagia" -> "dysphasia"
  surname,         // "Dr. Stevens" -> "Dr. Stephens" (both real colleagues somewhere)
};
inline constexpr error_kind all_error_kinds[] = {
  error_kind::split_word,   error_kind::vowel_slip, error_kind::drug_near_miss,
  error_kind::dropped_unit, error_kind::homophone,  error_kind::surname};

std::string_view kind_name(error_kind kind);  // "split_word", ...
// The error report category (SPEC's list) QA would file such an error under.
std::string_view category_of(error_kind kind);

// One speaker's systematic error. Word kinds: the clean word and the wrong forms the speaker uses
// for it. dropped_unit: clean_form is the unit, erroneous_forms is {""} (the unit is left out) and
// context the drug after whose doses it goes missing.
struct systematic_error {
  std::string error_id;  // "<speaker_id>:<kind>"
  error_kind kind;
  std::string clean_form;
  std::vector<std::string> erroneous_forms;
  std::string context;   // dropped_unit: the drug name; otherwise empty
};

struct speaker_profile {
  std::string speaker_id;  // "spk-001"
  std::string client_id;
  std::vector<std::string> colleagues;  // surnames this speaker names in notes
  std::vector<systematic_error> errors;
  double error_rate = 0.8;              // chance an occurrence of a target comes out wrong
  std::string audio_quality;            // usual recording quality: excellent|good|fair|poor
};

// Where a draft differs from its reference. Byte offsets, half-open, word-aligned; outside these
// spans draft and reference are the same bytes.
struct injected_error {
  std::string error_id;
  error_kind kind;
  std::size_t draft_begin = 0, draft_end = 0;
  std::size_t reference_begin = 0, reference_end = 0;
  std::string draft_span;      // what ASR wrote ("hyper tension", "metoprolol 25")
  std::string reference_span;  // what was said ("hypertension", "metoprolol 25 mg")
};

struct draft {
  std::string job_id;
  std::string speaker_id;
  std::string client_id;
  std::int64_t created_at = 0;  // unix seconds, UTC
  std::string draft_text;
  std::string reference_text;
  std::vector<injected_error> errors;   // in text order, never overlapping
  std::vector<std::string> error_types;  // categories present, sorted, distinct
  std::string audio_quality;
  double duration_seconds = 0;
};

struct generator_options {
  std::uint64_t seed = 1;
  std::uint32_t speakers = 10;
  std::uint32_t days = 30;
  std::uint32_t drafts_per_day = 2;  // per speaker
  std::int64_t start = 1793491200;   // unix seconds of day 0 (2026-11-01T00:00:00Z)
};

struct seeded_data {
  std::vector<speaker_profile> speakers;
  std::vector<draft> drafts;  // per speaker, oldest first
};

// Words from a hunspell .dic file: the first line (the count) skipped, flags after '/' stripped,
// kept only when lower-case ASCII letters of 8..16 characters with a condition's ending (-itis,
// -osis, -emia, -opathy, ...), so they read as conditions. nullopt (and *error set) when unreadable.
std::optional<std::vector<std::string>> load_vocabulary(const std::string& dic_path,
                                                        std::string* error);

// Limits that keep a client-chosen size from running away (the CLI refuses more).
inline constexpr std::uint32_t max_speakers = 10000;
inline constexpr std::uint32_t max_days = 3660;
inline constexpr std::uint32_t max_drafts_per_day = 100;

// speakers >= 2 (cross-speaker names need a colleague). `vocabulary` may be empty.
seeded_data generate(const generator_options& options, const std::vector<std::string>& vocabulary);

}  // namespace sbm::instanote

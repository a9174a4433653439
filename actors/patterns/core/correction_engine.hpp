#pragma once
// The correction engine: given a draft and the error patterns retrieved for its speaker, find where
// each pattern applies, score it, resolve overlaps and apply what is trusted enough. Pure: no CAF,
// no I/O, no clock; the pattern index actor's family drives it.
//
// How a pattern is matched. The draft is cut into word tokens (ASCII letters and digits, and every
// byte of a non-ASCII code point, so a token never splits a code point and accents, CJK, emoji and
// combining marks stay inside their word); everything else (spaces, ASCII punctuation) separates
// tokens. A token of digits (with inner '.' or ',' between digits, "12.5") is a number and is
// compared as a slot: "metoprolol 25" -> "metoprolol 25 mg" also fixes "metoprolol 50" into
// "metoprolol 50 mg". Windows of consecutive tokens are compared with the pattern's original (and
// with its corrected text, to catch variants of the same error), in this order of quality:
//   exact       the window's bytes are the original's bytes                      quality 1.00
//   normalised  same tokens ignoring ASCII case, spacing and punctuation         quality 0.95
//   respaced    same letters with the word split elsewhere ("hypert ension")     quality 0.90
//   fuzzy       one edit (substitution, transposition, or a letter dropped or    quality 0.80
//               doubled inside the word) from the original or the corrected text
// Fuzzy matching keeps the first letter, keeps the last letter when the length changes (so a plural
// or another inflection of the right word is not "fixed"), needs fuzzy_min_length letters, and is
// never used for homophone or speaker_attribution patterns: their neighbours are real words and
// real colleagues' names. When both the original and the corrected text of a pattern are one edit
// from a window, the match with the original is the one used. Matches are whole tokens only, never
// inside a longer word.
//
// Cost. Patterns are grouped by key (their tokens' letters run together), so a window of draft
// tokens costs one hash probe and a comparison with the few keys of its first byte and length +-1;
// preparing the patterns costs a few allocations whatever their number. A 1,000-word draft against
// 1,000 patterns takes well under a millisecond (bench/RESULTS.md); time grows linearly with the
// draft, and a draft is capped by its caller (drafts.max-bytes).
//
// Text that is already right is left alone: a window is skipped when the corrected text's tokens
// occur in the draft overlapping it ("88 mcg" never becomes "88 mcg mcg"), or when the replacement
// would not change its bytes.
//
// Confidence = quality x pattern weight. Candidates are resolved greedily, best confidence first
// (ties: longer span, lower pattern_id, earlier start), into a non-overlapping set, so nothing is
// applied twice. A chosen correction is applied when its pattern is `rectified` and its confidence
// reaches apply_threshold; every other chosen one is only proposed (pending patterns always;
// not_rectified ones too, QA having said that correction was wrong at least once). Patterns whose
// weight is under weight_floor are not used at all.
//
// The replacement keeps the draft's capital at its first letter (a sentence start) and puts the
// draft's numbers into the corrected text's slots. Case folding is ASCII only: non-ASCII letters
// are compared byte for byte.
//
// Spans are half-open byte offsets into the original draft (UTF-8), always on token boundaries.
//
// Draft segments (for retrieval). draft_segments() cuts a draft into sentences (after . ! ? ; or a
// line break), each at most max_words words. The actor asks the pattern index for top_k patterns per
// segment and unions them: patterns are a few words long, so one embedding of a whole note would
// score every short pattern about equally low and top_k would pick at random, while a sentence is
// short enough that a pattern for an error in it stands out, and long enough to carry the context
// the pattern was embedded with.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sbm::patterns {

struct correction_pattern {
  std::int64_t pattern_id = 0;
  std::string original_text;
  std::string corrected_text;
  std::vector<std::string> error_categories;
  std::string status;  // pending | rectified | not_rectified
  double weight = 0.5;
};

struct correction_config {
  double apply_threshold = 0.35;  // confidence at or above it is applied (rectified patterns only)
  double weight_floor = 0.1;      // patterns under it are not used
  std::size_t fuzzy_min_length = 5;   // letters in the compared text before fuzzy matching is tried
  std::size_t max_pattern_tokens = 8; // longer originals are matched exactly only
};

enum class match_kind { exact, normalised, respaced, fuzzy };
const char* to_string(match_kind kind);

struct correction {
  std::size_t start = 0;  // byte offsets into the original draft, half-open
  std::size_t end = 0;
  std::string from;       // the draft's bytes [start, end)
  std::string to;
  std::int64_t pattern_id = 0;
  double confidence = 0;
  bool applied = false;
  match_kind kind = match_kind::exact;
};

struct correction_scores {
  double mean = 0;      // mean confidence of all corrections (0 when none)
  double min_applied = 1; // lowest confidence applied (1 when none)
  std::size_t applied = 0;
  std::size_t proposed = 0;
};

struct correction_result {
  std::string original_text;
  std::string corrected_text;
  std::vector<correction> corrections;  // by start
  correction_scores scores;
};

// Patterns with an empty original or no word token in it are ignored.
correction_result correct_draft(std::string_view draft, const std::vector<correction_pattern>& patterns,
                                const correction_config& config = {});

// Sentence-sized byte ranges [first, second) covering every word of the draft (see above).
std::vector<std::pair<std::size_t, std::size_t>> draft_segments(std::string_view draft,
                                                                std::size_t max_words = 40);

}  // namespace sbm::patterns

#pragma once

// How good a delivered draft was, as the sample a speaker's quality_window takes per verified job.
// Pure: no CAF, no I/O.

#include <cstdint>
#include <string_view>

namespace sbm::speakers {

struct quality_measure {
  std::uint32_t edits;            // word insertions + deletions + substitutions
  std::uint32_t reference_words;  // words in the verified text
  double errors_per_100_words;
  // The texts differ by more than the measure computes exactly (see max_exact_edits): `edits` is
  // then a lower bound, already far into the worst bucket.
  bool at_least = false;
};

// The most words either text may have; callers refuse longer texts before measuring.
inline constexpr std::uint32_t max_quality_words = 20000;

// Beyond this many edits the exact count no longer matters (every bucket band is far below): the
// larger of 64 and half the longer text's words. It bounds the work to O((n + m) * k).
std::uint32_t max_exact_edits(std::uint32_t draft_words, std::uint32_t reference_words);

// Words in a text, as measure_quality counts them.
std::uint32_t count_words(std::string_view text);

// Word-level edit distance (Levenshtein over words) between the draft as delivered (after automatic
// corrections) and the QA-verified text, as residual errors per 100 words of the verified text.
//
// Tokens are the runs between ASCII whitespace (space, \t, \n, \v, \f, \r) and are compared byte for
// byte: case and punctuation count ("Aspirin" vs "aspirin", "pain." vs "pain" are substitutions).
// Non-ASCII bytes are never separators, so UTF-8 text tokenises the same way.
//
// The rate may exceed 100 when the draft holds many words the verified text does not. When the
// verified text has no words, reference_words is 0 and the rate is 0 for an empty draft, else 100
// (every draft word is an insertion; the rate is then taken per 100 words of the draft).
//
// Exact up to max_exact_edits, by a banded Levenshtein (Ukkonen) whose band doubles until the
// distance fits: O((n + m) * d) time for d edits after trimming the common prefix and suffix, so
// texts that differ in a few places cost little whatever their length, and two unrelated texts of
// max_quality_words cost a bounded band, never n * m. Precondition: both texts have at most
// max_quality_words words.
quality_measure measure_quality(std::string_view delivered_draft, std::string_view verified_text);

}  // namespace sbm::speakers

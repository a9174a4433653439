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
};

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
// O(n*m) time after trimming the common prefix and suffix, O(min(n,m)) memory for the distance
// rows (plus the token lists); a pair of 5,000-word documents takes milliseconds.
quality_measure measure_quality(std::string_view delivered_draft, std::string_view verified_text);

}  // namespace sbm::speakers

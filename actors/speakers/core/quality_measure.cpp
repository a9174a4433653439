#include "actors/speakers/core/quality_measure.hpp"

#include <algorithm>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace sbm::speakers {

namespace {

bool is_ascii_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

std::vector<std::string_view> split_words(std::string_view text) {
  std::vector<std::string_view> words;
  std::size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && is_ascii_space(text[i])) ++i;
    const std::size_t start = i;
    while (i < text.size() && !is_ascii_space(text[i])) ++i;
    if (i > start) words.push_back(text.substr(start, i - start));
  }
  return words;
}

// Interning words as integers turns the n*m inner-loop comparisons into integer compares.
std::pair<std::vector<std::uint32_t>, std::vector<std::uint32_t>> intern(
    const std::vector<std::string_view>& a, const std::vector<std::string_view>& b) {
  std::unordered_map<std::string_view, std::uint32_t> ids;
  ids.reserve(a.size() + b.size());
  auto to_ids = [&ids](const std::vector<std::string_view>& words) {
    std::vector<std::uint32_t> out;
    out.reserve(words.size());
    for (std::string_view w : words) {
      out.push_back(ids.emplace(w, static_cast<std::uint32_t>(ids.size())).first->second);
    }
    return out;
  };
  auto first = to_ids(a);
  auto second = to_ids(b);
  return {std::move(first), std::move(second)};
}

// Levenshtein distance with one row sized by the shorter sequence.
std::uint32_t edit_distance(const std::vector<std::uint32_t>& a, const std::vector<std::uint32_t>& b) {
  const auto& longer = a.size() >= b.size() ? a : b;
  const auto& shorter = a.size() >= b.size() ? b : a;
  // Trimming what both share costs nothing and leaves only the edited region for the n*m part;
  // QA-verified text usually differs from its draft in a few places.
  std::size_t prefix = 0;
  while (prefix < shorter.size() && shorter[prefix] == longer[prefix]) ++prefix;
  std::size_t suffix = 0;
  while (suffix < shorter.size() - prefix &&
         shorter[shorter.size() - 1 - suffix] == longer[longer.size() - 1 - suffix]) {
    ++suffix;
  }
  const std::size_t n = longer.size() - prefix - suffix;
  const std::size_t m = shorter.size() - prefix - suffix;
  if (m == 0) return static_cast<std::uint32_t>(n);

  std::vector<std::uint32_t> row(m + 1);
  for (std::size_t j = 0; j <= m; ++j) row[j] = static_cast<std::uint32_t>(j);
  for (std::size_t i = 1; i <= n; ++i) {
    std::uint32_t diagonal = row[0];
    row[0] = static_cast<std::uint32_t>(i);
    const std::uint32_t word = longer[prefix + i - 1];
    for (std::size_t j = 1; j <= m; ++j) {
      const std::uint32_t above = row[j];
      const std::uint32_t substitution = diagonal + (word == shorter[prefix + j - 1] ? 0 : 1);
      row[j] = std::min({above + 1, row[j - 1] + 1, substitution});
      diagonal = above;
    }
  }
  return row[m];
}

}  // namespace

quality_measure measure_quality(std::string_view delivered_draft, std::string_view verified_text) {
  const std::vector<std::string_view> draft_words = split_words(delivered_draft);
  const std::vector<std::string_view> reference_words = split_words(verified_text);

  if (reference_words.empty()) {
    const auto edits = static_cast<std::uint32_t>(draft_words.size());
    return {edits, 0, edits == 0 ? 0.0 : 100.0};
  }
  const auto [draft_ids, reference_ids] = intern(draft_words, reference_words);
  const std::uint32_t edits = edit_distance(draft_ids, reference_ids);
  const auto reference_count = static_cast<std::uint32_t>(reference_words.size());
  return {edits, reference_count, 100.0 * edits / reference_count};
}

}  // namespace sbm::speakers

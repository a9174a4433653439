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

// Levenshtein distance if it is at most `limit`, else limit + 1: only cells within `limit` of the
// diagonal (shifted by the length difference) can lie on a path of cost <= limit.
std::uint32_t banded_distance(const std::uint32_t* a, std::size_t n, const std::uint32_t* b,
                              std::size_t m, std::uint32_t limit) {
  // n >= m: a is the longer sequence
  const std::size_t diff = n - m;
  if (diff > limit) return limit + 1;
  const std::uint32_t over = limit + 1;
  // Row i of the full table, kept only for columns j in [i - limit, i + limit] (clamped to 0..m),
  // stored at index j - i + limit.
  const std::size_t width = 2 * static_cast<std::size_t>(limit) + 1;
  std::vector<std::uint32_t> prev(width, over), cur(width, over);
  auto cell = [&](const std::vector<std::uint32_t>& row, std::size_t i, std::size_t j) {
    // the value of row i at column j, or `over` outside the band
    if (j + limit < i || j > i + limit) return over;
    return row[j + limit - i];
  };
  for (std::size_t j = 0; j <= std::min<std::size_t>(m, limit); ++j)
    prev[j + limit] = static_cast<std::uint32_t>(j);
  for (std::size_t i = 1; i <= n; ++i) {
    std::fill(cur.begin(), cur.end(), over);
    const std::size_t lo = i > limit ? i - limit : 0;
    const std::size_t hi = std::min<std::size_t>(m, i + limit);
    std::uint32_t best = over;
    for (std::size_t j = lo; j <= hi; ++j) {
      std::uint32_t v;
      if (j == 0) {
        v = static_cast<std::uint32_t>(i);
      } else {
        const std::uint32_t substitution = cell(prev, i - 1, j - 1) + (a[i - 1] == b[j - 1] ? 0 : 1);
        const std::uint32_t deletion = cell(prev, i - 1, j) + 1;
        const std::uint32_t insertion = cell(cur, i, j - 1) + 1;
        v = std::min({substitution, deletion, insertion});
      }
      v = std::min(v, over);
      cur[j + limit - i] = v;
      best = std::min(best, v);
    }
    if (best > limit) return over;  // every path already costs more
    std::swap(prev, cur);
  }
  return std::min(cell(prev, n, m), over);
}

// The distance, exact when it is at most `cap`, else cap + 1.
std::uint32_t edit_distance(const std::vector<std::uint32_t>& a, const std::vector<std::uint32_t>& b,
                            std::uint32_t cap) {
  const auto& longer = a.size() >= b.size() ? a : b;
  const auto& shorter = a.size() >= b.size() ? b : a;
  // Trimming what both share costs nothing and leaves only the edited region; QA-verified text
  // usually differs from its draft in a few places.
  std::size_t prefix = 0;
  while (prefix < shorter.size() && shorter[prefix] == longer[prefix]) ++prefix;
  std::size_t suffix = 0;
  while (suffix < shorter.size() - prefix &&
         shorter[shorter.size() - 1 - suffix] == longer[longer.size() - 1 - suffix]) {
    ++suffix;
  }
  const std::size_t n = longer.size() - prefix - suffix;
  const std::size_t m = shorter.size() - prefix - suffix;
  if (m == 0) return static_cast<std::uint32_t>(std::min<std::size_t>(n, cap + std::size_t{1}));
  // Doubling the band: a draft with d edits costs O((n + m) * d), not O((n + m) * cap).
  std::uint32_t limit = std::min<std::uint32_t>(cap, std::max<std::uint32_t>(
                                                       32, static_cast<std::uint32_t>(n - m)));
  for (;;) {
    const auto d = banded_distance(longer.data() + prefix, n, shorter.data() + prefix, m, limit);
    if (d <= limit || limit >= cap) return std::min(d, cap + 1);
    limit = static_cast<std::uint32_t>(std::min<std::uint64_t>(cap, std::uint64_t{limit} * 2));
  }
}

}  // namespace

std::uint32_t max_exact_edits(std::uint32_t draft_words, std::uint32_t reference_words) {
  return std::max<std::uint32_t>(64, std::max(draft_words, reference_words) / 2);
}

std::uint32_t count_words(std::string_view text) {
  std::uint32_t words = 0;
  std::size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && is_ascii_space(text[i])) ++i;
    if (i < text.size()) ++words;
    while (i < text.size() && !is_ascii_space(text[i])) ++i;
  }
  return words;
}

quality_measure measure_quality(std::string_view delivered_draft, std::string_view verified_text) {
  const std::vector<std::string_view> draft_words = split_words(delivered_draft);
  const std::vector<std::string_view> reference_words = split_words(verified_text);

  if (reference_words.empty()) {
    const auto edits = static_cast<std::uint32_t>(draft_words.size());
    return {edits, 0, edits == 0 ? 0.0 : 100.0, false};
  }
  const auto [draft_ids, reference_ids] = intern(draft_words, reference_words);
  const auto reference_count = static_cast<std::uint32_t>(reference_words.size());
  const auto cap = max_exact_edits(static_cast<std::uint32_t>(draft_words.size()), reference_count);
  const std::uint32_t edits = edit_distance(draft_ids, reference_ids, cap);
  return {edits, reference_count, 100.0 * edits / reference_count, edits > cap};
}

}  // namespace sbm::speakers

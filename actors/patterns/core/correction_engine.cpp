#include "actors/patterns/core/correction_engine.hpp"

#include <algorithm>
#include <array>
#include <map>

namespace sbm::patterns {

namespace {

bool is_ascii_alnum(unsigned char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
bool is_word_byte(unsigned char c) { return c >= 0x80 || is_ascii_alnum(c); }
bool is_digit(unsigned char c) { return c >= '0' && c <= '9'; }
bool is_upper(unsigned char c) { return c >= 'A' && c <= 'Z'; }
bool is_lower(unsigned char c) { return c >= 'a' && c <= 'z'; }
char lower(char c) { return is_upper(static_cast<unsigned char>(c)) ? static_cast<char>(c + 32) : c; }

// FNV-1a, extended byte by byte as a window grows.
constexpr std::uint64_t fnv_offset = 14695981039346656037ULL;
constexpr std::uint64_t fnv_prime = 1099511628211ULL;
std::uint64_t fnv(std::uint64_t h, std::string_view s) {
  for (char c : s) {
    h ^= static_cast<unsigned char>(c);
    h *= fnv_prime;
  }
  return h;
}

// The set of byte values in a text, folded onto 64 bits. Two texts one edit apart differ in at
// most two of these bits (the byte dropped and the byte added), whatever the folding merges.
std::uint64_t letters_of(std::string_view s) {
  std::uint64_t m = 0;
  for (char c : s) m |= std::uint64_t{1} << (static_cast<unsigned char>(c) & 63);
  return m;
}

bool at_most_two_bits(std::uint64_t x) {
  x &= x - 1;
  x &= x - 1;
  return x == 0;
}

struct token {
  std::size_t start = 0;
  std::size_t end = 0;
  bool number = false;
  std::string_view norm;      // ASCII-lowercased bytes, or "#" for a number
  std::uint64_t letters = 0;  // letters_of(norm)
};

// Consecutive tokens of one text (C++17 has no std::span).
struct token_run {
  const token* first = nullptr;
  std::size_t count = 0;
  std::size_t size() const { return count; }
  bool empty() const { return count == 0; }
  const token& operator[](std::size_t i) const { return first[i]; }
  const token& front() const { return first[0]; }
  const token* begin() const { return first; }
  const token* end() const { return first + count; }
};

// Appends the tokens of `text` to `out`. Their norms view `lowered`: the same bytes, ASCII
// lower-cased, kept alive by the caller. Norms are views, not strings of their own, so that
// preparing a thousand patterns costs a few allocations rather than thousands.
void tokenize(std::string_view text, std::string_view lowered, std::vector<token>& out) {
  const std::size_t n = text.size();
  std::size_t i = 0;
  while (i < n) {
    if (!is_word_byte(static_cast<unsigned char>(text[i]))) {
      ++i;
      continue;
    }
    token t;
    t.start = i;
    bool all_digits = true;
    while (i < n) {
      auto c = static_cast<unsigned char>(text[i]);
      if (is_word_byte(c)) {
        all_digits = all_digits && is_digit(c);
        ++i;
      } else if (all_digits && (c == '.' || c == ',') && i + 1 < n &&
                 is_digit(static_cast<unsigned char>(text[i + 1]))) {
        ++i;  // 12.5 and 1,000 stay one number
      } else {
        break;
      }
    }
    t.end = i;
    t.number = all_digits;
    t.norm = t.number ? std::string_view{"#"} : lowered.substr(t.start, t.end - t.start);
    t.letters = letters_of(t.norm);
    out.push_back(t);
  }
}

void lower_into(std::string_view text, char* out) {
  for (char c : text) *out++ = lower(c);
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && !is_word_byte(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && !is_word_byte(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

// One edit apart, with the rules of the header: first letter kept; an insertion or deletion keeps
// the last letter too. Equal strings are not "one edit".
bool one_edit(std::string_view a, std::string_view b) {
  if (a == b || a.empty() || b.empty() || a.front() != b.front()) return false;
  if (a.size() == b.size()) {
    std::size_t i = 0;
    while (a[i] == b[i]) ++i;
    if (a.substr(i + 1) == b.substr(i + 1)) return true;  // substitution
    return i + 1 < a.size() && a[i] == b[i + 1] && a[i + 1] == b[i] &&
           a.substr(i + 2) == b.substr(i + 2);  // transposition
  }
  if (a.size() + 1 == b.size()) std::swap(a, b);
  if (b.size() + 1 != a.size()) return false;
  if (a.back() != b.back()) return false;
  std::size_t i = 0;
  while (i < b.size() && a[i] == b[i]) ++i;
  return a.substr(i + 1) == b.substr(i);  // a has one extra letter at i
}

// Numbers (raw bytes) of a text, in order.
std::vector<std::string_view> numbers_of(std::string_view text, token_run tokens) {
  std::vector<std::string_view> out;
  for (const auto& t : tokens)
    if (t.number) out.push_back(text.substr(t.start, t.end - t.start));
  return out;
}

struct prepared {
  const correction_pattern* source = nullptr;
  token_run orig;
  token_run corr;
  std::string_view orig_concat;  // the norms of the tokens, concatenated
  std::string_view corr_concat;
  std::string_view orig_trimmed;
  bool fuzzy_allowed = false;
  bool exact_only = false;  // original and corrected differ only in case or punctuation
};

enum class side { original, corrected };

struct candidate {
  std::size_t first = 0;  // token range [first, last)
  std::size_t last = 0;
  const prepared* pattern = nullptr;
  side which = side::original;
  match_kind kind = match_kind::exact;
  double quality = 0;
};

double quality_of(match_kind kind) {
  switch (kind) {
    case match_kind::exact: return 1.0;
    case match_kind::normalised: return 0.95;
    case match_kind::respaced: return 0.9;
    case match_kind::fuzzy: return 0.8;
  }
  return 0;
}

bool same_norms(token_run draft, std::size_t from, token_run seq) {
  if (from + seq.size() > draft.size()) return false;
  for (std::size_t k = 0; k < seq.size(); ++k)
    if (draft[from + k].norm != seq[k].norm) return false;
  return true;
}

// The corrected text's tokens occur in the draft overlapping tokens [first, last).
bool already_right(token_run draft, std::size_t first, std::size_t last, token_run corr) {
  if (corr.empty()) return false;
  const std::size_t lo = first + 1 >= corr.size() ? first + 1 - corr.size() : 0;
  for (std::size_t s = lo; s < last; ++s)
    if (same_norms(draft, s, corr)) return true;
  return false;
}

std::string replacement(std::string_view draft, token_run tokens, const candidate& c) {
  const prepared& p = *c.pattern;
  const std::string& corrected = p.source->corrected_text;
  // Slots: each number of the corrected text that is one of the matched side's numbers takes the
  // draft's number at the same position.
  const auto side_numbers = c.which == side::original ? numbers_of(p.source->original_text, p.orig)
                                                      : numbers_of(corrected, p.corr);
  std::vector<std::string_view> draft_numbers;
  for (std::size_t k = c.first; k < c.last; ++k)
    if (tokens[k].number) draft_numbers.push_back(draft.substr(tokens[k].start, tokens[k].end - tokens[k].start));
  std::string out;
  std::size_t at = 0;
  for (const auto& t : p.corr) {
    out.append(corrected, at, t.start - at);
    std::string_view raw{corrected.data() + t.start, t.end - t.start};
    bool replaced = false;
    if (t.number) {
      for (std::size_t k = 0; k < side_numbers.size() && k < draft_numbers.size(); ++k) {
        if (side_numbers[k] == raw) {
          out += draft_numbers[k];
          replaced = true;
          break;
        }
      }
    }
    if (!replaced) out.append(raw);
    at = t.end;
  }
  out.append(corrected, at, std::string::npos);
  // The draft's capital at the first letter (a sentence start), when the pattern's own text had the
  // other case there.
  const auto window_first = static_cast<unsigned char>(draft[tokens[c.first].start]);
  const std::string& reference = c.which == side::original ? p.source->original_text : corrected;
  const auto ref_tokens_first = c.which == side::original ? p.orig.front().start : p.corr.front().start;
  const auto ref_first = static_cast<unsigned char>(reference[ref_tokens_first]);
  // Find the first letter of the replacement (its first token's first byte; slots may move it, but
  // the text before the first token is copied verbatim so its offset is unchanged).
  if (!p.corr.empty()) {
    char& head = out[p.corr.front().start];
    const auto h = static_cast<unsigned char>(head);
    if (is_upper(window_first) && is_lower(ref_first) && is_lower(h))
      head = static_cast<char>(h - 32);
    else if (is_lower(window_first) && is_upper(ref_first) && is_upper(h))
      head = static_cast<char>(h + 32);
  }
  return out;
}

}  // namespace

const char* to_string(match_kind kind) {
  switch (kind) {
    case match_kind::exact: return "exact";
    case match_kind::normalised: return "normalised";
    case match_kind::respaced: return "respaced";
    case match_kind::fuzzy: return "fuzzy";
  }
  return "?";
}

correction_result correct_draft(std::string_view draft, const std::vector<correction_pattern>& patterns,
                                const correction_config& config) {
  correction_result result;
  result.original_text = std::string{draft};

  // Prepare the usable patterns. Their lower-cased texts and the concatenations of their norms live
  // in one buffer, sized first so that the views into it stay valid, and their tokens in one pool.
  auto usable = [&](const correction_pattern& pattern) { return pattern.weight >= config.weight_floor; };
  std::size_t text_bytes = 0, max_tokens = 0;
  for (const auto& pattern : patterns) {
    if (!usable(pattern)) continue;
    for (const std::string* text : {&pattern.original_text, &pattern.corrected_text}) {
      text_bytes += 2 * text->size();      // the lower-cased text, and at most as much concatenated
      max_tokens += text->size() / 2 + 1;  // each token but the last is followed by a separator
    }
  }
  std::string arena(text_bytes, '\0');
  std::size_t arena_used = 0;
  std::vector<token> pool;
  pool.reserve(max_tokens);
  auto tokens_of = [&](const std::string& text) {
    char* lowered = arena.data() + arena_used;
    lower_into(text, lowered);
    arena_used += text.size();
    const std::size_t from = pool.size();
    tokenize(text, {lowered, text.size()}, pool);
    return token_run{pool.data() + from, pool.size() - from};
  };
  auto concat = [&](token_run run) {
    char* out = arena.data() + arena_used;
    std::size_t n = 0;
    for (const auto& t : run) {
      std::copy(t.norm.begin(), t.norm.end(), out + n);
      n += t.norm.size();
    }
    arena_used += n;
    return std::string_view{out, n};
  };
  std::vector<prepared> prep;
  prep.reserve(patterns.size());
  for (const auto& pattern : patterns) {
    if (!usable(pattern)) continue;
    prepared p;
    p.source = &pattern;
    p.orig = tokens_of(pattern.original_text);
    p.corr = tokens_of(pattern.corrected_text);
    if (p.orig.empty() || p.orig.size() > config.max_pattern_tokens * 4) continue;
    p.orig_concat = concat(p.orig);
    p.corr_concat = concat(p.corr);
    p.orig_trimmed = trim(pattern.original_text);
    p.exact_only = p.orig.size() > config.max_pattern_tokens ||
                   (p.orig.size() == p.corr.size() && same_norms(p.orig, 0, p.corr));
    bool word_kind = false;
    for (const auto& cat : pattern.error_categories)
      word_kind = word_kind || cat == "homophone" || cat == "speaker_attribution";
    p.fuzzy_allowed = !word_kind && !p.exact_only;
    prep.push_back(p);
  }

  std::string draft_lowered(draft.size(), '\0');
  lower_into(draft, draft_lowered.data());
  std::vector<token> draft_tokens;
  tokenize(draft, draft_lowered, draft_tokens);
  const token_run tokens{draft_tokens.data(), draft_tokens.size()};
  std::vector<candidate> candidates;

  // Keys. Every side of a pattern (its original, and its corrected text when that differs) is a
  // target, and its key is its tokens' norms concatenated. Many targets share a key (the same
  // right word behind many reports, the same word split at other points), so targets are grouped
  // by key, in one open-addressing table, and each key is compared once per window. A window
  // matches a key exactly or respaced when its own concatenation is that key, and fuzzily when it
  // is one edit from it. One edit keeps the first byte and the length within one, so fuzzy keys are
  // grouped by first byte and sorted by length, and a window is compared only with the keys of its
  // first byte and its length +-1 whose byte sets differ from its own in at most two bytes (the
  // one dropped and the one added). Nothing here allocates per window: that is what keeps a
  // 1,000-word draft against 1,000 patterns under a millisecond (bench/RESULTS.md).
  constexpr std::uint32_t none = static_cast<std::uint32_t>(-1);
  struct target {
    std::uint32_t pattern;  // index into prep
    side which;
  };
  struct key_group {
    std::string_view key;  // owned by a prepared pattern
    std::uint64_t hash = 0;
    std::uint64_t letters = 0;
    std::uint32_t first = none, last = none;              // every target with this key
    std::uint32_t first_fuzzy = none, last_fuzzy = none;  // those that may match fuzzily
  };
  std::vector<target> targets;
  targets.reserve(prep.size() * 2);
  std::vector<std::uint32_t> next(prep.size() * 2, none), next_fuzzy(prep.size() * 2, none);
  std::vector<key_group> groups;
  groups.reserve(prep.size() * 2);
  std::size_t slot_count = 16;
  while (slot_count < prep.size() * 4) slot_count *= 2;
  const std::size_t slot_mask = slot_count - 1;
  std::vector<std::uint32_t> slots(slot_count, 0);  // group index + 1; 0 is empty
  std::vector<bool> length_used;  // window sizes worth trying
  std::size_t longest_key = 0;    // no window whose key is longer can match anything
  std::vector<bool> fuzzy_length; // key lengths one edit from some fuzzy key
  auto use_length = [&](std::size_t n) {
    if (length_used.size() <= n) length_used.resize(n + 1, false);
    length_used[n] = true;
  };
  auto add_target = [&](std::size_t pattern, side which, std::string_view key, bool fuzzy) {
    const auto t = static_cast<std::uint32_t>(targets.size());
    targets.push_back({static_cast<std::uint32_t>(pattern), which});
    const auto hash = fnv(fnv_offset, key);
    std::size_t s = hash & slot_mask;
    while (slots[s] != 0 && !(groups[slots[s] - 1].hash == hash && groups[slots[s] - 1].key == key))
      s = (s + 1) & slot_mask;
    if (slots[s] == 0) {
      groups.push_back({key, hash, letters_of(key)});
      slots[s] = static_cast<std::uint32_t>(groups.size());
    }
    auto& g = groups[slots[s] - 1];
    (g.first == none ? g.first : next[g.last]) = t;
    g.last = t;
    if (fuzzy) {
      (g.first_fuzzy == none ? g.first_fuzzy : next_fuzzy[g.last_fuzzy]) = t;
      g.last_fuzzy = t;
      if (fuzzy_length.size() < key.size() + 2) fuzzy_length.resize(key.size() + 2, false);
      for (std::size_t l = key.size() - 1; l <= key.size() + 1; ++l) fuzzy_length[l] = true;
      longest_key = std::max(longest_key, key.size() + 1);
    }
    longest_key = std::max(longest_key, key.size());
  };
  const auto fuzzy_min = std::max<std::size_t>(config.fuzzy_min_length, 1);
  for (std::size_t i = 0; i < prep.size(); ++i) {
    auto& p = prep[i];
    if (p.exact_only) {
      use_length(p.orig.size());
      continue;
    }
    add_target(i, side::original, p.orig_concat, p.fuzzy_allowed && p.orig_concat.size() >= fuzzy_min);
    // A corrected text with the same letters ("hyper tension" -> "hypertension") adds no key: any
    // window it would match, the original matches first.
    if (!p.corr.empty() && p.corr_concat != p.orig_concat)
      add_target(i, side::corrected, p.corr_concat, p.fuzzy_allowed && p.corr_concat.size() >= fuzzy_min);
    const std::size_t lo = std::min(p.orig.size(), std::max<std::size_t>(p.corr.size(), 1));
    const std::size_t hi = std::min(std::max(p.orig.size(), p.corr.size()) + 1, config.max_pattern_tokens + 1);
    for (std::size_t l = lo; l <= hi; ++l) use_length(l);
  }
  std::vector<std::size_t> lengths;  // ascending
  for (std::size_t n = 1; n < length_used.size(); ++n)
    if (length_used[n]) lengths.push_back(n);

  // Fuzzy keys by first byte, then length, then group index: one sort of plain integers.
  std::vector<std::uint32_t> fuzzy;  // group indices
  {
    std::vector<std::uint64_t> order;
    for (std::size_t g = 0; g < groups.size(); ++g) {
      if (groups[g].first_fuzzy == none) continue;
      const auto& k = groups[g].key;
      const std::uint64_t len = std::min<std::uint64_t>(k.size(), 0xffffff);  // longer keys never meet a window
      order.push_back(std::uint64_t{static_cast<unsigned char>(k.front())} << 56 | len << 32 | g);
    }
    std::sort(order.begin(), order.end());
    fuzzy.reserve(order.size());
    for (auto o : order) fuzzy.push_back(static_cast<std::uint32_t>(o));
  }
  std::array<std::uint32_t, 257> fuzzy_from{};  // fuzzy[fuzzy_from[b] .. fuzzy_from[b + 1]) start with byte b
  for (auto g : fuzzy) ++fuzzy_from[static_cast<unsigned char>(groups[g].key.front()) + 1];
  for (std::size_t b = 1; b < fuzzy_from.size(); ++b) fuzzy_from[b] += fuzzy_from[b - 1];

  auto window_bytes = [&](std::size_t first, std::size_t last) {
    return draft.substr(tokens[first].start, tokens[last - 1].end - tokens[first].start);
  };

  std::vector<std::size_t> seen_stamp(prep.size(), static_cast<std::size_t>(-1));
  std::size_t stamp = 0;
  std::string key;
  std::vector<std::uint32_t> near;  // targets one edit from the window
  for (std::size_t first = 0; first < tokens.size(); ++first) {
    key.clear();
    std::uint64_t hash = fnv_offset, letters = 0;
    std::size_t built = 0;
    for (std::size_t len : lengths) {
      const std::size_t last = first + len;
      if (last > tokens.size()) break;
      while (built < len) {
        const auto& t = tokens[first + built++];
        key += t.norm;
        hash = fnv(hash, t.norm);
        letters |= t.letters;
      }
      if (key.size() > longest_key) break;
      ++stamp;
      auto consider = [&](std::size_t pi, side which, match_kind kind) {
        if (seen_stamp[pi] == stamp) return;
        const prepared& p = prep[pi];
        const auto& seq = which == side::original ? p.orig : p.corr;
        if (already_right(tokens, first, last, p.corr)) {
          seen_stamp[pi] = stamp;
          return;
        }
        if (kind == match_kind::respaced && which == side::original) {
          if (window_bytes(first, last) == p.orig_trimmed)
            kind = match_kind::exact;
          else if (len == seq.size() && same_norms(tokens, first, seq))
            kind = match_kind::normalised;
        }
        if (kind == match_kind::fuzzy && len != p.orig.size() && len != p.corr.size()) return;
        seen_stamp[pi] = stamp;
        candidates.push_back({first, last, &p, which, kind, quality_of(kind)});
      };
      for (std::size_t s = hash & slot_mask; slots[s] != 0; s = (s + 1) & slot_mask) {
        const auto& g = groups[slots[s] - 1];
        if (g.hash != hash || g.key != key) continue;
        // In insertion order: pattern order, a pattern's original before its corrected text.
        for (auto t = g.first; t != none; t = next[t]) consider(targets[t].pattern, targets[t].which, match_kind::respaced);
        break;
      }
      if (key.size() < fuzzy_length.size() && fuzzy_length[key.size()]) {
        const auto byte = static_cast<unsigned char>(key.front());
        const auto* from = fuzzy.data() + fuzzy_from[byte];
        const auto* to = fuzzy.data() + fuzzy_from[byte + 1];
        from = std::lower_bound(from, to, key.size() - 1,
                                [&](std::uint32_t g, std::size_t n) { return groups[g].key.size() < n; });
        near.clear();
        for (; from != to && groups[*from].key.size() <= key.size() + 1; ++from) {
          const auto& g = groups[*from];
          if (!at_most_two_bits(g.letters ^ letters) || !one_edit(key, g.key)) continue;
          for (auto t = g.first_fuzzy; t != none; t = next_fuzzy[t])
            if (seen_stamp[targets[t].pattern] != stamp) near.push_back(t);
        }
        // When both sides of a pattern are one edit away, its original is tried first.
        std::sort(near.begin(), near.end());
        for (auto t : near) consider(targets[t].pattern, targets[t].which, match_kind::fuzzy);
      }
    }
  }
  // Patterns that differ from their correction only in case or punctuation: byte-exact matches at
  // token boundaries only (nothing else can tell right text from wrong).
  for (const auto& p : prep) {
    if (!p.exact_only || p.orig_trimmed.empty()) continue;
    for (std::size_t first = 0; first + p.orig.size() <= tokens.size(); ++first) {
      const std::size_t last = first + p.orig.size();
      if (window_bytes(first, last) == p.orig_trimmed)
        candidates.push_back({first, last, &p, side::original, match_kind::exact, 1.0});
    }
  }

  // Score, build replacements, resolve overlaps.
  // A replacement is built only for a candidate that is still free when its turn comes; one that
  // would not change the draft's bytes is passed over there (it blocks nothing), which chooses what
  // dropping such candidates first would.
  struct scored {
    candidate c;
    double confidence;
    std::string to;
  };
  std::vector<scored> all;
  all.reserve(candidates.size());
  for (const auto& c : candidates) all.push_back({c, c.quality * c.pattern->source->weight, {}});
  std::sort(all.begin(), all.end(), [](const scored& a, const scored& b) {
    if (a.confidence != b.confidence) return a.confidence > b.confidence;
    const auto la = a.c.last - a.c.first, lb = b.c.last - b.c.first;
    if (la != lb) return la > lb;
    if (a.c.pattern->source->pattern_id != b.c.pattern->source->pattern_id)
      return a.c.pattern->source->pattern_id < b.c.pattern->source->pattern_id;
    return a.c.first < b.c.first;
  });
  std::map<std::size_t, std::size_t> taken;  // token first -> last, non-overlapping
  std::vector<const scored*> chosen;
  for (auto& s : all) {
    auto next = taken.lower_bound(s.c.first);
    if (next != taken.end() && next->first < s.c.last) continue;
    if (next != taken.begin() && std::prev(next)->second > s.c.first) continue;
    s.to = replacement(draft, tokens, s.c);
    if (s.to == window_bytes(s.c.first, s.c.last)) continue;
    taken.emplace(s.c.first, s.c.last);
    chosen.push_back(&s);
  }
  std::sort(chosen.begin(), chosen.end(), [](const scored* a, const scored* b) { return a->c.first < b->c.first; });

  std::size_t at = 0;
  double sum = 0;
  for (const auto* s : chosen) {
    correction out;
    out.start = tokens[s->c.first].start;
    out.end = tokens[s->c.last - 1].end;
    out.from = std::string{draft.substr(out.start, out.end - out.start)};
    out.to = s->to;
    out.pattern_id = s->c.pattern->source->pattern_id;
    out.confidence = s->confidence;
    out.kind = s->c.kind;
    out.applied = s->c.pattern->source->status == "rectified" && s->confidence >= config.apply_threshold;
    sum += out.confidence;
    if (out.applied) {
      result.corrected_text.append(draft.substr(at, out.start - at));
      result.corrected_text += out.to;
      at = out.end;
      ++result.scores.applied;
      result.scores.min_applied = std::min(result.scores.min_applied, out.confidence);
    } else {
      ++result.scores.proposed;
    }
    result.corrections.push_back(std::move(out));
  }
  result.corrected_text.append(draft.substr(at));
  if (!result.corrections.empty()) result.scores.mean = sum / static_cast<double>(result.corrections.size());
  return result;
}

std::vector<std::pair<std::size_t, std::size_t>> draft_segments(std::string_view draft, std::size_t max_words) {
  std::vector<std::pair<std::size_t, std::size_t>> out;
  if (max_words == 0) max_words = 1;
  std::vector<token> tokens;
  tokenize(draft, draft, tokens);  // only the offsets are used here, so the norms need no lower case
  std::size_t seg_first = 0;
  for (std::size_t k = 0; k < tokens.size(); ++k) {
    bool cut = k + 1 - seg_first >= max_words || k + 1 == tokens.size();
    if (!cut) {
      for (std::size_t b = tokens[k].end; b < tokens[k + 1].start; ++b) {
        char c = draft[b];
        if (c == '.' || c == '!' || c == '?' || c == ';' || c == '\n') {
          cut = true;
          break;
        }
      }
    }
    if (cut) {
      out.emplace_back(tokens[seg_first].start, tokens[k].end);
      seg_first = k + 1;
    }
  }
  return out;
}

}  // namespace sbm::patterns

#include "actors/patterns/core/correction_engine.hpp"

#include <algorithm>
#include <map>
#include <set>
#include <unordered_map>

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

struct token {
  std::size_t start = 0;
  std::size_t end = 0;
  bool number = false;
  std::string norm;  // ASCII-lowercased bytes, or "#" for a number
};

std::vector<token> tokenize(std::string_view text) {
  std::vector<token> out;
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
    if (t.number) {
      t.norm = "#";
    } else {
      t.norm.reserve(t.end - t.start);
      for (std::size_t k = t.start; k < t.end; ++k) t.norm += lower(text[k]);
    }
    out.push_back(std::move(t));
  }
  return out;
}

std::string concat(const std::vector<token>& tokens, std::size_t from, std::size_t to) {
  std::string s;
  for (std::size_t k = from; k < to; ++k) s += tokens[k].norm;
  return s;
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
std::vector<std::string> numbers_of(std::string_view text, const std::vector<token>& tokens) {
  std::vector<std::string> out;
  for (const auto& t : tokens)
    if (t.number) out.emplace_back(text.substr(t.start, t.end - t.start));
  return out;
}

struct prepared {
  const correction_pattern* source = nullptr;
  std::vector<token> orig;
  std::vector<token> corr;
  std::string orig_concat;
  std::string corr_concat;
  std::string_view orig_trimmed;
  std::vector<std::string> orig_numbers;
  std::vector<std::string> corr_numbers;
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

bool same_norms(const std::vector<token>& draft, std::size_t from, const std::vector<token>& seq) {
  if (from + seq.size() > draft.size()) return false;
  for (std::size_t k = 0; k < seq.size(); ++k)
    if (draft[from + k].norm != seq[k].norm) return false;
  return true;
}

// The corrected text's tokens occur in the draft overlapping tokens [first, last).
bool already_right(const std::vector<token>& draft, std::size_t first, std::size_t last,
                   const std::vector<token>& corr) {
  if (corr.empty()) return false;
  const std::size_t lo = first + 1 >= corr.size() ? first + 1 - corr.size() : 0;
  for (std::size_t s = lo; s < last; ++s)
    if (same_norms(draft, s, corr)) return true;
  return false;
}

std::string replacement(std::string_view draft, const std::vector<token>& tokens, const candidate& c) {
  const prepared& p = *c.pattern;
  const std::string& corrected = p.source->corrected_text;
  // Slots: each number of the corrected text that is one of the matched side's numbers takes the
  // draft's number at the same position.
  const auto& side_numbers = c.which == side::original ? p.orig_numbers : p.corr_numbers;
  std::vector<std::string> draft_numbers;
  for (std::size_t k = c.first; k < c.last; ++k)
    if (tokens[k].number) draft_numbers.emplace_back(draft.substr(tokens[k].start, tokens[k].end - tokens[k].start));
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

  // Prepare the usable patterns.
  std::vector<prepared> prep;
  prep.reserve(patterns.size());
  for (const auto& pattern : patterns) {
    if (!(pattern.weight >= config.weight_floor)) continue;
    prepared p;
    p.source = &pattern;
    p.orig = tokenize(pattern.original_text);
    p.corr = tokenize(pattern.corrected_text);
    if (p.orig.empty() || p.orig.size() > config.max_pattern_tokens * 4) continue;
    p.orig_concat = concat(p.orig, 0, p.orig.size());
    p.corr_concat = concat(p.corr, 0, p.corr.size());
    p.orig_trimmed = trim(pattern.original_text);
    p.orig_numbers = numbers_of(pattern.original_text, p.orig);
    p.corr_numbers = numbers_of(pattern.corrected_text, p.corr);
    p.exact_only = p.orig.size() > config.max_pattern_tokens ||
                   (p.orig.size() == p.corr.size() && same_norms(p.orig, 0, p.corr));
    bool word_kind = false;
    for (const auto& cat : pattern.error_categories)
      word_kind = word_kind || cat == "homophone" || cat == "speaker_attribution";
    p.fuzzy_allowed = !word_kind && !p.exact_only;
    prep.push_back(std::move(p));
  }

  const auto tokens = tokenize(draft);
  std::vector<candidate> candidates;

  // Keys: concatenations (exact and respaced), and one-deletion neighbourhoods (fuzzy, as SymSpell
  // does: two strings one edit apart share a key among their deletions).
  struct ref {
    std::size_t pattern;
    side which;
  };
  std::unordered_map<std::string, std::vector<ref>> by_concat;
  std::unordered_map<std::string, std::vector<ref>> by_deletion;
  std::set<std::size_t> lengths;  // window sizes worth trying
  std::size_t longest_key = 0;    // no window whose key is longer can match anything
  std::vector<bool> fuzzy_length; // key lengths one edit from some fuzzy target
  auto note_fuzzy = [&](std::size_t n) {
    if (fuzzy_length.size() < n + 2) fuzzy_length.resize(n + 2, false);
    for (std::size_t l = n - 1; l <= n + 1; ++l) fuzzy_length[l] = true;
    longest_key = std::max(longest_key, n + 1);
  };
  auto deletions = [](const std::string& s, auto&& emit) {
    emit(s);
    for (std::size_t i = 0; i < s.size(); ++i) {
      std::string d = s;
      d.erase(i, 1);
      emit(d);
    }
  };
  for (std::size_t i = 0; i < prep.size(); ++i) {
    auto& p = prep[i];
    if (p.exact_only) {
      lengths.insert(p.orig.size());
      continue;
    }
    by_concat[p.orig_concat].push_back({i, side::original});
    longest_key = std::max(longest_key, p.orig_concat.size());
    if (!p.corr.empty() && p.corr_concat != p.orig_concat) {
      by_concat[p.corr_concat].push_back({i, side::corrected});
      longest_key = std::max(longest_key, p.corr_concat.size());
    }
    const std::size_t lo = std::min(p.orig.size(), std::max<std::size_t>(p.corr.size(), 1));
    const std::size_t hi = std::min(std::max(p.orig.size(), p.corr.size()) + 1, config.max_pattern_tokens + 1);
    for (std::size_t l = lo; l <= hi; ++l) lengths.insert(l);
    if (p.fuzzy_allowed) {
      if (p.orig_concat.size() >= std::max<std::size_t>(config.fuzzy_min_length, 1)) {
        deletions(p.orig_concat, [&](const std::string& d) { by_deletion[d].push_back({i, side::original}); });
        note_fuzzy(p.orig_concat.size());
      }
      if (!p.corr.empty() && p.corr_concat.size() >= std::max<std::size_t>(config.fuzzy_min_length, 1)) {
        deletions(p.corr_concat, [&](const std::string& d) { by_deletion[d].push_back({i, side::corrected}); });
        note_fuzzy(p.corr_concat.size());
      }
    }
  }

  auto window_bytes = [&](std::size_t first, std::size_t last) {
    return draft.substr(tokens[first].start, tokens[last - 1].end - tokens[first].start);
  };

  std::vector<std::size_t> seen_stamp(prep.size(), static_cast<std::size_t>(-1));
  std::size_t stamp = 0;
  for (std::size_t first = 0; first < tokens.size(); ++first) {
    std::string key;
    std::size_t built = 0;
    for (std::size_t len : lengths) {
      const std::size_t last = first + len;
      if (last > tokens.size()) break;
      while (built < len) key += tokens[first + built++].norm;
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
      if (auto it = by_concat.find(key); it != by_concat.end())
        for (const auto& r : it->second) consider(r.pattern, r.which, match_kind::respaced);
      if (key.size() < fuzzy_length.size() && fuzzy_length[key.size()]) {
        auto probe = [&](const std::string& d) {
          auto it = by_deletion.find(d);
          if (it == by_deletion.end()) return;
          for (const auto& r : it->second) {
            const prepared& p = prep[r.pattern];
            const auto& target = r.which == side::original ? p.orig_concat : p.corr_concat;
            if (seen_stamp[r.pattern] == stamp || !one_edit(key, target)) continue;
            consider(r.pattern, r.which, match_kind::fuzzy);
          }
        };
        deletions(key, probe);
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
  struct scored {
    candidate c;
    double confidence;
    std::string to;
  };
  std::vector<scored> all;
  all.reserve(candidates.size());
  for (const auto& c : candidates) {
    auto to = replacement(draft, tokens, c);
    if (to == window_bytes(c.first, c.last)) continue;
    all.push_back({c, c.quality * c.pattern->source->weight, std::move(to)});
  }
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
  for (const auto& s : all) {
    auto next = taken.lower_bound(s.c.first);
    if (next != taken.end() && next->first < s.c.last) continue;
    if (next != taken.begin() && std::prev(next)->second > s.c.first) continue;
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
  const auto tokens = tokenize(draft);
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

#include "actors/patterns/core/pattern_index.hpp"

#include <hnswlib/hnswlib.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <exception>
#include <functional>
#include <limits>
#include <mutex>
#include <queue>
#include <thread>
#include <unordered_set>
#include <utility>

#include "actors/patterns/core/int8_codes.hpp"
#include "actors/patterns/core/pattern_index_impl.hpp"

namespace sbm::patterns {

namespace detail {

std::uint32_t string_pool::intern(const std::string& value) {
  auto [it, inserted] = ids.emplace(value, static_cast<std::uint32_t>(values.size()));
  if (inserted) {
    values.push_back(value);
    live.push_back(0);
  }
  return it->second;
}

std::optional<std::uint32_t> string_pool::find(const std::string& value) const {
  auto it = ids.find(value);
  if (it == ids.end()) return std::nullopt;
  return it->second;
}

}  // namespace detail

namespace {

using detail::slot_flag;

// A posting list is rewritten once half of it is dead; small ones are not worth the copy.
constexpr std::uint32_t posting_rewrite_min_dead = 16;

void check_vector(const std::vector<float>& v, std::uint32_t dimension, const char* what) {
  if (v.size() != dimension)
    throw std::invalid_argument(std::string(what) + ": expected " + std::to_string(dimension) +
                                " values, got " + std::to_string(v.size()));
  for (float x : v)
    if (!std::isfinite(x)) throw std::invalid_argument(std::string(what) + ": non-finite value");
}

void check_entry(const pattern_entry& e) {
  if (e.pattern_id <= 0) throw std::invalid_argument("pattern_id must be positive");
}

// The filter with every string replaced by its pool id. A value no pattern carries makes the
// filter impossible: nothing can match, whatever the plan.
struct compiled_filter {
  bool impossible = false;
  std::optional<std::uint32_t> speaker, client, bucket, audio_quality, status, category;
  std::optional<std::vector<std::uint32_t>> clients;  // the scope: one of these, when set
  std::optional<bool> specialized;
  std::int64_t from_ms = 0;
  std::int64_t to_ms = 0;
  double min_weight = 0;
};

std::optional<std::uint32_t> lookup(const detail::string_pool& pool, const std::string& value,
                                    bool& impossible) {
  if (value.empty()) return std::nullopt;
  auto id = pool.find(value);
  if (!id || pool.live[*id] == 0) impossible = true;
  return id;
}

compiled_filter compile(const pattern_index::impl& ix, const search_filter& f) {
  compiled_filter c;
  c.speaker = lookup(ix.speakers, f.speaker_id, c.impossible);
  c.client = lookup(ix.clients, f.client_id, c.impossible);
  if (f.client_ids) {
    c.clients.emplace();
    for (const auto& name : *f.client_ids)
      if (auto id = ix.clients.find(name); id && ix.clients.live[*id] != 0)
        c.clients->push_back(*id);
    if (c.clients->empty()) c.impossible = true;
  }
  c.bucket = lookup(ix.buckets, f.bucket_type, c.impossible);
  c.audio_quality = lookup(ix.audio_qualities, f.audio_quality, c.impossible);
  c.status = lookup(ix.statuses, f.status, c.impossible);
  c.category = lookup(ix.categories, f.error_category, c.impossible);
  c.specialized = f.requires_specialized_knowledge;
  c.from_ms = f.from_ms;
  c.to_ms = f.to_ms;
  c.min_weight = f.min_weight;
  if (c.from_ms != 0 && c.to_ms != 0 && c.from_ms > c.to_ms) c.impossible = true;
  return c;
}

bool has_category(const pattern_index::impl& ix, std::uint32_t slot, std::uint32_t category) {
  const std::uint64_t mask = ix.category_mask[slot];
  if (category < detail::category_bits) return (mask >> category) & 1u;
  if ((mask & detail::overflow_bit) == 0) return false;
  const auto& extra = ix.category_overflow.at(slot);
  return std::find(extra.begin(), extra.end(), category) != extra.end();
}

bool matches(const pattern_index::impl& ix, std::uint32_t slot, const compiled_filter& f) {
  const std::uint8_t flags = ix.flags[slot];
  if ((flags & slot_flag::alive) == 0) return false;
  if (f.speaker && ix.speaker[slot] != *f.speaker) return false;
  if (f.client && ix.client[slot] != *f.client) return false;
  if (f.clients && std::find(f.clients->begin(), f.clients->end(), ix.client[slot]) == f.clients->end())
    return false;
  if (f.bucket && ix.bucket[slot] != *f.bucket) return false;
  if (f.audio_quality && ix.audio_quality[slot] != *f.audio_quality) return false;
  if (f.status && ix.status[slot] != *f.status) return false;
  if (f.specialized && ((flags & slot_flag::specialized) != 0) != *f.specialized) return false;
  if (f.from_ms != 0 && ix.created_at[slot] < f.from_ms) return false;
  if (f.to_ms != 0 && ix.created_at[slot] > f.to_ms) return false;
  if (ix.weight[slot] < f.min_weight) return false;
  if (f.category && !has_category(ix, slot, *f.category)) return false;
  return true;
}

struct candidate {
  float distance;
  std::int64_t pattern_id;
  std::uint32_t slot;
};

// Orders by distance, then pattern_id, so equal scores come out the same from every plan.
bool closer(const candidate& a, const candidate& b) {
  if (a.distance != b.distance) return a.distance < b.distance;
  return a.pattern_id < b.pattern_id;
}

class top_k {
 public:
  explicit top_k(std::size_t k) : k_(k) {}

  // False when a candidate at this distance cannot enter (ties may, by pattern_id).
  bool may_take(float distance) const {
    return heap_.size() < k_ || distance <= heap_.front().distance;
  }

  void offer(const candidate& c) {
    if (heap_.size() < k_) {
      heap_.push_back(c);
      std::push_heap(heap_.begin(), heap_.end(), closer);
    } else if (closer(c, heap_.front())) {
      std::pop_heap(heap_.begin(), heap_.end(), closer);
      heap_.back() = c;
      std::push_heap(heap_.begin(), heap_.end(), closer);
    }
  }

  std::size_t size() const { return heap_.size(); }

  std::vector<candidate> sorted() && {
    std::sort(heap_.begin(), heap_.end(), closer);
    return std::move(heap_);
  }

 private:
  std::size_t k_;
  std::vector<candidate> heap_;  // max-heap: the worst kept candidate on top
};

// The exact top k of every query in one pass over the candidates: each vector is read once and
// scored against all queries (a draft's segments share one speaker's posting list).
std::vector<std::vector<candidate>> sorted_lists(std::vector<top_k>& best) {
  std::vector<std::vector<candidate>> out;
  out.reserve(best.size());
  for (auto& b : best) out.push_back(std::move(b).sorted());
  return out;
}

// The nodes of the posting lists a filter names, scanned exactly: each vector is read once (from
// the graph's own storage) and scored against every query; the columns are touched only for a
// vector some query could take.
std::vector<std::vector<candidate>> scan_lists(const pattern_index::impl& ix,
                                               const std::vector<const detail::posting_list*>& lists,
                                               const std::vector<const float*>& queries,
                                               const compiled_filter& f, std::size_t k) {
  std::vector<top_k> best(queries.size(), top_k(k));
  std::vector<float> d(queries.size());
  for (const auto* list : lists) {
    for (const std::uint32_t n : list->nodes) {
      const std::uint32_t slot = ix.slot_at[n];
      if ((ix.flags[slot] & slot_flag::alive) == 0) continue;
      const auto* v = reinterpret_cast<const float*>(ix.graph->getDataByInternalId(n));
      bool wanted = false;
      for (std::size_t q = 0; q < queries.size(); ++q) {
        d[q] = ix.distance(queries[q], v);
        wanted = wanted || best[q].may_take(d[q]);
      }
      if (!wanted || !matches(ix, slot, f)) continue;
      for (std::size_t q = 0; q < queries.size(); ++q) best[q].offer({d[q], ix.ids[slot], slot});
    }
  }
  return sorted_lists(best);
}

// scan_lists for long lists: every candidate scored on its int8 code (a quarter of the bytes, read
// in list order with the next rows prefetched), the best `rerank` per query kept, and only those
// scored exactly. The columns are read only for a candidate entering a query's kept set, and not
// at all when the lists alone decide the filter (`decide`: list membership is kept exact).
std::vector<std::vector<candidate>> prescan_lists(const pattern_index::impl& ix,
                                                  const std::vector<const detail::posting_list*>& lists,
                                                  const std::vector<const float*>& queries,
                                                  const compiled_filter& f, bool decide,
                                                  std::size_t k) {
  const std::size_t row = ix.code_row;
  const std::size_t stride = row - sizeof(float);
  const std::size_t keep = std::max(ix.config.rerank, k);
  std::vector<std::int8_t> query_codes(queries.size() * stride);
  for (std::size_t q = 0; q < queries.size(); ++q)
    detail::quantise(queries[q], ix.config.dimension, stride, &query_codes[q * stride]);
  // A query's own factor scales all of its scores alike, so the ranking does without it.
  using kept_code = std::pair<float, std::uint32_t>;  // (-approximate similarity, node)
  std::vector<std::vector<kept_code>> kept(queries.size());
  for (auto& h : kept) h.reserve(keep + 1);
  // Scored a chunk at a time (code_scores), each chunk's rows read once from memory for all
  // queries: the later queries find them in cache.
  constexpr std::size_t chunk = 256;
  std::vector<float> approx(queries.size() * chunk);
  const std::int8_t* base = ix.codes.data();
  for (const auto* list : lists) {
    const auto& nodes = list->nodes;
    for (std::size_t from = 0; from < nodes.size(); from += chunk) {
      const std::size_t count = std::min(chunk, nodes.size() - from);
      for (std::size_t q = 0; q < queries.size(); ++q)
        detail::code_scores(&query_codes[q * stride], stride, base, row, &nodes[from], count,
                            &approx[q * chunk]);
      for (std::size_t i = 0; i < count; ++i) {
        if (approx[i] == std::numeric_limits<float>::infinity()) continue;  // a dead node
        const std::uint32_t n = nodes[from + i];
        int admitted = decide ? 1 : -1;  // -1: the columns not yet asked
        for (std::size_t q = 0; q < queries.size(); ++q) {
          const float a = approx[q * chunk + i];
          auto& h = kept[q];
          if (h.size() >= keep && a >= h.front().first) continue;
          if (admitted < 0) admitted = matches(ix, ix.slot_at[n], f) ? 1 : 0;
          if (admitted == 0) break;
          h.emplace_back(a, n);
          std::push_heap(h.begin(), h.end());
          if (h.size() > keep) {
            std::pop_heap(h.begin(), h.end());
            h.pop_back();
          }
        }
      }
    }
  }
  std::vector<top_k> best(queries.size(), top_k(k));
  for (std::size_t q = 0; q < queries.size(); ++q)
    for (const auto& [approx, n] : kept[q]) {
      const std::uint32_t slot = ix.slot_at[n];
      best[q].offer({ix.distance(queries[q], reinterpret_cast<const float*>(ix.graph->getDataByInternalId(n))),
                     ix.ids[slot], slot});
    }
  return sorted_lists(best);
}

// The sign scan (index_config::sign_scan_min): every entry of the lists scored on its sign code
// (int8_codes.hpp), streamed in list order, touching nothing else; the best of them found through
// a histogram of the scores (no heap or sort sees the whole list): the entries of the best bins,
// sign_keep or a few more, are scored on their int8 codes (rows gathered with prefetching; a dead
// node's row says so) and checked against the columns unless the lists decide. When fewer than
// sign_keep of them are alive and match (many dead, or a filter the lists do not decide), the next
// bins are taken, twice as many entries each time, up to the whole lists (at most sign_scan_max
// entries: the cap on the work). The best `rerank` of the accepted are scored exactly.
std::vector<std::vector<candidate>> sign_scan(const pattern_index::impl& ix,
                                              const std::vector<const detail::posting_list*>& lists,
                                              const std::vector<const float*>& queries,
                                              const compiled_filter& f, bool decide, std::size_t k) {
  const std::uint32_t dimension = ix.config.dimension;
  const std::size_t words = ix.sign_words;
  const std::size_t row = ix.code_row;
  const std::size_t stride = row - sizeof(float);
  const std::size_t keep = std::max(ix.config.rerank, k);
  const std::size_t want = std::max(ix.config.sign_keep, keep);
  std::size_t total = 0;
  for (const auto* l : lists) total += l->nodes.size();
  auto& scores = ix.sign_scratch;
  scores.resize(total);
  auto& bin_of = ix.sign_bins;
  bin_of.resize(total);
  std::vector<std::uint64_t> planes(4 * words);
  std::vector<std::int8_t> query_code(stride);
  std::vector<std::uint32_t> histogram;
  using scored = std::pair<float, std::uint32_t>;  // (int8 score, node)
  std::vector<scored> accepted;
  std::vector<std::uint32_t> picked;
  std::vector<float> approx;
  std::vector<top_k> best(queries.size(), top_k(k));
  for (std::size_t q = 0; q < queries.size(); ++q) {
    const float* query = queries[q];
    const float offset = detail::sign_query(query, dimension, planes.data());
    detail::quantise(query, dimension, stride, query_code.data());
    std::size_t at = 0;
    for (const auto* l : lists) {
      detail::sign_scores(planes.data(), offset, words, l->signs.data(), l->nodes.size(), &scores[at]);
      at += l->nodes.size();
    }
    // Scores differ by whole levels plus the offset's share: a bin per level. The three passes
    // over the list below (bins, their counts, the chosen bins' entries) cost more than the
    // scoring itself when written with the obvious branches and push_back (perf annotate at 100k:
    // 3/4 of sign_scan's samples), so each is kept free of them: the bins in one vectorised loop,
    // the counts in four histograms (a run of equal bins does not wait on its own increment), the
    // chosen entries written unconditionally and kept by advancing the end.
    const float lowest = std::min(offset, 0.0f) * static_cast<float>(64 * words);
    const auto bins = std::min<std::size_t>(
        65535, static_cast<std::size_t>((15.0f + std::fabs(offset)) * static_cast<float>(64 * words)) + 2);
    {
      const float* s = scores.data();
      std::uint16_t* b = bin_of.data();
      const float top = static_cast<float>(bins - 1);
      for (std::size_t i = 0; i < total; ++i)
        b[i] = static_cast<std::uint16_t>(std::min(top, std::max(0.0f, s[i] - lowest)));
      histogram.assign(4 * bins, 0);
      std::uint32_t* h = histogram.data();
      std::size_t i = 0;
      for (; i + 4 <= total; i += 4) {
        ++h[b[i]];
        ++h[bins + b[i + 1]];
        ++h[2 * bins + b[i + 2]];
        ++h[3 * bins + b[i + 3]];
      }
      for (; i < total; ++i) ++h[b[i]];
      for (std::size_t j = 0; j < bins; ++j) h[j] += h[bins + j] + h[2 * bins + j] + h[3 * bins + j];
    }
    accepted.clear();
    std::size_t done = 0;  // bins below `done` are taken
    for (std::size_t wanted = want; accepted.size() < want && done < bins; wanted *= 2) {
      std::size_t upto = done, in = 0;
      while (upto < bins && in < wanted) in += histogram[upto++];
      picked.resize(in + 1);  // one spare: every entry is written, only the chosen are kept
      std::uint32_t* out = picked.data();
      std::size_t m = 0;
      const std::uint16_t* b = bin_of.data();
      const auto from = static_cast<std::uint16_t>(done);
      const auto width = static_cast<std::uint16_t>(upto - done);
      for (const auto* l : lists) {
        const std::uint32_t* nodes = l->nodes.data();
        const std::size_t count = l->nodes.size();
        for (std::size_t j = 0; j < count; ++j) {
          out[m] = nodes[j];
          m += static_cast<std::uint16_t>(b[j] - from) < width;
        }
        b += count;
      }
      picked.resize(m);
      done = upto;
      approx.resize(picked.size());
      detail::code_scores(query_code.data(), stride, ix.codes.data(), row, picked.data(), picked.size(),
                          approx.data());
      for (std::size_t j = 0; j < picked.size(); ++j) {
        if (approx[j] == std::numeric_limits<float>::infinity()) continue;  // a dead node
        if (!decide && !matches(ix, ix.slot_at[picked[j]], f)) continue;
        accepted.emplace_back(approx[j], picked[j]);
      }
    }
    const std::size_t exact_count = std::min(keep, accepted.size());
    // Their order does not matter (top_k orders the exact scores): a selection, not a sort.
    if (exact_count < accepted.size())
      std::nth_element(accepted.begin(), accepted.begin() + static_cast<std::ptrdiff_t>(exact_count),
                       accepted.end());
    for (std::size_t j = 0; j < exact_count; ++j) {
      const std::uint32_t n = accepted[j].second;
      const std::uint32_t slot = ix.slot_at[n];
      best[q].offer({ix.distance(query, reinterpret_cast<const float*>(ix.graph->getDataByInternalId(n))),
                     ix.ids[slot], slot});
    }
  }
  return sorted_lists(best);
}

std::vector<std::vector<candidate>> scan_columns(const pattern_index::impl& ix,
                                                 const std::vector<const float*>& queries,
                                                 const compiled_filter& f, std::size_t k) {
  std::vector<top_k> best(queries.size(), top_k(k));
  const auto slots = static_cast<std::uint32_t>(ix.ids.size());
  for (std::uint32_t slot = 0; slot < slots; ++slot) {
    if (!matches(ix, slot, f)) continue;
    const float* v = ix.vector_of(slot);
    for (std::size_t q = 0; q < queries.size(); ++q)
      best[q].offer({ix.distance(queries[q], v), ix.ids[slot], slot});
  }
  return sorted_lists(best);
}

// The narrowest posting lists the filter names: every matching node is in them (a necessary
// condition, not a sufficient one). None when the filter names no speaker, client or category.
struct candidate_lists {
  std::vector<const detail::posting_list*> lists;
  std::size_t nodes = 0;  // entries, dead ones included: what a scan reads
  const char* name = nullptr;
};

candidate_lists narrowest_lists(const pattern_index::impl& ix, const compiled_filter& f) {
  static const detail::posting_list none;
  candidate_lists best;
  auto consider = [&](const char* name, std::vector<const detail::posting_list*> lists) {
    std::size_t nodes = 0;
    for (const auto* l : lists) nodes += l->nodes.size();
    if (best.name == nullptr || nodes < best.nodes) best = {std::move(lists), nodes, name};
  };
  auto one = [&](const std::vector<detail::posting_list>& lists, std::uint32_t value) {
    return value < lists.size() ? &lists[value] : &none;
  };
  if (f.speaker) consider("speaker", {one(ix.speaker_nodes, *f.speaker)});
  if (f.client) consider("client", {one(ix.client_nodes, *f.client)});
  if (f.clients) {
    std::vector<const detail::posting_list*> scope;
    for (auto id : *f.clients) scope.push_back(one(ix.client_nodes, id));
    consider("client", std::move(scope));
  }
  if (f.category) consider("category", {one(ix.category_nodes, *f.category)});
  return best;
}

// True when being in the chosen posting lists is the whole filter: it names one of speaker, client,
// client scope or category and nothing else, so a pre-scan need not read the columns.
bool lists_decide(const pattern_index::impl& ix, const compiled_filter& f) {
  const int named = static_cast<int>(f.speaker.has_value()) + static_cast<int>(f.client.has_value()) +
                    static_cast<int>(f.clients.has_value()) + static_cast<int>(f.category.has_value());
  return named == 1 && !f.bucket && !f.audio_quality && !f.status && !f.specialized && f.from_ms == 0 &&
         f.to_ms == 0 && f.min_weight <= ix.lowest_weight;
}

using hnswlib::tableint;

// Filter-aware search of the graph's bottom layer (hnswlib 0.6 has no filter hook; its graph is
// public). The upper layers are descended as hnswlib does, unfiltered: they only pick a start. In
// the bottom layer only matching nodes enter the result set, so the walk ends with ef matches
// rather than ef nodes of which a few match. How it moves depends on the selectivity:
//   - dense (most nodes match): every neighbour is scored and may be expanded, matching or not;
//   - two-hop (few match, ACORN-1 style): only matching nodes are scored; a neighbour that does not
//     match is a bridge to its own neighbours, which are scored when they match, until the node
//     has gathered maxM0 matching neighbours. Scoring non-matching nodes would cost 1/selectivity
//     times the distances for the same ef matches.
// The bottom layer is scored on int8 codes (a quarter of the bytes of the float vectors), and the
// ef matches found are re-scored exactly at the end. `bits` (the nodes of the filter's narrowest
// posting lists) rejects most nodes without touching the columns; when those lists are the whole
// filter (`decide`) the columns are never read, a node's liveness coming from its code row.
// Returns false when the walk passed its budget of expansions (the caller scans exactly instead).
bool walk(const pattern_index::impl& ix, const compiled_filter& f, const std::uint64_t* bits,
          bool decide, const float* query, const std::int8_t* query_code, std::size_t ef,
          bool two_hop, std::vector<candidate>& out) {
  const auto& g = *ix.graph;
  const std::size_t row = ix.code_row;
  const std::size_t stride = row - sizeof(float);
  const std::int8_t* codes = ix.codes.data();
  auto factor_of = [&](tableint n) {
    float factor;
    std::memcpy(&factor, codes + std::size_t{n} * row, sizeof factor);
    return factor;
  };
  auto pass = [&](tableint n) {
    if (bits != nullptr && ((bits[n >> 6] >> (n & 63)) & 1u) == 0) return false;
    if (decide) return factor_of(n) > 0;
    return matches(ix, ix.slot_at[n], f);
  };
  auto exact = [&](tableint n) {
    return ix.distance(query, reinterpret_cast<const float*>(g.getDataByInternalId(n)));
  };
  // The query's own factor is left out: it scales every score alike.
  auto score = [&](tableint n) {
    const std::int8_t* code = codes + std::size_t{n} * row;
    return -static_cast<float>(detail::code_dot(query_code, code + sizeof(float), stride)) *
           std::fabs(factor_of(n));
  };

  tableint current = g.enterpoint_node_;
  float current_distance = exact(current);
  for (int level = g.maxlevel_; level > 0; --level) {
    for (bool changed = true; changed;) {
      changed = false;
      auto* links = g.get_linklist(current, level);
      const auto* next = reinterpret_cast<const tableint*>(links + 1);
      for (int i = 0, size = g.getListCount(links); i < size; ++i) {
        const float d = exact(next[i]);
        if (d < current_distance) {
          current_distance = d;
          current = next[i];
          changed = true;
        }
      }
    }
  }

  using scored = std::pair<float, tableint>;
  std::priority_queue<scored, std::vector<scored>, std::greater<scored>> to_expand;
  std::priority_queue<scored> found;  // the worst on top
  auto* visits = g.visited_list_pool_->getFreeVisitedList();
  const auto tag = visits->curV;
  auto* visited = visits->mass;
  auto offer = [&](tableint n, float d, bool matching) {
    if (found.size() < ef || d < found.top().first) {
      to_expand.emplace(d, n);
      if (matching) {
        found.emplace(d, n);
        if (found.size() > ef) found.pop();
      }
    }
  };
  visited[current] = tag;
  // The start navigates even when it does not match.
  current_distance = score(current);
  to_expand.emplace(current_distance, current);
  if (pass(current)) found.emplace(current_distance, current);

  const std::size_t cap = ix.config.two_hop_gather != 0 ? ix.config.two_hop_gather : g.maxM0_;
  std::size_t expansions = 0;
  bool within_budget = true;
  while (!to_expand.empty()) {
    const auto [distance, at] = to_expand.top();
    if (found.size() >= ef && distance > found.top().first) break;
    to_expand.pop();
    if (++expansions > ix.config.max_walk_expansions) {
      within_budget = false;
      break;
    }
    auto* links = g.get_linklist0(at);
    const auto* next = reinterpret_cast<const tableint*>(links + 1);
    const int size = g.getListCount(links);
    if (!two_hop) {
      for (int i = 0; i < size; ++i) {
        const tableint n = next[i];
        if (visited[n] == tag) continue;
        visited[n] = tag;
        offer(n, score(n), pass(n));
      }
      continue;
    }
    std::size_t gathered = 0;
    for (int i = 0; i < size; ++i) {
      const tableint n = next[i];
      if (visited[n] == tag || !pass(n)) continue;
      visited[n] = tag;
      offer(n, score(n), true);
      ++gathered;
    }
    for (int i = 0; i < size && gathered < cap; ++i) {
      const tableint bridge = next[i];
      if (visited[bridge] == tag) continue;  // a match scored above, or a bridge crossed before
      visited[bridge] = tag;
      auto* far = g.get_linklist0(bridge);
      const auto* beyond = reinterpret_cast<const tableint*>(far + 1);
      for (int j = 0, far_size = g.getListCount(far); j < far_size && gathered < cap; ++j) {
        const tableint n = beyond[j];
        if (visited[n] == tag || !pass(n)) continue;
        visited[n] = tag;
        offer(n, score(n), true);
        ++gathered;
      }
    }
  }
  g.visited_list_pool_->releaseVisitedList(visits);
  out.clear();
  out.reserve(found.size());
  for (; !found.empty(); found.pop()) {
    const tableint n = found.top().second;
    const std::uint32_t slot = ix.slot_at[n];
    out.push_back({exact(n), ix.ids[slot], slot});
  }
  return within_budget;
}

std::string walk_plan(bool two_hop, std::size_t ef) {
  return std::string(two_hop ? "walk2:ef=" : "walk:ef=") + std::to_string(ef);
}

}  // namespace

bool operator==(const pattern_entry& a, const pattern_entry& b) {
  return a.pattern_id == b.pattern_id && a.speaker_id == b.speaker_id &&
         a.client_id == b.client_id && a.bucket_type == b.bucket_type &&
         a.original_text == b.original_text && a.corrected_text == b.corrected_text &&
         a.context_text == b.context_text && a.error_categories == b.error_categories &&
         a.audio_quality == b.audio_quality && a.speaker_clarity == b.speaker_clarity &&
         a.background_noise == b.background_noise &&
         a.number_of_speakers == b.number_of_speakers &&
         a.overlapping_speech == b.overlapping_speech &&
         a.requires_specialized_knowledge == b.requires_specialized_knowledge &&
         a.status == b.status && a.weight == b.weight && a.created_at_ms == b.created_at_ms &&
         a.version == b.version;
}

bool operator==(const version_digest& a, const version_digest& b) {
  return a.count == b.count && a.max_version == b.max_version && a.version_sum == b.version_sum &&
         a.id_version_sum == b.id_version_sum;
}

// --- impl ---------------------------------------------------------------------------------

pattern_index::impl::impl(index_config cfg, std::string embedder)
    : config(cfg),
      embedder_name(std::move(embedder)),
      space(std::make_unique<hnswlib::InnerProductSpace>(cfg.dimension)),
      distance_function(space->get_dist_func()),
      distance_parameter(space->get_dist_func_param()),
      code_row(sizeof(float) + detail::code_stride(cfg.dimension)),
      sign_words(detail::sign_words(cfg.dimension)) {
  if (config.dimension == 0) throw std::invalid_argument("pattern index: dimension must be positive");
  if (config.m < 2) throw std::invalid_argument("pattern index: m must be at least 2");
  graph = std::make_unique<hnswlib::HierarchicalNSW<float>>(
      space.get(), std::max<std::size_t>(config.initial_capacity, 1), config.m, config.ef_construction,
      config.random_seed);
}

pattern_index::impl::~impl() = default;

std::size_t pattern_index::impl::graph_capacity() const { return graph->max_elements_; }
std::size_t pattern_index::impl::graph_nodes() const { return graph->cur_element_count; }
std::size_t pattern_index::impl::graph_deleted() const { return graph->num_deleted_; }

void pattern_index::impl::save_graph(const std::string& file) const { graph->saveIndex(file); }

// hnswlib 0.6.2's loading path leaves num_deleted_ and the buffers its destructor frees
// uninitialised until loadIndex assigns them, and the destructor runs even when loadIndex threw
// part way: set them first, and on failure leave nothing for the destructor to walk.
void pattern_index::impl::load_graph(const std::string& file) {
  auto loaded = std::make_unique<hnswlib::HierarchicalNSW<float>>(space.get());
  loaded->cur_element_count = 0;
  loaded->num_deleted_ = 0;
  loaded->data_level0_memory_ = nullptr;
  loaded->linkLists_ = nullptr;
  loaded->visited_list_pool_ = nullptr;
  try {
    loaded->loadIndex(file, space.get(), 0);
  } catch (const std::exception& e) {
    loaded->cur_element_count = 0;
    throw snapshot_error(std::string("snapshot graph: ") + e.what());
  }
  graph = std::move(loaded);
}

void pattern_index::impl::map_nodes(std::size_t slots) {
  const std::size_t nodes = graph->cur_element_count;
  node.assign(slots, 0);
  slot_at.assign(nodes, 0);
  std::vector<std::uint8_t> seen(slots, 0);
  for (std::size_t n = 0; n < nodes; ++n) {
    const auto label = graph->getExternalLabel(static_cast<hnswlib::tableint>(n));
    if (label >= slots || seen[label])
      throw snapshot_error("snapshot graph holds a node of no slot or two nodes of one");
    seen[label] = 1;
    node[label] = static_cast<std::uint32_t>(n);
    slot_at[n] = static_cast<std::uint32_t>(label);
  }
}

bool pattern_index::impl::live_in_graph(std::uint32_t slot) const {
  return !graph->isMarkedDeleted(node[slot]);
}

float pattern_index::impl::distance(const float* a, const float* b) const {
  return distance_function(a, b, distance_parameter);
}

const float* pattern_index::impl::vector_of(std::uint32_t slot) const {
  return reinterpret_cast<const float*>(graph->getDataByInternalId(node[slot]));
}

void pattern_index::impl::encode(std::uint32_t n) {
  if (codes.size() < (std::size_t{n} + 1) * code_row) {
    // As many rows as the graph has room for, like the graph's own storage: no doubling on top.
    const std::size_t rows = std::max<std::size_t>(n + 1, graph->max_elements_);
    if (codes.capacity() < rows * code_row) codes.reserve(rows * code_row);
    codes.resize(std::max<std::size_t>(n + 1, graph->cur_element_count) * code_row, 0);
  }
  std::int8_t* row = &codes[std::size_t{n} * code_row];
  const float factor =
      detail::quantise(reinterpret_cast<const float*>(graph->getDataByInternalId(n)), config.dimension,
                       code_row - sizeof(float), row + sizeof(float));
  std::memcpy(row, &factor, sizeof factor);
}

void pattern_index::impl::forget_code(std::uint32_t n) {
  if (codes.size() < (std::size_t{n} + 1) * code_row) return;
  // Negated, not zeroed: a dead node still carries the walk across the graph (hnswlib's does too).
  float factor;
  std::memcpy(&factor, &codes[std::size_t{n} * code_row], sizeof factor);
  factor = -std::fabs(factor);
  std::memcpy(&codes[std::size_t{n} * code_row], &factor, sizeof factor);
}

std::uint32_t pattern_index::impl::new_slot() {
  const auto slot = static_cast<std::uint32_t>(ids.size());
  node.push_back(0);
  ids.push_back(0);
  speaker.push_back(0);
  client.push_back(0);
  bucket.push_back(0);
  audio_quality.push_back(0);
  status.push_back(0);
  clarity.push_back(0);
  noise.push_back(0);
  category_mask.push_back(0);
  flags.push_back(0);
  speaker_count.push_back(0);
  created_at.push_back(0);
  version.push_back(0);
  weight.push_back(0);
  text_at.push_back(0);
  return slot;
}

namespace {

void put_varint(std::string& out, std::uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

std::uint64_t get_varint(const char*& at) {
  std::uint64_t v = 0;
  for (unsigned shift = 0;; shift += 7) {
    const auto byte = static_cast<unsigned char>(*at++);
    v |= static_cast<std::uint64_t>(byte & 0x7f) << shift;
    if ((byte & 0x80) == 0) return v;
  }
}

}  // namespace

std::array<std::string_view, 3> pattern_index::impl::texts(std::uint32_t slot) const {
  const char* at = text_bytes.data() + text_at[slot];
  std::array<std::uint64_t, 3> length{};
  for (auto& l : length) l = get_varint(at);
  std::array<std::string_view, 3> out;
  for (std::size_t i = 0; i < 3; ++i) {
    out[i] = std::string_view(at, length[i]);
    at += length[i];
  }
  return out;
}

void pattern_index::impl::drop_texts(std::uint32_t slot) {
  const auto t = texts(slot);
  const char* end = t[2].data() + t[2].size();
  text_garbage += static_cast<std::size_t>(end - (text_bytes.data() + text_at[slot]));
  // Rewritten once mostly garbage: linear in the live texts, at most as often as they double.
  if (text_garbage < (std::size_t{1} << 20) || text_garbage * 2 < text_bytes.size()) return;
  std::string kept;
  kept.reserve(text_bytes.size() - text_garbage);
  for (std::uint32_t s = 0; s < ids.size(); ++s) {
    if ((flags[s] & detail::slot_flag::alive) == 0 || s == slot) continue;
    const auto ts = texts(s);
    const char* from = text_bytes.data() + text_at[s];
    const std::uint64_t at = kept.size();
    kept.append(from, static_cast<std::size_t>(ts[2].data() + ts[2].size() - from));
    text_at[s] = at;
  }
  text_bytes = std::move(kept);
  text_garbage = 0;
  text_at[slot] = 0;
}

void pattern_index::impl::put_texts(std::uint32_t slot, const pattern_entry& e) {
  text_at[slot] = text_bytes.size();
  put_varint(text_bytes, e.original_text.size());
  put_varint(text_bytes, e.corrected_text.size());
  put_varint(text_bytes, e.context_text.size());
  text_bytes += e.original_text;
  text_bytes += e.corrected_text;
  text_bytes += e.context_text;
}

void pattern_index::impl::count(std::uint32_t slot, int delta) {
  auto bump = [delta](std::uint32_t& n) { n = static_cast<std::uint32_t>(static_cast<int>(n) + delta); };
  bump(speakers.live[speaker[slot]]);
  bump(clients.live[client[slot]]);
  bump(buckets.live[bucket[slot]]);
  bump(audio_qualities.live[audio_quality[slot]]);
  bump(statuses.live[status[slot]]);
  const std::uint64_t mask = category_mask[slot];
  for (std::uint32_t c = 0; c < detail::category_bits; ++c)
    if ((mask >> c) & 1u) bump(categories.live[c]);
  if (mask & detail::overflow_bit)
    for (std::uint32_t c : category_overflow.at(slot)) bump(categories.live[c]);
  if (flags[slot] & slot_flag::specialized)
    specialized_live = static_cast<std::size_t>(static_cast<long long>(specialized_live) + delta);
}

namespace {

template <class F>
void for_each_category(const pattern_index::impl& ix, std::uint32_t slot, F f) {
  const std::uint64_t mask = ix.category_mask[slot];
  for (std::uint32_t c = 0; c < detail::category_bits; ++c)
    if ((mask >> c) & 1u) f(c);
  if (mask & detail::overflow_bit)
    for (std::uint32_t c : ix.category_overflow.at(slot)) f(c);
}

std::vector<std::uint32_t> categories_of(const pattern_index::impl& ix, std::uint32_t slot) {
  std::vector<std::uint32_t> out;
  for_each_category(ix, slot, [&](std::uint32_t c) { out.push_back(c); });
  return out;
}

}  // namespace

void pattern_index::impl::write_columns(std::uint32_t slot, pattern_entry&& e) {
  ids[slot] = e.pattern_id;
  speaker[slot] = speakers.intern(e.speaker_id);
  client[slot] = clients.intern(e.client_id);
  bucket[slot] = buckets.intern(e.bucket_type);
  audio_quality[slot] = audio_qualities.intern(e.audio_quality);
  status[slot] = statuses.intern(e.status);
  clarity[slot] = clarities.intern(e.speaker_clarity);
  noise[slot] = noises.intern(e.background_noise);
  std::uint64_t mask = 0;
  std::vector<std::uint32_t> extra;
  for (const auto& name : e.error_categories) {
    const std::uint32_t c = categories.intern(name);
    if (c < detail::category_bits) {
      mask |= std::uint64_t{1} << c;
    } else if (std::find(extra.begin(), extra.end(), c) == extra.end()) {
      extra.push_back(c);
    }
  }
  category_overflow.erase(slot);
  if (!extra.empty()) {
    mask |= detail::overflow_bit;
    category_overflow.emplace(slot, std::move(extra));
  }
  category_mask[slot] = mask;
  flags[slot] = slot_flag::alive | (e.requires_specialized_knowledge ? slot_flag::specialized : 0) |
                (e.overlapping_speech ? slot_flag::overlapping : 0);
  speaker_count[slot] = e.number_of_speakers;
  created_at[slot] = e.created_at_ms;
  version[slot] = e.version;
  weight[slot] = e.weight;
  lowest_weight = std::min(lowest_weight, e.weight);
  put_texts(slot, e);
}

void pattern_index::impl::assign(std::uint32_t slot, pattern_entry&& e) {
  const std::int64_t id = e.pattern_id;
  write_columns(slot, std::move(e));
  count(slot, +1);
  slot_of[id] = slot;
  ++live;
}

void pattern_index::impl::link(std::uint32_t slot) {
  const auto n = static_cast<std::uint32_t>(graph->label_lookup_.at(slot));
  node[slot] = n;
  if (n >= slot_at.size()) slot_at.resize(std::max<std::size_t>(n + 1, graph->cur_element_count));
  slot_at[n] = slot;
  encode(n);
  list(speaker_nodes, speaker[slot], n, false);
  list(client_nodes, client[slot], n, true);
  for_each_category(*this, slot, [&](std::uint32_t c) { list(category_nodes, c, n, true); });
}

void pattern_index::impl::list(std::vector<detail::posting_list>& lists, std::uint32_t value,
                               std::uint32_t n, bool signed_list) {
  if (value >= lists.size()) lists.resize(value + 1);
  auto& l = lists[value];
  l.nodes.push_back(n);
  if (!signed_list) return;
  l.signs.resize(l.nodes.size() * sign_words);
  detail::sign_bits(reinterpret_cast<const float*>(graph->getDataByInternalId(n)), config.dimension,
                    &l.signs[(l.nodes.size() - 1) * sign_words]);
}

void pattern_index::impl::unlist(std::vector<detail::posting_list>& lists, std::uint32_t value,
                                 std::uint32_t n) {
  auto& l = lists[value];
  auto& nodes = l.nodes;
  auto it = std::find(nodes.begin(), nodes.end(), n);
  if (it == nodes.end()) return;
  const auto at = static_cast<std::size_t>(it - nodes.begin());
  *it = nodes.back();
  nodes.pop_back();
  if (l.signs.empty()) return;
  std::copy_n(l.signs.end() - static_cast<std::ptrdiff_t>(sign_words), sign_words,
              l.signs.begin() + static_cast<std::ptrdiff_t>(at * sign_words));
  l.signs.resize(nodes.size() * sign_words);
}

void pattern_index::impl::rewrite(std::uint32_t slot, pattern_entry&& e) {
  const std::uint32_t old_client = client[slot];
  const auto old_categories = categories_of(*this, slot);
  count(slot, -1);
  drop_texts(slot);
  write_columns(slot, std::move(e));
  count(slot, +1);
  // Rare (a verification changes weight and status): the lists are searched, not indexed.
  const std::uint32_t n = node[slot];
  if (client[slot] != old_client) {
    unlist(client_nodes, old_client, n);
    list(client_nodes, client[slot], n, true);
  }
  const auto new_categories = categories_of(*this, slot);
  for (auto c : old_categories)
    if (std::find(new_categories.begin(), new_categories.end(), c) == new_categories.end())
      unlist(category_nodes, c, n);
  for (auto c : new_categories)
    if (std::find(old_categories.begin(), old_categories.end(), c) == old_categories.end())
      list(category_nodes, c, n, true);
}

void pattern_index::impl::died_in(detail::posting_list& list) {
  ++list.dead;
  if (list.dead < posting_rewrite_min_dead || list.dead * 2 <= list.nodes.size()) return;
  auto& nodes = list.nodes;
  const bool with_signs = !list.signs.empty();
  std::size_t kept = 0;
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    if ((flags[slot_at[nodes[i]]] & slot_flag::alive) == 0) continue;
    nodes[kept] = nodes[i];
    if (with_signs)
      std::copy_n(list.signs.begin() + static_cast<std::ptrdiff_t>(i * sign_words), sign_words,
                  list.signs.begin() + static_cast<std::ptrdiff_t>(kept * sign_words));
    ++kept;
  }
  nodes.resize(kept);
  nodes.shrink_to_fit();
  if (with_signs) {
    list.signs.resize(kept * sign_words);
    list.signs.shrink_to_fit();
  }
  list.dead = 0;
}

void pattern_index::impl::kill(std::uint32_t slot) {
  count(slot, -1);
  drop_texts(slot);
  flags[slot] = static_cast<std::uint8_t>(flags[slot] & ~slot_flag::alive);
  slot_of.erase(ids[slot]);
  died_in(speaker_nodes[speaker[slot]]);
  died_in(client_nodes[client[slot]]);
  for_each_category(*this, slot, [&](std::uint32_t c) { died_in(category_nodes[c]); });
  category_overflow.erase(slot);
  forget_code(node[slot]);
  --live;
  ++tombstones;
  // Guarded by the alive flag: hnswlib throws on a second markDelete of the same label.
  graph->markDelete(slot);
}

void pattern_index::impl::ensure_graph_capacity(std::size_t elements) {
  const std::size_t current = graph->max_elements_;
  if (elements <= current) return;
  graph->resizeIndex(std::max(elements, current * 2));
}

pattern_entry pattern_index::impl::materialise(std::uint32_t slot) const {
  pattern_entry e;
  e.pattern_id = ids[slot];
  e.speaker_id = speakers.values[speaker[slot]];
  e.client_id = clients.values[client[slot]];
  e.bucket_type = buckets.values[bucket[slot]];
  const auto t = texts(slot);
  e.original_text = std::string(t[0]);
  e.corrected_text = std::string(t[1]);
  e.context_text = std::string(t[2]);
  for_each_category(*this, slot, [&](std::uint32_t c) { e.error_categories.push_back(categories.values[c]); });
  // Pool ids follow arrival order, which differs between a rebuild and the live index.
  std::sort(e.error_categories.begin(), e.error_categories.end());
  e.audio_quality = audio_qualities.values[audio_quality[slot]];
  e.speaker_clarity = clarities.values[clarity[slot]];
  e.background_noise = noises.values[noise[slot]];
  e.number_of_speakers = speaker_count[slot];
  e.overlapping_speech = (flags[slot] & slot_flag::overlapping) != 0;
  e.requires_specialized_knowledge = (flags[slot] & slot_flag::specialized) != 0;
  e.status = statuses.values[status[slot]];
  e.weight = weight[slot];
  e.created_at_ms = created_at[slot];
  e.version = version[slot];
  return e;
}

// --- pattern_index ------------------------------------------------------------------------

pattern_index::pattern_index(index_config config, std::string embedder_name)
    : impl_(std::make_unique<impl>(config, std::move(embedder_name))) {}

pattern_index::pattern_index(std::unique_ptr<impl> state) : impl_(std::move(state)) {}

pattern_index::~pattern_index() = default;
pattern_index::pattern_index(pattern_index&&) noexcept = default;
pattern_index& pattern_index::operator=(pattern_index&&) noexcept = default;

void pattern_index::upsert(pattern_entry entry, const std::vector<float>& vector) {
  auto& ix = *impl_;
  check_entry(entry);
  check_vector(vector, ix.config.dimension, "pattern vector");
  if (auto it = ix.slot_of.find(entry.pattern_id); it != ix.slot_of.end()) {
    const std::uint32_t slot = it->second;
    const bool same_place =
        ix.speakers.values[ix.speaker[slot]] == entry.speaker_id &&
        std::memcmp(ix.vector_of(slot), vector.data(), vector.size() * sizeof(float)) == 0;
    if (same_place) {
      // Metadata only (weight, status after verification): the graph node stays as it is.
      ix.rewrite(slot, std::move(entry));
      return;
    }
    ix.kill(slot);
  }
  ix.ensure_graph_capacity(ix.ids.size() + 1);
  const std::uint32_t slot = ix.new_slot();
  ix.assign(slot, std::move(entry));
  ix.graph->addPoint(vector.data(), slot);
  ix.link(slot);
}

void pattern_index::upsert_batch(std::vector<pattern_entry> entries,
                                 const std::vector<std::vector<float>>& vectors, unsigned threads) {
  auto& ix = *impl_;
  if (entries.size() != vectors.size())
    throw std::invalid_argument("upsert_batch: entries and vectors differ in number");
  for (std::size_t i = 0; i < entries.size(); ++i) {
    check_entry(entries[i]);
    check_vector(vectors[i], ix.config.dimension, "pattern vector");
  }
  // The last occurrence of a pattern_id wins, as if the batch were applied in order.
  std::vector<std::size_t> order;
  {
    std::unordered_set<std::int64_t> seen;
    for (std::size_t i = entries.size(); i-- > 0;)
      if (seen.insert(entries[i].pattern_id).second) order.push_back(i);
    std::reverse(order.begin(), order.end());
  }
  for (std::size_t i : order)
    if (auto it = ix.slot_of.find(entries[i].pattern_id); it != ix.slot_of.end()) ix.kill(it->second);

  ix.ensure_graph_capacity(ix.ids.size() + order.size());
  std::vector<std::pair<std::uint32_t, const float*>> work;
  work.reserve(order.size());
  for (std::size_t i : order) {
    const std::uint32_t slot = ix.new_slot();
    ix.assign(slot, std::move(entries[i]));
    work.emplace_back(slot, vectors[i].data());
  }

  const unsigned workers =
      static_cast<unsigned>(std::clamp<std::size_t>(threads, 1, std::max<std::size_t>(work.size(), 1)));
  if (workers == 1) {
    for (const auto& [slot, data] : work) {
      ix.graph->addPoint(data, slot);
      ix.link(slot);
    }
    return;
  }
  // hnswlib's addPoint is safe to call concurrently (its Python binding does the same).
  std::atomic<std::size_t> next{0};
  std::exception_ptr failure;
  std::mutex failure_mutex;
  auto run = [&] {
    try {
      for (std::size_t i = next++; i < work.size(); i = next++)
        ix.graph->addPoint(work[i].second, work[i].first);
    } catch (...) {
      std::lock_guard<std::mutex> lock(failure_mutex);
      if (!failure) failure = std::current_exception();
      next = work.size();
    }
  };
  std::vector<std::thread> pool;
  for (unsigned t = 1; t < workers; ++t) pool.emplace_back(run);
  run();
  for (auto& t : pool) t.join();
  if (failure) std::rethrow_exception(failure);
  for (const auto& work_item : work) ix.link(work_item.first);
}

bool pattern_index::erase(std::int64_t pattern_id) {
  auto& ix = *impl_;
  auto it = ix.slot_of.find(pattern_id);
  if (it == ix.slot_of.end()) return false;
  ix.kill(it->second);
  return true;
}

bool pattern_index::contains(std::int64_t pattern_id) const {
  return impl_->slot_of.count(pattern_id) > 0;
}

std::size_t pattern_index::erase_speakers_if(const std::function<bool(const std::string&)>& leaves) {
  auto& ix = *impl_;
  std::vector<char> going(ix.speakers.values.size(), 0);
  for (std::size_t i = 0; i < going.size(); ++i)
    if (ix.speakers.live[i] > 0) going[i] = leaves(ix.speakers.values[i]) ? 1 : 0;
  std::vector<std::uint32_t> slots;
  for (const auto& [id, slot] : ix.slot_of)
    if (going[ix.speaker[slot]]) slots.push_back(slot);
  for (auto slot : slots) ix.kill(slot);
  return slots.size();
}

std::optional<pattern_entry> pattern_index::find(std::int64_t pattern_id) const {
  const auto& ix = *impl_;
  auto it = ix.slot_of.find(pattern_id);
  if (it == ix.slot_of.end()) return std::nullopt;
  return ix.materialise(it->second);
}

namespace {

// The top k of every query under one filter. The plan depends only on the filter and the index,
// so it is chosen once for all queries; a walk that cannot find k matches falls back per query.
std::vector<std::vector<candidate>> search_all(const pattern_index::impl& ix,
                                               const std::vector<const float*>& queries,
                                               const search_filter& filter, std::size_t k,
                                               std::string& plan) {
  const compiled_filter f = compile(ix, filter);
  if (k == 0 || ix.live == 0 || f.impossible || queries.empty()) {
    plan = "empty";
    return std::vector<std::vector<candidate>>(queries.size());
  }

  // Upper bound and independence estimate of the matches, from the per-value live counts. Date
  // range and weight floor have no counts: they are checked on every candidate, and a filter they
  // make selective ends in the walk's budget and the exact fallback below.
  const double total = static_cast<double>(ix.live);
  std::size_t upper = ix.live;
  double selectivity = 1.0;
  auto narrow = [&](std::size_t matching) {
    upper = std::min(upper, matching);
    selectivity *= static_cast<double>(matching) / total;
  };
  if (f.speaker) narrow(ix.speakers.live[*f.speaker]);
  if (f.client) narrow(ix.clients.live[*f.client]);
  if (f.clients) {
    std::size_t in_scope = 0;
    for (auto id : *f.clients) in_scope += ix.clients.live[id];
    narrow(in_scope);
  }
  if (f.bucket) narrow(ix.buckets.live[*f.bucket]);
  if (f.audio_quality) narrow(ix.audio_qualities.live[*f.audio_quality]);
  if (f.status) narrow(ix.statuses.live[*f.status]);
  if (f.category) narrow(ix.categories.live[*f.category]);
  if (f.specialized) narrow(*f.specialized ? ix.specialized_live : ix.live - ix.specialized_live);
  if (upper == 0) {
    plan = "empty";
    return std::vector<std::vector<candidate>>(queries.size());
  }

  const candidate_lists lists = narrowest_lists(ix, f);
  const bool prescan = lists.name != nullptr && lists.nodes >= ix.config.code_scan_min;
  const bool by_signs =
      prescan && lists.nodes >= ix.config.sign_scan_min && lists.nodes <= ix.config.sign_scan_max &&
      std::all_of(lists.lists.begin(), lists.lists.end(), [&](const detail::posting_list* l) {
        return l->signs.size() == l->nodes.size() * ix.sign_words;
      });
  if (by_signs) {
    plan = std::string("bits:") + lists.name;
    return sign_scan(ix, lists.lists, queries, f, lists_decide(ix, f), k);
  }
  auto exact = [&](const std::vector<const float*>& these) {
    if (prescan) return prescan_lists(ix, lists.lists, these, f, lists_decide(ix, f), k);
    return lists.name != nullptr ? scan_lists(ix, lists.lists, these, f, k)
                                 : scan_columns(ix, these, f, k);
  };
  const std::string exact_plan =
      std::string(prescan ? "int8:" : "exact:") + (lists.name != nullptr ? lists.name : "scan");
  if (upper <= ix.config.exact_threshold &&
      (lists.name != nullptr ? lists.nodes : ix.ids.size()) <= ix.config.exact_threshold * 4) {
    plan = exact_plan;
    return exact(queries);
  }

  std::vector<std::vector<candidate>> best;
  best.reserve(queries.size());
  const bool unfiltered = selectivity >= 1.0 && f.from_ms == 0 && f.to_ms == 0 && f.min_weight <= 0;
  if (unfiltered) {
    // Every live pattern matches: hnswlib's own search, which skips tombstones itself.
    const std::size_t ef = std::max(search_ef(ix.config, ix.live), k);
    ix.graph->setEf(ef);
    for (const float* query : queries) {
      top_k kept(k);
      for (auto found = ix.graph->searchKnn(query, k); !found.empty(); found.pop()) {
        const auto slot = static_cast<std::uint32_t>(found.top().second);
        kept.offer({found.top().first, ix.ids[slot], slot});
      }
      best.push_back(std::move(kept).sorted());
    }
    plan = "hnsw:ef=" + std::to_string(ef);
    return best;
  }

  const std::size_t ef = std::max(ix.config.walk_ef, k);
  const bool two_hop = selectivity < ix.config.two_hop_selectivity;
  const std::uint64_t* bits = nullptr;
  if (lists.name != nullptr && lists.nodes < ix.graph_nodes() / 2) {
    ix.node_bits.resize((ix.graph_nodes() + 63) / 64, 0);
    for (const auto* l : lists.lists)
      for (auto n : l->nodes) ix.node_bits[n >> 6] |= std::uint64_t{1} << (n & 63);
    bits = ix.node_bits.data();
  }
  const std::string walked = walk_plan(two_hop, ef);
  const std::string fallback = exact_plan + "(" + walked + ")";
  bool walked_all = false, fell_back = false;
  const bool decide = bits != nullptr && lists_decide(ix, f);
  const std::size_t stride = ix.code_row - sizeof(float);
  std::vector<std::int8_t> query_code(stride);
  std::vector<candidate> found;
  for (const float* query : queries) {
    top_k kept(k);
    detail::quantise(query, ix.config.dimension, stride, query_code.data());
    if (walk(ix, f, bits, decide, query, query_code.data(), ef, two_hop, found)) {
      for (const auto& c : found) kept.offer(c);
    }
    if (kept.size() >= k) {
      walked_all = true;
      best.push_back(std::move(kept).sorted());
    } else {
      // Fewer than k matches reached: the filter may hold fewer, or its nodes may not be connected
      // through the graph. Only an exact scan can tell.
      fell_back = true;
      best.push_back(std::move(exact({query}).front()));
    }
  }
  if (bits != nullptr)
    for (const auto* l : lists.lists)
      for (auto n : l->nodes) ix.node_bits[n >> 6] = 0;
  // The distinct plans of the queries, in a fixed order.
  plan = walked_all ? walked : "";
  if (fell_back) plan += (plan.empty() ? "" : " ") + fallback;
  return best;
}

}  // namespace

search_result pattern_index::search(const std::vector<float>& query, const search_filter& filter,
                                    std::size_t k) const {
  const auto& ix = *impl_;
  check_vector(query, ix.config.dimension, "query vector");
  search_result out;
  auto found = search_all(ix, {query.data()}, filter, k, out.plan);
  out.hits.reserve(found.front().size());
  for (const auto& c : found.front()) out.hits.push_back({ix.materialise(c.slot), 1.0f - c.distance});
  return out;
}

batch_search_result pattern_index::search_batch(const std::vector<std::vector<float>>& queries,
                                                const search_filter& filter, std::size_t k) const {
  const auto& ix = *impl_;
  std::vector<const float*> pointers;
  pointers.reserve(queries.size());
  for (std::size_t i = 0; i < queries.size(); ++i) {
    check_vector(queries[i], ix.config.dimension, ("query vector " + std::to_string(i)).c_str());
    pointers.push_back(queries[i].data());
  }
  batch_search_result out;
  auto found = search_all(ix, pointers, filter, k, out.plan);
  // Each pattern materialised once, however many queries found it.
  std::vector<std::uint32_t> slots;
  for (const auto& list : found)
    for (const auto& c : list) slots.push_back(c.slot);
  std::sort(slots.begin(), slots.end(),
            [&ix](std::uint32_t a, std::uint32_t b) { return ix.ids[a] < ix.ids[b]; });
  slots.erase(std::unique(slots.begin(), slots.end()), slots.end());
  out.patterns.reserve(slots.size());
  for (std::uint32_t slot : slots) out.patterns.push_back(ix.materialise(slot));
  out.per_query.reserve(found.size());
  for (const auto& list : found) {
    auto& hits = out.per_query.emplace_back();
    hits.reserve(list.size());
    for (const auto& c : list) {
      const auto at = std::lower_bound(slots.begin(), slots.end(), c.slot,
                                       [&ix](std::uint32_t a, std::uint32_t b) { return ix.ids[a] < ix.ids[b]; });
      hits.emplace_back(static_cast<std::uint32_t>(at - slots.begin()), 1.0f - c.distance);
    }
  }
  return out;
}

std::size_t pattern_index::size() const { return impl_->live; }
std::size_t pattern_index::deleted() const { return impl_->tombstones; }
std::size_t pattern_index::capacity() const { return impl_->graph_capacity(); }

bool pattern_index::needs_compaction() const {
  const auto& ix = *impl_;
  const double all = static_cast<double>(ix.live + ix.tombstones);
  return ix.tombstones >= ix.config.compaction_min_tombstones &&
         static_cast<double>(ix.tombstones) > ix.config.compaction_fraction * all;
}

void pattern_index::compact(unsigned threads) {
  const auto& ix = *impl_;
  std::vector<pattern_entry> entries;
  std::vector<std::vector<float>> vectors;
  entries.reserve(ix.live);
  vectors.reserve(ix.live);
  for (std::uint32_t slot = 0; slot < ix.ids.size(); ++slot) {
    if ((ix.flags[slot] & slot_flag::alive) == 0) continue;
    entries.push_back(ix.materialise(slot));
    const float* v = ix.vector_of(slot);
    vectors.emplace_back(v, v + ix.config.dimension);
  }
  index_config cfg = ix.config;
  cfg.initial_capacity = std::max(cfg.initial_capacity, entries.size());
  pattern_index fresh(cfg, ix.embedder_name);
  fresh.upsert_batch(std::move(entries), vectors, threads);
  fresh.impl_->config.initial_capacity = ix.config.initial_capacity;
  fresh.impl_->source_tag = ix.source_tag;
  *this = std::move(fresh);
}

version_digest pattern_index::digest() const {
  const auto& ix = *impl_;
  version_digest d;
  for (std::uint32_t slot = 0; slot < ix.ids.size(); ++slot) {
    if ((ix.flags[slot] & slot_flag::alive) == 0) continue;
    const auto id = static_cast<std::uint64_t>(ix.ids[slot]);
    const auto v = static_cast<std::uint64_t>(ix.version[slot]);
    ++d.count;
    d.max_version = std::max(d.max_version, ix.version[slot]);
    d.version_sum += v;
    d.id_version_sum += id * v;
  }
  return d;
}

const index_config& pattern_index::config() const { return impl_->config; }
const std::string& pattern_index::source_tag() const { return impl_->source_tag; }
void pattern_index::set_source_tag(std::string tag) { impl_->source_tag = std::move(tag); }
const std::string& pattern_index::embedder_name() const { return impl_->embedder_name; }

std::size_t search_ef(const index_config& config, std::size_t live) {
  if (live <= config.ef_reference_size || config.ef_reference_size == 0) return config.ef_search;
  const double growth =
      std::pow(static_cast<double>(live) / static_cast<double>(config.ef_reference_size), 0.6);
  return static_cast<std::size_t>(std::ceil(static_cast<double>(config.ef_search) * growth));
}

std::vector<float> pattern_vector(const embedder& embedder, std::string_view original_text,
                                  std::string_view context_text) {
  std::vector<float> original = embedder.embed(original_text);
  if (context_text.empty()) return original;
  std::vector<float> context = embedder.embed(context_text);
  auto norm2 = [](const std::vector<float>& v) {
    double s = 0;
    for (float x : v) s += static_cast<double>(x) * x;
    return s;
  };
  if (norm2(context) == 0) return original;
  if (norm2(original) == 0) return context;
  const double a = std::sqrt(static_cast<double>(original_share));
  const double b = std::sqrt(1.0 - static_cast<double>(original_share));
  std::vector<double> mixed(original.size());
  double squares = 0;
  for (std::size_t i = 0; i < original.size(); ++i) {
    mixed[i] = a * original[i] + b * context[i];
    squares += mixed[i] * mixed[i];
  }
  const double scale = squares > 0 ? 1.0 / std::sqrt(squares) : 0.0;
  for (std::size_t i = 0; i < original.size(); ++i) original[i] = static_cast<float>(mixed[i] * scale);
  return original;
}

}  // namespace sbm::patterns

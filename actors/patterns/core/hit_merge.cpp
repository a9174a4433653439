#include "actors/patterns/core/hit_merge.hpp"

#include <algorithm>
#include <unordered_set>

namespace sbm::patterns {

std::vector<merged_pick> merge_top_k(const std::vector<std::vector<ranked_hit>>& lists, std::size_t k) {
  std::vector<merged_pick> all;
  std::size_t total = 0;
  for (const auto& l : lists) total += l.size();
  all.reserve(total);
  for (std::uint32_t s = 0; s < lists.size(); ++s)
    for (std::uint32_t i = 0; i < lists[s].size(); ++i) all.push_back({s, i});
  auto hit = [&](const merged_pick& p) -> const ranked_hit& { return lists[p.source][p.at]; };
  std::sort(all.begin(), all.end(), [&](const merged_pick& a, const merged_pick& b) {
    const auto& x = hit(a);
    const auto& y = hit(b);
    if (x.similarity != y.similarity) return x.similarity > y.similarity;
    if (x.pattern_id != y.pattern_id) return x.pattern_id < y.pattern_id;
    return a.source < b.source;
  });
  std::vector<merged_pick> out;
  std::unordered_set<std::int64_t> seen;
  for (const auto& p : all) {
    if (out.size() >= k) break;
    if (seen.insert(hit(p).pattern_id).second) out.push_back(p);
  }
  return out;
}

}  // namespace sbm::patterns

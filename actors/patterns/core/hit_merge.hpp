#pragma once
// The merge of a scattered search: each member of the cluster answers its own top k (the patterns
// of the speakers it owns) with their similarities, and the cluster's top k is the best k of those
// lists. Exact for what the members return: a pattern in the true top k is in its owner's top k.
// A pattern two members hold for a moment (a speaker moving between them) is kept once, so a
// client never sees a duplicate. Pure: no CAF.
#include <cstddef>
#include <cstdint>
#include <vector>

namespace sbm::patterns {

struct ranked_hit {
  std::int64_t pattern_id = 0;
  double similarity = 0;
};

// Where a merged hit came from: lists[source][at].
struct merged_pick {
  std::uint32_t source = 0;
  std::uint32_t at = 0;
};

// The best k hits of all lists: by similarity, highest first, ties by ascending pattern_id (the
// order one index answers in), each pattern_id once (its best). Lists need not be sorted.
std::vector<merged_pick> merge_top_k(const std::vector<std::vector<ranked_hit>>& lists, std::size_t k);

}  // namespace sbm::patterns

#include "runtime/domain/placement.hpp"

namespace sbm::domain {

namespace {

// FNV-1a over the bytes, then SplitMix64's finaliser: FNV alone leaves the high bits of short,
// similar keys (spk-1, spk-2, ...) correlated, which skews who wins.
std::uint64_t fnv1a(std::uint64_t h, std::string_view bytes) {
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

std::uint64_t mix(std::uint64_t z) {
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

}  // namespace

std::uint64_t rendezvous_score(std::string_view member, std::string_view speaker_id) {
  std::uint64_t h = fnv1a(0xcbf29ce484222325ULL, member);
  h = fnv1a(h ^ 0xff, speaker_id);  // a separator, so ("ab","c") and ("a","bc") differ
  return mix(h);
}

std::size_t owner_index(const std::vector<std::string>& members, std::string_view speaker_id) {
  std::size_t best = members.size();
  std::uint64_t best_score = 0;
  for (std::size_t i = 0; i < members.size(); ++i) {
    const auto score = rendezvous_score(members[i], speaker_id);
    if (best == members.size() || score > best_score ||
        (score == best_score && members[i] < members[best])) {
      best = i;
      best_score = score;
    }
  }
  return best;
}

}  // namespace sbm::domain

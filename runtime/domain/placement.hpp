#pragma once
// Which live member owns a speaker: rendezvous (highest random weight) hashing. Every node that
// sees the same member list picks the same owner with no coordination, and when a member joins
// or leaves only the speakers it wins or held move (about 1/N of them), never the others.
// Pure: no CAF, no I/O.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace sbm::domain {

// The score of `member` for `speaker_id`; the owner is the member with the highest score. Stable
// across processes, builds and machines (a fixed hash, not std::hash).
std::uint64_t rendezvous_score(std::string_view member, std::string_view speaker_id);

// The index in `members` of the speaker's owner, or members.size() when there is none. Ties
// (never seen with 64-bit scores) go to the smaller member name, so the order of the list does
// not matter.
std::size_t owner_index(const std::vector<std::string>& members, std::string_view speaker_id);

}  // namespace sbm::domain

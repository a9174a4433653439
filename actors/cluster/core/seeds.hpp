#pragma once
// cluster.seeds as the node reads it: "host:port,host:port". Pure: no CAF, no I/O.
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace sbm::cluster {

using seed_address = std::pair<std::string, std::uint16_t>;

// The seeds in order (spaces around entries ignored, empty entries skipped), or the reason the
// text is not such a list, naming the bad entry.
std::variant<std::vector<seed_address>, std::string> parse_seeds(std::string_view text);

}  // namespace sbm::cluster

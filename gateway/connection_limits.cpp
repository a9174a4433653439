#include "gateway/connection_limits.hpp"

#include <stdexcept>

namespace sbm::gateway {

namespace {

rate_limit_settings rate_of(const connection_limit_settings& s) {
  rate_limit_settings r;
  r.rate = s.rate;
  r.burst = s.burst;
  r.max_clients = s.max_addresses;
  return r;
}

}  // namespace

connection_limits::connection_limits(connection_limit_settings settings,
                                     std::set<std::string, std::less<>> exempt)
  : settings_(settings), exempt_(std::move(exempt)), rate_(rate_of(settings)) {
  if (settings_.per_address == 0)
    throw std::invalid_argument("connections per address must be at least 1");
}

bool connection_limits::admit(const std::string& address, time_point now) {
  if (exempt_.count(address))
    return true;
  auto i = open_.find(address);
  if (i != open_.end() && i->second >= settings_.per_address)
    return false;
  return rate_.take(address, now).allowed;
}

void connection_limits::opened(std::uint64_t id, const std::string& address) {
  if (!by_id_.emplace(id, address).second)
    return;
  ++open_[address];
}

void connection_limits::closed(std::uint64_t id) {
  auto i = by_id_.find(id);
  if (i == by_id_.end())
    return;
  auto j = open_.find(i->second);
  if (j != open_.end() && --j->second == 0)
    open_.erase(j);
  by_id_.erase(i);
}

std::size_t connection_limits::open_from(const std::string& address) const {
  auto i = open_.find(address);
  return i == open_.end() ? 0 : i->second;
}

}  // namespace sbm::gateway

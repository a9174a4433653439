#pragma once
// Connections per client address, so one address cannot take every connection slot: at most
// `per_address` open at once, and new ones at most `rate` per second (with a burst), both checked
// when a connection is accepted. The global connection limit stays the HTTP server's. Addresses in
// `exempt` (trusted proxies, which carry many clients) are not limited here. Pure and
// single-threaded: the HTTP server owns it behind a mutex and passes the time in.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <unordered_map>

#include "gateway/rate_limiter.hpp"

namespace sbm::gateway {

struct connection_limit_settings {
  std::size_t per_address = 512;     // open connections from one address
  double rate = 500;                 // new connections per second from one address; 0: no limit
  double burst = 1000;               // new connections an address that has been quiet may open at once
  std::size_t max_addresses = 10000; // addresses whose rate is remembered (idle ones forgotten first)
};

class connection_limits {
 public:
  using time_point = rate_limiter::time_point;

  // Throws std::invalid_argument on per_address == 0 or the rate limiter's own refusals.
  explicit connection_limits(connection_limit_settings settings,
                             std::set<std::string, std::less<>> exempt = {});

  // Whether a connection just accepted from `address` may stay open. A refused one is not counted.
  bool admit(const std::string& address, time_point now);
  // The server reports each admitted connection once it is set up, and its end; an id closed
  // without having been opened is ignored.
  void opened(std::uint64_t id, const std::string& address);
  void closed(std::uint64_t id);

  std::size_t open_from(const std::string& address) const;
  std::size_t open_total() const { return by_id_.size(); }

 private:
  connection_limit_settings settings_;
  std::set<std::string, std::less<>> exempt_;
  rate_limiter rate_;
  std::unordered_map<std::string, std::size_t> open_;  // only addresses with open connections
  std::unordered_map<std::uint64_t, std::string> by_id_;
};

}  // namespace sbm::gateway

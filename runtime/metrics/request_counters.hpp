#pragma once
// The HTTP server's request counts and latencies by route, method and status. Counting is on the
// path of every request, so it takes no lock and sends no message: each thread that answers
// requests writes a shard of its own (relaxed atomics, one writer each), and a scrape adds the
// shards up. A thread finds its shard through a thread-local cache; only its first count (per
// counters object) takes the registry's lock.
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "runtime/metrics/histogram.hpp"

namespace sbm::metrics {

// The methods counted by name; anything else is "OTHER".
enum class http_method : std::uint8_t { get, head, post, put, patch, del, options, other };
inline constexpr std::size_t http_method_count = 8;
http_method method_of(std::string_view method);
std::string_view name_of(http_method m);

// The statuses counted by code; anything else is counted as "other".
const std::vector<std::uint16_t>& counted_statuses();

class request_counters {
 public:
  // Routes are 0..routes-1; one more slot counts requests no route matched or that were refused
  // before routing (route -1).
  explicit request_counters(std::size_t routes);
  ~request_counters();
  request_counters(const request_counters&) = delete;
  request_counters& operator=(const request_counters&) = delete;

  void count(int route, http_method method, std::uint16_t status, double seconds) noexcept;

  struct count_row {
    int route;  // -1: not routed
    http_method method;
    std::uint16_t status;  // 0: a status not in counted_statuses()
    std::uint64_t count;
  };
  struct latency_row {
    int route;
    http_method method;
    histogram_counts latency;  // seconds
  };
  struct snapshot {
    std::vector<count_row> counts;       // rows that counted anything
    std::vector<latency_row> latencies;  // likewise
  };
  // Adds up every thread's shard. Each shard only grows, so successive snapshots never go down.
  snapshot collect() const;

 private:
  struct shard;
  shard& local();

  std::size_t routes_;  // including the slot of unrouted requests
  std::uint64_t id_;    // tells this object's shards from another's in a thread's cache
  mutable std::mutex mutex_;
  std::unordered_map<std::thread::id, std::unique_ptr<shard>> shards_;
};

}  // namespace sbm::metrics

#pragma once
// A fixed-bucket histogram as Prometheus keeps one: counts per upper bound, a sum, a count. Owned
// by one actor's state (or one thread's shard), so it needs no synchronisation.
#include <cstdint>
#include <vector>

namespace sbm::metrics {

// Latency buckets in seconds, from half a millisecond to ten seconds.
const std::vector<double>& latency_buckets();

// What a histogram holds at one moment: `counts` per bucket, not cumulative, one more than
// `bounds` (the last counts what lay above every bound).
struct histogram_counts {
  std::vector<double> bounds;
  std::vector<std::uint64_t> counts;
  double sum = 0;
};

class histogram {
 public:
  explicit histogram(const std::vector<double>& bounds = latency_buckets());
  void observe(double value);
  const histogram_counts& counts() const { return data_; }

 private:
  histogram_counts data_;
};

// The bucket `value` falls in: the first bound it does not exceed, or bounds.size() when above all.
std::size_t bucket_of(const std::vector<double>& bounds, double value);

}  // namespace sbm::metrics

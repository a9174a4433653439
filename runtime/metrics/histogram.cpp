#include "runtime/metrics/histogram.hpp"

#include <algorithm>

namespace sbm::metrics {

const std::vector<double>& latency_buckets() {
  static const std::vector<double> bounds{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                          0.05,   0.1,   0.25,   0.5,   1,    2.5,   5, 10};
  return bounds;
}

std::size_t bucket_of(const std::vector<double>& bounds, double value) {
  return static_cast<std::size_t>(std::lower_bound(bounds.begin(), bounds.end(), value) -
                                  bounds.begin());
}

histogram::histogram(const std::vector<double>& bounds) {
  data_.bounds = bounds;
  data_.counts.assign(bounds.size() + 1, 0);
}

void histogram::observe(double value) {
  ++data_.counts[bucket_of(data_.bounds, value)];
  data_.sum += value;
}

}  // namespace sbm::metrics

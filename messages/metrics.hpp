#pragma once
// What a component tells a metrics scrape: a typed snapshot of the small counters its state keeps
// (the shard for its speakers, a connection supervisor for its pool and breaker, ...), answered to
// {metrics_atom}. Numbers travel as numbers; names come from the node's catalogue of metric
// families (gateway/metrics.cpp), never from text to be parsed. Serialisable: a later scrape asks
// other nodes the same way.
#include <caf/meta/type_name.hpp>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "messages/atoms.hpp"

namespace sbm {

using metric_labels = std::vector<std::pair<std::string, std::string>>;

// One counter or gauge sample.
struct metric_sample {
  std::string name;  // e.g. "sbm_speaker_activations_total"
  metric_labels labels;
  double value = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, metric_sample& x) {
  return f(caf::meta::type_name("metric_sample"), x.name, x.labels, x.value);
}

// One histogram: `counts` per bucket, not cumulative, one more than `bounds` (the last counts what
// lay above every bound); the exposition makes them cumulative.
struct histogram_sample {
  std::string name;
  metric_labels labels;
  std::vector<double> bounds;
  std::vector<std::uint64_t> counts;
  double sum = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, histogram_sample& x) {
  return f(caf::meta::type_name("histogram_sample"), x.name, x.labels, x.bounds, x.counts, x.sum);
}

// A bounded queue: what waits in it now against its bound. Also the `queues` section of
// GET /v1/status.
struct queue_gauge {
  std::string name;     // "postgres.queued", "drafts.in-flight", ...
  std::string setting;  // the option that sets the bound ("postgres.max-queued"); empty: fixed
  std::uint64_t depth = 0;
  std::uint64_t bound = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, queue_gauge& x) {
  return f(caf::meta::type_name("queue_gauge"), x.name, x.setting, x.depth, x.bound);
}

struct component_metrics {
  std::string component;  // "postgres", "speakers", ...
  std::vector<metric_sample> samples;
  std::vector<histogram_sample> histograms;
  std::vector<queue_gauge> queues;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, component_metrics& x) {
  return f(caf::meta::type_name("component_metrics"), x.component, x.samples, x.histograms,
           x.queues);
}

}  // namespace sbm

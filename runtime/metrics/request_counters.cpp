#include "runtime/metrics/request_counters.hpp"

#include <algorithm>

namespace sbm::metrics {

namespace {

std::atomic<std::uint64_t> next_counters_id{1};

// One writer per shard: a relaxed load and store is enough, and costs no locked instruction.
void bump(std::atomic<std::uint64_t>& c, std::uint64_t by = 1) noexcept {
  c.store(c.load(std::memory_order_relaxed) + by, std::memory_order_relaxed);
}

std::size_t status_slot(std::uint16_t status) {
  const auto& known = counted_statuses();
  auto it = std::lower_bound(known.begin(), known.end(), status);
  if (it != known.end() && *it == status)
    return static_cast<std::size_t>(it - known.begin());
  return known.size();  // "other"
}

}  // namespace

http_method method_of(std::string_view m) {
  if (m == "GET") return http_method::get;
  if (m == "HEAD") return http_method::head;
  if (m == "POST") return http_method::post;
  if (m == "PUT") return http_method::put;
  if (m == "PATCH") return http_method::patch;
  if (m == "DELETE") return http_method::del;
  if (m == "OPTIONS") return http_method::options;
  return http_method::other;
}

std::string_view name_of(http_method m) {
  switch (m) {
    case http_method::get: return "GET";
    case http_method::head: return "HEAD";
    case http_method::post: return "POST";
    case http_method::put: return "PUT";
    case http_method::patch: return "PATCH";
    case http_method::del: return "DELETE";
    case http_method::options: return "OPTIONS";
    case http_method::other: break;
  }
  return "OTHER";
}

const std::vector<std::uint16_t>& counted_statuses() {
  // Sorted: every status SBM answers with.
  static const std::vector<std::uint16_t> statuses{200, 201, 202, 204, 304, 400, 401, 403, 404, 405,
                                                   409, 413, 415, 417, 422, 429, 500, 503, 504};
  return statuses;
}

struct request_counters::shard {
  shard(std::size_t routes)
    : statuses(counted_statuses().size() + 1),
      buckets(latency_buckets().size() + 1),
      counts(routes * http_method_count * statuses),
      latency(routes * http_method_count * buckets),
      latency_micros(routes * http_method_count) {}
  std::size_t statuses;
  std::size_t buckets;
  std::vector<std::atomic<std::uint64_t>> counts;          // [route][method][status]
  std::vector<std::atomic<std::uint64_t>> latency;         // [route][method][bucket]
  std::vector<std::atomic<std::uint64_t>> latency_micros;  // [route][method]: the sum
};

request_counters::request_counters(std::size_t routes)
  : routes_(routes + 1), id_(next_counters_id.fetch_add(1)) {}

request_counters::~request_counters() = default;

request_counters::shard& request_counters::local() {
  struct cached {
    std::uint64_t owner = 0;
    shard* s = nullptr;
  };
  thread_local cached cache;
  if (cache.owner == id_)
    return *cache.s;
  std::lock_guard<std::mutex> guard{mutex_};
  auto& slot = shards_[std::this_thread::get_id()];
  if (!slot)
    slot = std::make_unique<shard>(routes_);
  cache = cached{id_, slot.get()};
  return *slot;
}

void request_counters::count(int route, http_method method, std::uint16_t status,
                             double seconds) noexcept {
  const std::size_t r = route >= 0 && static_cast<std::size_t>(route) + 1 < routes_
                          ? static_cast<std::size_t>(route)
                          : routes_ - 1;
  auto& s = local();
  const auto rm = r * http_method_count + static_cast<std::size_t>(method);
  bump(s.counts[rm * s.statuses + status_slot(status)]);
  bump(s.latency[rm * s.buckets + bucket_of(latency_buckets(), seconds)]);
  bump(s.latency_micros[rm], static_cast<std::uint64_t>(std::max(0.0, seconds) * 1e6));
}

request_counters::snapshot request_counters::collect() const {
  const auto statuses = counted_statuses().size() + 1;
  const auto buckets = latency_buckets().size() + 1;
  std::vector<std::uint64_t> counts(routes_ * http_method_count * statuses);
  std::vector<std::uint64_t> latency(routes_ * http_method_count * buckets);
  std::vector<std::uint64_t> micros(routes_ * http_method_count);
  {
    std::lock_guard<std::mutex> guard{mutex_};
    for (const auto& [thread, s] : shards_) {
      for (std::size_t i = 0; i < counts.size(); ++i)
        counts[i] += s->counts[i].load(std::memory_order_relaxed);
      for (std::size_t i = 0; i < latency.size(); ++i)
        latency[i] += s->latency[i].load(std::memory_order_relaxed);
      for (std::size_t i = 0; i < micros.size(); ++i)
        micros[i] += s->latency_micros[i].load(std::memory_order_relaxed);
    }
  }
  snapshot out;
  const auto route_of = [this](std::size_t r) {
    return r + 1 == routes_ ? -1 : static_cast<int>(r);
  };
  for (std::size_t r = 0; r < routes_; ++r) {
    for (std::size_t m = 0; m < http_method_count; ++m) {
      const auto rm = r * http_method_count + m;
      bool any = false;
      for (std::size_t st = 0; st < statuses; ++st) {
        const auto n = counts[rm * statuses + st];
        if (n == 0)
          continue;
        any = true;
        const std::uint16_t code = st < counted_statuses().size() ? counted_statuses()[st] : 0;
        out.counts.push_back(count_row{route_of(r), static_cast<http_method>(m), code, n});
      }
      if (!any)
        continue;
      latency_row row{route_of(r), static_cast<http_method>(m), {}};
      row.latency.bounds = latency_buckets();
      row.latency.counts.assign(latency.begin() + static_cast<std::ptrdiff_t>(rm * buckets),
                                latency.begin() + static_cast<std::ptrdiff_t>((rm + 1) * buckets));
      row.latency.sum = static_cast<double>(micros[rm]) / 1e6;
      out.latencies.push_back(std::move(row));
    }
  }
  return out;
}

}  // namespace sbm::metrics

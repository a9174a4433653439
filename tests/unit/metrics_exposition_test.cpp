// The text exposition renderer (runtime/metrics/exposition) and the HTTP request counters.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <thread>

#include "runtime/metrics/exposition.hpp"
#include "runtime/metrics/request_counters.hpp"

using namespace sbm::metrics;

TEST(MetricsExposition, LabelValuesAreEscaped) {
  EXPECT_EQ(escape_label_value(R"(a"b\c)" "\nd"), R"(a\"b\\c\nd)");
  EXPECT_EQ(escape_help("x\\y\nz \"q\""), "x\\\\y\\nz \"q\"");  // help keeps quotes as they are
  exposition e;
  e.family("sbm_x_total", metric_type::counter, "Things.\nMore.");
  e.sample("sbm_x_total", {{"route", "/v1/\"x\"\\\n"}}, 3);
  EXPECT_EQ(e.render(),
            "# HELP sbm_x_total Things.\\nMore.\n"
            "# TYPE sbm_x_total counter\n"
            "sbm_x_total{route=\"/v1/\\\"x\\\"\\\\\\n\"} 3\n");
}

TEST(MetricsExposition, HistogramBucketsAreCumulativeAndEndInInf) {
  histogram h({0.1, 1});
  h.observe(0.05);
  h.observe(0.1);   // a bound is inclusive (le)
  h.observe(0.5);
  h.observe(7);     // above every bound: only +Inf holds it
  exposition e;
  e.family("sbm_d_seconds", metric_type::histogram, "Durations.");
  e.observe("sbm_d_seconds", {{"route", "/r"}}, h.counts());
  EXPECT_EQ(e.render(),
            "# HELP sbm_d_seconds Durations.\n"
            "# TYPE sbm_d_seconds histogram\n"
            "sbm_d_seconds_bucket{route=\"/r\",le=\"0.1\"} 2\n"
            "sbm_d_seconds_bucket{route=\"/r\",le=\"1\"} 3\n"
            "sbm_d_seconds_bucket{route=\"/r\",le=\"+Inf\"} 4\n"
            "sbm_d_seconds_sum{route=\"/r\"} 7.65\n"
            "sbm_d_seconds_count{route=\"/r\"} 4\n");
}

TEST(MetricsExposition, AFamilysSamplesStayTogetherWhateverTheOrderAdded) {
  exposition e;
  e.family("sbm_a", metric_type::gauge, "A.");
  e.family("sbm_b", metric_type::gauge, "B.");
  e.family("sbm_unused", metric_type::gauge, "Nothing: not written.");
  e.sample("sbm_b", {}, 1);
  e.sample("sbm_a", {{"k", "1"}}, 2);
  e.sample("sbm_b", {{"k", "2"}}, 3);
  e.sample("sbm_stray", {}, 4);  // never declared: untyped, no help
  EXPECT_EQ(e.render(),
            "# HELP sbm_a A.\n# TYPE sbm_a gauge\nsbm_a{k=\"1\"} 2\n"
            "# HELP sbm_b B.\n# TYPE sbm_b gauge\nsbm_b 1\nsbm_b{k=\"2\"} 3\n"
            "# TYPE sbm_stray untyped\nsbm_stray 4\n");
}

TEST(MetricsExposition, ValuesAreWrittenAsPrometheusReadsThem) {
  EXPECT_EQ(format_value(0), "0");
  EXPECT_EQ(format_value(12345678), "12345678");
  EXPECT_EQ(format_value(0.0005), "0.0005");
  EXPECT_EQ(format_value(2.5), "2.5");
  EXPECT_EQ(format_value(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(format_value(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(format_value(std::nan("")), "NaN");
}

TEST(RequestCounters, EveryThreadsCountsAreAddedUpByRouteMethodAndStatus) {
  request_counters c(3);
  c.count(1, http_method::get, 200, 0.002);
  std::thread other([&] {
    c.count(1, http_method::get, 200, 0.02);
    c.count(1, http_method::get, 404, 0.0001);
    c.count(-1, http_method::post, 413, 0.0001);  // refused before routing
    c.count(7, http_method::get, 999, 3);         // no such route, no such status
  });
  other.join();
  auto snap = c.collect();
  auto count_of = [&](int route, http_method m, std::uint16_t status) {
    for (const auto& r : snap.counts)
      if (r.route == route && r.method == m && r.status == status)
        return r.count;
    return std::uint64_t{0};
  };
  EXPECT_EQ(count_of(1, http_method::get, 200), 2u);
  EXPECT_EQ(count_of(1, http_method::get, 404), 1u);
  EXPECT_EQ(count_of(-1, http_method::post, 413), 1u);
  EXPECT_EQ(count_of(-1, http_method::get, 0), 1u);  // unknown route and status: their own slots
  EXPECT_EQ(snap.counts.size(), 4u);
  ASSERT_EQ(snap.latencies.size(), 3u);
  for (const auto& l : snap.latencies) {
    if (l.route != 1)
      continue;
    std::uint64_t total = 0;
    for (auto n : l.latency.counts)
      total += n;
    EXPECT_EQ(total, 3u);
    EXPECT_NEAR(l.latency.sum, 0.0221, 1e-5);
    EXPECT_EQ(l.latency.counts[bucket_of(l.latency.bounds, 0.002)], 1u);
  }
}

TEST(RequestCounters, TwoCountersOnOneThreadKeepTheirOwnCounts) {
  request_counters a(1), b(1);
  for (int i = 0; i < 3; ++i) {
    a.count(0, http_method::get, 200, 0);
    b.count(0, http_method::get, 200, 0);
  }
  ASSERT_EQ(a.collect().counts.size(), 1u);
  EXPECT_EQ(a.collect().counts[0].count, 3u);
  EXPECT_EQ(b.collect().counts[0].count, 3u);
  EXPECT_EQ(method_of("DELETE"), http_method::del);
  EXPECT_EQ(name_of(method_of("BREW")), "OTHER");
}

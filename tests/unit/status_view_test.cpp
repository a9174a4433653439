// `sbm status` draws whatever sections GET /v1/status has, so a section the node adds later
// (queues, cluster) appears without a change to the command.
#include "cli/status_view.hpp"

#include <gtest/gtest.h>

using sbm::cli::node_ready;
using sbm::cli::render_status;
using sbm::cli::status_document;

namespace {

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

status_document document() {
  return status_document::parse(R"({
    "dependencies": [
      {"name": "postgres", "required": true, "up": true, "state": "up", "detail": "",
       "breaker": {"state": "closed", "calls": 4, "failures": 0, "slow_calls": 0, "failure_rate": 0.0,
                   "refused": 0, "retries": 0, "transitions": 0, "retry_in_ms": 0, "last_transition": null}},
      {"name": "instanote", "required": false, "up": false, "state": "circuit_open",
       "detail": "connection refused",
       "breaker": {"state": "open", "calls": 3, "failures": 3, "slow_calls": 0, "failure_rate": 100.0,
                   "refused": 7, "retries": 2, "transitions": 1, "retry_in_ms": 28400,
                   "last_transition": {"from": "closed", "to": "open", "ms_ago": 1600}}}
    ],
    "node": {"draining": false, "ready": true, "status": "ready", "version": "0.1.0"}
  })");
}

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start < text.size()) {
    auto end = text.find('\n', start);
    out.push_back(text.substr(start, end - start));
    start = end == std::string::npos ? text.size() : end + 1;
  }
  return out;
}

std::string line_with(const std::string& text, const std::string& a, const std::string& b) {
  for (const auto& l : lines(text))
    if (contains(l, a) && contains(l, b))
      return l;
  return {};
}

}  // namespace

TEST(StatusView, NodeFirstThenDependenciesAndBreakers) {
  const auto text = render_status(document());
  EXPECT_EQ(text.rfind("NODE\n", 0), 0u) << text;
  EXPECT_LT(text.find("NODE"), text.find("DEPENDENCIES")) << text;
  EXPECT_EQ(text.rfind("NODE\n  status:", 0), 0u) << "the node's state first, whatever its key order: " << text;
  EXPECT_FALSE(line_with(text, "status:", "ready").empty()) << text;
  EXPECT_FALSE(line_with(text, "version:", "0.1.0").empty()) << text;
  EXPECT_FALSE(line_with(text, "draining:", "no").empty()) << text;
  EXPECT_FALSE(line_with(text, "instanote", "connection refused").empty()) << text;
  // The open breaker: its counts, the time left open, and its last change.
  const auto open = line_with(text, "instanote", " open ");
  EXPECT_TRUE(contains(open, "28.4s")) << text;
  EXPECT_TRUE(contains(open, "closed -> open, 1.6s ago")) << text;
  EXPECT_TRUE(contains(open, "100.0")) << text;
  const auto closed = line_with(text, "postgres", "closed");
  EXPECT_FALSE(closed.empty()) << text;
  EXPECT_FALSE(contains(closed, "0ms")) << "a closed breaker has no time left open: " << text;
  EXPECT_TRUE(contains(text, "RETRY IN")) << text;
}

TEST(StatusView, SectionsItDoesNotKnowAreDrawnFromTheirShape) {
  auto doc = document();
  doc["queues"] = status_document::parse(R"([
    {"name": "postgres.max-queued", "depth": 3, "bound": 256},
    {"name": "speakers.max-queued", "depth": 0, "bound": 10000}])");
  doc["cluster"] = status_document::parse(R"({"epoch": 7, "members": [
    {"node": "sbm-1", "state": "up", "lease_ms": 4000}, {"node": "sbm-2", "state": "leaving", "lease_ms": 900}]})");
  doc["pools"] = status_document::parse(R"({"postgres": {"size": 4, "busy": 1}, "redis": {"size": 2, "busy": 0}})");
  const auto text = render_status(doc);
  EXPECT_TRUE(contains(text, "\nQUEUES\n")) << text;
  EXPECT_FALSE(line_with(text, "NAME", "BOUND").empty()) << text;
  EXPECT_FALSE(line_with(text, "postgres.max-queued", "256").empty()) << text;
  EXPECT_FALSE(line_with(text, "speakers.max-queued", "10000").empty()) << text;
  EXPECT_TRUE(contains(text, "\nCLUSTER\n")) << text;
  EXPECT_TRUE(contains(text, "\nPOOLS\n")) << text;
  EXPECT_FALSE(line_with(text, "redis", "2").empty()) << text;
  // A list inside a section gets its own table; *_ms values read as durations.
  EXPECT_FALSE(line_with(text, "epoch:", "7").empty()) << text;
  EXPECT_FALSE(line_with(text, "sbm-1", "4.0s").empty()) << text;
  EXPECT_FALSE(line_with(text, "sbm-2", "900ms").empty()) << text;
  EXPECT_FALSE(line_with(text, "NODE", "LEASE").empty()) << text;
}

TEST(StatusView, ReadinessComesFromTheNodeSection) {
  EXPECT_EQ(node_ready(document()), true);
  auto doc = document();
  doc["node"]["ready"] = false;
  EXPECT_EQ(node_ready(doc), false);
  EXPECT_EQ(node_ready(status_document::parse(R"({"status": "ready"})")), std::nullopt);
  EXPECT_EQ(node_ready(status_document::parse("[1]")), std::nullopt);
  doc["node"]["ready"] = "yes";
  EXPECT_EQ(node_ready(doc), std::nullopt) << "only a JSON boolean says ready";
}

TEST(StatusView, TheClusterCommandShowsTheNodeAndItsClusterOnly) {
  auto doc = document();
  doc["cluster"] = status_document::parse(R"({
    "address": "127.0.0.1:7001", "enabled": true, "epoch": 12, "lease_age_ms": 310,
    "members": [
      {"address": "127.0.0.1:7001", "epoch": 12, "lease_age_ms": 310, "lease_expires_in_ms": 2690,
       "name": "n1", "self": true, "state": "up"},
      {"address": "127.0.0.1:7002", "epoch": 9, "lease_age_ms": 1900, "lease_expires_in_ms": 1100,
       "name": "n2", "self": false, "state": "unreachable"}
    ],
    "state": "member"})");
  const auto text = sbm::cli::render_cluster(doc);
  EXPECT_TRUE(contains(text, "NODE\n")) << text;
  EXPECT_TRUE(contains(text, "CLUSTER\n")) << text;
  EXPECT_FALSE(contains(text, "DEPENDENCIES")) << text;
  EXPECT_FALSE(contains(text, "BREAKERS")) << text;
  for (const char* shown : {"127.0.0.1:7002", "unreachable", "n2", "member"})
    EXPECT_TRUE(contains(text, shown)) << shown << "\n" << text;
  // `sbm status` draws the same section among the others.
  EXPECT_TRUE(contains(render_status(doc), "127.0.0.1:7002"));
  EXPECT_TRUE(contains(render_status(doc), "DEPENDENCIES"));
}

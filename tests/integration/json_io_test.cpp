// How SBM errors become HTTP answers: typed Retry-After values, unknown outcomes of writes, and
// the problem types that tell a client whether and how to retry.
#include <gtest/gtest.h>

#include <caf/sec.hpp>

#include <chrono>
#include <string>

#include "gateway/json_io.hpp"
#include "messages/errors.hpp"

namespace {

using namespace std::chrono_literals;
using sbm::errc;
using sbm::make_error;
using sbm::gateway::from_error;

std::string header(const sbm::http_response& r, const std::string& name) {
  for (const auto& h : r.headers)
    if (h.first == name) return h.second;
  return {};
}

bool has_type(const sbm::http_response& r, const std::string& slug) {
  return r.body.find("\"urn:sbm:problem:" + slug + "\"") != std::string::npos;
}

}  // namespace

TEST(JsonIo, AnOpenCircuitsRetryAfterTravelsTypedIntoTheHeader) {
  // The breaker's own figure (42.3 s left), not a constant parsed out of the detail text.
  auto r = from_error(make_error(errc::unavailable, "postgres: circuit open, retry in 43s", 42300ms));
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(header(r, "Retry-After"), "43");
  auto bare = from_error(make_error(errc::unavailable, "postgres: down"));
  EXPECT_EQ(header(bare, "Retry-After"), "5");
}

TEST(JsonIo, AWriteThatTimedOutHasAnUnknownOutcomeAndAReadDoesNot) {
  caf::error timeout = caf::sec::request_timeout;
  auto write = from_error(timeout, true);
  EXPECT_EQ(write.status, 503);
  EXPECT_TRUE(has_type(write, "outcome-unknown")) << write.body;
  EXPECT_NE(write.body.find("Idempotency-Key"), std::string::npos) << write.body;
  auto read = from_error(timeout, false);
  EXPECT_EQ(read.status, 503);
  EXPECT_TRUE(has_type(read, "timeout")) << read.body;
  auto lost = from_error(make_error(errc::outcome_unknown, "lost"), true);
  EXPECT_TRUE(has_type(lost, "outcome-unknown")) << lost.body;
  EXPECT_FALSE(header(lost, "Retry-After").empty());
}

TEST(JsonIo, ADuplicateAVersionConflictAndARetryInProgressAreThreeProblems) {
  auto dup = from_error(make_error(errc::duplicate, "job j-1 is already counted"));
  auto moved = from_error(make_error(errc::conflict, "changed meanwhile"));
  auto busy = from_error(make_error(errc::in_progress, "still running", 1s));
  EXPECT_EQ(dup.status, 409);
  EXPECT_EQ(moved.status, 409);
  EXPECT_EQ(busy.status, 409);
  EXPECT_TRUE(has_type(dup, "duplicate"));
  EXPECT_TRUE(has_type(moved, "conflict"));
  EXPECT_TRUE(has_type(busy, "idempotency-in-progress"));
  EXPECT_EQ(header(busy, "Retry-After"), "1");
  auto reused = from_error(make_error(errc::key_reused, "another request"));
  EXPECT_EQ(reused.status, 422);
  EXPECT_TRUE(has_type(reused, "idempotency-key-reused"));
}

TEST(JsonIo, ShedWorkIsA503ThatSaysNothingWasSaved) {
  for (auto code : {errc::overloaded, errc::deadline_exceeded}) {
    auto r = from_error(make_error(code, "full", 2s));
    EXPECT_EQ(r.status, 503) << sbm::to_string(code);
    EXPECT_EQ(header(r, "Retry-After"), "2") << sbm::to_string(code);
    EXPECT_NE(r.body.find("nothing was saved"), std::string::npos) << r.body;
  }
}

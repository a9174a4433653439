// A deadline is a point on its node's actor clock; on the wire it is what is left of it, set again
// on the receiver's clock. Two actor systems whose (virtual) clocks are an hour apart stand for two
// hosts: a message serialised on one and read on the other keeps its remaining time exactly, a
// passed deadline stays passed and "no deadline" stays none.
#include <gtest/gtest.h>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/binary_deserializer.hpp>
#include <caf/binary_serializer.hpp>
#include <caf/message.hpp>
#include <caf/scheduler/test_coordinator.hpp>
#include <caf/scoped_execution_unit.hpp>

#include <chrono>
#include <vector>

#include "messages/announce.hpp"
#include "messages/atoms.hpp"
#include "messages/context.hpp"
#include "messages/speakers.hpp"

using namespace std::chrono_literals;
using sbm::deadline;

namespace {

using time_point = caf::actor_clock::time_point;

TEST(DeadlineWire, RemainingTimeIsSetAgainOnAnotherClock) {
  const time_point sender{10'000s};
  const time_point receiver{7s};
  const auto d = deadline::after(sender, 300ms);
  EXPECT_EQ(d.remaining(sender), 300ms);
  EXPECT_EQ(d.remaining(sender + 100ms), 200ms);
  const auto there = deadline::rebuilt(receiver, d.remaining(sender + 100ms));
  EXPECT_EQ(there.left(receiver, 0ms), 200ms);
  EXPECT_FALSE(there.passed(receiver + 199ms));
  EXPECT_TRUE(there.passed(receiver + 200ms));
}

TEST(DeadlineWire, PassedStaysPassedAndNoneStaysNone) {
  const time_point sender{10'000s};
  const time_point receiver{7s};
  const auto d = deadline::after(sender, 300ms);
  // Exactly at the deadline, and well past it: never sent as "no deadline".
  for (auto at : {sender + 300ms, sender + 5s}) {
    EXPECT_LT(d.remaining(at), 0ns);
    const auto there = deadline::rebuilt(receiver, d.remaining(at));
    EXPECT_TRUE(there.set());
    EXPECT_TRUE(there.passed(receiver));
  }
  EXPECT_EQ(deadline{}.remaining(sender), 0ns);
  EXPECT_FALSE(deadline::rebuilt(receiver, 0ns).set());
}

struct node_config : caf::actor_system_config {
  node_config() {
    sbm::announce_types(*this);
    set("scheduler.policy", caf::atom("testing"));
  }
};

struct node {
  node_config cfg;
  caf::actor_system sys{cfg};
  caf::scoped_execution_unit unit{&sys};

  explicit node(caf::timespan clock_at) {
    dynamic_cast<caf::scheduler::test_coordinator&>(sys.scheduler()).clock().current_time =
      time_point{clock_at};
  }
  time_point now() { return sys.clock().now(); }
};

// As BASP does it: the whole message through CAF's binary serializer, with the sending and the
// receiving system as the processors' context.
caf::message across(node& from, node& to, const caf::message& msg) {
  std::vector<char> buf;
  caf::binary_serializer sink{&from.unit, buf};
  auto copy = msg;
  EXPECT_FALSE(sink(copy));
  caf::message out;
  caf::binary_deserializer source{&to.unit, buf};
  EXPECT_FALSE(source(out));
  return out;
}

sbm::quality_sample sample_until(deadline until) {
  sbm::quality_sample s;
  s.speaker_id = "spk-1";
  s.job_id = "job-1";
  s.ctx.until = until;
  s.ctx.idempotency_key = "key-1";
  return s;
}

TEST(DeadlineWire, AMessageKeepsItsRemainingTimeOnAnotherNode) {
  node a{3600s};
  node b{5s};
  const auto sent = sample_until(deadline::after(a.now(), 250ms));
  auto got = across(a, b, caf::make_message(sbm::sample_atom::value, sent));
  ASSERT_TRUE((got.match_elements<sbm::sample_atom, sbm::quality_sample>()));
  const auto& s = got.get_as<sbm::quality_sample>(1);
  EXPECT_EQ(s.ctx.idempotency_key, "key-1");
  EXPECT_EQ(s.ctx.until.left(b.now(), 0ms), 250ms);
  // Read as a time point the sender's value would have been an hour away on this clock.
  EXPECT_NE(s.ctx.until.at_ns, sent.ctx.until.at_ns);

  const auto late = sample_until(deadline::after(a.now(), -1ms));
  auto expired = across(a, b, caf::make_message(sbm::sample_atom::value, late));
  EXPECT_TRUE(expired.get_as<sbm::quality_sample>(1).ctx.until.passed(b.now()));

  auto none = across(a, b, caf::make_message(sbm::sample_atom::value, sample_until(deadline{})));
  EXPECT_FALSE(none.get_as<sbm::quality_sample>(1).ctx.until.set());
}

}  // namespace

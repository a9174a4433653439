// The verification scheduler against a real PostgreSQL: priorities, idempotence on the event id,
// list filters, and the whole path from a speaker's bucket change to a schedule row, including a
// redelivery after a crash between the subscriber's commit and the outbox stamp.
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include "actors/events/events.hpp"
#include "actors/speakers/speakers.hpp"
#include "actors/verification/verification.hpp"
#include "messages/errors.hpp"
#include "tests/support/postgres_actor_test.hpp"

namespace {

using namespace std::chrono_literals;
using sbm::bucket_changed;
using sbm::errc;
using sbm::schedule_query;
using sbm::verification_schedule;
using param = caf::optional<std::string>;

constexpr auto answer_timeout = 30s;

template <class Result, class Handle, class... Ts>
caf::expected<Result> call(caf::scoped_actor& self, const Handle& to, Ts&&... xs) {
  return sbm::test::request_blocking<Result>(self, answer_timeout, to, std::forward<Ts>(xs)...);
}

class VerificationSchedule : public sbm::test::postgres_actor_test {
 protected:
  void SetUp() override {
    postgres_actor_test::SetUp();
    if (HasFatalFailure()) return;
    bus = stop_at_end(sbm::events::spawn_event_bus(sys));
    scheduler = stop_at_end(sbm::verification::spawn_verification_scheduler(sys, db, bus));
  }

  caf::expected<verification_schedule> list(schedule_query q) {
    return call<verification_schedule>(self, scheduler, sbm::list_atom::value, std::move(q));
  }

  sbm::event_bus_actor bus;
  sbm::verification_scheduler_actor scheduler;
};

TEST_F(VerificationSchedule, NoTouchIsHighPriorityAndEveryOtherBucketNormal) {
  // Through the bus: the scheduler subscribed itself as a durable subscriber when spawned.
  const std::vector<bucket_changed> events{
    {11, "spk-a", "c1", "low_touch", "no_touch", "promoted: mean 1.2", 1000},
    {12, "spk-b", "c1", "no_touch", "medium_touch", "demoted: mean 7.4", 2000},
    {13, "spk-a", "c1", "no_touch", "high_touch", "demoted: mean 12", 3000},
  };
  for (const auto& ev : events) {
    auto ok = call<bool>(self, bus, sbm::publish_atom::value, ev);
    ASSERT_TRUE(ok) << sys.render(ok.error());
    EXPECT_TRUE(*ok);
  }
  auto all = list({});
  ASSERT_TRUE(all) << sys.render(all.error());
  ASSERT_EQ(all->items.size(), 3u);
  EXPECT_EQ(all->items[0].speaker_id, "spk-a");
  EXPECT_EQ(all->items[0].priority, "high");
  EXPECT_EQ(all->items[0].status, "scheduled");
  EXPECT_EQ(all->items[0].source_event_id, 11);
  EXPECT_EQ(all->items[0].reason, "bucket changed from low_touch to no_touch: promoted: mean 1.2");
  EXPECT_GT(all->items[0].created_at_ms, 0);
  EXPECT_EQ(all->items[1].priority, "normal");
  EXPECT_EQ(all->items[1].source_event_id, 12);
  EXPECT_EQ(all->items[2].priority, "normal");

  auto high = list({"high", "", 100});
  ASSERT_TRUE(high);
  ASSERT_EQ(high->items.size(), 1u);
  EXPECT_EQ(high->items[0].source_event_id, 11);
  auto normal_a = list({"normal", "spk-a", 100});
  ASSERT_TRUE(normal_a);
  ASSERT_EQ(normal_a->items.size(), 1u);
  EXPECT_EQ(normal_a->items[0].source_event_id, 13);
  auto limited = list({"", "", 2});
  ASSERT_TRUE(limited);
  EXPECT_EQ(limited->items.size(), 2u);

  auto bad = list({"urgent", "", 10});
  EXPECT_EQ(sbm::code_of(bad.error()), errc::invalid_argument);
}

TEST_F(VerificationSchedule, ARedeliveredEventSchedulesOnce) {
  const bucket_changed ev{77, "spk-a", "c1", "low_touch", "no_touch", "promoted", 1000};
  for (int i = 0; i < 3; ++i) {
    auto ok = call<bool>(self, scheduler, sbm::publish_atom::value, ev);
    ASSERT_TRUE(ok) << sys.render(ok.error());
    EXPECT_TRUE(*ok) << "delivery " << i << " must be acknowledged again";
  }
  EXPECT_EQ(sql("SELECT count(*) FROM verification.schedule")[0][0], param{"1"});
  auto bad = call<bool>(self, scheduler, sbm::publish_atom::value,
                        bucket_changed{0, "spk-a", "c1", "a", "b", "", 0});
  EXPECT_EQ(sbm::code_of(bad.error()), errc::invalid_argument);
}

TEST_F(VerificationSchedule, BucketChangesScheduleVerificationsEndToEnd) {
  sbm::speakers::speakers_settings s;
  s.db = db;
  s.bus = bus;
  s.policy.window_size = 5;
  s.relay_interval = 100ms;
  s.db_timeout = 5s;
  auto shard = stop_at_end(sbm::speakers::spawn_speakers(sys, std::move(s)));
  auto view = call<sbm::speaker_view>(self, shard, sbm::register_atom::value,
                                      sbm::speaker_registration{"spk-1", "c1", "Dr One", "admin"});
  ASSERT_TRUE(view) << sys.render(view.error());
  auto sample = [&](int job, double rate) {
    auto v = call<sbm::speaker_view>(self, shard, sbm::sample_atom::value,
                                     sbm::quality_sample{"spk-1", "job-" + std::to_string(job), rate,
                                                         "qa"});
    EXPECT_TRUE(v) << sys.render(v.error());
    return v ? v->bucket : std::string{};
  };
  for (int i = 0; i < 4; ++i) sample(i, 1.0);
  EXPECT_EQ(sample(4, 1.0), "no_touch");
  EXPECT_EQ(sample(5, 40.0), "medium_touch");  // window 1, 1, 1, 1, 40: mean 8.8

  auto scheduled = [&](std::size_t n) {
    auto l = list({"", "spk-1", 100});
    return l && l->items.size() == n;
  };
  ASSERT_TRUE(sbm::test::eventually([&] { return scheduled(2); }, 20s));
  auto l = list({"", "spk-1", 100});
  ASSERT_TRUE(l);
  EXPECT_EQ(l->items[0].priority, "high");
  EXPECT_EQ(l->items[1].priority, "normal");
  auto outbox = sql("SELECT id FROM speakers.outbox ORDER BY id");
  ASSERT_EQ(outbox.size(), 2u);
  EXPECT_EQ(std::to_string(l->items[0].source_event_id), *outbox[0][0]);
  EXPECT_EQ(std::to_string(l->items[1].source_event_id), *outbox[1][0]);

  // As if the relay crashed after the scheduler committed but before it stamped the row: the
  // event goes out again and schedules nothing new.
  ASSERT_TRUE(sbm::test::eventually([&] {
    return sql("SELECT count(*) FROM speakers.outbox WHERE delivered_at IS NULL")[0][0] ==
           param{"0"};
  }, 20s));
  sql("UPDATE speakers.outbox SET delivered_at = NULL");
  ASSERT_TRUE(sbm::test::eventually([&] {
    return sql("SELECT count(*) FROM speakers.outbox WHERE delivered_at IS NULL")[0][0] ==
           param{"0"};
  }, 20s));
  EXPECT_EQ(sql("SELECT count(*) FROM verification.schedule")[0][0], param{"2"});
}

// Issue 21: a hospital's reviewers see only their clients' scheduled verifications. The client
// comes with the cause (a bucket change, a filed report); a row of no known client (scheduled
// before the column existed) is shown to unscoped readers only.
TEST_F(VerificationSchedule, AScopedReaderSeesOnlyItsClientsRows) {
  for (const auto& ev : {bucket_changed{21, "spk-a", "c1", "low_touch", "no_touch", "promoted", 1000},
                         bucket_changed{22, "spk-b", "c2", "no_touch", "low_touch", "demoted", 2000}}) {
    auto ok = call<bool>(self, scheduler, sbm::publish_atom::value, ev);
    ASSERT_TRUE(ok) << sys.render(ok.error());
  }
  auto asked = call<bool>(self, scheduler, sbm::schedule_atom::value,
                          sbm::verification_request{"spk-c", "normal", "report 5", "report:5", "c2"});
  ASSERT_TRUE(asked) << sys.render(asked.error());
  sql("INSERT INTO verification.schedule (speaker_id, priority, source_key) VALUES ('spk-old', 'normal', 'legacy')");

  auto speakers_of = [&](sbm::client_scope scope) {
    schedule_query q;
    q.scope = std::move(scope);
    auto page = list(q);
    EXPECT_TRUE(page) << sys.render(page.error());
    std::vector<std::string> out;
    if (page)
      for (const auto& v : page->items) out.push_back(v.speaker_id + "@" + v.client_id);
    return out;
  };
  using ids = std::vector<std::string>;
  EXPECT_EQ(speakers_of({}), (ids{"spk-a@c1", "spk-b@c2", "spk-c@c2", "spk-old@"}));
  EXPECT_EQ(speakers_of({true, {"c2"}}), (ids{"spk-b@c2", "spk-c@c2"}));
  EXPECT_EQ(speakers_of({true, {"c1", "c2"}}), (ids{"spk-a@c1", "spk-b@c2", "spk-c@c2"}));
  EXPECT_EQ(speakers_of({true, {}}), ids{});
  // A speaker filter cannot reach past the scope.
  schedule_query other;
  other.speaker_id = "spk-a";
  other.scope = {true, {"c2"}};
  auto none = list(other);
  ASSERT_TRUE(none) << sys.render(none.error());
  EXPECT_TRUE(none->items.empty());
}

}  // namespace

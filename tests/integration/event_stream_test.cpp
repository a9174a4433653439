// Bucket-change events: the event bus's delivery rules, and the path from a committed bucket change
// through the outbox relay to the Redis stream (decoded with the Protobuf schema) and to durable
// subscribers, each target independent of the other.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "actors/connections/connections.hpp"
#include "actors/events/events.hpp"
#include "actors/events/stream_publisher.hpp"
#include "actors/speakers/speakers.hpp"
#include "events.pb.h"
#include "messages/errors.hpp"
#include "runtime/migrations/all_migrations.hpp"
#include "tests/support/actor_test.hpp"
#include "tests/support/servers.hpp"

namespace {

using namespace std::chrono_literals;
using sbm::bucket_changed;
using sbm::errc;
using param = caf::optional<std::string>;
namespace sp = sbm::speakers;

constexpr auto answer_timeout = 30s;

template <class Result, class Handle, class... Ts>
caf::expected<Result> call(caf::scoped_actor& self, const Handle& to, Ts&&... xs) {
  return sbm::test::request_blocking<Result>(self, answer_timeout, to, std::forward<Ts>(xs)...);
}

// The shared Redis serves every test process at once: speaker ids carry the pid and a random part
// so this test finds its own stream entries.
std::string unique_speaker(const std::string& stem) {
  std::random_device random;
  return stem + "-" + std::to_string(::getpid()) + "-" + std::to_string(random() % 1000000000);
}

struct stream_entry {
  std::string entry_id;
  std::string event_id_field;
  std::string type_field;
  sbm::events::v1::BucketChanged payload;
};

// A subscriber that records what it gets (forwarding it to `observer`) and answers from a script:
// refusals first, then true.
caf::behavior scripted_subscriber(caf::event_based_actor* self, caf::actor observer, int refusals) {
  auto remaining = std::make_shared<int>(refusals);
  return {
    [=](sbm::publish_atom, const bucket_changed& ev) {
      self->send(observer, sbm::publish_atom::value, ev);
      if (*remaining > 0) {
        --*remaining;
        return false;
      }
      return true;
    },
  };
}

class EventFixture : public sbm::test::io_actor_test {
 protected:
  sbm::postgres_actor start_postgres(const std::string& url) {
    sbm::connections::postgres_settings s;
    s.url = url;
    s.pool_size = 2;
    s.probe_interval = 100ms;
    s.request_timeout = 5s;
    s.migrations = sbm::schema::all_migrations();
    auto pg = stop_at_end(sbm::connections::spawn_postgres(sys, std::move(s)));
    EXPECT_TRUE(sbm::test::eventually([&] {
      auto st = call<sbm::dependency_status>(self, pg, sbm::status_atom::value);
      return st && st->state == "up";
    }));
    return pg;
  }

  sbm::redis_actor start_redis(const std::string& host, int port) {
    sbm::connections::redis_settings s;
    s.host = host;
    s.port = static_cast<std::uint16_t>(port);
    s.probe_interval = 100ms;
    s.breaker = sbm::resilience::breaker_policy{2, 300ms};
    s.restart_backoff = sbm::resilience::backoff_policy{3, 20ms, 200ms, 0.0};
    s.connect_timeout = 500ms;
    s.command_timeout = 1s;
    return stop_at_end(sbm::connections::spawn_redis(sys, std::move(s)));
  }

  sbm::speaker_shard_actor start_speakers(sbm::postgres_actor db, sbm::event_bus_actor bus,
                                          sbm::stream_publisher_actor stream) {
    sp::speakers_settings s;
    s.db = std::move(db);
    s.bus = std::move(bus);
    s.stream = std::move(stream);
    s.policy.window_size = 5;
    s.idle_timeout = 1h;
    s.relay_interval = 100ms;
    s.db_timeout = 5s;
    return stop_at_end(sp::spawn_speakers(sys, std::move(s)));
  }

  // Registers `id` and feeds five excellent jobs: high_touch -> no_touch, one event.
  void promote(const sbm::speaker_shard_actor& shard, const std::string& id) {
    auto reg = call<sbm::speaker_view>(self, shard, sbm::register_atom::value,
                                       sbm::speaker_registration{id, "clinic-9", "Dr X", "admin"});
    ASSERT_TRUE(reg) << sys.render(reg.error());
    for (int i = 0; i < 5; ++i) {
      auto v = call<sbm::speaker_view>(self, shard, sbm::sample_atom::value,
                                       sbm::quality_sample{id, "job-" + std::to_string(i), 1.0, "qa"});
      ASSERT_TRUE(v) << sys.render(v.error());
    }
  }

  std::vector<sbm::db_row> sql(const sbm::postgres_actor& db, std::string text,
                               std::vector<param> params = {}) {
    auto rows = call<sbm::db_rows>(self, db, sbm::query_atom::value,
                                   sbm::db_statement{std::move(text), std::move(params), -1});
    EXPECT_TRUE(rows) << sys.render(rows.error());
    return rows ? rows->rows : std::vector<sbm::db_row>{};
  }

  // Stream entries whose payload names `speaker_id`.
  std::vector<stream_entry> stream_entries(const sbm::redis_actor& redis,
                                           const std::string& speaker_id) {
    auto reply = call<sbm::redis_reply>(
      self, redis, sbm::command_atom::value,
      sbm::redis_command{{"XRANGE", sbm::events::bucket_changed_stream, "-", "+"}});
    std::vector<stream_entry> out;
    if (!reply) return out;
    // Flattened depth-first: entry id, then field/value pairs (three pairs per SBM entry).
    const auto& e = reply->elements;
    for (std::size_t i = 0; i + 7 <= e.size(); i += 7) {
      stream_entry entry;
      entry.entry_id = e[i];
      EXPECT_EQ(e[i + 1], "event_id");
      entry.event_id_field = e[i + 2];
      EXPECT_EQ(e[i + 3], "type");
      entry.type_field = e[i + 4];
      EXPECT_EQ(e[i + 5], "payload");
      EXPECT_TRUE(entry.payload.ParseFromString(e[i + 6]));
      if (entry.payload.speaker_id() == speaker_id) out.push_back(std::move(entry));
    }
    return out;
  }
};

class EventBus : public EventFixture {};

TEST_F(EventBus, PublishAnswersTrueOnlyWhenEveryDurableSubscriberAcknowledged) {
  auto bus = stop_at_end(sbm::events::spawn_event_bus(sys, 2s));
  const bucket_changed ev{7, "spk-1", "clinic-1", "high_touch", "low_touch", "promoted", 1234};
  // No subscribers: nothing to wait for.
  auto lone = call<bool>(self, bus, sbm::publish_atom::value, ev);
  ASSERT_TRUE(lone);
  EXPECT_TRUE(*lone);

  caf::actor observer = caf::actor_cast<caf::actor>(self);
  auto durable = sys.spawn(scripted_subscriber, observer, 0);
  auto listener = sys.spawn(scripted_subscriber, observer, 0);
  self->send(bus, sbm::subscribe_atom::value, durable, true);
  self->send(bus, sbm::subscribe_atom::value, listener, false);
  auto both = call<bool>(self, bus, sbm::publish_atom::value, ev);
  ASSERT_TRUE(both);
  EXPECT_TRUE(*both);
  int copies = 0;
  for (int i = 0; i < 2; ++i)
    self->receive(
      [&](sbm::publish_atom, const bucket_changed& got) {
        EXPECT_EQ(got.event_id, 7);
        EXPECT_EQ(got.new_bucket, "low_touch");
        ++copies;
      },
      caf::after(5s) >> [] { ADD_FAILURE() << "a subscriber did not get the event"; });
  EXPECT_EQ(copies, 2);

  // A durable subscriber that refuses makes the publish fail (the relay will retry it).
  auto refuser = sys.spawn(scripted_subscriber, observer, 1000);
  self->send(bus, sbm::subscribe_atom::value, refuser, true);
  auto refused = call<bool>(self, bus, sbm::publish_atom::value, ev);
  ASSERT_TRUE(refused);
  EXPECT_FALSE(*refused);

  // One that dies is dropped.
  self->send_exit(refuser, caf::exit_reason::user_shutdown);
  EXPECT_TRUE(sbm::test::eventually([&] {
    auto r = call<bool>(self, bus, sbm::publish_atom::value, ev);
    return r && *r;
  }, 10s));
  self->send_exit(durable, caf::exit_reason::user_shutdown);
  self->send_exit(listener, caf::exit_reason::user_shutdown);
}

TEST_F(EventBus, AnExpectedDurableSubscriberThatIsNotThereIsNoDelivery) {
  // The node wires one durable subscriber (the verification scheduler). While it restarts, a
  // bucket change must stay in the outbox, not be marked delivered to nobody.
  auto bus = stop_at_end(sbm::events::spawn_event_bus(sys, 2s, 1));
  const bucket_changed ev{8, "spk-1", "clinic-1", "high_touch", "no_touch", "promoted", 1234};
  auto early = call<bool>(self, bus, sbm::publish_atom::value, ev);
  ASSERT_FALSE(early);
  EXPECT_EQ(sbm::code_of(early.error()), errc::unavailable) << sys.render(early.error());
  EXPECT_TRUE(sbm::retry_after_of(early.error()));

  caf::actor observer = caf::actor_cast<caf::actor>(self);
  auto listener = sys.spawn(scripted_subscriber, observer, 0);
  self->send(bus, sbm::subscribe_atom::value, listener, false);
  // A listener is no durable subscriber.
  EXPECT_EQ(sbm::code_of(call<bool>(self, bus, sbm::publish_atom::value, ev).error()),
            errc::unavailable);
  auto durable = sys.spawn(scripted_subscriber, observer, 0);
  self->send(bus, sbm::subscribe_atom::value, durable, true);
  auto delivered = call<bool>(self, bus, sbm::publish_atom::value, ev);
  ASSERT_TRUE(delivered) << sys.render(delivered.error());
  EXPECT_TRUE(*delivered);
  // It dies: no delivery again until a new one subscribes.
  self->send_exit(durable, caf::exit_reason::user_shutdown);
  EXPECT_TRUE(sbm::test::eventually([&] {
    auto r = call<bool>(self, bus, sbm::publish_atom::value, ev);
    return !r && sbm::code_of(r.error()) == errc::unavailable;
  }, 10s));
  self->send_exit(listener, caf::exit_reason::user_shutdown);
}

class EventStream : public EventFixture {
 protected:
  // Set by tests that need servers of their own; a member, so the actors stop (TearDown) before
  // the servers go away.
  std::unique_ptr<sbm::test::servers> srv;
};

TEST_F(EventStream, XaddCommandCarriesTheEventAsProtobuf) {
  const bucket_changed ev{42, "spk\n1", "c", "low_touch", "no_touch", "why", 1700000000123};
  auto argv = sbm::events::xadd_command(ev);
  ASSERT_EQ(argv.size(), 12u);
  EXPECT_EQ(argv[0], "XADD");
  EXPECT_EQ(argv[1], "sbm:events:speaker.bucket.changed");
  EXPECT_EQ((std::vector<std::string>{argv[2], argv[3], argv[4], argv[5]}),
            (std::vector<std::string>{"MAXLEN", "~", "100000", "*"}));
  EXPECT_EQ(argv[6], "event_id");
  EXPECT_EQ(argv[7], "42");
  EXPECT_EQ(argv[8], "type");
  EXPECT_EQ(argv[9], "speaker.bucket.changed");
  EXPECT_EQ(argv[10], "payload");
  sbm::events::v1::BucketChanged pb;
  ASSERT_TRUE(pb.ParseFromString(argv[11]));
  EXPECT_EQ(pb.event_id(), 42);
  EXPECT_EQ(pb.speaker_id(), "spk\n1");
  EXPECT_EQ(pb.new_bucket(), "no_touch");
  EXPECT_EQ(pb.timestamp_ms(), 1700000000123);
}

TEST_F(EventStream, ABucketChangeReachesTheRedisStreamAndTheBusOnce) {
  auto& shared = sbm::test::servers::shared();
  auto db = start_postgres(shared.fresh_database());
  auto redis = start_redis(shared.redis_host(), shared.redis_port());
  auto bus = stop_at_end(sbm::events::spawn_event_bus(sys));
  auto stream = stop_at_end(sbm::events::spawn_stream_publisher(sys, redis));
  caf::actor observer = caf::actor_cast<caf::actor>(self);
  auto subscriber = stop_at_end(sys.spawn(scripted_subscriber, observer, 0));
  self->send(bus, sbm::subscribe_atom::value, subscriber, true);
  auto shard = start_speakers(db, bus, stream);
  const auto id = unique_speaker("stream");
  promote(shard, id);

  ASSERT_TRUE(sbm::test::eventually([&] {
    auto rows = sql(db, "SELECT count(*) FROM speakers.outbox WHERE delivered_at IS NOT NULL "
                        "AND stream_published_at IS NOT NULL");
    return !rows.empty() && rows[0][0] == param{"1"};
  }, 20s)) << "the outbox row was not relayed to both targets";

  auto row = sql(db, "SELECT o.id, (extract(epoch from o.created_at) * 1000)::bigint, h.reason "
                     "FROM speakers.outbox o, speakers.bucket_history h WHERE h.kind = 'policy'");
  ASSERT_EQ(row.size(), 1u);
  const auto outbox_id = std::stoll(*row[0][0]);
  const auto created_ms = std::stoll(*row[0][1]);
  const auto reason = *row[0][2];

  auto entries = stream_entries(redis, id);
  ASSERT_EQ(entries.size(), 1u);
  const auto& e = entries[0];
  EXPECT_EQ(e.event_id_field, std::to_string(outbox_id));
  EXPECT_EQ(e.type_field, "speaker.bucket.changed");
  EXPECT_EQ(e.payload.event_id(), outbox_id);
  EXPECT_EQ(e.payload.speaker_id(), id);
  EXPECT_EQ(e.payload.client_id(), "clinic-9");
  EXPECT_EQ(e.payload.previous_bucket(), "high_touch");
  EXPECT_EQ(e.payload.new_bucket(), "no_touch");
  EXPECT_EQ(e.payload.reason(), reason);
  EXPECT_EQ(e.payload.timestamp_ms(), created_ms);

  // The durable subscriber got the same event, once.
  self->receive(
    [&](sbm::publish_atom, const bucket_changed& got) {
      EXPECT_EQ(got.event_id, outbox_id);
      EXPECT_EQ(got.speaker_id, id);
      EXPECT_EQ(got.previous_bucket, "high_touch");
      EXPECT_EQ(got.new_bucket, "no_touch");
      EXPECT_EQ(got.timestamp_ms, created_ms);
    },
    caf::after(5s) >> [] { ADD_FAILURE() << "the subscriber got nothing"; });
  self->receive([&](sbm::publish_atom, const bucket_changed&) { ADD_FAILURE() << "delivered twice"; },
                caf::after(500ms) >> [] {});
}

TEST_F(EventStream, ARefusingSubscriberIsRetriedUntilItAcknowledges) {
  auto db = start_postgres(sbm::test::servers::shared().fresh_database());
  auto bus = stop_at_end(sbm::events::spawn_event_bus(sys));
  caf::actor observer = caf::actor_cast<caf::actor>(self);
  auto subscriber = stop_at_end(sys.spawn(scripted_subscriber, observer, 2));
  self->send(bus, sbm::subscribe_atom::value, subscriber, true);
  auto shard = start_speakers(db, bus, {});
  promote(shard, "spk-1");

  std::vector<std::int64_t> ids;
  for (int i = 0; i < 3; ++i)
    self->receive([&](sbm::publish_atom, const bucket_changed& got) { ids.push_back(got.event_id); },
                  caf::after(20s) >> [] { ADD_FAILURE() << "no redelivery"; });
  ASSERT_EQ(ids.size(), 3u);
  EXPECT_EQ(ids[0], ids[1]);
  EXPECT_EQ(ids[1], ids[2]);
  EXPECT_TRUE(sbm::test::eventually([&] {
    auto rows = sql(db, "SELECT count(*) FROM speakers.outbox WHERE delivered_at IS NOT NULL");
    return !rows.empty() && rows[0][0] == param{"1"};
  }, 10s));
  // Without a stream publisher the stream column stays open for a later one.
  EXPECT_EQ(sql(db, "SELECT count(*) FROM speakers.outbox WHERE stream_published_at IS NULL")[0][0],
            param{"1"});
}

TEST_F(EventStream, RedisDownDoesNotHoldUpTheBusAndTheStreamCatchesUp) {
  srv = sbm::test::servers::start_private();
  auto db = start_postgres(srv->fresh_database());
  auto redis = start_redis(srv->redis_host(), srv->redis_port());
  auto bus = stop_at_end(sbm::events::spawn_event_bus(sys));
  auto stream = stop_at_end(sbm::events::spawn_stream_publisher(sys, redis, 2s));
  caf::actor observer = caf::actor_cast<caf::actor>(self);
  auto subscriber = stop_at_end(sys.spawn(scripted_subscriber, observer, 0));
  self->send(bus, sbm::subscribe_atom::value, subscriber, true);
  auto shard = start_speakers(db, bus, stream);

  srv->stop_redis();
  promote(shard, "spk-1");
  self->receive([&](sbm::publish_atom, const bucket_changed& got) {
                  EXPECT_EQ(got.new_bucket, "no_touch");
                },
                caf::after(20s) >> [] { ADD_FAILURE() << "the bus waited for Redis"; });
  ASSERT_TRUE(sbm::test::eventually([&] {
    auto rows = sql(db, "SELECT count(*) FROM speakers.outbox WHERE delivered_at IS NOT NULL");
    return !rows.empty() && rows[0][0] == param{"1"};
  }, 10s));
  EXPECT_EQ(sql(db, "SELECT count(*) FROM speakers.outbox WHERE stream_published_at IS NULL")[0][0],
            param{"1"});

  srv->start_redis();
  ASSERT_TRUE(sbm::test::eventually([&] {
    auto rows = sql(db, "SELECT count(*) FROM speakers.outbox WHERE stream_published_at IS NOT NULL");
    return !rows.empty() && rows[0][0] == param{"1"};
  }, 60s)) << "the stream did not catch up after Redis came back";
  // The test reads through the same Redis actor, whose breaker may still be open from the outage
  // for a second after the stream caught up: a refused read is asked again.
  std::vector<stream_entry> entries;
  ASSERT_TRUE(sbm::test::eventually([&] {
    entries = stream_entries(redis, "spk-1");
    return !entries.empty();  // at least once; consumers deduplicate on event_id
  }, 10s));
  EXPECT_EQ(entries[0].payload.new_bucket(), "no_touch");
}

}  // namespace

// The Redis supervisor against real servers: binary-safe commands, streams, error mapping, status,
// and (on a private server) an outage and recovery.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <vector>

#include "actors/connections/connections.hpp"
#include "messages/errors.hpp"
#include "tests/support/actor_test.hpp"
#include "tests/support/servers.hpp"

namespace {

using namespace std::chrono_literals;
using sbm::dependency_status;
using sbm::errc;
using sbm::redis_actor;
using sbm::redis_command;
using sbm::redis_reply;
using sbm::connections::redis_settings;

class RedisConnection : public sbm::test::io_actor_test {
 protected:
  static redis_settings settings_for(const sbm::test::servers& servers) {
    redis_settings s;
    s.host = servers.redis_host();
    s.port = static_cast<std::uint16_t>(servers.redis_port());
    s.probe_interval = 100ms;
    s.request_timeout = 5s;
    s.restart_backoff = sbm::resilience::backoff_policy{3, 20ms, 200ms, 0.0};
    return s;
  }

  redis_actor spawn_up(redis_settings s) {
    auto redis = stop_at_end(sbm::connections::spawn_redis(sys, std::move(s)));
    EXPECT_TRUE(wait_for_state(redis, "up")) << status(redis).state << ": " << status(redis).detail;
    return redis;
  }

  dependency_status status(const redis_actor& redis) {
    auto s = ask<dependency_status>(redis, sbm::status_atom::value);
    EXPECT_TRUE(s) << caf::to_string(s.error());
    return s ? *s : dependency_status{};
  }

  bool wait_for_state(const redis_actor& redis, const std::string& state,
                      std::chrono::milliseconds timeout = 30s) {
    return sbm::test::eventually([&] { return status(redis).state == state; }, timeout);
  }

  caf::expected<redis_reply> run(const redis_actor& redis, std::vector<std::string> argv) {
    return ask<redis_reply>(redis, sbm::command_atom::value, redis_command{std::move(argv)});
  }

  // Keys of this process only: the shared server is used by tests running in parallel.
  static std::string key(const std::string& name) {
    return "sbmtest:" + std::to_string(::getpid()) + ":" + name;
  }
};

TEST_F(RedisConnection, SetAndGetAreBinarySafe) {
  auto redis = spawn_up(settings_for(sbm::test::servers::shared()));
  const std::string value{"a\0b\r\n\xff\x01 \"quoted\" $3\r\n", 22};
  auto set = run(redis, {"SET", key("binary"), value});
  ASSERT_TRUE(set) << caf::to_string(set.error());
  EXPECT_EQ(set->kind, redis_reply::status);
  EXPECT_EQ(set->text, "OK");
  auto get = run(redis, {"GET", key("binary")});
  ASSERT_TRUE(get) << caf::to_string(get.error());
  EXPECT_EQ(get->kind, redis_reply::string);
  EXPECT_EQ(get->text, value);
  EXPECT_EQ(get->text.size(), 22u);

  auto missing = run(redis, {"GET", key("missing")});
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->kind, redis_reply::nil);

  auto deleted = run(redis, {"DEL", key("binary")});
  ASSERT_TRUE(deleted);
  EXPECT_EQ(deleted->kind, redis_reply::integer);
  EXPECT_EQ(deleted->integer_value, 1);
}

TEST_F(RedisConnection, StreamsRoundTrip) {
  auto redis = spawn_up(settings_for(sbm::test::servers::shared()));
  const auto stream = key("stream");
  auto first = run(redis, {"XADD", stream, "*", "speaker", "S-1", "bucket", "B"});
  ASSERT_TRUE(first) << caf::to_string(first.error());
  EXPECT_EQ(first->kind, redis_reply::string);
  auto second = run(redis, {"XADD", stream, "*", "speaker", "S-2", "bucket", "C"});
  ASSERT_TRUE(second);
  auto range = run(redis, {"XRANGE", stream, "-", "+"});
  ASSERT_TRUE(range) << caf::to_string(range.error());
  EXPECT_EQ(range->kind, redis_reply::array);
  // [[id, [field, value, ...]], ...] flattened depth-first.
  const std::vector<std::string> expected = {first->text, "speaker", "S-1", "bucket", "B",
                                             second->text, "speaker", "S-2", "bucket", "C"};
  EXPECT_EQ(range->elements, expected);
  EXPECT_TRUE(run(redis, {"DEL", stream}));
}

TEST_F(RedisConnection, CommandErrorsAreTheCallersAndKeepTheConnection) {
  auto redis = spawn_up(settings_for(sbm::test::servers::shared()));
  ASSERT_TRUE(run(redis, {"SET", key("plain"), "v"}));
  auto wrong_type = run(redis, {"LPUSH", key("plain"), "x"});
  ASSERT_FALSE(wrong_type);
  EXPECT_EQ(sbm::code_of(wrong_type.error()), errc::invalid_argument);
  EXPECT_NE(sbm::detail_of(wrong_type.error()).find("WRONGTYPE"), std::string::npos);
  auto unknown = run(redis, {"NOSUCHCOMMAND"});
  ASSERT_FALSE(unknown);
  EXPECT_EQ(sbm::code_of(unknown.error()), errc::invalid_argument);
  auto empty = run(redis, {});
  ASSERT_FALSE(empty);
  EXPECT_EQ(sbm::code_of(empty.error()), errc::invalid_argument);
  EXPECT_TRUE(run(redis, {"DEL", key("plain")}));
  EXPECT_EQ(status(redis).state, "up");
}

TEST_F(RedisConnection, StatusSaysOptional) {
  auto redis = spawn_up(settings_for(sbm::test::servers::shared()));
  auto s = status(redis);
  EXPECT_EQ(s.name, "redis");
  EXPECT_FALSE(s.required);
  EXPECT_TRUE(s.up);
}

TEST_F(RedisConnection, OutageIsUnavailableAndRecoversByItself) {
  auto servers = sbm::test::servers::start_private();
  auto settings = settings_for(*servers);
  settings.breaker = sbm::resilience::breaker_policy{3, 60s};
  auto redis = spawn_up(settings);
  ASSERT_TRUE(run(redis, {"SET", "k", "before"}));

  servers->stop_redis();
  auto failed = run(redis, {"GET", "k"});
  ASSERT_FALSE(failed);
  EXPECT_EQ(sbm::code_of(failed.error()), errc::unavailable) << caf::to_string(failed.error());
  EXPECT_TRUE(wait_for_state(redis, "down", 10s)) << status(redis).state;
  EXPECT_FALSE(status(redis).detail.empty());
  for (int i = 0; i < 3; ++i)
    EXPECT_FALSE(run(redis, {"GET", "k"}));
  auto refused = run(redis, {"GET", "k"});
  ASSERT_FALSE(refused);
  EXPECT_TRUE(sbm::retry_after_of(refused.error())) << sbm::detail_of(refused.error());

  servers->start_redis();
  EXPECT_TRUE(wait_for_state(redis, "up", 20s)) << status(redis).state << ": " << status(redis).detail;
  auto after = run(redis, {"SET", "k", "after"});
  EXPECT_TRUE(after) << caf::to_string(after.error());
}

}  // namespace

// The shard's idle sweep under CAF's test coordinator (virtual time): one sweep asks at most 4096
// speakers per message, so a shard with more than that resumes where it stopped, and every idle
// speaker is passivated all the same. PostgreSQL cannot run under the test coordinator, so a
// stand-in answers the speakers' loads the way it would for a registered speaker; the shard, the
// speaker actors and their passivation are the real ones.
#include <gtest/gtest.h>

#include <caf/actor_cast.hpp>
#include <caf/scheduler/test_coordinator.hpp>
#include <caf/send.hpp>

#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "actors/speakers/speakers.hpp"
#include "messages/connections.hpp"
#include "messages/metrics.hpp"
#include "messages/speakers.hpp"
#include "tests/support/actor_test.hpp"

namespace {

using namespace std::chrono_literals;

// speaker_shard.cpp's sweep_chunk: what this test holds the shard to.
constexpr std::size_t sweep_cap = 4096;

std::string id_of(std::size_t i) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "spk-%06zu", i);
  return buf;
}

// A registered high_touch speaker with three samples of 4.0 for every load; nothing else to say.
// `loaded` (if given) collects the speaker actors that loaded, so a test can watch them.
sbm::postgres_actor::behavior_type stand_in_db(sbm::postgres_actor::pointer self,
                                               std::shared_ptr<std::vector<caf::actor>> loaded) {
  return {
    // An activation's load outside a cluster: the row and its window (as JSON) in one statement.
    [self, loaded](sbm::query_atom, sbm::db_statement& st) {
      sbm::db_rows out;
      if (st.params.empty() || st.sql.find("FROM speakers.speakers") == std::string::npos) return out;
      if (loaded) loaded->push_back(caf::actor_cast<caf::actor>(self->current_sender()));
      out.rows.push_back({*st.params[0], std::string("client-1"), std::string("Dr"), std::string("high_touch"),
                          std::string("f"), std::string(), std::string(), std::string("0"), std::string("3"),
                          std::string("4"), std::string("3"), std::string("0"), std::string("0"),
                          std::string("0"), std::string("1"), std::string("[4,4,4]")});
      return out;
    },
    [](sbm::transact_atom, sbm::db_transaction&) { return sbm::db_results{}; },
    [](sbm::status_atom) {
      sbm::dependency_status s;
      s.name = "postgres";
      s.up = true;
      s.state = "up";
      return s;
    },
    [](sbm::metrics_atom) { return sbm::component_metrics{}; },
  };
}

class SpeakerSweep : public sbm::test::sim_actor_test {
 protected:
  sbm::speaker_shard_stats stats(const sbm::speaker_shard_actor& shard) {
    self->send(shard, sbm::status_atom::value);
    sched.run();
    sbm::speaker_shard_stats out;
    self->receive([&](sbm::speaker_shard_stats& s) { out = s; });
    return out;
  }
};

TEST_F(SpeakerSweep, MoreSpeakersThanOneSweepMessageAsksAreAllPassivated) {
  constexpr std::size_t n = 2 * sweep_cap + 500;  // three sweep messages' worth
  sbm::speakers::speakers_settings s;
  s.db = sys.spawn(stand_in_db, nullptr);
  s.idle_timeout = 60s;         // swept every 15 s
  s.relay_interval = 24h;       // the outbox relay stays out of the way
  s.measurers = 1;
  s.detached_measurers = false;
  auto shard = sbm::speakers::spawn_speakers(sys, s);
  sched.run();
  for (std::size_t i = 0; i < n; ++i) caf::anon_send(shard, sbm::get_atom::value, id_of(i));
  sched.run();
  auto st = stats(shard);
  ASSERT_EQ(st.active, n);
  ASSERT_EQ(st.activations, n);

  // Three sweeps find everyone idle for less than the idle timeout: nobody retires.
  for (int i = 0; i < 3; ++i) {
    sched.advance_time(15s);
    sched.run();
  }
  ASSERT_EQ(stats(shard).active, n) << "retired before the idle timeout";

  // The fourth sweep: its timer wakes the shard alone, and the shard's first sweep message asks
  // exactly the cap (each asked speaker now has a message waiting) and leaves itself the rest.
  ASSERT_EQ(sched.advance_time(15s), 1u);
  ASSERT_EQ(sched.jobs.size(), 1u);
  sched.run_once();
  EXPECT_EQ(sched.jobs.size(), sweep_cap + 1) << "speakers asked by one sweep message, plus the shard";

  sched.run();
  st = stats(shard);
  EXPECT_EQ(st.active, 0u);
  EXPECT_EQ(st.passivations, n);
  EXPECT_EQ(st.failures, 0u);

  caf::anon_send_exit(shard, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(s.db, caf::exit_reason::user_shutdown);
  sched.run();
}

TEST_F(SpeakerSweep, NoSpeakerOutlivesItsShardEvenAKilledOne) {
  auto loaded = std::make_shared<std::vector<caf::actor>>();
  sbm::speakers::speakers_settings s;
  s.db = sys.spawn(stand_in_db, loaded);
  s.relay_interval = 24h;
  s.measurers = 1;
  s.detached_measurers = false;
  auto shard = sbm::speakers::spawn_speakers(sys, s);
  sched.run();
  for (std::size_t i = 0; i < 20; ++i) caf::anon_send(shard, sbm::get_atom::value, id_of(i));
  sched.run();
  ASSERT_EQ(loaded->size(), 20u);
  for (auto& speaker : *loaded) self->monitor(speaker);
  // A kill skips every handler of the shard; only its state's destructor runs.
  caf::anon_send_exit(shard, caf::exit_reason::kill);
  sched.run();
  std::size_t down = 0;
  for (std::size_t i = 0; i < loaded->size(); ++i)
    self->receive([&](caf::down_msg&) { ++down; }, caf::after(std::chrono::seconds(0)) >> [] {});
  EXPECT_EQ(down, loaded->size());
  caf::anon_send_exit(s.db, caf::exit_reason::user_shutdown);
  sched.run();
}

}  // namespace

// Simulated nodes of one cluster in one process: each its own speaker shard and membership actor
// (the real ones, with their real speaker actors), over the shared in-memory lease store and one
// in-memory speakers store. Clients send quality samples with Idempotency-Keys to any node and
// retry on every refusal; the seed decides when nodes join, drain, crash (every actor killed, its
// connections lost, the lease left to lapse) or freeze (not scheduled for a while, as under
// SIGSTOP), and which messages between nodes are lost or held back. The store judges every write
// it accepted: at any virtual instant only the speaker's live owner may write, no acknowledged
// sample is lost and none is counted twice. Then the faults stop, and every sample must get
// through.
//
// The membership actor (actors/cluster/membership.cpp) publishes, connects and joins through a
// simulated middleman (network.hpp's transport): a connect answers a link over the lossy network,
// which the member monitors as it would a BASP proxy, and a crash kills every link to the node,
// as BASP reports a lost connection. Handles a join carries become links of the receiving node
// (BASP's proxies), and the placement a membership tells its shard has each member's shard
// replaced by this node's link to it, so shard-to-shard forwarding crosses the network too.
#include <gtest/gtest.h>

#include <caf/actor_cast.hpp>
#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/scheduled_actor.hpp>
#include <caf/send.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include <algorithm>
#include <chrono>
#include <iostream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "actors/cluster/membership.hpp"
#include "actors/cluster/store.hpp"
#include "actors/speakers/speaker_state.hpp"
#include "actors/speakers/speakers.hpp"
#include "messages/cluster.hpp"
#include "messages/connections.hpp"
#include "messages/errors.hpp"
#include "messages/metrics.hpp"
#include "messages/speakers.hpp"
#include "runtime/logging/logging.hpp"
#include "tests/sim/harness.hpp"
#include "tests/sim/leases_memory.hpp"
#include "tests/sim/memory_server.hpp"
#include "tests/sim/network.hpp"
#include "tests/sim/speakers_memory.hpp"

namespace {

using namespace std::chrono_literals;
namespace sim = sbm::sim;

constexpr int speaker_count = 6;
constexpr int sample_count = 40;
constexpr std::size_t max_nodes = 5;
constexpr auto lease_ttl = 3s;
constexpr auto renew_every = 1s;
// After the faults stop: a lapsed lease (3 s), a thaw (7 s at most) and a few of a client's
// retries (6 s each at most) take far less.
constexpr std::chrono::milliseconds calm_limit = 120s;
// The pacing then: time still passes as work runs, as on a real network (two shards whose views
// differ for a moment forward a speaker back and forth until the next lease reading; with no
// time passing per step they would do so forever at one instant), but never near a timeout.
constexpr sim::pacing calm_pace{0.05, std::chrono::milliseconds{10}};

using retry_atom = caf::atom_constant<caf::atom("simretry")>;

bool planted_bug = false;  // the SkipTheFence test: the store saves without the fence

struct sim_node {
  std::string host;
  std::uint16_t port = 0;
  std::string address;  // host:port, the membership's name for it
  std::shared_ptr<sbm::node_lease> lease = std::make_shared<sbm::node_lease>();
  sbm::speaker_shard_actor shard;
  caf::actor relay;  // between the membership and the shard: see placement_relay
  caf::io::middleman_actor transport;
  sbm::membership_actor membership;
  bool crashed = false;
  bool draining = false;
};

// What the scenario shares with its actors: one thread (the test coordinator) touches it.
struct cluster {
  std::vector<std::unique_ptr<sim_node>> nodes;
  std::map<std::pair<std::string, std::string>, caf::actor> links;  // (from, to) shard links
  std::multimap<std::string, caf::actor> member_links;  // to a node's membership, by its address
  std::shared_ptr<sim::directory> dir = std::make_shared<sim::directory>();
  sim::network net;
  caf::actor server;
  std::shared_ptr<sim::lease_tables> leases;
  sbm::speakers::store_ptr store;
  sbm::postgres_actor relay_db;
};

// --- what BASP does between the nodes ---

sim_node* node_of(cluster* c, caf::actor_id membership) {
  for (auto& n : c->nodes)
    if (n->membership.id() == membership) return n.get();
  return nullptr;
}

// A link to the membership actor `target` (of another node), killed when that node crashes: the monitor on it fires as on a BASP proxy whose connection is gone.
caf::actor link_to_member(caf::actor_system& sys, cluster* c, const caf::actor& target);

// A join carries the joiner's membership handle; on the receiving node it is a proxy: a link.
sim::rewrite proxies_for(caf::actor_system& sys, cluster* c) {
  return [&sys, c](caf::message msg) {
    if (!msg.match_elements<sbm::join_atom, sbm::cluster_member>()) return msg;
    auto m = msg.get_as<sbm::cluster_member>(1);
    if (m.membership && node_of(c, m.membership.id()))
      m.membership = link_to_member(sys, c, m.membership);
    return caf::make_message(sbm::join_atom::value, std::move(m));
  };
}

caf::actor link_to_member(caf::actor_system& sys, cluster* c, const caf::actor& target) {
  auto link = sim::spawn_link(sys, target, c->net, proxies_for(sys, c));
  if (auto* to = node_of(c, target.id())) c->member_links.emplace(to->address, link);
  return link;
}

// The placement the membership tells its shard names each member's shard by the handle that
// member sent; this node reaches it through its link to that node's shard instead.
caf::behavior placement_relay(caf::event_based_actor* self, cluster* c, sim_node* n) {
  return {
    [self, c, n](sbm::placement_atom, sbm::cluster_placement& p) {
      for (auto& m : p.members)
        if (m.address != n->address) {
          auto it = c->links.find({n->address, m.address});
          m.speakers = it == c->links.end() ? caf::actor{} : it->second;
        }
      self->send(n->shard, sbm::placement_atom::value, std::move(p));
    },
  };
}

// --- clients ---

struct ledger {
  std::set<std::string> acked;  // job ids answered with the speaker's view
  std::vector<std::string> violations;
  int done = 0;
  std::uint64_t attempts = 0;
};

struct client_state {
  static inline const char* name = "sbm.sim.client";
  cluster* c = nullptr;
  ledger* led = nullptr;
  sbm::quality_sample sample;
  std::mt19937_64 rng;
  int attempt = 0;
};

using client_ptr = caf::stateful_actor<client_state>*;

void finish(client_ptr self) {
  ++self->state.led->done;
  self->quit();
}

void attempt(client_ptr self) {
  auto& st = self->state;
  ++st.attempt;
  ++st.led->attempts;
  std::vector<sim_node*> up;
  for (auto& n : st.c->nodes)
    if (!n->crashed) up.push_back(n.get());
  if (up.empty()) {
    self->delayed_send(self, 500ms, retry_atom::value);
    return;
  }
  auto* n = up[std::uniform_int_distribution<std::size_t>{0, up.size() - 1}(st.rng)];
  auto s = st.sample;
  s.ctx.until = sbm::deadline::after(self->clock().now(), 4s);
  self->request(n->shard, 6s, sbm::sample_atom::value, s)
    .then(
      [self](sbm::speaker_view&) {
        self->state.led->acked.insert(self->state.sample.job_id);
        finish(self);
      },
      [self](caf::error& e) {
        auto& st = self->state;
        const auto code = sbm::code_of(e);
        if (e.category() == sbm::error_category &&
            (code == sbm::errc::invalid_argument || code == sbm::errc::not_found || code == sbm::errc::key_reused ||
             code == sbm::errc::duplicate)) {
          st.led->violations.push_back("job " + st.sample.job_id + " refused for good: " + self->system().render(e));
          return finish(self);
        }
        const auto pause = std::chrono::milliseconds{std::uniform_int_distribution<int>{50, 800}(st.rng)};
        self->delayed_send(self, pause, retry_atom::value);
      });
}

caf::behavior client_fn(client_ptr self, cluster* c, ledger* led, sbm::quality_sample s, std::uint64_t seed) {
  self->state.c = c;
  self->state.led = led;
  self->state.sample = std::move(s);
  self->state.rng.seed(seed);
  attempt(self);
  return {[self](retry_atom) { attempt(self); }};
}

// --- the scenario ---

sim_node* add_node(caf::actor_system& sys, cluster& c) {
  auto n = std::make_unique<sim_node>();
  const auto number = c.nodes.size() + 1;
  n->host = "node-" + std::to_string(number);
  n->port = static_cast<std::uint16_t>(7000 + number);
  n->address = n->host + ":" + std::to_string(n->port);
  sbm::speakers::speakers_settings s;
  s.db = c.relay_db;
  s.store = c.store;
  s.lease = n->lease;
  s.relay_interval = 24h;
  s.measurers = 1;
  s.detached_measurers = false;
  s.idle_timeout = 20s;
  s.db_timeout = 2s;
  n->shard = sbm::speakers::spawn_speakers(sys, s);
  for (auto& other : c.nodes) {
    c.links[{n->address, other->address}] = sim::spawn_link(sys, caf::actor_cast<caf::actor>(other->shard), c.net);
    c.links[{other->address, n->address}] = sim::spawn_link(sys, caf::actor_cast<caf::actor>(n->shard), c.net);
  }
  auto* raw = n.get();
  c.nodes.push_back(std::move(n));
  raw->relay = sys.spawn(placement_relay, &c, raw);
  raw->transport = sim::spawn_transport(sys, c.dir, [&sys, cl = &c](const caf::actor& target) {
    return link_to_member(sys, cl, target);
  });
  sbm::cluster::membership_settings m;
  m.node_name = raw->host;
  m.host = raw->host;
  m.port = raw->port;
  // Every node so far is a seed, crashed ones too (a connect to them fails, as it would).
  for (auto& other : c.nodes) m.seeds.emplace_back(other->host, other->port);
  m.lease_ttl = lease_ttl;
  m.renew_interval = renew_every;
  m.call_timeout = 2s;
  m.lease = raw->lease;
  m.speakers = caf::actor_cast<sbm::speaker_shard_actor>(raw->relay);
  m.transport = raw->transport;
  m.make_store = sim::memory_lease_store(c.server, c.leases);
  raw->membership = sbm::cluster::spawn_membership(sys, std::move(m));
  return raw;
}

// A crash: every actor of the node killed, every connection to it lost, its port gone; its lease
// is left to lapse.
void crash(cluster& c, sim_node* n) {
  n->crashed = true;
  c.dir->published.erase(n->address);
  for (auto [it, end] = c.member_links.equal_range(n->address); it != end; ++it)
    caf::anon_send_exit(it->second, caf::exit_reason::kill);
  c.member_links.erase(n->address);
  caf::anon_send_exit(n->membership, caf::exit_reason::kill);
  caf::anon_send_exit(n->transport, caf::exit_reason::kill);
  caf::anon_send_exit(n->relay, caf::exit_reason::kill);
  caf::anon_send_exit(n->shard, caf::exit_reason::kill);
}

// Everything of a node the scheduler runs: its shard, its membership and its speakers.
std::function<bool(caf::resumable*)> actors_of(const sim_node* n) {
  const auto shard = n->shard.id();
  const std::set<caf::actor_id> own{shard, n->membership.id(), n->relay.id(), n->transport.id()};
  return [shard, own](caf::resumable* job) {
    auto* a = dynamic_cast<caf::scheduled_actor*>(job);
    if (!a) return false;
    if (own.count(a->id())) return true;
    auto* speaker = dynamic_cast<caf::stateful_actor<sbm::speakers::speaker_state>*>(job);
    return speaker && speaker->state.env && speaker->state.env->shard.id() == shard;
  };
}

struct run_result {
  std::vector<std::string> failures;
  std::vector<std::string> trace;
  std::uint64_t acked = 0, fenced_writes = 0, lost = 0, delayed = 0, answers_lost = 0, releases_refused = 0;
};

struct options {
  bool lossy = true;        // the store and the network fail, lose and delay now and then
  bool joins_only = false;  // every fault of the timeline is a join: the old owners live on
  bool busy_first_release = false;  // speaker_tables::busy_first_release
};

run_result run_seed(std::uint64_t seed, options o = {}) {
  run_result out;
  sim::world w{seed};
  auto& rng = w.rng();
  auto& sys = w.sys();
  cluster c;
  c.net = sim::make_network(seed * 7919 + 1);
  auto server = sim::spawn_memory_server(sys, seed);
  c.server = server.handle;
  c.leases = std::make_shared<sim::lease_tables>();
  auto tables = std::make_shared<sim::speaker_tables>();
  tables->leases = c.leases;
  tables->skip_write_fence = planted_bug;
  tables->busy_first_release = o.busy_first_release;
  c.store = sim::memory_speaker_store(c.server, tables);
  c.relay_db = sim::spawn_quiet_db(sys);
  if (o.lossy) {
    // The store is slow now and then, refuses a call or loses the answer of one it applied
    // (outcome unknown: the retry under the same key must not count the sample twice).
    server.faults_now->latency = 2ms;
    server.faults_now->jitter = 30ms;
    server.faults_now->fail_chance = 0.02;
    server.faults_now->lose_chance = 0.02;
    c.net.faults->lose_chance = 0.03;
    c.net.faults->delay_chance = 0.1;
    c.net.faults->max_delay = 1500ms;
  }
  // The speakers exist before the run (registration is not what this scenario tests).
  for (int i = 0; i < speaker_count; ++i) {
    auto& row = tables->speakers["spk-" + std::to_string(i)];
    row.view.speaker_id = "spk-" + std::to_string(i);
    row.view.client_id = "client-1";
    row.view.bucket = "high_touch";
  }
  for (int i = 0; i < 3; ++i) add_node(sys, c);

  // The timeline: samples and faults at virtual instants the seed picks.
  enum class act { sample, crash, freeze, drain, join };
  std::vector<std::pair<std::int64_t, act>> timeline;
  for (int i = 0; i < sample_count; ++i)
    timeline.emplace_back(std::uniform_int_distribution<std::int64_t>{500, 25000}(rng), act::sample);
  const int faults = std::uniform_int_distribution<int>{1, 4}(rng);
  for (int i = 0; i < faults; ++i) {
    // The kind first, then the instant: the order g++ drew them in when both were arguments of
    // one call, which the kept seeds' timelines depend on.
    const auto what = static_cast<act>(std::uniform_int_distribution<int>{1, 4}(rng));
    const auto at = std::uniform_int_distribution<std::int64_t>{2000, 22000}(rng);
    timeline.emplace_back(at, o.joins_only ? act::join : what);
  }
  std::stable_sort(timeline.begin(), timeline.end(), [](const auto& a, const auto& b) { return a.first < b.first; });

  ledger led;
  std::vector<caf::actor> clients;
  int next_job = 0;
  const auto start = w.now();
  auto note = [&](const std::string& what) { out.trace.push_back(std::to_string(sim::ms_of(w.now())) + " " + what); };
  auto serving = [&] {
    std::vector<sim_node*> v;
    for (auto& n : c.nodes)
      if (!n->crashed && !n->draining) v.push_back(n.get());
    return v;
  };
  for (const auto& [at, what] : timeline) {
    w.run_until([&] { return w.now() >= start + std::chrono::milliseconds{at}; }, 60s);
    auto up = serving();
    auto pick = [&]() -> sim_node* {
      return up.empty() ? nullptr : up[std::uniform_int_distribution<std::size_t>{0, up.size() - 1}(rng)];
    };
    switch (what) {
      case act::sample: {
        sbm::quality_sample s;
        s.speaker_id = "spk-" + std::to_string(std::uniform_int_distribution<int>{0, speaker_count - 1}(rng));
        s.job_id = "job-" + std::to_string(next_job++);
        s.errors_per_100_words = std::uniform_int_distribution<int>{0, 80}(rng) / 10.0;
        s.actor = "qa-sim";
        s.ctx.idempotency_key = "key-" + s.job_id;
        s.ctx.request_digest = "digest-" + s.job_id;
        s.ctx.principal = "sim";
        clients.push_back(sys.spawn(client_fn, &c, &led, s, rng()));
        break;
      }
      case act::crash:
        if (up.size() < 2) break;
        if (auto* n = pick()) {
          note("crash " + n->address);
          crash(c, n);
        }
        break;
      case act::freeze:
        if (auto* n = pick()) {
          const auto span = std::chrono::milliseconds{std::uniform_int_distribution<int>{500, 7000}(rng)};
          note("freeze " + n->address + " " + std::to_string(span.count()) + "ms");
          w.freeze(actors_of(n), span);
        }
        break;
      case act::drain:
        if (up.size() < 2) break;
        if (auto* n = pick()) {
          note("drain " + n->address);
          n->draining = true;
          caf::anon_send(n->membership, sbm::drain_atom::value);
        }
        break;
      case act::join:
        if (c.nodes.size() >= max_nodes) break;
        note("join " + add_node(sys, c)->address);
        break;
    }
  }
  // The faults stop: the store answers every call, the network carries every message at once,
  // time no longer jumps far past waiting messages, and no node crashes, drains or freezes any more (a frozen one thaws on time). Then every sample
  // must get through: its client retries until acknowledged (or refused for good, a violation).
  *server.faults_now = sim::faults{};
  *c.net.faults = sim::network_faults{};
  w.pace(calm_pace);
  if (!w.run_until([&] { return led.done == next_job; }, calm_limit))
    out.failures.push_back(std::to_string(next_job - led.done) + " sample(s) not acknowledged " +
                           std::to_string(calm_limit.count() / 1000) + " s after the faults stopped");

  for (const auto& v : led.violations) out.failures.push_back(v);
  for (const auto& wr : tables->writes)
    if (!wr.live_owner)
      out.failures.push_back("speaker " + wr.speaker_id + " written at " + std::to_string(wr.at_ms) + " ms under epoch " +
                             std::to_string(wr.epoch.value_or(0)) + ", which was not its live owner then");
  std::map<std::string, int> applied;  // job ids are unique across speakers
  for (const auto& wr : tables->writes)
    if (!wr.job_id.empty() && ++applied[wr.job_id] > 1)
      out.failures.push_back("job " + wr.job_id + " of " + wr.speaker_id + " applied twice");
  for (const auto& job : led.acked)
    if (!applied.count(job)) out.failures.push_back("acknowledged " + job + " is not in the store");
  for (const auto& [id, row] : tables->speakers)
    if (row.view.samples_total != tables->samples[id].size())
      out.failures.push_back("speaker " + id + " counts " + std::to_string(row.view.samples_total) + " samples, holds " +
                             std::to_string(tables->samples[id].size()));
  // A store fault (a refused call, a lost answer) is the speaker's to answer, never a reason to
  // die: only corrupt state may end an activation as a failure.
  auto failures = std::make_shared<std::uint64_t>(0);
  auto asked = std::make_shared<int>(0);
  int live_nodes = 0;
  for (auto& n : c.nodes) {
    if (n->crashed) continue;
    ++live_nodes;
    sys.spawn([shard = n->shard, failures, asked](caf::event_based_actor* self) {
      self->request(shard, 5s, sbm::status_atom::value)
        .then([failures, asked](sbm::speaker_shard_stats& st) {
          *failures += st.failures;
          ++*asked;
        }, [asked](caf::error&) { ++*asked; });
    });
  }
  w.run_until([&] { return *asked == live_nodes; }, 10s);
  if (*failures > 0)
    out.failures.push_back(std::to_string(*failures) + " speaker activation(s) died on a store fault");
  out.acked = led.acked.size();
  for (const auto& wr : tables->writes) out.fenced_writes += wr.epoch ? 1 : 0;
  out.lost = c.net.stats->lost;
  out.delayed = c.net.stats->delayed;
  out.answers_lost = server.stats->lost;
  out.releases_refused = tables->releases_refused;

  for (auto& n : c.nodes) {
    caf::anon_send_exit(n->membership, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(n->transport, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(n->relay, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(n->shard, caf::exit_reason::user_shutdown);
  }
  for (auto& [k, l] : c.links) caf::anon_send_exit(l, caf::exit_reason::user_shutdown);
  for (auto& [k, l] : c.member_links) caf::anon_send_exit(l, caf::exit_reason::user_shutdown);
  for (auto& cl : clients) caf::anon_send_exit(cl, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(c.relay_db, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(c.server, caf::exit_reason::user_shutdown);
  w.run_for(1s);
  for (auto& line : w.trace()) out.trace.push_back(line);
  return out;
}

std::string report(std::uint64_t seed, const run_result& r) {
  return sim::failure_report("sim_cluster_nodes", seed, r.failures, r.trace);
}

// The ctest seed set: 200 seeds from 1 (scripts/sim runs more).
struct seed_set_result : sim::seed_set {
  std::uint64_t acked = 0, fenced_writes = 0, lost = 0, delayed = 0, answers_lost = 0;
};

seed_set_result run_seeds(sim::seed_range range, std::size_t stop_after, bool print) {
  seed_set_result out;
  static_cast<sim::seed_set&>(out) = sim::run_seed_set(
    range, stop_after, "sim_cluster_nodes",
    [&out](std::uint64_t seed) {
      auto r = run_seed(seed);
      out.acked += r.acked;
      out.fenced_writes += r.fenced_writes;
      out.lost += r.lost;
      out.delayed += r.delayed;
      out.answers_lost += r.answers_lost;
      return sim::seed_run{std::move(r.failures), std::move(r.trace)};
    },
    [print](const std::string& report) {
      if (print) ADD_FAILURE() << report;
    });
  return out;
}

TEST(ClusterNodesSim, AtMostOneLiveOwnerWritesAndNoAcknowledgedSampleIsLostOrCountedTwice) {
  auto r = run_seeds(sim::seeds(200), 5, true);
  std::cout << r.runs << " seed(s): " << r.acked << " samples acknowledged, " << r.fenced_writes
            << " fenced writes accepted, " << r.lost << " messages between nodes lost, " << r.delayed
            << " held back, " << r.answers_lost << " store answers lost\n";
  // The faults must reach what they test: writes fenced, messages lost, samples through.
  if (r.runs >= 50) {
    EXPECT_GT(r.acked, r.runs * sample_count / 2);
    EXPECT_GT(r.lost, 0u);
    EXPECT_GT(r.answers_lost, 0u);
  }
}

// The planted bug: the store saves a speaker's change without its fence, as a node that skipped
// the check would. Some seed of the ctest set must catch it (a stale owner's write accepted).
TEST(ClusterNodesSim, SkipTheFenceIsCaughtWithinTheSeedSet) {
  planted_bug = true;
  auto r = run_seeds(sim::seeds(200), 1, false);
  planted_bug = false;
  ASSERT_FALSE(r.failed.empty()) << "no seed of the set caught writes that skip the fence";
  std::cout << "the planted bug was caught: " << r.first_report;
}

// Seeds that found bugs, kept whatever the ctest seed range becomes.
// Seeds 1-5: with the store losing answers, a speaker whose load timed out died as if its row
// were corrupt (CAF's request_timeout reads as errc::internal through code_of), so speakers were
// poisoned by a store outage instead of answering unavailable; found when the speakers moved
// behind their port (this branch), fixed in speaker_actor.cpp's load.
TEST(ClusterNodesSim, Regressions) {
  for (std::uint64_t seed : {1, 2, 3, 4, 5}) {
    auto r = run_seed(seed);
    EXPECT_TRUE(r.failures.empty()) << report(seed, r);
  }
}

// Seeds 983, 1344, 1359, 1546, 2725 (the 10,000-seed run, once the faults stop and every sample
// must get through; the ctest set 1-200 does not meet it): a node hands a speaker off and the
// store refuses the release of its ownership row; the row used to stay "until the lease lapses",
// but the node lives on and renews it, so every new owner's load was refused (stale_owner) for as
// long as the old node ran. They pass since membership ignores renewals answered for an epoch it
// gave up and speaker_shard.cpp's give_back asks a busy release again while the lease lives, but
// they pass without that retry too (checked in session 9): ABusyReleaseIsAskedAgainWhileTheLeaseLives
// is the retry's test.
TEST(ClusterNodesSim, ReleaseRefusedWhileTheLeaseLives) {
  for (std::uint64_t seed : {983, 1344, 1359, 1546, 2725}) {
    auto r = run_seed(seed);
    EXPECT_TRUE(r.failures.empty()) << report(seed, r);
  }
}

// Seeds 4551, 7116, 9361 (the 10,000-seed run of session 9): a drain's broadcast to one member was
// lost, and the leases do not say who drains, so that member kept routing speakers to the draining
// node, which handed each straight back: samples went back and forth until their deadlines, long
// after the faults stopped. They pass since membership.cpp tells the drain again at every tick.
TEST(ClusterNodesSim, ADrainTheBroadcastMissedIsToldAgain) {
  for (std::uint64_t seed : {4551, 7116, 9361}) {
    auto r = run_seed(seed);
    EXPECT_TRUE(r.failures.empty()) << report(seed, r);
  }
}

// The release retry itself, which the seeds above do not prove (they pass without it): nothing
// fails but each release of an ownership row, refused as busy the first time it is asked, and
// nodes only join, so the speakers they win leave owners that live on and renew their leases.
// Without give_back's retry (speaker_shard.cpp) a moved speaker's row stays with its old owner
// and the new owner's loads are refused for as long as that node runs.
TEST(ClusterNodesSim, ABusyReleaseIsAskedAgainWhileTheLeaseLives) {
  options o;
  o.lossy = false;
  o.joins_only = true;
  o.busy_first_release = true;
  std::uint64_t refused = 0;
  for (std::uint64_t seed = 1; seed <= 20; ++seed) {
    auto r = run_seed(seed, o);
    refused += r.releases_refused;
    EXPECT_TRUE(r.failures.empty()) << report(seed, r);
  }
  EXPECT_GT(refused, 0u) << "no release was refused: the test proves nothing";
}

TEST(ClusterNodesSim, TheSameSeedGivesTheSameTrace) {
  std::uint64_t acked = 0;
  EXPECT_EQ(sim::same_seed_same_trace([&](std::uint64_t seed) {
    auto r = run_seed(seed);
    acked += r.acked;
    return r.trace;
  }), "");
  EXPECT_GT(acked, 0u) << "no sample was acknowledged at all";
}

}  // namespace

int main(int argc, char** argv) {
  sbm::sim::parse_seed_flags(argc, argv);
  // Hand-offs log at info on every placement: thousands of lines per seed say nothing here.
  sbm::log::setup("warn", sbm::log::format::text);
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}

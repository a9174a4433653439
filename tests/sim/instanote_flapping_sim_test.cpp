// Scenario: InstaNote flapping. The real InstaNote jobs actor and InstaNote's real connection
// supervisor (pool, circuit breaker, probe, retries, queue bound) run under the harness over
// simulated connection workers (postgres_worker_sim.hpp) whose server the seed makes flap: down,
// slow (past the slow-call mark and past the request timeout), every Nth call failing, calls
// failing by chance, healthy between. Clients pull drafts all along. Invariants:
// - the breaker opens during every outage long enough to fill its window, and after the heal it
//   closes again (probe -> half-open -> trials) and pulls come from InstaNote again;
// - no pull waits past its deadline: every client is answered (jobs or a typed refusal) within
//   the jobs actor's InstaNote timeout;
// - no queue grows past its bound: the pool's queue (sampled all along) and each worker's mailbox;
// - after the heal, once the breaker closed, every pull gets through (the bound aside);
// - the same seed gives the same trace.
// The pull cache (Redis in production) is the in-memory cache (cache_memory.hpp) on a server of
// its own that flaps too, independently, the whole run long: down, slow past the cache timeout,
// refusing or losing answers. While InstaNote fails, a cached copy answers (stale); once InstaNote
// answers again, a cache outage must never fail a pull (the product's rule: Redis down means no
// cache, nothing more).
#include <gtest/gtest.h>

#include <caf/actor_cast.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/send.hpp>
#include <caf/stateful_actor.hpp>

#include <algorithm>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "actors/connections/connections.hpp"
#include "actors/instanote/jobs_actor.hpp"
#include "messages/errors.hpp"
#include "runtime/logging/logging.hpp"
#include "tests/sim/cache_memory.hpp"
#include "tests/sim/harness.hpp"
#include "tests/sim/memory_server.hpp"
#include "tests/sim/postgres_worker_sim.hpp"

namespace {

using namespace std::chrono_literals;
using namespace sbm;

constexpr int clients = 4;
constexpr auto chaos = 60s;         // the server flaps this long, then heals
constexpr auto settle = 40s;        // virtual time after the heal: more than open_for + 10 s
constexpr auto pull_timeout = 4s;   // the jobs actor's InstaNote timeout, and the pool's
constexpr auto grace = 3s;          // a client gives up waiting this much past it (a violation)
constexpr std::uint32_t max_queued = 2;  // below the clients' pulls at once: the bound must refuse some
constexpr auto open_for = 20s;
constexpr auto cache_timeout = 300ms;
// Fixed, so a seed's run is the same every time (the bytes of the key do not matter here).
constexpr const char* cache_key = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

struct ledger {
  std::uint64_t pulls = 0, answered_jobs = 0, refused = 0;
  std::uint64_t overloaded = 0;  // refused by the pool's queue bound, typed as errc::overloaded
  std::uint64_t stale = 0;       // answered from the cache while InstaNote failed
  // Pulls answered from InstaNote after the heal while the cache was down, slow or failing.
  std::uint64_t through_cache_outage = 0;
  bool cache_healthy = true;
  std::uint64_t ok_after_heal = 0, failed_after_heal = 0;
  bool healed = false;
  // After the heal: pulls refused other than as overloaded (the queue's bound), by virtual ms
  // sent (a cache outage must not fail one); and each client's pulls answered from InstaNote.
  std::vector<std::pair<std::int64_t, std::string>> refused_after_heal;
  std::map<int, std::vector<std::int64_t>> ok_sent_after_heal;
  std::vector<std::string> violations;
};

// --- a client: pulls, waits for the answer, pulls again ----------------------------------------

using tick_atom = caf::atom_constant<caf::atom("simtick")>;

caf::behavior client_fn(caf::event_based_actor* self, int n, instanote_actor jobs, std::shared_ptr<ledger> led,
                        std::uint64_t seed) {
  auto rng = std::make_shared<std::mt19937_64>(seed * 31 + static_cast<std::uint64_t>(n));
  auto later = [self, rng] {
    self->delayed_send(self, std::chrono::milliseconds{std::uniform_int_distribution<int>{100, 1000}(*rng)},
                       tick_atom::value);
  };
  self->send(self, tick_atom::value);
  return {[=](tick_atom) {
    job_pull_request r;
    r.speaker_id = "spk-" + std::to_string(n);
    r.from_ms = 1;
    r.to_ms = 1000;
    const auto sent = self->clock().now();
    ++led->pulls;
    auto waited = [self, sent, led](const char* what) {
      const auto took = self->clock().now() - sent;
      // InstaNote's timeout plus the cache's read and write before and after it (seed 1428).
      if (took > pull_timeout + 2 * cache_timeout + 1s)
        led->violations.push_back(std::string(what) + " after " +
                                  std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(took).count()) +
                                  " ms, past the deadline");
    };
    self->request(jobs, pull_timeout + grace, pull_atom::value, std::move(r))
      .then(
        [=](job_pull& p) {
          waited("a pull answered");
          // Nothing is fresh for long (cache_fresh_for is 0): the cache answers only for a failure.
          if (p.source == "cache" && p.stale) {
            ++led->stale;
            later();
            return;
          }
          if (p.source != "instanote") led->violations.push_back("a pull answered from " + p.source + ", not stale");
          if (led->healed && !led->cache_healthy) ++led->through_cache_outage;
          ++led->answered_jobs;
          if (led->healed) ++led->ok_after_heal;
          if (led->healed) led->ok_sent_after_heal[n].push_back(sim::ms_of(sent));
          later();
        },
        [=](caf::error& e) {
          waited("a pull refused");
          if (e == caf::sec::request_timeout) led->violations.push_back("a pull was never answered");
          else if (code_of(e) != errc::unavailable && code_of(e) != errc::overloaded &&
                   code_of(e) != errc::outcome_unknown && code_of(e) != errc::deadline_exceeded)
            led->violations.push_back("a pull refused with " + std::string(to_string(code_of(e))));
          ++led->refused;
          if (code_of(e) == errc::overloaded) ++led->overloaded;
          if (led->healed) ++led->failed_after_heal;
          if (led->healed && code_of(e) != errc::overloaded)
            led->refused_after_heal.emplace_back(sim::ms_of(sent), self->system().render(e));
          later();
        });
  }};
}

// --- the server flaps: the seed picks each phase and how long it lasts ---------------------------

struct phase {
  std::string kind;
  std::chrono::milliseconds from{0}, to{0};
};

// --- the monitor: samples the breaker and the queue all along ------------------------------------

struct observed {
  std::vector<std::pair<std::int64_t, std::string>> states;  // (virtual ms, breaker state) when it changed
  double entered_open = 0, entered_half_open = 0, entered_closed = 0;
  std::uint64_t max_depth = 0, bound = 0;
};

using sample_atom = caf::atom_constant<caf::atom("simsample")>;

double sample_of(const component_metrics& m, const std::string& name, const std::string& key, const std::string& value) {
  for (const auto& s : m.samples)
    if (s.name == name)
      for (const auto& l : s.labels)
        if (l.first == key && l.second == value) return s.value;
  return 0;
}

caf::behavior monitor_fn(caf::event_based_actor* self, postgres_actor pool, std::shared_ptr<observed> seen,
                         std::shared_ptr<ledger> led) {
  self->send(self, sample_atom::value);
  return {[=](sample_atom) {
    self->request(pool, 10s, metrics_atom::value).then([=](component_metrics& m) {
      for (const char* s : {"closed", "open", "half_open"})
        if (sample_of(m, "sbm_breaker_state", "state", s) == 1 &&
            (seen->states.empty() || seen->states.back().second != s))
          seen->states.emplace_back(sim::ms_of(self->clock().now()), s);
      seen->entered_open = sample_of(m, "sbm_breaker_transitions_total", "to", "open");
      seen->entered_half_open = sample_of(m, "sbm_breaker_transitions_total", "to", "half_open");
      seen->entered_closed = sample_of(m, "sbm_breaker_transitions_total", "to", "closed");
      for (const auto& q : m.queues) {
        seen->max_depth = std::max(seen->max_depth, q.depth);
        seen->bound = q.bound;
        if (q.depth > q.bound)
          led->violations.push_back(q.name + " held " + std::to_string(q.depth) + " past its bound " +
                                    std::to_string(q.bound));
      }
    });
    self->delayed_send(self, 500ms, sample_atom::value);
  }};
}

// --- one run ----------------------------------------------------------------------------------

struct run_result {
  std::vector<std::string> failures;
  std::vector<std::string> trace;
  bool opened = false, half_opened = false, full = false;
  std::uint64_t overloaded = 0, stale = 0, through_cache_outage = 0;
};

run_result run_seed(std::uint64_t seed) {
  run_result out;
  // Small jumps: a message waits in a mailbox at most a little, so the deadline checks judge the
  // actors, not the harness's own delays.
  sim::world w{seed, sim::pacing{0.02, 200ms}};
  auto& sys = w.sys();
  auto led = std::make_shared<ledger>();
  auto seen = std::make_shared<observed>();
  auto f = std::make_shared<sim::faults>();
  auto workers = std::make_shared<sim::worker_ledger>();

  auto settings = connections::instanote_defaults("postgresql://sim/instanote");
  settings.pool_size = 2;
  settings.max_queued = max_queued;
  settings.random_seed = seed;
  settings.request_timeout = pull_timeout;
  settings.breaker.open_for = open_for;
  settings.breaker.slow_call_duration = 2s;
  settings.spawn_worker = sim::simulated_postgres_workers(f, workers, settings.request_timeout, seed);
  auto pool = connections::spawn_postgres(sys, settings);

  auto cache_server = sim::spawn_memory_server(sys, seed * 131 + 7);
  instanote::jobs_settings js;
  js.instanote = pool;
  js.instanote_timeout = pull_timeout;
  js.make_cache = sim::memory_cache(cache_server.handle, std::make_shared<sim::cache_tables>());
  js.cache_key = cache_key;
  js.cache_timeout = cache_timeout;
  js.cache_fresh_for = 0s;  // every pull asks InstaNote first, so the breaker sees them all
  auto jobs = instanote::spawn_jobs(sys, js);

  std::vector<caf::actor> owned{caf::actor_cast<caf::actor>(pool), caf::actor_cast<caf::actor>(jobs),
                                cache_server.handle};
  owned.push_back(sys.spawn(monitor_fn, pool, seen, led));
  for (int n = 1; n <= clients; ++n) owned.push_back(sys.spawn(client_fn, n, jobs, led, seed));

  // The phases, drawn from the seed before anything runs.
  std::vector<phase> phases;
  auto& rng = w.rng();
  for (std::chrono::milliseconds at{0}; at < chaos;) {
    static const char* kinds[] = {"healthy", "down", "slow", "every_nth", "flaky"};
    phase p;
    p.kind = kinds[std::uniform_int_distribution<int>{0, 4}(rng)];
    p.from = at;
    p.to = std::min<std::chrono::milliseconds>(chaos, at + std::chrono::milliseconds{
                                                             std::uniform_int_distribution<int>{2000, 20000}(rng)});
    phases.push_back(p);
    at = p.to;
  }
  // The cache's phases, from a generator of their own (InstaNote's phases stay what the seed
  // made them before the cache came), over the heal too.
  std::vector<phase> cache_phases;
  std::mt19937_64 cache_rng{seed * 7919 + 13};
  for (std::chrono::milliseconds at{0}; at < chaos + settle;) {
    static const char* kinds[] = {"healthy", "down", "slow", "lossy", "flaky"};
    phase p;
    p.kind = kinds[std::uniform_int_distribution<int>{0, 4}(cache_rng)];
    p.from = at;
    p.to = std::min<std::chrono::milliseconds>(
      chaos + settle, at + std::chrono::milliseconds{std::uniform_int_distribution<int>{1000, 15000}(cache_rng)});
    cache_phases.push_back(p);
    at = p.to;
  }
  const auto start = w.now();
  std::size_t next_cache = 0;
  // Runs until `until` after the start, switching the cache's faults at its phases' edges.
  auto run_to = [&](std::chrono::milliseconds until) {
    while (next_cache < cache_phases.size() && cache_phases[next_cache].from < until) {
      const auto& p = cache_phases[next_cache++];
      if (w.now() < start + p.from) w.run_for(std::chrono::duration_cast<std::chrono::milliseconds>(start + p.from - w.now()));
      auto& cf = *cache_server.faults_now;
      cf = sim::faults{};
      if (p.kind == "down") cf.down = true;
      if (p.kind == "slow") {
        cf.latency = cache_timeout + 200ms;
        cf.jitter = 500ms;
      }
      if (p.kind == "lossy") cf.lose_chance = 0.5;
      if (p.kind == "flaky") cf.fail_chance = 0.5;
      led->cache_healthy = p.kind == "healthy";
    }
    if (w.now() < start + until) w.run_for(std::chrono::duration_cast<std::chrono::milliseconds>(start + until - w.now()));
  };
  for (const auto& p : phases) {
    *f = sim::faults{};
    if (p.kind == "down") f->down = true;
    if (p.kind == "slow") {
      f->latency = std::chrono::milliseconds{std::uniform_int_distribution<int>{2500, 6000}(rng)};
      f->jitter = 500ms;
    }
    if (p.kind == "every_nth") f->fail_every = std::uniform_int_distribution<std::uint32_t>{2, 4}(rng);
    if (p.kind == "flaky") f->fail_chance = 0.5;
    run_to(p.to);
    // An outage long enough for the window (minimum_calls failures at the clients' pace, retries
    // included) must find the breaker open at some instant: opened during it, or open already
    // when it began (opened by the phase before, its open_for may even end inside this one:
    // seeds 281, 371, 610, 888 and 1006 of the 10,000-seed run).
    if (p.kind == "down" && p.to - p.from >= 10s) {
      const auto from = sim::ms_of(w.now()) - (p.to - p.from).count();
      std::string at_start = "closed";
      bool open = false;
      for (const auto& [at, state] : seen->states) {
        if (at <= from) at_start = state;
        else open = open || state == "open";
      }
      open = open || at_start == "open";
      if (!open) {
        std::string seen_then;
        for (const auto& [at, state] : seen->states)
          if (at >= from - 25000) seen_then += " " + state + "@" + std::to_string(at);
        led->violations.push_back("the breaker was never open through a " + std::to_string((p.to - p.from).count()) +
                                  " ms outage from " + std::to_string(from) + " ms (states seen:" + seen_then + ")");
      }
    }
  }
  *f = sim::faults{};
  led->healed = true;
  const auto healed_at = sim::ms_of(w.now());
  run_to(chaos + settle);

  auto fail = [&](std::string what) { out.failures.push_back(std::move(what)); };
  for (const auto& v : led->violations) fail(v);
  if (seen->states.empty() || seen->states.back().second != "closed")
    fail("the breaker is " + (seen->states.empty() ? std::string("unseen") : seen->states.back().second) + " " +
         std::to_string(settle.count()) + " s after the heal");
  else if (seen->states.back().first > healed_at + std::chrono::milliseconds{open_for + 10s}.count())
    fail("the breaker closed only " + std::to_string(seen->states.back().first - healed_at) + " ms after the heal");
  if (led->ok_after_heal == 0) fail("no pull came from InstaNote after the heal");
  // Liveness: once the breaker closed for the last time after the heal, every client's pulls get
  // through again (the queue's bound may still refuse some: it is below the clients' pulls at
  // once), and none is refused for any other reason. The last time: slow calls sent before the
  // heal may end after a first close and open it again, as they should (seed 4843).
  std::int64_t closed_at = -1;
  for (const auto& [at, state] : seen->states)
    if (at >= healed_at && state == "closed") closed_at = at;
  if (closed_at >= 0)
    for (int n = 1; n <= clients; ++n) {
      const auto& ok = led->ok_sent_after_heal[n];
      if (std::none_of(ok.begin(), ok.end(), [&](std::int64_t sent) { return sent > closed_at; }))
        fail("client " + std::to_string(n) + " got no pull through after the breaker closed again at " +
             std::to_string(closed_at) + " ms");
    }
  if (closed_at >= 0)
    for (const auto& [sent, why] : led->refused_after_heal)
      if (sent > closed_at)
        fail("a pull sent at " + std::to_string(sent) + " ms, after the breaker closed again at " +
             std::to_string(closed_at) + " ms, was refused: " + why);
  // The pool forgets a request only worker_grace past its deadline, by which the worker has
  // answered or dropped it; one more is allowed for a worker the seed left unscheduled that long
  // (seed 171: three held at once with a bound of two).
  if (workers->max_outstanding > max_queued + 1)
    fail("the workers held " + std::to_string(workers->max_outstanding) + " requests at once, past the bound " +
         std::to_string(max_queued));
  if (workers->max_waiting > max_queued + 1)  // the queue's bound, plus the probe that bypasses it
    fail("a worker held " + std::to_string(workers->max_waiting) + " requests, past the bound " +
         std::to_string(max_queued));
  if (seen->bound != max_queued) fail("the pool's queue was never sampled");
  out.opened = seen->entered_open > 0;
  out.half_opened = seen->entered_half_open > 0;
  out.full = workers->max_outstanding == max_queued;
  out.overloaded = led->overloaded;
  out.stale = led->stale;
  out.through_cache_outage = led->through_cache_outage;

  for (auto& a : owned) caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
  out.trace = w.trace();
  return out;
}

std::string report(std::uint64_t seed, const run_result& r) {
  return sim::failure_report("sim_instanote_flapping", seed, r.failures, r.trace);
}

TEST(InstanoteFlappingSim, BreakersOpenAndCloseAndNoPullOutlivesItsDeadline) {
  const auto range = sim::seeds(200);
  std::size_t failed = 0, opened = 0, half_opened = 0, full = 0, runs = 0, overloaded = 0, stale = 0,
              through_cache_outage = 0;
  for (auto seed = range.first; seed < range.first + range.count; ++seed) {
    auto r = run_seed(seed);
    ++runs;
    if (sim::trace_wanted()) std::cout << "seed " << seed << " trace:\n" << sim::tail(r.trace, r.trace.size());
    opened += r.opened;
    half_opened += r.half_opened;
    full += r.full;
    overloaded += r.overloaded;
    stale += r.stale;
    through_cache_outage += r.through_cache_outage;
    if (!r.failures.empty()) {
      ++failed;
      ADD_FAILURE() << report(seed, r);
      if (failed >= 5) break;
    }
  }
  std::cout << runs << " seeds: breaker opened in " << opened << ", half-open in " << half_opened
            << ", the queue full in " << full << ", " << overloaded << " pull(s) refused as overloaded, " << stale
            << " answered stale from the cache, " << through_cache_outage
            << " answered by InstaNote after the heal while the cache failed\n";
  // The faults must reach what they test: over a seed set of any size, the breaker opened and
  // recovered through half-open, and the queue filled to its bound. Counted over the seeds run
  // (five failures end the set early).
  if (runs >= 20) {
    EXPECT_GT(opened, runs / 2);
    EXPECT_GT(half_opened, runs / 2);
    EXPECT_GT(full, 0u);
    // The bound refuses as every bounded queue of SBM does (503 overloaded with Retry-After at the
    // gateway), not as an InstaNote outage.
    EXPECT_GT(overloaded, 0u) << "no pull was refused as overloaded by the pool's queue bound";
    // The cache answered for InstaNote's outages, and its own outages met pulls InstaNote answered.
    EXPECT_GT(stale, 0u);
    EXPECT_GT(through_cache_outage, 0u);
  }
}

// Seeds that found bugs, kept whatever the ctest seed range becomes.
// Seeds 281, 371, 610, 888, 1006 (the 10,000-seed run): the breaker opened in the phase before a
// long outage and its open_for ended inside it (half-open at the outage's last instants); the
// check wanted it opened within the outage or open at its end, and failed a breaker that did
// right. The check now also counts a breaker already open when the outage began.
// Seeds 1428, 4843, 7202, 7808 (the 10,000-seed run once the cache came, session 9), its own
// checks again: a pull may take InstaNote's timeout plus the cache's read and write, and slow calls
// sent before the heal may open the breaker again after its first close.
TEST(InstanoteFlappingSim, Regressions) {
  for (std::uint64_t seed : {281, 371, 610, 888, 1006, 1428, 4843, 7202, 7808}) {
    auto r = run_seed(seed);
    EXPECT_TRUE(r.failures.empty()) << report(seed, r);
  }
}

TEST(InstanoteFlappingSim, TheSameSeedGivesTheSameTrace) {
  EXPECT_EQ(sim::same_seed_same_trace([](std::uint64_t seed) { return run_seed(seed).trace; }), "");
}

}  // namespace

int main(int argc, char** argv) {
  sbm::sim::parse_seed_flags(argc, argv);
  // The breaker logs every transition: thousands of lines per seed, unless a trace is wanted.
  sbm::log::setup(sbm::sim::trace_wanted() ? "info" : "error", sbm::log::format::text);
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}

#pragma once
// The simulation harness: one CAF actor system under CAF's deterministic test coordinator
// (scheduler.policy = testing, virtual time), in which the seed, not the OS, decides which ready
// actor runs next and when virtual time jumps ahead while messages wait (delaying them past
// request timeouts and timers). The same seed gives the same run: trace() names every step, and
// a failing seed re-runs alone with `--seed N` (or SBM_SIM_SEED=N).
//
// STACK-NOTES.md: caf/test/dsl.hpp cannot live in a GoogleTest binary, so this drives
// caf::scheduler::test_coordinator itself. run_once() always runs the first ready job; the world
// moves the job the seed picks to the front first.
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/error.hpp>
#include <caf/scheduler/test_coordinator.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "messages/connections.hpp"

namespace sbm::sim {

struct world_config : caf::actor_system_config {
  world_config();
};

struct pacing {
  // Per step, the chance that virtual time jumps ahead before the picked job runs, and how far at
  // most: what waits in mailboxes meanwhile is late by that much.
  double jump_chance = 0.02;
  std::chrono::milliseconds max_jump{2000};
};

class world {
 public:
  explicit world(std::uint64_t seed, pacing p = {});
  ~world();
  world(const world&) = delete;
  world& operator=(const world&) = delete;

  caf::actor_system& sys() { return sys_; }
  std::mt19937_64& rng() { return rng_; }
  std::uint64_t seed() const { return seed_; }
  caf::actor_clock::time_point now() const;

  // Changes the pacing from now on: a scenario's calm phase (faults stopped) sets short jumps, so
  // nothing waits in a mailbox anywhere near a timeout any more.
  void pace(pacing p) { pace_ = p; }

  // Runs one ready job, picked by the seed; false when none is ready.
  bool step();
  // Runs until `done` holds: ready jobs first, then the next timer in virtual time. False when
  // `limit` of virtual time passed first (or nothing at all is left to run).
  bool run_until(const std::function<bool()>& done, std::chrono::milliseconds limit);
  // Runs for `span` of virtual time, timers included.
  void run_for(std::chrono::milliseconds span);

  // Freezes what `held` matches (a simulated node's actors, say) for `span` of virtual time: its
  // jobs are not picked, messages and timers pile up in its mailboxes, and it resumes where it
  // stopped, as a process under SIGSTOP or a long GC pause does.
  void freeze(std::function<bool(caf::resumable*)> held, std::chrono::milliseconds span);

  // One line per step: virtual milliseconds, the actor that ran and its id.
  const std::vector<std::string>& trace() const { return trace_; }
  std::uint64_t steps() const { return trace_.size(); }

 private:
  void note(const std::string& what);
  bool frozen(caf::resumable* job) const;
  // The earliest end of a freeze still in force, if any.
  std::optional<caf::actor_clock::time_point> next_thaw() const;

  struct frost {
    std::function<bool(caf::resumable*)> held;
    caf::actor_clock::time_point until;
  };
  std::vector<frost> frozen_;

  std::uint64_t seed_;
  pacing pace_;
  std::mt19937_64 rng_;
  world_config cfg_;
  caf::actor_system sys_;
  caf::scheduler::test_coordinator& sched_;
  std::vector<std::string> trace_;
};

// The seeds a scenario runs: `--seed N` (one seed) or `--seeds COUNT` [`--first-seed F`] on the
// command line (parse_seed_flags strips them before GoogleTest sees the rest), SBM_SIM_SEED /
// SBM_SIM_SEEDS in the environment, else `default_count` seeds from 1.
struct seed_range {
  std::uint64_t first = 1;
  std::uint64_t count = 0;
};
void parse_seed_flags(int& argc, char** argv);
seed_range seeds(std::uint64_t default_count);
// `--trace` (or SBM_SIM_TRACE=1): scenarios print every run's whole trace.
bool trace_wanted();

// A seed set's outcome: how many seeds ran, those that failed, and the first one's report.
struct seed_set {
  std::uint64_t runs = 0;
  std::vector<std::uint64_t> failed;
  std::string first_report;
};
// One seed's run as the seed-set loop needs it: its failures and its trace.
struct seed_run {
  std::vector<std::string> failures;
  std::vector<std::string> trace;
};
// Runs `run` for each seed of `range` (printing each trace when trace_wanted()), hands each
// failing seed's report (failure_report) to `failed`, and stops after `stop_after` failures.
seed_set run_seed_set(seed_range range, std::size_t stop_after, const std::string& scenario,
                      const std::function<seed_run(std::uint64_t)>& run,
                      const std::function<void(const std::string&)>& failed);

// Every scenario's determinism check: `run` (a seed's whole trace) twice with the first seed of
// seeds(1) gives one trace of more than `min_steps` steps, and the next seed another. Empty when
// it holds, else what went wrong (a test EXPECTs it empty).
std::string same_seed_same_trace(const std::function<std::vector<std::string>(std::uint64_t)>& run,
                                 std::size_t min_steps = 100);

// A PostgreSQL actor that answers every statement with nothing, for a family that insists on a
// database handle while its store (in memory) never uses it.
postgres_actor spawn_quiet_db(caf::actor_system& sys);

// What a client of the API retries under the same Idempotency-Key: the outcome is unknown, or the
// refusal is for now (unavailable, overloaded, in progress, past its deadline, timed out).
bool retryable(const caf::error& e);

// The trace's last `lines` steps, for a failure message.
std::string tail(const std::vector<std::string>& trace, std::size_t lines);

// What a failing seed prints: its failures, how to re-run it alone, its trace's last steps.
std::string failure_report(const std::string& scenario, std::uint64_t seed, const std::vector<std::string>& failures,
                           const std::vector<std::string>& trace);

}  // namespace sbm::sim

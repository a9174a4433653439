#include "tests/sim/harness.hpp"

#include <caf/atom.hpp>
#include <caf/resumable.hpp>
#include <caf/scheduled_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <sstream>

#include "messages/announce.hpp"
#include "messages/errors.hpp"
#include "tests/sim/memory_server.hpp"

namespace sbm::sim {

namespace {

std::optional<std::uint64_t> flag_seed, flag_count, flag_first;
bool flag_trace = false;

std::optional<std::uint64_t> env_number(const char* name) {
  const char* v = std::getenv(name);
  if (!v || !*v) return std::nullopt;
  return std::strtoull(v, nullptr, 10);
}

}  // namespace

world_config::world_config() {
  sbm::announce_types(*this);
  set("scheduler.policy", caf::atom("testing"));
}

world::world(std::uint64_t seed, pacing p)
  : seed_{seed},
    pace_{p},
    rng_{seed},
    sys_{cfg_},
    sched_{dynamic_cast<caf::scheduler::test_coordinator&>(sys_.scheduler())} {}

world::~world() {
  // Whatever the scenario left runnable finishes before the system goes (exits included).
  for (std::size_t i = 0; i < 100000 && sched_.has_job(); ++i) sched_.run_once();
}

caf::actor_clock::time_point world::now() const { return sched_.clock().now(); }

void world::note(const std::string& what) {
  trace_.push_back(std::to_string(ms_of(now())) + " " + what);
}

void world::freeze(std::function<bool(caf::resumable*)> held, std::chrono::milliseconds span) {
  frozen_.push_back({std::move(held), now() + span});
  note("freeze " + std::to_string(span.count()) + "ms");
}

bool world::frozen(caf::resumable* job) const {
  for (const auto& f : frozen_)
    if (now() < f.until && f.held(job)) return true;
  return false;
}

std::optional<caf::actor_clock::time_point> world::next_thaw() const {
  std::optional<caf::actor_clock::time_point> out;
  for (const auto& f : frozen_)
    if (now() < f.until && (!out || f.until < *out)) out = f.until;
  return out;
}

bool world::step() {
  auto& jobs = sched_.jobs;
  if (jobs.empty()) return false;
  if (pace_.jump_chance > 0 && std::uniform_real_distribution<double>{0, 1}(rng_) < pace_.jump_chance) {
    const auto jump = std::uniform_int_distribution<std::int64_t>{1, pace_.max_jump.count()}(rng_);
    sched_.advance_time(std::chrono::milliseconds{jump});
    note("jump " + std::to_string(jump) + "ms");
  }
  frozen_.erase(std::remove_if(frozen_.begin(), frozen_.end(), [this](const frost& f) { return now() >= f.until; }),
                frozen_.end());
  // Only jobs of what is not frozen may run; the seed picks among them (all of them, drawn as
  // before freezing existed, when nothing is frozen).
  std::vector<std::size_t> ready;
  for (std::size_t i = 0; i < jobs.size(); ++i)
    if (frozen_.empty() || !frozen(jobs[i])) ready.push_back(i);
  if (ready.empty()) return false;
  const auto pick = ready[std::uniform_int_distribution<std::size_t>{0, ready.size() - 1}(rng_)];
  auto* job = jobs[pick];
  jobs.erase(jobs.begin() + static_cast<std::ptrdiff_t>(pick));
  jobs.push_front(job);
  std::string who = "?";
  if (auto* a = dynamic_cast<caf::scheduled_actor*>(job)) who = std::string{a->name()} + "#" + std::to_string(a->id());
  sched_.run_once();
  note(who);
  return true;
}

bool world::run_until(const std::function<bool()>& done, std::chrono::milliseconds limit) {
  const auto until = now() + limit;
  while (!done()) {
    if (step()) continue;
    if (now() >= until) return done();
    if (sched_.trigger_timeout()) continue;
    // Nothing runnable and no timer: only a frozen node's work is waiting, so time passes to its thaw.
    auto thaw = next_thaw();
    if (!thaw) return done();
    sched_.advance_time(*thaw - now());
  }
  return true;
}

void world::run_for(std::chrono::milliseconds span) { run_until([] { return false; }, span); }

void parse_seed_flags(int& argc, char** argv) {
  int out = 1;
  for (int i = 1; i < argc; ++i) {
    auto take = [&](const char* name, std::optional<std::uint64_t>& into) {
      const auto n = std::strlen(name);
      if (std::strncmp(argv[i], name, n) != 0) return false;
      if (argv[i][n] == '=') {
        into = std::strtoull(argv[i] + n + 1, nullptr, 10);
        return true;
      }
      if (argv[i][n] == '\0' && i + 1 < argc) {
        into = std::strtoull(argv[++i], nullptr, 10);
        return true;
      }
      return false;
    };
    if (std::strcmp(argv[i], "--trace") == 0) {
      flag_trace = true;
      continue;
    }
    if (take("--seed", flag_seed) || take("--seeds", flag_count) || take("--first-seed", flag_first)) continue;
    argv[out++] = argv[i];
  }
  argc = out;
  argv[argc] = nullptr;
}

seed_range seeds(std::uint64_t default_count) {
  if (auto s = flag_seed ? flag_seed : env_number("SBM_SIM_SEED")) return {*s, 1};
  seed_range r{1, default_count};
  if (auto c = flag_count ? flag_count : env_number("SBM_SIM_SEEDS")) r.count = *c;
  if (auto f = flag_first ? flag_first : env_number("SBM_SIM_FIRST_SEED")) r.first = *f;
  return r;
}

bool trace_wanted() { return flag_trace || env_number("SBM_SIM_TRACE").value_or(0) != 0; }

seed_set run_seed_set(seed_range range, std::size_t stop_after, const std::string& scenario,
                      const std::function<seed_run(std::uint64_t)>& run,
                      const std::function<void(const std::string&)>& failed) {
  seed_set out;
  for (auto seed = range.first; seed < range.first + range.count; ++seed) {
    auto r = run(seed);
    ++out.runs;
    if (trace_wanted()) std::cout << "seed " << seed << " trace:\n" << tail(r.trace, r.trace.size());
    if (r.failures.empty()) continue;
    out.failed.push_back(seed);
    const auto report = failure_report(scenario, seed, r.failures, r.trace);
    if (out.first_report.empty()) out.first_report = report;
    failed(report);
    if (out.failed.size() >= stop_after) break;
  }
  return out;
}

std::string same_seed_same_trace(const std::function<std::vector<std::string>(std::uint64_t)>& run,
                                 std::size_t min_steps) {
  const auto seed = seeds(1).first;
  const auto a = run(seed);
  if (a.size() <= min_steps)
    return "seed " + std::to_string(seed) + " ran only " + std::to_string(a.size()) + " steps";
  const auto b = run(seed);
  if (a != b) {
    std::size_t i = 0;
    while (i < a.size() && i < b.size() && a[i] == b[i]) ++i;
    return "seed " + std::to_string(seed) + " gave two traces, first apart at step " + std::to_string(i) + ": '" +
           (i < a.size() ? a[i] : "(end)") + "' then '" + (i < b.size() ? b[i] : "(end)") + "'";
  }
  if (run(seed + 1) == a) return "seeds " + std::to_string(seed) + " and " + std::to_string(seed + 1) + " gave one trace";
  return {};
}

postgres_actor spawn_quiet_db(caf::actor_system& sys) {
  return sys.spawn([](postgres_actor::pointer) -> postgres_actor::behavior_type {
    return {
      [](query_atom, db_statement&) { return db_rows{}; },
      [](transact_atom, db_transaction&) { return db_results{}; },
      [](status_atom) { return dependency_status{}; },
      [](metrics_atom) { return component_metrics{}; },
    };
  });
}

bool retryable(const caf::error& e) {
  const auto c = code_of(e);
  return outcome_unknown(e) || c == errc::unavailable || c == errc::overloaded || c == errc::in_progress ||
         c == errc::deadline_exceeded || e == caf::sec::request_timeout;
}

std::string tail(const std::vector<std::string>& trace, std::size_t lines) {
  std::ostringstream out;
  const auto from = trace.size() > lines ? trace.size() - lines : 0;
  for (auto i = from; i < trace.size(); ++i) out << "  " << trace[i] << "\n";
  return out.str();
}

std::string failure_report(const std::string& scenario, std::uint64_t seed, const std::vector<std::string>& failures,
                           const std::vector<std::string>& trace) {
  std::ostringstream msg;
  msg << "seed " << seed << " failed (re-run alone: " << scenario << " --seed " << seed << "):\n";
  for (const auto& f : failures) msg << "  " << f << "\n";
  msg << "last steps of its trace (" << trace.size() << " steps):\n" << tail(trace, 15);
  return msg.str();
}

}  // namespace sbm::sim

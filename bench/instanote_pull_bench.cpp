// Issue 16's speed question: what does a pull of a speaker's draft jobs cost through SBM (the jobs
// actor, InstaNote's breaker and connection pool, the encrypted Redis cache) against the same
// SELECT sent by raw libpqxx, in one run on the same database?
//  - raw: one libpqxx connection, BEGIN + the prepared SELECT + COMMIT, as the workers do;
//  - uncached: the jobs actor without Redis, so every pull is an InstaNote round trip through the
//    breaker and the pool (the path a cache miss takes, minus the cache write);
//  - uncached+cache write: the same with Redis, every copy written (fresh-for 0 s, Fernet);
//  - cached: a warm copy younger than fresh-for answers without asking InstaNote (Redis GET and
//    Fernet decryption).
// One request at a time from one caller; p50/p99 are per-iteration latencies. Needs servers:
// SBMTEST_SERVERS_DIR, as bench/run arranges.
#include <benchmark/benchmark.h>
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scoped_actor.hpp>
#include <pqxx/pqxx>

#include <algorithm>
#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "actors/connections/connections.hpp"
#include "actors/instanote/jobs_actor.hpp"
#include "messages/announce.hpp"
#include "runtime/crypto/fernet.hpp"
#include "tests/support/servers.hpp"

namespace {

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

constexpr int speakers = 50;
constexpr int jobs_per_speaker = 200;
constexpr std::int64_t day0_ms = 1793491200000;  // 2026-11-01T00:00:00Z
constexpr std::int64_t hour_ms = 3600 * 1000;

// The adapter's statement, word for word (actors/instanote/store_postgres.cpp, pull_sql).
const char* const pull_sql =
  "SELECT job_id, speaker_id, client_id, draft_text, "
  "(extract(epoch FROM created_at) * 1000)::bigint, "
  "coalesce(audio_metadata->>'quality', 'unknown'), "
  "CASE WHEN jsonb_typeof(audio_metadata->'duration') = 'number' "
  "THEN audio_metadata->>'duration' END, "
  "coalesce(source_system, 'instanote'), array_to_json(coalesce(error_types, '{}'))::text "
  "FROM public.draft_jobs "
  "WHERE speaker_id = $1 "
  "AND created_at >= to_timestamp($2::bigint / 1000.0) "
  "AND created_at < to_timestamp($3::bigint / 1000.0) "
  "AND ($4::jsonb IS NULL OR error_types && ARRAY(SELECT jsonb_array_elements_text($4::jsonb))) "
  "ORDER BY created_at DESC, job_id DESC LIMIT $5::integer";

struct bench_config : caf::actor_system_config {
  bench_config() { sbm::announce_types(*this); }
};

// The README's draft_jobs with drafts of a realistic size (~1.6 kB of clinical-looking text).
void seed(const std::string& url) {
  pqxx::connection c{url};
  pqxx::work tx{c};
  tx.exec("CREATE TABLE public.draft_jobs (job_id text PRIMARY KEY, speaker_id text NOT NULL, "
          "client_id text NOT NULL, draft_text text NOT NULL, audio_metadata jsonb NOT NULL DEFAULT '{}', "
          "error_types text[] NOT NULL DEFAULT '{}', source_system text NOT NULL DEFAULT 'instanote', "
          "created_at timestamptz NOT NULL)");
  tx.exec("CREATE INDEX draft_jobs_by_speaker ON public.draft_jobs (speaker_id, created_at DESC, job_id DESC)");
  tx.exec_params(
    "INSERT INTO public.draft_jobs SELECT 'job-' || s || '-' || j, 'spk-' || s, 'client-' || (s % 5), "
    "repeat('HISTORY: hypertension, on metoprolol 25 mg twice daily. ASSESSMENT: stable. ', 20), "
    "jsonb_build_object('quality', 'good', 'duration', 60 + j % 300, 'sample_rate_hz', 16000), "
    "CASE WHEN j % 3 = 0 THEN '{drug_name}'::text[] ELSE '{}'::text[] END, 'instanote', "
    "to_timestamp(($1::bigint + j * $2::bigint) / 1000.0) "
    "FROM generate_series(0, $3::integer - 1) s, generate_series(0, $4::integer - 1) j",
    day0_ms, hour_ms, speakers, jobs_per_speaker);
  tx.exec("ANALYZE public.draft_jobs");
  tx.commit();
}

sbm::job_pull_request pull_of(int i) {
  sbm::job_pull_request r;
  r.speaker_id = "spk-" + std::to_string(i % speakers);
  r.from_ms = day0_ms;
  r.to_ms = day0_ms + jobs_per_speaker * hour_ms;
  r.max_jobs = 10;
  return r;
}

struct world {
  std::string url;
  bench_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  sbm::postgres_actor instanote;
  sbm::redis_actor redis;
  std::string key = sbm::crypto::fernet::generate_key();

  world() {
    auto& servers = sbm::test::servers::shared();
    url = servers.fresh_database();
    seed(url);
    sys = std::make_unique<caf::actor_system>(cfg);
    auto in = sbm::connections::instanote_defaults(url);
    in.probe_interval = 200ms;
    instanote = sbm::connections::spawn_postgres(*sys, std::move(in));
    sbm::connections::redis_settings rs;
    rs.host = servers.redis_host();
    rs.port = static_cast<std::uint16_t>(servers.redis_port());
    redis = sbm::connections::spawn_redis(*sys, std::move(rs));
  }

  sbm::instanote_actor jobs(bool with_redis, std::chrono::seconds fresh_for) {
    sbm::instanote::jobs_settings s;
    s.instanote = instanote;
    if (with_redis) {
      s.redis = redis;
      s.cache_key = key;
    }
    s.cache_fresh_for = fresh_for;
    return sbm::instanote::spawn_jobs(*sys, std::move(s));
  }
};

world& the_world() {
  static world w;
  return w;
}

void report(benchmark::State& state, std::vector<double>& us) {
  if (us.empty()) return;
  std::sort(us.begin(), us.end());
  state.counters["p50_us"] = us[us.size() / 2];
  state.counters["p99_us"] = us[std::min(us.size() - 1, us.size() * 99 / 100)];
  state.counters["pulls_per_s"] = benchmark::Counter(static_cast<double>(us.size()), benchmark::Counter::kIsRate);
}

void BM_RawLibpqxx(benchmark::State& state) {
  pqxx::connection c{the_world().url};
  c.prepare("pull", pull_sql);
  std::vector<double> us;
  int i = 0;
  std::size_t bytes = 0;
  for (auto _ : state) {
    auto r = pull_of(i++);
    const auto t0 = clock_type::now();
    pqxx::work tx{c};
    auto rows = tx.exec_prepared("pull", r.speaker_id, r.from_ms, r.to_ms, nullptr, r.max_jobs);
    tx.commit();
    for (const auto& row : rows)
      for (const auto& field : row) bytes += field.size();
    us.push_back(std::chrono::duration<double, std::micro>(clock_type::now() - t0).count());
  }
  benchmark::DoNotOptimize(bytes);
  report(state, us);
}

void pull_loop(benchmark::State& state, const sbm::instanote_actor& jobs, const char* want_source) {
  caf::scoped_actor self{*the_world().sys};
  auto ask = [&](const sbm::job_pull_request& r) {
    sbm::job_pull out;
    bool ok = false;
    self->request(jobs, 30s, sbm::pull_atom::value, r)
      .receive([&](sbm::job_pull& p) { out = std::move(p); ok = true; },
               [&](caf::error& e) { state.SkipWithError(caf::to_string(e).c_str()); });
    return ok ? out : sbm::job_pull{};
  };
  // Warm up: InstaNote's pool connects after its first probe, and the cached case needs its copies.
  for (int i = 0; i < speakers; ++i) {
    for (int tries = 0; tries < 100; ++tries) {
      caf::error err;
      bool ok = false;
      self->request(jobs, 30s, sbm::pull_atom::value, pull_of(i))
        .receive([&](sbm::job_pull&) { ok = true; }, [&](caf::error& e) { err = e; });
      if (ok) break;
      std::this_thread::sleep_for(50ms);  // a bench, not a test: only the warm-up waits
    }
  }
  std::vector<double> us;
  int i = 0;
  for (auto _ : state) {
    const auto t0 = clock_type::now();
    auto p = ask(pull_of(i++));
    us.push_back(std::chrono::duration<double, std::micro>(clock_type::now() - t0).count());
    if (p.source != want_source || p.jobs.size() != 10) {
      state.SkipWithError(("unexpected answer: source " + p.source + ", " + std::to_string(p.jobs.size()) +
                           " jobs")
                            .c_str());
      break;
    }
  }
  self->send_exit(jobs, caf::exit_reason::user_shutdown);
  report(state, us);
}

void BM_SbmUncached(benchmark::State& state) {
  pull_loop(state, the_world().jobs(false, 0s), "instanote");
}

void BM_SbmUncachedWithCacheWrite(benchmark::State& state) {
  pull_loop(state, the_world().jobs(true, 0s), "instanote");
}

void BM_SbmCached(benchmark::State& state) {
  pull_loop(state, the_world().jobs(true, 3600s), "cache");
}

BENCHMARK(BM_RawLibpqxx)->Unit(benchmark::kMicrosecond)->MinTime(3.0)->UseRealTime();
BENCHMARK(BM_SbmUncached)->Unit(benchmark::kMicrosecond)->MinTime(3.0)->UseRealTime();
BENCHMARK(BM_SbmUncachedWithCacheWrite)->Unit(benchmark::kMicrosecond)->MinTime(3.0)->UseRealTime();
BENCHMARK(BM_SbmCached)->Unit(benchmark::kMicrosecond)->MinTime(3.0)->UseRealTime();

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  // The actor system goes down here, not among the static destructors after main (where the
  // loggers its actors write to at shutdown may already be gone).
  auto& w = the_world();
  caf::anon_send_exit(w.instanote, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(w.redis, caf::exit_reason::user_shutdown);
  w.instanote = nullptr;
  w.redis = nullptr;
  w.sys->await_all_actors_done();
  w.sys.reset();
  benchmark::Shutdown();
  return 0;
}

// Issue 3's scale question: with 100,000 registered speakers and 10,000 made active, what does an
// active speaker actor cost in memory, and how long does an activation take (p50/p99)?
// Baseline, same run, same database: the same two SELECTs an activation issues, sent by raw libpqxx
// on one connection. Both sides run one request at a time, so the ratio is per-request overhead
// (actor hops, the connection supervisor, CAF serialisation-free local messaging).
//
// Needs servers: SBMTEST_SERVERS_DIR (scripts/servers start DIR), as bench/run arranges.
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scoped_actor.hpp>
#include <pqxx/pqxx>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "actors/connections/connections.hpp"
#include "actors/events/events.hpp"
#include "actors/speakers/speakers.hpp"
#include "messages/announce.hpp"
#include "runtime/migrations/all_migrations.hpp"
#include "tests/support/servers.hpp"

namespace {

using clock_type = std::chrono::steady_clock;
constexpr int registered = 100000;
constexpr int active = 10000;
constexpr int window = 50;

struct bench_config : caf::actor_system_config {
  bench_config() {
    sbm::announce_types(*this);
  }
};

long rss_kib() {
  std::ifstream in{"/proc/self/status"};
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmRSS:", 0) == 0)
      return std::stol(line.substr(6));
  return 0;
}

struct percentiles {
  double p50, p99, mean;
};

percentiles summarize(std::vector<double> us) {
  std::sort(us.begin(), us.end());
  double sum = 0;
  for (auto v : us)
    sum += v;
  return {us[us.size() / 2], us[us.size() * 99 / 100], sum / us.size()};
}

std::string id_of(int i) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "spk-%06d", i);
  return buf;
}

}  // namespace

int main() {
  auto& srv = sbm::test::servers::shared();
  auto url = srv.fresh_database();
  bench_config cfg;
  caf::actor_system sys{cfg};
  caf::scoped_actor self{sys};

  sbm::connections::postgres_settings pg;
  pg.url = url;
  pg.migrations = sbm::schema::all_migrations();
  auto db = sbm::connections::spawn_postgres(sys, pg);
  for (int i = 0; i < 600; ++i) {  // up to a minute for migrations
    bool up = false;
    self->request(db, std::chrono::seconds(5), sbm::status_atom::value)
      .receive([&](sbm::dependency_status& s) { up = s.up; }, [](caf::error&) {});
    if (up)
      break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }

  pqxx::connection raw{url};
  {
    auto t0 = clock_type::now();
    pqxx::work w{raw};
    w.exec0("INSERT INTO speakers.speakers (speaker_id, client_id, display_name, bucket, window_size, "
            "window_mean, samples_total) SELECT 'spk-' || lpad(i::text, 6, '0'), 'client-' || (i % 100), "
            "'Dr ' || i, 'medium_touch', CASE WHEN i < " + std::to_string(active) + " THEN " +
            std::to_string(window) + " ELSE 0 END, 7.5, CASE WHEN i < " + std::to_string(active) +
            " THEN " + std::to_string(window) + " ELSE 0 END FROM generate_series(0, " +
            std::to_string(registered - 1) + ") i");
    w.exec0("INSERT INTO speakers.quality_samples (speaker_id, job_id, errors_per_100_words) "
            "SELECT 'spk-' || lpad(i::text, 6, '0'), 'job-' || j, 5 + (j % 6) "
            "FROM generate_series(0, " + std::to_string(active - 1) + ") i, generate_series(1, " +
            std::to_string(window) + ") j");
    w.commit();
    pqxx::nontransaction n{raw};
    n.exec0("ANALYZE");
    std::cerr << "seeded " << registered << " speakers (" << active << " with " << window
              << " samples) in " << std::chrono::duration<double>(clock_type::now() - t0).count()
              << " s\n";
  }

  // Raw baseline: the activation's two statements in one transaction, as the actor sends them.
  raw.prepare("row", "SELECT speaker_id, client_id, display_name, bucket, pinned, pin_reason, pinned_by, "
                     "coalesce((extract(epoch from pinned_at) * 1000)::bigint, 0), window_size, window_mean, "
                     "samples_total, bucket_changes, (extract(epoch from created_at) * 1000)::bigint, "
                     "(extract(epoch from updated_at) * 1000)::bigint, version "
                     "FROM speakers.speakers WHERE speaker_id = $1");
  raw.prepare("window", "SELECT errors_per_100_words FROM (SELECT id, errors_per_100_words FROM "
                        "speakers.quality_samples WHERE speaker_id = $1 ORDER BY id DESC LIMIT $2) "
                        "newest ORDER BY id");
  auto raw_load = [&](int i) {
    pqxx::work w{raw};
    auto id = id_of(i);
    auto row = w.exec_prepared("row", id);
    auto samples = w.exec_prepared("window", id, window);
    w.commit();
    return row.size() + samples.size();
  };
  for (int i = 0; i < active; ++i)  // warm PostgreSQL's cache for both sides
    raw_load(i);
  std::vector<double> raw_us;
  raw_us.reserve(active);
  for (int i = 0; i < active; ++i) {
    auto t0 = clock_type::now();
    raw_load(i);
    raw_us.push_back(std::chrono::duration<double, std::micro>(clock_type::now() - t0).count());
  }

  sbm::speakers::speakers_settings sp;
  sp.db = db;
  sp.bus = sbm::events::spawn_event_bus(sys);
  sp.idle_timeout = std::chrono::hours(1);
  auto shard = sbm::speakers::spawn_speakers(sys, sp);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));

  auto rss_before = rss_kib();
  std::vector<double> activation_us, warm_us;
  activation_us.reserve(active);
  warm_us.reserve(active);
  int failures = 0;
  auto get = [&](int i, std::vector<double>& out) {
    auto t0 = clock_type::now();
    self->request(shard, std::chrono::seconds(30), sbm::get_atom::value, id_of(i))
      .receive(
        [&](sbm::speaker_view& v) {
          if (v.window_size != static_cast<std::uint32_t>(window))
            ++failures;
        },
        [&](caf::error&) { ++failures; });
    out.push_back(std::chrono::duration<double, std::micro>(clock_type::now() - t0).count());
  };
  for (int i = 0; i < active; ++i)
    get(i, activation_us);
  auto rss_after = rss_kib();
  for (int i = 0; i < active; ++i)
    get(i, warm_us);

  auto a = summarize(activation_us);
  auto w = summarize(warm_us);
  auto r = summarize(raw_us);
  double per_actor = (rss_after - rss_before) * 1024.0 / active;
  std::printf("| measure | SBM | raw baseline | ratio |\n|---|---|---|---|\n");
  std::printf("| activation latency p50 (us) | %.0f | %.0f (libpqxx, same 2 SELECTs) | %.2fx |\n", a.p50,
              r.p50, a.p50 / r.p50);
  std::printf("| activation latency p99 (us) | %.0f | %.0f | %.2fx |\n", a.p99, r.p99, a.p99 / r.p99);
  std::printf("| get of an active speaker p50 / p99 (us) | %.0f / %.0f | %.0f / %.0f (the SELECTs) | %.3fx |\n",
              w.p50, w.p99, r.p50, r.p99, w.p50 / r.p50);
  std::printf("| memory per active speaker actor (bytes, RSS delta / %d) | %.0f | - | - |\n", active,
              per_actor);
  std::printf("\n%d registered speakers, %d activated one at a time, window %d; failures: %d\n",
              registered, active, window, failures);
  anon_send_exit(shard, caf::exit_reason::user_shutdown);
  anon_send_exit(sp.bus, caf::exit_reason::user_shutdown);
  anon_send_exit(db, caf::exit_reason::user_shutdown);
  return failures == 0 ? 0 : 1;
}

// Issue 18 item 3: what an active speaker costs in memory at 10k, 100k and 1M active speakers,
// beside a bare CAF stateful actor holding the same state (speaker_state), and how long one
// activation takes beside the two raw SELECTs it needs.
//
//   bench_speakers_activation [--db URL] [ACTIVE...]
//
// ACTIVE: how many speakers to activate for the memory rows (default 10000 100000 1000000),
// activated concurrently (many in flight through the shard). Latency rows: 10,000 activations one
// at a time, 3 runs on disjoint speakers, medians reported; raw libpqxx sends the two SELECTs an
// activation needs in one transaction (the baseline), and the one statement SBM sends for
// them (no transaction), on the same database in the same run.
// --db URL: seed there once (max ACTIVE speakers, 50 samples each) and reuse the seed on later runs
// (a table public.bench_speakers_seed records it); without it, a fresh database of the servers in
// SBMTEST_SERVERS_DIR (scripts/servers start DIR), seeded each time.
//
// Each memory row runs in a child process forked before any thread exists, so one measurement's
// freed memory cannot hide the next one's cost; both children come from this run and this binary.
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/stateful_actor.hpp>
#include <pqxx/pqxx>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <future>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "actors/connections/connections.hpp"
#include "actors/events/events.hpp"
#include "actors/speakers/speaker_state.hpp"
#include "actors/speakers/speakers.hpp"
#include "messages/announce.hpp"
#include "runtime/migrations/all_migrations.hpp"
#include "runtime/migrations/migrations.hpp"
#include "tests/support/servers.hpp"

namespace {

using clock_type = std::chrono::steady_clock;
constexpr int window = 50;
constexpr int latency_n = 10000;
constexpr int latency_runs = 3;
// Concurrent activations for the memory rows: below the connection actor's queue bound (256),
// which the outbox relay shares.
constexpr int in_flight = 128;

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

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

double pct(std::vector<double> v, int p) {
  std::sort(v.begin(), v.end());
  return v[v.size() * p / 100];
}

std::string id_of(int i) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "spk-%07d", i);
  return buf;
}

int seeded(pqxx::connection& c) {
  pqxx::work w{c};
  w.exec0("CREATE TABLE IF NOT EXISTS public.bench_speakers_seed (speakers integer NOT NULL)");
  auto r = w.exec("SELECT max(speakers) FROM public.bench_speakers_seed");
  w.commit();
  return r[0][0].is_null() ? 0 : r[0][0].as<int>();
}

// Adds speakers [from, to) with a full window each, in one transaction made of server-side
// statements (generate_series), so nothing but SQL text crosses the connection. The samples
// table's secondary indexes and constraints are dropped first and made again from their own
// definitions afterwards: one sorted build of each is minutes cheaper than maintaining them row by
// row over 50 million rows (1M speakers); a failure rolls everything back, the definitions too.
void seed(pqxx::connection& c, int from, int to) {
  auto t0 = clock_type::now();
  auto say = [&](const char* what) {
    std::cerr << "seed of speakers " << from << ".." << to << ": " << what << " ("
              << std::chrono::duration<double>(clock_type::now() - t0).count() << " s)\n";
  };
  const std::string samples = "'speakers.quality_samples'::regclass";
  pqxx::work w{c};
  w.exec0("SET LOCAL maintenance_work_mem = '512MB'");
  std::vector<std::string> remake;  // in order: indexes, then the constraints that need them
  std::vector<std::string> drop;
  for (const auto& row : w.exec("SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) "
                                "FROM pg_index i WHERE i.indrelid = " + samples +
                                " AND NOT EXISTS (SELECT 1 FROM pg_constraint k "
                                "WHERE k.conindid = i.indexrelid AND k.conrelid = i.indrelid)")) {
    drop.push_back("DROP INDEX " + row[0].as<std::string>());
    remake.push_back(row[1].as<std::string>());
  }
  for (const auto& row : w.exec("SELECT quote_ident(conname), pg_get_constraintdef(oid) "
                                "FROM pg_constraint WHERE conrelid = " + samples +
                                " AND contype IN ('u', 'f') ORDER BY contype DESC")) {
    drop.push_back("ALTER TABLE speakers.quality_samples DROP CONSTRAINT " + row[0].as<std::string>());
    remake.push_back("ALTER TABLE speakers.quality_samples ADD CONSTRAINT " +
                     row[0].as<std::string>() + " " + row[1].as<std::string>());
  }
  for (const auto& sql : drop) w.exec0(sql);
  const auto range = std::to_string(from) + ", " + std::to_string(to - 1);
  w.exec0("INSERT INTO speakers.speakers (speaker_id, client_id, display_name, bucket, "
          "window_size, window_mean, samples_total) SELECT 'spk-' || lpad(i::text, 7, '0'), "
          "'client-' || (i % 100), 'Dr ' || i, 'medium_touch', " + std::to_string(window) +
          ", 7.5, " + std::to_string(window) + " FROM generate_series(" + range + ") i");
  say("speakers inserted");
  w.exec0("INSERT INTO speakers.quality_samples (speaker_id, job_id, errors_per_100_words) "
          "SELECT 'spk-' || lpad(i::text, 7, '0'), 'job-' || j, 5 + (j % 6) "
          "FROM generate_series(" + range + ") i, generate_series(1, " + std::to_string(window) +
          ") j");
  say("samples inserted");
  for (const auto& sql : remake) {
    w.exec0(sql);
    say(sql.c_str());
  }
  w.exec0("INSERT INTO public.bench_speakers_seed VALUES (" + std::to_string(to) + ")");
  w.commit();
  say("committed");
  pqxx::nontransaction n{c};
  n.exec0("ANALYZE speakers.speakers");
  n.exec0("ANALYZE speakers.quality_samples");
  say("analyzed");
}

struct memory_row {
  int active = 0;
  double bytes_per_actor = 0;
  double seconds = 0;  // to activate them all
  int failures = 0;
};

// Runs fn in a child process and reads back the rows it writes to the pipe.
std::vector<memory_row> in_child(const std::function<void(int fd)>& fn) {
  int fds[2];
  if (pipe(fds) != 0) throw std::runtime_error("pipe failed");
  std::cout.flush();
  std::cerr.flush();
  const pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    fn(fds[1]);  // exits the child
  }
  close(fds[1]);
  std::vector<memory_row> rows;
  memory_row r;
  while (read(fds[0], &r, sizeof r) == static_cast<ssize_t>(sizeof r))
    rows.push_back(r);
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    throw std::runtime_error("a measuring child failed");
  return rows;
}

sbm::postgres_actor start_db(caf::actor_system& sys, const std::string& url) {
  sbm::connections::postgres_settings pg;
  pg.url = url;
  pg.migrations = sbm::schema::all_migrations();
  auto db = sbm::connections::spawn_postgres(sys, pg);
  caf::scoped_actor self{sys};
  for (int i = 0; i < 600; ++i) {
    bool up = false;
    self->request(db, std::chrono::seconds(5), sbm::status_atom::value)
      .receive([&](sbm::dependency_status& s) { up = s.up; }, [](caf::error&) {});
    if (up)
      return db;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  throw std::runtime_error("the connection actor never came up");
}

sbm::speaker_shard_actor start_shard(caf::actor_system& sys, sbm::postgres_actor db,
                                     sbm::event_bus_actor& bus) {
  sbm::speakers::speakers_settings sp;
  sp.db = db;
  sp.bus = bus = sbm::events::spawn_event_bus(sys);
  // No idle sweep while measuring: one comes every quarter of this, and a sweep of a million
  // speakers (a message to each) stalled the 1M activation for many minutes on a loaded machine.
  sp.idle_timeout = std::chrono::hours(24);
  return sbm::speakers::spawn_speakers(sys, sp);
}

// Gets speakers [from, to) through the shard with `in_flight` requests outstanding; returns the
// number of answers that were not a loaded 50-sample speaker.
int activate_concurrently(caf::actor_system& sys, sbm::speaker_shard_actor shard, int from, int to) {
  auto done = std::make_shared<std::promise<int>>();
  auto result = done->get_future();
  sys.spawn([=](caf::event_based_actor* self) -> caf::behavior {
    auto next = std::make_shared<int>(from);
    auto answered = std::make_shared<int>(0);
    auto failures = std::make_shared<int>(0);
    auto one = std::make_shared<std::function<void()>>();
    *one = [=] {
      if (*next >= to) return;
      auto id = id_of((*next)++);
      auto finish = [=] {
        if (++*answered == to - from) {
          done->set_value(*failures);
          self->quit();
        } else {
          (*one)();
        }
      };
      self->request(shard, std::chrono::seconds(60), sbm::get_atom::value, id)
        .then(
          [=](sbm::speaker_view& v) {
            if (v.window_size != static_cast<std::uint32_t>(window)) ++*failures;
            finish();
          },
          [=](caf::error&) {
            ++*failures;
            finish();
          });
    };
    if (from == to) {
      done->set_value(0);
      return {};
    }
    for (int i = 0; i < in_flight; ++i) (*one)();
    // A behaviour keeps the driver alive while its answers come in (none arrives through it).
    return {[](sbm::get_atom) {}};
  });
  return result.get();
}

void speakers_memory(const std::string& url, const std::vector<int>& sizes, int fd) {
  bench_config cfg;
  caf::actor_system sys{cfg};
  auto db = start_db(sys, url);
  sbm::event_bus_actor bus;
  auto shard = start_shard(sys, db, bus);
  activate_concurrently(sys, shard, 0, 1);  // the first activation warms pools and the scheduler
  const long before = rss_kib();
  int active = 1;
  auto t0 = clock_type::now();
  int failures = 0;
  for (int n : sizes) {
    failures += activate_concurrently(sys, shard, active, n + 1);
    active = n + 1;
    memory_row r;
    r.active = n;
    r.bytes_per_actor = (rss_kib() - before) * 1024.0 / n;
    r.seconds = std::chrono::duration<double>(clock_type::now() - t0).count();
    r.failures = failures;
    if (write(fd, &r, sizeof r) != static_cast<ssize_t>(sizeof r)) std::_Exit(1);
  }
  close(fd);
  std::_Exit(0);  // before ~actor_system, which would wait for every actor still alive
}

// The baseline: a CAF stateful actor with exactly the speaker's state, filled as a loaded speaker's
// is (ids, name, a full window), answering one message, held by a handle in a vector.
using bare_actor = caf::stateful_actor<sbm::speakers::speaker_state>;

caf::behavior bare_fn(bare_actor* self, int i) {
  auto& st = self->state;
  st.speaker_id = id_of(i);
  st.client_id = sbm::speakers::client_id_ref{"client-" + std::to_string(i % 100)};
  st.display_name = "Dr " + std::to_string(i);
  std::vector<double> samples;
  for (int j = 1; j <= window; ++j) samples.push_back(5 + j % 6);
  st.window = sbm::speakers::quality_window::from_samples(window, samples);
  st.stage = sbm::speakers::phase::ready;
  return {[self](sbm::get_atom) { return self->state.window.mean(); }};
}

void bare_memory(const std::vector<int>& sizes, int fd) {
  bench_config cfg;
  caf::actor_system sys{cfg};
  std::vector<caf::actor> held;
  held.reserve(sizes.back() + 1);
  held.push_back(sys.spawn(bare_fn, 0));
  caf::scoped_actor self{sys};
  auto sync = [&] {  // every actor spawned so far has run its constructor and behaviour
    self->request(held.back(), caf::infinite, sbm::get_atom::value).receive([](double) {}, [](caf::error&) {});
  };
  sync();
  const long before = rss_kib();
  auto t0 = clock_type::now();
  for (int n : sizes) {
    while (static_cast<int>(held.size()) < n + 1)
      held.push_back(sys.spawn(bare_fn, static_cast<int>(held.size())));
    sync();
    memory_row r;
    r.active = n;
    r.bytes_per_actor = (rss_kib() - before) * 1024.0 / n;
    r.seconds = std::chrono::duration<double>(clock_type::now() - t0).count();
    if (write(fd, &r, sizeof r) != static_cast<ssize_t>(sizeof r)) std::_Exit(1);
  }
  close(fd);
  std::_Exit(0);  // before ~actor_system, which would wait for every actor still alive
}

}  // namespace

int main(int argc, char** argv) {
  std::string url;
  std::vector<int> sizes;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--db") == 0 && i + 1 < argc)
      url = argv[++i];
    else if (std::atoi(argv[i]) > 0)
      sizes.push_back(std::atoi(argv[i]));
    else {
      std::cerr << "usage: bench_speakers_activation [--db URL] [ACTIVE...]\n";
      return 2;
    }
  }
  if (sizes.empty()) sizes = {10000, 100000, 1000000};
  std::sort(sizes.begin(), sizes.end());
  if (url.empty()) url = sbm::test::servers::shared().fresh_database();
  const int needed = std::max(sizes.back() + 1, latency_n * latency_runs);

  pqxx::connection raw{url};
  {
    auto out = sbm::migrations::apply(raw, sbm::schema::all_migrations());
    if (!out.error.empty()) {
      std::cerr << "migrations: " << out.error << "\n";
      return 1;
    }
  }
  const int have = seeded(raw);
  if (have < needed) seed(raw, have, needed);
  else std::cerr << "reusing the seed of " << have << " speakers\n";

  // Memory first, in children forked while this process has no threads.
  auto spk = in_child([&](int fd) { speakers_memory(url, sizes, fd); });
  auto bare = in_child([&](int fd) { bare_memory(sizes, fd); });

  // Raw baselines: the activation's two statements in one transaction, and the one statement that
  // reads both, sent alone, as the speaker's store sends it outside a cluster.
  raw.prepare("row", "SELECT speaker_id, client_id, display_name, bucket, pinned, pin_reason, pinned_by, "
                     "coalesce((extract(epoch from pinned_at) * 1000)::bigint, 0), window_size, window_mean, "
                     "samples_total, bucket_changes, (extract(epoch from created_at) * 1000)::bigint, "
                     "(extract(epoch from updated_at) * 1000)::bigint, version "
                     "FROM speakers.speakers WHERE speaker_id = $1");
  raw.prepare("window", "SELECT errors_per_100_words FROM (SELECT id, errors_per_100_words FROM "
                        "speakers.quality_samples WHERE speaker_id = $1 ORDER BY id DESC LIMIT $2) "
                        "newest ORDER BY id");
  raw.prepare("one", "SELECT speaker_id, client_id, display_name, bucket, pinned, pin_reason, pinned_by, "
                     "coalesce((extract(epoch from pinned_at) * 1000)::bigint, 0), window_size, window_mean, "
                     "samples_total, bucket_changes, (extract(epoch from created_at) * 1000)::bigint, "
                     "(extract(epoch from updated_at) * 1000)::bigint, version, (SELECT "
                     "array_to_json(array_agg(errors_per_100_words ORDER BY id))::text FROM (SELECT id, "
                     "errors_per_100_words FROM speakers.quality_samples WHERE speaker_id = $1 ORDER BY id "
                     "DESC LIMIT $2) newest) FROM speakers.speakers WHERE speaker_id = $1");
  auto raw_load = [&](int i) {
    pqxx::work w{raw};
    auto id = id_of(i);
    auto row = w.exec_prepared("row", id);
    auto samples = w.exec_prepared("window", id, window);
    w.commit();
    return row.size() + samples.size();
  };
  auto raw_one = [&](int i) {
    pqxx::nontransaction n{raw};
    return n.exec_prepared("one", id_of(i), window).size();
  };
  for (int i = 0; i < latency_n * latency_runs; ++i) {  // warm PostgreSQL's cache for every side
    raw_load(i);
    raw_one(i);
  }

  bench_config cfg;
  caf::actor_system sys{cfg};
  auto db = start_db(sys, url);
  sbm::event_bus_actor bus;
  auto shard = start_shard(sys, db, bus);
  caf::scoped_actor self{sys};
  int failures = 0;
  auto get = [&](int i, std::vector<double>& out) {
    auto t0 = clock_type::now();
    self->request(shard, std::chrono::seconds(30), sbm::get_atom::value, id_of(i))
      .receive(
        [&](sbm::speaker_view& v) {
          if (v.window_size != static_cast<std::uint32_t>(window)) ++failures;
        },
        [&](caf::error&) { ++failures; });
    out.push_back(std::chrono::duration<double, std::micro>(clock_type::now() - t0).count());
  };
  // Runs alternate raw and SBM on the same fresh speakers, so drift hits both alike.
  std::vector<double> raw50, raw99, one50, one99, act50, act99, warm50, warm99;
  auto timed = [](auto&& fn, int i, std::vector<double>& out) {
    auto t0 = clock_type::now();
    fn(i);
    out.push_back(std::chrono::duration<double, std::micro>(clock_type::now() - t0).count());
  };
  for (int run = 0; run < latency_runs; ++run) {
    std::vector<double> r, o, a, w;
    const int lo = run * latency_n, hi = lo + latency_n;
    for (int i = lo; i < hi; ++i) timed(raw_load, i, r);
    for (int i = lo; i < hi; ++i) timed(raw_one, i, o);
    for (int i = lo; i < hi; ++i) get(i, a);
    for (int i = lo; i < hi; ++i) get(i, w);
    raw50.push_back(pct(r, 50)), raw99.push_back(pct(r, 99));
    one50.push_back(pct(o, 50)), one99.push_back(pct(o, 99));
    act50.push_back(pct(a, 50)), act99.push_back(pct(a, 99));
    warm50.push_back(pct(w, 50)), warm99.push_back(pct(w, 99));
  }

  std::printf("| measure | SBM | baseline | ratio |\n|---|---|---|---|\n");
  std::printf("| activation latency p50 (us) | %.0f | %.0f (libpqxx, same 2 SELECTs) | %.2fx |\n",
              median(act50), median(raw50), median(act50) / median(raw50));
  std::printf("| activation latency p99 (us) | %.0f | %.0f | %.2fx |\n", median(act99), median(raw99),
              median(act99) / median(raw99));
  std::printf("| activation latency p50 / p99 (us) beside the one statement it sends | %.0f / %.0f | %.0f / %.0f "
              "(libpqxx, the same statement, no transaction) | %.2fx / %.2fx |\n",
              median(act50), median(act99), median(one50), median(one99), median(act50) / median(one50),
              median(act99) / median(one99));
  std::printf("| get of an active speaker p50 / p99 (us) | %.0f / %.0f | %.0f / %.0f (the SELECTs) | %.3fx |\n",
              median(warm50), median(warm99), median(raw50), median(raw99),
              median(warm50) / median(raw50));
  for (std::size_t i = 0; i < spk.size() && i < bare.size(); ++i) {
    std::printf("| RSS per active speaker at %d (bytes) | %.0f | %.0f (bare CAF stateful actor, same "
                "state) | %.2fx |\n",
                spk[i].active, spk[i].bytes_per_actor, bare[i].bytes_per_actor,
                spk[i].bytes_per_actor / bare[i].bytes_per_actor);
    failures += spk[i].failures - (i > 0 ? spk[i - 1].failures : 0);
  }
  if (!spk.empty())
    std::printf("\n%d speakers activated %d at a time in %.1f s (%.0f per second); latency: %d one at a "
                "time, median of %d runs; window %d; failures: %d\n",
                spk.back().active, in_flight, spk.back().seconds, spk.back().active / spk.back().seconds,
                latency_n, latency_runs, window, failures);
  anon_send_exit(shard, caf::exit_reason::user_shutdown);
  anon_send_exit(bus, caf::exit_reason::user_shutdown);
  anon_send_exit(db, caf::exit_reason::user_shutdown);
  return failures == 0 ? 0 : 1;
}

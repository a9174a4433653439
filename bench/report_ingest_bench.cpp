// Issue 5's ingestion question, with issue 18's goal: how many error reports per second does SBM
// make durable (a receipt means committed: the report, its saga row and its log line in one
// transaction), against raw INSERTs of the same row shape by libpqxx at the same concurrency: one
// row per transaction (the baseline) and many rows per statement (the ceiling group commit can
// approach)?
//
// SBM's path per report: validation, the speakers shard (the speaker's bucket), InstaNote's job
// check (a real SELECT on a drafts table), Fernet for both notes, the batched statement through the
// filings' own PostgreSQL connections (2, as a node keeps them; the sagas use the pool of 4).
// Meanwhile the saga of every filed report runs in the background on the same database (pattern
// index upsert, schedule row, log lines), as it does in a node; the table also shows how long
// after the LAST filing's receipt every saga was done.
//
// Each level runs `runs` times (raw, raw batched, SBM with sagas, SBM with sagas held back, in turn)
// and the table shows the medians.
//
//   SBMTEST_SERVERS_DIR=DIR build/bench/bench_report_ingest [--runs N] [--reports N] [--levels 1,8,32]
//                                                            [--max-running-sagas N] [--sbm-only]
//                                                            [--filing-connections N]
//
// Needs servers: SBMTEST_SERVERS_DIR (scripts/servers start DIR), as bench/run arranges.
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/stateful_actor.hpp>
#include <pqxx/pqxx>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "actors/connections/connections.hpp"
#include "actors/events/events.hpp"
#include "actors/patterns/patterns.hpp"
#include "actors/reports/core/fernet.hpp"
#include "actors/reports/reports.hpp"
#include "actors/speakers/speakers.hpp"
#include "actors/verification/verification.hpp"
#include "messages/announce.hpp"
#include "runtime/migrations/all_migrations.hpp"
#include "tests/support/servers.hpp"

namespace {

using clock_type = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr int speakers = 100;
// Rows per statement of the raw batched baseline: the reports actor's own largest batch.
constexpr int raw_batch_rows = 64;

struct options {
  int runs = 3;
  int reports = 3000;
  std::vector<int> levels{1, 8, 32};
  int max_running_sagas = 0;  // 0: reports.max-running-sagas as the node has it
  int filing_connections = 2;  // reports.filing-connections (and filing statements at once)
  // Only SBM with its sagas running (no baselines, nothing held back): a profiler attached to
  // this process then sees the filing path and the sagas alone.
  bool sbm_only = false;
};

options parse(int argc, char** argv) {
  options o;
  auto usage = [] {
    std::cerr << "usage: bench_report_ingest [--runs N] [--reports N] [--levels 1,8,32] "
                 "[--max-running-sagas N] [--filing-connections N] [--sbm-only]\n";
    std::exit(2);
  };
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--sbm-only") {
      o.sbm_only = true;
      continue;
    }
    if (i + 1 >= argc) usage();
    const std::string value = argv[++i];
    try {
      if (arg == "--runs") {
        o.runs = std::stoi(value);
      } else if (arg == "--reports") {
        o.reports = std::stoi(value);
      } else if (arg == "--max-running-sagas") {
        o.max_running_sagas = std::stoi(value);
      } else if (arg == "--filing-connections") {
        o.filing_connections = std::stoi(value);
      } else if (arg == "--levels") {
        o.levels.clear();
        std::size_t at = 0;
        while (at <= value.size()) {
          auto comma = value.find(',', at);
          if (comma == std::string::npos) comma = value.size();
          o.levels.push_back(std::stoi(value.substr(at, comma - at)));
          at = comma + 1;
        }
      } else {
        usage();
      }
    } catch (const std::exception&) {
      usage();
    }
  }
  if (o.runs < 1 || o.reports < 1 || o.levels.empty() || o.max_running_sagas < 0 || o.filing_connections < 1)
    usage();
  for (int level : o.levels)
    if (level < 1) usage();
  return o;
}

struct bench_config : caf::actor_system_config {
  bench_config() { sbm::announce_types(*this); }
};

std::string speaker_of(int i) { return "spk-" + std::to_string(i % speakers); }
// Every filing of the whole run names its own job: (level, run, sagas held back or not, i).
std::string job_of(int batch, int i) { return "job-" + std::to_string(batch) + "-" + std::to_string(i); }

sbm::report_submission submission(int batch, int i) {
  sbm::report_submission s;
  s.speaker_id = speaker_of(i);
  s.client_id = "clinic-1";
  s.job_id = job_of(batch, i);
  s.original_text = "metoprolal " + std::to_string(i) + " mg twice daily";
  s.corrected_text = "metoprolol " + std::to_string(i) + " mg twice daily";
  s.error_categories = {"drug_name", "dosage"};
  s.audio_quality = "good";
  s.speaker_clarity = "clear";
  s.background_noise = "low";
  s.number_of_speakers = 1;
  s.additional_notes = "QA: the drug is on the medication list, dose confirmed with the clinic";
  s.context_notes = "dictated in the car; road noise at the start";
  s.context_text = "continue metoprolal 50 mg twice daily and recheck blood pressure";
  s.actor = "bench";
  return s;
}

// Keeps `concurrency` filings in flight until `total` are answered; answers the seconds from the
// first request to the last receipt.
struct driver_state {
  sbm::reports_actor reports;
  int batch = 0;
  int total = 0;
  int sent = 0;
  int answered = 0;
  int refused = 0;
  clock_type::time_point started;
  caf::response_promise done;
};

void fire(caf::stateful_actor<driver_state>* self);

void answered(caf::stateful_actor<driver_state>* self, bool refused) {
  auto& st = self->state;
  if (refused) ++st.refused;
  if (++st.answered == st.total)
    st.done.deliver(std::chrono::duration<double>(clock_type::now() - st.started).count(), st.refused);
  else
    fire(self);
}

void fire(caf::stateful_actor<driver_state>* self) {
  auto& st = self->state;
  if (st.sent >= st.total) return;
  const int i = st.sent++;
  self->request(st.reports, std::chrono::seconds(60), sbm::file_atom::value, submission(st.batch, i))
    .then([self](sbm::report_receipt& r) { answered(self, r.outcome != sbm::report_receipt::accepted); },
          [self](caf::error&) { answered(self, true); });
}

caf::behavior driver(caf::stateful_actor<driver_state>* self, sbm::reports_actor reports, int batch,
                     int total) {
  self->state.reports = std::move(reports);
  self->state.batch = batch;
  self->state.total = total;
  return {
    [self](sbm::get_atom, int concurrency) {
      auto& st = self->state;
      st.started = clock_type::now();
      st.done = self->make_response_promise();
      for (int c = 0; c < concurrency; ++c) fire(self);
      return st.done;
    },
  };
}

const char* const raw_columns =
  "INSERT INTO reports.error_reports (speaker_id, client_id, job_id, original_text, "
  "corrected_text, context_text, error_categories, bucket_type, audio_quality, "
  "speaker_clarity, background_noise, number_of_speakers, overlapping_speech, "
  "requires_specialized_knowledge, additional_notes_token, context_notes_token, filed_by) VALUES ";
constexpr int raw_params = 17;

std::string raw_row_placeholders(int row) {
  const int b = row * raw_params;
  auto p = [b](int k) { return "$" + std::to_string(b + k); };
  return "(" + p(1) + ", " + p(2) + ", " + p(3) + ", " + p(4) + ", " + p(5) + ", " + p(6) +
         ", string_to_array(" + p(7) + ", ','), " + p(8) + ", " + p(9) + ", " + p(10) + ", " + p(11) +
         ", " + p(12) + "::integer, " + p(13) + "::boolean, " + p(14) + "::boolean, " + p(15) + ", " +
         p(16) + ", " + p(17) + ")";
}

void add_raw_row(std::vector<std::string>& params, int i, const std::string& token_a,
                 const std::string& token_b) {
  auto s = submission(0, i);
  for (auto* v : {&s.speaker_id, &s.client_id, &s.job_id, &s.original_text, &s.corrected_text,
                  &s.context_text})
    params.push_back(*v);
  for (const char* v : {"drug_name,dosage", "medium_touch"}) params.emplace_back(v);
  for (auto* v : {&s.audio_quality, &s.speaker_clarity, &s.background_noise}) params.push_back(*v);
  for (const char* v : {"1", "false", "false"}) params.emplace_back(v);
  params.push_back(token_a);
  params.push_back(token_b);
  params.push_back(s.actor);
}

// The same row the reports actor writes, made durable by libpqxx alone on `concurrency`
// connections: `rows_per_commit` rows per prepared multi-row INSERT and transaction (1: the plain
// baseline; raw_batch_rows: the ceiling). Answers rows per second.
// CPU time used so far by this process (the filing path and its sagas, or the raw baseline's
// libpqxx clients) and by the PostgreSQL server (every backend, the WAL writer and the rest:
// the postmaster's own time, its exited children's as the kernel books them to it, and its live
// children's). /proc counts in clock ticks (10 ms), fine over phases of seconds.
struct cpu_sample {
  double process = 0;
  double postgres = 0;
};

std::vector<unsigned long long> stat_fields(const std::string& path) {
  std::ifstream in{path};
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<unsigned long long> out;
  const auto close = text.rfind(')');  // the command name may hold spaces and parentheses
  if (close == std::string::npos) return out;
  std::istringstream rest{text.substr(close + 2)};
  std::string field;
  while (rest >> field) out.push_back(std::strtoull(field.c_str(), nullptr, 10));
  return out;  // out[0] is field 3 (state): field n is out[n - 3]
}

class cpu_meter {
 public:
  explicit cpu_meter(const std::string& servers_dir) {
    std::ifstream pid_file{servers_dir + "/pg-data/postmaster.pid"};
    pid_file >> postmaster_;
  }

  cpu_sample now() const {
    const double tick = static_cast<double>(::sysconf(_SC_CLK_TCK));
    cpu_sample s;
    auto own = stat_fields("/proc/self/stat");
    if (own.size() > 12) s.process = static_cast<double>(own[11] + own[12]) / tick;
    if (postmaster_ <= 0) return s;
    auto pm = stat_fields("/proc/" + std::to_string(postmaster_) + "/stat");
    if (pm.size() > 14) s.postgres = static_cast<double>(pm[11] + pm[12] + pm[13] + pm[14]) / tick;
    for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
      const auto name = entry.path().filename().string();
      if (name.empty() || !std::isdigit(static_cast<unsigned char>(name[0]))) continue;
      auto f = stat_fields(entry.path().string() + "/stat");
      if (f.size() > 12 && static_cast<long>(f[1]) == postmaster_)
        s.postgres += static_cast<double>(f[11] + f[12]) / tick;
    }
    return s;
  }

 private:
  long postmaster_ = 0;
};

// One measured phase: its rate, and the CPU it took per report (process + PostgreSQL) with the
// cores that kept busy meanwhile (CPU seconds over wall seconds).
struct phase {
  double rate = 0;
  double cpu_ms_per_report = 0;
  double postgres_ms_per_report = 0;  // PostgreSQL's part of cpu_ms_per_report
  double cores_busy = 0;
};

phase phase_of(int reports, double seconds, const cpu_sample& from, const cpu_sample& to) {
  const double postgres = to.postgres - from.postgres;
  const double cpu = (to.process - from.process) + postgres;
  return {reports / seconds, 1000.0 * cpu / reports, 1000.0 * postgres / reports, cpu / seconds};
}

// The run whose CPU per report is the median (the upper one of an even count).
phase median_of(std::vector<phase> runs) {
  if (runs.empty()) return {};
  std::sort(runs.begin(), runs.end(),
            [](const phase& a, const phase& b) { return a.cpu_ms_per_report < b.cpu_ms_per_report; });
  return runs[runs.size() / 2];
}

// "total (process + PostgreSQL)" of the median run.
std::string cpu_cell(const std::vector<phase>& runs) {
  if (runs.empty()) return "-";
  const auto m = median_of(runs);
  char cell[96];
  std::snprintf(cell, sizeof cell, "%.3f (%.3f + %.3f)", m.cpu_ms_per_report,
                m.cpu_ms_per_report - m.postgres_ms_per_report, m.postgres_ms_per_report);
  return cell;
}

phase raw_inserts(const cpu_meter& meter, const std::string& url, int concurrency, int total, int rows_per_commit,
                  const std::string& token_a, const std::string& token_b) {
  std::atomic<int> next{0};
  std::vector<std::thread> threads;
  std::string sql = raw_columns;
  for (int r = 0; r < rows_per_commit; ++r) sql += (r ? ", " : "") + raw_row_placeholders(r);
  // Connections are opened before the clock starts: the baseline is the writes, not the logins.
  std::vector<std::unique_ptr<pqxx::connection>> conns;
  for (int c = 0; c < concurrency; ++c) {
    conns.push_back(std::make_unique<pqxx::connection>(url));
    conns.back()->prepare("insert", sql);
  }
  const auto cpu0 = meter.now();
  auto t0 = clock_type::now();
  for (int c = 0; c < concurrency; ++c) {
    threads.emplace_back([&, c] {
      auto& conn = *conns[static_cast<std::size_t>(c)];
      for (;;) {
        const int first = next.fetch_add(rows_per_commit);
        if (first >= total) return;
        const int rows = std::min(rows_per_commit, total - first);
        std::vector<std::string> params;
        params.reserve(static_cast<std::size_t>(rows_per_commit * raw_params));
        // A short last batch repeats its rows' values up to the prepared shape's row count; the
        // extra rows are written too but not counted, so the ceiling errs low, never high.
        for (int r = 0; r < rows_per_commit; ++r) add_raw_row(params, first + (r % rows), token_a, token_b);
        pqxx::work w{conn};
        w.exec_prepared("insert", pqxx::prepare::make_dynamic_params(params));
        w.commit();
      }
    });
  }
  for (auto& t : threads) t.join();
  const double seconds = std::chrono::duration<double>(clock_type::now() - t0).count();
  return phase_of(total, seconds, cpu0, meter.now());
}

double median(std::vector<double> xs) {
  std::sort(xs.begin(), xs.end());
  const auto n = xs.size();
  return n % 2 ? xs[n / 2] : (xs[n / 2 - 1] + xs[n / 2]) / 2;
}

}  // namespace

int main(int argc, char** argv) {
  const auto opt = parse(argc, argv);
  auto& srv = sbm::test::servers::shared();
  auto url = srv.fresh_database();
  auto raw_url = srv.fresh_database();
  auto instanote_url = srv.fresh_database();
  bench_config cfg;
  caf::actor_system sys{cfg};
  caf::scoped_actor self{sys};

  auto wait_up = [&](const sbm::postgres_actor& db) {
    for (int i = 0; i < 600; ++i) {
      bool up = false;
      self->request(db, 5s, sbm::status_atom::value)
        .receive([&](sbm::dependency_status& s) { up = s.up; }, [](caf::error&) {});
      if (up) return;
      std::this_thread::sleep_for(100ms);
    }
    std::cerr << "a database never came up\n";
    std::exit(1);
  };
  sbm::connections::postgres_settings pg;
  pg.url = url;
  pg.migrations = sbm::schema::all_migrations();
  auto db = sbm::connections::spawn_postgres(sys, pg);
  pg.url = raw_url;  // the raw baselines' own database, same schema
  auto raw_db = sbm::connections::spawn_postgres(sys, pg);
  wait_up(db);
  wait_up(raw_db);
  anon_send_exit(raw_db, caf::exit_reason::user_shutdown);
  // A filing batch number per (level, run, held back or not): each names jobs of its own.
  auto batch_of = [&](std::size_t level_index, int run, bool held) {
    return static_cast<int>(level_index) * 1000 + run * 2 + (held ? 1 : 0);
  };
  {
    pqxx::connection c{instanote_url};
    pqxx::work w{c};
    w.exec0("CREATE TABLE public.draft_jobs (job_id text PRIMARY KEY, speaker_id text NOT NULL, "
            "client_id text NOT NULL, draft_text text NOT NULL, audio_metadata jsonb, "
            "created_at timestamptz NOT NULL DEFAULT now())");
    for (std::size_t l = 0; l < opt.levels.size(); ++l)
      for (int run = 0; run < opt.runs; ++run)
        for (bool held : {false, true})
          w.exec0("INSERT INTO public.draft_jobs (job_id, speaker_id, client_id, draft_text) SELECT "
                  "'job-" + std::to_string(batch_of(l, run, held)) + "-' || i, 'spk-' || (i % " +
                  std::to_string(speakers) + "), 'clinic-1', 'draft' FROM generate_series(0, " +
                  std::to_string(opt.reports - 1) + ") i");
    w.commit();
  }
  auto instanote = sbm::connections::spawn_postgres(sys, sbm::connections::instanote_defaults(instanote_url));
  wait_up(instanote);

  // The filings' own connections, as a node has them (reports.filing-connections).
  sbm::connections::postgres_settings fpg;
  fpg.name = "postgres-filings";
  fpg.url = url;
  fpg.pool_size = static_cast<std::uint32_t>(opt.filing_connections);
  auto filings = sbm::connections::spawn_postgres(sys, fpg);
  wait_up(filings);

  auto bus = sbm::events::spawn_event_bus(sys);
  auto scheduler = sbm::verification::spawn_verification_scheduler(sys, db, bus);
  sbm::speakers::speakers_settings sp;
  sp.db = db;
  sp.bus = bus;
  sp.idle_timeout = std::chrono::hours(1);
  auto shard = sbm::speakers::spawn_speakers(sys, sp);
  for (int i = 0; i < speakers; ++i)
    self->request(shard, 10s, sbm::register_atom::value,
                  sbm::speaker_registration{speaker_of(i), "clinic-1", "Dr " + std::to_string(i), "bench"})
      .receive([](sbm::speaker_view&) {}, [](caf::error& e) { std::cerr << to_string(e) << "\n"; });
  sbm::patterns::pattern_index_settings pis;
  pis.db = db;
  auto index = sbm::patterns::spawn_pattern_index(sys, pis);
  for (int i = 0; i < 600; ++i) {
    bool ready = false;
    self->request(index, 5s, sbm::status_atom::value)
      .receive([&](sbm::pattern_index_status& s) { ready = s.ready; }, [](caf::error&) {});
    if (ready) break;
    std::this_thread::sleep_for(100ms);
  }

  sbm::reports::reports_settings rs;
  rs.db = db;
  rs.filings = filings;
  rs.instanote = instanote;
  rs.speakers = shard;
  rs.patterns = index;
  rs.schedule = scheduler;
  rs.fernet_key = sbm::reports::fernet::generate_key();
  rs.relay_interval = 100ms;
  rs.filing_batches = static_cast<std::uint32_t>(opt.filing_connections);
  if (opt.max_running_sagas > 0) rs.max_running = static_cast<std::uint32_t>(opt.max_running_sagas);
  auto reports = sbm::reports::spawn_reports(sys, rs);
  // The same filing path with every saga held back (the test-only step delay), to show what the
  // background saga costs the filing rate.
  auto held_settings = rs;
  held_settings.step_delay = std::chrono::hours(1);
  held_settings.claim = std::chrono::hours(1);
  auto held = sbm::reports::spawn_reports(sys, held_settings);

  auto cipher = sbm::reports::fernet::from_key(rs.fernet_key);
  const auto sample = submission(0, 0);
  const auto token_a = cipher->encrypt(sample.additional_notes, 1700000000);
  const auto token_b = cipher->encrypt(sample.context_notes, 1700000000);

  pqxx::connection probe{url};
  auto sagas_open = [&] {
    pqxx::nontransaction n{probe};
    return n.exec1("SELECT count(*) FROM reports.report_saga WHERE step <> 'done'")[0].as<long>();
  };

  int failures = 0;
  // Answers the filing rate and when the last receipt came.
  auto file_all = [&](const sbm::reports_actor& target, int batch, int level) {
    auto d = sys.spawn(driver, target, batch, opt.reports);
    double seconds = 0;
    const auto t0 = clock_type::now();
    self->request(d, caf::infinite, sbm::get_atom::value, level)
      .receive(
        [&](double s, int refusals) {
          seconds = s;
          failures += refusals;
        },
        [&](caf::error& e) {
          std::cerr << "driver failed: " << to_string(e) << "\n";
          failures += opt.reports;
        });
    anon_send_exit(d, caf::exit_reason::user_shutdown);
    return std::make_pair(opt.reports / seconds, t0 + std::chrono::duration_cast<clock_type::duration>(
                                                        std::chrono::duration<double>(seconds)));
  };

  std::printf("| concurrency | raw INSERT rows/s, one row per commit (baseline) | raw batched INSERT rows/s, "
              "%d rows per commit (ceiling) | SBM reports/s, sagas running | x raw | SBM reports/s, sagas "
              "held back | x raw | all sagas done (s after the last filing) |\n"
              "|---|---|---|---|---|---|---|---|\n",
              raw_batch_rows);
  std::fflush(stdout);
  long held_open = 0;  // sagas of the held-back runs, open for good
  const cpu_meter meter{srv.dir()};
  const double cores = std::max(1u, std::thread::hardware_concurrency());
  std::vector<std::string> cpu_rows, cpu_readings;
  for (std::size_t l = 0; l < opt.levels.size(); ++l) {
    const int level = opt.levels[l];
    std::vector<double> raw, raw_batched, running, held_rate, drained, ratio_running, ratio_held;
    std::vector<phase> raw_cpu, running_cpu, held_cpu;
    std::vector<double> raw_busy, running_busy, held_busy, allowed_ratio;
    for (int run = 0; run < opt.runs; ++run) {
      if (opt.sbm_only) {
        raw.push_back(0);
        raw_batched.push_back(0);
      } else {
        const auto one = raw_inserts(meter, raw_url, level, opt.reports, 1, token_a, token_b);
        raw.push_back(one.rate);
        raw_cpu.push_back(one);
        raw_busy.push_back(one.cores_busy);
        raw_batched.push_back(raw_inserts(meter, raw_url, level, opt.reports, raw_batch_rows, token_a, token_b).rate);
      }
      const auto before = meter.now();
      const auto [rate, last] = file_all(reports, batch_of(l, run, false), level);
      const auto filed = meter.now();
      running.push_back(rate);
      const auto give_up = clock_type::now() + 600s;
      while (sagas_open() > held_open && clock_type::now() < give_up) std::this_thread::sleep_for(10ms);
      if (sagas_open() > held_open) ++failures;
      drained.push_back(std::chrono::duration<double>(clock_type::now() - last).count());
      // A report's whole cost: its filing and its saga, up to the last saga done (only the CPU of
      // this phase is read, so its wall time is not needed: 1 s stands in).
      running_cpu.push_back(phase_of(opt.reports, 1, before, meter.now()));
      running_busy.push_back(phase_of(opt.reports, opt.reports / rate, before, filed).cores_busy);
      if (opt.sbm_only) {
        held_rate.push_back(0);
      } else {
        const long open_before = sagas_open();
        const auto held_before = meter.now();
        held_rate.push_back(file_all(held, batch_of(l, run, true), level).first);
        const auto held_phase = phase_of(opt.reports, opt.reports / held_rate.back(), held_before, meter.now());
        held_cpu.push_back(held_phase);
        held_busy.push_back(held_phase.cores_busy);
        // The held sagas stay open; they are not this run's concern beyond their count.
        held_open = sagas_open();
        if (held_open - open_before != opt.reports) ++failures;
      }
      ratio_running.push_back(running.back() / raw.back());
      allowed_ratio.push_back(1000.0 * cores / running_cpu.back().cpu_ms_per_report / raw.back());
      ratio_held.push_back(held_rate.back() / raw.back());
    }
    std::printf("| %d | %.0f | %.0f | %.0f | %.2fx | %.0f | %.2fx | %.2f |\n", level, median(raw),
                median(raw_batched), median(running), median(ratio_running), median(held_rate),
                median(ratio_held), median(drained));
    std::fflush(stdout);
    if (!opt.sbm_only) {
      std::vector<double> allowed;
      for (const auto& p : running_cpu) allowed.push_back(1000.0 * cores / p.cpu_ms_per_report);
      char row[512];
      std::snprintf(row, sizeof row, "| %d | %s | %.2f | %s | %.2f | %.0f | %.2fx | %s | %.2f |\n", level,
                    cpu_cell(raw_cpu).c_str(), median(raw_busy), cpu_cell(running_cpu).c_str(),
                    median(running_busy), median(allowed), median(allowed_ratio), cpu_cell(held_cpu).c_str(),
                    median(held_busy));
      cpu_rows.emplace_back(row);
      // What the row means for the goal (1.0x raw with the sagas running), in words.
      const auto whole = median_of(running_cpu), alone = median_of(held_cpu);
      char reading[768];
      std::snprintf(reading, sizeof reading,
                    "At %d client%s a report costs %.2f ms of CPU with its saga (%.2f ms of it PostgreSQL's) and "
                    "%.2f ms filed alone, against %.2f ms per raw INSERT row: %.0f cores doing nothing else "
                    "file at most %.0f reports/s while every saga keeps up, %.2fx raw's %.0f rows/s. The saga "
                    "is %.0f%% of that cost.\n",
                    level, level == 1 ? "" : "s", whole.cpu_ms_per_report, whole.postgres_ms_per_report, alone.cpu_ms_per_report,
                    median_of(raw_cpu).cpu_ms_per_report, cores, median(allowed), median(allowed_ratio),
                    median(raw), 100.0 * (whole.cpu_ms_per_report - alone.cpu_ms_per_report) / whole.cpu_ms_per_report);
      cpu_readings.emplace_back(reading);
    }
  }
  if (!cpu_rows.empty()) {
    std::printf("\nCPU per report, this process (the filing path and its sagas, or the raw clients) plus every "
                "PostgreSQL process, from /proc; cores busy = CPU seconds over the phase's wall seconds, of %.0f. "
                "With the sagas running a report's CPU counts from its filing to the last saga done; the rate "
                "%.0f cores allow at that cost is the most any scheduling of the same work could file while "
                "the sagas keep up.\n\n"
                "| concurrency | raw INSERT, CPU ms per row (clients + PostgreSQL) | cores busy | SBM with its saga, CPU ms "
                "per report (process + PostgreSQL) | cores busy while filing | reports/s %.0f cores allow at that cost | "
                "x raw | SBM sagas held back, CPU ms per report | cores busy |\n|---|---|---|---|---|---|---|---|---|\n",
                cores, cores, cores);
    for (const auto& row : cpu_rows) std::fputs(row.c_str(), stdout);
    std::printf("\n");
    for (const auto& reading : cpu_readings) std::fputs(reading.c_str(), stdout);
  }
  std::printf("\nMedians of %d runs per level (each run measures all four in turn; a ratio is the median of "
              "the runs' own ratios); %d reports per run over %d speakers; refusals or failures: %d\n",
              opt.runs, opt.reports, speakers, failures);
  for (auto a : {caf::actor_cast<caf::actor>(reports), caf::actor_cast<caf::actor>(held),
                 caf::actor_cast<caf::actor>(index),
                 caf::actor_cast<caf::actor>(shard), caf::actor_cast<caf::actor>(scheduler),
                 caf::actor_cast<caf::actor>(bus), caf::actor_cast<caf::actor>(instanote),
                 caf::actor_cast<caf::actor>(filings),
                 caf::actor_cast<caf::actor>(db)})
    anon_send_exit(a, caf::exit_reason::user_shutdown);
  return failures == 0 ? 0 : 1;
}

// Issue 5's ingestion question: how many error reports per second does SBM make durable (a receipt
// means committed: the report, its saga row and its log line in one transaction), against a raw
// INSERT of the same row shape by libpqxx, one row per transaction, at the same concurrency?
//
// SBM's path per report: validation, the speakers shard (the speaker's bucket), InstaNote's job
// check (a real SELECT on a drafts table), Fernet for both notes, the three-statement transaction
// through the PostgreSQL connection actor (pool of 4). Meanwhile the saga of every filed report
// runs in the background on the same database (pattern index upsert, schedule row, log lines), as
// it does in a node; the table also shows when the last saga finished.
//
// Needs servers: SBMTEST_SERVERS_DIR (scripts/servers start DIR), as bench/run arranges.
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/stateful_actor.hpp>
#include <pqxx/pqxx>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <iostream>
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
constexpr int per_level = 3000;
const int levels[] = {1, 8, 32};

struct bench_config : caf::actor_system_config {
  bench_config() { sbm::announce_types(*this); }
};

std::string speaker_of(int i) { return "spk-" + std::to_string(i % speakers); }
std::string job_of(int level, int i) { return "job-" + std::to_string(level) + "-" + std::to_string(i); }

sbm::report_submission submission(int level, int i) {
  sbm::report_submission s;
  s.speaker_id = speaker_of(i);
  s.client_id = "clinic-1";
  s.job_id = job_of(level, i);
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

// Keeps `concurrency` filings in flight until `total` are answered; answers the elapsed seconds.
struct driver_state {
  sbm::reports_actor reports;
  int level = 0;
  int total = 0;
  int sent = 0;
  int answered = 0;
  int refused = 0;
  clock_type::time_point started;
  caf::response_promise done;
};

void fire(caf::stateful_actor<driver_state>* self) {
  auto& st = self->state;
  if (st.sent >= st.total) return;
  const int i = st.sent++;
  self->request(st.reports, std::chrono::seconds(60), sbm::file_atom::value, submission(st.level, i))
    .then(
      [self](sbm::report_receipt& r) {
        auto& st = self->state;
        if (r.outcome != sbm::report_receipt::accepted) ++st.refused;
        if (++st.answered == st.total)
          st.done.deliver(std::chrono::duration<double>(clock_type::now() - st.started).count(), st.refused);
        else
          fire(self);
      },
      [self](caf::error&) {
        auto& st = self->state;
        ++st.refused;
        if (++st.answered == st.total)
          st.done.deliver(std::chrono::duration<double>(clock_type::now() - st.started).count(), st.refused);
        else
          fire(self);
      });
}

caf::behavior driver(caf::stateful_actor<driver_state>* self, sbm::reports_actor reports, int level,
                     int total) {
  self->state.reports = std::move(reports);
  self->state.level = level;
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

// The same row the reports actor writes, made durable the plainest way: one INSERT per
// transaction, `concurrency` connections, each committing its share.
double raw_inserts(const std::string& url, int concurrency, int total, const std::string& token_a,
                   const std::string& token_b) {
  std::atomic<int> next{0};
  std::vector<std::thread> threads;
  auto t0 = clock_type::now();
  for (int c = 0; c < concurrency; ++c) {
    threads.emplace_back([&] {
      pqxx::connection conn{url};
      conn.prepare("insert",
                   "INSERT INTO reports.error_reports (speaker_id, client_id, job_id, original_text, "
                   "corrected_text, context_text, error_categories, bucket_type, audio_quality, "
                   "speaker_clarity, background_noise, number_of_speakers, overlapping_speech, "
                   "requires_specialized_knowledge, additional_notes_token, context_notes_token, filed_by) "
                   "VALUES ($1, $2, $3, $4, $5, $6, string_to_array($7, ','), $8, $9, $10, $11, "
                   "$12::integer, $13::boolean, $14::boolean, $15, $16, $17) RETURNING id");
      for (int i = next++; i < total; i = next++) {
        auto s = submission(0, i);
        pqxx::work w{conn};
        w.exec_prepared("insert", s.speaker_id, s.client_id, s.job_id, s.original_text, s.corrected_text,
                        s.context_text, "drug_name,dosage", "medium_touch", s.audio_quality,
                        s.speaker_clarity, s.background_noise, "1", "false", "false", token_a, token_b,
                        s.actor);
        w.commit();
      }
    });
  }
  for (auto& t : threads) t.join();
  return std::chrono::duration<double>(clock_type::now() - t0).count();
}

}  // namespace

int main() {
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
  pg.url = raw_url;  // the raw baseline's own database, same schema
  auto raw_db = sbm::connections::spawn_postgres(sys, pg);
  wait_up(db);
  wait_up(raw_db);
  anon_send_exit(raw_db, caf::exit_reason::user_shutdown);
  {
    pqxx::connection c{instanote_url};
    pqxx::work w{c};
    w.exec0("CREATE TABLE public.draft_jobs (job_id text PRIMARY KEY, speaker_id text NOT NULL, "
            "client_id text NOT NULL, draft_text text NOT NULL, audio_metadata jsonb, "
            "created_at timestamptz NOT NULL DEFAULT now())");
    for (int level : levels)
      w.exec0("INSERT INTO public.draft_jobs (job_id, speaker_id, client_id, draft_text) SELECT "
              "'job-" + std::to_string(level) + "-' || i, 'spk-' || (i % " + std::to_string(speakers) +
              "), 'clinic-1', 'draft' FROM generate_series(0, " + std::to_string(per_level - 1) + ") i");
    w.commit();
  }
  auto instanote = sbm::connections::spawn_postgres(sys, sbm::connections::instanote_defaults(instanote_url));
  wait_up(instanote);

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
  rs.instanote = instanote;
  rs.speakers = shard;
  rs.patterns = index;
  rs.schedule = scheduler;
  rs.fernet_key = sbm::reports::fernet::generate_key();
  rs.relay_interval = 100ms;
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

  std::printf("| concurrency | raw INSERT rows/s (libpqxx) | SBM reports/s, sagas running | ratio | "
              "SBM reports/s, sagas held back | ratio | all sagas done (s after the first filing) |\n"
              "|---|---|---|---|---|---|---|\n");
  int failures = 0;
  auto file_all = [&](const sbm::reports_actor& target, int level) {
    auto d = sys.spawn(driver, target, level, per_level);
    double seconds = 0;
    self->request(d, caf::infinite, sbm::get_atom::value, level)
      .receive(
        [&](double s, int refusals) {
          seconds = s;
          failures += refusals;
        },
        [&](caf::error& e) {
          std::cerr << "driver failed: " << to_string(e) << "\n";
          failures += per_level;
        });
    anon_send_exit(d, caf::exit_reason::user_shutdown);
    return per_level / seconds;
  };
  long held_open = 0;  // sagas of the held-back runs, open for good
  for (int level : levels) {
    const double raw_rate = per_level / raw_inserts(raw_url, level, per_level, token_a, token_b);
    const auto t0 = clock_type::now();
    const double running_rate = file_all(reports, level);
    while (sagas_open() > held_open && clock_type::now() - t0 < 600s) std::this_thread::sleep_for(20ms);
    const double sagas_s = std::chrono::duration<double>(clock_type::now() - t0).count();
    const long open_before = sagas_open();
    const double held_rate = file_all(held, level);
    // The held sagas stay open; they are not this run's concern beyond their count.
    held_open = sagas_open();
    if (held_open - open_before != per_level) ++failures;
    std::printf("| %d | %.0f | %.0f | %.2fx | %.0f | %.2fx | %.1f |\n", level, raw_rate, running_rate,
                running_rate / raw_rate, held_rate, held_rate / raw_rate, sagas_s);
  }
  std::printf("\n%d reports per level over %d speakers; PostgreSQL pool of %u connections for SBM, one "
              "connection per concurrent writer for raw; refusals or failures: %d\n",
              per_level, speakers, pg.pool_size, failures);
  for (auto a : {caf::actor_cast<caf::actor>(reports), caf::actor_cast<caf::actor>(held),
                 caf::actor_cast<caf::actor>(index),
                 caf::actor_cast<caf::actor>(shard), caf::actor_cast<caf::actor>(scheduler),
                 caf::actor_cast<caf::actor>(bus), caf::actor_cast<caf::actor>(instanote),
                 caf::actor_cast<caf::actor>(db)})
    anon_send_exit(a, caf::exit_reason::user_shutdown);
  return failures == 0 ? 0 : 1;
}

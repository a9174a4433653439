// The verification sessions supervisor and its session actors against real servers: PostgreSQL
// (SBM's own, migrated), an InstaNote database, and the real actors a session reaches (InstaNote
// jobs actor, pattern index and correction actor, speakers shard, reports actor and saga).
// Start, marks and their refusal, a supervisor stopped and started again (the node restart: the
// session is activated from PostgreSQL), one submit moving the weight in tenths, the second 409;
// the bound on active sessions; InstaNote down with nothing cached answers unavailable at once.
#include <gtest/gtest.h>
#include <pqxx/pqxx>

#include <chrono>
#include <string>
#include <vector>

#include "actors/connections/connections.hpp"
#include "actors/events/events.hpp"
#include "actors/instanote/jobs_actor.hpp"
#include "actors/patterns/correction.hpp"
#include "actors/patterns/patterns.hpp"
#include "actors/reports/core/fernet.hpp"
#include "actors/reports/reports.hpp"
#include "actors/speakers/speakers.hpp"
#include "actors/verification/sessions.hpp"
#include "actors/verification/verification.hpp"
#include "messages/errors.hpp"
#include "runtime/migrations/all_migrations.hpp"
#include "tests/support/actor_test.hpp"
#include "tests/support/servers.hpp"

namespace {

using namespace std::chrono_literals;
using sbm::errc;

constexpr std::int64_t day0_ms = 1793491200000;  // 2026-11-01T00:00:00Z
constexpr std::int64_t hour_ms = 3600 * 1000;

// InstaNote's draft_jobs with 4 drafts of spk-1, each with the same dropped unit.
void seed(const std::string& url) {
  pqxx::connection c{url};
  pqxx::work tx{c};
  tx.exec("CREATE TABLE public.draft_jobs (job_id text PRIMARY KEY, speaker_id text NOT NULL, "
          "client_id text NOT NULL, draft_text text NOT NULL, audio_metadata jsonb NOT NULL "
          "DEFAULT '{}', error_types text[] NOT NULL DEFAULT '{}', source_system text NOT NULL "
          "DEFAULT 'instanote', created_at timestamptz NOT NULL)");
  for (int i = 0; i < 4; ++i)
    tx.exec_params("INSERT INTO public.draft_jobs (job_id, speaker_id, client_id, draft_text, created_at) "
                   "VALUES ($1, 'spk-1', 'clinic-1', $2, to_timestamp($3::bigint / 1000.0))",
                   "job-" + std::to_string(i),
                   "Continue metoprolol 25 twice daily. Patient " + std::to_string(i) + " is stable.",
                   day0_ms + i * hour_ms);
  tx.commit();
}

class VerificationSessions : public sbm::test::io_actor_test {
 protected:
  void SetUp() override {
    auto& servers = sbm::test::servers::shared();
    sbm::connections::postgres_settings s;
    s.url = servers.fresh_database();
    s.pool_size = 3;
    s.probe_interval = 100ms;
    s.request_timeout = 5s;
    s.migrations = sbm::schema::all_migrations();
    db = stop_at_end(sbm::connections::spawn_postgres(sys, std::move(s)));
    ASSERT_TRUE(sbm::test::eventually([&] {
      auto st = ask_within<sbm::dependency_status>(2s, db, sbm::status_atom::value);
      return st && st->state == "up";
    }));
    instanote_url = servers.fresh_database();
    seed(instanote_url);
    instanote = instanote_for(instanote_url);
    bus = stop_at_end(sbm::events::spawn_event_bus(sys));
    scheduler = stop_at_end(sbm::verification::spawn_verification_scheduler(sys, db, bus));
    sbm::speakers::speakers_settings sp;
    sp.db = db;
    sp.bus = bus;
    sp.relay_interval = 100ms;
    shard = stop_at_end(sbm::speakers::spawn_speakers(sys, std::move(sp)));
    auto v = ask<sbm::speaker_view>(shard, sbm::register_atom::value,
                                    sbm::speaker_registration{"spk-1", "clinic-1", "Dr One", "admin"});
    ASSERT_TRUE(v) << sys.render(v.error());
    sbm::patterns::pattern_index_settings p;
    p.db = db;
    index = stop_at_end(sbm::patterns::spawn_pattern_index(sys, std::move(p)));
    sbm::patterns::correction_settings k;
    k.index = index;
    corrections = stop_at_end(sbm::patterns::spawn_correction_actor(sys, std::move(k)));
    sbm::reports::reports_settings r;
    r.db = db;
    r.speakers = shard;
    r.patterns = index;
    r.schedule = scheduler;
    r.fernet_key = sbm::reports::fernet::generate_key();
    r.relay_interval = 50ms;
    r.claim = 500ms;
    reports = stop_at_end(sbm::reports::spawn_reports(sys, std::move(r)));
    report_id = file_rectified_report();
    ASSERT_GT(report_id, 0);
  }

  sbm::postgres_actor instanote_for(const std::string& url) {
    auto s = sbm::connections::instanote_defaults(url);
    s.probe_interval = 100ms;
    s.request_timeout = 5s;
    s.connect_timeout = 1s;
    s.retry.max_retries = 0;
    return stop_at_end(sbm::connections::spawn_postgres(sys, std::move(s)));
  }

  sbm::instanote_actor jobs_for(sbm::postgres_actor in) {
    sbm::instanote::jobs_settings j;
    j.instanote = std::move(in);  // no Redis: nothing is cached
    j.instanote_timeout = 5s;
    return stop_at_end(sbm::instanote::spawn_jobs(sys, std::move(j)));
  }

  sbm::verification_sessions_actor supervisor(std::uint32_t max_active = 100,
                                              sbm::instanote_actor jobs = {}) {
    sbm::verification::sessions_settings v;
    v.db = db;
    v.jobs = jobs ? jobs : jobs_for(instanote);
    v.corrections = corrections;
    v.speakers = shard;
    v.reports = reports;
    v.max_active = max_active;
    v.idle_timeout = 1h;
    return stop_at_end(sbm::verification::spawn_sessions(sys, std::move(v)));
  }

  sbm::error_report report(std::int64_t id) {
    auto r = ask<sbm::error_report>(reports, sbm::get_atom::value, id);
    EXPECT_TRUE(r) << sys.render(r.error());
    return r ? *r : sbm::error_report{};
  }

  void saga_done(std::int64_t id) {
    ASSERT_TRUE(sbm::test::eventually([&] { return report(id).saga_step == "done"; }));
  }

  std::int64_t file_rectified_report() {
    sbm::report_submission s;
    s.speaker_id = "spk-1";
    s.client_id = "clinic-1";
    s.job_id = "job-0";
    s.original_text = "metoprolol 25";
    s.corrected_text = "metoprolol 25 mg";
    s.error_categories = {"dosage"};
    s.audio_quality = "good";
    s.speaker_clarity = "clear";
    s.background_noise = "low";
    s.actor = "qa-1";
    auto receipt = ask<sbm::report_receipt>(reports, sbm::file_atom::value, s);
    EXPECT_TRUE(receipt && receipt->outcome == sbm::report_receipt::accepted)
      << (receipt ? receipt->reason : sys.render(receipt.error()));
    if (!receipt || receipt->outcome != sbm::report_receipt::accepted) return 0;
    const auto id = receipt->report.id;
    saga_done(id);
    auto v = ask<sbm::error_report>(reports, sbm::update_atom::value,
                                    sbm::report_status_change{id, "rectified", "qa-1", {}});
    EXPECT_TRUE(v) << sys.render(v.error());
    saga_done(id);
    return id;
  }

  sbm::session_start start_request() {
    sbm::session_start s;
    s.speaker_id = "spk-1";
    s.from_ms = day0_ms;
    s.to_ms = day0_ms + 24 * hour_ms;
    s.max_jobs = 3;
    s.owner = "qa-1";
    return s;
  }

  // The pattern index loads from PostgreSQL after its start: a start may meet it loading.
  sbm::session_view started(const sbm::verification_sessions_actor& sup) {
    caf::expected<sbm::session_view> got{caf::error{}};
    EXPECT_TRUE(sbm::test::eventually([&] {
      got = ask<sbm::session_view>(sup, sbm::open_atom::value, start_request());
      return static_cast<bool>(got);
    })) << sys.render(got.error());
    return got ? *got : sbm::session_view{};
  }

  std::string instanote_url;
  sbm::postgres_actor db;
  sbm::postgres_actor instanote;
  sbm::event_bus_actor bus;
  sbm::verification_scheduler_actor scheduler;
  sbm::speaker_shard_actor shard;
  sbm::pattern_index_actor index;
  sbm::correction_actor corrections;
  sbm::reports_actor reports;
  std::int64_t report_id = 0;
};

TEST_F(VerificationSessions, StartMarkRestartSubmitOnce) {
  auto sup = supervisor();
  const auto s = started(sup);
  ASSERT_EQ(s.status, "open");
  ASSERT_EQ(s.jobs.size(), 3u);
  std::vector<std::int64_t> ids;
  for (const auto& j : s.jobs) {
    ASSERT_EQ(j.draft.corrections.size(), 1u) << j.draft.corrected_text;
    EXPECT_EQ(j.draft.corrections[0].pattern_id, report_id);
    EXPECT_NE(j.draft.corrected_text.find("metoprolol 25 mg twice"), std::string::npos);
    ids.push_back(j.correction_ids.at(0));
  }

  // A correction the session does not hold is refused, naming the field; nothing is saved.
  sbm::session_marks bad{{}, s.id, {{ids[0], "rectified"}, {999, "rectified"}}, {}};
  auto refused = ask<sbm::marks_receipt>(sup, sbm::marks_atom::value, bad);
  ASSERT_TRUE(refused) << sys.render(refused.error());
  EXPECT_EQ(refused->outcome, sbm::marks_receipt::unprocessable);
  EXPECT_EQ(refused->field, "marks[1].correction_id");

  // Two rectified, one not: +1 +1 -1 tenths from 0.6 is 0.7, one step at a time.
  sbm::session_marks marks{{}, s.id, {{ids[0], "rectified"}, {ids[1], "rectified"}, {ids[2], "not_rectified"}},
                           {{s.jobs[0].job.job_id, 1}}};
  auto saved = ask<sbm::marks_receipt>(sup, sbm::marks_atom::value, marks);
  ASSERT_TRUE(saved) << sys.render(saved.error());
  ASSERT_EQ(saved->outcome, sbm::marks_receipt::accepted) << saved->reason;
  EXPECT_EQ(saved->session.marks.size(), 3u);

  // The supervisor and its sessions stop, as on a node restart; a new one reads the session back.
  caf::anon_send_exit(sup, caf::exit_reason::user_shutdown);
  auto again = supervisor();
  auto read = ask<sbm::session_view>(again, sbm::get_atom::value, sbm::session_ref{{}, s.id});
  ASSERT_TRUE(read) << sys.render(read.error());
  EXPECT_EQ(read->status, "open");
  ASSERT_EQ(read->marks.size(), 3u);
  EXPECT_EQ(read->marks[2].correction_id, ids[2]);
  EXPECT_TRUE(read->jobs[0].has_residual);
  EXPECT_EQ(read->jobs[0].residual_errors, 1u);
  auto stats = ask<sbm::session_stats>(again, sbm::status_atom::value);
  ASSERT_TRUE(stats);
  EXPECT_EQ(stats->activations, 1u);

  EXPECT_DOUBLE_EQ(report(report_id).weight, 0.6);
  auto done = ask<sbm::session_view>(again, sbm::submit_atom::value, sbm::session_submit{{}, s.id, "qa-1", {}});
  ASSERT_TRUE(done) << sys.render(done.error());
  EXPECT_EQ(done->status, "submitted");
  EXPECT_TRUE(done->effects_done);
  ASSERT_EQ(done->outcome.weights.size(), 1u);
  EXPECT_DOUBLE_EQ(done->outcome.weights[0].weight, 0.7);
  EXPECT_EQ(done->outcome.weights[0].status, "not_rectified");  // the last verdict in commit order
  EXPECT_DOUBLE_EQ(report(report_id).weight, 0.7);
  EXPECT_EQ(done->outcome.jobs_sampled, std::vector<std::string>{s.jobs[0].job.job_id});
  auto speaker = ask<sbm::speaker_view>(shard, sbm::get_atom::value, std::string{"spk-1"});
  ASSERT_TRUE(speaker);
  EXPECT_EQ(speaker->samples_total, 1u);

  // Once only: a second submit (no key) is a conflict and moves nothing.
  auto second = ask<sbm::session_view>(again, sbm::submit_atom::value, sbm::session_submit{{}, s.id, "qa-1", {}});
  ASSERT_FALSE(second);
  EXPECT_EQ(sbm::code_of(second.error()), errc::conflict);
  EXPECT_DOUBLE_EQ(report(report_id).weight, 0.7);
  // The reports family applies one session's verdicts once, whoever asks again.
  auto replayed = ask<sbm::verdicts_applied>(
    reports, sbm::verify_atom::value,
    sbm::verification_verdicts{s.id, "spk-1", "qa-1", {{report_id, "rectified"}}, {}});
  ASSERT_TRUE(replayed) << sys.render(replayed.error());
  EXPECT_DOUBLE_EQ(report(report_id).weight, 0.7);
}

TEST_F(VerificationSessions, WeightsClampAtOneStepByStep) {
  // 0.6 and five rectified steps: 0.7, 0.8, 0.9, 1.0, 1.0; then one not_rectified: 0.9.
  std::vector<sbm::pattern_verdict> v(5, {report_id, "rectified"});
  v.push_back({report_id, "not_rectified"});
  auto applied = ask<sbm::verdicts_applied>(reports, sbm::verify_atom::value,
                                            sbm::verification_verdicts{77, "spk-1", "qa-1", v, {}});
  ASSERT_TRUE(applied) << sys.render(applied.error());
  ASSERT_EQ(applied->weights.size(), 1u);
  EXPECT_DOUBLE_EQ(applied->weights[0].weight, 0.9);
  // Another speaker's verdicts never touch this speaker's report.
  auto foreign = ask<sbm::verdicts_applied>(reports, sbm::verify_atom::value,
                                            sbm::verification_verdicts{78, "spk-2", "qa-1", v, {}});
  ASSERT_TRUE(foreign) << sys.render(foreign.error());
  EXPECT_TRUE(foreign->weights.empty());
  EXPECT_DOUBLE_EQ(report(report_id).weight, 0.9);
}

TEST_F(VerificationSessions, ActiveSessionsAreBounded) {
  auto sup = supervisor(1);
  started(sup);
  auto second = ask<sbm::session_view>(sup, sbm::open_atom::value, start_request());
  ASSERT_FALSE(second);
  EXPECT_EQ(sbm::code_of(second.error()), errc::overloaded);
  EXPECT_TRUE(sbm::retry_after_of(second.error()));
}

TEST_F(VerificationSessions, InstanoteDownWithNothingCachedIsUnavailableAtOnce) {
  auto dead = instanote_for("postgresql://sbm@127.0.0.1:1/instanote");
  auto sup = supervisor(100, jobs_for(dead));
  const auto began = std::chrono::steady_clock::now();
  auto got = ask<sbm::session_view>(sup, sbm::open_atom::value, start_request());
  ASSERT_FALSE(got);
  EXPECT_EQ(sbm::code_of(got.error()), errc::unavailable) << sys.render(got.error());
  EXPECT_TRUE(sbm::retry_after_of(got.error()));
  EXPECT_LT(std::chrono::steady_clock::now() - began, 10s);
}

}  // namespace

// The verification sessions supervisor and its session actors against real servers: PostgreSQL
// (SBM's own, migrated), an InstaNote database, and the real actors a session reaches (InstaNote
// jobs actor, pattern index and correction actor, speakers shard, reports actor and saga).
// Start, marks and their refusal, a supervisor stopped and started again (the node restart: the
// session is activated from PostgreSQL), one submit moving the weight in tenths, the second 409;
// the bound on active sessions; InstaNote down with nothing cached answers unavailable at once.
// Issue 21: the drafts rest as a Fernet token under the notes' key (and rows from before that, plain
// jsonb, still read); past verification.draft-retention closed sessions lose their drafts while
// the session, its marks and its outcome stay.
#include <gtest/gtest.h>
#include <pqxx/pqxx>

#include <chrono>
#include <string>
#include <tuple>
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
#include "tests/support/postgres_actor_test.hpp"
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

class VerificationSessions : public sbm::test::postgres_actor_test {
 protected:
  void SetUp() override {
    pool_size = 3;
    postgres_actor_test::SetUp();
    if (HasFatalFailure()) return;
    instanote_url = sbm::test::servers::shared().fresh_database();
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
    r.fernet_key = key;
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
                                              sbm::instanote_actor jobs = {},
                                              std::chrono::milliseconds draft_retention = 0ms,
                                              std::string content_key = {}) {
    sbm::verification::sessions_settings v;
    v.content_key = content_key.empty() ? key : content_key;
    v.draft_retention = draft_retention;
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

  const std::string key = sbm::reports::fernet::generate_key();  // the notes' key, the drafts' too
  // A copy of session `of` as nodes before verification/005 wrote it: `content` as plain jsonb, no
  // token. Answers its id (0 if it could not be written).
  std::int64_t legacy_copy(std::int64_t of, const std::string& plain, const std::string& status) {
    auto rows = sql("INSERT INTO verification.sessions (speaker_id, client_id, owner, status, from_at, to_at, "
                    "max_jobs, source, content, idle_timeout_ms, expires_at) SELECT speaker_id, client_id, owner, "
                    "$3, from_at, to_at, max_jobs, source, $2::jsonb, idle_timeout_ms, expires_at "
                    "FROM verification.sessions WHERE id = $1 RETURNING id",
                    {std::to_string(of), plain, status});
    return rows.size() == 1 && rows[0][0] ? std::stoll(*rows[0][0]) : 0;
  }

  std::string instanote_url;
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

// The drafts as a session shows them: jobs, drafts, corrections and their ids.
void expect_same_drafts(const sbm::session_view& want, const sbm::session_view& got) {
  ASSERT_EQ(got.jobs.size(), want.jobs.size());
  for (std::size_t i = 0; i < want.jobs.size(); ++i) {
    const auto& w = want.jobs[i];
    const auto& g = got.jobs[i];
    EXPECT_EQ(g.job.job_id, w.job.job_id);
    EXPECT_EQ(g.job.original_draft, w.job.original_draft);
    EXPECT_EQ(g.draft.corrected_text, w.draft.corrected_text);
    EXPECT_EQ(g.correction_ids, w.correction_ids);
    EXPECT_EQ(g.words, w.words);
    ASSERT_EQ(g.draft.corrections.size(), w.draft.corrections.size());
    for (std::size_t k = 0; k < w.draft.corrections.size(); ++k) {
      const auto& wc = w.draft.corrections[k];
      const auto& gc = g.draft.corrections[k];
      EXPECT_EQ(std::tie(gc.start, gc.end, gc.from, gc.to, gc.pattern_id, gc.applied, gc.match),
                std::tie(wc.start, wc.end, wc.from, wc.to, wc.pattern_id, wc.applied, wc.match));
      EXPECT_DOUBLE_EQ(gc.confidence, wc.confidence);
    }
  }
}

TEST_F(VerificationSessions, DraftsRestAsAFernetTokenAndReadBack) {
  auto sup = supervisor();
  const auto s = started(sup);
  ASSERT_EQ(s.jobs.size(), 3u);
  const auto id = std::to_string(s.id);
  auto row = sql("SELECT content::text, content_token, content_purged_at FROM verification.sessions "
                 "WHERE id = $1", {id});
  ASSERT_EQ(row.size(), 1u);
  EXPECT_FALSE(row[0][0]) << "the drafts are also kept as plain jsonb";
  EXPECT_FALSE(row[0][2]);
  ASSERT_TRUE(row[0][1]);
  const std::string token = *row[0][1];
  EXPECT_EQ(token.rfind("gAAAAA", 0), 0u) << "not a Fernet token";
  EXPECT_EQ(token.find("metoprolol"), std::string::npos);
  // The notes' format under the notes' key: any Fernet implementation holding it reads the drafts.
  auto plain = sbm::reports::fernet::from_key(key)->decrypt(token);
  ASSERT_TRUE(plain);
  EXPECT_NE(plain->find(s.jobs[0].job.original_draft), std::string::npos);

  // Activated again from its row, as after a node restart: the same drafts and corrections.
  caf::anon_send_exit(sup, caf::exit_reason::user_shutdown);
  auto again = supervisor();
  auto read = ask<sbm::session_view>(again, sbm::get_atom::value, sbm::session_ref{{}, s.id});
  ASSERT_TRUE(read) << sys.render(read.error());
  expect_same_drafts(s, *read);
  EXPECT_EQ(read->drafts_purged_at_ms, 0);

  // A row written before the token existed still reads, drafts and all.
  const auto legacy = legacy_copy(s.id, *plain, "open");
  ASSERT_GT(legacy, 0);
  auto old = ask<sbm::session_view>(again, sbm::get_atom::value, sbm::session_ref{{}, legacy});
  ASSERT_TRUE(old) << sys.render(old.error());
  expect_same_drafts(s, *old);

  // Under another key the token does not read: the session is refused as corrupt, naming the
  // column, never its content.
  caf::anon_send_exit(again, caf::exit_reason::user_shutdown);
  auto other = supervisor(100, {}, 0ms, sbm::reports::fernet::generate_key());
  auto refused = ask<sbm::session_view>(other, sbm::get_atom::value, sbm::session_ref{{}, s.id});
  ASSERT_FALSE(refused);
  EXPECT_EQ(sbm::code_of(refused.error()), errc::internal);
  const auto detail = sbm::detail_of(refused.error());
  EXPECT_NE(detail.find("content_token"), std::string::npos) << detail;
  EXPECT_EQ(detail.find("metoprolol"), std::string::npos) << detail;
}

// Past the retention, closed sessions (expired; submitted with their effects done) lose their
// drafts, token or plain; the session, its marks, residual counts and outcome stay, and so do the
// weights and samples its submit moved. Open sessions, submits whose effects still need the drafts,
// and younger sessions keep theirs.
TEST_F(VerificationSessions, DraftsPastTheRetentionArePurgedAndWhatAuditAndWeightsNeedStays) {
  auto sup = supervisor();
  const auto submitted = started(sup);
  const auto cid = submitted.jobs.at(0).correction_ids.at(0);
  auto saved = ask<sbm::marks_receipt>(
    sup, sbm::marks_atom::value,
    sbm::session_marks{{}, submitted.id, {{cid, "rectified"}}, {{submitted.jobs[0].job.job_id, 1}}});
  ASSERT_TRUE(saved && saved->outcome == sbm::marks_receipt::accepted);
  auto done = ask<sbm::session_view>(sup, sbm::submit_atom::value, sbm::session_submit{{}, submitted.id, "qa-1", {}});
  ASSERT_TRUE(done && done->effects_done);
  const auto expired = started(sup).id;
  const auto open = started(sup).id;
  const auto young = started(sup).id;
  const auto pending = started(sup).id;
  caf::anon_send_exit(sup, caf::exit_reason::user_shutdown);
  auto token = sql("SELECT content_token FROM verification.sessions WHERE id = $1", {std::to_string(open)});
  ASSERT_EQ(token.size(), 1u);
  auto plain = sbm::reports::fernet::from_key(key)->decrypt(token[0][0].value_or(""));
  ASSERT_TRUE(plain);
  const auto old_plain = legacy_copy(open, *plain, "expired");
  ASSERT_GT(old_plain, 0);
  const auto ids = [](std::vector<std::int64_t> v) {
    std::string out;
    for (auto i : v) out += (out.empty() ? "" : ",") + std::to_string(i);
    return "{" + out + "}";
  };
  sql("UPDATE verification.sessions SET status = 'expired' WHERE id = ANY($1::bigint[])", {ids({expired, young})});
  // Submitted but its effects not done (submitted_at NULL keeps the sweep from finishing them).
  sql("UPDATE verification.sessions SET status = 'submitted' WHERE id = $1", {std::to_string(pending)});
  sql("UPDATE verification.sessions SET created_at = now() - interval '3 days' WHERE id <> $1",
      {std::to_string(young)});

  auto purging = supervisor(100, {}, 24h);
  // "t" or "f" twice: the row holds drafts, the row says when they were purged.
  const auto state_of = [&](std::int64_t id) {
    auto r = sql("SELECT (content IS NOT NULL OR content_token IS NOT NULL)::text, "
                 "(content_purged_at IS NOT NULL)::text FROM verification.sessions WHERE id = $1",
                 {std::to_string(id)});
    return r.empty() ? std::string{"no row"} : r[0][0].value_or("?").substr(0, 1) + r[0][1].value_or("?").substr(0, 1);
  };
  ASSERT_TRUE(sbm::test::eventually([&] {
    return state_of(submitted.id) == "ft" && state_of(expired) == "ft" && state_of(old_plain) == "ft";
  }, 20s)) << state_of(submitted.id) << state_of(expired) << state_of(old_plain);
  EXPECT_EQ(state_of(open), "tf");
  EXPECT_EQ(state_of(young), "tf");
  EXPECT_EQ(state_of(pending), "tf");

  auto read = ask<sbm::session_view>(purging, sbm::get_atom::value, sbm::session_ref{{}, submitted.id});
  ASSERT_TRUE(read) << sys.render(read.error());
  EXPECT_EQ(read->status, "submitted");
  EXPECT_TRUE(read->effects_done);
  EXPECT_TRUE(read->jobs.empty());
  EXPECT_GT(read->drafts_purged_at_ms, 0);
  ASSERT_EQ(read->marks.size(), 1u);
  EXPECT_EQ(read->marks[0].correction_id, cid);
  ASSERT_EQ(read->outcome.weights.size(), done->outcome.weights.size());
  EXPECT_DOUBLE_EQ(read->outcome.weights.at(0).weight, done->outcome.weights.at(0).weight);
  EXPECT_EQ(read->outcome.jobs_sampled, done->outcome.jobs_sampled);
  auto residuals = sql("SELECT count(*) FROM verification.session_residuals WHERE session_id = $1",
                       {std::to_string(submitted.id)});
  EXPECT_EQ(residuals.at(0).at(0), caf::optional<std::string>{"1"});
  EXPECT_DOUBLE_EQ(report(report_id).weight, done->outcome.weights.at(0).weight);
  auto speaker = ask<sbm::speaker_view>(shard, sbm::get_atom::value, std::string{"spk-1"});
  ASSERT_TRUE(speaker);
  EXPECT_EQ(speaker->samples_total, 1u);
}

}  // namespace

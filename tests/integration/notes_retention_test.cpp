// The notes-retention actor (reports.notes-retention, issue 21) against a real PostgreSQL: notes of
// reports past the retention lose their Fernet tokens while the reports themselves (and younger
// reports' notes) stay; a batch that fills runs again at once instead of an interval later; a
// retention of 0 spawns nothing; and a database that is down is retried on the interval.
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include "actors/connections/connections.hpp"
#include "actors/reports/notes_retention.hpp"
#include "messages/errors.hpp"
#include "runtime/migrations/all_migrations.hpp"
#include "tests/support/actor_test.hpp"
#include "tests/support/servers.hpp"

namespace {

using namespace std::chrono_literals;
using param = caf::optional<std::string>;

class NotesRetention : public sbm::test::io_actor_test {
 protected:
  void SetUp() override {
    url = sbm::test::servers::shared().fresh_database();
    sbm::connections::postgres_settings s;
    s.url = url;
    s.pool_size = 2;
    s.probe_interval = 100ms;
    s.request_timeout = 5s;
    s.migrations = sbm::schema::all_migrations();
    db = stop_at_end(sbm::connections::spawn_postgres(sys, std::move(s)));
    ASSERT_TRUE(sbm::test::eventually([&] {
      auto st = ask<sbm::dependency_status>(db, sbm::status_atom::value);
      return st && st->state == "up";
    }));
  }

  // A report filed `age` ago with both notes (the tokens are opaque to the purge).
  void report(const std::string& job, const std::string& age) {
    sql("INSERT INTO reports.error_reports (speaker_id, client_id, job_id, original_text, corrected_text,"
        " error_categories, bucket_type, audio_quality, speaker_clarity, background_noise,"
        " number_of_speakers, overlapping_speech, requires_specialized_knowledge,"
        " additional_notes_token, context_notes_token, created_at, updated_at) VALUES ('spk-1', 'c1', '" +
        job + "', 'hyper tension', 'hypertension', '{medical_terminology}', 'low_touch', 'good', 'clear',"
              " 'low', 1, false, false, 'gAAAAA-additional', 'gAAAAA-context', now() - interval '" + age +
        "', now() - interval '" + age + "')");
  }

  // How many reports still hold a note token, and how many reports there are.
  std::pair<int, int> counts() {
    auto rows = sql("SELECT count(*) FILTER (WHERE additional_notes_token IS NOT NULL OR "
                    "context_notes_token IS NOT NULL), count(*) FROM reports.error_reports");
    if (rows.empty()) return {-1, -1};
    return {std::stoi(*rows[0][0]), std::stoi(*rows[0][1])};
  }

  sbm::reports::reports_settings settings(std::chrono::milliseconds retention,
                                          std::chrono::milliseconds interval, std::uint32_t batch) {
    sbm::reports::reports_settings s;
    s.db = db;
    s.db_timeout = 5s;
    s.notes_retention = retention;
    s.notes_purge_interval = interval;
    s.notes_purge_batch = batch;
    return s;
  }

  std::vector<sbm::db_row> sql(std::string text) {
    auto rows = ask<sbm::db_rows>(db, sbm::query_atom::value, sbm::db_statement{std::move(text), {}, -1});
    EXPECT_TRUE(rows) << sys.render(rows.error());
    return rows ? rows->rows : std::vector<sbm::db_row>{};
  }

  std::string url;
  sbm::postgres_actor db;
};

TEST_F(NotesRetention, NotesPastTheRetentionArePurgedAndTheReportsStay) {
  report("old-1", "3 days");
  report("old-2", "2 days");
  report("young", "1 hour");
  ASSERT_EQ(counts(), std::make_pair(3, 3));
  stop_at_end(sbm::reports::spawn_notes_retention(sys, settings(24h, 1h, 1000)));
  ASSERT_TRUE(sbm::test::eventually([&] { return counts().first == 1; }, 20s)) << counts().first;
  EXPECT_EQ(counts(), std::make_pair(1, 3));
  auto young = sql("SELECT additional_notes_token, context_notes_token FROM reports.error_reports "
                   "WHERE job_id = 'young'");
  ASSERT_EQ(young.size(), 1u);
  EXPECT_EQ(young[0][0], param{"gAAAAA-additional"});
  EXPECT_EQ(young[0][1], param{"gAAAAA-context"});
  auto old = sql("SELECT count(*) FROM reports.error_reports WHERE job_id LIKE 'old-%' AND "
                 "original_text = 'hyper tension' AND additional_notes_token IS NULL AND "
                 "context_notes_token IS NULL AND updated_at > now() - interval '1 minute'");
  EXPECT_EQ(old[0][0], param{"2"});
}

TEST_F(NotesRetention, AFullBatchRunsAgainAtOnceNotAnIntervalLater) {
  for (int i = 0; i < 7; ++i) report("old-" + std::to_string(i), "2 days");
  // Batches of 2 and an interval of an hour: all seven are purged within the wait only if every
  // full batch is followed by the next one straight away.
  stop_at_end(sbm::reports::spawn_notes_retention(sys, settings(24h, 1h, 2)));
  ASSERT_TRUE(sbm::test::eventually([&] { return counts().first == 0; }, 20s)) << counts().first;
  EXPECT_EQ(counts().second, 7);
}

TEST_F(NotesRetention, ARetentionOfZeroKeepsNotesAndSpawnsNothing) {
  report("old", "400 days");
  auto none = sbm::reports::spawn_notes_retention(sys, settings(0ms, 100ms, 1000));
  EXPECT_FALSE(none);
  EXPECT_EQ(counts(), std::make_pair(1, 1));
}

// While its statement fails (here its table is renamed away) the purge is retried on the
// interval, and it purges once it can.
TEST_F(NotesRetention, AFailedPurgeIsRetriedOnTheInterval) {
  report("old", "2 days");
  sql("ALTER TABLE reports.error_reports RENAME TO error_reports_away");
  auto rollbacks = [&] {
    auto r = sql("SELECT xact_rollback FROM pg_stat_database WHERE datname = current_database()");
    return r.empty() ? -1L : std::stol(*r[0][0]);
  };
  const long before = rollbacks();
  stop_at_end(sbm::reports::spawn_notes_retention(sys, settings(24h, 200ms, 1000)));
  // The failed attempt is on record in PostgreSQL's statistics (flushed within a second or so).
  ASSERT_TRUE(sbm::test::eventually([&] { return rollbacks() > before; }, 20s));
  sql("ALTER TABLE reports.error_reports_away RENAME TO error_reports");
  ASSERT_TRUE(sbm::test::eventually([&] { return counts().first == 0; }, 20s)) << counts().first;
  EXPECT_EQ(counts().second, 1);
}

}  // namespace

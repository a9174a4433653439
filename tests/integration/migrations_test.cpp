// The migration runner against a real PostgreSQL, and the supervisor's reaction to a database it
// must refuse. Each test works in a database of its own.
#include <gtest/gtest.h>

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <pqxx/pqxx>
#include <string>
#include <thread>
#include <vector>

#include "actors/connections/connections.hpp"
#include "messages/errors.hpp"
#include "runtime/migrations/migrations.hpp"
#include "tests/support/actor_test.hpp"
#include "tests/support/servers.hpp"
#ifdef SBM_HAVE_SCHEMA
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "runtime/migrations/all_migrations.hpp"
#endif

namespace {

using namespace std::chrono_literals;
using sbm::migrations::migration;

std::vector<migration> demo_migrations() {
  return {
      {"alpha", 1, "create_items", "CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL);"},
      {"alpha", 2, "add_note", "ALTER TABLE items ADD COLUMN note text;\n"
                               "INSERT INTO items (id, name) VALUES (1, 'seed');"},
      {"beta", 1, "create_log", "CREATE TABLE log (line text)"},
  };
}

long long scalar(pqxx::connection& c, const std::string& sql) {
  pqxx::nontransaction tx{c};
  return tx.exec(sql)[0][0].as<long long>();
}

// Each list applied by a thread of its own, all at once, as nodes starting together do; every
// call must succeed. Returns how many migrations they applied in all.
int apply_at_once(const std::string& url, const std::vector<std::vector<migration>>& lists) {
  std::vector<sbm::migrations::outcome> outcomes(lists.size());
  std::vector<std::thread> threads;
  for (std::size_t i = 0; i < lists.size(); ++i)
    threads.emplace_back([&, i] {
      pqxx::connection c{url};
      outcomes[i] = sbm::migrations::apply(c, lists[i]);
    });
  for (auto& t : threads)
    t.join();
  int applied = 0;
  for (const auto& out : outcomes) {
    EXPECT_TRUE(out.error.empty()) << out.error;
    applied += out.applied;
  }
  return applied;
}

TEST(Migrations, ChecksumIsHexSha256) {
  EXPECT_EQ(sbm::migrations::checksum("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_NE(sbm::migrations::checksum("abc "), sbm::migrations::checksum("abc"));
}

TEST(Migrations, ApplyingTwiceIsIdempotent) {
  pqxx::connection c{sbm::test::servers::shared().fresh_database()};
  auto first = sbm::migrations::apply(c, demo_migrations());
  EXPECT_TRUE(first.error.empty()) << first.error;
  EXPECT_EQ(first.applied, 3);
  auto second = sbm::migrations::apply(c, demo_migrations());
  EXPECT_TRUE(second.error.empty()) << second.error;
  EXPECT_EQ(second.applied, 0);
  EXPECT_EQ(scalar(c, "SELECT count(*) FROM sbm_meta.schema_migrations"), 3);
  // Unqualified names land in the migration's own schema.
  EXPECT_EQ(scalar(c, "SELECT count(*) FROM alpha.items WHERE note IS NULL"), 1);
  EXPECT_EQ(scalar(c, "SELECT count(*) FROM beta.log"), 0);
}

TEST(Migrations, NewMigrationsApplyOnTopOfOldOnes) {
  pqxx::connection c{sbm::test::servers::shared().fresh_database()};
  auto all = demo_migrations();
  std::vector<migration> older{all[0], all[2]};
  EXPECT_EQ(sbm::migrations::apply(c, older).applied, 2);
  auto newer = sbm::migrations::apply(c, all);
  EXPECT_TRUE(newer.error.empty()) << newer.error;
  EXPECT_EQ(newer.applied, 1);
}

TEST(Migrations, ConcurrentAppliersDoNotFail) {
  const auto url = sbm::test::servers::shared().fresh_database();
  const auto demo = demo_migrations();
  EXPECT_EQ(apply_at_once(url, {demo, demo, demo, demo}), 3) << "each migration must be applied exactly once";
  pqxx::connection c{url};
  EXPECT_EQ(scalar(c, "SELECT count(*) FROM alpha.items"), 1);
}

// A contract step: it removes what the demo's second migration added.
migration contract_step() {
  return {"alpha", 3, "drop_note", "-- Nothing reads note any more.\n-- sbm:contract\nALTER TABLE items DROP COLUMN note;"};
}

TEST(Migrations, ContractStepsAreMarkedAtTheStartOfALine) {
  EXPECT_TRUE(sbm::migrations::is_contract(contract_step()));
  EXPECT_TRUE(sbm::migrations::is_contract({"a", 1, "x", "-- sbm:contract\nDROP TABLE t"}));
  EXPECT_FALSE(sbm::migrations::is_contract({"a", 1, "x", "CREATE TABLE t (x int); -- sbm:contract"}));
  for (const auto& m : demo_migrations())
    EXPECT_FALSE(sbm::migrations::is_contract(m)) << m.name;
}

// A rolling upgrade: the new build's first node applied an expand step, and the old build's nodes
// keep running on that database (a node restarted on the old build too).
TEST(Migrations, ExpandStepsOfANewerSbmAreRunBeside) {
  pqxx::connection c{sbm::test::servers::shared().fresh_database()};
  ASSERT_EQ(sbm::migrations::apply(c, demo_migrations()).applied, 3);
  auto all = demo_migrations();
  auto older = sbm::migrations::apply(c, {all[0], all[2]});
  EXPECT_TRUE(older.error.empty()) << older.error;
  EXPECT_FALSE(older.too_new);
  EXPECT_EQ(older.applied, 0);
  EXPECT_EQ(older.ahead, std::vector<std::string>{"alpha/002_add_note"});

  // A schema (a family) the older code does not know at all is an expand step too.
  auto without_beta = sbm::migrations::apply(c, {all[0], all[1]});
  EXPECT_TRUE(without_beta.error.empty()) << without_beta.error;
  EXPECT_EQ(without_beta.ahead, std::vector<std::string>{"beta/001_create_log"});
  EXPECT_EQ(scalar(c, "SELECT count(*) FROM sbm_meta.schema_migrations"), 3);
}

TEST(Migrations, AContractStepOfANewerSbmIsTooNew) {
  pqxx::connection c{sbm::test::servers::shared().fresh_database()};
  auto newer = demo_migrations();
  newer.push_back(contract_step());
  ASSERT_EQ(sbm::migrations::apply(c, newer).applied, 4);
  EXPECT_EQ(scalar(c, "SELECT count(*) FROM sbm_meta.schema_migrations WHERE contract"), 1);
  auto older = sbm::migrations::apply(c, demo_migrations());
  EXPECT_TRUE(older.too_new);
  EXPECT_NE(older.error.find("alpha/003_drop_note"), std::string::npos) << older.error;
  EXPECT_EQ(older.applied, 0);
  // The build that shipped it (and any later one) runs on.
  auto same = sbm::migrations::apply(c, newer);
  EXPECT_TRUE(same.error.empty()) << same.error;
  EXPECT_TRUE(same.ahead.empty());
}

TEST(Migrations, AForkedHistoryIsRefused) {
  pqxx::connection c{sbm::test::servers::shared().fresh_database()};
  auto all = demo_migrations();
  ASSERT_EQ(sbm::migrations::apply(c, {all[0], {"alpha", 3, "elsewhere", "CREATE TABLE other (x int)"}}).applied, 2);
  auto out = sbm::migrations::apply(c, all);
  EXPECT_TRUE(out.checksum_mismatch);
  EXPECT_NE(out.error.find("alpha/002_add_note"), std::string::npos) << out.error;
  EXPECT_NE(out.error.find("forked"), std::string::npos) << out.error;
  EXPECT_EQ(out.applied, 0);
}

// Old and new builds started at once: each migration is applied once (the advisory lock), and
// neither fails because of the other.
TEST(Migrations, OldAndNewBuildsStartingAtOnceApplyEachStepOnce) {
  const auto url = sbm::test::servers::shared().fresh_database();
  auto newer = demo_migrations();
  newer.push_back({"alpha", 3, "add_tag", "ALTER TABLE items ADD COLUMN tag text"});
  const auto older = demo_migrations();
  EXPECT_EQ(apply_at_once(url, {older, newer, older, newer, older, newer}), 4);
  pqxx::connection c{url};
  EXPECT_EQ(scalar(c, "SELECT count(*) FROM sbm_meta.schema_migrations"), 4);
}

TEST(Migrations, AFolderReadsLikeTheFamiliesSchemaFolders) {
  namespace fs = std::filesystem;
  const auto dir = fs::temp_directory_path() / ("sbm-migrations-" + std::to_string(::getpid()));
  fs::create_directories(dir / "speakers");
  std::ofstream{dir / "speakers" / "099_add_upgrade_note.sql", std::ios::binary} << "SELECT 1;\n";
  std::ofstream{dir / "speakers" / "010_earlier.sql", std::ios::binary} << "SELECT 2;";
  auto read = sbm::migrations::read_folder(dir.string());
  ASSERT_EQ(read.size(), 2u);
  EXPECT_EQ(read[0].version, 10);
  EXPECT_EQ(read[1].schema, "speakers");
  EXPECT_EQ(read[1].version, 99);
  EXPECT_EQ(read[1].name, "add_upgrade_note");
  EXPECT_EQ(read[1].sql, "SELECT 1;\n");
  std::ofstream{dir / "speakers" / "notes.txt"} << "x";
  EXPECT_THROW(sbm::migrations::read_folder(dir.string()), std::runtime_error);
  fs::remove_all(dir);
}

TEST(Migrations, ChangedAppliedMigrationIsRefused) {
  pqxx::connection c{sbm::test::servers::shared().fresh_database()};
  ASSERT_EQ(sbm::migrations::apply(c, demo_migrations()).applied, 3);
  auto edited = demo_migrations();
  edited[0].sql += " -- tweaked";
  edited.push_back({"beta", 2, "more", "CREATE TABLE more (x int)"});
  auto out = sbm::migrations::apply(c, edited);
  EXPECT_TRUE(out.checksum_mismatch);
  EXPECT_FALSE(out.too_new);
  EXPECT_NE(out.error.find("alpha/001_create_items"), std::string::npos) << out.error;
  EXPECT_EQ(out.applied, 0) << "nothing is applied on top of a changed history";
  EXPECT_EQ(scalar(c, "SELECT count(*) FROM information_schema.tables WHERE table_name = 'more'"), 0);
}

TEST(Migrations, FailingMigrationKeepsEarlierOnesAndRecordsNothingForItself) {
  pqxx::connection c{sbm::test::servers::shared().fresh_database()};
  std::vector<migration> list{
      {"alpha", 1, "good", "CREATE TABLE good (x int)"},
      {"alpha", 2, "bad", "CREATE TABLE half (x int); CREATE TABLE broken (x nosuchtype)"},
  };
  auto out = sbm::migrations::apply(c, list);
  EXPECT_EQ(out.applied, 1);
  EXPECT_NE(out.error.find("alpha/002_bad"), std::string::npos) << out.error;
  EXPECT_FALSE(out.too_new);
  EXPECT_EQ(scalar(c, "SELECT count(*) FROM sbm_meta.schema_migrations"), 1);
  EXPECT_EQ(scalar(c, "SELECT count(*) FROM information_schema.tables WHERE table_name = 'half'"), 0)
      << "a failed migration must leave nothing behind";
}

TEST(Migrations, InvalidListsAreRejectedBeforeTouchingTheDatabase) {
  pqxx::connection c{sbm::test::servers::shared().fresh_database()};
  auto duplicate = sbm::migrations::apply(
      c, {{"alpha", 1, "a", "SELECT 1"}, {"alpha", 1, "b", "SELECT 1"}});
  EXPECT_NE(duplicate.error.find("share a version"), std::string::npos) << duplicate.error;
  auto bad_schema = sbm::migrations::apply(c, {{"Alpha; DROP", 1, "a", "SELECT 1"}});
  EXPECT_FALSE(bad_schema.error.empty());
  EXPECT_EQ(scalar(c, "SELECT count(*) FROM information_schema.schemata WHERE schema_name = 'sbm_meta'"), 0);
}

// What `sbm migrate --show` prints: read without changing the database, and the same verdict
// apply() would reach.
TEST(Migrations, InspectListsAppliedAndPendingAndChangesNothing) {
  using state = sbm::migrations::step::state;
  pqxx::connection c{sbm::test::servers::shared().fresh_database()};
  auto all = demo_migrations();
  auto fresh = sbm::migrations::inspect(c, all);
  EXPECT_TRUE(fresh.verdict.error.empty()) << fresh.verdict.error;
  ASSERT_EQ(fresh.steps.size(), 3u);
  for (const auto& s : fresh.steps)
    EXPECT_EQ(s.status, state::pending) << s.schema << s.version;
  EXPECT_EQ(scalar(c, "SELECT count(*) FROM information_schema.schemata WHERE schema_name = 'sbm_meta'"), 0)
      << "inspecting a fresh database must not create the bookkeeping";

  ASSERT_EQ(sbm::migrations::apply(c, {all[0], all[2]}).applied, 2);
  auto partly = sbm::migrations::inspect(c, all);
  ASSERT_EQ(partly.steps.size(), 3u);
  EXPECT_EQ(partly.steps[0].status, state::applied);
  EXPECT_EQ(partly.steps[0].applied_at.size(), 20u) << partly.steps[0].applied_at;  // 2026-12-06T18:00:00Z
  EXPECT_EQ(partly.steps[1].status, state::pending);
  EXPECT_TRUE(partly.steps[1].applied_at.empty());
  EXPECT_EQ(partly.steps[2].schema, "beta");
  EXPECT_EQ(partly.steps[2].status, state::applied);
  EXPECT_TRUE(partly.verdict.error.empty());

  auto older = sbm::migrations::inspect(c, {all[0]});
  EXPECT_TRUE(older.verdict.error.empty()) << older.verdict.error;
  EXPECT_EQ(older.verdict.ahead, std::vector<std::string>{"beta/001_create_log"});
  ASSERT_EQ(older.steps.size(), 2u);
  EXPECT_EQ(older.steps[1].status, state::unknown_to_code);

  auto edited = all;
  edited[0].sql += " -- tweaked";
  auto differs = sbm::migrations::inspect(c, edited);
  EXPECT_TRUE(differs.verdict.checksum_mismatch);
  EXPECT_EQ(differs.steps[0].status, state::differs);
  EXPECT_EQ(scalar(c, "SELECT count(*) FROM sbm_meta.schema_migrations"), 2) << "inspect applies nothing";
}

class MigratingSupervisor : public sbm::test::io_actor_test {};

TEST_F(MigratingSupervisor, TooNewDatabaseIsFatal) {
  const auto url = sbm::test::servers::shared().fresh_database();
  {
    pqxx::connection c{url};
    auto newer = demo_migrations();
    newer.push_back(contract_step());
    ASSERT_EQ(sbm::migrations::apply(c, newer).applied, 4);
  }
  sbm::connections::postgres_settings settings;
  settings.url = url;
  settings.probe_interval = 100ms;
  settings.migrations = demo_migrations();
  settings.on_fatal = caf::actor_cast<caf::actor>(self);
  auto pg = stop_at_end(sbm::connections::spawn_postgres(sys, settings));

  std::string reason;
  self->receive([&](sbm::fatal_atom, std::string& why) { reason = why; },
                caf::after(20s) >> [] {});
  EXPECT_NE(reason.find("newer"), std::string::npos) << "no fatal, or an unclear one: " << reason;

  auto s = ask<sbm::dependency_status>(pg, sbm::status_atom::value);
  ASSERT_TRUE(s);
  EXPECT_FALSE(s->up);
  EXPECT_EQ(s->state, "down");
  EXPECT_EQ(s->detail.find("newer") != std::string::npos, true) << s->detail;
  auto refused = ask<sbm::db_rows>(pg, sbm::query_atom::value, sbm::db_statement{"SELECT 1", {}, -1});
  ASSERT_FALSE(refused);
  EXPECT_EQ(sbm::code_of(refused.error()), sbm::errc::unavailable);
}

TEST_F(MigratingSupervisor, ServesBesideANewerSbmsExpandSteps) {
  const auto url = sbm::test::servers::shared().fresh_database();
  {
    pqxx::connection c{url};
    ASSERT_EQ(sbm::migrations::apply(c, demo_migrations()).applied, 3);
  }
  auto all = demo_migrations();
  sbm::connections::postgres_settings settings;
  settings.url = url;
  settings.probe_interval = 100ms;
  settings.migrations = {all[0], all[2]};
  settings.on_fatal = caf::actor_cast<caf::actor>(self);
  auto pg = stop_at_end(sbm::connections::spawn_postgres(sys, settings));
  ASSERT_TRUE(sbm::test::eventually([&] {
    auto s = ask<sbm::dependency_status>(pg, sbm::status_atom::value);
    return s && s->state == "up";
  }, 20s));
  bool fatal = false;
  self->receive([&](sbm::fatal_atom, std::string&) { fatal = true; }, caf::after(0s) >> [] {});
  EXPECT_FALSE(fatal);
  auto rows = ask<sbm::db_rows>(pg, sbm::query_atom::value,
                                sbm::db_statement{"SELECT count(*) FROM alpha.items", {}, -1});
  EXPECT_TRUE(rows);
}

TEST_F(MigratingSupervisor, MigratesBeforeServing) {
  const auto url = sbm::test::servers::shared().fresh_database();
  sbm::connections::postgres_settings settings;
  settings.url = url;
  settings.probe_interval = 100ms;
  settings.migrations = demo_migrations();
  auto pg = stop_at_end(sbm::connections::spawn_postgres(sys, settings));
  ASSERT_TRUE(sbm::test::eventually([&] {
    auto s = ask<sbm::dependency_status>(pg, sbm::status_atom::value);
    return s && s->state == "up";
  }));
  auto rows = ask<sbm::db_rows>(pg, sbm::query_atom::value,
                                sbm::db_statement{"SELECT name FROM alpha.items", {}, -1});
  ASSERT_TRUE(rows) << caf::to_string(rows.error());
  ASSERT_EQ(rows->rows.size(), 1u);
  EXPECT_EQ(rows->rows[0][0], caf::optional<std::string>{"seed"});
}

TEST_F(MigratingSupervisor, MigrationsOutlastTheRequestTimeout) {
  sbm::connections::postgres_settings settings;
  settings.url = sbm::test::servers::shared().fresh_database();
  settings.probe_interval = 100ms;
  settings.request_timeout = 300ms;  // also the connections' statement_timeout
  settings.migrations = {{"slow", 1, "sleepy", "SELECT pg_sleep(1); CREATE TABLE done (x int);"}};
  auto pg = stop_at_end(sbm::connections::spawn_postgres(sys, settings));
  ASSERT_TRUE(sbm::test::eventually([&] {
    auto s = ask<sbm::dependency_status>(pg, sbm::status_atom::value);
    return s && s->state == "up";
  }, 20s));
  EXPECT_TRUE(ask<sbm::db_rows>(pg, sbm::query_atom::value,
                                sbm::db_statement{"SELECT count(*) FROM slow.done", {}, -1}));
}

#ifdef SBM_HAVE_SCHEMA
// The repository's own migrations (actors/*/schema/*.sql) apply to an empty database, twice.
TEST(ProjectMigrations, ApplyCleanlyAndIdempotently) {
  const auto& all = sbm::schema::all_migrations();
  pqxx::connection c{sbm::test::servers::shared().fresh_database()};
  auto first = sbm::migrations::apply(c, all);
  EXPECT_TRUE(first.error.empty()) << first.error;
  EXPECT_EQ(first.applied, static_cast<int>(all.size()));
  auto second = sbm::migrations::apply(c, all);
  EXPECT_TRUE(second.error.empty()) << second.error;
  EXPECT_EQ(second.applied, 0);
}

// What the build embedded is byte for byte what the files hold, and nothing is left out.
TEST(ProjectMigrations, EmbedEveryFileVerbatim) {
  namespace fs = std::filesystem;
  std::size_t files = 0;
  for (const auto& family : fs::directory_iterator{fs::path{SBM_SOURCE_DIR} / "actors"}) {
    const auto dir = family.path() / "schema";
    if (!fs::is_directory(dir))
      continue;
    for (const auto& file : fs::directory_iterator{dir}) {
      if (file.path().extension() != ".sql")
        continue;
      ++files;
      std::ifstream in{file.path(), std::ios::binary};
      const std::string content{std::istreambuf_iterator<char>{in}, {}};
      const auto schema = family.path().filename().string();
      const auto version = std::stoi(file.path().filename().string());
      const auto& all = sbm::schema::all_migrations();
      auto it = std::find_if(all.begin(), all.end(), [&](const migration& m) {
        return m.schema == schema && m.version == version;
      });
      ASSERT_NE(it, all.end()) << file.path() << " is not embedded";
      EXPECT_EQ(it->sql, content) << file.path();
    }
  }
  EXPECT_EQ(files, sbm::schema::all_migrations().size());
}
#endif

}  // namespace

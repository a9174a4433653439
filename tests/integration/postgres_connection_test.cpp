// The PostgreSQL supervisor against real servers: parameters, transactions, error mapping,
// read-only sources, worker restarts, and (on a private server) outages and recovery.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <future>
#include <string>
#include <vector>

#include <pqxx/pqxx>

#include "actors/connections/connections.hpp"
#include "messages/errors.hpp"
#include "runtime/db/commit.hpp"
#include "tests/support/actor_test.hpp"
#include "tests/support/servers.hpp"

namespace {

using namespace std::chrono_literals;
using sbm::db_results;
using sbm::db_rows;
using sbm::db_statement;
using sbm::db_transaction;
using sbm::dependency_status;
using sbm::errc;
using sbm::postgres_actor;
using sbm::connections::postgres_settings;
using param = caf::optional<std::string>;

db_statement sql(std::string text, std::vector<param> params = {}, std::int32_t expect_rows = -1) {
  return db_statement{std::move(text), std::move(params), expect_rows};
}

class PostgresConnection : public sbm::test::io_actor_test {
 protected:
  static postgres_settings settings_for(const std::string& url) {
    postgres_settings s;
    s.url = url;
    s.pool_size = 2;
    s.probe_interval = 100ms;
    s.request_timeout = 5s;
    s.restart_backoff = sbm::resilience::backoff_policy{3, 20ms, 200ms, 0.0};
    return s;
  }

  postgres_actor spawn(postgres_settings s) {
    return stop_at_end(sbm::connections::spawn_postgres(sys, std::move(s)));
  }

  // A supervisor on a database of this test's own, already up.
  postgres_actor spawn_up(postgres_settings s) {
    auto pg = spawn(std::move(s));
    EXPECT_TRUE(wait_for_state(pg, "up")) << status(pg).state << ": " << status(pg).detail;
    return pg;
  }

  dependency_status status(const postgres_actor& pg) {
    auto s = ask<dependency_status>(pg, sbm::status_atom::value);
    EXPECT_TRUE(s) << caf::to_string(s.error());
    return s ? *s : dependency_status{};
  }

  bool wait_for_state(const postgres_actor& pg, const std::string& state,
                      std::chrono::milliseconds timeout = 30s) {
    return sbm::test::eventually([&] { return status(pg).state == state; }, timeout);
  }

  caf::expected<db_rows> query(const postgres_actor& pg, db_statement statement) {
    return ask<db_rows>(pg, sbm::query_atom::value, std::move(statement));
  }

  caf::expected<db_results> transact(const postgres_actor& pg, std::vector<db_statement> statements) {
    return ask<db_results>(pg, sbm::transact_atom::value, db_transaction{std::move(statements)});
  }

  std::vector<caf::actor> workers(const postgres_actor& pg) {
    auto list = ask<std::vector<caf::actor>>(caf::actor_cast<caf::actor>(pg), sbm::list_atom::value);
    EXPECT_TRUE(list) << caf::to_string(list.error());
    return list ? *list : std::vector<caf::actor>{};
  }

  std::int64_t count_rows(const postgres_actor& pg, const std::string& table) {
    auto rows = query(pg, sql("SELECT count(*) FROM " + table));
    EXPECT_TRUE(rows) << caf::to_string(rows.error());
    return rows ? std::stoll(*rows->rows.at(0).at(0)) : -1;
  }
};

TEST_F(PostgresConnection, StoresAndReadsBackParametersVerbatim) {
  auto pg = spawn_up(settings_for(sbm::test::servers::shared().fresh_database()));
  ASSERT_TRUE(query(pg, sql("CREATE TABLE x (id int PRIMARY KEY, body text)")));
  const std::vector<param> values = {
      std::string{"'; DROP TABLE x; --"},
      std::string{"O'Brien said \"hi\" \\ and left"},
      std::string{"Zoë – 患者 🙂 naïve"},
      caf::none,
      std::string{""},
  };
  for (std::size_t i = 0; i < values.size(); ++i) {
    auto inserted = query(pg, sql("INSERT INTO x (id, body) VALUES ($1, $2)",
                                  {std::to_string(i), values[i]}));
    ASSERT_TRUE(inserted) << caf::to_string(inserted.error());
    EXPECT_EQ(inserted->affected, 1u);
  }
  auto rows = query(pg, sql("SELECT id, body FROM x ORDER BY id"));
  ASSERT_TRUE(rows) << caf::to_string(rows.error());
  ASSERT_EQ(rows->rows.size(), values.size());
  for (std::size_t i = 0; i < values.size(); ++i) {
    EXPECT_EQ(rows->rows[i][0], param{std::to_string(i)});
    EXPECT_EQ(rows->rows[i][1], values[i]) << "row " << i;
  }
  // The injection attempt was stored as text, not run.
  EXPECT_EQ(count_rows(pg, "x"), static_cast<std::int64_t>(values.size()));
  // A parameter compares as a value, too.
  auto found = query(pg, sql("SELECT id FROM x WHERE body = $1", {values[0]}));
  ASSERT_TRUE(found);
  ASSERT_EQ(found->rows.size(), 1u);
  EXPECT_EQ(found->rows[0][0], param{"0"});
}

TEST_F(PostgresConnection, TransactionCommitsEveryStatement) {
  auto pg = spawn_up(settings_for(sbm::test::servers::shared().fresh_database()));
  ASSERT_TRUE(query(pg, sql("CREATE TABLE t (id int PRIMARY KEY, v text)")));
  auto results = transact(pg, {sql("INSERT INTO t VALUES ($1, $2)", {std::string{"1"}, std::string{"a"}}),
                               sql("INSERT INTO t VALUES ($1, $2)", {std::string{"2"}, std::string{"b"}}),
                               sql("UPDATE t SET v = $1 WHERE id = $2", {std::string{"c"}, std::string{"2"}}, 1),
                               sql("SELECT v FROM t ORDER BY id")});
  ASSERT_TRUE(results) << caf::to_string(results.error());
  ASSERT_EQ(results->results.size(), 4u);
  EXPECT_EQ(results->results[2].affected, 1u);
  ASSERT_EQ(results->results[3].rows.size(), 2u);
  EXPECT_EQ(results->results[3].rows[1][0], param{"c"});
  EXPECT_EQ(count_rows(pg, "t"), 2);
}

TEST_F(PostgresConnection, ExpectRowsMismatchRollsBackTheWholeTransaction) {
  auto pg = spawn_up(settings_for(sbm::test::servers::shared().fresh_database()));
  ASSERT_TRUE(query(pg, sql("CREATE TABLE t (id int PRIMARY KEY, v text)")));
  auto stale = transact(pg, {sql("INSERT INTO t VALUES ($1, $2)", {std::string{"1"}, std::string{"a"}}),
                             sql("UPDATE t SET v = $1 WHERE id = $2", {std::string{"b"}, std::string{"99"}}, 1)});
  ASSERT_FALSE(stale);
  EXPECT_EQ(sbm::code_of(stale.error()), errc::conflict);
  EXPECT_NE(sbm::detail_of(stale.error()).find("statement 1"), std::string::npos)
      << sbm::detail_of(stale.error());
  // Which statement refused travels typed, so a caller can tell a moved version from a duplicate.
  EXPECT_EQ(sbm::info_of(stale.error()).statement, 1);
  EXPECT_EQ(count_rows(pg, "t"), 0) << "the first statement must have been rolled back";
  // The same statements work afterwards, on the same connections.
  auto fresh = transact(pg, {sql("INSERT INTO t VALUES ($1, $2)", {std::string{"1"}, std::string{"a"}}),
                             sql("UPDATE t SET v = $1 WHERE id = $2", {std::string{"b"}, std::string{"1"}}, 1)});
  ASSERT_TRUE(fresh) << caf::to_string(fresh.error());
  auto row = query(pg, sql("SELECT v FROM t WHERE id = $1", {std::string{"1"}}));
  ASSERT_TRUE(row);
  ASSERT_EQ(row->rows.size(), 1u);
  EXPECT_EQ(row->rows[0][0], param{"b"});
}

// An unflushed statement goes alone, without BEGIN/COMMIT: if its connection breaks under it, it
// may have committed, so the caller hears outcome_unknown and the worker does not send it again.
TEST_F(PostgresConnection, AnUnflushedStatementWhoseConnectionBreaksIsOutcomeUnknownAndNotRepeated) {
  const auto url = sbm::test::servers::shared().fresh_database();
  auto settings = settings_for(url);
  settings.pool_size = 1;
  auto pg = spawn_up(settings);
  ASSERT_TRUE(query(pg, sql("CREATE TABLE t (id serial PRIMARY KEY, v text)")));
  auto unflushed = [&](std::string text) {
    return ask<db_results>(pg, sbm::transact_atom::value, sbm::db::unflushed({sql(std::move(text))}));
  };
  ASSERT_TRUE(unflushed("INSERT INTO t (v) VALUES ('first')"));
  auto pending = self->request(pg, 30s, sbm::transact_atom::value,
                               sbm::db::unflushed({sql("INSERT INTO t (v) SELECT 'slow' FROM pg_sleep(3)")}));
  pqxx::connection killer{url};
  ASSERT_TRUE(sbm::test::eventually([&] {
    pqxx::nontransaction n{killer};
    return !n.exec("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE "
                   "'INSERT INTO t (v) SELECT%' AND pid <> pg_backend_pid()").empty();
  }));
  bool answered = false;
  pending.receive([&](db_results&) { ADD_FAILURE() << "a killed statement answered success"; },
                  [&](caf::error& e) {
                    answered = true;
                    EXPECT_EQ(sbm::code_of(e), errc::outcome_unknown) << caf::to_string(e);
                  });
  EXPECT_TRUE(answered);
  // The worker connects again and the next one commits; the killed one was not sent again.
  ASSERT_TRUE(sbm::test::eventually([&] { return static_cast<bool>(unflushed("INSERT INTO t (v) VALUES ('after')")); }));
  auto rows = query(pg, sql("SELECT string_agg(v, ',' ORDER BY id) FROM t"));
  ASSERT_TRUE(rows) << caf::to_string(rows.error());
  EXPECT_EQ(rows->rows.at(0).at(0), param{"first,after"});
}

// A statement that must affect a given count keeps its transaction, unflushed or not: a wrong
// count rolls it back.
TEST_F(PostgresConnection, AnUnflushedStatementWithACountToCheckIsRolledBackWhenItMisses) {
  auto pg = spawn_up(settings_for(sbm::test::servers::shared().fresh_database()));
  ASSERT_TRUE(query(pg, sql("CREATE TABLE t (id int PRIMARY KEY, v text)")));
  auto missed = ask<db_results>(pg, sbm::transact_atom::value,
                                sbm::db::unflushed({sql("INSERT INTO t VALUES (1, 'a'), (2, 'b')", {}, 1)}));
  ASSERT_FALSE(missed);
  EXPECT_EQ(sbm::code_of(missed.error()), errc::conflict);
  EXPECT_EQ(count_rows(pg, "t"), 0);
}

TEST_F(PostgresConnection, UniqueViolationIsConflictWithoutTheValue) {
  auto pg = spawn_up(settings_for(sbm::test::servers::shared().fresh_database()));
  ASSERT_TRUE(query(pg, sql("CREATE TABLE people (id int PRIMARY KEY, mrn text UNIQUE)")));
  ASSERT_TRUE(query(pg, sql("INSERT INTO people VALUES (1, $1)", {std::string{"MRN-4711"}})));
  auto twice = query(pg, sql("INSERT INTO people VALUES (2, $1)", {std::string{"MRN-4711"}}));
  ASSERT_FALSE(twice);
  EXPECT_EQ(sbm::code_of(twice.error()), errc::conflict);
  const auto detail = sbm::detail_of(twice.error());
  EXPECT_NE(detail.find("people_mrn_key"), std::string::npos) << detail;
  EXPECT_EQ(detail.find("MRN-4711"), std::string::npos) << "error details must not carry values";
  // A conflict is a healthy server saying no: the dependency stays up.
  EXPECT_EQ(status(pg).state, "up");
}

TEST_F(PostgresConnection, CallerMistakesAreInvalidArgumentAndBugsInternal) {
  auto pg = spawn_up(settings_for(sbm::test::servers::shared().fresh_database()));
  ASSERT_TRUE(query(pg, sql("CREATE TABLE t (id int PRIMARY KEY, v text NOT NULL)")));

  auto bad_number = query(pg, sql("INSERT INTO t VALUES ($1, 'x')", {std::string{"SSN-123-45"}}));
  ASSERT_FALSE(bad_number);
  EXPECT_EQ(sbm::code_of(bad_number.error()), errc::invalid_argument);
  EXPECT_EQ(sbm::detail_of(bad_number.error()).find("SSN-123-45"), std::string::npos);
  EXPECT_NE(sbm::detail_of(bad_number.error()).find("22P02"), std::string::npos);

  auto missing = query(pg, sql("INSERT INTO t VALUES (1, $1)", {caf::none}));
  ASSERT_FALSE(missing);
  EXPECT_EQ(sbm::code_of(missing.error()), errc::invalid_argument);

  auto nul = query(pg, sql("SELECT $1::text", {std::string{"a\0b", 3}}));
  ASSERT_FALSE(nul);
  EXPECT_EQ(sbm::code_of(nul.error()), errc::invalid_argument);
  EXPECT_NE(sbm::detail_of(nul.error()).find("$1"), std::string::npos);

  auto typo = query(pg, sql("SELEKT 1"));
  ASSERT_FALSE(typo);
  EXPECT_EQ(sbm::code_of(typo.error()), errc::internal);
  EXPECT_NE(sbm::detail_of(typo.error()).find("42601"), std::string::npos);

  // None of these is the server's fault, and the connection is still good.
  EXPECT_TRUE(query(pg, sql("SELECT 1")));
  EXPECT_EQ(status(pg).state, "up");
}

TEST_F(PostgresConnection, StatusNamesTheDependency) {
  auto pg = spawn_up(settings_for(sbm::test::servers::shared().pg_url()));
  auto s = status(pg);
  EXPECT_EQ(s.name, "postgres");
  EXPECT_TRUE(s.required);
  EXPECT_TRUE(s.up);
  EXPECT_EQ(s.state, "up");
  EXPECT_TRUE(s.detail.empty()) << s.detail;
}

TEST_F(PostgresConnection, AcceptsKeyValueConnectionStrings) {
  const auto& servers = sbm::test::servers::shared();
  auto pg = spawn_up(settings_for("host=127.0.0.1 port=" + std::to_string(servers.pg_port()) +
                                  " dbname=sbm user=sbm"));
  auto rows = query(pg, sql("SELECT current_database()"));
  ASSERT_TRUE(rows) << caf::to_string(rows.error());
  EXPECT_EQ(rows->rows.at(0).at(0), param{"sbm"});
}

TEST_F(PostgresConnection, SlowStatementIsCancelledAndTheWorkerServesAgain) {
  auto settings = settings_for(sbm::test::servers::shared().pg_url());
  settings.pool_size = 1;
  settings.request_timeout = 300ms;
  auto pg = spawn_up(settings);
  auto slow = query(pg, sql("SELECT pg_sleep(5)"));
  ASSERT_FALSE(slow);
  EXPECT_EQ(sbm::code_of(slow.error()), errc::unavailable) << caf::to_string(slow.error());
  // The server cancels it at the same deadline (statement_timeout), so the only worker is free
  // again long before the 5 s the statement asked for.
  const auto started = std::chrono::steady_clock::now();
  ASSERT_TRUE(sbm::test::eventually([&] { return static_cast<bool>(query(pg, sql("SELECT 1"))); }, 4s));
  EXPECT_LT(std::chrono::steady_clock::now() - started, 2s);
}

TEST_F(PostgresConnection, WorkPastItsDeadlineIsDroppedUnstarted) {
  auto pg = spawn_up(settings_for(sbm::test::servers::shared().fresh_database()));
  ASSERT_TRUE(query(pg, sql("CREATE TABLE t (id int PRIMARY KEY)")));
  auto late = sql("INSERT INTO t VALUES (1)");
  late.until = sbm::deadline::after(sys.clock().now(), -1ms);
  auto r = query(pg, late);
  ASSERT_FALSE(r);
  EXPECT_EQ(sbm::code_of(r.error()), errc::deadline_exceeded) << caf::to_string(r.error());
  db_transaction tx{{sql("INSERT INTO t VALUES (2)")}};
  tx.until = late.until;
  EXPECT_EQ(sbm::code_of(ask<db_results>(pg, sbm::transact_atom::value, tx).error()),
            errc::deadline_exceeded);
  EXPECT_EQ(count_rows(pg, "t"), 0);
  // A late caller says nothing about the database's health.
  EXPECT_EQ(status(pg).state, "up");
}

TEST_F(PostgresConnection, TheServerGivesAStatementNoMoreThanItsDeadlineLeaves) {
  auto settings = settings_for(sbm::test::servers::shared().pg_url());
  settings.request_timeout = 20s;  // the connection's own statement_timeout
  auto pg = spawn_up(settings);
  auto slow = sql("SELECT pg_sleep(10)");
  slow.until = sbm::deadline::after(sys.clock().now(), 300ms);
  const auto started = std::chrono::steady_clock::now();
  auto r = query(pg, slow);
  ASSERT_FALSE(r);
  // Cancelled by the server (nothing ran to completion), not abandoned with an unknown outcome.
  EXPECT_EQ(sbm::code_of(r.error()), errc::unavailable) << caf::to_string(r.error());
  EXPECT_NE(sbm::detail_of(r.error()).find("statement timeout"), std::string::npos)
      << sbm::detail_of(r.error());
  EXPECT_LT(std::chrono::steady_clock::now() - started, 5s);
}

// A lone write marked autocommit is its own transaction: no BEGIN, hence no SET LOCAL from its
// deadline (the connection's statement_timeout bounds it), and a connection lost under it may have
// committed it, so it is answered outcome_unknown and never sent again.
TEST_F(PostgresConnection, AnAutocommitWriteIsItsOwnTransactionAndALostConnectionLeavesItUnknown) {
  auto pg = spawn_up(settings_for(sbm::test::servers::shared().fresh_database()));  // 5 s
  ASSERT_TRUE(query(pg, sql("CREATE TABLE t (id int PRIMARY KEY, timeout text)")));
  auto write = [&](int id, bool autocommit) {
    auto s = sql("INSERT INTO t VALUES ($1, current_setting('statement_timeout')) RETURNING timeout",
                 {std::to_string(id)});
    s.until = sbm::deadline::after(sys.clock().now(), 3s);
    s.autocommit = autocommit;
    return query(pg, s);
  };
  auto alone = write(1, true);
  ASSERT_TRUE(alone) << caf::to_string(alone.error());
  EXPECT_EQ(alone->rows.at(0).at(0), param{"5s"});
  auto in_tx = write(2, false);
  ASSERT_TRUE(in_tx) << caf::to_string(in_tx.error());
  EXPECT_NE(in_tx->rows.at(0).at(0), param{"5s"});  // SET LOCAL from what the deadline left
  EXPECT_EQ(count_rows(pg, "t"), 2);

  // The server ends the session under the statement.
  auto killed = sql("SELECT pg_terminate_backend(pg_backend_pid())");
  killed.autocommit = true;
  auto r = query(pg, killed);
  ASSERT_FALSE(r);
  EXPECT_EQ(sbm::code_of(r.error()), errc::outcome_unknown) << caf::to_string(r.error());
  // In a transaction the same loss is a rollback: retried once on a fresh connection, then refused.
  killed.autocommit = false;
  r = query(pg, killed);
  ASSERT_FALSE(r);
  EXPECT_EQ(sbm::code_of(r.error()), errc::unavailable) << caf::to_string(r.error());
  EXPECT_EQ(count_rows(pg, "t"), 2);
}

TEST_F(PostgresConnection, RequestsPastTheQueueBoundAreRefusedAtOnceWithARetryAfter) {
  auto settings = settings_for(sbm::test::servers::shared().pg_url());
  settings.pool_size = 1;
  settings.max_queued = 2;
  auto pg = spawn_up(settings);
  // Two slow statements fill the bound; the third is refused without waiting behind them.
  for (int i = 0; i < 2; ++i)
    caf::anon_send(pg, sbm::query_atom::value, sql("SELECT pg_sleep(1)"));
  auto refused = query(pg, sql("SELECT 1"));
  ASSERT_FALSE(refused);
  EXPECT_EQ(sbm::code_of(refused.error()), errc::overloaded) << caf::to_string(refused.error());
  EXPECT_TRUE(sbm::retry_after_of(refused.error()));
  // Once they finished, it serves again.
  EXPECT_TRUE(sbm::test::eventually([&] { return static_cast<bool>(query(pg, sql("SELECT 1"))); }, 10s));
}

TEST_F(PostgresConnection, InstanoteReadsButRefusesWrites) {
  const auto url = sbm::test::servers::shared().fresh_database();
  auto writer = spawn_up(settings_for(url));
  ASSERT_TRUE(query(writer, sql("CREATE TABLE drafts (id int PRIMARY KEY, text text)")));
  ASSERT_TRUE(query(writer, sql("INSERT INTO drafts VALUES (1, 'draft')")));

  auto settings = sbm::connections::instanote_defaults(url);
  settings.probe_interval = 100ms;
  auto instanote = spawn_up(settings);
  auto s = status(instanote);
  EXPECT_EQ(s.name, "instanote");
  EXPECT_FALSE(s.required);

  auto read = query(instanote, sql("SELECT text FROM drafts WHERE id = $1", {std::string{"1"}}));
  ASSERT_TRUE(read) << caf::to_string(read.error());
  ASSERT_EQ(read->rows.size(), 1u);
  EXPECT_EQ(read->rows[0][0], param{"draft"});

  auto write = query(instanote, sql("INSERT INTO drafts VALUES (2, 'mine')"));
  ASSERT_FALSE(write);
  EXPECT_NE(sbm::detail_of(write.error()).find("25006"), std::string::npos)
      << sbm::detail_of(write.error());
  EXPECT_EQ(count_rows(writer, "drafts"), 1);
}

TEST_F(PostgresConnection, KilledWorkerIsRestarted) {
  auto pg = spawn_up(settings_for(sbm::test::servers::shared().pg_url()));
  auto before = workers(pg);
  ASSERT_EQ(before.size(), 2u);
  self->send_exit(before[0], caf::exit_reason::kill);
  ASSERT_TRUE(sbm::test::eventually([&] {
    auto now = workers(pg);
    return now.size() == 2 && std::find(now.begin(), now.end(), before[0]) == now.end();
  })) << "the killed worker was not replaced";
  for (int i = 0; i < 4; ++i)  // both workers serve
    EXPECT_TRUE(query(pg, sql("SELECT 1")));
  EXPECT_EQ(status(pg).state, "up");
}

// Issue 16's fault: an InstaNote connection actor crashes under a caller that keeps pulling. Its
// supervisor restarts it and the caller sees at most the one failure of the request it held.
TEST_F(PostgresConnection, InstanoteWorkerKilledUnderLoadCostsACallerAtMostOneFailure) {
  auto settings = sbm::connections::instanote_defaults(sbm::test::servers::shared().pg_url());
  settings.pool_size = 2;  // the node's instanote.pool-size default
  settings.probe_interval = 100ms;
  settings.restart_backoff = sbm::resilience::backoff_policy{3, 20ms, 200ms, 0.0};
  // This test is about the pool replacing a worker; the breaker has tests of its own. Once, under a
  // loaded CI run, the breaker opened after the kill and refused the rest (39 failures, state
  // circuit_open); a breaker that opens only on a full window of failures keeps this test on the pool.
  settings.breaker.minimum_calls = 10;
  settings.breaker.failure_rate = 100.0;
  auto pg = spawn_up(settings);
  auto before = workers(pg);
  ASSERT_EQ(before.size(), 2u);
  std::atomic<int> done{0};
  std::atomic<bool> killed{false};
  auto caller = std::async(std::launch::async, [&] {
    caf::scoped_actor other{sys};
    int failures = 0;
    // Keeps going until well after the kill, so the restarted worker serves too.
    for (int after_kill = 0; after_kill < 40;) {
      auto r = sbm::test::request_blocking<db_rows>(other, 10s, pg, sbm::query_atom::value,
                                                    sql("SELECT pg_sleep(0.02)"));
      failures += r ? 0 : 1;
      ++done;
      if (killed)
        ++after_kill;
    }
    return failures;
  });
  ASSERT_TRUE(sbm::test::eventually([&] { return done >= 5; }, 10s));
  self->send_exit(before[0], caf::exit_reason::kill);
  killed = true;
  ASSERT_TRUE(sbm::test::eventually([&] {
    auto now = workers(pg);
    return now.size() == 2 && std::find(now.begin(), now.end(), before[0]) == now.end();
  })) << "the killed worker was not replaced";
  EXPECT_LE(caller.get(), 1);
  EXPECT_EQ(status(pg).state, "up");
}

TEST_F(PostgresConnection, WorkersDyingTooOftenEscalate) {
  auto settings = settings_for(sbm::test::servers::shared().pg_url());
  settings.pool_size = 1;
  settings.restart_limit = sbm::resilience::restart_limit{1, 60s};
  auto pg = spawn_up(settings);
  self->monitor(pg);
  auto first = workers(pg);
  ASSERT_EQ(first.size(), 1u);
  self->send_exit(first[0], caf::exit_reason::kill);
  std::vector<caf::actor> second;
  ASSERT_TRUE(sbm::test::eventually([&] {
    second = workers(pg);
    return second.size() == 1 && second[0] != first[0];
  }));
  self->send_exit(second[0], caf::exit_reason::kill);
  bool down = false;
  self->receive(
      [&](caf::down_msg& msg) {
        down = true;
        EXPECT_EQ(sbm::code_of(msg.reason), errc::internal) << caf::to_string(msg.reason);
      },
      caf::after(10s) >> [] {});
  EXPECT_TRUE(down) << "the supervisor did not escalate";
}

// Outages run on a private server pair so stopping it cannot disturb tests running in parallel.
TEST_F(PostgresConnection, OutageOpensTheBreakerAndTheProbeRecovers) {
  auto servers = sbm::test::servers::start_private();
  auto settings = settings_for(servers->pg_url());
  settings.breaker = sbm::resilience::breaker_policy{3, 60s};
  auto pg = spawn_up(settings);
  ASSERT_TRUE(query(pg, sql("SELECT 1")));

  servers->stop_postgres();
  int failures = 0;
  for (; failures < 3; ++failures) {
    auto r = query(pg, sql("SELECT 1"));
    ASSERT_FALSE(r) << "a query succeeded with the server stopped";
    EXPECT_EQ(sbm::code_of(r.error()), errc::unavailable) << caf::to_string(r.error());
  }
  const auto started = std::chrono::steady_clock::now();
  auto refused = query(pg, sql("SELECT 1"));
  EXPECT_LT(std::chrono::steady_clock::now() - started, 1s) << "an open breaker answers at once";
  ASSERT_FALSE(refused);
  EXPECT_EQ(sbm::code_of(refused.error()), errc::unavailable);
  // Typed, not parsed from the text: about the breaker's 60 s from when it opened.
  auto retry = sbm::retry_after_of(refused.error());
  ASSERT_TRUE(retry) << sbm::detail_of(refused.error());
  EXPECT_GT(*retry, 50s);
  EXPECT_LE(*retry, 60s);
  EXPECT_NE(sbm::detail_of(refused.error()).find("postgres"), std::string::npos);
  auto s = status(pg);
  EXPECT_FALSE(s.up);
  EXPECT_EQ(s.state, "circuit_open");
  // The operator's view: the breaker, typed, with what opened it.
  ASSERT_TRUE(s.has_breaker);
  EXPECT_EQ(s.breaker.state, "open");
  EXPECT_GE(s.breaker.failures, 2);
  EXPECT_EQ(s.breaker.last_from, "closed");
  EXPECT_EQ(s.breaker.last_to, "open");
  EXPECT_GE(s.breaker.last_transition_ms_ago, 0);
  EXPECT_GT(s.breaker.retry_in_ms, 50000);
  EXPECT_GE(s.breaker.refused, 1u);

  servers->start_postgres();
  // No user request is needed: the probe brings it back well before the breaker's 60 s, as
  // half-open; real calls are the trials that close it.
  EXPECT_TRUE(wait_for_state(pg, "up", 20s)) << status(pg).state << ": " << status(pg).detail;
  EXPECT_EQ(status(pg).breaker.state, "half_open");
  for (int i = 0; i < 3; ++i) {  // the default half_open_calls
    auto back = query(pg, sql("SELECT 1"));
    EXPECT_TRUE(back) << caf::to_string(back.error());
  }
  EXPECT_EQ(status(pg).breaker.state, "closed");
  EXPECT_EQ(status(pg).breaker.last_from, "half_open");
}

TEST_F(PostgresConnection, RefusedConnectionsAreRetriedWithBackoffButNeverPastTheDeadline) {
  auto servers = sbm::test::servers::start_private();
  auto settings = settings_for(servers->pg_url());
  settings.retry = sbm::resilience::backoff_policy{3, 50ms, 400ms, 0.5};
  settings.random_seed = 7;  // replayable jitter
  settings.breaker.minimum_calls = 10;  // keep it closed: this test is about the retries
  auto pg = spawn_up(settings);
  servers->stop_postgres();

  // Every attempt is refused before any statement runs: the original and its 3 retries.
  auto r = query(pg, sql("SELECT 1"));
  ASSERT_FALSE(r);
  EXPECT_EQ(sbm::code_of(r.error()), errc::unavailable) << caf::to_string(r.error());
  auto s = status(pg);
  // The first attempt may meet the worker's old, now dead connection (not retry_safe: a
  // statement was sent); its reconnect is refused and from then on every attempt is.
  EXPECT_EQ(s.breaker.retries, 3u) << s.breaker.calls << " calls";
  EXPECT_EQ(s.breaker.calls, 4) << "each attempt passes the breaker";

  // A deadline shorter than the first back-off (at least 25 ms) leaves no room for any retry.
  auto hurried = sql("SELECT 1");
  hurried.until = sbm::deadline::after(sys.clock().now(), 20ms);
  EXPECT_FALSE(query(pg, hurried));
  EXPECT_EQ(status(pg).breaker.retries, 3u);

  servers->start_postgres();
  EXPECT_TRUE(wait_for_state(pg, "up", 20s)) << status(pg).detail;
}

TEST_F(PostgresConnection, NothingButRefusedConnectionsIsRetried) {
  auto settings = settings_for(sbm::test::servers::shared().fresh_database());
  settings.retry = sbm::resilience::backoff_policy{3, 10ms, 40ms, 0.0};
  // Long enough for a fresh database's first statement on a loaded machine (300 ms was not),
  // short enough that the sleeping statement below is cancelled by the statement timeout.
  settings.request_timeout = 2s;
  auto pg = spawn_up(settings);
  ASSERT_TRUE(query(pg, sql("CREATE TABLE t (id int PRIMARY KEY)")));
  ASSERT_TRUE(query(pg, sql("INSERT INTO t VALUES (1)")));
  EXPECT_EQ(sbm::code_of(query(pg, sql("INSERT INTO t VALUES (1)")).error()), errc::conflict);
  EXPECT_FALSE(query(pg, sql("SELECT pg_sleep(20)")));  // cancelled by statement_timeout
  EXPECT_EQ(status(pg).breaker.retries, 0u);
  EXPECT_EQ(count_rows(pg, "t"), 1);
}

// A statement that hangs (the server sleeps in it) holds one worker until its timeout; the other
// worker keeps serving meanwhile, and the hung call counts against the breaker as slow and failed.
TEST_F(PostgresConnection, HungStatementTimesOutCountsAndBlocksNoOtherWork) {
  auto settings = sbm::connections::instanote_defaults(sbm::test::servers::shared().pg_url());
  settings.pool_size = 2;
  settings.probe_interval = 100ms;
  settings.request_timeout = 3s;
  settings.breaker.slow_call_duration = 1s;
  auto pg = spawn_up(settings);
  auto hung = std::async(std::launch::async, [&] {
    caf::scoped_actor other{sys};
    return sbm::test::request_blocking<db_rows>(other, 20s, pg, sbm::query_atom::value,
                                                sql("SELECT pg_sleep(30) AS hung_probe"));
  });
  // The other worker sees the hung statement running on the server, so it is not stuck behind it.
  EXPECT_TRUE(sbm::test::eventually([&] {
    auto r = query(pg, sql("SELECT count(*) FROM pg_stat_activity WHERE query LIKE $1",
                           {param{"SELECT pg_sleep(30) AS hung_probe%"}}));
    return r && !r->rows.empty() && r->rows[0][0] && *r->rows[0][0] == "1";
  }, 5s));
  auto answer = hung.get();
  ASSERT_FALSE(answer);
  EXPECT_EQ(sbm::code_of(answer.error()), errc::unavailable) << caf::to_string(answer.error());
  auto b = status(pg).breaker;
  EXPECT_EQ(b.failures, 1);
  EXPECT_EQ(b.slow_calls, 1);
  EXPECT_EQ(b.retries, 0u) << "a timed-out statement is not retried";
  EXPECT_EQ(b.state, "closed") << "one of several calls";
}

TEST_F(PostgresConnection, StartsWhileTheServerIsDownAndMigratesWhenItComesUp) {
  auto servers = sbm::test::servers::start_private();
  servers->stop_postgres();
  auto settings = settings_for(servers->pg_url());
  settings.migrations = {{"demo", 1, "create_notes", "CREATE TABLE notes (id int PRIMARY KEY)"}};
  auto pg = spawn(settings);
  ASSERT_TRUE(sbm::test::eventually([&] { return status(pg).state == "down"; }, 10s))
      << status(pg).state;
  auto s = status(pg);
  EXPECT_FALSE(s.up);
  EXPECT_FALSE(s.detail.empty());
  auto early = query(pg, sql("SELECT 1"));
  ASSERT_FALSE(early);
  EXPECT_EQ(sbm::code_of(early.error()), errc::unavailable);

  servers->start_postgres();
  EXPECT_TRUE(wait_for_state(pg, "up", 20s)) << status(pg).state << ": " << status(pg).detail;
  auto rows = query(pg, sql("SELECT count(*) FROM demo.notes"));
  EXPECT_TRUE(rows) << caf::to_string(rows.error());
}

}  // namespace

#include "actors/connections/postgres_worker.hpp"

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include <exception>
#include <pqxx/pqxx>
#include <cctype>
#include <unordered_map>
#include <utility>

#include "messages/errors.hpp"
#include "runtime/db/commit.hpp"
#include "runtime/logging/logging.hpp"

namespace sbm::connections::detail {

namespace {

// Prepared statements per connection; SQL text comes from code, so the set is small, but a bug
// that builds SQL dynamically must not grow the server's memory without bound.
constexpr std::size_t max_prepared_statements = 512;

struct worker_state {
  postgres_worker_config config;
  std::unique_ptr<pqxx::connection> connection;
  std::unordered_map<std::string, std::string> prepared;  // SQL text -> statement name
  std::uint64_t statements_named = 0;
  // The connection's session commits without waiting for the flush (SET synchronous_commit = off):
  // kept between unflushed transactions, reset before anything else that writes.
  bool unflushed_session = false;
  bool executing = false;  // a statement was handed to libpq in this attempt (it may have run)
  std::shared_ptr<spdlog::logger> log;
  static inline const char* name = "sbm.postgres_worker";
};

using worker_pointer = postgres_worker_actor::stateful_pointer<worker_state>;

// A caller's request that fails before or after PostgreSQL runs it (bad parameter, expect_rows).
struct request_failure {
  errc code;
  std::string detail;
  int statement = -1;
};

struct connection_failure {
  std::string reason;
};

std::string first_line(const std::string& text) {
  auto line = text.substr(0, text.find('\n'));
  while (!line.empty() && (line.back() == ' ' || line.back() == '\r' || line.back() == '\t'))
    line.pop_back();
  if (line.size() > 200)
    line.resize(200);
  return line;
}

bool starts_with(const std::string& text, const char* prefix) { return text.rfind(prefix, 0) == 0; }

// The server went away or refuses connections: drop the connection and report unavailable.
bool is_connection_state(const std::string& sqlstate) {
  return starts_with(sqlstate, "08") || starts_with(sqlstate, "53") || sqlstate == "57P01" ||
         sqlstate == "57P02" || sqlstate == "57P03";
}

std::string statement_label(int index) {
  return index < 0 ? std::string{"statement"} : "statement " + std::to_string(index);
}

// Only the first line of constraint errors is quoted: it names the constraint and columns, while
// PostgreSQL's DETAIL line carries the offending values (possibly patient data).
caf::error map_sql_error(const std::string& name, const pqxx::sql_error& e, int index) {
  const auto& state = e.sqlstate();
  const auto where = name + ": " + statement_label(index);
  if (state == "23505")
    return make_error(errc::conflict, error_info{where + ": " + first_line(e.what()), 0, index});
  if (state == "23502" || state == "23503" || state == "23514")
    return make_error(errc::invalid_argument, where + ": " + first_line(e.what()));
  // Data exceptions quote the rejected value, so only the code is reported.
  if (starts_with(state, "22"))
    return make_error(errc::invalid_argument, where + ": invalid value (sqlstate " + state + ")");
  // cluster.fence_speaker (actors/cluster/schema): the writer's lease is gone (SB001) or the
  // speaker is another live node's (SB002). The message names only epochs.
  if (state == "SB001" || state == "SB002")
    return make_error(errc::stale_owner, where + ": " + first_line(e.what()));
  // A deadlock or serialization failure rolled the whole transaction back: nothing committed, so
  // the pool may send it again.
  if (state == "40P01" || state == "40001")
    return make_error(errc::unavailable, error_info{where + ": " + first_line(e.what()), 0, index, true});
  if (state == "57014")
    return make_error(errc::unavailable, where + ": cancelled by statement timeout");
  return make_error(errc::internal, where + ": failed (sqlstate " + state + ")");
}

void drop_connection(worker_state& st) {
  st.connection.reset();
  st.prepared.clear();
  st.unflushed_session = false;
}

void connect(worker_state& st) {
  st.connection = std::make_unique<pqxx::connection>(st.config.conninfo);
  st.log->debug("{} worker connected", st.config.name);
}

void forget_prepared(worker_state& st) {
  for (const auto& entry : st.prepared) {
    try {
      st.connection->unprepare(entry.second);
    } catch (const std::exception&) {
      // A statement the server no longer has is as good as unprepared.
    }
  }
  st.prepared.clear();
}

const std::string& statement_name(worker_state& st, const std::string& sql) {
  auto it = st.prepared.find(sql);
  if (it != st.prepared.end())
    return it->second;
  auto name = "sbm_" + std::to_string(++st.statements_named);
  st.connection->prepare(name, sql);
  return st.prepared.emplace(sql, std::move(name)).first->second;
}

db_rows execute(worker_state& st, pqxx::transaction_base& tx, const db_statement& statement, int index) {
  std::vector<const char*> values;
  values.reserve(statement.params.size());
  for (std::size_t i = 0; i < statement.params.size(); ++i) {
    const auto& param = statement.params[i];
    if (!param) {
      values.push_back(nullptr);
      continue;
    }
    // libpq passes text parameters as C strings: a NUL would silently cut the value short.
    if (param->find('\0') != std::string::npos)
      throw request_failure{errc::invalid_argument,
                            st.config.name + ": " + statement_label(index) + ": parameter $" +
                                std::to_string(i + 1) + " holds a NUL byte",
                            index};
    values.push_back(param->c_str());
  }
  const auto& name = statement_name(st, statement.sql);
  st.executing = true;
  auto result = tx.exec_prepared(name, pqxx::prepare::make_dynamic_params(values));
  db_rows out;
  out.affected = result.affected_rows();
  if (statement.expect_rows >= 0 && out.affected != static_cast<std::uint64_t>(statement.expect_rows))
    throw request_failure{errc::conflict,
                          st.config.name + ": " + statement_label(index) + " affected " +
                              std::to_string(out.affected) + " rows, expected " +
                              std::to_string(statement.expect_rows),
                          index};
  out.rows.reserve(result.size());
  for (const auto& row : result) {
    db_row values_out;
    values_out.reserve(row.size());
    for (const auto& field : row) {
      if (field.is_null())
        values_out.emplace_back(caf::none);
      else
        values_out.emplace_back(std::string(field.c_str(), field.size()));
    }
    out.rows.push_back(std::move(values_out));
  }
  return out;
}

// Runs `body` in one transaction, committing only if it returns. A connection that was reused
// and turns out dead (the server restarted since) is replaced and the transaction retried once:
// PostgreSQL rolled the uncommitted transaction back with the old connection, so nothing runs
// twice. A failure during COMMIT is not retried: its outcome is unknown.
// Work whose deadline has passed is dropped before it touches the server (its caller stopped
// waiting); otherwise the server gives it at most the time that is left.
// How a request commits.
enum class commit_mode {
  flushed,
  // A read: sent without BEGIN/COMMIT when the connection's own statement_timeout fits its
  // deadline (a shorter one needs SET LOCAL, hence a transaction).
  read_alone,
  // One write that is its own transaction (db_statement::autocommit), flushed, sent without
  // BEGIN/COMMIT whatever its deadline: the deadline decides only whether it starts.
  write_alone,
  unflushed,
  // One unflushed statement (runtime/db/commit.hpp): sent without BEGIN/COMMIT when the deadline
  // allows, like a read.
  unflushed_alone,
};
// A write sent alone has no BEGIN that would find a stale connection first: a connection that
// breaks once the statement was handed to libpq may have committed it, so that is an unknown
// outcome, never retried (its callers settle it: Idempotency-Key, saga steps repeated anyway).

template <class Body>
auto in_transaction(worker_pointer self, deadline until, Body body, commit_mode mode = commit_mode::flushed)
    -> caf::expected<decltype(body(std::declval<pqxx::transaction_base&>(), std::declval<int&>()))> {
  auto& st = self->state;
  for (int attempt = 0;; ++attempt) {
    const bool fresh = !st.connection;
    int index = -1;  // the statement running, for error details
    const auto left = until.left(self->clock().now(), st.config.statement_timeout);
    if (left.count() <= 0)
      return make_error(errc::deadline_exceeded,
                        st.config.name + ": dropped unstarted, its deadline had passed");
    if (fresh) {
      try {
        connect(st);
      } catch (const pqxx::broken_connection& e) {
        // Refused before any statement ran: the one failure the pool may safely repeat.
        drop_connection(st);
        return make_error(errc::unavailable,
                          error_info{st.config.name + ": " + first_line(e.what()), 0, -1, true});
      }
    }
    st.executing = false;
    const bool write_alone = mode == commit_mode::write_alone ||
                             (mode == commit_mode::unflushed_alone && left >= st.config.statement_timeout);
    auto lost_write = [&st] {
      return make_error(errc::outcome_unknown, st.config.name + ": connection lost during a write; outcome unknown");
    };
    try {
      if (!fresh && st.prepared.size() > max_prepared_statements)
        forget_prepared(st);
      if (mode == commit_mode::read_alone && left >= st.config.statement_timeout) {
        pqxx::nontransaction tx{*st.connection};
        return body(tx, index);
      }
      // A server that closed the connection meanwhile (a restart) is found here, before the write
      // is sent, by reading what is already on the socket: no round trip.
      if (write_alone && !fresh)
        st.connection->get_notifs();
      const bool unflushed = mode == commit_mode::unflushed || mode == commit_mode::unflushed_alone;
      if (mode != commit_mode::read_alone && unflushed != st.unflushed_session) {
        pqxx::nontransaction session{*st.connection};
        session.exec(unflushed ? "SET synchronous_commit = off" : "RESET synchronous_commit");
        st.unflushed_session = unflushed;
      }
      if (write_alone) {
        pqxx::nontransaction tx{*st.connection};
        return body(tx, index);
      }
      pqxx::work tx{*st.connection};
      if (left < st.config.statement_timeout)
        tx.exec("SET LOCAL statement_timeout = " + std::to_string(left.count()));
      auto out = body(tx, index);
      index = -1;
      tx.commit();
      return out;
    } catch (const request_failure& f) {
      return make_error(f.code, error_info{f.detail, 0, f.statement});
    } catch (const pqxx::in_doubt_error&) {
      drop_connection(st);
      return make_error(errc::outcome_unknown,
                        st.config.name + ": connection lost during COMMIT; outcome unknown");
    } catch (const pqxx::broken_connection& e) {
      drop_connection(st);
      if (write_alone && st.executing)
        return lost_write();
      if (fresh || attempt > 0)
        return make_error(errc::unavailable, st.config.name + ": " + first_line(e.what()));
    } catch (const pqxx::sql_error& e) {
      if (!is_connection_state(e.sqlstate()))
        return map_sql_error(st.config.name, e, index);
      drop_connection(st);
      // A server going down may end the session between a lone write's commit and its answer.
      if (write_alone && st.executing)
        return lost_write();
      if (fresh || attempt > 0)
        return make_error(errc::unavailable, st.config.name + ": " + first_line(e.what()));
    } catch (const std::exception& e) {
      // libpqxx usage errors and the like: a bug on our side. The text names no parameter value.
      if (st.connection && !st.connection->is_open())
        drop_connection(st);
      return make_error(errc::internal, st.config.name + ": " + statement_label(index) + ": " +
                                            first_line(e.what()));
    }
    st.log->info("{} connection was stale; reconnecting", st.config.name);
  }
}

caf::expected<std::int32_t> migrate(worker_state& st) {
  if (!st.config.migrations || st.config.migrations->empty())
    return std::int32_t{0};
  try {
    if (!st.connection)
      connect(st);
    auto out = migrations::apply(*st.connection, *st.config.migrations);
    if (out.too_new || out.checksum_mismatch)
      return make_error(errc::schema_too_new, st.config.name + ": " + out.error);
    if (!out.error.empty())
      return make_error(errc::internal, st.config.name + ": " + out.error);
    if (out.applied > 0)
      st.log->info("{}: applied {} schema migration(s)", st.config.name, out.applied);
    // A rolling upgrade under way: a newer node applied expand steps this build runs beside.
    if (!out.ahead.empty()) {
      std::string names;
      for (const auto& name : out.ahead)
        names += (names.empty() ? "" : ", ") + name;
      st.log->warn("{}: the database holds {} migration(s) of a newer SBM ({}): running beside it",
                   st.config.name, out.ahead.size(), names);
    }
    return static_cast<std::int32_t>(out.applied);
  } catch (const pqxx::broken_connection& e) {
    drop_connection(st);
    return make_error(errc::unavailable, st.config.name + ": " + first_line(e.what()));
  } catch (const pqxx::sql_error& e) {
    drop_connection(st);
    return make_error(is_connection_state(e.sqlstate()) ? errc::unavailable : errc::internal,
                      st.config.name + ": migrations failed (sqlstate " + e.sqlstate() + ")");
  } catch (const std::exception& e) {
    drop_connection(st);
    return make_error(errc::internal,
                      st.config.name + ": migrations failed: " + first_line(e.what()));
  }
}

postgres_worker_actor::behavior_type worker_behavior(worker_pointer self,
                                                     postgres_worker_config config) {
  self->state.log = log::get(config.name);
  self->state.config = std::move(config);
  return {
      [self](query_atom, const db_statement& statement) -> caf::result<db_rows> {
        auto out = in_transaction(
            self, statement.until,
            [&](pqxx::transaction_base& tx, int& index) {
              index = 0;
              return execute(self->state, tx, statement, 0);
            },
            self->state.config.read_only || statement.read_only ? commit_mode::read_alone
            : statement.autocommit                                ? commit_mode::write_alone
                                                                  : commit_mode::flushed);
        if (!out)
          return std::move(out.error());
        return std::move(*out);
      },
      [self](transact_atom, const db_transaction& transaction) -> caf::result<db_results> {
        const auto& statements = transaction.statements;
        const auto mode = !transaction.unflushed ? commit_mode::flushed
                          // A count to check needs the rollback a transaction gives.
                          : statements.size() == 1 && statements[0].expect_rows < 0 ? commit_mode::unflushed_alone
                                                                                    : commit_mode::unflushed;
        auto out = in_transaction(self, transaction.until, [&](pqxx::transaction_base& tx, int& index) {
          db_results results;
          results.results.reserve(statements.size());
          for (index = 0; index < static_cast<int>(statements.size()); ++index)
            results.results.push_back(execute(self->state, tx, statements[index], index));
          return results;
        }, mode);
        if (!out)
          return std::move(out.error());
        return std::move(*out);
      },
      [self](probe_atom) -> caf::result<bool> {
        auto out = in_transaction(self, deadline{}, [](pqxx::transaction_base& tx, int&) {
          tx.exec("SELECT 1");
          return true;
        });
        if (!out)
          return std::move(out.error());
        return true;
      },
      [self](migrate_atom) -> caf::result<std::int32_t> {
        auto out = migrate(self->state);
        if (!out)
          return std::move(out.error());
        return *out;
      },
  };
}


}  // namespace

bool is_postgres_uri(const std::string& url) {
  return starts_with(url, "postgresql://") || starts_with(url, "postgres://");
}

std::string conninfo_percent_encode(const std::string& text) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 0xf];
    }
  }
  return out;
}

std::string postgres_conninfo(const std::string& url, const std::string& name, bool read_only,
                              std::chrono::milliseconds statement_timeout,
                              std::chrono::milliseconds connect_timeout) {
  // libpq's connect_timeout is in whole seconds, and values below 2 are raised to 2.
  auto connect_seconds = std::max<long long>(
      2, std::chrono::ceil<std::chrono::seconds>(connect_timeout).count());
  // A transaction whose client stops mid-way (a node frozen by SIGSTOP between two statements)
  // would hold its row locks until the client wakes: a cluster fence's lock on a speaker's
  // ownership row kept the speaker from its next owner long after the frozen node's lease lapsed.
  // The server ends such a session after the statement budget instead.
  std::string options = "-c statement_timeout=" + std::to_string(statement_timeout.count()) +
                        " -c idle_in_transaction_session_timeout=" + std::to_string(statement_timeout.count()) +
                        " -c client_min_messages=warning";
  if (read_only)
    options += " -c default_transaction_read_only=on";
  std::string application = "sbm-" + name;
  // A peer that stops answering mid-statement is given up after the statement's own budget plus a
  // little, instead of the kernel's retransmission limit (~15 minutes).
  const auto user_timeout = statement_timeout.count() + 5000;
  const std::string keepalive = "keepalives=1&keepalives_idle=10&keepalives_interval=5&"
                                "keepalives_count=3&tcp_user_timeout=" +
                                std::to_string(user_timeout);
  std::string out = url;
  if (is_postgres_uri(url)) {
    out += url.find('?') == std::string::npos ? '?' : '&';
    out += keepalive + "&";
    out += "connect_timeout=" + std::to_string(connect_seconds);
    out += "&application_name=" + conninfo_percent_encode(application);
    out += "&options=" + conninfo_percent_encode(options);
  } else {
    if (!out.empty())
      out += ' ';
    for (char c : keepalive)
      out += c == '&' ? ' ' : c;
    out += " connect_timeout=" + std::to_string(connect_seconds);
    out += " application_name='" + application + "'";
    out += " options='" + options + "'";
  }
  return out;
}

postgres_worker_actor spawn_postgres_worker(caf::local_actor* parent,
                                            postgres_worker_config config) {
  return parent->spawn<caf::detached + caf::monitored>(worker_behavior, std::move(config));
}

}  // namespace sbm::connections::detail

#include "actors/connections/connections.hpp"

#include <caf/all.hpp>


#include "actors/connections/pool.hpp"
#include "actors/connections/postgres_worker.hpp"
#include "actors/connections/redis_worker.hpp"
#include "messages/errors.hpp"

namespace sbm::connections {

namespace detail {

std::string circuit_open_detail(const std::string& name, std::chrono::seconds retry_in) {
  return name + ": circuit open, retry in " + std::to_string(retry_in.count()) + "s";
}

}  // namespace detail

namespace {

// Migrations may hold the advisory lock behind another node's long migration.
constexpr std::chrono::milliseconds migration_timeout = std::chrono::minutes{30};

using postgres_supervisor = postgres_actor::extend_with<detail::pool_internals>;
using redis_supervisor = redis_actor::extend_with<detail::pool_internals>;

struct postgres_supervisor_state {
  std::optional<detail::pool<detail::postgres_worker_actor, postgres_supervisor>> pool;
  bool migrations_pending = false;
  bool migrating = false;
  static inline const char* name = "sbm.postgres_supervisor";
};

struct redis_supervisor_state {
  std::optional<detail::pool<detail::redis_worker_actor, redis_supervisor>> pool;
  static inline const char* name = "sbm.redis_supervisor";
};

template <class Settings>
detail::pool_settings pool_settings_of(const Settings& s) {
  detail::pool_settings out;
  out.name = s.name;
  out.required = s.required;
  out.pool_size = s.pool_size;
  out.breaker = s.breaker;
  out.restart_backoff = s.restart_backoff;
  out.retry = s.retry;
  out.random_seed = s.random_seed;
  out.restart_limit = s.restart_limit;
  out.probe_interval = s.probe_interval;
  out.request_timeout = s.request_timeout;
  out.max_queued = s.max_queued;
  return out;
}

// Migrations run on the first successful probe, before any request is served. Connection
// trouble retries at the next probe; an incompatible database is fatal for the node.
void migrate_once(postgres_supervisor::stateful_pointer<postgres_supervisor_state> self,
                  caf::actor on_fatal) {
  auto& st = self->state;
  if (!st.migrations_pending || st.migrating)
    return;
  st.migrating = true;
  st.pool->bypass<std::int32_t>(
      migration_timeout,
      [self](std::int32_t) {
        self->state.migrating = false;
        self->state.migrations_pending = false;
        self->state.pool->unhold();
      },
      [self, on_fatal](caf::error err) {
        auto& st = self->state;
        st.migrating = false;
        auto detail = detail_of(err);
        if (detail.empty())
          detail = caf::to_string(err);
        if (code_of(err) != errc::schema_too_new) {
          log::get(st.pool->name())->error("{}", detail);
          st.pool->mark_down(detail);
          return;
        }
        log::get(st.pool->name())->critical("refusing this database: {}", detail);
        st.pool->fail(detail);
        if (on_fatal)
          caf::anon_send(on_fatal, fatal_atom::value, detail);
      },
      migrate_atom::value);
}

postgres_supervisor::behavior_type postgres_supervisor_impl(
    postgres_supervisor::stateful_pointer<postgres_supervisor_state> self,
    postgres_settings settings) {
  detail::postgres_worker_config worker;
  worker.name = settings.name;
  worker.conninfo = detail::postgres_conninfo(settings.url, settings.name, settings.read_only,
                                              settings.request_timeout, settings.connect_timeout);
  worker.statement_timeout = settings.request_timeout;
  worker.read_only = settings.read_only;
  worker.migrations = std::make_shared<const std::vector<migrations::migration>>(
      std::move(settings.migrations));
  auto& st = self->state;
  st.pool.emplace(self, pool_settings_of(settings), [worker, custom = settings.spawn_worker](caf::local_actor* parent) {
    return custom ? custom(parent) : detail::spawn_postgres_worker(parent, worker);
  });
  if (!worker.migrations->empty()) {
    st.migrations_pending = true;
    st.pool->hold("migrating", "schema migrations are not applied yet");
    st.pool->on_probe_success([self, on_fatal = settings.on_fatal] { migrate_once(self, on_fatal); });
  }
  st.pool->start();
  return {
      [self](query_atom atom, db_statement& statement) -> caf::result<db_rows> {
        auto until = statement.until;
        return self->state.pool->dispatch<db_rows>(until, atom, std::move(statement));
      },
      [self](transact_atom atom, db_transaction& transaction) -> caf::result<db_results> {
        auto until = transaction.until;
        return self->state.pool->dispatch<db_results>(until, atom, std::move(transaction));
      },
      [self](status_atom) { return self->state.pool->status(); },
      [self, setting = settings.max_queued_setting](metrics_atom) {
        return self->state.pool->metrics(setting);
      },
      [self](probe_atom) { self->state.pool->probe(); },
      [self](restart_atom, std::uint32_t slot) { self->state.pool->restart(slot); },
      [self](retry_atom, std::uint64_t ticket) { self->state.pool->run_retry(ticket); },
      [self](list_atom) { return self->state.pool->workers(); },
  };
}

redis_supervisor::behavior_type redis_supervisor_impl(
    redis_supervisor::stateful_pointer<redis_supervisor_state> self, redis_settings settings) {
  detail::redis_worker_config worker;
  worker.name = settings.name;
  worker.host = settings.host;
  worker.port = settings.port;
  worker.connect_timeout = settings.connect_timeout;
  worker.command_timeout = settings.command_timeout;
  self->state.pool.emplace(self, pool_settings_of(settings), [worker](caf::local_actor* parent) {
    return detail::spawn_redis_worker(parent, worker);
  });
  self->state.pool->start();
  return {
      [self](command_atom atom, redis_command& command) -> caf::result<redis_reply> {
        return self->state.pool->dispatch<redis_reply>(deadline{}, atom, std::move(command));
      },
      [self](status_atom) { return self->state.pool->status(); },
      [self](metrics_atom) { return self->state.pool->metrics({}); },
      [self](probe_atom) { self->state.pool->probe(); },
      [self](restart_atom, std::uint32_t slot) { self->state.pool->restart(slot); },
      [self](retry_atom, std::uint64_t ticket) { self->state.pool->run_retry(ticket); },
      [self](list_atom) { return self->state.pool->workers(); },
  };
}

}  // namespace

postgres_settings instanote_defaults(std::string url) {
  postgres_settings s;
  s.name = "instanote";
  s.max_queued_setting.clear();
  s.url = std::move(url);
  s.required = false;
  s.read_only = true;
  s.breaker = resilience::breaker_policy{3, std::chrono::seconds{30}};
  s.breaker.slow_call_duration = std::chrono::seconds{10};
  // Pulls are reads: a refused connection is retried 3 times (1 s, 2 s, 4 s, each +-50 %).
  s.retry = resilience::backoff_policy{3, std::chrono::seconds{1}, std::chrono::seconds{60}, 0.5};
  return s;
}

postgres_actor spawn_postgres(caf::actor_system& system, postgres_settings settings) {
  return system.spawn(postgres_supervisor_impl, std::move(settings));
}

postgres_actor spawn_postgres(caf::local_actor* parent, postgres_settings settings) {
  return parent->spawn<caf::linked>(postgres_supervisor_impl, std::move(settings));
}

redis_actor spawn_redis(caf::actor_system& system, redis_settings settings) {
  return system.spawn(redis_supervisor_impl, std::move(settings));
}

redis_actor spawn_redis(caf::local_actor* parent, redis_settings settings) {
  return parent->spawn<caf::linked>(redis_supervisor_impl, std::move(settings));
}

}  // namespace sbm::connections

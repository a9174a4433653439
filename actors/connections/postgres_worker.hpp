#pragma once
// One PostgreSQL connection in a detached actor (libpqxx blocks). Connects lazily, drops the
// connection on failure and reconnects on the next request. Private to the supervisor.
#include <caf/fwd.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "messages/atoms.hpp"
#include "messages/connections.hpp"
#include "runtime/migrations/migrations.hpp"

namespace sbm::connections::detail {

using postgres_worker_actor = caf::typed_actor<
    caf::replies_to<query_atom, db_statement>::with<db_rows>,
    caf::replies_to<transact_atom, db_transaction>::with<db_results>,
    caf::replies_to<probe_atom>::with<bool>,                  // SELECT 1
    caf::replies_to<migrate_atom>::with<std::int32_t>>;       // migrations applied

struct postgres_worker_config {
  std::string name;      // for error details and logs
  std::string conninfo;  // from postgres_conninfo()
  // The connection's own statement_timeout; a transaction whose deadline leaves less gets less.
  std::chrono::milliseconds statement_timeout{10000};
  // Every transaction read-only (the conninfo says so too): a lone statement then runs without
  // BEGIN/COMMIT, one round trip instead of three, as nothing it does can be half done.
  bool read_only = false;
  std::shared_ptr<const std::vector<migrations::migration>> migrations;
};

// The URL plus what every SBM connection wants: connect and statement timeouts, TCP keepalive and
// tcp_user_timeout (so a worker blocked on a peer that vanished gets an error and is replaced
// instead of waiting for the kernel's two-hour default), quiet notices, an application name and,
// for read-only sources, read-only transactions by default. Accepts both libpq forms.
std::string postgres_conninfo(const std::string& url, const std::string& name, bool read_only,
                              std::chrono::milliseconds statement_timeout,
                              std::chrono::milliseconds connect_timeout);

// libpq's URI form (postgresql:// or postgres://), and how a value is written into its query.
bool is_postgres_uri(const std::string& url);
std::string conninfo_percent_encode(const std::string& text);

postgres_worker_actor spawn_postgres_worker(caf::local_actor* parent, postgres_worker_config config);

}  // namespace sbm::connections::detail

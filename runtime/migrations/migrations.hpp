#pragma once
// Versioned schema migrations: one PostgreSQL schema per service area, each migration applied once
// and recorded in sbm_meta.schema_migrations. Blocking (libpqxx): call it only from a connection
// worker or a tool, never from a scheduled actor.
#include <string>
#include <vector>

namespace pqxx {
class connection_base;  // pqxx::connection derives from it; callers pass their connection
}

namespace sbm::migrations {

struct migration {
  std::string schema;  // the service area; a lowercase SQL identifier ("speakers")
  int version = 0;     // > 0, unique within the schema; applied in ascending order
  std::string name;    // file name without version and extension ("create_speakers")
  std::string sql;     // one or more statements; runs with search_path = <schema>, public
};

// A migration is an expand step unless its text holds a line that starts with this marker. An
// expand step leaves everything the previous build reads in place, so a node of that build keeps
// running on the database after a newer node applied it (a rolling upgrade); a contract step
// (dropping or renaming what an older build reads) ships in a later release than the expand it
// finishes, and a node that does not know an applied contract step refuses the database.
// tests/guard/expand_only.cmake holds every unmarked file to the expand rule.
inline constexpr const char* contract_marker = "-- sbm:contract";
bool is_contract(const migration& m);

struct outcome {
  int applied = 0;           // migrations applied by this call (0 when already up to date)
  std::string error;         // empty on success; never holds parameters or row data
  bool too_new = false;      // the database holds a contract step newer than the code knows
  bool checksum_mismatch = false;  // an applied migration's text differs from the code's (or vanished)
  // Expand steps of a newer SBM the database holds ("speakers/003_add_x"): this SBM runs beside
  // that build, as during a rolling upgrade, and says so in its log.
  std::vector<std::string> ahead;
};

// Brings the database up to date. Idempotent, and safe when several nodes call it at once: every
// step holds a transaction-scoped advisory lock, so one node applies a migration and the others
// find it applied. Each migration commits together with its record, so a failure leaves the
// earlier ones applied. Checks every recorded version first and applies nothing when the database
// holds a contract step this code does not know, a checksum differs, or a version this code has
// pending lies below one the database already holds (the histories forked).
// Throws pqxx::broken_connection when the connection fails (the caller retries later).
outcome apply(pqxx::connection_base& connection, const std::vector<migration>& migrations);

// What apply() would do, read without changing anything (no lock, no sbm_meta created): every
// migration the code or the database knows, in order, and the verdict apply() would reach first.
struct step {
  enum class state { applied, pending, unknown_to_code, differs };
  std::string schema;
  int version = 0;
  std::string name;
  state status = state::pending;
  std::string applied_at;  // UTC, "2026-11-24T10:15:00Z"; empty when pending
};
struct plan {
  std::vector<step> steps;  // sorted by schema, then version
  outcome verdict;          // error, too_new and checksum_mismatch as apply() would report them
};
// Throws pqxx::broken_connection when the connection fails.
plan inspect(pqxx::connection_base& connection, const std::vector<migration>& migrations);
const char* to_string(step::state s);

// The migrations in a folder laid out like actors/*/schema: <folder>/<schema>/NNN_name.sql, sorted.
// For tests that play a newer build (node option postgres.test-migrations-dir). Throws
// std::runtime_error naming the file that breaks the layout.
std::vector<migration> read_folder(const std::string& folder);

// Hex SHA-256 of the migration text, as recorded.
std::string checksum(const std::string& sql);

}  // namespace sbm::migrations

#include "actors/reports/notes_retention.hpp"

#include "runtime/db/retention.hpp"

namespace sbm::reports {

namespace {

// $1 retention (ms), $2 batch: the contract of runtime/db/retention.hpp.
constexpr const char* purge_sql =
  "WITH due AS ("
  "  SELECT id FROM reports.error_reports"
  "  WHERE created_at < now() - make_interval(secs => $1::double precision / 1000)"
  "    AND (additional_notes_token IS NOT NULL OR context_notes_token IS NOT NULL)"
  "  ORDER BY id LIMIT $2::integer FOR UPDATE SKIP LOCKED)"
  " UPDATE reports.error_reports r SET additional_notes_token = NULL, context_notes_token = NULL,"
  "   updated_at = now()"
  " FROM due WHERE r.id = due.id RETURNING r.id";

}  // namespace

caf::actor spawn_notes_retention(caf::actor_system& sys, const reports_settings& settings) {
  return db::spawn_retention_purge(
    sys, {settings.db, settings.db_timeout, settings.notes_retention, settings.notes_purge_interval,
          settings.notes_purge_batch, purge_sql, "reports", "notes of reports"});
}

}  // namespace sbm::reports

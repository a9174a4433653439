#include "actors/reports/notes_retention.hpp"

#include "actors/reports/store.hpp"
#include "runtime/db/retention.hpp"

namespace sbm::reports {

caf::actor spawn_notes_retention(caf::actor_system& sys, const reports_settings& settings) {
  return db::spawn_retention_purge(
    sys, {settings.db, settings.db_timeout, settings.notes_retention, settings.notes_purge_interval,
          settings.notes_purge_batch, notes_purge_sql, "reports", "notes of reports"});
}

}  // namespace sbm::reports

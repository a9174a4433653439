#include "actors/reports/notes_retention.hpp"

#include <memory>

#include "actors/reports/store.hpp"
#include "runtime/db/retention.hpp"

namespace sbm::reports {

caf::actor spawn_notes_retention(caf::actor_system& sys, const reports_settings& settings) {
  // The port's purge_notes: the PostgreSQL store over settings.db, or the simulation's store.
  auto open = [make = settings.store](const db::store_link& link) -> db::purge_call {
    std::shared_ptr<store> st = make ? make(link) : make_postgres_store(link);
    return [st](std::chrono::milliseconds retention, std::uint32_t batch, db::completion<std::uint32_t> done) {
      st->purge_notes(retention, batch, std::move(done));
    };
  };
  return db::spawn_retention_purge(sys, {settings.db, settings.db_timeout, settings.notes_retention,
                                         settings.notes_purge_interval, settings.notes_purge_batch,
                                         std::move(open), "reports", "notes of reports"});
}

}  // namespace sbm::reports

#include "actors/reports/notes_retention.hpp"

#include <caf/event_based_actor.hpp>
#include <spdlog/spdlog.h>

#include <string>

#include "messages/connections.hpp"
#include "messages/errors.hpp"
#include "runtime/db/rows.hpp"
#include "runtime/logging/logging.hpp"

namespace sbm::reports {

namespace {

// Bounded by the batch: one statement never rewrites an unbounded number of rows. The id list
// is chosen under SKIP LOCKED so two nodes purging at once do not queue behind each other.
constexpr const char* purge_sql =
  "WITH due AS ("
  "  SELECT id FROM reports.error_reports"
  "  WHERE created_at < now() - make_interval(secs => $1::double precision / 1000)"
  "    AND (additional_notes_token IS NOT NULL OR context_notes_token IS NOT NULL)"
  "  ORDER BY id LIMIT $2::integer FOR UPDATE SKIP LOCKED)"
  " UPDATE reports.error_reports r SET additional_notes_token = NULL, context_notes_token = NULL,"
  "   updated_at = now()"
  " FROM due WHERE r.id = due.id RETURNING r.id";

caf::behavior retention_fn(caf::event_based_actor* self, reports_settings settings) {
  auto log = log::get("reports");
  self->send(self, flush_atom::value);
  return {
    [self, settings, log](flush_atom) {
      db_statement stmt{purge_sql,
                        {std::to_string(settings.notes_retention.count()),
                         std::to_string(settings.notes_purge_batch)},
                        -1};
      self->request(settings.db, settings.db_timeout, query_atom::value, std::move(stmt))
        .then(
          [self, settings, log](db_rows& rows) {
            if (!rows.rows.empty())
              log->info("notes of {} reports past their retention purged", rows.rows.size());
            // A full batch means more are due: go on now rather than an interval later.
            if (rows.rows.size() >= settings.notes_purge_batch)
              self->send(self, flush_atom::value);
            else
              self->delayed_send(self, settings.notes_purge_interval, flush_atom::value);
          },
          [self, settings, log](caf::error& e) {
            log->warn("notes purge failed, retried in {} ms: {}",
                      settings.notes_purge_interval.count(), detail_of(db::failure(e)));
            self->delayed_send(self, settings.notes_purge_interval, flush_atom::value);
          });
    },
  };
}

}  // namespace

caf::actor spawn_notes_retention(caf::actor_system& sys, const reports_settings& settings) {
  if (settings.notes_retention.count() <= 0)
    return {};
  return sys.spawn(retention_fn, settings);
}

}  // namespace sbm::reports

#include "runtime/db/retention.hpp"

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <spdlog/spdlog.h>

#include <stdexcept>
#include <utility>

#include "messages/errors.hpp"
#include "runtime/db/rows.hpp"
#include "runtime/logging/logging.hpp"

namespace sbm::db {

namespace {

caf::behavior purge_fn(caf::event_based_actor* self, retention_purge settings) {
  auto log = log::get(settings.logger);
  self->send(self, flush_atom::value);
  return {
    [self, settings, log](flush_atom) {
      db_statement stmt{settings.statement,
                        {std::to_string(settings.retention.count()), std::to_string(settings.batch)},
                        -1};
      self->request(settings.db, settings.db_timeout, query_atom::value, std::move(stmt))
        .then(
          [self, settings, log](db_rows& rows) {
            if (!rows.rows.empty())
              log->info("{} past their retention purged: {}", settings.what, rows.rows.size());
            // A full batch means more are due: go on now rather than an interval later.
            if (rows.rows.size() >= settings.batch)
              self->send(self, flush_atom::value);
            else
              self->delayed_send(self, settings.interval, flush_atom::value);
          },
          [self, settings, log](caf::error& e) {
            log->warn("purge of {} failed, retried in {} ms: {}", settings.what, settings.interval.count(),
                      detail_of(failure(e)));
            self->delayed_send(self, settings.interval, flush_atom::value);
          });
    },
  };
}

}  // namespace

caf::actor spawn_retention_purge(caf::actor_system& sys, retention_purge settings) {
  if (settings.retention.count() < 0)
    throw std::invalid_argument(settings.what + ": a retention cannot be negative");
  if (settings.retention.count() == 0)
    return {};
  if (!settings.db || settings.statement.empty() || settings.interval.count() <= 0 || settings.batch == 0 ||
      settings.db_timeout.count() <= 0)
    throw std::invalid_argument(settings.what +
                                ": a retention needs a database, a statement, a positive interval and batch");
  return sys.spawn(purge_fn, std::move(settings));
}

}  // namespace sbm::db

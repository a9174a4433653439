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
  auto purge = settings.open(make_store_link(self, settings.db, settings.db_timeout));
  self->send(self, flush_atom::value);
  return {
    [self, settings, log, purge](flush_atom) {
      purge(settings.retention, settings.batch, [self, settings, log](caf::expected<std::uint32_t> purged) {
        if (!purged) {
          log->warn("purge of {} failed, retried in {} ms: {}", settings.what, settings.interval.count(),
                    detail_of(failure(purged.error())));
          self->delayed_send(self, settings.interval, flush_atom::value);
          return;
        }
        if (*purged > 0)
          log->info("{} past their retention purged: {}", settings.what, *purged);
        // A full batch means more are due: go on now rather than an interval later.
        if (*purged >= settings.batch)
          self->send(self, flush_atom::value);
        else
          self->delayed_send(self, settings.interval, flush_atom::value);
      });
    },
  };
}

}  // namespace

purge_opener statement_purge(std::string statement) {
  return [statement](const store_link& link) -> purge_call {
    return [link, statement](std::chrono::milliseconds retention, std::uint32_t batch, completion<std::uint32_t> done) {
      link.query(db_statement{statement, {std::to_string(retention.count()), std::to_string(batch)}, -1},
                 [done](caf::expected<db_rows> rows) {
                   if (!rows) return done(std::move(rows.error()));
                   done(static_cast<std::uint32_t>(rows->rows.size()));
                 });
    };
  };
}

caf::actor spawn_retention_purge(caf::actor_system& sys, retention_purge settings) {
  if (settings.retention.count() < 0)
    throw std::invalid_argument(settings.what + ": a retention cannot be negative");
  if (settings.retention.count() == 0)
    return {};
  if (!settings.open || settings.interval.count() <= 0 || settings.batch == 0 || settings.db_timeout.count() <= 0)
    throw std::invalid_argument(settings.what + ": a retention needs a purge, a positive interval and batch");
  return sys.spawn(purge_fn, std::move(settings));
}

}  // namespace sbm::db

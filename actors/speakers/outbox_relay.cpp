#include "actors/speakers/outbox_relay.hpp"

#include <caf/actor_system.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <deque>
#include <functional>
#include <exception>
#include <memory>
#include <random>
#include <string>
#include <utility>

#include "actors/speakers/store.hpp"
#include "messages/cluster.hpp"
#include "messages/errors.hpp"
#include "runtime/logging/logging.hpp"
#include "runtime/resilience/time.hpp"

namespace sbm::speakers {

namespace {

using time_point = caf::actor_clock::time_point;

constexpr std::chrono::hours purge_every{1};

using outbox_item = outbox_entry;

// One delivery target, with its own cursor over the outbox (its stamp column), so a target that is
// down backs off without holding up the others.
struct target {
  using deliver_fn = std::function<void(const outbox_item&, std::function<void(bool)>,
                                        std::function<void(const caf::error&)>)>;

  target(const char* target_name, outbox_target rows) : name(target_name), which(rows) {}

  const char* name;    // for logs
  outbox_target which;  // which rows it takes and stamps
  deliver_fn deliver;          // empty: no such target on this node; its rows wait
  bool busy = false;           // a fetch/publish/stamp chain is running
  bool again = false;          // a flush came while busy: fetch once more when done
  int failures = 0;            // consecutive, for the backoff
  // When the oldest row this target is known not to have was committed (unix ms; 0: none known).
  // Kept through failures and back-off, when the lag matters most.
  std::int64_t oldest_pending_ms = 0;
  time_point resume_at{};
  std::deque<outbox_item> queue;
};

struct relay_state {
  static inline const char* name = "sbm.outbox_relay";

  outbox_relay_settings settings;
  target bus{"event bus", outbox_target::bus};
  target stream{"redis stream", outbox_target::stream};
  target audit{"audit log", outbox_target::audit};
  db::store_link link;  // the store's way to the database, from this actor
  time_point next_tick{};
  time_point last_purge{};
  bool purging = false;
  std::minstd_rand jitter;
  std::shared_ptr<spdlog::logger> log;
};

using self_ptr = outbox_relay_actor::stateful_pointer<relay_state>;

void kick(self_ptr self, target& t);

void fail(self_ptr self, target& t, const caf::error& e) {
  auto& st = self->state;
  t.busy = false;
  t.queue.clear();
  const auto delay =
    resilience::backoff_delay(st.settings.backoff, t.failures, static_cast<std::uint64_t>(st.jitter()));
  ++t.failures;
  t.resume_at = self->clock().now() + delay;
  st.log->warn("outbox relay: {} failed ({}); retrying in {} ms", t.name,
               self->system().render(e), delay.count());
  self->delayed_send(self, delay, flush_atom::value);
}

void send_next(self_ptr self, target& t, bool batch_was_full);

void stamped(self_ptr self, target& t, bool batch_was_full) {
  t.queue.pop_front();
  if (!t.queue.empty()) t.oldest_pending_ms = t.queue.front().created_ms;
  t.failures = 0;
  send_next(self, t, batch_was_full);
}

void stamp(self_ptr self, target& t, bool batch_was_full) {
  auto& st = self->state;
  const auto id = t.queue.front().id;
  // In a cluster the stamp is fenced like a speaker write: refused (stale_owner, retried after the
  // back-off until the shard stops this relay) once this member's epoch no longer holds the singleton.
  const auto epoch = st.settings.lease ? st.settings.lease->epoch() : 0;
  st.settings.store->outbox_stamp(st.link, t.which, id, epoch,
                                  [self, &t, batch_was_full](caf::expected<bool> done) {
                                    if (!done) return fail(self, t, done.error());
                                    stamped(self, t, batch_was_full);
                                  });
}

// One row at a time, in id order: each target sees rows in commit order, and a failure stops
// the chain exactly where it was.
void send_next(self_ptr self, target& t, bool batch_was_full) {
  if (t.queue.empty()) {
    t.busy = false;
    if (!batch_was_full) t.oldest_pending_ms = 0;  // it has every row there was at the fetch
    if (batch_was_full || t.again) {
      t.again = false;
      kick(self, t);
    }
    return;
  }
  t.deliver(
    t.queue.front(),
    [self, &t, batch_was_full](bool accepted) {
      if (!accepted) {
        fail(self, t, make_error(errc::unavailable, "the target refused the row"));
        return;
      }
      stamp(self, t, batch_was_full);
    },
    [self, &t](const caf::error& e) { fail(self, t, e); });
}

void kick(self_ptr self, target& t) {
  auto& st = self->state;
  if (!t.deliver) return;
  if (t.busy) {
    t.again = true;
    return;
  }
  if (self->clock().now() < t.resume_at) return;  // backing off; its timer will flush
  t.busy = true;
  t.again = false;
  st.settings.store->outbox_pending(st.link, t.which, st.settings.batch,
                                    [self, &t](caf::expected<std::vector<outbox_entry>> rows) {
    if (!rows) return fail(self, t, rows.error());
    for (auto& row : *rows) t.queue.push_back(std::move(row));
    t.oldest_pending_ms = t.queue.empty() ? 0 : t.queue.front().created_ms;
    send_next(self, t, rows->size() >= self->state.settings.batch);
  });
}

// Delivers with a request to `handle`, which answers true once it has the row.
template <class Handle, class Atom, class Message>
target::deliver_fn deliver_to(self_ptr self, Handle handle, Atom atom, Message outbox_item::*field) {
  if (!handle) return {};
  return [self, handle, atom, field](const outbox_item& item, std::function<void(bool)> ok,
                                     std::function<void(const caf::error&)> failed) {
    self->request(handle, self->state.settings.publish_timeout, atom, item.*field)
      .then([ok](bool accepted) { ok(accepted); }, [failed](caf::error& e) { failed(e); });
  };
}

// Rows both targets have are kept for the retention period, then deleted, so the table holds
// about a day of changes however long the node runs.
void maybe_purge(self_ptr self) {
  auto& st = self->state;
  const auto now = self->clock().now();
  if (st.purging || (st.last_purge != time_point{} && now - st.last_purge < purge_every)) return;
  st.purging = true;
  st.last_purge = now;
  st.settings.store->outbox_purge(st.link, st.settings.retention, st.settings.idempotency_retention,
                                  [self](caf::expected<bool>) { self->state.purging = false; });  // next hour tries again
}

outbox_relay_actor::behavior_type relay_fn(self_ptr self, outbox_relay_settings settings) {
  auto& st = self->state;
  st.settings = std::move(settings);
  if (!st.settings.store) st.settings.store = make_postgres_store();
  st.link = db::make_store_link(self, st.settings.db, st.settings.db_timeout);
  st.bus.deliver = deliver_to(self, st.settings.bus, publish_atom::value, &outbox_item::event);
  st.stream.deliver = deliver_to(self, st.settings.stream, publish_atom::value, &outbox_item::event);
  st.audit.deliver = deliver_to(self, st.settings.audit, audit_atom::value, &outbox_item::record);
  st.jitter.seed(static_cast<std::minstd_rand::result_type>(self->id()));
  st.log = log::get("speakers");
  self->send(self, flush_atom::value);
  const resilience::wall_clock wall{self->clock().now()};
  return {
    [self](flush_atom) {
      auto& st = self->state;
      // Only one tick timer is ever pending: nudges and backoff timers poll without re-arming it.
      const auto now = self->clock().now();
      if (now >= st.next_tick) {
        st.next_tick = now + st.settings.interval;
        self->delayed_send(self, st.settings.interval, flush_atom::value);
      }
      kick(self, st.bus);
      kick(self, st.stream);
      kick(self, st.audit);
      maybe_purge(self);
    },
    [self, wall](metrics_atom) {
      auto& st = self->state;
      // Rows carry PostgreSQL's commit time, so the lag is measured on the wall clock.
      const auto now_ms = wall.unix_ms(self->clock().now());
      component_metrics m;
      m.component = "outbox-relay";
      for (const auto* t : {&st.bus, &st.stream, &st.audit}) {
        if (!t->deliver) continue;
        const auto lag = t->oldest_pending_ms == 0 ? 0 : std::max<std::int64_t>(0, now_ms - t->oldest_pending_ms);
        m.samples.push_back({"sbm_outbox_lag_seconds", {{"target", t->name}}, static_cast<double>(lag) / 1000});
      }
      return m;
    },
  };
}

}  // namespace

outbox_relay_actor spawn_outbox_relay(caf::actor_system& sys, outbox_relay_settings settings) {
  return sys.spawn(relay_fn, std::move(settings));
}

}  // namespace sbm::speakers

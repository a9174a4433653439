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

#include "actors/speakers/speaker_rows.hpp"
#include "messages/errors.hpp"
#include "messages/cluster.hpp"
#include "runtime/db/fence.hpp"
#include "runtime/db/idempotency.hpp"
#include "runtime/logging/logging.hpp"
#include "runtime/resilience/time.hpp"

namespace sbm::speakers {

namespace {

using time_point = caf::actor_clock::time_point;

constexpr std::chrono::hours purge_every{1};

// A row of the outbox as one target takes it.
struct outbox_item {
  std::int64_t id = 0;
  std::int64_t created_ms = 0;  // when the row was committed (unix ms), for the target's lag
  bucket_changed event;  // bucket_changed_topic
  audit_record record;   // audit_topic
};

// One delivery target, with its own cursor over the outbox (its stamp column), so a target that is
// down backs off without holding up the others.
struct target {
  using deliver_fn = std::function<void(const outbox_item&, std::function<void(bool)>,
                                        std::function<void(const caf::error&)>)>;

  target(const char* target_name, const char* topic_name, const char* column, const char* select)
    : name(target_name), topic(topic_name), stamp_column(column), select_columns(select) {}

  const char* name;            // for logs
  const char* topic;           // which rows it takes
  const char* stamp_column;    // which outbox column says this target has the row
  const char* select_columns;  // what read() expects, in order
  outbox_item (*read)(const db_row&) = nullptr;
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

constexpr const char* event_columns =
  "id, payload->>'speaker_id', payload->>'client_id', payload->>'previous_bucket', "
  "payload->>'new_bucket', payload->>'reason', (extract(epoch from created_at) * 1000)::bigint";

constexpr const char* audit_columns =
  "id, payload->>'actor', payload->>'actor_kind', payload->>'action', payload->>'target', "
  "payload->>'peer', jsonb_build_object('speaker_id', payload->'speaker_id', 'bucket', "
  "payload->'bucket', 'reason', payload->'reason')::text, payload->>'client_id', "
  "(extract(epoch from created_at) * 1000)::bigint";

outbox_item event_from_row(const db_row& row) {
  outbox_item item;
  auto& ev = item.event;
  item.id = ev.event_id = int_column(row, 0);
  ev.speaker_id = text_column(row, 1);
  ev.client_id = text_column(row, 2);
  ev.previous_bucket = text_column(row, 3);
  ev.new_bucket = text_column(row, 4);
  ev.reason = text_column(row, 5);
  ev.timestamp_ms = item.created_ms = int_column(row, 6);
  return item;
}

outbox_item audit_from_row(const db_row& row) {
  outbox_item item;
  auto& r = item.record;
  item.id = int_column(row, 0);
  r.actor = text_column(row, 1);
  if (r.actor.empty()) r.actor = "unknown";  // the log takes no entry without one
  r.actor_kind = text_column(row, 2);
  r.action = text_column(row, 3);
  r.target = text_column(row, 4);
  r.peer = text_column(row, 5);
  r.detail = text_column(row, 6);
  r.client_id = text_column(row, 7);  // NULL (rows written before scoping) reads as ""
  item.created_ms = int_column(row, 8);
  r.outcome = "success";
  r.status = 200;
  r.source_key = "speakers.outbox:" + std::to_string(item.id);
  return item;
}

struct relay_state {
  static inline const char* name = "sbm.outbox_relay";

  outbox_relay_settings settings;
  target bus{"event bus", bucket_changed_topic, "delivered_at", event_columns};
  target stream{"redis stream", bucket_changed_topic, "stream_published_at", event_columns};
  target audit{"audit log", audit_topic, "audited_at", audit_columns};
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
  db_statement stmt{std::string("UPDATE speakers.outbox SET ") + t.stamp_column +
                      " = now() WHERE id = $1 AND " + t.stamp_column + " IS NULL",
                    {std::to_string(id)},
                    -1};
  if (!st.settings.lease) {
    self->request(st.settings.db, st.settings.db_timeout, query_atom::value, std::move(stmt))
      .then([self, &t, batch_was_full](db_rows&) { stamped(self, t, batch_was_full); },
            [self, &t](caf::error& e) { fail(self, t, e); });
    return;
  }
  // Fenced like a speaker write: refused (stale_owner, retried after the back-off until the
  // shard stops this relay) once this member's epoch no longer holds the singleton.
  db_transaction tx;
  tx.statements.push_back(std::move(stmt));
  tx.statements.push_back(db::singleton_fence_statement(outbox_relay_singleton, st.settings.lease->epoch()));
  self->request(st.settings.db, st.settings.db_timeout, transact_atom::value, std::move(tx))
    .then([self, &t, batch_was_full](db_results&) { stamped(self, t, batch_was_full); },
          [self, &t](caf::error& e) { fail(self, t, e); });
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
  db_statement stmt{std::string("SELECT ") + t.select_columns +
                      " FROM speakers.outbox WHERE topic = $1 AND " + t.stamp_column +
                      " IS NULL ORDER BY id LIMIT $2",
                    {std::string(t.topic), std::to_string(st.settings.batch)},
                    -1};
  self->request(st.settings.db, st.settings.db_timeout, query_atom::value, std::move(stmt))
    .then(
      [self, &t](db_rows& rows) {
        try {
          for (const db_row& row : rows.rows) t.queue.push_back(t.read(row));
          t.oldest_pending_ms = t.queue.empty() ? 0 : t.queue.front().created_ms;
        } catch (const std::exception& ex) {
          fail(self, t, make_error(errc::internal, std::string("corrupt outbox row: ") + ex.what()));
          return;
        }
        send_next(self, t, rows.rows.size() >= self->state.settings.batch);
      },
      [self, &t](caf::error& e) { fail(self, t, e); });
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
  db_transaction tx;
  tx.statements.push_back(
    {"DELETE FROM speakers.outbox WHERE created_at < now() - make_interval(hours => $1) AND "
     "((topic = $2 AND delivered_at IS NOT NULL AND stream_published_at IS NOT NULL) OR "
     "(topic = $3 AND audited_at IS NOT NULL))",
     {std::to_string(st.settings.retention.count()), std::string(bucket_changed_topic),
      std::string(audit_topic)},
     -1});
  tx.statements.push_back(
    db::idempotency::purge("speakers.idempotency_keys", st.settings.idempotency_retention));
  self->request(st.settings.db, st.settings.db_timeout, transact_atom::value, std::move(tx))
    .then([self](db_results&) { self->state.purging = false; },
          [self](caf::error&) { self->state.purging = false; });  // next hour tries again
}

outbox_relay_actor::behavior_type relay_fn(self_ptr self, outbox_relay_settings settings) {
  auto& st = self->state;
  st.settings = std::move(settings);
  st.bus.read = st.stream.read = event_from_row;
  st.audit.read = audit_from_row;
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

#include "actors/speakers/outbox_relay.hpp"

#include <caf/actor_system.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <spdlog/spdlog.h>

#include <deque>
#include <exception>
#include <memory>
#include <random>
#include <string>
#include <utility>

#include "actors/speakers/speaker_rows.hpp"
#include "messages/errors.hpp"
#include "runtime/logging/logging.hpp"

namespace sbm::speakers {

namespace {

using time_point = caf::actor_clock::time_point;

constexpr std::chrono::hours purge_every{1};

// One delivery target (the bus or the stream), with its own cursor over the outbox, so a target
// that is down backs off without holding up the other.
struct target {
  target(const char* target_name, const char* column) : name(target_name), stamp_column(column) {}

  const char* name;          // for logs
  const char* stamp_column;  // which outbox column says this target has the row
  stream_publisher_actor handle;  // both targets take (publish_atom, bucket_changed) -> bool
  bool busy = false;              // a fetch/publish/stamp chain is running
  bool again = false;             // a flush came while busy: fetch once more when done
  int failures = 0;               // consecutive, for the backoff
  time_point resume_at{};
  std::deque<bucket_changed> queue;
};

struct relay_state {
  static inline const char* name = "sbm.outbox_relay";

  outbox_relay_settings settings;
  target bus{"event bus", "delivered_at"};
  target stream{"redis stream", "stream_published_at"};
  time_point next_tick{};
  time_point last_purge{};
  bool purging = false;
  std::minstd_rand jitter;
  std::shared_ptr<spdlog::logger> log;
};

using self_ptr = outbox_relay_actor::stateful_pointer<relay_state>;

void kick(self_ptr self, target& t);

bucket_changed event_from_row(const db_row& row) {
  bucket_changed ev;
  ev.event_id = int_column(row, 0);
  ev.speaker_id = text_column(row, 1);
  ev.client_id = text_column(row, 2);
  ev.previous_bucket = text_column(row, 3);
  ev.new_bucket = text_column(row, 4);
  ev.reason = text_column(row, 5);
  ev.timestamp_ms = int_column(row, 6);
  return ev;
}

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

void stamp(self_ptr self, target& t, bool batch_was_full) {
  auto& st = self->state;
  const auto id = t.queue.front().event_id;
  db_statement stmt{std::string("UPDATE speakers.outbox SET ") + t.stamp_column +
                      " = now() WHERE id = $1 AND " + t.stamp_column + " IS NULL",
                    {std::to_string(id)},
                    -1};
  self->request(st.settings.db, st.settings.db_timeout, query_atom::value, std::move(stmt))
    .then(
      [self, &t, batch_was_full](db_rows&) {
        t.queue.pop_front();
        t.failures = 0;
        send_next(self, t, batch_was_full);
      },
      [self, &t](caf::error& e) { fail(self, t, e); });
}

// One row at a time, in id order: each target sees events in commit order, and a failure stops
// the chain exactly where it was.
void send_next(self_ptr self, target& t, bool batch_was_full) {
  auto& st = self->state;
  if (t.queue.empty()) {
    t.busy = false;
    if (batch_was_full || t.again) {
      t.again = false;
      kick(self, t);
    }
    return;
  }
  self->request(t.handle, st.settings.publish_timeout, publish_atom::value, t.queue.front())
    .then(
      [self, &t, batch_was_full](bool accepted) {
        if (!accepted) {
          fail(self, t, make_error(errc::unavailable, "the target refused the event"));
          return;
        }
        stamp(self, t, batch_was_full);
      },
      [self, &t](caf::error& e) { fail(self, t, e); });
}

void kick(self_ptr self, target& t) {
  auto& st = self->state;
  if (!t.handle) return;
  if (t.busy) {
    t.again = true;
    return;
  }
  if (self->clock().now() < t.resume_at) return;  // backing off; its timer will flush
  t.busy = true;
  t.again = false;
  db_statement stmt{std::string("SELECT id, payload->>'speaker_id', payload->>'client_id', "
                                "payload->>'previous_bucket', payload->>'new_bucket', "
                                "payload->>'reason', (extract(epoch from created_at) * 1000)::bigint "
                                "FROM speakers.outbox WHERE topic = $1 AND ") +
                      t.stamp_column + " IS NULL ORDER BY id LIMIT $2",
                    {std::string(bucket_changed_topic), std::to_string(st.settings.batch)},
                    -1};
  self->request(st.settings.db, st.settings.db_timeout, query_atom::value, std::move(stmt))
    .then(
      [self, &t](db_rows& rows) {
        try {
          for (const db_row& row : rows.rows) t.queue.push_back(event_from_row(row));
        } catch (const std::exception& ex) {
          fail(self, t, make_error(errc::internal, std::string("corrupt outbox row: ") + ex.what()));
          return;
        }
        send_next(self, t, rows.rows.size() >= self->state.settings.batch);
      },
      [self, &t](caf::error& e) { fail(self, t, e); });
}

// Rows both targets have are kept for the retention period, then deleted, so the table holds
// about a day of changes however long the node runs.
void maybe_purge(self_ptr self) {
  auto& st = self->state;
  const auto now = self->clock().now();
  if (st.purging || (st.last_purge != time_point{} && now - st.last_purge < purge_every)) return;
  st.purging = true;
  st.last_purge = now;
  db_statement stmt{"DELETE FROM speakers.outbox WHERE delivered_at IS NOT NULL "
                    "AND stream_published_at IS NOT NULL "
                    "AND created_at < now() - make_interval(hours => $1)",
                    {std::to_string(st.settings.retention.count())},
                    -1};
  self->request(st.settings.db, st.settings.db_timeout, query_atom::value, std::move(stmt))
    .then([self](db_rows&) { self->state.purging = false; },
          [self](caf::error&) { self->state.purging = false; });  // next hour tries again
}

outbox_relay_actor::behavior_type relay_fn(self_ptr self, outbox_relay_settings settings) {
  auto& st = self->state;
  st.settings = std::move(settings);
  st.bus.handle = st.settings.bus;
  st.stream.handle = st.settings.stream;
  st.jitter.seed(static_cast<std::minstd_rand::result_type>(self->id()));
  st.log = log::get("speakers");
  self->send(self, flush_atom::value);
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
      maybe_purge(self);
    },
  };
}

}  // namespace

outbox_relay_actor spawn_outbox_relay(caf::actor_system& sys, outbox_relay_settings settings) {
  return sys.spawn(relay_fn, std::move(settings));
}

}  // namespace sbm::speakers

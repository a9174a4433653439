// The event feed: one listener on the bus per node, kept for HTTP readers. It numbers what it hears
// in its own order (so a cursor works whatever order event ids arrive in across a relay move),
// keeps each event_id once, and answers a waiting read with the next event its scope admits.
#include <caf/actor_cast.hpp>
#include <caf/actor_system.hpp>
#include <caf/send.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <caf/typed_response_promise.hpp>

#include <algorithm>
#include <deque>
#include <map>
#include <unordered_set>
#include <utility>

#include "actors/events/events.hpp"
#include "messages/errors.hpp"

namespace sbm::events {

namespace {

struct waiting_read {
  event_feed_query query;
  caf::typed_response_promise<event_feed_page> promise;
};

struct feed_state {
  static inline const char* name = "sbm.event_feed";
  std::size_t capacity = 1000;
  std::size_t max_waiting = 1000;
  std::deque<event_feed_entry> kept;         // oldest first, at most capacity
  std::unordered_set<std::int64_t> kept_ids;  // their event ids: a redelivered event is kept once
  std::uint64_t last_seq = 0;
  std::uint64_t next_wait = 1;
  std::map<std::uint64_t, waiting_read> waiting;  // by a number of their own, for their timers
};

using self_ptr = event_feed_actor::stateful_pointer<feed_state>;

// A cursor beyond the last number is from an earlier run of this feed (the node restarted): the
// client may have missed events, and reads on from now.
void normalise(const feed_state& st, event_feed_query& q, bool& gap) {
  q.limit = std::clamp<std::uint32_t>(q.limit, 1, 1000);
  if (q.after > st.last_seq) {
    gap = true;
    q.after = st.last_seq;
  }
  if (!st.kept.empty() && q.after + 1 < st.kept.front().seq)
    gap = true;
}

// The cursor moves past events the caller's scope leaves out too, so it never reads them again.
event_feed_page page_after(const feed_state& st, const event_feed_query& q) {
  event_feed_page page;
  page.next = q.after;
  for (const auto& e : st.kept) {
    if (e.seq <= q.after)
      continue;
    if (page.events.size() >= q.limit)
      break;
    page.next = e.seq;
    if (q.scope.admits(e.event.client_id))
      page.events.push_back(e);
  }
  return page;
}

// A read waits only when it had read everything: the new event is all it can be answered.
void hear(self_ptr self, const bucket_changed& ev) {
  auto& st = self->state;
  if (!st.kept_ids.insert(ev.event_id).second)
    return;
  st.kept.push_back({++st.last_seq, ev});
  if (st.kept.size() > st.capacity) {
    st.kept_ids.erase(st.kept.front().event.event_id);
    st.kept.pop_front();
  }
  const auto& entry = st.kept.back();
  for (auto it = st.waiting.begin(); it != st.waiting.end();) {
    it->second.query.after = entry.seq;
    if (!it->second.query.scope.admits(ev.client_id)) {
      ++it;
      continue;
    }
    event_feed_page page;
    page.events.push_back(entry);
    page.next = entry.seq;
    it->second.promise.deliver(std::move(page));
    it = st.waiting.erase(it);
  }
}

caf::result<event_feed_page> read(self_ptr self, event_feed_query& q) {
  auto& st = self->state;
  bool gap = false;
  normalise(st, q, gap);
  auto page = page_after(st, q);
  page.gap = gap;
  if (!page.events.empty() || gap || q.wait_ms <= 0 || page.next < st.last_seq)
    return page;
  q.after = page.next;
  if (st.waiting.size() >= st.max_waiting)
    return make_error(errc::overloaded,
                      std::to_string(st.max_waiting) + " reads of the event feed wait already",
                      std::chrono::seconds{1});
  const auto id = st.next_wait++;
  auto promise = self->make_response_promise<event_feed_page>();
  st.waiting.emplace(id, waiting_read{std::move(q), promise});
  self->delayed_send(self, std::chrono::milliseconds{st.waiting.at(id).query.wait_ms}, idle_atom::value, id);
  return promise;
}

event_feed_actor::behavior_type feed_fn(self_ptr self, std::size_t capacity, std::size_t max_waiting) {
  self->state.capacity = std::max<std::size_t>(1, capacity);
  self->state.max_waiting = max_waiting;
  return {
    [self](publish_atom, const bucket_changed& ev) { hear(self, ev); },
    [self](list_atom, event_feed_query& q) { return read(self, q); },
    // Nothing came in time: the read is answered with what there is (nothing), and the cursor.
    [self](idle_atom, std::uint64_t id) {
      auto& st = self->state;
      auto it = st.waiting.find(id);
      if (it == st.waiting.end())
        return;
      it->second.promise.deliver(page_after(st, it->second.query));
      st.waiting.erase(it);
    },
  };
}

}  // namespace

event_feed_actor spawn_event_feed(caf::actor_system& sys, event_bus_actor bus, std::size_t capacity,
                                  std::size_t max_waiting) {
  auto feed = sys.spawn(feed_fn, capacity, max_waiting);
  if (bus)
    caf::anon_send(bus, subscribe_atom::value, caf::actor_cast<caf::actor>(feed), false);
  return feed;
}

}  // namespace sbm::events

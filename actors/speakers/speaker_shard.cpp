#include "actors/speakers/speaker_shard.hpp"

#include <caf/actor_cast.hpp>
#include <caf/actor_system.hpp>
#include <caf/exit_reason.hpp>
#include <caf/make_counted.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/send.hpp>
#include <caf/system_messages.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <caf/typed_response_promise.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdint>
#include <exception>
#include <functional>
#include <iterator>
#include <limits>
#include <memory>
#include <string>
#include <unordered_map>
#include <type_traits>
#include <utility>

#include "actors/speakers/outbox_relay.hpp"
#include "actors/speakers/quality_measurer.hpp"
#include "actors/speakers/speaker_actor.hpp"
#include "actors/speakers/store.hpp"
#include "actors/speakers/validation.hpp"
#include "messages/cluster.hpp"
#include "messages/errors.hpp"
#include "runtime/db/idempotency.hpp"
#include "runtime/db/rows.hpp"
#include "runtime/db/store_link.hpp"
#include "runtime/domain/placement.hpp"
#include "runtime/logging/logging.hpp"

namespace sbm::speakers {

namespace {

constexpr std::uint32_t max_page = 500;
constexpr std::uint32_t max_samples = 1000;  // points of one trend answer
constexpr std::uint64_t not_seen = std::numeric_limits<std::uint64_t>::max();
const resilience::restart_limit relay_restart_limit{5, std::chrono::seconds{60}};

// A message for a speaker, kept as closures so it can wait in a buffer during a hand-off and be
// sent to whichever activation exists when it is replayed.
struct routed_job {
  std::function<void(const speaker_actor&)> run;  // sends it to the live speaker
  std::function<void(const caf::error&)> fail;    // answers the caller without a speaker
  // In a cluster: sends it to the shard of the node that owns the speaker, answered from there.
  // `lost` runs instead of an answer when BASP loses that node first.
  std::function<void(const speaker_shard_actor&, std::function<void()> lost)> forward;
  deadline until;                                 // a buffered job past it is dropped
  bool from_peer = false;  // another node's shard sent it here: never sent on a second time
  // Sending it twice changes nothing (a read, or a write with its Idempotency-Key), so one taken
  // back from a lost node is sent again rather than answered "outcome unknown".
  bool resend_safe = false;
  // Set when it is first held for a lost owner: it is held no longer than that, however often
  // the placement changes meanwhile.
  deadline held_until;
};

// A message sent on to another node's shard and not answered yet. CAF 0.17 answers nothing for a
// request in flight to a node BASP lost, so the shard takes it back (`lost`) when the placement
// says that node is unreachable, instead of at its timeout, seconds after the client's deadline.
struct sent_on {
  caf::node_id node;
  std::function<void()> lost;
};

// Where the hand-off's walk over the active speakers is (on_placement, hand_off_some).
struct handoff_walk {
  bool running = false;
  std::size_t bucket = 0;   // the next bucket to look at
  std::size_t buckets = 0;  // the table's bucket count when the walk (re)started
  std::size_t moved = 0;    // handed off by this walk
};

// A message for a speaker whose owner BASP lost while its lease still runs.
struct held_job {
  std::string id;
  routed_job job;
};

using pending_answer = std::pair<std::uint64_t, std::function<void(const caf::error&)>>;

// Requests of one speaker that the shard waits on or holds. Allocated only while there are any:
// nearly all of a million active speakers have none, and pay one pointer instead of two vectors.
struct entry_queues {
  // Requests sent to the actor and not answered yet, so a crash can fail them at once.
  std::vector<pending_answer> in_flight;
  std::vector<routed_job> buffered;  // arrived while retiring; replayed in order after its exit
};

// One per active speaker, so a million of them must stay small (32 bytes): vectors behind one
// pointer (a few entries are searched faster than hashed) rather than a deque (libstdc++
// allocates ~600 bytes for an empty one) or an unordered_map (keeps its buckets after the last
// erase).
struct speaker_entry {
  speaker_actor actor;                   // null until activated
  std::unique_ptr<entry_queues> queues;  // null while nothing is in flight or buffered
  std::uint64_t bucket_changes_seen = not_seen;
  bool retiring = false;        // idle or unusable: new messages wait, passivate once drained
  bool passivate_sent = false;

  entry_queues& held() {
    if (!queues) queues = std::make_unique<entry_queues>();
    return *queues;
  }
  std::size_t waiting() const {
    return queues ? queues->in_flight.size() + queues->buffered.size() : 0;
  }
  bool none_in_flight() const { return !queues || queues->in_flight.empty(); }
  void drop_if_empty() {
    if (queues && queues->in_flight.empty() && queues->buffered.empty()) queues.reset();
  }
};

struct failure_record {
  resilience::restart_intensity deaths;
  caf::actor_clock::time_point poisoned_until{};
};

struct shard_state {
  static inline const char* name = "sbm.speaker_shard";

  // CAF destroys the state however the shard ends, a kill included: the speakers it still holds
  // (none after shut_down) stop with it, as linked ones would.
  ~shard_state() {
    for (auto& entry : entries)
      if (entry.second.actor) caf::anon_send_exit(entry.second.actor, caf::exit_reason::user_shutdown);
  }
  shard_state() = default;
  shard_state(const shard_state&) = delete;
  shard_state& operator=(const shard_state&) = delete;

  speakers_settings settings;
  store_ptr store;
  db::store_link link;  // the shard's own calls to the store
  speaker_env_ptr env;
  outbox_relay_actor relay;
  resilience::restart_intensity relay_restarts{relay_restart_limit};
  std::unordered_map<std::string, speaker_entry> entries;
  // A live speaker's entry key by its actor id, for its exit message: the id string is not copied
  // (an unordered_map node keeps its address until erased, and both are erased together).
  std::unordered_map<caf::actor_id, const std::string*> ids_by_actor;
  std::unordered_map<std::string, failure_record> failures;
  std::uint64_t next_token = 1;
  bool sweep_armed = false;      // the idle sweep's timer is set or a sweep is under way
  std::size_t sweep_bucket = 0;  // where a sweep split into several messages continues
  std::uint64_t queued = 0;  // in flight to speakers plus buffered, all speakers
  db::idempotency::keys_in_flight keys;  // of the writes being handled now
  std::vector<quality_measurer_actor> measurers;
  std::size_t next_measurer = 0;
  std::uint32_t measuring = 0;  // texts being measured now (bounded by max_measuring)
  speaker_shard_stats stats;
  std::shared_ptr<spdlog::logger> log;
  // In a cluster (settings.lease set): the owners of speakers as the membership actor told them,
  // and their addresses in the same order for rendezvous hashing.
  cluster_placement placement;
  std::vector<std::string> owner_names;
  std::unordered_map<std::uint64_t, sent_on> forwards;  // by token (next_token)
  // Held until the placement moves the speaker (its owner's lease lapsed) or `held_until`;
  // counted in `queued`, so max_queued bounds them.
  std::vector<held_job> awaiting;
  // Speakers whose ownership row the database was too busy to take back (a hand-off of many at
  // once fills the connection pool's queue): given back at the recheck, as a row left behind
  // would keep the speaker from its next owner for as long as this node's lease runs.
  std::vector<std::string> unreleased;
  caf::actor_clock::time_point recheck_at{};  // when the recheck timer is set for (epoch: none)
  handoff_walk handoff;
};

using self_ptr = speaker_shard_actor::stateful_pointer<shard_state>;

caf::error invalid(std::string what) { return make_error(errc::invalid_argument, std::move(what)); }

// A speaker queues behind its own serialised writes, each bounded by db_timeout; this leaves room
// for a load plus a few writes before the caller is told to retry.
std::chrono::milliseconds speaker_timeout(const shard_state& st) {
  return st.settings.db_timeout * 3 + std::chrono::seconds{1};
}


// Errors the speaker sent keep their meaning; CAF's own (timeout, receiver down) mean the speaker
// could not answer now, so the caller should retry.
caf::error speaker_failure(self_ptr self, const std::string& id, const caf::error& e,
                           bool write) {
  if (e.category() == error_category) return e;
  return make_error(write ? errc::outcome_unknown : errc::unavailable,
                    "speaker " + id + " did not answer: " + self->system().render(e));
}

outbox_relay_actor start_relay(self_ptr self) {
  auto& st = self->state;
  outbox_relay_settings rs;
  rs.store = st.store;
  rs.db = st.settings.db;
  rs.bus = st.settings.bus;
  rs.stream = st.settings.stream;
  rs.audit = st.settings.audit;
  rs.idempotency_retention = st.settings.idempotency_retention;
  rs.lease = st.settings.lease;
  rs.interval = st.settings.relay_interval;
  rs.db_timeout = st.settings.db_timeout;
  // Longer than the bus's own wait for its subscribers, so the bus's answer arrives first.
  rs.publish_timeout = st.settings.db_timeout * 2;
  auto relay = spawn_outbox_relay(self->system(), std::move(rs));
  // Linked both ways: it dies with the shard however the shard ends, and its exit reaches the
  // shard's exit handler, which restarts it when it failed.
  self->link_to(relay);
  return relay;
}

// In a cluster the relay runs once per cluster, on the member holding its singleton (the
// placement says which); alone, a node always runs it. Unlinked before it is stopped, so its exit
// is not taken for a failure (or for the supervisor's stop).
void place_relay(self_ptr self) {
  auto& st = self->state;
  const auto& held = st.placement.singletons;
  const bool here = !st.settings.lease ||
                    (st.placement.ready &&
                     std::find(held.begin(), held.end(), outbox_relay_singleton) != held.end());
  if (here && !st.relay) {
    st.log->info("outbox relay starts on this node");
    st.relay = start_relay(self);
  } else if (!here && st.relay) {
    st.log->info("outbox relay stops on this node: another member runs it");
    self->unlink_from(st.relay);
    self->send_exit(st.relay, caf::exit_reason::user_shutdown);
    st.relay = nullptr;
  }
}

void maybe_passivate(self_ptr self, speaker_entry& e) {
  if (e.retiring && !e.passivate_sent && e.none_in_flight() && e.actor) {
    self->send(e.actor, passivate_atom::value);
    e.passivate_sent = true;
  }
}

void retire(self_ptr self, speaker_entry& e) {
  e.retiring = true;
  maybe_passivate(self, e);
}

bool poisoned(shard_state& st, const std::string& id, caf::actor_clock::time_point now) {
  auto f = st.failures.find(id);
  if (f == st.failures.end()) return false;
  if (f->second.poisoned_until > now) return true;
  if (f->second.deaths.recent(now) == 0) st.failures.erase(f);
  return false;
}

// Passivation needs a clock per speaker, and a delayed message per speaker cost ~250 bytes each in
// CAF's timer (the message, its multimap node, its lookup entry). One timer in the shard instead:
// every quarter of idle_timeout it asks each active speaker whether it has been idle for a whole
// period (the speaker knows; reads reach it without the shard), so one retires between idle_timeout
// and 1.25 idle_timeout after its last message.
constexpr std::size_t sweep_chunk = 4096;  // speakers asked per message: the shard stays responsive

std::chrono::milliseconds sweep_period(const shard_state& st) {
  return std::max(std::chrono::milliseconds{1}, st.settings.idle_timeout / 4);
}

void arm_sweep(self_ptr self) {
  auto& st = self->state;
  if (st.sweep_armed) return;
  st.sweep_armed = true;
  self->delayed_send(self, sweep_period(st), idle_atom::value);
}

// Walks the table bucket by bucket so a sweep can stop and resume; an entry a rehash moves behind
// the cursor waits for the next sweep, one period later.
void sweep(self_ptr self) {
  auto& st = self->state;
  const std::size_t buckets = st.entries.bucket_count();
  std::size_t asked = 0;
  std::size_t b = st.sweep_bucket;
  for (; b < buckets && asked < sweep_chunk; ++b)
    for (auto it = st.entries.begin(b); it != st.entries.end(b); ++it)
      if (it->second.actor && !it->second.retiring) {
        self->send(it->second.actor, idle_atom::value);
        ++asked;
      }
  if (b < buckets) {
    st.sweep_bucket = b;
    self->send(self, idle_atom::value);  // the rest after the messages already waiting
    return;
  }
  st.sweep_bucket = 0;
  st.sweep_armed = false;
  if (!st.entries.empty()) arm_sweep(self);
}

void activate(self_ptr self, const std::string& id, speaker_entry& e) {
  auto& st = self->state;
  e.actor = spawn_speaker(self->system(), st.env, id);
  // Monitored, not linked: a link puts an attachable on both sides, and the shard's side is a list
  // CAF walks on every exit message the shard gets (to unlink its source), so with a million
  // active speakers each passivation walked up to a million nodes; a monitor lives on the speaker
  // alone. Its exit (normal after passivation, an error when it failed) reaches the down handler.
  // No speaker outlives its shard all the same: see ~shard_state.
  self->monitor(e.actor);
  st.ids_by_actor.emplace(e.actor.id(), &id);
  e.bucket_changes_seen = not_seen;
  ++st.stats.active;
  ++st.stats.activations;
  arm_sweep(self);
}

caf::error overloaded(std::string what) {
  return make_error(errc::overloaded, std::move(what), std::chrono::seconds{1});
}

// Where a speaker's messages go. A node without a cluster owns every speaker.
// lost: the owner is a member BASP lost whose lease still runs.
enum class place { here, elsewhere, nowhere, lost };
struct owner_choice {
  place at = place::here;
  speaker_shard_actor shard;  // elsewhere: the owner's
};

owner_choice owner_of(const shard_state& st, const std::string& id) {
  if (!st.settings.lease)
    return {};
  if (!st.placement.ready || st.owner_names.empty())
    return {place::nowhere, {}};
  const auto& m = st.placement.members[domain::owner_index(st.owner_names, id)];
  if (m.address == st.placement.self)
    return {};
  // A member BASP lost may be frozen: its speakers wait for its lease to lapse (then it leaves
  // the placement and they move), since it may still be writing for them.
  if (!m.reachable)
    return {place::lost, {}};
  if (!m.speakers)
    return {place::nowhere, {}};
  return {place::elsewhere, caf::actor_cast<speaker_shard_actor>(m.speakers)};
}

// The answer when this node may not serve a speaker now: nothing was written, the caller retries
// (the gateway resends a read or a keyed write itself; clients see 503 with Retry-After) and by
// then the owner is settled.
caf::error not_here(const std::string& id, place at) {
  return make_error(errc::moving,
                    at == place::nowhere || at == place::lost
                      ? "speaker " + id + " has no reachable owner now (the cluster is changing)"
                      : "speaker " + id + " is moving to another node",
                    std::chrono::seconds{1});
}

// A message another node's shard sent on to this one (it believed this node the owner).
bool from_peer(self_ptr self) {
  const auto& sender = self->current_sender();
  return sender && sender->node() != self->node();
}

// Counts a message sent on to its owner against the shard's bound on waiting work; the answer
// releases it (forward_to).
caf::optional<caf::error> admit_forward(shard_state& st) {
  if (st.queued >= st.settings.max_queued)
    return overloaded(std::to_string(st.queued) + " speaker requests are waiting already");
  ++st.queued;
  return caf::none;
}

// Another node may die with the message (CAF answers nothing for it then), so that hop has a
// timer even for a read or a request with a deadline: a little past the deadline, when the caller
// has had its answer, it only frees the slot.
caf::duration forward_timeout(self_ptr self, const deadline& until) {
  return caf::duration{until.left(self->clock().now(), speaker_timeout(self->state)) +
                       std::chrono::seconds{1}};
}

// One hop to the owner's shard, whose answer (or failure) goes to `answer`. A lost answer is the
// same as a speaker's: unknown outcome for a write, retry for a read.
// `lost` answers instead when the owner's node is lost first (take_back); it owns the slot then.
template <class Result, class Answer, class... Ts>
void forward_to(self_ptr self, const speaker_shard_actor& owner, const std::string& id,
                caf::duration timeout, bool write, Answer answer, std::function<void()> lost,
                const Ts&... xs) {
  auto& st = self->state;
  const auto token = st.next_token++;
  st.forwards.emplace(token, sent_on{owner.node(), std::move(lost)});
  self->request(owner, timeout, xs...)
    .then(
      [self, token, answer](Result& r) mutable {
        if (self->state.forwards.erase(token) == 0) return;
        --self->state.queued;
        answer(std::move(r));
      },
      [self, token, id, write, answer](caf::error& e) mutable {
        if (self->state.forwards.erase(token) == 0) return;
        --self->state.queued;
        answer(speaker_failure(self, id, e, write));
      });
}

// The answer to a message taken back from a lost node that is not sent again: it may have been
// applied there before the node died.
caf::error lost_with_owner(const std::string& id, bool resend_safe) {
  if (resend_safe)
    return make_error(errc::moving, "the owner of speaker " + id + " was lost with this request; send it again",
                      std::chrono::seconds{1});
  return make_error(errc::outcome_unknown, "the owner of speaker " + id +
                                             " was lost before it answered; the write may or may not have been saved");
}

void dispatch(self_ptr self, const std::string& id, routed_job job, bool replay = false);

// One timer for what waits on time (held messages, rows to give back), set for the earliest.
void arm_recheck(self_ptr self, std::chrono::milliseconds wait) {
  auto& st = self->state;
  const auto at = self->clock().now() + std::max(wait, std::chrono::milliseconds{1});
  if (st.recheck_at != caf::actor_clock::time_point{} && st.recheck_at <= at) return;
  st.recheck_at = at;
  self->delayed_send(self, at - self->clock().now(), recheck_atom::value);
}

// Waits for the placement to move the speaker; answered errc::moving at `held_until`.
void hold(self_ptr self, const std::string& id, routed_job job) {
  auto& st = self->state;
  const auto now = self->clock().now();
  if (!job.held_until.set()) {
    job.held_until = deadline::after(now, st.settings.owner_wait);
    if (job.until.set() && job.until.at_ns < job.held_until.at_ns) job.held_until = job.until;
  }
  if (job.held_until.passed(now)) return job.fail(not_here(id, place::lost));
  if (auto refused = admit_forward(st)) return job.fail(*refused);
  const auto wait = job.held_until.left(now, st.settings.owner_wait);
  st.awaiting.push_back({id, std::move(job)});
  arm_recheck(self, wait);
}

// Each held message again: to its owner if the placement moved it, else held until its time.
void release_held(self_ptr self) {
  auto held = std::move(self->state.awaiting);
  self->state.awaiting.clear();
  for (auto& h : held) dispatch(self, h.id, std::move(h.job), true);
}

void give_back(self_ptr self, const std::string& id);
void hand_off_some(self_ptr self);

// The hand-off's walk goes on; rows not given back are tried again; held messages the placement
// has not moved (it would have released them) are answered errc::moving once past their time.
void on_recheck(self_ptr self) {
  auto& st = self->state;
  st.recheck_at = {};
  hand_off_some(self);
  auto unreleased = std::move(st.unreleased);
  st.unreleased.clear();
  for (const auto& id : unreleased) give_back(self, id);
  const auto now = self->clock().now();
  std::vector<held_job> expired;
  auto kept = std::partition(st.awaiting.begin(), st.awaiting.end(),
                             [now](const held_job& h) { return !h.job.held_until.passed(now); });
  std::move(kept, st.awaiting.end(), std::back_inserter(expired));
  st.awaiting.erase(kept, st.awaiting.end());
  st.queued -= expired.size();
  for (auto& h : expired) h.job.fail(not_here(h.id, place::lost));
  if (st.awaiting.empty()) return;
  auto first = std::chrono::milliseconds::max();
  for (const auto& h : st.awaiting) first = std::min(first, h.job.held_until.left(now, first));
  arm_recheck(self, first);
}

// The placement says these nodes are lost: what was sent on to them comes back at once.
void take_back(self_ptr self) {
  auto& st = self->state;
  if (st.forwards.empty() || !st.placement.ready) return;
  std::vector<caf::node_id> lost;
  for (const auto& m : st.placement.members)
    if (!m.reachable && m.speakers) lost.push_back(m.speakers.node());
  if (lost.empty()) return;
  std::vector<std::function<void()>> back;
  for (auto it = st.forwards.begin(); it != st.forwards.end();) {
    if (std::find(lost.begin(), lost.end(), it->second.node) == lost.end()) {
      ++it;
      continue;
    }
    back.push_back(std::move(it->second.lost));
    it = st.forwards.erase(it);
  }
  if (!back.empty())
    st.log->warn("cluster: {} request(s) in flight to a lost member taken back", back.size());
  for (auto& fn : back) fn();
}

// `replay`: the job was buffered during a hand-off and counts against the bounds already.
void dispatch(self_ptr self, const std::string& id, routed_job job, bool replay) {
  auto& st = self->state;
  // Only the owner activates; a message that came from a peer is not sent on again (two views
  // that disagree must not bounce it), except when a hand-off here held it.
  // One being handed off from here waits for the hand-off like its earlier messages.
  auto owner = owner_of(st, id);
  auto held = owner.at == place::here ? st.entries.end() : st.entries.find(id);
  if (owner.at != place::here && (held == st.entries.end() || !held->second.retiring)) {
    if (replay) --st.queued;
    if (owner.at == place::lost && (replay || !job.from_peer)) return hold(self, id, std::move(job));
    if (owner.at != place::elsewhere || (job.from_peer && !replay))
      return job.fail(not_here(id, owner.at));
    if (auto refused = admit_forward(st))
      return job.fail(*refused);
    // Taken back from a lost node: sent again (held for the next owner) when that is safe.
    auto lost = [self, id, job]() mutable {
      if (job.resend_safe) return dispatch(self, id, std::move(job), true);
      --self->state.queued;
      job.fail(lost_with_owner(id, false));
    };
    job.forward(owner.shard, std::move(lost));
    return;
  }
  const auto now = self->clock().now();
  if (poisoned(st, id, now)) {
    if (replay) --st.queued;
    job.fail(make_error(errc::poison_message,
                        "speaker " + id + " failed repeatedly; refused until its cool-down ends"));
    return;
  }
  if (job.until.passed(now)) {
    if (replay) --st.queued;
    job.fail(make_error(errc::deadline_exceeded,
                        "dropped unstarted: its deadline passed while speaker " + id + " was busy"));
    return;
  }
  auto slot = st.entries.try_emplace(id).first;
  auto& e = slot->second;
  if (!replay) {
    if (e.waiting() >= st.settings.max_queued_per_speaker) {
      job.fail(overloaded("speaker " + id + " has " +
                          std::to_string(st.settings.max_queued_per_speaker) +
                          " requests waiting already"));
      return;
    }
    if (st.queued >= st.settings.max_queued) {
      job.fail(overloaded(std::to_string(st.queued) + " speaker requests are waiting already"));
      return;
    }
    ++st.queued;
  }
  if (e.retiring) {
    // Akka's lesson: never drop a message during a hand-off; it goes to the next activation.
    e.held().buffered.push_back(std::move(job));
    ++st.stats.buffered;
    ++st.stats.handed_off;
    return;
  }
  if (!e.actor) activate(self, slot->first, e);
  job.run(e.actor);
}

// Records that a request got its answer; false when the crash handling already answered it.
bool settle(self_ptr self, const std::string& id, std::uint64_t token) {
  auto& st = self->state;
  auto it = st.entries.find(id);
  if (it == st.entries.end()) return false;
  if (!it->second.queues) return false;
  auto& pending = it->second.queues->in_flight;
  auto found = std::find_if(pending.begin(), pending.end(),
                            [token](const pending_answer& p) { return p.first == token; });
  if (found == pending.end()) return false;
  pending.erase(found);
  it->second.drop_if_empty();  // idle speakers own no heap
  --st.queued;
  maybe_passivate(self, it->second);
  return true;
}

// The context of a message, for its deadline and key (reads carry none).
template <class T>
const request_context* context_of([[maybe_unused]] const T& x) {
  if constexpr (std::is_same_v<T, bucket_pin> || std::is_same_v<T, bucket_unpin> ||
                std::is_same_v<T, quality_sample>)
    return &x.ctx;
  else
    return nullptr;
}

template <class... Ts>
const request_context* context_in(const Ts&... xs) {
  const request_context* found = nullptr;
  ((found = found ? found : context_of(xs)), ...);
  return found;
}

// After a write that changed the bucket the outbox has a new row: nudge the relay instead of
// waiting for its next tick. The first answer after an activation has nothing to compare with,
// so it nudges too; a spare poll costs little.
// A pin or unpin always leaves an audit row in the outbox.
enum class kind { read, write, audited_write };

void note_answer(self_ptr self, const std::string& id, const speaker_view& v, kind k) {
  auto& st = self->state;
  auto it = st.entries.find(id);
  if (it == st.entries.end()) return;
  // Without a relay here the holder's own timer finds the row.
  if (st.relay && (k == kind::audited_write ||
                   (k == kind::write && it->second.bucket_changes_seen != v.bucket_changes)))
    self->send(st.relay, flush_atom::value);
  it->second.bucket_changes_seen = v.bucket_changes;
}

void note_answer(self_ptr, const std::string&, const speaker_history&, kind) {
  // histories change nothing
}

// The activation a read of `id` may go straight to, or null when the read must take the full
// route (not active, not yet answered since its activation, so perhaps still loading or unable
// to load; retiring; poisoned). Such a read is delegated: the speaker answers the
// caller itself and the shard keeps no book of it, which halves the messages of the commonest
// request (and the shard is crossed by every speaker request, so it must stay cheap). Nothing the
// book protects is lost: a speaker that dies with the read in its mailbox answers it with an
// error (CAF bounces it to the caller), a passivation sent later queues behind it (one sender,
// FIFO), and a read changes nothing the shard tracks. Reads are not counted against the shard's
// queue bounds; each waits for a client's connection, so gateway.max-connections bounds them.
const speaker_actor* live_speaker(self_ptr self, const std::string& id) {
  auto& st = self->state;
  auto it = st.entries.find(id);
  if (it == st.entries.end()) return nullptr;
  auto& e = it->second;
  if (!e.actor || e.retiring || e.bucket_changes_seen == not_seen) return nullptr;
  if (poisoned(st, id, self->clock().now())) return nullptr;
  return &e.actor;
}

// The fence refused a write of this activation: this node's lease lapsed (it was frozen or cut
// off) or the speaker is another live lease's. Nothing was written; the activation is handed off
// (its memory may be behind the new owner's writes) and the caller resends, to whichever node owns
// the speaker once the views agree.
caf::error ownership_lost(self_ptr self, const std::string& id) {
  auto& st = self->state;
  if (auto it = st.entries.find(id); it != st.entries.end() && it->second.actor && !it->second.retiring) {
    st.log->warn("speaker {}: a write was refused by the cluster fence; handing the speaker off",
                 log::escape(id));
    retire(self, it->second);
  }
  return make_error(errc::moving,
                    "speaker " + id + " is no longer this node's (its lease moved); nothing was written",
                    std::chrono::seconds{1});
}

// Forwards with `request`, not `delegate`: the shard must see the answer to keep its in-flight
// book, which is what lets it fail requests at once when a speaker dies.
template <class Result, kind Kind, class... Ts>
caf::result<Result> route(self_ptr self, const std::string& id, bool peer, Ts... xs) {
  auto& st = self->state;
  const request_context* ctx = context_in(xs...);
  std::string key;
  if (ctx)
    if (auto busy = st.keys.claim(*ctx, key)) return *busy;
  auto rp = self->template make_response_promise<Result>();
  // Every answer, however it comes, releases the key.
  auto answer = [self, rp, key](auto&& value) mutable {
    self->state.keys.release(key);
    rp.deliver(std::forward<decltype(value)>(value));
  };
  routed_job job;
  if (ctx) job.until = ctx->until;
  job.fail = [answer](const caf::error& e) mutable { answer(e); };
  job.from_peer = peer;
  job.resend_safe = Kind == kind::read || (ctx && ctx->keyed());
  // A read carries no deadline, but its caller has a timer of its own and a speaker that dies
  // answers with an error, so the hop needs none (a timer per read costs a clock registration).
  const auto timeout = Kind == kind::read ? caf::duration{caf::infinite}
                                          : hop_timeout(job.until, speaker_timeout(st));
  // The owner's shard takes the id with the message, where its speaker does not (get, history).
  job.forward = [self, id, answer, until = job.until, xs...](const speaker_shard_actor& owner,
                                                             std::function<void()> lost) {
    const auto limit = forward_timeout(self, until);
    if constexpr (sizeof...(Ts) == 1)
      forward_to<Result>(self, owner, id, limit, Kind != kind::read, answer, std::move(lost), xs..., id);
    else
      forward_to<Result>(self, owner, id, limit, Kind != kind::read, answer, std::move(lost), xs...);
  };
  job.run = [self, id, answer, timeout, xs...](const speaker_actor& target) mutable {
    auto& st = self->state;
    const std::uint64_t token = st.next_token++;
    st.entries[id].held().in_flight.emplace_back(token,
                                     [answer](const caf::error& e) mutable { answer(e); });
    self->request(target, timeout, xs...)
      .then(
        [self, id, token, answer](Result& r) mutable {
          if (!settle(self, id, token)) return;
          note_answer(self, id, r, Kind);
          answer(std::move(r));
        },
        [self, id, token, answer](caf::error& e) mutable {
          if (!settle(self, id, token)) return;
          if (code_of(e) == errc::stale_owner) return answer(ownership_lost(self, id));
          answer(speaker_failure(self, id, e, Kind != kind::read));
        });
  };
  dispatch(self, id, std::move(job));
  return rp;
}

// The rate of a sample given as texts is measured on a detached measurer first; the shard only
// forwards, so a maximal pair of texts holds up neither it nor the scheduler.
caf::result<speaker_view> measure_then_route(self_ptr self, quality_sample s) {
  auto& st = self->state;
  if (s.ctx.until.passed(self->clock().now())) return deadline_passed();
  if (st.measuring >= st.settings.max_measuring)
    return overloaded(std::to_string(st.measuring) + " quality measurements are running already");
  ++st.measuring;
  auto& measurer = st.measurers[st.next_measurer++ % st.measurers.size()];
  auto rp = self->make_response_promise<speaker_view>();
  auto delivered = std::move(s.delivered_text);
  auto verified = std::move(s.verified_text);
  s.delivered_text.clear();
  s.verified_text.clear();
  s.from_texts = false;
  self->request(measurer, hop_timeout(s.ctx.until, speaker_timeout(st)), measure_atom::value,
                std::move(delivered), std::move(verified))
    .then(
      [self, rp, s](double rate) mutable {
        --self->state.measuring;
        s.errors_per_100_words = rate;
        rp.delegate(caf::actor_cast<speaker_shard_actor>(self), sample_atom::value, std::move(s));
      },
      [self, rp](caf::error& e) mutable {
        --self->state.measuring;
        rp.deliver(e.category() == error_category
                     ? e
                     : make_error(errc::unavailable, "the quality could not be measured: " +
                                                       self->system().render(e)));
      });
  return rp;
}

// In a cluster an activation's end gives the speaker's ownership row back before anything else
// happens to the speaker here: until then its entry stays, without an actor and retiring, so
// new messages wait behind the held ones in order; then they are replayed (to a new activation,
// or to the owner the placement chose now).
void replay_held(self_ptr self, const std::string& id) {
  auto& st = self->state;
  auto it = st.entries.find(id);
  if (it == st.entries.end() || it->second.actor) return;
  std::vector<routed_job> held;
  if (auto& q = it->second.queues) held = std::move(q->buffered);
  st.stats.buffered -= held.size();
  st.entries.erase(it);
  for (auto& job : held) dispatch(self, id, std::move(job), true);
}

// A busy database (overloaded, unavailable) is asked again a moment later, under the same lease;
// meanwhile the speaker's messages wait in its entry, as during the hand-off itself.
void give_back(self_ptr self, const std::string& id) {
  auto& st = self->state;
  const auto epoch = st.settings.lease->epoch();
  if (epoch == 0) return replay_held(self, id);  // no lease, no row of this node's
  st.store->release(st.link, id, epoch, [self, id, epoch](caf::expected<bool> done) {
    auto& st = self->state;
    if (!done && (code_of(done.error()) == errc::overloaded || code_of(done.error()) == errc::unavailable) &&
        st.settings.lease->epoch() == epoch) {
      st.unreleased.push_back(id);
      arm_recheck(self, std::chrono::milliseconds{100});
      return;
    }
    // The row stays until the lease lapses; the speaker's next owner waits for that.
    if (!done)
      st.log->warn("speaker {}: its ownership row was not given back: {}", log::escape(id),
                   self->system().render(done.error()));
    replay_held(self, id);
  });
}


void on_speaker_exit(self_ptr self, const std::string& id, const caf::error& reason) {
  auto& st = self->state;
  --st.stats.active;
  auto it = st.entries.find(id);
  if (it == st.entries.end()) return;
  std::vector<pending_answer> in_flight;
  if (auto& q = it->second.queues) in_flight = std::move(q->in_flight);
  st.queued -= in_flight.size();
  std::vector<routed_job> buffered;
  if (st.settings.lease) {
    // The buffered messages stay with the entry until the ownership row is given back.
    it->second.actor = speaker_actor{};
    it->second.retiring = true;
    it->second.passivate_sent = false;
    it->second.drop_if_empty();
  } else {
    if (auto& q = it->second.queues) buffered = std::move(q->buffered);
    st.stats.buffered -= buffered.size();
    st.entries.erase(it);
  }

  caf::error answer;
  if (reason && reason != caf::exit_reason::normal) {
    ++st.stats.failures;
    const auto now = self->clock().now();
    auto rec = st.failures.try_emplace(id, failure_record{
                                             resilience::restart_intensity{st.settings.speaker_restarts},
                                             {}});
    const bool within_limit = rec.first->second.deaths.record(now);
    if (!within_limit) rec.first->second.poisoned_until = now + st.settings.poison_cooldown;
    st.log->warn("speaker {} failed: {}{}", log::escape(id), self->system().render(reason),
                 within_limit ? "; re-activated on its next message"
                              : "; restart limit exceeded, refused during the cool-down");
    // It may have written before it failed: retry with the key to learn.
    answer = make_error(errc::outcome_unknown,
                        "speaker " + id +
                          " failed while handling this request; it is re-activated from durable "
                          "state on the next message");
  } else {
    ++st.stats.passivations;
    answer = make_error(errc::unavailable, "speaker " + id + " stopped before answering; retry");
  }
  for (auto& pending : in_flight) pending.second(answer);
  if (st.settings.lease) return give_back(self, id);
  for (auto& job : buffered) dispatch(self, id, std::move(job), true);
}

void shut_down(self_ptr self, const caf::error& reason) {
  auto& st = self->state;
  const auto answer = make_error(errc::unavailable, "speakers are shutting down");
  for (auto& [id, e] : st.entries) {
    if (e.queues) {
      for (auto& pending : e.queues->in_flight) pending.second(make_error(errc::outcome_unknown, "speakers are shutting down"));
      for (auto& job : e.queues->buffered) job.fail(answer);
      e.queues.reset();
    }
    if (e.actor) self->send_exit(e.actor, reason);
  }
  st.ids_by_actor.clear();
  st.entries.clear();
  for (auto& h : st.awaiting) h.job.fail(answer);
  st.awaiting.clear();
  if (st.relay) self->send_exit(st.relay, reason);
  for (auto& measurer : st.measurers) self->send_exit(measurer, reason);
  self->quit(reason);
}

void on_relay_exit(self_ptr self, const caf::error& reason) {
  auto& st = self->state;
  if (!reason || reason == caf::exit_reason::normal) return;
  if (!st.relay_restarts.record(self->clock().now())) {
    st.log->error("outbox relay keeps failing ({}); stopping the speakers shard",
                  self->system().render(reason));
    shut_down(self, reason);
    return;
  }
  st.log->warn("outbox relay failed ({}); restarting it", self->system().render(reason));
  st.relay = start_relay(self);
}

caf::result<speaker_view> on_register(self_ptr self, speaker_registration& r) {
  auto& st = self->state;
  if (auto e = check_id("speaker_id", r.speaker_id)) return invalid(*e);
  if (auto e = check_id("client_id", r.client_id)) return invalid(*e);
  if (!r.ctx.scope.admits(r.client_id))
    return invalid("client_id: not one of the clients you may act for");
  if (auto e = check_text("display_name", r.display_name, max_text_bytes, false))
    return invalid(*e);
  if (auto e = check_text("actor", r.actor, max_id_bytes, false)) return invalid(*e);
  if (r.ctx.until.passed(self->clock().now())) return deadline_passed();
  // Registered by the speaker's owner (its fence checks the node may write for the speaker).
  if (auto owner = owner_of(st, r.speaker_id); owner.at != place::here) {
    if (owner.at != place::elsewhere || from_peer(self)) return not_here(r.speaker_id, owner.at);
    if (auto refused = admit_forward(st)) return *refused;
    auto rp = self->make_response_promise<speaker_view>();
    auto lost = [self, rp, id = r.speaker_id, keyed = r.ctx.keyed()]() mutable {
      --self->state.queued;
      rp.deliver(lost_with_owner(id, keyed));
    };
    forward_to<speaker_view>(self, owner.shard, r.speaker_id, forward_timeout(self, r.ctx.until), true,
                             [rp](auto&& value) mutable { rp.deliver(std::forward<decltype(value)>(value)); },
                             std::move(lost), register_atom::value, r);
    return rp;
  }
  std::string key;
  if (auto busy = st.keys.claim(r.ctx, key)) return *busy;
  new_speaker fresh{r.speaker_id, r.client_id, r.display_name,
                    std::string(to_string(st.settings.policy.initial_bucket)), r.actor};
  fence_epoch epoch;
  if (st.settings.lease) epoch = st.settings.lease->epoch();
  auto rp = self->make_response_promise<speaker_view>();
  auto answer = [self, rp, key](auto&& value) mutable {
    self->state.keys.release(key);
    rp.deliver(std::forward<decltype(value)>(value));
  };
  // Timed by the registration's deadline, not the shard's own default.
  const auto link = db::make_store_link(self, st.settings.db,
                                        answer_timeout(self->clock().now(), r.ctx.until, st.settings.db_timeout, store_answer_travel));
  st.store->create(link, fresh, r.ctx, epoch,
                   [self, answer, link, id = r.speaker_id, ctx = r.ctx](caf::expected<speaker_record> made) mutable {
                     auto& st = self->state;
                     if (made) {
                       if (auto it = st.entries.find(id); it != st.entries.end()) retire(self, it->second);
                       made->view.window_capacity = st.settings.policy.window_size;
                       return answer(std::move(made->view));
                     }
                     auto& e = made.error();
                     // This node's lease lapsed: nothing was registered, the owner of the next view does it.
                     if (code_of(e) == errc::stale_owner)
                       return answer(make_error(errc::moving, "speaker " + id + " is no longer this node's to register",
                                                std::chrono::seconds{1}));
                     if (code_of(e) != errc::duplicate)
                       return answer(outcome_unknown(e)
                                       ? make_error(errc::outcome_unknown, "the registration of speaker " + id +
                                                                             " may or may not have been saved")
                                       : db::failure(e));
                     if (!ctx.keyed()) return answer(std::move(e));
                     st.store->find_key(
                       link, ctx, st.settings.idempotency_retention,
                       [self, answer, ctx, duplicate = e](caf::expected<keyed_answer> found) mutable {
                         if (!found)
                           return answer(make_error(errc::outcome_unknown, "the Idempotency-Key could not be checked: " +
                                                                             detail_of(db::failure(found.error()))));
                         auto out = answer_of(*found, ctx, duplicate, self->state.settings.policy.window_size);
                         if (out)
                           answer(std::move(*out));
                         else
                           answer(std::move(out.error()));
                       });
                   });
  return rp;
}

// Keyset pagination on speaker_id: stable under inserts and cheap at any depth. Filters travel as
// parameters; NULL means "any".
caf::result<speaker_page> on_list(self_ptr self, speaker_query& q) {
  auto& st = self->state;
  caf::optional<std::string> bucket_filter;
  caf::optional<std::string> client_filter;
  caf::optional<std::string> after;
  if (!q.bucket.empty()) {
    if (!parse_bucket(q.bucket))
      return invalid("bucket must be one of no_touch, low_touch, medium_touch, high_touch");
    bucket_filter = q.bucket;
  }
  if (!q.client_id.empty()) {
    if (auto e = check_id("client_id", q.client_id)) return invalid(*e);
    client_filter = q.client_id;
  }
  if (!q.cursor.empty()) {
    if (auto e = check_id("cursor", q.cursor)) return invalid(*e);
    after = q.cursor;
  }
  const std::uint32_t limit = std::clamp<std::uint32_t>(q.limit, 1, max_page);
  auto rp = self->make_response_promise<speaker_page>();
  // One row more than asked tells whether another page exists.
  st.store->list(st.link, list_filter{bucket_filter, client_filter, after, limit + 1, q.scope},
                 [self, rp, limit](caf::expected<std::vector<speaker_record>> rows) mutable {
                   if (!rows) return void(rp.deliver(db::failure(rows.error())));
                   speaker_page page;
                   for (auto& row : *rows) {
                     if (page.items.size() == limit) {
                       page.next_cursor = page.items.back().speaker_id;
                       break;
                     }
                     row.view.window_capacity = self->state.settings.policy.window_size;
                     page.items.push_back(std::move(row.view));
                   }
                   rp.deliver(std::move(page));
                 });
  return rp;
}

// Read here, not by the speaker actor: a chart of an idle speaker should not activate it, and the
// scope is applied by the statement itself, so another client's speaker reads as unknown.
caf::result<quality_samples> on_samples(self_ptr self, samples_query& q) {
  auto& st = self->state;
  if (auto e = check_id("speaker_id", q.speaker_id)) return invalid(*e);
  if (q.has_from && q.has_to && q.from_ms >= q.to_ms) return invalid("from must be before to");
  const std::uint32_t limit = std::clamp<std::uint32_t>(q.limit, 1, max_samples);
  auto rp = self->make_response_promise<quality_samples>();
  st.store->samples(st.link, q, limit,
                    [self, rp, id = q.speaker_id](caf::expected<std::pair<bool, quality_samples>> found) mutable {
                      if (!found) return void(rp.deliver(db::failure(found.error())));
                      if (!found->first)
                        return void(rp.deliver(make_error(errc::not_found, "speaker " + id + " is not registered")));
                      const auto& policy = self->state.settings.policy;
                      quality_samples out = std::move(found->second);
                      out.speaker_id = id;
                      out.window_capacity = policy.window_size;
                      out.no_touch_max = policy.bands.no_touch_max;
                      out.low_touch_max = policy.bands.low_touch_max;
                      out.medium_touch_max = policy.bands.medium_touch_max;
                      rp.deliver(std::move(out));
                    });
  return rp;
}

// Walks the active speakers a chunk at a time (as the sweep does), handing off those the placement
// gives to another node, so a placement change at a million active speakers does not hold up the
// shard. A rehash meanwhile (the table grew) starts the walk again: a speaker it missed would stay
// active here while its new owner waited for its ownership row.
constexpr std::size_t handoff_chunk = 1024;  // speakers looked at per message

void hand_off_some(self_ptr self) {
  auto& st = self->state;
  auto& walk = st.handoff;
  if (!walk.running) return;
  if (st.entries.bucket_count() != walk.buckets) walk = handoff_walk{true, 0, st.entries.bucket_count(), walk.moved};
  std::size_t seen = 0;
  std::size_t b = walk.bucket;
  for (; b < walk.buckets && seen < handoff_chunk; ++b)
    for (auto it = st.entries.begin(b); it != st.entries.end(b); ++it, ++seen)
      if (it->second.actor && !it->second.retiring && owner_of(st, it->first).at != place::here) {
        retire(self, it->second);
        ++walk.moved;
      }
  if (b < walk.buckets) {
    walk.bucket = b;
    self->send(self, recheck_atom::value);  // the rest after the messages already waiting
    return;
  }
  walk.running = false;
  if (walk.moved > 0) st.log->info("cluster placement: {} active speaker(s) handed off", walk.moved);
}

// The owners changed: each active speaker that is now another node's is handed off (it stops
// taking messages, finishes what it has, passivates, gives its row back; what waited is then
// sent to the new owner). Only those move, never the others.
void on_placement(self_ptr self, cluster_placement& p) {
  auto& st = self->state;
  st.placement = std::move(p);
  st.owner_names.clear();
  for (const auto& m : st.placement.members) st.owner_names.push_back(m.address);
  if (!st.settings.lease) return;
  place_relay(self);
  take_back(self);
  release_held(self);
  st.log->info("cluster placement: {} owner(s){}", st.owner_names.size(), st.placement.ready ? "" : " (not ready)");
  st.handoff = handoff_walk{true, 0, st.entries.bucket_count(), 0};
  hand_off_some(self);
}

caf::optional<caf::error> bad_route(const std::string& id) {
  if (auto e = check_id("speaker_id", id)) return invalid(*e);
  return caf::none;
}

speaker_shard_actor::behavior_type shard_fn(self_ptr self, speakers_settings settings) {
  auto& st = self->state;
  st.settings = std::move(settings);
  st.log = log::get("speakers");
  st.store = st.settings.store ? st.settings.store : make_postgres_store();
  st.link = db::make_store_link(self, st.settings.db, st.settings.db_timeout);
  auto env = caf::make_counted<speaker_env>();
  env->store = st.store;
  env->db = st.settings.db;
  env->shard = caf::actor_cast<speaker_shard_actor>(self);
  env->policy = st.settings.policy;
  env->idle_timeout = st.settings.idle_timeout;
  env->db_timeout = st.settings.db_timeout;
  env->idempotency_retention = st.settings.idempotency_retention;
  env->lease = st.settings.lease;
  env->views = st.settings.views;
  st.env = std::move(env);
  place_relay(self);
  for (std::uint32_t i = 0; i < std::max<std::uint32_t>(1, st.settings.measurers); ++i)
    st.measurers.push_back(spawn_quality_measurer(self, st.settings.detached_measurers));

  self->set_exit_handler([self](caf::exit_msg& m) {
    auto& st = self->state;
    if (st.relay && m.source == st.relay.address()) {
      on_relay_exit(self, m.reason);
      return;
    }
    for (auto& measurer : st.measurers) {
      if (measurer.address() != m.source) continue;
      // A measurer holds nothing: a new one takes its place (its callers got an error).
      if (m.reason && m.reason != caf::exit_reason::normal) {
        st.log->warn("a quality measurer failed ({}); replacing it", self->system().render(m.reason));
        measurer = spawn_quality_measurer(self, st.settings.detached_measurers);
      }
      return;
    }
    // From whoever supervises the shard: stop, and take the children along. A normal exit of
    // some other linked actor is no reason to stop (CAF's default does the same).
    if (!m.reason || m.reason == caf::exit_reason::normal) return;
    shut_down(self, m.reason);
  });

  self->set_down_handler([self](caf::down_msg& m) {
    auto& st = self->state;
    const auto source = m.source ? m.source.id() : caf::invalid_actor_id;
    auto a = st.ids_by_actor.find(source);
    if (a == st.ids_by_actor.end()) return;
    const std::string id = *a->second;
    st.ids_by_actor.erase(a);
    on_speaker_exit(self, id, m.reason);
  });

  return {
    [self](register_atom, speaker_registration& r) { return on_register(self, r); },
    [self](get_atom, const std::string& id) -> caf::result<speaker_view> {
      // A live speaker's id passed bad_route when it was activated: the hot read skips the check
      // (a fifth of the shard's work per get, measured with bench_actor_messaging under callgrind).
      if (auto* live = live_speaker(self, id)) return self->delegate(*live, get_atom::value);
      if (auto e = bad_route(id)) return *e;
      return route<speaker_view, kind::read>(self, id, from_peer(self), get_atom::value);
    },
    [self](history_atom, const std::string& id) -> caf::result<speaker_history> {
      if (auto e = bad_route(id)) return *e;
      return route<speaker_history, kind::read>(self, id, from_peer(self), history_atom::value);
    },
    [self](pin_atom, bucket_pin& p) -> caf::result<speaker_view> {
      if (auto e = bad_route(p.speaker_id)) return *e;
      return route<speaker_view, kind::audited_write>(self, p.speaker_id, from_peer(self), pin_atom::value, p);
    },
    [self](unpin_atom, bucket_unpin& u) -> caf::result<speaker_view> {
      if (auto e = bad_route(u.speaker_id)) return *e;
      return route<speaker_view, kind::audited_write>(self, u.speaker_id, from_peer(self), unpin_atom::value, u);
    },
    [self](sample_atom, quality_sample& s) -> caf::result<speaker_view> {
      if (auto e = bad_route(s.speaker_id)) return *e;
      if (s.from_texts) return measure_then_route(self, std::move(s));
      return route<speaker_view, kind::write>(self, s.speaker_id, from_peer(self), sample_atom::value, s);
    },
    [self](list_atom, speaker_query& q) { return on_list(self, q); },
    [self](samples_atom, samples_query& q) { return on_samples(self, q); },
    [self](status_atom) { return self->state.stats; },
    [self](metrics_atom) -> caf::result<component_metrics> {
      // The shard's own counts: a scrape never asks a speaker. Its child, the outbox relay, adds
      // its lag (left out when it does not answer in time).
      const auto& st = self->state;
      const auto& s = st.stats;
      component_metrics m;
      m.component = "speakers";
      m.samples = {
        {"sbm_speakers_active", {}, static_cast<double>(s.active)},
        {"sbm_speaker_activations_total", {}, static_cast<double>(s.activations)},
        {"sbm_speaker_passivations_total", {}, static_cast<double>(s.passivations)},
        {"sbm_speaker_failures_total", {}, static_cast<double>(s.failures)},
        {"sbm_speaker_handoff_messages_total", {}, static_cast<double>(s.handed_off)},
        {"sbm_speaker_handoff_buffered_messages", {}, static_cast<double>(s.buffered)},
      };
      m.queues.push_back({"speakers.queued", "speakers.max-queued", st.queued, st.settings.max_queued});
      m.queues.push_back({"speakers.measuring", "", st.measuring, st.settings.max_measuring});
      if (!st.relay) return m;
      auto rp = self->make_response_promise<component_metrics>();
      // It answers from memory; a scrape waits at most metrics.component-timeout for the shard.
      self->request(st.relay, std::chrono::milliseconds{500}, metrics_atom::value)
        .then(
          [rp, m](component_metrics& relay) mutable {
            for (auto& s : relay.samples) m.samples.push_back(std::move(s));
            rp.deliver(std::move(m));
          },
          [rp, m](caf::error&) mutable { rp.deliver(std::move(m)); });
      return rp;
    },
    [self](idle_atom) { sweep(self); },
    [self](recheck_atom) { on_recheck(self); },
    [self](placement_atom, cluster_placement& p) { on_placement(self, p); },
    [self](idle_atom, const std::string& id) {
      auto& st = self->state;
      auto it = st.entries.find(id);
      if (it == st.entries.end() || !it->second.actor) return;
      // Only the live activation may retire itself; a late idle from an earlier one is ignored.
      if (caf::actor_cast<caf::actor_addr>(self->current_sender()) != it->second.actor.address())
        return;
      retire(self, it->second);
    },
  };
}

}  // namespace

speaker_shard_actor spawn_speaker_shard(caf::actor_system& sys, speakers_settings settings) {
  return sys.spawn(shard_fn, std::move(settings));
}

}  // namespace sbm::speakers

#include "actors/cluster/membership.hpp"

#include <caf/actor_system.hpp>
#include <caf/io/middleman.hpp>
#include <caf/io/middleman_actor.hpp>
#include <caf/openssl/manager.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>
#include <set>

#include "actors/cluster/store.hpp"
#include "messages/errors.hpp"
#include "runtime/logging/logging.hpp"

namespace sbm::cluster {

namespace {

struct member_entry {
  cluster_member info;
  bool reachable = true;
  bool leased = false;  // its lease was live at the last reading
  lease last;           // that reading
};

struct membership_state {
  static inline const char* name = "sbm.cluster";
  membership_settings settings;
  std::unique_ptr<store> db;
  std::shared_ptr<spdlog::logger> log;
  std::string address;  // host:port, this node's name in the member list
  std::int64_t epoch = 0;
  std::string phase = "joining";
  bool published = false;
  bool joined = false;  // a seed answered, or there is no seed but this node
  bool acquiring = false;
  bool seed_armed = false;  // a seed tick is on its way (one chain of them, however often called)
  lease own;
  caf::actor_clock::time_point read_at{};  // when `own` and the members' leases were read
  std::map<std::string, member_entry> members;  // by address, this node not included
  std::set<std::string> introducing;  // addresses a connect and join is under way to
  std::set<std::string> failing;      // addresses whose last connect or join failed (logged once)
  bool draining = false;  // an operator drained this node: it owns no speaker any more
  bool left = false;      // the lease was given back (a clean stop): no new one is taken
  // A member it tried to join speaks an incompatible version of the messages: this node stays out
  // of the cluster (it owns and routes nothing) until it is restarted with a compatible build.
  bool refused = false;
  std::set<std::string> incompatible;  // addresses refused for their version (logged once each)
  cluster_placement told;  // what the shard was told last
  std::vector<caf::actor> told_peers;  // what the event bus was told last
  // Singletons this node holds, and until when at the latest: its renewal's send time plus the
  // lease's length, a bound the database's expiry is never earlier than. Past it, with no answer,
  // it holds none, as another member may take them once the database sees the lease lapse.
  std::set<std::string> held;
  caf::actor_clock::time_point held_until{};
  // When the leases are read again because a member BASP lost should have lapsed by then (the
  // epoch of that clock when no such reading is due).
  caf::actor_clock::time_point recheck_at{};
};

using self_ptr = membership_actor::stateful_pointer<membership_state>;

// The middleman's actor, or the openssl manager's (the same interface over TLS).
caf::io::middleman_actor transport(self_ptr self) {
  if (self->state.settings.transport)
    return self->state.settings.transport;
  auto& sys = self->system();
  return self->state.settings.tls ? sys.openssl_manager().actor_handle() : sys.middleman().actor_handle();
}

std::string address_of(const std::string& host, std::uint16_t port) {
  return host + ":" + std::to_string(port);
}

cluster_member self_member(self_ptr self) {
  auto& st = self->state;
  return {st.address, st.settings.node_name, st.epoch, caf::actor_cast<caf::actor>(self),
          caf::actor_cast<caf::actor>(st.settings.speakers), st.draining,
          caf::actor_cast<caf::actor>(st.settings.events),
          caf::actor_cast<caf::actor>(st.settings.patterns)};
}

std::vector<cluster_member> all_members(self_ptr self) {
  std::vector<cluster_member> out{self_member(self)};
  for (const auto& [address, m] : self->state.members)
    out.push_back(m.info);
  return out;
}

void broadcast(self_ptr self) {
  const auto list = all_members(self);
  for (const auto& [address, m] : self->state.members)
    if (m.reachable && m.info.membership)
      self->send(caf::actor_cast<membership_actor>(m.info.membership), members_atom::value, list);
}

// Adds a member this node did not know, or knew at an older epoch (a restarted node), through
// a handle of a direct connection to it, and monitors it. True when it was new.
bool add_member(self_ptr self, const cluster_member& m) {
  auto& st = self->state;
  if (m.address == st.address || !m.membership || m.epoch <= 0)
    return false;
  auto it = st.members.find(m.address);
  if (it != st.members.end() && it->second.info.epoch >= m.epoch &&
      (it->second.reachable || it->second.info.epoch > m.epoch))
    return false;
  if (it != st.members.end() && it->second.info.membership)
    self->demonitor(it->second.info.membership);
  member_entry e;
  e.info = m;
  st.members[m.address] = e;
  self->monitor(m.membership);
  st.log->info("cluster: member {} ({}) epoch {} joined the view", m.address, m.name, m.epoch);
  return true;
}

// A failed connect or join is retried every tick: said once per address until it works.
void failed(self_ptr self, const std::string& target, const char* what, const caf::error& e) {
  auto& st = self->state;
  st.introducing.erase(target);
  if (st.failing.insert(target).second)
    st.log->warn("cluster: {} {}: {}", target, what, self->system().render(e));
  else
    st.log->debug("cluster: {} {}: {}", target, what, self->system().render(e));
}

void learn(self_ptr self, const std::vector<cluster_member>& list);
void tell_placement(self_ptr self);
void join(self_ptr self, const std::string& target, std::chrono::milliseconds timeout,
          const membership_actor& peer, const caf::strong_actor_ptr& ptr);

std::string describe(const messages_version& v) {
  return std::to_string(v.current) + " (reads from " + std::to_string(v.oldest) + ")";
}

// A node that has not joined yet and meets a member it cannot talk with stays out: the cluster
// is the members that already agree, and this node is the newcomer.
void stay_out(self_ptr self) {
  auto& st = self->state;
  if (st.joined || st.refused)
    return;
  st.refused = true;
  st.phase = "refused";
  st.log->error("cluster: this node stays out of the cluster and owns no speaker: restart it with a "
                "build whose messages the members read");
  tell_placement(self);
}

// The member at `target` answered the hello with a version this node cannot talk with.
void incompatible(self_ptr self, const std::string& target, const messages_version& theirs) {
  auto& st = self->state;
  st.introducing.erase(target);
  if (st.incompatible.insert(target).second)
    st.log->error("cluster: {} refused: it speaks messages version {}, this node {}", target,
                  describe(theirs), describe(st.settings.version));
  stay_out(self);
}

// The member at `target` refused this node's hello: it cannot read this node's messages.
void refused_by(self_ptr self, const std::string& target, const caf::error& e) {
  auto& st = self->state;
  st.introducing.erase(target);
  if (st.incompatible.insert(target).second)
    st.log->error("cluster: {} refused this node: {}", target, detail_of(e));
  stay_out(self);
}

// Connects to a membership actor by address and joins through it. The member is added with the
// handle of this direct connection: a handle passed on by a third node is routed through it, so
// that node's death would look like this one's (CAF 0.17 makes no direct connections on its own).
void introduce(self_ptr self, const std::string& host, std::uint16_t port) {
  auto& st = self->state;
  const auto target = address_of(host, port);
  if (st.epoch == 0 || target == st.address || !st.introducing.insert(target).second)
    return;
  auto mm = transport(self);
  const auto timeout = st.settings.call_timeout;
  self->request(mm, timeout, caf::connect_atom::value, host, port)
    .then(
      [self, target, timeout](const caf::node_id&, caf::strong_actor_ptr& ptr,
                              const std::set<std::string>&) {
        if (!ptr) {
          failed(self, target, "not reachable", make_error(errc::not_found, "no actor published there"));
          return;
        }
        auto peer = caf::actor_cast<membership_actor>(ptr);
        auto& st = self->state;
        self->request(peer, timeout, hello_atom::value, st.settings.version, st.address)
          .then(
            [self, target, timeout, peer, ptr](const messages_version& theirs) {
              if (!compatible(self->state.settings.version, theirs))
                return incompatible(self, target, theirs);
              join(self, target, timeout, peer, ptr);
            },
            [self, target](caf::error& e) {
              if (code_of(e) == errc::conflict)
                return refused_by(self, target, e);
              failed(self, target, "refused the join", e);
            });
      },
      [self, target](caf::error& e) { failed(self, target, "not reachable", e); });
}

// After the hello: the join itself, answered with the member list.
void join(self_ptr self, const std::string& target, std::chrono::milliseconds timeout,
          const membership_actor& peer, const caf::strong_actor_ptr& ptr) {
  self->request(peer, timeout, join_atom::value, self_member(self))
    .then(
      [self, target, direct = caf::actor_cast<caf::actor>(ptr)](std::vector<cluster_member>& list) {
        auto& st = self->state;
        st.introducing.erase(target);
        st.failing.erase(target);
        st.joined = true;
        bool added = false;
        for (auto& m : list)
          if (m.address == target) {
            m.membership = direct;
            added = add_member(self, m);
          }
        if (added)
          broadcast(self);
        learn(self, list);
        tell_placement(self);
      },
      [self, target](caf::error& e) { failed(self, target, "refused the join", e); });
}

void introduce(self_ptr self, const std::string& address) {
  const auto colon = address.rfind(':');
  try {
    if (colon != std::string::npos) {
      introduce(self, address.substr(0, colon),
                static_cast<std::uint16_t>(std::stoul(address.substr(colon + 1))));
      return;
    }
  } catch (const std::exception&) {
  }
  self->state.log->warn("cluster: member address '{}' is not host:port", address);
}

// Members another node told of: each one not known yet (or known at an older epoch) is
// introduced to directly.
void learn(self_ptr self, const std::vector<cluster_member>& list) {
  auto& st = self->state;
  for (const auto& m : list) {
    if (m.address == st.address || m.epoch <= 0)
      continue;
    auto it = st.members.find(m.address);
    if (it == st.members.end() || it->second.info.epoch < m.epoch)
      introduce(self, m.address);
    else if (it->second.info.epoch == m.epoch && m.draining && !it->second.info.draining) {
      it->second.info.draining = true;
      st.log->info("cluster: member {} ({}) epoch {} drains", m.address, m.name, m.epoch);
    }
  }
}

// The other members' buses, so that an event published here reaches their listeners too.
void tell_peers(self_ptr self) {
  auto& st = self->state;
  if (!st.settings.events)
    return;
  std::vector<caf::actor> peers;
  for (const auto& [address, m] : st.members)
    if (m.info.events)
      peers.push_back(m.info.events);
  if (peers == st.told_peers)
    return;
  st.told_peers = peers;
  self->send(st.settings.events, peers_atom::value, std::move(peers));
}

// Every leased member that is not draining may own speakers, this node included once it holds
// its lease. A node that has not met every member yet may take a speaker that is another's: the
// activation's claim of the ownership row (or the fence of a write) refuses it while the other
// holds it, and it is handed back once the views agree. Told to the shard only when it changed.
void tell_placement(self_ptr self) {
  auto& st = self->state;
  tell_peers(self);
  if (!st.settings.speakers)
    return;
  cluster_placement p;
  p.self = st.address;
  p.ready = st.epoch != 0 && !st.refused;
  if (p.ready) {
    p.singletons.assign(st.held.begin(), st.held.end());
    if (!st.draining)
      p.members.push_back({st.address, st.epoch, caf::actor{}, true});
    for (const auto& [address, m] : st.members)
      if (!m.info.draining)
        p.members.push_back({address, m.info.epoch, m.info.speakers, m.reachable, m.info.patterns});
    std::sort(p.members.begin(), p.members.end(),
              [](const placement_member& a, const placement_member& b) { return a.address < b.address; });
  }
  auto same = [](const cluster_placement& a, const cluster_placement& b) {
    if (a.ready != b.ready || a.members.size() != b.members.size() || a.singletons != b.singletons)
      return false;
    for (std::size_t i = 0; i < a.members.size(); ++i)
      if (a.members[i].address != b.members[i].address || a.members[i].epoch != b.members[i].epoch ||
          a.members[i].reachable != b.members[i].reachable ||
          a.members[i].speakers != b.members[i].speakers ||
          a.members[i].patterns != b.members[i].patterns)
        return false;
    return true;
  };
  if (same(p, st.told))
    return;
  st.told = p;
  st.log->info("cluster: {} owner(s) of speakers{}, {} singleton(s) held here", p.members.size(),
               p.ready ? "" : " (not ready)", p.singletons.size());
  for (const auto& listener : st.settings.pattern_listeners)
    self->send(listener, placement_atom::value, p);
  self->send(st.settings.speakers, placement_atom::value, std::move(p));
}

void publish(self_ptr self) {
  auto& st = self->state;
  auto mm = transport(self);
  self->request(mm, st.settings.call_timeout, caf::publish_atom::value, st.settings.port,
                caf::actor_cast<caf::strong_actor_ptr>(self), std::set<std::string>{},
                st.settings.host, true)
    .then(
      [self](std::uint16_t port) {
        self->state.published = true;
        self->state.log->info("cluster: membership published on {}:{}", self->state.settings.host, port);
      },
      [self](caf::error& e) {
        // A restarted membership actor may find its predecessor's port still closing: retried.
        self->state.log->warn("cluster: cannot publish on {}: {}", self->state.address,
                              self->system().render(e));
      });
}

void on_seed_tick(self_ptr self) {
  auto& st = self->state;
  if (!st.published)
    publish(self);
  if (st.epoch != 0 && !st.joined) {
    bool any_other = false;
    for (const auto& [host, port] : st.settings.seeds) {
      if (address_of(host, port) == st.address)
        continue;
      any_other = true;
      introduce(self, host, port);
    }
    // The first node has only itself to join: it is the cluster.
    if (!any_other)
      st.joined = true;
  }
  if ((!st.published || !st.joined) && !st.seed_armed) {
    st.seed_armed = true;
    self->delayed_send(self, st.settings.renew_interval, seed_atom::value);
  }
}

// The lease is the last word: a member without a live lease leaves the view, and a live lease
// of a node not in the view is a node to join.
void reconcile(self_ptr self, const std::vector<lease>& live) {
  auto& st = self->state;
  std::map<std::int64_t, const lease*> by_epoch;
  for (const auto& l : live)
    by_epoch[l.epoch] = &l;
  for (auto it = st.members.begin(); it != st.members.end();) {
    auto found = by_epoch.find(it->second.info.epoch);
    if (found == by_epoch.end()) {
      st.log->warn("cluster: member {} ({}) epoch {} left: its lease lapsed", it->first,
                   it->second.info.name, it->second.info.epoch);
      if (it->second.info.membership)
        self->demonitor(it->second.info.membership);
      it = st.members.erase(it);
      continue;
    }
    it->second.leased = true;
    it->second.last = *found->second;
    ++it;
  }
  // Live leases of nodes not in the view (or at a newer epoch), and members BASP lost whose lease
  // still runs (a frozen node that woke, a cut link that healed): connect to them again.
  std::vector<cluster_member> seen;
  for (const auto& l : live)
    if (l.epoch != st.epoch)
      seen.push_back({l.address, l.node_name, l.epoch, caf::actor{}});
  learn(self, seen);
  for (const auto& [address, m] : st.members)
    if (!m.reachable)
      introduce(self, address);
  if (auto mine = by_epoch.find(st.epoch); mine != by_epoch.end())
    st.own.speakers = mine->second->speakers;
  tell_placement(self);
}

// A lost member's speakers move once its lease lapses, and waiting for the next renewal's reading
// would add up to cluster.lease-renew-interval to that: the leases are read again just after the
// earliest lost member's lease ends, as the last reading had it (a renewal since can only make it
// later; that reading then finds it live and sets the next time).
constexpr auto recheck_margin = std::chrono::milliseconds{20};

void arm_recheck(self_ptr self) {
  auto& st = self->state;
  auto due = caf::actor_clock::time_point::max();
  for (const auto& [address, m] : st.members)
    if (!m.reachable && m.leased)
      due = std::min(due, st.read_at + std::chrono::milliseconds{std::max<std::int64_t>(m.last.expires_in_ms, 0)} +
                            recheck_margin);
  if (due == caf::actor_clock::time_point::max())
    return;
  if (st.recheck_at != caf::actor_clock::time_point{} && st.recheck_at <= due)
    return;
  st.recheck_at = due;
  const auto now = self->clock().now();
  self->delayed_send(self, std::max<caf::timespan>(due - now, std::chrono::milliseconds{1}),
                     recheck_atom::value);
}

void read_leases(self_ptr self) {
  self->state.db->live([self](caf::expected<std::vector<lease>> live) {
    if (!live) {
      self->state.log->warn("cluster: cannot read the leases: {}", self->system().render(live.error()));
      return;
    }
    self->state.read_at = self->clock().now();
    reconcile(self, *live);
    arm_recheck(self);
  });
}

// Asked at every renewal: a singleton that is free (its holder's lease is gone or it was given
// back) is taken by the first member to ask; one this node holds stays its own.
void hold_singletons(self_ptr self, caf::actor_clock::time_point renewal_sent) {
  auto& st = self->state;
  if (st.epoch == 0 || st.draining || st.left)
    return;
  st.held_until = renewal_sent + st.settings.lease_ttl;
  const auto epoch = st.epoch;
  for (const auto& name : st.settings.singletons)
    st.db->hold_singleton(name, epoch, [self, name, epoch](caf::expected<bool> held) {
      auto& st = self->state;
      if (st.epoch != epoch || st.draining || st.left)
        return;
      if (!held) {
        // Nothing is decided: held_until ends it if the lease is not renewed in time.
        st.log->warn("cluster: cannot ask for singleton {}: {}", name, self->system().render(held.error()));
        return;
      }
      const bool had = st.held.count(name) > 0;
      if (*held && !had) {
        st.held.insert(name);
        st.log->info("cluster: this node runs {} for the cluster (epoch {})", name, epoch);
      } else if (!*held && had) {
        st.held.erase(name);
        st.log->warn("cluster: {} is another member's now", name);
      }
      tell_placement(self);
    });
}

void drop_singletons(self_ptr self, const char* why) {
  auto& st = self->state;
  if (st.held.empty())
    return;
  st.log->warn("cluster: {} singleton(s) stopped here: {}", st.held.size(), why);
  st.held.clear();
}

void on_lease_tick(self_ptr self) {
  auto& st = self->state;
  if (st.left)
    return;
  if (!st.held.empty() && self->clock().now() >= st.held_until) {
    drop_singletons(self, "the lease was not renewed in time");
    tell_placement(self);
  }
  self->delayed_send(self, st.settings.renew_interval, lease_atom::value);
  // The leases do not say who drains, and a member that missed the drain's broadcast (lost, or
  // not sent as it was unreachable then; a reconnect under the same epoch need not tell it) would
  // route speakers here for as long as this node runs, each handed straight back: told again
  // every tick while it drains.
  if (st.draining && st.epoch != 0)
    broadcast(self);
  if (st.epoch == 0) {
    if (st.acquiring)
      return;
    st.acquiring = true;
    const auto sent = self->clock().now();
    st.db->acquire(st.address, st.settings.node_name, st.settings.lease_ttl,
                   [self, sent](caf::expected<lease> got) {
                     auto& st = self->state;
                     st.acquiring = false;
                     if (!got) {
                       st.log->warn("cluster: cannot take a lease: {}", self->system().render(got.error()));
                       return;
                     }
                     st.epoch = got->epoch;
                     st.own = *got;
                     st.read_at = self->clock().now();
                     st.phase = "member";
                     st.joined = false;  // (re)join under the new epoch
                     if (st.settings.lease)
                       st.settings.lease->set(st.epoch);
                     st.log->info("cluster: lease taken, epoch {} ({} as {})", st.epoch, st.address,
                                  st.settings.node_name);
                     on_seed_tick(self);
                     read_leases(self);
                     tell_placement(self);
                     hold_singletons(self, sent);
                   });
    return;
  }
  const auto sent = self->clock().now();
  st.db->renew(st.epoch, st.settings.lease_ttl, [self, sent, epoch = st.epoch](caf::expected<lease> got) {
    auto& st = self->state;
    // A renewal is sent every tick, answered or not: a late answer for an epoch already given up
    // must not end the one taken since.
    if (st.epoch != epoch)
      return;
    if (got) {
      st.own = *got;
      read_leases(self);
      hold_singletons(self, sent);
      return;
    }
    if (code_of(got.error()) == errc::stale_owner) {
      // Its speakers may already live elsewhere: write nothing more under this epoch, take a new
      // one at the next tick (the database refuses the old one's writes in any case).
      st.log->error("cluster: the lease of epoch {} lapsed before it was renewed", st.epoch);
      if (st.settings.lease)
        st.settings.lease->set(0);
      st.epoch = 0;
      st.phase = "lease_lost";
      drop_singletons(self, "the lease lapsed");
      tell_placement(self);
      return;
    }
    // The database did not answer: the lease still runs until it lapses, and the fence refuses
    // every write after that, so nothing is decided here.
    st.log->warn("cluster: cannot renew the lease of epoch {}: {}", st.epoch,
                 self->system().render(got.error()));
  });
}

std::int64_t since_ms(self_ptr self) {
  if (self->state.read_at == caf::actor_clock::time_point{})
    return 0;
  return std::chrono::duration_cast<std::chrono::milliseconds>(self->clock().now() - self->state.read_at)
    .count();
}

cluster_status status_of(self_ptr self) {
  auto& st = self->state;
  const auto elapsed = since_ms(self);
  cluster_status out;
  out.enabled = true;
  out.address = st.address;
  out.state = st.refused ? "refused" : st.draining && st.epoch != 0 ? "draining" : st.phase;
  out.epoch = st.epoch;
  out.lease_age_ms = st.epoch == 0 ? -1 : st.own.age_ms + elapsed;
  cluster_member_status me;
  me.address = st.address;
  me.name = st.settings.node_name;
  me.epoch = st.epoch;
  me.state = st.epoch == 0 ? "joining" : "up";
  me.self = true;
  me.draining = st.draining;
  me.speakers = st.epoch == 0 ? -1 : st.own.speakers;
  me.lease_age_ms = out.lease_age_ms;
  me.lease_expires_in_ms = st.epoch == 0 ? -1 : st.own.expires_in_ms - elapsed;
  out.members.push_back(me);
  for (const auto& [address, m] : st.members) {
    cluster_member_status s;
    s.address = address;
    s.name = m.info.name;
    s.epoch = m.info.epoch;
    s.state = m.reachable ? "up" : "unreachable";
    s.draining = m.info.draining;
    if (m.leased) {
      s.speakers = m.last.speakers;
      s.lease_age_ms = m.last.age_ms + elapsed;
      s.lease_expires_in_ms = m.last.expires_in_ms - elapsed;
    }
    out.members.push_back(std::move(s));
  }
  return out;
}

membership_actor::behavior_type membership_fn(self_ptr self, membership_settings settings) {
  auto& st = self->state;
  st.settings = std::move(settings);
  st.log = log::get("cluster");
  st.address = address_of(st.settings.host, st.settings.port);
  auto pg = st.settings.db;
  const auto timeout = st.settings.call_timeout;
  if (st.settings.make_store)
    st.db = st.settings.make_store(db::make_store_link(self, pg, timeout));
  else
    st.db = make_postgres_store([self, pg, timeout](db_statement statement, completion<db_rows> done) {
      self->request(pg, timeout, query_atom::value, std::move(statement))
        .then([done](db_rows& rows) { done(std::move(rows)); },
              [done](caf::error& e) { done(std::move(e)); });
    });
  self->set_down_handler([self](caf::down_msg& msg) {
    for (auto& [address, m] : self->state.members) {
      if (m.info.membership && m.info.membership.address() == msg.source && m.reachable) {
        m.reachable = false;
        self->state.log->warn("cluster: member {} ({}) epoch {} unreachable: {}", address, m.info.name,
                              m.info.epoch, self->system().render(msg.reason));
      }
    }
    tell_placement(self);
    // Read at once: when its lease ends is known only as of the last reading.
    read_leases(self);
  });
  // The port is given back when this actor ends, so its restart can publish again; the epoch
  // is no longer renewed, so speakers stop writing under it (the restart takes a new one).
  self->attach_functor([mm = transport(self), addr = self->address(), port = st.settings.port,
                        lease = st.settings.lease] {
    caf::anon_send(mm, caf::unpublish_atom::value, addr, port);
    if (lease)
      lease->set(0);
  });
  self->send(self, lease_atom::value);
  st.seed_armed = true;
  self->send(self, seed_atom::value);
  return {
    // Before a join: a node of an incompatible version is refused here, before any message it
    // could not read is exchanged.
    [self](hello_atom, const messages_version& theirs,
           const std::string& address) -> caf::result<messages_version> {
      auto& st = self->state;
      if (compatible(st.settings.version, theirs))
        return st.settings.version;
      if (st.incompatible.insert(address).second)
        st.log->error("cluster: refused {}: it speaks messages version {}, this node {}", address,
                      describe(theirs), describe(st.settings.version));
      // Worded for the asker, whose log shows it.
      return make_error(errc::conflict, "incompatible messages: it speaks version " +
                                          describe(st.settings.version) + ", this node " + describe(theirs));
    },
    // The joining node connected to this one: its handle is direct.
    [self](join_atom, cluster_member& m) -> std::vector<cluster_member> {
      if (add_member(self, m))
        broadcast(self);
      tell_placement(self);
      return all_members(self);
    },
    [self](members_atom, std::vector<cluster_member>& list) {
      learn(self, list);
      tell_placement(self);
    },
    // The shard hands off every speaker it has (each to its owner among the others); the others
    // learn it from the broadcast and stop routing here. It lasts until the node stops.
    [self](drain_atom) -> cluster_status {
      auto& st = self->state;
      if (!st.draining) {
        st.draining = true;
        st.log->warn("cluster: draining: this node hands its speakers to the other members");
        drop_singletons(self, "the node drains");
        // Given back, so another member takes them at its next renewal, not at this lease's end.
        if (st.epoch != 0)
          st.db->release_singletons(st.epoch, [self](caf::expected<bool> done) {
            if (!done)
              self->state.log->warn("cluster: singletons not given back ({}); they move when the lease ends",
                                    self->system().render(done.error()));
          });
        broadcast(self);
        tell_placement(self);
      }
      return status_of(self);
    },
    // Released in the database first, so a member that reads the leases next sees it gone.
    [self](leave_atom) -> caf::result<bool> {
      auto& st = self->state;
      if (st.epoch == 0)
        return false;
      const auto epoch = st.epoch;
      st.epoch = 0;
      st.left = true;
      st.phase = "lease_lost";
      drop_singletons(self, "the node stops");
      tell_placement(self);
      if (st.settings.lease)
        st.settings.lease->set(0);
      auto rp = self->make_response_promise<bool>();
      st.db->release(epoch, [self, rp, epoch](caf::expected<bool> done) mutable {
        if (!done) {
          self->state.log->warn("cluster: cannot release the lease of epoch {}: {}", epoch,
                                self->system().render(done.error()));
          rp.deliver(false);
          return;
        }
        self->state.log->info("cluster: lease of epoch {} released", epoch);
        rp.deliver(*done);
      });
      return rp;
    },
    [self](status_atom) -> cluster_status { return status_of(self); },
    [self](lease_atom) { on_lease_tick(self); },
    [self](seed_atom) {
      self->state.seed_armed = false;
      on_seed_tick(self);
    },
    [self](recheck_atom) {
      self->state.recheck_at = {};
      read_leases(self);
    },
  };
}

}  // namespace

membership_actor spawn_membership(caf::actor_system& sys, membership_settings settings) {
  return sys.spawn(membership_fn, std::move(settings));
}

}  // namespace sbm::cluster

// The pattern router (patterns.hpp): in a cluster, each request to the pattern index goes to the
// index of the member that owns its speaker, or to every member with the answers merged. It does
// no CPU work of its own beyond the merge of what the members answer (k hits each).
#include <caf/actor_cast.hpp>
#include <caf/actor_system.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <caf/typed_response_promise.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "actors/patterns/core/hit_merge.hpp"
#include "actors/patterns/patterns.hpp"
#include "messages/errors.hpp"
#include "runtime/domain/placement.hpp"
#include "runtime/logging/logging.hpp"

namespace sbm::patterns {

namespace {

using router_actor = pattern_index_actor::extend_with<pattern_placement_actor>;

struct member_index {
  std::string address;
  pattern_index_actor index;  // this node's own for itself
  bool reachable = true;
};

struct router_state {
  static inline const char* name = "sbm.pattern_router";
  pattern_router_settings settings;
  std::vector<member_index> members;  // by address, as the placement lists them; empty: local only
  std::vector<std::string> addresses;  // the same, for the placement function
  std::uint32_t scatters = 0;          // in flight
  std::uint64_t scattered = 0;         // since start
  std::uint64_t partial = 0;           // scattered searches answered without some member
  std::shared_ptr<spdlog::logger> log;
};

using self_ptr = router_actor::stateful_pointer<router_state>;

// The member whose index holds the speaker's patterns; null before the first placement.
const member_index* owner_of(const router_state& st, const std::string& speaker_id) {
  if (st.members.empty()) return nullptr;
  const auto at = domain::owner_index(st.addresses, speaker_id);
  return at < st.members.size() ? &st.members[at] : nullptr;
}

caf::error owner_lost(const member_index& m) {
  return make_error(errc::moving,
                    "the member holding this speaker's patterns (" + m.address +
                      ") is unreachable; its speakers move once its lease lapses",
                    std::chrono::seconds{1});
}

// Sends to the owner's index (this node's own when it owns the speaker, or before any placement);
// the owner answers the caller directly.
template <class Result, class... Ts>
caf::result<Result> to_owner(self_ptr self, const std::string& speaker_id, Ts&&... xs) {
  const auto* owner = owner_of(self->state, speaker_id);
  if (!owner) return self->delegate(self->state.settings.local, std::forward<Ts>(xs)...);
  if (!owner->reachable) return owner_lost(*owner);
  return self->delegate(owner->index, std::forward<Ts>(xs)...);
}

// One request to every member; `done` gets each member's answer (none: it did not answer; then
// its address is in `missing`) once all have answered or timed out, or the first error that is
// the request's own fault (a member refuses it as invalid: all would).
template <class Answer>
struct scatter_state {
  std::vector<std::optional<Answer>> answers;
  std::vector<std::string> missing;
  caf::error first_error;
  std::size_t waiting = 0;
  bool finished = false;
};

template <class Answer, class Done, class... Ts>
void scatter(self_ptr self, Done done, const Ts&... xs) {
  auto& st = self->state;
  auto s = std::make_shared<scatter_state<Answer>>();
  s->answers.resize(st.members.size());
  ++st.scatters;
  ++st.scattered;
  auto finish = [self, s, done]() mutable {
    if (s->finished || s->waiting > 0) return;
    s->finished = true;
    --self->state.scatters;
    if (!s->missing.empty()) ++self->state.partial;
    done(*s);
  };
  for (std::size_t i = 0; i < st.members.size(); ++i) {
    const auto& m = st.members[i];
    if (!m.reachable) {
      s->missing.push_back(m.address);
      continue;
    }
    ++s->waiting;
    self->request(m.index, st.settings.scatter_timeout, xs...)
      .then(
        [s, i, finish](Answer& a) mutable {
          s->answers[i] = std::move(a);
          --s->waiting;
          finish();
        },
        [self, s, address = m.address, finish](caf::error& e) mutable {
          const bool invalid = code_of(e) == errc::invalid_argument;
          if (!s->first_error || (invalid && code_of(s->first_error) != errc::invalid_argument))
            s->first_error = e;
          self->state.log->debug("pattern router: member {} did not answer: {}", address,
                                 self->system().render(e));
          s->missing.push_back(address);
          --s->waiting;
          finish();
        });
  }
  finish();
}

std::optional<caf::error> refuse_scatter(self_ptr self) {
  auto& st = self->state;
  if (st.scatters < st.settings.max_scatters) return std::nullopt;
  return make_error(errc::overloaded, "too many searches across the cluster in flight on this node",
                    std::chrono::seconds{1});
}

// What the members answered is the answer when some did; when none did, the first error (an
// invalid request is refused as such whatever else happened).
template <class Answer>
std::optional<caf::error> scatter_failure(const scatter_state<Answer>& s) {
  if (s.first_error && code_of(s.first_error) == errc::invalid_argument) return s.first_error;
  for (const auto& a : s.answers)
    if (a) return std::nullopt;
  if (s.first_error) return s.first_error;
  return make_error(errc::unavailable, "no member of the cluster holds a pattern index");
}

std::string scatter_plan(std::size_t answered, std::size_t members) {
  return "scatter:" + std::to_string(answered) + "/" + std::to_string(members);
}

caf::result<pattern_hits> on_search(self_ptr self, const pattern_search& q) {
  auto& st = self->state;
  if (!q.filter.speaker_id.empty() || st.members.size() <= 1)
    return to_owner<pattern_hits>(self, q.filter.speaker_id, search_atom::value, q);
  if (auto refused = refuse_scatter(self)) return std::move(*refused);
  auto rp = self->make_response_promise<pattern_hits>();
  const auto top_k = q.top_k;
  const auto members = st.members.size();
  scatter<pattern_hits>(
    self,
    [rp, top_k, members](scatter_state<pattern_hits>& s) mutable {
      if (auto failed = scatter_failure(s)) {
        rp.deliver(std::move(*failed));
        return;
      }
      std::vector<std::vector<ranked_hit>> lists(s.answers.size());
      std::size_t answered = 0;
      for (std::size_t i = 0; i < s.answers.size(); ++i) {
        if (!s.answers[i]) continue;
        ++answered;
        for (const auto& h : s.answers[i]->hits)
          lists[i].push_back({h.pattern.pattern_id, h.similarity});
      }
      pattern_hits out;
      for (const auto& p : merge_top_k(lists, top_k))
        out.hits.push_back(std::move(s.answers[p.source]->hits[p.at]));
      out.plan = scatter_plan(answered, members);
      out.missing = std::move(s.missing);
      rp.deliver(std::move(out));
    },
    search_atom::value, q);
  return rp;
}

caf::result<pattern_batch_hits> on_search_batch(self_ptr self, const pattern_batch_search& q) {
  auto& st = self->state;
  if (!q.filter.speaker_id.empty() || st.members.size() <= 1)
    return to_owner<pattern_batch_hits>(self, q.filter.speaker_id, search_atom::value, q);
  if (auto refused = refuse_scatter(self)) return std::move(*refused);
  auto rp = self->make_response_promise<pattern_batch_hits>();
  auto each = q;
  each.per_query = true;  // the merge is per query: the union alone cannot be cut to each top k
  const auto members = st.members.size();
  scatter<pattern_batch_hits>(
    self,
    [rp, top_k = q.top_k, per_query = q.per_query, queries = q.queries.size(),
     members](scatter_state<pattern_batch_hits>& s) mutable {
      if (auto failed = scatter_failure(s)) {
        rp.deliver(std::move(*failed));
        return;
      }
      pattern_batch_hits out;
      out.per_query.resize(queries);
      std::unordered_map<std::int64_t, std::uint32_t> at_of;  // pattern_id -> index in out.patterns
      std::size_t answered = 0;
      for (const auto& a : s.answers) answered += a ? 1 : 0;
      for (std::size_t qi = 0; qi < queries; ++qi) {
        std::vector<std::vector<ranked_hit>> lists(s.answers.size());
        for (std::size_t m = 0; m < s.answers.size(); ++m) {
          const auto& a = s.answers[m];
          if (!a || qi >= a->per_query.size()) continue;
          for (const auto& h : a->per_query[qi])
            lists[m].push_back({a->patterns.at(h.pattern).pattern_id, h.similarity});
        }
        for (const auto& p : merge_top_k(lists, top_k)) {
          const auto& a = *s.answers[p.source];
          const auto& hit = a.per_query[qi][p.at];
          const auto& record = a.patterns.at(hit.pattern);
          auto [it, added] = at_of.try_emplace(record.pattern_id, static_cast<std::uint32_t>(out.patterns.size()));
          if (added) out.patterns.push_back(record);
          out.per_query[qi].push_back({it->second, hit.similarity});
        }
      }
      if (!per_query) out.per_query.clear();
      out.plan = scatter_plan(answered, members);
      out.missing = std::move(s.missing);
      rp.deliver(std::move(out));
    },
    search_atom::value, each);
  return rp;
}

// Every member, since the pattern may still be held where its speaker was. The row is deleted by
// the first to reach PostgreSQL; true when any found it. A member that could not be asked leaves
// the answer an error: a resend is safe (a delete of nothing answers false).
caf::result<bool> on_delete(self_ptr self, std::int64_t id) {
  auto& st = self->state;
  if (st.members.size() <= 1) return self->delegate(st.settings.local, delete_atom::value, id);
  if (auto refused = refuse_scatter(self)) return std::move(*refused);
  auto rp = self->make_response_promise<bool>();
  scatter<bool>(
    self,
    [rp](scatter_state<bool>& s) mutable {
      if (s.first_error && code_of(s.first_error) == errc::invalid_argument) {
        rp.deliver(s.first_error);
        return;
      }
      if (!s.missing.empty()) {
        rp.deliver(make_error(errc::unavailable,
                              "member " + s.missing.front() + " could not be asked to drop the pattern; retry"));
        return;
      }
      bool existed = false;
      for (const auto& a : s.answers) existed = existed || (a && *a);
      rp.deliver(existed);
    },
    delete_atom::value, id);
  return rp;
}

// A batch split by the owners of its speakers: this node's part goes to its own index as one
// batch (the whole batch delegated when this node, or no placement yet, holds them all); another
// member's part goes record by record, as the previous build's messages did, since a member of
// that build (messages version 2) cannot read a pattern_record_batch and a rolling upgrade runs
// both side by side. True when every record was stored; otherwise the first error, an invalid
// one's first (what was stored stays stored, and the caller's resend of the whole batch is safe:
// upserts are idempotent by pattern id).
caf::result<bool> on_upsert_batch(self_ptr self, pattern_record_batch& batch) {
  auto& st = self->state;
  std::vector<pattern_record_batch> parts(std::max<std::size_t>(st.members.size(), 1));
  for (auto& r : batch.records) {
    const auto at = st.members.empty() ? 0 : domain::owner_index(st.addresses, r.speaker_id);
    if (at >= parts.size()) return make_error(errc::unavailable, "no owner for speaker " + r.speaker_id);
    parts[at].records.push_back(std::move(r));
  }
  std::vector<std::size_t> used;
  for (std::size_t i = 0; i < parts.size(); ++i)
    if (!parts[i].records.empty()) used.push_back(i);
  if (used.empty()) return true;
  if (st.members.empty()) return self->delegate(st.settings.local, upsert_atom::value, std::move(parts[used[0]]));
  if (used.size() == 1 && st.members[used[0]].index == st.settings.local)
    return self->delegate(st.settings.local, upsert_atom::value, std::move(parts[used[0]]));
  struct joined {
    std::size_t waiting = 0;
    caf::error first_error;
  };
  auto rp = self->make_response_promise<bool>();
  auto j = std::make_shared<joined>();
  for (auto i : used)
    j->waiting += st.members[i].index == st.settings.local ? 1 : parts[i].records.size();
  auto answered = [rp, j](caf::error e) mutable {
    if (e && (!j->first_error || (code_of(e) == errc::invalid_argument &&
                                  code_of(j->first_error) != errc::invalid_argument)))
      j->first_error = std::move(e);
    if (--j->waiting > 0) return;
    if (j->first_error)
      rp.deliver(j->first_error);
    else
      rp.deliver(true);
  };
  auto send = [self, &answered](const pattern_index_actor& to, auto part) {
    self->request(to, self->state.settings.scatter_timeout, upsert_atom::value, std::move(part))
      .then(
        [answered](bool ok) mutable {
          answered(ok ? caf::error{} : make_error(errc::unavailable, "a member did not store its part of the batch"));
        },
        [answered](caf::error& e) mutable { answered(std::move(e)); });
  };
  for (auto i : used) {
    const auto& owner = st.members[i];
    const bool local = owner.index == st.settings.local;
    if (!owner.reachable) {
      for (std::size_t n = local ? 1 : parts[i].records.size(); n > 0; --n) answered(owner_lost(owner));
      continue;
    }
    if (local) {
      send(owner.index, std::move(parts[i]));
      continue;
    }
    for (auto& r : parts[i].records) send(owner.index, std::move(r));
  }
  return rp;
}

void on_placement(self_ptr self, const cluster_placement& p) {
  auto& st = self->state;
  if (!p.ready) return;  // no lease: keep routing as last told (the owners refuse what is not theirs)
  std::vector<member_index> members;
  std::vector<std::string> addresses;
  for (const auto& m : p.members) {
    member_index e;
    e.address = m.address;
    e.reachable = m.reachable;
    if (m.address == p.self) {
      e.index = st.settings.local;
    } else if (m.patterns) {
      e.index = caf::actor_cast<pattern_index_actor>(m.patterns);
    } else {
      e.reachable = false;  // a member that runs no index (or an older build): its share is missing
    }
    addresses.push_back(m.address);
    members.push_back(std::move(e));
  }
  st.log->info("pattern router: {} member(s) hold patterns, {} reachable", members.size(),
               std::count_if(members.begin(), members.end(), [](const member_index& m) { return m.reachable; }));
  st.members = std::move(members);
  st.addresses = std::move(addresses);
}

router_actor::behavior_type router_fn(self_ptr self, pattern_router_settings settings) {
  auto& st = self->state;
  st.settings = std::move(settings);
  st.log = log::get("patterns");
  return {
    [self](upsert_atom, pattern_record& r) -> caf::result<bool> {
      return to_owner<bool>(self, r.speaker_id, upsert_atom::value, std::move(r));
    },
    [self](upsert_atom, pattern_record_batch& b) { return on_upsert_batch(self, b); },
    [self](delete_atom, std::int64_t id) { return on_delete(self, id); },
    [self](search_atom, const pattern_search& q) { return on_search(self, q); },
    [self](search_atom, const pattern_batch_search& q) { return on_search_batch(self, q); },
    [self](status_atom) { return self->delegate(self->state.settings.local, status_atom::value); },
    [self](metrics_atom) -> caf::result<component_metrics> {
      // The index's own, with how many searches crossed the cluster and how many came back partial.
      auto rp = self->make_response_promise<component_metrics>();
      self->request(self->state.settings.local, self->state.settings.scatter_timeout, metrics_atom::value)
        .then(
          [self, rp](component_metrics& m) mutable {
            const auto& st = self->state;
            m.samples.push_back({"sbm_pattern_scattered_searches_total", {}, static_cast<double>(st.scattered)});
            m.samples.push_back({"sbm_pattern_partial_searches_total", {}, static_cast<double>(st.partial)});
            rp.deliver(std::move(m));
          },
          [rp](caf::error& e) mutable { rp.deliver(std::move(e)); });
      return rp;
    },
    [self](placement_atom, const cluster_placement& p) { on_placement(self, p); },
  };
}

}  // namespace

pattern_index_actor spawn_pattern_router(caf::actor_system& system, pattern_router_settings settings) {
  if (!settings.local) throw std::invalid_argument("pattern router: no local index");
  if (settings.scatter_timeout.count() <= 0 || settings.max_scatters == 0)
    throw std::invalid_argument("pattern router: scatter_timeout and max_scatters must be positive");
  return caf::actor_cast<pattern_index_actor>(system.spawn(router_fn, std::move(settings)));
}

}  // namespace sbm::patterns

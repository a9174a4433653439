#pragma once
// Contracts of the speakers family. Callers reach a speaker only through the shard by speaker_id,
// so a speaker may live on any node.
#include <caf/meta/type_name.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "messages/atoms.hpp"
#include "messages/cluster.hpp"
#include "messages/context.hpp"
#include "messages/events.hpp"
#include "messages/metrics.hpp"
#include "messages/users.hpp"

namespace sbm {

struct speaker_registration {
  std::string speaker_id;
  std::string client_id;
  std::string display_name;
  std::string actor;  // who asks (user or service id), for history
  request_context ctx;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, speaker_registration& x) {
  return f(caf::meta::type_name("speaker_registration"), x.speaker_id, x.client_id,
           x.display_name, x.actor, x.ctx);
}

struct speaker_view {
  std::string speaker_id;
  std::string client_id;
  std::string display_name;
  std::string bucket;
  bool pinned = false;
  std::string pin_reason;
  std::string pinned_by;
  std::int64_t pinned_at_ms = 0;
  std::uint32_t window_size = 0;      // samples in the window now
  std::uint32_t window_capacity = 0;
  double window_mean = 0;             // residual errors per 100 words
  std::uint64_t samples_total = 0;
  std::uint64_t bucket_changes = 0;
  std::int64_t created_at_ms = 0;
  std::int64_t updated_at_ms = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, speaker_view& x) {
  return f(caf::meta::type_name("speaker_view"), x.speaker_id, x.client_id, x.display_name,
           x.bucket, x.pinned, x.pin_reason, x.pinned_by, x.pinned_at_ms, x.window_size,
           x.window_capacity, x.window_mean, x.samples_total, x.bucket_changes, x.created_at_ms,
           x.updated_at_ms);
}

// Which state of one activation of a speaker a view shows: the activation (random per node plus
// the actor's id, so two activations, here or on another node, do not share one), how many times
// it loaded its row, and the row's version. Any change of what the view shows changes the stamp,
// so a reader that kept what it made of the view at a stamp may use it while the stamp is the same.
struct speaker_stamp {
  std::uint64_t activation = 0;  // 0: none (the reader holds nothing)
  std::uint32_t loads = 0;
  std::int64_t version = 0;

  friend bool operator==(const speaker_stamp& a, const speaker_stamp& b) {
    return a.activation == b.activation && a.loads == b.loads && a.version == b.version;
  }
  friend bool operator!=(const speaker_stamp& a, const speaker_stamp& b) { return !(a == b); }
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, speaker_stamp& x) {
  return f(caf::meta::type_name("speaker_stamp"), x.activation, x.loads, x.version);
}

// The answer to a read that named the stamp its reader holds: the view only when the speaker is at
// another stamp now, so an unchanged speaker answers without copying its view.
struct speaker_read {
  speaker_stamp stamp;
  bool changed = false;
  speaker_view view;  // empty unless changed
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, speaker_read& x) {
  return f(caf::meta::type_name("speaker_read"), x.stamp, x.changed, x.view);
}

// A pin and an unpin are audited: `by` (who, from where) goes into the audit log through the
// speakers' outbox, committed with the change itself.
struct bucket_pin {
  std::string speaker_id;
  std::string bucket;
  std::string reason;
  std::string actor;
  audit_origin by;
  request_context ctx;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, bucket_pin& x) {
  return f(caf::meta::type_name("bucket_pin"), x.speaker_id, x.bucket, x.reason, x.actor, x.by,
           x.ctx);
}

struct bucket_unpin {
  std::string speaker_id;
  std::string reason;
  std::string actor;
  audit_origin by;
  request_context ctx;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, bucket_unpin& x) {
  return f(caf::meta::type_name("bucket_unpin"), x.speaker_id, x.reason, x.actor, x.by, x.ctx);
}

// One verified job's quality. Either the rate is given, or both texts and SBM measures it (the
// speakers family, off the path every request takes; the texts are dropped once measured).
struct quality_sample {
  std::string speaker_id;
  std::string job_id;                 // a job counts once per speaker
  double errors_per_100_words = 0;
  std::string actor;
  request_context ctx;
  bool from_texts = false;            // measure delivered_text against verified_text
  std::string delivered_text;
  std::string verified_text;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, quality_sample& x) {
  return f(caf::meta::type_name("quality_sample"), x.speaker_id, x.job_id, x.errors_per_100_words,
           x.actor, x.ctx, x.from_texts, x.delivered_text, x.verified_text);
}

struct history_entry {
  std::int64_t id = 0;
  std::string kind;  // "policy", "pin", "unpin", "register"
  std::string previous_bucket;
  std::string new_bucket;
  std::string reason;
  std::string actor;
  std::int64_t at_ms = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, history_entry& x) {
  return f(caf::meta::type_name("history_entry"), x.id, x.kind, x.previous_bucket, x.new_bucket,
           x.reason, x.actor, x.at_ms);
}

struct speaker_history {
  std::string speaker_id;
  std::vector<history_entry> entries;  // oldest first
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, speaker_history& x) {
  return f(caf::meta::type_name("speaker_history"), x.speaker_id, x.entries);
}

struct speaker_query {
  std::string bucket;     // empty = any
  std::string client_id;  // empty = any
  std::uint32_t limit = 50;
  std::string cursor;     // opaque: the last speaker_id of the previous page
  client_scope scope{};     // the caller's clients: no other client's speaker is listed
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, speaker_query& x) {
  return f(caf::meta::type_name("speaker_query"), x.bucket, x.client_id, x.limit, x.cursor,
           x.scope);
}

struct speaker_page {
  std::vector<speaker_view> items;
  std::string next_cursor;  // empty on the last page
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, speaker_page& x) {
  return f(caf::meta::type_name("speaker_page"), x.items, x.next_cursor);
}

// The stored quality samples of one speaker, for its trend: the newest `limit` whose time falls in
// [from, to) (a bound is absent when its flag is false), read for a caller who may reach only the
// clients of `scope` (another client's speaker is not found, like an unknown one).
struct samples_query {
  std::string speaker_id;
  bool has_from = false;
  std::int64_t from_ms = 0;
  bool has_to = false;
  std::int64_t to_ms = 0;
  std::uint32_t limit = 100;
  client_scope scope{};
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, samples_query& x) {
  return f(caf::meta::type_name("samples_query"), x.speaker_id, x.has_from, x.from_ms, x.has_to,
           x.to_ms, x.limit, x.scope);
}

struct quality_point {
  std::int64_t id = 0;
  std::string job_id;
  double errors_per_100_words = 0;
  std::string actor;
  std::int64_t at_ms = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, quality_point& x) {
  return f(caf::meta::type_name("quality_point"), x.id, x.job_id, x.errors_per_100_words, x.actor,
           x.at_ms);
}

// The bands travel with the points so a chart draws the limits the node decides by.
struct quality_samples {
  std::string speaker_id;
  std::vector<quality_point> items;  // oldest first
  bool truncated = false;            // older samples of the range were left out (past `limit`)
  std::uint32_t window_capacity = 0;
  double no_touch_max = 0;
  double low_touch_max = 0;
  double medium_touch_max = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, quality_samples& x) {
  return f(caf::meta::type_name("quality_samples"), x.speaker_id, x.items, x.truncated,
           x.window_capacity, x.no_touch_max, x.low_touch_max, x.medium_touch_max);
}

// Counters of one shard, for metrics and for tests that must see activation and passivation.
struct speaker_shard_stats {
  std::uint64_t active = 0;        // live speaker actors now
  std::uint64_t activations = 0;   // since the shard started
  std::uint64_t passivations = 0;  // idle or retired speakers that stopped normally
  std::uint64_t failures = 0;      // speakers that died with an error
  std::uint64_t buffered = 0;      // messages waiting for a hand-off to finish now
  std::uint64_t handed_off = 0;    // messages held through a hand-off since the shard started
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, speaker_shard_stats& x) {
  return f(caf::meta::type_name("speaker_shard_stats"), x.active, x.activations, x.passivations,
           x.failures, x.buffered, x.handed_off);
}

// What a single speaker actor takes (the shard speaks the same language plus register and list).
using speaker_actor = caf::typed_actor<
  caf::replies_to<get_atom>::with<speaker_view>,
  caf::replies_to<get_atom, speaker_stamp>::with<speaker_read>,
  caf::replies_to<history_atom>::with<speaker_history>,
  caf::replies_to<pin_atom, bucket_pin>::with<speaker_view>,
  caf::replies_to<unpin_atom, bucket_unpin>::with<speaker_view>,
  caf::replies_to<sample_atom, quality_sample>::with<speaker_view>,
  caf::reacts_to<passivate_atom>,
  // The shard's idle sweep: retire if nothing came for a whole idle period.
  caf::reacts_to<idle_atom>>;

using speaker_shard_actor = caf::typed_actor<
  caf::replies_to<register_atom, speaker_registration>::with<speaker_view>,
  caf::replies_to<get_atom, std::string>::with<speaker_view>,
  caf::replies_to<history_atom, std::string>::with<speaker_history>,
  caf::replies_to<pin_atom, bucket_pin>::with<speaker_view>,
  caf::replies_to<unpin_atom, bucket_unpin>::with<speaker_view>,
  caf::replies_to<sample_atom, quality_sample>::with<speaker_view>,
  caf::replies_to<list_atom, speaker_query>::with<speaker_page>,
  caf::replies_to<samples_atom, samples_query>::with<quality_samples>,
  caf::replies_to<status_atom>::with<speaker_shard_stats>,
  // its speakers (gathered in the shard, never asked of each speaker), queues and outbox
  caf::replies_to<metrics_atom>::with<component_metrics>,
  caf::reacts_to<idle_atom, std::string>,
  // In a cluster: who owns which speakers now (from the node's membership actor). A speaker this
  // node no longer owns is handed off; requests for it are routed to its owner's shard.
  caf::reacts_to<placement_atom, cluster_placement>,
  // Its own timers: the idle sweep over every active speaker (one timer, not one per speaker),
  // and in a cluster the deadlines of messages held for the speakers of a member BASP lost.
  caf::reacts_to<idle_atom>,
  caf::reacts_to<recheck_atom>>;

}  // namespace sbm

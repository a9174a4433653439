#pragma once
// The gateway: a front door on the HTTP threads (gateway/front_door.hpp) and a few lane actors that
// turn admitted requests into messages to the actors behind typed handles, and their answers (or
// failures) into JSON. Requests are spread over the lanes in turn, so no one actor serialises the
// node. It never includes actors/: it knows them only by their contracts.
#include <caf/actor.hpp>
#include <caf/fwd.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "gateway/access.hpp"
#include "gateway/front_door.hpp"
#include "gateway/responder.hpp"
#include "gateway/user_cache.hpp"
#include "runtime/metrics/request_counters.hpp"
#include "messages/cluster.hpp"
#include "messages/connections.hpp"
#include "messages/events.hpp"
#include "messages/instanote.hpp"
#include "messages/metrics.hpp"
#include "messages/patterns.hpp"
#include "messages/published_views.hpp"
#include "messages/reports.hpp"
#include "messages/speakers.hpp"
#include "messages/users.hpp"
#include "messages/verification.hpp"

namespace sbm::gateway {

class direct_reads;  // gateway/direct_reads.hpp

struct gateway_settings {
  std::shared_ptr<responder> out;  // set by spawn_gateway from the pipeline
  std::shared_ptr<direct_reads> direct;  // set by spawn_gateway (null: every read wakes its lane)
  std::size_t lanes = 2;            // gateway actors requests are spread over
  caf::actor owner;                 // set by spawn_gateway: the lanes' owner
  service_allow_list services;
  postgres_actor postgres;
  // The connections kept for report filings (postgres-filings); null: filings share `postgres`.
  postgres_actor filings;
  redis_actor redis;
  postgres_actor instanote;
  instanote_actor jobs;          // null: job pulls answer 503
  std::uint32_t max_jobs = 100;  // most jobs one pull may ask for (instanote.max-jobs)
  speaker_shard_actor speakers;
  verification_scheduler_actor schedule;
  event_feed_actor events;       // null: the bucket-change feed answers 503
  reports_actor reports;         // null: report routes answer 503
  pattern_index_actor patterns;  // null: pattern search answers 503
  correction_actor corrections;  // null: draft correction answers 503
  verification_sessions_actor sessions;  // null: verification sessions answer 503
  std::size_t max_draft_bytes = 65536;  // drafts.max-bytes: a longer draft_text answers 413
  users_actor users;   // null: no standing check (tokens alone decide)
  audit_actor audit;   // null: nothing is audited
  // Set by spawn_gateway: the node's one cache of users' standings (the pipeline's), which the
  // HTTP threads read too.
  std::shared_ptr<user_standing_cache> standings;
  // Set by spawn_gateway: the board the HTTP threads answer reads from (null: none), for metrics.
  std::shared_ptr<const published_views> views;
  std::chrono::milliseconds request_timeout{10000};
  std::size_t max_json_depth = 32;
  // GET /metrics: the HTTP server's request counters (null: none are shown), whether the route
  // needs no token (metrics.access = open; otherwise ops.read), and how long a scrape waits for
  // each component (metrics.component-timeout) before reporting it missing.
  std::shared_ptr<const metrics::request_counters> http_counters;
  bool metrics_open = false;
  std::chrono::milliseconds metrics_timeout{1000};
  membership_actor cluster;  // null: a node without a cluster (GET /v1/status says so)
};

// What the HTTP threads hand requests to: the front door, then the current lanes. Between a
// gateway's death and its restart there are no lanes, and requests are answered 503 with
// Retry-After at once; the requests a dead gateway's lanes held are answered by the server
// (responder::fail_owned), so none waits for its deadline.
// What the HTTP threads need to answer a read of a published speaker view themselves.
struct published_reads {
  std::shared_ptr<published_views> views;  // null: every read goes to a lane
  service_allow_list services;                    // the allow-list the lanes admit with
  bool standing_checked = true;  // false: no users actor, the token decides alone (as in a lane)
};

class gateway_pipeline {
 public:
  explicit gateway_pipeline(front_door_settings front,
                            std::chrono::milliseconds user_cache_ttl = std::chrono::seconds{5},
                            published_reads reads = {});

  // Once, before the server starts: where answers go.
  void connect(std::shared_ptr<responder> out);
  std::shared_ptr<responder> responder_of() const { return out_; }

  // On an HTTP thread. `hold` admits a request and keeps it for its lane until `flush` (or until
  // that lane's batch is full), so the requests an HTTP thread's loop pass reads reach each lane as
  // one message: a lane waiting for work is scheduled, and a sleeping CAF worker woken, once per
  // batch instead of once per request (the HTTP thread's largest cost after the sockets: perf).
  // A GET /v1/speakers/{id} of a speaker on the board of published views (published_views.hpp)
  // is answered in `hold` itself, after the same front door and the same admission as a lane's
  // (token, principal, the cached standing, the permission, the client scope); anything else
  // about it (a standing not cached, a refusal, a query, a body, no entry) goes to a lane, which
  // answers (and audits) it as before.
  void hold(http_request&& req);
  void flush();
  static constexpr std::size_t max_batch = 64;  // requests one lane is sent at once
  bool token_genuine(std::string_view token) { return front_.token_genuine(token); }

  // Tells the lanes the node is shutting down (new requests get 503 draining).
  void drain();

  // For spawn_gateway: a new incarnation's generation, taken when it is spawned (so generations
  // follow the order of the restarts), its lanes once its owner runs, and their end. An owner
  // runs some time after it is spawned, possibly after a newer one: install refuses (false) a
  // generation older than the newest taken, so a late owner never replaces its successor's lanes.
  std::uint64_t next_generation();
  bool install(std::uint64_t generation, std::vector<caf::actor> lanes);
  void uninstall(std::uint64_t generation);
  // For spawn_gateway: the node's one sink of direct reads, made on first use. It outlives the
  // incarnations, so a read in flight across a restart is still answered. Bounded by the most
  // requests the server holds at once by default (gateway.max-connections, one request each).
  std::shared_ptr<direct_reads> direct_reads_of(caf::actor_system& sys);
  static constexpr std::size_t max_direct_reads = 1024;
  // For spawn_gateway: the node's cache of users' standings (it outlives the incarnations).
  std::shared_ptr<user_standing_cache> standings() const { return standings_; }
  std::shared_ptr<const published_views> views() const { return reads_.views; }

 private:
  bool answer_published(const http_request& req);

  front_door front_;
  const std::shared_ptr<user_standing_cache> standings_;
  const published_reads reads_;
  // Lanes installed and not draining: otherwise a lane's answer (503) is the answer.
  std::atomic<bool> serving_{false};
  std::shared_ptr<responder> out_;
  mutable std::mutex mutex_;
  std::vector<caf::actor> lanes_;
  std::uint64_t generation_ = 0;  // of the lanes installed (0: none yet)
  std::uint64_t newest_ = 0;      // the newest generation taken
  bool draining_ = false;
  std::atomic<std::uint64_t> next_lane_{0};
  std::vector<std::vector<http_request>> held_;  // by lane, until flush
  std::shared_ptr<direct_reads> direct_;
};

// The gateway as one supervised child: an owner actor with `settings.lanes` linked lanes, installed
// into the pipeline. A lane that dies takes the owner down and the supervisor restarts both.
caf::actor spawn_gateway(caf::actor_system& sys, gateway_settings settings,
                         std::shared_ptr<gateway_pipeline> pipeline);

}  // namespace sbm::gateway

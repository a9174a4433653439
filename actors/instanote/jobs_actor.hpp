#pragma once
// The InstaNote jobs actor: pulls a speaker's draft jobs through InstaNote's connection actor (and
// so through its breaker) with the Redis cache in front and behind it.
//  - A cached copy younger than cache_fresh_for answers at once (source "cache", not stale).
//  - Otherwise InstaNote answers (source "instanote") and the copy is cached for cache_ttl.
//  - When InstaNote cannot answer (circuit open, server down, timeout), the cached copy answers
//    with stale = true and since when; with nothing cached: errc::unavailable with a typed retry_after
//    (errc::overloaded when the connection pool's queue was full: its bound, not an outage).
//  - Redis down, slow or missing (null handle) only means no cache: never an error.
// Cached copies are Fernet tokens (the reports' key): drafts are clinical text. Without a key,
// nothing is cached.
#include <caf/fwd.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

#include "actors/instanote/job_cache.hpp"
#include "messages/connections.hpp"
#include "messages/instanote.hpp"

namespace sbm::instanote {

struct jobs_settings {
  postgres_actor instanote;
  redis_actor redis;                  // null: no cache
  cache_factory make_cache;           // set: this cache in place of Redis (simulation)
  std::string cache_key;              // Fernet key (44 characters); empty: no cache
  std::chrono::seconds cache_ttl{3600};
  std::chrono::seconds cache_fresh_for{60};
  std::chrono::milliseconds instanote_timeout{10000};
  std::chrono::milliseconds cache_timeout{1000};
  std::chrono::seconds default_retry_after{30};  // when InstaNote's breaker does not say
  std::uint32_t default_max_jobs = 10;
  std::uint32_t max_jobs_cap = 100;
  // Wall-clock milliseconds for retrieval and cache stamps (injectable for tests).
  std::function<std::int64_t()> now_ms;
};

instanote_actor spawn_jobs(caf::actor_system& system, jobs_settings settings);
instanote_actor spawn_jobs(caf::local_actor* parent, jobs_settings settings);

}  // namespace sbm::instanote

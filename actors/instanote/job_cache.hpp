#pragma once
// What the InstaNote family keeps in Redis: the key of a pull and the (plaintext) JSON of its
// jobs. The actor encrypts the JSON with Fernet before it leaves the process: drafts are clinical.
// The cache itself sits behind a port (`cache`): the Redis adapter here, an in-memory one with
// faults for simulation (tests/sim/cache_memory.*), one contract suite over both.
#include <caf/expected.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "messages/connections.hpp"
#include "messages/instanote.hpp"
#include "runtime/db/store_link.hpp"

namespace sbm::instanote {

// speaker_jobs:{speaker_id}:{hash}, the hash (SHA-256, 32 hex digits) over the date range, the
// error types (sorted, so their order does not matter) and max_jobs.
std::string cache_key(const job_pull_request& request);

struct cached_pull {
  std::vector<verification_job> jobs;
  std::int64_t cached_at_ms = 0;  // when these jobs were read from InstaNote
};

std::string encode_cached(const cached_pull& pull);
// nullopt for anything that is not what encode_cached wrote (an old format, a corrupt entry).
std::optional<cached_pull> decode_cached(std::string_view json);

// The cache's port: opaque values by key, each living `ttl`. The jobs actor reads any error as
// "nothing cached" and a failed store as "not cached": the cache is never a reason to fail a pull.
class cache {
 public:
  virtual ~cache() = default;
  // The value under `key`; nullopt when there is none (never stored, or its ttl ran out).
  virtual void get(const std::string& key, db::completion<std::optional<std::string>> done) = 0;
  // Stores `value` under `key` for `ttl`, replacing what was there; true once stored.
  virtual void put(const std::string& key, std::string value, std::chrono::seconds ttl, db::completion<bool> done) = 0;
};

// How the Redis adapter reaches Redis: one command on the Redis connection actor.
using redis_runner = std::function<void(redis_command, db::completion<redis_reply>)>;
std::unique_ptr<cache> make_redis_cache(redis_runner run);

// An adapter other than Redis (simulation), built over the jobs actor's link.
using cache_factory = std::function<std::unique_ptr<cache>(const db::store_link&)>;

}  // namespace sbm::instanote

#pragma once
// What the InstaNote family keeps in Redis: the key of a pull and the (plaintext) JSON of its
// jobs. The actor encrypts the JSON with Fernet before it leaves the process: drafts are clinical.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "messages/instanote.hpp"

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

}  // namespace sbm::instanote

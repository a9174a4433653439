#pragma once
// Contracts of the InstaNote family: pulling a speaker's ASR draft jobs from the external InstaNote
// database (through its breaker, with the Redis cache as the fallback), one job's metadata, health.
// Jobs arrive in the internal verification-job form of seed section 2.2.
#include <caf/meta/type_name.hpp>
#include <caf/optional.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "messages/atoms.hpp"
#include "messages/context.hpp"
#include "messages/connections.hpp"

namespace sbm {

using pull_atom = caf::atom_constant<caf::atom("pull")>;
using job_atom = caf::atom_constant<caf::atom("job")>;

// Every field is checked by the gateway; the family caps max_jobs again (it may be called directly).
struct job_pull_request {
  std::string speaker_id;
  std::int64_t from_ms = 0;  // created_at >= from (Unix milliseconds, UTC)
  std::int64_t to_ms = 0;    // created_at < to
  std::vector<std::string> error_types;  // empty: any; else jobs flagged with at least one of them
  std::uint32_t max_jobs = 10;
  client_scope scope{};  // the caller's clients: jobs of any other client are never answered
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, job_pull_request& x) {
  return f(caf::meta::type_name("job_pull_request"), x.speaker_id, x.from_ms, x.to_ms,
           x.error_types, x.max_jobs, x.scope);
}

// A draft job as SBM works with it (seed 2.2 to_verification_job).
struct verification_job {
  std::string job_id;
  std::string speaker_id;
  std::string client_id;
  std::string original_draft;
  std::int64_t created_at_ms = 0;
  std::string audio_quality;           // audio_metadata.quality, "unknown" when absent
  caf::optional<double> duration_s;    // audio_metadata.duration
  std::string source_system;           // "instanote"
  std::vector<std::string> error_types;
  std::int64_t retrieved_at_ms = 0;    // when SBM read it from InstaNote
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, verification_job& x) {
  return f(caf::meta::type_name("verification_job"), x.job_id, x.speaker_id, x.client_id,
           x.original_draft, x.created_at_ms, x.audio_quality, x.duration_s, x.source_system,
           x.error_types, x.retrieved_at_ms);
}

// The answer to a pull: where the jobs came from and, when from the cache because InstaNote could
// not answer, that they are stale and since when (the time they were cached).
struct job_pull {
  std::vector<verification_job> jobs;  // newest first
  std::string source;                  // "instanote" or "cache"
  bool stale = false;
  std::int64_t stale_since_ms = 0;     // when stale: when the cached copy was read from InstaNote
  std::string stale_reason;            // when stale: why InstaNote was not asked or did not answer
  bool cached = false;                 // a fresh pull that was also written to the cache
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, job_pull& x) {
  return f(caf::meta::type_name("job_pull"), x.jobs, x.source, x.stale, x.stale_since_ms,
           x.stale_reason, x.cached);
}

// pull: errc::unavailable (with "retry after N s") when InstaNote cannot answer and nothing is
// cached; job: errc::not_found for an unknown job; status: InstaNote's health.
using instanote_actor = caf::typed_actor<
  caf::replies_to<pull_atom, job_pull_request>::with<job_pull>,
  caf::replies_to<job_atom, std::string>::with<verification_job>,
  caf::replies_to<status_atom>::with<dependency_status>>;

}  // namespace sbm

#pragma once
// Contracts of the pattern index: what an error report teaches, stored as a vector with metadata,
// searched by similarity under typed filters. Filters are values, never expression text.
#include <caf/meta/type_name.hpp>
#include <caf/optional.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "messages/atoms.hpp"
#include "messages/cluster.hpp"
#include "messages/context.hpp"
#include "messages/metrics.hpp"

namespace sbm {

// One error pattern (seed 4.1's EnhancedErrorVector without the vector: the index embeds
// `original_text` itself, so every node computes the same vector with the same embedder).
struct pattern_record {
  std::int64_t pattern_id = 0;  // the error report's id
  std::string speaker_id;
  std::string client_id;
  std::string bucket_type;      // the speaker's bucket when the report was filed
  std::string original_text;
  std::string corrected_text;
  std::string context_text;     // surrounding draft text, embedded with the original when present
  std::vector<std::string> error_categories;
  std::string audio_quality;    // excellent | good | fair | poor
  std::string speaker_clarity;  // clear | moderate | unclear
  std::string background_noise; // none | low | moderate | high
  std::int32_t number_of_speakers = 1;
  bool overlapping_speech = false;
  bool requires_specialized_knowledge = false;
  std::string status;           // pending | rectified | not_rectified
  double weight = 0.5;          // in [0, 1]; verification moves it (+0.1 rectified, -0.1 not)
  std::int64_t created_at_ms = 0;
  // The report saga revision that sent it: an upsert older than the stored row's is ignored
  // (answered true, changing nothing), so a late step can never undo a newer status or weight.
  std::int64_t saga_revision = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, pattern_record& x) {
  return f(caf::meta::type_name("pattern_record"), x.pattern_id, x.speaker_id, x.client_id,
           x.bucket_type, x.original_text, x.corrected_text, x.context_text, x.error_categories,
           x.audio_quality, x.speaker_clarity, x.background_noise, x.number_of_speakers,
           x.overlapping_speech, x.requires_specialized_knowledge, x.status, x.weight,
           x.created_at_ms, x.saga_revision);
}

// Many patterns upserted at once (the report saga groups its sagas' index steps): stored in one
// statement and one commit, so either all are written or none; each record is checked and
// revision-guarded as if sent alone. At most max_pattern_batch records, pattern ids distinct; one
// bad record refuses the whole batch as invalid_argument before anything is written.
struct pattern_record_batch {
  std::vector<pattern_record> records;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, pattern_record_batch& x) {
  return f(caf::meta::type_name("pattern_record_batch"), x.records);
}

inline constexpr std::size_t max_pattern_batch = 256;

// Every field is optional: empty strings, none and 0 mean "any".
struct pattern_filter {
  std::string speaker_id;
  std::string client_id;
  std::string bucket_type;
  std::string audio_quality;
  std::string status;
  std::string error_category;   // the pattern has this category among its categories
  caf::optional<bool> requires_specialized_knowledge;
  std::int64_t from_ms = 0;     // created_at >= from (0: open)
  std::int64_t to_ms = 0;       // created_at <= to (0: open)
  double min_weight = 0;        // patterns whose weight fell below the floor are not returned
  client_scope scope{};           // forced by the gateway from the caller: never wider than theirs
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, pattern_filter& x) {
  return f(caf::meta::type_name("pattern_filter"), x.speaker_id, x.client_id, x.bucket_type,
           x.audio_quality, x.status, x.error_category, x.requires_specialized_knowledge, x.from_ms,
           x.to_ms, x.min_weight, x.scope);
}

struct pattern_search {
  std::string query_text;
  pattern_filter filter;
  std::uint32_t top_k = 10;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, pattern_search& x) {
  return f(caf::meta::type_name("pattern_search"), x.query_text, x.filter, x.top_k);
}

struct pattern_hit {
  pattern_record pattern;
  double similarity = 0;  // cosine similarity of the embeddings, in [-1, 1]
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, pattern_hit& x) {
  return f(caf::meta::type_name("pattern_hit"), x.pattern, x.similarity);
}

struct pattern_hits {
  std::vector<pattern_hit> hits;  // best first
  std::string plan;               // how the index answered, e.g. "exact:speaker" or "hnsw:ef=128"
  // In a cluster, a search no speaker filter sends to one owner asks every member: the members
  // (addresses) that did not answer in time, whose patterns the hits therefore lack. Empty: complete.
  std::vector<std::string> missing;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, pattern_hits& x) {
  return f(caf::meta::type_name("pattern_hits"), x.hits, x.plan, x.missing);
}

// Many queries under one filter in one message (a draft's segments): the index chooses one plan
// for all and reads a speaker's partition once. The caller embeds (the CPU work it sizes) with the
// embedder the index names in its status; a batch made by another embedder is refused.
struct pattern_batch_search {
  std::string embedder;                     // name() of the embedder that made the vectors
  std::vector<std::vector<float>> queries;  // L2-normalised, none all-zero
  pattern_filter filter;
  std::uint32_t top_k = 10;                 // per query
  bool per_query = false;                   // also answer each query's hits, not only their union
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, pattern_batch_search& x) {
  return f(caf::meta::type_name("pattern_batch_search"), x.embedder, x.queries, x.filter, x.top_k,
           x.per_query);
}

struct pattern_batch_hit {
  std::uint32_t pattern = 0;  // index into pattern_batch_hits::patterns
  double similarity = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, pattern_batch_hit& x) {
  return f(caf::meta::type_name("pattern_batch_hit"), x.pattern, x.similarity);
}

struct pattern_batch_hits {
  std::vector<pattern_record> patterns;              // every pattern any query found, once, by id
  std::vector<std::vector<pattern_batch_hit>> per_query;  // when asked: query i's top_k, best first
  std::string plan;
  std::vector<std::string> missing;  // as pattern_hits::missing
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, pattern_batch_hits& x) {
  return f(caf::meta::type_name("pattern_batch_hits"), x.patterns, x.per_query, x.plan, x.missing);
}

struct pattern_index_status {
  std::uint64_t patterns = 0;
  std::uint64_t deleted = 0;
  std::string embedder;     // name() of the embedder the vectors were made with
  bool ready = false;       // false while (re)building from PostgreSQL
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, pattern_index_status& x) {
  return f(caf::meta::type_name("pattern_index_status"), x.patterns, x.deleted, x.embedder, x.ready);
}

// upsert is idempotent (same pattern_id replaces), so a saga step can be retried safely; its commit
// does not wait for the WAL flush (runtime/db/commit.hpp): the saga's acknowledgement follows it.
// A batch answers true once all its records are committed; in a cluster the router splits it by
// owner, and any part that fails fails the answer (the parts stored stay, and a resend is safe).
using pattern_index_actor = caf::typed_actor<
  caf::replies_to<upsert_atom, pattern_record>::with<bool>,
  caf::replies_to<upsert_atom, pattern_record_batch>::with<bool>,
  caf::replies_to<delete_atom, std::int64_t>::with<bool>,
  caf::replies_to<search_atom, pattern_search>::with<pattern_hits>,
  caf::replies_to<search_atom, pattern_batch_search>::with<pattern_batch_hits>,
  caf::replies_to<status_atom>::with<pattern_index_status>,
  caf::replies_to<metrics_atom>::with<component_metrics>>;

// In a cluster, the pattern index and the router in front of it (actors/patterns/patterns.hpp)
// also take the owners of speakers, as the membership actor tells them: the index then holds only
// the patterns of the speakers this node owns, and the router sends each request to its owner.
using pattern_placement_actor = caf::typed_actor<caf::reacts_to<placement_atom, cluster_placement>>;

// A draft to correct from its speaker's patterns (POST /v1/drafts/correct). A correction worker
// retrieves the speaker's patterns for the draft's segments from the pattern index (one batch) and
// runs the engine
// (actors/patterns/core/correction_engine.hpp says how matches are found and scored).
struct correction_request {
  request_context ctx;  // the deadline; no key: correcting writes nothing
  std::string speaker_id;
  std::string draft_text;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, correction_request& x) {
  return f(caf::meta::type_name("correction_request"), x.ctx, x.speaker_id, x.draft_text);
}

struct draft_correction {
  std::uint64_t start = 0;  // half-open byte offsets into original_text (UTF-8)
  std::uint64_t end = 0;
  std::string from;
  std::string to;
  std::int64_t pattern_id = 0;
  double confidence = 0;
  bool applied = false;     // false: proposed only (a pending pattern, or under the threshold)
  std::string match;        // exact | normalised | respaced | fuzzy
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, draft_correction& x) {
  return f(caf::meta::type_name("draft_correction"), x.start, x.end, x.from, x.to, x.pattern_id,
           x.confidence, x.applied, x.match);
}

struct corrected_draft {
  std::string original_text;
  std::string corrected_text;
  std::vector<draft_correction> corrections;  // by start
  double mean_confidence = 0;   // over all corrections; 0 when none
  double min_applied = 1;       // lowest applied confidence; 1 when none
  std::uint32_t applied = 0;
  std::uint32_t proposed = 0;
  std::uint32_t patterns_retrieved = 0;  // distinct patterns the segments retrieved
  std::uint32_t segments = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, corrected_draft& x) {
  return f(caf::meta::type_name("corrected_draft"), x.original_text, x.corrected_text,
           x.corrections, x.mean_confidence, x.min_applied, x.applied, x.proposed,
           x.patterns_retrieved, x.segments);
}

// Answers invalid_argument for an empty speaker id, a draft past the configured cap (detail names
// draft_text) or invalid UTF-8; overloaded (with Retry-After) past its bound of drafts in progress;
// deadline_exceeded for work whose caller stopped waiting; the index's errors as they come.
using correction_actor =
  caf::typed_actor<caf::replies_to<correct_atom, correction_request>::with<corrected_draft>,
                   caf::replies_to<metrics_atom>::with<component_metrics>>;

}  // namespace sbm

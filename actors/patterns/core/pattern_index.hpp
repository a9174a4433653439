#pragma once
// The pattern index core: error patterns as vectors plus compact metadata columns, answering
// filtered top-k similarity search with a plan chosen per query. Pure: no CAF; the only I/O is the
// explicit save/load of a snapshot file.
//
// Why a plan per query: hnswlib 0.6 has no filter callback, and post-filtering a graph search
// collapses recall when the filter is selective (0.1% of patterns: recall 0.10 with 1,000
// candidates; STACK-NOTES.md). So the index estimates how many patterns can match from per-value
// counts and then either
//   - scans the candidates: the nodes of the narrowest posting list the filter names (a speaker's,
//     a client's or an error category's: "exact:speaker", "exact:client", "exact:category"; a long
//     list is pre-scanned on int8 codes and its best candidates re-scored exactly: "int8:client"
//     and so on), or every slot's columns when it names none ("exact:scan"); or
//   - searches the graph: hnswlib's own search when every pattern matches ("hnsw:ef=.."), else its
//     own filter-aware walk of hnswlib's bottom layer, in which only matching nodes enter the
//     result ("walk:ef=.."; "walk2:ef=.." when few match and it steps over non-matching nodes to
//     their neighbours), falling back to the exact scan for a query that finds fewer than k
//     matches ("exact:<list>(walk..)").
//
// Sharding by speaker later needs nothing new here: one pattern_index per shard, writes routed by a
// stable hash of speaker_id, a speaker-filtered search sent to its one shard, any other search sent
// to every shard with the top-k lists merged by similarity.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "actors/patterns/core/embedder.hpp"

namespace sbm::patterns {

// sbm::pattern_record without CAF, plus the version of the durable row it was read from.
struct pattern_entry {
  std::int64_t pattern_id = 0;
  std::string speaker_id;
  std::string client_id;
  std::string bucket_type;
  std::string original_text;
  std::string corrected_text;
  std::string context_text;
  std::vector<std::string> error_categories;  // held as a set: read back sorted, once each
  std::string audio_quality;
  std::string speaker_clarity;
  std::string background_noise;
  std::int32_t number_of_speakers = 1;
  bool overlapping_speech = false;
  bool requires_specialized_knowledge = false;
  std::string status;
  double weight = 0.5;
  std::int64_t created_at_ms = 0;
  std::int64_t version = 0;  // patterns.patterns.version; what the snapshot check compares
};

bool operator==(const pattern_entry& a, const pattern_entry& b);
inline bool operator!=(const pattern_entry& a, const pattern_entry& b) { return !(a == b); }

// Every field optional: empty strings, nullopt and 0 mean "any". Values are compared for equality
// only; no value is ever interpreted.
struct search_filter {
  std::string speaker_id;
  std::string client_id;
  std::string bucket_type;
  std::string audio_quality;
  std::string status;
  std::string error_category;  // among the pattern's categories
  std::optional<bool> requires_specialized_knowledge;
  std::int64_t from_ms = 0;    // created_at_ms >= from_ms
  std::int64_t to_ms = 0;      // created_at_ms <= to_ms
  double min_weight = 0;       // weight >= min_weight
  // The caller's client scope: when set, only patterns of these clients (an empty list: none).
  std::optional<std::vector<std::string>> client_ids;
};

struct scored_pattern {
  pattern_entry pattern;
  float similarity = 0;  // cosine of the query and the pattern vector
};

struct search_result {
  std::vector<scored_pattern> hits;  // best first; ties by ascending pattern_id
  std::string plan;                  // "empty", "exact:speaker", "exact:scan", "hnsw:ef=..,fetch=..",
                                     // "exact:fallback(hnsw:ef=..,fetch=..)"
};

// Many queries under one filter (a draft's segments): one plan for all of them, one pass over the
// candidates for the exact plans. `patterns` holds each pattern any query found once, by ascending
// pattern_id; `per_query[i]` is query i's top k as (index into patterns, similarity), best first,
// exactly what search() answers for that query alone.
struct batch_search_result {
  std::vector<pattern_entry> patterns;
  std::vector<std::vector<std::pair<std::uint32_t, float>>> per_query;
  std::string plan;  // as search()'s; the graph plans of its queries joined by ' ' when they differ
};

struct index_config {
  std::uint32_t dimension = 256;
  // Graph build parameters; a snapshot built with others is refused (the caller rebuilds).
  std::size_t m = 16;
  std::size_t ef_construction = 200;
  std::size_t random_seed = 100;
  // Search parameters, free to change between runs.
  // hnswlib's ef for an unfiltered search of up to ef_reference_size patterns; a larger index gets
  // more (search_ef below), since the same ef finds less of the top 10 in a larger graph.
  std::size_t ef_search = 32;
  std::size_t ef_reference_size = 100000;
  // The filter-aware walk's ef (the matches it keeps): measured, not scaled: at 1M patterns a 10%
  // filter walked at ef 64 found 0.992 of the top 10 (bench/PROFILE.md).
  std::size_t walk_ef = 64;
  // Candidate sets up to this size are scanned (and only when the scan reads at most four times as
  // many entries). Recall decides it, not only cost: at 1M patterns the walk over a 1% filter
  // (~10,000 matches) found 0.80 of the true top 10, where a scan of them is exact.
  std::size_t exact_threshold = 25000;
  // Posting lists of at least this many entries are scanned on int8 codes first, and only the best
  // `rerank` candidates per query scored exactly ("int8:<list>" plans); shorter ones are scanned on
  // the float vectors ("exact:<list>"). Measured on the bench set (bench/PROFILE.md).
  std::size_t code_scan_min = 512;
  std::size_t rerank = 32;
  // Client and category lists of at least sign_scan_min entries are scanned on sign codes first
  // (one bit per dimension, streamed in list order), the best sign_keep by that score then scored
  // on int8 codes and the best `rerank` of those exactly ("bits:<list>" plans); lists up to
  // sign_scan_max entries are scanned so rather than walked. On the bench set at 100k a 10% list
  // kept 384: recall@10 0.994 (256: 0.989), rerank 32 as good as 64 there
  // (bench/PROFILE-patterns.md).
  std::size_t sign_scan_min = 4096;
  std::size_t sign_keep = 384;
  std::size_t sign_scan_max = 200000;
  // Below this estimated share of matching patterns the walk steps over non-matching nodes
  // (two-hop) instead of scoring them.
  double two_hop_selectivity = 0.3;
  // Matching nodes a two-hop expansion scores at most (0: the graph's bottom-layer degree, 2m).
  std::size_t two_hop_gather = 0;
  // A walk expanding more nodes than this stops, and the query is scanned exactly: the cap on what
  // a filter the counts cannot estimate (a narrow date window) can make a walk cost.
  std::size_t max_walk_expansions = 20000;
  // Compaction rebuilds the graph without tombstones once they are this share of all slots and at
  // least compaction_min_tombstones.
  double compaction_fraction = 0.2;
  std::size_t compaction_min_tombstones = 1000;
  std::size_t initial_capacity = 1024;  // graph slots before the first resize (then doubled)
};

// A summary of the (pattern_id, version) pairs held. The same digest computed by PostgreSQL over
// patterns.patterns means a snapshot holds exactly the durable rows: versions come from one
// sequence and every write bumps them, so any insert, update or delete changes the digest.
struct version_digest {
  std::uint64_t count = 0;
  std::int64_t max_version = 0;
  std::uint64_t version_sum = 0;     // sum of versions modulo 2^64
  std::uint64_t id_version_sum = 0;  // sum of pattern_id * version modulo 2^64
};

bool operator==(const version_digest& a, const version_digest& b);
inline bool operator!=(const version_digest& a, const version_digest& b) { return !(a == b); }

// A snapshot that cannot be used: missing, truncated, altered, or built for another embedder or
// other graph parameters. The caller rebuilds from the source of truth.
struct snapshot_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Not safe for concurrent use, searches included (hnswlib keeps ef as graph state): one owner.
class pattern_index {
 public:
  // Throws std::invalid_argument for a dimension of 0 or m < 2.
  pattern_index(index_config config, std::string embedder_name);
  ~pattern_index();
  pattern_index(pattern_index&&) noexcept;
  pattern_index& operator=(pattern_index&&) noexcept;

  // Inserts, or replaces the pattern with the same pattern_id. A replacement with the same vector
  // and speaker updates the metadata in place (a weight or status change after verification);
  // otherwise the old graph node is tombstoned and the pattern re-added under a new label, since
  // hnswlib 0.6 cannot replace a node. Throws std::invalid_argument when the vector has the wrong
  // size or a non-finite value, or pattern_id is not positive.
  void upsert(pattern_entry entry, const std::vector<float>& vector);

  // The same for many patterns (a rebuild page): graph insertion runs on `threads` threads. A
  // pattern_id repeated within the batch keeps its last occurrence. With threads > 1 the graph is
  // not bit-for-bit reproducible (hnswlib draws node levels from one shared generator).
  void upsert_batch(std::vector<pattern_entry> entries, const std::vector<std::vector<float>>& vectors,
                    unsigned threads = 1);

  // False when the pattern is not held.
  bool erase(std::int64_t pattern_id);

  std::optional<pattern_entry> find(std::int64_t pattern_id) const;
  bool contains(std::int64_t pattern_id) const;

  // Tombstones every pattern of a speaker `leaves` says goes (to its new owner in a cluster);
  // answers how many. The predicate is asked once per speaker held.
  std::size_t erase_speakers_if(const std::function<bool(const std::string&)>& leaves);

  // Top-k by cosine among the patterns matching every filter field. Throws std::invalid_argument
  // when the query has the wrong size.
  search_result search(const std::vector<float>& query, const search_filter& filter,
                       std::size_t k) const;

  // search() for every query at once (see batch_search_result). The plan depends on the filter
  // only, so it is chosen once: a posting list small enough to be scanned exactly is read
  // once for all queries, each vector scored against every query. Throws std::invalid_argument
  // when a query has the wrong size.
  batch_search_result search_batch(const std::vector<std::vector<float>>& queries,
                                   const search_filter& filter, std::size_t k) const;

  std::size_t size() const;      // live patterns
  std::size_t deleted() const;   // tombstoned graph nodes not yet compacted away
  std::size_t capacity() const;  // graph nodes allocated
  bool needs_compaction() const;
  // Rebuilds graph, columns and posting lists from the live patterns (slow at scale: a new graph).
  void compact(unsigned threads = 1);

  version_digest digest() const;
  const index_config& config() const;
  const std::string& embedder_name() const;

  // An opaque name of where the patterns came from (the actor stores the database's pattern
  // instance id), kept in the snapshot so one made from another database is never taken for ours.
  const std::string& source_tag() const;
  void set_source_tag(std::string tag);

  // Writes `path` (metadata, texts, checksums) and `path` + ".hnsw" (the graph), each through a
  // temporary file renamed into place, graph first. Throws std::runtime_error on I/O failure.
  void save(const std::string& path) const;

  // Reads what save wrote. Search parameters come from `config`; the dimension, graph parameters
  // and embedder must equal the snapshot's, else snapshot_error, as for any checksum mismatch.
  static pattern_index load(const std::string& path, const index_config& config,
                            const std::string& embedder_name);

  struct impl;  // opaque: named here only so the core's own source files can share it

 private:
  explicit pattern_index(std::unique_ptr<impl> state);
  std::unique_ptr<impl> impl_;
};

// hnswlib's ef for an unfiltered search of `live` patterns: config.ef_search up to
// config.ef_reference_size patterns, then ef_search * (live / ef_reference_size)^0.6. The exponent
// is measured: on the bench's clustered set (M 16, ef_construction 200) recall@10 0.99 needs ef 24
// at 100k and ef 96 at 1M, a factor of 4 for 10 times the patterns (10^0.6 = 3.98).
std::size_t search_ef(const index_config& config, std::size_t live);

// The vector a pattern is indexed under. A draft segment that QA corrected is matched first by its
// own words, so the original text dominates: v = normalise(sqrt(original_share) * e(original) +
// sqrt(1 - original_share) * e(context)). With no context (or none that embeds) v = e(original), so
// a query equal to the original scores 1; with context, a query that also carries the surrounding
// words scores higher than the bare span.
inline constexpr float original_share = 0.8f;
std::vector<float> pattern_vector(const embedder& embedder, std::string_view original_text,
                                  std::string_view context_text);

}  // namespace sbm::patterns

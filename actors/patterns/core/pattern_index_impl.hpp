#pragma once
// The pattern index's state, shared by its query code (pattern_index.cpp) and its snapshot code
// (pattern_snapshot.cpp). Private to the core: callers include pattern_index.hpp only.
//
// hnswlib 0.6.2 defines non-inline globals in its headers, so exactly one translation unit of a
// program may include it: pattern_index.cpp. Everything else reaches the graph through the impl
// functions below.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "actors/patterns/core/pattern_index.hpp"

namespace hnswlib {
template <typename dist_t>
class HierarchicalNSW;
class InnerProductSpace;
}  // namespace hnswlib

namespace sbm::patterns::detail {

// Strings that repeat across patterns (speakers, clients, enumerations, categories) stored once;
// columns hold their small ids. `live` counts the live patterns per id: the selectivity estimate.
struct string_pool {
  std::unordered_map<std::string, std::uint32_t> ids;
  std::vector<std::string> values;
  std::vector<std::uint32_t> live;

  std::uint32_t intern(const std::string& value);
  std::optional<std::uint32_t> find(const std::string& value) const;
};

// One speaker's vectors back to back, so a speaker-filtered scan reads one contiguous block (an id
// list into the graph's storage measured 1.4-4.5x slower), with its own liveness bytes so the scan
// touches the slot-indexed columns only for the few candidates that could enter the top k (at 1M
// patterns those columns are far out of cache). Dead entries stay until the partition is rewritten.
struct partition {
  std::vector<float> vectors;
  std::vector<std::uint32_t> slots;
  std::vector<std::uint8_t> live;
  std::uint32_t dead = 0;
};

struct pattern_texts {
  std::string original;
  std::string corrected;
  std::string context;
};

enum slot_flag : std::uint8_t {
  alive = 1,
  specialized = 2,  // requires_specialized_knowledge
  overlapping = 4,  // overlapping_speech
};

// Categories beyond the 63rd distinct one set this bit and are listed in category_overflow.
inline constexpr std::uint32_t category_bits = 63;
inline constexpr std::uint64_t overflow_bit = std::uint64_t{1} << category_bits;

}  // namespace sbm::patterns::detail

namespace sbm::patterns {

// Columns are indexed by slot, which is also the node's label in the graph. A slot is never
// reused: a replaced or deleted pattern leaves a tombstone until compaction.
struct pattern_index::impl {
  impl(index_config cfg, std::string embedder);
  ~impl();

  index_config config;
  std::string embedder_name;
  std::unique_ptr<hnswlib::InnerProductSpace> space;  // must outlive graph, which points into it
  std::unique_ptr<hnswlib::HierarchicalNSW<float>> graph;
  // The graph's own distance (SIMD where the build allows), so exact scans score exactly as it does.
  float (*distance_function)(const void*, const void*, const void*);
  void* distance_parameter;

  detail::string_pool speakers, clients, buckets, audio_qualities, statuses, clarities, noises,
      categories;
  std::size_t specialized_live = 0;

  std::vector<std::int64_t> ids;
  std::vector<std::uint32_t> speaker, client, bucket, audio_quality, status, clarity, noise;
  std::vector<std::uint64_t> category_mask;
  std::unordered_map<std::uint32_t, std::vector<std::uint32_t>> category_overflow;
  std::vector<std::uint8_t> flags;
  std::vector<std::int32_t> speaker_count;
  std::vector<std::int64_t> created_at;
  std::vector<std::int64_t> version;
  std::vector<double> weight;
  std::vector<detail::pattern_texts> texts;
  std::vector<std::uint32_t> position;  // index within the speaker's partition

  std::vector<detail::partition> partitions;  // by speaker id
  std::unordered_map<std::int64_t, std::uint32_t> slot_of;
  std::size_t live = 0;
  std::size_t tombstones = 0;
  std::string source_tag;

  std::uint32_t new_slot();
  // Fills a dead slot with a pattern and its vector: columns, counts, partition. Not the graph.
  void assign(std::uint32_t slot, pattern_entry&& entry, const float* vector);
  // Replaces a live slot's metadata and texts; its vector and partition place stay.
  void rewrite(std::uint32_t slot, pattern_entry&& entry);
  void kill(std::uint32_t slot);  // tombstones a live slot, graph included
  void ensure_graph_capacity(std::size_t elements);
  std::size_t graph_capacity() const;
  std::size_t graph_nodes() const;    // ever added, tombstones included
  std::size_t graph_deleted() const;  // marked deleted
  void save_graph(const std::string& file) const;
  // Replaces the graph with the one in `file`; snapshot_error when hnswlib cannot read it.
  void load_graph(const std::string& file);
  // The vector stored under a live label; snapshot_error when there is none.
  std::vector<float> graph_vector(std::uint32_t slot) const;
  pattern_entry materialise(std::uint32_t slot) const;
  const float* vector_of(std::uint32_t slot) const;
  float distance(const float* a, const float* b) const;

 private:
  void write_columns(std::uint32_t slot, pattern_entry&& entry);
  void count(std::uint32_t slot, int delta);
  void rewrite_partition(std::uint32_t speaker_id);
};

}  // namespace sbm::patterns

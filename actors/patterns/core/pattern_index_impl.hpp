#pragma once
// The pattern index's state, shared by its query code (pattern_index.cpp) and its snapshot code
// (pattern_snapshot.cpp). Private to the core: callers include pattern_index.hpp only.
//
// hnswlib 0.6.2 defines non-inline globals in its headers, so exactly one translation unit of a
// program may include it: pattern_index.cpp. Everything else reaches the graph through the impl
// functions below.
#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
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

// The graph nodes holding one value of an attribute a filter names often (a speaker, a client, an
// error category): an exact scan of a small candidate set reads only these, and a graph walk marks
// them in a bitmap so that most nodes it meets are rejected without touching the columns. Entries
// of deleted nodes stay (nodes are never reused, so they can never match again) until half the list
// is dead; a live node whose client or categories change moves between lists at once.
//
// Client and category lists also hold their members' sign codes (int8_codes.hpp), sign_words
// words per entry in the order of `nodes`: the sign scan of a long list streams them. Speaker
// lists are short enough to be scanned exactly and have none.
struct posting_list {
  std::vector<std::uint32_t> nodes;
  std::vector<std::uint64_t> signs;
  std::uint32_t dead = 0;
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

  // Slots and graph nodes (hnswlib's internal ids) differ once a batch is inserted on several
  // threads; the graph walk meets nodes, the columns are by slot.
  std::vector<std::uint32_t> node;     // by slot
  std::vector<std::uint32_t> slot_at;  // by node

  std::vector<std::int64_t> ids;
  std::vector<std::uint32_t> speaker, client, bucket, audio_quality, status, clarity, noise;
  std::vector<std::uint64_t> category_mask;
  std::unordered_map<std::uint32_t, std::vector<std::uint32_t>> category_overflow;
  std::vector<std::uint8_t> flags;
  std::vector<std::int32_t> speaker_count;
  std::vector<std::int64_t> created_at;
  std::vector<std::int64_t> version;
  std::vector<double> weight;
  double lowest_weight = 0;  // the lowest weight ever written (never raised): when a floor is moot
  // A slot's three texts, one record each in one buffer: three varint lengths then the bytes (one
  // std::string per text cost 32 B each before any text). Replaced records are garbage until the
  // buffer is rewritten.
  std::string text_bytes;
  std::vector<std::uint64_t> text_at;  // by slot
  std::size_t text_garbage = 0;

  std::vector<detail::posting_list> speaker_nodes, client_nodes, category_nodes;  // by pool id
  // The walk's prefilter: bit `node` set when the node is in the chosen posting list(s). Cleared
  // after each use, so it costs the list's length, not the graph's size.
  mutable std::vector<std::uint64_t> node_bits;
  // Every node's vector as an int8 code (int8_codes.hpp), one row each by node: the code's factor
  // (a float, negated once the node is dead) then code_stride bytes. One row keeps a candidate of the
  // pre-scan within one read instead of a second random access for its factor.
  std::size_t code_row = 0;
  std::vector<std::int8_t> codes;
  std::size_t sign_words = 0;
  // The sign scan's scores and their histogram bins, kept between queries: at 1M a category's
  // 100,000 would be a fresh mapping (and its page faults) per query.
  mutable std::vector<float> sign_scratch;
  mutable std::vector<std::uint16_t> sign_bins;
  std::unordered_map<std::int64_t, std::uint32_t> slot_of;
  std::size_t live = 0;
  std::size_t tombstones = 0;
  std::string source_tag;

  std::uint32_t new_slot();
  // Fills a dead slot with a pattern: columns and counts. Not the graph.
  void assign(std::uint32_t slot, pattern_entry&& entry);
  // Once the slot's node is in the graph: the node maps and posting lists.
  void link(std::uint32_t slot);
  // Replaces a live slot's metadata and texts; its vector and node stay.
  void rewrite(std::uint32_t slot, pattern_entry&& entry);
  void kill(std::uint32_t slot);  // tombstones a live slot, graph included
  void ensure_graph_capacity(std::size_t elements);
  std::size_t graph_capacity() const;
  std::size_t graph_nodes() const;    // ever added, tombstones included
  std::size_t graph_deleted() const;  // marked deleted
  void save_graph(const std::string& file) const;
  // Replaces the graph with the one in `file`; snapshot_error when hnswlib cannot read it.
  void load_graph(const std::string& file);
  // After load_graph: node and slot_at from the graph's labels; snapshot_error when a label is not
  // a slot of `slots`.
  void map_nodes(std::size_t slots);
  bool live_in_graph(std::uint32_t slot) const;  // its node is not marked deleted
  std::array<std::string_view, 3> texts(std::uint32_t slot) const;  // original, corrected, context
  pattern_entry materialise(std::uint32_t slot) const;
  const float* vector_of(std::uint32_t slot) const;
  void encode(std::uint32_t node);  // the node's code row, from the graph's vector
  void forget_code(std::uint32_t node);
  float distance(const float* a, const float* b) const;

 private:
  void write_columns(std::uint32_t slot, pattern_entry&& entry);
  void count(std::uint32_t slot, int delta);
  void put_texts(std::uint32_t slot, const pattern_entry& e);
  void drop_texts(std::uint32_t slot);
  void unlist(std::vector<detail::posting_list>& lists, std::uint32_t value, std::uint32_t n);
  // Appends node n to lists[value], with its sign code when `signed_list`.
  void list(std::vector<detail::posting_list>& lists, std::uint32_t value, std::uint32_t n,
            bool signed_list);
  void died_in(detail::posting_list& list);
};

}  // namespace sbm::patterns

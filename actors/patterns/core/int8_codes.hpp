#pragma once
// Vectors as int8 codes, for the pre-scan of a large posting list: a code is a quarter of the
// float vector's bytes (128 B against 512 B at dim 128), so a scan of 10,000 candidates reads
// about 1.3 MB instead of 5 MB, and the exact distance is computed again only for the few best
// (the re-rank), so what a search returns is scored exactly as the graph scores it.
//
// Each vector has its own scale (its largest magnitude maps to 127): the codes' dot product times
// both factors is the float dot product up to rounding, ~1e-3 for unit vectors.
#include <cstddef>
#include <cstdint>

namespace sbm::patterns::detail {

// Bytes per code: the dimension rounded up to whole SIMD blocks, the tail zero.
std::size_t code_stride(std::uint32_t dimension);

// Writes `stride` bytes to `out` and returns the factor that turns a dot product of codes back
// into the vector's share of the float one (1 / scale). A zero vector gets codes of zero and
// factor 1. The factor is always positive, so callers may negate it to mark a dead node.
float quantise(const float* v, std::uint32_t dimension, std::size_t stride, std::int8_t* out);

// Dot product of two codes of `stride` bytes (AVX2 where the CPU has it, chosen once).
std::int32_t code_dot(const std::int8_t* a, const std::int8_t* b, std::size_t stride);

// One query code against many rows: out[i] = -(query . code of nodes[i]) * that row's factor, or
// +infinity for a dead row (negative factor). A row is `row` bytes at base + nodes[i] * row: the
// factor (a float), then the code. One call per list rather than one per row, so the loop is
// compiled for AVX2 as a whole (the dot inlined, no indirect call per row) and prefetches the rows
// ahead of it: a posting list's rows lie scattered over all the codes.
void code_scores(const std::int8_t* query, std::size_t stride, const std::int8_t* base,
                 std::size_t row, const std::uint32_t* nodes, std::size_t count, float* out);

// Sign bits: one bit per dimension (set when the value is negative), in 64-bit words. A long
// posting list keeps its members' sign codes beside their nodes, in list order, so a filtered scan
// streams 16 B per candidate (dim 128) instead of gathering 132 B rows from all over the int8
// codes. The query is kept finer than the candidates (4 bits per value; an asymmetric score
// ranks far better than comparing two sign codes): with s_i = -1 for a set bit, q.s =
// sum(q) - 2 * (sum of q over the set bits), so the smallest such sum ranks first. That sum is
// computed on bit planes: sum over p of 2^p * popcount(code & plane_p), plus the level's offset
// times popcount(code).
inline std::size_t sign_words(std::uint32_t dimension) { return (dimension + 63) / 64; }
void sign_bits(const float* v, std::uint32_t dimension, std::uint64_t* out);

// The query as sign_scores wants it: 4 bit planes of sign_words(dimension) words each (the
// query's values as levels 0..15 between its smallest and largest value) into `planes`, and the
// offset of level 0 in units of one level, returned.
float sign_query(const float* query, std::uint32_t dimension, std::uint64_t* planes);

// out[i] = the i-th of `count` consecutive sign codes of `words` words scored against the query
// (POPCNT where the CPU has it, chosen once): the smaller, the closer. Scores lie within
// [min(offset, 0) * 64 * words, (15 + max(offset, 0)) * 64 * words].
void sign_scores(const std::uint64_t* planes, float offset, std::size_t words,
                 const std::uint64_t* codes, std::size_t count, float* out);

}  // namespace sbm::patterns::detail

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

}  // namespace sbm::patterns::detail

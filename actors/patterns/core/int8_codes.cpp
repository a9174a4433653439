#include "actors/patterns/core/int8_codes.hpp"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>

namespace sbm::patterns::detail {

namespace {

constexpr std::size_t block = 32;

std::int32_t dot_portable(const std::int8_t* a, const std::int8_t* b, std::size_t stride) {
  std::int32_t s = 0;
  for (std::size_t i = 0; i < stride; ++i) s += static_cast<std::int32_t>(a[i]) * b[i];
  return s;
}

// The build targets baseline x86-64 (no -march), so AVX2 is compiled for this one function and
// used only when the CPU reports it.
__attribute__((target("avx2"))) std::int32_t dot_avx2(const std::int8_t* a, const std::int8_t* b,
                                                      std::size_t stride) {
  __m256i acc = _mm256_setzero_si256();
  for (std::size_t i = 0; i < stride; i += 16) {
    const __m256i x = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a + i)));
    const __m256i y = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b + i)));
    acc = _mm256_add_epi32(acc, _mm256_madd_epi16(x, y));
  }
  const __m128i half = _mm_add_epi32(_mm256_castsi256_si128(acc), _mm256_extracti128_si256(acc, 1));
  const __m128i quarter = _mm_add_epi32(half, _mm_shuffle_epi32(half, _MM_SHUFFLE(1, 0, 3, 2)));
  const __m128i one = _mm_add_epi32(quarter, _mm_shuffle_epi32(quarter, _MM_SHUFFLE(2, 3, 0, 1)));
  return _mm_cvtsi128_si32(one);
}

using dot_function = std::int32_t (*)(const std::int8_t*, const std::int8_t*, std::size_t);

dot_function pick() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") ? dot_avx2 : dot_portable;
}

const dot_function chosen = pick();

}  // namespace

std::size_t code_stride(std::uint32_t dimension) { return (dimension + block - 1) / block * block; }

float quantise(const float* v, std::uint32_t dimension, std::size_t stride, std::int8_t* out) {
  float largest = 0;
  for (std::uint32_t i = 0; i < dimension; ++i) largest = std::max(largest, std::fabs(v[i]));
  std::memset(out, 0, stride);
  if (largest == 0) return 1.0f;
  const float scale = 127.0f / largest;
  for (std::uint32_t i = 0; i < dimension; ++i)
    out[i] = static_cast<std::int8_t>(std::lround(std::clamp(v[i] * scale, -127.0f, 127.0f)));
  return 1.0f / scale;
}

std::int32_t code_dot(const std::int8_t* a, const std::int8_t* b, std::size_t stride) {
  return chosen(a, b, stride);
}

}  // namespace sbm::patterns::detail

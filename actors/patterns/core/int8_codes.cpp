#include "actors/patterns/core/int8_codes.hpp"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

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

// Rows of a scan in flight: a row is three cache lines, and random lines are what the scan waits on.
constexpr std::size_t ahead = 8;

template <typename Dot>
__attribute__((always_inline)) inline void scores_loop(Dot dot, const std::int8_t* base, std::size_t row,
                                                       const std::uint32_t* nodes, std::size_t count,
                                                       float* out) {
  for (std::size_t i = 0; i < count; ++i) {
    if (i + ahead < count) {
      const std::int8_t* next = base + std::size_t{nodes[i + ahead]} * row;
      for (std::size_t line = 0; line < row; line += 64) __builtin_prefetch(next + line);
      __builtin_prefetch(next + row - 1);
    }
    const std::int8_t* at = base + std::size_t{nodes[i]} * row;
    float factor;
    std::memcpy(&factor, at, sizeof factor);
    out[i] = factor < 0 ? std::numeric_limits<float>::infinity()
                        : -static_cast<float>(dot(at + sizeof(float))) * factor;
  }
}

void scores_portable(const std::int8_t* query, std::size_t stride, const std::int8_t* base,
                     std::size_t row, const std::uint32_t* nodes, std::size_t count, float* out) {
  scores_loop([&](const std::int8_t* code) { return dot_portable(query, code, stride); }, base, row,
              nodes, count, out);
}

// Signed by signed bytes in 32-byte steps: maddubs multiplies unsigned by signed, so the query
// enters as |q| (computed once) and each code takes q's signs; a pair of products is at most
// 2 * 127 * 127, inside maddubs' int16 (codes never hold -128).
__attribute__((target("avx2"))) void scores_avx2(const std::int8_t* query, std::size_t stride,
                                                 const std::int8_t* base, std::size_t row,
                                                 const std::uint32_t* nodes, std::size_t count,
                                                 float* out) {
  constexpr std::size_t most = 512 / 32;  // strides up to 512 bytes keep |q| in registers/stack
  if (stride > most * 32) {
    scores_portable(query, stride, base, row, nodes, count, out);
    return;
  }
  const std::size_t steps = stride / 32;
  __m256i q[most], magnitude[most];
  for (std::size_t s = 0; s < steps; ++s) {
    q[s] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(query + s * 32));
    magnitude[s] = _mm256_abs_epi8(q[s]);
  }
  const __m256i ones = _mm256_set1_epi16(1);
  auto dot = [&](const std::int8_t* code) __attribute__((target("avx2"))) {
    __m256i acc = _mm256_setzero_si256();
    for (std::size_t s = 0; s < steps; ++s) {
      const __m256i c = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(code + s * 32));
      const __m256i pairs = _mm256_maddubs_epi16(magnitude[s], _mm256_sign_epi8(c, q[s]));
      acc = _mm256_add_epi32(acc, _mm256_madd_epi16(pairs, ones));
    }
    const __m128i half = _mm_add_epi32(_mm256_castsi256_si128(acc), _mm256_extracti128_si256(acc, 1));
    const __m128i quarter = _mm_add_epi32(half, _mm_shuffle_epi32(half, _MM_SHUFFLE(1, 0, 3, 2)));
    return _mm_cvtsi128_si32(_mm_add_epi32(quarter, _mm_shuffle_epi32(quarter, _MM_SHUFFLE(2, 3, 0, 1))));
  };
  scores_loop(dot, base, row, nodes, count, out);
}

template <std::size_t Words>
__attribute__((always_inline)) inline void signs_loop(const std::uint64_t* planes, float offset,
                                                      const std::uint64_t* codes, std::size_t count,
                                                      float* out) {
  for (std::size_t i = 0; i < count; ++i, codes += Words) {
    int levels = 0, bits = 0;
    for (std::size_t w = 0; w < Words; ++w) {
      const std::uint64_t c = codes[w];
      bits += __builtin_popcountll(c);
      levels += __builtin_popcountll(c & planes[w]) + 2 * __builtin_popcountll(c & planes[Words + w]) +
                4 * __builtin_popcountll(c & planes[2 * Words + w]) +
                8 * __builtin_popcountll(c & planes[3 * Words + w]);
    }
    out[i] = static_cast<float>(levels) + offset * static_cast<float>(bits);
  }
}

// The word counts of the dimensions in use (128, 256) unrolled; others one word at a time.
__attribute__((always_inline)) inline void signs_any(const std::uint64_t* planes, float offset,
                                                     std::size_t words, const std::uint64_t* codes,
                                                     std::size_t count, float* out) {
  if (words == 2) return signs_loop<2>(planes, offset, codes, count, out);
  if (words == 4) return signs_loop<4>(planes, offset, codes, count, out);
  for (std::size_t i = 0; i < count; ++i, codes += words) {
    int levels = 0, bits = 0;
    for (std::size_t w = 0; w < words; ++w) {
      bits += __builtin_popcountll(codes[w]);
      for (unsigned p = 0; p < 4; ++p)
        levels += (1 << p) * __builtin_popcountll(codes[w] & planes[p * words + w]);
    }
    out[i] = static_cast<float>(levels) + offset * static_cast<float>(bits);
  }
}

void signs_portable(const std::uint64_t* planes, float offset, std::size_t words,
                    const std::uint64_t* codes, std::size_t count, float* out) {
  signs_any(planes, offset, words, codes, count, out);
}

__attribute__((target("popcnt"))) void signs_popcnt(const std::uint64_t* planes, float offset,
                                                    std::size_t words, const std::uint64_t* codes,
                                                    std::size_t count, float* out) {
  signs_any(planes, offset, words, codes, count, out);
}

// Eight words a step: 8 / Words codes at once, a plane's words repeated across the lanes.
template <std::size_t Words>
__attribute__((target("popcnt,avx512f,avx512dq,avx512vpopcntdq"))) void signs_avx512(
    const std::uint64_t* planes, float offset, const std::uint64_t* codes, std::size_t count, float* out) {
  constexpr std::size_t per_step = 8 / Words;
  alignas(64) std::uint64_t lanes[4][8];
  for (std::size_t p = 0; p < 4; ++p)
    for (std::size_t l = 0; l < 8; ++l) lanes[p][l] = planes[p * Words + l % Words];
  const __m512i p0 = _mm512_load_si512(lanes[0]), p1 = _mm512_load_si512(lanes[1]),
                p2 = _mm512_load_si512(lanes[2]), p3 = _mm512_load_si512(lanes[3]);
  const __m256 scale = _mm256_set1_ps(offset);
  alignas(32) float part[8];
  std::size_t i = 0;
  for (; i + per_step <= count; i += per_step, codes += 8) {
    const __m512i c = _mm512_loadu_si512(codes);
    // Horner on the planes with adds (GCC 12's 512-bit shift intrinsics warn -Wmaybe-uninitialized).
    __m512i levels = _mm512_popcnt_epi64(_mm512_and_si512(c, p3));
    levels = _mm512_add_epi64(_mm512_add_epi64(levels, levels), _mm512_popcnt_epi64(_mm512_and_si512(c, p2)));
    levels = _mm512_add_epi64(_mm512_add_epi64(levels, levels), _mm512_popcnt_epi64(_mm512_and_si512(c, p1)));
    levels = _mm512_add_epi64(_mm512_add_epi64(levels, levels), _mm512_popcnt_epi64(_mm512_and_si512(c, p0)));
    const __m256 score = _mm256_add_ps(_mm256_mul_ps(_mm512_cvtepi64_ps(_mm512_popcnt_epi64(c)), scale),
                                       _mm512_cvtepi64_ps(levels));
    _mm256_store_ps(part, score);
    for (std::size_t r = 0; r < per_step; ++r) {
      float sum = 0;
      for (std::size_t w = 0; w < Words; ++w) sum += part[r * Words + w];
      out[i + r] = sum;
    }
  }
  signs_loop<Words>(planes, offset, codes, count - i, out + i);
}

using dot_function = std::int32_t (*)(const std::int8_t*, const std::int8_t*, std::size_t);
using scores_function = void (*)(const std::int8_t*, std::size_t, const std::int8_t*, std::size_t,
                                 const std::uint32_t*, std::size_t, float*);

bool has_avx2() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2");
}

const bool avx2 = has_avx2();
const auto chosen_signs = __builtin_cpu_supports("popcnt") ? signs_popcnt : signs_portable;
const bool avx512_popcount = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
                             __builtin_cpu_supports("avx512vpopcntdq");

const dot_function chosen = avx2 ? dot_avx2 : dot_portable;
const scores_function chosen_scores = avx2 ? scores_avx2 : scores_portable;

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

void code_scores(const std::int8_t* query, std::size_t stride, const std::int8_t* base,
                 std::size_t row, const std::uint32_t* nodes, std::size_t count, float* out) {
  chosen_scores(query, stride, base, row, nodes, count, out);
}

void sign_bits(const float* v, std::uint32_t dimension, std::uint64_t* out) {
  std::memset(out, 0, sign_words(dimension) * sizeof(std::uint64_t));
  for (std::uint32_t i = 0; i < dimension; ++i)
    if (v[i] < 0) out[i / 64] |= std::uint64_t{1} << (i % 64);
}

float sign_query(const float* query, std::uint32_t dimension, std::uint64_t* planes) {
  const std::size_t words = sign_words(dimension);
  std::memset(planes, 0, 4 * words * sizeof(std::uint64_t));
  const auto [low, high] = std::minmax_element(query, query + dimension);
  const float step = *high > *low ? (*high - *low) / 15.0f : 1.0f;
  for (std::uint32_t i = 0; i < dimension; ++i) {
    const auto level = static_cast<unsigned>(std::lround(std::clamp((query[i] - *low) / step, 0.0f, 15.0f)));
    for (unsigned p = 0; p < 4; ++p)
      if ((level >> p) & 1u) planes[p * words + i / 64] |= std::uint64_t{1} << (i % 64);
  }
  return *low / step;
}

void sign_scores(const std::uint64_t* planes, float offset, std::size_t words,
                 const std::uint64_t* codes, std::size_t count, float* out) {
  if (avx512_popcount && words == 2) return signs_avx512<2>(planes, offset, codes, count, out);
  if (avx512_popcount && words == 4) return signs_avx512<4>(planes, offset, codes, count, out);
  chosen_signs(planes, offset, words, codes, count, out);
}

}  // namespace sbm::patterns::detail

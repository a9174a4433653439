#include "actors/patterns/core/embedder.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <stdexcept>

namespace sbm::patterns {
namespace {

constexpr std::uint64_t fnv_offset_basis = 0xcbf29ce484222325ULL;
constexpr std::uint64_t fnv_prime = 0x100000001b3ULL;
constexpr std::size_t min_ngram = 3;
constexpr std::size_t max_ngram = 5;

// Family tags: changing one changes every vector, so bump the version in name() with it.
constexpr unsigned char word_ngram_tag = 'w';
constexpr unsigned char text_ngram_tag = 't';
constexpr unsigned char word_tag = 'u';
constexpr char word_begin_marker = '<';
constexpr char word_end_marker = '>';

constexpr std::uint64_t fnv_step(std::uint64_t hash, unsigned char byte) {
  return (hash ^ byte) * fnv_prime;
}

constexpr std::uint64_t family_basis(unsigned char tag) { return fnv_step(fnv_offset_basis, tag); }

// FNV-1a's low bits mix poorly for short inputs; fmix64 spreads every input bit over the word.
constexpr std::uint64_t fmix64(std::uint64_t k) {
  k ^= k >> 33;
  k *= 0xff51afd7ed558ccdULL;
  k ^= k >> 33;
  k *= 0xc4ceb9fe1a85ec53ULL;
  k ^= k >> 33;
  return k;
}

class accumulator {
 public:
  accumulator(float* buckets, std::uint32_t dimension) : buckets_(buckets), dimension_(dimension) {}

  void add(std::uint64_t fnv_hash) {
    const std::uint64_t h = fmix64(fnv_hash);
    // Multiply-shift maps 32 hash bits onto [0, dimension) without a division.
    const auto bucket = static_cast<std::uint32_t>(((h & 0xffffffffULL) * dimension_) >> 32);
    buckets_[bucket] += (h >> 63) != 0 ? -1.0f : 1.0f;
  }

 private:
  float* buckets_;
  std::uint32_t dimension_;
};

// All 3..5-grams of a byte sequence of the given length, each n-gram's hash extending the shorter
// one from the same start, so a start costs five FNV steps however many n-grams it yields.
template <class ByteAt>
void add_ngrams(std::size_t length, const ByteAt& byte_at, std::uint64_t basis, accumulator& acc) {
  for (std::size_t start = 0; start + min_ngram <= length; ++start) {
    std::uint64_t hash = basis;
    const std::size_t longest = std::min(max_ngram, length - start);
    for (std::size_t n = 0; n < longest; ++n) {
      hash = fnv_step(hash, byte_at(start + n));
      if (n + 1 >= min_ngram) acc.add(hash);
    }
  }
}

// Adds one family's buckets to the output as a unit vector times sqrt(share), then clears them.
void fold_family(std::vector<float>& family, std::vector<float>& out, float share) {
  double squares = 0.0;
  for (float v : family) squares += static_cast<double>(v) * v;
  if (squares > 0.0) {
    const auto scale = static_cast<float>(std::sqrt(static_cast<double>(share) / squares));
    for (std::size_t i = 0; i < out.size(); ++i) out[i] += family[i] * scale;
  }
  std::fill(family.begin(), family.end(), 0.0f);
}

// Words of a normalised text, which are separated by exactly one space.
template <class OnWord>
void for_each_word(std::string_view normalized, const OnWord& on_word) {
  std::size_t start = 0;
  while (start < normalized.size()) {
    std::size_t end = normalized.find(' ', start);
    if (end == std::string_view::npos) end = normalized.size();
    on_word(normalized.substr(start, end - start));
    start = end + 1;
  }
}

bool is_ascii_alnum(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

}  // namespace

std::string normalize_for_embedding(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  bool pending_space = false;
  for (const char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if (c >= 0x80 || is_ascii_alnum(c)) {
      if (pending_space && !out.empty()) out += ' ';
      pending_space = false;
      out += (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : ch;
    } else {
      pending_space = true;
    }
  }
  return out;
}

hashed_ngram_embedder::hashed_ngram_embedder(std::uint32_t dimension)
    : dimension_(dimension), name_("hashed-ngram-v1/d" + std::to_string(dimension)) {
  if (dimension == 0) throw std::invalid_argument("hashed_ngram_embedder: dimension must be positive");
}

std::vector<float> hashed_ngram_embedder::embed(std::string_view text) const {
  std::vector<float> out(dimension_, 0.0f);
  const std::string normalized = normalize_for_embedding(text);
  if (normalized.empty()) return out;

  std::vector<float> family(dimension_, 0.0f);
  accumulator acc(family.data(), dimension_);

  for_each_word(normalized, [&](std::string_view word) {
    const std::size_t marked_length = word.size() + 2;
    add_ngrams(
        marked_length,
        [&](std::size_t i) -> unsigned char {
          if (i == 0) return word_begin_marker;
          if (i == marked_length - 1) return word_end_marker;
          return static_cast<unsigned char>(word[i - 1]);
        },
        family_basis(word_ngram_tag), acc);
  });
  fold_family(family, out, word_ngram_share);

  std::string compact;
  compact.reserve(normalized.size());
  for (const char c : normalized) {
    if (c != ' ') compact += c;
  }
  add_ngrams(
      compact.size(), [&](std::size_t i) { return static_cast<unsigned char>(compact[i]); },
      family_basis(text_ngram_tag), acc);
  fold_family(family, out, text_ngram_share);

  for_each_word(normalized, [&](std::string_view word) {
    std::uint64_t hash = family_basis(word_tag);
    for (const char c : word) hash = fnv_step(hash, static_cast<unsigned char>(c));
    acc.add(hash);
  });
  fold_family(family, out, word_share);

  // Families are unit vectors scaled by sqrt(share) but overlap in buckets, so renormalise the sum.
  double squares = 0.0;
  for (float v : out) squares += static_cast<double>(v) * v;
  if (squares > 0.0) {
    const auto scale = static_cast<float>(1.0 / std::sqrt(squares));
    for (float& v : out) v *= scale;
  }
  return out;
}

float cosine(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size()) throw std::invalid_argument("cosine: vectors of different dimension");
  float dot = 0.0f;
  for (std::size_t i = 0; i < a.size(); ++i) dot += a[i] * b[i];
  return dot;
}

}  // namespace sbm::patterns

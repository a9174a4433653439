#pragma once
// The embedder port used by the pattern index and the RAG correction step, and the built-in
// implementation that needs no model files.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace sbm::patterns {

class embedder {
 public:
  virtual ~embedder() = default;
  virtual std::uint32_t dimension() const = 0;
  // L2-normalised; all-zero for text with no tokens. Must be deterministic and thread-safe.
  virtual std::vector<float> embed(std::string_view text) const = 0;
  // Stored with every vector so that a changed embedder (or dimension) forces an index rebuild.
  virtual std::string_view name() const = 0;
};

// Feature hashing over three families, each L2-normalised on its own and then scaled by the square
// root of its share, so that the cosine of two texts is roughly the share-weighted mean of the
// per-family cosines regardless of text length:
//   word n-grams  (share word_ngram_share): character 3..5-grams of each word wrapped in '<' '>',
//                 robust to misspellings ("metoprolol" / "metoprolal");
//   text n-grams  (share text_ngram_share): character 3..5-grams of the whole normalised text with
//                 spaces removed, so a split word still matches ("hyper tension" / "hypertension");
//   words         (share word_share): whole words, so exact vocabulary still counts for most.
// Each feature is hashed with 64-bit FNV-1a (seeded per family by one tag byte) followed by the
// MurmurHash3 fmix64 finaliser; bucket = (low 32 bits * dimension) >> 32, sign = bit 63. Fixed
// arithmetic, never std::hash, so vectors are identical across builds and machines.
class hashed_ngram_embedder final : public embedder {
 public:
  static constexpr float word_ngram_share = 0.45f;
  static constexpr float text_ngram_share = 0.40f;
  static constexpr float word_share = 0.15f;

  // Throws std::invalid_argument for dimension 0.
  explicit hashed_ngram_embedder(std::uint32_t dimension = 256);

  std::uint32_t dimension() const override { return dimension_; }
  std::vector<float> embed(std::string_view text) const override;
  std::string_view name() const override { return name_; }

 private:
  std::uint32_t dimension_;
  std::string name_;
};

// ASCII-lowercase, every ASCII byte that is not a letter or digit becomes a separator, runs of
// separators collapse to one space, no leading or trailing space. Bytes above 0x7F pass through, so
// UTF-8 (valid or not) is kept byte for byte.
std::string normalize_for_embedding(std::string_view text);

// Cosine of two L2-normalised vectors, i.e. their dot product (0 when either is all-zero).
// Throws std::invalid_argument when the sizes differ: vectors from different embedders never compare.
float cosine(const std::vector<float>& a, const std::vector<float>& b);

}  // namespace sbm::patterns

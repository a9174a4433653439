#include "actors/patterns/core/embedder.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

using sbm::patterns::cosine;
using sbm::patterns::embedder;
using sbm::patterns::hashed_ngram_embedder;
using sbm::patterns::normalize_for_embedding;

double squared_norm(const std::vector<float>& v) {
  double sum = 0.0;
  for (float x : v) sum += static_cast<double>(x) * x;
  return sum;
}

bool all_finite(const std::vector<float>& v) {
  for (float x : v) {
    if (!std::isfinite(x)) return false;
  }
  return true;
}

TEST(Embedder, NormalisationLowercasesAsciiAndCollapsesPunctuation) {
  EXPECT_EQ(normalize_for_embedding("  Patient  DENIES, chest-pain!! "), "patient denies chest pain");
  EXPECT_EQ(normalize_for_embedding("BP 120/80\tmmHg\n"), "bp 120 80 mmhg");
  EXPECT_EQ(normalize_for_embedding("<tag>"), "tag");  // boundary markers cannot be forged
  EXPECT_EQ(normalize_for_embedding("Ünïcode Café"), "Ünïcode café");  // bytes above 0x7F untouched
  EXPECT_EQ(normalize_for_embedding("...!?"), "");
  EXPECT_EQ(normalize_for_embedding(""), "");
}

TEST(Embedder, DimensionAndNameFollowTheConstructor) {
  for (std::uint32_t d : {1u, 64u, 256u, 1000u}) {
    const hashed_ngram_embedder e(d);
    EXPECT_EQ(e.dimension(), d);
    EXPECT_EQ(e.embed("hypertension").size(), d);
  }
  EXPECT_EQ(hashed_ngram_embedder().dimension(), 256u);
  // The name is stored beside vectors: another dimension must read as another embedder.
  EXPECT_NE(hashed_ngram_embedder(128).name(), hashed_ngram_embedder(256).name());
  EXPECT_EQ(hashed_ngram_embedder(256).name(), hashed_ngram_embedder(256).name());
  EXPECT_THROW(hashed_ngram_embedder(0), std::invalid_argument);
}

TEST(Embedder, IsDeterministicAcrossCallsAndInstances) {
  const hashed_ngram_embedder a;
  const hashed_ngram_embedder b;
  const std::string text = "Patient reports shortness of breath on exertion.";
  EXPECT_EQ(a.embed(text), a.embed(text));
  EXPECT_EQ(a.embed(text), b.embed(text));
}

TEST(Embedder, VectorsHaveUnitNorm) {
  const hashed_ngram_embedder e;
  for (const char* text : {"a", "ab", "hypertension", "patient denies chest pain",
                           "The patient is a 67 year old male with a history of hypertension."}) {
    const auto v = e.embed(text);
    EXPECT_NEAR(squared_norm(v), 1.0, 1e-5) << text;
  }
}

TEST(Embedder, CaseAndPunctuationDoNotChangeTheVector) {
  const hashed_ngram_embedder e;
  EXPECT_EQ(e.embed("Chest pain!"), e.embed("chest   pain"));
  EXPECT_EQ(e.embed("METOPROLOL"), e.embed("metoprolol"));
}

TEST(Embedder, TextWithoutTokensGivesTheZeroVector) {
  const hashed_ngram_embedder e;
  for (const char* text : {"", "   ", "!!! ... ---", "\t\n"}) {
    const auto v = e.embed(text);
    ASSERT_EQ(v.size(), 256u);
    EXPECT_TRUE(all_finite(v)) << text;
    EXPECT_EQ(squared_norm(v), 0.0) << text;
    EXPECT_EQ(cosine(v, e.embed("hypertension")), 0.0f);
  }
}

TEST(Embedder, InvalidUtf8IsEmbeddedWithoutNaN) {
  const hashed_ngram_embedder e;
  for (const std::string& text : {std::string("\xff"), std::string("\xff\xfe\x80 abc \xc3"),
                                 std::string("caf\xc3"), std::string("\xc3\xa9\xe2\x82", 4)}) {
    const auto v = e.embed(text);
    EXPECT_TRUE(all_finite(v));
    EXPECT_NEAR(squared_norm(v), 1.0, 1e-5);
    EXPECT_EQ(v, e.embed(text));
  }
}

// Thresholds were measured at dimensions 64..1024 (hyper tension 0.75-0.78, metoprolal 0.59-0.62,
// lisinopril -0.04..0.04, chest pains 0.92-0.93) and are asserted with a margin.
class EmbedderSimilarity : public ::testing::TestWithParam<std::uint32_t> {
 protected:
  float similarity(const char* a, const char* b) const {
    const hashed_ngram_embedder concrete(GetParam());
    const embedder& port = concrete;
    return cosine(port.embed(a), port.embed(b));
  }
};

TEST_P(EmbedderSimilarity, SplitWordsStayClose) {
  EXPECT_GT(similarity("hyper tension", "hypertension"), 0.65f);
  EXPECT_GT(similarity("atrial fibrillation", "atrial fib rillation"), 0.65f);
}

TEST_P(EmbedderSimilarity, MisspelledDrugNamesStayClose) {
  EXPECT_GT(similarity("metoprolol", "metoprolal"), 0.5f);
}

TEST_P(EmbedderSimilarity, UnrelatedTermsAreFar) {
  EXPECT_LT(similarity("metoprolol", "lisinopril"), 0.2f);
  EXPECT_LT(similarity("hypertension", "diabetes"), 0.2f);
  EXPECT_LT(similarity("patient denies chest pain", "blood pressure is elevated"), 0.2f);
  EXPECT_GT(similarity("metoprolol", "metoprolal") - similarity("metoprolol", "lisinopril"), 0.4f);
}

TEST_P(EmbedderSimilarity, APluralInASentenceBarelyMatters) {
  EXPECT_GT(similarity("patient denies chest pain", "patient denies chest pains"), 0.85f);
}

INSTANTIATE_TEST_SUITE_P(Dimensions, EmbedderSimilarity, ::testing::Values(128u, 256u, 1024u));

TEST(Embedder, GoldenVectorCatchesHashChanges) {
  // If this fails on purpose (hash, weights, normalisation), bump the version in name() so stored
  // indexes are rebuilt, then update these numbers.
  const std::vector<float> expected = {0.0f,         -0.083239004f, 0.083239004f, 0.0f,
                                       -0.083239004f, 0.083239004f, 0.083239004f, 0.166478008f,
                                       0.0f,         -0.083239004f, 0.0f,          0.0f,
                                       -0.148264766f, 0.0f,         0.0f,          0.0f};
  const auto v = hashed_ngram_embedder(256).embed("Patient denies chest pain.");
  ASSERT_EQ(v.size(), 256u);
  for (std::size_t i = 0; i < expected.size(); ++i) EXPECT_NEAR(v[i], expected[i], 1e-6f) << i;
  double weighted = 0.0;  // covers the components not listed above
  for (std::size_t i = 0; i < v.size(); ++i) weighted += static_cast<double>(i + 1) * v[i];
  EXPECT_NEAR(weighted, 93.4398304, 1e-3);
  EXPECT_EQ(hashed_ngram_embedder(256).name(), "hashed-ngram-v1/d256");
}

TEST(Embedder, CosineNeedsVectorsOfOneDimension) {
  EXPECT_THROW(cosine(std::vector<float>(3), std::vector<float>(4)), std::invalid_argument);
  EXPECT_FLOAT_EQ(cosine({0.6f, 0.8f}, {0.6f, 0.8f}), 1.0f);
  EXPECT_FLOAT_EQ(cosine({1.0f, 0.0f}, {0.0f, 1.0f}), 0.0f);
}

TEST(Embedder, ThirtyWordSegmentTakesMicroseconds) {
  // Typically ~3.5 us on the shared build machine; the bound only catches an accidental blow-up
  // (per-feature allocation, quadratic scans), not noise.
  const hashed_ngram_embedder e;
  const std::string segment =
      "The patient is a 67 year old male with a history of hypertension and type 2 diabetes who "
      "presents with chest pain radiating to the left arm since this morning after breakfast today.";
  constexpr int rounds = 2000;
  float sink = 0.0f;
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < rounds; ++i) sink += e.embed(segment)[static_cast<std::size_t>(i) % 256];
  const double micros =
      std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count() / rounds;
  RecordProperty("microseconds_per_embed", std::to_string(micros));
  EXPECT_TRUE(std::isfinite(sink));
  EXPECT_LT(micros, 200.0);
}

}  // namespace

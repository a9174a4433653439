#include "actors/speakers/core/quality_measure.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <random>
#include <string>
#include <vector>

namespace sbm::speakers {
namespace {

std::string join(const std::vector<std::string>& words) {
  std::string out;
  for (const std::string& w : words) {
    if (!out.empty()) out += ' ';
    out += w;
  }
  return out;
}

// Full-matrix textbook Levenshtein: the independent oracle for the optimised implementation.
std::uint32_t reference_distance(const std::vector<std::string>& a, const std::vector<std::string>& b) {
  std::vector<std::vector<std::uint32_t>> d(a.size() + 1, std::vector<std::uint32_t>(b.size() + 1));
  for (std::size_t i = 0; i <= a.size(); ++i) d[i][0] = static_cast<std::uint32_t>(i);
  for (std::size_t j = 0; j <= b.size(); ++j) d[0][j] = static_cast<std::uint32_t>(j);
  for (std::size_t i = 1; i <= a.size(); ++i) {
    for (std::size_t j = 1; j <= b.size(); ++j) {
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1,
                          d[i - 1][j - 1] + (a[i - 1] == b[j - 1] ? 0u : 1u)});
    }
  }
  return d[a.size()][b.size()];
}

TEST(MeasureQuality, IdenticalTextHasNoErrors) {
  const quality_measure q = measure_quality("the patient denies chest pain", "the patient denies chest pain");
  EXPECT_EQ(q.edits, 0u);
  EXPECT_EQ(q.reference_words, 5u);
  EXPECT_DOUBLE_EQ(q.errors_per_100_words, 0.0);
}

TEST(MeasureQuality, SubstitutionCountsOnce) {
  const quality_measure q = measure_quality("patient takes 50 mg daily", "patient takes 15 mg daily");
  EXPECT_EQ(q.edits, 1u);
  EXPECT_EQ(q.reference_words, 5u);
  EXPECT_DOUBLE_EQ(q.errors_per_100_words, 20.0);
}

TEST(MeasureQuality, ExtraDraftWordIsAnInsertion) {
  const quality_measure q = measure_quality("no no acute distress", "no acute distress");
  EXPECT_EQ(q.edits, 1u);
  EXPECT_EQ(q.reference_words, 3u);
  EXPECT_DOUBLE_EQ(q.errors_per_100_words, 100.0 / 3.0);
}

TEST(MeasureQuality, MissingDraftWordIsADeletion) {
  const quality_measure q = measure_quality("patient stable", "patient is stable today");
  EXPECT_EQ(q.edits, 2u);
  EXPECT_EQ(q.reference_words, 4u);
  EXPECT_DOUBLE_EQ(q.errors_per_100_words, 50.0);
}

TEST(MeasureQuality, MixedEditsAtWordLevel) {
  // The classic kitten/sitting example, one letter per word: two substitutions and an insertion.
  const quality_measure q = measure_quality("k i t t e n", "s i t t i n g");
  EXPECT_EQ(q.edits, 3u);
  EXPECT_EQ(q.reference_words, 7u);
}

TEST(MeasureQuality, SwappedWordsCostTwo) {
  EXPECT_EQ(measure_quality("left knee", "knee left").edits, 2u);
}

TEST(MeasureQuality, DraftCanScoreAboveOneHundred) {
  const quality_measure q = measure_quality("a b c d e f", "x");
  EXPECT_EQ(q.edits, 6u);
  EXPECT_DOUBLE_EQ(q.errors_per_100_words, 600.0);
}

TEST(MeasureQuality, BothEmpty) {
  const quality_measure q = measure_quality("", "  \n\t ");
  EXPECT_EQ(q.edits, 0u);
  EXPECT_EQ(q.reference_words, 0u);
  EXPECT_DOUBLE_EQ(q.errors_per_100_words, 0.0);
}

TEST(MeasureQuality, EmptyVerifiedTextWithDraftIsOneHundred) {
  const quality_measure q = measure_quality("spurious words here", "");
  EXPECT_EQ(q.edits, 3u);
  EXPECT_EQ(q.reference_words, 0u);
  EXPECT_DOUBLE_EQ(q.errors_per_100_words, 100.0);
}

TEST(MeasureQuality, EmptyDraftDeletesEveryReferenceWord) {
  const quality_measure q = measure_quality("", "follow up in two weeks");
  EXPECT_EQ(q.edits, 5u);
  EXPECT_EQ(q.reference_words, 5u);
  EXPECT_DOUBLE_EQ(q.errors_per_100_words, 100.0);
}

TEST(MeasureQuality, AnyAsciiWhitespaceSeparatesAndRunsCollapse) {
  const quality_measure q =
      measure_quality("  blood\tpressure\r\n\n120/80 \v\f stable ", "blood pressure 120/80 stable");
  EXPECT_EQ(q.edits, 0u);
  EXPECT_EQ(q.reference_words, 4u);
}

TEST(MeasureQuality, CaseAndPunctuationAreDifferences) {
  EXPECT_EQ(measure_quality("Aspirin given", "aspirin given").edits, 1u);
  EXPECT_EQ(measure_quality("no pain", "no pain.").edits, 1u);
}

TEST(MeasureQuality, NonAsciiBytesAreNeverSeparators) {
  // U+00A0 (no-break space) is two bytes of UTF-8 and does not split a word.
  const quality_measure q = measure_quality("5\xC2\xA0mg", "5 mg");
  EXPECT_EQ(q.edits, 2u);
  EXPECT_EQ(q.reference_words, 2u);
  EXPECT_EQ(measure_quality("caf\xC3\xA9 au lait", "caf\xC3\xA9 au lait").edits, 0u);
}

TEST(MeasureQuality, EditCountIsSymmetric) {
  const char* a = "the quick brown fox jumps over the lazy dog";
  const char* b = "a quick brown dog jumped over lazy dogs today";
  EXPECT_EQ(measure_quality(a, b).edits, measure_quality(b, a).edits);
}

TEST(MeasureQuality, MatchesTextbookLevenshteinOnRandomTexts) {
  // A tiny vocabulary makes repeated words, shared prefixes and suffixes common, which is where
  // the trimming and the single-row recurrence could go wrong.
  std::mt19937 rng(20261124);
  const std::vector<std::string> vocabulary{"a", "b", "c", "d"};
  std::uniform_int_distribution<std::size_t> pick(0, vocabulary.size() - 1);
  std::uniform_int_distribution<int> length(0, 14);
  for (int round = 0; round < 500; ++round) {
    std::vector<std::string> draft, verified;
    for (int i = length(rng); i > 0; --i) draft.push_back(vocabulary[pick(rng)]);
    for (int i = length(rng); i > 0; --i) verified.push_back(vocabulary[pick(rng)]);
    const quality_measure q = measure_quality(join(draft), join(verified));
    const std::uint32_t expected =
        verified.empty() ? static_cast<std::uint32_t>(draft.size()) : reference_distance(draft, verified);
    ASSERT_EQ(q.edits, expected) << "draft '" << join(draft) << "' verified '" << join(verified) << "'";
    ASSERT_EQ(q.reference_words, verified.size());
  }
}

TEST(MeasureQuality, HandlesFiveThousandWordDocuments) {
  std::vector<std::string> verified, draft;
  for (int i = 0; i < 5000; ++i) verified.push_back("w" + std::to_string(i % 700));
  draft = verified;
  // 50 scattered substitutions, plus an insertion near the start and a deletion near the end so
  // that neither the common prefix nor the common suffix covers the edited region.
  for (int i = 50; i < 5000; i += 100) draft[static_cast<std::size_t>(i)] = "typo";
  draft.insert(draft.begin() + 3, "um");
  draft.erase(draft.end() - 4);
  const quality_measure q = measure_quality(join(draft), join(verified));
  EXPECT_EQ(q.edits, 52u);
  EXPECT_EQ(q.reference_words, 5000u);
  EXPECT_DOUBLE_EQ(q.errors_per_100_words, 52.0 * 100.0 / 5000.0);
}

TEST(MeasureQuality, TheBandedDistanceIsExactUpToItsCapAndALowerBoundBeyond) {
  // Long random texts over a tiny vocabulary: distances from a few to past the cap, so the band
  // has to double, sometimes up to the cap.
  std::mt19937 rng(20261202);
  const std::vector<std::string> vocabulary{"a", "b", "c", "d"};
  std::uniform_int_distribution<std::size_t> pick(0, vocabulary.size() - 1);
  std::uniform_int_distribution<int> length(0, 300);
  std::bernoulli_distribution mutate(0.3);
  int exact = 0, bounded = 0;
  for (int round = 0; round < 200; ++round) {
    std::vector<std::string> verified;
    for (int i = length(rng); i > 0; --i) verified.push_back(vocabulary[pick(rng)]);
    std::vector<std::string> draft;
    for (const auto& w : verified)
      if (!mutate(rng)) draft.push_back(w);
      else if (mutate(rng)) draft.push_back(vocabulary[pick(rng)]);
    if (round % 3 == 0)  // unrelated texts too
      for (auto& w : draft) w = vocabulary[pick(rng)];
    if (verified.empty()) continue;
    const quality_measure q = measure_quality(join(draft), join(verified));
    const std::uint32_t expected = reference_distance(draft, verified);
    const std::uint32_t cap = max_exact_edits(static_cast<std::uint32_t>(draft.size()),
                                              static_cast<std::uint32_t>(verified.size()));
    if (expected <= cap) {
      ASSERT_EQ(q.edits, expected) << "draft '" << join(draft) << "' verified '" << join(verified) << "'";
      ASSERT_FALSE(q.at_least);
      ++exact;
    } else {
      ASSERT_TRUE(q.at_least);
      ASSERT_EQ(q.edits, cap + 1);
      ++bounded;
    }
  }
  EXPECT_GT(exact, 50);
  EXPECT_GT(bounded, 5);
}

TEST(MeasureQuality, TwoUnrelatedTextsAtTheWordCapAreALowerBoundFarIntoTheWorstBand) {
  // Nothing in common: a full table would be 20,000 x 20,000; the band stops at the cap.
  std::vector<std::string> verified, draft;
  for (std::uint32_t i = 0; i < max_quality_words; ++i) {
    verified.push_back("v" + std::to_string(i));
    draft.push_back("d" + std::to_string(i));
  }
  const quality_measure q = measure_quality(join(draft), join(verified));
  EXPECT_TRUE(q.at_least);
  EXPECT_EQ(q.edits, max_exact_edits(max_quality_words, max_quality_words) + 1);
  EXPECT_GE(q.errors_per_100_words, 50.0);
  EXPECT_EQ(count_words(join(verified)), max_quality_words);
}

TEST(MeasureQuality, CountWordsAgreesWithTheMeasure) {
  EXPECT_EQ(count_words(""), 0u);
  EXPECT_EQ(count_words("  \t\n "), 0u);
  EXPECT_EQ(count_words(" one  two\tthree\n"), 3u);
  EXPECT_EQ(count_words("caf\xC3\xA9 au lait"), measure_quality("x", "caf\xC3\xA9 au lait").reference_words);
}

}  // namespace
}  // namespace sbm::speakers

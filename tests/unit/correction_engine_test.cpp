#include "actors/patterns/core/correction_engine.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace {

using sbm::patterns::correct_draft;
using sbm::patterns::correction_config;
using sbm::patterns::correction_pattern;
using sbm::patterns::correction_result;
using sbm::patterns::draft_segments;
using sbm::patterns::match_kind;

correction_pattern pat(std::int64_t id, std::string from, std::string to, std::string category = "medical_terminology",
                       std::string status = "rectified", double weight = 0.5) {
  return {id, std::move(from), std::move(to), {std::move(category)}, std::move(status), weight};
}

// Every correction's span holds exactly its `from` in the original, and applying the applied ones
// to the original gives corrected_text.
void check_offsets(const std::string& draft, const correction_result& r) {
  ASSERT_EQ(r.original_text, draft);
  std::string rebuilt;
  std::size_t at = 0, prev_end = 0;
  for (const auto& c : r.corrections) {
    ASSERT_LE(prev_end, c.start);
    ASSERT_LT(c.start, c.end);
    ASSERT_LE(c.end, draft.size());
    ASSERT_EQ(draft.substr(c.start, c.end - c.start), c.from);
    prev_end = c.end;
    if (c.applied) {
      rebuilt += draft.substr(at, c.start - at);
      rebuilt += c.to;
      at = c.end;
    }
  }
  rebuilt += draft.substr(at);
  EXPECT_EQ(rebuilt, r.corrected_text);
}

correction_result run(const std::string& draft, const std::vector<correction_pattern>& ps,
                      const correction_config& cfg = {}) {
  auto r = correct_draft(draft, ps, cfg);
  check_offsets(draft, r);
  return r;
}

TEST(CorrectionEngine, ExactMatchIsAppliedWithItsSpan) {
  const std::string d = "Patient has hyper tension, controlled.";
  auto r = run(d, {pat(7, "hyper tension", "hypertension")});
  ASSERT_EQ(r.corrections.size(), 1u);
  const auto& c = r.corrections[0];
  EXPECT_EQ(c.start, 12u);
  EXPECT_EQ(c.end, 25u);
  EXPECT_EQ(c.from, "hyper tension");
  EXPECT_EQ(c.to, "hypertension");
  EXPECT_EQ(c.pattern_id, 7);
  EXPECT_EQ(c.kind, match_kind::exact);
  EXPECT_DOUBLE_EQ(c.confidence, 0.5);
  EXPECT_TRUE(c.applied);
  EXPECT_EQ(r.corrected_text, "Patient has hypertension, controlled.");
}

TEST(CorrectionEngine, CaseSpacingAndPunctuationInsensitiveKeepsTheSentenceCapital) {
  const std::string d = "Hyper   tension. Seen by Dr Stephens.";
  auto r = run(d, {pat(1, "hyper tension", "hypertension"),
                   pat(2, "Dr. Stephens", "Dr. Stevens", "speaker_attribution")});
  ASSERT_EQ(r.corrections.size(), 2u);
  EXPECT_EQ(r.corrections[0].kind, match_kind::normalised);
  EXPECT_EQ(r.corrections[0].to, "Hypertension");
  EXPECT_EQ(r.corrections[1].kind, match_kind::normalised);
  EXPECT_EQ(r.corrected_text, "Hypertension. Seen by Dr. Stevens.");
}

TEST(CorrectionEngine, AWordSplitElsewhereIsTheSameError) {
  auto r = run("known hypert ension today", {pat(1, "hyper tension", "hypertension")});
  ASSERT_EQ(r.corrections.size(), 1u);
  EXPECT_EQ(r.corrections[0].kind, match_kind::respaced);
  EXPECT_EQ(r.corrected_text, "known hypertension today");
}

TEST(CorrectionEngine, FuzzyFixesAnotherVowelSlipAndAnotherNearMiss) {
  auto r = run("Erythoma noted; started on sertaline 50 mg.",
               {pat(1, "erythima", "erythema"), pat(2, "seltraline", "sertraline", "drug_name")});
  ASSERT_EQ(r.corrections.size(), 2u);
  EXPECT_EQ(r.corrections[0].kind, match_kind::fuzzy);
  EXPECT_DOUBLE_EQ(r.corrections[0].confidence, 0.4);
  EXPECT_EQ(r.corrected_text, "Erythema noted; started on sertraline 50 mg.");
}

TEST(CorrectionEngine, FuzzyLeavesInflectionsHomophonesAndNamesAlone) {
  // "hypertensions" is one letter from "hypertension" but changes the last letter; homophone and
  // surname patterns never match fuzzily.
  auto r = run("hypertensions; dysphasic; Dr. Stephen",
               {pat(1, "hyper tension", "hypertension"), pat(2, "dysphasia", "dysphagia", "homophone"),
                pat(3, "Stephens", "Stevens", "speaker_attribution")});
  EXPECT_TRUE(r.corrections.empty());
  EXPECT_EQ(r.corrected_text, "hypertensions; dysphasic; Dr. Stephen");
}

TEST(CorrectionEngine, NumbersAreSlots) {
  auto r = run("Metoprolol 50 daily and metoprolol 12.5 at night.",
               {pat(1, "metoprolol 25", "metoprolol 25 mg", "dosage")});
  ASSERT_EQ(r.corrections.size(), 2u);
  EXPECT_EQ(r.corrections[0].to, "Metoprolol 50 mg");
  EXPECT_EQ(r.corrections[1].to, "metoprolol 12.5 mg");
  EXPECT_EQ(r.corrected_text, "Metoprolol 50 mg daily and metoprolol 12.5 mg at night.");
}

TEST(CorrectionEngine, TextThatIsAlreadyRightStays) {
  auto r = run("levothyroxine 88 mcg; hypertension; Metoprolol 25 mg.",
               {pat(1, "levothyroxine 88", "levothyroxine 88 mcg", "dosage"),
                pat(2, "hyper tension", "hypertension"), pat(3, "metoprolol 25", "metoprolol 25 mg", "dosage")});
  EXPECT_TRUE(r.corrections.empty());
  EXPECT_EQ(r.corrected_text, r.original_text);
}

TEST(CorrectionEngine, NeverInsideALongerWord) {
  auto r = run("catheterisation and cathartic", {pat(1, "cat", "dog", "homophone"), pat(2, "cath", "path")});
  EXPECT_TRUE(r.corrections.empty());
}

TEST(CorrectionEngine, OverlapsResolveToTheBestNonOverlappingSet) {
  // Both patterns match "hyper tension"; the heavier wins and nothing is applied twice.
  auto r = run("hyper tension now", {pat(1, "hyper tension", "hypertension", "medical_terminology", "rectified", 0.5),
                                     pat(2, "tension", "tensions", "medical_terminology", "rectified", 0.9),
                                     pat(3, "hyper", "hypo", "medical_terminology", "rectified", 0.4)});
  ASSERT_EQ(r.corrections.size(), 2u);
  EXPECT_EQ(r.corrections[0].pattern_id, 3);  // "hyper" alone, still free after 2 took "tension"
  EXPECT_EQ(r.corrections[1].pattern_id, 2);
  EXPECT_EQ(r.corrected_text, "hypo tensions now");
}

TEST(CorrectionEngine, PendingIsProposedLowConfidenceIsProposedUnderTheFloorIsUnused) {
  correction_config cfg;
  cfg.apply_threshold = 0.45;
  cfg.weight_floor = 0.2;
  auto r = run("erythoma, hyper tension, dysphasia, seltraline",
               {pat(1, "erythima", "erythema"),                                      // fuzzy 0.4: proposed
                pat(2, "hyper tension", "hypertension", "medical_terminology", "pending"),  // proposed
                pat(3, "dysphasia", "dysphagia", "homophone", "rectified", 0.1),     // unused
                pat(4, "seltraline", "sertraline", "drug_name", "rectified", 0.9)},  // applied
               cfg);
  ASSERT_EQ(r.corrections.size(), 3u);
  EXPECT_FALSE(r.corrections[0].applied);
  EXPECT_FALSE(r.corrections[1].applied);
  EXPECT_TRUE(r.corrections[2].applied);
  EXPECT_EQ(r.scores.applied, 1u);
  EXPECT_EQ(r.scores.proposed, 2u);
  EXPECT_EQ(r.corrected_text, "erythoma, hyper tension, dysphasia, sertraline");
}

TEST(CorrectionEngine, UnicodeOffsetsAreByteExact) {
  const std::string d = "Café 日本語 😀 erythima naïve e\xCC\x81rythima erythima\xCC\x81 end";
  auto r = run(d, {pat(1, "erythima", "erythema")});
  // The plain one is fixed; the one with a combining accent inside and the one with a combining
  // mark after it are other words (the mark belongs to the word) and are not touched.
  ASSERT_EQ(r.corrections.size(), 1u);
  EXPECT_EQ(r.corrections[0].start, d.find("erythima"));
  EXPECT_EQ(r.corrected_text, "Café 日本語 😀 erythema naïve e\xCC\x81rythima erythima\xCC\x81 end");
  auto r2 = run("患者 café, Café", {pat(2, "café", "cafe"), pat(3, "日本", "x")});
  ASSERT_EQ(r2.corrections.size(), 2u);
  EXPECT_EQ(r2.corrected_text, "患者 cafe, Cafe");
}

TEST(CorrectionEngine, EmptyInputsAndDegeneratePatterns) {
  EXPECT_EQ(run("", {pat(1, "a b", "ab")}).corrected_text, "");
  EXPECT_EQ(run("some text", {}).corrected_text, "some text");
  auto r = run("a , b", {pat(1, "", "x"), pat(2, " ,; ", "y"), pat(3, "b", "")});
  ASSERT_EQ(r.corrections.size(), 1u);
  EXPECT_EQ(r.corrected_text, "a , ");
  // Case only: exact bytes are the only evidence.
  auto c = run("us and US", {pat(4, "us", "US", "medical_terminology")});
  ASSERT_EQ(c.corrections.size(), 1u);
  EXPECT_EQ(c.corrected_text, "US and US");
}

TEST(CorrectionEngine, OneMebibyteDraft) {
  std::string d;
  const std::string unit = "Patient with hyper tension on metoprolol 25 and erythoma noted. ";
  while (d.size() < (1u << 20)) d += unit;
  auto r = run(d, {pat(1, "hyper tension", "hypertension"), pat(2, "metoprolol 25", "metoprolol 25 mg", "dosage"),
                   pat(3, "erythima", "erythema")});
  const std::size_t reps = d.size() / unit.size() + (d.size() % unit.size() ? 1 : 0);
  EXPECT_GE(r.corrections.size(), 3 * (reps - 1));
  EXPECT_EQ(r.scores.applied, r.corrections.size() - 0);
  EXPECT_EQ(r.corrected_text.find("hyper tension"), std::string::npos);
}

// Spans of a valid UTF-8 draft start and end on code point boundaries.
void check_code_points(const std::string& draft, const correction_result& r) {
  auto boundary = [&](std::size_t at) {
    return at == draft.size() || (static_cast<unsigned char>(draft[at]) & 0xC0) != 0x80;
  };
  for (const auto& c : r.corrections) {
    EXPECT_TRUE(boundary(c.start)) << c.start;
    EXPECT_TRUE(boundary(c.end)) << c.end;
  }
}

TEST(CorrectionEngine, OriginalsInsideLongerWordsAreLeftAloneInEveryScript) {
  // A CJK original inside a longer CJK word, an accented one inside a longer accented word, an
  // original that is a longer word's prefix or suffix, exactly, respaced and fuzzily.
  const std::string d = "日本語 日本 cafés café hypertensionitis prehyper tension erythimas xerythima erythima";
  auto r = run(d, {pat(1, "日本", "にほん"), pat(2, "café", "cafe"), pat(3, "hyper tension", "hypertension"),
                   pat(4, "erythima", "erythema")});
  check_code_points(d, r);
  ASSERT_EQ(r.corrections.size(), 3u);
  EXPECT_EQ(r.corrections[0].from, "日本");
  EXPECT_EQ(r.corrections[0].start, d.find("日本 "));
  EXPECT_EQ(r.corrections[1].from, "café");
  EXPECT_EQ(r.corrections[1].start, d.find("café "));
  EXPECT_EQ(r.corrections[2].start, d.rfind("erythima"));
  EXPECT_EQ(r.corrected_text, "日本語 にほん cafés cafe hypertensionitis prehyper tension erythimas xerythima erythema");
}

TEST(CorrectionEngine, OverlappingPatternsApplyOnceEvenWhenOneFixLooksLikeAnothersError) {
  // Both windows hold "25" and both fixes add the unit: whichever wins, the draft is changed once
  // there ("25 mg mg" never), and the loser is not even proposed.
  for (double w : {0.4, 0.6}) {
    auto r = run("metoprolol 25 daily", {pat(1, "metoprolol 25", "metoprolol 25 mg", "dosage"),
                                         pat(2, "25 daily", "25 mg daily", "dosage", "rectified", w)});
    ASSERT_EQ(r.corrections.size(), 1u);
    EXPECT_EQ(r.corrections[0].pattern_id, w < 0.5 ? 1 : 2);
    EXPECT_EQ(r.corrected_text, "metoprolol 25 mg daily");
  }
  // Several patterns with the same original: the heaviest is the one used, the others not at all.
  auto same = run("Erythima seen.", {pat(5, "erythima", "erythema", "medical_terminology", "rectified", 0.5),
                                     pat(6, "erythima", "erythemia", "medical_terminology", "rectified", 0.7),
                                     pat(7, "erythima", "erythrima", "medical_terminology", "rectified", 0.6)});
  ASSERT_EQ(same.corrections.size(), 1u);
  EXPECT_EQ(same.corrections[0].pattern_id, 6);
  EXPECT_EQ(same.corrected_text, "Erythemia seen.");
  // Equal confidence: the lower pattern_id.
  auto tie = run("erythima", {pat(9, "erythima", "erythema"), pat(8, "erythima", "erythemo")});
  ASSERT_EQ(tie.corrections.size(), 1u);
  EXPECT_EQ(tie.corrections[0].pattern_id, 8);
}

TEST(CorrectionEngine, ManyPatternsSharingKeysKeepEachPatternsOwnRules) {
  // Forty speakers' reports of one word split at other points share the key "hypertension"; a
  // homophone with the same letters as a fuzzy drug name is never matched fuzzily itself.
  std::vector<correction_pattern> ps;
  for (int i = 0; i < 40; ++i)
    ps.push_back(pat(100 + i, i % 2 ? "hyper tension" : "hypert ension", "hypertension", "medical_terminology",
                     i == 7 ? "rectified" : "pending", i == 7 ? 0.9 : 0.5));
  ps.push_back(pat(1, "dysphasia", "dysphagia", "homophone"));
  ps.push_back(pat(2, "dysphasia", "dysphagia", "medical_terminology", "pending"));
  auto r = run("Hyperten sion with dysphasio and dysphasia.", ps);
  ASSERT_EQ(r.corrections.size(), 3u);
  EXPECT_EQ(r.corrections[0].pattern_id, 107);  // the one rectified and heaviest
  EXPECT_TRUE(r.corrections[0].applied);
  EXPECT_EQ(r.corrections[1].pattern_id, 2);    // fuzzy: only the pattern that allows it
  EXPECT_EQ(r.corrections[1].kind, match_kind::fuzzy);
  EXPECT_FALSE(r.corrections[1].applied);
  EXPECT_EQ(r.corrections[2].pattern_id, 1);    // exact: the rectified homophone
  EXPECT_EQ(r.corrected_text, "Hypertension with dysphasio and dysphagia.");
}

TEST(CorrectionEngine, OneMebibyteOfEveryScriptKeepsItsOffsets) {
  // Accents, CJK, emoji (with a ZWJ sequence and a variation selector), combining marks, right
  // beside the errors and inside words, a mebibyte of it against a thousand patterns.
  const std::string unit =
      "Café naïve 患者の hyper tension 😀 erythoma; 👩\xE2\x80\x8D\xE2\x9A\x95\xEF\xB8\x8F Dr. Stephens "
      "e\xCC\x81rythima metoprolol 50 (日本語) señor hypertension\xCC\x81.\n";
  std::string d;
  while (d.size() < (1u << 20)) d += unit;
  std::vector<correction_pattern> ps{pat(1, "hyper tension", "hypertension"), pat(2, "erythima", "erythema"),
                                     pat(3, "metoprolol 25", "metoprolol 25 mg", "dosage"),
                                     pat(4, "Dr. Stephens", "Dr. Stevens", "speaker_attribution"),
                                     pat(5, "naïve", "naive"), pat(6, "患者", "patient")};
  for (int i = 0; i < 994; ++i) ps.push_back(pat(1000 + i, "word" + std::to_string(i) + "x", "word", "drug_name"));
  auto r = run(d, ps);
  check_code_points(d, r);
  const std::size_t reps = d.size() / unit.size();
  EXPECT_EQ(r.corrections.size(), 5 * reps);  // "患者の" is one word: not "患者"
  EXPECT_EQ(r.scores.applied, r.corrections.size());
  const std::string fixed_unit =
      "Café naive 患者の hypertension 😀 erythema; 👩\xE2\x80\x8D\xE2\x9A\x95\xEF\xB8\x8F Dr. Stevens "
      "e\xCC\x81rythima metoprolol 50 mg (日本語) señor hypertension\xCC\x81.\n";
  std::string want;
  for (std::size_t i = 0; i < reps; ++i) want += fixed_unit;
  EXPECT_TRUE(r.corrected_text == want);  // not EXPECT_EQ: a failure would print two mebibytes
}

TEST(CorrectionEngine, SegmentsAreSentencesCoveringEveryWord) {
  const std::string d = "One two three. Four five!\nSix; seven eight nine ten";
  auto s = draft_segments(d, 3);
  ASSERT_EQ(s.size(), 5u);
  EXPECT_EQ(d.substr(s[0].first, s[0].second - s[0].first), "One two three");
  EXPECT_EQ(d.substr(s[1].first, s[1].second - s[1].first), "Four five");
  EXPECT_EQ(d.substr(s[2].first, s[2].second - s[2].first), "Six");
  EXPECT_EQ(d.substr(s[3].first, s[3].second - s[3].first), "seven eight nine");
  EXPECT_EQ(d.substr(s[4].first, s[4].second - s[4].first), "ten");
  EXPECT_TRUE(draft_segments("", 3).empty());
  EXPECT_TRUE(draft_segments(" ... ", 3).empty());
}

}  // namespace

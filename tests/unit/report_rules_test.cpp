// What makes an error report acceptable (the field each refusal names, 400 against 422) and the
// small rules the report saga follows.
#include "actors/reports/core/report_rules.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace {

using namespace sbm::reports;

// A report with every field set to something valid; each test breaks one thing.
struct sample_report {
  std::string speaker_id = "spk-1";
  std::string client_id = "clinic-1";
  std::string job_id = "job-1";
  std::string original_text = "hyper tension";
  std::string corrected_text = "hypertension";
  std::vector<std::string> error_categories{"medical_terminology"};
  std::string audio_quality = "good";
  std::string speaker_clarity = "clear";
  std::string background_noise = "low";
  std::int32_t number_of_speakers = 1;
  std::string additional_notes;
  std::string context_notes;
  std::string context_text;
};

std::optional<field_problem> check(const sample_report& r, report_limits limits = {}) {
  return check_report(r, limits);
}

TEST(ReportRulesCheck, AValidReportPasses) {
  EXPECT_FALSE(check(sample_report{}));
  sample_report all;
  all.error_categories = {"drug_name", "dosage", "homophone", "numbers_units",
                          "punctuation_formatting", "speaker_attribution", "medical_terminology"};
  all.additional_notes = "line one\nline two\ttabbed";
  all.context_notes = "ß, é, 漢字";
  all.context_text = "patient has hyper tension and";
  all.number_of_speakers = 20;
  EXPECT_FALSE(check(all));
}

TEST(ReportRulesCheck, EachBrokenFieldIsNamed) {
  struct broken {
    const char* field;
    void (*breaks)(sample_report&);
  };
  const broken cases[] = {
    {"speaker_id", [](sample_report& r) { r.speaker_id.clear(); }},
    {"speaker_id", [](sample_report& r) { r.speaker_id = "a/b"; }},
    {"client_id", [](sample_report& r) { r.client_id = std::string(129, 'c'); }},
    {"job_id", [](sample_report& r) { r.job_id = "job\x01"; }},
    {"original_text", [](sample_report& r) { r.original_text = "  \n "; }},
    {"original_text", [](sample_report& r) { r.original_text = "bad \xC3\x28 utf8"; }},
    {"corrected_text", [](sample_report& r) { r.corrected_text.clear(); }},
    {"corrected_text", [](sample_report& r) { r.corrected_text = std::string("nul\0x", 5); }},
    {"error_categories", [](sample_report& r) { r.error_categories.clear(); }},
    {"error_categories", [](sample_report& r) { r.error_categories = {"spelling"}; }},
    {"error_categories", [](sample_report& r) { r.error_categories = {"dosage", "dosage"}; }},
    {"audio_quality", [](sample_report& r) { r.audio_quality.clear(); }},
    {"audio_quality", [](sample_report& r) { r.audio_quality = "GOOD"; }},
    {"speaker_clarity", [](sample_report& r) { r.speaker_clarity = "loud"; }},
    {"background_noise", [](sample_report& r) { r.background_noise = "' OR 1=1 --"; }},
    {"number_of_speakers", [](sample_report& r) { r.number_of_speakers = 0; }},
    {"number_of_speakers", [](sample_report& r) { r.number_of_speakers = 21; }},
    {"additional_notes", [](sample_report& r) { r.additional_notes = "bell\a"; }},
    {"context_notes", [](sample_report& r) { r.context_notes = std::string(10001, 'n'); }},
    {"context_text", [](sample_report& r) { r.context_text = "\x7F"; }},
  };
  for (const auto& c : cases) {
    sample_report r;
    c.breaks(r);
    auto problem = check(r);
    ASSERT_TRUE(problem) << c.field;
    EXPECT_EQ(problem->field, c.field);
    EXPECT_FALSE(problem->unprocessable) << c.field;
    EXPECT_NE(problem->reason.find(std::string("'") + c.field + "'"), std::string::npos)
      << problem->reason;
  }
}

TEST(ReportRulesCheck, TheFirstBrokenFieldInOrderWins) {
  sample_report r;
  r.job_id.clear();
  r.audio_quality = "awful";
  EXPECT_EQ(check(r)->field, "job_id");
}

TEST(ReportRulesCheck, TextLimitsComeFromConfiguration) {
  sample_report r;
  r.original_text = std::string(50, 'a');
  EXPECT_FALSE(check(r, {50, 10}));
  auto problem = check(r, {49, 10});
  ASSERT_TRUE(problem);
  EXPECT_EQ(problem->field, "original_text");
  EXPECT_NE(problem->reason.find("at most 49 bytes"), std::string::npos) << problem->reason;
  r = sample_report{};
  r.additional_notes = std::string(11, 'n');
  EXPECT_EQ(check(r, {100, 10})->field, "additional_notes");
}

TEST(ReportRulesCheck, ACorrectionThatChangesNothingIsUnprocessable) {
  sample_report r;
  r.corrected_text = r.original_text;
  auto problem = check(r);
  ASSERT_TRUE(problem);
  EXPECT_EQ(problem->field, "corrected_text");
  EXPECT_TRUE(problem->unprocessable);
  r.corrected_text = "  " + r.original_text + "\n";
  ASSERT_TRUE(check(r));
  EXPECT_TRUE(check(r)->unprocessable);
  r.corrected_text = "Hyper tension";  // case is a real correction
  EXPECT_FALSE(check(r));
}

TEST(ReportRulesCheck, InjectionTextIsJustText) {
  sample_report r;
  r.original_text = "'; DROP TABLE reports.error_reports; --";
  r.corrected_text = "\" OR \"1\"=\"1";
  r.additional_notes = "metadata.speaker_id = 'x' OR 1=1";
  EXPECT_FALSE(check(r));
}

TEST(ReportRulesIds, IdProblemsAreExplained) {
  EXPECT_FALSE(id_problem("spk-1"));
  EXPECT_FALSE(id_problem(std::string(128, 'x')));
  EXPECT_TRUE(id_problem(std::string(129, 'x')));
  EXPECT_TRUE(id_problem(""));
  EXPECT_TRUE(id_problem("a\tb"));
  EXPECT_TRUE(id_problem("\xF0\x28\x8C\x28"));
}

TEST(ReportRulesSaga, StepsRunInOrderAndEndInDone) {
  EXPECT_EQ(next_step(saga_step::index), saga_step::notify);
  EXPECT_EQ(next_step(saga_step::notify), saga_step::schedule);
  EXPECT_EQ(next_step(saga_step::schedule), saga_step::done);
  EXPECT_EQ(next_step(saga_step::done), saga_step::done);
  for (auto s : {saga_step::index, saga_step::notify, saga_step::schedule, saga_step::done})
    EXPECT_EQ(parse_saga_step(to_string(s)), s);
  EXPECT_FALSE(parse_saga_step("store"));
  EXPECT_FALSE(parse_saga_step(""));
}

TEST(ReportRulesSaga, WhileFilingsArriveTheSagaTakesItsBackgroundShareUpToItsBacklogBound) {
  const saga_share_rule rule{1, 100};
  EXPECT_EQ(saga_statements_allowed(rule, true, 0, 6), 1u);
  EXPECT_EQ(saga_statements_allowed(rule, true, 100, 6), 1u);
  // Past the bound the backlog must shrink: full share, and filings slow instead.
  EXPECT_EQ(saga_statements_allowed(rule, true, 101, 6), 6u);
  // No filings: full speed whatever the backlog.
  EXPECT_EQ(saga_statements_allowed(rule, false, 0, 6), 6u);
  EXPECT_EQ(saga_statements_allowed(rule, false, 5000, 6), 6u);
  // A background share above the full one is the full one; 0 never yields.
  EXPECT_EQ(saga_statements_allowed({8, 100}, true, 0, 6), 6u);
  EXPECT_EQ(saga_statements_allowed({0, 100}, true, 0, 6), 6u);
}

TEST(ReportRulesSaga, ANoTouchSpeakerIsVerifiedFirst) {
  EXPECT_EQ(verification_priority("no_touch"), "high");
  EXPECT_EQ(verification_priority("low_touch"), "normal");
  EXPECT_EQ(verification_priority("high_touch"), "normal");
}

TEST(ReportRulesWeight, VerdictsMoveTheWeightOnce) {
  EXPECT_DOUBLE_EQ(weight_after("pending", "rectified", 0.5), 0.6);
  EXPECT_DOUBLE_EQ(weight_after("pending", "not_rectified", 0.5), 0.4);
  EXPECT_DOUBLE_EQ(weight_after("rectified", "rectified", 0.6), 0.6);
  // Flipping a verdict lands where the second verdict alone would have.
  EXPECT_DOUBLE_EQ(weight_after("rectified", "not_rectified", 0.6), 0.4);
  EXPECT_DOUBLE_EQ(weight_after("not_rectified", "rectified", 0.4), 0.6);
  EXPECT_DOUBLE_EQ(weight_after("pending", "rectified", 0.95), 1.0);
  EXPECT_DOUBLE_EQ(weight_after("pending", "not_rectified", 0.05), 0.0);
}

}  // namespace

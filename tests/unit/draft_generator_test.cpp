// The demo InstaNote's drafts are the ground truth correction quality is measured on: they must be
// reproducible, differ from their references exactly where an error was injected, and hold the
// systematic errors the way ASR makes them (varied, and right text for another speaker).
#include "actors/instanote/core/draft_generator.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <fstream>
#include <map>
#include <set>

namespace {

using namespace sbm::instanote;

const seeded_data& sample() {
  static const seeded_data data = [] {
    generator_options o;
    o.seed = 42;
    o.speakers = 8;
    o.days = 20;
    o.drafts_per_day = 2;
    return generate(o, {"appendicitis", "blepharitis", "sarcoidosis"});
  }();
  return data;
}

std::string lower(std::string s) {
  for (auto& c : s)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool word_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '\'' || c == '-'; }

// Byte offsets where `needle` occurs in `text` as whole words (case-insensitive).
std::vector<std::size_t> occurrences(const std::string& text, const std::string& needle) {
  std::vector<std::size_t> out;
  const auto t = lower(text), n = lower(needle);
  for (auto at = t.find(n); at != std::string::npos; at = t.find(n, at + 1)) {
    const auto end = at + n.size();
    if ((at == 0 || !word_char(t[at - 1])) && (end >= t.size() || !word_char(t[end])))
      out.push_back(at);
  }
  return out;
}

TEST(DraftGenerator, SameSeedSameDataOtherSeedOtherData) {
  generator_options o;
  o.seed = 7;
  o.speakers = 3;
  o.days = 4;
  auto a = generate(o, {"blepharitis"});
  auto b = generate(o, {"blepharitis"});
  ASSERT_EQ(a.drafts.size(), 3u * 4 * 2);
  ASSERT_EQ(a.drafts.size(), b.drafts.size());
  for (std::size_t i = 0; i < a.drafts.size(); ++i) {
    EXPECT_EQ(a.drafts[i].job_id, b.drafts[i].job_id);
    EXPECT_EQ(a.drafts[i].draft_text, b.drafts[i].draft_text);
    EXPECT_EQ(a.drafts[i].reference_text, b.drafts[i].reference_text);
    EXPECT_EQ(a.drafts[i].created_at, b.drafts[i].created_at);
    EXPECT_EQ(a.drafts[i].errors.size(), b.drafts[i].errors.size());
  }
  for (std::size_t s = 0; s < a.speakers.size(); ++s)
    for (std::size_t e = 0; e < a.speakers[s].errors.size(); ++e)
      EXPECT_EQ(a.speakers[s].errors[e].erroneous_forms, b.speakers[s].errors[e].erroneous_forms);
  o.seed = 8;
  auto c = generate(o, {"blepharitis"});
  std::size_t same = 0;
  for (std::size_t i = 0; i < a.drafts.size(); ++i)
    same += a.drafts[i].reference_text == c.drafts[i].reference_text;
  EXPECT_EQ(same, 0u);
}

TEST(DraftGenerator, DraftDiffersFromReferenceOnlyAtInjectedErrors) {
  std::size_t injected = 0;
  for (const auto& d : sample().drafts) {
    std::string rebuilt;
    std::size_t draft_at = 0, ref_at = 0;
    for (const auto& e : d.errors) {
      ASSERT_GE(e.draft_begin, draft_at) << d.job_id;
      ASSERT_GE(e.reference_begin, ref_at) << d.job_id;
      // Outside the spans the bytes are the same.
      ASSERT_EQ(d.draft_text.substr(draft_at, e.draft_begin - draft_at),
                d.reference_text.substr(ref_at, e.reference_begin - ref_at))
          << d.job_id;
      EXPECT_EQ(d.draft_text.substr(e.draft_begin, e.draft_end - e.draft_begin), e.draft_span);
      EXPECT_EQ(d.reference_text.substr(e.reference_begin, e.reference_end - e.reference_begin),
                e.reference_span);
      EXPECT_NE(e.draft_span, e.reference_span) << d.job_id;
      rebuilt += d.draft_text.substr(draft_at, e.draft_begin - draft_at) + e.reference_span;
      draft_at = e.draft_end;
      ref_at = e.reference_end;
      ++injected;
    }
    rebuilt += d.draft_text.substr(draft_at);
    EXPECT_EQ(rebuilt, d.reference_text) << d.job_id;
    EXPECT_EQ(d.errors.empty(), d.draft_text == d.reference_text);
  }
  EXPECT_GT(injected, sample().drafts.size());  // several errors per draft on average
}

TEST(DraftGenerator, EverySpeakerRepeatsEachOfItsErrors) {
  std::map<std::string, std::map<error_kind, std::size_t>> seen;
  for (const auto& d : sample().drafts)
    for (const auto& e : d.errors) {
      ++seen[d.speaker_id][e.kind];
      EXPECT_EQ(e.error_id, d.speaker_id + ":" + std::string{kind_name(e.kind)});
    }
  for (const auto& s : sample().speakers) {
    ASSERT_EQ(s.errors.size(), 6u);
    for (auto kind : all_error_kinds)
      EXPECT_GE(seen[s.speaker_id][kind], 3u) << s.speaker_id << " " << kind_name(kind);
  }
}

TEST(DraftGenerator, VariantsReallyVary) {
  std::map<std::string, std::set<std::string>> forms;  // error_id -> draft spans
  std::size_t capitalised = 0;
  for (const auto& d : sample().drafts)
    for (const auto& e : d.errors) {
      forms[e.error_id].insert(e.draft_span);
      if (e.kind != error_kind::surname && e.kind != error_kind::dropped_unit &&
          std::isupper(static_cast<unsigned char>(e.draft_span[0])))
        ++capitalised;
    }
  for (const auto& s : sample().speakers) {
    for (const auto& e : s.errors) {
      const auto& seen = forms[e.error_id];
      switch (e.kind) {
        case error_kind::split_word:
        case error_kind::vowel_slip:
        case error_kind::drug_near_miss: {
          EXPECT_GE(e.erroneous_forms.size(), 2u) << e.error_id;
          std::set<std::string> lowered;
          for (const auto& f : seen) lowered.insert(lower(f));
          EXPECT_GE(lowered.size(), 2u) << e.error_id << ": the same wrong form every time";
          break;
        }
        case error_kind::dropped_unit: {
          std::set<std::string> doses;
          for (const auto& f : seen) doses.insert(lower(f));
          EXPECT_GE(doses.size(), 2u) << e.error_id << ": always the same dose";
          break;
        }
        default:
          break;
      }
    }
  }
  EXPECT_GT(capitalised, 0u) << "no error ever landed at a sentence start";
}

TEST(DraftGenerator, ADroppedUnitIsOneDrugsDosesWithoutTheirUnit) {
  std::map<std::string, const systematic_error*> by_id;
  for (const auto& s : sample().speakers)
    for (const auto& e : s.errors)
      by_id[e.error_id] = &e;
  std::size_t seen = 0;
  for (const auto& d : sample().drafts)
    for (const auto& e : d.errors) {
      if (e.kind != error_kind::dropped_unit)
        continue;
      const auto& sys = *by_id.at(e.error_id);
      ASSERT_FALSE(sys.context.empty());
      EXPECT_EQ(lower(e.draft_span).rfind(sys.context + " ", 0), 0u) << e.draft_span;
      EXPECT_EQ(e.reference_span, e.draft_span + " " + sys.clean_form);
      ++seen;
    }
  EXPECT_GT(seen, sample().speakers.size());
}

TEST(DraftGenerator, OneSpeakersErrorIsAnothersRightText) {
  // Right text: in the reference and not inside one of that draft's error spans.
  auto right_in = [](const draft& d, const std::string& word) {
    for (auto at : occurrences(d.draft_text, word)) {
      bool inside = false;
      for (const auto& e : d.errors)
        inside = inside || (at >= e.draft_begin && at < e.draft_end);
      if (!inside)
        return true;
    }
    return false;
  };
  std::size_t crossing = 0;
  for (const auto& s : sample().speakers) {
    for (const auto& e : s.errors) {
      if (e.kind != error_kind::homophone && e.kind != error_kind::surname)
        continue;
      const auto& wrong = e.erroneous_forms.front();
      bool elsewhere = false;
      for (const auto& d : sample().drafts) {
        if (d.speaker_id == s.speaker_id)
          EXPECT_TRUE(occurrences(d.reference_text, wrong).empty())
              << s.speaker_id << " says '" << wrong << "' rightly, though it is its own error";
        else
          elsewhere = elsewhere || right_in(d, wrong);
      }
      crossing += elsewhere;
    }
  }
  EXPECT_GE(crossing, sample().speakers.size());  // about one of two per speaker
}

TEST(DraftGenerator, DraftsLookLikeNotesAndCarryMetadata) {
  static const std::set<std::string> qualities{"excellent", "good", "fair", "poor"};
  static const std::set<std::string> categories{"medical_terminology", "drug_name", "dosage",
                                                "homophone", "speaker_attribution"};
  std::set<std::string> jobs;
  for (const auto& d : sample().drafts) {
    EXPECT_TRUE(jobs.insert(d.job_id).second) << d.job_id;
    for (const char* section : {"HISTORY OF PRESENT ILLNESS:", "MEDICATIONS:", "ASSESSMENT:", "PLAN:"})
      EXPECT_NE(d.reference_text.find(section), std::string::npos) << d.job_id << " " << section;
    EXPECT_EQ(d.reference_text.find('{'), std::string::npos) << d.reference_text;
    EXPECT_EQ(qualities.count(d.audio_quality), 1u);
    EXPECT_GT(d.duration_seconds, 10.0);
    for (const auto& t : d.error_types)
      EXPECT_EQ(categories.count(t), 1u) << t;
    EXPECT_TRUE(std::is_sorted(d.error_types.begin(), d.error_types.end()));
  }
}

TEST(DraftGenerator, VocabularyStripsHunspellFlagsAndKeepsConditionLikeWords) {
  const std::string path = ::testing::TempDir() + "draft_generator_test.dic";
  {
    std::ofstream out{path};
    out << "5\nappendicitis/M\nAddison\nosteomyelitis/MS\nheart\nsarcoidosis\n";
  }
  std::string error;
  auto words = load_vocabulary(path, &error);
  ASSERT_TRUE(words) << error;
  EXPECT_EQ(*words, (std::vector<std::string>{"appendicitis", "osteomyelitis", "sarcoidosis"}));
  std::remove(path.c_str());
  EXPECT_FALSE(load_vocabulary(path, &error));
  EXPECT_NE(error.find(path), std::string::npos);
}

TEST(DraftGenerator, DebiansMedicalWordListGivesVocabulary) {
  std::string error;
  auto words = load_vocabulary("/usr/share/hunspell/en_med_glut.dic", &error);
  ASSERT_TRUE(words) << error << " (scripts/install-deps installs hunspell-en-med)";
  EXPECT_GT(words->size(), 500u);
  EXPECT_NE(std::find(words->begin(), words->end(), "appendicitis"), words->end());
}

}  // namespace

#pragma once
// The words SBM's API and its families share, each list in one table: the gateway checks input
// against them and the families name their values from them. Pure and header-only (constexpr
// tables), so including it costs nothing.
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace sbm::domain {

// Best first; the order of sbm::speakers::bucket.
inline constexpr std::array<std::string_view, 4> bucket_names{"no_touch", "low_touch",
                                                              "medium_touch", "high_touch"};
// Drafts of a no_touch speaker go out unedited, so its errors are verified first.
inline constexpr std::string_view no_touch = bucket_names[0];
inline constexpr std::array<std::string_view, 3> user_roles{"qa", "qa_lead", "admin"};
inline constexpr std::array<std::string_view, 2> schedule_priorities{"high", "normal"};
inline constexpr std::string_view high_priority = schedule_priorities[0];
inline constexpr std::string_view normal_priority = schedule_priorities[1];

// The enumerations of SPEC's error report and seed section 4.1.
inline constexpr std::array<std::string_view, 7> error_categories{
  "medical_terminology", "drug_name",           "dosage",
  "homophone",           "numbers_units",       "punctuation_formatting",
  "speaker_attribution"};
inline constexpr std::array<std::string_view, 4> audio_qualities{"excellent", "good", "fair", "poor"};
inline constexpr std::array<std::string_view, 3> speaker_clarities{"clear", "moderate", "unclear"};
inline constexpr std::array<std::string_view, 4> background_noises{"none", "low", "moderate", "high"};
inline constexpr std::array<std::string_view, 3> report_statuses{"pending", "rectified",
                                                                 "not_rectified"};
// Where every report starts.
inline constexpr std::string_view pending_status = report_statuses[0];
// What a verification may set a report to.
inline constexpr std::array<std::string_view, 2> verdicts{"rectified", "not_rectified"};
inline constexpr std::int64_t min_speakers = 1;
inline constexpr std::int64_t max_speakers = 20;

template <std::size_t N>
constexpr bool is_one_of(const std::array<std::string_view, N>& allowed, std::string_view value) {
  for (auto a : allowed)
    if (a == value)
      return true;
  return false;
}

// "a, b or c", for messages that tell the client what would have been accepted.
template <std::size_t N>
std::string choices_text(const std::array<std::string_view, N>& allowed) {
  std::string out;
  for (std::size_t i = 0; i < N; ++i) {
    if (i > 0)
      out += i + 1 == N ? " or " : ", ";
    out += allowed[i];
  }
  return out;
}

}  // namespace sbm::domain

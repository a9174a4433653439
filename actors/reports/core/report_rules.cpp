#include "actors/reports/core/report_rules.hpp"

#include <algorithm>

namespace sbm::reports {

namespace {

constexpr std::string_view whitespace = " \t\r\n";

std::string_view trimmed(std::string_view s) {
  const auto first = s.find_first_not_of(whitespace);
  if (first == std::string_view::npos) return {};
  const auto last = s.find_last_not_of(whitespace);
  return s.substr(first, last - first + 1);
}

field_problem malformed(std::string_view field, std::string reason) {
  return {std::string(field), "field '" + std::string(field) + "' " + std::move(reason), false};
}

std::optional<field_problem> check_id(std::string_view field, std::string_view value) {
  if (auto why = id_problem(value)) return malformed(field, *why);
  return std::nullopt;
}

// Tab and line breaks are allowed: spans and notes are copied from multi-line drafts.
std::optional<field_problem> check_text(std::string_view field, std::string_view value,
                                        std::size_t max_bytes, bool required) {
  if (value.size() > max_bytes)
    return malformed(field, "must be at most " + std::to_string(max_bytes) + " bytes (got " +
                              std::to_string(value.size()) + ")");
  if (!valid_utf8(value)) return malformed(field, "must be valid UTF-8");
  for (char ch : value) {
    const auto c = static_cast<unsigned char>(ch);
    if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7F)
      return malformed(field, "must not contain control characters");
  }
  if (required && trimmed(value).empty()) return malformed(field, "must not be blank");
  return std::nullopt;
}

template <std::size_t N>
std::optional<field_problem> check_choice(std::string_view field, std::string_view value,
                                          const std::array<std::string_view, N>& allowed) {
  if (value.empty()) return malformed(field, "is required");
  if (!is_one_of(allowed, value)) return malformed(field, "must be " + choices_text(allowed));
  return std::nullopt;
}

}  // namespace


std::optional<field_problem> check_report(const report_fields& r, const report_limits& limits) {
  if (auto p = check_id("speaker_id", r.speaker_id)) return p;
  if (auto p = check_id("client_id", r.client_id)) return p;
  if (auto p = check_id("job_id", r.job_id)) return p;
  if (auto p = check_text("original_text", r.original_text, limits.max_text_bytes, true)) return p;
  if (auto p = check_text("corrected_text", r.corrected_text, limits.max_text_bytes, true)) return p;
  static const std::vector<std::string> none;
  const auto& categories = r.error_categories ? *r.error_categories : none;
  if (categories.empty())
    return malformed("error_categories", "must name at least one of " +
                                           choices_text(error_categories));
  for (std::size_t i = 0; i < categories.size(); ++i) {
    if (!is_one_of(error_categories, categories[i]))
      return malformed("error_categories", "has an unknown category at index " +
                                             std::to_string(i) + "; known: " +
                                             choices_text(error_categories));
    if (std::find(categories.begin(), categories.begin() + static_cast<std::ptrdiff_t>(i),
                  categories[i]) != categories.begin() + static_cast<std::ptrdiff_t>(i))
      return malformed("error_categories", "names '" + categories[i] + "' twice");
  }
  if (auto p = check_choice("audio_quality", r.audio_quality, audio_qualities)) return p;
  if (auto p = check_choice("speaker_clarity", r.speaker_clarity, speaker_clarities)) return p;
  if (auto p = check_choice("background_noise", r.background_noise, background_noises)) return p;
  if (r.number_of_speakers < min_speakers || r.number_of_speakers > max_speakers)
    return malformed("number_of_speakers", "must be an integer from " +
                                             std::to_string(min_speakers) + " to " +
                                             std::to_string(max_speakers));
  if (auto p = check_text("additional_notes", r.additional_notes, limits.max_notes_bytes, false))
    return p;
  if (auto p = check_text("context_notes", r.context_notes, limits.max_notes_bytes, false)) return p;
  if (auto p = check_text("context_text", r.context_text, limits.max_notes_bytes, false)) return p;
  if (trimmed(r.original_text) == trimmed(r.corrected_text))
    return field_problem{"corrected_text",
                         "field 'corrected_text' is the same as 'original_text': a report must "
                         "correct something",
                         true};
  return std::nullopt;
}

std::string_view to_string(saga_step step) {
  switch (step) {
    case saga_step::index: return "index";
    case saga_step::notify: return "notify";
    case saga_step::schedule: return "schedule";
    case saga_step::done: return "done";
  }
  return "done";
}

std::optional<saga_step> parse_saga_step(std::string_view text) {
  for (auto s : {saga_step::index, saga_step::notify, saga_step::schedule, saga_step::done})
    if (to_string(s) == text) return s;
  return std::nullopt;
}

std::uint32_t saga_statements_allowed(const saga_share_rule& rule, bool filings_arriving,
                                      std::size_t backlog, std::uint32_t full) {
  if (rule.background == 0 || !filings_arriving || backlog > rule.backlog) return full;
  return std::min(rule.background, full);
}

saga_step next_step(saga_step step) {
  switch (step) {
    case saga_step::index: return saga_step::notify;
    case saga_step::notify: return saga_step::schedule;
    case saga_step::schedule:
    case saga_step::done: return saga_step::done;
  }
  return saga_step::done;
}

std::string_view verification_priority(std::string_view bucket_type) {
  return bucket_type == domain::no_touch ? domain::high_priority : domain::normal_priority;
}

double weight_after(std::string_view old_status, std::string_view new_status, double weight) {
  if (old_status == new_status) return weight;
  // Undo what the previous verdict did before applying the new one, so flipping a verdict
  // (rectified -> not_rectified) lands where a single not_rectified would have.
  if (old_status == "rectified") weight -= 0.1;
  if (old_status == "not_rectified") weight += 0.1;
  if (new_status == "rectified") weight += 0.1;
  if (new_status == "not_rectified") weight -= 0.1;
  return std::clamp(weight, 0.0, 1.0);
}

}  // namespace sbm::reports

#include "actors/patterns/pattern_records.hpp"

#include "runtime/domain/ids.hpp"
#include "runtime/domain/vocabulary.hpp"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <utility>

namespace sbm::patterns {

namespace {

using domain::max_id_bytes;
constexpr std::size_t max_categories = 64;

}  // namespace

std::optional<std::string> invalid_record(const pattern_record& r, std::size_t max_text_bytes) {
  auto too_long = [&](const std::string& s) { return s.size() > max_text_bytes; };
  if (r.pattern_id <= 0) return "pattern_id: must be positive";
  if (auto why = domain::id_problem(r.speaker_id)) return "speaker_id: " + *why;
  if (r.client_id.size() > max_id_bytes) return "client_id: at most " + std::to_string(max_id_bytes) + " bytes";
  if (r.bucket_type.size() > max_id_bytes) return "bucket_type: at most " + std::to_string(max_id_bytes) + " bytes";
  if (r.original_text.empty()) return "original_text: must not be empty";
  if (too_long(r.original_text)) return "original_text: too long";
  if (too_long(r.corrected_text)) return "corrected_text: too long";
  if (too_long(r.context_text)) return "context_text: too long";
  if (r.error_categories.size() > max_categories) return "error_categories: at most 64";
  for (const auto& c : r.error_categories)
    if (c.empty() || c.size() > max_id_bytes)
      return "error_categories: each must be 1 to " + std::to_string(max_id_bytes) + " bytes";
  if (r.audio_quality.size() > max_id_bytes || r.speaker_clarity.size() > max_id_bytes ||
      r.background_noise.size() > max_id_bytes)
    return "audio metadata: at most " + std::to_string(max_id_bytes) + " bytes each";
  if (!domain::is_one_of(domain::report_statuses, r.status))
    return "status: must be " + domain::choices_text(domain::report_statuses);
  if (!std::isfinite(r.weight) || r.weight < 0 || r.weight > 1) return "weight: must be in [0, 1]";
  if (r.created_at_ms < 0) return "created_at_ms: must not be negative";
  return std::nullopt;
}

void canonicalise(pattern_record& r) {
  auto& c = r.error_categories;
  std::sort(c.begin(), c.end());
  c.erase(std::unique(c.begin(), c.end()), c.end());
}

pattern_entry to_entry(const pattern_record& r, std::int64_t version, std::int64_t created_at_ms) {
  pattern_entry e;
  e.pattern_id = r.pattern_id;
  e.speaker_id = r.speaker_id;
  e.client_id = r.client_id;
  e.bucket_type = r.bucket_type;
  e.original_text = r.original_text;
  e.corrected_text = r.corrected_text;
  e.context_text = r.context_text;
  e.error_categories = r.error_categories;
  e.audio_quality = r.audio_quality;
  e.speaker_clarity = r.speaker_clarity;
  e.background_noise = r.background_noise;
  e.number_of_speakers = r.number_of_speakers;
  e.overlapping_speech = r.overlapping_speech;
  e.requires_specialized_knowledge = r.requires_specialized_knowledge;
  e.status = r.status;
  e.weight = r.weight;
  e.created_at_ms = created_at_ms;
  e.version = version;
  return e;
}

pattern_record to_record(const pattern_entry& e) {
  pattern_record r;
  r.pattern_id = e.pattern_id;
  r.speaker_id = e.speaker_id;
  r.client_id = e.client_id;
  r.bucket_type = e.bucket_type;
  r.original_text = e.original_text;
  r.corrected_text = e.corrected_text;
  r.context_text = e.context_text;
  r.error_categories = e.error_categories;
  r.audio_quality = e.audio_quality;
  r.speaker_clarity = e.speaker_clarity;
  r.background_noise = e.background_noise;
  r.number_of_speakers = e.number_of_speakers;
  r.overlapping_speech = e.overlapping_speech;
  r.requires_specialized_knowledge = e.requires_specialized_knowledge;
  r.status = e.status;
  r.weight = e.weight;
  r.created_at_ms = e.created_at_ms;
  return r;
}

search_filter to_filter(const pattern_filter& f) {
  search_filter out;
  out.speaker_id = f.speaker_id;
  out.client_id = f.client_id;
  out.bucket_type = f.bucket_type;
  out.audio_quality = f.audio_quality;
  out.status = f.status;
  out.error_category = f.error_category;
  if (f.requires_specialized_knowledge) out.requires_specialized_knowledge = *f.requires_specialized_knowledge;
  out.from_ms = f.from_ms;
  out.to_ms = f.to_ms;
  out.min_weight = f.min_weight;
  if (f.scope.limited) out.client_ids = f.scope.client_ids;
  return out;
}

}  // namespace sbm::patterns

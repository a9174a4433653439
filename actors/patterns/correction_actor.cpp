// The correction actor (correction.hpp): retrieval per segment from the pattern index, then the pure
// engine, on a detached thread.
#include <caf/actor_system.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <caf/typed_response_promise.hpp>

#include <algorithm>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "actors/patterns/correction.hpp"
#include "messages/errors.hpp"
#include "runtime/text/utf8.hpp"

namespace sbm::patterns {

namespace {

struct correction_state {
  correction_settings settings;
  std::uint32_t in_flight = 0;
  std::uint64_t drafts = 0;     // drafts corrected (answered with a result) since start
  std::uint64_t applied = 0;    // corrections made in those drafts
  std::uint64_t proposed = 0;   // corrections only suggested
};

using self_ptr = correction_actor::stateful_pointer<correction_state>;

// One draft's retrieval: the answers of its segment searches, gathered.
struct retrieval {
  correction_request request;
  caf::typed_response_promise<corrected_draft> promise;
  std::size_t waiting = 0;
  std::uint32_t segments = 0;
  bool done = false;
  std::map<std::int64_t, pattern_record> patterns;  // by id: one copy of each, in a stable order
};

std::vector<std::pair<std::size_t, std::size_t>> retrieval_ranges(const std::string& draft,
                                                                  const correction_settings& s) {
  auto segments = draft_segments(draft, s.segment_words);
  if (segments.size() <= s.max_segments) return segments;
  // More sentences than queries allowed: consecutive segments share one query.
  const std::size_t group = (segments.size() + s.max_segments - 1) / s.max_segments;
  std::vector<std::pair<std::size_t, std::size_t>> merged;
  for (std::size_t i = 0; i < segments.size(); i += group) {
    const std::size_t last = std::min(segments.size(), i + group) - 1;
    merged.emplace_back(segments[i].first, segments[last].second);
  }
  return merged;
}

corrected_draft run_engine(const std::string& draft, const std::map<std::int64_t, pattern_record>& found,
                           const correction_config& config, std::uint32_t segments) {
  std::vector<correction_pattern> patterns;
  patterns.reserve(found.size());
  for (const auto& [id, r] : found)
    patterns.push_back({id, r.original_text, r.corrected_text, r.error_categories, r.status, r.weight});
  auto result = correct_draft(draft, patterns, config);
  corrected_draft out;
  out.original_text = std::move(result.original_text);
  out.corrected_text = std::move(result.corrected_text);
  out.corrections.reserve(result.corrections.size());
  for (auto& c : result.corrections)
    out.corrections.push_back({c.start, c.end, std::move(c.from), std::move(c.to), c.pattern_id,
                               c.confidence, c.applied, to_string(c.kind)});
  out.mean_confidence = result.scores.mean;
  out.min_applied = result.scores.min_applied;
  out.applied = static_cast<std::uint32_t>(result.scores.applied);
  out.proposed = static_cast<std::uint32_t>(result.scores.proposed);
  out.patterns_retrieved = static_cast<std::uint32_t>(found.size());
  out.segments = segments;
  return out;
}

void count(correction_state& st, const corrected_draft& out) {
  ++st.drafts;
  st.applied += out.applied;
  st.proposed += out.proposed;
}

caf::result<corrected_draft> on_correct(self_ptr self, correction_request& req) {
  auto& st = self->state;
  const auto& s = st.settings;
  if (req.speaker_id.empty()) return make_error(errc::invalid_argument, "speaker_id is required");
  if (req.draft_text.size() > s.max_draft_bytes)
    return make_error(errc::invalid_argument, "draft_text is longer than " +
                                                  std::to_string(s.max_draft_bytes) + " bytes");
  if (!text::valid_utf8(req.draft_text))
    return make_error(errc::invalid_argument, "draft_text is not valid UTF-8");
  const auto now = self->clock().now();
  if (req.ctx.until.passed(now))
    return make_error(errc::deadline_exceeded, "the caller stopped waiting before the correction started");
  const auto ranges = retrieval_ranges(req.draft_text, s);
  if (ranges.empty()) {
    auto out = run_engine(req.draft_text, {}, s.engine, 0);
    count(st, out);
    return out;
  }
  if (st.in_flight >= s.max_in_flight)
    return make_error(errc::overloaded,
                      "too many drafts are being corrected on this node (" +
                          std::to_string(s.max_in_flight) + ")",
                      s.retry_after);
  ++st.in_flight;
  auto job = std::make_shared<retrieval>();
  job->promise = self->make_response_promise<corrected_draft>();
  job->waiting = ranges.size();
  job->segments = static_cast<std::uint32_t>(ranges.size());
  const auto timeout = std::max(std::chrono::milliseconds{1}, req.ctx.until.left(now, s.index_timeout));
  job->request = std::move(req);
  auto finish = [self, job](caf::error* failure) {
    if (job->done) return;
    job->done = true;
    --self->state.in_flight;
    if (failure) {
      job->promise.deliver(std::move(*failure));
      return;
    }
    auto out = run_engine(job->request.draft_text, job->patterns, self->state.settings.engine,
                          job->segments);
    count(self->state, out);
    job->promise.deliver(std::move(out));
  };
  for (const auto& [b, e] : ranges) {
    pattern_search search;
    search.query_text = job->request.draft_text.substr(b, e - b);
    search.filter.speaker_id = job->request.speaker_id;
    search.filter.min_weight = s.engine.weight_floor;
    search.filter.scope = job->request.ctx.scope;  // never a pattern of a client the caller cannot reach
    search.top_k = s.top_k;
    self->request(s.index, timeout, search_atom::value, std::move(search))
        .then(
            [job, finish](pattern_hits& hits) mutable {
              for (auto& h : hits.hits)
                if (h.pattern.speaker_id == job->request.speaker_id)  // the filter, checked again
                  job->patterns.emplace(h.pattern.pattern_id, std::move(h.pattern));
              if (--job->waiting == 0) finish(nullptr);
            },
            [finish](caf::error& err) mutable { finish(&err); });
  }
  return job->promise;
}

correction_actor::behavior_type correction_fn(self_ptr self, correction_settings settings) {
  self->state.settings = std::move(settings);
  return {
    [self](correct_atom, correction_request& req) { return on_correct(self, req); },
    [self](metrics_atom) {
      const auto& st = self->state;
      component_metrics m;
      m.component = "corrections";
      m.samples = {
        {"sbm_drafts_corrected_total", {}, static_cast<double>(st.drafts)},
        {"sbm_corrections_total", {{"outcome", "applied"}}, static_cast<double>(st.applied)},
        {"sbm_corrections_total", {{"outcome", "proposed"}}, static_cast<double>(st.proposed)},
      };
      m.queues.push_back({"drafts.in-flight", "drafts.max-in-flight", st.in_flight,
                          st.settings.max_in_flight});
      return m;
    },
  };
}

}  // namespace

correction_actor spawn_correction_actor(caf::actor_system& system, correction_settings settings) {
  if (!settings.index) throw std::invalid_argument("corrections: no pattern index actor");
  if (settings.max_draft_bytes == 0 || settings.top_k == 0 || settings.segment_words == 0 ||
      settings.max_segments == 0 || settings.max_in_flight == 0 || settings.index_timeout.count() <= 0)
    throw std::invalid_argument("corrections: bounds and timeouts must be positive");
  return system.spawn<caf::detached>(correction_fn, std::move(settings));
}

}  // namespace sbm::patterns

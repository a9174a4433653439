// The correction front and its workers (correction.hpp): the front routes and bounds, each worker
// embeds a draft's segments, retrieves their patterns in one batched search and runs the engine.
#include <caf/actor_system.hpp>
#include <caf/exit_reason.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/system_messages.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <caf/typed_response_promise.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "actors/patterns/correction.hpp"
#include "messages/errors.hpp"
#include "runtime/logging/logging.hpp"
#include "runtime/text/utf8.hpp"

namespace sbm::patterns {

namespace {

caf::error deadline_passed(const char* when) {
  return make_error(errc::deadline_exceeded, std::string("the caller stopped waiting ") + when);
}

// --- worker -------------------------------------------------------------------------------

struct worker_state {
  static inline const char* name = "sbm.correction_worker";
  correction_settings settings;
};

// The workers' own interface: they take drafts from the front only (metrics are the front's).
using correction_worker =
  caf::typed_actor<caf::replies_to<correct_atom, correction_request>::with<corrected_draft>>;
using worker_ptr = correction_worker::stateful_pointer<worker_state>;

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

corrected_draft run_engine(const std::string& draft, const std::vector<pattern_record>& found,
                           const correction_config& config, std::uint32_t segments) {
  std::vector<correction_pattern> patterns;
  patterns.reserve(found.size());
  for (const auto& r : found)
    patterns.push_back({r.pattern_id, r.original_text, r.corrected_text, r.error_categories, r.status, r.weight});
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

caf::result<corrected_draft> on_work(worker_ptr self, correction_request& req) {
  const auto& s = self->state.settings;
  // It may have waited in this worker's mailbox behind other drafts.
  if (req.ctx.until.passed(self->clock().now())) return deadline_passed("before the correction started");
  if (!text::valid_utf8(req.draft_text))
    return make_error(errc::invalid_argument, "draft_text is not valid UTF-8");
  const auto ranges = retrieval_ranges(req.draft_text, s);
  if (ranges.empty()) return run_engine(req.draft_text, {}, s.engine, 0);
  pattern_batch_search batch;
  batch.embedder = std::string(s.embedder->name());
  batch.queries.reserve(ranges.size());
  for (const auto& [b, e] : ranges)
    batch.queries.push_back(s.embedder->embed(std::string_view(req.draft_text).substr(b, e - b)));
  batch.filter.speaker_id = req.speaker_id;
  batch.filter.min_weight = s.engine.weight_floor;
  batch.filter.scope = req.ctx.scope;  // never a pattern of a client the caller cannot reach
  batch.top_k = s.top_k;
  const auto segments = static_cast<std::uint32_t>(ranges.size());
  auto rp = self->make_response_promise<corrected_draft>();
  const auto timeout = answer_timeout(self->clock().now(), req.ctx.until, s.index_timeout);
  self->request(s.index, timeout, search_atom::value, std::move(batch))
      .then(
          [self, rp, req = std::move(req), segments](pattern_batch_hits& hits) mutable {
            if (req.ctx.until.passed(self->clock().now())) {
              rp.deliver(deadline_passed("while the patterns were retrieved"));
              return;
            }
            // The filter, checked again: another speaker's pattern never reaches this draft.
            hits.patterns.erase(std::remove_if(hits.patterns.begin(), hits.patterns.end(),
                                               [&req](const pattern_record& p) { return p.speaker_id != req.speaker_id; }),
                                hits.patterns.end());
            rp.deliver(run_engine(req.draft_text, hits.patterns, self->state.settings.engine, segments));
          },
          [rp](caf::error& err) mutable { rp.deliver(std::move(err)); });
  return rp;
}

correction_worker::behavior_type worker_fn(worker_ptr self, correction_settings settings) {
  self->state.settings = std::move(settings);
  return {[self](correct_atom, correction_request& req) { return on_work(self, req); }};
}

correction_worker spawn_worker(caf::local_actor* parent, const correction_settings& settings) {
  return parent->spawn<caf::detached + caf::linked>(worker_fn, settings);
}

// --- front --------------------------------------------------------------------------------

struct worker_slot {
  correction_worker handle;
  std::uint32_t busy = 0;  // drafts handed to it and not answered yet
};

struct front_state {
  static inline const char* name = "sbm.corrections";
  correction_settings settings;
  std::vector<worker_slot> workers;
  std::size_t next = 0;          // where the search for the least busy worker starts (ties rotate)
  std::uint32_t in_flight = 0;   // drafts in progress on all workers: the node-wide bound
  std::uint64_t drafts = 0;      // drafts corrected (answered with a result) since start
  std::uint64_t applied = 0;     // corrections made in those drafts
  std::uint64_t proposed = 0;    // corrections only suggested
  std::shared_ptr<spdlog::logger> log;
};

using front_ptr = correction_actor::stateful_pointer<front_state>;

worker_slot& least_busy(front_state& st) {
  std::size_t best = st.next % st.workers.size();
  for (std::size_t i = 1; i < st.workers.size(); ++i) {
    const std::size_t at = (st.next + i) % st.workers.size();
    if (st.workers[at].busy < st.workers[best].busy) best = at;
  }
  st.next = best + 1;
  return st.workers[best];
}

void finished(front_ptr self, const caf::actor_addr& worker) {
  auto& st = self->state;
  --st.in_flight;
  // A replaced worker's slot starts from zero; its late answers count for nothing.
  for (auto& w : st.workers)
    if (w.handle.address() == worker && w.busy > 0) --w.busy;
}

caf::result<corrected_draft> on_correct(front_ptr self, correction_request& req) {
  auto& st = self->state;
  const auto& s = st.settings;
  if (req.speaker_id.empty()) return make_error(errc::invalid_argument, "speaker_id is required");
  if (req.draft_text.size() > s.max_draft_bytes)
    return make_error(errc::invalid_argument, "draft_text is longer than " +
                                                  std::to_string(s.max_draft_bytes) + " bytes");
  const auto now = self->clock().now();
  if (req.ctx.until.passed(now)) return deadline_passed("before the correction started");
  if (st.in_flight >= s.max_in_flight)
    return make_error(errc::overloaded,
                      "too many drafts are being corrected on this node (" +
                          std::to_string(s.max_in_flight) + ")",
                      s.retry_after);
  auto& worker = least_busy(st);
  ++st.in_flight;
  ++worker.busy;
  const auto address = worker.handle.address();
  auto rp = self->make_response_promise<corrected_draft>();
  const auto timeout = answer_timeout(now, req.ctx.until, s.index_timeout);
  self->request(worker.handle, timeout, correct_atom::value, std::move(req))
      .then(
          [self, rp, address](corrected_draft& d) mutable {
            finished(self, address);
            auto& st = self->state;
            ++st.drafts;
            st.applied += d.applied;
            st.proposed += d.proposed;
            rp.deliver(std::move(d));
          },
          [self, rp, address](caf::error& err) mutable {
            finished(self, address);
            rp.deliver(std::move(err));
          });
  return rp;
}

correction_actor::behavior_type front_fn(front_ptr self, correction_settings settings) {
  auto& st = self->state;
  st.settings = std::move(settings);
  st.log = log::get("patterns");
  for (std::uint32_t i = 0; i < st.settings.workers; ++i)
    st.workers.push_back({spawn_worker(self, st.settings), 0});
  self->set_exit_handler([self](caf::exit_msg& m) {
    auto& st = self->state;
    for (auto& w : st.workers) {
      if (w.handle.address() != m.source) continue;
      // A worker holds nothing but drafts in progress, whose callers get an error: a new one
      // takes its place.
      if (m.reason && m.reason != caf::exit_reason::normal) {
        st.log->warn("a correction worker failed ({}); replacing it", self->system().render(m.reason));
        w = {spawn_worker(self, st.settings), 0};
      }
      return;
    }
    // From whoever supervises the front: stop, and the linked workers with it.
    if (!m.reason || m.reason == caf::exit_reason::normal) return;
    self->quit(m.reason);
  });
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
      settings.max_segments == 0 || settings.max_in_flight == 0 || settings.workers == 0 ||
      settings.index_timeout.count() <= 0)
    throw std::invalid_argument("corrections: bounds, workers and timeouts must be positive");
  if (!settings.embedder) settings.embedder = std::make_shared<hashed_ngram_embedder>();
  // Scheduled, not detached: the front only routes, so it needs no thread of its own.
  return system.spawn(front_fn, std::move(settings));
}

}  // namespace sbm::patterns

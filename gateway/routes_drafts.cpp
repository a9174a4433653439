// POST /v1/drafts/correct {speaker_id, draft_text}: a draft corrected from its speaker's error
// patterns. The gateway only reads and checks the body; retrieval and the engine's CPU run in the
// patterns family's correction workers (detached, behind the corrections front), so this route costs
// the gateway actor no more than any other.
#include <caf/event_based_actor.hpp>
#include <nlohmann/json.hpp>

#include "gateway/gateway_state.hpp"
#include "gateway/readers.hpp"

namespace sbm::gateway {

using nlohmann::json;

namespace {

json to_json(const corrected_draft& d) {
  json corrections = json::array();
  for (const auto& c : d.corrections)
    corrections.push_back({{"span", {{"start", c.start}, {"end", c.end}}},
                           {"from", c.from},
                           {"to", c.to},
                           {"pattern_id", c.pattern_id},
                           {"confidence", c.confidence},
                           {"applied", c.applied},
                           {"match", c.match}});
  return {{"original_text", d.original_text},
          {"corrected_text", d.corrected_text},
          {"corrections", std::move(corrections)},
          {"confidence_scores",
           {{"mean", d.mean_confidence},
            {"min_applied", d.min_applied},
            {"applied", d.applied},
            {"proposed", d.proposed}}},
          {"retrieval", {{"segments", d.segments}, {"patterns", d.patterns_retrieved}}}};
}

void correct(gateway_context& ctx, const http_request& req, correction_request work) {
  ctx.self->request(ctx.settings.corrections, ctx.hop(), correct_atom::value, std::move(work))
    .then([&ctx, req](corrected_draft& d) { ctx.reply(req, json_response(200, to_json(d))); },
          ctx.on_error(req, false));
}

}  // namespace

void handle_drafts(gateway_context& ctx, const http_request& req, const principal& who) {
  auto body = body_object(ctx, req, {"speaker_id", "draft_text"});
  if (!body) return;
  // The cap is the correction's own (drafts.max-bytes), below the body limit: past it, 413.
  if (auto it = body->find("draft_text"); it != body->end() && it->is_string() &&
                                          it->get_ref<const std::string&>().size() > ctx.settings.max_draft_bytes)
    return ctx.reply(req, problem(413, "draft-too-large", "Payload Too Large",
                                  "draft_text is longer than " + std::to_string(ctx.settings.max_draft_bytes) +
                                      " bytes (drafts.max-bytes)",
                                  "draft_text"));
  correction_request work;
  field_reader in{*body};
  in.identifier("speaker_id", work.speaker_id, true);
  // An empty draft is a draft (it comes back unchanged); field_reader refuses empty text.
  const auto it = body->find("draft_text");
  if (!(it != body->end() && it->is_string() && it->get_ref<const std::string&>().empty()))
    in.text("draft_text", work.draft_text, true, ctx.settings.max_draft_bytes, true);
  if (in.failed()) return ctx.reply(req, in.to_problem());
  if (!ctx.settings.corrections)
    return ctx.reply(req, problem(503, "unavailable", "Service Unavailable", "this node has no correction actor"));
  work.ctx = ctx.work_context(req, who);
  // An unregistered speaker is 404 here as on every speaker route, for every caller (correcting
  // against no patterns would answer 200 with the draft unchanged, which reads as "nothing to
  // fix"); for a scoped caller another client's speaker does not exist either. The correction
  // actor also forces its searches to the scope.
  ctx.self->request(ctx.settings.speakers, ctx.hop(), get_atom::value, work.speaker_id)
    .then(
      [&ctx, req, who, work](speaker_view& v) mutable {
        if (!ctx.hidden_by_scope(req, who, v.client_id, "speaker " + v.speaker_id + " is not registered"))
          correct(ctx, req, std::move(work));
      },
      ctx.on_error(req, false));
}

}  // namespace sbm::gateway

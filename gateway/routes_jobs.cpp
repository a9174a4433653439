// A speaker's ASR draft jobs from InstaNote over HTTP: GET /v1/speakers/{id}/jobs. The InstaNote
// family answers through its breaker with the Redis cache behind it; the answer names its source
// and, when InstaNote could not answer, that it is stale and since when.
#include <caf/event_based_actor.hpp>
#include <nlohmann/json.hpp>

#include "gateway/gateway_state.hpp"
#include "gateway/readers.hpp"
#include "gateway/timestamps.hpp"

namespace sbm::gateway {

using nlohmann::json;

json to_json(const verification_job& j) {
  return {{"job_id", j.job_id},
          {"speaker_id", j.speaker_id},
          {"client_id", j.client_id},
          {"original_draft", j.original_draft},
          {"created_at", format_timestamp_ms(j.created_at_ms)},
          {"job_metadata",
           {{"audio_quality", j.audio_quality},
            {"duration", j.duration_s ? json(*j.duration_s) : json(nullptr)},
            {"source_system", j.source_system}}},
          {"error_types", j.error_types},
          {"retrieval_timestamp", format_timestamp_ms(j.retrieved_at_ms)}};
}

namespace {

void pull_jobs(gateway_context& ctx, const http_request& req, const job_pull_request& pull) {
  const auto& id = pull.speaker_id;
  ctx.self->request(ctx.settings.jobs, ctx.hop(), pull_atom::value, pull)
    .then(
      [&ctx, req, id = id](job_pull& p) {
        json jobs = json::array();
        for (const auto& j : p.jobs)
          jobs.push_back(to_json(j));
        json body{{"speaker_id", id},
                  {"source", p.source},
                  {"stale", p.stale},
                  {"stale_since", p.stale ? json(format_timestamp_ms(p.stale_since_ms)) : json(nullptr)},
                  {"stale_reason", p.stale ? json(p.stale_reason) : json(nullptr)},
                  {"jobs", jobs}};
        auto r = json_response(200, body);
        if (p.stale)
          r.headers.emplace_back("Warning", "110 - \"Response is Stale\"");
        ctx.reply(req, std::move(r));
      },
      ctx.on_error(req));
}

}  // namespace

void handle_jobs(gateway_context& ctx, const http_request& req, const route_match& match,
                 const principal& who) {
  const auto& id = match.params[0];
  if (!path_id_ok(ctx, req, id, "speaker id", "speaker_id"))
    return;
  query_reader q{ctx, req, {"from", "to", "error_types", "max_jobs"}};
  job_pull_request pull;
  pull.speaker_id = id;
  pull.scope = who.scope;
  auto from = q.timestamp("from");
  auto to = q.timestamp("to");
  if (q.ok && !from)
    q.fail("from", "is required (an RFC 3339 timestamp or a date)");
  if (q.ok && !to)
    q.fail("to", "is required (an RFC 3339 timestamp or a date)");
  pull.from_ms = from.value_or(0);
  pull.to_ms = to.value_or(0);
  if (q.ok && pull.to_ms <= pull.from_ms)
    q.fail("to", "must be after 'from'");
  pull.error_types = q.choices("error_types", domain::error_categories);
  pull.max_jobs = q.limit("max_jobs", std::min<std::uint32_t>(10, ctx.settings.max_jobs), ctx.settings.max_jobs);
  if (!q.ok)
    return;
  if (!ctx.settings.jobs)
    return ctx.reply(req, problem(503, "unavailable", "Service Unavailable",
                                  "this node has no InstaNote jobs actor"));
  if (who.scope.limited) {
    // A speaker of another client does not exist for this caller: learn its client first.
    ctx.self->request(ctx.settings.speakers, ctx.hop(), get_atom::value, id)
      .then(
        [&ctx, req, who, pull](speaker_view& v) {
          if (!ctx.hidden_by_scope(req, who, v.client_id, "speaker " + v.speaker_id + " is not registered"))
            pull_jobs(ctx, req, pull);
        },
        ctx.on_error(req));
    return;
  }
  pull_jobs(ctx, req, pull);
}

}  // namespace sbm::gateway

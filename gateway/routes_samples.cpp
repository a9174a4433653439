// A speaker's quality trend over HTTP: GET /v1/speakers/{id}/quality-samples?from=&to=&limit=,
// read by the speakers family (scoped in its SQL: another client's speaker is 404 like an unknown
// one) and drawn by the QA console.
#include <caf/event_based_actor.hpp>
#include <nlohmann/json.hpp>

#include "gateway/gateway_state.hpp"
#include "gateway/readers.hpp"
#include "gateway/timestamps.hpp"

namespace sbm::gateway {

using nlohmann::json;

namespace {

constexpr std::uint32_t default_points = 100;
constexpr std::uint32_t max_points = 1000;

json samples_json(const quality_samples& s) {
  json items = json::array();
  for (const auto& p : s.items)
    items.push_back({{"job_id", p.job_id},
                     {"errors_per_100_words", p.errors_per_100_words},
                     {"actor", p.actor},
                     {"at", format_timestamp_ms(p.at_ms)}});
  return {{"speaker_id", s.speaker_id},
          {"items", items},
          {"truncated", s.truncated},
          {"window_capacity", s.window_capacity},
          {"bands",
           {{"no_touch_max", s.no_touch_max},
            {"low_touch_max", s.low_touch_max},
            {"medium_touch_max", s.medium_touch_max}}}};
}

}  // namespace

void handle_quality_samples(gateway_context& ctx, const http_request& req, const route_match& match,
                            const principal& who) {
  if (!path_id_ok(ctx, req, match.params[0], "speaker id", "speaker_id"))
    return;
  query_reader q{ctx, req, {"from", "to", "limit"}};
  samples_query query;
  query.speaker_id = match.params[0];
  const auto from = q.timestamp("from");
  const auto to = q.timestamp("to");
  query.limit = q.limit("limit", default_points, max_points);
  if (q.ok && from && to && *from >= *to)
    q.fail("to", "must be after from");
  if (!q.ok)
    return;
  query.has_from = from.has_value();
  query.from_ms = from.value_or(0);
  query.has_to = to.has_value();
  query.to_ms = to.value_or(0);
  query.scope = who.scope;
  ctx.self->request(ctx.settings.speakers, ctx.hop(), samples_atom::value, std::move(query))
    .then([&ctx, req](quality_samples& s) { ctx.reply(req, json_response(200, samples_json(s))); },
          ctx.on_error(req));
}

}  // namespace sbm::gateway

// A speaker's ASR draft jobs from InstaNote over HTTP: GET /v1/speakers/{id}/jobs. The InstaNote
// family answers through its breaker with the Redis cache behind it; the answer names its source
// and, when InstaNote could not answer, that it is stale and since when.
#include <caf/event_based_actor.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>

#include "gateway/gateway_state.hpp"
#include "gateway/readers.hpp"
#include "gateway/timestamps.hpp"

namespace sbm::gateway {

using nlohmann::json;

namespace {

// Error types are report categories: short snake_case words. Their list belongs to the reports
// family; a well-formed unknown one matches no job.
constexpr std::size_t max_error_types = 16;
constexpr std::size_t max_error_type_bytes = 64;

bool snake_word(const std::string& s) {
  if (s.empty() || s.size() > max_error_type_bytes)
    return false;
  for (char c : s)
    if (!((c >= 'a' && c <= 'z') || c == '_'))
      return false;
  return true;
}

std::vector<std::string> read_error_types(query_reader& q) {
  std::vector<std::string> out;
  auto text = q.get("error_types");
  if (text.empty())
    return out;
  std::size_t start = 0;
  while (q.ok) {
    auto comma = text.find(',', start);
    auto item = text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    if (!snake_word(item))
      q.fail("error_types", "must be a comma-separated list of error categories (e.g. drug_name,dosage)");
    else if (std::find(out.begin(), out.end(), item) == out.end())
      out.push_back(item);
    if (out.size() > max_error_types)
      q.fail("error_types", "may name at most " + std::to_string(max_error_types) + " categories");
    if (comma == std::string::npos)
      break;
    start = comma + 1;
  }
  return out;
}

}  // namespace

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
  pull.error_types = read_error_types(q);
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

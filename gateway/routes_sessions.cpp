// Verification sessions over HTTP: POST /v1/verification-sessions, GET .../{id},
// PUT .../{id}/marks, POST .../{id}/submit. The verification family does the work (one session
// actor per session); this file reads and checks bodies and renders sessions as JSON.
#include <caf/event_based_actor.hpp>
#include <nlohmann/json.hpp>

#include <limits>

#include "gateway/audit.hpp"
#include "gateway/gateway_state.hpp"
#include "gateway/readers.hpp"
#include "gateway/timestamps.hpp"
#include "runtime/domain/vocabulary.hpp"

namespace sbm::gateway {

using nlohmann::json;

namespace {

constexpr std::size_t max_error_types = 16;
constexpr std::size_t max_marks = 10000;

json ms_or_null(std::int64_t ms) { return ms > 0 ? json(format_timestamp_ms(ms)) : json(nullptr); }

json to_json(const session_view& v) {
  std::map<std::int64_t, std::string> mark_of;
  json marks = json::array();
  for (const auto& m : v.marks) {
    mark_of[m.correction_id] = m.verdict;
    marks.push_back({{"correction_id", m.correction_id}, {"verdict", m.verdict}});
  }
  json jobs = json::array();
  for (const auto& j : v.jobs) {
    json corrections = json::array();
    for (std::size_t i = 0; i < j.draft.corrections.size(); ++i) {
      const auto& c = j.draft.corrections[i];
      const auto id = j.correction_ids[i];
      auto m = mark_of.find(id);
      corrections.push_back({{"correction_id", id},
                             {"span", {{"start", c.start}, {"end", c.end}}},
                             {"from", c.from},
                             {"to", c.to},
                             {"pattern_id", c.pattern_id},
                             {"confidence", c.confidence},
                             {"applied", c.applied},
                             {"match", c.match},
                             {"mark", m == mark_of.end() ? json(nullptr) : json(m->second)}});
    }
    jobs.push_back({{"job_id", j.job.job_id},
                    {"created_at", format_timestamp_ms(j.job.created_at_ms)},
                    {"job_metadata",
                     {{"audio_quality", j.job.audio_quality},
                      {"duration", j.job.duration_s ? json(*j.job.duration_s) : json(nullptr)},
                      {"source_system", j.job.source_system}}},
                    {"error_types", j.job.error_types},
                    {"retrieval_timestamp", format_timestamp_ms(j.job.retrieved_at_ms)},
                    {"original_draft", j.job.original_draft},
                    {"corrected_text", j.draft.corrected_text},
                    {"corrections", std::move(corrections)},
                    {"confidence_scores",
                     {{"mean", j.draft.mean_confidence},
                      {"min_applied", j.draft.min_applied},
                      {"applied", j.draft.applied},
                      {"proposed", j.draft.proposed}}},
                    {"words", j.words},
                    {"residual_errors", j.has_residual ? json(j.residual_errors) : json(nullptr)}});
  }
  json outcome = nullptr;
  if (v.status == "submitted") {
    json weights = json::array();
    for (const auto& w : v.outcome.weights)
      weights.push_back({{"pattern_id", w.report_id}, {"status", w.status}, {"weight", w.weight}});
    outcome = {{"applied", v.effects_done},
               {"weights", std::move(weights)},
               {"jobs_sampled", v.outcome.jobs_sampled},
               {"bucket_before", v.outcome.bucket_before},
               {"bucket_after", v.outcome.bucket_after}};
  }
  return {{"id", v.id},
          {"speaker_id", v.speaker_id},
          {"client_id", v.client_id},
          {"owner", v.owner},
          {"status", v.status},
          {"from", format_timestamp_ms(v.from_ms)},
          {"to", format_timestamp_ms(v.to_ms)},
          {"error_types", v.error_types},
          {"max_jobs", v.max_jobs},
          {"source", v.source},
          {"stale", v.stale},
          {"stale_since", v.stale ? ms_or_null(v.stale_since_ms) : json(nullptr)},
          {"stale_reason", v.stale ? json(v.stale_reason) : json(nullptr)},
          {"created_at", ms_or_null(v.created_at_ms)},
          {"expires_at", v.status == "open" ? ms_or_null(v.expires_at_ms) : json(nullptr)},
          {"submitted_at", ms_or_null(v.submitted_at_ms)},
          {"submitted_by", v.submitted_by.empty() ? json(nullptr) : json(v.submitted_by)},
          {"jobs", std::move(jobs)},
          {"drafts_purged_at", ms_or_null(v.drafts_purged_at_ms)},
          {"marks", std::move(marks)},
          {"outcome", std::move(outcome)}};
}

http_response session_response(std::uint16_t status, const session_view& v) {
  auto r = json_response(status, to_json(v));
  if (v.stale)
    r.headers.emplace_back("Warning", "110 - \"Response is Stale\"");
  return r;
}

void create(gateway_context& ctx, const http_request& req, const principal& who) {
  auto body = body_object(ctx, req, {"speaker_id", "from", "to", "error_types", "max_jobs"});
  if (!body) return;
  session_start work;
  field_reader in{*body};
  std::optional<std::int64_t> from, to;
  in.identifier("speaker_id", work.speaker_id, true);
  in.timestamp("from", from, true);
  in.timestamp("to", to, true);
  in.strings("error_types", work.error_types, false, max_error_types);
  for (const auto& e : work.error_types)
    if (!domain::is_one_of(domain::error_categories, e))
      in.fail("error_types", "must hold only error categories: " + domain::choices_text(domain::error_categories));
  if (in.failed()) return ctx.reply(req, in.to_problem());
  work.from_ms = *from;
  work.to_ms = *to;
  if (work.to_ms <= work.from_ms)
    return ctx.reply(req, problem(400, "invalid-field", "Bad Request", "'to' must be after 'from'", "to"));
  std::int64_t max_jobs = std::min<std::int64_t>(10, ctx.settings.max_jobs);
  in.integer("max_jobs", max_jobs, false, 1, ctx.settings.max_jobs);
  if (in.failed()) return ctx.reply(req, in.to_problem());
  work.max_jobs = static_cast<std::uint32_t>(max_jobs);
  work.owner = who.describe();
  work.ctx = ctx.work_context(req, who);
  ctx.self->request(ctx.settings.sessions, ctx.hop(), open_atom::value, std::move(work))
    .then([&ctx, req](session_view& v) { ctx.reply(req, session_response(201, v)); }, ctx.on_error(req));
}

void put_marks(gateway_context& ctx, const http_request& req, const principal& who, std::int64_t id) {
  auto body = body_object(ctx, req, {"marks", "residual_errors"});
  if (!body) return;
  session_marks work;
  work.id = id;
  auto bad = [&](const std::string& field, const std::string& why) {
    ctx.reply(req, problem(400, "invalid-field", "Bad Request", why, field));
  };
  // Each item is an object of its own, read by the same field reader under its own name
  // ("marks[3].verdict"), so its problems name the item. False when the list itself was refused.
  auto items = [&](const char* key, const char* shape, const json*& out) {
    out = nullptr;
    auto it = body->find(key);
    if (it == body->end() || it->is_null()) return true;
    if (!it->is_array() || it->size() > max_marks) {
      bad(key, std::string("'") + key + "' must be a list of at most " + std::to_string(max_marks) + " " + shape);
      return false;
    }
    out = &*it;
    return true;
  };
  const json* marks = nullptr;
  if (!items("marks", "{correction_id, verdict}", marks)) return;
  for (std::size_t i = 0; marks && i < marks->size(); ++i) {
    const auto at = "marks[" + std::to_string(i) + "]";
    if (!(*marks)[i].is_object()) return bad(at, at + " must be {correction_id, verdict}");
    field_reader item{(*marks)[i], at + "."};
    std::int64_t correction = 0;
    std::string verdict;
    item.only({"correction_id", "verdict"});
    item.integer("correction_id", correction, true, 1, std::numeric_limits<std::int64_t>::max());
    item.choice("verdict", verdict, true, domain::verdicts);
    if (item.failed()) return ctx.reply(req, item.to_problem());
    work.marks.push_back({correction, verdict});
  }
  const json* residuals = nullptr;
  if (!items("residual_errors", "{job_id, count}", residuals)) return;
  for (std::size_t i = 0; residuals && i < residuals->size(); ++i) {
    const auto at = "residual_errors[" + std::to_string(i) + "]";
    if (!(*residuals)[i].is_object()) return bad(at, at + " must be {job_id, count}");
    field_reader item{(*residuals)[i], at + "."};
    std::string job;
    std::int64_t count = 0;
    item.only({"job_id", "count"});
    item.identifier("job_id", job, true);
    item.integer("count", count, true, 0, 100000);
    if (item.failed()) return ctx.reply(req, item.to_problem());
    work.residuals.push_back({job, static_cast<std::uint32_t>(count)});
  }
  work.ctx = ctx.work_context(req, who);
  ctx.self->request(ctx.settings.sessions, ctx.hop(), marks_atom::value, std::move(work))
    .then(
      [&ctx, req](marks_receipt& r) {
        if (r.outcome != marks_receipt::accepted)
          return ctx.reply(req, problem(422, "not-in-session", "Unprocessable Entity", r.reason, r.field));
        ctx.reply(req, session_response(200, r.session));
      },
      ctx.on_error(req));
}

void submit(gateway_context& ctx, const http_request& req, const principal& who, std::int64_t id) {
  if (!req.body.empty() && !body_object(ctx, req, {}))
    return;
  auto work_ctx = ctx.work_context(req, who);
  // Who may submit is the owner or a qa_lead; the owner never changes, so reading it first is safe.
  ctx.self->request(ctx.settings.sessions, ctx.hop(), get_atom::value, session_ref{work_ctx, id})
    .then(
      [&ctx, req, who, id, work_ctx](session_view& v) {
        if (v.owner != who.describe() && who.role != "qa_lead") {
          const std::string why = "only the session's owner or a qa_lead may submit it";
          audit_refusal(ctx, req, &who, 403, why);
          return ctx.reply(req, problem(403, "forbidden", "Forbidden", why));
        }
        session_submit work;
        work.ctx = work_ctx;
        work.id = id;
        work.actor = who.describe();
        work.by = origin_of(who, req);
        ctx.self->request(ctx.settings.sessions, ctx.hop(), submit_atom::value, std::move(work))
          .then([&ctx, req](session_view& done) { ctx.reply(req, session_response(200, done)); },
                ctx.on_error(req));
      },
      ctx.on_error(req));
}

}  // namespace

void handle_sessions(gateway_context& ctx, route r, const http_request& req, const route_match& match,
                     const principal& who) {
  if (!ctx.settings.sessions)
    return ctx.reply(req, problem(503, "unavailable", "Service Unavailable", "this node has no verification sessions"));
  if (r == route::sessions_create) return create(ctx, req, who);
  const auto number = path_number(ctx, req, match.params[0], "session id", "id");
  if (!number) return;
  const std::int64_t id = *number;
  switch (r) {
    case route::session_get: {
      ctx.self->request(ctx.settings.sessions, ctx.hop(), get_atom::value, session_ref{ctx.work_context(req, who), id})
        .then([&ctx, req](session_view& v) { ctx.reply(req, session_response(200, v)); }, ctx.on_error(req));
      return;
    }
    case route::session_marks_put: return put_marks(ctx, req, who, id);
    case route::session_submit: return submit(ctx, req, who, id);
    default: return ctx.reply(req, problem(404, "not-found", "Not Found", "no such route"));
  }
}

}  // namespace sbm::gateway

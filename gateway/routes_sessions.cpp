// Verification sessions over HTTP: POST /v1/verification-sessions, GET .../{id},
// PUT .../{id}/marks, POST .../{id}/submit. The verification family does the work (one session
// actor per session); this file reads and checks bodies and renders sessions as JSON.
#include <caf/event_based_actor.hpp>
#include <nlohmann/json.hpp>

#include <cerrno>
#include <cstdlib>

#include "gateway/audit.hpp"
#include "gateway/gateway_state.hpp"
#include "gateway/timestamps.hpp"

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
          {"marks", std::move(marks)},
          {"outcome", std::move(outcome)}};
}

http_response session_response(std::uint16_t status, const session_view& v) {
  auto r = json_response(status, to_json(v));
  if (v.stale)
    r.headers.emplace_back("Warning", "110 - \"Response is Stale\"");
  return r;
}

bool unknown_fields(gateway_context& ctx, const http_request& req, const json& body,
                    std::initializer_list<const char*> known) {
  for (const auto& item : body.items()) {
    bool ok = false;
    for (auto k : known)
      ok = ok || item.key() == k;
    if (!ok) {
      ctx.reply(req, problem(400, "unknown-field", "Bad Request", "unknown field '" + item.key() + "'", item.key()));
      return true;
    }
  }
  return false;
}

bool session_id(gateway_context& ctx, const http_request& req, const std::string& text, std::int64_t& out) {
  errno = 0;
  char* end = nullptr;
  const long long v = std::strtoll(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || errno == ERANGE || v <= 0 || text[0] == '+' || text[0] == ' ') {
    ctx.reply(req, problem(400, "invalid-field", "Bad Request", "session id must be a positive integer", "id"));
    return false;
  }
  out = v;
  return true;
}

bool read_time(const json& body, const char* key, std::int64_t& out, std::string& why) {
  auto it = body.find(key);
  if (it == body.end() || !it->is_string()) {
    why = std::string("'") + key + "' is required (an ISO-8601 date or timestamp)";
    return false;
  }
  auto ms = parse_timestamp_ms(it->get_ref<const std::string&>());
  if (!ms) {
    why = std::string("'") + key + "' must be an ISO-8601 date or timestamp";
    return false;
  }
  out = *ms;
  return true;
}

void create(gateway_context& ctx, const http_request& req, const principal& who) {
  std::string error;
  auto body = parse_object(req.body, ctx.settings.max_json_depth, error);
  if (!body) return ctx.reply(req, problem(400, "malformed-body", "Bad Request", error));
  if (unknown_fields(ctx, req, *body, {"speaker_id", "from", "to", "error_types", "max_jobs"})) return;
  session_start work;
  field_reader in{*body};
  in.identifier("speaker_id", work.speaker_id, true);
  if (in.failed()) return ctx.reply(req, in.to_problem());
  for (const char* key : {"from", "to"}) {
    auto& slot = key[0] == 'f' ? work.from_ms : work.to_ms;
    if (!read_time(*body, key, slot, error))
      return ctx.reply(req, problem(400, "invalid-field", "Bad Request", error, key));
  }
  if (work.to_ms <= work.from_ms)
    return ctx.reply(req, problem(400, "invalid-field", "Bad Request", "'to' must be after 'from'", "to"));
  if (auto it = body->find("error_types"); it != body->end() && !it->is_null()) {
    bool ok = it->is_array() && it->size() <= max_error_types;
    if (ok)
      for (const auto& e : *it) {
        ok = ok && e.is_string() && !e.get_ref<const std::string&>().empty() &&
             e.get_ref<const std::string&>().size() <= 64 &&
             e.get_ref<const std::string&>().find_first_not_of("abcdefghijklmnopqrstuvwxyz_") == std::string::npos;
        if (ok) work.error_types.push_back(e.get<std::string>());
      }
    if (!ok)
      return ctx.reply(req, problem(400, "invalid-field", "Bad Request",
                                    "'error_types' must be a list of at most 16 error categories (e.g. drug_name)",
                                    "error_types"));
  }
  double max_jobs = 10;
  in.number("max_jobs", max_jobs, false, 1, ctx.settings.max_jobs);
  if (in.failed()) return ctx.reply(req, in.to_problem());
  if (max_jobs != static_cast<double>(static_cast<std::uint32_t>(max_jobs)))
    return ctx.reply(req, problem(400, "invalid-field", "Bad Request", "'max_jobs' must be an integer", "max_jobs"));
  work.max_jobs = static_cast<std::uint32_t>(max_jobs);
  work.owner = who.describe();
  work.ctx = ctx.work_context(req, who);
  ctx.self->request(ctx.settings.sessions, ctx.hop(), open_atom::value, std::move(work))
    .then([&ctx, req](session_view& v) { ctx.reply(req, session_response(201, v)); }, ctx.on_error(req));
}

void put_marks(gateway_context& ctx, const http_request& req, const principal& who, std::int64_t id) {
  std::string error;
  auto body = parse_object(req.body, ctx.settings.max_json_depth, error);
  if (!body) return ctx.reply(req, problem(400, "malformed-body", "Bad Request", error));
  if (unknown_fields(ctx, req, *body, {"marks", "residual_errors"})) return;
  session_marks work;
  work.id = id;
  auto bad = [&](const std::string& field, const std::string& why) {
    ctx.reply(req, problem(400, "invalid-field", "Bad Request", why, field));
  };
  if (auto it = body->find("marks"); it != body->end()) {
    if (!it->is_array() || it->size() > max_marks)
      return bad("marks", "'marks' must be a list of at most 10000 {correction_id, verdict}");
    for (std::size_t i = 0; i < it->size(); ++i) {
      const auto& m = (*it)[i];
      const auto at = "marks[" + std::to_string(i) + "]";
      if (!m.is_object() || m.size() != 2 || !m.contains("correction_id") || !m.contains("verdict"))
        return bad(at, at + " must be {correction_id, verdict}");
      if (!m["correction_id"].is_number_integer() || m["correction_id"].get<std::int64_t>() <= 0)
        return bad(at + ".correction_id", at + ".correction_id must be a positive integer");
      if (!m["verdict"].is_string() ||
          (m["verdict"] != "rectified" && m["verdict"] != "not_rectified"))
        return bad(at + ".verdict", at + ".verdict must be rectified or not_rectified");
      work.marks.push_back({m["correction_id"].get<std::int64_t>(), m["verdict"].get<std::string>()});
    }
  }
  if (auto it = body->find("residual_errors"); it != body->end()) {
    if (!it->is_array() || it->size() > max_marks)
      return bad("residual_errors", "'residual_errors' must be a list of {job_id, count}");
    for (std::size_t i = 0; i < it->size(); ++i) {
      const auto& r = (*it)[i];
      const auto at = "residual_errors[" + std::to_string(i) + "]";
      if (!r.is_object() || r.size() != 2 || !r.contains("job_id") || !r.contains("count"))
        return bad(at, at + " must be {job_id, count}");
      if (!r["job_id"].is_string() || id_problem(r["job_id"].get_ref<const std::string&>()))
        return bad(at + ".job_id", at + ".job_id must be a job id");
      if (!r["count"].is_number_integer() || r["count"].get<std::int64_t>() < 0 ||
          r["count"].get<std::int64_t>() > 100000)
        return bad(at + ".count", at + ".count must be an integer 0..100000");
      work.residuals.push_back({r["job_id"].get<std::string>(), static_cast<std::uint32_t>(r["count"].get<std::int64_t>())});
    }
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
  if (!req.body.empty()) {
    std::string error;
    auto body = parse_object(req.body, ctx.settings.max_json_depth, error);
    if (!body) return ctx.reply(req, problem(400, "malformed-body", "Bad Request", error));
    if (unknown_fields(ctx, req, *body, {})) return;
  }
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
  std::int64_t id = 0;
  if (!session_id(ctx, req, match.params[0], id)) return;
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

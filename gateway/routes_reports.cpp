// Error reports and pattern search over HTTP. The gateway checks JSON shapes and types (naming the
// field); what a valid report is (enumerations, lengths, the speaker, the job) is decided by the
// reports actor, which answers a refusal with the field, so both kinds of mistakes name it.
// Filters reach the actors as typed values, never as text spliced into a query.
#include <caf/event_based_actor.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdint>
#include <cmath>

#include "gateway/audit.hpp"
#include "gateway/gateway_state.hpp"
#include "gateway/readers.hpp"
#include "gateway/timestamps.hpp"
#include "runtime/domain/vocabulary.hpp"

namespace sbm::gateway {

using nlohmann::json;

namespace {

constexpr std::uint32_t default_page = 50;
constexpr std::uint32_t max_page = 500;
constexpr std::uint32_t default_top_k = 10;
constexpr std::uint32_t max_top_k = 100;
constexpr std::size_t max_query_text_bytes = 10000;

json timestamp_or_null(std::int64_t ms) {
  return ms == 0 ? json(nullptr) : json(format_timestamp_ms(ms));
}

json text_or_null(const std::string& s) { return s.empty() ? json(nullptr) : json(s); }

json to_json(const error_report& r, bool with_log) {
  const auto& f = r.fields;
  json saga{{"step", r.saga_step},
            {"attempts", r.saga_attempts},
            {"last_error", text_or_null(r.saga_last_error)}};
  if (with_log) {
    json log = json::array();
    for (const auto& e : r.saga_log)
      log.push_back({{"at", timestamp_or_null(e.at_ms)}, {"step", e.step}, {"note", e.note}});
    saga["log"] = std::move(log);
  }
  return {{"id", r.id},
          {"status", r.status},
          {"speaker_id", f.speaker_id},
          {"client_id", f.client_id},
          {"job_id", f.job_id},
          {"original_text", f.original_text},
          {"corrected_text", f.corrected_text},
          {"error_categories", f.error_categories},
          {"bucket_type", r.bucket_type},
          {"audio_quality", f.audio_quality},
          {"speaker_clarity", f.speaker_clarity},
          {"background_noise", f.background_noise},
          {"number_of_speakers", f.number_of_speakers},
          {"overlapping_speech", f.overlapping_speech},
          {"requires_specialized_knowledge", f.requires_specialized_knowledge},
          {"additional_notes", text_or_null(f.additional_notes)},
          {"context_notes", text_or_null(f.context_notes)},
          {"context_text", text_or_null(f.context_text)},
          {"weight", r.weight},
          {"filed_by", f.actor},
          {"created_at", timestamp_or_null(r.created_at_ms)},
          {"updated_at", timestamp_or_null(r.updated_at_ms)},
          {"saga", std::move(saga)}};
}

// Seed 4.2's SimilarError.
json to_json(const pattern_hit& h) {
  const auto& p = h.pattern;
  return {{"id", p.pattern_id},
          {"original_text", p.original_text},
          {"corrected_text", p.corrected_text},
          {"similarity_score", h.similarity},
          {"metadata",
           {{"speaker_id", p.speaker_id},
            {"client_id", p.client_id},
            {"bucket_type", p.bucket_type},
            {"error_categories", p.error_categories},
            {"audio_quality", p.audio_quality},
            {"speaker_clarity", p.speaker_clarity},
            {"background_noise", p.background_noise},
            {"number_of_speakers", p.number_of_speakers},
            {"overlapping_speech", p.overlapping_speech},
            {"requires_specialized_knowledge", p.requires_specialized_knowledge},
            {"context_text", text_or_null(p.context_text)},
            {"status", p.status},
            {"weight", p.weight},
            {"created_at", timestamp_or_null(p.created_at_ms)}}}};
}

bool has_notes(const error_report& r) {
  return !r.fields.additional_notes.empty() || !r.fields.context_notes.empty();
}

// Decrypted notes go out only once their reading is on record (gateway/audit.hpp).
void reply_with_notes(gateway_context& ctx, const http_request& req, const principal& who,
                      std::vector<notes_shown> shown, http_response response) {
  audit_notes_read(ctx, req, who, std::move(shown),
                   [&ctx, req, response = std::move(response)](bool recorded) mutable {
                     if (recorded)
                       return ctx.reply(req, std::move(response));
                     auto refused = problem(503, "unavailable", "Service Unavailable",
                                            "the reading of these notes could not be put on record");
                     refused.headers.emplace_back("Retry-After", "5");
                     ctx.reply(req, std::move(refused));
                   });
}

void reply_report(gateway_context& ctx, const http_request& req, const principal& who,
                  const error_report& r, std::uint16_t status) {
  auto response = json_response(status, to_json(r, true));
  if (status == 201) {
    // The filer's own notes, just sent: nothing is read that was not already theirs.
    response.headers.emplace_back("Location", "/v1/error-reports/" + std::to_string(r.id));
    return ctx.reply(req, std::move(response));
  }
  std::vector<notes_shown> shown;
  if (has_notes(r))
    shown.push_back({r.fields.client_id, {r.id}});
  reply_with_notes(ctx, req, who, std::move(shown), std::move(response));
}

void file_report(gateway_context& ctx, const http_request& req, const principal& who) {
  auto body = body_object(ctx, req,
                          {"speaker_id", "client_id", "job_id", "original_text", "corrected_text",
                           "error_categories", "audio_quality", "speaker_clarity", "background_noise",
                           "number_of_speakers", "overlapping_speech",
                           "requires_specialized_knowledge", "additional_notes", "context_notes",
                           "context_text"});
  if (!body) return;
  report_submission sub;
  field_reader in{*body};
  // Types here; values (enumerations, lengths, blank texts) in the reports actor, which names the
  // field the same way.
  in.string("speaker_id", sub.speaker_id, true);
  in.string("client_id", sub.client_id, true);
  in.string("job_id", sub.job_id, true);
  in.string("original_text", sub.original_text, true);
  in.string("corrected_text", sub.corrected_text, true);
  in.strings("error_categories", sub.error_categories, true, domain::error_categories.size());
  in.string("audio_quality", sub.audio_quality, true);
  in.string("speaker_clarity", sub.speaker_clarity, true);
  in.string("background_noise", sub.background_noise, true);
  std::int64_t speakers = 0;
  in.integer("number_of_speakers", speakers, true, domain::min_speakers, domain::max_speakers);
  in.boolean("overlapping_speech", sub.overlapping_speech, true);
  in.boolean("requires_specialized_knowledge", sub.requires_specialized_knowledge, true);
  in.string("additional_notes", sub.additional_notes, false);
  in.string("context_notes", sub.context_notes, false);
  in.string("context_text", sub.context_text, false);
  if (in.failed()) return ctx.reply(req, in.to_problem());
  sub.number_of_speakers = static_cast<std::int32_t>(speakers);
  sub.actor = who.describe();
  sub.ctx = ctx.work_context(req, who);
  ctx.self->request(ctx.settings.reports, ctx.hop(), file_atom::value, std::move(sub))
    .then(
      [&ctx, req, who](report_receipt& receipt) {
        switch (receipt.outcome) {
          case report_receipt::accepted: return reply_report(ctx, req, who, receipt.report, 201);
          case report_receipt::unprocessable:
            return ctx.reply(req, problem(422, "unprocessable", "Unprocessable Entity",
                                          receipt.reason, receipt.field));
          default:
            return ctx.reply(req, problem(400, "invalid-field", "Bad Request", receipt.reason,
                                          receipt.field));
        }
      },
      ctx.on_error(req));
}

void list_reports(gateway_context& ctx, const http_request& req, const principal& who) {
  query_reader q{ctx, req, {"speaker_id", "status", "category", "from", "to", "limit", "cursor"}};
  report_query query;
  query.speaker_id = q.identifier("speaker_id");
  query.status = q.choice("status", domain::report_statuses);
  query.category = q.choice("category", domain::error_categories);
  query.from_ms = q.timestamp("from").value_or(0);
  query.to_ms = q.timestamp("to").value_or(0);
  query.limit = q.limit("limit", default_page, max_page);
  query.before_id = q.cursor("cursor");
  query.scope = who.scope;
  if (!q.ok) return;
  ctx.self->request(ctx.settings.reports, ctx.hop(), list_atom::value, query)
    .then(
      [&ctx, req, who](report_page& page) {
        json items = json::array();
        std::vector<notes_shown> shown;  // one entry per client whose notes the page shows
        for (const auto& r : page.items) {
          items.push_back(to_json(r, false));
          if (!has_notes(r)) continue;
          auto it = std::find_if(shown.begin(), shown.end(),
                                 [&](const notes_shown& s) { return s.client_id == r.fields.client_id; });
          if (it == shown.end())
            shown.push_back({r.fields.client_id, {r.id}});
          else
            it->report_ids.push_back(r.id);
        }
        reply_with_notes(ctx, req, who, std::move(shown),
                         json_response(200, {{"items", std::move(items)},
                                             {"next_cursor", page.next_before_id == 0
                                                               ? json(nullptr)
                                                               : json(std::to_string(page.next_before_id))}}));
      },
      ctx.on_error(req));
}

void set_status(gateway_context& ctx, const http_request& req, std::int64_t id, const principal& who) {
  auto body = body_object(ctx, req, {"status"});
  if (!body) return;
  report_status_change change;
  change.id = id;
  field_reader in{*body};
  in.choice("status", change.status, true, domain::verdicts);
  if (in.failed()) return ctx.reply(req, in.to_problem());
  change.actor = who.describe();
  change.ctx = ctx.work_context(req, who);
  ctx.self->request(ctx.settings.reports, ctx.hop(), update_atom::value, std::move(change))
    .then([&ctx, req, who](error_report& r) { reply_report(ctx, req, who, r, 200); }, ctx.on_error(req));
}

void search_patterns(gateway_context& ctx, const http_request& req, const principal& who) {
  auto body = body_object(ctx, req, {"query_text", "filters", "top_k"});
  if (!body) return;
  pattern_search search;
  field_reader in{*body};
  in.string("query_text", search.query_text, true, max_query_text_bytes);
  if (!in.failed() && search.query_text.find_first_not_of(" \t\r\n") == std::string::npos)
    in.fail("query_text", "must not be blank");
  std::int64_t top_k = default_top_k;
  in.integer("top_k", top_k, false, 1, max_top_k);
  search.top_k = static_cast<std::uint32_t>(top_k);
  const json* filters = in.find("filters", false);
  if (filters && !filters->is_object()) in.fail("filters", "must be an object");
  if (in.failed()) return ctx.reply(req, in.to_problem());
  if (filters) {
    auto& f = search.filter;
    field_reader fr{*filters, "filters."};
    fr.only({"speaker_id", "client_id", "bucket_type", "audio_quality", "status", "error_category",
             "requires_specialized_knowledge", "from", "to", "min_weight"});
    fr.identifier("speaker_id", f.speaker_id, false);
    fr.identifier("client_id", f.client_id, false);
    fr.choice("bucket_type", f.bucket_type, false, domain::bucket_names);
    fr.choice("audio_quality", f.audio_quality, false, domain::audio_qualities);
    fr.choice("status", f.status, false, domain::report_statuses);
    fr.choice("error_category", f.error_category, false, domain::error_categories);
    std::optional<bool> specialized;
    fr.optional_boolean("requires_specialized_knowledge", specialized);
    if (specialized) f.requires_specialized_knowledge = *specialized;
    // The index reads 0 as "no bound", so a bound is after the epoch.
    std::optional<std::int64_t> from, to;
    fr.timestamp("from", from, false);
    if (from && *from <= 0) fr.fail("from", "must be after 1970-01-01T00:00:00Z");
    fr.timestamp("to", to, false);
    if (to && *to <= 0) fr.fail("to", "must be after 1970-01-01T00:00:00Z");
    fr.number("min_weight", f.min_weight, false, 0, 1);
    if (!fr.failed() && from && to && *from > *to) fr.fail("to", "must not be before filters.from");
    f.from_ms = from.value_or(0);
    f.to_ms = to.value_or(0);
    if (fr.failed()) return ctx.reply(req, fr.to_problem());
  }
  // Forced, whatever filters.client_id says: a scoped caller's search sees only its clients.
  search.filter.scope = who.scope;
  if (!ctx.settings.patterns)
    return ctx.reply(req, problem(503, "unavailable", "Service Unavailable",
                                  "this node has no pattern index"));
  ctx.self->request(ctx.settings.patterns, ctx.hop(), search_atom::value, std::move(search))
    .then(
      [&ctx, req](pattern_hits& hits) {
        json results = json::array();
        for (const auto& h : hits.hits) results.push_back(to_json(h));
        json out{{"results", std::move(results)}, {"plan", hits.plan}};
        // In a cluster: members that did not answer in time, whose patterns these results lack.
        if (!hits.missing.empty()) {
          out["partial"] = true;
          out["missing_members"] = hits.missing;
        }
        ctx.reply(req, json_response(200, std::move(out)));
      },
      ctx.on_error(req, false));
}

}  // namespace

void handle_reports(gateway_context& ctx, route r, const http_request& req, const route_match& match,
                    const principal& who) {
  std::int64_t id = 0;
  if (!match.params.empty()) {
    auto parsed = path_number(ctx, req, match.params[0], "the report id", "id");
    if (!parsed) return;
    id = *parsed;
  }
  if (r != route::patterns_search && !ctx.settings.reports)
    return ctx.reply(req, problem(503, "unavailable", "Service Unavailable",
                                  "this node has no reports actor"));
  switch (r) {
    case route::reports_create: return file_report(ctx, req, who);
    case route::reports_list: return list_reports(ctx, req, who);
    case route::report_get:
      ctx.self->request(ctx.settings.reports, ctx.hop(), get_atom::value, id)
        .then(
          [&ctx, req, who, id](error_report& rep) {
            if (!ctx.hidden_by_scope(req, who, rep.fields.client_id,
                                     "no error report " + std::to_string(id)))
              reply_report(ctx, req, who, rep, 200);
          },
          ctx.on_error(req));
      return;
    case route::report_update: return set_status(ctx, req, id, who);
    case route::patterns_search: return search_patterns(ctx, req, who);
    default: ctx.reply(req, problem(404, "not-found", "Not Found", "no resource at this path"));
  }
}

}  // namespace sbm::gateway

// Error reports and pattern search over HTTP. The gateway checks JSON shapes and types (naming the
// field); what a valid report is (enumerations, lengths, the speaker, the job) is decided by the
// reports actor, which answers a refusal with the field, so both kinds of mistakes name it.
// Filters reach the actors as typed values, never as text spliced into a query.
#include <caf/event_based_actor.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdint>
#include <cmath>
#include <initializer_list>
#include <limits>

#include "actors/reports/core/report_rules.hpp"
#include "gateway/audit.hpp"
#include "gateway/gateway_state.hpp"
#include "gateway/timestamps.hpp"

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

void bad_field(const gateway_context& ctx, const http_request& req, const std::string& field,
               const std::string& why) {
  ctx.reply(req, problem(400, "invalid-field", "Bad Request", "field '" + field + "' " + why, field));
}

// Reads a JSON object whose keys must all be known: a misspelt field must not be dropped silently
// (a report filed without the metadata QA thought it gave). The first problem is answered as a
// 400 naming the field; `ok` then stays false and later reads do nothing.
class object_reader {
 public:
  object_reader(const gateway_context& ctx, const http_request& req, const json& object,
                std::string prefix, std::initializer_list<const char*> allowed)
    : ctx_(ctx), req_(req), object_(object), prefix_(std::move(prefix)) {
    for (auto it = object_.begin(); it != object_.end(); ++it) {
      bool known = false;
      for (auto a : allowed) known = known || it.key() == a;
      if (!known) {
        fail(it.key(), "is not a known field");
        return;
      }
    }
  }

  bool ok() const { return ok_; }

  void fail(const std::string& key, const std::string& why) {
    if (!ok_) return;
    ok_ = false;
    bad_field(ctx_, req_, prefix_ + key, why);
  }

  const json* find(const char* key, bool required) {
    if (!ok_) return nullptr;
    auto it = object_.find(key);
    if (it == object_.end() || it->is_null()) {
      if (required) fail(key, "is required");
      return nullptr;
    }
    return &*it;
  }

  void text(const char* key, std::string& out, bool required, std::size_t max_bytes = SIZE_MAX) {
    auto* v = find(key, required);
    if (!v) return;
    if (!v->is_string()) return fail(key, "must be a string");
    const auto& s = v->get_ref<const std::string&>();
    if (s.size() > max_bytes) return fail(key, "must be at most " + std::to_string(max_bytes) + " bytes");
    out = s;
  }

  void identifier(const char* key, std::string& out, bool required) {
    text(key, out, required);
    if (ok_ && !out.empty())
      if (auto why = reports::id_problem(out)) fail(key, *why);
  }

  void boolean(const char* key, bool& out, bool required) {
    auto* v = find(key, required);
    if (!v) return;
    if (!v->is_boolean()) return fail(key, "must be true or false");
    out = v->get<bool>();
  }

  void optional_boolean(const char* key, caf::optional<bool>& out) {
    bool value = false;
    if (!find(key, false)) return;
    boolean(key, value, true);
    if (ok_) out = value;
  }

  // JSON numbers with no fractional part (3 and 3.0 alike), within [min, max].
  void integer(const char* key, std::int64_t& out, bool required, std::int64_t min, std::int64_t max) {
    auto* v = find(key, required);
    if (!v) return;
    const auto range = "must be an integer from " + std::to_string(min) + " to " + std::to_string(max);
    if (v->is_number_integer()) {
      // Unsigned values above int64 are out of range whatever they are.
      if (v->is_number_unsigned() && v->get<std::uint64_t>() > static_cast<std::uint64_t>(max))
        return fail(key, range);
      const auto x = v->get<std::int64_t>();
      if (x < min || x > max) return fail(key, range);
      out = x;
      return;
    }
    if (v->is_number_float()) {
      const double d = v->get<double>();
      if (!std::isfinite(d) || std::floor(d) != d || d < static_cast<double>(min) ||
          d > static_cast<double>(max))
        return fail(key, range);
      out = static_cast<std::int64_t>(d);
      return;
    }
    fail(key, range);
  }

  void number(const char* key, double& out, double min, double max) {
    auto* v = find(key, false);
    if (!v) return;
    const double d = v->is_number() ? v->get<double>() : std::nan("");
    if (!std::isfinite(d) || d < min || d > max)
      return fail(key, "must be a number from " + json(min).dump() + " to " + json(max).dump());
    out = d;
  }

  void strings(const char* key, std::vector<std::string>& out, bool required, std::size_t max_items) {
    auto* v = find(key, required);
    if (!v) return;
    if (!v->is_array()) return fail(key, "must be an array of strings");
    if (v->size() > max_items)
      return fail(key, "must have at most " + std::to_string(max_items) + " entries");
    for (const auto& item : *v) {
      if (!item.is_string()) return fail(key, "must be an array of strings");
      out.push_back(item.get<std::string>());
    }
  }

 private:
  const gateway_context& ctx_;
  const http_request& req_;
  const json& object_;
  std::string prefix_;
  bool ok_ = true;
};

std::optional<json> body_object(const gateway_context& ctx, const http_request& req) {
  std::string error;
  auto value = parse_object(req.body, ctx.settings.max_json_depth, error);
  if (!value) ctx.reply(req, problem(400, "malformed-body", "Bad Request", error));
  return value;
}

std::optional<std::int64_t> parse_id(std::string_view text) {
  std::int64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size() || value <= 0) return std::nullopt;
  return value;
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
  auto body = body_object(ctx, req);
  if (!body) return;
  report_submission sub;
  object_reader in{ctx, req, *body, "",
                   {"speaker_id", "client_id", "job_id", "original_text", "corrected_text",
                    "error_categories", "audio_quality", "speaker_clarity", "background_noise",
                    "number_of_speakers", "overlapping_speech", "requires_specialized_knowledge",
                    "additional_notes", "context_notes", "context_text"}};
  // Types here; values (enumerations, lengths, blank texts) in the reports actor, which names the
  // field the same way.
  in.text("speaker_id", sub.speaker_id, true);
  in.text("client_id", sub.client_id, true);
  in.text("job_id", sub.job_id, true);
  in.text("original_text", sub.original_text, true);
  in.text("corrected_text", sub.corrected_text, true);
  in.strings("error_categories", sub.error_categories, true, reports::error_categories.size());
  in.text("audio_quality", sub.audio_quality, true);
  in.text("speaker_clarity", sub.speaker_clarity, true);
  in.text("background_noise", sub.background_noise, true);
  std::int64_t speakers = 0;
  in.integer("number_of_speakers", speakers, true, reports::min_speakers, reports::max_speakers);
  in.boolean("overlapping_speech", sub.overlapping_speech, true);
  in.boolean("requires_specialized_knowledge", sub.requires_specialized_knowledge, true);
  in.text("additional_notes", sub.additional_notes, false);
  in.text("context_notes", sub.context_notes, false);
  in.text("context_text", sub.context_text, false);
  if (!in.ok()) return;
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

// Reads only the named query parameters; any other name is an error (typos must not be ignored).
struct query_reader {
  const gateway_context& ctx;
  const http_request& req;
  std::vector<std::pair<std::string, std::string>> pairs;
  bool ok = true;

  query_reader(const gateway_context& c, const http_request& r, std::initializer_list<const char*> allowed)
    : ctx(c), req(r) {
    ok = read_query(ctx, req, pairs);
    if (!ok) return;
    for (const auto& p : pairs) {
      bool known = false;
      for (auto a : allowed) known = known || p.first == a;
      if (!known) {
        fail(p.first, "is not a known query parameter");
        return;
      }
    }
  }

  void fail(const std::string& name, const std::string& why) {
    if (!ok) return;
    ok = false;
    ctx.reply(req, problem(400, "invalid-query", "Bad Request", "'" + name + "' " + why, name));
  }

  std::string get(const char* name) const {
    for (const auto& p : pairs)
      if (p.first == name) return p.second;
    return {};
  }

  template <std::size_t N>
  std::string choice(const char* name, const std::array<std::string_view, N>& allowed) {
    auto v = get(name);
    if (!v.empty() && !reports::is_one_of(allowed, v)) fail(name, "must be " + reports::choices_text(allowed));
    return v;
  }

  std::int64_t timestamp(const char* name) {
    auto v = get(name);
    if (v.empty()) return 0;
    auto ms = parse_timestamp_ms(v);
    if (!ms) {
      fail(name, "must be an ISO-8601 date or timestamp (2026-11-24 or 2026-11-24T10:15:00Z)");
      return 0;
    }
    return *ms;
  }
};

void list_reports(gateway_context& ctx, const http_request& req, const principal& who) {
  query_reader q{ctx, req, {"speaker_id", "status", "category", "from", "to", "limit", "cursor"}};
  if (!q.ok) return;
  report_query query;
  query.speaker_id = q.get("speaker_id");
  if (!query.speaker_id.empty())
    if (auto why = reports::id_problem(query.speaker_id)) q.fail("speaker_id", *why);
  query.status = q.choice("status", reports::report_statuses);
  query.category = q.choice("category", reports::error_categories);
  query.from_ms = q.timestamp("from");
  query.to_ms = q.timestamp("to");
  query.limit = default_page;
  if (auto text = q.get("limit"); !text.empty()) {
    auto n = parse_id(text);
    if (!n || *n > max_page) q.fail("limit", "must be an integer from 1 to " + std::to_string(max_page));
    else query.limit = static_cast<std::uint32_t>(*n);
  }
  if (auto text = q.get("cursor"); !text.empty()) {
    auto n = parse_id(text);
    if (!n) q.fail("cursor", "is not a cursor this API returned");
    else query.before_id = *n;
  }
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
  auto body = body_object(ctx, req);
  if (!body) return;
  report_status_change change;
  change.id = id;
  object_reader in{ctx, req, *body, "", {"status"}};
  in.text("status", change.status, true);
  if (in.ok() && change.status != "rectified" && change.status != "not_rectified")
    in.fail("status", "must be rectified or not_rectified");
  if (!in.ok()) return;
  change.actor = who.describe();
  change.ctx = ctx.work_context(req, who);
  ctx.self->request(ctx.settings.reports, ctx.hop(), update_atom::value, std::move(change))
    .then([&ctx, req, who](error_report& r) { reply_report(ctx, req, who, r, 200); }, ctx.on_error(req));
}

void search_patterns(gateway_context& ctx, const http_request& req, const principal& who) {
  auto body = body_object(ctx, req);
  if (!body) return;
  pattern_search search;
  object_reader in{ctx, req, *body, "", {"query_text", "filters", "top_k"}};
  in.text("query_text", search.query_text, true, max_query_text_bytes);
  if (in.ok() && search.query_text.find_first_not_of(" \t\r\n") == std::string::npos)
    in.fail("query_text", "must not be blank");
  if (in.ok() && !valid_utf8(search.query_text)) in.fail("query_text", "must be valid UTF-8");
  std::int64_t top_k = default_top_k;
  in.integer("top_k", top_k, false, 1, max_top_k);
  search.top_k = static_cast<std::uint32_t>(top_k);
  const json* filters = in.find("filters", false);
  if (!in.ok()) return;
  if (filters) {
    if (!filters->is_object()) return in.fail("filters", "must be an object");
    auto& f = search.filter;
    object_reader fr{ctx, req, *filters, "filters.",
                     {"speaker_id", "client_id", "bucket_type", "audio_quality", "status",
                      "error_category", "requires_specialized_knowledge", "from_ms", "to_ms",
                      "min_weight"}};
    fr.identifier("speaker_id", f.speaker_id, false);
    fr.identifier("client_id", f.client_id, false);
    fr.text("bucket_type", f.bucket_type, false);
    if (fr.ok() && !f.bucket_type.empty() && !reports::is_one_of(reports::bucket_types, f.bucket_type))
      fr.fail("bucket_type", "must be " + reports::choices_text(reports::bucket_types));
    fr.text("audio_quality", f.audio_quality, false);
    if (fr.ok() && !f.audio_quality.empty() && !reports::is_one_of(reports::audio_qualities, f.audio_quality))
      fr.fail("audio_quality", "must be " + reports::choices_text(reports::audio_qualities));
    fr.text("status", f.status, false);
    if (fr.ok() && !f.status.empty() && !reports::is_one_of(reports::report_statuses, f.status))
      fr.fail("status", "must be " + reports::choices_text(reports::report_statuses));
    fr.text("error_category", f.error_category, false);
    if (fr.ok() && !f.error_category.empty() &&
        !reports::is_one_of(reports::error_categories, f.error_category))
      fr.fail("error_category", "must be " + reports::choices_text(reports::error_categories));
    fr.optional_boolean("requires_specialized_knowledge", f.requires_specialized_knowledge);
    constexpr auto max_ms = std::numeric_limits<std::int64_t>::max() / 2;
    fr.integer("from_ms", f.from_ms, false, 0, max_ms);
    fr.integer("to_ms", f.to_ms, false, 0, max_ms);
    fr.number("min_weight", f.min_weight, 0, 1);
    if (!fr.ok()) return;
    if (f.from_ms != 0 && f.to_ms != 0 && f.from_ms > f.to_ms)
      return fr.fail("to_ms", "must not be before filters.from_ms");
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
        ctx.reply(req, json_response(200, {{"results", std::move(results)}, {"plan", hits.plan}}));
      },
      ctx.on_error(req, false));
}

}  // namespace

void handle_reports(gateway_context& ctx, route r, const http_request& req, const route_match& match,
                    const principal& who) {
  std::int64_t id = 0;
  if (!match.params.empty()) {
    auto parsed = parse_id(match.params[0]);
    if (!parsed)
      return ctx.reply(req, problem(400, "invalid-field", "Bad Request",
                                    "the report id must be a positive integer", "id"));
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

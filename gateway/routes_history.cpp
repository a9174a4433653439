// GET /v1/speakers/{id}/history?from=&to=&max_jobs=&limit=: seed 8.2's speaker history, which
// degrades instead of failing whole. Its sources are asked at once, each bounded by the request's
// own deadline: the speaker's state and quality window (the shard), its bucket changes (the
// shard, from PostgreSQL), its reports (the reports family) and its InstaNote jobs (the jobs
// actor, which itself falls back to the Redis cache). The answer carries what came and names each
// source as ok, stale (jobs from the cache because InstaNote did not answer) or missing, so the
// seed's "full -> local only -> cache" is read off `sources` rather than guessed from the shape.
#include <caf/event_based_actor.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <memory>
#include <optional>

#include "gateway/gateway_state.hpp"
#include "gateway/readers.hpp"
#include "gateway/reroute.hpp"
#include "gateway/timestamps.hpp"
#include "messages/errors.hpp"

namespace sbm::gateway {

using nlohmann::json;

namespace {

constexpr std::int64_t day_ms = 24 * 3600 * 1000;
constexpr std::int64_t default_days = 30;

// Why a source is missing, in the problem vocabulary the API already uses (no internals beyond
// what the source's own route would say).
json missing(const caf::error& err) {
  if (err.category() == caf::atom("system") &&
      (err == caf::sec::request_timeout || err == caf::sec::request_receiver_down))
    return {{"status", "missing"}, {"reason", "timed-out"},
            {"detail", "no answer before the request's deadline"}};
  const char* reason = "internal";
  switch (code_of(err)) {
    case errc::unavailable:
    case errc::moving: reason = "unavailable"; break;
    case errc::overloaded: reason = "overloaded"; break;
    case errc::deadline_exceeded: reason = "deadline-exceeded"; break;
    default: break;
  }
  json out{{"status", "missing"}, {"reason", reason}, {"detail", detail_of(err)}};
  if (auto after = retry_after_of(err))
    out["retry_after_s"] = std::max<std::int64_t>(1, (after->count() + 999) / 1000);
  return out;
}

json absent(const char* what) {
  return {{"status", "missing"}, {"reason", "unavailable"},
          {"detail", std::string{"this node has no "} + what}};
}

// Notes are left out: reading them is audited per report, and the history is a summary.
json to_json_summary(const error_report& r) {
  return {{"id", r.id},
          {"job_id", r.fields.job_id},
          {"status", r.status},
          {"error_categories", r.fields.error_categories},
          {"original_text", r.fields.original_text},
          {"corrected_text", r.fields.corrected_text},
          {"bucket_type", r.bucket_type},
          {"weight", r.weight},
          {"created_at", format_timestamp_ms(r.created_at_ms)}};
}

struct overview {
  gateway_context* ctx = nullptr;
  http_request req;
  principal who;
  std::string speaker_id;
  std::int64_t from_ms = 0, to_ms = 0;
  std::size_t waiting = 4;
  bool answered = false;

  json speaker = nullptr, changes = nullptr, reports = nullptr, jobs = nullptr;
  json sources = json::object();
  bool speaker_known = false;  // the shard answered: the speaker exists and its client is known
  std::optional<job_pull> pulled;

  void reply(http_response r) {
    answered = true;
    ctx->reply(req, std::move(r));
  }

  // One source is in (or gave up). The answer goes once every source is in, or at once when the
  // speaker turns out not to exist for this caller.
  void arrived() {
    if (answered || --waiting > 0)
      return;
    // A scoped caller may see this speaker only once its client is known to be theirs; the other
    // families filter by scope themselves, but the shard's bucket history does not carry a client.
    if (who.scope.limited && !speaker_known)
      return reply(with_retry_after(problem(503, "unavailable", "Service Unavailable",
                                            "the speaker's client could not be checked (its state did not "
                                            "answer); nothing of it is shown"),
                                    "5"));
    json missing_list = json::array(), stale_list = json::array();
    for (const auto& [name, s] : sources.items()) {
      if (s["status"] == "missing") missing_list.push_back(name);
      if (s["status"] == "stale") stale_list.push_back(name);
    }
    if (missing_list.size() == sources.size())
      return reply(with_retry_after(problem(503, "unavailable", "Service Unavailable",
                                            "no source of the speaker's history answered"),
                                    "5"));
    json body{{"speaker_id", speaker_id},
              {"from", format_timestamp_ms(from_ms)},
              {"to", format_timestamp_ms(to_ms)},
              {"complete", missing_list.empty() && stale_list.empty()},
              {"missing", missing_list},
              {"stale", stale_list},
              {"sources", sources},
              {"speaker", speaker},
              {"bucket_changes", changes},
              {"reports", reports},
              {"jobs", jobs}};
    auto r = json_response(200, body);
    if (!stale_list.empty())
      r.headers.emplace_back("Warning", "110 - \"Response is Stale\"");
    reply(std::move(r));
  }

  static http_response with_retry_after(http_response r, const char* seconds) {
    r.headers.emplace_back("Retry-After", seconds);
    return r;
  }
};

}  // namespace

void handle_speaker_overview(gateway_context& ctx, const http_request& req, const route_match& match,
                             const principal& who) {
  const auto& id = match.params[0];
  if (!path_id_ok(ctx, req, id, "speaker id", "speaker_id"))
    return;
  query_reader q{ctx, req, {"from", "to", "max_jobs", "limit"}};
  const auto from = q.timestamp("from");
  const auto to = q.timestamp("to");
  const bool has_from = from.has_value(), has_to = to.has_value();
  std::int64_t from_ms = from.value_or(0), to_ms = to.value_or(0);
  const auto max_jobs =
    q.limit("max_jobs", std::min<std::uint32_t>(10, ctx.settings.max_jobs), ctx.settings.max_jobs);
  const auto limit = q.limit("limit", 20, 100);
  if (!q.ok)
    return;
  // Whole days by default, so that the same question asked again within a day is the same InstaNote
  // pull and the Redis cache can answer it.
  if (!has_to) {
    const auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
    to_ms = (now_ms / day_ms + 1) * day_ms;
  }
  if (!has_from)
    from_ms = to_ms - default_days * day_ms;
  if (to_ms <= from_ms)
    return q.fail("to", "must be after 'from'");

  auto o = std::make_shared<overview>();
  o->ctx = &ctx;
  o->req = req;
  o->who = who;
  o->speaker_id = id;
  o->from_ms = from_ms;
  o->to_ms = to_ms;
  // Every source gets what is left of the request's own deadline (the one the work carries), so
  // the answer with whatever came goes out before the HTTP server gives up on the request.
  const auto until = ctx.work_context(req, who).until;
  const caf::duration budget{std::max(std::chrono::milliseconds{1},
                                      until.left(ctx.self->clock().now(), ctx.settings.request_timeout))};

  // The speaker's two sources are resent through a move like every speaker read (reroute.hpp).
  const reroute_plan plan{req.id, false, true, until, 0, true};
  request_rerouted_or<speaker_view>(
      ctx, plan, ctx.settings.speakers,
      [o](speaker_view& v) {
        if (o->answered) return;
        if (!o->who.scope.admits(v.client_id))
          return o->reply(problem(404, "not-found", "Not Found", "speaker " + v.speaker_id + " is not registered"));
        o->speaker_known = true;
        o->speaker = to_json(v);
        o->sources["speaker"] = {{"status", "ok"}};
        o->arrived();
      },
      [o](caf::error& err) {
        if (o->answered) return;
        if (code_of(err) == errc::not_found)
          return o->reply(from_error(err));
        o->sources["speaker"] = missing(err);
        o->arrived();
      },
      get_atom::value, id);

  request_rerouted_or<speaker_history>(
      ctx, plan, ctx.settings.speakers,
      [o](speaker_history& h) {
        if (o->answered) return;
        json entries = json::array();
        for (const auto& e : h.entries)
          if (e.at_ms >= o->from_ms && e.at_ms < o->to_ms)
            entries.push_back(to_json(e));
        o->changes = std::move(entries);
        o->sources["bucket_changes"] = {{"status", "ok"}};
        o->arrived();
      },
      [o](caf::error& err) {
        if (o->answered) return;
        if (code_of(err) == errc::not_found)
          return o->reply(from_error(err));
        o->sources["bucket_changes"] = missing(err);
        o->arrived();
      },
      history_atom::value, id);

  if (ctx.settings.reports) {
    report_query rq;
    rq.speaker_id = id;
    rq.from_ms = from_ms;
    rq.to_ms = to_ms - 1;  // the reports family's `to` is inclusive; the history's is not
    rq.limit = limit;
    rq.scope = who.scope;
    ctx.self->request(ctx.settings.reports, budget, list_atom::value, rq)
      .then(
        [o](report_page& page) {
          if (o->answered) return;
          json items = json::array();
          for (const auto& r : page.items)
            items.push_back(to_json_summary(r));
          o->reports = std::move(items);
          o->sources["reports"] = {{"status", "ok"}, {"more", page.next_before_id != 0}};
          o->arrived();
        },
        [o](caf::error& err) {
          if (o->answered) return;
          o->sources["reports"] = missing(err);
          o->arrived();
        });
  } else {
    o->sources["reports"] = absent("reports actor");
    --o->waiting;
  }

  if (ctx.settings.jobs) {
    job_pull_request pull;
    pull.speaker_id = id;
    pull.from_ms = from_ms;
    pull.to_ms = to_ms;
    pull.max_jobs = max_jobs;
    pull.scope = who.scope;
    ctx.self->request(ctx.settings.jobs, budget, pull_atom::value, pull)
      .then(
        [o](job_pull& p) {
          if (o->answered) return;
          json items = json::array();
          for (const auto& j : p.jobs)
            items.push_back(to_json(j));
          o->jobs = std::move(items);
          json s{{"status", p.stale ? "stale" : "ok"}, {"origin", p.source}};
          if (p.stale) {
            s["stale_since"] = format_timestamp_ms(p.stale_since_ms);
            s["reason"] = p.stale_reason;
          }
          o->sources["jobs"] = std::move(s);
          o->arrived();
        },
        [o](caf::error& err) {
          if (o->answered) return;
          o->sources["jobs"] = missing(err);
          o->arrived();
        });
  } else {
    o->sources["jobs"] = absent("InstaNote jobs actor");
    --o->waiting;
  }
}

}  // namespace sbm::gateway

// Speakers and the verification schedule over HTTP: validation of what clients send, then one
// message to the shard or the scheduler, then JSON.
#include <caf/event_based_actor.hpp>
#include <nlohmann/json.hpp>

#include "gateway/audit.hpp"
#include "gateway/direct_reads.hpp"
#include "gateway/gateway_state.hpp"
#include "gateway/readers.hpp"
#include "gateway/reroute.hpp"
#include "gateway/timestamps.hpp"
#include "runtime/domain/vocabulary.hpp"

namespace sbm::gateway {

using nlohmann::json;

namespace {

constexpr std::size_t max_name_bytes = 256;
constexpr std::size_t max_reason_bytes = 1024;
constexpr std::size_t max_text_bytes = 256 * 1024;

json timestamp(std::int64_t ms) {
  return ms <= 0 ? json(nullptr) : json(format_timestamp_ms(ms));
}

}  // namespace

json to_json(const speaker_view& v) {
  json pin = nullptr;
  if (v.pinned)
    pin = {{"bucket", v.bucket}, {"reason", v.pin_reason}, {"pinned_by", v.pinned_by},
           {"pinned_at", timestamp(v.pinned_at_ms)}};
  return {{"speaker_id", v.speaker_id},
          {"client_id", v.client_id},
          {"display_name", v.display_name},
          {"bucket", v.bucket},
          {"pin", pin},
          {"window",
           {{"size", v.window_size},
            {"capacity", v.window_capacity},
            {"mean_errors_per_100_words", v.window_mean}}},
          {"counts", {{"samples_total", v.samples_total}, {"bucket_changes", v.bucket_changes}}},
          {"created_at", timestamp(v.created_at_ms)},
          {"updated_at", timestamp(v.updated_at_ms)}};
}

json to_json(const history_entry& e) {
  return {{"id", e.id},
          {"kind", e.kind},
          {"previous_bucket", e.previous_bucket.empty() ? json(nullptr) : json(e.previous_bucket)},
          {"new_bucket", e.new_bucket},
          {"reason", e.reason},
          {"actor", e.actor},
          {"at", timestamp(e.at_ms)}};
}

std::string render_view(const speaker_view& view) {
  return json_response(200, to_json(view)).body;
}

namespace {

json schedule_json(const scheduled_verification& s) {
  return {{"id", s.id},
          {"speaker_id", s.speaker_id},
          {"priority", s.priority},
          {"reason", s.reason},
          {"status", s.status},
          {"source_event_id", s.source_event_id == 0 ? json(nullptr) : json(s.source_event_id)},
          {"source_key", s.source_key.empty() ? json(nullptr) : json(s.source_key)},
          {"client_id", s.client_id.empty() ? json(nullptr) : json(s.client_id)},
          {"created_at", timestamp(s.created_at_ms)}};
}

void reply_view(gateway_context& ctx, std::uint64_t request, speaker_view& v, std::uint16_t status) {
  http_response r;
  r.status = status;
  r.body = ctx.speaker_bodies.body_of(v, render_view);
  if (status == 201)
    r.headers.emplace_back("Location", "/v1/speakers/" + v.speaker_id);
  ctx.reply(request, std::move(r));
}

// A speaker write is resent through a move only with its key (reroute.hpp).
reroute_plan write_plan(const http_request& req, const request_context& work) {
  return {req.id, true, work.keyed(), work.until};
}

// A read is always safe to send again.
reroute_plan read_plan(gateway_context& ctx, std::uint64_t request) {
  return {request, false, true, ctx.request_deadline()};
}

void create_speaker(gateway_context& ctx, const http_request& req, const principal& who) {
  auto body = body_object(ctx, req, {"speaker_id", "client_id", "display_name"});
  if (!body)
    return;
  speaker_registration reg;
  field_reader f{*body};
  f.identifier("speaker_id", reg.speaker_id, true);
  f.identifier("client_id", reg.client_id, true);
  f.text("display_name", reg.display_name, false, max_name_bytes);
  if (f.failed())
    return ctx.reply(req, f.to_problem());
  reg.actor = who.describe();
  reg.ctx = ctx.work_context(req, who);
  const auto plan = write_plan(req, reg.ctx);  // before reg moves into the message
  request_rerouted<speaker_view>(
    ctx, plan, ctx.settings.speakers,
    [&ctx, id = req.id](speaker_view& v) { reply_view(ctx, id, v, 201); }, register_atom::value,
    std::move(reg));
}

void list_speakers(gateway_context& ctx, const http_request& req, const principal& who) {
  query_reader q{ctx, req, {"bucket", "client_id", "limit", "cursor"}};
  speaker_query query;
  query.bucket = q.choice("bucket", domain::bucket_names);
  query.client_id = q.identifier("client_id");
  query.cursor = q.identifier("cursor");
  query.limit = q.limit("limit", 50, 500);
  query.scope = who.scope;
  if (!q.ok)
    return;
  ctx.self->request(ctx.settings.speakers, ctx.hop(), list_atom::value, query)
    .then(
      [&ctx, req](speaker_page& page) {
        json items = json::array();
        for (const auto& v : page.items)
          items.push_back(to_json(v));
        ctx.reply(req, json_response(200, {{"items", items},
                                           {"next_cursor", page.next_cursor.empty()
                                                             ? json(nullptr)
                                                             : json(page.next_cursor)}}));
      },
      ctx.on_error(req));
}

void pin_bucket(gateway_context& ctx, const http_request& req, const std::string& id,
                const principal& who) {
  auto body = body_object(ctx, req, {"bucket", "reason"});
  if (!body)
    return;
  bucket_pin pin;
  pin.speaker_id = id;
  field_reader f{*body};
  f.choice("bucket", pin.bucket, true, domain::bucket_names);
  f.text("reason", pin.reason, true, max_reason_bytes, true);
  if (f.failed())
    return ctx.reply(req, f.to_problem());
  pin.actor = who.describe();
  pin.by = origin_of(who, req);  // audited in the pin's own transaction
  pin.ctx = ctx.work_context(req, who);
  const auto plan = write_plan(req, pin.ctx);  // before pin moves into the message
  request_rerouted<speaker_view>(
    ctx, plan, ctx.settings.speakers,
    [&ctx, id = req.id](speaker_view& v) { reply_view(ctx, id, v, 200); }, pin_atom::value,
    std::move(pin));
}

void unpin_bucket(gateway_context& ctx, const http_request& req, const std::string& id,
                  const principal& who) {
  query_reader q{ctx, req, {"reason"}};
  bucket_unpin unpin{id, q.text("reason", max_reason_bytes), who.describe()};
  if (!q.ok)
    return;
  unpin.by = origin_of(who, req);  // audited in the unpin's own transaction
  unpin.ctx = ctx.work_context(req, who);
  const auto plan = write_plan(req, unpin.ctx);  // before unpin moves into the message
  request_rerouted<speaker_view>(
    ctx, plan, ctx.settings.speakers,
    [&ctx, id = req.id](speaker_view& v) { reply_view(ctx, id, v, 200); }, unpin_atom::value,
    std::move(unpin));
}

void add_sample(gateway_context& ctx, const http_request& req, const std::string& id,
                const principal& who) {
  auto body = body_object(ctx, req, {"job_id", "errors_per_100_words", "delivered_text", "verified_text"});
  if (!body)
    return;
  quality_sample sample;
  sample.speaker_id = id;
  field_reader f{*body};
  f.identifier("job_id", sample.job_id, true);
  bool has_rate = body->contains("errors_per_100_words");
  bool has_texts = body->contains("delivered_text") || body->contains("verified_text");
  if (has_rate == has_texts)
    return ctx.reply(req, problem(400, "invalid-field", "Bad Request",
                                  "give either 'errors_per_100_words' or both 'delivered_text' and "
                                  "'verified_text'",
                                  has_rate ? "errors_per_100_words" : "delivered_text"));
  if (has_rate) {
    f.number("errors_per_100_words", sample.errors_per_100_words, true, 0, 1000);
  } else {
    // Measured by the speakers family off this actor (its cost grows with the texts).
    f.text("delivered_text", sample.delivered_text, false, max_text_bytes, true);
    f.text("verified_text", sample.verified_text, true, max_text_bytes, true);
    sample.from_texts = true;
  }
  if (f.failed())
    return ctx.reply(req, f.to_problem());
  sample.actor = who.describe();
  sample.ctx = ctx.work_context(req, who);
  const auto plan = write_plan(req, sample.ctx);  // before sample moves into the message
  request_rerouted<speaker_view>(
    ctx, plan, ctx.settings.speakers,
    [&ctx, id = req.id](speaker_view& v) { reply_view(ctx, id, v, 201); }, sample_atom::value,
    std::move(sample));
}

void list_schedule(gateway_context& ctx, const http_request& req, const principal& who) {
  query_reader q{ctx, req, {"priority", "speaker_id", "limit"}};
  schedule_query query;
  query.priority = q.choice("priority", domain::schedule_priorities);
  query.speaker_id = q.identifier("speaker_id");
  query.limit = q.limit("limit", 100, 1000);
  query.scope = who.scope;
  if (!q.ok)
    return;
  ctx.self->request(ctx.settings.schedule, ctx.hop(), list_atom::value, query)
    .then(
      [&ctx, req](verification_schedule& s) {
        json items = json::array();
        for (const auto& e : s.items)
          items.push_back(schedule_json(e));
        ctx.reply(req, json_response(200, {{"items", items}}));
      },
      ctx.on_error(req));
}

// A long poll: with nothing after the cursor it waits up to `wait` seconds, within the request's
// own deadline, for the next change this node hears of.
void list_bucket_changes(gateway_context& ctx, const http_request& req, const principal& who) {
  if (!ctx.settings.events)
    return ctx.reply(req, problem(503, "unavailable", "Service Unavailable", "no event feed on this node"));
  query_reader q{ctx, req, {"after", "limit", "wait"}};
  const auto most = static_cast<std::uint32_t>(
    std::max<std::int64_t>(1, std::chrono::duration_cast<std::chrono::seconds>(ctx.settings.request_timeout).count() - 1));
  event_feed_query query;
  query.after = static_cast<std::uint64_t>(q.cursor("after"));
  query.limit = q.limit("limit", 100, 1000);
  query.wait_ms = std::int64_t{q.limit("wait", 0, most)} * 1000;
  query.scope = who.scope;
  if (!q.ok)
    return;
  ctx.self->request(ctx.settings.events, ctx.hop(), list_atom::value, query)
    .then(
      [&ctx, id = req.id](event_feed_page& page) {
        json events = json::array();
        for (const auto& e : page.events)
          events.push_back({{"seq", e.seq},
                            {"event_id", e.event.event_id},
                            {"speaker_id", e.event.speaker_id},
                            {"client_id", e.event.client_id},
                            {"previous_bucket", e.event.previous_bucket},
                            {"new_bucket", e.event.new_bucket},
                            {"reason", e.event.reason},
                            {"timestamp", timestamp(e.event.timestamp_ms)}});
        ctx.reply(id, json_response(200, {{"events", events}, {"next", page.next}, {"gap", page.gap}}));
      },
      ctx.on_error(req));
}

// The same words the shard uses for an id it does not know.
std::string not_registered(const std::string& id) {
  return "speaker " + id + " is not registered";
}

void show_speaker(gateway_context& ctx, std::uint64_t request, const client_scope& scope,
                  speaker_view& v) {
  if (!ctx.hidden_by_scope(request, scope, v.client_id, not_registered(v.speaker_id)))
    reply_view(ctx, request, v, 200);
}

void show_speaker(gateway_context& ctx, std::uint64_t request, const client_scope& scope,
                  const rendered_views::entry& e) {
  if (ctx.hidden_by_scope(request, scope, e.view.client_id, not_registered(e.view.speaker_id)))
    return;
  http_response r;
  r.body = e.body;
  ctx.reply(request, std::move(r));
}

}  // namespace

// A read of one speaker's view. It goes straight to the activation that answered this lane's last
// read of that speaker when there is one (a hop less than through the shard), else through the
// shard, which delegates a read of a live speaker, so the answer comes from the activation and
// shows where it is. An activation that has passivated or died since bounces the read
// (request_receiver_down), and the read is sent again through the shard: a read is safe to send
// twice, and only the shard activates. A read sent straight names the stamp of the body this lane
// holds, so an unchanged speaker answers without its view; when the lane holds a stamped body the
// answer goes to direct_reads, which completes the request without this lane (it hands back only
// what needs the lane: a changed view, a scoped reader's refusal, a bounce).
// Longer than a read of a live speaker takes across loopback or a LAN under load; a read that
// times out is only sent again through the shard (a read is safe to send twice).
constexpr std::chrono::seconds remote_read_timeout{1};

void read_speaker(gateway_context& ctx, std::uint64_t request, const std::string& id,
                  const client_scope& scope, bool try_remembered) {
  auto known = try_remembered ? ctx.locations.find(id) : speaker_actor{};
  if (known) {
    auto held = ctx.speaker_bodies.held(id);
    const auto stamp = held ? held->stamp : speaker_stamp{};
    // CAF never answers a request in flight to a node that dies, so a read straight to an
    // activation on another node gets a timer of its own (direct_reads has none), and when it
    // fires the read goes through the shard, which takes back what it sent to a lost node.
    const bool remote = known->node() != ctx.self->node();
    if (remote) {
      ctx.self->request(known, caf::duration{remote_read_timeout}, get_atom::value, stamp)
        .then(
          [&ctx, request, id, scope](speaker_read& r) { speaker_answered(ctx, request, id, scope, r); },
          [&ctx, request, id, scope](caf::error& err) {
            if (err != caf::sec::request_receiver_down && err != caf::sec::request_timeout)
              return ctx.on_error(request, false)(err);
            speaker_gone(ctx, request, id, scope);
          });
      return;
    }
    if (stamp.activation != 0 && ctx.settings.direct &&
        ctx.settings.direct->send(
          caf::actor_cast<caf::actor>(known),
          direct_reads::ticket{request, id, scope, std::move(held), caf::actor_cast<caf::actor>(ctx.self)},
          ctx.self->context()))
      return;
    ctx.self->request(known, ctx.hop(), get_atom::value, stamp)
      .then(
        [&ctx, request, id, scope](speaker_read& r) { speaker_answered(ctx, request, id, scope, r); },
        [&ctx, request, id, scope](caf::error& err) {
          if (err != caf::sec::request_receiver_down)
            return ctx.on_error(request, false)(err);
          speaker_gone(ctx, request, id, scope);
        });
    return;
  }
  request_rerouted<speaker_view>(
    ctx, read_plan(ctx, request), ctx.settings.speakers,
    [&ctx, request, id, scope](speaker_view& v) {
      ctx.locations.learn(ctx.self, id, ctx.settings.speakers);
      show_speaker(ctx, request, scope, v);
    },
    get_atom::value, id);
}

void speaker_answered(gateway_context& ctx, std::uint64_t request, const std::string& id,
                      const client_scope& scope, speaker_read& r) {
  const auto* e = r.changed ? &ctx.speaker_bodies.remember(r.view, r.stamp, render_view)
                            : ctx.speaker_bodies.at(id, r.stamp);
  if (!e)  // forgotten since the read was sent (the bodies started again): ask for the view
    return read_speaker(ctx, request, id, scope);
  show_speaker(ctx, request, scope, *e);
}

void speaker_gone(gateway_context& ctx, std::uint64_t request, const std::string& id,
                  const client_scope& scope) {
  ctx.locations.forget(id);
  read_speaker(ctx, request, id, scope, false);
}

namespace {

void send_history(gateway_context& ctx, const http_request& req, const std::string& id) {
  request_rerouted<speaker_history>(
    ctx, read_plan(ctx, req.id), ctx.settings.speakers,
    [&ctx, request = req.id](speaker_history& h) {
      json entries = json::array();
      for (const auto& e : h.entries)
        entries.push_back(to_json(e));
      ctx.reply(request, json_response(200, {{"speaker_id", h.speaker_id}, {"entries", entries}}));
    },
    history_atom::value, id);
}

}  // namespace

void handle_speakers(gateway_context& ctx, route r, const http_request& req,
                     const route_match& match, const principal& who) {
  if (!match.params.empty() && !path_id_ok(ctx, req, match.params[0], "speaker id", "speaker_id"))
    return;
  auto timeout = ctx.hop();
  auto& shard = ctx.settings.speakers;
  switch (r) {
    case route::speakers_create: return create_speaker(ctx, req, who);
    case route::speakers_list: return list_speakers(ctx, req, who);
    case route::speaker_get: return read_speaker(ctx, req.id, match.params[0], who.scope);
    case route::speaker_history:
      // A scoped reader learns the speaker's client first (the history does not carry it).
      if (who.scope.limited) {
        ctx.self->request(shard, timeout, get_atom::value, match.params[0])
          .then(
            [&ctx, req, who, match](speaker_view& v) {
              if (ctx.hidden_by_scope(req, who, v.client_id, not_registered(v.speaker_id)))
                return;
              send_history(ctx, req, match.params[0]);
            },
            ctx.on_error(req));
        return;
      }
      return send_history(ctx, req, match.params[0]);

    case route::speaker_pin_put: return pin_bucket(ctx, req, match.params[0], who);
    case route::speaker_pin_delete: return unpin_bucket(ctx, req, match.params[0], who);
    case route::speaker_samples_post: return add_sample(ctx, req, match.params[0], who);
    case route::schedule_list: return list_schedule(ctx, req, who);
    case route::bucket_changes: return list_bucket_changes(ctx, req, who);
    default:
      ctx.reply(req, problem(404, "not-found", "Not Found", "no resource at this path"));
  }
}

}  // namespace sbm::gateway

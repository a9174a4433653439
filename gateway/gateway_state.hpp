#pragma once
// Internal to gateway/: what route handlers share. Handlers answer through `reply` exactly once.
#include <caf/event_based_actor.hpp>
#include <nlohmann/json_fwd.hpp>

#include <chrono>
#include <functional>
#include <string>
#include <unordered_map>
#include <vector>

#include "gateway/access.hpp"
#include "gateway/gateway.hpp"
#include "gateway/json_io.hpp"
#include "gateway/rendered_views.hpp"
#include "gateway/route_table.hpp"
#include "gateway/router.hpp"
#include "gateway/user_cache.hpp"
#include "messages/context.hpp"
#include "messages/speaker_locations.hpp"

namespace sbm::gateway {

// A lane's own timer for work parked a moment (gateway_context::later).
using reroute_atom = caf::atom_constant<caf::atom("reroute")>;

// Methods that change state: their failures may leave the outcome unknown, and they take an
// Idempotency-Key.
inline bool is_write(const http_request& req) {
  return req.method == "POST" || req.method == "PUT" || req.method == "PATCH" ||
         req.method == "DELETE";
}

struct gateway_context {
  caf::event_based_actor* self;
  gateway_settings settings;
  bool draining = false;
  // A few MB at most per lane: a view and its ~400-byte body per entry.
  rendered_views speaker_bodies{4096};
  // Where each speaker's activation was when it last answered one of this lane's reads (learnt
  // from a delegated answer, whose sender is the activation itself), so the next read of it skips
  // the shard (routes_speakers.cpp): the one caller-side cache every reader of speakers shares.
  // Cleared when full, like speaker_bodies.
  sbm::speaker_locations locations{4096};

  // Work waiting for a moment on this lane (a request resent after a back-off, reroute.hpp), by
  // token. Each belongs to a request in flight, so the gateway's admission bound bounds it.
  std::unordered_map<std::uint64_t, std::function<void()>> parked;
  std::uint64_t next_parked = 1;

  // Runs `fn` on this lane after `delay` (reroute_atom); dropped if the lane stops first, like
  // every request it holds.
  void later(std::chrono::milliseconds delay, std::function<void()> fn) {
    const auto token = next_parked++;
    parked.emplace(token, std::move(fn));
    self->delayed_send(self, delay, reroute_atom::value, token);
  }
  void run_parked(std::uint64_t token) {
    auto it = parked.find(token);
    if (it == parked.end())
      return;
    auto fn = std::move(it->second);
    parked.erase(it);
    fn();
  }

  // When the caller stops waiting: a little before the gateway's own timer, so work dropped at
  // it answers "nothing was saved" in time instead of leaving the client with an unknown outcome.
  deadline request_deadline() const;

  // What travels with the work a request starts: its deadline (now plus the gateway's request
  // timeout, the one timer of the whole pipeline) and, for writes, its Idempotency-Key scoped to
  // the principal (dispatch has already refused a malformed one).
  request_context work_context(const http_request& req, const principal& who) const;

  // The timeout of every request a route sends on behalf of a client: none. The HTTP server
  // answers every request still pending at its deadline (gateway.request-timeout) itself, and
  // every actor downstream drops work past the deadline carried in its request_context, so a
  // second timer per hop would only cost a clock registration per request.
  caf::duration hop() const { return caf::duration{caf::infinite}; }

  // After a change to a user made through this gateway: the node's cache drops the user's
  // remembered standing before `then` runs (the answer), so the change applies to the client's
  // next request whichever lane or HTTP thread takes it.
  void forget_standing(const std::string& subject, std::function<void()> then);

  // A handler that answers later captures the request's `id` rather than the request: a request
  // captured by value (headers, body and all) is copied again each time CAF moves the handler.
  void reply(std::uint64_t request, http_response response) const {
    settings.out->respond(request, std::move(response));
  }
  void reply(const http_request& req, http_response response) const {
    reply(req.id, std::move(response));
  }

  // The error half of every request(...).then(...): the failure becomes problem+json.
  // `write`: whether a lost answer leaves an unknown outcome (a POST that only reads, such as a
  // search, says false).
  auto on_error(std::uint64_t request, bool write) const {
    return [out = settings.out, request, write](caf::error& err) {
      out->respond(request, from_error(err, write));
    };
  }
  auto on_error(const http_request& req, bool write) const { return on_error(req.id, write); }
  auto on_error(const http_request& req) const { return on_error(req, is_write(req)); }

  // The single-item half of client scoping (lists are filtered in each family's SQL, writes in
  // each family's actor, from request_context::scope): an item of a client the principal may not
  // reach is answered 404 with `not_found_detail`, the same answer as an id that does not exist.
  // True when it answered.
  bool hidden_by_scope(std::uint64_t request, const client_scope& scope,
                       const std::string& client_id, const std::string& not_found_detail) const {
    if (scope.admits(client_id))
      return false;
    reply(request, problem(404, "not-found", "Not Found", not_found_detail));
    return true;
  }
  bool hidden_by_scope(const http_request& req, const principal& who, const std::string& client_id,
                       const std::string& not_found_detail) const {
    return hidden_by_scope(req.id, who.scope, client_id, not_found_detail);
  }
};

// One JSON form per item, shared by the routes that show it (routes_speakers.cpp, routes_jobs.cpp).
nlohmann::json to_json(const speaker_view& v);
nlohmann::json to_json(const history_entry& e);
nlohmann::json to_json(const verification_job& j);
// The body of GET /v1/speakers/{id}: what every path that shows one speaker answers with.
std::string render_view(const speaker_view& view);

void handle_speakers(gateway_context& ctx, route r, const http_request& req,
                     const route_match& match, const principal& who);

// GET /v1/speakers/{id} (routes_speakers.cpp), and the lane's half of the reads direct_reads hands
// back: a speaker's stamped answer that needs this lane, and a read whose activation was gone.
void read_speaker(gateway_context& ctx, std::uint64_t request, const std::string& id,
                  const client_scope& scope, bool try_remembered = true);
void speaker_answered(gateway_context& ctx, std::uint64_t request, const std::string& id,
                      const client_scope& scope, speaker_read& r);
void speaker_gone(gateway_context& ctx, std::uint64_t request, const std::string& id,
                  const client_scope& scope);

void handle_users(gateway_context& ctx, route r, const http_request& req,
                  const route_match& match, const principal& who);

void handle_reports(gateway_context& ctx, route r, const http_request& req,
                    const route_match& match, const principal& who);

void handle_jobs(gateway_context& ctx, const http_request& req, const route_match& match,
                 const principal& who);

void handle_drafts(gateway_context& ctx, const http_request& req, const principal& who);

void handle_speaker_overview(gateway_context& ctx, const http_request& req, const route_match& match,
                             const principal& who);
void handle_quality_samples(gateway_context& ctx, const http_request& req, const route_match& match,
                            const principal& who);
void handle_sessions(gateway_context& ctx, route r, const http_request& req, const route_match& match,
                     const principal& who);

// What one scrape gathered (gateway/metrics.cpp): the snapshots that came in time, and the
// components that did not answer within metrics.component-timeout.
struct scrape_result {
  std::vector<component_metrics> components;
  std::vector<std::string> missing;
};

// Asks every component for its metrics; `done` runs on this lane once all answered or timed out.
void gather_metrics(gateway_context& ctx, std::function<void(scrape_result&)> done);
// GET /metrics: the text exposition of a scrape.
void handle_metrics(gateway_context& ctx, const http_request& req);
// GET /v1/status's `queues` section: each bounded queue's depth against its bound.
nlohmann::json queues_json(const scrape_result& r);

}  // namespace sbm::gateway

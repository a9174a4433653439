#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <ctime>
#include <optional>

#include "gateway/admission.hpp"
#include "gateway/auth/jwt.hpp"
#include "gateway/direct_reads.hpp"
#include "gateway/gateway_state.hpp"
#include "gateway/idempotency_key.hpp"
#include "gateway/readers.hpp"
#include "messages/errors.hpp"
#include "runtime/domain/ids.hpp"
#include "runtime/logging/logging.hpp"
#include "runtime/version/version.hpp"

namespace sbm::gateway {

using nlohmann::json;

namespace {

struct gateway_state {
  static inline const char* name = "gateway-lane";
  gateway_context ctx;
  std::shared_ptr<spdlog::logger> log = sbm::log::get("gateway");
};

// The operator's view of one dependency: its state and, from a connection supervisor, its
// breaker (window counts, rates against thresholds, trial calls, the last transition).
json operator_view(const dependency_status& d) {
  json out{{"name", d.name}, {"required", d.required}, {"up", d.up}, {"state", d.state},
           {"detail", d.detail}};
  if (!d.has_breaker)
    return out;
  const auto& b = d.breaker;
  json last = nullptr;
  if (b.transitions > 0)
    last = {{"from", b.last_from}, {"to", b.last_to}, {"ms_ago", b.last_transition_ms_ago}};
  out["breaker"] = {
      {"state", b.state},
      {"window", {{"type", b.window}, {"size", b.window_size}, {"minimum_calls", b.minimum_calls}}},
      {"calls", b.calls},
      {"failures", b.failures},
      {"slow_calls", b.slow_calls},
      {"failure_rate", b.failure_rate},
      {"failure_rate_threshold", b.failure_rate_threshold},
      {"slow_call_rate", b.slow_call_rate},
      {"slow_call_rate_threshold", b.slow_call_rate_threshold},
      {"slow_call_ms", b.slow_call_ms},
      {"half_open_calls", b.trial_calls},
      {"trials_in_flight", b.trials_in_flight},
      {"open_for_ms", b.open_for_ms},
      {"retry_in_ms", b.retry_in_ms},
      {"refused", b.refused},
      {"retries", b.retries},
      {"transitions", b.transitions},
      {"last_transition", last}};
  return out;
}

// Collects every dependency's status (a timeout counts as down) and answers in one of two shapes.
// /readyz is public, so it says only whether the node is ready and which dependency is up: error
// text, addresses and breaker timings would tell an attacker where to aim. GET /v1/status is the
// authenticated operator's view with the detail, one key per section (dependencies today;
// breakers, pools, queues and membership join it).
enum class status_view { public_readiness, operator_detail };

struct readiness_collector {
  gateway_context* ctx;
  http_request req;
  status_view view = status_view::public_readiness;
  std::vector<dependency_status> statuses;
  std::size_t expected = 0;
  // The operator's view also shows every bounded queue, from the same snapshots a metrics scrape
  // gathers; null until they are in.
  std::optional<scrape_result> scrape;
  // The operator's view shows the node's membership; null until its actor answered.
  std::optional<nlohmann::json> cluster;
  bool answered = false;

  void add(dependency_status s) {
    statuses.push_back(std::move(s));
    finish_when_complete();
  }

  void add(scrape_result r) {
    scrape = std::move(r);
    finish_when_complete();
  }

  void add(nlohmann::json c) {
    cluster = std::move(c);
    finish_when_complete();
  }

  void finish_when_complete() {
    if (answered || statuses.size() < expected ||
        (view == status_view::operator_detail && (!scrape || !cluster)))
      return;
    answered = true;
    bool ready = !ctx->draining;
    for (const auto& d : statuses)
      if (d.required && !d.up)
        ready = false;
    const char* status = ctx->draining ? "draining" : ready ? "ready" : "not_ready";
    json deps = json::array();
    for (const auto& d : statuses) {
      if (view == status_view::public_readiness)
        deps.push_back({{"name", d.name}, {"up", d.up}});
      else
        deps.push_back(operator_view(d));
    }
    if (view == status_view::public_readiness) {
      json body{{"status", status}, {"ready", ready}, {"dependencies", deps}};
      auto r = json_response(ready ? 200 : 503, body);
      if (!ready)
        r.headers.emplace_back("Retry-After", "5");
      ctx->reply(req, std::move(r));
      return;
    }
    // The operator asked about the node, which answered: 200 whatever the node's state.
    json body{{"node", {{"status", status},
                        {"ready", ready},
                        {"draining", ctx->draining},
                        {"version", std::string(sbm::version())}}},
              {"dependencies", deps},
              {"queues", queues_json(*scrape)},
              {"cluster", *cluster}};
    // Components that did not answer in time: their queues are missing from the list.
    if (!scrape->missing.empty())
      body["queues_missing"] = scrape->missing;
    ctx->reply(req, json_response(200, body));
  }
};

// The `cluster` section: this node's lease and every member it knows, with state and lease age.
json cluster_json(const cluster_status& c) {
  json members = json::array();
  for (const auto& m : c.members) {
    auto optional_ms = [](std::int64_t ms) { return ms < 0 ? json(nullptr) : json(ms); };
    members.push_back({{"address", m.address},
                       {"name", m.name},
                       {"epoch", m.epoch},
                       {"state", m.state},
                       {"self", m.self},
                       {"draining", m.draining},
                       {"speakers", optional_ms(m.speakers)},
                       {"lease_age_ms", optional_ms(m.lease_age_ms)},
                       {"lease_expires_in_ms", optional_ms(m.lease_expires_in_ms)}});
  }
  return {{"enabled", c.enabled},
          {"address", c.enabled ? json(c.address) : json(nullptr)},
          {"state", c.enabled ? json(c.state) : json("standalone")},
          {"epoch", c.enabled ? json(c.epoch) : json(nullptr)},
          {"lease_age_ms", c.lease_age_ms < 0 ? json(nullptr) : json(c.lease_age_ms)},
          {"members", members}};
}

void ask_cluster(gateway_context& ctx, const std::shared_ptr<readiness_collector>& collector) {
  if (!ctx.settings.cluster) {
    collector->cluster = cluster_json(cluster_status{});
    return;
  }
  ctx.self->request(ctx.settings.cluster, ctx.settings.metrics_timeout, status_atom::value)
    .then([collector](cluster_status& c) { collector->add(cluster_json(c)); },
          [collector](caf::error&) {
            // Its membership actor did not answer (restarting, stuck): said, not waited for.
            cluster_status c;
            c.enabled = true;
            c.state = "unresponsive";
            auto out = cluster_json(c);
            out["address"] = nullptr;
            out["epoch"] = nullptr;
            collector->add(std::move(out));
          });
}

// POST /v1/cluster/drain: this node hands every speaker to the other members and owns none until
// it stops; the answer is its cluster section after that. A node without a cluster has no one to
// hand to: it answers its (standalone) section and changes nothing.
void drain_node(gateway_context& ctx, const http_request& req) {
  if (!ctx.settings.cluster)
    return ctx.reply(req, json_response(200, cluster_json(cluster_status{})));
  ctx.self->request(ctx.settings.cluster, ctx.settings.metrics_timeout, drain_atom::value)
    .then([&ctx, id = req.id](cluster_status& c) { ctx.reply(id, json_response(200, cluster_json(c))); },
          ctx.on_error(req, true));
}

void collect_status(gateway_context& ctx, const http_request& req, status_view view) {
  auto collector = std::make_shared<readiness_collector>();
  collector->ctx = &ctx;
  collector->req = req;
  collector->view = view;
  auto ask = [&](const auto& handle, const char* name, bool required) {
    ++collector->expected;
    if (!handle) {
      dependency_status s;
      s.name = name;
      s.required = required;
      s.state = "absent";
      s.detail = "not configured";
      collector->statuses.push_back(std::move(s));
      return;
    }
    ctx.self->request(handle, std::chrono::seconds(2), status_atom::value)
      .then([collector](dependency_status& s) { collector->add(std::move(s)); },
            [collector, name, required](caf::error& err) {
              dependency_status s;
              s.name = name;
              s.required = required;
              s.state = "unresponsive";
              s.detail = "no status answer: " + caf::to_string(err);
              collector->add(std::move(s));
            });
  };
  ask(ctx.settings.postgres, "postgres", true);
  // Required as the main pool is: without it no report can be filed. Not configured, filings use
  // the main pool, so there is nothing else to ask.
  if (ctx.settings.filings)
    ask(ctx.settings.filings, "postgres-filings", true);
  ask(ctx.settings.redis, "redis", false);
  ask(ctx.settings.instanote, "instanote", false);
  if (view == status_view::operator_detail) {
    gather_metrics(ctx, [collector](scrape_result& r) { collector->add(std::move(r)); });
    ask_cluster(ctx, collector);
  }
  // absent handles were counted synchronously; finish if every answer is already in
  collector->finish_when_complete();
}

// A route whose handler reads no query refuses every parameter as a query reader would: a client
// who sends ?verbose=1 learns it is not understood instead of believing it was applied.
bool query_refused(gateway_context& ctx, const http_request& req, route id) {
  if (req.query.empty() || reads_query(id))
    return false;
  std::vector<std::pair<std::string, std::string>> pairs;
  auto refused = query_reader::refusal(req.query, {}, pairs);
  if (!refused)
    return false;
  ctx.reply(req, std::move(*refused));
  return true;
}

void dispatch(gateway_state& st, http_request& req) {
  auto& ctx = st.ctx;
  // The front door matched the route and answered everything that needs no actor.
  const auto id = static_cast<route>(req.route);
  // The parameters move: nothing reads them from the request after this (a copy was two
  // allocations per request, one here and one into the admission's continuation).
  route_match match{req.route, std::move(req.params)};
  if (id == route::readyz) {
    if (query_refused(ctx, req, id))
      return;
    collect_status(ctx, req, status_view::public_readiness);
    return;
  }
  // metrics.access = open: Prometheus scrapes without a token (the front door still counted the
  // peer's rate); otherwise the route needs ops.read like any other.
  if (id == route::metrics && ctx.settings.metrics_open) {
    if (query_refused(ctx, req, id))
      return;
    handle_metrics(ctx, req);
    return;
  }
  if (ctx.draining) {
    auto r = problem(503, "draining", "Service Unavailable", "this node is shutting down");
    r.headers.emplace_back("Retry-After", "5");
    ctx.reply(req, std::move(r));
    return;
  }
  admit(ctx, req, permission_of(id),
        [&ctx, id, match = std::move(match)](const http_request& admitted_req,
                                             const principal& who) {
          if (query_refused(ctx, admitted_req, id))
            return;
          if (auto refused = media_type_problem(admitted_req))
            return ctx.reply(admitted_req, std::move(*refused));
          switch (id) {
            case route::node_status:
              return collect_status(ctx, admitted_req, status_view::operator_detail);
            case route::cluster_drain:
              return drain_node(ctx, admitted_req);
            case route::metrics:
              return handle_metrics(ctx, admitted_req);
            case route::users_create:
            case route::user_get:
            case route::user_update:
            case route::audit_list:
              return handle_users(ctx, id, admitted_req, match, who);
            case route::reports_create:
            case route::reports_list:
            case route::report_get:
            case route::report_update:
            case route::patterns_search:
              return handle_reports(ctx, id, admitted_req, match, who);
            case route::speaker_jobs:
              return handle_jobs(ctx, admitted_req, match, who);
            case route::speaker_overview:
              return handle_speaker_overview(ctx, admitted_req, match, who);
            case route::drafts_correct:
              return handle_drafts(ctx, admitted_req, who);
            case route::speaker_samples_list:
              return handle_quality_samples(ctx, admitted_req, match, who);
            case route::sessions_create:
            case route::session_get:
            case route::session_marks_put:
            case route::session_submit:
              return handle_sessions(ctx, id, admitted_req, match, who);
            default:
              return handle_speakers(ctx, id, admitted_req, match, who);
          }
        });
}

caf::behavior gateway_actor(caf::stateful_actor<gateway_state>* self, gateway_settings settings) {
  auto& st = self->state;
  st.ctx.self = self;
  st.ctx.settings = std::move(settings);
  return {
    [self](http_atom, std::vector<http_request>& batch) {
      for (auto& req : batch) {
        try {
          dispatch(self->state, req);
        } catch (const std::exception& e) {
          // A handler bug must not take the gateway (and every in-flight request) down with it.
          self->state.log->error("[{}] handler failed for {} {}: {}", req.request_id, req.method,
                                 sbm::log::escape(req.path), e.what());
          self->state.ctx.reply(req, problem(500, "internal", "Internal Server Error",
                                             "an internal error occurred"));
        }
      }
    },
    [self](get_atom, std::uint64_t request, const std::string& id, const client_scope& scope,
           speaker_read& r) { speaker_answered(self->state.ctx, request, id, scope, r); },
    [self](retry_atom, std::uint64_t request, const std::string& id, const client_scope& scope) {
      speaker_gone(self->state.ctx, request, id, scope);
    },
    [self](reroute_atom, std::uint64_t token) { self->state.ctx.run_parked(token); },
    [self](drain_atom) {
      self->state.ctx.draining = true;
      return true;
    },
  };
}

}  // namespace

void gateway_context::forget_standing(const std::string& subject, std::function<void()> then) {
  settings.standings->forget(subject);
  then();
}

deadline gateway_context::request_deadline() const {
  return deadline::after(self->clock().now(), settings.request_timeout * 9 / 10);
}

request_context gateway_context::work_context(const http_request& req, const principal& who) const {
  request_context out;
  out.until = request_deadline();
  out.principal = who.describe();
  out.request_id = req.request_id;
  out.scope = who.scope;
  if (!is_write(req))
    return out;
  for (const auto& h : req.headers) {
    if (h.first != idempotency_header) continue;
    std::string why;
    if (auto key = parse_idempotency_key(h.second, why)) {
      out.idempotency_key = std::move(*key);
      out.request_digest = req.digest;
    }
    break;
  }
  return out;
}

// The owner of one incarnation's lanes: it installs them, forwards a drain, and when it ends (a
// lane died, or shutdown) takes them out so the server answers what they held.
caf::behavior gateway_owner(caf::event_based_actor* self, gateway_settings settings,
                            std::shared_ptr<gateway_pipeline> pipeline, std::uint64_t generation) {
  std::vector<caf::actor> lanes;
  settings.owner = caf::actor{self};
  const auto count = std::max<std::size_t>(1, settings.lanes);
  for (std::size_t i = 0; i < count; ++i)
    lanes.push_back(self->spawn<caf::linked>(gateway_actor, settings));
  if (!pipeline->install(generation, lanes)) {
    // A newer incarnation exists: this one is already superseded and serves nothing.
    self->quit(caf::exit_reason::user_shutdown);
    return {};
  }
  self->attach_functor([pipeline, generation] { pipeline->uninstall(generation); });
  return {
    [lanes](drain_atom) {
      for (const auto& lane : lanes)
        caf::anon_send(lane, drain_atom::value);
      return true;
    },
  };
}

caf::actor spawn_gateway(caf::actor_system& sys, gateway_settings settings,
                         std::shared_ptr<gateway_pipeline> pipeline) {
  settings.out = pipeline->responder_of();
  settings.direct = pipeline->direct_reads_of(sys);
  settings.standings = pipeline->standings();
  settings.views = pipeline->views();
  const auto generation = pipeline->next_generation();
  return sys.spawn(gateway_owner, std::move(settings), std::move(pipeline), generation);
}

gateway_pipeline::gateway_pipeline(front_door_settings front,
                                   std::chrono::milliseconds user_cache_ttl, published_reads reads)
  : front_(std::move(front)),
    standings_(std::make_shared<user_standing_cache>(user_cache_ttl)),
    reads_(std::move(reads)) {}

void gateway_pipeline::connect(std::shared_ptr<responder> out) {
  out_ = std::move(out);
}

namespace {

// No lane took the request: nothing was done with it.
http_response gateway_restarting() {
  auto r = problem(503, "gateway-restarting", "Service Unavailable",
                   "the gateway is restarting; nothing was done, retry shortly");
  r.headers.emplace_back("Retry-After", "1");
  return r;
}

}  // namespace

bool gateway_pipeline::answer_published(const http_request& req) {
  if (!reads_.views || !serving_.load(std::memory_order_relaxed) ||
      req.token.state != token_state::genuine)
    return false;
  // What a lane would refuse or read (a query, a body, a malformed id) is left to it.
  if (!req.query.empty() || !req.body.empty() || req.params.size() != 1 ||
      domain::id_problem(req.params[0]))
    return false;
  std::string why;
  auto who = token_principal(req.token, reads_.services, why);
  if (!who)
    return false;
  user_standing_entry standing;
  if (reads_.standing_checked) {
    auto cached = standings_->find(who->subject, std::chrono::steady_clock::now());
    if (!cached)
      return false;
    standing = std::move(*cached);
  }
  auto verdict = apply_standing(std::move(*who), standing, permission_of(route::speaker_get),
                                reads_.services);
  if (!verdict.refusal.empty())
    return false;
  const auto published = reads_.views->find(req.params[0]);
  // Hidden from this reader: the lane answers the 404 with its words.
  if (!published || !verdict.who.scope.admits(published->view.client_id))
    return false;
  http_response r;
  r.body = published->body(render_view);
  out_->respond_routed(req.id, req.route, std::move(r));
  reads_.views->count_served();
  return true;
}

void gateway_pipeline::hold(http_request&& req) {
  if (auto answer = front_.admit(req))
    return out_->respond_routed(req.id, req.route, std::move(*answer));
  if (req.route == static_cast<int>(route::speaker_get) && answer_published(req))
    return;
  const auto id = req.id;
  const auto route = req.route;
  bool held = false;
  caf::actor full_lane;
  std::vector<http_request> full;
  {
    std::lock_guard<std::mutex> guard{mutex_};
    if (!lanes_.empty()) {
      const auto lane = next_lane_.fetch_add(1, std::memory_order_relaxed) % lanes_.size();
      // Handed over before it is held: a lane set that ends answers it through fail_owned.
      out_->hand_over(id, generation_, route);
      if (held_.size() < lanes_.size())
        held_.resize(lanes_.size());
      held_[lane].push_back(std::move(req));
      held = true;
      if (held_[lane].size() >= max_batch) {
        full.swap(held_[lane]);
        full_lane = lanes_[lane];
      }
    }
  }
  if (!held)
    return out_->respond_routed(id, route, gateway_restarting());
  if (full_lane)
    caf::anon_send(full_lane, http_atom::value, std::move(full));
}

void gateway_pipeline::flush() {
  std::vector<std::pair<caf::actor, std::vector<http_request>>> out;
  std::vector<http_request> orphans;
  {
    std::lock_guard<std::mutex> guard{mutex_};
    for (std::size_t i = 0; i < held_.size(); ++i) {
      if (held_[i].empty())
        continue;
      if (lanes_.empty()) {
        for (auto& r : held_[i])
          orphans.push_back(std::move(r));
      } else {
        out.emplace_back(lanes_[i % lanes_.size()], std::move(held_[i]));
      }
      held_[i].clear();
    }
  }
  for (auto& [lane, batch] : out)
    caf::anon_send(lane, http_atom::value, std::move(batch));
  // Held for lanes that have ended since: their incarnation's end (uninstall -> fail_owned) has
  // answered them already, as every held request belongs to the installed incarnation (install
  // hands them over), so this is a no-op kept as a safety net.
  for (const auto& r : orphans)
    out_->respond_routed(r.id, r.route, gateway_restarting());
}

void gateway_pipeline::drain() {
  std::vector<caf::actor> lanes;
  {
    std::lock_guard<std::mutex> guard{mutex_};
    draining_ = true;
    serving_ = false;
    lanes = lanes_;
  }
  for (const auto& lane : lanes)
    caf::anon_send(lane, drain_atom::value);
}

std::shared_ptr<direct_reads> gateway_pipeline::direct_reads_of(caf::actor_system& sys) {
  std::lock_guard<std::mutex> guard{mutex_};
  if (!direct_)
    direct_ = std::make_shared<direct_reads>(sys, out_, max_direct_reads);
  return direct_;
}

std::uint64_t gateway_pipeline::next_generation() {
  std::lock_guard<std::mutex> guard{mutex_};
  return ++newest_;
}

bool gateway_pipeline::install(std::uint64_t generation, std::vector<caf::actor> lanes) {
  std::lock_guard<std::mutex> guard{mutex_};
  if (generation < newest_)
    return false;
  lanes_ = std::move(lanes);
  generation_ = generation;
  // Requests held and not sent yet go to these lanes at the next flush: they are this
  // generation's now, so the previous one's end (uninstall) does not answer them.
  for (const auto& batch : held_)
    for (const auto& r : batch)
      out_->hand_over(r.id, generation, r.route);
  serving_ = !draining_ && !lanes_.empty();
  if (draining_)
    for (const auto& lane : lanes_)
      caf::anon_send(lane, drain_atom::value);
  return true;
}

void gateway_pipeline::uninstall(std::uint64_t generation) {
  {
    std::lock_guard<std::mutex> guard{mutex_};
    if (generation == generation_) {
      lanes_.clear();
      serving_ = false;
    }
  }
  // Whether or not a successor is installed already, what this incarnation's lanes held is lost
  // with them: answered now rather than at its deadline.
  out_->fail_owned(generation);
}

}  // namespace sbm::gateway

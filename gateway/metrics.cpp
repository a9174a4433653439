// GET /metrics and the `queues` section of GET /v1/status: a scrape asks each component for its
// typed snapshot (messages/metrics.hpp), each within metrics.component-timeout, and merges them
// with the HTTP server's request counters, which are read, not asked (they are per-thread shards).
// A component that does not answer in time is reported missing, never waited for.
#include <caf/event_based_actor.hpp>
#include <caf/typed_actor.hpp>
#include <nlohmann/json.hpp>

#include <memory>

#include "gateway/gateway_state.hpp"
#include "runtime/metrics/exposition.hpp"
#include "runtime/version/version.hpp"

namespace sbm::gateway {

namespace {

using metrics_source = caf::typed_actor<caf::replies_to<metrics_atom>::with<component_metrics>>;

struct family_spec {
  const char* name;
  metrics::metric_type type;
  const char* help;
};

using metrics::metric_type;

// Every family the node exposes, in the order they are written. A component's sample under a name
// missing here is still written, untyped and without help, which promtool's lint (in the e2e test)
// reports.
const family_spec catalogue[] = {
  {"sbm_build_info", metric_type::gauge, "The running build: always 1, the version in a label."},
  {"sbm_scrape_component_up", metric_type::gauge,
   "Whether a component answered this scrape in time (0: its metrics are missing from it)."},
  {"sbm_http_requests_total", metric_type::counter,
   "HTTP requests answered, by route template (unrouted: no route matched, or refused before routing), method and status."},
  {"sbm_http_request_duration_seconds", metric_type::histogram,
   "Time from reading a request to answering it, by route template and method."},
  {"sbm_dependency_up", metric_type::gauge, "Whether a dependency (PostgreSQL, InstaNote, Redis) is up."},
  {"sbm_dependency_retries_total", metric_type::counter,
   "Requests to a dependency repeated after a failure that was safe to retry."},
  {"sbm_breaker_state", metric_type::gauge, "A circuit breaker's state: 1 for the state it is in."},
  {"sbm_breaker_transitions_total", metric_type::counter, "Circuit breaker transitions, by the state entered."},
  {"sbm_breaker_refused_calls_total", metric_type::counter, "Calls a circuit breaker refused."},
  {"sbm_pool_connections", metric_type::gauge, "Connection workers running in a pool."},
  {"sbm_pool_busy_connections", metric_type::gauge, "Connection workers of a pool handling a request now."},
  {"sbm_pool_queued_requests", metric_type::gauge,
   "Requests of a pool waiting behind busy connections or for a retry."},
  {"sbm_queue_depth", metric_type::gauge, "What waits in a bounded queue now."},
  {"sbm_queue_bound", metric_type::gauge, "The bound of a queue: past it requests are refused (503 overloaded)."},
  {"sbm_speakers_active", metric_type::gauge, "Speaker actors alive on this node."},
  {"sbm_speaker_activations_total", metric_type::counter, "Speaker actors activated from durable state."},
  {"sbm_speaker_passivations_total", metric_type::counter, "Speaker actors passivated (idle or retired)."},
  {"sbm_speaker_failures_total", metric_type::counter, "Speaker actors that failed."},
  {"sbm_speaker_handoff_messages_total", metric_type::counter,
   "Messages that arrived while their speaker was being handed off and went to its next activation."},
  {"sbm_speaker_handoff_buffered_messages", metric_type::gauge, "Messages held for a hand-off now."},
  {"sbm_published_views", metric_type::gauge,
   "Active speakers whose views the HTTP threads answer reads from (the board's entries)."},
  {"sbm_published_view_reads_total", metric_type::counter,
   "GET /v1/speakers/{id} answered on an HTTP thread from a published view."},
  {"sbm_report_saga_lag_seconds", metric_type::gauge,
   "Age of the oldest report saga this node is running (0: none)."},
  {"sbm_report_saga_statements", metric_type::gauge,
   "Statements the report sagas have in flight (index, schedule and acknowledgement batches)."},
  {"sbm_report_saga_statements_allowed", metric_type::gauge,
   "Statements the report sagas may have in flight now: their background share while filings arrive, else their full share."},
  {"sbm_outbox_lag_seconds", metric_type::gauge,
   "Age of the oldest speakers outbox row a target (event bus, Redis stream, audit log) does not have yet (0: none)."},
  {"sbm_pattern_index_ready", metric_type::gauge, "Whether the pattern index is loaded and serving."},
  {"sbm_pattern_index_patterns", metric_type::gauge, "Patterns in the index."},
  {"sbm_pattern_index_deleted_patterns", metric_type::gauge, "Patterns deleted from the index and not yet reused."},
  {"sbm_pattern_search_duration_seconds", metric_type::histogram, "Time the pattern index spent on a search."},
  {"sbm_pattern_scattered_searches_total", metric_type::counter,
   "Pattern searches without a speaker filter asked of every member of the cluster from this node."},
  {"sbm_pattern_partial_searches_total", metric_type::counter,
   "Scattered pattern searches answered without some member (partial: true)."},
  {"sbm_drafts_corrected_total", metric_type::counter, "Drafts corrected."},
  {"sbm_corrections_total", metric_type::counter, "Corrections in corrected drafts, applied or only proposed."},
  {"sbm_verification_sessions_active", metric_type::gauge, "Verification session actors alive on this node."},
  {"sbm_verification_session_activations_total", metric_type::counter,
   "Verification sessions activated from PostgreSQL."},
  {"sbm_verification_sessions_expired_total", metric_type::counter,
   "Verification sessions expired unsubmitted by the sweeps."},
};

metrics::labels to_labels(const metric_labels& l) {
  return metrics::labels(l.begin(), l.end());
}

// One scrape's answers as they come in; `done` runs once every asked component answered or timed
// out.
struct gathering {
  scrape_result result;
  std::size_t expected = 0;
  std::function<void(scrape_result&)> done;

  void answered() {
    if (result.components.size() + result.missing.size() == expected)
      done(result);
  }
};

std::string render(const gateway_settings& s, const scrape_result& r) {
  metrics::exposition out;
  for (const auto& f : catalogue)
    out.family(f.name, f.type, f.help);
  out.sample("sbm_build_info", {{"version", std::string(sbm::version())}}, 1);
  for (const auto& c : r.components)
    out.sample("sbm_scrape_component_up", {{"component", c.component}}, 1);
  for (const auto& name : r.missing)
    out.sample("sbm_scrape_component_up", {{"component", name}}, 0);
  if (s.http_counters) {
    const auto http = s.http_counters->collect();
    const auto route_label = [](int route_id) {
      return route_id < 0 ? std::string{"unrouted"}
                          : std::string{pattern_of(static_cast<route>(route_id))};
    };
    for (const auto& row : http.counts)
      out.sample("sbm_http_requests_total",
                 {{"route", route_label(row.route)},
                  {"method", std::string{metrics::name_of(row.method)}},
                  {"status", row.status == 0 ? std::string{"other"} : std::to_string(row.status)}},
                 static_cast<double>(row.count));
    for (const auto& row : http.latencies)
      out.observe("sbm_http_request_duration_seconds",
                  {{"route", route_label(row.route)}, {"method", std::string{metrics::name_of(row.method)}}},
                  row.latency);
  }
  if (s.views) {
    out.sample("sbm_published_views", {}, static_cast<double>(s.views->size()));
    out.sample("sbm_published_view_reads_total", {}, static_cast<double>(s.views->served()));
  }
  for (const auto& c : r.components) {
    for (const auto& smp : c.samples)
      out.sample(smp.name, to_labels(smp.labels), smp.value);
    for (const auto& h : c.histograms)
      out.observe(h.name, to_labels(h.labels), metrics::histogram_counts{h.bounds, h.counts, h.sum});
    for (const auto& q : c.queues) {
      out.sample("sbm_queue_depth", {{"queue", q.name}}, static_cast<double>(q.depth));
      out.sample("sbm_queue_bound", {{"queue", q.name}}, static_cast<double>(q.bound));
    }
  }
  return out.render();
}

}  // namespace

void gather_metrics(gateway_context& ctx, std::function<void(scrape_result&)> done) {
  auto g = std::make_shared<gathering>();
  g->done = std::move(done);
  const auto& s = ctx.settings;
  // Each handle converts only if its interface answers metrics_atom: a component that cannot be
  // scraped does not compile here.
  std::vector<std::pair<const char*, metrics_source>> sources;
  const auto add = [&](const char* name, metrics_source handle) {
    if (handle)
      sources.emplace_back(name, std::move(handle));
  };
  add("postgres", s.postgres);
  add("postgres-filings", s.filings);
  add("instanote", s.instanote);
  add("redis", s.redis);
  add("speakers", s.speakers);
  add("pattern-index", s.patterns);
  add("corrections", s.corrections);
  add("reports", s.reports);
  add("verification-sessions", s.sessions);
  g->expected = sources.size();
  if (sources.empty())
    return g->done(g->result);
  for (auto& [name, handle] : sources) {
    ctx.self->request(handle, s.metrics_timeout, metrics_atom::value)
      .then(
        [g, name = std::string{name}](component_metrics& m) {
          m.component = name;  // the scrape's name for it, whatever the component calls itself
          g->result.components.push_back(std::move(m));
          g->answered();
        },
        [g, name = std::string{name}](caf::error&) {
          g->result.missing.push_back(name);
          g->answered();
        });
  }
}

void handle_metrics(gateway_context& ctx, const http_request& req) {
  gather_metrics(ctx, [&ctx, req](scrape_result& r) {
    http_response out;
    out.status = 200;
    out.type = media::other;
    out.other_type = "text/plain; version=0.0.4; charset=utf-8";
    out.body = render(ctx.settings, r);
    ctx.reply(req, std::move(out));
  });
}

nlohmann::json queues_json(const scrape_result& r) {
  auto queues = nlohmann::json::array();
  for (const auto& c : r.components)
    for (const auto& q : c.queues)
      queues.push_back({{"name", q.name},
                        {"component", c.component},
                        {"depth", q.depth},
                        {"bound", q.bound},
                        {"setting", q.setting.empty() ? nlohmann::json(nullptr) : nlohmann::json(q.setting)}});
  return queues;
}

}  // namespace sbm::gateway

#include "gateway/route_table.hpp"

#include "gateway/access.hpp"

namespace sbm::gateway {

namespace {

const route_spec routes[] = {
  {"GET", "/healthz", route::healthz, {}},
  {"GET", "/readyz", route::readyz, {}},
  // The API's own description (gateway/openapi.json), public like the probes.
  {"GET", "/openapi.json", route::openapi, {}},
  {"POST", "/v1/speakers", route::speakers_create, permission::speakers_write},
  {"GET", "/v1/speakers", route::speakers_list, permission::speakers_read, true},
  {"GET", "/v1/speakers/{id}", route::speaker_get, permission::speakers_read},
  {"GET", "/v1/speakers/{id}/bucket-history", route::speaker_history, permission::speakers_read},
  // Seed 8.2's speaker history: its state, bucket changes, reports and InstaNote jobs, from
  // whichever of those sources answer (routes_history.cpp). Draft text: QA roles, as for jobs.
  {"GET", "/v1/speakers/{id}/history", route::speaker_overview, permission::schedule_read, true},
  {"PUT", "/v1/speakers/{id}/bucket-pin", route::speaker_pin_put, permission::buckets_pin},
  {"DELETE", "/v1/speakers/{id}/bucket-pin", route::speaker_pin_delete, permission::buckets_pin, true},
  {"POST", "/v1/speakers/{id}/quality-samples", route::speaker_samples_post, permission::quality_write},
  // The trend the QA console draws (routes_samples.cpp).
  {"GET", "/v1/speakers/{id}/quality-samples", route::speaker_samples_list, permission::speakers_read, true},
  {"GET", "/v1/verification-schedule", route::schedule_list, permission::schedule_read, true},
  // Bucket changes as this node's event feed heard them (from whichever member relayed them):
  // read after a cursor, or wait for the next (long poll).
  {"GET", "/v1/events/bucket-changes", route::bucket_changes, permission::speakers_read, true},
  // Draft text is clinical and pulled for verification work: QA roles, not every speakers.read.
  {"GET", "/v1/speakers/{id}/jobs", route::speaker_jobs, permission::schedule_read, true},
  {"POST", "/v1/users", route::users_create, permission::users_admin},
  {"GET", "/v1/users/{id}", route::user_get, permission::users_admin},
  {"PATCH", "/v1/users/{id}", route::user_update, permission::users_admin},
  {"GET", "/v1/audit", route::audit_list, permission::audit_read, true},
  {"POST", "/v1/error-reports", route::reports_create, permission::reports_write},
  {"GET", "/v1/error-reports", route::reports_list, permission::reports_read, true},
  {"GET", "/v1/error-reports/{id}", route::report_get, permission::reports_read},
  // The verification flow's verdict; until it exists, whoever may record quality may set it.
  {"PATCH", "/v1/error-reports/{id}", route::report_update, permission::quality_write},
  {"POST", "/v1/patterns/search", route::patterns_search, permission::reports_read},
  // The drafting pipeline's correction step (services granted it) and QA trying a draft.
  {"POST", "/v1/drafts/correct", route::drafts_correct, permission::drafts_correct},
  // Verification sessions: QA's work, on clinical draft text (so not for every speakers.read).
  {"POST", "/v1/verification-sessions", route::sessions_create, permission::quality_write},
  {"GET", "/v1/verification-sessions/{id}", route::session_get, permission::schedule_read},
  {"PUT", "/v1/verification-sessions/{id}/marks", route::session_marks_put, permission::quality_write},
  {"POST", "/v1/verification-sessions/{id}/submit", route::session_submit, permission::quality_write},
  {"GET", "/v1/status", route::node_status, permission::ops_read},
  {"POST", "/v1/cluster/drain", route::cluster_drain, permission::cluster_admin},
  // Prometheus' scrape: ops.read, or no token at all when metrics.access is open (the lane decides).
  {"GET", "/metrics", route::metrics, permission::ops_read},
};

}  // namespace

route_list all_routes() {
  return {routes, sizeof(routes) / sizeof(routes[0])};
}

std::string_view permission_of(route id) {
  for (const auto& r : routes)
    if (r.id == id)
      return r.permission;
  return {};
}

bool reads_query(route id) {
  for (const auto& r : routes)
    if (r.id == id)
      return r.reads_query;
  return false;
}

std::string_view pattern_of(route id) {
  for (const auto& r : routes)
    if (r.id == id)
      return r.pattern;
  return {};
}

router make_router() {
  router table;
  for (const auto& r : routes)
    table.add(r.method, r.pattern, static_cast<int>(r.id));
  return table;
}

}  // namespace sbm::gateway

#pragma once
// Every route of the API in one table: method, path pattern, id and the permission it needs. The
// front door matches against it on an HTTP thread; the lanes dispatch on the id it found.
#include <cstddef>
#include <string_view>

#include "gateway/router.hpp"

namespace sbm::gateway {

enum class route : int {
  healthz,
  readyz,
  speakers_create,
  speakers_list,
  speaker_get,
  speaker_history,
  speaker_pin_put,
  speaker_pin_delete,
  speaker_samples_post,
  speaker_samples_list,
  schedule_list,
  users_create,
  user_get,
  user_update,
  audit_list,
  reports_create,
  reports_list,
  report_get,
  report_update,
  patterns_search,
  node_status,
  cluster_drain,
  speaker_jobs,
  drafts_correct,
  speaker_overview,
  sessions_create,
  session_get,
  session_marks_put,
  session_submit,
  openapi,
  metrics,
  bucket_changes,
  count_  // not a route: how many there are
};

struct route_spec {
  const char* method;
  const char* pattern;
  route id;
  std::string_view permission;  // empty: no authentication (the probes and the API document)
  // Whether its handler reads the query with a query_reader; every other route refuses any
  // query parameter (400 naming it) before it runs.
  bool reads_query = false;
};

// Every route, in the table's order (the OpenAPI drift test compares gateway/openapi.json with it).
struct route_list {
  const route_spec* first;
  std::size_t size;
  const route_spec* begin() const { return first; }
  const route_spec* end() const { return first + size; }
};
route_list all_routes();

// The permission a route needs (empty for the unauthenticated routes).
std::string_view permission_of(route id);

// route_spec::reads_query of a route.
bool reads_query(route id);

// The path pattern of a route ("/v1/speakers/{id}"): the route label of the request metrics.
std::string_view pattern_of(route id);

// A router that knows every route of the table.
router make_router();

}  // namespace sbm::gateway

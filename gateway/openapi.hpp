#pragma once
// The OpenAPI 3.1 document of the API (gateway/openapi.json), embedded at build time so the node
// serves at GET /openapi.json exactly the bytes the drift tests checked (README, "REST API").
#include <string_view>

namespace sbm::gateway {

std::string_view openapi_document();

}  // namespace sbm::gateway

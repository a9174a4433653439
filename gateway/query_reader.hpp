#pragma once
// Internal to gateway/: reads a request's query parameters by name. Any name not listed is an
// error (typos must not be ignored); the first problem answers 400 naming the parameter, and `ok`
// turns false so the handler returns without answering again.
#include <cstdint>
#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

#include "gateway/gateway_state.hpp"

namespace sbm::gateway {

struct query_reader {
  const gateway_context& ctx;
  const http_request& req;
  std::vector<std::pair<std::string, std::string>> pairs;
  bool ok = true;

  query_reader(const gateway_context& c, const http_request& r, std::initializer_list<const char*> allowed);

  void fail(const std::string& name, const std::string& why);
  std::string get(const char* name) const;
  // "limit": absent gives fallback; otherwise an integer from 1 to max.
  std::uint32_t limit(std::uint32_t fallback, std::uint32_t max) { return count("limit", fallback, max); }
  std::uint32_t count(const char* name, std::uint32_t fallback, std::uint32_t max);
  // Absent: ""; present: a valid id (gateway/json_io id_problem).
  std::string identifier(const char* name);
  // Absent: nullopt-like 0 and *present = false; present: an ISO-8601 date or timestamp.
  std::int64_t timestamp(const char* name, bool* present = nullptr);
};

}  // namespace sbm::gateway

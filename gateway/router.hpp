#pragma once
// Matches method + path to a route. Pure, so it is unit-tested and fuzzable. Path segments are
// percent-decoded here, once, so handlers only see decoded values.
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace sbm::gateway {

struct route_match {
  int route = 0;                    // the id given to add()
  std::vector<std::string> params;  // decoded values of the {placeholders}, in order
};

struct route_not_found {};
struct route_bad_method { std::string allow; };   // the path exists with other methods
struct route_bad_path { std::string reason; };    // undecodable percent-encoding

using route_result = std::variant<route_match, route_not_found, route_bad_method, route_bad_path>;

class router {
 public:
  // pattern: "/v1/speakers/{id}/bucket-pin"; a segment "{...}" matches any one non-empty segment.
  // A GET route also matches HEAD (the server sends no body for it), and its Allow lists both.
  void add(std::string method, std::string_view pattern, int route);
  route_result match(std::string_view method, std::string_view raw_path) const;

 private:
  struct entry {
    std::string method;
    std::vector<std::string> segments;  // "{}" marks a placeholder
    int route;
  };
  std::vector<entry> entries_;
};

// Percent-decodes one path segment or query value ('+' stays '+' in paths); false on bad escapes.
bool percent_decode(std::string_view in, std::string& out, bool plus_is_space);

// Splits "a=1&b=x%20y" into decoded pairs; false on a bad escape.
bool parse_query(std::string_view query, std::vector<std::pair<std::string, std::string>>& out);

}  // namespace sbm::gateway

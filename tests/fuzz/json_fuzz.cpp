// libFuzzer target for the gateway's JSON request parsing: parse_object (UTF-8 check, depth limit,
// objects only) and field_reader over the kinds of fields the routes read. The first byte picks the
// depth limit (2..33); the rest is the request body. Besides crashes and sanitizer reports, it
// aborts when a promise is broken:
//   - no exception escapes (in the gateway that would be a 500 instead of a 400);
//   - valid_utf8 agrees with nlohmann's own UTF-8 validation;
//   - a parsed object nests no deeper than the limit and survives dump + parse unchanged;
//   - what field_reader hands out is what it promises (length, no control characters, a valid id,
//     a finite number within range).
// Build: -DSBM_FUZZ=ON with clang (tests/fuzz/CMakeLists.txt); scripts/fuzz runs it.

#include "gateway/json_io.hpp"

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

namespace {

using nlohmann::json;
using namespace sbm::gateway;

std::size_t depth_of(const json& value) {
  if (!value.is_structured())
    return 0;
  std::size_t deepest = 0;
  for (const auto& child : value)
    deepest = std::max(deepest, depth_of(child));
  return deepest + 1;
}

bool nlohmann_accepts_utf8(std::string_view text) {
  try {
    (void)json(std::string{text}).dump();
    return true;
  } catch (const json::type_error&) {
    return false;
  }
}

void check_text(field_reader& f, const char* key, std::size_t max_bytes, bool multiline) {
  std::string out = "\x01unset";
  bool ok = f.text(key, out, false, max_bytes, multiline);
  if (!ok || out == "\x01unset")
    return;
  if (out.size() > max_bytes)
    std::abort();
  for (unsigned char c : out)
    if ((c < 0x20 && !(multiline && (c == '\n' || c == '\t' || c == '\r'))) || c == 0x7F)
      std::abort();
}

void check_fields(const json& object) {
  field_reader f{object};
  std::string id;
  if (f.identifier("speaker_id", id, false) && !id.empty() && id_problem(id))
    std::abort();
  check_text(f, "display_name", 256, false);
  check_text(f, "reason", 1024, true);
  double rate = -1;
  if (f.number("errors_per_100_words", rate, false, 0, 1000) && rate != -1 &&
      (!std::isfinite(rate) || rate < 0 || rate > 1000))
    std::abort();
  // every key the input brings, read both ways, so the fuzzer steers the readers too
  for (const auto& item : object.items()) {
    field_reader each{object};
    std::string value;
    if (each.identifier(item.key().c_str(), value, true) && id_problem(value))
      std::abort();
    check_text(each, item.key().c_str(), 64, true);
  }
  if (f.failed() && (f.error().empty() || f.to_problem().status != 400))
    std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0)
    return 0;
  const std::size_t max_depth = 2 + data[0] % 32;
  const std::string_view body{reinterpret_cast<const char*>(data) + 1, size - 1};
  if (valid_utf8(body) != nlohmann_accepts_utf8(body))
    std::abort();
  (void)id_problem(body);
  std::string error;
  std::optional<json> parsed;
  try {
    parsed = parse_object(body, max_depth, error);
  } catch (...) {
    std::abort();
  }
  if (!parsed) {
    if (error.empty())
      std::abort();
    return 0;
  }
  if (!parsed->is_object() || depth_of(*parsed) > max_depth)
    std::abort();
  try {
    auto text = parsed->dump();
    if (json::parse(text) != *parsed)
      std::abort();
    check_fields(*parsed);
  } catch (...) {
    std::abort();
  }
  return 0;
}

#include "messages/errors.hpp"

#include <caf/message.hpp>
#include <caf/sec.hpp>

namespace sbm {

const char* to_string(errc code) {
  switch (code) {
    case errc::none: return "none";
    case errc::invalid_argument: return "invalid_argument";
    case errc::not_found: return "not_found";
    case errc::conflict: return "conflict";
    case errc::unavailable: return "unavailable";
    case errc::overloaded: return "overloaded";
    case errc::poison_message: return "poison_message";
    case errc::stale_owner: return "stale_owner";
    case errc::internal: return "internal";
    case errc::schema_too_new: return "schema_too_new";
    case errc::outcome_unknown: return "outcome_unknown";
    case errc::duplicate: return "duplicate";
    case errc::deadline_exceeded: return "deadline_exceeded";
    case errc::in_progress: return "in_progress";
    case errc::key_reused: return "key_reused";
    case errc::too_large: return "too_large";
    case errc::moving: return "moving";
  }
  return "unknown";
}

caf::error make_error(errc code, error_info info) {
  return caf::error{static_cast<std::uint8_t>(code), error_category,
                    caf::make_message(std::move(info))};
}

caf::error make_error(errc code, std::string detail) {
  return make_error(code, error_info{std::move(detail), 0, -1});
}

caf::error make_error(errc code, std::string detail, std::chrono::milliseconds retry_after) {
  return make_error(code, error_info{std::move(detail), retry_after.count(), -1});
}

caf::error deadline_passed() {
  return make_error(errc::deadline_exceeded, "dropped unstarted: its deadline had passed");
}

errc code_of(const caf::error& e) {
  if (!e)
    return errc::none;
  if (e.category() != error_category)
    return errc::internal;
  return static_cast<errc>(e.code());
}

error_info info_of(const caf::error& e) {
  if (e.category() != error_category || e.context().empty())
    return {};
  if (e.context().match_elements<error_info>())
    return e.context().get_as<error_info>(0);
  return {};
}

std::string detail_of(const caf::error& e) {
  return info_of(e).detail;
}

std::optional<std::chrono::milliseconds> retry_after_of(const caf::error& e) {
  auto ms = info_of(e).retry_after_ms;
  if (ms <= 0)
    return std::nullopt;
  return std::chrono::milliseconds{ms};
}

bool retry_safe(const caf::error& e) {
  return code_of(e) == errc::unavailable && info_of(e).retry_safe;
}

bool outcome_unknown(const caf::error& e) {
  if (e.category() == error_category)
    return code_of(e) == errc::outcome_unknown;
  // CAF's own: the answer did not come back, so whatever was asked may have happened.
  return e.category() == caf::atom("system") &&
         (e == caf::sec::request_timeout || e == caf::sec::request_receiver_down);
}

}  // namespace sbm

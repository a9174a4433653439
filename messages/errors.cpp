#include "messages/errors.hpp"

#include <caf/message.hpp>

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
  }
  return "unknown";
}

caf::error make_error(errc code, std::string detail) {
  return caf::error{static_cast<std::uint8_t>(code), error_category,
                    caf::make_message(std::move(detail))};
}

errc code_of(const caf::error& e) {
  if (!e)
    return errc::none;
  if (e.category() != error_category)
    return errc::internal;
  return static_cast<errc>(e.code());
}

std::string detail_of(const caf::error& e) {
  if (e.category() != error_category || e.context().empty())
    return {};
  if (e.context().match_elements<std::string>())
    return e.context().get_as<std::string>(0);
  return {};
}

}  // namespace sbm

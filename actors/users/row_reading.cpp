#include "actors/users/row_reading.hpp"

#include <cerrno>
#include <cstdlib>
#include <stdexcept>

namespace sbm::users {

std::int64_t to_int(const caf::optional<std::string>& text) {
  if (!text)
    throw std::runtime_error("unexpected NULL");
  errno = 0;
  char* end = nullptr;
  const long long v = std::strtoll(text->c_str(), &end, 10);
  if (text->empty() || *end != '\0' || errno == ERANGE)
    throw std::runtime_error("not an integer");
  return v;
}

bool to_bool(const caf::optional<std::string>& text) {
  if (text && *text == "t")
    return true;
  if (text && *text == "f")
    return false;
  throw std::runtime_error("not a boolean");
}

std::string to_text(const caf::optional<std::string>& text) {
  return text ? *text : std::string{};
}

}  // namespace sbm::users

#include "messages/errors.hpp"

namespace sbm::users {

caf::error db_failure(const caf::error& e) {
  if (e.category() == error_category)
    return e;
  return make_error(errc::unavailable, "the database did not answer in time");
}

}  // namespace sbm::users

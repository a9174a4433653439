#pragma once
// Reading PostgreSQL's text results into typed fields; a value that cannot be read throws
// std::runtime_error (the callers turn it into errc::internal: the row is corrupt, not the request).
#include <caf/optional.hpp>

#include <cstdint>
#include <string>

namespace sbm::users {

std::int64_t to_int(const caf::optional<std::string>& text);
bool to_bool(const caf::optional<std::string>& text);
std::string to_text(const caf::optional<std::string>& text);

}  // namespace sbm::users

namespace caf {
class error;
}

namespace sbm::users {

// A failure of the postgres actor as the caller should see it: SBM errors pass through, anything
// else (a timeout, a dead actor) means the database did not answer.
caf::error db_failure(const caf::error& e);

}  // namespace sbm::users

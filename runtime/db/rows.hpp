#pragma once
// Reading PostgreSQL's text results (db_row) into typed fields, and turning a failed database
// request into the error a caller should see. Every family reads rows the same way: a value that
// cannot be read throws std::runtime_error naming the column (never its content, which may be
// patient data); callers turn that into errc::internal, since the row is corrupt, not the request.
#include <cstddef>
#include <cstdint>
#include <string>

#include "messages/connections.hpp"

namespace caf {
class error;
}

namespace sbm::db {

std::int64_t int_column(const db_row& row, std::size_t index);
std::uint64_t unsigned_column(const db_row& row, std::size_t index);
double double_column(const db_row& row, std::size_t index);
bool bool_column(const db_row& row, std::size_t index);
std::string text_column(const db_row& row, std::size_t index);            // NULL reads as ""
const std::string& required_text(const db_row& row, std::size_t index);   // NULL throws

// SBM errors (unavailable, conflict, ...) pass through; anything else (a timeout, a dead actor)
// means the database did not answer, so the caller may retry: errc::unavailable.
caf::error failure(const caf::error& e);

}  // namespace sbm::db

#pragma once
// Reading PostgreSQL's text results (db_row) into typed fields, and turning a failed database
// request into the error a caller should see. Every family reads rows the same way: a value that
// cannot be read throws std::runtime_error naming the column (never its content, which may be
// patient data); callers turn that into errc::internal, since the row is corrupt, not the request.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "messages/connections.hpp"
#include "messages/context.hpp"

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

// A text[] as a bound parameter (PostgreSQL's array literal, each element quoted), and back from
// a column selected as array_to_json(x)::text (NULL reads as an empty list).
std::string text_array_param(const std::vector<std::string>& items);
std::vector<std::string> text_array_column(const db_row& row, std::size_t index);
// The same for numbers (array_to_json over a double precision array); NULL reads as empty.
std::vector<double> number_array_column(const db_row& row, std::size_t index);

// The one way a family applies a client scope in its SQL: bind scope_param as $n and add
// scope_clause("client_id", n) to the WHERE. An unlimited scope binds NULL and admits every row;
// a limited one admits only its clients' rows (an empty list admits none).
caf::optional<std::string> scope_param(const client_scope& scope);
std::string scope_clause(const std::string& column, int n);

// SBM errors (unavailable, conflict, ...) pass through; anything else (a timeout, a dead actor)
// means the database did not answer, so the caller may retry: errc::unavailable.
caf::error failure(const caf::error& e);

}  // namespace sbm::db

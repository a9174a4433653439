#include "runtime/db/rows.hpp"

#include <caf/error.hpp>
#include <caf/sec.hpp>

#include <cerrno>
#include <cstdlib>
#include <stdexcept>

#include "messages/errors.hpp"

namespace sbm::db {

namespace {

[[noreturn]] void unreadable(std::size_t index, const char* what) {
  throw std::runtime_error("column " + std::to_string(index) + " " + what);
}

}  // namespace

const std::string& required_text(const db_row& row, std::size_t index) {
  if (index >= row.size() || !row[index])
    unreadable(index, "is missing or NULL");
  return *row[index];
}

std::int64_t int_column(const db_row& row, std::size_t index) {
  const std::string& text = required_text(row, index);
  errno = 0;
  char* end = nullptr;
  const long long value = std::strtoll(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || errno == ERANGE)
    unreadable(index, "is not an integer");
  return value;
}

std::uint64_t unsigned_column(const db_row& row, std::size_t index) {
  const std::string& text = required_text(row, index);
  errno = 0;
  char* end = nullptr;
  const unsigned long long value = std::strtoull(text.c_str(), &end, 10);
  if (text.empty() || text[0] == '-' || *end != '\0' || errno == ERANGE)
    unreadable(index, "is not an unsigned integer");
  return value;
}

double double_column(const db_row& row, std::size_t index) {
  const std::string& text = required_text(row, index);
  errno = 0;
  char* end = nullptr;
  const double value = std::strtod(text.c_str(), &end);
  if (text.empty() || *end != '\0' || errno == ERANGE)
    unreadable(index, "is not a number");
  return value;
}

bool bool_column(const db_row& row, std::size_t index) {
  const std::string& text = required_text(row, index);
  if (text == "t" || text == "true")
    return true;
  if (text == "f" || text == "false")
    return false;
  unreadable(index, "is not a boolean");
}

std::string text_column(const db_row& row, std::size_t index) {
  if (index >= row.size())
    unreadable(index, "is missing");
  return row[index] ? *row[index] : std::string{};
}

caf::error failure(const caf::error& e) {
  if (e.category() == error_category)
    return e;
  auto what = e.category() == caf::atom("system") ? caf::to_string(static_cast<caf::sec>(e.code()))
                                                  : caf::to_string(e);
  return make_error(errc::unavailable, "the database did not answer (" + what + ")");
}

}  // namespace sbm::db

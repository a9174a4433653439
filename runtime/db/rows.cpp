#include "runtime/db/rows.hpp"

#include <caf/error.hpp>
#include <caf/sec.hpp>
#include <nlohmann/json.hpp>

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

std::string text_array_param(const std::vector<std::string>& items) {
  std::string out = "{";
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i) out += ',';
    out += '"';
    for (char c : items[i]) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  return out + "}";
}

std::vector<std::string> text_array_column(const db_row& row, std::size_t index) {
  std::vector<std::string> out;
  if (index >= row.size() || !row[index])
    return out;
  auto parsed = nlohmann::json::parse(*row[index], nullptr, false);
  if (!parsed.is_array())
    throw std::runtime_error("column " + std::to_string(index) + " is not a text array");
  for (const auto& v : parsed) {
    if (!v.is_string())
      throw std::runtime_error("column " + std::to_string(index) + " is not a text array");
    out.push_back(v.get<std::string>());
  }
  return out;
}

std::vector<double> number_array_column(const db_row& row, std::size_t index) {
  std::vector<double> out;
  if (index >= row.size() || !row[index])
    return out;
  // strtod over the JSON text: exact for PostgreSQL's shortest round-trip digits, and an activation
  // reads 50 of them without building a JSON tree first.
  const std::string& text = *row[index];
  const char* p = text.c_str();
  if (*p++ != '[')
    unreadable(index, "is not a number array");
  if (*p == ']' && p[1] == '\0')
    return out;
  for (;;) {
    errno = 0;
    char* end = nullptr;
    const double value = std::strtod(p, &end);
    if (end == p || errno == ERANGE)
      unreadable(index, "is not a number array");
    out.push_back(value);
    p = end;
    if (*p == ',') {
      ++p;
      continue;
    }
    if (*p == ']' && p[1] == '\0')
      return out;
    unreadable(index, "is not a number array");
  }
}

caf::optional<std::string> scope_param(const client_scope& scope) {
  if (!scope.limited)
    return caf::none;
  return text_array_param(scope.client_ids);
}

std::string scope_clause(const std::string& column, int n) {
  auto p = "$" + std::to_string(n) + "::text[]";
  return "(" + p + " IS NULL OR " + column + " = ANY(" + p + "))";
}

}  // namespace sbm::db

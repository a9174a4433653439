#include "gateway/request_id.hpp"

#include <random>

namespace sbm::gateway {

namespace {

// Appends v as `digits` lowercase hex digits.
void append_hex(std::string& out, std::uint64_t v, int digits) {
  static const char* digits_of = "0123456789abcdef";
  const auto at = out.size();
  out.resize(at + static_cast<std::size_t>(digits), '0');
  for (int i = digits - 1; i >= 0; --i, v >>= 4)
    out[at + static_cast<std::size_t>(i)] = digits_of[v & 0xf];
}

}  // namespace

bool sane_request_id(std::string_view id) {
  if (id.empty() || id.size() > 128)
    return false;
  for (char c : id) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '~' || c == ':' || c == '-';
    if (!ok)
      return false;
  }
  return true;
}

request_id_generator::request_id_generator() {
  std::random_device rd;
  append_hex(prefix_, (static_cast<std::uint64_t>(rd()) << 32) ^ rd(), 16);
  prefix_ += '-';
}

std::string request_id_generator::next() {
  // Built in one allocation: this runs on the HTTP thread for every request.
  std::string out;
  out.reserve(prefix_.size() + 8);
  out += prefix_;
  append_hex(out, counter_.fetch_add(1, std::memory_order_relaxed), 8);
  return out;
}

std::string request_id_for(const std::string* client_value, request_id_generator& ids) {
  if (client_value && sane_request_id(*client_value))
    return *client_value;
  return ids.next();
}

std::string with_request_id(std::string body, std::string_view request_id) {
  if (body.size() < 2 || body.front() != '{' || body.back() != '}')
    return body;  // not one of our objects: left as it is
  std::string member = "\"request_id\":\"" + std::string{request_id} + "\"";
  if (body.size() > 2)
    member.insert(member.begin(), ',');
  body.insert(body.size() - 1, member);
  return body;
}

}  // namespace sbm::gateway

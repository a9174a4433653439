#include "gateway/access.hpp"

#include <algorithm>

#include <array>

namespace sbm::gateway {

namespace {

constexpr std::array<std::string_view, 12> all_permissions{
  permission::speakers_read, permission::speakers_write, permission::buckets_pin,
  permission::quality_write, permission::schedule_read,  permission::reports_write,
  permission::reports_read,  permission::drafts_correct, permission::audit_read,
  permission::users_admin,   permission::ops_read,       permission::cluster_admin};

// The bit of permission `p`, or -1 when it is none.
int bit_of(std::string_view p) {
  for (std::size_t i = 0; i < all_permissions.size(); ++i)
    if (all_permissions[i] == p)
      return static_cast<int>(i);
  return -1;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
    s.remove_suffix(1);
  return s;
}

}  // namespace

bool permission_set::has(std::string_view p) const {
  const int bit = bit_of(p);
  return bit >= 0 && (bits_ >> bit & 1u) != 0;
}

bool permission_set::insert(std::string_view p) {
  const int bit = bit_of(p);
  if (bit < 0)
    return false;
  bits_ |= 1u << bit;
  return true;
}

permission_set permission_set::all() {
  static_assert(all_permissions.size() <= 32, "one bit per permission");
  permission_set out;
  for (auto p : all_permissions)
    out.insert(p);
  return out;
}

std::variant<service_allow_list, std::string> parse_service_allow_list(std::string_view text) {
  service_allow_list out;
  while (!trim(text).empty()) {
    auto semi = text.find(';');
    auto entry = trim(text.substr(0, semi));
    text = semi == std::string_view::npos ? std::string_view{} : text.substr(semi + 1);
    if (entry.empty())
      continue;
    auto eq = entry.find('=');
    auto name = trim(entry.substr(0, eq));
    if (name.empty() || eq == std::string_view::npos)
      return "service allow-list entry '" + std::string{entry} +
             "' must look like name=perm+perm";
    auto& perms = out[std::string{name}];
    auto list = entry.substr(eq + 1);
    while (!list.empty()) {
      auto plus = list.find('+');
      auto p = trim(list.substr(0, plus));
      list = plus == std::string_view::npos ? std::string_view{} : list.substr(plus + 1);
      if (p.empty())
        continue;
      if (!perms.insert(p))
        return "service '" + std::string{name} + "' names unknown permission '" + std::string{p} + "'";
    }
  }
  return out;
}

std::optional<permission_set> role_permissions(std::string_view role) {
  using namespace permission;
  static const permission_set qa = [] {
    permission_set s;
    for (auto p : {speakers_read, quality_write, schedule_read, reports_write, reports_read,
                   drafts_correct})
      s.insert(p);
    return s;
  }();
  static const permission_set lead = [] {
    permission_set s = qa;
    for (auto p : {buckets_pin, speakers_write, audit_read})
      s.insert(p);
    return s;
  }();
  if (role == "qa")
    return qa;
  if (role == "qa_lead")
    return lead;
  // Made once: all() walks the whole table, and an admin's principal is made per request.
  static const permission_set every = permission_set::all();
  if (role == "admin")
    return every;
  return std::nullopt;
}

std::optional<principal> make_principal(const std::string& subject, const std::string& role,
                                        const std::string& service_id,
                                        const std::vector<std::string>& claimed_permissions,
                                        const service_allow_list& services, std::string& why) {
  principal p;
  p.subject = subject;
  if (!service_id.empty()) {
    auto i = services.find(service_id);
    if (i == services.end()) {
      why = "service '" + service_id + "' is not on the allow-list";
      return std::nullopt;
    }
    p.service_id = service_id;
    // A token may ask for less than the allow-list grants, never more.
    for (const auto& c : claimed_permissions)
      if (i->second.has(c))
        p.permissions.insert(c);
    if (claimed_permissions.empty())
      p.permissions = i->second;
    return p;
  }
  auto perms = role_permissions(role);
  if (!perms) {
    why = role.empty() ? "the token carries neither a role nor a service_id"
                       : "unknown role '" + role + "'";
    return std::nullopt;
  }
  p.role = role;
  p.permissions = *perms;
  return p;
}

client_scope narrow_scope(const client_scope& registered, bool token_limits,
                          const std::vector<std::string>& token_clients) {
  if (!token_limits)
    return registered;
  client_scope out;
  out.limited = true;
  for (const auto& c : token_clients)
    if (registered.admits(c))
      out.client_ids.push_back(c);
  std::sort(out.client_ids.begin(), out.client_ids.end());
  out.client_ids.erase(std::unique(out.client_ids.begin(), out.client_ids.end()), out.client_ids.end());
  return out;
}

}  // namespace sbm::gateway

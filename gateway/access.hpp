#pragma once
// Who may do what. Users carry a role; services carry a service_id that must be on the allow-list,
// and get only the permissions the allow-list grants them (their token's claim can only narrow it).
#include <map>
#include <optional>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "messages/context.hpp"

namespace sbm::gateway {

namespace permission {
inline constexpr std::string_view speakers_read = "speakers.read";
inline constexpr std::string_view speakers_write = "speakers.write";
inline constexpr std::string_view buckets_pin = "buckets.pin";
inline constexpr std::string_view quality_write = "quality.write";
inline constexpr std::string_view schedule_read = "schedule.read";
inline constexpr std::string_view reports_write = "reports.write";
inline constexpr std::string_view reports_read = "reports.read";
inline constexpr std::string_view drafts_correct = "drafts.correct";
inline constexpr std::string_view audit_read = "audit.read";
inline constexpr std::string_view users_admin = "users.admin";
// The operator's view of the node (GET /v1/status): dependency detail, later breakers, pools,
// queues and membership. Admins hold it; a monitoring service may be granted it.
inline constexpr std::string_view ops_read = "ops.read";
// Changing the cluster (drain a node): admins only.
inline constexpr std::string_view cluster_admin = "cluster.admin";
}  // namespace permission

// Which of the permissions above a principal holds, one bit each: a principal is built, copied
// and checked on every request, and a std::set of strings cost a tenth of answering a GET.
class permission_set {
 public:
  // Unknown names are never held.
  bool has(std::string_view p) const;
  // False (and nothing added) for a name that is not a permission.
  bool insert(std::string_view p);
  bool empty() const { return bits_ == 0; }
  // Every permission, in the order of the table.
  static permission_set all();
  friend bool operator==(permission_set a, permission_set b) { return a.bits_ == b.bits_; }

 private:
  std::uint32_t bits_ = 0;
};

struct principal {
  std::string subject;
  std::string role;        // qa | qa_lead | admin; empty for services
  std::string service_id;  // empty for users
  permission_set permissions;
  // The clients this principal may reach: the registered user's limit, narrowed by the token's
  // `client_ids` claim (narrow_scope). Unlimited for the vendor's own staff.
  client_scope scope{};

  bool may(std::string_view p) const { return permissions.has(p); }
  std::string describe() const { return service_id.empty() ? subject : "service:" + service_id; }
};

// service_id -> granted permissions, parsed from "pipeline=speakers.read+drafts.correct;other=..."
using service_allow_list = std::map<std::string, permission_set, std::less<>>;

// The allow-list, or the reason it cannot be parsed (unknown permission, empty name, ...).
std::variant<service_allow_list, std::string> parse_service_allow_list(std::string_view text);

std::optional<permission_set> role_permissions(std::string_view role);

// Builds the principal from verified claims; nullopt with `why` when the token names an unknown
// role, or a service that is not on the allow-list.
std::optional<principal> make_principal(const std::string& subject, const std::string& role,
                                        const std::string& service_id,
                                        const std::vector<std::string>& claimed_permissions,
                                        const service_allow_list& services, std::string& why);

// The scope a request acts with: what the user is registered with (unlimited when unknown or
// unlimited there), cut down to the token's claim when it has one. A claim naming a client outside
// the registered scope does not add it: the result is the intersection (possibly no client).
client_scope narrow_scope(const client_scope& registered, bool token_limits,
                          const std::vector<std::string>& token_clients);

}  // namespace sbm::gateway

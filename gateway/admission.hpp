#pragma once
// Who gets in, after the front door (gateway/front_door.hpp) verified the bearer token and counted
// the client's request rate on the HTTP thread: the token's verdict (401 +
// WWW-Authenticate), the principal itself (403 for an unknown role or a service off the
// allow-list), the standing of the registered user the token's `sub` names, for users and
// services alike (403 when disabled; for a user the registered role replaces the token's), and the
// route's permission (403). Every 401 and 403 is audited as a refusal; requests
// refused for their rate are not, so an attacker cannot write to the audit log faster than the
// limiter lets them send.
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "gateway/access.hpp"
#include "gateway/user_cache.hpp"
#include "messages/http.hpp"

namespace sbm::gateway {

struct gateway_context;

using admitted = std::function<void(const http_request&, const principal&)>;

// Answers the request itself when refusing; otherwise calls `next`, at once or (when the user's
// standing is not cached) after the users actor answers.
void admit(gateway_context& ctx, const http_request& req, std::string_view permission,
           admitted next);

// The steps of admission that need no actor, shared by the lanes and the HTTP thread's reads of
// published views (gateway_pipeline::hold), so both admit by the same rules.
// The principal a genuine token names (its scope from the token's claim alone), or nullopt with
// `why` (403: an unknown role, a service off the allow-list).
std::optional<principal> token_principal(const token_verdict& token,
                                         const service_allow_list& services, std::string& why);

// The registered standing (`standing.known` false: the token decides alone) and the route's
// permission applied to `who`: who acts, and an empty refusal; or who was refused and why (403).
struct standing_verdict {
  principal who;
  std::string refusal;
};
standing_verdict apply_standing(principal who, const user_standing_entry& standing,
                                std::string_view permission, const service_allow_list& services);

}  // namespace sbm::gateway

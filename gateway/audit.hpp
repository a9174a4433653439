#pragma once
// What the gateway puts on record in the audit log (users.audit_log, through the audit actor):
// successes that must be recorded (bucket pins and unpins, and verification submits once they
// exist: call audit_success with audit_action::verification_submit after the submit's commit),
// and refused requests (401/403), which go out coalesced and best effort. User changes are
// audited by the users actor in the same statement as the change.
#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/access.hpp"
#include "messages/http.hpp"
#include "messages/users.hpp"

namespace sbm::gateway {

struct gateway_context;

// Client-controlled text made safe to store and show: invalid UTF-8 and control characters become
// '?', and it is cut (on a character boundary) to at most max_bytes.
std::string printable(std::string_view text, std::size_t max_bytes);

// The authenticated caller as the audit log names them.
audit_origin origin_of(const principal& who, const http_request& req);

// Records a refused request: `who` when the token was valid (403), nullptr when not (401).
// Never waits and never fails the request.
void audit_refusal(const gateway_context& ctx, const http_request& req, const principal* who,
                   std::uint16_t status, std::string_view reason);

// Appends a success record and calls `then` once it is committed, or once appending failed (the
// action itself already happened and is reported; the failure is logged as an error).
void audit_success(gateway_context& ctx, const http_request& req, const principal& who,
                   std::string_view action, std::string target, std::uint16_t status,
                   const nlohmann::json& detail, std::function<void()> then);

// A read that shows decrypted notes (GET /v1/error-reports/{id}, lists, the answer to a verdict):
// before the answer goes out, one report.notes_read row per client whose notes it shows, naming
// the report ids in its detail (a page of 500 from one client is one row). `then(true)` once every
// row is committed; `then(false)` when one could not be written: the caller answers 503 and shows
// nothing, so no note is read off the record. Ids of reports without notes are not named; with
// none at all nothing is written and `then(true)` runs at once.
struct notes_shown {
  std::string client_id;
  std::vector<std::int64_t> report_ids;
};
void audit_notes_read(gateway_context& ctx, const http_request& req, const principal& who,
                      std::vector<notes_shown> shown, std::function<void(bool)> then);

}  // namespace sbm::gateway

#pragma once
// Contracts of the users family: registered users (role, disabled) and the append-only audit log
// of who did what, when, from where. Callers reach both only through these handles.
#include <caf/meta/type_name.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "messages/atoms.hpp"
#include "messages/context.hpp"

namespace sbm {

struct user_record {
  std::string id;
  std::string role;  // qa | qa_lead | admin
  std::string display_name;
  bool disabled = false;
  std::int64_t created_at_ms = 0;
  std::int64_t updated_at_ms = 0;
  client_scope scope{};  // the clients this user may reach; unlimited by default
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, user_record& x) {
  return f(caf::meta::type_name("user_record"), x.id, x.role, x.display_name, x.disabled,
           x.created_at_ms, x.updated_at_ms, x.scope);
}

// Who asks for a change; recorded with it in the audit log.
struct audit_origin {
  std::string actor;       // the user id, or "service:<service_id>"
  std::string actor_kind;  // user | service | anonymous
  std::string peer;        // the client's address
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, audit_origin& x) {
  return f(caf::meta::type_name("audit_origin"), x.actor, x.actor_kind, x.peer);
}

struct user_creation {
  user_record user;  // timestamps ignored
  audit_origin by;
  request_context ctx;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, user_creation& x) {
  return f(caf::meta::type_name("user_creation"), x.user, x.by, x.ctx);
}

// Only the flagged fields change.
struct user_update {
  std::string id;
  bool set_role = false;
  std::string role;
  bool set_display_name = false;
  std::string display_name;
  bool set_disabled = false;
  bool disabled = false;
  bool set_scope = false;
  client_scope scope{};  // limited = false lifts the limit
  audit_origin by;
  request_context ctx;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, user_update& x) {
  return f(caf::meta::type_name("user_update"), x.id, x.set_role, x.role, x.set_display_name,
           x.display_name, x.set_disabled, x.disabled, x.set_scope, x.scope, x.by, x.ctx);
}

// What the gateway needs to admit a token's subject.
struct user_standing {
  std::string id;
  bool known = false;  // registered; an unknown subject acts on its token alone
  bool disabled = false;
  std::string role;
  client_scope scope{};  // the registered limit; a token may narrow it, never widen it
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, user_standing& x) {
  return f(caf::meta::type_name("user_standing"), x.id, x.known, x.disabled, x.role, x.scope);
}

// One row of users.audit_log.
struct audit_record {
  std::int64_t id = 0;     // assigned by the database
  std::int64_t at_ms = 0;  // assigned by the database
  std::string actor;       // user id, "service:<id>", or "anonymous"
  std::string actor_kind;  // user | service | anonymous
  std::string action;      // one of audit_action
  std::string target;      // what was acted on: a speaker id, a user id, a route
  std::string outcome;     // success | refused
  std::int32_t status = 0; // the HTTP status the client got
  std::string peer;        // the client's address
  std::string detail;      // a JSON object as text; "{}" when there is nothing more to say
  // Set by a family that delivers the record from its outbox (at least once): the log keeps one
  // row per key, so a redelivery appends nothing. Empty: every append is a new row.
  std::string source_key;
  std::string client_id{};  // the client the row concerns; empty when none
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, audit_record& x) {
  return f(caf::meta::type_name("audit_record"), x.id, x.at_ms, x.actor, x.actor_kind, x.action,
           x.target, x.outcome, x.status, x.peer, x.detail, x.source_key, x.client_id);
}

namespace audit_action {
inline constexpr std::string_view bucket_pin = "bucket.pin";
inline constexpr std::string_view bucket_unpin = "bucket.unpin";
inline constexpr std::string_view user_create = "user.create";
inline constexpr std::string_view user_update = "user.update";
// The verification family appends this (through audit_atom, after its commit) when verification
// submit exists; nothing sends it yet.
inline constexpr std::string_view verification_submit = "verification.submit";
inline constexpr std::string_view request_refused = "request.refused";
// Decrypted notes were shown: one row per answer and client, naming the report ids (detail).
inline constexpr std::string_view notes_read = "report.notes_read";
// Written instead of refusals that did not fit the coalescing window (see spawn_audit).
inline constexpr std::string_view refusals_dropped = "audit.refusals_dropped";
}  // namespace audit_action

// Keyset paging, newest first: the next page is the one with ids below `before_id`.
struct audit_query {
  std::string actor;   // empty = any
  std::string action;  // empty = any
  bool has_from = false;
  std::int64_t from_ms = 0;  // inclusive
  bool has_to = false;
  std::int64_t to_ms = 0;    // exclusive
  std::int64_t before_id = 0;  // 0 = from the newest
  std::uint32_t limit = 100;
  client_scope scope{};  // a limited reader sees only rows of its clients
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, audit_query& x) {
  return f(caf::meta::type_name("audit_query"), x.actor, x.action, x.has_from, x.from_ms, x.has_to,
           x.to_ms, x.before_id, x.limit, x.scope);
}

struct audit_page {
  std::vector<audit_record> items;
  std::int64_t next_before_id = 0;  // 0 = no further page
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, audit_page& x) {
  return f(caf::meta::type_name("audit_page"), x.items, x.next_before_id);
}

// register: 409 (errc::conflict) when the id exists; update/get: errc::not_found when it does not.
// Creations and updates are audited in the same transaction as the change.
using users_actor = caf::typed_actor<
  caf::replies_to<register_atom, user_creation>::with<user_record>,
  caf::replies_to<update_atom, user_update>::with<user_record>,
  caf::replies_to<get_atom, std::string>::with<user_record>,
  caf::replies_to<check_atom, std::string>::with<user_standing>,
  caf::reacts_to<flush_atom>>;  // purges expired Idempotency-Keys (its own hourly timer sends it)

// audit: appends one record and answers after the commit (for successes that must be on record).
// refused: best effort, coalesced and bounded (for refused requests, which an attacker controls).
// flush: writes pending refusals now (the actor also does it on its own timer).
using audit_actor = caf::typed_actor<
  caf::replies_to<audit_atom, audit_record>::with<bool>,
  caf::reacts_to<refused_atom, audit_record>,
  caf::reacts_to<flush_atom>,
  caf::replies_to<list_atom, audit_query>::with<audit_page>>;

}  // namespace sbm

#pragma once
// The users family's port to its durable state, in the family's words: registered users (each
// change on record with its audit row, in one commit) and the append-only audit log. The actors
// never hold SQL: store_postgres.cpp is the only file with it; tests/sim/ has an in-memory store.
// Both adapters enforce what guards correctness: one answer per Idempotency-Key (a retry of a
// change that committed gets the user as that change left it), a user id registered once, an
// audit record delivered under a source_key kept once.
//
// Calls are asynchronous; each completion runs in the calling actor (runtime/db/store_link.hpp).
#include <caf/optional.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "actors/users/core/refusal_coalescer.hpp"
#include "messages/users.hpp"
#include "runtime/db/store_link.hpp"

namespace sbm::users {

using db::completion;

class store {
 public:
  virtual ~store() = default;
  // The user as created; errc::duplicate when the id exists. Under a key: the stored answer of a
  // committed retry, key_reused for another request, in_progress while the first one runs,
  // outcome_unknown when the key cannot be checked after a refusal.
  virtual void create_user(const user_creation& c, completion<user_record> done) = 0;
  // The user as updated (only flagged fields change); errc::not_found when there is none. Keys
  // as create_user.
  virtual void update_user(const user_update& c, completion<user_record> done) = 0;
  virtual void user(const std::string& id, completion<caf::optional<user_record>> done) = 0;
  virtual void standing(const std::string& id, completion<user_standing> done) = 0;
  virtual void purge_keys(std::chrono::seconds retention, completion<bool> done) = 0;

  // One audit row, committed before `true`; with a source_key, once per key.
  virtual void append(const audit_record& r, completion<bool> done) = 0;
  // One window of coalesced refusals in one commit.
  virtual void append_refusals(const refusal_batch& batch, std::chrono::milliseconds window, completion<bool> done) = 0;
  // Newest first, at most `limit` (clamped by the caller) with the cursor of the next page.
  virtual void list_audit(const audit_query& q, std::uint32_t limit, completion<audit_page> done) = 0;
};

using store_factory = std::function<std::unique_ptr<store>(const db::store_link&)>;

std::unique_ptr<store> make_postgres_store(const db::store_link& link, std::chrono::seconds idempotency_retention);

}  // namespace sbm::users

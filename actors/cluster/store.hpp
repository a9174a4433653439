#pragma once
// The cluster family's port to its durable state: node leases, judged by the store's clock, and
// the fence of speaker ownership by lease epoch, and the singletons (once-per-cluster work) leases hold. The membership actor never holds SQL:
// store_postgres.cpp is the only file with it; tests/sim/ has an in-memory store for simulation,
// and one contract suite runs both (epochs only increase, expiry by the store's clock, the fence
// refusing a stale epoch). Calls are asynchronous (the adapter runs statements through the
// PostgreSQL connection actor), so each takes a completion.
#include <caf/expected.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "messages/connections.hpp"

namespace sbm::cluster {

template <class T>
using completion = std::function<void(caf::expected<T>)>;

// A live lease as the database sees it now.
struct lease {
  std::int64_t epoch = 0;
  std::string address;
  std::string node_name;
  std::int64_t age_ms = 0;         // since its last renewal
  std::int64_t expires_in_ms = 0;  // until it lapses unless renewed
  std::int64_t speakers = 0;       // ownership rows holding its epoch
};

class store {
 public:
  virtual ~store() = default;
  // A new lease with the next epoch, live for `ttl` from now.
  virtual void acquire(const std::string& address, const std::string& node_name,
                       std::chrono::milliseconds ttl, completion<lease> done) = 0;
  // Extends a live lease to now + ttl; errc::stale_owner when it has lapsed (it is never revived:
  // the node takes a new epoch).
  virtual void renew(std::int64_t epoch, std::chrono::milliseconds ttl, completion<lease> done) = 0;
  // Every live lease, by epoch.
  virtual void live(completion<std::vector<lease>> done) = 0;
  // Ends a lease now (a clean stop), so its speakers can move without waiting for the expiry.
  virtual void release(std::int64_t epoch, completion<bool> done) = 0;
  // The fence every durable speaker write of a clustered node passes (PostgreSQL runs the same
  // function inside the write's transaction): true when the writer's lease is live and the speaker
  // is its own, owned by nobody, or owned by a lapsed lease (then taken over); errc::stale_owner
  // when the writer's lease is not live or the speaker is another live lease's.
  virtual void fence_speaker(const std::string& speaker_id, std::int64_t epoch, completion<bool> done) = 0;
  // Work that runs once per cluster is a named singleton held by one live lease: true when `epoch`
  // holds `name` after the call (it held it, or took it from nobody or from a lease that is not
  // live), false while another live lease holds it; errc::stale_owner when `epoch` is not live.
  virtual void hold_singleton(const std::string& name, std::int64_t epoch, completion<bool> done) = 0;
  // Gives back every singleton `epoch` holds (a drain), so another member takes them at once.
  virtual void release_singletons(std::int64_t epoch, completion<bool> done) = 0;
};

// How the PostgreSQL adapter reaches the database: one statement on the connection actor.
using query_runner = std::function<void(db_statement, completion<db_rows>)>;

std::unique_ptr<store> make_postgres_store(query_runner query);

}  // namespace sbm::cluster

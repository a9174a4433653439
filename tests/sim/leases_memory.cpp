#include "tests/sim/leases_memory.hpp"

#include <utility>
#include <vector>

#include "messages/errors.hpp"
#include "tests/sim/memory_server.hpp"

namespace sbm::sim {

namespace {

using namespace sbm::cluster;
using tables = lease_tables;

bool live_at(const lease_tables::row& r, std::int64_t now) { return r.expires_ms > now; }

lease view(std::int64_t epoch, const lease_tables::row& r, std::int64_t now) {
  return {epoch, r.address, r.node_name, now - r.renewed_ms, r.expires_ms - now};
}

caf::error lapsed() { return make_error(errc::stale_owner, "the node's lease has lapsed"); }

class memory_store final : public store {
 public:
  memory_store(db::store_link link, caf::actor server, std::shared_ptr<tables> t)
    : link_{std::move(link)}, server_{std::move(server)}, t_{std::move(t)} {}

  void acquire(const std::string& address, const std::string& node_name, std::chrono::milliseconds ttl,
               completion<lease> done) override {
    run<lease>(std::move(done), [address, node_name, ttl](tables& t, std::int64_t now) {
      const auto epoch = t.next_epoch++;
      auto& r = t.leases[epoch] = {address, node_name, now, now + ttl.count()};
      return caf::expected<lease>{view(epoch, r, now)};
    });
  }

  void renew(std::int64_t epoch, std::chrono::milliseconds ttl, completion<lease> done) override {
    run<lease>(std::move(done), [epoch, ttl](tables& t, std::int64_t now) -> caf::expected<lease> {
      auto it = t.leases.find(epoch);
      if (it == t.leases.end() || !live_at(it->second, now)) return lapsed();
      it->second.renewed_ms = now;
      it->second.expires_ms = now + ttl.count();
      return view(epoch, it->second, now);
    });
  }

  void live(completion<std::vector<lease>> done) override {
    run<std::vector<lease>>(std::move(done), [](tables& t, std::int64_t now) {
      std::vector<lease> out;
      for (const auto& [epoch, r] : t.leases)
        if (live_at(r, now)) out.push_back(view(epoch, r, now));
      return caf::expected<std::vector<lease>>{std::move(out)};
    });
  }

  void release(std::int64_t epoch, completion<bool> done) override {
    run<bool>(std::move(done), [epoch](tables& t, std::int64_t now) {
      auto it = t.leases.find(epoch);
      if (it == t.leases.end() || !live_at(it->second, now)) return caf::expected<bool>{false};
      it->second.expires_ms = now;
      return caf::expected<bool>{true};
    });
  }

  void fence_speaker(const std::string& speaker_id, std::int64_t epoch, completion<bool> done) override {
    run<bool>(std::move(done), [speaker_id, epoch](tables& t, std::int64_t now) {
      return sim::fence_speaker(t, speaker_id, epoch, now);
    });
  }

  void hold_singleton(const std::string& name, std::int64_t epoch, completion<bool> done) override {
    run<bool>(std::move(done), [name, epoch](tables& t, std::int64_t now) -> caf::expected<bool> {
      auto mine = t.leases.find(epoch);
      if (mine == t.leases.end() || !live_at(mine->second, now))
        return make_error(errc::stale_owner, "the lease of epoch " + std::to_string(epoch) + " is not held");
      auto [held, taken] = t.singletons.try_emplace(name, epoch);
      if (taken || held->second == epoch) return true;
      auto holder = t.leases.find(held->second);
      if (holder != t.leases.end() && live_at(holder->second, now)) return false;
      held->second = epoch;
      return true;
    });
  }

  void release_singletons(std::int64_t epoch, completion<bool> done) override {
    run<bool>(std::move(done), [epoch](tables& t, std::int64_t) {
      bool any = false;
      for (auto it = t.singletons.begin(); it != t.singletons.end();)
        if (it->second == epoch) {
          it = t.singletons.erase(it);
          any = true;
        } else {
          ++it;
        }
      return caf::expected<bool>{any};
    });
  }

 private:
  template <class T, class Op>
  void run(completion<T> done, Op op) {
    call_server<T>(link_, server_, t_, deadline{}, std::move(done), std::move(op));
  }

  db::store_link link_;
  caf::actor server_;
  std::shared_ptr<tables> t_;
};

}  // namespace

caf::expected<bool> fence_speaker(lease_tables& t, const std::string& speaker_id, std::int64_t epoch,
                                  std::int64_t now) {
  auto mine = t.leases.find(epoch);
  if (mine == t.leases.end() || !live_at(mine->second, now))
    return make_error(errc::stale_owner, "the lease of epoch " + std::to_string(epoch) + " is not held");
  auto [owner, claimed] = t.owners.try_emplace(speaker_id, epoch);
  if (claimed || owner->second == epoch) return true;
  auto holder = t.leases.find(owner->second);
  if (holder != t.leases.end() && live_at(holder->second, now))
    return make_error(errc::stale_owner,
                      "the speaker is owned by the live lease of epoch " + std::to_string(owner->second));
  owner->second = epoch;
  return true;
}

void release_speaker(lease_tables& t, const std::string& speaker_id, std::int64_t epoch) {
  auto it = t.owners.find(speaker_id);
  if (it != t.owners.end() && it->second == epoch) t.owners.erase(it);
}

lease_store_factory memory_lease_store(caf::actor server, std::shared_ptr<lease_tables> tables) {
  return [server, tables](const db::store_link& link) -> std::unique_ptr<cluster::store> {
    return std::make_unique<memory_store>(link, server, tables);
  };
}

}  // namespace sbm::sim

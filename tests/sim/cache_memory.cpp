#include "tests/sim/cache_memory.hpp"

#include <utility>

#include "tests/sim/memory_server.hpp"

namespace sbm::sim {

namespace {

class memory_cache_store final : public instanote::cache {
 public:
  memory_cache_store(db::store_link link, caf::actor server, std::shared_ptr<cache_tables> tables)
      : link_(std::move(link)), server_(std::move(server)), t_(std::move(tables)) {}

  void get(const std::string& key, db::completion<std::optional<std::string>> done) override {
    call_server<std::optional<std::string>>(link_, server_, t_, deadline{}, std::move(done),
                                            [key](cache_tables& t, std::int64_t now) {
                                              auto it = t.entries.find(key);
                                              if (it == t.entries.end() || it->second.expires_ms <= now)
                                                return std::optional<std::string>{};
                                              return std::optional<std::string>{it->second.value};
                                            });
  }

  void put(const std::string& key, std::string value, std::chrono::seconds ttl, db::completion<bool> done) override {
    call_server<bool>(link_, server_, t_, deadline{}, std::move(done),
                      [key, value = std::move(value), ttl](cache_tables& t, std::int64_t now) {
                        t.entries[key] = {value, now + ttl.count() * 1000};
                        return true;
                      });
  }

 private:
  db::store_link link_;
  caf::actor server_;
  std::shared_ptr<cache_tables> t_;
};

}  // namespace

instanote::cache_factory memory_cache(caf::actor server, std::shared_ptr<cache_tables> tables) {
  return [server, tables](const db::store_link& link) -> std::unique_ptr<instanote::cache> {
    return std::make_unique<memory_cache_store>(link, server, tables);
  };
}

}  // namespace sbm::sim

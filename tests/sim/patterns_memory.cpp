#include "tests/sim/patterns_memory.hpp"

#include <cmath>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "actors/patterns/pattern_records.hpp"
#include "messages/errors.hpp"
#include "tests/sim/memory_server.hpp"

namespace sbm::sim {

namespace {

using namespace sbm::patterns;
using tables = patterns_tables;

// The table's CHECKs: a refused row is refused before anything changes, as PostgreSQL rolls it back.
bool passes_checks(const pattern_record& record) {
  return record.pattern_id > 0 && !record.original_text.empty() && std::isfinite(record.weight) &&
         record.weight >= 0 && record.weight <= 1;
}

caf::error refused() { return make_error(errc::invalid_argument, "patterns: a check constraint refused the row"); }

// The upsert of one checked row: a new version, unless a newer saga revision holds the row.
upserted apply(tables& t, const pattern_record& record, const std::string& embedder_name, std::int64_t now) {
  upserted out;
  auto it = t.rows.find(record.pattern_id);
  if (it != t.rows.end() && it->second.saga_revision > record.saga_revision) return out;
  out.applied = true;
  out.version = t.next_version++;
  out.created_at_ms = record.created_at_ms > 0 ? record.created_at_ms
                      : it != t.rows.end()    ? it->second.entry.created_at_ms
                                              : now;
  t.rows[record.pattern_id] = {to_entry(record, out.version, out.created_at_ms), record.saga_revision, embedder_name};
  return out;
}

class memory_store final : public store {
 public:
  memory_store(db::store_link link, caf::actor server, std::shared_ptr<tables> t)
    : link_{std::move(link)}, server_{std::move(server)}, t_{std::move(t)} {}

  void durable(completion<durable_state> done) override {
    run<durable_state>(std::move(done), [](tables& t, std::int64_t) {
      durable_state d;
      d.instance_id = t.instance_id;
      for (const auto& [id, r] : t.rows) {
        const auto v = static_cast<std::uint64_t>(r.entry.version);
        ++d.digest.count;
        d.digest.max_version = std::max(d.digest.max_version, r.entry.version);
        d.digest.version_sum += v;  // modulo 2^64, as the SQL's sums are taken
        d.digest.id_version_sum += static_cast<std::uint64_t>(id) * v;
      }
      return caf::expected<durable_state>{d};
    });
  }

  void page(std::int64_t after, std::uint32_t limit, completion<std::vector<pattern_entry>> done) override {
    run<std::vector<pattern_entry>>(std::move(done), [after, limit](tables& t, std::int64_t) {
      std::vector<pattern_entry> out;
      for (auto it = t.rows.upper_bound(after); it != t.rows.end() && out.size() < limit; ++it)
        out.push_back(it->second.entry);
      return caf::expected<std::vector<pattern_entry>>{std::move(out)};
    });
  }

  void upsert(const pattern_record& record, const std::string& embedder_name, completion<upserted> done) override {
    run<upserted>(std::move(done), [record, embedder_name](tables& t, std::int64_t now) -> caf::expected<upserted> {
      if (!passes_checks(record)) return refused();
      return apply(t, record, embedder_name, now);
    });
  }

  // All or nothing, as one transaction: every record is checked before any is applied.
  void upsert_batch(const std::vector<pattern_record>& records, const std::string& embedder_name,
                    completion<std::vector<upserted>> done) override {
    run<std::vector<upserted>>(std::move(done), [records, embedder_name](tables& t, std::int64_t now)
                                                    -> caf::expected<std::vector<upserted>> {
      std::set<std::int64_t> ids;
      for (const auto& r : records) {
        if (!ids.insert(r.pattern_id).second)
          return make_error(errc::invalid_argument, "patterns: pattern_id " + std::to_string(r.pattern_id) +
                                                      " twice in one batch");
        if (!passes_checks(r)) return refused();
      }
      std::vector<upserted> out;
      out.reserve(records.size());
      for (const auto& r : records) out.push_back(apply(t, r, embedder_name, now));
      return out;
    });
  }

  void erase(std::int64_t pattern_id, completion<bool> done) override {
    run<bool>(std::move(done), [pattern_id](tables& t, std::int64_t) {
      return caf::expected<bool>{t.rows.erase(pattern_id) > 0};
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

patterns::store_factory memory_patterns_store(caf::actor server, std::shared_ptr<patterns_tables> tables) {
  return [server, tables](const db::store_link& link) -> std::unique_ptr<patterns::store> {
    return std::make_unique<memory_store>(link, server, tables);
  };
}

}  // namespace sbm::sim

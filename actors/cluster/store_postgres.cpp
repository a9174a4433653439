// The lease store over PostgreSQL: the only file with the cluster family's SQL (the fence itself
// is the database function cluster.fence_speaker, schema/001_init.sql). Durations travel as
// integer milliseconds, bound, never spliced; every time is the database's now().
#include <stdexcept>
#include <utility>

#include "actors/cluster/store.hpp"
#include "messages/errors.hpp"
#include "runtime/db/fence.hpp"
#include "runtime/db/rows.hpp"

namespace sbm::cluster {

namespace {

// Shared by every read, in the order lease_from_row expects.
#define SBM_CLUSTER_LEASE_COLUMNS                                                              \
  "epoch, address, node_name, "                                                                \
  "floor(extract(epoch FROM now() - renewed_at) * 1000)::bigint, "                             \
  "floor(extract(epoch FROM expires_at - now()) * 1000)::bigint, "                           \
  "(SELECT count(*) FROM cluster.speaker_owners o WHERE o.epoch = cluster.leases.epoch)"

const char* const acquire_sql =
  "INSERT INTO cluster.leases (epoch, address, node_name, expires_at) "
  "VALUES (nextval('cluster.epochs'), $1, $2, now() + $3::bigint * interval '1 millisecond') "
  "RETURNING " SBM_CLUSTER_LEASE_COLUMNS;

const char* const renew_sql =
  "UPDATE cluster.leases SET renewed_at = now(), "
  "expires_at = now() + $2::bigint * interval '1 millisecond' "
  "WHERE epoch = $1 AND expires_at > now() RETURNING " SBM_CLUSTER_LEASE_COLUMNS;

const char* const live_sql =
  "SELECT " SBM_CLUSTER_LEASE_COLUMNS " FROM cluster.leases WHERE expires_at > now() ORDER BY epoch";

const char* const release_sql =
  "UPDATE cluster.leases SET expires_at = now() WHERE epoch = $1 AND expires_at > now()";

const char* const hold_singleton_sql = "SELECT cluster.hold_singleton($1, $2::bigint)";

const char* const release_singletons_sql = "DELETE FROM cluster.singletons WHERE epoch = $1";

#undef SBM_CLUSTER_LEASE_COLUMNS

lease lease_from_row(const db_row& row) {
  lease l;
  l.epoch = db::int_column(row, 0);
  l.address = db::required_text(row, 1);
  l.node_name = db::text_column(row, 2);
  l.age_ms = db::int_column(row, 3);
  l.expires_in_ms = db::int_column(row, 4);
  l.speakers = db::int_column(row, 5);
  return l;
}

caf::error unreadable(const std::exception& e) {
  return make_error(errc::internal, std::string{"cluster: unreadable lease row: "} + e.what());
}

class postgres_store final : public store {
 public:
  explicit postgres_store(query_runner query) : query_{std::move(query)} {}

  void acquire(const std::string& address, const std::string& node_name,
               std::chrono::milliseconds ttl, completion<lease> done) override {
    query_(db_statement{acquire_sql, {address, node_name, std::to_string(ttl.count())}, -1},
           [done](caf::expected<db_rows> rows) { one_lease(std::move(rows), done); });
  }

  void renew(std::int64_t epoch, std::chrono::milliseconds ttl, completion<lease> done) override {
    query_(db_statement{renew_sql, {std::to_string(epoch), std::to_string(ttl.count())}, -1},
           [done](caf::expected<db_rows> rows) { one_lease(std::move(rows), done); });
  }

  void live(completion<std::vector<lease>> done) override {
    query_(db_statement{live_sql, {}, -1}, [done](caf::expected<db_rows> rows) {
      if (!rows)
        return done(db::failure(rows.error()));
      std::vector<lease> out;
      try {
        for (const auto& row : rows->rows)
          out.push_back(lease_from_row(row));
      } catch (const std::exception& e) {
        return done(unreadable(e));
      }
      done(std::move(out));
    });
  }

  void release(std::int64_t epoch, completion<bool> done) override {
    query_(db_statement{release_sql, {std::to_string(epoch)}, -1},
           [done](caf::expected<db_rows> rows) {
             if (!rows)
               return done(db::failure(rows.error()));
             done(rows->affected > 0);
           });
  }

  void fence_speaker(const std::string& speaker_id, std::int64_t epoch, completion<bool> done) override {
    query_(db::fence_statement(speaker_id, epoch),
           [done](caf::expected<db_rows> rows) {
             if (!rows)
               return done(db::failure(rows.error()));
             done(true);
           });
  }

  void hold_singleton(const std::string& name, std::int64_t epoch, completion<bool> done) override {
    query_(db_statement{hold_singleton_sql, {name, std::to_string(epoch)}, -1},
           [done](caf::expected<db_rows> rows) {
             if (!rows)
               return done(db::failure(rows.error()));
             try {
               done(!rows->rows.empty() && db::bool_column(rows->rows.front(), 0));
             } catch (const std::exception& e) {
               done(unreadable(e));
             }
           });
  }

  void release_singletons(std::int64_t epoch, completion<bool> done) override {
    query_(db_statement{release_singletons_sql, {std::to_string(epoch)}, -1},
           [done](caf::expected<db_rows> rows) {
             if (!rows)
               return done(db::failure(rows.error()));
             done(rows->affected > 0);
           });
  }

 private:
  // No row: the lease had lapsed (renew), which only a new epoch can cure.
  static void one_lease(caf::expected<db_rows> rows, const completion<lease>& done) {
    if (!rows)
      return done(db::failure(rows.error()));
    if (rows->rows.empty())
      return done(make_error(errc::stale_owner, "the node's lease has lapsed"));
    try {
      done(lease_from_row(rows->rows.front()));
    } catch (const std::exception& e) {
      done(unreadable(e));
    }
  }

  query_runner query_;
};

}  // namespace

std::unique_ptr<store> make_postgres_store(query_runner query) {
  return std::make_unique<postgres_store>(std::move(query));
}

}  // namespace sbm::cluster

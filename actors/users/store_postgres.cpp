// The users store over PostgreSQL: the only file with the users family's SQL (schema `users`).
#include <stdexcept>
#include <string>
#include <utility>

#include "actors/users/store.hpp"
#include "messages/errors.hpp"
#include "runtime/db/idempotency.hpp"
#include "runtime/db/rows.hpp"

namespace sbm::users {

namespace {

constexpr const char* keys_table = "users.idempotency_keys";

constexpr const char* user_columns =
  "id, role, display_name, disabled, (extract(epoch FROM created_at) * 1000)::bigint, "
  "(extract(epoch FROM updated_at) * 1000)::bigint, array_to_json(client_ids)::text";

// A record that concerns one client carries it, so scoped readers see it (and only theirs).
constexpr const char* insert_client_sql =
  "INSERT INTO users.audit_log (actor, actor_kind, action, target, outcome, status, peer, detail,"
  " client_id) VALUES ($1, $2, $3, $4, $5, $6::integer, $7, $8::jsonb, coalesce($9, ''))";

// A record delivered from another family's outbox: once per key, however often it comes.
constexpr const char* insert_keyed_sql =
  "INSERT INTO users.audit_log (actor, actor_kind, action, target, outcome, status, peer, detail,"
  " client_id, source_key) VALUES ($1, $2, $3, $4, $5, $6::integer, $7, $8::jsonb,"
  " coalesce($9, ''), $10)"
  " ON CONFLICT (source_key) WHERE source_key IS NOT NULL DO NOTHING";

constexpr const char* insert_sql =
  "INSERT INTO users.audit_log (actor, actor_kind, action, target, outcome, status, peer, detail)"
  " VALUES ($1, $2, $3, $4, $5, $6::integer, $7, $8::jsonb)";

// The count of a coalesced refusal goes into its detail, next to what the first one said.
constexpr const char* insert_refusal_sql =
  "INSERT INTO users.audit_log (actor, actor_kind, action, target, outcome, status, peer, detail)"
  " VALUES ($1, $2, $3, $4, 'refused', $5::integer, $6,"
  "         $7::jsonb || jsonb_build_object('count', $8::bigint, 'window_ms', $9::bigint))";

user_record read_user(const db_row& row) {
  if (row.size() < 7) throw std::runtime_error("short row");
  user_record u;
  u.id = db::text_column(row, 0);
  u.role = db::text_column(row, 1);
  u.display_name = db::text_column(row, 2);
  u.disabled = db::bool_column(row, 3);
  u.created_at_ms = db::int_column(row, 4);
  u.updated_at_ms = db::int_column(row, 5);
  u.scope.limited = static_cast<bool>(row[6]);
  u.scope.client_ids = db::text_array_column(row, 6);
  return u;
}

audit_record read_record(const db_row& row) {
  if (row.size() < 11) throw std::runtime_error("short row");
  audit_record r;
  r.id = db::int_column(row, 0);
  r.at_ms = db::int_column(row, 1);
  r.actor = db::text_column(row, 2);
  r.actor_kind = db::text_column(row, 3);
  r.action = db::text_column(row, 4);
  r.target = db::text_column(row, 5);
  r.outcome = db::text_column(row, 6);
  r.status = static_cast<std::int32_t>(db::int_column(row, 7));
  r.peer = db::text_column(row, 8);
  r.detail = db::text_column(row, 9);
  r.client_id = db::text_column(row, 10);
  return r;
}

db_statement create_statement(const user_creation& c) {
  const auto& u = c.user;
  return {std::string{"WITH created AS ("
                      "  INSERT INTO users.users (id, role, display_name, disabled, client_ids)"
                      "  VALUES ($1, $2, $3, $4::boolean, $9::text[]) ON CONFLICT (id) DO NOTHING"
                      "  RETURNING *),"
                      " logged AS ("
                      "  INSERT INTO users.audit_log"
                      "    (actor, actor_kind, action, target, outcome, status, peer, detail)"
                      "  SELECT $5, $6, $8, id, 'success', 201, $7,"
                      "    jsonb_build_object('role', role, 'display_name', display_name,"
                      "                       'disabled', disabled, 'client_ids', client_ids)"
                      "  FROM created)"
                      " SELECT "} + user_columns + " FROM created",
          {u.id, u.role, u.display_name, std::string{u.disabled ? "true" : "false"}, c.by.actor, c.by.actor_kind,
           c.by.peer, std::string{audit_action::user_create}, db::scope_param(u.scope)},
          -1};
}

db_statement update_statement(const user_update& c) {
  caf::optional<std::string> role, display_name, disabled;
  if (c.set_role) role = c.role;
  if (c.set_display_name) display_name = c.display_name;
  if (c.set_disabled) disabled = std::string{c.disabled ? "true" : "false"};
  // $9 says whether client_ids changes at all, $10 is the new value (NULL lifts the limit).
  caf::optional<std::string> set_scope = std::string{c.set_scope ? "true" : "false"};
  // The row is locked before it is read for the audit's "before", so two concurrent updates are
  // recorded in the order they happened, each with the other's result as its "before".
  return {std::string{"WITH before AS ("
                      "  SELECT id, role, display_name, disabled, client_ids FROM users.users"
                      "  WHERE id = $1 FOR UPDATE),"
                      " changed AS ("
                      "  UPDATE users.users u SET role = coalesce($2, u.role),"
                      "    display_name = coalesce($3, u.display_name),"
                      "    disabled = coalesce($4::boolean, u.disabled),"
                      "    client_ids = CASE WHEN $9::boolean THEN $10::text[] ELSE u.client_ids END,"
                      "    updated_at = now()"
                      "  FROM before WHERE u.id = before.id"
                      "  RETURNING u.*),"
                      " logged AS ("
                      "  INSERT INTO users.audit_log"
                      "    (actor, actor_kind, action, target, outcome, status, peer, detail)"
                      "  SELECT $5, $6, $8, changed.id, 'success', 200, $7,"
                      "    jsonb_build_object("
                      "      'before', jsonb_build_object('role', before.role,"
                      "        'display_name', before.display_name, 'disabled', before.disabled,"
                      "        'client_ids', before.client_ids),"
                      "      'after', jsonb_build_object('role', changed.role,"
                      "        'display_name', changed.display_name, 'disabled', changed.disabled,"
                      "        'client_ids', changed.client_ids))"
                      "  FROM before JOIN changed ON changed.id = before.id)"
                      " SELECT "} + user_columns + " FROM changed",
          {c.id, role, display_name, disabled, c.by.actor, c.by.actor_kind, c.by.peer,
           std::string{audit_action::user_update}, set_scope, db::scope_param(c.scope)},
          -1};
}

caf::error corrupt(const std::exception& e) {
  return make_error(errc::internal, std::string{"corrupt users row: "} + e.what());
}

class postgres_store final : public store {
 public:
  postgres_store(db::store_link link, std::chrono::seconds retention)
    : link_{std::move(link)}, retention_{retention} {}

  void create_user(const user_creation& c, completion<user_record> done) override {
    change(create_statement(c), c.ctx, c.user.id, make_error(errc::duplicate, "a user with this id already exists"),
           std::move(done));
  }

  void update_user(const user_update& c, completion<user_record> done) override {
    change(update_statement(c), c.ctx, c.id, make_error(errc::not_found, "no such user"), std::move(done));
  }

  void user(const std::string& id, completion<caf::optional<user_record>> done) override {
    db_statement stmt{std::string{"SELECT "} + user_columns + " FROM users.users WHERE id = $1", {id}, -1};
    link_.query(std::move(stmt), [done](caf::expected<db_rows> rows) {
      if (!rows) return done(std::move(rows.error()));
      try {
        if (rows->rows.empty()) return done(caf::optional<user_record>{});
        done(caf::optional<user_record>{read_user(rows->rows.front())});
      } catch (const std::exception& e) {
        done(corrupt(e));
      }
    });
  }

  void standing(const std::string& id, completion<user_standing> done) override {
    db_statement stmt{"SELECT disabled, role, array_to_json(client_ids)::text FROM users.users WHERE id = $1", {id}, -1};
    link_.query(std::move(stmt), [done, id](caf::expected<db_rows> rows) {
      if (!rows) return done(std::move(rows.error()));
      user_standing s;
      s.id = id;
      if (rows->rows.empty()) return done(std::move(s));
      try {
        const auto& row = rows->rows.front();
        s.known = true;
        s.disabled = db::bool_column(row, 0);
        s.role = db::text_column(row, 1);
        s.scope.limited = static_cast<bool>(row.at(2));
        s.scope.client_ids = db::text_array_column(row, 2);
      } catch (const std::exception& e) {
        return done(corrupt(e));
      }
      done(std::move(s));
    });
  }

  void purge_keys(std::chrono::seconds retention, completion<bool> done) override {
    link_.query(db::idempotency::purge(keys_table, retention), [done](caf::expected<db_rows> rows) {
      if (!rows) return done(std::move(rows.error()));
      done(true);
    });
  }

  void append(const audit_record& r, completion<bool> done) override {
    db_statement stmt{r.source_key.empty() ? insert_client_sql : insert_keyed_sql,
                      {r.actor, r.actor_kind, r.action, r.target, r.outcome, std::to_string(r.status), r.peer,
                       r.detail, r.client_id},
                      r.source_key.empty() ? 1 : -1};
    if (!r.source_key.empty()) stmt.params.emplace_back(r.source_key);
    link_.query(std::move(stmt), [done](caf::expected<db_rows> rows) {
      if (!rows) return done(std::move(rows.error()));
      done(true);
    });
  }

  void append_refusals(const refusal_batch& batch, std::chrono::milliseconds window, completion<bool> done) override {
    const auto window_ms = std::to_string(window.count());
    db_transaction tx;
    for (const auto& row : batch.rows) {
      const auto& f = row.first;
      tx.statements.push_back({insert_refusal_sql,
                               {f.actor, f.actor_kind, f.action, f.target, std::to_string(f.status), f.peer, f.detail,
                                std::to_string(row.count), window_ms},
                               1});
    }
    if (batch.dropped > 0)
      tx.statements.push_back({insert_sql,
                               {std::string{"anonymous"}, std::string{"anonymous"},
                                std::string{audit_action::refusals_dropped}, std::string{}, std::string{"refused"},
                                std::string{"0"}, std::string{},
                                "{\"dropped\": " + std::to_string(batch.dropped) + ", \"window_ms\": " + window_ms + "}"},
                               1});
    link_.transact(std::move(tx), [done](caf::expected<db_results> res) {
      if (!res) return done(std::move(res.error()));
      done(true);
    });
  }

  void list_audit(const audit_query& q, std::uint32_t limit, completion<audit_page> done) override {
    caf::optional<std::string> actor, action, from, to, before;
    if (!q.actor.empty()) actor = q.actor;
    if (!q.action.empty()) action = q.action;
    if (q.has_from) from = std::to_string(q.from_ms);
    if (q.has_to) to = std::to_string(q.to_ms);
    if (q.before_id > 0) before = std::to_string(q.before_id);
    // Every filter is a bound parameter; one more row than asked tells whether a next page exists.
    db_statement stmt{"SELECT id, (extract(epoch FROM at) * 1000)::bigint, actor, actor_kind, action, target,"
                      " outcome, status, peer, detail::text, client_id FROM users.audit_log"
                      " WHERE ($1::text IS NULL OR actor = $1)"
                      "   AND ($2::text IS NULL OR action = $2)"
                      "   AND ($3::bigint IS NULL OR at >= to_timestamp($3::bigint / 1000.0))"
                      "   AND ($4::bigint IS NULL OR at < to_timestamp($4::bigint / 1000.0))"
                      "   AND ($5::bigint IS NULL OR id < $5::bigint)"
                      "   AND " + db::scope_clause("client_id", 7) +
                        " ORDER BY id DESC LIMIT $6::integer",
                      {actor, action, from, to, before, std::to_string(limit + 1), db::scope_param(q.scope)}, -1};
    link_.query(std::move(stmt), [done, limit](caf::expected<db_rows> rows) {
      if (!rows) return done(std::move(rows.error()));
      audit_page page;
      try {
        for (const auto& row : rows->rows) {
          if (page.items.size() == limit) {
            page.next_before_id = page.items.back().id;
            break;
          }
          page.items.push_back(read_record(row));
        }
      } catch (const std::exception& e) {
        return done(make_error(errc::internal, std::string{"corrupt audit row: "} + e.what()));
      }
      done(std::move(page));
    });
  }

 private:
  // A change without a key is one statement answering the user row (none: `when_empty`). A keyed
  // change is [the change, its key]: the key stores the user row as the change left it. The change
  // must then return exactly one row, so "no such user" or "exists already" rolls the key back too
  // and is looked up: a retry of a change that committed finds its answer.
  void change(db_statement stmt, const request_context& ctx, const std::string& user_id, caf::error when_empty,
              completion<user_record> done) {
    if (!ctx.keyed()) {
      link_.query(std::move(stmt), [done, when_empty](caf::expected<db_rows> rows) {
        if (!rows) return done(std::move(rows.error()));
        if (rows->rows.empty()) return done(when_empty);
        try {
          done(read_user(rows->rows.front()));
        } catch (const std::exception& e) {
          done(corrupt(e));
        }
      });
      return;
    }
    db_transaction tx;
    tx.until = ctx.until;
    stmt.expect_rows = 1;
    tx.statements.push_back(std::move(stmt));
    tx.statements.push_back(db::idempotency::store(
      keys_table, ctx, 0, std::string{"json_build_array("} + user_columns + ")::text FROM users.users WHERE id = $5",
      {user_id}));
    auto link = link_;
    auto retention = retention_;
    link_.transact(std::move(tx), [link, retention, ctx, when_empty, done](caf::expected<db_results> res) {
      if (res) {
        try {
          return done(read_user(res->results.at(0).rows.at(0)));
        } catch (const std::exception& e) {
          return done(corrupt(e));
        }
      }
      const auto& e = res.error();
      if (code_of(e) != errc::conflict) return done(std::move(res.error()));
      auto otherwise = info_of(e).statement == 1 ? db::idempotency::in_progress(ctx) : when_empty;
      link.query(db::idempotency::lookup(keys_table, ctx, retention), [ctx, otherwise, done](caf::expected<db_rows> rows) {
        if (!rows)
          return done(make_error(errc::outcome_unknown,
                                 "the Idempotency-Key could not be checked: " + detail_of(db::failure(rows.error()))));
        try {
          auto found = db::idempotency::judge(*rows, ctx);
          if (found.v == db::idempotency::verdict::absent) return done(otherwise);
          if (found.v == db::idempotency::verdict::reused) return done(db::idempotency::reused(ctx));
          if (found.stored.outcome != 0) return done(db::idempotency::refusal_of(found.stored));
          done(read_user(db::idempotency::row_of_answer(found.stored.answer)));
        } catch (const std::exception& ex) {
          done(make_error(errc::internal, std::string{"unreadable stored answer: "} + ex.what()));
        }
      });
    });
  }

  db::store_link link_;
  std::chrono::seconds retention_;
};

}  // namespace

std::unique_ptr<store> make_postgres_store(const db::store_link& link, std::chrono::seconds idempotency_retention) {
  return std::make_unique<postgres_store>(link, idempotency_retention);
}

}  // namespace sbm::users

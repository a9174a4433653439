#include "tests/sim/users_memory.hpp"

#include <algorithm>
#include <utility>

#include "messages/errors.hpp"
#include "runtime/db/idempotency.hpp"
#include "tests/sim/memory_server.hpp"

namespace sbm::sim {

namespace {

using namespace sbm::users;
using tables = users_tables;

void log_row(tables& t, audit_record r, std::int64_t now) {
  r.id = t.next_audit++;
  r.at_ms = now;
  t.audit.push_back(std::move(r));
}

audit_record change_row(const audit_origin& by, std::string action, std::string target, std::int32_t status) {
  audit_record r;
  r.actor = by.actor;
  r.actor_kind = by.actor_kind;
  r.action = std::move(action);
  r.target = std::move(target);
  r.outcome = "success";
  r.status = status;
  r.peer = by.peer;
  r.detail = "{}";
  return r;
}

class memory_store final : public store {
 public:
  memory_store(db::store_link link, caf::actor server, std::shared_ptr<tables> t)
    : link_{std::move(link)}, server_{std::move(server)}, t_{std::move(t)} {}

  void create_user(const user_creation& c, completion<user_record> done) override {
    keyed(c.ctx, std::move(done), [c](tables& t, std::int64_t now) -> caf::expected<user_record> {
      if (t.users.count(c.user.id)) return make_error(errc::duplicate, "a user with this id already exists");
      auto u = c.user;
      u.created_at_ms = u.updated_at_ms = now;
      t.users[u.id] = u;
      log_row(t, change_row(c.by, std::string{audit_action::user_create}, u.id, 201), now);
      return u;
    });
  }

  void update_user(const user_update& c, completion<user_record> done) override {
    keyed(c.ctx, std::move(done), [c](tables& t, std::int64_t now) -> caf::expected<user_record> {
      auto it = t.users.find(c.id);
      if (it == t.users.end()) return make_error(errc::not_found, "no such user");
      auto& u = it->second;
      if (c.set_role) u.role = c.role;
      if (c.set_display_name) u.display_name = c.display_name;
      if (c.set_disabled) u.disabled = c.disabled;
      if (c.set_scope) u.scope = c.scope;
      u.updated_at_ms = now;
      log_row(t, change_row(c.by, std::string{audit_action::user_update}, u.id, 200), now);
      return u;
    });
  }

  void user(const std::string& id, completion<caf::optional<user_record>> done) override {
    run<caf::optional<user_record>>({}, std::move(done), [id](tables& t, std::int64_t) {
      auto it = t.users.find(id);
      return caf::expected<caf::optional<user_record>>{it == t.users.end() ? caf::optional<user_record>{}
                                                                            : caf::optional<user_record>{it->second}};
    });
  }

  void standing(const std::string& id, completion<user_standing> done) override {
    run<user_standing>({}, std::move(done), [id](tables& t, std::int64_t) {
      user_standing s;
      s.id = id;
      if (auto it = t.users.find(id); it != t.users.end()) {
        s.known = true;
        s.disabled = it->second.disabled;
        s.role = it->second.role;
        s.scope = it->second.scope;
      }
      return caf::expected<user_standing>{s};
    });
  }

  void purge_keys(std::chrono::seconds retention, completion<bool> done) override {
    run<bool>({}, std::move(done), [retention](tables& t, std::int64_t now) {
      for (auto it = t.keys.begin(); it != t.keys.end();)
        it = it->second.created_ms <= now - retention.count() * 1000 ? t.keys.erase(it) : std::next(it);
      return caf::expected<bool>{true};
    });
  }

  void append(const audit_record& r, completion<bool> done) override {
    run<bool>({}, std::move(done), [r](tables& t, std::int64_t now) {
      const bool seen = !r.source_key.empty() && std::any_of(t.audit.begin(), t.audit.end(), [&](const audit_record& x) {
        return x.source_key == r.source_key;
      });
      if (!seen) log_row(t, r, now);
      return caf::expected<bool>{true};
    });
  }

  void append_refusals(const refusal_batch& batch, std::chrono::milliseconds window, completion<bool> done) override {
    run<bool>({}, std::move(done), [batch, window](tables& t, std::int64_t now) {
      for (const auto& row : batch.rows) {
        audit_record r;
        r.actor = row.first.actor;
        r.actor_kind = row.first.actor_kind;
        r.action = row.first.action;
        r.target = row.first.target;
        r.outcome = "refused";
        r.status = row.first.status;
        r.peer = row.first.peer;
        r.detail = row.first.detail;
        log_row(t, std::move(r), now);
      }
      if (batch.dropped > 0) {
        audit_record r;
        r.actor = r.actor_kind = "anonymous";
        r.action = std::string{audit_action::refusals_dropped};
        r.outcome = "refused";
        r.detail = "{\"dropped\": " + std::to_string(batch.dropped) + ", \"window_ms\": " +
                   std::to_string(window.count()) + "}";
        log_row(t, std::move(r), now);
      }
      return caf::expected<bool>{true};
    });
  }

  void list_audit(const audit_query& q, std::uint32_t limit, completion<audit_page> done) override {
    run<audit_page>({}, std::move(done), [q, limit](tables& t, std::int64_t) {
      audit_page page;
      for (auto it = t.audit.rbegin(); it != t.audit.rend(); ++it) {
        const auto& r = *it;
        if ((!q.actor.empty() && r.actor != q.actor) || (!q.action.empty() && r.action != q.action) ||
            (q.has_from && r.at_ms < q.from_ms) || (q.has_to && r.at_ms >= q.to_ms) ||
            (q.before_id > 0 && r.id >= q.before_id) || !q.scope.admits(r.client_id))
          continue;
        if (page.items.size() == limit) {
          page.next_before_id = page.items.back().id;
          break;
        }
        page.items.push_back(r);
        page.items.back().source_key.clear();  // a listed row shows no key, as PostgreSQL's list selects none
      }
      return caf::expected<audit_page>{page};
    });
  }

 private:
  // A change under a key: a committed retry answers what the first left, another request under
  // the key is refused, and a refusal stores nothing (as the PostgreSQL transaction rolls back).
  template <class Op>
  void keyed(const request_context& ctx, completion<user_record> done, Op op) {
    run<user_record>(ctx.until, std::move(done), [ctx, op](tables& t, std::int64_t now) -> caf::expected<user_record> {
      if (ctx.keyed()) {
        if (auto it = t.keys.find({ctx.principal, ctx.idempotency_key}); it != t.keys.end()) {
          if (it->second.digest != ctx.request_digest) return db::idempotency::reused(ctx);
          return it->second.answer;
        }
      }
      auto out = op(t, now);
      if (out && ctx.keyed()) t.keys[{ctx.principal, ctx.idempotency_key}] = {ctx.request_digest, *out, now};
      return out;
    });
  }

  template <class T, class Op>
  void run(const deadline& until, completion<T> done, Op op) {
    call_server<T>(link_, server_, t_, until, std::move(done), std::move(op));
  }

  db::store_link link_;
  caf::actor server_;
  std::shared_ptr<tables> t_;
};

}  // namespace

users::store_factory memory_users_store(caf::actor server, std::shared_ptr<users_tables> tables) {
  return [server, tables](const db::store_link& link) -> std::unique_ptr<users::store> {
    return std::make_unique<memory_store>(link, server, tables);
  };
}

}  // namespace sbm::sim

// The users port's contract, run against both adapters: PostgreSQL and the simulation's
// in-memory store (tests/sim/). Users change with their audit row; keys answer retries.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <utility>

#include "actors/users/store.hpp"
#include "messages/errors.hpp"
#include "tests/integration/port_contract.hpp"
#include "tests/sim/users_memory.hpp"

namespace {

using namespace std::chrono_literals;
using namespace sbm::users;
using sbm::errc;

template <class Backend>
class UsersStoreContract : public Backend {
 protected:
  void SetUp() override {
    Backend::SetUp();
    tables = std::make_shared<sbm::sim::users_tables>();
  }

  template <class T, class Op>
  caf::expected<T> run(Op op) {
    std::function<std::unique_ptr<store>(const sbm::db::store_link&)> open = [](const sbm::db::store_link& link) {
      return make_postgres_store(link, std::chrono::hours{24});
    };
    if constexpr (Backend::in_memory) open = sbm::sim::memory_users_store(this->server.handle, tables);
    return sbm::test::through_port<T, store>(this->sys, this->handle(), open, op);
  }

  static sbm::user_creation creation(std::string id, std::string key = {}, std::string digest = "d1") {
    sbm::user_creation c;
    c.user.id = std::move(id);
    c.user.role = "qa";
    c.user.display_name = "Ada";
    c.by = {"admin-1", "user", "127.0.0.1"};
    c.ctx.principal = "user:admin-1";
    c.ctx.idempotency_key = std::move(key);
    c.ctx.request_digest = std::move(digest);
    return c;
  }

  caf::expected<sbm::user_record> create(const sbm::user_creation& c) {
    return run<sbm::user_record>([c](store& st, completion<sbm::user_record> done) { st.create_user(c, done); });
  }
  caf::expected<sbm::user_record> update(const sbm::user_update& u) {
    return run<sbm::user_record>([u](store& st, completion<sbm::user_record> done) { st.update_user(u, done); });
  }
  caf::expected<sbm::audit_page> audit(sbm::audit_query q = {}) {
    return run<sbm::audit_page>([q](store& st, completion<sbm::audit_page> done) { st.list_audit(q, 100, done); });
  }

  std::shared_ptr<sbm::sim::users_tables> tables;
};

using backends = ::testing::Types<sbm::test::postgres_backend, sbm::test::memory_backend>;
TYPED_TEST_SUITE(UsersStoreContract, backends);

TYPED_TEST(UsersStoreContract, AUserIsRegisteredOnceAndEachChangeIsOnRecord) {
  auto u = this->create(this->creation("qa-7"));
  ASSERT_TRUE(u) << this->sys.render(u.error());
  EXPECT_EQ(u->id, "qa-7");
  EXPECT_EQ(u->role, "qa");
  EXPECT_FALSE(u->disabled);
  auto again = this->create(this->creation("qa-7"));
  ASSERT_FALSE(again);
  EXPECT_EQ(sbm::code_of(again.error()), errc::duplicate);

  sbm::user_update up;
  up.id = "qa-7";
  up.set_disabled = true;
  up.disabled = true;
  up.by = {"admin-1", "user", "127.0.0.1"};
  auto changed = this->update(up);
  ASSERT_TRUE(changed);
  EXPECT_TRUE(changed->disabled);
  EXPECT_EQ(changed->display_name, "Ada");  // unflagged fields stay
  up.id = "nobody";
  auto missing = this->update(up);
  ASSERT_FALSE(missing);
  EXPECT_EQ(sbm::code_of(missing.error()), errc::not_found);

  auto standing = this->template run<sbm::user_standing>(
    [](store& st, completion<sbm::user_standing> done) { st.standing("qa-7", done); });
  ASSERT_TRUE(standing);
  EXPECT_TRUE(standing->known);
  EXPECT_TRUE(standing->disabled);
  auto stranger = this->template run<sbm::user_standing>(
    [](store& st, completion<sbm::user_standing> done) { st.standing("nobody", done); });
  ASSERT_TRUE(stranger);
  EXPECT_FALSE(stranger->known);

  // One row per change that happened, newest first; the refused ones left none.
  auto log = this->audit();
  ASSERT_TRUE(log);
  ASSERT_EQ(log->items.size(), 2u);
  EXPECT_EQ(log->items[0].action, sbm::audit_action::user_update);
  EXPECT_EQ(log->items[1].action, sbm::audit_action::user_create);
  EXPECT_EQ(log->items[1].target, "qa-7");
  EXPECT_EQ(log->items[1].actor, "admin-1");
}

TYPED_TEST(UsersStoreContract, AKeyedRetryGetsTheFirstAnswerAndAnotherRequestUnderTheKeyIsRefused) {
  auto first = this->create(this->creation("qa-8", "k-1"));
  ASSERT_TRUE(first);
  auto retry = this->create(this->creation("qa-8", "k-1"));
  ASSERT_TRUE(retry) << this->sys.render(retry.error());
  EXPECT_EQ(retry->id, "qa-8");
  EXPECT_EQ(retry->created_at_ms, first->created_at_ms);
  auto other = this->create(this->creation("qa-9", "k-1", "another request"));
  ASSERT_FALSE(other);
  EXPECT_EQ(sbm::code_of(other.error()), errc::key_reused);
  auto log = this->audit();
  ASSERT_TRUE(log);
  EXPECT_EQ(log->items.size(), 1u);  // the retry wrote nothing
}

TYPED_TEST(UsersStoreContract, AuditRecordsUnderOneSourceKeyAreKeptOnceAndPagesFollowTheCursor) {
  for (int i = 0; i < 3; ++i) {
    sbm::audit_record r;
    r.actor = "qa-1";
    r.actor_kind = "user";
    r.action = "verification.submit";
    r.target = "verification-session:1";
    r.outcome = "success";
    r.status = 200;
    r.detail = "{}";
    r.client_id = "c1";
    r.source_key = "verification.submit:1";
    ASSERT_TRUE(this->template run<bool>([r](store& st, completion<bool> done) { st.append(r, done); }));
  }
  for (int i = 0; i < 3; ++i) {
    sbm::audit_record r;
    r.actor = "qa-2";
    r.actor_kind = "user";
    r.action = "speaker.pin";
    r.target = "spk-" + std::to_string(i);
    r.outcome = "success";
    r.status = 200;
    r.detail = "{}";
    r.client_id = "c2";
    ASSERT_TRUE(this->template run<bool>([r](store& st, completion<bool> done) { st.append(r, done); }));
  }
  auto all = this->audit();
  ASSERT_TRUE(all);
  ASSERT_EQ(all->items.size(), 4u);
  auto page = this->template run<sbm::audit_page>([](store& st, completion<sbm::audit_page> done) {
    st.list_audit({}, 3, done);
  });
  ASSERT_TRUE(page);
  ASSERT_EQ(page->items.size(), 3u);
  EXPECT_EQ(page->next_before_id, page->items.back().id);
  sbm::audit_query rest;
  rest.before_id = page->next_before_id;
  auto tail = this->audit(rest);
  ASSERT_TRUE(tail);
  ASSERT_EQ(tail->items.size(), 1u);
  EXPECT_EQ(tail->items[0].actor, "qa-1");
  EXPECT_EQ(tail->next_before_id, 0);
  sbm::audit_query scoped;
  scoped.scope.limited = true;
  scoped.scope.client_ids = {"c1"};
  auto mine = this->audit(scoped);
  ASSERT_TRUE(mine);
  ASSERT_EQ(mine->items.size(), 1u);
  EXPECT_EQ(mine->items[0].client_id, "c1");
}

}  // namespace

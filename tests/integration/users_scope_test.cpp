// The users actor's client scope against a real PostgreSQL (issue 21): what is stored in
// users.client_ids for an unlimited, a limited and an empty scope, how an update sets, narrows and
// lifts it, that the standing lookup (which the gateway applies) reads the same, that a bad scope
// writes nothing, and that the audit row of each change names the scope before and after.
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include "actors/users/users.hpp"
#include "messages/errors.hpp"
#include "tests/support/postgres_actor_test.hpp"

namespace {

using namespace std::chrono_literals;
using sbm::client_scope;
using sbm::errc;
using param = caf::optional<std::string>;

class UsersScope : public sbm::test::postgres_actor_test {
 protected:
  void SetUp() override {
    postgres_actor_test::SetUp();
    if (HasFatalFailure()) return;
    sbm::users::users_settings us;
    us.db = db;
    users = stop_at_end(sbm::users::spawn_users(sys, std::move(us)));
  }

  static sbm::audit_origin admin() { return {"admin-1", "user", "127.0.0.1"}; }

  caf::expected<sbm::user_record> create(const std::string& id, client_scope scope) {
    sbm::user_creation c;
    c.user.id = id;
    c.user.role = "qa";
    c.user.scope = std::move(scope);
    c.by = admin();
    return ask<sbm::user_record>(users, sbm::register_atom::value, std::move(c));
  }

  caf::expected<sbm::user_record> set_scope(const std::string& id, client_scope scope) {
    sbm::user_update u;
    u.id = id;
    u.set_scope = true;
    u.scope = std::move(scope);
    u.by = admin();
    return ask<sbm::user_record>(users, sbm::update_atom::value, std::move(u));
  }

  // users.client_ids as PostgreSQL prints it: NULL reads as "NULL".
  std::string stored(const std::string& id) {
    auto rows = sql("SELECT coalesce(client_ids::text, 'NULL') FROM users.users WHERE id = '" + id + "'");
    return rows.empty() || !rows[0][0] ? "<no row>" : *rows[0][0];
  }

  sbm::users_actor users;
};

TEST_F(UsersScope, UnlimitedLimitedAndEmptyScopesAreStoredApart) {
  auto vendor = create("vendor-qa", {});
  ASSERT_TRUE(vendor) << sys.render(vendor.error());
  EXPECT_FALSE(vendor->scope.limited);
  EXPECT_EQ(stored("vendor-qa"), "NULL");

  // Sorted and unique, so two equal scopes are stored the same way.
  auto hospital = create("hospital-qa", {true, {"c2", "c1", "c2"}});
  ASSERT_TRUE(hospital) << sys.render(hospital.error());
  EXPECT_TRUE(hospital->scope.limited);
  EXPECT_EQ(hospital->scope.client_ids, (std::vector<std::string>{"c1", "c2"}));
  EXPECT_EQ(stored("hospital-qa"), "{c1,c2}");

  auto nobody = create("no-client-qa", {true, {}});
  ASSERT_TRUE(nobody) << sys.render(nobody.error());
  EXPECT_TRUE(nobody->scope.limited);
  EXPECT_TRUE(nobody->scope.client_ids.empty());
  EXPECT_EQ(stored("no-client-qa"), "{}");

  // get and the standing lookup read back exactly what was stored.
  for (const auto& [id, limited, clients] :
       std::vector<std::tuple<std::string, bool, std::vector<std::string>>>{
         {"vendor-qa", false, {}}, {"hospital-qa", true, {"c1", "c2"}}, {"no-client-qa", true, {}}}) {
    auto got = ask<sbm::user_record>(users, sbm::get_atom::value, id);
    ASSERT_TRUE(got) << sys.render(got.error());
    EXPECT_EQ(got->scope.limited, limited) << id;
    EXPECT_EQ(got->scope.client_ids, clients) << id;
    auto standing = ask<sbm::user_standing>(users, sbm::check_atom::value, id);
    ASSERT_TRUE(standing) << sys.render(standing.error());
    EXPECT_TRUE(standing->known);
    EXPECT_EQ(standing->scope.limited, limited) << id;
    EXPECT_EQ(standing->scope.client_ids, clients) << id;
  }
  // An unregistered subject has no stored scope to apply.
  auto stranger = ask<sbm::user_standing>(users, sbm::check_atom::value, std::string{"stranger"});
  ASSERT_TRUE(stranger) << sys.render(stranger.error());
  EXPECT_FALSE(stranger->known);
  EXPECT_FALSE(stranger->scope.limited);
}

TEST_F(UsersScope, AnUpdateSetsNarrowsAndLiftsTheScopeWithItsAuditRow) {
  ASSERT_TRUE(create("qa-1", {}));
  auto limited = set_scope("qa-1", {true, {"c3", "c1"}});
  ASSERT_TRUE(limited) << sys.render(limited.error());
  EXPECT_EQ(limited->scope.client_ids, (std::vector<std::string>{"c1", "c3"}));
  EXPECT_EQ(stored("qa-1"), "{c1,c3}");

  auto narrowed = set_scope("qa-1", {true, {"c3"}});
  ASSERT_TRUE(narrowed) << sys.render(narrowed.error());
  EXPECT_EQ(stored("qa-1"), "{c3}");
  auto standing = ask<sbm::user_standing>(users, sbm::check_atom::value, std::string{"qa-1"});
  ASSERT_TRUE(standing);
  EXPECT_EQ(standing->scope.client_ids, std::vector<std::string>{"c3"});

  // An update that does not name the scope leaves it alone.
  sbm::user_update rename;
  rename.id = "qa-1";
  rename.set_display_name = true;
  rename.display_name = "Reviewer One";
  rename.by = admin();
  auto renamed = ask<sbm::user_record>(users, sbm::update_atom::value, std::move(rename));
  ASSERT_TRUE(renamed) << sys.render(renamed.error());
  EXPECT_EQ(renamed->scope.client_ids, std::vector<std::string>{"c3"});
  EXPECT_EQ(stored("qa-1"), "{c3}");

  auto lifted = set_scope("qa-1", {});
  ASSERT_TRUE(lifted) << sys.render(lifted.error());
  EXPECT_FALSE(lifted->scope.limited);
  EXPECT_EQ(stored("qa-1"), "NULL");

  // One audit row per change, in the change's own statement, naming the scope before and after.
  auto audit = sql("SELECT action, detail::json->'before'->>'client_ids', detail::json->'after'->>'client_ids' "
                   "FROM users.audit_log WHERE target = 'qa-1' ORDER BY id");
  ASSERT_EQ(audit.size(), 5u);
  EXPECT_EQ(audit[0][0], param{"user.create"});
  EXPECT_EQ(audit[1][0], param{"user.update"});
  EXPECT_EQ(audit[1][1], param{});  // NULL: it was unlimited
  EXPECT_EQ(audit[1][2], param{"[\"c1\", \"c3\"]"});
  EXPECT_EQ(audit[2][1], param{"[\"c1\", \"c3\"]"});
  EXPECT_EQ(audit[2][2], param{"[\"c3\"]"});
  EXPECT_EQ(audit[4][1], param{"[\"c3\"]"});
  EXPECT_EQ(audit[4][2], param{});
}

TEST_F(UsersScope, ABadScopeIsRefusedAndWritesNothing) {
  ASSERT_TRUE(create("qa-2", {true, {"c1"}}));
  const auto rows_before = sql("SELECT count(*) FROM users.audit_log")[0][0];
  auto control = set_scope("qa-2", {true, {"c1", std::string{"bad\x01id"}}});
  EXPECT_EQ(sbm::test::code(control), errc::invalid_argument);
  auto empty_id = create("qa-3", {true, {""}});
  EXPECT_EQ(sbm::test::code(empty_id), errc::invalid_argument);
  std::vector<std::string> too_many;
  for (int i = 0; i < 1001; ++i) too_many.push_back("c" + std::to_string(i));
  EXPECT_EQ(sbm::test::code(set_scope("qa-2", {true, too_many})), errc::invalid_argument);

  EXPECT_EQ(stored("qa-2"), "{c1}");
  EXPECT_EQ(stored("qa-3"), "<no row>");
  EXPECT_EQ(sql("SELECT count(*) FROM users.audit_log")[0][0], rows_before);
}

}  // namespace

#include <gtest/gtest.h>

#include "gateway/access.hpp"

using namespace sbm::gateway;

TEST(Access, RolesGrantWhatTheSpecSays) {
  auto qa = *role_permissions("qa");
  EXPECT_TRUE(qa.has("quality.write"));
  EXPECT_TRUE(qa.has("reports.write"));
  EXPECT_FALSE(qa.has("buckets.pin"));
  EXPECT_FALSE(qa.has("audit.read"));
  EXPECT_TRUE(qa.has("drafts.correct"));  // QA tries a draft's corrections
  auto lead = *role_permissions("qa_lead");
  EXPECT_TRUE(lead.has("buckets.pin"));
  EXPECT_TRUE(lead.has("audit.read"));
  EXPECT_FALSE(lead.has("users.admin"));
  EXPECT_TRUE(role_permissions("admin")->has("users.admin"));
  EXPECT_FALSE(role_permissions("root"));
  EXPECT_FALSE(role_permissions(""));
}

TEST(Access, ServicesNeedTheAllowListAndCannotWidenIt) {
  auto parsed = parse_service_allow_list("drafting=speakers.read+drafts.correct; reporting = reports.read");
  ASSERT_TRUE(std::holds_alternative<service_allow_list>(parsed)) << std::get<std::string>(parsed);
  auto& services = std::get<service_allow_list>(parsed);
  std::string why;
  auto p = make_principal("drafting", "", "drafting", {}, services, why);
  ASSERT_TRUE(p);
  EXPECT_TRUE(p->may("drafts.correct"));
  EXPECT_FALSE(p->may("buckets.pin"));
  p = make_principal("drafting", "admin", "drafting", {"speakers.read", "users.admin"}, services, why);
  ASSERT_TRUE(p);
  EXPECT_TRUE(p->may("speakers.read"));
  EXPECT_FALSE(p->may("users.admin"));
  EXPECT_FALSE(p->may("drafts.correct"));
  EXPECT_FALSE(make_principal("evil", "", "evil", {}, services, why));
  EXPECT_NE(why.find("allow-list"), std::string::npos);
}

TEST(Access, AllowListRejectsUnknownPermissions) {
  EXPECT_TRUE(std::holds_alternative<std::string>(parse_service_allow_list("x=speakers.delete")));
  EXPECT_TRUE(std::holds_alternative<std::string>(parse_service_allow_list("=speakers.read")));
  EXPECT_TRUE(std::holds_alternative<std::string>(parse_service_allow_list("nameonly")));
  EXPECT_TRUE(std::holds_alternative<service_allow_list>(parse_service_allow_list("")));
}

TEST(Access, OpsReadIsForAdminsAndServicesGrantedIt) {
  EXPECT_TRUE(role_permissions("admin")->has("ops.read"));
  EXPECT_FALSE(role_permissions("qa_lead")->has("ops.read"));
  EXPECT_FALSE(role_permissions("qa")->has("ops.read"));
  auto parsed = parse_service_allow_list("monitor=ops.read");
  ASSERT_TRUE(std::holds_alternative<service_allow_list>(parsed)) << std::get<std::string>(parsed);
  std::string why;
  auto p = make_principal("monitor", "", "monitor", {}, std::get<service_allow_list>(parsed), why);
  ASSERT_TRUE(p);
  EXPECT_TRUE(p->may("ops.read"));
}

TEST(Access, ATokenNarrowsTheRegisteredScopeAndNeverWidensIt) {
  sbm::client_scope unlimited;
  sbm::client_scope clinic_a{true, {"clinic-a"}};
  // no claim: the registered scope as it is
  EXPECT_FALSE(narrow_scope(unlimited, false, {}).limited);
  auto kept = narrow_scope(clinic_a, false, {});
  EXPECT_TRUE(kept.limited);
  EXPECT_EQ(kept.client_ids, std::vector<std::string>{"clinic-a"});
  // a claim limits an unlimited user (sorted, unique)
  auto claimed = narrow_scope(unlimited, true, {"b", "a", "b"});
  EXPECT_TRUE(claimed.limited);
  EXPECT_EQ(claimed.client_ids, (std::vector<std::string>{"a", "b"}));
  EXPECT_TRUE(claimed.admits("a"));
  EXPECT_FALSE(claimed.admits("c"));
  // a claim naming more than the registered scope does not add to it
  auto widened = narrow_scope(clinic_a, true, {"clinic-a", "clinic-b"});
  EXPECT_EQ(widened.client_ids, std::vector<std::string>{"clinic-a"});
  EXPECT_FALSE(widened.admits("clinic-b"));
  // a claim outside it entirely leaves no client at all, not every client
  auto outside = narrow_scope(clinic_a, true, {"clinic-b"});
  EXPECT_TRUE(outside.limited);
  EXPECT_TRUE(outside.client_ids.empty());
  EXPECT_FALSE(outside.admits("clinic-a"));
  EXPECT_FALSE(outside.admits(""));
  // an empty claim is no client, not unlimited
  EXPECT_TRUE(narrow_scope(unlimited, true, {}).limited);
  EXPECT_FALSE(narrow_scope(unlimited, true, {}).admits("clinic-a"));
}

// Each `sbm` command reads its own SBM_* variables and leaves those of the others alone; a
// variable no command reads is refused by all of them.
#include "config/commands.hpp"

#include <gtest/gtest.h>

#include <map>

#include "config/node_options.hpp"

using namespace sbm::config;

namespace {

const std::vector<std::pair<std::string, std::string>> node_secrets{{"SBM_AUTH_KEYS", R"({"keys":[]})"},
                                                                    {"SBM_REPORTS_FERNET_KEY", "k"}};

sources env(std::vector<std::pair<std::string, std::string>> extra,
            std::vector<std::pair<std::string, std::string>> base = {}) {
  sources src;
  src.env = std::move(base);
  for (auto& kv : extra)
    src.env.push_back(std::move(kv));
  return src;
}

std::string error_of(const std::variant<settings, config_error>& r) {
  return std::holds_alternative<config_error>(r) ? std::get<config_error>(r).message : "";
}

}  // namespace

TEST(Commands, ANodeIgnoresTheClientCommandsVariables) {
  // The issue's case: SBM_TOKEN in the operator's shell stopped `sbm node` with exit 2.
  auto r = load_command("node", env({{"SBM_TOKEN", "eyJ..."}, {"SBM_URL", "http://n:8000"}}, node_secrets));
  ASSERT_TRUE(std::holds_alternative<settings>(r)) << error_of(r);
}

TEST(Commands, StatusIgnoresTheNodesVariablesAndReadsItsOwn) {
  auto r = load_command("status", env({{"SBM_TOKEN", "t"}, {"SBM_URL", "http://n:8000"},
                                       {"SBM_GATEWAY_PORT", "9000"}, {"SBM_CONFIG", "/nonexistent.conf"}},
                                      node_secrets));
  ASSERT_TRUE(std::holds_alternative<settings>(r)) << error_of(r);
  const auto& s = std::get<settings>(r);
  EXPECT_EQ(s.text("node"), "http://n:8000");
  EXPECT_EQ(s.secret("token"), "t");
  EXPECT_FALSE(s.boolean("json"));
}

TEST(Commands, MigrateReadsTheNodesDatabaseVariableAndNothingElse) {
  auto r = load_command("migrate", env({{"SBM_POSTGRES_URL", "postgresql://x/y"}, {"SBM_TOKEN", "t"}}, node_secrets));
  ASSERT_TRUE(std::holds_alternative<settings>(r)) << error_of(r);
  EXPECT_EQ(std::get<settings>(r).text("postgres.url"), "postgresql://x/y");
  EXPECT_FALSE(std::get<settings>(r).boolean("show"));
}

TEST(Commands, AVariableNoCommandReadsIsATypoForEveryCommand) {
  for (const auto& c : commands()) {
    for (const auto& [typo, meant] : std::vector<std::pair<std::string, std::string>>{
             {"SBM_TOKNE", "SBM_TOKEN"}, {"SBM_POSTGRES_ULR", "SBM_POSTGRES_URL"}, {"SBM_GATEWAY_PROT", "SBM_GATEWAY_PORT"}}) {
      auto r = load_command(c.name, env({{"SBM_URL", "http://n"}, {"SBM_TOKEN", "t"}, {typo, "x"}}, node_secrets));
      ASSERT_TRUE(std::holds_alternative<config_error>(r)) << c.name << " accepted " << typo;
      EXPECT_EQ(std::get<config_error>(r).key, typo) << c.name;
      EXPECT_NE(error_of(r).find("did you mean " + meant + "?"), std::string::npos) << c.name << ": " << error_of(r);
    }
  }
}

TEST(Commands, ClientSwitchesHaveNoVariable) {
  auto r = load_command("status", env({{"SBM_URL", "http://n"}, {"SBM_TOKEN", "t"}, {"SBM_JSON", "1"}}));
  EXPECT_EQ(std::get<config_error>(r).key, "SBM_JSON");
  r = load_command("migrate", env({{"SBM_SHOW", "1"}}));
  EXPECT_EQ(std::get<config_error>(r).key, "SBM_SHOW");
}

TEST(Commands, StatusNeedsANodeAndAToken) {
  auto r = load_command("status", env({{"SBM_TOKEN", "t"}}));
  ASSERT_TRUE(std::holds_alternative<config_error>(r));
  EXPECT_EQ(std::get<config_error>(r).key, "node");
  EXPECT_NE(error_of(r).find("SBM_URL or --node"), std::string::npos) << error_of(r);
  r = load_command("status", env({{"SBM_URL", "http://n"}}));
  ASSERT_TRUE(std::holds_alternative<config_error>(r));
  EXPECT_EQ(std::get<config_error>(r).key, "token");
  EXPECT_NE(error_of(r).find("SBM_TOKEN or --token-file=PATH"), std::string::npos) << error_of(r);
}

// One variable, one meaning: where two commands read the same variable it sets the same option,
// so SBM_POSTGRES_URL names the same database for `sbm migrate` as for the node it prepares.
TEST(Commands, ASharedVariableMeansTheSameOptionEverywhere) {
  std::map<std::string, const option_spec*> owner;
  for (const auto& c : commands()) {
    for (const auto& spec : c.options) {
      const auto name = env_variable(spec);
      if (name.empty())
        continue;
      auto [it, fresh] = owner.emplace(name, &spec);
      if (fresh)
        continue;
      EXPECT_EQ(it->second->key, spec.key) << name << " in " << c.name;
      EXPECT_EQ(it->second->kind, spec.kind) << name << " in " << c.name;
      EXPECT_EQ(it->second->default_value, spec.default_value) << name << " in " << c.name;
    }
  }
  EXPECT_EQ(command("node").options.size(), node_options().size());
}

// config/sbm.conf is the operator's documentation of every option: it must load, list every
// option, and state exactly the built-in defaults.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "config/node_options.hpp"

using namespace sbm::config;

namespace {

std::string read_file(const std::string& path) {
  std::ifstream in{path};
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

sources with_secrets(std::vector<std::string> flags) {
  sources src;
  src.env = {{"SBM_AUTH_KEYS", R"({"keys":[]})"}, {"SBM_REPORTS_FERNET_KEY", "k"}};
  src.flags = std::move(flags);
  return src;
}

}  // namespace

TEST(NodeOptions, DefaultsAreValidOnTheirOwn) {
  auto loaded = load(node_options(), with_secrets({}));
  ASSERT_TRUE(std::holds_alternative<settings>(loaded)) << std::get<config_error>(loaded).message;
}

TEST(NodeOptions, RequiredSecretMissingIsNamed) {
  sources src;
  auto loaded = load(node_options(), src);
  ASSERT_TRUE(std::holds_alternative<config_error>(loaded));
  EXPECT_EQ(std::get<config_error>(loaded).key, "auth.keys");
}

TEST(NodeOptions, ShippedConfigFileDocumentsEveryOptionWithItsDefault) {
  std::string path = std::string{SBM_SOURCE_DIR} + "/config/sbm.conf";
  auto loaded = load(node_options(), with_secrets({"--config=" + path}));
  ASSERT_TRUE(std::holds_alternative<settings>(loaded)) << std::get<config_error>(loaded).message;
  const auto& s = std::get<settings>(loaded);
  auto text = read_file(path);
  for (const auto& o : node_options()) {
    auto name = o.key.substr(o.key.find('.') + 1);
    if (o.kind == value_kind::secret) {
      EXPECT_NE(text.find("# " + name + "-file ="), std::string::npos) << o.key;
      continue;
    }
    if (o.default_value.empty()) {
      EXPECT_NE(text.find("\n# " + name + " ="), std::string::npos) << o.key << " is not in sbm.conf";
    } else {
      EXPECT_EQ(s.source_of(o.key), "file") << o.key;
      auto line = "\n" + name + " = " + o.default_value + "\n";
      EXPECT_NE(text.find(line), std::string::npos) << o.key << " default differs in sbm.conf";
    }
  }
}

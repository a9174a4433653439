#include "runtime/config/settings.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>

namespace sbm::config {
namespace {

using namespace std::chrono_literals;

std::vector<option_spec> test_schema() {
  return {
      {"gateway.port", value_kind::integer, "8080", "HTTP port of the gateway", false, 1, 65535, {}},
      {"gateway.host", value_kind::text, "0.0.0.0", "address the gateway binds", false, {}, {}, {}},
      {"log.level", value_kind::text, "info", "log verbosity", false, {}, {}, {"debug", "info", "warn", "error"}},
      {"bucket.threshold", value_kind::number, "0.85", "similarity that joins a bucket", false, 0, 1, {}},
      {"tls.enabled", value_kind::boolean, "false", "serve HTTPS", false, {}, {}, {}},
      {"instanote.timeout", value_kind::duration, "5s", "InstaNote request timeout", false, {}, {}, {}},
      {"auth.keys", value_kind::secret, "", "JWT verification keys", true, {}, {}, {}},
      {"db.password", value_kind::secret, "", "PostgreSQL password", false, {}, {}, {}},
      {"node.name", value_kind::text, "", "name of this node", false, {}, {}, {}},
  };
}

class SettingsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (std::filesystem::temp_directory_path() / "sbm-settings-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string write(const std::string& name, const std::string& content) {
    const auto path = (dir_ / name).string();
    std::ofstream(path, std::ios::binary) << content;
    return path;
  }

  // Sources that satisfy the required secret, plus environment noise that must be ignored.
  static sources base() {
    sources s;
    s.env = {{"PATH", "/usr/bin"}, {"HOME", "/root"}, {"SBM_AUTH_KEYS", "k1"}};
    return s;
  }

  static settings ok(const std::vector<option_spec>& schema, const sources& src) {
    auto result = load(schema, src);
    if (const auto* err = std::get_if<config_error>(&result))
      ADD_FAILURE() << "unexpected error for " << err->key << ": " << err->message;
    return std::get<settings>(std::move(result));  // on error, bad_variant_access ends the test
  }
  static settings ok(const sources& src) { return ok(test_schema(), src); }

  static config_error fails(const std::vector<option_spec>& schema, const sources& src) {
    auto result = load(schema, src);
    if (!std::holds_alternative<config_error>(result)) {
      ADD_FAILURE() << "expected an error, got settings:\n" << std::get<settings>(result).redacted_dump();
      return {};
    }
    return std::get<config_error>(result);
  }
  static config_error fails(const sources& src) { return fails(test_schema(), src); }

  static config_error flag_fails(const std::string& flag) {
    auto src = base();
    src.flags = {flag};
    return fails(src);
  }

  std::filesystem::path dir_;
};

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

TEST(EnvName, UppercasesAndMapsSeparators) {
  EXPECT_EQ(env_name("gateway.port"), "SBM_GATEWAY_PORT");
  EXPECT_EQ(env_name("auth.keys-file"), "SBM_AUTH_KEYS_FILE");
  EXPECT_EQ(env_name("a.b-c.d2"), "SBM_A_B_C_D2");
}

TEST_F(SettingsTest, DefaultsApplyWhenNothingElseIsGiven) {
  const auto s = ok(base());
  EXPECT_EQ(s.integer("gateway.port"), 8080);
  EXPECT_EQ(s.text("gateway.host"), "0.0.0.0");
  EXPECT_EQ(s.text("log.level"), "info");
  EXPECT_DOUBLE_EQ(s.number("bucket.threshold"), 0.85);
  EXPECT_FALSE(s.boolean("tls.enabled"));
  EXPECT_EQ(s.duration("instanote.timeout"), 5s);
  EXPECT_EQ(s.source_of("gateway.port"), "default");
  EXPECT_FALSE(s.has("node.name"));
  EXPECT_EQ(s.text("node.name"), "");
  EXPECT_TRUE(s.has("gateway.port"));
  EXPECT_FALSE(s.has("no.such.key"));
}

TEST_F(SettingsTest, PrecedenceIsFlagThenEnvThenFileThenDefault) {
  const auto file = write("sbm.conf", "[gateway]\nport = 1000\nhost = file-host\n");
  auto src = base();
  src.flags = {"--config", file, "--gateway.port=3000"};
  src.env.push_back({"SBM_GATEWAY_PORT", "2000"});

  auto s = ok(src);
  EXPECT_EQ(s.integer("gateway.port"), 3000);
  EXPECT_EQ(s.source_of("gateway.port"), "flag");
  EXPECT_EQ(s.text("gateway.host"), "file-host");
  EXPECT_EQ(s.source_of("gateway.host"), "file");

  src.flags = {"--config", file};
  s = ok(src);
  EXPECT_EQ(s.integer("gateway.port"), 2000);
  EXPECT_EQ(s.source_of("gateway.port"), "env");

  src.env.pop_back();
  s = ok(src);
  EXPECT_EQ(s.integer("gateway.port"), 1000);
  EXPECT_EQ(s.source_of("gateway.port"), "file");

  src.flags.clear();
  s = ok(src);
  EXPECT_EQ(s.integer("gateway.port"), 8080);
  EXPECT_EQ(s.source_of("gateway.port"), "default");
}

TEST_F(SettingsTest, ConfigFileCanComeFromSbmConfigAndTheFlagWins) {
  const auto from_env = write("env.conf", "gateway.port = 1111\n");
  const auto from_flag = write("flag.conf", "gateway.port = 2222\n");
  auto src = base();
  src.env.push_back({"SBM_CONFIG", from_env});
  EXPECT_EQ(ok(src).integer("gateway.port"), 1111);
  src.flags = {"--config=" + from_flag};
  EXPECT_EQ(ok(src).integer("gateway.port"), 2222);
}

TEST_F(SettingsTest, FlagsTakeEitherFormAndBareBooleansSwitchOn) {
  auto src = base();
  src.flags = {"--gateway.port", "9090", "--tls.enabled", "--log.level=debug"};
  auto s = ok(src);
  EXPECT_EQ(s.integer("gateway.port"), 9090);
  EXPECT_TRUE(s.boolean("tls.enabled"));
  EXPECT_EQ(s.text("log.level"), "debug");

  src.flags = {"--tls.enabled"};
  EXPECT_TRUE(ok(src).boolean("tls.enabled"));
  src.flags = {"--tls.enabled", "off"};
  EXPECT_FALSE(ok(src).boolean("tls.enabled"));
  src.flags = {"--gateway.port=1", "--gateway.port=2"};
  EXPECT_EQ(ok(src).integer("gateway.port"), 2) << "the last repeated flag wins";
}

TEST_F(SettingsTest, MalformedFlagsAreErrorsNamingTheArgument) {
  auto err = flag_fails("serve");
  EXPECT_EQ(err.key, "serve");
  EXPECT_TRUE(contains(err.message, "'serve'")) << err.message;

  err = flag_fails("-p");
  EXPECT_EQ(err.key, "-p");

  err = flag_fails("--gateway.port");
  EXPECT_EQ(err.key, "gateway.port");
  EXPECT_TRUE(contains(err.message, "needs a value")) << err.message;

  err = flag_fails("--config");
  EXPECT_EQ(err.key, "config");
}

TEST_F(SettingsTest, IntegersAreDecimalAndBounded) {
  auto src = base();
  for (const auto& [value, expected] : std::vector<std::pair<std::string, std::int64_t>>{
           {"1", 1}, {"65535", 65535}, {"443", 443}}) {
    src.flags = {"--gateway.port=" + value};
    EXPECT_EQ(ok(src).integer("gateway.port"), expected);
  }
  for (const std::string bad : {"0", "65536", "-5", "abc", "12x", "", "0x10", "1.5", " 80",
                                "99999999999999999999"}) {
    const auto err = flag_fails("--gateway.port=" + bad);
    EXPECT_EQ(err.key, "gateway.port") << bad;
    EXPECT_TRUE(contains(err.message, "'" + bad + "'")) << err.message;
    EXPECT_TRUE(contains(err.message, "an integer between 1 and 65535")) << err.message;
  }
}

TEST_F(SettingsTest, NumbersAreFiniteAndBounded) {
  auto src = base();
  src.flags = {"--bucket.threshold=0.5"};
  EXPECT_DOUBLE_EQ(ok(src).number("bucket.threshold"), 0.5);
  src.flags = {"--bucket.threshold=1e-1"};
  EXPECT_DOUBLE_EQ(ok(src).number("bucket.threshold"), 0.1);
  src.flags = {"--bucket.threshold=1"};
  EXPECT_DOUBLE_EQ(ok(src).number("bucket.threshold"), 1.0);
  for (const std::string bad : {"1.5", "-0.1", "abc", "nan", "inf", "0.5x", ""}) {
    const auto err = flag_fails("--bucket.threshold=" + bad);
    EXPECT_EQ(err.key, "bucket.threshold") << bad;
    EXPECT_TRUE(contains(err.message, "a number between 0 and 1")) << err.message;
  }
}

TEST_F(SettingsTest, BooleansAcceptTheDocumentedSpellings) {
  auto src = base();
  for (const std::string yes : {"true", "yes", "on", "1", "TRUE", "Yes"}) {
    src.env = {{"SBM_AUTH_KEYS", "k"}, {"SBM_TLS_ENABLED", yes}};
    EXPECT_TRUE(ok(src).boolean("tls.enabled")) << yes;
  }
  for (const std::string no : {"false", "no", "off", "0", "OFF"}) {
    src.env = {{"SBM_AUTH_KEYS", "k"}, {"SBM_TLS_ENABLED", no}};
    EXPECT_FALSE(ok(src).boolean("tls.enabled")) << no;
  }
  for (const std::string bad : {"maybe", "2", "", "y"}) {
    src.env = {{"SBM_AUTH_KEYS", "k"}, {"SBM_TLS_ENABLED", bad}};
    const auto err = fails(src);
    EXPECT_EQ(err.key, "tls.enabled") << bad;
    EXPECT_TRUE(contains(err.message, "SBM_TLS_ENABLED")) << "names where the value came from: " << err.message;
  }
}

TEST_F(SettingsTest, DurationsNeedAUnit) {
  auto src = base();
  for (const auto& [value, expected] : std::vector<std::pair<std::string, std::chrono::milliseconds>>{
           {"250ms", 250ms}, {"5s", 5s}, {"2m", 2min}, {"1h", 1h}, {"0s", 0ms}}) {
    src.flags = {"--instanote.timeout=" + value};
    EXPECT_EQ(ok(src).duration("instanote.timeout"), expected) << value;
  }
  for (const std::string bad : {"5", "250", "5x", "ms", "-5s", "1.5s", "5 s", "", "9999999999999999999h"}) {
    const auto err = flag_fails("--instanote.timeout=" + bad);
    EXPECT_EQ(err.key, "instanote.timeout") << bad;
    EXPECT_TRUE(contains(err.message, "unit")) << err.message;
  }
}

TEST_F(SettingsTest, DurationBoundsAreInMilliseconds) {
  const std::vector<option_spec> schema{
      {"retry.base", value_kind::duration, "1s", "first retry delay", false, 10, 60000, {}}};
  sources src;
  src.flags = {"--retry.base=1m"};
  EXPECT_EQ(ok(schema, src).duration("retry.base"), 1min);
  src.flags = {"--retry.base=2m"};
  EXPECT_TRUE(contains(fails(schema, src).message, "between 10ms and 60000ms"));
  src.flags = {"--retry.base=5ms"};
  EXPECT_EQ(fails(schema, src).key, "retry.base");
}

TEST_F(SettingsTest, TextChoicesAreEnforced) {
  auto src = base();
  src.flags = {"--log.level=warn"};
  EXPECT_EQ(ok(src).text("log.level"), "warn");
  const auto err = flag_fails("--log.level=verbose");
  EXPECT_EQ(err.key, "log.level");
  EXPECT_TRUE(contains(err.message, "'verbose'")) << err.message;
  EXPECT_TRUE(contains(err.message, "'debug', 'info', 'warn', 'error'")) << err.message;
  EXPECT_EQ(flag_fails("--log.level=").key, "log.level") << "empty is not one of the choices";

  src.flags = {"--node.name="};
  EXPECT_FALSE(ok(src).has("node.name")) << "free text may be emptied";
}

TEST_F(SettingsTest, UnknownOptionsAreRejectedWithASuggestion) {
  auto err = flag_fails("--gateway.prot=1");
  EXPECT_EQ(err.key, "gateway.prot");
  EXPECT_TRUE(contains(err.message, "unknown option 'gateway.prot'")) << err.message;
  EXPECT_TRUE(contains(err.message, "did you mean 'gateway.port'?")) << err.message;

  err = flag_fails("--completely.different=1");
  EXPECT_TRUE(contains(err.message, "unknown option 'completely.different'")) << err.message;
  EXPECT_FALSE(contains(err.message, "did you mean")) << err.message;

  err = flag_fails("--auth.key-file=/x");
  EXPECT_TRUE(contains(err.message, "did you mean 'auth.keys-file'?")) << err.message;

  const auto file = write("typo.conf", "[gateway]\nhots = example\n");
  auto src = base();
  src.flags = {"--config", file};
  err = fails(src);
  EXPECT_EQ(err.key, "gateway.hots");
  EXPECT_TRUE(contains(err.message, "did you mean 'gateway.host'?")) << err.message;
  EXPECT_TRUE(contains(err.message, "line 2")) << err.message;
}

TEST_F(SettingsTest, UnknownSbmEnvironmentVariablesAreRejected) {
  auto src = base();
  src.env.push_back({"SBM_FOO", "1"});
  auto err = fails(src);
  EXPECT_EQ(err.key, "SBM_FOO");
  EXPECT_TRUE(contains(err.message, "unknown environment variable SBM_FOO")) << err.message;

  src = base();
  src.env.push_back({"SBM_GATEWAY_PROT", "1"});
  err = fails(src);
  EXPECT_TRUE(contains(err.message, "did you mean SBM_GATEWAY_PORT?")) << err.message;

  src = base();
  src.env.push_back({"SBMX_GATEWAY_PORT", "1"});
  src.env.push_back({"sbm_gateway_port", "1"});
  src.env.push_back({"XSBM_FOO", "1"});
  EXPECT_EQ(ok(src).integer("gateway.port"), 8080) << "only variables starting with SBM_ are ours";
}

TEST_F(SettingsTest, SecretsComeFromTheEnvironment) {
  const auto s = ok(base());
  EXPECT_EQ(s.secret("auth.keys"), "k1");
  EXPECT_EQ(s.source_of("auth.keys"), "env");
  EXPECT_FALSE(s.has("db.password"));
  EXPECT_THROW(s.secret("db.password"), std::out_of_range);
}

TEST_F(SettingsTest, SecretsComeFromFilesNamedByAnySource) {
  const auto keys = write("keys", "file-secret\n");
  const auto other = write("other", "flag-secret\r\n");

  sources src;
  src.env = {{"SBM_AUTH_KEYS_FILE", keys}};
  auto s = ok(src);
  EXPECT_EQ(s.secret("auth.keys"), "file-secret") << "the trailing newline is trimmed";
  EXPECT_EQ(s.source_of("auth.keys"), "env");

  const auto conf = write("sbm.conf", "[auth]\nkeys-file = " + keys + "\n");
  src = {};
  src.flags = {"--config", conf};
  s = ok(src);
  EXPECT_EQ(s.secret("auth.keys"), "file-secret");
  EXPECT_EQ(s.source_of("auth.keys"), "file");

  src.flags = {"--config", conf, "--auth.keys-file=" + other};
  s = ok(src);
  EXPECT_EQ(s.secret("auth.keys"), "flag-secret");
  EXPECT_EQ(s.source_of("auth.keys"), "flag");

  src.flags = {"--config", conf};
  src.env = {{"SBM_AUTH_KEYS", "env-secret"}};
  s = ok(src);
  EXPECT_EQ(s.secret("auth.keys"), "env-secret") << "a plain env secret beats a file named in the config file";
}

TEST_F(SettingsTest, PlainTextSecretsAreRefusedInFilesAndFlags) {
  auto err = flag_fails("--auth.keys=hunter2");
  EXPECT_EQ(err.key, "auth.keys");
  EXPECT_TRUE(contains(err.message, "SBM_AUTH_KEYS")) << err.message;
  EXPECT_TRUE(contains(err.message, "auth.keys-file")) << err.message;
  EXPECT_FALSE(contains(err.message, "hunter2")) << "the refused secret is not echoed";

  const auto conf = write("plain.conf", "[db]\npassword = hunter2\n");
  auto src = base();
  src.flags = {"--config", conf};
  err = fails(src);
  EXPECT_EQ(err.key, "db.password");
  EXPECT_TRUE(contains(err.message, "SBM_DB_PASSWORD")) << err.message;
  EXPECT_FALSE(contains(err.message, "hunter2"));
}

TEST_F(SettingsTest, SecretFileProblemsNameTheKeyAndPath) {
  const auto missing = (dir_ / "absent").string();
  sources src;
  src.env = {{"SBM_AUTH_KEYS_FILE", missing}};
  auto err = fails(src);
  EXPECT_EQ(err.key, "auth.keys");
  EXPECT_TRUE(contains(err.message, missing)) << err.message;
  EXPECT_TRUE(contains(err.message, "'auth.keys'")) << err.message;

  src.env = {{"SBM_AUTH_KEYS_FILE", dir_.string()}};
  EXPECT_EQ(fails(src).key, "auth.keys") << "a directory is not a secret file";

  src.env = {{"SBM_AUTH_KEYS_FILE", write("empty", "\n")}};
  EXPECT_TRUE(contains(fails(src).message, "is empty"));

  src.env = {{"SBM_AUTH_KEYS", "a"}, {"SBM_AUTH_KEYS_FILE", write("k", "b")}};
  err = fails(src);
  EXPECT_EQ(err.key, "auth.keys");
  EXPECT_TRUE(contains(err.message, "set only one")) << err.message;
}

TEST_F(SettingsTest, MissingRequiredValuesAreErrors) {
  auto err = fails(sources{});
  EXPECT_EQ(err.key, "auth.keys");
  EXPECT_EQ(err.message, "missing required secret 'auth.keys': set SBM_AUTH_KEYS or auth.keys-file = PATH");

  sources src;
  src.env = {{"SBM_AUTH_KEYS", ""}};
  EXPECT_EQ(fails(src).key, "auth.keys") << "an empty secret is no secret";

  const std::vector<option_spec> schema{
      {"node.cluster", value_kind::text, "", "cluster name", true, {}, {}, {}}};
  err = fails(schema, sources{});
  EXPECT_EQ(err.key, "node.cluster");
  EXPECT_TRUE(contains(err.message, "missing required option 'node.cluster'")) << err.message;
  EXPECT_TRUE(contains(err.message, "SBM_NODE_CLUSTER")) << err.message;
  src = {};
  src.flags = {"--node.cluster="};
  EXPECT_EQ(fails(schema, src).key, "node.cluster");
  src.flags = {"--node.cluster=blue"};
  EXPECT_EQ(ok(schema, src).text("node.cluster"), "blue");
}

TEST_F(SettingsTest, MissingOrUnreadableConfigFileIsAnError) {
  const auto absent = (dir_ / "absent.conf").string();
  auto src = base();
  src.flags = {"--config", absent};
  auto err = fails(src);
  EXPECT_EQ(err.key, "config");
  EXPECT_TRUE(contains(err.message, absent)) << err.message;
  EXPECT_TRUE(contains(err.message, "--config")) << err.message;

  src = base();
  src.env.push_back({"SBM_CONFIG", absent});
  err = fails(src);
  EXPECT_EQ(err.key, "config");
  EXPECT_TRUE(contains(err.message, "SBM_CONFIG")) << err.message;

  src = base();
  src.flags = {"--config=" + dir_.string()};
  EXPECT_EQ(fails(src).key, "config");
}

TEST_F(SettingsTest, ConfigFileSyntax) {
  const auto conf = write("full.conf",
                          "# a comment\n"
                          "; another comment\n"
                          "\n"
                          "log.level = warn\n"
                          "[ gateway ]\n"
                          "   port=  9000  \n"
                          "host = \"  spaced host  \"\n"
                          "\n"
                          "[bucket]\n"
                          "threshold = 0.7\n"
                          "[tls]\n"
                          "enabled = yes\n"
                          "[instanote]\n"
                          "timeout = 250ms\n");
  auto src = base();
  src.flags = {"--config", conf};
  const auto s = ok(src);
  EXPECT_EQ(s.text("log.level"), "warn");
  EXPECT_EQ(s.integer("gateway.port"), 9000);
  EXPECT_EQ(s.text("gateway.host"), "  spaced host  ") << "quotes keep inner spaces";
  EXPECT_DOUBLE_EQ(s.number("bucket.threshold"), 0.7);
  EXPECT_TRUE(s.boolean("tls.enabled"));
  EXPECT_EQ(s.duration("instanote.timeout"), 250ms);

  for (const std::string bad : {"[gateway\nport = 1\n", "[gateway]\nport 1\n", "[]\n",
                                "[gateway]\nport = 1\nport = 2\n", "= 5\n"}) {
    src.flags = {"--config", write("bad.conf", bad)};
    const auto err = fails(src);
    EXPECT_EQ(err.key, "config") << bad;
    EXPECT_TRUE(contains(err.message, "line")) << err.message;
  }
}

TEST_F(SettingsTest, WithReplacesOneValueLikeAFlag) {
  const auto s = ok(base());
  auto changed = s.with("gateway.port", "7000");
  ASSERT_TRUE(std::holds_alternative<settings>(changed));
  const auto& c = std::get<settings>(changed);
  EXPECT_EQ(c.integer("gateway.port"), 7000);
  EXPECT_EQ(c.source_of("gateway.port"), "flag");
  EXPECT_EQ(s.integer("gateway.port"), 8080) << "the original is untouched";
  EXPECT_EQ(c.secret("auth.keys"), "k1") << "other values are kept";

  auto bad = s.with("gateway.port", "70000");
  ASSERT_TRUE(std::holds_alternative<config_error>(bad));
  EXPECT_EQ(std::get<config_error>(bad).key, "gateway.port");

  bad = s.with("gateway.prot", "1");
  ASSERT_TRUE(std::holds_alternative<config_error>(bad));
  EXPECT_TRUE(contains(std::get<config_error>(bad).message, "did you mean 'gateway.port'?"));

  bad = s.with("db.password", "hunter2");
  ASSERT_TRUE(std::holds_alternative<config_error>(bad)) << "a secret is refused in plain text";

  const auto path = write("pw", "from-file\n");
  auto secret = s.with("db.password-file", path);
  ASSERT_TRUE(std::holds_alternative<settings>(secret));
  EXPECT_EQ(std::get<settings>(secret).secret("db.password"), "from-file");

  bad = s.with("auth.keys-file", "");
  ASSERT_TRUE(std::holds_alternative<config_error>(bad)) << "a required secret cannot be removed";
}

TEST_F(SettingsTest, AccessorsCheckKeyAndKind) {
  const auto s = ok(base());
  EXPECT_THROW(s.integer("gateway.prot"), std::out_of_range);
  EXPECT_THROW(s.text("nope"), std::out_of_range);
  EXPECT_THROW(s.source_of("nope"), std::out_of_range);
  EXPECT_THROW(s.text("gateway.port"), std::invalid_argument);
  EXPECT_THROW(s.text("auth.keys"), std::invalid_argument) << "secrets are read only through secret()";
  EXPECT_THROW(s.boolean("instanote.timeout"), std::invalid_argument);
}

TEST_F(SettingsTest, EmptyTypedValuesAreRejected) {
  auto src = base();
  src.env.push_back({"SBM_GATEWAY_PORT", ""});
  EXPECT_EQ(fails(src).key, "gateway.port");
}

TEST_F(SettingsTest, RedactedDumpShowsValuesAndSourcesButNoSecrets) {
  auto src = base();
  src.env = {{"SBM_AUTH_KEYS", "super-secret-value"}, {"SBM_DB_PASSWORD_FILE", write("pw", "pw-content\n")}};
  src.flags = {"--gateway.host=example\nfake = line"};
  const auto dump = ok(src).redacted_dump();
  EXPECT_TRUE(contains(dump, "gateway.port = 8080 (default)\n")) << dump;
  EXPECT_TRUE(contains(dump, "auth.keys = <redacted> (env)\n")) << dump;
  EXPECT_TRUE(contains(dump, "db.password = <redacted> (env, from file ")) << dump;
  EXPECT_TRUE(contains(dump, "node.name = <unset> (default)\n")) << dump;
  EXPECT_TRUE(contains(dump, "gateway.host = example\\nfake = line (flag)\n")) << "no forged log lines: " << dump;
  EXPECT_FALSE(contains(dump, "super-secret-value")) << dump;
  EXPECT_FALSE(contains(dump, "pw-content")) << dump;
}

TEST_F(SettingsTest, HelpTextListsEveryOptionWithItsEnvironmentName) {
  const auto schema = test_schema();
  const auto help = help_text(schema);
  for (const auto& spec : schema) {
    EXPECT_TRUE(contains(help, "  " + spec.key + "  (" + std::string(to_string(spec.kind)))) << spec.key;
    EXPECT_TRUE(contains(help, env_name(spec.key))) << spec.key;
    EXPECT_TRUE(contains(help, spec.help)) << spec.key;
  }
  EXPECT_TRUE(contains(help, "default 8080"));
  EXPECT_TRUE(contains(help, "SBM_AUTH_KEYS_FILE"));
  EXPECT_TRUE(contains(help, "--auth.keys-file=PATH"));
  EXPECT_TRUE(contains(help, "required"));
  EXPECT_TRUE(contains(help, "between 1 and 65535"));
}

// The rule that lets each `sbm` command own its variables: another command's variable is left
// alone, a variable no command reads is still a typo.
TEST_F(SettingsTest, VariablesOfOtherCommandsAreLeftAloneAndTyposStillRefused) {
  load_rules rules;
  rules.other_variables = {"SBM_TOKEN", "SBM_URL"};
  auto src = base();
  src.env.push_back({"SBM_TOKEN", "not-for-this-command"});
  src.env.push_back({"SBM_URL", "http://x"});
  auto loaded = load(test_schema(), src, rules);
  ASSERT_TRUE(std::holds_alternative<settings>(loaded)) << std::get<config_error>(loaded).message;
  EXPECT_EQ(std::get<settings>(loaded).integer("gateway.port"), 8080);

  EXPECT_EQ(fails(src).key, "SBM_TOKEN") << "without the rule, another command's variable is unknown";

  src = base();
  src.env.push_back({"SBM_TOKNE", "x"});
  auto result = load(test_schema(), src, rules);
  ASSERT_TRUE(std::holds_alternative<config_error>(result));
  EXPECT_EQ(std::get<config_error>(result).key, "SBM_TOKNE");
  EXPECT_TRUE(contains(std::get<config_error>(result).message, "did you mean SBM_TOKEN?"))
      << "a typo of another command's variable is named after it: " << std::get<config_error>(result).message;

  src = base();
  src.env.push_back({"SBM_GATEWAY_PROT", "1"});
  result = load(test_schema(), src, rules);
  ASSERT_TRUE(std::holds_alternative<config_error>(result));
  EXPECT_TRUE(contains(std::get<config_error>(result).message, "did you mean SBM_GATEWAY_PORT?"));
}

TEST_F(SettingsTest, AnOptionMayNameItsVariableOrHaveNone) {
  std::vector<option_spec> schema{
      {"node", value_kind::text, "", "the node's URL", true, {}, {}, {}, std::string{"SBM_URL"}},
      {"json", value_kind::boolean, "false", "raw output", false, {}, {}, {}, std::string{}},
      {"token", value_kind::secret, "", "bearer token", false, {}, {}, {}}};
  load_rules no_file;
  no_file.config_file = false;
  EXPECT_EQ(env_variables(schema, no_file), (std::vector<std::string>{"SBM_URL", "SBM_TOKEN", "SBM_TOKEN_FILE"}));
  EXPECT_EQ(env_variables(schema).front(), "SBM_CONFIG");

  sources src;
  src.env = {{"SBM_URL", "http://a"}, {"SBM_TOKEN_FILE", write("t", "tok\n")}};
  src.flags = {"--json"};
  auto loaded = load(schema, src, no_file);
  ASSERT_TRUE(std::holds_alternative<settings>(loaded)) << std::get<config_error>(loaded).message;
  const auto& s = std::get<settings>(loaded);
  EXPECT_EQ(s.text("node"), "http://a");
  EXPECT_EQ(s.secret("token"), "tok");
  EXPECT_TRUE(s.boolean("json"));

  src.env = {{"SBM_URL", "http://a"}, {"SBM_NODE", "http://b"}};
  EXPECT_EQ(fails(schema, src).key, "SBM_NODE") << "the derived name is not read when another is named";
  src.env = {{"SBM_URL", "http://a"}, {"SBM_JSON", "true"}};
  EXPECT_EQ(fails(schema, src).key, "SBM_JSON") << "a switch has no variable";

  auto err = fails(schema, sources{});
  EXPECT_EQ(err.key, "node");
  EXPECT_TRUE(contains(err.message, "SBM_URL or --node")) << err.message;

  sources plain;
  plain.env = {{"SBM_URL", "http://a"}};
  plain.flags = {"--token=abc"};
  auto refused = load(schema, plain, no_file);
  ASSERT_TRUE(std::holds_alternative<config_error>(refused));
  EXPECT_TRUE(contains(std::get<config_error>(refused).message, "set SBM_TOKEN or --token-file=PATH"))
      << std::get<config_error>(refused).message;

  const auto help = help_text(schema, no_file);
  EXPECT_TRUE(contains(help, "env SBM_URL; flag --node")) << help;
  EXPECT_TRUE(contains(help, "      flag --json\n")) << help;
  EXPECT_TRUE(contains(help, "env SBM_TOKEN or SBM_TOKEN_FILE; flag --token-file=PATH")) << help;
  EXPECT_FALSE(contains(help, "config file")) << help;
}

TEST_F(SettingsTest, ACommandWithoutAConfigFileRefusesConfigAndLeavesSbmConfigToOthers) {
  const std::vector<option_spec> schema{{"a.b", value_kind::text, "x", "", false, {}, {}, {}}};
  load_rules rules;
  rules.config_file = false;
  sources src;
  src.flags = {"--config=" + write("c.conf", "a.b = from-file\n")};
  auto result = load(schema, src, rules);
  ASSERT_TRUE(std::holds_alternative<config_error>(result));
  EXPECT_TRUE(contains(std::get<config_error>(result).message, "unknown option 'config'"));

  src.flags.clear();
  src.env = {{"SBM_CONFIG", write("d.conf", "a.b = from-file\n")}};
  result = load(schema, src, rules);
  ASSERT_TRUE(std::holds_alternative<config_error>(result)) << "SBM_CONFIG is nobody's here";
  rules.other_variables = {"SBM_CONFIG"};
  result = load(schema, src, rules);
  ASSERT_TRUE(std::holds_alternative<settings>(result));
  EXPECT_EQ(std::get<settings>(result).text("a.b"), "x") << "another command's config file is not read";
}

TEST(SettingsSchema, TheTestSchemaIsValid) {
  sources src;
  src.env = {{"SBM_AUTH_KEYS", "k"}};
  EXPECT_TRUE(std::holds_alternative<settings>(load(test_schema(), src)));
}

TEST(SettingsSchema, SchemaBugsAreCaught) {
  const auto schema_error = [](std::vector<option_spec> schema) {
    const auto result = load(schema, sources{});
    if (!std::holds_alternative<config_error>(result)) return std::string("<accepted>");
    return std::get<config_error>(result).message;
  };
  const auto bad = [&](option_spec spec) { return schema_error({std::move(spec)}); };

  EXPECT_TRUE(contains(bad({"a.port", value_kind::integer, "http", "", false, {}, {}, {}}), "invalid default"));
  EXPECT_TRUE(contains(bad({"a.port", value_kind::integer, "0", "", false, 1, 10, {}}), "invalid default"));
  EXPECT_TRUE(contains(bad({"a.wait", value_kind::duration, "30", "", false, {}, {}, {}}), "invalid default"));
  EXPECT_TRUE(contains(bad({"a.mode", value_kind::text, "x", "", false, {}, {}, {"y", "z"}}), "invalid default"));
  EXPECT_TRUE(contains(bad({"a.flag", value_kind::boolean, "sure", "", false, {}, {}, {}}), "invalid default"));
  EXPECT_TRUE(contains(bad({"a.key", value_kind::secret, "dev-key", "", false, {}, {}, {}}), "must not have a default"));
  EXPECT_TRUE(contains(bad({"a.n", value_kind::integer, "", "", false, 5, 1, {}}), "min > max"));
  EXPECT_TRUE(contains(bad({"a.s", value_kind::text, "", "", false, 1, {}, {}}), "bounds"));
  EXPECT_TRUE(contains(bad({"a.n", value_kind::integer, "", "", false, {}, {}, {"1"}}), "choices"));
  EXPECT_TRUE(contains(bad({"A.Port", value_kind::integer, "", "", false, {}, {}, {}}), "not a valid key"));
  EXPECT_TRUE(contains(bad({"a..b", value_kind::integer, "", "", false, {}, {}, {}}), "not a valid key"));
  EXPECT_TRUE(contains(bad({"a.-b", value_kind::integer, "", "", false, {}, {}, {}}), "not a valid key"));
  EXPECT_TRUE(contains(bad({"a.b.", value_kind::integer, "", "", false, {}, {}, {}}), "not a valid key"));
  EXPECT_TRUE(contains(bad({"config", value_kind::text, "", "", false, {}, {}, {}}), "reserved"));
  EXPECT_TRUE(contains(bad({"a.b", value_kind::text, "", "", false, {}, {}, {}, std::string{"TOKEN"}}),
                       "is not SBM_<NAME>"));
  EXPECT_TRUE(contains(bad({"a.b", value_kind::text, "", "", false, {}, {}, {}, std::string{"SBM_CONFIG"}}),
                       "reserved variable SBM_CONFIG"));

  option_spec a{"a.b", value_kind::text, "", "", false, {}, {}, {}};
  option_spec b = a;
  EXPECT_TRUE(contains(schema_error({a, b}), "declared twice"));
  b.key = "a-b";
  EXPECT_TRUE(contains(schema_error({a, b}), "SBM_A_B")) << "two keys may not share an env variable";
  option_spec secret{"db.pw", value_kind::secret, "", "", false, {}, {}, {}};
  option_spec clash{"db.pw-file", value_kind::text, "", "", false, {}, {}, {}};
  EXPECT_TRUE(contains(schema_error({secret, clash}), "reserved"));
}

}  // namespace
}  // namespace sbm::config

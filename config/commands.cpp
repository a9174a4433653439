#include "config/commands.hpp"

#include <stdexcept>
#include <string>

#include "config/node_options.hpp"

namespace sbm::config {

namespace {

option_spec option(std::string key, value_kind kind, std::string def, std::string help,
                   std::optional<std::string> env) {
  option_spec o;
  o.key = std::move(key);
  o.kind = kind;
  o.default_value = std::move(def);
  o.help = std::move(help);
  o.env = std::move(env);
  return o;
}

// A switch of one command: no variable, or `SBM_JSON` would change every command that has one.
option_spec flag_only(std::string key, value_kind kind, std::string def, std::string help) {
  return option(std::move(key), kind, std::move(def), std::move(help), std::string{});
}

option_spec node_option(std::string_view key) {
  for (const auto& o : node_options())
    if (o.key == key)
      return o;
  throw std::out_of_range("no node option " + std::string{key});
}

std::vector<command_options> make_commands() {
  auto url = option("node", value_kind::text, "", "the node's URL: http://HOST:PORT or https://HOST:PORT",
                    std::string{"SBM_URL"});
  url.required = true;
  auto token = option("token", value_kind::secret, "",
                      "a bearer token with ops.read (an admin's, or a service granted it)", std::nullopt);
  token.required = true;
  auto timeout = flag_only("timeout", value_kind::duration, "10s", "longest wait for the whole answer");
  timeout.min = 1;
  timeout.max = 3'600'000;
  // `sbm cluster status` reads the same document the same way, so it takes the same options.
  const std::vector<option_spec> status_options{
      url, token, timeout,
      flag_only("json", value_kind::boolean, "false", "print the document GET /v1/status answered, as it came"),
      flag_only("cacert", value_kind::text, "",
                "PEM file of the CA an https node's certificate is checked against (default: the "
                "system's CAs)")};
  return {
      {"node", node_options(), true},
      {"status", status_options, false},
      {"cluster status", status_options, false},
      // The same options; the token needs cluster.admin (an admin's).
      {"cluster drain", status_options, false},
      {"migrate",
       {node_option("postgres.url"),
        flag_only("show", value_kind::boolean, "false", "list applied and pending migrations, apply nothing"),
        flag_only("dry-run", value_kind::boolean, "false", "the same as --show")},
       false},
  };
}

}  // namespace

const std::vector<command_options>& commands() {
  static const std::vector<command_options> all = make_commands();
  return all;
}

const command_options& command(std::string_view name) {
  for (const auto& c : commands())
    if (c.name == name)
      return c;
  throw std::out_of_range("no command " + std::string{name});
}

load_rules rules_for(std::string_view name) {
  load_rules rules;
  rules.config_file = command(name).config_file;
  for (const auto& c : commands())
    if (c.name != name)
      for (auto& variable : env_variables(c.options, load_rules{c.config_file, {}}))
        rules.other_variables.push_back(std::move(variable));
  return rules;
}

std::variant<settings, config_error> load_command(std::string_view name, const sources& src) {
  return load(command(name).options, src, rules_for(name));
}

std::string command_help(std::string_view name) {
  return help_text(command(name).options, rules_for(name));
}

}  // namespace sbm::config

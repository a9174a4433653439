#pragma once
// The options of every `sbm` subcommand that reads SBM_* variables. Each command reads only its own
// variables: one that another command reads (SBM_TOKEN in a node's shell) is left alone, and one
// that no command reads is a typo and refused by all of them, with the closest name suggested.
#include <string_view>
#include <variant>
#include <vector>

#include "runtime/config/settings.hpp"

namespace sbm::config {

struct command_options {
  std::string_view name;  // the subcommand: "node", "status", "migrate"
  std::vector<option_spec> options;
  bool config_file = false;  // reads --config FILE / SBM_CONFIG
};

const std::vector<command_options>& commands();
const command_options& command(std::string_view name);  // std::out_of_range for an unknown name
load_rules rules_for(std::string_view name);
std::variant<settings, config_error> load_command(std::string_view name, const sources& src);
std::string command_help(std::string_view name);  // the option table for `sbm NAME --help`

}  // namespace sbm::config

#pragma once
// How a subcommand reads its options: the arguments after its name and the process environment,
// through config::load_command (its own SBM_* variables; others' left alone, typos refused).
#include <optional>
#include <string_view>

#include "runtime/config/settings.hpp"

namespace sbm::cli {

config::sources command_sources(int argc, char** argv);
bool wants_help(int argc, char** argv);  // --help or -h anywhere among the arguments

// `sbm NAME --help`: prints `about` (usage, what it does, exit codes) and the option table; true
// when help was asked for.
bool answered_help(std::string_view name, int argc, char** argv, std::string_view about);

// The command's settings; on a problem its message is printed ("sbm NAME: ...") and nullopt
// returned (the command exits 2).
std::optional<config::settings> command_settings(std::string_view name, int argc, char** argv);

}  // namespace sbm::cli

#include "cli/command_line.hpp"

#include <iostream>

#include "config/commands.hpp"

extern char** environ;

namespace sbm::cli {

config::sources command_sources(int argc, char** argv) {
  config::sources src;
  for (int i = 0; i < argc; ++i)
    src.flags.emplace_back(argv[i]);
  for (char** e = environ; *e; ++e) {
    std::string_view kv = *e;
    const auto eq = kv.find('=');
    if (eq != std::string_view::npos)
      src.env.emplace_back(std::string(kv.substr(0, eq)), std::string(kv.substr(eq + 1)));
  }
  return src;
}

bool wants_help(int argc, char** argv) {
  for (int i = 0; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h")
      return true;
  }
  return false;
}

bool answered_help(std::string_view name, int argc, char** argv, std::string_view about) {
  if (!wants_help(argc, argv))
    return false;
  std::cout << about << "\n" << config::command_help(name);
  return true;
}

std::optional<config::settings> command_settings(std::string_view name, int argc, char** argv) {
  auto loaded = config::load_command(name, command_sources(argc, argv));
  if (auto* err = std::get_if<config::config_error>(&loaded)) {
    std::cerr << "sbm " << name << ": " << err->message << "\n";
    return std::nullopt;
  }
  return std::get<config::settings>(std::move(loaded));
}

}  // namespace sbm::cli

// `sbm migrate`: the schema migrations a node applies at start, applied (or listed) without a node,
// so an operator can migrate before a rollout, or see what a new version will change.
#include <pqxx/pqxx>

#include <algorithm>
#include <cstdio>
#include <iostream>

#include "cli/command_line.hpp"
#include "cli/commands.hpp"
#include "runtime/migrations/all_migrations.hpp"

namespace sbm::cli {

namespace {

constexpr const char* about =
    "usage: sbm migrate [--postgres.url URL] [--show | --dry-run]\n"
    "\n"
    "Applies the schema migrations this SBM carries to the database, as a node does at start\n"
    "(same runner, same lock: safe beside starting nodes). --show (or --dry-run) lists every\n"
    "migration, applied (when) or pending, and changes nothing.\n"
    "\n"
    "exit codes: 0 up to date (or listed); 1 database failure; 2 bad usage;\n"
    "            3 the database holds a contract step of a newer SBM, or an applied migration\n"
    "              differs from this SBM's (nothing is applied); a newer SBM's expand steps are\n"
    "              listed and this SBM runs beside them\n";

std::string label(const migrations::step& s) {
  char number[16];
  std::snprintf(number, sizeof number, "%03d", s.version);
  return s.schema + "/" + number + "_" + s.name;
}

void print_plan(const migrations::plan& plan) {
  std::size_t width = 9;
  for (const auto& s : plan.steps)
    width = std::max(width, label(s).size());
  int applied = 0, pending = 0;
  std::printf("  %-*s  %-20s  %s\n", static_cast<int>(width), "MIGRATION", "STATE", "APPLIED AT");
  for (const auto& s : plan.steps) {
    std::printf("  %-*s  %-20s  %s\n", static_cast<int>(width), label(s).c_str(), migrations::to_string(s.status),
                s.applied_at.empty() ? "-" : s.applied_at.c_str());
    applied += s.status == migrations::step::state::applied;
    pending += s.status == migrations::step::state::pending;
  }
  std::printf("%d applied, %d pending\n", applied, pending);
}

}  // namespace

int migrate_command(int argc, char** argv) {
  if (answered_help("migrate", argc, argv, about))
    return exit_ok;
  const auto loaded = command_settings("migrate", argc, argv);
  if (!loaded)
    return exit_usage;
  const auto& cfg = *loaded;
  const bool show = cfg.boolean("show") || cfg.boolean("dry-run");
  const auto& known = schema::all_migrations();
  try {
    pqxx::connection connection{cfg.text("postgres.url")};
    auto plan = migrations::inspect(connection, known);
    if (show) {
      print_plan(plan);
    }
    if (!plan.verdict.error.empty()) {
      std::cerr << "sbm migrate: " << plan.verdict.error << "\n";
      return plan.verdict.too_new || plan.verdict.checksum_mismatch ? exit_schema_too_new : exit_failure;
    }
    if (show)
      return exit_ok;
    auto out = migrations::apply(connection, known);
    if (!out.error.empty()) {
      std::cerr << "sbm migrate: " << out.error << "\n";
      return out.too_new || out.checksum_mismatch ? exit_schema_too_new : exit_failure;
    }
    // Named from the database afterwards: a node starting meanwhile may have applied some of them.
    const auto after = migrations::inspect(connection, known);
    for (const auto& before : plan.steps)
      for (const auto& now : after.steps)
        if (before.status == migrations::step::state::pending && now.status == migrations::step::state::applied &&
            now.schema == before.schema && now.version == before.version)
          std::cout << "applied " << label(now) << "\n";
    std::cout << out.applied << " applied by this run; the database is up to date\n";
    for (const auto& newer : out.ahead)
      std::cout << "the database also holds " << newer << " of a newer SBM (an expand step: this SBM runs beside it)\n";
    return exit_ok;
  } catch (const std::exception& e) {
    // libpq's message names the host and port, never the password.
    std::string what = e.what();
    while (!what.empty() && (what.back() == '\n' || what.back() == ' '))
      what.pop_back();
    std::cerr << "sbm migrate: database failure: " << what << "\n";
    return exit_failure;
  }
}

}  // namespace sbm::cli

#pragma once
// One function per `sbm` subcommand. Each returns the process exit code (README, "Operator
// commands", has the table): 0 ok, 1 runtime failure, 2 bad usage or configuration, 3 the database
// is newer than this binary; `sbm status` gives 1 and 3 meanings of its own.
namespace sbm::cli {

inline constexpr int exit_ok = 0;
inline constexpr int exit_failure = 1;
inline constexpr int exit_usage = 2;
inline constexpr int exit_schema_too_new = 3;

int node_command(int argc, char** argv);
int token_command(int argc, char** argv);
int seed_instanote_command(int argc, char** argv);  // also 4: the database already holds drafts
int eval_corrections_command(int argc, char** argv);
int status_command(int argc, char** argv);   // 0 ready, 1 not ready or unreachable, 3 refused (401/403)
int cluster_command(int argc, char** argv);  // `cluster status`: as status_command
int migrate_command(int argc, char** argv);

}  // namespace sbm::cli

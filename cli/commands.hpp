#pragma once
// One function per `sbm` subcommand. Each returns the process exit code:
// 0 ok, 1 runtime failure, 2 bad usage or configuration, 3 the database is newer than this binary.
namespace sbm::cli {
int node_command(int argc, char** argv);
int token_command(int argc, char** argv);
int seed_instanote_command(int argc, char** argv);  // also 4: the database already holds drafts
int eval_corrections_command(int argc, char** argv);
}

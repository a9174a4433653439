// `sbm cluster status`: a node's view of its cluster (the `cluster` section of GET /v1/status),
// read exactly as `sbm status` reads the whole document. Drain and the other operator commands
// of the cluster join it here.
#include <iostream>
#include <string>

#include "cli/command_line.hpp"
#include "cli/commands.hpp"
#include "cli/status_command.hpp"

namespace sbm::cli {

namespace {

constexpr const char* about =
    "usage: sbm cluster status --node URL [--token-file FILE] [--json] [--timeout 10s] [--cacert FILE]\n"
    "\n"
    "Asks a node for GET /v1/status and prints the node and its view of the cluster: this node's\n"
    "address, state, epoch (its fencing number) and lease age, and every member it knows with its\n"
    "state (up, unreachable), epoch and lease age by PostgreSQL's clock. Options, token and exit\n"
    "codes are those of `sbm status`.\n"
    "\n"
    "exit codes: 0 the node is ready; 1 not ready, unreachable or not answering its status;\n"
    "            2 bad usage; 3 the token was refused (401 or 403)\n";

}  // namespace

int cluster_command(int argc, char** argv) {
  if (argc < 1 || std::string{argv[0]} != "status") {
    std::cerr << "usage: sbm cluster status --node URL (see sbm cluster status --help)\n";
    return exit_usage;
  }
  if (answered_help("cluster status", argc - 1, argv + 1, about))
    return exit_ok;
  return node_status("cluster status", argc - 1, argv + 1, render_cluster);
}

}  // namespace sbm::cli

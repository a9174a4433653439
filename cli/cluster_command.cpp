// `sbm cluster status`: a node's view of its cluster (the `cluster` section of GET /v1/status),
// read exactly as `sbm status` reads the whole document; `sbm cluster drain`: an admin moves every
// speaker away from a node before it leaves (POST /v1/cluster/drain), with the same options.
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
    "state (up, unreachable), epoch, lease age by PostgreSQL's clock and the speakers it holds.\n"
    "Options, token and exit codes are those of `sbm status`.\n"
    "\n"
    "exit codes: 0 the node is ready; 1 not ready, unreachable or not answering its status;\n"
    "            2 bad usage; 3 the token was refused (401 or 403)\n";

constexpr const char* about_drain =
    "usage: sbm cluster drain --node URL [--token-file FILE] [--json] [--timeout 10s] [--cacert FILE]\n"
    "\n"
    "Tells the node (its gateway URL) to own no speaker from now on: the other members take its\n"
    "speakers by placement, each active one after it finished what it had. The node still answers\n"
    "requests (routing them to the owners) until it stops; stop it once `sbm cluster status` shows\n"
    "it holding 0 speakers. Prints the node's cluster section. The token needs cluster.admin (an\n"
    "admin's).\n"
    "\n"
    "exit codes: 0 the node drains; 1 unreachable or not answering; 2 bad usage; 3 the token was\n"
    "            refused (401 or 403)\n";

std::string render_drain(const status_document& cluster) {
  status_document doc = status_document::object();
  doc["cluster"] = cluster;
  return render_cluster(doc);
}

}  // namespace

int cluster_command(int argc, char** argv) {
  const std::string sub = argc < 1 ? "" : argv[0];
  if (sub == "status") {
    if (answered_help("cluster status", argc - 1, argv + 1, about))
      return exit_ok;
    return node_status("cluster status", argc - 1, argv + 1, render_cluster);
  }
  if (sub == "drain") {
    if (answered_help("cluster drain", argc - 1, argv + 1, about_drain))
      return exit_ok;
    return node_action("cluster drain", argc - 1, argv + 1, "/v1/cluster/drain", render_drain);
  }
  std::cerr << "usage: sbm cluster status|drain --node URL (see sbm cluster status --help)\n";
  return exit_usage;
}

}  // namespace sbm::cli

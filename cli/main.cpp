#include <iostream>

#include "cli/commands.hpp"
#include "runtime/version/version.hpp"

// jemalloc (linked by cli/CMakeLists.txt) reads its options from this symbol. Freed memory goes
// back to the system within a second even when the node then idles: without a background thread
// jemalloc purges only while allocating, so a body flood's peak would stay resident.
extern "C" {
extern const char* malloc_conf;
const char* malloc_conf = "background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0";
}

namespace {

void usage(std::ostream& out) {
  out << "usage: sbm <command> [options]     (sbm <command> --help for its options and exit codes)\n\n"
         "commands:\n"
         "  node              run an SBM node\n"
         "  status            print a node's readiness, dependencies, breakers and queues (GET /v1/status)\n"
         "  cluster status    print a node's view of the cluster: members, their state, lease ages, epochs\n"
         "  cluster drain     move every speaker away from a node before it leaves (admin)\n"
         "  migrate           apply, or with --show list, the schema migrations without starting a node\n"
         "  token issue       mint a JWT for an operator, a test or a service\n"
         "  seed-instanote    fill a development InstaNote database with drafts and references\n"
         "  eval-corrections  measure the correction engine on a seeded InstaNote database\n"
         "  version           print this SBM's version (also --version)\n"
         "\n"
         "exit codes: 0 ok; 2 bad usage (an unknown command); each command documents its own\n";
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    usage(std::cerr);
    return 2;
  }
  const std::string command = argv[1];
  if (command == "node")
    return sbm::cli::node_command(argc - 2, argv + 2);
  if (command == "status")
    return sbm::cli::status_command(argc - 2, argv + 2);
  if (command == "cluster")
    return sbm::cli::cluster_command(argc - 2, argv + 2);
  if (command == "migrate")
    return sbm::cli::migrate_command(argc - 2, argv + 2);
  if (command == "token")
    return sbm::cli::token_command(argc - 2, argv + 2);
  if (command == "seed-instanote")
    return sbm::cli::seed_instanote_command(argc - 2, argv + 2);
  if (command == "eval-corrections")
    return sbm::cli::eval_corrections_command(argc - 2, argv + 2);
  if (command == "version" || command == "--version") {
    std::cout << "sbm " << sbm::version() << "\n";
    return 0;
  }
  if (command == "--help" || command == "-h" || command == "help") {
    usage(std::cout);
    return 0;
  }
  std::cerr << "sbm: unknown command '" << command << "'\n";
  usage(std::cerr);
  return 2;
}

#include <cstring>
#include <iostream>

#include "cli/commands.hpp"

// jemalloc (linked by cli/CMakeLists.txt) reads its options from this symbol. Freed memory goes
// back to the system within a second even when the node then idles: without a background thread
// jemalloc purges only while allocating, so a body flood's peak would stay resident.
extern "C" {
extern const char* malloc_conf;
const char* malloc_conf = "background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0";
}

namespace {

void usage(std::ostream& out) {
  out << "usage: sbm <command> [options]\n\n"
         "commands:\n"
         "  node          run an SBM node (sbm node --help lists every option)\n"
         "  token issue   mint a JWT for an operator, a test or a service\n"
         "  seed-instanote  fill a development InstaNote database with drafts and references\n"
         "  eval-corrections  measure the correction engine on a seeded InstaNote database\n";
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    usage(std::cerr);
    return 2;
  }
  std::string command = argv[1];
  if (command == "node")
    return sbm::cli::node_command(argc - 2, argv + 2);
  if (command == "token")
    return sbm::cli::token_command(argc - 2, argv + 2);
  if (command == "seed-instanote")
    return sbm::cli::seed_instanote_command(argc - 2, argv + 2);
  if (command == "eval-corrections")
    return sbm::cli::eval_corrections_command(argc - 2, argv + 2);
  if (command == "--help" || command == "-h" || command == "help") {
    usage(std::cout);
    return 0;
  }
  std::cerr << "sbm: unknown command '" << command << "'\n";
  usage(std::cerr);
  return 2;
}

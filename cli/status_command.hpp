#pragma once
// The one reading of a node's GET /v1/status, shared by `sbm status` and `sbm cluster status`:
// options, token, HTTP(S), refusals and exit codes as `sbm status --help` lists them; only what
// is printed differs.
#include <functional>
#include <string>

#include "cli/status_view.hpp"

namespace sbm::cli {

// `command` names the command's options (config/commands.cpp) and its messages.
int node_status(const std::string& command, int argc, char** argv,
                const std::function<std::string(const status_document&)>& render);

}  // namespace sbm::cli

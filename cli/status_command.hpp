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

// The same options, token, refusals and exit codes for an operator's action on the node (a POST
// without a body, e.g. /v1/cluster/drain), whose JSON answer `render` prints; 0 when it was 200.
int node_action(const std::string& command, int argc, char** argv, const std::string& path,
                const std::function<std::string(const status_document&)>& render);

}  // namespace sbm::cli

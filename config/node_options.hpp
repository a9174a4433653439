#pragma once
// Every option a node understands, with its default and one line of help. `sbm node --help` prints
// this table and config/sbm.conf documents it; a unit test keeps the two in step.
#include <vector>

#include "runtime/config/settings.hpp"

namespace sbm::config {
const std::vector<option_spec>& node_options();
}

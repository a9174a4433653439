#pragma once
// The version of this build (the project's version in CMakeLists.txt), as `sbm --version`, the
// node's log, GET /v1/status and /metrics (sbm_build_info) show it.
#include <string_view>

namespace sbm {
std::string_view version();
}

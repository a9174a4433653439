#include "runtime/version/version.hpp"

namespace sbm {
std::string_view version() { return SBM_VERSION; }
}

#pragma once
// Fernet moved to runtime/crypto (the InstaNote cache encrypts with it too); the reports family
// keeps its name for it.
#include "runtime/crypto/fernet.hpp"

namespace sbm::reports {
using crypto::fernet;
}

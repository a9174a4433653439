#pragma once
// The one list of message types SBM sends. Every node calls this, so a type can never be known on
// one side of a connection and unknown on the other.
namespace caf {
class actor_system_config;
}

namespace sbm {
void announce_types(caf::actor_system_config& cfg);
}

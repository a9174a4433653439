#pragma once
// The node's root supervisor (Erlang/OTP rest_for_one). Children start in order and each may use the
// handles of the ones before it; when child i dies, children i..n are restarted in order so nobody
// keeps a handle to a dead actor. More than `limit` restarts within its period escalate: the
// supervisor stops and calls on_escalate (the node then exits non-zero, as OTP's top would).
#include <caf/fwd.hpp>

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "runtime/resilience/restart_intensity.hpp"

namespace sbm::supervision {

using started_children = std::map<std::string, caf::actor>;

struct child_spec {
  std::string name;
  std::function<caf::actor(caf::actor_system&, const started_children&)> start;
};

struct supervisor_settings {
  std::vector<child_spec> children;
  resilience::restart_limit limit;
  std::function<void(const std::string& reason)> on_escalate;
};

caf::actor spawn_rest_for_one(caf::actor_system& sys, supervisor_settings settings);

}  // namespace sbm::supervision

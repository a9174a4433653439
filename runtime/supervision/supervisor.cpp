#include "runtime/supervision/supervisor.hpp"

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/exit_reason.hpp>
#include <caf/stateful_actor.hpp>
#include <spdlog/spdlog.h>

#include "runtime/logging/logging.hpp"

namespace sbm::supervision {

namespace {

struct supervisor_state {
  static inline const char* name = "root-supervisor";
  supervisor_settings settings;
  std::vector<caf::actor> running;  // parallel to settings.children
  started_children handles;
  resilience::restart_intensity intensity;
  bool stopping = false;
  std::shared_ptr<spdlog::logger> log = sbm::log::get("supervisor");
};

void start_from(caf::stateful_actor<supervisor_state>* self, std::size_t first) {
  auto& st = self->state;
  for (auto i = first; i < st.settings.children.size(); ++i) {
    const auto& spec = st.settings.children[i];
    auto child = spec.start(self->system(), st.handles);
    self->monitor(child);
    st.running[i] = child;
    st.handles[spec.name] = child;
    st.log->debug("started {}", spec.name);
  }
}

caf::behavior supervisor(caf::stateful_actor<supervisor_state>* self, supervisor_settings settings) {
  auto& st = self->state;
  st.intensity = resilience::restart_intensity{settings.limit};
  st.settings = std::move(settings);
  st.running.resize(st.settings.children.size());
  start_from(self, 0);
  self->set_down_handler([self](caf::down_msg& msg) {
    auto& st = self->state;
    if (st.stopping)
      return;
    std::size_t index = st.running.size();
    for (std::size_t i = 0; i < st.running.size(); ++i)
      if (st.running[i] && st.running[i].address() == msg.source)
        index = i;
    if (index == st.running.size())
      return;  // a child we already replaced
    const auto& name = st.settings.children[index].name;
    st.log->error("{} stopped: {}", name, caf::to_string(msg.reason));
    if (!st.intensity.record(self->clock().now())) {
      st.stopping = true;
      auto reason = "too many restarts (last: " + name + ")";
      st.log->critical("escalating: {}", reason);
      for (auto& child : st.running)
        if (child)
          self->send_exit(child, caf::exit_reason::user_shutdown);
      if (st.settings.on_escalate)
        st.settings.on_escalate(reason);
      self->quit(caf::exit_reason::unhandled_exception);
      return;
    }
    // rest_for_one: everything started after the dead child may hold its old handle.
    for (auto i = st.running.size(); i-- > index + 1;) {
      if (st.running[i]) {
        self->demonitor(st.running[i]);
        self->send_exit(st.running[i], caf::exit_reason::user_shutdown);
        st.running[i] = nullptr;
      }
    }
    st.running[index] = nullptr;
    start_from(self, index);
  });
  self->set_exit_handler([self](caf::exit_msg& msg) {
    auto& st = self->state;
    st.stopping = true;
    // Stop in reverse order: the gateway first, the connections last.
    for (auto i = st.running.size(); i-- > 0;)
      if (st.running[i])
        self->send_exit(st.running[i], msg.reason);
    self->quit(msg.reason);
  });
  return {[](caf::unit_t) {}};
}

}  // namespace

caf::actor spawn_rest_for_one(caf::actor_system& sys, supervisor_settings settings) {
  return sys.spawn(supervisor, std::move(settings));
}

}  // namespace sbm::supervision

#include "messages/context.hpp"

#include <caf/actor_system.hpp>
#include <caf/execution_unit.hpp>

namespace sbm::detail {

caf::actor_clock::time_point wire_clock(caf::execution_unit* unit) {
  if (unit)
    return unit->system().clock().now();
  return caf::actor_clock::clock_type::now();
}

}  // namespace sbm::detail

#include "actors/speakers/quality_measurer.hpp"

#include <caf/all.hpp>

#include "actors/speakers/core/quality_measure.hpp"
#include "messages/errors.hpp"

namespace sbm::speakers {

namespace {

quality_measurer_actor::behavior_type measurer_fn(quality_measurer_actor::pointer) {
  return {
    [](measure_atom, const std::string& delivered, const std::string& verified) -> caf::result<double> {
      const auto words = std::max(count_words(delivered), count_words(verified));
      if (words > max_quality_words)
        return make_error(errc::too_large,
                          "delivered_text and verified_text may have at most " +
                            std::to_string(max_quality_words) + " words each (got " +
                            std::to_string(words) + ")");
      return measure_quality(delivered, verified).errors_per_100_words;
    },
  };
}

}  // namespace

quality_measurer_actor spawn_quality_measurer(caf::local_actor* parent, bool detached) {
  if (!detached)
    return parent->spawn<caf::linked>(measurer_fn);
  return parent->spawn<caf::detached + caf::linked>(measurer_fn);
}

}  // namespace sbm::speakers

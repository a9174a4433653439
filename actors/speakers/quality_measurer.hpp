#pragma once
// Measures a verified job's quality from its two texts (core/quality_measure) on a detached
// thread of its own: the word-level edit distance of two long texts is the one computation a
// client sizes, so it stays off the shard that every speaker request crosses and off the
// scheduler threads that every actor shares. Private to the speakers family (the shard owns a few).
#include <caf/fwd.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include <string>

#include "messages/atoms.hpp"

namespace sbm::speakers {

// (measure, delivered, verified) -> errors per 100 words; errc::too_large past max_quality_words.
using quality_measurer_actor = caf::typed_actor<
  caf::replies_to<measure_atom, std::string, std::string>::with<double>>;

quality_measurer_actor spawn_quality_measurer(caf::local_actor* parent, bool detached = true);

}  // namespace sbm::speakers

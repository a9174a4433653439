#pragma once
// Internal to the reports family: the saga runner. A report and its saga row are committed in one
// transaction by the reports actor; from then on this actor moves the row through
//   index    -> pattern index upsert (the pattern becomes searchable)
//   notify   -> pattern.learned to the pattern-learning subscriber, if any
//   schedule -> a verification for the speaker, keyed "report:<id>"
//   done
// recording each acknowledged step in the row and in reports.saga_log. A step that fails is
// retried with backoff from the row (attempts, last_error, next_attempt_at); a saga left behind by
// a crash is found when its claim lapses. Every step is idempotent, so running one twice (a crash
// after the step but before its acknowledgement was recorded) does no harm.
//
// This is the outbox pattern of actors/speakers/outbox_relay (a durable row per pending effect,
// polled on a timer, stamped after the target acknowledged, backoff per failure), but not its code:
// that relay delivers an ordered event stream to two independent targets, this one advances a
// per-report state machine whose rows can be rewound (a status change re-runs the index step).
#include <caf/fwd.hpp>
#include <caf/typed_actor.hpp>

#include <cstdint>
#include <string>

#include "actors/reports/reports.hpp"

namespace sbm::reports {

using report_saga_actor = caf::typed_actor<
  caf::reacts_to<flush_atom>,                // look for due sagas now (the timer does it too)
  caf::reacts_to<flush_atom, std::int64_t>,  // run this report's saga now (after a commit)
  // A report just filed, at revision 0 and step index: its row need not be read back first.
  caf::reacts_to<flush_atom, pattern_record>,
  caf::reacts_to<step_atom, std::int64_t>,  // run its current step (after the step delay)
  caf::reacts_to<recheck_atom>,  // filings may have stopped: take the full share up again
  // its slots, waiting list and lag, for the reports actor's metrics
  caf::replies_to<metrics_atom>::with<component_metrics>>;

// Spawned by the reports actor, which links itself to it. `claim` names this runner in the rows it
// claims (the reports actor writes it into the saga rows it files): every step's write checks it,
// so a runner whose claim lapsed and was taken over cannot move a saga any more.
report_saga_actor spawn_report_saga(caf::actor_system& sys, reports_settings settings,
                                    std::string claim);

}  // namespace sbm::reports

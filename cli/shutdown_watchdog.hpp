#pragma once
// The last resort of a stopping node: past its deadline the process ends whatever it still waits
// for. CAF 0.17's actor system waits, when destroyed, for every detached actor's thread and for the
// middleman's I/O thread without any deadline, after the registry already counts no actor (a
// detached actor's thread ends only once the last handle to the actor is gone). The node that
// logged "stopped" and outlived e2e.test_upgrade's 30 s waited there or for an actor; which is not
// known, so the line this writes names the step the stop was at and the threads left (CAF names its
// own: caf.actor is a detached actor, caf.multiplexer the middleman's I/O loop).
#include <chrono>

namespace sbm::cli::shutdown_watchdog {

// Starts the watchdog once: at `deadline` it writes its line to stderr and ends the process with
// `code` unless the process ended before. Only async-signal-safe calls after the deadline, as it
// may fire while static destructors run.
void arm(std::chrono::steady_clock::time_point deadline, int code);

// What the stop is doing now (a string literal: only its address is kept).
void step(const char* what);

// Sets the step when destroyed: a local declared next to another marks when that one's destructor
// begins or has finished.
struct step_on_destruction {
  const char* what;
  ~step_on_destruction() { step(what); }
};

}  // namespace sbm::cli::shutdown_watchdog

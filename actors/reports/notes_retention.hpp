#pragma once
// Reports' notes are clinical text: past reports.notes-retention their encrypted tokens are set to
// NULL (the report itself, and the pattern learnt from it, stay). The purge is the shared retention
// mechanism (runtime/db/retention.hpp) calling this family's port (store::purge_notes, over
// settings.store when a simulation sets one): an actor of its own, linked to the reports actor, so
// it never waits behind filings and stops with the family.
#include <caf/actor.hpp>
#include <caf/actor_system.hpp>

#include "actors/reports/reports.hpp"

namespace sbm::reports {

// Purges at once, then every settings.notes_purge_interval, at most notes_purge_batch rows per
// statement (a purge that filled its batch runs again at once). Spawns nothing when retention is 0.
caf::actor spawn_notes_retention(caf::actor_system& sys, const reports_settings& settings);

}  // namespace sbm::reports

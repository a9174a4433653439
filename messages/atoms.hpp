#pragma once
// Every atom SBM uses, in one place so two families never pick the same one for different meanings.
// CAF 0.17 atoms hold at most 10 characters.
#include <caf/atom.hpp>

namespace sbm {

// connections
using query_atom = caf::atom_constant<caf::atom("query")>;
using transact_atom = caf::atom_constant<caf::atom("transact")>;
using command_atom = caf::atom_constant<caf::atom("command")>;
using status_atom = caf::atom_constant<caf::atom("status")>;
using probe_atom = caf::atom_constant<caf::atom("probe")>;
using migrate_atom = caf::atom_constant<caf::atom("migrate")>;
using restart_atom = caf::atom_constant<caf::atom("restart")>;
using retry_atom = caf::atom_constant<caf::atom("retry")>;
using connected_atom = caf::atom_constant<caf::atom("connected")>;

// gateway
using http_atom = caf::atom_constant<caf::atom("http")>;
using drain_atom = caf::atom_constant<caf::atom("drain")>;

// speakers
using register_atom = caf::atom_constant<caf::atom("register")>;
using get_atom = caf::atom_constant<caf::atom("get")>;
using list_atom = caf::atom_constant<caf::atom("list")>;
using history_atom = caf::atom_constant<caf::atom("history")>;
using pin_atom = caf::atom_constant<caf::atom("pin")>;
using unpin_atom = caf::atom_constant<caf::atom("unpin")>;
using sample_atom = caf::atom_constant<caf::atom("sample")>;
using passivate_atom = caf::atom_constant<caf::atom("passivate")>;
using idle_atom = caf::atom_constant<caf::atom("idle")>;
using measure_atom = caf::atom_constant<caf::atom("measure")>;
using samples_atom = caf::atom_constant<caf::atom("samples")>;

// events and verification
using publish_atom = caf::atom_constant<caf::atom("publish")>;
using subscribe_atom = caf::atom_constant<caf::atom("subscribe")>;
using schedule_atom = caf::atom_constant<caf::atom("schedule")>;
using flush_atom = caf::atom_constant<caf::atom("flush")>;
// verification sessions: start one, save QA's marks, submit it; a report family's verdicts
using open_atom = caf::atom_constant<caf::atom("open")>;
using marks_atom = caf::atom_constant<caf::atom("marks")>;
using submit_atom = caf::atom_constant<caf::atom("submit")>;
using verify_atom = caf::atom_constant<caf::atom("verify")>;

// users and audit
using update_atom = caf::atom_constant<caf::atom("update")>;
using check_atom = caf::atom_constant<caf::atom("check")>;
using audit_atom = caf::atom_constant<caf::atom("audit")>;
using refused_atom = caf::atom_constant<caf::atom("refused")>;
// a user's standing changed: every gateway lane drops what it remembered of it
using forget_atom = caf::atom_constant<caf::atom("forget")>;

// reports and patterns
using upsert_atom = caf::atom_constant<caf::atom("upsert")>;
using delete_atom = caf::atom_constant<caf::atom("delete")>;
using search_atom = caf::atom_constant<caf::atom("search")>;
using file_atom = caf::atom_constant<caf::atom("file")>;
// a draft corrected from its speaker's patterns
using correct_atom = caf::atom_constant<caf::atom("correct")>;
// the report saga runs a report's next step (after the test-only step delay)
using step_atom = caf::atom_constant<caf::atom("step")>;

// node
// a component's metrics snapshot (messages/metrics.hpp)
using metrics_atom = caf::atom_constant<caf::atom("metrics")>;
using fatal_atom = caf::atom_constant<caf::atom("fatal")>;
using stop_atom = caf::atom_constant<caf::atom("stop")>;

}  // namespace sbm

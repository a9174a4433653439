#pragma once
// The gateway actor: turns HTTP requests into messages to the actors behind typed handles, and their
// answers (or failures) into JSON. It never includes actors/: it knows them only by their contracts.
#include <caf/fwd.hpp>

#include <chrono>
#include <cstdint>
#include <memory>

#include "gateway/access.hpp"
#include "gateway/rate_limiter.hpp"
#include "gateway/responder.hpp"
#include "messages/connections.hpp"
#include "messages/instanote.hpp"
#include "messages/patterns.hpp"
#include "messages/reports.hpp"
#include "messages/speakers.hpp"
#include "messages/users.hpp"
#include "messages/verification.hpp"

namespace sbm::auth {
class jwt_verifier;
}

namespace sbm::gateway {

struct gateway_settings {
  std::shared_ptr<responder> out;
  std::shared_ptr<const auth::jwt_verifier> verifier;
  service_allow_list services;
  postgres_actor postgres;
  redis_actor redis;
  postgres_actor instanote;
  instanote_actor jobs;          // null: job pulls answer 503
  std::uint32_t max_jobs = 100;  // most jobs one pull may ask for (instanote.max-jobs)
  speaker_shard_actor speakers;
  verification_scheduler_actor schedule;
  reports_actor reports;         // null: report routes answer 503
  pattern_index_actor patterns;  // null: pattern search answers 503
  correction_actor corrections;  // null: draft correction answers 503
  std::size_t max_draft_bytes = 65536;  // drafts.max-bytes: a longer draft_text answers 413
  users_actor users;   // null: no standing check (tokens alone decide)
  audit_actor audit;   // null: nothing is audited
  rate_limit_settings rate_limit;  // off by default
  std::chrono::milliseconds user_cache_ttl{5000};
  std::chrono::milliseconds request_timeout{10000};
  std::size_t max_json_depth = 32;
};

caf::actor spawn_gateway(caf::actor_system& sys, gateway_settings settings);

}  // namespace sbm::gateway

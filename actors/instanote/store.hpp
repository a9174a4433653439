#pragma once
// The InstaNote family's port to the drafts database, in the family's words. The actor never
// holds SQL: store_postgres.cpp is the only file with it. Calls are asynchronous (the adapter runs
// prepared statements through InstaNote's connection actor), so each takes a completion.
#include <caf/error.hpp>
#include <caf/expected.hpp>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "messages/connections.hpp"
#include "messages/instanote.hpp"

namespace sbm::instanote {

template <class T>
using completion = std::function<void(caf::expected<T>)>;

class store {
 public:
  virtual ~store() = default;
  // The speaker's jobs in [from, to), flagged with one of error_types when any are given, newest
  // first, at most request.max_jobs (the caller has capped it). retrieved_at_ms is stamped on each.
  virtual void pull_jobs(const job_pull_request& request, std::int64_t now_ms,
                         completion<std::vector<verification_job>> done) = 0;
  // errc::not_found when InstaNote has no such job.
  virtual void job(const std::string& job_id, std::int64_t now_ms,
                   completion<verification_job> done) = 0;
  virtual void health(completion<dependency_status> done) = 0;
};

// How the PostgreSQL adapter reaches InstaNote: one statement on its connection actor, and the
// connection actor's own status. The actor builds both from request(...).then(...).
using query_runner = std::function<void(db_statement, completion<db_rows>)>;
using status_runner = std::function<void(completion<dependency_status>)>;

std::unique_ptr<store> make_postgres_store(query_runner query, status_runner status);

}  // namespace sbm::instanote

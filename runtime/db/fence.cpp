#include "runtime/db/fence.hpp"

namespace sbm::db {

db_statement fence_statement(const std::string& speaker_id, std::int64_t epoch) {
  return {"SELECT cluster.fence_speaker($1, $2::bigint)", {speaker_id, std::to_string(epoch)}, -1};
}

db_statement singleton_fence_statement(const std::string& name, std::int64_t epoch) {
  return {"SELECT cluster.fence_singleton($1, $2::bigint)", {name, std::to_string(epoch)}, -1};
}

db_statement release_statement(const std::string& speaker_id, std::int64_t epoch) {
  return {"SELECT cluster.release_speaker($1, $2::bigint)", {speaker_id, std::to_string(epoch)}, -1};
}

}  // namespace sbm::db

#pragma once
// Every actors/<family>/schema/NNN_name.sql, embedded at build time by cmake/schema.cmake
// (library sbm_schema): schema = family folder, version = NNN, name = the rest of the file name.
#include <vector>

#include "runtime/migrations/migrations.hpp"

namespace sbm::schema {

// Sorted by schema, then version.
const std::vector<sbm::migrations::migration>& all_migrations();

}  // namespace sbm::schema

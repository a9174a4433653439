#include "runtime/migrations/migrations.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <pqxx/pqxx>
#include <regex>
#include <stdexcept>
#include <tuple>
#include <utility>

namespace sbm::migrations {

namespace {

// "SBMMIGR1": one key for every SBM schema change, so two nodes starting together take turns.
constexpr long long advisory_lock_key = 0x53424d4d49475231LL;

constexpr const char* create_meta_sql = R"sql(
CREATE SCHEMA IF NOT EXISTS sbm_meta;
CREATE TABLE IF NOT EXISTS sbm_meta.schema_migrations (
  schema text NOT NULL,
  version integer NOT NULL,
  name text NOT NULL,
  checksum text NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (schema, version)
);
-- Whether a migration removed or renamed what an older build reads (is_contract): a node that
-- does not know an applied contract step refuses the database; an unknown expand step it runs beside.
ALTER TABLE sbm_meta.schema_migrations ADD COLUMN IF NOT EXISTS contract boolean NOT NULL DEFAULT false
)sql";

using key = std::pair<std::string, int>;

struct applied_record {
  std::string name;
  std::string checksum;
  std::string applied_at;
  bool contract = false;
};

constexpr const char* recorded_sql =
    "SELECT schema, version, name, checksum, "
    "to_char(applied_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), "
    // Read through to_jsonb: inspect() may meet a table made before the column existed.
    "coalesce((to_jsonb(m) ->> 'contract')::boolean, false) "
    "FROM sbm_meta.schema_migrations m";

std::map<key, applied_record> read_recorded(pqxx::transaction_base& tx) {
  std::map<key, applied_record> recorded;
  for (const auto& row : tx.exec(recorded_sql))
    recorded.emplace(key{row[0].as<std::string>(), row[1].as<int>()},
                     applied_record{row[2].as<std::string>(), row[3].as<std::string>(),
                                    row[4].as<std::string>(), row[5].as<bool>()});
  return recorded;
}

// The code's migrations in order, checked, with the newest version of each schema.
struct known_set {
  std::vector<const migration*> sorted;
  std::map<key, const migration*> by_key;
  std::map<std::string, int> newest;
  std::string error;
};

bool is_identifier(const std::string& text) {
  if (text.empty() || text.size() > 63)
    return false;
  if (!(text[0] == '_' || (text[0] >= 'a' && text[0] <= 'z')))
    return false;
  return std::all_of(text.begin(), text.end(), [](char c) {
    return c == '_' || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
  });
}

std::string label(const std::string& schema, int version, const std::string& name) {
  char number[16];
  std::snprintf(number, sizeof number, "%03d", version);
  return schema + "/" + number + "_" + name;
}

std::string label(const migration& m) { return label(m.schema, m.version, m.name); }

std::string first_line(const std::string& text) {
  auto end = text.find('\n');
  auto line = text.substr(0, end);
  while (!line.empty() && (line.back() == ' ' || line.back() == '\r'))
    line.pop_back();
  return line;
}

bool blank(const std::string& sql) {
  return sql.find_first_not_of(" \t\r\n") == std::string::npos;
}

// Connection loss may surface as an SQL error from the server's last words (shutdown, crash).
bool is_connection_state(const std::string& sqlstate) {
  return sqlstate.rfind("08", 0) == 0 || sqlstate == "57P01" || sqlstate == "57P02" ||
         sqlstate == "57P03";
}

// The application's statement_timeout must not cut a long migration short, nor the wait for
// another node's migration to finish.
void lock(pqxx::transaction_base& tx) {
  tx.exec("SET LOCAL statement_timeout = 0");
  tx.exec("SET LOCAL client_min_messages = warning");
  tx.exec("SELECT pg_advisory_xact_lock(" + std::to_string(advisory_lock_key) + ")");
}

std::string validate(const std::vector<const migration*>& sorted) {
  for (std::size_t i = 0; i < sorted.size(); ++i) {
    const auto& m = *sorted[i];
    if (!is_identifier(m.schema))
      return "migration schema \"" + m.schema + "\" is not a lowercase SQL identifier";
    if (m.version <= 0)
      return "migration " + label(m) + " has a version below 1";
    if (i > 0 && sorted[i - 1]->schema == m.schema && sorted[i - 1]->version == m.version)
      return "migrations " + label(*sorted[i - 1]) + " and " + label(m) + " share a version";
  }
  return {};
}

int newest_of(const std::map<std::string, int>& newest, const std::string& schema) {
  auto it = newest.find(schema);
  return it == newest.end() ? 0 : it->second;
}

// Database-side problems that forbid applying anything: a contract step of a newer SBM, or a
// history that changed or forked. Expand steps of a newer SBM are listed in out.ahead.
void check_history(const std::map<key, applied_record>& recorded,
                   const std::map<key, const migration*>& known,
                   const std::map<std::string, int>& newest_known, outcome& out) {
  std::map<std::string, int> newest_recorded;
  for (const auto& [k, record] : recorded) {
    newest_recorded[k.first] = std::max(newest_recorded[k.first], k.second);
    const int known_max = newest_of(newest_known, k.first);
    if (k.second <= known_max)
      continue;
    if (record.contract) {
      out.too_new = true;
      out.error = "database has " + label(k.first, k.second, record.name) +
                  ", a contract step of a newer SBM, but this SBM knows schema " + k.first +
                  " only up to version " + std::to_string(known_max) +
                  " and may read what that step removed: it was migrated by a newer SBM";
      return;
    }
    out.ahead.push_back(label(k.first, k.second, record.name));
  }
  for (const auto& [k, record] : recorded) {
    if (k.second > newest_of(newest_known, k.first))
      continue;
    auto it = known.find(k);
    if (it == known.end()) {
      out.checksum_mismatch = true;
      out.error = "applied migration " + label(k.first, k.second, record.name) +
                  " is missing from the code";
      return;
    }
    if (checksum(it->second->sql) != record.checksum) {
      out.checksum_mismatch = true;
      out.error = "migration " + label(*it->second) +
                  " differs from the one applied to the database: change the schema with a new "
                  "migration instead of editing an applied one";
      return;
    }
  }
  for (const auto& [k, m] : known) {
    if (recorded.count(k) || newest_of(newest_recorded, k.first) < k.second)
      continue;
    out.checksum_mismatch = true;
    out.error = "migration " + label(*m) + " is not applied, but the database holds schema " + k.first +
                " at version " + std::to_string(newest_of(newest_recorded, k.first)) +
                ": its history forked from this SBM's";
    return;
  }
}

}  // namespace

bool is_contract(const migration& m) {
  const std::string marker = contract_marker;
  for (std::size_t at = m.sql.find(marker); at != std::string::npos; at = m.sql.find(marker, at + 1))
    if (at == 0 || m.sql[at - 1] == '\n')
      return true;
  return false;
}

std::vector<migration> read_folder(const std::string& folder) {
  namespace fs = std::filesystem;
  static const std::regex file_name{"([0-9]+)_([a-z0-9_]+)\\.sql"};
  std::vector<migration> out;
  for (const auto& family : fs::directory_iterator{folder}) {
    if (!family.is_directory())
      continue;
    const auto schema = family.path().filename().string();
    if (!is_identifier(schema))
      throw std::runtime_error(family.path().string() + ": the folder must be a lowercase SQL identifier");
    for (const auto& file : fs::directory_iterator{family.path()}) {
      const auto name = file.path().filename().string();
      std::smatch parts;
      if (!std::regex_match(name, parts, file_name))
        throw std::runtime_error(file.path().string() + ": migration files are named NNN_lowercase_name.sql");
      std::ifstream in{file.path(), std::ios::binary};
      std::string sql{std::istreambuf_iterator<char>{in}, {}};
      if (!in.good() && !in.eof())
        throw std::runtime_error(file.path().string() + ": cannot be read");
      out.push_back({schema, std::stoi(parts[1].str()), parts[2].str(), std::move(sql)});
    }
  }
  std::sort(out.begin(), out.end(), [](const migration& a, const migration& b) {
    return std::tie(a.schema, a.version) < std::tie(b.schema, b.version);
  });
  return out;
}

std::string checksum(const std::string& sql) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (EVP_Digest(sql.data(), sql.size(), digest, &length, EVP_sha256(), nullptr) != 1)
    throw std::runtime_error("SHA-256 failed");
  static const char* hex = "0123456789abcdef";
  std::string out;
  out.reserve(length * 2);
  for (unsigned int i = 0; i < length; ++i) {
    out += hex[digest[i] >> 4];
    out += hex[digest[i] & 0xf];
  }
  return out;
}

namespace {

known_set index_known(const std::vector<migration>& migrations) {
  known_set k;
  k.sorted.reserve(migrations.size());
  for (const auto& m : migrations)
    k.sorted.push_back(&m);
  std::sort(k.sorted.begin(), k.sorted.end(), [](const migration* a, const migration* b) {
    return std::tie(a->schema, a->version) < std::tie(b->schema, b->version);
  });
  if (k.error = validate(k.sorted); !k.error.empty())
    return k;
  for (const auto* m : k.sorted) {
    k.by_key.emplace(key{m->schema, m->version}, m);
    k.newest[m->schema] = m->version;
  }
  return k;
}

}  // namespace

const char* to_string(step::state s) {
  switch (s) {
    case step::state::applied: return "applied";
    case step::state::pending: return "pending";
    case step::state::unknown_to_code: return "unknown to this SBM";
    case step::state::differs: return "differs from this SBM";
  }
  return "?";
}

plan inspect(pqxx::connection_base& connection, const std::vector<migration>& migrations) {
  plan out;
  auto known = index_known(migrations);
  if (!known.error.empty()) {
    out.verdict.error = known.error;
    return out;
  }
  std::map<key, applied_record> recorded;
  try {
    pqxx::read_transaction tx{connection, "sbm_migrations_inspect"};
    if (!tx.exec("SELECT to_regclass('sbm_meta.schema_migrations')")[0][0].is_null())
      recorded = read_recorded(tx);
  } catch (const pqxx::sql_error& e) {
    if (is_connection_state(e.sqlstate()))
      throw pqxx::broken_connection{first_line(e.what())};
    out.verdict.error = "reading sbm_meta.schema_migrations failed (sqlstate " + e.sqlstate() + "): " +
                        first_line(e.what());
    return out;
  }
  check_history(recorded, known.by_key, known.newest, out.verdict);
  std::map<key, step> steps;
  for (const auto* m : known.sorted)
    steps.emplace(key{m->schema, m->version}, step{m->schema, m->version, m->name, step::state::pending, {}});
  for (const auto& [k, record] : recorded) {
    auto [it, fresh] = steps.emplace(k, step{k.first, k.second, record.name, step::state::unknown_to_code, {}});
    if (!fresh)
      it->second.status = checksum(known.by_key.at(k)->sql) == record.checksum ? step::state::applied
                                                                              : step::state::differs;
    it->second.applied_at = record.applied_at;
  }
  for (auto& [k, s] : steps)
    out.steps.push_back(std::move(s));
  return out;
}

outcome apply(pqxx::connection_base& connection, const std::vector<migration>& migrations) {
  outcome out;
  auto known_migrations = index_known(migrations);
  if (out.error = known_migrations.error; !out.error.empty())
    return out;
  const auto& sorted = known_migrations.sorted;
  const auto& known = known_migrations.by_key;

  const migration* current = nullptr;
  try {
    std::map<key, applied_record> recorded;
    {
      pqxx::work tx{connection, "sbm_migrations_check"};
      lock(tx);
      tx.exec(create_meta_sql);
      recorded = read_recorded(tx);
      tx.commit();
    }
    check_history(recorded, known, known_migrations.newest, out);
    if (!out.error.empty())
      return out;

    for (const auto* m : sorted) {
      if (recorded.count(key{m->schema, m->version}))
        continue;
      current = m;
      const auto sum = checksum(m->sql);
      pqxx::work tx{connection, "sbm_migration"};
      lock(tx);
      // Another node may have applied it while this one waited for the lock.
      auto existing = tx.exec_params(
          "SELECT checksum FROM sbm_meta.schema_migrations WHERE schema = $1 AND version = $2",
          m->schema, m->version);
      if (!existing.empty()) {
        if (existing[0][0].as<std::string>() != sum) {
          out.checksum_mismatch = true;
          out.error = "migration " + label(*m) + " was applied concurrently with different text";
          return out;
        }
        continue;
      }
      // A later version applied meanwhile without this one (a newer node applies in order).
      auto newest = tx.exec_params(
          "SELECT max(version) FROM sbm_meta.schema_migrations WHERE schema = $1", m->schema);
      if (!newest[0][0].is_null() && newest[0][0].as<int>() > m->version) {
        out.checksum_mismatch = true;
        out.error = "migration " + label(*m) + " is not applied, but another SBM migrated schema " +
                    m->schema + " to version " + newest[0][0].as<std::string>() +
                    " meanwhile: its history forked from this SBM's";
        return out;
      }
      const auto schema = tx.quote_name(m->schema);
      tx.exec("CREATE SCHEMA IF NOT EXISTS " + schema);
      tx.exec("SET LOCAL search_path TO " + schema + ", public");
      if (!blank(m->sql))
        tx.exec(m->sql);
      tx.exec_params("INSERT INTO sbm_meta.schema_migrations (schema, version, name, checksum, contract) "
                     "VALUES ($1, $2, $3, $4, $5)",
                     m->schema, m->version, m->name, sum, is_contract(*m));
      tx.commit();
      ++out.applied;
    }
  } catch (const pqxx::sql_error& e) {
    if (is_connection_state(e.sqlstate()))
      throw pqxx::broken_connection{first_line(e.what())};
    out.error = (current ? "migration " + label(*current) : std::string{"migration bookkeeping"}) +
                " failed (sqlstate " + e.sqlstate() + "): " + first_line(e.what());
  } catch (const pqxx::in_doubt_error&) {
    throw pqxx::broken_connection{"connection lost while committing a migration"};
  }
  return out;
}

}  // namespace sbm::migrations

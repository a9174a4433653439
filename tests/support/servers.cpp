#include "tests/support/servers.hpp"

#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <pqxx/pqxx>
#include <random>
#include <stdexcept>
#include <vector>

namespace sbm::test {

namespace {

std::string env_or_empty(const char* name) {
  const char* value = std::getenv(name);
  return value ? value : "";
}

// Databases made by fresh_database() on the shared pair, dropped when the test binary exits.
class database_reaper {
 public:
  void add(std::string admin_url, std::string name) {
    std::lock_guard<std::mutex> guard{mutex_};
    entries_.push_back({std::move(admin_url), std::move(name)});
  }
  ~database_reaper() {
    for (const auto& e : entries_) {
      try {
        pqxx::connection connection{e.admin_url};
        pqxx::nontransaction tx{connection};
        tx.exec("DROP DATABASE IF EXISTS " + tx.quote_name(e.name) + " WITH (FORCE)");
      } catch (const std::exception&) {
        // The servers are destroyed after the run anyway.
      }
    }
  }

 private:
  struct entry {
    std::string admin_url;
    std::string name;
  };
  std::mutex mutex_;
  std::vector<entry> entries_;
};

int shell(const std::string& line) { return std::system(line.c_str()); }

database_reaper& reaper() {
  static database_reaper instance;
  return instance;
}

}  // namespace

std::string scripts_dir() {
  auto dir = env_or_empty("SBMTEST_SCRIPTS");
  return dir.empty() ? std::string{SBM_SOURCE_DIR} + "/scripts" : dir;
}

servers& servers::shared() {
  static std::unique_ptr<servers> instance = [] {
    auto dir = env_or_empty("SBMTEST_SERVERS_DIR");
    if (dir.empty())
      throw std::runtime_error(
          "SBMTEST_SERVERS_DIR is not set: integration tests need the servers that ./scripts/test "
          "starts; run ./scripts/test (or scripts/servers start DIR and export "
          "SBMTEST_SERVERS_DIR=DIR)");
    return std::unique_ptr<servers>(new servers(dir, false));
  }();
  return *instance;
}

std::unique_ptr<servers> servers::start_private() {
  char pattern[] = "/tmp/sbmtest-servers-XXXXXX";
  if (!mkdtemp(pattern))
    throw std::runtime_error("cannot create a temporary directory for private servers");
  std::string dir = pattern;
  if (shell("'" + scripts_dir() + "/servers' start '" + dir + "' >&2") != 0) {
    shell("'" + scripts_dir() + "/servers' destroy '" + dir + "' >&2");
    throw std::runtime_error("scripts/servers start " + dir + " failed");
  }
  return std::unique_ptr<servers>(new servers(dir, true));
}

servers::servers(std::string dir, bool owned) : dir_(std::move(dir)), owned_(owned) { load_env(); }

servers::~servers() {
  if (owned_ && shell("'" + scripts_dir() + "/servers' destroy '" + dir_ + "' >&2") != 0)
    std::fprintf(stderr, "scripts/servers destroy %s failed\n", dir_.c_str());
}

void servers::load_env() {
  std::ifstream in{dir_ + "/env"};
  if (!in)
    throw std::runtime_error(dir_ + "/env is missing: were the servers started with scripts/servers?");
  std::string line;
  while (std::getline(in, line)) {
    auto eq = line.find('=');
    if (eq == std::string::npos)
      continue;
    auto key = line.substr(0, eq);
    auto value = line.substr(eq + 1);
    if (key == "PG_PORT")
      pg_port_ = std::stoi(value);
    else if (key == "REDIS_PORT")
      redis_port_ = std::stoi(value);
    else if (key == "PG_URL")
      pg_url_ = value;
    else if (key == "INSTANOTE_URL")
      instanote_url_ = value;
    else if (key == "REDIS_HOST")
      redis_host_ = value;
  }
  if (pg_port_ == 0 || redis_port_ == 0 || pg_url_.empty() || redis_host_.empty())
    throw std::runtime_error(dir_ + "/env lacks PG_PORT, REDIS_PORT, PG_URL or REDIS_HOST");
}

std::string servers::database_url(const std::string& database) const {
  return "postgresql://sbm@127.0.0.1:" + std::to_string(pg_port_) + "/" + database;
}

std::string servers::fresh_database() {
  static std::atomic<unsigned> counter{0};
  std::random_device random;
  auto name = "sbmtest_" + std::to_string(::getpid()) + "_" + std::to_string(++counter) + "_" +
              std::to_string(random() % 1000000);
  auto admin = database_url("postgres");
  pqxx::connection connection{admin};
  pqxx::nontransaction tx{connection};
  tx.exec("CREATE DATABASE " + tx.quote_name(name) + " OWNER sbm");
  if (!owned_)
    reaper().add(admin, name);
  return database_url(name);
}

void servers::run(const std::string& command) const {
  if (shell("'" + scripts_dir() + "/servers' " + command + " '" + dir_ + "' >&2") != 0)
    throw std::runtime_error("scripts/servers " + command + " " + dir_ + " failed");
}

void servers::stop_postgres() { run("stop-postgres"); }
void servers::start_postgres() { run("start-postgres"); }
void servers::stop_redis() { run("stop-redis"); }
void servers::start_redis() { run("start-redis"); }

}  // namespace sbm::test

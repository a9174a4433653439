#pragma once
// Real PostgreSQL and Redis servers for integration tests, started by scripts/servers. No test
// assumes a server it did not get from here.
#include <memory>
#include <string>

namespace sbm::test {

class servers {
 public:
  // The pair ./scripts/test started for the whole run ($SBMTEST_SERVERS_DIR/env). Throws when
  // the variable is unset, so such a test fails (it never skips) with a hint to use ./scripts/test.
  static servers& shared();

  // A pair of the caller's own, on free ports under a new temporary directory, destroyed with the
  // object. For fault tests: stopping a shared server would disturb tests running in parallel.
  static std::unique_ptr<servers> start_private();

  servers(const servers&) = delete;
  servers& operator=(const servers&) = delete;
  ~servers();

  const std::string& dir() const { return dir_; }
  int pg_port() const { return pg_port_; }
  int redis_port() const { return redis_port_; }
  const std::string& redis_host() const { return redis_host_; }
  const std::string& pg_url() const { return pg_url_; }              // database sbm
  const std::string& instanote_url() const { return instanote_url_; }  // database instanote
  std::string database_url(const std::string& database) const;

  // Creates an empty database owned by sbm that only the caller uses (tests run in parallel) and
  // returns its URL. Dropped at process exit, or with a private pair.
  std::string fresh_database();

  // Blocking; each returns once the server is down or accepts connections.
  void stop_postgres();
  void start_postgres();
  void stop_redis();
  void start_redis();

 private:
  servers(std::string dir, bool owned);
  void run(const std::string& command) const;  // scripts/servers <command> <dir>
  void load_env();

  std::string dir_;
  bool owned_ = false;
  int pg_port_ = 0;
  int redis_port_ = 0;
  std::string redis_host_;
  std::string pg_url_;
  std::string instanote_url_;
};

// Where scripts/servers lives: $SBMTEST_SCRIPTS, else the source tree's scripts/.
std::string scripts_dir();

}  // namespace sbm::test

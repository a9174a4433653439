// `sbm node`: loads the configuration, starts the actor system under the root supervisor, serves
// HTTP, and on SIGINT/SIGTERM drains in-flight requests before stopping everything.
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/io/middleman.hpp>
#include <caf/openssl/manager.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>
#include <spdlog/spdlog.h>

#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <mutex>
#include <cstdlib>
#include <thread>

#include "actors/cluster/core/seeds.hpp"
#include "actors/cluster/membership.hpp"
#include "actors/connections/connections.hpp"
#include "actors/connections/postgres_worker.hpp"
#include "actors/events/events.hpp"
#include "actors/instanote/jobs_actor.hpp"
#include "actors/patterns/correction.hpp"
#include "actors/patterns/patterns.hpp"
#include "actors/reports/core/fernet.hpp"
#include "actors/reports/reports.hpp"
#include "actors/speakers/core/bucket_policy.hpp"
#include "actors/speakers/speakers.hpp"
#include "actors/users/users.hpp"
#include "actors/verification/sessions.hpp"
#include "actors/verification/verification.hpp"
#include "cli/commands.hpp"
#include "cli/command_line.hpp"
#include "cli/shutdown_watchdog.hpp"
#include "gateway/auth/jwt.hpp"
#include "gateway/gateway.hpp"
#include "gateway/http_server.hpp"
#include "gateway/json_io.hpp"
#include "gateway/request_checks.hpp"
#include "gateway/static_files.hpp"
#include "gateway/route_table.hpp"
#include "messages/announce.hpp"
#include "messages/published_views.hpp"
#include "runtime/logging/logging.hpp"
#include "runtime/migrations/all_migrations.hpp"
#include "runtime/supervision/supervisor.hpp"
#include "runtime/version/version.hpp"

namespace sbm::cli {

namespace {

// Set by whoever decides the node must stop on its own (a fatal dependency state, an escalation);
// the main thread then exits with it.
std::atomic<int> forced_exit_code{-1};

void stop_self(int code) {
  int expected = -1;
  forced_exit_code.compare_exchange_strong(expected, code);
  ::kill(::getpid(), SIGTERM);
}

// CAF's scheduler defaults suit a busy benchmark, not a node that idles between requests: at least
// four workers whatever the cores, and a worker that runs dry polls 500 times, 50 us apart, before
// it sleeps. Every timer tick (probes, outbox relays) set that off again, so an idle node used
// about 10% of a core. Here: one worker per core, one moderate poll, and a sleeping worker woken
// by new work for it or, to take work queued behind a busy worker, every steal interval.
// bench/RESULTS.md shows what this costs under load.
std::size_t scheduler_threads(const config::settings& cfg) {
  auto threads = static_cast<std::size_t>(cfg.integer("node.scheduler-threads"));
  return threads > 0 ? threads : std::max(2u, std::thread::hardware_concurrency());
}

bool clustered(const config::settings& cfg) { return cfg.integer("cluster.port") > 0; }

bool cluster_tls(const config::settings& cfg) { return !cfg.text("cluster.tls-cert-file").empty(); }

struct node_config : caf::actor_system_config {
  explicit node_config(const config::settings& cfg) {
    announce_types(*this);
    set("scheduler.max-threads", scheduler_threads(cfg));
    set("work-stealing.moderate-poll-attempts",
        static_cast<std::size_t>(cfg.integer("node.scheduler-moderate-polls")));
    set("work-stealing.relaxed-sleep-duration",
        caf::timespan{cfg.duration("node.scheduler-steal-interval")});
    if (!clustered(cfg))
      return;
    // Without heartbeats a frozen peer is noticed only at TCP's timeout (a killed one at once).
    load<caf::io::middleman>();
    set("middleman.heartbeat-interval", caf::timespan{cfg.duration("cluster.heartbeat-interval")});
    set("middleman.connection-timeout", caf::timespan{cfg.duration("cluster.connection-timeout")});
    if (cluster_tls(cfg)) {
      load<caf::openssl::manager>();
      openssl_certificate = cfg.text("cluster.tls-cert-file");
      openssl_key = cfg.text("cluster.tls-key-file");
      openssl_cafile = cfg.text("cluster.tls-ca-file");
    }
  }
};

int fail_config(const std::string& message) {
  std::cerr << "sbm node: " << message << "\n";
  return exit_usage;
}

resilience::breaker_policy breaker(const config::settings& s, const std::string& prefix) {
  resilience::breaker_policy p;
  p.minimum_calls = static_cast<int>(s.integer(prefix + ".breaker-minimum-calls"));
  p.open_for = s.duration(prefix + ".breaker-open-for");
  p.window = s.text(prefix + ".breaker-window") == "time" ? resilience::window_kind::time_based
                                                           : resilience::window_kind::count_based;
  p.window_size = static_cast<int>(s.integer(prefix + ".breaker-window-size"));
  p.failure_rate = s.number(prefix + ".breaker-failure-rate");
  p.slow_call_duration = s.duration(prefix + ".breaker-slow-call-duration");
  p.slow_call_rate = s.number(prefix + ".breaker-slow-call-rate");
  p.half_open_calls = static_cast<int>(s.integer(prefix + ".breaker-half-open-calls"));
  return p;
}

std::string quoted_conninfo_value(const std::string& text) {
  std::string out = "'";
  for (char c : text) {
    if (c == '\\' || c == '\'')
      out += '\\';
    out += c;
  }
  return out + "'";
}

// instanote.url with instanote.sslmode and, when given, the instanote.password secret added.
std::string instanote_url(const config::settings& cfg) {
  std::string url = cfg.text("instanote.url");
  std::vector<std::pair<std::string, std::string>> extra{{"sslmode", cfg.text("instanote.sslmode")}};
  if (cfg.has("instanote.password"))
    extra.emplace_back("password", cfg.secret("instanote.password"));
  for (const auto& [key, value] : extra) {
    if (connections::detail::is_postgres_uri(url)) {
      url += url.find('?') == std::string::npos ? '?' : '&';
      url += key + "=" + connections::detail::conninfo_percent_encode(value);
    } else {
      url += (url.empty() ? "" : " ") + key + "=" + quoted_conninfo_value(value);
    }
  }
  return url;
}

}  // namespace

int node_command(int argc, char** argv) {
  if (answered_help("node", argc, argv,
                    "usage: sbm node [--config FILE] [--key=value ...]\n\n"
                    "Runs a node until SIGINT or SIGTERM. Every option can also come from the config file\n"
                    "or from the environment variable shown (flags win over the environment, which wins\n"
                    "over the file). Secrets are accepted only from the environment or from <key>-file.\n"
                    "SBM_* variables of other sbm commands (SBM_TOKEN, SBM_URL) are left alone; any other\n"
                    "unknown SBM_* variable is refused.\n\n"
                    "exit codes: 0 stopped by a signal after draining; 1 runtime failure or escalation;\n"
                    "            2 bad configuration; 3 the database holds a contract step of a newer\n"
                    "            SBM, or an applied migration differs (a newer SBM's expand steps are\n"
                    "            no reason: the node runs beside them)\n"))
    return exit_ok;
  const auto loaded = command_settings("node", argc, argv);
  if (!loaded)
    return exit_usage;
  const auto& cfg = *loaded;

  // Everything that can be checked before starting is checked here, so a bad value stops the node
  // with a message naming its key instead of failing later at runtime.
  speakers::bucket_policy_config policy;
  policy.window_size = static_cast<std::uint32_t>(cfg.integer("speakers.window-size"));
  policy.promotion_margin = cfg.number("speakers.promotion-margin");
  policy.bands.no_touch_max = cfg.number("speakers.band-no-touch");
  policy.bands.low_touch_max = cfg.number("speakers.band-low-touch");
  policy.bands.medium_touch_max = cfg.number("speakers.band-medium-touch");
  policy.initial_bucket = *speakers::parse_bucket(cfg.text("speakers.initial-bucket"));
  if (auto why = speakers::validate(policy))
    return fail_config("speakers.*: " + *why);

  auto keyring = auth::parse_keyring(cfg.secret("auth.keys"), false);
  if (auto* err = std::get_if<std::string>(&keyring))
    return fail_config("auth.keys: " + *err);
  std::shared_ptr<const auth::jwt_verifier> verifier;
  try {
    auth::jwt_rules rules{cfg.text("auth.issuer"), cfg.text("auth.audience"),
                          std::chrono::duration_cast<std::chrono::seconds>(cfg.duration("auth.leeway")),
                          std::chrono::duration_cast<std::chrono::seconds>(
                            cfg.duration("auth.max-token-lifetime"))};
    verifier = std::make_shared<auth::jwt_verifier>(std::get<std::vector<auth::jwt_key>>(keyring),
                                                    rules);
  } catch (const std::exception& e) {
    return fail_config(std::string{"auth.keys: "} + e.what());
  }
  auto services = gateway::parse_service_allow_list(cfg.text("auth.services"));
  if (auto* err = std::get_if<std::string>(&services))
    return fail_config("auth.services: " + *err);
  if (!reports::fernet::from_key(cfg.secret("reports.fernet-key")))
    return fail_config("reports.fernet-key: not a Fernet key (base64url of 32 bytes, 44 characters)");
  // Cached pulls hold the same drafts as sessions: they may not outlive the drafts' retention.
  if (const auto retention = cfg.duration("verification.draft-retention");
      retention.count() > 0 && cfg.duration("instanote.cache-ttl") > retention)
    return fail_config("instanote.cache-ttl (" + std::to_string(cfg.duration("instanote.cache-ttl").count()) +
                       " ms) exceeds verification.draft-retention (" + std::to_string(retention.count()) +
                       " ms): cached drafts would outlive their retention");

  // A half-configured TLS would let CAF fall back to an anonymous cipher: encrypted, but anyone
  // could join. All three or none.
  {
    const int tls_set = !cfg.text("cluster.tls-cert-file").empty() + !cfg.text("cluster.tls-key-file").empty() +
                        !cfg.text("cluster.tls-ca-file").empty();
    if (tls_set != 0 && tls_set != 3)
      return fail_config("cluster.tls-cert-file, cluster.tls-key-file and cluster.tls-ca-file: give all "
                         "three for TLS between nodes, or none");
    for (const char* key : {"cluster.tls-cert-file", "cluster.tls-key-file", "cluster.tls-ca-file"})
      if (!cfg.text(key).empty() && ::access(std::string{cfg.text(key)}.c_str(), R_OK) != 0)
        return fail_config(std::string{key} + ": cannot read '" + std::string{cfg.text(key)} + "'");
  }
  auto seeds = cluster::parse_seeds(cfg.text("cluster.seeds"));
  if (auto* err = std::get_if<std::string>(&seeds))
    return fail_config("cluster.seeds: " + *err);
  if (clustered(cfg) && cfg.duration("cluster.lease-renew-interval") * 3 > cfg.duration("cluster.lease-ttl"))
    return fail_config("cluster.lease-renew-interval: at most a third of cluster.lease-ttl, so a "
                       "renewal can fail twice before the lease lapses");

  log::setup(cfg.text("log.level"),
             cfg.text("log.format") == "json" ? log::format::json : log::format::text);
  auto logger = log::get("node");
  logger->info("starting node {} (sbm {})", cfg.text("node.name"), version());
  logger->debug("configuration:\n{}", cfg.redacted_dump());

  // Signals are taken by the main thread only (sigwait below): block them before any thread starts.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  node_config caf_cfg{cfg};
  // Around `sys`, for the stop's watchdog: the first marks that the actor system is gone, the
  // second (destroyed just before it) that its destructor begins.
  shutdown_watchdog::step_on_destruction after_actor_system{"leaving the process (static destructors)"};
  caf::actor_system sys{caf_cfg};
  shutdown_watchdog::step_on_destruction in_actor_system{
    "destroying the actor system (it waits for its detached actors' threads and the middleman's I/O thread)"};

  gateway::http_server_settings http;
  http.host = cfg.text("gateway.host");
  http.port = static_cast<std::uint16_t>(cfg.integer("gateway.port"));
  http.threads = static_cast<std::size_t>(cfg.integer("gateway.threads"));
  http.body_limit = static_cast<std::size_t>(cfg.integer("gateway.body-limit"));
  http.max_connections = static_cast<std::size_t>(cfg.integer("gateway.max-connections"));
  http.max_header_bytes = static_cast<std::size_t>(cfg.integer("gateway.max-header-bytes"));
  http.read_timeout = cfg.duration("gateway.read-timeout");
  http.max_header_count = static_cast<std::size_t>(cfg.integer("gateway.max-header-count"));
  http.tls_cert_file = cfg.text("gateway.tls-cert-file");
  if (cfg.has("gateway.tls-key"))
    http.tls_key_pem = cfg.secret("gateway.tls-key");
  if (http.tls_cert_file.empty() != http.tls_key_pem.empty())
    return fail_config("gateway.tls-cert-file and gateway.tls-key: give both for HTTPS, or neither");
  http.handle_timeout = cfg.duration("gateway.request-timeout") + std::chrono::seconds(5);
  http.per_address.per_address = static_cast<std::size_t>(cfg.integer("gateway.max-connections-per-address"));
  http.per_address.rate = cfg.number("gateway.connection-rate");
  http.per_address.burst = cfg.number("gateway.connection-burst");
  http.body_budget = static_cast<std::size_t>(cfg.integer("gateway.body-memory-budget"));
  if (http.body_budget < http.body_limit)
    return fail_config("gateway.body-memory-budget: must be at least gateway.body-limit (" +
                       std::to_string(http.body_limit) + " bytes), or no body could ever be read");
  {
    std::string_view list = cfg.text("gateway.trusted-proxies");
    while (!list.empty()) {
      auto comma = list.find(',');
      auto entry = list.substr(0, comma);
      while (!entry.empty() && entry.front() == ' ')
        entry.remove_prefix(1);
      while (!entry.empty() && entry.back() == ' ')
        entry.remove_suffix(1);
      list = comma == std::string_view::npos ? std::string_view{} : list.substr(comma + 1);
      if (entry.empty())
        continue;
      auto ip = gateway::canonical_ip(entry);
      if (!ip)
        return fail_config("gateway.trusted-proxies: '" + std::string{entry} + "' is not an IP address");
      http.trusted_proxies.insert(*ip);
    }
  }
  // The front door verifies tokens (once per token) and counts request rates on the HTTP threads;
  // the gateway's lanes, restarted by the supervisor, come and go behind it.
  gateway::front_door_settings front;
  front.verifier = verifier;
  front.rate_limit.rate = cfg.number("gateway.rate-limit");
  front.rate_limit.burst = cfg.number("gateway.rate-burst");
  front.rate_limit.max_clients = static_cast<std::size_t>(cfg.integer("gateway.rate-limit-clients"));
  front.token_cache_capacity = static_cast<std::size_t>(cfg.integer("gateway.token-cache-size"));
  {
    // The console is read into memory once, here; a directory named on purpose must be usable,
    // while a node built without the console (the default place is empty) simply serves none.
    const std::string chosen{cfg.text("gateway.console-dir")};
    std::error_code ec;
    const auto dir = !chosen.empty()
                       ? std::filesystem::path{chosen}
                       : std::filesystem::read_symlink("/proc/self/exe", ec).parent_path() / ".." / "console";
    try {
      front.console = gateway::static_files::load(dir.lexically_normal(), std::string{gateway::console_mount});
      logger->info("QA console: {} files ({} bytes) from {} at {}/", front.console->size(),
                   front.console->bytes(), dir.lexically_normal().string(), gateway::console_mount);
    } catch (const std::exception& e) {
      if (!chosen.empty())
        return fail_config(std::string{"gateway.console-dir: "} + e.what());
      logger->info("QA console not served: {}", e.what());
    }
  }
  // The one structure the speakers and the HTTP threads share (messages/published_views.hpp):
  // each active speaker publishes its view, and a read of it is answered on the HTTP thread.
  std::shared_ptr<published_views> views;
  if (const auto capacity = cfg.integer("gateway.published-views"); capacity > 0)
    views = std::make_shared<published_views>(static_cast<std::size_t>(capacity));
  gateway::published_reads reads;
  reads.views = views;
  reads.services = std::get<gateway::service_allow_list>(services);
  auto pipeline = std::make_shared<gateway::gateway_pipeline>(
    front, cfg.duration("gateway.user-cache-ttl"), std::move(reads));
  // A body is held only once its token is genuine.
  http.token_ok = [pipeline](std::string_view token) { return pipeline->token_genuine(token); };
  http.flush = [pipeline] { pipeline->flush(); };
  http.answer_timeout = cfg.duration("gateway.request-timeout");
  // Counted by the HTTP server on whichever thread answers, read by GET /metrics.
  http.counters = std::make_shared<metrics::request_counters>(
    static_cast<std::size_t>(gateway::route::count_));
  http.unanswered = gateway::unanswered;
  // Request bodies are large, short-lived blocks. With glibc's default the mmap threshold grows
  // after the first large free, so later bodies come from the heap, which keeps what it frees and
  // leaves the node at its peak after a flood. A fixed threshold serves every block from 128 KiB
  // up with its own mapping, given back to the OS when freed (the HTTP server also trims the heap
  // once much has been freed).
  ::mallopt(M_MMAP_THRESHOLD, 128 * 1024);
  auto server = std::make_shared<gateway::http_server>(
    http, [pipeline](http_request&& req) { pipeline->hold(std::move(req)); });
  pipeline->connect(server);

  auto on_fatal = sys.spawn([logger](caf::event_based_actor*) -> caf::behavior {
    return {[logger](fatal_atom, const std::string& reason) {
      logger->critical("stopping: {}", reason);
      stop_self(exit_schema_too_new);
    }};
  });

  // The build's migrations, and for a test that plays a newer build the ones of its folder.
  auto known_migrations = schema::all_migrations();
  if (const auto dir = cfg.text("postgres.test-migrations-dir"); !dir.empty()) {
    try {
      auto extra = migrations::read_folder(dir);
      logger->warn("postgres: {} test migration(s) from {} (postgres.test-migrations-dir)", extra.size(), dir);
      known_migrations.insert(known_migrations.end(), extra.begin(), extra.end());
    } catch (const std::exception& e) {
      return fail_config(std::string{"postgres.test-migrations-dir: "} + e.what());
    }
  }

  using supervision::child_spec;
  using supervision::started_children;
  auto restart_limit = resilience::restart_limit{
    static_cast<int>(cfg.integer("supervision.max-restarts")), cfg.duration("supervision.period")};
  supervision::supervisor_settings tree;
  tree.limit = restart_limit;
  tree.on_escalate = [](const std::string&) { stop_self(exit_failure); };
  // postgres.* as both pools over the main database read them.
  auto main_database = [&cfg, restart_limit] {
    connections::postgres_settings pg;
    pg.url = cfg.text("postgres.url");
    pg.pool_size = static_cast<std::uint32_t>(cfg.integer("postgres.pool-size"));
    pg.breaker = breaker(cfg, "postgres");
    pg.probe_interval = cfg.duration("postgres.probe-interval");
    pg.request_timeout = cfg.duration("postgres.request-timeout");
    pg.max_queued = static_cast<std::uint32_t>(cfg.integer("postgres.max-queued"));
    pg.restart_limit = restart_limit;
    return pg;
  };
  tree.children.push_back({"postgres", [main_database, on_fatal, known_migrations](
                                         caf::actor_system& s, const started_children&) {
    auto pg = main_database();
    pg.migrations = known_migrations;
    pg.on_fatal = on_fatal;
    return caf::actor_cast<caf::actor>(connections::spawn_postgres(s, std::move(pg)));
  }});
  // The same database for report filings alone (see reports_settings::filings): no migrations of
  // its own, as the filings' tables are the main pool's to create.
  tree.children.push_back({"postgres-filings", [&cfg, main_database](caf::actor_system& s,
                                                                      const started_children&) {
    auto pg = main_database();
    pg.name = "postgres-filings";
    pg.pool_size = static_cast<std::uint32_t>(cfg.integer("reports.filing-connections"));
    return caf::actor_cast<caf::actor>(connections::spawn_postgres(s, std::move(pg)));
  }});
  tree.children.push_back({"instanote", [&cfg, restart_limit](caf::actor_system& s,
                                                              const started_children&) {
    auto pg = connections::instanote_defaults(instanote_url(cfg));
    pg.pool_size = static_cast<std::uint32_t>(cfg.integer("instanote.pool-size"));
    pg.breaker = breaker(cfg, "instanote");
    pg.retry.max_retries = static_cast<int>(cfg.integer("instanote.retries"));
    pg.retry.base = cfg.duration("instanote.retry-base");
    pg.retry.cap = cfg.duration("instanote.retry-cap");
    pg.connect_timeout = cfg.duration("instanote.connect-timeout");
    pg.request_timeout = cfg.duration("instanote.request-timeout");
    pg.restart_limit = restart_limit;
    return caf::actor_cast<caf::actor>(connections::spawn_postgres(s, std::move(pg)));
  }});
  tree.children.push_back({"redis", [&cfg, restart_limit](caf::actor_system& s, const started_children&) {
    connections::redis_settings r;
    r.host = cfg.text("redis.host");
    r.port = static_cast<std::uint16_t>(cfg.integer("redis.port"));
    r.pool_size = static_cast<std::uint32_t>(cfg.integer("redis.pool-size"));
    r.breaker = breaker(cfg, "redis");
    r.command_timeout = cfg.duration("redis.command-timeout");
    r.restart_limit = restart_limit;
    return caf::actor_cast<caf::actor>(connections::spawn_redis(s, std::move(r)));
  }});
  // The pulls of draft jobs: InstaNote through its breaker, the Redis cache in front and behind.
  tree.children.push_back({"instanote-jobs", [&cfg](caf::actor_system& s, const started_children& c) {
    instanote::jobs_settings j;
    j.instanote = caf::actor_cast<postgres_actor>(c.at("instanote"));
    j.redis = caf::actor_cast<redis_actor>(c.at("redis"));
    j.cache_key = cfg.secret("reports.fernet-key");  // drafts are clinical: cached encrypted
    j.cache_ttl = std::chrono::duration_cast<std::chrono::seconds>(cfg.duration("instanote.cache-ttl"));
    j.cache_fresh_for =
      std::chrono::duration_cast<std::chrono::seconds>(cfg.duration("instanote.cache-fresh-for"));
    j.cache_timeout = cfg.duration("redis.command-timeout");
    // A pull reads the cache, asks InstaNote, then writes the cache: InstaNote gets what the
    // gateway's timeout leaves, so a slow InstaNote still yields the stale copy in time.
    const auto left = cfg.duration("gateway.request-timeout") - 2 * j.cache_timeout -
                      std::chrono::milliseconds(500);
    j.instanote_timeout = std::clamp<std::chrono::milliseconds>(
      left, std::chrono::milliseconds(500),
      cfg.duration("instanote.request-timeout") + std::chrono::seconds(1));
    j.default_retry_after =
      std::chrono::duration_cast<std::chrono::seconds>(cfg.duration("instanote.breaker-open-for"));
    j.max_jobs_cap = static_cast<std::uint32_t>(cfg.integer("instanote.max-jobs"));
    return caf::actor_cast<caf::actor>(instanote::spawn_jobs(s, std::move(j)));
  }});
  tree.children.push_back({"event-bus", [](caf::actor_system& s, const started_children&) {
    // One durable subscriber: the verification scheduler.
    return caf::actor_cast<caf::actor>(events::spawn_event_bus(s, std::chrono::seconds{10}, 1));
  }});
  // Listens on the bus for the gateway's bucket-change feed (GET /v1/events/bucket-changes).
  tree.children.push_back({"event-feed", [&cfg](caf::actor_system& s, const started_children& c) {
    return caf::actor_cast<caf::actor>(events::spawn_event_feed(
      s, caf::actor_cast<event_bus_actor>(c.at("event-bus")),
      static_cast<std::size_t>(cfg.integer("speakers.event-feed-size")),
      static_cast<std::size_t>(cfg.integer("speakers.event-feed-max-waiting"))));
  }});
  tree.children.push_back({"stream-publisher", [](caf::actor_system& s, const started_children& c) {
    return caf::actor_cast<caf::actor>(
      events::spawn_stream_publisher(s, caf::actor_cast<redis_actor>(c.at("redis"))));
  }});
  tree.children.push_back({"verification-scheduler", [](caf::actor_system& s, const started_children& c) {
    return caf::actor_cast<caf::actor>(verification::spawn_verification_scheduler(
      s, caf::actor_cast<postgres_actor>(c.at("postgres")),
      caf::actor_cast<event_bus_actor>(c.at("event-bus"))));
  }});
  // The epoch of this node's lease, set by the membership actor (0 while none is held).
  auto lease = std::make_shared<node_lease>();
  // Before speakers: a pin is audited through the speakers' outbox.
  tree.children.push_back({"users", [&cfg](caf::actor_system& s, const started_children& c) {
    users::users_settings u;
    u.db = caf::actor_cast<postgres_actor>(c.at("postgres"));
    u.db_timeout = cfg.duration("postgres.request-timeout");
    u.idempotency_retention =
      std::chrono::duration_cast<std::chrono::seconds>(cfg.duration("idempotency.retention"));
    return caf::actor_cast<caf::actor>(users::spawn_users(s, std::move(u)));
  }});
  tree.children.push_back({"audit", [&cfg](caf::actor_system& s, const started_children& c) {
    users::audit_settings a;
    a.db = caf::actor_cast<postgres_actor>(c.at("postgres"));
    a.db_timeout = cfg.duration("postgres.request-timeout");
    return caf::actor_cast<caf::actor>(users::spawn_audit(s, std::move(a)));
  }});
  tree.children.push_back({"speakers", [&cfg, policy, lease, views](caf::actor_system& s, const started_children& c) {
    speakers::speakers_settings sp;
    sp.db = caf::actor_cast<postgres_actor>(c.at("postgres"));
    sp.bus = caf::actor_cast<event_bus_actor>(c.at("event-bus"));
    sp.stream = caf::actor_cast<decltype(sp.stream)>(c.at("stream-publisher"));
    sp.policy = policy;
    sp.idle_timeout = cfg.duration("speakers.idle-timeout");
    sp.relay_interval = cfg.duration("speakers.relay-interval");
    sp.db_timeout = cfg.duration("postgres.request-timeout");
    sp.audit = caf::actor_cast<audit_actor>(c.at("audit"));
    sp.max_queued_per_speaker =
      static_cast<std::uint32_t>(cfg.integer("speakers.max-queued-per-speaker"));
    sp.max_queued = static_cast<std::uint32_t>(cfg.integer("speakers.max-queued"));
    sp.idempotency_retention =
      std::chrono::duration_cast<std::chrono::seconds>(cfg.duration("idempotency.retention"));
    sp.views = views;
    if (clustered(cfg)) {
      sp.lease = lease;
      sp.owner_wait = cfg.duration("cluster.lease-ttl") + cfg.duration("cluster.lease-renew-interval");
    }
    return caf::actor_cast<caf::actor>(speakers::spawn_speakers(s, std::move(sp)));
  }});
  // Rebuilt from patterns.patterns at every start (no snapshot file configured).
  tree.children.push_back({"pattern-index", [&cfg](caf::actor_system& s, const started_children& c) {
    // In a cluster: only the patterns of the speakers this node owns, told by the membership.
    patterns::pattern_index_settings p;
    p.db = caf::actor_cast<postgres_actor>(c.at("postgres"));
    p.db_timeout = cfg.duration("postgres.request-timeout");
    p.dimension = static_cast<std::uint32_t>(cfg.integer("patterns.dimension"));
    p.ef_search = static_cast<std::size_t>(cfg.integer("patterns.ef-search"));
    p.snapshot_path = cfg.text("patterns.snapshot-path");
    p.snapshot_interval = cfg.duration("patterns.snapshot-interval");
    p.clustered = clustered(cfg);
    return caf::actor_cast<caf::actor>(patterns::spawn_pattern_index(s, std::move(p)));
  }});
  // In a cluster every other actor reaches the patterns through the router: a speaker's go to its
  // owner, other searches to every member (the gateway's timer still answers: the scatter's is shorter).
  if (clustered(cfg)) {
    tree.children.push_back({"pattern-router", [&cfg](caf::actor_system& s, const started_children& c) {
      patterns::pattern_router_settings r;
      r.local = caf::actor_cast<pattern_index_actor>(c.at("pattern-index"));
      r.scatter_timeout = std::min(cfg.duration("patterns.scatter-timeout"),
                                   cfg.duration("gateway.request-timeout") / 2);
      r.max_scatters = static_cast<std::uint32_t>(cfg.integer("patterns.max-scatters"));
      return caf::actor_cast<caf::actor>(patterns::spawn_pattern_router(s, std::move(r)));
    }});
  }
  // What the node's actors ask for patterns: the router in a cluster, else the index itself.
  auto pattern_front = [](const started_children& c) {
    auto it = c.find("pattern-router");
    return caf::actor_cast<pattern_index_actor>(it != c.end() ? it->second : c.at("pattern-index"));
  };
  // Drafts corrected from the pattern index (POST /v1/drafts/correct, sessions): a front that only
  // routes, over drafts.workers detached workers that embed, retrieve in one batch and correct.
  tree.children.push_back({"corrections", [&cfg, pattern_front](caf::actor_system& s, const started_children& c) {
    patterns::correction_settings k;
    k.index = pattern_front(c);
    // The index's own embedder (the same dimension), so the workers' vectors are the index's.
    k.embedder = std::make_shared<patterns::hashed_ngram_embedder>(
      static_cast<std::uint32_t>(cfg.integer("patterns.dimension")));
    k.workers = static_cast<std::uint32_t>(cfg.integer("drafts.workers"));
    k.max_draft_bytes = static_cast<std::size_t>(cfg.integer("drafts.max-bytes"));
    k.top_k = static_cast<std::uint32_t>(cfg.integer("drafts.top-k"));
    k.max_in_flight = static_cast<std::uint32_t>(cfg.integer("drafts.max-in-flight"));
    k.engine.apply_threshold = cfg.number("drafts.apply-threshold");
    k.engine.weight_floor = cfg.number("drafts.weight-floor");
    k.index_timeout = cfg.duration("gateway.request-timeout");
    return caf::actor_cast<caf::actor>(patterns::spawn_correction_actor(s, std::move(k)));
  }});
  // After everything a report's saga reaches: speakers (the bucket), the pattern index, the
  // verification scheduler; InstaNote is optional for it.
  tree.children.push_back({"reports", [&cfg, pattern_front](caf::actor_system& s, const started_children& c) {
    reports::reports_settings r;
    r.db = caf::actor_cast<postgres_actor>(c.at("postgres"));
    r.filings = caf::actor_cast<postgres_actor>(c.at("postgres-filings"));
    r.instanote = caf::actor_cast<postgres_actor>(c.at("instanote"));
    r.speakers = caf::actor_cast<speaker_shard_actor>(c.at("speakers"));
    r.patterns = pattern_front(c);
    r.schedule = caf::actor_cast<verification_scheduler_actor>(c.at("verification-scheduler"));
    r.fernet_key = cfg.secret("reports.fernet-key");
    r.limits.max_text_bytes = static_cast<std::size_t>(cfg.integer("reports.max-text-bytes"));
    r.limits.max_notes_bytes = static_cast<std::size_t>(cfg.integer("reports.max-notes-bytes"));
    r.db_timeout = cfg.duration("postgres.request-timeout");
    r.lookup_timeout = cfg.duration("reports.lookup-timeout");
    r.relay_interval = cfg.duration("reports.relay-interval");
    r.claim = cfg.duration("reports.saga-claim");
    r.step_delay = cfg.duration("reports.saga-step-delay");
    r.max_queued = static_cast<std::uint32_t>(cfg.integer("reports.max-queued"));
    r.filing_batches = static_cast<std::uint32_t>(cfg.integer("reports.filing-connections"));
    r.max_running = static_cast<std::uint32_t>(cfg.integer("reports.max-running-sagas"));
    r.max_waiting = static_cast<std::uint32_t>(cfg.integer("reports.max-waiting-sagas"));
    r.share.background = static_cast<std::uint32_t>(cfg.integer("reports.saga-background-share"));
    r.share.backlog = static_cast<std::uint32_t>(cfg.integer("reports.saga-yield-backlog"));
    r.saga_quiet = cfg.duration("reports.saga-yield-quiet");
    r.notes_retention = cfg.duration("reports.notes-retention");
    r.notes_purge_interval = cfg.duration("reports.notes-purge-interval");
    r.idempotency_retention =
      std::chrono::duration_cast<std::chrono::seconds>(cfg.duration("idempotency.retention"));
    return caf::actor_cast<caf::actor>(reports::spawn_reports(s, std::move(r)));
  }});
  // After everything a session reaches: InstaNote jobs, corrections, speakers, reports, audit.
  tree.children.push_back({"verification-sessions", [&cfg](caf::actor_system& s, const started_children& c) {
    verification::sessions_settings v;
    v.db = caf::actor_cast<postgres_actor>(c.at("postgres"));
    v.jobs = caf::actor_cast<instanote_actor>(c.at("instanote-jobs"));
    v.corrections = caf::actor_cast<correction_actor>(c.at("corrections"));
    v.speakers = caf::actor_cast<speaker_shard_actor>(c.at("speakers"));
    v.reports = caf::actor_cast<reports_actor>(c.at("reports"));
    v.audit = caf::actor_cast<audit_actor>(c.at("audit"));
    v.idle_timeout = cfg.duration("verification.session-idle-timeout");
    v.sweep_interval = cfg.duration("verification.session-sweep-interval");
    v.max_active = static_cast<std::uint32_t>(cfg.integer("verification.max-active-sessions"));
    v.max_jobs_cap = static_cast<std::uint32_t>(cfg.integer("instanote.max-jobs"));
    v.db_timeout = cfg.duration("postgres.request-timeout");
    v.call_timeout = cfg.duration("gateway.request-timeout");
    v.idempotency_retention =
      std::chrono::duration_cast<std::chrono::seconds>(cfg.duration("idempotency.retention"));
    v.content_key = cfg.secret("reports.fernet-key");  // drafts are clinical: kept encrypted
    v.draft_retention = cfg.duration("verification.draft-retention");
    v.draft_purge_interval = cfg.duration("verification.draft-purge-interval");
    return caf::actor_cast<caf::actor>(verification::spawn_sessions(s, std::move(v)));
  }});
  // The node's membership and lease (speakers fence their writes with its epoch through `lease`).
  // Last but the gateway, which shows it: its restart restarts nothing else. Its latest
  // incarnation is kept for the clean stop, which gives the lease back.
  struct membership_slot {
    std::mutex lock;
    membership_actor actor;
  };
  auto membership = std::make_shared<membership_slot>();
  if (clustered(cfg)) {
    cluster::membership_settings m;
    m.node_name = cfg.text("node.name");
    m.host = cfg.text("cluster.host");
    m.port = static_cast<std::uint16_t>(cfg.integer("cluster.port"));
    m.seeds = std::get<std::vector<cluster::seed_address>>(seeds);
    m.lease_ttl = cfg.duration("cluster.lease-ttl");
    m.renew_interval = cfg.duration("cluster.lease-renew-interval");
    m.call_timeout = cfg.duration("cluster.call-timeout");
    m.lease = lease;
    m.tls = cluster_tls(cfg);
    if (const auto v = cfg.integer("cluster.messages-version"); v > 0) {
      const auto oldest = cfg.integer("cluster.messages-oldest");
      m.version = {static_cast<std::uint32_t>(v), static_cast<std::uint32_t>(oldest > 0 ? oldest : v)};
    }
    logger->info("cluster: member {}:{} (TLS {}), seeds '{}'", m.host, m.port, m.tls ? "on" : "off",
                 cfg.text("cluster.seeds"));
    // The lease's statements on a connection of their own: behind a flood of speaker activations
    // and hand-offs (thousands at a join) in the main pool's queue, a renewal was refused as
    // overloaded and the lease of a healthy node lapsed, moving every speaker it had.
    tree.children.push_back({"postgres-cluster", [main_database](caf::actor_system& s,
                                                                 const started_children&) {
      auto pg = main_database();
      pg.name = "postgres-cluster";
      pg.pool_size = 1;
      return caf::actor_cast<caf::actor>(connections::spawn_postgres(s, std::move(pg)));
    }});
    tree.children.push_back({"cluster", [m, membership](caf::actor_system& s, const started_children& c) {
      auto settings = m;
      settings.db = caf::actor_cast<postgres_actor>(c.at("postgres-cluster"));
      settings.speakers = caf::actor_cast<speaker_shard_actor>(c.at("speakers"));
      settings.events = caf::actor_cast<event_bus_actor>(c.at("event-bus"));
      settings.patterns = caf::actor_cast<pattern_index_actor>(c.at("pattern-index"));
      settings.pattern_listeners = {caf::actor_cast<pattern_placement_actor>(c.at("pattern-index")),
                                    caf::actor_cast<pattern_placement_actor>(c.at("pattern-router"))};
      // The report saga needs none: its rows are claimed one by one, whichever node runs it.
      settings.singletons = {outbox_relay_singleton};
      auto actor = cluster::spawn_membership(s, std::move(settings));
      std::lock_guard<std::mutex> guard{membership->lock};
      membership->actor = actor;
      return caf::actor_cast<caf::actor>(actor);
    }});
  }
  tree.children.push_back({"gateway", [&cfg, pipeline, services, pattern_front, counters = http.counters](
                                         caf::actor_system& s, const started_children& c) {
    gateway::gateway_settings g;
    g.lanes = static_cast<std::size_t>(cfg.integer("gateway.lanes"));
    if (g.lanes == 0)
      g.lanes = scheduler_threads(cfg);
    g.services = std::get<gateway::service_allow_list>(services);
    g.postgres = caf::actor_cast<postgres_actor>(c.at("postgres"));
    g.filings = caf::actor_cast<postgres_actor>(c.at("postgres-filings"));
    g.instanote = caf::actor_cast<postgres_actor>(c.at("instanote"));
    g.jobs = caf::actor_cast<instanote_actor>(c.at("instanote-jobs"));
    g.max_jobs = static_cast<std::uint32_t>(cfg.integer("instanote.max-jobs"));
    g.redis = caf::actor_cast<redis_actor>(c.at("redis"));
    g.speakers = caf::actor_cast<speaker_shard_actor>(c.at("speakers"));
    g.schedule = caf::actor_cast<verification_scheduler_actor>(c.at("verification-scheduler"));
    g.events = caf::actor_cast<event_feed_actor>(c.at("event-feed"));
    g.reports = caf::actor_cast<reports_actor>(c.at("reports"));
    g.patterns = pattern_front(c);
    g.corrections = caf::actor_cast<correction_actor>(c.at("corrections"));
    g.sessions = caf::actor_cast<verification_sessions_actor>(c.at("verification-sessions"));
    g.max_draft_bytes = static_cast<std::size_t>(cfg.integer("drafts.max-bytes"));
    g.request_timeout = cfg.duration("gateway.request-timeout");
    g.max_json_depth = static_cast<std::size_t>(cfg.integer("gateway.max-json-depth"));
    g.users = caf::actor_cast<users_actor>(c.at("users"));
    g.audit = caf::actor_cast<audit_actor>(c.at("audit"));
    g.http_counters = counters;
    g.metrics_open = cfg.text("metrics.access") == "open";
    g.metrics_timeout = cfg.duration("metrics.component-timeout");
    if (auto it = c.find("cluster"); it != c.end())
      g.cluster = caf::actor_cast<membership_actor>(it->second);
    return gateway::spawn_gateway(s, std::move(g), pipeline);
  }});
  auto root = supervision::spawn_rest_for_one(sys, std::move(tree));

  try {
    server->start();
  } catch (const std::exception& e) {
    logger->critical("cannot serve HTTP on {}:{}: {}", http.host, http.port, e.what());
    caf::anon_send_exit(root, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(on_fatal, caf::exit_reason::user_shutdown);
    return exit_failure;
  }
  logger->info("gateway listening on {}://{}:{}", http.tls() ? "https" : "http", http.host, http.port);

  int signal_number = 0;
  sigwait(&signals, &signal_number);
  int code = forced_exit_code.load();
  logger->info("stopping ({}), draining in-flight requests", code < 0 ? "signal" : "fatal");

  pipeline->drain();
  if (!server->wait_idle(std::chrono::steady_clock::now() + cfg.duration("gateway.drain-timeout")))
    logger->warn("{} requests still in flight at the drain deadline", server->in_flight());
  server->stop();
  // Nothing is served any more: give the lease back, so the other members take this node's
  // speakers at their next lease reading instead of after the lease lapses.
  membership_actor member;
  {
    std::lock_guard<std::mutex> guard{membership->lock};
    member = membership->actor;
  }
  if (member) {
    caf::scoped_actor asker{sys};
    asker->request(member, cfg.duration("cluster.call-timeout"), leave_atom::value)
      .receive([&](bool released) { logger->info("cluster: lease {}", released ? "released" : "not held"); },
               [&](caf::error& e) { logger->warn("cluster: lease not released: {}", sys.render(e)); });
  }
  caf::anon_send_exit(root, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(on_fatal, caf::exit_reason::user_shutdown);
  logger->info("stopped");
  const int exit_code = code < 0 ? exit_ok : code;
  // Nothing bounds the rest of the stop on its own: an actor that does not end, or CAF's actor
  // system waiting in its destructor for a detached actor's thread or the middleman's I/O thread
  // (a drained node of e2e.test_upgrade logged "stopped" and lived past the test's 30 s). Past the
  // drain timeout the watchdog ends the process with the same code, naming the step and the
  // threads it left.
  const auto until = std::chrono::steady_clock::now() + cfg.duration("gateway.drain-timeout");
  shutdown_watchdog::arm(until, exit_code);
  shutdown_watchdog::step("waiting for the actors to end");
  while (sys.registry().running() > 0 && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  if (const auto left = sys.registry().running(); left > 0) {
    logger->warn("{} actor(s) still running at the drain deadline after the stop: exiting without them", left);
    spdlog::shutdown();
    std::_Exit(exit_code);
  }
  shutdown_watchdog::step("releasing the HTTP server and the gateway pipeline");
  return exit_code;
}

}  // namespace sbm::cli

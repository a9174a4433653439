#include "config/node_options.hpp"

namespace sbm::config {

namespace {

option_spec opt(std::string key, value_kind kind, std::string def, std::string help) {
  option_spec o;
  o.key = std::move(key);
  o.kind = kind;
  o.default_value = std::move(def);
  o.help = std::move(help);
  return o;
}

option_spec ranged(std::string key, value_kind kind, std::string def, double min, double max,
                   std::string help) {
  auto o = opt(std::move(key), kind, std::move(def), std::move(help));
  o.min = min;
  o.max = max;
  return o;
}

option_spec choice(std::string key, std::string def, std::vector<std::string> choices, std::string help) {
  auto o = opt(std::move(key), value_kind::text, std::move(def), std::move(help));
  o.choices = std::move(choices);
  return o;
}

option_spec required(option_spec o) {
  o.required = true;
  return o;
}

using k = value_kind;

std::vector<option_spec> make_options() {
  return {
    opt("node.name", k::text, "sbm-1", "name of this node in logs and, later, in the cluster"),
    ranged("node.scheduler-threads", k::integer, "0", 0, 256,
           "CAF scheduler worker threads; 0 means one per core"),
    ranged("node.scheduler-moderate-polls", k::integer, "1", 0, 100000,
           "polls, 50 us apart, a worker makes once it runs dry before it waits to be woken (CAF's 500 keep an idle node busy)"),
    opt("node.scheduler-steal-interval", k::duration, "100ms",
        "how often a waiting worker looks for work queued behind a busy one"),
    opt("gateway.host", k::text, "127.0.0.1", "address the HTTP gateway binds"),
    ranged("gateway.port", k::integer, "8000", 1, 65535, "port the HTTP gateway binds"),
    ranged("gateway.threads", k::integer, "1", 1, 64, "HTTP server threads"),
    ranged("gateway.lanes", k::integer, "0", 0, 256,
           "gateway actors requests are spread over; 0 means one per scheduler thread"),
    ranged("gateway.token-cache-size", k::integer, "10000", 0, 10000000,
           "verified tokens remembered until they expire (0: every request's signature is checked)"),
    ranged("gateway.published-views", k::integer, "16384", 0, 1000000,
           "active speakers whose views the HTTP threads answer GET /v1/speakers/{id} from (0: none)"),
    ranged("gateway.body-limit", k::integer, "1048576", 1024, 67108864,
           "largest request body in bytes; larger ones get 413"),
    ranged("gateway.max-connections", k::integer, "1024", 1, 1000000,
           "concurrent client connections, all addresses together"),
    ranged("gateway.max-connections-per-address", k::integer, "512", 1, 1000000,
           "concurrent connections from one client address (trusted proxies exempt); more are "
           "closed at once"),
    ranged("gateway.connection-rate", k::number, "500", 0, 1000000,
           "new connections per second from one client address; 0 turns the limit off"),
    ranged("gateway.connection-burst", k::number, "1000", 1, 10000000,
           "new connections an address that has been quiet may open at once"),
    opt("gateway.trusted-proxies", k::text, "",
        "comma-separated addresses of reverse proxies whose X-Forwarded-For names the client"),
    ranged("gateway.body-memory-budget", k::integer, "268435456", 1024, 68719476736.0,
           "bytes of request bodies held at once by the node; past it new bodies get 503 with "
           "Retry-After before they are read"),
    ranged("gateway.max-header-bytes", k::integer, "8192", 256, 1048576,
           "largest URL or header value in bytes"),
    ranged("gateway.max-json-depth", k::integer, "32", 2, 512, "deepest JSON nesting accepted"),
    opt("gateway.request-timeout", k::duration, "10s",
        "how long the gateway waits for an actor before answering 503"),
    opt("gateway.read-timeout", k::duration, "10s", "slow clients are disconnected after this"),
    opt("gateway.drain-timeout", k::duration, "10s",
        "on shutdown, how long in-flight requests may take to finish"),
    ranged("gateway.max-header-count", k::integer, "100", 1, 10000, "most header fields in one request"),
    ranged("gateway.rate-limit", k::number, "500", 0, 1000000,
           "requests per second per client (its principal, or its address before authentication); "
           "over it: 429 with Retry-After; 0 turns the limit off"),
    ranged("gateway.rate-burst", k::number, "1000", 1, 10000000,
           "requests a client that has been quiet may send at once"),
    ranged("gateway.rate-limit-clients", k::integer, "10000", 1, 10000000,
           "clients whose rate is tracked in memory; idle ones are forgotten first"),
    opt("gateway.user-cache-ttl", k::duration, "5s",
        "how long the gateway trusts what it read about a user (disabled, role); 0s = ask every time"),
    opt("gateway.tls-cert-file", k::text, "",
        "TLS certificate chain (PEM); with gateway.tls-key the gateway serves HTTPS only"),
    opt("gateway.tls-key", k::secret, "", "TLS private key (PEM) for gateway.tls-cert-file"),
    opt("gateway.console-dir", k::text, "",
        "built QA console served at /console/ (empty: the build's console/ beside bin/sbm)"),
    required(opt("postgres.url", k::text, "postgresql://sbm@127.0.0.1:5432/sbm",
                 "PostgreSQL main database (SBM's source of truth)")),
    ranged("postgres.pool-size", k::integer, "4", 1, 64, "PostgreSQL connections (one thread each)"),
    choice("postgres.breaker-window", "count", {"count", "time"},
           "PostgreSQL's circuit judges the last breaker-window-size calls (count) or seconds (time)"),
    ranged("postgres.breaker-window-size", k::integer, "10", 1, 10000,
           "calls (count window) or seconds (time window, at most 3600) in PostgreSQL's circuit window"),
    ranged("postgres.breaker-minimum-calls", k::integer, "5", 1, 10000,
           "outcomes PostgreSQL's window must hold before its rates are judged: with the other defaults five failures in a row open it"),
    ranged("postgres.breaker-failure-rate", k::number, "50", 1, 100,
           "percent of failed calls in the window that opens PostgreSQL's circuit"),
    opt("postgres.breaker-slow-call-duration", k::duration, "5s",
        "a call to postgres taking at least this counts as slow"),
    ranged("postgres.breaker-slow-call-rate", k::number, "100", 1, 100,
           "percent of slow calls in the window that opens PostgreSQL's circuit"),
    ranged("postgres.breaker-half-open-calls", k::integer, "3", 1, 1000,
           "trial calls PostgreSQL's half-open circuit admits; all must answer before it closes or reopens"),
    opt("postgres.breaker-open-for", k::duration, "60s",
        "longest PostgreSQL's circuit stays open without a trial (a successful health probe ends it sooner: half-open)"),
    opt("postgres.probe-interval", k::duration, "1s", "health probe interval for PostgreSQL"),
    opt("postgres.request-timeout", k::duration, "10s", "longest PostgreSQL statement or transaction"),
    opt("postgres.test-migrations-dir", k::text, "",
        "for tests only: also apply the migrations in this folder (<schema>/NNN_name.sql), as a newer "
        "build would; empty: only the build's own"),
    ranged("postgres.max-queued", k::integer, "256", 1, 1000000,
           "PostgreSQL requests queued at once; past it: 503 overloaded with Retry-After"),
    opt("instanote.url", k::text, "postgresql://sbm@127.0.0.1:5432/instanote",
        "InstaNote drafts database (read only)"),
    opt("instanote.password", k::secret, "", "InstaNote password, added to instanote.url"),
    choice("instanote.sslmode", "prefer", {"disable", "allow", "prefer", "require", "verify-ca", "verify-full"},
           "TLS to InstaNote (libpq sslmode), added to instanote.url"),
    ranged("instanote.pool-size", k::integer, "2", 1, 20, "InstaNote connections"),
    choice("instanote.breaker-window", "count", {"count", "time"},
           "InstaNote's circuit judges the last breaker-window-size calls (count) or seconds (time)"),
    ranged("instanote.breaker-window-size", k::integer, "10", 1, 10000,
           "calls (count window) or seconds (time window, at most 3600) in InstaNote's circuit window"),
    ranged("instanote.breaker-minimum-calls", k::integer, "3", 1, 10000,
           "outcomes InstaNote's window must hold before its rates are judged: with the other defaults three failures in a row open it"),
    ranged("instanote.breaker-failure-rate", k::number, "50", 1, 100,
           "percent of failed calls in the window that opens InstaNote's circuit"),
    opt("instanote.breaker-slow-call-duration", k::duration, "10s",
        "a call to instanote taking at least this counts as slow"),
    ranged("instanote.breaker-slow-call-rate", k::number, "100", 1, 100,
           "percent of slow calls in the window that opens InstaNote's circuit"),
    ranged("instanote.breaker-half-open-calls", k::integer, "3", 1, 1000,
           "trial calls InstaNote's half-open circuit admits; all must answer before it closes or reopens"),
    opt("instanote.breaker-open-for", k::duration, "30s",
        "longest InstaNote's circuit stays open without a trial (a successful health probe ends it sooner: half-open)"),
    ranged("instanote.retries", k::integer, "3", 0, 10,
           "times a pull refused before it reached InstaNote (connection refused) is repeated"),
    opt("instanote.retry-base", k::duration, "1s",
        "first back-off before a repeat; it doubles each time, +-50 % jitter, never past the caller's deadline"),
    opt("instanote.retry-cap", k::duration, "60s", "longest back-off between repeats"),
    opt("instanote.connect-timeout", k::duration, "30s", "longest wait to connect to InstaNote"),
    opt("instanote.request-timeout", k::duration, "30s",
        "longest InstaNote query (also its server-side statement_timeout)"),
    opt("instanote.cache-ttl", k::duration, "1h",
        "how long Redis keeps a pull's jobs (the fallback while InstaNote is down); at most verification.draft-retention when that is set"),
    opt("instanote.cache-fresh-for", k::duration, "60s",
        "a cached pull younger than this answers without asking InstaNote; 0s = only as fallback"),
    ranged("instanote.max-jobs", k::integer, "100", 1, 1000, "most jobs one pull may ask for"),
    opt("redis.host", k::text, "127.0.0.1", "Redis host (cache and event stream)"),
    ranged("redis.port", k::integer, "6379", 1, 65535, "Redis port"),
    ranged("redis.pool-size", k::integer, "2", 1, 64, "Redis connections"),
    choice("redis.breaker-window", "count", {"count", "time"},
           "Redis' circuit judges the last breaker-window-size calls (count) or seconds (time)"),
    ranged("redis.breaker-window-size", k::integer, "10", 1, 10000,
           "calls (count window) or seconds (time window, at most 3600) in Redis' circuit window"),
    ranged("redis.breaker-minimum-calls", k::integer, "5", 1, 10000,
           "outcomes Redis' window must hold before its rates are judged: with the other defaults five failures in a row open it"),
    ranged("redis.breaker-failure-rate", k::number, "50", 1, 100,
           "percent of failed calls in the window that opens Redis' circuit"),
    opt("redis.breaker-slow-call-duration", k::duration, "1s",
        "a call to redis taking at least this counts as slow"),
    ranged("redis.breaker-slow-call-rate", k::number, "100", 1, 100,
           "percent of slow calls in the window that opens Redis' circuit"),
    ranged("redis.breaker-half-open-calls", k::integer, "3", 1, 1000,
           "trial calls Redis' half-open circuit admits; all must answer before it closes or reopens"),
    opt("redis.breaker-open-for", k::duration, "60s",
        "longest Redis' circuit stays open without a trial (a successful health probe ends it sooner: half-open)"),
    opt("redis.command-timeout", k::duration, "2s", "longest Redis command"),
    choice("log.level", "info", {"trace", "debug", "info", "warn", "error", "critical", "off"},
           "log level"),
    choice("log.format", "text", {"text", "json"}, "log line format: text or JSON lines"),
    required(opt("auth.keys", k::secret, "",
                 "JWT keyring (JSON: {\"keys\":[{\"kid\",\"alg\",\"secret\"|\"public_pem\"}]})")),
    opt("auth.issuer", k::text, "sbm", "required `iss` of tokens"),
    opt("auth.audience", k::text, "sbm-api", "required `aud` of tokens"),
    opt("auth.leeway", k::duration, "30s", "clock skew allowed for exp, nbf and iat"),
    ranged("auth.max-token-lifetime", k::duration, "24h", 1000, 31622400000.0,
           "longest a token may live: exp - iat at most this; a token without iat must expire "
           "within this (plus leeway) of the moment it is used"),
    opt("auth.services", k::text, "",
        "service allow-list: name=perm+perm;name2=perm (e.g. drafting=speakers.read+drafts.correct)"),
    required(opt("reports.fernet-key", k::secret, "",
                 "Fernet key (base64url, 32 bytes) that encrypts QA notes at rest")),
    // At most the pattern index's own limit per text (65536), or a stored report could never be
    // indexed.
    ranged("reports.max-text-bytes", k::integer, "2000", 16, 65536,
           "longest original_text or corrected_text of an error report, in bytes"),
    ranged("reports.max-notes-bytes", k::integer, "10000", 16, 65536,
           "longest additional_notes, context_notes or context_text of an error report, in bytes"),
    opt("reports.lookup-timeout", k::duration, "3s",
        "how long filing a report waits for the speakers shard and for InstaNote's job check"),
    opt("reports.relay-interval", k::duration, "1s",
        "how often the report saga looks for steps to retry or sagas left by a stopped node"),
    opt("reports.saga-claim", k::duration, "30s",
        "a report saga that made no progress for this long is taken over (after a crash)"),
    opt("reports.saga-step-delay", k::duration, "0s",
        "for tests only: wait this long before each report saga step; 0s in production"),
    ranged("reports.filing-connections", k::integer, "2", 1, 16,
           "PostgreSQL connections kept for report filings, besides postgres.pool-size: a filing "
           "never waits behind the sagas' statements"),
    ranged("reports.max-queued", k::integer, "1000", 1, 1000000,
           "report filings waiting to be stored; past it: 503 overloaded with Retry-After"),
    ranged("reports.max-running-sagas", k::integer, "32", 1, 100000,
           "report sagas this node runs at once"),
    ranged("reports.max-waiting-sagas", k::integer, "10000", 1, 10000000,
           "sagas waiting for a free slot in memory; past it they wait in PostgreSQL for the poll"),
    ranged("reports.saga-background-share", k::integer, "1", 0, 6,
           "statements the report sagas keep in flight while filings arrive (6: their full share); "
           "0: the sagas never yield to filings"),
    ranged("reports.saga-yield-backlog", k::integer, "2000", 0, 10000000,
           "undone sagas on this node past which they take their full share even while filings "
           "arrive (at most reports.max-waiting-sagas)"),
    opt("reports.saga-yield-quiet", k::duration, "100ms",
        "filings count as arriving for this long after the last one; then the sagas run at full speed"),
    opt("reports.notes-retention", k::duration, "0s",
        "QA notes (clinical text) of reports older than this are purged; 0s keeps them"),
    opt("reports.notes-purge-interval", k::duration, "1h",
        "how often reports are checked for notes past their retention"),
    ranged("speakers.window-size", k::integer, "50", 1, 10000, "verified jobs in the quality window"),
    ranged("speakers.promotion-margin", k::number, "0.5", 0, 100,
           "a promotion needs the window mean this far inside the better band"),
    ranged("speakers.band-no-touch", k::number, "2.0", 0, 1000, "no_touch: mean errors per 100 words at most"),
    ranged("speakers.band-low-touch", k::number, "5.0", 0, 1000, "low_touch: at most"),
    ranged("speakers.band-medium-touch", k::number, "10.0", 0, 1000,
           "medium_touch: at most (above: high_touch)"),
    choice("speakers.initial-bucket", "high_touch", {"no_touch", "low_touch", "medium_touch", "high_touch"},
           "bucket of a newly registered speaker"),
    opt("speakers.idle-timeout", k::duration, "5m", "an idle speaker actor is passivated after this"),
    opt("speakers.relay-interval", k::duration, "500ms", "how often the event outbox is polled"),
    ranged("speakers.max-queued-per-speaker", k::integer, "64", 1, 100000,
           "requests one speaker may have waiting; past it: 503 overloaded with Retry-After"),
    ranged("speakers.max-queued", k::integer, "10000", 1, 10000000,
           "speaker requests waiting on this node; past it: 503 overloaded with Retry-After"),
    ranged("speakers.event-feed-size", k::integer, "1000", 1, 1000000,
           "bucket changes this node keeps for GET /v1/events/bucket-changes (older ones are dropped)"),
    ranged("speakers.event-feed-max-waiting", k::integer, "1000", 0, 100000,
           "reads of the bucket-change feed waiting for the next change at once; past it: 503 overloaded with Retry-After"),
    ranged("patterns.dimension", k::integer, "256", 16, 4096,
           "embedding dimension of the pattern index (a change rebuilds it from PostgreSQL)"),
    ranged("patterns.ef-search", k::integer, "32", 10, 10000,
           "HNSW search breadth of an unfiltered search over up to 100,000 patterns; above that it grows as (patterns / 100,000)^0.6 (higher: better recall, slower)"),
    opt("patterns.snapshot-path", k::text, "",
        "file the pattern index snapshots to and restarts from (checked against PostgreSQL); empty: rebuild at every start"),
    opt("patterns.snapshot-interval", k::duration, "10m",
        "how often a changed pattern index is snapshotted (it is also saved on a clean stop)"),
    opt("patterns.scatter-timeout", k::duration, "2s",
        "in a cluster, how long a search without a speaker filter waits for each member; one that has not answered by then is named in the answer's `missing` (at most half of gateway.request-timeout)"),
    ranged("patterns.max-scatters", k::integer, "256", 1, 100000,
           "in a cluster, searches across every member in flight from this node; past it: 503 overloaded with Retry-After"),
    ranged("drafts.max-bytes", k::integer, "65536", 1, 1048576,
           "longest draft_text POST /v1/drafts/correct takes; past it: 413"),
    ranged("drafts.top-k", k::integer, "10", 1, 1000, "patterns retrieved per draft segment"),
    ranged("drafts.max-in-flight", k::integer, "64", 1, 100000,
           "drafts being corrected on this node at once; past it: 503 overloaded with Retry-After"),
    ranged("drafts.workers", k::integer, "2", 1, 64,
           "detached correction workers (each embeds a draft's segments and runs the engine on a thread of its own)"),
    ranged("drafts.apply-threshold", k::number, "0.35", 0, 1,
           "a correction from a rectified pattern is applied at this confidence (match quality x weight); below it, proposed"),
    ranged("drafts.weight-floor", k::number, "0.1", 0, 1, "patterns whose weight fell below this are not used"),
    opt("verification.session-idle-timeout", k::duration, "30m",
        "a verification session unused this long expires unsubmitted (its schedule entries are scheduled again)"),
    opt("verification.session-sweep-interval", k::duration, "10s",
        "how often expired verification sessions are looked for"),
    ranged("verification.max-active-sessions", k::integer, "1000", 1, 1000000,
           "verification session actors on this node at once; past it: 503 overloaded with Retry-After"),
    // instanote.cache-ttl may not exceed it (checked at start): cached pulls hold the same drafts.
    opt("verification.draft-retention", k::duration, "0s",
        "drafts and corrections of closed verification sessions created longer ago than this are dropped (marks and outcome stay); 0s keeps them"),
    opt("verification.draft-purge-interval", k::duration, "1h",
        "how often verification sessions are checked for drafts past their retention"),
    choice("metrics.access", "token", {"open", "token"},
           "GET /metrics: open (no token, for a Prometheus on a trusted network) or token (ops.read)"),
    opt("metrics.component-timeout", k::duration, "1s",
        "how long a metrics scrape (and GET /v1/status's queues) waits for each component; one "
        "that does not answer is reported missing (sbm_scrape_component_up 0)"),
    ranged("supervision.max-restarts", k::integer, "5", 0, 1000,
           "restarts a supervisor allows within supervision.period before escalating"),
    opt("supervision.period", k::duration, "10s", "window for supervision.max-restarts"),
    opt("idempotency.retention", k::duration, "24h",
        "how long an Idempotency-Key and its stored answer are kept (a retry later is a new request)"),
    ranged("cluster.port", k::integer, "0", 0, 65535,
           "port of this node's membership actor (CAF BASP); 0: no cluster, the node runs alone"),
    opt("cluster.host", k::text, "127.0.0.1",
        "address the membership actor binds, and by which the other members reach this node"),
    opt("cluster.seeds", k::text, "",
        "members to join through, host:port,host:port (this node's own address may be listed); "
        "empty: this node starts the cluster"),
    opt("cluster.lease-ttl", k::duration, "3s",
        "how long a node's lease runs after its last renewal (PostgreSQL's clock); after that its "
        "speakers may move and its writes are refused"),
    opt("cluster.lease-renew-interval", k::duration, "1s",
        "how often the node renews its lease and reads the others' (at most a third of cluster.lease-ttl)"),
    opt("cluster.heartbeat-interval", k::duration, "100ms",
        "BASP heartbeats between members (CAF middleman.heartbeat-interval)"),
    opt("cluster.connection-timeout", k::duration, "1s",
        "a member silent this long is unreachable (CAF middleman.connection-timeout); a killed one "
        "is seen at once"),
    opt("cluster.call-timeout", k::duration, "2s",
        "longest wait for a connect, a join or a lease statement before it is retried"),
    opt("cluster.tls-cert-file", k::text, "",
        "certificate (PEM) this node shows the other members; cluster TLS needs all three tls options"),
    opt("cluster.tls-key-file", k::text, "", "private key (PEM) of cluster.tls-cert-file"),
    opt("cluster.tls-ca-file", k::text, "",
        "CA (PEM) a member's certificate must be signed by to join"),
    ranged("cluster.messages-version", k::integer, "0", 0, 1000000,
           "for tests only: speak this version of the members' messages instead of the build's own "
           "(0); a member that cannot read another's is refused at join"),
    ranged("cluster.messages-oldest", k::integer, "0", 0, 1000000,
           "for tests only, with cluster.messages-version: the oldest version still read (0: the "
           "same), as a newer build that reads the old form during a rolling upgrade"),
  };
}

}  // namespace

const std::vector<option_spec>& node_options() {
  static const std::vector<option_spec> options = make_options();
  return options;
}

}  // namespace sbm::config

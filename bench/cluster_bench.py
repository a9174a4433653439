"""The cluster's costs (issue 19, "Speed"), on loopback against one PostgreSQL, printed as markdown:

1. One hop: GET /v1/speakers/{id} requests per second (wrk, authenticated) through the speaker's
   owner and through a node that sends it on to the owner over BASP.
2. Rebalancing: REGISTERED speakers registered and ACTIVE of them active on three nodes; a 4th
   joins. Time from its lease until every speaker that moved to it answers there (a read through
   another node finds its ownership row under the new node's epoch), while keyed samples are
   written to the moved speakers through the old nodes; lost messages (acknowledged, not stored, or
   stored twice) must be 0.
3. Node loss: kill -9 of one of the four; time until every active speaker it owned answers again
   through the survivors (its lease lapses first: cluster.lease-ttl).

Run with servers up, from the repository root:
  SBMTEST_SERVERS_DIR=DIR SBMTEST_BINARY=build/bin/sbm python3 bench/cluster_bench.py \
      [--registered N] [--active N] [--wrk-seconds S] [--db-cache DIR]
(BENCH_LOG_LEVEL=info keeps the nodes' logs at info, with SBMTEST_KEEP=1 to find them afterwards.)
The registered speakers are seeded once per size into the database bench_cluster_N (kept when
--db-cache names a directory for its marker, as scripts/bench does; dropped otherwise).
"""
import argparse
import asyncio
import http.client
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "e2e"))

from sbm_node import SBM, Node, free_port, psql, servers_env  # noqa: E402
from test_cluster import owner_of  # noqa: E402

SEED_VERSION = 2  # raised when what is seeded changes: a cached database of another version is seeded anew
CLIENTS = 128  # connections of the activation and probe phases, each with one request at a time


def seeded_database(srv, registered, cache_dir):
    """A database holding `registered` speakers (spk-0 ...), migrated by `sbm migrate`; seeded once
    when cache_dir keeps its marker."""
    name = f"bench_cluster_v{SEED_VERSION}_{registered}"
    url = srv["PG_URL"].rsplit("/", 1)[0] + "/" + name
    marker = os.path.join(cache_dir, f"{name}.seeded") if cache_dir else None
    if marker and os.path.exists(marker):
        # Leftovers of the last run: its leases lapsed, its ownership rows name dead epochs.
        psql(url, "DELETE FROM cluster.speaker_owners; DELETE FROM cluster.leases; "
                  "DELETE FROM speakers.quality_samples WHERE job_id LIKE 'bench-%'")
        return url, False
    psql(srv["PG_URL"], f"DROP DATABASE IF EXISTS {name}")
    psql(srv["PG_URL"], f"CREATE DATABASE {name}")
    subprocess.run([SBM, "migrate", f"--postgres.url={url}"], check=True, capture_output=True)
    # The rows POST /v1/speakers writes (actors/speakers/store_postgres.cpp, create), in one statement
    # each instead of one request each; no ownership row, as a speaker registered and passivated.
    psql(url, "INSERT INTO speakers.speakers (speaker_id, client_id, display_name, bucket) "
              f"SELECT 'spk-' || i, 'c1', 'Dr. ' || i, 'medium_touch' FROM generate_series(0, {registered - 1}) i")
    psql(url, "INSERT INTO speakers.bucket_history (speaker_id, kind, previous_bucket, new_bucket, reason, actor) "
              "SELECT speaker_id, 'register', NULL, bucket, 'registered', 'bench' FROM speakers.speakers ORDER BY speaker_id")
    if marker:
        with open(marker, "w") as f:
            f.write(f"{registered}\n")
    return url, not marker


class Cluster:
    def __init__(self, srv, db, size):
        self.srv, self.db = srv, db
        self.nodes, self.keys = [], None
        # Known before the nodes start, so the speakers a join moves are known too.
        self.ports = [free_port() for _ in range(size)]
        self.addresses = [f"127.0.0.1:{p}" for p in self.ports]
        self.seeds = ",".join(self.addresses[:2])

    def add(self):
        port = self.ports[len(self.nodes)]
        node = Node(srv=self.srv, database_url=self.db, keys=self.keys,
                    extra_flags=[f"--cluster.port={port}", f"--cluster.seeds={self.seeds}",
                                 f"--node.name=b{len(self.nodes)}", f"--log.level={os.environ.get('BENCH_LOG_LEVEL', 'warn')}",
                                 "--gateway.rate-limit=0"])
        self.keys = node.keys
        self.nodes.append(node)
        return node

    def epochs(self):
        rows = psql(self.db, "SELECT address || ' ' || epoch FROM cluster.leases WHERE expires_at > now()")
        return dict(line.split(" ") for line in rows.splitlines() if line)

    def wait_joined(self, token, count):
        def joined():
            for n in self.nodes:
                if n.proc is None:
                    continue
                members = n.get("/v1/status", token=token).json()["cluster"]["members"]
                if sum(1 for m in members if m["state"] == "up") != count:
                    return False
            return True
        self.nodes[0].wait_until(joined, 120, f"the {count} nodes never listed each other")

    def stop(self):
        for n in self.nodes:
            n.stop()


def owner_rows(db, speakers=None):
    rows = psql(db, "SELECT speaker_id || ' ' || epoch FROM cluster.speaker_owners")
    got = dict(line.split(" ") for line in rows.splitlines() if line)
    return got if speakers is None else {s: got.get(s) for s in speakers}


async def _get_status(reader, writer, path, token):
    """One GET on a kept-alive connection: its status, and whether the server closes it."""
    writer.write(f"GET {path} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {token}\r\n\r\n".encode())
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
    status = int(head[0].split(" ")[1])
    fields = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in head[1:] if line)}
    if fields.get("transfer-encoding", "").lower() == "chunked":
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    else:
        await reader.readexactly(int(fields.get("content-length", "0")))
    return status, fields.get("connection", "").lower() == "close"


async def _read_many(port, token, speakers, connections):
    todo, statuses = list(speakers), {}

    async def client():
        conn = None
        while todo:
            s = todo.pop()
            statuses[s] = 0  # no answer (a refused or lost connection): read it again
            try:
                if conn is None:
                    conn = await asyncio.open_connection("127.0.0.1", port)
                statuses[s], closed = await _get_status(*conn, f"/v1/speakers/{s}", token)
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError, IndexError):
                closed = True
            if closed and conn is not None:
                conn[1].close()
                conn = None
        if conn is not None:
            conn[1].close()
    await asyncio.gather(*(client() for _ in range(min(connections, len(todo)) or 1)))
    return statuses


def read_all(node, token, speakers):
    """GET each speaker through `node` over CLIENTS kept-alive connections at once; the ones not
    answered 200."""
    statuses = asyncio.run(_read_many(node.port, token, speakers, CLIENTS))
    return [s for s in speakers if statuses.get(s) != 200]


def until_answered(node, token, speakers, settled=set, limit_s=300):
    """Reads the speakers through `node` again and again until each answered 200 (a speaker between
    owners answers 503 for a moment) and is among `settled(answered)`."""
    limit = time.monotonic() + limit_s
    pending = speakers
    while pending:
        if time.monotonic() > limit:
            sys.exit(f"cluster bench: {len(pending)} speakers never settled, e.g. {pending[:3]}")
        failed = set(read_all(node, token, pending))
        done = settled([s for s in pending if s not in failed])
        pending = [s for s in pending if s not in done]


STARTED = time.monotonic()


def phase(what):
    """Progress on stderr (scripts/bench keeps it in its log), with the seconds since the start."""
    print(f"cluster bench: {time.monotonic() - STARTED:7.1f} s  {what}", file=sys.stderr, flush=True)


def wait_for(predicate, what, limit_s=120):
    limit = time.monotonic() + limit_s
    while not predicate():
        if time.monotonic() > limit:
            sys.exit(f"cluster bench: {what}")
        time.sleep(0.05)


def wrk_rps(url, token, seconds, connections):
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency",
                          "-H", f"Authorization: Bearer {token}", url],
                         check=True, capture_output=True, text=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([0-9.]+)", out).group(1))
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return rps, int(bad.group(1)) if bad else 0


class Writer:
    """Keyed samples to the given speakers through the given nodes until stopped, each retried with
    its key until acknowledged, as a client does. Records what was acknowledged and refused."""

    def __init__(self, nodes, token, speakers, tag):
        # The run in the tag: a cached database keeps the last run's Idempotency-Keys, and a job
        # sent again under one of them is answered from it (201) without a new row.
        self.nodes, self.token, self.speakers = nodes, token, speakers
        self.tag = f"{tag}-{uuid.uuid4().hex[:8]}"
        self.acked, self.refused, self.stop = [], [], threading.Event()
        self.threads = [threading.Thread(target=self.run, args=(i,)) for i in range(len(nodes))]

    def run(self, i):
        node, n = self.nodes[i], 0
        while not self.stop.is_set():
            s = self.speakers[(n * len(self.nodes) + i) % len(self.speakers)]
            job = f"bench-{self.tag}-{i}-{n}"
            n += 1
            while not self.stop.is_set():  # one never acknowledged is not counted
                try:
                    r = node.request("POST", f"/v1/speakers/{s}/quality-samples", token=self.token,
                                     body={"job_id": job, "errors_per_100_words": 1.0},
                                     headers={"Idempotency-Key": job})
                except (OSError, http.client.HTTPException):  # no answer: send it again, same key
                    continue
                if r.status == 201:
                    self.acked.append((s, job))
                    break
                if r.status != 503 and not (r.status == 409 and "in-progress" in r.body):
                    self.refused.append((s, job, r.status))
                    break
                time.sleep(0.02)

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join()

    def lost(self, db):
        """Acknowledged samples missing from the database or stored more than once."""
        rows = psql(db, "SELECT job_id || ' ' || count(*) FROM speakers.quality_samples "
                        f"WHERE job_id LIKE 'bench-{self.tag}-%' GROUP BY job_id")
        stored = dict(line.split(" ") for line in rows.splitlines() if line)
        return sum(1 for _, job in self.acked if stored.get(job) != "1")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--registered", type=int, default=100000)
    ap.add_argument("--active", type=int, default=10000)
    ap.add_argument("--wrk-seconds", type=int, default=5)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--db-cache", default=None)
    a = ap.parse_args()
    srv = servers_env()
    load_start = f"{os.getloadavg()[0]:.1f}"
    db, drop = seeded_database(srv, a.registered, a.db_cache)
    phase(f"{a.registered:,} speakers seeded")
    cluster = Cluster(srv, db, 4)
    rows = []
    try:
        for _ in range(3):
            cluster.add()
        admin = cluster.nodes[0].token("admin")
        qa = cluster.nodes[0].token("qa")
        cluster.wait_joined(admin, 3)
        phase("3 nodes joined")
        three, four = cluster.addresses[:3], cluster.addresses
        active = [f"spk-{i}" for i in range(a.active)]
        began = time.perf_counter()
        until_answered(cluster.nodes[0], qa, active)
        activation_s = time.perf_counter() - began
        phase(f"{a.active:,} active")

        # 1. One hop: the same speaker read through its owner and through another node.
        speaker = active[0]
        owner = three.index(owner_of(three, speaker))
        other = (owner + 1) % 3
        path = f"/v1/speakers/{speaker}"
        direct, direct_bad = wrk_rps(f"http://127.0.0.1:{cluster.nodes[owner].port}{path}", qa,
                                     a.wrk_seconds, a.connections)
        hop, hop_bad = wrk_rps(f"http://127.0.0.1:{cluster.nodes[other].port}{path}", qa,
                               a.wrk_seconds, a.connections)

        phase("one hop measured")

        # 2. Rebalancing: a 4th node joins while keyed samples go to the speakers that move to it.
        moved = [s for s in active if owner_of(three, s) != owner_of(four, s)]
        if not moved or not any(owner_of(four, s) == four[1] for s in active):
            sys.exit(f"cluster bench: {a.active} active speakers are too few to measure a move")
        with Writer(cluster.nodes[:3], qa, moved, "join") as join_load:
            wait_for(lambda: len(join_load.acked) >= 20, "the writes before the join never got going")
            cluster.add()
            # Timed from the new node's lease (it may be ready a moment before it holds one).
            seen = {}

            def leased():
                seen["age"] = psql(db, "SELECT extract(epoch FROM now() - acquired_at) FROM cluster.leases "
                                       f"WHERE address = '{four[3]}' AND expires_at > now()")
                return seen["age"] != ""
            wait_for(leased, "the 4th node never took a lease")
            joined_at = time.perf_counter() - float(seen["age"])
            epochs = cluster.epochs()
            until_answered(cluster.nodes[0], qa, moved,
                           lambda answered: {s for s, e in owner_rows(db, answered).items() if e == epochs[four[3]]})
            rebalance_s = time.perf_counter() - joined_at
        join_lost = join_load.lost(db)
        # A speaker that did not move keeps its row (or gave it back when it idled out).
        stayed = [s for s in active if s not in set(moved)]
        untouched = sum(1 for s, e in owner_rows(db, stayed).items()
                        if e is not None and e != epochs[owner_of(three, s)])
        cluster.wait_joined(admin, 4)
        phase("4th node joined and rebalanced")

        # 3. Node loss: kill -9 of node 1; time until its active speakers answer again.
        victim = 1
        held = [s for s in active if owner_of(four, s) == four[victim]]
        survivors = [n for i, n in enumerate(cluster.nodes) if i != victim]
        with Writer(survivors, qa, held, "kill") as kill_load:
            wait_for(lambda: len(kill_load.acked) >= 20, "the writes before the kill never got going")
            cluster.nodes[victim].proc.send_signal(signal.SIGKILL)
            killed_at = time.perf_counter()
            phase(f"kill -9 of {four[victim]} (node logs are timed by the wall clock: "
                  f"{time.strftime('%H:%M:%S', time.gmtime())}.{int(time.time() * 1000) % 1000:03d} UTC)")
            until_answered(survivors[0], qa, held)
            recovery_s = time.perf_counter() - killed_at
            cluster.nodes[victim].stop(signal.SIGKILL)
        kill_lost = kill_load.lost(db)
        phase("recovered from kill -9")
        refused = len(join_load.refused) + len(kill_load.refused)

        rows = [
            ("GET /v1/speakers/{id} through the owner", f"{direct:.0f} req/s ({a.connections} conns)",
             f"{direct_bad} non-2xx"),
            ("... through another node (one BASP hop)", f"{hop:.0f} req/s (**{hop / direct:.2f}x**)",
             f"{hop_bad} non-2xx"),
            (f"activate {a.active:,} of {a.registered:,} on 3 nodes (reads, {CLIENTS} connections)",
             f"{activation_s:.1f} s", ""),
            (f"4th node joins: {len(moved):,} active speakers move", f"**{rebalance_s:.2f} s** to answer there",
             f"lost {join_lost} of {len(join_load.acked)} acknowledged; other speakers moved: {untouched}"),
            (f"kill -9 of a node holding {len(held):,} active speakers", f"**{recovery_s:.2f} s** until they answer",
             f"lost {kill_lost} of {len(kill_load.acked)} acknowledged"),
        ]
        print("| what | figure | checks |")
        print("|---|---|---|")
        for r in rows:
            print(f"| {r[0]} | {r[1]} | {r[2]} |")
        print(f"\nLoad average (1 min) at the start of the run {load_start}, at its end {os.getloadavg()[0]:.1f} "
              "(other work on the machine slows activation, which bounds both times).")
        if refused:
            print(f"\n{refused} writes were refused outright (not 201, 503 or 409 in-progress).")
        if join_lost or kill_lost or untouched or refused:
            sys.exit("cluster bench: messages were lost, refused or moved that should not have")
    finally:
        cluster.stop()
        if drop:
            psql(srv["PG_URL"], f"DROP DATABASE IF EXISTS {db.rsplit('/', 1)[1]}")


if __name__ == "__main__":
    main()

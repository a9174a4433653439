"""Issue 2 end to end: a node's liveness, readiness, errors, limits, configuration and shutdown."""
import concurrent.futures
import os
import signal
import socket
import subprocess
import sys
import threading
import unittest

from sbm_node import SBM, Node, PrivateServers, fresh_database, free_port, servers_env


class NodeBasics(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.node = Node(extra_flags=["--gateway.body-limit=2048"])

    @classmethod
    def tearDownClass(cls):
        cls.node.stop()

    def test_healthz_and_readyz(self):
        r = self.node.get("/healthz")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json()["status"], "alive")
        r = self.node.get("/readyz")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["status"], "ready")
        deps = {d["name"]: d for d in r.json()["dependencies"]}
        self.assertTrue(deps["postgres"]["up"])
        self.assertTrue(deps["postgres-filings"]["up"])
        self.assertTrue(deps["redis"]["up"])
        # anyone may ask, so it names dependencies and up/down and nothing else
        for d in deps.values():
            self.assertEqual(set(d), {"name", "up"}, d)
        self.assertEqual(set(r.json()), {"status", "ready", "dependencies"})

    def test_status_has_the_detail_and_needs_ops_read(self):
        self.assertEqual(self.node.get("/v1/status").status, 401)
        self.assertEqual(self.node.get("/v1/status", token=self.node.token("qa_lead")).status, 403)
        r = self.node.get("/v1/status", token=self.node.token("admin"))
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["node"]["status"], "ready")
        deps = {d["name"]: d for d in r.json()["dependencies"]}
        self.assertTrue(deps["postgres"]["required"])
        self.assertTrue(deps["postgres-filings"]["required"])
        self.assertEqual(deps["postgres-filings"]["state"], "up")
        self.assertFalse(deps["redis"]["required"])
        self.assertEqual(deps["postgres"]["state"], "up")
        self.assertIn("detail", deps["postgres"])
        # Every connection supervisor reports its breaker, with the configured defaults.
        for name, minimum, open_for in (("postgres", 5, 60000), ("postgres-filings", 5, 60000), ("redis", 5, 60000),
                                        ("instanote", 3, 30000)):
            b = deps[name]["breaker"]
            self.assertIn(b["state"], ("closed", "half_open"), b)
            self.assertEqual(b["window"], {"type": "count", "size": 10, "minimum_calls": minimum}, b)
            self.assertEqual(b["open_for_ms"], open_for, b)
            self.assertEqual(b["failure_rate_threshold"], 50, b)
            self.assertEqual(b["half_open_calls"], 3, b)
            self.assertIn("last_transition", b)
        # /readyz shows up or down only.
        ready = {d["name"]: d for d in self.node.get("/readyz").json()["dependencies"]}
        self.assertEqual(set(ready["postgres"]), {"name", "up"})

    def test_unknown_path_is_problem_json_404(self):
        r = self.node.get("/no/such/thing")
        self.assertEqual(r.status, 404)
        self.assertEqual(r.header("content-type"), "application/problem+json")
        self.assertEqual(r.json()["status"], 404)

    def test_wrong_method_is_405_with_allow(self):
        r = self.node.request("DELETE", "/healthz")
        self.assertEqual(r.status, 405)
        self.assertEqual(r.header("allow"), "GET, HEAD")

    def test_body_over_limit_is_413(self):
        token = self.node.token("admin")
        r = self.node.request("POST", "/v1/speakers", raw_body=b"x" * 4096, token=token,
                              headers={"Content-Type": "application/json"})
        self.assertEqual(r.status, 413, r)
        self.assertEqual(r.header("content-type"), "application/problem+json")

    def test_requests_are_logged_one_line_each(self):
        # A query is refused on a route that reads none (400 naming it); the line names the path only.
        self.assertEqual(self.node.get("/healthz?probe=logline").status, 400)
        self.node.wait_until(lambda: "GET /healthz 400" in self.node.log_text(), 5, "no request log line")
        self.assertNotIn("probe=logline", self.node.log_text())


def rss_bytes(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def read_answer(s):
    """Reads one HTTP answer with a Content-Length body from `s`; returns (status, head, body)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        if not chunk:
            return None, data, b""
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        chunk = s.recv(65536)
        if not chunk:
            break
        body += chunk
    return int(head.split(b" ")[1]), head, body


def post_head(length, token=None, expect=False):
    head = (b"POST /v1/speakers HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: " + str(length).encode() + b"\r\n")
    if token:
        head += b"Authorization: Bearer " + token.encode() + b"\r\n"
    if expect:
        head += b"Expect: 100-continue\r\n"
    return head + b"\r\n"


class BodyBudget(unittest.TestCase):
    """Bodies in flight share one node-wide budget, counted from their headers to their answer."""

    def test_past_the_budget_new_bodies_get_503_before_they_are_read(self):
        node = Node(extra_flags=["--gateway.body-limit=600000", "--gateway.body-memory-budget=1000000"])
        try:
            token = node.token("admin")
            # a slow upload holds 600,000 bytes of the budget from its headers on
            holder = socket.create_connection(("127.0.0.1", node.port), timeout=10)
            holder.sendall(post_head(600000, token) + b'{"speaker_id": ')
            # a client that waits for 100-continue is told at once, before it sends anything
            with socket.create_connection(("127.0.0.1", node.port), timeout=10) as s:
                s.sendall(post_head(500000, token, expect=True))
                status, head, body = read_answer(s)
            self.assertEqual(status, 503, head)
            self.assertIn(b"retry-after: 1", head.lower())
            self.assertIn(b"budget", body)
            # one that sends its body anyway gets the same answer, its body read past, not stored
            with socket.create_connection(("127.0.0.1", node.port), timeout=10) as s:
                s.sendall(post_head(500000, token) + b" " * 500000)
                status, head, _ = read_answer(s)
            self.assertEqual(status, 503, head)
            # requests without a body are not affected
            self.assertEqual(node.get("/v1/speakers?limit=1", token=token).status, 200)
            # once the slow upload is gone, its share comes back
            holder.close()

            def accepted():
                with socket.create_connection(("127.0.0.1", node.port), timeout=10) as s:
                    s.sendall(post_head(500000, token, expect=True))
                    status, head, _ = read_answer(s)
                    return status == 100

            node.wait_until(accepted, 10, "the budget was not given back")
        finally:
            node.stop()


class BodyFlood(unittest.TestCase):
    """Issue 21: a flood of bodies must not leave the node holding memory. Tolerance: the node's
    RSS at rest plus 48 MiB while 150 unauthenticated 1 MB bodies arrive (they are never stored),
    and back within 32 MiB of rest after 100 authenticated 1 MB bodies were stored and answered."""

    FLOOD_TOLERANCE = 48 << 20
    AFTER_TOLERANCE = 32 << 20

    def flood(self, node, count, token, concurrency):
        body = b'{"speaker_id": "flood", "client_id": "c", "display_name": "' + b"x" * (1000000 - 60) + b'"}'

        def one(_):
            try:
                with socket.create_connection(("127.0.0.1", node.port), timeout=60) as s:
                    s.sendall(post_head(len(body), token) + body)
                    return read_answer(s)[0]
            except OSError:
                return None

        peak = [0]
        done = threading.Event()

        def watch():
            while not done.is_set():
                peak[0] = max(peak[0], rss_bytes(node.proc.pid))
                done.wait(0.02)

        watcher = threading.Thread(target=watch)
        watcher.start()
        try:
            with concurrent.futures.ThreadPoolExecutor(max_workers=concurrency) as pool:
                statuses = list(pool.map(one, range(count)))
        finally:
            done.set()
            watcher.join()
        return statuses, peak[0]

    def test_rss_returns_to_rest_after_a_body_flood(self):
        # one HTTP thread reads every body: on a loaded machine the default 10 s to read a request
        # could run out for the last of them, which is not what this test is about
        node = Node(extra_flags=["--gateway.read-timeout=120s"])
        try:
            token = node.token("admin")
            for _ in range(20):  # warm the node's own allocations up
                node.get("/v1/speakers?limit=1", token=token)
            rest = rss_bytes(node.proc.pid)
            statuses, peak = self.flood(node, 150, None, 150)
            self.assertEqual(set(statuses), {401}, statuses)
            print(f"\nRSS at rest {rest >> 20} MiB; peak during 150 unauthenticated 1 MB bodies "
                  f"{peak >> 20} MiB", file=sys.stderr)
            self.assertLess(peak, rest + self.FLOOD_TOLERANCE, "unauthenticated bodies were buffered")
            statuses, peak = self.flood(node, 100, token, 50)
            self.assertEqual(set(statuses), {400}, statuses)  # display_name too long: read, then refused
            print(f"RSS peak during 100 authenticated 1 MB bodies {peak >> 20} MiB", file=sys.stderr)
            node.wait_until(lambda: rss_bytes(node.proc.pid) < rest + self.AFTER_TOLERANCE, 15,
                            "RSS did not come back near rest")
            print(f"RSS after {rss_bytes(node.proc.pid) >> 20} MiB", file=sys.stderr)
            self.assertEqual(node.get("/healthz").status, 200)
        finally:
            node.stop()


class Configuration(unittest.TestCase):
    def run_node(self, *flags, env=None):
        e = dict(os.environ)
        e.update(env or {})
        return subprocess.run([SBM, "node"] + list(flags), capture_output=True, text=True, timeout=30, env=e)

    def test_help_lists_every_option(self):
        r = self.run_node("--help")
        self.assertEqual(r.returncode, 0)
        for key in ("gateway.port", "postgres.url", "auth.keys", "SBM_GATEWAY_PORT", "speakers.window-size"):
            self.assertIn(key, r.stdout)

    def test_unknown_key_exits_2_naming_it(self):
        r = self.run_node("--gateway.prot=1")
        self.assertEqual(r.returncode, 2)
        self.assertIn("gateway.prot", r.stderr)

    def test_bad_value_exits_2_naming_it(self):
        r = self.run_node("--gateway.port=eighty", env={"SBM_AUTH_KEYS": "{}"})
        self.assertEqual(r.returncode, 2)
        self.assertIn("gateway.port", r.stderr)

    def test_missing_secret_exits_2_naming_it(self):
        e = {k: v for k, v in os.environ.items() if not k.startswith("SBM_")}
        r = subprocess.run([SBM, "node"], capture_output=True, text=True, timeout=30, env=e)
        self.assertEqual(r.returncode, 2)
        self.assertIn("auth.keys", r.stderr)

    def test_unknown_environment_variable_exits_2(self):
        r = self.run_node(env={"SBM_GATEWAY_PROT": "1"})
        self.assertEqual(r.returncode, 2)
        self.assertIn("SBM_GATEWAY_PROT", r.stderr)


class Shutdown(unittest.TestCase):
    def test_sigterm_and_sigint_stop_with_exit_0(self):
        for sig in (signal.SIGTERM, signal.SIGINT):
            node = Node()
            self.assertEqual(node.get("/readyz").status, 200)
            self.assertEqual(node.stop(sig), 0, node.log_text()[-2000:])


class DatabaseFaults(unittest.TestCase):
    def setUp(self):
        self.servers = PrivateServers()

    def tearDown(self):
        self.servers.destroy()

    def test_node_starts_without_postgres_and_becomes_ready_when_it_comes(self):
        srv = self.servers.env
        url = fresh_database(srv)
        self.servers.run("stop-postgres")
        node = Node(srv=srv, database_url=url, wait_ready=False)
        try:
            # Until the gateway's lanes are up, /readyz is a 503 gateway-restarting problem without
            # the readiness body: wait for the body, then judge it.
            answers = []
            node.wait_until(lambda: answers.append(node.get("/readyz")) or "dependencies" in answers[-1].json(),
                            30, "readyz never answered with its dependencies")
            r = answers[-1]
            self.assertEqual(r.status, 503, r)
            self.assertEqual(r.json()["status"], "not_ready")
            deps = {d["name"]: d for d in r.json()["dependencies"]}
            self.assertFalse(deps["postgres"]["up"])
            self.assertIsNotNone(r.header("retry-after"))
            # the reason (host, port, libpq's text, breaker timings) is for operators only
            for leak in (srv["PG_PORT"], "127.0.0.1", "refused", "connect", "retry"):
                self.assertNotIn(leak, r.body)
            token = node.token("admin")
            detail = node.get("/v1/status", token=token)
            self.assertEqual(detail.status, 200, detail)
            pg = {d["name"]: d for d in detail.json()["dependencies"]}["postgres"]
            self.assertFalse(pg["up"])
            self.assertNotEqual(pg["detail"], "", pg)
            w = node.request("POST", "/v1/speakers", {"speaker_id": "s1", "client_id": "c1"}, token=token)
            self.assertEqual(w.status, 503, w)
            self.assertIsNotNone(w.header("retry-after"))
            self.servers.run("start-postgres")
            node.wait_until(lambda: node.get("/readyz").status == 200, 60, "never became ready")
            w = node.request("POST", "/v1/speakers", {"speaker_id": "s1", "client_id": "c1"}, token=token)
            self.assertEqual(w.status, 201, w)
        finally:
            self.assertEqual(node.stop(), 0)

    def test_database_past_a_newer_binarys_contract_step_refuses_to_start(self):
        srv = self.servers.env
        url = fresh_database(srv)
        node = Node(srv=srv, database_url=url)
        node.stop()
        # A newer SBM's expand step is no reason (e2e.test_upgrade); its contract step is.
        subprocess.run(["psql", "-X", "-q", url, "-c",
                        "INSERT INTO sbm_meta.schema_migrations(schema, version, name, checksum, applied_at, contract) "
                        "VALUES ('speakers', 999, 'from_the_future', 'x', now(), true)"], check=True)
        node.proc = subprocess.Popen([SBM, "node"] + node.flags, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        out, _ = node.proc.communicate(timeout=60)
        self.assertEqual(node.proc.returncode, 3, out)
        self.assertIn("newer", out)
        node.proc = None


if __name__ == "__main__":
    unittest.main()

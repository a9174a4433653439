"""Issue 2 end to end: a node's liveness, readiness, errors, limits, configuration and shutdown."""
import os
import signal
import subprocess
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
        self.assertFalse(deps["redis"]["required"])
        self.assertEqual(deps["postgres"]["state"], "up")
        self.assertIn("detail", deps["postgres"])

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
        self.node.get("/healthz?probe=logline")
        self.node.wait_until(lambda: "GET /healthz 200" in self.node.log_text(), 5, "no request log line")


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
            r = node.get("/readyz")
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

    def test_database_newer_than_the_binary_refuses_to_start(self):
        srv = self.servers.env
        url = fresh_database(srv)
        node = Node(srv=srv, database_url=url)
        node.stop()
        subprocess.run(["psql", "-X", "-q", url, "-c",
                        "INSERT INTO sbm_meta.schema_migrations(schema, version, name, checksum, applied_at) "
                        "VALUES ('speakers', 999, 'from_the_future', 'x', now())"], check=True)
        node.proc = subprocess.Popen([SBM, "node"] + node.flags, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        out, _ = node.proc.communicate(timeout=60)
        self.assertEqual(node.proc.returncode, 3, out)
        self.assertIn("newer", out)
        node.proc = None


if __name__ == "__main__":
    unittest.main()

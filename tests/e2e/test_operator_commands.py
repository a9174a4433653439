"""The operator's commands against real nodes and databases: `sbm status` (a node with InstaNote's
breaker open, refused tokens, an unreachable node, HTTPS, a node that is not ready), `sbm migrate`
on a fresh database, every command's --help, and each command's own SBM_* variables."""
import json
import os
import socket
import subprocess
import tempfile
import threading
import unittest
from unittest import mock

from sbm_node import SBM, Node, free_port, fresh_database, psql, servers_env
from test_security import HttpsNode, make_certificate


def sbm(*args, env=None, token=None):
    """Runs `sbm ARGS` with a clean SBM_* environment plus `env`."""
    e = {k: v for k, v in os.environ.items() if not k.startswith("SBM_")}
    e.update(env or {})
    if token is not None:
        e["SBM_TOKEN"] = token
    return subprocess.run([SBM, *args], capture_output=True, text=True, timeout=60, env=e)


def line_with(text, *words):
    return next((line for line in text.splitlines() if all(w in line for w in words)), None)


class StatusWithAnOpenBreaker(unittest.TestCase):
    """InstaNote points at a port nobody listens on; pulls fail until its breaker opens. The node
    itself stays ready (InstaNote is not required), and it was started with the client commands'
    SBM_TOKEN and SBM_URL in its environment, which it must leave alone."""

    @classmethod
    def setUpClass(cls):
        srv = servers_env()
        dead = f"postgresql://sbm@127.0.0.1:{free_port()}/instanote"
        with mock.patch.dict(os.environ, {"SBM_TOKEN": "not-for-the-node", "SBM_URL": "http://elsewhere:1"}):
            cls.node = Node(srv=dict(srv, INSTANOTE_URL=dead),
                            extra_flags=["--instanote.retries=0", "--instanote.breaker-open-for=10m",
                                         "--instanote.cache-fresh-for=0s"])
        cls.url = f"http://127.0.0.1:{cls.node.port}"
        cls.admin = cls.node.token("admin")
        qa = cls.node.token("qa")

        def instanote_breaker():
            return {d["name"]: d for d in cls.node.get("/v1/status", token=cls.admin).json()["dependencies"]} \
                ["instanote"]["breaker"]

        def open_after_a_pull():
            cls.node.get("/v1/speakers/spk-1/jobs?from=2026-11-01&to=2026-11-02", token=qa)
            return instanote_breaker()["state"] == "open"
        cls.node.wait_until(open_after_a_pull, 60, "InstaNote's breaker never opened")

    @classmethod
    def tearDownClass(cls):
        cls.node.stop()

    def test_the_table_shows_readiness_dependencies_the_open_breaker_and_the_version(self):
        r = sbm("status", "--node", self.url, token=self.admin)
        self.assertEqual(r.returncode, 0, r.stderr + r.stdout)
        out = r.stdout
        self.assertTrue(out.startswith("NODE\n"), out)
        self.assertIsNotNone(line_with(out, "status:", "ready"), out)
        self.assertIsNotNone(line_with(out, "version:", "0."), out)
        self.assertIn("DEPENDENCIES", out)
        self.assertIsNotNone(line_with(out, "postgres", "yes", "up"), out)
        self.assertIn("BREAKERS", out)
        row = line_with(out, "instanote", " open ")
        self.assertIsNotNone(row, out)
        # the time left open (10 minutes configured) and the transition that opened it
        self.assertRegex(row, r" \d+m\d\ds ", out)
        self.assertIn("-> open", row)
        self.assertIsNotNone(line_with(out, "redis", "closed"), out)

    def test_json_is_the_document_the_node_answered(self):
        r = sbm("status", "--node", self.url, "--json", token=self.admin)
        self.assertEqual(r.returncode, 0, r.stderr)
        doc = json.loads(r.stdout)
        self.assertEqual(doc["node"]["status"], "ready")
        self.assertTrue(doc["node"]["version"])
        deps = {d["name"]: d for d in doc["dependencies"]}
        self.assertEqual(deps["instanote"]["breaker"]["state"], "open")
        self.assertGreater(deps["instanote"]["breaker"]["retry_in_ms"], 60000)
        same = self.node.get("/v1/status", token=self.admin).json()
        self.assertEqual(set(doc), set(same), "every section the node has, and no other")

    def test_the_node_url_and_token_come_from_flags_files_or_the_environment(self):
        with tempfile.NamedTemporaryFile("w", suffix=".jwt") as f:
            f.write(self.admin + "\n")
            f.flush()
            r = sbm("status", "--node", self.url, "--token-file", f.name)
            self.assertEqual(r.returncode, 0, r.stderr)
            r = sbm("status", "--json", env={"SBM_URL": self.url + "/", "SBM_TOKEN_FILE": f.name})
            self.assertEqual(r.returncode, 0, r.stderr)
        r = sbm("status", "--token=" + self.admin, "--node", self.url)
        self.assertEqual(r.returncode, 2, "a token on the command line ends up in ps and shell history")
        self.assertIn("--token-file", r.stderr)

    def test_a_refused_token_exits_3(self):
        r = sbm("status", "--node", self.url, token=self.node.token("qa_lead"))
        self.assertEqual(r.returncode, 3, r.stderr)
        self.assertIn("403", r.stderr)
        self.assertEqual(r.stdout, "")
        r = sbm("status", "--node", self.url, token="e30.e30.c2ln")
        self.assertEqual(r.returncode, 3, r.stderr)
        self.assertIn("401", r.stderr)

    def test_an_unreachable_node_exits_1(self):
        r = sbm("status", "--node", f"http://127.0.0.1:{free_port()}", token=self.admin)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("cannot connect", r.stderr)

    def test_bad_usage_exits_2_and_typos_are_named(self):
        for args, env, said in (
                (["status"], {"SBM_TOKEN": "t"}, "SBM_URL"),
                (["status", "--node", self.url], {}, "SBM_TOKEN"),
                (["status", "--node", "ftp://x"], {"SBM_TOKEN": "t"}, "http://"),
                (["status", "--node", self.url, "--jsno"], {"SBM_TOKEN": "t"}, "did you mean 'json'"),
                (["status", "--node", self.url], {"SBM_TOKEN": "t", "SBM_TOKNE": "x"}, "did you mean SBM_TOKEN?"),
                (["status", "--node", self.url], {"SBM_TOKEN": "t", "SBM_JSON": "1"}, "SBM_JSON"),
                (["migrate"], {"SBM_POSTGRES_ULR": "x"}, "did you mean SBM_POSTGRES_URL?"),
                (["node"], {"SBM_TOKNE": "x"}, "did you mean SBM_TOKEN?")):
            r = sbm(*args, env=env)
            self.assertEqual(r.returncode, 2, (args, env, r.stderr))
            self.assertIn(said, r.stderr, (args, env))


class StatusOverHttpsOfANodeThatIsNotReady(unittest.TestCase):
    """An HTTPS node whose PostgreSQL does not answer: the certificate is checked, and a status
    that says "not ready" exits 1 with the table printed."""

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="sbm-tls.")
        cls.cert, key = make_certificate(cls.dir)
        cls.node = HttpsNode(cls.cert, database_url=f"postgresql://sbm@127.0.0.1:{free_port()}/none",
                             wait_ready=False,
                             extra_flags=[f"--gateway.tls-cert-file={cls.cert}", f"--gateway.tls-key-file={key}"])

    @classmethod
    def tearDownClass(cls):
        cls.node.stop()

    def test_not_ready_exits_1_with_the_reason_shown(self):
        token = self.node.token("admin")
        for host in ("127.0.0.1", "localhost"):
            r = sbm("status", "--node", f"https://{host}:{self.node.port}", "--cacert", self.cert, token=token)
            self.assertEqual(r.returncode, 1, r.stderr)
            self.assertIsNotNone(line_with(r.stdout, "status:", "not_ready"), r.stdout)
            self.assertIsNotNone(line_with(r.stdout, "postgres", "yes", "no"), r.stdout)

    def test_an_unknown_certificate_is_refused(self):
        r = sbm("status", "--node", f"https://127.0.0.1:{self.node.port}", token=self.node.token("admin"))
        self.assertEqual(r.returncode, 1)
        self.assertIn("not trusted", r.stderr)
        self.assertEqual(r.stdout, "")
        r = sbm("status", "--node", f"http://127.0.0.1:{self.node.port}", "--timeout", "3s",
                token=self.node.token("admin"))
        self.assertEqual(r.returncode, 1, "plain HTTP to an HTTPS node gets no status")


class FakeNode:
    """A socket that answers every connection with `answer` (bytes, or None to say nothing), so the
    client's framing, caps and deadline meet answers a real node would not give."""

    def __init__(self, answer):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.answer = answer
        self.held = []
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            conn.recv(65536)
            if self.answer is None:
                self.held.append(conn)  # keeps the connection open and silent
                continue
            conn.sendall(self.answer)
            conn.close()

    def close(self):
        self.sock.close()
        for c in self.held:
            c.close()


class StatusClientAgainstOddAnswers(unittest.TestCase):
    DOC = json.dumps({"node": {"status": "ready", "ready": True}, "queues": [{"name": "q", "depth": 1, "bound": 8}]})

    def status(self, answer, *args):
        fake = FakeNode(answer)
        try:
            return sbm("status", "--node", f"http://127.0.0.1:{fake.port}", *args, token="t")
        finally:
            fake.close()

    def test_a_chunked_answer_is_read_whole_and_unknown_sections_are_shown(self):
        body = self.DOC.encode()
        chunks = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (body[:10], body[10:]))
        r = self.status(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks + b"0\r\n\r\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("QUEUES", r.stdout)
        self.assertIsNotNone(line_with(r.stdout, "q", "1", "8"), r.stdout)

    def test_an_answer_past_the_cap_is_refused_before_it_is_read(self):
        r = self.status(b"HTTP/1.1 200 OK\r\nContent-Length: 999999999\r\n\r\n{")
        self.assertEqual(r.returncode, 1)
        self.assertIn("larger than", r.stderr)

    def test_a_silent_node_is_given_up_at_the_deadline(self):
        r = self.status(None, "--timeout", "1s")
        self.assertEqual(r.returncode, 1)
        self.assertIn("timed out", r.stderr)

    def test_an_answer_that_is_not_a_status_document_exits_1(self):
        for answer in (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}", b"SSH-2.0-OpenSSH\r\n",
                       b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n"):
            r = self.status(answer)
            self.assertEqual(r.returncode, 1, (answer, r.stderr))
            self.assertEqual(r.stdout, "")


class Migrate(unittest.TestCase):
    def test_show_then_migrate_a_fresh_database(self):
        url = fresh_database(servers_env())
        r = sbm("migrate", "--show", f"--postgres.url={url}")
        self.assertEqual(r.returncode, 0, r.stderr)
        pending = [line for line in r.stdout.splitlines() if " pending " in line]
        self.assertTrue(line_with(r.stdout, "speakers/001_", "pending"), r.stdout)
        self.assertRegex(r.stdout, r"\n0 applied, \d+ pending\n$")
        count = int(r.stdout.rsplit(", ", 1)[1].split()[0])
        self.assertEqual(len(pending), count, r.stdout)
        self.assertEqual(psql(url, "SELECT count(*) FROM information_schema.schemata WHERE schema_name = 'sbm_meta'"),
                         "0", "--show changes nothing")

        r = sbm("migrate", env={"SBM_POSTGRES_URL": url, "SBM_TOKEN": "another command's"})
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(f"{count} applied by this run", r.stdout)
        self.assertIsNotNone(line_with(r.stdout, "applied speakers/001_"), r.stdout)

        r = sbm("migrate", "--dry-run", f"--postgres.url={url}")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(r.stdout.endswith(f"\n{count} applied, 0 pending\n"), r.stdout)
        self.assertRegex(line_with(r.stdout, "speakers/001_"), r"applied +20\d\d-\d\d-\d\dT")
        r = sbm("migrate", f"--postgres.url={url}")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("0 applied by this run", r.stdout)

        # A newer SBM's expand step: this SBM runs beside it and says so.
        psql(url, "INSERT INTO sbm_meta.schema_migrations (schema, version, name, checksum) "
                  "VALUES ('speakers', 999, 'from_the_future', 'x')")
        r = sbm("migrate", f"--postgres.url={url}")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("the database also holds speakers/999_from_the_future of a newer SBM", r.stdout)
        # Its contract step: nothing is applied, exit 3 as the node's.
        psql(url, "INSERT INTO sbm_meta.schema_migrations (schema, version, name, checksum, contract) "
                  "VALUES ('speakers', 1000, 'drop_the_past', 'x', true)")
        r = sbm("migrate", f"--postgres.url={url}")
        self.assertEqual(r.returncode, 3, r.stderr)
        self.assertIn("newer SBM", r.stderr)
        r = sbm("migrate", "--show", f"--postgres.url={url}")
        self.assertEqual(r.returncode, 3, r.stderr)
        self.assertIsNotNone(line_with(r.stdout, "speakers/999_from_the_future", "unknown to this SBM"), r.stdout)
        self.assertIsNotNone(line_with(r.stdout, "speakers/1000_drop_the_past", "unknown to this SBM"), r.stdout)

    def test_an_unreachable_database_exits_1(self):
        r = sbm("migrate", f"--postgres.url=postgresql://sbm@127.0.0.1:{free_port()}/none")
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("database failure", r.stderr)


class Help(unittest.TestCase):
    def test_every_command_has_help_with_its_exit_codes(self):
        top = sbm("--help")
        self.assertEqual(top.returncode, 0)
        for command in ("node", "status", "migrate", "token", "seed-instanote", "eval-corrections"):
            self.assertIn("  " + command, top.stdout)
            r = sbm(*command.split(), "--help")
            self.assertEqual(r.returncode, 0, (command, r.stderr))
            self.assertIn("usage: sbm " + command, r.stdout)
            self.assertIn("exit codes:", r.stdout, command)
        self.assertEqual(sbm("nonsense").returncode, 2)
        self.assertEqual(sbm("--version").stdout.split()[0], "sbm")


if __name__ == "__main__":
    unittest.main()

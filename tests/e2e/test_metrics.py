"""Issue 22 item 1 end to end: GET /metrics on a busy node passes `promtool check metrics`, its
counters move with real traffic (a request counted under its route template, an activation, a
breaker that opened shows state open), access is open or needs ops.read as configured, and
GET /v1/status lists every bounded queue against its bound."""
import re
import subprocess
import unittest
import urllib.parse
import uuid

from sbm_node import Node, servers_env


def samples(text):
    """{(name, frozenset(labels)): value} of an exposition; label values here have no quotes."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.fullmatch(r'([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)', line)
        assert m, f"not an exposition line: {line!r}"
        labels = frozenset(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
        out[(m.group(1), labels)] = float(m.group(3))
    return out


def value(text, name, **labels):
    return samples(text).get((name, frozenset(labels.items())), 0.0)


class OpenMetrics(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        srv = servers_env()
        # InstaNote's database does not exist: every pull fails, so its breaker opens.
        missing = srv["PG_URL"].rsplit("/", 1)[0] + "/e2e_absent_" + uuid.uuid4().hex[:8]
        cls.node = Node(srv=dict(srv, INSTANOTE_URL=missing),
                        extra_flags=["--metrics.access=open", "--postgres.max-queued=77",
                                     "--instanote.retries=0", "--instanote.breaker-open-for=10m",
                                     "--instanote.cache-fresh-for=0s"])
        cls.lead = cls.node.token("qa_lead")
        cls.admin = cls.node.token("admin")

    @classmethod
    def tearDownClass(cls):
        cls.node.stop()

    def scrape(self):
        r = self.node.get("/metrics")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header("content-type"), "text/plain; version=0.0.4; charset=utf-8")
        return r.body

    def test_a_busy_node_passes_promtool_and_its_counters_move(self):
        node = self.node
        speaker = "spk-" + uuid.uuid4().hex[:8]
        before = self.scrape()
        r = node.request("POST", "/v1/speakers", {"speaker_id": speaker, "client_id": "c1",
                                                  "display_name": "Dr. M"}, token=self.lead)
        self.assertEqual(r.status, 201, r)
        for _ in range(3):
            self.assertEqual(node.get(f"/v1/speakers/{speaker}", token=self.lead).status, 200)
        self.assertEqual(node.get("/v1/no-such-thing").status, 404)
        query = urllib.parse.urlencode({"from": "2026-11-01", "to": "2026-11-02"})
        # Pulls fail against the missing database until InstaNote's breaker opens.
        node.wait_until(lambda: node.get(f"/v1/speakers/{speaker}/jobs?{query}", token=self.lead).status == 503
                        and value(self.scrape(), "sbm_breaker_state", breaker="instanote", state="open") == 1,
                        30, "InstaNote's breaker never opened")
        after = self.scrape()

        check = subprocess.run(["promtool", "check", "metrics"], input=after, capture_output=True, text=True)
        self.assertEqual(check.returncode, 0, check.stdout + check.stderr)

        get_speaker = dict(route="/v1/speakers/{id}", method="GET", status="200")
        self.assertEqual(value(after, "sbm_http_requests_total", **get_speaker)
                         - value(before, "sbm_http_requests_total", **get_speaker), 3)
        self.assertGreaterEqual(value(after, "sbm_http_requests_total", route="unrouted", method="GET",
                                      status="404"), 1)
        self.assertGreaterEqual(value(after, "sbm_http_request_duration_seconds_count",
                                      route="/v1/speakers/{id}", method="GET"), 3)
        self.assertEqual(value(after, "sbm_http_request_duration_seconds_bucket", route="/v1/speakers/{id}",
                               method="GET", le="+Inf"),
                         value(after, "sbm_http_request_duration_seconds_count", route="/v1/speakers/{id}",
                               method="GET"))
        self.assertGreater(value(after, "sbm_speaker_activations_total"),
                           value(before, "sbm_speaker_activations_total"))
        self.assertGreaterEqual(value(after, "sbm_speakers_active"), 1)
        self.assertEqual(value(after, "sbm_breaker_state", breaker="instanote", state="closed"), 0)
        self.assertGreaterEqual(value(after, "sbm_breaker_transitions_total", breaker="instanote", to="open"), 1)
        self.assertEqual(value(after, "sbm_breaker_state", breaker="postgres", state="closed"), 1)
        self.assertEqual(value(after, "sbm_queue_bound", queue="postgres.queued"), 77)
        self.assertGreaterEqual(value(after, "sbm_pool_connections", pool="postgres"), 1)
        # The filings' own connections (reports.filing-connections, 2 by default), breaker and queue.
        self.assertEqual(value(after, "sbm_pool_connections", pool="postgres-filings"), 2)
        self.assertEqual(value(after, "sbm_breaker_state", breaker="postgres-filings", state="closed"), 1)
        self.assertEqual(value(after, "sbm_queue_bound", queue="postgres-filings.queued"), 77)
        self.assertEqual(value(after, "sbm_build_info", version="0.1.0"), 1)
        # Lags and index size are gauges every scrape carries (0 on a node that keeps up).
        names = {name for name, _ in samples(after)}
        for name in ("sbm_outbox_lag_seconds", "sbm_report_saga_lag_seconds", "sbm_pattern_index_patterns",
                     "sbm_pattern_search_duration_seconds_count", "sbm_corrections_total"):
            self.assertIn(name, names)
        self.assertIn(("sbm_outbox_lag_seconds", frozenset({("target", "event bus")})), samples(after))
        for component in ("postgres", "postgres-filings", "instanote", "redis", "speakers", "pattern-index",
                          "corrections", "reports", "verification-sessions"):
            self.assertEqual(value(after, "sbm_scrape_component_up", component=component), 1, component)

    def test_status_lists_every_bounded_queue_against_its_bound(self):
        r = self.node.get("/v1/status", token=self.admin)
        self.assertEqual(r.status, 200, r)
        queues = {q["name"]: q for q in r.json()["queues"]}
        for name, setting in (("postgres.queued", "postgres.max-queued"),
                              ("postgres-filings.queued", "postgres.max-queued"),
                              ("speakers.queued", "speakers.max-queued"),
                              ("reports.queued", "reports.max-queued"),
                              ("reports.running-sagas", "reports.max-running-sagas"),
                              ("reports.waiting-sagas", "reports.max-waiting-sagas"),
                              ("drafts.in-flight", "drafts.max-in-flight"),
                              ("verification.active-sessions", "verification.max-active-sessions")):
            self.assertIn(name, queues)
            self.assertEqual(queues[name]["setting"], setting)
            self.assertGreaterEqual(queues[name]["bound"], 1)
            self.assertLessEqual(queues[name]["depth"], queues[name]["bound"])
        self.assertEqual(queues["postgres.queued"]["bound"], 77)
        self.assertNotIn("queues_missing", r.json())


class TokenMetrics(unittest.TestCase):
    """The default, metrics.access = token: ops.read like GET /v1/status."""

    def test_metrics_need_ops_read(self):
        node = Node()
        try:
            self.assertEqual(node.get("/metrics").status, 401)
            self.assertEqual(node.get("/metrics", token=node.token("qa_lead")).status, 403)
            r = node.get("/metrics", token=node.token("admin"))
            self.assertEqual(r.status, 200, r)
            self.assertEqual(value(r.body, "sbm_http_requests_total", route="/metrics", method="GET",
                                   status="401"), 1)
        finally:
            node.stop()


if __name__ == "__main__":
    unittest.main()

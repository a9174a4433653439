"""The QA console (issue 22 item 4) against a real node: the node serves the built files at
/console/ without a token (content types, cache headers, the page's security headers, HEAD, 405,
no path out of the directory), a console directory named on purpose must be usable (exit 2), and
the QA flow runs in Debian's Chromium through Playwright at a desktop and a phone size
(console/e2e/qa-flow.e2e.ts), against seeded InstaNote drafts, rectified reports and quality
samples. Screenshots go to SBMTEST_SCREENSHOTS (default build/console-e2e/screens)."""
import os
import re
import shutil
import subprocess
import tempfile
import unittest

from sbm_node import SBM, Node, free_port, servers_env
from test_sessions import FROM, TO, file_rectified_reports, rows, seed

HERE = os.path.dirname(os.path.abspath(__file__))
CONSOLE_SRC = os.path.normpath(os.path.join(HERE, "../../console"))
CONSOLE_DIR = os.environ.get("SBMTEST_CONSOLE_DIR",
                             os.path.normpath(os.path.join(os.path.dirname(SBM), "../console")))
PLAYWRIGHT = os.path.join(CONSOLE_SRC, "node_modules/.bin/playwright")


class Console(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not os.path.isfile(os.path.join(CONSOLE_DIR, "index.html")):
            raise AssertionError(f"the console is not built in {CONSOLE_DIR}: run scripts/build")
        srv = servers_env()
        cls.instanote_url = seed(srv)
        cls.node = Node(srv=dict(srv, INSTANOTE_URL=cls.instanote_url),
                        extra_flags=["--gateway.rate-limit=0", "--reports.relay-interval=200ms",
                                     "--speakers.window-size=5", f"--gateway.console-dir={CONSOLE_DIR}"])
        cls.lead = cls.node.token("qa_lead", sub="console-lead")
        cls.qa = cls.node.token("qa", sub="console-qa")
        cls.speakers = rows(cls.instanote_url,
                            "SELECT speaker_id || chr(31) || client_id FROM seed_speakers ORDER BY speaker_id")
        for n, (speaker, client) in enumerate(cls.speakers):
            r = cls.node.request("POST", "/v1/speakers", {"speaker_id": speaker, "client_id": client,
                                                          "display_name": f"Dr. Console {n + 1}"},
                                 token=cls.lead)
            assert r.status == 201, r
            file_rectified_reports(cls.node, cls.instanote_url, cls.qa, speaker, client)
            # A trend to draw: quality over a dozen verified jobs, worse then better.
            for i, rate in enumerate([9.0, 11.5, 7.25, 6.0, 4.5, 5.5, 3.0, 2.5, 1.75, 2.25, 1.0, 0.5]):
                r = cls.node.request("POST", f"/v1/speakers/{speaker}/quality-samples",
                                     {"job_id": f"trend-{i}", "errors_per_100_words": rate + n},
                                     token=cls.qa)
                assert r.status == 201, r

    @classmethod
    def tearDownClass(cls):
        cls.node.stop()

    def get(self, path, method="GET"):
        return self.node.request(method, path)

    def test_the_node_serves_the_built_console_without_a_token(self):
        index = self.get("/console/")
        self.assertEqual(index.status, 200, index)
        self.assertEqual(index.header("content-type"), "text/html; charset=utf-8")
        self.assertEqual(index.header("cache-control"), "no-cache")
        self.assertEqual(index.header("x-content-type-options"), "nosniff")
        self.assertIn("default-src 'self'", index.header("content-security-policy"))
        self.assertIn("frame-ancestors 'none'", index.header("content-security-policy"))
        self.assertIn('<div id="root">', index.body)
        with open(os.path.join(CONSOLE_DIR, "index.html")) as f:
            self.assertEqual(index.body, f.read())
        self.assertEqual(self.get("/console").body, index.body)
        self.assertEqual(self.get("/console/index.html").body, index.body)

        script = re.search(r'src="(/console/assets/[^"]+\.js)"', index.body).group(1)
        style = re.search(r'href="(/console/assets/[^"]+\.css)"', index.body).group(1)
        js = self.get(script)
        self.assertEqual(js.status, 200)
        self.assertEqual(js.header("content-type"), "text/javascript; charset=utf-8")
        self.assertEqual(js.header("cache-control"), "public, max-age=31536000, immutable")
        self.assertIsNone(js.header("content-security-policy"))
        self.assertEqual(self.get(style).header("content-type"), "text/css; charset=utf-8")
        head = self.get(script, method="HEAD")
        self.assertEqual(head.status, 200)
        self.assertEqual(head.body, "")
        self.assertEqual(int(head.header("content-length")), len(js.body.encode()))

    def test_nothing_outside_the_console_directory_can_be_named(self):
        for path in ("/console/../../../etc/passwd", "/console/%2e%2e/%2e%2e/etc/passwd",
                     "/console/assets/..%2f..%2f..%2fetc%2fpasswd", "/console/..%5c..%5cetc%5cpasswd",
                     "/console/missing.js", "/console/assets/", "/console/%00index.html"):
            r = self.get(path)
            self.assertEqual(r.status, 404, (path, r))
            self.assertEqual(r.header("content-type"), "application/problem+json", path)
            self.assertNotIn("root:", r.body)
        self.assertEqual(self.get("/consoles").status, 404)

    def test_only_get_and_head(self):
        for method in ("POST", "PUT", "DELETE"):
            r = self.node.request(method, "/console/index.html")
            self.assertEqual(r.status, 405, (method, r))
            self.assertEqual(r.header("allow"), "GET, HEAD")

    def test_a_console_directory_named_on_purpose_must_be_usable(self):
        missing = tempfile.mkdtemp(prefix="sbm-no-console.")
        try:
            flags = [f for f in self.node.flags if not f.startswith(("--gateway.port=", "--gateway.console-dir="))]
            run = subprocess.run([SBM, "node", *flags, f"--gateway.port={free_port()}",
                                  f"--gateway.console-dir={missing}"],
                                 capture_output=True, text=True, timeout=60)
            self.assertEqual(run.returncode, 2, run.stderr[-2000:])
            self.assertIn("gateway.console-dir", run.stdout + run.stderr)
            self.assertIn("index.html", run.stdout + run.stderr)
        finally:
            shutil.rmtree(missing, ignore_errors=True)

    def test_the_qa_flow_in_chromium_at_desktop_and_phone_sizes(self):
        if not os.access(PLAYWRIGHT, os.X_OK):
            self.fail(f"{PLAYWRIGHT} is missing: scripts/build installs the console's npm packages")
        shots = os.environ.get("SBMTEST_SCREENSHOTS",
                               os.path.normpath(os.path.join(CONSOLE_DIR, "../console-e2e/screens")))
        os.makedirs(shots, exist_ok=True)
        out = tempfile.mkdtemp(prefix="sbm-playwright.")
        env = dict(os.environ, PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD="1", CI="1",
                   SBM_E2E_URL=f"http://127.0.0.1:{self.node.port}",
                   SBM_E2E_QA_TOKEN=self.qa, SBM_E2E_LEAD_TOKEN=self.lead,
                   SBM_E2E_SPEAKERS=",".join(s for s, _ in self.speakers[:2]),
                   SBM_E2E_FROM=FROM, SBM_E2E_TO=TO, SBM_E2E_SCREENSHOTS=shots, SBM_E2E_OUTPUT=out)
        try:
            run = subprocess.run([PLAYWRIGHT, "test"], cwd=CONSOLE_SRC, env=env, capture_output=True,
                                 text=True, timeout=840)
        finally:
            shutil.rmtree(out, ignore_errors=True)
        print(run.stdout[-6000:])
        self.assertEqual(run.returncode, 0, run.stdout[-8000:] + run.stderr[-4000:])
        self.assertRegex(run.stdout, r"\b\d+ passed\b")
        self.assertNotRegex(run.stdout, r"\b\d+ (failed|skipped|flaky)\b")


if __name__ == "__main__":
    unittest.main()

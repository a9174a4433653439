"""GET /v1/speakers/{id}/history (issue 16, seed 8.2): the speaker's state, bucket changes,
reports and InstaNote jobs gathered from their sources at once, degrading instead of failing whole.
The servers are really stopped: InstaNote's PostgreSQL and the Redis of the cache live on a server
pair of this test's own (scripts/servers), SBM's own PostgreSQL on the shared one."""
import unittest

from sbm_node import SBM, Node, PrivateServers, fresh_database, psql, servers_env
import subprocess

RANGE = "from=2026-11-01&to=2026-11-04"


class SpeakerHistory(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        shared = servers_env()
        cls.own = PrivateServers()
        try:
            cls.instanote_url = fresh_database(cls.own.env)
            seeded = subprocess.run([SBM, "seed-instanote", "--url", cls.instanote_url, "--speakers", "2",
                                     "--days", "3", "--start", "2026-11-01", "--seed", "8"],
                                    capture_output=True, text=True)
            assert seeded.returncode == 0, seeded.stderr
            cls.client = psql(cls.instanote_url, "SELECT client_id FROM seed_speakers WHERE speaker_id = 'spk-001'")
            srv = dict(shared, REDIS_PORT=cls.own.env["REDIS_PORT"], INSTANOTE_URL=cls.instanote_url)
            # Every pull asks InstaNote (no fresh-for window), so a stopped InstaNote shows at once.
            cls.node = Node(srv=srv, extra_flags=["--instanote.cache-fresh-for=0s",
                                                  "--gateway.request-timeout=5s",
                                                  "--instanote.breaker-open-for=2s", "--redis.breaker-open-for=2s"])
        except Exception:
            cls.own.destroy()
            raise
        cls.qa = cls.node.token("qa")
        lead = cls.node.token("qa_lead")
        r = cls.node.request("POST", "/v1/speakers", {"speaker_id": "spk-001", "client_id": cls.client,
                                                      "display_name": "Dr. One"}, token=lead)
        assert r.status == 201, r
        job = psql(cls.instanote_url, "SELECT job_id FROM draft_jobs WHERE speaker_id = 'spk-001' "
                                      "ORDER BY created_at LIMIT 1")
        r = cls.node.request("POST", "/v1/error-reports", {
            "speaker_id": "spk-001", "client_id": cls.client, "job_id": job,
            "original_text": "hyper tension", "corrected_text": "hypertension",
            "error_categories": ["medical_terminology"], "audio_quality": "good",
            "speaker_clarity": "clear", "background_noise": "low", "number_of_speakers": 1,
            "overlapping_speech": False, "requires_specialized_knowledge": False,
            "additional_notes": "not part of the history"}, token=cls.qa)
        assert r.status == 201, r
        cls.report_id = r.json()["id"]

    @classmethod
    def tearDownClass(cls):
        cls.node.stop()
        cls.own.destroy()

    def history(self, query=RANGE, token=None):
        return self.node.get(f"/v1/speakers/spk-001/history?{query}", token=token or self.qa)

    def statuses(self, body):
        return {name: s["status"] for name, s in body["sources"].items()}

    def test_degrades_as_instanote_and_redis_stop(self):
        # Full: every source answered, the jobs from InstaNote itself.
        full = self.history()
        self.assertEqual(full.status, 200, full)
        body = full.json()
        self.assertTrue(body["complete"], body["sources"])
        self.assertEqual((body["missing"], body["stale"]), ([], []))
        self.assertEqual(self.statuses(body), {"speaker": "ok", "bucket_changes": "ok", "reports": "ok",
                                               "jobs": "ok"})
        self.assertEqual(body["sources"]["jobs"]["origin"], "instanote")
        self.assertEqual(body["speaker"]["client_id"], self.client)
        self.assertEqual([c["kind"] for c in body["bucket_changes"]], [])  # registered today, outside the range
        self.assertEqual([r["id"] for r in body["reports"]], [])  # filed today, outside the range
        expected = psql(self.instanote_url,
                        "SELECT string_agg(job_id, ',') FROM (SELECT job_id FROM draft_jobs WHERE speaker_id = "
                        "'spk-001' AND created_at >= '2026-11-01' AND created_at < '2026-11-04' "
                        "ORDER BY created_at DESC, job_id DESC LIMIT 10) j")
        self.assertEqual(",".join(j["job_id"] for j in body["jobs"]), expected)
        # The default range is the last 30 days, which holds today's registration and report; the
        # report's notes are not shown (reading them is audited per report).
        recent = self.history(query="")
        self.assertEqual(recent.status, 200, recent)
        self.assertEqual([c["kind"] for c in recent.json()["bucket_changes"]], ["register"])
        self.assertEqual([r["id"] for r in recent.json()["reports"]], [self.report_id])
        self.assertNotIn("not part of the history", recent.body)

        # InstaNote stopped: the pull asked before is answered stale from the Redis cache ...
        self.own.run("stop-postgres")
        try:
            stale = self.history()
            self.assertEqual(stale.status, 200, stale)
            body = stale.json()
            self.assertFalse(body["complete"])
            self.assertEqual((body["missing"], body["stale"]), ([], ["jobs"]))
            jobs = body["sources"]["jobs"]
            self.assertEqual((jobs["status"], jobs["origin"]), ("stale", "cache"))
            self.assertTrue(jobs["stale_since"].startswith("20") and jobs["reason"], jobs)
            self.assertEqual(",".join(j["job_id"] for j in body["jobs"]), expected)
            self.assertIn("110", stale.header("warning") or "")
            self.assertEqual(body["speaker"]["speaker_id"], "spk-001")

            # ... one never asked before has nothing cached: local sources only, jobs named missing.
            local = self.history(query=RANGE + "&max_jobs=3")
            self.assertEqual(local.status, 200, local)
            body = local.json()
            self.assertEqual(body["missing"], ["jobs"])
            self.assertEqual(body["sources"]["jobs"]["reason"], "unavailable")
            self.assertIsNone(body["jobs"])
            self.assertEqual(self.statuses(body)["reports"], "ok")
            self.assertIsNotNone(body["bucket_changes"])

            # Redis stopped too: the cached copy is gone with it, so the jobs are missing as well,
            # and the local sources still answer.
            self.own.run("stop-redis")
            no_cache = self.history()
            self.assertEqual(no_cache.status, 200, no_cache)
            body = no_cache.json()
            self.assertEqual(body["missing"], ["jobs"])
            self.assertEqual(self.statuses(body), {"speaker": "ok", "bucket_changes": "ok", "reports": "ok",
                                                   "jobs": "missing"})
        finally:
            self.own.run("start-postgres")
            self.own.run("start-redis")

        # InstaNote back, Redis still stopped: every pull comes from InstaNote, complete again.
        self.own.run("stop-redis")
        try:
            self.node.wait_until(lambda: self.history().json().get("complete") is True, 60,
                                 "the history never became complete again with InstaNote back")
            body = self.history().json()
            self.assertEqual(body["sources"]["jobs"]["origin"], "instanote")
            self.assertEqual(",".join(j["job_id"] for j in body["jobs"]), expected)
        finally:
            self.own.run("start-redis")

    def test_a_scoped_reader_of_another_client_gets_404(self):
        lead = self.node.token("admin", sub="admin-h")
        r = self.node.request("POST", "/v1/users", {"id": "hospital-qa", "role": "qa",
                                                    "client_ids": ["another-client"]}, token=lead)
        self.assertEqual(r.status, 201, r)
        scoped = self.node.token("qa", sub="hospital-qa")
        hidden = self.history(token=scoped)
        self.assertEqual(hidden.status, 404, hidden)
        unknown = self.node.get(f"/v1/speakers/nobody/history?{RANGE}", token=self.qa)
        self.assertEqual(unknown.status, 404, unknown)
        self.assertEqual(hidden.json()["detail"].replace("spk-001", "X"),
                         unknown.json()["detail"].replace("nobody", "X"))

    def test_bad_queries_name_the_parameter(self):
        for query, field in [("from=2026-11-04&to=2026-11-01", "to"), ("from=soon", "from"),
                             ("max_jobs=0", "max_jobs"), ("limit=101", "limit"), ("jobs=1", "jobs")]:
            r = self.history(query=query)
            self.assertEqual(r.status, 400, (query, r))
            self.assertEqual(r.header("content-type"), "application/problem+json")
            self.assertEqual(r.json().get("field"), field, (query, r))
        self.assertEqual(self.node.get(f"/v1/speakers/spk-001/history?{RANGE}").status, 401)
        service = self.node.token(service="drafting", permissions=["speakers.read"])
        self.assertIn(self.history(token=service).status, (401, 403))


class SpeakerHistoryWithoutPostgres(unittest.TestCase):
    """SBM's own PostgreSQL stopped: the local sources that read it are named missing and the
    InstaNote jobs still answer (seed 8.2's last fallback). Admission needs the user's standing,
    which the gateway remembers for gateway.user-cache-ttl: long here, and warmed on every lane
    before the stop, so the requests are admitted and show the history's own degradation."""

    def test_local_sources_missing_jobs_still_answer(self):
        shared = servers_env()
        own = PrivateServers()
        node = None
        try:
            instanote_url = fresh_database(shared)
            seeded = subprocess.run([SBM, "seed-instanote", "--url", instanote_url, "--speakers", "2",
                                     "--days", "3", "--start", "2026-11-01", "--seed", "9"],
                                    capture_output=True, text=True)
            self.assertEqual(seeded.returncode, 0, seeded.stderr)
            client = psql(instanote_url, "SELECT client_id FROM seed_speakers WHERE speaker_id = 'spk-001'")
            node = Node(srv=dict(shared, INSTANOTE_URL=instanote_url), database_url=fresh_database(own.env),
                        extra_flags=["--instanote.cache-fresh-for=0s", "--gateway.request-timeout=5s",
                                     "--gateway.lanes=2", "--gateway.user-cache-ttl=10m"])
            qa = node.token("qa")
            r = node.request("POST", "/v1/speakers", {"speaker_id": "spk-001", "client_id": client},
                             token=node.token("qa_lead"))
            self.assertEqual(r.status, 201, r)
            for _ in range(4):  # every lane remembers the qa user's standing
                full = node.get(f"/v1/speakers/spk-001/history?{RANGE}", token=qa)
                self.assertEqual(full.status, 200, full)
                self.assertTrue(full.json()["complete"], full.json()["sources"])

            own.run("stop-postgres")
            try:
                degraded = node.get(f"/v1/speakers/spk-001/history?{RANGE}", token=qa)
                self.assertEqual(degraded.status, 200, degraded)
                body = degraded.json()
                self.assertFalse(body["complete"])
                self.assertIn("reports", body["missing"])
                self.assertIn("bucket_changes", body["missing"])
                self.assertIsNone(body["reports"])
                self.assertEqual(body["sources"]["reports"]["reason"], "unavailable")
                jobs = body["sources"]["jobs"]
                self.assertEqual((jobs["status"], jobs["origin"]), ("ok", "instanote"), jobs)
                expected = int(psql(instanote_url, "SELECT least(10, count(*)) FROM draft_jobs WHERE speaker_id = "
                                                   "'spk-001' AND created_at >= '2026-11-01' AND created_at < '2026-11-04'"))
                self.assertGreater(expected, 0)
                self.assertEqual(len(body["jobs"]), expected)
                self.assertNotIn("jobs", body["missing"])
            finally:
                own.run("start-postgres")
            node.wait_until(lambda: node.get(f"/v1/speakers/spk-001/history?{RANGE}", token=qa).json()
                            .get("complete") is True, 60, "the history never became complete again")
        finally:
            if node:
                node.stop()
            own.destroy()


if __name__ == "__main__":
    unittest.main()

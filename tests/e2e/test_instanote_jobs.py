"""Issue 16 end to end, the way it will be checked: seed an InstaNote database with
`sbm seed-instanote`, start a node on it, pull a speaker's jobs twice through the gateway and see
the second answer come from the Redis cache (read with redis-cli, encrypted)."""
import os
import random
import subprocess
import unittest
import urllib.parse

from sbm_node import SBM, Node, fresh_database, psql, servers_env


class InstanoteJobs(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        srv = servers_env()
        cls.instanote_url = fresh_database(srv)
        seeded = subprocess.run([SBM, "seed-instanote", "--url", cls.instanote_url, "--speakers", "3",
                                 "--days", "5", "--start", "2026-11-01", "--seed", "16"],
                                capture_output=True, text=True)
        assert seeded.returncode == 0, seeded.stderr
        again = subprocess.run([SBM, "seed-instanote", "--url", cls.instanote_url], capture_output=True,
                               text=True)
        assert again.returncode == 4, (again.returncode, again.stderr)
        cls.srv = dict(srv, INSTANOTE_URL=cls.instanote_url)
        cls.node = Node(srv=cls.srv, extra_flags=["--instanote.cache-fresh-for=1h"])
        cls.qa = cls.node.token("qa")

    @classmethod
    def tearDownClass(cls):
        cls.node.stop()

    def range(self):
        # A range of this run only: the shared Redis keeps other runs' cached pulls for an hour.
        ms = random.randint(0, 999)
        return f"2026-11-01T00:00:00.{ms:03d}Z", "2026-11-06"

    def jobs(self, speaker, query, token=None):
        return self.node.get(f"/v1/speakers/{speaker}/jobs?{urllib.parse.urlencode(query)}",
                             token=token or self.qa)

    def redis(self, *args):
        return subprocess.run(["redis-cli", "-p", self.srv["REDIS_PORT"], "--raw"] + list(args),
                              check=True, capture_output=True, text=True).stdout

    def test_second_pull_comes_from_the_cache(self):
        start, end = self.range()
        query = {"from": start, "to": end, "max_jobs": 4}
        first = self.jobs("spk-001", query)
        self.assertEqual(first.status, 200, first)
        body = first.json()
        self.assertEqual(body["source"], "instanote")
        self.assertFalse(body["stale"])
        self.assertIsNone(body["stale_since"])
        expected = psql(self.instanote_url,
                        "SELECT string_agg(job_id, ',') FROM (SELECT job_id FROM draft_jobs WHERE "
                        "speaker_id = 'spk-001' ORDER BY created_at DESC, job_id DESC LIMIT 4) j")
        self.assertEqual(",".join(j["job_id"] for j in body["jobs"]), expected)
        job = body["jobs"][0]
        self.assertIn("MEDICATIONS:", job["original_draft"])
        self.assertIn(job["job_metadata"]["audio_quality"], {"excellent", "good", "fair", "poor"})
        self.assertGreater(job["job_metadata"]["duration"], 0)
        self.assertEqual(job["job_metadata"]["source_system"], "instanote")
        self.assertEqual(job["speaker_id"], "spk-001")

        keys = [k for k in self.redis("--scan", "--pattern", "speaker_jobs:spk-001:*").split() if k]
        self.assertTrue(keys, "no cache key after the first pull")
        values = [self.redis("GET", k) for k in keys]
        self.assertTrue(all(v.startswith("gAAAAA") for v in values), "cached jobs are not Fernet tokens")
        self.assertFalse(any("MEDICATIONS" in v for v in values), "draft text sits in Redis in clear")
        ttl = int(self.redis("TTL", keys[0]).strip())
        self.assertTrue(0 < ttl <= 3600, ttl)

        second = self.jobs("spk-001", query)
        self.assertEqual(second.status, 200, second)
        self.assertEqual(second.json()["source"], "cache")
        self.assertEqual([j["job_id"] for j in second.json()["jobs"]], [j["job_id"] for j in body["jobs"]])

    def test_error_types_filter_jobs_flagged_with_them(self):
        start, end = self.range()
        r = self.jobs("spk-002", {"from": start, "to": end, "error_types": "speaker_attribution",
                                  "max_jobs": 50})
        self.assertEqual(r.status, 200, r)
        got = r.json()["jobs"]
        flagged = int(psql(self.instanote_url, "SELECT count(*) FROM draft_jobs WHERE speaker_id = "
                                               "'spk-002' AND 'speaker_attribution' = ANY(error_types)"))
        self.assertEqual(len(got), flagged)
        self.assertTrue(all("speaker_attribution" in j["error_types"] for j in got))

    def test_bad_queries_are_refused_naming_the_parameter(self):
        start, end = self.range()
        cases = [({"to": end}, "from"), ({"from": start}, "to"), ({"from": end, "to": start}, "to"),
                 ({"from": start, "to": end, "max_jobs": 0}, "max_jobs"),
                 ({"from": start, "to": end, "max_jobs": 101}, "max_jobs"),
                 ({"from": start, "to": end, "error_types": "Drug Name"}, "error_types"),
                 # one vocabulary with the sessions: a word outside SPEC's categories is refused
                 ({"from": start, "to": end, "error_types": "dosage,not_a_category"}, "error_types"),
                 ({"from": "yesterday", "to": end}, "from"),
                 ({"from": start, "to": end, "limit": 3}, "limit")]
        for query, field in cases:
            r = self.jobs("spk-001", query)
            self.assertEqual(r.status, 400, (query, r))
            self.assertEqual(r.header("content-type"), "application/problem+json")
            self.assertEqual(r.json()["field"], field, (query, r))

    def test_pulls_need_a_qa_role(self):
        start, end = self.range()
        self.assertEqual(self.node.get(f"/v1/speakers/spk-001/jobs?from={start}&to={end}").status, 401)
        ok = self.jobs("spk-003", {"from": start, "to": end}, token=self.node.token("qa_lead"))
        self.assertEqual(ok.status, 200, ok)
        self.assertLessEqual(len(ok.json()["jobs"]), 10)


class InstanoteOutage(unittest.TestCase):
    """InstaNote goes away under a running node (its database is dropped, connections and all):
    a pull that was cached is answered stale from Redis, one that was not answers 503 with
    Retry-After, and the node stays ready (InstaNote is not required)."""

    def test_stale_from_cache_then_503_without_a_copy(self):
        srv = servers_env()
        url = fresh_database(srv)
        seeded = subprocess.run([SBM, "seed-instanote", "--url", url, "--speakers", "2", "--days", "3",
                                 "--start", "2026-11-01"], capture_output=True, text=True)
        self.assertEqual(seeded.returncode, 0, seeded.stderr)
        node = Node(srv=dict(srv, INSTANOTE_URL=url),
                    extra_flags=["--instanote.cache-fresh-for=0s", "--instanote.breaker-open-for=20s"])
        try:
            qa = node.token("qa")
            ms = random.randint(0, 999)
            cached = f"/v1/speakers/spk-001/jobs?from=2026-11-01T00:00:00.{ms:03d}Z&to=2026-11-04"
            first = node.get(cached, token=qa)
            self.assertEqual(first.status, 200, first)
            self.assertEqual(first.json()["source"], "instanote")
            first_ids = [j["job_id"] for j in first.json()["jobs"]]

            name = url.rsplit("/", 1)[1]
            psql(srv["PG_URL"], f"DROP DATABASE {name} WITH (FORCE)")

            stale = node.get(cached, token=qa)
            self.assertEqual(stale.status, 200, stale)
            body = stale.json()
            self.assertEqual(body["source"], "cache")
            self.assertTrue(body["stale"])
            self.assertTrue(body["stale_since"].startswith("20"), body["stale_since"])
            self.assertTrue(body["stale_reason"])
            self.assertEqual([j["job_id"] for j in body["jobs"]], first_ids)
            self.assertIn("110", stale.header("warning") or "")

            never = node.get(cached + "&max_jobs=2", token=qa)
            self.assertEqual(never.status, 503, never)
            self.assertEqual(never.header("content-type"), "application/problem+json")
            # InstaNote's breaker's own remaining time, or its open-for (20 s here) before it opened.
            self.assertTrue(1 <= int(never.header("retry-after")) <= 20, never.header("retry-after"))
            self.assertEqual(node.get("/readyz").status, 200)
        finally:
            node.stop()


if __name__ == "__main__":
    unittest.main()

"""The samples-history endpoint the QA console draws (GET /v1/speakers/{id}/quality-samples) against
a real node: the newest `limit` samples oldest first with `truncated`, the [from, to) range, the
bands and window of the node's policy, input read by the one query reader (400 naming the
parameter), 404 for an unknown speaker, and client scoping: another client's speaker is 404 with
the very body of an unknown one, for every form of the request."""
import unittest
import urllib.parse

from sbm_node import Node


class QualitySamples(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.node = Node(extra_flags=["--gateway.rate-limit=0", "--speakers.window-size=4",
                                          "--auth.services=drafting=speakers.read"])
        cls.admin = cls.node.token("admin", sub="samples-admin")
        for sid, client in (("qs-a", "clinic-a"), ("qs-b", "clinic-b"), ("qs-empty", "clinic-a")):
            r = cls.node.request("POST", "/v1/speakers", {"speaker_id": sid, "client_id": client},
                                 token=cls.admin)
            assert r.status == 201, r
        cls.rates = [1.5, 3.0, 7.25, 12.0, 0.5]
        for i, rate in enumerate(cls.rates):
            r = cls.node.request("POST", "/v1/speakers/qs-a/quality-samples",
                                 {"job_id": f"job-{i}", "errors_per_100_words": rate}, token=cls.admin)
            assert r.status == 201, r
        r = cls.node.request("POST", "/v1/speakers/qs-b/quality-samples",
                             {"job_id": "job-b", "errors_per_100_words": 4.0}, token=cls.admin)
        assert r.status == 201, r
        r = cls.node.request("POST", "/v1/users", {"id": "hosp-a-qa", "role": "qa",
                                                   "client_ids": ["clinic-a"]}, token=cls.admin)
        assert r.status == 201, r
        cls.scoped = cls.node.token("qa", sub="hosp-a-qa")
        cls.qa = cls.node.token("qa", sub="vendor-qa")

    @classmethod
    def tearDownClass(cls):
        cls.node.stop()

    def samples(self, speaker, token=None, **query):
        path = f"/v1/speakers/{speaker}/quality-samples"
        if query:
            path += "?" + urllib.parse.urlencode(query)
        return self.node.get(path, token=token or self.qa)

    def test_all_samples_oldest_first_with_the_policy(self):
        r = self.samples("qs-a")
        self.assertEqual(r.status, 200, r)
        body = r.json()
        self.assertEqual(body["speaker_id"], "qs-a")
        self.assertEqual([s["errors_per_100_words"] for s in body["items"]], self.rates)
        self.assertEqual([s["job_id"] for s in body["items"]], [f"job-{i}" for i in range(5)])
        self.assertFalse(body["truncated"])
        self.assertEqual(body["window_capacity"], 4)
        self.assertEqual(body["bands"], {"no_touch_max": 2.0, "low_touch_max": 5.0,
                                         "medium_touch_max": 10.0})
        self.assertTrue(all(s["actor"] == "samples-admin" for s in body["items"]), body)
        ats = [s["at"] for s in body["items"]]
        self.assertEqual(ats, sorted(ats))
        self.assertTrue(all(a.endswith("Z") and len(a) == 24 for a in ats), ats)

    def test_limit_keeps_the_newest_and_says_so(self):
        body = self.samples("qs-a", limit=2).json()
        self.assertEqual([s["job_id"] for s in body["items"]], ["job-3", "job-4"])
        self.assertTrue(body["truncated"])
        body = self.samples("qs-a", limit=5).json()
        self.assertEqual(len(body["items"]), 5)
        self.assertFalse(body["truncated"])

    def test_range_is_half_open(self):
        items = self.samples("qs-a").json()["items"]
        third = items[2]["at"]
        # A sample's shown time is floored to the millisecond: given back, `from` keeps it and
        # `to` leaves it out (the comparison with `at` holds even if two shared a millisecond).
        later = [s["job_id"] for s in self.samples("qs-a", **{"from": third}).json()["items"]]
        earlier = [s["job_id"] for s in self.samples("qs-a", to=third).json()["items"]]
        self.assertIn("job-2", later)
        self.assertNotIn("job-2", earlier)
        self.assertEqual(later, [s["job_id"] for s in items if s["at"] >= third])
        self.assertEqual(earlier, [s["job_id"] for s in items if s["at"] < third])
        self.assertEqual(earlier + later, [f"job-{i}" for i in range(5)])
        body = self.samples("qs-a", **{"from": "2001-01-01", "to": "2001-01-02"}).json()
        self.assertEqual(body["items"], [])

    def test_a_speaker_without_samples_has_an_empty_trend(self):
        r = self.samples("qs-empty")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["items"], [])
        self.assertFalse(r.json()["truncated"])

    def test_bad_input_names_the_parameter(self):
        for query, field in (({"limit": "0"}, "limit"), ({"limit": "1001"}, "limit"),
                             ({"from": "yesterday"}, "from"), ({"bucket": "no_touch"}, "bucket"),
                             ({"from": "2026-11-02", "to": "2026-11-01"}, "to"),
                             ({"from": "2026-11-02", "to": "2026-11-02"}, "to")):
            r = self.samples("qs-a", **query)
            self.assertEqual(r.status, 400, (query, r))
            self.assertEqual(r.json()["field"], field, (query, r))
        r = self.node.get("/v1/speakers/qs-a/quality-samples?limit=1&limit=2", token=self.qa)
        self.assertEqual(r.status, 400, r)
        self.assertEqual(r.json()["field"], "limit")

    def test_unknown_speaker_and_permissions(self):
        r = self.samples("qs-nobody")
        self.assertEqual(r.status, 404, r)
        self.assertEqual(r.json()["detail"], "speaker qs-nobody is not registered")
        self.assertEqual(self.node.get("/v1/speakers/qs-a/quality-samples").status, 401)
        # speakers.read is enough: a service granted only that reads the trend.
        service = self.node.token(service="drafting", permissions=["speakers.read"])
        self.assertEqual(self.samples("qs-a", token=service).status, 200)

    def test_another_clients_speaker_does_not_exist_for_a_scoped_reader(self):
        r = self.samples("qs-a", token=self.scoped)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(len(r.json()["items"]), 5)
        unknown = self.samples("qs-nobody", token=self.scoped)
        for query in ({}, {"limit": 1}, {"from": "2001-01-01"}):
            hidden = self.samples("qs-b", token=self.scoped, **query)
            self.assertEqual(hidden.status, 404, (query, hidden))
            self.assertEqual(hidden.json()["detail"], "speaker qs-b is not registered")
            self.assertEqual({k: v for k, v in hidden.json().items() if k != "request_id" and k != "detail"},
                             {k: v for k, v in unknown.json().items() if k != "request_id" and k != "detail"})
        # The unscoped reader sees it.
        self.assertEqual(self.samples("qs-b").json()["items"][0]["job_id"], "job-b")


if __name__ == "__main__":
    unittest.main()

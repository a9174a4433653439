"""The pattern index across nodes (issue 19 item 6), with real `sbm node` processes on one database:
each node's index holds the patterns of the speakers it owns (the speakers' own placement), the
report saga's index step and a verdict's weight reach the owner's index whichever node ran them,
a search filtered by speaker (and a draft's correction) is answered by the owner's index, any other
search is asked of every member and the top-k lists merged. A 4th node takes its speakers'
patterns with them (found once); after kill -9 of a member, searches answer at once with
`partial: true` naming it, and complete again once its lease lapsed and its speakers' patterns
were read by their new owners.

Every wait is on a condition (Node.wait_until); nothing asserts a duration. ctest runs this file
alone (RUN_SERIAL), so loaded cores do not look like dead nodes."""
import signal
import unittest

from sbm_node import free_port, fresh_database, psql, servers_env
import test_cluster
from test_cluster import members_of, owner_of, speakers_where, start_member, start_three

SPEAKERS = 12


class PatternsAcrossNodes(unittest.TestCase):
    # A lease that outlives a killed member by long enough to see the partial answers it leaves.
    flags = ("--cluster.lease-ttl=8s",)

    @classmethod
    def setUpClass(cls):
        cls.srv = servers_env()
        cls.db = fresh_database(cls.srv)
        cls.addresses, cls.seeds, cls.nodes = start_three(cls.srv, cls.db, "p", cls.flags)
        cls.admin = cls.nodes[0].token("admin")
        cls.lead = cls.nodes[0].token("qa_lead")
        cls.qa = cls.nodes[0].token("qa")
        everyone = {a: "up" for a in cls.addresses}
        cls.nodes[0].wait_until(
            lambda: all({a: m["state"] for a, m in members_of(n, cls.admin).items()} == everyone
                        for n in cls.nodes), 60, "the three nodes never listed each other")
        # Every speaker's one report filed through node A; each report's text is its own, and all
        # share one word, so that one query finds them all.
        # The 4th node's port is chosen now so that the speakers can be: node A owns one (test 2),
        # and the 4th node wins some when it joins (test 3, and a victim for test 4).
        cls.fourth = f"127.0.0.1:{free_port()}"
        cls.speakers = speakers_where("pat", SPEAKERS, lambda names: any(
            owner_of(cls.addresses, s) == cls.addresses[0] for s in names) and any(
            owner_of(cls.addresses + [cls.fourth], s) == cls.fourth for s in names))
        cls.text = {}
        cls.report = {}
        a = cls.nodes[0]
        for k, s in enumerate(cls.speakers):
            cls.retried(a, "POST", "/v1/speakers", cls.lead, f"reg-{s}", {"speaker_id": s, "client_id": "c1"})
            cls.text[s] = f"zorblax {cls.word(k)} mellitus"
            body = {"speaker_id": s, "client_id": "c1", "job_id": f"job-{k}",
                    "original_text": cls.text[s], "corrected_text": f"diabetes {cls.word(k)} mellitus",
                    "error_categories": ["medical_terminology"], "audio_quality": "good",
                    "speaker_clarity": "clear", "background_noise": "low", "number_of_speakers": 1,
                    "overlapping_speech": False, "requires_specialized_knowledge": False}
            r = cls.retried(a, "POST", "/v1/error-reports", cls.qa, f"rep-{s}", body)
            assert r.status == 201, r
            cls.report[s] = r.json()["id"]
        ids = "'{" + ",".join(str(i) for i in cls.report.values()) + "}'"
        a.wait_until(lambda: psql(cls.db, "SELECT count(*) FROM reports.report_saga WHERE step = 'done' AND "
                                          f"report_id = ANY({ids}::bigint[])") == str(SPEAKERS),
                     120, "a report's saga never finished")

    @classmethod
    def tearDownClass(cls):
        for n in cls.nodes:
            n.stop()

    @staticmethod
    def word(k):
        # Distinct words, not numbers: the embedder's n-grams tell them apart clearly.
        return ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india",
                "juliet", "kilo", "lima", "mike", "november"][k]

    @classmethod
    def retried(cls, node, method, path, token, key, body=None):
        """Sends until the answer is not a retryable 503, with the same Idempotency-Key."""
        return test_cluster.ClusterCase.retried(cls, node, method, path, token, key, body)

    def search(self, node, query, filters=None, top_k=10):
        body = {"query_text": query, "top_k": top_k}
        if filters:
            body["filters"] = filters
        return node.request("POST", "/v1/patterns/search", body, token=self.qa)

    def live(self):
        return [n for n in self.nodes if n.proc is not None]

    def index_sizes(self):
        """sbm_pattern_index_patterns of every live node: what each one's index holds."""
        sizes = []
        for n in self.live():
            text = n.get("/metrics", token=self.admin).body
            sizes += [int(float(line.split()[-1])) for line in text.splitlines()
                      if line.startswith("sbm_pattern_index_patterns")]
        return sizes

    def found_everywhere(self, message):
        """Until every live node finds each speaker's pattern by speaker filter and without one, each
        pattern once, complete (no member missing), and the indexes together hold each once."""
        want = sorted(self.report.values())

        def complete():
            for n in self.live():
                r = self.search(n, "zorblax mellitus", top_k=100)
                if r.status != 200 or r.json().get("partial"):
                    return False
                got = [h["id"] for h in r.json()["results"]]
                if sorted(got) != want:
                    return False
                for s in self.speakers:
                    r = self.search(n, self.text[s], {"speaker_id": s}, top_k=3)
                    if r.status != 200 or [h["id"] for h in r.json()["results"]] != [self.report[s]]:
                        return False
            return sum(self.index_sizes()) == SPEAKERS
        self.live()[0].wait_until(complete, 90, message)

    def test_1_reports_filed_on_one_node_are_found_from_every_node(self):
        a, b, c = self.nodes
        for n in (b, c):
            for s in self.speakers:
                r = self.search(n, self.text[s], {"speaker_id": s}, top_k=3)
                self.assertEqual(r.status, 200, r)
                hits = r.json()["results"]
                self.assertEqual([h["id"] for h in hits], [self.report[s]], (s, r))
                self.assertAlmostEqual(hits[0]["similarity_score"], 1.0, places=4)
                # Unfiltered: its own text is the best of all members' patterns.
                r = self.search(n, self.text[s], top_k=3)
                self.assertEqual(r.status, 200, r)
                self.assertEqual(r.json()["results"][0]["id"], self.report[s], r)
                self.assertEqual(r.json()["plan"], "scatter:3/3", r)
                self.assertNotIn("partial", r.json())
            # All of them, once each, by one query and by a category filter.
            for filters in (None, {"error_category": "medical_terminology"}, {"client_id": "c1"}):
                r = self.search(n, "zorblax mellitus", filters, top_k=100)
                self.assertEqual(r.status, 200, r)
                got = [h["id"] for h in r.json()["results"]]
                self.assertEqual(sorted(got), sorted(self.report.values()), (filters, r))
                sims = [h["similarity_score"] for h in r.json()["results"]]
                self.assertEqual(sims, sorted(sims, reverse=True))
            # top_k cuts the merged list: the best k of all, not k per member.
            r = self.search(n, "zorblax mellitus", top_k=4)
            self.assertEqual(len(r.json()["results"]), 4, r)
        # Each pattern is held by one index only: its speaker's owner.
        self.assertEqual(sorted(self.index_sizes()), sorted(
            sum(1 for s in self.speakers if owner_of(self.addresses, s) == addr) for addr in self.addresses))

    def test_2_a_draft_is_corrected_on_any_node_with_the_owners_patterns_and_verdicts(self):
        a, b, c = self.nodes
        s = next(s for s in self.speakers if owner_of(self.addresses, s) == self.addresses[0])
        rid = self.report[s]
        draft = f"The patient has {self.text[s]} since May."
        r = c.request("POST", "/v1/drafts/correct", {"speaker_id": s, "draft_text": draft}, token=self.qa)
        self.assertEqual(r.status, 200, r)
        self.assertIn(rid, [x["pattern_id"] for x in r.json()["corrections"]], r)
        # A verdict through node B moves the weight in the owner's index (node A's).
        r = b.request("PATCH", f"/v1/error-reports/{rid}", {"status": "rectified"}, token=self.qa)
        self.assertEqual(r.status, 200, r)

        def rectified():
            hits = self.search(c, self.text[s], {"speaker_id": s}, top_k=1).json()["results"]
            return hits and hits[0]["metadata"]["status"] == "rectified" and hits[0]["metadata"]["weight"] > 0.5
        c.wait_until(rectified, 60, "the verdict never reached the owner's index")
        r = c.request("POST", "/v1/drafts/correct", {"speaker_id": s, "draft_text": draft}, token=self.qa)
        self.assertEqual(r.status, 200, r)
        self.assertIn(f"diabetes {self.word(self.speakers.index(s))} mellitus", r.json()["corrected_text"], r)

    def test_3_a_4th_node_takes_its_speakers_patterns(self):
        self.addresses.append(self.fourth)
        port = int(self.fourth.rsplit(":", 1)[1])
        self.nodes.append(start_member(self.srv, self.db, self.nodes[0].keys, port, self.seeds, "p3", self.flags))
        everyone = {a: "up" for a in self.addresses}
        self.nodes[0].wait_until(
            lambda: all({a: m["state"] for a, m in members_of(n, self.admin).items()} == everyone
                        for n in self.nodes), 60, "the 4th node never joined")
        moved = [s for s in self.speakers if owner_of(self.addresses, s) == self.addresses[3]]
        self.assertTrue(moved, "no speaker moves to the 4th node: pick more speakers")
        self.found_everywhere("the moved speakers' patterns were never found once on every node")
        # The new member's index holds exactly the speakers it won.
        text = self.nodes[3].get("/metrics", token=self.admin).body
        held = [int(float(line.split()[-1])) for line in text.splitlines()
                if line.startswith("sbm_pattern_index_patterns")]
        self.assertEqual(held, [len(moved)])

    def test_4_a_killed_member_makes_searches_partial_until_its_lease_lapses(self):
        # The addresses are free ports, so which members own speakers varies: kill one that owns some.
        victim = next((i for i in range(1, len(self.addresses))
                       if any(owner_of(self.addresses, s) == self.addresses[i] for s in self.speakers)), None)
        self.assertIsNotNone(victim, "only the first node owns speakers: pick more speakers")
        gone = self.addresses[victim]
        lost = [s for s in self.speakers if owner_of(self.addresses, s) == gone]
        self.nodes[victim].stop(signal.SIGKILL)
        survivor = self.nodes[0]
        seen = {}

        def partial():
            seen["r"] = self.search(survivor, "zorblax mellitus", top_k=100)
            return seen["r"].status == 200 and seen["r"].json().get("partial")
        # Right after the kill (BASP sees it in milliseconds, its lease runs for seconds): answered,
        # not hung, and the answer says whose patterns it lacks.
        survivor.wait_until(partial, 30, f"no partial answer after the kill: {seen.get('r')}")
        self.assertEqual(psql(self.db, f"SELECT count(*) FROM cluster.leases WHERE expires_at > now()"), "4",
                         "the killed node's lease lapsed before its partial answers were seen")
        body = seen["r"].json()
        self.assertEqual(body["missing_members"], [gone], body)
        self.assertEqual(body["plan"], "scatter:3/4", body)
        got = {h["id"] for h in body["results"]}
        self.assertEqual(got, {self.report[s] for s in self.speakers if s not in lost})
        # A speaker whose owner is lost: a retryable 503, not an empty answer.
        r = self.search(survivor, self.text[lost[0]], {"speaker_id": lost[0]})
        self.assertEqual(r.status, 503, r)
        self.assertIsNotNone(r.header("retry-after"), r)
        del self.nodes[victim]
        del self.addresses[victim]
        self.found_everywhere("searches never became complete after the killed node's lease lapsed")


if __name__ == "__main__":
    unittest.main()

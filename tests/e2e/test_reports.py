"""Issue 5 end to end, through the real gateway: error reports filed, read, listed and judged; found
again by filtered pattern search with the right scores; notes that Python's Fernet reads and writes;
injection strings stored and searched as plain data; bad input naming the field; and a node killed
with SIGKILL between saga steps that loses nothing."""
import signal
import time
import unittest
import urllib.parse
import uuid

from cryptography.fernet import Fernet

from sbm_node import Node, fresh_database, psql, servers_env, wait_for

MAX_TEXT = 300


def report(speaker, job, original, corrected, **overrides):
    body = {"speaker_id": speaker, "client_id": "clinic-1", "job_id": job,
            "original_text": original, "corrected_text": corrected,
            "error_categories": ["medical_terminology"], "audio_quality": "good",
            "speaker_clarity": "clear", "background_noise": "low", "number_of_speakers": 1,
            "overlapping_speech": False, "requires_specialized_knowledge": False}
    body.update(overrides)
    return body


def saga_steps(report_json):
    """The steps a report's saga log records, without 'retry' lines: a step tried while the pattern
    index is still loading after a start fails once and is retried, which is correct but timing."""
    return [e["step"] for e in report_json["saga"]["log"] if e["step"] != "retry"]


def instanote_with_jobs(srv, jobs):
    """An InstaNote database of this test's own, holding the drafts table SBM reads: jobs are
    (job_id, speaker_id) or (job_id, speaker_id, draft_text), of clinic-1, created now."""
    url = fresh_database(srv)
    psql(url, "CREATE TABLE public.draft_jobs (job_id text PRIMARY KEY, speaker_id text NOT NULL, "
              "client_id text NOT NULL, draft_text text NOT NULL, audio_metadata jsonb, "
              "error_types text[], source_system text, created_at timestamptz NOT NULL DEFAULT now())")
    for job, speaker, *text in jobs:
        draft = (text or ["draft"])[0].replace("'", "''")
        psql(url, f"INSERT INTO public.draft_jobs (job_id, speaker_id, client_id, draft_text) "
                  f"VALUES ('{job}', '{speaker}', 'clinic-1', '{draft}')")
    return url


class Reports(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = servers_env()
        instanote = instanote_with_jobs(cls.srv, [("job-owned-by-b", "rep-b")])
        cls.node = Node(srv=cls.srv, extra_flags=[f"--instanote.url={instanote}",
                                                  f"--reports.max-text-bytes={MAX_TEXT}",
                                                  "--reports.relay-interval=200ms",
                                                  "--gateway.rate-limit=0"])
        cls.lead = cls.node.token("qa_lead", sub="lead-ann")
        cls.qa = cls.node.token("qa", sub="qa-bob")
        with open(cls.node.fernet_file) as f:
            cls.fernet = Fernet(f.read().strip().encode())
        for speaker, client in (("rep-a", "clinic-1"), ("rep-b", "clinic-1"), ("spk-o'hara", "clinic-1")):
            r = cls.node.request("POST", "/v1/speakers", {"speaker_id": speaker, "client_id": client},
                                 token=cls.lead)
            assert r.status == 201, r

    @classmethod
    def tearDownClass(cls):
        cls.node.stop()

    def file(self, body, expect=201):
        r = self.node.request("POST", "/v1/error-reports", body, token=self.qa)
        self.assertEqual(r.status, expect, r)
        return r.json()

    def saga_done(self, report_id):
        def done():
            r = self.node.get(f"/v1/error-reports/{report_id}", token=self.qa)
            return r.status == 200 and r.json()["saga"]["step"] == "done" and r.json()
        return wait_for(done, message=f"report {report_id} never finished its saga")

    def search(self, query_text, expect=200, **body):
        r = self.node.request("POST", "/v1/patterns/search", dict(query_text=query_text, **body),
                              token=self.qa)
        self.assertEqual(r.status, expect, r)
        return r.json()

    def test_filed_reports_are_found_again_by_filtered_search_with_the_right_scores(self):
        tag = uuid.uuid4().hex[:6]
        a1 = self.file(report("rep-a", f"j1-{tag}", f"metoprolal {tag}", f"metoprolol {tag}",
                              error_categories=["drug_name"], requires_specialized_knowledge=True))
        a2 = self.file(report("rep-a", f"j2-{tag}", f"hyper tension {tag}", f"hypertension {tag}",
                              audio_quality="poor"))
        b1 = self.file(report("rep-b", f"j3-{tag}", f"hyper tension {tag}", f"hypertension {tag}"))
        self.assertEqual(a1["status"], "pending")
        self.assertEqual(a1["bucket_type"], "high_touch")
        for r in (a1, a2, b1):
            self.saga_done(r["id"])

        # The pattern's own text scores 1: its vector is the query's vector.
        hits = self.search(f"hyper tension {tag}", filters={"speaker_id": "rep-a"}, top_k=5)
        self.assertTrue(hits["plan"])
        ids = [h["id"] for h in hits["results"]]
        self.assertEqual(ids[0], a2["id"], hits)
        self.assertNotIn(b1["id"], ids)
        self.assertAlmostEqual(hits["results"][0]["similarity_score"], 1.0, places=4)
        scores = [h["similarity_score"] for h in hits["results"]]
        self.assertEqual(scores, sorted(scores, reverse=True))
        top = hits["results"][0]
        self.assertEqual(top["original_text"], f"hyper tension {tag}")
        self.assertEqual(top["corrected_text"], f"hypertension {tag}")
        meta = top["metadata"]
        self.assertEqual((meta["speaker_id"], meta["client_id"], meta["bucket_type"], meta["audio_quality"],
                          meta["status"], meta["error_categories"]),
                         ("rep-a", "clinic-1", "high_touch", "poor", "pending", ["medical_terminology"]))
        self.assertEqual(meta["created_at"], a2["created_at"])

        # A near miss of a drug name still finds it, below a perfect score and above unrelated text.
        near = self.search(f"metoprolol {tag}", filters={"speaker_id": "rep-a"}, top_k=5)
        self.assertEqual(near["results"][0]["id"], a1["id"], near)
        self.assertGreater(near["results"][0]["similarity_score"], 0.5)
        self.assertLess(near["results"][0]["similarity_score"], 0.9999)
        others = [h for h in near["results"] if h["id"] == a2["id"]]
        if others:
            self.assertLess(others[0]["similarity_score"], near["results"][0]["similarity_score"])

        # Each typed filter narrows to exactly what matches it.
        def found(**filters):
            return {h["id"] for h in self.search(f"hyper tension {tag}", filters=filters, top_k=100)["results"]}
        self.assertEqual(found(audio_quality="poor", speaker_id="rep-a"), {a2["id"]})
        self.assertIn(b1["id"], found(speaker_id="rep-b"))
        self.assertNotIn(a2["id"], found(speaker_id="rep-b"))
        self.assertIn(a1["id"], found(error_category="drug_name", speaker_id="rep-a"))
        self.assertNotIn(a2["id"], found(error_category="drug_name", speaker_id="rep-a"))
        self.assertEqual(found(requires_specialized_knowledge=True, speaker_id="rep-a") & {a1["id"], a2["id"]},
                         {a1["id"]})
        self.assertEqual(found(bucket_type="no_touch", speaker_id="rep-a"), set())
        self.assertEqual(found(speaker_id="rep-a", **{"from": "2100-01-01"}), set())
        both = found(client_id="clinic-1", status="pending")
        self.assertTrue({a1["id"], a2["id"], b1["id"]} <= both)

        # A verdict moves status and weight, and the index follows through the saga.
        r = self.node.request("PATCH", f"/v1/error-reports/{a2['id']}", {"status": "rectified"}, token=self.qa)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["status"], "rectified")
        self.assertAlmostEqual(r.json()["weight"], 0.6)
        self.saga_done(a2["id"])
        rect = self.search(f"hyper tension {tag}", filters={"speaker_id": "rep-a", "status": "rectified"})
        self.assertEqual([h["id"] for h in rect["results"]], [a2["id"]])
        self.assertAlmostEqual(rect["results"][0]["metadata"]["weight"], 0.6)

        # The saga scheduled one verification per report, keyed by the report.
        sched = self.node.get("/v1/verification-schedule?speaker_id=rep-a&limit=1000", token=self.qa).json()
        keys = [s["source_key"] for s in sched["items"]]
        self.assertEqual(keys.count(f"report:{a1['id']}"), 1)
        self.assertEqual(keys.count(f"report:{a2['id']}"), 1)

    def test_a_report_reads_back_with_its_saga_log(self):
        body = report("rep-a", "job-read", "clonidine", "klonopin", error_categories=["drug_name", "homophone"],
                      number_of_speakers=3, overlapping_speech=True, context_text="started on clonidine",
                      additional_notes="sounded alike", context_notes="line 1\nline 2")
        created = self.file(body)
        got = self.saga_done(created["id"])
        for key, value in body.items():
            self.assertEqual(got[key], value, key)
        self.assertEqual(got["filed_by"], "qa-bob")
        self.assertEqual(saga_steps(got), ["store", "index", "notify", "schedule"])
        self.assertIn("InstaNote has no such job", got["saga"]["log"][0]["note"])
        r = self.node.request("POST", "/v1/error-reports", body, token=self.qa)
        self.assertEqual(r.header("location"), f"/v1/error-reports/{r.json()['id']}")

    def test_notes_are_fernet_tokens_that_python_reads_and_writes(self):
        created = self.file(report("rep-a", "job-notes", "a fib", "AFib", additional_notes="patient's own words",
                                   context_notes="dictated while driving\nsecond line"))
        rid = created["id"]
        row = psql(self.node.database_url,
                   f"SELECT additional_notes_token || '|' || context_notes_token FROM reports.error_reports WHERE id = {rid}")
        additional, context = row.split("|")
        self.assertNotIn("patient", additional)
        self.assertEqual(self.fernet.decrypt(additional.encode()).decode(), "patient's own words")
        self.assertEqual(self.fernet.decrypt(context.encode()).decode(), "dictated while driving\nsecond line")

        token = self.fernet.encrypt("written by Python".encode()).decode()
        psql(self.node.database_url,
             f"UPDATE reports.error_reports SET context_notes_token = '{token}' WHERE id = {rid}")
        got = self.node.get(f"/v1/error-reports/{rid}", token=self.qa).json()
        self.assertEqual(got["context_notes"], "written by Python")

        psql(self.node.database_url,
             f"UPDATE reports.error_reports SET additional_notes_token = 'gAAAAAnotatoken' WHERE id = {rid}")
        r = self.node.get(f"/v1/error-reports/{rid}", token=self.qa)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["additional_notes"], "[Encrypted Data]")
        self.assertEqual(r.json()["context_notes"], "written by Python")
        listed = self.node.get("/v1/error-reports?speaker_id=rep-a&limit=500", token=self.qa)
        self.assertEqual(listed.status, 200, listed)
        self.assertIn("does not decrypt", self.node.log_text())

    def test_injection_strings_are_stored_and_searched_as_plain_data(self):
        evil = "'; DROP TABLE reports.error_reports; --"
        created = self.file(report("spk-o'hara", "job-evil", evil, "' OR '1'='1",
                                   additional_notes="metadata.speaker_id = 'x' OR 1=1"))
        got = self.saga_done(created["id"])
        self.assertEqual(got["original_text"], evil)
        self.assertEqual(got["additional_notes"], "metadata.speaker_id = 'x' OR 1=1")
        q = urllib.parse.urlencode({"speaker_id": "spk-o'hara"})
        listed = self.node.get(f"/v1/error-reports?{q}", token=self.qa).json()
        self.assertEqual([i["id"] for i in listed["items"]], [created["id"]])
        q = urllib.parse.urlencode({"speaker_id": "rep-a' OR '1'='1"})
        self.assertEqual(self.node.get(f"/v1/error-reports?{q}", token=self.qa).json()["items"], [])
        hits = self.search(evil, filters={"speaker_id": "spk-o'hara"})
        self.assertEqual(hits["results"][0]["original_text"], evil)
        self.assertAlmostEqual(hits["results"][0]["similarity_score"], 1.0, places=4)
        for value in ("' OR 1=1 --", "rep-a' OR speaker_id <> '", "metadata.speaker_id = 'rep-a'"):
            self.assertEqual(self.search("hyper tension", filters={"speaker_id": value})["results"], [], value)
        self.assertEqual(psql(self.node.database_url, "SELECT to_regclass('reports.error_reports') IS NOT NULL"), "t")

    def test_bad_input_names_the_field(self):
        good = report("rep-a", "job-bad", "hyper tension", "hypertension")
        cases = [
            ({"speaker_id": None}, 400, "speaker_id"),
            ({"speaker_id": 7}, 400, "speaker_id"),
            ({"job_id": ""}, 400, "job_id"),
            ({"client_id": "a/b"}, 400, "client_id"),
            ({"error_categories": "drug_name"}, 400, "error_categories"),
            ({"error_categories": []}, 400, "error_categories"),
            ({"error_categories": ["spelling"]}, 400, "error_categories"),
            ({"error_categories": ["dosage", "dosage"]}, 400, "error_categories"),
            ({"audio_quality": "great"}, 400, "audio_quality"),
            ({"speaker_clarity": None}, 400, "speaker_clarity"),
            ({"background_noise": "' OR 1=1 --"}, 400, "background_noise"),
            ({"number_of_speakers": "two"}, 400, "number_of_speakers"),
            ({"number_of_speakers": 21}, 400, "number_of_speakers"),
            ({"number_of_speakers": 1.5}, 400, "number_of_speakers"),
            ({"overlapping_speech": "yes"}, 400, "overlapping_speech"),
            ({"requires_specialized_knowledge": 1}, 400, "requires_specialized_knowledge"),
            ({"original_text": "x" * (MAX_TEXT + 1)}, 400, "original_text"),
            ({"corrected_text": "   "}, 400, "corrected_text"),
            ({"additional_notes": ["a"]}, 400, "additional_notes"),
            ({"audio_qualty": "good"}, 400, "audio_qualty"),
            ({"corrected_text": "hyper tension"}, 422, "corrected_text"),
            ({"speaker_id": "nobody-" + uuid.uuid4().hex[:6]}, 422, "speaker_id"),
            ({"client_id": "clinic-9"}, 422, "client_id"),
            ({"job_id": "job-owned-by-b"}, 422, "job_id"),
        ]
        for change, status, field in cases:
            with self.subTest(change=change):
                body = dict(good)
                for k, v in change.items():
                    if v is None:
                        body.pop(k)
                    else:
                        body[k] = v
                r = self.node.request("POST", "/v1/error-reports", body, token=self.qa)
                self.assertEqual(r.status, status, r)
                self.assertEqual(r.header("content-type"), "application/problem+json")
                self.assertEqual(r.json().get("field"), field, r)
                self.assertIn(field, r.json()["detail"])
        r = self.node.request("POST", "/v1/error-reports", raw_body=b"{\"speaker_id\": ", token=self.qa,
                              headers={"Content-Type": "application/json"})
        self.assertEqual(r.status, 400, r)

        searches = [
            ({"filters": {"speakerid": "rep-a"}}, "filters.speakerid"),
            ({"filters": {"audio_quality": "great"}}, "filters.audio_quality"),
            ({"filters": {"requires_specialized_knowledge": "true"}}, "filters.requires_specialized_knowledge"),
            ({"filters": {"from": "2026-11-25", "to": "2026-11-24T23:59:59Z"}}, "filters.to"),
            ({"filters": {"from": 1795478400000}}, "filters.from"),  # one timestamp format: RFC 3339
            ({"filters": {"to": "2026-02-30"}}, "filters.to"),
            ({"filters": {"from_ms": 20}}, "filters.from_ms"),
            ({"filters": {"min_weight": 2}}, "filters.min_weight"),
            ({"filters": "speaker_id = 'rep-a'"}, "filters"),
            ({"top_k": 101}, "top_k"),
            ({"top_k": 0}, "top_k"),
            ({"query_text": ""}, "query_text"),
        ]
        for change, field in searches:
            with self.subTest(search=change):
                body = {"query_text": "hypertension"}
                body.update(change)
                r = self.node.request("POST", "/v1/patterns/search", body, token=self.qa)
                self.assertEqual(r.status, 400, r)
                self.assertEqual(r.json().get("field"), field, r)

        for path, status, field in [("/v1/error-reports/abc", 400, "id"),
                                    ("/v1/error-reports/0", 400, "id"),
                                    ("/v1/error-reports?category=spelling", 400, "category"),
                                    ("/v1/error-reports?status=done", 400, "status"),
                                    ("/v1/error-reports?from=yesterday", 400, "from"),
                                    ("/v1/error-reports?limit=0", 400, "limit"),
                                    ("/v1/error-reports?cursor=-3", 400, "cursor"),
                                    ("/v1/error-reports?speakerid=rep-a", 400, "speakerid")]:
            with self.subTest(path=path):
                r = self.node.get(path, token=self.qa)
                self.assertEqual(r.status, status, r)
                self.assertEqual(r.json().get("field"), field, r)
        self.assertEqual(self.node.get("/v1/error-reports/987654321", token=self.qa).status, 404)
        r = self.node.request("PATCH", "/v1/error-reports/987654321", {"status": "rectified"}, token=self.qa)
        self.assertEqual(r.status, 404, r)
        r = self.node.request("PATCH", "/v1/error-reports/1", {"status": "pending"}, token=self.qa)
        self.assertEqual((r.status, r.json().get("field")), (400, "status"), r)

    def test_the_list_filters_and_pages(self):
        r = self.node.request("POST", "/v1/speakers", {"speaker_id": "rep-list", "client_id": "clinic-1"},
                              token=self.lead)
        self.assertEqual(r.status, 201, r)
        ids = [self.file(report("rep-list", f"job-l{i}", f"text {i}", f"fixed {i}",
                                error_categories=["numbers_units"] if i % 2 else ["dosage"]))["id"]
               for i in range(5)]
        seen, cursor = [], None
        while True:
            path = "/v1/error-reports?speaker_id=rep-list&limit=2" + (f"&cursor={cursor}" if cursor else "")
            page = self.node.get(path, token=self.qa).json()
            self.assertLessEqual(len(page["items"]), 2)
            seen += [i["id"] for i in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        self.assertEqual(seen, list(reversed(ids)))
        odd = self.node.get("/v1/error-reports?speaker_id=rep-list&category=numbers_units", token=self.qa).json()
        self.assertEqual([i["id"] for i in odd["items"]], [ids[3], ids[1]])
        first = self.node.get(f"/v1/error-reports/{ids[0]}", token=self.qa).json()["created_at"]
        last = self.node.get(f"/v1/error-reports/{ids[4]}", token=self.qa).json()["created_at"]
        window = urllib.parse.urlencode({"speaker_id": "rep-list", "from": first, "to": last})
        self.assertEqual(len(self.node.get(f"/v1/error-reports?{window}", token=self.qa).json()["items"]), 5)
        later = urllib.parse.urlencode({"speaker_id": "rep-list", "from": "2100-01-01"})
        self.assertEqual(self.node.get(f"/v1/error-reports?{later}", token=self.qa).json()["items"], [])
        self.node.request("PATCH", f"/v1/error-reports/{ids[2]}", {"status": "not_rectified"}, token=self.qa)
        nr = self.node.get("/v1/error-reports?speaker_id=rep-list&status=not_rectified", token=self.qa).json()
        self.assertEqual([i["id"] for i in nr["items"]], [ids[2]])
        self.assertAlmostEqual(nr["items"][0]["weight"], 0.4)


class ReportCrash(unittest.TestCase):
    """kill -9 between saga steps. The node waits before every step (reports.saga-step-delay, a
    test-only option) so the kill lands in a known place: report A has been indexed but its
    verification not yet scheduled, report B has been committed (and answered 201) but not yet indexed.
    After a restart without the delay, the sagas are taken over once their claim lapses."""

    def test_kill_between_saga_steps_loses_nothing(self):
        srv = servers_env()
        base = ["--reports.relay-interval=200ms", "--reports.saga-claim=2s", "--gateway.rate-limit=0"]
        node = Node(srv=srv, extra_flags=base + ["--reports.saga-step-delay=3s"])
        try:
            lead, qa = node.token("qa_lead"), node.token("qa")
            self.assertEqual(node.request("POST", "/v1/speakers", {"speaker_id": "crash-1", "client_id": "clinic-1"},
                                          token=lead).status, 201)
            a = node.request("POST", "/v1/error-reports",
                             report("crash-1", "job-a", "lasix 40 mg", "Lasix 40 mg", error_categories=["drug_name"]),
                             token=qa)
            self.assertEqual(a.status, 201, a)
            a = a.json()["id"]

            def step_of(rid):
                return node.get(f"/v1/error-reports/{rid}", token=qa).json()["saga"]["step"]
            # Nothing subscribes to pattern.learned in a node yet, so notify is recorded with the
            # index step and schedule is A's next step.
            wait_for(lambda: step_of(a) == "schedule", 15, "report A was never indexed")
            b = node.request("POST", "/v1/error-reports",
                             report("crash-1", "job-b", "hyper kalemia", "hyperkalemia"), token=qa)
            self.assertEqual(b.status, 201, b)
            b = b.json()["id"]
            found = {h["id"] for h in node.request("POST", "/v1/patterns/search",
                                                   {"query_text": "hyper kalemia", "filters": {"speaker_id": "crash-1"}},
                                                   token=qa).json()["results"]}
            self.assertEqual(found, {a}, "B must not be indexed yet: the kill has to land before its index step")
            self.assertEqual(node.stop(signal.SIGKILL), -signal.SIGKILL)

            rows = psql(node.database_url, f"SELECT report_id || ':' || step FROM reports.report_saga "
                                           f"WHERE report_id IN ({a}, {b}) ORDER BY report_id")
            self.assertEqual(rows.split(), [f"{a}:schedule", f"{b}:index"])

            node.flags = [f for f in node.flags if not f.startswith("--reports.saga-step-delay")]
            node.start()
            wait_for(lambda: step_of(a) == "done" and step_of(b) == "done", 30, "the sagas were not finished")
            hits = node.request("POST", "/v1/patterns/search",
                                {"query_text": "hyper kalemia", "filters": {"speaker_id": "crash-1"}}, token=qa).json()
            self.assertEqual(hits["results"][0]["id"], b)
            self.assertAlmostEqual(hits["results"][0]["similarity_score"], 1.0, places=4)
            self.assertEqual({h["id"] for h in hits["results"]}, {a, b})
            for rid in (a, b):
                log = saga_steps(node.get(f"/v1/error-reports/{rid}", token=qa).json())
                self.assertEqual(log, ["store", "index", "notify", "schedule"], rid)
            scheduled = psql(node.database_url, "SELECT source_key FROM verification.schedule ORDER BY source_key")
            self.assertEqual(scheduled.split(), sorted([f"report:{a}", f"report:{b}"]))
            self.assertEqual(psql(node.database_url, "SELECT count(*) FROM patterns.patterns"), "2")
        finally:
            node.stop()


if __name__ == "__main__":
    unittest.main()

"""Issue 21, patient data: no log line carries draft or note text, even when requests fail; every
read of decrypted notes is on record (one audit row per answer and client, naming the reports);
notes past reports.notes-retention are purged from the database; a verification session's drafts
rest as a Fernet token, stay out of the log and are purged past verification.draft-retention, and a
cache that would outlive that retention stops the node from starting."""
import datetime
import json
import os
import subprocess
import unittest
import urllib.parse
import uuid

from sbm_node import SBM, Node, psql, servers_env
from test_reports import instanote_with_jobs, report, wait_for


class PatientData(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = servers_env()
        cls.marker = "PHI" + uuid.uuid4().hex  # in the drafts a verification session pulls
        instanote = instanote_with_jobs(cls.srv, [("j-0", "phi-1", f"Continue metoprolol 25 twice daily, {cls.marker} stable."),
                                                  ("j-1", "phi-1", f"Patient {cls.marker} denies chest pain.")])
        # trace: the most the node ever logs, so a leak at any level shows; the cache lives no
        # longer than the drafts' retention, or the node would not start
        cls.node = Node(srv=cls.srv, extra_flags=[f"--instanote.url={instanote}", "--log.level=trace",
                                                  "--gateway.rate-limit=0",
                                                  "--reports.relay-interval=200ms",
                                                  "--instanote.cache-ttl=1s",
                                                  "--verification.draft-retention=2s",
                                                  "--verification.draft-purge-interval=200ms"])
        cls.qa = cls.node.token("qa", sub="qa-phi")
        cls.lead = cls.node.token("qa_lead", sub="lead-phi")
        r = cls.node.request("POST", "/v1/speakers", {"speaker_id": "phi-1", "client_id": "clinic-1"},
                             token=cls.lead)
        assert r.status == 201, r

    @classmethod
    def tearDownClass(cls):
        cls.node.stop()

    def file(self, **fields):
        body = report("phi-1", "j-" + uuid.uuid4().hex[:8], "metoprolal 25 mg", "metoprolol 25 mg")
        body.update(fields)
        r = self.node.request("POST", "/v1/error-reports", body, token=self.qa)
        self.assertEqual(r.status, 201, r)
        return r.json()

    def notes_reads(self):
        q = urllib.parse.urlencode({"action": "report.notes_read", "limit": 500})
        r = self.node.request("GET", "/v1/audit?" + q, token=self.lead)
        self.assertEqual(r.status, 200, r)
        return r.json()["items"]

    def test_no_log_line_carries_draft_or_note_text(self):
        marker = "PHI" + uuid.uuid4().hex
        texts = dict(original_text=f"metoprolal {marker}", corrected_text=f"metoprolol {marker}",
                     additional_notes=f"patient {marker} notes", context_notes=f"context {marker}",
                     context_text=f"draft around {marker}")
        good = self.file(**texts)
        failures = [
            ("POST", "/v1/error-reports", dict(report("phi-1", "j-x", marker, marker), audio_quality=marker)),
            ("POST", "/v1/error-reports", dict(report("phi-nobody", "j-y", marker, marker), additional_notes=marker)),
            ("POST", "/v1/error-reports", dict(report("phi-1", "j-z", marker * 200, marker), context_notes=marker)),
            ("POST", "/v1/error-reports", dict(report("phi-1", "j-w", marker, marker), speaker_clarity=[marker])),
            ("PATCH", f"/v1/error-reports/{good['id']}", {"status": marker}),
            ("POST", "/v1/patterns/search", {"query_text": marker, "top_k": 5, "filters": {"status": marker}}),
            ("POST", "/v1/speakers/phi-1/quality-samples",
             {"job_id": "j-q", "errors_per_100_words": 3, "verified_text": marker}),
        ]
        # draft text the node accepts and measures (not stored): it must not be logged either
        r = self.node.request("POST", "/v1/speakers/phi-1/quality-samples",
                              {"job_id": "j-r", "delivered_text": marker, "verified_text": marker + " x"},
                              token=self.qa)
        self.assertEqual(r.status, 201, r)
        for method, path, body in failures:
            with self.subTest(method=method, path=path):
                r = self.node.request(method, path, body, token=self.qa)
                self.assertGreaterEqual(r.status, 400, r)
        # bodies the JSON reader refuses, a duplicate key, bytes that are not UTF-8
        raw = [f'{{"original_text": "{marker}", "original_text": "{marker}"}}'.encode(),
               b'{"additional_notes": "\xff' + marker.encode() + b'"}',
               f'{{"context_notes": "{marker}"'.encode()]
        for data in raw:
            r = self.node.request("POST", "/v1/error-reports", token=self.qa, raw_body=data,
                                  headers={"Content-Type": "application/json"})
            self.assertEqual(r.status, 400, r)
        # successful reads and a search with the text too
        self.assertEqual(self.node.get(f"/v1/error-reports/{good['id']}", token=self.qa).status, 200)
        self.assertEqual(self.node.get("/v1/error-reports?limit=50", token=self.qa).status, 200)
        r = self.node.request("POST", "/v1/patterns/search", {"query_text": f"metoprolal {marker}"},
                              token=self.qa)
        self.assertIn(r.status, (200, 503), r)
        wait_for(lambda: self.node.get(f"/v1/error-reports/{good['id']}", token=self.qa).json()["saga"]["step"]
                 == "done", message="the saga never finished")
        log = self.node.log_text()
        self.assertIn("/v1/error-reports", log)  # the log is being written at all
        self.assertNotIn(marker, log)

    def test_every_read_of_decrypted_notes_is_on_record(self):
        with_notes = [self.file(additional_notes=f"note {i}") for i in range(3)]
        without = self.file()
        before = len(self.notes_reads())
        r = self.node.get(f"/v1/error-reports/{with_notes[0]['id']}", token=self.qa)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["additional_notes"], "note 0")
        rows = self.notes_reads()
        self.assertEqual(len(rows), before + 1, rows)
        row = rows[0]
        self.assertEqual((row["actor"], row["target"], row["client_id"]),
                         ("qa-phi", str(with_notes[0]["id"]), "clinic-1"))
        self.assertEqual(row["detail"]["report_ids"], [with_notes[0]["id"]])
        # a report without notes shows none: nothing to put on record
        self.assertEqual(self.node.get(f"/v1/error-reports/{without['id']}", token=self.qa).status, 200)
        self.assertEqual(len(self.notes_reads()), before + 1)
        # a list is one row naming every report whose notes it shows
        r = self.node.get("/v1/error-reports?speaker_id=phi-1&limit=500", token=self.qa)
        self.assertEqual(r.status, 200, r)
        shown = {item["id"] for item in r.json()["items"] if item["additional_notes"] or item["context_notes"]}
        rows = self.notes_reads()
        self.assertEqual(len(rows), before + 2, rows)
        self.assertEqual(set(rows[0]["detail"]["report_ids"]), shown)
        self.assertTrue({rep["id"] for rep in with_notes} <= shown)
        self.assertNotIn(without["id"], rows[0]["detail"]["report_ids"])


    def session_row(self, sid, columns):
        return psql(self.node.database_url, f"SELECT {columns} FROM verification.sessions WHERE id = {sid}")

    def test_drafts_rest_encrypted_stay_out_of_the_log_and_are_purged_once_closed(self):
        # the drafts were created now, in InstaNote's clock
        now = datetime.datetime.now(datetime.timezone.utc)
        span = {"from": (now - datetime.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "to": (now + datetime.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")}

        def start():  # 503 while the pattern index is still loading after the node's start
            r = self.node.request("POST", "/v1/verification-sessions", {"speaker_id": "phi-1", **span}, token=self.qa)
            return None if r.status == 503 else r

        r = wait_for(start, 30, "no session could be started")
        self.assertEqual(r.status, 201, r)
        session = r.json()
        sid = session["id"]
        self.assertEqual(len(session["jobs"]), 2, session)
        self.assertIn(self.marker, session["jobs"][0]["original_draft"])
        self.assertIsNone(session["drafts_purged_at"])
        self.assertEqual(self.session_row(sid, "content IS NULL, content_token LIKE 'gAAAAA%', "
                                               f"strpos(content_token, '{self.marker}') = 0"), "t|t|t")
        # requests about the session the node refuses, then the owner's submit
        path = f"/v1/verification-sessions/{sid}"
        r = self.node.request("PUT", path + "/marks", {"marks": [{"correction_id": 999999, "verdict": "rectified"}]},
                              token=self.qa)
        self.assertEqual(r.status, 422, r)
        r = self.node.request("PUT", path + "/marks", {"residual_errors": [{"job_id": "j-0", "count": -1}]},
                              token=self.qa)
        self.assertEqual(r.status, 400, r)
        r = self.node.request("PUT", path + "/marks", {"residual_errors": [{"job_id": "j-0", "count": 1}]},
                              token=self.qa)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.node.get(path, token=self.qa).status, 200)
        r = self.node.request("POST", path + "/submit", {}, token=self.qa)
        self.assertEqual(r.status, 200, r)
        submitted = r.json()
        self.assertTrue(submitted["outcome"]["applied"], submitted)

        # closed and older than the retention: the drafts go, the session and its outcome stay
        wait_for(lambda: self.session_row(sid, "content_purged_at IS NOT NULL AND content IS NULL "
                                               "AND content_token IS NULL") == "t",
                 30, "the session's drafts were never purged")
        r = self.node.get(path, token=self.qa)
        self.assertEqual(r.status, 200, r)
        purged = r.json()
        self.assertEqual(purged["jobs"], [])
        self.assertIsNotNone(purged["drafts_purged_at"])
        self.assertEqual((purged["status"], purged["outcome"]), ("submitted", submitted["outcome"]))

        log = self.node.log_text()
        self.assertIn("/v1/verification-sessions", log)  # the log is being written at all
        self.assertNotIn(self.marker, log)

    def test_a_cache_that_would_outlive_the_drafts_retention_stops_the_node(self):
        env = {k: v for k, v in os.environ.items() if not k.startswith("SBM_")}
        with open(self.node.fernet_file) as f:
            env.update(SBM_AUTH_KEYS=json.dumps(self.node.keys), SBM_REPORTS_FERNET_KEY=f.read().strip())
        r = subprocess.run([SBM, "node", "--verification.draft-retention=30m", "--instanote.cache-ttl=31m"],
                           capture_output=True, text=True, timeout=30, env=env)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("instanote.cache-ttl", r.stderr)
        self.assertIn("verification.draft-retention", r.stderr)


class NotesRetention(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = servers_env()
        instanote = instanote_with_jobs(cls.srv, [])
        cls.node = Node(srv=cls.srv, extra_flags=[f"--instanote.url={instanote}",
                                                  "--reports.notes-retention=1s",
                                                  "--reports.notes-purge-interval=200ms"])
        cls.lead = cls.node.token("qa_lead", sub="lead-ret")
        r = cls.node.request("POST", "/v1/speakers", {"speaker_id": "ret-1", "client_id": "clinic-1"},
                             token=cls.lead)
        assert r.status == 201, r

    @classmethod
    def tearDownClass(cls):
        cls.node.stop()

    def test_notes_past_the_retention_are_purged_and_the_report_stays(self):
        body = report("ret-1", "j-" + uuid.uuid4().hex[:8], "metoprolal 25 mg", "metoprolol 25 mg",
                      additional_notes="old note", context_notes="old context")
        r = self.node.request("POST", "/v1/error-reports", body, token=self.lead)
        self.assertEqual(r.status, 201, r)
        rid = r.json()["id"]

        def purged():
            return psql(self.node.database_url,
                        f"SELECT count(*) FROM reports.error_reports WHERE id = {rid} "
                        "AND additional_notes_token IS NULL AND context_notes_token IS NULL").strip() == "1"

        wait_for(purged, 30, "the notes were never purged")
        r = self.node.get(f"/v1/error-reports/{rid}", token=self.lead)
        self.assertEqual(r.status, 200, r)
        got = r.json()
        self.assertIsNone(got["additional_notes"])
        self.assertIsNone(got["context_notes"])
        self.assertEqual(got["original_text"], "metoprolal 25 mg")


if __name__ == "__main__":
    unittest.main()

"""Issue 17 items 3 and 4 end to end: verification sessions over HTTP against a real node, seeded
InstaNote, PostgreSQL and Redis. Start (the schedule entry is taken), read, marks (422 for a
correction the session does not hold), a restart of the node in between (the session is read back
from PostgreSQL), submit by the owner or a qa_lead only, the same key replays, another key or none
is 409, pattern weights and the bucket moved exactly as marked, the submit on the audit log; a
session left idle expires, cannot be submitted, and its schedule entry is scheduled again."""
import subprocess
import unittest
import uuid

from sbm_node import SBM, Node, fresh_database, psql, servers_env
from test_reports import wait_for

FROM, TO = "2026-11-01", "2026-11-08"


def rows(url, sql):
    out = psql(url, f"SELECT string_agg(x, chr(30)) FROM ({sql}) q(x)")
    return [row.split("\x1f") for row in out.split("\x1e") if row]


def seed(srv, speakers=2):
    url = fresh_database(srv)
    seeded = subprocess.run([SBM, "seed-instanote", "--url", url, "--speakers", str(speakers), "--days", "6",
                             "--start", FROM, "--seed", "23"], capture_output=True, text=True)
    assert seeded.returncode == 0, seeded.stderr
    return url


def file_rectified_reports(node, instanote_url, token, speaker, client):
    """One report per systematic error of the speaker, marked rectified; their ids."""
    ids = []
    found = rows(instanote_url, f"""
        SELECT DISTINCT ON (e.error_id) e.job_id || chr(31) || e.draft_span || chr(31) ||
               e.reference_span || chr(31) || s.category
        FROM draft_errors e JOIN draft_jobs j USING (job_id)
        JOIN speaker_errors s ON s.error_id = e.error_id
        WHERE j.speaker_id = '{speaker}'
        ORDER BY e.error_id, j.created_at, e.job_id, e.ordinal""")
    for job, original, corrected, category in found:
        body = {"speaker_id": speaker, "client_id": client, "job_id": job, "original_text": original,
                "corrected_text": corrected, "error_categories": [category], "audio_quality": "good",
                "speaker_clarity": "clear", "background_noise": "low", "number_of_speakers": 1,
                "overlapping_speech": False, "requires_specialized_knowledge": False}
        r = node.request("POST", "/v1/error-reports", body, token=token)
        assert r.status == 201, (body, r)
        rid = r.json()["id"]
        saga_done(node, token, rid)
        r = node.request("PATCH", f"/v1/error-reports/{rid}", {"status": "rectified"}, token=token)
        assert r.status == 200, r
        saga_done(node, token, rid)
        ids.append(rid)
    return ids


def saga_done(node, token, rid):
    def done():
        r = node.get(f"/v1/error-reports/{rid}", token=token)
        return r.status == 200 and r.json()["saga"]["step"] == "done"
    wait_for(done, message=f"report {rid} never finished its saga")


def band(mean):
    if mean <= 2.0:
        return "no_touch"
    if mean <= 5.0:
        return "low_touch"
    if mean <= 10.0:
        return "medium_touch"
    return "high_touch"


class Sessions(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        srv = servers_env()
        cls.instanote_url = seed(srv)
        # Speakers start at no_touch with a window of 4, so a submit's residual counts move the
        # bucket at once (demotion is immediate) to the band of their mean.
        cls.node = Node(srv=dict(srv, INSTANOTE_URL=cls.instanote_url),
                        extra_flags=["--gateway.rate-limit=0", "--reports.relay-interval=200ms",
                                     "--speakers.initial-bucket=no_touch", "--speakers.window-size=4"])
        cls.lead = cls.node.token("qa_lead", sub="lead-s")
        cls.qa = cls.node.token("qa", sub="qa-s")
        cls.other_qa = cls.node.token("qa", sub="qa-other")
        cls.speakers = rows(cls.instanote_url,
                            "SELECT speaker_id || chr(31) || client_id FROM seed_speakers ORDER BY speaker_id")
        for speaker, client in cls.speakers:
            r = cls.node.request("POST", "/v1/speakers", {"speaker_id": speaker, "client_id": client},
                                 token=cls.lead)
            assert r.status == 201, r
        cls.speaker, cls.client = cls.speakers[0]
        cls.report_ids = file_rectified_reports(cls.node, cls.instanote_url, cls.qa, cls.speaker, cls.client)

    @classmethod
    def tearDownClass(cls):
        cls.node.stop()

    def start(self, speaker, token=None, key=None, expect=201, **extra):
        body = {"speaker_id": speaker, "from": FROM, "to": TO, **extra}
        headers = {"Idempotency-Key": key} if key else None
        r = self.node.request("POST", "/v1/verification-sessions", body, token=token or self.qa, headers=headers)
        self.assertEqual(r.status, expect, r)
        return r

    def schedule(self, speaker):
        r = self.node.get(f"/v1/verification-schedule?speaker_id={speaker}&limit=500", token=self.qa)
        self.assertEqual(r.status, 200, r)
        return r.json()["items"]

    def test_a_full_session(self):
        # The reports scheduled verifications of the speaker; starting a session takes them.
        self.assertTrue([e for e in self.schedule(self.speaker) if e["status"] == "scheduled"])
        key = str(uuid.uuid4())
        s = self.start(self.speaker, key=key, max_jobs=6).json()
        self.assertEqual(self.start(self.speaker, key=key, max_jobs=6).json()["id"], s["id"])  # replayed
        sid = s["id"]
        self.assertEqual(s["status"], "open")
        self.assertEqual(s["owner"], "qa-s")
        self.assertEqual(s["source"], "instanote")
        self.assertFalse(s["stale"])
        self.assertEqual(len(s["jobs"]), 6)
        self.assertFalse([e for e in self.schedule(self.speaker) if e["status"] == "scheduled"])
        self.assertTrue([e for e in self.schedule(self.speaker) if e["status"] == "taken"])
        corrections = [c for j in s["jobs"] for c in j["corrections"]]
        self.assertGreaterEqual(len(corrections), 4, s)
        for j in s["jobs"]:
            raw = j["original_draft"].encode()
            for c in j["corrections"]:
                self.assertEqual(raw[c["span"]["start"]:c["span"]["end"]].decode(), c["from"])
                self.assertIn(c["pattern_id"], self.report_ids)
                self.assertIsNone(c["mark"])
        ids = [c["correction_id"] for c in corrections]
        self.assertEqual(len(set(ids)), len(ids))
        self.assertEqual(self.node.get(f"/v1/verification-sessions/{sid}", token=self.qa).json()["jobs"], s["jobs"])

        # Marks for a correction the session does not hold: 422 naming it; nothing saved.
        r = self.node.request("PUT", f"/v1/verification-sessions/{sid}/marks",
                              {"marks": [{"correction_id": ids[0], "verdict": "rectified"},
                                         {"correction_id": max(ids) + 1, "verdict": "rectified"}]}, token=self.qa)
        self.assertEqual(r.status, 422, r)
        self.assertEqual(r.json()["field"], "marks[1].correction_id")
        r = self.node.request("PUT", f"/v1/verification-sessions/{sid}/marks",
                              {"residual_errors": [{"job_id": "no-such-job", "count": 1}]}, token=self.qa)
        self.assertEqual(r.status, 422, r)
        self.assertEqual(r.json()["field"], "residual_errors[0].job_id")
        r = self.node.request("PUT", f"/v1/verification-sessions/{sid}/marks",
                              {"marks": [{"correction_id": ids[0], "verdict": "maybe"}]}, token=self.qa)
        self.assertEqual(r.status, 400, r)
        self.assertEqual(self.node.get(f"/v1/verification-sessions/{sid}", token=self.qa).json()["marks"], [])

        # Every correction rectified, then (a later save) the first two not_rectified: the
        # commit order is then the others first, those two last.
        r = self.node.request("PUT", f"/v1/verification-sessions/{sid}/marks",
                              {"marks": [{"correction_id": i, "verdict": "rectified"} for i in ids]}, token=self.qa)
        self.assertEqual(r.status, 200, r)
        residuals = [{"job_id": j["job_id"], "count": max(1, j["words"] // 5)} for j in s["jobs"][:4]]
        r = self.node.request("PUT", f"/v1/verification-sessions/{sid}/marks",
                              {"marks": [{"correction_id": i, "verdict": "not_rectified"} for i in ids[:2]],
                               "residual_errors": residuals}, token=self.qa)
        self.assertEqual(r.status, 200, r)
        marks = r.json()["marks"]
        self.assertEqual([m["correction_id"] for m in marks], ids[2:] + ids[:2])

        # The node restarts: the session is read back from PostgreSQL, marks and counts with it.
        self.node.stop()
        self.node.start()
        after = self.node.get(f"/v1/verification-sessions/{sid}", token=self.qa)
        self.assertEqual(after.status, 200, after)
        after = after.json()
        self.assertEqual(after["marks"], marks)
        self.assertEqual(after["jobs"][0]["residual_errors"], residuals[0]["count"])
        self.assertEqual(after["jobs"][0]["corrections"], r.json()["jobs"][0]["corrections"])

        # What the submit must do, computed from the marks in commit order, one clamped step each.
        before = {pid: round(self.node.get(f"/v1/error-reports/{pid}", token=self.qa).json()["weight"] * 10)
                  for pid in self.report_ids}
        pattern_of = {c["correction_id"]: c["pattern_id"] for c in corrections}
        tenths, status = dict(before), {}
        for m in marks:
            pid = pattern_of[m["correction_id"]]
            tenths[pid] = max(0, min(10, tenths[pid] + (1 if m["verdict"] == "rectified" else -1)))
            status[pid] = m["verdict"]
        words = {j["job_id"]: j["words"] for j in s["jobs"]}
        rates = [x["count"] * 100.0 / words[x["job_id"]] for x in residuals]
        expected_bucket = band(sum(rates) / len(rates))
        self.assertNotEqual(expected_bucket, "no_touch")

        # Only the owner or a qa_lead may submit.
        r = self.node.request("POST", f"/v1/verification-sessions/{sid}/submit", {}, token=self.other_qa)
        self.assertEqual(r.status, 403, r)
        k1 = str(uuid.uuid4())
        first = self.node.request("POST", f"/v1/verification-sessions/{sid}/submit", {}, token=self.lead,
                                  headers={"Idempotency-Key": k1})
        self.assertEqual(first.status, 200, first)
        done = first.json()
        self.assertEqual(done["status"], "submitted")
        self.assertEqual(done["submitted_by"], "lead-s")
        self.assertTrue(done["outcome"]["applied"])
        self.assertEqual(done["outcome"]["bucket_before"], "no_touch")
        self.assertEqual(done["outcome"]["bucket_after"], expected_bucket)
        self.assertEqual(sorted(done["outcome"]["jobs_sampled"]), sorted(x["job_id"] for x in residuals))
        # The same key replays the first answer; another key, or none, is 409.
        again = self.node.request("POST", f"/v1/verification-sessions/{sid}/submit", {}, token=self.lead,
                                  headers={"Idempotency-Key": k1})
        self.assertEqual(again.status, 200, again)
        self.assertEqual(again.json()["outcome"], done["outcome"])
        for headers in ({"Idempotency-Key": str(uuid.uuid4())}, None):
            r = self.node.request("POST", f"/v1/verification-sessions/{sid}/submit", {}, token=self.lead,
                                  headers=headers)
            self.assertEqual(r.status, 409, r)
        r = self.node.request("PUT", f"/v1/verification-sessions/{sid}/marks",
                              {"marks": [{"correction_id": ids[0], "verdict": "rectified"}]}, token=self.qa)
        self.assertEqual(r.status, 409, r)

        # Weights and statuses exactly as marked; patterns without marks unchanged.
        for pid in self.report_ids:
            rep = self.node.get(f"/v1/error-reports/{pid}", token=self.qa).json()
            self.assertEqual(round(rep["weight"] * 10), tenths[pid], (pid, before[pid], rep["weight"]))
            self.assertAlmostEqual(rep["weight"], tenths[pid] / 10, places=9)
            if pid in status:
                self.assertEqual(rep["status"], status[pid])
        moved = {w["pattern_id"]: w["weight"] for w in done["outcome"]["weights"]}
        self.assertEqual({p: round(w * 10) for p, w in moved.items()}, {p: tenths[p] for p in status})

        # The bucket moved through the speaker actor: its history and a new schedule entry say so.
        spk = self.node.get(f"/v1/speakers/{self.speaker}", token=self.qa).json()
        self.assertEqual(spk["bucket"], expected_bucket)
        history = self.node.get(f"/v1/speakers/{self.speaker}/bucket-history", token=self.qa).json()
        self.assertTrue([h for h in history["entries"]
                         if h["previous_bucket"] == "no_touch" and h["new_bucket"] == expected_bucket], history)
        wait_for(lambda: [e for e in self.schedule(self.speaker) if e["status"] == "scheduled"],
                 message="the bucket change scheduled no verification")
        taken = [e for e in self.schedule(self.speaker) if e["status"] in ("taken", "done")]
        self.assertTrue(taken and all(e["status"] == "done" for e in taken), taken)

        # On the audit log, once.
        audit = self.node.get("/v1/audit?action=verification.submit&limit=50", token=self.lead).json()["items"]
        mine = [a for a in audit if a["target"] == f"verification-session:{sid}"]
        self.assertEqual(len(mine), 1, audit)
        self.assertEqual(mine[0]["actor"], "lead-s")

    def test_unknown_and_bad_requests(self):
        self.assertEqual(self.node.get("/v1/verification-sessions/987654321", token=self.qa).status, 404)
        self.assertEqual(self.node.get("/v1/verification-sessions/abc", token=self.qa).status, 400)
        for body, field in (({"from": FROM, "to": TO}, "speaker_id"),
                            ({"speaker_id": self.speaker, "to": TO}, "from"),
                            ({"speaker_id": self.speaker, "from": TO, "to": FROM}, "to"),
                            ({"speaker_id": self.speaker, "from": FROM, "to": TO, "max_jobs": 0}, "max_jobs"),
                            ({"speaker_id": self.speaker, "from": FROM, "to": TO, "error_types": "x"}, "error_types"),
                            ({"speaker_id": self.speaker, "from": FROM, "to": TO, "extra": 1}, "extra")):
            r = self.node.request("POST", "/v1/verification-sessions", body, token=self.qa)
            self.assertEqual(r.status, 400, (body, r))
            self.assertEqual(r.header("content-type"), "application/problem+json")
            self.assertEqual(r.json()["field"], field, (body, r))
        r = self.start("no-such-speaker", expect=404)
        self.assertEqual(r.header("content-type"), "application/problem+json")


class Expiry(unittest.TestCase):
    """A session left idle expires: it answers expired, refuses marks and submit with 409, and the
    schedule entry it took is scheduled again."""

    @classmethod
    def setUpClass(cls):
        srv = servers_env()
        cls.instanote_url = seed(srv)
        cls.node = Node(srv=dict(srv, INSTANOTE_URL=cls.instanote_url),
                        extra_flags=["--gateway.rate-limit=0", "--reports.relay-interval=200ms",
                                     "--verification.session-idle-timeout=2s",
                                     "--verification.session-sweep-interval=200ms"])
        cls.lead = cls.node.token("qa_lead", sub="lead-e")
        cls.qa = cls.node.token("qa", sub="qa-e")
        cls.speaker, cls.client = rows(cls.instanote_url,
                                       "SELECT speaker_id || chr(31) || client_id FROM seed_speakers ORDER BY speaker_id")[0]
        r = cls.node.request("POST", "/v1/speakers", {"speaker_id": cls.speaker, "client_id": cls.client},
                             token=cls.lead)
        assert r.status == 201, r
        file_rectified_reports(cls.node, cls.instanote_url, cls.qa, cls.speaker, cls.client)

    @classmethod
    def tearDownClass(cls):
        cls.node.stop()

    def statuses(self):
        r = self.node.get(f"/v1/verification-schedule?speaker_id={self.speaker}&limit=500", token=self.qa)
        return sorted({e["status"] for e in r.json()["items"]})

    def test_an_idle_session_expires_and_its_entry_is_scheduled_again(self):
        self.assertEqual(self.statuses(), ["scheduled"])
        r = self.node.request("POST", "/v1/verification-sessions",
                              {"speaker_id": self.speaker, "from": FROM, "to": TO, "max_jobs": 2}, token=self.qa)
        self.assertEqual(r.status, 201, r)
        sid = r.json()["id"]
        self.assertEqual(self.statuses(), ["taken"])
        # The sweep expires it (nobody reads it meanwhile, which would keep it alive).
        wait_for(lambda: self.statuses() == ["scheduled"], seconds=30,
                 message="the expired session's entry was never scheduled again")
        r = self.node.get(f"/v1/verification-sessions/{sid}", token=self.qa)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["status"], "expired")
        r = self.node.request("POST", f"/v1/verification-sessions/{sid}/submit", {}, token=self.qa,
                              headers={"Idempotency-Key": str(uuid.uuid4())})
        self.assertEqual(r.status, 409, r)
        self.assertIn("expired", r.json()["detail"])
        r = self.node.request("PUT", f"/v1/verification-sessions/{sid}/marks", {"marks": []}, token=self.qa)
        self.assertEqual(r.status, 409, r)


class InstaNoteDown(unittest.TestCase):
    """InstaNote unreachable with nothing cached: a session cannot start, and says so at once with
    503 and Retry-After (never a hang)."""

    def test_503_with_retry_after(self):
        srv = servers_env()
        node = Node(srv=dict(srv, INSTANOTE_URL="postgresql://sbm@127.0.0.1:1/instanote"),
                    extra_flags=["--gateway.rate-limit=0", "--instanote.connect-timeout=1s",
                                 "--instanote.retries=0"])
        try:
            lead = node.token("qa_lead", sub="lead-d")
            r = node.request("POST", "/v1/speakers", {"speaker_id": "down-1", "client_id": "c"}, token=lead)
            self.assertEqual(r.status, 201, r)
            r = node.request("POST", "/v1/verification-sessions",
                             {"speaker_id": "down-1", "from": FROM, "to": TO}, token=lead)
            self.assertEqual(r.status, 503, r)
            self.assertIsNotNone(r.header("retry-after"))
            self.assertEqual(r.header("content-type"), "application/problem+json")
        finally:
            node.stop()


if __name__ == "__main__":
    unittest.main()

"""Issue 14 end to end: writes that are safe to retry and work that is bounded. A report filed while
a lock holds its table is settled by retrying under the same Idempotency-Key (one row, the stored
201); a different request under the key is refused; a retry while the first still runs is told to
come back; every pin has its audit entry even when writing it failed at first; and a load far past
what the queues admit keeps memory bounded while every answer is a durable success, a refusal that
wrote nothing, or an unknown outcome that a retry under its key settles."""
import http.client
import json
import os
import subprocess
import threading
import time
import unittest
import uuid

from sbm_node import Node, psql, servers_env, wait_for

REFUSALS = {"urn:sbm:problem:overloaded", "urn:sbm:problem:deadline-exceeded",
            "urn:sbm:problem:unavailable", "urn:sbm:problem:timeout"}


def report(speaker, job, original="hyper tension", corrected="hypertension"):
    return {"speaker_id": speaker, "client_id": "clinic-1", "job_id": job,
            "original_text": original, "corrected_text": corrected,
            "error_categories": ["medical_terminology"], "audio_quality": "good",
            "speaker_clarity": "clear", "background_noise": "low", "number_of_speakers": 1,
            "overlapping_speech": False, "requires_specialized_knowledge": False}


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


class Retries(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = servers_env()
        cls.node = Node(srv=cls.srv, extra_flags=["--gateway.request-timeout=2s",
                                                  "--gateway.rate-limit=0",
                                                  "--reports.relay-interval=200ms",
                                                  "--speakers.relay-interval=100ms"])
        cls.lead = cls.node.token("qa_lead", sub="lead-ann")
        cls.qa = cls.node.token("qa", sub="qa-bob")
        for speaker in ("rt-a", "rt-pin"):
            r = cls.node.request("POST", "/v1/speakers", {"speaker_id": speaker, "client_id": "clinic-1"},
                                 token=cls.lead)
            assert r.status == 201, r

    @classmethod
    def tearDownClass(cls):
        cls.node.stop()

    def sql(self, text):
        return psql(self.node.database_url, text)

    def hold_lock(self, table, seconds):
        """A psql session holding a SHARE lock, as the issue's reproduction did."""
        proc = subprocess.Popen(["psql", "-X", "-q", self.node.database_url, "-c",
                                 f"BEGIN; LOCK TABLE {table} IN SHARE MODE; SELECT pg_sleep({seconds}); COMMIT;"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        name = table.split(".")[1]
        wait_for(lambda: self.sql(f"SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
                                  f"WHERE c.relname = '{name}' AND l.mode = 'ShareLock' AND l.granted") != "0",
                 10, "the lock was not taken")
        return proc

    def post_report(self, body, key):
        return self.node.request("POST", "/v1/error-reports", body, token=self.qa,
                                 headers={"Idempotency-Key": key})

    def test_a_report_filed_under_a_lock_is_settled_by_its_retry_under_the_same_key(self):
        key = "file-" + uuid.uuid4().hex
        body = report("rt-a", "job-locked")
        lock = self.hold_lock("reports.error_reports", 4)
        first = {}
        worker = threading.Thread(target=lambda: first.setdefault("r", self.post_report(body, key)))
        worker.start()
        # Sent while the first attempt still waits for the lock: told to come back, nothing done.
        wait_for(lambda: self.sql("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                                  "AND query ILIKE '%error_reports%'") != "0",
                 10, "the first attempt never reached the locked table")
        busy = self.post_report(body, key)
        self.assertEqual(busy.status, 409, busy)
        self.assertEqual(busy.json()["type"], "urn:sbm:problem:idempotency-in-progress")
        self.assertIsNotNone(busy.header("Retry-After"))
        worker.join()
        r = first["r"]
        # Answered at its deadline: a refusal that wrote nothing, or an unknown outcome; never a
        # success.
        self.assertEqual(r.status, 503, r)
        self.assertIn(r.json()["type"], REFUSALS | {"urn:sbm:problem:outcome-unknown"}, r)
        self.assertIsNotNone(r.header("Retry-After"))
        lock.wait(30)
        # A filing statement, once sent, runs to the connection's statement_timeout (it is its own
        # transaction), so it may still be finishing once the lock is gone: its key answers
        # "still running" until then, and the client retries as told.
        def settled():
            r = self.post_report(body, key)
            running = r.status == 409 and r.json()["type"] == "urn:sbm:problem:idempotency-in-progress"
            return None if running else r
        stored = wait_for(settled, 30, "the key stayed in progress")
        self.assertEqual(stored.status, 201, stored)
        again = self.post_report(body, key)
        self.assertEqual(again.status, 201, again)
        self.assertEqual(again.json()["id"], stored.json()["id"])
        self.assertEqual(again.json()["status"], "pending")
        self.assertEqual(self.sql("SELECT count(*) FROM reports.error_reports WHERE job_id = 'job-locked'"), "1")
        other = self.post_report(report("rt-a", "job-other"), key)
        self.assertEqual(other.status, 422, other)
        self.assertEqual(other.json()["type"], "urn:sbm:problem:idempotency-key-reused")
        self.assertEqual(self.sql("SELECT count(*) FROM reports.error_reports WHERE job_id = 'job-other'"), "0")

    def test_a_malformed_key_is_refused_before_anything_runs(self):
        r = self.node.request("POST", "/v1/error-reports", report("rt-a", "job-bad-key"), token=self.qa,
                              headers={"Idempotency-Key": "x" * 300})
        self.assertEqual(r.status, 400, r)
        self.assertEqual(r.json()["type"], "urn:sbm:problem:invalid-idempotency-key")
        self.assertEqual(self.sql("SELECT count(*) FROM reports.error_reports WHERE job_id = 'job-bad-key'"), "0")

    def test_every_pin_has_its_audit_entry_even_when_writing_it_failed_at_first(self):
        # The fault between the pin and its audit entry: the audit log refuses new rows for a while.
        # A sequence counts the refused attempts: nextval survives the rollback that RAISE causes.
        self.sql("CREATE SEQUENCE users.refused_pin_attempts")
        self.sql("CREATE FUNCTION users.refuse_pins() RETURNS trigger LANGUAGE plpgsql AS $$ "
                 "BEGIN IF NEW.action = 'bucket.pin' THEN PERFORM nextval('users.refused_pin_attempts'); "
                 "RAISE EXCEPTION 'audit is down'; END IF; "
                 "RETURN NEW; END $$")
        self.sql("CREATE TRIGGER refuse_pins BEFORE INSERT ON users.audit_log FOR EACH ROW "
                 "EXECUTE FUNCTION users.refuse_pins()")
        try:
            r = self.node.request("PUT", "/v1/speakers/rt-pin/bucket-pin",
                                  {"bucket": "no_touch", "reason": "trusted"}, token=self.lead,
                                  headers={"Idempotency-Key": "pin-" + uuid.uuid4().hex})
            self.assertEqual(r.status, 200, r)
            # The relay tries twice (and fails) meanwhile: its retry is seen, not assumed.
            wait_for(lambda: int(self.sql("SELECT CASE WHEN is_called THEN last_value ELSE 0 END "
                                          "FROM users.refused_pin_attempts")) >= 2,
                     30, "the relay never retried the audit entry")
            self.assertEqual(self.sql("SELECT count(*) FROM users.audit_log WHERE action = 'bucket.pin' "
                                      "AND target = 'rt-pin'"), "0")
        finally:
            self.sql("DROP TRIGGER refuse_pins ON users.audit_log")
            self.sql("DROP FUNCTION users.refuse_pins()")
            self.sql("DROP SEQUENCE users.refused_pin_attempts")
        wait_for(lambda: self.sql("SELECT count(*) FROM users.audit_log WHERE action = 'bucket.pin' "
                                  "AND target = 'rt-pin'") == "1", 60, "the pin was never audited")
        row = self.sql("SELECT actor || ' ' || (detail->>'bucket') FROM users.audit_log "
                       "WHERE action = 'bucket.pin' AND target = 'rt-pin'")
        self.assertEqual(row, "lead-ann no_touch")


class Overload(unittest.TestCase):
    """Many clients at once against small bounds: refused work is refused at once, memory levels
    off, and what was acknowledged is exactly what is stored."""

    def test_a_load_past_the_bounds_keeps_memory_bounded_and_loses_nothing(self):
        srv = servers_env()
        node = Node(srv=srv, extra_flags=["--gateway.rate-limit=0", "--gateway.request-timeout=2s",
                                          "--postgres.pool-size=2", "--postgres.max-queued=8",
                                          "--speakers.max-queued-per-speaker=4",
                                          "--speakers.max-queued=16"])
        try:
            self.run_load(node)
        finally:
            node.stop()

    def run_load(self, node):
        lead = node.token("qa_lead", sub="lead-load")
        qa = node.token("qa", sub="qa-load")
        speakers = [f"ld-{i}" for i in range(4)]
        for s in speakers:
            r = node.request("POST", "/v1/speakers", {"speaker_id": s, "client_id": "clinic-1"}, token=lead)
            self.assertEqual(r.status, 201, r)
        acknowledged = set()   # (speaker, job) answered 201
        unknown = []           # (speaker, job, key) answered outcome-unknown
        statuses = {}
        lock = threading.Lock()
        stop_at = time.time() + 8

        def client(n):
            conn = http.client.HTTPConnection("127.0.0.1", node.port, timeout=30)
            i = 0
            while time.time() < stop_at:
                i += 1
                speaker = speakers[(n + i) % len(speakers)]
                job = f"job-{n}-{i}"
                key = f"k-{n}-{i}"
                body = json.dumps({"job_id": job, "errors_per_100_words": (i % 10) / 2}).encode()
                conn.request("POST", f"/v1/speakers/{speaker}/quality-samples", body=body,
                             headers={"Authorization": "Bearer " + qa, "Content-Type": "application/json",
                                      "Idempotency-Key": key})
                r = conn.getresponse()
                payload = r.read()
                kind = str(r.status)
                if r.status != 201:
                    kind = json.loads(payload)["type"]
                with lock:
                    statuses[kind] = statuses.get(kind, 0) + 1
                    if r.status == 201:
                        acknowledged.add((speaker, job))
                    elif kind == "urn:sbm:problem:outcome-unknown":
                        unknown.append((speaker, job, key, body))
                    elif kind not in REFUSALS:
                        raise AssertionError(f"unexpected answer {r.status} {payload[:200]!r}")
            conn.close()

        before = rss_kib(node.proc.pid)
        samples = []
        threads = [threading.Thread(target=client, args=(n,)) for n in range(48)]
        for t in threads:
            t.start()
        while any(t.is_alive() for t in threads):
            samples.append(rss_kib(node.proc.pid))
            time.sleep(0.5)
        for t in threads:
            t.join()
        refused = sum(v for k, v in statuses.items() if k in REFUSALS)
        self.assertGreater(len(acknowledged), 0, statuses)
        self.assertGreater(refused, 0, f"the load never reached the bounds: {statuses}")
        # Memory levels off: the second half of the run holds no more than the first half's peak
        # plus a small margin (allocator noise), rather than growing with the backlog.
        half = len(samples) // 2
        first_peak, second_peak = max(samples[:half]), max(samples[half:])
        self.assertLess(second_peak, first_peak * 1.25 + 16 * 1024,
                        f"RSS kept growing: before {before} KiB, samples {samples}")
        # Unknown outcomes are settled by retrying under their key: the stored answer if the first
        # attempt committed, or the write done now if it did not; never a second row.
        for speaker, job, key, body in unknown:
            def settled():
                r = node.request("POST", f"/v1/speakers/{speaker}/quality-samples", raw_body=body,
                                 token=qa, headers={"Content-Type": "application/json", "Idempotency-Key": key})
                return r.status == 201
            wait_for(settled, 30, f"the retry of {key} never settled")
            acknowledged.add((speaker, job))
        stored = set()
        for line in psql(node.database_url, "SELECT speaker_id || ' ' || job_id FROM speakers.quality_samples").splitlines():
            speaker, job = line.split(" ", 1)
            stored.add((speaker, job))
        self.assertEqual(stored, acknowledged, f"{statuses}; {len(unknown)} unknown outcomes")


if __name__ == "__main__":
    unittest.main()

"""What runs once per cluster, with three real `sbm node` processes on one database: the outbox
relay runs on the one member holding its singleton (cluster.singletons), so every bucket change
is one entry on the Redis stream, one audit entry and one verification schedule entry whichever
node took the write; every report's saga runs its steps once (its rows are claimed one by one).
kill -9 of the holder moves the relay to a survivor once the holder's lease lapses, and the work
goes on there, each effect still once. A drained holder gives the relay away at once. A client
of any node's bucket-change feed (GET /v1/events/bucket-changes, a long poll) sees a change made
through another node exactly once.

Every wait is on a condition (Node.wait_until); nothing asserts a duration. ctest runs this file
alone (RUN_SERIAL), so loaded cores do not look like dead nodes."""
import collections
import concurrent.futures
import signal
import unittest
import uuid

from sbm_node import fresh_database, psql, servers_env
from test_cluster import members_of, start_three
from test_speakers import load_events_proto, stream_payloads

RELAY = "speakers.outbox-relay"


class OncePerCluster(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = servers_env()
        cls.db = fresh_database(cls.srv)
        cls.addresses, _, cls.nodes = start_three(cls.srv, cls.db, "s", ["--speakers.relay-interval=100ms"])
        cls.admin = cls.nodes[0].token("admin")
        cls.lead = cls.nodes[0].token("qa_lead", sub="lead-ann")
        cls.qa = cls.nodes[0].token("qa", sub="qa-bob")
        cls.tag = uuid.uuid4().hex[:8]  # Redis is shared with other runs: this run's speakers only
        cls.pb = load_events_proto()
        everyone = {a: "up" for a in cls.addresses}
        cls.nodes[0].wait_until(
            lambda: all({a: m["state"] for a, m in members_of(n, cls.admin).items()} == everyone
                        for n in cls.nodes), 60, "the three nodes never listed each other")

    @classmethod
    def tearDownClass(cls):
        for n in cls.nodes:
            n.stop()

    def live(self):
        return [i for i, n in enumerate(self.nodes) if n.proc is not None]

    def holder(self):
        """The index of the node whose live lease holds the relay, or None."""
        epoch = psql(self.db, "SELECT s.epoch FROM cluster.singletons s JOIN cluster.leases l USING (epoch) "
                              f"WHERE s.name = '{RELAY}' AND l.expires_at > now()")
        if not epoch:
            return None
        for i in self.live():
            if members_of(self.nodes[i], self.admin)[self.addresses[i]]["epoch"] == int(epoch):
                return i
        return None

    def wait_holder(self, message, not_=None):
        found = []

        def held():
            h = self.holder()
            if h is not None and h != not_:
                found.append(h)
                return True
            return False
        self.nodes[self.live()[0]].wait_until(held, 60, message)
        return found[-1]

    def relay_starts(self, i):
        return self.nodes[i].log_text().count("outbox relay starts on this node")

    def change_buckets(self, speakers):
        """Registers each speaker and pins it (one bucket change and one audit entry), each through
        another live node in turn; answers the outbox row ids of the changes."""
        live = self.live()
        for k, spk in enumerate(speakers):
            node = self.nodes[live[k % len(live)]]
            r = node.request("POST", "/v1/speakers", {"speaker_id": spk, "client_id": "clinic-1"},
                             token=self.lead, headers={"Idempotency-Key": "reg-" + spk})
            self.assertIn(r.status, (200, 201), r)
            r = node.request("PUT", f"/v1/speakers/{spk}/bucket-pin", {"bucket": "low_touch", "reason": "trial"},
                             token=self.lead, headers={"Idempotency-Key": "pin-" + spk})
            self.assertEqual(r.status, 200, r)
        ids = psql(self.db, "SELECT id FROM speakers.outbox WHERE topic = 'speaker.bucket.changed' AND "
                            "payload->>'speaker_id' = ANY('{" + ",".join(speakers) + "}')").split()
        self.assertEqual(len(ids), len(speakers))
        return ids

    def assert_each_effect_once(self, speakers):
        """Every outbox row of these speakers reached each target, and each target holds it once."""
        names = "'{" + ",".join(speakers) + "}'"
        self.nodes[self.live()[0]].wait_until(
            lambda: psql(self.db, "SELECT count(*) FROM speakers.outbox WHERE payload->>'speaker_id' = ANY("
                                  f"{names}) AND ((topic = 'speaker.bucket.changed' AND (delivered_at IS NULL "
                                  "OR stream_published_at IS NULL)) OR (topic = 'audit.record' AND audited_at IS NULL))")
            == "0", 60, "the outbox was never relayed")
        events = psql(self.db, "SELECT id FROM speakers.outbox WHERE topic = 'speaker.bucket.changed' AND "
                               f"payload->>'speaker_id' = ANY({names})").split()
        audits = psql(self.db, "SELECT id FROM speakers.outbox WHERE topic = 'audit.record' AND "
                               f"payload->>'speaker_id' = ANY({names})").split()
        self.assertEqual(len(events), len(speakers))
        self.assertEqual(len(audits), len(speakers))
        # The stream: external consumers see each change once (XADD has no key to refuse a repeat).
        on_stream = collections.Counter()
        for payload in stream_payloads(self.srv):
            m = self.pb.BucketChanged()
            m.ParseFromString(payload)
            if m.speaker_id in speakers:
                on_stream[str(m.event_id)] += 1
        self.assertEqual(dict(on_stream), {e: 1 for e in events})
        scheduled = psql(self.db, "SELECT source_event_id FROM verification.schedule WHERE speaker_id = ANY("
                                  f"{names})").split()
        self.assertEqual(sorted(scheduled), sorted(events))
        audited = psql(self.db, "SELECT source_key FROM users.audit_log WHERE source_key = ANY('{" +
                                ",".join(f"speakers.outbox:{a}" for a in audits) + "}')").split()
        self.assertEqual(sorted(audited), sorted(f"speakers.outbox:{a}" for a in audits))

    def test_1_the_relay_runs_on_one_member_and_each_change_is_relayed_once(self):
        h = self.wait_holder("nobody ever held the relay")
        self.nodes[h].wait_until(lambda: self.relay_starts(h) == 1, 30, "the holder never started the relay")
        for i in self.live():
            if i != h:
                self.assertEqual(self.relay_starts(i), 0, f"node {i} runs the relay too")
        speakers = [f"one-{self.tag}-{k}" for k in range(9)]
        self.change_buckets(speakers)
        self.assert_each_effect_once(speakers)

    def feed(self, i, after=0, wait=None):
        path = "/v1/events/bucket-changes?limit=1000"
        if after:
            path += f"&after={after}"
        if wait:
            path += f"&wait={wait}"
        r = self.nodes[i].get(path, token=self.qa)
        self.assertEqual(r.status, 200, r)
        return r.json()

    def test_1b_a_listener_on_any_node_sees_a_change_made_through_another_once(self):
        h = self.wait_holder("nobody held the relay")
        writer, listener = [i for i in self.live() if i != h][:2]
        start = {i: self.feed(i)["next"] for i in (listener, h)}
        spk = f"feed-{self.tag}"
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            # Waiting already when the change is made: the answer comes when the listener's node
            # hears of it, relayed by the holder (a third node) over BASP.
            waiting = pool.submit(self.feed, listener, start[listener], 9)
            event_ids = self.change_buckets([spk])
            first = waiting.result()
        self.assertFalse(first["gap"], first)
        for i in (listener, h):
            seen, cursor = [], start[i]
            while True:
                page = self.feed(i, cursor, wait=1)
                if not page["events"]:
                    break
                seen += [e for e in page["events"] if e["speaker_id"] == spk]
                cursor = page["next"]
            self.assertEqual([str(e["event_id"]) for e in seen], event_ids, f"node {i}")
            self.assertEqual((seen[0]["previous_bucket"], seen[0]["new_bucket"]), ("high_touch", "low_touch"))
        self.assertIn(spk, [e["speaker_id"] for e in first["events"]])

    def test_2_every_reports_saga_runs_its_steps_once(self):
        live = self.live()
        spk = f"rep-{self.tag}"
        r = self.nodes[live[0]].request("POST", "/v1/speakers", {"speaker_id": spk, "client_id": "clinic-1"},
                                        token=self.lead)
        self.assertEqual(r.status, 201, r)
        ids = []
        for k in range(9):
            body = {"speaker_id": spk, "client_id": "clinic-1", "job_id": f"job-{k}",
                    "original_text": f"hyper tension {k}", "corrected_text": f"hypertension {k}",
                    "error_categories": ["medical_terminology"], "audio_quality": "good",
                    "speaker_clarity": "clear", "background_noise": "low", "number_of_speakers": 1,
                    "overlapping_speech": False, "requires_specialized_knowledge": False}
            r = self.nodes[live[k % len(live)]].request("POST", "/v1/error-reports", body, token=self.qa)
            self.assertEqual(r.status, 201, r)
            ids.append(str(r.json()["id"]))
        in_list = "'{" + ",".join(ids) + "}'"
        self.nodes[live[0]].wait_until(
            lambda: psql(self.db, "SELECT count(*) FROM reports.report_saga WHERE step = 'done' AND "
                                  f"report_id::text = ANY({in_list})") == str(len(ids)),
            120, "a report's saga never finished")
        steps = psql(self.db, "SELECT report_id || ':' || string_agg(step, ',' ORDER BY id) FROM reports.saga_log "
                              f"WHERE report_id::text = ANY({in_list}) AND step <> 'retry' GROUP BY report_id").split()
        self.assertEqual(sorted(steps), sorted(f"{i}:store,index,notify,schedule" for i in ids))
        scheduled = psql(self.db, "SELECT source_key FROM verification.schedule WHERE speaker_id = "
                                  f"'{spk}'").split()
        self.assertEqual(sorted(scheduled), sorted(f"report:{i}" for i in ids))

    def test_3_kill_9_of_the_holder_moves_the_relay_and_the_work_goes_on(self):
        h = self.wait_holder("nobody held the relay")
        self.nodes[h].stop(signal.SIGKILL)
        survivors = {self.addresses[i]: "up" for i in self.live()}
        for i in self.live():
            self.nodes[i].wait_until(
                lambda: {a: m["state"] for a, m in members_of(self.nodes[i], self.admin).items()} == survivors,
                60, "the killed holder's lease never lapsed")
        moved = self.wait_holder("no survivor took the relay", not_=h)
        self.nodes[moved].wait_until(lambda: self.relay_starts(moved) >= 1, 30, "the new holder never started it")
        speakers = [f"after-{self.tag}-{k}" for k in range(6)]
        self.change_buckets(speakers)
        self.assert_each_effect_once(speakers)

    def test_4_a_drained_holder_gives_the_relay_to_another_member(self):
        h = self.wait_holder("nobody held the relay")
        # The tests run in order on one cluster of three: after the kill of test 3, two are left.
        self.assertGreaterEqual(len(self.live()), 2, "a drain needs another live member to take the relay")
        r = self.nodes[h].request("POST", "/v1/cluster/drain", token=self.admin)
        self.assertEqual(r.status, 200, r)
        moved = self.wait_holder("the drained holder kept the relay", not_=h)
        self.nodes[h].wait_until(lambda: "outbox relay stops on this node" in self.nodes[h].log_text(), 30,
                                 "the drained node never stopped its relay")
        speakers = [f"drained-{self.tag}-{k}" for k in range(4)]
        self.change_buckets(speakers)
        self.assert_each_effect_once(speakers)
        self.assertGreaterEqual(self.relay_starts(moved), 1)


if __name__ == "__main__":
    unittest.main()

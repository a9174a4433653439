"""A cluster of real `sbm node` processes on loopback against one throwaway database: they join
through their seeds and each lists every member; any node answers for any speaker, each speaker
living on the owner rendezvous hashing picks over the members (its ownership row names that
owner's epoch); a 4th node takes exactly the speakers it wins (about a quarter) and no others
move; `sbm cluster drain` empties a node while it still answers; a clean stop gives the lease
back; kill -9 of a node is seen at once, its lease lapses, it leaves the member list and the
survivors take its speakers; every acknowledged sample exists exactly once throughout. The killed
node restarts with a new epoch, and a write under its old epoch is refused by the database. Also:
a node refuses a half configured cluster TLS, and with TLS a node without a certificate of the
cluster's CA cannot join.

Every wait is on a condition (Node.wait_until); nothing asserts a duration. ctest runs this file
alone (RUN_SERIAL), so loaded cores do not look like dead nodes."""
import os
import signal
import subprocess
import tempfile
import threading
import time
import unittest
import uuid

from sbm_node import SBM, Node, free_port, fresh_database, psql, servers_env


def cluster_of(node, token):
    return node.get("/v1/status", token=token).json()["cluster"]


def members_of(node, token):
    return {m["address"]: m for m in cluster_of(node, token)["members"]}


def start_member(srv, database_url, keys, port, seeds, name, extra=()):
    return Node(srv=srv, database_url=database_url, keys=keys,
                extra_flags=[f"--cluster.port={port}", f"--cluster.seeds={seeds}", f"--node.name={name}",
                             *extra])


def start_three(srv, database_url, prefix, extra=()):
    """Three members on free ports, the first two the seeds, sharing one key set: (addresses,
    seeds, nodes), nodes started in address order (named prefix0..prefix2)."""
    ports = [free_port() for _ in range(3)]
    addresses = [f"127.0.0.1:{p}" for p in ports]
    seeds = ",".join(addresses[:2])
    nodes, keys = [], None
    for i, port in enumerate(ports):
        node = start_member(srv, database_url, keys, port, seeds, f"{prefix}{i}", extra)
        keys = node.keys
        nodes.append(node)
    return addresses, seeds, nodes


# Rendezvous hashing as runtime/domain/placement.cpp computes it (FNV-1a, then SplitMix64's
# finaliser; ties to the smaller name), so the test knows where each speaker must live.
MASK = 2 ** 64 - 1


def _fnv1a(h, data):
    for c in data:
        h = ((h ^ c) * 0x100000001b3) & MASK
    return h


def _mix(z):
    z = (z + 0x9e3779b97f4a7c15) & MASK
    z = ((z ^ (z >> 30)) * 0xbf58476d1ce4e5b9) & MASK
    z = ((z ^ (z >> 27)) * 0x94d049bb133111eb) & MASK
    return z ^ (z >> 31)


def owner_of(members, speaker):
    def score(m):
        return _mix(_fnv1a(_fnv1a(0xcbf29ce484222325, m.encode()) ^ 0xff, speaker.encode()))
    return max(sorted(members), key=score)


def speakers_where(prefix, count, wanted):
    """`count` speaker names sharing a fresh tag, drawn again until `wanted(names)` holds: the
    addresses are free ports, so placement differs each run, and a test that needs some speakers
    on a given member must not depend on luck for it."""
    for _ in range(1000):
        tag = uuid.uuid4().hex[:6]
        names = [f"{prefix}-{tag}-{k}" for k in range(count)]
        if wanted(names):
            return names
    raise AssertionError(f"no {count} speaker names satisfy the placement this test needs")


def sql_error(url, sql):
    """Runs SQL expected to fail; returns psql's error text."""
    r = subprocess.run(["psql", "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", url, "-c", sql],
                       capture_output=True, text=True)
    assert r.returncode != 0, f"expected the database to refuse: {sql}"
    return r.stderr


class ClusterCase(unittest.TestCase):
    """Three members on one fresh database, and what the tests ask of them."""
    flags = ()  # more command-line flags for every member a test class starts
    @classmethod
    def setUpClass(cls):
        cls.srv = servers_env()
        cls.db = fresh_database(cls.srv)
        cls.cluster_ports = [free_port() for _ in range(3)]
        cls.addresses = [f"127.0.0.1:{p}" for p in cls.cluster_ports]
        # Two seeds, the node's own address among them for the first: any reachable one will do.
        cls.seeds = ",".join(cls.addresses[:2])
        cls.nodes = []
        keys = None
        for i, port in enumerate(cls.cluster_ports):
            node = start_member(cls.srv, cls.db, keys, port, cls.seeds, f"n{i}", cls.flags)
            keys = node.keys  # one keyring, so one token serves every node
            cls.nodes.append(node)
        cls.admin = cls.nodes[0].token("admin")
        cls.lead = cls.nodes[0].token("qa_lead")
        cls.qa = cls.nodes[0].token("qa")

    @classmethod
    def tearDownClass(cls):
        for n in cls.nodes:
            n.stop()

    def epoch_of(self, i):
        return cluster_of(self.nodes[i], self.admin)["epoch"]

    def wait_members(self, observers, expected, message):
        """Until each observer lists exactly `expected` (address -> state) as its members."""
        def seen():
            return all({a: m["state"] for a, m in members_of(self.nodes[o], self.admin).items()} == expected
                       for o in observers)
        self.nodes[observers[0]].wait_until(seen, 60, message)

    def sample(self, node, speaker, job, key=None, timeout=30):
        return node.request("POST", f"/v1/speakers/{speaker}/quality-samples",
                            body={"job_id": job, "errors_per_100_words": 1.5}, token=self.qa,
                            headers={"Idempotency-Key": key} if key else None, timeout=timeout)

    # --- helpers ---------------------------------------------------------------------------

    def sbm(self, *args, token=None):
        env = {k: v for k, v in os.environ.items() if not k.startswith("SBM_")}
        env["SBM_TOKEN"] = token or self.admin
        return subprocess.run([SBM, *args], capture_output=True, text=True, env=env, timeout=60)

    def retried(self, node, method, path, token, key, body=None):
        """Sends until the answer is not a retryable 503 (a speaker between owners), always with the
        same Idempotency-Key, as a client does."""
        seen = {}

        def answered():
            seen["r"] = node.request(method, path, body=body, token=token, headers={"Idempotency-Key": key})
            return seen["r"].status != 503
        node.wait_until(answered, 60, f"{method} {path} kept answering 503: {seen.get('r')}")
        return seen["r"]

    def register_all(self, node, speakers):
        for s in speakers:
            r = self.retried(node, "POST", "/v1/speakers", self.lead, f"reg-{s}",
                             {"speaker_id": s, "client_id": "c1", "display_name": "Dr. A"})
            self.assertEqual(r.status, 201, r)

    def write_all(self, node, speakers, job):
        for s in speakers:
            r = self.retried(node, "POST", f"/v1/speakers/{s}/quality-samples", self.qa, f"{job}-{s}",
                             {"job_id": job, "errors_per_100_words": 1.5})
            self.assertEqual(r.status, 201, (s, job, r))

    def assert_samples(self, speakers, jobs):
        rows = psql(self.db, "SELECT speaker_id || ' ' || string_agg(job_id, ',' ORDER BY job_id) "
                             "FROM speakers.quality_samples GROUP BY speaker_id")
        got = dict(line.split(" ") for line in rows.splitlines() if line)
        self.assertEqual({s: got.get(s) for s in speakers}, {s: ",".join(sorted(jobs)) for s in speakers})

    def owner_rows(self, speakers):
        rows = psql(self.db, "SELECT speaker_id || ' ' || epoch FROM cluster.speaker_owners")
        got = dict(line.split(" ") for line in rows.splitlines() if line)
        return {s: int(got[s]) if s in got else None for s in speakers}

    def rows_after_touch(self, speakers, placed):
        """Reads every speaker through the first live node (activating it on its owner) and
        returns the rows that placement says must result."""
        node = next(n for n in self.nodes if n.proc is not None)
        for s in speakers:
            r = self.retried(node, "GET", f"/v1/speakers/{s}", self.qa, f"read-{s}")
            self.assertEqual(r.status, 200, r)
        return placed

    @staticmethod
    def placed(speakers, members, epoch_at):
        return {s: epoch_at[owner_of(members, s)] for s in speakers}

    def passivations(self, node):
        text = node.get("/metrics", token=self.admin).body
        return int(sum(float(line.split()[-1]) for line in text.splitlines()
                       if line.startswith("sbm_speaker_passivations_total")))


class ThreeNodes(ClusterCase):
    def test_cluster_lifecycle(self):
        everyone = {a: "up" for a in self.addresses}
        self.wait_members([0, 1, 2], everyone, "the three nodes never listed each other")
        # A member learned from gossip shows its lease once this node's next renewal has read it.
        self.nodes[0].wait_until(
            lambda: all(m["lease_age_ms"] is not None for i in range(3)
                        for m in cluster_of(self.nodes[i], self.admin)["members"]),
            60, "a member's lease was never read")
        epochs = [self.epoch_of(i) for i in range(3)]
        self.assertEqual(len(set(epochs)), 3, epochs)
        self.assertTrue(all(e > 0 for e in epochs), epochs)
        for i in range(3):
            c = cluster_of(self.nodes[i], self.admin)
            self.assertEqual(c["state"], "member")
            self.assertEqual(c["address"], self.addresses[i])
            me = [m for m in c["members"] if m["self"]]
            self.assertEqual([m["address"] for m in me], [self.addresses[i]])
            for m in c["members"]:
                self.assertIsNotNone(m["lease_age_ms"], m)
                self.assertGreaterEqual(m["lease_expires_in_ms"], -1000, m)
                self.assertFalse(m["draining"], m)

        # Routing: each speaker registered through one node and written through every node lives
        # on its owner only, and every write is applied once.
        run = uuid.uuid4().hex[:6]
        speakers = [f"spk-{run}-{i}" for i in range(48)]
        for i, s in enumerate(speakers):
            r = self.retried(self.nodes[i % 3], "POST", "/v1/speakers", self.lead, f"reg-{s}",
                             {"speaker_id": s, "client_id": "c1", "display_name": "Dr. A"})
            self.assertEqual(r.status, 201, r)
        for n in range(3):
            self.write_all(self.nodes[n], speakers, f"job-{n}")
        epoch_at = dict(zip(self.addresses, epochs))
        self.assertEqual(self.owner_rows(speakers), self.placed(speakers, self.addresses, epoch_at))
        for n in range(3):
            for s in speakers[:6]:
                v = self.nodes[n].get(f"/v1/speakers/{s}", token=self.qa)
                self.assertEqual((v.status, v.json()["counts"]["samples_total"]), (200, 3), v)
        self.assert_samples(speakers, ["job-0", "job-1", "job-2"])

        # Each member's speaker count, as every node reports it after its next lease reading.
        def counts_match():
            rows = self.owner_rows(speakers)
            want = {a: sum(1 for e in rows.values() if e == epoch_at[a]) for a in self.addresses}
            return {a: m["speakers"] for a, m in members_of(self.nodes[2], self.admin).items()} == want
        self.nodes[2].wait_until(counts_match, 60, "the members' speaker counts never matched the rows")

        # The operator's command shows the same members and their counts.
        out = self.sbm("cluster", "status", "--node", f"http://127.0.0.1:{self.nodes[1].port}")
        self.assertEqual(out.returncode, 0, out.stderr)
        for a in self.addresses:
            self.assertIn(a, out.stdout)
        self.assertIn("SPEAKERS", out.stdout)
        headings = [line for line in out.stdout.splitlines() if line and line == line.upper() and line[0] != " "]
        self.assertEqual(headings[:2], ["NODE", "CLUSTER"], out.stdout)
        self.assertNotIn("DEPENDENCIES", headings)

        # A 4th node: exactly the speakers it wins move to it (about a quarter), no other speaker
        # is handed off, and nothing is applied twice.
        port = free_port()
        self.addresses.append(f"127.0.0.1:{port}")
        self.nodes.append(start_member(self.srv, self.db, self.nodes[0].keys, port, self.seeds, "n3"))
        everyone = {a: "up" for a in self.addresses}
        self.wait_members([0, 1, 2, 3], everyone, "the 4th node never joined")
        epoch_at[self.addresses[3]] = self.epoch_of(3)
        before = self.placed(speakers, self.addresses[:3], epoch_at)
        after = self.placed(speakers, self.addresses, epoch_at)
        moved = {s for s in speakers if before[s] != after[s]}
        self.assertTrue(all(after[s] == epoch_at[self.addresses[3]] for s in moved))
        self.assertTrue(0 < len(moved) < len(speakers) / 2, len(moved))
        self.nodes[0].wait_until(lambda: self.owner_rows(speakers) == self.rows_after_touch(speakers, after),
                                 60, "the moved speakers never settled on the 4th node")
        self.assertEqual(sum(self.passivations(self.nodes[n]) for n in range(3)), len(moved))
        self.write_all(self.nodes[3], speakers, "job-3")
        self.assert_samples(speakers, ["job-0", "job-1", "job-2", "job-3"])
        # A moved speaker is not served from its old owner's board of published views: read through
        # any old node, it shows the write its new owner took.
        for n in range(3):
            for s in sorted(moved):
                v = self.nodes[n].get(f"/v1/speakers/{s}", token=self.qa)
                self.assertEqual((v.status, v.json()["counts"]["samples_total"]), (200, 4), (n, s, v))

        # Drain node 1: only an admin may; then it owns nothing but still answers.
        refused = self.sbm("cluster", "drain", "--node", f"http://127.0.0.1:{self.nodes[1].port}", token=self.lead)
        self.assertEqual(refused.returncode, 3, refused.stderr)
        out = self.sbm("cluster", "drain", "--node", f"http://127.0.0.1:{self.nodes[1].port}")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("draining", out.stdout)
        self.nodes[0].wait_until(
            lambda: all(members_of(self.nodes[n], self.admin)[self.addresses[1]]["draining"] for n in (0, 2, 3)),
            60, "the others never saw node 1 draining")
        owners = [a for i, a in enumerate(self.addresses) if i != 1]
        drained = self.placed(speakers, owners, epoch_at)
        self.write_all(self.nodes[1], speakers, "job-4")
        self.nodes[0].wait_until(lambda: self.owner_rows(speakers) == self.rows_after_touch(speakers, drained),
                                 60, "the drained node's speakers never moved")
        self.assertEqual(psql(self.db, f"SELECT count(*) FROM cluster.speaker_owners WHERE epoch = {epochs[1]}"), "0")

        # A clean stop gives the lease back at once (the log says so before the process ends).
        self.assertEqual(self.nodes[1].stop(), 0)
        self.assertIn(f"lease of epoch {epochs[1]} released", self.nodes[1].log_text())
        self.assertEqual(psql(self.db, f"SELECT count(*) FROM cluster.leases WHERE epoch = {epochs[1]} "
                                       "AND expires_at > now()"), "0")
        survivors = [self.addresses[0], self.addresses[2], self.addresses[3]]
        self.wait_members([0, 2, 3], {a: "up" for a in survivors}, "the stopped node never left the list")

        # kill -9 of node 0: the others see it unreachable (BASP), then gone once its lease lapsed;
        # its speakers answer again from the survivors, every acknowledged write once.
        self.nodes[0].stop(signal.SIGKILL)
        self.wait_members([2, 3], dict({a: "up" for a in survivors}, **{self.addresses[0]: "unreachable"}),
                          "the survivors never saw the killed node unreachable")
        self.wait_members([2, 3], {a: "up" for a in survivors[1:]}, "the killed node's lease never lapsed")
        self.assertEqual(psql(self.db, f"SELECT count(*) FROM cluster.leases WHERE epoch = {epochs[0]} "
                                       "AND expires_at > now()"), "0")
        self.write_all(self.nodes[2], speakers, "job-5")
        self.assert_samples(speakers, ["job-0", "job-1", "job-2", "job-3", "job-4", "job-5"])
        last = self.placed(speakers, survivors[1:], epoch_at)
        self.nodes[2].wait_until(lambda: self.owner_rows(speakers) == self.rows_after_touch(speakers, last),
                                 60, "the killed node's speakers never settled on the survivors")

        # A write under the dead epoch is refused by the database itself, and changes nothing.
        speaker = speakers[0]
        err = sql_error(self.db, "BEGIN; "
                        f"UPDATE speakers.speakers SET display_name = 'stale' WHERE speaker_id = '{speaker}'; "
                        f"SELECT cluster.fence_speaker('{speaker}', {epochs[0]}); COMMIT;")
        self.assertIn(f"the lease of epoch {epochs[0]} is not held", err)
        self.assertEqual(psql(self.db, f"SELECT display_name FROM speakers.speakers WHERE speaker_id = '{speaker}'"),
                         "Dr. A")
        # A live node that does not hold an active speaker's row is refused too (SB002).
        holder = self.owner_rows([speaker])[speaker]
        other = epoch_at[self.addresses[3]] if holder == epoch_at[self.addresses[2]] else epoch_at[self.addresses[2]]
        self.assertIn("owned by the live lease", sql_error(
            self.db, f"SELECT cluster.fence_speaker('{speaker}', {other})"))

        # The killed node restarts with a new epoch and every member lists it again.
        self.nodes[0].start()
        self.wait_members([0, 2, 3], {a: "up" for a in survivors}, "the restarted node never rejoined")
        self.assertGreater(self.epoch_of(0), max(epoch_at.values()))


class FrozenNode(ClusterCase):
    """SIGSTOP of one member under a load of keyed writes through the others: BASP sees it
    unreachable, its speakers wait until its lease lapses (the lease decides, not the missed
    heartbeats), then the survivors serve them. Woken by SIGCONT it finds its lease gone, gives up
    what it held, writes nothing under the old epoch and rejoins with a new one."""
    # A longer lease than the default 3s: the frozen node is seen unreachable after about a second
    # (BASP heartbeats) and its lease lapses seconds later, a window a loaded machine cannot miss.
    flags = ("--cluster.lease-ttl=6s",)

    def test_a_frozen_node_loses_its_speakers_and_cannot_write_for_them(self):
        everyone = {a: "up" for a in self.addresses}
        self.wait_members([0, 1, 2], everyone, "the three nodes never listed each other")
        epoch_at = {a: self.epoch_of(i) for i, a in enumerate(self.addresses)}
        frozen, old_epoch = self.nodes[2], epoch_at[self.addresses[2]]
        run = uuid.uuid4().hex[:6]
        speakers = speakers_where("frz", 36, lambda names: any(
            owner_of(self.addresses, s) == self.addresses[2] for s in names))
        self.register_all(self.nodes[0], speakers)
        # Every speaker active on its owner, the frozen node's among them.
        self.write_all(self.nodes[0], speakers, "warm")
        theirs = [s for s in speakers if owner_of(self.addresses, s) == self.addresses[2]]
        self.assertTrue(theirs)
        self.assertEqual(set(self.owner_rows(theirs).values()), {old_epoch})

        stop = threading.Event()
        acked, refused = [], []
        loads = [threading.Thread(target=self.load, args=(self.nodes[n], speakers, f"load{n}-{run}", acked,
                                                          refused, stop))
                 for n in (0, 1)]
        for t in loads:
            t.start()
        try:
            self.wait_for(lambda: len(acked) >= 20, "the load never got going")
            os.kill(frozen.proc.pid, signal.SIGSTOP)
            try:
                # A keyed write of one of its speakers sent to the frozen node itself: the kernel
                # queues it, and the node reads it only when it wakes, long after its lease lapsed.
                probe = {}
                probe_thread = threading.Thread(target=lambda: probe.update(r=self.sample(
                    frozen, theirs[0], f"probe-{run}", key=f"probe-{run}", timeout=300)))
                probe_thread.start()
                survivors = {a: "up" for a in self.addresses[:2]}
                self.wait_members([0, 1], dict(survivors, **{self.addresses[2]: "unreachable"}),
                                  "the survivors never saw the frozen node unreachable")
                # Its lease still runs: a read of one of its speakers waits on the node that took it
                # until the lease lapses and the speaker moves, instead of being refused meanwhile.
                held = self.nodes[1].get(f"/v1/speakers/{theirs[-1]}", token=self.qa)
                self.assertEqual(held.status, 200, held)
                self.wait_members([0, 1], survivors, "the frozen node's lease never lapsed")
                # While it is still frozen its speakers answer from the survivors, owned by them.
                self.write_all(self.nodes[1], theirs, "moved")
                rows = self.owner_rows(theirs)
                self.assertTrue(all(rows[s] in (epoch_at[self.addresses[0]], epoch_at[self.addresses[1]])
                                    for s in theirs), rows)
                self.assertIsNone(probe.get("r"))
            finally:
                os.kill(frozen.proc.pid, signal.SIGCONT)
            probe_thread.join(60)
            self.assertFalse(probe_thread.is_alive())
            # It learns that its lease lapsed and takes a new epoch; every member lists it again.
            frozen.wait_until(lambda: f"the lease of epoch {old_epoch} lapsed" in frozen.log_text(), 60,
                              "the woken node never noticed it lost its lease")
            self.wait_members([0, 1, 2], everyone, "the woken node never rejoined")
            new_epoch = self.epoch_of(2)
            self.assertGreater(new_epoch, old_epoch)
            rejoined = len(acked)
            self.wait_for(lambda: len(acked) >= rejoined + 20, "the load stalled after the rejoin")
        finally:
            stop.set()
            for t in loads:
                t.join(120)
        # Nothing was ever written under the old epoch once it had lapsed: its writes were refused
        # (the probe's answer was not a success of the old owner), and no row names it.
        self.assertNotEqual(probe["r"].status, 201, probe["r"])
        self.assertEqual(psql(self.db, f"SELECT count(*) FROM cluster.speaker_owners WHERE epoch = {old_epoch}"),
                         "0")
        r = self.retried(frozen, "POST", f"/v1/speakers/{theirs[0]}/quality-samples", self.qa, f"probe-{run}",
                         {"job_id": f"probe-{run}", "errors_per_100_words": 1.5})
        self.assertEqual(r.status, 201, r)
        # Every acknowledged write exists exactly once (and the probe once, after its retry).
        self.assertEqual(refused, [])
        self.assertGreater(len(acked), 40)
        counts = dict(line.split(" ") for line in psql(
            self.db, "SELECT speaker_id || ':' || job_id || ' ' || count(*) FROM speakers.quality_samples "
                     "GROUP BY speaker_id, job_id").splitlines() if line)
        for s, job in acked + [(theirs[0], f"probe-{run}")]:
            self.assertEqual(counts.get(f"{s}:{job}"), "1", (s, job))
        # Each speaker has exactly one owner afterwards: the one placement picks at today's epochs.
        epoch_at[self.addresses[2]] = new_epoch
        placed = self.placed(speakers, self.addresses, epoch_at)
        self.nodes[0].wait_until(lambda: self.owner_rows(speakers) == self.rows_after_touch(speakers, placed),
                                 60, "the speakers never settled on one owner each")

    def load(self, node, speakers, tag, acked, refused, stop):
        """Keyed samples, one after another, each retried with its key until it is acknowledged, as a
        client does; anything but an acknowledgement or a retryable answer is a refusal."""
        i = 0
        while not stop.is_set():
            s, job = speakers[i % len(speakers)], f"{tag}-{i}"
            i += 1
            while True:
                r = self.sample(node, s, job, key=job)
                if r.status == 201:
                    acked.append((s, job))
                    break
                if not retryable(r):
                    refused.append((s, job, r))
                    break
                time.sleep(0.05)

    def wait_for(self, predicate, message):
        self.nodes[0].wait_until(predicate, 60, message)


class LostOwnerBound(ClusterCase):
    """Requests for a frozen owner's speakers wait on the node that took them until its lease
    lapses, and what waits there is bounded by speakers.max-queued (with what the node sent on to
    other nodes and what its own speakers have): past it they are refused at once as overloaded,
    and the held ones are answered from the speakers' next owner."""
    flags = ("--speakers.max-queued=4",)

    def test_what_waits_for_a_lost_owner_is_bounded(self):
        everyone = {a: "up" for a in self.addresses}
        self.wait_members([0, 1, 2], everyone, "the three nodes never listed each other")
        speakers = speakers_where("bnd", 40, lambda names: sum(
            owner_of(self.addresses, s) == self.addresses[2] for s in names) >= 4)
        self.register_all(self.nodes[0], speakers)
        theirs = [s for s in speakers if owner_of(self.addresses, s) == self.addresses[2]]
        self.assertGreaterEqual(len(theirs), 4)
        frozen = self.nodes[2]
        answers = []
        os.kill(frozen.proc.pid, signal.SIGSTOP)
        try:
            self.wait_members([0], {self.addresses[0]: "up", self.addresses[1]: "up",
                                    self.addresses[2]: "unreachable"},
                              "node 0 never saw the frozen node unreachable")
            # Three reads of each of its speakers at once, far more than the bound of 4.
            readers = [threading.Thread(target=lambda s=s: answers.append(
                self.nodes[0].get(f"/v1/speakers/{s}", token=self.qa))) for s in theirs * 3]
            for t in readers:
                t.start()
            for t in readers:
                t.join(60)
        finally:
            os.kill(frozen.proc.pid, signal.SIGCONT)
        self.assertEqual(len(answers), 3 * len(theirs))
        refused = [r for r in answers if r.status == 503 and "overloaded" in r.body]
        served = [r for r in answers if r.status == 200]
        self.assertEqual(len(refused) + len(served), len(answers), [r for r in answers if r.status != 200])
        self.assertGreaterEqual(len(refused), 1, "nothing was refused past the bound")
        self.assertGreaterEqual(len(served), 1, "no held read was answered after the move")


class IncompatibleVersion(ClusterCase):
    """The members' messages are versioned and the version is told first at every join: a node
    started with another version (a test-only override) is refused with a clear log line on both
    sides, stays out owning nothing, and the members keep serving."""

    def test_a_node_of_an_incompatible_version_is_refused_at_join(self):
        everyone = {a: "up" for a in self.addresses}
        self.wait_members([0, 1, 2], everyone, "the three nodes never listed each other")
        port = free_port()
        stranger = start_member(self.srv, self.db, self.nodes[0].keys, port, self.seeds, "v99",
                                ["--cluster.messages-version=99"])
        try:
            address = f"127.0.0.1:{port}"
            stranger.wait_until(lambda: cluster_of(stranger, self.admin)["state"] == "refused", 60,
                                "the node of another version never saw itself refused")
            log = stranger.log_text()
            self.assertRegex(log, r"cluster: 127\.0\.0\.1:\d+ refused this node: incompatible messages")
            # Each member meets it too (its lease is live) and says why they cannot talk: refused
            # when the stranger's hello came first, or told so when its own hello to the stranger
            # did (each pair is logged once, from whichever side spoke first).
            said = [f"cluster: refused {address}: it speaks messages version 99 (reads from 99), this node 2 "
                    "(reads from 2)",
                    f"cluster: {address} refused this node: incompatible messages: it speaks version 99 (reads "
                    "from 99), this node 2 (reads from 2)"]
            for n in self.nodes:
                n.wait_until(lambda: any(line in n.log_text() for line in said), 60,
                             "a member never refused the node of another version")
            for n in range(3):
                self.assertEqual({a: m["state"] for a, m in members_of(self.nodes[n], self.admin).items()},
                                 everyone)
            # It owns nothing and routes nothing; the members serve every speaker.
            run = uuid.uuid4().hex[:6]
            speakers = [f"ver-{run}-{i}" for i in range(12)]
            self.register_all(self.nodes[1], speakers)
            self.write_all(self.nodes[2], speakers, "v")
            self.assert_samples(speakers, ["v"])
            refused = stranger.request("POST", f"/v1/speakers/{speakers[0]}/quality-samples",
                                       body={"job_id": "v-stranger", "errors_per_100_words": 1.5},
                                       token=self.qa, headers={"Idempotency-Key": f"v-stranger-{run}"})
            self.assertEqual(refused.status, 503, refused)
            self.assertEqual(psql(self.db, "SELECT count(*) FROM cluster.speaker_owners o JOIN cluster.leases l "
                                           f"USING (epoch) WHERE l.address = '{address}'"), "0")
        finally:
            stranger.stop()


def retryable(r):
    """An answer a client retries with the same key: 503 of any kind, or its key still in flight."""
    return r.status == 503 or (r.status == 409 and "idempotency-in-progress" in r.body)


def node_command(srv, workdir, extra):
    keys = os.path.join(workdir, "keys.json")
    with open(keys, "w") as f:
        f.write('{"keys":[{"kid":"k1","alg":"HS256","secret":"c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LTEyMzQ"}]}')
    fernet = os.path.join(workdir, "fernet.key")
    with open(fernet, "w") as f:
        f.write("Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4Zm9vYmFyYmE=")
    return [SBM, "node", f"--gateway.port={free_port()}", f"--postgres.url={srv['PG_URL']}",
            f"--auth.keys-file={keys}", f"--reports.fernet-key-file={fernet}", *extra]


class ClusterTls(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = servers_env()
        cls.dir = tempfile.mkdtemp(prefix="sbm-e2e-tls.")

        def run(*args):
            subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=cls.dir)

        # The cluster's CA and a member certificate it signed; a rogue CA and a certificate of its own.
        for ca in ("ca", "rogue-ca"):
            run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", f"{ca}.key", "-out", f"{ca}.pem", "-days", "2", "-subj", f"/CN={ca}")
        for name, ca in (("member", "ca"), ("rogue", "rogue-ca")):
            run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}")
            run("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
                "-CAcreateserial", "-out", f"{name}.pem", "-days", "2")

    def path(self, name):
        return os.path.join(self.dir, name)

    def tls_flags(self, name, ca):
        return [f"--cluster.tls-cert-file={self.path(name + '.pem')}",
                f"--cluster.tls-key-file={self.path(name + '.key')}",
                f"--cluster.tls-ca-file={self.path(ca + '.pem')}"]

    def test_a_node_with_only_some_tls_options_refuses_to_start(self):
        for flags in (self.tls_flags("member", "ca")[:1], self.tls_flags("member", "ca")[:2],
                      self.tls_flags("member", "ca")[1:]):
            r = subprocess.run(node_command(self.srv, self.dir, [f"--cluster.port={free_port()}", *flags]),
                               capture_output=True, text=True, timeout=60)
            self.assertEqual(r.returncode, 2, r.stderr)
            self.assertIn("cluster.tls-cert-file, cluster.tls-key-file and cluster.tls-ca-file", r.stderr)

    def test_only_a_certificate_of_the_clusters_ca_joins(self):
        db = fresh_database(self.srv)
        ports = [free_port() for _ in range(3)]
        seed = f"127.0.0.1:{ports[0]}"
        first = start_member(self.srv, db, None, ports[0], seed, "t0", self.tls_flags("member", "ca"))
        nodes = [first]
        try:
            admin = first.token("admin")
            nodes.append(start_member(self.srv, db, first.keys, ports[1], seed, "t1",
                                      self.tls_flags("member", "ca")))
            first.wait_until(lambda: set(members_of(first, admin)) == {seed, f"127.0.0.1:{ports[1]}"}, 60,
                             "a member with the cluster CA's certificate never joined")
            rogue = start_member(self.srv, db, first.keys, ports[2], seed, "rogue",
                                 self.tls_flags("rogue", "rogue-ca"))
            nodes.append(rogue)
            # The rogue holds a lease (it shares the database) and tries its seed, and the members
            # try it (they see its lease): each attempt fails in the TLS handshake.
            rogue.wait_until(lambda: f"cluster: {seed} not reachable" in rogue.log_text(), 60,
                             "the rogue never tried its seed")
            first.wait_until(lambda: f"cluster: 127.0.0.1:{ports[2]} not reachable" in first.log_text(), 60,
                             "the first member never tried the rogue it saw in the leases")
            for observer in nodes[:2]:
                self.assertNotIn(f"127.0.0.1:{ports[2]}", members_of(observer, admin))
            self.assertEqual(set(members_of(rogue, admin)), {f"127.0.0.1:{ports[2]}"})
        finally:
            for n in nodes:
                n.stop()


if __name__ == "__main__":
    unittest.main()

"""A cluster of three real `sbm node` processes on loopback against one throwaway database: they
join through their seeds and each lists every member; a speaker's writes are fenced by its owner's
epoch in the database; kill -9 of the owner is seen by the others at once, its lease lapses and it
leaves the member list, a survivor takes the speaker over; the killed node restarts with a new
epoch, and a write under its old epoch is refused by the database. Also: a node refuses a half
configured cluster TLS, and with TLS a node without a certificate of the cluster's CA cannot join.

Every wait is on a condition (Node.wait_until); nothing asserts a duration. ctest runs this file
alone (RUN_SERIAL), so loaded cores do not look like dead nodes."""
import os
import signal
import subprocess
import tempfile
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


def sql_error(url, sql):
    """Runs SQL expected to fail; returns psql's error text."""
    r = subprocess.run(["psql", "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", url, "-c", sql],
                       capture_output=True, text=True)
    assert r.returncode != 0, f"expected the database to refuse: {sql}"
    return r.stderr


class ThreeNodes(unittest.TestCase):
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
            node = start_member(cls.srv, cls.db, keys, port, cls.seeds, f"n{i}")
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

    def sample(self, node, speaker, job):
        return node.request("POST", f"/v1/speakers/{speaker}/quality-samples",
                            body={"job_id": job, "errors_per_100_words": 1.5}, token=self.qa)

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

        # The operator's command shows the same members.
        env = {k: v for k, v in os.environ.items() if not k.startswith("SBM_")}
        env["SBM_TOKEN"] = self.admin
        out = subprocess.run([SBM, "cluster", "status", "--node", f"http://127.0.0.1:{self.nodes[1].port}"],
                             capture_output=True, text=True, env=env, timeout=60)
        self.assertEqual(out.returncode, 0, out.stderr)
        for a in self.addresses:
            self.assertIn(a, out.stdout)
        headings = [line for line in out.stdout.splitlines() if line and line == line.upper() and line[0] != " "]
        self.assertEqual(headings[:2], ["NODE", "CLUSTER"], out.stdout)
        self.assertNotIn("DEPENDENCIES", headings)

        # Fencing: node 0 registers and writes the speaker, so it owns it (one ownership row,
        # written on the first fenced write); node 1's write for it is refused by the database.
        speaker = "spk-" + uuid.uuid4().hex[:8]
        r = self.nodes[0].request("POST", "/v1/speakers", token=self.lead,
                                  body={"speaker_id": speaker, "client_id": "c1", "display_name": "Dr. A"})
        self.assertEqual(r.status, 201, r)
        self.assertEqual(self.sample(self.nodes[0], speaker, "job-1").status, 201)
        owner = lambda: psql(self.db, f"SELECT epoch FROM cluster.speaker_owners WHERE speaker_id = '{speaker}'")
        self.assertEqual(owner(), str(epochs[0]))
        refused = self.sample(self.nodes[1], speaker, "job-2")
        self.assertEqual(refused.status, 409, refused)
        self.assertEqual(refused.json()["type"], "urn:sbm:problem:stale-owner", refused)
        self.assertEqual(psql(self.db, f"SELECT count(*) FROM speakers.quality_samples WHERE speaker_id = '{speaker}'"),
                         "1")
        self.assertEqual(owner(), str(epochs[0]))

        # kill -9 of the owner: the others see it unreachable (BASP), then gone once its lease lapsed.
        self.nodes[0].stop(signal.SIGKILL)
        self.wait_members([1, 2], dict(everyone, **{self.addresses[0]: "unreachable"}),
                          "the survivors never saw the killed node unreachable")
        self.wait_members([1, 2], {a: "up" for a in self.addresses[1:]},
                          "the killed node's lease never lapsed")
        self.assertEqual(psql(self.db, f"SELECT count(*) FROM cluster.leases WHERE epoch = {epochs[0]} "
                                       "AND expires_at > now()"), "0")

        # Its speaker is taken over by the first survivor that writes for it.
        taken = self.sample(self.nodes[1], speaker, "job-3")
        self.assertEqual(taken.status, 201, taken)
        self.assertEqual(owner(), str(epochs[1]))

        # The killed node restarts with a new epoch and every member lists it again.
        self.nodes[0].start()
        self.wait_members([0, 1, 2], everyone, "the restarted node never rejoined")
        new_epoch = self.epoch_of(0)
        self.assertGreater(new_epoch, max(epochs))
        self.assertEqual({m["epoch"] for m in members_of(self.nodes[2], self.admin).values()},
                         {new_epoch, epochs[1], epochs[2]})

        # A write under the dead epoch is refused by the database itself, and changes nothing.
        err = sql_error(self.db, "BEGIN; "
                        f"UPDATE speakers.speakers SET display_name = 'stale' WHERE speaker_id = '{speaker}'; "
                        f"SELECT cluster.fence_speaker('{speaker}', {epochs[0]}); COMMIT;")
        self.assertIn(f"the lease of epoch {epochs[0]} is not held", err)
        self.assertEqual(psql(self.db, f"SELECT display_name FROM speakers.speakers WHERE speaker_id = '{speaker}'"),
                         "Dr. A")
        # A live node that does not own the speaker is refused too (SB002), through its API.
        refused = self.sample(self.nodes[0], speaker, "job-4")
        self.assertEqual(refused.status, 409, refused)
        self.assertIn("owned by the live lease", sql_error(
            self.db, f"SELECT cluster.fence_speaker('{speaker}', {new_epoch})"))
        self.assertEqual(owner(), str(epochs[1]))


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

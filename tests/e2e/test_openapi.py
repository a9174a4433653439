"""Issue 22 item 2: gateway/openapi.json against a real node with seeded InstaNote, PostgreSQL and
Redis. The node serves the file byte for byte. Every example is a request: for an example named X
of an operation, the request takes the path, query and header parameters' examples named X (a path
parameter without one takes its `example`) and the request body's example X; the answer must have
the status under which a response example X is documented, and its body must validate against
that response's schema (objects are closed, so a field the code adds and the document does not
fails here). Examples run in the document's order, so earlier ones seed later ones (the speaker is
registered before it is read). Every documented query parameter and body field must be accepted in
some example answered 2xx, and every name documented on one route is refused by every other route
(400 invalid-query), and by the others that read a body (400 unknown-field), so the lists are
exactly the readers'.
The schema checks use a small validator of the JSON Schema keywords the document uses; a keyword it
does not know fails the test rather than being skipped."""
import json
import os
import re
import unittest
import urllib.parse

from sbm_node import Node, servers_env
from test_reports import wait_for
from test_sessions import seed

DOC_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../gateway/openapi.json")
METHODS = ("get", "put", "post", "delete", "patch")
ANNOTATIONS = {"description", "examples", "default", "format", "title", "summary", "deprecated"}


class Schema:
    """Validates values against the document's schemas (JSON Schema 2020-12, the subset used)."""

    def __init__(self, doc):
        self.doc = doc

    def resolve(self, node):
        while isinstance(node, dict) and "$ref" in node:
            ref = node["$ref"]
            assert ref.startswith("#/"), ref
            node = self.doc
            for part in ref[2:].split("/"):
                node = node[part.replace("~1", "/").replace("~0", "~")]
        return node

    def errors(self, schema, value, at="$"):
        schema = self.resolve(schema)
        out = []
        for key in schema:
            if key not in ANNOTATIONS and key not in self.KEYWORDS:
                raise AssertionError(f"the test's validator does not know the keyword {key!r} (at {at}): teach it")
        if "type" in schema:
            types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
            if not any(self.is_type(value, t) for t in types):
                return [f"{at}: {json.dumps(value)[:80]} is not of type {'/'.join(types)}"]
        if "const" in schema and value != schema["const"]:
            out.append(f"{at}: {value!r} is not {schema['const']!r}")
        if "enum" in schema and value not in schema["enum"]:
            out.append(f"{at}: {value!r} is not one of {schema['enum']}")
        if isinstance(value, str):
            if len(value.encode()) < schema.get("minLength", 0) or len(value) > schema.get("maxLength", 1 << 62):
                out.append(f"{at}: length {len(value)} is out of bounds")
            if "pattern" in schema and not re.search(schema["pattern"], value):
                out.append(f"{at}: {value!r} does not match {schema['pattern']}")
        if self.is_type(value, "number"):
            if "minimum" in schema and value < schema["minimum"]:
                out.append(f"{at}: {value} < {schema['minimum']}")
            if "maximum" in schema and value > schema["maximum"]:
                out.append(f"{at}: {value} > {schema['maximum']}")
        if isinstance(value, list):
            if len(value) < schema.get("minItems", 0) or len(value) > schema.get("maxItems", 1 << 62):
                out.append(f"{at}: {len(value)} items is out of bounds")
            if "items" in schema:
                for i, item in enumerate(value):
                    out += self.errors(schema["items"], item, f"{at}[{i}]")
        if isinstance(value, dict):
            props = schema.get("properties", {})
            for name in schema.get("required", []):
                if name not in value:
                    out.append(f"{at}: {name!r} is missing")
            for name, v in value.items():
                if name in props:
                    out += self.errors(props[name], v, f"{at}.{name}")
                elif schema.get("additionalProperties") is False:
                    out.append(f"{at}: {name!r} is not documented")
        if "anyOf" in schema and not any(not self.errors(s, value, at) for s in schema["anyOf"]):
            out.append(f"{at}: matches none of anyOf: {json.dumps(value)[:120]}")
        if "oneOf" in schema:
            matching = [s for s in schema["oneOf"] if not self.errors(s, value, at)]
            if len(matching) != 1:
                detail = "; ".join(e for s in schema["oneOf"] for e in self.errors(s, value, at)[:2])
                out.append(f"{at}: matches {len(matching)} of oneOf ({detail})")
        return out

    KEYWORDS = {"$ref", "type", "const", "enum", "minLength", "maxLength", "pattern", "minimum", "maximum",
                "minItems", "maxItems", "items", "properties", "required", "additionalProperties", "anyOf", "oneOf"}

    @staticmethod
    def is_type(value, t):
        return {"null": value is None, "boolean": isinstance(value, bool),
                "integer": isinstance(value, int) and not isinstance(value, bool),
                "number": isinstance(value, (int, float)) and not isinstance(value, bool),
                "string": isinstance(value, str), "array": isinstance(value, list),
                "object": isinstance(value, dict)}[t]


def operations(doc):
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method in METHODS:
                yield path, method, op


class OpenApiDocument(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        with open(DOC_FILE, "rb") as f:
            cls.raw = f.read()
        cls.doc = json.loads(cls.raw)
        cls.schema = Schema(cls.doc)
        srv = servers_env()
        # The examples name what `sbm seed-instanote --seed 23` creates (spk-001, its jobs).
        cls.node = Node(srv=dict(srv, INSTANOTE_URL=seed(srv)))
        cls.admin = cls.node.token("admin")

    @classmethod
    def tearDownClass(cls):
        cls.node.stop()

    def params(self, op):
        return [self.schema.resolve(p) for p in op.get("parameters", [])]

    def body_schema(self, op):
        body = self.schema.resolve(op.get("requestBody", {}))
        return body.get("content", {}).get("application/json", {}).get("schema")

    def body_fields(self, op):
        """The top-level fields a body may hold (every alternative of a oneOf)."""
        s = self.schema.resolve(self.body_schema(op) or {})
        fields = set(s.get("properties", {}))
        for alternative in s.get("oneOf", []):
            fields |= set(self.schema.resolve(alternative).get("properties", {}))
        return fields

    def url(self, path, op, name, extra_query=()):
        query = list(extra_query)
        for p in self.params(op):
            examples = p.get("examples", {})
            value = examples.get(name, {}).get("value")
            if p["in"] == "path" and value is None:
                # Any of the parameter's examples names something that exists.
                value = p.get("example", next(iter(examples.values()), {}).get("value"))
            if p["in"] == "path":
                self.assertIsNotNone(value, f"path parameter {p['name']} of {path} has no example for {name!r}")
                path = path.replace("{" + p["name"] + "}", urllib.parse.quote(str(value), safe=""))
            elif p["in"] == "query" and value is not None:
                query.append((p["name"], str(value)))
        return path + ("?" + urllib.parse.urlencode(query) if query else "")

    def headers(self, op, name):
        return {p["name"]: str(p["examples"][name]["value"]) for p in self.params(op)
                if p["in"] == "header" and name in p.get("examples", {})}

    def send(self, method, url, op, body=None, headers=None):
        token = None if op.get("security") == [] else self.admin
        return self.node.request(method.upper(), url, body, token=token, headers=headers)

    def example_names(self, op):
        names = list(self.schema.resolve(op.get("requestBody", {})).get("content", {})
                     .get("application/json", {}).get("examples", {}))
        for p in self.params(op):
            names += p.get("examples", {})
        for response in op["responses"].values():
            for media in self.schema.resolve(response).get("content", {}).values():
                names += media.get("examples", {})
        return list(dict.fromkeys(names))

    def documented_answer(self, op, name):
        found = [(status, media_type, media) for status, response in op["responses"].items()
                 for media_type, media in self.schema.resolve(response).get("content", {}).items()
                 if name in media.get("examples", {})]
        self.assertEqual(len(found), 1, f"example {name!r} needs exactly one response example of that name")
        return found[0]

    def settle(self):
        """Report sagas run after the 201: the next example waits until every one is done, so a
        search or a session sees the patterns as indexed."""
        def done():
            r = self.node.get("/v1/error-reports?limit=500", token=self.admin)
            return r.status == 200 and all(i["saga"]["step"] == "done" for i in r.json()["items"])
        wait_for(done, message="report sagas never finished")

    def check_answer(self, what, r, status, media_type, media, response):
        self.assertEqual(str(r.status), status, f"{what}: the node answered {r}")
        # Parameters (charset, a text format's version) are the server's to add.
        self.assertEqual((r.header("content-type") or "").split(";")[0].strip(), media_type.split(";")[0], what)
        if media_type.endswith("json"):
            errors = self.schema.errors(media["schema"], r.json())
            self.assertEqual(errors, [], f"{what}: the answer does not fit the documented schema: {r.body[:2000]}")
        for header, spec in response.get("headers", {}).items():
            if self.schema.resolve(spec).get("required"):
                self.assertIsNotNone(r.header(header), f"{what}: documented header {header} is missing")

    def test_served_document_is_the_file(self):
        r = self.node.get("/openapi.json")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("content-type"), "application/json")
        self.assertEqual(r.body.encode(), self.raw)

    def test_every_example_against_the_node(self):
        accepted_query, accepted_fields = set(), set()
        for path, method, op in operations(self.doc):
            names = self.example_names(op)
            statuses = []
            for name in names:
                what = f"{method.upper()} {path} example {name!r}"
                with self.subTest(what):
                    status, media_type, media = self.documented_answer(op, name)
                    response = self.schema.resolve(op["responses"][status])
                    example = media["examples"][name]["value"]
                    if media_type.endswith("json"):
                        self.assertEqual(self.schema.errors(media["schema"], example), [],
                                         f"{what}: the documented response example does not fit its own schema")
                    body_examples = self.schema.resolve(op.get("requestBody", {})).get("content", {}) \
                        .get("application/json", {}).get("examples", {})
                    body = body_examples.get(name, {}).get("value")
                    url = self.url(path, op, name)
                    self.settle()
                    r = self.send(method, url, op, body, self.headers(op, name))
                    self.check_answer(what, r, status, media_type, media, response)
                    statuses.append(status)
                    if status.startswith("2"):
                        accepted_query |= {(path, method, k) for k, _ in
                                           urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query)}
                        accepted_fields |= {(path, method, k) for k in (body or {})}
            with self.subTest(f"{method.upper()} {path} has an example answered 2xx"):
                self.assertTrue(any(s.startswith("2") for s in statuses),
                                f"{method.upper()} {path}: document an example request and its 2xx answer")
        missing = []
        for path, method, op in operations(self.doc):
            for p in self.params(op):
                if p["in"] == "query" and (path, method, p["name"]) not in accepted_query:
                    missing.append(f"{method.upper()} {path}: query parameter {p['name']!r}")
            for field in sorted(self.body_fields(op)):
                if (path, method, field) not in accepted_fields:
                    missing.append(f"{method.upper()} {path}: body field {field!r}")
        self.assertEqual(missing, [], "documented inputs that no example answered 2xx shows to be accepted")

    def test_each_reader_refuses_what_its_route_does_not_document(self):
        all_query = {p["name"] for _, _, op in operations(self.doc) for p in self.params(op) if p["in"] == "query"}
        all_fields = {f for _, _, op in operations(self.doc) for f in self.body_fields(op)}
        all_query.add("zz_undocumented")
        all_fields.add("zz_undocumented")
        for path, method, op in operations(self.doc):
            own_query = {p["name"] for p in self.params(op) if p["in"] == "query"}
            # A route documented without query parameters refuses every one (none is ignored).
            for name in sorted(all_query - own_query):
                with self.subTest(f"{method.upper()} {path}?{name}="):
                    r = self.send(method, self.url(path, op, None, [(name, "1")]), op)
                    self.assertEqual((r.status, r.json().get("type"), r.json().get("field")),
                                     (400, "urn:sbm:problem:invalid-query", name), r)
                    self.assertIn("is not a known query parameter", r.json()["detail"])
            if self.body_schema(op) is None:
                continue
            for name in sorted(all_fields - self.body_fields(op)):
                with self.subTest(f"{method.upper()} {path} with body field {name}"):
                    r = self.send(method, self.url(path, op, None), op, {name: 1})
                    self.assertEqual((r.status, r.json().get("type"), r.json().get("field")),
                                     (400, "urn:sbm:problem:unknown-field", name), r)


if __name__ == "__main__":
    unittest.main()

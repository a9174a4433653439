"""Runs a real `sbm node` for end-to-end tests: its own database on the test servers that
scripts/test started (SBMTEST_SERVERS_DIR), its own port and keys, and helpers to call it."""
import atexit
import base64
import http.client
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid

SBM = os.environ.get("SBMTEST_BINARY", os.path.join(os.path.dirname(__file__), "../../build/bin/sbm"))
SCRIPTS = os.environ.get("SBMTEST_SCRIPTS", os.path.join(os.path.dirname(__file__), "../../scripts"))


_workdirs = []


@atexit.register
def _remove_workdirs():
    """Node logs and keys live in per-node temporary directories; set SBMTEST_KEEP=1 to keep them."""
    if not os.environ.get("SBMTEST_KEEP"):
        for d in _workdirs:
            shutil.rmtree(d, ignore_errors=True)


def servers_env(directory=None):
    directory = directory or os.environ.get("SBMTEST_SERVERS_DIR")
    if not directory:
        raise RuntimeError("SBMTEST_SERVERS_DIR is not set: run the tests with ./scripts/test")
    env = {}
    with open(os.path.join(directory, "env")) as f:
        for line in f:
            line = line.strip()
            if "=" in line and not line.startswith("#"):
                k, v = line.split("=", 1)
                env[k] = v.strip("'\"")
    env["DIR"] = directory
    return env


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def psql(url, sql):
    return subprocess.run(["psql", "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", url, "-c", sql],
                          check=True, capture_output=True, text=True).stdout.strip()


def fresh_database(srv):
    name = "e2e_" + uuid.uuid4().hex[:12]
    psql(srv["PG_URL"], f"CREATE DATABASE {name}")
    return srv["PG_URL"].rsplit("/", 1)[0] + "/" + name


def wait_for(predicate, seconds=30, message="condition never held", alive=None):
    """Polls `predicate` until it returns something truthy (returned) or `seconds` pass (an
    AssertionError naming the last value and error). A connection refused or reset while a node
    starts or restarts counts as "not yet". `alive`, when given, is called first on every round
    and raises when waiting longer is pointless (a node that exited)."""
    deadline = time.time() + seconds
    last, last_error = None, None
    while time.time() < deadline:
        if alive is not None:
            alive()
        try:
            last = predicate()
            if last:
                return last
        except (ConnectionError, OSError, http.client.HTTPException) as e:
            last_error = e
        time.sleep(0.1)
    raise AssertionError(f"{message} (last: {last!r}, last error: {last_error})")


class PrivateServers:
    """A PostgreSQL + Redis pair of this test's own, for fault tests that stop servers."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="sbm-e2e-srv.", dir="/tmp")
        os.chmod(self.dir, 0o755)
        subprocess.run([os.path.join(SCRIPTS, "servers"), "start", self.dir], check=True,
                       capture_output=True)
        self.env = servers_env(self.dir)

    def run(self, command):
        subprocess.run([os.path.join(SCRIPTS, "servers"), command, self.dir], check=True,
                       capture_output=True)

    def destroy(self):
        subprocess.run([os.path.join(SCRIPTS, "servers"), "destroy", self.dir], capture_output=True)


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def json(self):
        return json.loads(self.body)

    def header(self, name):
        return self.headers.get(name.lower())

    def __repr__(self):
        return f"<{self.status} {self.body[:300]!r}>"


class Node:
    def __init__(self, srv=None, database_url=None, extra_flags=(), keys=None, wait_ready=True):
        self.srv = srv or servers_env()
        self.workdir = tempfile.mkdtemp(prefix="sbm-e2e.")
        _workdirs.append(self.workdir)
        self.keys = keys or {"keys": [{"kid": "k1", "alg": "HS256",
                                       "secret": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")}]}
        self.keys_file = os.path.join(self.workdir, "keys.json")
        with open(self.keys_file, "w") as f:
            json.dump(self.keys, f)
        self.fernet_file = os.path.join(self.workdir, "fernet.key")
        with open(self.fernet_file, "w") as f:
            f.write(base64.urlsafe_b64encode(secrets.token_bytes(32)).decode())
        self.database_url = database_url or fresh_database(self.srv)
        self.port = free_port()
        self.flags = [f"--gateway.port={self.port}", f"--postgres.url={self.database_url}",
                      f"--instanote.url={self.srv['INSTANOTE_URL']}",
                      f"--redis.port={self.srv['REDIS_PORT']}", "--postgres.probe-interval=200ms",
                      f"--auth.keys-file={self.keys_file}",
                      f"--reports.fernet-key-file={self.fernet_file}"] + list(extra_flags)
        self.proc = None
        self.start(wait_ready)

    def start(self, wait_ready=True):
        self.log = open(os.path.join(self.workdir, "node.log"), "ab")
        self.proc = subprocess.Popen([SBM, "node"] + self.flags, stdout=self.log, stderr=self.log)
        self.wait_until(lambda: self.get("/healthz").status == 200, 30, "node never answered /healthz")
        if wait_ready:
            self.wait_until(lambda: self.get("/readyz").status == 200, 60, "node never became ready")

    def stop(self, sig=signal.SIGTERM, timeout=30):
        if self.proc is None:
            return None
        self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        self.proc = None
        self.log.close()
        return code

    def log_text(self):
        with open(os.path.join(self.workdir, "node.log"), "rb") as f:
            return f.read().decode(errors="replace")

    def wait_until(self, predicate, seconds, message):
        # The node's log first and what failed last: a runner that keeps only the tail of the
        # output (CI does) still shows which wait failed.
        def alive():
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"node exited with {self.proc.returncode}")
        try:
            return wait_for(predicate, seconds, message, alive=alive)
        except AssertionError as e:
            raise AssertionError(f"the node's log, last lines:\n{self.log_text()[-3000:]}\n{e}") from None

    def token(self, role=None, sub=None, service=None, permissions=(), ttl=3600):
        args = [SBM, "token", "issue", "--keys-file", self.keys_file, "--ttl", str(ttl)]
        if service:
            args += ["--service", service]
            for p in permissions:
                args += ["--permission", p]
        else:
            args += ["--sub", sub or f"user-{role}", "--role", role]
        return subprocess.run(args, check=True, capture_output=True, text=True).stdout.strip()

    def request(self, method, path, body=None, token=None, headers=None, raw_body=None, timeout=30):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
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

    def get(self, path, token=None):
        return self.request("GET", path, token=token)

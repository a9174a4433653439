"""Where a verification session's time goes, step by step (bench/PROFILE.md, "Verification
sessions"): runs bench/sessions_bench.py with the throwaway PostgreSQL logging every statement
(log_min_duration_statement = 0, set with ALTER SYSTEM for the run and reset after), matches each
logged statement of the bench's database to the step (start, marks, submit) whose HTTP call it fell
in, and prints per step: wall time, PostgreSQL's own time, COMMITs, statements; then the submit's
statements by kind. For servers of scripts/servers only (it changes the server's settings).

Run from the repository root with servers up:
  SBMTEST_SERVERS_DIR=DIR SBMTEST_BINARY=build/bin/sbm python3 bench/sessions_profile.py [sessions]
"""
import collections
import datetime
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "tests", "e2e"))

import sessions_bench  # noqa: E402
from sbm_node import psql, servers_env  # noqa: E402

STEP_OF = (("submit", lambda m, p: p.endswith("/submit")), ("marks", lambda m, p: p.endswith("/marks")),
           ("start", lambda m, p: m == "POST" and p == "/v1/verification-sessions"))
KINDS = (("weights: UPDATE reports.error_reports (one per verdict)", r"UPDATE reports\.error_reports SET weight"),
         ("samples: INSERT speakers.quality_samples", r"INSERT INTO speakers\.quality_samples"),
         ("samples: UPDATE speakers.speakers", r"UPDATE speakers\.speakers SET bucket"),
         ("saga steps: set_config synchronous_commit off", r"set_config\('synchronous_commit'"),
         ("BEGIN", r"statement: BEGIN"), ("COMMIT", r"statement: COMMIT"), ("ROLLBACK", r"statement: ROLLBACK"))
LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}) \S+ \[\d+\] (\S*) \S* LOG:  duration: ([\d.]+) ms  (.*)$")

nodes, windows = [], []


class Timed(sessions_bench.Node):
    """The bench's node, remembering itself and the wall-clock window of each step's call."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        nodes.append(self)

    def request(self, method, path, *args, **kwargs):
        step = next((name for name, match in STEP_OF if match(method, path)), None)
        began = datetime.datetime.now(datetime.timezone.utc).timestamp()
        try:
            return super().request(method, path, *args, **kwargs)
        finally:
            if step:
                windows.append((step, began, datetime.datetime.now(datetime.timezone.utc).timestamp()))


def statements(log, offset, database):
    out = []
    with open(log, errors="replace") as f:
        f.seek(offset)
        for line in f:
            m = LINE.match(line)
            if m and m.group(2) == database:
                at = datetime.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S.%f").replace(
                    tzinfo=datetime.timezone.utc).timestamp()
                out.append((at, float(m.group(3)) / 1000, m.group(4)))
    return out


def main():
    srv = servers_env()
    url, log = srv["PG_URL"], os.path.join(os.environ["SBMTEST_SERVERS_DIR"], "postgres.log")
    for sql in ("ALTER SYSTEM SET log_min_duration_statement = 0",
                "ALTER SYSTEM SET log_line_prefix = '%m [%p] %d %a '", "SELECT pg_reload_conf()"):
        psql(url, sql)
    offset = os.path.getsize(log)
    sessions_bench.Node = Timed
    try:
        sessions_bench.main()
    finally:
        for sql in ("ALTER SYSTEM RESET log_min_duration_statement", "ALTER SYSTEM RESET log_line_prefix",
                    "SELECT pg_reload_conf()"):
            psql(url, sql)
    logged = statements(log, offset, nodes[0].database_url.rsplit("/", 1)[1])
    # A statement is logged when it ends: it belongs to the call whose window holds that moment.
    per = collections.defaultdict(lambda: collections.Counter())
    kinds = collections.defaultdict(lambda: [0, 0.0])
    for step, began, ended in windows:
        p = per[step]
        p["calls"] += 1
        p["wall"] += ended - began
        for at, took, text in logged:
            if began <= at <= ended:
                p["postgres"] += took
                p["messages"] += 1
                if re.search(r"statement: COMMIT", text):
                    p["commit"] += took
                    p["commits"] += 1
                if step == "submit":
                    kind = next((k for k, rx in KINDS if re.search(rx, text)), "other")
                    kinds[kind][0] += 1
                    kinds[kind][1] += took
    print("\n| step | wall ms | PostgreSQL ms | of which COMMIT ms | COMMITs | protocol messages | "
          "rest ms (SBM, round trips, HTTP) |\n|---|---|---|---|---|---|---|")
    for step in ("start", "marks", "submit"):
        p, n = per[step], max(1, per[step]["calls"])
        print(f"| {step} | {1000 * p['wall'] / n:.1f} | {1000 * p['postgres'] / n:.1f} | "
              f"{1000 * p['commit'] / n:.1f} | {p['commits'] / n:.1f} | {p['messages'] / n:.1f} | "
              f"{1000 * (p['wall'] - p['postgres']) / n:.1f} |")
    n = max(1, per["submit"]["calls"])
    print("\n| submit, per session | protocol messages | PostgreSQL ms |\n|---|---|---|")
    for kind, (count, took) in sorted(kinds.items(), key=lambda kv: -kv[1][1]):
        print(f"| {kind} | {count / n:.1f} | {1000 * took / n:.1f} |")


if __name__ == "__main__":
    main()

"""End-to-end verification sessions per second through the gateway (issue 17, "Speed"): one client,
10-job sessions of a seeded speaker whose errors were reported and rectified, each session started
(InstaNote pull, 10 corrections, commit), every correction marked rectified with residual counts,
and submitted (weights, 10 quality samples through the speaker actor, audit). Every session pulls
a range of its own, so none is answered from the Redis cache.

Run with servers up (scripts/servers start DIR), from the repository root:
  SBMTEST_SERVERS_DIR=DIR SBMTEST_BINARY=build/bin/sbm python3 bench/sessions_bench.py [sessions]
"""
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "e2e"))

from sbm_node import Node, servers_env  # noqa: E402
from test_sessions import file_rectified_reports, rows, seed  # noqa: E402


def p99(values):
    return statistics.quantiles(values, n=100)[98] if len(values) >= 2 else values[0]


def main():
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 30
    srv = servers_env()
    instanote_url = seed(srv)
    node = Node(srv=dict(srv, INSTANOTE_URL=instanote_url),
                extra_flags=["--gateway.rate-limit=0", "--reports.relay-interval=200ms", "--log.level=warn"])
    try:
        lead = node.token("qa_lead", sub="bench-lead")
        speaker, client = rows(instanote_url, "SELECT speaker_id || chr(31) || client_id FROM seed_speakers "
                                              "ORDER BY speaker_id")[0]
        assert node.request("POST", "/v1/speakers", {"speaker_id": speaker, "client_id": client},
                            token=lead).status == 201
        file_rectified_reports(node, instanote_url, lead, speaker, client)
        times, corrections = [], 0
        steps = {"start": [], "marks": [], "submit": []}
        for i in range(count):
            began = time.perf_counter()
            r = node.request("POST", "/v1/verification-sessions",
                             {"speaker_id": speaker, "from": f"2026-11-01T00:00:00.{i % 1000:03d}Z",
                              "to": "2026-11-08", "max_jobs": 10}, token=lead)
            assert r.status == 201, r
            s = r.json()
            assert len(s["jobs"]) == 10, len(s["jobs"])
            started = time.perf_counter()
            steps["start"].append(started - began)
            marks = [{"correction_id": c["correction_id"], "verdict": "rectified"}
                     for j in s["jobs"] for c in j["corrections"]]
            corrections += len(marks)
            residuals = [{"job_id": j["job_id"], "count": 0} for j in s["jobs"]]
            r = node.request("PUT", f"/v1/verification-sessions/{s['id']}/marks",
                             {"marks": marks, "residual_errors": residuals}, token=lead)
            assert r.status == 200, r
            marked = time.perf_counter()
            steps["marks"].append(marked - started)
            r = node.request("POST", f"/v1/verification-sessions/{s['id']}/submit", {}, token=lead)
            assert r.status == 200, r
            done = time.perf_counter()
            steps["submit"].append(done - marked)
            times.append(done - began)
        total = sum(times)
        print(f"sessions: {count} of 10 jobs ({corrections / count:.1f} corrections each), one client: "
              f"{count / total:.1f} sessions/s; per session p50 {1000 * statistics.median(times):.0f} ms, "
              f"p99 {1000 * p99(times):.0f} ms (start + marks + submit)")
        # Each step as the client saw it (HTTP round trip included), so the slowest one is named
        # from the same run.
        print("\n| step | p50 ms | p99 ms | share of the total |\n|---|---|---|---|")
        for name, spent in steps.items():
            print(f"| {name} | {1000 * statistics.median(spent):.1f} | {1000 * p99(spent):.1f} | "
                  f"{100 * sum(spent) / total:.0f}% |")
    finally:
        node.stop()


if __name__ == "__main__":
    main()

"""The demo's last act: the loop SBM exists for, through the gateway only (issue 17). A seeded
speaker's systematic errors are reported and rectified, a held-out draft is corrected, a
verification session is started, every correction marked, residual errors counted, the session
submitted, and the speaker's bucket moves. Python's standard library and psql only.

usage: demo_cycle.py BASE_URL TOKEN INSTANOTE_URL   (TOKEN: a qa_lead's)
"""
import json
import subprocess
import sys
import time
import urllib.error
import urllib.request

BASE, TOKEN, INSTANOTE = sys.argv[1], sys.argv[2], sys.argv[3]
SPEAKER = "spk-001"


def call(method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(BASE + path, data=data, method=method,
                                 headers={"Authorization": "Bearer " + TOKEN, "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def rows(sql):
    out = subprocess.run(["psql", INSTANOTE, "-XAtq", "-c", f"SELECT string_agg(x, chr(30)) FROM ({sql}) q(x)"],
                         check=True, capture_output=True, text=True).stdout.rstrip("\n")
    return [r.split("\x1f") for r in out.split("\x1e") if r]


def step(text):
    print(f"\ndemo cycle: {text}")


def wait_saga(rid):
    for _ in range(300):
        status, r = call("GET", f"/v1/error-reports/{rid}")
        if status == 200 and r["saga"]["step"] == "done":
            return
        time.sleep(0.1)
    raise SystemExit(f"report {rid} never finished its saga")


def main():
    (client,), = rows(f"SELECT client_id FROM seed_speakers WHERE speaker_id = '{SPEAKER}'")
    call("POST", "/v1/speakers", {"speaker_id": SPEAKER, "client_id": client, "display_name": "Seeded speaker"})
    # A pin to no_touch and its unpin leave the speaker there, so the session's verdict can move it.
    call("PUT", f"/v1/speakers/{SPEAKER}/bucket-pin", {"bucket": "no_touch", "reason": "demo start"})
    call("DELETE", f"/v1/speakers/{SPEAKER}/bucket-pin?reason=demo")
    step(f"{SPEAKER} is in bucket {call('GET', f'/v1/speakers/{SPEAKER}')[1]['bucket']}")

    step("QA reports one occurrence of each of the speaker's systematic errors and marks it rectified")
    reported_jobs = set()
    for job, original, corrected, category in rows(f"""
            SELECT DISTINCT ON (e.error_id) e.job_id || chr(31) || e.draft_span || chr(31) ||
                   e.reference_span || chr(31) || s.category
            FROM draft_errors e JOIN draft_jobs j USING (job_id) JOIN speaker_errors s ON s.error_id = e.error_id
            WHERE j.speaker_id = '{SPEAKER}' ORDER BY e.error_id, j.created_at, e.job_id, e.ordinal"""):
        status, r = call("POST", "/v1/error-reports", {
            "speaker_id": SPEAKER, "client_id": client, "job_id": job, "original_text": original,
            "corrected_text": corrected, "error_categories": [category], "audio_quality": "good",
            "speaker_clarity": "clear", "background_noise": "low", "number_of_speakers": 1,
            "overlapping_speech": False, "requires_specialized_knowledge": False})
        if status != 201:
            raise SystemExit(f"filing failed: {status} {r}")
        wait_saga(r["id"])
        call("PATCH", f"/v1/error-reports/{r['id']}", {"status": "rectified"})
        wait_saga(r["id"])
        reported_jobs.add(job)
        print(f"  report {r['id']}: {original!r} -> {corrected!r} ({category})")

    (job, draft), = rows(f"SELECT job_id || chr(31) || draft_text FROM draft_jobs WHERE speaker_id = '{SPEAKER}' "
                         f"AND job_id NOT IN ({','.join(repr(j) for j in reported_jobs)}) ORDER BY created_at DESC LIMIT 1")
    status, c = call("POST", "/v1/drafts/correct", {"speaker_id": SPEAKER, "draft_text": draft})
    step(f"POST /v1/drafts/correct on the unseen draft {job}: {c['confidence_scores']['applied']} applied, "
         f"{c['confidence_scores']['proposed']} proposed")
    for x in c["corrections"][:6]:
        print(f"  {x['from']!r} -> {x['to']!r} (confidence {x['confidence']:.2f}, applied {x['applied']})")

    status, s = call("POST", "/v1/verification-sessions",
                     {"speaker_id": SPEAKER, "from": "2026-11-01", "to": "2030-01-01", "max_jobs": 5})
    if status != 201:
        raise SystemExit(f"session start failed: {status} {s}")
    marks = [{"correction_id": x["correction_id"], "verdict": "rectified"} for j in s["jobs"] for x in j["corrections"]]
    step(f"verification session {s['id']}: {len(s['jobs'])} jobs, {len(marks)} corrections; QA marks them all "
         f"rectified and counts the errors left (one in eight words: a poor speaker)")
    residuals = [{"job_id": j["job_id"], "count": max(1, j["words"] // 8)} for j in s["jobs"]]
    status, r = call("PUT", f"/v1/verification-sessions/{s['id']}/marks", {"marks": marks, "residual_errors": residuals})
    if status != 200:
        raise SystemExit(f"marks failed: {status} {r}")
    status, done = call("POST", f"/v1/verification-sessions/{s['id']}/submit", {})
    if status != 200:
        raise SystemExit(f"submit failed: {status} {done}")
    o = done["outcome"]
    step(f"submitted: {len(o['weights'])} pattern weights moved, {len(o['jobs_sampled'])} quality samples; "
         f"bucket {o['bucket_before']} -> {o['bucket_after']}")
    for w in o["weights"]:
        print(f"  pattern {w['pattern_id']}: weight {w['weight']:.1f} ({w['status']})")
    status, again = call("POST", f"/v1/verification-sessions/{s['id']}/submit", {})
    step(f"a second submit: {status} ({again.get('detail')})")
    status, h = call("GET", f"/v1/speakers/{SPEAKER}/bucket-history")
    last = h["entries"][-1]
    step(f"bucket history: {last['previous_bucket']} -> {last['new_bucket']} ({last['reason']})")


if __name__ == "__main__":
    main()

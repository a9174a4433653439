"""Turns bench_instanote_pull's Google Benchmark JSON (stdin) into the RESULTS.md table, each
path beside the raw libpqxx baseline of the same run."""
import json
import sys

NAMES = {
    "BM_RawLibpqxx": "raw libpqxx: BEGIN + prepared SELECT + COMMIT (baseline)",
    "BM_SbmUncached": "SBM pull, uncached (no Redis): jobs actor -> breaker -> pool -> InstaNote",
    "BM_SbmUncachedWithCacheWrite": "SBM pull, uncached, copy written to Redis (Fernet)",
    "BM_SbmCached": "SBM pull, cached (fresh copy: Redis GET + Fernet decrypt)",
}
runs = {b["name"].split("/")[0]: b for b in json.load(sys.stdin)["benchmarks"]}
raw = runs["BM_RawLibpqxx"]
print("| path | pulls/s | x raw | p50 (us) | p99 (us) | p99 x raw |")
print("|---|---|---|---|---|---|")
for key, label in NAMES.items():
    b = runs.get(key)
    if b is None or "error_message" in b:
        print(f"| {label} | failed: {b and b.get('error_message')} | | | | |")
        continue
    print(f"| {label} | {b['pulls_per_s']:.0f} | {b['pulls_per_s'] / raw['pulls_per_s']:.2f}x | "
          f"{b['p50_us']:.0f} | {b['p99_us']:.0f} | {b['p99_us'] / raw['p99_us']:.2f}x |")

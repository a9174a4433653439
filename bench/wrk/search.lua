-- POST /v1/patterns/search for one speaker's patterns, the same query each time.
wrk.method = "POST"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN")
wrk.headers["Content-Type"] = "application/json"
wrk.body = string.format('{"query_text":"%s","filters":{"speaker_id":"%s"},"top_k":5}',
                         os.getenv("BENCH_QUERY") or "metoprolal 50", os.getenv("BENCH_SPEAKER") or "spk-bench")

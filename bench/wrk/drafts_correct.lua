-- POST /v1/drafts/correct with the same body each time: a seeded speaker's ~1,000-word draft,
-- made by bench/run (BENCH_DRAFT_BODY names the file) (BENCH_TOKEN: an admin, who may correct).
wrk.method = "POST"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN")
wrk.headers["Content-Type"] = "application/json"
local file = assert(io.open(os.getenv("BENCH_DRAFT_BODY"), "rb"))
wrk.body = file:read("*a")
file:close()

-- Paces each connection: after an answer it waits PACE_MS before the next request, so c
-- connections offer about c * 1000 / (PACE_MS + latency) requests per second. wrk has no fixed
-- rate; this is the way its own Lua API offers (delay()). BENCH_TOKEN is optional (raw server).
local token = os.getenv("BENCH_TOKEN")
if token and token ~= "" then wrk.headers["Authorization"] = "Bearer " .. token end
local pace = tonumber(os.getenv("PACE_MS") or "1")
function delay()
  return pace
end

-- POST /v1/speakers/{id}/quality-samples with a job id of its own per request (a repeated one
-- would be a duplicate sample). BENCH_TOKEN and BENCH_SPEAKER come from bench/run.
local token = os.getenv("BENCH_TOKEN")
local speaker = os.getenv("BENCH_SPEAKER") or "spk-bench"
local run = tostring(os.time()) .. "-" .. tostring(math.random(1000000))
local n = 0
function request()
  n = n + 1
  local body = string.format('{"job_id":"b-%s-%d","errors_per_100_words":%.1f}', run, n, (n % 90) / 10)
  return wrk.format("POST", "/v1/speakers/" .. speaker .. "/quality-samples",
                    {["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json"}, body)
end

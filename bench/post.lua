-- wrk script for bench/serving.py: POST the JSON bodies of BENCH_BODIES (one per line) in turn,
-- and print one machine-readable line with the figures at the end.
local bodies = {}
for line in io.lines(os.getenv("BENCH_BODIES")) do
  bodies[#bodies + 1] = line
end
local n = 0

request = function()
  n = n % #bodies + 1
  return wrk.format("POST", nil, {["Content-Type"] = "application/json"}, bodies[n])
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH {\"requests\": %d, \"seconds\": %f, \"p50_ms\": %f, \"p99_ms\": %f, \"non_2xx\": %d, \"socket_errors\": %d}\n",
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1e3, latency:percentile(99) / 1e3,
    e.status, e.connect + e.read + e.write + e.timeout))
end

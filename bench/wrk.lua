-- wrk script shared by every benchmark phase (see bench/run.sh).
--
-- GET phases pass their headers with `wrk -H`; this script only reports.
-- The login storm sets BENCH_LOGIN_BODY (a JSON document) and this script
-- turns every request into `POST <path>` with that body and
-- `Content-Type: application/json`.
--
-- done() prints ONE machine-readable line that run.sh hands to report.py:
--   BENCH requests=<n> duration_us=<n> non2xx=<n> connect=<n> read=<n>
--         write=<n> timeout=<n> mean_us=<n> p50_us=<n> p99_us=<n>
-- wrk counts non-2xx/3xx answers in `requests` and in `errors.status`;
-- report.py subtracts them so only successful requests are rated.

local login_body = os.getenv("BENCH_LOGIN_BODY")

if login_body ~= nil and login_body ~= "" then
  wrk.method = "POST"
  wrk.body = login_body
  wrk.headers["Content-Type"] = "application/json"
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%d duration_us=%d non2xx=%d connect=%d read=%d write=%d timeout=%d mean_us=%d p50_us=%d p99_us=%d\n",
    summary.requests, summary.duration, e.status, e.connect, e.read, e.write,
    e.timeout, math.floor(latency.mean), latency:percentile(50), latency:percentile(99)))
end

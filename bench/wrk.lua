-- wrk script shared by every benchmark phase (see bench/run.sh).
--
-- BENCH_MODE picks what each request is:
--   get      (default) the URL given to wrk, headers from `wrk -H`;
--   login    POST with the JSON body in BENCH_LOGIN_BODY;
--   refresh  POST /auth/refresh, each connection's chain of refresh tokens:
--            BENCH_REFRESH_TOKENS names a file of refresh tokens, one per
--            line (one per session); a request takes a token from the pool
--            and the answer's new `refresh_token` goes back into it, so no
--            token is ever presented twice (which would revoke the session).
--            Threads split the file between them.
--
-- done() prints ONE machine-readable line that run.sh hands to report.py:
--   BENCH requests=<n> duration_us=<n> non2xx=<n> connect=<n> read=<n>
--         write=<n> timeout=<n> mean_us=<n> p50_us=<n> p99_us=<n>
-- wrk counts non-2xx/3xx answers in `requests` and in `errors.status`;
-- report.py subtracts them so only successful requests are rated.

local mode = os.getenv("BENCH_MODE") or "get"

if mode == "login" then
  wrk.method = "POST"
  wrk.body = os.getenv("BENCH_LOGIN_BODY")
  wrk.headers["Content-Type"] = "application/json"
end

if mode == "refresh" then
  local threads = 0

  function setup(thread)
    thread:set("thread_index", threads)
    threads = threads + 1
  end

  local pool = {}
  -- wrk calls request() once in thread 0, after init and before any
  -- connection, only to inspect the request, and discards the answer; that
  -- call must not take a token out of the pool.
  local probed = true

  function init(args)
    local index = thread_index or 0
    probed = index ~= 0
    local count = tonumber(os.getenv("BENCH_THREADS") or "1")
    local n = 0
    for line in io.lines(os.getenv("BENCH_REFRESH_TOKENS")) do
      if line ~= "" then
        if n % count == index then
          pool[#pool + 1] = line
        end
        n = n + 1
      end
    end
  end

  local headers = { ["Content-Type"] = "application/json" }

  function request()
    if not probed then
      probed = true
      return wrk.format("POST", "/auth/refresh", headers, '{"refresh_token":"probe"}')
    end
    -- An empty pool only follows a failed refresh; the bogus token is
    -- answered 401 and counted as non-2xx.
    local token = table.remove(pool) or "exhausted"
    return wrk.format("POST", "/auth/refresh", headers,
      '{"refresh_token":"' .. token .. '"}')
  end

  function response(status, headers, body)
    if status == 200 then
      local token = string.match(body, '"refresh_token"%s*:%s*"([^"]+)"')
      if token then
        pool[#pool + 1] = token
      end
    end
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%d duration_us=%d non2xx=%d connect=%d read=%d write=%d timeout=%d mean_us=%d p50_us=%d p99_us=%d\n",
    summary.requests, summary.duration, e.status, e.connect, e.read, e.write,
    e.timeout, math.floor(latency.mean), latency:percentile(50), latency:percentile(99)))
end

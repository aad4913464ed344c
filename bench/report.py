#!/usr/bin/env python3
"""Helper for bench/run.sh (Python 3.11, stdlib + pyca `bcrypt`).

Subcommands:

  bcrypt-time --cost N
      Times bcrypt hashes at cost N on ONE thread and prints JSON
      {"cost", "runs", "median_s", "min_s", "max_s", "impl"}. pyca/bcrypt
      (>= 4) is a thin wrapper over the same Rust `bcrypt` crate the server
      uses, so one hash here costs what one `bcrypt::verify` costs there
      (a verify is one full hash at the cost stored in the hash).

  cpu-busy [--seconds S]
      Prints the share of all CPUs (0-100) that was busy over S seconds,
      from /proc/stat: run while the server is idle, it shows how much other
      work (a concurrent cargo build, say) competes with the benchmark.

  wait-ready --url URL --since-ns T --pid PID [--timeout S]
      Polls URL every 2 ms until it answers 200 and prints JSON {"ms": ...}:
      the time since T (`date +%s%N` taken just before the server's exec).
      Exits 1 when PID dies or S seconds pass.

  seed-sessions --url URL --body JSON --count N
      Logs in N times (8 at a time, retrying 503s) and prints the N refresh
      tokens, one per line: one session per connection of the refresh loop.

  drain --url URL --body JSON --hash-seconds S [--timeout T]
      Waits until the server's bcrypt queue is empty: logins that wrk left
      behind when a phase ended still run (actix-web does not cancel a
      handler when its client disconnects). Done when one login answers 200
      within 3 hash times. Prints how long it waited.

  render --dir DIR [--param KEY=VALUE ...]
      Reads the wrk outputs (`<phase>.out`, each holding the `BENCH ...` line
      that bench/wrk.lua prints), `bcrypt.json`, `sign.json` (from
      bench/sign_bound.rs), `rss.json` and `startup_*.json` from DIR and
      prints BENCHMARKS.md on stdout. Exits 1 when a phase is missing or a
      GET phase produced no successful request.

  plot --dir DIR --out PNG [--param KEY=VALUE ...]
      Draws requests/s per scenario (log scale) next to the bare actix-web
      baseline and the two bounds, from the same files, with gnuplot.
"""

from __future__ import annotations

import argparse
import json
import os
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
import statistics
import sys
import time
from pathlib import Path

PHASES = (
    "bare",
    "healthz",
    "me",
    "me_nocache",
    "login",
    "storm_me",
    "storm_login",
    "refresh",
    "memory",
)
# Rows compared with the bare actix-web route, with /healthz, and with a bound.
VS_BARE = ("healthz", "me", "me_nocache", "storm_me", "memory")
VS_HEALTHZ = ("me", "me_nocache", "storm_me", "refresh", "memory")
VS_BCRYPT = ("login", "storm_login")
VS_SIGNING = ("refresh",)
NAMES = {
    "bare": "bare actix-web `GET /healthz` (no middleware)",
    "healthz": "`GET /healthz` (no auth, no database)",
    "me": "`GET /api/me`, token cache on",
    "me_nocache": "`GET /api/me`, `TOKEN_CACHE_CAPACITY=0`",
    "login": "`POST /auth/token`",
    "storm_me": "`GET /api/me` during the login storm",
    "storm_login": "`POST /auth/token` (the storm)",
    "refresh": "`POST /auth/refresh` loop",
    "memory": "`GET /api/me`, {mem_conns} connections",
}


# --------------------------------------------------------------------------
# bcrypt-time
# --------------------------------------------------------------------------
def bcrypt_time(cost: int, min_runs: int, min_seconds: float) -> dict:
    import bcrypt  # imported here so `render` works without the venv

    password = b"bench-password-123"
    # One untimed hash: page in the code, warm the caches.
    bcrypt.hashpw(password, bcrypt.gensalt(rounds=cost))
    samples: list[float] = []
    started = time.perf_counter()
    while len(samples) < min_runs or time.perf_counter() - started < min_seconds:
        salt = bcrypt.gensalt(rounds=cost)
        t0 = time.perf_counter()
        hashed = bcrypt.hashpw(password, salt)
        samples.append(time.perf_counter() - t0)
        if len(samples) >= 50:
            break
    # Sanity: the hash verifies (same work again, not timed).
    assert bcrypt.checkpw(password, hashed)
    return {
        "cost": cost,
        "runs": len(samples),
        "median_s": statistics.median(samples),
        "min_s": min(samples),
        "max_s": max(samples),
        "impl": f"pyca/bcrypt {getattr(bcrypt, '__version__', '?')}",
    }


# --------------------------------------------------------------------------
# cpu-busy
# --------------------------------------------------------------------------
def cpu_busy(seconds: float) -> float:
    def sample() -> tuple[int, int]:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
        return sum(fields[:8]), idle  # guest time is already in user

    t0, i0 = sample()
    time.sleep(seconds)
    t1, i1 = sample()
    return 100.0 * (1 - (i1 - i0) / (t1 - t0)) if t1 > t0 else 0.0


# --------------------------------------------------------------------------
# cpu-snapshot
# --------------------------------------------------------------------------
def process_ticks(pid: int) -> int:
    """utime + stime of one process (clock ticks), 0 when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            # The command name may hold spaces: split after its closing paren.
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    except (OSError, IndexError, ValueError):
        return 0


def cpu_snapshot(server_pid: int) -> dict:
    """CPU used so far by the server, by every PostgreSQL process, and by
    the whole machine (busy ticks), for the per-request split of a phase."""
    postgres = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/comm") as f:
                name = f.read().strip()
        except OSError:
            continue
        if name == "postgres":
            postgres += process_ticks(int(entry))
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return {
        "server": process_ticks(server_pid),
        "postgres": postgres,
        "busy": sum(fields[:8]) - idle,
        "hz": os.sysconf("SC_CLK_TCK"),
    }


# --------------------------------------------------------------------------
# wait-ready, seed-sessions
# --------------------------------------------------------------------------
def wait_ready(url: str, since_ns: int, pid: int, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as reply:
                if reply.status == 200:
                    ms = (time.time_ns() - since_ns) / 1e6
                    print(json.dumps({"ms": round(ms, 1)}))
                    return 0
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            pass
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            print(f"report.py: server pid {pid} exited", file=sys.stderr)
            return 1
        time.sleep(0.002)
    return 1


def login_once(url: str, body: str) -> dict:
    """One login; raises urllib.error.HTTPError on a non-2xx answer."""
    request = urllib.request.Request(
        url, data=body.encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=120) as reply:
        return json.load(reply)


def seed_sessions(url: str, body: str, count: int) -> int:
    def login(_: int) -> str:
        for _attempt in range(60):
            try:
                return login_once(url, body)["refresh_token"]
            except urllib.error.HTTPError as err:
                if err.code != 503:
                    raise
                time.sleep(float(err.headers.get("Retry-After", "1")))
        raise SystemExit("report.py: the server kept answering 503")

    with ThreadPoolExecutor(max_workers=8) as pool:
        tokens = list(pool.map(login, range(count)))
    print("\n".join(tokens))
    return 0


def drain(url: str, body: str, hash_seconds: float, timeout: float) -> int:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        t0 = time.monotonic()
        try:
            login_once(url, body)
            if time.monotonic() - t0 < 3 * hash_seconds:
                print(f"{time.monotonic() - started:.1f}")
                return 0
        except urllib.error.HTTPError as err:
            if err.code != 503:
                raise
            time.sleep(0.5)
    print(f"report.py: the bcrypt queue did not drain within {timeout:.0f} s", file=sys.stderr)
    return 1


# --------------------------------------------------------------------------
# render
# --------------------------------------------------------------------------
def parse_wrk(path: Path) -> dict:
    """Parses the `BENCH k=v ...` line of one wrk output file."""
    if not path.exists():
        raise SystemExit(f"report.py: missing wrk output {path}")
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("BENCH "):
            fields = dict(kv.split("=", 1) for kv in line.split()[1:])
            r = {k: int(v) for k, v in fields.items()}
            r["ok"] = r["requests"] - r["non2xx"]
            r["socket_errors"] = r["connect"] + r["read"] + r["write"] + r["timeout"]
            r["rps"] = r["ok"] / (r["duration_us"] / 1e6) if r["duration_us"] else 0.0
            return r
    raise SystemExit(f"report.py: no BENCH line in {path}:\n{path.read_text(errors='replace')}")


def fmt_rate(x: float) -> str:
    return f"{x:,.0f}" if x >= 100 else f"{x:,.2f}"


def fmt_ms(us: float) -> str:
    if us >= 1_000_000:
        return f"{us / 1e6:,.2f} s"
    return f"{us / 1000:,.1f} ms" if us >= 1000 else f"{us:.0f} µs"


def verdict(ok: bool) -> str:
    return "✅ met" if ok else "❌ missed"


def failures(r: dict) -> str:
    """Failed requests of a phase, for the table."""
    bad = []
    if r["non2xx"]:
        bad.append(f"{r['non2xx']} non-2xx")
    if r["socket_errors"]:
        bad.append(f"{r['socket_errors']} socket errors")
    return ", ".join(bad) if bad else "0"


def load(directory: Path) -> dict:
    """Everything a run left in DIR that the report and the plot use."""
    runs = {p: parse_wrk(directory / f"{p}.out") for p in PHASES}
    return {
        "runs": runs,
        "bcrypt": json.loads((directory / "bcrypt.json").read_text()),
        "sign": json.loads((directory / "sign.json").read_text()),
    }


def cpu_per_request(directory: Path, runs: dict) -> list[tuple[str, dict]]:
    """Microseconds of CPU per successful request of each phase that has
    before/after snapshots, split into server, PostgreSQL and the rest."""
    rows = []
    for phase in PHASES:
        before, after = directory / f"{phase}.cpu0.json", directory / f"{phase}.cpu1.json"
        if not (before.exists() and after.exists()) or runs[phase]["ok"] == 0:
            continue
        a, b = json.loads(before.read_text()), json.loads(after.read_text())
        per_tick_us = 1e6 / a["hz"] / runs[phase]["ok"]
        server = (b["server"] - a["server"]) * per_tick_us
        postgres = (b["postgres"] - a["postgres"]) * per_tick_us
        busy = (b["busy"] - a["busy"]) * per_tick_us
        rows.append((phase, {"server": server, "postgres": postgres, "rest": max(busy - server - postgres, 0.0)}))
    return rows


def render(directory: Path, params: dict[str, str]) -> int:
    data = load(directory)
    runs = data["runs"]
    bc = data["bcrypt"]
    sign = data["sign"]
    rss = json.loads((directory / "rss.json").read_text())
    cold_ms = json.loads((directory / "startup_cold.json").read_text())["ms"]
    warm_ms = json.loads((directory / "startup_warm.json").read_text())["ms"]
    p = params
    cores = int(p["cores"])
    conns = int(p["conns"])
    mem_conns = int(p["memory_conns"])
    bound = cores / bc["median_s"]
    sign_bound = cores / sign["issue_s"]
    bare = runs["bare"]["rps"]
    h = runs["healthz"]["rps"]
    me = runs["me"]
    login = runs["login"]
    storm_me = runs["storm_me"]
    refresh = runs["refresh"]
    peak_mib = rss["end_hwm_kb"] / 1024
    expected_wait_us = conns / bound * 1e6  # FIFO queue of c logins, served at the bound

    names = {k: v.format(mem_conns=mem_conns) for k, v in NAMES.items()}
    out: list[str] = []
    out.append("# tessera benchmarks")
    out.append("")
    out.append(
        "Written by `bench/run.sh` from ONE run; every ratio compares figures of that run. "
        "Rerun it by hand (see the README); CI never runs it."
    )
    out.append("")
    out.append(f"- **Date:** {p['date']}")
    out.append(f"- **Commit:** `{p['commit']}`")
    out.append(f"- **Machine:** {p['machine']}; wrk, the server and PostgreSQL share these cores.")
    busy = float(p["background_busy"])
    warn = " ⚠ other processes were using the CPU: the ratios are distorted." if busy > 10 else ""
    out.append(
        f"- **Background load** before the phases (server idle): {busy:.0f} % of all CPUs, "
        f"load average {p['loadavg']}.{warn}"
    )
    out.append(
        f"- **wrk** {p['wrk_version']}, the same for every phase: `-t{p['threads']} -c{conns} "
        f"-d{p['duration']}s --timeout 30s`, {p['warmup']} s warm-up before each GET phase "
        f"(the memory phase: `-c{mem_conns}`). The login storm runs {p['storm_total']} s with "
        f"`/api/me` measured inside it from second {p['storm_ramp']}."
    )
    out.append(
        f"- **Server:** release build, `BCRYPT_COST={p['cost']}`, `AUTH_RATE_LIMIT_PER_MINUTE=0`, "
        f"`RUST_LOG={p['rust_log']}`, `TOKEN_CACHE_CAPACITY=100000` (a second process of the same "
        "binary with `0` for the uncached row)."
    )
    out.append(
        "- **Bare baseline:** `target/release/examples/bare_actix` (`bench/bare_actix.rs`): the "
        "same actix-web build as the server, one JSON route answering what `/healthz` answers, "
        "no middleware, started and measured in this run, right before `/healthz`."
    )
    out.append(
        f"- **bcrypt bound:** {cores} cores ÷ {bc['median_s'] * 1000:.1f} ms per hash at cost "
        f"{bc['cost']} = **{bound:.2f} logins/s** (one hash timed with {bc['impl']}, which wraps "
        f"the Rust `bcrypt` crate the server uses; median of {bc['runs']}, server idle)."
    )
    out.append(
        f"- **RS256 signing bound:** {cores} cores ÷ {sign['issue_s'] * 1000:.3f} ms per access "
        f"token = **{sign_bound:,.0f} refreshes/s** (RSA-{sign['bits']}, this run's key, timed by "
        f"`bench/sign_bound.rs` on one thread with the server's own `TokenService::issue`; median "
        f"of {sign['batches']} batches of {sign['batch']}, server idle). For comparison, "
        f"`jsonwebtoken::encode` with the same key and claims, which parses the key again for "
        f"each token: {sign['jsonwebtoken_encode_s'] * 1000:.3f} ms."
    )
    out.append("")
    out.append(f"![requests/s per scenario]({p['plot']})")
    out.append("")
    out.append(
        "| scenario | requests/s | p50 | p99 | ÷ bare actix-web | ÷ `/healthz` "
        "| ÷ bcrypt bound | ÷ signing bound | failed | peak RSS |"
    )
    out.append("|---|---|---|---|---|---|---|---|---|---|")
    for key in PHASES:
        r = runs[key]
        vs_bare = f"{r['rps'] / bare:.3f}" if key in VS_BARE and bare else "—"
        vs_h = f"{r['rps'] / h:.3f}" if key in VS_HEALTHZ and h else "—"
        vs_b = f"{r['rps'] / bound:.3f}" if key in VS_BCRYPT else "—"
        vs_s = f"{r['rps'] / sign_bound:.3f}" if key in VS_SIGNING else "—"
        rss_cell = f"{peak_mib:.1f} MiB" if key == "memory" else "—"
        out.append(
            f"| {names[key]} | {fmt_rate(r['rps'])} | {fmt_ms(r['p50_us'])} | {fmt_ms(r['p99_us'])} "
            f"| {vs_bare} | {vs_h} | {vs_b} | {vs_s} | {failures(r)} | {rss_cell} |"
        )
    out.append(
        f"| startup to `/readyz` 200, migrations applied | — | — | — | — | — | — | — | — "
        f"| {warm_ms:.0f} ms |"
    )
    out.append("")
    out.append(
        f"Peak RSS is the server's `VmHWM` over the whole run (it was {rss['idle_hwm_kb'] / 1024:.1f} MiB "
        f"right after startup; final VmRSS {rss['end_rss_kb'] / 1024:.1f} MiB). Startup is the time from "
        f"exec to the first `/readyz` 200 on the already-migrated database (the `me_nocache` process); "
        f"the first process, which created the database and applied the migrations, took {cold_ms:.0f} ms."
    )
    out.append("")

    targets = [
        (
            "17.1 `GET /api/me` ≥ 0.80 of the bare actix-web route",
            f"{me['rps'] / bare:.3f}",
            me["rps"] / bare >= 0.80,
        ),
        (
            "17.2 `GET /healthz` ≥ 0.85 of the bare actix-web route",
            f"{h / bare:.3f}",
            h / bare >= 0.85,
        ),
        (
            f"17.3 refresh ≥ 0.70 of the signing bound, p99 < 100 ms at {conns} connections",
            f"{refresh['rps'] / sign_bound:.3f} of the bound; p99 {fmt_ms(refresh['p99_us'])}",
            refresh["rps"] / sign_bound >= 0.70 and refresh["p99_us"] < 100_000,
        ),
        (
            "17.4 logins ≥ 0.95 of the bcrypt bound",
            f"{login['rps'] / bound:.3f}",
            login["rps"] / bound >= 0.95,
        ),
        (
            "5.1 `GET /api/me` ≥ 90 % of the no-auth route (`/healthz`)",
            f"{me['rps'] / h:.3f} with the cache; {runs['me_nocache']['rps'] / h:.3f} without",
            me["rps"] / h >= 0.90,
        ),
        (
            f"5.2 logins ≥ 90 % of the bcrypt bound at {conns} clients, p99 no worse than the queue "
            f"(≤ 1.2 × {conns} ÷ bound = {fmt_ms(1.2 * expected_wait_us)})",
            f"{login['rps'] / bound:.3f} of the bound; p99 {fmt_ms(login['p99_us'])}",
            login["rps"] / bound >= 0.90 and login["p99_us"] <= 1.2 * expected_wait_us,
        ),
        (
            "5.3 `/api/me` during a login storm ≥ 40 % of idle, p99 < 50 ms",
            f"{storm_me['rps'] / me['rps']:.3f} of idle; p99 {fmt_ms(storm_me['p99_us'])}",
            storm_me["rps"] / me["rps"] >= 0.40 and storm_me["p99_us"] < 50_000,
        ),
        (
            f"5.4, 17.5 peak RSS < 64 MiB at {mem_conns} connections",
            f"{peak_mib:.1f} MiB",
            peak_mib < 64,
        ),
        (
            "5.5 start to `/readyz` 200 < 1 s (migrations applied)",
            f"{warm_ms:.0f} ms",
            warm_ms < 1000,
        ),
    ]
    out.append("| target (issue.item) | measured | |")
    out.append("|---|---|---|")
    for name, measured, ok in targets:
        out.append(f"| {name} | {measured} | {verdict(ok)} |")
    out.append("")
    cpu_rows = cpu_per_request(directory, runs)
    if cpu_rows:
        out.append(
            "CPU per request, by process (from `/proc` before and after each phase; "
            "\"the rest\" is every other busy tick of the machine: wrk, and the kernel's network "
            f"work not charged to a process). {cores} cores can complete at most "
            f"{cores} s ÷ the total per second:"
        )
        out.append("")
        out.append("| scenario | server | PostgreSQL | the rest (wrk, kernel) | total | at most, req/s |")
        out.append("|---|---|---|---|---|---|")
        for phase, split in cpu_rows:
            total = split["server"] + split["postgres"] + split["rest"]
            out.append(
                f"| {names[phase]} | {fmt_ms(split['server'])} | {fmt_ms(split['postgres'])} "
                f"| {fmt_ms(split['rest'])} | {fmt_ms(total)} | {fmt_rate(cores * 1e6 / total)} |"
            )
        out.append("")
        split = dict(cpu_rows)
        why = []
        if "refresh" in split:
            r = split["refresh"]
            total = r["server"] + r["postgres"] + r["rest"]
            sign_us = sign["issue_s"] * 1e6
            why.append(
                f"- Refresh against the signing bound: a refresh costs {fmt_ms(total)} of CPU here, "
                f"of which the signature is {fmt_ms(sign_us)}; the rest is the server's other work "
                f"({fmt_ms(r['server'] - sign_us)}: HTTP, the pool, diesel, the token hashes) and "
                f"PostgreSQL's transaction ({fmt_ms(r['postgres'])}), on the same cores. So the "
                f"cores complete at most {fmt_rate(cores * 1e6 / total)} refreshes/s = "
                f"{sign_us / total:.2f} of the signing bound, however the server is tuned, unless "
                "the database work leaves these cores; at 64 connections each waits for about "
                f"64 × {fmt_ms(total / cores)} in the queue, which sets p99."
            )
        if "bare" in split and "me" in split:
            b, m = split["bare"], split["me"]
            bt, mt = (sum(x.values()) for x in (b, m))
            why.append(
                f"- `/api/me` against the bare route: the bare route costs {fmt_ms(bt)} of CPU per "
                f"request (server {fmt_ms(b['server'])}, wrk and the kernel {fmt_ms(b['rest'])}), "
                f"`/api/me` {fmt_ms(mt)} (server {fmt_ms(m['server'])}, the rest {fmt_ms(m['rest'])}): "
                f"the ratio is {bt / mt:.2f}. The difference is the work the route exists for "
                "(the bearer header read and hashed, the verified-token cache and the revocation "
                "set consulted, a JSON body of the claims) and wrk sending a token of about 850 "
                "bytes with each request, on the same cores (`bench/profile.sh` breaks it down)."
            )
        if why:
            out.append("Why the CPU-bound targets are where they are:")
            out.append("")
            out.extend(why)
            out.append("")
    out.append("Method:")
    out.append("")
    out.append(
        "- Requests/s count only 2xx answers over wrk's measured duration; a run with failures "
        "shows them in the `failed` column. p50/p99 are wrk's latency percentiles."
    )
    out.append(
        "- One bearer token is reused for every `/api/me` request, so with the cache on, the "
        "rows measure the cached path (SHA-256 of the token and one LRU lookup); the uncached row "
        "pays one full RS256 verification per request."
    )
    out.append(
        f"- Logins: wrk's closed loop keeps {conns} logins outstanding; they queue for the "
        "bcrypt threads (one per core, nice 10), so each waits about c ÷ throughput and p99 "
        "is compared with that queue."
    )
    out.append(
        "- The refresh loop gives each connection its own session and presents each refresh "
        "token exactly once (the successor goes back into the pool). Its bound is the signing "
        "bound: each refresh signs one access token. Besides that it runs one database "
        "transaction of 6 round trips on one of the pool's connections (the pool's check, BEGIN, "
        "the live session updated and locked by the token's hash, the token and its user, one "
        "statement spending the token and inserting its successor, COMMIT, which waits for "
        "the WAL flush), whose PostgreSQL CPU shares the same cores and which the signing bound "
        "does not count."
    )
    out.append(
        f"- wrk runs {p['threads']} threads on the same cores as the server: with one thread, "
        "wrk itself is the bottleneck of the cheap routes and hides the server's cost."
    )
    print("\n".join(out))

    broken = [
        k for k in ("bare", "healthz", "me", "me_nocache", "storm_me", "memory") if runs[k]["ok"] == 0
    ]
    if broken:
        print(f"report.py: no successful request in {', '.join(broken)}", file=sys.stderr)
        return 1
    return 0


# --------------------------------------------------------------------------
# plot
# --------------------------------------------------------------------------
PLOT_LABELS = {
    "bare": "bare actix-web",
    "healthz": "/healthz",
    "me": "/api/me (cache)",
    "me_nocache": "/api/me (no cache)",
    "storm_me": "/api/me in login storm",
    "memory": "/api/me, 256 conns",
    "refresh": "refresh",
    "login": "logins",
    "storm_login": "logins (storm)",
}


def plot(directory: Path, out: Path, params: dict[str, str]) -> int:
    import subprocess

    data = load(directory)
    runs = data["runs"]
    cores = int(params["cores"])
    sign_bound = cores / data["sign"]["issue_s"]
    bcrypt_bound = cores / data["bcrypt"]["median_s"]
    # (label, req/s, kind): kind 0 = the bare ceiling or a bound, 1 = measured.
    rows = [(PLOT_LABELS["bare"], runs["bare"]["rps"], 0)]
    for key in ("healthz", "me", "me_nocache", "storm_me", "memory"):
        rows.append((PLOT_LABELS[key], runs[key]["rps"], 1))
    rows.append(("RS256 signing bound", sign_bound, 0))
    rows.append((PLOT_LABELS["refresh"], runs["refresh"]["rps"], 1))
    rows.append(("bcrypt bound", bcrypt_bound, 0))
    for key in ("login", "storm_login"):
        rows.append((PLOT_LABELS[key], runs[key]["rps"], 1))
    table = directory / "plot.dat"
    with table.open("w") as f:
        for i, (label, rps, kind) in enumerate(rows):
            f.write(f'{i} "{label}" {max(rps, 0.01):.3f} {kind} "{fmt_rate(rps)}"\n')
    title = params.get("title", "tessera").replace('"', "'")
    script = f"""
set terminal png size 1100,560 font ",10"
set output "{out}"
set title "{title}: requests/s (log scale); grey: the bare actix-web route and the two bounds"
set style fill solid 0.85 border -1
set boxwidth 0.7
set logscale y
set yrange [1:*]
set grid ytics
set ylabel "requests/s"
set xtics rotate by -30 left nomirror
set key off
plot "{table}" using 1:($4 == 0 ? $3 : 1/0):xtic(2) with boxes lc rgb "#9e9e9e", \\
     "" using 1:($4 == 1 ? $3 : 1/0) with boxes lc rgb "#1f77b4", \\
     "" using 1:3:5 with labels offset 0,0.7 font ",9"
"""
    out.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["gnuplot"], input=script, text=True, check=True)
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("bcrypt-time")
    b.add_argument("--cost", type=int, required=True)
    b.add_argument("--min-runs", type=int, default=5)
    b.add_argument("--min-seconds", type=float, default=2.0)
    c = sub.add_parser("cpu-busy")
    c.add_argument("--seconds", type=float, default=1.0)
    cs = sub.add_parser("cpu-snapshot", help="CPU ticks of the server, PostgreSQL and the machine")
    cs.add_argument("--server-pid", type=int, required=True)
    w = sub.add_parser("wait-ready")
    w.add_argument("--url", required=True)
    w.add_argument("--since-ns", type=int, required=True)
    w.add_argument("--pid", type=int, required=True)
    w.add_argument("--timeout", type=float, default=60.0)
    s = sub.add_parser("seed-sessions")
    s.add_argument("--url", required=True)
    s.add_argument("--body", required=True)
    s.add_argument("--count", type=int, required=True)
    d = sub.add_parser("drain")
    d.add_argument("--url", required=True)
    d.add_argument("--body", required=True)
    d.add_argument("--hash-seconds", type=float, required=True)
    d.add_argument("--timeout", type=float, default=120.0)
    r = sub.add_parser("render")
    r.add_argument("--dir", type=Path, required=True)
    r.add_argument("--param", action="append", default=[], metavar="KEY=VALUE")
    pl = sub.add_parser("plot")
    pl.add_argument("--dir", type=Path, required=True)
    pl.add_argument("--out", type=Path, required=True)
    pl.add_argument("--param", action="append", default=[], metavar="KEY=VALUE")
    args = ap.parse_args()

    if args.cmd == "bcrypt-time":
        print(json.dumps(bcrypt_time(args.cost, args.min_runs, args.min_seconds)))
        return 0
    if args.cmd == "cpu-busy":
        print(f"{cpu_busy(args.seconds):.1f}")
        return 0
    if args.cmd == "cpu-snapshot":
        print(json.dumps(cpu_snapshot(args.server_pid)))
        return 0
    if args.cmd == "wait-ready":
        return wait_ready(args.url, args.since_ns, args.pid, args.timeout)
    if args.cmd == "drain":
        return drain(args.url, args.body, args.hash_seconds, args.timeout)
    if args.cmd == "seed-sessions":
        return seed_sessions(args.url, args.body, args.count)
    params = dict(kv.split("=", 1) for kv in args.param)
    if args.cmd == "plot":
        return plot(args.dir, args.out, params)
    return render(args.dir, params)


if __name__ == "__main__":
    sys.exit(main())

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
      Prints the share of all CPUs (0–100) that was busy over S seconds,
      from /proc/stat: run while the server is idle, it shows how much other
      work (a concurrent cargo build, say) competes with the benchmark.

  render --dir DIR [--param KEY=VALUE ...]
      Reads the wrk outputs (`<phase>.out`, each holding the `BENCH ...` line
      that bench/wrk.lua prints), `bcrypt.json` and `rss.json` from DIR and
      prints the Markdown report on stdout. Exits 1 when a phase is missing
      or produced no successful request.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

PHASES = ("healthz", "me", "login", "storm_me", "storm_login")


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


def fmt_ms(us: int) -> str:
    return f"{us / 1000:,.1f} ms" if us >= 1000 else f"{us} µs"


def ratio(num: float, den: float) -> str:
    return f"**{num / den:.3f}**" if den else "n/a"


def flag(r: dict) -> str:
    """A warning marker when a phase saw failures."""
    bad = []
    if r["non2xx"]:
        bad.append(f"{r['non2xx']} non-2xx")
    if r["socket_errors"]:
        bad.append(f"{r['socket_errors']} socket errors/timeouts")
    if r["ok"] == 0:
        bad.append("nothing completed")
    return f" ⚠ {', '.join(bad)}" if bad else ""


def render(directory: Path, params: dict[str, str]) -> int:
    runs = {p: parse_wrk(directory / f"{p}.out") for p in PHASES}
    bc = json.loads((directory / "bcrypt.json").read_text())
    conns = {
        "healthz": int(params["conns"]),
        "me": int(params["conns"]),
        "login": int(params["login_conns"]),
        "storm_me": int(params["conns"]),
        "storm_login": int(params["storm_conns"]),
    }
    rss = json.loads((directory / "rss.json").read_text())
    cores = int(params["cores"])
    hash_s = bc["median_s"]
    bound = cores / hash_s

    h, me, login = runs["healthz"], runs["me"], runs["login"]
    s_me, s_login = runs["storm_me"], runs["storm_login"]

    p = params
    out: list[str] = []
    out.append(f"# tessera benchmark — {p['date']}")
    out.append("")
    out.append(
        f"wrk {p['wrk_version']}: `-t{p['threads']} -c{p['conns']}` for GET phases, "
        f"`-t{p['threads']} -c{p['login_conns']}` for the login phase, "
        f"`-t{p['threads']} -c{p['storm_conns']}` login storm for {p['storm_total']} s with "
        f"`-t{p['threads']} -c{p['conns']}` `/api/me` measured inside it from second {p['storm_ramp']}; "
        f"{p['duration']} s per phase (after a {p['warmup']} s warm-up), "
        f"`--timeout 30s`. Server: `BCRYPT_COST={p['cost']}`, `AUTH_RATE_LIMIT_PER_MINUTE=0`, "
        f"`TOKEN_CACHE_CAPACITY={p['cache']}`, `RUST_LOG={p['rust_log']}`, {p['cores']} cores "
        f"(`nproc`), commit `{p['commit']}`."
    )
    out.append("")
    busy = float(p["background_busy"])
    note = (
        " ⚠ **other processes were using the CPU: every ratio here is distorted; rerun on a "
        "quiet machine.**"
        if busy > 10
        else ""
    )
    out.append(
        f"Background load before the phases (server idle): {busy:.0f} % of all CPUs busy, "
        f"load average {p['loadavg']}.{note}"
    )
    out.append("")
    out.append("| # | measure | value | reference | ratio |")
    out.append("|---|---|---|---|---|")
    out.append(
        f"| 1 | `GET /api/me` req/s ÷ `GET /healthz` req/s | "
        f"{fmt_rate(me['rps'])}{flag(me)} | {fmt_rate(h['rps'])}{flag(h)} | {ratio(me['rps'], h['rps'])} |"
    )
    out.append(
        f"| 2 | `POST /auth/token` logins/s ÷ bcrypt bound (cores ÷ one hash) | "
        f"{fmt_rate(login['rps'])}{flag(login)} | {cores} ÷ {hash_s * 1000:.1f} ms = {bound:.2f}/s | "
        f"{ratio(login['rps'], bound)} |"
    )
    out.append(
        f"| 3 | `GET /api/me` req/s during login storm ÷ row 1 `/api/me` | "
        f"{fmt_rate(s_me['rps'])}{flag(s_me)} | {fmt_rate(me['rps'])} | {ratio(s_me['rps'], me['rps'])} |"
    )
    out.append(
        f"| 4 | peak RSS (VmHWM at end) ÷ VmHWM right after startup | "
        f"{rss['end_hwm_kb'] / 1024:.1f} MiB | {rss['idle_hwm_kb'] / 1024:.1f} MiB | "
        f"{ratio(rss['end_hwm_kb'], rss['idle_hwm_kb'])} |"
    )
    out.append("")
    out.append("Per phase (successful = 2xx; context for the ratios above, not a target):")
    out.append("")
    out.append(
        "| phase | wrk -c | successful req/s | c ÷ mean latency (logins) | non-2xx | socket errors | p50 | p99 |"
    )
    out.append("|---|---|---|---|---|---|---|---|")
    names = {
        "healthz": "`GET /healthz`",
        "me": "`GET /api/me`",
        "login": "`POST /auth/token`",
        "storm_me": "`GET /api/me` during storm",
        "storm_login": "`POST /auth/token` (the storm)",
    }
    for key in PHASES:
        r = runs[key]
        # Little's law only for the bcrypt-bound phases: on the fast GET
        # phases wrk's own time between requests is not in its latency.
        little = (
            fmt_rate(conns[key] / (r["mean_us"] / 1e6))
            if key in ("login", "storm_login") and r["mean_us"]
            else "—"
        )
        out.append(
            f"| {names[key]} | {conns[key]} | {fmt_rate(r['rps'])} | {little} | "
            f"{r['non2xx']} | {r['socket_errors']} | "
            f"{fmt_ms(r['p50_us'])} | {fmt_ms(r['p99_us'])} |"
        )
    out.append("")
    out.append(
        f"Storm logins/s ÷ bcrypt bound: {s_login['rps'] / bound:.3f}. "
        f"Final VmRSS {rss['end_rss_kb'] / 1024:.1f} MiB."
    )
    out.append("")
    out.append("Method:")
    out.append("")
    out.append(
        f"- bcrypt bound: one hash at cost {bc['cost']} timed with {bc['impl']} (a wrapper over "
        f"the Rust `bcrypt` crate the server uses) on one thread, median of {bc['runs']} "
        f"(min {bc['min_s'] * 1000:.1f} ms, max {bc['max_s'] * 1000:.1f} ms), measured in this "
        "run with the server idle. A login costs one `bcrypt::verify` = one hash. wrk, the "
        "server and PostgreSQL share the same cores, so a ratio below 1 is expected."
    )
    out.append(
        "- Throughput counts only 2xx answers over wrk's measured duration; requests still in "
        "flight when wrk stops are not counted, which understates slow phases (logins) by up to "
        "connections ÷ (rate × duration). The `c ÷ mean latency` column (Little's law for wrk's "
        "closed loop) has no such cut-off and cross-checks the slow phases."
    )
    out.append(
        "- One bearer token is reused for every `/api/me` request, so with the token cache on, "
        "row 1 measures the cached path; run with `TOKEN_CACHE_CAPACITY=0` to measure a full "
        "RS256 verification per request."
    )
    out.append("- Peak RSS: `VmHWM` from `/proc/<pid>/status` of the server process.")
    print("\n".join(out))

    # A GET phase without a single 2xx means the setup is broken (a bad
    # token, a dead server); zero logins can be a real (bad) result.
    broken = [k for k in ("healthz", "me", "storm_me") if runs[k]["ok"] == 0]
    if broken:
        print(f"report.py: no successful request in {', '.join(broken)}", file=sys.stderr)
        return 1
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
    r = sub.add_parser("render")
    r.add_argument("--dir", type=Path, required=True)
    r.add_argument("--param", action="append", default=[], metavar="KEY=VALUE")
    args = ap.parse_args()

    if args.cmd == "bcrypt-time":
        print(json.dumps(bcrypt_time(args.cost, args.min_runs, args.min_seconds)))
        return 0
    if args.cmd == "cpu-busy":
        print(f"{cpu_busy(args.seconds):.1f}")
        return 0
    params = dict(kv.split("=", 1) for kv in args.param)
    return render(args.dir, params)


if __name__ == "__main__":
    sys.exit(main())

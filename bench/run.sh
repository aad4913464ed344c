#!/usr/bin/env bash
# tessera benchmark (SPEC §9, issues 5 and 17), run by hand:  bench/run.sh
#
# One run, one server, every scenario driven by wrk with the SAME settings
# (threads, connections, duration, timeout); the report prints RATIOS
# measured in this run, never absolute-time assertions. wrk runs two threads
# (-t2) so that the server, not one wrk thread, is the bottleneck:
#   bare         GET /healthz on a bare actix-web server (bench/bare_actix.rs:
#                same actix-web, one JSON route, no middleware, no state):
#                the ceiling /healthz and /api/me are compared with
#   healthz      GET /healthz: the no-auth JSON route (no database)
#   me           GET /api/me with the verified-token cache
#   me_nocache   GET /api/me on a second process of the same binary with
#                TOKEN_CACHE_CAPACITY=0 (a full RS256 verification each time)
#   login        POST /auth/token, against the bcrypt bound
#                (cores ÷ one bcrypt hash at the server's cost)
#   storm_me     GET /api/me while a login storm runs (storm_login)
#   refresh      POST /auth/refresh loop, every connection its own chain,
#                against the RS256 signing bound (cores ÷ one access token
#                signed by tessera's own TokenService with this run's key,
#                timed by bench/sign_bound.rs while the server is idle)
#   memory       GET /api/me with MEMORY_CONNECTIONS (256) connections
# plus peak RSS (VmHWM) and the time from exec to /readyz answering 200,
# cold (creates the database, runs migrations) and warm (migrations already
# applied). It writes BENCHMARKS.md at the repository root (machine, commit,
# date, the table, which targets are met) and prints it, and plots req/s per
# scenario next to the bare baseline and the two bounds (PLOT, a PNG drawn by
# gnuplot) that BENCHMARKS.md links to. Progress → stderr.
# Every phase is bounded in time; the script stops everything it started and
# drops its database, also on Ctrl-C.
#
# Environment (all optional):
#   DURATION=15            seconds per phase
#   WARMUP=2               untimed seconds before each GET phase
#   CONNECTIONS=64         wrk -c of every phase (64 concurrent clients)
#   MEMORY_CONNECTIONS=256 wrk -c of the memory phase
#   WRK_THREADS=2          wrk -t of every phase
#   STORM_RAMP=3           seconds the storm runs before storm_me starts
#   BCRYPT_COST=12         server cost AND the cost of the timed bcrypt hash
#   SIGN_SECONDS=3         how long the signing bound is timed
#   WAIT_IDLE_SECONDS=0    wait up to this long for other CPU load to stop
#   BENCH_RUST_LOG=warn    RUST_LOG of the server (info logs every request)
#   BENCH_PG_HOST=127.0.0.1 BENCH_PG_PORT=5432 BENCH_PG_USER=postgres
#   SKIP_BUILD=1           do not run `cargo build --release`
#   TESSERA_BIN=…          binary to benchmark (default target/release/tessera)
#   BARE_BIN=… SIGN_BIN=…  the two helpers (default target/release/examples/…)
#   OUT=…                  report path (default BENCHMARKS.md in the repo root)
#   PLOT=…                 plot path (default bench/throughput.png)
#
# Needs: cargo, curl, psql, python3 (3.11), wrk and gnuplot (both installed
# with apt-get if missing; PostgreSQL is started with pg_ctlcluster if it is
# down). A venv with pyca/bcrypt is created in bench/.venv on first use.
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$BENCH_DIR")

DURATION=${DURATION:-15}
WARMUP=${WARMUP:-2}
CONNECTIONS=${CONNECTIONS:-64}
MEMORY_CONNECTIONS=${MEMORY_CONNECTIONS:-256}
WRK_THREADS=${WRK_THREADS:-2}
STORM_RAMP=${STORM_RAMP:-3}
BCRYPT_COST=${BCRYPT_COST:-12}
SIGN_SECONDS=${SIGN_SECONDS:-3}
WAIT_IDLE_SECONDS=${WAIT_IDLE_SECONDS:-0}
BENCH_RUST_LOG=${BENCH_RUST_LOG:-warn}
PG_HOST=${BENCH_PG_HOST:-127.0.0.1}
PG_PORT=${BENCH_PG_PORT:-5432}
PG_USER=${BENCH_PG_USER:-postgres}

BIN=${TESSERA_BIN:-$ROOT/target/release/tessera}
BARE_BIN=${BARE_BIN:-$ROOT/target/release/examples/bare_actix}
SIGN_BIN=${SIGN_BIN:-$ROOT/target/release/examples/sign_bound}
VENV="$BENCH_DIR/.venv"
OUT=${OUT:-$ROOT/BENCHMARKS.md}
PLOT=${PLOT:-$BENCH_DIR/throughput.png}
DB_NAME="tessera_bench_$$"
BENCH_USER="bench_user"
BENCH_PASSWORD="bench-password-123"

log() { printf '[bench] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

for v in DURATION WARMUP CONNECTIONS MEMORY_CONNECTIONS WRK_THREADS STORM_RAMP BCRYPT_COST \
    SIGN_SECONDS WAIT_IDLE_SECONDS; do
    [[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a non-negative integer, got '${!v}'"
done
((DURATION >= 1)) || die "DURATION must be ≥ 1"
((WRK_THREADS >= 1 && CONNECTIONS >= WRK_THREADS)) || die "need CONNECTIONS ≥ WRK_THREADS ≥ 1"
((BCRYPT_COST >= 4 && BCRYPT_COST <= 31)) || die "BCRYPT_COST must be 4–31"

# ---------------------------------------------------------------- cleanup --
TMP=$(mktemp -d "${TMPDIR:-/tmp}/tessera-bench.XXXXXX")
SERVER_PIDS=()
BG_PIDS=()
DB_CREATED=""

stop_server() { # stop_server <pid>: SIGTERM, then SIGKILL after 10 s
    local pid=$1
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "WARNING: tessera (pid $pid) ignored SIGTERM for 10 s; killing"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    for pid in "${BG_PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${SERVER_PIDS[@]}"; do
        stop_server "$pid"
    done
    if [[ -n $DB_CREATED ]]; then
        if psql -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d postgres -qAt -v ON_ERROR_STOP=1 \
            -c "DROP DATABASE IF EXISTS \"$DB_NAME\" WITH (FORCE)" >/dev/null 2>&1; then
            log "dropped database $DB_NAME"
        else
            log "WARNING: could not drop database $DB_NAME"
        fi
    fi
    if ((rc != 0)); then
        for f in "$TMP"/server-*.log; do
            [[ -s $f ]] || continue
            log "$(basename "$f") (last 20 lines):"
            tail -n 20 "$f" >&2 || true
        done
    fi
    rm -rf "$TMP"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------- prerequisites --
SUDO=""
((EUID == 0)) || SUDO="sudo"
apt_install() { # apt_install <command> <package>
    command -v "$1" >/dev/null 2>&1 && return 0
    log "$1 not found; installing $2 with apt-get"
    $SUDO apt-get install -y --no-install-recommends "$2" >&2 ||
        { $SUDO apt-get update >&2 && $SUDO apt-get install -y --no-install-recommends "$2" >&2; }
}
apt_install wrk wrk
apt_install gnuplot gnuplot-nox
for cmd in curl psql pg_isready python3 wrk gnuplot; do
    command -v "$cmd" >/dev/null 2>&1 || die "$cmd is required"
done
if ! pg_isready -h "$PG_HOST" -p "$PG_PORT" -q; then
    log "PostgreSQL is down; starting it"
    $SUDO pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start >&2 || true
    for _ in $(seq 1 30); do
        pg_isready -h "$PG_HOST" -p "$PG_PORT" -q && break
        sleep 1
    done
    pg_isready -h "$PG_HOST" -p "$PG_PORT" -q || die "PostgreSQL does not answer on $PG_HOST:$PG_PORT"
fi

if ! "$VENV/bin/python" -c 'import bcrypt' >/dev/null 2>&1; then
    log "creating $VENV with pyca/bcrypt"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check 'bcrypt>=4.1,<6' >&2
fi
PY="$VENV/bin/python"
REPORT=("$PY" "$BENCH_DIR/report.py")

if [[ ${SKIP_BUILD:-0} != 1 ]]; then
    log "cargo build --release (tessera, examples bare_actix and sign_bound)"
    (cd "$ROOT" && cargo build --release --bin tessera --example bare_actix --example sign_bound >&2) ||
        die "cargo build --release failed"
fi
for b in "$BIN" "$BARE_BIN" "$SIGN_BIN"; do
    [[ -x $b ]] || die "$b not found (build it, or unset SKIP_BUILD)"
done

CORES=$(nproc)
free_port() { "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
CURL=(curl --noproxy '*' -sS --max-time 30)

# ------------------------------------------------------------------ servers --
"$BIN" keygen "$TMP/key.pem" >/dev/null 2>&1 || die "tessera keygen failed"

# start_server <name> <port> <token cache capacity>: starts tessera in the
# background (SERVER_PID), then waits for /readyz 200 and writes the time
# from exec to that answer to $TMP/startup_<name>.json.
start_server() {
    local name=$1 port=$2 cache=$3
    local started_ns
    started_ns=$(date +%s%N)
    # Run from $TMP so a developer's .env in the repository does not leak in.
    (
        cd "$TMP"
        exec env \
            DATABASE_URL="postgres://$PG_USER@$PG_HOST:$PG_PORT/$DB_NAME" \
            BIND_ADDR="127.0.0.1:$port" \
            JWT_PRIVATE_KEY_PATH="$TMP/key.pem" \
            BCRYPT_COST="$BCRYPT_COST" \
            AUTH_RATE_LIMIT_PER_MINUTE=0 \
            TOKEN_CACHE_CAPACITY="$cache" \
            ACCESS_TOKEN_TTL_SECONDS=86400 \
            RUST_LOG="$BENCH_RUST_LOG" \
            "$BIN" serve
    ) >"$TMP/server-$name.log" 2>&1 &
    SERVER_PID=$!
    SERVER_PIDS+=("$SERVER_PID")
    "${REPORT[@]}" wait-ready --url "http://127.0.0.1:$port/readyz" --since-ns "$started_ns" \
        --pid "$SERVER_PID" --timeout 60 >"$TMP/startup_$name.json" ||
        die "tessera ($name) did not answer /readyz 200 within 60 s"
}

PORT=$(free_port)
BASE="http://127.0.0.1:$PORT"
log "starting tessera on $BASE (fresh database $DB_NAME, BCRYPT_COST=$BCRYPT_COST)"
DB_CREATED=1 # the server creates it; drop it on exit even if startup fails halfway
start_server cold "$PORT" 100000
MAIN_PID=$SERVER_PID
log "tessera is up (pid $MAIN_PID)"

vm_kb() { awk -v k="$1:" '$1 == k { print $2 }' "/proc/$2/status"; }
IDLE_HWM=$(vm_kb VmHWM "$MAIN_PID")

# ------------------------------------------------------ user and a token --
status=$("${CURL[@]}" -o "$TMP/register.json" -w '%{http_code}' -X POST "$BASE/auth/register" \
    -H 'Content-Type: application/json' \
    -d "{\"username\":\"$BENCH_USER\",\"password\":\"$BENCH_PASSWORD\"}")
[[ $status == 201 ]] || die "register answered $status: $(cat "$TMP/register.json")"

LOGIN_BODY="{\"username\":\"$BENCH_USER\",\"password\":\"$BENCH_PASSWORD\"}"
status=$("${CURL[@]}" -o "$TMP/login.json" -w '%{http_code}' -X POST "$BASE/auth/token" \
    -H 'Content-Type: application/json' -d "$LOGIN_BODY")
[[ $status == 200 ]] || die "login answered $status: $(cat "$TMP/login.json")"
TOKEN=$("$PY" -c 'import json, sys; print(json.load(open(sys.argv[1]))["access_token"])' "$TMP/login.json")
AUTH_HEADER="Authorization: Bearer $TOKEN"

status=$("${CURL[@]}" -o "$TMP/me.json" -w '%{http_code}' -H "$AUTH_HEADER" "$BASE/api/me")
[[ $status == 200 ]] || die "/api/me answered $status: $(cat "$TMP/me.json")"

# ------------------------------------------------------ background load --
# Other work on the machine (a concurrent cargo build, say) distorts every
# ratio; measure it while the server is idle and print it in the report.
# WAIT_IDLE_SECONDS>0 first waits (up to that long) for a quiet machine.
busy_now() { "${REPORT[@]}" cpu-busy --seconds 2; }
is_busy() { awk -v b="$1" 'BEGIN { exit !(b > 10) }'; }
BACKGROUND_BUSY=$(busy_now)
if ((WAIT_IDLE_SECONDS > 0)) && is_busy "$BACKGROUND_BUSY"; then
    log "waiting up to ${WAIT_IDLE_SECONDS}s for the CPUs to go quiet (now ${BACKGROUND_BUSY}% busy)"
    deadline=$((SECONDS + WAIT_IDLE_SECONDS))
    while is_busy "$BACKGROUND_BUSY" && ((SECONDS < deadline)); do
        BACKGROUND_BUSY=$(busy_now)
    done
fi
LOADAVG=$(cut -d' ' -f1-3 /proc/loadavg)
if is_busy "$BACKGROUND_BUSY"; then
    log "WARNING: ${BACKGROUND_BUSY}% of the CPUs are busy with other work; results will be distorted"
fi

# ---------------------------------------------------- bcrypt, same run --
log "timing one bcrypt hash at cost $BCRYPT_COST (server idle)"
"${REPORT[@]}" bcrypt-time --cost "$BCRYPT_COST" >"$TMP/bcrypt.json"

# ------------------------------------------------ RS256 signing, same run --
# The server's own key and its own signing code (TokenService::issue), one
# thread, while the server is idle: cores ÷ this is the signing bound.
log "timing RS256 access-token signing for ${SIGN_SECONDS}s (server idle)"
"$SIGN_BIN" "$TMP/key.pem" "$SIGN_SECONDS" >"$TMP/sign.json" || die "sign_bound failed"

# ------------------------------------------------------------------ phases --
# wrk_bg <phase> <connections> <duration> <url> [wrk args...]: starts wrk in
# the background (WRK_PID), output in $TMP/<phase>.out; run_wrk waits for it.
wrk_bg() {
    local phase=$1 conns=$2 dur=$3 url=$4
    shift 4
    BENCH_THREADS=$WRK_THREADS wrk -t"$WRK_THREADS" -c"$conns" -d"${dur}s" --timeout 30s \
        -s "$BENCH_DIR/wrk.lua" "$@" "$url" >"$TMP/$phase.out" 2>&1 &
    WRK_PID=$!
    BG_PIDS+=("$WRK_PID")
}
# CPU_PID: the server a phase measures; its CPU, PostgreSQL's and the
# machine's are read before and after the phase (the CPU-per-request table).
cpu_snapshot() { # cpu_snapshot <file>
    [[ -n ${CPU_PID:-} ]] && "${REPORT[@]}" cpu-snapshot --server-pid "$CPU_PID" >"$1"
    return 0
}
run_wrk() {
    [[ $1 == warmup ]] || cpu_snapshot "$TMP/$1.cpu0.json"
    wrk_bg "$@"
    wait "$WRK_PID" || { cat "$TMP/$1.out" >&2; die "wrk failed in phase $1"; }
    BG_PIDS=()
    [[ $1 == warmup ]] || cpu_snapshot "$TMP/$1.cpu1.json"
}
warm() { # warm <url> [wrk args...]
    local url=$1
    shift
    ((WARMUP > 0)) && run_wrk warmup "$CONNECTIONS" "$WARMUP" "$url" "$@"
    return 0
}

BARE_PORT=$(free_port)
log "phase bare: GET /healthz on the bare actix-web server (port $BARE_PORT), ${DURATION}s"
"$BARE_BIN" "127.0.0.1:$BARE_PORT" >"$TMP/server-bare.log" 2>&1 &
BARE_PID=$!
SERVER_PIDS+=("$BARE_PID")
for _ in $(seq 1 100); do
    "${CURL[@]}" -fo /dev/null "http://127.0.0.1:$BARE_PORT/healthz" 2>/dev/null && break
    kill -0 "$BARE_PID" 2>/dev/null || die "the bare actix-web server exited"
    sleep 0.1
done
warm "http://127.0.0.1:$BARE_PORT/healthz"
CPU_PID=$BARE_PID
run_wrk bare "$CONNECTIONS" "$DURATION" "http://127.0.0.1:$BARE_PORT/healthz"
stop_server "$BARE_PID"

log "phase healthz: GET /healthz, ${DURATION}s"
CPU_PID=$MAIN_PID
warm "$BASE/healthz"
run_wrk healthz "$CONNECTIONS" "$DURATION" "$BASE/healthz"

log "phase me: GET /api/me with the token cache, ${DURATION}s"
warm "$BASE/api/me" -H "$AUTH_HEADER"
run_wrk me "$CONNECTIONS" "$DURATION" "$BASE/api/me" -H "$AUTH_HEADER"

NOCACHE_PORT=$(free_port)
log "phase me_nocache: a second process with TOKEN_CACHE_CAPACITY=0 on port $NOCACHE_PORT"
start_server warm "$NOCACHE_PORT" 0
NOCACHE_PID=$SERVER_PID
CPU_PID=$NOCACHE_PID
warm "http://127.0.0.1:$NOCACHE_PORT/api/me" -H "$AUTH_HEADER"
run_wrk me_nocache "$CONNECTIONS" "$DURATION" "http://127.0.0.1:$NOCACHE_PORT/api/me" -H "$AUTH_HEADER"
stop_server "$NOCACHE_PID"
CPU_PID=$MAIN_PID

HASH_SECONDS=$("$PY" -c 'import json, sys; print(json.load(open(sys.argv[1]))["median_s"])' "$TMP/bcrypt.json")
# Logins that wrk abandoned at the end of a phase still run; start the next
# bcrypt-bound phase on an empty queue.
drain() {
    local waited
    waited=$("${REPORT[@]}" drain --url "$BASE/auth/token" --body "$LOGIN_BODY" \
        --hash-seconds "$HASH_SECONDS") || die "the bcrypt queue did not drain"
    log "bcrypt queue empty (waited ${waited}s)"
}

log "phase login: POST /auth/token, ${DURATION}s"
BENCH_MODE=login BENCH_LOGIN_BODY="$LOGIN_BODY" \
    run_wrk login "$CONNECTIONS" "$DURATION" "$BASE/auth/token"

drain
# The storm starts STORM_RAMP seconds early (so every storm connection has a
# login queued when /api/me is measured) and ends a second after it.
STORM_TOTAL=$((STORM_RAMP + DURATION + 1))
log "phase storm: GET /api/me for ${DURATION}s inside a ${STORM_TOTAL}s login storm"
BENCH_MODE=login BENCH_LOGIN_BODY="$LOGIN_BODY" \
    wrk_bg storm_login "$CONNECTIONS" "$STORM_TOTAL" "$BASE/auth/token"
STORM_PID=$WRK_PID
sleep "$STORM_RAMP"
CPU_PID="" # two wrk at once: no per-request split
run_wrk storm_me "$CONNECTIONS" "$DURATION" "$BASE/api/me" -H "$AUTH_HEADER"
BG_PIDS=("$STORM_PID")
wait "$STORM_PID" || { cat "$TMP/storm_login.out" >&2; die "login storm wrk failed"; }
BG_PIDS=()
CPU_PID=$MAIN_PID

drain
log "seeding $CONNECTIONS sessions for the refresh loop"
"${REPORT[@]}" seed-sessions --url "$BASE/auth/token" --body "$LOGIN_BODY" \
    --count "$CONNECTIONS" >"$TMP/refresh_tokens.txt" || die "could not seed sessions"
log "phase refresh: POST /auth/refresh loop, ${DURATION}s"
BENCH_MODE=refresh BENCH_REFRESH_TOKENS="$TMP/refresh_tokens.txt" \
    run_wrk refresh "$CONNECTIONS" "$DURATION" "$BASE/auth/refresh"

log "phase memory: GET /api/me with $MEMORY_CONNECTIONS connections, ${DURATION}s"
run_wrk memory "$MEMORY_CONNECTIONS" "$DURATION" "$BASE/api/me" -H "$AUTH_HEADER"

# ------------------------------------------------------------ peak RSS --
kill -0 "$MAIN_PID" 2>/dev/null || die "tessera died during the benchmark"
printf '{"idle_hwm_kb": %d, "end_hwm_kb": %d, "end_rss_kb": %d}\n' \
    "$IDLE_HWM" "$(vm_kb VmHWM "$MAIN_PID")" "$(vm_kb VmRSS "$MAIN_PID")" >"$TMP/rss.json"
stop_server "$MAIN_PID"

# ------------------------------------------------------------------ report --
COMMIT=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
[[ -n $(git -C "$ROOT" status --porcelain -- src Cargo.toml Cargo.lock migrations 2>/dev/null) ]] && COMMIT="$COMMIT+dirty"
WRK_VERSION=$(wrk --version 2>&1 | awk 'NR == 1 { print $2 }' || true)
CPU_MODEL=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo)
MEM_GIB=$(awk '/^MemTotal:/ { printf "%.0f", $2 / 1048576 }' /proc/meminfo)

"${REPORT[@]}" render --dir "$TMP" \
    --param "date=$(date -u '+%Y-%m-%d %H:%M UTC')" \
    --param "machine=${CPU_MODEL:-unknown CPU}, $CORES cores (nproc), ${MEM_GIB} GiB RAM, Linux $(uname -r)" \
    --param "wrk_version=${WRK_VERSION:-?}" \
    --param "threads=$WRK_THREADS" \
    --param "conns=$CONNECTIONS" \
    --param "memory_conns=$MEMORY_CONNECTIONS" \
    --param "duration=$DURATION" \
    --param "storm_total=$STORM_TOTAL" \
    --param "storm_ramp=$STORM_RAMP" \
    --param "warmup=$WARMUP" \
    --param "cost=$BCRYPT_COST" \
    --param "rust_log=$BENCH_RUST_LOG" \
    --param "cores=$CORES" \
    --param "commit=$COMMIT" \
    --param "background_busy=$BACKGROUND_BUSY" \
    --param "loadavg=$LOADAVG" \
    --param "plot=$("$PY" -c 'import os, sys; print(os.path.relpath(sys.argv[1], os.path.dirname(sys.argv[2])))' "$PLOT" "$OUT")" \
    >"$TMP/report.md" && report_rc=0 || report_rc=$?

cp "$TMP/report.md" "$OUT"
cat "$OUT"
log "written to $OUT"
"${REPORT[@]}" plot --dir "$TMP" --out "$PLOT" --param "cores=$CORES" \
    --param "title=tessera $COMMIT, wrk -t$WRK_THREADS -c$CONNECTIONS -d${DURATION}s, $CORES cores" ||
    log "WARNING: the plot could not be drawn"
log "plot written to $PLOT"
((report_rc == 0)) || die "the report flags a broken run (see above)"

#!/usr/bin/env bash
# tessera benchmark (SPEC §9), run by hand:  bench/run.sh
#
# Prints a Markdown table of RATIOS measured in ONE run (never absolute-time
# assertions) to stdout and writes it to bench/results.md (overwritten):
#   1. GET /api/me req/s  ÷  GET /healthz req/s (same server, same run)
#   2. POST /auth/token logins/s  ÷  bcrypt bound (cores ÷ one hash time)
#   3. GET /api/me req/s while a login storm runs  ÷  (1)'s /api/me req/s
#   4. peak RSS (VmHWM) of the server at the end  ÷  VmHWM right after startup
# Progress goes to stderr.
#
# Environment (all optional):
#   DURATION=10            seconds per phase
#   WARMUP=1               seconds of untimed warm-up for each GET route
#   BCRYPT_COST=12         server cost AND the cost of the timed bcrypt hash
#   WRK_THREADS=1          wrk -t
#   WRK_CONNECTIONS=16     wrk -c for the GET phases and /api/me in the storm
#   LOGIN_CONNECTIONS=4    wrk -c for the login phase (≥ cores saturates
#                          bcrypt; small keeps wrk's end-of-run cut-off bias low)
#   STORM_CONNECTIONS=16   wrk -c for the login storm of phase 3
#   STORM_RAMP=3           seconds the storm runs before /api/me is measured
#   WAIT_IDLE_SECONDS=0    wait up to this long for other CPU load to stop
#   TOKEN_CACHE_CAPACITY=100000  passed to the server (0 = verify every time)
#   BENCH_RUST_LOG=warn    RUST_LOG of the server (info logs every request)
#   BENCH_PG_HOST=127.0.0.1 BENCH_PG_PORT=5432 BENCH_PG_USER=postgres
#   SKIP_BUILD=1           do not run `cargo build --release`
#   TESSERA_BIN=…          binary to benchmark (default target/release/tessera)
#
# Needs: cargo, curl, psql, python3 (3.11) and wrk (installed with apt-get if
# missing). A venv with pyca/bcrypt is created in bench/.venv on first use.
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$BENCH_DIR")

DURATION=${DURATION:-10}
WARMUP=${WARMUP:-1}
BCRYPT_COST=${BCRYPT_COST:-12}
WRK_THREADS=${WRK_THREADS:-1}
WRK_CONNECTIONS=${WRK_CONNECTIONS:-16}
LOGIN_CONNECTIONS=${LOGIN_CONNECTIONS:-4}
STORM_CONNECTIONS=${STORM_CONNECTIONS:-16}
STORM_RAMP=${STORM_RAMP:-3}
WAIT_IDLE_SECONDS=${WAIT_IDLE_SECONDS:-0}
TOKEN_CACHE_CAPACITY=${TOKEN_CACHE_CAPACITY:-100000}
BENCH_RUST_LOG=${BENCH_RUST_LOG:-warn}
PG_HOST=${BENCH_PG_HOST:-127.0.0.1}
PG_PORT=${BENCH_PG_PORT:-5432}
PG_USER=${BENCH_PG_USER:-postgres}

BIN=${TESSERA_BIN:-$ROOT/target/release/tessera}
VENV="$BENCH_DIR/.venv"
RESULTS="$BENCH_DIR/results.md"
DB_NAME="tessera_bench_$$"
BENCH_USER="bench_user"
BENCH_PASSWORD="bench-password-123"

log() { printf '[bench] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

for v in DURATION WARMUP BCRYPT_COST WRK_THREADS WRK_CONNECTIONS LOGIN_CONNECTIONS STORM_CONNECTIONS \
    STORM_RAMP WAIT_IDLE_SECONDS TOKEN_CACHE_CAPACITY; do
    [[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a non-negative integer, got '${!v}'"
done
((DURATION >= 1)) || die "DURATION must be ≥ 1"
((BCRYPT_COST >= 4 && BCRYPT_COST <= 31)) || die "BCRYPT_COST must be 4–31"

# ---------------------------------------------------------------- cleanup --
TMP=$(mktemp -d "${TMPDIR:-/tmp}/tessera-bench.XXXXXX")
SERVER_PID=""
DB_CREATED=""
BG_PIDS=()

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    for pid in "${BG_PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    if [[ -n $SERVER_PID ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 1 100); do
            kill -0 "$SERVER_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    if [[ -n $DB_CREATED ]]; then
        if psql -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d postgres -qAt -v ON_ERROR_STOP=1 \
            -c "DROP DATABASE IF EXISTS \"$DB_NAME\" WITH (FORCE)" >/dev/null 2>&1; then
            log "dropped database $DB_NAME"
        else
            log "WARNING: could not drop database $DB_NAME"
        fi
    fi
    if ((rc != 0)) && [[ -s $TMP/server.log ]]; then
        log "server log (last 20 lines):"
        tail -n 20 "$TMP/server.log" >&2 || true
    fi
    rm -rf "$TMP"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------- prerequisites --
if ! command -v wrk >/dev/null 2>&1; then
    log "wrk not found; installing with apt-get"
    SUDO=""
    ((EUID == 0)) || SUDO="sudo"
    $SUDO apt-get install -y wrk >&2 || { $SUDO apt-get update >&2 && $SUDO apt-get install -y wrk >&2; }
fi
for cmd in curl psql python3 wrk; do
    command -v "$cmd" >/dev/null 2>&1 || die "$cmd is required"
done

if ! "$VENV/bin/python" -c 'import bcrypt' >/dev/null 2>&1; then
    log "creating $VENV with pyca/bcrypt"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check 'bcrypt>=4.1,<6' >&2
fi
PY="$VENV/bin/python"

if [[ ${SKIP_BUILD:-0} != 1 ]]; then
    log "cargo build --release"
    (cd "$ROOT" && cargo build --release >&2) || die "cargo build --release failed"
fi
[[ -x $BIN ]] || die "$BIN not found (build it, or unset SKIP_BUILD)"

CORES=$(nproc)
PORT=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
BASE="http://127.0.0.1:$PORT"
CURL=(curl --noproxy '*' -sS --max-time 30)

# ------------------------------------------------------------------ server --
"$BIN" keygen "$TMP/key.pem" 2>/dev/null || die "tessera keygen failed"

log "starting tessera on $BASE (database $DB_NAME, BCRYPT_COST=$BCRYPT_COST)"
DB_CREATED=1 # the server creates it; drop it on exit even if startup fails halfway
# Run from $TMP so a developer's .env in the repository does not leak in.
(
    cd "$TMP"
    exec env \
        DATABASE_URL="postgres://$PG_USER@$PG_HOST:$PG_PORT/$DB_NAME" \
        BIND_ADDR="127.0.0.1:$PORT" \
        JWT_PRIVATE_KEY_PATH="$TMP/key.pem" \
        BCRYPT_COST="$BCRYPT_COST" \
        AUTH_RATE_LIMIT_PER_MINUTE=0 \
        TOKEN_CACHE_CAPACITY="$TOKEN_CACHE_CAPACITY" \
        ACCESS_TOKEN_TTL_SECONDS=86400 \
        RUST_LOG="$BENCH_RUST_LOG" \
        "$BIN" serve
) >"$TMP/server.log" 2>&1 &
SERVER_PID=$!

for i in $(seq 1 600); do
    kill -0 "$SERVER_PID" 2>/dev/null || die "tessera exited during startup"
    "${CURL[@]}" -o /dev/null "$BASE/healthz" 2>/dev/null && break
    ((i < 600)) || die "tessera did not answer /healthz within 60 s"
    sleep 0.1
done
log "tessera is up (pid $SERVER_PID)"

vm_kb() { awk -v k="$1:" '$1 == k { print $2 }' "/proc/$SERVER_PID/status"; }
IDLE_HWM=$(vm_kb VmHWM)

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

status=$("${CURL[@]}" -o "$TMP/me.json" -w '%{http_code}' -H "Authorization: Bearer $TOKEN" "$BASE/api/me")
[[ $status == 200 ]] || die "/api/me answered $status: $(cat "$TMP/me.json")"

# ------------------------------------------------------ background load --
# Other work on the machine (a concurrent cargo build, say) distorts every
# ratio; measure it while the server is idle and print it in the report.
# WAIT_IDLE_SECONDS>0 first waits (up to that long) for a quiet machine.
busy_now() { "$PY" "$BENCH_DIR/report.py" cpu-busy --seconds 2; }
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
"$PY" "$BENCH_DIR/report.py" bcrypt-time --cost "$BCRYPT_COST" >"$TMP/bcrypt.json"

# ------------------------------------------------------------------ phases --
# wrk_bg <outfile> <connections> <duration> <url> [wrk args...]: starts wrk
# in the background (WRK_PID); run_wrk runs it in the foreground.
wrk_bg() {
    local out=$1 conns=$2 dur=$3 url=$4
    shift 4
    wrk -t"$WRK_THREADS" -c"$conns" -d"${dur}s" --timeout 30s -s "$BENCH_DIR/wrk.lua" "$@" "$url" >"$out" 2>&1 &
    WRK_PID=$!
    BG_PIDS+=("$WRK_PID")
}
run_wrk() {
    wrk_bg "$@"
    wait "$WRK_PID" || { cat "$1" >&2; die "wrk failed on $4"; }
    BG_PIDS=()
}
AUTH_HEADER="Authorization: Bearer $TOKEN"

if ((WARMUP > 0)); then
    log "warm-up ${WARMUP}s per GET route"
    run_wrk "$TMP/warm1.out" "$WRK_CONNECTIONS" "$WARMUP" "$BASE/healthz"
    run_wrk "$TMP/warm2.out" "$WRK_CONNECTIONS" "$WARMUP" "$BASE/api/me" -H "$AUTH_HEADER"
fi

log "phase 1a: GET /healthz for ${DURATION}s"
run_wrk "$TMP/healthz.out" "$WRK_CONNECTIONS" "$DURATION" "$BASE/healthz"
log "phase 1b: GET /api/me for ${DURATION}s"
run_wrk "$TMP/me.out" "$WRK_CONNECTIONS" "$DURATION" "$BASE/api/me" -H "$AUTH_HEADER"

log "phase 2: POST /auth/token for ${DURATION}s"
BENCH_LOGIN_BODY="$LOGIN_BODY" run_wrk "$TMP/login.out" "$LOGIN_CONNECTIONS" "$DURATION" "$BASE/auth/token"

# The storm starts STORM_RAMP seconds early (so every storm connection has a
# bcrypt running when /api/me is measured) and ends a second after it.
STORM_TOTAL=$((STORM_RAMP + DURATION + 1))
log "phase 3: GET /api/me for ${DURATION}s inside a ${STORM_TOTAL}s login storm"
BENCH_LOGIN_BODY="$LOGIN_BODY" wrk_bg "$TMP/storm_login.out" "$STORM_CONNECTIONS" "$STORM_TOTAL" "$BASE/auth/token"
STORM_PID=$WRK_PID
sleep "$STORM_RAMP"
run_wrk "$TMP/storm_me.out" "$WRK_CONNECTIONS" "$DURATION" "$BASE/api/me" -H "$AUTH_HEADER"
BG_PIDS=("$STORM_PID")
wait "$STORM_PID" || { cat "$TMP/storm_login.out" >&2; die "login storm wrk failed"; }
BG_PIDS=()

# ------------------------------------------------------------ peak RSS --
kill -0 "$SERVER_PID" 2>/dev/null || die "tessera died during the benchmark"
END_HWM=$(vm_kb VmHWM)
END_RSS=$(vm_kb VmRSS)
printf '{"idle_hwm_kb": %d, "end_hwm_kb": %d, "end_rss_kb": %d}\n' "$IDLE_HWM" "$END_HWM" "$END_RSS" >"$TMP/rss.json"

# Stop the server now (the trap would too) so the report follows a clean stop.
kill -TERM "$SERVER_PID"
for _ in $(seq 1 100); do
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
done
kill -0 "$SERVER_PID" 2>/dev/null && { log "WARNING: tessera ignored SIGTERM for 10 s; killing"; kill -KILL "$SERVER_PID"; }
wait "$SERVER_PID" 2>/dev/null || true
SERVER_PID=""

# ------------------------------------------------------------------ report --
COMMIT=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
[[ -n $(git -C "$ROOT" status --porcelain -- src Cargo.toml Cargo.lock migrations 2>/dev/null) ]] && COMMIT="$COMMIT+dirty"
WRK_VERSION=$(wrk --version 2>&1 | awk 'NR == 1 { print $2 }' || true)

"$PY" "$BENCH_DIR/report.py" render --dir "$TMP" \
    --param "date=$(date -u '+%Y-%m-%d %H:%M UTC')" \
    --param "wrk_version=${WRK_VERSION:-?}" \
    --param "threads=$WRK_THREADS" \
    --param "conns=$WRK_CONNECTIONS" \
    --param "login_conns=$LOGIN_CONNECTIONS" \
    --param "storm_conns=$STORM_CONNECTIONS" \
    --param "duration=$DURATION" \
    --param "storm_total=$STORM_TOTAL" \
    --param "storm_ramp=$STORM_RAMP" \
    --param "warmup=$WARMUP" \
    --param "cost=$BCRYPT_COST" \
    --param "cache=$TOKEN_CACHE_CAPACITY" \
    --param "rust_log=$BENCH_RUST_LOG" \
    --param "cores=$CORES" \
    --param "commit=$COMMIT" \
    --param "background_busy=$BACKGROUND_BUSY" \
    --param "loadavg=$LOADAVG" >"$TMP/results.md" && report_rc=0 || report_rc=$?

cp "$TMP/results.md" "$RESULTS"
cat "$RESULTS"
log "written to $RESULTS"
((report_rc == 0)) || die "the report flags a broken run (see above)"

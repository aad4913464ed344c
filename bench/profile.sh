#!/usr/bin/env bash
# The middleware tax in instructions, with valgrind's callgrind, run by hand:
#     bench/profile.sh
#
# callgrind counts instructions, not seconds, so the figures repeat from run
# to run whatever else the machine is doing. The script starts the release
# binary under callgrind on a fresh database, logs one user in, then sends N
# keep-alive requests to GET /healthz and N to GET /api/me (one token, so the
# verified-token cache answers after the first), dumping the counters after
# each batch. Then it does the same for GET /healthz on the bare actix-web
# server of bench/run.sh (bench/bare_actix.rs: same actix-web, no
# middleware). It prints instructions per request for the three, the
# difference to the bare route (what tessera's middleware and handlers add),
# the inclusive cost per request of each middleware layer on /healthz, and
# the top inclusive frames of the /api/me batch.
#
# (perf would add cycles, but this machine's VM exposes no hardware
# counters; callgrind works everywhere.)
#
# Caveat: valgrind hides SHA-NI, so sha2 runs its portable code under
# callgrind; on the real CPU the token digest costs a fraction of what the
# profile shows (see BENCHMARKS.md).
#
# Environment: N=2000 requests per route, TOKEN_CACHE_CAPACITY=100000,
# BENCH_PG_HOST/PORT/USER as in bench/run.sh, SKIP_BUILD=1, OUT=dir to keep
# the callgrind files (default: a temporary directory, removed).
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$BENCH_DIR")
N=${N:-2000}
TOKEN_CACHE_CAPACITY=${TOKEN_CACHE_CAPACITY:-100000}
PG_HOST=${BENCH_PG_HOST:-127.0.0.1}
PG_PORT=${BENCH_PG_PORT:-5432}
PG_USER=${BENCH_PG_USER:-postgres}
BIN=${TESSERA_BIN:-$ROOT/target/release/tessera}
BARE_BIN=${BARE_BIN:-$ROOT/target/release/examples/bare_actix}
DB_NAME="tessera_profile_$$"

log() { printf '[profile] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

for cmd in valgrind callgrind_annotate callgrind_control curl psql python3; do
    command -v "$cmd" >/dev/null 2>&1 || die "$cmd is required (apt-get install valgrind)"
done
[[ $N =~ ^[1-9][0-9]*$ ]] || die "N must be a positive integer"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/tessera-profile.XXXXXX")
OUT=${OUT:-$TMP}
mkdir -p "$OUT"
VG_PID=""
cleanup() {
    local rc=$?
    trap - EXIT
    if [[ -n $VG_PID ]]; then
        kill -TERM "$VG_PID" 2>/dev/null || true
        wait "$VG_PID" 2>/dev/null || true
    fi
    psql -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d postgres -qAt \
        -c "DROP DATABASE IF EXISTS \"$DB_NAME\" WITH (FORCE)" >/dev/null 2>&1 || true
    rm -rf "$TMP"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [[ ${SKIP_BUILD:-0} != 1 ]]; then
    log "cargo build --release (tessera and the bare_actix example)"
    (cd "$ROOT" && cargo build --release --bin tessera --example bare_actix >&2)
fi
[[ -x $BARE_BIN ]] || die "$BARE_BIN not found (build it, or unset SKIP_BUILD)"
"$BIN" keygen "$TMP/key.pem" >/dev/null 2>&1 || die "tessera keygen failed"
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
BASE="http://127.0.0.1:$PORT"

log "starting tessera under callgrind on $BASE"
(
    cd "$TMP"
    exec env DATABASE_URL="postgres://$PG_USER@$PG_HOST:$PG_PORT/$DB_NAME" \
        BIND_ADDR="127.0.0.1:$PORT" JWT_PRIVATE_KEY_PATH="$TMP/key.pem" \
        BCRYPT_COST=4 AUTH_RATE_LIMIT_PER_MINUTE=0 ACCESS_TOKEN_TTL_SECONDS=86400 \
        TOKEN_CACHE_CAPACITY="$TOKEN_CACHE_CAPACITY" RUST_LOG=warn \
        valgrind --tool=callgrind --callgrind-out-file="$OUT/callgrind.out" "$BIN" serve
) >"$TMP/server.log" 2>&1 &
VG_PID=$!
for i in $(seq 1 600); do
    curl -sf -o /dev/null "$BASE/healthz" 2>/dev/null && break
    kill -0 "$VG_PID" 2>/dev/null || { cat "$TMP/server.log" >&2; die "server exited"; }
    ((i < 600)) || die "server did not start within 120 s"
    sleep 0.2
done

body='{"username":"profile_user","password":"profile-password-1"}'
curl -sf -o /dev/null -X POST "$BASE/auth/register" -H 'Content-Type: application/json' -d "$body" \
    || die "register failed"
TOKEN=$(curl -sf -X POST "$BASE/auth/token" -H 'Content-Type: application/json' -d "$body" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])') || die "login failed"

# N keep-alive GETs on one connection; exits 1 unless every answer is 200.
drive() {
    python3 - "$PORT" "$1" "$N" "${2:-}" <<'EOF'
import http.client, sys
port, path, n, token = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
headers = {"Authorization": f"Bearer {token}"} if token else {}
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
for _ in range(n):
    conn.request("GET", path, headers=headers)
    reply = conn.getresponse()
    reply.read()
    if reply.status != 200:
        sys.exit(f"{path} answered {reply.status}")
EOF
}

# Warm both paths (first-use allocations, the cache's first miss).
drive /healthz
drive /api/me "$TOKEN"

CG_PID=$(pgrep -P "$VG_PID" -f callgrind || echo "$VG_PID")
measure() { # measure <name> <path> [token]
    callgrind_control -z "$CG_PID" >/dev/null
    drive "$2" "${3:-}"
    callgrind_control -d "$1" "$CG_PID" >/dev/null
}
log "profiling $N × GET /healthz, then $N × GET /api/me"
measure healthz /healthz
measure me /api/me "$TOKEN"
kill -TERM "$VG_PID" 2>/dev/null || true
wait "$VG_PID" 2>/dev/null || true

# The bare actix-web route, the same way (its own callgrind files).
log "starting the bare actix-web server under callgrind"
(
    cd "$TMP"
    exec valgrind --tool=callgrind --callgrind-out-file="$OUT/bare.callgrind.out" \
        "$BARE_BIN" "127.0.0.1:$PORT"
) >"$TMP/bare.log" 2>&1 &
VG_PID=$!
for i in $(seq 1 600); do
    curl -sf -o /dev/null "$BASE/healthz" 2>/dev/null && break
    kill -0 "$VG_PID" 2>/dev/null || { cat "$TMP/bare.log" >&2; die "bare server exited"; }
    ((i < 600)) || die "bare server did not start within 120 s"
    sleep 0.2
done
drive /healthz
CG_PID=$(pgrep -P "$VG_PID" -f callgrind || echo "$VG_PID")
log "profiling $N × GET /healthz on the bare actix-web server"
measure bare /healthz

# The report below cuts long listings with head; its early exit must not
# fail the script.
set +o pipefail

dump_file() { # dump_file <dump name>: the callgrind file of that dump
    local file
    for file in "$OUT"/callgrind.out.* "$OUT"/bare.callgrind.out.*; do
        # (not `grep -l | head`: head's early exit is a SIGPIPE under pipefail)
        if grep -q "^desc: Trigger: dump $1\$" "$file" 2>/dev/null; then
            echo "$file"
            return 0
        fi
    done
}
total() { # total <dump name>: instructions in that dump
    awk '/^(summary|totals):/ { print $2; exit }' "$(dump_file "$1")"
}
B=$(total bare)
H=$(total healthz)
M=$(total me)
# SHA-256 block function in the /api/me batch: valgrind hides SHA-NI, so
# sha2 runs its portable code here (see the caveat at the top).
SHA=$(callgrind_annotate --inclusive=yes "$(dump_file me)" 2>/dev/null |
    awk '/sha2::sha256::compress256/ { gsub(",", "", $1); print $1; exit }')
python3 - "$B" "$H" "$M" "${SHA:-0}" "$N" <<'EOF'
import sys
b, h, m, sha, n = (int(x) for x in sys.argv[1:])
b, h, m, sha = b / n, h / n, m / n, sha / n
print(f"instructions per request: bare actix-web {b:,.0f}, /healthz {h:,.0f} "
      f"(+{h - b:,.0f}), /api/me {m:,.0f} (+{m - b:,.0f})")
print(f"  of which /api/me spends {sha:,.0f} in sha2's portable SHA-256; without it "
      f"{m - sha:,.0f} (+{m - sha - b:,.0f})")
print(f"ratios: bare ÷ /healthz = {b / h:.3f}, bare ÷ /api/me = {b / m:.3f} "
      f"({b / (m - sha):.3f} without the portable SHA-256)")
EOF

# Inclusive instructions per request of tessera's middleware frames
# (outermost first; each includes everything inside it).
echo
echo "Middleware frames of the /healthz batch (inclusive instructions per request):"
callgrind_annotate --inclusive=yes "$(dump_file healthz)" 2>/dev/null |
    grep -E '^ *[0-9,]+ \(' |
    grep -E 'LoggerResponse|StreamLog|metrics::|access_log|request_id_middleware|ensure_json_errors|ConditionMiddlewareFuture|AppRouting as' |
    sed -E 's/\[[^]]*\]$//' |
    python3 -c '
import re, sys
n = int(sys.argv[1])
for line in sys.stdin:
    count, rest = line.split(None, 1)
    name = re.sub(r"^\(\s*[0-9.]+%\)\s*", "", rest)
    per_request = int(count.replace(",", "")) / n
    print(f"{per_request:10,.0f}  {name.strip()[:150]}")
' "$N" | head -n 14

echo
echo "Top inclusive frames of the /api/me batch (tessera's own code and what it calls):"
callgrind_annotate --inclusive=yes "$(dump_file me)" 2>/dev/null |
    grep -E '^ *[0-9,]+ \(' | grep -E 'tessera::|sha2|moka|httpauth|serde|jsonwebtoken|Codec|LoggerResponse' |
    head -n 25 | sed -E 's/\[[^]]*\]$//' | cut -c1-170

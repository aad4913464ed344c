#!/usr/bin/env bash
# Profile of the /api/me path with valgrind's callgrind, run by hand:
#     bench/profile.sh
#
# callgrind counts instructions, not seconds, so the figures repeat from run
# to run whatever else the machine is doing. The script starts the release
# binary under callgrind on a fresh database, logs one user in, then sends N
# keep-alive requests to GET /healthz and N to GET /api/me (one token, so the
# verified-token cache answers after the first), dumping the counters after
# each batch. It prints instructions per request for both routes, their
# ratio, and the top inclusive frames of the /api/me batch.
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
    log "cargo build --release"
    (cd "$ROOT" && cargo build --release >&2)
fi
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

total() { # total <dump name>: instructions in the dump whose trigger is <name>
    local file
    file=$(grep -l "^desc: Trigger: dump $1\$" "$OUT"/callgrind.out.* | head -n1)
    awk '/^(summary|totals):/ { print $2; exit }' "$file"
}
H=$(total healthz)
M=$(total me)
python3 - "$H" "$M" "$N" <<'EOF'
import sys
h, m, n = (int(x) for x in sys.argv[1:])
print(f"instructions per request: /healthz {h / n:,.0f}, /api/me {m / n:,.0f}; "
      f"ratio /healthz ÷ /api/me = {h / m:.3f}")
EOF
ME_FILE=$(grep -l '^desc: Trigger: dump me$' "$OUT"/callgrind.out.* | head -n1)
echo
echo "Top inclusive frames of the /api/me batch (tessera's own code and what it calls):"
callgrind_annotate --inclusive=yes "$ME_FILE" 2>/dev/null |
    grep -E '^ *[0-9,]+ \(' | grep -E 'tessera::|sha2|moka|httpauth|serde|jsonwebtoken|Codec|LoggerResponse' |
    head -n 25 | sed -E 's/\[[^]]*\]$//' | cut -c1-170

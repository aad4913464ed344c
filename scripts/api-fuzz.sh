#!/usr/bin/env bash
# Schema-driven API fuzzing: schemathesis against tessera's own /openapi.json.
#
#   scripts/api-fuzz.sh                         # 50 examples per operation
#   API_FUZZ_MAX_EXAMPLES=1000 scripts/api-fuzz.sh
#
# What it does, and undoes on exit (trap): builds the binary, makes sure
# PostgreSQL answers, creates a fresh database, writes a signing key with
# `tessera keygen`, starts the server on a free port, registers a fuzzer
# account (granted `admin` so GET /api/admin/users is reachable), runs
# schemathesis twice, then stops the server, drops the database and removes
# its temporary directory (also on failure, Ctrl-C or TERM). Exit 0 when both
# passes find nothing, non-zero otherwise.
#
# Checks: every built-in schemathesis check (`--checks all`: no 5xx, status
# code / content type / headers / body schema conform to the document,
# schema-invalid input refused, schema-valid input accepted, undocumented
# methods 405, auth not ignored, links, ...) plus `tessera_envelope` from
# scripts/api_fuzz_hooks.py: every error is SPEC's JSON envelope with its
# headers, 204 has no body, every response has x-request-id.
# scripts/api-fuzz.toml holds the two documented exceptions to "schema-valid
# input is accepted". Phases: coverage, fuzzing and stateful (the document's
# links chain register -> token -> refresh -> refresh / logout,
# GET /api/sessions -> DELETE /api/sessions/{id}, and admin users -> next page).
#
# The bearer token, and the destructive routes. The hooks' auth provider logs
# the fuzzer in (a new session every 2 s) and puts its access token on the
# /api/ operations only; a 401 is never retried with a new token. Of the routes
# that could end the run's identity: session revocation (DELETE
# /api/sessions[/{id}]) and logout make the revoked session's access token
# 401 `invalid_token` at once (README "Immediate revocation"), and the
# periodic login gives the fuzzer a fresh session (and token) every 2 s for
# the stateful links. DELETE /api/me and POST /api/me/password need the
# account's password, which is random and never in the document, so the
# fuzzer exercises their failure paths only. Their success paths are taken
# deliberately between the passes:
#   pass 1  all operations, live account, max examples = API_FUZZ_MAX_EXAMPLES;
#   then    DELETE /api/me with the right password must answer 204, no body;
#   pass 2  the /api/ operations with the deleted account's token, whose
#           session the deletion revoked, coverage + fuzzing, max examples =
#           API_FUZZ_DELETED_MAX_EXAMPLES. Every answer must still be
#           documented (401 `invalid_token` from the guard).
#
# Environment (all optional):
#   API_FUZZ_MAX_EXAMPLES=50          pass 1 examples per operation and phase
#   API_FUZZ_DELETED_MAX_EXAMPLES=…   pass 2 (default: a fifth of pass 1, ≥ 5)
#   API_FUZZ_SEED=…                   schemathesis --seed (reproduce a run)
#   API_FUZZ_WORKERS=1                schemathesis --workers
#   API_FUZZ_PROFILE=dev              cargo profile to build and run (dev shares
#                                     CI's `cargo test` build cache)
#   API_FUZZ_SKIP_BUILD=1             do not run cargo build
#   API_FUZZ_VENV=~/.cache/tessera/schemathesis-<version>
#                                     venv of the pinned schemathesis, created on
#                                     first use and reused (outside the clone,
#                                     so later CI runs skip the install)
#   API_FUZZ_REPORT_DIR=…             also write JUnit + NDJSON reports there
#   API_FUZZ_PG_HOST=127.0.0.1 API_FUZZ_PG_PORT=5432 API_FUZZ_PG_USER=postgres
#   API_FUZZ_SERVER_LOG=warn          the server's RUST_LOG
set -euo pipefail

SCRIPTS=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$SCRIPTS")

SCHEMATHESIS_VERSION=4.32.5
MAX_EXAMPLES=${API_FUZZ_MAX_EXAMPLES:-50}
WORKERS=${API_FUZZ_WORKERS:-1}
PROFILE=${API_FUZZ_PROFILE:-dev}
VENV=${API_FUZZ_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/tessera/schemathesis-$SCHEMATHESIS_VERSION}
PG_HOST=${API_FUZZ_PG_HOST:-127.0.0.1}
PG_PORT=${API_FUZZ_PG_PORT:-5432}
PG_USER=${API_FUZZ_PG_USER:-postgres}
SERVER_LOG_FILTER=${API_FUZZ_SERVER_LOG:-warn}

log() { printf '[api-fuzz] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

for v in MAX_EXAMPLES WORKERS; do
    [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer, got '${!v}'"
done
DELETED_MAX_EXAMPLES=${API_FUZZ_DELETED_MAX_EXAMPLES:-$((MAX_EXAMPLES / 5 > 5 ? MAX_EXAMPLES / 5 : 5))}
[[ $DELETED_MAX_EXAMPLES =~ ^[1-9][0-9]*$ ]] || die "API_FUZZ_DELETED_MAX_EXAMPLES must be a positive integer"
[[ -z ${API_FUZZ_SEED:-} || ${API_FUZZ_SEED} =~ ^[0-9]+$ ]] || die "API_FUZZ_SEED must be an integer"
case $PROFILE in
    dev) TARGET_DIR=debug ;;
    *) TARGET_DIR=$PROFILE ;;
esac
BIN=$ROOT/target/$TARGET_DIR/tessera

# ---------------------------------------------------------------- cleanup --
TMP=$(mktemp -d "${TMPDIR:-/tmp}/tessera-api-fuzz.XXXXXX")
DB_NAME="tessera_fuzz_$$"
SERVER_PID=""
FUZZ_PID=""
DB_CREATED=""

psql_admin() {
    psql -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d postgres -qAt -v ON_ERROR_STOP=1 "$@"
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [[ -n $FUZZ_PID ]]; then
        kill -TERM "$FUZZ_PID" 2>/dev/null || true
        wait "$FUZZ_PID" 2>/dev/null || true
    fi
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
        psql_admin -c "DROP DATABASE IF EXISTS \"$DB_NAME\" WITH (FORCE)" >/dev/null 2>&1 ||
            log "WARNING: could not drop database $DB_NAME"
    fi
    if ((rc != 0)) && [[ -s $TMP/server.log ]]; then
        log "server log (last 30 lines):"
        tail -n 30 "$TMP/server.log" >&2 || true
    fi
    rm -rf "$TMP"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------- prerequisites --
for cmd in curl psql pg_isready python3; do
    command -v "$cmd" >/dev/null 2>&1 || die "$cmd is required"
done

if ! pg_isready -h "$PG_HOST" -p "$PG_PORT" -q; then
    if [[ $PG_HOST == 127.0.0.1 || $PG_HOST == localhost ]] && ls /etc/postgresql >/dev/null 2>&1; then
        log "starting the local PostgreSQL cluster"
        # shellcheck disable=SC2012 # cluster versions are plain numbers
        pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
        for _ in $(seq 1 30); do
            pg_isready -h "$PG_HOST" -p "$PG_PORT" -q && break
            sleep 1
        done
    fi
    pg_isready -h "$PG_HOST" -p "$PG_PORT" -q || die "PostgreSQL does not answer on $PG_HOST:$PG_PORT"
fi

if [[ $("$VENV/bin/schemathesis" --version 2>/dev/null || true) != *"version $SCHEMATHESIS_VERSION" ]]; then
    log "installing schemathesis==$SCHEMATHESIS_VERSION into $VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION" >&2
fi
ST="$VENV/bin/schemathesis"
PY="$VENV/bin/python"
# The custom check must still be able to fail before its passing means anything.
"$PY" "$SCRIPTS/api_fuzz_hooks_test.py" || die "scripts/api_fuzz_hooks_test.py failed"

if [[ ${API_FUZZ_SKIP_BUILD:-0} != 1 ]]; then
    log "cargo build --profile $PROFILE"
    (cd "$ROOT" && cargo build --profile "$PROFILE" --bin tessera >&2) || die "cargo build failed"
fi
[[ -x $BIN ]] || die "$BIN not found (build it, or unset API_FUZZ_SKIP_BUILD)"

# ------------------------------------------------------------------ server --
"$BIN" keygen "$TMP/key.pem" 2>/dev/null || die "tessera keygen failed"
DB_CREATED=1
psql_admin -c "CREATE DATABASE \"$DB_NAME\"" >/dev/null || die "cannot create database $DB_NAME"
DATABASE_URL="postgres://$PG_USER@$PG_HOST:$PG_PORT/$DB_NAME"

# Port 0: the kernel picks a free port and the server logs it, so there is no
# window in which another process could take it.
log "starting tessera (database $DB_NAME)"
(
    cd "$TMP" # a developer's .env in the repository must not leak in
    exec env \
        DATABASE_URL="$DATABASE_URL" \
        BIND_ADDR=127.0.0.1:0 \
        JWT_PRIVATE_KEY_PATH="$TMP/key.pem" \
        BCRYPT_COST=4 \
        AUTH_RATE_LIMIT_PER_MINUTE=1000000 \
        LOGIN_FAILURES_BEFORE_DELAY=100 \
        ACCESS_TOKEN_TTL_SECONDS=86400 \
        RUST_LOG="$SERVER_LOG_FILTER,tessera::app::cli=info" \
        "$BIN" serve
) >"$TMP/server.log" 2>&1 &
SERVER_PID=$!

PORT=""
for i in $(seq 1 300); do
    kill -0 "$SERVER_PID" 2>/dev/null || die "tessera exited during startup"
    PORT=$(sed -n 's/.*tessera listening on 127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p' "$TMP/server.log" | head -n1)
    [[ -n $PORT ]] && break
    ((i < 300)) || die "tessera did not log its port within 30 s"
    sleep 0.1
done
BASE="http://127.0.0.1:$PORT"
CURL=(curl --noproxy '*' -sS --max-time 30)
for i in $(seq 1 300); do
    [[ $("${CURL[@]}" -o /dev/null -w '%{http_code}' "$BASE/readyz" 2>/dev/null || true) == 200 ]] && break
    ((i < 300)) || die "$BASE/readyz did not answer 200 within 30 s"
    sleep 0.1
done
log "tessera is ready on $BASE (pid $SERVER_PID)"

# ----------------------------------------------------- the fuzzer account --
FUZZ_USER="fuzzer"
FUZZ_PASSWORD=$("$PY" -c 'import secrets; print(secrets.token_urlsafe(24))')
CREDENTIALS="{\"username\":\"$FUZZ_USER\",\"password\":\"$FUZZ_PASSWORD\"}"
status=$("${CURL[@]}" -o "$TMP/register.json" -w '%{http_code}' -X POST "$BASE/auth/register" \
    -H 'Content-Type: application/json' -d "$CREDENTIALS")
[[ $status == 201 ]] || die "register answered $status: $(cat "$TMP/register.json")"
(cd "$TMP" && DATABASE_URL="$DATABASE_URL" RUST_LOG=warn "$BIN" user grant-role "$FUZZ_USER" admin >/dev/null) ||
    die "tessera user grant-role failed"

# ------------------------------------------------------------- schemathesis --
run_schemathesis() {
    local name=$1
    shift
    local args=(
        --config-file "$SCRIPTS/api-fuzz.toml"
        run "$BASE/openapi.json"
        --checks all
        --workers "$WORKERS"
        --request-timeout 30
        --generation-database none
        --suppress-health-check too_slow # a debug build on a busy CI machine
    )
    [[ -t 1 ]] || args=(--no-color "${args[@]}")
    [[ -z ${API_FUZZ_SEED:-} ]] || args+=(--seed "$API_FUZZ_SEED")
    if [[ -n ${API_FUZZ_REPORT_DIR:-} ]]; then
        mkdir -p "$API_FUZZ_REPORT_DIR"
        args+=(--report "junit,ndjson" --report-dir "$API_FUZZ_REPORT_DIR"
            --report-junit-path "$API_FUZZ_REPORT_DIR/$name.xml"
            --report-ndjson-path "$API_FUZZ_REPORT_DIR/$name.ndjson")
    fi
    # In the background plus `wait`, so that a TERM to this script runs the
    # cleanup at once (bash defers traps while a foreground child runs).
    (cd "$TMP" && SCHEMATHESIS_HOOKS="$SCRIPTS/api_fuzz_hooks.py" exec "$ST" "${args[@]}" "$@") &
    FUZZ_PID=$!
    local rc=0
    wait "$FUZZ_PID" || rc=$?
    FUZZ_PID=""
    return "$rc"
}

export TESSERA_FUZZ_BASE_URL="$BASE" TESSERA_FUZZ_USERNAME="$FUZZ_USER" TESSERA_FUZZ_PASSWORD="$FUZZ_PASSWORD"
log "pass 1: every operation, live account, --max-examples $MAX_EXAMPLES"
run_schemathesis live --max-examples "$MAX_EXAMPLES" || die "pass 1 found failures (see above)"

# A fresh session: pass 1's DELETE /api/sessions revoked every earlier one,
# and a revoked session's token is refused at once.
status=$("${CURL[@]}" -o "$TMP/login.json" -w '%{http_code}' -X POST "$BASE/auth/token" \
    -H 'Content-Type: application/json' -d "$CREDENTIALS")
[[ $status == 200 ]] || die "login answered $status: $(cat "$TMP/login.json")"
TOKEN=$("$PY" -c 'import json, sys; print(json.load(open(sys.argv[1]))["access_token"])' "$TMP/login.json")
log "deleting the fuzzer account with its password"
status=$("${CURL[@]}" -o "$TMP/delete.out" -w '%{http_code}' -X DELETE "$BASE/api/me" \
    -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
    -d "{\"password\":\"$FUZZ_PASSWORD\"}")
[[ $status == 204 ]] || die "DELETE /api/me answered $status: $(cat "$TMP/delete.out")"
[[ ! -s $TMP/delete.out ]] || die "DELETE /api/me answered 204 with a body"

log "pass 2: /api/ operations with the deleted account's token, --max-examples $DELETED_MAX_EXAMPLES"
unset TESSERA_FUZZ_USERNAME TESSERA_FUZZ_PASSWORD
TESSERA_FUZZ_TOKEN="$TOKEN" run_schemathesis deleted \
    --max-examples "$DELETED_MAX_EXAMPLES" \
    --include-path-regex '^/api/' \
    --phases coverage,fuzzing || die "pass 2 found failures (see above)"

kill -0 "$SERVER_PID" 2>/dev/null || die "tessera died during the run"
log "no failures"

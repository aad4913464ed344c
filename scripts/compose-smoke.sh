#!/usr/bin/env bash
# The README's "Quick start with Docker", run for real: build and start the
# compose stack, walk a session through http://127.0.0.1:8080, and check
# what the compose file promises (healthchecks, non-root user, the key and
# the database surviving restarts, /readyz following PostgreSQL).
#
#   scripts/compose-smoke.sh
#
# Needs docker (with `docker compose` or `docker-compose`), curl and jq, and
# port 8080 free. Runs as its own compose project (`tessera-smoke`, or
# COMPOSE_PROJECT_NAME), so a stack you started by hand is not touched; it
# ends with `docker compose down -v` for that project, also on failure,
# Ctrl-C or TERM. Stops at the first failure, exit 1, after printing the
# containers and the tail of their logs. Every step prints its duration.
#
# Environment (optional):
#   COMPOSE_PROJECT_NAME=tessera-smoke
#   SMOKE_HEALTHY_TIMEOUT=180   seconds for both services to become healthy
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

export COMPOSE_PROJECT_NAME=${COMPOSE_PROJECT_NAME:-tessera-smoke}
HEALTHY_TIMEOUT=${SMOKE_HEALTHY_TIMEOUT:-180}
B=http://127.0.0.1:8080
PASSWORD='correct horse battery'

if docker compose version >/dev/null 2>&1; then
    compose() { docker compose "$@"; }
elif command -v docker-compose >/dev/null 2>&1; then
    compose() { docker-compose "$@"; }
else
    echo "compose-smoke: neither 'docker compose' nor docker-compose found" >&2
    exit 1
fi
for tool in curl jq; do
    command -v "$tool" >/dev/null || { echo "compose-smoke: $tool is required" >&2; exit 1; }
done
if curl -s -o /dev/null --max-time 2 "$B/"; then
    echo "compose-smoke: something already listens on 127.0.0.1:8080; stop it first" >&2
    exit 1
fi

tmp=$(mktemp -d)
started=$(date +%s.%N)
failed=0

cleanup() {
    local status=$?
    trap - EXIT INT TERM
    if [ "$status" -ne 0 ] || [ "$failed" -ne 0 ]; then
        echo "compose-smoke: FAILED; containers and the last log lines:" >&2
        compose ps >&2 || true
        compose logs --no-color --tail=40 >&2 || true
    fi
    echo "compose-smoke: docker compose down -v"
    compose down -v --remove-orphans >/dev/null 2>&1 || true
    rm -rf "$tmp"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

fail() {
    failed=1
    echo "compose-smoke: FAIL: $*" >&2
    exit 1
}

elapsed() { echo "$(date +%s.%N) $1" | awk '{printf "%.1f", $1 - $2}'; }

# step "description" function: runs the function and prints how long it took.
step() {
    local what=$1 since
    shift
    since=$(date +%s.%N)
    echo "compose-smoke: $what ..."
    "$@"
    echo "compose-smoke:   ok ($(elapsed "$since") s) $what"
}

# http METHOD PATH [JSON] [BEARER]: sets STATUS, and BODY (file $tmp/body).
http() {
    local args=(-s -o "$tmp/body" -w '%{http_code}' --max-time 10 -X "$1" "$B$2")
    [ -n "${3:-}" ] && args+=(-H 'Content-Type: application/json' -d "$3")
    [ -n "${4:-}" ] && args+=(-H "Authorization: Bearer $4")
    STATUS=$(curl "${args[@]}" || true)
    BODY=$(cat "$tmp/body" 2>/dev/null || true)
}

# expect METHOD PATH STATUS [JSON] [BEARER]
expect() {
    http "$1" "$2" "${4:-}" "${5:-}"
    [ "$STATUS" = "$3" ] || fail "$1 $2: expected $3, got $STATUS: $BODY"
}

field() { jq -r "$1" <<<"$BODY"; }

container_id() { compose ps -q "$1"; }

health() { docker inspect --format '{{.State.Health.Status}}' "$(container_id "$1")" 2>/dev/null; }

wait_healthy() {
    local deadline=$((SECONDS + HEALTHY_TIMEOUT)) service state
    for service in postgres tessera; do
        while :; do
            state=$(health "$service" || true)
            [ "$state" = healthy ] && break
            [ "$SECONDS" -lt "$deadline" ] || fail "$service is '$state' after ${HEALTHY_TIMEOUT}s"
            sleep 1
        done
    done
}

# The HTTP port answers a little after `docker compose up -d` returns; the
# healthcheck's first probe comes later still, so this is for the steps
# that restart a container and do not wait for healthy.
wait_http() {
    local deadline=$((SECONDS + 60))
    until curl -s -o /dev/null --max-time 2 "$B/healthz"; do
        [ "$SECONDS" -lt "$deadline" ] || fail "$B/healthz does not answer"
        sleep 0.5
    done
}

# Sets KID_NOW to the first kid of the JWKS.
read_kid() {
    expect GET /.well-known/jwks.json 200
    KID_NOW=$(field '.keys[0].kid')
    [ -n "$KID_NOW" ] && [ "$KID_NOW" != null ] || fail "no kid in the JWKS: $BODY"
}

login() {
    expect POST /auth/token 200 "{\"username\":\"alice\",\"password\":\"$PASSWORD\"}"
}

refresh_with() { http POST /auth/refresh "{\"refresh_token\":\"$1\"}"; }

up_and_build() { compose up -d --build; }

session_flow() {
    expect POST /auth/register 201 "{\"username\":\"Alice\",\"password\":\"$PASSWORD\"}"
    [ "$(field .username)" = alice ] || fail "register: $BODY"
    login
    local a0 r0 r1 r2 r3
    a0=$(field .access_token)
    r0=$(field .refresh_token)
    expect GET /api/me 200 "" "$a0"
    [ "$(field .username)" = alice ] || fail "/api/me: $BODY"
    # Refresh twice: R0 -> R1 -> R2.
    refresh_with "$r0"
    [ "$STATUS" = 200 ] || fail "first refresh: $STATUS $BODY"
    r1=$(field .refresh_token)
    refresh_with "$r1"
    [ "$STATUS" = 200 ] || fail "second refresh: $STATUS $BODY"
    r2=$(field .refresh_token)
    [ "$r0" != "$r1" ] && [ "$r1" != "$r2" ] || fail "refresh did not rotate the token"
    # Retry R1 within the grace window: the same R2 again.
    refresh_with "$r1"
    [ "$STATUS" = 200 ] || fail "grace retry: $STATUS $BODY"
    [ "$(field .refresh_token)" = "$r2" ] || fail "grace retry returned another refresh token"
    # The older R0 is reuse: the session is revoked, R2 with it.
    refresh_with "$r0"
    [ "$STATUS" = 401 ] && [ "$(field .error)" = invalid_grant ] || fail "reuse of R0: $STATUS $BODY"
    refresh_with "$r2"
    [ "$STATUS" = 401 ] || fail "R2 after reuse: $STATUS $BODY"
    # A new session, then logout.
    login
    r3=$(field .refresh_token)
    expect POST /auth/logout 204 "{\"refresh_token\":\"$r3\"}"
    refresh_with "$r3"
    [ "$STATUS" = 401 ] || fail "refresh after logout: $STATUS $BODY"
}

ready() { expect GET /readyz 200; }

runs_as_10001() {
    local uid
    uid=$(compose exec -T tessera id -u | tr -d '\r')
    [ "$uid" = 10001 ] || fail "tessera runs as uid '$uid', not 10001"
}

KID=""
remember_kid() {
    read_kid
    KID=$KID_NOW
}

key_and_account_kept() {
    wait_http
    read_kid
    [ "$KID_NOW" = "$KID" ] || fail "the signing key changed: kid $KID -> $KID_NOW"
    login
}

restart_tessera() { compose restart tessera; }

down_then_up() {
    compose down
    compose up -d
    wait_healthy
}

# await_readyz STATUS SECONDS: polls /readyz until it answers STATUS.
await_readyz() {
    local deadline=$((SECONDS + $2))
    while :; do
        http GET /readyz
        [ "$STATUS" = "$1" ] && return
        [ "$SECONDS" -lt "$deadline" ] || fail "/readyz is $STATUS, not $1, after $2 s"
        sleep 0.2
    done
}

readyz_follows_postgres() {
    local since before now
    before=$(docker inspect --format '{{.State.StartedAt}}' "$(container_id tessera)")
    since=$(date +%s.%N)
    compose stop postgres
    echo "compose-smoke:   postgres stopped in $(elapsed "$since") s"
    # The 10 s count from when it is down: until then, ready is right.
    since=$(date +%s.%N)
    await_readyz 503 10
    echo "compose-smoke:   /readyz 503 $(elapsed "$since") s after that"
    expect GET /healthz 200
    compose start postgres
    since=$(date +%s.%N)
    await_readyz 200 60
    echo "compose-smoke:   /readyz 200 $(elapsed "$since") s after docker compose start"
    now=$(docker inspect --format '{{.State.StartedAt}}' "$(container_id tessera)")
    [ "$now" = "$before" ] || fail "tessera was restarted ($before -> $now)"
    login
}

# The image's HEALTHCHECK polls /healthz every 15 s: at RUST_LOG=info those
# must not be in the access log, but the 503s of /readyz above must.
probes_quiet() {
    local log
    log=$(compose logs --no-color tessera)
    if grep -q 'GET /healthz 200' <<<"$log"; then
        fail "successful probes are in the access log at info"
    fi
    grep -q 'GET /readyz 503' <<<"$log" || fail "the failing /readyz is not in the access log"
}

step "docker compose up -d --build" up_and_build
step "both services healthy" wait_healthy
step "session flow: register, login, /api/me, refresh x2, grace retry, reuse revokes, logout" session_flow
step "/readyz 200" ready
step "tessera runs as uid 10001" runs_as_10001
step "remember the JWKS kid" remember_kid
step "docker compose restart tessera" restart_tessera
step "same kid and account after restart" key_and_account_kept
step "docker compose down (keep volumes), up -d, healthy" down_then_up
step "same kid and account after down/up" key_and_account_kept
step "stop postgres: /readyz 503, /healthz 200; start: /readyz 200, tessera not restarted" readyz_follows_postgres
step "successful probes not logged at info" probes_quiet
echo "compose-smoke: all steps passed in $(elapsed "$started") s"

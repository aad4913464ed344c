#!/usr/bin/env bash
# Builds every cargo-fuzz target in fuzz/ and runs each one briefly from its
# seed corpus, so CI proves the targets build, run and hold their
# invariants. Long runs are by hand: see README "Fuzzing".
#
#   scripts/fuzz-smoke.sh            # 15 s per target
#   FUZZ_SECONDS=300 scripts/fuzz-smoke.sh
#   FUZZ_DEV=1 scripts/fuzz-smoke.sh  # unoptimised: about half the cold
#                                     # build time, far fewer runs a second
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

seconds="${FUZZ_SECONDS:-15}"
profile=()
if [ "${FUZZ_DEV:-0}" = 1 ]; then
    profile=(--dev)
fi
# cargo-fuzz passes nightly -Z flags (sanitizers); the toolchain is stable.
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz-smoke: installing cargo-fuzz"
    cargo install cargo-fuzz --version 0.13.2 --locked
fi

# fuzz/Cargo.lock is committed and must already match fuzz/Cargo.toml.
cargo fetch --locked
cargo fuzz build "${profile[@]}"

corpus="$(mktemp -d)"
trap 'rm -rf "$corpus"' EXIT
for target in $(cargo fuzz list); do
    echo "fuzz-smoke: $target for ${seconds}s"
    mkdir -p "$corpus/$target"
    # A crash, a failed invariant or a leak exits non-zero and stops here;
    # the input is saved under fuzz/artifacts/$target/.
    log="$corpus/$target.log"
    if ! cargo fuzz run "${profile[@]}" "$target" "$corpus/$target" "seeds/$target" -- \
        -max_total_time="$seconds" -print_final_stats=1 >"$log" 2>&1; then
        tail -n 60 "$log"
        echo "fuzz-smoke: $target FAILED"
        exit 1
    fi
    grep -E '^(#[0-9]+[[:space:]]+DONE|stat::number_of_executed_units|stat::peak_rss_mb)' "$log" || true
done
echo "fuzz-smoke: every target ran"

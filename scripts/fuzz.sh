#!/usr/bin/env bash
# Runs every fuzz target (fuzz/fuzz_targets/) with libFuzzer for SECONDS
# each (default 60), starting from the committed seeds (fuzz/seeds/TARGET,
# made by fuzz/make-seeds.py) and growing a scratch corpus. Prints the
# executions per target; exits non-zero when a target finds a crash (the
# input is kept in fuzz/artifacts/TARGET/).
#
#   scripts/fuzz.sh            # a minute per target
#   scripts/fuzz.sh 10         # what CI runs (scripts/test.sh)
#
# Needs a nightly toolchain (`cargo +nightly`) and cargo-fuzz, which it
# installs from crates.io when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-60}

if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "scripts/fuzz.sh: no nightly toolchain (cargo +nightly); cannot fuzz" >&2
    exit 1
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "==> installing cargo-fuzz"
    cargo install --quiet cargo-fuzz
fi

echo "==> building the fuzz targets"
cargo +nightly fuzz build -O
root=$PWD
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
failed=0
printf '%-18s %12s %8s\n' target executions result
for t in $(cargo +nightly fuzz list); do
    mkdir -p "$scratch/$t"
    log="$scratch/$t.log"
    status=0
    cargo +nightly fuzz run -O "$t" "$scratch/$t" "$root/fuzz/seeds/$t" -- \
        -max_total_time="$SECS" -print_final_stats=1 >"$log" 2>&1 || status=$?
    runs=$(awk '/stat::number_of_executed_units/ {print $2}' "$log" | tail -1)
    if [ "$status" -ne 0 ]; then
        failed=1
        printf '%-18s %12s %8s\n' "$t" "${runs:-?}" CRASH
        tail -30 "$log"
    else
        printf '%-18s %12s %8s\n' "$t" "${runs:-?}" ok
    fi
done
exit "$failed"

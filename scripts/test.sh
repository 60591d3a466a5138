#!/usr/bin/env bash
# Everything CI checks, in order: system packages the integration tests
# need (installed when missing, Debian 12), formatting, lints, a release
# build of the binaries, every test in the workspace, then each fuzz
# target for a few seconds.
#
# The integration tests (crate `tests`) create network namespaces, veths
# and AF_XDP sockets: they need root.
set -euo pipefail

cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
    echo "scripts/test.sh: the integration tests need root (namespaces, veth, AF_XDP)" >&2
    exit 1
fi

PACKAGES=(iproute2 iputils-ping ethtool iperf3 tcpdump procps nftables python3-scapy netsniff-ng etcd-server etcd-client docker.io busybox-static openvswitch-common uuid-runtime)

missing=()
for p in "${PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done

if [ "${#missing[@]}" -gt 0 ]; then
    echo "==> installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get -qq update
    apt-get -qq install -y --no-install-recommends "${missing[@]}" >/dev/null
fi

echo "==> cargo fmt --check"
cargo fmt --all -- --check

echo "==> cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings

echo "==> cargo build --release (binaries)"
cargo build --release --workspace --bins

# The integration tests run the binaries just built.
export VSWITCH_BIN_DIR="${CARGO_TARGET_DIR:-$PWD/target}/release"

# --no-fail-fast: report every failing test binary, not just the first.
echo "==> cargo test --release"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
cargo test --release --workspace --no-fail-fast -- --test-threads=2 2>&1 | tee "$log" || status=$?

# The parsers and stages under libFuzzer, briefly (scripts/fuzz.sh runs
# them longer): a crash fails the run.
echo "==> fuzzing, 10 s per target"
bash scripts/fuzz.sh 10 || status=1

# One closing line for the whole run (cargo prints one per test binary, the
# last of which is often an empty doc-test run).
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
exit "$status"

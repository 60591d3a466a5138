#!/usr/bin/env bash
# Builds vswitchd and vswctl (release, nothing else) and runs vswitchd with
# its defaults: run directory /run/vswitch, database
# /var/lib/vswitch/conf.db, one poll thread on the last CPU.
# Arguments are passed to vswitchd, e.g. `./scripts/run.sh --detach`.
# vswitchd and vswctl are installed in /usr/local/bin.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
    echo "run.sh: vswitchd needs root (AF_XDP, TAP devices); run it with sudo" >&2
    exit 1
fi
if ! command -v cargo >/dev/null; then
    echo "run.sh: cargo is missing. Install Rust with" >&2
    echo "    curl https://sh.rustup.rs -sSf | sh -s -- -y && . \"\$HOME/.cargo/env\"" >&2
    echo "or your distribution's package (Debian: apt-get install cargo), then run this again" >&2
    exit 1
fi
if ! command -v ip >/dev/null; then
    echo "==> installing iproute2"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iproute2
fi
echo "==> building vswitchd and vswctl (cargo build --release, the first time takes a few minutes)"
cargo build --release -p vswitch -p cli --bin vswitchd --bin vswctl
BIN=${CARGO_TARGET_DIR:-$PWD/target}/release
install -m 0755 "$BIN/vswitchd" "$BIN/vswctl" /usr/local/bin/
echo "==> starting vswitchd $*"
exec /usr/local/bin/vswitchd "$@"

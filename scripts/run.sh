#!/usr/bin/env bash
# Builds vswitch (release) and runs vswitchd with its defaults:
#   run directory /run/vswitch, database /var/lib/vswitch/conf.db,
#   one poll thread on the last CPU.
# Arguments are passed to vswitchd, e.g. `./scripts/run.sh --detach`.
# vswitchd and vswctl are installed in /usr/local/bin.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
    echo "run.sh: vswitchd needs root (AF_XDP, TAP devices); run it with sudo" >&2
    exit 1
fi
if ! command -v ip >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iproute2
fi
cargo build --release --bins -q
install -m 0755 target/release/vswitchd target/release/vswctl /usr/local/bin/
exec /usr/local/bin/vswitchd "$@"

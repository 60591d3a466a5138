#!/usr/bin/env bash
# Installs vswitch: the binaries, the ovs-vsctl and ovs-appctl names, and
# the systemd unit. `--uninstall` removes exactly what this installs (the
# configuration in /var/lib/vswitch stays). DESTDIR=DIR installs under
# DIR (for packaging). BIN_DIR=DIR takes binaries already built there
# instead of building them.
#
#   sudo scripts/install.sh              build (release) and install
#   sudo scripts/install.sh --uninstall
set -euo pipefail
cd "$(dirname "$0")/.."
DEST=${DESTDIR:-}
FILES=(
    "/usr/local/sbin/vswitchd"
    "/usr/local/bin/vswctl"
    "/usr/local/bin/ovs-vsctl"
    "/usr/local/bin/ovs-appctl"
    "/etc/systemd/system/vswitchd.service"
)

if [ "${1:-}" = "--uninstall" ]; then
    if [ -z "$DEST" ] && command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
        systemctl disable --now vswitchd.service 2>/dev/null || true
    fi
    for f in "${FILES[@]}"; do
        if [ -e "$DEST$f" ] || [ -L "$DEST$f" ]; then
            rm -f "$DEST$f" && echo "removed $DEST$f"
        fi
    done
    exit 0
fi

BIN=${BIN_DIR:-}
if [ -z "$BIN" ]; then
    if ! command -v cargo >/dev/null; then
        echo "install.sh: cargo is missing; install Rust from https://rustup.rs (or set BIN_DIR)" >&2
        exit 1
    fi
    echo "==> cargo build --release -p vswitch -p cli"
    cargo build --release -p vswitch -p cli
    BIN=${CARGO_TARGET_DIR:-$PWD/target}/release
fi

install -D -m 0755 "$BIN/vswitchd" "$DEST/usr/local/sbin/vswitchd"
install -D -m 0755 "$BIN/vswctl" "$DEST/usr/local/bin/vswctl"
ln -sf vswctl "$DEST/usr/local/bin/ovs-vsctl"
ln -sf vswctl "$DEST/usr/local/bin/ovs-appctl"
install -D -m 0644 contrib/vswitchd.service "$DEST/etc/systemd/system/vswitchd.service"
for f in "${FILES[@]}"; do echo "installed $DEST$f"; done
if [ -z "$DEST" ] && command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
    systemctl daemon-reload
    echo "start it with: systemctl enable --now vswitchd"
fi

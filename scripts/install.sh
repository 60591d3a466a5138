#!/usr/bin/env bash
# Installs vswitch: the binaries, the ovs-vsctl and ovs-appctl names, the
# systemd unit, the manual pages and the bash, zsh and fish completions. `--uninstall` removes exactly what this installs (the
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
    "/usr/local/share/man/man8/vswitchd.8"
    "/usr/local/share/man/man8/vswctl.8"
    "/usr/local/share/bash-completion/completions/vswctl"
    "/usr/local/share/bash-completion/completions/vswitchd"
    "/usr/local/share/zsh/site-functions/_vswctl"
    "/usr/local/share/zsh/site-functions/_vswitchd"
    "/usr/local/share/fish/vendor_completions.d/vswctl.fish"
    "/usr/local/share/fish/vendor_completions.d/vswitchd.fish"
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
# Manual pages and completions, generated from the binaries' own definitions.
SHARE=$DEST/usr/local/share
mkdir -p "$SHARE/man/man8" "$SHARE/bash-completion/completions" \
    "$SHARE/zsh/site-functions" "$SHARE/fish/vendor_completions.d"
"$BIN/vswitchd" --print-man >"$SHARE/man/man8/vswitchd.8"
"$BIN/vswctl" man >"$SHARE/man/man8/vswctl.8"
for prog in vswctl vswitchd; do
    if [ $prog = vswctl ]; then gen=("$BIN/vswctl" completion); else gen=("$BIN/vswitchd" --print-completion); fi
    "${gen[@]}" bash >"$SHARE/bash-completion/completions/$prog"
    "${gen[@]}" zsh >"$SHARE/zsh/site-functions/_$prog"
    "${gen[@]}" fish >"$SHARE/fish/vendor_completions.d/$prog.fish"
done
for f in "${FILES[@]}"; do echo "installed $DEST$f"; done
if [ -z "$DEST" ] && command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
    systemctl daemon-reload
    echo "start it with: systemctl enable --now vswitchd"
fi

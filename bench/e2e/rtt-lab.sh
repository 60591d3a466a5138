#!/bin/bash
# Where a ping's time goes in vswitchd: namespaces A and B on one bridge,
# the poll thread on CPU 1, 300 pings at 100/s from A on CPU 0, then
# `pmd/stats-show` (processing cycles per packet, and the part of them in
# transmit system calls). With PERF=1 it also records the poll thread
# (perf record -g) into /tmp/rtt-lab.perf.data.
#
#   sudo bench/e2e/rtt-lab.sh            (after cargo build --release)
set -eu
BIN=${BIN:-$(cd "$(dirname "$0")/../.." && pwd)/target/release}
TAG=rtl$$
RUN=/tmp/$TAG
mkdir -p "$RUN"
cleanup() {
    [ -f "$RUN/vswitchd.pid" ] && kill "$(cat "$RUN/vswitchd.pid")" 2>/dev/null || true
    sleep 0.3
    for s in a b; do
        ip netns del "$TAG-$s" 2>/dev/null || true
        ip link del "${TAG}$s" 2>/dev/null || true
    done
    rm -rf "$RUN"
}
trap cleanup EXIT
for s in a b; do
    ip netns add "$TAG-$s"
    ip link add "${TAG}$s" type veth peer name eth1 netns "$TAG-$s"
    ethtool -K "${TAG}$s" tx off tso off gso off gro off >/dev/null
    ip netns exec "$TAG-$s" ethtool -K eth1 tx off tso off gso off gro off >/dev/null
    ip -n "$TAG-$s" link set eth1 up
    ip link set "${TAG}$s" up
done
ip -n "$TAG-a" addr add 10.253.0.1/24 dev eth1
ip -n "$TAG-b" addr add 10.253.0.2/24 dev eth1
"$BIN/vswitchd" --rundir "$RUN" --db "$RUN/conf.db" --pmd-cpus 1 --detach
ctl() { "$BIN/vswctl" --rundir "$RUN" "$@"; }
ctl add-br "${TAG}br" -- add-port "${TAG}br" "${TAG}a" -- add-port "${TAG}br" "${TAG}b"
ip netns exec "$TAG-a" ping -q -c 20 -i 0.01 10.253.0.2 >/dev/null
ctl pmd/stats-clear
if [ -n "${PERF:-}" ]; then
    pid=$(cat "$RUN/vswitchd.pid")
    tid=$(grep -l '^pmd0$' /proc/"$pid"/task/*/comm | head -1 | cut -d/ -f5)
    perf record -F 20000 -g -t "$tid" -o /tmp/rtt-lab.perf.data -- sleep 3.5 >/dev/null 2>&1 &
    sleep 0.2
fi
ip netns exec "$TAG-a" taskset -c 0 ping -c 300 -i 0.01 10.253.0.2 |
    grep -o 'time=[0-9.]*' | cut -d= -f2 | sort -n |
    awk '{t[NR] = $1} END {printf "RTT median %.0f us, p99 %.0f us\n", t[int(NR / 2)] * 1000, t[int(NR * 0.99)] * 1000}'
wait
ctl pmd/stats-show

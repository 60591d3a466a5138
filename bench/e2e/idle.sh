#!/bin/bash
# CPU that follows the load: two containers on one bridge, pings at 0, 10,
# 100, 1,000 and 10,000 per second for DUR seconds each; vswitchd's CPU
# (user + system time of the whole process over the interval, in % of one
# core) and the RTT median and p99 at each rate, against the Linux bridge's
# RTT on the same namespaces. vswitchd runs on CPU 1 with default flags
# (adaptive spin), and again with --pmd-spin-fixed (spin 20 ms after every
# frame, the behaviour before) for comparison.
#
#   sudo bench/e2e/idle.sh           (after cargo build --release)
#   DUR=5 sudo bench/e2e/idle.sh
#   TYPE=veth sudo bench/e2e/idle.sh   (containers by veth; the default is TAP)
set -eu
BIN=${BIN:-$(cd "$(dirname "$0")/../.." && pwd)/target/release}
DUR=${DUR:-5}
TAG=idl$$
RUN=/tmp/$TAG
mkdir -p "$RUN"
RATES="0 10 100 1000 10000"

stop_switch() {
    [ -f "$RUN/d/vswitchd.pid" ] && kill "$(cat "$RUN/d/vswitchd.pid")" 2>/dev/null || true
    sleep 0.5
    rm -rf "$RUN/d"
}
cleanup() {
    stop_switch
    ip link del "$TAG-br" 2>/dev/null || true
    for i in 1 2; do ip netns del "$TAG-c$i" 2>/dev/null || true; done
    rm -rf "$RUN"
}
trap cleanup EXIT

fresh() {
    for i in 1 2; do
        ip netns del "$TAG-c$i" 2>/dev/null || true
        ip netns add "$TAG-c$i"
        ip -n "$TAG-c$i" link set lo up
    done
}

# cpu_ticks PID: user + system clock ticks of the process so far.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# sweep NAME [PID]: one line per rate.
sweep() {
    local name=$1 pid=${2:-}
    for r in $RATES; do
        local t0 c0 c1 t1 rtt=""
        t0=$(date +%s.%N)
        c0=$([ -n "$pid" ] && cpu_ticks "$pid" || echo 0)
        if [ "$r" = 0 ]; then
            sleep "$DUR"
            rtt="- -"
        else
            local n=$((r * DUR)) i
            i=$(/usr/bin/python3 -c "print(1.0 / $r)")
            rtt=$(ip netns exec "$TAG-c1" ping -c "$n" -i "$i" -W 1 10.63.0.2 2>/dev/null |
                grep -o 'time=[0-9.]*' | cut -d= -f2 | sort -n |
                awk '{t[NR] = $1} END {if (NR) printf "%.0f %.0f", t[int(NR / 2) + 1] * 1000, t[int(NR * 0.99) + 1] * 1000; else printf "- -"}')
        fi
        c1=$([ -n "$pid" ] && cpu_ticks "$pid" || echo 0)
        t1=$(date +%s.%N)
        /usr/bin/python3 -c "
import os
secs = $t1 - $t0
cpu = ($c1 - $c0) / os.sysconf('SC_CLK_TCK') / secs * 100 if '$pid' else float('nan')
print('%-16s %6s %8.1f %8s %8s' % ('$name', '$r', cpu, *'$rtt'.split()))"
    done
}

echo "# switch          pps   cpu_%   rtt_med_us rtt_p99_us"
fresh
ip link add "$TAG-br" type bridge
ip link set "$TAG-br" up
for i in 1 2; do
    ip link add "$TAG-v$i" type veth peer name eth1 netns "$TAG-c$i"
    ip link set "$TAG-v$i" master "$TAG-br"
    ip link set "$TAG-v$i" up
    ip -n "$TAG-c$i" addr add 10.63.0.$i/24 dev eth1
    ip -n "$TAG-c$i" link set eth1 up
done
ip netns exec "$TAG-c1" ping -c 3 -i 0.2 -q 10.63.0.2 >/dev/null || true
sweep bridge
ip link del "$TAG-br"
for mode in adaptive fixed; do
    fresh
    d=$RUN/d
    mkdir -p "$d"
    flags=""
    [ "$mode" = fixed ] && flags="--pmd-spin-fixed"
    taskset -c 1 "$BIN/vswitchd" --rundir "$d" --db "$d/conf.db" --pmd-cpus 1 $flags --detach
    "$BIN/vswctl" --rundir "$d" add-br br0
    for i in 1 2; do
        "$BIN/vswctl" --rundir "$d" attach br0 "$TAG-c$i" 10.63.0.$i/24 --type "${TYPE:-tap}"
    done
    ip netns exec "$TAG-c1" ping -c 3 -i 0.2 -q 10.63.0.2 >/dev/null || true
    sleep 1
    sweep "vswitch-$mode" "$(cat "$d/vswitchd.pid")"
    stop_switch
done

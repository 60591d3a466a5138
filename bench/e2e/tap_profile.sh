#!/bin/bash
# One TCP run between two containers attached by TAP (or by veth with
# TYPE=veth), with vswitchd on CPU 1 profiled by `perf record` for 4 s in
# the middle: the iperf3 result, the switch's port counters (bytes per
# received packet says whether super-frames crossed whole) and
# PERF_OUT (default /tmp/vswitch-tap.perf) for `perf report -i`.
#
# UDP=1 sends 64-byte UDP instead (iperf3 -u -l 64 -b 0) and also prints
# the poll thread's statistics: "avg processing cycles per packet" is
# what one frame costs the switch's thread, kernel work included.
#
#   sudo bench/e2e/tap_profile.sh
#   PIN="taskset -c 0" sudo bench/e2e/tap_profile.sh   (iperf3 off the switch's CPU)
#   UDP=1 PIN="taskset -c 0" sudo bench/e2e/tap_profile.sh
set -eu
BIN=${BIN:-$(cd "$(dirname "$0")/../.." && pwd)/target/release}
PERF_OUT=${PERF_OUT:-/tmp/vswitch-tap.perf}
PIN=${PIN:-}
T=tapp$$
d=/tmp/$T
mkdir -p "$d"
cleanup() {
    [ -f "$d/pid" ] && kill "$(cat "$d/pid")" 2>/dev/null || true
    pkill -f "iperf3 -s -D -p 5299" 2>/dev/null || true
    sleep 0.5
    for n in "$T-c1" "$T-c2"; do ip netns del "$n" 2>/dev/null || true; done
    rm -rf "$d"
}
trap cleanup EXIT
for n in "$T-c1" "$T-c2"; do
    ip netns add "$n"
    ip -n "$n" link set lo up
done
taskset -c 1 "$BIN/vswitchd" --rundir "$d" --db "$d/conf.db" --pmd-cpus 1 >"$d/log" 2>&1 &
echo $! >"$d/pid"
for _ in $(seq 50); do [ -S "$d/vswitchd.sock" ] && break; sleep 0.1; done
"$BIN/vswctl" --rundir "$d" add-br br0
for i in 1 2; do
    "$BIN/vswctl" --rundir "$d" attach br0 "$T-c$i" "10.62.0.$i/24" --type "${TYPE:-tap}" >/dev/null
done
ip netns exec "$T-c1" ping -c 2 -i 0.2 10.62.0.2 >/dev/null
$PIN ip netns exec "$T-c2" iperf3 -s -D -p 5299 >/dev/null
sleep 0.5
UDP_ARGS=()
[ "${UDP:-0}" = 1 ] && UDP_ARGS=(-u -l 64 -b 0)
$PIN ip netns exec "$T-c1" iperf3 -c 10.62.0.2 -p 5299 -t 8 "${UDP_ARGS[@]}" >"$d/iperf.txt" &
sleep 2
perf record -F 1999 -g -p "$(cat "$d/pid")" -o "$PERF_OUT" -- sleep 4 >/dev/null 2>&1
wait %2 2>/dev/null || wait
grep -E "sender|receiver" "$d/iperf.txt"
"$BIN/vswctl" --rundir "$d" dump-ports br0
[ "${UDP:-0}" = 1 ] && "$BIN/vswctl" --rundir "$d" pmd/stats-show
echo "profile: perf report -i $PERF_OUT --no-children --sort symbol"

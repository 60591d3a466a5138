#!/bin/bash
# The host's side: TCP between a bridge's own interface and a container,
# through vswitchd (the internal port, a TAP device with the virtio-net
# header, and a container attached by TAP) and through the Linux bridge
# (the bridge device and a veth), on the same namespaces and CPUs. The
# bridge's interface is moved into a namespace of the script's ("host"),
# so nothing of the machine's own is touched. iperf3 for SECS seconds each
# way, REPS times; medians.
#
#   sudo bench/e2e/host_tap.sh       (after cargo build --release)
set -eu
BIN=${BIN:-$(cd "$(dirname "$0")/../.." && pwd)/target/release}
SECS=${SECS:-5}
REPS=${REPS:-3}
T=htap$$
d=/tmp/$T
mkdir -p "$d"
H=$T-h C=$T-c
cleanup() {
    [ -f "$d/vswitchd.pid" ] && kill "$(cat "$d/vswitchd.pid")" 2>/dev/null || true
    pkill -f "iperf3 -s -D -p 5288" 2>/dev/null || true
    sleep 0.5
    for n in "$H" "$C"; do ip netns del "$n" 2>/dev/null || true; done
    rm -rf "$d"
}
trap cleanup EXIT
fresh() {
    for n in "$H" "$C"; do
        ip netns del "$n" 2>/dev/null || true
        ip netns add "$n"
        ip -n "$n" link set lo up
    done
}
measure() {
    ip netns exec "$C" iperf3 -s -D -p 5288 >/dev/null
    ip netns exec "$H" iperf3 -s -D -p 5288 >/dev/null
    sleep 0.5
    ip netns exec "$H" ping -c 3 -i 0.2 10.64.0.2 >/dev/null
    for _ in $(seq "$REPS"); do
        for dir in "$H 10.64.0.2" "$C 10.64.0.1"; do
            set -- $dir
            ip netns exec "$1" iperf3 -c "$2" -p 5288 -t "$SECS" -J | /usr/bin/python3 -c \
                'import json,sys; print("%.2f" % (json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"]/1e9))'
        done | paste -sd' ' | sed "s/^/$NAME /" | tee -a "$d/results"
    done
    pkill -f "iperf3 -s -D -p 5288" || true
}

echo "# switch host_to_container_Gbps container_to_host_Gbps"
fresh
ip -n "$H" link add lbr type bridge
ip -n "$H" link add veth0 type veth peer name eth1 netns "$C"
ip -n "$H" link set veth0 master lbr
ip -n "$H" addr add 10.64.0.1/24 dev lbr
ip -n "$C" addr add 10.64.0.2/24 dev eth1
for l in lbr veth0; do ip -n "$H" link set "$l" up; done
ip -n "$C" link set eth1 up
NAME=bridge measure

fresh
taskset -c 1 "$BIN/vswitchd" --rundir "$d" --db "$d/conf.db" --pmd-cpus 1 --detach
"$BIN/vswctl" --rundir "$d" add-br "$T"
ip link set "$T" netns "$H"
ip -n "$H" addr add 10.64.0.1/24 dev "$T"
ip -n "$H" link set "$T" up
"$BIN/vswctl" --rundir "$d" attach "$T" "$C" 10.64.0.2/24 >/dev/null
NAME=vswitch measure

/usr/bin/python3 - "$d/results" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
med = {n: [statistics.median(float(r[i]) for r in rows if r[0] == n) for i in (1, 2)]
       for n in ("bridge", "vswitch")}
print("\n%-8s %18s %18s" % ("medians", "host->container", "container->host"))
for n, (a, b) in med.items():
    print("%-8s %13.2f Gb/s %13.2f Gb/s" % (n, a, b))
print("vswitch/bridge: %.2fx and %.2fx" % (med["vswitch"][0] / med["bridge"][0], med["vswitch"][1] / med["bridge"][1]))
PY

#!/bin/bash
# VXLAN end to end: container to container across two "hosts" (namespaces
# on one underlay bridge), vswitchd's VXLAN ports against the kernel's
# vxlan device and Linux bridge on the same namespaces, in one run.
#
# Each host gets a CPU of its own, as two machines would: host 1's vswitchd
# (the whole process, poll thread included) on CPU 0, host 2's on CPU 1;
# two poll threads sharing one core would time-slice and measure nothing
# but the scheduler. The kernel's softirq work follows the traffic; the
# tools are not pinned. Default offloads everywhere. Per switch and repetition: iperf3 TCP for SECS
# seconds, UDP with 64-byte payloads (iperf3 -u -l 64, what the receiver
# got, in kpps), and 300 pings at 100/s (median and p99). Medians of REPS.
#
#   sudo bench/e2e/vxlan.sh            (after cargo build --release)
#   SECS=10 REPS=3 sudo bench/e2e/vxlan.sh
set -eu
BIN=${BIN:-$(cd "$(dirname "$0")/../.." && pwd)/target/release}
SECS=${SECS:-10}
REPS=${REPS:-3}
TAG=vxb$$
RUN=/tmp/$TAG
mkdir -p "$RUN"
NS_FAB=$TAG-f

cleanup() {
    for i in 1 2; do
        [ -f "$RUN/d$i/vswitchd.pid" ] && kill "$(cat "$RUN/d$i/vswitchd.pid")" 2>/dev/null || true
    done
    sleep 0.3
    for n in "$NS_FAB" "$TAG-h1" "$TAG-h2" "$TAG-c1" "$TAG-c2"; do
        ip netns del "$n" 2>/dev/null || true
    done
    rm -rf "$RUN"
}
trap cleanup EXIT

# The underlay and the two hosts, each with one container on a veth.
setup_hosts() {
    ip netns add "$NS_FAB"
    ip -n "$NS_FAB" link add fab0 type bridge
    ip -n "$NS_FAB" link set fab0 up
    for i in 1 2; do
        local h=$TAG-h$i c=$TAG-c$i
        ip netns add "$h"
        ip netns add "$c"
        ip -n "$h" link set lo up
        ip -n "$c" link set lo up
        ip -n "$NS_FAB" link add u$i type veth peer name ul0 netns "$h"
        ip -n "$NS_FAB" link set u$i master fab0
        ip -n "$NS_FAB" link set u$i up
        ip -n "$h" addr add 10.99.0.$i/24 dev ul0
        ip -n "$h" link set ul0 up
        ip -n "$h" link add cp type veth peer name eth1 netns "$c"
        ip -n "$h" link set cp up
        ip -n "$c" link set eth1 mtu 1450
        ip -n "$c" addr add 10.100.0.$i/24 dev eth1
        ip -n "$c" link set eth1 up
    done
}

kernel_switch() {
    for i in 1 2; do
        local h=$TAG-h$i
        ip -n "$h" link add br0 type bridge
        ip -n "$h" link add vx0 type vxlan id 100 dstport 4789 local 10.99.0.$i dev ul0
        bridge -n "$h" fdb append 00:00:00:00:00:00 dev vx0 dst 10.99.0.$((3 - i))
        ip -n "$h" link set vx0 master br0
        ip -n "$h" link set cp master br0
        ip -n "$h" link set vx0 up
        ip -n "$h" link set br0 up
    done
}

vswitch_switch() {
    for i in 1 2; do
        local h=$TAG-h$i d=$RUN/d$i
        mkdir -p "$d"
        ip netns exec "$h" taskset -c $((i - 1)) "$BIN/vswitchd" --rundir "$d" \
            --db "$d/conf.db" --pmd-cpus $((i - 1)) ${VSWITCHD_ARGS:-} --detach
        "$BIN/vswctl" --rundir "$d" add-br br0 -- add-port br0 cp \
            -- add-port br0 vx type=vxlan options:remote_ip=10.99.0.$((3 - i)) options:key=100
    done
}

in_c() { local c=$1; shift; ip netns exec "$TAG-$c" "$@"; }

measure() {
    local name=$1
    in_c c2 iperf3 -s -D -p 5201 >/dev/null
    sleep 0.5
    in_c c1 ping -c 20 -i 0.01 -q 10.100.0.2 >/dev/null || true
    for r in $(seq "$REPS"); do
        tcp=$(in_c c1 iperf3 -c 10.100.0.2 -t "$SECS" -J | /usr/bin/python3 -c \
            'import json,sys; print("%.2f" % (json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"]/1e9))')
        udp=$(in_c c1 iperf3 -c 10.100.0.2 -u -l 64 -b 0 -t 5 -J | /usr/bin/python3 -c \
            'import json,sys; e=json.load(sys.stdin)["end"]["sum"]; print("%.0f" % ((e["packets"]-e["lost_packets"])/e["seconds"]/1e3))')
        rtt=$(in_c c1 ping -c 300 -i 0.01 10.100.0.2 | grep -o 'time=[0-9.]*' | cut -d= -f2 | sort -n |
            awk '{t[NR] = $1} END {printf "%.0f %.0f", t[int(NR / 2)] * 1000, t[int(NR * 0.99)] * 1000}')
        echo "$name $tcp $udp $rtt" | tee -a "$RUN/results"
    done
    pkill -f "iperf3 -s -D -p 5201" || true
}

echo "# switch TCP_Gbps UDP64_kpps RTT_median_us RTT_p99_us"
setup_hosts
kernel_switch
measure kernel
for i in 1 2; do
    ip -n "$TAG-h$i" link del br0
    ip -n "$TAG-h$i" link del vx0
done
vswitch_switch
measure vswitch

/usr/bin/python3 - "$RUN/results" <<'EOF'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
med = {}
for sw in ("kernel", "vswitch"):
    vals = [list(map(float, r[1:])) for r in rows if r[0] == sw]
    med[sw] = [statistics.median(c) for c in zip(*vals)]
k, v = med["kernel"], med["vswitch"]
print()
print("%-8s %10s %12s %10s %8s" % ("medians", "TCP Gb/s", "UDP64 kpps", "RTT med", "RTT p99"))
for sw in ("kernel", "vswitch"):
    m = med[sw]
    print("%-8s %10.2f %12.0f %10.0f %8.0f" % (sw, m[0], m[1], m[2], m[3]))
def line(what, ratio, target, higher_better):
    ok = ratio >= target if higher_better else ratio <= target
    print("%-28s %6.2fx  target %s %.1fx  %s" % (what, ratio, ">=" if higher_better else "<=", target, "pass" if ok else "MISS"))
print()
line("TCP vswitch/kernel", v[0] / k[0], 1.0, True)
line("UDP 64 B vswitch/kernel", v[1] / k[1], 1.0, True)
line("RTT median vswitch/kernel", v[2] / k[2], 1.0, False)
EOF

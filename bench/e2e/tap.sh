#!/bin/bash
# Container ports end to end: two containers on one bridge, attached with
# `vswctl attach --type tap` (TAP with the virtio-net header) and with
# `vswctl attach` (veth, AF_XDP), against the Linux bridge with veths, on
# the same namespaces and CPUs, in one run. Default offloads everywhere.
#
# vswitchd (the whole process, its poll thread included) runs on CPU 1.
# Per switch and repetition: iperf3 TCP for SECS seconds, UDP with 64-byte
# payloads (what the receiver got, in kpps), and 300 pings at 100/s
# (median and p99). Medians of REPS.
#
# LOAD=1 adds a steady background load: one busy loop per CPU, at normal
# priority, for the whole run (bridge and switch alike), so the latency
# tail is measured where it shows: when the switch's CPU is shared.
#
# OVS=1 adds Open vSwitch (ovs-vswitchd from the distribution, userspace
# datapath, AF_XDP ports on the same kind of veths, its PMD on CPU 1), the
# same path as vswitch-veth. OFFLOADS=off turns checksum offload, TSO and
# GSO off on every container interface (OVS's AF_XDP ports fail TCP with
# default offloads on veth). TYPES="veth" measures only vswitch's veth
# (AF_XDP) attachment; the default is "tap veth".
#
#   sudo bench/e2e/tap.sh            (after cargo build --release)
#   SECS=10 REPS=3 sudo bench/e2e/tap.sh
#   LOAD=1 sudo bench/e2e/tap.sh
#   OVS=1 OFFLOADS=off sudo bench/e2e/tap.sh
set -eu
BIN=${BIN:-$(cd "$(dirname "$0")/../.." && pwd)/target/release}
SECS=${SECS:-10}
REPS=${REPS:-3}
TAG=tapb$$
RUN=/tmp/$TAG
mkdir -p "$RUN"
C1=$TAG-c1 C2=$TAG-c2

stop_switch() {
    [ -f "$RUN/d/vswitchd.pid" ] && kill "$(cat "$RUN/d/vswitchd.pid")" 2>/dev/null || true
    sleep 0.5
    rm -rf "$RUN/d"
}

LOADERS=()
start_load() {
    [ "${LOAD:-0}" = 1 ] || return 0
    for cpu in $(seq 0 $(($(nproc) - 1))); do
        taskset -c "$cpu" sh -c 'while :; do :; done' &
        LOADERS+=($!)
    done
    echo "# background load: ${#LOADERS[@]} busy loops, one per CPU"
}

cleanup() {
    for p in "${LOADERS[@]}"; do kill "$p" 2>/dev/null || true; done
    stop_switch
    stop_ovs
    ip link del "$TAG-br" 2>/dev/null || true
    for n in "$C1" "$C2"; do ip netns del "$n" 2>/dev/null || true; done
    rm -rf "$RUN"
}
trap cleanup EXIT

fresh_containers() {
    for n in "$C1" "$C2"; do
        ip netns del "$n" 2>/dev/null || true
        ip netns add "$n"
        ip -n "$n" link set lo up
    done
}

linux_bridge() {
    ip link add "$TAG-br" type bridge
    ip link set "$TAG-br" up
    for i in 1 2; do
        ip link add "$TAG-v$i" type veth peer name eth1 netns "$TAG-c$i"
        ip link set "$TAG-v$i" master "$TAG-br"
        ip link set "$TAG-v$i" up
        ip -n "$TAG-c$i" addr add 10.62.0.$i/24 dev eth1
        ip -n "$TAG-c$i" link set eth1 up
    done
}

vswitch() {
    local type=$1 d=$RUN/d
    mkdir -p "$d"
    taskset -c 1 "$BIN/vswitchd" --rundir "$d" --db "$d/conf.db" --pmd-cpus 1 \
        ${VSWITCHD_ARGS:-} --detach
    "$BIN/vswctl" --rundir "$d" add-br br0
    for i in 1 2; do
        "$BIN/vswctl" --rundir "$d" attach br0 "$TAG-c$i" 10.62.0.$i/24 --type "$type"
    done
}

OVSD=$RUN/ovs
ovs() { OVS_RUNDIR=$OVSD ovs-vsctl --db="unix:$OVSD/db.sock" "$@"; }
open_vswitch() {
    mkdir -p "$OVSD"
    export OVS_RUNDIR=$OVSD OVS_LOGDIR=$OVSD OVS_DBDIR=$OVSD
    ovsdb-tool create "$OVSD/conf.db" /usr/share/openvswitch/vswitch.ovsschema
    ovsdb-server "$OVSD/conf.db" --remote="punix:$OVSD/db.sock" \
        --pidfile="$OVSD/ovsdb.pid" --log-file="$OVSD/ovsdb.log" -vconsole:off --detach 2>/dev/null
    ovs --no-wait init
    ovs --no-wait set open_vswitch . other_config:pmd-cpu-mask=0x2
    taskset -c 1 ovs-vswitchd "unix:$OVSD/db.sock" --pidfile="$OVSD/vswitchd.pid" \
        --log-file="$OVSD/vswitchd.log" -vconsole:off --detach 2>/dev/null
    # The netdev datapath makes persistent TAP devices: the bridge's own
    # port and "ovs-netdev". stop_ovs deletes them (the latter only when
    # this run made it).
    ip link show ovs-netdev >/dev/null 2>&1 && OVS_NETDEV_WAS_THERE=1
    ovs add-br "$TAG-ob" -- set bridge "$TAG-ob" datapath_type=netdev
    for i in 1 2; do
        ip link add "$TAG-v$i" type veth peer name eth1 netns "$TAG-c$i"
        ip link set "$TAG-v$i" up
        ip -n "$TAG-c$i" addr add 10.62.0.$i/24 dev eth1
        ip -n "$TAG-c$i" link set eth1 up
        ovs add-port "$TAG-ob" "$TAG-v$i" -- set interface "$TAG-v$i" type=afxdp
    done
    unset OVS_RUNDIR OVS_LOGDIR OVS_DBDIR
}
stop_ovs() {
    [ -S "$OVSD/db.sock" ] && ovs --timeout=5 del-br "$TAG-ob" 2>/dev/null || true
    for p in vswitchd ovsdb; do
        [ -f "$OVSD/$p.pid" ] && kill "$(cat "$OVSD/$p.pid")" 2>/dev/null || true
    done
    sleep 0.5
    for i in 1 2; do ip link del "$TAG-v$i" 2>/dev/null || true; done
    ip link del "$TAG-ob" 2>/dev/null || true
    [ -n "${OVS_NETDEV_WAS_THERE:-}" ] || ip link del ovs-netdev 2>/dev/null || true
    rm -rf "$OVSD"
}

in_c() { local c=$1; shift; ip netns exec "$TAG-$c" "$@"; }

measure() {
    local name=$1
    if [ "${OFFLOADS:-on}" = off ]; then
        for c in c1 c2; do in_c $c ethtool -K eth1 tx off tso off gso off >/dev/null 2>&1 || true; done
    fi
    in_c c2 iperf3 -s -D -p 5201 >/dev/null
    sleep 0.5
    in_c c1 ping -c 20 -i 0.01 -q 10.62.0.2 >/dev/null || true
    for r in $(seq "$REPS"); do
        tcp=$(in_c c1 iperf3 -c 10.62.0.2 -t "$SECS" -J | /usr/bin/python3 -c \
            'import json,sys; print("%.2f" % (json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"]/1e9))')
        udp=$(in_c c1 iperf3 -c 10.62.0.2 -u -l 64 -b 0 -t 5 -J | /usr/bin/python3 -c \
            'import json,sys; e=json.load(sys.stdin)["end"]["sum"]; print("%.0f" % ((e["packets"]-e["lost_packets"])/e["seconds"]/1e3))')
        rtt=$(in_c c1 ping -c 300 -i 0.01 10.62.0.2 | grep -o 'time=[0-9.]*' | cut -d= -f2 | sort -n |
            awk '{t[NR] = $1} END {printf "%.0f %.0f", t[int(NR / 2)] * 1000, t[int(NR * 0.99)] * 1000}')
        echo "$name $tcp $udp $rtt" | tee -a "$RUN/results"
    done
    pkill -f "iperf3 -s -D -p 5201" || true
}

echo "# switch TCP_Gbps UDP64_kpps RTT_median_us RTT_p99_us"
start_load
fresh_containers
linux_bridge
measure bridge
ip link del "$TAG-br"
for i in 1 2; do ip link del "$TAG-v$i" 2>/dev/null || true; done
for type in ${TYPES:-tap veth}; do
    fresh_containers
    vswitch "$type"
    measure "vswitch-$type"
    stop_switch
done
if [ "${OVS:-0}" = 1 ]; then
    fresh_containers
    open_vswitch
    measure ovs-afxdp
    stop_ovs
fi

/usr/bin/python3 - "$RUN/results" <<'EOF'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
names = [n for n in ("bridge", "vswitch-tap", "vswitch-veth", "ovs-afxdp")
         if any(r[0] == n for r in rows)]
med = {}
for sw in names:
    vals = [list(map(float, r[1:])) for r in rows if r[0] == sw]
    med[sw] = [statistics.median(c) for c in zip(*vals)]
print()
print("%-13s %10s %12s %10s %8s" % ("medians", "TCP Gb/s", "UDP64 kpps", "RTT med", "RTT p99"))
for sw in names:
    m = med[sw]
    print("%-13s %10.2f %12.0f %10.0f %8.0f" % (sw, m[0], m[1], m[2], m[3]))
b = med["bridge"]
def line(what, ratio, target, higher_better):
    ok = ratio >= target if higher_better else ratio <= target
    print("%-34s %6.2fx  target %s %.1fx  %s" % (what, ratio, ">=" if higher_better else "<=", target, "pass" if ok else "MISS"))
print()
for sw in [n for n in ("vswitch-tap", "vswitch-veth") if n in med]:
    v = med[sw]
    line("TCP %s/bridge" % sw, v[0] / b[0], 1.0, True)
    line("UDP 64 B %s/bridge" % sw, v[1] / b[1], 1.0, True)
    line("RTT median %s/bridge" % sw, v[2] / b[2], 0.7, False)
    line("RTT p99 %s/bridge" % sw, v[3] / b[3], 1.0, False)
if "ovs-afxdp" in med:
    o, v = med["ovs-afxdp"], med["vswitch-veth"]
    print()
    line("TCP vswitch-veth/ovs-afxdp", v[0] / o[0], 1.0, True)
    line("UDP 64 B vswitch-veth/ovs-afxdp", v[1] / o[1], 1.0, True)
EOF

#!/bin/bash
# NAT end to end: a container behind a router, an outside host beyond it.
# The router is vswitchd (a bridge with a gateway, an uplink, masquerade
# and a published port) against Linux forwarding with nftables masquerade
# and DNAT, on the same namespaces, in one run.
#
#   container c 172.31.0.2 --cp-- router r --up0-- outside o 192.0.2.1,
#                                                  server 198.51.100.10 (lo)
#
# vswitchd (the whole process, its poll thread included) runs on CPU 1;
# the kernel's forwarding runs where the softirqs land. Default offloads.
# Per router and repetition: iperf3 TCP for SECS seconds through masquerade
# (c to the server) and through the published port (o to 192.0.2.2:8080,
# DNAT to c:5201), new TCP connections per second through the published
# port (a connect, one byte, close; 4 client threads for 5 s), and 300
# pings at 100/s through masquerade (median and p99). Medians of REPS.
#
#   sudo bench/e2e/nat.sh            (after cargo build --release)
#   SECS=10 REPS=3 sudo bench/e2e/nat.sh
set -eu
BIN=${BIN:-$(cd "$(dirname "$0")/../.." && pwd)/target/release}
SECS=${SECS:-10}
REPS=${REPS:-3}
TAG=natb$$
RUN=/tmp/$TAG
mkdir -p "$RUN"
C=$TAG-c R=$TAG-r O=$TAG-o

cleanup() {
    [ -f "$RUN/d/vswitchd.pid" ] && kill "$(cat "$RUN/d/vswitchd.pid")" 2>/dev/null || true
    sleep 0.3
    for n in "$C" "$R" "$O"; do ip netns del "$n" 2>/dev/null || true; done
    rm -rf "$RUN"
}
trap cleanup EXIT

setup() {
    for n in "$C" "$R" "$O"; do ip netns add "$n"; ip -n "$n" link set lo up; done
    ip -n "$R" link add cp type veth peer name eth1 netns "$C"
    ip -n "$R" link add up0 type veth peer name out0 netns "$O"
    ip -n "$R" link set cp up
    ip -n "$R" link set up0 up
    ip -n "$C" addr add 172.31.0.2/24 dev eth1
    ip -n "$C" link set eth1 up
    ip -n "$C" route add default via 172.31.0.1
    ip -n "$O" addr add 192.0.2.1/24 dev out0
    ip -n "$O" addr add 198.51.100.10/32 dev lo
    ip -n "$O" link set out0 up
}

kernel_router() {
    ip -n "$R" addr add 172.31.0.1/24 dev cp
    ip -n "$R" addr add 192.0.2.2/24 dev up0
    ip -n "$R" route add default via 192.0.2.1
    ip netns exec "$R" sysctl -qw net.ipv4.ip_forward=1
    ip netns exec "$R" nft -f - <<'NFT'
table ip nat {
    chain pre {
        type nat hook prerouting priority dstnat;
        ip daddr 192.0.2.2 tcp dport 8080 dnat to 172.31.0.2:5201
        ip daddr 192.0.2.2 tcp dport 8081 dnat to 172.31.0.2:5202
    }
    chain post {
        type nat hook postrouting priority srcnat;
        ip saddr 172.31.0.0/24 oifname "up0" masquerade
    }
}
NFT
}

kernel_off() {
    ip netns exec "$R" nft flush ruleset
    ip netns exec "$R" sysctl -qw net.ipv4.ip_forward=0
    ip -n "$R" addr flush dev cp
    ip -n "$R" addr flush dev up0
}

vswitch_router() {
    local d=$RUN/d
    mkdir -p "$d"
    ip netns exec "$R" taskset -c 1 "$BIN/vswitchd" --rundir "$d" --db "$d/conf.db" \
        --pmd-cpus 1 ${VSWITCHD_ARGS:-} --detach
    local ctl="$BIN/vswctl --rundir $d"
    $ctl add-br br0 -- set bridge br0 other_config:gateway=172.31.0.1/24 -- add-port br0 cp
    $ctl add-uplink up0 192.0.2.2/24@192.0.2.1
    $ctl publish br0 tcp 8080 172.31.0.2:5201
    $ctl publish br0 tcp 8081 172.31.0.2:5202
}

in_ns() { local n=$1; shift; ip netns exec "$n" "$@"; }

# New connections per second from o to 192.0.2.2:8080 (a server in c).
cps() {
    in_ns "$C" /usr/bin/python3 - <<'PY' &
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("172.31.0.2", 5202)); s.listen(4096); s.settimeout(15)
try:
    while True:
        c, _ = s.accept(); c.recv(1); c.close()
except OSError:
    pass
PY
    local srv=$!
    sleep 0.5
    in_ns "$O" /usr/bin/python3 - <<'PY'
import socket, threading, time
end = time.time() + 5
counts = [0] * 4
def run(i):
    while time.time() < end:
        s = socket.create_connection(("192.0.2.2", 8081), timeout=2)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")
        s.send(b"x"); s.close(); counts[i] += 1
ts = [threading.Thread(target=run, args=(i,)) for i in range(4)]
[t.start() for t in ts]; [t.join() for t in ts]
print("%.0f" % (sum(counts) / 5))
PY
    kill "$srv" 2>/dev/null || true
    wait "$srv" 2>/dev/null || true
}

measure() {
    local name=$1
    in_ns "$O" iperf3 -s -D -p 5201 -B 198.51.100.10 >/dev/null
    in_ns "$C" iperf3 -s -D -p 5201 -B 172.31.0.2 >/dev/null
    sleep 0.5
    in_ns "$C" ping -c 20 -i 0.01 -q 198.51.100.10 >/dev/null || true
    for r in $(seq "$REPS"); do
        masq=$(in_ns "$C" iperf3 -c 198.51.100.10 -t "$SECS" -J | /usr/bin/python3 -c \
            'import json,sys; print("%.2f" % (json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"]/1e9))')
        pub=$(in_ns "$O" iperf3 -c 192.0.2.2 -p 8080 -t "$SECS" -J | /usr/bin/python3 -c \
            'import json,sys; print("%.2f" % (json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"]/1e9))')
        conns=$(cps)
        rtt=$(in_ns "$C" ping -c 300 -i 0.01 198.51.100.10 | grep -o 'time=[0-9.]*' | cut -d= -f2 | sort -n |
            awk '{t[NR] = $1} END {printf "%.0f %.0f", t[int(NR / 2)] * 1000, t[int(NR * 0.99)] * 1000}')
        echo "$name $masq $pub $conns $rtt" | tee -a "$RUN/results"
    done
    pkill -f "iperf3 -s -D -p 5201" || true
}

echo "# router masq_TCP_Gbps publish_TCP_Gbps publish_conn_per_s RTT_median_us RTT_p99_us"
setup
kernel_router
measure kernel
kernel_off
vswitch_router
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
print("%-8s %10s %12s %10s %8s %8s" % ("medians", "masq Gb/s", "publish Gb/s", "conn/s", "RTT med", "RTT p99"))
for sw in ("kernel", "vswitch"):
    m = med[sw]
    print("%-8s %10.2f %12.2f %10.0f %8.0f %8.0f" % (sw, *m))
def line(what, ratio, target, higher_better):
    ok = ratio >= target if higher_better else ratio <= target
    print("%-32s %6.2fx  target %s %.1fx  %s" % (what, ratio, ">=" if higher_better else "<=", target, "pass" if ok else "MISS"))
print()
line("TCP masquerade vswitch/kernel", v[0] / k[0], 1.0, True)
line("TCP published vswitch/kernel", v[1] / k[1], 1.0, True)
line("conn/s published vswitch/kernel", v[2] / k[2], 1.0, True)
line("RTT median vswitch/kernel", v[3] / k[3], 1.0, False)
EOF

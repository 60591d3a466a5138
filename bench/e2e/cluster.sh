#!/bin/bash
# Cluster overlay at scale, by simulation (issue 13). A real etcd and one
# real vswitchd, each in a namespace on one underlay bridge; HOSTS
# synthetic hosts with MEMBERS members each are written straight into etcd
# (through its JSON gateway, 100 keys a transaction), as that many real
# switches would publish them. Measured:
#   - convergence: from `cluster/join` until every remote member is a
#     static FDB entry on the real switch (cluster/show's fdb_entries);
#     reference: listing the same prefix with etcdctl in the same run;
#   - one member joining, then leaving: from the etcd write until the
#     switch shows it (REPS times, median);
#   - memory per remote member: the switch's RSS after convergence less
#     before joining, over HOSTS x MEMBERS;
#   - etcd traffic: bytes the switch received from etcd (an nft counter).
# Then, on three real hosts with one container each: frames on the
# underlay for a ping mesh (neighbour caches flushed first), the cluster
# (static entries, ARP answered locally) against VXLAN ports with
# flooding and learning on the same topology.
#
#   sudo bench/e2e/cluster.sh                (after cargo build --release)
#   HOSTS=1000 MEMBERS=50 REPS=5 sudo bench/e2e/cluster.sh
set -eu
BIN=${BIN:-$(cd "$(dirname "$0")/../.." && pwd)/target/release}
HOSTS=${HOSTS:-1000}
MEMBERS=${MEMBERS:-50}
REPS=${REPS:-5}
TAG=clb$$
RUN=/tmp/$TAG
mkdir -p "$RUN"
FAB=$TAG-f
ETCD_NS=$TAG-e
EP=http://10.99.0.200:2379
PY=/usr/bin/python3

cleanup() {
    local rc=$?
    if [ $rc != 0 ]; then
        for d in "$RUN"/d*; do echo "== $d"; tail -n 15 "$d/vswitchd.log" 2>/dev/null; done
    fi
    for d in "$RUN"/d*; do
        [ -f "$d/vswitchd.pid" ] && kill "$(cat "$d/vswitchd.pid")" 2>/dev/null || true
    done
    [ -f "$RUN/etcd.pid" ] && kill "$(cat "$RUN/etcd.pid")" 2>/dev/null || true
    sleep 0.3
    for n in $(ip netns list | awk '{print $1}' | grep "^$TAG-"); do
        ip netns del "$n" 2>/dev/null || true
    done
    rm -rf "$RUN"
}
trap cleanup EXIT

vsctl() { local i=$1; shift; "$BIN/vswctl" --rundir "$RUN/d$i" "$@"; }
now_ms() { date +%s%3N; }

# A namespace on the underlay with address 10.99.0.$2.
on_fabric() {
    local ns=$1 i=$2
    ip netns add "$ns"
    ip -n "$ns" link set lo up
    ip -n "$FAB" link add u$i type veth peer name ul0 netns "$ns"
    ip -n "$FAB" link set u$i master fab0
    ip -n "$FAB" link set u$i up
    ip -n "$ns" addr add 10.99.0.$i/24 dev ul0
    ip -n "$ns" link set ul0 up
}

start_switch() {
    local i=$1 d=$RUN/d$1
    mkdir -p "$d"
    ip netns exec "$TAG-h$i" "$BIN/vswitchd" --rundir "$d" --db "$d/conf.db" --detach
}

ip netns add "$FAB"
ip -n "$FAB" link add fab0 type bridge
ip -n "$FAB" link set fab0 up
on_fabric "$ETCD_NS" 200
ip netns exec "$ETCD_NS" etcd --name e --data-dir "$RUN/etcd" \
    --listen-client-urls $EP --advertise-client-urls $EP \
    --listen-peer-urls http://10.99.0.200:2380 --initial-advertise-peer-urls http://10.99.0.200:2380 \
    --initial-cluster e=http://10.99.0.200:2380 --quota-backend-bytes 4294967296 \
    >"$RUN/etcd.log" 2>&1 &
echo $! >"$RUN/etcd.pid"
for _ in $(seq 100); do
    ETCDCTL_API=3 ip netns exec "$ETCD_NS" etcdctl --endpoints $EP endpoint health >/dev/null 2>&1 && break
    sleep 0.1
done

# The synthetic cluster: network "scale", HOSTS hosts under one lease,
# MEMBERS members each.
ip netns exec "$ETCD_NS" $PY - "$EP" "$HOSTS" "$MEMBERS" <<'EOF'
import base64, json, sys, urllib.request
ep, hosts, members = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def call(path, body):
    r = urllib.request.urlopen(urllib.request.Request(ep + path, json.dumps(body).encode()))
    return json.loads(r.read())
b64 = lambda s: base64.b64encode(s.encode()).decode()
P = "/vswitch/v1/"
lease = call("/v3/lease/grant", {"TTL": 3600})["ID"]
call("/v3/kv/put", {"key": b64(P + "networks/scale"),
                    "value": b64(json.dumps({"vni": 1000, "subnet": "10.128.0.0/9"}))})
ops = []
def put(k, v):
    ops.append({"request_put": {"key": b64(P + k), "value": b64(json.dumps(v)), "lease": lease}})
    if len(ops) == 100:
        call("/v3/kv/txn", {"success": ops}); ops.clear()
for h in range(hosts):
    put("hosts/s%d" % h, {"vtep": "10.98.%d.%d" % (h // 250, h % 250 + 1)})
    for m in range(members):
        n = h * members + m
        mac = "0a:00:%02x:%02x:%02x:%02x" % (h >> 8, h & 255, m >> 8, m & 255)
        ip = "10.%d.%d.%d" % (128 + (n >> 16), (n >> 8) & 255, n & 255 or 1)
        put("members/scale/s%d/%s" % (h, mac), {"ip": ip})
if ops:
    call("/v3/kv/txn", {"success": ops})
EOF
total=$((HOSTS * MEMBERS))

t0=$(now_ms)
ETCDCTL_API=3 ip netns exec "$ETCD_NS" etcdctl --endpoints $EP get --prefix /vswitch/v1/ >/dev/null
list_ms=$(($(now_ms) - t0))

# The real host: VTEPs 10.98.0.0/16 are routed onto the underlay.
on_fabric "$TAG-h1" 1
ip -n "$TAG-h1" route add 10.98.0.0/16 dev ul0
ip netns exec "$TAG-h1" nft add table inet m
ip netns exec "$TAG-h1" nft add chain inet m in '{ type filter hook input priority 0; }'
ip netns exec "$TAG-h1" nft add rule inet m in tcp sport 2379 counter
start_switch 1
vsctl 1 add-br br0 -- set bridge br0 other_config:network=scale
pid=$(cat "$RUN/d1/vswitchd.pid")
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$pid/status"; }
# The static entries the overlay installed on br0 of host $1 (default 1).
entries() {
    local n
    n=$(vsctl "${1:-1}" cluster/show | sed -n 's/^bridge br0: .*, \([0-9]*\) static entries$/\1/p')
    echo "${n:-0}"
}
rss0=$(rss_kb)

t0=$(now_ms)
vsctl 1 cluster/join $EP --host real
while [ "$(entries)" -lt "$total" ]; do
    if [ $(($(now_ms) - t0)) -gt 120000 ]; then echo "no convergence in 120 s: $(entries) of $total"; exit 1; fi
    sleep 0.02
done
conv_ms=$(($(now_ms) - t0))
echo "switch log: $(grep -o 'listed [0-9]* keys.*' "$RUN/d1/vswitchd.log" | head -1)"
rss1=$(rss_kb)
bytes=$(ip netns exec "$TAG-h1" nft list chain inet m in | grep -o 'bytes [0-9]*' | awk '{print $2}')

# One member joining and leaving, REPS times.
key=/vswitch/v1/members/scale/s0/0a:ff:00:00:00:01
: >"$RUN/churn"
for r in $(seq "$REPS"); do
    lease=$(ETCDCTL_API=3 ip netns exec "$ETCD_NS" etcdctl --endpoints $EP lease list | sed -n 2p)
    t0=$(now_ms)
    ETCDCTL_API=3 ip netns exec "$ETCD_NS" etcdctl --endpoints $EP put --lease="$lease" $key '{"ip":"10.255.0.1"}' >/dev/null
    while [ "$(entries)" -ne $((total + 1)) ]; do sleep 0.01; done
    echo "join $(($(now_ms) - t0))" >>"$RUN/churn"
    t0=$(now_ms)
    ETCDCTL_API=3 ip netns exec "$ETCD_NS" etcdctl --endpoints $EP del $key >/dev/null
    while [ "$(entries)" -ne $total ]; do sleep 0.01; done
    echo "leave $(($(now_ms) - t0))" >>"$RUN/churn"
done
kill "$pid"

# Underlay frames for a ping mesh: three real hosts, one container each,
# in an etcd without the synthetic cluster.
ETCDCTL_API=3 ip netns exec "$ETCD_NS" etcdctl --endpoints $EP del --prefix /vswitch/v1/ >/dev/null
for i in 2 3 4; do on_fabric "$TAG-h$i" $i; done
mesh() {
    local mode=$1
    for i in 2 3 4; do
        local h=$TAG-h$i c=$TAG-c$i$mode
        rm -rf "$RUN/d$i"
        start_switch $i
        ip netns add "$c"
        ip netns exec "$c" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
        if [ "$mode" = cluster ]; then
            vsctl $i add-br br0 -- set bridge br0 other_config:network=mesh
            vsctl $i cluster/join $EP --host m$i
            if [ $i = 2 ]; then vsctl $i --may-exist network/create mesh --vni 77 --subnet 10.77.0.0/24; fi
            vsctl $i attach br0 "$c" 10.77.0.$i/24
        else
            local rem
            rem=$(for j in 2 3 4; do if [ $j != $i ]; then printf '10.99.0.%s,' $j; fi; done)
            vsctl $i add-br br0 -- add-port br0 vx type=vxlan options:remote_ip=${rem%,} options:key=77
            vsctl $i attach br0 "$c" 10.77.0.$i/24
        fi
    done
    if [ "$mode" = cluster ]; then
        for i in 2 3 4; do
            until [ "$(entries $i)" = 2 ]; do sleep 0.1; done
        done
    fi
    for i in 2 3 4; do for j in 2 3 4; do
        if [ $i != $j ]; then ip netns exec "$TAG-c$i$mode" ping -c 1 -W 2 10.77.0.$j >/dev/null; fi
    done; done
    for i in 2 3 4; do ip -n "$TAG-c$i$mode" neigh flush all; done
    for i in 2 3 4; do
        ip netns exec "$TAG-h$i" tcpdump -i ul0 -nn -w "$RUN/$mode$i.pcap" udp port 4789 2>/dev/null &
    done
    sleep 1
    for i in 2 3 4; do for j in 2 3 4; do
        if [ $i != $j ]; then ip netns exec "$TAG-c$i$mode" ping -c 3 -i 0.2 10.77.0.$j >/dev/null; fi
    done; done
    sleep 0.5
    pkill -f "tcpdump -i ul0 -nn -w $RUN/$mode" || true
    sleep 0.3
    local all=0 arp=0
    for i in 2 3 4; do
        all=$((all + $(tcpdump -nn -r "$RUN/$mode$i.pcap" 2>/dev/null | wc -l)))
        arp=$((arp + $(tcpdump -nn -r "$RUN/$mode$i.pcap" 2>/dev/null | grep -c ARP || true)))
    done
    echo "$mode $all $arp" >>"$RUN/mesh"
    for i in 2 3 4; do
        vsctl $i detach br0 "$TAG-c$i$mode" >/dev/null 2>&1 || true
        kill "$(cat "$RUN/d$i/vswitchd.pid")"
        ip netns del "$TAG-c$i$mode"
    done
    sleep 0.5
}
: >"$RUN/mesh"
mesh learning
mesh cluster

$PY - "$total" "$conv_ms" "$list_ms" "$rss0" "$rss1" "$bytes" "$RUN/churn" "$RUN/mesh" "$HOSTS" "$MEMBERS" <<'EOF'
import statistics, sys
total, conv, lst, rss0, rss1, byts = map(int, sys.argv[1:7])
churn = [l.split() for l in open(sys.argv[7])]
mesh = {l.split()[0]: list(map(int, l.split()[1:])) for l in open(sys.argv[8])}
hosts, members = sys.argv[9], sys.argv[10]
join = statistics.median(int(v) for k, v in churn if k == "join")
leave = statistics.median(int(v) for k, v in churn if k == "leave")
def line(what, value, target, unit, ok):
    print("%-44s %10s %-6s target %-10s %s" % (what, value, unit, target, "pass" if ok else "MISS"))
print("%s hosts x %s members = %d remote members" % (hosts, members, total))
print("reference: etcdctl get --prefix of the same keys: %d ms" % lst)
line("converged (every entry installed)", "%.2f" % (conv / 1000), "< 5", "s", conv < 5000)
print("%-44s %10.1fx" % ("  ratio to the etcdctl listing", conv / max(lst, 1)))
line("one member joining shows (median)", join, "< 1000", "ms", join < 1000)
line("one member leaving shows (median)", leave, "< 1000", "ms", leave < 1000)
print("%-44s %10.0f bytes" % ("switch memory per remote member", (rss1 - rss0) * 1024 / total))
print("%-44s %10.1f MB (%.0f bytes per member)" % ("etcd traffic to the switch, join", byts / 1e6, byts / total))
l, c = mesh["learning"], mesh["cluster"]
print()
print("ping mesh, 3 hosts, neighbour caches flushed: VXLAN frames on the underlay")
print("%-44s %10d (%d ARP)" % ("flooding and learning", l[0], l[1]))
print("%-44s %10d (%d ARP)" % ("cluster (static entries, ARP answered)", c[0], c[1]))
print("%-44s %10.2fx" % ("  ratio cluster/learning", c[0] / max(l[0], 1)))
EOF

#!/usr/bin/python3
"""Writes the fuzz targets' seed inputs into fuzz/seeds/TARGET/, built with
scapy from real frame shapes (run with Debian's /usr/bin/python3, which has
python3-scapy). The fuzz targets' leading bytes (port settings, MTU, VNI)
come first, then the frame, as each target's source describes."""
import json, os, struct
from scapy.all import Ether, Dot1Q, IP, IPv6, UDP, TCP, ICMP, VXLAN, Raw

here = os.path.dirname(os.path.abspath(__file__))

def put(target, name, data):
    d = os.path.join(here, "seeds", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(bytes(data))

a, b = "02:00:00:00:00:01", "02:00:00:00:00:02"
udp = Ether(src=a, dst=b) / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=1234, dport=53) / Raw(b"hello")
tcp = Ether(src=a, dst=b) / IP(src="10.0.0.1", dst="10.0.0.2", flags="DF") / TCP(sport=40000, dport=80, flags="PA", seq=1) / Raw(b"x" * 64)
tcp6 = Ether(src=a, dst=b) / IPv6(src="2001:db8::1", dst="2001:db8::2") / TCP(sport=1, dport=2) / Raw(b"y" * 40)
tagged = Ether(src=a, dst=b) / Dot1Q(vlan=100, prio=5) / IP(src="10.0.0.1", dst="10.0.0.2") / ICMP()
qinq = Ether(src=a, dst=b, type=0x88a8) / Dot1Q(vlan=200) / Dot1Q(vlan=100) / IP() / ICMP()
arp_bcast = bytes.fromhex("ffffffffffff020000000001080600010800060400010200000000010a0000010000000000000a000002")
frames = {"udp": bytes(udp), "tcp": bytes(tcp), "tcp6": bytes(tcp6), "tagged": bytes(tagged),
          "qinq": bytes(qinq), "arp": arp_bcast}

for name, f in frames.items():
    for mode in range(5):
        put("vlan", f"{name}-mode{mode}", bytes([mode, 0, 100, 100, mode & 1]) + f)
    put("checksum", name, f)
    put("l2", name, bytes([4, 1, len(f)]) + f + bytes([2, 60]) + f[6:12] + f[0:6] + f[12:60])

# A partial (CHECKSUM_PARTIAL) UDP checksum, as a veth with offload sends it.
p = bytearray(bytes(udp))
pseudo = sum(struct.unpack("!4H", p[26:34])) + 17 + len(p) - 34
while pseudo > 0xffff:
    pseudo = (pseudo & 0xffff) + (pseudo >> 16)
p[40:42] = struct.pack("!H", pseudo)
put("checksum", "udp-partial", p)

for name, f in frames.items():
    vx = bytes(VXLAN(vni=7, flags=0x08) / Raw(f))
    put("vxlan", name, bytes([7, 1]) + vx)
put("vxlan", "big-df", bytes([7, 1]) + bytes(VXLAN(vni=7) / Ether(src=a, dst=b) /
    IP(src="10.0.0.1", dst="10.0.0.2", flags="DF") / ICMP() / Raw(b"z" * 1472)))

sup = Ether(src=a, dst=b) / IP(src="10.0.0.1", dst="10.0.0.2", flags="DF", id=9) / TCP(sport=1, dport=2, flags="PA", seq=5) / Raw(bytes(range(256)) * 40)
# gso: MTU byte, UDP datagram size byte (1 + 4n), then the super-frame.
put("gso", "tcp4-10k", bytes([170, 0]) + bytes(sup))
sup6 = Ether(src=a, dst=b) / IPv6(src="2001:db8::1", dst="2001:db8::2") / TCP(sport=1, dport=2, flags="FA") / Raw(b"q" * 5000)
put("gso", "tcp6-5k", bytes([100, 0]) + bytes(sup6))
uso = Ether(src=a, dst=b) / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=1, dport=2) / Raw(bytes(range(256)) * 16)
put("gso", "udp4-4k", bytes([170, 249]) + bytes(uso))
uso6 = Ether(src=a, dst=b) / IPv6(src="2001:db8::1", dst="2001:db8::2") / UDP(sport=1, dport=2) / Raw(b"u" * 3000)
put("gso", "udp6-3k", bytes([170, 99]) + bytes(uso6))

reqs = [
    [["add-br", "br0"]],
    [["add-br", "br0"], ["add-port", "br0", "p1", "tag=100"], ["add-port", "br0", "p2", "trunks=1,2,3"]],
    [["add-br", "br0"], ["add-port", "br0", "vx", "type=vxlan", "options:remote_ip=10.0.0.2", "options:key=5"]],
    [["add-br", "br0"], ["set", "bridge", "br0", "other_config:mac-aging-time=60"]],
    [["del-br", "nope"]],
    [["add-br", "br0"], ["fdb/add", "br0", "02:00:00:00:00:01", "br0"]],
]
for i, r in enumerate(reqs):
    put("control_request", f"req{i}", json.dumps({"commands": [{"args": a} for a in r]}).encode())

db = {"version": 3, "bridges": {"br0": {"ports": {"p1": {"tag": 100, "ofport": 2},
      "vx": {"type": "vxlan", "options": {"remote_ip": "10.0.0.2", "key": "5"}, "ofport": 3}},
      "other_config": {"mac-table-size": "4096"}, "ofport": 1}}}
put("db_load", "two-ports", json.dumps(db).encode())
put("db_load", "empty", b"")
put("db_load", "wrong-shape", b"[]")

# etcd_answer: HTTP answers of etcd's JSON gateway (range, watch, error).
import base64
b64 = lambda s: base64.b64encode(s.encode()).decode()
P = "/vswitch/v1/"
def kv(k, v, rev=5):
    return {"key": b64(P + k), "value": b64(json.dumps(v)), "create_revision": str(rev),
            "mod_revision": str(rev), "version": "1"}
hdr = {"cluster_id": "1", "member_id": "2", "revision": "9", "raft_term": "2"}
kvs = [kv("hosts/a", {"vtep": "10.99.0.1"}), kv("hosts/b", {"vtep": "10.99.0.2"}),
       kv("networks/red", {"vni": 100, "subnet": "10.50.0.0/24", "gateway": "10.50.0.1"}),
       kv("members/red/a/02:00:00:00:00:01", {"ip": "10.50.0.2", "container": "c1"}),
       kv("members/red/b/02:00:00:00:00:02", {"ip": "10.50.0.3", "container": "c2"}),
       kv("ips/red/10.50.0.2", {"host": "a", "container": "c1", "mac": "02:00:00:00:00:01"})]
def http(body, chunked=False, status="200 OK"):
    body = body.encode()
    if chunked:
        return (f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                .encode() + b"%x\r\n" % len(body) + body + b"\r\n0\r\n\r\n")
    return f"HTTP/1.1 {status}\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body
put("etcd_answer", "range", http(json.dumps({"header": hdr, "kvs": kvs, "count": str(len(kvs))})))
put("etcd_answer", "watch", http(json.dumps({"result": {"header": hdr, "events": [
    {"kv": kvs[4]}, {"type": "DELETE", "kv": {"key": b64(P + "members/red/a/02:00:00:00:00:01"),
                                             "mod_revision": "10"}}]}}), chunked=True))
put("etcd_answer", "error", http(json.dumps({"error": "etcdserver: requested lease not found",
                                             "code": 5, "message": "requested lease not found"}),
                                 chunked=True, status="404 Not Found"))

# nat: two configuration bytes (bits of the first: 0-2 table limit - 1,
# 3/4 masquerade on bridge 1/2, 5 published ports, 6 raw checksums, 7
# neighbours known; low nibble of the second: timeouts), then records: a
# kind byte (bits 0-1 port: 3, 4 (bridge 1), 6 (bridge 2), 9 (uplink); bit 2
# raw; bit 3 same batch; bits 5-7 clock step) and either a length and raw
# bytes or 18 bytes: selector (bits 0-2: tcp, udp, echo, echo reply, ICMP
# error about the last translated frame, gre, arp, again; 3 IP options;
# 4 MF; 5 later fragment; 6 TTL 1-2; 7 UDP without checksum), source and
# destination address indices (see POOL in fuzz_targets/nat.rs), ports,
# TCP flags, payload length, MAC choice, seq, ack.
C1, C2, C3, C6, GWI, GW2I, UPI, HOPI, SRV, SRV2, LINK = range(11)
GW_MAC, UP_MAC, HOP_MAC = "02:00:00:00:00:01", "02:00:00:00:00:02", "02:00:00:00:00:20"

def rec(port, sel, src, dst, sport=0, dport=0, flags=0, plen=0, macsel=0, seq=0, ack=0, dt=0, join=False):
    kind = [3, 4, 6, 9].index(port) | (8 if join else 0) | (dt << 5)
    return bytes([kind, sel, src, dst]) + struct.pack("!HHBBBII", sport, dport, flags, plen, macsel, seq, ack)

def raw(port, frame, dt=0):
    frame = bytes(frame)[:255]
    return bytes([[3, 4, 6, 9].index(port) | 4 | (dt << 5), len(frame)]) + frame

NAT = 0xbf  # limit 8, masquerade on both bridges, published ports, neighbours known
TCP_, UDP_, ECHO, ECHOREP, ICMPERR, GRE, ARP_, AGAIN = range(8)
nat_seeds = {
    "masq-udp": [rec(3, UDP_, C1, SRV, 40000, 53, plen=12), rec(3, UDP_, C1, SRV, 40000, 53, plen=12, dt=3),
                 rec(4, UDP_, C2, SRV, 40000, 53, plen=5, join=False)],
    "masq-tcp": [rec(3, TCP_, C1, SRV, 40001, 80, flags=0x02, seq=1000),
                 rec(3, TCP_, C1, SRV, 40001, 80, flags=0x10, seq=1001, ack=0x50000001, dt=1),
                 rec(3, TCP_, C1, SRV, 40001, 80, flags=0x18, plen=40, seq=1001, ack=0x50000001),
                 rec(3, ICMPERR, 0, 0, flags=0), rec(3, TCP_, C1, SRV, 40001, 80, flags=0x11, seq=1041, ack=0x50000001, dt=2)],
    "masq-ping": [rec(3, ECHO, C1, SRV, 0x1234, 1, plen=56), rec(3, ECHO, C1, SRV, 0x1234, 2, plen=56, dt=3),
                  rec(3, ICMPERR, 1, 0, flags=1)],
    "ping-gateway": [rec(3, ECHO, C1, GWI, 7, 1, plen=8), rec(9, ECHO, HOPI, UPI, 8, 1, plen=8)],
    # What found the ICMP checksum bug: an echo of zeros answered in place.
    "ping-zeros": [rec(3, ECHO, C1, GW2I, 0, 0), rec(3, ECHO, C1, SRV, 0, 0)],
    "publish-tcp": [rec(9, TCP_, SRV, UPI, 50000, 8080, flags=0x02, seq=77), rec(9, TCP_, SRV2, UPI, 50001, 2222, flags=0x02, seq=5)],
    "publish-udp": [rec(9, UDP_, SRV, UPI, 50000, 5003, plen=20), rec(9, UDP_, SRV, UPI, 50000, 4999, plen=20)],
    "hairpin": [rec(3, TCP_, C1, UPI, 40002, 8080, flags=0x02, seq=9), rec(6, UDP_, C6, UPI, 40003, 5001, plen=3)],
    "between-bridges": [rec(3, UDP_, C1, C6, 1000, 2000, plen=4), rec(6, TCP_, C6, C2, 1000, 2000, flags=0x02)],
    "ttl-expired": [rec(3, UDP_ | 0x40, C1, SRV, 40000, 33434, plen=4)],
    "fragments": [rec(3, UDP_ | 0x10, C1, SRV, 40004, 9999, plen=100),
                  rec(3, UDP_ | 0x20, C1, SRV, 40004, 9999, plen=0x50)],
    "gre-and-zero-udp": [rec(3, GRE, C1, SRV, plen=24), rec(3, UDP_ | 0x80 | 0x08, C1, SRV, 1, 2, plen=9)],
    "arp": [rec(3, ARP_, C1, GWI, macsel=1 << 2), rec(9, ARP_, HOPI, UPI, macsel=1), rec(9, ARP_, HOPI, UPI, flags=1)],
    "again": [rec(3, TCP_, C1, SRV, 3, 4, flags=0x10, seq=1, ack=1), rec(3, AGAIN, 0, 0), rec(3, AGAIN, 0, 0, join=True)],
    "expiry": [rec(3, UDP_, C1, SRV, 1, 53), rec(3, UDP_, C2, SRV, 1, 53, dt=6), rec(9, UDP_, SRV, UPI, 53, 1, dt=7)],
}
for name, recs in nat_seeds.items():
    put("nat", name, bytes([NAT, 3]) + b"".join(recs))
# Neighbours unknown: the first packet waits for the next hop's answer.
put("nat", "held-until-arp", bytes([NAT & 0x7f, 3]) + rec(3, UDP_, C1, SRV, 40000, 53, plen=8)
    + rec(9, ARP_, HOPI, UPI, flags=1) + rec(3, ARP_, C1, GWI, flags=1))
# A full table (limit 1) and a batch of new connections.
put("nat", "table-full", bytes([0x98, 3]) + rec(3, UDP_, C1, SRV, 1, 53)
    + b"".join(rec(3, UDP_, C1, SRV, 2 + i, 53, join=True) for i in range(5)))
# Real frame shapes, raw (checksums are fixed by the harness).
in_tcp = Ether(src="02:0c:ac:1f:00:0a", dst=GW_MAC) / IP(src="172.31.0.10", dst="198.51.100.10", ttl=64, flags="DF") / \
    TCP(sport=45678, dport=443, flags="S", seq=12345, options=[("MSS", 1460), ("SAckOK", b""), ("Timestamp", (1, 0)), ("NOP", None), ("WScale", 7)])
out_udp = Ether(src=HOP_MAC, dst=UP_MAC) / IP(src="198.51.100.10", dst="192.0.2.2") / UDP(sport=53, dport=5002) / Raw(b"\x12\x34" + b"\0" * 10)
bad_ihl = bytearray(bytes(out_udp)); bad_ihl[14] = 0x4f
short_tcp = Ether(src="02:0c:ac:1f:00:0a", dst=GW_MAC) / IP(src="172.31.0.10", dst="198.51.100.10", proto=6) / Raw(b"\0" * 10)
put("nat", "raw-shapes", bytes([NAT, 3]) + raw(3, in_tcp) + raw(9, out_udp) + raw(9, bad_ihl) + raw(3, short_tcp)
    + raw(9, b"\x02\x00") + raw(3, arp_bcast))

# capture: snaplen (two bytes, 14 + value; 0xff first: the default), flags
# (bits 0-2 rx, tx, drops; 3-5 count; 6 fields follow as a length and
# words), a name fragment (length, bytes) and its repeat count (above 200:
# names and a comment beyond 64 KiB), then offers: op (bits 0-1 port, 2-3
# rx/tx/drop/stop, 4-5 parts - 1 for tx, 6 a long frame), drop reason
# index, length, bytes. Then anything: fed to the pcapng readers too.
def cap_offer(port, kind, frame, parts=1, reason=0, big=False):
    frame = bytes(frame)[:255]
    return bytes([port | (kind << 2) | ((parts - 1) << 4) | (0x40 if big else 0), reason, len(frame)]) + frame

def cap_seed(snaplen, flags, words=b"", name=b"eth", reps=1, offers=b""):
    s = bytes([0xff, 0]) if snaplen is None else struct.pack("!H", snaplen - 14)
    s += bytes([flags])
    if flags & 0x40:
        s += bytes([len(words)]) + words
    return s + bytes([len(name)]) + name + bytes([reps]) + offers

cap_frames = cap_offer(0, 0, udp) + cap_offer(1, 1, tcp, parts=2) + cap_offer(2, 2, tagged, reason=5) + \
    cap_offer(0, 0, tcp6) + cap_offer(1, 1, qinq, parts=4) + cap_offer(2, 0, arp_bcast)
put("capture", "all-default", cap_seed(None, 0x07, offers=cap_frames))
put("capture", "snaplen-64", cap_seed(64, 0x07, offers=cap_frames + cap_offer(0, 0, tcp, big=True)))
put("capture", "count-3-stop", cap_seed(1514, 0x07 | (3 << 3), offers=cap_frames + cap_offer(0, 3, b"") + cap_offer(0, 0, udp)))
put("capture", "in-only", cap_seed(96, 0x01, offers=cap_frames))
put("capture", "live-fields", cap_seed(None, 0x41, words=b"nw_src=10.0.0.1 nw_proto=6 tp_dst=80",
    offers=cap_frames + cap_offer(1, 0, tcp)))
put("capture", "live-vlan", cap_seed(None, 0x47, words=b"dl_vlan=100 dl_src=02:00:00:00:00:01 dl_type=0x0800",
    offers=cap_frames))
put("capture", "bad-fields", cap_seed(200, 0x47, words=b"dl_vlan=5000 colour=red nw_src=1.2.3", offers=cap_frames))
put("capture", "long-names", cap_seed(14, 0x07, name="é-ü".encode(), reps=245, offers=cap_frames))
# The pcapng readers on a real ISB and EPB, after the capture part.
isb = struct.pack("<IIIII", 5, 64, 1, 0, 5) + struct.pack("<HHII", 2, 8, 0, 1) + struct.pack("<HHQ", 4, 8, 10) + \
    struct.pack("<HHQ", 5, 8, 2) + struct.pack("<HH", 0, 0) + struct.pack("<I", 64)
put("capture", "isb-tail", cap_seed(1514, 0x07, offers=cap_offer(0, 0, udp)) + isb)
put("capture", "isb-raw", isb)

# rstp: records of port, time step (x20 ms), length, then bytes written over
# an RST BPDU from offset 14 (LLC on). Length 0 sends the BPDU as it is: a
# designated port of a better root, proposing.
def bpdu(flags=0x0e, root=0x8000020000000000, cost=20000, bridge=0x8000020000000002, port=0x8001, age=1):
    b = bytes.fromhex("0180c2000000") + bytes.fromhex("020000000009") + struct.pack("!H", 39)
    b += bytes([0x42, 0x42, 0x03, 0, 0, 2, 2, flags]) + struct.pack("!QIQH", root, cost, bridge, port)
    b += struct.pack("!HHHH", age * 256, 20 * 256, 2 * 256, 15 * 256) + bytes([0])
    return b[14:]

def rstp_rec(port, step, body=b""):
    return bytes([port, step, len(body)]) + body

put("rstp", "superior-root", b"".join(rstp_rec(1, 50) for _ in range(20)))
put("rstp", "own-loop", b"".join(rstp_rec(p, 25, bpdu(root=0x8000020000000001, bridge=0x8000020000000001, port=0x8000 | p))
    for p in [1, 2] * 10))
put("rstp", "agreement", rstp_rec(2, 10, bpdu(flags=0x48)) + rstp_rec(2, 50, bpdu(flags=0x78, cost=40000)) * 5)
put("rstp", "tc-storm", b"".join(rstp_rec(1 + i % 4, 1, bpdu(flags=0x0f)) for i in range(60)))
put("rstp", "config-and-tcn", rstp_rec(3, 50, bpdu()[:5] + bytes([0, 0, 0x01])) +
    rstp_rec(3, 50, bytes([0x42, 0x42, 0x03, 0, 0, 0, 0x80])) + rstp_rec(3, 200))
put("rstp", "aged-out", rstp_rec(1, 50) + rstp_rec(4, 255) + rstp_rec(4, 255) + rstp_rec(1, 50))

# ovs_vsctl: command lines, words separated by spaces.
for i, line in enumerate([
    "add-br br1 -- add-port br1 p3 tag=100 -- set Interface p3 type=internal",
    "set Bridge br0 rstp_enable=true other_config:rstp-priority=4096",
    "set Interface p1 mtu_request=1400 -- set Interface p2 options:k=[]",
    "-- --id=@p get Port p2 -- --id=@m create Mirror name=m1 select-all=true output-port=@p -- add Bridge br0 mirrors @m",
    "-- --id=@m get Mirror m0 -- remove Bridge br0 mirrors @m",
    "clear Bridge br0 mirrors",
    "--columns=name,type --format=table find Interface type=internal",
    "--bare --no-headings list Port p1",
    "get Interface p1 external_ids:container_id mtu_request",
    "remove Interface p1 options k -- del-port br0 p2 -- --if-exists del-br nosuch",
    "--may-exist add-port br0 p1 -- set Port p1 trunks=[10,20] vlan_mode=native-untagged",
    "show",
]):
    put("ovs_vsctl", f"line{i}", line.encode())

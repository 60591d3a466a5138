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
put("gso", "tcp4-10k", bytes([170]) + bytes(sup))
sup6 = Ether(src=a, dst=b) / IPv6(src="2001:db8::1", dst="2001:db8::2") / TCP(sport=1, dport=2, flags="FA") / Raw(b"q" * 5000)
put("gso", "tcp6-5k", bytes([100]) + bytes(sup6))

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

//! VLAN tags that veth carries outside the frame bytes. Each test builds
//!
//! ```text
//!   D --veth-- C ==bridge R== B --veth-- A (the AF_XDP port)
//! ```
//!
//! with names `xv<pid><tag>{a,b,c,d,r}`, deleted by a guard even on panic.
//! A frame sent tagged on D reaches C with the tag in its bytes; C's receive
//! path moves the tag into skb metadata, the bridge forwards the skb to B,
//! and B's tx-vlan offload (on by default) keeps it there. Without help, A's
//! XDP program sees the frame untagged. The veth tests need root.

use super::testnet::{is_root, run, xdp_prog_name, PacketSocket};
use super::*;
use pipeline::Batch;
use std::process::Command;
use std::time::{Duration, Instant};

const INNER_ETHERTYPE: u16 = 0x88b5;
const MAGIC: &[u8; 4] = b"VSVL";

/// Interfaces this test created; deleted on drop, in reverse order.
struct VlanLab {
    a: String,
    b: String,
    d: String,
    r: String,
    created: Vec<String>,
}

impl VlanLab {
    fn new(tag: &str) -> Option<VlanLab> {
        if !is_root() {
            eprintln!("skipped: needs root to create veth pairs and a bridge");
            return None;
        }
        let name = |s: &str| format!("xv{}{tag}{s}", std::process::id());
        let (a, b, c, d, r) = (name("a"), name("b"), name("c"), name("d"), name("r"));
        assert!(r.len() <= netdev::MAX_IFNAME);
        let mut lab = VlanLab {
            a: a.clone(),
            b: b.clone(),
            d: d.clone(),
            r: r.clone(),
            created: Vec::new(),
        };
        lab.add(&a, &["type", "veth", "peer", "name", &b]);
        lab.add(&c, &["type", "veth", "peer", "name", &d]);
        lab.add(&r, &["type", "bridge"]);
        for n in [&a, &b, &c, &d, &r] {
            // Keep IPv6 neighbour discovery noise off the test links.
            let _ = std::fs::write(format!("/proc/sys/net/ipv6/conf/{n}/disable_ipv6"), "1");
        }
        for port in [&b, &c] {
            run("ip", &["link", "set", "dev", port, "master", &r]);
        }
        for n in [&b, &c, &d, &r] {
            run("ip", &["link", "set", "dev", n, "up"]);
        }
        Some(lab)
    }

    /// `ip link add name ...`; from then on `name` is ours to delete.
    fn add(&mut self, name: &str, args: &[&str]) {
        let mut all = vec!["link", "add", "name", name];
        all.extend(args);
        run("ip", &all);
        self.created.push(name.to_string());
    }

    /// Waits until both bridge ports forward (immediate without STP).
    fn wait_forwarding(&self) {
        let deadline = Instant::now() + Duration::from_secs(5);
        let master = format!("master {} ", self.r);
        loop {
            let out = run("bridge", &["link", "show"]);
            let forwarding = out
                .lines()
                .filter(|l| l.contains(&master) && l.contains("state forwarding"))
                .count();
            if forwarding == 2 {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "bridge ports not forwarding:\n{out}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for VlanLab {
    fn drop(&mut self) {
        // Deleting one end of a veth pair deletes the other.
        for n in self.created.iter().rev() {
            let _ = Command::new("ip").args(["link", "del", "dev", n]).status();
        }
    }
}

/// A test frame: broadcast, then `tags` as (TPID, TCI), the experimental
/// EtherType, magic, test id, sequence number and a pattern; 80 bytes.
fn frame(test: u8, seq: u8, tags: &[(u16, u16)]) -> Vec<u8> {
    let mut f = vec![0xff; 6];
    f.extend([0x02, 0, 0, 0x7e, test, seq]);
    for (tpid, tci) in tags {
        f.extend(tpid.to_be_bytes());
        f.extend(tci.to_be_bytes());
    }
    f.extend(INNER_ETHERTYPE.to_be_bytes());
    f.extend(MAGIC);
    f.extend([test, seq]);
    while f.len() < 80 {
        f.push(f.len() as u8 ^ seq);
    }
    f
}

/// The sequence number of a frame of test `test`, wherever its tags end.
fn seq_of(f: &[u8], test: u8) -> Option<u8> {
    let at = (14..=22)
        .step_by(4)
        .find(|&at| f.len() >= at + 6 && &f[at..at + 4] == MAGIC)?;
    (f[at + 4] == test).then_some(f[at + 5])
}

/// The frame of test `test` and sequence `seq` received on `port` within 2 s.
fn recv_frame(port: &mut crate::OpenPort, test: u8, seq: u8) -> Option<Vec<u8>> {
    let mut batch = Batch::new();
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline {
        for q in port.rxqs.iter_mut() {
            q.recv(&mut batch);
            let found = batch
                .packets()
                .iter()
                .find(|p| seq_of(p.data(), test) == Some(seq))
                .map(|p| p.data().to_vec());
            q.release(&mut batch);
            batch.clear();
            if found.is_some() {
                return found;
            }
        }
    }
    None
}

/// Tag stacks sent through the bridge: untagged, 802.1Q with PCP 5, DEI and
/// VID 123, a priority tag (VID 0), and 802.1ad outer over 802.1Q inner.
const CASES: [(&str, &[(u16, u16)]); 4] = [
    ("untagged", &[]),
    ("802.1Q PCP 5 DEI VID 123", &[(0x8100, 0xb07b)]),
    ("802.1Q priority tag", &[(0x8100, 0x6000)]),
    (
        "802.1ad 100 over 802.1Q 200",
        &[(0x88a8, 100), (0x8100, 200)],
    ),
];

/// Sends each case on `from` and checks A's AF_XDP queue gets it unchanged.
fn check_cases(port: &mut crate::OpenPort, from: &PacketSocket, test: u8, first_seq: u8) {
    for (i, (what, tags)) in CASES.iter().enumerate() {
        let seq = first_seq + i as u8;
        let sent = frame(test, seq, tags);
        from.send(&sent);
        let got = recv_frame(port, test, seq)
            .unwrap_or_else(|| panic!("{what}: nothing received on the port"));
        assert_eq!(
            hex(&got[..got.len().min(24)]),
            hex(&sent[..24]),
            "{what}: frame changed on the way (first 24 bytes)"
        );
        assert_eq!(got, sent, "{what}: frame changed on the way");
    }
}

fn hex(b: &[u8]) -> String {
    b.iter()
        .map(|x| format!("{x:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whether this kernel can run the VLAN-restoring program.
fn kernel_has_kfunc() -> bool {
    btf::vmlinux_func_id(vlan_prog::KFUNC).is_some()
}

#[test]
fn offloaded_vlan_tags_reach_the_port_in_native_mode() {
    let Some(lab) = VlanLab::new("n") else {
        return;
    };
    let mut port = open(&lab.a, XdpMode::Native).unwrap_or_else(|e| panic!("open: {e}"));
    assert_eq!(port.status.mode, "native");
    let prog = xdp_prog_name(&lab.a);
    if !kernel_has_kfunc() {
        eprintln!("skipped: no {} in this kernel's BTF", vlan_prog::KFUNC);
        return;
    }
    assert_eq!(prog.as_deref(), Some(vlan_prog::VLAN_NAME));
    lab.wait_forwarding();
    let d = PacketSocket::open(&lab.d, 0);

    // tx-vlan offload on B (the default): tags travel as skb metadata.
    check_cases(&mut port, &d, 20, 0);

    // Off: B's transmit writes 802.1Q tags into the bytes; still one tag.
    // (802.1ad tags stay in metadata: tx-vlan-stag-hw-insert is still on.)
    run("ethtool", &["-K", &lab.b, "txvlan", "off"]);
    check_cases(&mut port, &d, 20, 10);

    // Straight from B, tags in the bytes.
    check_cases(&mut port, &PacketSocket::open(&lab.b, 0), 20, 20);
}

/// Generic mode refuses device-bound programs, so it runs the plain one:
/// tags in the bytes arrive, tags in skb metadata are lost (not checked).
#[test]
fn generic_mode_runs_the_plain_program() {
    let Some(lab) = VlanLab::new("g") else {
        return;
    };
    if kernel_has_kfunc() {
        // Why: the kernel refuses device-bound programs in generic mode.
        let ifindex = netdev::ifindex(&lab.a).unwrap();
        let map = bpf::XskMap::create(1).unwrap();
        let prog = vlan_prog::load_vlan_restore(&map, ifindex)
            .expect("kfunc in BTF")
            .unwrap_or_else(|e| panic!("{}: {}", e.source, e.log));
        let e = bpf::Link::attach_xdp(&prog, ifindex, bpf::XDP_FLAGS_SKB_MODE)
            .err()
            .expect("a device-bound program attached in generic mode");
        assert_eq!(e.raw_os_error(), Some(libc::EINVAL), "{e}");
    }
    let mut port = open(&lab.a, XdpMode::Generic).unwrap_or_else(|e| panic!("open: {e}"));
    assert_eq!(port.status.mode, "generic");
    assert_eq!(xdp_prog_name(&lab.a).as_deref(), Some(bpf::PROG_NAME));
    lab.wait_forwarding();
    let offloads = ["txvlan", "off", "tx-vlan-stag-hw-insert", "off"];
    run(
        "ethtool",
        &[&["-K", lab.b.as_str()][..], &offloads].concat(),
    );
    check_cases(&mut port, &PacketSocket::open(&lab.d, 0), 21, 0);
    check_cases(&mut port, &PacketSocket::open(&lab.b, 0), 21, 10);
}

/// A frame the program passes to the kernel (no socket for its queue)
/// keeps its tag in skb metadata only; the stack must not see it twice.
#[test]
fn frames_passed_to_the_stack_are_not_retagged() {
    let Some(lab) = VlanLab::new("p") else {
        return;
    };
    if !kernel_has_kfunc() {
        eprintln!("skipped: no {} in this kernel's BTF", vlan_prog::KFUNC);
        return;
    }
    let ifindex = netdev::ifindex(&lab.a).unwrap();
    let empty = bpf::XskMap::create(1).unwrap();
    let prog = vlan_prog::load_vlan_restore(&empty, ifindex)
        .expect("kfunc in BTF")
        .unwrap_or_else(|e| panic!("{}: {}", e.source, e.log));
    let _link = bpf::Link::attach_xdp(&prog, ifindex, bpf::XDP_FLAGS_DRV_MODE).unwrap();
    netdev::set_up(&lab.a, true).unwrap();
    lab.wait_forwarding();
    const ETH_P_ALL: u16 = 0x0003;
    let sniff = PacketSocket::open(&lab.a, ETH_P_ALL);
    let tagged = frame(22, 1, &[(0x8100, 0xb07b)]);
    PacketSocket::open(&lab.d, 0).send(&tagged);
    // A packet socket shows the frame without a tag held in skb metadata.
    let mut untagged = tagged.clone();
    untagged.drain(12..16);
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let got = sniff.recv_frame(200);
        if let Some(f) = got.filter(|f| seq_of(f, 22) == Some(1)) {
            assert_eq!(hex(&f), hex(&untagged), "the stack got the frame changed");
            return;
        }
        assert!(Instant::now() < deadline, "the stack got nothing");
    }
}

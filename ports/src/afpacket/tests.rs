//! AF_PACKET ports on real veth pairs created (and deleted) by each test.

use super::testutil::{frame, ifname, marker, veth_pair, wait_readable, RawSocket};
use super::*;
use std::time::{Duration, Instant};

/// Receives until the frames marked `want` arrived (or `wait` passed),
/// returning every marked frame seen, in order.
fn recv_marked(rx: &mut dyn RxQueue, want: usize, wait: Duration) -> Vec<(u32, Vec<u8>)> {
    let deadline = Instant::now() + wait;
    let mut batch = Batch::new();
    let mut got = Vec::new();
    while got.len() < want && Instant::now() < deadline {
        if let Some(fd) = rx.wake_fd() {
            wait_readable(fd, 10);
        }
        batch.clear();
        rx.recv(&mut batch);
        for p in batch.packets() {
            if let Some(m) = marker(p.data()) {
                got.push((m, p.data().to_vec()));
            }
        }
    }
    got
}

#[test]
fn missing_device_is_reported_as_such() {
    let err = open("ptnosuchdev0", None).err().expect("open must fail");
    assert!(err.is_missing_device(), "{err}");
    assert!(
        err.to_string().starts_with("ptnosuchdev0: looking up"),
        "{err}"
    );
    let err = open("pt with space", None).err().expect("bad name");
    assert!(!err.is_missing_device());
}

#[test]
fn receives_frames_with_their_vlan_tags() {
    let (a, b) = (ifname("pt", "ra"), ifname("pt", "rb"));
    let _links = veth_pair(&a, &b);
    let mut port = open(&a, Some("test".into())).expect("open");
    assert_eq!(port.status.backend, "afpacket");
    assert_eq!(port.status.mode, "tpacket-v3");
    assert_eq!(port.status.fallback_reason.as_deref(), Some("test"));
    assert_eq!(port.status.ifindex, netdev::ifindex(&a).unwrap());
    assert_eq!(port.status.mac, netdev::mac(&a).unwrap());
    assert_eq!(port.status.mtu, 1500);

    let peer = RawSocket::bind(&b);
    let sent = [
        frame(1, None),
        frame(2, Some((0x8100, 0x6064))),
        frame(3, Some((0x88a8, 0x0005))),
    ];
    for f in &sent {
        peer.send(f);
    }
    let got = recv_marked(port.rxqs[0].as_mut(), 3, Duration::from_secs(3));
    let markers: Vec<u32> = got.iter().map(|(m, _)| *m).collect();
    assert_eq!(markers, [1, 2, 3]);
    for ((_, bytes), f) in got.iter().zip(&sent) {
        assert_eq!(bytes, f, "frame must arrive as sent, tag included");
    }
}

#[test]
fn a_full_batch_resumes_inside_the_block() {
    let (a, b) = (ifname("pt", "ba"), ifname("pt", "bb"));
    let _links = veth_pair(&a, &b);
    let mut port = open(&a, None).expect("open");
    let peer = RawSocket::bind(&b);
    // More than three batches, sent fast enough to share a block or two.
    for m in 0..100 {
        peer.send(&frame(m, None));
    }
    let got = recv_marked(port.rxqs[0].as_mut(), 100, Duration::from_secs(3));
    let markers: Vec<u32> = got.iter().map(|(m, _)| *m).collect();
    assert_eq!(markers, (0..100).collect::<Vec<_>>());
}

#[test]
fn sends_without_hearing_itself() {
    let (a, b) = (ifname("pt", "ta"), ifname("pt", "tb"));
    let _links = veth_pair(&a, &b);
    let mut port = open(&a, None).expect("open");
    let peer = RawSocket::bind(&b);
    let want: Vec<u32> = (10..20).collect();
    for &m in &want {
        assert!(port.tx.send(&frame(m, None)), "send {m}");
    }
    port.tx.flush();
    assert!(!port.tx.pending());
    let got = peer.recv_marked(&want, Duration::from_secs(3));
    assert_eq!(got.len(), want.len(), "peer got {got:?}");
    assert_eq!(got[0].1, frame(10, None));

    // Nor does anything else leaving through the interface (the host
    // stack, another socket): that is what PACKET_IGNORE_OUTGOING is for.
    // (The kernel never loops a socket's own frames back to it.)
    RawSocket::bind(&a).send(&frame(20, None));
    assert_eq!(peer.recv_marked(&[20], Duration::from_secs(3)).len(), 1);

    // Well past the block retire timeout: none of it came back.
    let echoed = recv_marked(port.rxqs[0].as_mut(), 1, Duration::from_millis(100));
    assert!(echoed.is_empty(), "received outgoing frames: {echoed:?}");

    // A frame larger than the MTU is refused, not a panic.
    assert!(!port.tx.send(&vec![0u8; 9000]));
}

#[test]
fn interface_is_promiscuous_while_open() {
    let (a, b) = (ifname("pt", "pa"), ifname("pt", "pb"));
    let _links = veth_pair(&a, &b);
    let flags = || {
        let s = std::fs::read_to_string(format!("/sys/class/net/{a}/flags")).unwrap();
        u32::from_str_radix(s.trim().trim_start_matches("0x"), 16).unwrap()
    };
    let promisc = libc::IFF_PROMISC as u32;
    assert_eq!(flags() & promisc, 0);
    let port = open(&a, None).expect("open");
    assert_ne!(flags() & promisc, 0);
    drop(port);
    // The membership goes with the socket, but a process another test
    // thread is spawning holds a copy of every fd from fork until exec
    // closes it: allow that moment.
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    while flags() & promisc != 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(flags() & promisc, 0);
}

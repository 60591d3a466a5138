//! Loopback only: every socket is bound to, and every datagram sent to,
//! 127.0.0.1.

use super::*;
use crate::afpacket::testutil::wait_readable;
use crate::{RxQueue, TxQueue};
use pipeline::{Batch, BATCH_SIZE, HEADROOM};
use std::time::{Duration, Instant};

const LOOPBACK: Ipv4Addr = Ipv4Addr::LOCALHOST;

/// A 54-byte IPv4/UDP datagram from and to 127.0.0.1 carrying a VXLAN
/// header and an 18-byte inner frame whose last four bytes are a marker.
/// The UDP destination port (bytes 22..24) and the marker (50..54) are
/// patched by [`datagram`].
#[rustfmt::skip]
const DATAGRAM: [u8; 54] = [
    // IPv4: version 4, IHL 5, TOS 0, total length 54, ID 0 (the kernel
    // picks one), DF, TTL 64, UDP, header checksum 0 (the kernel fills it
    // in for IP_HDRINCL), 127.0.0.1 -> 127.0.0.1.
    0x45, 0x00, 0x00, 0x36, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00,
    127, 0, 0, 1, 127, 0, 0, 1,
    // UDP: source port 49152, destination port (patched), length 34,
    // checksum 0 (none, valid over IPv4).
    0xc0, 0x00, 0x00, 0x00, 0x00, 0x22, 0x00, 0x00,
    // VXLAN: flags I, VNI 100.
    0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x64, 0x00,
    // Inner Ethernet: destination, source, EtherType 0x88b5, marker.
    0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0x02, 0x11, 0x22, 0x33, 0x44, 0x55,
    0x88, 0xb5, 0x00, 0x00, 0x00, 0x00,
];
/// Where the UDP payload (the VXLAN header) starts.
const PAYLOAD: usize = 28;

fn datagram(port: u16, marker: u32) -> [u8; 54] {
    let mut d = DATAGRAM;
    d[22..24].copy_from_slice(&port.to_be_bytes());
    d[50..54].copy_from_slice(&marker.to_be_bytes());
    d
}

/// Receives until `want` packets arrived or 2 s passed, releasing each
/// batch; returns their payloads and remotes.
/// Also returns the most one `recv` call took.
fn receive(rx: &mut UnderlayRx, want: usize) -> (Vec<(Vec<u8>, u32, usize)>, usize) {
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut batch = Batch::new();
    let mut got = Vec::new();
    let mut most = 0;
    while got.len() < want && Instant::now() < deadline {
        wait_readable(rx.wake_fd().expect("a wake fd"), 20);
        let n = rx.recv(&mut batch);
        assert_eq!(n, batch.len());
        most = most.max(n);
        for p in batch.packets() {
            got.push((p.data().to_vec(), p.meta.tun_remote, p.headroom()));
        }
        rx.release(&mut batch);
        assert!(!batch.has_lent(), "every buffer goes back to the queue");
        batch.clear();
    }
    (got, most)
}

#[test]
fn datagrams_sent_raw_come_back_batched_with_their_sender() {
    let mut rx = open_rx(Some(LOOPBACK), 0).expect("open_rx");
    let port = rx.local_port();
    assert_ne!(port, 0);
    let mut tx = open_tx().expect("open_tx (needs CAP_NET_RAW)");
    assert!(tx.flush_is_syscall() && !tx.pending());

    // More than a queue's worth (64), so `send` flushes once by itself;
    // every third one is written from parts.
    let count = 70u32;
    for m in 0..count {
        let d = datagram(port, m);
        let queued = if m % 3 == 0 {
            tx.send_parts(&[&d[..20], &d[20..PAYLOAD], &d[PAYLOAD..]])
        } else {
            tx.send(&d)
        };
        assert!(queued, "datagram {m}");
    }
    tx.flush();
    assert_eq!(tx.errors(), 0);

    let (got, most) = receive(&mut rx, count as usize);
    assert_eq!(got.len(), count as usize);
    assert!(most > 1, "one recvmmsg takes several datagrams");
    assert!(most <= pipeline::BATCH_SIZE);
    for (m, (payload, remote, headroom)) in got.iter().enumerate() {
        assert_eq!(
            payload[..],
            datagram(port, m as u32)[PAYLOAD..],
            "datagram {m}"
        );
        assert_eq!(*remote, 0x7f00_0001);
        assert_eq!(*headroom, HEADROOM, "room to push headers");
    }
    assert_eq!(rx.kernel_drops(), 0);
}

#[test]
fn a_big_datagram_that_is_not_a_tcp_super_frame_arrives_whole() {
    let mut rx = open_rx(Some(LOOPBACK), 0).expect("open_rx");
    let port = rx.local_port();
    let mut tx = open_tx().expect("open_tx");

    // No TCP inside to cut into segments: 5,000 bytes (a jumbo frame) and
    // 60,000 (more than a jumbo frame, less than lo's MTU) arrive whole: a
    // packet holds any UDP datagram.
    let big = |len: u16| {
        let mut d = vec![0u8; usize::from(len)];
        d[..PAYLOAD].copy_from_slice(&datagram(port, 0)[..PAYLOAD]);
        d[2..4].copy_from_slice(&len.to_be_bytes());
        d[24..26].copy_from_slice(&(len - 20).to_be_bytes());
        for (i, b) in d[PAYLOAD..].iter_mut().enumerate().skip(64) {
            *b = i as u8;
        }
        d
    };
    // Too big for the raw transmit path: sent from a plain UDP socket.
    let udp = std::net::UdpSocket::bind((LOOPBACK, 0)).expect("bind");
    let sent = udp.send_to(&big(60_000)[PAYLOAD..], (LOOPBACK, port));
    assert_eq!(sent.ok(), Some(60_000 - PAYLOAD));
    assert!(tx.send(&big(5000)));
    assert!(tx.send(&datagram(port, 1)));
    tx.flush();
    assert_eq!(tx.errors(), 0);

    let (got, _) = receive(&mut rx, 3);
    assert_eq!(got.len(), 3);
    assert!(
        got[0].0[..] == big(60_000)[PAYLOAD..],
        "60,000 bytes, whole"
    );
    assert_eq!(got[1].0[..], big(5000)[PAYLOAD..]);
    assert_eq!(got[2].0[..], datagram(port, 1)[PAYLOAD..]);
    assert_eq!(rx.kernel_drops(), 0);
}

#[test]
fn a_port_in_use_is_refused_with_a_reason() {
    let rx = open_rx(Some(LOOPBACK), 0).expect("open_rx");
    let port = rx.local_port();
    let err = open_rx(Some(LOOPBACK), port)
        .err()
        .expect("the port is taken");
    assert_eq!(err.device, format!("vxlan_sys_{port}"));
    assert_eq!(err.source.raw_os_error(), Some(libc::EADDRINUSE));
    let msg = err.to_string();
    assert!(
        msg.contains(&format!("UDP port {port} is already in use")),
        "{msg}"
    );
    assert!(msg.contains("kernel vxlan device"), "{msg}");
}

#[test]
fn datagrams_that_are_not_whole_ipv4_or_too_long_are_refused() {
    let mut tx = open_tx().expect("open_tx");
    let mut long = vec![0u8; TX_MAX + 1];
    long[0] = 0x45;
    assert!(!tx.send(&long));
    assert!(!tx.send_parts(&[&long[..20], &long[20..]]));
    assert!(!tx.send(&DATAGRAM[..19]), "shorter than an IPv4 header");
    let mut v6 = DATAGRAM;
    v6[0] = 0x60;
    assert!(!tx.send(&v6), "not IPv4");
    assert!(!tx.send(&[]));
    // Nothing was queued, so nothing is sent or refused.
    tx.flush();
    assert_eq!(tx.errors(), 0);
}

#[test]
fn the_route_to_loopback_is_lo() {
    let r = route_to(LOOPBACK, 4789).expect("route to 127.0.0.1");
    assert_eq!(r.local, LOOPBACK);
    assert_eq!(r.ifname, "lo");
    // lo's MTU is 65536, but no IPv4 path's exceeds 65535.
    let lo_mtu = crate::netdev::mtu("lo").expect("lo's MTU");
    assert_eq!(r.mtu, lo_mtu.min(65535));
    assert_eq!(ifname_of_addr(LOOPBACK).as_deref(), Some("lo"));
    assert_eq!(ifname_of_addr(Ipv4Addr::UNSPECIFIED), None);
}

/// A VXLAN datagram (IPv4/UDP to `port`) whose inner frame is a TCP
/// super-frame with `n` payload bytes counting up, as a kernel vxlan device
/// passes a GSO packet over a veth.
fn super_datagram(port: u16, n: usize) -> Vec<u8> {
    let inner_ip = 20 + 20 + n;
    let udp = 8 + 8 + 14 + inner_ip;
    let mut d = datagram(port, 0)[..PAYLOAD + 8].to_vec();
    d[2..4].copy_from_slice(&((20 + udp) as u16).to_be_bytes());
    d[24..26].copy_from_slice(&(udp as u16).to_be_bytes());
    d.extend_from_slice(&[2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00]);
    let t = (inner_ip as u16).to_be_bytes();
    d.extend_from_slice(&[
        0x45, 0, t[0], t[1], 0, 1, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
    ]);
    d.extend_from_slice(&[
        0x03, 0xe8, 0x07, 0xd0, 0, 0, 0, 1, 0, 0, 0, 1, 0x50, 0x18, 0xff, 0xff, 0, 0, 0, 0,
    ]);
    d.extend((0..n).map(|i| i as u8));
    d
}

#[test]
fn a_tcp_super_frame_is_cut_into_segments_in_order() {
    let mut rx = open_rx(Some(LOOPBACK), 0)
        .expect("open_rx")
        .with_segment_mtu(1450);
    let port = rx.local_port();
    let mut tx = open_tx().expect("open_tx");
    // 60,000 bytes: 43 segments, more than a batch, then a small datagram
    // that must come after all of them.
    // The raw socket sends at most a jumbo frame; a UDP socket sends the
    // 60 KB datagram.
    let n = 60_000;
    let udp = std::net::UdpSocket::bind((LOOPBACK, 0)).expect("bind");
    let big = super_datagram(port, n);
    udp.send_to(&big[PAYLOAD..], (LOOPBACK, port))
        .expect("send the super-frame");
    assert!(tx.send(&datagram(port, 7)));
    tx.flush();
    let want = n.div_ceil(1410) + 1;
    let (got, most) = receive(&mut rx, want);
    assert_eq!(got.len(), want, "segments and the datagram after them");
    assert!(most <= BATCH_SIZE);
    let mut payload = Vec::new();
    for (p, remote, _) in &got[..want - 1] {
        assert_eq!(*remote, 0x7f00_0001);
        let frame = &p[8..];
        assert!(frame.len() - 14 <= 1450, "{} bytes", frame.len());
        assert_eq!(pipeline::checksum::l4_checksum_ok(frame), Some(true));
        payload.extend_from_slice(&frame[54..]);
    }
    assert_eq!(payload, (0..n).map(|i| i as u8).collect::<Vec<_>>());
    assert_eq!(got[want - 1].0[..], datagram(port, 7)[PAYLOAD..]);
    assert_eq!(rx.kernel_drops(), 0);
}

#[test]
fn a_small_super_frame_that_fits_a_packet_is_cut_too() {
    let mut rx = open_rx(Some(LOOPBACK), 0)
        .expect("open_rx")
        .with_segment_mtu(1450);
    let port = rx.local_port();
    let udp = std::net::UdpSocket::bind((LOOPBACK, 0)).expect("bind");
    // Two segments' worth: smaller than a packet buffer, bigger than the MTU.
    let big = super_datagram(port, 2_800);
    udp.send_to(&big[PAYLOAD..], (LOOPBACK, port))
        .expect("send");
    let (got, _) = receive(&mut rx, 2);
    assert_eq!(got.len(), 2);
    for (p, _, _) in &got {
        assert!(p.len() - 8 - 14 <= 1450, "{} bytes", p.len());
        assert_eq!(pipeline::checksum::l4_checksum_ok(&p[8..]), Some(true));
    }
}

use super::*;
use crate::wire::eth;

/// An ICMP error of `icmp_type`/`code` from `src` to `dst` quoting
/// `quoted` (an IP packet, possibly cut short).
fn icmp_error(src: u32, dst: u32, icmp_type: u8, code: u8, quoted: &[u8]) -> Vec<u8> {
    let mut l4 = vec![icmp_type, code, 0, 0, 0, 0, 0x05, 0xdc];
    l4.extend_from_slice(quoted);
    let l4 = with_checksum(src, dst, 1, l4);
    ether(&ipv4(src, dst, 1, &l4, IpOpts::default()))
}

/// The container's DNS query, masqueraded with a new source port.
fn snat_udp() -> (ConnTable, Vec<u8>) {
    let mut t = ConnTable::new(Config::default());
    let orig = tup(17, CONTAINER, 5353, SERVER, 53);
    t.insert(orig, tup(17, SERVER, 53, UPLINK, 61000), 0, 0)
        .unwrap();
    let mut f = udp_frame(CONTAINER, 5353, SERVER, 53, b"query", false);
    translate(&mut t, &mut f, 0);
    (t, f)
}

#[test]
fn port_unreachable_for_a_masqueraded_udp_packet() {
    let (t, sent) = snat_udp();
    // The server quotes the whole translated packet.
    let mut e = icmp_error(SERVER, UPLINK, 3, 3, &sent[L3..]);
    let p = parse(&e, L3).unwrap();
    assert!(p.is_icmp_error());
    let r = rewrite_icmp_error(&mut e, L3, &p, &t, 1).unwrap();
    assert_eq!((r.dir, r.dst), (Dir::Reply, CONTAINER));
    assert_eq!(tuple_of(&e), tup(1, SERVER, 0, CONTAINER, 0));
    assert_checksums(&e);
    // The quote is the packet as the container sent it, checksums and all.
    let quote = &e[L3 + 28..];
    let original = udp_frame(CONTAINER, 5353, SERVER, 53, b"query", false);
    assert_eq!(quote, &original[L3..]);
}

#[test]
fn frag_needed_quoting_only_8_bytes_of_tcp() {
    let mut t = ConnTable::new(Config::default());
    let orig = tup(6, CONTAINER, 40000, SERVER, 443);
    t.insert(orig, tup(6, SERVER, 443, UPLINK, 50000), 0, 0)
        .unwrap();
    let mut sent = tcp_frame(CONTAINER, 40000, SERVER, 443, seg(0x02, 1, 0), &[9; 40]);
    translate(&mut t, &mut sent, 0);
    let router = ip(10, 0, 0, 1);
    let mut e = icmp_error(router, UPLINK, 3, 4, &sent[L3..L3 + 28]);
    let p = parse(&e, L3).unwrap();
    let r = rewrite_icmp_error(&mut e, L3, &p, &t, 1).unwrap();
    assert_eq!(r.dst, CONTAINER);
    // From a router on the path: its address stays.
    assert_eq!(tuple_of(&e), tup(1, router, 0, CONTAINER, 0));
    assert_checksums(&e);
    let inner = &e[L3 + 28..];
    assert_eq!(checksum(&inner[..20]), 0, "quoted IP header checksum");
    assert_eq!(&inner[12..16], &CONTAINER.to_be_bytes());
    assert_eq!((be16(inner, 20), be16(inner, 22)), (40000, 443));
}

#[test]
fn error_from_a_published_container_gets_the_public_address() {
    let mut t = ConnTable::new(Config::default());
    let orig = tup(17, SERVER, 5555, UPLINK, 8080);
    t.insert(orig, tup(17, WEB, 80, SERVER, 5555), 0, 0)
        .unwrap();
    let mut f = udp_frame(SERVER, 5555, UPLINK, 8080, b"hello", false);
    translate(&mut t, &mut f, 0);
    // The container has nothing on port 80 after all.
    let mut e = icmp_error(WEB, SERVER, 3, 3, &f[L3..]);
    let p = parse(&e, L3).unwrap();
    let r = rewrite_icmp_error(&mut e, L3, &p, &t, 1).unwrap();
    assert_eq!((r.dir, r.dst), (Dir::Reply, SERVER));
    assert_eq!(tuple_of(&e), tup(1, UPLINK, 0, SERVER, 0));
    assert_checksums(&e);
    let original = udp_frame(SERVER, 5555, UPLINK, 8080, b"hello", false);
    assert_eq!(&e[L3 + 28..], &original[L3..]);
}

#[test]
fn time_exceeded_about_a_translated_echo() {
    let mut t = ConnTable::new(Config::default());
    t.insert(
        tup(1, CONTAINER, 7, SERVER, 7),
        tup(1, SERVER, 9, UPLINK, 9),
        0,
        0,
    )
    .unwrap();
    let mut f = echo_frame(CONTAINER, SERVER, 7, false);
    translate(&mut t, &mut f, 0);
    let router = ip(10, 0, 0, 1);
    let mut e = icmp_error(router, UPLINK, 11, 0, &f[L3..L3 + 28]);
    let p = parse(&e, L3).unwrap();
    rewrite_icmp_error(&mut e, L3, &p, &t, 1).unwrap();
    assert_checksums(&e);
    let inner = &e[L3 + 28..];
    assert_eq!(be16(inner, 24), 7, "echo identifier restored");
    assert_eq!(checksum(&inner[..20]), 0);
}

#[test]
fn untracked_and_garbage_errors() {
    let (t, sent) = snat_udp();
    let mut other = sent.clone();
    put_be16(&mut other, L3 + 20, 1); // another source port
    let mut e = icmp_error(SERVER, UPLINK, 3, 3, &other[L3..]);
    let p = parse(&e, L3).unwrap();
    assert_eq!(
        rewrite_icmp_error(&mut e, L3, &p, &t, 1),
        Err(IcmpErrorError::NotTracked)
    );
    // Expired is untracked too.
    let mut e = icmp_error(SERVER, UPLINK, 3, 3, &sent[L3..]);
    let p = parse(&e, L3).unwrap();
    assert_eq!(
        rewrite_icmp_error(&mut e, L3, &p, &t, 10_000_000),
        Err(IcmpErrorError::NotTracked)
    );
    // Not an error.
    let mut f = echo_frame(SERVER, UPLINK, 1, true);
    let p = parse(&f, L3).unwrap();
    assert_eq!(
        rewrite_icmp_error(&mut f, L3, &p, &t, 1),
        Err(IcmpErrorError::NotIcmpError)
    );
    // Garbage quotes are refused by parse.
    let garbage: [&[u8]; 5] = [
        &sent[L3..L3 + 20], // no L4 bytes
        &sent[L3..L3 + 27], // 7 L4 bytes
        &[0x4f; 40],        // IHL larger than the quote
        &[
            0x45, 0, 0, 28, 0, 0, 0, 0, 64, 47, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0, 0, 0, 0, 0,
            0,
        ], // GRE
        &[
            0x45, 0, 0, 28, 0, 0, 0, 9, 64, 17, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0, 0, 0, 0, 0,
            0,
        ], // later fragment
    ];
    for g in garbage {
        let e = icmp_error(SERVER, UPLINK, 3, 3, g);
        assert_eq!(parse(&e, L3), Err(ParseError::BadEmbedded));
    }
}

/// A UDP datagram of 40 payload bytes cut in two fragments: 8 + 16 bytes,
/// then 24 bytes at offset 24.
fn udp_fragments(src: u32, dst: u32) -> (Vec<u8>, Vec<u8>) {
    let payload: Vec<u8> = (0..40).collect();
    let l4 = with_checksum(src, dst, 17, udp_l4(5353, 53, &payload));
    let first = ether(&ipv4(
        src,
        dst,
        17,
        &l4[..24],
        IpOpts {
            id: 77,
            frag: 0x2000,
            ..IpOpts::default()
        },
    ));
    let later = ether(&ipv4(
        src,
        dst,
        17,
        &l4[24..],
        IpOpts {
            id: 77,
            frag: 3,
            ..IpOpts::default()
        },
    ));
    (first, later)
}

#[test]
fn later_fragments_follow_the_first() {
    let mut t = ConnTable::new(Config::default());
    t.insert(
        tup(17, CONTAINER, 5353, SERVER, 53),
        tup(17, SERVER, 53, UPLINK, 61000),
        0,
        0,
    )
    .unwrap();
    let (mut first, mut later) = udp_fragments(CONTAINER, SERVER);
    let pl = parse(&later, L3).unwrap();
    assert!(pl.is_later_fragment());
    assert_eq!(pl.tuple, tup(17, CONTAINER, 0, SERVER, 0));
    // Before the first one: unknown.
    assert_eq!(t.fragment(&pl, 0), None);

    let pf = parse(&first, L3).unwrap();
    assert!(pf.info.is_fragment() && !pf.is_later_fragment());
    let (id, dir) = translate(&mut t, &mut first, 0);
    t.remember_fragment(&pf, id, dir, 0);
    assert_eq!(t.fragment(&pl, 1), Some((id, dir)));
    let w = t.get(id).target(dir);
    rewrite(&mut later, L3, &pl, w.src, w.sport, w.dst, w.dport);
    assert_eq!(checksum(&first[L3..L3 + 20]), 0);
    assert_eq!(checksum(&later[L3..L3 + 20]), 0);
    assert_eq!(tuple_of(&later), tup(17, UPLINK, 0, SERVER, 0));
    // Reassembled, the datagram verifies with the new addresses and port.
    let mut dgram = first[L3 + 20..].to_vec();
    dgram.extend_from_slice(&later[L3 + 20..]);
    assert_eq!(l4_checksum(UPLINK, SERVER, 17, &dgram), be16(&dgram, 6));
    assert_eq!(be16(&dgram, 0), 61000);
    // Forgotten after 30 s; gone with the entry.
    assert_eq!(t.fragment(&pl, 30_000), None);
    t.remove(id);
    assert_eq!(t.fragment(&pl, 1), None);
}

#[test]
fn frag_table_is_bounded_and_keeps_recent() {
    let mut ft = FragTable::new(64);
    let mut t = ConnTable::new(Config::default());
    let o = tup(17, CONTAINER, 1, SERVER, 2);
    let id = t.insert(o, o.reversed(), 0, 0).unwrap();
    let (first, _) = udp_fragments(CONTAINER, SERVER);
    let mut p = parse(&first, L3).unwrap();
    for i in 0..10_000u16 {
        p.info.ip_id = i;
        ft.remember(&p, id, Dir::Orig, i as u64);
    }
    let mut later = p;
    later.info.frag_offset = 3;
    later.info.more_frags = false;
    later.info.ip_id = 9_999;
    assert_eq!(ft.lookup(&later, 10_000), Some((id, Dir::Orig)));
    let known = (0..10_000u16)
        .filter(|&i| {
            later.info.ip_id = i;
            ft.lookup(&later, 10_000).is_some()
        })
        .count();
    assert!(known <= 64);
    // An unfragmented packet is not remembered.
    let whole = parse(&udp_frame(CONTAINER, 1, SERVER, 2, b"", false), L3).unwrap();
    let mut ft = FragTable::default();
    ft.remember(&whole, id, Dir::Orig, 0);
    assert_eq!(ft.lookup(&whole, 0), None);
}

#[test]
fn time_exceeded_reply() {
    let f = tcp_frame(CONTAINER, 40000, SERVER, 80, seg(0x10, 1, 2), &[5; 100]);
    let mut out = [0u8; TIME_EXCEEDED_MAX];
    let n = time_exceeded(&f, L3, GATEWAY, &mut out).unwrap();
    let e = &out[..n];
    assert_eq!(n, 14 + 20 + 8 + 28);
    assert_eq!((&e[eth::DST], &e[eth::SRC]), (&MAC_A[..], &MAC_B[..]));
    assert_eq!(tuple_of(e), tup(1, GATEWAY, 0, CONTAINER, 0));
    assert_checksums(e);
    assert_eq!((e[L3 + 20], e[L3 + 21]), (11, 0));
    assert_eq!(&e[L3 + 28..], &f[L3..L3 + 28]);
    // Too small a buffer; ICMP errors, multicast and later fragments get none.
    assert_eq!(time_exceeded(&f, L3, GATEWAY, &mut [0u8; 60]), None);
    let err = icmp_error(SERVER, UPLINK, 3, 3, &f[L3..L3 + 28]);
    assert_eq!(time_exceeded(&err, L3, GATEWAY, &mut out), None);
    let mcast = udp_frame(CONTAINER, 1, ip(224, 0, 0, 251), 5353, b"", false);
    assert_eq!(time_exceeded(&mcast, L3, GATEWAY, &mut out), None);
    let (_, later) = udp_fragments(CONTAINER, SERVER);
    assert_eq!(time_exceeded(&later, L3, GATEWAY, &mut out), None);
    // A short packet is quoted whole.
    let tiny = ether(&ipv4(CONTAINER, SERVER, 253, &[1, 2], IpOpts::default()));
    let n = time_exceeded(&tiny, L3, GATEWAY, &mut out).unwrap();
    assert_eq!(&out[L3 + 28..n], &tiny[L3..]);
    assert_checksums(&out[..n]);
}

use super::*;
use crate::conntrack::tcp_flags::{ACK, SYN};
use crate::parse::l3_offset;

fn table() -> ConnTable {
    ConnTable::new(Config::default())
}

#[test]
fn snat_tcp_both_directions() {
    let mut t = table();
    let mut f = tcp_frame(CONTAINER, 40000, SERVER, 80, seg(SYN, 1, 0), b"");
    let p = parse(&f, L3).unwrap();
    let mut reply = p.tuple.reversed();
    reply.dst = UPLINK;
    reply.dport = t.alloc_port(&reply, 1024..=65535, 0).unwrap();
    t.insert(p.tuple, reply, 0, 0).unwrap();
    let (_, dir) = translate(&mut t, &mut f, 0);
    assert_eq!(dir, Dir::Orig);
    assert_eq!(tuple_of(&f), tup(6, UPLINK, 40000, SERVER, 80));
    assert_checksums(&f);

    let mut r = tcp_frame(SERVER, 80, UPLINK, 40000, seg(SYN | ACK, 9, 2), b"");
    let (_, dir) = translate(&mut t, &mut r, 1);
    assert_eq!(dir, Dir::Reply);
    assert_eq!(tuple_of(&r), tup(6, SERVER, 80, CONTAINER, 40000));
    assert_checksums(&r);
}

#[test]
fn dnat_tcp_published_port() {
    let mut t = table();
    let orig = tup(6, SERVER, 5555, UPLINK, 8080);
    t.insert(orig, tup(6, WEB, 80, SERVER, 5555), 0, 0).unwrap();
    let mut f = tcp_frame(SERVER, 5555, UPLINK, 8080, seg(SYN, 1, 0), b"");
    translate(&mut t, &mut f, 0);
    assert_eq!(tuple_of(&f), tup(6, SERVER, 5555, WEB, 80));
    assert_checksums(&f);
    let mut r = tcp_frame(WEB, 80, SERVER, 5555, seg(SYN | ACK, 1, 2), b"hi");
    translate(&mut t, &mut r, 0);
    assert_eq!(tuple_of(&r), tup(6, UPLINK, 8080, SERVER, 5555));
    assert_checksums(&r);
}

#[test]
fn hairpin_rewrites_source_and_destination() {
    let mut t = table();
    let orig = tup(6, CONTAINER2, 33333, UPLINK, 8080);
    let mut reply = tup(6, WEB, 80, GATEWAY, 33333);
    reply.dport = t.alloc_port(&reply, 32768..=60999, 0).unwrap();
    t.insert(orig, reply, 0, 0).unwrap();
    let mut f = tcp_frame(CONTAINER2, 33333, UPLINK, 8080, seg(SYN, 1, 0), b"");
    translate(&mut t, &mut f, 0);
    assert_eq!(tuple_of(&f), tup(6, GATEWAY, 33333, WEB, 80));
    assert_checksums(&f);
    let mut r = tcp_frame(WEB, 80, GATEWAY, 33333, seg(SYN | ACK, 1, 2), b"");
    translate(&mut t, &mut r, 0);
    assert_eq!(tuple_of(&r), tup(6, UPLINK, 8080, CONTAINER2, 33333));
    assert_checksums(&r);
}

#[test]
fn snat_udp_with_port_change() {
    let mut t = table();
    let orig = tup(17, CONTAINER, 5353, SERVER, 53);
    t.insert(orig, tup(17, SERVER, 53, UPLINK, 61000), 0, 0)
        .unwrap();
    let mut f = udp_frame(CONTAINER, 5353, SERVER, 53, b"query!", false);
    translate(&mut t, &mut f, 0);
    assert_eq!(tuple_of(&f), tup(17, UPLINK, 61000, SERVER, 53));
    assert_checksums(&f);
}

#[test]
fn udp_zero_checksum_stays_zero() {
    let mut t = table();
    let orig = tup(17, CONTAINER, 5353, SERVER, 53);
    t.insert(orig, tup(17, SERVER, 53, UPLINK, 61000), 0, 0)
        .unwrap();
    let mut f = udp_frame(CONTAINER, 5353, SERVER, 53, b"query", true);
    translate(&mut t, &mut f, 0);
    assert_eq!(tuple_of(&f), tup(17, UPLINK, 61000, SERVER, 53));
    assert_eq!(be16(&f, L3 + 20 + 6), 0);
    assert_checksums(&f);
}

#[test]
fn udp_checksum_coming_out_zero_is_sent_as_ffff() {
    // Choose a payload word so that the translated datagram sums to zero.
    let payload_at = L3 + 20 + 8;
    let mut probe = udp_frame(UPLINK, 61000, SERVER, 53, &[0, 0], false);
    put_be16(&mut probe, L3 + 20 + 6, 0);
    let s = fold(sum(&probe[L3 + 20..], pseudo(UPLINK, SERVER, 17, 10)));
    let word = 0xffff - s;
    let mut f = udp_frame(CONTAINER, 5353, SERVER, 53, &word.to_be_bytes(), false);
    assert_eq!(be16(&f, payload_at), word);
    let mut t = table();
    t.insert(
        tup(17, CONTAINER, 5353, SERVER, 53),
        tup(17, SERVER, 53, UPLINK, 61000),
        0,
        0,
    )
    .unwrap();
    translate(&mut t, &mut f, 0);
    assert_eq!(be16(&f, L3 + 20 + 6), 0xffff);
    assert_checksums(&f);
}

#[test]
fn icmp_echo_identifier_is_translated() {
    let mut t = table();
    let orig = tup(1, CONTAINER, 7, SERVER, 7);
    let mut reply = tup(1, SERVER, 7, UPLINK, 7);
    t.insert(tup(1, CONTAINER2, 7, SERVER, 7), reply, 0, 0)
        .unwrap();
    let id = t.alloc_port(&reply, 0..=65535, 0).unwrap();
    (reply.sport, reply.dport) = (id, id);
    t.insert(orig, reply, 0, 0).unwrap();
    let mut f = echo_frame(CONTAINER, SERVER, 7, false);
    translate(&mut t, &mut f, 0);
    assert_eq!(tuple_of(&f), tup(1, UPLINK, id, SERVER, id));
    assert_checksums(&f);
    let mut r = echo_frame(SERVER, UPLINK, id, true);
    let (_, dir) = translate(&mut t, &mut r, 0);
    assert_eq!(dir, Dir::Reply);
    assert_eq!(tuple_of(&r), tup(1, SERVER, 7, CONTAINER, 7));
    assert_checksums(&r);
}

/// Regression (found by the `nat` fuzz target): an echo reply whose
/// identifier becomes 0, with sequence number and payload 0, is an ICMP
/// message of zeros; its checksum must come out 0xffff, not the 0x0000 the
/// incremental update gives (receivers reject that).
#[test]
fn icmp_echo_translated_to_all_zeros_gets_checksum_ffff() {
    let l4 = with_checksum(SERVER, UPLINK, 1, vec![0, 0, 0, 0, 0x12, 0x34, 0, 0]);
    let mut f = ether(&ipv4(SERVER, UPLINK, 1, &l4, IpOpts::default()));
    let p = parse(&f, L3).unwrap();
    rewrite(&mut f, L3, &p, SERVER, 0, CONTAINER, 0);
    assert_eq!(tuple_of(&f), tup(1, SERVER, 0, CONTAINER, 0));
    assert_eq!(be16(&f, L3 + 20 + 2), 0xffff);
    assert_checksums(&f);
    // And back: a message that is not all zeros takes the plain update.
    let p = parse(&f, L3).unwrap();
    rewrite(&mut f, L3, &p, SERVER, 0x1234, UPLINK, 0x1234);
    assert_eq!(f[L3 + 20..], l4[..]);
    assert_checksums(&f);
}

#[test]
fn ip_options_and_vlan_tags() {
    let l4 = with_checksum(CONTAINER, SERVER, 6, tcp_l4(1, 2, seg(ACK, 5, 6), b"data"));
    let ipp = ipv4(
        CONTAINER,
        SERVER,
        6,
        &l4,
        IpOpts {
            options: 8,
            ..IpOpts::default()
        },
    );
    let mut f = ether(&ipp);
    f.splice(12..12, [0x81, 0x00, 0x00, 0x05]);
    let (l3, _) = l3_offset(&f).unwrap();
    assert_eq!(l3, 18);
    let p = parse(&f, l3).unwrap();
    assert_eq!(p.tuple, tup(6, CONTAINER, 1, SERVER, 2));
    rewrite(&mut f, l3, &p, UPLINK, 1000, SERVER, 2);
    let q = parse(&f, l3).unwrap();
    assert_eq!(q.tuple, tup(6, UPLINK, 1000, SERVER, 2));
    assert_checksums(&f[4..]); // drop the tag: L3 at 14 again
}

#[test]
fn no_change_is_a_no_op() {
    let f = tcp_frame(CONTAINER, 1, SERVER, 2, seg(ACK, 5, 6), b"data");
    let mut g = f.clone();
    let p = parse(&g, L3).unwrap();
    rewrite(&mut g, L3, &p, CONTAINER, 1, SERVER, 2);
    assert_eq!(f, g);
}

#[test]
fn parsed_of_another_frame_does_not_panic() {
    let big = tcp_frame(CONTAINER, 1, SERVER, 2, seg(ACK, 5, 6), &[7; 200]);
    let p = parse(&big, L3).unwrap();
    let mut small = udp_frame(CONTAINER, 1, SERVER, 2, b"", false);
    small.truncate(L3 + 22);
    let before = small.clone();
    rewrite(&mut small, L3, &p, 1, 2, 3, 4);
    assert_eq!(small, before);
}

#[test]
fn parse_rejects_malformed() {
    let good = tcp_frame(CONTAINER, 1, SERVER, 2, seg(SYN, 5, 0), b"");
    let bad = |edit: &dyn Fn(&mut Vec<u8>)| {
        let mut f = good.clone();
        edit(&mut f);
        parse(&f, L3)
    };
    assert!(parse(&good, L3).is_ok());
    assert_eq!(bad(&|f| f[L3] = 0x44), Err(ParseError::Malformed), "IHL 16");
    assert_eq!(
        bad(&|f| f[L3] = 0x65),
        Err(ParseError::Malformed),
        "version 6"
    );
    assert_eq!(
        bad(&|f| f[L3] = 0x4f),
        Err(ParseError::Malformed),
        "IHL 60 > len"
    );
    assert_eq!(
        bad(&|f| put_be16(f, L3 + 2, 1000)),
        Err(ParseError::Malformed)
    );
    assert_eq!(
        bad(&|f| put_be16(f, L3 + 2, 19)),
        Err(ParseError::Malformed)
    );
    assert_eq!(
        bad(&|f| put_be16(f, L3 + 2, 30)),
        Err(ParseError::Malformed),
        "TCP cut"
    );
    assert_eq!(
        bad(&|f| f[L3 + 32] = 0xf0),
        Err(ParseError::Malformed),
        "doff 60"
    );
    assert_eq!(
        bad(&|f| f[L3 + 32] = 0x40),
        Err(ParseError::Malformed),
        "doff 16"
    );
    assert_eq!(bad(&|f| f.truncate(L3 + 10)), Err(ParseError::Malformed));
    assert_eq!(parse(&good, good.len() + 5), Err(ParseError::Malformed));
    let mut u = udp_frame(CONTAINER, 1, SERVER, 2, b"", false);
    put_be16(&mut u, L3 + 2, 27);
    assert_eq!(parse(&u, L3), Err(ParseError::Malformed), "UDP cut");
    // Trailing bytes beyond the total length (Ethernet padding) are fine.
    let mut padded = good.clone();
    padded.extend_from_slice(&[0; 6]);
    assert_eq!(parse(&padded, L3).unwrap().tuple, tuple_of(&good));
}

#[test]
fn parse_reads_tcp_fields_and_window_scale() {
    let s = Seg {
        win: 1234,
        wscale: Some(9),
        ..seg(SYN, 0xdead_beef, 0)
    };
    let f = tcp_frame(CONTAINER, 1, SERVER, 2, s, b"abc");
    let p = parse(&f, L3).unwrap();
    let L4Info::Tcp(t) = p.info.l4 else { panic!() };
    assert_eq!(
        t,
        TcpInfo {
            flags: SYN,
            seq: 0xdead_beef,
            ack: 0,
            window: 1234,
            payload_len: 3,
            wscale: Some(9)
        }
    );
    assert_eq!((p.info.ttl, p.info.ip_id, p.info.ihl), (64, 0x1234, 20));
    assert!(!p.info.is_fragment());
}

#[test]
fn dec_ttl_updates_the_checksum() {
    let mut f = tcp_frame(CONTAINER, 1, SERVER, 2, seg(ACK, 5, 6), b"");
    assert!(dec_ttl(&mut f, L3));
    assert_eq!(f[L3 + 8], 63);
    assert_checksums(&f);
    for ttl in [0u8, 1] {
        let l4 = with_checksum(CONTAINER, SERVER, 17, udp_l4(1, 2, b""));
        let mut g = ether(&ipv4(
            CONTAINER,
            SERVER,
            17,
            &l4,
            IpOpts {
                ttl,
                ..IpOpts::default()
            },
        ));
        let before = g.clone();
        assert!(!dec_ttl(&mut g, L3));
        assert_eq!(g, before);
    }
    assert!(!dec_ttl(&mut [0u8; 20], L3));
    assert!(!dec_ttl(&mut [], usize::MAX));
}

#[test]
fn may_create() {
    let info = |f: &[u8]| parse(f, L3).unwrap().info;
    assert!(info(&tcp_frame(CONTAINER, 1, SERVER, 2, seg(SYN, 1, 0), b"")).may_create());
    assert!(info(&tcp_frame(CONTAINER, 1, SERVER, 2, seg(ACK, 1, 1), b"")).may_create());
    assert!(!info(&tcp_frame(
        CONTAINER,
        1,
        SERVER,
        2,
        seg(SYN | ACK, 1, 1),
        b""
    ))
    .may_create());
    assert!(!info(&tcp_frame(CONTAINER, 1, SERVER, 2, seg(0x04, 1, 1), b"")).may_create());
    assert!(info(&udp_frame(CONTAINER, 1, SERVER, 2, b"", false)).may_create());
    assert!(info(&echo_frame(CONTAINER, SERVER, 1, false)).may_create());
    assert!(!info(&echo_frame(CONTAINER, SERVER, 1, true)).may_create());
}

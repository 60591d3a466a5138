//! Properties on generated input: nothing panics on arbitrary bytes (in
//! debug builds, so arithmetic overflow would too), translated checksums
//! always verify, a rewrite undone restores the exact bytes, and a reply
//! to a translated packet is translated back to the original tuple.

use super::*;
use proptest::prelude::*;

/// Arbitrary bytes made to look like IPv4 more often than chance would.
fn ipv4ish() -> impl Strategy<Value = Vec<u8>> {
    (
        proptest::collection::vec(any::<u8>(), 0..160),
        0u8..16,
        prop_oneof![Just(1u8), Just(6), Just(17), any::<u8>()],
        any::<bool>(),
    )
        .prop_map(|(mut b, ihl, proto, fix_len)| {
            if b.len() > L3 + 20 {
                b[L3] = 0x40 | ihl;
                b[L3 + 9] = proto;
                if fix_len {
                    let n = (b.len() - L3) as u16;
                    put_be16(&mut b, L3 + 2, n);
                    put_be16(&mut b, L3 + 6, 0);
                }
            }
            b
        })
}

/// A table holding one entry of each protocol, with NAT, whose reply
/// tuples have ports 1..=3 so generated quotes can hit them.
fn table_with_entries() -> ConnTable {
    let mut t = ConnTable::new(Config::default());
    for (i, proto) in [6u8, 17, 1].into_iter().enumerate() {
        let p = i as u16 + 1;
        let orig = tup(proto, CONTAINER, p, SERVER, p);
        t.insert(orig, tup(proto, SERVER, p, UPLINK, p), 0, 0)
            .unwrap();
    }
    t
}

proptest! {
    #[test]
    fn parse_never_panics(b in proptest::collection::vec(any::<u8>(), 0..200), l3 in 0usize..40) {
        let _ = parse(&b, l3);
    }

    #[test]
    fn rewrite_and_friends_never_panic(
        mut b in ipv4ish(),
        src in any::<u32>(), dst in any::<u32>(), sport in any::<u16>(), dport in any::<u16>(),
    ) {
        let t = table_with_entries();
        if let Ok(p) = parse(&b, L3) {
            let mut c = b.clone();
            rewrite(&mut c, L3, &p, src, sport, dst, dport);
            let _ = rewrite_icmp_error(&mut c, L3, &p, &t, 1);
            // A parse result applied to a cut frame.
            let mut cut = b[..b.len() / 2].to_vec();
            rewrite(&mut cut, L3, &p, src, sport, dst, dport);
            let _ = rewrite_icmp_error(&mut cut, L3, &p, &t, 1);
        }
        let mut out = [0u8; TIME_EXCEEDED_MAX];
        let _ = time_exceeded(&b, L3, src, &mut out);
        let _ = dec_ttl(&mut b, L3);
    }

    /// ICMP errors whose quote matches a tracked entry but is otherwise
    /// arbitrary (IHL, length, checksums): no panic, and when translated
    /// the outer checksums verify.
    #[test]
    fn icmp_errors_about_tracked_packets(
        mut quote in proptest::collection::vec(any::<u8>(), 28..90),
        ihl in 5u8..16,
        which in 0usize..3,
        icmp_type in prop_oneof![Just(3u8), Just(11), Just(12)],
    ) {
        let t = table_with_entries();
        let proto = [6u8, 17, 1][which];
        let port = which as u16 + 1;
        quote[0] = 0x40 | ihl;
        quote[6] &= 0xe0; // not a later fragment
        quote[9] = proto;
        quote[12..16].copy_from_slice(&UPLINK.to_be_bytes());
        quote[16..20].copy_from_slice(&SERVER.to_be_bytes());
        let l4 = ihl as usize * 4;
        if quote.len() >= l4 + 8 {
            if proto == 1 {
                quote[l4] = 8;
                put_be16(&mut quote, l4 + 4, port);
            } else {
                put_be16(&mut quote, l4, port);
                put_be16(&mut quote, l4 + 2, port);
            }
        }
        let mut l4b = vec![icmp_type, 0, 0, 0, 0, 0, 0, 0];
        l4b.extend_from_slice(&quote);
        let l4b = with_checksum(SERVER, UPLINK, 1, l4b);
        let mut e = ether(&ipv4(SERVER, UPLINK, 1, &l4b, IpOpts::default()));
        if let Ok(p) = parse(&e, L3) {
            let r = rewrite_icmp_error(&mut e, L3, &p, &t, 1);
            prop_assert!(r.is_ok());
            assert_checksums(&e);
            prop_assert_eq!(tuple_of(&e).dst, CONTAINER);
        }
    }

    /// Translating a valid TCP or UDP frame and translating it back gives
    /// the original bytes; in between, every checksum verifies.
    #[test]
    fn rewrite_round_trip(
        tcp in any::<bool>(),
        zero in any::<bool>(),
        a in any::<(u32, u16, u32, u16)>(),
        b in any::<(u32, u16, u32, u16)>(),
        payload in proptest::collection::vec(any::<u8>(), 0..64),
        seq in any::<u32>(),
    ) {
        let (src, sport, dst, dport) = a;
        let f = if tcp {
            tcp_frame(src, sport, dst, dport, seg(0x18, seq, 7), &payload)
        } else {
            udp_frame(src, sport, dst, dport, &payload, zero)
        };
        let mut g = f.clone();
        let p = parse(&g, L3).unwrap();
        rewrite(&mut g, L3, &p, b.0, b.1, b.2, b.3);
        let q = parse(&g, L3).unwrap();
        prop_assert_eq!(q.tuple, Tuple { proto: p.tuple.proto, src: b.0, sport: b.1, dst: b.2, dport: b.3 });
        assert_checksums(&g);
        rewrite(&mut g, L3, &q, src, sport, dst, dport);
        prop_assert_eq!(g, f);
    }

    /// Arbitrary TCP segments thrown at an entry: no panic, no overflow,
    /// and the state is always a valid one.
    #[test]
    fn tcp_tracking_never_panics(
        segs in proptest::collection::vec(
            (any::<bool>(), any::<u8>(), any::<u32>(), any::<u32>(), any::<u16>(),
             0u32..70_000, proptest::option::of(any::<u8>())),
            1..40),
    ) {
        let mut t = ConnTable::new(Config::default());
        let o = tup(6, CONTAINER, 1, SERVER, 2);
        let mut id = t.insert(o, o.reversed(), 0, 0).unwrap();
        for (reply, flags, seq, ack, win, len, wscale) in segs {
            if t.try_get(id).is_none() {
                id = t.insert(o, o.reversed(), 0, 0).unwrap();
            }
            let info = PktInfo {
                l4: L4Info::Tcp(TcpInfo { flags, seq, ack, window: win, payload_len: len, wscale }),
                ihl: 20, l4_len: 20, ttl: 64, ip_id: 0, frag_offset: 0, more_frags: false,
            };
            let dir = if reply { Dir::Reply } else { Dir::Orig };
            let _ = t.track(id, dir, &info, usize::MAX, u64::MAX - 5);
        }
    }

    /// NAT through the table, then the reverse: a connection with SNAT,
    /// DNAT or both (any addresses and ports), its first packet translated
    /// as the entry says, and the reply to what left translated back to
    /// the original tuple reversed; every checksum verifies on the way
    /// (ICMP echo with identifiers, sequence numbers and payloads that may
    /// be all zero included).
    #[test]
    fn nat_then_reply_is_the_identity(
        proto in prop_oneof![Just(ip_proto::TCP), Just(ip_proto::UDP), Just(ip_proto::ICMP)],
        orig in (any::<u32>(), prop_oneof![Just(0u16), any::<u16>()], any::<u32>(), any::<u16>()),
        snat in proptest::option::of((any::<u32>(), prop_oneof![Just(0u16), any::<u16>()])),
        dnat in proptest::option::of(any::<(u32, u16)>()),
        seq in prop_oneof![Just(0u16), any::<u16>()],
        payload in prop_oneof![Just(Vec::new()), proptest::collection::vec(any::<u8>(), 0..32)],
    ) {
        let icmp = proto == ip_proto::ICMP;
        let (src, sport, dst, mut dport) = orig;
        if icmp {
            dport = sport; // echo: the identifier, both ways
        }
        let o = tup(proto, src, sport, dst, dport);
        // The reply tuple: the original reversed, then the translation.
        let mut reply = o.reversed();
        if let Some((ip, port)) = snat {
            (reply.dst, reply.dport) = (ip, port);
            if icmp {
                reply.sport = port;
            }
        }
        if let Some((ip, port)) = dnat {
            (reply.src, reply.sport) = (ip, port);
            if icmp {
                reply.dport = port;
                reply.sport = port;
            }
        }
        prop_assume!(reply != o);
        let mut t = ConnTable::new(Config::default());
        t.insert(o, reply, 0, 0).unwrap();
        let frame = |a: Tuple, echo_type: u8| {
            if icmp {
                let mut l4 = vec![echo_type, 0, 0, 0, 0, 0, 0, 0];
                put_be16(&mut l4, 4, a.sport);
                put_be16(&mut l4, 6, seq);
                l4.extend_from_slice(&payload);
                let l4 = with_checksum(a.src, a.dst, 1, l4);
                ether(&ipv4(a.src, a.dst, 1, &l4, IpOpts::default()))
            } else if proto == ip_proto::TCP {
                tcp_frame(a.src, a.sport, a.dst, a.dport, seg(tcp_flags::ACK, 1, 1), &payload)
            } else {
                udp_frame(a.src, a.sport, a.dst, a.dport, &payload, false)
            }
        };
        let mut f = frame(o, 8);
        let (_, dir) = translate(&mut t, &mut f, 1);
        prop_assert_eq!(dir, Dir::Orig);
        let out = tuple_of(&f);
        prop_assert_eq!(out, reply.reversed());
        assert_checksums(&f);
        let mut r = frame(out.reversed(), 0);
        let (_, dir) = translate(&mut t, &mut r, 2);
        prop_assert_eq!(dir, Dir::Reply);
        prop_assert_eq!(tuple_of(&r), o.reversed());
        assert_checksums(&r);
    }
}

use super::*;

// Fixtures built with scapy 2.5 (Debian python3-scapy), not with this
// code: `bytes(IP(...)/UDP(...)/VXLAN(vni=..., flags=0x08)/inner)[:36]`.
/// Ether/IP(tos=0xb8, 10.0.0.1 > 10.0.0.2)/UDP(1234 > 5678)/"hello vxlan".
const INNER_A: &str = "020000000002020000000001080045b80027000140004011260b0a0000010a000002\
    04d2162e00133bf968656c6c6f2076786c616e";
/// 192.168.1.1 > 192.168.1.2, tos 0xb8 (inherited), DF, ttl 64, sport
/// 50000, checksum 0, VNI 0x123456.
const OUTER_A: &str = "45b80059000040004011b688c0a80101c0a80102c35012b5004500000800000012345600";
/// Ether/IPv6(tc=0x28)/TCP(40000 > 80)/"GET / HTTP/1.0\r\n\r\n!" (odd length).
const INNER_B: &str = "02000000000402000000000386dd6280000000270640fd00000000000000000000000000\
    0001fd0000000000000000000000000000029c400050000000010000000150182000f9820000474554\
    202f20485454502f312e300d0a0d0a21";
/// 172.16.0.1 > 172.16.0.2, tos 0x10 (fixed), no DF, ttl 32, sport 60001,
/// dport 8472, UDP checksum computed, VNI 0xffffff.
const OUTER_B: &str = "451000810000000020114239ac100001ac100002ea612118006da0d608000000ffffff00";
/// Ether/Dot1Q(vlan 100)/IPv6(tc=0x2b)/UDP(5353 > 5353)/"xxxxxxx".
const INNER_C: &str = "0200000000060200000000058100606486dd62b12345000f1140fd00000000000000000000\
    0000000005fd00000000000000000000000000000614e914e9000ffa8778787878787878";
/// 0.0.0.0 > 10.9.8.7, tos 0x2b (inherited through the tag), DF, sport
/// 49152, UDP checksum computed, VNI 0.
const OUTER_C: &str = "452b006d0000400040112846000000000a090807c00012b500590f040800000000000000";
/// INNER_A again, tos 0, sport 65406, VNI 106: the UDP checksum folds to
/// 0 and is sent as 0xffff.
const OUTER_D: &str = "45000059000040004011b740c0a80101c0a80102ff7e12b50045ffff0800000000006a00";

// Frag-needed fixtures, scapy: Ether(dst=e.src, src=e.dst)/IP(src=dst,
// dst=src, ttl=64, id=0, tos=(tos & 0x1e) | 0xc0)/ICMP(type=3, code=4,
// nexthopmtu=1450)/datagram[:548].
/// DF IPv4/UDP "big" (tos 0xb8), padded to 60 bytes.
const FRAME_SMALL: &str = "020000000002020000000001080045b8001f123440003f1114e00a0000010a0000020\
    4d2162e000b076c626967000000000000000000000000000000";
const ANSWER_SMALL: &str = "020000000001020000000002080045d8003b00000000400165e80a0000020a000001\
    03040b71000005aa45b8001f123440003f1114e00a0000010a00000204d2162e000b076c626967";
/// The first 54 bytes of a 1514-byte DF TCP frame whose payload is
/// 0, 1, 2, ... (mod 256), and the first 42 of its 590-byte answer.
const FRAME_BIG_HEAD: &str = "0200000000020200000000010800450005dc432140004006ddf80a0000010a0000\
    029c4001bb000000000000000050102000ad200000";
const ANSWER_BIG_HEAD: &str = "020000000001020000000002080045c0024000000000400163fb0a0000020a00000\
    10304b7a3000005aa";

fn hex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}

fn big_frame() -> Vec<u8> {
    let mut f = hex(FRAME_BIG_HEAD);
    f.extend((0..1460u32).map(|i| i as u8));
    f
}

fn outer(src: [u8; 4], dst: [u8; 4], vni: u32) -> OuterV4 {
    OuterV4 {
        src: u32::from_be_bytes(src),
        dst: u32::from_be_bytes(dst),
        dst_port: DEFAULT_PORT,
        vni,
        ttl: 64,
        tos: None,
        df: true,
        csum: false,
    }
}

fn written(o: &OuterV4, inner: &[u8], sport: u16) -> Vec<u8> {
    let mut out = [0xaau8; OUTER_LEN];
    o.write(&mut out, inner, sport);
    out.to_vec()
}

#[test]
fn sizes_add_up() {
    assert_eq!((HEADER_LEN, OUTER_LEN, OVERHEAD), (8, 36, 50));
    assert_eq!(VNI_MAX, 0xff_ffff);
}

#[test]
fn parse_reads_the_vni() {
    assert_eq!(parse(&hex(OUTER_A)[28..]), Ok(0x12_3456));
    assert_eq!(parse(&[0x08, 0, 0, 0, 0, 0, 0, 0]), Ok(0));
    assert_eq!(parse(&[0x08, 0, 0, 0, 0xff, 0xff, 0xff, 0]), Ok(VNI_MAX));
    assert_eq!(parse(&[0x08, 0, 0, 0, 0, 0, 1, 0, 0xde, 0xad]), Ok(1));
}

#[test]
fn short_payload_or_clear_flag_is_an_error() {
    assert_eq!(parse(&[]), Err(DecapError::Short));
    assert_eq!(parse(&[0x08, 0, 0, 0, 0, 0, 1]), Err(DecapError::Short));
    assert_eq!(parse(&[0, 0, 0, 0, 0, 0, 1, 0]), Err(DecapError::BadFlags));
    assert_eq!(
        parse(&[0xf7, 0xff, 0xff, 0xff, 0, 0, 1, 0xff]),
        Err(DecapError::BadFlags)
    );
    assert_eq!(DecapError::Short.name(), "short");
    assert_eq!(DecapError::BadFlags.to_string(), "bad-flags");
}

#[test]
fn reserved_bits_are_ignored() {
    assert_eq!(parse(&[0xff, 0xff, 0xff, 0xff, 0, 0, 0x2a, 0xff]), Ok(42));
}

#[test]
fn write_inherits_ipv4_tos_without_checksum() {
    let o = outer([192, 168, 1, 1], [192, 168, 1, 2], 0x12_3456);
    assert_eq!(written(&o, &hex(INNER_A), 50000), hex(OUTER_A));
}

#[test]
fn write_fixed_tos_with_checksum_over_odd_inner() {
    let o = OuterV4 {
        dst_port: 8472,
        ttl: 32,
        tos: Some(0x10),
        df: false,
        csum: true,
        ..outer([172, 16, 0, 1], [172, 16, 0, 2], VNI_MAX)
    };
    assert_eq!(written(&o, &hex(INNER_B), 60001), hex(OUTER_B));
}

#[test]
fn write_inherits_traffic_class_through_a_vlan_tag() {
    let o = OuterV4 {
        csum: true,
        ..outer([0, 0, 0, 0], [10, 9, 8, 7], 0)
    };
    assert_eq!(written(&o, &hex(INNER_C), 49152), hex(OUTER_C));
}

#[test]
fn checksum_folding_to_zero_is_sent_as_ffff() {
    let o = OuterV4 {
        tos: Some(0),
        csum: true,
        ..outer([192, 168, 1, 1], [192, 168, 1, 2], 106)
    };
    assert_eq!(written(&o, &hex(INNER_A), 65406), hex(OUTER_D));
}

#[test]
fn non_ip_inner_inherits_tos_zero_and_vni_is_masked() {
    // Ether/ARP request, written by hand.
    let arp = hex(
        "ffffffffffff020000000001080600010800060400010200000000010a000001000000000000\
        0a000002",
    );
    let out = written(
        &outer([10, 0, 0, 1], [10, 0, 0, 2], 0x0100_0005),
        &arp,
        50000,
    );
    assert_eq!(out[1], 0);
    assert_eq!(&out[28..36], &[0x08, 0, 0, 0, 0, 0, 5, 0]);
    assert_eq!(checksum(&out[..20]), 0);
}

#[test]
fn src_port_is_in_the_dynamic_range_and_stable_per_flow() {
    for f in [INNER_A, INNER_B, INNER_C] {
        let f = hex(f);
        let p = src_port(&f);
        assert!(p >= 49152, "{p}");
        let mut other_payload = f.clone();
        *other_payload.last_mut().unwrap() ^= 0xff;
        assert_eq!(src_port(&other_payload), p);
    }
}

#[test]
fn src_port_differs_across_flows() {
    let base = hex(INNER_A);
    let mut seen: Vec<u16> = Vec::new();
    for sport in [1234u16, 1235, 40000, 40001, 65535] {
        let mut f = base.clone();
        put_be16(&mut f, 34, sport); // inner UDP source port
        seen.push(src_port(&f));
    }
    let mut tcp = hex(INNER_B);
    seen.push(src_port(&tcp));
    put_be16(&mut tcp, 56, 443); // inner TCP destination port
    seen.push(src_port(&tcp));
    let mut uniq = seen.clone();
    uniq.sort_unstable();
    uniq.dedup();
    assert_eq!(uniq.len(), seen.len(), "{seen:?}");
}

#[test]
fn fragments_hash_without_ports() {
    let mut a = hex(INNER_A);
    a[20] |= 0x20; // MF: a first fragment
    let mut b = a.clone();
    put_be16(&mut b, 34, 999);
    assert_eq!(src_port(&a), src_port(&b));
}

#[test]
fn src_port_survives_every_truncation() {
    for f in [INNER_A, INNER_B, INNER_C] {
        let f = hex(f);
        for n in 0..=f.len() {
            assert!(src_port(&f[..n]) >= 49152);
        }
    }
}

#[test]
fn frag_needed_matches_scapy_for_a_small_padded_frame() {
    let mut out = [0u8; 14 + 576];
    let n = frag_needed(&hex(FRAME_SMALL), 1450, &mut out).unwrap();
    assert_eq!(out[..n], hex(ANSWER_SMALL)[..]);
}

#[test]
fn frag_needed_quotes_up_to_576_bytes() {
    let f = big_frame();
    let mut out = [0u8; 14 + 576];
    assert_eq!(frag_needed(&f, 1450, &mut out), Some(590));
    assert_eq!(out[..42], hex(ANSWER_BIG_HEAD)[..]);
    assert_eq!(out[42..], f[14..14 + 548]);
    assert_eq!(frag_needed(&f, 1450, &mut [0u8; 589]), None);
}

#[test]
fn frag_needed_refuses_what_must_not_be_answered() {
    let small = hex(FRAME_SMALL);
    let mut out = [0u8; 14 + 576];
    let with = |edits: &[(usize, u8)]| {
        let mut f = small.clone();
        for &(i, v) in edits {
            f[i] = v;
        }
        f
    };
    let mut icmp = with(&[(23, 1)]); // protocol ICMP, type at byte 34
                                     // Echo request and reply are answered; errors and unknown types not.
    for (t, answered) in [(8, true), (0, true), (3, false), (4, false), (5, false)]
        .into_iter()
        .chain([(11, false), (12, false), (19, false)])
    {
        icmp[34] = t;
        let got = frag_needed(&icmp, 1450, &mut out).is_some();
        assert_eq!(got, answered, "ICMP type {t}");
    }
    let cases = [
        ("no DF", with(&[(20, 0x00)])),
        ("non-first fragment", with(&[(21, 0xb9)])),
        ("not IPv4", hex(INNER_B)),
        ("IPv4 ethertype, version 6", with(&[(14, 0x65)])),
        ("source 0", with(&[(26, 0), (29, 0)])),
        ("source multicast", with(&[(26, 224)])),
        (
            "source broadcast",
            with(&[(26, 255), (27, 255), (28, 255), (29, 255)]),
        ),
        ("destination multicast", with(&[(30, 239)])),
        ("broadcast MAC", with(&[(0, 0xff)])),
        ("total length below IHL", with(&[(17, 0x10)])),
        ("IHL past the frame", with(&[(14, 0x4f)])),
        ("IHL below 5", with(&[(14, 0x44)])),
    ];
    for (what, f) in cases {
        assert_eq!(frag_needed(&f, 1450, &mut out), None, "{what}");
    }
    // A first fragment (MF, offset 0) is answered.
    assert!(frag_needed(&with(&[(20, 0x60)]), 1450, &mut out).is_some());
}

#[test]
fn frag_needed_trims_a_lying_total_length() {
    let mut f = hex(FRAME_SMALL);
    put_be16(&mut f, 16, 0xffff);
    let mut out = [0u8; 14 + 576];
    let n = frag_needed(&f, 1400, &mut out).unwrap();
    assert_eq!(n, 14 + 28 + 46); // all 46 bytes after the Ethernet header
    assert_eq!(checksum(&out[14..34]), 0);
    assert_eq!(checksum(&out[34..n]), 0);
}

#[test]
fn frag_needed_survives_truncation_and_garbage() {
    let mut out = [0u8; 14 + 576];
    for f in [hex(FRAME_SMALL), big_frame()] {
        for n in 0..=f.len() {
            let _ = frag_needed(&f[..n], 1450, &mut out);
            let _ = frag_needed(&f[..n], 1450, &mut out[..n.min(40)]);
        }
    }
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut f = [0u8; 128];
    for _ in 0..20_000 {
        for b in f.iter_mut() {
            *b = next() as u8;
        }
        // Mostly IPv4 with DF, so the deeper checks run.
        let (r, len) = (next(), next() as usize % f.len());
        if r & 3 != 0 {
            f[12..14].copy_from_slice(&[0x08, 0x00]);
            f[14] = 0x40 | (f[14] & 0x0f);
            f[20] |= 0x40;
            f[0] &= 0xfe;
            f[6] &= 0xfe;
        }
        let _ = frag_needed(&f[..len], 1450, &mut out);
        let _ = parse(&f[..len]);
        assert!(src_port(&f[..len]) >= 49152);
    }
}

#[test]
fn the_template_writes_what_write_writes() {
    let frames: Vec<Vec<u8>> = vec![
        vec![0x02; 60],
        {
            let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00, 0x45, 0xb8];
            f.resize(1400, 7);
            f
        },
        vec![1; 9001],
        Vec::new(),
    ];
    for csum in [false, true] {
        for tos in [None, Some(0x10)] {
            for df in [false, true] {
                let o = OuterV4 {
                    src: 0x0a63_0001,
                    dst: 0xc0a8_fe02,
                    dst_port: 4789,
                    vni: 0x12_3456,
                    ttl: 17,
                    tos,
                    df,
                    csum,
                };
                let t = o.template();
                for f in &frames {
                    let (mut a, mut b) = ([0u8; OUTER_LEN], [0u8; OUTER_LEN]);
                    o.write(&mut a, f, 50_001);
                    t.write(&mut b, f, 50_001);
                    assert_eq!(a, b, "csum {csum} tos {tos:?} df {df} len {}", f.len());
                }
            }
        }
    }
}

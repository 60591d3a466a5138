//! Packet capture (`vswitch::capture`): a tap with a filter (directions,
//! drops, snaplen, `--count`, and the `trace --live` fields, set word by
//! word as the control thread does) is offered received, sent (in parts)
//! and dropped frames on its ports; what it queues is written as pcapng
//! the way the capture thread does, and read back by an independent
//! reader. The client-side readers (`block_len`, `parse_stats`) also get
//! the raw input.
//!
//! Invariants, asserted:
//! - setting fields never panics, and the frame a consistent set of fields
//!   describes (`Fields::frame`) matches them;
//! - the tap queues exactly what the filter lets through, in order
//!   (direction, drops, fields, count; nothing after `stop`), each copy
//!   the frame's first min(length, snaplen) bytes with its full length, so
//!   never more than the snaplen; its counters agree;
//! - the pcapng is well formed: every block's leading and trailing lengths
//!   agree, are multiples of 4 and at least 12, `block_len` agrees, the
//!   blocks add up to the stream; options are well formed with zero
//!   padding and end with opt_endofopt; an EPB's captured length is at
//!   most the IDB snaplen and its original length, and its bytes, flags
//!   and comment are the record's; interface names and comments are cut
//!   on a character boundary to at most 65,535 bytes; `parse_stats` reads
//!   back each ISB's counters and nothing from other blocks.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pipeline::DropReason;
use vswitch::capture::pcapng::{self, Direction};
use vswitch::capture::{Dir, Filter, PortTaps, Record, Tap};
use vswitch::trace::flow::Fields;

const MAX_OPT: usize = 65_535;

fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

/// Options of a block body: (code, value) until opt_endofopt, which must
/// end the body (or the body has no options at all).
fn options(mut b: &[u8]) -> Vec<(u16, Vec<u8>)> {
    let mut v = Vec::new();
    if b.is_empty() {
        return v;
    }
    loop {
        assert!(b.len() >= 4, "an option cut short");
        let (code, len) = (le16(b, 0), usize::from(le16(b, 2)));
        if code == 0 {
            assert_eq!(len, 0, "opt_endofopt with a length");
            assert_eq!(b.len(), 4, "bytes after opt_endofopt");
            return v;
        }
        let step = 4 + len.next_multiple_of(4);
        assert!(b.len() >= step, "option {code} runs off its block");
        assert!(b[4 + len..step].iter().all(|&x| x == 0), "padding");
        v.push((code, b[4..4 + len].to_vec()));
        b = &b[step..];
    }
}

fn opt(o: &[(u16, Vec<u8>)], code: u16) -> Option<&[u8]> {
    o.iter()
        .find(|(c, _)| *c == code)
        .map(|(_, v)| v.as_slice())
}

/// `cut` is `s` cut on a character boundary to at most 65,535 bytes.
fn check_clip(cut: &[u8], s: &str) {
    let cut = std::str::from_utf8(cut).expect("an option string is UTF-8");
    assert!(s.starts_with(cut), "not a prefix");
    assert!(cut.len() <= MAX_OPT);
    if s.len() > MAX_OPT {
        assert!(cut.len() > MAX_OPT - 4, "cut more than a character");
    } else {
        assert_eq!(cut, s);
    }
}

/// Fields that describe a frame `Fields::frame` can build and `Fields::of`
/// reads back the same: IP fields only on IPv4, ports only on TCP/UDP,
/// no VLAN EtherType without a VLAN.
fn consistent(f: &Fields) -> bool {
    let ip = f.dl_type.is_none_or(|t| t == 0x0800);
    let vlan_type = matches!(f.dl_type, Some(0x8100 | 0x88a8));
    let ports = f.tp_src.is_some() || f.tp_dst.is_some();
    let ip_fields = f.nw_src.is_some() || f.nw_dst.is_some() || f.nw_proto.is_some();
    (ip || !(ip_fields || ports))
        && (!ports || matches!(f.nw_proto, Some(6 | 17)))
        && (!vlan_type || f.dl_vlan.is_some())
        && !(vlan_type && f.dl_vlan.is_some() && (ip_fields || ports))
}

struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(*b)
    }
    fn bytes(&mut self, n: usize) -> &[u8] {
        let (a, b) = self.0.split_at(n.min(self.0.len()));
        self.0 = b;
        a
    }
}

/// One offer: the port, the way, the frame's parts, and whether the tap
/// should have queued it.
struct Offer {
    iface: u32,
    dir: Option<Dir>,
    reason: Option<DropReason>,
    frame: Vec<u8>,
}

fuzz_target!(|data: &[u8]| {
    // The client's readers on arbitrary bytes.
    for start in [0, 1, 2, 3] {
        let b = data.get(start..).unwrap_or(&[]);
        if let Some(head) = b.first_chunk::<8>() {
            if let Ok(n) = pcapng::block_len(head) {
                assert!(n >= 12 && n % 4 == 0 && n <= pcapng::MAX_BLOCK_LEN);
            }
        }
        if let Some((_, _, _)) = pcapng::parse_stats(b) {
            assert_eq!(le32(b, 0), 5, "parse_stats on a block that is not an ISB");
            let n = le32(b, 4) as usize;
            assert!(n >= 24 && n <= b.len() && le32(b, n - 4) as usize == n);
        }
    }

    let mut inp = Input(data);
    let (Some(s0), Some(s1), Some(flags)) = (inp.byte(), inp.byte(), inp.byte()) else {
        return;
    };
    let snaplen = if s0 == 0xff {
        vswitch::capture::DEFAULT_SNAPLEN
    } else {
        14 + u32::from(u16::from_be_bytes([s0, s1]))
    };
    let count = u64::from((flags >> 3) & 7);
    // The `trace --live` fields, word by word.
    let mut fields = None;
    if flags & 0x40 != 0 {
        let n = usize::from(inp.byte().unwrap_or(0));
        let text = String::from_utf8_lossy(inp.bytes(n)).into_owned();
        let mut f = Fields::default();
        let ok = text.split_whitespace().all(|w| f.set(w).is_ok());
        if consistent(&f) {
            let frame = f.frame();
            assert!(f.matches(&frame), "{f:?} does not match its own frame");
            assert!(frame.len() >= 60);
        }
        if ok {
            fields = Some(f);
        }
    }
    // Interface names: a fragment repeated (long names are cut).
    let n = usize::from(inp.byte().unwrap_or(0) & 31);
    let piece = String::from_utf8_lossy(inp.bytes(n)).into_owned();
    let reps = usize::from(inp.byte().unwrap_or(1));
    let times = if reps > 200 {
        // Just past the 65,535 bytes an option holds.
        MAX_OPT / piece.len().max(1) + (reps - 200)
    } else {
        1
    };
    let long = piece.repeat(times);
    let names = vec![format!("p0{piece}"), format!("q{long}"), "p2".to_string()];
    let filter = Filter {
        rx: flags & 1 != 0,
        tx: flags & 2 != 0,
        drops: flags & 4 != 0,
        snaplen,
        count,
        fields: fields.clone(),
    };
    let (tap, rx) = Tap::new(1, names.clone(), filter);
    let taps: Vec<Option<PortTaps>> = names
        .iter()
        .map(|n| PortTaps::for_port(n, std::slice::from_ref(&tap)))
        .collect();
    let other = PortTaps::for_port("not-captured", std::slice::from_ref(&tap));
    assert!(other.is_none());

    // Offers: op (bits 0-1 port, 2-3 rx/tx/drop/stop, 4-5 parts - 1,
    // 6 a long frame), reason for a drop, length, bytes.
    let mut expect: Vec<Offer> = Vec::new();
    let mut stopped = false;
    let mut taken = 0u64;
    let mut ops = 0;
    while let Some(op) = inp.byte() {
        ops += 1;
        if ops > 200 {
            break;
        }
        let iface = usize::from(op & 3) % 3;
        let kind = (op >> 2) & 3;
        if kind == 3 {
            tap.stop();
            stopped = true;
            continue;
        }
        let reason = DropReason::ALL[usize::from(inp.byte().unwrap_or(0)) % DropReason::COUNT];
        let len = usize::from(inp.byte().unwrap_or(0));
        let bytes = inp.bytes(len).to_vec();
        let frame: Vec<u8> = if op & 0x40 != 0 && !bytes.is_empty() {
            bytes.iter().copied().cycle().take(len * 300).collect()
        } else {
            bytes
        };
        let nparts = 1 + usize::from((op >> 4) & 3);
        let cut = |i: usize| (frame.len() * i / nparts).min(frame.len());
        let parts: Vec<&[u8]> = (0..nparts).map(|i| &frame[cut(i)..cut(i + 1)]).collect();
        let Some(t) = &taps[iface] else {
            panic!("port {} not tapped", names[iface]);
        };
        let (dir, why, wanted) = match kind {
            0 => {
                t.rx(&frame);
                (Dir::In, None, tap.filter.rx)
            }
            1 => {
                t.tx(&parts);
                (Dir::Out, None, tap.filter.tx)
            }
            _ => {
                assert_eq!(t.wants_drops(), tap.filter.drops);
                t.drop(&frame, reason);
                (Dir::In, Some(reason), tap.filter.drops)
            }
        };
        let single = kind != 1 || nparts == 1;
        let fields_ok = match &fields {
            None => true,
            Some(f) => single && f.matches(&frame),
        };
        if wanted && fields_ok && !stopped && (count == 0 || taken < count) {
            taken += 1;
            expect.push(Offer {
                iface: iface as u32,
                dir: Some(dir),
                reason: why,
                frame,
            });
        }
    }
    assert_eq!(tap.count_reached(), count != 0 && taken == count);
    let got: Vec<Record> = rx.try_iter().collect();
    assert_eq!(got.len(), expect.len(), "records queued");
    for (r, e) in got.iter().zip(&expect) {
        assert_eq!((r.iface, r.dir, r.reason), (e.iface, e.dir, e.reason));
        assert_eq!(r.orig_len as usize, e.frame.len());
        let keep = e.frame.len().min(snaplen as usize);
        assert!(
            r.data.len() <= snaplen as usize,
            "a copy beyond the snaplen"
        );
        assert_eq!(r.data, e.frame[..keep], "the copy is not the frame's start");
    }
    let offered: u64 = tap
        .counters
        .iter()
        .map(|c| c.offered.load(std::sync::atomic::Ordering::Relaxed))
        .sum();
    let dropped: u64 = tap
        .counters
        .iter()
        .map(|c| c.dropped.load(std::sync::atomic::Ordering::Relaxed))
        .sum();
    assert_eq!((offered, dropped), (expect.len() as u64, 0));

    // The stream the capture thread writes.
    let mut out = Vec::new();
    let ifaces: Vec<(&str, u32)> = names.iter().map(|n| (n.as_str(), snaplen)).collect();
    pcapng::header(&mut out, &ifaces);
    for r in &got {
        let dir = r.dir.map(|d| match d {
            Dir::In => Direction::In,
            Dir::Out => Direction::Out,
        });
        let comment = r.reason.map(|why| format!("drop: {}", why.name()));
        pcapng::packet(
            &mut out,
            r.iface,
            r.ts_ns,
            r.orig_len,
            &r.data,
            dir,
            comment.as_deref(),
        );
    }
    // One packet with a long comment of its own, and odd numbers.
    let comment = long.clone();
    let odd = inp.0.first().copied().unwrap_or(0);
    let cap = long.len().min(300).min(snaplen as usize);
    pcapng::packet(
        &mut out,
        2,
        u64::MAX,
        0,
        &long.as_bytes()[..cap],
        None,
        Some(&comment),
    );
    for (i, c) in tap.counters.iter().enumerate() {
        let o = c.offered.load(std::sync::atomic::Ordering::Relaxed);
        let d = c.dropped.load(std::sync::atomic::Ordering::Relaxed);
        pcapng::stats(
            &mut out,
            i as u32,
            u64::from(odd) << 40,
            u64::MAX - u64::from(odd),
            o,
            d,
        );
    }

    // Read it back.
    let mut at = 0;
    let mut idb = Vec::new();
    let mut epb = 0;
    let mut isb = 0;
    while at < out.len() {
        let head: &[u8; 8] = out[at..].first_chunk().expect("a block header cut short");
        let len = pcapng::block_len(head).expect("block_len refuses a written block");
        assert!(len >= 12 && len % 4 == 0);
        assert!(at + len <= out.len(), "a block runs off the stream");
        let blk = &out[at..at + len];
        assert_eq!(le32(blk, len - 4) as usize, len, "trailing length");
        let body = &blk[8..len - 4];
        let ty = le32(blk, 0);
        if ty != 5 {
            assert_eq!(pcapng::parse_stats(blk), None);
        }
        match ty {
            0x0A0D_0D0A => {
                assert_eq!(at, 0, "a second section header");
                assert_eq!(le32(body, 0), 0x1A2B_3C4D);
                assert_eq!((le16(body, 4), le16(body, 6)), (1, 0));
                let o = options(&body[16..]);
                assert!(opt(&o, 4).is_some_and(|v| v.starts_with(b"vswitchd ")));
            }
            1 => {
                assert_eq!(le16(body, 0), 1, "LINKTYPE_ETHERNET");
                let snap = le32(body, 4);
                assert_eq!(snap, snaplen);
                let o = options(&body[8..]);
                let i = idb.len();
                assert!(i < names.len(), "more IDBs than interfaces");
                match opt(&o, 2) {
                    Some(n) => check_clip(n, &names[i]),
                    None => assert!(names[i].is_empty()),
                }
                assert_eq!(opt(&o, 9), Some(&[9u8][..]));
                idb.push(snap);
            }
            6 => {
                let iface = le32(body, 0) as usize;
                assert!(iface < idb.len(), "EPB for interface {iface}");
                let (cap, orig) = (le32(body, 12) as usize, le32(body, 16) as usize);
                assert!(cap <= orig, "captured {cap} > original {orig}");
                if idb[iface] != 0 {
                    assert!(cap <= idb[iface] as usize, "captured {cap} > snaplen");
                }
                let data = &body[20..20 + cap];
                let pad = 20 + cap.next_multiple_of(4);
                assert!(body[20 + cap..pad].iter().all(|&x| x == 0));
                let o = options(&body[pad..]);
                if let Some(r) = got.get(epb) {
                    assert_eq!(iface as u32, r.iface);
                    assert_eq!(data, &r.data[..]);
                    assert_eq!(orig, r.orig_len as usize);
                    let flags = opt(&o, 2).map(|v| u32::from_le_bytes(v.try_into().unwrap()));
                    assert_eq!(flags, r.dir.map(|d| if d == Dir::In { 1 } else { 2 }));
                    let c = r.reason.map(|why| format!("drop: {}", why.name()));
                    assert_eq!(opt(&o, 1), c.as_ref().map(|c| c.as_bytes()));
                } else {
                    assert_eq!(epb, got.len(), "one EPB more than written");
                    assert_eq!(opt(&o, 2), None);
                    match opt(&o, 1) {
                        Some(c) => check_clip(c, &comment),
                        None => panic!("the comment is lost"),
                    }
                }
                epb += 1;
            }
            5 => {
                let iface = le32(body, 0);
                let c = &tap.counters[isb];
                let want = (
                    isb as u32,
                    c.offered.load(std::sync::atomic::Ordering::Relaxed),
                    c.dropped.load(std::sync::atomic::Ordering::Relaxed),
                );
                assert_eq!(iface, isb as u32);
                assert_eq!(pcapng::parse_stats(blk), Some(want));
                options(&body[12..]);
                isb += 1;
            }
            t => panic!("block type {t:#x} written"),
        }
        at += len;
    }
    assert_eq!(at, out.len());
    assert_eq!(
        (idb.len(), epb, isb),
        (names.len(), got.len() + 1, names.len())
    );
});

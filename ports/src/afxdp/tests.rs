//! Tests: mode parsing, and end-to-end runs over veth pairs each test
//! creates for itself (`xt<pid><tag>a` / `xt<pid><tag>b`, deleted by a guard
//! even on panic). The veth tests need root and are skipped without it.

use super::testnet::{is_root, pin_to_cpu, poll_in, run, xdp_prog_name, PacketSocket, Veth};
use super::*;
use pipeline::Batch;
use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// IEEE 802 local experimental EtherType: nothing in the kernel handles it.
const ETHERTYPE: u16 = 0x88b5;
const MAGIC: &[u8; 4] = b"VSWT";
const CHILD_ENV: &str = "VSWITCH_AFXDP_TEST_CHILD";

#[test]
fn mode_parsing() {
    assert_eq!("native".parse::<XdpMode>(), Ok(XdpMode::Native));
    assert_eq!("generic".parse::<XdpMode>(), Ok(XdpMode::Generic));
    assert_eq!("best-effort".parse::<XdpMode>(), Ok(XdpMode::BestEffort));
    let e = "drv".parse::<XdpMode>().unwrap_err().to_string();
    assert!(e.contains("\"drv\""), "{e}");
    assert!(e.contains("best-effort, native, generic"), "{e}");
    for m in [XdpMode::BestEffort, XdpMode::Native, XdpMode::Generic] {
        assert_eq!(m.to_string().parse::<XdpMode>(), Ok(m));
    }
}

#[test]
fn missing_device_is_reported_as_such() {
    let e = match open("xtnosuchdev0", XdpMode::BestEffort) {
        Ok(_) => panic!("opened a device that does not exist"),
        Err(e) => e,
    };
    assert!(e.is_missing_device(), "{e}");
    assert!(e.to_string().starts_with("xtnosuchdev0: "), "{e}");
}

#[test]
fn native_mode_end_to_end() {
    end_to_end(XdpMode::Native, "n", 1);
}

#[test]
fn generic_mode_end_to_end() {
    end_to_end(XdpMode::Generic, "g", 2);
}

/// RX from the peer (with a poll() wake-up), TX to the peer, a 5,000-frame
/// TX burst, and no XDP program left after drop.
fn end_to_end(mode: XdpMode, tag: &str, test: u8) {
    let Some(veth) = Veth::new(tag, false) else {
        return;
    };
    let mut port = open(&veth.a, mode).unwrap_or_else(|e| panic!("open: {e}"));
    let st = &port.status;
    assert_eq!(st.backend, "afxdp");
    assert_eq!(st.mode, mode.as_str());
    assert_eq!(st.fallback_reason, None);
    assert_eq!(st.ifindex, netdev::ifindex(&veth.a).unwrap());
    assert_eq!(st.mac, netdev::mac(&veth.a).unwrap());
    assert_eq!(st.mtu, 1500);
    assert_eq!(port.rxqs.len(), 1);
    assert!(veth.xdp_attached(), "no XDP program on {}", veth.a);

    let to_port = PacketSocket::open(&veth.b, 0);
    let from_port = PacketSocket::open(&veth.b, ETHERTYPE);

    // Receive, and poll() wakes up when a frame waits.
    let fd = port.rxqs[0]
        .wake_fd()
        .expect("an AF_XDP queue has a wake fd");
    assert!(!poll_in(fd, 0), "POLLIN before anything was sent");
    to_port.send(&frame(test, 0, frame_len(0), false));
    assert!(
        poll_in(fd, 1000),
        "poll() on the AF_XDP socket did not wake up"
    );
    for seq in 1..100 {
        to_port.send(&frame(test, seq, frame_len(seq), false));
    }
    let got = recv_port(&mut port, test, 100);
    assert_eq!(got.len(), 100, "received {} of 100 frames", got.len());

    // Transmit.
    for seq in 0..100 {
        assert!(port
            .tx
            .send(&frame(test, 1000 + seq, frame_len(seq), false)));
    }
    drain_tx(&mut port);
    let got = from_port.collect(100, Duration::from_secs(2), |f| parse(f, test));
    assert_eq!(got.len(), 100, "peer got {} of 100 frames", got.len());
    assert!(got.iter().all(|s| (1000..1100).contains(s)));

    // Burst: as a poll loop would, sends then a flush, retrying when the
    // ring is full, then flush while pending. The first half goes in
    // batches of 32; the second in runs of up to 1000 between flushes, more
    // than one kick moves, so frames stay queued unless `flush` keeps
    // kicking while `pending`.
    let reader = std::thread::spawn(move || {
        from_port.collect(5000, Duration::from_secs(5), |f| parse(f, test))
    });
    let t0 = Instant::now();
    let (mut sent, mut refused) = (0u32, 0u32);
    while sent < 5000 {
        let run = if sent < 2500 { 32 } else { 1000 };
        for _ in 0..run {
            if sent == 5000 {
                break;
            }
            if port.tx.send(&frame(test, 10_000 + sent, 60, false)) {
                sent += 1;
            } else {
                refused += 1;
                break;
            }
        }
        port.tx.flush();
    }
    drain_tx(&mut port);
    let got = reader.join().unwrap();
    eprintln!(
        "{mode} burst: 5000 frames queued in {:?} ({refused} refused sends), peer got {}",
        t0.elapsed(),
        got.len()
    );
    assert_eq!(
        got.len(),
        5000,
        "peer got {} of 5000 burst frames",
        got.len()
    );

    drop(port);
    assert!(veth.detached(), "XDP program still attached after drop");
}

/// Received frames are switched where the kernel wrote them (the packets
/// are views of UMEM frames, with room in front for pushed headers), and
/// `release` gives them back: 5,000 frames pass through a queue that has
/// 2,048, which stalls after 2,048 if a frame is not returned.
#[test]
fn received_frames_are_lent_and_recycled() {
    let Some(veth) = Veth::new("z", false) else {
        return;
    };
    let mut port = open(&veth.a, XdpMode::Native).unwrap_or_else(|e| panic!("open: {e}"));
    let to_port = PacketSocket::open(&veth.b, 0);
    let q = &mut port.rxqs[0];
    let mut batch = Batch::new();
    let (mut got, mut lent) = (0u32, 0u32);
    for chunk in 0..5u32 {
        for i in 0..1000 {
            to_port.send(&frame(4, chunk * 1000 + i, 60, false));
        }
        let want = (chunk + 1) * 1000;
        let deadline = Instant::now() + Duration::from_secs(2);
        while got < want && Instant::now() < deadline {
            q.recv(&mut batch);
            for p in batch.packets_mut() {
                if parse(p.data(), 4) == Some(got) {
                    got += 1;
                }
                if p.is_lent() {
                    lent += 1;
                    assert!(p.headroom() >= pipeline::HEADROOM);
                    // The pipeline may write into a lent frame.
                    p.push_front(4).unwrap().copy_from_slice(b"head");
                }
            }
            q.release(&mut batch);
            assert!(!batch.has_lent());
            batch.clear();
        }
        assert_eq!(got, want, "frames stopped arriving (in order) at {got}");
    }
    assert_eq!(lent, got, "every frame is received without a copy");
}

/// Ports of one pool: each frame received on one port is sent from the
/// other without a copy (the packet gets a free TX frame in exchange, which
/// goes back to the receiving queue), 5,000 frames through queues of 2,048,
/// and every frame arrives intact. Frames keep moving only if both sides
/// keep their numbers of frames.
#[test]
fn pooled_ports_forward_without_copying() {
    let (Some(v1), Some(v2)) = (Veth::new("p", false), Veth::new("r", false)) else {
        return;
    };
    let pool = UmemPool::new();
    let mut a = open_pooled(&v1.a, XdpMode::Native, &pool).unwrap_or_else(|e| panic!("{e}"));
    let mut b = open_pooled(&v2.a, XdpMode::Native, &pool).unwrap_or_else(|e| panic!("{e}"));
    let to_a = PacketSocket::open(&v1.b, 0);
    let from_b = PacketSocket::open(&v2.b, ETHERTYPE);
    let reader =
        std::thread::spawn(move || from_b.collect(5000, Duration::from_secs(5), |f| parse(f, 5)));
    let mut batch = Batch::new();
    let (mut forwarded, mut swapped) = (0u32, 0u32);
    for chunk in 0..5u32 {
        for i in 0..1000 {
            let seq = chunk * 1000 + i;
            to_a.send(&frame(5, seq, frame_len(seq % 100), false));
        }
        let deadline = Instant::now() + Duration::from_secs(2);
        while forwarded < (chunk + 1) * 1000 && Instant::now() < deadline {
            let q = &mut a.rxqs[0];
            q.recv(&mut batch);
            for p in batch.packets_mut() {
                if parse(p.data(), 5).is_none() {
                    continue;
                }
                let frame_before = p.lent();
                assert!(b.tx.send_packet(p), "TX refused frame {forwarded}");
                forwarded += 1;
                if p.is_lent() && p.lent() != frame_before && p.is_empty() {
                    swapped += 1;
                }
            }
            b.tx.flush();
            q.release(&mut batch);
            assert!(!batch.has_lent(), "the spare frames go back too");
            batch.clear();
        }
        drain_tx(&mut b);
        assert_eq!(forwarded, (chunk + 1) * 1000, "frames stopped arriving");
    }
    let got = reader.join().unwrap();
    assert_eq!(got.len(), 5000, "B's peer got {} of 5000", got.len());
    assert_eq!(swapped, forwarded, "every frame is sent without a copy");

    // A port with a UMEM of its own copies: the frame is not in its memory.
    let v3 = Veth::new("s", false).unwrap();
    let mut c = open(&v3.a, XdpMode::Native).unwrap_or_else(|e| panic!("{e}"));
    to_a.send(&frame(5, 9999, 60, false));
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut copied = false;
    while !copied && Instant::now() < deadline {
        a.rxqs[0].recv(&mut batch);
        for p in batch.packets_mut() {
            if parse(p.data(), 5) == Some(9999) {
                let before = p.lent();
                assert!(c.tx.send_packet(p));
                assert_eq!(p.lent(), before, "kept its frame");
                assert_eq!(parse(p.data(), 5), Some(9999), "and its data");
                copied = true;
            }
        }
        a.rxqs[0].release(&mut batch);
        batch.clear();
    }
    assert!(copied, "frame 9999 did not arrive");
    drain_tx(&mut c);
}

/// A port that closes gives its frames back to the pool region (receive
/// frames, and the transmit half's free ones): six ports opened and closed
/// one after the other next to two that stay, each taking 4,096 frames,
/// fit in one region of 16,384, and frames still move intact afterwards.
#[test]
fn closed_ports_give_their_frames_back() {
    let (Some(v1), Some(v2)) = (Veth::new("t", false), Veth::new("u", false)) else {
        return;
    };
    let Some(v3) = Veth::new("w", false) else {
        return;
    };
    let pool = UmemPool::new();
    let mut a = open_pooled(&v1.a, XdpMode::Native, &pool).unwrap_or_else(|e| panic!("{e}"));
    let mut b = open_pooled(&v2.a, XdpMode::Native, &pool).unwrap_or_else(|e| panic!("{e}"));
    let to_a = PacketSocket::open(&v1.b, 0);
    let mut seq = 0u32;
    for _ in 0..6 {
        let mut c = open_pooled(&v3.a, XdpMode::Native, &pool).unwrap_or_else(|e| panic!("{e}"));
        forward_frames(&to_a, &mut a, &mut c, &mut seq, 300);
        drop(c);
        assert_eq!(pool.regions(), 1, "a closed port's frames were not reused");
    }
    let from_b = PacketSocket::open(&v2.b, ETHERTYPE);
    let reader =
        std::thread::spawn(move || from_b.collect(3000, Duration::from_secs(5), |f| parse(f, 6)));
    let first = seq;
    for _ in 0..3 {
        // In chunks the RX ring (2,048) can hold.
        forward_frames(&to_a, &mut a, &mut b, &mut seq, 1000);
    }
    let got = reader.join().unwrap();
    assert_eq!(got.len(), 3000, "B's peer got {} of 3000", got.len());
    assert!(got.iter().all(|s| (first..first + 3000).contains(s)));
}

/// Sends `n` test-6 frames into `a` (through `to_a`; at most what its RX
/// ring holds) and forwards each to `out`'s transmit half as the datapath
/// does, numbering from `*seq`.
fn forward_frames(
    to_a: &PacketSocket,
    a: &mut crate::OpenPort,
    out: &mut crate::OpenPort,
    seq: &mut u32,
    n: u32,
) {
    let want = *seq + n;
    for s in *seq..want {
        to_a.send(&frame(6, s, frame_len(s % 100), false));
    }
    let mut batch = Batch::new();
    let deadline = Instant::now() + Duration::from_secs(2);
    while *seq < want && Instant::now() < deadline {
        a.rxqs[0].recv(&mut batch);
        for p in batch.packets_mut() {
            if parse(p.data(), 6).is_some() {
                assert!(out.tx.send_packet(p));
                *seq += 1;
            }
        }
        out.tx.flush();
        a.rxqs[0].release(&mut batch);
        batch.clear();
    }
    drain_tx(out);
    assert_eq!(*seq, want, "frames stopped arriving");
}

#[test]
fn two_queues_each_get_their_socket() {
    let Some(veth) = Veth::new("q", true) else {
        return;
    };
    let mut port = open(&veth.a, XdpMode::Native).unwrap_or_else(|e| panic!("open: {e}"));
    assert_eq!(port.rxqs.len(), 2);
    let to_port = PacketSocket::open(&veth.b, 0);
    // AF_PACKET picks the TX queue from the sending CPU; veth delivers to
    // the same-numbered RX queue on the other end.
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut seq = 0;
    for cpu in 0..cpus.min(2) {
        // A thread of its own, so the pinning ends with it.
        std::thread::scope(|s| {
            s.spawn(|| {
                pin_to_cpu(cpu);
                for i in 0..50 {
                    to_port.send(&frame(3, seq + i, 60, true));
                }
            });
        });
        seq += 50;
    }
    let mut batch = Batch::new();
    let mut per_queue = [0usize; 2];
    let deadline = Instant::now() + Duration::from_secs(2);
    while per_queue.iter().sum::<usize>() < seq as usize && Instant::now() < deadline {
        for (i, q) in port.rxqs.iter_mut().enumerate() {
            q.recv(&mut batch);
            per_queue[i] += batch
                .packets()
                .iter()
                .filter(|p| parse(p.data(), 3).is_some())
                .count();
            q.release(&mut batch);
            batch.clear();
        }
    }
    eprintln!("two queues: frames per queue {per_queue:?}");
    assert_eq!(per_queue.iter().sum::<usize>(), seq as usize);
    if cpus >= 2 {
        assert!(per_queue[1] > 0, "queue 1 received nothing: {per_queue:?}");
    }
}

#[test]
fn failed_opens_release_everything() {
    let Some(veth) = Veth::new("x", false) else {
        return;
    };
    // Someone else's program (ours, loaded by hand) holds the device.
    let map = bpf::XskMap::create(1).unwrap();
    let prog = bpf::Program::load_redirect(&map).unwrap_or_else(|e| panic!("{}", e.log));
    let blocker = bpf::Link::attach_xdp(&prog, netdev::ifindex(&veth.a).unwrap(), 4).unwrap();
    let e = open(&veth.a, XdpMode::Native)
        .err()
        .expect("open over another program");
    assert_eq!(e.source.raw_os_error(), Some(libc::EBUSY), "{e}");
    assert!(
        e.what.starts_with("attaching XDP program in native mode"),
        "{e}"
    );
    assert!(e.what.contains("another XDP program"), "{e}");
    let e = open(&veth.a, XdpMode::BestEffort)
        .err()
        .expect("best-effort over another program");
    assert!(
        e.what.contains("native mode") && e.what.contains("generic mode"),
        "{e}"
    );
    drop((blocker, prog, map));
    assert!(veth.detached());

    // The failed attempts closed their sockets: queue 0 can be bound again.
    let mut port = open(&veth.a, XdpMode::Native).unwrap_or_else(|e| panic!("open: {e}"));
    // A second port on the same queue fails at the bind, and leaves the
    // first one working.
    let e = open(&veth.a, XdpMode::Native)
        .err()
        .expect("second open of one device");
    assert!(
        e.what.starts_with("binding AF_XDP socket to queue 0"),
        "{e}"
    );
    assert!(veth.xdp_attached());
    PacketSocket::open(&veth.b, 0).send(&frame(4, 7, frame_len(7), false));
    assert!(recv_port(&mut port, 4, 1).contains(&7));
    drop(port);
    assert!(veth.detached());
}

#[test]
fn best_effort_falls_back_to_generic_when_native_is_refused() {
    if !is_root() {
        eprintln!("skipped: needs root to create veth pairs and attach XDP");
        return;
    }
    // A bridge device has no native XDP (veth, with the multi-buffer
    // program, now takes native mode at any MTU). Its guard deletes it.
    let dev = Veth {
        a: format!("xt{}fd", std::process::id()),
        b: String::new(),
    };
    run("ip", &["link", "add", &dev.a, "type", "bridge"]);
    run("ip", &["link", "set", &dev.a, "up"]);
    let e = open(&dev.a, XdpMode::Native)
        .err()
        .expect("native on a bridge device");
    assert_eq!(e.source.raw_os_error(), Some(libc::EOPNOTSUPP), "{e}");
    assert!(e.what.contains("no native XDP support"), "{e}");
    let port = open(&dev.a, XdpMode::BestEffort).unwrap_or_else(|e| panic!("open: {e}"));
    assert_eq!(port.status.mode, "generic");
    // Not the device-bound VLAN program native mode tried: generic refuses it.
    assert_eq!(xdp_prog_name(&dev.a).as_deref(), Some(bpf::PROG_NAME));
    let why = port.status.fallback_reason.clone().unwrap_or_default();
    assert!(
        why.starts_with("native XDP could not be attached"),
        "{why:?}"
    );
    assert!(why.contains("no native XDP support"), "{why:?}");
    // Traffic in generic mode: `generic_mode_end_to_end`.
}

/// With a 9,000-byte MTU on both ends, native and generic XDP both carry
/// jumbo frames whole, each way: received as several descriptors
/// (`XDP_USE_SG`) gathered into one packet, sent as a descriptor chain.
#[test]
fn jumbo_frames_cross_in_both_modes() {
    for (tag, mode) in [("jn", XdpMode::Native), ("jg", XdpMode::Generic)] {
        let Some(veth) = Veth::new(tag, false) else {
            return;
        };
        for end in [&veth.a, &veth.b] {
            run("ip", &["link", "set", "dev", end, "mtu", "9000"]);
        }
        let mut port = open(&veth.a, mode).unwrap_or_else(|e| panic!("open {mode}: {e}"));
        assert_eq!(port.status.mtu, 9000);
        // 130, 4,260 (two frames) and 9,006 bytes (three).
        let seqs = [5, 300, 639];
        let test = 8;
        let b = PacketSocket::open(&veth.b, 0);
        for &seq in &seqs {
            b.send(&frame(test, seq, frame_len(seq), false));
        }
        let got = recv_port(&mut port, test, seqs.len());
        assert_eq!(got, seqs.into_iter().collect(), "{mode}: received whole");
        assert_eq!(port.rxqs[0].kernel_drops(), 0, "{mode}");

        let b = PacketSocket::open(&veth.b, ETHERTYPE);
        for &seq in &seqs {
            assert!(port.tx.send(&frame(test, seq, frame_len(seq), false)));
        }
        drain_tx(&mut port);
        let got = b.collect(seqs.len(), Duration::from_secs(2), |f| {
            parse(f, test).filter(|&seq| f.len() == frame_len(seq))
        });
        assert_eq!(got, seqs.into_iter().collect(), "{mode}: sent whole");
    }
}

/// Run in a child process by `killed_process_leaves_no_program`.
#[test]
#[ignore = "helper run in a child process by killed_process_leaves_no_program"]
fn child_holds_port() {
    let Ok(name) = std::env::var(CHILD_ENV) else {
        return;
    };
    let _port = open(&name, XdpMode::Native).unwrap_or_else(|e| panic!("open: {e}"));
    println!("READY");
    std::thread::sleep(Duration::from_secs(20));
}

#[test]
fn killed_process_leaves_no_program() {
    let Some(veth) = Veth::new("k", false) else {
        return;
    };
    let exe = std::env::current_exe().unwrap();
    let child = Command::new(exe)
        .args(["afxdp::tests::child_holds_port", "--exact", "--ignored"])
        .args(["--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, &veth.a)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut child = KillOnDrop(child);
    let out = child.0.stdout.take().unwrap();
    let ready = BufReader::new(out)
        .lines()
        .map_while(Result::ok)
        .any(|l| l.contains("READY"));
    assert!(ready, "child did not open the port");
    assert!(veth.xdp_attached());
    child.0.kill().unwrap(); // SIGKILL
    child.0.wait().unwrap();
    assert!(
        veth.detached(),
        "XDP program left behind by a killed process"
    );
}

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn frame_len(seq: u32) -> usize {
    60 + seq as usize * 14
}

/// A test frame: broadcast, magic, test id, sequence number, and a pattern
/// that depends on both; `udp` wraps it in IPv4/UDP with a per-frame port.
fn frame(test: u8, seq: u32, len: usize, udp: bool) -> Vec<u8> {
    let mut f = vec![0u8; len.max(60)];
    f[..6].copy_from_slice(&[0xff; 6]);
    f[6..12].copy_from_slice(&[0x02, 0, 0, 0, test, 1]);
    let body = if udp {
        f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
        let ip_len = (f.len() - 14) as u16;
        let ip = [
            0x45,
            0,
            (ip_len >> 8) as u8,
            ip_len as u8,
            0,
            0,
            0,
            0,
            64,
            17,
            0,
            0,
            10,
            0,
            0,
            1,
            10,
            0,
            0,
            2,
        ];
        f[14..34].copy_from_slice(&ip);
        let port = 1024 + (seq as u16 % 1000);
        f[34..36].copy_from_slice(&port.to_be_bytes());
        f[36..38].copy_from_slice(&9u16.to_be_bytes());
        f[38..40].copy_from_slice(&(ip_len - 20).to_be_bytes());
        42
    } else {
        f[12..14].copy_from_slice(&ETHERTYPE.to_be_bytes());
        14
    };
    f[body..body + 4].copy_from_slice(MAGIC);
    f[body + 4] = test;
    f[body + 5..body + 9].copy_from_slice(&seq.to_be_bytes());
    for (i, b) in f[body + 9..].iter_mut().enumerate() {
        *b = (i as u8) ^ (seq as u8);
    }
    f
}

/// The sequence number of a well-formed test frame of test `test`.
fn parse(f: &[u8], test: u8) -> Option<u32> {
    let body = [14, 42]
        .into_iter()
        .find(|&b| f.len() >= b + 9 && &f[b..b + 4] == MAGIC)?;
    if f[body + 4] != test {
        return None;
    }
    let seq = u32::from_be_bytes(f[body + 5..body + 9].try_into().ok()?);
    let intact = f[body + 9..]
        .iter()
        .enumerate()
        .all(|(i, b)| *b == (i as u8) ^ (seq as u8));
    assert!(intact, "frame {seq} of test {test} is corrupted");
    Some(seq)
}

/// Receives test frames from all queues of `port` until `want` distinct
/// ones arrived or 2 s passed; checks each frame's length.
fn recv_port(port: &mut crate::OpenPort, test: u8, want: usize) -> HashSet<u32> {
    let mut batch = Batch::new();
    let mut got = HashSet::new();
    let deadline = Instant::now() + Duration::from_secs(2);
    while got.len() < want && Instant::now() < deadline {
        for q in port.rxqs.iter_mut() {
            q.recv(&mut batch);
            for p in batch.packets() {
                if let Some(seq) = parse(p.data(), test) {
                    assert_eq!(p.len(), frame_len(seq), "length of frame {seq}");
                    got.insert(seq);
                }
            }
            q.release(&mut batch);
            batch.clear();
        }
    }
    got
}

fn drain_tx(port: &mut crate::OpenPort) {
    port.tx.flush();
    let deadline = Instant::now() + Duration::from_secs(2);
    while port.tx.pending() && Instant::now() < deadline {
        port.tx.flush();
    }
    assert!(!port.tx.pending(), "TX descriptors still pending after 2 s");
}

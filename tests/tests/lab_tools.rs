//! Lab tools (issue 12): `vswctl capture` read back with an independent
//! pcapng reader and with tcpdump, patch ports joining two bridges, and
//! link impairment (delay, loss, rate) measured with ping and iperf3.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tests::frames::{tagged_test_frame, test_frame, token_of, vlan_id, BROADCAST};
use tests::names::unique;
use tests::pcapng::{self, Dir};
use tests::poll::wait_until;
use tests::{ping, send_raw, tcp_transfer, Daemon, Host, Lab};

/// A `vswctl capture` running in the background.
struct Cap {
    child: Child,
    file: PathBuf,
}

impl Cap {
    /// Starts `vswctl capture ARGS -w FILE` and waits until the daemon
    /// accepted it (the file holds the pcapng header).
    fn start(d: &Daemon, args: &[&str]) -> Cap {
        let file = d.rundir().join(format!("{}.pcapng", unique("cap")));
        let child = d
            .bins()
            .vswctl_command()
            .arg("--rundir")
            .arg(d.rundir())
            .arg("capture")
            .args(args)
            .arg("-w")
            .arg(&file)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn vswctl capture");
        let mut cap = Cap { child, file };
        let started = wait_until(Duration::from_secs(5), || {
            std::fs::metadata(&cap.file).is_ok_and(|m| m.len() > 0)
                || cap.child.try_wait().ok().flatten().is_some()
        });
        assert!(started, "vswctl capture did not start");
        cap
    }

    /// Ctrl-C, as a user would; returns the summary vswctl printed.
    fn interrupt(self) -> (pcapng::File, String) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        self.finish()
    }

    /// Waits for vswctl to end by itself (count or duration).
    fn finish(mut self) -> (pcapng::File, String) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.child.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "vswctl capture did not end");
            std::thread::sleep(Duration::from_millis(20));
        }
        let out = std::mem::replace(&mut self.child, Command::new("true").spawn().unwrap())
            .wait_with_output()
            .unwrap();
        let summary = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "vswctl capture failed: {summary}");
        let f = pcapng::read(&self.file).unwrap_or_else(|e| panic!("capture file: {e}"));
        (f, summary)
    }
}

impl Drop for Cap {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// ICMP echo type of an untagged IPv4 frame (8 request, 0 reply).
fn icmp_type(f: &[u8]) -> Option<u8> {
    (f.len() > 34 && f[12..14] == [8, 0] && f[23] == 1).then(|| f[34])
}

fn tcpdump_count(file: &Path, filter: &str) -> usize {
    let out = Command::new("tcpdump")
        .args(["-nn", "-r"])
        .arg(file)
        .arg(filter)
        .output()
        .expect("tcpdump");
    assert!(
        out.status.success(),
        "tcpdump cannot read the capture: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).lines().count()
}

#[test]
fn capture_on_two_ports_shows_both_directions_and_reads_in_tcpdump() {
    let lab = Lab::new(2);
    let (a, b) = (lab.host(0), lab.host(1));
    let cap = Cap::start(&lab.daemon, &[&format!("{},{}", a.port(), b.port())]);
    assert!(ping(a, b.ip(), 10), "ping through the bridge");
    let cap_file = cap.file.clone();
    let (f, summary) = cap.interrupt();
    assert_eq!(f.interfaces, vec![a.port(), b.port()]);
    let count = |port: &str, dir: Dir, ty: u8| {
        f.on(port)
            .iter()
            .filter(|p| p.dir == dir && icmp_type(&p.data) == Some(ty))
            .count()
    };
    // a's port receives the requests and sends the replies; b's the other
    // way round.
    assert_eq!(count(a.port(), Dir::In, 8), 10, "requests in on a");
    assert_eq!(count(a.port(), Dir::Out, 0), 10, "replies out on a");
    assert_eq!(count(b.port(), Dir::Out, 8), 10, "requests out on b");
    assert_eq!(count(b.port(), Dir::In, 0), 10, "replies in on b");
    for p in &f.packets {
        assert_eq!(p.orig_len, p.data.len());
    }
    // Nanosecond timestamps, in order within a port, close to now.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    assert!(f.packets.iter().all(|p| now - p.ts_ns < 60_000_000_000));
    assert_eq!(
        tcpdump_count(&cap_file, "icmp"),
        40,
        "tcpdump reads every packet"
    );
    assert_eq!(f.stats.len(), 2, "one statistics block per port");
    assert!(
        summary.contains("0 dropped"),
        "a quiet capture drops nothing: {summary}"
    );
}

#[test]
fn capture_to_stdout_feeds_tcpdump_and_count_stops_it() {
    let lab = Lab::new(2);
    let (a, b) = (lab.host(0), lab.host(1));
    let d = &lab.daemon;
    // vswctl capture P --count 6 -w - | tcpdump -nr -
    let mut cap = d
        .bins()
        .vswctl_command()
        .arg("--rundir")
        .arg(d.rundir())
        .args(["capture", a.port(), "--count", "6", "-w", "-"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let dump = Command::new("tcpdump")
        .args(["-nn", "-r", "-"])
        .stdin(cap.stdout.take().unwrap())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    // More than 6 frames: the count, not the traffic, ends the capture.
    assert!(ping(a, b.ip(), 8));
    let ended = wait_until(Duration::from_secs(10), || {
        cap.try_wait().ok().flatten().is_some()
    });
    assert!(ended, "--count 6 did not end the capture");
    let out = dump.wait_with_output().unwrap();
    let lines = String::from_utf8_lossy(&out.stdout).lines().count();
    assert_eq!(lines, 6, "tcpdump read {lines} packets from the stream");
    let _ = cap.wait();
}

#[test]
fn a_trunk_shows_its_tags_and_drops_carry_their_reason() {
    let lab = Lab::new(2);
    let (a, b) = (lab.host(0), lab.host(1));
    let d = &lab.daemon;
    d.vsctl_ok(&["set", "port", a.port(), "trunks=100"]);
    d.vsctl_ok(&["set", "port", b.port(), "tag=100"]);
    let cap = Cap::start(d, &[&format!("{},{}", a.port(), b.port()), "--drops"]);
    let (t1, t2, t3) = (
        tests::frames::new_token(),
        tests::frames::new_token(),
        tests::frames::new_token(),
    );
    // Tagged in on the trunk, out untagged on the access port; back the
    // other way; and VLAN 200, which the trunk does not carry: a drop.
    send_raw(
        a.ns(),
        a.ifname(),
        &[tagged_test_frame(BROADCAST, a.mac(), 100, t1)],
    )
    .unwrap();
    send_raw(b.ns(), b.ifname(), &[test_frame(BROADCAST, b.mac(), t2)]).unwrap();
    send_raw(
        a.ns(),
        a.ifname(),
        &[tagged_test_frame(BROADCAST, a.mac(), 200, t3)],
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let (f, _) = cap.interrupt();
    let find = |port: &str, dir: Dir, tok: u64| -> Vec<Vec<u8>> {
        f.on(port)
            .into_iter()
            .filter(|p| p.dir == dir && token_of(&p.data) == Some(tok) && p.comment.is_none())
            .map(|p| p.data.clone())
            .collect()
    };
    let tag = |v: &[Vec<u8>]| v.iter().map(|f| vlan_id(f)).collect::<Vec<_>>();
    assert_eq!(tag(&find(a.port(), Dir::In, t1)), vec![Some(100)]);
    assert_eq!(tag(&find(b.port(), Dir::Out, t1)), vec![None]);
    assert_eq!(tag(&find(b.port(), Dir::In, t2)), vec![None]);
    assert_eq!(tag(&find(a.port(), Dir::Out, t2)), vec![Some(100)]);
    let drops: Vec<_> = f
        .on(a.port())
        .into_iter()
        .filter(|p| token_of(&p.data) == Some(t3) && p.comment.is_some())
        .collect();
    assert_eq!(drops.len(), 1, "the VLAN 200 frame is recorded as a drop");
    assert_eq!(drops[0].comment.as_deref(), Some("drop: vlan-not-allowed"));
}

#[test]
fn a_capture_killed_midway_still_reads() {
    let lab = Lab::new(2);
    let (a, b) = (lab.host(0), lab.host(1));
    let mut cap = Cap::start(&lab.daemon, &[a.port()]);
    let pinger = {
        let (ns, ip) = (a.ns().to_string(), b.ip().to_string());
        std::thread::spawn(move || in_ns(&ns, &["ping", "-c", "200", "-i", "0.005", "-q", &ip], 30))
    };
    std::thread::sleep(Duration::from_millis(500));
    cap.child.kill().unwrap();
    let _ = cap.child.wait();
    let _ = pinger.join();
    let f = pcapng::read(&cap.file).expect("a killed capture leaves whole blocks");
    assert!(
        !f.packets.is_empty(),
        "frames were captured before the kill"
    );
    assert!(tcpdump_count(&cap.file, "icmp") >= f.packets.len() / 2);
}

#[test]
fn a_bad_capture_request_says_what_is_wrong() {
    let lab = Lab::new(1);
    let out = lab.daemon.vsctl(&["capture", "nosuchport", "--count", "1"]);
    assert!(!out.success());
    let err = out.stderr.clone();
    assert!(err.contains("no port named nosuchport"), "{err}");
    let out = lab
        .daemon
        .vsctl(&["capture", lab.host(0).port(), "--direction", "sideways"]);
    assert!(out.stderr.clone().contains("not one of in, out, both"));
}

/// Two bridges, one host on each, joined by a patch pair.
fn patched() -> (Daemon, Host, Host, String, String) {
    let d = Daemon::start();
    let (br1, br2) = (unique("br"), unique("br"));
    let (p1, p2) = (unique("pa"), unique("pb"));
    let (a, b) = (Host::new(1), Host::new(2));
    d.vsctl_ok(&["add-br", &br1]);
    d.vsctl_ok(&["add-br", &br2]);
    d.vsctl_ok(&["add-port", &br1, a.port()]);
    d.vsctl_ok(&["add-port", &br2, b.port()]);
    d.vsctl_ok(&[
        "add-port",
        &br1,
        &p1,
        "--",
        "set",
        "interface",
        &p1,
        "type=patch",
        &format!("options:peer={p2}"),
    ]);
    d.vsctl_ok(&[
        "add-port",
        &br2,
        &p2,
        "--",
        "set",
        "interface",
        &p2,
        "type=patch",
        &format!("options:peer={p1}"),
    ]);
    (d, a, b, p1, p2)
}

#[test]
fn patch_ports_join_two_bridges() {
    let (d, a, b, p1, _p2) = patched();
    assert!(
        tests::wait_ping(&a, b.ip(), Duration::from_secs(10)).is_some(),
        "no ping across the patch pair; log:\n{}",
        d.log_tail(30)
    );
    let r = tcp_transfer(&a, &b, 20 << 20);
    assert!(r.ok(), "TCP across the patch pair: {r:?}");
    let r = tcp_transfer(&b, &a, 20 << 20);
    assert!(r.ok(), "TCP back across the patch pair: {r:?}");
    // No kernel device: the patch port is the switch's only.
    assert!(!Path::new(&format!("/sys/class/net/{p1}")).exists());
    // A patch port needs a peer, and not itself.
    let out = d.vsctl(&["set", "interface", &p1, "options:peer="]);
    assert!(!out.success());
    let out = d.vsctl(&["set", "interface", &p1, &format!("options:peer={p1}")]);
    assert!(out.stderr.clone().contains("its own peer"));
    assert!(ping(&a, b.ip(), 2), "a refused change changed nothing");
}

/// Runs ARGS in namespace `ns`, killed after `secs`.
fn in_ns(ns: &str, args: &[&str], secs: u64) -> tests::cmd::Output {
    let mut c = Command::new("ip");
    c.args(["netns", "exec", ns]).args(args);
    tests::cmd::run(c, Duration::from_secs(secs))
}

/// iperf3 TCP from `from` to `to` for `secs` seconds: received Mbit/s.
fn iperf_mbit(from: &Host, to: &Host, secs: u32) -> f64 {
    let port = (5201 + (std::process::id() % 2000)) as u16;
    let mut server = Command::new("ip");
    server
        .args(["netns", "exec", to.ns(), "iperf3", "-s", "-1", "-p"])
        .arg(port.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut server = tests::cmd::spawn_tied(&mut server).expect("iperf3 server");
    std::thread::sleep(Duration::from_millis(300));
    let out = in_ns(
        from.ns(),
        &[
            "iperf3",
            "-J",
            "-c",
            &to.ip().to_string(),
            "-p",
            &port.to_string(),
            "-t",
            &secs.to_string(),
        ],
        u64::from(secs) + 20,
    );
    let _ = server.kill();
    let _ = server.wait();
    let v: serde_json::Value =
        serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("iperf3 output ({e}):\n{out}"));
    v["end"]["sum_received"]["bits_per_second"]
        .as_f64()
        .unwrap_or_else(|| panic!("no iperf3 result:\n{out}"))
        / 1e6
}

/// RTT median in ms of `n` pings at `interval` seconds.
fn rtt_ms(from: &Host, to: &Host, n: u32, interval: &str) -> (f64, usize) {
    let out = in_ns(
        from.ns(),
        &[
            "ping",
            "-c",
            &n.to_string(),
            "-i",
            interval,
            "-W",
            "2",
            &to.ip().to_string(),
        ],
        60,
    );
    let mut t: Vec<f64> = out
        .stdout
        .lines()
        .filter_map(|l| l.split("time=").nth(1))
        .filter_map(|v| v.split_whitespace().next()?.parse().ok())
        .collect();
    t.sort_by(f64::total_cmp);
    let med = t.get(t.len() / 2).copied().unwrap_or(f64::NAN);
    (med, t.len())
}

#[test]
fn delay_and_loss_on_a_port_follow_the_options_and_go_away() {
    let lab = Lab::new(2);
    let (a, b) = (lab.host(0), lab.host(1));
    let d = &lab.daemon;
    let (base, _) = rtt_ms(a, b, 20, "0.02");
    d.vsctl_ok(&["set", "interface", b.port(), "options:delay=20ms"]);
    let (delayed, got) = rtt_ms(a, b, 30, "0.02");
    assert_eq!(got, 30, "delay loses nothing");
    assert!(
        (delayed - base - 20.0).abs() <= 3.0,
        "delay=20ms: RTT {delayed:.2} ms against {base:.2} ms without"
    );
    d.vsctl_ok(&[
        "set",
        "interface",
        b.port(),
        "options:delay=",
        "options:loss=10%",
    ]);
    let out = in_ns(
        a.ns(),
        &[
            "ping",
            "-q",
            "-c",
            "1000",
            "-i",
            "0.005",
            "-W",
            "1",
            &b.ip().to_string(),
        ],
        60,
    );
    let received: u32 = out
        .stdout
        .split(" received")
        .next()
        .and_then(|s| s.rsplit(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no ping summary:\n{out}"));
    let lost = 1000 - received;
    assert!(
        (50..=150).contains(&lost),
        "loss=10% lost {lost} of 1000 pings"
    );
    let counted = d.vsctl_json(&["dump-ports", &lab.bridge, b.port()]);
    let counted_lost = counted[0]["impairment"]["lost"].as_u64().unwrap_or(0);
    // (An ARP frame lost now and then is counted too.)
    assert!(
        (u64::from(lost)..=u64::from(lost) + 5).contains(&counted_lost),
        "dump-ports counts the lost ({lost} pings lost): {counted}"
    );
    d.vsctl_ok(&["set", "interface", b.port(), "options:loss="]);
    let (after, got) = rtt_ms(a, b, 20, "0.02");
    assert_eq!(got, 20, "no loss once the option is removed");
    assert!(
        after < base + 2.0,
        "RTT back to {after:.2} ms (was {base:.2})"
    );
    // Bad values are refused and change nothing.
    for bad in [
        "options:loss=150%",
        "options:delay=fast",
        "options:jitter=5ms",
    ] {
        let out = d.vsctl(&["set", "interface", b.port(), bad]);
        assert!(!out.success(), "{bad} was accepted");
    }
}

#[test]
fn rate_holds_tcp_to_the_limit() {
    let lab = Lab::new(2);
    let (a, b) = (lab.host(0), lab.host(1));
    lab.daemon
        .vsctl_ok(&["set", "interface", b.port(), "options:rate=50mbit"]);
    let mbit = iperf_mbit(a, b, 5);
    assert!(
        (40.0..=55.0).contains(&mbit),
        "rate=50mbit: iperf3 TCP {mbit:.1} Mbit/s"
    );
    lab.daemon
        .vsctl_ok(&["set", "interface", b.port(), "options:rate="]);
    let mbit = iperf_mbit(a, b, 3);
    assert!(mbit > 100.0, "without rate: {mbit:.1} Mbit/s");
}

/// ICMP echo frames (type `ty`) from `src` among `frames`.
fn echoes(frames: &[Vec<u8>], src: std::net::Ipv4Addr, ty: u8) -> usize {
    frames
        .iter()
        .filter(|f| icmp_type(f) == Some(ty) && f[26..30] == src.octets())
        .count()
}

#[test]
fn a_mirror_output_sees_exactly_the_selected_traffic() {
    let lab = Lab::new(3);
    let (a, b, c) = (lab.host(0), lab.host(1), lab.host(2));
    let d = &lab.daemon;
    let br = lab.bridge.as_str();
    d.vsctl_ok(&[
        "add-mirror",
        br,
        "m1",
        &format!("select-src={}", a.port()),
        &format!("output={}", c.port()),
    ]);
    let cap = tests::Capture::start(c.ns(), c.ifname()).unwrap();
    assert!(ping(a, b.ip(), 5));
    std::thread::sleep(Duration::from_millis(300));
    let seen = cap.stop();
    assert_eq!(echoes(&seen, a.ip(), 8), 5, "a's requests are mirrored");
    assert_eq!(echoes(&seen, b.ip(), 0), 0, "b's replies are not selected");
    let listed = d.vsctl_ok(&["list-mirrors", br]);
    assert!(
        listed.contains("m1") && listed.contains("select-src="),
        "{listed}"
    );
    // The output port forwards nothing of its own.
    assert!(!ping(c, b.ip(), 2), "a mirror output port must not forward");

    d.vsctl_ok(&["del-mirror", br, "m1"]);
    d.vsctl_ok(&[
        "add-mirror",
        br,
        "m2",
        &format!("select-dst={}", a.port()),
        &format!("output={}", c.port()),
    ]);
    let cap = tests::Capture::start(c.ns(), c.ifname()).unwrap();
    assert!(ping(a, b.ip(), 5));
    std::thread::sleep(Duration::from_millis(300));
    let seen = cap.stop();
    assert_eq!(echoes(&seen, b.ip(), 0), 5, "replies to a are mirrored");
    assert_eq!(echoes(&seen, a.ip(), 8), 0, "a's requests are not selected");

    // Bad mirrors are refused and change nothing.
    for bad in [
        vec!["add-mirror", br, "m3", "select-all"],
        vec!["add-mirror", br, "m3", "select-src=nope", "output=x"],
        vec![
            "add-mirror",
            br,
            "m2",
            "select-all",
            &format!("output={}", b.port()),
        ],
    ] {
        let out = d.vsctl(&bad);
        assert!(!out.success(), "{bad:?} was accepted");
    }
    d.vsctl_ok(&["del-mirror", br, "m2"]);
    let cap = tests::Capture::start(c.ns(), c.ifname()).unwrap();
    assert!(ping(a, b.ip(), 3));
    std::thread::sleep(Duration::from_millis(300));
    let seen = cap.stop();
    assert_eq!(
        echoes(&seen, a.ip(), 8) + echoes(&seen, b.ip(), 0),
        0,
        "no mirror, no copies"
    );
    assert!(
        ping(c, b.ip(), 2),
        "once the mirror is gone its port forwards again"
    );
}

#[test]
fn trace_follows_the_pipeline_without_changing_it() {
    let lab = Lab::new(3);
    let (a, b, c) = (lab.host(0), lab.host(1), lab.host(2));
    let d = &lab.daemon;
    let br = lab.bridge.as_str();
    // Learned: b's MAC is on b's port (the lab pinged everyone).
    let t = d.vsctl_json(&[
        "trace",
        br,
        &format!("in_port={}", a.port()),
        &format!("dl_src={}", a.mac_str()),
        &format!("dl_dst={}", b.mac_str()),
        "nw_proto=17",
        "tp_dst=53",
        "--format",
        "json",
    ]);
    let outs: Vec<&str> = t["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["port"].as_str().unwrap())
        .collect();
    assert_eq!(outs, vec![b.port()], "learned MAC: {t}");
    assert!(t["stages"].to_string().contains("l2-switch"), "{t}");
    // Unknown: flood to every other port.
    let unknown = "02:99:99:99:99:99";
    let t = d.vsctl_json(&[
        "trace",
        br,
        &format!("in_port={}", a.port()),
        &format!("dl_src={unknown}"),
        "dl_dst=02:88:88:88:88:88",
        "--format",
        "json",
    ]);
    let mut outs: Vec<&str> = t["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["port"].as_str().unwrap())
        .collect();
    outs.sort();
    let mut want = vec![b.port(), c.port(), br];
    want.sort();
    assert_eq!(outs, want, "unknown MAC floods: {t}");
    // Nothing was learned from the traced frames.
    assert!(
        !lab.fdb().iter().any(|e| e.mac == unknown),
        "a trace must not learn"
    );
    // A VLAN the access port does not allow: a drop with its reason.
    d.vsctl_ok(&["set", "port", a.port(), "tag=10"]);
    let t = d.vsctl_json(&[
        "trace",
        br,
        &format!("in_port={}", a.port()),
        "dl_vlan=20",
        "--format",
        "json",
    ]);
    assert_eq!(t["drop"], "vlan-not-allowed", "{t}");
    // The egress tag on a trunk.
    d.vsctl_ok(&["set", "port", b.port(), "trunks=10"]);
    let t = d.vsctl_json(&[
        "trace",
        br,
        &format!("in_port={}", a.port()),
        &format!("dl_dst={}", "ff:ff:ff:ff:ff:ff"),
        "--format",
        "json",
    ]);
    let on_b: Vec<_> = t["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["port"] == b.port())
        .collect();
    assert_eq!(on_b.len(), 1, "{t}");
    assert_eq!(on_b[0]["tag"], 10, "{t}");
    assert!(
        on_b[0]["frame"].as_str().unwrap()[24..32].starts_with("8100000a"),
        "{t}"
    );
    // Text form and bad input.
    let text = d.vsctl_ok(&["trace", br, &format!("in_port={}", a.port())]);
    assert!(
        text.contains("vlan-ingress") && text.contains("output"),
        "{text}"
    );
    let out = d.vsctl(&["trace", br, "in_port=nope"]);
    assert!(out.stderr.contains("no port named nope"), "{out}");
    let out = d.vsctl(&["trace", br, &format!("in_port={}", a.port()), "nw_src=1.2"]);
    assert!(out.stderr.contains("IPv4"), "{out}");
}

#[test]
fn a_live_trace_follows_a_real_ping() {
    let lab = Lab::new(2);
    let (a, b) = (lab.host(0), lab.host(1));
    let d = &lab.daemon;
    let mut live = d
        .bins()
        .vswctl_command()
        .arg("--rundir")
        .arg(d.rundir())
        .args([
            "trace",
            "--live",
            &lab.bridge,
            "nw_proto=1",
            &format!("nw_dst={}", b.ip()),
            "--count",
            "2",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert!(ping(a, b.ip(), 3));
    assert!(
        wait_until(Duration::from_secs(10), || live
            .try_wait()
            .ok()
            .flatten()
            .is_some()),
        "--count 2 did not end the live trace"
    );
    let out = live.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(text.matches("packet ").count(), 2, "{text}");
    assert_eq!(
        text.matches(&format!("in_port {}", a.port())).count(),
        2,
        "{text}"
    );
    assert_eq!(
        text.matches(&format!("output {} (untagged)", b.port()))
            .count(),
        2,
        "{text}"
    );
}

//! Proves the harness against the Linux kernel bridge, which is known to
//! work: if these pass, a failing switch test is the switch's fault.
//! (The kernel bridge copes with partial checksums itself, so this checks
//! the helpers, not the checksum handling a userspace switch needs.)
//!
//! Also checks that the helpers can fail (a broken path is reported, in
//! bounded time), that everything is cleaned up even on panic, and that
//! the daemon wrapper works, using fake vswitchd/vswctl scripts.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tests::bridge::LinuxBridge;
use tests::cmd::{ip, run};
use tests::daemon::write_executable;
use tests::frames::{self, count_token, new_token, tagged_test_frame, test_frame, BROADCAST};
use tests::traffic::pattern::Rng;
use tests::veth::link_exists;
use tests::{
    netns, ping, send_raw, tcp_transfer, udp_exchange, wait_ping, Capture, Daemon, DaemonOptions,
    Host,
};

/// `n` hosts on a fresh kernel bridge, reachable from host 0.
fn bridged(n: u8) -> (Vec<Host>, LinuxBridge) {
    let br = LinuxBridge::create();
    let hosts: Vec<Host> = (1..=n).map(Host::new).collect();
    for h in &hosts {
        br.enslave(h.port());
    }
    for h in &hosts[1..] {
        assert!(
            wait_ping(&hosts[0], h.ip(), Duration::from_secs(5)).is_some(),
            "kernel bridge {}: {} cannot reach {}",
            br.name(),
            hosts[0].describe(),
            h.describe()
        );
    }
    (hosts, br)
}

#[test]
fn ping_every_direction_on_kernel_bridge() {
    let (hosts, _br) = bridged(3);
    tests::assert_ping_mesh(&hosts, 3);
}

#[test]
fn tcp_50mb_on_kernel_bridge() {
    let (hosts, _br) = bridged(3);
    let r = tcp_transfer(&hosts[0], &hosts[2], 50_000_000);
    assert!(r.ok(), "{r}");
    let r = tcp_transfer(&hosts[2], &hosts[1], 5_000_000);
    assert!(r.ok(), "{r}");
}

#[test]
fn udp_each_way_on_kernel_bridge() {
    let (hosts, _br) = bridged(3);
    for (a, b) in [(0, 1), (1, 0), (0, 2), (2, 0), (1, 2), (2, 1)] {
        let r = udp_exchange(&hosts[a], &hosts[b], 300);
        assert!(r.ok(300), "{r}");
    }
}

#[test]
fn raw_frames_flood_and_capture_exactly_on_kernel_bridge() {
    let (hosts, _br) = bridged(3);
    let (a, b, c) = (&hosts[0], &hosts[1], &hosts[2]);
    let caps: Vec<Capture> = hosts
        .iter()
        .map(|h| Capture::start(h.ns(), h.ifname()).expect("start capture"))
        .collect();
    let unknown_dst = [0x02, 0xee, 0xee, 0xee, 0xee, 0x01];
    let sent = vec![
        test_frame(unknown_dst, a.mac(), new_token()),
        test_frame(BROADCAST, a.mac(), new_token()),
        tagged_test_frame(BROADCAST, a.mac(), 42, new_token()),
    ];
    let tokens: Vec<u64> = sent.iter().filter_map(|f| frames::token_of(f)).collect();
    assert_eq!(send_raw(a.ns(), a.ifname(), &sent).expect("send_raw"), 3);
    for (h, cap) in [(b, &caps[1]), (c, &caps[2])] {
        let all_seen = cap.wait_for(Duration::from_secs(3), |fs| {
            tokens.iter().all(|t| count_token(fs, *t) == 1)
        });
        assert!(
            all_seen,
            "host {} did not capture all 3 flooded frames",
            h.describe()
        );
        for f in &sent {
            let t = frames::token_of(f).expect("token");
            let got = cap
                .frames()
                .into_iter()
                .find(|g| frames::token_of(g) == Some(t));
            assert_eq!(
                got.as_ref(),
                Some(f),
                "frame changed on the way (VLAN tag restore?)"
            );
        }
    }
    let own = caps[0].frames();
    for t in &tokens {
        assert_eq!(
            count_token(&own, *t),
            0,
            "capture on the sender saw its own frame"
        );
    }
}

#[test]
fn raw_burst_is_fully_captured_on_kernel_bridge() {
    let (hosts, _br) = bridged(2);
    let (a, b) = (&hosts[0], &hosts[1]);
    let cap = Capture::start(b.ns(), b.ifname()).expect("start capture");
    let mut rng = Rng::new(7);
    let sent: Vec<Vec<u8>> = (0..3000)
        .map(|_| test_frame(BROADCAST, frames::random_mac(&mut rng), new_token()))
        .collect();
    assert_eq!(send_raw(a.ns(), a.ifname(), &sent).expect("send_raw"), 3000);
    let want: std::collections::HashSet<u64> =
        sent.iter().filter_map(|f| frames::token_of(f)).collect();
    let complete = cap.wait_for(Duration::from_secs(5), |fs| {
        fs.iter()
            .filter(|f| frames::token_of(f).is_some_and(|t| want.contains(&t)))
            .count()
            >= want.len()
    });
    let got = cap.stop();
    let n = got
        .iter()
        .filter(|f| frames::token_of(f).is_some_and(|t| want.contains(&t)))
        .count();
    assert!(complete, "captured {n} of 3000 frames of a burst");
}

/// The helpers must be able to fail: a host whose port is on no bridge is
/// unreachable, and each helper says so within its time limit.
#[test]
fn helpers_report_a_broken_path_in_bounded_time() {
    let (mut hosts, _br) = bridged(1);
    let lonely = Host::new(2); // its port is up but enslaved nowhere
    let a = hosts.remove(0);

    let t = Instant::now();
    assert!(
        !ping(&a, lonely.ip(), 2),
        "ping reached a host on no bridge"
    );
    let r = tcp_transfer(&a, &lonely, 1_000_000);
    assert!(!r.ok(), "TCP 'succeeded' to a host on no bridge: {r}");
    assert!(r.client_error.is_some(), "no client error reported: {r}");
    let u = udp_exchange(&a, &lonely, 20);
    assert!(
        !u.ok(20) && u.received == 0,
        "UDP 'arrived' at a host on no bridge: {u}"
    );
    assert!(
        t.elapsed() < Duration::from_secs(30),
        "failure detection took {:?}",
        t.elapsed()
    );

    let cap = Capture::start(lonely.ns(), lonely.ifname()).expect("capture");
    let tok = new_token();
    send_raw(a.ns(), a.ifname(), &[test_frame(BROADCAST, a.mac(), tok)]).expect("send");
    assert!(
        !cap.wait_for(Duration::from_millis(500), |fs| count_token(fs, tok) > 0),
        "a frame crossed to a host on no bridge"
    );
}

/// The ns-side veth keeps the kernel default tx-checksumming=on, so the
/// switch tests really exercise partial checksums; IPv6 is off inside the
/// host (no background chatter) and only there.
#[test]
fn hosts_keep_default_offloads_and_are_quiet() {
    let root_key = "/proc/sys/net/ipv6/conf/default/disable_ipv6";
    let root_before = std::fs::read_to_string(root_key).unwrap_or_default();
    let h = Host::new(1);
    let key = format!("/proc/sys/net/ipv6/conf/{}/disable_ipv6", h.ifname());
    let mut c = std::process::Command::new("ip");
    c.args(["netns", "exec", h.ns(), "cat", &key]);
    let out = run(c, Duration::from_secs(10));
    assert_eq!(
        out.stdout.trim(),
        "1",
        "IPv6 not off inside the host:\n{out}"
    );
    let root_after = std::fs::read_to_string(root_key).unwrap_or_default();
    assert_eq!(
        root_before, root_after,
        "the harness changed the root namespace's {root_key}"
    );

    let mut c = std::process::Command::new("ip");
    c.args(["netns", "exec", h.ns(), "ethtool", "-k", h.ifname()]);
    let out = run(c, Duration::from_secs(10));
    assert!(
        out.success(),
        "ethtool is needed (scripts/test.sh installs it):\n{out}"
    );
    assert!(
        out.stdout
            .lines()
            .any(|l| l.trim() == "tx-checksumming: on"),
        "host veth does not have the default tx-checksumming on:\n{out}"
    );
}

fn netns_listed(name: &str) -> bool {
    let out = ip(&["netns", "list"]);
    out.stdout
        .lines()
        .any(|l| l.split_whitespace().next() == Some(name))
}

#[test]
fn everything_is_removed_on_drop_and_on_panic() {
    let (ns, port, br) = {
        let (hosts, br) = bridged(2);
        let names = (
            hosts[1].ns().to_string(),
            hosts[1].port().to_string(),
            br.name().to_string(),
        );
        assert!(netns_listed(&names.0) && link_exists(&names.1) && link_exists(&names.2));
        names
    };
    assert!(
        !netns_listed(&ns) && !netns::exists(&ns),
        "namespace {ns} left behind"
    );
    assert!(!link_exists(&port), "veth {port} left behind");
    assert!(!link_exists(&br), "bridge {br} left behind");

    let (tx, rx) = std::sync::mpsc::channel();
    let res = std::thread::spawn(move || {
        let h = Host::new(3);
        tx.send((h.ns().to_string(), h.port().to_string())).unwrap();
        panic!("deliberate panic to test cleanup");
    })
    .join();
    assert!(res.is_err());
    let (ns, port) = rx.recv().unwrap();
    assert!(
        !netns_listed(&ns),
        "namespace {ns} left behind after a panic"
    );
    assert!(!link_exists(&port), "veth {port} left behind after a panic");
}

#[test]
fn host_without_link_attaches_later() {
    let mut h = Host::without_link(1);
    assert!(!link_exists(h.port()));
    h.attach_link();
    assert!(link_exists(h.port()));
    h.detach_link();
    assert!(!link_exists(h.port()));
    h.attach_link();
    let peer = Host::new(2);
    let br = LinuxBridge::create();
    br.enslave(h.port());
    br.enslave(peer.port());
    assert!(wait_ping(&h, peer.ip(), Duration::from_secs(5)).is_some());
}

// ---- the daemon wrapper, driven by fake binaries ----

const FAKE_VSWITCHD: &str = r#"#!/usr/bin/python3
import os, signal, socket, sys
a = sys.argv[1:]
rundir = a[a.index("--rundir") + 1]
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
path = os.path.join(rundir, "vswitchd.sock")
try:
    os.unlink(path)
except FileNotFoundError:
    pass
s = socket.socket(socket.AF_UNIX)
s.bind(path)
s.listen(16)
print("fake vswitchd up: " + " ".join(a), file=sys.stderr, flush=True)
while True:
    c, _ = s.accept()
    c.close()
"#;

const FAKE_VSWCTL: &str = r#"#!/usr/bin/python3
import json, sys
if "fail" in sys.argv:
    print("fake vswctl: asked to fail", file=sys.stderr)
    sys.exit(3)
print(json.dumps(sys.argv[1:]))
"#;

// Plain sh, not Python: the early-exit test demands an answer within 2 s,
// and an interpreter start-up on a loaded 2-core machine can take that long.
const CRASHING_VSWITCHD: &str = "#!/bin/sh\necho 'boom: cannot open the db' >&2\nexit 1\n";
const SILENT_VSWITCHD: &str = "#!/bin/sh\nexec sleep 60\n";

/// A directory with a fake vswitchd (given) and the fake vswctl.
struct FakeBins(PathBuf);

impl FakeBins {
    fn new(vswitchd: &str) -> FakeBins {
        let dir = std::env::temp_dir().join(tests::names::unique("fb"));
        std::fs::create_dir_all(&dir).unwrap();
        write_executable(&dir.join("vswitchd"), vswitchd).unwrap();
        write_executable(&dir.join("vswctl"), FAKE_VSWCTL).unwrap();
        FakeBins(dir)
    }

    fn opts(&self) -> DaemonOptions {
        DaemonOptions {
            bin_dir: Some(self.0.clone()),
            extra_args: vec!["--log-level".into(), "debug".into()],
            start_timeout: Some(Duration::from_secs(2)),
            netns: None,
        }
    }
}

impl Drop for FakeBins {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}

#[test]
fn daemon_wrapper_starts_talks_stops_and_restarts() {
    let bins = FakeBins::new(FAKE_VSWITCHD);
    let mut d = Daemon::start_with(bins.opts());
    let rundir = d.rundir().to_path_buf();
    assert!(d.is_running());
    let argv = d.vsctl_json(&["list-br"]);
    let rd = rundir.display().to_string();
    assert_eq!(
        argv,
        serde_json::json!(["--rundir", rd, "--format", "json", "list-br"])
    );
    let out = d.vsctl(&["fail"]);
    assert_eq!(out.code, Some(3), "{out}");
    assert!(out.stderr.contains("asked to fail"), "{out}");
    let log = read(d.log_path());
    assert!(log.contains("fake vswitchd up: --rundir"), "log: {log}");
    assert!(
        log.contains(&format!("--db {rd}/conf.db --pmd-cpus 1 --log-level debug")),
        "log: {log}"
    );

    assert!(d.stop().success());
    assert!(!d.is_running());
    d.restart();
    assert!(d.is_running());
    d.kill9();
    assert!(!d.is_running());
    d.restart();
    d.vsctl_ok(&["show"]);
    let log = read(d.log_path());
    assert!(log.contains("start #3"), "log: {log}");
    drop(d);
    assert!(
        !rundir.exists(),
        "run directory {} left behind",
        rundir.display()
    );
}

#[test]
fn daemon_wrapper_reports_an_early_exit_with_the_log() {
    let bins = FakeBins::new(CRASHING_VSWITCHD);
    let t = Instant::now();
    let err = Daemon::try_start(bins.opts())
        .err()
        .expect("start must fail");
    assert!(err.contains("exited"), "{err}");
    assert!(
        err.contains("boom: cannot open the db"),
        "log tail missing: {err}"
    );
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "took {:?}",
        t.elapsed()
    );
}

#[test]
fn daemon_wrapper_gives_up_on_a_silent_daemon() {
    let bins = FakeBins::new(SILENT_VSWITCHD);
    let t = Instant::now();
    let err = Daemon::try_start(bins.opts())
        .err()
        .expect("start must fail");
    assert!(err.contains("did not accept"), "{err}");
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "took {:?}",
        t.elapsed()
    );
}

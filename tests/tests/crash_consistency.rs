//! The kernel side and the stored configuration agree after a crash: an
//! attachment veth that no stored port owns (a `kill -9` between the kernel
//! change and the commit) is deleted when the daemon starts, with the
//! container's end, while other daemons' veths are left alone (each
//! daemon's veths carry a MAC derived from its run directory). A TAP
//! attachment's device, inside its container, is found through the
//! journal `RUNDIR/tap-intents` instead.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use serde_json::Value;
use tests::container::Container;
use tests::Daemon;

/// The tests here run one at a time: each looks at every attachment veth
/// in the root namespace (no other test binary makes them there while this
/// one runs).
static LOCK: Mutex<()> = Mutex::new(());

/// The attachment veths (`vsw` and 12 hex digits) in the root namespace.
fn root_veths() -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for e in std::fs::read_dir("/sys/class/net")
        .expect("/sys/class/net")
        .flatten()
    {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with("vsw") && name.len() == 15 {
            out.insert(name);
        }
    }
    out
}

/// The ports of bridge `br` that are attachments, from `list-attachments`.
fn attached_ports(d: &Daemon, br: &str) -> BTreeSet<String> {
    match d.vsctl_json(&["list-attachments", br]) {
        Value::Array(v) => v
            .iter()
            .filter_map(|a| a["port"].as_str().map(String::from))
            .collect(),
        other => panic!("list-attachments: {other}"),
    }
}

/// Removes port `port` from the stored database of a stopped daemon, as if
/// it had died before committing the attach that made the veth.
fn forget_port(db: &Path, br: &str, port: &str) {
    let text = std::fs::read_to_string(db).expect("read db");
    let mut v: Value = serde_json::from_str(&text).expect("db is JSON");
    let removed = v["bridges"][br]["ports"]
        .as_object_mut()
        .and_then(|ports| ports.remove(port));
    assert!(removed.is_some(), "{port} is not in the database");
    std::fs::write(db, serde_json::to_string_pretty(&v).unwrap()).expect("write db");
}

#[test]
fn an_orphaned_attachment_veth_is_removed_at_start_and_others_are_left() {
    let _one = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let mut a = Daemon::start();
    let b = Daemon::start();
    let (bra, brb) = (tests::names::unique("br"), tests::names::unique("br"));
    a.vsctl_ok(&["add-br", &bra]);
    b.vsctl_ok(&["add-br", &brb]);
    let (ca, cb) = (Container::named(), Container::named());
    a.vsctl_ok(&["attach", &bra, &ca.name(), "10.87.0.2/24", "--type", "veth"]);
    b.vsctl_ok(&["attach", &brb, &cb.name(), "10.87.0.3/24", "--type", "veth"]);
    let port_a = attached_ports(&a, &bra)
        .into_iter()
        .next()
        .expect("a's port");
    let port_b = attached_ports(&b, &brb)
        .into_iter()
        .next()
        .expect("b's port");
    assert_eq!(
        root_veths(),
        BTreeSet::from([port_a.clone(), port_b.clone()])
    );

    a.stop();
    forget_port(a.db(), &bra, &port_a);
    a.restart();
    assert_eq!(
        root_veths(),
        BTreeSet::from([port_b]),
        "a's orphan is still there, or b's veth went"
    );
    assert!(
        ca.link("eth1").is_none(),
        "the container's end is still there"
    );
    assert!(
        cb.link("eth1").is_some(),
        "another daemon's attachment was touched"
    );
}

/// Kills the daemon at a pseudo-random moment of an attach (with
/// `attach_args` after the container) or, for `detach`, of the detach of an
/// attachment made first; then starts it again.
struct Killer {
    seed: u64,
    /// How long the last attach took (microseconds): kills land anywhere
    /// in a command that takes about this long.
    took: u64,
}

impl Killer {
    fn new(seed: u64) -> Killer {
        Killer { seed, took: 50_000 }
    }

    /// True when vswctl got its answer before the kill.
    fn mid_command(
        &mut self,
        d: &mut Daemon,
        br: &str,
        c: &Container,
        detach: bool,
        attach_args: &[&str],
    ) -> bool {
        let attach: Vec<String> = ["attach", br, &c.name()]
            .into_iter()
            .map(String::from)
            .chain(attach_args.iter().map(|a| a.to_string()))
            .collect();
        if detach {
            let t = std::time::Instant::now();
            let args: Vec<&str> = attach.iter().map(String::as_str).collect();
            d.vsctl_ok(&args);
            self.took = t.elapsed().as_micros() as u64;
        }
        let runner = d.vsctl_runner();
        let command = if detach {
            vec!["detach".to_string(), br.to_string(), c.name()]
        } else {
            attach
        };
        let job = std::thread::spawn(move || {
            let args: Vec<&str> = command.iter().map(String::as_str).collect();
            runner.run(&args)
        });
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        std::thread::sleep(Duration::from_micros(
            self.seed % (self.took * 3 / 2).max(1),
        ));
        d.kill9();
        let answered = job.join().expect("vswctl thread").success();
        d.restart();
        answered
    }
}

#[test]
fn kill_9_during_attach_and_detach_leaves_no_orphan() {
    let _one = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let mut d = Daemon::start();
    let br = tests::names::unique("br");
    d.vsctl_ok(&["add-br", &br]);
    let mut kill = Killer::new(0x2545_f491_4f6c_dd1d);
    let mut cut_short = 0;
    for round in 0..20 {
        let c = Container::named();
        // Attach or detach while the daemon is killed at some moment of it.
        let veth = ["10.86.0.2/24", "--type", "veth"];
        if !kill.mid_command(&mut d, &br, &c, round % 2 == 1, &veth) {
            cut_short += 1;
        }
        // What the kernel has is what the configuration says: every
        // attachment veth is an attachment port, and every attachment
        // port's veth exists (the vanished-port scan removes a port whose
        // veth is gone within a few seconds).
        let agree = tests::poll::wait_until(Duration::from_secs(5), || {
            root_veths() == attached_ports(&d, &br)
        });
        assert!(
            agree,
            "round {round}: veths {:?}, attachments {:?}",
            root_veths(),
            attached_ports(&d, &br)
        );
        let attached = !root_veths().is_empty();
        assert_eq!(
            c.link("eth1").is_some(),
            attached,
            "round {round}: container end"
        );
        if attached {
            d.vsctl_ok(&["detach", &br, &c.name()]);
        }
    }
    eprintln!(
        "{cut_short} of 20 rounds were killed before vswctl got an answer (a command took {} us)",
        kill.took
    );
}

/// Whether the container has a TAP attachment's interface.
fn has_eth1(c: &Container) -> bool {
    c.link("eth1").is_some()
}

#[test]
fn a_journalled_tap_that_no_port_owns_is_deleted_at_start() {
    let _one = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let mut d = Daemon::start();
    let br = tests::names::unique("br");
    d.vsctl_ok(&["add-br", &br]);
    let (kept, lost) = (Container::named(), Container::named());
    for (c, ip) in [(&kept, "10.87.0.2/24"), (&lost, "10.87.0.3/24")] {
        d.vsctl_ok(&["attach", &br, &c.name(), ip, "--type", "tap"]);
    }
    let journal = d.rundir().join("tap-intents");
    assert!(
        std::fs::read_to_string(&journal)
            .unwrap_or_default()
            .is_empty(),
        "stored attachments leave no journal entry"
    );
    d.kill9();
    // As if the daemon had died after making `lost`'s device and before
    // storing it: the port is not in the database, the device journalled.
    let port = {
        let text = std::fs::read_to_string(d.db()).unwrap();
        let v: Value = serde_json::from_str(&text).unwrap();
        v["bridges"][&br]["ports"]
            .as_object()
            .unwrap()
            .iter()
            .find(|(_, p)| p["options"]["netns"] == lost.ns_path().display().to_string())
            .map(|(n, _)| n.clone())
            .expect("lost's port")
    };
    forget_port(d.db(), &br, &port);
    std::fs::write(&journal, format!("{}\teth1\n", lost.ns_path().display())).unwrap();
    d.restart();
    assert!(
        !has_eth1(&lost),
        "the orphaned TAP is still in its container"
    );
    assert!(has_eth1(&kept), "the stored attachment lost its TAP");
    assert!(!journal.exists(), "the journal is emptied at start");
    assert_eq!(attached_ports(&d, &br).len(), 1);
}

#[test]
fn kill_9_during_tap_attach_and_detach_leaves_no_orphan() {
    let _one = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let mut d = Daemon::start();
    let br = tests::names::unique("br");
    d.vsctl_ok(&["add-br", &br]);
    let mut kill = Killer::new(0x9e37_79b9_7f4a_7c15);
    for round in 0..10 {
        let c = Container::named();
        let tap = ["10.88.0.2/24", "--type", "tap"];
        kill.mid_command(&mut d, &br, &c, round % 2 == 1, &tap);
        // The container has its TAP exactly when the configuration has
        // the attachment.
        let attached = attached_ports(&d, &br);
        assert!(attached.len() <= 1, "round {round}: {attached:?}");
        assert_eq!(
            has_eth1(&c),
            !attached.is_empty(),
            "round {round}: container interface vs attachments {attached:?}"
        );
        if !attached.is_empty() {
            d.vsctl_ok(&["detach", &br, &c.name()]);
        }
        assert!(!has_eth1(&c), "round {round}: detach left the TAP");
    }
}

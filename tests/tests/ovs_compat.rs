//! vswctl run as `ovs-vsctl` (through a symlink, as container tools find
//! it) must answer the way Open vSwitch does: same standard output, same
//! standard error, same exit code.
//!
//! [`RECORDED`] was recorded once by hand with Open vSwitch 3.1.0 (Debian 12
//! `openvswitch-switch`, ovsdb-server and ovs-vswitchd with a userspace
//! datapath, every command run as `ovs-vsctl --db=unix:DB ARGS...`), with a
//! real device for PORT. The test replays the same script against vswitchd
//! with fresh names; OVS is not needed to run it. To re-record, see
//! docs/ovs-vsctl-compat.md.

use std::os::unix::fs::symlink;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use tests::cmd::{run, Output};
use tests::{names, Daemon, Host};

/// One recorded command: arguments (with `{BR}`, `{NOBR}`, `{PORT}`,
/// `{NOPORT}` for the names), and what Open vSwitch answered.
struct Step {
    args: &'static [&'static str],
    code: i32,
    stdout: &'static str,
    stderr: &'static str,
}

/// The script a container tool or lab script would run: make a bridge, add
/// a port with a tag and external-ids, list, read columns back, change
/// them, make mistakes, delete everything.
#[rustfmt::skip]
const RECORDED: &[Step] = &[
    Step { args: &["--timeout=10", "--may-exist", "add-br", "{BR}", "--", "set", "Bridge", "{BR}", "datapath_type=netdev"], code: 0, stdout: "", stderr: "" },
    Step { args: &["br-exists", "{BR}"], code: 0, stdout: "", stderr: "" },
    Step { args: &["br-exists", "{NOBR}"], code: 2, stdout: "", stderr: "" },
    Step { args: &["list-br"], code: 0, stdout: "{BR}\n", stderr: "" },
    Step { args: &["--may-exist", "add-br", "{BR}"], code: 0, stdout: "", stderr: "" },
    Step { args: &["add-br", "{BR}"], code: 1, stdout: "", stderr: "ovs-vsctl: cannot create a bridge named {BR} because a bridge named {BR} already exists\n" },
    Step { args: &["add-port", "{BR}", "{PORT}", "tag=100", "--", "set", "Interface", "{PORT}", "external-ids:container_id=c1", "external-ids:container_iface=eth1"], code: 0, stdout: "", stderr: "" },
    Step { args: &["--may-exist", "add-port", "{BR}", "{PORT}"], code: 0, stdout: "", stderr: "" },
    Step { args: &["add-port", "{BR}", "{PORT}"], code: 1, stdout: "", stderr: "ovs-vsctl: cannot create a port named {PORT} because a port named {PORT} already exists on bridge {BR}\n" },
    Step { args: &["list-ports", "{BR}"], code: 0, stdout: "{PORT}\n", stderr: "" },
    Step { args: &["port-to-br", "{PORT}"], code: 0, stdout: "{BR}\n", stderr: "" },
    Step { args: &["port-to-br", "{NOPORT}"], code: 1, stdout: "", stderr: "ovs-vsctl: no port named {NOPORT}\n" },
    Step { args: &["get", "Port", "{PORT}", "tag"], code: 0, stdout: "100\n", stderr: "" },
    Step { args: &["get", "Interface", "{PORT}", "external_ids:container_id"], code: 0, stdout: "c1\n", stderr: "" },
    Step { args: &["get", "interface", "{PORT}", "external-ids:container_iface"], code: 0, stdout: "eth1\n", stderr: "" },
    Step { args: &["get", "Interface", "{PORT}", "external_ids"], code: 0, stdout: "{container_id=c1, container_iface=eth1}\n", stderr: "" },
    Step { args: &["get", "Interface", "{PORT}", "external_ids:nokey"], code: 1, stdout: "", stderr: "ovs-vsctl: no key \"nokey\" in Interface record \"{PORT}\" column external_ids\n" },
    Step { args: &["get", "Port", "{NOPORT}", "tag"], code: 1, stdout: "", stderr: "ovs-vsctl: no row \"{NOPORT}\" in table Port\n" },
    Step { args: &["get", "Port", "{PORT}", "trunks"], code: 0, stdout: "[]\n", stderr: "" },
    Step { args: &["get", "Port", "{PORT}", "vlan_mode"], code: 0, stdout: "[]\n", stderr: "" },
    Step { args: &["get", "Interface", "{PORT}", "type"], code: 0, stdout: "\"\"\n", stderr: "" },
    Step { args: &["get", "Port", "{PORT}", "tag", "trunks"], code: 0, stdout: "100\n[]\n", stderr: "" },
    Step { args: &["set", "port", "{PORT}", "tag=200"], code: 0, stdout: "", stderr: "" },
    Step { args: &["get", "Port", "{PORT}", "tag"], code: 0, stdout: "200\n", stderr: "" },
    Step { args: &["set", "Port", "{PORT}", "tag=[]"], code: 0, stdout: "", stderr: "" },
    Step { args: &["get", "Port", "{PORT}", "tag"], code: 0, stdout: "[]\n", stderr: "" },
    Step { args: &["set", "Interface", "{PORT}", "external_ids:container_id=c2"], code: 0, stdout: "", stderr: "" },
    Step { args: &["get", "Interface", "{PORT}", "external_ids:container_id"], code: 0, stdout: "c2\n", stderr: "" },
    Step { args: &["set", "Interface", "{PORT}", "external_ids:note=hello world"], code: 0, stdout: "", stderr: "" },
    Step { args: &["get", "Interface", "{PORT}", "external_ids:note"], code: 0, stdout: "\"hello world\"\n", stderr: "" },
    Step { args: &["get", "Interface", "{PORT}", "external_ids"], code: 0, stdout: "{container_id=c2, container_iface=eth1, note=\"hello world\"}\n", stderr: "" },
    Step { args: &["get", "Interface", "{PORT}", "tag"], code: 1, stdout: "", stderr: "ovs-vsctl: Interface does not contain a column whose name matches \"tag\"\n" },
    Step { args: &["get", "Port", "{PORT}", "colour"], code: 1, stdout: "", stderr: "ovs-vsctl: Port does not contain a column whose name matches \"colour\"\n" },
    Step { args: &["del-port", "{BR}", "{PORT}"], code: 0, stdout: "", stderr: "" },
    Step { args: &["--if-exists", "del-port", "{BR}", "{PORT}"], code: 0, stdout: "", stderr: "" },
    Step { args: &["del-port", "{BR}", "{PORT}"], code: 1, stdout: "", stderr: "ovs-vsctl: no port named {PORT}\n" },
    Step { args: &["list-ports", "{BR}"], code: 0, stdout: "", stderr: "" },
    Step { args: &["add-port", "{BR}", "{PORT}", "--", "set", "interface", "{PORT}", "external_ids:container_id=c3"], code: 0, stdout: "", stderr: "" },
    Step { args: &["del-port", "{PORT}"], code: 0, stdout: "", stderr: "" },
    Step { args: &["add-port", "{NOBR}", "{PORT}"], code: 1, stdout: "", stderr: "ovs-vsctl: no bridge named {NOBR}\n" },
    Step { args: &["frobnicate"], code: 1, stdout: "", stderr: "ovs-vsctl: unknown command 'frobnicate'; use --help for help\n" },
    Step { args: &["--if-exists", "del-br", "{NOBR}"], code: 0, stdout: "", stderr: "" },
    Step { args: &["del-br", "{NOBR}"], code: 1, stdout: "", stderr: "ovs-vsctl: no bridge named {NOBR}\n" },
    Step { args: &["del-br", "{BR}"], code: 0, stdout: "", stderr: "" },
    Step { args: &["br-exists", "{BR}"], code: 2, stdout: "", stderr: "" },
    Step { args: &["list-br"], code: 0, stdout: "", stderr: "" },
];

/// A temporary directory holding an `ovs-vsctl` symlink to vswctl.
struct Shim {
    dir: PathBuf,
}

impl Shim {
    fn new(d: &Daemon) -> Shim {
        let dir = std::env::temp_dir().join(names::unique("ov"));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        let shim = Shim { dir };
        let link = shim.path();
        symlink(&d.bins().vswctl, &link)
            .unwrap_or_else(|e| panic!("symlink {}: {e}", link.display()));
        shim
    }

    fn path(&self) -> PathBuf {
        self.dir.join("ovs-vsctl")
    }

    /// Runs `ovs-vsctl ARGS...` against daemon `d` (found through
    /// VSWITCH_RUNDIR, as a tool that knows nothing of vswitch would).
    fn run(&self, d: &Daemon, args: &[&str]) -> Output {
        let mut c = Command::new(self.path());
        c.env("VSWITCH_RUNDIR", d.rundir()).args(args);
        run(c, Duration::from_secs(10))
    }
}

impl Drop for Shim {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn script_gets_the_same_answers_as_open_vswitch() {
    let d = Daemon::start();
    let host = Host::new(1);
    let shim = Shim::new(&d);
    let (br, nobr, noport) = (
        names::unique("br"),
        names::unique("nb"),
        names::unique("np"),
    );
    let fill = |s: &str| {
        s.replace("{BR}", &br)
            .replace("{NOBR}", &nobr)
            .replace("{NOPORT}", &noport)
            .replace("{PORT}", host.port())
    };
    let mut mismatches = Vec::new();
    for step in RECORDED {
        let args: Vec<String> = step.args.iter().map(|a| fill(a)).collect();
        let mut full = vec!["--db=unix:/var/run/openvswitch/db.sock"];
        full.extend(args.iter().map(String::as_str));
        let out = shim.run(&d, &full);
        let want = (Some(step.code), fill(step.stdout), fill(step.stderr));
        let got = (out.code, out.stdout.clone(), out.stderr.clone());
        if want != got {
            mismatches.push(format!(
                "ovs-vsctl {}\n  Open vSwitch: exit {:?}, stdout {:?}, stderr {:?}\n  vswitch:      exit {:?}, stdout {:?}, stderr {:?}",
                args.join(" "),
                want.0,
                want.1,
                want.2,
                got.0,
                got.1,
                got.2
            ));
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} of {} commands answered differently from Open vSwitch:\n{}",
        mismatches.len(),
        RECORDED.len(),
        mismatches.join("\n")
    );
}

#[test]
fn unsupported_things_fail_loudly() {
    let d = Daemon::start();
    let shim = Shim::new(&d);
    let br = names::unique("br");
    assert!(shim.run(&d, &["add-br", &br]).success());
    let before = d.vsctl_ok(&["--format", "json", "show"]);
    for (args, needle) in [
        (vec!["destroy", "Mirror", "m"], "does not support"),
        (vec!["add-bond", &br, "bond0", "a", "b"], "does not support"),
        (vec!["create", "Mirror", "name=m"], "--id=@NAME"),
        (
            vec!["--id=@b", "create", "Bridge", "name=b"],
            "not supported",
        ),
        (vec!["--dry-run", "list-br"], "not supported"),
        (
            vec!["set", "Open_vSwitch", ".", "other_config:x=1"],
            "not supported",
        ),
        (
            vec!["set", "Bridge", &br, "stp_enable=true"],
            "not supported",
        ),
        (
            vec!["set", "Bridge", &br, "datapath_type=system"],
            "not supported",
        ),
        (vec!["add-br", "fake0", &br, "10"], "fake bridge"),
        (
            vec!["set", "Bridge", &br, "external_ids={a=b}"],
            "whole map",
        ),
    ] {
        let out = shim.run(&d, &args);
        assert_eq!(out.code, Some(1), "must fail:\n{out}");
        assert!(
            out.stderr.starts_with("ovs-vsctl: ") && out.stderr.contains(needle),
            "the message must say {needle:?}:\n{out}"
        );
        assert!(out.stdout.is_empty(), "{out}");
    }
    assert_eq!(
        d.vsctl_ok(&["--format", "json", "show"]),
        before,
        "a refused command changed something"
    );
    // A port whose device is missing: added, with Open vSwitch's warning.
    let missing = names::unique("p");
    let out = shim.run(&d, &["add-port", &br, &missing]);
    assert_eq!(out.code, Some(0), "{out}");
    assert_eq!(
        out.stderr,
        format!(
            "ovs-vsctl: Error detected while setting up '{missing}': could not open network device {missing} (No such device).  See ovs-vswitchd log for details.\n"
        )
    );
    // vswctl under its own name is unchanged.
    assert_eq!(d.vsctl(&["frobnicate"]).code, Some(1));
    assert!(d.vsctl_ok(&["list-ports", &br]).contains(&missing));
}

/// An OVS lab script joining two bridges with a patch pair, as in
/// Open vSwitch's own documentation, then impairing a port.
#[test]
fn patch_ports_the_ovs_way() {
    let d = Daemon::start();
    let shim = Shim::new(&d);
    let (b1, b2) = (names::unique("br"), names::unique("br"));
    let (p1, p2) = (names::unique("pa"), names::unique("pb"));
    let (h1, h2) = (Host::new(1), Host::new(2));
    for args in [
        vec!["add-br", &b1, "--", "add-br", &b2],
        vec!["add-port", &b1, h1.port(), "--", "add-port", &b2, h2.port()],
        vec![
            "add-port",
            &b1,
            &p1,
            "--",
            "set",
            "interface",
            &p1,
            "type=patch",
            &format!("options:peer={p2}"),
        ],
        vec![
            "add-port",
            &b2,
            &p2,
            "--",
            "set",
            "interface",
            &p2,
            "type=patch",
            &format!("options:peer={p1}"),
        ],
    ] {
        let out = shim.run(&d, &args);
        assert!(out.success(), "{out}");
    }
    let out = shim.run(&d, &["get", "interface", &p1, "type"]);
    assert_eq!(out.stdout, "patch\n", "{out}");
    assert!(
        tests::wait_ping(&h1, h2.ip(), Duration::from_secs(10)).is_some(),
        "no ping across a patch pair made with ovs-vsctl"
    );
}

/// `find` and `list` with the output options scripts use: ovs-docker finds
/// a container's port with `--data=bare --no-heading --columns=name find
/// interface external_ids:container_id=C external_ids:container_iface=I`.
#[test]
fn find_and_list_print_records_as_ovs_vsctl_does() {
    let d = Daemon::start();
    let shim = Shim::new(&d);
    let br = names::unique("br");
    let (p1, p2) = (names::unique("p"), names::unique("p"));
    let ok = |args: &[&str]| {
        let out = shim.run(&d, args);
        assert_eq!(out.code, Some(0), "{out}");
        out.stdout
    };
    ok(&["add-br", &br]);
    ok(&[
        "add-port",
        &br,
        &p1,
        "--",
        "set",
        "interface",
        &p1,
        "external_ids:container_id=c1",
        "external_ids:container_iface=eth1",
    ]);
    ok(&["add-port", &br, &p2, "tag=5"]);
    let find = |id: &str| {
        ok(&[
            "--data=bare",
            "--no-heading",
            "--columns=name",
            "find",
            "interface",
            &format!("external_ids:container_id={id}"),
            "external_ids:container_iface=eth1",
        ])
    };
    assert_eq!(find("c1"), format!("{p1}\n"));
    assert_eq!(find("c9"), "");
    assert_eq!(
        ok(&["--columns=name,tag", "list", "Port", &p2]),
        format!("name                : {p2}\ntag                 : 5\n")
    );
    assert_eq!(
        ok(&["--bare", "--columns=tag,name", "find", "port", "tag=5"]),
        format!("5\n{p2}\n")
    );
    let w = p2.len().max(4);
    assert_eq!(
        ok(&[
            "--format=table",
            "--columns=name,tag",
            "find",
            "Port",
            "tag=5"
        ]),
        format!("{:<w$} tag\n{} ---\n{p2:<w$} 5\n", "name", "-".repeat(w))
    );
    // Every column by default, name first; records apart by a blank line.
    let all = ok(&["list", "interface"]);
    assert!(all.starts_with("name                : "), "{all}");
    assert_eq!(all.matches("\n\n").count(), 1, "{all}");
    assert!(
        all.contains("external_ids        : {container_id=c1, container_iface=eth1}"),
        "{all}"
    );
    for (args, needle) in [
        (
            vec!["--columns=colour", "list", "Port"],
            "does not contain a column",
        ),
        (vec!["list", "Flow_Table"], "not supported"),
        (vec!["find", "Port", "colour=red"], "no column"),
        (vec!["--format=csv", "list", "Port"], "not supported"),
    ] {
        let out = shim.run(&d, &args);
        assert_eq!(out.code, Some(1), "{args:?} must fail:\n{out}");
        assert!(out.stderr.contains(needle), "{args:?}: {out}");
    }
}

/// `show` prints Open vSwitch 3.1's format: the Open_vSwitch row's UUID,
/// each bridge, its ports (the bridge's own internal port among them) with
/// their tag or trunks, each port's interface with its type when it is not
/// a system device, and `ovs_version`.
#[test]
fn show_prints_the_ovs_vsctl_format() {
    let d = Daemon::start();
    let shim = Shim::new(&d);
    let (h1, h2) = (Host::new(1), Host::new(2));
    let br = names::unique("br");
    let int = names::unique("i");
    for args in [
        vec!["add-br", &br],
        vec!["add-port", &br, h1.port(), "tag=10"],
        vec!["add-port", &br, h2.port(), "trunks=[20,10]"],
        vec![
            "add-port",
            &br,
            &int,
            "--",
            "set",
            "Interface",
            &int,
            "type=internal",
        ],
    ] {
        let out = shim.run(&d, &args);
        assert!(out.success(), "{args:?}: {out}");
    }
    let mut ports = vec![
        (
            br.clone(),
            format!(
                "        Port {br}\n            Interface {br}\n                type: internal\n"
            ),
        ),
        (
            h1.port().to_string(),
            format!(
                "        Port {p}\n            tag: 10\n            Interface {p}\n",
                p = h1.port()
            ),
        ),
        (
            h2.port().to_string(),
            format!(
                "        Port {p}\n            trunks: [10, 20]\n            Interface {p}\n",
                p = h2.port()
            ),
        ),
        (
            int.clone(),
            format!(
                "        Port {int}\n            Interface {int}\n                type: internal\n"
            ),
        ),
    ];
    ports.sort();
    let mut want = format!("    Bridge {br}\n");
    for (_, text) in &ports {
        want.push_str(text);
    }
    want.push_str("    ovs_version: \"3.1.0\"\n");
    let out = shim.run(&d, &["show"]);
    assert_eq!(out.code, Some(0), "{out}");
    let (uuid, rest) = out
        .stdout
        .split_once('\n')
        .unwrap_or_else(|| panic!("no UUID line:\n{out}"));
    assert!(
        uuid.len() == 36 && uuid.chars().filter(|c| *c == '-').count() == 4,
        "the first line must be the Open_vSwitch row's UUID:\n{out}"
    );
    assert_eq!(rest, want, "ovs-vsctl show:\n{}", out.stdout);
    assert_eq!(
        shim.run(&d, &["show"]).stdout,
        out.stdout,
        "show must be stable (the same UUID)"
    );
    assert!(shim.run(&d, &["del-br", &br]).success());
}

/// Mirrors the Open vSwitch way: `--id=@NAME` references, `create Mirror`
/// and the Bridge `mirrors` column, applied all or nothing.
#[test]
fn mirrors_made_with_ids_and_create() {
    let d = Daemon::start();
    let shim = Shim::new(&d);
    let (h1, h2, h3) = (Host::new(1), Host::new(2), Host::new(3));
    let (p1, p2, p3) = (h1.port(), h2.port(), h3.port());
    let (br, nobr) = (names::unique("br"), names::unique("nb"));
    let ok = |args: &[&str]| {
        let out = shim.run(&d, args);
        assert_eq!(out.code, Some(0), "{args:?}:\n{out}");
        out.stdout
    };
    ok(&[
        "add-br", &br, "--", "add-port", &br, p1, "--", "add-port", &br, p2, "--", "add-port", &br,
        p3,
    ]);
    let out = ok(&[
        "--",
        "set",
        "Bridge",
        &br,
        "mirrors=@m",
        "--",
        "--id=@p1",
        "get",
        "Port",
        p1,
        "--",
        "--id=@p2",
        "get",
        "Port",
        p2,
        "--",
        "--id=@m",
        "create",
        "Mirror",
        "name=m0",
        "select-dst-port=@p1",
        "select-src-port=@p1",
        "output-port=@p2",
    ]);
    let uuid = out.trim_end();
    assert!(
        out.lines().count() == 1 && uuid.len() == 36,
        "create must print the new row's UUID:\n{out}"
    );
    // The mirrors of the bridge, without their counters (traffic moves them).
    let mirrors = |d: &Daemon| {
        let mut m = d.vsctl_json(&["list-mirrors", &br]);
        for r in m.as_array_mut().into_iter().flatten() {
            if let Some(o) = r.as_object_mut() {
                o.remove("tx_packets");
                o.remove("tx_bytes");
            }
        }
        m
    };
    let m = mirrors(&d);
    assert_eq!(m.as_array().map(Vec::len), Some(1), "{m}");
    assert_eq!(m[0]["name"], "m0");
    assert_eq!(m[0]["select_src_port"], serde_json::json!([p1]));
    assert_eq!(m[0]["select_dst_port"], serde_json::json!([p1]));
    assert_eq!(m[0]["output_port"], p2);
    assert_eq!(m[0]["select_all"], false);
    ok(&[
        "--",
        "--id=@m",
        "create",
        "Mirror",
        "name=m1",
        "select-all=true",
        "output-vlan=10",
        "--",
        "add",
        "Bridge",
        &br,
        "mirrors",
        "@m",
    ]);
    let m = mirrors(&d);
    assert_eq!(m.as_array().map(Vec::len), Some(2), "{m}");
    assert_eq!(
        (&m[1]["name"], &m[1]["select_all"]),
        (&"m1".into(), &true.into())
    );
    assert_eq!(m[1]["output_vlan"], 10);
    assert_eq!(
        ok(&[
            "--bare",
            "--columns=name,output_port",
            "find",
            "Mirror",
            "name=m0"
        ]),
        format!("m0\n{p2}\n")
    );
    assert_eq!(
        ok(&["--bare", "--columns=name", "list", "Mirror"]),
        "m0\n\nm1\n"
    );
    // Erroneous scripts change nothing, also what came before the error.
    let before = (d.vsctl_ok(&["--format", "json", "show"]), mirrors(&d));
    for (args, needle) in [
        (
            vec![
                "add-br",
                &nobr,
                "--",
                "--id=@m",
                "create",
                "Mirror",
                "name=x",
                "select-all=true",
                "output-vlan=5",
            ],
            "no reference to it was inserted",
        ),
        (
            vec![
                "add-br",
                &nobr,
                "--",
                "--id=@p",
                "get",
                "Port",
                p3,
                "--",
                "--id=@m",
                "create",
                "Mirror",
                "name=x",
                "select-src-port=@p",
                "output-port=@p",
                "--",
                "add",
                "Bridge",
                &br,
                "mirrors",
                "@m",
            ],
            "cannot also be selected",
        ),
        (
            vec![
                "add-br",
                &nobr,
                "--",
                "--id=@m",
                "create",
                "Mirror",
                "name=x",
                "colour=red",
                "--",
                "add",
                "Bridge",
                &br,
                "mirrors",
                "@m",
            ],
            "Mirror does not contain a column whose name matches \"colour\"",
        ),
        (
            vec![
                "clear", "Bridge", &br, "mirrors", "--", "add", "Bridge", &br, "mirrors", "@x",
            ],
            "row id \"@x\" is referenced but never created",
        ),
        (
            vec![
                "--id=@m", "get", "Mirror", "nosuch", "--", "remove", "Bridge", &br, "mirrors",
                "@m",
            ],
            "no row \"nosuch\" in table Mirror",
        ),
    ] {
        let out = shim.run(&d, &args);
        assert_eq!(out.code, Some(1), "{args:?} must fail:\n{out}");
        assert!(
            out.stderr.starts_with("ovs-vsctl: ") && out.stderr.contains(needle),
            "{args:?}: the message must say {needle:?}:\n{out}"
        );
        assert_eq!(
            (d.vsctl_ok(&["--format", "json", "show"]), mirrors(&d)),
            before,
            "{args:?} failed but changed the configuration"
        );
    }
    ok(&[
        "--", "--id=@m", "get", "Mirror", "m1", "--", "remove", "Bridge", &br, "mirrors", "@m",
    ]);
    let m = mirrors(&d);
    assert_eq!(m.as_array().map(Vec::len), Some(1), "{m}");
    assert_eq!(m[0]["name"], "m0");
    ok(&["clear", "Bridge", &br, "mirrors"]);
    assert_eq!(mirrors(&d), serde_json::json!([]));
    ok(&["del-br", &br]);
}

//! vswctl's help, names that cannot be interface names, and versions.
//!
//! `vswctl COMMAND --help` and `vswctl help [COMMAND]` print help and exit 0
//! without touching the daemon (once, `add-br --help` created a bridge named
//! `--help`); bridge and port names Linux (or a shell tool) cannot take are
//! refused with a message naming the problem, and nothing changes;
//! `vswctl --version` and `vswitchd --version` print the same version.

use std::time::Duration;
use tests::cmd::{run, Output};
use tests::daemon::Bins;
use tests::{names, Daemon};

/// Runs vswctl with no daemon at all behind its run directory.
fn vswctl_without_daemon(args: &[&str]) -> Output {
    let bins = Bins::locate().unwrap_or_else(|e| panic!("{e}"));
    let rundir = std::env::temp_dir().join(names::unique("d"));
    let mut c = bins.vswctl_command();
    c.arg("--rundir").arg(&rundir).args(args);
    run(c, Duration::from_secs(10))
}

fn bridges(d: &Daemon) -> Vec<String> {
    d.vsctl_ok(&["list-br"]).lines().map(String::from).collect()
}

/// A command's help: exit 0, its usage line first, then a paragraph.
fn assert_command_help(out: &Output, command: &str) {
    assert_eq!(out.code, Some(0), "help must exit 0:\n{out}");
    let first = out.stdout.lines().next().unwrap_or_default();
    assert!(
        first.starts_with(&format!("usage: vswctl [OPTIONS] {command} ")),
        "the help must start with {command}'s usage line:\n{out}"
    );
    let paragraph: Vec<&str> = out
        .stdout
        .lines()
        .skip_while(|l| !l.is_empty())
        .skip(1)
        .collect();
    assert!(
        !paragraph.is_empty(),
        "the help must describe {command} after its usage line:\n{out}"
    );
    assert!(out.stderr.is_empty(), "help wrote to stderr:\n{out}");
}

#[test]
fn help_after_a_command_prints_its_help_and_creates_nothing() {
    let d = Daemon::start();
    for flag in ["--help", "-h"] {
        let out = d.vsctl(&["add-br", flag]);
        assert_command_help(&out, "add-br");
        assert!(
            out.stdout.contains("BRIDGE"),
            "add-br's help names its argument:\n{out}"
        );
    }
    let out = d.vsctl(&["--may-exist", "add-br", "br9", "--help"]);
    assert_command_help(&out, "add-br");
    assert_eq!(
        bridges(&d),
        Vec::<String>::new(),
        "asking for help created a bridge"
    );
    // Help never needs the daemon.
    assert_command_help(&vswctl_without_daemon(&["add-br", "--help"]), "add-br");
}

#[test]
fn help_command_prints_one_commands_help_or_all() {
    let out = vswctl_without_daemon(&["help", "add-port"]);
    assert_command_help(&out, "add-port");
    assert!(
        out.stdout.contains("BRIDGE PORT") && !out.stdout.contains("del-br"),
        "help add-port describes add-port only:\n{out}"
    );

    for args in [&["help"][..], &["--help"][..]] {
        let out = vswctl_without_daemon(args);
        assert_eq!(out.code, Some(0), "{out}");
        for cmd in ["add-br", "add-port", "attach", "fdb/show", "help"] {
            assert!(
                out.stdout.contains(&format!("\n  {cmd} ")),
                "vswctl {args:?} must list {cmd}:\n{out}"
            );
        }
    }

    let out = vswctl_without_daemon(&["help", "frobnicate"]);
    assert_eq!(out.code, Some(1), "help for an unknown command:\n{out}");
    assert!(out.stderr.contains("frobnicate"), "{out}");
}

#[test]
fn names_that_are_not_interface_names_are_refused() {
    let d = Daemon::start();
    let br = names::unique("br");
    d.vsctl_ok(&["add-br", &br]);
    let before = d.vsctl_json(&["show"]);
    let long = "abcdefghijklmnop";
    assert_eq!(long.len(), 16);
    let cases: [(&str, &str); 5] = [
        ("-x", "starts with '-'"),
        ("--help-me", "starts with '-'"),
        ("a/b", "'/'"),
        ("a b", "' '"),
        (long, "16 bytes"),
    ];
    for (name, problem) in cases {
        for args in [vec!["add-br", name], vec!["add-port", &br, name]] {
            let out = d.vsctl(&args);
            assert_eq!(out.code, Some(1), "vswctl {args:?} must fail:\n{out}");
            assert!(
                out.stderr.contains(name) && out.stderr.contains(problem),
                "the message of vswctl {args:?} must name {name:?} and say {problem:?}:\n{out}"
            );
            assert_eq!(
                d.vsctl_json(&["show"]),
                before,
                "the refused vswctl {args:?} changed the configuration"
            );
        }
    }
    assert_eq!(bridges(&d), vec![br.clone()]);
    // Control: a name of exactly 15 bytes is fine.
    let mut ok = names::unique("p");
    ok.push_str(&"x".repeat(15 - ok.len()));
    d.vsctl_ok(&["add-port", &br, &ok]);
}

#[test]
fn vswctl_and_vswitchd_print_the_same_version() {
    let bins = Bins::locate().unwrap_or_else(|e| panic!("{e}"));
    let version = |program: &std::path::Path, name: &str| {
        let mut c = std::process::Command::new(program);
        c.arg("--version");
        let out = run(c, Duration::from_secs(10));
        assert_eq!(out.code, Some(0), "{name} --version:\n{out}");
        let line = out.stdout.trim_end().to_string();
        assert_eq!(
            line,
            format!("{name} {}", env!("CARGO_PKG_VERSION")),
            "{name} --version must print NAME VERSION, the workspace's version:\n{out}"
        );
        line
    };
    let ctl = version(&bins.vswctl, "vswctl");
    let daemon = version(&bins.vswitchd, "vswitchd");
    assert_eq!(
        ctl.split_once(' ').map(|(_, v)| v),
        daemon.split_once(' ').map(|(_, v)| v),
        "vswctl and vswitchd disagree on the version"
    );
}

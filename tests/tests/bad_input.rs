//! Wrong input to vswctl: every mistake exits 1 with a message that names
//! the problem, and changes nothing (`show` is the same before and after).
//! `--may-exist` / `--if-exists` turn duplicates and absences into
//! successes; `br-exists` answers with exit code 2 for an absent bridge.

use tests::cmd::run;
use tests::daemon::Bins;
use tests::{model, names, Lab};

/// Runs `args`, expects exit code 1, a message on stderr that contains at
/// least one of `mentions`, and an unchanged `show`.
fn expect_rejected(lab: &Lab, args: &[&str], mentions: &[&str]) {
    let before = lab.show();
    let out = lab.daemon.vsctl(args);
    let after = lab.show();
    assert_eq!(
        out.code,
        Some(1),
        "vswctl {args:?} must fail with exit code 1:\n{out}"
    );
    let msg = out.stderr.to_lowercase();
    assert!(
        mentions.iter().any(|m| msg.contains(&m.to_lowercase())),
        "the error message of vswctl {args:?} must name the problem (one of {mentions:?}):\n{out}"
    );
    assert_eq!(
        before, after,
        "the rejected command vswctl {args:?} changed the configuration"
    );
}

/// Runs `args`, expects success and an unchanged `show`.
fn expect_noop_success(lab: &Lab, args: &[&str]) {
    let before = lab.show();
    lab.daemon.vsctl_ok(args);
    let after = lab.show();
    assert_eq!(
        before, after,
        "vswctl {args:?} must succeed without changing anything"
    );
}

#[test]
fn unknown_command_is_rejected() {
    let lab = Lab::new(1);
    expect_rejected(&lab, &["frobnicate-everything"], &["frobnicate-everything"]);
    expect_rejected(&lab, &["add-br"], &["add-br"]);
    expect_rejected(
        &lab,
        &["--no-such-option", "list-br"],
        &["--no-such-option"],
    );
}

#[test]
fn unknown_bridge_is_rejected() {
    let lab = Lab::new(1);
    let nobr = names::unique("br");
    let p = names::unique("p");
    for args in [
        vec!["add-port", &nobr, &p],
        vec!["del-br", &nobr],
        vec!["list-ports", &nobr],
        vec!["set", "bridge", &nobr, "other_config:mac-aging-time=5"],
        vec!["fdb/show", &nobr],
        vec!["fdb/flush", &nobr],
        vec!["dump-ports", &nobr],
    ] {
        expect_rejected(&lab, &args, &[&nobr]);
    }
}

#[test]
fn unknown_port_is_rejected() {
    let lab = Lab::new(1);
    let nop = names::unique("p");
    for args in [
        vec!["del-port", &nop],
        vec!["del-port", &lab.bridge, &nop],
        vec!["port-to-br", &nop],
        vec!["set", "port", &nop, "tag=5"],
        vec!["dump-ports", &lab.bridge, &nop],
    ] {
        expect_rejected(&lab, &args, &[&nop]);
    }
    // A port that exists, but on another bridge than the one named.
    let other = names::unique("br");
    lab.daemon.vsctl_ok(&["add-br", &other]);
    expect_rejected(
        &lab,
        &["del-port", &other, lab.host(0).port()],
        &[lab.host(0).port()],
    );
}

#[test]
fn bad_option_values_are_rejected() {
    let lab = Lab::new(1);
    let br = lab.bridge.as_str();
    let p = names::unique("p");
    let port = lab.host(0).port();
    let cases: Vec<(Vec<&str>, &[&str])> = vec![
        (vec!["add-port", br, &p, "tag=abc"], &["abc"]),
        (vec!["add-port", br, &p, "tag=5000"], &["5000"]),
        (
            vec!["add-port", br, &p, "options:xdp-mode=turbo"],
            &["turbo"],
        ),
        (vec!["add-port", br, &p, "type=bogus"], &["bogus"]),
        (vec!["add-port", br, &p, "colour=blue"], &["colour"]),
        (vec!["set", "port", port, "tag=abc"], &["abc"]),
        (
            vec!["set", "bridge", br, "other_config:mac-table-size=-1"],
            &["-1", "mac-table-size"],
        ),
        (
            vec!["set", "bridge", br, "other_config:mac-aging-time=soon"],
            &["soon", "mac-aging-time"],
        ),
    ];
    for (args, mentions) in cases {
        expect_rejected(&lab, &args, mentions);
    }
    assert!(
        model::show_port(&lab.show(), &p).is_none(),
        "a port added with a bad option exists anyway"
    );
}

#[test]
fn duplicates_are_rejected_unless_may_exist() {
    let lab = Lab::new(1);
    let br = lab.bridge.as_str();
    let port = lab.host(0).port();
    expect_rejected(&lab, &["add-br", br], &[br]);
    expect_rejected(&lab, &["add-port", br, port], &[port]);
    let other = names::unique("br");
    lab.daemon.vsctl_ok(&["add-br", &other]);
    expect_rejected(&lab, &["add-port", &other, port], &[port]);
    expect_noop_success(&lab, &["--may-exist", "add-br", br]);
    expect_noop_success(&lab, &["--may-exist", "add-port", br, port]);
}

#[test]
fn absences_succeed_with_if_exists() {
    let lab = Lab::new(1);
    let nobr = names::unique("br");
    let nop = names::unique("p");
    expect_noop_success(&lab, &["--if-exists", "del-br", &nobr]);
    expect_noop_success(&lab, &["--if-exists", "del-port", &nop]);
    expect_noop_success(&lab, &["--if-exists", "del-port", &lab.bridge, &nop]);
}

#[test]
fn a_failing_chain_applies_nothing() {
    let lab = Lab::new(1);
    let new_br = names::unique("br");
    let nobr = names::unique("br");
    let p = names::unique("p");
    expect_rejected(
        &lab,
        &["add-br", &new_br, "--", "add-port", &nobr, &p],
        &[&nobr],
    );
    let out = lab.daemon.vsctl(&["br-exists", &new_br]);
    assert_eq!(
        out.code,
        Some(2),
        "the first command of a failed chain was applied:\n{out}"
    );
    expect_rejected(
        &lab,
        &[
            "add-port",
            &lab.bridge,
            &p,
            "--",
            "add-port",
            &lab.bridge,
            &p,
        ],
        &[&p],
    );
    // Control: the same kind of chain, valid, is applied whole.
    lab.daemon
        .vsctl_ok(&["add-br", &new_br, "--", "add-port", &new_br, &p]);
    let out = lab.daemon.vsctl(&["br-exists", &new_br]);
    assert_eq!(out.code, Some(0), "{out}");
    let br = lab.daemon.vsctl_json(&["port-to-br", &p]);
    assert_eq!(br, serde_json::json!(new_br), "port-to-br {p}");
}

#[test]
fn br_exists_answers_with_exit_codes() {
    let lab = Lab::new(1);
    let out = lab.daemon.vsctl(&["br-exists", &lab.bridge]);
    assert_eq!(out.code, Some(0), "br-exists on an existing bridge:\n{out}");
    let out = lab.daemon.vsctl(&["br-exists", &names::unique("br")]);
    assert_eq!(
        out.code,
        Some(2),
        "br-exists on an absent bridge must exit 2:\n{out}"
    );
}

#[test]
fn vswctl_without_a_daemon_fails_cleanly() {
    let bins = Bins::locate().unwrap_or_else(|e| panic!("{e}"));
    let rundir = std::env::temp_dir().join(names::unique("d"));
    let mut c = bins.vswctl_command();
    c.arg("--rundir").arg(&rundir).arg("list-br");
    let out = run(c, std::time::Duration::from_secs(10));
    assert_eq!(
        out.code,
        Some(1),
        "vswctl with no daemon must exit 1:\n{out}"
    );
    let rd = rundir.display().to_string();
    assert!(
        out.stderr.contains(&rd) || out.stderr.contains("vswitchd"),
        "the message must say which daemon/socket could not be reached:\n{out}"
    );
}

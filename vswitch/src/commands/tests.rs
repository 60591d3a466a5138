//! Commands run as the daemon runs them (`execute` against a configuration
//! and a runtime with no poll threads): what is refused, with which
//! message, and that a refusal changes nothing.

use super::{execute, CommandReq, Outcome, Request};
use crate::config::{Bridge, Config};
use crate::datapath::pmd::IdlePolicy;
use crate::runtime::Runtime;

fn runtime() -> Runtime {
    Runtime::new(&[], IdlePolicy::default())
        .unwrap_or_else(|e| panic!("a runtime without poll threads: {e}"))
}

fn request(args: &[&str]) -> Request {
    Request {
        commands: vec![CommandReq {
            args: args.iter().map(|a| a.to_string()).collect(),
            may_exist: false,
            if_exists: false,
        }],
        ..Request::default()
    }
}

/// A configuration with one bridge, `br0`.
fn with_br0() -> Config {
    let mut cfg = Config::default();
    cfg.bridges.insert("br0".into(), Bridge::default());
    cfg
}

fn run(cfg: &Config, args: &[&str]) -> Outcome {
    execute(&request(args), cfg, &runtime())
}

/// Names Linux (or vswitch) refuses, with a word the message must contain.
const BAD_NAMES: &[(&str, &str)] = &[
    ("", "empty"),
    ("-x", "starts with '-'"),
    ("--help", "starts with '-'"),
    ("a/b", "'/'"),
    ("a b", "' '"),
    ("a\tb", "'\\t'"),
    ("a:b", "':'"),
    (".", "not a valid interface name"),
    ("..", "not a valid interface name"),
    ("abcdefghijklmnop", "16 bytes"),
];

fn assert_refused(cfg: &Config, args: &[&str], needle: &str) {
    let out = run(cfg, args);
    let msg = out.response.error.clone().unwrap_or_default();
    assert!(!out.response.ok, "{args:?} must be refused");
    assert_eq!(out.response.exit_code, 1, "{args:?}: {msg}");
    assert!(
        msg.contains(needle),
        "{args:?}: \"{msg}\" must say {needle:?}"
    );
    assert!(
        out.new_config.is_none(),
        "{args:?} changed the configuration"
    );
}

#[test]
fn add_br_refuses_names_that_are_not_interface_names() {
    for (name, needle) in BAD_NAMES {
        assert_refused(&Config::default(), &["add-br", name], needle);
    }
}

#[test]
fn add_port_refuses_names_that_are_not_interface_names() {
    for (name, needle) in BAD_NAMES {
        assert_refused(&with_br0(), &["add-port", "br0", name], needle);
    }
}

#[test]
fn names_up_to_fifteen_bytes_are_accepted() {
    let out = run(&Config::default(), &["add-br", "abcdefghijklmno"]);
    assert!(out.response.ok, "{:?}", out.response.error);
    let cfg = out
        .new_config
        .unwrap_or_else(|| panic!("add-br changed nothing"));
    assert!(cfg.bridges.contains_key("abcdefghijklmno"));

    let out = run(&with_br0(), &["add-port", "br0", "p-1.x_y"]);
    assert!(out.response.ok, "{:?}", out.response.error);
}

#[test]
fn a_bad_name_later_in_a_chain_applies_nothing() {
    let req = Request {
        commands: vec![
            CommandReq {
                args: vec!["add-br".into(), "br1".into()],
                ..CommandReq::default()
            },
            CommandReq {
                args: vec!["add-port".into(), "br1".into(), "-p".into()],
                ..CommandReq::default()
            },
        ],
        ..Request::default()
    };
    let out = execute(&req, &Config::default(), &runtime());
    assert!(!out.response.ok);
    assert!(out.new_config.is_none());
}

#[test]
fn attach_refuses_a_bad_ifname() {
    for (name, needle) in BAD_NAMES.iter().filter(|(n, _)| !n.is_empty()) {
        let ifname = format!("--ifname={name}");
        let args = ["attach", "br0", "some-netns", "0/0", ifname.as_str()];
        assert_refused(&with_br0(), &args, needle);
        let out = run(&with_br0(), &args);
        let msg = out.response.error.unwrap_or_default();
        assert!(msg.contains("--ifname"), "{args:?}: {msg}");
    }
}

#[test]
fn remove_and_clear_take_values_out_as_ovs_vsctl_does() {
    let mut cfg = with_br0();
    let mut port = crate::config::Port::default();
    port.options.insert("delay".into(), "10ms".into());
    port.options.insert("loss".into(), "1%".into());
    port.trunks = vec![10, 20, 30];
    port.tag = Some(10);
    cfg.bridges
        .get_mut("br0")
        .unwrap()
        .ports
        .insert("p1".into(), port);
    let after = |cfg: &Config, args: &[&str]| -> Config {
        let o = run(cfg, args);
        assert!(o.response.ok, "{args:?}: {:?}", o.response.error);
        o.new_config.unwrap_or_else(|| cfg.clone())
    };
    let p = |c: &Config| c.bridges["br0"].ports["p1"].clone();
    let c = after(&cfg, &["remove", "interface", "p1", "options", "delay"]);
    assert!(!p(&c).options.contains_key("delay") && p(&c).options.contains_key("loss"));
    // key=value removes only a matching pair.
    let c = after(&c, &["remove", "interface", "p1", "options", "loss=2%"]);
    assert!(p(&c).options.contains_key("loss"));
    let c = after(&c, &["remove", "port", "p1", "trunks", "20"]);
    assert_eq!(p(&c).trunks, vec![10, 30]);
    let c = after(&c, &["clear", "port", "p1", "tag", "trunks"]);
    assert_eq!((p(&c).tag, p(&c).trunks.len()), (None, 0));
    let c = after(&c, &["clear", "interface", "p1", "options"]);
    assert!(p(&c).options.is_empty());
    assert_refused(
        &c,
        &["remove", "interface", "p1", "colour", "x"],
        "no map column",
    );
    assert_refused(
        &c,
        &["clear", "interface", "nope", "options"],
        "no port named nope",
    );
}

//! Unit tests of the ovs-vsctl compatibility mode.

use super::format::{get_lines, ovs_string, ovs_value};
use super::parse::{parse, Cmd, Parsed};
use super::schema::{parse_column, parse_table, Table};
use super::translate::{setting, GetColumn, State};
use super::*;
use serde_json::{json, Value};

mod mirrors;

fn cmds(s: &str) -> Result<Vec<Cmd>, Fail> {
    let v: Vec<String> = s.split_whitespace().map(String::from).collect();
    match parse(&v)? {
        Parsed::Run(i) => Ok(i.commands),
        _ => panic!("not a run"),
    }
}

fn err(s: &str) -> String {
    cmds(s).unwrap_err().message
}

#[test]
fn invoked_by_name() {
    assert!(invoked_as("ovs-vsctl"));
    assert!(invoked_as("/tmp/x/ovs-vsctl"));
    assert!(!invoked_as("vswctl"));
    assert!(!invoked_as("ovs-vsctl2"));
}

#[test]
fn command_lines() {
    let c =
        cmds("--timeout=10 --db=unix:/x --may-exist add-br b -- set Bridge b datapath_type=netdev")
            .unwrap();
    assert_eq!(c.len(), 2);
    assert!(c[0].may_exist);
    assert_eq!(c[1].args, ["Bridge", "b", "datapath_type=netdev"]);
    let c = cmds("-t 5 --if-exists del-port p -- list-br").unwrap();
    assert!(c[0].if_exists);
    assert_eq!(c[1].name, "list-br");
}

#[test]
fn command_line_errors_read_like_ovs() {
    assert_eq!(err("--bogus list-br"), "unrecognized option '--bogus'");
    assert_eq!(
        err("frobnicate"),
        "unknown command 'frobnicate'; use --help for help"
    );
    assert_eq!(
        err("list-ports"),
        "'list-ports' command requires at least 1 arguments"
    );
    assert_eq!(
        err("list-br extra"),
        "'list-br' command takes at most 0 arguments"
    );
    assert_eq!(
        err("--may-exist list-br"),
        "'list-br' command has no '--may-exist' option"
    );
    assert!(err("add-bond b bond0 a b").contains("does not support"));
    assert!(err("--dry-run list-br").contains("not supported"));
    assert!(err("add-br fake parent 10").contains("fake bridge"));
}

#[test]
fn tables_and_columns_match_like_ovs() {
    assert_eq!(parse_table("interface"), Ok(Table::Interface));
    assert_eq!(parse_table("Int"), Ok(Table::Interface));
    assert_eq!(
        parse_table("Nosuch").unwrap_err().message,
        "unknown table \"Nosuch\""
    );
    assert!(parse_table("Open_vSwitch")
        .unwrap_err()
        .message
        .contains("not supported"));
    assert_eq!(
        parse_column(Table::Port, "external-ids"),
        Ok("external_ids")
    );
    assert_eq!(parse_column(Table::Port, "ta"), Ok("tag"));
    assert_eq!(
        parse_column(Table::Port, "t").unwrap_err().message,
        "Port contains more than one column whose name matches \"t\": tag, trunks"
    );
    assert_eq!(
        parse_column(Table::Interface, "tag").unwrap_err().message,
        "Interface does not contain a column whose name matches \"tag\""
    );
    assert!(parse_column(Table::Port, "bond_mode")
        .unwrap_err()
        .message
        .contains("not supported"));
}

#[test]
fn settings() {
    assert_eq!(setting(Table::Port, "tag=100"), Ok("tag=100".into()));
    assert_eq!(
        setting(Table::Interface, "external-ids:k=\"a b\""),
        Ok("external_ids:k=a b".into())
    );
    for (s, msg) in [
        (
            "tag",
            "tag: argument does not end in \"=\" followed by a value.",
        ),
        ("tag=abc", "\"abc\" is not a valid integer or range"),
        (
            "tag=5000",
            "constraint violation: 5000 is not in the valid range 0 to 4095 (inclusive)",
        ),
        (
            "tag:k=1",
            "cannot specify key to set for non-map column tag",
        ),
    ] {
        assert_eq!(setting(Table::Port, s).unwrap_err().message, msg, "{s}");
    }
    assert!(setting(Table::Port, "external_ids={a=b}")
        .unwrap_err()
        .message
        .contains("whole map"));
}

#[test]
fn values_print_like_ovs() {
    for (s, want) in [
        ("c1", "c1"),
        ("a.b-c_d", "a.b-c_d"),
        ("_x", "_x"),
        ("123", "\"123\""),
        ("1abc", "\"1abc\""),
        ("true", "\"true\""),
        ("", "\"\""),
        ("a:b", "\"a:b\""),
        ("hello world", "\"hello world\""),
        ("q\"uote", "\"q\\\"uote\""),
        ("tab\tx", "\"tab\\tx\""),
        (
            "550e8400-e29b-41d4-a716-446655440000",
            "\"550e8400-e29b-41d4-a716-446655440000\"",
        ),
    ] {
        assert_eq!(ovs_string(s), want, "{s:?}");
    }
    assert_eq!(ovs_value(&json!(100)), "100");
    assert_eq!(ovs_value(&Value::Null), "[]");
    assert_eq!(ovs_value(&json!([10, 20])), "[10, 20]");
    assert_eq!(
        ovs_value(&json!({"container_id": "c1", "note": "hello world"})),
        "{container_id=c1, note=\"hello world\"}"
    );
}

#[test]
fn rows_are_checked_against_the_state_so_far() {
    let show = json!({"bridges": [{"name": "b", "ports": [{"name": "b"}, {"name": "p"}]}]});
    let mut st = State::from_show(&show);
    assert!(st.check_row(Table::Port, "p").is_ok());
    assert_eq!(
        st.check_row(Table::Interface, "q").unwrap_err().message,
        "no row \"q\" in table Interface"
    );
    assert!(st.check_row(Table::Port, "b").is_err());
    let add = cmds("add-port b q").unwrap();
    st.apply(&add[0]);
    assert!(st.check_row(Table::Interface, "q").is_ok());
    let del = cmds("del-br b").unwrap();
    st.apply(&del[0]);
    assert!(st.check_row(Table::Port, "q").is_err());
    assert!(st.check_row(Table::Bridge, "b").is_err());
}

#[test]
fn get_output() {
    let cols = vec![
        GetColumn {
            column: "tag",
            key: None,
        },
        GetColumn {
            column: "name",
            key: None,
        },
        GetColumn {
            column: "external_ids",
            key: Some("k".into()),
        },
    ];
    let vals = vec![Value::Null, json!({"k": "v 1"})];
    assert_eq!(
        get_lines(Table::Port, "p", &cols, &vals).unwrap(),
        vec!["[]", "p", "\"v 1\""]
    );
    let vals = vec![Value::Null, json!({})];
    assert_eq!(
        get_lines(Table::Port, "p", &cols, &vals)
            .unwrap_err()
            .message,
        "no key \"k\" in Port record \"p\" column external_ids"
    );
}

#[test]
fn show_prints_like_ovs_vsctl() {
    let show = json!({"bridges": [
        {"name": "br1", "ports": [
            {"name": "br1", "type": "internal", "tag": null, "trunks": [], "options": {}, "error": null},
            {"name": "vx0", "type": "vxlan", "tag": null, "trunks": [],
             "options": {"remote_ip": "10.0.0.2", "key": "100"}, "error": null},
            {"name": "gone", "type": "system", "tag": null, "trunks": [], "options": {},
             "error": "could not open network device gone (No such device)"},
        ]},
        {"name": "br0", "ports": [
            {"name": "br0", "type": "internal", "tag": null, "trunks": [], "options": {}, "error": null},
            {"name": "trunk1", "type": "system", "tag": null, "trunks": [20, 10], "options": {}, "error": null},
            {"name": "access1", "type": "system", "tag": 10, "trunks": [], "options": {}, "error": null},
            {"name": "int0", "type": "internal", "tag": null, "trunks": [], "options": {}, "error": null},
            {"name": "pa", "type": "patch", "tag": null, "trunks": [], "options": {"peer": "pb"}, "error": null},
        ]},
    ]});
    let want = "\
0f0f0f0f-0000-8000-8000-000000000000
    Bridge br0
        Port access1
            tag: 10
            Interface access1
        Port br0
            Interface br0
                type: internal
        Port int0
            Interface int0
                type: internal
        Port pa
            Interface pa
                type: patch
                options: {peer=pb}
        Port trunk1
            trunks: [10, 20]
            Interface trunk1
    Bridge br1
        Port br1
            Interface br1
                type: internal
        Port gone
            Interface gone
                error: \"could not open network device gone (No such device)\"
        Port vx0
            Interface vx0
                type: vxlan
                options: {key=\"100\", remote_ip=\"10.0.0.2\"}
    ovs_version: \"3.1.0\"
";
    assert_eq!(
        show::show_text(&show, "0f0f0f0f-0000-8000-8000-000000000000"),
        want
    );
    assert_eq!(
        show::show_text(&json!({"bridges": []}), "u"),
        "u\n    ovs_version: \"3.1.0\"\n"
    );
    let u = show::root_uuid(std::path::Path::new("/nonexistent/run"));
    assert!(ids::is_uuid(&u) && u == show::root_uuid(std::path::Path::new("/nonexistent/run")));
}

#[test]
fn rstp_enable_and_mtu_request_pass_through_plan() {
    let show = json!({"bridges": [{"name": "br0", "ports": [{"name": "br0"}, {"name": "p1"}]}]});
    let argv = |s: &str| -> Vec<String> { s.split_whitespace().map(String::from).collect() };
    let reqs = plan(
        &argv("set Bridge br0 rstp_enable=true -- set Interface p1 mtu_request=1400"),
        &show,
        &json!([]),
    )
    .unwrap()
    .unwrap();
    let text = serde_json::to_string(&reqs).unwrap();
    assert!(
        text.contains("rstp_enable=true") && text.contains("mtu_request=1400"),
        "{text}"
    );
    assert!(plan(&argv("--version"), &show, &json!([]))
        .unwrap()
        .is_none());
    let e = plan(&argv("set Interface p1 mtu=1400"), &show, &json!([])).unwrap_err();
    assert!(
        e.message
            .contains("column mtu of table Interface is not supported"),
        "{}",
        e.message
    );
}

//! `show` in Open vSwitch 3.1's format (`cmd_show` of lib/db-ctl-base.c
//! with ovs-vsctl's table list), made from vswctl's show JSON.
//!
//! Open vSwitch prints the Open_vSwitch row's UUID, then each row that a
//! shown column refers to, four spaces deeper per level: Bridge (its
//! `controller`, `fail_mode`, `datapath_type` and `ports`), Port (`tag`,
//! `trunks`, `interfaces`), Interface (`type`, `options`, `error`,
//! `bfd_status`), then the Open_vSwitch row's `ovs_version`. A column is
//! printed only when it is not empty (OVSDB's default value). Open vSwitch
//! orders bridges and ports by row UUID, which is effectively random; here
//! they are sorted by name. vswitch has no controllers, fail modes, BFD or
//! managers, and keeps no datapath_type (every bridge is a userspace one),
//! so those lines never appear.

use super::format::{ovs_string, ovs_value};
use serde_json::Value;
use std::fmt::Write;

/// The Open vSwitch release whose ovs-vsctl this mode follows, printed as
/// the Open_vSwitch row's `ovs_version`.
pub(crate) const OVS_VERSION: &str = "3.1.0";

/// The UUID `show` prints for the Open_vSwitch row of the vswitchd whose
/// run directory is `rundir`: stable for a given switch.
pub(crate) fn root_uuid(rundir: &std::path::Path) -> String {
    let dir = std::fs::canonicalize(rundir).unwrap_or_else(|_| rundir.to_path_buf());
    super::ids::uuid_of(&["Open_vSwitch", &dir.to_string_lossy()])
}

/// One level of indentation per depth, as in Open vSwitch.
fn line(out: &mut String, depth: usize, text: &str) {
    let _ = writeln!(out, "{:width$}{text}", "", width = depth * 4);
}

/// The text of `ovs-vsctl show` from vswctl's show JSON (`bridges`, each
/// with `name` and `ports`, the bridge's own port among them).
pub(crate) fn show_text(show: &Value, uuid: &str) -> String {
    let mut out = String::new();
    line(&mut out, 0, uuid);
    let mut bridges: Vec<&Value> = show["bridges"].as_array().into_iter().flatten().collect();
    bridges.sort_by_key(|b| b["name"].as_str().unwrap_or_default());
    for b in bridges {
        let name = b["name"].as_str().unwrap_or_default();
        line(&mut out, 1, &format!("Bridge {}", ovs_string(name)));
        let mut ports: Vec<&Value> = b["ports"].as_array().into_iter().flatten().collect();
        ports.sort_by_key(|p| p["name"].as_str().unwrap_or_default());
        for p in ports {
            port(&mut out, p);
        }
    }
    line(
        &mut out,
        1,
        &format!("ovs_version: {}", ovs_string(OVS_VERSION)),
    );
    out
}

/// A Port row and its one Interface.
fn port(out: &mut String, p: &Value) {
    let name = ovs_string(p["name"].as_str().unwrap_or_default());
    line(out, 2, &format!("Port {name}"));
    if let Some(tag) = p["tag"].as_u64() {
        line(out, 3, &format!("tag: {tag}"));
    }
    let mut trunks: Vec<u64> = p["trunks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_u64)
        .collect();
    if !trunks.is_empty() {
        trunks.sort_unstable();
        trunks.dedup();
        let list: Vec<String> = trunks.iter().map(u64::to_string).collect();
        line(out, 3, &format!("trunks: [{}]", list.join(", ")));
    }
    line(out, 3, &format!("Interface {name}"));
    match p["type"].as_str() {
        None | Some("" | "system") => {}
        Some(t) => line(out, 4, &format!("type: {}", ovs_string(t))),
    }
    if p["options"].as_object().is_some_and(|m| !m.is_empty()) {
        line(out, 4, &format!("options: {}", ovs_value(&p["options"])));
    }
    if let Some(e) = p["error"].as_str() {
        line(out, 4, &format!("error: {}", ovs_string(e)));
    }
}

//! `rstp/show [BRIDGE]`: the bridge and root identifiers and each port's
//! role and state, laid out as `ovs-appctl rstp/show` does, and as JSON.

use crate::commands::Output;
use crate::runtime::{RstpView, Runtime};
use pipeline::wire::eth::fmt_mac;
use serde_json::{json, Value};
use std::fmt::Write;

fn ident(t: &mut String, id: u64, v: &RstpView) {
    let b = id.to_be_bytes();
    let mac: [u8; 6] = [b[2], b[3], b[4], b[5], b[6], b[7]];
    let _ = writeln!(t, "  stp-priority    {}", u16::from_be_bytes([b[0], b[1]]));
    let _ = writeln!(t, "  stp-system-id   {}", fmt_mac(&mac));
    let _ = writeln!(t, "  stp-hello-time  {}s", v.times.hello);
    let _ = writeln!(t, "  stp-max-age     {}s", v.times.max_age);
    let _ = writeln!(t, "  stp-fwd-delay   {}s", v.times.forward_delay);
}

fn capital(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

/// The text and JSON of `rstp/show` for `views`.
pub fn render(views: &[RstpView]) -> Output {
    let mut t = String::new();
    let mut j = Vec::new();
    for v in views {
        let _ = writeln!(t, "---- {} ----", v.bridge);
        t.push_str("Root ID:\n");
        ident(&mut t, v.root, v);
        match &v.root_port {
            None => t.push_str("  This bridge is the root\n"),
            Some(p) => {
                let _ = writeln!(t, "  root-port       {p}");
                let _ = writeln!(t, "  root-path-cost  {}", v.root_cost);
            }
        }
        t.push_str("\nBridge ID:\n");
        ident(&mut t, v.id, v);
        t.push_str("\n  Interface  Role       State      Port Cost  Pri.Nbr  Edge  BPDUs rx/tx\n");
        t.push_str("  ---------- ---------- ---------- ---------- -------  ----  -----------\n");
        let mut ports: Vec<Value> = Vec::new();
        for p in &v.ports {
            let s = &p.port;
            let _ = writeln!(
                t,
                "  {:<10} {:<10} {:<10} {:<10} {:>3}.{:<3}  {:<4}  {}/{}",
                p.name,
                capital(s.role.name()),
                capital(s.state.name()),
                s.cfg.cost,
                s.cfg.priority,
                p.port_no,
                if s.oper_edge { "yes" } else { "no" },
                s.rx_bpdus,
                s.tx_bpdus
            );
            ports.push(json!({
                "name": p.name, "port_no": p.port_no, "role": s.role.name(),
                "state": s.state.name(), "cost": s.cfg.cost, "priority": s.cfg.priority,
                "edge": s.oper_edge, "rx_bpdus": s.rx_bpdus, "tx_bpdus": s.tx_bpdus,
            }));
        }
        t.push('\n');
        j.push(json!({
            "bridge": v.bridge,
            "bridge_id": crate::rstp::id_text(v.id),
            "root_id": crate::rstp::id_text(v.root),
            "root_path_cost": v.root_cost,
            "root_port": v.root_port,
            "is_root": v.root_port.is_none(),
            "ports": ports,
        }));
    }
    Output {
        text: t,
        json: json!(j),
    }
}

/// `rstp/show` of `bridge`, or of every bridge that runs RSTP.
pub fn show(rt: &Runtime, bridge: Option<&str>) -> Result<Output, String> {
    if let Some(b) = bridge.filter(|b| !rt.rstp_enabled(b)) {
        return Err(format!(
            "bridge {b} does not run RSTP (vswctl set bridge {b} rstp_enable=true)"
        ));
    }
    Ok(render(&rt.rstp_show(bridge)))
}

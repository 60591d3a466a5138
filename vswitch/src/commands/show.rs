//! Read-only commands: `show`, `fdb/show`, `dump-ports`, `pmd/*`, rendered
//! as text in the style of ovs-vsctl / ovs-appctl and as JSON.

use super::Output;
use crate::config::{Config, Map, Port};
use crate::runtime::Runtime;
use pipeline::wire::eth::fmt_mac;
use serde_json::{json, Value};
use std::fmt::Write;

/// Formats a JSON value the way ovs-vsctl prints column values.
pub fn ovs_value(v: &Value) -> String {
    match v {
        Value::Null => "[]".into(),
        Value::String(s) if s.is_empty() => "\"\"".into(),
        Value::String(s) => {
            if s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            {
                s.clone()
            } else {
                format!("{s:?}")
            }
        }
        Value::Array(a) => format!(
            "[{}]",
            a.iter().map(ovs_value).collect::<Vec<_>>().join(", ")
        ),
        Value::Object(m) => format!(
            "{{{}}}",
            m.iter()
                .map(|(k, v)| format!("{k}={}", ovs_value(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        other => other.to_string(),
    }
}

fn map_text(m: &Map) -> String {
    ovs_value(&json!(m))
}

fn port_json(name: &str, p: &Port, rt: &Runtime) -> Value {
    let view = rt.port_view(name);
    let st = view.status.as_ref();
    json!({
        "name": name,
        "ofport": view.port_no,
        "type": if p.kind.is_empty() { "system" } else { p.kind.as_str() },
        "tag": p.tag,
        "trunks": p.trunks,
        "vlan_mode": p.vlan_mode,
        "options": p.options,
        "external_ids": p.external_ids,
        "backend": st.map(|s| s.backend.clone()),
        "mode": st.map(|s| s.mode.clone()),
        "fallback_reason": st.and_then(|s| s.fallback_reason.clone()),
        "mtu": st.map(|s| s.mtu),
        "mac": st.map(|s| fmt_mac(&s.mac)),
        "error": view.error,
    })
}

pub fn show(cfg: &Config, rt: &Runtime, pid: u32) -> Output {
    let mut t = String::new();
    let _ = writeln!(t, "vswitchd (pid {pid})");
    let mut bridges = Vec::new();
    for (bname, br) in &cfg.bridges {
        let _ = writeln!(t, "    Bridge {bname}");
        if !br.other_config.is_empty() {
            let _ = writeln!(t, "        other_config: {}", map_text(&br.other_config));
        }
        let internal = Port {
            kind: "internal".into(),
            ..Default::default()
        };
        let mut ports = vec![port_json(bname, &internal, rt)];
        ports.extend(br.ports.iter().map(|(n, p)| port_json(n, p, rt)));
        for p in &ports {
            let name = p["name"].as_str().unwrap_or_default();
            let _ = writeln!(t, "        Port {name}");
            for col in ["tag", "trunks", "vlan_mode"] {
                let v = &p[col];
                let empty = v.is_null() || v.as_array().is_some_and(|a| a.is_empty());
                if !empty {
                    let _ = writeln!(t, "            {col}: {}", ovs_value(v));
                }
            }
            let _ = writeln!(t, "            Interface {name}");
            let kind = p["type"].as_str().unwrap_or_default();
            // "system (afxdp native)": the backend when it differs from the
            // configured type, then its mode.
            let detail: Vec<&str> = p["backend"]
                .as_str()
                .filter(|b| *b != kind)
                .into_iter()
                .chain(p["mode"].as_str().filter(|m| !m.is_empty()))
                .collect();
            let ty = if detail.is_empty() {
                kind.to_string()
            } else {
                format!("{kind} ({})", detail.join(" "))
            };
            let _ = writeln!(t, "                type: {ty}");
            for col in ["options", "external_ids"] {
                if p[col].as_object().is_some_and(|m| !m.is_empty()) {
                    let _ = writeln!(t, "                {col}: {}", ovs_value(&p[col]));
                }
            }
            if let Some(r) = p["fallback_reason"].as_str() {
                let _ = writeln!(t, "                fallback: {r:?}");
            }
            if let Some(e) = p["error"].as_str() {
                let _ = writeln!(t, "                error: {e:?}");
            }
        }
        bridges.push(json!({
            "name": bname,
            "other_config": br.other_config,
            "external_ids": br.external_ids,
            "ports": ports,
        }));
    }
    Output {
        text: t,
        json: json!({ "bridges": bridges }),
    }
}

pub fn fdb(rt: &Runtime, bridge: &str) -> Output {
    let rows = rt.fdb(bridge);
    let tunnelled = rows.iter().any(|(_, e)| e.remote != 0);
    let mut t = String::from(" port  VLAN  MAC                Age");
    t.push_str(if tunnelled { "  Remote\n" } else { "\n" });
    let mut j = Vec::new();
    for (name, e) in &rows {
        let mac = fmt_mac(&e.mac);
        let age = if e.is_static {
            "static".to_string()
        } else {
            e.age_secs.to_string()
        };
        let remote = (e.remote != 0).then(|| std::net::Ipv4Addr::from(e.remote).to_string());
        let _ = write!(t, "{name:>5}  {:>4}  {mac}  {age:>3}", e.vlan);
        match &remote {
            Some(r) => {
                let _ = writeln!(t, "  {r}");
            }
            None => t.push('\n'),
        }
        j.push(
            json!({"port": name, "vlan": e.vlan, "mac": mac, "age": e.age_secs,
                      "static": e.is_static, "remote": remote}),
        );
    }
    Output {
        text: t,
        json: json!(j),
    }
}

/// `tunnel/show`: each tunnel port with its VNI, remotes and their
/// underlay, and each endpoint with its decapsulation errors.
pub fn tunnels(rt: &Runtime) -> Output {
    let tunnels = rt.tunnels();
    let endpoints = rt.endpoints();
    let mut t = String::new();
    for tv in &tunnels {
        let mtu = tv.inner_mtu.map_or("-".to_string(), |m| m.to_string());
        let _ = writeln!(
            t,
            "{} (port {}): vxlan vni {} udp port {}, inner mtu {mtu}",
            tv.port, tv.port_no, tv.vni, tv.dst_port
        );
        for r in &tv.remotes {
            let via = match (&r.underlay, &r.local_ip, &r.error) {
                (Some(dev), Some(local), _) => format!("via {dev} from {local}"),
                (_, _, Some(e)) => format!("unreachable: {e}"),
                _ => "unresolved".to_string(),
            };
            let _ = writeln!(
                t,
                "  remote {} {via}: rx pkts={} bytes={} tx pkts={} bytes={}",
                r.remote_ip, r.rx_packets, r.rx_bytes, r.tx_packets, r.tx_bytes
            );
        }
    }
    for e in &endpoints {
        let state = e.error.clone().unwrap_or_else(|| "listening".to_string());
        let errs: Vec<String> = e
            .decap_errors
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let _ = writeln!(
            t,
            "{} (udp {}): {state}, rx pkts={}, errors: {}",
            e.name,
            e.udp_port,
            e.rx_packets,
            errs.join(", ")
        );
    }
    Output {
        text: t,
        json: json!({"tunnels": tunnels, "endpoints": endpoints}),
    }
}

pub fn dump_ports(rt: &Runtime, names: &[String]) -> Output {
    let mut t = String::new();
    let mut j = Vec::new();
    for n in names {
        let Some(c) = rt.counters(n) else { continue };
        let _ = writeln!(
            t,
            "  port {n}: rx pkts={}, bytes={}, drop={}\n           tx pkts={}, bytes={}, drop={}",
            c.rx_packets, c.rx_bytes, c.rx_dropped, c.tx_packets, c.tx_bytes, c.tx_dropped
        );
        let reasons: Vec<String> = c
            .drops
            .iter()
            .filter(|(_, v)| **v > 0)
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        if !reasons.is_empty() {
            let _ = writeln!(t, "           drops: {}", reasons.join(", "));
        }
        let mut row = json!(c);
        if let Some(i) = rt.impair_stats(n) {
            let _ = writeln!(
                t,
                "           impairment: queued={}, delayed={}, lost={}, overflow={}, refused={}",
                i.queued_now, i.delayed_total, i.lost, i.overflow, i.refused
            );
            row["impairment"] = json!({
                "queued": i.queued_now, "delayed": i.delayed_total, "lost": i.lost,
                "overflow": i.overflow, "refused": i.refused,
            });
        }
        j.push(row);
    }
    Output {
        text: t,
        json: json!(j),
    }
}

fn pmd_header(r: &crate::datapath::pmd::PmdReport) -> String {
    match r.core {
        Some(c) => format!("pmd thread {} core {c}:", r.pmd),
        None => format!("pmd thread {} core any:", r.pmd),
    }
}

pub fn pmd_stats(rt: &Runtime) -> Output {
    let reports = rt.pmd_reports();
    let mut t = String::new();
    for r in &reports {
        let _ = writeln!(t, "{}", pmd_header(r));
        let _ = writeln!(t, "  packets received: {}", r.packets);
        let _ = writeln!(
            t,
            "  batches: {} (avg {:.1} packets)",
            r.batches, r.avg_batch
        );
        let total = (r.busy_cycles + r.idle_cycles).max(1) as f64;
        let _ = writeln!(
            t,
            "  idle cycles: {} ({:.2} %)",
            r.idle_cycles,
            100.0 * r.idle_cycles as f64 / total
        );
        let _ = writeln!(
            t,
            "  processing cycles: {} ({:.2} %)",
            r.busy_cycles, r.busy_pct
        );
        let _ = writeln!(
            t,
            "    of which in transmit system calls: {} ({:.2} % of processing)",
            r.tx_cycles, r.tx_pct_of_busy
        );
        let _ = writeln!(t, "  avg cycles per packet: {:.1}", r.cycles_per_packet);
        let _ = writeln!(
            t,
            "  avg processing cycles per packet: {:.1} ({:.1} ns at {:.3} GHz)",
            r.busy_cycles_per_packet,
            r.ns_per_packet,
            r.cycles_hz / 1e9
        );
        let _ = writeln!(t, "  idle sleeps: {}", r.sleeps);
    }
    Output {
        text: t,
        json: json!(reports),
    }
}

pub fn pmd_rxqs(rt: &Runtime) -> Output {
    let reports = rt.pmd_reports();
    let mut t = String::new();
    let mut j = Vec::new();
    for r in &reports {
        let _ = writeln!(t, "{}", pmd_header(r));
        for q in &r.rxqs {
            let _ = writeln!(t, "  {q}");
        }
        j.push(json!({"pmd": r.pmd, "core": r.core, "rxqs": r.rxqs}));
    }
    Output {
        text: t,
        json: json!(j),
    }
}

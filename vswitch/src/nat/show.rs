//! `conntrack/show` and `conntrack/stats`, in the style of `conntrack -L`
//! and `conntrack -S`, and as JSON.

use crate::commands::Output;
use crate::runtime::Runtime;
use pipeline::conntrack::Tuple;
use pipeline::wire::ip_proto;
use serde_json::{json, Value};
use std::net::Ipv4Addr;

fn proto_name(p: u8) -> &'static str {
    match p {
        ip_proto::TCP => "tcp",
        ip_proto::UDP => "udp",
        ip_proto::ICMP => "icmp",
        _ => "ip",
    }
}

fn tuple_text(t: &Tuple) -> String {
    let (s, d) = (Ipv4Addr::from(t.src), Ipv4Addr::from(t.dst));
    if t.proto == ip_proto::ICMP {
        format!("src={s} dst={d} id={}", t.sport)
    } else {
        format!("src={s} dst={d} sport={} dport={}", t.sport, t.dport)
    }
}

fn tuple_json(t: &Tuple) -> Value {
    json!({
        "src": Ipv4Addr::from(t.src).to_string(),
        "dst": Ipv4Addr::from(t.dst).to_string(),
        "sport": t.sport,
        "dport": t.dport,
    })
}

/// The connections (of one zone), one line each.
pub fn conntrack(rt: &Runtime, zone: Option<u16>) -> Output {
    let views = rt.conntrack(zone);
    let mut text = String::new();
    let mut items = Vec::new();
    for v in &views {
        let c = &v.conn;
        let state = c.state().map(|s| s.name()).unwrap_or("");
        let secs = v.expires_in_ms.div_ceil(1000);
        let proto = proto_name(c.orig.proto);
        let mut line = format!("{proto:<5} {:>3} {secs} ", c.orig.proto);
        if !state.is_empty() {
            line += &format!("{state} ");
        }
        line += &format!(
            "{} packets={} bytes={} {} packets={} bytes={}",
            tuple_text(&c.orig),
            c.packets[0],
            c.bytes[0],
            tuple_text(&c.reply),
            c.packets[1],
            c.bytes[1]
        );
        if !c.replied {
            line += " [UNREPLIED]";
        }
        line += &format!(" bridge={}\n", v.bridge);
        text += &line;
        items.push(json!({
            "proto": proto,
            "orig": tuple_json(&c.orig),
            "reply": tuple_json(&c.reply),
            "state": (!state.is_empty()).then_some(state),
            "expires_in_secs": secs,
            "replied": c.replied,
            "packets": {"orig": c.packets[0], "reply": c.packets[1]},
            "bytes": {"orig": c.bytes[0], "reply": c.bytes[1]},
            "bridge": v.bridge,
        }));
    }
    Output {
        text,
        json: Value::Array(items),
    }
}

/// Entries, the limit, connections created, and drops by reason.
pub fn conntrack_stats(rt: &Runtime) -> Output {
    let (s, drops, arp) = rt.ct_stats();
    let mut text = format!(
        "entries: {}\nlimit: {}\ncreated: {}\nexpired: {}\n",
        s.entries, s.max, s.created, s.expired
    );
    let mut dj = serde_json::Map::new();
    text += "drops:\n";
    for (name, n) in &drops {
        text += &format!("  {name}: {n}\n");
        dj.insert(name.to_string(), json!(n));
    }
    text += &format!("arp hold drops: {arp}\n");
    Output {
        text,
        json: json!({
            "entries": s.entries, "limit": s.max, "created": s.created,
            "expired": s.expired, "drops": dj, "arp_hold_dropped": arp,
        }),
    }
}

//! Port mirrors with OVS's semantics: `add-mirror BR NAME [select-src=P,...]
//! [select-dst=P,...] [select-vlan=N,...] [select-all] output=PORT|output-vlan=N`,
//! `del-mirror BR NAME`, `list-mirrors [BR]`.
//!
//! A frame is copied once per mirror when it was received on a selected
//! source port, leaves by a selected destination port, belongs to a
//! selected VLAN, or the mirror selects all. The copy carries the frame's
//! VLAN as a tag (as on a trunk). A mirror output port receives copies only:
//! it is left out of floods and learning, and what arrives on it is
//! dropped (`mirror-output`). The datapath side is `datapath::mirror`.

use crate::commands::{CommandReq, Failure, Output, Txn};
use crate::config::{Bridge, Config, Mirror};
use serde_json::json;

type CmdResult = Result<Output, Failure>;

pub const ADD_USAGE: &str = "add-mirror BRIDGE NAME [select-src=PORT,...] [select-dst=PORT,...] \
     [select-vlan=VID,...] [select-all] output=PORT|output-vlan=VID";

pub fn run(txn: &mut Txn, name: &str, args: &[String], c: &CommandReq) -> CmdResult {
    match (name, args) {
        ("add-mirror", [br, m, rest @ ..]) if !rest.is_empty() => {
            let mirror = parse(rest)?;
            let b = bridge_mut(txn, br)?;
            if b.mirrors.contains_key(m.as_str()) && !c.may_exist {
                return Err(format!("bridge {br} already has a mirror named {m}").into());
            }
            check(br, b, m, &mirror)?;
            b.mirrors.insert(m.clone(), mirror);
            Ok(none())
        }
        ("add-mirror", _) => Err(format!("usage: vswctl {ADD_USAGE}").into()),
        ("del-mirror", [br, m]) => {
            let b = bridge_mut(txn, br)?;
            if b.mirrors.remove(m.as_str()).is_none() && !c.if_exists {
                return Err(format!("bridge {br} has no mirror named {m}").into());
            }
            Ok(none())
        }
        ("del-mirror", _) => Err("usage: vswctl del-mirror BRIDGE NAME".to_string().into()),
        ("list-mirrors", [] | [_]) => list(txn, args.first()),
        ("list-mirrors", _) => Err("usage: vswctl list-mirrors [BRIDGE]".to_string().into()),
        _ => Err(format!("unknown command '{name}'").into()),
    }
}

fn none() -> Output {
    Output {
        text: String::new(),
        json: serde_json::Value::Null,
    }
}

fn bridge_mut<'a>(txn: &'a mut Txn, br: &str) -> Result<&'a mut Bridge, Failure> {
    txn.cfg
        .bridges
        .get_mut(br)
        .ok_or_else(|| format!("no bridge named {br}").into())
}

/// The selection and output words of `add-mirror`.
fn parse(words: &[String]) -> Result<Mirror, String> {
    let mut m = Mirror::default();
    let names = |v: &str| -> Vec<String> {
        v.split(',')
            .filter(|p| !p.is_empty())
            .map(String::from)
            .collect()
    };
    for w in words {
        match w.split_once('=') {
            None if w == "select-all" => m.select_all = true,
            Some(("select-src", v)) => m.select_src_port.extend(names(v)),
            Some(("select-dst", v)) => m.select_dst_port.extend(names(v)),
            Some(("select-vlan", v)) => {
                for x in v.split(',').filter(|x| !x.is_empty()) {
                    m.select_vlan.push(vid(x)?);
                }
            }
            Some(("output", v)) => m.output_port = Some(v.to_string()),
            Some(("output-vlan", v)) => m.output_vlan = Some(vid(v)?),
            _ => {
                return Err(format!(
                    "add-mirror: \"{w}\" is not select-src=, select-dst=, select-vlan=, \
                     select-all, output= or output-vlan="
                ))
            }
        }
    }
    Ok(m)
}

fn vid(x: &str) -> Result<u16, String> {
    x.parse::<u16>()
        .ok()
        .filter(|v| (1..=4095).contains(v))
        .ok_or_else(|| format!("\"{x}\" is not a VLAN id (1 to 4095)"))
}

/// One mirror of bridge `br` holds together.
fn check(br: &str, b: &Bridge, name: &str, m: &Mirror) -> Result<(), String> {
    let at = format!("mirror {name} on {br}");
    if !m.select_all
        && m.select_src_port.is_empty()
        && m.select_dst_port.is_empty()
        && m.select_vlan.is_empty()
    {
        return Err(format!(
            "{at}: select something (select-src, select-dst, select-vlan or select-all)"
        ));
    }
    for p in m.select_src_port.iter().chain(&m.select_dst_port) {
        if !b.ports.contains_key(p) && p != br {
            return Err(format!("{at}: bridge {br} has no port named {p}"));
        }
    }
    match (&m.output_port, m.output_vlan) {
        (Some(o), None) => {
            if !b.ports.contains_key(o) {
                return Err(format!("{at}: bridge {br} has no port named {o}"));
            }
            if m.select_src_port.contains(o) || m.select_dst_port.contains(o) {
                return Err(format!("{at}: the output port {o} cannot also be selected"));
            }
            if let Some((other, _)) = b
                .mirrors
                .iter()
                .find(|(n, x)| *n != name && x.output_port.as_ref() == Some(o))
            {
                return Err(format!(
                    "{at}: port {o} is already the output of mirror {other}"
                ));
            }
        }
        (None, Some(v)) => {
            vid(&v.to_string())?;
        }
        _ => {
            return Err(format!(
                "{at}: give exactly one of output=PORT or output-vlan=VID"
            ))
        }
    }
    Ok(())
}

/// Every mirror of `cfg` holds together (a stored configuration, or the
/// result of a transaction).
pub fn validate(cfg: &Config) -> Result<(), String> {
    for (br, b) in &cfg.bridges {
        for (name, m) in &b.mirrors {
            check(br, b, name, m)?;
        }
    }
    Ok(())
}

/// Port `port` left bridge `b`: it is taken out of every selection, and a
/// mirror that output to it goes (as OVS does when its output port goes).
pub fn forget_port(b: &mut Bridge, port: &str) {
    b.mirrors
        .retain(|_, m| m.output_port.as_deref() != Some(port));
    for m in b.mirrors.values_mut() {
        m.select_src_port.retain(|p| p != port);
        m.select_dst_port.retain(|p| p != port);
    }
    b.mirrors.retain(|_, m| {
        m.select_all
            || !m.select_src_port.is_empty()
            || !m.select_dst_port.is_empty()
            || !m.select_vlan.is_empty()
    });
}

fn list(txn: &Txn, br: Option<&String>) -> CmdResult {
    if let Some(b) = br {
        if !txn.cfg.bridges.contains_key(b) {
            return Err(format!("no bridge named {b}").into());
        }
    }
    let mut lines = Vec::new();
    let mut rows = Vec::new();
    for (bname, b) in &txn.cfg.bridges {
        if br.is_some_and(|x| x != bname) {
            continue;
        }
        for (name, m) in &b.mirrors {
            let (packets, bytes) = txn.rt.mirror_counters(bname, name);
            let mut sel = Vec::new();
            if m.select_all {
                sel.push("select-all".to_string());
            }
            if !m.select_src_port.is_empty() {
                sel.push(format!("select-src={}", m.select_src_port.join(",")));
            }
            if !m.select_dst_port.is_empty() {
                sel.push(format!("select-dst={}", m.select_dst_port.join(",")));
            }
            if !m.select_vlan.is_empty() {
                let v: Vec<String> = m.select_vlan.iter().map(u16::to_string).collect();
                sel.push(format!("select-vlan={}", v.join(",")));
            }
            let out = match (&m.output_port, m.output_vlan) {
                (Some(p), _) => format!("output={p}"),
                (None, Some(v)) => format!("output-vlan={v}"),
                (None, None) => String::new(),
            };
            lines.push(format!(
                "{bname} {name}: {} {out} tx_packets={packets} tx_bytes={bytes}",
                sel.join(" ")
            ));
            rows.push(json!({
                "bridge": bname, "name": name, "select_all": m.select_all,
                "select_src_port": m.select_src_port, "select_dst_port": m.select_dst_port,
                "select_vlan": m.select_vlan, "output_port": m.output_port,
                "output_vlan": m.output_vlan, "tx_packets": packets, "tx_bytes": bytes,
            }));
        }
    }
    Ok(Output {
        text: lines.iter().map(|l| format!("{l}\n")).collect(),
        json: json!(rows),
    })
}

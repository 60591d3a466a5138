//! `add-uplink`, `del-uplink`, `publish`, `unpublish`, `list-published`
//! and `conntrack/{show,flush,stats}`. Configuration commands only change
//! the transaction's copy; `commands::execute` checks the whole result with
//! [`super::validate`] before anything is stored.

use super::{proto_number, Cidr};
use crate::commands::{CommandReq, Failure, Output, Txn};
use crate::config::{Published, Uplink};
use ports::netdev::check_ifname;
use serde_json::{json, Value};
use std::net::Ipv4Addr;

type CmdResult = Result<Output, Failure>;

pub const ADD_UPLINK_USAGE: &str = "add-uplink PORT IP/PREFIX@NEXTHOP [type=TYPE]";
pub const PUBLISH_USAGE: &str =
    "publish BRIDGE tcp|udp HOSTPORT[-END] IP:PORT[-END] [--ip UPLINK_IP]";

/// Runs one of this module's commands.
pub fn run(txn: &mut Txn, name: &str, args: &[String], c: &CommandReq) -> CmdResult {
    let want = |lo: usize, hi: usize, usage: &str| -> Result<(), Failure> {
        if args.len() < lo || args.len() > hi {
            return Err(format!("usage: vswctl {usage}").into());
        }
        Ok(())
    };
    match name {
        "add-uplink" => {
            want(2, 3, ADD_UPLINK_USAGE)?;
            add_uplink(txn, args, c.may_exist)
        }
        "del-uplink" => {
            want(1, 1, "del-uplink PORT")?;
            del_uplink(txn, &args[0], c.if_exists)
        }
        "publish" => {
            want(4, 6, PUBLISH_USAGE)?;
            publish(txn, args, c.may_exist)
        }
        "unpublish" => {
            want(3, 3, "unpublish BRIDGE tcp|udp HOSTPORT")?;
            unpublish(txn, args, c.if_exists)
        }
        "list-published" => {
            want(0, 1, "list-published [BRIDGE]")?;
            list_published(txn, args.first())
        }
        "conntrack/show" => {
            want(0, 1, "conntrack/show [BRIDGE]")?;
            let zone = zone_arg(txn, args.first())?;
            Ok(super::show::conntrack(txn.rt, zone))
        }
        "conntrack/flush" => {
            want(0, 1, "conntrack/flush [BRIDGE]")?;
            let zone = zone_arg(txn, args.first())?;
            txn.ct_flush(zone);
            Ok(Output {
                text: String::new(),
                json: Value::Null,
            })
        }
        "conntrack/stats" => {
            want(0, 0, "conntrack/stats")?;
            Ok(super::show::conntrack_stats(txn.rt))
        }
        _ => Err(format!("unknown command '{name}'").into()),
    }
}

/// The zone of the bridge named by an optional argument.
fn zone_arg(txn: &Txn, bridge: Option<&String>) -> Result<Option<u16>, Failure> {
    let Some(b) = bridge else { return Ok(None) };
    if !txn.cfg.bridges.contains_key(b) {
        return Err(format!("no bridge named {b}").into());
    }
    Ok(Some(txn.rt.zone_of(b).unwrap_or(u16::MAX)))
}

fn add_uplink(txn: &mut Txn, args: &[String], may_exist: bool) -> CmdResult {
    let port = &args[0];
    check_ifname(port).map_err(|e| format!("cannot add uplink: {e}"))?;
    let (addr, hop) = args[1].split_once('@').ok_or_else(|| {
        format!(
            "\"{}\" is not IP/PREFIX@NEXTHOP (for example 192.168.50.2/24@192.168.50.1)",
            args[1]
        )
    })?;
    let addr = Cidr::parse(addr, "uplink address")?;
    let mut kind = String::new();
    if let Some(t) = args.get(2) {
        match t.split_once('=') {
            Some(("type", v)) if ["", "system", "afxdp", "afpacket"].contains(&v) => {
                kind = v.to_string()
            }
            Some(("type", v)) => {
                return Err(
                    format!("uplink type \"{v}\" is not one of system, afxdp, afpacket").into(),
                )
            }
            _ => return Err(format!("\"{t}\" is not type=TYPE").into()),
        }
    }
    let new = Uplink {
        port: port.clone(),
        address: addr.to_string(),
        nexthop: hop.to_string(),
        kind,
        ofport: None,
    };
    super::uplink_addrs(&new)?;
    if let Some(b) = txn.cfg.port_bridge(port) {
        return Err(format!(
            "{port} cannot be the uplink: it is {} bridge {b}",
            if b == port {
                "the internal port of"
            } else {
                "a port of"
            }
        )
        .into());
    }
    if let Some(old) = &txn.cfg.uplink {
        let same = old.port == new.port && old.address == new.address && old.nexthop == new.nexthop;
        if same && may_exist {
            return Ok(none());
        }
        return Err(format!(
            "the switch already has an uplink ({}); one uplink serves every bridge (del-uplink first)",
            old.port
        )
        .into());
    }
    txn.cfg.uplink = Some(new);
    Ok(none())
}

fn del_uplink(txn: &mut Txn, port: &str, if_exists: bool) -> CmdResult {
    match &txn.cfg.uplink {
        Some(u) if u.port == port => {
            txn.cfg.uplink = None;
            Ok(none())
        }
        _ if if_exists => Ok(none()),
        Some(u) => Err(format!("{port} is not the uplink (the uplink is {})", u.port).into()),
        None => Err(format!("{port} is not the uplink (there is none)").into()),
    }
}

/// `A` or `A-B`, ports from 1 to 65535.
fn port_range(s: &str, what: &str) -> Result<(u16, u16), Failure> {
    let bad = || {
        Failure::from(format!(
            "{what} \"{s}\" is not PORT or PORT-END (1 to 65535)"
        ))
    };
    let (a, b) = s.split_once('-').unwrap_or((s, s));
    let a: u16 = a.parse().map_err(|_| bad())?;
    let b: u16 = b.parse().map_err(|_| bad())?;
    if a == 0 || b < a {
        return Err(bad());
    }
    Ok((a, b))
}

fn publish(txn: &mut Txn, args: &[String], may_exist: bool) -> CmdResult {
    let (br, proto) = (&args[0], &args[1]);
    proto_number(proto)?;
    let (first, last) = port_range(&args[2], "host port")?;
    let (to, to_ports) = args[3]
        .rsplit_once(':')
        .ok_or_else(|| format!("\"{}\" is not IP:PORT[-END]", args[3]))?;
    let to_ip: Ipv4Addr = to
        .parse()
        .map_err(|_| format!("\"{to}\" in \"{}\" is not an IPv4 address", args[3]))?;
    let (to_port, to_last) = port_range(to_ports, "container port")?;
    if to_last != to_port && to_last - to_port != last - first {
        return Err(format!(
            "the host ports {first}-{last} and container ports {to_port}-{to_last} differ in length"
        )
        .into());
    }
    let ip = match &args[4..] {
        [] => None,
        [o, v] if o == "--ip" => Some(v.clone()),
        [o] if o.starts_with("--ip=") => Some(o["--ip=".len()..].to_string()),
        _ => return Err(format!("usage: vswctl {PUBLISH_USAGE}").into()),
    };
    let rule = Published {
        proto: proto.clone(),
        host_port: first,
        host_port_end: last,
        ip,
        to: to_ip.to_string(),
        to_port,
    };
    let b = txn
        .cfg
        .bridges
        .get_mut(br)
        .ok_or_else(|| Failure::from(format!("no bridge named {br}")))?;
    if may_exist && b.published.contains(&rule) {
        return Ok(none());
    }
    b.published.push(rule);
    Ok(none())
}

fn unpublish(txn: &mut Txn, args: &[String], if_exists: bool) -> CmdResult {
    let (br, proto) = (&args[0], &args[1]);
    proto_number(proto)?;
    let (port, _) = port_range(&args[2], "host port")?;
    let b = txn
        .cfg
        .bridges
        .get_mut(br)
        .ok_or_else(|| Failure::from(format!("no bridge named {br}")))?;
    let before = b.published.len();
    b.published
        .retain(|p| !(p.proto == *proto && p.host_port == port));
    if b.published.len() == before && !if_exists {
        return Err(format!("bridge {br} does not publish {proto} port {port}").into());
    }
    Ok(none())
}

fn list_published(txn: &Txn, bridge: Option<&String>) -> CmdResult {
    if let Some(b) = bridge {
        if !txn.cfg.bridges.contains_key(b) {
            return Err(format!("no bridge named {b}").into());
        }
    }
    let up = txn
        .cfg
        .uplink
        .as_ref()
        .and_then(|u| u.address.split_once('/').map(|(ip, _)| ip.to_string()));
    let mut lines = Vec::new();
    let mut items = Vec::new();
    for (b, br) in &txn.cfg.bridges {
        if bridge.is_some_and(|x| x != b) {
            continue;
        }
        for p in &br.published {
            let ports = |a: u16, n: u16| {
                if n == 0 {
                    a.to_string()
                } else {
                    format!("{a}-{}", a as u32 + n as u32)
                }
            };
            let span = p.host_port_end - p.host_port;
            let ip = p.ip.clone().or(up.clone()).unwrap_or_else(|| "*".into());
            lines.push(format!(
                "{b} {} {ip}:{} -> {}:{}",
                p.proto,
                ports(p.host_port, span),
                p.to,
                ports(p.to_port, span)
            ));
            items.push(json!({
                "bridge": b, "proto": p.proto, "ip": ip,
                "host_port": p.host_port, "host_port_end": p.host_port_end,
                "to": p.to, "to_port": p.to_port,
            }));
        }
    }
    Ok(Output {
        text: lines.iter().map(|l| format!("{l}\n")).collect(),
        json: Value::Array(items),
    })
}

fn none() -> Output {
    Output {
        text: String::new(),
        json: Value::Null,
    }
}

//! `cluster/join`, `cluster/leave`, `cluster/show`, and the cluster-wide
//! `network/create`, `network/delete` and `network/list`.
//!
//! Joining is a configuration change like any other (stored, kept across
//! restarts), made only once etcd has answered. Network commands change
//! nothing here: they are etcd transactions, checked against what etcd
//! holds at that moment, and refused as a whole if another host changed
//! the networks in between.

use super::etcd::{Client, Compare, Op};
use super::view::{self, Cidr, NetworkRec, PREFIX};
use super::{COMMAND_RETRY, DEFAULT_TTL, REQUEST_TIMEOUT};
use crate::attach::spec::split;
use crate::commands::{CommandReq, Failure, Output, Txn};
use crate::config::{ClusterCfg, Config};
use serde_json::{json, Value};
use std::net::Ipv4Addr;

type CmdResult = Result<Output, Failure>;

pub const JOIN_USAGE: &str =
    "cluster/join http://IP:PORT[,http://IP:PORT...] [--vtep-ip IP] [--host NAME] [--ttl SECONDS]";
pub const CREATE_USAGE: &str = "network/create NAME --vni N --subnet CIDR [--gateway IP]";

pub fn run(txn: &mut Txn, name: &str, args: &[String], c: &CommandReq) -> CmdResult {
    match name {
        "cluster/join" => join(txn, args),
        "cluster/leave" => {
            no_args(name, args)?;
            if txn.cfg.cluster.take().is_none() && !c.if_exists {
                return Err("this switch is not in a cluster".to_string().into());
            }
            Ok(text(String::new(), Value::Null))
        }
        "cluster/show" => {
            no_args(name, args)?;
            Ok(show(&txn.cfg, txn.rt))
        }
        "network/create" => create(txn, args, c.may_exist),
        "network/delete" => delete(txn, args, c.if_exists),
        "network/list" => {
            no_args(name, args)?;
            list(&txn.cfg)
        }
        other => Err(format!("unknown cluster command {other}").into()),
    }
}

fn no_args(name: &str, args: &[String]) -> Result<(), Failure> {
    match args.is_empty() {
        true => Ok(()),
        false => Err(format!("'{name}' takes no arguments").into()),
    }
}

fn text(text: String, json: Value) -> Output {
    Output { text, json }
}

/// A host or network name: what fits in an etcd key segment and a log line.
fn check_name(what: &str, s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !s.starts_with('.');
    match ok {
        true => Ok(()),
        false => Err(format!(
            "{what} \"{s}\" must be 1 to 64 letters, digits, '-', '_' or '.'"
        )),
    }
}

/// A client for the cluster this switch joined.
pub fn client(cfg: &Config) -> Result<Client, String> {
    let c = cfg
        .cluster
        .as_ref()
        .ok_or("this switch is not in a cluster: run `vswctl cluster/join http://IP:2379` first")?;
    Client::new(&c.endpoints, REQUEST_TIMEOUT)
        .map(|c| c.retrying(COMMAND_RETRY))
        .map_err(|e| e.to_string())
}

fn join(txn: &mut Txn, args: &[String]) -> CmdResult {
    let (pos, opts, _) = split("cluster/join", args, &["vtep-ip", "host", "ttl"], &[])?;
    let [endpoints] = pos.as_slice() else {
        return Err(format!("usage: vswctl {JOIN_USAGE}").into());
    };
    let endpoints: Vec<String> = endpoints
        .split(',')
        .map(|e| e.trim().to_string())
        .filter(|e| !e.is_empty())
        .collect();
    let host = match opts.get("host") {
        Some(h) => h.clone(),
        None => hostname()?,
    };
    check_name("host name", &host)?;
    let ttl = match opts.get("ttl") {
        None => DEFAULT_TTL,
        Some(t) => t
            .parse::<u32>()
            .ok()
            .filter(|t| (1..=3600).contains(t))
            .ok_or_else(|| format!("--ttl \"{t}\" is not a number of seconds from 1 to 3600"))?,
    };
    if let Some(v) = opts.get("vtep-ip") {
        let ip: Ipv4Addr = v
            .parse()
            .map_err(|_| format!("--vtep-ip \"{v}\" is not an IPv4 address"))?;
        if ports::vxlan::ifname_of_addr(ip).is_none() {
            return Err(format!("--vtep-ip {ip} is not an address of this host").into());
        }
    }
    let cfg = ClusterCfg {
        endpoints,
        host,
        vtep_ip: opts.get("vtep-ip").cloned(),
        ttl,
    };
    let client = Client::new(&cfg.endpoints, REQUEST_TIMEOUT)
        .map_err(|e| e.to_string())?
        .retrying(COMMAND_RETRY);
    client.revision().map_err(|e| {
        format!(
            "cannot reach etcd at {}: {e}; nothing was stored",
            cfg.endpoints.join(",")
        )
    })?;
    let vtep = super::vtep_of(&cfg)?;
    // Another live switch under the same name would take turns with this
    // one at the same keys.
    if let Some(kv) = client
        .get(&view::host_key(&cfg.host))
        .map_err(|e| e.to_string())?
    {
        let theirs = serde_json::from_slice::<view::HostRec>(&kv.value).ok();
        let mine = txn.cfg.cluster.as_ref().is_some_and(|c| c.host == cfg.host);
        if theirs.as_ref().is_some_and(|h| h.vtep != vtep) && !mine {
            return Err(format!(
                "host name {} is in use by the switch with VTEP {} (its lease is live); give this one another --host",
                cfg.host,
                theirs.map(|h| h.vtep.to_string()).unwrap_or_default()
            )
            .into());
        }
    }
    txn.cfg.cluster = Some(cfg);
    Ok(text(String::new(), Value::Null))
}

fn hostname() -> Result<String, String> {
    let h = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map_err(|e| format!("cannot read the host name ({e}); give --host NAME"))?;
    Ok(h.trim().to_string())
}

fn show(cfg: &Config, rt: &crate::runtime::Runtime) -> Output {
    let Some(c) = &cfg.cluster else {
        return text("not in a cluster\n".into(), json!({"joined": false}));
    };
    let st = rt.cluster.status();
    let view = rt.cluster.view();
    let hosts = view.hosts();
    let state = if st.connected {
        "connected"
    } else {
        "disconnected"
    };
    let mut t = format!(
        "etcd: {} ({state}{})\nhost: {}\nvtep: {}\nlease: {:x} (TTL {} s)\nrevision: {}\n",
        c.endpoints.join(","),
        st.endpoint
            .as_ref()
            .filter(|_| st.connected)
            .map(|e| format!(" to {e}"))
            .or_else(|| st.error.as_ref().map(|e| format!(": {e}")))
            .unwrap_or_default(),
        c.host,
        st.vtep.map(|v| v.to_string()).unwrap_or_else(|| "-".into()),
        st.lease,
        c.ttl,
        view.revision,
    );
    t.push_str("hosts:\n");
    for (h, v) in &hosts {
        let me = if *h == c.host { " (this host)" } else { "" };
        t.push_str(&format!("  {h}: vtep {v}{me}\n"));
    }
    let mut nets = Vec::new();
    for (bname, b) in &cfg.bridges {
        let Some(net) = super::bridge_network(b) else {
            continue;
        };
        let members = view.member_count(net);
        let remote = view.members(net).filter(|m| m.host != c.host).count();
        t.push_str(&format!(
            "bridge {bname}: network {net}, {members} members ({remote} remote), {} static entries\n",
            rt.overlay_entries(bname)
        ));
        nets.push(json!({"bridge": bname, "network": net, "members": members,
            "remote_members": remote, "fdb_entries": rt.overlay_entries(bname)}));
    }
    let j = json!({
        "joined": true,
        "endpoints": c.endpoints,
        "state": state,
        "endpoint": st.endpoint,
        "error": st.error,
        "host": c.host,
        "vtep": st.vtep,
        "lease": st.lease,
        "ttl": c.ttl,
        "revision": view.revision,
        "hosts": hosts,
        "bridges": nets,
    });
    text(t, j)
}

fn create(txn: &mut Txn, args: &[String], may_exist: bool) -> CmdResult {
    let (pos, opts, _) = split("network/create", args, &["vni", "subnet", "gateway"], &[])?;
    let [name] = pos.as_slice() else {
        return Err(format!("usage: vswctl {CREATE_USAGE}").into());
    };
    check_name("network name", name)?;
    let vni = opts
        .get("vni")
        .ok_or_else(|| format!("network/create: --vni is required (usage: {CREATE_USAGE})"))?;
    let vni = vni
        .parse::<u32>()
        .ok()
        .filter(|v| (1..=pipeline::vxlan::VNI_MAX).contains(v))
        .ok_or_else(|| format!("--vni \"{vni}\" is not a VNI from 1 to 16777215"))?;
    let subnet = opts
        .get("subnet")
        .ok_or_else(|| format!("network/create: --subnet is required (usage: {CREATE_USAGE})"))?;
    let subnet = Cidr::parse(subnet)?;
    let gateway = match opts.get("gateway") {
        None => None,
        Some(g) => {
            let ip: Ipv4Addr = g
                .parse()
                .map_err(|_| format!("--gateway \"{g}\" is not an IPv4 address"))?;
            if !subnet.is_host(ip) {
                return Err(format!("--gateway {ip} is not a host address of {subnet}").into());
            }
            Some(ip)
        }
    };
    let rec = NetworkRec {
        vni,
        subnet,
        gateway,
    };
    let client = client(&txn.cfg)?;
    let (nets, idx) = networks(&client)?;
    if let Some(old) = nets.iter().find(|(n, _)| n == name) {
        if may_exist && old.1 == rec {
            return Ok(text(String::new(), Value::Null));
        }
        return Err(format!(
            "network {name} exists (VNI {}, subnet {})",
            old.1.vni, old.1.subnet
        )
        .into());
    }
    if let Some((n, _)) = nets.iter().find(|(_, r)| r.vni == vni) {
        return Err(format!("VNI {vni} is taken by network {n}").into());
    }
    if let Some((n, r)) = nets.iter().find(|(_, r)| r.subnet.overlaps(&subnet)) {
        return Err(format!("subnet {subnet} overlaps network {n}'s {}", r.subnet).into());
    }
    let value = serde_json::to_vec(&rec).unwrap_or_default();
    network_change(
        &client,
        name,
        idx,
        vec![
            Compare::Created(view::network_key(name), 0),
            Compare::Created(view::vni_key(vni), 0),
        ],
        vec![
            Op::Put {
                key: view::network_key(name),
                value,
                lease: 0,
            },
            Op::Put {
                key: view::vni_key(vni),
                value: name.as_bytes().to_vec(),
                lease: 0,
            },
        ],
        "created",
    )
}

/// Runs one change of the networks as a transaction that also rewrites
/// `netindex`, on the condition that nobody else changed it since `idx`.
fn network_change(
    client: &Client,
    name: &str,
    idx: i64,
    mut compares: Vec<Compare>,
    mut ops: Vec<Op>,
    what: &str,
) -> CmdResult {
    compares.push(Compare::Modified(view::netindex_key(), idx));
    ops.push(Op::Put {
        key: view::netindex_key(),
        value: name.as_bytes().to_vec(),
        lease: 0,
    });
    let ok = client
        .txn(&compares, &ops, &[])
        .map_err(|e| e.to_string())?;
    if !ok {
        return Err(format!(
            "another host changed the networks at the same moment; nothing was {what}, try again"
        )
        .into());
    }
    Ok(text(String::new(), Value::Null))
}

/// Every network in etcd, and the revision of the key that serialises
/// network changes.
fn networks(client: &Client) -> Result<(Vec<(String, NetworkRec)>, i64), String> {
    let (kvs, _) = client
        .range_prefix(&format!("{PREFIX}networks/"))
        .map_err(|e| e.to_string())?;
    let nets = kvs
        .iter()
        .filter_map(|kv| {
            let n = kv.key.strip_prefix(&format!("{PREFIX}networks/"))?;
            Some((n.to_string(), serde_json::from_slice(&kv.value).ok()?))
        })
        .collect();
    let idx = client
        .get(&view::netindex_key())
        .map_err(|e| e.to_string())?
        .map_or(0, |kv| kv.mod_revision);
    Ok((nets, idx))
}

fn delete(txn: &mut Txn, args: &[String], if_exists: bool) -> CmdResult {
    let [name] = args else {
        return Err("usage: vswctl network/delete NAME".to_string().into());
    };
    let client = client(&txn.cfg)?;
    let (nets, idx) = networks(&client)?;
    let Some((_, rec)) = nets.iter().find(|(n, _)| n == name) else {
        if if_exists {
            return Ok(text(String::new(), Value::Null));
        }
        return Err(format!("no network named {name}").into());
    };
    let count = |prefix: String| -> Result<usize, String> {
        Ok(client
            .range_prefix(&prefix)
            .map_err(|e| e.to_string())?
            .0
            .len())
    };
    let members = count(view::members_prefix(name))?;
    let addrs = count(view::ips_prefix(name))?;
    if members > 0 || addrs > 0 {
        return Err(format!(
            "network {name} is in use: {members} members, {addrs} addresses reserved; detach its containers first"
        )
        .into());
    }
    network_change(
        &client,
        name,
        idx,
        Vec::new(),
        vec![
            Op::Delete(view::network_key(name)),
            Op::Delete(view::vni_key(rec.vni)),
        ],
        "deleted",
    )
}

fn list(cfg: &Config) -> CmdResult {
    let client = client(cfg)?;
    let (nets, _) = networks(&client)?;
    let (members, _) = client
        .range_prefix(&format!("{PREFIX}members/"))
        .map_err(|e| e.to_string())?;
    let mut t = String::new();
    let mut rows = Vec::new();
    for (n, r) in &nets {
        let p = view::members_prefix(n);
        let count = members.iter().filter(|kv| kv.key.starts_with(&p)).count();
        let gw = r
            .gateway
            .map(|g| g.to_string())
            .unwrap_or_else(|| "-".into());
        t.push_str(&format!(
            "{n}: vni {} subnet {} gateway {gw} members {count}\n",
            r.vni, r.subnet
        ));
        rows.push(
            json!({"name": n, "vni": r.vni, "subnet": r.subnet.to_string(),
            "gateway": r.gateway, "members": count}),
        );
    }
    Ok(text(t, Value::Array(rows)))
}

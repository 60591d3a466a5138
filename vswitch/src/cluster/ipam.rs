//! Addresses of containers attached to a bridge in a network, reserved in
//! etcd so that no two hosts ever give out the same one: each address is a
//! key (`ips/NET/IP`) created only if absent, in one transaction. Without
//! an address, `attach` takes the lowest free one of the subnet; a given
//! one is checked against the subnet and reserved the same way.

use super::commands::client;
use super::etcd::{Client, Compare, Op};
use super::view::{self, IpRec, NetworkRec};
use crate::config::Config;
use std::collections::BTreeSet;
use std::net::Ipv4Addr;

/// Tries at most this many free-looking addresses that another host takes
/// first, before giving up.
const RACES: usize = 64;

/// The network bridge `bridge` is in, when the switch is in a cluster.
pub fn network_of<'a>(cfg: &'a Config, bridge: &str) -> Option<&'a str> {
    cfg.cluster.as_ref()?;
    super::bridge_network(cfg.bridges.get(bridge)?)
}

/// A network's definition, read from etcd.
pub fn network(client: &Client, net: &str) -> Result<NetworkRec, String> {
    let kv = client
        .get(&view::network_key(net))
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("no network named {net} in the cluster"))?;
    serde_json::from_slice(&kv.value).map_err(|e| format!("network {net}: bad record: {e}"))
}

/// Reserves `want`, or the lowest free address of `net`, for `owner`.
/// An address already reserved for the same container on the same host
/// is its own (an attach again after a restart).
pub fn reserve(
    cfg: &Config,
    net: &str,
    want: Option<Ipv4Addr>,
    owner: &IpRec,
) -> Result<(Ipv4Addr, NetworkRec), String> {
    let client = client(cfg)?;
    let rec = network(&client, net)?;
    let value = serde_json::to_vec(owner).unwrap_or_default();
    let take = |ip: Ipv4Addr| -> Result<bool, String> {
        let key = view::ip_key(net, ip);
        client
            .txn(
                &[Compare::Created(key.clone(), 0)],
                &[Op::Put {
                    key,
                    value: value.clone(),
                    lease: 0,
                }],
                &[],
            )
            .map_err(|e| e.to_string())
    };
    if let Some(ip) = want {
        if !rec.subnet.is_host(ip) {
            return Err(format!(
                "{ip} is not a host address of network {net}'s subnet {}",
                rec.subnet
            ));
        }
        if Some(ip) == rec.gateway {
            return Err(format!("{ip} is network {net}'s gateway"));
        }
        if take(ip)? {
            return Ok((ip, rec));
        }
        let holder = holder(&client, net, ip)?;
        if holder.as_ref() == Some(owner) {
            return Ok((ip, rec));
        }
        return Err(match holder {
            Some(h) => format!(
                "{ip} on network {net} is taken by container {} on host {}",
                h.container, h.host
            ),
            None => format!("{ip} on network {net} is taken"),
        });
    }
    let (kvs, _) = client
        .range_prefix(&view::ips_prefix(net))
        .map_err(|e| e.to_string())?;
    let mut used = BTreeSet::new();
    for kv in &kvs {
        let Some(ip) = kv
            .key
            .rsplit('/')
            .next()
            .and_then(|s| s.parse::<Ipv4Addr>().ok())
        else {
            continue;
        };
        if serde_json::from_slice::<IpRec>(&kv.value).ok().as_ref() == Some(owner) {
            return Ok((ip, rec));
        }
        used.insert(ip);
    }
    let mut lost = 0;
    for ip in rec.subnet.hosts() {
        if used.contains(&ip) || Some(ip) == rec.gateway {
            continue;
        }
        // A take retried after "no answer" may find its own first try.
        if take(ip)? || holder(&client, net, ip)?.as_ref() == Some(owner) {
            return Ok((ip, rec));
        }
        lost += 1;
        if lost >= RACES {
            break;
        }
    }
    Err(format!(
        "network {net} has no free address left in {}",
        rec.subnet
    ))
}

fn holder(client: &Client, net: &str, ip: Ipv4Addr) -> Result<Option<IpRec>, String> {
    Ok(client
        .get(&view::ip_key(net, ip))
        .map_err(|e| e.to_string())?
        .and_then(|kv| serde_json::from_slice(&kv.value).ok()))
}

/// Gives `ip` back if `owner` still holds it. Errors are for the log: an
/// address that cannot be released stays reserved.
pub fn release(cfg: &Config, net: &str, ip: Ipv4Addr, owner: &IpRec) -> Result<(), String> {
    let client = client(cfg)?;
    let key = view::ip_key(net, ip);
    let value = serde_json::to_vec(owner).unwrap_or_default();
    client
        .txn(
            &[Compare::Value(key.clone(), value)],
            &[Op::Delete(key)],
            &[],
        )
        .map(|_| ())
        .map_err(|e| e.to_string())
}

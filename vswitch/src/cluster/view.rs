//! The keys the switch keeps in etcd, and this host's copy of them.
//!
//! Everything lives under [`PREFIX`] (`/vswitch/v1/`); the version in the
//! prefix changes if the layout ever does. Values are JSON.
//!
//! | key | value | lifetime |
//! |---|---|---|
//! | `hosts/HOST` | `{"vtep":"IP"}` | the host's lease |
//! | `networks/NAME` | `{"vni":N,"subnet":"CIDR","gateway":"IP"}` | until `network/delete` |
//! | `vnis/VNI` | the network's name (keeps VNIs unique) | with the network |
//! | `netindex` | rewritten by every network change (serialises them) | always |
//! | `members/NET/HOST/MAC` | `{"ip":"IP","container":"C"}` | the host's lease |
//! | `ips/NET/IP` | `{"host":"H","container":"C","mac":"MAC"}` | until detach |
//!
//! Members come and go with their host's lease, so a dead host's
//! containers disappear from every other host. Address reservations are
//! not leased: a host that restarts finds its containers' addresses still
//! theirs.

use super::etcd::{Event, EventKind, Kv};
use pipeline::wire::eth::parse_mac;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::Ipv4Addr;

pub const PREFIX: &str = "/vswitch/v1/";

pub fn host_key(host: &str) -> String {
    format!("{PREFIX}hosts/{host}")
}
pub fn network_key(name: &str) -> String {
    format!("{PREFIX}networks/{name}")
}
pub fn vni_key(vni: u32) -> String {
    format!("{PREFIX}vnis/{vni}")
}
pub fn netindex_key() -> String {
    format!("{PREFIX}netindex")
}
pub fn members_prefix(net: &str) -> String {
    format!("{PREFIX}members/{net}/")
}
pub fn member_key(net: &str, host: &str, mac: &str) -> String {
    format!("{PREFIX}members/{net}/{host}/{mac}")
}
pub fn ips_prefix(net: &str) -> String {
    format!("{PREFIX}ips/{net}/")
}
pub fn ip_key(net: &str, ip: Ipv4Addr) -> String {
    format!("{PREFIX}ips/{net}/{ip}")
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HostRec {
    pub vtep: Ipv4Addr,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkRec {
    pub vni: u32,
    pub subnet: Cidr,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<Ipv4Addr>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberRec {
    pub ip: Ipv4Addr,
    #[serde(default)]
    pub container: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpRec {
    pub host: String,
    pub container: String,
    pub mac: String,
}

/// One member of a network, as read from its key and value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member<'a> {
    pub host: &'a str,
    pub mac: [u8; 6],
    pub ip: Ipv4Addr,
}

/// An IPv4 subnet, `A.B.C.D/LEN`, stored as text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Cidr {
    pub addr: Ipv4Addr,
    pub len: u8,
}

impl Cidr {
    /// Parses a subnet; the address must be the network's (no host bits).
    pub fn parse(s: &str) -> Result<Cidr, String> {
        let bad = || format!("\"{s}\" is not a subnet like 10.1.0.0/24");
        let (a, l) = s.split_once('/').ok_or_else(bad)?;
        let addr: Ipv4Addr = a.parse().map_err(|_| bad())?;
        let len: u8 = l.parse().ok().filter(|l| *l <= 30).ok_or_else(|| {
            format!("\"{s}\": the prefix length must be 0 to 30 (a network needs host addresses)")
        })?;
        let c = Cidr { addr, len };
        if u32::from(addr) & !c.mask() != 0 {
            return Err(format!(
                "\"{s}\" has host bits set; the subnet is {}/{len}",
                Ipv4Addr::from(u32::from(addr) & c.mask())
            ));
        }
        Ok(c)
    }

    pub fn mask(&self) -> u32 {
        if self.len == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(self.len))
        }
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask() == u32::from(self.addr)
    }

    pub fn overlaps(&self, o: &Cidr) -> bool {
        self.contains(o.addr) || o.contains(self.addr)
    }

    /// A usable host address: not the network's nor the broadcast.
    pub fn is_host(&self, ip: Ipv4Addr) -> bool {
        let (n, b) = (u32::from(self.addr), u32::from(self.addr) | !self.mask());
        self.contains(ip) && u32::from(ip) != n && u32::from(ip) != b
    }

    /// Every host address, lowest first.
    pub fn hosts(&self) -> impl Iterator<Item = Ipv4Addr> {
        let n = u32::from(self.addr);
        (n + 1..n | !self.mask()).map(Ipv4Addr::from)
    }
}

impl TryFrom<String> for Cidr {
    type Error = String;
    fn try_from(s: String) -> Result<Cidr, String> {
        Cidr::parse(&s)
    }
}

impl From<Cidr> for String {
    fn from(c: Cidr) -> String {
        format!("{}/{}", c.addr, c.len)
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

/// This host's copy of what it needs under [`PREFIX`]: hosts and networks
/// as stored, members read into an index (the others' address
/// reservations are not kept).
#[derive(Debug, Clone, Default)]
pub struct View {
    /// The etcd revision the copy is at.
    pub revision: i64,
    /// Keys (without [`PREFIX`]) other than members and addresses.
    pub kvs: BTreeMap<String, Vec<u8>>,
    /// By network: (host, MAC) to address.
    members: BTreeMap<String, BTreeMap<(String, [u8; 6]), Ipv4Addr>>,
}

/// A member key's network, host and MAC.
fn member_key_parts(rest: &str) -> Option<(&str, &str, [u8; 6])> {
    let (net, rest) = rest.split_once('/')?;
    let (host, mac) = rest.split_once('/')?;
    Some((net, host, parse_mac(mac)?))
}

impl View {
    /// A copy made from a full listing at `revision`.
    pub fn from_list(kvs: Vec<Kv>, revision: i64) -> View {
        let mut v = View {
            revision,
            ..View::default()
        };
        for kv in kvs {
            if let Some(k) = kv.key.strip_prefix(PREFIX) {
                v.put(k, kv.value);
            }
        }
        v
    }

    fn put(&mut self, k: &str, value: Vec<u8>) {
        if let Some(rest) = k.strip_prefix("members/") {
            let Some((net, host, mac)) = member_key_parts(rest) else {
                return;
            };
            let m = self.members.entry(net.to_string()).or_default();
            match serde_json::from_slice::<MemberRec>(&value) {
                Ok(r) => m.insert((host.to_string(), mac), r.ip),
                Err(_) => m.remove(&(host.to_string(), mac)),
            };
        } else if !k.starts_with("ips/") {
            self.kvs.insert(k.to_string(), value);
        }
    }

    fn delete(&mut self, k: &str) {
        if let Some(rest) = k.strip_prefix("members/") {
            if let Some((net, host, mac)) = member_key_parts(rest) {
                if let Some(m) = self.members.get_mut(net) {
                    m.remove(&(host.to_string(), mac));
                    if m.is_empty() {
                        self.members.remove(net);
                    }
                }
            }
        } else {
            self.kvs.remove(k);
        }
    }

    /// Applies watched events in order.
    pub fn apply(&mut self, events: Vec<Event>) {
        for e in events {
            self.revision = self.revision.max(e.kv.mod_revision);
            let Some(k) = e.kv.key.strip_prefix(PREFIX) else {
                continue;
            };
            match e.kind {
                EventKind::Put => self.put(k, e.kv.value),
                EventKind::Delete => self.delete(k),
            }
        }
    }

    /// How many keys the copy holds.
    pub fn len(&self) -> usize {
        self.kvs.len() + self.members.values().map(BTreeMap::len).sum::<usize>()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The values of every key under `sub` (relative to [`PREFIX`]) that
    /// parse, with the rest of their key.
    fn under<'a, T: serde::de::DeserializeOwned>(
        &'a self,
        sub: &'a str,
    ) -> impl Iterator<Item = (&'a str, T)> + 'a {
        self.kvs
            .range(sub.to_string()..)
            .take_while(move |(k, _)| k.starts_with(sub))
            .filter_map(move |(k, v)| Some((&k[sub.len()..], serde_json::from_slice(v).ok()?)))
    }

    pub fn hosts(&self) -> BTreeMap<String, Ipv4Addr> {
        self.under::<HostRec>("hosts/")
            .map(|(h, r)| (h.to_string(), r.vtep))
            .collect()
    }

    pub fn networks(&self) -> BTreeMap<String, NetworkRec> {
        self.under::<NetworkRec>("networks/")
            .map(|(n, r)| (n.to_string(), r))
            .collect()
    }

    pub fn network(&self, name: &str) -> Option<NetworkRec> {
        serde_json::from_slice(self.kvs.get(&format!("networks/{name}"))?).ok()
    }

    /// Every member of `net`, host by host.
    pub fn members<'a>(&'a self, net: &str) -> impl Iterator<Item = Member<'a>> + 'a {
        self.members
            .get(net)
            .into_iter()
            .flatten()
            .map(|((host, mac), ip)| Member {
                host,
                mac: *mac,
                ip: *ip,
            })
    }

    pub fn member_count(&self, net: &str) -> usize {
        self.members.get(net).map_or(0, BTreeMap::len)
    }
}

/// A key under [`PREFIX`] as etcd would list it, for tests.
#[cfg(test)]
pub(crate) fn test_kv(k: &str, v: &str) -> Kv {
    Kv {
        key: format!("{PREFIX}{k}"),
        value: v.as_bytes().to_vec(),
        create_revision: 1,
        mod_revision: 1,
        lease: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::test_kv as kv;
    use super::*;

    #[test]
    fn subnets() {
        let c = Cidr::parse("10.1.0.0/24").unwrap();
        assert!(c.is_host("10.1.0.1".parse().unwrap()));
        assert!(!c.is_host("10.1.0.0".parse().unwrap()));
        assert!(!c.is_host("10.1.0.255".parse().unwrap()));
        assert_eq!(c.hosts().count(), 254);
        assert!(c.overlaps(&Cidr::parse("10.1.0.128/25").unwrap()));
        assert!(c.overlaps(&Cidr::parse("10.0.0.0/8").unwrap()));
        assert!(!c.overlaps(&Cidr::parse("10.2.0.0/24").unwrap()));
        assert!(Cidr::parse("10.1.0.1/24")
            .unwrap_err()
            .contains("host bits"));
        assert!(Cidr::parse("10.1.0.0/31").is_err());
        assert!(Cidr::parse("nope").is_err());
    }

    #[test]
    fn a_view_reads_hosts_networks_and_members() {
        let v = View::from_list(
            vec![
                kv("hosts/a", r#"{"vtep":"192.168.0.1"}"#),
                kv("hosts/b", r#"{"vtep":"192.168.0.2"}"#),
                kv("networks/red", r#"{"vni":10,"subnet":"10.1.0.0/24"}"#),
                kv(
                    "members/red/a/02:00:00:00:00:01",
                    r#"{"ip":"10.1.0.2","container":"c1"}"#,
                ),
                kv("members/red/b/02:00:00:00:00:02", r#"{"ip":"10.1.0.3"}"#),
                kv("members/redder/b/02:00:00:00:00:03", r#"{"ip":"10.1.0.4"}"#),
                kv("members/red/b/garbage", r#"{"ip":"10.1.0.9"}"#),
            ],
            7,
        );
        assert_eq!(v.hosts().len(), 2);
        assert_eq!(v.network("red").unwrap().vni, 10);
        let m: Vec<Member> = v.members("red").collect();
        assert_eq!(m.len(), 2);
        assert_eq!(m[1].host, "b");
        assert_eq!(m[1].mac, [2, 0, 0, 0, 0, 2]);
        assert_eq!(v.member_count("redder"), 1);
        let mut v = v;
        v.apply(vec![Event {
            kind: EventKind::Delete,
            kv: kv("members/redder/b/02:00:00:00:00:03", ""),
        }]);
        assert_eq!(v.member_count("redder"), 0);
        assert_eq!(v.len(), 5);
    }
}

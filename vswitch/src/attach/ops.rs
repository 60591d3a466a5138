//! `attach` and `detach` themselves.

use super::netlink::{Rtnl, VethPeer};
use super::netns::{self, Namespace};
use super::record::{self, key, Attachment};
use super::spec::{AttachArgs, DetachArgs, IpConfig};
use super::{delete_host_link, intents, naming, KernelStep};
use crate::commands::{Failure, Output, Txn};
use crate::config::{Config, Port};
use pipeline::wire::eth::fmt_mac;
use serde_json::Value;
use std::path::Path;

/// MTU of a new attachment when neither `--mtu` nor the bridge says.
const DEFAULT_MTU: u32 = 1500;

/// Checks, makes and configures the TAP device or veth pair, then adds the
/// port; see the module docs of `attach` for the all-or-nothing rules.
pub(super) fn attach(txn: &mut Txn, mut a: AttachArgs) -> Result<Output, Failure> {
    let Some(br) = txn.cfg.bridges.get(&a.bridge) else {
        return Err(format!("no bridge named {}", a.bridge).into());
    };
    // On a bridge with a gateway the container lives in its subnet, and
    // the gateway is its default route unless @GW says otherwise.
    if let (Some(gw), Some(ip)) = (crate::nat::gateway(br).ok().flatten(), a.ip.as_mut()) {
        let net = gw.subnet();
        if !net.contains(u32::from(ip.addr)) {
            return Err(format!(
                "{} is outside the subnet {}/{} of bridge {}'s gateway {}",
                ip.addr,
                std::net::Ipv4Addr::from(net.addr),
                net.len,
                a.bridge,
                gw.ip
            )
            .into());
        }
        if ip.addr == gw.ip {
            return Err(format!(
                "{} is the address of bridge {}'s gateway",
                ip.addr, a.bridge
            )
            .into());
        }
        ip.gateway.get_or_insert(gw.ip);
    }
    if let Some(done) = already_attached(&txn.cfg, &a, None)? {
        return Ok(done);
    }
    let tap = a
        .tap
        .unwrap_or_else(|| super::spec::default_is_tap(&txn.cfg));
    let host = naming::host_ifname(&a.container, &a.ifname);
    if let Some(b) = txn.cfg.port_bridge(&host) {
        return Err(format!(
            "the switch port name {host} (derived from container \"{}\" and interface {}) is already used on bridge {b}; detach or delete that port first",
            a.container, a.ifname
        )
        .into());
    }
    let mut root = Rtnl::open().map_err(|e| format!("cannot open a netlink socket: {e}"))?;
    if root
        .link_index(&host)
        .map_err(|e| format!("cannot look up {host}: {e}"))?
        .is_some()
    {
        return Err(format!(
            "a network device named {host} already exists in the switch's namespace but no attachment owns it (left over from a crash?); remove it with `ip link del {host}` and attach again"
        )
        .into());
    }

    // The container, and checks that need it.
    let ns = Namespace::resolve_with(&a.container, &txn.attach.docker_env)?;
    if netns::current().is_ok_and(|own| own == ns.id) {
        return Err(format!(
            "{} is in the switch's own network namespace, not a container's; attach needs a container",
            ns.what
        )
        .into());
    }
    if let Some(done) = already_attached(&txn.cfg, &a, Some(&ns))? {
        return Ok(done);
    }
    let ifname = a.ifname.clone();
    let what = ns.what.clone();
    let taken = ns.run(|| {
        let mut nl = Rtnl::open().map_err(|e| format!("cannot open a netlink socket: {e}"))?;
        nl.link_index(&ifname)
            .map_err(|e| format!("cannot look up {ifname}: {e}"))
    });
    if taken.map_err(|e| format!("{what}: {e}"))?.is_some() {
        return Err(format!(
            "{what} already has an interface named {ifname}; choose another name with --ifname"
        )
        .into());
    }

    let mac = a
        .mac
        .unwrap_or_else(|| naming::derived_mac(&a.container, &a.ifname));
    // On a bridge in an overlay network, the address is reserved
    // cluster-wide first (and given back if the attach fails).
    let release = reserve_in_network(txn, &mut a, mac)?;
    if let Some(ip) = a.ip {
        refuse_address_in_use(&txn.cfg, &a, ip.addr)?;
    }

    // The pair, its container end made directly inside the namespace.
    // On a bridge with a VXLAN port, frames must fit the tunnel: the
    // smallest underlay MTU less the encapsulation, unless --mtu says.
    let tunnel_mtu = a
        .mtu
        .is_none()
        .then(|| txn.rt.tunnel_inner_mtu(&a.bridge))
        .flatten()
        .or_else(|| {
            // A network bridge's tunnel may not be there yet: leave room
            // for the encapsulation on a 1500-byte underlay.
            crate::cluster::ipam::network_of(&txn.cfg, &a.bridge)
                .map(|_| 1500 - pipeline::vxlan::OVERHEAD as u32)
        });
    let mtu = a
        .mtu
        .or(tunnel_mtu)
        .unwrap_or_else(|| bridge_mtu(&a.bridge));
    let tap_guard;
    let veth_guard;
    if tap {
        // A persistent TAP device made inside the container's namespace:
        // the daemon opens it as the port (and again after a restart); the
        // container's interface does not depend on the daemon.
        // Journalled first, so that a crash before the configuration is
        // stored leaves a device the next start can find (see `intents`).
        let journal = txn.rt.tap_journal().map(Path::to_path_buf);
        if let Some(j) = &journal {
            intents::record(j, &ns.path, &ifname)
                .map_err(|e| format!("cannot journal the TAP device in {}: {e}", j.display()))?;
        }
        let guard = TapGuard(Some((ns.path.clone(), ifname.clone(), journal.clone())));
        ports::tap::open_vnet(&ifname, Some(&ns.path))
            .map_err(|e| format!("cannot create TAP device {ifname} in {what}: {e}"))?;
        tap_guard = Some(guard);
        if let Some(j) = journal {
            let forget = || KernelStep::ForgetTapIntent {
                journal: j.clone(),
                netns: ns.path.clone(),
                ifname: ifname.clone(),
            };
            // Undo steps run newest first: this one after the device's
            // deletion.
            txn.attach.undo.push(forget());
            txn.attach.after.push(forget());
        }
        veth_guard = None;
        ns.run(|| {
            ports::netdev::set_mac(&ifname, mac)
                .map_err(|e| format!("cannot set the MAC of {ifname}: {e}"))?;
            ports::netdev::set_mtu(&ifname, mtu)
                .map_err(|e| format!("cannot set the MTU of {ifname}: {e}"))
        })
        .map_err(|e| format!("{what}: {e}"))?;
    } else {
        // The host end's MAC says which daemon made it (see `orphans`).
        root.create_veth(
            &host,
            mtu,
            naming::host_mac(txn.rt.owner(), &host),
            &VethPeer {
                ifname: &a.ifname,
                mac,
                mtu,
                netns_fd: ns.fd(),
            },
        )
        .map_err(|e| format!("cannot create veth pair {host} / {ifname} in {what}: {e}"))?;
        // From here on, a failure deletes the pair again.
        veth_guard = Some(LinkGuard(Some(host.clone())));
        tap_guard = None;
        disable_ipv6(&host);
        let host_index = root
            .link_index(&host)
            .map_err(|e| format!("cannot look up {host}: {e}"))?
            .ok_or_else(|| format!("{host} vanished right after it was created"))?;
        root.set_up(host_index)
            .map_err(|e| format!("cannot bring {host} up: {e}"))?;
    }
    let (ip, ip6) = (a.ip, a.ip6);
    ns.run(|| {
        configure_inside(&ifname, ip.as_ref())?;
        ip6.map_or(Ok(()), |v6| configure_inside6(&ifname, &v6))
    })
    .map_err(|e| format!("{what}: {e}"))?;
    if let Some(g) = veth_guard {
        g.disarm();
    }
    if let Some(g) = tap_guard {
        g.disarm();
    }

    let docker = ns
        .what
        .starts_with("Docker container")
        .then_some(&txn.attach.docker_env);
    let mut port = port_record(&a, &ns, docker, &host, mac, mtu);
    if tap {
        port.kind = "tap".into();
        port.options
            .insert(TAP_NETNS.into(), ns.path.display().to_string());
        port.options.insert(TAP_IFNAME.into(), ifname.clone());
    }
    let json = Attachment {
        bridge: &a.bridge,
        port: &host,
        p: &port,
    }
    .to_json();
    log::info!(
        "attach: {what} interface {} ({}) on bridge {} as port {host}",
        a.ifname,
        a.ip.map(|i| i.to_string())
            .unwrap_or_else(|| "no address".into()),
        a.bridge
    );
    if let Some(b) = txn.cfg.bridges.get_mut(&a.bridge) {
        b.ports.insert(host.clone(), port);
    }
    txn.attach.undo.push(match tap {
        true => KernelStep::DeleteTap {
            netns: ns.path.clone(),
            ifname: a.ifname.clone(),
        },
        false => KernelStep::DeleteLink(host),
    });
    if let Some(step) = release.disarm() {
        txn.attach.undo.push(step);
    }
    if let Some(ip) = a.ip {
        txn.attach.after.push(KernelStep::Garp {
            ns,
            ifname: a.ifname,
            mac,
            ip: ip.addr,
        });
    }
    let text = match tunnel_mtu {
        Some(m) => format!(
            "MTU {m}: bridge {} has a VXLAN port, whose underlay MTU less 50 bytes of encapsulation this is (--mtu sets another)\n",
            a.bridge
        ),
        None => String::new(),
    };
    Ok(Output { text, json })
}

/// The port of a new attachment: its tag, and `external_ids` saying what
/// it is.
fn port_record(
    a: &AttachArgs,
    ns: &Namespace,
    docker: Option<&super::netns::DockerEnv>,
    host: &str,
    mac: [u8; 6],
    mtu: u32,
) -> Port {
    let mut port = Port {
        tag: a.tag,
        ..Port::default()
    };
    let ids = &mut port.external_ids;
    ids.insert(key::MARK.into(), "true".into());
    ids.insert(key::CONTAINER.into(), a.container.clone());
    ids.insert(key::IFNAME.into(), a.ifname.clone());
    ids.insert(key::NETNS.into(), ns.path.display().to_string());
    ids.insert(key::NETNS_INODE.into(), ns.id.to_string());
    ids.insert(key::VETH.into(), host.to_string());
    ids.insert(key::MAC.into(), fmt_mac(&mac));
    ids.insert(key::MTU.into(), mtu.to_string());
    if let Some(env) = docker {
        ids.insert(key::DOCKER.into(), "true".into());
        ids.extend(env.to_record());
    }
    if let Some(ip) = &a.ip {
        ids.insert(key::IP.into(), format!("{}/{}", ip.addr, ip.prefix));
        if let Some(g) = ip.gateway {
            ids.insert(key::GATEWAY.into(), g.to_string());
        }
    }
    if let Some(ip) = &a.ip6 {
        ids.insert(key::IP6.into(), format!("{}/{}", ip.addr, ip.prefix));
        if let Some(g) = ip.gateway {
            ids.insert(key::GATEWAY6.into(), g.to_string());
        }
    }
    port
}

/// If this container interface is attached already: Ok(Some) to do
/// nothing (`--may-exist`, same bridge), an error otherwise. With `ns`, an
/// attachment of the same namespace under another spelling of the
/// container counts too, while its veth exists.
fn already_attached(
    cfg: &Config,
    a: &AttachArgs,
    ns: Option<&Namespace>,
) -> Result<Option<Output>, Failure> {
    let found = record::attachments(cfg, None).into_iter().find(|x| {
        x.is(&a.container, &a.ifname)
            || ns.is_some_and(|ns| {
                x.ifname() == a.ifname
                    && x.get(key::NETNS_INODE) == Some(&ns.id.to_string())
                    && ports::netdev::exists(x.port)
            })
    });
    let Some(x) = found else {
        return Ok(None);
    };
    if a.may_exist && x.bridge == a.bridge {
        return Ok(Some(Output {
            text: String::new(),
            json: x.to_json(),
        }));
    }
    let hint = if x.bridge == a.bridge {
        "use --may-exist to accept that, or detach it first"
    } else {
        "detach it first"
    };
    Err(format!(
        "interface {} of container \"{}\" is already attached to bridge {} as port {}; {hint}",
        x.ifname(),
        x.container(),
        x.bridge,
        x.port
    )
    .into())
}

/// The bridge's MTU (its internal port), or 1500.
fn bridge_mtu(bridge: &str) -> u32 {
    ports::netdev::mtu(bridge).unwrap_or(DEFAULT_MTU)
}

/// The host end carries no IPv6 of its own: it is a switch port.
fn disable_ipv6(host: &str) {
    let key = format!("/proc/sys/net/ipv6/conf/{host}/disable_ipv6");
    let _ = std::fs::write(key, "1");
}

/// Address, up, routes: run on a thread inside the container's namespace.
fn configure_inside(ifname: &str, ip: Option<&IpConfig>) -> Result<(), String> {
    let mut nl = Rtnl::open().map_err(|e| format!("cannot open a netlink socket: {e}"))?;
    let idx = nl
        .link_index(ifname)
        .map_err(|e| format!("cannot look up {ifname}: {e}"))?
        .ok_or_else(|| format!("{ifname} vanished while it was being set up"))?;
    if let Some(ip) = ip {
        nl.add_address(idx, ip).map_err(|e| {
            format!(
                "cannot add address {}/{} to {ifname}: {e}",
                ip.addr, ip.prefix
            )
        })?;
    }
    nl.set_up(idx)
        .map_err(|e| format!("cannot bring {ifname} up: {e}"))?;
    let Some((ip, gw)) = ip.and_then(|i| i.gateway.map(|g| (i, g))) else {
        return Ok(());
    };
    if !ip.contains(gw) {
        nl.add_route(idx, Some((gw, 32)), None).map_err(|e| {
            format!(
                "cannot add a route to gateway {gw} (not on {}/{}) on {ifname}: {e}",
                ip.network(),
                ip.prefix
            )
        })?;
    }
    nl.add_route(idx, None, Some(gw)).map_err(|e| {
        if e.errno == libc::EEXIST {
            "it already has a default route; remove that, or attach without @GATEWAY".to_string()
        } else {
            format!("cannot add the default route via {gw} on {ifname}: {e}")
        }
    })
}

/// IPv6 inside the container: turned on for `ifname` (a namespace may
/// have it off by default), the address, the default route.
fn configure_inside6(ifname: &str, ip: &super::ip6::Ip6Config) -> Result<(), String> {
    let knob = format!("/proc/sys/net/ipv6/conf/{ifname}/disable_ipv6");
    std::fs::write(&knob, "0").map_err(|e| format!("cannot turn IPv6 on for {ifname}: {e}"))?;
    let mut nl = Rtnl::open().map_err(|e| format!("cannot open a netlink socket: {e}"))?;
    let idx = nl
        .link_index(ifname)
        .map_err(|e| format!("cannot look up {ifname}: {e}"))?
        .ok_or_else(|| format!("{ifname} vanished while it was being set up"))?;
    nl.add_address6(idx, ip).map_err(|e| {
        format!(
            "cannot add address {}/{} to {ifname}: {e}",
            ip.addr, ip.prefix
        )
    })?;
    if let Some(gw) = ip.gateway {
        nl.add_default_route6(idx, gw).map_err(|e| {
            if e.errno == libc::EEXIST {
                "it already has an IPv6 default route; remove that, or attach without @GATEWAY6"
                    .to_string()
            } else {
                format!("cannot add the IPv6 default route via {gw} on {ifname}: {e}")
            }
        })?;
    }
    Ok(())
}

/// The port options of a TAP attachment: where its device lives.
pub(crate) const TAP_NETNS: &str = "netns";
pub(crate) const TAP_IFNAME: &str = "ifname";

/// Deletes a TAP device inside a container on drop unless disarmed (and
/// its journal entry, if it has one).
struct TapGuard(Option<(std::path::PathBuf, String, Option<std::path::PathBuf>)>);

impl TapGuard {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for TapGuard {
    fn drop(&mut self) {
        if let Some((netns, ifname, journal)) = self.0.take() {
            super::delete_tap(&netns, &ifname);
            if let Some(j) = journal {
                intents::forget(&j, &netns, &ifname);
            }
        }
    }
}

/// Deletes a veth pair on drop unless disarmed: the undo of a half-made
/// attachment.
struct LinkGuard(Option<String>);

impl LinkGuard {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for LinkGuard {
    fn drop(&mut self) {
        if let Some(name) = self.0.take() {
            delete_host_link(&name);
        }
    }
}

pub(super) fn detach(txn: &mut Txn, d: DetachArgs) -> Result<Output, Failure> {
    if !txn.cfg.bridges.contains_key(&d.bridge) {
        return Err(format!("no bridge named {}", d.bridge).into());
    }
    let Some((bridge, port)) = find_attachment(&txn.cfg, &d, &txn.attach.docker_env) else {
        if d.if_exists {
            return Ok(Output::default());
        }
        return Err(format!(
            "container \"{}\" has no interface {} attached to bridge {} (see vswctl list-attachments)",
            d.container, d.ifname, d.bridge
        )
        .into());
    };
    if bridge != d.bridge {
        return Err(format!(
            "interface {} of container \"{}\" is attached to bridge {bridge}, not {}",
            d.ifname, d.container, d.bridge
        )
        .into());
    }
    let removed = txn
        .cfg
        .bridges
        .get_mut(&bridge)
        .and_then(|b| b.ports.remove(&port));
    let json = removed
        .as_ref()
        .map(|p| {
            Attachment {
                bridge: &bridge,
                port: &port,
                p,
            }
            .to_json()
        })
        .unwrap_or(Value::Null);
    log::info!(
        "detach: {} interface {} from bridge {bridge} (port {port})",
        d.container,
        d.ifname
    );
    let tap = removed.as_ref().and_then(|p| {
        Some((
            p.options.get(TAP_NETNS)?.clone(),
            p.options.get(TAP_IFNAME)?.clone(),
        ))
    });
    match tap {
        Some((netns, ifname)) => {
            let netns = std::path::PathBuf::from(netns);
            // Journalled before the removal is stored, so that a crash
            // between the two leaves a device the next start deletes.
            let journal = txn.rt.tap_journal().map(Path::to_path_buf);
            if let Some(j) = &journal {
                if let Err(e) = intents::record(j, &netns, &ifname) {
                    log::warn!(
                        "detach: cannot journal TAP {ifname} in {}: {e}",
                        j.display()
                    );
                }
            }
            txn.attach.after.push(KernelStep::DeleteTap {
                netns: netns.clone(),
                ifname: ifname.clone(),
            });
            if let Some(journal) = journal {
                let forget = || KernelStep::ForgetTapIntent {
                    journal: journal.clone(),
                    netns: netns.clone(),
                    ifname: ifname.clone(),
                };
                txn.attach.undo.push(forget());
                txn.attach.after.push(forget());
            }
        }
        None => txn.attach.after.push(KernelStep::DeleteLink(port)),
    }
    if let Some(step) = removed
        .as_ref()
        .and_then(|p| release_step(&txn.cfg, &bridge, p))
    {
        txn.attach.after.push(step);
    }
    Ok(Output {
        text: String::new(),
        json,
    })
}

/// Finds the attachment `detach` means, on any bridge: by the derived port
/// name, then by the recorded container and interface, then (when the
/// container can still be found) by its namespace.
fn find_attachment(
    cfg: &Config,
    d: &DetachArgs,
    env: &super::netns::DockerEnv,
) -> Option<(String, String)> {
    let all = record::attachments(cfg, None);
    let host = naming::host_ifname(&d.container, &d.ifname);
    let hit = all
        .iter()
        .find(|a| a.port == host)
        .or_else(|| all.iter().find(|a| a.is(&d.container, &d.ifname)))
        .or_else(|| {
            let ns = Namespace::resolve_with(&d.container, env).ok()?;
            let ino = ns.id.to_string();
            all.iter()
                .find(|a| a.ifname() == d.ifname && a.get(key::NETNS_INODE) == Some(&ino))
        })?;
    Some((hit.bridge.to_string(), hit.port.to_string()))
}

/// An address reserved in an overlay network, given back when dropped
/// before the attach went through.
struct Reservation(Option<KernelStep>);

impl Reservation {
    /// The attach went through: the release becomes an undo step of the
    /// transaction.
    fn disarm(mut self) -> Option<KernelStep> {
        self.0.take()
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if let Some(step) = self.0.take() {
            step.run();
        }
    }
}

/// On a bridge in an overlay network: reserves the container's address
/// in etcd (the one given, or a free one) and fills in the prefix and
/// gateway of the network.
fn reserve_in_network(txn: &Txn, a: &mut AttachArgs, mac: [u8; 6]) -> Result<Reservation, Failure> {
    use crate::cluster::{ipam, view};
    let Some(net) = ipam::network_of(&txn.cfg, &a.bridge) else {
        if a.auto_ip {
            return Err(format!(
                "attach needs IP/PREFIX[@GATEWAY] (or 0/0 for no address): bridge {} is not in a cluster network that could give one (usage: {})",
                a.bridge,
                super::spec::ATTACH_USAGE
            )
            .into());
        }
        return Ok(Reservation(None));
    };
    let Some(cluster) = txn.cfg.cluster.clone() else {
        return Ok(Reservation(None));
    };
    if !a.auto_ip && a.ip.is_none() {
        return Ok(Reservation(None));
    }
    let owner = view::IpRec {
        host: cluster.host.clone(),
        container: a.container.clone(),
        mac: fmt_mac(&mac),
    };
    let (ip, rec) = ipam::reserve(&txn.cfg, net, a.ip.map(|i| i.addr), &owner)
        .map_err(|e| format!("attach: {e}"))?;
    a.ip = Some(IpConfig {
        addr: ip,
        prefix: rec.subnet.len,
        gateway: a.ip.and_then(|i| i.gateway).or(rec.gateway),
    });
    Ok(Reservation(Some(KernelStep::ReleaseIp {
        cluster,
        network: net.to_string(),
        ip,
        owner,
    })))
}

/// The step that gives a detached container's address back to its
/// network, when it had one there.
fn release_step(cfg: &Config, bridge: &str, p: &Port) -> Option<KernelStep> {
    let net = crate::cluster::ipam::network_of(cfg, bridge)?;
    let cluster = cfg.cluster.clone()?;
    let ip = p
        .external_ids
        .get(key::IP)?
        .split('/')
        .next()?
        .parse()
        .ok()?;
    let owner = crate::cluster::view::IpRec {
        host: cluster.host.clone(),
        container: p.external_ids.get(key::CONTAINER)?.clone(),
        mac: p.external_ids.get(key::MAC)?.clone(),
    };
    Some(KernelStep::ReleaseIp {
        cluster,
        network: net.to_string(),
        ip,
        owner,
    })
}

/// Two attachments of one bridge with one address would answer ARP for it
/// both: refused, naming the one that has it.
fn refuse_address_in_use(
    cfg: &Config,
    a: &AttachArgs,
    ip: std::net::Ipv4Addr,
) -> Result<(), Failure> {
    for other in record::attachments(cfg, Some(&a.bridge)) {
        let theirs = other
            .get(key::IP)
            .and_then(|v| v.split(['/', '@']).next())
            .and_then(|v| v.parse::<std::net::Ipv4Addr>().ok());
        if theirs == Some(ip) && !other.is(&a.container, &a.ifname) {
            return Err(format!(
                "{ip} is already used on bridge {} by container \"{}\" (interface {}, port {}); detach it or choose another address",
                a.bridge,
                other.container(),
                other.ifname(),
                other.port
            )
            .into());
        }
    }
    Ok(())
}

//! Container attachment: `attach`, `detach` and `list-attachments`.
//!
//! `attach BR CONTAINER IP/PREFIX[@GW]` makes a veth pair whose container
//! end is created directly inside the container's network namespace (named
//! `--ifname`, default eth1), configures it there (MAC, MTU, address, routes,
//! up) and adds the host end to BR as an ordinary port whose `external_ids`
//! record the attachment (see [`record`]). `detach` removes the port and the
//! pair; `list-attachments` reads the records.
//!
//! All or nothing: everything that can be checked is checked before the
//! kernel is touched; after that, a failure deletes the veth pair again
//! (which takes the container end, its address and routes with it), and the
//! transaction's configuration copy is thrown away. The kernel changes of a
//! command that succeeded wait in [`Pending`]: undone if the transaction is
//! not stored, followed by their after-commit steps (the gratuitous ARP, the
//! deletion of a detached veth) once it is stored and applied.
//!
//! When a container's namespace goes away the kernel deletes the whole veth
//! pair; [`vanished`] finds attachment ports whose host veth is gone, and the
//! control loop removes them through the ordinary commit path. A crash
//! between the kernel change and the commit leaves the opposite, a veth no
//! port owns: [`orphans`] deletes those when the daemon starts.
//!
//! Files: [`spec`] (arguments), [`naming`] (host veth name, MAC), [`netns`]
//! (finding and entering namespaces), [`netlink`] (rtnetlink requests),
//! [`garp`], [`record`] (external_ids), `ops` (attach, detach), `list`.

pub mod garp;
pub mod intents;
pub mod ip6;
mod list;
pub mod naming;
pub mod netlink;
pub mod netns;
mod ops;
pub mod orphans;
pub mod record;
pub mod spec;

use crate::commands::{CommandReq, Failure, Output, Request, Txn};
use crate::config::Config;
use netlink::Rtnl;
use netns::Namespace;
use record::key;
use std::net::Ipv4Addr;

/// Runs `attach`, `detach` or `list-attachments` inside a transaction.
pub fn run(txn: &mut Txn, name: &str, args: &[String], c: &CommandReq) -> Result<Output, Failure> {
    match name {
        "attach" | "detach" if txn.attach.request_len > 1 => Err(format!(
            "'{name}' must be the only command of its vswctl call: it changes the kernel as well as the configuration, so it cannot be chained with '--'; run it on its own"
        )
        .into()),
        "attach" => {
            let a = spec::AttachArgs::parse(args, c.may_exist)?;
            ops::attach(txn, a)
        }
        "detach" => {
            let d = spec::DetachArgs::parse(args, c.if_exists)?;
            ops::detach(txn, d)
        }
        "list-attachments" => list::list(&txn.cfg, args),
        other => Err(format!("unknown attachment command '{other}'").into()),
    }
}

/// `del-br` of a bridge with attached containers: their interfaces go as
/// `detach` would take them (once the transaction commits).
pub(crate) fn detach_all(txn: &mut Txn, bridge: &str) {
    let steps: Vec<KernelStep> = record::attachments(&txn.cfg, Some(bridge))
        .into_iter()
        .map(|a| {
            log::info!(
                "del-br {bridge}: detaching {} interface {} (port {})",
                a.container(),
                a.ifname(),
                a.port
            );
            match tap_device(a.p) {
                Some((netns, ifname)) => KernelStep::DeleteTap {
                    netns: netns.into(),
                    ifname: ifname.into(),
                },
                None => KernelStep::DeleteLink(a.port.to_string()),
            }
        })
        .collect();
    txn.attach.after.extend(steps);
}

/// A kernel step that waits for the transaction's outcome.
pub(crate) enum KernelStep {
    /// Delete a host-side veth (and so its container end).
    DeleteLink(String),
    /// Delete a TAP attachment's device inside its container.
    DeleteTap {
        netns: std::path::PathBuf,
        ifname: String,
    },
    /// Drop a TAP device's entry from the journal ([`intents`]): its
    /// transaction was stored or undone.
    ForgetTapIntent {
        journal: std::path::PathBuf,
        netns: std::path::PathBuf,
        ifname: String,
    },
    /// Give a container's address back to its overlay network (etcd).
    ReleaseIp {
        cluster: crate::config::ClusterCfg,
        network: String,
        ip: Ipv4Addr,
        owner: crate::cluster::view::IpRec,
    },
    /// Announce a container's address from inside its namespace.
    Garp {
        ns: Namespace,
        ifname: String,
        mac: [u8; 6],
        ip: Ipv4Addr,
    },
}

impl KernelStep {
    fn run(self) {
        match self {
            KernelStep::DeleteLink(name) => delete_host_link(&name),
            KernelStep::DeleteTap { netns, ifname } => delete_tap(&netns, &ifname),
            KernelStep::ForgetTapIntent {
                journal,
                netns,
                ifname,
            } => intents::forget(&journal, &netns, &ifname),
            KernelStep::ReleaseIp {
                cluster,
                network,
                ip,
                owner,
            } => {
                let cfg = Config {
                    cluster: Some(cluster),
                    ..Config::default()
                };
                match crate::cluster::ipam::release(&cfg, &network, ip, &owner) {
                    Ok(()) => log::info!("attach: released {ip} on network {network}"),
                    Err(e) => log::warn!(
                        "attach: could not release {ip} on network {network} ({e}); it stays reserved"
                    ),
                }
            }
            KernelStep::Garp {
                ns,
                ifname,
                mac,
                ip,
            } => {
                let frame = garp::frame(mac, ip);
                let res = ns.run(|| {
                    let mut nl = Rtnl::open().map_err(|e| e.to_string())?;
                    let idx = nl
                        .link_index(&ifname)
                        .map_err(|e| e.to_string())?
                        .ok_or_else(|| format!("{ifname} is gone"))?;
                    garp::send(idx, &frame).map_err(|e| e.to_string())
                });
                if let Err(e) = res {
                    log::warn!(
                        "attach: could not send a gratuitous ARP for {ip} from {ifname} in {}: {e}",
                        ns.what
                    );
                }
            }
        }
    }
}

/// Deletes a TAP attachment's device in its container's namespace (gone
/// already when the namespace is); logs failures.
fn delete_tap(netns: &std::path::Path, ifname: &str) {
    let res = ports::netns::run_in(netns, || {
        Rtnl::open().and_then(|mut nl| nl.delete_link(ifname))
    });
    match res {
        Ok(Ok(true)) => log::info!("attach: deleted TAP {ifname} in {}", netns.display()),
        Ok(Ok(false)) | Err(_) => {}
        Ok(Err(e)) => log::warn!(
            "attach: could not delete TAP {ifname} in {}: {e}",
            netns.display()
        ),
    }
}

/// Deletes a host-side veth in the daemon's namespace; logs failures.
fn delete_host_link(name: &str) {
    match Rtnl::open().and_then(|mut nl| nl.delete_link(name)) {
        Ok(true) => log::info!("attach: deleted veth {name}"),
        Ok(false) => {}
        Err(e) => log::warn!(
            "attach: could not delete veth {name}: {e}; remove it with `ip link del {name}`"
        ),
    }
}

/// Kernel changes of a transaction: what to undo if it is not stored, and
/// what to do once it is.
pub struct Pending {
    /// Commands in the request (attach and detach must be alone).
    request_len: usize,
    /// The client's Docker settings ([`crate::commands::Request::docker_env`]).
    pub(crate) docker_env: netns::DockerEnv,
    undo: Vec<KernelStep>,
    after: Vec<KernelStep>,
}

impl Pending {
    pub fn new(req: &Request) -> Pending {
        Pending {
            request_len: req.commands.len(),
            docker_env: netns::DockerEnv::from_request(&req.docker_env),
            undo: Vec::new(),
            after: Vec::new(),
        }
    }

    /// The transaction was not stored: undo its kernel changes, newest first.
    pub fn abort(&mut self) {
        self.after.clear();
        while let Some(step) = self.undo.pop() {
            step.run();
        }
    }

    /// The transaction was stored and applied: run the after-commit steps.
    pub fn commit(&mut self) {
        self.undo.clear();
        for step in self.after.drain(..) {
            step.run();
        }
    }
}

/// Where a TAP attachment's device lives: its namespace file and name.
fn tap_device(p: &crate::config::Port) -> Option<(&str, &str)> {
    let get = |k| p.options.get(k).map(String::as_str);
    (p.kind == "tap").then_some(())?;
    Some((get(ops::TAP_NETNS)?, get(ops::TAP_IFNAME)?))
}

/// True when a TAP attachment's namespace is gone (its file cannot be
/// opened, or now names another namespace), or its device is gone from it.
/// Unknown (netlink cannot be asked) counts as not gone.
fn tap_gone(netns: &str, ifname: &str, inode: Option<&str>) -> bool {
    use std::os::unix::fs::MetadataExt;
    let path = std::path::Path::new(netns);
    match std::fs::metadata(path) {
        Err(_) => return true,
        Ok(m) if inode.is_some_and(|i| i != m.ino().to_string()) => return true,
        Ok(_) => {}
    }
    let ifname = ifname.to_string();
    let res = ports::netns::run_in(path, move || {
        Rtnl::open().and_then(|mut nl| nl.link_index(&ifname))
    });
    matches!(res, Ok(Ok(None)))
}

/// Attachment ports whose device no longer exists (the container's
/// namespace went away, taking the TAP device or the veth pair with it),
/// as requests for the control loop to commit like any command: the port
/// is deleted, unless the container was attached by its Docker name and
/// Docker still has it. Then a stopped container's port waits, and one
/// that runs again (in a new namespace, after `docker start` or `restart`)
/// is attached again with the same interface name, MAC, MTU, address,
/// gateway, VLAN and device type. Only the kernel's word that the device
/// is gone counts: if netlink cannot be asked, nothing is removed.
pub fn vanished(cfg: &Config) -> Vec<Request> {
    let attachments = record::attachments(cfg, None);
    if attachments.is_empty() {
        return Vec::new();
    }
    let Ok(mut nl) = Rtnl::open() else {
        return Vec::new();
    };
    let mut commands = Vec::new();
    let mut again = Vec::new();
    for a in attachments {
        let gone = match tap_device(a.p) {
            Some((netns, ifname)) => tap_gone(netns, ifname, a.get(key::NETNS_INODE)),
            None => matches!(nl.link_index(a.port), Ok(None)),
        };
        if gone && a.get(key::DOCKER) == Some("true") {
            let env = netns::DockerEnv::from_record(&a.p.external_ids);
            match netns::docker_state(a.container(), &env) {
                netns::DockerState::Gone => {}
                netns::DockerState::Running(pid) => {
                    log::info!(
                        "attach: Docker container {} runs again (pid {pid}); attaching its interface {} again",
                        a.container(),
                        a.ifname()
                    );
                    again.push(reattach(a, &env));
                    continue;
                }
                // Stopped, or Docker cannot be asked: wait.
                _ => continue,
            }
        }
        if gone {
            log::info!(
                "attach: the device of port {} ({} interface {}) on bridge {} is gone (the container's namespace went away); removing the port",
                a.port,
                a.container(),
                a.ifname(),
                a.bridge
            );
            commands.push(CommandReq {
                args: vec!["del-port".into(), a.bridge.into(), a.port.into()],
                may_exist: false,
                if_exists: true,
            });
        }
    }
    let mut out = Vec::new();
    if !commands.is_empty() {
        out.push(Request {
            commands,
            ..Request::default()
        });
    }
    out.extend(again.into_iter().flatten());
    out
}

/// The requests that attach a Docker container's interface again as it
/// was recorded: the stale port out, then `attach` with the same settings
/// (one request each: `attach` stands alone).
fn reattach(a: record::Attachment<'_>, env: &netns::DockerEnv) -> [Request; 2] {
    let one = |args: Vec<String>| CommandReq {
        args,
        may_exist: false,
        if_exists: true,
    };
    let mut args = vec![
        "attach".to_string(),
        a.bridge.to_string(),
        a.container().to_string(),
    ];
    let with_gw = |ip: Option<&str>, gw: Option<&str>| match (ip, gw) {
        (Some(ip), Some(gw)) => Some(format!("{ip}@{gw}")),
        (Some(ip), None) => Some(ip.to_string()),
        _ => None,
    };
    let v4 = with_gw(a.get(key::IP), a.get(key::GATEWAY));
    let v6 = with_gw(a.get(key::IP6), a.get(key::GATEWAY6));
    let addrs: Vec<String> = v4.into_iter().chain(v6).collect();
    args.push(match addrs.is_empty() {
        true => "0/0".into(),
        false => addrs.join(","),
    });
    args.extend(["--ifname".into(), a.ifname().to_string()]);
    for (opt, k) in [("--mac", key::MAC), ("--mtu", key::MTU)] {
        if let Some(v) = a.get(k) {
            args.extend([opt.to_string(), v.to_string()]);
        }
    }
    if let Some(t) = a.p.tag {
        args.extend(["--tag".into(), t.to_string()]);
    }
    // The same kind of device as before, whatever the default is now.
    args.extend(["--type".into(), a.kind().into()]);
    let del = vec!["del-port".into(), a.bridge.into(), a.port.into()];
    [
        Request {
            commands: vec![one(del)],
            ..Request::default()
        },
        Request {
            commands: vec![CommandReq {
                args,
                ..CommandReq::default()
            }],
            docker_env: env.to_request(),
        },
    ]
}

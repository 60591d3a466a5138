//! vswctl commands, executed by the daemon as one transaction.
//!
//! All commands of a request run against a copy of the configuration; if any
//! fails, the copy is thrown away and nothing changes. Otherwise the copy is
//! stored and applied, and the effects that are not configuration (flushing
//! the MAC table, clearing statistics) run last.

pub mod columns;
mod records;
pub(crate) mod show;
#[cfg(test)]
mod tests;

use crate::config::{Bridge, Config, Map, Port};
use crate::runtime::Runtime;
use columns::{parse_setting, set_bridge_column, set_port_column};
use ports::netdev::check_ifname;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::net::Ipv4Addr;

/// One command as vswctl sends it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CommandReq {
    pub args: Vec<String>,
    #[serde(default)]
    pub may_exist: bool,
    #[serde(default)]
    pub if_exists: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Request {
    pub commands: Vec<CommandReq>,
    /// The client's Docker settings (`DOCKER_HOST`, `DOCKER_CONTEXT`,
    /// `DOCKER_CONFIG`), for finding a container by its Docker name as the
    /// user's own `docker` would, not with the daemon's environment.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub docker_env: std::collections::BTreeMap<String, String>,
}

/// The output of one command: plain text and the same as JSON.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Output {
    pub text: String,
    pub json: Value,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Response {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Exit status vswctl should use.
    #[serde(default)]
    pub exit_code: i32,
    #[serde(default)]
    pub results: Vec<Output>,
    /// Things that worked but not as asked (a port opened another way,
    /// a device missing), printed by vswctl on stderr.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// A failed command: message and exit status.
#[derive(Debug)]
pub struct Failure {
    pub message: String,
    pub exit_code: i32,
}

impl From<String> for Failure {
    fn from(message: String) -> Self {
        Failure {
            message,
            exit_code: 1,
        }
    }
}

type CmdResult = Result<Output, Failure>;

/// Work that happens only if the whole transaction commits.
enum Effect {
    FdbFlush(Option<String>),
    FdbAdd {
        bridge: String,
        vlan: u16,
        mac: [u8; 6],
        port: String,
        remote: Option<Ipv4Addr>,
    },
    FdbDel {
        bridge: String,
        vlan: u16,
        mac: [u8; 6],
    },
    FdbFlushPort(String),
    PmdStatsClear,
    /// Empty the connection table (of one zone).
    CtFlush(Option<u16>),
}

/// Everything a command may read or change.
pub struct Txn<'a> {
    pub cfg: Config,
    pub rt: &'a Runtime,
    effects: Vec<Effect>,
    pid: u32,
    /// Kernel changes of container attachment (crate::attach).
    pub(crate) attach: crate::attach::Pending,
}

/// What a transaction produced: the response, the new configuration when
/// it changed (to store and apply), and effects to run once it is committed.
pub struct Outcome {
    pub response: Response,
    pub new_config: Option<Config>,
    effects: Vec<Effect>,
    /// Kernel changes of container attachment (crate::attach).
    attach: crate::attach::Pending,
}

impl Outcome {
    /// Runs the non-configuration effects; call after a successful commit.
    pub fn apply_effects(&mut self, rt: &Runtime) {
        for e in self.effects.drain(..) {
            match e {
                Effect::FdbFlush(b) => rt.fdb_flush(b.as_deref()),
                Effect::FdbAdd {
                    bridge,
                    vlan,
                    mac,
                    port,
                    remote,
                } => {
                    if let Err(e) = rt.fdb_add(&bridge, vlan, &mac, &port, remote) {
                        log::warn!("fdb/add: {e}");
                    }
                }
                Effect::FdbDel { bridge, vlan, mac } => {
                    rt.fdb_del(&bridge, vlan, &mac);
                }
                Effect::FdbFlushPort(p) => rt.fdb_flush_port(&p),
                Effect::PmdStatsClear => rt.pmd_clear(),
                Effect::CtFlush(zone) => rt.ct_flush(zone),
            }
        }
        self.attach.commit();
    }

    /// Undoes the kernel changes of the commands (container attachment);
    /// call when the new configuration could not be stored.
    pub fn abort(&mut self) {
        self.attach.abort();
    }
}

/// Runs a request as one transaction against `cfg`.
pub fn execute(req: &Request, cfg: &Config, rt: &Runtime) -> Outcome {
    let mut txn = Txn {
        cfg: cfg.clone(),
        rt,
        effects: Vec::new(),
        pid: std::process::id(),
        attach: crate::attach::Pending::new(req),
    };
    let mut results = Vec::new();
    let mut failed = None;
    for c in &req.commands {
        match txn.run(c) {
            Ok(o) => results.push(o),
            Err(f) => {
                failed = Some(f);
                break;
            }
        }
    }
    // The whole new configuration must hold together (tunnels that would
    // share a VNI, a UDP port something else has).
    if failed.is_none() && !txn.cfg.same_as(cfg) {
        failed = crate::tunnel::validate(&txn.cfg)
            .and_then(|()| crate::config::validate::check_lab_ports(&txn.cfg))
            .and_then(|()| crate::mirror::validate(&txn.cfg))
            .and_then(|()| crate::nat::validate(&txn.cfg))
            .and_then(|()| rt.check_tunnel_ports(cfg, &txn.cfg))
            .err()
            .map(Failure::from);
    }
    if let Some(f) = failed {
        txn.attach.abort();
        return Outcome {
            response: Response {
                ok: false,
                error: Some(f.message),
                exit_code: f.exit_code,
                results: Vec::new(),
                warnings: Vec::new(),
            },
            new_config: None,
            effects: Vec::new(),
            attach: crate::attach::Pending::new(req),
        };
    }
    txn.cfg.assign_ofports();
    let changed = !txn.cfg.same_as(cfg);
    let Txn {
        cfg: mut new,
        effects,
        attach,
        ..
    } = txn;
    let resp = Response {
        ok: true,
        error: None,
        exit_code: 0,
        results,
        warnings: Vec::new(),
    };
    if changed {
        new.version = cfg.version + 1;
    }
    Outcome {
        response: resp,
        new_config: changed.then_some(new),
        effects,
        attach,
    }
}

/// A log level by vswitch's name (`error`, `warn`, `info`, `debug`,
/// `trace`, `off`) or Open vSwitch's (`emer`, `err`, `dbg`).
fn log_level(name: &str) -> Result<log::LevelFilter, Failure> {
    use log::LevelFilter as L;
    Ok(match name.to_ascii_lowercase().as_str() {
        "off" => L::Off,
        "emer" | "err" | "error" => L::Error,
        "warn" | "warning" => L::Warn,
        "info" => L::Info,
        "dbg" | "debug" => L::Debug,
        "trace" => L::Trace,
        _ => {
            return Err(format!(
                "\"{name}\" is not a log level (off, error, warn, info, debug, trace)"
            )
            .into())
        }
    })
}

fn text(lines: &[String]) -> String {
    lines.iter().map(|l| format!("{l}\n")).collect()
}

fn none() -> Output {
    Output {
        text: String::new(),
        json: Value::Null,
    }
}

fn list(items: Vec<String>) -> Output {
    Output {
        text: text(&items),
        json: json!(items),
    }
}

impl Txn<'_> {
    fn run(&mut self, c: &CommandReq) -> CmdResult {
        let Some((name, args)) = c.args.split_first() else {
            return Err("empty command".to_string().into());
        };
        let argc = |min: usize, max: usize| -> Result<(), Failure> {
            if args.len() < min || args.len() > max {
                let want = if min == max {
                    format!("{min}")
                } else if max == usize::MAX {
                    format!("at least {min}")
                } else {
                    format!("{min} to {max}")
                };
                return Err(format!(
                    "'{name}' takes {want} argument(s), got {} (see vswctl --help)",
                    args.len()
                )
                .into());
            }
            Ok(())
        };
        match name.as_str() {
            "add-br" => {
                argc(1, 1)?;
                self.add_br(&args[0], c.may_exist)
            }
            "del-br" => {
                argc(1, 1)?;
                self.del_br(&args[0], c.if_exists)
            }
            "list-br" => {
                argc(0, 0)?;
                Ok(list(self.cfg.bridges.keys().cloned().collect()))
            }
            "br-exists" => {
                argc(1, 1)?;
                if self.cfg.bridges.contains_key(&args[0]) {
                    Ok(none())
                } else {
                    Err(Failure {
                        message: String::new(),
                        exit_code: 2,
                    })
                }
            }
            "add-port" => {
                argc(2, usize::MAX)?;
                self.add_port(&args[0], &args[1], &args[2..], c.may_exist)
            }
            "del-port" => {
                argc(1, 2)?;
                let (br, port) = match args {
                    [p] => (None, p),
                    [b, p] => (Some(b.as_str()), p),
                    _ => unreachable!("checked by argc"),
                };
                self.del_port(br, port, c.if_exists)
            }
            "list-ports" => {
                argc(1, 1)?;
                let br = self.bridge(&args[0])?;
                Ok(list(br.ports.keys().cloned().collect()))
            }
            "port-to-br" => {
                argc(1, 1)?;
                match self.cfg.port_bridge(&args[0]) {
                    Some(b) => Ok(Output {
                        text: format!("{b}\n"),
                        json: json!(b),
                    }),
                    None => Err(format!("no port named {}", args[0]).into()),
                }
            }
            "set" => {
                argc(3, usize::MAX)?;
                self.set(&args[0], &args[1], &args[2..])
            }
            "list" => {
                argc(1, usize::MAX)?;
                records::list(&self.cfg, &args[0], &args[1..])
            }
            "find" => {
                argc(1, usize::MAX)?;
                records::find(&self.cfg, &args[0], &args[1..])
            }
            "get" => {
                argc(3, usize::MAX)?;
                self.get(&args[0], &args[1], &args[2..])
            }
            "show" => {
                argc(0, 0)?;
                Ok(show::show(&self.cfg, self.rt, self.pid))
            }
            "fdb/show" => {
                argc(1, 1)?;
                self.bridge(&args[0])?;
                Ok(show::fdb(self.rt, &args[0]))
            }
            "fdb/flush" => {
                argc(0, 1)?;
                if let Some(b) = args.first() {
                    self.bridge(b)?;
                }
                self.effects.push(Effect::FdbFlush(args.first().cloned()));
                Ok(Output {
                    text: "table successfully flushed\n".into(),
                    json: Value::Null,
                })
            }
            "fdb/add" => {
                argc(3, 5)?;
                self.fdb_add(args)
            }
            "fdb/del" => {
                argc(2, 3)?;
                self.fdb_del(args)
            }
            "rstp/show" => {
                argc(0, 1)?;
                if let Some(b) = args.first() {
                    self.bridge(b)?;
                }
                Ok(crate::rstp::show::show(
                    self.rt,
                    args.first().map(String::as_str),
                )?)
            }
            "tunnel/show" => {
                argc(0, 0)?;
                Ok(show::tunnels(self.rt))
            }
            "dump-ports" => {
                argc(1, 2)?;
                let br = self.bridge(&args[0])?;
                let mut names: Vec<String> = vec![args[0].clone()];
                names.extend(br.ports.keys().cloned());
                if let Some(p) = args.get(1) {
                    if !names.contains(p) {
                        return Err(format!("bridge {} has no port named {p}", args[0]).into());
                    }
                    names = vec![p.clone()];
                }
                Ok(show::dump_ports(self.rt, &names))
            }
            "pmd/stats-show" => {
                argc(0, 0)?;
                Ok(show::pmd_stats(self.rt))
            }
            "pmd/rxq-show" => {
                argc(0, 0)?;
                Ok(show::pmd_rxqs(self.rt))
            }
            "pmd/stats-clear" => {
                argc(0, 0)?;
                self.effects.push(Effect::PmdStatsClear);
                Ok(none())
            }
            // --- container attachment: vswitch/src/attach/ ---
            "attach" | "detach" | "list-attachments" => crate::attach::run(self, name, args, c),
            // --- end of container attachment ---
            "cluster/join" | "cluster/leave" | "cluster/show" | "network/create"
            | "network/delete" | "network/list" => {
                crate::cluster::commands::run(self, name, args, c)
            }
            "remove" => {
                argc(4, usize::MAX)?;
                self.remove_values(&args[0], &args[1], &args[2], &args[3..])
            }
            "clear" => {
                argc(3, usize::MAX)?;
                for col in &args[2..] {
                    self.clear_column(&args[0], &args[1], col)?;
                }
                Ok(none())
            }
            "metrics" => {
                argc(0, 0)?;
                Ok(crate::metrics::render(&self.cfg, self.rt))
            }
            "vlog/set" => {
                argc(1, 1)?;
                let level = log_level(&args[0])?;
                log::set_max_level(level);
                log::info!("log level set to {level}");
                Ok(none())
            }
            "vlog/list" => {
                argc(0, 0)?;
                let level = log::max_level().to_string().to_lowercase();
                Ok(Output {
                    text: format!("vswitchd: {level}\n"),
                    json: json!({ "level": level }),
                })
            }
            "vlog/reopen" => {
                argc(0, 0)?;
                // The control loop reopens the log on SIGHUP.
                // SAFETY: kill(2) on our own pid with a signal we handle.
                unsafe { libc::kill(libc::getpid(), libc::SIGHUP) };
                Ok(none())
            }
            "trace" => crate::trace::command(&self.cfg, self.rt, args).map_err(Failure::from),
            "add-mirror" | "del-mirror" | "list-mirrors" => crate::mirror::run(self, name, args, c),
            "add-uplink" | "del-uplink" | "publish" | "unpublish" | "list-published"
            | "conntrack/show" | "conntrack/flush" | "conntrack/stats" => {
                crate::nat::commands::run(self, name, args, c)
            }
            other => Err(format!("unknown command '{other}'; use --help for help").into()),
        }
    }

    /// `fdb/add BR MAC PORT [vlan=N] [remote=IP]`: a static entry, checked
    /// here and added once the transaction commits. Like OVS's, static
    /// entries live in the running table only.
    fn fdb_add(&mut self, args: &[String]) -> CmdResult {
        let (br, mac, port) = (&args[0], parse_mac_arg(&args[1])?, &args[2]);
        let b = self.bridge(br)?;
        let Some(p) = b.ports.get(port.as_str()) else {
            return Err(format!("bridge {br} has no port named {port}").into());
        };
        let (mut vlan, mut remote) = (0u16, None);
        for a in &args[3..] {
            match a.split_once('=') {
                Some(("vlan", v)) => vlan = parse_fdb_vlan(v)?,
                Some(("remote", v)) => {
                    let ip: Ipv4Addr = v
                        .parse()
                        .map_err(|_| format!("remote \"{v}\" is not an IPv4 address"))?;
                    let spec = crate::tunnel::VxlanSpec::from_options(&p.options)
                        .ok()
                        .filter(|_| p.kind == crate::tunnel::KIND)
                        .ok_or_else(|| {
                            format!("port {port} is not a vxlan port: remote= does not apply")
                        })?;
                    if !spec.remotes.contains(&ip) {
                        return Err(format!("{ip} is not a remote of port {port}").into());
                    }
                    remote = Some(ip);
                }
                _ => return Err(format!("fdb/add: \"{a}\" is not vlan=N or remote=IP").into()),
            }
        }
        self.effects.push(Effect::FdbAdd {
            bridge: br.clone(),
            vlan,
            mac,
            port: port.clone(),
            remote,
        });
        Ok(none())
    }

    /// `fdb/del BR MAC [vlan=N]`.
    fn fdb_del(&mut self, args: &[String]) -> CmdResult {
        let (br, mac) = (&args[0], parse_mac_arg(&args[1])?);
        self.bridge(br)?;
        let vlan = match args.get(2).map(|a| a.split_once('=')) {
            None => 0,
            Some(Some(("vlan", v))) => parse_fdb_vlan(v)?,
            Some(_) => return Err(format!("fdb/del: \"{}\" is not vlan=N", args[2]).into()),
        };
        let known = self
            .rt
            .fdb(br)
            .iter()
            .any(|(_, e)| e.vlan == vlan && e.mac == mac);
        if !known {
            return Err(format!("no entry for {} in VLAN {vlan} on bridge {br}", args[1]).into());
        }
        self.effects.push(Effect::FdbDel {
            bridge: br.clone(),
            vlan,
            mac,
        });
        Ok(none())
    }

    /// Empties the connection table (of one zone) once the transaction
    /// commits.
    pub(crate) fn ct_flush(&mut self, zone: Option<u16>) {
        self.effects.push(Effect::CtFlush(zone));
    }

    fn bridge(&self, name: &str) -> Result<&Bridge, Failure> {
        self.cfg
            .bridges
            .get(name)
            .ok_or_else(|| format!("no bridge named {name}").into())
    }

    fn add_br(&mut self, name: &str, may_exist: bool) -> CmdResult {
        check_ifname(name).map_err(|e| format!("cannot create bridge: {e}"))?;
        if self.cfg.bridges.contains_key(name) {
            if may_exist {
                return Ok(none());
            }
            return Err(format!(
                "cannot create a bridge named {name} because a bridge named {name} already exists"
            )
            .into());
        }
        if let Some(b) = self.cfg.port_bridge(name) {
            return Err(format!(
                "cannot create a bridge named {name} because a port named {name} already exists on bridge {b}"
            )
            .into());
        }
        // The bridge's internal port is a TAP device of that name that the
        // switch creates; one that exists already is someone else's.
        if ports::netdev::exists(name) {
            return Err(format!(
                "cannot create a bridge named {name} because a network device named {name} \
                 already exists (the bridge's own port would take it over); choose another name"
            )
            .into());
        }
        self.cfg.bridges.insert(name.to_string(), Bridge::default());
        Ok(none())
    }

    fn del_br(&mut self, name: &str, if_exists: bool) -> CmdResult {
        crate::attach::detach_all(self, name);
        if self.cfg.bridges.remove(name).is_none() && !if_exists {
            return Err(format!("no bridge named {name}").into());
        }
        Ok(none())
    }

    fn add_port(
        &mut self,
        br: &str,
        port: &str,
        settings: &[String],
        may_exist: bool,
    ) -> CmdResult {
        self.bridge(br)?;
        check_ifname(port).map_err(|e| format!("cannot add port: {e}"))?;
        let mut p = Port::default();
        for s in settings {
            set_port_column(&mut p, &parse_setting(s)?)
                .map_err(|e| format!("add-port {br} {port}: {e}"))?;
        }
        if let Some(b) = self.cfg.port_bridge(port) {
            if b == br && may_exist && b != port {
                return Ok(none());
            }
            return Err(format!(
                "cannot create a port named {port} because a port named {port} already exists on bridge {b}"
            )
            .into());
        }
        if self.cfg.bridges.contains_key(port) {
            return Err(format!(
                "cannot create a port named {port} because a bridge named {port} already exists"
            )
            .into());
        }
        if let Some(b) = self.cfg.bridges.get_mut(br) {
            b.ports.insert(port.to_string(), p);
        }
        Ok(none())
    }

    fn del_port(&mut self, br: Option<&str>, port: &str, if_exists: bool) -> CmdResult {
        if let Some(b) = br {
            self.bridge(b)?;
        }
        let owner = self
            .cfg
            .bridges
            .iter()
            .find(|(_, b)| b.ports.contains_key(port))
            .map(|(n, _)| n.clone());
        match (owner, br) {
            (Some(o), Some(b)) if o != b => {
                Err(format!("bridge {b} does not have a port {port} (it is on bridge {o})").into())
            }
            (Some(o), _) => {
                if let Some(b) = self.cfg.bridges.get_mut(&o) {
                    b.ports.remove(port);
                    crate::mirror::forget_port(b, port);
                }
                Ok(none())
            }
            (None, _) if if_exists => Ok(none()),
            (None, Some(b)) if b == port => Err(format!(
                "cannot delete port {port} because it is the local port for bridge {b} (deleting this port requires deleting the entire bridge)"
            )
            .into()),
            (None, _) => Err(format!("no port named {port}").into()),
        }
    }

    /// The map column `column` of a record, for `remove` and `clear`.
    fn map_mut(&mut self, table: &str, record: &str, column: &str) -> Result<&mut Map, Failure> {
        match (table.to_ascii_lowercase().as_str(), column) {
            ("bridge", "other_config" | "external_ids") => {
                let b = self
                    .cfg
                    .bridges
                    .get_mut(record)
                    .ok_or_else(|| Failure::from(format!("no bridge named {record}")))?;
                Ok(if column == "other_config" {
                    &mut b.other_config
                } else {
                    &mut b.external_ids
                })
            }
            ("port" | "interface", "options" | "other_config" | "external_ids") => {
                let p = self.port_mut(record)?;
                Ok(match column {
                    "options" => &mut p.options,
                    "other_config" => &mut p.other_config,
                    _ => &mut p.external_ids,
                })
            }
            _ => Err(format!("{table} has no map column named \"{column}\"").into()),
        }
    }

    /// `remove TABLE RECORD COLUMN VALUE...`: keys (or `key=value` pairs)
    /// out of a map column, VLANs out of `trunks`, as ovs-vsctl does.
    fn remove_values(
        &mut self,
        table: &str,
        record: &str,
        column: &str,
        values: &[String],
    ) -> CmdResult {
        let t = table.to_ascii_lowercase();
        if column == "trunks" && (t == "port" || t == "interface") {
            let drop: Vec<u16> = values
                .iter()
                .map(|v| v.parse().map_err(|_| format!("\"{v}\" is not a VLAN id")))
                .collect::<Result<_, _>>()?;
            self.port_mut(record)?.trunks.retain(|v| !drop.contains(v));
            return Ok(none());
        }
        let map = self.map_mut(table, record, column)?;
        for v in values {
            match v.split_once('=') {
                Some((k, want)) => {
                    if map.get(k).is_some_and(|have| have == want) {
                        map.remove(k);
                    }
                }
                None => {
                    map.remove(v);
                }
            }
        }
        Ok(none())
    }

    /// `clear TABLE RECORD COLUMN`: empties a column.
    fn clear_column(&mut self, table: &str, record: &str, column: &str) -> Result<(), Failure> {
        let t = table.to_ascii_lowercase();
        if t == "port" || t == "interface" {
            let p = self.port_mut(record)?;
            match column {
                "tag" => p.tag = None,
                "trunks" => p.trunks.clear(),
                "vlan_mode" => p.vlan_mode = None,
                _ => {
                    self.map_mut(table, record, column)?.clear();
                }
            }
            return Ok(());
        }
        self.map_mut(table, record, column)?.clear();
        Ok(())
    }

    fn port_mut(&mut self, name: &str) -> Result<&mut Port, Failure> {
        self.cfg
            .bridges
            .values_mut()
            .find_map(|b| b.ports.get_mut(name))
            .ok_or_else(|| format!("no port named {name}").into())
    }

    fn set(&mut self, table: &str, record: &str, settings: &[String]) -> CmdResult {
        match table.to_ascii_lowercase().as_str() {
            "bridge" => {
                let mut br = self.bridge(record)?.clone();
                for s in settings {
                    set_bridge_column(&mut br, &parse_setting(s)?)?;
                }
                self.cfg.bridges.insert(record.to_string(), br);
            }
            "port" | "interface" => {
                let mut p = self.port_mut(record)?.clone();
                let before = (p.tag, p.trunks.clone(), p.vlan_mode.clone());
                for s in settings {
                    set_port_column(&mut p, &parse_setting(s)?)?;
                }
                if before != (p.tag, p.trunks.clone(), p.vlan_mode.clone()) {
                    self.effects.push(Effect::FdbFlushPort(record.to_string()));
                }
                *self.port_mut(record)? = p;
            }
            "open_vswitch" if record == "." => {
                for s in settings {
                    let s = parse_setting(s)?;
                    let (Some(k), "other_config") = (s.key.as_deref(), s.column.as_str()) else {
                        return Err(format!(
                            "Open_vSwitch: only other_config:KEY=VALUE is kept, not \"{}\"",
                            s.column
                        )
                        .into());
                    };
                    crate::nat::check_switch_other_config(k, &s.value)?;
                    if k == crate::attach::spec::ATTACH_TYPE_KEY {
                        crate::attach::spec::parse_type("other_config:attach-type", &s.value)?;
                    }
                    columns::map_set(&mut self.cfg.other_config, k, &s.value);
                }
            }
            other => {
                return Err(format!(
                    "unknown table \"{other}\" (known: bridge, port, interface, open_vswitch .)"
                )
                .into())
            }
        }
        Ok(none())
    }

    fn get(&self, table: &str, record: &str, columns: &[String]) -> CmdResult {
        let value = match table.to_ascii_lowercase().as_str() {
            "bridge" => serde_json::to_value(self.bridge(record)?),
            "port" | "interface" => {
                let p = self
                    .cfg
                    .bridges
                    .values()
                    .find_map(|b| b.ports.get(record))
                    .ok_or_else(|| format!("no port named {record}"))?;
                serde_json::to_value(p)
            }
            other => {
                return Err(
                    format!("unknown table \"{other}\" (known: bridge, port, interface)").into(),
                )
            }
        }
        .map_err(|e| e.to_string())?;
        let mut lines = Vec::new();
        let mut values = Vec::new();
        for col in columns {
            let (c, key) = match col.split_once(':') {
                Some((c, k)) => (c.replace('-', "_"), Some(k)),
                None => (col.replace('-', "_"), None),
            };
            let Some(v) = value.get(&c) else {
                return Err(format!("{table} has no column named \"{c}\"").into());
            };
            let v = match key {
                Some(k) => match v.get(k) {
                    Some(x) => x.clone(),
                    None => {
                        return Err(format!("no key \"{k}\" in {table} {record} column {c}").into())
                    }
                },
                None => v.clone(),
            };
            lines.push(show::ovs_value(&v));
            values.push(v);
        }
        Ok(Output {
            text: text(&lines),
            json: json!(values),
        })
    }
}

fn parse_mac_arg(s: &str) -> Result<[u8; 6], Failure> {
    pipeline::wire::eth::parse_mac(s)
        .ok_or_else(|| format!("\"{s}\" is not a MAC address (aa:bb:cc:dd:ee:ff)").into())
}

fn parse_fdb_vlan(v: &str) -> Result<u16, Failure> {
    match v.parse::<u16>() {
        Ok(n) if n < 4095 => Ok(n),
        _ => Err(format!("vlan \"{v}\" is not a VLAN id (0 to 4094)").into()),
    }
}

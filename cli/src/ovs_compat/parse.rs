//! Splitting an ovs-vsctl command line: global options, then commands
//! separated by `--`, each with its own leading options.

use super::schema::{COMMANDS, OVS_ONLY_COMMANDS, OVS_ONLY_OPTIONS};
use super::{fail, Fail};
use std::path::PathBuf;
use std::time::Duration;

/// One command of the command line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Cmd {
    pub(crate) name: String,
    pub(crate) args: Vec<String>,
    pub(crate) may_exist: bool,
    pub(crate) if_exists: bool,
    /// `--id=@NAME` (`get`, `create`): the row can be referred to as
    /// `@NAME` by the other commands. `Some("")` when given without a value.
    pub(crate) id: Option<String>,
}

#[derive(Debug)]
pub(crate) struct Invocation {
    pub(crate) rundir: PathBuf,
    pub(crate) timeout: Duration,
    pub(crate) commands: Vec<Cmd>,
    /// How `list` and `find` print records.
    pub(crate) records: RecordFormat,
}

/// `--format`, `--data`, `--no-headings`, `--columns` and `--bare`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct RecordFormat {
    /// `--format=table` (else OVS's list format).
    pub(crate) table: bool,
    /// `--data=bare`: no quotes, brackets or braces.
    pub(crate) bare: bool,
    pub(crate) no_headings: bool,
    /// `--columns=A,B`: these, in this order (else every column).
    pub(crate) columns: Option<Vec<String>>,
}

pub(crate) enum Parsed {
    Help,
    Version,
    Run(Invocation),
}

/// Splits the command line the way ovs-vsctl does: global options, then
/// commands separated by `--`, each with its own leading options.
pub(crate) fn parse(argv: &[String]) -> Result<Parsed, Fail> {
    let mut inv = Invocation {
        rundir: std::env::var_os("VSWITCH_RUNDIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/run/vswitch")),
        timeout: Duration::from_secs(30),
        commands: Vec::new(),
        records: RecordFormat::default(),
    };
    let mut cur = Cmd::default();
    let mut i = 0;
    while i < argv.len() {
        let a = argv[i].as_str();
        i += 1;
        if !cur.name.is_empty() {
            if a == "--" {
                inv.commands.push(std::mem::take(&mut cur));
            } else {
                cur.args.push(a.to_string());
            }
            continue;
        }
        let (opt, inline) = match a.split_once('=') {
            Some((o, v)) if o.starts_with("--") => (o, Some(v.to_string())),
            _ => (a, None),
        };
        let mut value = |what: &str| -> Result<String, Fail> {
            if let Some(v) = inline.clone() {
                return Ok(v);
            }
            let v = argv.get(i).cloned();
            i += 1;
            v.ok_or_else(|| Fail {
                message: format!("option '{what}' requires an argument"),
                code: 1,
            })
        };
        match opt {
            "--" => {}
            "-h" | "--help" => return Ok(Parsed::Help),
            "-V" | "--version" => return Ok(Parsed::Version),
            "--may-exist" => cur.may_exist = true,
            "--if-exists" => cur.if_exists = true,
            "--id" => {
                if cur.id.is_some() {
                    return fail(format!("'{a}' option specified multiple times"));
                }
                cur.id = Some(inline.clone().unwrap_or_default());
            }
            "--db" => {
                value("--db")?;
            }
            "--no-wait" | "--no-syslog" => {}
            "--format" | "-f" => match value("--format")?.as_str() {
                "list" => inv.records.table = false,
                "table" => inv.records.table = true,
                other => {
                    return fail(format!(
                        "format {other} is not supported by vswitch's ovs-vsctl (list, table)"
                    ))
                }
            },
            "--data" | "-d" => match value("--data")?.as_str() {
                "bare" => inv.records.bare = true,
                "string" => inv.records.bare = false,
                other => {
                    return fail(format!(
                        "data format {other} is not supported by vswitch's ovs-vsctl (string, bare)"
                    ))
                }
            },
            "--no-headings" | "--no-heading" => inv.records.no_headings = true,
            "--bare" => {
                inv.records = RecordFormat {
                    table: false,
                    bare: true,
                    no_headings: true,
                    columns: inv.records.columns.take(),
                }
            }
            "--columns" => {
                let v = value("--columns")?;
                inv.records.columns = Some(v.split(',').map(|c| c.trim().to_string()).collect());
            }
            "--rundir" => inv.rundir = PathBuf::from(value("--rundir")?),
            "-t" | "--timeout" => {
                let v = value("--timeout")?;
                let secs: u64 = v.parse().map_err(|_| Fail {
                    message: format!("value {v} on -t or --timeout is invalid"),
                    code: 1,
                })?;
                inv.timeout = Duration::from_secs(if secs == 0 { 3600 } else { secs });
            }
            _ if OVS_ONLY_OPTIONS.contains(&opt) => {
                return fail(format!(
                    "option {opt} is not supported by vswitch's ovs-vsctl (see ovs-vsctl --help)"
                ))
            }
            _ if opt.starts_with("--") => return fail(format!("unrecognized option '{opt}'")),
            _ if opt.starts_with('-') && opt.len() > 1 => {
                return fail(format!("invalid option -- '{}'", &opt[1..]))
            }
            _ => cur.name = a.to_string(),
        }
    }
    if !cur.name.is_empty() {
        inv.commands.push(cur);
    }
    if inv.commands.is_empty() {
        return fail("missing command name (use --help for help)");
    }
    for c in &inv.commands {
        check_command(c)?;
    }
    Ok(Parsed::Run(inv))
}

fn check_command(c: &Cmd) -> Result<(), Fail> {
    let Some(&(_, min, max)) = COMMANDS.iter().find(|(n, _, _)| *n == c.name) else {
        if OVS_ONLY_COMMANDS.contains(&c.name.as_str()) {
            return fail(format!(
                "'{}' is an ovs-vsctl command that vswitch does not support (see ovs-vsctl --help)",
                c.name
            ));
        }
        return fail(format!("unknown command '{}'; use --help for help", c.name));
    };
    if c.args.len() < min {
        return fail(format!(
            "'{}' command requires at least {min} arguments",
            c.name
        ));
    }
    if c.args.len() > max {
        return fail(format!(
            "'{}' command takes at most {max} arguments",
            c.name
        ));
    }
    if c.may_exist && !["add-br", "add-port"].contains(&c.name.as_str()) {
        return fail(format!("'{}' command has no '--may-exist' option", c.name));
    }
    if c.if_exists && !["del-br", "del-port"].contains(&c.name.as_str()) {
        return fail(format!("'{}' command has no '--if-exists' option", c.name));
    }
    if let Some(id) = &c.id {
        if !["get", "create"].contains(&c.name.as_str()) {
            return fail(format!("'{}' command has no '--id' option", c.name));
        }
        if id.is_empty() {
            return fail(format!(
                "missing argument to '--id' option on '{}' command",
                c.name
            ));
        }
    }
    if c.name == "add-br" && c.args.len() > 1 {
        return fail(
            "add-br BRIDGE PARENT VLAN (a fake bridge) is not supported by vswitch; use add-br BRIDGE and ports with tag=VLAN",
        );
    }
    Ok(())
}

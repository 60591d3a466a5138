//! `ovs-vsctl` compatibility: vswctl run under the name `ovs-vsctl` (a
//! symlink) speaks the subset of ovs-vsctl that container tools and lab
//! scripts use, with Open vSwitch's output formats, messages and exit codes.
//!
//! Supported: `list-br`, `br-exists`, `add-br`, `del-br`, `list-ports`,
//! `add-port BR PORT [COL=VAL]...`, `del-port [BR] PORT`, `port-to-br`,
//! `show`, `list`/`find`, `get`/`set` of the simple columns of Bridge, Port
//! and Interface, and mirrors the OVS way (`--id=@m create Mirror ...`,
//! `set`/`add`/`remove`/`clear` of Bridge `mirrors`), chained with `--`,
//! with `--may-exist`/`--if-exists`/`--id`; `--db`, `--no-wait`,
//! `--no-syslog` and `--timeout` are accepted (the first three ignored).
//! Anything else is refused with a message, never silently accepted. See
//! docs/ovs-vsctl-compat.md for the list and the known differences.
//!
//! How it works: the command line is checked here (tables, columns, values,
//! rows that must exist, against a snapshot of the configuration), turned
//! into one vswctl request the daemon applies all or nothing, and the JSON
//! results are printed the way ovs-vsctl prints them. Files: `schema`
//! (Open vSwitch's tables, columns, commands and options), `parse` (the
//! command line), `translate` (checks and the vswctl request), `mirrors`
//! and `ids` (mirrors made with `--id=@NAME` references), `format`
//! (printing values), `show` (the `show` command's format).

mod format;
mod ids;
mod mirrors;
mod parse;
mod schema;
mod show;
#[cfg(test)]
mod tests;
mod translate;

use format::get_lines;
use parse::{parse, Cmd, Parsed};
use serde_json::{json, Value};
use std::path::Path;
use std::process::ExitCode;
use translate::{translate, Print, State};

/// The program name this mode answers to.
pub const PROGRAM: &str = "ovs-vsctl";

const USAGE: &str = "\
ovs-vsctl (vswitch): the ovs-vsctl subset that vswitch supports
usage: ovs-vsctl [OPTIONS] COMMAND [ARG...] [-- [OPTIONS] COMMAND [ARG...]]...

  list-br                       print the names of all bridges
  br-exists BRIDGE              exit 2 if BRIDGE does not exist
  add-br BRIDGE                 create a bridge (--may-exist)
  del-br BRIDGE                 delete a bridge and its ports (--if-exists)
  list-ports BRIDGE             print the names of the ports of BRIDGE
  add-port BRIDGE PORT [COLUMN[:KEY]=VALUE]...   (--may-exist)
  del-port [BRIDGE] PORT        (--if-exists)
  port-to-br PORT               print the bridge that contains PORT
  show                          print an overview of the configuration
  get TABLE RECORD [COLUMN[:KEY]]...             (--id=@NAME)
  set TABLE RECORD COLUMN[:KEY]=VALUE...
  list TABLE [RECORD]...        find TABLE [COLUMN[:KEY]=VALUE]...
  create Mirror COLUMN=VALUE... (with --id=@NAME, put into a bridge's mirrors)
  add|remove Bridge BRIDGE mirrors @NAME...     clear Bridge BRIDGE mirrors
Tables and columns: Bridge (name, datapath_type, other_config, external_ids,
  mirrors, rstp_enable), Port (name, tag, trunks, vlan_mode, other_config,
  external_ids), Interface (name, type, options, other_config, external_ids,
  mtu_request), Mirror (name,
  select_all, select_src_port, select_dst_port, select_vlan, output_port,
  output_vlan).
Options: --timeout=SECS, --db=... (ignored), --no-wait (ignored),
  --rundir DIR (vswitchd's run directory; default $VSWITCH_RUNDIR or /run/vswitch)
See docs/ovs-vsctl-compat.md for the differences from Open vSwitch.
";

/// A failure: the message (printed after "ovs-vsctl: ") and exit status.
#[derive(Debug, PartialEq, Eq)]
pub struct Fail {
    pub message: String,
    pub code: u8,
}

pub(crate) fn fail<T>(message: impl Into<String>) -> Result<T, Fail> {
    Err(Fail {
        message: message.into(),
        code: 1,
    })
}

/// True when argv[0] names this mode.
pub fn invoked_as(argv0: &str) -> bool {
    Path::new(argv0).file_name().and_then(|n| n.to_str()) == Some(PROGRAM)
}

/// Runs ovs-vsctl mode with the arguments after the program name.
pub fn main(argv: &[String]) -> ExitCode {
    match run(argv) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            if !f.message.is_empty() {
                eprintln!("{PROGRAM}: {}", f.message);
            }
            ExitCode::from(f.code.max(1))
        }
    }
}

fn run(argv: &[String]) -> Result<(), Fail> {
    let inv = match parse(argv)? {
        Parsed::Help => {
            print!("{USAGE}");
            return Ok(());
        }
        Parsed::Version => {
            println!(
                "{PROGRAM} (vswitch) {}\nthe ovs-vsctl subset of vswctl; see docs/ovs-vsctl-compat.md",
                env!("CARGO_PKG_VERSION")
            );
            return Ok(());
        }
        Parsed::Run(inv) => inv,
    };
    let sock = inv.rundir.join("vswitchd.sock");
    let talk = |req: &Value| -> Result<Value, Fail> {
        crate::client::call(&sock, req, inv.timeout).map_err(|e| Fail {
            message: format!(
                "cannot talk to vswitchd at {}: {e} (is vswitchd running? set --rundir or VSWITCH_RUNDIR)",
                sock.display()
            ),
            code: 1,
        })
    };
    let failed = |resp: &Value| -> Fail {
        Fail {
            message: resp["error"].as_str().unwrap_or_default().to_string(),
            code: resp["exit_code"]
                .as_i64()
                .and_then(|c| u8::try_from(c).ok())
                .unwrap_or(1),
        }
    };
    let show_req = json!({"commands": [{"args": ["show"]}, {"args": ["list-mirrors"]}]});
    let show = talk(&show_req)?;
    if show["ok"].as_bool() != Some(true) {
        return Err(failed(&show));
    }
    let (steps, finished, requests) = translate_all(
        &inv.commands,
        &show["results"][0]["json"],
        &show["results"][1]["json"],
    )?;
    let results = if requests.is_empty() {
        Vec::new()
    } else {
        let resp = talk(&json!({ "commands": requests }))?;
        if resp["ok"].as_bool() != Some(true) {
            return Err(failed(&resp));
        }
        // A port opened another way than asked (AF_PACKET instead of
        // AF_XDP); a missing device is reported below, as OVS does.
        for w in resp["warnings"].as_array().into_iter().flatten() {
            let w = w.as_str().unwrap_or_default();
            if !w.contains("the port is kept") {
                eprintln!("{PROGRAM}: warning: {w}");
            }
        }
        resp["results"].as_array().cloned().unwrap_or_default()
    };
    let mut out = String::new();
    let mut next = results.iter();
    for s in &steps {
        let r = match s.request {
            Some(_) => next
                .next()
                .map(|r| r["json"].clone())
                .unwrap_or(Value::Null),
            None => Value::Null,
        };
        match &s.print {
            Print::Nothing => {}
            Print::Lines => {
                for l in r.as_array().into_iter().flatten() {
                    out.push_str(l.as_str().unwrap_or_default());
                    out.push('\n');
                }
            }
            Print::Line => {
                out.push_str(r.as_str().unwrap_or_default());
                out.push('\n');
            }
            Print::Show => {
                out.push_str(&show::show_text(&r, &show::root_uuid(&inv.rundir)));
            }
            Print::Created { id } => {
                if let Some(u) = finished.uuids.get(id) {
                    out.push_str(u);
                    out.push('\n');
                }
            }
            Print::Records { table } => {
                out.push_str(&format::records_text(*table, &r, &inv.records)?);
            }
            Print::Get {
                table,
                record,
                columns,
            } => {
                let values = r.as_array().cloned().unwrap_or_default();
                for l in get_lines(*table, record, columns, &values)? {
                    out.push_str(&l);
                    out.push('\n');
                }
            }
        }
    }
    print!("{out}");
    report_port_errors(&inv.commands, &talk);
    Ok(())
}

/// Every command translated, against the daemon's `show` and
/// `list-mirrors` answers: the steps (what to print), the `--id` results,
/// and the one request to send (all or nothing).
fn translate_all(
    commands: &[Cmd],
    show: &Value,
    mirrors: &Value,
) -> Result<(Vec<translate::Step>, ids::Finished, Vec<Value>), Fail> {
    let mut state = State::from_show(show).with_mirrors(mirrors);
    let mut steps = Vec::new();
    for c in commands {
        steps.push(translate(c, &mut state)?);
    }
    let finished = state.ids.finish(&state)?;
    let mut requests: Vec<Value> = steps.iter().filter_map(|s| s.request.clone()).collect();
    requests.extend(finished.requests.iter().cloned());
    Ok((steps, finished, requests))
}

/// The vswctl commands an ovs-vsctl command line becomes, given the
/// daemon's `show` and `list-mirrors` answers (JSON), without talking to
/// it; `Ok(None)` for `--help` and `--version`. For the fuzz crate.
pub fn plan(argv: &[String], show: &Value, mirrors: &Value) -> Result<Option<Vec<Value>>, Fail> {
    match parse(argv)? {
        Parsed::Run(inv) => Ok(Some(translate_all(&inv.commands, show, mirrors)?.2)),
        Parsed::Help | Parsed::Version => Ok(None),
    }
}

/// Like ovs-vsctl, warns (without failing) about added ports that could
/// not be opened.
fn report_port_errors(commands: &[Cmd], talk: &dyn Fn(&Value) -> Result<Value, Fail>) {
    let added: Vec<&str> = commands
        .iter()
        .filter(|c| c.name == "add-port")
        .filter_map(|c| c.args.get(1).map(String::as_str))
        .collect();
    if added.is_empty() {
        return;
    }
    let Ok(show) = talk(&json!({"commands": [{"args": ["show"]}]})) else {
        return;
    };
    for b in show["results"][0]["json"]["bridges"]
        .as_array()
        .into_iter()
        .flatten()
    {
        for p in b["ports"].as_array().into_iter().flatten() {
            let name = p["name"].as_str().unwrap_or_default();
            if let (true, Some(e)) = (added.contains(&name), p["error"].as_str()) {
                eprintln!(
                    "{PROGRAM}: Error detected while setting up '{name}': {e}.  See ovs-vswitchd log for details."
                );
            }
        }
    }
}

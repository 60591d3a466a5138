//! `ovs-appctl` compatibility: vswctl run under the name `ovs-appctl` (a
//! symlink) answers Open vSwitch's runtime commands people type every day,
//! each mapped to vswitch's own command:
//!
//! | ovs-appctl | vswctl |
//! | --- | --- |
//! | `fdb/show BR`, `fdb/flush [BR]` | the same |
//! | `dpif-netdev/pmd-stats-show`, `pmd-rxq-show`, `pmd-stats-clear` | `pmd/stats-show`, `pmd/rxq-show`, `pmd/stats-clear` |
//! | `vlog/set [MODULE:DEST:]LEVEL`, `vlog/list`, `vlog/reopen` | `vlog/set LEVEL`, `vlog/list`, `vlog/reopen` |
//! | `version` | `--version` |
//!
//! `-t`/`--target` is accepted and ignored (vswitchd is the only target);
//! the daemon is found as vswctl finds it (`--rundir`, `VSWITCH_RUNDIR`).
//! Anything else is refused with exit status 2, as ovs-appctl does for a
//! command the daemon does not know.

use serde_json::json;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

pub const PROGRAM: &str = "ovs-appctl";

pub fn invoked_as(argv0: &str) -> bool {
    std::path::Path::new(argv0)
        .file_name()
        .is_some_and(|n| n == PROGRAM)
}

/// OVS log levels among the words of a `vlog/set` spec.
const LEVELS: &[&str] = &["off", "emer", "err", "warn", "info", "dbg"];

/// The vswctl command for an ovs-appctl command line.
fn translate(cmd: &str, args: &[String]) -> Result<Vec<String>, String> {
    let own = |c: &str| -> Vec<String> {
        std::iter::once(c.to_string())
            .chain(args.iter().cloned())
            .collect()
    };
    Ok(match cmd {
        "fdb/show" | "fdb/flush" | "rstp/show" => own(cmd),
        "dpif-netdev/pmd-stats-show" => own("pmd/stats-show"),
        "dpif-netdev/pmd-rxq-show" => own("pmd/rxq-show"),
        "dpif-netdev/pmd-stats-clear" => own("pmd/stats-clear"),
        "vlog/list" | "vlog/reopen" => own(cmd),
        "vlog/set" => {
            let level = args
                .iter()
                .flat_map(|a| a.split(':'))
                .find(|w| LEVELS.contains(&w.to_ascii_lowercase().as_str()))
                .ok_or_else(|| {
                    format!(
                        "vlog/set: no log level in \"{}\" (one of {})",
                        args.join(" "),
                        LEVELS.join(", ")
                    )
                })?;
            vec!["vlog/set".into(), level.to_string()]
        }
        _ => {
            return Err(format!(
                "\"{cmd}\" is not a valid command (vswitch answers fdb/show, fdb/flush, \
                 dpif-netdev/pmd-stats-show, dpif-netdev/pmd-rxq-show, \
                 dpif-netdev/pmd-stats-clear, vlog/set, vlog/list, vlog/reopen, version)"
            ))
        }
    })
}

pub fn main(argv: &[String]) -> ExitCode {
    let mut rundir = std::env::var_os("VSWITCH_RUNDIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/run/vswitch"));
    let mut timeout = Duration::from_secs(30);
    let mut words = argv.iter();
    let mut rest: Vec<String> = Vec::new();
    while let Some(a) = words.next() {
        let (name, inline) = match a.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n, Some(v.to_string())),
            _ => (a.as_str(), None),
        };
        let mut value = || inline.clone().or_else(|| words.next().cloned());
        match name {
            _ if !rest.is_empty() => rest.push(a.clone()),
            "-t" | "--target" => {
                value();
            }
            "-T" | "--timeout" => {
                let v = value().unwrap_or_default();
                match v.parse::<u64>() {
                    Ok(s) => timeout = Duration::from_secs(s.max(1)),
                    Err(_) => return fail(&format!("--timeout \"{v}\" is not a number"), 1),
                }
            }
            "--rundir" => rundir = value().map(PathBuf::from).unwrap_or(rundir),
            "-h" | "--help" => {
                println!(
                    "ovs-appctl (vswitch): fdb/show BR, fdb/flush [BR], \
                     dpif-netdev/pmd-stats-show, dpif-netdev/pmd-rxq-show, \
                     dpif-netdev/pmd-stats-clear, vlog/set LEVEL, vlog/list, vlog/reopen, version"
                );
                return ExitCode::SUCCESS;
            }
            _ => rest.push(a.clone()),
        }
    }
    let Some((cmd, args)) = rest.split_first() else {
        return fail("at least one non-option argument is required", 1);
    };
    if cmd == "version" {
        println!("ovs-vswitchd (vswitch) {}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    let command = match translate(cmd, args) {
        Ok(c) => c,
        Err(e) => return fail(&e, 2),
    };
    let request = json!({ "commands": [{ "args": command }] });
    match crate::client::call(&rundir.join("vswitchd.sock"), &request, timeout) {
        Ok(r) if r["ok"].as_bool() == Some(true) => {
            for res in r["results"].as_array().into_iter().flatten() {
                print!("{}", res["text"].as_str().unwrap_or_default());
            }
            ExitCode::SUCCESS
        }
        Ok(r) => fail(r["error"].as_str().unwrap_or("failed"), 2),
        Err(e) => fail(&format!("cannot connect to vswitchd ({e})"), 1),
    }
}

fn fail(msg: &str, code: u8) -> ExitCode {
    eprintln!("ovs-appctl: {msg}");
    ExitCode::from(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(cmd: &str, args: &[&str]) -> Result<Vec<String>, String> {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        translate(cmd, &args)
    }

    #[test]
    fn ovs_spellings_map_to_vswitch_commands() {
        assert_eq!(t("fdb/show", &["br0"]).unwrap(), vec!["fdb/show", "br0"]);
        assert_eq!(
            t("dpif-netdev/pmd-stats-show", &[]).unwrap(),
            vec!["pmd/stats-show"]
        );
        assert_eq!(
            t("dpif-netdev/pmd-rxq-show", &[]).unwrap(),
            vec!["pmd/rxq-show"]
        );
        assert_eq!(
            t("vlog/set", &["ANY:file:dbg"]).unwrap(),
            vec!["vlog/set", "dbg"]
        );
        assert_eq!(t("vlog/set", &["info"]).unwrap(), vec!["vlog/set", "info"]);
        assert!(t("vlog/set", &["loud"]).is_err());
        assert!(t("ofproto/trace", &[])
            .unwrap_err()
            .contains("not a valid command"));
        assert!(invoked_as("/usr/local/bin/ovs-appctl") && !invoked_as("vswctl"));
    }
}

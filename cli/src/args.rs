//! Splitting a vswctl command line into global options and commands.

use serde::Serialize;
use std::path::PathBuf;
use std::time::Duration;

pub const USAGE: &str = "\
vswctl: configure and query vswitchd
usage: vswctl [OPTIONS] COMMAND [ARG...] [-- [OPTIONS] COMMAND [ARG...]]...

Commands joined with -- are applied together or not at all.

Bridge commands:
  add-br BRIDGE                  create a bridge (and its internal port BRIDGE)
  del-br BRIDGE                  delete a bridge and all of its ports
  list-br                        print the names of all bridges
  br-exists BRIDGE               exit 2 if BRIDGE does not exist
Port commands:
  add-port BRIDGE PORT [COL=VAL]...  add PORT to BRIDGE; columns: type=(afxdp|
                                 afpacket|tap|internal), tag=VLAN, trunks=LIST,
                                 vlan_mode=MODE, options:xdp-mode=(best-effort|
                                 native|generic), external_ids:KEY=VALUE
  del-port [BRIDGE] PORT         delete PORT
  list-ports BRIDGE              print the names of the ports of BRIDGE
  port-to-br PORT                print the bridge that contains PORT
Database commands:
  set bridge|port|interface NAME COL[:KEY]=VALUE...
  get bridge|port|interface NAME COL[:KEY]...
Container commands:
  attach BRIDGE CONTAINER IP/PREFIX[@GATEWAY] [--ifname NAME] [--mac MAC]
         [--tag VLAN] [--mtu N]  give a container (netns name, PID, netns path
                                 or Docker name) an interface on BRIDGE
  detach BRIDGE CONTAINER [--ifname NAME]   undo attach: port and veth removed
  list-attachments [BRIDGE]      what is attached where
Status commands:
  show                           overview of bridges, ports and their state
  fdb/show BRIDGE                learned MAC addresses
  fdb/flush [BRIDGE]             forget learned MAC addresses
  dump-ports BRIDGE [PORT]       port counters, with drops by reason
  pmd/stats-show                 poll thread statistics
  pmd/stats-clear                reset poll thread statistics
  pmd/rxq-show                   which poll thread polls which queue

Options:
  --rundir DIR        run directory of vswitchd (default $VSWITCH_RUNDIR or /run/vswitch)
  --format text|json  output format (-f json also works)
  --may-exist         add-br/add-port: succeed if it already exists
  --if-exists         del-br/del-port: succeed if it does not exist
  --timeout N         give up after N seconds (default 30)
  -h, --help          this help
  -V, --version       version
";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Command {
    pub args: Vec<String>,
    pub may_exist: bool,
    pub if_exists: bool,
}

#[derive(Debug)]
pub struct Run {
    pub rundir: PathBuf,
    pub format: Format,
    pub timeout: Duration,
    pub commands: Vec<Command>,
}

#[derive(Debug)]
pub enum Invocation {
    Help,
    Version,
    Run(Run),
}

/// Parses everything after the program name.
pub fn parse(argv: &[String]) -> Result<Invocation, String> {
    let mut run = Run {
        rundir: std::env::var_os("VSWITCH_RUNDIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/run/vswitch")),
        format: Format::Text,
        timeout: Duration::from_secs(30),
        commands: Vec::new(),
    };
    let mut cur = Command::default();
    let mut i = 0;
    // Options are accepted before each command (global ones anywhere before
    // the first command's name).
    while i < argv.len() {
        let a = argv[i].as_str();
        let (name, inline) = match a.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n, Some(v.to_string())),
            _ => (a, None),
        };
        let mut value = |what: &str| -> Result<String, String> {
            if let Some(v) = inline.clone() {
                return Ok(v);
            }
            i += 1;
            argv.get(i)
                .cloned()
                .ok_or_else(|| format!("option {what} needs a value"))
        };
        if !cur.args.is_empty() {
            if a == "--" {
                run.commands.push(std::mem::take(&mut cur));
            } else {
                cur.args.push(a.to_string());
            }
            i += 1;
            continue;
        }
        match name {
            "--" => {}
            "-h" | "--help" => return Ok(Invocation::Help),
            "-V" | "--version" => return Ok(Invocation::Version),
            "--may-exist" => cur.may_exist = true,
            "--if-exists" => cur.if_exists = true,
            "--rundir" => run.rundir = PathBuf::from(value("--rundir")?),
            "-f" | "--format" => {
                run.format = match value("--format")?.as_str() {
                    "json" => Format::Json,
                    "text" | "table" => Format::Text,
                    other => {
                        return Err(format!(
                            "unknown output format \"{other}\" (use text or json)"
                        ))
                    }
                }
            }
            "-t" | "--timeout" => {
                let v = value("--timeout")?;
                let secs: u64 = v
                    .parse()
                    .map_err(|_| format!("--timeout \"{v}\" is not a number of seconds"))?;
                run.timeout = Duration::from_secs(if secs == 0 { 3600 } else { secs });
            }
            _ if a.starts_with('-') && a.len() > 1 => {
                return Err(format!("unknown option \"{a}\" (see vswctl --help)"))
            }
            _ => cur.args.push(a.to_string()),
        }
        i += 1;
    }
    if !cur.args.is_empty() {
        run.commands.push(cur);
    } else if cur.may_exist || cur.if_exists {
        return Err("an option was given after the last -- but no command".into());
    }
    if run.commands.is_empty() {
        return Err("missing command name (use --help for help)".into());
    }
    Ok(Invocation::Run(run))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Run, String> {
        let v: Vec<String> = s.split_whitespace().map(String::from).collect();
        match parse(&v)? {
            Invocation::Run(r) => Ok(r),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn single_command_with_global_options() {
        let r = p("--rundir /tmp/x --format json list-br").unwrap();
        assert_eq!(r.rundir, PathBuf::from("/tmp/x"));
        assert_eq!(r.format, Format::Json);
        assert_eq!(r.commands.len(), 1);
        assert_eq!(r.commands[0].args, vec!["list-br"]);
    }

    #[test]
    fn chained_commands_with_per_command_options() {
        let r = p("--may-exist add-br b -- --if-exists del-port p -- add-port b q tag=5").unwrap();
        assert_eq!(r.commands.len(), 3);
        assert!(r.commands[0].may_exist && !r.commands[0].if_exists);
        assert!(r.commands[1].if_exists);
        assert_eq!(r.commands[2].args, vec!["add-port", "b", "q", "tag=5"]);
    }

    #[test]
    fn inline_option_values() {
        let r = p("--format=json --timeout=5 show").unwrap();
        assert_eq!(r.format, Format::Json);
        assert_eq!(r.timeout, Duration::from_secs(5));
    }

    #[test]
    fn errors() {
        assert!(p("").is_err());
        assert!(p("--bogus list-br").is_err());
        assert!(p("--format xml list-br").is_err());
        assert!(p("--rundir").is_err());
        assert!(p("list-br -- --may-exist").is_err());
    }
}

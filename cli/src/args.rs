//! Splitting a vswctl command line into global options and commands.

use crate::help::{self, Help};
use serde::Serialize;
use std::path::PathBuf;
use std::time::Duration;

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
    Help(Help),
    Version,
    Run(Run),
}

/// Parses everything after the program name. `--help` (or `-h`) among a
/// command's arguments, or a command named `help`, asks for help instead of
/// running anything.
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
            "-h" | "--help" => return Ok(Invocation::Help(Help::All)),
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
    if let Some(h) = help_request(&run.commands)? {
        return Ok(Invocation::Help(h));
    }
    Ok(Invocation::Run(run))
}

/// The help the first command that asks for it wants: `help [COMMAND]`, or
/// `COMMAND ... --help` / `COMMAND ... -h`.
fn help_request(commands: &[Command]) -> Result<Option<Help>, String> {
    let lookup = |name: &str| {
        help::find(name)
            .map(Help::Command)
            .ok_or_else(|| format!("unknown command '{name}' (vswctl --help lists the commands)"))
    };
    for c in commands {
        let Some((name, args)) = c.args.split_first() else {
            continue;
        };
        if name == "help" {
            return match args {
                [] => Ok(Some(Help::All)),
                [what] => lookup(what).map(Some),
                _ => Err("'help' takes at most one argument (usage: vswctl help [COMMAND])".into()),
            };
        }
        if args.iter().any(|a| a == "--help" || a == "-h") {
            return lookup(name).map(Some);
        }
    }
    Ok(None)
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

    fn help_of(s: &str) -> Result<Help, String> {
        let v: Vec<String> = s.split_whitespace().map(String::from).collect();
        match parse(&v)? {
            Invocation::Help(h) => Ok(h),
            other => panic!("{s}: {other:?}"),
        }
    }

    fn command(name: &str) -> Help {
        Help::Command(help::find(name).unwrap_or_else(|| panic!("{name} is in the table")))
    }

    #[test]
    fn help_after_a_command_is_that_commands_help() {
        assert_eq!(help_of("add-br --help"), Ok(command("add-br")));
        assert_eq!(help_of("add-br -h"), Ok(command("add-br")));
        assert_eq!(help_of("add-port br0 --help"), Ok(command("add-port")));
        assert_eq!(help_of("--may-exist add-br x -h"), Ok(command("add-br")));
        assert_eq!(
            help_of("list-br -- fdb/show --help"),
            Ok(command("fdb/show"))
        );
    }

    #[test]
    fn help_command_and_global_help() {
        assert_eq!(help_of("help"), Ok(Help::All));
        assert_eq!(help_of("help add-port"), Ok(command("add-port")));
        assert_eq!(help_of("--help"), Ok(Help::All));
        assert_eq!(help_of("-h add-br x"), Ok(Help::All));
        assert_eq!(
            help_of("--rundir /x help pmd/rxq-show"),
            Ok(command("pmd/rxq-show"))
        );
    }

    #[test]
    fn help_for_an_unknown_command_is_an_error() {
        let e = help_of("help frobnicate").unwrap_err();
        assert!(e.contains("frobnicate"), "{e}");
        let e = help_of("frobnicate --help").unwrap_err();
        assert!(e.contains("frobnicate"), "{e}");
        assert!(help_of("help add-br del-br").is_err());
    }

    #[test]
    fn help_like_values_inside_arguments_are_not_help() {
        let r = p("set port p external_ids:note=--help").unwrap();
        assert_eq!(r.commands[0].args.len(), 4);
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

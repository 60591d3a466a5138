//! vswctl: configures and queries a running vswitchd, in the manner of
//! ovs-vsctl.
//!
//! `vswctl [OPTIONS] COMMAND [ARGS...] [-- [CMD-OPTIONS] COMMAND [ARGS...]]...`
//!
//! The command line is split into commands here and sent to the daemon as one
//! request; the daemon applies them all or none. Arguments are hand-parsed
//! rather than with clap because ovs-vsctl's grammar (per-command options,
//! commands joined with `--`) does not fit a subcommand parser.

use cli::args::{parse, Format, Invocation};
use cli::client::{call, docker_env};
use cli::{capture, generate, ovs_appctl, ovs_compat};
use serde_json::json;
use std::io::Write;
use std::process::ExitCode;

/// Runs a command that needs no daemon (`completion`, `man`), if `args` is
/// one.
fn local(args: &[String]) -> Option<ExitCode> {
    let fail = |e: String| {
        eprintln!("vswctl: {e}");
        ExitCode::from(1)
    };
    let out = &mut std::io::stdout().lock();
    Some(match args {
        [c, shell] if c == "completion" => match generate::completion(shell, out) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => fail(e),
        },
        [c, ..] if c == "completion" => fail(generate::COMPLETION_USAGE.into()),
        [c] if c == "man" => match generate::man(out) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => fail(format!("cannot write the manual page: {e}")),
        },
        [c, ..] if c == "man" => fail("usage: vswctl man".into()),
        _ => return None,
    })
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().collect();
    // Run as `ovs-vsctl` (a symlink): Open vSwitch's grammar and output.
    if argv.first().is_some_and(|a| ovs_compat::invoked_as(a)) {
        return ovs_compat::main(&argv[1..]);
    }
    // Run as `ovs-appctl`: Open vSwitch's runtime commands.
    if argv.first().is_some_and(|a| ovs_appctl::invoked_as(a)) {
        return ovs_appctl::main(&argv[1..]);
    }
    let inv = match parse(&argv[1..]) {
        Ok(Invocation::Help(h)) => {
            print!("{}", h.text());
            return ExitCode::SUCCESS;
        }
        Ok(Invocation::Version) => {
            println!("vswctl {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Ok(Invocation::Run(inv)) => inv,
        Err(e) => {
            eprintln!("vswctl: {e}");
            return ExitCode::from(1);
        }
    };
    if let [c] = inv.commands.as_slice() {
        if let Some(code) = local(&c.args) {
            return code;
        }
    }
    if inv.commands.len() == 1 && inv.commands[0].args[0] == "capture" {
        return capture::main(&inv.rundir, &inv.commands[0].args[1..]);
    }
    if inv.commands.len() == 1
        && inv.commands[0].args[0] == "trace"
        && inv.commands[0].args.iter().any(|a| a == "--live")
    {
        return capture::live_trace(&inv.rundir, &inv.commands[0].args[1..]);
    }
    let sock = inv.rundir.join("vswitchd.sock");
    let request = json!({ "commands": inv.commands, "docker_env": docker_env() });
    let response = match call(&sock, &request, inv.timeout) {
        Ok(r) => r,
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            eprintln!("vswctl: {}: {e}", sock.display());
            return ExitCode::from(1);
        }
        Err(e) => {
            eprintln!(
                "vswctl: cannot talk to vswitchd at {}: {e} (is vswitchd running? set --rundir or VSWITCH_RUNDIR)",
                sock.display()
            );
            return ExitCode::from(1);
        }
    };
    if response["ok"].as_bool() != Some(true) {
        let code = response["exit_code"].as_i64().unwrap_or(1).clamp(1, 255) as u8;
        if let Some(msg) = response["error"].as_str().filter(|m| !m.is_empty()) {
            eprintln!("vswctl: {msg}");
        }
        return ExitCode::from(code);
    }
    for w in response["warnings"].as_array().into_iter().flatten() {
        eprintln!("vswctl: warning: {}", w.as_str().unwrap_or_default());
    }
    let mut out = std::io::stdout().lock();
    let results = response["results"].as_array().cloned().unwrap_or_default();
    for r in results {
        let res = match inv.format {
            Format::Text => write!(out, "{}", r["text"].as_str().unwrap_or_default()),
            Format::Json if r["json"].is_null() => Ok(()),
            Format::Json => writeln!(out, "{}", r["json"]),
        };
        if res.is_err() {
            break;
        }
    }
    ExitCode::SUCCESS
}

//! vswctl: configures and queries a running vswitchd, in the manner of
//! ovs-vsctl.
//!
//! `vswctl [OPTIONS] COMMAND [ARGS...] [-- [CMD-OPTIONS] COMMAND [ARGS...]]...`
//!
//! The command line is split into commands here and sent to the daemon as one
//! request; the daemon applies them all or none. Arguments are hand-parsed
//! rather than with clap because ovs-vsctl's grammar (per-command options,
//! commands joined with `--`) does not fit a subcommand parser.

mod args;
mod help;
mod ovs_compat;

use args::{parse, Format, Invocation};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::process::ExitCode;
use std::time::Duration;

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().collect();
    // Run as `ovs-vsctl` (a symlink): Open vSwitch's grammar and output.
    if argv.first().is_some_and(|a| ovs_compat::invoked_as(a)) {
        return ovs_compat::main(&argv[1..]);
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
    let sock = inv.rundir.join("vswitchd.sock");
    let request = json!({ "commands": inv.commands });
    let response = match call(&sock, &request, inv.timeout) {
        Ok(r) => r,
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

/// Sends one request line and reads one response line.
fn call(sock: &std::path::Path, request: &Value, timeout: Duration) -> std::io::Result<Value> {
    let mut stream = UnixStream::connect(sock)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    let mut line = serde_json::to_vec(request)?;
    line.push(b'\n');
    stream.write_all(&line)?;
    let mut reader = BufReader::new(stream);
    let mut resp = String::new();
    reader.read_line(&mut resp)?;
    if resp.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "the daemon closed the connection without answering",
        ));
    }
    serde_json::from_str(&resp).map_err(std::io::Error::other)
}

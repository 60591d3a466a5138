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
mod capture;
mod help;
mod ovs_appctl;
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

/// Sends one request line and reads one response line.
///
/// The request carries a deadline (`deadline_unix_ms`, wall-clock
/// milliseconds): the daemon refuses it, changing nothing, if it has not
/// started it by then. The deadline falls a little before the end of our
/// wait (a quarter of it, at most 2 s), so a request the daemon starts
/// just in time is normally answered before we give up.
pub(crate) fn call(
    sock: &std::path::Path,
    request: &Value,
    timeout: Duration,
) -> std::io::Result<Value> {
    let margin = (timeout / 4).min(Duration::from_secs(2));
    let mut request = request.clone();
    if let Some(obj) = request.as_object_mut() {
        let deadline = std::time::SystemTime::now() + (timeout - margin);
        let ms = deadline
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(0);
        obj.insert("deadline_unix_ms".into(), json!(ms));
    }
    trusted_socket(sock)?;
    let mut stream = UnixStream::connect(sock)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    let mut line = serde_json::to_vec(&request)?;
    line.push(b'\n');
    stream.write_all(&line)?;
    let mut reader = BufReader::new(stream);
    let mut resp = String::new();
    reader.read_line(&mut resp).map_err(|e| match e.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => std::io::Error::new(
            e.kind(),
            format!(
                "no answer within {}s; the daemon does not apply a request it has not \
                 started {}s before that",
                timeout.as_secs(),
                margin.as_secs_f32()
            ),
        ),
        _ => e,
    })?;
    if resp.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "the daemon closed the connection without answering",
        ));
    }
    serde_json::from_str(&resp).map_err(std::io::Error::other)
}

/// Refuses a control socket that belongs to someone other than root or
/// us: whoever made it could answer for the switch (and read what we send).
pub(crate) fn trusted_socket(sock: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::symlink_metadata(sock) else {
        // Missing: connect() says so in its own words.
        return Ok(());
    };
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    if meta.uid() != 0 && meta.uid() != me {
        return Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!(
                "refusing to use it: the socket belongs to uid {}, not to root or to you \
                 (uid {me}), so it may not be vswitchd's",
                meta.uid()
            ),
        ));
    }
    Ok(())
}

/// This client's Docker settings, for the daemon to find a container by
/// its Docker name as this user's `docker` would. Without DOCKER_CONFIG,
/// Docker reads `$HOME/.docker` (contexts live there): that is passed on.
fn docker_env() -> serde_json::Map<String, serde_json::Value> {
    let mut m = serde_json::Map::new();
    for k in ["DOCKER_HOST", "DOCKER_CONTEXT", "DOCKER_CONFIG"] {
        if let Ok(v) = std::env::var(k) {
            m.insert(k.into(), v.into());
        }
    }
    if !m.contains_key("DOCKER_CONFIG") {
        if let Ok(home) = std::env::var("HOME") {
            m.insert("DOCKER_CONFIG".into(), format!("{home}/.docker").into());
        }
    }
    m
}

//! `vswctl capture PORT[,PORT...] [-w FILE|-] [--count N] [--duration S]
//! [--direction in|out|both] [--snaplen N] [--drops]`: asks the daemon for
//! a capture and writes the pcapng it streams back.
//!
//! Each pcapng block is written with one `write`, so a capture that is
//! killed (or a reader that goes away) leaves whole blocks only: the file
//! reads. Ctrl-C ends the capture cleanly: we close our sending side, the
//! daemon stops the taps and sends its statistics (frames captured, frames
//! it dropped because we were too slow), and we print them.

use serde_json::json;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use vswitch::capture::pcapng;

/// Set by SIGINT/SIGTERM.
static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

#[derive(Debug, PartialEq, Eq)]
struct Opts {
    ports: Vec<String>,
    /// None or "-": standard output.
    write: Option<String>,
    count: Option<u64>,
    duration_ms: Option<u64>,
    direction: Option<String>,
    snaplen: Option<u32>,
    drops: bool,
}

fn parse(args: &[String]) -> Result<Opts, String> {
    let mut o = Opts {
        ports: Vec::new(),
        write: None,
        count: None,
        duration_ms: None,
        direction: None,
        snaplen: None,
        drops: false,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let (name, inline) = match a.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n, Some(v.to_string())),
            _ => (a.as_str(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| it.next().cloned())
                .ok_or_else(|| format!("capture: {name} needs a value"))
        };
        match name {
            "-w" | "--write" => o.write = Some(value()?),
            "-c" | "--count" => o.count = Some(number(name, &value()?)?),
            "--duration" => {
                let v = value()?;
                let secs: f64 = v
                    .parse()
                    .ok()
                    .filter(|s: &f64| s.is_finite() && *s > 0.0)
                    .ok_or_else(|| {
                        format!("capture: --duration \"{v}\" is not a number of seconds")
                    })?;
                o.duration_ms = Some((secs * 1000.0).ceil() as u64);
            }
            "--direction" => o.direction = Some(value()?),
            "-s" | "--snaplen" => {
                let v = value()?;
                o.snaplen = Some(
                    number(name, &v)?
                        .try_into()
                        .map_err(|_| format!("capture: --snaplen \"{v}\" is too large"))?,
                )
            }
            "--drops" => o.drops = true,
            _ if name.starts_with('-') => {
                return Err(format!(
                    "capture: unknown option \"{a}\" (see vswctl help capture)"
                ))
            }
            _ => o
                .ports
                .extend(a.split(',').filter(|p| !p.is_empty()).map(String::from)),
        }
    }
    if o.ports.is_empty() {
        return Err("capture: name the port(s) to capture on".into());
    }
    Ok(o)
}

fn number(name: &str, v: &str) -> Result<u64, String> {
    v.parse()
        .map_err(|_| format!("capture: {name} \"{v}\" is not a whole number"))
}

pub fn main(rundir: &Path, args: &[String]) -> ExitCode {
    match run(rundir, args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vswctl: {e}");
            ExitCode::from(1)
        }
    }
}

fn run(rundir: &Path, args: &[String]) -> Result<(), String> {
    let o = parse(args)?;
    let mut out: Box<dyn Write> = match o.write.as_deref() {
        None | Some("-") => Box::new(std::io::stdout()),
        Some(path) => Box::new(
            std::fs::File::create(path)
                .map_err(|e| format!("capture: cannot create {path}: {e}"))?,
        ),
    };
    let req = json!({ "capture": {
        "ports": o.ports, "direction": o.direction, "drops": o.drops,
        "snaplen": o.snaplen, "count": o.count, "duration_ms": o.duration_ms,
    }});
    let stream = request(rundir, &req)?;
    let mut reader = BufReader::new(&stream);
    accepted(&mut reader)?;
    let mut stats = Vec::new();
    let mut packets = 0u64;
    let mut stopped_at: Option<Instant> = None;
    loop {
        if STOP.load(Ordering::Relaxed) && stopped_at.is_none() {
            // The daemon ends the capture and sends its statistics.
            let _ = stream.shutdown(std::net::Shutdown::Write);
            stopped_at = Some(Instant::now());
        }
        if stopped_at.is_some_and(|t| t.elapsed() > STOP_WAIT) {
            eprintln!(
                "vswctl: capture: vswitchd did not end the capture; its statistics are missing"
            );
            break;
        }
        let mut head = [0u8; 8];
        match read_full(&mut reader, &mut head).map_err(|e| format!("capture: {e}"))? {
            Got::Full => {}
            Got::End => break,
            Got::Idle => continue,
        }
        let len = pcapng::block_len(&head).map_err(|e| format!("capture: {e}"))?;
        let mut block = vec![0u8; len];
        block[..8].copy_from_slice(&head);
        loop {
            match read_full(&mut reader, &mut block[8..]).map_err(|e| format!("capture: {e}"))? {
                Got::Full => break,
                Got::End => return Err("capture: the stream ended inside a block".into()),
                Got::Idle => continue,
            }
        }
        if u32::from_le_bytes([head[0], head[1], head[2], head[3]]) == EPB_TYPE {
            packets += 1;
        }
        if let Some(s) = pcapng::parse_stats(&block) {
            stats.push(s);
        }
        if let Err(e) = out.write_all(&block).and_then(|()| out.flush()) {
            // The reader went away (`| head`): stop the capture.
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                STOP.store(true, Ordering::Relaxed);
                continue;
            }
            return Err(format!("capture: cannot write: {e}"));
        }
    }
    let dropped: u64 = stats.iter().map(|s| s.2).sum();
    eprintln!("{packets} packets captured, {dropped} dropped by the capture (reader too slow)");
    Ok(())
}

/// Connects and sends the capture request.
fn request(rundir: &Path, req: &serde_json::Value) -> Result<UnixStream, String> {
    let sock = rundir.join("vswitchd.sock");
    let stream = crate::client::trusted_socket(&sock)
        .and_then(|()| UnixStream::connect(&sock))
        .map_err(|e| {
        format!(
            "cannot talk to vswitchd at {}: {e} (is vswitchd running? set --rundir or VSWITCH_RUNDIR)",
            sock.display()
        )
    })?;
    let mut line = serde_json::to_vec(req).map_err(|e| e.to_string())?;
    line.push(b'\n');
    (&stream)
        .write_all(&line)
        .map_err(|e| format!("capture: {e}"))?;
    // The daemon checks the request quickly; the stream may then be quiet
    // for a long time, so later reads wake up to look at STOP.
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(|e| e.to_string())?;
    Ok(stream)
}

/// Reads the daemon's answer line; Err with its reason if it refused.
fn accepted(reader: &mut BufReader<&UnixStream>) -> Result<(), String> {
    let mut answer = String::new();
    reader
        .read_line(&mut answer)
        .map_err(|e| format!("capture: no answer from vswitchd: {e}"))?;
    let answer: serde_json::Value = serde_json::from_str(&answer)
        .map_err(|_| "capture: vswitchd closed the connection without answering".to_string())?;
    if answer["ok"].as_bool() != Some(true) {
        return Err(answer["error"]
            .as_str()
            .unwrap_or("capture refused")
            .to_string());
    }
    catch_signals();
    reader
        .get_ref()
        .set_read_timeout(Some(Duration::from_millis(200)))
        .map_err(|e| e.to_string())
}

/// `vswctl trace --live BRIDGE [FIELD=VALUE...] [--count N] [--duration S]`:
/// prints the trace of each matching frame the bridge receives.
pub fn live_trace(rundir: &Path, args: &[String]) -> ExitCode {
    let run = || -> Result<(), String> {
        let mut words = args.iter().filter(|a| *a != "--live");
        let bridge = words.next().ok_or(
            "usage: vswctl trace --live BRIDGE [FIELD=VALUE...] [--count N] [--duration S]",
        )?;
        let (mut fields, mut count, mut duration_ms) = (Vec::new(), None, None);
        while let Some(w) = words.next() {
            match w.as_str() {
                "--count" | "-c" => {
                    count = Some(number(
                        "--count",
                        words.next().ok_or("--count needs a value")?,
                    )?)
                }
                "--duration" => {
                    let v = words.next().ok_or("--duration needs a value")?;
                    let secs: f64 = v.parse().ok().filter(|s: &f64| *s > 0.0).ok_or_else(|| {
                        format!("trace: --duration \"{v}\" is not a number of seconds")
                    })?;
                    duration_ms = Some((secs * 1000.0).ceil() as u64);
                }
                _ => fields.push(w.clone()),
            }
        }
        let req = json!({ "capture": {
            "ports": [], "count": count, "duration_ms": duration_ms,
            "trace": { "bridge": bridge, "fields": fields },
        }});
        let stream = request(rundir, &req)?;
        let mut reader = BufReader::new(&stream);
        accepted(&mut reader)?;
        let mut out = std::io::stdout();
        let mut stopped_at: Option<Instant> = None;
        let mut buf = [0u8; 4096];
        loop {
            if STOP.load(Ordering::Relaxed) && stopped_at.is_none() {
                let _ = stream.shutdown(std::net::Shutdown::Write);
                stopped_at = Some(Instant::now());
            }
            if stopped_at.is_some_and(|t| t.elapsed() > STOP_WAIT) {
                break;
            }
            match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    if out.write_all(&buf[..n]).and_then(|()| out.flush()).is_err() {
                        STOP.store(true, Ordering::Relaxed);
                    }
                }
                Err(e) if quiet(&e) => {}
                Err(e) => return Err(format!("trace: {e}")),
            }
        }
        Ok(())
    };
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vswctl: {e}");
            ExitCode::from(1)
        }
    }
}

/// Block type of an Enhanced Packet Block.
const EPB_TYPE: u32 = 6;
/// How long to wait for the daemon's last blocks after asking it to stop.
const STOP_WAIT: Duration = Duration::from_secs(3);

/// A read that found nothing yet (the timeout, a signal).
fn quiet(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock
            | std::io::ErrorKind::TimedOut
            | std::io::ErrorKind::Interrupted
    )
}

enum Got {
    Full,
    /// The stream ended cleanly before the first byte.
    End,
    /// Nothing came before the read timeout.
    Idle,
}

/// Fills `buf`. A timeout before the first byte is `Idle`; inside a
/// block, reading goes on.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<Got> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) if got == 0 => return Ok(Got::End),
            Ok(0) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "the stream ended inside a block",
                ))
            }
            Ok(n) => got += n,
            Err(e) if quiet(&e) => {
                if got == 0 {
                    return Ok(Got::Idle);
                }
            }
            Err(e) => return Err(e),
        }
    }
    Ok(Got::Full)
}

fn catch_signals() {
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handler only stores to an atomic, which is
        // async-signal-safe; no SA_RESTART, so a blocked read returns.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_signal as *const () as usize;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn options_are_parsed_and_bad_ones_named() {
        let o = parse(&args(
            "p1,p2 -w /tmp/x.pcapng --count 5 --duration 1.5 --direction=in --drops -s 96",
        ))
        .unwrap();
        assert_eq!(o.ports, vec!["p1", "p2"]);
        assert_eq!(o.write.as_deref(), Some("/tmp/x.pcapng"));
        assert_eq!(
            (o.count, o.duration_ms, o.snaplen),
            (Some(5), Some(1500), Some(96))
        );
        assert_eq!(o.direction.as_deref(), Some("in"));
        assert!(o.drops);
        for (a, why) in [
            ("", "name the port"),
            ("p1 --count x", "not a whole number"),
            ("p1 --duration -1", "not a number of seconds"),
            ("p1 --bogus", "unknown option"),
            ("p1 -w", "needs a value"),
        ] {
            assert!(parse(&args(a)).unwrap_err().contains(why), "{a}");
        }
    }
}

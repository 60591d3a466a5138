//! One capture's thread: it owns the client's connection (taken over from
//! the control thread once the capture was accepted), turns the queued
//! copies into pcapng blocks and writes them, until the count is reached,
//! the duration is over, or the client closes its side (vswctl does on
//! Ctrl-C). Then it stops the taps and ends the stream with one Interface
//! Statistics Block per port: frames offered and frames the capture
//! dropped.

use super::{now_ns, pcapng, Record, Tap};
use crate::datapath::pmd::Clock;
use crate::runtime::SharedSnapshot;
use crossbeam_channel::{Receiver, RecvTimeoutError};
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often the thread looks at the clock and the client when no frame
/// comes.
const TICK: Duration = Duration::from_millis(50);
/// Records written per `write` at most.
const CHUNK: usize = 256;
/// A client that takes nothing for this long is given up on.
const WRITE_TIMEOUT: Duration = Duration::from_secs(60);

/// Starts the capture thread. `first` is written before the pcapng
/// stream (the JSON line that accepts the request).
pub fn spawn(
    tap: Arc<Tap>,
    rx: Receiver<Record>,
    stream: UnixStream,
    first: Vec<u8>,
    duration: Option<Duration>,
    live_trace: Option<(SharedSnapshot, Clock)>,
) -> io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_write_timeout(Some(WRITE_TIMEOUT))?;
    std::thread::Builder::new()
        .name(format!("capture-{}", tap.id))
        .spawn(move || {
            let deadline = duration.map(|d| Instant::now() + d);
            let res = match live_trace {
                Some((snap, clock)) => trace(&tap, &rx, stream, &first, deadline, &snap, clock),
                None => run(&tap, &rx, stream, &first, deadline),
            };
            if let Err(e) = res {
                log::info!("capture {}: ended: {e}", tap.id);
            }
            tap.stop();
        })?;
    Ok(())
}

fn run(
    tap: &Tap,
    rx: &Receiver<Record>,
    mut stream: UnixStream,
    first: &[u8],
    deadline: Option<Instant>,
) -> io::Result<()> {
    let start = now_ns();
    let mut buf = Vec::with_capacity(1 << 16);
    buf.extend_from_slice(first);
    let ifaces: Vec<(&str, u32)> = tap
        .ports
        .iter()
        .map(|p| (p.as_str(), tap.filter.snaplen))
        .collect();
    pcapng::header(&mut buf, &ifaces);
    stream.write_all(&buf)?;
    loop {
        buf.clear();
        match rx.recv_timeout(TICK) {
            Ok(r) => {
                encode(&mut buf, &r);
                for r in rx.try_iter().take(CHUNK) {
                    encode(&mut buf, &r);
                }
                stream.write_all(&buf)?;
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        if finished(tap, rx, deadline, &mut stream) {
            break;
        }
    }
    tap.stop();
    buf.clear();
    for r in rx.try_iter() {
        encode(&mut buf, &r);
    }
    let end = now_ns();
    for (i, c) in tap.counters.iter().enumerate() {
        let offered = c.offered.load(Ordering::Relaxed);
        let dropped = c.dropped.load(Ordering::Relaxed);
        pcapng::stats(&mut buf, i as u32, start, end, offered, dropped);
    }
    stream.write_all(&buf)?;
    let _ = stream.shutdown(std::net::Shutdown::Write);
    Ok(())
}

fn encode(buf: &mut Vec<u8>, r: &Record) {
    let dir = r.dir.map(|d| match d {
        super::Dir::In => pcapng::Direction::In,
        super::Dir::Out => pcapng::Direction::Out,
    });
    let comment = r.reason.map(|why| format!("drop: {}", why.name()));
    pcapng::packet(
        buf,
        r.iface,
        r.ts_ns,
        r.orig_len,
        &r.data,
        dir,
        comment.as_deref(),
    );
}

/// True once the capture is over: its count taken and sent, its duration
/// up, or its client gone.
fn finished(
    tap: &Tap,
    rx: &Receiver<Record>,
    deadline: Option<Instant>,
    stream: &mut UnixStream,
) -> bool {
    (tap.count_reached() && rx.is_empty())
        || deadline.is_some_and(|d| Instant::now() >= d)
        || client_closed(stream)
}

/// True when the client has closed its side (or the connection broke).
/// Anything it sent is read and ignored.
fn client_closed(stream: &mut UnixStream) -> bool {
    let mut pfd = libc::pollfd {
        fd: stream.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd, no timeout.
    let n = unsafe { libc::poll(&mut pfd, 1, 0) };
    if n <= 0 {
        return false;
    }
    if pfd.revents & (libc::POLLHUP | libc::POLLERR) != 0 {
        return true;
    }
    let mut scratch = [0u8; 256];
    // Readable: the read does not block.
    !matches!(stream.read(&mut scratch), Ok(n) if n > 0)
}

/// `trace --live`: each matching frame traced through the current
/// pipeline, written as text, until the count, the duration or the client
/// ends it.
fn trace(
    tap: &Tap,
    rx: &Receiver<Record>,
    mut stream: UnixStream,
    first: &[u8],
    deadline: Option<Instant>,
    snap: &SharedSnapshot,
    clock: Clock,
) -> io::Result<()> {
    stream.write_all(first)?;
    let mut n = 0u64;
    loop {
        match rx.recv_timeout(TICK) {
            Ok(r) => {
                n += 1;
                let current = snap.lock().unwrap_or_else(|e| e.into_inner()).clone();
                let port = &tap.ports[r.iface as usize];
                let text = match current
                    .as_deref()
                    .and_then(|s| Some((s, port_no(s, port)?)))
                {
                    Some((s, no)) => crate::trace::run(s, no, &r.data, clock.now_ms()).text(port),
                    None => format!("in_port {port}: the port is gone\n"),
                };
                stream.write_all(format!("packet {n}\n{text}\n").as_bytes())?;
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        if finished(tap, rx, deadline, &mut stream) {
            break;
        }
    }
    tap.stop();
    let _ = stream.shutdown(std::net::Shutdown::Write);
    Ok(())
}

fn port_no(snap: &crate::datapath::Snapshot, name: &str) -> Option<pipeline::PortNo> {
    snap.ports
        .iter()
        .flatten()
        .find(|p| p.name == name)
        .map(|p| p.port_no)
}

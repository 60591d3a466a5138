//! A TCP bulk transfer between two hosts, checked byte for byte.
//!
//! The server listens inside the receiving namespace, the client connects
//! from the sending namespace and writes a deterministic pseudo-random
//! stream; the server compares every byte with the stream it computes
//! itself. Every wait is bounded: connecting, a stall with no progress, and
//! the whole transfer, so a broken switch fails the test in bounded time.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::pattern;
use super::poll_readable;
use crate::host::Host;
use crate::netns::{join, spawn_in_netns};

/// Longest wait for the connection to be set up.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest time without any progress before a side gives up.
pub const STALL_TIMEOUT: Duration = Duration::from_secs(5);

const CHUNK: usize = 256 * 1024;

/// The outcome of [`tcp_transfer`], seen from both ends.
#[derive(Debug, Clone)]
pub struct TcpReport {
    pub from: Ipv4Addr,
    pub to: Ipv4Addr,
    /// Bytes the client meant to send.
    pub expected: u64,
    /// Bytes the client handed to its socket.
    pub sent: u64,
    /// Bytes the server read.
    pub received: u64,
    /// Stream offset of the first byte that differed from what was sent.
    pub first_mismatch: Option<u64>,
    pub elapsed: Duration,
    pub client_error: Option<String>,
    pub server_error: Option<String>,
}

impl TcpReport {
    /// All bytes arrived, all equal to what was sent, no error on either end.
    pub fn ok(&self) -> bool {
        self.client_error.is_none()
            && self.server_error.is_none()
            && self.sent == self.expected
            && self.received == self.expected
            && self.first_mismatch.is_none()
    }
}

impl fmt::Display for TcpReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        write!(
            f,
            "TCP {} -> {}: sent {} of {} bytes, received {}, {:.1} s ({:.0} MB/s)",
            self.from,
            self.to,
            self.sent,
            self.expected,
            self.received,
            secs,
            self.received as f64 / secs / 1e6
        )?;
        if let Some(m) = self.first_mismatch {
            write!(f, "; DATA CORRUPTED from byte {m} on")?;
        }
        if let Some(e) = &self.client_error {
            write!(f, "; client error: {e}")?;
        }
        if let Some(e) = &self.server_error {
            write!(f, "; server error: {e}")?;
        }
        Ok(())
    }
}

/// Time allowed for a whole transfer of `bytes`: 15 s plus 4 MB/s.
pub fn time_limit(bytes: u64) -> Duration {
    Duration::from_secs(15) + Duration::from_millis(bytes / 4_000)
}

/// Sends `bytes` bytes over TCP from `from` to `to` and reports what the
/// far end received and whether every byte matched.
pub fn tcp_transfer(from: &Host, to: &Host, bytes: u64) -> TcpReport {
    let start = Instant::now();
    let deadline = start + time_limit(bytes);
    let seed = crate::frames::new_token();
    let (from_ip, to_ip) = (from.ip(), to.ip());
    let (port_tx, port_rx) = mpsc::channel();
    let server = spawn_in_netns(to.ns(), move || {
        server_side(to_ip, seed, bytes, port_tx, deadline)
    });
    let port = port_rx.recv_timeout(Duration::from_secs(5));
    let mut report = TcpReport {
        from: from_ip,
        to: to_ip,
        expected: bytes,
        sent: 0,
        received: 0,
        first_mismatch: None,
        elapsed: Duration::ZERO,
        client_error: None,
        server_error: None,
    };
    match port {
        Ok(port) => {
            let addr = SocketAddr::from((to_ip, port));
            let client =
                spawn_in_netns(from.ns(), move || client_side(addr, seed, bytes, deadline));
            let (sent, err) = match join(client) {
                Ok(r) => r,
                Err(e) => (0, Some(e.to_string())),
            };
            report.sent = sent;
            report.client_error = err;
        }
        Err(_) => report.client_error = Some("server never reported its port".into()),
    }
    match join(server) {
        Ok(s) => {
            report.received = s.received;
            report.first_mismatch = s.first_mismatch;
            report.server_error = s.error;
        }
        Err(e) => report.server_error = Some(e.to_string()),
    }
    report.elapsed = start.elapsed();
    report
}

struct ServerResult {
    received: u64,
    first_mismatch: Option<u64>,
    error: Option<String>,
}

fn server_side(
    ip: Ipv4Addr,
    seed: u64,
    expected: u64,
    port_tx: mpsc::Sender<u16>,
    deadline: Instant,
) -> ServerResult {
    let mut r = ServerResult {
        received: 0,
        first_mismatch: None,
        error: None,
    };
    if let Err(e) = serve(ip, seed, expected, port_tx, deadline, &mut r) {
        r.error = Some(e.to_string());
    }
    r
}

fn serve(
    ip: Ipv4Addr,
    seed: u64,
    expected: u64,
    port_tx: mpsc::Sender<u16>,
    deadline: Instant,
    r: &mut ServerResult,
) -> io::Result<()> {
    let listener = TcpListener::bind((ip, 0))?;
    let _ = port_tx.send(listener.local_addr()?.port());
    // Leave the client time to fail its own connect first, so its error
    // (the more telling one) is the one reported.
    if !poll_readable(
        listener.as_raw_fd(),
        CONNECT_TIMEOUT + Duration::from_secs(1),
    )? {
        return Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "no connection arrived",
        ));
    }
    let (mut stream, _) = listener.accept()?;
    stream.set_read_timeout(Some(STALL_TIMEOUT))?;
    let mut buf = vec![0u8; CHUNK];
    loop {
        if Instant::now() > deadline {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "transfer not finished within its time limit after {} bytes",
                    r.received
                ),
            ));
        }
        let n = match stream.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("no data for {STALL_TIMEOUT:?} after {} bytes", r.received),
                ))
            }
            Err(e) => return Err(e),
        };
        if r.first_mismatch.is_none() {
            if let Some(i) = pattern::first_mismatch(seed, r.received, &buf[..n]) {
                r.first_mismatch = Some(r.received + i as u64);
            }
        }
        r.received += n as u64;
        if r.received > expected {
            return Err(io::Error::other(format!(
                "received {} bytes, more than the {expected} sent",
                r.received
            )));
        }
    }
}

fn client_side(
    addr: SocketAddr,
    seed: u64,
    bytes: u64,
    deadline: Instant,
) -> (u64, Option<String>) {
    let mut sent = 0u64;
    let res = (|| -> io::Result<()> {
        let mut s = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT)
            .map_err(|e| io::Error::new(e.kind(), format!("connect to {addr}: {e}")))?;
        s.set_write_timeout(Some(STALL_TIMEOUT))?;
        s.set_read_timeout(Some(STALL_TIMEOUT))?;
        let mut buf = vec![0u8; CHUNK];
        while sent < bytes {
            if Instant::now() > deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "transfer not finished within its time limit",
                ));
            }
            let n = (bytes - sent).min(CHUNK as u64) as usize;
            pattern::fill(seed, sent, &mut buf[..n]);
            s.write_all(&buf[..n])
                .map_err(|e| io::Error::new(e.kind(), format!("write after {sent} bytes: {e}")))?;
            sent += n as u64;
        }
        s.shutdown(Shutdown::Write)?;
        // Wait for the server to close its end, so the transfer is timed
        // end to end. Its verdict comes from the server thread.
        let mut tail = [0u8; 64];
        let _ = s.read(&mut tail);
        Ok(())
    })();
    (sent, res.err().map(|e| e.to_string()))
}

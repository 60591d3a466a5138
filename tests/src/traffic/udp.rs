//! UDP datagrams between two hosts, each one checked for content.
//!
//! Datagram `seq` carries: the transfer's seed (8 bytes), `seq` (4), the
//! payload length (4), then `len` bytes of pattern stream `seed ^ seq`.
//! Sizes vary from 16 to 1472 bytes (the most that fits a 1500-byte MTU
//! unfragmented). The sender keeps at most [`WINDOW`] datagrams ahead of
//! the receiver, so a healthy path loses nothing to socket buffers and the
//! test can demand every datagram.

use std::fmt;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use super::pattern;
use crate::host::Host;
use crate::netns::{join, spawn_in_netns};

/// Most datagrams in flight at once.
pub const WINDOW: u32 = 32;
/// How long the receiver keeps listening after the sender is done.
pub const LINGER: Duration = Duration::from_secs(1);
/// How long the sender waits for the receiver to catch up before sending
/// on regardless (the datagrams in flight are then presumed lost).
const CATCH_UP: Duration = Duration::from_millis(500);

const HEADER: usize = 16;
const MAX_DATAGRAM: usize = 1472;

#[derive(Debug, Clone)]
pub struct UdpReport {
    pub from: Ipv4Addr,
    pub to: Ipv4Addr,
    pub sent: u32,
    /// Distinct datagrams that arrived intact.
    pub received: u32,
    /// Datagrams that arrived with wrong content, length or source.
    pub corrupt: u32,
    pub duplicates: u32,
    pub error: Option<String>,
}

impl UdpReport {
    /// Every one of `n` datagrams arrived once, intact.
    pub fn ok(&self, n: u32) -> bool {
        self.error.is_none()
            && self.sent == n
            && self.received == n
            && self.corrupt == 0
            && self.duplicates == 0
    }
}

impl fmt::Display for UdpReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "UDP {} -> {}: sent {}, received intact {}, corrupt {}, duplicates {}",
            self.from, self.to, self.sent, self.received, self.corrupt, self.duplicates
        )?;
        if let Some(e) = &self.error {
            write!(f, "; error: {e}")?;
        }
        Ok(())
    }
}

/// Size of datagram `seq` (16..=1472 bytes).
fn size_of(seq: u32) -> usize {
    HEADER + (seq as usize * 337) % (MAX_DATAGRAM - HEADER + 1)
}

fn build(seed: u64, seq: u32, buf: &mut Vec<u8>) {
    let len = size_of(seq) - HEADER;
    buf.clear();
    buf.extend_from_slice(&seed.to_be_bytes());
    buf.extend_from_slice(&seq.to_be_bytes());
    buf.extend_from_slice(&(len as u32).to_be_bytes());
    buf.resize(HEADER + len, 0);
    pattern::fill(seed ^ u64::from(seq), 0, &mut buf[HEADER..]);
}

/// The sequence number of an intact datagram of transfer `seed`.
fn check(seed: u64, n: u32, d: &[u8]) -> Option<u32> {
    let got_seed = u64::from_be_bytes(d.get(0..8)?.try_into().ok()?);
    let seq = u32::from_be_bytes(d.get(8..12)?.try_into().ok()?);
    let len = u32::from_be_bytes(d.get(12..16)?.try_into().ok()?) as usize;
    let ok = got_seed == seed
        && seq < n
        && d.len() == HEADER + len
        && d.len() == size_of(seq)
        && pattern::first_mismatch(seed ^ u64::from(seq), 0, &d[HEADER..]).is_none();
    ok.then_some(seq)
}

/// Sends `n` datagrams from `from` to `to` and reports what arrived.
pub fn udp_exchange(from: &Host, to: &Host, n: u32) -> UdpReport {
    let seed = crate::frames::new_token();
    let (from_ip, to_ip) = (from.ip(), to.ip());
    let deadline = Instant::now() + Duration::from_secs(10) + Duration::from_millis(u64::from(n));
    let progress = Arc::new(AtomicU32::new(0));
    let sender_done = Arc::new(AtomicBool::new(false));
    let (port_tx, port_rx) = mpsc::channel();
    let receiver = {
        let (progress, done) = (progress.clone(), sender_done.clone());
        spawn_in_netns(to.ns(), move || {
            receive(to_ip, from_ip, seed, n, port_tx, &progress, &done, deadline)
        })
    };
    let mut report = UdpReport {
        from: from_ip,
        to: to_ip,
        sent: 0,
        received: 0,
        corrupt: 0,
        duplicates: 0,
        error: None,
    };
    match port_rx.recv_timeout(Duration::from_secs(5)) {
        Ok(port) => {
            let dst = SocketAddr::from((to_ip, port));
            let progress = progress.clone();
            let sender = spawn_in_netns(from.ns(), move || {
                send(from_ip, dst, seed, n, &progress, deadline)
            });
            match join(sender) {
                Ok((sent, err)) => {
                    report.sent = sent;
                    report.error = err.map(|e| format!("sender: {e}"));
                }
                Err(e) => report.error = Some(format!("sender: {e}")),
            }
        }
        Err(_) => report.error = Some("receiver never reported its port".into()),
    }
    sender_done.store(true, Ordering::Release);
    match join(receiver) {
        Ok(Ok(r)) => {
            report.received = r.0;
            report.corrupt = r.1;
            report.duplicates = r.2;
        }
        Ok(Err(e)) | Err(e) => {
            let prev = report
                .error
                .take()
                .map(|p| format!("{p}; "))
                .unwrap_or_default();
            report.error = Some(format!("{prev}receiver: {e}"));
        }
    }
    report
}

fn send(
    ip: Ipv4Addr,
    dst: SocketAddr,
    seed: u64,
    n: u32,
    progress: &AtomicU32,
    deadline: Instant,
) -> (u32, Option<String>) {
    let sock = match UdpSocket::bind((ip, 0)) {
        Ok(s) => s,
        Err(e) => return (0, Some(format!("bind {ip}: {e}"))),
    };
    let mut buf = Vec::with_capacity(MAX_DATAGRAM);
    let mut sent = 0;
    while sent < n {
        if Instant::now() > deadline {
            return (sent, Some("time limit reached".into()));
        }
        // Flow control: wait (bounded) for the receiver to catch up.
        let wait_start = Instant::now();
        while sent.saturating_sub(progress.load(Ordering::Acquire)) >= WINDOW
            && wait_start.elapsed() < CATCH_UP
        {
            std::thread::sleep(Duration::from_micros(200));
        }
        build(seed, sent, &mut buf);
        match sock.send_to(&buf, dst) {
            Ok(_) => sent += 1,
            Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(e) => return (sent, Some(format!("send datagram {sent}: {e}"))),
        }
    }
    (sent, None)
}

#[allow(clippy::too_many_arguments)]
fn receive(
    ip: Ipv4Addr,
    from: Ipv4Addr,
    seed: u64,
    n: u32,
    port_tx: mpsc::Sender<u16>,
    progress: &AtomicU32,
    sender_done: &AtomicBool,
    deadline: Instant,
) -> io::Result<(u32, u32, u32)> {
    let sock = UdpSocket::bind((ip, 0))?;
    set_rcvbuf(&sock, 4 << 20);
    sock.set_read_timeout(Some(Duration::from_millis(100)))?;
    let _ = port_tx.send(sock.local_addr()?.port());
    let mut seen = vec![false; n as usize];
    let (mut received, mut corrupt, mut dups) = (0u32, 0u32, 0u32);
    let mut buf = vec![0u8; 65536];
    let mut idle_since: Option<Instant> = None;
    while received < n && Instant::now() < deadline {
        match sock.recv_from(&mut buf) {
            Ok((len, src)) => {
                let from_ok = matches!(src, SocketAddr::V4(a) if *a.ip() == from);
                match check(seed, n, &buf[..len]).filter(|_| from_ok) {
                    Some(seq) if seen[seq as usize] => dups += 1,
                    Some(seq) => {
                        seen[seq as usize] = true;
                        received += 1;
                    }
                    None => corrupt += 1,
                }
                progress.store(received + corrupt, Ordering::Release);
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                if sender_done.load(Ordering::Acquire) {
                    let since = *idle_since.get_or_insert_with(Instant::now);
                    if since.elapsed() >= LINGER {
                        break;
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok((received, corrupt, dups))
}

/// Raises a socket's receive buffer (SO_RCVBUFFORCE, as root); best effort.
fn set_rcvbuf(sock: &UdpSocket, bytes: libc::c_int) {
    // SAFETY: the fd is a live socket owned by `sock`; the option value is
    // a c_int whose address and size are passed correctly.
    unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            (&bytes as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datagrams_check_out() {
        let mut buf = Vec::new();
        for seq in [0, 1, 5, 99] {
            build(9, seq, &mut buf);
            assert!(buf.len() >= HEADER && buf.len() <= MAX_DATAGRAM);
            assert_eq!(check(9, 100, &buf), Some(seq));
            assert_eq!(check(8, 100, &buf), None, "wrong seed accepted");
            assert_eq!(check(9, seq, &buf), None, "seq beyond n accepted");
            if buf.len() > HEADER {
                let mut bad = buf.clone();
                let last = bad.len() - 1;
                bad[last] ^= 0x80;
                assert_eq!(check(9, 100, &bad), None, "corrupt payload accepted");
                assert_eq!(check(9, 100, &buf[..last]), None, "short datagram accepted");
            }
        }
        assert_eq!((0..5000).map(size_of).max(), Some(MAX_DATAGRAM));
    }
}

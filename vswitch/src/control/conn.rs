//! One control connection: its socket, its unread input and its unsent
//! output, and the limits on each.
//!
//! A `Conn` is owned by the control thread alone and lives from `accept`
//! until [`Conn::should_close`] says so (or the daemon exits). The socket is
//! non-blocking and registered edge-triggered, so every read drains it and
//! nothing here ever waits:
//! - input is appended to `inbuf`; [`Conn::next_request`] hands out one
//!   complete line at a time, so the control loop can serve its clients in
//!   turn; a line longer than [`MAX_REQUEST`] is refused, not buffered;
//! - responses are appended to `outbuf` and written as far as the socket
//!   takes them, the rest when it becomes writable again. A client that
//!   does not read its replies only fills its own buffer, and is closed once
//!   that holds more than [`MAX_OUTPUT`];
//! - a client that has sent nothing for [`IDLE_TIMEOUT`] is closed.

use mio::net::UnixStream;
use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

/// Longest request line accepted; a longer one is refused with an error.
pub const MAX_REQUEST: usize = 256 * 1024;
/// Unread input kept per client (several pipelined requests); beyond it the
/// client is closed.
pub const MAX_INPUT: usize = 4 * MAX_REQUEST;
/// Unsent output kept per client; beyond it the client is closed.
pub const MAX_OUTPUT: usize = 1 << 20;
/// A client that sends nothing for this long is closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Why a connection must be closed now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Close {
    /// The client closed its side and every reply was sent.
    Done,
    /// Reading or writing failed (the client went away).
    Broken,
    /// More than [`MAX_OUTPUT`] unsent: the client does not read.
    NotReading,
    /// More than [`MAX_INPUT`] of requests not yet served.
    TooMuchInput,
    /// Nothing sent for [`IDLE_TIMEOUT`].
    Idle,
}

impl Close {
    /// Whether the daemon should log it (the client misbehaved).
    pub fn is_abuse(self) -> bool {
        !matches!(self, Close::Done | Close::Broken)
    }
}

/// A request line too long to accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooLong;

pub struct Conn {
    stream: UnixStream,
    inbuf: Vec<u8>,
    /// `inbuf[..scanned]` holds no newline.
    scanned: usize,
    /// Where the first request line ends in `inbuf`, if it is complete.
    newline: Option<usize>,
    outbuf: Vec<u8>,
    /// `outbuf[..sent]` is already written.
    sent: usize,
    last_input: Instant,
    /// When a request of this client was last served (`None`: never).
    last_served: Option<Instant>,
    /// No more input will be read or served: the client closed its side,
    /// or sent a request too long to accept.
    input_done: bool,
    broken: bool,
}

impl Conn {
    pub fn new(stream: UnixStream, now: Instant) -> Conn {
        Conn {
            stream,
            inbuf: Vec::new(),
            scanned: 0,
            newline: None,
            outbuf: Vec::new(),
            sent: 0,
            last_input: now,
            last_served: None,
            input_done: false,
            broken: false,
        }
    }

    /// The connection as a blocking standard socket, and the output not
    /// yet written to it (for a thread that takes the client over).
    pub fn into_parts(self) -> (std::os::unix::net::UnixStream, Vec<u8>) {
        use std::os::fd::{FromRawFd, IntoRawFd};
        let unsent = self.outbuf[self.sent..].to_vec();
        let fd = self.stream.into_raw_fd();
        // SAFETY: `fd` was just released by the mio socket, so the new
        // socket is its only owner.
        let stream = unsafe { std::os::unix::net::UnixStream::from_raw_fd(fd) };
        (stream, unsent)
    }

    pub fn stream_mut(&mut self) -> &mut UnixStream {
        &mut self.stream
    }

    /// Reads everything the socket holds (edge-triggered: it must be
    /// drained), and stops early only at [`MAX_INPUT`].
    pub fn read_available(&mut self, now: Instant) {
        let mut buf = [0u8; 16384];
        while !self.input_done && !self.broken && self.inbuf.len() <= MAX_INPUT {
            match self.stream.read(&mut buf) {
                Ok(0) => self.input_done = true,
                Ok(n) => {
                    self.inbuf.extend_from_slice(&buf[..n]);
                    self.last_input = now;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => self.broken = true,
            }
        }
        self.rescan();
    }

    /// Looks for the end of the first line in the input not yet scanned.
    fn rescan(&mut self) {
        if self.newline.is_some() {
            return;
        }
        let end = self.inbuf.len().min(MAX_REQUEST + 1);
        let from = self.scanned.min(end);
        match self.inbuf[from..end].iter().position(|&b| b == b'\n') {
            Some(i) => self.newline = Some(from + i),
            None => self.scanned = end,
        }
    }

    /// The next complete request line (with its newline), if any; or
    /// `Err(TooLong)` once for a line longer than [`MAX_REQUEST`], after
    /// which the connection serves nothing more and closes when its
    /// replies are sent.
    pub fn next_request(&mut self) -> Option<Result<Vec<u8>, TooLong>> {
        if self.broken {
            return None;
        }
        if let Some(pos) = self.newline.take() {
            let line: Vec<u8> = self.inbuf.drain(..=pos).collect();
            self.scanned = 0;
            self.rescan();
            return Some(Ok(line));
        }
        if self.inbuf.len() > MAX_REQUEST {
            self.inbuf = Vec::new();
            self.scanned = 0;
            self.input_done = true;
            return Some(Err(TooLong));
        }
        if self.input_done {
            // A last line without its newline is not a request.
            self.inbuf = Vec::new();
            self.scanned = 0;
        }
        None
    }

    /// Whether a request (or a line too long to be one) is waiting.
    pub fn has_request(&self) -> bool {
        !self.broken && (self.newline.is_some() || self.inbuf.len() > MAX_REQUEST)
    }

    /// When a request of this client was last served; `None` (never) sorts first.
    pub fn last_served(&self) -> Option<Instant> {
        self.last_served
    }

    pub fn mark_served(&mut self, now: Instant) {
        self.last_served = Some(now);
    }

    /// Queues `line` (one response, newline included) and writes what the
    /// socket takes now.
    pub fn send(&mut self, line: &[u8]) {
        if self.sent > 0 && self.sent >= self.outbuf.len() / 2 {
            self.outbuf.drain(..self.sent);
            self.sent = 0;
        }
        self.outbuf.extend_from_slice(line);
        self.flush();
    }

    /// Writes queued output until it is all sent or the socket is full.
    pub fn flush(&mut self) {
        while self.sent < self.outbuf.len() && !self.broken {
            match self.stream.write(&self.outbuf[self.sent..]) {
                Ok(0) => self.broken = true,
                Ok(n) => self.sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => self.broken = true,
            }
        }
        if self.sent == self.outbuf.len() {
            self.outbuf.clear();
            self.sent = 0;
        }
    }

    /// Bytes queued but not yet written.
    pub fn unsent(&self) -> usize {
        self.outbuf.len() - self.sent
    }

    /// Whether (and why) the connection must be closed now.
    pub fn should_close(&self, now: Instant) -> Option<Close> {
        if self.broken {
            Some(Close::Broken)
        } else if self.unsent() > MAX_OUTPUT {
            Some(Close::NotReading)
        } else if self.inbuf.len() > MAX_INPUT {
            Some(Close::TooMuchInput)
        } else if self.input_done && !self.has_request() && self.unsent() == 0 {
            Some(Close::Done)
        } else if now.duration_since(self.last_input) >= IDLE_TIMEOUT {
            Some(Close::Idle)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> (Conn, std::os::unix::net::UnixStream) {
        let (a, b) = std::os::unix::net::UnixStream::pair().expect("socketpair");
        a.set_nonblocking(true).expect("nonblocking");
        (Conn::new(UnixStream::from_std(a), Instant::now()), b)
    }

    #[test]
    fn pipelined_requests_come_out_one_line_at_a_time() {
        let (mut c, mut peer) = pair();
        peer.write_all(b"{\"a\":1}\n{\"b\":2}\n{\"c\"").unwrap();
        c.read_available(Instant::now());
        assert_eq!(c.next_request(), Some(Ok(b"{\"a\":1}\n".to_vec())));
        assert!(c.has_request());
        assert_eq!(c.next_request(), Some(Ok(b"{\"b\":2}\n".to_vec())));
        assert!(!c.has_request());
        assert_eq!(c.next_request(), None);
        peer.write_all(b":3}\n").unwrap();
        c.read_available(Instant::now());
        assert_eq!(c.next_request(), Some(Ok(b"{\"c\":3}\n".to_vec())));
    }

    #[test]
    fn a_line_longer_than_the_limit_is_refused_once_then_nothing_more() {
        let (mut c, mut peer) = pair();
        let big = vec![b'x'; MAX_REQUEST + 10];
        let writer = std::thread::spawn(move || {
            let _ = peer.write_all(&big);
            let _ = peer.write_all(b"\n{}\n");
            peer
        });
        let start = Instant::now();
        while !c.has_request() && start.elapsed() < Duration::from_secs(5) {
            c.read_available(Instant::now());
        }
        assert_eq!(c.next_request(), Some(Err(TooLong)));
        let _peer = writer.join().unwrap();
        c.read_available(Instant::now());
        assert_eq!(c.next_request(), None, "nothing is served after a refusal");
        assert_eq!(c.should_close(Instant::now()), Some(Close::Done));
    }

    #[test]
    fn a_client_that_does_not_read_never_blocks_and_is_closed_past_the_limit() {
        let (mut c, _peer) = pair();
        let reply = vec![b'y'; 64 * 1024];
        let start = Instant::now();
        while c.should_close(Instant::now()).is_none() {
            c.send(&reply);
            assert!(c.unsent() <= MAX_OUTPUT + reply.len());
        }
        assert!(start.elapsed() < Duration::from_millis(500));
        assert_eq!(c.should_close(Instant::now()), Some(Close::NotReading));
    }

    #[test]
    fn unsent_output_goes_out_when_the_client_reads() {
        let (mut c, mut peer) = pair();
        let reply = vec![b'z'; 512 * 1024];
        c.send(&reply);
        assert!(
            c.unsent() > 0,
            "a socket buffer does not take 512 KiB at once"
        );
        let reader = std::thread::spawn(move || {
            let mut got = vec![0u8; 512 * 1024];
            peer.read_exact(&mut got).map(|()| got)
        });
        let start = Instant::now();
        while c.unsent() > 0 && start.elapsed() < Duration::from_secs(5) {
            c.flush();
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(reader.join().unwrap().unwrap(), reply);
    }

    #[test]
    fn a_silent_client_is_closed_after_the_idle_timeout() {
        let (c, _peer) = pair();
        let now = Instant::now();
        assert_eq!(c.should_close(now), None);
        assert_eq!(
            c.should_close(now + IDLE_TIMEOUT + Duration::from_secs(1)),
            Some(Close::Idle)
        );
    }

    #[test]
    fn a_client_that_closes_its_side_still_gets_its_replies() {
        let (mut c, mut peer) = pair();
        peer.write_all(b"{}\n").unwrap();
        peer.shutdown(std::net::Shutdown::Write).unwrap();
        c.read_available(Instant::now());
        assert_eq!(c.next_request(), Some(Ok(b"{}\n".to_vec())));
        assert_eq!(c.should_close(Instant::now()), Some(Close::Done));
    }
}

//! The control thread: a mio loop over the Unix control socket, the signal
//! descriptor, and a once-a-second timer for MAC aging and port retries.
//!
//! Protocol (documented in the README): one JSON request per line, one JSON
//! response per line, on `RUNDIR/vswitchd.sock`.

use crate::commands::{self, Request, Response};
use crate::config::Config;
use crate::db::Db;
use crate::runtime::Runtime;
use mio::net::{UnixListener, UnixStream};
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

const LISTENER: Token = Token(0);
const SIGNALS: Token = Token(1);
const FIRST_CONN: usize = 2;
/// Largest request accepted, so a bad client cannot eat memory.
const MAX_REQUEST: usize = 1 << 20;

struct Conn {
    stream: UnixStream,
    inbuf: Vec<u8>,
    outbuf: Vec<u8>,
    closing: bool,
}

pub struct Control {
    poll: Poll,
    listener: UnixListener,
    signals: OwnedFd,
    conns: HashMap<Token, Conn>,
    next_token: usize,
    db: Db,
    cfg: Config,
    rt: Runtime,
}

impl Control {
    pub fn new(
        listener: UnixListener,
        signals: OwnedFd,
        db: Db,
        cfg: Config,
        rt: Runtime,
    ) -> io::Result<Control> {
        let poll = Poll::new()?;
        let mut c = Control {
            poll,
            listener,
            signals,
            conns: HashMap::new(),
            next_token: FIRST_CONN,
            db,
            cfg,
            rt,
        };
        c.poll
            .registry()
            .register(&mut c.listener, LISTENER, Interest::READABLE)?;
        c.poll.registry().register(
            &mut SourceFd(&c.signals.as_raw_fd()),
            SIGNALS,
            Interest::READABLE,
        )?;
        Ok(c)
    }

    /// Runs until SIGTERM or SIGINT; then closes every port.
    pub fn run(mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(64);
        let mut last_tick = Instant::now();
        loop {
            match self
                .poll
                .poll(&mut events, Some(Duration::from_millis(250)))
            {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            for ev in events.iter() {
                match ev.token() {
                    LISTENER => self.accept(),
                    SIGNALS => {
                        if let Some(sig) = read_signal(&self.signals) {
                            log::info!("received signal {sig}, shutting down");
                            self.rt.shutdown();
                            return Ok(());
                        }
                    }
                    t => self.service(t),
                }
            }
            if last_tick.elapsed() >= Duration::from_secs(1) {
                last_tick = Instant::now();
                if let Err(e) = self.rt.check_pmds() {
                    log::error!("{e}");
                    self.rt.shutdown();
                    return Err(io::Error::other(e));
                }
                self.rt.age();
                self.rt.check_devices();
                self.rt.retry_failed();
                // Container attachments whose namespace went away
                // (crate::attach): removed like any command would.
                if let Some(req) = crate::attach::vanished(&self.cfg) {
                    let resp = self.commit(&req);
                    if let Some(e) = resp.error.filter(|_| !resp.ok) {
                        log::warn!("attach: removing vanished attachments failed: {e}");
                    }
                }
            }
        }
    }

    fn accept(&mut self) {
        loop {
            match self.listener.accept() {
                Ok((mut stream, _)) => {
                    let token = Token(self.next_token);
                    self.next_token += 1;
                    if let Err(e) =
                        self.poll
                            .registry()
                            .register(&mut stream, token, Interest::READABLE)
                    {
                        log::warn!("control: cannot register connection: {e}");
                        continue;
                    }
                    self.conns.insert(
                        token,
                        Conn {
                            stream,
                            inbuf: Vec::new(),
                            outbuf: Vec::new(),
                            closing: false,
                        },
                    );
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    log::warn!("control: accept failed: {e}");
                    return;
                }
            }
        }
    }

    fn service(&mut self, token: Token) {
        let Some(mut conn) = self.conns.remove(&token) else {
            return;
        };
        let mut buf = [0u8; 16384];
        loop {
            match conn.stream.read(&mut buf) {
                Ok(0) => {
                    conn.closing = true;
                    break;
                }
                Ok(n) => {
                    conn.inbuf.extend_from_slice(&buf[..n]);
                    if conn.inbuf.len() > MAX_REQUEST {
                        conn.closing = true;
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    conn.closing = true;
                    break;
                }
            }
        }
        while let Some(pos) = conn.inbuf.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = conn.inbuf.drain(..=pos).collect();
            let resp = self.handle(&line);
            let mut out = serde_json::to_vec(&resp).unwrap_or_else(|_| b"{}".to_vec());
            out.push(b'\n');
            conn.outbuf.extend_from_slice(&out);
        }
        // Responses are small and the socket buffer takes them whole; a
        // client that does not read gets a second, then is dropped, so it
        // cannot stall the control thread.
        let deadline = Instant::now() + Duration::from_secs(1);
        while !conn.outbuf.is_empty() {
            match conn.stream.write(&conn.outbuf) {
                Ok(n) => {
                    conn.outbuf.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if Instant::now() > deadline {
                        log::warn!("control: a client is not reading its responses; closing it");
                        conn.closing = true;
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(_) => {
                    conn.closing = true;
                    break;
                }
            }
        }
        if conn.closing {
            let _ = self.poll.registry().deregister(&mut conn.stream);
        } else {
            self.conns.insert(token, conn);
        }
    }

    fn handle(&mut self, line: &[u8]) -> Response {
        let req: Request = match serde_json::from_slice(line) {
            Ok(r) => r,
            Err(e) => {
                return Response {
                    ok: false,
                    error: Some(format!("malformed request: {e}")),
                    exit_code: 1,
                    results: Vec::new(),
                }
            }
        };
        self.commit(&req)
    }

    /// Runs `req` as one transaction: store the new configuration, apply
    /// it, then run the effects.
    fn commit(&mut self, req: &Request) -> Response {
        let mut outcome = commands::execute(req, &self.cfg, &self.rt);
        if let Some(new) = outcome.new_config.take() {
            if let Err(e) = self.db.store(&new) {
                outcome.abort();
                return Response {
                    ok: false,
                    error: Some(format!(
                        "could not save the configuration to {}: {e}; nothing was changed",
                        self.db.path().display()
                    )),
                    exit_code: 1,
                    results: Vec::new(),
                };
            }
            self.rt.apply(&new);
            self.cfg = new;
        }
        if outcome.response.ok {
            outcome.apply_effects(&self.rt);
        }
        outcome.response
    }
}

/// Reads one signal from a signalfd; returns its number.
fn read_signal(fd: &OwnedFd) -> Option<u32> {
    // SAFETY: signalfd_siginfo is plain old data; all-zero is valid.
    let mut info: libc::signalfd_siginfo = unsafe { std::mem::zeroed() };
    let size = std::mem::size_of::<libc::signalfd_siginfo>();
    // SAFETY: reads at most `size` bytes into `info`, which is that large.
    let n = unsafe {
        libc::read(
            fd.as_raw_fd(),
            (&mut info as *mut libc::signalfd_siginfo).cast(),
            size,
        )
    };
    (n as usize == size).then_some(info.ssi_signo)
}

//! The control thread: a mio loop over the Unix control socket, the signal
//! descriptor, and a once-a-second timer for MAC aging and port retries.
//!
//! Protocol (documented in the README): one JSON request per line, one JSON
//! response per line, on `RUNDIR/vswitchd.sock`.
//!
//! No client may hold up another. Sockets are non-blocking and nothing here
//! waits on a client ([`conn`]); the loop serves one request per waiting
//! client per round, least recently served first, so a client that pipelines many requests
//! takes its turn like the others; a request is bounded in bytes and in commands, and one whose
//! deadline has passed is refused before it runs ([`request`]). At most
//! [`MAX_CONNS`] clients are connected; the next is told so and closed.

mod capture;
mod conn;
mod request;

use crate::commands::{self, Request, Response};
use crate::config::Config;
use crate::db::Db;
use crate::runtime::Runtime;
use conn::Conn;
use mio::net::{UnixListener, UnixStream};
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use std::collections::HashMap;
use std::io::{self, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

const LISTENER: Token = Token(0);
const SIGNALS: Token = Token(1);
/// The cluster agent: its state changed (crate::cluster).
const CLUSTER: Token = Token(usize::MAX);
const FIRST_CONN: usize = 2;
/// Most clients connected at once, well below the usual 1,024 descriptors.
pub const MAX_CONNS: usize = 256;
/// How long the loop sleeps when no client has a request waiting.
const IDLE_POLL: Duration = Duration::from_millis(250);

pub struct Control {
    poll: Poll,
    listener: UnixListener,
    signals: OwnedFd,
    conns: HashMap<Token, Conn>,
    next_token: usize,
    db: Db,
    cfg: Config,
    rt: Runtime,
    /// The log file stderr goes to (a detached daemon), reopened on SIGHUP.
    log_file: Option<std::path::PathBuf>,
}

impl Control {
    pub fn new(
        listener: UnixListener,
        signals: OwnedFd,
        db: Db,
        cfg: Config,
        mut rt: Runtime,
    ) -> io::Result<Control> {
        let poll = Poll::new()?;
        rt.cluster.set_waker(std::sync::Arc::new(mio::Waker::new(
            poll.registry(),
            CLUSTER,
        )?));
        let mut c = Control {
            poll,
            listener,
            signals,
            conns: HashMap::new(),
            next_token: FIRST_CONN,
            db,
            cfg,
            rt,
            log_file: None,
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

    /// Where stderr goes, so that SIGHUP can reopen it.
    pub fn set_log_file(&mut self, path: std::path::PathBuf) {
        self.log_file = Some(path);
    }

    /// Reopens the log file (SIGHUP, after logrotate); forwarding goes on.
    fn reopen_log(&self) {
        if let Some(p) = &self.log_file {
            match crate::daemon::reopen_log(p) {
                Ok(()) => log::info!("log file {} reopened", p.display()),
                Err(e) => log::warn!("cannot reopen the log file {}: {e}", p.display()),
            }
        }
    }

    /// Runs until SIGTERM or SIGINT (SIGHUP reopens the log file); then
    /// closes every port.
    pub fn run(mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(64);
        let mut last_tick = Instant::now();
        loop {
            let wait = if self.any_request_waiting() {
                Duration::ZERO
            } else {
                IDLE_POLL
            };
            match self.poll.poll(&mut events, Some(wait)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            for ev in events.iter() {
                match ev.token() {
                    LISTENER => self.accept(),
                    SIGNALS => {
                        let sig = read_signal(&self.signals);
                        if sig == Some(libc::SIGHUP as u32) {
                            self.reopen_log();
                            continue;
                        }
                        if let Some(sig) = sig {
                            log::info!("received signal {sig}, shutting down");
                            self.rt.shutdown();
                            return Ok(());
                        }
                    }
                    // Applied below, by cluster_tick.
                    CLUSTER => {}
                    t => self.on_ready(t),
                }
            }
            self.serve_round();
            self.rt.reap_captures();
            self.rt.cluster_tick(&self.cfg);
            self.rt.rstp_tick();
            if last_tick.elapsed() >= Duration::from_secs(1) {
                last_tick = Instant::now();
                if let Err(e) = self.rt.check_pmds() {
                    log::error!("{e}");
                    self.rt.shutdown();
                    return Err(io::Error::other(e));
                }
                self.close_expired();
                self.rt.age();
                self.rt.check_devices();
                self.rt.retry_failed();
                // Container attachments whose namespace went away
                // (crate::attach): removed like any command would.
                for req in crate::attach::vanished(&self.cfg) {
                    let resp = self.commit(&req);
                    if let Some(e) = resp.error.filter(|_| !resp.ok) {
                        log::warn!("attach: following vanished attachments failed: {e}");
                    }
                }
            }
        }
    }

    fn accept(&mut self) {
        loop {
            match self.listener.accept() {
                Ok((stream, _)) if self.conns.len() >= MAX_CONNS => refuse(stream),
                Ok((mut stream, _)) => {
                    let token = Token(self.next_token);
                    self.next_token += 1;
                    if let Err(e) = self.poll.registry().register(
                        &mut stream,
                        token,
                        Interest::READABLE | Interest::WRITABLE,
                    ) {
                        log::warn!("control: cannot register connection: {e}");
                        continue;
                    }
                    self.conns.insert(token, Conn::new(stream, Instant::now()));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    log::warn!("control: accept failed: {e}");
                    return;
                }
            }
        }
    }

    /// A client's socket became readable or writable: take its input,
    /// send what it will take. Requests are served in [`Self::serve_round`].
    fn on_ready(&mut self, token: Token) {
        if let Some(conn) = self.conns.get_mut(&token) {
            conn.read_available(Instant::now());
            conn.flush();
        }
        self.close_if_done(token);
    }

    fn any_request_waiting(&self) -> bool {
        self.conns.values().any(Conn::has_request)
    }

    /// Serves one request of each client that has one waiting, the client
    /// served longest ago (a new client) first; so a client that pipelines
    /// many requests takes its turn like the others.
    fn serve_round(&mut self) {
        let mut waiting: Vec<(Option<Instant>, Token)> = self
            .conns
            .iter()
            .filter(|(_, c)| c.has_request())
            .map(|(t, c)| (c.last_served(), *t))
            .collect();
        waiting.sort();
        for (_, token) in waiting {
            let Some(next) = self.conns.get_mut(&token).and_then(Conn::next_request) else {
                continue;
            };
            let resp = match next {
                Ok(line) => match capture::parse(&line) {
                    Some(req) => match self.start_capture(token, req) {
                        // The connection is the capture thread's now.
                        Ok(()) => continue,
                        Err(resp) => resp,
                    },
                    None => self.handle(&line),
                },
                Err(conn::TooLong) => request::too_long(),
            };
            if let Some(conn) = self.conns.get_mut(&token) {
                conn.mark_served(Instant::now());
                conn.send(&response_line(&resp));
            }
            self.close_if_done(token);
        }
    }

    /// Closes the clients that went silent too long.
    fn close_expired(&mut self) {
        let tokens: Vec<Token> = self.conns.keys().copied().collect();
        for token in tokens {
            self.close_if_done(token);
        }
    }

    fn close_if_done(&mut self, token: Token) {
        let Some(why) = self
            .conns
            .get(&token)
            .and_then(|c| c.should_close(Instant::now()))
        else {
            return;
        };
        if let Some(mut conn) = self.conns.remove(&token) {
            if why.is_abuse() {
                log::warn!(
                    "control: closing a client ({why:?}, {} bytes unsent)",
                    conn.unsent()
                );
            }
            let _ = self.poll.registry().deregister(conn.stream_mut());
        }
    }

    /// Starts a capture and hands the client's connection to its thread.
    fn start_capture(
        &mut self,
        token: Token,
        req: Result<capture::CaptureRequest, Response>,
    ) -> Result<(), Response> {
        let mut req = req?;
        let (filter, duration) = capture::check(&mut req, &self.cfg, |p| self.rt.has_port(p))?;
        let tracing = req.trace.is_some();
        let Some(mut conn) = self.conns.remove(&token) else {
            return Ok(());
        };
        let _ = self.poll.registry().deregister(conn.stream_mut());
        let (stream, mut first) = conn.into_parts();
        let (tap, rx) = self.rt.add_capture(req.ports, filter);
        first.extend_from_slice(&response_line(&capture::accepted(&tap)));
        log::info!("capture {}: started on {}", tap.id, tap.ports.join(","));
        let live = tracing.then(|| self.rt.shared_snapshot());
        if let Err(e) =
            crate::capture::session::spawn(tap.clone(), rx, stream, first, duration, live)
        {
            log::warn!("capture {}: cannot start its thread: {e}", tap.id);
            tap.stop();
        }
        Ok(())
    }

    fn handle(&mut self, line: &[u8]) -> Response {
        match request::admit(line, request::now_unix_ms()) {
            Ok(req) => self.commit(&req),
            Err(resp) => resp,
        }
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
                    warnings: Vec::new(),
                };
            }
            self.rt.apply(&new);
            // A port another switch serves is refused, and the whole
            // transaction undone; one opened another way or not there
            // yet is kept, with a warning.
            let (busy, warnings) = port_outcomes(&self.cfg, &new, &self.rt);
            if let Some(error) = busy {
                let old = self.cfg.clone();
                if let Err(e) = self.db.store(&old) {
                    log::error!("cannot restore the configuration after a refused port: {e}");
                }
                self.rt.apply(&old);
                outcome.abort();
                return Response {
                    ok: false,
                    error: Some(format!("{error}; nothing was changed")),
                    exit_code: 1,
                    results: Vec::new(),
                    warnings: Vec::new(),
                };
            }
            outcome.response.warnings = warnings;
            self.cfg = new;
        }
        if outcome.response.ok {
            outcome.apply_effects(&self.rt);
        }
        outcome.response
    }
}

/// The ports `new` adds to `old`, as the runtime opened them: the error
/// of one that another switch serves, and warnings for one that fell back
/// to another backend or whose device is missing.
fn port_outcomes(old: &Config, new: &Config, rt: &Runtime) -> (Option<String>, Vec<String>) {
    let ports = |c: &Config| -> Vec<String> {
        c.bridges
            .values()
            .flat_map(|b| b.ports.keys().cloned())
            .chain(c.uplink.iter().map(|u| u.port.clone()))
            .collect()
    };
    let before = ports(old);
    let mut warnings = Vec::new();
    for p in ports(new).into_iter().filter(|p| !before.contains(p)) {
        let v = rt.port_view(&p);
        if v.busy {
            let e = v.error.unwrap_or_default();
            return (
                Some(format!(
                    "cannot add port {p}: {e} (another switch serves this device)"
                )),
                Vec::new(),
            );
        }
        if let Some(reason) = v.status.as_ref().and_then(|s| s.fallback_reason.as_ref()) {
            let backend = v.status.as_ref().map_or("", |s| s.backend.as_str());
            warnings.push(format!(
                "port {p}: opened with {backend} because {reason}; it is slower (see vswctl show)"
            ));
        }
        if let Some(s) = v.status.as_ref() {
            let (max, why) = s
                .mtu_limit
                .unwrap_or((ports::MAX_MTU, "a packet buffer holds no longer frame"));
            if s.mtu > max {
                warnings.push(format!(
                    "port {p}: its device's MTU is {}, but this port carries frames of an \
                     MTU of at most {max} ({why}); longer frames are dropped. Lower it with \
                     vswctl set interface {p} mtu_request={max}",
                    s.mtu
                ));
            }
        }
        if let Some(e) = v.error {
            warnings.push(format!(
                "port {p}: {e}; the port is kept and comes up when the device can be opened \
                 (retried every second)"
            ));
        }
    }
    (None, warnings)
}

/// One response as a line.
fn response_line(resp: &Response) -> Vec<u8> {
    let mut out = serde_json::to_vec(resp).unwrap_or_else(|_| b"{}".to_vec());
    out.push(b'\n');
    out
}

/// Tells a client beyond [`MAX_CONNS`] why, and closes it. The socket is
/// new and empty, so the short line fits; if not, the client only misses
/// the reason.
fn refuse(mut stream: UnixStream) {
    let _ = stream.write(&response_line(&request::too_many_connections(MAX_CONNS)));
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

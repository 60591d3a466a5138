//! Process plumbing: the pid file lock, detaching, signals, logging.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

/// Takes an exclusive lock on the pid file and writes our pid into it. The
/// lock is what stops two daemons sharing a run directory; it is released
/// by the kernel when the process dies, even by `kill -9`.
pub fn lock_pidfile(path: &Path) -> io::Result<File> {
    let mut f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)?;
    // SAFETY: flock on a descriptor we own; no memory is involved.
    let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc != 0 {
        let mut pid = String::new();
        let _ = f.read_to_string(&mut pid);
        return Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            format!(
                "another vswitchd (pid {}) is already running with this run directory",
                pid.trim()
            ),
        ));
    }
    f.set_len(0)?;
    writeln!(f, "{}", std::process::id())?;
    f.sync_all()?;
    Ok(f)
}

/// Blocks SIGTERM, SIGINT and SIGHUP in this thread (and every thread it
/// spawns afterwards) and returns a signalfd that reports them.
pub fn signal_fd() -> io::Result<OwnedFd> {
    // SAFETY: sigset_t is plain data; sigemptyset initialises it.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid sigset_t for all of these calls.
    unsafe {
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGHUP);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
    // SAFETY: `set` is initialised; -1 asks for a new descriptor.
    let fd = unsafe { libc::signalfd(-1, &set, libc::SFD_NONBLOCK | libc::SFD_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh descriptor nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The detached child's promise to its waiting parent: `ready` says the
/// daemon is up; dropping it unsaid tells the parent that start-up failed.
pub struct Readiness(Option<File>);

impl Readiness {
    pub fn none() -> Readiness {
        Readiness(None)
    }

    /// Tells the waiting parent that the control socket accepts.
    pub fn ready(&mut self) {
        if let Some(mut f) = self.0.take() {
            let _ = f.write_all(b"ok");
        }
    }
}

/// Forks; the parent waits until the child reports ready and exits (0 if
/// ready, 1 if the child failed). The child starts a new session, and its
/// standard streams go to `log` (stderr) and /dev/null. Must be called
/// before any thread is started.
pub fn detach(log: &Path) -> io::Result<Readiness> {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both descriptors are fresh and owned only here.
    let (rd, wr) = unsafe { (File::from_raw_fd(fds[0]), File::from_raw_fd(fds[1])) };
    // SAFETY: no other thread exists yet (documented precondition), so the
    // child is a consistent copy of this process.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    if pid > 0 {
        drop(wr);
        let mut rd = rd;
        let mut buf = Vec::new();
        let _ = rd.read_to_end(&mut buf);
        if buf == b"ok" {
            std::process::exit(0);
        }
        eprintln!(
            "vswitchd: the daemon failed to start; see {}",
            log.display()
        );
        std::process::exit(1);
    }
    drop(rd);
    // SAFETY: setsid has no memory effects; failure is harmless here.
    unsafe { libc::setsid() };
    let logf = OpenOptions::new().create(true).append(true).open(log)?;
    let null = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")?;
    // SAFETY: dup2 onto the standard descriptors, from descriptors we own.
    unsafe {
        libc::dup2(null.as_raw_fd(), 0);
        libc::dup2(null.as_raw_fd(), 1);
        libc::dup2(logf.as_raw_fd(), 2);
    }
    Ok(Readiness(Some(wr)))
}

/// A logger writing `time level message` lines to stderr.
pub struct Logger {
    pub level: log::LevelFilter,
}

impl log::Log for Logger {
    fn enabled(&self, m: &log::Metadata) -> bool {
        m.level() <= self.level
    }

    fn log(&self, r: &log::Record) {
        if self.enabled(r.metadata()) {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            let _ = writeln!(
                io::stderr(),
                "{}.{:03} {:<5} {}",
                now.as_secs(),
                now.subsec_millis(),
                r.level(),
                r.args()
            );
        }
    }

    fn flush(&self) {}
}

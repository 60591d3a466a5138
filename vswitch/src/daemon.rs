//! Process plumbing: the pid file lock, detaching, signals, logging, and
//! the rules for the daemon's own files.
//!
//! Files and privileges, as OpenSSH's StrictModes: the daemon runs with
//! umask 077; the run directory and the database's directory must belong
//! to the daemon's user and be writable by nobody else ([`private_dir`]),
//! since whoever can write a directory can plant a symlink or swap the
//! control socket in it. The pid file and the log are opened with
//! `O_NOFOLLOW`, the log and the database are 0600, the control socket
//! 0660 (its group set with `--socket-group`).

use std::ffi::CString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Sets the process umask to 077: every file the daemon creates is its
/// own unless it says otherwise (the socket, the directories it creates).
pub fn private_umask() {
    // SAFETY: umask only changes the process's file mode mask.
    unsafe { libc::umask(0o077) };
}

/// Makes sure `dir` (the `what`: "run directory", "database directory") can
/// be trusted: created with mode 0755 if missing; otherwise it must belong
/// to the daemon's user and not be writable by group or others. Only `dir`
/// itself is checked, not its parents.
pub fn private_dir(dir: &Path, what: &str) -> Result<(), String> {
    match fs::metadata(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o755)
                .create(dir)
                .map_err(|e| format!("cannot create {what} {}: {e}", dir.display()))?;
            // The umask took bits away; the directory is meant to be 0755.
            fs::set_permissions(dir, fs::Permissions::from_mode(0o755))
                .map_err(|e| format!("cannot set the mode of {what} {}: {e}", dir.display()))
        }
        Err(e) => Err(format!("cannot use {what} {}: {e}", dir.display())),
        Ok(m) if !m.is_dir() => Err(format!("{what} {} is not a directory", dir.display())),
        Ok(m) => check_private(dir, what, m.uid(), m.mode(), effective_uid()),
    }
}

fn effective_uid() -> u32 {
    // SAFETY: geteuid cannot fail and touches no memory.
    unsafe { libc::geteuid() }
}

/// The rule of [`private_dir`] for a directory of owner `uid` and `mode`.
fn check_private(dir: &Path, what: &str, uid: u32, mode: u32, me: u32) -> Result<(), String> {
    if uid != me {
        return Err(format!(
            "{what} {} belongs to uid {uid}, not to this daemon's user (uid {me}): \
             whoever owns it could replace the daemon's files; chown it to uid {me} \
             or use another directory",
            dir.display()
        ));
    }
    if mode & 0o022 != 0 {
        return Err(format!(
            "{what} {} is writable by {} (mode {:04o}): anyone who can write it could \
             replace the daemon's files; run chmod go-w {} or use another directory",
            dir.display(),
            if mode & 0o002 != 0 {
                "others"
            } else {
                "its group"
            },
            mode & 0o7777,
            dir.display()
        ));
    }
    Ok(())
}

/// The group id of group `name` (a name, or a number).
pub fn group_id(name: &str) -> Result<u32, String> {
    if let Ok(gid) = name.parse::<u32>() {
        return Ok(gid);
    }
    let cname = CString::new(name).map_err(|_| format!("\"{name}\" is not a group name"))?;
    let mut buf: Vec<libc::c_char> = vec![0; 4096];
    loop {
        // SAFETY: `group` is plain data that getgrnam_r fills in.
        let mut grp: libc::group = unsafe { std::mem::zeroed() };
        let mut found: *mut libc::group = std::ptr::null_mut();
        // SAFETY: every pointer is valid for the call, and `buf` is as
        // long as the length given; the strings it writes point into `buf`,
        // which we do not read.
        let rc = unsafe {
            libc::getgrnam_r(
                cname.as_ptr(),
                &mut grp,
                buf.as_mut_ptr(),
                buf.len(),
                &mut found,
            )
        };
        if rc == libc::ERANGE && buf.len() < 1 << 20 {
            buf.resize(buf.len() * 2, 0);
            continue;
        }
        if rc != 0 {
            return Err(format!(
                "cannot look up group {name}: {}",
                io::Error::from_raw_os_error(rc)
            ));
        }
        if found.is_null() {
            return Err(format!("there is no group named {name}"));
        }
        return Ok(grp.gr_gid);
    }
}

/// Gives the control socket its mode, 0660, and group `gid` if given.
pub fn socket_access(path: &Path, gid: Option<u32>) -> io::Result<()> {
    if let Some(gid) = gid {
        std::os::unix::fs::chown(path, None, Some(gid))?;
    }
    fs::set_permissions(path, fs::Permissions::from_mode(0o660))
}

/// Opens a file the daemon owns in a directory it trusts, never through a
/// symlink (ELOOP is reported in words; the caller names the file).
fn open_nofollow(opts: &mut OpenOptions, path: &Path) -> io::Result<File> {
    opts.custom_flags(libc::O_NOFOLLOW).open(path).map_err(|e| {
        if e.raw_os_error() == Some(libc::ELOOP) {
            io::Error::new(
                e.kind(),
                "is a symbolic link, which vswitchd does not follow; remove it",
            )
        } else {
            e
        }
    })
}

/// Takes an exclusive lock on the pid file and writes our pid into it. The
/// lock is what stops two daemons sharing a run directory; it is released
/// by the kernel when the process dies, even by `kill -9`. A symlink in
/// its place is refused, not followed.
pub fn lock_pidfile(path: &Path) -> io::Result<File> {
    let mut f = open_nofollow(
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o644),
        path,
    )?;
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

    /// Tells the waiting parent that the control socket accepts, and a
    /// service manager too (systemd's `Type=notify`: `READY=1` to
    /// `$NOTIFY_SOCKET`).
    pub fn ready(&mut self) {
        if let Some(mut f) = self.0.take() {
            let _ = f.write_all(b"ok");
        }
        if let Err(e) = notify_ready() {
            log::warn!("cannot tell the service manager we are ready: {e}");
        }
    }
}

/// Sends `READY=1` to the datagram socket named by `$NOTIFY_SOCKET`, as
/// sd_notify(3) does (a path, or `@name` in the abstract namespace). No
/// variable: nothing to do.
pub fn notify_ready() -> io::Result<()> {
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::net::{SocketAddr, UnixDatagram};
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return Ok(());
    };
    let bytes = path.as_encoded_bytes();
    let addr = match bytes.strip_prefix(b"@") {
        Some(name) => SocketAddr::from_abstract_name(name)?,
        None => SocketAddr::from_pathname(Path::new(&path))?,
    };
    let sock = UnixDatagram::unbound()?;
    sock.send_to_addr(
        format!("READY=1\nMAINPID={}\n", std::process::id()).as_bytes(),
        &addr,
    )?;
    Ok(())
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
    let logf = open_nofollow(
        OpenOptions::new().create(true).append(true).mode(0o600),
        log,
    )
    .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", log.display())))?;
    logf.set_permissions(fs::Permissions::from_mode(0o600))?;
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

/// Opens the log file again and puts it on stderr (SIGHUP, `vlog/reopen`):
/// after logrotate moved it away, the daemon writes to a new file by the
/// old name.
pub fn reopen_log(log: &Path) -> io::Result<()> {
    let logf = open_nofollow(
        OpenOptions::new().create(true).append(true).mode(0o600),
        log,
    )?;
    logf.set_permissions(fs::Permissions::from_mode(0o600))?;
    // SAFETY: dup2 onto stderr from a descriptor we own.
    if unsafe { libc::dup2(logf.as_raw_fd(), 2) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Locks the database against a second daemon: an exclusive lock on
/// `DB.lock` beside it (not the file itself, which each store replaces by
/// a rename), held for the daemon's life and released by the kernel when
/// it dies.
pub fn lock_db(db: &Path) -> Result<File, String> {
    let mut path = db.as_os_str().to_owned();
    path.push(".lock");
    let path = std::path::PathBuf::from(path);
    let f = open_nofollow(
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600),
        &path,
    )
    .map_err(|e| format!("{}: {e}", path.display()))?;
    // SAFETY: flock on a descriptor we own; no memory is involved.
    let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc != 0 {
        return Err(format!(
            "the database {} is in use by another vswitchd (its lock {} is held); give each \
             daemon its own --db",
            db.display(),
            path.display()
        ));
    }
    Ok(f)
}

/// A logger writing `time level message` lines to stderr. Its level is
/// `log::max_level()`, which `vlog/set` changes at run time.
pub struct Logger;

impl log::Log for Logger {
    fn enabled(&self, m: &log::Metadata) -> bool {
        m.level() <= log::max_level()
    }

    fn log(&self, r: &log::Record) {
        if self.enabled(r.metadata()) {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            let _ = writeln!(
                io::stderr(),
                "{} {:<5} {}",
                rfc3339(now),
                r.level(),
                r.args()
            );
        }
    }

    fn flush(&self) {}
}

/// `since_epoch` as an RFC 3339 UTC time with milliseconds
/// (`2026-12-05T14:43:38.123Z`), from the civil-from-days algorithm.
pub fn rfc3339(since_epoch: std::time::Duration) -> String {
    let secs = since_epoch.as_secs();
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    // Days since 1970-01-01 to a proleptic Gregorian date (H. Hinnant).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        since_epoch.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_times_are_rfc3339() {
        use std::time::Duration;
        assert_eq!(rfc3339(Duration::ZERO), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            rfc3339(Duration::from_millis(1_796_481_818_123)),
            "2026-12-05T14:43:38.123Z"
        );
        assert_eq!(
            rfc3339(Duration::from_secs(951_782_400)),
            "2000-02-29T00:00:00.000Z"
        );
    }

    #[test]
    fn readiness_reaches_the_notify_socket() {
        let dir = scratch("notify");
        let path = dir.join("notify.sock");
        let sock = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
        // SAFETY: no other thread of this test binary reads NOTIFY_SOCKET.
        unsafe { std::env::set_var("NOTIFY_SOCKET", &path) };
        notify_ready().unwrap();
        // SAFETY: as above.
        unsafe { std::env::remove_var("NOTIFY_SOCKET") };
        let mut buf = [0u8; 128];
        let n = sock.recv(&mut buf).unwrap();
        assert!(std::str::from_utf8(&buf[..n])
            .unwrap()
            .starts_with("READY=1\n"));
        fs::remove_dir_all(&dir).unwrap();
    }

    fn scratch(name: &str) -> std::path::PathBuf {
        let dir =
            std::env::temp_dir().join(format!("vswitch-daemon-test-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn directories_others_can_write_or_own_are_refused() {
        let d = Path::new("/x");
        assert!(check_private(d, "run directory", 0, 0o40755, 0).is_ok());
        assert!(check_private(d, "run directory", 0, 0o40700, 0).is_ok());
        let e = check_private(d, "run directory", 0, 0o41777, 0).unwrap_err();
        assert!(
            e.contains("run directory /x is writable by others (mode 1777)"),
            "{e}"
        );
        let e = check_private(d, "run directory", 0, 0o40775, 0).unwrap_err();
        assert!(e.contains("writable by its group"), "{e}");
        let e = check_private(d, "database directory", 1000, 0o40755, 0).unwrap_err();
        assert!(
            e.contains("database directory /x belongs to uid 1000"),
            "{e}"
        );
    }

    #[test]
    fn a_missing_directory_is_created_0755_and_a_world_writable_one_refused() {
        let dir = scratch("dir");
        let new = dir.join("a/run");
        private_dir(&new, "run directory").unwrap();
        assert_eq!(fs::metadata(&new).unwrap().mode() & 0o7777, 0o755);
        private_dir(&new, "run directory").unwrap();
        fs::set_permissions(&new, fs::Permissions::from_mode(0o777)).unwrap();
        let e = private_dir(&new, "run directory").unwrap_err();
        assert!(e.contains("writable by others"), "{e}");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_symlinked_pid_file_is_refused_and_its_target_untouched() {
        let dir = scratch("pid");
        let victim = dir.join("victim");
        fs::write(&victim, b"precious\n").unwrap();
        let pid = dir.join("vswitchd.pid");
        std::os::unix::fs::symlink(&victim, &pid).unwrap();
        let e = lock_pidfile(&pid).unwrap_err().to_string();
        assert!(e.contains("is a symbolic link"), "{e}");
        assert_eq!(fs::read(&victim).unwrap(), b"precious\n");
        fs::remove_file(&pid).unwrap();
        let f = lock_pidfile(&pid).unwrap();
        drop(f);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn groups_by_name_or_number() {
        assert_eq!(group_id("root"), Ok(0));
        assert_eq!(group_id("1234"), Ok(1234));
        let e = group_id("no-such-group-here").unwrap_err();
        assert!(e.contains("no group named no-such-group-here"), "{e}");
    }
}

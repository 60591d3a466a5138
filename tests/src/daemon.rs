//! The real `vswitchd`, started in a private run directory, and the real
//! `vswctl` pointed at it.
//!
//! The daemon's stdout and stderr go to `<rundir>/vswitchd.log` (appended
//! across restarts, with a marker line per start). When a test fails, the
//! tail of that log is printed on drop. The daemon is stopped on drop
//! (SIGTERM, then SIGKILL after a timeout) and the run directory removed;
//! set `VSWITCH_KEEP_RUNDIR=1` to keep it for inspection.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::cmd::{run, Output};
use crate::names;

/// How long a starting daemon may take to accept on its control socket.
pub const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a daemon may take to exit after SIGTERM.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one `vswctl` call may take.
pub const VSCTL_TIMEOUT: Duration = Duration::from_secs(10);
/// Log lines shown in failure messages.
const TAIL_LINES: usize = 40;

/// Paths of the two programs under test.
#[derive(Debug, Clone)]
pub struct Bins {
    pub vswitchd: PathBuf,
    pub vswctl: PathBuf,
}

impl Bins {
    /// Finds the binaries: `$VSWITCH_BIN_DIR`, else `<workspace>/target/release`
    /// if both are there, else `<workspace>/target/debug`.
    pub fn locate() -> Result<Bins, String> {
        if let Some(dir) = std::env::var_os("VSWITCH_BIN_DIR") {
            return Bins::in_dir(Path::new(&dir)).map_err(|e| format!("VSWITCH_BIN_DIR: {e}"));
        }
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
        let ws = manifest.parent().unwrap_or(manifest);
        let release = ws.join("target/release");
        let debug = ws.join("target/debug");
        Bins::in_dir(&release)
            .or_else(|_| Bins::in_dir(&debug))
            .map_err(|_| {
                format!(
                    "vswitchd and vswctl are not both in {} or {}; build them with \
                 `cargo build --release --workspace --bins` or set VSWITCH_BIN_DIR",
                    release.display(),
                    debug.display()
                )
            })
    }

    /// The binaries in `dir`, if both exist there.
    pub fn in_dir(dir: &Path) -> Result<Bins, String> {
        let b = Bins {
            vswitchd: dir.join("vswitchd"),
            vswctl: dir.join("vswctl"),
        };
        for p in [&b.vswitchd, &b.vswctl] {
            if !p.is_file() {
                return Err(format!("{} does not exist", p.display()));
            }
        }
        Ok(b)
    }

    /// A `vswctl` command with no `--rundir` and no VSWITCH_RUNDIR from the
    /// test's environment.
    pub fn vswctl_command(&self) -> Command {
        let mut c = Command::new(&self.vswctl);
        c.env_remove("VSWITCH_RUNDIR");
        c
    }
}

/// Runs `vswctl --rundir RUNDIR ...` for one daemon; cheap to clone and
/// usable from any thread (for example while another thread kills the
/// daemon).
#[derive(Debug, Clone)]
pub struct Vsctl {
    bins: Bins,
    rundir: PathBuf,
}

impl Vsctl {
    /// Runs `vswctl --rundir RUNDIR ARGS...`, killed after [`VSCTL_TIMEOUT`].
    pub fn run(&self, args: &[&str]) -> Output {
        self.run_timeout(args, VSCTL_TIMEOUT)
    }

    /// Runs `vswctl --rundir RUNDIR ARGS...`, killed after `timeout`.
    pub fn run_timeout(&self, args: &[&str], timeout: Duration) -> Output {
        let mut c = self.bins.vswctl_command();
        c.arg("--rundir").arg(&self.rundir).args(args);
        run(c, timeout)
    }
}

/// How to start a daemon.
#[derive(Debug, Clone, Default)]
pub struct DaemonOptions {
    /// Where the binaries are; `None` means [`Bins::locate`].
    pub bin_dir: Option<PathBuf>,
    /// Arguments added after `--rundir/--db/--pmd-cpus`.
    pub extra_args: Vec<String>,
    /// How long to wait for the control socket; `None` means [`START_TIMEOUT`].
    pub start_timeout: Option<Duration>,
    /// Run the daemon inside this network namespace (`ip netns exec`), as
    /// the switch of a "host" that is itself a namespace.
    pub netns: Option<String>,
}

/// A running (or stopped) `vswitchd` with its own run directory and db.
///
/// Start it from the thread that owns it: the daemon is killed by the
/// kernel when the thread that started it exits (PR_SET_PDEATHSIG), so no
/// daemon outlives a test process that was killed.
pub struct Daemon {
    bins: Bins,
    rundir: PathBuf,
    db: PathBuf,
    log: PathBuf,
    extra_args: Vec<String>,
    start_timeout: Duration,
    netns: Option<String>,
    child: Option<Child>,
    starts: u32,
    log_shown: bool,
}

impl Daemon {
    /// Starts a daemon with default options; panics (with the log) on failure.
    pub fn start() -> Daemon {
        Daemon::start_with(DaemonOptions::default())
    }

    /// Starts a daemon; panics (with the log) on failure.
    pub fn start_with(opts: DaemonOptions) -> Daemon {
        Daemon::try_start(opts).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Starts a daemon and waits until its control socket accepts.
    pub fn try_start(opts: DaemonOptions) -> Result<Daemon, String> {
        let rundir = std::env::temp_dir().join(names::unique("d"));
        fs::create_dir_all(&rundir)
            .map_err(|e| format!("create run directory {}: {e}", rundir.display()))?;
        let mut d = Daemon::unstarted_in(rundir.clone(), opts).inspect_err(|_| {
            let _ = fs::remove_dir_all(&rundir);
        })?;
        d.spawn()?;
        Ok(d)
    }

    /// A daemon not started yet, with run directory `rundir` (which the
    /// caller made, and may have put files in: the db is `rundir/conf.db`)
    /// and removed on drop like any other. Start it with [`Daemon::try_spawn`].
    pub fn unstarted_in(rundir: PathBuf, opts: DaemonOptions) -> Result<Daemon, String> {
        let bins = match &opts.bin_dir {
            Some(d) => Bins::in_dir(d)?,
            None => Bins::locate()?,
        };
        Ok(Daemon {
            bins,
            db: rundir.join("conf.db"),
            log: rundir.join("vswitchd.log"),
            rundir,
            extra_args: opts.extra_args,
            start_timeout: opts.start_timeout.unwrap_or(START_TIMEOUT),
            netns: opts.netns,
            child: None,
            starts: 0,
            log_shown: false,
        })
    }

    /// Starts the daemon (not running) and waits until its control socket
    /// accepts; the error has the daemon's log tail. The daemon keeps its
    /// run directory either way, until it is dropped.
    pub fn try_spawn(&mut self) -> Result<(), String> {
        self.spawn()
    }

    fn spawn(&mut self) -> Result<(), String> {
        assert!(self.child.is_none(), "daemon is already running");
        self.starts += 1;
        let mut args: Vec<String> = vec![
            "--rundir".into(),
            self.rundir.display().to_string(),
            "--db".into(),
            self.db.display().to_string(),
            "--pmd-cpus".into(),
            "1".into(),
        ];
        args.extend(self.extra_args.iter().cloned());
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .map_err(|e| format!("open {}: {e}", self.log.display()))?;
        let _ = writeln!(
            log,
            "=== harness: start #{} of {} {} ===",
            self.starts,
            self.bins.vswitchd.display(),
            args.join(" ")
        );
        let err_log = log.try_clone().map_err(|e| format!("dup log file: {e}"))?;
        // `ip netns exec` enters the namespace and execs the daemon, so the
        // child is the daemon itself.
        let mut cmd = match &self.netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).arg(&self.bins.vswitchd);
                c
            }
            None => Command::new(&self.bins.vswitchd),
        };
        cmd.args(&args)
            .env_remove("VSWITCH_RUNDIR")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err_log);
        let child = crate::cmd::spawn_tied(&mut cmd)
            .map_err(|e| format!("could not start {}: {e}", self.bins.vswitchd.display()))?;
        self.child = Some(child);
        self.wait_ready()
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let sock = self.socket_path();
        let start = Instant::now();
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    self.child = None;
                    self.log_shown = true;
                    return Err(format!(
                        "vswitchd exited ({status}) before its control socket {} accepted \
                         connections\n{}",
                        sock.display(),
                        self.log_tail(TAIL_LINES)
                    ));
                }
            }
            if UnixStream::connect(&sock).is_ok() {
                return Ok(());
            }
            if start.elapsed() > self.start_timeout {
                self.kill_child();
                self.log_shown = true;
                return Err(format!(
                    "vswitchd did not accept on {} within {:?}; killed it\n{}",
                    sock.display(),
                    self.start_timeout,
                    self.log_tail(TAIL_LINES)
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn rundir(&self) -> &Path {
        &self.rundir
    }

    pub fn db(&self) -> &Path {
        &self.db
    }

    pub fn log_path(&self) -> &Path {
        &self.log
    }

    pub fn socket_path(&self) -> PathBuf {
        self.rundir.join("vswitchd.sock")
    }

    pub fn pid_file(&self) -> PathBuf {
        self.rundir.join("vswitchd.pid")
    }

    pub fn bins(&self) -> &Bins {
        &self.bins
    }

    /// The daemon's pid while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// True while the daemon process has not exited.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// A handle that runs vswctl against this daemon from any thread.
    pub fn vsctl_runner(&self) -> Vsctl {
        Vsctl {
            bins: self.bins.clone(),
            rundir: self.rundir.clone(),
        }
    }

    /// Runs `vswctl --rundir RUNDIR ARGS...` (time-limited).
    pub fn vsctl(&self, args: &[&str]) -> Output {
        self.vsctl_runner().run(args)
    }

    /// Runs vswctl, asserts success, returns stdout.
    pub fn vsctl_ok(&self, args: &[&str]) -> String {
        let out = self.vsctl(args);
        assert!(
            out.success(),
            "vswctl failed, expected success:\n{out}\n{}",
            self.log_tail(TAIL_LINES)
        );
        out.stdout
    }

    /// Runs `vswctl --format json ARGS...`, asserts success, parses stdout.
    pub fn vsctl_json(&self, args: &[&str]) -> Value {
        let mut full = vec!["--format", "json"];
        full.extend_from_slice(args);
        let out = self.vsctl(&full);
        assert!(
            out.success(),
            "vswctl failed, expected success:\n{out}\n{}",
            self.log_tail(TAIL_LINES)
        );
        serde_json::from_str(&out.stdout)
            .unwrap_or_else(|e| panic!("vswctl printed invalid JSON ({e}):\n{out}"))
    }

    /// Sends SIGTERM and waits for the exit; panics if the daemon does not
    /// exit within [`STOP_TIMEOUT`] (it is then killed).
    pub fn stop(&mut self) -> ExitStatus {
        let Some(mut child) = self.child.take() else {
            panic!("stop(): the daemon is not running");
        };
        signal(&child, libc::SIGTERM);
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            match child.try_wait() {
                Ok(Some(status)) => return status,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10))
                }
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    self.log_shown = true;
                    panic!(
                        "vswitchd did not exit within {STOP_TIMEOUT:?} of SIGTERM; killed it\n{}",
                        self.log_tail(TAIL_LINES)
                    );
                }
            }
        }
    }

    /// Kills the daemon with SIGKILL and reaps it.
    pub fn kill9(&mut self) {
        let Some(mut child) = self.child.take() else {
            panic!("kill9(): the daemon is not running");
        };
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Stops the daemon if it runs (SIGTERM), then starts it again with the
    /// same run directory and db; panics (with the log) on failure.
    pub fn restart(&mut self) {
        if self.child.is_some() {
            let status = self.stop();
            assert!(
                status.success(),
                "vswitchd exited with {status} after SIGTERM\n{}",
                self.log_tail(TAIL_LINES)
            );
        }
        if let Err(e) = self.spawn() {
            panic!("restart: {e}");
        }
    }

    /// The last `n` lines of the daemon log, framed for a failure message.
    pub fn log_tail(&self, n: usize) -> String {
        let text = fs::read(&self.log)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_else(|e| format!("(could not read {}: {e})", self.log.display()));
        let lines: Vec<&str> = text.lines().collect();
        let from = lines.len().saturating_sub(n);
        format!(
            "--- last {} lines of {} ---\n{}\n--- end of log ---",
            lines.len() - from,
            self.log.display(),
            lines[from..].join("\n")
        )
    }

    fn kill_child(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn signal(child: &Child, sig: libc::c_int) {
    if let Ok(pid) = libc::pid_t::try_from(child.id()) {
        // SAFETY: kill(2) on the pid of our own unreaped child: the pid
        // cannot have been reused while we hold the Child.
        unsafe {
            libc::kill(pid, sig);
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if std::thread::panicking() && !self.log_shown {
            eprintln!("{}", self.log_tail(2 * TAIL_LINES));
        }
        if let Some(mut child) = self.child.take() {
            signal(&child, libc::SIGTERM);
            let (_, timed_out) = crate::cmd::wait_deadline(&mut child, Duration::from_secs(5));
            if timed_out {
                eprintln!("harness cleanup: vswitchd ignored SIGTERM for 5 s; killed it");
            }
        }
        if std::env::var_os("VSWITCH_KEEP_RUNDIR").is_some() {
            eprintln!("keeping {}", self.rundir.display());
        } else {
            let _ = fs::remove_dir_all(&self.rundir);
        }
    }
}

/// Writes an executable file (for fake binaries in harness self-tests).
pub fn write_executable(path: &Path, text: &str) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mut f = File::create(path)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    drop(f);
    fs::set_permissions(path, fs::Permissions::from_mode(0o755))
}

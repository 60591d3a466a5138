//! Running external programs with argument vectors and a time limit.
//!
//! Every program the harness starts (`ip`, `ping`, `vswctl`, ...) goes
//! through [`run`], so no test can hang on a stuck child: past the limit the
//! child is killed and the result says so.

use std::ffi::OsStr;
use std::fmt;
use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// Spawns `cmd` so that the kernel kills it (SIGKILL) when the thread that
/// spawned it exits: a long-lived child (a daemon, a container's process)
/// cannot outlive a test that panicked.
pub fn spawn_tied(cmd: &mut Command) -> std::io::Result<Child> {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure only calls prctl(2), which is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    cmd.spawn()
}

/// How long an administrative command (`ip ...`) may take.
pub const ADMIN_TIMEOUT: Duration = Duration::from_secs(10);

/// What a finished (or killed) command left behind.
#[derive(Debug, Clone)]
pub struct Output {
    /// The command line, for messages.
    pub cmdline: String,
    /// Exit code; `None` when the command was killed by a signal or timed out.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    /// True when the harness killed the command at its time limit.
    pub timed_out: bool,
}

impl Output {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
}

impl fmt::Display for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let status = match (self.code, self.timed_out) {
            (_, true) => "killed at its time limit".to_string(),
            (Some(c), false) => format!("exit code {c}"),
            (None, false) => "killed by a signal".to_string(),
        };
        writeln!(f, "$ {}", self.cmdline)?;
        writeln!(f, "  status: {status}")?;
        writeln!(f, "  stdout: {}", indent(&self.stdout))?;
        write!(f, "  stderr: {}", indent(&self.stderr))
    }
}

fn indent(s: &str) -> String {
    let t = s.trim_end();
    if t.is_empty() {
        "(empty)".into()
    } else {
        t.replace('\n', "\n          ")
    }
}

/// Builds a printable command line from a program and its arguments.
pub fn cmdline<S: AsRef<OsStr>>(program: &str, args: &[S]) -> String {
    let mut s = program.to_string();
    for a in args {
        s.push(' ');
        s.push_str(&a.as_ref().to_string_lossy());
    }
    s
}

/// Runs `cmd` to completion, killing it after `timeout`. Standard input is
/// closed; standard output and error are collected.
pub fn run(mut cmd: Command, timeout: Duration) -> Output {
    let line = {
        let args: Vec<&OsStr> = cmd.get_args().collect();
        cmdline(&cmd.get_program().to_string_lossy(), &args)
    };
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            return Output {
                cmdline: line,
                code: None,
                stdout: String::new(),
                stderr: format!("could not start the program: {e}"),
                timed_out: false,
            }
        }
    };
    let out = drain(child.stdout.take());
    let err = drain(child.stderr.take());
    let (code, timed_out) = wait_deadline(&mut child, timeout);
    Output {
        cmdline: line,
        code,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
        timed_out,
    }
}

fn drain<R: Read + Send + 'static>(pipe: Option<R>) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut p) = pipe {
            let _ = p.read_to_end(&mut buf);
        }
        String::from_utf8_lossy(&buf).into_owned()
    })
}

/// Waits for `child` until `timeout`; kills it past that. Returns the exit
/// code (None if signalled) and whether it was killed for taking too long.
pub fn wait_deadline(child: &mut Child, timeout: Duration) -> (Option<i32>, bool) {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return (status.code(), false),
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(5)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return (None, true);
            }
        }
    }
}

/// Runs `ip ARGS...` with the administrative time limit.
pub fn ip(args: &[&str]) -> Output {
    let mut c = Command::new("ip");
    c.args(args);
    run(c, ADMIN_TIMEOUT)
}

/// Runs `ip ARGS...` and panics with the full output if it fails.
pub fn ip_ok(args: &[&str]) -> String {
    let out = ip(args);
    assert!(out.success(), "harness command failed:\n{out}");
    out.stdout
}

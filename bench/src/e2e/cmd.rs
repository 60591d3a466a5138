//! Running the external programs (`ip`, `nft`, `trafgen`, `iperf3`, `ping`,
//! `vswctl`, ...) with a time limit, and background children that are killed
//! when their guard is dropped. Every wait here also ends on Ctrl-C.

use super::sys;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::{Duration, Instant};

/// How long an administrative command (`ip`, `ethtool`, `nft`, `vswctl`)
/// may take.
pub const ADMIN: Duration = Duration::from_secs(15);

/// What a finished (or killed) command left behind.
#[derive(Debug, Clone)]
pub struct Output {
    pub cmdline: String,
    /// `None` when killed by a signal or at the time limit.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub timed_out: bool,
}

impl Output {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// A one-paragraph description for error messages.
    pub fn describe(&self) -> String {
        let status = match (self.code, self.timed_out) {
            (_, true) => "was killed at its time limit".to_string(),
            (Some(c), false) => format!("exited with status {c}"),
            (None, false) => "was killed by a signal".to_string(),
        };
        let err = self.stderr.trim();
        let out = self.stdout.trim();
        let detail = if !err.is_empty() { err } else { out };
        let detail: String = detail.chars().take(800).collect();
        format!("`{}` {status}: {detail}", self.cmdline)
    }
}

fn cmdline(prog: &str, args: &[String]) -> String {
    std::iter::once(prog.to_string())
        .chain(args.iter().cloned())
        .collect::<Vec<_>>()
        .join(" ")
}

fn to_strings<S: AsRef<str>>(args: &[S]) -> Vec<String> {
    args.iter().map(|a| a.as_ref().to_string()).collect()
}

/// A child process whose output is collected on two threads (so a chatty
/// child never blocks on a full pipe) and which is killed when dropped.
pub struct Bg {
    cmdline: String,
    child: Option<Child>,
    out: Option<Receiver<String>>,
    err: Option<Receiver<String>>,
}

/// Reads a pipe to its end on a thread of its own.
fn drain<R: Read + Send + 'static>(r: Option<R>) -> Option<Receiver<String>> {
    r.map(|mut r| {
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = r.read_to_end(&mut buf);
            let _ = tx.send(String::from_utf8_lossy(&buf).into_owned());
        });
        rx
    })
}

impl Bg {
    /// Starts `prog args...` with stdin closed and stdout/stderr captured.
    pub fn spawn<S: AsRef<str>>(prog: &str, args: &[S]) -> Result<Bg, String> {
        let args = to_strings(args);
        let line = cmdline(prog, &args);
        // Its own process group: trafgen forks its workers, and stopping
        // or killing must reach them too (see `signal`). It also keeps
        // Ctrl-C from the terminal away from the children: the benchmark
        // stops them itself, in order.
        let mut child = Command::new(prog)
            .args(&args)
            .env("LC_ALL", "C")
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("could not start `{line}`: {e}"))?;
        let out = drain(child.stdout.take());
        let err = drain(child.stderr.take());
        Ok(Bg {
            cmdline: line,
            child: Some(child),
            out,
            err,
        })
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// True while the child has not exited.
    pub fn running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    /// Waits up to `limit` for the child to exit by itself; past the limit
    /// (or on Ctrl-C) kills it.
    pub fn wait(self, limit: Duration) -> Output {
        self.wait_for(limit, true)
    }

    fn wait_for(mut self, limit: Duration, interruptible: bool) -> Output {
        let end = Instant::now() + limit;
        let mut timed_out = false;
        let mut code = None;
        if let Some(child) = self.child.as_mut() {
            loop {
                match child.try_wait() {
                    Ok(Some(st)) => {
                        code = st.code();
                        break;
                    }
                    Ok(None) if Instant::now() < end && !(interruptible && sys::interrupted()) => {
                        thread::sleep(Duration::from_millis(10));
                    }
                    Ok(None) => {
                        timed_out = Instant::now() >= end;
                        kill_group(child);
                        break;
                    }
                    Err(_) => break,
                }
            }
        }
        self.child = None;
        self.collect(code, timed_out)
    }

    /// Stops the child: SIGINT first (trafgen and iperf3 print their
    /// summaries on it), SIGKILL after `grace`.
    pub fn stop(mut self, grace: Duration) -> Output {
        let mut code = None;
        if let Some(mut child) = self.child.take() {
            if let Ok(None) = child.try_wait() {
                sys::signal_group(child.id(), sys::SIGINT);
            }
            let end = Instant::now() + grace;
            loop {
                match child.try_wait() {
                    Ok(Some(st)) => {
                        code = st.code();
                        break;
                    }
                    Ok(None) if Instant::now() < end => thread::sleep(Duration::from_millis(10)),
                    _ => {
                        kill_group(&mut child);
                        break;
                    }
                }
            }
            // Workers that outlived their parent (trafgen's) go too.
            sys::signal_group(child.id(), sys::SIGKILL);
        }
        self.collect(code, false)
    }

    fn collect(&mut self, code: Option<i32>, timed_out: bool) -> Output {
        // A daemon the child started may hold the pipes open for good: wait
        // a little for the rest of the output, not for the end of the pipe.
        let join = |h: Option<Receiver<String>>| {
            h.and_then(|h| h.recv_timeout(Duration::from_secs(2)).ok())
                .unwrap_or_default()
        };
        Output {
            cmdline: self.cmdline.clone(),
            code,
            stdout: join(self.out.take()),
            stderr: join(self.err.take()),
            timed_out,
        }
    }
}

impl Drop for Bg {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            kill_group(&mut child);
        }
    }
}

/// SIGKILL to the child's process group (itself and anything it forked),
/// then reaps it.
fn kill_group(child: &mut Child) {
    sys::signal_group(child.id(), sys::SIGKILL);
    let _ = child.kill();
    let _ = child.wait();
}

/// Runs `prog args...` to completion within `limit`.
pub fn run<S: AsRef<str>>(prog: &str, args: &[S], limit: Duration) -> Result<Output, String> {
    if sys::interrupted() {
        return Err(sys::INTERRUPTED_MSG.into());
    }
    let out = Bg::spawn(prog, args)?.wait(limit);
    if sys::interrupted() {
        return Err(sys::INTERRUPTED_MSG.into());
    }
    Ok(out)
}

/// Runs `prog args...` within `limit` even after Ctrl-C: for cleaning up.
pub fn run_always<S: AsRef<str>>(
    prog: &str,
    args: &[S],
    limit: Duration,
) -> Result<Output, String> {
    Ok(Bg::spawn(prog, args)?.wait_for(limit, false))
}

/// Runs a command and returns its stdout; any failure is an error that
/// names the command and quotes its stderr.
pub fn run_ok<S: AsRef<str>>(prog: &str, args: &[S]) -> Result<String, String> {
    let out = run(prog, args, ADMIN)?;
    if out.success() {
        Ok(out.stdout)
    } else {
        Err(out.describe())
    }
}

/// `ip ARGS...`, which must succeed.
pub fn ip<S: AsRef<str>>(args: &[S]) -> Result<String, String> {
    run_ok("ip", args)
}

/// `ip ARGS...` while cleaning up: runs even after Ctrl-C, and reports a
/// failure on stderr instead of returning it.
pub fn ip_cleanup<S: AsRef<str>>(args: &[S]) {
    match run_always("ip", args, ADMIN) {
        Ok(o) if o.success() => {}
        Ok(o) => eprintln!("cleanup: {}", o.describe()),
        Err(e) => eprintln!("cleanup: {e}"),
    }
}

/// The argument vector for running `prog args...` inside namespace `ns`
/// with `ip netns exec`, optionally pinned with `taskset -c CPU`. `ip netns
/// exec` and `taskset` both exec the program, so the child's pid is the
/// program's.
pub fn in_netns<S: AsRef<str>>(
    ns: &str,
    cpu: Option<usize>,
    prog: &str,
    args: &[S],
) -> Vec<String> {
    let mut v = vec!["netns".to_string(), "exec".into(), ns.into()];
    if let Some(cpu) = cpu {
        v.extend(["taskset".into(), "-c".into(), cpu.to_string()]);
    }
    v.push(prog.into());
    v.extend(to_strings(args));
    v
}

/// Runs `prog args...` inside namespace `ns`; must succeed.
pub fn netns_ok<S: AsRef<str>>(ns: &str, prog: &str, args: &[S]) -> Result<String, String> {
    ip(&in_netns(ns, None, prog, args))
}

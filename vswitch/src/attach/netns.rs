//! Finding a container's network namespace, and running code inside it.
//!
//! CONTAINER is tried, in this order, as:
//! 1. a path (it contains '/'): a network namespace file such as
//!    `/proc/1234/ns/net` or `/var/run/netns/web`;
//! 2. a PID (all digits): `/proc/PID/ns/net`;
//! 3. a named namespace: `/var/run/netns/NAME` (as `ip netns add` makes);
//! 4. a Docker container name or id, where Docker is installed: the PID
//!    from `docker inspect -f {{.State.Pid}} NAME`, run with the Docker
//!    settings of the vswctl that asked ([`DockerEnv`]), never the daemon's.
//!
//! The namespace file stays open in [`Namespace`] for as long as the value
//! lives, so the namespace cannot go away (or a PID be reused) between
//! finding it and configuring it.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Where `ip netns add` puts named namespaces.
pub const NETNS_DIR: &str = "/var/run/netns";
/// Longest wait for `docker inspect`.
const DOCKER_TIMEOUT: Duration = Duration::from_secs(10);
/// `NS_GET_NSTYPE`: `_IO(0xb7, 0x3)`, the type of a namespace file.
const NS_GET_NSTYPE: libc::Ioctl = 0xb703;

/// Identity of a namespace while it lives: device and inode of its nsfs file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NsId {
    pub dev: u64,
    pub ino: u64,
}

impl std::fmt::Display for NsId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.ino)
    }
}

/// An open network namespace.
#[derive(Debug)]
pub struct Namespace {
    file: File,
    /// The file it was opened from (recorded as `external_ids:netns`).
    pub path: PathBuf,
    pub id: NsId,
    /// How CONTAINER was understood, for messages ("process 1234").
    pub what: String,
}

/// The Docker client settings `docker inspect` runs with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DockerEnv(Vec<(String, String)>);

impl DockerEnv {
    /// The variables vswitch passes on.
    pub const NAMES: &'static [&'static str] = &["DOCKER_HOST", "DOCKER_CONTEXT", "DOCKER_CONFIG"];

    /// The settings a request carries (other names are ignored).
    pub fn from_request(env: &std::collections::BTreeMap<String, String>) -> DockerEnv {
        DockerEnv(
            env.iter()
                .filter(|(k, _)| Self::NAMES.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        )
    }

    /// As recorded in an attachment's `external_ids` (`docker_host`, ...).
    pub fn to_record(&self) -> Vec<(String, String)> {
        self.0
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
            .collect()
    }

    /// As a request carries it.
    pub fn to_request(&self) -> std::collections::BTreeMap<String, String> {
        self.0.iter().cloned().collect()
    }

    /// From an attachment's `external_ids`.
    pub fn from_record(ids: &std::collections::BTreeMap<String, String>) -> DockerEnv {
        DockerEnv(
            Self::NAMES
                .iter()
                .filter_map(|n| Some((n.to_string(), ids.get(&n.to_ascii_lowercase())?.clone())))
                .collect(),
        )
    }

    /// Sets these on `cmd`, after removing the daemon's own.
    fn apply(&self, cmd: &mut Command) {
        for n in Self::NAMES {
            cmd.env_remove(n);
        }
        for (k, v) in &self.0 {
            cmd.env(k, v);
        }
    }
}

impl Namespace {
    /// Finds the network namespace of `container` (see the module docs),
    /// with no Docker settings of a client.
    pub fn resolve(container: &str) -> Result<Namespace, String> {
        Namespace::resolve_with(container, &DockerEnv::default())
    }

    /// [`Namespace::resolve`], a Docker name looked up with `docker`'s
    /// settings `env`.
    pub fn resolve_with(container: &str, env: &DockerEnv) -> Result<Namespace, String> {
        if container.contains('/') {
            return Namespace::open(Path::new(container), format!("namespace file {container}"));
        }
        if container.bytes().all(|b| b.is_ascii_digit()) {
            return Namespace::of_pid(container, format!("process {container}"));
        }
        if container == "." || container == ".." {
            return Err(format!("\"{container}\" is not a container"));
        }
        let named = Path::new(NETNS_DIR).join(container);
        if named.exists() {
            return Namespace::open(&named, format!("network namespace {container}"));
        }
        let Some(docker) = find_in_path("docker") else {
            return Err(format!(
                "no container \"{container}\": it is not a PID, not a path, there is no {}, and Docker is not installed (no docker in PATH), so it cannot be a Docker container name",
                named.display()
            ));
        };
        let pid = docker_pid(&docker, container, env).map_err(|e| {
            format!(
                "no container \"{container}\": it is not a PID, not a path, there is no {}, and Docker does not know it: {e}",
                named.display()
            )
        })?;
        Namespace::of_pid(
            &pid.to_string(),
            format!("Docker container {container} (pid {pid})"),
        )
    }

    fn of_pid(pid: &str, what: String) -> Result<Namespace, String> {
        let proc_dir = Path::new("/proc").join(pid);
        if !proc_dir.exists() {
            return Err(format!("no process with PID {pid}"));
        }
        Namespace::open(&proc_dir.join("ns/net"), what)
    }

    fn open(path: &Path, what: String) -> Result<Namespace, String> {
        let file = File::open(path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => format!(
                "{what}: {} does not exist (has the process exited?)",
                path.display()
            ),
            _ => format!("{what}: cannot open {}: {e}", path.display()),
        })?;
        // SAFETY: NS_GET_NSTYPE takes no argument and only reads the
        // descriptor, which `file` keeps open across the call.
        let kind = unsafe { libc::ioctl(file.as_raw_fd(), NS_GET_NSTYPE) };
        if kind != libc::CLONE_NEWNET {
            return Err(format!(
                "{what}: {} is not a network namespace",
                path.display()
            ));
        }
        let meta = file
            .metadata()
            .map_err(|e| format!("{what}: cannot stat {}: {e}", path.display()))?;
        Ok(Namespace {
            file,
            path: path.to_path_buf(),
            id: NsId {
                dev: meta.dev(),
                ino: meta.ino(),
            },
            what,
        })
    }

    pub fn fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }

    /// Runs `f` on a new thread that has entered this namespace; sockets
    /// `f` opens belong to it. The calling thread's namespace is unchanged.
    pub fn run<T, F>(&self, f: F) -> Result<T, String>
    where
        T: Send,
        F: FnOnce() -> Result<T, String> + Send,
    {
        let fd = self.fd();
        let what = &self.what;
        std::thread::scope(|s| {
            let h = s.spawn(move || {
                // SAFETY: `fd` is the namespace file held open by `self`,
                // which outlives this scoped thread; setns changes only this
                // thread's network namespace, and the thread ends with `f`.
                if unsafe { libc::setns(fd, libc::CLONE_NEWNET) } != 0 {
                    return Err(format!(
                        "cannot enter the network namespace of {what}: {}",
                        io::Error::last_os_error()
                    ));
                }
                f()
            });
            h.join()
                .unwrap_or_else(|_| Err(format!("a thread working inside {what} panicked")))
        })
    }
}

/// The namespace of the calling thread.
pub fn current() -> io::Result<NsId> {
    let meta = std::fs::metadata("/proc/thread-self/ns/net")?;
    Ok(NsId {
        dev: meta.dev(),
        ino: meta.ino(),
    })
}

fn find_in_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

/// What Docker says of a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DockerState {
    Running(u32),
    /// It exists but does not run.
    Stopped,
    /// Docker does not know it (removed).
    Gone,
    /// Docker could not be asked.
    Unknown(String),
}

/// Asks Docker (with `env`) about container `name`.
pub fn docker_state(name: &str, env: &DockerEnv) -> DockerState {
    let Some(docker) = find_in_path("docker") else {
        return DockerState::Unknown("no docker in PATH".into());
    };
    match docker_pid(&docker, name, env) {
        Ok(pid) => DockerState::Running(pid),
        Err(e) if e.ends_with(" is not running") => DockerState::Stopped,
        Err(e) if e.contains("No such object") || e.contains("No such container") => {
            DockerState::Gone
        }
        Err(e) => DockerState::Unknown(e),
    }
}

/// Asks Docker for the PID of container `name` (argument vector, no shell).
fn docker_pid(docker: &Path, name: &str, env: &DockerEnv) -> Result<u32, String> {
    let mut cmd = Command::new(docker);
    env.apply(&mut cmd);
    let mut child = cmd
        .args(["inspect", "--format", "{{.State.Pid}}", "--", name])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", docker.display()))?;
    let deadline = Instant::now() + DOCKER_TIMEOUT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "docker inspect did not answer within {DOCKER_TIMEOUT:?}"
                ));
            }
            Err(e) => return Err(format!("waiting for docker inspect: {e}")),
        }
    };
    let mut out = String::new();
    let mut err = String::new();
    if let Some(mut o) = child.stdout.take() {
        let _ = o.read_to_string(&mut out);
    }
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    if !status.success() {
        let msg = err.trim();
        return Err(if msg.is_empty() {
            format!("docker inspect exited with {status}")
        } else {
            msg.lines().collect::<Vec<_>>().join(" ")
        });
    }
    match out.trim().parse::<u32>() {
        Ok(0) => Err(format!("Docker container {name} is not running")),
        Ok(pid) => Ok(pid),
        Err(_) => Err(format!(
            "docker inspect printed \"{}\" instead of a PID",
            out.trim()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_namespace_by_pid() {
        let me = std::process::id().to_string();
        let Ok(ns) = Namespace::resolve(&me) else {
            return; // no /proc or no permission: nothing to check here
        };
        assert_eq!(Ok(ns.id), current().map_err(|e| e.to_string()));
        assert_eq!(ns.path, PathBuf::from(format!("/proc/{me}/ns/net")));
        assert_eq!(ns.run(|| Ok(current().is_ok())), Ok(true));
    }

    #[test]
    fn what_is_not_a_namespace_says_so() {
        let e = Namespace::resolve("/proc/self/ns/uts").unwrap_err();
        assert!(e.contains("not a network namespace"), "{e}");
        let e = Namespace::resolve("/no/such/file").unwrap_err();
        assert!(e.contains("does not exist"), "{e}");
        let e = Namespace::resolve("4294967295").unwrap_err();
        assert!(e.contains("no process with PID"), "{e}");
        let e = Namespace::resolve("..").unwrap_err();
        assert!(e.contains("not a container"), "{e}");
    }
}

//! A real Docker engine (Debian's `docker.io`) for the tests that are about
//! Docker: a private `dockerd` (its own data root, exec root, socket and
//! pid file; no iptables, no bridge), and a tiny image made by
//! `docker import` of Debian's static busybox, since no registry can be
//! reached. Containers run with `--network none`. Everything is removed on
//! drop, also when a test panics.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::cmd::{run, spawn_tied, Output};
use crate::names;
use crate::poll::wait_until;

pub const DOCKERD: &str = "/usr/sbin/dockerd";
pub const BUSYBOX: &str = "/bin/busybox";
/// The image every test container runs.
pub const IMAGE: &str = "vswitch-test/busybox:1";

pub struct Docker {
    dir: PathBuf,
    child: Option<Child>,
    containers: Vec<String>,
}

impl Docker {
    /// Starts a private engine and imports the busybox image.
    pub fn start() -> Docker {
        for bin in [DOCKERD, BUSYBOX] {
            assert!(
                std::path::Path::new(bin).exists(),
                "{bin} is missing: install docker.io and busybox-static (scripts/test.sh does)"
            );
        }
        let dir = std::env::temp_dir().join(names::unique("dk"));
        std::fs::create_dir_all(&dir).expect("docker dir");
        let log = std::fs::File::create(dir.join("dockerd.log")).expect("dockerd log");
        let mut cmd = Command::new(DOCKERD);
        cmd.arg("--data-root")
            .arg(dir.join("data"))
            .arg("--exec-root")
            .arg(dir.join("exec"))
            .arg("-H")
            .arg(format!("unix://{}", dir.join("docker.sock").display()))
            .arg("--pidfile")
            .arg(dir.join("docker.pid"))
            .args(["--iptables=false", "--ip-forward=false", "--ip-masq=false"])
            .args(["--bridge=none"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        let child = spawn_tied(&mut cmd).expect("start dockerd");
        let mut d = Docker {
            dir,
            child: Some(child),
            containers: Vec::new(),
        };
        let up = wait_until(Duration::from_secs(60), || d.docker(&["info"]).success());
        assert!(up, "dockerd did not start:\n{}", d.log());
        d.import_busybox();
        d
    }

    /// `unix://SOCKET` of this engine, for `DOCKER_HOST`.
    pub fn host(&self) -> String {
        format!("unix://{}", self.dir.join("docker.sock").display())
    }

    /// `docker ARGS` against this engine.
    pub fn docker(&self, args: &[&str]) -> Output {
        let mut c = Command::new("docker");
        c.env("DOCKER_HOST", self.host()).args(args);
        run(c, Duration::from_secs(60))
    }

    fn docker_ok(&self, args: &[&str]) -> String {
        let out = self.docker(args);
        assert!(out.success(), "{out}\n{}", self.log());
        out.stdout.trim().to_string()
    }

    fn import_busybox(&mut self) {
        let root = self.dir.join("image");
        let bin = root.join("bin");
        std::fs::create_dir_all(&bin).expect("image dir");
        std::fs::copy(BUSYBOX, bin.join("busybox")).expect("copy busybox");
        for tool in ["sh", "ip", "ping", "nc", "sleep", "cat", "ifconfig"] {
            let _ = std::os::unix::fs::symlink("busybox", bin.join(tool));
        }
        let tar = self.dir.join("image.tar");
        let mut c = Command::new("tar");
        c.arg("-C").arg(&root).arg("-cf").arg(&tar).arg(".");
        let out = run(c, Duration::from_secs(30));
        assert!(out.success(), "{out}");
        self.docker_ok(&["import", &tar.display().to_string(), IMAGE]);
    }

    /// Starts a container (`--network none`, running `sleep`) with a
    /// fresh name; returns the name.
    pub fn run_container(&mut self) -> String {
        let name = names::unique("dc");
        self.docker_ok(&[
            "run",
            "-d",
            "--network",
            "none",
            "--name",
            &name,
            IMAGE,
            "sleep",
            "3600",
        ]);
        self.containers.push(name.clone());
        name
    }

    /// The network namespace file of running container `name`.
    pub fn netns(&self, name: &str) -> PathBuf {
        let pid = self.docker_ok(&["inspect", "-f", "{{.State.Pid}}", name]);
        PathBuf::from(format!("/proc/{pid}/ns/net"))
    }

    /// `docker exec NAME ARGS`.
    pub fn exec(&self, name: &str, args: &[&str]) -> Output {
        let mut v = vec!["exec", name];
        v.extend_from_slice(args);
        self.docker(&v)
    }

    pub fn log(&self) -> String {
        let s = std::fs::read_to_string(self.dir.join("dockerd.log")).unwrap_or_default();
        let lines: Vec<&str> = s.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

impl Drop for Docker {
    fn drop(&mut self) {
        for c in std::mem::take(&mut self.containers) {
            let _ = self.docker(&["rm", "-f", &c]);
        }
        if let Some(mut child) = self.child.take() {
            // SIGTERM first: dockerd stops its containerd and shims.
            let _ = Command::new("kill").arg(child.id().to_string()).status();
            let stopped = wait_until(Duration::from_secs(15), || {
                matches!(child.try_wait(), Ok(Some(_)))
            });
            if !stopped {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        let _ = Command::new("umount")
            .arg("-R")
            .arg(self.dir.join("exec"))
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

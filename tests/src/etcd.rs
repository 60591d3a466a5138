//! A real etcd (Debian's `etcd-server`) for the cluster tests: one to
//! three members in a namespace of their own on the overlay fabric, at
//! 10.99.0.200 + member (client port 2379, peer port 2380). Members can be
//! killed and started again on their data; everything is removed on drop.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::cmd::{ip_ok, run, spawn_tied};
use crate::names;
use crate::netns::Netns;
use crate::overlay::{Fabric, OverlayHost, UNDERLAY_IF};
use crate::poll::wait_until;

pub const ETCD_BIN: &str = "/usr/bin/etcd";
pub const ETCDCTL_BIN: &str = "/usr/bin/etcdctl";

struct Member {
    name: String,
    ip: String,
    dir: PathBuf,
    child: Option<Child>,
}

pub struct Etcd {
    // Drop order: the members (killed in Drop), then the namespace.
    members: Vec<Member>,
    token: String,
    ns: Netns,
}

impl Etcd {
    /// Starts an `n`-member cluster (1 to 3) and waits until it answers.
    pub fn start(fabric: &Fabric, n: usize) -> Etcd {
        assert!(
            std::path::Path::new(ETCD_BIN).exists(),
            "{ETCD_BIN} is missing: install Debian's etcd-server (scripts/test.sh does)"
        );
        assert!((1..=3).contains(&n));
        let ns = OverlayHost::on_fabric(fabric, 200);
        let token = names::unique("e");
        let mut members = Vec::new();
        for i in 0..n {
            let ip = format!("10.99.0.{}", 200 + i);
            if i > 0 {
                ip_ok(&[
                    "-n",
                    ns.name(),
                    "addr",
                    "add",
                    &format!("{ip}/24"),
                    "dev",
                    UNDERLAY_IF,
                ]);
            }
            let dir = std::env::temp_dir().join(format!("{token}-m{i}"));
            let _ = std::fs::remove_dir_all(&dir);
            members.push(Member {
                name: format!("m{i}"),
                ip,
                dir,
                child: None,
            });
        }
        let mut e = Etcd { members, token, ns };
        for i in 0..n {
            e.spawn(i);
        }
        for i in 0..n {
            e.wait_healthy(i);
        }
        e
    }

    pub fn ns(&self) -> &str {
        self.ns.name()
    }

    /// `http://IP:2379` of every member, comma-separated.
    pub fn endpoints(&self) -> String {
        let v: Vec<String> = (0..self.members.len()).map(|i| self.endpoint(i)).collect();
        v.join(",")
    }

    pub fn endpoint(&self, i: usize) -> String {
        format!("http://{}:2379", self.members[i].ip)
    }

    fn spawn(&mut self, i: usize) {
        let cluster: Vec<String> = self
            .members
            .iter()
            .map(|m| format!("{}=http://{}:2380", m.name, m.ip))
            .collect();
        let m = &self.members[i];
        std::fs::create_dir_all(&m.dir).expect("etcd data dir");
        let log = std::fs::File::create(m.dir.with_extension("log")).expect("etcd log");
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", self.ns.name(), ETCD_BIN])
            .arg("--name")
            .arg(&m.name)
            .arg("--data-dir")
            .arg(m.dir.join("data"))
            .arg("--listen-client-urls")
            .arg(format!("http://{}:2379", m.ip))
            .arg("--advertise-client-urls")
            .arg(format!("http://{}:2379", m.ip))
            .arg("--listen-peer-urls")
            .arg(format!("http://{}:2380", m.ip))
            .arg("--initial-advertise-peer-urls")
            .arg(format!("http://{}:2380", m.ip))
            .arg("--initial-cluster")
            .arg(cluster.join(","))
            .arg("--initial-cluster-token")
            .arg(&self.token)
            .arg("--initial-cluster-state")
            .arg("new")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        let child = spawn_tied(&mut cmd).expect("start etcd");
        self.members[i].child = Some(child);
    }

    /// Waits until member `i` answers a health check through its own endpoint.
    pub fn wait_healthy(&self, i: usize) {
        let ep = self.endpoint(i);
        let ok = wait_until(Duration::from_secs(20), || {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", self.ns.name(), ETCDCTL_BIN])
                .args([
                    "--endpoints",
                    &ep,
                    "--command-timeout=1s",
                    "endpoint",
                    "health",
                ])
                .env("ETCDCTL_API", "3");
            run(c, Duration::from_secs(5)).success()
        });
        assert!(
            ok,
            "etcd member {i} at {ep} did not become healthy:\n{}",
            self.log(i)
        );
    }

    /// Kills member `i` (SIGKILL), keeping its data.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.members[i].child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts member `i` again on its data and waits until it answers.
    pub fn restart(&mut self, i: usize) {
        self.kill(i);
        self.spawn(i);
        self.wait_healthy(i);
    }

    /// `etcdctl ARGS` against member `i`; panics on failure.
    pub fn etcdctl(&self, i: usize, args: &[&str]) -> String {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", self.ns.name(), ETCDCTL_BIN])
            .args(["--endpoints", &self.endpoint(i)])
            .args(args)
            .env("ETCDCTL_API", "3");
        let out = run(c, Duration::from_secs(10));
        assert!(out.success(), "{out}");
        out.stdout
    }

    /// Compacts away every revision before the current one, so a watch
    /// from an older revision is refused.
    pub fn compact(&self, i: usize) -> i64 {
        let status = self.etcdctl(i, &["endpoint", "status", "-w", "json"]);
        let v: serde_json::Value = serde_json::from_str(&status).expect("etcdctl status JSON");
        let rev = v[0]["Status"]["header"]["revision"]
            .as_i64()
            .unwrap_or_else(|| panic!("no revision in {status}"));
        self.etcdctl(i, &["compact", &rev.to_string(), "--physical"]);
        rev
    }

    pub fn log(&self, i: usize) -> String {
        let s =
            std::fs::read_to_string(self.members[i].dir.with_extension("log")).unwrap_or_default();
        let lines: Vec<&str> = s.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        for i in 0..self.members.len() {
            self.kill(i);
            let m = &self.members[i];
            let _ = std::fs::remove_dir_all(&m.dir);
            let _ = std::fs::remove_file(m.dir.with_extension("log"));
        }
    }
}

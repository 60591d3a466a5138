//! Open vSwitch's own `ovs-docker` script (Debian's openvswitch-common),
//! unmodified, against real Docker containers (a private dockerd started
//! by the test) and vswitchd under the `ovs-vsctl` name: add-port with
//! address, MAC, MTU and gateway, traffic between the containers, set-vlan,
//! del-port and del-ports. And `vswctl attach` by Docker container name,
//! with the Docker settings of the user who runs vswctl.

use std::os::unix::fs::symlink;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use tests::cmd::{run, Output};
use tests::container::{tcp_transfer, Container};
use tests::docker::Docker;
use tests::poll::wait_until;
use tests::{names, Daemon};

const OVS_DOCKER: &str = "/usr/bin/ovs-docker";

/// A directory with `ovs-vsctl` linked to vswctl, first on ovs-docker's PATH.
struct Shim(PathBuf);

impl Shim {
    fn new(d: &Daemon) -> Shim {
        let dir = std::env::temp_dir().join(names::unique("od"));
        std::fs::create_dir_all(&dir).expect("shim dir");
        symlink(&d.bins().vswctl, dir.join("ovs-vsctl")).expect("ovs-vsctl link");
        Shim(dir)
    }
}

impl Drop for Shim {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn ovs_docker(shim: &Shim, d: &Daemon, docker: &Docker, args: &[&str]) -> Output {
    assert!(
        std::path::Path::new(OVS_DOCKER).exists(),
        "{OVS_DOCKER} is missing: install openvswitch-common (scripts/test.sh does)"
    );
    let path = format!(
        "{}:{}",
        shim.0.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut c = Command::new(OVS_DOCKER);
    c.args(args)
        .env("PATH", path)
        .env("VSWITCH_RUNDIR", d.rundir())
        .env("DOCKER_HOST", docker.host());
    run(c, Duration::from_secs(60))
}

/// `vswctl ARGS` against `d` with DOCKER_HOST set to `docker_host` (or
/// unset), whatever the test's own environment says.
fn vswctl_with_docker(d: &Daemon, docker_host: Option<&str>, args: &[&str]) -> Output {
    let mut c = d.bins().vswctl_command();
    c.arg("--rundir").arg(d.rundir()).args(args);
    c.env_remove("DOCKER_HOST").env_remove("DOCKER_CONTEXT");
    if let Some(h) = docker_host {
        c.env("DOCKER_HOST", h);
    }
    run(c, Duration::from_secs(30))
}

#[test]
fn ovs_docker_runs_unmodified_against_real_containers() {
    let mut docker = Docker::start();
    let d = Daemon::start();
    let shim = Shim::new(&d);
    let (c1, c2) = (docker.run_container(), docker.run_container());
    let br = names::unique("br");
    let ok = |args: &[&str]| {
        let out = ovs_docker(&shim, &d, &docker, args);
        assert!(
            out.success(),
            "ovs-docker {args:?}:\n{out}\n{}",
            d.log_tail(20)
        );
    };
    ok(&[
        "add-port",
        &br,
        "eth1",
        &c1,
        "--ipaddress=10.88.0.1/24",
        "--macaddress=02:88:00:00:00:01",
        "--mtu=1400",
    ]);
    ok(&[
        "add-port",
        &br,
        "eth1",
        &c2,
        "--ipaddress=10.88.0.2/24",
        "--gateway=10.88.0.254",
    ]);
    assert_eq!(d.vsctl_ok(&["list-ports", &br]).lines().count(), 2);

    let link = docker.exec(&c1, &["ip", "addr", "show", "eth1"]);
    assert!(link.success(), "{link}");
    for want in ["mtu 1400", "02:88:00:00:00:01", "10.88.0.1/24"] {
        assert!(link.stdout.contains(want), "{want} in {link}");
    }
    let routes = docker.exec(&c2, &["ip", "route"]);
    assert!(
        routes.stdout.contains("default via 10.88.0.254"),
        "{routes}"
    );

    let ping = |from: &str, to: &str| {
        docker
            .exec(from, &["ping", "-c", "1", "-W", "1", to])
            .success()
    };
    assert!(
        wait_until(Duration::from_secs(10), || ping(&c1, "10.88.0.2")),
        "c1 cannot reach c2\n{}",
        d.log_tail(20)
    );
    assert!(ping(&c2, "10.88.0.1"));

    // The same interface twice is refused by ovs-docker's own lookup.
    let out = ovs_docker(&shim, &d, &docker, &["add-port", &br, "eth1", &c1]);
    assert!(
        !out.success() && out.stderr.contains("already attached"),
        "{out}"
    );

    // set-vlan finds the port and tags it: apart until both are in VLAN 5.
    ok(&["set-vlan", &br, "eth1", &c1, "5"]);
    assert!(
        !ping(&c1, "10.88.0.2"),
        "VLAN 5 reached the untagged container"
    );
    ok(&["set-vlan", &br, "eth1", &c2, "5"]);
    assert!(wait_until(Duration::from_secs(5), || ping(
        &c1,
        "10.88.0.2"
    )));
    let tags = d.vsctl_ok(&["find", "port", "tag=5"]);
    assert_eq!(tags.matches("name ").count(), 2, "{tags}");

    ok(&["del-port", &br, "eth1", &c1]);
    assert_eq!(d.vsctl_ok(&["list-ports", &br]).lines().count(), 1);
    assert!(!docker.exec(&c1, &["ip", "link", "show", "eth1"]).success());
    ok(&["del-ports", &br, &c2]);
    assert_eq!(d.vsctl_ok(&["list-ports", &br]), "");
}

/// The daemon's environment has no DOCKER_HOST (its Docker would be the
/// system's, which is not running); vswctl's has the test engine's. attach
/// and detach by container name use vswctl's.
#[test]
fn attach_by_docker_name_uses_the_clients_docker_settings() {
    let mut docker = Docker::start();
    let d = Daemon::start();
    let (c1, c2) = (docker.run_container(), docker.run_container());
    let br = names::unique("br");
    d.vsctl_ok(&["add-br", &br]);
    let vswctl = |args: &[&str], host: Option<&str>| vswctl_with_docker(&d, host, args);
    let host = docker.host();
    // Without the client's setting the name is unknown to the system's Docker.
    let out = vswctl(&["attach", &br, &c1, "10.89.0.1/24"], None);
    assert!(!out.success() && out.stderr.contains("Docker"), "{out}");
    for (c, ip) in [(&c1, "10.89.0.1/24"), (&c2, "10.89.0.2/24")] {
        let out = vswctl(&["attach", &br, c, ip], Some(&host));
        assert!(out.success(), "{out}\n{}", d.log_tail(20));
    }
    let ping = || {
        docker
            .exec(&c1, &["ping", "-c", "1", "-W", "1", "10.89.0.2"])
            .success()
    };
    assert!(
        wait_until(Duration::from_secs(10), ping),
        "{}",
        d.log_tail(20)
    );
    let list = d.vsctl_ok(&["list-attachments", &br]);
    assert!(list.contains(&c1) && list.contains(&c2), "{list}");
    let out = vswctl(&["detach", &br, &c1], Some(&host));
    assert!(out.success(), "{out}");
    assert!(!docker.exec(&c1, &["ip", "link", "show", "eth1"]).success());
}

/// pipework's oldest wish: an attachment by Docker name survives `docker
/// stop` / `docker start` and `docker restart`; the container gets its
/// interface back with the same MAC and address, and `docker rm` ends it.
#[test]
fn a_tap_attachment_follows_its_container_across_stop_start_and_restart() {
    follows_its_container("tap", "tun");
}

#[test]
fn a_veth_attachment_follows_its_container_across_stop_start_and_restart() {
    follows_its_container("veth", "veth");
}

/// Attaches two containers with `--type kind` and stops, starts and
/// restarts the first: its interface (of `ip -d link` kind `link_kind`)
/// comes back each time with its MAC, address and route.
fn follows_its_container(kind: &str, link_kind: &str) {
    let mut docker = Docker::start();
    let d = Daemon::start();
    let (c1, c2) = (docker.run_container(), docker.run_container());
    let br = names::unique("br");
    d.vsctl_ok(&["add-br", &br]);
    let host = docker.host();
    let attach = |c: &str, ip: &str| {
        let args = ["attach", &br, c, ip, "--type", kind];
        let out = vswctl_with_docker(&d, Some(&host), &args);
        assert!(out.success(), "{out}\n{}", d.log_tail(20));
    };
    attach(&c1, "10.90.0.1/24@10.90.0.254");
    attach(&c2, "10.90.0.2/24");
    let ping = || {
        docker
            .exec(&c2, &["ping", "-c", "1", "-W", "1", "10.90.0.1"])
            .success()
    };
    assert!(wait_until(Duration::from_secs(10), ping));
    let link = |c: &str| docker.exec(c, &["ip", "addr", "show", "eth1"]).stdout;
    let before = link(&c1);
    let mac = before
        .split_whitespace()
        .skip_while(|w| *w != "link/ether")
        .nth(1)
        .expect("a MAC")
        .to_string();

    for step in [
        &["stop", "-t", "0"][..],
        &["start"][..],
        &["restart", "-t", "0"][..],
    ] {
        let mut args = step.to_vec();
        args.push(&c1);
        assert!(docker.docker(&args).success(), "docker {args:?}");
        if step[0] == "stop" {
            // The port waits for the container.
            std::thread::sleep(Duration::from_secs(2));
            assert!(d.vsctl_ok(&["list-attachments", &br]).contains(&c1));
            continue;
        }
        let back = wait_until(Duration::from_secs(15), || {
            let l = link(&c1);
            l.contains(&mac) && l.contains("10.90.0.1/24")
        });
        assert!(
            back,
            "after docker {step:?}: {}\n{}",
            link(&c1),
            d.log_tail(20)
        );
        let routes = docker.exec(&c1, &["ip", "route"]).stdout;
        assert!(routes.contains("default via 10.90.0.254"), "{routes}");
        let ns = format!("--net={}", docker.netns(&c1).display());
        let detail = std::process::Command::new("nsenter")
            .args([ns.as_str(), "ip", "-d", "link", "show", "eth1"])
            .output()
            .expect("nsenter");
        let detail = String::from_utf8_lossy(&detail.stdout);
        assert!(
            detail
                .lines()
                .nth(2)
                .is_some_and(|l| l.trim().starts_with(link_kind)),
            "after docker {step:?}, not a {link_kind}: {detail}"
        );
        assert!(
            wait_until(Duration::from_secs(10), ping),
            "after docker {step:?}"
        );
    }
    // Removed from Docker: the attachment goes.
    assert!(docker.docker(&["rm", "-f", &c1]).success());
    assert!(
        wait_until(Duration::from_secs(10), || !d
            .vsctl_ok(&["list-attachments", &br])
            .contains(&c1)),
        "{}",
        d.log_tail(20)
    );
}

/// Docker containers attached by name with TAP ports (the virtio-net
/// header, super-frames): TCP with verified bytes between them.
#[test]
fn docker_containers_on_tap_ports_carry_tcp() {
    let mut docker = Docker::start();
    let d = Daemon::start();
    let (c1, c2) = (docker.run_container(), docker.run_container());
    let br = names::unique("br");
    d.vsctl_ok(&["add-br", &br]);
    for (c, ip) in [(&c1, "10.91.0.1/24"), (&c2, "10.91.0.2/24")] {
        let args = ["attach", &br, c, ip, "--type", "tap"];
        let out = vswctl_with_docker(&d, Some(&docker.host()), &args);
        assert!(out.success(), "{out}\n{}", d.log_tail(20));
    }
    let show = d.vsctl_ok(&["show"]);
    assert_eq!(show.matches("type: tap").count(), 2, "{show}");
    let (n1, n2) = (
        Container::at(docker.netns(&c1)),
        Container::at(docker.netns(&c2)),
    );
    let ip2 = "10.91.0.2".parse().unwrap();
    assert!(
        n1.wait_ping(ip2, Duration::from_secs(10)),
        "{}",
        d.log_tail(20)
    );
    tcp_transfer(&n1, &n2, ip2, 16 << 20).expect("TCP between the TAP containers");
}

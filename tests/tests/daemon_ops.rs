//! Running vswitchd under a service manager (issue 11): SIGHUP reopens the
//! log and the daemon goes on; the database is locked against a second
//! daemon and defaults to the run directory when that is not the default;
//! the `ovs-appctl` name answers Open vSwitch's runtime commands.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;
use tests::daemon::Bins;
use tests::names::unique;
use tests::poll::wait_until;

/// A detached daemon in a fresh run directory, stopped and removed on drop.
struct Detached {
    bins: Bins,
    rundir: PathBuf,
    bridge: String,
}

impl Detached {
    fn start() -> Detached {
        let bins = Bins::locate().expect("binaries");
        let rundir = std::env::temp_dir().join(unique("run"));
        let out = Command::new(&bins.vswitchd)
            .args(["--detach", "--pmd-cpus", "1", "--rundir"])
            .arg(&rundir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "vswitchd --detach: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let d = Detached {
            bins,
            rundir,
            bridge: unique("br"),
        };
        d.vswctl(&["add-br", &d.bridge]);
        d
    }

    fn pid(&self) -> i32 {
        std::fs::read_to_string(self.rundir.join("vswitchd.pid"))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    }

    fn run(&self, program: &Path, args: &[&str]) -> Output {
        Command::new(program)
            .env("VSWITCH_RUNDIR", &self.rundir)
            .args(args)
            .output()
            .unwrap()
    }

    fn vswctl(&self, args: &[&str]) -> String {
        let out = self.run(&self.bins.vswctl, args);
        assert!(
            out.status.success(),
            "vswctl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn log(&self) -> PathBuf {
        self.rundir.join("vswitchd.log")
    }

    /// Moves the log away (as logrotate does), runs `reopen`, and waits for
    /// the new file to say it was reopened.
    fn rotate(&self, reopen: impl FnOnce()) {
        let old = self.rundir.join(format!("{}.1", unique("log")));
        std::fs::rename(self.log(), &old).unwrap();
        reopen();
        let ok = wait_until(Duration::from_secs(5), || {
            std::fs::read_to_string(self.log()).is_ok_and(|l| l.contains("reopened"))
        });
        assert!(ok, "no new log file after the reopen");
    }
}

impl Drop for Detached {
    fn drop(&mut self) {
        if let Ok(pid) = std::fs::read_to_string(self.rundir.join("vswitchd.pid")) {
            if let Ok(pid) = pid.trim().parse::<i32>() {
                // SAFETY: kill(2) on the daemon this test started.
                unsafe { libc::kill(pid, libc::SIGTERM) };
                wait_until(Duration::from_secs(5), || {
                    // SAFETY: signal 0 only checks that the process exists.
                    unsafe { libc::kill(pid, 0) != 0 }
                });
            }
        }
        let _ = std::fs::remove_dir_all(&self.rundir);
    }
}

#[test]
fn sighup_reopens_the_log_and_the_daemon_goes_on() {
    let d = Detached::start();
    let pid = d.pid();
    // SAFETY: kill(2) on the daemon this test started.
    d.rotate(|| unsafe {
        libc::kill(pid, libc::SIGHUP);
    });
    assert!(
        d.vswctl(&["list-br"]).contains(&d.bridge),
        "the daemon answers after SIGHUP"
    );
    assert_eq!(d.pid(), pid, "the same daemon");
}

#[test]
fn the_database_is_beside_the_run_directory_and_locked() {
    let d = Detached::start();
    let db = d.rundir.join("conf.db");
    assert!(
        db.exists(),
        "with --rundir and no --db the database is RUNDIR/conf.db"
    );
    let other = std::env::temp_dir().join(unique("run"));
    let out = Command::new(&d.bins.vswitchd)
        .args(["--pmd-cpus", "1", "--rundir"])
        .arg(&other)
        .arg("--db")
        .arg(&db)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&other);
    assert!(
        !out.status.success(),
        "a second daemon on the same database started"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("in use by another vswitchd"), "{err}");
    assert!(
        d.vswctl(&["list-br"]).contains(&d.bridge),
        "the first daemon lost nothing"
    );
}

#[test]
fn ovs_appctl_answers_the_everyday_runtime_commands() {
    let d = Detached::start();
    let appctl = d.rundir.join("ovs-appctl");
    std::os::unix::fs::symlink(&d.bins.vswctl, &appctl).unwrap();
    let ok = |args: &[&str]| -> String {
        let out = d.run(&appctl, args);
        assert!(
            out.status.success(),
            "ovs-appctl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert!(ok(&["fdb/show", &d.bridge]).starts_with(" port  VLAN  MAC"));
    assert!(ok(&["dpif-netdev/pmd-stats-show"]).contains("pmd thread"));
    assert!(ok(&["dpif-netdev/pmd-rxq-show"]).contains("pmd thread"));
    ok(&["-t", "ovs-vswitchd", "fdb/flush", &d.bridge]);
    ok(&["vlog/set", "ANY:file:dbg"]);
    assert_eq!(ok(&["vlog/list"]).trim(), "vswitchd: debug");
    ok(&["vlog/set", "info"]);
    assert_eq!(ok(&["vlog/list"]).trim(), "vswitchd: info");
    d.rotate(|| {
        ok(&["vlog/reopen"]);
    });
    let out = d.run(&appctl, &["ofproto/bogus"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a valid command"));
    let out = d.run(&appctl, &["vlog/set", "loud"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn add_port_warns_of_a_missing_device_and_refuses_a_device_another_switch_serves() {
    let d1 = tests::Daemon::start();
    let d2 = tests::Daemon::start();
    let (br1, br2) = (unique("br"), unique("br"));
    d1.vsctl_ok(&["add-br", &br1]);
    d2.vsctl_ok(&["add-br", &br2]);

    // Missing: kept, with a warning on stderr at once.
    let ghost = unique("gh");
    let out = d1.vsctl(&["add-port", &br1, &ghost]);
    assert!(out.success(), "{out}");
    assert!(
        out.stderr.contains("warning: port")
            && out
                .stderr
                .contains("comes up when the device can be opened"),
        "{out}"
    );
    assert!(d1.vsctl_ok(&["list-ports", &br1]).contains(&ghost));

    // Busy: d1 serves the device through AF_XDP; d2 must not take it over.
    let h = tests::Host::new(1);
    d1.vsctl_ok(&["add-port", &br1, h.port()]);
    let out = d2.vsctl(&["add-port", &br2, h.port()]);
    assert!(!out.success(), "a second switch took the device: {out}");
    assert!(
        out.stderr.contains("another switch serves this device"),
        "{out}"
    );
    assert!(out.stderr.contains("nothing was changed"), "{out}");
    assert_eq!(
        d2.vsctl_ok(&["list-ports", &br2]),
        "",
        "the refused port is not stored"
    );
    let show = d1.vsctl_json(&["show"]);
    assert!(
        show.to_string().contains(h.port()),
        "d1 still has it: {show}"
    );
}

#[test]
fn vswctl_refuses_a_socket_someone_else_owns() {
    let bins = Bins::locate().expect("binaries");
    let dir = std::env::temp_dir().join(unique("run"));
    std::fs::create_dir_all(&dir).unwrap();
    let sock = dir.join("vswitchd.sock");
    let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    std::os::unix::fs::chown(&sock, Some(65534), Some(65534)).unwrap();
    let out = Command::new(&bins.vswctl)
        .arg("--rundir")
        .arg(&dir)
        .arg("show")
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("belongs to uid 65534"), "{err}");
}

#[test]
fn vswitchd_tells_systemd_when_it_is_ready() {
    let bins = Bins::locate().expect("binaries");
    let dir = std::env::temp_dir().join(unique("run"));
    std::fs::create_dir_all(&dir).unwrap();
    let notify = dir.join("notify.sock");
    let sock = std::os::unix::net::UnixDatagram::bind(&notify).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut child = Command::new(&bins.vswitchd)
        .args(["--pmd-cpus", "1", "--rundir"])
        .arg(dir.join("run"))
        .env("NOTIFY_SOCKET", &notify)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut buf = [0u8; 256];
    let got = sock
        .recv(&mut buf)
        .map(|n| String::from_utf8_lossy(&buf[..n]).into_owned());
    let accepting = std::os::unix::net::UnixStream::connect(dir.join("run/vswitchd.sock")).is_ok();
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    let got = got.expect("no readiness message within 10 s");
    assert!(got.contains("READY=1"), "{got}");
    assert!(accepting, "READY=1 came before the control socket accepted");
}

#[test]
fn install_puts_everything_in_place_and_uninstall_takes_it_away() {
    let bins = Bins::locate().expect("binaries");
    let dest = std::env::temp_dir().join(unique("ins"));
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/install.sh");
    let bin_dir = bins.vswctl.parent().unwrap();
    let run = |args: &[&str]| {
        let out = Command::new("bash")
            .arg(&script)
            .args(args)
            .env("DESTDIR", &dest)
            .env("BIN_DIR", bin_dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "install.sh {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&[]);
    let files = [
        "usr/local/sbin/vswitchd",
        "usr/local/bin/vswctl",
        "usr/local/bin/ovs-vsctl",
        "usr/local/bin/ovs-appctl",
        "etc/systemd/system/vswitchd.service",
        "usr/local/share/man/man8/vswitchd.8",
        "usr/local/share/man/man8/vswctl.8",
        "usr/local/share/bash-completion/completions/vswctl",
        "usr/local/share/bash-completion/completions/vswitchd",
        "usr/local/share/zsh/site-functions/_vswctl",
        "usr/local/share/fish/vendor_completions.d/vswitchd.fish",
    ];
    for f in files {
        assert!(dest.join(f).exists(), "{f} is not installed");
    }
    let share = dest.join("usr/local/share");
    for (page, option) in [("vswctl", "\\-\\-rundir"), ("vswitchd", "\\-\\-pmd\\-cpus")] {
        let roff = std::fs::read_to_string(share.join(format!("man/man8/{page}.8"))).unwrap();
        assert!(
            roff.contains(&format!(".TH {page} 8")) && roff.contains(option),
            "{page}.8:\n{roff}"
        );
    }
    // bash completes a command name from the installed script.
    let completed = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "source {}; COMP_WORDS=(vswctl add-b); COMP_CWORD=1; _vswctl vswctl add-b vswctl; \
             echo \"${{COMPREPLY[@]}}\"",
            share.join("bash-completion/completions/vswctl").display()
        ))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&completed.stdout).trim(), "add-br");
    let unit = std::fs::read_to_string(dest.join("etc/systemd/system/vswitchd.service")).unwrap();
    assert!(unit.contains("Type=notify") && unit.contains("ExecStart=/usr/local/sbin/vswitchd"));
    let out = Command::new(dest.join("usr/local/bin/ovs-appctl"))
        .arg("version")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("vswitch"));
    run(&["--uninstall"]);
    for f in files {
        assert!(
            !dest.join(f).exists() && std::fs::symlink_metadata(dest.join(f)).is_err(),
            "{f} is left"
        );
    }
    let _ = std::fs::remove_dir_all(&dest);
}

#[test]
fn run_sh_without_cargo_says_how_to_get_it() {
    // A PATH with only what run.sh needs before it looks for cargo.
    let path = std::env::temp_dir().join(unique("pth"));
    std::fs::create_dir_all(&path).unwrap();
    for tool in ["id", "dirname"] {
        let real = ["/usr/bin", "/bin"]
            .iter()
            .map(|d| Path::new(d).join(tool))
            .find(|p| p.exists())
            .unwrap();
        std::os::unix::fs::symlink(real, path.join(tool)).unwrap();
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/run.sh");
    let out = Command::new("/bin/bash")
        .arg(&script)
        .env("PATH", &path)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&path);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("cargo is missing") && err.contains("rustup"),
        "{err}"
    );
}

#[test]
fn metrics_are_served_as_openmetrics() {
    let ns = tests::netns::Netns::create();
    let lo = Command::new("ip")
        .args(["-n", ns.name(), "link", "set", "lo", "up"])
        .status()
        .unwrap();
    assert!(lo.success());
    let d = tests::Daemon::start_with(tests::DaemonOptions {
        netns: Some(ns.name().to_string()),
        extra_args: vec!["--metrics".into(), "127.0.0.1:9477".into()],
        ..Default::default()
    });
    let br = unique("br");
    d.vsctl_ok(&["add-br", &br]);
    let scrape = |path: &str| -> String {
        let py = format!(
            "import urllib.request,sys\n\
             try:\n r=urllib.request.urlopen('http://127.0.0.1:9477{path}',timeout=5)\n \
             print(r.status);print(r.headers['Content-Type']);print(r.read().decode())\n\
             except urllib.error.HTTPError as e:\n print(e.code)"
        );
        let out = Command::new("ip")
            .args(["netns", "exec", ns.name(), "python3", "-c", &py])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let body = scrape("/metrics");
    assert!(
        body.starts_with("200\napplication/openmetrics-text"),
        "{body}"
    );
    for want in [
        format!("vswitch_port_rx_packets_total{{bridge=\"{br}\",port=\"{br}\"}} "),
        "vswitch_pmd_busy_cycles_total{pmd=\"0\"} ".to_string(),
        format!("vswitch_mac_table_entries{{bridge=\"{br}\"}} 0"),
        "vswitch_conntrack_entries 0".to_string(),
        "# EOF".to_string(),
    ] {
        assert!(body.contains(&want), "no {want:?} in:\n{body}");
    }
    assert!(scrape("/nothing").starts_with("404"));
}

#[test]
fn log_file_takes_the_log_and_add_br_keeps_off_foreign_devices() {
    let dir = std::env::temp_dir().join(unique("run"));
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("custom.log");
    let d = tests::Daemon::start_with(tests::DaemonOptions {
        extra_args: vec!["--log-file".into(), log.display().to_string()],
        ..Default::default()
    });
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        text.contains("vswitchd") && text.contains("starting"),
        "{text}"
    );
    // RFC 3339 times.
    let first = text.lines().next().unwrap_or_default();
    assert!(
        first.len() > 24 && &first[4..5] == "-" && &first[10..11] == "T" && &first[23..24] == "Z",
        "{first}"
    );
    // A device of the bridge's name that someone else made is not taken.
    let (name, peer) = (unique("dm"), unique("dp"));
    let ok = Command::new("ip")
        .args(["link", "add", &name, "type", "veth", "peer", "name", &peer])
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let out = d.vsctl(&["add-br", &name]);
    let _ = Command::new("ip").args(["link", "del", &name]).status();
    assert!(!out.success(), "{out}");
    assert!(out.stderr.contains("a network device named"), "{out}");
    assert_eq!(d.vsctl_ok(&["list-br"]), "");
    drop(d);
    let _ = std::fs::remove_dir_all(&dir);
}

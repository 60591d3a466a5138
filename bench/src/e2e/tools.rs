//! The programs the benchmark drives, installing the missing ones with
//! apt-get when run as root, and a description of the machine.

use super::cmd::{self, run};
use super::json::Value;
use super::sys;
use std::path::Path;
use std::time::Duration;

/// (program, Debian package).
const NEEDED: &[(&str, &str)] = &[
    ("ip", "iproute2"),
    ("ss", "iproute2"),
    ("trafgen", "netsniff-ng"),
    ("iperf3", "iperf3"),
    ("ethtool", "ethtool"),
    ("nft", "nftables"),
    ("ping", "iputils-ping"),
    ("taskset", "util-linux"),
    ("sysctl", "procps"),
];
const PERF: (&str, &str) = ("perf", "linux-perf");

/// Makes sure the sbin directories are searched (the tools live there and
/// `ip netns exec` finds them through PATH).
pub fn fix_path() {
    let path = std::env::var("PATH").unwrap_or_default();
    let mut dirs: Vec<&str> = path.split(':').filter(|d| !d.is_empty()).collect();
    for d in ["/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/bin", "/bin"] {
        if !dirs.contains(&d) {
            dirs.push(d);
        }
    }
    std::env::set_var("PATH", dirs.join(":"));
}

fn on_path(prog: &str) -> bool {
    std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .any(|d| Path::new(d).join(prog).is_file())
}

/// Checks for every program; when some are missing, installs their
/// packages (root and `install`) or says which command would.
pub fn ensure(install: bool, want_perf: bool) -> Result<(), String> {
    let mut need: Vec<(&str, &str)> = NEEDED.to_vec();
    if want_perf {
        need.push(PERF);
    }
    let missing: Vec<(&str, &str)> = need.into_iter().filter(|(p, _)| !on_path(p)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    let mut pkgs: Vec<&str> = missing.iter().map(|(_, p)| *p).collect();
    pkgs.dedup();
    let progs: Vec<&str> = missing.iter().map(|(p, _)| *p).collect();
    let hint = format!("apt-get install -y {}", pkgs.join(" "));
    if !install || !sys::is_root() {
        return Err(format!(
            "missing programs: {} -- install them with `{hint}`",
            progs.join(", ")
        ));
    }
    eprintln!("installing missing programs ({}): {hint}", progs.join(", "));
    let mut args = vec!["install", "-y", "--no-install-recommends"];
    args.extend(&pkgs);
    let limit = Duration::from_secs(600);
    let mut out = run("apt-get", &args, limit)?;
    if !out.success() {
        // A fresh machine may have no package lists yet.
        run("apt-get", &["update"], limit)?;
        out = run("apt-get", &args, limit)?;
    }
    let still: Vec<&str> = progs.into_iter().filter(|p| !on_path(p)).collect();
    if !out.success() || !still.is_empty() {
        return Err(format!(
            "could not install {}: {}",
            still.join(", "),
            out.describe()
        ));
    }
    Ok(())
}

/// nproc, CPU model, kernel and tool versions, for the report.
pub fn machine() -> Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, m)| m.trim().to_string())
        .unwrap_or_default();
    let first_line = |prog: &str, arg: &str| {
        run(prog, &[arg], cmd::ADMIN)
            .map(|o| {
                let text = if o.stdout.trim().is_empty() {
                    o.stderr
                } else {
                    o.stdout
                };
                text.lines().next().unwrap_or("").trim().to_string()
            })
            .unwrap_or_default()
    };
    let read = |p: &str| {
        std::fs::read_to_string(p)
            .map(|s| s.trim().to_string())
            .unwrap_or_default()
    };
    Value::obj(vec![
        (
            "nproc",
            Value::Num(std::thread::available_parallelism().map_or(0, |n| n.get()) as f64),
        ),
        ("cpu_model", Value::str(model)),
        ("kernel", Value::str(read("/proc/sys/kernel/osrelease"))),
        (
            "kernel_version",
            Value::str(read("/proc/sys/kernel/version")),
        ),
        ("trafgen", Value::str(first_line("trafgen", "-v"))),
        ("iperf3", Value::str(first_line("iperf3", "-v"))),
        ("ping", Value::str(first_line("ping", "-V"))),
    ])
}

/// The git commit of the work tree the binaries were built from, if any.
pub fn git_commit(bin_dir: &Path) -> String {
    let dir = bin_dir.to_string_lossy().into_owned();
    let head = run(
        "git",
        &["-C", &dir, "rev-parse", "--short", "HEAD"],
        cmd::ADMIN,
    )
    .map(|o| o.stdout.trim().to_string())
    .unwrap_or_default();
    let dirty = run("git", &["-C", &dir, "status", "--porcelain"], cmd::ADMIN)
        .map(|o| !o.stdout.trim().is_empty())
        .unwrap_or(false);
    if head.is_empty() {
        "unknown".into()
    } else if dirty {
        format!("{head} (work tree has uncommitted changes)")
    } else {
        head
    }
}

//! The two switches under test, each connecting the lab's host-side veths:
//! [`Vswitchd`] (the daemon with one poll thread, ports added with plain
//! `add-port`, so AF_XDP in the mode the kernel picks: native on veth) and
//! [`KernelBridge`] (a Linux bridge with RPS moving its work to the
//! switch core). Both are torn down when dropped.

use super::cmd::{self, ip};
use super::json;
use super::lab::{write_sys, Lab, PREFIX};
use super::sys;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Per-interval counters of the daemon's poll threads (summed).
#[derive(Debug, Clone, Copy, Default)]
pub struct PmdStats {
    pub packets: u64,
    pub batches: u64,
    pub busy_cycles: u64,
    pub idle_cycles: u64,
    /// Part of `busy_cycles` in the transmit system calls.
    pub tx_cycles: u64,
    pub busy_ns: u64,
    pub sleeps: u64,
}

impl PmdStats {
    /// busy / (busy + idle) cycles, in percent.
    pub fn busy_pct(&self) -> Option<f64> {
        let all = self.busy_cycles + self.idle_cycles;
        (all > 0).then(|| 100.0 * self.busy_cycles as f64 / all as f64)
    }

    /// Busy cycles outside the transmit system calls, in percent of all:
    /// the switch's own work (and its receive-side system calls).
    pub fn busy_own_pct(&self) -> Option<f64> {
        let all = self.busy_cycles + self.idle_cycles;
        let own = self.busy_cycles.saturating_sub(self.tx_cycles);
        (all > 0).then(|| 100.0 * own as f64 / all as f64)
    }

    pub fn avg_batch(&self) -> Option<f64> {
        (self.batches > 0).then(|| self.packets as f64 / self.batches as f64)
    }

    pub fn ns_per_packet(&self) -> Option<f64> {
        (self.packets > 0).then(|| self.busy_ns as f64 / self.packets as f64)
    }
}

/// A running `vswitchd` of our own (own run directory and database),
/// stopped when dropped.
pub struct Vswitchd {
    pub pid: u32,
    vswctl: PathBuf,
    rundir: PathBuf,
    pub bridge: String,
    /// How each port was opened, from `vswctl show` (e.g. "system (afxdp native)").
    pub port_modes: Vec<(String, String)>,
}

impl Vswitchd {
    /// Starts the daemon with one poll thread on `pmd_cpu`, adds a bridge
    /// with the lab's two host-side veths, and waits until both ports are up.
    /// `extra`: further vswitchd arguments (--vswitchd-arg).
    pub fn start(
        bin_dir: &Path,
        lab: &Lab,
        pmd_cpu: usize,
        extra: &[String],
    ) -> Result<Vswitchd, String> {
        let rundir = lab.workdir.join("run");
        let _ = fs::remove_dir_all(&rundir);
        fs::create_dir_all(&rundir).map_err(|e| format!("create {}: {e}", rundir.display()))?;
        let daemon = bin_dir.join("vswitchd");
        let rd = rundir.to_string_lossy().into_owned();
        let db = rundir.join("conf.db").to_string_lossy().into_owned();
        let mut args = vec![
            "--rundir".to_string(),
            rd,
            "--db".into(),
            db,
            "--pmd-cpus".into(),
            pmd_cpu.to_string(),
            "--detach".into(),
        ];
        args.extend(extra.iter().cloned());
        let out = cmd::run(&daemon.to_string_lossy(), &args, Duration::from_secs(30))?;
        // Own the daemon as soon as it has a pid, even if it then failed.
        let pidfile = rundir.join("vswitchd.pid");
        let pid = fs::read_to_string(&pidfile)
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok());
        let mut sw = Vswitchd {
            pid: pid.unwrap_or(0),
            vswctl: bin_dir.join("vswctl"),
            rundir,
            bridge: format!("{PREFIX}{}v", lab.pid),
            port_modes: Vec::new(),
        };
        if !out.success() || pid.is_none() {
            return Err(format!(
                "vswitchd did not start: {} (pid file {})",
                out.describe(),
                pidfile.display()
            ));
        }
        let br = sw.bridge.clone();
        sw.vswctl(&[
            "add-br",
            &br,
            "--",
            "add-port",
            &br,
            &lab.host_a,
            "--",
            "add-port",
            &br,
            &lab.host_b,
        ])?;
        sw.wait_ports_up(&[&lab.host_a, &lab.host_b])?;
        Ok(sw)
    }

    /// Waits (up to 10 s) until `show` reports a type for every port and no
    /// error, and records how each port was opened.
    fn wait_ports_up(&mut self, ports: &[&str]) -> Result<(), String> {
        let end = Instant::now() + Duration::from_secs(10);
        loop {
            let show = self.vswctl(&["show"])?;
            let modes: Vec<(String, String)> = ports
                .iter()
                .filter_map(|p| port_type(&show, p).map(|t| (p.to_string(), t)))
                .collect();
            let up = modes.len() == ports.len() && !show.contains("error:");
            if up {
                self.port_modes = modes;
                return Ok(());
            }
            if Instant::now() > end {
                return Err(format!(
                    "vswitchd's ports did not come up within 10 s:\n{show}"
                ));
            }
            sys::sleep(Duration::from_millis(100))?;
        }
    }

    /// Runs `vswctl --rundir RUNDIR ARGS...`; must succeed.
    pub fn vswctl(&self, args: &[&str]) -> Result<String, String> {
        let rd = self.rundir.to_string_lossy().into_owned();
        let mut v = vec!["--rundir", rd.as_str()];
        v.extend_from_slice(args);
        cmd::run_ok(&self.vswctl.to_string_lossy(), &v)
    }

    pub fn pmd_clear(&self) -> Result<(), String> {
        self.vswctl(&["pmd/stats-clear"]).map(|_| ())
    }

    /// `pmd/stats-show`, summed over poll threads.
    pub fn pmd_stats(&self) -> Result<PmdStats, String> {
        let text = self.vswctl(&["--format", "json", "pmd/stats-show"])?;
        let v = json::parse(&text).map_err(|e| format!("pmd/stats-show: {e}: {text}"))?;
        let threads = v
            .as_array()
            .ok_or_else(|| format!("pmd/stats-show is not a list: {text}"))?;
        let mut s = PmdStats::default();
        for t in threads {
            let n = |k: &str| t.get(k).and_then(json::Value::as_f64).unwrap_or(0.0) as u64;
            s.packets += n("packets");
            s.batches += n("batches");
            s.busy_cycles += n("busy_cycles");
            s.idle_cycles += n("idle_cycles");
            s.tx_cycles += n("tx_cycles");
            s.busy_ns += n("busy_ns");
            s.sleeps += n("sleeps");
        }
        Ok(s)
    }

    /// `/proc/PID/task/TID` of the first poll thread, if it can be found.
    pub fn pmd_thread(&self) -> Option<String> {
        super::cpu::thread_path(self.pid, "pmd0")
    }
}

/// The `type:` line under `Interface NAME` in `vswctl show` output.
fn port_type(show: &str, name: &str) -> Option<String> {
    let mut lines = show.lines().map(str::trim);
    lines.find(|l| *l == format!("Interface {name}"))?;
    for l in lines {
        if let Some(t) = l.strip_prefix("type:") {
            return Some(t.trim().to_string());
        }
        if l.starts_with("Interface ") || l.starts_with("Port ") {
            break;
        }
    }
    None
}

impl Drop for Vswitchd {
    fn drop(&mut self) {
        if self.pid > 0 {
            // Its BPF links detach the XDP programs when it exits.
            sys::terminate(self.pid, Duration::from_secs(5));
        }
        let _ = fs::remove_dir_all(&self.rundir);
    }
}

/// A Linux bridge enslaving the lab's host-side veths, with RPS on their
/// receive queues; deleted (and RPS reset) when dropped.
pub struct KernelBridge<'a> {
    pub name: String,
    lab: &'a Lab,
}

impl<'a> KernelBridge<'a> {
    /// `rps_mask`: hex CPU mask for the host ends' rx-0 queues ("0": off).
    pub fn create(lab: &'a Lab, rps_mask: &str) -> Result<KernelBridge<'a>, String> {
        let name = format!("{PREFIX}{}k", lab.pid);
        ip(&["link", "add", &name, "type", "bridge"])?;
        let br = KernelBridge { name, lab };
        let n = &br.name;
        write_sys(&format!("/proc/sys/net/ipv6/conf/{n}/disable_ipv6"), "1")?;
        ip(&["link", "set", n, "up"])?;
        for host in [&lab.host_a, &lab.host_b] {
            ip(&["link", "set", host, "master", n])?;
        }
        // STP is off, so ports forward at once; wait for it anyway.
        let end = Instant::now() + Duration::from_secs(5);
        for host in [&lab.host_a, &lab.host_b] {
            let state = format!("/sys/class/net/{host}/brport/state");
            while fs::read_to_string(&state)
                .map(|s| s.trim() != "3")
                .unwrap_or(true)
            {
                if Instant::now() > end {
                    return Err(format!("bridge port {host} is not forwarding after 5 s"));
                }
                sys::sleep(Duration::from_millis(50))?;
            }
        }
        br.set_rps(rps_mask)?;
        Ok(br)
    }

    pub fn set_rps(&self, mask: &str) -> Result<(), String> {
        self.lab.set_rps(mask)
    }
}

impl Drop for KernelBridge<'_> {
    fn drop(&mut self) {
        let _ = self.lab.set_rps("0");
        cmd::ip_cleanup(&["link", "del", &self.name]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_types_from_show() {
        let show = "vswitchd (pid 1980)\n    Bridge b\n        Port b\n            Interface b\n\
                    \x20               type: internal\n        Port x\n            Interface x\n\
                    \x20               type: system (afxdp native)\n        Port y\n\
                    \x20           Interface y\n";
        assert_eq!(
            port_type(show, "x").as_deref(),
            Some("system (afxdp native)")
        );
        assert_eq!(port_type(show, "b").as_deref(), Some("internal"));
        assert_eq!(port_type(show, "y"), None);
        assert_eq!(port_type(show, "z"), None);
    }
}

//! CPU time from /proc: per CPU (`/proc/stat`) and per process or thread
//! (`/proc/PID/stat`, `/proc/PID/task/TID/stat`).
//!
//! This kernel uses tick-based accounting (`CONFIG_TICK_CPU_ACCOUNTING=y`,
//! no `CONFIG_IRQ_TIME_ACCOUNTING`): a tick that lands in softirq on a CPU
//! counts as softirq in /proc/stat *and*, if it interrupted a task, as that
//! task's system time. So the daemon's utime+stime includes the kernel's
//! receive work that runs on its core inside its `sendto()` calls, and
//! /proc/stat's softirq column includes both that and ksoftirqd's work.

use std::fs;

/// Clock ticks per second of the times in /proc (`USER_HZ`, 100 on Linux
/// whatever `CONFIG_HZ` is).
const USER_HZ: f64 = 100.0;

/// The ten columns of one `cpuN` line of /proc/stat, in ticks.
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuTicks {
    pub user: u64,
    pub nice: u64,
    pub system: u64,
    pub idle: u64,
    pub iowait: u64,
    pub irq: u64,
    pub softirq: u64,
    pub steal: u64,
}

impl CpuTicks {
    fn total(&self) -> u64 {
        self.user
            + self.nice
            + self.system
            + self.idle
            + self.iowait
            + self.irq
            + self.softirq
            + self.steal
    }
}

/// Every CPU's line of /proc/stat at one moment.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub cpus: Vec<CpuTicks>,
}

/// Reads /proc/stat.
pub fn snapshot() -> Result<Snapshot, String> {
    let text = fs::read_to_string("/proc/stat").map_err(|e| format!("read /proc/stat: {e}"))?;
    let mut cpus = Vec::new();
    for line in text.lines() {
        let mut f = line.split_whitespace();
        let Some(name) = f.next() else { continue };
        let Some(idx) = name.strip_prefix("cpu").filter(|s| !s.is_empty()) else {
            continue;
        };
        let Ok(idx) = idx.parse::<usize>() else {
            continue;
        };
        let v: Vec<u64> = f.map(|x| x.parse().unwrap_or(0)).collect();
        let at = |i: usize| v.get(i).copied().unwrap_or(0);
        if cpus.len() <= idx {
            cpus.resize(idx + 1, CpuTicks::default());
        }
        cpus[idx] = CpuTicks {
            user: at(0),
            nice: at(1),
            system: at(2),
            idle: at(3),
            iowait: at(4),
            irq: at(5),
            softirq: at(6),
            steal: at(7),
        };
    }
    if cpus.is_empty() {
        return Err("/proc/stat lists no CPUs".into());
    }
    Ok(Snapshot { cpus })
}

/// How one CPU spent an interval, in percent of that CPU.
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuShare {
    /// Everything but idle and iowait.
    pub busy: f64,
    pub user: f64,
    pub system: f64,
    pub softirq: f64,
}

/// How CPU `cpu` spent the time between two snapshots.
pub fn share(a: &Snapshot, b: &Snapshot, cpu: usize) -> CpuShare {
    let (Some(x), Some(y)) = (a.cpus.get(cpu), b.cpus.get(cpu)) else {
        return CpuShare::default();
    };
    let total = y.total().saturating_sub(x.total()) as f64;
    if total == 0.0 {
        return CpuShare::default();
    }
    let pct = |f: fn(&CpuTicks) -> u64| 100.0 * f(y).saturating_sub(f(x)) as f64 / total;
    CpuShare {
        busy: 100.0 - pct(|t| t.idle + t.iowait),
        user: pct(|t| t.user + t.nice),
        system: pct(|t| t.system + t.irq),
        softirq: pct(|t| t.softirq),
    }
}

/// (utime, stime) of a process or thread, in ticks; `path` is `/proc/PID`
/// or `/proc/PID/task/TID`. utime is user space (for vswitchd's poll
/// thread: the switch's own code and libc); stime is the kernel, including
/// softirq work that ran in the thread's context (see the module comment).
pub fn task_times(path: &str) -> Result<(u64, u64), String> {
    let text = fs::read_to_string(format!("{path}/stat"))
        .map_err(|e| format!("read {path}/stat: {e} (did the process exit?)"))?;
    // The command name is in parentheses and may hold spaces: split after it.
    let rest = text
        .rsplit_once(") ")
        .map(|(_, r)| r)
        .ok_or_else(|| format!("unexpected format of {path}/stat"))?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state(0) ppid(1) ... utime(11) stime(12).
    let num = |i: usize| {
        f.get(i)
            .and_then(|x| x.parse::<u64>().ok())
            .ok_or_else(|| format!("unexpected format of {path}/stat"))
    };
    Ok((num(11)?, num(12)?))
}

/// utime + stime, in ticks.
pub fn task_ticks(path: &str) -> Result<u64, String> {
    task_times(path).map(|(u, s)| u + s)
}

/// Percent of one core that `ticks` over `secs` seconds amount to.
pub fn ticks_pct(ticks: u64, secs: f64) -> f64 {
    if secs <= 0.0 {
        return 0.0;
    }
    100.0 * ticks as f64 / USER_HZ / secs
}

/// The `/proc/PID/task/TID` path of the thread of `pid` named `name`.
pub fn thread_path(pid: u32, name: &str) -> Option<String> {
    let dir = format!("/proc/{pid}/task");
    for e in fs::read_dir(&dir).ok()?.flatten() {
        let p = e.path();
        if fs::read_to_string(p.join("comm"))
            .map(|c| c.trim() == name)
            .unwrap_or(false)
        {
            return Some(p.to_string_lossy().into_owned());
        }
    }
    None
}

//! The four measurements, each over a fixed interval, each the same for
//! both switches: 64-byte UDP delivered per second (trafgen in A, nft drop
//! counter in B), TCP throughput (iperf3), round-trip latency (ping at
//! 100/s) and the daemon's idle CPU. Traffic tools run pinned to the
//! generator CPU; the switch's work is on the switch CPU.

use super::cmd::{in_netns, run, Bg};
use super::cpu::{self, CpuShare};
use super::json;
use super::lab::{Lab, DEV};
use super::subject::{PmdStats, Vswitchd};
use super::sys;
use std::time::{Duration, Instant};

/// Which switch is being measured, as far as the measurements care: the
/// daemon's counters exist only for vswitchd.
#[derive(Clone, Copy)]
pub enum Under<'a> {
    Vswitchd(&'a Vswitchd),
    Bridge,
}

/// CPU placement.
#[derive(Debug, Clone, Copy)]
pub struct Cpus {
    /// Where trafgen, iperf3 (both ends) and ping run.
    pub gen: usize,
    /// The switch's core: vswitchd's poll thread; the bridge's RPS target.
    pub switch: usize,
}

/// How trafgen sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrafgenMode {
    /// TX_RING (`-S 128KiB`; smaller default rings fail to flush here).
    Ring,
    /// One `sendto()` per packet (`-t 0`).
    Sendto,
}

impl TrafgenMode {
    pub fn name(self) -> &'static str {
        match self {
            TrafgenMode::Ring => "ring",
            TrafgenMode::Sendto => "sendto",
        }
    }

    pub fn parse(s: &str) -> Option<TrafgenMode> {
        match s {
            "ring" => Some(TrafgenMode::Ring),
            "sendto" => Some(TrafgenMode::Sendto),
            _ => None,
        }
    }

    fn args(self) -> [&'static str; 2] {
        match self {
            TrafgenMode::Ring => ["-S", "128KiB"],
            TrafgenMode::Sendto => ["-t", "0"],
        }
    }
}

/// Counters read at the start and end of an interval.
struct Marks {
    at: Instant,
    cpus: cpu::Snapshot,
    daemon_ticks: Option<u64>,
    /// (utime, stime) of the poll thread.
    pmd_times: Option<(u64, u64)>,
    pmd: Option<PmdStats>,
}

/// CPU use over an interval: the switch's own view and /proc's.
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuUse {
    /// Poll-thread busy share from pmd/stats-show (vswitchd only).
    pub pmd_busy_pct: Option<f64>,
    /// The same without the transmit system calls (`tx_cycles`).
    pub pmd_busy_own_pct: Option<f64>,
    pub pmd_avg_batch: Option<f64>,
    pub pmd_ns_per_packet: Option<f64>,
    pub pmd_packets: Option<u64>,
    /// utime+stime of the whole daemon, percent of one core.
    pub daemon_pct: Option<f64>,
    /// utime+stime of the poll thread alone.
    pub pmd_thread_pct: Option<f64>,
    /// The poll thread's utime: the switch's own code (and libc).
    pub pmd_user_pct: Option<f64>,
    /// The poll thread's stime: system calls and the softirq work that
    /// runs inside them (copy-mode TX, the receiving namespace's stack).
    pub pmd_kernel_pct: Option<f64>,
    pub gen_cpu: CpuShare,
    pub switch_cpu: CpuShare,
}

impl Marks {
    /// Start marks: clears the poll-thread counters first.
    fn start(under: Under, pmd_thread: Option<&str>) -> Result<Marks, String> {
        if let Under::Vswitchd(d) = under {
            d.pmd_clear()?;
        }
        Marks::take(under, pmd_thread, false)
    }

    fn take(under: Under, pmd_thread: Option<&str>, read_pmd: bool) -> Result<Marks, String> {
        let (daemon_ticks, pmd_times, pmd) = match under {
            Under::Vswitchd(d) => (
                Some(cpu::task_ticks(&format!("/proc/{}", d.pid))?),
                pmd_thread.and_then(|p| cpu::task_times(p).ok()),
                if read_pmd { Some(d.pmd_stats()?) } else { None },
            ),
            Under::Bridge => (None, None, None),
        };
        Ok(Marks {
            at: Instant::now(),
            cpus: cpu::snapshot()?,
            daemon_ticks,
            pmd_times,
            pmd,
        })
    }

    fn end(under: Under, pmd_thread: Option<&str>) -> Result<Marks, String> {
        Marks::take(under, pmd_thread, true)
    }

    fn usage(&self, end: &Marks, cpus: Cpus) -> CpuUse {
        let secs = end.at.duration_since(self.at).as_secs_f64();
        let diff = |a: Option<u64>, b: Option<u64>| match (a, b) {
            (Some(a), Some(b)) => Some(cpu::ticks_pct(b.saturating_sub(a), secs)),
            _ => None,
        };
        CpuUse {
            pmd_busy_pct: end.pmd.and_then(|p| p.busy_pct()),
            pmd_busy_own_pct: end.pmd.and_then(|p| p.busy_own_pct()),
            pmd_avg_batch: end.pmd.and_then(|p| p.avg_batch()),
            pmd_ns_per_packet: end.pmd.and_then(|p| p.ns_per_packet()),
            pmd_packets: end.pmd.map(|p| p.packets),
            daemon_pct: diff(self.daemon_ticks, end.daemon_ticks),
            pmd_thread_pct: diff(
                self.pmd_times.map(|(u, s)| u + s),
                end.pmd_times.map(|(u, s)| u + s),
            ),
            pmd_user_pct: diff(self.pmd_times.map(|t| t.0), end.pmd_times.map(|t| t.0)),
            pmd_kernel_pct: diff(self.pmd_times.map(|t| t.1), end.pmd_times.map(|t| t.1)),
            gen_cpu: cpu::share(&self.cpus, &end.cpus, cpus.gen),
            switch_cpu: cpu::share(&self.cpus, &end.cpus, cpus.switch),
        }
    }
}

/// One UDP measurement.
#[derive(Debug, Clone)]
pub struct Udp {
    pub mode: TrafgenMode,
    pub secs: f64,
    /// Frames per second A's eth1 put on the wire.
    pub offered_pps: f64,
    /// Frames per second A's eth1 dropped (peer queue full).
    pub sender_drop_pps: f64,
    /// Frames per second B's nft rule counted.
    pub delivered_pps: f64,
    pub cpu: CpuUse,
}

/// Runs trafgen in A for `warmup + secs`, measuring over the last `secs`.
pub fn udp(
    lab: &Lab,
    under: Under,
    cpus: Cpus,
    mode: TrafgenMode,
    warmup: Duration,
    secs: Duration,
    perf: Option<&str>,
) -> Result<Udp, String> {
    let cfg = lab.trafgen_config().to_string_lossy().into_owned();
    // `timeout` bounds trafgen even if this benchmark is killed outright.
    let limit = format!("{:.0}", (warmup + secs).as_secs_f64() + 30.0);
    let mut args = vec![
        "-k", "2", "-s", "INT", &limit, "trafgen", "-o", DEV, "-i", &cfg,
    ];
    args.extend(["-P", "1"]);
    args.extend(mode.args());
    let mut gen = Bg::spawn("ip", &in_netns(&lab.ns_a, Some(cpus.gen), "timeout", &args))?;
    sys::sleep(warmup)?;
    if !gen.running() {
        return Err(format!(
            "trafgen stopped during warm-up: {}",
            gen.stop(Duration::ZERO).describe()
        ));
    }
    let pmd_thread = match under {
        Under::Vswitchd(d) => d.pmd_thread(),
        Under::Bridge => None,
    };
    let profiler = Profiler::start(perf, secs)?;
    let start = Marks::start(under, pmd_thread.as_deref())?;
    let (sent0, drop0) = lab.sent()?;
    let rx0 = lab.delivered()?;
    let t0 = Instant::now();
    sys::sleep(secs)?;
    let rx1 = lab.delivered()?;
    let t1 = Instant::now();
    let (sent1, drop1) = lab.sent()?;
    let end = Marks::end(under, pmd_thread.as_deref())?;
    let still_running = gen.running();
    let out = gen.stop(Duration::from_secs(3));
    profiler.finish();
    if !still_running {
        return Err(format!(
            "trafgen stopped while measuring: {}",
            out.describe()
        ));
    }
    let dt = t1.duration_since(t0).as_secs_f64();
    let rate = |a: u64, b: u64| b.saturating_sub(a) as f64 / dt;
    Ok(Udp {
        mode,
        secs: dt,
        offered_pps: rate(sent0, sent1),
        sender_drop_pps: rate(drop0, drop1),
        delivered_pps: rate(rx0, rx1),
        cpu: start.usage(&end, cpus),
    })
}

/// A system-wide `perf record -e cpu-clock -g -a` of one interval, when
/// asked for (--perf): both CPUs, so the generator's side shows too.
struct Profiler(Option<Bg>);

impl Profiler {
    fn start(out: Option<&str>, secs: Duration) -> Result<Profiler, String> {
        let Some(out) = out else {
            return Ok(Profiler(None));
        };
        let secs = format!("{}", secs.as_secs_f64());
        let args = [
            "record",
            "-e",
            "cpu-clock",
            "-g",
            "-a",
            "-o",
            out,
            "--",
            "sleep",
            &secs,
        ];
        Ok(Profiler(Some(Bg::spawn("perf", &args)?)))
    }

    fn finish(self) {
        if let Some(p) = self.0 {
            let o = p.wait(Duration::from_secs(60));
            if !o.success() {
                eprintln!("warning: perf record failed: {}", o.describe());
            }
        }
    }
}

/// One iperf3 run.
#[derive(Debug, Clone)]
pub struct Tcp {
    pub secs: f64,
    pub gbps: f64,
    pub retransmits: Option<f64>,
    pub cpu: CpuUse,
}

const IPERF_PORT: &str = "5201";

/// iperf3 server in B, client in A, both pinned to the generator CPU.
pub fn tcp(
    lab: &Lab,
    under: Under,
    cpus: Cpus,
    secs: Duration,
    perf: Option<&str>,
) -> Result<Tcp, String> {
    let mut server = Bg::spawn(
        "ip",
        &in_netns(
            &lab.ns_b,
            Some(cpus.gen),
            "timeout",
            &[
                "-k",
                "2",
                &format!("{:.0}", secs.as_secs_f64() + 40.0),
                "iperf3",
                "-s",
                "-1",
                "-B",
                lab.ip_b,
                "-p",
                IPERF_PORT,
            ],
        ),
    )?;
    wait_listening(lab, &mut server)?;
    let pmd_thread = match under {
        Under::Vswitchd(d) => d.pmd_thread(),
        Under::Bridge => None,
    };
    let start = Marks::start(under, pmd_thread.as_deref())?;
    let profiler = Profiler::start(perf, secs)?;
    let t = secs.as_secs().max(1).to_string();
    let client = run(
        "ip",
        &in_netns(
            &lab.ns_a,
            Some(cpus.gen),
            "iperf3",
            &["-c", lab.ip_b, "-p", IPERF_PORT, "-t", &t, "-J"],
        ),
        secs + Duration::from_secs(20),
    )?;
    let end = Marks::end(under, pmd_thread.as_deref())?;
    profiler.finish();
    // The server exits by itself after one test (-1).
    server.wait(Duration::from_secs(3));
    if !client.success() {
        return Err(format!("iperf3 client failed: {}", client.describe()));
    }
    let v = json::parse(&client.stdout).map_err(|e| format!("iperf3 -J output: {e}"))?;
    let bps = v
        .path(&["end", "sum_received", "bits_per_second"])
        .and_then(json::Value::as_f64)
        .ok_or_else(|| "iperf3 -J output has no end.sum_received.bits_per_second".to_string())?;
    Ok(Tcp {
        secs: end.at.duration_since(start.at).as_secs_f64(),
        gbps: bps / 1e9,
        retransmits: v
            .path(&["end", "sum_sent", "retransmits"])
            .and_then(json::Value::as_f64),
        cpu: start.usage(&end, cpus),
    })
}

/// Waits up to 5 s for the iperf3 server to listen.
fn wait_listening(lab: &Lab, server: &mut Bg) -> Result<(), String> {
    let end = Instant::now() + Duration::from_secs(5);
    let filter = format!("sport = :{IPERF_PORT}");
    loop {
        let out = run(
            "ip",
            &in_netns(&lab.ns_b, None, "ss", &["-Hltn", &filter]),
            super::cmd::ADMIN,
        )?;
        if out.success() && !out.stdout.trim().is_empty() {
            return Ok(());
        }
        if !server.running() {
            return Err("iperf3 server exited before listening (is port 5201 free in B?)".into());
        }
        if Instant::now() > end {
            return Err("iperf3 server did not listen within 5 s".into());
        }
        sys::sleep(Duration::from_millis(50))?;
    }
}

/// Round-trip times of one ping run.
#[derive(Debug, Clone)]
pub struct Ping {
    pub sent: usize,
    pub received: usize,
    pub median_us: f64,
    pub p99_us: f64,
    pub min_us: f64,
    pub max_us: f64,
    /// Times the poll thread went to sleep during the run (vswitchd only):
    /// about one per ping means each ping had to wake it.
    pub pmd_sleeps: Option<u64>,
    /// Rate of the background stream that ran alongside, if any.
    pub background_pps: Option<f64>,
}

/// Gap between the background stream's frames (trafgen sleeps between
/// frames, so the rate comes out lower: about 10,000 per second here),
/// enough to keep a poll thread awake most of the time between pings.
const BACKGROUND_GAP: &str = "50us";

/// `ping -i 0.01 -c COUNT` from A to B, pinned to the generator CPU. With
/// `background`, trafgen sends a light UDP stream (about 10 kpps, dropped
/// in B) at the same time, so neither switch goes idle between pings.
/// Each run also counts the poll thread's sleeps.
pub fn ping(
    lab: &Lab,
    under: Under,
    cpus: Cpus,
    count: usize,
    background: bool,
) -> Result<Ping, String> {
    ping_to(lab, lab.ip_b, under, cpus, count, background)
}

/// As [`ping`], to `dst` (B's address on one of its links).
pub fn ping_to(
    lab: &Lab,
    dst: &str,
    under: Under,
    cpus: Cpus,
    count: usize,
    background: bool,
) -> Result<Ping, String> {
    let c = count.to_string();
    let run_secs = count as f64 * 0.01;
    let stream = if background {
        let cfg = lab.trafgen_config().to_string_lossy().into_owned();
        let limit = format!("{:.0}", run_secs + 30.0);
        let args = [
            "-k",
            "2",
            "-s",
            "INT",
            &limit,
            "trafgen",
            "-o",
            DEV,
            "-i",
            &cfg,
            "-P",
            "1",
            "-t",
            BACKGROUND_GAP,
        ];
        let g = Bg::spawn("ip", &in_netns(&lab.ns_a, Some(cpus.gen), "timeout", &args))?;
        sys::sleep(Duration::from_millis(300))?;
        Some(g)
    } else {
        None
    };
    let rx0 = if background {
        Some(lab.delivered()?)
    } else {
        None
    };
    let t0 = Instant::now();
    if let Under::Vswitchd(d) = under {
        d.pmd_clear()?;
    }
    let out = run(
        "ip",
        &in_netns(
            &lab.ns_a,
            Some(cpus.gen),
            "ping",
            &["-n", "-i", "0.01", "-W", "1", "-c", &c, dst],
        ),
        Duration::from_secs_f64(run_secs + 15.0),
    )?;
    let pmd_sleeps = match under {
        Under::Vswitchd(d) => Some(d.pmd_stats()?.sleeps),
        Under::Bridge => None,
    };
    let background_pps = match rx0 {
        Some(rx0) => {
            let rx1 = lab.delivered()?;
            Some(rx1.saturating_sub(rx0) as f64 / t0.elapsed().as_secs_f64())
        }
        None => None,
    };
    if let Some(g) = stream {
        g.stop(Duration::from_secs(3));
    }
    let mut rtts = parse_ping_times(&out.stdout);
    if rtts.is_empty() {
        return Err(format!("ping got no replies: {}", out.describe()));
    }
    rtts.sort_by(f64::total_cmp);
    Ok(Ping {
        sent: count,
        received: rtts.len(),
        median_us: percentile(&rtts, 50.0),
        p99_us: percentile(&rtts, 99.0),
        min_us: rtts[0],
        max_us: rtts[rtts.len() - 1],
        pmd_sleeps,
        background_pps,
    })
}

/// Microseconds from each `time=0.045 ms` in ping's output.
fn parse_ping_times(out: &str) -> Vec<f64> {
    out.lines()
        .filter_map(|l| {
            let t = l.split("time=").nth(1)?;
            let mut w = t.split_whitespace();
            let v: f64 = w.next()?.parse().ok()?;
            let scale = match w.next() {
                Some("us") => 1.0,
                Some("s") => 1e6,
                _ => 1e3, // "ms"
            };
            Some(v * scale)
        })
        .collect()
}

/// Nearest-rank percentile of sorted, non-empty `v`.
pub fn percentile(v: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}

/// The daemon at rest.
#[derive(Debug, Clone)]
pub struct Idle {
    pub secs: f64,
    pub daemon_pct: f64,
    pub pmd_thread_pct: Option<f64>,
    pub pmd_sleeps: u64,
    pub switch_cpu_busy: f64,
}

/// The daemon's CPU over `secs` with no traffic, after a second to settle.
pub fn idle(d: &Vswitchd, cpus: Cpus, secs: Duration) -> Result<Idle, String> {
    sys::sleep(Duration::from_secs(1))?;
    let under = Under::Vswitchd(d);
    let th = d.pmd_thread();
    let start = Marks::start(under, th.as_deref())?;
    sys::sleep(secs)?;
    let end = Marks::end(under, th.as_deref())?;
    let u = start.usage(&end, cpus);
    Ok(Idle {
        secs: end.at.duration_since(start.at).as_secs_f64(),
        daemon_pct: u.daemon_pct.unwrap_or(0.0),
        pmd_thread_pct: u.pmd_thread_pct,
        pmd_sleeps: end.pmd.map(|p| p.sleeps).unwrap_or(0),
        switch_cpu_busy: u.switch_cpu.busy,
    })
}

/// Pids of `vswitchd` processes other than `ours`: other people's tests on
/// a shared machine, whose poll threads may share the switch core.
pub fn other_daemons(ours: Option<u32>) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| Some(pid) != ours && sys::alive(pid)) // not zombies
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .map(|c| c.trim() == "vswitchd")
                .unwrap_or(false)
        })
        .collect()
}

/// How busy each CPU is with nothing of ours running: other people's
/// builds and tests on a shared machine show up here.
pub fn background(secs: Duration) -> Result<Vec<CpuShare>, String> {
    let a = cpu::snapshot()?;
    sys::sleep(secs)?;
    let b = cpu::snapshot()?;
    Ok((0..b.cpus.len()).map(|c| cpu::share(&a, &b, c)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ping_times() {
        let out = "PING 10.0.0.2 (10.0.0.2) 56(84) bytes of data.
                   64 bytes from 10.0.0.2: icmp_seq=1 ttl=64 time=0.354 ms
                   64 bytes from 10.0.0.2: icmp_seq=2 ttl=64 time=1.48 ms
                   
--- 10.0.0.2 ping statistics ---
                   rtt min/avg/max/mdev = 0.137/0.213/0.354/0.099 ms
";
        assert_eq!(parse_ping_times(out), vec![354.0, 1480.0]);
    }

    #[test]
    fn percentiles() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), 50.0);
        assert_eq!(percentile(&v, 99.0), 99.0);
        assert_eq!(percentile(&[7.0], 99.0), 7.0);
        assert_eq!(percentile(&[1.0, 2.0, 3.0], 50.0), 2.0);
    }
}

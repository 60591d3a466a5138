//! Results: per repetition and switch, medians over repetitions, the table
//! (vswitch, bridge, ratio), issue #4's targets as pass/miss, and the JSON.

use super::cpu::CpuShare;
use super::json::Value;
use super::measure::{CpuUse, Idle, Ping, Tcp, Udp};

/// Everything measured on one switch in one repetition.
#[derive(Debug, Clone)]
pub struct SwitchRun {
    /// How vswitchd opened each port (empty for the bridge).
    pub port_modes: Vec<(String, String)>,
    /// One per trafgen mode.
    pub udp: Vec<Udp>,
    pub tcp: Tcp,
    pub ping: Ping,
    /// Latency with a light background stream keeping the switch awake.
    pub ping_loaded: Ping,
    /// The bridge's latency with RPS off (its default configuration).
    pub ping_no_rps: Option<Ping>,
    /// Over the direct veth between the namespaces (measured with the
    /// bridge's run): no switch at all.
    pub ping_direct: Option<Ping>,
    pub idle: Option<Idle>,
}

impl SwitchRun {
    /// The trafgen mode that delivered most.
    pub fn best_udp(&self) -> Option<&Udp> {
        self.udp
            .iter()
            .max_by(|a, b| a.delivered_pps.total_cmp(&b.delivered_pps))
    }
}

#[derive(Debug, Clone)]
pub struct Rep {
    /// "vswitch" and "bridge" in the order they ran.
    pub order: Vec<&'static str>,
    /// Per-CPU busy share before the repetition, with nothing of ours running.
    pub background: Vec<CpuShare>,
    /// Other vswitchd processes seen at the start (others' tests).
    pub other_daemons: Vec<u32>,
    pub vswitch: Option<SwitchRun>,
    pub bridge: Option<SwitchRun>,
}

/// A row of the table: how to get the figure from one switch's run.
struct Metric {
    key: &'static str,
    label: &'static str,
    get: fn(&SwitchRun) -> Option<f64>,
}

fn udp<F: Fn(&Udp) -> Option<f64>>(r: &SwitchRun, f: F) -> Option<f64> {
    r.best_udp().and_then(f)
}

const METRICS: &[Metric] = &[
    Metric {
        key: "udp_delivered_mpps",
        label: "UDP 64 B delivered (Mpps)",
        get: |r| udp(r, |u| Some(u.delivered_pps / 1e6)),
    },
    Metric {
        key: "udp_offered_mpps",
        label: "  offered by trafgen (Mpps)",
        get: |r| udp(r, |u| Some(u.offered_pps / 1e6)),
    },
    Metric {
        key: "udp_pmd_busy_pct",
        label: "  poll thread busy (pmd stats, %)",
        get: |r| udp(r, |u| u.cpu.pmd_busy_pct),
    },
    Metric {
        key: "udp_pmd_busy_own_pct",
        label: "  … outside TX system calls (%)",
        get: |r| udp(r, |u| u.cpu.pmd_busy_own_pct),
    },
    Metric {
        key: "udp_pmd_avg_batch",
        label: "  poll thread avg batch",
        get: |r| udp(r, |u| u.cpu.pmd_avg_batch),
    },
    Metric {
        key: "udp_pmd_busy_ns_per_packet",
        label: "  poll thread busy ns/packet",
        get: |r| udp(r, |u| u.cpu.pmd_ns_per_packet),
    },
    Metric {
        key: "udp_daemon_cpu_pct",
        label: "  vswitchd CPU (/proc/PID/stat, %)",
        get: |r| udp(r, |u| u.cpu.daemon_pct),
    },
    Metric {
        key: "udp_pmd_user_pct",
        label: "  poll thread user space (utime, %)",
        get: |r| udp(r, |u| u.cpu.pmd_user_pct),
    },
    Metric {
        key: "udp_pmd_kernel_pct",
        label: "  poll thread kernel (stime, %)",
        get: |r| udp(r, |u| u.cpu.pmd_kernel_pct),
    },
    Metric {
        key: "udp_switch_cpu_busy_pct",
        label: "  switch CPU busy (/proc/stat, %)",
        get: |r| udp(r, |u| Some(u.cpu.switch_cpu.busy)),
    },
    Metric {
        key: "udp_switch_cpu_softirq_pct",
        label: "  switch CPU softirq (/proc/stat, %)",
        get: |r| udp(r, |u| Some(u.cpu.switch_cpu.softirq)),
    },
    Metric {
        key: "udp_gen_cpu_softirq_pct",
        label: "  generator CPU softirq (%)",
        get: |r| udp(r, |u| Some(u.cpu.gen_cpu.softirq)),
    },
    Metric {
        key: "tcp_gbps",
        label: "TCP iperf3 (Gbit/s)",
        get: |r| Some(r.tcp.gbps),
    },
    Metric {
        key: "tcp_pmd_busy_pct",
        label: "  poll thread busy (%)",
        get: |r| r.tcp.cpu.pmd_busy_pct,
    },
    Metric {
        key: "tcp_pmd_user_pct",
        label: "  poll thread user space (utime, %)",
        get: |r| r.tcp.cpu.pmd_user_pct,
    },
    Metric {
        key: "tcp_switch_cpu_busy_pct",
        label: "  switch CPU busy (%)",
        get: |r| Some(r.tcp.cpu.switch_cpu.busy),
    },
    Metric {
        key: "tcp_gen_cpu_busy_pct",
        label: "  generator CPU busy (%)",
        get: |r| Some(r.tcp.cpu.gen_cpu.busy),
    },
    Metric {
        key: "rtt_median_us",
        label: "ping RTT median (us)",
        get: |r| Some(r.ping.median_us),
    },
    Metric {
        key: "rtt_p99_us",
        label: "ping RTT p99 (us)",
        get: |r| Some(r.ping.p99_us),
    },
    Metric {
        key: "rtt_pmd_sleeps_per_ping",
        label: "  poll-thread sleeps per ping",
        get: |r| {
            r.ping
                .pmd_sleeps
                .map(|s| s as f64 / r.ping.received.max(1) as f64)
        },
    },
    Metric {
        key: "rtt_median_loaded_us",
        label: "  with background stream: median (us)",
        get: |r| Some(r.ping_loaded.median_us),
    },
    Metric {
        key: "rtt_p99_loaded_us",
        label: "  with background stream: p99 (us)",
        get: |r| Some(r.ping_loaded.p99_us),
    },
    Metric {
        key: "rtt_median_no_rps_us",
        label: "  bridge without RPS: median (us)",
        get: |r| r.ping_no_rps.as_ref().map(|p| p.median_us),
    },
    Metric {
        key: "rtt_p99_no_rps_us",
        label: "  bridge without RPS: p99 (us)",
        get: |r| r.ping_no_rps.as_ref().map(|p| p.p99_us),
    },
    Metric {
        key: "rtt_median_direct_us",
        label: "  no switch (direct veth): median (us)",
        get: |r| r.ping_direct.as_ref().map(|p| p.median_us),
    },
    Metric {
        key: "rtt_p99_direct_us",
        label: "  no switch (direct veth): p99 (us)",
        get: |r| r.ping_direct.as_ref().map(|p| p.p99_us),
    },
    Metric {
        key: "idle_cpu_pct",
        label: "idle CPU, daemon (% of a core)",
        get: |r| r.idle.as_ref().map(|i| i.daemon_pct),
    },
];

/// Median of the values present (mean of the middle two for even counts).
pub fn median(mut v: Vec<f64>) -> Option<f64> {
    v.retain(|x| x.is_finite());
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

/// Medians over repetitions: (key, vswitch, bridge).
pub struct Summary {
    rows: Vec<(&'static Metric, Option<f64>, Option<f64>)>,
}

impl Summary {
    pub fn new(reps: &[Rep]) -> Summary {
        let col = |m: &Metric, pick: fn(&Rep) -> Option<&SwitchRun>| {
            median(reps.iter().filter_map(pick).filter_map(m.get).collect())
        };
        Summary {
            rows: METRICS
                .iter()
                .map(|m| {
                    (
                        m,
                        col(m, |r| r.vswitch.as_ref()),
                        col(m, |r| r.bridge.as_ref()),
                    )
                })
                .collect(),
        }
    }

    fn get(&self, key: &str) -> (Option<f64>, Option<f64>) {
        self.rows
            .iter()
            .find(|(m, _, _)| m.key == key)
            .map(|(_, v, b)| (*v, *b))
            .unwrap_or((None, None))
    }

    pub fn print(&self) {
        println!(
            "\n{:<38} {:>10} {:>10} {:>8}",
            "median over repetitions", "vswitch", "bridge", "ratio"
        );
        for (m, v, b) in &self.rows {
            if v.is_none() && b.is_none() {
                continue;
            }
            println!(
                "{:<38} {:>10} {:>10} {:>8}",
                m.label,
                fmt(*v),
                fmt(*b),
                ratio(*v, *b).map_or("-".into(), |r| format!("{r:.2}x"))
            );
        }
    }

    /// Issue #4's targets.
    pub fn targets(&self) -> Vec<Target> {
        let (vu, bu) = self.get("udp_delivered_mpps");
        let (busy, _) = self.get("udp_pmd_busy_pct");
        let own = self
            .get("udp_pmd_busy_own_pct")
            .0
            .map_or(String::new(), |o| {
                format!(" ({o:.1}% outside TX system calls)")
            });
        let (vt, bt) = self.get("tcp_gbps");
        let (vl, bl) = self.get("rtt_median_us");
        let (idle, _) = self.get("idle_cpu_pct");
        let (_, floor) = self.get("rtt_median_direct_us");
        let both = |a: Option<f64>, b: Option<f64>| a.zip(b);
        vec![
            Target {
                name: "udp",
                text: "UDP delivered >= bridge's, poll thread busy <= 50% of its core".into(),
                got: match (both(vu, bu), busy) {
                    (Some((v, b)), Some(busy)) => format!(
                        "{v:.3} vs {b:.3} Mpps ({:.2}x), busy {busy:.1}%{own}",
                        v / b.max(1e-9)
                    ),
                    _ => "not measured".into(),
                },
                pass: match (both(vu, bu), busy) {
                    (Some((v, b)), Some(busy)) => Some(v >= b && busy <= 50.0),
                    _ => None,
                },
            },
            Target {
                name: "tcp",
                text: "TCP throughput >= 1.0x bridge".into(),
                got: both(vt, bt).map_or("not measured".into(), |(v, b)| {
                    format!("{v:.2} vs {b:.2} Gbit/s ({:.2}x)", v / b.max(1e-9))
                }),
                pass: both(vt, bt).map(|(v, b)| v >= b),
            },
            Target {
                name: "latency",
                text: "ping RTT median <= 0.7x bridge".into(),
                got: both(vl, bl).map_or("not measured".into(), |(v, b)| {
                    // What each switch adds to the no-switch floor.
                    let added = floor.map_or(String::new(), |f| {
                        format!(
                            "; above the {f:.0} us no-switch floor: {:.0} vs {:.0} us",
                            v - f,
                            b - f
                        )
                    });
                    format!("{v:.0} vs {b:.0} us ({:.2}x){added}", v / b.max(1e-9))
                }),
                pass: both(vl, bl).map(|(v, b)| v <= 0.7 * b),
            },
            Target {
                name: "idle",
                text: "daemon idle CPU < 2% of a core".into(),
                got: idle.map_or("not measured".into(), |i| format!("{i:.2}%")),
                pass: idle.map(|i| i < 2.0),
            },
        ]
    }

    pub fn to_json(&self) -> Value {
        Value::Obj(
            self.rows
                .iter()
                .map(|(m, v, b)| {
                    (
                        m.key.to_string(),
                        Value::obj(vec![
                            ("vswitch", Value::num(*v)),
                            ("bridge", Value::num(*b)),
                            ("ratio", Value::num(ratio(*v, *b))),
                        ]),
                    )
                })
                .collect(),
        )
    }
}

pub struct Target {
    pub name: &'static str,
    pub text: String,
    pub got: String,
    /// `None`: not measured.
    pub pass: Option<bool>,
}

impl Target {
    pub fn verdict(&self) -> &'static str {
        match self.pass {
            Some(true) => "pass",
            Some(false) => "MISS",
            None => "n/a",
        }
    }

    pub fn to_json(&self) -> Value {
        Value::obj(vec![
            ("target", Value::str(self.name)),
            ("rule", Value::str(self.text.clone())),
            ("measured", Value::str(self.got.clone())),
            ("pass", self.pass.map_or(Value::Null, Value::Bool)),
        ])
    }
}

fn ratio(v: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (v, b) {
        (Some(v), Some(b)) if b.abs() > 1e-12 => Some(v / b),
        _ => None,
    }
}

fn fmt(x: Option<f64>) -> String {
    match x {
        None => "-".into(),
        Some(x) if x.abs() >= 100.0 => format!("{x:.0}"),
        Some(x) if x.abs() >= 10.0 => format!("{x:.1}"),
        Some(x) => format!("{x:.3}"),
    }
}

// ---- JSON of the raw results ----

fn share_json(s: &CpuShare) -> Value {
    Value::obj(vec![
        ("busy_pct", Value::Num(s.busy)),
        ("user_pct", Value::Num(s.user)),
        ("system_pct", Value::Num(s.system)),
        ("softirq_pct", Value::Num(s.softirq)),
    ])
}

fn cpu_json(c: &CpuUse) -> Value {
    Value::obj(vec![
        ("pmd_busy_pct", Value::num(c.pmd_busy_pct)),
        ("pmd_busy_own_pct", Value::num(c.pmd_busy_own_pct)),
        ("pmd_avg_batch", Value::num(c.pmd_avg_batch)),
        ("pmd_busy_ns_per_packet", Value::num(c.pmd_ns_per_packet)),
        ("pmd_packets", Value::num(c.pmd_packets.map(|p| p as f64))),
        ("daemon_cpu_pct", Value::num(c.daemon_pct)),
        ("pmd_thread_cpu_pct", Value::num(c.pmd_thread_pct)),
        ("pmd_thread_user_pct", Value::num(c.pmd_user_pct)),
        ("pmd_thread_kernel_pct", Value::num(c.pmd_kernel_pct)),
        ("generator_cpu", share_json(&c.gen_cpu)),
        ("switch_cpu", share_json(&c.switch_cpu)),
    ])
}

fn ping_json(p: &Ping) -> Value {
    Value::obj(vec![
        ("sent", Value::Num(p.sent as f64)),
        ("received", Value::Num(p.received as f64)),
        ("median_us", Value::Num(p.median_us)),
        ("p99_us", Value::Num(p.p99_us)),
        ("min_us", Value::Num(p.min_us)),
        ("max_us", Value::Num(p.max_us)),
        ("pmd_sleeps", Value::num(p.pmd_sleeps.map(|s| s as f64))),
        ("background_pps", Value::num(p.background_pps)),
    ])
}

fn run_json(r: &SwitchRun) -> Value {
    Value::obj(vec![
        (
            "port_modes",
            Value::Obj(
                r.port_modes
                    .iter()
                    .map(|(p, m)| (p.clone(), Value::str(m.clone())))
                    .collect(),
            ),
        ),
        (
            "udp",
            Value::Arr(
                r.udp
                    .iter()
                    .map(|u| {
                        Value::obj(vec![
                            ("trafgen_mode", Value::str(u.mode.name())),
                            ("secs", Value::Num(u.secs)),
                            ("offered_pps", Value::Num(u.offered_pps)),
                            ("sender_drop_pps", Value::Num(u.sender_drop_pps)),
                            ("delivered_pps", Value::Num(u.delivered_pps)),
                            ("cpu", cpu_json(&u.cpu)),
                        ])
                    })
                    .collect(),
            ),
        ),
        (
            "tcp",
            Value::obj(vec![
                ("secs", Value::Num(r.tcp.secs)),
                ("gbps", Value::Num(r.tcp.gbps)),
                ("retransmits", Value::num(r.tcp.retransmits)),
                ("cpu", cpu_json(&r.tcp.cpu)),
            ]),
        ),
        ("ping", ping_json(&r.ping)),
        ("ping_with_background", ping_json(&r.ping_loaded)),
        (
            "ping_no_rps",
            r.ping_no_rps.as_ref().map_or(Value::Null, ping_json),
        ),
        (
            "ping_direct",
            r.ping_direct.as_ref().map_or(Value::Null, ping_json),
        ),
        (
            "idle",
            r.idle.as_ref().map_or(Value::Null, |i| {
                Value::obj(vec![
                    ("secs", Value::Num(i.secs)),
                    ("daemon_cpu_pct", Value::Num(i.daemon_pct)),
                    ("pmd_thread_cpu_pct", Value::num(i.pmd_thread_pct)),
                    ("pmd_sleeps", Value::Num(i.pmd_sleeps as f64)),
                    ("switch_cpu_busy_pct", Value::Num(i.switch_cpu_busy)),
                ])
            }),
        ),
    ])
}

pub fn rep_json(r: &Rep) -> Value {
    Value::obj(vec![
        (
            "order",
            Value::Arr(r.order.iter().map(|s| Value::str(*s)).collect()),
        ),
        (
            "background_cpu",
            Value::Arr(r.background.iter().map(share_json).collect()),
        ),
        (
            "other_vswitchd_pids",
            Value::Arr(
                r.other_daemons
                    .iter()
                    .map(|p| Value::Num(*p as f64))
                    .collect(),
            ),
        ),
        ("vswitch", r.vswitch.as_ref().map_or(Value::Null, run_json)),
        ("bridge", r.bridge.as_ref().map_or(Value::Null, run_json)),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        assert_eq!(median(vec![]), None);
        assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(vec![f64::NAN, 5.0]), Some(5.0));
    }
}

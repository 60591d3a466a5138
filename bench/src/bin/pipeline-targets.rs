//! Measures the in-memory pipeline and prints Mpps and ns per packet for
//! each configuration, with pass/miss lines for the targets that are
//! ratios between configurations measured in the same run (these machines
//! differ by up to 2x in absolute speed, so absolute Mpps are information).
//!
//! `cargo run --release -p bench --bin pipeline-targets [SECONDS [FILTER]]`
//! (FILTER: run only the rows whose name contains it, e.g. "8 ports"; the
//! plain L2 row always runs, as the reference of the ratios).
//!
//! `pipeline-targets count BATCHES CONFIG` runs exactly BATCHES batches of
//! one configuration (CONFIG: `x` for 8 ports/1,000 MACs, `vlan`, `big`,
//! `small`, `vxlan-encap`, `vxlan-decap`, `nat`, `nat-new`), for instruction counting under
//! callgrind: run it with two counts and divide the difference.

use bench::nat::{Mode, NatSetup};
use bench::tunnel::{Direction, TunnelSetup};
use bench::Setup;
use std::time::{Duration, Instant};

#[derive(Clone, Copy)]
enum Config {
    L2 {
        ports: usize,
        macs: usize,
        vlan: bool,
    },
    Vxlan(Direction),
    Nat(Mode),
}

/// Connections in the table when established flows are measured.
const NAT_CONNECTIONS: usize = 100_000;

impl Config {
    fn name(self) -> String {
        match self {
            Config::L2 { ports, macs, vlan } => format!(
                "{ports} ports, {macs} MACs{}",
                if vlan { ", VLAN pop/push" } else { "" }
            ),
            Config::Vxlan(Direction::Encap) => "VXLAN encap, 1000 MACs".into(),
            Config::Vxlan(Direction::Decap) => "VXLAN decap, 1000 MACs".into(),
            Config::Nat(Mode::Established) => "NAT established, 100k conns".into(),
            Config::Nat(Mode::New) => "NAT new connection".into(),
        }
    }

    fn setup(self) -> Box<dyn Pipeline> {
        match self {
            Config::L2 { ports, macs, vlan } => Box::new(Setup::new(ports, macs, vlan)),
            Config::Vxlan(dir) => Box::new(TunnelSetup::new(1_000, dir)),
            Config::Nat(mode) => Box::new(NatSetup::new(NAT_CONNECTIONS, mode)),
        }
    }
}

/// What a measured configuration does.
trait Pipeline {
    /// Forwards one batch; returns its packets.
    fn run(&mut self) -> usize;
    /// Frames that left so far.
    fn sent(&self) -> u64;
}

impl Pipeline for Setup {
    fn run(&mut self) -> usize {
        self.run_batch(0)
    }
    fn sent(&self) -> u64 {
        self.transmitted()
    }
}

impl Pipeline for TunnelSetup {
    fn run(&mut self) -> usize {
        self.run_batch(0)
    }
    fn sent(&self) -> u64 {
        self.transmitted()
    }
}

impl Pipeline for NatSetup {
    fn run(&mut self) -> usize {
        self.run_batch()
    }
    fn sent(&self) -> u64 {
        self.transmitted()
    }
}

/// Best ns per packet over five slices of `secs` in all.
fn measure(cfg: Config, secs: f64) -> f64 {
    let mut p = cfg.setup();
    // Warm up caches and the branch predictor.
    for _ in 0..10_000 {
        p.run();
    }
    let mut best = f64::MAX;
    for _ in 0..5 {
        let start = Instant::now();
        let mut pkts = 0usize;
        while start.elapsed() < Duration::from_secs_f64(secs / 5.0) {
            for _ in 0..256 {
                pkts += p.run();
            }
        }
        best = best.min(start.elapsed().as_nanos() as f64 / pkts as f64);
    }
    assert!(p.sent() > 0, "the pipeline forwarded nothing");
    best
}

fn count_mode() -> bool {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) != Some("count") {
        return false;
    }
    let batches: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(1000);
    let cfg = match args.get(3).map(String::as_str).unwrap_or_default() {
        "vlan" => Config::L2 {
            ports: 8,
            macs: 1_000,
            vlan: true,
        },
        "big" => Config::L2 {
            ports: 64,
            macs: 100_000,
            vlan: false,
        },
        "small" => Config::L2 {
            ports: 2,
            macs: 1,
            vlan: false,
        },
        "vxlan-encap" => Config::Vxlan(Direction::Encap),
        "vxlan-decap" => Config::Vxlan(Direction::Decap),
        "nat" => Config::Nat(Mode::Established),
        "nat-new" => Config::Nat(Mode::New),
        _ => Config::L2 {
            ports: 8,
            macs: 1_000,
            vlan: false,
        },
    };
    let mut p = cfg.setup();
    let pkts: usize = (0..batches).map(|_| p.run()).sum();
    println!("{pkts} packets");
    true
}

fn main() {
    if count_mode() {
        return;
    }
    let secs: f64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(2.0);
    let filter = std::env::args().nth(2).unwrap_or_default();
    let reference = Config::L2 {
        ports: 8,
        macs: 1_000,
        vlan: false,
    };
    // (configuration, largest cost per packet against the reference)
    let rows: [(Config, Option<f64>); 8] = [
        (
            Config::L2 {
                ports: 2,
                macs: 1,
                vlan: false,
            },
            None,
        ),
        (reference, None),
        (
            Config::L2 {
                ports: 64,
                macs: 100_000,
                vlan: false,
            },
            None,
        ),
        (
            Config::L2 {
                ports: 8,
                macs: 1_000,
                vlan: true,
            },
            None,
        ),
        (Config::Vxlan(Direction::Encap), Some(1.5)),
        (Config::Vxlan(Direction::Decap), Some(1.5)),
        (Config::Nat(Mode::Established), Some(2.0)),
        (Config::Nat(Mode::New), Some(10.0)),
    ];
    println!(
        "{:<32} {:>8} {:>8} {:>8} {:>10}  result",
        "pipeline (one core)", "Mpps", "ns/pkt", "x L2", "target"
    );
    let ref_ns = measure(reference, secs);
    let mut misses = 0;
    for (cfg, target) in rows {
        let name = cfg.name();
        if !name.contains(&filter) {
            continue;
        }
        let ns = if name == reference.name() {
            ref_ns
        } else {
            measure(cfg, secs)
        };
        let ratio = ns / ref_ns;
        let (t, verdict) = match target {
            Some(t) if ratio <= t => (format!("<= {t}x"), "pass"),
            Some(t) => {
                misses += 1;
                (format!("<= {t}x"), "MISS")
            }
            None => (String::from("-"), "-"),
        };
        println!(
            "{name:<32} {:>8.1} {ns:>8.1} {ratio:>8.2} {t:>10}  {verdict}",
            1000.0 / ns
        );
    }
    if misses > 0 {
        println!("{misses} target(s) missed");
    }
}

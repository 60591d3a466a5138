//! The end-to-end benchmark (issue #4, part 2): vswitchd against the Linux
//! bridge on the same namespaces and veths, in one run.
//!
//! - [`lab`]: namespaces A and B, veths, offloads off, B's counting nft drop
//!   rule; removed on drop.
//! - [`subject`]: the two switches: [`subject::Vswitchd`] (one poll thread,
//!   AF_XDP ports) and [`subject::KernelBridge`] (RPS to the same core).
//! - [`measure`]: UDP 64-byte rate, TCP, ping, idle CPU.
//! - [`report`]: medians, table, targets, JSON.
//! - [`cmd`], [`cpu`], [`json`], [`sys`], [`tools`], [`options`]: plumbing.
//!
//! `cargo build --release -p vswitch -p cli -p bench && sudo target/release/e2e`

pub mod cmd;
pub mod cpu;
pub mod json;
pub mod lab;
pub mod measure;
pub mod options;
pub mod report;
pub mod subject;
pub mod sys;
pub mod tools;

use json::Value;
use lab::{Lab, DIRECT_IP_B};
use measure::Under;
use options::{Only, Options};
use report::{Rep, Summary, SwitchRun};
use std::path::Path;
use std::time::{Duration, Instant};
use subject::{KernelBridge, Vswitchd};

/// Runs the benchmark with command-line arguments (without the program
/// name); returns the process exit status.
pub fn main(args: &[String]) -> i32 {
    let opts = match options::parse(args) {
        Ok(Some(o)) => o,
        Ok(None) => {
            print!("{}", options::USAGE);
            return 0;
        }
        Err(e) => {
            eprintln!("e2e: {e}");
            return 2;
        }
    };
    sys::catch_interrupts();
    tools::fix_path();
    match run(&opts) {
        Ok(()) => 0,
        Err(e) if sys::interrupted() => {
            eprintln!("e2e: {e}");
            130
        }
        Err(e) => {
            eprintln!("e2e: {e}");
            1
        }
    }
}

fn run(o: &Options) -> Result<(), String> {
    if !sys::is_root() {
        return Err("needs root (namespaces, veths, XDP): run it with sudo".into());
    }
    if o.only != Some(Only::Bridge) {
        for b in ["vswitchd", "vswctl"] {
            if !o.bin_dir.join(b).is_file() {
                return Err(format!(
                    "{} not found: build it with `cargo build --release -p vswitch -p cli` \
                     or pass --bin-dir",
                    o.bin_dir.join(b).display()
                ));
            }
        }
    }
    tools::ensure(o.install, o.perf_dir.is_some())?;
    if let Some(dir) = &o.perf_dir {
        std::fs::create_dir_all(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    }
    lab::remove_leftovers();
    let machine = tools::machine();
    let commit = tools::git_commit(&o.bin_dir);
    print_header(o, &machine, &commit);

    let started = Instant::now();
    let lab = Lab::create()?;
    println!(
        "namespaces {} and {}, veths {} and {} (offloads off)",
        lab.ns_a, lab.ns_b, lab.host_a, lab.host_b
    );
    let mut reps = Vec::new();
    for i in 0..o.reps {
        reps.push(repetition(o, &lab, i)?);
    }
    drop(lab);
    let elapsed = started.elapsed().as_secs_f64();

    let summary = Summary::new(&reps);
    summary.print();
    let targets = summary.targets();
    println!("\nissue #4 targets:");
    for t in &targets {
        println!("  [{}] {:<62} {}", t.verdict(), t.text, t.got);
    }
    println!("\nwhole run: {elapsed:.0} s");

    let doc = Value::obj(vec![
        (
            "benchmark",
            Value::str("vswitch end-to-end vs Linux bridge"),
        ),
        ("commit", Value::str(commit)),
        ("machine", machine),
        ("config", config_json(o)),
        ("elapsed_s", Value::Num(elapsed)),
        ("medians", summary.to_json()),
        (
            "targets",
            Value::Arr(targets.iter().map(report::Target::to_json).collect()),
        ),
        (
            "repetitions",
            Value::Arr(reps.iter().map(report::rep_json).collect()),
        ),
    ]);
    if let Some(dir) = o.json.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    std::fs::write(&o.json, doc.pretty())
        .map_err(|e| format!("write {}: {e}", o.json.display()))?;
    println!("raw results: {}", o.json.display());
    Ok(())
}

fn print_header(o: &Options, machine: &Value, commit: &str) {
    let s = |k: &str| match machine.get(k) {
        Some(Value::Str(s)) => s.clone(),
        Some(Value::Num(n)) => format!("{n}"),
        _ => String::new(),
    };
    println!(
        "e2e: {} CPUs ({}), kernel {}, commit {commit}",
        s("nproc"),
        s("cpu_model"),
        s("kernel")
    );
    println!(
        "     {} repetitions; UDP {:.1} s (+{:.1} s warm-up) per trafgen mode [{}], TCP {:.0} s, \
         {} pings, idle {:.0} s; tools on CPU {}, switch on CPU {}",
        o.reps,
        o.udp.as_secs_f64(),
        o.warmup.as_secs_f64(),
        o.modes
            .iter()
            .map(|m| m.name())
            .collect::<Vec<_>>()
            .join(","),
        o.tcp.as_secs_f64(),
        o.ping_count,
        o.idle.as_secs_f64(),
        o.cpus.gen,
        o.cpus.switch
    );
    if !o.vswitchd_args.is_empty() {
        println!(
            "     vswitchd extra arguments: {}",
            o.vswitchd_args.join(" ")
        );
    }
}

fn config_json(o: &Options) -> Value {
    Value::obj(vec![
        ("quick", Value::Bool(o.quick)),
        ("repetitions", Value::Num(o.reps as f64)),
        ("udp_warmup_s", Value::Num(o.warmup.as_secs_f64())),
        ("udp_s", Value::Num(o.udp.as_secs_f64())),
        ("tcp_s", Value::Num(o.tcp.as_secs_f64())),
        ("ping_count", Value::Num(o.ping_count as f64)),
        ("ping_interval_s", Value::Num(0.01)),
        ("idle_s", Value::Num(o.idle.as_secs_f64())),
        ("wait_quiet_s", Value::Num(o.wait_quiet.as_secs_f64())),
        (
            "trafgen_modes",
            Value::Arr(o.modes.iter().map(|m| Value::str(m.name())).collect()),
        ),
        ("generator_cpu", Value::Num(o.cpus.gen as f64)),
        ("switch_cpu", Value::Num(o.cpus.switch as f64)),
        (
            "bridge_rps",
            Value::str("rps_cpus = switch CPU on the host ends of both veths"),
        ),
        ("perf", Value::Bool(o.perf_dir.is_some())),
        (
            "vswitchd_extra_args",
            Value::Arr(
                o.vswitchd_args
                    .iter()
                    .map(|a| Value::str(a.clone()))
                    .collect(),
            ),
        ),
    ])
}

/// One comparison; the order alternates between repetitions so that a slow
/// drift of the machine does not always favour the same switch.
fn repetition(o: &Options, lab: &Lab, i: usize) -> Result<Rep, String> {
    let mut order = vec!["vswitch", "bridge"];
    if i % 2 == 1 {
        order.reverse();
    }
    order.retain(|w| match o.only {
        Some(Only::Vswitch) => *w == "vswitch",
        Some(Only::Bridge) => *w == "bridge",
        None => true,
    });
    let background = wait_quiet(o)?;
    let busy: Vec<String> = background
        .iter()
        .map(|c| format!("{:.0}%", c.busy))
        .collect();
    println!(
        "\nrepetition {}/{}: CPUs busy before start (others' work): {}",
        i + 1,
        o.reps,
        busy.join(", ")
    );
    if background.iter().any(|c| c.busy > 10.0) {
        println!("  warning: the machine is not idle; figures will be low and noisy");
    }
    let others = measure::other_daemons(None);
    if !others.is_empty() {
        println!(
            "  warning: other vswitchd processes are running (pids {:?}); their poll threads \
             may share the switch CPU",
            others
        );
    }
    let mut rep = Rep {
        order: order.clone(),
        background,
        other_daemons: others,
        vswitch: None,
        bridge: None,
    };
    for which in order {
        let perf = o.perf_dir.as_deref().filter(|_| i == 0);
        match which {
            "vswitch" => rep.vswitch = Some(run_vswitch(o, lab, perf)?),
            _ => rep.bridge = Some(run_bridge(o, lab, perf)?),
        }
    }
    Ok(rep)
}

/// Busy share of every CPU over one second, once the machine is quiet
/// (every CPU under 10 % busy) or `--wait-quiet` has passed.
fn wait_quiet(o: &Options) -> Result<Vec<cpu::CpuShare>, String> {
    let end = Instant::now() + o.wait_quiet;
    let mut said = false;
    loop {
        let b = measure::background(Duration::from_secs(1))?;
        if b.iter().all(|c| c.busy < 10.0) || Instant::now() >= end {
            return Ok(b);
        }
        if !said {
            println!(
                "  waiting up to {:.0} s for the machine to be quiet...",
                o.wait_quiet.as_secs_f64()
            );
            said = true;
        }
    }
}

/// `rps_cpus` mask of one CPU.
fn cpu_mask(cpu: usize) -> String {
    format!("{:x}", 1u128 << cpu.min(127))
}

fn run_vswitch(o: &Options, lab: &Lab, perf: Option<&Path>) -> Result<SwitchRun, String> {
    lab.set_rps("0")?;
    let d = Vswitchd::start(&o.bin_dir, lab, o.cpus.switch, &o.vswitchd_args)?;
    let modes: Vec<String> = d
        .port_modes
        .iter()
        .map(|(p, m)| format!("{p}: {m}"))
        .collect();
    println!(
        "  vswitch  vswitchd pid {}, ports {}",
        d.pid,
        modes.join(", ")
    );
    if d.port_modes
        .iter()
        .any(|(_, m)| !m.contains("afxdp native"))
    {
        println!("  warning: not every port is AF_XDP native");
    }
    let under = Under::Vswitchd(&d);
    let mut r = traffic(o, lab, "vswitch", under, perf)?;
    r.port_modes = d.port_modes.clone();
    let idle = measure::idle(&d, o.cpus, o.idle)?;
    println!(
        "  vswitch  idle: daemon {:.2}% of a core (poll thread {}, {} sleeps)",
        idle.daemon_pct,
        pct(idle.pmd_thread_pct),
        idle.pmd_sleeps
    );
    r.idle = Some(idle);
    Ok(r)
}

fn run_bridge(o: &Options, lab: &Lab, perf: Option<&Path>) -> Result<SwitchRun, String> {
    let br = KernelBridge::create(lab, &cpu_mask(o.cpus.switch))?;
    println!(
        "  bridge   {} with {} and {}, rps_cpus={} on both",
        br.name,
        lab.host_a,
        lab.host_b,
        cpu_mask(o.cpus.switch)
    );
    let mut r = traffic(o, lab, "bridge", Under::Bridge, perf)?;
    // The bridge as it comes (no RPS): its latency, for reference.
    br.set_rps("0")?;
    let p = measure::ping(lab, Under::Bridge, o.cpus, o.ping_count, false)?;
    println!(
        "  bridge   ping without RPS: median {:.0} us, p99 {:.0} us",
        p.median_us, p.p99_us
    );
    r.ping_no_rps = Some(p);
    // No switch at all: the direct veth, this machine's floor.
    measure::ping_to(lab, DIRECT_IP_B, Under::Bridge, o.cpus, 20, false)?; // ARP
    let p = measure::ping_to(lab, DIRECT_IP_B, Under::Bridge, o.cpus, o.ping_count, false)?;
    println!(
        "  (none)   ping over a direct veth, no switch: median {:.0} us, p99 {:.0} us",
        p.median_us, p.p99_us
    );
    r.ping_direct = Some(p);
    Ok(r)
}

/// UDP (each trafgen mode), TCP and ping through whichever switch is up.
fn traffic(
    o: &Options,
    lab: &Lab,
    name: &str,
    under: Under,
    perf: Option<&Path>,
) -> Result<SwitchRun, String> {
    warm_up(lab, name)?;
    let mut udp = Vec::new();
    for (k, &mode) in o.modes.iter().enumerate() {
        let perf_out = perf
            .filter(|_| k == 0)
            .map(|d| d.join(format!("{name}-udp-{}.perf.data", mode.name())));
        let perf_str = perf_out.as_ref().map(|p| p.to_string_lossy().into_owned());
        let u = measure::udp(
            lab,
            under,
            o.cpus,
            mode,
            o.warmup,
            o.udp,
            perf_str.as_deref(),
        )?;
        println!(
            "  {name:<8} UDP {:<6}: offered {:.3} Mpps, delivered {:.3} Mpps",
            mode.name(),
            u.offered_pps / 1e6,
            u.delivered_pps / 1e6,
        );
        if u.cpu.pmd_busy_pct.is_some() {
            println!(
                "           poll thread busy {} ({} outside TX system calls; avg batch {}), \
                 user {} + kernel {} of its core",
                pct(u.cpu.pmd_busy_pct),
                pct(u.cpu.pmd_busy_own_pct),
                u.cpu
                    .pmd_avg_batch
                    .map_or("-".into(), |b| format!("{b:.1}")),
                pct(u.cpu.pmd_user_pct),
                pct(u.cpu.pmd_kernel_pct),
            );
        }
        println!(
            "           switch CPU busy {:.0}% (softirq {:.0}%), generator CPU busy {:.0}% \
             (softirq {:.0}%)",
            u.cpu.switch_cpu.busy,
            u.cpu.switch_cpu.softirq,
            u.cpu.gen_cpu.busy,
            u.cpu.gen_cpu.softirq,
        );
        if let Some(p) = &perf_out {
            println!(
                "           profile: perf report -i {} --no-children",
                p.display()
            );
        }
        udp.push(u);
        warm_up(lab, name)?; // B's MAC stays learned; and the path still works
    }
    let perf_out = perf.map(|d| d.join(format!("{name}-tcp.perf.data")));
    let perf_str = perf_out.as_ref().map(|p| p.to_string_lossy().into_owned());
    let tcp = measure::tcp(lab, under, o.cpus, o.tcp, perf_str.as_deref())?;
    println!(
        "  {name:<8} TCP: {:.2} Gbit/s (retransmits {}); switch CPU busy {:.0}%, poll thread busy {}",
        tcp.gbps,
        tcp.retransmits.map_or("-".into(), |r| format!("{r:.0}")),
        tcp.cpu.switch_cpu.busy,
        pct(tcp.cpu.pmd_busy_pct)
    );
    if let Some(p) = &perf_out {
        println!(
            "           profile: perf report -i {} --no-children",
            p.display()
        );
    }
    let ping = measure::ping(lab, under, o.cpus, o.ping_count, false)?;
    println!(
        "  {name:<8} ping: median {:.0} us, p99 {:.0} us ({}/{} replies{})",
        ping.median_us,
        ping.p99_us,
        ping.received,
        ping.sent,
        ping.pmd_sleeps
            .map_or(String::new(), |s| format!(", poll thread slept {s} times"))
    );
    let loaded = measure::ping(lab, under, o.cpus, o.ping_count, true)?;
    println!(
        "  {name:<8} ping with {:.0} pps background: median {:.0} us, p99 {:.0} us{}",
        loaded.background_pps.unwrap_or(0.0),
        loaded.median_us,
        loaded.p99_us,
        loaded
            .pmd_sleeps
            .map_or(String::new(), |s| format!(", poll thread slept {s} times"))
    );
    Ok(SwitchRun {
        port_modes: Vec::new(),
        udp,
        tcp,
        ping,
        ping_loaded: loaded,
        ping_no_rps: None,
        ping_direct: None,
        idle: None,
    })
}

fn pct(x: Option<f64>) -> String {
    x.map_or("-".into(), |v| format!("{v:.1}%"))
}

/// A few pings until one gets through (up to ~5 s): the switch is
/// forwarding and has learned both MACs.
fn warm_up(lab: &Lab, name: &str) -> Result<(), String> {
    for _ in 0..5 {
        let out = cmd::run(
            "ip",
            &cmd::in_netns(
                &lab.ns_a,
                None,
                "ping",
                &["-n", "-c", "3", "-i", "0.1", "-W", "1", lab.ip_b],
            ),
            Duration::from_secs(10),
        )?;
        if out.success() {
            return Ok(());
        }
    }
    Err(format!(
        "no ping from {} to {} gets through the {name}",
        lab.ns_a, lab.ip_b
    ))
}

//! A container host at scale (issue 15): 100 namespaces attached to one
//! bridge, each reaching the first; then the daemon idles under 2 % of a
//! core with all their ports open.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};
use tests::container::Container;
use tests::{names, Daemon};

const N: usize = 100;

/// CPU time (user + system) of process `pid` so far, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name (which is in parentheses).
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

#[test]
fn a_hundred_containers_reach_the_first_and_the_switch_idles() {
    let d = Daemon::start();
    let br = names::unique("br");
    d.vsctl_ok(&["add-br", &br]);
    let cs: Vec<Container> = (0..N).map(|_| Container::process()).collect();
    let ip = |i: usize| Ipv4Addr::new(10, 81, (i / 200) as u8, (i % 200 + 1) as u8);
    for (i, c) in cs.iter().enumerate() {
        d.vsctl_ok(&["attach", &br, &c.name(), &format!("{}/16", ip(i))]);
    }
    let first = ip(0);
    let mut unreachable = Vec::new();
    for (i, c) in cs.iter().enumerate().skip(1) {
        if !c.wait_ping(first, Duration::from_secs(10)) {
            unreachable.push(i);
        }
    }
    assert!(
        unreachable.is_empty(),
        "containers {unreachable:?} cannot reach the first"
    );

    // Idle: no traffic for a second, then 5 s of measurement.
    std::thread::sleep(Duration::from_secs(2));
    let pid = d.pid().expect("the daemon runs");
    let hz = 100.0; // USER_HZ on Linux
    let (t0, c0) = (Instant::now(), cpu_ticks(pid));
    std::thread::sleep(Duration::from_secs(5));
    let (secs, ticks) = (t0.elapsed().as_secs_f64(), cpu_ticks(pid) - c0);
    let pct = ticks as f64 / hz / secs * 100.0;
    eprintln!("idle with {N} attached containers: {pct:.2} % of a core");
    assert!(
        pct < 2.0,
        "idle with {N} attached containers: {pct:.1} % of a core (target < 2 %)"
    );
}

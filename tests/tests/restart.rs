//! Restarts: a clean SIGTERM restart keeps the configuration and traffic
//! flows again; a `kill -9` in the middle of a stream of configuration
//! changes leaves a db that loads and holds a committed state; a killed
//! daemon leaves no XDP program on its ports.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use serde_json::Value;
use tests::cmd::{ip, Output};
use tests::daemon::Vsctl;
use tests::model::{self, show_bridges};
use tests::poll::{wait_for, wait_until};
use tests::traffic::pattern::Rng;
use tests::veth::xdp_attached;
use tests::{names, ping, tcp_transfer, udp_exchange, Daemon, Lab};

#[test]
fn sigterm_restart_keeps_config_and_traffic_flows() {
    let mut lab = Lab::new(2);
    let br2 = names::unique("br");
    let absent = names::unique("p");
    lab.daemon.vsctl_ok(&[
        "set",
        "bridge",
        &lab.bridge,
        "other_config:mac-aging-time=77",
        "other_config:mac-table-size=1000",
    ]);
    lab.daemon.vsctl_ok(&["add-br", &br2]);
    lab.daemon.vsctl_ok(&["add-port", &br2, &absent, "tag=10"]);
    let before = lab.show();
    assert_eq!(
        show_bridges(&before).len(),
        2,
        "two bridges configured: {before:#}"
    );

    let status = lab.daemon.stop();
    assert!(
        status.success(),
        "vswitchd exited with {status} after SIGTERM\n{}",
        lab.daemon.log_tail(40)
    );
    lab.daemon.restart();
    let mut after = Value::Null;
    let same = wait_until(Duration::from_secs(10), || {
        after = lab.show();
        after == before
    });
    assert!(
        same,
        "show after a SIGTERM restart differs from before (waited 10 s):\n  {}\nbefore: {before:#}",
        model::json_diff(&before, &after).join("\n  ")
    );

    lab.wait_connected();
    let (a, b) = (lab.host(0), lab.host(1));
    assert!(ping(a, b.ip(), 3), "ping after restart");
    let r = tcp_transfer(a, b, 5_000_000);
    assert!(r.ok(), "after restart: {r}");
    let u = udp_exchange(b, a, 100);
    assert!(u.ok(100), "after restart: {u}");
}

/// Bridge -> ports, without the bridge's internal port.
type Config = BTreeMap<String, BTreeSet<String>>;

fn config_of(show: &Value) -> Config {
    model::topology(show)
        .into_iter()
        .map(|(br, mut ports)| {
            ports.remove(&br);
            (br, ports)
        })
        .collect()
}

/// Picks a random configuration change valid in `state`; returns the
/// vswctl arguments and the state after it. Ports have no device behind
/// them (a missing device is allowed and only reported in `show`).
fn next_change(rng: &mut Rng, state: &Config) -> (Vec<String>, Config) {
    let mut next = state.clone();
    let bridges: Vec<String> = state.keys().cloned().collect();
    let ports: Vec<(String, String)> = state
        .iter()
        .flat_map(|(b, ps)| ps.iter().map(move |p| (b.clone(), p.clone())))
        .collect();
    let pick = |rng: &mut Rng, n: usize| rng.below(n as u64) as usize;
    let roll = rng.below(10);
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    if bridges.is_empty() || (roll < 2 && bridges.len() < 4) {
        let br = names::unique("br");
        next.insert(br.clone(), BTreeSet::new());
        return (s(&["add-br", &br]), next);
    }
    let br = &bridges[pick(rng, bridges.len())];
    match roll {
        0..=4 => {
            let p = names::unique("p");
            if let Some(ps) = next.get_mut(br) {
                ps.insert(p.clone());
            }
            let tag = format!("tag={}", 1 + rng.below(4094));
            if roll.is_multiple_of(2) {
                (s(&["add-port", br, &p, &tag]), next)
            } else {
                (s(&["add-port", br, &p]), next)
            }
        }
        5 | 6 if !ports.is_empty() => {
            let (b, p) = &ports[pick(rng, ports.len())];
            if let Some(ps) = next.get_mut(b) {
                ps.remove(p);
            }
            (s(&["del-port", b, p]), next)
        }
        7 => {
            next.remove(br);
            (s(&["del-br", br]), next)
        }
        _ => {
            // Two changes applied together or not at all.
            let nb = names::unique("br");
            let np = names::unique("p");
            next.insert(nb.clone(), [np.clone()].into());
            (s(&["add-br", &nb, "--", "add-port", &nb, &np]), next)
        }
    }
}

struct Stream {
    /// State after the last acknowledged change.
    acked: Config,
    acked_count: usize,
    /// The change that failed (the one in flight when the daemon died),
    /// with the state it would have produced.
    failed: Option<(Vec<String>, Config, Output)>,
}

fn change_stream(vs: &Vsctl, acked: &AtomicUsize, stop: &AtomicBool) -> Stream {
    let mut rng = Rng::new(0xC0FFEE);
    let mut st = Stream {
        acked: Config::new(),
        acked_count: 0,
        failed: None,
    };
    for _ in 0..2000 {
        if stop.load(Ordering::Acquire) {
            break;
        }
        let (args, next) = next_change(&mut rng, &st.acked);
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = vs.run(&argv);
        if !out.success() {
            st.failed = Some((args, next, out));
            break;
        }
        st.acked = next;
        st.acked_count += 1;
        acked.store(st.acked_count, Ordering::Release);
    }
    st
}

#[test]
fn kill9_during_config_changes_leaves_a_committed_state() {
    let mut d = Daemon::start();
    let vs = d.vsctl_runner();
    let acked = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let stream = thread::scope(|s| {
        let worker = s.spawn(|| change_stream(&vs, &acked, &stop));
        let enough = wait_until(Duration::from_secs(20), || {
            acked.load(Ordering::Acquire) >= 40
        });
        // Kill while the worker is (most likely) in the middle of a change.
        d.kill9();
        stop.store(true, Ordering::Release);
        let st = worker.join().expect("worker thread");
        assert!(
            enough,
            "only {} configuration changes were acknowledged in 20 s; last failure: {:?}",
            st.acked_count,
            st.failed.as_ref().map(|f| f.2.to_string())
        );
        st
    });
    d.restart();
    let list = model::string_list(&d.vsctl_json(&["list-br"]));
    let show = d.vsctl_json(&["show"]);
    let got = config_of(&show);
    let mut candidates = vec![stream.acked.clone()];
    if let Some((_, next, _)) = &stream.failed {
        candidates.push(next.clone());
    }
    assert!(
        candidates.contains(&got),
        "after kill -9 (with {} changes acknowledged) and restart, the config is neither the \
         last acknowledged state nor the state of the change in flight.\n\
         got: {got:#?}\nlast acknowledged: {:#?}\nin flight: {:#?}",
        stream.acked_count,
        stream.acked,
        stream.failed.as_ref().map(|f| (&f.0, &f.1))
    );
    let mut want_list: Vec<String> = got.keys().cloned().collect();
    let mut list_sorted = list.clone();
    want_list.sort();
    list_sorted.sort();
    assert_eq!(list_sorted, want_list, "list-br disagrees with show");

    // The restarted daemon takes changes again.
    let br = names::unique("br");
    d.vsctl_ok(&["add-br", &br]);
    assert!(model::string_list(&d.vsctl_json(&["list-br"])).contains(&br));
}

#[test]
fn kill9_leaves_no_xdp_program_attached() {
    let mut lab = Lab::new(2);
    for h in &lab.hosts {
        assert!(
            wait_until(Duration::from_secs(5), || xdp_attached(h.port())),
            "AF_XDP port {} shows no XDP program while the daemon runs:\n{}",
            h.port(),
            ip(&["-d", "link", "show", "dev", h.port()])
        );
    }
    lab.daemon.kill9();
    for h in &lab.hosts {
        let gone = wait_for(Duration::from_secs(5), || {
            (!xdp_attached(h.port())).then_some(())
        });
        assert!(
            gone.is_some(),
            "XDP program still attached to {} 5 s after kill -9:\n{}",
            h.port(),
            ip(&["-d", "link", "show", "dev", h.port()])
        );
    }
    lab.daemon.restart();
    lab.wait_connected();
    assert!(
        ping(lab.host(0), lab.host(1).ip(), 3),
        "ping after restart from kill -9"
    );
}

#[test]
fn pid_file_names_the_running_daemon() {
    let mut d = Daemon::start();
    let pid = d.pid().expect("running");
    let text = std::fs::read_to_string(d.pid_file())
        .unwrap_or_else(|e| panic!("{}: {e}", d.pid_file().display()));
    assert_eq!(text.trim(), pid.to_string(), "pid file content");
    d.restart();
    let pid2 = d.pid().expect("running");
    let text = std::fs::read_to_string(d.pid_file()).unwrap_or_default();
    assert_eq!(text.trim(), pid2.to_string(), "pid file after a restart");
}

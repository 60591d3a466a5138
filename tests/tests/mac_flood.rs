//! A MAC flood from one port must not evict the quiet hosts of the other
//! ports (the table evicts from the port with the most entries), and a
//! port's `other_config:mac-limit` caps what it can learn.

use std::time::Duration;

use tests::frames::{self, count_token, new_token, test_frame, Mac};
use tests::poll::wait_for;
use tests::traffic::pattern::Rng;
use tests::{send_raw, Capture, Host, Lab};

/// Frames of the flood: random sources, to a MAC no host has.
fn flood(rng: &mut Rng, n: usize) -> Vec<Vec<u8>> {
    const UNKNOWN_DST: Mac = [0x02, 0xee, 0xee, 0xee, 0xee, 0x02];
    (0..n)
        .map(|_| test_frame(UNKNOWN_DST, frames::random_mac(rng), 0))
        .collect()
}

/// Sends one frame from `from` to `to`; returns its token.
fn send_one(from: &Host, to: &Host) -> u64 {
    let tok = new_token();
    send_raw(
        from.ns(),
        from.ifname(),
        &[test_frame(to.mac(), from.mac(), tok)],
    )
    .expect("send");
    tok
}

/// Waits until `port` has received `n` more frames than `before`.
fn wait_rx(lab: &Lab, port: &str, before: u64, n: u64) {
    let got = wait_for(Duration::from_secs(10), || {
        let rx = lab.port_stats(port).rx_packets.saturating_sub(before);
        (rx >= n).then_some(rx)
    });
    assert!(
        got.is_some(),
        "{port} received fewer than {n} flood frames: {:?}",
        lab.port_stats(port)
    );
}

#[test]
fn a_mac_flood_does_not_leak_quiet_hosts_frames_and_mac_limit_caps_a_port() {
    let lab = Lab::new(3);
    let (a, b, c) = (lab.host(0), lab.host(1), lab.host(2));
    lab.daemon.vsctl_ok(&[
        "set",
        "bridge",
        &lab.bridge,
        "other_config:mac-table-size=256",
    ]);
    // The quiet hosts make themselves known (these first frames may flood).
    send_one(b, c);
    send_one(c, b);
    let learned = wait_for(Duration::from_secs(2), || {
        let fdb = lab.fdb();
        [b, c]
            .iter()
            .all(|h| fdb.iter().any(|e| e.mac == h.mac_str()))
            .then_some(())
    });
    assert!(
        learned.is_some(),
        "quiet hosts not learned: {:?}",
        lab.fdb()
    );

    let cap = Capture::start(a.ns(), a.ifname()).expect("start capture");
    let rx_before = lab.port_stats(a.port()).rx_packets;
    let mut rng = Rng::new(0xf100d);
    let mut quiet = Vec::new();
    for _ in 0..20 {
        // 10,000 random sources: 40 times the table, between each exchange.
        send_raw(a.ns(), a.ifname(), &flood(&mut rng, 10_000)).expect("send flood");
        quiet.push(send_one(b, c));
        quiet.push(send_one(c, b));
    }
    wait_rx(&lab, a.port(), rx_before, 100_000);
    // A broadcast marker from b, sent last: once a has it, a would have
    // the quiet frames had they been flooded.
    let marker = new_token();
    send_raw(
        b.ns(),
        b.ifname(),
        &[test_frame(frames::BROADCAST, b.mac(), marker)],
    )
    .expect("send marker");
    assert!(
        cap.wait_for(Duration::from_secs(3), |fs| count_token(fs, marker) == 1),
        "the broadcast marker from {} did not reach {}",
        b.describe(),
        a.describe()
    );
    let seen = cap.frames();
    let leaked: usize = quiet.iter().map(|&t| count_token(&seen, t)).sum();
    assert_eq!(
        leaked,
        0,
        "{leaked} of {} frames between the quiet hosts {} and {} leaked to the flooding port {}",
        quiet.len(),
        b.describe(),
        c.describe(),
        a.port()
    );
    let fdb = lab.fdb();
    assert!(fdb.len() <= 256, "fdb/show has {} entries", fdb.len());

    // A per-port limit, applied to the open port.
    lab.daemon
        .vsctl_ok(&["set", "port", a.port(), "other_config:mac-limit=10"]);
    let rx_before = lab.port_stats(a.port()).rx_packets;
    send_raw(a.ns(), a.ifname(), &flood(&mut rng, 2_000)).expect("send flood");
    wait_rx(&lab, a.port(), rx_before, 1_000);
    let fdb = lab.fdb();
    let on_a = fdb.iter().filter(|e| e.port == a.port()).count();
    assert!(
        (1..=10).contains(&on_a),
        "mac-limit=10 on {} but fdb/show has {on_a} entries there",
        a.port()
    );
    for h in [b, c] {
        assert!(
            fdb.iter()
                .any(|e| e.mac == h.mac_str() && e.port == h.port()),
            "{} was evicted: {fdb:?}",
            h.describe()
        );
    }
    // The shared column rule refuses a limit out of range.
    let out = lab
        .daemon
        .vsctl(&["set", "port", a.port(), "other_config:mac-limit=0"]);
    assert!(!out.success(), "mac-limit=0 was accepted");
}

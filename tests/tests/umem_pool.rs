//! AF_XDP ports take their packet memory from shared regions of 16,384
//! frames, about four single-queue ports each (README, "No copies in user
//! space"): frames between ports of one region move without a copy, frames
//! between regions are copied. Six ports span two regions; traffic must
//! arrive intact within and across them, also after ports were removed and
//! added again (each opening takes fresh frames from the pool).

use tests::{assert_ping_mesh, tcp_transfer, Lab};

fn transfer(lab: &Lab, a: usize, b: usize) {
    let r = tcp_transfer(lab.host(a), lab.host(b), 8 << 20);
    assert!(r.ok(), "TCP {a} -> {b}: {r:?}");
}

#[test]
fn ports_of_several_regions_forward_intact() {
    let lab = Lab::new(6);
    assert_ping_mesh(&lab.hosts, 2);
    // The first four ports opened share a region, the last two another.
    for (a, b) in [(0, 1), (1, 0), (0, 5), (5, 2), (4, 5)] {
        transfer(&lab, a, b);
    }

    for _ in 0..3 {
        for h in &lab.hosts[..2] {
            lab.daemon.vsctl_ok(&["del-port", &lab.bridge, h.port()]);
            lab.daemon.vsctl_ok(&["add-port", &lab.bridge, h.port()]);
        }
    }
    let show = lab.show();
    for h in &lab.hosts {
        let p = tests::model::show_port(&show, h.port())
            .unwrap_or_else(|| panic!("port {} missing: {show:#}", h.port()));
        assert_eq!(p["backend"], "afxdp", "{p}");
        assert!(p["error"].is_null(), "{p}");
    }
    assert_ping_mesh(&lab.hosts, 1);
    for (a, b) in [(0, 1), (0, 5), (3, 1)] {
        transfer(&lab, a, b);
    }
}

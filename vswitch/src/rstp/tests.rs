//! RSTP bridges joined by simulated links, with a fake clock: BPDUs are
//! encoded and decoded on the way, as on a wire.

use super::*;

/// Bridges and the links between their ports: (bridge, port) pairs.
struct Net {
    bridges: Vec<Rstp>,
    links: Vec<((usize, PortNo), (usize, PortNo))>,
    now: u64,
    flushes: Vec<u32>,
}

fn cfg(n: u8) -> BridgeCfg {
    BridgeCfg {
        priority: 32768,
        mac: [2, 0, 0, 0, 0, n],
        hello: 2,
        max_age: 20,
        forward_delay: 15,
    }
}

impl Net {
    /// `n` bridges; bridge i has ports 1..=ports[i].
    fn new(ports: &[u16]) -> Net {
        let bridges = ports
            .iter()
            .enumerate()
            .map(|(i, &n)| {
                let mut r = Rstp::new(cfg(i as u8 + 1));
                let list: Vec<(PortNo, PortCfg)> =
                    (1..=n).map(|p| (p, PortCfg::default())).collect();
                r.set_ports(&list, 0);
                r
            })
            .collect();
        Net {
            bridges,
            links: Vec::new(),
            now: 0,
            flushes: vec![0; ports.len()],
        }
    }

    fn link(&mut self, a: (usize, PortNo), b: (usize, PortNo)) {
        self.links.push((a, b));
    }

    fn peer(&self, at: (usize, PortNo)) -> Option<(usize, PortNo)> {
        self.links.iter().find_map(|&(a, b)| {
            if a == at {
                Some(b)
            } else if b == at {
                Some(a)
            } else {
                None
            }
        })
    }

    /// Runs for `ms` in 50 ms steps.
    fn run(&mut self, ms: u64) {
        let end = self.now + ms;
        while self.now < end {
            let mut wire = Vec::new();
            for (i, b) in self.bridges.iter_mut().enumerate() {
                let a = b.tick(self.now);
                if a.flush {
                    self.flushes[i] += 1;
                }
                for (port, bpdu) in a.send {
                    wire.push(((i, port), bpdu::build(cfg(i as u8 + 1).mac, &bpdu)));
                }
            }
            for (from, frame) in wire {
                if let Some((j, port)) = self.peer(from) {
                    let b = bpdu::parse(&frame).expect("a BPDU this switch sent parses");
                    self.bridges[j].receive(port, &b, self.now);
                }
            }
            self.now += 50;
        }
    }

    fn port(&self, b: usize, p: PortNo) -> (Role, State) {
        let port = &self.bridges[b].ports[&p];
        (port.role, port.state)
    }
}

use Role::*;
use State::*;

#[test]
fn a_port_that_hears_its_own_bridge_is_a_backup_and_discards() {
    // Ports 1 and 2 joined by one veth; port 3 leads to a host.
    let mut net = Net::new(&[3]);
    net.link((0, 1), (0, 2));
    net.run(1000);
    assert_eq!(net.port(0, 2), (Backup, Discarding));
    net.run(5000);
    assert_eq!(net.port(0, 2), (Backup, Discarding));
    assert_eq!(net.port(0, 1).0, Designated);
    assert_eq!(
        net.port(0, 1).1,
        Forwarding,
        "port 1 is an edge once it hears nothing"
    );
    assert_eq!(net.port(0, 3), (Designated, Forwarding));
    assert!(net.bridges[0].ports[&3].oper_edge);
    // In a loop, the backup keeps hearing the designated port.
    net.run(60_000);
    assert_eq!(net.port(0, 2), (Backup, Discarding));
}

#[test]
fn a_triangle_blocks_one_port_and_converges_by_proposals() {
    // Bridge 0 (lowest MAC) is the root.
    let mut net = Net::new(&[2, 2, 2]);
    net.link((0, 1), (1, 1));
    net.link((1, 2), (2, 2));
    net.link((2, 1), (0, 2));
    net.run(2000);
    assert_eq!(net.bridges[0].root(), (net.bridges[0].id(), 0, None));
    for b in &net.bridges {
        assert_eq!(b.root().0, net.bridges[0].id());
    }
    assert_eq!(net.port(1, 1), (Root, Forwarding));
    assert_eq!(net.port(2, 1), (Root, Forwarding));
    // Between bridges 1 and 2, the lower bridge id is designated.
    assert_eq!(net.port(1, 2), (Designated, Forwarding));
    assert_eq!(net.port(2, 2), (Alternate, Discarding));
    // The root's ports forward after the agreement, not after 30 s.
    assert_eq!(net.port(0, 1), (Designated, Forwarding));
    assert_eq!(net.port(0, 2), (Designated, Forwarding));
    // And it stays so.
    net.run(60_000);
    assert_eq!(net.port(2, 2), (Alternate, Discarding));
    assert_eq!(net.port(1, 2), (Designated, Forwarding));
}

#[test]
fn the_alternate_takes_over_when_the_root_link_goes() {
    let mut net = Net::new(&[2, 2, 2]);
    net.link((0, 1), (1, 1));
    net.link((1, 2), (2, 2));
    net.link((2, 1), (0, 2));
    net.run(3000);
    let flushes = net.flushes[2];
    net.links.retain(|&(a, _)| a != (2, 1));
    // The root's information ages out after 3 hellos (6 s).
    net.run(8000);
    assert_eq!(net.port(2, 2), (Root, Forwarding));
    assert_eq!(net.port(1, 2).0, Designated);
    assert_eq!(net.port(1, 2).1, Forwarding);
    assert!(
        net.flushes[2] > flushes,
        "no MAC flush on the topology change"
    );
}

#[test]
fn a_lower_priority_makes_a_bridge_the_root() {
    let mut net = Net::new(&[1, 1]);
    net.link((0, 1), (1, 1));
    net.run(2000);
    assert_eq!(net.port(1, 1).0, Root);
    let mut c = cfg(2);
    c.priority = 4096;
    net.bridges[1].set_cfg(c);
    net.run(2000);
    assert_eq!(net.port(0, 1), (Root, Forwarding));
    assert_eq!(net.port(1, 1), (Designated, Forwarding));
    assert_eq!(net.bridges[0].root().0, bridge_id(4096, [2, 0, 0, 0, 0, 2]));
}

#[test]
fn disabled_and_admin_edge_ports() {
    let mut r = Rstp::new(cfg(1));
    let edge = PortCfg {
        admin_edge: true,
        ..PortCfg::default()
    };
    let off = PortCfg {
        enabled: false,
        ..PortCfg::default()
    };
    r.set_ports(&[(1, edge), (2, off), (3, PortCfg::default())], 0);
    let a = r.tick(0);
    assert!(a.states_changed);
    assert_eq!(r.ports[&1].state, Forwarding);
    assert_eq!(r.ports[&2].role, Disabled);
    assert_eq!(r.ports[&2].state, Forwarding);
    assert_eq!(r.ports[&3].state, Discarding);
    // A disabled port sends no BPDU; the others do.
    assert!(a.send.iter().all(|(p, _)| *p != 2));
    assert_eq!(a.send.len(), 2);
    // Port 3 hears nothing for 3 s: an edge, forwarding.
    r.tick(3000);
    assert_eq!(r.ports[&3].state, Forwarding);
}

#[test]
fn the_transmit_hold_caps_bpdus() {
    let mut r = Rstp::new(cfg(1));
    r.set_ports(&[(1, PortCfg::default())], 0);
    let mut sent = 0;
    for t in 0..20 {
        for p in r.ports.values_mut() {
            p.send_now = true;
        }
        sent += r.tick(t * 10).send.len();
    }
    assert_eq!(sent, TX_HOLD as usize);
}

//! RSTP under hostile BPDUs: arbitrary bytes, mostly shaped as BPDUs,
//! arrive on the ports of a bridge while time passes. Invariants: whatever
//! parses builds back to a BPDU that parses the same; a bridge has at most
//! one root port, and none when it believes itself the root; an alternate
//! or backup port discards; no port sends more than TX_HOLD BPDUs per
//! hold window.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vswitch::rstp::bpdu;
use vswitch::rstp::{BridgeCfg, PortCfg, Role, Rstp, State, TX_HOLD};

fuzz_target!(|data: &[u8]| {
    let cfg = BridgeCfg {
        priority: 32768,
        mac: [2, 0, 0, 0, 0, 1],
        hello: 2,
        max_age: 20,
        forward_delay: 15,
    };
    let mut r = Rstp::new(cfg);
    let ports: Vec<(u16, PortCfg)> = (1..=4).map(|p| (p, PortCfg::default())).collect();
    r.set_ports(&ports, 0);
    let mut now = 0u64;
    let mut sent = [0u32; 5];
    let mut window = 0u64;
    // Records: port, time step, length, then that many bytes after an
    // RST BPDU header (so most records parse).
    let mut rest = data;
    while let [port, step, len, tail @ ..] = rest {
        let n = (*len as usize).min(tail.len());
        let (body, next) = tail.split_at(n);
        rest = next;
        let mut frame = bpdu::build(cfg.mac, &sample());
        for (i, b) in body.iter().enumerate() {
            if let Some(x) = frame.get_mut(14 + i) {
                *x = *b;
            }
        }
        if let Some(b) = bpdu::parse(&frame) {
            if !b.tcn {
                let again = bpdu::parse(&bpdu::build(cfg.mac, &b));
                assert_eq!(again.map(|a| a.vector), Some(b.vector));
            }
            r.receive(u16::from(*port % 5), &b, now);
        }
        now += u64::from(*step) * 20;
        if now >= window + 1000 {
            window = now;
            sent = [0; 5];
        }
        let a = r.tick(now);
        for (p, _) in &a.send {
            sent[usize::from(*p)] += 1;
            // A port's hold windows last at least a second, so any second
            // of ours meets at most two of them.
            assert!(
                sent[usize::from(*p)] <= 2 * TX_HOLD,
                "port {p} sent too many BPDUs"
            );
        }
        let (root, _, root_port) = r.root();
        let roots = r.ports.values().filter(|p| p.role == Role::Root).count();
        assert!(roots <= 1);
        assert_eq!(roots == 1, root_port.is_some());
        if root == r.id() {
            assert!(root_port.is_none());
        }
        for p in r.ports.values() {
            if matches!(p.role, Role::Alternate | Role::Backup) {
                assert_eq!(p.state, State::Discarding);
            }
        }
    }
});

fn sample() -> bpdu::Bpdu {
    bpdu::Bpdu {
        vector: bpdu::Vector {
            root: 0x8000_0200_0000_0000,
            cost: 20_000,
            bridge: 0x8000_0200_0000_0002,
            port: 0x8001,
        },
        times: bpdu::Times {
            message_age: 1,
            max_age: 20,
            hello: 2,
            forward_delay: 15,
        },
        flags: bpdu::PROPOSAL,
        tcn: false,
    }
    .with_role(bpdu::WireRole::Designated)
}

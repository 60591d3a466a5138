//! ARP suppression for an overlay network: a stage that answers ARP
//! requests for addresses the control plane already knows (every member of
//! the network, on this host or another), so that those requests never
//! flood across the tunnel. What it does not know continues to L2 and is
//! flooded as usual.
//!
//! The table is swapped whole by the control plane ([`ArpTable::set`]);
//! the stage only takes its lock for ARP frames, so other traffic pays one
//! ethertype comparison.

use crate::router::arp;
use crate::stage::{Ctx, Stage};
use crate::wire::{be16, eth};
use crate::{Packet, Verdict};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

/// IPv4 address (host order) to MAC.
pub type Answers = HashMap<u32, [u8; 6]>;

/// The addresses answered, shared between the control plane and the stage.
#[derive(Default)]
pub struct ArpTable {
    answers: Mutex<Arc<Answers>>,
}

impl ArpTable {
    /// Replaces every answer.
    pub fn set(&self, answers: Answers) {
        *self.answers.lock().unwrap_or_else(PoisonError::into_inner) = Arc::new(answers);
    }

    pub fn get(&self) -> Arc<Answers> {
        self.answers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// The stage: between VLAN classification and L2.
pub struct ArpResponder(pub Arc<ArpTable>);

/// What the responder does with `frame` (untagged) received on `in_port`.
fn respond(answers: &Answers, pkt: &mut Packet) -> Verdict {
    let in_port = pkt.meta.in_port;
    let frame = pkt.data_mut();
    let Some(a) = arp::parse(frame) else {
        return Verdict::Continue;
    };
    // A gratuitous ARP or a probe (sender = target, or sender 0) is an
    // announcement, not a question; L2 floods it as usual.
    if !a.request || a.sender_ip == a.target_ip || a.sender_ip == 0 {
        return Verdict::Continue;
    }
    match answers.get(&a.target_ip) {
        // The owner itself asking (duplicate address detection) or a
        // member asking for itself: let the real owner answer.
        Some(mac) if *mac == a.sender_mac => Verdict::Continue,
        Some(mac) => {
            arp::answer_in_place(frame, &a, *mac, a.target_ip);
            Verdict::Output(in_port)
        }
        None => Verdict::Continue,
    }
}

impl Stage for ArpResponder {
    fn name(&self) -> &'static str {
        "arp-responder"
    }

    fn keeps_gso(&self) -> bool {
        true
    }

    fn process(&self, _cx: &Ctx, pkts: &mut [Packet], verdicts: &mut [Verdict]) {
        let mut answers: Option<Arc<Answers>> = None;
        for (pkt, v) in pkts.iter_mut().zip(verdicts.iter_mut()) {
            if *v != Verdict::Continue || pkt.len() < arp::FRAME_LEN {
                continue;
            }
            if be16(pkt.data(), eth::ETHERTYPE.start) != eth::TYPE_ARP {
                continue;
            }
            let table = answers.get_or_insert_with(|| self.0.get());
            *v = respond(table, pkt);
        }
    }

    fn for_trace(&self) -> Option<Arc<dyn Stage>> {
        // Stateless apart from the table, which a trace only reads.
        Some(Arc::new(ArpResponder(self.0.clone())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ASKER: [u8; 6] = [2, 0, 0, 0, 0, 1];
    const OWNER: [u8; 6] = [2, 0, 0, 0, 0, 2];

    fn request(sender: [u8; 6], sip: u32, tip: u32) -> Packet {
        let mut p = Packet::new();
        assert!(p.fill(&arp::request(sender, sip, tip)));
        p.meta.in_port = 3;
        p
    }

    fn run(table: &Arc<ArpTable>, mut pkts: Vec<Packet>) -> (Vec<Packet>, Vec<Verdict>) {
        let mut v = vec![Verdict::Continue; pkts.len()];
        ArpResponder(table.clone()).process(&Ctx::default(), &mut pkts, &mut v);
        (pkts, v)
    }

    #[test]
    fn a_known_address_is_answered_back_out_the_asking_port() {
        let t = Arc::new(ArpTable::default());
        t.set(HashMap::from([(0x0a00_0002, OWNER)]));
        let (pkts, v) = run(&t, vec![request(ASKER, 0x0a00_0001, 0x0a00_0002)]);
        assert_eq!(v, [Verdict::Output(3)]);
        let a = arp::parse(pkts[0].data()).unwrap();
        assert!(!a.request);
        assert_eq!(a.sender_mac, OWNER);
        assert_eq!(a.sender_ip, 0x0a00_0002);
        assert_eq!(&pkts[0].data()[eth::DST], &ASKER);
    }

    #[test]
    fn unknown_addresses_announcements_and_other_frames_go_on_to_l2() {
        let t = Arc::new(ArpTable::default());
        t.set(HashMap::from([(0x0a00_0002, OWNER)]));
        let mut short = Packet::new();
        assert!(short.fill(&[0xff; 20]));
        let (_, v) = run(
            &t,
            vec![
                request(ASKER, 0x0a00_0001, 0x0a00_0009),
                request(OWNER, 0x0a00_0002, 0x0a00_0002),
                request(OWNER, 0x0a00_0001, 0x0a00_0002),
                request(ASKER, 0, 0x0a00_0002),
                short,
            ],
        );
        assert_eq!(v, [Verdict::Continue; 5]);
    }

    #[test]
    fn a_new_table_replaces_the_old_one() {
        let t = Arc::new(ArpTable::default());
        t.set(HashMap::from([(0x0a00_0002, OWNER)]));
        t.set(HashMap::new());
        let (_, v) = run(&t, vec![request(ASKER, 0x0a00_0001, 0x0a00_0002)]);
        assert_eq!(v, [Verdict::Continue]);
    }
}

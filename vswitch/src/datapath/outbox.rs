//! Sending what the router could not send in place: ARP questions, the
//! packets that waited for an answer, ICMP errors. The forwarder empties
//! the outbox after a batch that filled it; the control thread empties it
//! after repeating unanswered questions, when no traffic may come.

use super::Snapshot;
use pipeline::router::{Router, Target};
use pipeline::vlan::Egress;
use std::sync::PoisonError;

/// Sends every frame of `router`'s outbox (untagged: the router works in
/// VLAN 0).
pub fn drain(snap: &Snapshot, router: &Router) {
    for (to, frame) in router.state.take_outbox() {
        match to {
            Target::Port(p) => send(snap, p, &frame),
            Target::Bridge(b) => {
                for &p in snap.bridges.get(b).map_or(&[][..], |b| &b.ports[..]) {
                    send(snap, p, &frame);
                }
            }
        }
    }
}

fn send(snap: &Snapshot, port: pipeline::PortNo, frame: &[u8]) {
    let Some(out) = snap.port(port) else {
        return;
    };
    if out.is_tunnel() || out.vlan.egress(0, 0) != Egress::Untagged {
        return;
    }
    let mut tx = out.tx.lock().unwrap_or_else(PoisonError::into_inner);
    let ok = frame.len() <= out.max_frame && tx.send(frame);
    tx.flush();
    if ok {
        out.stats.add_tx_locked(1, frame.len() as u64);
    }
}

//! The datapath as the poll threads see it: an immutable [`Snapshot`] of
//! bridges and ports built by the control thread, swapped in between
//! batches, plus the forwarding step that joins the pipeline stages to the
//! ports' transmit halves.

pub mod cycles;
pub mod forward;
pub mod gso;
pub mod mirror;
pub mod outbox;
pub mod patch;
pub mod pmd;
pub mod stats;
pub mod storm;

use crate::capture::PortTaps;
use pipeline::l2::L2Switch;
use pipeline::router::{GatewayStage, Router, UplinkStage};
use pipeline::stage::{Chain, Stage};
use pipeline::tunnel::Encap;
use pipeline::vlan::{VlanIngress, VlanPort};
use pipeline::{MacTable, PortNo};
use ports::TxQueue;
use stats::PortStats;
use std::sync::{Arc, Mutex};

/// A port in a snapshot. The transmit half is shared by all poll threads and
/// locked once per batch.
pub struct DpPort {
    pub name: String,
    pub port_no: PortNo,
    pub max_frame: usize,
    pub tx: Mutex<Box<dyn TxQueue>>,
    /// `TxQueue::flush_is_syscall`: time the flush (two TSC reads, not
    /// worth it around a flush that does nothing).
    pub timed_flush: bool,
    /// `TxQueue::takes_gso`: super-frames may leave whole.
    pub takes_gso: bool,
    pub stats: Arc<PortStats>,
    /// Storm control: the frames this port's traffic may flood.
    pub flood_limit: storm::FloodLimit,
}

pub struct DpBridge {
    pub name: String,
    /// Every port of the bridge that can transmit (flood list).
    pub ports: Vec<PortNo>,
    pub macs: Arc<Mutex<MacTable>>,
    /// Port mirrors (usually none).
    pub mirrors: Vec<mirror::MirrorRt>,
}

/// A port as one snapshot places it: in which bridge (by index; none for
/// a VXLAN endpoint, whose frames re-enter on tunnel ports), the stages a
/// frame received on it goes through, and how frames leave by it.
#[derive(Clone)]
pub struct PortRef {
    pub dp: Arc<DpPort>,
    pub bridge: Option<usize>,
    pub vlan: Arc<VlanPort>,
    /// The ingress chain: for a bridge port, VLAN classification then L2;
    /// for a VXLAN endpoint, decapsulation.
    pub ingress: Chain,
    /// For a tunnel port: the outer headers of each remote.
    pub encap: Option<Arc<Encap>>,
    /// A routed port (the uplink): in no bridge, its packets leave by the
    /// ports its chain names.
    pub routed: bool,
    /// Captures and patch peer: `None` for an ordinary port, so the
    /// forwarder pays one branch per batch and output for the lab tools.
    pub hooks: Option<Arc<Hooks>>,
}

/// What a port rarely has, kept behind one pointer.
#[derive(Default)]
pub struct Hooks {
    /// The captures watching this port.
    pub taps: Option<PortTaps>,
    /// For a patch port: the port of the other bridge that its frames
    /// enter, in the same poll iteration.
    pub patch_peer: Option<PortNo>,
}

impl Hooks {
    /// `None` when there is nothing to hook.
    pub fn new(taps: Option<PortTaps>, patch_peer: Option<PortNo>) -> Option<Arc<Hooks>> {
        (taps.is_some() || patch_peer.is_some()).then(|| Arc::new(Hooks { taps, patch_peer }))
    }

    #[inline]
    pub fn taps(&self) -> Option<&PortTaps> {
        self.taps.as_ref()
    }
}

impl PortRef {
    /// A port of bridge number `bridge`, whose frames go through VLAN
    /// classification with `vlan`, then MAC learning and lookup in `macs`.
    pub fn in_bridge(
        dp: Arc<DpPort>,
        bridge: usize,
        vlan: Arc<VlanPort>,
        macs: &Arc<Mutex<MacTable>>,
    ) -> PortRef {
        let ingress = Chain::new(vec![
            Arc::new(VlanIngress(vlan.clone())),
            Arc::new(L2Switch {
                macs: macs.clone(),
                max_frame: dp.max_frame,
            }),
        ]);
        PortRef {
            dp,
            bridge: Some(bridge),
            vlan,
            ingress,
            encap: None,
            routed: false,
            hooks: None,
        }
    }

    /// [`PortRef::in_bridge`] for a bridge with a gateway: the router takes
    /// its frames between VLAN classification and L2.
    pub fn in_routed_bridge(
        dp: Arc<DpPort>,
        bridge: usize,
        vlan: Arc<VlanPort>,
        macs: &Arc<Mutex<MacTable>>,
        router: &Arc<Router>,
        gateway: usize,
    ) -> PortRef {
        let gw: Arc<dyn Stage> = Arc::new(GatewayStage {
            router: router.clone(),
            gateway,
        });
        let ingress = Chain::new(vec![
            Arc::new(VlanIngress(vlan.clone())),
            gw,
            Arc::new(L2Switch {
                macs: macs.clone(),
                max_frame: dp.max_frame,
            }),
        ]);
        PortRef {
            ingress,
            ..PortRef::in_bridge(dp, bridge, vlan, macs)
        }
    }

    /// The uplink: a routed port whose chain is the router's.
    pub fn uplink(dp: Arc<DpPort>, router: &Arc<Router>) -> PortRef {
        PortRef {
            dp,
            bridge: None,
            vlan: Arc::new(VlanPort::default()),
            ingress: Chain::new(vec![Arc::new(UplinkStage {
                router: router.clone(),
            })]),
            encap: None,
            routed: true,
            hooks: None,
        }
    }

    /// A VXLAN endpoint: in no bridge, its frames re-enter on the tunnel
    /// ports `decap` names.
    pub fn endpoint(dp: Arc<DpPort>, vlan: Arc<VlanPort>, decap: Arc<dyn Stage>) -> PortRef {
        PortRef {
            dp,
            bridge: None,
            vlan,
            ingress: Chain::new(vec![decap]),
            encap: None,
            routed: false,
            hooks: None,
        }
    }

    /// True when frames received on this port may come as TCP
    /// super-frames held whole: a bridge port whose stages all keep them.
    pub fn keeps_gso(&self) -> bool {
        self.bridge.is_some() && self.ingress.keeps_gso()
    }

    /// True when a super-frame held whole leaves by this port as it is:
    /// the port takes them (a TAP), untagged, not encapsulated. Others
    /// get its segments (`gso::Cutter`).
    #[inline]
    pub fn takes_whole(&self, tpid: Option<u16>) -> bool {
        self.dp.takes_gso && tpid.is_none() && self.encap.is_none()
    }

    /// A tunnel port (split horizon: floods from one never enter another).
    #[inline]
    pub fn is_tunnel(&self) -> bool {
        self.encap.is_some()
    }
}

impl std::ops::Deref for PortRef {
    type Target = DpPort;
    fn deref(&self) -> &DpPort {
        &self.dp
    }
}

/// One immutable view of the datapath configuration.
#[derive(Default)]
pub struct Snapshot {
    /// Indexed by port number; `None` for unused numbers and ports that are
    /// configured but not open.
    pub ports: Vec<Option<PortRef>>,
    pub bridges: Vec<DpBridge>,
    /// The router between bridges with a gateway and the uplink.
    pub router: Option<Arc<Router>>,
}

impl Snapshot {
    #[inline]
    pub fn port(&self, no: PortNo) -> Option<&PortRef> {
        self.ports.get(no as usize).and_then(|p| p.as_ref())
    }
}

#[cfg(test)]
mod tests;

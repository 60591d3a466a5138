//! The datapath as the poll threads see it: an immutable [`Snapshot`] of
//! bridges and ports built by the control thread, swapped in between
//! batches, plus the forwarding step that joins the pipeline stages to the
//! ports' transmit halves.

pub mod cycles;
pub mod forward;
pub mod pmd;
pub mod stats;

use pipeline::vlan::VlanPort;
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
    pub stats: Arc<PortStats>,
}

pub struct DpBridge {
    pub name: String,
    /// Every port of the bridge that can transmit (flood list).
    pub ports: Vec<PortNo>,
    pub macs: Arc<Mutex<MacTable>>,
}

/// A port as one snapshot places it: in which bridge (by index).
#[derive(Clone)]
pub struct PortRef {
    pub dp: Arc<DpPort>,
    pub bridge: usize,
    pub vlan: Arc<VlanPort>,
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
}

impl Snapshot {
    #[inline]
    pub fn port(&self, no: PortNo) -> Option<&PortRef> {
        self.ports.get(no as usize).and_then(|p| p.as_ref())
    }
}

#[cfg(test)]
mod tests;

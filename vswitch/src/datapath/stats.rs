//! Per-port counters, shared between the poll threads (writers, once per
//! batch) and the control thread (reader).

use pipeline::DropReason;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

#[derive(Default)]
pub struct PortStats {
    pub rx_packets: AtomicU64,
    pub rx_bytes: AtomicU64,
    pub tx_packets: AtomicU64,
    pub tx_bytes: AtomicU64,
    /// Dropped by the kernel before reaching the switch (receive ring full).
    pub kernel_rx_drops: AtomicU64,
    drops: [AtomicU64; DropReason::COUNT],
}

impl PortStats {
    #[inline]
    pub fn add_rx(&self, packets: u64, bytes: u64) {
        self.rx_packets.fetch_add(packets, Relaxed);
        self.rx_bytes.fetch_add(bytes, Relaxed);
    }

    /// Adds transmitted frames. Only called with the port's TX lock held,
    /// so writers are serialised and a plain load and store is enough (no
    /// locked read-modify-write on the fast path); readers see whole values.
    #[inline]
    pub fn add_tx_locked(&self, packets: u64, bytes: u64) {
        if packets > 0 {
            self.tx_packets
                .store(self.tx_packets.load(Relaxed) + packets, Relaxed);
            self.tx_bytes
                .store(self.tx_bytes.load(Relaxed) + bytes, Relaxed);
        }
    }

    #[inline]
    pub fn add_drop(&self, reason: DropReason, n: u64) {
        self.drops[reason.index()].fetch_add(n, Relaxed);
    }

    pub fn drops(&self, reason: DropReason) -> u64 {
        self.drops[reason.index()].load(Relaxed)
    }

    pub fn snapshot(&self, port: &str) -> PortCounters {
        let mut drops: BTreeMap<String, u64> = DropReason::ALL
            .iter()
            .map(|r| (r.name().to_string(), self.drops[r.index()].load(Relaxed)))
            .collect();
        drops.insert(
            "kernel-rx-ring".to_string(),
            self.kernel_rx_drops.load(Relaxed),
        );
        let tx_dropped = DropReason::ALL
            .iter()
            .filter(|r| r.is_tx())
            .map(|r| drops[r.name()])
            .sum();
        PortCounters {
            port: port.to_string(),
            rx_packets: self.rx_packets.load(Relaxed),
            rx_bytes: self.rx_bytes.load(Relaxed),
            tx_packets: self.tx_packets.load(Relaxed),
            tx_bytes: self.tx_bytes.load(Relaxed),
            // Held for ARP is not lost (see DropReason::ArpWait).
            rx_dropped: drops.values().sum::<u64>()
                - tx_dropped
                - drops[DropReason::ArpWait.name()],
            tx_dropped,
            drops,
        }
    }
}

/// What `dump-ports` reports for one port.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PortCounters {
    pub port: String,
    pub rx_packets: u64,
    pub rx_bytes: u64,
    pub tx_packets: u64,
    pub tx_bytes: u64,
    pub rx_dropped: u64,
    pub tx_dropped: u64,
    pub drops: BTreeMap<String, u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_split_into_rx_and_tx() {
        let s = PortStats::default();
        s.add_rx(3, 180);
        s.add_tx_locked(2, 120);
        s.add_drop(DropReason::Runt, 2);
        s.add_drop(DropReason::TxFull, 1);
        let c = s.snapshot("p");
        assert_eq!(c.rx_packets, 3);
        assert_eq!(c.rx_dropped, 2);
        assert_eq!((c.tx_packets, c.tx_bytes), (2, 120));
        assert_eq!(c.tx_dropped, 1);
        assert_eq!(c.drops["runt"], 2);
    }
}

//! Where a packet goes after the stages: one output port, every other port of
//! its bridge (and VLAN), or nowhere for a counted reason.

use crate::packet::PortNo;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Output(PortNo),
    Flood,
    Drop(DropReason),
}

/// Why a packet was dropped. Each reason has its own counter per port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum DropReason {
    /// Shorter than an Ethernet header.
    Runt = 0,
    /// Larger than the port's frame limit.
    Oversize,
    /// The source MAC is a multicast or broadcast address.
    MulticastSource,
    /// The learned output port is the ingress port (hairpin).
    SamePort,
    /// The port is not in a bridge (being removed).
    NoBridge,
    /// VLAN not allowed on the ingress port (tag on an access port, VID not in trunks).
    VlanNotAllowed,
    /// A VLAN header that is cut short or otherwise unreadable.
    MalformedVlan,
    /// The output port's transmit ring was full.
    TxFull,
}

impl DropReason {
    pub const COUNT: usize = 8;
    pub const ALL: [DropReason; Self::COUNT] = [
        DropReason::Runt,
        DropReason::Oversize,
        DropReason::MulticastSource,
        DropReason::SamePort,
        DropReason::NoBridge,
        DropReason::VlanNotAllowed,
        DropReason::MalformedVlan,
        DropReason::TxFull,
    ];

    /// The counter name shown by `vswctl dump-ports`.
    pub fn name(self) -> &'static str {
        match self {
            DropReason::Runt => "runt",
            DropReason::Oversize => "oversize",
            DropReason::MulticastSource => "multicast-source",
            DropReason::SamePort => "same-port",
            DropReason::NoBridge => "no-bridge",
            DropReason::VlanNotAllowed => "vlan-not-allowed",
            DropReason::MalformedVlan => "malformed-vlan",
            DropReason::TxFull => "tx-full",
        }
    }

    #[inline]
    pub fn index(self) -> usize {
        self as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indices_match_table() {
        for (i, r) in DropReason::ALL.iter().enumerate() {
            assert_eq!(r.index(), i);
        }
    }
}

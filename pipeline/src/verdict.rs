//! What a stage decides for each packet: go on to the next stage, leave by
//! one port, flood, re-enter the pipeline as if received on another port
//! (a decapsulated frame comes in on its tunnel port), or drop for a
//! counted reason.

use crate::packet::PortNo;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Not decided yet: the next stage looks at it.
    Continue,
    Output(PortNo),
    /// Every port of the bridge (and VLAN) but the one it came in on.
    Flood,
    /// Run the ingress chain of this port next, as if received there
    /// (`meta.in_port` is already set to it).
    Reenter(PortNo),
    Drop(DropReason),
    /// Taken by the switch itself (an ARP answer addressed to the router):
    /// nothing to send, nothing lost.
    Consumed,
}

/// Declares [`DropReason`] from one table: variant, counter name, whether it
/// counts against the output port (a transmit drop), and what it means.
macro_rules! drop_reasons {
    ($( $(#[$doc:meta])* $variant:ident = $name:literal, $tx:literal; )*) => {
        /// Why a packet was dropped. Each reason has its own counter per port.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        #[repr(u8)]
        pub enum DropReason {
            $( $(#[$doc])* $variant, )*
        }

        impl DropReason {
            pub const ALL: &'static [DropReason] = &[$(DropReason::$variant,)*];
            pub const COUNT: usize = Self::ALL.len();

            /// The counter name shown by `vswctl dump-ports`.
            pub fn name(self) -> &'static str {
                match self { $(DropReason::$variant => $name,)* }
            }

            /// True for drops counted against the port a frame could not
            /// leave by, rather than the one it came in on.
            pub fn is_tx(self) -> bool {
                match self { $(DropReason::$variant => $tx,)* }
            }
        }
    };
}

drop_reasons! {
    /// Shorter than an Ethernet header.
    Runt = "runt", false;
    /// Larger than the ingress port's frame limit.
    Oversize = "oversize", false;
    /// The source MAC is a multicast or broadcast address.
    MulticastSource = "multicast-source", false;
    /// The learned output port is the ingress port (hairpin).
    SamePort = "same-port", false;
    /// The port is not in a bridge (being removed).
    NoBridge = "no-bridge", false;
    /// VLAN not allowed on the ingress port (tag on an access port, VID not in trunks).
    VlanNotAllowed = "vlan-not-allowed", false;
    /// A VLAN header that is cut short or otherwise unreadable.
    MalformedVlan = "malformed-vlan", false;
    /// A VXLAN datagram shorter than its header.
    TunnelShort = "vxlan-short", false;
    /// A VXLAN header without the I flag.
    TunnelBadFlags = "vxlan-bad-flags", false;
    /// No tunnel port has this VNI and remote.
    TunnelUnknownVni = "vxlan-unknown-vni", false;
    /// The frame inside a VXLAN datagram is not a valid Ethernet frame.
    TunnelInnerInvalid = "vxlan-inner-invalid", false;
    /// Sent to the uplink but not to the router's MAC or address (another
    /// host's traffic on a shared link).
    NotForRouter = "not-for-router", false;
    /// An IPv4 packet to the router whose headers do not hold together
    /// (IHL, lengths, an L4 header cut short).
    IpMalformed = "ip-malformed", false;
    /// A later IPv4 fragment whose first fragment was not seen.
    FragUnknown = "frag-unknown", false;
    /// Connection tracking marked the packet invalid (TCP flags, window).
    CtInvalid = "ct-invalid", false;
    /// A new connection found the connection table full.
    CtFull = "ct-full", false;
    /// Masquerade found no free port for a new connection.
    NatNoPort = "nat-no-port", false;
    /// A protocol masquerade does not translate (not TCP, UDP or ICMP echo).
    NatUnsupported = "nat-unsupported", false;
    /// An ICMP error about no tracked connection, or with garbage inside.
    IcmpUntracked = "icmp-untracked", false;
    /// No route: no uplink, or nothing at the router's own address.
    NoRoute = "no-route", false;
    /// The TTL ran out (answered with ICMP time exceeded).
    TtlExpired = "ttl-expired", false;
    /// Held until the next hop's MAC is known, then sent (counted here
    /// once; a hold that times out is counted by the router).
    ArpWait = "arp-wait", false;
    /// Crossed too many patch ports in one go (a ring of patch ports).
    PatchLoop = "patch-loop", false;
    /// Received on a mirror output port, which forwards nothing of its own.
    MirrorOutput = "mirror-output", false;
    /// A flood beyond the port's storm-control limit (`flood-limit`).
    FloodLimit = "flood-limit", false;
    /// Received on a port RSTP keeps from forwarding (discarding or
    /// learning).
    StpDiscarding = "rstp-discarding", false;
    /// A BPDU the control thread had no room for (a BPDU flood).
    BpduOverflow = "bpdu-overflow", false;
    /// The output port's transmit ring was full.
    TxFull = "tx-full", true;
    /// Larger than the output port (or its tunnel's underlay) can carry.
    TxTooBig = "tx-too-big", true;
}

impl DropReason {
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
        assert_eq!(DropReason::COUNT, DropReason::ALL.len());
    }

    #[test]
    fn names_are_unique() {
        let mut names: Vec<_> = DropReason::ALL.iter().map(|r| r.name()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), DropReason::COUNT);
    }
}

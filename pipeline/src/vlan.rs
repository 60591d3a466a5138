//! 802.1Q VLANs with Open vSwitch port semantics: access, trunk,
//! native-tagged, native-untagged and dot1q-tunnel (Q-in-Q).
//!
//! Inside the bridge a packet carries its VLAN in `meta.vlan` (with the
//! priority in `meta.pcp` and the outer TPID in `meta.tpid`) and no outer tag
//! in its bytes: ingress pops the tag, egress pushes one if the output port
//! wants it. Push and pop move the MAC addresses inside the headroom; the
//! payload is never copied.

use crate::packet::Packet;
use crate::stage::{Ctx, Stage};
use crate::verdict::{DropReason, Verdict};
use crate::wire::{be16, eth, put_be16, vlan};
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum VlanMode {
    #[default]
    Access,
    Trunk,
    NativeTagged,
    NativeUntagged,
    Dot1qTunnel,
}

/// A set of VLAN ids (4096 bits). `all` means every VLAN.
#[derive(Clone, PartialEq, Eq)]
pub struct VlanSet {
    bits: [u64; 64],
    all: bool,
}

impl std::fmt::Debug for VlanSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.all {
            return write!(f, "all");
        }
        f.debug_list()
            .entries((0..4096u16).filter(|v| self.contains(*v)))
            .finish()
    }
}

impl VlanSet {
    pub fn all() -> Self {
        VlanSet {
            bits: [0; 64],
            all: true,
        }
    }

    /// The given VLANs; an empty list means all, as in OVS `trunks`.
    pub fn from_list(list: &[u16]) -> Self {
        if list.is_empty() {
            return Self::all();
        }
        let mut s = VlanSet {
            bits: [0; 64],
            all: false,
        };
        for &v in list {
            s.insert(v);
        }
        s
    }

    pub fn insert(&mut self, v: u16) {
        let v = (v & vlan::VID_MASK) as usize;
        self.bits[v / 64] |= 1 << (v % 64);
    }

    #[inline]
    pub fn contains(&self, v: u16) -> bool {
        let v = (v & vlan::VID_MASK) as usize;
        self.all || self.bits[v / 64] & (1 << (v % 64)) != 0
    }
}

/// The VLAN configuration of one port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VlanPort {
    pub mode: VlanMode,
    /// Access VLAN, native VLAN, or the outer (service) VLAN of a tunnel.
    pub tag: u16,
    pub trunks: VlanSet,
    /// dot1q-tunnel: customer VLANs accepted.
    pub cvlans: VlanSet,
    /// dot1q-tunnel: TPID of the pushed outer tag (0x88a8 or 0x8100).
    pub qinq_tpid: u16,
}

impl Default for VlanPort {
    /// A port with no VLAN configuration: a trunk of all VLANs, untagged
    /// frames in VLAN 0.
    fn default() -> Self {
        VlanPort {
            mode: VlanMode::Trunk,
            tag: 0,
            trunks: VlanSet::all(),
            cvlans: VlanSet::all(),
            qinq_tpid: eth::TYPE_QINQ,
        }
    }
}

/// How a packet leaves a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Egress {
    /// The port is not in the packet's VLAN.
    No,
    Untagged,
    /// Push a tag with this TPID and the packet's VLAN.
    Tagged(u16),
}

impl VlanPort {
    /// OVS rules: `vlan_mode` unset means access when `tag` is set, trunk
    /// otherwise.
    pub fn new(
        mode: Option<VlanMode>,
        tag: Option<u16>,
        trunks: &[u16],
        cvlans: &[u16],
        qinq_8021q: bool,
    ) -> Self {
        let mode = mode.unwrap_or(if tag.is_some() {
            VlanMode::Access
        } else {
            VlanMode::Trunk
        });
        VlanPort {
            mode,
            tag: tag.unwrap_or(0),
            trunks: VlanSet::from_list(trunks),
            cvlans: VlanSet::from_list(cvlans),
            qinq_tpid: if qinq_8021q {
                eth::TYPE_VLAN
            } else {
                eth::TYPE_QINQ
            },
        }
    }

    /// Decides how a packet of `vid` (outer TPID `tpid`) leaves this port.
    #[inline]
    pub fn egress(&self, vid: u16, tpid: u16) -> Egress {
        let tpid = if tpid == 0 { eth::TYPE_VLAN } else { tpid };
        match self.mode {
            VlanMode::Access | VlanMode::Dot1qTunnel if vid == self.tag => Egress::Untagged,
            VlanMode::Access | VlanMode::Dot1qTunnel => Egress::No,
            // VLAN 0 (untagged) leaves a trunk only if `trunks` is empty or
            // lists 0, as in OVS.
            VlanMode::Trunk if !self.trunks.contains(vid) => Egress::No,
            VlanMode::Trunk if vid == 0 => Egress::Untagged,
            VlanMode::Trunk => Egress::Tagged(tpid),
            VlanMode::NativeTagged if vid == self.tag => Egress::Tagged(tpid),
            VlanMode::NativeUntagged if vid == self.tag => Egress::Untagged,
            VlanMode::NativeTagged | VlanMode::NativeUntagged
                if vid != 0 && self.trunks.contains(vid) =>
            {
                Egress::Tagged(tpid)
            }
            _ => Egress::No,
        }
    }
}

impl VlanPort {
    /// [`VlanPort::egress`] for a packet: a dot1q-tunnel port also checks
    /// the customer VLAN inside the frame against `cvlans`, both ways.
    #[inline]
    pub fn egress_packet(&self, pkt: &Packet) -> Egress {
        let e = self.egress(pkt.meta.vlan, pkt.meta.tpid);
        if self.mode != VlanMode::Dot1qTunnel || self.cvlans.all || e == Egress::No {
            return e;
        }
        let f = pkt.data();
        let tagged =
            f.len() > eth::HEADER_LEN + vlan::TAG_LEN && is_tpid(be16(f, eth::ETHERTYPE.start));
        if tagged
            && self
                .cvlans
                .contains(be16(f, vlan::OFFSET + 2) & vlan::VID_MASK)
        {
            e
        } else {
            Egress::No
        }
    }
}

#[inline]
fn is_tpid(t: u16) -> bool {
    t == eth::TYPE_VLAN || t == eth::TYPE_QINQ
}

/// Classifies one packet arriving on `port`: sets its VLAN and pops the
/// outer tag, or returns why it is dropped.
pub fn classify(pkt: &mut Packet, port: &VlanPort) -> Result<(), DropReason> {
    let f = pkt.data();
    if f.len() < eth::HEADER_LEN {
        return Err(DropReason::Runt);
    }
    let tpid = be16(f, eth::ETHERTYPE.start);
    let tagged = is_tpid(tpid);
    if !tagged {
        return classify_untagged(pkt, port);
    }
    // A tag needs its 4 bytes, the inner ethertype and some payload.
    if f.len() <= eth::HEADER_LEN + vlan::TAG_LEN {
        return Err(DropReason::MalformedVlan);
    }
    let tci = be16(f, vlan::OFFSET + 2);
    let (vid, pcp) = (tci & vlan::VID_MASK, (tci >> 13) as u8);
    let inner_tagged = is_tpid(be16(f, vlan::OFFSET + vlan::TAG_LEN));
    pkt.meta.pcp = pcp;
    pkt.meta.tpid = 0;
    let pop = |pkt: &mut Packet| -> Result<(), DropReason> {
        if pkt.remove_at(vlan::OFFSET, vlan::TAG_LEN) {
            Ok(())
        } else {
            Err(DropReason::MalformedVlan)
        }
    };
    match port.mode {
        VlanMode::Access => {
            if vid != 0 || inner_tagged {
                return Err(DropReason::VlanNotAllowed);
            }
            pop(pkt)?;
            pkt.meta.vlan = port.tag;
        }
        VlanMode::Trunk => {
            if !port.trunks.contains(vid) && vid != 0 {
                return Err(DropReason::VlanNotAllowed);
            }
            if vid == 0 && !port.trunks.contains(0) {
                return Err(DropReason::VlanNotAllowed);
            }
            pop(pkt)?;
            pkt.meta.tpid = tpid;
            pkt.meta.vlan = vid;
        }
        VlanMode::NativeTagged | VlanMode::NativeUntagged => {
            if vid == 0 {
                pop(pkt)?;
                pkt.meta.vlan = port.tag;
            } else if vid == port.tag || port.trunks.contains(vid) {
                pop(pkt)?;
                pkt.meta.tpid = tpid;
                pkt.meta.vlan = vid;
            } else {
                return Err(DropReason::VlanNotAllowed);
            }
        }
        VlanMode::Dot1qTunnel => {
            // The customer's frame, tag and all, travels inside the service
            // VLAN; only the cvlans filter looks at its tag.
            if !port.cvlans.contains(vid) {
                return Err(DropReason::VlanNotAllowed);
            }
            pkt.meta.vlan = port.tag;
            pkt.meta.tpid = port.qinq_tpid;
            pkt.meta.pcp = 0;
        }
    }
    Ok(())
}

/// The common case: an untagged frame. No bytes move.
#[inline]
fn classify_untagged(pkt: &mut Packet, port: &VlanPort) -> Result<(), DropReason> {
    let (vlan, tpid) = untagged_class(port)?;
    let m = &mut pkt.meta;
    (m.vlan, m.tpid, m.pcp) = (vlan, tpid, 0);
    Ok(())
}

/// The VLAN and TPID an untagged frame gets on `port`, or why it is
/// dropped: the same for every untagged frame of the port.
#[inline]
fn untagged_class(port: &VlanPort) -> Result<(u16, u16), DropReason> {
    match port.mode {
        VlanMode::Trunk if port.trunks.contains(0) => Ok((0, 0)),
        VlanMode::Dot1qTunnel if port.cvlans.all => Ok((port.tag, port.qinq_tpid)),
        VlanMode::Trunk | VlanMode::Dot1qTunnel => Err(DropReason::VlanNotAllowed),
        VlanMode::Access | VlanMode::NativeTagged | VlanMode::NativeUntagged => Ok((port.tag, 0)),
    }
}

/// The VLAN classification stage of one port: sets each packet's VLAN and
/// pops its outer tag, or drops it.
pub struct VlanIngress(pub Arc<VlanPort>);

impl Stage for VlanIngress {
    fn name(&self) -> &'static str {
        "vlan-ingress"
    }

    fn keeps_gso(&self) -> bool {
        true
    }

    fn process(&self, _cx: &Ctx, pkts: &mut [Packet], verdicts: &mut [Verdict]) {
        let port = &*self.0;
        // Decided once per call: every untagged frame is classified alike.
        let untagged_as = untagged_class(port);
        for (pkt, v) in pkts.iter_mut().zip(verdicts.iter_mut()) {
            if *v != Verdict::Continue {
                continue;
            }
            let untagged = matches!(
                pkt.data().get(eth::ETHERTYPE),
                Some(t) if !is_tpid(u16::from_be_bytes([t[0], t[1]]))
            );
            if !untagged {
                if let Err(r) = classify(pkt, port) {
                    *v = Verdict::Drop(r);
                }
                continue;
            }
            match untagged_as {
                Ok((vlan, tpid)) => {
                    let m = &mut pkt.meta;
                    (m.vlan, m.tpid, m.pcp) = (vlan, tpid, 0);
                }
                Err(r) => *v = Verdict::Drop(r),
            }
        }
    }
}

/// The 4 bytes of the outer tag a packet leaves with (TPID `tpid`, the
/// packet's VLAN and priority), to be written after the MAC addresses as
/// the frame is copied to its output.
#[inline]
pub fn tag_bytes(pkt: &Packet, tpid: u16) -> [u8; vlan::TAG_LEN] {
    let tci = vlan::tci(pkt.meta.pcp, pkt.meta.vlan);
    let (t, c) = (tpid.to_be_bytes(), tci.to_be_bytes());
    [t[0], t[1], c[0], c[1]]
}

/// Pushes an outer tag for the packet's VLAN. Returns false when there is
/// no headroom (cannot happen for received packets).
#[inline]
pub fn push_tag(pkt: &mut Packet, tpid: u16) -> bool {
    let tci = vlan::tci(pkt.meta.pcp, pkt.meta.vlan);
    match pkt.insert_at(vlan::OFFSET, vlan::TAG_LEN) {
        Some(gap) => {
            put_be16(gap, 0, tpid);
            put_be16(gap, 2, tci);
            true
        }
        None => false,
    }
}

/// Undoes [`push_tag`].
#[inline]
pub fn pop_tag(pkt: &mut Packet) {
    pkt.remove_at(vlan::OFFSET, vlan::TAG_LEN);
}

#[cfg(test)]
mod tests;

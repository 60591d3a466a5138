//! TCP connection states and sequence-window tracking, after Linux's
//! `nf_conntrack_proto_tcp.c`, simplified: no SYN_SENT2 (simultaneous
//! open), no SACK, no retransmission counting, and one timeout for all
//! transitory states.
//!
//! We sit in the middle and see both directions, but a packet we pass may
//! still be lost downstream, so the state machine only moves on what the
//! packet *claims* (flags), and the window check only refuses what no
//! correct peer would send: sequence numbers beyond what the receiver
//! could have advertised, or ACKs of data never sent.

use super::parse::TcpInfo;
use super::Dir;

pub mod flags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
    pub const URG: u8 = 0x20;
}
use flags::*;

/// The window scale option's maximum (RFC 7323).
const MAX_WSCALE: u8 = 14;
/// How far below the receiver's highest sequence an ACK may be when the
/// sender's window is still unknown (Linux's `MAXACKWINDOW`).
const MAX_ACK_WINDOW: u32 = 66_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TcpState {
    SynSent,
    SynRecv,
    Established,
    FinWait,
    CloseWait,
    LastAck,
    TimeWait,
    Close,
}

impl TcpState {
    /// The name `conntrack -L` prints.
    pub fn name(&self) -> &'static str {
        match self {
            TcpState::SynSent => "SYN_SENT",
            TcpState::SynRecv => "SYN_RECV",
            TcpState::Established => "ESTABLISHED",
            TcpState::FinWait => "FIN_WAIT",
            TcpState::CloseWait => "CLOSE_WAIT",
            TcpState::LastAck => "LAST_ACK",
            TcpState::TimeWait => "TIME_WAIT",
            TcpState::Close => "CLOSE",
        }
    }
}

/// A transition of the state table.
#[derive(Clone, Copy)]
enum Next {
    To(TcpState),
    /// Let the packet through, change nothing (e.g. a retransmitted
    /// SYN/ACK, a SYN on an established connection).
    Ignore,
    Invalid,
}

use Next::{Ignore as IG, Invalid as IV};
use TcpState::*;
const SS: Next = Next::To(SynSent);
const SR: Next = Next::To(SynRecv);
const ES: Next = Next::To(Established);
const FW: Next = Next::To(FinWait);
const CW: Next = Next::To(CloseWait);
const LA: Next = Next::To(LastAck);
const TW: Next = Next::To(TimeWait);
const CL: Next = Next::To(Close);

/// `[dir][packet kind][state]`; the state index is 0 for "none yet" then
/// the `TcpState` order. Packet kinds: SYN, SYN/ACK, FIN, ACK, RST.
#[rustfmt::skip]
const TABLE: [[[Next; 9]; 5]; 2] = [
    [ // original direction
        //  none sent sr  est fw  cw  la  tw  close
        [SS, SS, IG, IG, IG, IG, IG, SS, SS], // SYN: reopens TIME_WAIT/CLOSE
        [IV, IV, SR, IV, IV, IV, IV, IV, IV], // SYN/ACK
        [IV, IV, FW, FW, LA, LA, LA, TW, CL], // FIN
        [ES, IV, ES, ES, CW, CW, TW, TW, CL], // ACK: none -> est is pickup
        [IV, CL, CL, CL, CL, CL, CL, CL, CL], // RST
    ],
    [ // reply direction
        [IV, IG, IV, IV, IV, IV, IV, IV, IV], // SYN
        [IV, SR, IG, IG, IG, IG, IG, IG, IG], // SYN/ACK
        [IV, IV, FW, FW, LA, LA, LA, TW, CL], // FIN
        [IV, IG, SR, ES, CW, CW, TW, TW, CL], // ACK
        [IV, CL, CL, CL, CL, CL, CL, CL, CL], // RST
    ],
];

/// Flag combinations a TCP may send, ignoring PSH, ECE and CWR (Linux's
/// `tcp_valid_flags`). Everything else (SYN+FIN, SYN+RST, FIN without
/// ACK, no flag, all flags...) is invalid.
pub fn valid_flags(f: u8) -> bool {
    matches!(
        f & (FIN | SYN | RST | ACK | URG),
        SYN_ONLY | SYN_URG | SYN_ACK | RST | RST_ACK | FIN_ACK | FIN_ACK_URG | ACK | ACK_URG
    )
}
const SYN_ONLY: u8 = SYN;
const SYN_URG: u8 = SYN | URG;
const SYN_ACK: u8 = SYN | ACK;
const RST_ACK: u8 = RST | ACK;
const FIN_ACK: u8 = FIN | ACK;
const FIN_ACK_URG: u8 = FIN | ACK | URG;
const ACK_URG: u8 = ACK | URG;

/// Row of the state table for valid flags `f`.
fn kind(f: u8) -> usize {
    if f & RST != 0 {
        4
    } else if f & SYN != 0 {
        if f & ACK != 0 {
            1
        } else {
            0
        }
    } else if f & FIN != 0 {
        2
    } else {
        3
    }
}

/// `a` comes before `b` in sequence space.
#[inline]
fn before(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}

#[inline]
fn after(a: u32, b: u32) -> bool {
    before(b, a)
}

/// What we know of one direction's sequence space (Linux's `ip_ct_tcp_state`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Side {
    /// Highest sequence number sent, plus one.
    end: u32,
    /// Highest sequence number the peer has allowed (ack + window).
    maxend: u32,
    /// Largest window seen; 0 = nothing seen in this direction yet.
    maxwin: u32,
    scale: u8,
    /// The SYN carried a window scale option.
    wscale_seen: bool,
}

/// The TCP part of a connection entry.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct TcpTrack {
    pub state: Option<TcpState>,
    sides: [Side; 2],
    /// Picked up mid-stream: window scales unknown, so out-of-window
    /// packets are let through (Linux's `BE_LIBERAL`).
    liberal: bool,
}

/// Result of [`TcpTrack::packet`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// State (maybe) changed: refresh the timeout.
    Accepted,
    /// Let through without any change.
    Ignored,
    /// An orig-direction SYN on a TIME_WAIT or CLOSE entry: a new
    /// connection reusing the tuple; the entry was reset to SYN_SENT.
    Reopened,
    Invalid,
}

impl TcpTrack {
    pub fn packet(&mut self, dir: Dir, t: &TcpInfo) -> Outcome {
        if !valid_flags(t.flags) {
            return Outcome::Invalid;
        }
        let k = kind(t.flags);
        let cur = self.state.map_or(0, |s| s as usize + 1);
        let next = match TABLE[dir.index()][k][cur] {
            Next::Invalid => return Outcome::Invalid,
            Next::Ignore => return Outcome::Ignored,
            Next::To(s) => s,
        };
        let reopen =
            dir == Dir::Orig && k == 0 && matches!(self.state, Some(TimeWait) | Some(Close));
        let saved = *self;
        if reopen {
            *self = TcpTrack::default();
        }
        if self.state.is_none() && k != 0 {
            self.liberal = true;
        }
        if !self.in_window(dir, t) {
            *self = saved;
            return Outcome::Invalid;
        }
        self.state = Some(next);
        if reopen {
            Outcome::Reopened
        } else {
            Outcome::Accepted
        }
    }

    /// A simplified `tcp_in_window`: initialises a direction on its first
    /// packet, then checks and widens the windows. Returns false for an
    /// out-of-window packet (unless `liberal`), leaving nothing changed.
    fn in_window(&mut self, dir: Dir, t: &TcpInfo) -> bool {
        let (si, ri) = (dir.index(), dir.opposite().index());
        let syn = t.flags & SYN != 0;
        let has_ack = t.flags & ACK != 0;
        let seq = t.seq;
        let end = seq
            .wrapping_add(t.payload_len)
            .wrapping_add(syn as u32)
            .wrapping_add((t.flags & FIN != 0) as u32);
        let win = t.window as u32;
        let state = self.state;
        let mut s = self.sides[si];
        let mut r = self.sides[ri];

        let retransmitted_syn = (state == Some(SynSent) && dir == Dir::Orig)
            || (state == Some(SynRecv) && dir == Dir::Reply);
        if s.maxwin == 0 || (syn && retransmitted_syn && after(end, s.end)) {
            if syn {
                s.end = end;
                s.maxend = end;
                s.maxwin = win.max(1);
                s.wscale_seen = t.wscale.is_some();
                s.scale = t.wscale.unwrap_or(0).min(MAX_WSCALE);
                if has_ack && !(s.wscale_seen && r.wscale_seen) {
                    // Scaling is on only when both SYNs asked for it.
                    s.scale = 0;
                    r.scale = 0;
                }
            } else {
                s.end = end;
                s.maxwin = (win << s.scale).max(1);
                s.maxend = end.wrapping_add(s.maxwin);
                if r.maxwin == 0 && has_ack {
                    r.end = t.ack;
                    r.maxend = t.ack;
                }
            }
        }
        let ack = if has_ack && !(t.flags & RST != 0 && t.ack == 0) {
            t.ack
        } else {
            r.end
        };
        let max_ack_win = if s.maxwin == 0 {
            MAX_ACK_WINDOW
        } else {
            s.maxwin
        };
        let in_recv_win = r.maxwin == 0 || after(end, s.end.wrapping_sub(r.maxwin).wrapping_sub(1));
        let ok = before(seq, s.maxend.wrapping_add(1))
            && in_recv_win
            && before(ack, r.end.wrapping_add(1))
            && after(ack, r.end.wrapping_sub(max_ack_win).wrapping_sub(1));
        if !ok && !self.liberal {
            return false;
        }
        let win = if syn { win } else { win << s.scale };
        s.maxwin = s.maxwin.max(win);
        if after(end, s.end) {
            s.end = end;
        }
        if r.maxwin != 0 && after(end, s.maxend) {
            r.maxwin = r.maxwin.wrapping_add(end.wrapping_sub(s.maxend));
        }
        let limit = ack.wrapping_add(win);
        if after(limit, r.maxend.wrapping_sub(1)) {
            r.maxend = if win == 0 {
                limit.wrapping_add(1)
            } else {
                limit
            };
        }
        self.sides[si] = s;
        self.sides[ri] = r;
        true
    }
}

use super::*;
use crate::conntrack::tcp_flags::{ACK, FIN, PSH, RST, SYN, URG};

const C: u32 = CONTAINER;
const S: u32 = SERVER;

/// A table with the client->server connection inserted (no NAT).
fn conn() -> (ConnTable, ConnId) {
    let mut t = ConnTable::new(Config::default());
    let o = tup(6, C, 40000, S, 80);
    let id = t.insert(o, o.reversed(), 0, 0).unwrap();
    (t, id)
}

fn send(
    t: &mut ConnTable,
    id: ConnId,
    dir: Dir,
    s: Seg,
    payload: &[u8],
    now: u64,
) -> Result<(), Invalid> {
    let f = match dir {
        Dir::Orig => tcp_frame(C, 40000, S, 80, s, payload),
        Dir::Reply => tcp_frame(S, 80, C, 40000, s, payload),
    };
    let p = parse(&f, L3).unwrap();
    t.track(id, dir, &p.info, f.len(), now)
}

const ISN_C: u32 = 1000;
const ISN_S: u32 = 5000;

/// SYN, SYN/ACK, ACK.
fn handshake(t: &mut ConnTable, id: ConnId) {
    send(t, id, Dir::Orig, seg(SYN, ISN_C, 0), b"", 0).unwrap();
    assert_eq!(t.get(id).state(), Some(TcpState::SynSent));
    send(t, id, Dir::Reply, seg(SYN | ACK, ISN_S, ISN_C + 1), b"", 1).unwrap();
    assert_eq!(t.get(id).state(), Some(TcpState::SynRecv));
    send(t, id, Dir::Orig, seg(ACK, ISN_C + 1, ISN_S + 1), b"", 2).unwrap();
    assert_eq!(t.get(id).state(), Some(TcpState::Established));
}

#[test]
fn three_way_handshake_establishes() {
    let (mut t, id) = conn();
    handshake(&mut t, id);
    let c = t.get(id);
    assert!(c.replied);
    assert_eq!(c.expires_ms, 2 + 432_000_000);
    assert_eq!(c.packets, [2, 1]);
    assert_eq!(c.state().unwrap().name(), "ESTABLISHED");
}

#[test]
fn data_flows_then_fin_both_ways_ends_in_time_wait() {
    let (mut t, id) = conn();
    handshake(&mut t, id);
    let (c1, s1) = (ISN_C + 1, ISN_S + 1);
    send(&mut t, id, Dir::Orig, seg(ACK | PSH, c1, s1), &[0; 100], 3).unwrap();
    send(
        &mut t,
        id,
        Dir::Reply,
        seg(ACK | PSH, s1, c1 + 100),
        &[0; 1000],
        4,
    )
    .unwrap();
    let (c2, s2) = (c1 + 100, s1 + 1000);
    send(&mut t, id, Dir::Orig, seg(FIN | ACK, c2, s2), b"", 5).unwrap();
    assert_eq!(t.get(id).state(), Some(TcpState::FinWait));
    send(&mut t, id, Dir::Reply, seg(ACK, s2, c2 + 1), b"", 6).unwrap();
    assert_eq!(t.get(id).state(), Some(TcpState::CloseWait));
    send(&mut t, id, Dir::Reply, seg(FIN | ACK, s2, c2 + 1), b"", 7).unwrap();
    assert_eq!(t.get(id).state(), Some(TcpState::LastAck));
    send(&mut t, id, Dir::Orig, seg(ACK, c2 + 1, s2 + 1), b"", 8).unwrap();
    let c = t.get(id);
    assert_eq!(c.state(), Some(TcpState::TimeWait));
    assert_eq!(c.state().unwrap().name(), "TIME_WAIT");
    assert_eq!(c.expires_ms, 8 + 120_000);
}

#[test]
fn simultaneous_fin_acks_end_in_time_wait() {
    let (mut t, id) = conn();
    handshake(&mut t, id);
    let (c1, s1) = (ISN_C + 1, ISN_S + 1);
    send(&mut t, id, Dir::Orig, seg(FIN | ACK, c1, s1), b"", 3).unwrap();
    send(&mut t, id, Dir::Reply, seg(FIN | ACK, s1, c1 + 1), b"", 4).unwrap();
    assert_eq!(t.get(id).state(), Some(TcpState::LastAck));
    send(&mut t, id, Dir::Orig, seg(ACK, c1 + 1, s1 + 1), b"", 5).unwrap();
    assert_eq!(t.get(id).state(), Some(TcpState::TimeWait));
}

#[test]
fn rst_closes_with_a_short_timeout() {
    let (mut t, id) = conn();
    handshake(&mut t, id);
    send(
        &mut t,
        id,
        Dir::Reply,
        seg(RST | ACK, ISN_S + 1, ISN_C + 1),
        b"",
        10,
    )
    .unwrap();
    let c = t.get(id);
    assert_eq!(c.state(), Some(TcpState::Close));
    assert_eq!(c.state().unwrap().name(), "CLOSE");
    assert_eq!(c.expires_ms, 10 + 120_000);
}

#[test]
fn rst_answering_a_syn_closes() {
    let (mut t, id) = conn();
    send(&mut t, id, Dir::Orig, seg(SYN, ISN_C, 0), b"", 0).unwrap();
    send(&mut t, id, Dir::Reply, seg(RST | ACK, 0, ISN_C + 1), b"", 1).unwrap();
    assert_eq!(t.get(id).state(), Some(TcpState::Close));
}

#[test]
fn invalid_flag_combinations() {
    let (mut t, id) = conn();
    handshake(&mut t, id);
    let (c1, s1) = (ISN_C + 1, ISN_S + 1);
    let bad = [
        SYN | FIN,
        SYN | RST,
        FIN,
        0,
        0x3f,
        FIN | PSH | URG,
        SYN | FIN | ACK,
    ];
    for f in bad {
        assert_eq!(
            send(&mut t, id, Dir::Orig, seg(f, c1, s1), b"", 3),
            Err(Invalid),
            "flags {f:#x}"
        );
    }
    assert_eq!(t.stats().invalid, bad.len() as u64);
    // Nothing changed.
    assert_eq!(t.get(id).state(), Some(TcpState::Established));
    assert_eq!(t.get(id).packets, [2, 1]);
    // PSH, ECE and CWR are not judged.
    send(&mut t, id, Dir::Orig, seg(ACK | PSH | 0xc0, c1, s1), b"", 3).unwrap();
}

#[test]
fn invalid_first_packet_removes_the_entry() {
    for f in [FIN | ACK, SYN | ACK, RST, SYN | FIN] {
        let (mut t, id) = conn();
        assert_eq!(
            send(&mut t, id, Dir::Orig, seg(f, 1, 1), b"", 0),
            Err(Invalid)
        );
        assert!(t.is_empty(), "flags {f:#x}");
        assert!(t.try_get(id).is_none());
        t.remove(id); // harmless
    }
}

#[test]
fn ack_before_syn_ack_is_invalid() {
    let (mut t, id) = conn();
    send(&mut t, id, Dir::Orig, seg(SYN, ISN_C, 0), b"", 0).unwrap();
    assert_eq!(
        send(&mut t, id, Dir::Orig, seg(ACK, ISN_C + 1, 7), b"", 1),
        Err(Invalid)
    );
    assert_eq!(t.get(id).state(), Some(TcpState::SynSent));
}

#[test]
fn out_of_window_is_rejected() {
    let (mut t, id) = conn();
    handshake(&mut t, id);
    let (c1, s1) = (ISN_C + 1, ISN_S + 1);
    // Far beyond what the server advertised (65535).
    let far = seg(ACK, c1.wrapping_add(10_000_000), s1);
    assert_eq!(send(&mut t, id, Dir::Orig, far, b"x", 3), Err(Invalid));
    // Acknowledging data the server never sent.
    assert_eq!(
        send(&mut t, id, Dir::Orig, seg(ACK, c1, s1 + 500_000), b"", 3),
        Err(Invalid)
    );
    // Old data, well below the window.
    let old = seg(ACK, c1.wrapping_sub(1_000_000), s1);
    assert_eq!(send(&mut t, id, Dir::Orig, old, b"x", 3), Err(Invalid));
    assert_eq!(t.stats().invalid, 3);
    // In window is fine, and a retransmission too.
    send(&mut t, id, Dir::Orig, seg(ACK, c1 + 60_000, s1), b"x", 4).unwrap();
    send(&mut t, id, Dir::Orig, seg(ACK, c1, s1), b"x", 4).unwrap();
}

#[test]
fn window_scale_widens_the_window() {
    let (mut t, id) = conn();
    let scaled = |flags, seq, ack| Seg {
        wscale: Some(7),
        ..seg(flags, seq, ack)
    };
    send(&mut t, id, Dir::Orig, scaled(SYN, ISN_C, 0), b"", 0).unwrap();
    send(
        &mut t,
        id,
        Dir::Reply,
        scaled(SYN | ACK, ISN_S, ISN_C + 1),
        b"",
        0,
    )
    .unwrap();
    let (c1, s1) = (ISN_C + 1, ISN_S + 1);
    send(&mut t, id, Dir::Orig, seg(ACK, c1, s1), b"", 0).unwrap();
    // The server's window update announces 65535 << 7.
    send(&mut t, id, Dir::Reply, seg(ACK, s1, c1), b"", 0).unwrap();
    send(&mut t, id, Dir::Orig, seg(ACK, c1 + 1_000_000, s1), b"x", 0).unwrap();
}

#[test]
fn window_scale_needs_both_sides() {
    let (mut t, id) = conn();
    let syn = Seg {
        wscale: Some(7),
        ..seg(SYN, ISN_C, 0)
    };
    send(&mut t, id, Dir::Orig, syn, b"", 0).unwrap();
    send(
        &mut t,
        id,
        Dir::Reply,
        seg(SYN | ACK, ISN_S, ISN_C + 1),
        b"",
        0,
    )
    .unwrap();
    let (c1, s1) = (ISN_C + 1, ISN_S + 1);
    send(&mut t, id, Dir::Orig, seg(ACK, c1, s1), b"", 0).unwrap();
    send(&mut t, id, Dir::Reply, seg(ACK, s1, c1), b"", 0).unwrap();
    assert_eq!(
        send(&mut t, id, Dir::Orig, seg(ACK, c1 + 1_000_000, s1), b"x", 0),
        Err(Invalid)
    );
}

#[test]
fn sequence_numbers_wrap() {
    let (mut t, id) = conn();
    let isn = u32::MAX - 10;
    send(&mut t, id, Dir::Orig, seg(SYN, isn, 0), b"", 0).unwrap();
    send(
        &mut t,
        id,
        Dir::Reply,
        seg(SYN | ACK, ISN_S, isn.wrapping_add(1)),
        b"",
        0,
    )
    .unwrap();
    send(
        &mut t,
        id,
        Dir::Orig,
        seg(ACK, isn.wrapping_add(1), ISN_S + 1),
        &[0; 100],
        0,
    )
    .unwrap();
    let next = isn.wrapping_add(101);
    send(
        &mut t,
        id,
        Dir::Orig,
        seg(ACK, next, ISN_S + 1),
        &[0; 100],
        0,
    )
    .unwrap();
    send(
        &mut t,
        id,
        Dir::Reply,
        seg(ACK, ISN_S + 1, next.wrapping_add(100)),
        b"",
        0,
    )
    .unwrap();
    assert_eq!(t.get(id).state(), Some(TcpState::Established));
}

#[test]
fn pickup_mid_stream_is_established_and_liberal() {
    let (mut t, id) = conn();
    send(&mut t, id, Dir::Orig, seg(ACK, 77_777, 99_999), &[0; 10], 0).unwrap();
    assert_eq!(t.get(id).state(), Some(TcpState::Established));
    send(
        &mut t,
        id,
        Dir::Reply,
        seg(ACK, 99_999, 77_787),
        &[0; 10],
        1,
    )
    .unwrap();
    // Window scale unknown: far jumps are let through.
    send(
        &mut t,
        id,
        Dir::Reply,
        seg(ACK, 99_999 + 5_000_000, 77_787),
        &[0; 10],
        2,
    )
    .unwrap();
    assert!(t.get(id).replied);
}

#[test]
fn retransmitted_syn_and_syn_ack_pass() {
    let (mut t, id) = conn();
    send(&mut t, id, Dir::Orig, seg(SYN, ISN_C, 0), b"", 0).unwrap();
    send(&mut t, id, Dir::Orig, seg(SYN, ISN_C, 0), b"", 1).unwrap();
    send(
        &mut t,
        id,
        Dir::Reply,
        seg(SYN | ACK, ISN_S, ISN_C + 1),
        b"",
        2,
    )
    .unwrap();
    send(
        &mut t,
        id,
        Dir::Reply,
        seg(SYN | ACK, ISN_S, ISN_C + 1),
        b"",
        3,
    )
    .unwrap();
    assert_eq!(t.get(id).state(), Some(TcpState::SynRecv));
    // A SYN/ACK acknowledging the wrong ISN is not.
    let (mut t, id) = conn();
    send(&mut t, id, Dir::Orig, seg(SYN, ISN_C, 0), b"", 0).unwrap();
    let wrong = seg(SYN | ACK, ISN_S, ISN_C + 1_000_000);
    assert_eq!(send(&mut t, id, Dir::Reply, wrong, b"", 1), Err(Invalid));
}

#[test]
fn syn_on_established_is_ignored() {
    let (mut t, id) = conn();
    handshake(&mut t, id);
    let before = *t.get(id);
    send(&mut t, id, Dir::Orig, seg(SYN, 123, 0), b"", 50).unwrap();
    let after = t.get(id);
    assert_eq!(after.state(), Some(TcpState::Established));
    assert_eq!(after.expires_ms, before.expires_ms, "not refreshed");
}

#[test]
fn syn_reopens_time_wait() {
    let (mut t, id) = conn();
    handshake(&mut t, id);
    let (c1, s1) = (ISN_C + 1, ISN_S + 1);
    send(&mut t, id, Dir::Orig, seg(FIN | ACK, c1, s1), b"", 3).unwrap();
    send(&mut t, id, Dir::Reply, seg(FIN | ACK, s1, c1 + 1), b"", 4).unwrap();
    send(&mut t, id, Dir::Orig, seg(ACK, c1 + 1, s1 + 1), b"", 5).unwrap();
    assert_eq!(t.get(id).state(), Some(TcpState::TimeWait));
    // A new connection from the same port, with a new ISN.
    send(&mut t, id, Dir::Orig, seg(SYN, 9_000_000, 0), b"", 6).unwrap();
    let c = t.get(id);
    assert_eq!(c.state(), Some(TcpState::SynSent));
    assert_eq!((c.packets, c.replied), ([1, 0], false));
    send(
        &mut t,
        id,
        Dir::Reply,
        seg(SYN | ACK, 77, 9_000_001),
        b"",
        7,
    )
    .unwrap();
    send(&mut t, id, Dir::Orig, seg(ACK, 9_000_001, 78), b"", 8).unwrap();
    assert_eq!(t.get(id).state(), Some(TcpState::Established));
}

#[test]
fn state_names() {
    let all = [
        (TcpState::SynSent, "SYN_SENT"),
        (TcpState::SynRecv, "SYN_RECV"),
        (TcpState::Established, "ESTABLISHED"),
        (TcpState::FinWait, "FIN_WAIT"),
        (TcpState::CloseWait, "CLOSE_WAIT"),
        (TcpState::LastAck, "LAST_ACK"),
        (TcpState::TimeWait, "TIME_WAIT"),
        (TcpState::Close, "CLOSE"),
    ];
    for (s, n) in all {
        assert_eq!(s.name(), n);
    }
}

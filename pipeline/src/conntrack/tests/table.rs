use super::*;
use std::hash::{BuildHasher, Hasher};

fn udp_orig() -> Tuple {
    tup(17, CONTAINER, 40000, SERVER, 53)
}

fn masq_reply(port: u16) -> Tuple {
    tup(17, SERVER, 53, UPLINK, port)
}

fn table(max: usize) -> ConnTable {
    ConnTable::new(Config {
        max_entries: max,
        ..Config::default()
    })
}

#[test]
fn lookup_finds_both_directions() {
    let mut t = table(16);
    let id = t.insert(udp_orig(), masq_reply(40000), 3, 0).unwrap();
    assert_eq!(t.lookup(&udp_orig(), 1), Some((id, Dir::Orig)));
    assert_eq!(t.lookup(&masq_reply(40000), 1), Some((id, Dir::Reply)));
    assert_eq!(t.lookup(&udp_orig().reversed(), 1), None, "reply is NATed");
    let c = t.get(id);
    assert_eq!((c.zone, c.replied, c.state()), (3, false, None));
    assert!(c.is_nat());
    // The translation of each direction.
    assert_eq!(c.target(Dir::Orig), tup(17, UPLINK, 40000, SERVER, 53));
    assert_eq!(c.target(Dir::Reply), tup(17, SERVER, 53, CONTAINER, 40000));
    assert_eq!(t.stats().entries, 1);
    assert_eq!(t.stats().created, 1);
}

#[test]
fn clash_on_either_tuple() {
    let mut t = table(16);
    t.insert(udp_orig(), masq_reply(40000), 0, 0).unwrap();
    let other = tup(17, CONTAINER2, 40000, SERVER, 53);
    assert_eq!(
        t.insert(other, masq_reply(40000), 0, 0),
        Err(InsertError::Clash)
    );
    assert_eq!(
        t.insert(udp_orig(), masq_reply(1), 0, 0),
        Err(InsertError::Clash)
    );
    assert_eq!(t.len(), 1);
}

#[test]
fn entry_without_nat_and_same_tuples() {
    let mut t = table(16);
    let o = tup(17, CONTAINER, 7, CONTAINER, 7);
    let id = t.insert(o, o.reversed(), 0, 0).unwrap();
    assert_eq!(t.lookup(&o, 0), Some((id, Dir::Orig)));
    assert!(!t.get(id).is_nat());
    t.remove(id);
    assert!(t.is_empty());
    assert_eq!(t.lookup(&o, 0), None);
}

#[test]
fn udp_timeouts_and_sweep() {
    let mut t = table(16);
    let id = t.insert(udp_orig(), masq_reply(40000), 0, 0).unwrap();
    let f = udp_frame(CONTAINER, 40000, SERVER, 53, b"q", false);
    let p = parse(&f, L3).unwrap();
    t.track(id, Dir::Orig, &p.info, f.len(), 0).unwrap();
    assert_eq!(t.get(id).expires_ms, 30_000);
    assert!(t.lookup(&udp_orig(), 29_999).is_some());
    assert!(t.lookup(&udp_orig(), 30_000).is_none(), "expired is a miss");
    // A reply makes it a 120 s entry.
    t.track(id, Dir::Reply, &p.info, 100, 1_000).unwrap();
    let c = t.get(id);
    assert!(c.replied);
    assert_eq!(c.expires_ms, 121_000);
    assert_eq!((c.packets, c.bytes), ([1, 1], [f.len() as u64, 100]));
    assert_eq!(t.sweep(120_999, 100), 0);
    assert_eq!(t.sweep(121_000, 100), 1);
    assert!(t.is_empty());
    assert_eq!(t.stats().expired, 1);
    assert!(t.try_get(id).is_none(), "stale id");
    assert_eq!(t.track(id, Dir::Orig, &p.info, 1, 0), Err(Invalid));
}

#[test]
fn sweep_respects_budget() {
    let mut t = table(100);
    for i in 0..10u16 {
        let o = tup(17, CONTAINER, 1000 + i, SERVER, 53);
        t.insert(o, o.reversed(), 0, 0).unwrap();
    }
    let late = 60_000;
    assert_eq!(t.sweep(late, 3), 3);
    assert_eq!(t.sweep(late, 3), 3);
    assert_eq!(t.sweep(late, 100), 4);
    assert_eq!(t.sweep(late, 100), 0);
    assert_eq!(t.stats().expired, 10);
}

#[test]
fn insert_reclaims_an_expired_holder() {
    let mut t = table(16);
    let old = t.insert(udp_orig(), masq_reply(40000), 0, 0).unwrap();
    let new = t.insert(udp_orig(), masq_reply(40000), 0, 40_000).unwrap();
    assert_ne!(old, new);
    assert!(t.try_get(old).is_none());
    assert_eq!(t.len(), 1);
}

#[test]
fn full_table_refuses_new_and_keeps_old() {
    let mut t = table(2);
    let a = tup(17, CONTAINER, 1, SERVER, 53);
    let b = tup(17, CONTAINER, 2, SERVER, 53);
    let c = tup(17, CONTAINER, 3, SERVER, 53);
    t.insert(a, a.reversed(), 0, 0).unwrap();
    t.insert(b, b.reversed(), 0, 0).unwrap();
    assert_eq!(t.insert(c, c.reversed(), 0, 0), Err(InsertError::Full));
    assert_eq!(t.stats().dropped_full, 1);
    assert!(t.lookup(&a, 1).is_some() && t.lookup(&b, 1).is_some());
    // Lowering the limit drops nothing.
    t.set_config(Config {
        max_entries: 1,
        ..Config::default()
    });
    assert_eq!(t.len(), 2);
    assert_eq!(t.stats().max, 1);
    // Once the old ones expired, room is made without a separate sweep.
    t.set_config(Config {
        max_entries: 2,
        ..Config::default()
    });
    assert!(t.insert(c, c.reversed(), 0, 31_000).is_ok());
}

#[test]
fn flush_by_zone() {
    let mut t = table(16);
    for (i, zone) in [1u16, 2, 1].into_iter().enumerate() {
        let o = tup(17, CONTAINER, i as u16, SERVER, 53);
        t.insert(o, o.reversed(), zone, 0).unwrap();
    }
    t.flush(Some(1));
    assert_eq!(t.iter().map(|c| c.zone).collect::<Vec<_>>(), vec![2]);
    t.flush(None);
    assert!(t.is_empty() && t.iter().next().is_none());
}

#[test]
fn alloc_port_keeps_the_original_when_free() {
    let mut t = table(16);
    assert_eq!(
        t.alloc_port(&masq_reply(40000), 1024..=65535, 0),
        Some(40000)
    );
    // Out of range: another one, in range.
    let p = t.alloc_port(&masq_reply(80), 1024..=65535, 0).unwrap();
    assert!(p >= 1024);
}

#[test]
fn two_containers_same_port_get_distinct_reply_tuples() {
    let mut t = table(16);
    let range = 32768..=60999;
    let o1 = tup(6, CONTAINER, 40000, SERVER, 80);
    let o2 = tup(6, CONTAINER2, 40000, SERVER, 80);
    let mut r1 = o1.reversed();
    r1.dst = UPLINK;
    r1.dport = t.alloc_port(&r1, range.clone(), 0).unwrap();
    let id1 = t.insert(o1, r1, 0, 0).unwrap();
    let mut r2 = o2.reversed();
    r2.dst = UPLINK;
    r2.dport = t.alloc_port(&r2, range.clone(), 0).unwrap();
    let id2 = t.insert(o2, r2, 0, 0).unwrap();
    assert_eq!(r1.dport, 40000);
    assert_ne!(r2.dport, 40000);
    assert!(range.contains(&r2.dport));
    assert_eq!(t.lookup(&r1, 0), Some((id1, Dir::Reply)));
    assert_eq!(t.lookup(&r2, 0), Some((id2, Dir::Reply)));
    // Endpoint-dependent: another server may reuse 40000.
    let mut r3 = tup(6, CONTAINER2, 40000, ip(10, 0, 0, 10), 80).reversed();
    r3.dst = UPLINK;
    assert_eq!(t.alloc_port(&r3, range, 0), Some(40000));
}

#[test]
fn alloc_port_exhaustion_is_counted() {
    let mut t = table(16);
    let r = masq_reply(5000);
    t.insert(udp_orig(), r, 0, 0).unwrap();
    assert_eq!(t.alloc_port(&r, 5000..=5000, 0), None);
    #[allow(clippy::reversed_empty_ranges)]
    let empty = 6000..=5000;
    assert_eq!(t.alloc_port(&r, empty, 0), None);
    assert_eq!(t.stats().port_exhausted, 2);
    // An expired holder does not count.
    assert_eq!(t.alloc_port(&r, 5000..=5000, 40_000), Some(5000));
}

#[test]
fn alloc_port_for_icmp_sets_the_identifier_both_ways() {
    let mut t = table(16);
    let o = tup(1, CONTAINER, 7, SERVER, 7);
    let r = tup(1, SERVER, 7, UPLINK, 7);
    t.insert(o, r, 0, 0).unwrap();
    let o2 = tup(1, CONTAINER2, 7, SERVER, 7);
    let id = t
        .alloc_port(&tup(1, SERVER, 7, UPLINK, 7), 0..=65535, 0)
        .unwrap();
    assert_ne!(id, 7);
    let r2 = tup(1, SERVER, id, UPLINK, id);
    assert!(t.insert(o2, r2, 0, 0).is_ok());
}

#[test]
fn hash_spreads_tuples_differing_only_in_a_port() {
    let b = FxBuildHasher::with_seed(0);
    let mut low = std::collections::HashSet::new();
    for p in 0..4096u16 {
        let mut h = b.build_hasher();
        std::hash::Hash::hash(&tup(6, CONTAINER, p, SERVER, 80), &mut h);
        low.insert(h.finish() & 0xfff);
    }
    // Random placement of 4096 keys in 4096 buckets fills about 63%.
    assert!(low.len() > 2300, "{} distinct low bits", low.len());
}

#[test]
fn many_entries_and_slot_reuse() {
    let mut t = table(100_000);
    let mut ids = Vec::new();
    for i in 0..5000u32 {
        let o = tup(6, CONTAINER + i, 1000, SERVER, 80);
        ids.push(t.insert(o, o.reversed(), 0, 0).unwrap());
    }
    for id in &ids[..2500] {
        t.remove(*id);
    }
    for i in 0..2500u32 {
        let o = tup(17, CONTAINER + i, 1000, SERVER, 80);
        t.insert(o, o.reversed(), 0, 0).unwrap();
    }
    assert_eq!(t.len(), 5000);
    assert_eq!(t.iter().count(), 5000);
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(t.try_get(*id).is_some(), i >= 2500);
    }
}

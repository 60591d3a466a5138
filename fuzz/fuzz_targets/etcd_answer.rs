//! What etcd (or anything at its address) answers: any bytes as an HTTP
//! response from the JSON gateway, then the keys and events in it as the
//! cluster agent's copy and the overlay built from it. Invariants: no
//! panic; the copy holds no more keys than it was given; every static
//! entry points at one of the tunnel's remotes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vswitch::cluster::{etcd, overlay, view::View};
use vswitch::config::{Bridge, ClusterCfg, Config};

fuzz_target!(|data: &[u8]| {
    let Ok((kvs, events)) = etcd::read_answer(data) else {
        return;
    };
    let given = kvs.len() + events.len();
    let mut v = View::from_list(kvs, 1);
    v.apply(events);
    assert!(v.len() <= given);
    let mut cfg = Config {
        cluster: Some(ClusterCfg {
            endpoints: vec!["http://127.0.0.1:2379".into()],
            host: "me".into(),
            vtep_ip: None,
            ttl: 10,
        }),
        ..Config::default()
    };
    for net in v.networks().keys() {
        let mut b = Bridge::default();
        b.other_config.insert("network".into(), net.clone());
        cfg.bridges.insert(format!("br-{net}"), b);
    }
    let o = overlay::overlay(&cfg, &v);
    for b in o.bridges.values() {
        assert!(b.remotes.len() <= b.fdb.len());
        assert!(b.fdb.values().all(|vtep| b.remotes.contains(vtep)));
    }
});

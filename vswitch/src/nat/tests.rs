use super::*;
use crate::config::{Bridge, Config, Published, Uplink};

fn bridge(gw: &str) -> Bridge {
    let mut b = Bridge::default();
    b.other_config.insert(GATEWAY_KEY.into(), gw.into());
    b
}

fn uplink(port: &str, addr: &str, hop: &str) -> Uplink {
    Uplink {
        port: port.into(),
        address: addr.into(),
        nexthop: hop.into(),
        ..Default::default()
    }
}

fn rule(proto: &str, port: u16, end: u16, to: &str, to_port: u16) -> Published {
    Published {
        proto: proto.into(),
        host_port: port,
        host_port_end: end,
        ip: None,
        to: to.into(),
        to_port,
    }
}

fn refused(cfg: &Config, needle: &str) {
    let e = validate(cfg).expect_err("accepted");
    assert!(e.contains(needle), "{e:?} does not say {needle:?}");
}

#[test]
fn cidrs_are_checked() {
    let c = Cidr::parse("172.18.0.1/16", "g").unwrap();
    assert_eq!(c.subnet().addr, u32::from(Ipv4Addr::new(172, 18, 0, 0)));
    for (s, needle) in [
        ("172.18.0.1", "IP/PREFIX"),
        ("172.18.0.1/31", "prefix"),
        ("172.18.0.0/16", "network or broadcast"),
        ("172.18.255.255/16", "network or broadcast"),
        ("224.0.0.1/8", "unicast"),
        ("nope/8", "not an IPv4"),
    ] {
        let e = Cidr::parse(s, "g").unwrap_err();
        assert!(e.contains(needle), "{s}: {e}");
    }
}

#[test]
fn gateways_must_not_overlap() {
    let mut cfg = Config::default();
    cfg.bridges.insert("a".into(), bridge("172.18.0.1/16"));
    cfg.bridges.insert("b".into(), bridge("172.19.0.1/16"));
    validate(&cfg).unwrap();
    cfg.bridges.insert("c".into(), bridge("172.18.5.1/24"));
    refused(&cfg, "overlaps");
}

#[test]
fn the_uplink_is_off_every_bridge_and_subnet() {
    let mut cfg = Config::default();
    let mut a = bridge("172.18.0.1/16");
    a.ports.insert("p1".into(), Default::default());
    cfg.bridges.insert("a".into(), a);
    cfg.uplink = Some(uplink("up0", "192.168.50.2/24", "192.168.50.1"));
    validate(&cfg).unwrap();
    cfg.uplink = Some(uplink("p1", "192.168.50.2/24", "192.168.50.1"));
    refused(&cfg, "port of bridge a");
    cfg.uplink = Some(uplink("up0", "172.18.9.2/24", "172.18.9.1"));
    refused(&cfg, "overlaps");
    cfg.uplink = Some(uplink("up0", "192.168.50.2/24", "192.168.51.1"));
    refused(&cfg, "not in the uplink's subnet");
}

#[test]
fn published_ports_lead_into_the_subnet_once() {
    let mut cfg = Config::default();
    let mut a = bridge("172.18.0.1/16");
    a.published.push(rule("tcp", 8080, 8080, "172.18.0.2", 80));
    a.published.push(rule("udp", 8080, 8080, "172.18.0.2", 80));
    cfg.bridges.insert("a".into(), a.clone());
    validate(&cfg).unwrap();
    let mut twice = a.clone();
    twice
        .published
        .push(rule("tcp", 8000, 8100, "172.18.0.3", 1000));
    cfg.bridges.insert("a".into(), twice);
    refused(&cfg, "already published");
    let mut outside = a.clone();
    outside
        .published
        .push(rule("tcp", 9000, 9000, "10.0.0.2", 80));
    cfg.bridges.insert("a".into(), outside);
    refused(&cfg, "not a host address");
    let mut wrap = a.clone();
    wrap.published
        .push(rule("tcp", 9000, 9010, "172.18.0.2", 65530));
    cfg.bridges.insert("a".into(), wrap);
    refused(&cfg, "container ports");
    let mut nogw = Bridge::default();
    nogw.published.push(rule("tcp", 1, 1, "172.18.0.2", 1));
    cfg.bridges.insert("a".into(), nogw);
    refused(&cfg, "no gateway");
}

#[test]
fn the_router_gets_zones_ports_and_rules() {
    let mut cfg = Config::default();
    let mut a = bridge("172.18.0.1/16");
    a.published.push(rule("tcp", 8080, 8081, "172.18.0.2", 80));
    a.other_config.insert(MASQUERADE_KEY.into(), "false".into());
    cfg.bridges.insert("a".into(), a);
    cfg.uplink = Some(uplink("up0", "192.168.50.2/24", "192.168.50.1"));
    let plan = Plan::new(&cfg);
    let rc = plan.router_config(|b| (b == "a").then_some((7, 0)), Some(9));
    assert_eq!(rc.gateways.len(), 1);
    assert_eq!(rc.gateways[0].zone, 7);
    assert!(!rc.gateways[0].masquerade);
    assert_eq!(rc.uplink.as_ref().unwrap().port, 9);
    let r = &rc.publish[0];
    assert_eq!(r.zone, 7);
    let up = u32::from(Ipv4Addr::new(192, 168, 50, 2));
    assert_eq!(r.target(6, up, 8081), Some((r.to, 81)));
    assert_eq!(r.target(17, up, 8081), None);
    assert_eq!(r.target(6, up, 8082), None);
}

#[test]
fn conntrack_settings_come_from_the_switch() {
    let mut cfg = Config::default();
    cfg.other_config
        .insert("ct-udp-unreplied".into(), "5".into());
    cfg.other_config
        .insert("ct-max-entries".into(), "10".into());
    let c = ct_config(&cfg);
    assert_eq!(c.timeouts.udp_unreplied_s, 5);
    assert_eq!(c.max_entries, 10);
    cfg.other_config.insert("ct-icmp".into(), "0".into());
    refused(&cfg, "ct-icmp");
}

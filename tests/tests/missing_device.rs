//! Ports whose device does not exist (yet): `add-port` succeeds, `show`
//! reports the problem, and the port comes up by itself once the device
//! appears, without restarting the daemon.

use std::time::{Duration, Instant};

use serde_json::Value;
use tests::model::{port_error, show_port};
use tests::poll::wait_until;
use tests::veth::link_exists;
use tests::{tcp_transfer, wait_ping, Host, Lab};

/// How soon a port must notice its device appearing or vanishing.
const NOTICE: Duration = Duration::from_secs(10);

/// Polls `show` until `pred(show)` holds; returns the last show either way.
fn wait_show(lab: &Lab, pred: impl Fn(&Value) -> bool) -> (bool, Value, Duration) {
    let start = Instant::now();
    let mut last = Value::Null;
    let ok = wait_until(NOTICE, || {
        last = lab.show();
        pred(&last)
    });
    (ok, last, start.elapsed())
}

#[test]
fn port_comes_up_when_its_device_appears() {
    let mut lab = Lab::new(1);
    lab.hosts.push(Host::without_link(2));
    let port = lab.host(1).port().to_string();
    lab.daemon.vsctl_ok(&["add-port", &lab.bridge, &port]);

    let show = lab.show();
    let p = show_port(&show, &port)
        .unwrap_or_else(|| panic!("port {port} missing from show: {show:#}"));
    let err = port_error(&show, &port).unwrap_or_else(|| {
        panic!("show reports no error for {port}, whose device does not exist: {p}")
    });
    assert!(
        err.contains(&port),
        "the error for {port} must name the device: {err:?}"
    );
    assert!(
        p.get("backend").is_none_or(Value::is_null),
        "a port without a device has no backend: {p}"
    );

    lab.hosts[1].attach_link();
    let (up, show, took) = wait_show(&lab, |s| {
        show_port(s, &port).is_some() && port_error(s, &port).is_none()
    });
    assert!(
        up,
        "port {port} still not up {took:?} after its device appeared: {show:#}"
    );
    let (a, b) = (lab.host(0), lab.host(1));
    assert!(
        wait_ping(a, b.ip(), Duration::from_secs(5)).is_some(),
        "no ping to {} after its port came up",
        b.describe()
    );
    let r = tcp_transfer(b, a, 2_000_000);
    assert!(r.ok(), "{r}");
}

#[test]
fn port_recovers_when_its_device_is_deleted_and_recreated() {
    let mut lab = Lab::new(2);
    let port = lab.host(1).port().to_string();
    lab.hosts[1].detach_link();
    assert!(
        !link_exists(&port),
        "harness: veth {port} still exists after detach"
    );
    let (err, show, took) = wait_show(&lab, |s| port_error(s, &port).is_some());
    assert!(
        err,
        "{took:?} after its device was deleted, {port} shows no error: {show:#}"
    );
    let br = lab.daemon.vsctl_json(&["port-to-br", &port]);
    assert_eq!(
        br,
        Value::from(lab.bridge.clone()),
        "the port stays configured"
    );

    lab.hosts[1].attach_link();
    let (up, show, took) = wait_show(&lab, |s| port_error(s, &port).is_none());
    assert!(
        up,
        "port {port} still not up {took:?} after its device came back: {show:#}"
    );
    let (a, b) = (lab.host(0), lab.host(1));
    assert!(
        wait_ping(a, b.ip(), Duration::from_secs(5)).is_some(),
        "no ping to {} after its device came back",
        b.describe()
    );
}

//! A ready-made setup: one daemon, one bridge, N hosts each on its own
//! (AF_XDP, the default type) port. When a test using it fails, the drop
//! prints `show`, `fdb/show` and `dump-ports` before the daemon log.

use std::time::Duration;

use serde_json::Value;

use crate::daemon::{Daemon, DaemonOptions};
use crate::host::Host;
use crate::model::{self, FdbEntry, PortStats};
use crate::names;
use crate::poll::wait_until;
use crate::traffic::ping::wait_ping;

/// How long ports may take to come up after `add-port`.
pub const PORT_UP_TIMEOUT: Duration = Duration::from_secs(10);
/// Time limit of each vswctl call that gathers failure diagnostics.
const DIAG_TIMEOUT: Duration = Duration::from_secs(3);
/// How long the first ping through a new bridge may take.
pub const FIRST_PING_TIMEOUT: Duration = Duration::from_secs(10);

/// Daemon, bridge and hosts. Field order is drop order: the daemon stops
/// before the hosts' veths go.
pub struct Lab {
    pub daemon: Daemon,
    pub bridge: String,
    pub hosts: Vec<Host>,
}

impl Lab {
    /// A daemon with one bridge and hosts 10.77.0.1..=n, connected.
    pub fn new(n: u8) -> Lab {
        Lab::with_options(n, DaemonOptions::default())
    }

    pub fn with_options(n: u8, opts: DaemonOptions) -> Lab {
        let daemon = Daemon::start_with(opts);
        let bridge = names::unique("br");
        daemon.vsctl_ok(&["add-br", &bridge]);
        let lab = Lab {
            daemon,
            bridge,
            hosts: (1..=n).map(Host::new).collect(),
        };
        for h in &lab.hosts {
            lab.daemon.vsctl_ok(&["add-port", &lab.bridge, h.port()]);
        }
        lab.wait_connected();
        lab
    }

    pub fn host(&self, i: usize) -> &Host {
        &self.hosts[i]
    }

    /// Waits until every host's port shows no error, then until host 0
    /// can ping every other host (which also fills every ARP cache that
    /// matters). Panics with diagnostics on timeout.
    pub fn wait_connected(&self) {
        for h in &self.hosts {
            self.wait_port_up(h.port());
        }
        if let Some((first, rest)) = self.hosts.split_first() {
            for h in rest {
                assert!(
                    wait_ping(first, h.ip(), FIRST_PING_TIMEOUT).is_some(),
                    "no ping reply from {} to {} within {FIRST_PING_TIMEOUT:?} after the \
                     ports came up",
                    first.describe(),
                    h.describe()
                );
            }
        }
    }

    /// Waits until `port` appears in `show` with a null error.
    pub fn wait_port_up(&self, port: &str) {
        let mut last = Value::Null;
        let up = wait_until(PORT_UP_TIMEOUT, || {
            last = self.show();
            model::show_port(&last, port).is_some() && model::port_error(&last, port).is_none()
        });
        assert!(
            up,
            "port {port} did not come up (present with error null) within \
             {PORT_UP_TIMEOUT:?}; last show:\n{last:#}"
        );
    }

    /// `show --format json`.
    pub fn show(&self) -> Value {
        self.daemon.vsctl_json(&["show"])
    }

    /// `fdb/show BR`, parsed.
    pub fn fdb(&self) -> Vec<FdbEntry> {
        model::fdb_entries(&self.daemon.vsctl_json(&["fdb/show", &self.bridge]))
    }

    /// `dump-ports BR`, parsed.
    pub fn stats(&self) -> Vec<PortStats> {
        model::port_stats(&self.daemon.vsctl_json(&["dump-ports", &self.bridge]))
    }

    /// `dump-ports BR PORT`, parsed; panics unless exactly that port is listed.
    pub fn port_stats(&self, port: &str) -> PortStats {
        let v = self.daemon.vsctl_json(&["dump-ports", &self.bridge, port]);
        let mut all = model::port_stats(&v);
        let i = all.iter().position(|s| s.port == port);
        match i {
            Some(i) => all.swap_remove(i),
            None => panic!("dump-ports {} {port} did not list {port}: {v}", self.bridge),
        }
    }

    /// The switch's view, for failure messages: show, fdb/show, dump-ports.
    pub fn diagnostics(&self) -> String {
        let mut s = String::from("=== switch state at failure ===\n");
        for args in [
            vec!["show"],
            vec!["fdb/show", &self.bridge],
            vec!["dump-ports", &self.bridge],
        ] {
            let out = self.daemon.vsctl_runner().run_timeout(&args, DIAG_TIMEOUT);
            s.push_str(&out.to_string());
            s.push('\n');
        }
        s.push_str("hosts:\n");
        for h in &self.hosts {
            s.push_str(&format!("  {}\n", h.describe()));
        }
        s
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.diagnostics());
        }
    }
}

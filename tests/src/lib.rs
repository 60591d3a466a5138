//! Harness for vswitch's integration tests: real network namespaces, veth
//! pairs, the real `vswitchd` and `vswctl`, and real traffic from sockets.
//!
//! Everything a test creates gets a unique name (see [`names`]) and is
//! removed on drop, also when the test panics. Nothing outside the test's
//! own namespaces gets an address; eth0 and foreign interfaces are never
//! touched. Every wait has a deadline.
//!
//! The tests need root (CAP_NET_ADMIN, CAP_SYS_ADMIN for setns).
//!
//! - [`host::Host`]: a namespace with one veth, 10.77.0.N/24, default offloads.
//! - [`daemon::Daemon`]: `vswitchd` in a private run directory + `vswctl`.
//! - [`lab::Lab`]: daemon + bridge + N connected hosts.
//! - [`traffic`]: ping, TCP/UDP transfers with content checks, raw frames.
//! - [`container::Container`]: a namespace standing in for a container (attach tests).
//! - [`bridge::LinuxBridge`]: the kernel bridge, to prove the harness.

pub mod bridge;
pub mod cmd;
pub mod container;
pub mod daemon;
pub mod docker;
pub mod etcd;
pub mod frames;
pub mod host;
pub mod lab;
pub mod model;
pub mod names;
pub mod nat;
pub mod netns;
pub mod overlay;
pub mod pcapng;
pub mod poll;
pub mod traffic;
pub mod veth;
pub mod vlan;

pub use daemon::{Daemon, DaemonOptions};
pub use host::Host;
pub use lab::Lab;
pub use traffic::ping::{assert_ping_mesh, ping, ping_report, wait_ping};
pub use traffic::raw::{capture, send_raw, Capture};
pub use traffic::tcp::tcp_transfer;
pub use traffic::udp::udp_exchange;

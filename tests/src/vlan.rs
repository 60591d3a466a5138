//! Helpers for the VLAN tests.
//!
//! This kernel has no 802.1Q module, so no test host can tag or untag by
//! itself: tagged frames are built here byte by byte, sent with
//! [`send_raw`](crate::send_raw) and read back with
//! [`Capture`](crate::Capture) (which puts the tag the kernel strips on
//! receive back in place).
//!
//! - [`Tag`], [`with_tags`], [`tags_of`], [`token_any`]: frames with any
//!   stack of 802.1Q (0x8100) and 802.1ad (0x88a8) tags.
//! - [`vlan_lab`]: a [`Lab`] whose ports are added with VLAN settings.
//! - [`TrunkWire`]: a trunk between two switches that runs through a
//!   namespace of its own, where a test can watch the tags on the wire.
//! - [`wait_path`], [`expect_exactly`], [`expect_none`]: waiting for and
//!   checking what a capture saw, with hex dumps on failure.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::cmd::{ip_ok, run, ADMIN_TIMEOUT};
use crate::daemon::{Daemon, DaemonOptions};
use crate::frames::{new_token, ETHERTYPE_TEST};
use crate::host::Host;
use crate::lab::Lab;
use crate::names;
use crate::netns::Netns;
use crate::traffic::raw::{send_raw, Capture};
use crate::veth::Veth;

pub const TPID_8021Q: u16 = 0x8100;
pub const TPID_8021AD: u16 = 0x88a8;

/// How long a frame the switch should forward may take to show up.
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a new switch path (ports just added) may take to work.
pub const PATH_UP_TIMEOUT: Duration = Duration::from_secs(10);

/// One VLAN tag as it sits on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tag {
    pub tpid: u16,
    pub pcp: u8,
    pub vid: u16,
}

impl Tag {
    /// An 802.1Q (C-)tag, priority 0.
    pub const fn q(vid: u16) -> Tag {
        Tag {
            tpid: TPID_8021Q,
            pcp: 0,
            vid,
        }
    }

    /// An 802.1ad (S-)tag, priority 0.
    pub const fn ad(vid: u16) -> Tag {
        Tag {
            tpid: TPID_8021AD,
            pcp: 0,
            vid,
        }
    }

    /// The same tag with priority `pcp`.
    pub const fn pcp(self, pcp: u8) -> Tag {
        Tag { pcp, ..self }
    }

    pub fn tci(&self) -> u16 {
        (u16::from(self.pcp & 7) << 13) | (self.vid & 0x0fff)
    }

    pub fn bytes(&self) -> [u8; 4] {
        let [a, b] = self.tpid.to_be_bytes();
        let [c, d] = self.tci().to_be_bytes();
        [a, b, c, d]
    }
}

fn is_tpid(t: u16) -> bool {
    t == TPID_8021Q || t == TPID_8021AD
}

fn be16(f: &[u8], off: usize) -> Option<u16> {
    Some(u16::from_be_bytes(f.get(off..off + 2)?.try_into().ok()?))
}

/// `frame` with `tags` (outermost first) inserted after the MAC addresses.
pub fn with_tags(frame: &[u8], tags: &[Tag]) -> Vec<u8> {
    assert!(frame.len() >= 12, "frame too short to tag: {frame:02x?}");
    let mut f = Vec::with_capacity(frame.len() + 4 * tags.len());
    f.extend_from_slice(&frame[..12]);
    for t in tags {
        f.extend_from_slice(&t.bytes());
    }
    f.extend_from_slice(&frame[12..]);
    f
}

/// The tags of `frame`, outermost first (0x8100 and 0x88a8, any depth).
pub fn tags_of(frame: &[u8]) -> Vec<Tag> {
    let mut tags = Vec::new();
    let mut off = 12;
    while let (Some(tpid), Some(tci)) = (be16(frame, off), be16(frame, off + 2)) {
        if !is_tpid(tpid) {
            break;
        }
        tags.push(Tag {
            tpid,
            pcp: (tci >> 13) as u8,
            vid: tci & 0x0fff,
        });
        off += 4;
    }
    tags
}

/// The token of a test frame behind any number of tags.
pub fn token_any(frame: &[u8]) -> Option<u64> {
    let off = 12 + 4 * tags_of(frame).len();
    if be16(frame, off)? != ETHERTYPE_TEST {
        return None;
    }
    Some(u64::from_be_bytes(
        frame.get(off + 2..off + 10)?.try_into().ok()?,
    ))
}

/// The frames in `frames` that carry `token` (behind any tags).
pub fn with_token(frames: &[Vec<u8>], token: u64) -> Vec<Vec<u8>> {
    frames
        .iter()
        .filter(|f| token_any(f) == Some(token))
        .cloned()
        .collect()
}

/// One frame for a failure message: length, tags, and the first 40 bytes.
pub fn describe(frame: &[u8]) -> String {
    let tags: Vec<String> = tags_of(frame)
        .iter()
        .map(|t| format!("{:#06x}/pcp {}/vid {}", t.tpid, t.pcp, t.vid))
        .collect();
    let head: Vec<String> = frame.iter().take(40).map(|b| format!("{b:02x}")).collect();
    format!(
        "{} bytes, tags [{}]: {}{}",
        frame.len(),
        tags.join(", "),
        head.join(" "),
        if frame.len() > 40 { " ..." } else { "" }
    )
}

fn describe_all(frames: &[Vec<u8>]) -> String {
    if frames.is_empty() {
        return "  (none)".into();
    }
    frames
        .iter()
        .map(|f| format!("  {}", describe(f)))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Waits until `cap` holds a frame carrying the token of `expected`, then
/// asserts it holds exactly one such frame and that its bytes are exactly
/// `expected`. `what` says which path this is, for the message.
#[track_caller]
pub fn expect_exactly(cap: &Capture, expected: &[u8], what: &str) {
    let token = token_any(expected)
        .unwrap_or_else(|| panic!("expected frame carries no test token: {expected:02x?}"));
    cap.wait_for(DELIVERY_TIMEOUT, |fs| {
        fs.iter().any(|f| token_any(f) == Some(token))
    });
    // A duplicate would come right behind the first copy.
    std::thread::sleep(Duration::from_millis(50));
    let got = with_token(&cap.frames(), token);
    assert!(
        got.len() == 1 && got[0] == expected,
        "{what}: expected exactly this frame:\n  {}\nbut the capture holds {} frame(s) with its \
         token:\n{}",
        describe(expected),
        got.len(),
        describe_all(&got)
    );
}

/// Asserts that `cap` holds no frame carrying `token`. Call it only after
/// a later frame on the same path was seen (see [`expect_exactly`]), so
/// the absence means something.
#[track_caller]
pub fn expect_none(cap: &Capture, token: u64, what: &str) {
    let got = with_token(&cap.frames(), token);
    assert!(
        got.is_empty(),
        "{what}: the capture must not hold this frame, but holds:\n{}",
        describe_all(&got)
    );
}

/// Sends a fresh probe `make(token)` from `from` every 100 ms until `cap`
/// sees one, for waiting until a path through a switch that was just set
/// up works. Panics after [`PATH_UP_TIMEOUT`].
#[track_caller]
pub fn wait_path(from: &Host, cap: &Capture, what: &str, make: impl Fn(u64) -> Vec<u8>) {
    let start = Instant::now();
    let mut tokens = Vec::new();
    loop {
        let t = new_token();
        tokens.push(t);
        send_raw(from.ns(), from.ifname(), &[make(t)])
            .unwrap_or_else(|e| panic!("send probe from {}: {e}", from.describe()));
        let seen = cap.wait_for(Duration::from_millis(100), |fs| {
            fs.iter()
                .any(|f| token_any(f).is_some_and(|x| tokens.contains(&x)))
        });
        if seen {
            return;
        }
        assert!(
            start.elapsed() < PATH_UP_TIMEOUT,
            "{what}: no probe from {} arrived within {PATH_UP_TIMEOUT:?}; {} probes sent, \
             last one:\n  {}",
            from.describe(),
            tokens.len(),
            describe(&make(t))
        );
    }
}

/// Starts a capture on `host`'s interface; panics on failure.
#[track_caller]
pub fn capture_on(host: &Host) -> Capture {
    Capture::start(host.ns(), host.ifname())
        .unwrap_or_else(|e| panic!("start capture on {}: {e}", host.describe()))
}

/// Sends `frames` from `host`; panics on failure.
#[track_caller]
pub fn send_from(host: &Host, frames: &[Vec<u8>]) {
    send_raw(host.ns(), host.ifname(), frames).unwrap_or_else(|e| {
        panic!(
            "send {} frame(s) from {}: {e}",
            frames.len(),
            host.describe()
        )
    });
}

/// A daemon and one bridge with a host per entry of `ports` (addresses
/// 10.77.0.`first`, `first`+1, ...), each added with `add-port BR PORT
/// SETTINGS...` (for example `["tag=100"]`). Waits until every port is up,
/// but not for any traffic: VLANs may keep the hosts apart.
#[track_caller]
pub fn vlan_lab(first: u8, ports: &[&[&str]]) -> Lab {
    let daemon = Daemon::start_with(DaemonOptions::default());
    let bridge = names::unique("br");
    daemon.vsctl_ok(&["add-br", &bridge]);
    let hosts = (0..ports.len())
        .map(|i| {
            let i = u8::try_from(i).expect("fewer than 256 ports");
            Host::new(first.checked_add(i).expect("host index fits an address"))
        })
        .collect();
    let lab = Lab {
        daemon,
        bridge,
        hosts,
    };
    for (h, settings) in lab.hosts.iter().zip(ports) {
        add_port(&lab, h.port(), settings);
    }
    for h in &lab.hosts {
        lab.wait_port_up(h.port());
    }
    lab
}

/// `add-port BR PORT SETTINGS...` on the lab's bridge.
#[track_caller]
pub fn add_port(lab: &Lab, port: &str, settings: &[&str]) {
    let mut args = vec!["add-port", lab.bridge.as_str(), port];
    args.extend_from_slice(settings);
    lab.daemon.vsctl_ok(&args);
}

/// Name of switch A's end of the wire inside the wire's namespace.
pub const WIRE_A: &str = "ta";
/// Name of switch B's end of the wire inside the wire's namespace.
pub const WIRE_B: &str = "tb";

/// A link between two switch ports that a test can watch: port A's veth
/// peer ([`WIRE_A`]) and port B's ([`WIRE_B`]) sit in a namespace of their
/// own, joined by a Linux bridge there. That bridge has no VLAN filtering
/// here, so it passes tagged frames on untouched. A capture on `WIRE_A`
/// sees what switch A sent, on `WIRE_B` what switch B sent. (Frames an
/// AF_XDP socket transmits are not seen by a packet socket on the sending
/// device itself, hence the detour.)
///
/// The kernel takes the tag of a received frame into the skb's metadata,
/// and the bridge sends it on that way; a veth whose peer runs native XDP
/// hands the XDP program the bytes only, without that tag. So VLAN
/// transmit offload is turned off on both ends in the namespace: the
/// kernel then writes the tag back into the bytes before the veth.
#[derive(Debug)]
pub struct TrunkWire {
    // Field order is drop order: the veths go before the namespace.
    a: Veth,
    b: Veth,
    ns: Netns,
}

impl TrunkWire {
    pub fn new() -> TrunkWire {
        let ns = Netns::create();
        let a = Veth::create(&names::unique("ta"), ns.name(), WIRE_A, names::unique_mac());
        let b = Veth::create(&names::unique("tb"), ns.name(), WIRE_B, names::unique_mac());
        let n = ns.name();
        ip_ok(&["-n", n, "link", "add", "kbr", "type", "bridge"]);
        for end in [WIRE_A, WIRE_B] {
            ip_ok(&["-n", n, "link", "set", end, "master", "kbr"]);
            let mut c = Command::new("ip");
            c.args(["netns", "exec", n, "ethtool", "-K", end]).args([
                "txvlan",
                "off",
                "tx-vlan-stag-hw-insert",
                "off",
            ]);
            let out = run(c, ADMIN_TIMEOUT);
            assert!(out.success(), "harness command failed:\n{out}");
        }
        ip_ok(&["-n", n, "link", "set", "kbr", "up"]);
        TrunkWire { a, b, ns }
    }

    /// Switch A's port (root namespace).
    pub fn port_a(&self) -> &str {
        self.a.port()
    }

    /// Switch B's port (root namespace).
    pub fn port_b(&self) -> &str {
        self.b.port()
    }

    pub fn ns(&self) -> &str {
        self.ns.name()
    }

    /// A capture of what switch A sends onto the wire.
    pub fn capture_a(&self) -> Capture {
        Capture::start(self.ns(), WIRE_A).unwrap_or_else(|e| panic!("capture on the wire: {e}"))
    }

    /// A capture of what switch B sends onto the wire.
    pub fn capture_b(&self) -> Capture {
        Capture::start(self.ns(), WIRE_B).unwrap_or_else(|e| panic!("capture on the wire: {e}"))
    }
}

impl Default for TrunkWire {
    fn default() -> Self {
        Self::new()
    }
}

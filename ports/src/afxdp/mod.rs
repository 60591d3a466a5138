//! AF_XDP ports, written directly on the kernel interfaces (`libc` only).
//!
//! [`open`] attaches an XDP program that redirects each receive queue to its
//! own AF_XDP socket, and returns one [`RxQueue`] per queue plus one
//! [`TxQueue`] that sends through the queue-0 socket.
//!
//! - Copy mode only (`XDP_COPY`): veth has no zero-copy support, and copy
//!   mode works on every driver.
//! - 2048 RX frames of 4 KiB (8 MiB) per queue, plus 2048 TX frames
//!   (another 8 MiB) on queue 0, in a UMEM of the socket's own ([`open`]) or
//!   in a region of a [`UmemPool`] shared with other ports
//!   ([`open_pooled`]), between which frames then move without a copy. The
//!   kernel pins this memory.
//! - Received frames are not copied: packets are views of the UMEM frames,
//!   and the queue takes them back after the batch (`RxQueue::release`).
//! - The program is attached through a BPF link: dropping the [`OpenPort`]
//!   (all its halves) or the process dying detaches it.
//! - In native mode the program also writes back VLAN tags that the driver
//!   holds outside the frame (veth with tx-vlan offload on the peer), where
//!   the kernel supports it (Linux 6.8+, see `vlan_prog`); `ip -d link`
//!   shows it as `vswitch_xskvlan`. Elsewhere, and always in generic mode,
//!   it is the six-instruction `vswitch_xsk`, and such tags are lost.
//! - On an interface the host uses too, [`open_pooled_filtered`] with
//!   [`OwnFrames`] attaches `vswitch_xskown` instead (see `own_prog`): only
//!   frames to the switch's MAC and ARP requests for its IPv4 address go to
//!   the sockets; the host's stack gets every other frame.
//! - Transmit in copy mode happens only inside `sendto()`, up to a budget per
//!   call; `flush` kicks while descriptors are outstanding and `pending`
//!   stays true until the kernel has taken them all.
//!
//! Layout: `bpf` (program, map, link), `vlan_prog` (the VLAN-restoring
//! program), `own_prog` (the program that takes only the switch's frames),
//! `btf` (finds its kfunc), `socket` (one socket and its setup), `ring` (the
//! shared rings), `umem` (packet memory and mappings), `pool` (regions shared
//! by ports), `queue` (the data path). Unsafe code is allowed only in `bpf`,
//! `socket`, `ring`, `umem` and `queue` (and `testnet`, the tests'
//! raw-socket and namespace helpers); this file denies it.
//!
//! [`RxQueue`]: crate::RxQueue
//! [`TxQueue`]: crate::TxQueue
//! [`OpenPort`]: crate::OpenPort

#![deny(unsafe_code)]

// The only modules allowed to use `unsafe`; each block says why it holds.
#[allow(unsafe_code)]
mod bpf;
mod btf;
mod own_prog;
mod pool;
#[allow(unsafe_code)]
mod queue;
#[allow(unsafe_code)]
mod ring;
#[allow(unsafe_code)]
mod socket;
#[allow(unsafe_code)]
mod umem;
mod vlan_prog;

#[cfg(test)]
mod own_tests;
#[cfg(test)]
#[allow(unsafe_code)]
mod testnet;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod vlan_tests;

use crate::{netdev, OpenPort, PortError, PortStatus, RxQueue};
use bpf::{
    Link, LoadError, Program, XdpAttachment, XskMap, XDP_FLAGS_DRV_MODE, XDP_FLAGS_SKB_MODE,
};
pub use own_prog::OwnFrames;
pub use pool::UmemPool;
use queue::{AfXdpRx, AfXdpTx};
use std::fmt;
use std::io;
use std::str::FromStr;
use std::sync::Arc;
use vlan_prog::Flavor;

/// How the XDP program is attached.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum XdpMode {
    /// Native (driver) mode if the driver takes it, else generic.
    #[default]
    BestEffort,
    /// Driver mode only (`XDP_FLAGS_DRV_MODE`).
    Native,
    /// Generic (skb) mode only (`XDP_FLAGS_SKB_MODE`).
    Generic,
}

impl XdpMode {
    pub fn as_str(self) -> &'static str {
        match self {
            XdpMode::BestEffort => "best-effort",
            XdpMode::Native => "native",
            XdpMode::Generic => "generic",
        }
    }
}

impl fmt::Display for XdpMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown XDP mode name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseXdpModeError(String);

impl fmt::Display for ParseXdpModeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown XDP mode \"{}\": valid values are best-effort, native, generic",
            self.0
        )
    }
}

impl std::error::Error for ParseXdpModeError {}

impl FromStr for XdpMode {
    type Err = ParseXdpModeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "best-effort" => Ok(XdpMode::BestEffort),
            "native" => Ok(XdpMode::Native),
            "generic" => Ok(XdpMode::Generic),
            _ => Err(ParseXdpModeError(s.to_string())),
        }
    }
}

/// Opens `ifname` as an AF_XDP port: brings it up, creates one AF_XDP socket
/// per receive queue, and attaches the redirect program in `mode`.
///
/// On error nothing stays attached or allocated, and the error names the
/// step that failed. A missing device gives an error whose
/// [`PortError::is_missing_device`] is true.
pub fn open(ifname: &str, mode: XdpMode) -> Result<OpenPort, PortError> {
    open_in(ifname, mode, None, None)
}

/// As [`open`], with the sockets' packet memory taken from `pool`: frames
/// then move to and from the other ports of the pool without a copy.
pub fn open_pooled(ifname: &str, mode: XdpMode, pool: &UmemPool) -> Result<OpenPort, PortError> {
    open_in(ifname, mode, Some(pool), None)
}

/// As [`open_pooled`]; with a `filter`, for an interface the host uses too:
/// the sockets get only the frames `filter` describes, and the host's stack
/// all others (the program is `vswitch_xskown`, in either mode; VLAN tags
/// held outside the frame are not restored). Without one, as [`open_pooled`].
pub fn open_pooled_filtered(
    ifname: &str,
    mode: XdpMode,
    pool: &UmemPool,
    filter: Option<OwnFrames>,
) -> Result<OpenPort, PortError> {
    open_in(ifname, mode, Some(pool), filter)
}

fn open_in(
    ifname: &str,
    mode: XdpMode,
    pool: Option<&UmemPool>,
    filter: Option<OwnFrames>,
) -> Result<OpenPort, PortError> {
    let fail = |what: String| move |e: io::Error| PortError::new(ifname, what, e);

    let ifindex = netdev::ifindex(ifname).map_err(fail("looking up the interface".into()))?;
    netdev::set_up(ifname, true).map_err(fail("bringing the interface up".into()))?;
    let mtu = netdev::mtu(ifname).map_err(fail("reading the MTU".into()))?;
    let mac = netdev::mac(ifname).map_err(fail("reading the MAC address".into()))?;
    let queues = u32::try_from(netdev::rx_queue_count(ifname)).unwrap_or(u32::MAX);

    let map = XskMap::create(queues).map_err(|e| {
        let what = format!("creating XSKMAP{}", hint(&e, Step::Bpf));
        PortError::new(ifname, what, e)
    })?;
    let prog = match (filter, mode) {
        (Some(own), _) => own_prog::load_own_frames(&map, own).map(|p| (p, Flavor::OwnFrames)),
        (None, XdpMode::Generic) => Program::load_redirect(&map).map(|p| (p, Flavor::Plain)),
        (None, XdpMode::Native | XdpMode::BestEffort) => vlan_prog::load_native(&map, ifindex),
    }
    .map_err(|e| load_error(ifname, e))?;

    let mut xsks = Vec::with_capacity(queues as usize);
    for q in 0..queues {
        let x = socket::create(ifindex, q, q == 0, pool).map_err(|e| {
            let what = format!("{}{}", e.step, hint(&e.source, Step::Socket));
            PortError::new(ifname, what, e.source)
        })?;
        map.insert(q, x.sock.raw_fd()).map_err(fail(format!(
            "adding the AF_XDP socket of queue {q} to the XSKMAP"
        )))?;
        xsks.push(x);
    }

    let Attached {
        link,
        prog,
        mode: used,
        fallback_reason,
    } = attach(ifname, ifindex, &map, prog, mode)?;
    let attachment = Arc::new(XdpAttachment::new(link, prog, map));

    let multi_buffer = xsks.iter().all(|x| x.multi_buffer);
    let mut rxqs: Vec<Box<dyn RxQueue>> = Vec::with_capacity(xsks.len());
    let mut tx = None;
    for x in xsks {
        if let Some(rings) = x.tx {
            tx = Some(AfXdpTx::new(
                rings.tx,
                rings.comp,
                x.umem.tx,
                x.tx_addrs.into_iter(),
                x.multi_buffer,
                x.sock.clone(),
                attachment.clone(),
            ));
        }
        rxqs.push(Box::new(AfXdpRx::new(
            x.fill,
            x.rx,
            x.umem.rx,
            &x.rx_addrs,
            x.need_wakeup,
            x.sock,
            attachment.clone(),
        )));
    }
    let tx = tx.ok_or_else(|| {
        PortError::new(
            ifname,
            "setting up transmit (no queue 0)",
            io::Error::from_raw_os_error(libc::EINVAL),
        )
    })?;

    Ok(OpenPort {
        rxqs,
        tx: Box::new(tx),
        status: PortStatus {
            backend: "afxdp".into(),
            mode: used.as_str().into(),
            fallback_reason,
            ifindex,
            mtu,
            mac,
            mtu_limit: (!multi_buffer).then_some((
                crate::SINGLE_BUFFER_MTU,
                "the kernel would not bind the AF_XDP socket with multi-buffer \
                 (XDP_USE_SG: Linux 6.6+, and driver support in zero-copy mode), \
                 so a frame must fit one 4 KiB buffer",
            )),
        },
    })
}

fn load_error(ifname: &str, e: LoadError) -> PortError {
    let what = if e.log.is_empty() {
        format!("loading XDP program{}", hint(&e.source, Step::Bpf))
    } else {
        format!("loading XDP program: {}", e.log)
    };
    PortError::new(ifname, what, e.source)
}

/// A program attached to the device.
struct Attached {
    link: Link,
    prog: Program,
    /// The mode in effect.
    mode: XdpMode,
    /// Why best-effort fell back to generic, if it did.
    fallback_reason: Option<String>,
}

/// Attaches `prog` in `mode`. If best-effort falls back to generic and
/// `prog` is device-bound (generic mode refuses those), it attaches a plain
/// program for `map` instead.
fn attach(
    ifname: &str,
    ifindex: u32,
    map: &XskMap,
    (prog, flavor): (Program, Flavor),
    mode: XdpMode,
) -> Result<Attached, PortError> {
    let try_mode = |prog: &Program, m: XdpMode| {
        let flags = match m {
            XdpMode::Generic => XDP_FLAGS_SKB_MODE,
            _ => XDP_FLAGS_DRV_MODE,
        };
        Link::attach_xdp(prog, ifindex, flags).map_err(|e| {
            let what = format!(
                "attaching XDP program in {m} mode{}",
                hint(&e, Step::Attach)
            );
            PortError::new(ifname, what, e)
        })
    };
    let attached = |link, prog, mode, fallback_reason| Attached {
        link,
        prog,
        mode,
        fallback_reason,
    };
    match mode {
        XdpMode::Native | XdpMode::Generic => {
            Ok(attached(try_mode(&prog, mode)?, prog, mode, None))
        }
        XdpMode::BestEffort => match try_mode(&prog, XdpMode::Native) {
            Ok(link) => Ok(attached(link, prog, XdpMode::Native, None)),
            Err(native) => {
                let prog = match flavor {
                    Flavor::Plain | Flavor::OwnFrames => prog,
                    Flavor::RestoresVlan => {
                        drop(prog);
                        Program::load_redirect(map).map_err(|e| load_error(ifname, e))?
                    }
                };
                match try_mode(&prog, XdpMode::Generic) {
                    Ok(link) => {
                        let why = format!(
                            "native XDP could not be attached ({}{}), so it runs in generic mode",
                            native.source,
                            hint(&native.source, Step::Attach)
                        );
                        Ok(attached(link, prog, XdpMode::Generic, Some(why)))
                    }
                    Err(generic) => {
                        let what =
                            format!("{}: {}; then {}", native.what, native.source, generic.what);
                        Err(PortError::new(ifname, what, generic.source))
                    }
                }
            }
        },
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Step {
    Bpf,
    Socket,
    Attach,
}

/// What the user can do about common errors, as a suffix for `what`.
fn hint(e: &io::Error, step: Step) -> &'static str {
    match (e.raw_os_error(), step) {
        (Some(libc::EPERM), Step::Bpf | Step::Attach) => {
            " (needs root, or CAP_BPF and CAP_NET_ADMIN)"
        }
        (Some(libc::EPERM), Step::Socket) => " (needs root, or CAP_NET_RAW)",
        (Some(libc::EAFNOSUPPORT), _) => " (kernel built without CONFIG_XDP_SOCKETS)",
        (Some(libc::EBUSY), Step::Attach) => {
            " (another XDP program is attached; see `ip link show` and \
             `ip link set dev <name> xdp off`)"
        }
        (Some(libc::EBUSY), Step::Socket) => {
            " (another AF_XDP socket is bound to this queue, or another process uses the device)"
        }
        (Some(libc::ERANGE), Step::Attach) => {
            " (the MTU of the device or of its veth peer is too large for native XDP; \
             use generic mode or lower the MTU)"
        }
        (Some(libc::ENOSPC), Step::Attach) => {
            " (veth: this end has fewer RX queues than its peer has TX queues)"
        }
        (Some(libc::EOPNOTSUPP), Step::Attach) => " (the driver has no native XDP support)",
        (Some(libc::EEXIST), Step::Attach) => {
            " (an XDP program is attached in the other mode; native and generic \
             cannot be active together)"
        }
        _ => "",
    }
}

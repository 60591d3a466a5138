//! Creating one AF_XDP socket: its UMEM, its rings and its bind, plus the
//! two "kick" syscalls the data path needs.

use super::pool::{Region, UmemPool};
use super::ring::{ConsRing, ProdRing, RingOffsets};
use super::umem::{Mmap, Umem, UmemLayout, FRAME_SIZE};
use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Frames (and fill/RX ring entries) per receive queue.
pub(super) const RX_FRAMES: u32 = 2048;
/// Frames (and TX/completion ring entries) of the transmitting socket.
pub(super) const TX_FRAMES: u32 = 2048;
/// Completion ring of a socket that never transmits: `bind` insists on one.
const IDLE_COMP_RING: u32 = 64;
/// `XDP_MAX_TX_SKB_BUDGET` (Linux 6.17+): descriptors one copy-mode
/// `sendto()` may send; the default is 32.
const XDP_MAX_TX_SKB_BUDGET: libc::c_int = 9;
pub(super) const TX_BUDGET: u32 = 128;

/// An AF_XDP socket descriptor, shared by the RX and TX halves of queue 0.
pub(super) struct XskSocket {
    /// `None` only while being dropped.
    fd: Option<OwnedFd>,
    /// The pool region the socket's UMEM is, if it is one.
    region: Option<Arc<Region>>,
    /// Frames the socket's halves held when they were dropped; they go
    /// back to the region once the socket is closed.
    held: Mutex<Vec<u64>>,
}

impl XskSocket {
    pub(super) fn raw_fd(&self) -> RawFd {
        self.fd.as_ref().map_or(-1, |fd| fd.as_raw_fd())
    }

    /// Called by a half being dropped with the frames it holds.
    pub(super) fn hand_back(&self, frames: Vec<u64>) {
        if self.region.is_some() {
            let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
            held.extend(frames);
        }
    }

    /// Asks the kernel to process the TX ring (copy mode sends only inside
    /// this call, up to the per-call budget).
    pub(super) fn kick_tx(&self) -> io::Result<()> {
        // SAFETY: a zero-length send with no buffer and no address; the
        // kernel reads nothing from user memory.
        let rc = unsafe {
            libc::sendto(
                self.raw_fd(),
                std::ptr::null(),
                0,
                libc::MSG_DONTWAIT,
                std::ptr::null(),
                0,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Frames the kernel dropped on this socket's receive side: RX ring
    /// full, no fill-ring frame, or otherwise undeliverable.
    pub(super) fn rx_drops(&self) -> u64 {
        // SAFETY: xdp_statistics is plain old data; all-zero is valid.
        let mut st: libc::xdp_statistics = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<libc::xdp_statistics>() as libc::socklen_t;
        // SAFETY: getsockopt writes at most `len` bytes into `st`, which is
        // that large, and updates `len`.
        let rc = unsafe {
            libc::getsockopt(
                self.raw_fd(),
                libc::SOL_XDP,
                libc::XDP_STATISTICS,
                (&mut st as *mut libc::xdp_statistics).cast(),
                &mut len,
            )
        };
        if rc != 0 {
            return 0;
        }
        // Older kernels fill only the first three fields (len says so); the
        // zeroed rest then adds nothing.
        st.rx_dropped + st.rx_ring_full
    }

    /// Tells the kernel the fill ring has new entries (`XDP_USE_NEED_WAKEUP`).
    pub(super) fn kick_rx(&self) -> io::Result<()> {
        // SAFETY: a zero-length receive with no buffer and no address; the
        // kernel writes nothing to user memory.
        let rc = unsafe {
            libc::recvfrom(
                self.raw_fd(),
                std::ptr::null_mut(),
                0,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

impl Drop for XskSocket {
    fn drop(&mut self) {
        // Close first: once close() has returned, the kernel has unbound the
        // socket and no longer touches its frames (copy mode), so they can
        // go to other sockets of the region.
        drop(self.fd.take());
        if let Some(region) = &self.region {
            let held = self.held.get_mut().unwrap_or_else(PoisonError::into_inner);
            region.give_back(held.drain(..));
        }
    }
}

/// The rings of the transmitting socket.
pub(super) struct TxRings {
    pub tx: ProdRing<libc::xdp_desc>,
    pub comp: ConsRing<u64>,
}

/// A bound AF_XDP socket with everything it owns.
pub(super) struct Xsk {
    pub fill: ProdRing<u64>,
    pub rx: ConsRing<libc::xdp_desc>,
    pub tx: Option<TxRings>,
    pub umem: Umem,
    /// The frames on the fill ring, then those for the TX free list.
    pub rx_addrs: Vec<u64>,
    pub tx_addrs: Vec<u64>,
    pub need_wakeup: bool,
    /// Bound with `XDP_USE_SG`: a frame larger than one UMEM frame comes
    /// and goes as several descriptors (Linux 6.6+).
    pub multi_buffer: bool,
    pub sock: Arc<XskSocket>,
}

/// Bind options, the most capable first: a kernel without a flag rejects
/// the bind with EINVAL (a driver without multi-buffer, with EOPNOTSUPP),
/// and the socket is made again with the next. Retrying from scratch costs
/// nothing when the error had another cause.
const BIND_OPTIONS: [Options; 3] = [
    Options {
        need_wakeup: true,
        multi_buffer: true,
    },
    Options {
        need_wakeup: true,
        multi_buffer: false,
    },
    Options {
        need_wakeup: false,
        multi_buffer: false,
    },
];

#[derive(Clone, Copy)]
struct Options {
    need_wakeup: bool,
    multi_buffer: bool,
}

/// Frames taken for a socket being set up. Should the setup fail (the
/// socket then never was bound, so the kernel never used them) they go back
/// to their region.
struct Taken {
    region: Option<Arc<Region>>,
    addrs: Vec<u64>,
}

impl Drop for Taken {
    fn drop(&mut self) {
        if let Some(region) = &self.region {
            region.give_back(self.addrs.drain(..));
        }
    }
}

/// A failed setup step and its error.
pub(super) struct SetupError {
    pub step: String,
    pub source: io::Error,
}

/// Creates and binds the socket of receive queue `queue` (copy mode), with a
/// TX ring when `with_tx`, on memory of its own or of a region of `pool`.
/// Uses `XDP_USE_NEED_WAKEUP` and `XDP_USE_SG` when the kernel takes them.
pub(super) fn create(
    ifindex: u32,
    queue: u32,
    with_tx: bool,
    pool: Option<&UmemPool>,
) -> Result<Xsk, SetupError> {
    let mut last = None;
    for opts in BIND_OPTIONS {
        match create_with(ifindex, queue, with_tx, pool, opts) {
            Err(e)
                if matches!(
                    e.source.raw_os_error(),
                    Some(libc::EINVAL | libc::EOPNOTSUPP)
                ) =>
            {
                last = Some(e)
            }
            r => return r,
        }
    }
    Err(last.expect("BIND_OPTIONS is not empty"))
}

fn create_with(
    ifindex: u32,
    queue: u32,
    with_tx: bool,
    pool: Option<&UmemPool>,
    opts: Options,
) -> Result<Xsk, SetupError> {
    let Options {
        need_wakeup,
        multi_buffer,
    } = opts;
    let step = |s: String| move |source: io::Error| SetupError { step: s, source };

    // SAFETY: plain socket() call; the result is checked and owned at once.
    let fd = unsafe { libc::socket(libc::AF_XDP, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(
            step(format!("creating the AF_XDP socket of queue {queue}"))(io::Error::last_os_error()),
        );
    }
    // SAFETY: `fd` is a fresh descriptor nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };

    let layout = UmemLayout {
        rx_frames: RX_FRAMES,
        tx_frames: if with_tx { TX_FRAMES } else { 0 },
    };
    let (umem, mut taken) = match pool {
        None => Umem::allocate(layout).map(|umem| {
            let addrs = layout.rx_addrs(0).chain(layout.tx_addrs(0)).collect();
            (
                umem,
                Taken {
                    region: None,
                    addrs,
                },
            )
        }),
        Some(pool) => pool.take(layout.frames()).map(|(region, addrs)| {
            let umem = Umem::shared(region.map());
            let region = Some(region);
            (umem, Taken { region, addrs })
        }),
    }
    .map_err(step(match pool {
        None => format!(
            "allocating {} MiB of UMEM for queue {queue}",
            layout.len() >> 20
        ),
        Some(_) => format!("allocating a UMEM region of the pool for queue {queue}"),
    }))?;
    let (addr, len) = umem.region();
    let reg = libc::xdp_umem_reg {
        addr,
        len,
        chunk_size: FRAME_SIZE,
        headroom: 0,
        flags: 0,
        tx_metadata_len: 0,
    };
    setsockopt(&fd, libc::XDP_UMEM_REG, &reg).map_err(step(format!(
        "registering the UMEM of queue {queue} (needs CAP_IPC_LOCK or a large enough RLIMIT_MEMLOCK)"
    )))?;

    let comp_size = if with_tx { TX_FRAMES } else { IDLE_COMP_RING };
    let mut sizes = vec![
        (libc::XDP_UMEM_FILL_RING, RX_FRAMES),
        (libc::XDP_UMEM_COMPLETION_RING, comp_size),
        (libc::XDP_RX_RING, RX_FRAMES),
    ];
    if with_tx {
        sizes.push((libc::XDP_TX_RING, TX_FRAMES));
    }
    for (opt, size) in sizes {
        setsockopt(&fd, opt, &size)
            .map_err(step(format!("sizing the AF_XDP rings of queue {queue}")))?;
    }

    // SAFETY: plain-old-data struct; all-zero is valid.
    let mut off: libc::xdp_mmap_offsets = unsafe { std::mem::zeroed() };
    getsockopt(&fd, libc::XDP_MMAP_OFFSETS, &mut off).map_err(step(format!(
        "reading the AF_XDP ring offsets of queue {queue}"
    )))?;

    let map = |name: &str, len: usize, pgoff: u64| {
        Mmap::shared(fd.as_fd(), len, pgoff)
            .map_err(step(format!("mapping the {name} ring of queue {queue}")))
    };
    let fo = RingOffsets::from(off.fr);
    let fill_map = map(
        "fill",
        fo.map_len::<u64>(RX_FRAMES),
        libc::XDP_UMEM_PGOFF_FILL_RING,
    )?;
    let mut fill = ProdRing::new(fill_map, fo, RX_FRAMES)
        .map_err(step(format!("mapping the fill ring of queue {queue}")))?;
    let ro = RingOffsets::from(off.rx);
    let rx_len = ro.map_len::<libc::xdp_desc>(RX_FRAMES);
    let rx_map = map("RX", rx_len, libc::XDP_PGOFF_RX_RING as u64)?;
    let rx = ConsRing::new(rx_map, ro, RX_FRAMES)
        .map_err(step(format!("mapping the RX ring of queue {queue}")))?;
    let tx = if with_tx {
        let to = RingOffsets::from(off.tx);
        let tx_len = to.map_len::<libc::xdp_desc>(TX_FRAMES);
        let tx_map = map("TX", tx_len, libc::XDP_PGOFF_TX_RING as u64)?;
        let co = RingOffsets::from(off.cr);
        let cr_len = co.map_len::<u64>(TX_FRAMES);
        let cr_map = map("completion", cr_len, libc::XDP_UMEM_PGOFF_COMPLETION_RING)?;
        Some(TxRings {
            tx: ProdRing::new(tx_map, to, TX_FRAMES)
                .map_err(step(format!("mapping the TX ring of queue {queue}")))?,
            comp: ConsRing::new(cr_map, co, TX_FRAMES).map_err(step(format!(
                "mapping the completion ring of queue {queue}"
            )))?,
        })
    } else {
        None
    };

    // Every RX frame starts on the fill ring; it has exactly room for them.
    for &a in &taken.addrs[..RX_FRAMES as usize] {
        if !fill.push(a) {
            return Err(step(format!("filling the fill ring of queue {queue}"))(
                io::Error::from_raw_os_error(libc::ENOSPC),
            ));
        }
    }
    fill.submit();

    let mut flags = libc::XDP_COPY;
    if need_wakeup {
        flags |= libc::XDP_USE_NEED_WAKEUP;
    }
    if multi_buffer {
        flags |= libc::XDP_USE_SG;
    }
    let sa = libc::sockaddr_xdp {
        sxdp_family: libc::AF_XDP as u16,
        sxdp_flags: flags,
        sxdp_ifindex: ifindex,
        sxdp_queue_id: queue,
        sxdp_shared_umem_fd: 0,
    };
    bind_retrying_busy(&fd, &sa)
        .map_err(step(format!("binding AF_XDP socket to queue {queue}")))?;
    if with_tx {
        // Optional: older kernels answer ENOPROTOOPT and keep 32 per call.
        let _ = setsockopt(&fd, XDP_MAX_TX_SKB_BUDGET, &TX_BUDGET);
    }

    // Bound: from here on the frames are the socket's (and its halves').
    let mut rx_addrs = std::mem::take(&mut taken.addrs);
    let tx_addrs = rx_addrs.split_off(RX_FRAMES as usize);
    let sock = Arc::new(XskSocket {
        fd: Some(fd),
        region: taken.region.take(),
        held: Mutex::new(Vec::new()),
    });
    Ok(Xsk {
        fill,
        rx,
        tx,
        umem,
        rx_addrs,
        tx_addrs,
        need_wakeup,
        multi_buffer,
        sock,
    })
}

/// How long `bind` retries EBUSY: a socket closed just before (by this or
/// another process, or by a failed open) frees its claim on the queue only
/// after an RCU grace period and a kernel work item (8-15 ms measured on
/// Linux 6.18). A queue that is really in use fails after this delay.
const BIND_BUSY_RETRY: Duration = Duration::from_millis(500);

fn bind_retrying_busy(fd: &OwnedFd, sa: &libc::sockaddr_xdp) -> io::Result<()> {
    let start = Instant::now();
    loop {
        // SAFETY: `sa` is a valid sockaddr_xdp and the length is its size.
        let rc = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (sa as *const libc::sockaddr_xdp).cast(),
                std::mem::size_of::<libc::sockaddr_xdp>() as libc::socklen_t,
            )
        };
        if rc == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EBUSY) || start.elapsed() >= BIND_BUSY_RETRY {
            return Err(e);
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn setsockopt<T>(fd: &OwnedFd, name: libc::c_int, val: &T) -> io::Result<()> {
    // SAFETY: `val` points to a live `T` of the size passed; every option
    // used here takes exactly that type.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_XDP,
            name,
            (val as *const T).cast(),
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Reads an option that must fill `val` completely.
fn getsockopt<T>(fd: &OwnedFd, name: libc::c_int, val: &mut T) -> io::Result<()> {
    let mut len = std::mem::size_of::<T>() as libc::socklen_t;
    // SAFETY: `val` is a live, writable `T` of `len` bytes; the kernel
    // writes at most `len` bytes and updates `len`.
    let rc = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_XDP,
            name,
            (val as *mut T).cast(),
            &mut len,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    if len as usize != std::mem::size_of::<T>() {
        // An old layout (no ring flags, fewer counters): refuse it rather
        // than read zeros as offsets.
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!(
                "the kernel returned {len} bytes for AF_XDP option {name}, expected {}; \
                 this kernel is too old (Linux 5.4 or later is needed)",
                std::mem::size_of::<T>()
            ),
        ));
    }
    Ok(())
}

//! Raw Ethernet frames through AF_PACKET sockets inside a namespace:
//! sending exactly the bytes a test built, and capturing what arrives.
//!
//! Captures return incoming frames only (not the host's own transmissions),
//! with the 802.1Q tag put back where the kernel took it off (veth strips
//! VLAN tags into packet metadata on receive; PACKET_AUXDATA hands it back).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::ptr::read_unaligned;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::poll_readable;
use crate::netns::{join, spawn_in_netns};

const PACKET_AUXDATA: libc::c_int = 8;
const PACKET_IGNORE_OUTGOING: libc::c_int = 23;
const PACKET_OUTGOING: u8 = 4;
const TP_STATUS_VLAN_VALID: u32 = 1 << 4;
const TP_STATUS_VLAN_TPID_VALID: u32 = 1 << 6;

/// `struct tpacket_auxdata` from linux/if_packet.h (all fields declared to
/// keep the layout; only the status and VLAN ones are read).
#[allow(dead_code)]
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct TpacketAuxdata {
    tp_status: u32,
    tp_len: u32,
    tp_snaplen: u32,
    tp_mac: u16,
    tp_net: u16,
    tp_vlan_tci: u16,
    tp_vlan_tpid: u16,
}

/// Time a single frame may wait for room in the transmit path.
const SEND_TIMEOUT: Duration = Duration::from_secs(2);

fn last_err(what: &str) -> io::Error {
    let e = io::Error::last_os_error();
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

fn ifindex(ifname: &str) -> io::Result<libc::c_int> {
    let c = std::ffi::CString::new(ifname)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in interface name"))?;
    // SAFETY: `c` is a valid NUL-terminated string for the whole call.
    let idx = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if idx == 0 {
        return Err(last_err(&format!("interface {ifname}")));
    }
    libc::c_int::try_from(idx).map_err(|_| io::Error::other("ifindex out of range"))
}

/// Opens an AF_PACKET socket bound to `ifname` (in the calling thread's
/// namespace). `protocol` is ETH_P_ALL to receive, 0 to only send. The
/// socket is created with protocol 0 so it sees nothing before the bind
/// narrows it to one interface.
fn packet_socket(ifname: &str, protocol: u16) -> io::Result<OwnedFd> {
    let idx = ifindex(ifname)?;
    // SAFETY: plain socket(2) call; the result is checked before use.
    let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(last_err("socket(AF_PACKET)"));
    }
    // SAFETY: `fd` is a fresh descriptor that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: all-zero is a valid sockaddr_ll; the fields that matter are
    // set below.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = protocol.to_be();
    sll.sll_ifindex = idx;
    // SAFETY: `sll` is a properly initialised sockaddr_ll and the length
    // passed is its size.
    let rc = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&sll as *const libc::sockaddr_ll).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(last_err(&format!("bind AF_PACKET socket to {ifname}")));
    }
    Ok(fd)
}

fn set_int_opt(
    fd: &OwnedFd,
    level: libc::c_int,
    opt: libc::c_int,
    val: libc::c_int,
) -> io::Result<()> {
    // SAFETY: `fd` is a live socket; the value is a c_int passed with its size.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            opt,
            (&val as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(last_err(&format!("setsockopt({level}, {opt})")));
    }
    Ok(())
}

/// Sends `frames` as they are out of `ifname` inside namespace `ns`.
/// Returns how many were sent; a frame the kernel refuses is an error.
pub fn send_raw(ns: &str, ifname: &str, frames: &[Vec<u8>]) -> io::Result<usize> {
    let frames = frames.to_vec();
    let ifname = ifname.to_string();
    let ns_name = ns.to_string();
    join(spawn_in_netns(ns, move || -> io::Result<usize> {
        let fd = packet_socket(&ifname, 0)?;
        for (i, f) in frames.iter().enumerate() {
            let deadline = Instant::now() + SEND_TIMEOUT;
            loop {
                // SAFETY: `f` is a live buffer of f.len() bytes; `fd` is open.
                let rc = unsafe {
                    libc::send(
                        fd.as_raw_fd(),
                        f.as_ptr().cast(),
                        f.len(),
                        libc::MSG_DONTWAIT,
                    )
                };
                if rc >= 0 {
                    break;
                }
                let e = io::Error::last_os_error();
                let busy = matches!(e.raw_os_error(), Some(libc::ENOBUFS) | Some(libc::EAGAIN));
                if !busy || Instant::now() > deadline {
                    return Err(io::Error::new(
                        e.kind(),
                        format!(
                            "send frame {i} ({} bytes) on {ifname} in {ns_name}: {e}",
                            f.len()
                        ),
                    ));
                }
                std::thread::sleep(Duration::from_micros(200));
            }
        }
        Ok(frames.len())
    }))?
}

/// A capture running on its own thread inside a namespace. Frames collect
/// until [`Capture::stop`] (or drop).
pub struct Capture {
    what: String,
    frames: Arc<Mutex<Vec<Vec<u8>>>>,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<io::Result<io::Result<()>>>>,
}

impl Capture {
    /// Starts capturing incoming frames on `ifname` in namespace `ns`.
    /// Returns once the socket is bound, so frames sent after this call
    /// returns are seen.
    pub fn start(ns: &str, ifname: &str) -> io::Result<Capture> {
        let frames = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = mpsc::channel();
        let handle = {
            let (frames, stop, ifname) = (frames.clone(), stop.clone(), ifname.to_string());
            spawn_in_netns(ns, move || capture_loop(&ifname, &frames, &stop, ready_tx))
        };
        let what = format!("capture on {ifname} in {ns}");
        match ready_rx.recv_timeout(Duration::from_secs(5)) {
            Ok(Ok(())) => Ok(Capture {
                what,
                frames,
                stop,
                handle: Some(handle),
            }),
            Ok(Err(e)) => {
                let _ = join(handle);
                Err(e)
            }
            Err(_) => {
                stop.store(true, Ordering::Release);
                let r = join(handle);
                Err(io::Error::other(format!("{what} did not start: {r:?}")))
            }
        }
    }

    /// A copy of the frames captured so far.
    pub fn frames(&self) -> Vec<Vec<u8>> {
        self.frames.lock().map(|f| f.clone()).unwrap_or_default()
    }

    /// Polls until `pred` holds for the frames so far or `timeout` passes.
    pub fn wait_for(&self, timeout: Duration, pred: impl Fn(&[Vec<u8>]) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            let ok = self.frames.lock().map(|f| pred(&f)).unwrap_or(false);
            if ok {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Stops the capture and returns every frame it saw. Panics if the
    /// capture thread failed (its error says why).
    pub fn stop(mut self) -> Vec<Vec<u8>> {
        self.finish();
        self.frames()
    }

    fn finish(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(h) = self.handle.take() {
            match join(h) {
                Ok(Ok(())) => {}
                Ok(Err(e)) | Err(e) => {
                    if !std::thread::panicking() {
                        panic!("{} failed: {e}", self.what);
                    }
                }
            }
        }
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.finish();
    }
}

/// Captures incoming frames on `ifname` in `ns` for `duration`.
pub fn capture(ns: &str, ifname: &str, duration: Duration) -> io::Result<Vec<Vec<u8>>> {
    let c = Capture::start(ns, ifname)?;
    std::thread::sleep(duration);
    Ok(c.stop())
}

fn capture_loop(
    ifname: &str,
    frames: &Mutex<Vec<Vec<u8>>>,
    stop: &AtomicBool,
    ready: mpsc::Sender<io::Result<()>>,
) -> io::Result<()> {
    let setup = || -> io::Result<OwnedFd> {
        let fd = packet_socket(ifname, libc::ETH_P_ALL as u16)?;
        set_int_opt(&fd, libc::SOL_PACKET, PACKET_AUXDATA, 1)?;
        // Older kernels lack this; outgoing frames are filtered below too.
        let _ = set_int_opt(&fd, libc::SOL_PACKET, PACKET_IGNORE_OUTGOING, 1);
        let _ = set_int_opt(&fd, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, 8 << 20);
        Ok(fd)
    };
    let fd = match setup() {
        Ok(fd) => fd,
        Err(e) => {
            let msg = e.to_string();
            let _ = ready.send(Err(e));
            return Err(io::Error::other(msg));
        }
    };
    let _ = ready.send(Ok(()));
    let mut buf = vec![0u8; 65536 + 4];
    while !stop.load(Ordering::Acquire) {
        if !poll_readable(fd.as_raw_fd(), Duration::from_millis(20))? {
            continue;
        }
        while let Some(frame) = recv_one(&fd, &mut buf)? {
            if let Some(f) = frame {
                if let Ok(mut v) = frames.lock() {
                    v.push(f);
                }
            }
        }
    }
    Ok(())
}

/// Receives one frame without blocking. `None`: nothing queued;
/// `Some(None)`: a frame that is not incoming; `Some(Some(f))`: a frame.
fn recv_one(fd: &OwnedFd, buf: &mut [u8]) -> io::Result<Option<Option<Vec<u8>>>> {
    // Leave 4 bytes of room to put a VLAN tag back.
    let data_len = buf.len() - 4;
    // SAFETY: all-zero is a valid sockaddr_ll (filled by the kernel).
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    // u64 elements keep the control buffer aligned for cmsghdr.
    let mut control = [0u64; 16];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: data_len,
    };
    // SAFETY: all-zero is a valid msghdr; the pointers are set below.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_name = (&mut sll as *mut libc::sockaddr_ll).cast();
    msg.msg_namelen = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&control);
    // SAFETY: every pointer in `msg` refers to a live buffer of the stated
    // length for the duration of the call.
    let n = unsafe { libc::recvmsg(fd.as_raw_fd(), &mut msg, libc::MSG_DONTWAIT) };
    if n < 0 {
        let e = io::Error::last_os_error();
        return match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(None),
            _ => Err(e),
        };
    }
    if sll.sll_pkttype == PACKET_OUTGOING {
        return Ok(Some(None));
    }
    let n = (n as usize).min(data_len);
    let mut frame = buf[..n].to_vec();
    if let Some(aux) = auxdata(&msg) {
        if aux.tp_status & TP_STATUS_VLAN_VALID != 0 && frame.len() >= 12 {
            let tpid = if aux.tp_status & TP_STATUS_VLAN_TPID_VALID != 0 {
                aux.tp_vlan_tpid
            } else {
                crate::frames::ETHERTYPE_VLAN
            };
            let mut tag = Vec::with_capacity(4);
            tag.extend_from_slice(&tpid.to_be_bytes());
            tag.extend_from_slice(&aux.tp_vlan_tci.to_be_bytes());
            frame.splice(12..12, tag);
        }
    }
    Ok(Some(Some(frame)))
}

/// The PACKET_AUXDATA control message of a received frame, if present.
fn auxdata(msg: &libc::msghdr) -> Option<TpacketAuxdata> {
    // SAFETY: `msg` was filled by recvmsg; CMSG_FIRSTHDR/NXTHDR only walk
    // inside msg_control up to msg_controllen.
    let mut cmsg = unsafe { libc::CMSG_FIRSTHDR(msg) };
    while !cmsg.is_null() {
        // SAFETY: `cmsg` is non-null and points inside the control buffer.
        let hdr = unsafe { &*cmsg };
        if hdr.cmsg_level == libc::SOL_PACKET && hdr.cmsg_type == PACKET_AUXDATA {
            // SAFETY: the kernel wrote a tpacket_auxdata as this message's
            // data (CMSG_DATA only computes its address from `cmsg`, which
            // points inside the control buffer); read_unaligned copes with
            // any alignment.
            let aux = unsafe { read_unaligned(libc::CMSG_DATA(cmsg).cast()) };
            return Some(aux);
        }
        // SAFETY: as above; returns null past the last message.
        cmsg = unsafe { libc::CMSG_NXTHDR(msg, cmsg) };
    }
    None
}

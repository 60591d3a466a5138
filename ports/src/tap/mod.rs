//! TAP ports: a TAP device the switch creates and owns, for VMs and for the
//! switch's own "internal" interface, and the persistent TAP devices of
//! container attachments ([`open_vnet`]).
//!
//! Every TAP port is opened with the virtio-net header and the checksum and
//! TSO offloads on ([`vnet`]): the kernel hands the switch 64 KB TCP
//! super-frames with partial checksums, and takes them back the same way,
//! so the host's own stack talks to containers through a bridge's internal
//! port as fast as containers talk to each other. A device made by
//! [`create`] is not persistent: it disappears when its fd closes, that is
//! when the [`OpenPort`] is dropped.
//!
//! One queue (no `IFF_MULTI_QUEUE`), its fd shared through an `Arc` by the
//! receive half and the transmit half: `read` and `write` on a tun fd may run
//! at the same time from different threads. Several queues would each need
//! their own poll thread to receive, since the kernel spreads the frames it
//! sends out of the device over all of them.

mod coalesce;
pub mod vnet;

use crate::{netdev, OpenPort, PortError, PortStatus};
use std::fs::OpenOptions;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::sync::Arc;

/// Creates the TAP device `name` and brings it up. `internal` only changes
/// the reported backend ("internal" instead of "tap").
pub fn create(name: &str, internal: bool) -> Result<OpenPort, PortError> {
    if netdev::exists(name) && !is_tap(name) {
        return Err(PortError::new(
            name,
            "creating the TAP device",
            io::Error::new(
                io::ErrorKind::AlreadyExists,
                "a device of this name exists and is not a TAP device; delete it or choose another name",
            ),
        ));
    }
    let fd = open_tun(name)?;
    netdev::set_up(name, true).map_err(|e| PortError::new(name, "bringing the interface up", e))?;
    let status = read_status(name, if internal { "internal" } else { "tap" })?;
    Ok(vnet_port(fd, status))
}

/// Opens `/dev/net/tun` on the TAP device `name` (made if it does not
/// exist) with the virtio-net header, and turns the offloads on.
fn open_tun(name: &str) -> Result<OwnedFd, PortError> {
    let fail = |what: &'static str| move |e: io::Error| PortError::new(name, what, e);
    netdev::check_port_ifname(name)?;
    let fd: OwnedFd = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open("/dev/net/tun")
        .map_err(fail("opening /dev/net/tun"))?
        .into();
    let flags = libc::IFF_TAP | libc::IFF_NO_PI | libc::IFF_VNET_HDR;
    tunsetiff_flags(&fd, name, flags).map_err(|e| match e.raw_os_error() {
        Some(libc::EBUSY) => PortError::new(
            name,
            "attaching to the TAP device (TUNSETIFF): another process has it open",
            e,
        ),
        _ => PortError::new(name, "opening the TAP device (TUNSETIFF)", e),
    })?;
    set_offloads(&fd).map_err(fail("turning offloads on (TUNSETOFFLOAD)"))?;
    Ok(fd)
}

/// What `show` reports of the open TAP device `name`.
fn read_status(name: &str, backend: &str) -> Result<PortStatus, PortError> {
    let fail = |what: &'static str| move |e: io::Error| PortError::new(name, what, e);
    Ok(PortStatus {
        backend: backend.into(),
        mode: "vnet-hdr".into(),
        fallback_reason: None,
        ifindex: netdev::ifindex(name).map_err(fail("looking up the interface"))?,
        mtu: netdev::mtu(name).map_err(fail("reading the MTU"))?,
        mac: netdev::mac(name).map_err(fail("reading the MAC address"))?,
        mtu_limit: None,
    })
}

/// The two halves of a TAP port with the virtio-net header on `fd`.
fn vnet_port(fd: OwnedFd, status: PortStatus) -> OpenPort {
    let fd = Arc::new(fd);
    OpenPort {
        rxqs: vec![Box::new(vnet::VnetRx::new(fd.clone(), status.mtu as usize))],
        tx: Box::new(vnet::VnetTx::new(fd)),
        status,
    }
}

/// Whether the existing device `name` is a TAP (tun devices list their
/// flags in sysfs; other devices have no such file).
fn is_tap(name: &str) -> bool {
    std::fs::read_to_string(format!("/sys/class/net/{name}/tun_flags"))
        .ok()
        .and_then(|s| u32::from_str_radix(s.trim().trim_start_matches("0x"), 16).ok())
        .is_some_and(|flags| flags & libc::IFF_TAP as u32 != 0)
}

/// `TUNSETOFFLOAD` flags (linux/if_tun.h): what the switch can take from
/// the kernel: partial checksums, TCP super-frames over IPv4 and IPv6,
/// with ECN, and UDP ones (USO, Linux 6.2 and later).
const TUN_F_CSUM: libc::c_uint = 0x01;
const TUN_F_TSO4: libc::c_uint = 0x02;
const TUN_F_TSO6: libc::c_uint = 0x04;
const TUN_F_TSO_ECN: libc::c_uint = 0x08;
const TUN_F_USO4: libc::c_uint = 0x20;
const TUN_F_USO6: libc::c_uint = 0x40;

/// Opens the TAP device `ifname` with the virtio-net header and TSO and
/// checksum offloads on, creating it if it does not exist, and makes it
/// persistent: it outlives the fd (a daemon restart), and goes when it is
/// deleted (`ip link del`, detach) or its namespace goes. With `netns`,
/// the device is looked up or created in that network namespace (a
/// container's), which then sees an ordinary interface; the fd works from
/// anywhere. The device is not brought up: whoever configures it does.
pub fn open_vnet(ifname: &str, netns: Option<&std::path::Path>) -> Result<OpenPort, PortError> {
    let name = ifname.to_string();
    let open = move || -> Result<(OwnedFd, PortStatus), PortError> {
        let fd = open_tun(&name)?;
        // SAFETY: TUNSETPERSIST takes its argument by value (1: persistent);
        // the fd is an attached tun fd.
        if unsafe { libc::ioctl(fd.as_raw_fd(), libc::TUNSETPERSIST, 1 as libc::c_ulong) } < 0 {
            let e = io::Error::last_os_error();
            return Err(PortError::new(&name, "making the device persistent", e));
        }
        Ok((fd, read_status(&name, "tap")?))
    };
    let (fd, status) = match netns {
        None => open()?,
        Some(path) => crate::netns::run_in(path, open).map_err(|e| {
            PortError::new(ifname, "entering the container's network namespace", e)
        })??,
    };
    Ok(vnet_port(fd, status))
}

/// Tells the kernel what the switch takes from a TAP fd with the
/// virtio-net header: partial checksums, TCP super-frames, and UDP ones
/// where the kernel knows them (an older one refuses the USO flags).
fn set_offloads(fd: &OwnedFd) -> io::Result<()> {
    let tcp = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN;
    for offloads in [tcp | TUN_F_USO4 | TUN_F_USO6, tcp] {
        // SAFETY: TUNSETOFFLOAD takes its argument by value; the fd is an
        // attached tun fd.
        let rc = unsafe {
            libc::ioctl(
                fd.as_raw_fd(),
                libc::TUNSETOFFLOAD,
                offloads as libc::c_ulong,
            )
        };
        if rc == 0 {
            return Ok(());
        }
    }
    Err(io::Error::last_os_error())
}

fn tunsetiff_flags(fd: &OwnedFd, name: &str, flags: libc::c_int) -> io::Result<()> {
    // SAFETY: ifreq is plain old data; all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    // check_ifname bounded the length to IFNAMSIZ - 1, so the name keeps
    // its terminating NUL.
    for (d, s) in req.ifr_name.iter_mut().zip(name.as_bytes()) {
        *d = *s as libc::c_char;
    }
    req.ifr_ifru.ifru_flags = flags as libc::c_short;
    // SAFETY: TUNSETIFF reads and writes one ifreq, which `req` is, and the
    // fd is an open /dev/net/tun.
    let rc = unsafe {
        libc::ioctl(
            fd.as_raw_fd(),
            libc::TUNSETIFF,
            &mut req as *mut libc::ifreq,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::afpacket::testutil::{
        frame, ifname, marker, veth_pair, wait_readable, LinkGuard, RawSocket,
    };
    use pipeline::Batch;
    use std::time::{Duration, Instant};

    fn in_ip_link(name: &str) -> bool {
        let out = std::process::Command::new("ip")
            .args(["-o", "link", "show"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).contains(&format!(": {name}:"))
    }

    #[test]
    fn frames_go_both_ways_and_the_device_goes_away() {
        let name = ifname("tt", "a");
        let _guard = LinkGuard(vec![name.clone()]);
        let mut port = create(&name, false).expect("create");
        assert!(in_ip_link(&name));
        assert!(is_tap(&name));
        assert_eq!(port.status.backend, "tap");
        assert_eq!(port.status.ifindex, netdev::ifindex(&name).unwrap());
        assert_eq!(port.status.mac, netdev::mac(&name).unwrap());

        // Switch -> kernel: written frames are received on the device.
        let raw = RawSocket::bind(&name);
        assert!(port.tx.send(&frame(7, None)));
        let got = raw.recv_marked(&[7], Duration::from_secs(2));
        assert_eq!(got.first().map(|g| &g.1), Some(&frame(7, None)));

        // The same by `send_packet`: one write, its header in the headroom,
        // and the packet left as it was.
        let mut b = Batch::new();
        b.push_copy(&frame(9, None));
        let pkt = &mut b.packets_mut()[0];
        assert!(port.tx.send_packet(pkt));
        assert_eq!(pkt.data(), &frame(9, None)[..]);
        let got = raw.recv_marked(&[9], Duration::from_secs(2));
        assert_eq!(got.first().map(|g| &g.1), Some(&frame(9, None)));

        // Kernel -> switch: frames sent out of the device are read.
        raw.send(&frame(8, None));
        let rx = &mut port.rxqs[0];
        let deadline = Instant::now() + Duration::from_secs(2);
        let mut batch = Batch::new();
        let mut seen = None;
        while seen.is_none() && Instant::now() < deadline {
            wait_readable(rx.wake_fd().unwrap(), 10);
            batch.clear();
            rx.recv(&mut batch);
            seen = batch
                .packets()
                .iter()
                .find(|p| marker(p.data()) == Some(8))
                .map(|p| p.data().to_vec());
        }
        assert_eq!(seen, Some(frame(8, None)));

        drop(port);
        // Closing the fd removes the device at once, but a process another
        // test thread is spawning holds a copy of every fd from fork until
        // exec closes it: allow that moment.
        let deadline = Instant::now() + Duration::from_secs(2);
        while netdev::exists(&name) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(!netdev::exists(&name), "the device must go with the port");
        assert!(!in_ip_link(&name));
    }

    #[test]
    fn internal_ports_say_so() {
        let name = ifname("tt", "i");
        let _guard = LinkGuard(vec![name.clone()]);
        let port = create(&name, true).expect("create");
        assert_eq!(port.status.backend, "internal");
        assert_eq!(port.status.mode, "vnet-hdr");
        assert_eq!(port.status.fallback_reason, None);
    }

    #[test]
    fn bad_names_and_foreign_devices_are_refused() {
        let err = create("a-name-far-too-long0", false)
            .err()
            .expect("too long");
        assert!(err.to_string().contains("at most 15"), "{err}");

        let (v, w) = (ifname("tt", "v"), ifname("tt", "w"));
        let _links = veth_pair(&v, &w);
        let err = create(&v, false).err().expect("a veth is not a tap");
        assert!(err.to_string().contains("not a TAP"), "{err}");
        assert!(netdev::exists(&v), "the veth must be left alone");
    }
}

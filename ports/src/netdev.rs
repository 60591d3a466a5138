//! Small queries and settings on kernel network devices (ioctl on a
//! throw-away socket): index, MAC, MTU, up/down.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// Longest interface name the kernel accepts (IFNAMSIZ - 1).
pub const MAX_IFNAME: usize = libc::IFNAMSIZ - 1;

/// [`check_ifname`] for a port being opened, as the port's error.
pub(crate) fn check_port_ifname(name: &str) -> Result<(), crate::PortError> {
    check_ifname(name).map_err(|m| {
        crate::PortError::new(
            name,
            "checking the interface name",
            io::Error::new(io::ErrorKind::InvalidInput, m),
        )
    })
}

/// Checks that `name` can be a Linux interface name (the kernel's
/// `dev_valid_name`: not empty, at most [`MAX_IFNAME`] bytes, not `.` or
/// `..`, no `/`, `:` or whitespace), and that it does not start with `-`,
/// which Linux allows but which `ip`, `vswctl` and most tools would read as
/// an option. Bridge, port and container interface names are all checked
/// here.
pub fn check_ifname(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("interface name is empty".into());
    }
    if name.starts_with('-') {
        return Err(format!(
            "interface name \"{name}\" starts with '-', which would read as an option; \
             use a name that starts with a letter or digit"
        ));
    }
    if name.len() > MAX_IFNAME {
        return Err(format!(
            "interface name \"{name}\" is {} bytes long; Linux allows at most {MAX_IFNAME}",
            name.len()
        ));
    }
    if name == "." || name == ".." {
        return Err(format!("\"{name}\" is not a valid interface name"));
    }
    if let Some(c) = name
        .chars()
        .find(|c| c.is_whitespace() || *c == '/' || *c == ':' || c.is_control())
    {
        return Err(format!(
            "interface name \"{name}\" contains the character {c:?}, which Linux does not allow"
        ));
    }
    Ok(())
}

/// The interface index of `name`, or ENODEV when it does not exist.
pub fn ifindex(name: &str) -> io::Result<u32> {
    let c = cname(name)?;
    // SAFETY: `c` is a valid NUL-terminated string that outlives the call.
    let idx = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if idx == 0 {
        return Err(io::Error::from_raw_os_error(libc::ENODEV));
    }
    Ok(idx)
}

pub fn exists(name: &str) -> bool {
    ifindex(name).is_ok()
}

pub fn mtu(name: &str) -> io::Result<u32> {
    let mut req = ifreq(name)?;
    ioctl(libc::SIOCGIFMTU, &mut req)?;
    // SAFETY: SIOCGIFMTU filled the `ifru_mtu` member of the union.
    Ok(unsafe { req.ifr_ifru.ifru_mtu } as u32)
}

pub fn set_mtu(name: &str, mtu: u32) -> io::Result<()> {
    let mut req = ifreq(name)?;
    req.ifr_ifru.ifru_mtu = mtu as libc::c_int;
    ioctl(libc::SIOCSIFMTU, &mut req)
}

pub fn mac(name: &str) -> io::Result<[u8; 6]> {
    let mut req = ifreq(name)?;
    ioctl(libc::SIOCGIFHWADDR, &mut req)?;
    // SAFETY: SIOCGIFHWADDR filled the `ifru_hwaddr` member of the union.
    let sa = unsafe { req.ifr_ifru.ifru_hwaddr };
    let mut mac = [0u8; 6];
    for (m, b) in mac.iter_mut().zip(sa.sa_data.iter()) {
        *m = *b as u8;
    }
    Ok(mac)
}

/// Sets the interface's MAC address.
pub fn set_mac(name: &str, mac: [u8; 6]) -> io::Result<()> {
    let mut req = ifreq(name)?;
    // SAFETY: writing the `ifru_hwaddr` member of a zeroed union, which is
    // what SIOCSIFHWADDR reads.
    let sa = unsafe { &mut req.ifr_ifru.ifru_hwaddr };
    sa.sa_family = libc::ARPHRD_ETHER;
    for (d, b) in sa.sa_data.iter_mut().zip(mac.iter()) {
        *d = *b as libc::c_char;
    }
    ioctl(libc::SIOCSIFHWADDR, &mut req)
}

/// A locally administered unicast MAC derived from `seed` (FNV-1a), so a
/// device the switch creates keeps its MAC across restarts.
pub fn stable_mac(seed: &str) -> [u8; 6] {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in seed.bytes() {
        h = (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3);
    }
    let b = h.to_be_bytes();
    [(b[0] & 0xfc) | 0x02, b[1], b[2], b[3], b[4], b[5]]
}

/// Brings the interface administratively up (or down).
pub fn set_up(name: &str, up: bool) -> io::Result<()> {
    let mut req = ifreq(name)?;
    ioctl(libc::SIOCGIFFLAGS, &mut req)?;
    // SAFETY: SIOCGIFFLAGS filled the `ifru_flags` member of the union.
    let mut flags = unsafe { req.ifr_ifru.ifru_flags };
    if up {
        flags |= libc::IFF_UP as libc::c_short;
    } else {
        flags &= !(libc::IFF_UP as libc::c_short);
    }
    req.ifr_ifru.ifru_flags = flags;
    ioctl(libc::SIOCSIFFLAGS, &mut req)
}

/// Number of receive queues the device has (from sysfs), at least 1.
pub fn rx_queue_count(name: &str) -> usize {
    std::fs::read_dir(format!("/sys/class/net/{name}/queues"))
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| e.file_name().to_string_lossy().starts_with("rx-"))
                .count()
        })
        .unwrap_or(1)
        .max(1)
}

fn cname(name: &str) -> io::Result<CString> {
    check_ifname(name).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    CString::new(name).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

fn ifreq(name: &str) -> io::Result<libc::ifreq> {
    let c = cname(name)?;
    // SAFETY: ifreq is plain old data; all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in req.ifr_name.iter_mut().zip(c.as_bytes()) {
        *d = *s as libc::c_char;
    }
    Ok(req)
}

fn ioctl(request: libc::Ioctl, req: &mut libc::ifreq) -> io::Result<()> {
    // SAFETY: plain socket() call; the result is checked before use.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh descriptor we own.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: `req` is a valid ifreq for the duration of the call and every
    // request used in this module reads or writes only an ifreq.
    let rc = unsafe { libc::ioctl(sock.as_raw_fd(), request, req as *mut libc::ifreq) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ifname_rules() {
        assert!(check_ifname("veth0").is_ok());
        assert!(check_ifname("").is_err());
        assert!(check_ifname("abcdefghijklmnop").is_err());
        assert!(check_ifname("a b").is_err());
        assert!(check_ifname("a/b").is_err());
        assert!(check_ifname("a:b").is_err());
        assert!(check_ifname("a\tb").is_err());
        assert!(check_ifname(".").is_err());
        assert!(check_ifname("..").is_err());
        assert!(check_ifname("-x").is_err());
        assert!(check_ifname("--help").is_err());
        assert!(check_ifname("abcdefghijklmno").is_ok());
        assert!(check_ifname("a-b.c_d").is_ok());
    }

    #[test]
    fn stable_macs_are_local_unicast_and_stable() {
        let a = stable_mac("br0");
        assert_eq!(a, stable_mac("br0"));
        assert_ne!(a, stable_mac("br1"));
        assert_eq!(a[0] & 0x03, 0x02);
    }

    #[test]
    fn loopback_is_there() {
        assert_eq!(ifindex("lo").unwrap(), 1);
        assert!(ifindex("no-such-dev0").is_err());
    }
}

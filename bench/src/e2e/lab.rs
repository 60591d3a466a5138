//! The benchmark's network: namespaces A and B, each with a veth whose
//! namespace end is `eth1` and whose host end (`e2e<PID>a`, `e2e<PID>b`) is
//! what the switch under test connects. Everything is named after the
//! benchmark's pid, and removed when the [`Lab`] is dropped (also on error,
//! panic and Ctrl-C); a later run removes what a killed run left behind.
//!
//! ```text
//!  netns e2e-PID-a          host                   netns e2e-PID-b
//!  eth1 10.250.0.1  ==  e2ePIDa  [switch]  e2ePIDb  ==  eth1 10.250.0.2
//!  (trafgen, iperf3 -c,                            (nft drops UDP port 9,
//!   ping)                                           iperf3 -s)
//!  direct 10.250.1.1  ==========================  direct 10.250.1.2
//! ```
//!
//! The `direct` veth joins the namespaces with no switch at all: pings over
//! it give this machine's latency floor, for reference.

use super::cmd::{self, ip, netns_ok};
use super::sys;
use std::fs;
use std::path::{Path, PathBuf};

/// Name of the veth end inside both namespaces.
pub const DEV: &str = "eth1";
/// The veth joining the namespaces directly (both ends have this name).
pub const DIRECT: &str = "direct";
/// B's address on the direct veth (A is 10.250.1.1).
pub const DIRECT_IP_B: &str = "10.250.1.2";
/// UDP destination port the generator sends to and B's nft rule drops.
pub const UDP_PORT: u16 = 9;
const NFT_TABLE: &str = "e2e";
const NFT_COUNTER: &str = "rx";

pub struct Lab {
    pub pid: u32,
    pub ns_a: String,
    pub ns_b: String,
    /// Host ends of the veths: the switch's ports.
    pub host_a: String,
    pub host_b: String,
    pub ip_a: &'static str,
    pub ip_b: &'static str,
    pub mac_a: &'static str,
    pub mac_b: &'static str,
    /// Scratch directory: trafgen's packet file, the daemon's run directory.
    pub workdir: PathBuf,
    made_ns: Vec<String>,
    made_links: Vec<String>,
}

/// Prefix of everything this benchmark creates: `e2e<PID>...` for links,
/// `e2e-<PID>-...` for namespaces and /tmp directories.
pub const PREFIX: &str = "e2e";

impl Lab {
    /// Builds both namespaces and veths with offloads off, addresses,
    /// static neighbours and B's dropping nft rule.
    pub fn create() -> Result<Lab, String> {
        let pid = std::process::id();
        let workdir = PathBuf::from(format!("/tmp/{PREFIX}-{pid}"));
        let mut lab = Lab {
            pid,
            ns_a: format!("{PREFIX}-{pid}-a"),
            ns_b: format!("{PREFIX}-{pid}-b"),
            host_a: format!("{PREFIX}{pid}a"),
            host_b: format!("{PREFIX}{pid}b"),
            ip_a: "10.250.0.1",
            ip_b: "10.250.0.2",
            mac_a: "02:e2:e0:00:00:0a",
            mac_b: "02:e2:e0:00:00:0b",
            workdir,
            made_ns: Vec::new(),
            made_links: Vec::new(),
        };
        fs::create_dir_all(&lab.workdir)
            .map_err(|e| format!("create {}: {e}", lab.workdir.display()))?;
        let sides = [
            (lab.ns_a.clone(), lab.host_a.clone(), lab.ip_a, lab.mac_a),
            (lab.ns_b.clone(), lab.host_b.clone(), lab.ip_b, lab.mac_b),
        ];
        for (ns, host, addr, mac) in &sides {
            ip(&["netns", "add", ns])?;
            lab.made_ns.push(ns.clone());
            netns_ok(ns, "sysctl", &["-qw", "net.ipv6.conf.all.disable_ipv6=1"])?;
            netns_ok(
                ns,
                "sysctl",
                &["-qw", "net.ipv6.conf.default.disable_ipv6=1"],
            )?;
            ip(&["-n", ns, "link", "set", "lo", "up"])?;
            ip(&[
                "link", "add", host, "type", "veth", "peer", "name", DEV, "address", mac, "netns",
                ns,
            ])?;
            lab.made_links.push(host.clone());
            write_sys(&format!("/proc/sys/net/ipv6/conf/{host}/disable_ipv6"), "1")?;
            // Same frames for both switches: no checksum offload (so no
            // CHECKSUM_PARTIAL frames), no segmentation or GRO anywhere.
            offloads_off(None, host)?;
            offloads_off(Some(ns), DEV)?;
            ip(&["-n", ns, "addr", "add", &format!("{addr}/24"), "dev", DEV])?;
            ip(&["-n", ns, "link", "set", DEV, "up"])?;
            ip(&["link", "set", host, "up"])?;
        }
        // Static neighbours: no ARP during the measurements.
        for (ns, peer_ip, peer_mac) in [
            (&lab.ns_a, lab.ip_b, lab.mac_b),
            (&lab.ns_b, lab.ip_a, lab.mac_a),
        ] {
            ip(&[
                "-n",
                ns,
                "neigh",
                "replace",
                peer_ip,
                "lladdr",
                peer_mac,
                "dev",
                DEV,
                "nud",
                "permanent",
            ])?;
        }
        lab.add_direct_link()?;
        lab.install_drop_rule()?;
        lab.write_trafgen_config()?;
        Ok(lab)
    }

    /// The switchless veth between A and B (removed with the namespaces),
    /// with the same offloads off as the switched path.
    fn add_direct_link(&self) -> Result<(), String> {
        ip(&[
            "link", "add", DIRECT, "netns", &self.ns_a, "type", "veth", "peer", "name", DIRECT,
            "netns", &self.ns_b,
        ])?;
        for (ns, addr) in [(&self.ns_a, "10.250.1.1/24"), (&self.ns_b, "10.250.1.2/24")] {
            offloads_off(Some(ns), DIRECT)?;
            ip(&["-n", ns, "addr", "add", addr, "dev", DIRECT])?;
            ip(&["-n", ns, "link", "set", DIRECT, "up"])?;
        }
        Ok(())
    }

    /// B drops the generator's frames at ingress (netdev hook), before its
    /// IP stack, and counts them: the delivered rate is this counter's rate.
    fn install_drop_rule(&self) -> Result<(), String> {
        let rules = format!(
            "table netdev {NFT_TABLE} {{\n  counter {NFT_COUNTER} {{}}\n  chain c {{\n    \
             type filter hook ingress device {DEV} priority 0;\n    \
             udp dport {UDP_PORT} counter name {NFT_COUNTER} drop\n  }}\n}}\n"
        );
        let file = self.workdir.join("drop.nft");
        fs::write(&file, rules).map_err(|e| format!("write {}: {e}", file.display()))?;
        netns_ok(&self.ns_b, "nft", &["-f", &file.to_string_lossy()]).map(|_| ())
    }

    /// 64-byte frames on the wire (60 bytes + FCS): Ethernet, IPv4, UDP to
    /// port 9 and 18 bytes of padding; trafgen fills in the checksums.
    fn write_trafgen_config(&self) -> Result<(), String> {
        let cfg = format!(
            "{{\n  eth(da={}, sa={}, type=0x0800),\n  ipv4(sa={}, da={}, ttl=64, proto=17),\n  \
             udp(sp=4000, dp={UDP_PORT}),\n  fill(0x00, 18)\n}}\n",
            self.mac_b, self.mac_a, self.ip_a, self.ip_b
        );
        let file = self.trafgen_config();
        fs::write(&file, cfg).map_err(|e| format!("write {}: {e}", file.display()))
    }

    pub fn trafgen_config(&self) -> PathBuf {
        self.workdir.join("udp64.trafgen")
    }

    /// Frames B's nft rule has counted (and dropped) so far.
    pub fn delivered(&self) -> Result<u64, String> {
        let out = netns_ok(
            &self.ns_b,
            "nft",
            &["list", "counter", "netdev", NFT_TABLE, NFT_COUNTER],
        )?;
        parse_nft_packets(&out).ok_or_else(|| format!("no packet count in nft output: {out}"))
    }

    /// (tx_packets, tx_dropped) of A's `eth1`: what the generator got onto
    /// the wire, and what the veth refused because its peer's queue was full.
    pub fn sent(&self) -> Result<(u64, u64), String> {
        let base = format!("/sys/class/net/{DEV}/statistics");
        let out = netns_ok(
            &self.ns_a,
            "cat",
            &[format!("{base}/tx_packets"), format!("{base}/tx_dropped")],
        )?;
        let mut n = out.split_whitespace().map(|x| x.parse::<u64>());
        match (n.next(), n.next()) {
            (Some(Ok(tx)), Some(Ok(drop))) => Ok((tx, drop)),
            _ => Err(format!(
                "unexpected counters of {DEV} in {}: {out}",
                self.ns_a
            )),
        }
    }

    /// Sets Receive Packet Steering on the host ends' receive queues (hex
    /// CPU mask; "0" turns it off). These are the queues the kernel bridge's
    /// input runs from: A's frames enter the bridge on `host_a`, B's replies
    /// and ACKs on `host_b`. The namespace ends need nothing: the bridge's
    /// output to them is handed to the backlog of the CPU it runs on.
    pub fn set_rps(&self, mask: &str) -> Result<(), String> {
        for host in [&self.host_a, &self.host_b] {
            write_sys(&format!("/sys/class/net/{host}/queues/rx-0/rps_cpus"), mask)?;
        }
        Ok(())
    }
}

/// The number after `packets` in `nft list counter` output.
fn parse_nft_packets(out: &str) -> Option<u64> {
    let mut words = out.split_whitespace();
    while let Some(w) = words.next() {
        if w == "packets" {
            return words.next()?.parse().ok();
        }
    }
    None
}

fn offloads_off(ns: Option<&str>, dev: &str) -> Result<(), String> {
    let args = [
        "-K", dev, "tx", "off", "tso", "off", "gso", "off", "gro", "off",
    ];
    match ns {
        Some(ns) => netns_ok(ns, "ethtool", &args).map(|_| ()),
        None => cmd::run_ok("ethtool", &args).map(|_| ()),
    }
}

pub fn write_sys(path: &str, value: &str) -> Result<(), String> {
    fs::write(path, value).map_err(|e| format!("write {value} to {path}: {e}"))
}

impl Drop for Lab {
    fn drop(&mut self) {
        // Deleting a namespace deletes its veth end, and with it the host end.
        for ns in self.made_ns.drain(..).rev() {
            cmd::ip_cleanup(&["netns", "del", &ns]);
        }
        for link in self.made_links.drain(..) {
            if Path::new("/sys/class/net").join(&link).exists() {
                cmd::ip_cleanup(&["link", "del", &link]);
            }
        }
        let _ = fs::remove_dir_all(&self.workdir);
    }
}

/// The pid in a name made by an earlier run (`e2e-PID-a`, `e2ePIDb`,
/// `e2e-PID`), if that run is no longer alive.
fn dead_owner(name: &str) -> Option<u32> {
    let rest = name.strip_prefix(PREFIX)?.trim_start_matches('-');
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let pid: u32 = digits.parse().ok().filter(|&p| p > 0)?;
    let tail = &rest[digits.len()..];
    if !matches!(tail, "" | "a" | "b" | "k" | "v" | "-a" | "-b") || pid == std::process::id() {
        return None;
    }
    let comm = fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    (comm.trim() != "e2e").then_some(pid)
}

/// Removes what an earlier run that was killed (SIGKILL, power loss) left:
/// its daemon, namespaces, links and scratch directory. Only names of this
/// benchmark's pattern whose owning pid is gone are touched.
pub fn remove_leftovers() {
    if let Ok(dir) = fs::read_dir("/tmp") {
        for e in dir.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            // Only directories that look like ours (a packet file or a run
            // directory inside), not any /tmp/e2e-NUMBER.
            let ours = e.path().join("udp64.trafgen").exists() || e.path().join("run").exists();
            if dead_owner(&name).is_none() || !ours {
                continue;
            }
            let pidfile = e.path().join("run").join("vswitchd.pid");
            if let Some(pid) = fs::read_to_string(&pidfile)
                .ok()
                .and_then(|s| s.trim().parse::<u32>().ok())
            {
                let comm = fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
                if comm.trim() == "vswitchd" {
                    eprintln!("removing leftover vswitchd (pid {pid}) of an earlier run");
                    sys::terminate(pid, std::time::Duration::from_secs(5));
                }
            }
            let _ = fs::remove_dir_all(e.path());
        }
    }
    if let Ok(dir) = fs::read_dir("/var/run/netns") {
        for e in dir.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if dead_owner(&name).is_some() {
                eprintln!("removing leftover namespace {name} of an earlier run");
                cmd::ip_cleanup(&["netns", "del", &name]);
            }
        }
    }
    if let Ok(dir) = fs::read_dir("/sys/class/net") {
        for e in dir.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if dead_owner(&name).is_some() {
                eprintln!("removing leftover interface {name} of an earlier run");
                cmd::ip_cleanup(&["link", "del", &name]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nft_counter() {
        let out = "table netdev e2e {\n\tcounter rx {\n\t\tpackets 790554 bytes 36365484\n\t}\n}\n";
        assert_eq!(parse_nft_packets(out), Some(790_554));
        assert_eq!(parse_nft_packets("table netdev e2e {}"), None);
    }

    #[test]
    fn leftover_names() {
        // pid 0 never runs a benchmark; names of other patterns are ignored.
        assert_eq!(dead_owner("e2e-0-a"), None);
        assert_eq!(dead_owner("eth0"), None);
        assert_eq!(dead_owner("e2e4194999x"), None);
        assert_eq!(dead_owner("e2e4194999a"), Some(4_194_999));
        assert_eq!(dead_owner("e2e-4194999"), Some(4_194_999));
        assert_eq!(dead_owner("e2e-4194999-b"), Some(4_194_999));
    }
}

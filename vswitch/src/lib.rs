//! vswitchd: the daemon's library (the binary is `src/main.rs`).
//!
//! - [`config`] and [`db`]: the configuration value and its atomic storage.
//! - [`commands`]: vswctl commands as transactions over the configuration.
//! - [`runtime`]: opened ports, MAC tables, poll threads, kept in step.
//! - [`datapath`]: snapshots, forwarding, poll-mode threads.
//! - [`control`]: the control socket loop.
//! - [`attach`]: container attachment (veth pairs into network namespaces).
//! - [`nat`]: gateways, the uplink, published ports and conntrack settings.

pub mod attach;
pub mod capture;
pub mod cluster;
pub mod commands;
pub mod config;
pub mod control;
pub mod daemon;
pub mod datapath;
pub mod db;
pub mod metrics;
pub mod mirror;
pub mod nat;
pub mod rstp;
pub mod runtime;
pub mod trace;
pub mod tunnel;

/// Default run directory (control socket and pid file).
pub const DEFAULT_RUNDIR: &str = "/run/vswitch";
/// Default configuration database.
pub const DEFAULT_DB: &str = "/var/lib/vswitch/conf.db";
/// Name of the control socket inside the run directory.
pub const SOCKET_NAME: &str = "vswitchd.sock";
pub const PIDFILE_NAME: &str = "vswitchd.pid";

/// Parses a CPU list such as `1`, `0,1` or `0-3`.
pub fn parse_cpu_list(s: &str) -> Result<Vec<usize>, String> {
    let mut cpus = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let bad =
            || format!("\"{part}\" in CPU list \"{s}\" is not a CPU number or range like 0-3");
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (usize, usize) = (
                    a.trim().parse().map_err(|_| bad())?,
                    b.trim().parse().map_err(|_| bad())?,
                );
                if a > b {
                    return Err(bad());
                }
                cpus.extend(a..=b);
            }
            None => cpus.push(part.parse().map_err(|_| bad())?),
        }
    }
    if cpus.is_empty() {
        return Err(format!("CPU list \"{s}\" is empty"));
    }
    cpus.dedup();
    Ok(cpus)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("1").unwrap(), vec![1]);
        assert_eq!(parse_cpu_list("0,1").unwrap(), vec![0, 1]);
        assert_eq!(parse_cpu_list("0-2").unwrap(), vec![0, 1, 2]);
        assert!(parse_cpu_list("x").is_err());
        assert!(parse_cpu_list("3-1").is_err());
        assert!(parse_cpu_list("").is_err());
    }
}

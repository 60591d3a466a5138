//! ICMP echo with the system `ping`, run inside the source namespace.

use std::net::Ipv4Addr;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::cmd::{run, Output};
use crate::host::Host;

/// What one `ping` run saw.
#[derive(Debug, Clone)]
pub struct PingReport {
    pub transmitted: u32,
    pub received: u32,
    pub output: Output,
}

impl PingReport {
    /// Every echo request was answered.
    pub fn all_answered(&self) -> bool {
        self.transmitted > 0 && self.received == self.transmitted
    }
}

/// Sends `count` echo requests from `from` to `to` (0.2 s apart, 1 s wait
/// for the last reply) and reports how many were answered.
pub fn ping_report(from: &Host, to: Ipv4Addr, count: u32) -> PingReport {
    let mut c = Command::new("ip");
    let count_s = count.to_string();
    let to_s = to.to_string();
    c.args([
        "netns",
        "exec",
        from.ns(),
        "ping",
        "-n",
        "-q",
        "-c",
        &count_s,
        "-W",
        "1",
        "-i",
        "0.2",
        &to_s,
    ]);
    let limit = Duration::from_millis(2_000 + 400 * u64::from(count));
    let output = run(c, limit);
    let (transmitted, received) = parse_summary(&output.stdout).unwrap_or((count, 0));
    PingReport {
        transmitted,
        received,
        output,
    }
}

/// True when every one of `count` echo requests from `from` to `to` was
/// answered.
pub fn ping(from: &Host, to: Ipv4Addr, count: u32) -> bool {
    ping_report(from, to, count).all_answered()
}

/// Pings every ordered pair of `hosts` with `count` echo requests and
/// panics, with `ping`'s output, on the first pair not fully answered.
#[track_caller]
pub fn assert_ping_mesh(hosts: &[Host], count: u32) {
    for a in hosts {
        for b in hosts {
            if a.ip() == b.ip() {
                continue;
            }
            let r = ping_report(a, b.ip(), count);
            assert!(
                r.all_answered(),
                "ping {} -> {}: {} of {} answered\n{}",
                a.describe(),
                b.describe(),
                r.received,
                r.transmitted,
                r.output
            );
        }
    }
}

/// Pings once at a time until a reply comes or `timeout` passes; for
/// waiting until a path is up. Returns the time it took on success.
pub fn wait_ping(from: &Host, to: Ipv4Addr, timeout: Duration) -> Option<Duration> {
    let start = Instant::now();
    loop {
        if ping_report(from, to, 1).received == 1 {
            return Some(start.elapsed());
        }
        if start.elapsed() >= timeout {
            return None;
        }
        // ping can fail at once (e.g. no route yet): do not spin.
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Parses "N packets transmitted, M received" from ping's summary.
fn parse_summary(stdout: &str) -> Option<(u32, u32)> {
    let line = stdout.lines().find(|l| l.contains("packets transmitted"))?;
    let mut nums = line
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<u32>());
    let tx = nums.next()?.ok()?;
    let rx = nums.next()?.ok()?;
    Some((tx, rx))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary() {
        let s = "PING 10.77.0.2 (10.77.0.2) 56(84) bytes of data.\n\n--- 10.77.0.2 ping statistics ---\n5 packets transmitted, 3 received, 40% packet loss, time 810ms\n";
        assert_eq!(parse_summary(s), Some((5, 3)));
        let s = "3 packets transmitted, 0 received, +3 errors, 100% packet loss, time 2040ms";
        assert_eq!(parse_summary(s), Some((3, 0)));
        assert_eq!(parse_summary("connect: Network is unreachable"), None);
    }
}

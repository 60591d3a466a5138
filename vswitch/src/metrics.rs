//! `vswitchd --metrics ADDR:PORT`: OpenMetrics (Prometheus) text over HTTP,
//! off by default. The `metrics` command renders the text on the control
//! thread, like any other command; the HTTP thread asks for it over the
//! daemon's own control socket, so it touches no state of its own and
//! nothing of the data path.

use crate::commands::Output;
use crate::runtime::Runtime;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;

pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Label values escaped as OpenMetrics wants.
fn esc(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The `metrics` command: every counter the switch keeps, as OpenMetrics.
pub fn render(cfg: &crate::config::Config, rt: &Runtime) -> Output {
    let mut t = String::new();
    let ports: Vec<(String, String)> = cfg
        .bridges
        .iter()
        .flat_map(|(b, br)| {
            std::iter::once((b.clone(), b.clone()))
                .chain(br.ports.keys().map(move |p| (b.clone(), p.clone())))
        })
        .chain(cfg.uplink.iter().map(|u| (String::new(), u.port.clone())))
        .collect();
    let counters: Vec<_> = ports
        .iter()
        .filter_map(|(b, p)| Some((b, p, rt.counters(p)?)))
        .collect();
    type Get = fn(&crate::datapath::stats::PortCounters) -> u64;
    let families: [(&str, &str, Get); 4] = [
        ("rx_packets", "Frames received", |c| c.rx_packets),
        ("rx_bytes", "Bytes received", |c| c.rx_bytes),
        ("tx_packets", "Frames sent", |c| c.tx_packets),
        ("tx_bytes", "Bytes sent", |c| c.tx_bytes),
    ];
    for (name, help, get) in families {
        let _ = writeln!(
            t,
            "# TYPE vswitch_port_{name} counter\n# HELP vswitch_port_{name} {help}."
        );
        for (b, p, c) in &counters {
            let _ = writeln!(
                t,
                "vswitch_port_{name}_total{{bridge=\"{}\",port=\"{}\"}} {}",
                esc(b),
                esc(p),
                get(c)
            );
        }
    }
    let _ = writeln!(
        t,
        "# TYPE vswitch_port_drops counter\n# HELP vswitch_port_drops Frames dropped, by reason."
    );
    for (b, p, c) in &counters {
        for (reason, n) in &c.drops {
            let _ = writeln!(
                t,
                "vswitch_port_drops_total{{bridge=\"{}\",port=\"{}\",reason=\"{}\"}} {n}",
                esc(b),
                esc(p),
                esc(reason)
            );
        }
    }
    let reports = rt.pmd_reports();
    for (name, help) in [("busy", "busy"), ("idle", "idle")] {
        let _ = writeln!(
            t,
            "# TYPE vswitch_pmd_{name}_cycles counter\n# HELP vswitch_pmd_{name}_cycles Poll-thread cycles spent {help}."
        );
        for r in &reports {
            let v = if name == "busy" {
                r.busy_cycles
            } else {
                r.idle_cycles
            };
            let _ = writeln!(
                t,
                "vswitch_pmd_{name}_cycles_total{{pmd=\"{}\"}} {v}",
                r.pmd
            );
        }
    }
    let _ = writeln!(t, "# TYPE vswitch_mac_table_entries gauge\n# HELP vswitch_mac_table_entries Learned and static MAC entries.");
    for b in cfg.bridges.keys() {
        let _ = writeln!(
            t,
            "vswitch_mac_table_entries{{bridge=\"{}\"}} {}",
            esc(b),
            rt.fdb(b).len()
        );
    }
    let (ct, _, _) = rt.ct_stats();
    let _ = writeln!(t, "# TYPE vswitch_conntrack_entries gauge\n# HELP vswitch_conntrack_entries Tracked connections.");
    let _ = writeln!(t, "vswitch_conntrack_entries {}", ct.entries);
    t.push_str("# EOF\n");
    Output {
        json: serde_json::Value::String(t.clone()),
        text: t,
    }
}

/// Serves `GET /metrics` on `listener` until the process ends, one
/// request at a time (a scraper every few seconds), each answered from the
/// control socket `sock`.
pub fn serve(listener: TcpListener, sock: PathBuf) {
    for conn in listener.incoming().flatten() {
        if let Err(e) = answer(conn, &sock) {
            log::debug!("metrics: {e}");
        }
    }
}

fn answer(conn: TcpStream, sock: &std::path::Path) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(5)))?;
    conn.set_write_timeout(Some(Duration::from_secs(5)))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut first = String::new();
    reader.read_line(&mut first)?;
    // The rest of the head, up to the blank line.
    let mut line = String::new();
    while reader.read_line(&mut line)? > 2 {
        line.clear();
    }
    let path = first.split_whitespace().nth(1).unwrap_or("");
    let mut conn = conn;
    if !first.starts_with("GET ") || (path != "/metrics" && path != "/") {
        return conn.write_all(
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        );
    }
    let body = fetch(sock)?;
    write!(
        conn,
        "HTTP/1.1 200 OK\r\nContent-Type: {CONTENT_TYPE}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    conn.write_all(body.as_bytes())
}

/// The `metrics` command's text, from the control thread.
fn fetch(sock: &std::path::Path) -> std::io::Result<String> {
    let mut s = UnixStream::connect(sock)?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.write_all(b"{\"commands\":[{\"args\":[\"metrics\"]}]}\n")?;
    let mut resp = String::new();
    BufReader::new(&mut s).take(64 << 20).read_line(&mut resp)?;
    let v: serde_json::Value = serde_json::from_str(&resp).map_err(std::io::Error::other)?;
    Ok(v["results"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_string())
}

//! `list-attachments [BRIDGE]`: what is attached where, as a text table and
//! as a JSON list of objects.

use super::record::{self, key, Attachment};
use crate::commands::{Failure, Output};
use crate::config::Config;
use serde_json::Value;

const COLUMNS: [&str; 8] = [
    "BRIDGE",
    "PORT",
    "CONTAINER",
    "IFNAME",
    "NETNS",
    "IP",
    "MAC",
    "TAG",
];

pub(super) fn list(cfg: &Config, args: &[String]) -> Result<Output, Failure> {
    let bridge = match args {
        [] => None,
        [b] if b.starts_with("--") => {
            return Err(format!(
                "list-attachments: unknown option \"{b}\" (options such as --format go before the command: vswctl --format json list-attachments)"
            )
            .into())
        }
        [b] => Some(b.as_str()),
        _ => {
            return Err(format!(
                "'list-attachments' takes 0 to 1 argument(s), got {} (usage: list-attachments [BRIDGE])",
                args.len()
            )
            .into())
        }
    };
    if let Some(b) = bridge {
        if !cfg.bridges.contains_key(b) {
            return Err(format!("no bridge named {b}").into());
        }
    }
    let all = record::attachments(cfg, bridge);
    Ok(Output {
        text: table(&all),
        json: Value::Array(all.iter().map(Attachment::to_json).collect()),
    })
}

fn table(all: &[Attachment]) -> String {
    let rows: Vec<[String; 8]> = all
        .iter()
        .map(|a| {
            let v = |k: &str| a.get(k).unwrap_or("-").to_string();
            [
                a.bridge.to_string(),
                a.port.to_string(),
                a.container().to_string(),
                a.ifname().to_string(),
                v(key::NETNS),
                v(key::IP),
                v(key::MAC),
                a.p.tag.map_or_else(|| "-".to_string(), |t| t.to_string()),
            ]
        })
        .collect();
    let mut widths = COLUMNS.map(str::len);
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: &[&str]| -> String {
        let mut s = String::new();
        for (i, (c, w)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}  "));
            }
        }
        s.push('\n');
        s
    };
    let mut out = line(&COLUMNS);
    for r in &rows {
        let cells: Vec<&str> = r.iter().map(String::as_str).collect();
        out.push_str(&line(&cells));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Bridge, Port};

    fn cfg() -> Config {
        let mut c = Config::default();
        let mut b = Bridge::default();
        let mut p = Port {
            tag: Some(100),
            ..Port::default()
        };
        for (k, v) in [
            (key::MARK, "true"),
            (key::CONTAINER, "web"),
            (key::IFNAME, "eth1"),
            (key::NETNS, "/var/run/netns/web"),
            (key::IP, "10.0.0.2/24"),
            (key::MAC, "02:00:00:00:00:01"),
        ] {
            p.external_ids.insert(k.into(), v.into());
        }
        b.ports.insert("vsw0123456789ab".into(), p);
        b.ports.insert("plain".into(), Port::default());
        c.bridges.insert("br0".into(), b);
        c.bridges.insert("br1".into(), Bridge::default());
        c
    }

    #[test]
    fn text_and_json() {
        let c = cfg();
        let o = list(&c, &[]).unwrap();
        let lines: Vec<&str> = o.text.lines().collect();
        assert_eq!(lines.len(), 2, "{}", o.text);
        assert!(lines[0].starts_with("BRIDGE  PORT"), "{}", o.text);
        assert!(
            lines[1].starts_with("br0     vsw0123456789ab  web"),
            "{}",
            o.text
        );
        assert!(lines[1].ends_with("02:00:00:00:00:01  100"), "{}", o.text);
        let j = &o.json[0];
        assert_eq!(j["bridge"], "br0");
        assert_eq!(j["port"], "vsw0123456789ab");
        assert_eq!(j["tag"], 100);
        assert_eq!(j["ip"], "10.0.0.2/24");
        assert_eq!(o.json.as_array().map(Vec::len), Some(1));
        let o = list(&c, &["br1".into()]).unwrap();
        assert_eq!(o.json, Value::Array(vec![]));
        assert!(list(&c, &["nobr".into()])
            .unwrap_err()
            .message
            .contains("no bridge named nobr"));
        assert!(list(&c, &["--format".into()])
            .unwrap_err()
            .message
            .contains("before the command"));
    }
}

//! Typed views of `vswctl --format json` outputs, parsed with messages
//! that show the JSON when a field is missing or has the wrong type.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

/// One row of `fdb/show BR`.
#[derive(Debug, Clone, PartialEq)]
pub struct FdbEntry {
    pub port: String,
    pub vlan: u64,
    /// Lowercase "aa:bb:cc:dd:ee:ff".
    pub mac: String,
    pub age: u64,
}

/// One row of `dump-ports BR [PORT]`.
#[derive(Debug, Clone, PartialEq)]
pub struct PortStats {
    pub port: String,
    pub rx_packets: u64,
    pub rx_bytes: u64,
    pub tx_packets: u64,
    pub tx_bytes: u64,
    pub rx_dropped: u64,
    pub tx_dropped: u64,
    pub drops: BTreeMap<String, u64>,
}

impl PortStats {
    /// Drops counted for `reason` (0 when the reason is not listed).
    pub fn drop_count(&self, reason: &str) -> u64 {
        self.drops.get(reason).copied().unwrap_or(0)
    }
}

fn field<'a>(v: &'a Value, key: &str) -> &'a Value {
    v.get(key)
        .unwrap_or_else(|| panic!("field \"{key}\" missing in vswctl JSON: {v}"))
}

fn str_field(v: &Value, key: &str) -> String {
    field(v, key)
        .as_str()
        .unwrap_or_else(|| panic!("field \"{key}\" is not a string in vswctl JSON: {v}"))
        .to_string()
}

fn u64_field(v: &Value, key: &str) -> u64 {
    field(v, key)
        .as_u64()
        .unwrap_or_else(|| panic!("field \"{key}\" is not a non-negative integer in: {v}"))
}

fn array(v: &Value) -> &Vec<Value> {
    v.as_array()
        .unwrap_or_else(|| panic!("expected a JSON array from vswctl, got: {v}"))
}

/// Parses `fdb/show` output.
pub fn fdb_entries(v: &Value) -> Vec<FdbEntry> {
    array(v)
        .iter()
        .map(|e| FdbEntry {
            port: str_field(e, "port"),
            vlan: u64_field(e, "vlan"),
            mac: str_field(e, "mac").to_ascii_lowercase(),
            age: u64_field(e, "age"),
        })
        .collect()
}

/// Parses `dump-ports` output.
pub fn port_stats(v: &Value) -> Vec<PortStats> {
    array(v)
        .iter()
        .map(|p| {
            let drops = match p.get("drops") {
                None | Some(Value::Null) => BTreeMap::new(),
                Some(Value::Object(m)) => m
                    .iter()
                    .map(|(k, n)| {
                        let n = n.as_u64().unwrap_or_else(|| {
                            panic!("drop counter \"{k}\" is not an integer in: {p}")
                        });
                        (k.clone(), n)
                    })
                    .collect(),
                Some(other) => panic!("\"drops\" is not an object: {other}"),
            };
            PortStats {
                port: str_field(p, "port"),
                rx_packets: u64_field(p, "rx_packets"),
                rx_bytes: u64_field(p, "rx_bytes"),
                tx_packets: u64_field(p, "tx_packets"),
                tx_bytes: u64_field(p, "tx_bytes"),
                rx_dropped: u64_field(p, "rx_dropped"),
                tx_dropped: u64_field(p, "tx_dropped"),
                drops,
            }
        })
        .collect()
}

/// Parses a JSON array of strings (`list-br`, `list-ports`).
pub fn string_list(v: &Value) -> Vec<String> {
    array(v)
        .iter()
        .map(|s| {
            s.as_str()
                .unwrap_or_else(|| panic!("expected strings in: {v}"))
                .to_string()
        })
        .collect()
}

/// The bridges of a `show` output.
pub fn show_bridges(show: &Value) -> &Vec<Value> {
    array(field(show, "bridges"))
}

/// The `show` entry of port `name`, on whichever bridge.
pub fn show_port<'a>(show: &'a Value, name: &str) -> Option<&'a Value> {
    show_bridges(show)
        .iter()
        .flat_map(|b| {
            b.get("ports")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
        })
        .find(|p| p.get("name").and_then(Value::as_str) == Some(name))
}

/// The `error` text of port `name` in `show` (None when null or absent).
pub fn port_error(show: &Value, name: &str) -> Option<String> {
    show_port(show, name)?
        .get("error")
        .and_then(Value::as_str)
        .map(str::to_string)
}

/// Bridge name -> port names, from `show`: the configuration shape.
pub fn topology(show: &Value) -> BTreeMap<String, BTreeSet<String>> {
    show_bridges(show)
        .iter()
        .map(|b| {
            let ports = b
                .get("ports")
                .and_then(Value::as_array)
                .map(|ps| {
                    ps.iter()
                        .filter_map(|p| p.get("name").and_then(Value::as_str))
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default();
            (str_field(b, "name"), ports)
        })
        .collect()
}

/// Where two JSON values differ, one line per differing leaf:
/// `path: before -> after` (paths like `bridges[0].ports[1].mac`).
pub fn json_diff(before: &Value, after: &Value) -> Vec<String> {
    let mut out = Vec::new();
    diff_into("", before, after, &mut out);
    out
}

fn diff_into(path: &str, a: &Value, b: &Value, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                match (x.get(k), y.get(k)) {
                    (Some(u), Some(v)) => diff_into(&p, u, v, out),
                    (u, v) => out.push(format!("{p}: {} -> {}", show(u), show(v))),
                }
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            for i in 0..x.len().max(y.len()) {
                let p = format!("{path}[{i}]");
                match (x.get(i), y.get(i)) {
                    (Some(u), Some(v)) => diff_into(&p, u, v, out),
                    (u, v) => out.push(format!("{p}: {} -> {}", show(u), show(v))),
                }
            }
        }
        _ if a != b => out.push(format!("{path}: {a} -> {b}")),
        _ => {}
    }
}

fn show(v: Option<&Value>) -> String {
    v.map_or_else(|| "(absent)".to_string(), Value::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_documented_shapes() {
        let fdb = json!([{"port":"p1","vlan":0,"mac":"AA:bb:cc:dd:ee:ff","age":3}]);
        assert_eq!(
            fdb_entries(&fdb),
            vec![FdbEntry {
                port: "p1".into(),
                vlan: 0,
                mac: "aa:bb:cc:dd:ee:ff".into(),
                age: 3
            }]
        );
        let ports = json!([{"port":"p1","rx_packets":1,"rx_bytes":2,"tx_packets":3,
            "tx_bytes":4,"rx_dropped":5,"tx_dropped":6,"drops":{"runt":7}}]);
        let s = &port_stats(&ports)[0];
        assert_eq!(s.drop_count("runt"), 7);
        assert_eq!(s.drop_count("multicast-source"), 0);
        let show = json!({"bridges":[{"name":"br0","other_config":{},"ports":[
            {"name":"p1","type":"afxdp","tag":null,"backend":"afxdp","mode":"native","error":null},
            {"name":"p2","type":"afxdp","tag":null,"error":"could not open network device p2"}]}]});
        assert_eq!(port_error(&show, "p1"), None);
        assert!(port_error(&show, "p2").is_some());
        assert!(show_port(&show, "p3").is_none());
        let t = topology(&show);
        assert_eq!(t["br0"].len(), 2);
        assert_eq!(string_list(&json!(["a", "b"])), vec!["a", "b"]);
    }

    #[test]
    fn diff_names_paths() {
        let a = json!({"b":[{"n":"x","m":1}],"k":true});
        let b = json!({"b":[{"n":"x","m":2},{"n":"y"}]});
        assert_eq!(
            json_diff(&a, &b),
            vec![
                "b[0].m: 1 -> 2".to_string(),
                "b[1]: (absent) -> {\"n\":\"y\"}".to_string(),
                "k: true -> (absent)".to_string(),
            ]
        );
        assert!(json_diff(&a, &a).is_empty());
    }
}

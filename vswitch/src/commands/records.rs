//! `list TABLE [RECORD...]` and `find TABLE [COLUMN[:KEY]=VALUE...]`, as
//! in ovs-vsctl: whole records of the bridge, port or interface table
//! (a port and its interface are one record here), printed in OVS's list
//! format, `name` first. `!=` finds the records that differ. Mirrors are
//! records of their own (ports by name); a bridge's `mirrors` holds names.

use super::show::ovs_value;
use super::{Failure, Output};
use crate::config::Config;
use serde_json::{Map, Value};

/// Every record of `table` (by name), or an error naming the tables known.
fn records(cfg: &Config, table: &str) -> Result<Vec<Map<String, Value>>, Failure> {
    let named = |name: &str, v: Value| -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("name".into(), Value::String(name.into()));
        if let Value::Object(o) = v {
            m.extend(o);
        }
        m
    };
    let mut out = Vec::new();
    match table.to_ascii_lowercase().as_str() {
        "bridge" => {
            for (name, b) in &cfg.bridges {
                let mut v = serde_json::to_value(b).map_err(|e| e.to_string())?;
                // The ports column holds names, as OVS's holds references.
                v["ports"] = b.ports.keys().cloned().collect::<Vec<_>>().into();
                v["mirrors"] = b.mirrors.keys().cloned().collect::<Vec<_>>().into();
                out.push(named(name, v));
            }
        }
        "port" | "interface" => {
            for b in cfg.bridges.values() {
                for (name, p) in &b.ports {
                    out.push(named(
                        name,
                        serde_json::to_value(p).map_err(|e| e.to_string())?,
                    ));
                }
            }
        }
        "mirror" => {
            for b in cfg.bridges.values() {
                for (name, m) in &b.mirrors {
                    out.push(named(
                        name,
                        serde_json::json!({
                            "select_all": m.select_all,
                            "select_src_port": m.select_src_port,
                            "select_dst_port": m.select_dst_port,
                            "select_vlan": m.select_vlan,
                            "output_port": m.output_port,
                            "output_vlan": m.output_vlan,
                        }),
                    ));
                }
            }
        }
        other => {
            return Err(format!(
                "unknown table \"{other}\" (known: bridge, port, interface, mirror)"
            )
            .into())
        }
    }
    Ok(out)
}

/// A value as a condition compares it: strings bare, sets and maps as
/// their elements joined by commas.
fn bare(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Array(a) => a.iter().map(bare).collect::<Vec<_>>().join(","),
        Value::Object(m) => m
            .iter()
            .map(|(k, v)| format!("{k}={}", bare(v)))
            .collect::<Vec<_>>()
            .join(","),
        other => other.to_string(),
    }
}

/// One `COLUMN[:KEY]=VALUE` (or `!=`) condition.
struct Cond {
    column: String,
    key: Option<String>,
    value: String,
    negate: bool,
}

impl Cond {
    fn parse(s: &str) -> Result<Cond, String> {
        let (lhs, value, negate) = match s.split_once("!=") {
            Some((l, v)) => (l, v, true),
            None => match s.split_once('=') {
                Some((l, v)) => (l, v, false),
                None => {
                    return Err(format!(
                        "\"{s}\" is not a condition: expected COLUMN=VALUE, COLUMN:KEY=VALUE or COLUMN!=VALUE"
                    ))
                }
            },
        };
        let (column, key) = match lhs.split_once(':') {
            Some((c, k)) => (c, Some(k.to_string())),
            None => (lhs, None),
        };
        Ok(Cond {
            column: column.replace('-', "_"),
            key,
            value: value.trim_matches('"').to_string(),
            negate,
        })
    }

    fn holds(&self, r: &Map<String, Value>, table: &str) -> Result<bool, String> {
        let v = r
            .get(&self.column)
            .ok_or_else(|| format!("{table} has no column named \"{}\"", self.column))?;
        let v = match &self.key {
            Some(k) => v.get(k).map(bare),
            None => Some(bare(v)),
        };
        Ok((v.as_deref() == Some(self.value.as_str())) != self.negate)
    }
}

/// OVS's list format: `column : value` lines, a blank line between records.
fn list_text(records: &[Map<String, Value>]) -> String {
    let blocks: Vec<String> = records
        .iter()
        .map(|r| {
            let name = r.get_key_value("name");
            name.into_iter()
                .chain(r.iter().filter(|(c, _)| *c != "name"))
                .map(|(c, v)| format!("{c:<20}: {}\n", ovs_value(v)))
                .collect()
        })
        .collect();
    blocks.join("\n")
}

fn output(records: Vec<Map<String, Value>>) -> Output {
    Output {
        text: list_text(&records),
        json: Value::Array(records.into_iter().map(Value::Object).collect()),
    }
}

/// `list TABLE [RECORD...]`.
pub fn list(cfg: &Config, table: &str, names: &[String]) -> Result<Output, Failure> {
    let all = records(cfg, table)?;
    if names.is_empty() {
        return Ok(output(all));
    }
    let mut out = Vec::new();
    for n in names {
        let r = all
            .iter()
            .find(|r| r.get("name").and_then(Value::as_str) == Some(n.as_str()))
            .ok_or_else(|| format!("no row \"{n}\" in table {table}"))?;
        out.push(r.clone());
    }
    Ok(output(out))
}

/// `find TABLE [CONDITION...]`: the records for which every condition holds.
pub fn find(cfg: &Config, table: &str, conds: &[String]) -> Result<Output, Failure> {
    let conds: Vec<Cond> = conds
        .iter()
        .map(|c| Cond::parse(c))
        .collect::<Result<_, _>>()?;
    let mut out = Vec::new();
    for r in records(cfg, table)? {
        let mut all = true;
        for c in &conds {
            all &= c.holds(&r, table)?;
        }
        if all {
            out.push(r);
        }
    }
    Ok(output(out))
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
        p.external_ids.insert("container_id".into(), "web".into());
        b.ports.insert("veth1".into(), p);
        b.ports.insert("veth2".into(), Port::default());
        c.bridges.insert("br0".into(), b);
        c
    }

    #[test]
    fn find_matches_columns_and_map_keys() {
        let c = cfg();
        let names = |o: Output| -> Vec<String> {
            o.json
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["name"].as_str().unwrap().to_string())
                .collect()
        };
        let args = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            names(find(&c, "Interface", &args(&["external_ids:container_id=web"])).unwrap()),
            ["veth1"]
        );
        assert_eq!(
            names(find(&c, "port", &args(&["tag=100"])).unwrap()),
            ["veth1"]
        );
        assert_eq!(
            names(find(&c, "port", &args(&["tag!=100"])).unwrap()),
            ["veth2"]
        );
        assert_eq!(names(find(&c, "port", &[]).unwrap()).len(), 2);
        assert!(find(&c, "port", &args(&["color=red"])).is_err());
        assert!(find(&c, "port", &args(&["tag"])).is_err());
        assert!(find(&c, "flow", &[]).is_err());
        let l = list(&c, "bridge", &args(&["br0"])).unwrap();
        assert_eq!(l.json[0]["ports"], serde_json::json!(["veth1", "veth2"]));
        assert!(
            l.text.starts_with("name                : br0\n"),
            "{}",
            l.text
        );
        assert!(list(&c, "bridge", &args(&["nope"])).is_err());
        let mut c = cfg();
        let m = crate::config::Mirror {
            select_src_port: vec!["veth1".into()],
            output_port: Some("veth2".into()),
            ..Default::default()
        };
        if let Some(b) = c.bridges.get_mut("br0") {
            b.mirrors.insert("m0".into(), m);
        }
        let l = find(&c, "mirror", &args(&["output_port=veth2"])).unwrap();
        assert_eq!(names(l), ["m0"]);
        let l = list(&c, "bridge", &[]).unwrap();
        assert_eq!(l.json[0]["mirrors"], serde_json::json!(["m0"]));
    }
}

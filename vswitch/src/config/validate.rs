//! Checking a stored configuration before the daemon uses it: its shape
//! (the top-level keys, the fields of each bridge and port), its schema
//! version, and every value, with the per-column rules the commands use
//! (`commands::columns`), so a value is refused on load exactly when a
//! command would refuse to set it. An error names the place in the file,
//! as `bridges.br0.ports.p1.tag: 5000 is not a VLAN id (0 to 4095)`.
//!
//! Schema versions: [`SCHEMA`] is the current one, written on every store
//! under the top-level key `schema`. A file without it that has `bridges`
//! was written before versions were kept; it has the shape of version 1 and
//! loads as such. A newer version is refused: this vswitchd would drop what
//! it does not know, and its next store would lose it.

use super::{Bridge, Config, Port};
use crate::commands::columns;
use ports::netdev::check_ifname;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::collections::BTreeMap;

/// The schema version this vswitchd reads and writes.
pub const SCHEMA: u64 = 1;
/// The top-level key that holds the schema version.
pub const SCHEMA_KEY: &str = "schema";

/// Parses the bytes of a stored database into a checked configuration. An
/// empty file is an empty configuration.
pub fn parse(bytes: &[u8]) -> Result<Config, String> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Config::default());
    }
    let v: Value = serde_json::from_slice(bytes).map_err(|e| format!("not JSON: {e}"))?;
    let Value::Object(mut top) = v else {
        return Err(format!(
            "the file holds {}, not an object with \"schema\" and \"bridges\"",
            kind(&v)
        ));
    };
    let schema = top.remove(SCHEMA_KEY);
    let unversioned = schema.is_none();
    let top = Value::Object(top);
    match schema.as_ref().map(|s| (s, s.as_u64())) {
        None => {}
        Some((_, Some(SCHEMA))) => {}
        Some((_, Some(n))) if n > SCHEMA => {
            return Err(format!(
                "schema: version {n} is newer than this vswitchd knows ({SCHEMA}); \
                 it was written by a newer vswitchd: run that one, or restore an older copy"
            ))
        }
        Some((s, _)) => {
            return Err(format!(
                "schema: {s} is not a schema version (this vswitchd knows {SCHEMA})"
            ))
        }
    }
    let cfg = shape(&top)?;
    if unversioned && top.get("bridges").is_none() {
        return Err(format!(
            "neither \"schema\" nor \"bridges\" is there: this is not a vswitchd database \
             (expected {{\"{SCHEMA_KEY}\": {SCHEMA}, \"bridges\": {{...}}}})"
        ));
    }
    validate(&cfg)?;
    Ok(cfg)
}

/// What kind of JSON value `v` is, for messages.
fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Deserializes the configuration; when that fails, finds the bridge, port
/// and field at fault, so the message says where.
fn shape(top: &Value) -> Result<Config, String> {
    let e = match de::<Config>(top) {
        Ok(cfg) => return Ok(cfg),
        Err(e) => e,
    };
    if let Some(Value::Object(bridges)) = top.get("bridges") {
        for (b, bv) in bridges {
            if let Some(Value::Object(ports)) = bv.get("ports") {
                for (p, pv) in ports {
                    if let Some(why) = why_not::<Port>(pv) {
                        return Err(format!("bridges.{b}.ports.{p}{why}"));
                    }
                }
            }
            if let Some(why) = why_not::<Bridge>(bv) {
                return Err(format!("bridges.{b}{why}"));
            }
        }
    }
    Err(match why_not::<Config>(top) {
        Some(why) => why.trim_start_matches(['.', ':', ' ']).to_string(),
        None => e,
    })
}

/// Deserializes `v`, with serde's message as the error.
fn de<T: DeserializeOwned>(v: &Value) -> Result<T, String> {
    T::deserialize(v).map_err(|e| e.to_string())
}

/// Why `v` is not a `T`: `.field: reason` for the first field at fault, or
/// `: reason` when the value as a whole is wrong; None if it is a `T`.
fn why_not<T: DeserializeOwned>(v: &Value) -> Option<String> {
    let e = de::<T>(v).err()?;
    if let Value::Object(fields) = v {
        for (k, x) in fields {
            let alone = Value::Object([(k.clone(), x.clone())].into_iter().collect());
            if let Err(e) = de::<T>(&alone) {
                return Some(format!(".{k}: {e}"));
            }
        }
    }
    Some(format!(": {e}"))
}

/// Checks every value of `cfg` as the commands would, and what holds the
/// configuration together: each name once (a port in one bridge only, no
/// port named as a bridge), each port number once, the tunnels.
pub fn validate(cfg: &Config) -> Result<(), String> {
    let mut names: BTreeMap<String, String> = BTreeMap::new();
    let mut ofports: BTreeMap<u16, String> = BTreeMap::new();
    let mut once = |name: &str, ofport: Option<u16>, at: &str| -> Result<(), String> {
        check_ifname(name).map_err(|e| format!("{at}: {e}"))?;
        if let Some(first) = names.insert_first(name.to_string(), at) {
            return Err(format!("{at}: the name {name} is already used by {first}"));
        }
        if let Some(n) = ofport {
            if n == 0 {
                return Err(format!("{at}.ofport: port numbers start at 1"));
            }
            if let Some(first) = ofports.insert_first(n, at) {
                return Err(format!("{at}.ofport: {n} is already the number of {first}"));
            }
        }
        Ok(())
    };
    for (b, br) in &cfg.bridges {
        let at = format!("bridges.{b}");
        once(b, br.ofport, &at)?;
        for (k, v) in &br.other_config {
            columns::check_bridge_other_config(k, v).map_err(|e| format!("{at}: {e}"))?;
        }
        for (p, port) in &br.ports {
            let at = format!("{at}.ports.{p}");
            once(p, port.ofport, &at)?;
            check_port(port, &at)?;
        }
    }
    if let Some(u) = &cfg.uplink {
        once(&u.port, u.ofport, "uplink")?;
    }
    crate::tunnel::validate(cfg)?;
    check_lab_ports(cfg)?;
    crate::mirror::validate(cfg)?;
    crate::nat::validate(cfg)
}

/// Patch ports (each names a peer other than itself, and only patch ports
/// have a peer) and link impairment (the options together make sense; a
/// patch port has no link to impair).
pub fn check_lab_ports(cfg: &Config) -> Result<(), String> {
    for b in cfg.bridges.values() {
        for (name, p) in &b.ports {
            let impaired = ports::impair::Impairment::from_options(&p.options)
                .map_err(|e| format!("port {name}: {e}"))?;
            if impaired.is_some() && p.kind == crate::runtime::PATCH_KIND {
                return Err(format!(
                    "port {name}: a patch port has no link to impair (set the options on a port with a device)"
                ));
            }
            let peer = p.options.get("peer").filter(|v| !v.is_empty());
            match (p.kind == crate::runtime::PATCH_KIND, peer) {
                (true, None) => {
                    return Err(format!("port {name}: a patch port needs options:peer"))
                }
                (true, Some(peer)) if peer == name => {
                    return Err(format!("port {name}: a patch port cannot be its own peer"))
                }
                (false, Some(_)) => {
                    return Err(format!(
                        "port {name}: options:peer applies to patch ports only (set type=patch)"
                    ))
                }
                _ => {}
            }
        }
    }
    Ok(())
}

/// Checks one port's columns; `at` is its path in the file.
fn check_port(p: &Port, at: &str) -> Result<(), String> {
    columns::check_port_type(&p.kind).map_err(|e| format!("{at}.type: {e}"))?;
    if let Some(t) = p.tag {
        columns::check_vid(t.into()).map_err(|e| format!("{at}.tag: {e}"))?;
    }
    for &t in &p.trunks {
        columns::check_vid(t.into()).map_err(|e| format!("{at}.trunks: {e}"))?;
    }
    if let Some(m) = &p.vlan_mode {
        columns::check_vlan_mode(m).map_err(|e| format!("{at}.vlan_mode: {e}"))?;
    }
    for (k, v) in &p.options {
        columns::check_option(k, v).map_err(|e| format!("{at}: {e}"))?;
    }
    for (k, v) in &p.other_config {
        columns::check_port_other_config(k, v).map_err(|e| format!("{at}: {e}"))?;
    }
    if let Some(m) = p.mtu_request {
        columns::check_mtu_request(m).map_err(|e| format!("{at}.mtu_request: {e}"))?;
    }
    if p.kind == crate::tunnel::KIND {
        crate::tunnel::VxlanSpec::from_options(&p.options).map_err(|e| format!("{at}: {e}"))?;
    }
    Ok(())
}

/// Inserting into a map only when the key is new.
trait InsertFirst<K> {
    /// Records `at` for `key` and returns None, or returns what was
    /// recorded first and keeps it.
    fn insert_first(&mut self, key: K, at: &str) -> Option<String>;
}

impl<K: Ord> InsertFirst<K> for BTreeMap<K, String> {
    fn insert_first(&mut self, key: K, at: &str) -> Option<String> {
        match self.entry(key) {
            std::collections::btree_map::Entry::Occupied(e) => Some(e.get().clone()),
            std::collections::btree_map::Entry::Vacant(e) => {
                e.insert(at.to_string());
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(json: &str) -> String {
        match parse(json.as_bytes()) {
            Ok(c) => panic!("{json} was accepted as {c:?}"),
            Err(e) => e,
        }
    }

    fn assert_refused(json: &str, needle: &str) {
        let e = refused(json);
        assert!(e.contains(needle), "{json}: {e:?} does not say {needle:?}");
    }

    #[test]
    fn the_wrong_shape_is_refused_and_says_where() {
        assert_refused("{}", "not a vswitchd database");
        assert_refused("[]", "an array");
        assert_refused("null", "null");
        assert_refused("{not json", "not JSON");
        assert_refused(r#"{"bridgez":{}}"#, "bridgez: unknown field `bridgez`");
        assert_refused(r#"{"schema":1,"bridges":[]}"#, "bridges: invalid type");
        assert_refused(
            r#"{"schema":1,"bridges":{"br0":{"colour":"red"}}}"#,
            "bridges.br0.colour: unknown field `colour`",
        );
        assert_refused(
            r#"{"schema":1,"bridges":{"br0":{"ports":{"p1":{"tagg":1}}}}}"#,
            "bridges.br0.ports.p1.tagg: unknown field `tagg`",
        );
        assert_refused(
            r#"{"schema":1,"bridges":{"br0":{"ports":{"p1":{"tag":"x"}}}}}"#,
            "bridges.br0.ports.p1.tag: invalid type",
        );
        assert_refused(
            r#"{"schema":1,"bridges":{"br0":{"ports":[]}}}"#,
            "bridges.br0.ports: invalid type",
        );
    }

    #[test]
    fn schema_versions() {
        let current = parse(br#"{"schema":1,"version":3,"bridges":{"br0":{}}}"#).unwrap();
        // Written before versions were kept: loads as version 1.
        let old = parse(br#"{"version":3,"bridges":{"br0":{}}}"#).unwrap();
        assert_eq!(current, old);
        assert_eq!(parse(br#"{"schema":1}"#).unwrap(), Config::default());
        assert_eq!(parse(b"").unwrap(), Config::default());
        assert_eq!(parse(b" \n").unwrap(), Config::default());
        assert_refused(r#"{"schema":2,"bridges":{}}"#, "version 2 is newer");
        assert_refused(r#"{"schema":0,"bridges":{}}"#, "schema: 0 is not");
        assert_refused(r#"{"schema":"1","bridges":{}}"#, "not a schema version");
    }

    fn one_port(fields: &str) -> String {
        format!(r#"{{"schema":1,"bridges":{{"br0":{{"ports":{{"p1":{{{fields}}}}}}}}}}}"#)
    }

    #[test]
    fn bad_values_are_refused_with_their_path() {
        for (fields, needle) in [
            (
                r#""tag":5000"#,
                "bridges.br0.ports.p1.tag: 5000 is not a VLAN id (0 to 4095)",
            ),
            (r#""trunks":[10,4096]"#, "bridges.br0.ports.p1.trunks: 4096"),
            (r#""type":"warp""#, "bridges.br0.ports.p1.type: \"warp\""),
            (
                r#""vlan_mode":"sideways""#,
                "bridges.br0.ports.p1.vlan_mode: \"sideways\" is not one of",
            ),
            (
                r#""options":{"xdp-mode":"turbo"}"#,
                "bridges.br0.ports.p1: options:xdp-mode",
            ),
            (r#""options":{"colour":"red"}"#, "unknown interface option"),
            (
                r#""other_config":{"qinq-ethtype":"x"}"#,
                "bridges.br0.ports.p1: other_config:qinq-ethtype",
            ),
            (
                r#""other_config":{"cvlans":"1,9999"}"#,
                "other_config:cvlans",
            ),
            (
                r#""type":"vxlan","options":{"remote_ip":"192.0.2.1","key":"99999999"}"#,
                "bridges.br0.ports.p1: options:key",
            ),
            (
                r#""type":"vxlan""#,
                "bridges.br0.ports.p1: a vxlan port needs options:remote_ip",
            ),
            (
                r#""options":{"remote_ip":"192.0.2.1"}"#,
                "applies to vxlan ports only",
            ),
            (
                r#""ofport":0"#,
                "bridges.br0.ports.p1.ofport: port numbers start at 1",
            ),
        ] {
            assert_refused(&one_port(fields), needle);
        }
        // A good port passes.
        parse(
            one_port(r#""tag":4095,"trunks":[1,2],"vlan_mode":"access","type":"tap""#).as_bytes(),
        )
        .unwrap();
    }

    #[test]
    fn bridge_settings_use_the_command_limits() {
        let br =
            |oc: &str| format!(r#"{{"schema":1,"bridges":{{"br0":{{"other_config":{oc}}}}}}}"#);
        assert_refused(
            &br(r#"{"mac-table-size":"1000000000000"}"#),
            "bridges.br0: other_config:mac-table-size \"1000000000000\" must be an integer from 1 to 1000000",
        );
        assert_refused(&br(r#"{"mac-table-size":"0"}"#), "mac-table-size");
        assert_refused(&br(r#"{"mac-aging-time":"x"}"#), "mac-aging-time");
        parse(br(r#"{"mac-table-size":"1000000","mac-aging-time":"60"}"#).as_bytes()).unwrap();
    }

    #[test]
    fn names_and_numbers_are_used_once() {
        assert_refused(
            r#"{"schema":1,"bridges":{"a":{"ports":{"p":{}}},"b":{"ports":{"p":{}}}}}"#,
            "bridges.b.ports.p: the name p is already used by bridges.a.ports.p",
        );
        assert_refused(
            r#"{"schema":1,"bridges":{"a":{"ports":{"b":{}}},"b":{}}}"#,
            "bridges.b: the name b is already used by bridges.a.ports.b",
        );
        assert_refused(
            r#"{"schema":1,"bridges":{"a":{"ofport":1,"ports":{"p":{"ofport":1}}}}}"#,
            "bridges.a.ports.p.ofport: 1 is already the number of bridges.a",
        );
        assert_refused(
            r#"{"schema":1,"bridges":{"a/b":{}}}"#,
            "bridges.a/b: interface name",
        );
    }
}

//! Parsing and checking `column=value` and `column:key=value` arguments, as
//! `ovs-vsctl` writes them (`tag=100`, `options:xdp-mode=native`,
//! `other_config:mac-aging-time=60`, `external-ids:k=v`).

use crate::config::{Bridge, Map, Port, PORT_TYPES};

pub const VLAN_MODES: &[&str] = &[
    "access",
    "trunk",
    "native-tagged",
    "native-untagged",
    "dot1q-tunnel",
];

/// One parsed argument: `column=value` or `column:key=value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    pub column: String,
    pub key: Option<String>,
    pub value: String,
}

pub fn parse_setting(arg: &str) -> Result<Setting, String> {
    let Some((lhs, value)) = arg.split_once('=') else {
        return Err(format!(
            "\"{arg}\" is not a setting: expected column=value or column:key=value"
        ));
    };
    let (column, key) = match lhs.split_once(':') {
        Some((c, k)) => (c, Some(k.to_string())),
        None => (lhs, None),
    };
    if column.is_empty() || key.as_deref() == Some("") {
        return Err(format!("\"{arg}\" is missing a column or key name"));
    }
    let value = value.trim_matches('"').to_string();
    Ok(Setting {
        column: column.replace('-', "_"),
        key,
        value,
    })
}

fn parse_vid(s: &str, what: &str) -> Result<u16, String> {
    match s.trim().parse::<u16>() {
        Ok(v) if v <= 4095 => Ok(v),
        _ => Err(format!(
            "{what} \"{s}\" is not a VLAN id: expected an integer from 0 to 4095"
        )),
    }
}

fn parse_trunks(s: &str) -> Result<Vec<u16>, String> {
    let s = s.trim().trim_start_matches('[').trim_end_matches(']');
    let mut v = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        v.push(parse_vid(part, "trunks value")?);
    }
    v.sort_unstable();
    v.dedup();
    Ok(v)
}

fn is_empty_value(v: &str) -> bool {
    v.is_empty() || v == "[]"
}

fn map_set(map: &mut Map, key: &str, value: &str) {
    if is_empty_value(value) {
        map.remove(key);
    } else {
        map.insert(key.to_string(), value.to_string());
    }
}

fn need_key(s: &Setting) -> Result<&str, String> {
    s.key
        .as_deref()
        .ok_or_else(|| format!("column {} is a map: write {}:KEY=VALUE", s.column, s.column))
}

fn no_key(s: &Setting) -> Result<(), String> {
    match &s.key {
        Some(k) => Err(format!(
            "column {} is not a map; \"{}:{k}\" makes no sense",
            s.column, s.column
        )),
        None => Ok(()),
    }
}

/// Applies a Port or Interface column to `port`.
pub fn set_port_column(port: &mut Port, s: &Setting) -> Result<(), String> {
    match s.column.as_str() {
        "tag" => {
            no_key(s)?;
            port.tag = if is_empty_value(&s.value) {
                None
            } else {
                Some(parse_vid(&s.value, "tag")?)
            };
        }
        "trunks" => {
            no_key(s)?;
            port.trunks = parse_trunks(&s.value)?;
        }
        "vlan_mode" => {
            no_key(s)?;
            if is_empty_value(&s.value) {
                port.vlan_mode = None;
            } else if VLAN_MODES.contains(&s.value.as_str()) {
                port.vlan_mode = Some(s.value.clone());
            } else {
                return Err(format!(
                    "vlan_mode \"{}\" is not one of {}",
                    s.value,
                    VLAN_MODES.join(", ")
                ));
            }
        }
        "type" => {
            no_key(s)?;
            if !PORT_TYPES.contains(&s.value.as_str()) {
                return Err(format!(
                    "interface type \"{}\" is not supported (use afxdp, afpacket, tap, internal, vxlan or leave it empty)",
                    s.value
                ));
            }
            port.kind = if s.value == "system" {
                String::new()
            } else {
                s.value.clone()
            };
        }
        "options" => {
            let k = need_key(s)?;
            check_option(k, &s.value)?;
            map_set(&mut port.options, k, &s.value);
        }
        "other_config" => {
            let k = need_key(s)?;
            if k == "qinq-ethtype" && !["802.1q", "802.1ad", ""].contains(&s.value.as_str()) {
                return Err(format!(
                    "other_config:qinq-ethtype \"{}\" must be 802.1q or 802.1ad",
                    s.value
                ));
            }
            map_set(&mut port.other_config, k, &s.value);
        }
        "external_ids" => {
            let k = need_key(s)?;
            map_set(&mut port.external_ids, k, &s.value);
        }
        "cvlans" => {
            no_key(s)?;
            let v = parse_trunks(&s.value)?;
            map_set(
                &mut port.other_config,
                "cvlans",
                &v.iter()
                    .map(|x| x.to_string())
                    .collect::<Vec<_>>()
                    .join(","),
            );
        }
        other => return Err(format!("port has no column named \"{other}\"")),
    }
    Ok(())
}

fn check_option(key: &str, value: &str) -> Result<(), String> {
    if is_empty_value(value) {
        return Ok(());
    }
    if crate::tunnel::OPTIONS.contains(&key) {
        return crate::tunnel::check_option(key, value);
    }
    match key {
        "xdp-mode" => {
            if ["best-effort", "native", "generic", ""].contains(&value) {
                Ok(())
            } else {
                Err(format!(
                    "options:xdp-mode \"{value}\" is not one of best-effort, native, generic"
                ))
            }
        }
        _ => Err(format!(
            "unknown interface option \"{key}\" (known: xdp-mode, {})",
            crate::tunnel::OPTIONS.join(", ")
        )),
    }
}

/// Applies a Bridge column to `br`.
pub fn set_bridge_column(br: &mut Bridge, s: &Setting) -> Result<(), String> {
    match s.column.as_str() {
        "other_config" => {
            let k = need_key(s)?;
            let range = match k {
                "mac-aging-time" => Some((1u64, 1_000_000u64)),
                "mac-table-size" => Some((1, 1_000_000)),
                _ => None,
            };
            if let (Some((lo, hi)), false) = (range, is_empty_value(&s.value)) {
                match s.value.parse::<u64>() {
                    Ok(v) if (lo..=hi).contains(&v) => {}
                    _ => {
                        return Err(format!(
                            "other_config:{k} \"{}\" must be an integer from {lo} to {hi}",
                            s.value
                        ))
                    }
                }
            }
            map_set(&mut br.other_config, k, &s.value);
        }
        "external_ids" => {
            let k = need_key(s)?;
            map_set(&mut br.external_ids, k, &s.value);
        }
        other => return Err(format!("bridge has no column named \"{other}\"")),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn port_set(arg: &str) -> Result<Port, String> {
        let mut p = Port::default();
        set_port_column(&mut p, &parse_setting(arg)?)?;
        Ok(p)
    }

    #[test]
    fn good_settings() {
        assert_eq!(port_set("tag=100").unwrap().tag, Some(100));
        assert_eq!(port_set("tag=[]").unwrap().tag, None);
        assert_eq!(
            port_set("trunks=200,100,100").unwrap().trunks,
            vec![100, 200]
        );
        assert_eq!(
            port_set("options:xdp-mode=native").unwrap().options["xdp-mode"],
            "native"
        );
        assert_eq!(
            port_set("external-ids:container=c1").unwrap().external_ids["container"],
            "c1"
        );
    }

    #[test]
    fn bad_settings_say_why() {
        for (arg, needle) in [
            ("tag=abc", "not a VLAN id"),
            ("tag=4096", "not a VLAN id"),
            ("options:xdp-mode=turbo", "not one of"),
            ("options:foo=1", "unknown interface option"),
            ("vlan_mode=sideways", "vlan_mode"),
            ("type=vxlan9", "not supported"),
            ("color=red", "no column"),
            ("tag", "not a setting"),
            ("options=1", "is a map"),
        ] {
            let e = port_set(arg).unwrap_err();
            assert!(e.contains(needle), "{arg}: {e}");
        }
        let mut b = Bridge::default();
        let e = set_bridge_column(
            &mut b,
            &parse_setting("other_config:mac-table-size=-1").unwrap(),
        )
        .unwrap_err();
        assert!(e.contains("integer"), "{e}");
    }
}

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

// The rules of each column, one function each. The commands call them
// when they set a column and `config::validate` when it loads a stored
// configuration, so a value is good or bad the same way in both.

/// A VLAN id (`tag`, `trunks`, `cvlans`): 0 to 4095.
pub fn check_vid(v: u64) -> Result<u16, String> {
    u16::try_from(v)
        .ok()
        .filter(|v| *v <= 4095)
        .ok_or_else(|| format!("{v} is not a VLAN id (0 to 4095)"))
}

/// An interface type (`type`): one of [`PORT_TYPES`].
pub fn check_port_type(kind: &str) -> Result<(), String> {
    if PORT_TYPES.contains(&kind) {
        Ok(())
    } else {
        Err(format!(
            "\"{kind}\" is not supported (use afxdp, afpacket, tap, internal, vxlan or leave it empty)"
        ))
    }
}

/// A VLAN mode (`vlan_mode`): one of [`VLAN_MODES`].
pub fn check_vlan_mode(mode: &str) -> Result<(), String> {
    if VLAN_MODES.contains(&mode) {
        Ok(())
    } else {
        Err(format!(
            "\"{mode}\" is not one of {}",
            VLAN_MODES.join(", ")
        ))
    }
}

/// The smallest and largest `other_config:mac-aging-time` (seconds).
pub const MAC_AGING_TIME: (u64, u64) = (1, 1_000_000);
/// The smallest and largest `other_config:mac-table-size` (entries): the
/// table's memory is bounded by it.
pub const MAC_TABLE_SIZE: (u64, u64) = (1, 1_000_000);
/// The smallest and largest port `other_config:mac-limit` (learned entries
/// of one port); unset means no limit beyond the table's.
pub const MAC_LIMIT: (u64, u64) = (1, 1_000_000);

/// Why an MTU above [`ports::MAX_MTU`] is refused (`what` names the
/// option or column).
pub fn mtu_too_big(what: &str, mtu: u32) -> String {
    format!(
        "{what} {mtu}: the largest MTU is {} (jumbo frames: the largest frame a tag or a tunnel header is gathered around)",
        ports::MAX_MTU
    )
}

/// Checks `mtu_request` (68 to [`ports::MAX_MTU`]).
pub fn check_mtu_request(mtu: u32) -> Result<(), String> {
    match mtu {
        _ if mtu > ports::MAX_MTU => Err(mtu_too_big("mtu_request", mtu)),
        0..=67 => Err(format!(
            "mtu_request {mtu} is below 68, the least IPv4 allows"
        )),
        _ => Ok(()),
    }
}

/// RSTP's timers, in seconds (802.1D-2004 table 17-1).
pub const RSTP_HELLO: (u64, u64) = (1, 10);
pub const RSTP_MAX_AGE: (u64, u64) = (6, 40);
pub const RSTP_FORWARD_DELAY: (u64, u64) = (4, 30);

/// `true` or `false`.
fn parse_bool(what: &str, v: &str) -> Result<bool, String> {
    match v {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(format!("{what} \"{v}\" must be true or false")),
    }
}

/// One key of a bridge's `other_config`; an empty value removes the key.
pub fn check_bridge_other_config(key: &str, value: &str) -> Result<(), String> {
    let range = match key {
        _ if is_empty_value(value) => return Ok(()),
        crate::nat::GATEWAY_KEY => {
            return crate::nat::Cidr::parse(value, "other_config:gateway").map(|_| ())
        }
        crate::nat::MASQUERADE_KEY if value != "true" && value != "false" => {
            return Err(format!(
                "other_config:masquerade \"{value}\" must be true or false"
            ))
        }
        "mac-aging-time" => MAC_AGING_TIME,
        "mac-table-size" => MAC_TABLE_SIZE,
        "rstp-priority" => {
            return match value.parse::<u32>() {
                Ok(v) if v <= 61440 && v % 4096 == 0 => Ok(()),
                _ => Err(format!(
                "other_config:rstp-priority \"{value}\" must be a multiple of 4096 from 0 to 61440"
            )),
            }
        }
        "rstp-address" => {
            return crate::trace::flow::parse_mac(value)
                .map(|_| ())
                .ok_or_else(|| {
                    format!("other_config:rstp-address \"{value}\" is not a MAC address")
                })
        }
        "rstp-hello-time" => RSTP_HELLO,
        "rstp-max-age" => RSTP_MAX_AGE,
        "rstp-forward-delay" => RSTP_FORWARD_DELAY,
        _ => return Ok(()),
    };
    let (lo, hi) = range;
    match value.parse::<u64>() {
        _ if is_empty_value(value) => Ok(()),
        Ok(v) if (lo..=hi).contains(&v) => Ok(()),
        _ => Err(format!(
            "other_config:{key} \"{value}\" must be an integer from {lo} to {hi}"
        )),
    }
}

/// One key of a port's `other_config`; an empty value removes the key.
pub fn check_port_other_config(key: &str, value: &str) -> Result<(), String> {
    match key {
        _ if is_empty_value(value) => Ok(()),
        "qinq-ethtype" if !["802.1q", "802.1ad"].contains(&value) => Err(format!(
            "other_config:qinq-ethtype \"{value}\" must be 802.1q or 802.1ad"
        )),
        "cvlans" => parse_trunks(value)
            .map(|_| ())
            .map_err(|e| format!("other_config:cvlans: {e}")),
        "flood-limit" => match value.parse::<u64>() {
            Ok(v) if v <= 100_000_000 => Ok(()),
            _ => Err(format!(
                "other_config:flood-limit \"{value}\" must be flooded frames per second, \
                 0 (no limit) to 100000000"
            )),
        },
        "rstp-enable" | "rstp-port-admin-edge" | "rstp-port-auto-edge" => {
            parse_bool(&format!("other_config:{key}"), value).map(|_| ())
        }
        "rstp-port-priority" => match value.parse::<u32>() {
            Ok(v) if v <= 240 && v % 16 == 0 => Ok(()),
            _ => Err(format!(
                "other_config:rstp-port-priority \"{value}\" must be a multiple of 16 from 0 to 240"
            )),
        },
        "rstp-path-cost" => match value.parse::<u64>() {
            Ok(v) if (1..=200_000_000).contains(&v) => Ok(()),
            _ => Err(format!(
                "other_config:rstp-path-cost \"{value}\" must be an integer from 1 to 200000000"
            )),
        },
        "mac-limit" => match value.parse::<u64>() {
            Ok(v) if (MAC_LIMIT.0..=MAC_LIMIT.1).contains(&v) => Ok(()),
            _ => Err(format!(
                "other_config:mac-limit \"{value}\" must be an integer from {} to {} \
                 (remove the key for no limit)",
                MAC_LIMIT.0, MAC_LIMIT.1
            )),
        },
        _ => Ok(()),
    }
}

fn parse_vid(s: &str, what: &str) -> Result<u16, String> {
    let n: u64 = s.trim().parse().map_err(|_| {
        format!("{what} \"{s}\" is not a VLAN id: expected an integer from 0 to 4095")
    })?;
    check_vid(n).map_err(|e| format!("{what}: {e}"))
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

pub(crate) fn map_set(map: &mut Map, key: &str, value: &str) {
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
            } else {
                check_vlan_mode(&s.value).map_err(|e| format!("vlan_mode {e}"))?;
                port.vlan_mode = Some(s.value.clone());
            }
        }
        "type" => {
            no_key(s)?;
            check_port_type(&s.value).map_err(|e| format!("interface type {e}"))?;
            port.kind = if s.value == "system" {
                String::new()
            } else {
                s.value.clone()
            };
        }
        "mtu_request" => {
            no_key(s)?;
            port.mtu_request = if is_empty_value(&s.value) {
                None
            } else {
                let m = s.value.parse::<u32>().map_err(|_| {
                    format!("mtu_request \"{}\" is not an MTU (an integer)", s.value)
                })?;
                check_mtu_request(m)?;
                if matches!(port.kind.as_str(), crate::tunnel::KIND | "patch") {
                    return Err(format!(
                        "mtu_request does not apply to a {} port (it has no device of its own)",
                        port.kind
                    ));
                }
                Some(m)
            };
        }
        "options" => {
            let k = need_key(s)?;
            check_option(k, &s.value)?;
            map_set(&mut port.options, k, &s.value);
        }
        "other_config" => {
            let k = need_key(s)?;
            check_port_other_config(k, &s.value)?;
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

/// One key of a port's `options`; an empty value removes the key.
pub fn check_option(key: &str, value: &str) -> Result<(), String> {
    if is_empty_value(value) {
        return Ok(());
    }
    if crate::tunnel::OPTIONS.contains(&key) {
        return crate::tunnel::check_option(key, value);
    }
    match key {
        // Where an attached TAP port's device lives (set by `attach`).
        "netns" if value.starts_with('/') => Ok(()),
        "netns" => Err(format!("options:netns \"{value}\" is not an absolute path")),
        "ifname" => ports::netdev::check_ifname(value).map_err(|e| format!("options:ifname: {e}")),
        // Link impairment: each value alone (the options together are
        // checked with the whole port, `config::validate`).
        k if ports::impair::Impairment::KEYS.contains(&k) => check_impairment(k, value),
        // A patch port's other end.
        "peer" => ports::netdev::check_ifname(value).map_err(|e| format!("options:peer: {e}")),
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
            "unknown interface option \"{key}\" (known: xdp-mode, netns, ifname, peer, {}, {})",
            crate::tunnel::OPTIONS.join(", "),
            ports::impair::Impairment::KEYS.join(", ")
        )),
    }
}

/// One impairment option's value, read as it would be with the options
/// it depends on (jitter needs a delay, burst a rate) present.
fn check_impairment(key: &str, value: &str) -> Result<(), String> {
    let mut o = Map::new();
    o.insert(key.to_string(), value.to_string());
    match key {
        "jitter" => o.insert("delay".into(), "1h".into()),
        "burst" => o.insert("rate".into(), "1gbit".into()),
        _ => None,
    };
    ports::impair::Impairment::from_options(&o).map(|_| ())
}

/// Applies a Bridge column to `br`.
pub fn set_bridge_column(br: &mut Bridge, s: &Setting) -> Result<(), String> {
    match s.column.as_str() {
        "other_config" => {
            let k = need_key(s)?;
            check_bridge_other_config(k, &s.value)?;
            map_set(&mut br.other_config, k, &s.value);
        }
        "external_ids" => {
            let k = need_key(s)?;
            map_set(&mut br.external_ids, k, &s.value);
        }
        "rstp_enable" => {
            no_key(s)?;
            br.rstp_enable = parse_bool("rstp_enable", &s.value)?;
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

    #[test]
    fn the_rules_the_loader_shares() {
        assert_eq!(check_vid(4095), Ok(4095));
        assert_eq!(
            check_vid(5000).unwrap_err(),
            "5000 is not a VLAN id (0 to 4095)"
        );
        assert_eq!(
            port_set("tag=5000").unwrap_err(),
            "tag: 5000 is not a VLAN id (0 to 4095)"
        );
        assert!(check_port_type("system").is_ok());
        assert!(check_vlan_mode("dot1q-tunnel").is_ok());
        for (k, v) in [("mac-table-size", "0"), ("mac-table-size", "1000001")] {
            let e = check_bridge_other_config(k, v).unwrap_err();
            assert!(e.contains("from 1 to 1000000"), "{e}");
        }
        assert!(check_bridge_other_config("mac-table-size", "").is_ok());
        assert!(check_bridge_other_config("something-else", "x").is_ok());
        // other_config:cvlans set directly is checked like the cvlans column.
        let e = port_set("other_config:cvlans=1,5000").unwrap_err();
        assert!(e.contains("other_config:cvlans: trunks value: 5000"), "{e}");
        assert!(port_set("other_config:qinq-ethtype=").is_ok());
    }
}

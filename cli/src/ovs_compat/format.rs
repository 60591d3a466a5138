//! Printing values the way ovs-vsctl prints them.

use super::schema::Table;
use super::translate::GetColumn;
use super::{fail, Fail};
use serde_json::Value;

/// Formats a string the way ovs-vsctl prints an OVSDB string: bare when it
/// looks like an identifier, else quoted with JSON escapes.
pub(crate) fn ovs_string(s: &str) -> String {
    let mut chars = s.chars();
    let bare = match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {
            chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        }
        _ => false,
    };
    if bare && s != "true" && s != "false" && !looks_like_uuid(s) {
        s.to_string()
    } else {
        serde_json::to_string(s).unwrap_or_else(|_| format!("\"{s}\""))
    }
}

fn looks_like_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| {
            if [8, 13, 18, 23].contains(&i) {
                *c == b'-'
            } else {
                c.is_ascii_hexdigit()
            }
        })
}

/// Formats a column value (as vswctl's `get` returns it in JSON).
pub(crate) fn ovs_value(v: &Value) -> String {
    match v {
        Value::Null => "[]".into(),
        Value::String(s) => ovs_string(s),
        Value::Array(a) => format!(
            "[{}]",
            a.iter().map(ovs_value).collect::<Vec<_>>().join(", ")
        ),
        Value::Object(m) => format!(
            "{{{}}}",
            m.iter()
                .map(|(k, v)| format!("{}={}", ovs_string(k), ovs_value(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        other => other.to_string(),
    }
}

/// The lines `get` prints, from the values the daemon returned for the
/// columns it was asked (in order, without duplicates).
pub(crate) fn get_lines(
    table: Table,
    record: &str,
    columns: &[GetColumn],
    values: &[Value],
) -> Result<Vec<String>, Fail> {
    let mut asked: Vec<&str> = Vec::new();
    for c in columns {
        if !matches!(c.column, "name" | "datapath_type") && !asked.contains(&c.column) {
            asked.push(c.column);
        }
    }
    let mut lines = Vec::new();
    for c in columns {
        let v = match c.column {
            "name" => Value::String(record.to_string()),
            "datapath_type" => Value::String("netdev".into()),
            col => {
                let i = asked.iter().position(|a| *a == col).unwrap_or(usize::MAX);
                values.get(i).cloned().unwrap_or(Value::Null)
            }
        };
        let v = match (c.column, &v) {
            ("type", Value::String(s)) if s == "system" => Value::String(String::new()),
            _ => v,
        };
        match &c.key {
            None => lines.push(ovs_value(&v)),
            Some(k) => match v.get(k) {
                Some(x) => lines.push(ovs_value(x)),
                None => {
                    return fail(format!(
                        "no key \"{k}\" in {} record \"{record}\" column {}",
                        table.name(),
                        c.column
                    ))
                }
            },
        }
    }
    Ok(lines)
}

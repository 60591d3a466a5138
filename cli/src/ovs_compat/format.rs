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

/// A value in `--data=bare` form: strings unquoted, sets and maps without
/// brackets, elements separated by spaces.
fn bare_value(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Array(a) => a.iter().map(bare_value).collect::<Vec<_>>().join(" "),
        Value::Object(m) => m
            .iter()
            .map(|(k, v)| format!("{k}={}", bare_value(v)))
            .collect::<Vec<_>>()
            .join(" "),
        other => other.to_string(),
    }
}

/// What `list` and `find` print: the records the daemon returned, in OVS's
/// list format (`column : value`, a blank line between records) or its
/// table format, with `--columns`, `--data=bare` and `--no-headings`.
pub(crate) fn records_text(
    table: Table,
    records: &Value,
    f: &super::parse::RecordFormat,
) -> Result<String, Fail> {
    let recs: Vec<&serde_json::Map<String, Value>> = records
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_object)
        .collect();
    let columns: Vec<String> = match &f.columns {
        Some(cs) => cs
            .iter()
            .map(|c| super::schema::parse_column(table, c).map(str::to_string))
            .collect::<Result<_, _>>()?,
        None => {
            let mut cs = vec!["name".to_string()];
            for r in &recs {
                for k in r.keys() {
                    if !cs.contains(k) {
                        cs.push(k.clone());
                    }
                }
            }
            cs[1..].sort();
            cs
        }
    };
    let cell = |r: &serde_json::Map<String, Value>, c: &str| -> String {
        let v = match (c, r.get(c)) {
            ("type", Some(Value::String(s))) if s == "system" => Value::String(String::new()),
            (_, Some(v)) => v.clone(),
            (_, None) => Value::Null,
        };
        if f.bare {
            bare_value(&v)
        } else {
            ovs_value(&v)
        }
    };
    let mut out = String::new();
    if f.table {
        let rows: Vec<Vec<String>> = recs
            .iter()
            .map(|r| columns.iter().map(|c| cell(r, c)).collect())
            .collect();
        let width = |i: usize| {
            rows.iter()
                .map(|r| r[i].len())
                .chain((!f.no_headings).then(|| columns[i].len()))
                .max()
                .unwrap_or(0)
        };
        let widths: Vec<usize> = (0..columns.len()).map(width).collect();
        let line = |cells: &[String]| -> String {
            let padded: Vec<String> = cells
                .iter()
                .zip(&widths)
                .map(|(c, w)| format!("{c:<w$}"))
                .collect();
            format!("{}\n", padded.join(" ").trim_end())
        };
        if !f.no_headings {
            out.push_str(&line(&columns));
            let dashes: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
            out.push_str(&line(&dashes));
        }
        for r in &rows {
            out.push_str(&line(r));
        }
        return Ok(out);
    }
    for (i, r) in recs.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        for c in &columns {
            if f.no_headings {
                out.push_str(&format!("{}\n", cell(r, c)));
            } else {
                out.push_str(&format!("{c:<20}: {}\n", cell(r, c)));
            }
        }
    }
    Ok(out)
}

//! From ovs-vsctl commands to one vswctl request: tables, columns, values
//! and rows checked here, with Open vSwitch's messages.

use super::ids::Ids;
use super::mirrors::{
    bridge_mirrors_column, define_by_get, set_mirrors, translate_column_op, translate_create,
};
use super::parse::Cmd;
use super::schema::{is_map, match_name, parse_column, parse_table, Table, BRIDGE_COLUMNS};
use super::{fail, Fail};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

/// Bridges and their ports, as the commands so far would leave them, and
/// the mirrors and row references (`--id`) of the commands.
#[derive(Debug, Default)]
pub(crate) struct State {
    pub(crate) bridges: BTreeSet<String>,
    /// port -> bridge
    pub(crate) ports: BTreeMap<String, String>,
    pub(crate) ids: Ids,
}

impl State {
    pub(crate) fn from_show(show: &Value) -> State {
        let mut s = State::default();
        for b in show["bridges"].as_array().into_iter().flatten() {
            let Some(name) = b["name"].as_str() else {
                continue;
            };
            s.bridges.insert(name.to_string());
            for p in b["ports"].as_array().into_iter().flatten() {
                if let Some(pn) = p["name"].as_str().filter(|pn| *pn != name) {
                    s.ports.insert(pn.to_string(), name.to_string());
                }
            }
        }
        s
    }

    /// Adds the mirrors of vswctl's `list-mirrors` JSON.
    pub(crate) fn with_mirrors(mut self, list: &Value) -> State {
        self.ids = Ids::from_list(list);
        self
    }

    /// Follows a command that the daemon will check itself.
    pub(crate) fn apply(&mut self, c: &Cmd) {
        match (c.name.as_str(), c.args.as_slice()) {
            ("add-br", [b, ..]) => {
                self.bridges.insert(b.clone());
            }
            ("del-br", [b]) => {
                self.bridges.remove(b);
                self.ports.retain(|_, owner| owner != b);
            }
            ("add-port", [b, p, ..]) => {
                self.ports.insert(p.clone(), b.clone());
            }
            ("del-port", [.., p]) => {
                self.ports.remove(p);
            }
            _ => {}
        }
    }

    pub(crate) fn check_row(&self, table: Table, record: &str) -> Result<(), Fail> {
        let exists = match table {
            Table::Bridge => self.bridges.contains(record),
            Table::Port | Table::Interface => {
                if self.bridges.contains(record) && !self.ports.contains_key(record) {
                    return fail(format!(
                        "{record} is the local port of bridge {record}; vswitch keeps no {} record for it",
                        table.name()
                    ));
                }
                self.ports.contains_key(record)
            }
            Table::Mirror => self.ids.existing.iter().any(|m| m.name == record),
        };
        if exists {
            Ok(())
        } else {
            fail(format!("no row \"{record}\" in table {}", table.name()))
        }
    }
}

/// A `get` column: the column and the map key, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GetColumn {
    pub(crate) column: &'static str,
    pub(crate) key: Option<String>,
}

/// How to print one command's result.
#[derive(Debug)]
pub(crate) enum Print {
    Nothing,
    /// One line per string of a JSON list.
    Lines,
    /// One line: a JSON string.
    Line,
    /// `show`: vswctl's show JSON in ovs-vsctl's show format.
    Show,
    /// `create`: the UUID of the row made for `--id=@NAME`.
    Created {
        id: String,
    },
    /// `list` and `find`: records of `table`.
    Records {
        table: Table,
    },
    /// `get`: the record and the columns asked for.
    Get {
        table: Table,
        record: String,
        columns: Vec<GetColumn>,
    },
}

/// One command as it goes to the daemon (if at all) and how to print it.
pub(crate) struct Step {
    pub(crate) request: Option<Value>,
    pub(crate) print: Print,
}

fn request(args: Vec<String>, c: &Cmd) -> Option<Value> {
    Some(json!({"args": args, "may_exist": c.may_exist, "if_exists": c.if_exists}))
}

/// Checks `c` against `state` and makes its step.
pub(crate) fn translate(c: &Cmd, state: &mut State) -> Result<Step, Fail> {
    let mut args = vec![c.name.clone()];
    args.extend(c.args.iter().cloned());
    let step = match c.name.as_str() {
        "list-br" | "list-ports" => Step {
            request: request(args, c),
            print: Print::Lines,
        },
        "port-to-br" => Step {
            request: request(args, c),
            print: Print::Line,
        },
        "add-port" => {
            let mut out = vec![c.name.clone(), c.args[0].clone(), c.args[1].clone()];
            for s in &c.args[2..] {
                out.push(setting(Table::Port, s)?);
            }
            Step {
                request: request(out, c),
                print: Print::Nothing,
            }
        }
        "show" => Step {
            request: request(args, c),
            print: Print::Show,
        },
        "create" => translate_create(c, state)?,
        "add" | "remove" | "clear" => translate_column_op(c, state)?,
        "set" => translate_set(c, state)?,
        "get" => translate_get(c, state)?,
        "list" | "find" => {
            let table = parse_table(&c.args[0])?;
            let mut out = vec![c.name.clone(), table.name().to_ascii_lowercase()];
            out.extend(c.args[1..].iter().cloned());
            Step {
                request: request(out, c),
                print: Print::Records { table },
            }
        }
        _ => Step {
            request: request(args, c),
            print: Print::Nothing,
        },
    };
    state.apply(c);
    Ok(step)
}

fn translate_set(c: &Cmd, state: &mut State) -> Result<Step, Fail> {
    let table = parse_table(&c.args[0])?;
    let record = &c.args[1];
    if table == Table::Mirror {
        return fail(
            "set of Mirror columns is not supported by vswitch; remove the mirror from its bridge's mirrors and create it again",
        );
    }
    let mut out = vec![
        "set".to_string(),
        table.vswctl().to_string(),
        record.clone(),
    ];
    for s in &c.args[2..] {
        if table == Table::Bridge {
            if let Some((lhs, v)) = s.split_once('=') {
                let col = lhs.split_once(':').map_or(lhs, |(c, _)| c);
                if bridge_mirrors_column("set", col).is_ok() {
                    if col != lhs {
                        return fail("cannot specify key to set for non-map column mirrors");
                    }
                    set_mirrors(state, record, v)?;
                    continue;
                }
            }
            if let Some(v) = datapath_type(s)? {
                if !v.is_empty() && v != "netdev" {
                    return fail(format!(
                        "datapath_type \"{v}\" is not supported: vswitch bridges are userspace (netdev) bridges"
                    ));
                }
                continue;
            }
        }
        out.push(setting(table, s)?);
    }
    state.check_row(table, record)?;
    let request = (out.len() > 3).then(|| json!({"args": out}));
    Ok(Step {
        request,
        print: Print::Nothing,
    })
}

/// The value of a `datapath_type=VALUE` setting; None for other columns.
fn datapath_type(s: &str) -> Result<Option<String>, Fail> {
    let Some((lhs, v)) = s.split_once('=') else {
        return Ok(None);
    };
    match match_name(BRIDGE_COLUMNS, lhs) {
        Ok(Some("datapath_type")) => Ok(Some(unquote(v)?)),
        _ => Ok(None),
    }
}

/// `COLUMN[:KEY]=VALUE` split into its parts, with OVS's message when the
/// value is missing.
pub(crate) fn split_setting(s: &str) -> Result<(&str, Option<&str>, &str), Fail> {
    let no_value = || Fail {
        message: format!("{s}: argument does not end in \"=\" followed by a value."),
        code: 1,
    };
    let (lhs, value) = s.split_once('=').ok_or_else(no_value)?;
    if value.is_empty() {
        return Err(no_value());
    }
    Ok(match lhs.split_once(':') {
        Some((c, k)) => (c, Some(k), value),
        None => (lhs, None, value),
    })
}

/// The elements of a set as typed: `a`, `[a,b]` or `[]`, trimmed.
pub(crate) fn set_elements(value: &str) -> impl Iterator<Item = &str> {
    let v = value.trim();
    v.strip_prefix('[')
        .and_then(|x| x.strip_suffix(']'))
        .unwrap_or(v)
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
}

/// Checks a `COLUMN[:KEY]=VALUE` argument for `table` and writes it the way
/// vswctl takes it.
pub(crate) fn setting(table: Table, s: &str) -> Result<String, Fail> {
    let (col, key, value) = split_setting(s)?;
    let column = parse_column(table, col)?;
    if column == "name" {
        return fail("renaming a record (name=...) is not supported by vswitch");
    }
    if is_map(column) {
        let Some(key) = key else {
            return fail(format!(
                "setting a whole map ({column}={value}) is not supported by vswitch; set keys one at a time: {column}:KEY=VALUE"
            ));
        };
        if key.is_empty() {
            return fail(
                "An empty string is not valid as input; use \"\" to represent the empty string",
            );
        }
        return Ok(format!("{column}:{}={}", unquote(key)?, unquote(value)?));
    }
    if key.is_some() {
        return fail(format!(
            "cannot specify key to set for non-map column {column}"
        ));
    }
    let value = unquote(value)?;
    match column {
        "tag" if value != "[]" => {
            check_int_range(&value, 0, 4095)?;
        }
        "trunks" => {
            for v in set_elements(&value) {
                check_int_range(v, 0, 4095)?;
            }
        }
        "vlan_mode" if value != "[]" => {
            const MODES: [&str; 5] = [
                "access",
                "dot1q-tunnel",
                "native-tagged",
                "native-untagged",
                "trunk",
            ];
            if !MODES.contains(&value.as_str()) {
                return fail(format!(
                    "constraint violation: {value} is not one of the allowed values ([{}])",
                    MODES.join(", ")
                ));
            }
        }
        _ => {}
    }
    Ok(format!("{column}={value}"))
}

/// Checks that `v` is an integer in `lo..=hi`, with OVS's messages.
pub(crate) fn check_int_range(v: &str, lo: i64, hi: i64) -> Result<(), Fail> {
    let n: i64 = v.parse().map_err(|_| Fail {
        message: format!("\"{v}\" is not a valid integer or range"),
        code: 1,
    })?;
    if n < lo || n > hi {
        return fail(format!(
            "constraint violation: {n} is not in the valid range {lo} to {hi} (inclusive)"
        ));
    }
    Ok(())
}

/// A value as ovs-vsctl reads it: a JSON-style quoted string, or as is.
pub(crate) fn unquote(v: &str) -> Result<String, Fail> {
    if v.len() >= 2 && v.starts_with('"') && v.ends_with('"') {
        return serde_json::from_str::<String>(v).map_err(|e| Fail {
            message: format!("{v}: not a valid quoted string: {e}"),
            code: 1,
        });
    }
    Ok(v.to_string())
}

fn translate_get(c: &Cmd, state: &mut State) -> Result<Step, Fail> {
    let table = parse_table(&c.args[0])?;
    let record = c.args[1].clone();
    if table == Table::Mirror || c.id.is_some() {
        define_by_get(c, table, state)?;
        if table == Table::Mirror {
            return Ok(Step {
                request: None,
                print: Print::Nothing,
            });
        }
    }
    let mut columns = Vec::new();
    let mut asked = Vec::new();
    for a in &c.args[2..] {
        let (col, key) = match a.split_once(':') {
            Some((c, k)) => (c, Some(k)),
            None => (a.as_str(), None),
        };
        let column = parse_column(table, col)?;
        if key.is_some() && !is_map(column) {
            return fail(format!(
                "cannot specify key to get for non-map column {column}"
            ));
        }
        let key =
            match key {
                Some("") => return fail(
                    "An empty string is not valid as input; use \"\" to represent the empty string",
                ),
                Some(k) => Some(unquote(k)?),
                None => None,
            };
        if !matches!(column, "name" | "datapath_type") && !asked.contains(&column) {
            asked.push(column);
        }
        columns.push(GetColumn { column, key });
    }
    state.check_row(table, &record)?;
    let request = (!asked.is_empty()).then(|| {
        let mut args = vec![
            "get".to_string(),
            table.vswctl().to_string(),
            record.clone(),
        ];
        args.extend(asked.iter().map(|c| c.to_string()));
        json!({ "args": args })
    });
    Ok(Step {
        request,
        print: Print::Get {
            table,
            record,
            columns,
        },
    })
}

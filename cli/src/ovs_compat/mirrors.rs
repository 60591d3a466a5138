//! The commands of mirrors the Open vSwitch way: `--id=@NAME create Mirror
//! COLUMN=VALUE...`, `--id=@NAME get TABLE RECORD`, and `set`/`add`/
//! `remove`/`clear` of Bridge's `mirrors` column. They check their
//! arguments and record what they do in `ids::Ids`, which makes the vswctl
//! commands at the end.

use super::ids::{ref_set, Sym};
use super::parse::Cmd;
use super::schema::{match_name, parse_column, parse_table, Table, BRIDGE_COLUMNS};
use super::translate::{check_int_range, unquote, Print, State, Step};
use super::{fail, Fail};

/// A Mirror row made by `create`, its port columns still as `@NAME`s.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct NewMirror {
    pub(crate) name: String,
    pub(crate) select_all: bool,
    pub(crate) select_src_port: Vec<String>,
    pub(crate) select_dst_port: Vec<String>,
    pub(crate) select_vlan: Vec<String>,
    pub(crate) output_port: Option<String>,
    pub(crate) output_vlan: Option<String>,
}

impl NewMirror {
    /// vswctl's `add-mirror` words, with the references resolved to ports.
    pub(crate) fn words(&self, ids: &super::ids::Ids) -> Result<Vec<String>, Fail> {
        let ports = |refs: &[String], column: &str| -> Result<Vec<String>, Fail> {
            refs.iter().map(|r| ids.port_of(r, column)).collect()
        };
        let mut w = Vec::new();
        let src = ports(&self.select_src_port, "select_src_port")?;
        if !src.is_empty() {
            w.push(format!("select-src={}", src.join(",")));
        }
        let dst = ports(&self.select_dst_port, "select_dst_port")?;
        if !dst.is_empty() {
            w.push(format!("select-dst={}", dst.join(",")));
        }
        if !self.select_vlan.is_empty() {
            w.push(format!("select-vlan={}", self.select_vlan.join(",")));
        }
        if self.select_all {
            w.push("select-all".into());
        }
        if let Some(r) = &self.output_port {
            w.push(format!("output={}", ids.port_of(r, "output_port")?));
        }
        if let Some(v) = &self.output_vlan {
            w.push(format!("output-vlan={v}"));
        }
        Ok(w)
    }
}

/// `create TABLE COLUMN[:KEY]=VALUE...`: Mirror rows only, with `--id`.
pub(crate) fn translate_create(c: &Cmd, state: &mut State) -> Result<Step, Fail> {
    let table = parse_table(&c.args[0])?;
    if table != Table::Mirror {
        return fail(format!(
            "create of {} rows is not supported by vswitch (only Mirror); use add-br and add-port for bridges and ports",
            table.name()
        ));
    }
    let Some(id) = c.id.clone() else {
        return fail(
            "create Mirror without --id=@NAME has no effect (Open vSwitch drops an unreferenced Mirror row); use -- --id=@m create Mirror ... -- add Bridge BRIDGE mirrors @m",
        );
    };
    let mut m = NewMirror::default();
    for s in &c.args[1..] {
        set_column(&mut m, s, state)?;
    }
    if m.name.is_empty() {
        return fail("create Mirror: vswitch mirrors are known by name; give one with name=NAME");
    }
    state.ids.define_created(&id, m)?;
    Ok(Step {
        request: None,
        print: Print::Created { id },
    })
}

/// One `COLUMN=VALUE` of `create Mirror`, with OVS's checks and messages.
fn set_column(m: &mut NewMirror, s: &str, state: &mut State) -> Result<(), Fail> {
    let (col, key, value) = super::translate::split_setting(s)?;
    let column = parse_column(Table::Mirror, col)?;
    if key.is_some() {
        return fail(format!(
            "cannot specify key to set for non-map column {column}"
        ));
    }
    let refs = |state: &mut State| -> Result<Vec<String>, Fail> {
        let r = ref_set(value)?;
        for x in &r {
            if !x.starts_with('@') {
                return fail(format!(
                    "{column}: vswitch takes Port references as @NAME (from --id=@NAME get Port PORT), not UUIDs"
                ));
            }
            state.ids.reference(x);
        }
        Ok(r)
    };
    match column {
        "name" => m.name = unquote(value)?,
        "select_all" => {
            m.select_all = match unquote(value)?.as_str() {
                "true" => true,
                "false" => false,
                v => {
                    return fail(format!(
                        "\"{v}\" is not a valid boolean (use \"true\" or \"false\")"
                    ))
                }
            }
        }
        "select_src_port" => m.select_src_port = refs(state)?,
        "select_dst_port" => m.select_dst_port = refs(state)?,
        "output_port" => {
            let r = refs(state)?;
            if r.len() > 1 {
                return fail("output_port holds at most one Port reference");
            }
            m.output_port = r.into_iter().next();
        }
        "select_vlan" => {
            m.select_vlan = int_set(value, 0, 4095)?;
        }
        "output_vlan" => {
            let v = int_set(value, 1, 4095)?;
            if v.len() > 1 {
                return fail("output_vlan holds at most one VLAN id");
            }
            m.output_vlan = v.into_iter().next();
        }
        other => {
            return fail(format!(
                "column {other} of table Mirror is not supported by vswitch"
            ))
        }
    }
    Ok(())
}

/// A set of integers as typed (`10`, `[10,20]`, `[]`), each in lo..=hi.
fn int_set(value: &str, lo: i64, hi: i64) -> Result<Vec<String>, Fail> {
    let mut out = Vec::new();
    for e in super::translate::set_elements(value) {
        check_int_range(e, lo, hi)?;
        out.push(e.to_string());
    }
    Ok(out)
}

/// `--id=@NAME get TABLE RECORD`: defines `@NAME` (the row must exist).
/// `get Mirror NAME` is supported with `--id` only, without columns.
pub(crate) fn define_by_get(c: &Cmd, table: Table, state: &mut State) -> Result<(), Fail> {
    let record = &c.args[1];
    let sym = if table == Table::Mirror {
        if c.args.len() > 2 {
            return fail(
                "get of Mirror columns is not supported by vswitch; use list Mirror NAME (or vswctl list-mirrors)",
            );
        }
        Sym::Existing(state.ids.find_existing(record)?)
    } else {
        state.check_row(table, record)?;
        Sym::Row {
            table,
            name: record.clone(),
        }
    };
    match &c.id {
        Some(id) => state.ids.define_get(id, sym),
        None => Ok(()),
    }
}

/// `add`, `remove` and `clear`: only the `mirrors` column of Bridge.
pub(crate) fn translate_column_op(c: &super::parse::Cmd, state: &mut State) -> Result<Step, Fail> {
    let table = super::schema::parse_table(&c.args[0])?;
    let record = &c.args[1];
    let columns: &[String] = if c.name == "clear" {
        &c.args[2..]
    } else {
        &c.args[2..3]
    };
    for col in columns {
        if table != Table::Bridge {
            return fail(format!(
                "\"{}\" is supported by vswitch for the mirrors column of table Bridge only, not table {}",
                c.name,
                table.name()
            ));
        }
        bridge_mirrors_column(&c.name, col)?;
    }
    state.check_row(table, record)?;
    let values: &[String] = if c.name == "clear" { &[] } else { &c.args[3..] };
    state.ids.change(&c.name, record, values)?;
    Ok(Step {
        request: None,
        print: Print::Nothing,
    })
}

/// `set Bridge BR mirrors=VALUE`.
pub(crate) fn set_mirrors(state: &mut State, bridge: &str, value: &str) -> Result<(), Fail> {
    state.check_row(Table::Bridge, bridge)?;
    state.ids.change("set", bridge, &[value.to_string()])
}

/// Checks that `given` names Bridge's `mirrors` column (for command `op`).
pub(crate) fn bridge_mirrors_column(op: &str, given: &str) -> Result<(), Fail> {
    match match_name(BRIDGE_COLUMNS, given) {
        Ok(Some("mirrors")) => Ok(()),
        Ok(Some(other)) => fail(format!(
            "\"{op}\" of column {other} of table Bridge is not supported by vswitch (only mirrors)"
        )),
        Ok(None) => fail(format!(
            "Bridge does not contain a column whose name matches \"{given}\""
        )),
        Err(all) => fail(format!(
            "Bridge contains more than one column whose name matches \"{given}\": {}",
            all.join(", ")
        )),
    }
}

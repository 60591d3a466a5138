//! `--id=@NAME` row references and the Bridge `mirrors` column, turned into
//! vswctl's `add-mirror`/`del-mirror` in the same request.
//!
//! Open vSwitch scripts make a mirror in three steps within one
//! transaction: name the ports (`--id=@p get Port p`), create the Mirror row
//! (`--id=@m create Mirror name=m select-src-port=@p output-port=@q`) and
//! put it into a bridge's `mirrors` column (`set`/`add Bridge br mirrors
//! @m`). `clear`/`remove` take mirrors out of the column. Here the commands
//! only record what they do; [`Ids::finish`] then compares each bridge's
//! final `mirrors` with the mirrors it has and makes the vswctl commands,
//! or fails with nothing changed.

use super::mirrors::NewMirror;
use super::schema::Table;
use super::translate::{unquote, State};
use super::{fail, Fail};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// A name-based UUID (RFC 9562 version 8) from `parts`: the same parts give
/// the same UUID on every run, so `create` and `show` print stable ids.
pub(crate) fn uuid_of(parts: &[&str]) -> String {
    // Two FNV-1a 64-bit hashes with different offsets, over the parts
    // separated by a byte no name contains.
    let hash = |offset: u64| -> u64 {
        let mut h = offset;
        for p in parts {
            for b in p.bytes().chain([0xff]) {
                h ^= u64::from(b);
                h = h.wrapping_mul(0x0000_0100_0000_01b3);
            }
        }
        // splitmix64's finalizer: every input bit moves every output bit.
        h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        h ^ (h >> 31)
    };
    let hi = (hash(0xcbf2_9ce4_8422_2325) & !0xf000) | 0x8000;
    let lo = (hash(0x6c62_272e_07bb_0142) & !(0b11 << 62)) | (0b10 << 62);
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        hi >> 32,
        (hi >> 16) & 0xffff,
        hi & 0xffff,
        lo >> 48,
        lo & 0xffff_ffff_ffff
    )
}

/// The UUID of the mirror `name` of bridge `bridge`.
pub(crate) fn mirror_uuid(bridge: &str, name: &str) -> String {
    uuid_of(&["Mirror", bridge, name])
}

/// True for the OVSDB UUID form (8-4-4-4-12 hex digits).
pub(crate) fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// A mirror the daemon has: its bridge, name and `add-mirror` words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ExistingMirror {
    pub(crate) bridge: String,
    pub(crate) name: String,
    pub(crate) words: Vec<String>,
}

/// What an `@NAME` stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Sym {
    /// Used by a command but not (yet) defined by `--id`.
    Referenced,
    /// `--id=@NAME get TABLE RECORD` of a Bridge, Port or Interface.
    Row { table: Table, name: String },
    /// `--id=@NAME get Mirror NAME`: an index into the existing mirrors.
    Existing(usize),
    /// `--id=@NAME create Mirror ...`: an index into the created mirrors.
    Created(usize),
}

/// One element of a bridge's `mirrors` column.
#[derive(Debug, Clone, PartialEq, Eq)]
enum MirrorRef {
    Existing(usize),
    Symbol(String),
}

/// The row references and mirror changes of one invocation.
#[derive(Debug, Default)]
pub(crate) struct Ids {
    pub(crate) existing: Vec<ExistingMirror>,
    pub(crate) symbols: BTreeMap<String, Sym>,
    pub(crate) created: Vec<NewMirror>,
    /// Bridges whose `mirrors` column the commands changed: what it holds.
    sets: BTreeMap<String, Vec<MirrorRef>>,
    /// Every `@NAME` given as a value of a `mirrors` column (also to
    /// `remove`): each must name a Mirror row.
    mirror_values: Vec<String>,
}

/// What [`Ids::finish`] adds to the request, and the UUIDs `create` prints
/// (by `@NAME`).
pub(crate) struct Finished {
    pub(crate) requests: Vec<Value>,
    pub(crate) uuids: BTreeMap<String, String>,
}

impl Ids {
    /// The mirrors of vswctl's `list-mirrors` JSON.
    pub(crate) fn from_list(list: &Value) -> Ids {
        let strings = |v: &Value| -> Vec<String> {
            v.as_array()
                .into_iter()
                .flatten()
                .map(|x| x.as_str().map_or_else(|| x.to_string(), String::from))
                .collect()
        };
        let mut existing = Vec::new();
        for m in list.as_array().into_iter().flatten() {
            let (Some(bridge), Some(name)) = (m["bridge"].as_str(), m["name"].as_str()) else {
                continue;
            };
            let mut words = Vec::new();
            for (col, word) in [
                ("select_src_port", "select-src"),
                ("select_dst_port", "select-dst"),
                ("select_vlan", "select-vlan"),
            ] {
                let v = strings(&m[col]);
                if !v.is_empty() {
                    words.push(format!("{word}={}", v.join(",")));
                }
            }
            if m["select_all"].as_bool() == Some(true) {
                words.push("select-all".into());
            }
            if let Some(p) = m["output_port"].as_str() {
                words.push(format!("output={p}"));
            }
            if let Some(v) = m["output_vlan"].as_u64() {
                words.push(format!("output-vlan={v}"));
            }
            existing.push(ExistingMirror {
                bridge: bridge.into(),
                name: name.into(),
                words,
            });
        }
        Ids {
            existing,
            ..Ids::default()
        }
    }

    /// Notes a use of `@name` (defined now or later).
    pub(crate) fn reference(&mut self, name: &str) {
        self.symbols
            .entry(name.to_string())
            .or_insert(Sym::Referenced);
    }

    /// `--id=@NAME` on `get`: the row exists; `@NAME` names it from now on.
    pub(crate) fn define_get(&mut self, id: &str, sym: Sym) -> Result<(), Fail> {
        check_id(id)?;
        match self.symbols.get(id) {
            None => {
                self.symbols.insert(id.to_string(), sym);
                Ok(())
            }
            Some(Sym::Referenced) => fail(format!(
                "row id \"{id}\" specified on \"get\" command was used before it was defined"
            )),
            Some(_) => fail(format!(
                "row id \"{id}\" may only be specified on one --id option"
            )),
        }
    }

    /// `--id=@NAME` on `create`: defines `@NAME` as the new mirror.
    pub(crate) fn define_created(&mut self, id: &str, m: NewMirror) -> Result<(), Fail> {
        check_id(id)?;
        match self.symbols.get(id) {
            None | Some(Sym::Referenced) => {
                self.created.push(m);
                self.symbols
                    .insert(id.to_string(), Sym::Created(self.created.len() - 1));
                Ok(())
            }
            Some(_) => fail(format!(
                "row id \"{id}\" may only be specified on one --id option"
            )),
        }
    }

    /// The existing mirror named `name` (`get Mirror NAME`).
    pub(crate) fn find_existing(&self, name: &str) -> Result<usize, Fail> {
        let hits: Vec<usize> = (0..self.existing.len())
            .filter(|i| self.existing[*i].name == name || mirror_uuid_of(self, *i) == name)
            .collect();
        match hits.as_slice() {
            [i] => Ok(*i),
            [] => fail(format!("no row \"{name}\" in table Mirror")),
            _ => fail(format!("multiple rows in Mirror match \"{name}\"")),
        }
    }

    fn current(&self, bridge: &str) -> Vec<MirrorRef> {
        match self.sets.get(bridge) {
            Some(s) => s.clone(),
            None => (0..self.existing.len())
                .filter(|i| self.existing[*i].bridge == bridge)
                .map(MirrorRef::Existing)
                .collect(),
        }
    }

    /// A set of mirror references as typed (`@m`, `[@a,@b]`, a UUID, `[]`).
    fn refs(&mut self, value: &str) -> Result<Vec<MirrorRef>, Fail> {
        let mut out = Vec::new();
        for r in ref_set(value)? {
            if r.starts_with('@') {
                self.reference(&r);
                self.mirror_values.push(r.clone());
                // A mirror named by `get` is that mirror, whatever it is
                // called; a created one is known at the end.
                match self.symbols.get(&r) {
                    Some(Sym::Existing(i)) => out.push(MirrorRef::Existing(*i)),
                    _ => out.push(MirrorRef::Symbol(r)),
                }
            } else {
                match (0..self.existing.len()).find(|i| mirror_uuid_of(self, *i) == r) {
                    Some(i) => out.push(MirrorRef::Existing(i)),
                    None => return fail(format!("no row with UUID {r} in table Mirror")),
                }
            }
        }
        Ok(out)
    }

    /// `set`/`add`/`remove`/`clear` of a bridge's `mirrors` column.
    pub(crate) fn change(&mut self, op: &str, bridge: &str, values: &[String]) -> Result<(), Fail> {
        let mut set = if op == "set" || op == "clear" {
            Vec::new()
        } else {
            self.current(bridge)
        };
        for v in values {
            for r in self.refs(v)? {
                if op == "remove" {
                    set.retain(|x| *x != r);
                } else if !set.contains(&r) {
                    set.push(r);
                }
            }
        }
        self.sets.insert(bridge.to_string(), set);
        Ok(())
    }

    /// Resolves `@name` used in `column` of `table` (`mirrors` of Bridge
    /// refers to Mirror rows, the Mirror columns to Port rows).
    fn resolve(&self, name: &str, column: &str, table: &str) -> Result<&Sym, Fail> {
        let wants = if column == "mirrors" {
            "Mirror"
        } else {
            "Port"
        };
        let sym = match self.symbols.get(name) {
            None | Some(Sym::Referenced) => return fail(never_created(name)),
            Some(s) => s,
        };
        let is = match sym {
            Sym::Row { table: t, .. } => t.name(),
            _ => "Mirror",
        };
        if is != wants {
            return fail(format!(
                "row id \"{name}\" is a {is} row, but column {column} of table {table} refers to {wants} rows"
            ));
        }
        Ok(sym)
    }

    /// The port named by `@name` in column `column` of a new mirror.
    pub(crate) fn port_of(&self, name: &str, column: &str) -> Result<String, Fail> {
        match self.resolve(name, column, "Mirror")? {
            Sym::Row { name: port, .. } => Ok(port.clone()),
            _ => fail(never_created(name)),
        }
    }

    /// Checks every reference and makes the `del-mirror`/`add-mirror`
    /// commands that give each changed bridge its final `mirrors`.
    pub(crate) fn finish(&self, state: &State) -> Result<Finished, Fail> {
        if let Some((name, _)) = self.symbols.iter().find(|(_, s)| **s == Sym::Referenced) {
            return fail(never_created(name));
        }
        for name in &self.mirror_values {
            self.resolve(name, "mirrors", "Bridge")?;
        }
        let mut placed_new: Vec<Vec<&str>> = vec![Vec::new(); self.created.len()];
        let mut placed_old: Vec<Vec<&str>> = vec![Vec::new(); self.existing.len()];
        for (bridge, set) in &self.sets {
            for r in set {
                let target = match r {
                    MirrorRef::Existing(i) => &mut placed_old[*i],
                    MirrorRef::Symbol(s) => match self.resolve(s, "mirrors", "Bridge")? {
                        Sym::Existing(i) => &mut placed_old[*i],
                        Sym::Created(i) => &mut placed_new[*i],
                        _ => return fail(never_created(s)),
                    },
                };
                if !target.contains(&bridge.as_str()) {
                    target.push(bridge);
                }
            }
        }
        let mut dels = Vec::new();
        let mut adds = Vec::new();
        let mut uuids = BTreeMap::new();
        for (m, on) in self.existing.iter().zip(&placed_old) {
            let touched = self.sets.contains_key(&m.bridge);
            match on.as_slice() {
                [] if !touched => {}
                [b] if *b == m.bridge => {}
                [] => dels.push((m.bridge.as_str(), m.name.as_str())),
                [b] if touched => {
                    dels.push((m.bridge.as_str(), m.name.as_str()));
                    adds.push((*b, m.name.as_str(), m.words.clone()));
                }
                _ => {
                    return fail(format!(
                        "mirror {} (of bridge {}) would be in the mirrors of several bridges; a vswitch mirror belongs to one bridge",
                        m.name, m.bridge
                    ))
                }
            }
        }
        for (id, sym) in &self.symbols {
            let Sym::Created(i) = sym else { continue };
            let m = &self.created[*i];
            match placed_new[*i].as_slice() {
                [b] => {
                    uuids.insert(id.clone(), mirror_uuid(b, &m.name));
                    adds.push((*b, m.name.as_str(), m.words(self)?));
                }
                [] => {
                    return fail(format!(
                        "row id \"{id}\" was created but no reference to it was inserted, so it will not actually appear in the database; vswitch refuses this (Open vSwitch would drop the new Mirror row): put it into a bridge's mirrors, e.g. -- add Bridge BRIDGE mirrors {id}"
                    ))
                }
                several => {
                    return fail(format!(
                        "row id \"{id}\" would be in the mirrors of bridges {}; a vswitch mirror belongs to one bridge",
                        several.join(", ")
                    ))
                }
            }
        }
        let mut requests = Vec::new();
        for (b, name) in dels {
            if state.bridges.contains(b) {
                requests.push(json!({"args": ["del-mirror", b, name], "if_exists": true}));
            }
        }
        for (b, name, words) in adds {
            let mut args = vec!["add-mirror".to_string(), b.to_string(), name.to_string()];
            args.extend(words);
            requests.push(json!({ "args": args }));
        }
        Ok(Finished { requests, uuids })
    }
}

fn never_created(name: &str) -> String {
    format!("row id \"{name}\" is referenced but never created (e.g. with \"-- --id={name} create ...\")")
}

fn mirror_uuid_of(ids: &Ids, i: usize) -> String {
    mirror_uuid(&ids.existing[i].bridge, &ids.existing[i].name)
}

/// A row id must begin with `@` (OVS's `--id=UUID` is not supported).
fn check_id(id: &str) -> Result<(), Fail> {
    if id.starts_with('@') {
        Ok(())
    } else if is_uuid(id) {
        fail("--id=UUID (a new row with a chosen UUID) is not supported by vswitch; use --id=@NAME")
    } else {
        fail(format!("row id \"{id}\" does not begin with \"@\""))
    }
}

/// The elements of a set of references as typed: `@a`, `[@a,@b]`, `[]`,
/// or UUIDs; anything else is OVS's "not a valid UUID".
pub(crate) fn ref_set(value: &str) -> Result<Vec<String>, Fail> {
    let mut out = Vec::new();
    for e in super::translate::set_elements(value) {
        let e = unquote(e)?;
        let is_ref = e.len() > 1 && e.starts_with('@');
        if !is_ref && !is_uuid(&e) {
            return fail(format!("\"{e}\" is not a valid UUID"));
        }
        out.push(e);
    }
    Ok(out)
}

//! Unit tests of mirrors made with `--id=@NAME`, `create Mirror` and the
//! Bridge `mirrors` column: the vswctl commands they become, and errors.

use super::{cmds, err};
use crate::ovs_compat::translate::{self, State};
use crate::ovs_compat::{ids, Fail};
use serde_json::{json, Value};

/// A switch with bridge br0 (ports p1, p2, p3) and br1 (port q1); br0 has
/// mirror old (select-src=p1, output=p3).
fn mirror_state() -> State {
    let show = json!({"bridges": [
        {"name": "br0", "ports": [{"name": "br0"}, {"name": "p1"}, {"name": "p2"}, {"name": "p3"}]},
        {"name": "br1", "ports": [{"name": "br1"}, {"name": "q1"}]},
    ]});
    let mirrors = json!([{"bridge": "br0", "name": "old", "select_all": false,
        "select_src_port": ["p1"], "select_dst_port": [], "select_vlan": [],
        "output_port": "p3", "output_vlan": null}]);
    State::from_show(&show).with_mirrors(&mirrors)
}

/// The vswctl commands (args only) and the printed UUIDs of `line`, split
/// on spaces as a shell would.
fn plan(line: &str) -> Result<(Vec<Vec<String>>, Vec<String>), Fail> {
    let mut st = mirror_state();
    let mut steps = Vec::new();
    for c in cmds(line)? {
        steps.push(translate::translate(&c, &mut st)?);
    }
    let done = st.ids.finish(&st)?;
    let args = |r: &Value| -> Vec<String> {
        r["args"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|a| a.as_str().map(String::from))
            .collect()
    };
    let mut out: Vec<Vec<String>> = steps
        .iter()
        .filter_map(|s| s.request.as_ref())
        .map(args)
        .collect();
    out.extend(done.requests.iter().map(args));
    let uuids = steps
        .iter()
        .filter_map(|s| match &s.print {
            translate::Print::Created { id } => done.uuids.get(id).cloned(),
            _ => None,
        })
        .collect();
    Ok((out, uuids))
}

fn words(s: &str) -> Vec<String> {
    s.split_whitespace().map(String::from).collect()
}

#[test]
fn mirror_scripts_become_add_mirror() {
    let (reqs, uuids) = plan(
        "-- set Bridge br0 mirrors=@m -- --id=@p1 get Port p1 -- --id=@p2 get Port p2 \
         -- --id=@m create Mirror name=m0 select-dst-port=@p1 select-src-port=@p1 output-port=@p2",
    )
    .unwrap();
    // `set` replaces the column: the mirror br0 had goes.
    assert_eq!(
        reqs,
        vec![
            words("del-mirror br0 old"),
            words("add-mirror br0 m0 select-src=p1 select-dst=p1 output=p2"),
        ]
    );
    assert_eq!(uuids, vec![ids::mirror_uuid("br0", "m0")]);
    assert!(ids::is_uuid(&uuids[0]), "{}", uuids[0]);
    let (reqs, uuids) = plan(
        "-- --id=@m create Mirror name=m1 select-all=true output-vlan=10 -- add Bridge br0 mirrors @m",
    )
    .unwrap();
    assert_eq!(
        reqs,
        vec![words("add-mirror br0 m1 select-all output-vlan=10")]
    );
    assert_eq!(uuids.len(), 1);
    let (reqs, _) = plan(
        "--id=@a get Port p1 -- --id=@m create Mirror name=v select_vlan=[10,20] select_src_port=[@a] output_vlan=5 -- add Bridge br0 mirrors [@m]",
    )
    .unwrap();
    assert_eq!(
        reqs,
        vec![words(
            "add-mirror br0 v select-src=p1 select-vlan=10,20 output-vlan=5"
        )]
    );
}

#[test]
fn mirrors_leave_with_clear_and_remove() {
    assert_eq!(
        plan("clear Bridge br0 mirrors").unwrap().0,
        vec![words("del-mirror br0 old")]
    );
    assert_eq!(
        plan("-- --id=@m get Mirror old -- remove Bridge br0 mirrors @m")
            .unwrap()
            .0,
        vec![words("del-mirror br0 old")]
    );
    let u = ids::mirror_uuid("br0", "old");
    assert_eq!(
        plan(&format!("remove Bridge br0 mirrors {u}")).unwrap().0,
        vec![words("del-mirror br0 old")]
    );
    // Nothing to do: br1 has no mirrors; br0 keeps its own.
    assert!(plan("clear Bridge br1 mirrors").unwrap().0.is_empty());
    assert!(plan("--id=@m get Mirror old -- add Bridge br0 mirrors @m")
        .unwrap()
        .0
        .is_empty());
    // Moved to another bridge: deleted here, made there.
    assert_eq!(
        plan("--id=@m get Mirror old -- clear Bridge br0 mirrors -- add Bridge br1 mirrors @m")
            .unwrap()
            .0,
        vec![
            words("del-mirror br0 old"),
            words("add-mirror br1 old select-src=p1 output=p3")
        ]
    );
}

#[test]
fn mirror_script_errors_read_like_ovs() {
    let e = |s: &str| plan(s).unwrap_err().message;
    assert!(
        e("--id=@m create Mirror name=m0 select-all=true output-vlan=10")
            .starts_with("row id \"@m\" was created but no reference to it was inserted")
    );
    assert!(e("create Mirror name=m0 select-all=true").contains("--id=@NAME"));
    assert_eq!(
        e("add Bridge br0 mirrors @m"),
        "row id \"@m\" is referenced but never created (e.g. with \"-- --id=@m create ...\")"
    );
    assert_eq!(
        e("--id=@m create Mirror name=m0 colour=red -- add Bridge br0 mirrors @m"),
        "Mirror does not contain a column whose name matches \"colour\""
    );
    assert!(
        e("--id=@m create Mirror name=m0 snaplen=100 -- add Bridge br0 mirrors @m")
            .contains("not supported")
    );
    assert!(e("--id=@m create Bridge name=x").contains("not supported"));
    assert_eq!(
        e("--id=@m create Mirror name=m select-all=yes -- add Bridge br0 mirrors @m"),
        "\"yes\" is not a valid boolean (use \"true\" or \"false\")"
    );
    assert_eq!(
        e("--id=@m create Mirror name=m output-vlan=0 -- add Bridge br0 mirrors @m"),
        "constraint violation: 0 is not in the valid range 1 to 4095 (inclusive)"
    );
    assert_eq!(
        e("--id=@m create Mirror name=m select-src-port=p1 -- add Bridge br0 mirrors @m"),
        "\"p1\" is not a valid UUID"
    );
    assert_eq!(
        e("--id=m create Mirror name=m"),
        "row id \"m\" does not begin with \"@\""
    );
    assert_eq!(
        e("add Bridge br0 mirrors @p -- --id=@p get Port p1"),
        "row id \"@p\" specified on \"get\" command was used before it was defined"
    );
    assert_eq!(
        e("--id=@p get Port p1 -- --id=@p get Port p2"),
        "row id \"@p\" may only be specified on one --id option"
    );
    assert_eq!(
        e("--id=@p get Port p1 -- add Bridge br0 mirrors @p"),
        "row id \"@p\" is a Port row, but column mirrors of table Bridge refers to Mirror rows"
    );
    assert_eq!(
        e("--id=@p get Port p1 -- remove Bridge br0 mirrors @p"),
        "row id \"@p\" is a Port row, but column mirrors of table Bridge refers to Mirror rows"
    );
    assert_eq!(
        e("--id=@m get Mirror nope"),
        "no row \"nope\" in table Mirror"
    );
    assert_eq!(
        e("clear Bridge nobr mirrors"),
        "no row \"nobr\" in table Bridge"
    );
    assert!(e("clear Bridge br0 external_ids").contains("only mirrors"));
    assert!(e("add Port p1 trunks 10").contains("Bridge only"));
    assert!(e("set Mirror old select_all=true").contains("not supported"));
    assert_eq!(
        err("--id=@m list-br"),
        "'list-br' command has no '--id' option"
    );
    assert_eq!(
        err("--id create Mirror name=m"),
        "missing argument to '--id' option on 'create' command"
    );
    assert!(e(
        "--id=@m create Mirror name=m select-all=true output-vlan=9 -- add Bridge br0 mirrors @m -- add Bridge br1 mirrors @m"
    )
    .contains("one bridge"));
}

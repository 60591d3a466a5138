//! A database, run directory or control socket prepared by someone hostile
//! or careless: vswitchd refuses to start on a bad database, says what is
//! wrong and where, and leaves the file as it was; it never follows a
//! symlink planted as its pid file or as its database's temporary file; it
//! refuses a run directory others can write or own; and its database is
//! 0600 and its control socket 0660 (group from `--socket-group`).

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::PathBuf;

use serde_json::json;
use tests::{names, Daemon, DaemonOptions};

/// A fresh run directory, as the harness makes one (mode 0755).
fn new_rundir() -> PathBuf {
    let d = std::env::temp_dir().join(names::unique("d"));
    fs::create_dir_all(&d).unwrap();
    d
}

/// A daemon in `rundir` (not started), with `extra` arguments.
fn daemon_in(rundir: PathBuf, extra: &[&str]) -> Daemon {
    let opts = DaemonOptions {
        extra_args: extra.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    };
    Daemon::unstarted_in(rundir, opts).unwrap()
}

/// Starts a daemon that must refuse to start; returns its error with the log.
fn refused(d: &mut Daemon, what: &str) -> String {
    match d.try_spawn() {
        Ok(()) => panic!("vswitchd started with {what}; it must refuse"),
        Err(e) => e,
    }
}

/// A victim file outside the run directory, and its content.
fn victim() -> (PathBuf, PathBuf, &'static str) {
    let dir = new_rundir();
    let file = dir.join("victim");
    let content = "a file root must not overwrite\n";
    fs::write(&file, content).unwrap();
    (dir, file, content)
}

#[test]
fn each_bad_database_refuses_to_start_says_where_and_is_left_unchanged() {
    let (b0, b1, p1, p2) = (
        names::unique("br"),
        names::unique("br"),
        names::unique("p"),
        names::unique("p"),
    );
    let port = |fields: serde_json::Value| {
        json!({"schema": 1, "bridges": {&b0: {"ports": {&p1: fields}}}}).to_string()
    };
    let at = format!("bridges.{b0}.ports.{p1}");
    let cases: Vec<(String, String)> = vec![
        (
            "{}".into(),
            "neither \"schema\" nor \"bridges\" is there: this is not a vswitchd database"
                .into(),
        ),
        ("[]".into(), "the file holds an array".into()),
        (
            r#"{"bridgez":{}}"#.into(),
            "bridgez: unknown field `bridgez`".into(),
        ),
        (
            json!({"schema": 2, "bridges": {}}).to_string(),
            "schema: version 2 is newer than this vswitchd knows (1)".into(),
        ),
        (
            json!({"schema": 1, "bridges": {&b0: {"colour": "red"}}}).to_string(),
            format!("bridges.{b0}.colour: unknown field `colour`"),
        ),
        (
            port(json!({"vlan": 5})),
            format!("{at}.vlan: unknown field `vlan`"),
        ),
        (
            port(json!({"tag": 5000})),
            format!("{at}.tag: 5000 is not a VLAN id (0 to 4095)"),
        ),
        (
            port(json!({"trunks": [10, 4096]})),
            format!("{at}.trunks: 4096 is not a VLAN id"),
        ),
        (
            port(json!({"type": "warp"})),
            format!("{at}.type: \"warp\" is not supported"),
        ),
        (
            port(json!({"vlan_mode": "sideways"})),
            format!("{at}.vlan_mode: \"sideways\" is not one of"),
        ),
        (
            port(json!({"type": "vxlan", "options": {"remote_ip": "192.0.2.1", "key": "99999999"}})),
            format!("{at}: options:key 99999999 is out of range"),
        ),
        (
            json!({"schema": 1, "bridges": {&b0: {"ports": {&p1: {"ofport": 7}, &p2: {"ofport": 7}}}}})
                .to_string(),
            format!(
                "bridges.{b0}.ports.{}.ofport: 7 is already the number of bridges.{b0}.ports.{}",
                p1.clone().max(p2.clone()),
                p1.clone().min(p2.clone())
            ),
        ),
        (
            json!({"schema": 1, "bridges": {&b0: {"ports": {&p1: {}}}, &b1: {"ports": {&p1: {}}}}})
                .to_string(),
            format!(
                "bridges.{}.ports.{p1}: the name {p1} is already used by bridges.{}.ports.{p1}",
                b0.clone().max(b1.clone()),
                b0.clone().min(b1.clone())
            ),
        ),
        (
            json!({"schema": 1, "bridges": {&b0: {"ports": {&b1: {}}}, &b1: {}}}).to_string(),
            if b0 < b1 {
                format!("bridges.{b1}: the name {b1} is already used by bridges.{b0}.ports.{b1}")
            } else {
                format!("bridges.{b0}.ports.{b1}: the name {b1} is already used by bridges.{b1}")
            },
        ),
        (
            json!({"schema": 1, "bridges": {&b0: {"other_config": {"mac-table-size": "1000000000000"}}}})
                .to_string(),
            format!("bridges.{b0}: other_config:mac-table-size \"1000000000000\" must be an integer from 1 to 1000000"),
        ),
        (
            json!({"schema": 1, "bridges": {&b0: {"other_config": {"mac-table-size": "0"}}}})
                .to_string(),
            format!("bridges.{b0}: other_config:mac-table-size \"0\""),
        ),
    ];
    for (db, needle) in cases {
        let mut d = daemon_in(new_rundir(), &[]);
        fs::write(d.db(), &db).unwrap();
        let e = refused(&mut d, &format!("the database {db}"));
        let said = format!("vswitchd: {}: {needle}", d.db().display());
        assert!(
            e.contains(&said),
            "for the database {db} vswitchd must say {said:?}, it said:\n{e}"
        );
        assert_eq!(
            fs::read_to_string(d.db()).unwrap(),
            db,
            "vswitchd changed the database it refused"
        );
    }
}

#[test]
fn a_database_without_a_schema_version_loads_and_gets_one_on_the_next_store() {
    let (b0, b1) = (names::unique("br"), names::unique("br"));
    let mut d = daemon_in(new_rundir(), &[]);
    fs::write(
        d.db(),
        json!({"version": 3, "bridges": {&b0: {"ofport": 1}}}).to_string(),
    )
    .unwrap();
    d.try_spawn().unwrap();
    assert_eq!(d.vsctl_ok(&["list-br"]).trim(), b0);
    d.vsctl_ok(&["add-br", &b1]);
    let stored: serde_json::Value = serde_json::from_slice(&fs::read(d.db()).unwrap()).unwrap();
    assert_eq!(stored["schema"], 1, "{stored:#}");
    assert_eq!(stored["version"], 4, "{stored:#}");
}

#[test]
fn a_symlink_planted_as_the_pid_file_is_not_followed() {
    let (vdir, file, content) = victim();
    let rundir = new_rundir();
    std::os::unix::fs::symlink(&file, rundir.join("vswitchd.pid")).unwrap();
    let mut d = daemon_in(rundir, &[]);
    let e = refused(&mut d, "a symlinked pid file");
    assert!(
        e.contains("vswitchd.pid: is a symbolic link, which vswitchd does not follow"),
        "{e}"
    );
    assert_eq!(fs::read_to_string(&file).unwrap(), content);
    fs::remove_dir_all(vdir).unwrap();
}

#[test]
fn a_symlink_planted_as_the_temporary_database_file_is_not_followed() {
    let (vdir, file, content) = victim();
    let rundir = new_rundir();
    let tmp = rundir.join("conf.db.tmp");
    std::os::unix::fs::symlink(&file, &tmp).unwrap();
    let mut d = daemon_in(rundir, &[]);
    d.try_spawn().unwrap();
    let br = names::unique("br");
    d.vsctl_ok(&["add-br", &br]);
    assert_eq!(
        fs::read_to_string(&file).unwrap(),
        content,
        "the store wrote through the planted symlink"
    );
    let meta = fs::symlink_metadata(d.db()).unwrap();
    assert!(meta.is_file(), "the database is not a plain file");
    assert!(fs::read_to_string(d.db()).unwrap().contains(&br));
    assert!(!tmp.exists(), "the temporary file was left behind");
    fs::remove_dir_all(vdir).unwrap();
}

#[test]
fn a_run_directory_others_can_write_or_own_is_refused() {
    let rundir = new_rundir();
    fs::set_permissions(&rundir, fs::Permissions::from_mode(0o777)).unwrap();
    let mut d = daemon_in(rundir.clone(), &[]);
    let e = refused(&mut d, "a world-writable run directory");
    assert!(
        e.contains(&format!(
            "run directory {} is writable by others (mode 0777)",
            rundir.display()
        )),
        "{e}"
    );
    assert!(!d.socket_path().exists());

    let rundir = new_rundir();
    std::os::unix::fs::chown(&rundir, Some(65534), None).unwrap();
    let mut d = daemon_in(rundir.clone(), &[]);
    let e = refused(&mut d, "a run directory owned by another user");
    assert!(
        e.contains(&format!(
            "run directory {} belongs to uid 65534",
            rundir.display()
        )),
        "{e}"
    );
}

/// A group of this machine other than root's: (name, gid).
fn some_group() -> (String, u32) {
    let groups = fs::read_to_string("/etc/group").unwrap();
    groups
        .lines()
        .filter_map(|l| {
            let mut f = l.split(':');
            let name = f.next()?;
            let gid = f.nth(1)?.parse().ok()?;
            Some((name.to_string(), gid))
        })
        .find(|(_, gid)| *gid != 0)
        .expect("/etc/group has a group other than root")
}

#[test]
fn database_is_0600_and_socket_0660_with_the_group_given() {
    let (group, gid) = some_group();
    let mut d = daemon_in(new_rundir(), &["--socket-group", &group]);
    d.try_spawn().unwrap();
    d.vsctl_ok(&["add-br", &names::unique("br")]);
    let db = fs::metadata(d.db()).unwrap();
    assert_eq!(db.mode() & 0o7777, 0o600, "database mode {:o}", db.mode());
    let sock = fs::metadata(d.socket_path()).unwrap();
    assert_eq!(sock.mode() & 0o7777, 0o660, "socket mode {:o}", sock.mode());
    assert_eq!(sock.gid(), gid, "socket group");

    let mut d = daemon_in(new_rundir(), &["--socket-group", "no-such-group-here"]);
    let e = refused(&mut d, "an unknown socket group");
    assert!(
        e.contains("--socket-group: there is no group named no-such-group-here"),
        "{e}"
    );
}

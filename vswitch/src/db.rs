//! The configuration database: one JSON file, replaced atomically.
//!
//! A commit writes a temporary file beside the database, fsyncs it, renames
//! it over the database and fsyncs the directory. A crash at any point leaves
//! either the old or the new file, never a mix. A leftover temporary file
//! from a crash is removed before the next commit, which then creates its
//! own with `O_EXCL | O_NOFOLLOW`: whatever was planted there (a symlink to
//! a file someone wants overwritten) is never followed. The database is
//! mode 0600 and holds `"schema": 1` (see `config::validate`).
//!
//! Loading checks the shape, the schema version and every value, and
//! names the place in the file of the first problem; the daemon refuses to
//! start on a database it cannot trust, and leaves the file as it was.

use crate::config::validate::{self, SCHEMA};
use crate::config::Config;
use serde::Serialize;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

pub struct Db {
    path: PathBuf,
}

/// What is written: the schema version first, then the configuration.
#[derive(Serialize)]
struct Stored<'a> {
    schema: u64,
    #[serde(flatten)]
    config: &'a Config,
}

impl Db {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Db { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The directory that holds the database (and its temporary file).
    pub fn dir(&self) -> PathBuf {
        match self.path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        }
    }

    /// Loads and checks the configuration; a missing or empty file is an
    /// empty configuration. The error says what is wrong and where, as
    /// `PATH: bridges.br0.ports.p1.tag: 5000 is not a VLAN id (0 to 4095)`.
    pub fn load(&self) -> io::Result<Config> {
        match fs::read(&self.path) {
            Ok(bytes) => validate::parse(&bytes).map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{}: {e}", self.path.display()),
                )
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Config::default()),
            Err(e) => Err(io::Error::new(
                e.kind(),
                format!("reading {}: {e}", self.path.display()),
            )),
        }
    }

    /// Makes an existing database file mode 0600 (one written by an older
    /// vswitchd may be readable by everyone).
    pub fn restrict_mode(&self) -> io::Result<()> {
        use std::os::unix::fs::PermissionsExt;
        match fs::symlink_metadata(&self.path) {
            Ok(m) if m.is_file() && m.permissions().mode() & 0o077 != 0 => {
                fs::set_permissions(&self.path, fs::Permissions::from_mode(0o600))
            }
            Ok(_) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Writes `config` atomically, mode 0600.
    pub fn store(&self, config: &Config) -> io::Result<()> {
        let dir = self.dir();
        fs::create_dir_all(&dir)?;
        let mut tmp = self.path.clone().into_os_string();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        let stored = Stored {
            schema: SCHEMA,
            config,
        };
        let bytes = serde_json::to_vec_pretty(&stored).map_err(io::Error::other)?;
        // A stale file (or anything planted) goes; the new one must be ours.
        match fs::remove_file(&tmp) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(io::Error::new(
                    e.kind(),
                    format!("cannot remove {}: {e}", tmp.display()),
                ))
            }
        }
        {
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&tmp)
                .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", tmp.display())))?;
            f.write_all(&bytes)?;
            f.write_all(b"\n")?;
            f.sync_all()?;
        }
        fs::rename(&tmp, &self.path)?;
        File::open(&dir)?.sync_all()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("vswitch-db-test-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn store_then_load() {
        let dir = scratch("roundtrip");
        let db = Db::new(dir.join("conf.db"));
        assert_eq!(db.load().unwrap(), Config::default());
        let mut c = Config {
            version: 7,
            ..Default::default()
        };
        c.bridges.insert("br0".into(), Default::default());
        db.store(&c).unwrap();
        assert_eq!(db.load().unwrap(), c);
        // A leftover temporary file from a crash does not matter.
        fs::write(dir.join("conf.db.tmp"), b"{garbage").unwrap();
        assert_eq!(db.load().unwrap(), c);
        db.store(&c).unwrap();
        fs::write(db.path(), b"{not json").unwrap();
        assert!(db.load().is_err());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn stores_the_schema_version_with_mode_0600() {
        let dir = scratch("schema");
        let db = Db::new(dir.join("conf.db"));
        db.store(&Config::default()).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&fs::read(db.path()).unwrap()).unwrap();
        assert_eq!(v["schema"], SCHEMA);
        let mode = fs::metadata(db.path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{mode:o}");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_symlink_planted_as_the_temporary_file_is_not_followed() {
        let dir = scratch("symlink");
        let victim = dir.join("victim");
        fs::write(&victim, b"precious\n").unwrap();
        std::os::unix::fs::symlink(&victim, dir.join("conf.db.tmp")).unwrap();
        let db = Db::new(dir.join("conf.db"));
        db.store(&Config::default()).unwrap();
        assert_eq!(fs::read(&victim).unwrap(), b"precious\n");
        assert!(!fs::symlink_metadata(db.path())
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(db.load().unwrap(), Config::default());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_bad_file_is_refused_with_its_path() {
        let dir = scratch("bad");
        let db = Db::new(dir.join("conf.db"));
        fs::write(db.path(), br#"{"bridgez":{}}"#).unwrap();
        let e = db.load().unwrap_err().to_string();
        assert!(
            e.starts_with(&format!("{}: bridgez: unknown field", db.path().display())),
            "{e}"
        );
        fs::write(db.path(), b"").unwrap();
        assert_eq!(db.load().unwrap(), Config::default());
        fs::remove_dir_all(&dir).unwrap();
    }
}

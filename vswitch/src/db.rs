//! The configuration database: one JSON file, replaced atomically.
//!
//! A commit writes a temporary file beside the database, fsyncs it, renames
//! it over the database and fsyncs the directory. A crash at any point leaves
//! either the old or the new file, never a mix. Leftover temporary files from
//! a crash are ignored and overwritten.

use crate::config::Config;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

pub struct Db {
    path: PathBuf,
}

impl Db {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Db { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Loads the configuration; a missing file is an empty configuration.
    pub fn load(&self) -> io::Result<Config> {
        match fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{}: not a valid configuration: {e}", self.path.display()),
                )
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Config::default()),
            Err(e) => Err(io::Error::new(
                e.kind(),
                format!("reading {}: {e}", self.path.display()),
            )),
        }
    }

    /// Writes `config` atomically.
    pub fn store(&self, config: &Config) -> io::Result<()> {
        let dir = match self.path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        fs::create_dir_all(&dir)?;
        let mut tmp = self.path.clone().into_os_string();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        let bytes = serde_json::to_vec_pretty(config).map_err(io::Error::other)?;
        {
            let mut f = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .open(&tmp)?;
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

    #[test]
    fn store_then_load() {
        let dir = std::env::temp_dir().join(format!("vswitch-db-test-{}", std::process::id()));
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
}

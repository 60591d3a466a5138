//! The database loader: any bytes as the stored file. Invariant: loading
//! never panics; a file that loads is stored and loads again the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vswitch::db::Db;

fuzz_target!(|data: &[u8]| {
    let dir = std::env::temp_dir().join(format!("vswitch-fuzz-db-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join("conf.db");
    if std::fs::write(&path, data).is_err() {
        return;
    }
    let db = Db::new(&path);
    if let Ok(cfg) = db.load() {
        db.store(&cfg).expect("store");
        assert_eq!(db.load().expect("load what was stored"), cfg);
    }
});

//! The control protocol: any bytes as a request line, run as a transaction
//! against an empty configuration (container attachment, which changes the
//! kernel, is left out). Invariants: no panic; a failed request changes
//! nothing; a changed configuration passes the loader's checks.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::cell::RefCell;
use vswitch::commands::{execute, Request};
use vswitch::config::Config;
use vswitch::datapath::pmd::IdlePolicy;
use vswitch::runtime::Runtime;

thread_local! {
    /// A runtime with no poll threads: commands only read it.
    static RT: RefCell<Runtime> =
        RefCell::new(Runtime::new(&[], IdlePolicy::default()).expect("runtime"));
}

fuzz_target!(|data: &[u8]| {
    RT.with(|rt| run(data, &rt.borrow()));
});

fn run(data: &[u8], rt: &Runtime) {
    let Ok(req) = serde_json::from_slice::<Request>(data) else {
        return;
    };
    if req.commands.iter().any(|c| {
        c.args
            .first()
            .is_some_and(|a| a.contains("attach") || a.contains("detach"))
    }) {
        return;
    }
    let cfg = Config::default();
    let out = execute(&req, &cfg, rt);
    if !out.response.ok {
        assert!(
            out.new_config.is_none(),
            "a failed request changed the configuration"
        );
    }
    if let Some(new) = &out.new_config {
        assert!(vswitch::tunnel::validate(new).is_ok());
    }
}

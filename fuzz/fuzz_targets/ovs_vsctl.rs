//! The ovs-vsctl translator (`cli::ovs_compat::plan`) on arbitrary command
//! lines (words split at NUL and spaces), against a switch with one bridge,
//! two ports and a mirror. Invariants: it never panics; a refusal says
//! something; what it accepts is vswctl commands (each a non-empty list of
//! words, the first a command name); the same line always gives the same
//! answer.
#![no_main]

use cli::ovs_compat::plan;
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Value};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let argv: Vec<String> = text
        .split(['\0', ' '])
        .filter(|w| !w.is_empty())
        .map(String::from)
        .collect();
    let show = json!({"bridges": [{"name": "br0", "ports": [
        {"name": "br0"}, {"name": "p1"}, {"name": "p2"}
    ]}]});
    let mirrors = json!([{"bridge": "br0", "name": "m0", "select_all": true, "output_port": "p2"}]);
    let first = plan(&argv, &show, &mirrors);
    match &first {
        Ok(Some(reqs)) => {
            for r in reqs {
                let args = r["args"].as_array().expect("a request has args");
                assert!(!args.is_empty(), "an empty command in {reqs:?}");
                assert!(args.iter().all(Value::is_string), "{r}");
                let name = args[0].as_str().unwrap_or_default();
                assert!(!name.is_empty() && !name.starts_with('-'), "{r}");
            }
        }
        Ok(None) => {}
        Err(f) => assert!(!f.message.trim().is_empty() && f.code > 0, "{f:?}"),
    }
    assert_eq!(first, plan(&argv, &show, &mirrors));
});

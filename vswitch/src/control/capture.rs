//! The capture request: `{"capture": {...}}` instead of `{"commands": ...}`.
//! Once accepted, the connection leaves the control loop: the capture's
//! own thread answers with one JSON line and then streams pcapng on it
//! (see `crate::capture`).

use crate::capture::{self, Filter, Tap};
use crate::commands::{Output, Response};
use serde::Deserialize;
use serde_json::json;
use std::time::Duration;

/// Most ports in one capture.
pub const MAX_PORTS: usize = 32;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaptureRequest {
    pub ports: Vec<String>,
    /// "in", "out" or "both" (default).
    #[serde(default)]
    pub direction: Option<String>,
    #[serde(default)]
    pub drops: bool,
    #[serde(default)]
    pub snaplen: Option<u32>,
    #[serde(default)]
    pub count: Option<u64>,
    #[serde(default)]
    pub duration_ms: Option<u64>,
    /// `trace --live BRIDGE FIELDS...`: trace the matching frames received
    /// on any port of the bridge instead of recording them.
    #[serde(default)]
    pub trace: Option<LiveTrace>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LiveTrace {
    pub bridge: String,
    #[serde(default)]
    pub fields: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct Envelope {
    capture: CaptureRequest,
    #[serde(default)]
    #[allow(dead_code)]
    deadline_unix_ms: Option<u64>,
}

/// `Some` when `line` is a capture request (well formed or not).
pub fn parse(line: &[u8]) -> Option<Result<CaptureRequest, Response>> {
    let v: serde_json::Value = serde_json::from_slice(line).ok()?;
    v.get("capture")?;
    Some(
        serde_json::from_value::<Envelope>(v)
            .map(|e| e.capture)
            .map_err(|e| refuse(format!("malformed capture request: {e}"))),
    )
}

/// Checks the request against the ports that exist (`known`) and gives
/// the filter and duration.
pub fn check(
    req: &mut CaptureRequest,
    cfg: &crate::config::Config,
    known: impl Fn(&str) -> bool,
) -> Result<(Filter, Option<Duration>), Response> {
    let mut fields = None;
    if let Some(t) = &req.trace {
        let b = cfg
            .bridges
            .get(&t.bridge)
            .ok_or_else(|| refuse(format!("trace: no bridge named {}", t.bridge)))?;
        let mut f = crate::trace::flow::Fields::default();
        for w in &t.fields {
            f.set(w).map_err(|e| refuse(format!("trace: {e}")))?;
        }
        fields = Some(f);
        req.ports = std::iter::once(t.bridge.clone())
            .chain(b.ports.keys().cloned())
            .filter(|p| known(p))
            .collect();
        req.direction = Some("in".into());
    }
    if req.ports.is_empty() {
        return Err(refuse("capture: name at least one port".into()));
    }
    if req.ports.len() > MAX_PORTS {
        return Err(refuse(format!(
            "capture: {} ports, more than the {MAX_PORTS} one capture takes",
            req.ports.len()
        )));
    }
    for (i, p) in req.ports.iter().enumerate() {
        if !known(p) {
            return Err(refuse(format!("capture: no port named {p}")));
        }
        if req.ports[..i].contains(p) {
            return Err(refuse(format!("capture: port {p} is named twice")));
        }
    }
    let (rx, tx) = match req.direction.as_deref().unwrap_or("both") {
        "in" => (true, false),
        "out" => (false, true),
        "both" => (true, true),
        d => {
            return Err(refuse(format!(
                "capture: direction \"{d}\" is not one of in, out, both"
            )))
        }
    };
    let snaplen = req.snaplen.unwrap_or(capture::DEFAULT_SNAPLEN);
    if !(14..=capture::DEFAULT_SNAPLEN).contains(&snaplen) {
        return Err(refuse(format!(
            "capture: snaplen {snaplen} is not from 14 to {}",
            capture::DEFAULT_SNAPLEN
        )));
    }
    let filter = Filter {
        rx,
        tx,
        drops: req.drops,
        snaplen,
        count: req.count.unwrap_or(0),
        fields,
    };
    Ok((filter, req.duration_ms.map(Duration::from_millis)))
}

/// The line that accepts a capture.
pub fn accepted(tap: &Tap) -> Response {
    Response {
        ok: true,
        error: None,
        exit_code: 0,
        results: vec![Output {
            text: String::new(),
            json: json!({ "capture": tap.id, "interfaces": tap.ports }),
        }],
        warnings: Vec::new(),
    }
}

fn refuse(error: String) -> Response {
    super::request::refusal(error)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(json: &str) -> Result<CaptureRequest, Response> {
        parse(json.as_bytes()).expect("a capture request")
    }

    #[test]
    fn a_capture_request_is_told_from_commands_and_checked() {
        assert!(parse(br#"{"commands":[["show"]]}"#).is_none());
        let mut r = req(r#"{"capture":{"ports":["p1","p2"],"direction":"in","count":5}}"#).unwrap();
        let cfg = crate::config::Config::default();
        let (f, d) = check(&mut r, &cfg, |p| p.starts_with('p')).unwrap();
        assert!(f.rx && !f.tx && !f.drops);
        assert_eq!((f.count, f.snaplen, d), (5, capture::DEFAULT_SNAPLEN, None));
        assert!(req(r#"{"capture":{"ports":["p1"],"colour":1}}"#).is_err());
        for (json, why) in [
            (r#"{"capture":{"ports":[]}}"#, "at least one"),
            (r#"{"capture":{"ports":["x"]}}"#, "no port named x"),
            (r#"{"capture":{"ports":["p1","p1"]}}"#, "twice"),
            (
                r#"{"capture":{"ports":["p1"],"direction":"up"}}"#,
                "not one of",
            ),
            (r#"{"capture":{"ports":["p1"],"snaplen":4}}"#, "snaplen 4"),
        ] {
            let e = check(&mut req(json).unwrap(), &cfg, |p| p.starts_with('p')).unwrap_err();
            assert!(e.error.unwrap().contains(why), "{json}");
        }
    }
}

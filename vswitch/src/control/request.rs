//! A request as it arrives on the control socket, and the checks made
//! before any of it runs: its shape, its size in commands, and its
//! deadline.
//!
//! The deadline (`deadline_unix_ms`, optional) is a wall-clock time in
//! milliseconds since the Unix epoch, by which the client stops waiting.
//! Client and daemon share the host's clock (the socket is a Unix socket).
//! A request not started by then is refused without running, so a client
//! that gave up is never surprised by a commit made after it said "cannot
//! talk to vswitchd". A request without one runs whenever its turn comes.

use crate::commands::{Request, Response};
use serde::Deserialize;
use std::time::{SystemTime, UNIX_EPOCH};

/// Most commands in one request (one transaction), so that one client's
/// transaction cannot hold the control thread for long.
pub const MAX_COMMANDS: usize = 1000;

#[derive(Debug, Deserialize)]
struct Envelope {
    #[serde(flatten)]
    request: Request,
    #[serde(default)]
    deadline_unix_ms: Option<u64>,
}

/// Milliseconds since the Unix epoch now (0 if the clock is before it).
pub fn now_unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Parses one request line and checks it may run at `now_ms` (Unix
/// milliseconds); the error is the response to send instead.
pub fn admit(line: &[u8], now_ms: u64) -> Result<Request, Response> {
    let env: Envelope =
        serde_json::from_slice(line).map_err(|e| refusal(format!("malformed request: {e}")))?;
    let n = env.request.commands.len();
    if n > MAX_COMMANDS {
        return Err(refusal(format!(
            "the request has {n} commands, more than the {MAX_COMMANDS} accepted in one \
             transaction; split it into several requests; nothing was changed"
        )));
    }
    if let Some(deadline) = env.deadline_unix_ms {
        if now_ms > deadline {
            return Err(refusal(format!(
                "the request's deadline passed {} ms before the daemon could start it \
                 (the daemon was busy); nothing was changed",
                now_ms - deadline
            )));
        }
    }
    Ok(env.request)
}

/// The response for a line longer than [`super::conn::MAX_REQUEST`].
pub fn too_long() -> Response {
    refusal(format!(
        "the request is longer than {} bytes; split it into several requests; nothing was \
         changed",
        super::conn::MAX_REQUEST
    ))
}

/// The line sent to a client beyond the connection limit, before closing.
pub fn too_many_connections(limit: usize) -> Response {
    refusal(format!(
        "too many control connections ({limit} open); try again later"
    ))
}

pub(super) fn refusal(error: String) -> Response {
    Response {
        ok: false,
        error: Some(error),
        exit_code: 1,
        results: Vec::new(),
        warnings: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ADD_BR: &str = r#"{"commands":[{"args":["add-br","br0"]}]"#;

    fn line(extra: &str) -> Vec<u8> {
        format!("{ADD_BR}{extra}}}\n").into_bytes()
    }

    #[test]
    fn a_request_without_a_deadline_is_admitted() {
        let req = admit(&line(""), 1_000).expect("admitted");
        assert_eq!(req.commands[0].args, ["add-br", "br0"]);
    }

    #[test]
    fn a_request_before_its_deadline_is_admitted() {
        assert!(admit(&line(r#","deadline_unix_ms":5000"#), 5_000).is_ok());
    }

    #[test]
    fn a_request_past_its_deadline_is_refused_and_says_nothing_changed() {
        let resp = admit(&line(r#","deadline_unix_ms":5000"#), 5_250).unwrap_err();
        assert!(!resp.ok);
        assert_eq!(resp.exit_code, 1);
        let msg = resp.error.unwrap();
        assert!(msg.contains("deadline passed 250 ms"), "{msg}");
        assert!(msg.contains("nothing was changed"), "{msg}");
    }

    #[test]
    fn too_many_commands_are_refused_with_the_limit() {
        let cmds = vec![r#"{"args":["list-br"]}"#; MAX_COMMANDS + 1].join(",");
        let text = format!("{{\"commands\":[{cmds}]}}\n");
        let msg = admit(text.as_bytes(), 0).unwrap_err().error.unwrap();
        assert!(
            msg.contains(&format!("{} commands", MAX_COMMANDS + 1)),
            "{msg}"
        );
        let cmds = vec![r#"{"args":["list-br"]}"#; MAX_COMMANDS].join(",");
        let text = format!("{{\"commands\":[{cmds}]}}\n");
        assert!(admit(text.as_bytes(), 0).is_ok());
    }

    #[test]
    fn malformed_json_is_refused() {
        let msg = admit(b"{\"commands\": 7}\n", 0).unwrap_err().error.unwrap();
        assert!(msg.starts_with("malformed request"), "{msg}");
    }
}

//! Talking to vswitchd: one request line, one response line, on a control
//! socket that belongs to root or to the user.

use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

/// Sends one request line and reads one response line.
///
/// The request carries a deadline (`deadline_unix_ms`, wall-clock
/// milliseconds): the daemon refuses it, changing nothing, if it has not
/// started it by then. The deadline falls a little before the end of our
/// wait (a quarter of it, at most 2 s), so a request the daemon starts
/// just in time is normally answered before we give up.
pub fn call(sock: &std::path::Path, request: &Value, timeout: Duration) -> std::io::Result<Value> {
    let margin = (timeout / 4).min(Duration::from_secs(2));
    let mut request = request.clone();
    if let Some(obj) = request.as_object_mut() {
        let deadline = std::time::SystemTime::now() + (timeout - margin);
        let ms = deadline
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(0);
        obj.insert("deadline_unix_ms".into(), json!(ms));
    }
    trusted_socket(sock)?;
    let mut stream = UnixStream::connect(sock)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    let mut line = serde_json::to_vec(&request)?;
    line.push(b'\n');
    stream.write_all(&line)?;
    let mut reader = BufReader::new(stream);
    let mut resp = String::new();
    reader.read_line(&mut resp).map_err(|e| match e.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => std::io::Error::new(
            e.kind(),
            format!(
                "no answer within {}s; the daemon does not apply a request it has not \
                 started {}s before that",
                timeout.as_secs(),
                margin.as_secs_f32()
            ),
        ),
        _ => e,
    })?;
    if resp.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "the daemon closed the connection without answering",
        ));
    }
    serde_json::from_str(&resp).map_err(std::io::Error::other)
}

/// Refuses a control socket that belongs to someone other than root or
/// us: whoever made it could answer for the switch (and read what we send).
pub fn trusted_socket(sock: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::symlink_metadata(sock) else {
        // Missing: connect() says so in its own words.
        return Ok(());
    };
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    if meta.uid() != 0 && meta.uid() != me {
        return Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!(
                "refusing to use it: the socket belongs to uid {}, not to root or to you \
                 (uid {me}), so it may not be vswitchd's",
                meta.uid()
            ),
        ));
    }
    Ok(())
}

/// This client's Docker settings, for the daemon to find a container by
/// its Docker name as this user's `docker` would. Without DOCKER_CONFIG,
/// Docker reads `$HOME/.docker` (contexts live there): that is passed on.
pub fn docker_env() -> serde_json::Map<String, serde_json::Value> {
    let mut m = serde_json::Map::new();
    for k in ["DOCKER_HOST", "DOCKER_CONTEXT", "DOCKER_CONFIG"] {
        if let Ok(v) = std::env::var(k) {
            m.insert(k.into(), v.into());
        }
    }
    if !m.contains_key("DOCKER_CONFIG") {
        if let Ok(home) = std::env::var("HOME") {
            m.insert("DOCKER_CONFIG".into(), format!("{home}/.docker").into());
        }
    }
    m
}

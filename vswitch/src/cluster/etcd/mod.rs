//! A small blocking etcd v3 client over etcd's JSON gRPC gateway
//! (`POST /v3/...` over plain HTTP/1.1).
//!
//! Hand-written (see [`super::http`]) so that the daemon needs no async
//! runtime, no protoc and no TLS stack, and so that a watch's `TcpStream`
//! can be shut down from another thread ([`WatchCanceller`]).
//!
//! Gateway conventions: bytes fields are base64, int64 fields travel as
//! JSON strings, and fields holding their default value (0, false, empty,
//! PUT) are omitted. Every unary call opens a new connection to the
//! endpoint that answered last, then fails over to the others in order on a
//! connect error, timeout, broken connection or "unavailable" answer. A
//! client made [`Client::retrying`] goes round the endpoints again, with a
//! growing pause, while some member is up but cannot serve (a leader
//! election), until its retry time is spent.

use super::http::{self, b64_decode, b64_encode};
use serde_json::{json, Value};
use std::fmt;
use std::io::{BufRead, BufReader, ErrorKind, Read};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// etcd's default limit (`--max-txn-ops`) on the operations in one branch
/// of a transaction.
pub const MAX_TXN_OPS: usize = 128;
/// Largest single watch message accepted.
const MAX_WATCH_MESSAGE: u64 = 256 << 20;
/// gRPC status codes with a meaning here.
const GRPC_UNAVAILABLE: i64 = 14;
/// The pauses between rounds of a retrying client: the first, doubling up
/// to the last.
const FIRST_PAUSE: Duration = Duration::from_millis(100);
const MAX_PAUSE: Duration = Duration::from_secs(1);

/// Why a call failed.
#[derive(Debug)]
pub enum Error {
    /// No endpoint answered; says which were tried and why each failed.
    Unreachable(String),
    /// etcd answered with an error.
    Server(String),
    /// The answer could not be understood, or an endpoint is malformed.
    Protocol(String),
    /// The requested start revision was compacted; this is the oldest
    /// revision still available. List again, then watch from there.
    Compacted(i64),
    /// The lease expired or was revoked (etcd's "requested lease not found").
    LeaseGone,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Error::Unreachable(why) => write!(f, "etcd unreachable: {why}"),
            Error::Server(why) => write!(f, "etcd error: {why}"),
            Error::Protocol(why) => write!(f, "etcd protocol error: {why}"),
            Error::Compacted(rev) => {
                write!(f, "etcd history was compacted (oldest revision {rev})")
            }
            Error::LeaseGone => write!(f, "etcd lease expired or was revoked"),
        }
    }
}

impl std::error::Error for Error {}

/// A key and its value with etcd's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kv {
    pub key: String,
    pub value: Vec<u8>,
    pub create_revision: i64,
    pub mod_revision: i64,
    /// The lease the key is attached to; 0 for none.
    pub lease: i64,
}

/// A transaction condition.
#[derive(Debug, Clone)]
pub enum Compare {
    /// The key's create revision equals this; 0 means the key is absent.
    Created(String, i64),
    /// The key's mod revision equals this.
    Modified(String, i64),
    /// The key's value equals this.
    Value(String, Vec<u8>),
}

/// A transaction operation.
#[derive(Debug, Clone)]
pub enum Op {
    /// Writes `key`, attached to `lease` (0 for none).
    Put {
        key: String,
        value: Vec<u8>,
        lease: i64,
    },
    /// Deletes one key.
    Delete(String),
    /// Deletes every key under a prefix.
    DeletePrefix(String),
}

/// What a watch event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Put,
    Delete,
}

/// One change seen by a watch. For deletes only `key` and `mod_revision`
/// of `kv` are set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub kind: EventKind,
    pub kv: Kv,
}

/// How one attempt on one endpoint failed.
enum Attempt {
    /// Nothing listens there: try the next one.
    Failover(String),
    /// The member is there but did not serve the call (no answer in time,
    /// a broken connection, "unavailable" while it elects a leader): try
    /// the next one, and this one again in the next round.
    Busy(String),
    /// The endpoint answered; the answer stands.
    Final(Error),
}

/// A blocking etcd client; shareable between threads.
#[derive(Debug)]
pub struct Client {
    /// Normalized as "http://host:port".
    endpoints: Vec<String>,
    timeout: Duration,
    /// Index in `endpoints` of the endpoint that answered last.
    current: AtomicUsize,
    /// How long to keep going round the endpoints while some are busy.
    retry_for: Duration,
}

impl Client {
    /// A client for `endpoints`, each "http://host:port" or "host:port"
    /// (host: IP literal or name, resolved at each connection). `timeout`
    /// bounds connecting and each read or write of a unary call.
    pub fn new(endpoints: &[String], timeout: Duration) -> Result<Client, Error> {
        if endpoints.is_empty() {
            return Err(Error::Unreachable("no etcd endpoint given".into()));
        }
        let endpoints = endpoints
            .iter()
            .map(|e| parse_endpoint(e).map(|a| format!("http://{a}")))
            .collect::<Result<_, _>>()?;
        Ok(Client {
            endpoints,
            timeout,
            current: AtomicUsize::new(0),
            retry_for: Duration::ZERO,
        })
    }

    /// This client, going round the endpoints again for up to `retry_for`
    /// while a member answers but cannot serve. For one-off commands; a
    /// loop with its own reconnection wants the default (one round).
    ///
    /// A write retried after "no answer" may have been applied by the
    /// first try: callers keep their writes conditional and recognise
    /// their own value.
    pub fn retrying(mut self, retry_for: Duration) -> Client {
        self.retry_for = retry_for;
        self
    }

    /// The endpoints, as "http://host:port".
    pub fn endpoints(&self) -> &[String] {
        &self.endpoints
    }

    /// The endpoint that answered last (the first one before any call).
    pub fn current(&self) -> String {
        self.endpoints[self.current.load(Ordering::Relaxed)].clone()
    }

    /// The endpoints in the order to try them: the last good one first.
    fn order(&self) -> impl Iterator<Item = usize> {
        let first = self.current.load(Ordering::Relaxed);
        std::iter::once(first).chain((0..self.endpoints.len()).filter(move |&i| i != first))
    }

    /// Runs `attempt` on each endpoint in turn until one answers; goes
    /// round again while some were busy and the retry time lasts.
    fn with_failover<T>(
        &self,
        mut attempt: impl FnMut(&str) -> Result<T, Attempt>,
    ) -> Result<T, Error> {
        let start = Instant::now();
        let mut pause = FIRST_PAUSE;
        loop {
            let mut failures = Vec::new();
            let mut busy = false;
            for i in self.order() {
                let endpoint = &self.endpoints[i];
                let authority = &endpoint["http://".len()..];
                let result = match attempt(authority) {
                    Err(Attempt::Failover(why)) => {
                        failures.push(format!("{endpoint}: {why}"));
                        continue;
                    }
                    Err(Attempt::Busy(why)) => {
                        failures.push(format!("{endpoint}: {why}"));
                        busy = true;
                        continue;
                    }
                    Ok(v) => Ok(v),
                    Err(Attempt::Final(e)) => Err(e),
                };
                if self.current.swap(i, Ordering::Relaxed) != i {
                    log::info!("etcd: now using endpoint {endpoint}");
                }
                return result;
            }
            let why = failures.join("; ");
            if !busy || start.elapsed() + pause > self.retry_for {
                return Err(Error::Unreachable(why));
            }
            log::info!("etcd: no member served the call ({why}); again in {pause:?}");
            std::thread::sleep(pause);
            pause = (pause * 2).min(MAX_PAUSE);
        }
    }

    /// One unary gateway call, with failover; returns the answer's JSON.
    fn call(&self, path: &str, body: Value) -> Result<Value, Error> {
        let body = body.to_string().into_bytes();
        self.with_failover(|authority| {
            let (status, answer) = http::post(authority, path, &body, self.timeout)
                .map_err(|e| io_attempt(e, self.timeout))?;
            decode_answer(status, &answer, path)
        })
    }

    /// A range request: `range_end` empty for one key.
    fn range(&self, key: &[u8], range_end: &[u8]) -> Result<(Vec<Kv>, i64), Error> {
        let mut req = json!({ "key": b64_encode(key) });
        if !range_end.is_empty() {
            req["range_end"] = b64_encode(range_end).into();
        }
        let v = self.call("/v3/kv/range", req)?;
        let kvs = match v.get("kvs").and_then(Value::as_array) {
            Some(kvs) => kvs.iter().map(parse_kv).collect::<Result<_, _>>()?,
            None => Vec::new(),
        };
        Ok((kvs, header_revision(&v)?))
    }

    /// The cluster's current revision; also a reachability probe.
    pub fn revision(&self) -> Result<i64, Error> {
        Ok(self.range(b"\0", b"")?.1)
    }

    /// One key, or None when it does not exist.
    pub fn get(&self, key: &str) -> Result<Option<Kv>, Error> {
        Ok(self.range(key.as_bytes(), b"")?.0.into_iter().next())
    }

    /// Every key under `prefix`, with the revision the answer is at.
    pub fn range_prefix(&self, prefix: &str) -> Result<(Vec<Kv>, i64), Error> {
        let (key, end) = prefix_range(prefix);
        self.range(&key, &end)
    }

    /// Writes `key` (attached to `lease`, 0 for none); returns the revision.
    pub fn put(&self, key: &str, value: &[u8], lease: i64) -> Result<i64, Error> {
        let v = self.call("/v3/kv/put", put_request(key, value, lease))?;
        header_revision(&v)
    }

    /// Deletes `key` (absent is fine).
    pub fn delete(&self, key: &str) -> Result<(), Error> {
        self.call(
            "/v3/kv/deleterange",
            json!({ "key": b64_encode(key.as_bytes()) }),
        )
        .map(drop)
    }

    /// Deletes every key under `prefix`.
    pub fn delete_prefix(&self, prefix: &str) -> Result<(), Error> {
        let (key, end) = prefix_range(prefix);
        let req = json!({ "key": b64_encode(&key), "range_end": b64_encode(&end) });
        self.call("/v3/kv/deleterange", req).map(drop)
    }

    /// Runs `success` if every compare holds, else `failure`, atomically.
    /// True when the compares held and `success` ran. Each branch may hold
    /// at most [`MAX_TXN_OPS`] operations, none touching a key twice.
    pub fn txn(&self, compares: &[Compare], success: &[Op], failure: &[Op]) -> Result<bool, Error> {
        let compare: Vec<Value> = compares.iter().map(compare_json).collect();
        let (success, failure): (Vec<Value>, Vec<Value>) = (
            success.iter().map(op_json).collect(),
            failure.iter().map(op_json).collect(),
        );
        let req = json!({ "compare": compare, "success": success, "failure": failure });
        let v = self.call("/v3/kv/txn", req)?;
        Ok(v.get("succeeded").and_then(Value::as_bool).unwrap_or(false))
    }

    /// Compacts the history up to `rev` (watches from before it then fail
    /// with [`Error::Compacted`]).
    pub fn compact(&self, rev: i64) -> Result<(), Error> {
        let req = json!({ "revision": rev.to_string(), "physical": true });
        self.call("/v3/kv/compaction", req).map(drop)
    }

    /// Grants a lease of `ttl_s` seconds; returns its ID.
    pub fn lease_grant(&self, ttl_s: i64) -> Result<i64, Error> {
        let v = self.call("/v3/lease/grant", json!({ "TTL": ttl_s }))?;
        match int(&v, "ID")? {
            0 => Err(Error::Protocol(format!("lease grant without an ID: {v}"))),
            id => Ok(id),
        }
    }

    /// Renews lease `id`; returns its TTL in seconds, or
    /// Err([`Error::LeaseGone`]) when it has expired or was revoked.
    pub fn lease_keepalive(&self, id: i64) -> Result<i64, Error> {
        let v = self.call("/v3/lease/keepalive", json!({ "ID": id.to_string() }))?;
        match int(&v, "TTL")? {
            ttl if ttl > 0 => Ok(ttl),
            _ => Err(Error::LeaseGone),
        }
    }

    /// Revokes lease `id`, deleting its keys.
    pub fn lease_revoke(&self, id: i64) -> Result<(), Error> {
        self.call("/v3/lease/revoke", json!({ "ID": id.to_string() }))
            .map(drop)
    }

    /// Watches every key under `prefix` from `start_revision` on (0: from
    /// now). Waits (bounded by the timeout) for etcd to confirm the watch.
    pub fn watch(&self, prefix: &str, start_revision: i64) -> Result<Watch, Error> {
        let (key, end) = prefix_range(prefix);
        let req = json!({ "create_request": {
            "key": b64_encode(&key),
            "range_end": b64_encode(&end),
            "start_revision": start_revision.to_string(),
        }});
        let body = req.to_string().into_bytes();
        let (stream, reader, endpoint) = self.with_failover(|authority| {
            let fail = |e| io_attempt(e, self.timeout);
            let mut stream = http::connect(authority, self.timeout).map_err(fail)?;
            stream.set_read_timeout(Some(self.timeout)).map_err(fail)?;
            stream.set_write_timeout(Some(self.timeout)).map_err(fail)?;
            http::send_post(&mut stream, authority, "/v3/watch", &body).map_err(fail)?;
            let mut r = BufReader::new(stream.try_clone().map_err(fail)?);
            let head = http::read_head(&mut r).map_err(fail)?;
            if head.status != 200 || !head.chunked() {
                let answer = http::read_body(&mut r, &head).map_err(fail)?;
                decode_answer(head.status, &answer, "/v3/watch")?;
                let why = format!("watch answered HTTP {} without a stream", head.status);
                return Err(Attempt::Final(Error::Protocol(why)));
            }
            let reader = BufReader::new(http::ChunkedReader::new(r));
            Ok((stream, reader, format!("http://{authority}")))
        })?;
        let mut watch = Watch {
            stream,
            reader,
            endpoint,
            revision: 0,
            pending: Vec::new(),
            cancelled: Arc::new(AtomicBool::new(false)),
        };
        // The first message confirms the watch ("created"), or refuses it.
        watch.pending = watch.message()?;
        // From now on the stream is silent while nothing changes.
        let stream = &watch.stream;
        stream
            .set_read_timeout(None)
            .map_err(|e| Error::Unreachable(format!("{}: {e}", watch.endpoint)))?;
        Ok(watch)
    }
}

/// An open watch; see [`Client::watch`].
pub struct Watch {
    stream: TcpStream,
    reader: BufReader<http::ChunkedReader<BufReader<TcpStream>>>,
    endpoint: String,
    revision: i64,
    /// Events that came with the watch's first message.
    pending: Vec<Event>,
    cancelled: Arc<AtomicBool>,
}

impl Drop for Watch {
    fn drop(&mut self) {
        // A canceller may hold the socket open: close it for etcd's sake.
        let _ = self.stream.shutdown(Shutdown::Both);
    }
}

/// Ends a [`Watch`] from another thread: its blocked `next()` returns Err.
pub struct WatchCanceller {
    stream: Option<TcpStream>,
    cancelled: Arc<AtomicBool>,
}

impl WatchCanceller {
    /// Shuts the watch's connection down.
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::Relaxed);
        if let Some(s) = &self.stream {
            let _ = s.shutdown(Shutdown::Both);
        }
    }
}

impl Watch {
    /// A handle that can end this watch from another thread.
    pub fn canceller(&self) -> WatchCanceller {
        let stream = self.stream.try_clone();
        if let Err(e) = &stream {
            log::warn!("etcd watch: cannot clone the socket for cancelling: {e}");
        }
        WatchCanceller {
            stream: stream.ok(),
            cancelled: self.cancelled.clone(),
        }
    }

    /// The revision of the last message from etcd: every change up to it
    /// has been returned by [`Watch::next`].
    pub fn revision(&self) -> i64 {
        self.revision
    }

    /// Blocks until the next batch of events. Err([`Error::Compacted`])
    /// when the start revision was compacted; Err(Unreachable) when the
    /// stream breaks, ends or was cancelled.
    // Not an Iterator: a watch never ends by itself, it fails.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<Vec<Event>, Error> {
        if !self.pending.is_empty() {
            return Ok(std::mem::take(&mut self.pending));
        }
        loop {
            let events = self.message()?;
            if !events.is_empty() {
                return Ok(events);
            }
        }
    }

    /// Reads and interprets one message of the stream.
    fn message(&mut self) -> Result<Vec<Event>, Error> {
        let mut line = Vec::new();
        let read = (&mut self.reader)
            .take(MAX_WATCH_MESSAGE)
            .read_until(b'\n', &mut line);
        let broken = |why: String| {
            let cancelled = self.cancelled.load(Ordering::Relaxed);
            let why = if cancelled {
                "watch cancelled".into()
            } else {
                why
            };
            Error::Unreachable(format!("{}: {why}", self.endpoint))
        };
        match read {
            Err(e) => return Err(broken(format!("watch broken: {e}"))),
            Ok(_) if line.trim_ascii().is_empty() => {
                return Err(broken("watch stream ended".into()))
            }
            Ok(_) => {}
        }
        let v: Value = serde_json::from_slice(&line).map_err(|e| {
            Error::Protocol(format!(
                "bad watch message ({e}): {:.200}",
                String::from_utf8_lossy(&line)
            ))
        })?;
        check_error(&v, 200).map_err(|(code, e)| match code {
            GRPC_UNAVAILABLE => Error::Unreachable(format!("{}: {e}", self.endpoint)),
            _ => e,
        })?;
        let result = v.get("result").unwrap_or(&Value::Null);
        match int(result, "compact_revision")? {
            0 => {}
            rev => return Err(Error::Compacted(rev)),
        }
        if result.get("canceled").and_then(Value::as_bool) == Some(true) {
            let reason = result.get("cancel_reason").and_then(Value::as_str);
            return Err(Error::Server(format!(
                "watch canceled: {}",
                reason.unwrap_or("?")
            )));
        }
        let rev = header_revision(result)?;
        self.revision = self.revision.max(rev);
        let events = result.get("events").and_then(Value::as_array);
        events.into_iter().flatten().map(parse_event).collect()
    }
}

/// Parses "http://host:port" or "host:port" into "host:port".
fn parse_endpoint(e: &str) -> Result<String, Error> {
    let bad = |why: &str| Error::Protocol(format!("bad etcd endpoint {e:?}: {why}"));
    let rest = match e.trim().split_once("://") {
        None => e.trim(),
        Some(("http", rest)) => rest,
        Some(("https", _)) => return Err(bad("https is not supported (no TLS), use http://")),
        Some(_) => return Err(bad("expected http://host:port or host:port")),
    };
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    match authority.rsplit_once(':') {
        Some((host, port))
            if !host.is_empty()
                && !host.contains(['/', '@', '?', '#'])
                && port.parse::<u16>().is_ok_and(|p| p != 0) =>
        {
            Ok(authority.to_string())
        }
        _ => Err(bad("expected http://host:port or host:port")),
    }
}

/// How a call failed on the wire: nobody there, or a member that did not
/// serve it.
fn io_attempt(e: std::io::Error, timeout: Duration) -> Attempt {
    match e.kind() {
        ErrorKind::WouldBlock | ErrorKind::TimedOut => {
            Attempt::Busy(format!("no answer within {timeout:?}"))
        }
        ErrorKind::ConnectionRefused
        | ErrorKind::HostUnreachable
        | ErrorKind::NetworkUnreachable
        | ErrorKind::AddrNotAvailable
        | ErrorKind::NotFound
        | ErrorKind::InvalidInput => Attempt::Failover(e.to_string()),
        _ => Attempt::Busy(e.to_string()),
    }
}

/// The key range covering every key under `prefix`.
fn prefix_range(prefix: &str) -> (Vec<u8>, Vec<u8>) {
    let mut end = prefix.as_bytes().to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return (prefix.as_bytes().to_vec(), end);
        }
    }
    (vec![0], vec![0]) // every key
}

/// Reads `raw` as a whole answer from etcd (status line, headers, body,
/// JSON) and returns the keys and watch events in it. For the fuzzer
/// (`fuzz/fuzz_targets/etcd_answer.rs`): any bytes give an answer or an
/// error, never a panic.
#[doc(hidden)]
pub fn read_answer(raw: &[u8]) -> Result<(Vec<Kv>, Vec<Event>), Error> {
    let mut r = std::io::BufReader::new(raw);
    let head = http::read_head(&mut r).map_err(|e| Error::Protocol(e.to_string()))?;
    let body = http::read_body(&mut r, &head).map_err(|e| Error::Protocol(e.to_string()))?;
    let v = decode_answer(head.status, &body, "/v3/kv/range").map_err(|a| match a {
        Attempt::Final(e) => e,
        Attempt::Failover(why) | Attempt::Busy(why) => Error::Unreachable(why),
    })?;
    let list = |field: &str| {
        v.get(field)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let kvs = list("kvs").iter().map(parse_kv).collect::<Result<_, _>>()?;
    let events = list("events")
        .iter()
        .map(parse_event)
        .collect::<Result<_, _>>()?;
    Ok((kvs, events))
}

/// Interprets a unary answer: its JSON (unwrapped from a stream's
/// {"result":..}), or how the attempt failed.
fn decode_answer(status: u16, answer: &[u8], path: &str) -> Result<Value, Attempt> {
    let verdict = |code: i64, e: Error| {
        if code == GRPC_UNAVAILABLE || status == 503 {
            Attempt::Busy(e.to_string())
        } else {
            Attempt::Final(e)
        }
    };
    let text = String::from_utf8_lossy(answer);
    // A streaming call (keepalive) answers one JSON object per line.
    let line = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    let v: Value = serde_json::from_str(line).map_err(|_| {
        let what = format!("HTTP {status} from {path}: {:.200}", text.trim());
        verdict(0, Error::Protocol(what))
    })?;
    check_error(&v, status).map_err(|(code, e)| verdict(code, e))?;
    Ok(v.get("result").cloned().unwrap_or(v))
}

/// The error an answer carries, with its gRPC code: unary calls answer
/// non-200 with {"error":"..","code":N,"message":".."}; streams answer 200
/// with {"error":{"grpc_code":N,"message":".."}}.
fn check_error(v: &Value, status: u16) -> Result<(), (i64, Error)> {
    let e = match v.get("error") {
        Some(Value::String(s)) if s.is_empty() => None,
        Some(e) => Some(e),
        None => None,
    };
    if e.is_none() && status == 200 {
        return Ok(());
    }
    let code = int(v, "code")
        .ok()
        .filter(|&c| c != 0)
        .or_else(|| e.and_then(|e| int(e, "grpc_code").ok()))
        .unwrap_or(0);
    let message = [v.get("message"), e.and_then(|e| e.get("message")), e]
        .into_iter()
        .flatten()
        .find_map(Value::as_str)
        .map_or_else(|| format!("HTTP {status}: {v}"), str::to_string);
    if message.contains("requested lease not found") {
        return Err((code, Error::LeaseGone));
    }
    Err((code, Error::Server(format!("{message} (code {code})"))))
}

/// An int64 field: a JSON string or number; absent means 0.
fn int(v: &Value, field: &str) -> Result<i64, Error> {
    match v.get(field) {
        None | Some(Value::Null) => Some(0),
        Some(Value::String(s)) => s.parse().ok(),
        Some(n) => n.as_i64(),
    }
    .ok_or_else(|| Error::Protocol(format!("field {field:?} is not an integer in {v}")))
}

/// A bytes field (base64); absent means empty.
fn bytes(v: &Value, field: &str) -> Result<Vec<u8>, Error> {
    match v.get(field) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) => {
            b64_decode(s).map_err(|e| Error::Protocol(format!("{field}: {e}")))
        }
        Some(other) => Err(Error::Protocol(format!(
            "field {field:?} is not base64: {other}"
        ))),
    }
}

fn header_revision(v: &Value) -> Result<i64, Error> {
    int(v.get("header").unwrap_or(&Value::Null), "revision")
}

fn parse_kv(v: &Value) -> Result<Kv, Error> {
    Ok(Kv {
        key: String::from_utf8_lossy(&bytes(v, "key")?).into_owned(),
        value: bytes(v, "value")?,
        create_revision: int(v, "create_revision")?,
        mod_revision: int(v, "mod_revision")?,
        lease: int(v, "lease")?,
    })
}

fn parse_event(v: &Value) -> Result<Event, Error> {
    let kind = match v.get("type").and_then(Value::as_str) {
        None | Some("PUT") => EventKind::Put,
        Some("DELETE") => EventKind::Delete,
        Some(other) => return Err(Error::Protocol(format!("unknown event type {other:?}"))),
    };
    let kv = parse_kv(v.get("kv").unwrap_or(&Value::Null))?;
    Ok(Event { kind, kv })
}

fn put_request(key: &str, value: &[u8], lease: i64) -> Value {
    let (key, value) = (b64_encode(key.as_bytes()), b64_encode(value));
    json!({ "key": key, "value": value, "lease": lease.to_string() })
}

fn compare_json(c: &Compare) -> Value {
    let (key, target, field, operand) = match c {
        Compare::Created(k, rev) => (k, "CREATE", "create_revision", rev.to_string()),
        Compare::Modified(k, rev) => (k, "MOD", "mod_revision", rev.to_string()),
        Compare::Value(k, val) => (k, "VALUE", "value", b64_encode(val)),
    };
    let mut v = json!({ "key": b64_encode(key.as_bytes()), "target": target, "result": "EQUAL" });
    v[field] = operand.into();
    v
}

fn op_json(op: &Op) -> Value {
    match op {
        Op::Put { key, value, lease } => json!({ "request_put": put_request(key, value, *lease) }),
        Op::Delete(key) => json!({ "request_delete_range": { "key": b64_encode(key.as_bytes()) } }),
        Op::DeletePrefix(prefix) => {
            let (key, end) = prefix_range(prefix);
            let range = json!({ "key": b64_encode(&key), "range_end": b64_encode(&end) });
            json!({ "request_delete_range": range })
        }
    }
}

#[cfg(test)]
mod tests;

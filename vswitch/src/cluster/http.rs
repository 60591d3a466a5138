//! The wire layer under the etcd client: a minimal blocking HTTP/1.1 client
//! and base64 (etcd's JSON gateway carries every bytes field as base64).
//!
//! Hand-written rather than taken from a crate because the needs are tiny
//! and specific: one POST per connection with `Connection: close`, bodies
//! sized by `Content-Length` or `Transfer-Encoding: chunked`, and a
//! streaming chunked reader for watches whose `TcpStream` the caller keeps
//! a clone of, so another thread can shut it down. There is no async
//! runtime, TLS or connection pooling to pull in for that.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// Longest status line, header line or chunk-size line accepted.
const MAX_LINE: u64 = 16 * 1024;
/// Most header lines accepted in a response head or chunked trailer.
const MAX_HEADERS: usize = 100;

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Each byte's value in [`B64`], 255 for bytes not in it (a full listing
/// of a large cluster is megabytes of base64).
const B64_VALUE: [u8; 256] = {
    let mut t = [255u8; 256];
    let mut i = 0;
    while i < 64 {
        t[B64[i] as usize] = i as u8;
        i += 1;
    }
    t
};

/// Encodes `data` as standard base64 with `=` padding.
pub(crate) fn b64_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(B64[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Decodes standard base64; padding is required (as etcd sends it).
pub(crate) fn b64_decode(s: &str) -> Result<Vec<u8>, String> {
    let s = s.as_bytes();
    if !s.len().is_multiple_of(4) {
        return Err(format!("base64 length {} is not a multiple of 4", s.len()));
    }
    let mut out = Vec::with_capacity(s.len() / 4 * 3);
    for (q, quad) in s.chunks(4).enumerate() {
        let last = q == s.len() / 4 - 1;
        let pad = quad.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && !last) {
            return Err("misplaced base64 padding".into());
        }
        let mut n = 0u32;
        for &c in &quad[..4 - pad] {
            let v = B64_VALUE[c as usize];
            if v == 255 {
                return Err(format!("invalid base64 character {:?}", char::from(c)));
            }
            n = (n << 6) | u32::from(v);
        }
        n <<= 6 * pad as u32;
        out.extend_from_slice(&n.to_be_bytes()[1..4 - pad]);
    }
    Ok(out)
}

fn bad(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

/// Reads one CRLF- (or LF-) terminated line, without the terminator.
fn read_line<R: BufRead>(r: &mut R) -> io::Result<String> {
    let mut buf = Vec::new();
    r.by_ref().take(MAX_LINE).read_until(b'\n', &mut buf)?;
    if buf.last() != Some(&b'\n') {
        return Err(if buf.len() as u64 >= MAX_LINE {
            bad("HTTP line too long")
        } else {
            io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed mid-response",
            )
        });
    }
    buf.pop();
    if buf.last() == Some(&b'\r') {
        buf.pop();
    }
    String::from_utf8(buf).map_err(|_| bad("HTTP line is not UTF-8"))
}

/// Reads header lines up to the blank line that ends them.
fn read_headers<R: BufRead>(r: &mut R) -> io::Result<Vec<(String, String)>> {
    let mut headers = Vec::new();
    loop {
        let line = read_line(r)?;
        if line.is_empty() {
            return Ok(headers);
        }
        if headers.len() >= MAX_HEADERS {
            return Err(bad("too many HTTP headers"));
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| bad(format!("malformed HTTP header {line:?}")))?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
    }
}

/// A response's status line and headers.
#[derive(Debug)]
pub(crate) struct Head {
    pub status: u16,
    /// Header names are lower-cased.
    pub headers: Vec<(String, String)>,
}

impl Head {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// True when the body uses chunked transfer coding.
    pub fn chunked(&self) -> bool {
        self.header("transfer-encoding")
            .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
    }
}

/// Reads a response's status line and headers.
pub(crate) fn read_head<R: BufRead>(r: &mut R) -> io::Result<Head> {
    let line = read_line(r)?;
    let mut parts = line.splitn(3, ' ');
    let (version, code) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let status = match code.parse::<u16>() {
        Ok(s) if version.starts_with("HTTP/1.") => s,
        _ => return Err(bad(format!("not an HTTP/1.x status line: {line:?}"))),
    };
    Ok(Head {
        status,
        headers: read_headers(r)?,
    })
}

/// The largest answer body read (a full listing of a million members is
/// about 200 MB of JSON); a longer one is an error, not an allocation.
const MAX_BODY: u64 = 1 << 30;

/// Reads the body that follows `head`: chunked, sized by Content-Length,
/// or (neither) up to the end of the connection; at most [`MAX_BODY`].
pub(crate) fn read_body<R: BufRead>(r: &mut R, head: &Head) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    let too_long = || bad(format!("answer longer than {MAX_BODY} bytes"));
    if head.chunked() {
        ChunkedReader::new(r)
            .take(MAX_BODY + 1)
            .read_to_end(&mut body)?;
        if body.len() as u64 > MAX_BODY {
            return Err(too_long());
        }
    } else if let Some(len) = head.header("content-length") {
        let len: u64 = len
            .parse()
            .map_err(|_| bad(format!("bad Content-Length {len:?}")))?;
        if len > MAX_BODY {
            return Err(too_long());
        }
        r.take(len).read_to_end(&mut body)?;
        if (body.len() as u64) < len {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed mid-body",
            ));
        }
    } else {
        r.take(MAX_BODY + 1).read_to_end(&mut body)?;
        if body.len() as u64 > MAX_BODY {
            return Err(too_long());
        }
    }
    Ok(body)
}

/// Decodes a `Transfer-Encoding: chunked` body as a plain byte stream,
/// returning end-of-file after the last (zero-sized) chunk and its trailer.
pub(crate) struct ChunkedReader<R> {
    inner: R,
    /// Bytes left in the current chunk.
    left: u64,
    done: bool,
}

impl<R: BufRead> ChunkedReader<R> {
    pub fn new(inner: R) -> Self {
        ChunkedReader {
            inner,
            left: 0,
            done: false,
        }
    }
}

impl<R: BufRead> Read for ChunkedReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.done || buf.is_empty() {
            return Ok(0);
        }
        if self.left == 0 {
            let line = read_line(&mut self.inner)?;
            let size = line.split(';').next().unwrap_or("").trim();
            self.left = u64::from_str_radix(size, 16)
                .map_err(|_| bad(format!("bad chunk size {line:?}")))?;
            if self.left == 0 {
                read_headers(&mut self.inner)?; // the trailer
                self.done = true;
                return Ok(0);
            }
        }
        let want = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed mid-chunk",
            ));
        }
        self.left -= n as u64;
        if self.left == 0 && !read_line(&mut self.inner)?.is_empty() {
            return Err(bad("chunk data not followed by CRLF"));
        }
        Ok(n)
    }
}

/// Connects to `authority` ("host:port"), trying each address it resolves
/// to, with `timeout` for each connection attempt.
pub(crate) fn connect(authority: &str, timeout: Duration) -> io::Result<TcpStream> {
    let mut last = io::Error::new(io::ErrorKind::NotFound, "name resolved to no address");
    for addr in authority.to_socket_addrs()? {
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(s) => {
                s.set_nodelay(true)?;
                return Ok(s);
            }
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// Sends a `POST` with a JSON body; the server closes after answering.
pub(crate) fn send_post(
    stream: &mut TcpStream,
    authority: &str,
    path: &str,
    body: &[u8],
) -> io::Result<()> {
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let mut msg = head.into_bytes();
    msg.extend_from_slice(body);
    stream.write_all(&msg)?;
    stream.flush()
}

/// One request on a new connection: connect, send, read the whole answer.
/// Every step is bounded by `timeout`.
pub(crate) fn post(
    authority: &str,
    path: &str,
    body: &[u8],
    timeout: Duration,
) -> io::Result<(u16, Vec<u8>)> {
    let mut stream = connect(authority, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    send_post(&mut stream, authority, path, body)?;
    let mut r = BufReader::new(stream);
    let head = read_head(&mut r)?;
    let body = read_body(&mut r, &head)?;
    Ok((head.status, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips() {
        for (plain, enc) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
            ("a", "YQ=="),
        ] {
            assert_eq!(b64_encode(plain.as_bytes()), enc);
            assert_eq!(b64_decode(enc).unwrap(), plain.as_bytes());
        }
        let all: Vec<u8> = (0..=255u8).chain((0..=255u8).rev()).collect();
        for len in 0..all.len() {
            assert_eq!(b64_decode(&b64_encode(&all[..len])).unwrap(), &all[..len]);
        }
        assert_eq!(b64_encode(&[0xfb, 0xff]), "+/8=");
    }

    #[test]
    fn base64_rejects_bad_input() {
        for bad in [
            "Zg=", "Zg", "Z===", "Zg==Zg==", "Zm9v!A==", "Zm=v", "=AAA", "Zg ==",
        ] {
            assert!(b64_decode(bad).is_err(), "{bad:?} accepted");
        }
    }

    fn parse(raw: &[u8]) -> io::Result<(Head, Vec<u8>)> {
        let mut r = raw;
        let head = read_head(&mut r)?;
        let body = read_body(&mut r, &head)?;
        Ok((head, body))
    }

    #[test]
    fn reads_sized_and_chunked_bodies() {
        let (head, body) =
            parse(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX: y\r\n\r\nhelloEXTRA").unwrap();
        assert_eq!((head.status, &body[..]), (200, &b"hello"[..]));
        // As etcd's gateway sends an error: chunk, end, trailer.
        let raw = b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n\
                    5\r\n{\"a\":\r\n3;ext=1\r\n1}\n\r\n0\r\nGrpc-Trailer: x\r\n\r\n";
        let (head, body) = parse(raw).unwrap();
        assert_eq!((head.status, &body[..]), (404, &b"{\"a\":1}\n"[..]));
        assert!(parse(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nshort").is_err());
        assert!(parse(b"SSH-2.0-OpenSSH\r\n\r\n").is_err());
        let bad_chunks = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n";
        assert!(parse(bad_chunks).is_err());
        let no_crlf = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n";
        assert!(parse(no_crlf).is_err());
        let truncated = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n9\r\nabc";
        assert!(parse(truncated).is_err());
    }

    #[test]
    fn chunked_reader_streams_lines() {
        let raw: &[u8] = b"4\r\none\n\r\na\r\ntwo\nthree\n\r\n0\r\n\r\n";
        let mut lines = BufReader::new(ChunkedReader::new(raw)).lines();
        assert_eq!(lines.next().unwrap().unwrap(), "one");
        assert_eq!(lines.next().unwrap().unwrap(), "two");
        assert_eq!(lines.next().unwrap().unwrap(), "three");
        assert!(lines.next().is_none());
    }
}

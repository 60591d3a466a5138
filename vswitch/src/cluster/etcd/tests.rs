//! The etcd client against a real etcd (Debian's etcd-server), one
//! fresh member per test.

use super::*;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::AtomicU32;
use std::thread::{sleep, spawn};
use std::time::Instant;

const ETCD: &str = "/usr/bin/etcd";

/// A throwaway single-member etcd, killed and wiped on drop.
struct TestEtcd {
    child: Child,
    dir: PathBuf,
    url: String,
}

impl Drop for TestEtcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn free_url() -> String {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    format!("http://{}", l.local_addr().expect("local_addr"))
}

/// Starts etcd and returns it with a client that has seen it answer.
fn start_etcd() -> (TestEtcd, Client) {
    let missing = format!("{ETCD} is missing: install etcd-server to run these tests");
    assert!(std::path::Path::new(ETCD).exists(), "{missing}");
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let name = format!("vswitch-etcd-test-{}-{n}", std::process::id());
    let dir = std::env::temp_dir().join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create the test directory");
    let log = std::fs::File::create(dir.join("etcd.log")).expect("create etcd.log");
    let (url, peer) = (free_url(), free_url());
    let child = Command::new(ETCD)
        .args(["--name", "t", "--data-dir"])
        .arg(dir.join("data"))
        .args([
            "--listen-client-urls",
            &url,
            "--advertise-client-urls",
            &url,
        ])
        .args([
            "--listen-peer-urls",
            &peer,
            "--initial-advertise-peer-urls",
            &peer,
        ])
        .args(["--initial-cluster", &format!("t={peer}")])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start etcd");
    let etcd = TestEtcd { child, dir, url };
    let client = Client::new(std::slice::from_ref(&etcd.url), Duration::from_secs(2)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while let Err(e) = client.revision() {
        if Instant::now() > deadline {
            let log = std::fs::read_to_string(etcd.dir.join("etcd.log"));
            panic!("etcd did not come up: {e}\n{}", log.unwrap_or_default());
        }
        sleep(Duration::from_millis(50));
    }
    (etcd, client)
}

fn put(key: &str, value: &[u8]) -> Op {
    let (key, value) = (key.to_string(), value.to_vec());
    Op::Put {
        key,
        value,
        lease: 0,
    }
}

#[test]
fn parses_endpoints() {
    let ok = |e: &str| parse_endpoint(e).unwrap();
    assert_eq!(ok("http://10.0.0.1:2379"), "10.0.0.1:2379");
    assert_eq!(ok("http://etcd.example:2379/"), "etcd.example:2379");
    assert_eq!(ok("localhost:2379"), "localhost:2379");
    assert_eq!(ok("[::1]:2379"), "[::1]:2379");
    for bad in [
        "https://h:1",
        "unix:///e",
        "h",
        "h:",
        ":1",
        "h:99999",
        "h:0",
        "http://h:1/x",
    ] {
        let e = parse_endpoint(bad).expect_err(bad).to_string();
        assert!(e.contains(bad), "{e}");
    }
    let https = parse_endpoint("https://h:2379").unwrap_err().to_string();
    assert!(https.contains("https is not supported"), "{https}");
    assert!(Client::new(&[], Duration::from_secs(1)).is_err());
}

#[test]
fn prefix_ranges() {
    assert_eq!(prefix_range("a/"), (b"a/".to_vec(), b"a0".to_vec()));
    let end = b"a\xc3\xc0".to_vec(); // "\u{ff}" is c3 bf in UTF-8
    assert_eq!(prefix_range("a\u{ff}"), (b"a\xc3\xbf".to_vec(), end));
    assert_eq!(prefix_range(""), (vec![0], vec![0]));
}

#[test]
fn kv_and_txn() {
    let (_etcd, c) = start_etcd();
    assert!(c.get("p/a").unwrap().is_none());
    let rev = c.put("p/a", b"1", 0).unwrap();
    c.put("p/b", &[0, 255, 10], 0).unwrap();
    c.put("q", b"other", 0).unwrap();
    let a = c.get("p/a").unwrap().unwrap();
    assert_eq!((a.key.as_str(), &a.value[..]), ("p/a", &b"1"[..]));
    assert_eq!((a.create_revision, a.mod_revision, a.lease), (rev, rev, 0));
    let (kvs, at) = c.range_prefix("p/").unwrap();
    let keys: Vec<&str> = kvs.iter().map(|kv| kv.key.as_str()).collect();
    assert_eq!(
        (&keys[..], &kvs[1].value[..]),
        (&["p/a", "p/b"][..], &[0, 255, 10][..])
    );
    assert!(at == rev + 2 && at == c.revision().unwrap());
    c.delete_prefix("p/").unwrap();
    assert!(c.range_prefix("p/").unwrap().0.is_empty());
    c.delete("q").unwrap();
    c.delete("q").unwrap();
    assert!(c.get("q").unwrap().is_none());

    let absent = [Compare::Created("lock".into(), 0)];
    assert!(c.txn(&absent, &[put("lock", b"me")], &[]).unwrap());
    assert!(!c.txn(&absent, &[put("lock", b"you")], &[]).unwrap());
    let lock = c.get("lock").unwrap().unwrap();
    assert_eq!(lock.value, b"me");
    let held = [
        Compare::Modified("lock".into(), lock.mod_revision),
        Compare::Value("lock".into(), b"me".to_vec()),
    ];
    let fail = [put("lost", b"")];
    assert!(c.txn(&held, &[Op::Delete("lock".into())], &fail).unwrap());
    assert!(!c
        .txn(&held, &[Op::DeletePrefix("l".into())], &fail)
        .unwrap());
    assert!(c.get("lost").unwrap().is_some());
    let twice = c.txn(&[], &[put("x", b"1"), put("x", b"2")], &[]);
    assert!(matches!(twice, Err(Error::Server(ref e)) if e.contains("duplicate")));
}

#[test]
fn leases() {
    let (_etcd, c) = start_etcd();
    let id = c.lease_grant(30).unwrap();
    c.put("leased", b"v", id).unwrap();
    assert_eq!(c.get("leased").unwrap().unwrap().lease, id);
    let ttl = c.lease_keepalive(id).unwrap();
    assert!(ttl > 0 && ttl <= 30, "{ttl}");
    c.lease_revoke(id).unwrap();
    assert!(c.get("leased").unwrap().is_none());
    assert!(matches!(c.lease_keepalive(id), Err(Error::LeaseGone)));
    assert!(matches!(c.lease_revoke(id), Err(Error::LeaseGone)));
    assert!(matches!(c.put("k", b"v", id), Err(Error::LeaseGone)));
}

#[test]
fn watch_sees_changes_and_cancels() {
    let (_etcd, c) = start_etcd();
    c.put("w/old", b"0", 0).unwrap();
    let mut w = c.watch("w/", c.revision().unwrap() + 1).unwrap();
    let c2 = Client::new(c.endpoints(), Duration::from_secs(2)).unwrap();
    let writer = spawn(move || {
        c2.put("outside", b"x", 0).unwrap();
        c2.put("w/a", b"1", 0).unwrap();
        c2.delete("w/a").unwrap()
    });
    let mut events = Vec::new();
    while events.len() < 2 {
        events.extend(w.next().unwrap());
    }
    writer.join().unwrap();
    let seen: Vec<_> = events.iter().map(|e| (e.kind, e.kv.key.as_str())).collect();
    assert_eq!(seen, [(EventKind::Put, "w/a"), (EventKind::Delete, "w/a")]);
    assert_eq!(events[0].kv.value, b"1");
    assert!(events[1].kv.mod_revision > events[0].kv.mod_revision);
    assert_eq!(w.revision(), events[1].kv.mod_revision);

    let canceller = w.canceller();
    let t = spawn(move || {
        sleep(Duration::from_millis(200));
        canceller.cancel();
    });
    let began = Instant::now();
    let e = w.next().unwrap_err();
    assert!(
        began.elapsed() < Duration::from_secs(2),
        "{:?}",
        began.elapsed()
    );
    assert!(e.to_string().contains("watch cancelled"), "{e}");
    t.join().unwrap();
}

#[test]
fn watch_from_compacted_revision() {
    let (_etcd, c) = start_etcd();
    for i in 0..3 {
        c.put("c/k", &[i], 0).unwrap();
    }
    let rev = c.revision().unwrap();
    c.compact(rev).unwrap();
    let mut w = c.watch("c/", 1).unwrap();
    match w.next() {
        Err(Error::Compacted(r)) => assert_eq!(r, rev),
        other => panic!("expected Compacted, got {other:?}"),
    }
    // From the compaction revision on, the history is there.
    let mut w = c.watch("c/", rev).unwrap();
    assert_eq!(w.next().unwrap()[0].kv.mod_revision, rev);
}

#[test]
fn fails_over_to_live_endpoint() {
    let (etcd, _) = start_etcd();
    // Accepts connections (into its backlog) but never answers.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let silent = format!("http://{}", silent.local_addr().unwrap());
    let eps = ["127.0.0.1:1".to_string(), silent, etcd.url.clone()];
    let c = Client::new(&eps, Duration::from_millis(300)).unwrap();
    assert_eq!(c.current(), "http://127.0.0.1:1");
    let began = Instant::now();
    c.put("k", b"v", 0).unwrap();
    assert!(
        began.elapsed() < Duration::from_secs(2),
        "{:?}",
        began.elapsed()
    );
    assert_eq!(c.current(), etcd.url);
    // The live endpoint is now tried first.
    let began = Instant::now();
    assert_eq!(c.get("k").unwrap().unwrap().value, b"v");
    assert!(
        began.elapsed() < Duration::from_millis(250),
        "{:?}",
        began.elapsed()
    );
    let mut w = c.watch("k", 0).unwrap();
    c.delete("k").unwrap();
    assert_eq!(w.next().unwrap()[0].kind, EventKind::Delete);
}

#[test]
fn dead_endpoints_are_unreachable() {
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let silent = silent.local_addr().unwrap().to_string();
    let eps = ["http://127.0.0.1:1".to_string(), silent.clone()];
    let c = Client::new(&eps, Duration::from_millis(500)).unwrap();
    let began = Instant::now();
    match c.revision() {
        Err(Error::Unreachable(why)) => {
            assert!(
                why.contains("127.0.0.1:1") && why.contains(&silent),
                "{why}"
            )
        }
        other => panic!("expected Unreachable, got {other:?}"),
    }
    assert!(
        began.elapsed() < Duration::from_millis(1500),
        "{:?}",
        began.elapsed()
    );
    assert!(matches!(c.watch("x", 0), Err(Error::Unreachable(_))));
}

/// A member that answers the first `busy` calls with etcd's "leader
/// changed" (unavailable), then serves a range with revision 5. Returns
/// its address and the count of calls it took.
fn electing_member(busy: u32) -> (String, Arc<AtomicU32>) {
    use std::io::Write;
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let calls = Arc::new(AtomicU32::new(0));
    let seen = calls.clone();
    spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { return };
            // The request: headers up to the blank line, then the body.
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut length = 0;
            let mut line = String::new();
            while r.read_line(&mut line).is_ok_and(|n| n > 0) && line.trim() != "" {
                let lower = line.to_ascii_lowercase();
                if let Some(v) = lower.strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
                line.clear();
            }
            let _ = r.read_exact(&mut vec![0; length]);
            let (status, body) = match seen.fetch_add(1, Ordering::SeqCst) < busy {
                true => (503, r#"{"error":"etcdserver: leader changed","code":14}"#),
                false => (200, r#"{"header":{"revision":"5"}}"#),
            };
            let _ = write!(
                s,
                "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (addr, calls)
}

#[test]
fn a_retrying_client_waits_out_an_election() {
    let (addr, calls) = electing_member(3);
    let once = Client::new(std::slice::from_ref(&addr), Duration::from_secs(1)).unwrap();
    match once.revision() {
        Err(Error::Unreachable(why)) => assert!(why.contains("leader changed"), "{why}"),
        other => panic!("expected Unreachable, got {other:?}"),
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    let patient = Client::new(&[addr], Duration::from_secs(1))
        .unwrap()
        .retrying(Duration::from_secs(5));
    assert_eq!(patient.revision().unwrap(), 5);
    assert_eq!(calls.load(Ordering::SeqCst), 4);
}

#[test]
fn a_retrying_client_does_not_wait_for_endpoints_nobody_listens_on() {
    let c = Client::new(&["127.0.0.1:1".to_string()], Duration::from_secs(1))
        .unwrap()
        .retrying(Duration::from_secs(10));
    let began = Instant::now();
    assert!(matches!(c.revision(), Err(Error::Unreachable(_))));
    assert!(
        began.elapsed() < Duration::from_secs(1),
        "{:?}",
        began.elapsed()
    );
}

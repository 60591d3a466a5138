//! The agent thread: this host's session with etcd.
//!
//! A session takes (or renews) the host's lease, publishes the host key and
//! the members under it, brings the local copy up to date (a full listing
//! the first time; after a break, a watch from the last revision seen, or a
//! new listing if etcd compacted that revision away), then follows a watch
//! of the whole prefix, renewing the lease every third of its TTL. Any
//! failure ends the session: the copy stays as it was (forwarding goes on
//! with it), the status says disconnected, and a new session is tried every
//! second. A watch runs on a thread of its own, cut by the agent when the
//! session ends.

use super::etcd::{self, Client, Error, Op};
use super::view::{self, View, PREFIX};
use super::{Desired, Shared, REQUEST_TIMEOUT};
use crate::config::ClusterCfg;
use crossbeam_channel::{select, unbounded, Receiver, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Most operations in one etcd transaction (etcd's default limit is 128).
const TXN_OPS: usize = 100;
const RETRY: Duration = Duration::from_secs(1);

enum Msg {
    Desired(Desired),
    Stop,
}

/// The running agent, as the control thread holds it.
pub(super) struct Agent {
    pub cfg: ClusterCfg,
    tx: Sender<Msg>,
}

impl Agent {
    pub fn start(cfg: ClusterCfg, shared: Arc<Shared>) -> Agent {
        let (tx, rx) = unbounded();
        let c = cfg.clone();
        let spawned = std::thread::Builder::new()
            .name("cluster".into())
            .spawn(move || run(c, shared, rx));
        if let Err(e) = spawned {
            log::error!("cluster: cannot start the agent thread: {e}");
        }
        Agent { cfg, tx }
    }

    pub fn publish(&self, d: Desired) {
        let _ = self.tx.send(Msg::Desired(d));
    }

    /// Ends the session; the agent revokes its lease on the way out, so
    /// the other hosts drop this one at once.
    pub fn stop(self) {
        let _ = self.tx.send(Msg::Stop);
    }
}

/// What outlives a session.
struct State {
    cfg: ClusterCfg,
    shared: Arc<Shared>,
    rx: Receiver<Msg>,
    lease: i64,
    /// The member keys wanted, and those in etcd under the lease.
    desired: Desired,
    published: Desired,
    view: Option<View>,
    last_client: Option<Arc<Client>>,
}

enum End {
    Stop,
}

fn run(cfg: ClusterCfg, shared: Arc<Shared>, rx: Receiver<Msg>) {
    let mut st = State {
        cfg,
        shared,
        rx,
        lease: 0,
        desired: Desired::new(),
        published: Desired::new(),
        view: None,
        last_client: None,
    };
    loop {
        match session(&mut st) {
            Ok(End::Stop) => break,
            Err(e) => {
                let msg = e.to_string();
                let was = st
                    .shared
                    .0
                    .lock()
                    .map(|i| i.status.connected)
                    .unwrap_or(false);
                if was {
                    log::warn!("cluster: disconnected from etcd: {msg}");
                }
                st.shared.set_status(|s| {
                    s.connected = false;
                    s.error = Some(msg);
                });
                if wait_for(&mut st, RETRY) {
                    break;
                }
            }
        }
    }
    if let (Some(c), true) = (&st.last_client, st.lease != 0) {
        match c.lease_revoke(st.lease) {
            Ok(()) => log::info!("cluster: left; lease {:x} revoked", st.lease),
            Err(e) => log::warn!(
                "cluster: left, but the lease could not be revoked ({e}); it expires by itself"
            ),
        }
    }
}

/// Waits `d`, taking new desired states; true when told to stop.
fn wait_for(st: &mut State, d: Duration) -> bool {
    let until = Instant::now() + d;
    loop {
        match st.rx.recv_deadline(until) {
            Ok(Msg::Desired(x)) => st.desired = x,
            Ok(Msg::Stop) => return true,
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => return false,
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => return true,
        }
    }
}

fn session(st: &mut State) -> Result<End, Error> {
    let client = Arc::new(Client::new(&st.cfg.endpoints, REQUEST_TIMEOUT)?);
    st.last_client = Some(client.clone());
    let vtep = super::vtep_of(&st.cfg).map_err(Error::Protocol)?;
    let ttl = i64::from(st.cfg.ttl.max(1));
    if st.lease == 0 || client.lease_keepalive(st.lease).is_err() {
        st.lease = client.lease_grant(ttl)?;
        st.published.clear();
        log::info!("cluster: lease {:x} granted, TTL {ttl} s", st.lease);
    }
    let host = serde_json::to_vec(&view::HostRec { vtep }).unwrap_or_default();
    client.put(&view::host_key(&st.cfg.host), &host, st.lease)?;
    // Catch up: a watch from the last revision seen replays what was
    // missed; without a copy, or when that revision is gone, list.
    let mut watch = match &st.view {
        Some(v) => match start_watch(&client, v.revision + 1) {
            Ok(w) => w,
            Err(Error::Compacted(_)) => relist(st, &client)?,
            Err(e) => return Err(e),
        },
        None => relist(st, &client)?,
    };
    publish(st, &client)?;
    st.shared.set_status(|s| {
        s.connected = true;
        s.error = None;
        s.endpoint = Some(client.current());
        s.lease = st.lease;
        s.vtep = Some(vtep);
    });
    log::info!(
        "cluster: connected to etcd at {} as host {} (VTEP {vtep})",
        client.current(),
        st.cfg.host
    );
    let every = Duration::from_millis(u64::from(st.cfg.ttl.max(1)) * 1000 / 3);
    let mut next_keepalive = Instant::now() + every;
    let result = loop {
        let wait = next_keepalive.saturating_duration_since(Instant::now());
        select! {
            recv(watch.events) -> m => match m {
                Ok(Ok(events)) => {
                    let mut events = events;
                    // Take everything already waiting: one new copy for all.
                    while let Ok(Ok(more)) = watch.events.try_recv() {
                        events.extend(more);
                    }
                    if let Some(v) = st.view.as_mut() {
                        v.apply(events);
                        st.shared.set_view(v.clone());
                    }
                }
                Ok(Err(Error::Compacted(rev))) => {
                    log::warn!("cluster: watch revision compacted (now {rev}); listing again");
                    watch.cancel();
                    watch = relist(st, &client)?;
                }
                Ok(Err(e)) => break Err(e),
                Err(_) => break Err(Error::Protocol("the watch thread ended".into())),
            },
            recv(st.rx) -> m => match m {
                Ok(Msg::Desired(d)) => {
                    st.desired = d;
                    if let Err(e) = publish(st, &client) {
                        break Err(e);
                    }
                }
                Ok(Msg::Stop) | Err(_) => break Ok(End::Stop),
            },
            default(wait) => {
                next_keepalive = Instant::now() + every;
                match client.lease_keepalive(st.lease) {
                    Ok(_) => {}
                    Err(Error::LeaseGone) => {
                        log::warn!("cluster: lease {:x} expired; registering again", st.lease);
                        st.lease = client.lease_grant(ttl)?;
                        st.published.clear();
                        client.put(&view::host_key(&st.cfg.host), &host, st.lease)?;
                        publish(st, &client)?;
                        st.shared.set_status(|s| s.lease = st.lease);
                    }
                    Err(e) => break Err(e),
                }
            }
        }
    };
    watch.cancel();
    result
}

/// A watch running on its own thread, its batches on a channel.
struct WatchThread {
    events: Receiver<Result<Vec<etcd::Event>, Error>>,
    canceller: etcd::WatchCanceller,
}

impl WatchThread {
    fn cancel(&self) {
        self.canceller.cancel();
    }
}

fn start_watch(client: &Client, from: i64) -> Result<WatchThread, Error> {
    let mut w = client.watch(PREFIX, from)?;
    let canceller = w.canceller();
    let (tx, rx) = unbounded();
    std::thread::Builder::new()
        .name("cluster-watch".into())
        .spawn(move || loop {
            let r = w.next();
            let end = r.is_err();
            if tx.send(r).is_err() || end {
                break;
            }
        })
        .map_err(|e| Error::Protocol(format!("cannot start the watch thread: {e}")))?;
    Ok(WatchThread {
        events: rx,
        canceller,
    })
}

/// Lists everything again, makes it the copy, and watches from there.
fn relist(st: &mut State, client: &Client) -> Result<WatchThread, Error> {
    let t = Instant::now();
    let (kvs, rev) = client.range_prefix(PREFIX)?;
    let v = View::from_list(kvs, rev);
    log::info!(
        "cluster: listed {} keys at revision {rev} in {} ms",
        v.len(),
        t.elapsed().as_millis()
    );
    st.shared.set_view(v.clone());
    st.view = Some(v);
    start_watch(client, rev + 1)
}

/// Brings the member keys in etcd to `desired`: puts what is new or
/// changed, deletes what is gone, in transactions of at most [`TXN_OPS`].
fn publish(st: &mut State, client: &Client) -> Result<(), Error> {
    let mut ops = Vec::new();
    for (k, v) in &st.desired {
        if st.published.get(k) != Some(v) {
            ops.push(Op::Put {
                key: k.clone(),
                value: v.clone(),
                lease: st.lease,
            });
        }
    }
    for k in st.published.keys() {
        if !st.desired.contains_key(k) {
            ops.push(Op::Delete(k.clone()));
        }
    }
    for chunk in ops.chunks(TXN_OPS) {
        client.txn(&[], chunk, &[])?;
    }
    st.published = st.desired.clone();
    Ok(())
}

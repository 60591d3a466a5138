//! Link impairment: netem and tbf inside the switch, as a wrapper around a
//! port's transmit half.
//!
//! A port with `options:delay`, `jitter`, `loss`, `rate`, `burst` or `limit`
//! has its [`TxQueue`] wrapped in an [`ImpairedTx`], so tests and demos can
//! emulate a slow, lossy or distant link without `tc` on every interface.
//! Frames are lost at random, then held in a queue ordered by due time
//! (`now + delay ± jitter`, so jitter reorders as in netem) and leave through
//! a token bucket (`rate`, `burst`) when `flush` finds them due.
//!
//! The settings live in an [`ImpairHandle`] shared with the control thread;
//! a change takes effect on the next send or flush. With no impairment set
//! the wrapper passes frames straight through, without copying, once frames
//! still queued from earlier settings have left.

use crate::{TxQueue, GATHER_MAX};
use pipeline::Packet;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::sync::atomic::{AtomicU64, Ordering::*};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Longest delay or jitter accepted.
const MAX_DELAY: Duration = Duration::from_secs(3600);
/// A due frame the inner queue refuses this long (too large for it, or its
/// ring stuck) is dropped and counted `refused`, so the queue cannot wedge.
const REFUSE_TIMEOUT: Duration = Duration::from_millis(100);

/// Egress impairment of one port (OVS-style interface options).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Impairment {
    pub delay: Duration,
    /// Uniform spread around `delay`: due = now + delay ± jitter.
    pub jitter: Duration,
    /// Probability that a frame is lost, in parts per million.
    pub loss_ppm: u32,
    /// Token bucket rate in bits per second; 0 = unlimited.
    pub rate_bps: u64,
    /// Token bucket depth in bytes; 0 = [`Impairment::effective_burst`]'s default.
    pub burst_bytes: u64,
    /// Most frames waiting; more are dropped and counted `overflow`.
    pub limit: usize,
}

impl Default for Impairment {
    /// No impairment, with netem's default queue limit.
    fn default() -> Self {
        Impairment {
            delay: Duration::ZERO,
            jitter: Duration::ZERO,
            loss_ppm: 0,
            rate_bps: 0,
            burst_bytes: 0,
            limit: Self::DEFAULT_LIMIT,
        }
    }
}

impl Impairment {
    /// The option names, for the config validator.
    pub const KEYS: &'static [&'static str] =
        &["delay", "jitter", "loss", "rate", "burst", "limit"];
    /// Queue limit in frames when `limit` is not set (netem's).
    pub const DEFAULT_LIMIT: usize = 1000;

    /// Reads a port's `options`: `delay`/`jitter` ("10ms", "500us", "1s",
    /// "2.5ms"), `loss` ("1%", "0.5%", "10" = percent), `rate` ("100mbit",
    /// "500kbit", "8000bit", a bare number = bit/s, "10mbps" = bytes/s),
    /// `burst` ("32kb" = 32 KiB, "1mb", "1500b", "1500") and `limit`
    /// (frames). Other keys are ignored. `Ok(None)` when none is set.
    /// Without `burst`, a rate gets 10 ms of bytes, at least 2 x 9216.
    pub fn from_options(o: &BTreeMap<String, String>) -> Result<Option<Impairment>, String> {
        if !Self::KEYS.iter().any(|k| o.contains_key(*k)) {
            return Ok(None);
        }
        let mut imp = Impairment::default();
        let opt = |k: &'static str| o.get(k).map(|v| (k, v.as_str()));
        if let Some((k, v)) = opt("delay") {
            imp.delay = parse_time(k, v)?;
        }
        if let Some((k, v)) = opt("jitter") {
            imp.jitter = parse_time(k, v)?;
            if !o.contains_key("delay") {
                return Err("options:jitter: needs options:delay".into());
            }
            if imp.jitter > imp.delay {
                return Err(bad(k, v, "more than options:delay"));
            }
        }
        if let Some((k, v)) = opt("loss") {
            let pct = number(k, v, 0.0..=100.0, "a percentage from 0 to 100", |u| {
                matches!(u, "" | "%").then_some(1.0)
            })?;
            imp.loss_ppm = (pct * 1e4).round() as u32;
        }
        if let Some((k, v)) = opt("rate") {
            let bps = number(k, v, 1.0..=1e15, "a rate such as 100mbit", |u| {
                let (prefix, bits) = match (u.strip_suffix("bit"), u.strip_suffix("bps")) {
                    (Some(p), _) => (p, 1.0),
                    (_, Some(p)) => (p, 8.0),
                    _ => (u, 1.0),
                };
                Some(bits * si(prefix, 1e3)?)
            })?;
            imp.rate_bps = bps.round() as u64;
        }
        if let Some((k, v)) = opt("burst") {
            let b = number(k, v, 1.0..=1e12, "a size such as 32kb", |u| {
                si(u.strip_suffix('b').unwrap_or(u), 1024.0)
            })?;
            if imp.rate_bps == 0 {
                return Err("options:burst: needs options:rate".into());
            }
            imp.burst_bytes = b.round() as u64;
        }
        if imp.rate_bps > 0 && imp.burst_bytes == 0 {
            imp.burst_bytes = imp.effective_burst();
        }
        if let Some((k, v)) = opt("limit") {
            imp.limit = match v.trim().parse::<usize>() {
                Ok(n) if n > 0 => n,
                _ => return Err(bad(k, v, "not a frame count above 0")),
            };
        }
        Ok(Some(imp))
    }

    /// Token bucket depth: `burst_bytes`, or 10 ms at `rate_bps` and at
    /// least two jumbo frames.
    pub fn effective_burst(&self) -> u64 {
        match self.burst_bytes {
            0 => (self.rate_bps / 800).max(2 * 9216),
            b => b,
        }
    }

    /// True when frames wait in the queue (delay, jitter or rate set).
    pub fn queues(&self) -> bool {
        !self.delay.is_zero() || !self.jitter.is_zero() || self.rate_bps != 0
    }
}

fn bad(key: &str, value: &str, what: &str) -> String {
    format!("options:{key}: {value:?} is {what}")
}

/// Digits and a point, then a unit (case-insensitive) that `unit` knows:
/// the number times the unit's factor, if within `range`.
fn number(
    key: &str,
    value: &str,
    range: std::ops::RangeInclusive<f64>,
    what: &str,
    unit: impl Fn(&str) -> Option<f64>,
) -> Result<f64, String> {
    let v = value.trim();
    let end = v
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(v.len());
    match (
        v[..end].parse::<f64>(),
        unit(&v[end..].trim().to_ascii_lowercase()),
    ) {
        (Ok(n), Some(f)) if range.contains(&(n * f)) => Ok(n * f),
        _ => Err(bad(key, value, &format!("not {what}"))),
    }
}

/// The factor of a unit prefix: none, k, m, g, t in powers of `k`; ki, mi,
/// gi in powers of 1024.
fn si(prefix: &str, k: f64) -> Option<f64> {
    let (p, k) = match prefix.strip_suffix('i') {
        Some(p) if !p.is_empty() => (p, 1024.0),
        _ => (prefix, k),
    };
    let n = ["", "k", "m", "g", "t"].iter().position(|x| *x == p)?;
    Some(k.powi(n as i32))
}

/// A duration with a unit, s, ms or us (also sec, msec, usec...), up to
/// an hour. A bare number is refused, though tc reads it as microseconds.
fn parse_time(key: &str, value: &str) -> Result<Duration, String> {
    let ns = number(
        key,
        value,
        0.0..=3.6e12,
        "a duration such as 10ms, 500us or 1s",
        |u| match u {
            "s" | "sec" | "secs" => Some(1e9),
            "ms" | "msec" | "msecs" => Some(1e6),
            "us" | "usec" | "usecs" => Some(1e3),
            _ => None,
        },
    )?;
    Ok(Duration::from_nanos(ns.round() as u64))
}

/// Counters of an impaired port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ImpairStats {
    /// Frames waiting now.
    pub queued_now: u64,
    /// Frames that entered the queue (cumulative).
    pub delayed_total: u64,
    /// Frames lost at random (`loss`).
    pub lost: u64,
    /// Frames dropped because `limit` frames were waiting.
    pub overflow: u64,
    /// Due frames dropped after the inner queue refused them for 100 ms.
    pub refused: u64,
}

/// The settings and counters of one impaired port, shared between the
/// control thread and the [`ImpairedTx`].
#[derive(Debug)]
pub struct ImpairHandle {
    generation: AtomicU64,
    settings: Mutex<Impairment>,
    counters: [AtomicU64; 5],
}

impl ImpairHandle {
    pub fn new(imp: Impairment) -> Arc<ImpairHandle> {
        Arc::new(ImpairHandle {
            generation: AtomicU64::new(0),
            settings: Mutex::new(imp),
            counters: Default::default(),
        })
    }

    /// Replaces the settings; the wrapper applies them on its next send or flush.
    pub fn set(&self, imp: Impairment) {
        *self.settings.lock().unwrap_or_else(|e| e.into_inner()) = imp;
        self.generation.fetch_add(1, Release);
    }

    pub fn get(&self) -> Impairment {
        *self.settings.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn stats(&self) -> ImpairStats {
        let [q, d, l, o, r] = self.counters.each_ref().map(|c| c.load(Relaxed));
        ImpairStats {
            queued_now: q,
            delayed_total: d,
            lost: l,
            overflow: o,
            refused: r,
        }
    }

    fn add(&self, i: usize, n: u64) {
        self.counters[i].fetch_add(n, Relaxed);
    }
}

const QUEUED: usize = 0;
const DELAYED: usize = 1;
const LOST: usize = 2;
const OVERFLOW: usize = 3;
const REFUSED: usize = 4;

/// What to do with a frame handed to `send*`.
enum Admit {
    Pass,
    Queue(Instant),
    Done(bool),
}

/// A transmit half with an [`Impairment`] applied in front of `inner`.
///
/// Lost frames and frames beyond `limit` are dropped silently as netem does:
/// `send` returns true (the link ate them, the port did not refuse them)
/// and the handle counts them `lost` / `overflow`.
pub struct ImpairedTx {
    inner: Box<dyn TxQueue>,
    handle: Arc<ImpairHandle>,
    clock: Box<dyn Fn() -> Instant + Send>,
    generation: u64,
    cur: Impairment,
    /// Waiting frames by (due, sequence): equal due times keep their order.
    queue: BinaryHeap<Reverse<(Instant, u64, Vec<u8>)>>,
    free: Vec<Vec<u8>>,
    seq: u64,
    rng: u64,
    tokens: f64,
    /// Last clock reading; the bucket is filled up to it.
    last: Instant,
    /// Since when the inner queue refuses frames (reset by one it takes).
    refused_since: Option<Instant>,
}

impl ImpairedTx {
    pub fn new(inner: Box<dyn TxQueue>, handle: Arc<ImpairHandle>) -> ImpairedTx {
        Self::with_clock(inner, handle, Box::new(Instant::now))
    }

    /// For tests: a clock other than `Instant::now`.
    pub fn with_clock(
        inner: Box<dyn TxQueue>,
        handle: Arc<ImpairHandle>,
        clock: Box<dyn Fn() -> Instant + Send>,
    ) -> ImpairedTx {
        let generation = handle.generation.load(Acquire);
        let cur = handle.get();
        let seed =
            std::hash::BuildHasher::hash_one(&std::collections::hash_map::RandomState::new(), 0u8);
        ImpairedTx {
            inner,
            handle,
            generation,
            cur,
            last: clock(),
            clock,
            queue: BinaryHeap::new(),
            free: Vec::new(),
            seq: 0,
            rng: seed,
            tokens: cur.effective_burst() as f64,
            refused_since: None,
        }
    }

    /// The inner transmit half; frames still queued are dropped.
    pub fn into_inner(self) -> Box<dyn TxQueue> {
        self.handle.counters[QUEUED].store(0, Relaxed);
        self.inner
    }

    /// The earliest time a queued frame may leave, as of the last send or
    /// flush (a bound for the poll thread's sleep). None when none waits.
    pub fn next_due(&self) -> Option<Instant> {
        let Reverse((due, _, frame)) = self.queue.peek()?;
        if !self.cur.queues() {
            return Some(self.last);
        }
        let need = (frame.len() as u64).min(self.cur.effective_burst()) as f64;
        if self.cur.rate_bps == 0 || self.tokens >= need {
            return Some(*due);
        }
        let wait = Duration::from_secs_f64((need - self.tokens) * 8.0 / self.cur.rate_bps as f64);
        Some((*due).max(self.last + wait))
    }

    /// Picks up changed settings (one atomic load when nothing changed).
    fn refresh(&mut self) {
        let g = self.handle.generation.load(Acquire);
        if g != self.generation {
            self.generation = g;
            let new = self.handle.get();
            if self.cur.rate_bps == 0 {
                self.tokens = f64::MAX;
            }
            self.tokens = self.tokens.min(new.effective_burst() as f64);
            self.cur = new;
        }
    }

    /// Reads the clock and fills the bucket up to now.
    fn tick(&mut self) -> Instant {
        let now = (self.clock)();
        if self.cur.rate_bps > 0 {
            let add = now.saturating_duration_since(self.last).as_secs_f64()
                * self.cur.rate_bps as f64
                / 8.0;
            self.tokens = (self.tokens + add).min(self.cur.effective_burst() as f64);
        }
        self.last = now;
        now
    }

    /// splitmix64.
    fn rand(&mut self) -> u64 {
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let z = (self.rng ^ (self.rng >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        let z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn admit(&mut self, len: usize) -> Admit {
        self.refresh();
        if !self.cur.queues() && !self.queue.is_empty() {
            self.release();
            if !self.queue.is_empty() {
                return Admit::Done(false); // inner full: refuse rather than reorder
            }
        }
        if self.cur.loss_ppm > 0 && self.rand() % 1_000_000 < u64::from(self.cur.loss_ppm) {
            self.handle.add(LOST, 1);
            return Admit::Done(true);
        }
        if !self.cur.queues() {
            return Admit::Pass;
        }
        if len > GATHER_MAX {
            return Admit::Done(false);
        }
        if self.queue.len() >= self.cur.limit.max(1) {
            self.handle.add(OVERFLOW, 1);
            return Admit::Done(true);
        }
        let (delay, jitter) = (
            self.cur.delay.min(MAX_DELAY),
            self.cur.jitter.min(MAX_DELAY),
        );
        let mut after = delay;
        if !jitter.is_zero() {
            let j = jitter.as_nanos() as u64;
            let r = self.rand() % (2 * j + 1);
            after = if r >= j {
                delay + Duration::from_nanos(r - j)
            } else {
                delay.saturating_sub(Duration::from_nanos(j - r))
            };
        }
        Admit::Queue(self.tick() + after)
    }

    fn enqueue(&mut self, due: Instant, fill: impl FnOnce(&mut Vec<u8>)) -> bool {
        let mut frame = self.free.pop().unwrap_or_default();
        frame.clear();
        fill(&mut frame);
        self.seq += 1;
        self.queue.push(Reverse((due, self.seq, frame)));
        self.handle.add(DELAYED, 1);
        self.handle.counters[QUEUED].store(self.queue.len() as u64, Relaxed);
        true
    }

    /// Sends due frames in order while the bucket allows; everything
    /// queued when no impairment queues any more.
    fn release(&mut self) {
        let now = self.tick();
        let queues = self.cur.queues();
        let burst = self.cur.effective_burst();
        let mut kicked = false;
        while let Some(Reverse((due, _, frame))) = self.queue.peek() {
            let len = frame.len() as u64;
            if queues
                && (*due > now || (self.cur.rate_bps > 0 && self.tokens < len.min(burst) as f64))
            {
                break;
            }
            if self.inner.send(frame) {
                self.refused_since = None;
                if queues && self.cur.rate_bps > 0 {
                    self.tokens -= len as f64;
                }
            } else if !kicked {
                kicked = true;
                self.inner.flush();
                continue;
            } else {
                let since = *self.refused_since.get_or_insert(now);
                if now.saturating_duration_since(since) < REFUSE_TIMEOUT {
                    break;
                }
                self.handle.add(REFUSED, 1);
            }
            if let Some(Reverse((_, _, frame))) = self.queue.pop() {
                self.free.push(frame);
            }
        }
        self.handle.counters[QUEUED].store(self.queue.len() as u64, Relaxed);
    }
}

impl TxQueue for ImpairedTx {
    fn send(&mut self, frame: &[u8]) -> bool {
        match self.admit(frame.len()) {
            Admit::Pass => self.inner.send(frame),
            Admit::Queue(due) => self.enqueue(due, |b| b.extend_from_slice(frame)),
            Admit::Done(ok) => ok,
        }
    }

    fn send_parts(&mut self, parts: &[&[u8]]) -> bool {
        match self.admit(parts.iter().map(|p| p.len()).sum()) {
            Admit::Pass => self.inner.send_parts(parts),
            Admit::Queue(due) => {
                self.enqueue(due, |b| parts.iter().for_each(|p| b.extend_from_slice(p)))
            }
            Admit::Done(ok) => ok,
        }
    }

    fn send_packet(&mut self, pkt: &mut Packet) -> bool {
        match self.admit(pkt.len()) {
            Admit::Pass => self.inner.send_packet(pkt),
            Admit::Queue(due) => self.enqueue(due, |b| b.extend_from_slice(pkt.data())),
            Admit::Done(ok) => ok,
        }
    }

    fn flush(&mut self) {
        self.refresh();
        if !self.queue.is_empty() {
            self.release();
        }
        self.inner.flush();
    }

    fn flush_is_syscall(&self) -> bool {
        self.inner.flush_is_syscall()
    }

    fn pending(&self) -> bool {
        !self.queue.is_empty() || self.inner.pending()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::{FrameQueue, MemoryTx};

    fn opts(kv: &[(&str, &str)]) -> Result<Option<Impairment>, String> {
        Impairment::from_options(
            &kv.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    fn one(k: &str, v: &str) -> Impairment {
        let mut kv = vec![(k, v)];
        match k {
            "jitter" => kv.push(("delay", "1s")),
            "burst" => kv.push(("rate", "1mbit")),
            _ => {}
        }
        opts(&kv).unwrap().unwrap()
    }

    #[test]
    fn impair_parse() {
        assert_eq!(opts(&[("mtu", "1500")]), Ok(None));
        let ms = Duration::from_millis;
        assert_eq!(one("delay", "10ms").delay, ms(10));
        assert_eq!(one("delay", "500us").delay, Duration::from_micros(500));
        assert_eq!(one("delay", "1s").delay, ms(1000));
        assert_eq!(one("delay", "2.5ms").delay, Duration::from_micros(2500));
        assert_eq!(one("jitter", "3ms").jitter, ms(3));
        assert_eq!(one("loss", "1%").loss_ppm, 10_000);
        assert_eq!(one("loss", "0.5%").loss_ppm, 5_000);
        assert_eq!(one("loss", "10").loss_ppm, 100_000);
        assert_eq!(one("rate", "100mbit").rate_bps, 100_000_000);
        assert_eq!(one("rate", "1gbit").rate_bps, 1_000_000_000);
        assert_eq!(one("rate", "500kbit").rate_bps, 500_000);
        assert_eq!(one("rate", "8000bit").rate_bps, 8000);
        assert_eq!(one("rate", "10mbps").rate_bps, 80_000_000);
        assert_eq!(one("burst", "32kb").burst_bytes, 32768);
        assert_eq!(one("burst", "1mb").burst_bytes, 1 << 20);
        assert_eq!(one("burst", "1500b").burst_bytes, 1500);
        assert_eq!(one("burst", "1500").burst_bytes, 1500);
        assert_eq!(one("rate", "10gbit").burst_bytes, 12_500_000);
        assert_eq!(one("rate", "1mbit").burst_bytes, 2 * 9216);
        assert_eq!(one("limit", "50").limit, 50);
        let all = opts(&[("delay", "10ms"), ("loss", "1%"), ("other", "x")])
            .unwrap()
            .unwrap();
        assert_eq!(
            (all.delay, all.loss_ppm, all.limit, all.rate_bps),
            (ms(10), 10_000, 1000, 0)
        );
        let (dur, rate) = (
            "not a duration such as 10ms, 500us or 1s",
            "not a rate such as 100mbit",
        );
        for (k, v, what) in [
            ("delay", "abc", dur),
            ("delay", "-1ms", dur),
            ("delay", "10", dur),
            ("delay", "2h", dur),
            ("loss", "150%", "not a percentage from 0 to 100"),
            ("rate", "fast", rate),
            ("rate", "0bit", rate),
            ("burst", "1kbit", "not a size such as 32kb"),
            ("jitter", "2ms", "more than options:delay"),
            ("limit", "0", "not a frame count above 0"),
        ] {
            let kv = [("delay", "1ms"), ("rate", "1mbit"), (k, v)]; // the last value wins
            assert_eq!(opts(&kv), Err(format!("options:{k}: {v:?} is {what}")));
        }
        assert_eq!(
            opts(&[("jitter", "2ms")]),
            Err("options:jitter: needs options:delay".into())
        );
        assert_eq!(
            opts(&[("burst", "32kb")]),
            Err("options:burst: needs options:rate".into())
        );
    }

    /// A wrapper over a memory port, its output, its handle and a clock
    /// advanced by hand (nanoseconds).
    fn rig(imp: Impairment) -> (ImpairedTx, FrameQueue, Arc<ImpairHandle>, Arc<AtomicU64>) {
        let out = FrameQueue::default();
        let inner = Box::new(MemoryTx {
            output: out.clone(),
            limit: usize::MAX,
        });
        let handle = ImpairHandle::new(imp);
        let (t0, off) = (Instant::now(), Arc::new(AtomicU64::new(0)));
        let o = off.clone();
        let tx = ImpairedTx::with_clock(
            inner,
            handle.clone(),
            Box::new(move || t0 + Duration::from_nanos(o.load(Relaxed))),
        );
        (tx, out, handle, off)
    }

    fn ids(out: &FrameQueue) -> Vec<u32> {
        out.lock()
            .unwrap()
            .iter()
            .map(|f| u32::from_be_bytes(f[..4].try_into().unwrap()))
            .collect()
    }

    fn delayed(ms: u64, jitter_us: u64) -> Impairment {
        Impairment {
            delay: Duration::from_millis(ms),
            jitter: Duration::from_micros(jitter_us),
            ..Default::default()
        }
    }

    #[test]
    fn impair_delay_keeps_order() {
        let (mut tx, out, h, clock) = rig(delayed(10, 0));
        for i in 0..100u32 {
            assert!(tx.send(&i.to_be_bytes()));
        }
        tx.flush();
        clock.store(9_999_999, Relaxed);
        tx.flush();
        assert!(out.lock().unwrap().is_empty() && tx.pending());
        assert_eq!(tx.next_due(), Some(tx.last + Duration::from_nanos(1)));
        clock.store(10_000_000, Relaxed);
        tx.flush();
        assert_eq!(ids(&out), (0..100).collect::<Vec<_>>());
        assert!(!tx.pending() && tx.next_due().is_none());
        assert_eq!(
            h.stats(),
            ImpairStats {
                delayed_total: 100,
                ..Default::default()
            }
        );
    }

    #[test]
    fn impair_jitter_bounds_and_reorders() {
        let (mut tx, out, _, clock) = rig(delayed(10, 5000));
        let mut sent_at = Vec::new();
        let mut left_at = vec![0u64; 1000];
        for t in (0..30_000_000u64).step_by(10_000) {
            clock.store(t, Relaxed);
            if sent_at.len() < 1000 {
                assert!(tx.send(&(sent_at.len() as u32).to_be_bytes()));
                sent_at.push(t);
            }
            let before = out.lock().unwrap().len();
            tx.flush();
            for &i in &ids(&out)[before..] {
                left_at[i as usize] = t;
            }
        }
        let order = ids(&out);
        assert_eq!(order.len(), 1000);
        assert!(order.windows(2).any(|w| w[0] > w[1]), "no reordering");
        for (s, l) in sent_at.iter().zip(&left_at) {
            assert!((5_000_000..=15_010_000).contains(&(l - s)), "{}", l - s);
        }
    }

    #[test]
    fn impair_loss() {
        for (ppm, lo, hi) in [
            (100_000, 9_000, 11_000),
            (0, 0, 0),
            (1_000_000, 100_000, 100_000),
        ] {
            let (mut tx, out, h, _) = rig(Impairment {
                loss_ppm: ppm,
                ..Default::default()
            });
            for _ in 0..100_000 {
                assert!(tx.send(b"frame"));
            }
            let lost = h.stats().lost;
            assert!((lo..=hi).contains(&lost), "{ppm} ppm: {lost} lost");
            assert_eq!(out.lock().unwrap().len() as u64, 100_000 - lost);
        }
    }

    #[test]
    fn impair_rate() {
        let (mut tx, out, h, clock) = rig(Impairment {
            rate_bps: 8_000_000,
            ..Default::default()
        });
        let frame = [0u8; 1000];
        for t in (0..=1_000_000_000u64).step_by(100_000) {
            clock.store(t, Relaxed);
            assert!(tx.send(&frame));
            tx.flush();
        }
        let bytes: usize = out.lock().unwrap().iter().map(|f| f.len()).sum();
        let want = 1_000_000.0 + 18432.0;
        assert!((bytes as f64 - want).abs() < want * 0.02, "{bytes} bytes");
        assert!(tx.next_due().unwrap() > tx.last);
        assert!(h.stats().overflow > 0);
    }

    #[test]
    fn impair_limit_overflow_and_refusal() {
        let (mut tx, out, h, clock) = rig(Impairment {
            limit: 10,
            ..delayed(1, 0)
        });
        for i in 0..15u32 {
            assert!(tx.send(&i.to_be_bytes()));
        }
        assert_eq!(
            h.stats(),
            ImpairStats {
                queued_now: 10,
                delayed_total: 10,
                overflow: 5,
                ..Default::default()
            }
        );
        // A refused frame stays at the head until the inner queue has room.
        let mut tx = ImpairedTx {
            inner: Box::new(MemoryTx {
                output: out.clone(),
                limit: 4,
            }),
            ..tx
        };
        clock.store(1_000_000, Relaxed);
        tx.flush();
        assert_eq!(ids(&out), [0, 1, 2, 3]);
        out.lock().unwrap().clear();
        tx.flush();
        assert_eq!(ids(&out), [4, 5, 6, 7]);
        assert_eq!(h.stats().queued_now, 2);
        // Refused for 100 ms, the rest is dropped instead of wedging the port.
        clock.store(2_000_000, Relaxed);
        tx.flush();
        clock.store(102_000_000, Relaxed);
        tx.flush();
        let s = h.stats();
        assert_eq!((s.queued_now, s.refused, tx.pending()), (0, 2, false));
    }

    #[test]
    fn impair_removed_releases_queue_first() {
        let (mut tx, out, h, _) = rig(delayed(10, 0));
        for i in 0..5u32 {
            tx.send(&i.to_be_bytes());
        }
        h.set(Impairment::default());
        assert!(tx.send(&5u32.to_be_bytes()));
        assert!(tx.send_parts(&[&[0, 0], &[0, 6]]));
        assert_eq!(ids(&out), [0, 1, 2, 3, 4, 5, 6]);
        assert!(!tx.pending());
        assert_eq!(h.stats().queued_now, 0);
    }

    #[test]
    fn impair_change_takes_effect_on_next_send() {
        let (mut tx, out, h, _) = rig(Impairment::default());
        assert!(tx.send(b"a"));
        assert_eq!(out.lock().unwrap().len(), 1);
        h.set(delayed(10, 0));
        assert!(tx.send(b"b"));
        assert_eq!((out.lock().unwrap().len(), tx.pending()), (1, true));
        h.set(Impairment {
            loss_ppm: 1_000_000,
            ..delayed(10, 0)
        });
        assert!(tx.send(b"c"));
        assert_eq!(h.stats().lost, 1);
        let mut pkt = Packet::new();
        assert!(pkt.fill(b"d"));
        h.set(Impairment::default());
        assert!(tx.send_packet(&mut pkt));
        assert_eq!(
            out.lock().unwrap().iter().map(|f| f[0]).collect::<Vec<_>>(),
            b"abd"
        );
        assert!(tx.into_inner().send(b"e"));
    }
}

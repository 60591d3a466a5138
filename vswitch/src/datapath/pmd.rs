//! Poll-mode threads.
//!
//! Each thread owns some receive queues, polls them in a loop, and forwards
//! what arrives in batches. The control thread talks to it only through a
//! command channel (new snapshot, queues added or removed), read between
//! batches, and an eventfd that wakes it from its idle sleep.
//!
//! Idle back-off: after `spin` of polling with nothing received, the thread
//! sleeps in `ppoll()` on the queues' descriptors and its eventfd, so a frame
//! or a command wakes it at once; the timeout (`pmd-sleep-max`) bounds the
//! delay for queues that cannot signal readiness. The spin window is long
//! enough (default 20 ms) that request/response traffic never waits for a
//! wake-up, and short enough that an idle switch costs next to nothing.

use super::cycles::{self, Calibration};
use super::forward::Forwarder;
use super::Snapshot;
use crossbeam_channel::{Receiver, Sender};
use pipeline::{Batch, PortNo};
use ports::RxQueue;
use serde::Serialize;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How a poll thread idles.
#[derive(Debug, Clone, Copy)]
pub struct IdlePolicy {
    /// Keep polling this long after the last frame before sleeping, while
    /// traffic is heavy.
    pub spin: Duration,
    /// Longest sleep (bounds the delay for queues without a wake fd).
    pub sleep_max: Duration,
    /// Follow the load: while fewer than [`BUSY_BATCHES_PER_SEC`] batches
    /// arrive, spin only [`LIGHT_SPIN`] after the last one (long enough for
    /// the answer of a request/response exchange) and then sleep until a
    /// queue signals, as NAPI and VPP's adaptive mode do. Off: always spin
    /// `spin`.
    pub adaptive: bool,
}

/// Below this many batches a second a poll thread counts as lightly
/// loaded: a batch every 500 µs or more, against a wake-up that costs
/// tens of microseconds.
pub const BUSY_BATCHES_PER_SEC: u64 = 2_000;
/// The spin after the last frame under light load.
pub const LIGHT_SPIN: Duration = Duration::from_micros(200);

impl Default for IdlePolicy {
    fn default() -> Self {
        IdlePolicy {
            spin: Duration::from_millis(20),
            sleep_max: Duration::from_millis(1),
            adaptive: true,
        }
    }
}

impl IdlePolicy {
    /// The spin for a thread that saw `batches` batches in the last
    /// `window`.
    fn spin_for(&self, batches: u64, window: Duration) -> Duration {
        let busy =
            batches as u128 * 1_000_000 >= BUSY_BATCHES_PER_SEC as u128 * window.as_micros().max(1);
        if !self.adaptive || busy {
            self.spin
        } else {
            self.spin.min(LIGHT_SPIN)
        }
    }
}

pub enum Command {
    AddRxq {
        port_no: PortNo,
        name: String,
        queue: usize,
        rxq: Box<dyn RxQueue>,
    },
    RemovePort(PortNo),
    Snapshot(Arc<Snapshot>),
    /// Answered once every earlier command has been applied.
    Sync(Sender<()>),
    Stop,
}

/// Counters of one poll thread, published a few times a second.
#[derive(Default)]
pub struct PmdStats {
    pub packets: AtomicU64,
    pub batches: AtomicU64,
    /// Cycles (see `cycles`) of loop iterations that received or sent.
    pub busy_cycles: AtomicU64,
    /// The part of `busy_cycles` spent handing frames to the kernel.
    pub tx_cycles: AtomicU64,
    /// Cycles of iterations that found nothing, and of idle sleeps.
    pub idle_cycles: AtomicU64,
    pub sleeps: AtomicU64,
    pub rxqs: Mutex<Vec<(String, usize)>>,
    pub calibration: Calibration,
}

#[derive(Debug, Clone, Serialize)]
pub struct PmdReport {
    pub pmd: usize,
    pub core: Option<usize>,
    pub packets: u64,
    pub batches: u64,
    pub avg_batch: f64,
    pub busy_cycles: u64,
    pub idle_cycles: u64,
    /// Part of `busy_cycles` spent in `TxQueue::flush` (for AF_XDP the
    /// `sendto()` kick, inside which the kernel builds the skb, transmits
    /// it and often runs the receiver's stack).
    pub tx_cycles: u64,
    /// Counter ticks per second (the TSC's rate on x86_64).
    pub cycles_hz: f64,
    pub busy_pct: f64,
    /// `tx_cycles` in percent of `busy_cycles`.
    pub tx_pct_of_busy: f64,
    /// All cycles (busy and idle) per packet received.
    pub cycles_per_packet: f64,
    /// Busy cycles per packet received.
    pub busy_cycles_per_packet: f64,
    /// The same figures in nanoseconds.
    pub busy_ns: u64,
    pub idle_ns: u64,
    pub ns_per_packet: f64,
    pub sleeps: u64,
    pub rxqs: Vec<String>,
}

/// A shared time base: milliseconds since the daemon started. MAC ages are
/// kept in it by all threads.
#[derive(Clone, Copy)]
pub struct Clock(Instant);

impl Default for Clock {
    fn default() -> Self {
        Clock(Instant::now())
    }
}

impl Clock {
    #[inline]
    pub fn now_ms(&self) -> u64 {
        self.0.elapsed().as_millis() as u64
    }

    /// The time base's reading at `t` (saves a clock read when the caller
    /// has one).
    #[inline]
    pub fn ms_at(&self, t: Instant) -> u64 {
        t.saturating_duration_since(self.0).as_millis() as u64
    }
}

pub struct Pmd {
    pub id: usize,
    pub core: Option<usize>,
    pub stats: Arc<PmdStats>,
    commands: Sender<Command>,
    wake: Arc<OwnedFd>,
    thread: Option<JoinHandle<()>>,
}

impl Pmd {
    pub fn spawn(
        id: usize,
        core: Option<usize>,
        idle: IdlePolicy,
        clock: Clock,
    ) -> io::Result<Pmd> {
        let (tx, rx) = crossbeam_channel::unbounded();
        let wake = Arc::new(eventfd()?);
        let stats = Arc::new(PmdStats::default());
        let worker = Worker {
            core,
            commands: rx,
            wake: wake.clone(),
            stats: stats.clone(),
            idle,
            clock,
        };
        let thread = std::thread::Builder::new()
            .name(format!("pmd{id}"))
            .spawn(move || worker.run())?;
        Ok(Pmd {
            id,
            core,
            stats,
            commands: tx,
            wake,
            thread: Some(thread),
        })
    }

    pub fn send(&self, cmd: Command) {
        // A send only fails when the thread has exited; stop() reports that.
        let _ = self.commands.send(cmd);
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live u64 to an eventfd we own.
        unsafe {
            libc::write(
                self.wake.as_raw_fd(),
                (&one as *const u64).cast(),
                std::mem::size_of::<u64>(),
            )
        };
    }

    /// Waits until every command sent so far has been applied.
    pub fn sync(&self) {
        let (tx, rx) = crossbeam_channel::bounded(1);
        self.send(Command::Sync(tx));
        let _ = rx.recv_timeout(Duration::from_secs(5));
    }

    pub fn report(&self) -> PmdReport {
        let s = &self.stats;
        let packets = s.packets.load(Relaxed);
        let batches = s.batches.load(Relaxed);
        let busy = s.busy_cycles.load(Relaxed);
        let idle = s.idle_cycles.load(Relaxed);
        let tx = s.tx_cycles.load(Relaxed);
        let cal = &s.calibration;
        let rxqs = s
            .rxqs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(n, q)| format!("{n} queue {q}"))
            .collect();
        PmdReport {
            pmd: self.id,
            core: self.core,
            packets,
            batches,
            avg_batch: ratio(packets, batches),
            busy_cycles: busy,
            idle_cycles: idle,
            tx_cycles: tx,
            cycles_hz: cal.hz(),
            busy_pct: 100.0 * ratio(busy, busy + idle),
            tx_pct_of_busy: 100.0 * ratio(tx, busy),
            cycles_per_packet: ratio(busy + idle, packets),
            busy_cycles_per_packet: ratio(busy, packets),
            busy_ns: cal.to_ns(busy),
            idle_ns: cal.to_ns(idle),
            ns_per_packet: ratio(cal.to_ns(busy), packets),
            sleeps: s.sleeps.load(Relaxed),
            rxqs,
        }
    }

    /// False once the thread has ended (it only ends on `Stop` or a bug).
    pub fn is_alive(&self) -> bool {
        self.thread.as_ref().is_some_and(|t| !t.is_finished())
    }

    pub fn clear_stats(&self) {
        for c in [
            &self.stats.packets,
            &self.stats.batches,
            &self.stats.busy_cycles,
            &self.stats.tx_cycles,
            &self.stats.idle_cycles,
            &self.stats.sleeps,
        ] {
            c.store(0, Relaxed);
        }
    }
}

impl Drop for Pmd {
    fn drop(&mut self) {
        self.send(Command::Stop);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

/// Adds what the kernel dropped on each queue since the last reading to its
/// port's counters.
fn publish_kernel_drops(rxqs: &mut [Rxq], snap: &Snapshot) {
    for q in rxqs {
        let now = q.rxq.kernel_drops();
        if now > q.kernel_drops {
            if let Some(p) = snap.port(q.port_no) {
                p.stats
                    .kernel_rx_drops
                    .fetch_add(now - q.kernel_drops, Relaxed);
            }
        }
        q.kernel_drops = now;
    }
}

fn eventfd() -> io::Result<OwnedFd> {
    // SAFETY: plain eventfd() call; the result is checked before use.
    let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

struct Rxq {
    port_no: PortNo,
    rxq: Box<dyn RxQueue>,
    /// Checked only every `SYSCALL_POLL_EVERY` iterations (see
    /// `RxQueue::recv_is_syscall`), unless it just received.
    slow: bool,
    hot: bool,
    /// Last reading of `RxQueue::kernel_drops`.
    kernel_drops: u64,
}

/// How long the load is measured over before the spin is chosen again.
const LOAD_WINDOW: Duration = Duration::from_millis(100);

/// How often a queue whose `recv` is a system call is polled while idle
/// (a power of two).
const SYSCALL_POLL_EVERY: u32 = 16;

/// How often the loop reads the clock (a power of two), and always right
/// after a wake-up. Its readings time the spin before sleeping and stamp
/// learned MACs; a few iterations' staleness (at most milliseconds) does not
/// matter for either, and `clock_gettime` on every iteration was 2-3 % of a
/// busy poll thread. Busy and idle time are counted with `cycles::now`.
const CLOCK_EVERY: u32 = 32;

struct Worker {
    core: Option<usize>,
    commands: Receiver<Command>,
    wake: Arc<OwnedFd>,
    stats: Arc<PmdStats>,
    idle: IdlePolicy,
    clock: Clock,
}

/// Counters kept locally and published now and then.
#[derive(Default)]
struct Local {
    packets: u64,
    batches: u64,
    busy_cycles: u64,
    tx_cycles: u64,
    idle_cycles: u64,
    sleeps: u64,
}

impl Worker {
    fn run(self) {
        if let Some(core) = self.core {
            if !core_affinity::set_for_current(core_affinity::CoreId { id: core }) {
                log::warn!("could not pin poll thread to core {core}");
            }
        }
        let mut batch = Batch::new();
        let mut fwd = Forwarder::new();
        let mut snap = Arc::new(Snapshot::default());
        let mut rxqs: Vec<Rxq> = Vec::new();
        let mut local = Local::default();
        let mut now = Instant::now();
        let mut last_rx = now;
        let mut last_publish = Instant::now();
        let mut pollfds: Vec<libc::pollfd> = Vec::new();
        let mut pollfds_stale = true;
        let mut sleep_timeout = self.idle.sleep_max;
        let mut iteration: u32 = 0;
        let mut woke = true;
        // The load of the last 100 ms decides how long to spin.
        let mut spin = self.idle.spin_for(0, LOAD_WINDOW);
        let mut window_batches = 0u64;
        let mut window_start = now;

        loop {
            let mut changed = false;
            while let Ok(cmd) = self.commands.try_recv() {
                changed = true;
                match cmd {
                    Command::AddRxq {
                        port_no,
                        name,
                        queue,
                        rxq,
                    } => {
                        let slow = rxq.recv_is_syscall();
                        rxqs.push(Rxq {
                            port_no,
                            rxq,
                            slow,
                            hot: true,
                            kernel_drops: 0,
                        });
                        self.rxq_names().push((name, queue));
                    }
                    Command::RemovePort(p) => {
                        let names = &mut self.rxq_names();
                        let mut i = 0;
                        while i < rxqs.len() {
                            if rxqs[i].port_no == p {
                                rxqs.remove(i);
                                names.remove(i);
                            } else {
                                i += 1;
                            }
                        }
                    }
                    Command::Snapshot(s) => snap = s,
                    Command::Sync(reply) => {
                        let _ = reply.send(());
                    }
                    Command::Stop => return,
                }
                pollfds_stale = true;
            }
            if changed {
                // Super-frames come whole only to chains that keep them.
                for q in rxqs.iter_mut() {
                    let whole = snap.port(q.port_no).is_some_and(|p| p.keeps_gso());
                    q.rxq.set_whole_gso(whole);
                }
            }

            let c0 = cycles::now();
            iteration = iteration.wrapping_add(1);
            if woke || iteration & (CLOCK_EVERY - 1) == 0 {
                now = Instant::now();
            }
            let start = now;
            let now_ms = self.clock.ms_at(start);
            let mut got = 0usize;
            let poll_slow = woke || iteration & (SYSCALL_POLL_EVERY - 1) == 0;
            woke = false;
            for q in rxqs.iter_mut() {
                if q.slow && !q.hot && !poll_slow {
                    continue;
                }
                let n = q.rxq.recv(&mut batch);
                q.hot = n > 0;
                if n > 0 {
                    fwd.process(&snap, q.port_no, &mut batch, now_ms);
                    q.rxq.release(&mut batch);
                    batch.clear();
                    got += n;
                    local.batches += 1;
                    window_batches += 1;
                }
            }
            let kicked = fwd.has_pending();
            if kicked {
                fwd.flush_pending(&snap);
            }
            let spent = cycles::now().wrapping_sub(c0);
            if got > 0 || kicked {
                local.packets += got as u64;
                local.busy_cycles += spent;
                local.tx_cycles += fwd.take_tx_cycles();
                if got > 0 {
                    last_rx = start;
                }
            } else {
                local.idle_cycles += spent;
                if start.duration_since(last_rx) > spin {
                    if pollfds_stale {
                        sleep_timeout = self.build_pollfds(&rxqs, &mut pollfds);
                        pollfds_stale = false;
                    }
                    self.publish(&mut local);
                    let slept = cycles::now();
                    self.sleep(&mut pollfds, sleep_timeout);
                    woke = true;
                    local.sleeps += 1;
                    local.idle_cycles += cycles::now().wrapping_sub(slept);
                }
            }
            let window = start.duration_since(window_start);
            if window >= LOAD_WINDOW
                || spin != self.idle.spin && window_batches * 10 >= BUSY_BATCHES_PER_SEC
            {
                // A new reading every 100 ms; a burst switches to the long
                // spin at once.
                spin = self.idle.spin_for(window_batches, window.max(LOAD_WINDOW));
                if window >= LOAD_WINDOW {
                    window_batches = 0;
                    window_start = start;
                }
            }
            if start.duration_since(last_publish) > Duration::from_millis(100) {
                self.publish(&mut local);
                publish_kernel_drops(&mut rxqs, &snap);
                last_publish = start;
            }
        }
    }

    fn rxq_names(&self) -> std::sync::MutexGuard<'_, Vec<(String, usize)>> {
        self.stats
            .rxqs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn publish(&self, l: &mut Local) {
        let s = &self.stats;
        s.packets.fetch_add(l.packets, Relaxed);
        s.batches.fetch_add(l.batches, Relaxed);
        s.busy_cycles.fetch_add(l.busy_cycles, Relaxed);
        s.tx_cycles.fetch_add(l.tx_cycles, Relaxed);
        s.idle_cycles.fetch_add(l.idle_cycles, Relaxed);
        s.sleeps.fetch_add(l.sleeps, Relaxed);
        *l = Local::default();
    }

    /// Fills `fds` with the eventfd and every queue's wake fd, and returns
    /// how long a sleep may last: when every queue can signal, a frame
    /// wakes the thread anyway, so it may sleep long; otherwise at most
    /// `sleep_max`, so unsignalled queues are polled in time.
    fn build_pollfds(&self, rxqs: &[Rxq], fds: &mut Vec<libc::pollfd>) -> Duration {
        fds.clear();
        let mut add = |fd: RawFd| {
            fds.push(libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            })
        };
        add(self.wake.as_raw_fd());
        let mut all_signal = true;
        for q in rxqs {
            match q.rxq.wake_fd() {
                Some(fd) => add(fd),
                None => all_signal = false,
            }
        }
        if all_signal {
            self.idle.sleep_max.max(Duration::from_millis(100))
        } else {
            self.idle.sleep_max
        }
    }

    /// Sleeps until a queue or the control thread signals, or `timeout`.
    fn sleep(&self, fds: &mut [libc::pollfd], timeout: Duration) {
        let ts = libc::timespec {
            tv_sec: timeout.as_secs() as libc::time_t,
            tv_nsec: timeout.subsec_nanos() as libc::c_long,
        };
        // SAFETY: `fds` is a valid, initialised slice for the whole call and
        // `ts` lives on the stack; no signal mask is passed.
        let rc = unsafe {
            libc::ppoll(
                fds.as_mut_ptr(),
                fds.len() as libc::nfds_t,
                &ts,
                std::ptr::null(),
            )
        };
        if rc > 0 && fds[0].revents != 0 {
            let mut v: u64 = 0;
            // SAFETY: reads 8 bytes into a live u64 from our own eventfd.
            unsafe {
                libc::read(
                    self.wake.as_raw_fd(),
                    (&mut v as *mut u64).cast(),
                    std::mem::size_of::<u64>(),
                )
            };
        }
    }
}

#[cfg(test)]
mod idle_tests {
    use super::*;

    #[test]
    fn light_traffic_spins_briefly_heavy_traffic_spins_long() {
        let p = IdlePolicy::default();
        let w = LOAD_WINDOW;
        // 100 pings a second: 10 batches a window (and their answers).
        assert_eq!(p.spin_for(20, w), LIGHT_SPIN);
        assert_eq!(p.spin_for(0, w), LIGHT_SPIN);
        // A stream: batches back to back.
        assert_eq!(p.spin_for(BUSY_BATCHES_PER_SEC / 10, w), p.spin);
        assert_eq!(p.spin_for(100_000, w), p.spin);
        let fixed = IdlePolicy {
            adaptive: false,
            ..p
        };
        assert_eq!(fixed.spin_for(0, w), fixed.spin);
        // A spin shorter than the light one is kept.
        let short = IdlePolicy {
            spin: Duration::from_micros(50),
            ..p
        };
        assert_eq!(short.spin_for(0, w), Duration::from_micros(50));
    }
}

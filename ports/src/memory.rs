//! In-memory ports for unit tests and benchmarks: frames go in and out
//! through shared queues instead of the kernel.

use crate::{RxQueue, TxQueue};
use pipeline::Batch;
use std::collections::VecDeque;
use std::os::fd::RawFd;
use std::sync::{Arc, Mutex};

/// Shared frame queue between a memory port and the test that drives it.
pub type FrameQueue = Arc<Mutex<VecDeque<Vec<u8>>>>;

/// Receive side: frames pushed into `input` by the test are received.
pub struct MemoryRx {
    pub input: FrameQueue,
}

impl RxQueue for MemoryRx {
    fn recv(&mut self, batch: &mut Batch) -> usize {
        let mut q = self.input.lock().unwrap_or_else(|e| e.into_inner());
        let mut n = 0;
        while batch.room() > 0 {
            let Some(f) = q.pop_front() else { break };
            if batch.push_copy(&f) {
                n += 1;
            }
        }
        n
    }

    fn wake_fd(&self) -> Option<RawFd> {
        None
    }
}

/// Transmit side: sent frames are appended to `output`, up to `limit`.
pub struct MemoryTx {
    pub output: FrameQueue,
    pub limit: usize,
}

impl TxQueue for MemoryTx {
    fn send(&mut self, frame: &[u8]) -> bool {
        let mut q = self.output.lock().unwrap_or_else(|e| e.into_inner());
        if q.len() >= self.limit {
            return false;
        }
        q.push_back(frame.to_vec());
        true
    }

    fn send_parts(&mut self, parts: &[&[u8]]) -> bool {
        let mut q = self.output.lock().unwrap_or_else(|e| e.into_inner());
        if q.len() >= self.limit {
            return false;
        }
        q.push_back(parts.concat());
        true
    }

    fn flush(&mut self) {}
}

/// A transmit half that counts and discards frames (benchmarks).
#[derive(Default)]
pub struct SinkTx {
    pub frames: u64,
    pub bytes: u64,
}

impl TxQueue for SinkTx {
    fn send(&mut self, frame: &[u8]) -> bool {
        self.frames += 1;
        self.bytes += frame.len() as u64;
        true
    }

    fn send_parts(&mut self, parts: &[&[u8]]) -> bool {
        self.frames += 1;
        self.bytes += parts.iter().map(|p| p.len() as u64).sum::<u64>();
        true
    }

    fn flush(&mut self) {}
}

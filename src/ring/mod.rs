//! Hand-offs between threads: bounded, preallocated rings.
//!
//! Market data, quotes, positions and samples travel as `Copy` values. The
//! one exception is a newly compiled strategy script, handed to the hot
//! thread as a `Box` (a pointer) and handed back the same way once replaced,
//! so that freeing it never happens on the hot thread.
//!
//! This is the one file that names the ring crate (crossbeam's `ArrayQueue`,
//! a bounded lock-free queue; ~125-140 ns one way between pinned cores on
//! the dev machine, within the 200 ns budget), so switching to another is a
//! one-file change. Each end is owned by one thread.
//!
//! Two disciplines, both wait-free for the hot thread:
//! * [`Producer::push`]: a full ring refuses the value and counts it
//!   (for streams where dropping the newest is right, e.g. log lines);
//! * [`Producer::push_latest`]: a full ring drops its oldest value and counts
//!   it ("latest wins": quotes, positions, advice), and the consumer reads
//!   with [`Consumer::latest`], which drains and keeps the newest.
//!
//! The quote hand-off, where only the newest value matters and the
//! writer is the hot thread, uses [`latest`] instead: a sequence lock whose
//! writer only stores, so it never waits for the reader's core.
//!
//! Nothing here blocks, allocates after construction, or takes a lock.

pub mod latest;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crossbeam_queue::ArrayQueue;

struct Shared<T> {
    queue: ArrayQueue<T>,
    /// Values refused or displaced because the ring was full. Written by the
    /// producer only; Relaxed is enough for a statistic read elsewhere.
    dropped: AtomicU64,
}

/// The sending end.
pub struct Producer<T> {
    shared: Arc<Shared<T>>,
}

/// The receiving end.
pub struct Consumer<T> {
    shared: Arc<Shared<T>>,
}

/// A ring of `capacity` values (at least 1), allocated now.
pub fn ring<T: Send>(capacity: usize) -> (Producer<T>, Consumer<T>) {
    let shared = Arc::new(Shared { queue: ArrayQueue::new(capacity.max(1)), dropped: AtomicU64::new(0) });
    (Producer { shared: shared.clone() }, Consumer { shared })
}

impl<T: Send> Producer<T> {
    /// Sends `v`; false (and counted) when the ring is full. (`&self`: the
    /// queue is lock-free; one producer is enforced by owning the `Producer`,
    /// which is not `Clone`.)
    #[inline]
    pub fn push(&self, v: T) -> bool {
        let ok = self.shared.queue.push(v).is_ok();
        if !ok {
            self.shared.dropped.fetch_add(1, Ordering::Relaxed);
        }
        ok
    }

    /// Sends `v`, displacing (and counting) the oldest value if full.
    #[inline]
    pub fn push_latest(&self, v: T) {
        if self.shared.queue.force_push(v).is_some() {
            self.shared.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Values refused or displaced so far.
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }
}

impl<T: Send> Consumer<T> {
    /// The oldest value, if any.
    #[inline]
    pub fn pop(&mut self) -> Option<T> {
        self.shared.queue.pop()
    }

    /// Drains the ring and returns its newest value, if any.
    #[inline]
    pub fn latest(&mut self) -> Option<T> {
        let mut last = None;
        while let Some(v) = self.shared.queue.pop() {
            last = Some(v);
        }
        last
    }

    pub fn len(&self) -> usize {
        self.shared.queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.shared.queue.is_empty()
    }

    /// Values the producer had refused or displaced so far.
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_rings_count_and_never_wait() {
        let (p, mut c) = ring::<u32>(2);
        assert!(p.push(1) && p.push(2));
        assert!(!p.push(3));
        assert_eq!((p.dropped(), c.pop(), c.pop(), c.pop()), (1, Some(1), Some(2), None));
        for v in 10..15 {
            p.push_latest(v);
        }
        assert_eq!(c.dropped(), 4);
        assert_eq!((c.latest(), c.latest()), (Some(14), None));
    }

    #[test]
    fn values_cross_threads_in_order() {
        let (p, mut c) = ring::<u64>(64);
        let t = std::thread::spawn(move || {
            let mut sent = 0;
            while sent < 10_000 {
                if p.push(sent) {
                    sent += 1;
                } else {
                    std::hint::spin_loop();
                }
            }
        });
        let mut next = 0;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while next < 10_000 && std::time::Instant::now() < deadline {
            if let Some(v) = c.pop() {
                assert_eq!(v, next);
                next += 1;
            }
        }
        t.join().unwrap();
        assert_eq!(next, 10_000);
    }
}

//! The warm hot thread ([`Warmer`]): with `[feed] poll = "busy"` on a
//! dedicated core, the hot thread re-reads the memory the next frame will
//! use (the books near the touch, the strategy's state) and rehearses the
//! latest depth diff through the code the next one will run, changing
//! nothing (`HotPath::warm`, `HotPath::enable_rehearsal`), every
//! `[feed] warm_every_us` while nothing arrives, so that frame finds it in
//! cache.
//!
//! Why: at Binance's cadence (a diff every 100 ms) a thread that only spins
//! on an empty socket keeps its own loop in cache and lets everything else
//! age out (other processes, the kernel, the exec thread's work on a shared
//! last-level cache); tick_to_quote on such a cold thread is several times
//! the figure of a back-to-back benchmark.
//!
//! Rules that keep it off the critical path:
//! * it runs only when the poll found nothing (a turn that read no frame,
//!   or a paced replay whose next frame is not yet due);
//! * one warming is bounded: `HotPath::warm` reads a fixed amount of memory
//!   and rehearses one diff of at most `hot::engine::KEPT_FRAME` bytes, and
//!   nothing here allocates, locks or blocks;
//! * a frame resets the period: caches are warm right after one.

use std::time::Duration;

use crate::stats::clock::Clock;

/// When the idle hot thread warms next, and how often it did.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Warmer {
    /// The period in ns; 0: warming is off.
    every_ns: u64,
    /// Clock ticks of the latest warming or frame.
    last: u64,
    /// Warmings so far.
    warms: u64,
    /// The checksums, summed: kept so no read is optimised away.
    sum: u64,
}

impl Warmer {
    pub(crate) fn new(every: Duration, now: u64) -> Self {
        Self { every_ns: every.as_nanos().min(u64::MAX as u128) as u64, last: now, warms: 0, sum: 0 }
    }

    /// A frame was handled at `now`: its memory is in cache, so the next
    /// warming is one period later.
    #[inline]
    pub(crate) fn on_frame(&mut self, now: u64) {
        self.last = now;
    }

    /// True when warming is on and a period has passed since the latest
    /// frame or warming.
    #[inline]
    pub(crate) fn due(&self, clock: &Clock, now: u64) -> bool {
        self.every_ns != 0 && clock.ns(self.last, now) >= self.every_ns
    }

    /// Notes a warming made at `now` with its checksum.
    #[inline]
    pub(crate) fn warmed(&mut self, now: u64, sum: u64) {
        self.last = now;
        self.warms += 1;
        self.sum = self.sum.wrapping_add(sum);
    }

    /// Warmings so far.
    pub(crate) fn warms(&self) -> u64 {
        std::hint::black_box(self.sum);
        self.warms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_is_never_due_and_a_frame_restarts_the_period() {
        // The instant clock counts ns, so ticks are ns here.
        let clock = Clock::instant();
        let off = Warmer::new(Duration::ZERO, 0);
        assert!(!off.due(&clock, u64::MAX));
        let mut w = Warmer::new(Duration::from_micros(50), 1_000);
        assert!(!w.due(&clock, 50_999));
        assert!(w.due(&clock, 51_000));
        w.on_frame(60_000);
        assert!(!w.due(&clock, 100_000));
        w.warmed(110_000, 7);
        assert!(!w.due(&clock, 159_999) && w.due(&clock, 160_000));
        assert_eq!(w.warms(), 1);
        // A clock that reads earlier than `last` (another core's TSC) is
        // not due, never a huge period.
        assert!(!w.due(&clock, 0));
    }
}

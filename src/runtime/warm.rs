//! The warm hot thread ([`Warmer`]): with `[feed] poll = "busy"` on a
//! dedicated core, the hot thread re-reads the memory the next frame will
//! use (the books near the touch, the strategy's state: `HotPath::warm`)
//! every `[feed] warm_every_us` while nothing arrives, so that frame finds
//! it in cache.
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
//!   (no loops over the data's size), and nothing here allocates, locks or
//!   blocks;
//! * a frame resets the period: caches are warm right after one.

use std::time::Duration;

use crate::hot::parse::{classify_stream, split_combined, Parser, StreamKind};
use crate::stats::clock::Clock;

/// Largest depth diff kept to be parsed again while idle (bytes, ~150
/// levels): one warming parse then stays around a microsecond, and larger
/// diffs run the same code.
pub(crate) const KEPT_FRAME: usize = 4096;

/// Keeps `frame` in `kept` if it is a depth diff of at most [`KEPT_FRAME`]
/// bytes (the previous one stays otherwise). `kept` has that capacity: no
/// allocation.
#[inline]
pub(crate) fn keep_diff(kept: &mut Vec<u8>, frame: &[u8]) {
    if frame.len() > KEPT_FRAME.min(kept.capacity()) {
        return;
    }
    let Some((name, _)) = split_combined(frame) else { return };
    if classify_stream(name).0 == StreamKind::Diff {
        kept.clear();
        kept.extend_from_slice(frame);
    }
}

/// Parses the kept diff with the warming parser (its own buffers: the hot
/// path's state is not touched), so the parse code and its tables are in
/// cache when the next diff comes. Returns a checksum.
#[inline]
pub(crate) fn parse_again(parser: &mut Parser, kept: &[u8]) -> u64 {
    if kept.is_empty() {
        return 0;
    }
    let ok = parser.parse(kept).is_ok() as u64;
    ok.wrapping_add(parser.bids().len() as u64).wrapping_add(parser.asks().len() as u64)
}

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
    fn only_small_diffs_are_kept_and_parse_again_the_same() {
        let mut kept = Vec::with_capacity(KEPT_FRAME);
        let diff = br#"{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":5,"u":6,"b":[["100.5","1.0"]],"a":[["101.0","2.0"],["102","0"]]}}"#;
        let ticker =
            br#"{"stream":"btcusdt@bookTicker","data":{"u":7,"s":"BTCUSDT","b":"100.5","B":"1","a":"101","A":"2"}}"#;
        keep_diff(&mut kept, diff);
        keep_diff(&mut kept, ticker);
        assert_eq!(kept, diff.to_vec(), "tickers are not kept");
        let mut big = diff.to_vec();
        big.resize(KEPT_FRAME + 1, b' ');
        keep_diff(&mut kept, &big);
        assert_eq!(kept, diff.to_vec(), "a diff over the limit is not kept");
        let mut parser = Parser::new(5000, KEPT_FRAME);
        assert_eq!(parse_again(&mut parser, &kept), 1 + 1 + 2);
        assert_eq!(parse_again(&mut parser, &[]), 0);
        assert_eq!(kept.capacity(), KEPT_FRAME, "no growth");
    }

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

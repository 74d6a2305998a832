//! Make before break: a planned renewal (`serverShutdown`, Binance's 24-hour
//! limit, `max_connection_age_s`) opens the new connection while the old one
//! still serves, and the hot thread switches at a frame boundary with every
//! book kept, so quotes stay up through it.
//!
//! Both connections carry the same diff stream (binance/FACTS.md §1.2, §2).
//! Until the switch, the new connection's frames are read (its pings
//! answered) but not applied: only the last depth update id it delivered
//! per symbol is noted ([`peek_depth`]). The switch is safe once the old
//! connection has applied at least that far for every synced book
//! ([`Standby::caught_up`]): nothing the new connection delivered and we
//! skipped is missing from the book, so its next diff follows the book's
//! id. From then on the books' own rules dedupe by update id (spot: drop
//! `u <= id`, apply `U <= id + 1 <= u`; USD-M: `pu == id`), as the local
//! book procedure does for the diffs buffered before a snapshot
//! (FACTS.md §2.1, §2.2); no resync is needed.
//!
//! A new connection that has not caught up within
//! [`SWITCH_TIMEOUT`] (the old one stalled), or an old one that closes
//! first, is switched to anyway: a diff that is then missing shows as a gap
//! and the book resyncs by the usual rules (counted as a forced switch).
//!
//! Trades and bookTickers are taken from the old connection until the
//! switch and from the new one after it; around the boundary a trade may
//! be seen on neither or both (trades carry no sequence the feed checks).

use std::time::{Duration, Instant};

use crate::hot::msg::Symbol;

/// Longest wait for a new connection to catch up before switching anyway.
pub const SWITCH_TIMEOUT: Duration = Duration::from_secs(3);

/// The new connection while the old one still serves.
pub struct Standby {
    /// When it was adopted (handed over by the connector).
    pub since: Instant,
    /// Why it was asked for.
    pub reason: crate::feed::connector::Reason,
    /// Per symbol (the feed's order): the last depth update id it delivered.
    seen: Vec<Option<u64>>,
    /// Depth frames it delivered: one proves its subscription is live.
    pub depth_frames: u64,
    /// Data frames it delivered and we skipped.
    pub skipped: u64,
}

/// Whether a switch may happen now, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SwitchVerdict {
    /// Not yet: the old connection still lags the new one.
    Wait,
    /// Every synced book has applied what the new connection delivered.
    CaughtUp,
    /// [`SWITCH_TIMEOUT`] passed first.
    TimedOut,
}

impl Standby {
    pub fn new(symbols: usize, reason: crate::feed::connector::Reason, now: Instant) -> Self {
        Self::reusing(Vec::with_capacity(symbols), symbols, reason, now)
    }

    /// Built in `buffer` (one from [`Self::into_buffer`]): nothing is
    /// allocated on the hot thread once the feed has started.
    pub fn reusing(
        mut buffer: Vec<Option<u64>>,
        symbols: usize,
        reason: crate::feed::connector::Reason,
        now: Instant,
    ) -> Self {
        buffer.clear();
        buffer.resize(symbols, None);
        Self { since: now, reason, seen: buffer, depth_frames: 0, skipped: 0 }
    }

    /// Its buffer, for the next renewal.
    pub fn into_buffer(self) -> Vec<Option<u64>> {
        self.seen
    }

    /// Notes a frame the new connection delivered (not applied).
    pub fn on_frame(&mut self, frame: &[u8], symbols: &[Symbol]) {
        self.skipped += 1;
        if let Some((i, id)) = peek_depth(frame, symbols) {
            self.depth_frames += 1;
            let s = &mut self.seen[i];
            *s = Some(s.map_or(id, |old| old.max(id)));
        }
    }

    /// The switch rule. `book_id(i)`: symbol `i`'s book update id if synced.
    pub fn caught_up(&self, now: Instant, mut book_id: impl FnMut(usize) -> Option<u64>) -> SwitchVerdict {
        let ready = self.depth_frames > 0
            && self.seen.iter().enumerate().all(|(i, seen)| match (seen, book_id(i)) {
                (Some(seen), Some(id)) => *seen <= id,
                // Unsynced books resync anyway; symbols the new connection
                // has not delivered yet lost nothing to skipping.
                _ => true,
            });
        if ready {
            SwitchVerdict::CaughtUp
        } else if now.duration_since(self.since) >= SWITCH_TIMEOUT {
            SwitchVerdict::TimedOut
        } else {
            SwitchVerdict::Wait
        }
    }
}

/// A depth frame's symbol (index into `symbols`) and last update id,
/// without a full parse: combined-stream frames
/// (`{"stream":"btcusdt@depth@100ms","data":{..,"u":160,..}}`, partial depth
/// `"lastUpdateId"`) and raw diffs (`"e":"depthUpdate"`, `"s"`, `"u"`).
/// `None` for anything else (trades, bookTickers, control events).
pub fn peek_depth(frame: &[u8], symbols: &[Symbol]) -> Option<(usize, u64)> {
    let name = if let Some(stream) = value_after(frame, b"\"stream\":\"") {
        let end = memchr::memchr(b'"', stream)?;
        let stream = &stream[..end];
        let at = memchr::memchr(b'@', stream)?;
        if !stream[at..].starts_with(b"@depth") {
            return None;
        }
        &stream[..at]
    } else {
        value_after(frame, b"\"e\":\"depthUpdate\"")?;
        let s = value_after(frame, b"\"s\":\"")?;
        &s[..memchr::memchr(b'"', s)?]
    };
    let i = symbols.iter().position(|s| s.as_str().as_bytes().eq_ignore_ascii_case(name))?;
    let digits = value_after(frame, b"\"u\":").or_else(|| value_after(frame, b"\"lastUpdateId\":"))?;
    let n = digits.iter().take_while(|b| b.is_ascii_digit()).count();
    if n == 0 || n > 19 {
        return None;
    }
    let id = digits[..n].iter().fold(0u64, |acc, &b| acc * 10 + u64::from(b - b'0'));
    Some((i, id))
}

/// The bytes after the first `key` in `frame`.
fn value_after<'a>(frame: &'a [u8], key: &[u8]) -> Option<&'a [u8]> {
    memchr::memmem::find(frame, key).map(|p| &frame[p + key.len()..])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::feed::connector::Reason;

    fn syms() -> Vec<Symbol> {
        vec![Symbol::new(b"BTCUSDT"), Symbol::new(b"ETHUSDT")]
    }

    #[test]
    fn depth_ids_are_read_from_combined_and_raw_frames() {
        let s = syms();
        let combined = br#"{"stream":"ethusdt@depth@100ms","data":{"e":"depthUpdate","E":1,"s":"ETHUSDT","U":157,"u":160,"pu":150,"b":[],"a":[]}}"#;
        assert_eq!(peek_depth(combined, &s), Some((1, 160)));
        let raw = br#"{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":7,"u":9,"b":[],"a":[]}"#;
        assert_eq!(peek_depth(raw, &s), Some((0, 9)));
        let partial = br#"{"stream":"btcusdt@depth20@100ms","data":{"lastUpdateId":42,"bids":[],"asks":[]}}"#;
        assert_eq!(peek_depth(partial, &s), Some((0, 42)));
        let ticker = br#"{"stream":"btcusdt@bookTicker","data":{"u":400900217,"s":"BTCUSDT"}}"#;
        assert_eq!(peek_depth(ticker, &s), None);
        assert_eq!(peek_depth(br#"{"stream":"xrpusdt@depth","data":{"u":1}}"#, &s), None);
        assert_eq!(peek_depth(b"garbage", &s), None);
    }

    #[test]
    fn the_switch_waits_until_the_old_connection_has_applied_what_the_new_one_delivered() {
        let s = syms();
        let t0 = Instant::now();
        let mut sb = Standby::new(2, Reason::Renew, t0);
        // Nothing delivered yet: wait (its subscription is not proven).
        assert_eq!(sb.caught_up(t0, |_| Some(100)), SwitchVerdict::Wait);
        sb.on_frame(br#"{"stream":"btcusdt@depth@100ms","data":{"U":101,"u":105}}"#, &s);
        // The old connection's book is at 103: the new one is ahead.
        assert_eq!(sb.caught_up(t0, |_| Some(103)), SwitchVerdict::Wait);
        assert_eq!(sb.caught_up(t0, |i| if i == 0 { Some(105) } else { None }), SwitchVerdict::CaughtUp);
        // An unsynced book does not hold the switch.
        assert_eq!(sb.caught_up(t0, |_| None), SwitchVerdict::CaughtUp);
        assert_eq!(sb.caught_up(t0 + SWITCH_TIMEOUT, |_| Some(1)), SwitchVerdict::TimedOut);
    }
}

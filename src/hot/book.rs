//! The local order book: two fixed-capacity sorted arrays, allocated once.
//!
//! Layout: each side keeps its levels as two parallel arrays (keys, quantities)
//! sorted ascending by key with the BEST level at the END. Bids use the price
//! as key and asks its negation, so "better" is "larger" on both sides and one
//! implementation serves both. Why best-at-end: nearly all updates land within
//! a few levels of the touch, so an insert or removal there shifts only the
//! few levels above it, and the search walks down from the touch before
//! falling back to a binary search (O(log n)); the best level is `keys[len-1]`,
//! O(1). A price-indexed ladder would avoid even that shift but needs the tick
//! size and a bounded price range, which a recording does not carry.
//!
//! Capacity is fixed at start-up (`[book] capacity`). A new level that would
//! overflow a full side evicts the deepest level, or is dropped when it is
//! itself the deepest; both are counted in [`Book::dropped_levels`]. The top of
//! the book, which is what mmbot quotes from, is never affected.
//!
//! Prices are fixed-point `i64` ([`crate::hot::fixed`]); no float ever keys a level.

use crate::hot::fixed::{Price, Qty};
use crate::hot::msg::Level;

/// How many levels below the touch are scanned linearly before binary search.
const LINEAR_SCAN: usize = 16;

/// One side of the book. Invariant: `keys[..len]` strictly ascending,
/// `qtys[i] > 0` for `i < len`, `len <= keys.len()`.
#[derive(Clone)]
struct Side {
    keys: Box<[i64]>,
    qtys: Box<[i64]>,
    len: usize,
    /// +1 for bids (key = price), -1 for asks (key = -price).
    sign: i64,
}

/// What an update did to a side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Inserted,
    Updated,
    Removed,
    /// Quantity 0 for a level not in the book: normal on Binance.
    AbsentRemoved,
    /// The side was full and this level (or the deepest one) was dropped.
    Dropped,
}

impl Side {
    fn new(capacity: usize, sign: i64) -> Self {
        Self {
            keys: vec![0; capacity].into_boxed_slice(),
            qtys: vec![0; capacity].into_boxed_slice(),
            len: 0,
            sign,
        }
    }

    /// First index whose key is >= `key`, searching down from the touch.
    #[inline(always)]
    fn lower_bound(&self, key: i64) -> usize {
        let keys = &self.keys[..self.len];
        let floor = keys.len().saturating_sub(LINEAR_SCAN);
        let mut i = keys.len();
        while i > floor && keys[i - 1] >= key {
            i -= 1;
        }
        if i > floor || i == 0 {
            return i;
        }
        keys[..floor].partition_point(|&k| k < key)
    }

    #[inline]
    fn apply(&mut self, price: i64, qty: i64) -> Change {
        let key = price * self.sign;
        let idx = self.lower_bound(key);
        let len = self.len;
        if idx < len && self.keys[idx] == key {
            if qty == 0 {
                self.keys.copy_within(idx + 1..len, idx);
                self.qtys.copy_within(idx + 1..len, idx);
                self.len -= 1;
                Change::Removed
            } else {
                self.qtys[idx] = qty;
                Change::Updated
            }
        } else if qty == 0 {
            Change::AbsentRemoved
        } else if len < self.keys.len() {
            self.keys.copy_within(idx..len, idx + 1);
            self.qtys.copy_within(idx..len, idx + 1);
            self.keys[idx] = key;
            self.qtys[idx] = qty;
            self.len += 1;
            Change::Inserted
        } else if idx == 0 {
            // Full, and the new level is deeper than everything kept.
            Change::Dropped
        } else {
            // Full: evict the deepest level (index 0) to make room below `idx`.
            self.keys.copy_within(1..idx, 0);
            self.qtys.copy_within(1..idx, 0);
            self.keys[idx - 1] = key;
            self.qtys[idx - 1] = qty;
            Change::Dropped
        }
    }

    #[inline]
    fn best(&self) -> Option<Level> {
        let i = self.len.checked_sub(1)?;
        Some(Level {
            price: Price(self.keys[i] * self.sign),
            qty: Qty(self.qtys[i]),
        })
    }

    /// Level `n` from the touch (0 = best).
    #[inline]
    fn level(&self, n: usize) -> Option<Level> {
        let i = self.len.checked_sub(n + 1)?;
        Some(Level {
            price: Price(self.keys[i] * self.sign),
            qty: Qty(self.qtys[i]),
        })
    }

    /// Replaces the side with `levels` (any order; zero quantities skipped;
    /// a repeated price keeps its last quantity, as Binance applies them).
    /// Returns how many levels did not fit.
    fn load(&mut self, levels: &[Level]) -> u64 {
        self.len = 0;
        // Stage (key, qty) pairs in the arrays, sort, then dedupe in place: no
        // allocation, and REST snapshots (best first) sort by one reversal.
        let cap = self.keys.len();
        let mut staged = 0;
        let mut overflow = 0u64;
        let mut pairs_sorted = true;
        for l in levels.iter().filter(|l| l.qty.0 != 0) {
            if staged == cap {
                overflow += 1;
                continue;
            }
            self.keys[staged] = l.price.0 * self.sign;
            self.qtys[staged] = l.qty.0;
            if staged > 0 && self.keys[staged - 1] >= self.keys[staged] {
                pairs_sorted = false;
            }
            staged += 1;
        }
        if !pairs_sorted {
            sort_pairs(&mut self.keys[..staged], &mut self.qtys[..staged]);
        }
        // Dedupe equal keys, keeping the last one staged for each price.
        let mut w = 0;
        for r in 0..staged {
            if w > 0 && self.keys[w - 1] == self.keys[r] {
                self.qtys[w - 1] = self.qtys[r];
            } else {
                self.keys[w] = self.keys[r];
                self.qtys[w] = self.qtys[r];
                w += 1;
            }
        }
        self.len = w;
        overflow
    }
}

/// Sorts parallel key/qty arrays by key with a stable insertion-merge that
/// needs no scratch memory. Snapshots arrive best-first, so the common case is
/// a reversal (O(n)); anything else falls back to insertion sort, which only
/// out-of-order test inputs reach.
fn sort_pairs(keys: &mut [i64], qtys: &mut [i64]) {
    if keys.windows(2).all(|w| w[0] > w[1]) {
        keys.reverse();
        qtys.reverse();
        return;
    }
    for i in 1..keys.len() {
        let (k, q) = (keys[i], qtys[i]);
        let mut j = i;
        // `>` keeps equal keys in input order, so dedupe keeps the last sent.
        while j > 0 && keys[j - 1] > k {
            keys[j] = keys[j - 1];
            qtys[j] = qtys[j - 1];
            j -= 1;
        }
        keys[j] = k;
        qtys[j] = q;
    }
}

/// A two-sided book of fixed capacity. Holds levels only; whether it can be
/// trusted is [`crate::hot::sync::SyncedBook`]'s business.
#[derive(Clone)]
pub struct Book {
    bids: Side,
    asks: Side,
    dropped: u64,
}

impl std::fmt::Debug for Book {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Book")
            .field("best_bid", &self.best_bid())
            .field("best_ask", &self.best_ask())
            .field("bid_depth", &self.bids.len)
            .field("ask_depth", &self.asks.len)
            .finish()
    }
}

impl Book {
    /// Allocates both sides once; `capacity` levels per side.
    pub fn with_capacity(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            bids: Side::new(capacity, 1),
            asks: Side::new(capacity, -1),
            dropped: 0,
        }
    }

    pub fn capacity(&self) -> usize {
        self.bids.keys.len()
    }

    pub fn clear(&mut self) {
        self.bids.len = 0;
        self.asks.len = 0;
    }

    /// Applies an absolute bid quantity (0 removes).
    #[inline]
    pub fn apply_bid(&mut self, level: Level) -> Change {
        let c = self.bids.apply(level.price.0, level.qty.0);
        self.dropped += (c == Change::Dropped) as u64;
        c
    }

    /// Applies an absolute ask quantity (0 removes).
    #[inline]
    pub fn apply_ask(&mut self, level: Level) -> Change {
        let c = self.asks.apply(level.price.0, level.qty.0);
        self.dropped += (c == Change::Dropped) as u64;
        c
    }

    /// Replaces the whole book (snapshot or partial-depth message).
    pub fn load(&mut self, bids: &[Level], asks: &[Level]) {
        self.dropped += self.bids.load(bids) + self.asks.load(asks);
    }

    #[inline]
    pub fn best_bid(&self) -> Option<Level> {
        self.bids.best()
    }

    #[inline]
    pub fn best_ask(&self) -> Option<Level> {
        self.asks.best()
    }

    /// Bid `n` levels below the touch (0 = best).
    #[inline]
    pub fn bid(&self, n: usize) -> Option<Level> {
        self.bids.level(n)
    }

    /// Ask `n` levels above the touch (0 = best).
    #[inline]
    pub fn ask(&self, n: usize) -> Option<Level> {
        self.asks.level(n)
    }

    pub fn bid_depth(&self) -> usize {
        self.bids.len
    }

    pub fn ask_depth(&self) -> usize {
        self.asks.len
    }

    /// Best bid at or above best ask: the book is wrong somewhere.
    #[inline]
    pub fn is_crossed(&self) -> bool {
        match (self.best_bid(), self.best_ask()) {
            (Some(b), Some(a)) => b.price >= a.price,
            _ => false,
        }
    }

    /// Levels dropped or evicted because a side was full, since creation.
    pub fn dropped_levels(&self) -> u64 {
        self.dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(p: i64, q: i64) -> Level {
        Level::new(p, q)
    }

    #[test]
    fn keeps_best_levels_on_both_sides() {
        let mut b = Book::with_capacity(8);
        b.apply_bid(l(100, 1));
        b.apply_bid(l(102, 2));
        b.apply_bid(l(101, 3));
        b.apply_ask(l(105, 1));
        b.apply_ask(l(103, 4));
        b.apply_ask(l(104, 2));
        assert_eq!(b.best_bid(), Some(l(102, 2)));
        assert_eq!(b.best_ask(), Some(l(103, 4)));
        assert_eq!(b.bid(2), Some(l(100, 1)));
        assert_eq!(b.ask(2), Some(l(105, 1)));
        assert_eq!(b.bid(3), None);
        assert_eq!(b.apply_bid(l(102, 0)), Change::Removed);
        assert_eq!(b.best_bid(), Some(l(101, 3)));
        assert_eq!(b.apply_ask(l(103, 7)), Change::Updated);
        assert_eq!(b.best_ask(), Some(l(103, 7)));
        assert_eq!(b.apply_ask(l(99, 0)), Change::AbsentRemoved);
        assert!(!b.is_crossed());
        b.apply_bid(l(103, 1));
        assert!(b.is_crossed());
    }

    #[test]
    fn full_side_evicts_the_deepest_and_counts_it() {
        let mut b = Book::with_capacity(3);
        for p in [10, 11, 12] {
            b.apply_bid(l(p, 1));
        }
        assert_eq!(b.apply_bid(l(9, 1)), Change::Dropped);
        assert_eq!(b.apply_bid(l(13, 1)), Change::Dropped);
        assert_eq!(b.dropped_levels(), 2);
        assert_eq!(b.best_bid(), Some(l(13, 1)));
        assert_eq!(b.bid(2), Some(l(11, 1)));
        assert_eq!(b.bid_depth(), 3);
    }

    #[test]
    fn load_sorts_dedupes_and_skips_zeros() {
        let mut b = Book::with_capacity(10);
        b.load(
            &[l(5, 1), l(7, 2), l(6, 0), l(7, 3), l(4, 1)],
            &[l(9, 1), l(8, 2)],
        );
        assert_eq!(b.best_bid(), Some(l(7, 3)));
        assert_eq!(b.bid_depth(), 3);
        assert_eq!(b.best_ask(), Some(l(8, 2)));
        // Best-first input (the REST order) takes the reversal path.
        b.load(&[l(7, 1), l(6, 1), l(5, 1)], &[]);
        assert_eq!((b.best_bid(), b.bid(2)), (Some(l(7, 1)), Some(l(5, 1))));
    }

    #[test]
    fn deep_updates_use_binary_search() {
        let mut b = Book::with_capacity(1000);
        for p in 0..1000 {
            b.apply_ask(l(10_000 + p, 1));
        }
        assert_eq!(b.apply_ask(l(10_900, 5)), Change::Updated);
        assert_eq!(b.ask(900), Some(l(10_900, 5)));
        assert_eq!(b.apply_ask(l(10_500, 0)), Change::Removed);
        assert_eq!(b.ask(500), Some(l(10_501, 1)));
    }
}

//! The local order book: per side, a price-indexed ladder allocated once.
//!
//! Each side is an array with one slot per price tick over a window of
//! `capacity` ticks (a power of two), plus one occupancy bit per slot. A level
//! update is an index computation and a store: O(1) whatever its depth. The
//! best level is kept; when it is removed, the next one is found by scanning
//! the occupancy bits 64 slots at a time. Bids key slots by price and asks by
//! the negated price, so "better" means "higher tick" on both sides and one
//! implementation serves both.
//!
//! Why not a sorted array: updates arrive all over the top few hundred
//! levels, and a sorted array pays a search plus a shift for each (measured
//! ~24 ns per update on the dev machine, a `BTreeMap` ~40 ns; this ladder is
//! in `benches/book.rs`).
//!
//! The tick is learned exactly, in integers: it is the greatest common divisor
//! of the prices loaded from a snapshot (hundreds of levels: the symbol's real
//! tick). A price off that grid, which only a tick change by the exchange can
//! produce, re-grids the side to the finer GCD (a rare, cold path).
//!
//! The window follows the touch: the slots are a ring indexed by
//! `tick & (capacity - 1)`, and a new best above the window slides it up,
//! dropping the deepest levels. When the window is placed (a load, or a new
//! best above it), the best sits 1/8 of the window below its top, leaving room
//! for the price to rise, so about 7/8 of `capacity` ticks below the touch are
//! kept. Levels that cannot fit are dropped and counted in
//! [`Book::dropped_levels`]; the top of the book, which mmbot quotes from, is
//! always kept. So are prices that cannot be real: non-positive, above
//! [`MAX_PRICE`], or off the grid by a factor over [`MAX_REGRID`].
//!
//! Prices are fixed-point `i64` ([`crate::hot::fixed`]); no float ever keys a level.

use crate::hot::fixed::{Price, Qty};
use crate::hot::msg::Level;

mod top_count;
pub use top_count::TopCount;

/// Highest price a book accepts (fixed-point; ~46 billion): far above any
/// traded price, and low enough that no tick arithmetic can overflow.
pub const MAX_PRICE: i64 = 1 << 62;

/// Largest factor by which an off-grid price may refine a side's tick.
/// Exchanges change ticks by 10x at a time; a price that would refine it by
/// more is a broken level, not a new grid, and is dropped rather than
/// allowed to shrink the window to nothing.
pub const MAX_REGRID: i64 = 100;

/// What an update did to a side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Inserted,
    Updated,
    Removed,
    /// Quantity 0 for a level not in the book: normal on Binance.
    AbsentRemoved,
    /// The level lies beyond the window (or off any usable grid) and was dropped.
    Dropped,
}

/// Greatest common divisor of two non-negative values.
fn gcd(mut a: i64, mut b: i64) -> i64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Exact division by a side's tick without a divide instruction: the tick
/// is `odd << shift`, and a price is a multiple of it exactly when its low
/// `shift` bits are zero and `(price >> shift) * inv` (wrapping; `inv` is
/// `odd`'s inverse mod 2^64) is at most `u64::MAX / odd`; that product is
/// then the quotient. Why: every level update divides its price by the
/// tick, and a 64-bit divide costs more than the rest of the index
/// computation (the multiply is a few cycles).
#[derive(Debug, Clone, Copy)]
struct TickDiv {
    shift: u32,
    inv: u64,
    max_q: u64,
}

impl TickDiv {
    /// For `tick` > 0; a tick of 0 or less gives a divider that refuses
    /// every price (as the callers' `tick <= 0` checks do).
    fn new(tick: i64) -> Self {
        if tick <= 0 {
            // A mask of 63 low bits refuses every price in (0, MAX_PRICE].
            return Self { shift: 63, inv: 0, max_q: 0 };
        }
        let shift = tick.trailing_zeros();
        let odd = (tick >> shift) as u64;
        // Newton's iteration doubles the correct low bits each step: an odd
        // number is its own inverse mod 8 (3 bits), so 5 steps give 96 >= 64.
        let mut inv = odd;
        for _ in 0..5 {
            inv = inv.wrapping_mul(2u64.wrapping_sub(odd.wrapping_mul(inv)));
        }
        Self { shift, inv, max_q: u64::MAX / odd }
    }

    /// `price / tick` when `price` (> 0) is a multiple of the tick.
    #[inline(always)]
    fn exact(&self, price: i64) -> Option<i64> {
        let p = price as u64;
        let q = (p >> self.shift).wrapping_mul(self.inv);
        (p & ((1u64 << self.shift) - 1) == 0 && q <= self.max_q).then_some(q as i64)
    }
}

/// One side of the book. Invariants: `qty[t & mask] > 0` exactly when bit
/// `t & mask` is set, for `t` in `[lo, lo + width)`, and no level lies outside
/// that window; `best` is the highest occupied tick when `count > 0`.
#[derive(Clone)]
struct Side {
    /// +1 for bids (key = price), -1 for asks (key = -price).
    sign: i64,
    /// Price grid in fixed-point units; 0 until the first level arrives.
    /// Set only through [`Side::set_tick`], which keeps `div` in step.
    tick: i64,
    div: TickDiv,
    /// True once the tick comes from a snapshot's prices rather than a guess
    /// from single updates: only then does [`MAX_REGRID`] apply.
    tick_from_load: bool,
    qty: Box<[i64]>,
    bits: Box<[u64]>,
    width: i64,
    mask: i64,
    /// Lowest absolute tick of the window.
    lo: i64,
    best: i64,
    count: usize,
    dropped: u64,
    /// Levels collected while re-gridding, preallocated.
    scratch: Vec<(i64, i64)>,
}

impl Side {
    fn new(capacity: usize, sign: i64) -> Self {
        let width = capacity.next_power_of_two().max(64);
        Self {
            sign,
            tick: 0,
            div: TickDiv::new(0),
            tick_from_load: false,
            qty: vec![0; width].into_boxed_slice(),
            bits: vec![0; width / 64].into_boxed_slice(),
            width: width as i64,
            mask: width as i64 - 1,
            lo: 0,
            best: 0,
            count: 0,
            dropped: 0,
            scratch: Vec::with_capacity(width.min(1 << 14)),
        }
    }

    fn set_tick(&mut self, tick: i64) {
        self.tick = tick;
        self.div = TickDiv::new(tick);
    }

    /// The tick index of `price` (bids: price / tick; asks: its negation),
    /// or `None` when the price is not positive, above [`MAX_PRICE`] or off
    /// the grid.
    #[inline(always)]
    fn tick_of(&self, price: i64) -> Option<i64> {
        if price <= 0 || price > MAX_PRICE {
            return None;
        }
        Some(self.div.exact(price)? * self.sign)
    }

    #[inline(always)]
    fn slot(&self, t: i64) -> usize {
        (t & self.mask) as usize
    }

    #[inline(always)]
    fn occupied(&self, t: i64) -> bool {
        let s = self.slot(t);
        self.bits[s / 64] & (1 << (s % 64)) != 0
    }

    #[inline(always)]
    fn set(&mut self, t: i64, q: i64) {
        let s = self.slot(t);
        self.qty[s] = q;
        self.bits[s / 64] |= 1 << (s % 64);
    }

    #[inline(always)]
    fn unset(&mut self, t: i64) {
        let s = self.slot(t);
        self.qty[s] = 0;
        self.bits[s / 64] &= !(1 << (s % 64));
    }

    /// Empties the side. Walks the occupied levels rather than zeroing the
    /// whole ladder, so reloading a 20-level partial book costs 20 stores.
    fn clear(&mut self) {
        if self.count > self.bits.len() {
            self.qty.fill(0);
            self.bits.fill(0);
        } else if self.count > 0 {
            let mut t = Some(self.best);
            while let Some(cur) = t {
                self.unset(cur);
                t = self.prev_occupied(cur - 1);
            }
        }
        self.count = 0;
    }

    /// Highest occupied tick in `[lo, from]`, scanning 64 slots per step.
    #[inline]
    fn prev_occupied(&self, from: i64) -> Option<i64> {
        let mut t = from;
        while t >= self.lo {
            let s = self.slot(t);
            // Bits at or below slot s within its word.
            let word = self.bits[s / 64] & (u64::MAX >> (63 - s % 64));
            if word != 0 {
                let top = 63 - word.leading_zeros() as i64;
                let found = t - (s as i64 % 64 - top);
                return (found >= self.lo).then_some(found);
            }
            t -= s as i64 % 64 + 1;
        }
        None
    }

    #[inline]
    fn level_at(&self, t: i64) -> Level {
        Level { price: Price(t * self.tick * self.sign), qty: Qty(self.qty[self.slot(t)]) }
    }

    #[inline]
    fn best(&self) -> Option<Level> {
        (self.count > 0).then(|| self.level_at(self.best))
    }

    /// Quantity resting at exactly `price` (0 if none, or off the grid). O(1).
    #[inline]
    fn qty_at(&self, price: i64) -> i64 {
        if self.count == 0 {
            return 0;
        }
        let Some(t) = self.tick_of(price) else { return 0 };
        if t < self.lo || t >= self.lo + self.width {
            return 0;
        }
        self.qty[self.slot(t)]
    }

    /// Level `n` from the touch (0 = best). O(distance in slots / 64).
    fn level(&self, n: usize) -> Option<Level> {
        if n >= self.count {
            return None;
        }
        let mut t = self.best;
        for _ in 0..n {
            t = self.prev_occupied(t - 1)?;
        }
        Some(self.level_at(t))
    }

    /// Drops every level below tick `new_lo` and makes it the window's bottom.
    fn raise_floor(&mut self, new_lo: i64) {
        if new_lo - self.lo >= self.width {
            self.dropped += self.count as u64;
            self.clear();
        } else {
            let mut t = self.lo;
            while self.count > 0 && t < new_lo {
                let s = self.slot(t);
                // Skip the rest of an empty word in one step.
                if self.bits[s / 64] >> (s % 64) == 0 {
                    t += 64 - (s % 64) as i64;
                    continue;
                }
                if self.occupied(t) {
                    self.unset(t);
                    self.count -= 1;
                    self.dropped += 1;
                }
                t += 1;
            }
        }
        self.lo = new_lo;
    }

    /// Makes room for tick `t` if it is outside the window; false if it
    /// cannot fit (deeper than the window allows below the best).
    #[inline]
    fn fit(&mut self, t: i64) -> bool {
        if self.count == 0 {
            // Empty side: put t near the top, leaving room for the price to rise.
            self.lo = t - (self.width - self.width / 8);
            return true;
        }
        if t >= self.lo + self.width {
            self.raise_floor(t - (self.width - self.width / 8));
            true
        } else if t < self.lo {
            if t <= self.best - self.width {
                return false;
            }
            // Lower the floor; the ticks leaving at the top are above the best, so empty.
            self.lo = (t - self.width / 8).max(self.best - self.width + 1);
            true
        } else {
            true
        }
    }

    #[inline]
    fn apply(&mut self, price: i64, qty: i64) -> Change {
        let Some(t) = self.tick_of(price) else { return self.apply_off_grid(price, qty) };
        if t >= self.lo && t < self.lo + self.width && self.count > 0 {
            let s = self.slot(t);
            let present = self.bits[s / 64] & (1 << (s % 64)) != 0;
            if present {
                if qty != 0 {
                    self.qty[s] = qty;
                    return Change::Updated;
                }
                self.unset(t);
                self.count -= 1;
                if t == self.best && self.count > 0 {
                    self.best = self.prev_occupied(t - 1).unwrap_or(self.lo);
                }
                return Change::Removed;
            }
            if qty == 0 {
                return Change::AbsentRemoved;
            }
            self.set(t, qty);
            self.count += 1;
            if t > self.best {
                self.best = t;
            }
            return Change::Inserted;
        }
        self.apply_outside(t, qty)
    }

    /// A tick outside the window, or the first level of an empty side.
    #[cold]
    fn apply_outside(&mut self, t: i64, qty: i64) -> Change {
        if qty == 0 {
            return Change::AbsentRemoved;
        }
        if !self.fit(t) {
            self.dropped += 1;
            return Change::Dropped;
        }
        self.set(t, qty);
        if self.count == 0 || t > self.best {
            self.best = t;
        }
        self.count += 1;
        Change::Inserted
    }

    /// A price not on the current grid: re-grid to the finer tick, then apply.
    #[cold]
    fn apply_off_grid(&mut self, price: i64, qty: i64) -> Change {
        if qty == 0 {
            // Removing a price that is not on the grid: it is not in the book.
            return Change::AbsentRemoved;
        }
        if price <= 0 || price > MAX_PRICE {
            self.dropped += 1;
            return Change::Dropped;
        }
        let tick = if self.tick > 0 { gcd(self.tick, price) } else { price };
        if self.tick_from_load && self.tick / tick > MAX_REGRID {
            self.dropped += 1;
            return Change::Dropped;
        }
        self.regrid(tick);
        self.apply(price, qty)
    }

    /// Re-indexes every level on a finer tick (a divisor of the old one).
    fn regrid(&mut self, tick: i64) {
        self.scratch.clear();
        if self.count > 0 {
            let mut t = Some(self.best);
            while let Some(cur) = t {
                if self.scratch.len() == self.scratch.capacity() {
                    self.dropped += (self.count - self.scratch.len()) as u64;
                    break;
                }
                let l = self.level_at(cur);
                self.scratch.push((l.price.0, l.qty.0));
                t = self.prev_occupied(cur - 1);
            }
        }
        self.clear();
        self.set_tick(tick);
        let levels = std::mem::take(&mut self.scratch);
        for &(p, q) in &levels {
            self.apply(p, q);
        }
        self.scratch = levels;
    }

    /// Replaces the side with `levels` (any order; zero quantities skipped;
    /// a repeated price keeps its last quantity) on the grid `tick`.
    fn load(&mut self, levels: &[Level], tick: i64) {
        self.clear();
        if tick > 0 {
            self.set_tick(tick);
            self.tick_from_load = true;
        }
        if self.tick <= 0 {
            return;
        }
        // Place the window at the best level first, so the levels dropped
        // for lack of room are the deepest, whatever the input order.
        let usable = |l: &&Level| l.qty.0 > 0 && l.price.0 > 0 && l.price.0 <= MAX_PRICE;
        let Some(best) = levels.iter().filter(usable).map(|l| l.price.0 * self.sign).max() else {
            return;
        };
        self.best = best / self.tick;
        self.lo = self.best - (self.width - self.width / 8);
        for l in levels.iter().filter(usable) {
            let t = l.price.0 * self.sign / self.tick;
            if t < self.lo {
                self.dropped += 1;
                continue;
            }
            if !self.occupied(t) {
                self.count += 1;
            }
            self.set(t, l.qty.0);
        }
    }
}

/// What the exchange side needs to see of a book: the touch, and the
/// quantity resting at a given price. [`Book`] implements it on the hot
/// thread; [`TopOfBook`], a `Copy` snapshot, implements it across a ring.
pub trait BookView {
    fn best_bid(&self) -> Option<Level>;
    fn best_ask(&self) -> Option<Level>;
    fn bid_qty_at(&self, price: Price) -> Qty;
    fn ask_qty_at(&self, price: Price) -> Qty;
}

/// Levels per side in a [`TopOfBook`].
pub const TOP_LEVELS: usize = 10;

/// The top [`TOP_LEVELS`] levels of each side, `Copy`, for hand-off to
/// another thread (best first; `Level::default()` pads an empty slot).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TopOfBook {
    pub bids: [Level; TOP_LEVELS],
    pub asks: [Level; TOP_LEVELS],
    pub bid_len: u8,
    pub ask_len: u8,
}

impl TopOfBook {
    pub fn of(book: &Book) -> Self {
        let mut t = Self::default();
        for (slot, l) in t.bids.iter_mut().zip(book.bids()) {
            *slot = l;
            t.bid_len += 1;
        }
        for (slot, l) in t.asks.iter_mut().zip(book.asks()) {
            *slot = l;
            t.ask_len += 1;
        }
        t
    }
}

impl BookView for TopOfBook {
    fn best_bid(&self) -> Option<Level> {
        (self.bid_len > 0).then_some(self.bids[0])
    }
    fn best_ask(&self) -> Option<Level> {
        (self.ask_len > 0).then_some(self.asks[0])
    }
    /// Levels below the top ten read as empty: the exchange side then
    /// assumes no queue ahead there, which only matters for orders quoted
    /// deeper than ten levels.
    fn bid_qty_at(&self, price: Price) -> Qty {
        self.bids[..self.bid_len as usize].iter().find(|l| l.price == price).map_or(Qty::ZERO, |l| l.qty)
    }
    fn ask_qty_at(&self, price: Price) -> Qty {
        self.asks[..self.ask_len as usize].iter().find(|l| l.price == price).map_or(Qty::ZERO, |l| l.qty)
    }
}

impl BookView for Book {
    fn best_bid(&self) -> Option<Level> {
        Book::best_bid(self)
    }
    fn best_ask(&self) -> Option<Level> {
        Book::best_ask(self)
    }
    fn bid_qty_at(&self, price: Price) -> Qty {
        Book::bid_qty_at(self, price)
    }
    fn ask_qty_at(&self, price: Price) -> Qty {
        Book::ask_qty_at(self, price)
    }
}

/// A two-sided book of fixed capacity. Holds levels only; whether it can be
/// trusted is [`crate::hot::sync::SyncedBook`]'s business.
#[derive(Clone)]
pub struct Book {
    bids: Side,
    asks: Side,
}

impl std::fmt::Debug for Book {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Book")
            .field("best_bid", &self.best_bid())
            .field("best_ask", &self.best_ask())
            .field("bid_depth", &self.bids.count)
            .field("ask_depth", &self.asks.count)
            .finish()
    }
}

impl Book {
    /// Allocates both sides once: `capacity` price ticks per side (rounded up
    /// to a power of two).
    pub fn with_capacity(capacity: usize) -> Self {
        Self { bids: Side::new(capacity, 1), asks: Side::new(capacity, -1) }
    }

    /// Ticks per side the window spans.
    pub fn capacity(&self) -> usize {
        self.bids.width as usize
    }

    /// The learned price grid: the finer of the two sides' ticks (they share
    /// the one learned from the last load unless a side re-gridded since);
    /// 0 until a level has been seen.
    pub fn tick(&self) -> Price {
        match (self.bids.tick, self.asks.tick) {
            (0, t) | (t, 0) => Price(t),
            (b, a) => Price(b.min(a)),
        }
    }

    pub fn clear(&mut self) {
        self.bids.clear();
        self.asks.clear();
    }

    /// Applies an absolute bid quantity (0 removes).
    #[inline]
    pub fn apply_bid(&mut self, level: Level) -> Change {
        self.bids.apply(level.price.0, level.qty.0)
    }

    /// Applies an absolute ask quantity (0 removes).
    #[inline]
    pub fn apply_ask(&mut self, level: Level) -> Change {
        self.asks.apply(level.price.0, level.qty.0)
    }

    /// Replaces the whole book (snapshot or partial-depth message).
    pub fn load(&mut self, bids: &[Level], asks: &[Level]) {
        // The symbol's tick: GCD of every price on both sides (exact, integer).
        let tick = bids
            .iter()
            .chain(asks)
            .filter(|l| l.qty.0 > 0 && l.price.0 > 0 && l.price.0 <= MAX_PRICE)
            .fold(0, |g, l| gcd(l.price.0, g));
        self.bids.load(bids, tick);
        self.asks.load(asks, tick);
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

    /// Bid quantity resting at exactly `price` (0 if none). O(1).
    #[inline]
    pub fn bid_qty_at(&self, price: Price) -> Qty {
        Qty(self.bids.qty_at(price.0))
    }

    /// Ask quantity resting at exactly `price` (0 if none). O(1).
    #[inline]
    pub fn ask_qty_at(&self, price: Price) -> Qty {
        Qty(self.asks.qty_at(price.0))
    }

    /// Bids from the touch down, best first.
    pub fn bids(&self) -> impl Iterator<Item = Level> + '_ {
        side_iter(&self.bids)
    }

    /// Asks from the touch up, best first.
    pub fn asks(&self) -> impl Iterator<Item = Level> + '_ {
        side_iter(&self.asks)
    }

    pub fn bid_depth(&self) -> usize {
        self.bids.count
    }

    pub fn ask_depth(&self) -> usize {
        self.asks.count
    }

    /// Best bid at or above best ask: the book is wrong somewhere.
    #[inline]
    pub fn is_crossed(&self) -> bool {
        match (self.best_bid(), self.best_ask()) {
            (Some(b), Some(a)) => b.price >= a.price,
            _ => false,
        }
    }

    /// True when at least `k` bids (k >= 1) are strictly better than
    /// `price`: then no bid update at `price` or below can change the best
    /// `k` bids.
    ///
    /// A walk down from the touch that stops at `price` or after `k`
    /// levels. Touch-first asks this for every level it reads, so it uses
    /// [`Book::bid_beyond`], which carries one walk down the whole side;
    /// this is the reference that one is tested against. (A maintained
    /// top-`k` array would make it O(1), but keeping one up to date cost
    /// every update more than the walks cost the quote: measured with
    /// `cargo bench --bench book`, issue 19's closing note.)
    #[inline]
    pub fn bid_beyond_top(&self, price: Price, k: usize) -> bool {
        k > 0 && self.bids().take(k).take_while(|l| l.price > price).count() == k
    }

    /// True when at least `k` asks (k >= 1) are strictly better (lower)
    /// than `price`; see [`Book::bid_beyond_top`].
    #[inline]
    pub fn ask_beyond_top(&self, price: Price, k: usize) -> bool {
        k > 0 && self.asks().take(k).take_while(|l| l.price < price).count() == k
    }

    /// Reads the memory the next updates near the touch will use (the
    /// warm hot thread calls it while idle, so the next frame finds it in
    /// cache). Returns a checksum so the reads cannot be optimised away.
    pub fn warm(&self) -> u64 {
        let mut sum = 0u64;
        for l in self.bids().take(TOP_LEVELS).chain(self.asks().take(TOP_LEVELS)) {
            sum = sum.wrapping_add(l.qty.0 as u64);
        }
        sum
    }

    /// Levels dropped because they lay beyond the window, since creation.
    pub fn dropped_levels(&self) -> u64 {
        self.bids.dropped + self.asks.dropped
    }
}

fn side_iter(side: &Side) -> impl Iterator<Item = Level> + '_ {
    let mut next = (side.count > 0).then_some(side.best);
    std::iter::from_fn(move || {
        let t = next?;
        next = side.prev_occupied(t - 1);
        Some(side.level_at(t))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(p: i64, q: i64) -> Level {
        Level::new(p, q)
    }

    #[test]
    fn keeps_best_levels_on_both_sides() {
        let mut b = Book::with_capacity(64);
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
        assert_eq!(b.bids().collect::<Vec<_>>(), vec![l(103, 1), l(101, 3), l(100, 1)]);
        assert_eq!(
            (b.bid_qty_at(Price(101)), b.bid_qty_at(Price(102)), b.ask_qty_at(Price(104))),
            (Qty(3), Qty(0), Qty(2))
        );
        assert_eq!(b.ask_qty_at(Price(-5)), Qty(0));
    }

    #[test]
    fn learns_the_tick_and_regrids_on_a_finer_price() {
        let mut b = Book::with_capacity(1024);
        b.load(&[l(1000, 1), l(980, 2), l(960, 3)], &[l(1040, 1)]);
        assert_eq!(b.tick(), Price(20));
        // 990 is off the 20 grid: the side re-grids to 10 and keeps everything.
        assert_eq!(b.apply_bid(l(990, 5)), Change::Inserted);
        assert_eq!(b.bids().collect::<Vec<_>>(), vec![l(1000, 1), l(990, 5), l(980, 2), l(960, 3)]);
        assert_eq!(b.apply_bid(l(975, 0)), Change::AbsentRemoved);
    }

    #[test]
    fn window_follows_the_touch_and_counts_what_it_drops() {
        let mut b = Book::with_capacity(64);
        b.load(&[l(1000, 1), l(999, 1), l(990, 1)], &[]);
        // Far below the best: cannot fit in 64 ticks.
        assert_eq!(b.apply_bid(l(900, 1)), Change::Dropped);
        assert_eq!(b.dropped_levels(), 1);
        // A new best far above slides the window up, dropping the deep levels.
        assert_eq!(b.apply_bid(l(1055, 1)), Change::Inserted);
        assert_eq!(b.best_bid(), Some(l(1055, 1)));
        // Window is now 999..=1062: 990 went.
        assert_eq!(b.bid_depth(), 3);
        assert_eq!(b.apply_bid(l(1100, 2)), Change::Inserted);
        assert_eq!(b.bids().collect::<Vec<_>>(), vec![l(1100, 2), l(1055, 1)]);
        assert_eq!(b.dropped_levels(), 4);
        // Removing the best walks down to the next level.
        b.apply_bid(l(1100, 0));
        assert_eq!(b.best_bid(), Some(l(1055, 1)));
        // A level below the floor but within reach lowers the floor.
        assert_eq!(b.apply_bid(l(1000, 3)), Change::Inserted);
        assert_eq!(b.bid(1), Some(l(1000, 3)));
    }

    #[test]
    fn absurd_prices_are_dropped_not_trusted() {
        let mut b = Book::with_capacity(4096);
        let bids: Vec<Level> = (0..100).map(|i| l(6_183_700_000_000 - i * 1_000_000, 1)).collect();
        b.load(&bids, &[l(6_183_800_000_000, 1)]);
        // Near i64::MAX, zero, negative, and off-grid by a factor of 1e6.
        assert_eq!(b.apply_bid(l(i64::MAX, 1)), Change::Dropped);
        assert_eq!(b.apply_ask(l(0, 7)), Change::Dropped);
        assert_eq!(b.apply_ask(l(-10, 7)), Change::Dropped);
        assert_eq!(b.apply_bid(l(6_183_700_000_001, 1)), Change::Dropped);
        assert_eq!((b.bid_depth(), b.ask_depth()), (100, 1));
        assert_eq!(b.tick(), Price(1_000_000));
        // A 10x finer tick is a plausible exchange change: re-grid.
        assert_eq!(b.apply_bid(l(6_183_700_100_000, 1)), Change::Inserted);
        assert_eq!(b.bid_depth(), 101);
    }

    #[test]
    fn load_dedupes_skips_zeros_and_keeps_the_best_when_too_deep() {
        let mut b = Book::with_capacity(64);
        b.load(&[l(5, 1), l(7, 2), l(6, 0), l(7, 3), l(4, 1)], &[l(9, 1), l(8, 2)]);
        assert_eq!(b.best_bid(), Some(l(7, 3)));
        assert_eq!(b.bid_depth(), 3);
        assert_eq!(b.best_ask(), Some(l(8, 2)));
        // 200 levels one tick apart into a 64-tick window, worst first: the
        // best 57 are kept (1/8 of the window stays free above the touch).
        let deep: Vec<Level> = (1..=200).map(|p| l(p, 1)).collect();
        b.load(&deep, &[]);
        assert_eq!(b.best_bid(), Some(l(200, 1)));
        assert_eq!(b.bid_depth(), 57);
        assert_eq!(b.bids().last(), Some(l(144, 1)));
        assert_eq!(b.dropped_levels(), 143);
    }

    #[test]
    fn matches_a_btreemap_on_random_updates() {
        use std::collections::BTreeMap;
        let mut b = Book::with_capacity(1 << 12);
        let mut model: BTreeMap<i64, i64> = BTreeMap::new();
        let mut x: u64 = 0x1234_5678;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let price = 10_000 + (x % 600) as i64 * 5;
            let qty = if x.is_multiple_of(3) { 0 } else { ((x >> 20) % 100) as i64 };
            b.apply_ask(l(price, qty));
            if qty == 0 {
                model.remove(&price);
            } else {
                model.insert(price, qty);
            }
            let best = model.iter().next().map(|(&p, &q)| l(p, q));
            assert_eq!(b.best_ask(), best);
        }
        let all: Vec<Level> = model.iter().map(|(&p, &q)| l(p, q)).collect();
        assert_eq!(b.asks().collect::<Vec<_>>(), all);
    }

    /// The divide-free tick index agrees with `%` and `/` for ticks of
    /// every shape (odd, powers of two, mixed, 1, near the top of the
    /// range) on multiples, neighbours of multiples and arbitrary prices.
    #[test]
    fn tick_div_agrees_with_the_divide_instruction() {
        let mut next = crate::hot::test_rng(0x9e37_79b9_7f4a_7c15);
        let mut rnd = move || next(u64::MAX);
        let mut ticks = vec![
            1,
            2,
            3,
            5,
            7,
            10,
            100,
            1_000,
            1_000_000,
            100_000_000,
            1 << 20,
            3 << 40,
            3 << 60,
            (1 << 61) + 1,
            MAX_PRICE,
            MAX_PRICE - 1,
        ];
        ticks.extend((0..200).map(|_| 1 + (rnd() % (1 << (1 + rnd() % 40))) as i64));
        for tick in ticks {
            let d = TickDiv::new(tick);
            for _ in 0..500 {
                let m = 1 + (rnd() % (MAX_PRICE / tick) as u64) as i64;
                for price in [m * tick, m * tick - 1, m * tick + 1, 1 + (rnd() % MAX_PRICE as u64) as i64] {
                    if price <= 0 || price > MAX_PRICE {
                        continue;
                    }
                    let want = (price % tick == 0).then_some(price / tick);
                    assert_eq!(d.exact(price), want, "price {price} tick {tick}");
                }
            }
        }
        for tick in [0, -1, -100, i64::MIN] {
            let d = TickDiv::new(tick);
            for price in [1, 100, 1 << 40, MAX_PRICE] {
                assert_eq!(d.exact(price), None, "tick {tick} refuses every price");
            }
        }
    }
}

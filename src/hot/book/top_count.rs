//! Touch-first's question "are `k` levels of this side strictly better
//! than this price?", answered for a whole side read best-first with one
//! walk down from the touch instead of one walk per level. Apart from the
//! ladder itself ([`super`]) because only touch-first apply asks it.

use super::{Book, Change, Side};
use crate::hot::fixed::Price;
use crate::hot::msg::Level;

impl Book {
    /// A count of the bids strictly better than a falling price, for
    /// touch-first apply: see [`TopCount`].
    #[inline]
    pub fn bid_count(&self) -> TopCount {
        TopCount::start(&self.bids)
    }

    /// [`Book::bid_count`] for asks.
    #[inline]
    pub fn ask_count(&self) -> TopCount {
        TopCount::start(&self.asks)
    }

    /// True when at least `k` bids (k >= 1) are strictly better than
    /// `price`, the count carried on from the last call: the same answer
    /// as [`Book::bid_beyond_top`] when each call's price is strictly worse
    /// than the last (touch-first refuses a side that is not), applied with
    /// [`Book::apply_bid_counted`] in between, and no other change to the
    /// book since [`Book::bid_count`].
    #[inline]
    pub fn bid_beyond(&self, c: &mut TopCount, price: Price, k: usize) -> bool {
        c.beyond(&self.bids, price.0, k)
    }

    /// [`Book::bid_beyond`] for asks.
    #[inline]
    pub fn ask_beyond(&self, c: &mut TopCount, price: Price, k: usize) -> bool {
        c.beyond(&self.asks, price.0.saturating_neg(), k)
    }

    /// [`Book::apply_bid`] of the level [`Book::bid_beyond`] was just asked
    /// about (and said no), keeping `c` true.
    #[inline]
    pub fn apply_bid_counted(&mut self, level: Level, c: &mut TopCount) -> Change {
        let change = self.bids.apply(level.price.0, level.qty.0);
        c.applied(&self.bids, change);
        change
    }

    /// [`Book::apply_bid_counted`] for asks.
    #[inline]
    pub fn apply_ask_counted(&mut self, level: Level, c: &mut TopCount) -> Change {
        let change = self.asks.apply(level.price.0, level.qty.0);
        c.applied(&self.asks, change);
        change
    }
}

/// How many levels of a side are strictly better than a price that only
/// falls from call to call (touch-first reads a sorted side best-first).
///
/// Why: asking [`Book::bid_beyond_top`] afresh for each level walked the
/// top `k` levels from the touch every time (`k` steps per level read).
/// This carries the walk on: the levels already counted stay counted (they
/// are better than every later price), and an apply in between can only
/// add the level it inserted, remove the one the cursor stands on, or
/// neither. Anything else (a re-grid, a window that moved) starts the
/// count again from the touch, which is always right.
#[derive(Debug, Clone, Copy)]
pub struct TopCount {
    /// The highest occupied tick not yet counted (`None`: none left).
    next: Option<i64>,
    counted: usize,
    /// The side's grid and window floor when `next` was found.
    tick: i64,
    lo: i64,
    /// The last key asked about: each must be strictly worse (checked in
    /// debug builds; a repeated price would be counted against itself).
    #[cfg(debug_assertions)]
    last_key: i64,
}

impl TopCount {
    #[inline]
    fn start(side: &Side) -> Self {
        Self {
            next: (side.count > 0).then_some(side.best),
            counted: 0,
            tick: side.tick,
            lo: side.lo,
            #[cfg(debug_assertions)]
            last_key: i64::MAX,
        }
    }

    /// Counts on to `key` (price x side sign); true once `k` (>= 1) levels
    /// strictly better than it are counted.
    #[inline]
    fn beyond(&mut self, side: &Side, key: i64, k: usize) -> bool {
        if k == 0 {
            return false;
        }
        #[cfg(debug_assertions)]
        {
            debug_assert!(key < self.last_key, "TopCount asked about a price not strictly worse than the last");
            debug_assert_eq!(self.tick, side.tick, "TopCount kept across a change of the side's grid");
            self.last_key = key;
        }
        while self.counted < k {
            match self.next {
                Some(t) if t * self.tick > key => {
                    self.counted += 1;
                    self.next = side.prev_occupied(t - 1);
                }
                _ => break,
            }
        }
        self.counted >= k
    }

    /// After the level just asked about was applied with `change`. The
    /// cursor stands on the highest level at or below it, so: an insert
    /// is a new level better than every later price (count it); a removal
    /// took the level the cursor stood on (step past it); an update or a
    /// no-op changed no level's place.
    #[inline]
    fn applied(&mut self, side: &Side, change: Change) {
        if side.tick != self.tick || side.lo > self.lo {
            // Re-gridded, or the window moved up and may have dropped the
            // level the cursor stood on: count again from the touch.
            *self = Self::start(side);
            return;
        }
        self.lo = side.lo;
        match change {
            Change::Inserted => self.counted += 1,
            Change::Removed => match self.next {
                Some(t) if !side.occupied(t) => self.next = side.prev_occupied(t - 1),
                Some(_) | None => *self = Self::start(side),
            },
            Change::Updated | Change::AbsentRemoved | Change::Dropped => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(p: i64, q: i64) -> Level {
        Level::new(p, q)
    }

    /// `TopCount` carried over a side read best-first, with applies in
    /// between, answers as a fresh walk from the touch would, for every
    /// level: inserts, removals, updates, far levels dropped, a window that
    /// slides up, and off-grid prices that re-grid the side.
    #[test]
    fn top_count_matches_a_fresh_walk_for_every_level() {
        let mut rnd = crate::hot::test_rng(0x2545_f491_4f6c_dd1d);
        let mut checked = 0;
        for round in 0..400 {
            // A 64-tick window: a price a few dozen ticks above the touch
            // slides it up and drops the levels the cursor may stand on.
            let mut b = Book::with_capacity(64);
            let tick = 100;
            let bids: Vec<Level> =
                (0..40).map(|i| l((10_000 - i * (1 + rnd(3) as i64)) * tick, 1 + rnd(5) as i64)).collect();
            let asks: Vec<Level> =
                (0..40).map(|i| l((10_001 + i * (1 + rnd(3) as i64)) * tick, 1 + rnd(5) as i64)).collect();
            b.load(&bids, &asks);
            let k = 1 + rnd(8) as usize;
            for side_is_bid in [true, false] {
                // Prices strictly worse one after another, from above the
                // touch (some far enough to slide the window) to deep.
                let mut price = if side_is_bid { 10_000 + rnd(80) as i64 } else { 10_001 - rnd(80) as i64 } * tick;
                let mut c = if side_is_bid { b.bid_count() } else { b.ask_count() };
                for _ in 0..40 {
                    let step = (1 + rnd(4) as i64) * tick;
                    // Now and then a price off the grid (re-grids the side).
                    let off = if round % 7 == 0 && rnd(10) == 0 { tick / 4 } else { 0 };
                    let p = Price(price + if side_is_bid { -off } else { off });
                    // Mostly removals in half the rounds: few new levels
                    // above, so the count reaches the old ones.
                    let q = if rnd(if round % 2 == 0 { 3 } else { 10 }) == 0 { 1 + rnd(9) as i64 } else { 0 };
                    let (fresh, carried) = if side_is_bid {
                        (b.bid_beyond_top(p, k), b.bid_beyond(&mut c, p, k))
                    } else {
                        (b.ask_beyond_top(p, k), b.ask_beyond(&mut c, p, k))
                    };
                    assert_eq!(carried, fresh, "round {round} bid side {side_is_bid} price {p:?} k {k}");
                    checked += 1;
                    if side_is_bid {
                        b.apply_bid_counted(l(p.0, q), &mut c);
                        price -= step;
                    } else {
                        b.apply_ask_counted(l(p.0, q), &mut c);
                        price += step;
                    }
                }
            }
        }
        assert!(checked > 20_000);
        // A side never given a grid, then its first level; k = 0 never stops.
        let mut b = Book::with_capacity(64);
        let mut c = b.bid_count();
        assert!(!b.bid_beyond(&mut c, Price(5_000), 0));
        assert!(!b.bid_beyond(&mut c, Price(4_000), 1));
        b.apply_bid_counted(l(4_000, 1), &mut c);
        assert_eq!(b.bid_beyond(&mut c, Price(3_000), 1), b.bid_beyond_top(Price(3_000), 1));
        assert!(b.bid_beyond(&mut c, Price(2_000), 1));
    }
}

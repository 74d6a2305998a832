//! The last word on every quote, in Rust and fixed-point, after the strategy.
//!
//! Whatever a strategy (native or script) asks for, [`Guard::check`] makes it
//! safe to send, in this order:
//! 1. never quote from an unsynced, crossed or stale book, or on a pull, or
//!    on a non-finite or non-positive price or size: everything is pulled;
//! 2. clamp each side's distance from the mid to `[min, max]` spread / 2;
//! 3. round the bid down and the ask up to `tickSize`;
//! 4. post-only: the bid stays below the best ask and the ask above the best
//!    bid (moved one tick inside if needed), and bid < ask;
//! 5. sizes down to `stepSize`, raised to meet min notional when needed, and
//!    cut so that a fill can never take the position past `max_position`
//!    either way; a side that cannot be made valid is dropped.
//!
//! Every intervention is counted, so a report shows how often the strategy
//! was overruled and why.

mod ladder;

pub use ladder::{LadderRule, LevelSpacing};

use crate::exec::{Ladder, Quote, Side};
use crate::hot::features::Features;
use crate::hot::fixed::{notional, Price, Qty, SCALE};
use crate::hot::msg::{Level, Symbol};
use crate::hot::strategy::{Decision, SideIntent};
use crate::hot::sync::SyncLoss;

/// The exchange's rules for a symbol (PRICE_FILTER, LOT_SIZE, NOTIONAL).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Filters {
    pub tick_size: Price,
    pub step_size: Qty,
    pub min_qty: Qty,
    /// Quote-asset fixed-point; 0 disables.
    pub min_notional: i64,
}

/// Risk limits the guard enforces.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GuardConfig {
    pub min_spread_bps: f64,
    pub max_spread_bps: f64,
    pub max_position: Qty,
    /// A book with no depth event for this long is stale.
    pub stale_after_ns: i64,
    /// Quotes per side and where a ladder's further levels go.
    pub ladder: LadderRule,
}

impl Default for GuardConfig {
    fn default() -> Self {
        Self {
            min_spread_bps: 1.0,
            max_spread_bps: 500.0,
            max_position: Qty(1_000_000),
            stale_after_ns: 5_000_000_000,
            ladder: LadderRule::default(),
        }
    }
}

/// Whether the book can be quoted from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BookHealth {
    pub synced: bool,
    pub crossed: bool,
    /// Time of the last applied depth event, ns.
    pub last_depth_ns: i64,
}

/// Why quotes were pulled or a side changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GuardStats {
    pub quotes: u64,
    pub pulled_unsynced: u64,
    pub pulled_crossed: u64,
    pub pulled_stale: u64,
    pub pulled_by_strategy: u64,
    pub pulled_invalid_output: u64,
    /// The strategy asked to bid at or above its own ask: a strategy bug,
    /// pulled rather than reshaped into a quote it did not ask for.
    pub pulled_crossed_intent: u64,
    pub spread_clamped: u64,
    pub post_only_moved: u64,
    pub raised_to_min_notional: u64,
    pub cut_by_position_limit: u64,
    pub sides_dropped: u64,
    /// Ladder levels (behind the best) dropped, with every level behind
    /// them: not strictly behind the level before, past the position
    /// limit's room, or below the exchange's minimums.
    pub ladder_levels_dropped: u64,
    /// Quotes pulled the moment the traded book lost sync, by cause
    /// (indexed by [`SyncLoss::index`]; see [`GuardStats::pulled_on`]):
    /// `ticker_mismatch` is a book the exchange's bookTicker contradicted,
    /// `gap`/`stale`/`id_jump` a broken update-id chain, `crossed_*` a crossed
    /// book or snapshot, `reconnect` a lost connection.
    pub pulled_sync_lost: [u64; SyncLoss::COUNT],
}

impl GuardStats {
    /// Quotes pulled because the traded book lost sync for `cause`.
    pub fn pulled_on(&self, cause: SyncLoss) -> u64 {
        self.pulled_sync_lost[cause.index()]
    }
}

/// The guard: limits plus counters.
#[derive(Debug, Clone)]
pub struct Guard {
    cfg: GuardConfig,
    stats: GuardStats,
}

/// Converts a float price or size to fixed-point: nearest 1e-8 first, so a
/// value meant to be exactly on a tick is not pushed off it by float error.
#[inline]
fn to_fixed(x: f64) -> i64 {
    (x * SCALE as f64).round() as i64
}

#[inline]
fn floor_to(v: i64, step: i64) -> i64 {
    if step <= 1 {
        v
    } else {
        v - v.rem_euclid(step)
    }
}

#[inline]
fn ceil_to(v: i64, step: i64) -> i64 {
    let f = floor_to(v, step);
    if f == v {
        v
    } else {
        f + step
    }
}

fn valid(s: &SideIntent) -> bool {
    s.price.is_finite() && s.size.is_finite() && s.price > 0.0 && s.size > 0.0 && s.price < 9.2e10 && s.size < 9.2e10
}

impl Guard {
    pub fn new(cfg: GuardConfig) -> Self {
        Self { cfg, stats: GuardStats::default() }
    }

    pub fn stats(&self) -> GuardStats {
        self.stats
    }

    pub fn config(&self) -> &GuardConfig {
        &self.cfg
    }

    /// The traded book just lost sync for `cause` and its quotes are being
    /// pulled (no decision reaches [`Guard::check`] until it is synced
    /// again, and `check` itself refuses an unsynced book): counted here so
    /// every reason quotes were pulled is in [`GuardStats`].
    pub fn note_sync_loss(&mut self, cause: SyncLoss) {
        self.stats.pulled_sync_lost[cause.index()] += 1;
    }

    /// Turns a decision into a quote that is safe to send.
    ///
    /// Out of line: the idle rehearsal (`HotPath::warm`) runs this same
    /// code, so it is what is in cache when a diff comes.
    #[allow(clippy::too_many_arguments)]
    #[inline(never)]
    pub fn check(
        &mut self,
        symbol: Symbol,
        d: &Decision,
        f: &Features,
        health: BookHealth,
        position: Qty,
        filters: &Filters,
        now_ns: i64,
    ) -> Quote {
        self.stats.quotes += 1;
        let pulled = Quote::pulled(symbol, now_ns, f.update_id);
        if !health.synced {
            self.stats.pulled_unsynced += 1;
            return pulled;
        }
        if health.crossed || f.best_bid.price >= f.best_ask.price {
            self.stats.pulled_crossed += 1;
            return pulled;
        }
        if now_ns.saturating_sub(health.last_depth_ns) > self.cfg.stale_after_ns {
            self.stats.pulled_stale += 1;
            return pulled;
        }
        if d.pull {
            self.stats.pulled_by_strategy += 1;
            return pulled;
        }
        if d.bid.is_some_and(|s| !valid(&s)) || d.ask.is_some_and(|s| !valid(&s)) {
            self.stats.pulled_invalid_output += 1;
            return pulled;
        }
        if let (Some(b), Some(a)) = (d.bid, d.ask) {
            if b.price >= a.price {
                self.stats.pulled_crossed_intent += 1;
                return pulled;
            }
        }
        let tick = filters.tick_size.0.max(1);
        let mut bid = d.bid.map(|s| (self.place(Side::Buy, s.price, f.mid, tick), to_fixed(s.size)));
        let mut ask = d.ask.map(|s| (self.place(Side::Sell, s.price, f.mid, tick), to_fixed(s.size)));
        // Post-only: never at or through the other side of the book.
        if let Some((p, _)) = bid.as_mut() {
            if *p >= f.best_ask.price.0 {
                *p = floor_to(f.best_ask.price.0 - tick, tick);
                self.stats.post_only_moved += 1;
            }
        }
        if let Some((p, _)) = ask.as_mut() {
            if *p <= f.best_bid.price.0 {
                *p = ceil_to(f.best_bid.price.0 + tick, tick);
                self.stats.post_only_moved += 1;
            }
        }
        if let (Some((b, _)), Some((a, _))) = (bid, ask) {
            if b >= a {
                self.stats.pulled_invalid_output += 1;
                return pulled;
            }
        }
        // Room left before the position limit, each way.
        let max = self.cfg.max_position.0;
        let buy_room = (max - position.0).max(0);
        let sell_room = (max + position.0).max(0);
        let bid = bid.and_then(|(p, s)| self.size(p, s, buy_room, filters));
        let ask = ask.and_then(|(p, s)| self.size(p, s, sell_room, filters));
        let deeper = if self.cfg.ladder.levels > 1 {
            let sized = |l: Option<Level>, i: Option<SideIntent>| l.zip(i.map(|i| i.size));
            let used = |l: Option<Level>| l.map_or(0, |l| l.qty.0);
            let (buy_room, sell_room) = (buy_room - used(bid), sell_room - used(ask));
            self.ladder(d, f, filters, sized(bid, d.bid), sized(ask, d.ask), buy_room, sell_room)
        } else {
            Ladder::NONE
        };
        Quote { symbol, bid, ask, deeper, time_ns: now_ns, update_id: f.update_id }
    }

    /// A side's price: `want`'s distance from the mid held to `[min, max]`
    /// spread / 2 (counted when it had to be), then rounded away from the
    /// mid onto the tick grid (a bid down, an ask up).
    #[inline]
    fn place(&mut self, side: Side, want: f64, mid: f64, tick: i64) -> i64 {
        let (lo, hi) = (mid * self.cfg.min_spread_bps / 2e4, mid * self.cfg.max_spread_bps / 2e4);
        let dist = match side {
            Side::Buy => mid - want,
            Side::Sell => want - mid,
        };
        let clamped = dist.clamp(lo, hi);
        if clamped != dist {
            self.stats.spread_clamped += 1;
        }
        match side {
            Side::Buy => floor_to(to_fixed(mid - clamped), tick),
            Side::Sell => ceil_to(to_fixed(mid + clamped), tick),
        }
    }

    /// Rounds a size to the lot grid, meets min notional, respects the room;
    /// a side that cannot be made valid is counted dropped.
    fn size(&mut self, price: i64, size: i64, room: i64, filters: &Filters) -> Option<Level> {
        let level = self.sized(price, size, room, filters);
        if level.is_none() {
            self.stats.sides_dropped += 1;
        }
        level
    }

    /// [`Guard::size`] without counting a drop.
    fn sized(&mut self, price: i64, size: i64, room: i64, filters: &Filters) -> Option<Level> {
        let step = filters.step_size.0.max(1);
        let mut q = floor_to(size, step);
        if filters.min_notional > 0 && price > 0 && notional(price, q) < filters.min_notional {
            // Smallest size on the grid that meets min notional.
            let num = filters.min_notional as i128 * SCALE as i128;
            let need = (num + price as i128 - 1) / price as i128; // ceil, both positive
            q = ceil_to(need.min(i64::MAX as i128) as i64, step);
            self.stats.raised_to_min_notional += 1;
        }
        if q > room {
            q = floor_to(room, step);
            self.stats.cut_by_position_limit += 1;
        }
        let ok = q > 0
            && q >= filters.min_qty.0
            && (filters.min_notional == 0 || notional(price, q) >= filters.min_notional);
        ok.then(|| Level::new(price, q))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hot::strategy::Decision;

    const ONE: i64 = SCALE;

    fn features() -> Features {
        Features {
            best_bid: Level::new(100 * ONE, ONE),
            best_ask: Level::new(100 * ONE + ONE / 100, ONE),
            mid: 100.005,
            update_id: 9,
            ..Features::default()
        }
    }

    fn filters() -> Filters {
        Filters {
            tick_size: Price(ONE / 100),
            step_size: Qty(ONE / 1000),
            min_qty: Qty(ONE / 1000),
            min_notional: 5 * ONE,
        }
    }

    fn healthy() -> BookHealth {
        BookHealth { synced: true, crossed: false, last_depth_ns: 1_000 }
    }

    fn guard() -> Guard {
        Guard::new(GuardConfig {
            min_spread_bps: 1.0,
            max_spread_bps: 100.0,
            max_position: Qty(ONE),
            stale_after_ns: 1_000,
            ladder: LadderRule::default(),
        })
    }

    fn decision(bid: Option<(f64, f64)>, ask: Option<(f64, f64)>) -> Decision {
        Decision {
            bid: bid.map(|(price, size)| SideIntent { price, size }),
            ask: ask.map(|(price, size)| SideIntent { price, size }),
            ..Decision::default()
        }
    }

    fn ladder_guard(levels: usize, spacing: LevelSpacing, size_growth: f64) -> Guard {
        Guard::new(GuardConfig { ladder: LadderRule { levels, spacing, size_growth }, ..*guard().config() })
    }

    fn prices(q: &Quote, side: Side) -> Vec<(i64, i64)> {
        (0..q.levels(side)).map(|i| q.level(side, i).unwrap()).map(|l| (l.price.0, l.qty.0)).collect()
    }

    const CENT: i64 = ONE / 100;
    const MILLI: i64 = ONE / 1000;

    #[test]
    fn a_ladder_rule_spaces_and_grows_the_levels_behind_the_best() {
        let mut g = ladder_guard(3, LevelSpacing::Ticks(5), 2.0);
        let d = decision(Some((99.9, 0.1)), Some((100.1, 0.1)));
        let q = g.check(Symbol::default(), &d, &features(), healthy(), Qty(0), &filters(), 1_000);
        let b = 9_990 * CENT;
        assert_eq!(
            prices(&q, Side::Buy),
            [(b, 100 * MILLI), (b - 5 * CENT, 200 * MILLI), (b - 10 * CENT, 400 * MILLI)]
        );
        let a = 10_010 * CENT;
        assert_eq!(
            prices(&q, Side::Sell),
            [(a, 100 * MILLI), (a + 5 * CENT, 200 * MILLI), (a + 10 * CENT, 400 * MILLI)]
        );
        // In basis points of the mid (100.005 x 10 bps = 0.100005: 10 ticks).
        let mut g = ladder_guard(2, LevelSpacing::Bps(10.0), 1.0);
        let q = g.check(Symbol::default(), &d, &features(), healthy(), Qty(0), &filters(), 1_000);
        assert_eq!(prices(&q, Side::Buy), [(b, 100 * MILLI), (b - 10 * CENT, 100 * MILLI)]);
        // One level: no ladder at all.
        let q = guard().check(Symbol::default(), &d, &features(), healthy(), Qty(0), &filters(), 1_000);
        assert_eq!((q.levels(Side::Buy), q.levels(Side::Sell)), (1, 1));
    }

    #[test]
    fn a_whole_ladder_filling_stays_within_the_position_limit() {
        // max_position 1: 0.4 + 0.4 + 0.2 (cut); nothing is left for a fourth.
        let mut g = ladder_guard(4, LevelSpacing::Ticks(1), 1.0);
        let d = decision(Some((99.9, 0.4)), None);
        let q = g.check(Symbol::default(), &d, &features(), healthy(), Qty(0), &filters(), 1_000);
        let sizes: Vec<i64> = prices(&q, Side::Buy).iter().map(|l| l.1).collect();
        assert_eq!(sizes, [400 * MILLI, 400 * MILLI, 200 * MILLI]);
        assert_eq!(g.stats().ladder_levels_dropped, 1);
        // Long 0.5: the room is 0.5 for the whole bid ladder.
        let q = g.check(Symbol::default(), &d, &features(), healthy(), Qty(500 * MILLI), &filters(), 1_000);
        let total: i64 = prices(&q, Side::Buy).iter().map(|l| l.1).sum();
        assert_eq!(total, 500 * MILLI);
    }

    #[test]
    fn a_strategys_own_levels_must_stand_behind_the_one_before() {
        let mut g = ladder_guard(4, LevelSpacing::Ticks(1), 1.0);
        let mut d = decision(Some((99.9, 0.1)), Some((100.1, 0.1)));
        let l = |price, size| Some(SideIntent { price, size });
        // Bids: 99.8 behind, then 99.85 in front of it: dropped with 99.7.
        d.deeper.bids = [l(99.8, 0.1), l(99.85, 0.1), l(99.7, 0.1), None, None, None, None];
        // Asks: 100.2, then far past max spread (clamped to 100.51), then
        // past it again: clamped to the same price, so dropped.
        d.deeper.asks = [l(100.2, 0.1), l(150.0, 0.1), l(160.0, 0.1), None, None, None, None];
        let q = g.check(Symbol::default(), &d, &features(), healthy(), Qty(0), &filters(), 1_000);
        let bids: Vec<i64> = prices(&q, Side::Buy).iter().map(|l| l.0).collect();
        assert_eq!(bids, [9_990 * CENT, 9_980 * CENT]);
        let asks: Vec<i64> = prices(&q, Side::Sell).iter().map(|l| l.0).collect();
        assert_eq!(asks, [10_010 * CENT, 10_020 * CENT, 10_051 * CENT]);
        assert_eq!(g.stats().ladder_levels_dropped, 2);
        // A side with no best has no ladder.
        d.bid = None;
        let q = g.check(Symbol::default(), &d, &features(), healthy(), Qty(0), &filters(), 1_000);
        assert_eq!(q.levels(Side::Buy), 0);
        assert_eq!(q.level(Side::Buy, 1), None);
    }

    #[test]
    fn rounds_bid_down_ask_up_and_sizes_down() {
        let mut g = guard();
        let q = g.check(
            Symbol::default(),
            &decision(Some((99.98712, 0.12345)), Some((100.03291, 0.2))),
            &features(),
            healthy(),
            Qty(0),
            &filters(),
            1_000,
        );
        assert_eq!(q.bid, Some(Level::new(9_998 * ONE / 100, 123 * ONE / 1000)));
        assert_eq!(q.ask, Some(Level::new(10_004 * ONE / 100, ONE / 5)));
        // A float a hair below a tick is not pushed a whole tick down.
        let q = g.check(
            Symbol::default(),
            &decision(Some((99.97, 0.3)), None),
            &features(),
            healthy(),
            Qty(0),
            &filters(),
            1_000,
        );
        assert_eq!(q.bid.unwrap().price, Price(9_997 * ONE / 100));
    }

    #[test]
    fn pulls_on_a_bad_book_or_bad_output() {
        let mut g = guard();
        let d = decision(Some((99.9, 0.1)), Some((100.1, 0.1)));
        let f = features();
        let unsynced = BookHealth { synced: false, ..healthy() };
        assert!(g.check(Symbol::default(), &d, &f, unsynced, Qty(0), &filters(), 1_000).is_pulled());
        let crossed = BookHealth { crossed: true, ..healthy() };
        assert!(g.check(Symbol::default(), &d, &f, crossed, Qty(0), &filters(), 1_000).is_pulled());
        assert!(g.check(Symbol::default(), &d, &f, healthy(), Qty(0), &filters(), 5_000).is_pulled(), "stale");
        let nan = decision(Some((f64::NAN, 0.1)), Some((100.1, 0.1)));
        assert!(g.check(Symbol::default(), &nan, &f, healthy(), Qty(0), &filters(), 1_000).is_pulled());
        let neg = decision(Some((99.9, -1.0)), None);
        assert!(g.check(Symbol::default(), &neg, &f, healthy(), Qty(0), &filters(), 1_000).is_pulled());
        let s = g.stats();
        assert_eq!((s.pulled_unsynced, s.pulled_crossed, s.pulled_stale, s.pulled_invalid_output), (1, 1, 1, 2));
    }

    #[test]
    fn clamps_spread_and_stays_post_only() {
        let mut g = guard();
        // Asking to join the touch at the mid: clamped to min spread, then post-only.
        let d = decision(Some((100.0, 0.1)), Some((100.001, 0.1)));
        let q = g.check(Symbol::default(), &d, &features(), healthy(), Qty(0), &filters(), 1_000);
        let (b, a) = (q.bid.unwrap().price.0, q.ask.unwrap().price.0);
        assert!(b < features().best_ask.price.0 && a > features().best_bid.price.0 && b < a);
        // A crossed intent (bid above its own ask) is a strategy bug: pulled
        // and counted, not turned into a two-sided quote.
        let crossed = decision(Some((100.02, 0.1)), Some((99.99, 0.1)));
        assert!(g.check(Symbol::default(), &crossed, &features(), healthy(), Qty(0), &filters(), 1_000).is_pulled());
        assert_eq!(g.stats().pulled_crossed_intent, 1);
        // Far too wide: clamped to max spread (100 bps => 0.5% each side).
        let d = decision(Some((50.0, 0.1)), Some((150.0, 0.1)));
        let q = g.check(Symbol::default(), &d, &features(), healthy(), Qty(0), &filters(), 1_000);
        assert_eq!(q.bid.unwrap().price, Price(9_950 * ONE / 100));
        assert_eq!(q.ask.unwrap().price, Price(10_051 * ONE / 100));
        assert!(g.stats().spread_clamped >= 4);
    }

    #[test]
    fn min_notional_and_position_limits() {
        let mut g = guard();
        // 0.01 at ~99.9 is below 5.0 notional: raised to 0.051 (grid 0.001).
        let q = g.check(
            Symbol::default(),
            &decision(Some((99.9, 0.01)), None),
            &features(),
            healthy(),
            Qty(0),
            &filters(),
            1_000,
        );
        assert_eq!(q.bid.unwrap().qty, Qty(51 * ONE / 1000));
        // Long 0.98 of max 1.0: the bid is cut to 0.02, below min notional: dropped.
        let q = g.check(
            Symbol::default(),
            &decision(Some((99.9, 0.5)), Some((100.1, 0.5))),
            &features(),
            healthy(),
            Qty(98 * ONE / 100),
            &filters(),
            1_000,
        );
        assert!(q.bid.is_none());
        assert_eq!(q.ask.unwrap().qty, Qty(ONE / 2));
        assert_eq!(g.stats().sides_dropped, 1);
    }
}

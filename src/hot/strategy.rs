//! The strategy boundary: market state in, desired quotes out.
//!
//! A strategy sees the features after an event, its own position and limit,
//! the current advice and its parameters, and answers with prices and sizes
//! (as `f64`: strategies and scripts compute with floats) or "pull". It does
//! not get the last word: [`crate::hot::guard`] clamps, rounds and checks
//! everything in fixed-point afterwards, so a strategy can only narrow what
//! the limits allow. The native strategy here reproduces the original
//! tutorial's rules; Rhai scripts plug in behind the same trait.

use crate::hot::advice::Advice;
use crate::hot::book::Book;
use crate::hot::features::{Features, TradeRing};
use crate::hot::fixed::{Price, Qty};

/// Parameters of the built-in strategy (the tutorial's settings).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StrategyParams {
    /// Base spread in percent of the mid (0.1 = 0.1%).
    pub target_spread_pct: f64,
    /// Order size in base units.
    pub min_order_size: Qty,
    /// Largest long position in base units.
    pub max_position: Qty,
}

impl Default for StrategyParams {
    fn default() -> Self {
        Self { target_spread_pct: 0.1, min_order_size: Qty(100_000), max_position: Qty(1_000_000) }
    }
}

/// Everything a strategy may read for one decision.
#[derive(Debug, Clone, Copy)]
pub struct StrategyInput<'a> {
    pub features: &'a Features,
    pub position: Qty,
    pub advice: Advice,
    pub params: &'a StrategyParams,
    /// The rest of the market and the account: depth, trades, own orders,
    /// PnL ([`MarketScope::default`] when a caller has none of it).
    pub scope: MarketScope<'a>,
}

/// Own working orders a strategy sees per side (the innermost first).
pub const MAX_OWN_ORDERS: usize = MAX_LEVELS;

/// One own working order, as the exchange side last reported it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OwnOrder {
    pub price: Price,
    /// Quantity remaining, base units.
    pub qty: Qty,
    /// Estimated visible quantity ahead of it at its price, base units
    /// (`None` when unknown: live orders, or before the paper exchange has
    /// placed it in a queue).
    pub queue_ahead: Option<Qty>,
    /// When it joined the book (the clock of the run: receive time).
    pub since_ns: i64,
}

/// Own working orders per side, innermost first; fixed-size and `Copy` so
/// the exchange side can hand them to the hot thread through a ring.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OwnOrders {
    pub bids: [OwnOrder; MAX_OWN_ORDERS],
    pub asks: [OwnOrder; MAX_OWN_ORDERS],
    pub bid_count: u8,
    pub ask_count: u8,
}

impl OwnOrders {
    /// Adds an order on its side (buy: bids) after those already there;
    /// beyond [`MAX_OWN_ORDERS`] it is left out.
    pub fn push(&mut self, buy: bool, order: OwnOrder) {
        let (list, n) = if buy { (&mut self.bids, &mut self.bid_count) } else { (&mut self.asks, &mut self.ask_count) };
        if let Some(slot) = list.get_mut(*n as usize) {
            *slot = order;
            *n += 1;
        }
    }

    /// The working bids, innermost first.
    pub fn bids(&self) -> &[OwnOrder] {
        &self.bids[..(self.bid_count as usize).min(MAX_OWN_ORDERS)]
    }

    /// The working asks, innermost first.
    pub fn asks(&self) -> &[OwnOrder] {
        &self.asks[..(self.ask_count as usize).min(MAX_OWN_ORDERS)]
    }
}

/// The account as the exchange side last reported it: fixed-point, quote
/// asset (1e-8), from the exchange side's position (built in
/// `crate::exec::strategy_view`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Account {
    /// Average entry price of the open position; 0 when flat.
    pub avg_entry: Price,
    /// Cost basis of the open position, signed like it (unrealized PnL is
    /// `mid x position - open_cost`).
    pub open_cost: i64,
    /// Realized PnL before fees.
    pub realized: i64,
    /// Commissions paid, valued in the quote asset.
    pub fees: i64,
    /// Time of the latest own fill (the run's clock); `None` before any.
    pub last_fill_ns: Option<i64>,
}

/// Levels per side of the book that are exact when a strategy decides (and
/// that scripts see). With touch-first apply ([`crate::hot::touch`]) deeper
/// levels may still lack the diff being quoted on until it is finished.
pub const DECISION_DEPTH: usize = 20;

/// What a strategy reads beyond the features: the traded book, the trade
/// ring, own orders and the account. References, so building an input
/// copies nothing; all `None`/zero by default (hand-built inputs).
#[derive(Debug, Clone, Copy, Default)]
pub struct MarketScope<'a> {
    /// The traded book: exact to the depth the strategy reads
    /// ([`Strategy::book_depth`], at most [`DECISION_DEPTH`]) and the
    /// features' depth; deeper levels may lack the diff being quoted on.
    pub book: Option<&'a Book>,
    /// The latest trades of the traded symbol.
    pub trades: Option<&'a TradeRing>,
    /// Own working orders.
    pub orders: Option<&'a OwnOrders>,
    pub account: Account,
    /// Exchange filters (the book's learned tick when the config has none).
    pub tick_size: Price,
    pub step_size: Qty,
    /// Exchange event time `E` of the latest depth event, ns (0 unknown).
    pub exchange_time_ns: i64,
    /// The advice had expired at this decision (the strategy then gets
    /// neutral advice).
    pub advice_expired: bool,
    /// The other symbols of a multi-symbol run, in `[[symbols]]` order
    /// (this one included): their last mid and volatility
    /// ([`crate::hot::peers`]). `None` in one-symbol runs.
    pub peers: Option<&'a crate::hot::peers::PeerBoard>,
}

/// One own fill, as the strategy hears of it ([`Strategy::on_fill`]).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StrategyFill {
    pub price: f64,
    /// Base units, > 0.
    pub qty: f64,
    /// +1 buy, -1 sell.
    pub side: f64,
    /// Commission valued in the quote asset.
    pub fee: f64,
    /// When it happened (the run's clock), seconds.
    pub time_s: f64,
    /// The order rested and was taken.
    pub maker: bool,
    /// Position after it, base units (as the strategy knows it).
    pub position: f64,
}

/// One side of a desired quote, before rounding.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SideIntent {
    pub price: f64,
    pub size: f64,
}

/// How the quote came about, for the dashboard and reports.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Explain {
    pub base_spread_pct: f64,
    pub spread_mult: f64,
    pub vol_mult: f64,
    pub dir_mult: f64,
    /// Percent of mid after the multipliers.
    pub dynamic_spread_pct: f64,
    /// Price distance added outside the touch on each side.
    pub half_spread: f64,
}

/// Most quotes per side a strategy may ask for (the best one included).
pub const MAX_LEVELS: usize = 8;

/// Quotes behind the best one on each side (level 2 and deeper, in order
/// from the touch outwards), for ladders. The best quote of each side stays
/// in [`Decision::bid`] and [`Decision::ask`].
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Deeper {
    pub bids: [Option<SideIntent>; MAX_LEVELS - 1],
    pub asks: [Option<SideIntent>; MAX_LEVELS - 1],
}

impl Deeper {
    /// Quotes asked for behind the best, both sides.
    pub fn count(&self) -> usize {
        self.bids.iter().chain(&self.asks).filter(|l| l.is_some()).count()
    }
}

/// What the strategy wants.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Decision {
    /// The best (innermost) quote of each side.
    pub bid: Option<SideIntent>,
    pub ask: Option<SideIntent>,
    /// More quotes per side, up to `[strategy] levels` in all.
    pub deeper: Deeper,
    /// Pull everything this event (no quotes at all).
    pub pull: bool,
    pub explain: Explain,
}

/// The strategy boundary.
pub trait Strategy {
    fn decide(&mut self, input: &StrategyInput<'_>) -> Decision;
    /// Called by the hot path after each [`Strategy::decide`], once the
    /// quote it led to is out, with the time the call took (`elapsed_ns`:
    /// the strategy stage, measured with the hot path's clock) and the
    /// event's time (`now_ns`, simulated in backtests): scripts hold it
    /// against their time budget ([`crate::script::budget`]).
    #[inline]
    fn after_call(&mut self, elapsed_ns: u64, now_ns: i64) {
        let _ = (elapsed_ns, now_ns);
    }
    /// A decision made only to keep the strategy's code and state in cache
    /// while the hot thread is idle (the warm thread's rehearsal,
    /// [`crate::hot::engine::HotPath::warm`]); its result is thrown away.
    /// It must change nothing a later [`Strategy::decide`] sees. `None`:
    /// this strategy does not rehearse (the default; a script's state and
    /// counters would move).
    #[inline]
    fn rehearse(&mut self, _input: &StrategyInput<'_>) -> Option<Decision> {
        None
    }
    /// One own fill, told before the next decision (in the order they
    /// happened). Runs on the hot thread: no allocation, no blocking.
    fn on_fill(&mut self, _fill: &StrategyFill) {}
    /// Name for reports ("native", a script's path, ...).
    fn name(&self) -> &str;

    /// Levels per side of `scope.book` this strategy reads when deciding
    /// (beyond the features): touch-first apply keeps that many exact at
    /// decision time ([`crate::hot::touch`]). At most [`DECISION_DEPTH`]
    /// (the default) are guaranteed.
    fn book_depth(&self) -> usize {
        DECISION_DEPTH
    }
    /// How its calls went (read at the end of a run, off the hot path):
    /// scripts count their failures; the native strategy never fails.
    fn health(&self) -> StrategyHealth {
        StrategyHealth::default()
    }
    /// The concrete strategy, for callers that know more kinds than this
    /// trait does (a script's errors, outputs and version for report.json
    /// and the dashboard: `crate::script::health::view_of`), without this
    /// layer depending on them. Read off the hot path.
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        None
    }
}

/// A boxed strategy is one, so a process can hold strategies of different
/// kinds side by side (one per symbol: native here, a script there).
impl<T: Strategy + ?Sized> Strategy for Box<T> {
    #[inline]
    fn decide(&mut self, input: &StrategyInput<'_>) -> Decision {
        (**self).decide(input)
    }
    #[inline]
    fn after_call(&mut self, elapsed_ns: u64, now_ns: i64) {
        (**self).after_call(elapsed_ns, now_ns)
    }
    #[inline]
    fn rehearse(&mut self, input: &StrategyInput<'_>) -> Option<Decision> {
        (**self).rehearse(input)
    }
    fn on_fill(&mut self, fill: &StrategyFill) {
        (**self).on_fill(fill)
    }
    fn name(&self) -> &str {
        (**self).name()
    }
    fn book_depth(&self) -> usize {
        (**self).book_depth()
    }
    fn health(&self) -> StrategyHealth {
        (**self).health()
    }
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        (**self).as_any()
    }
}

/// Calls of a strategy and how many failed, for reports and exit statuses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StrategyHealth {
    pub calls: u64,
    /// Runtime errors (the quote was pulled).
    pub errors: u64,
    /// Outputs of the wrong shape (the quote was pulled).
    pub bad_outputs: u64,
    /// Calls that quoted at least one side.
    pub quoted: u64,
}

impl StrategyHealth {
    /// Failed calls as a share of all calls (0 with no calls).
    pub fn failed_share(&self) -> f64 {
        if self.calls == 0 {
            0.0
        } else {
            (self.errors + self.bad_outputs) as f64 / self.calls as f64
        }
    }
}

/// The original tutorial's rules, exactly:
/// dynamic spread = `target_spread_pct` x spread x volatility x direction
/// multipliers ([`Advice::multipliers`]), or x the model's own multiplier
/// with `[ai] apply_multiplier` ([`Advice::spread_factor`]); half_spread = mid x dynamic% / 2;
/// bid = best_bid - half_spread; ask = best_ask + half_spread; size
/// `min_order_size`; buy only while position < max_position; sell only while
/// position > 0.
#[derive(Debug, Default, Clone, Copy)]
pub struct NativeStrategy;

impl Strategy for NativeStrategy {
    /// Reads the features only (best bid and ask, depth imbalance).
    fn book_depth(&self) -> usize {
        0
    }

    /// It keeps no state: a decision changes nothing.
    #[inline]
    fn rehearse(&mut self, input: &StrategyInput<'_>) -> Option<Decision> {
        Some(self.decide(input))
    }

    // Out of line: the idle rehearsal (`HotPath::warm`) runs this same
    // code, so it is what is in cache when a diff comes.
    #[inline(never)]
    fn decide(&mut self, input: &StrategyInput<'_>) -> Decision {
        let f = input.features;
        let p = input.params;
        let (spread_mult, vol_mult, dir_mult) = input.advice.multipliers();
        // Advice::spread_factor, written out so the labels-only product keeps
        // its order of operations (quotes stay bit-identical to the tutorial).
        let dynamic_spread_pct = match input.advice.applied_multiplier() {
            Some(m) => p.target_spread_pct * m,
            None => p.target_spread_pct * spread_mult * vol_mult * dir_mult,
        };
        let half_spread = f.mid * dynamic_spread_pct / 100.0 / 2.0;
        let size = p.min_order_size.to_f64();
        let bid = (input.position < p.max_position)
            .then(|| SideIntent { price: f.best_bid.price.to_f64() - half_spread, size });
        let ask =
            (input.position > Qty::ZERO).then(|| SideIntent { price: f.best_ask.price.to_f64() + half_spread, size });
        Decision {
            bid,
            ask,
            deeper: Default::default(),
            pull: false,
            explain: Explain {
                base_spread_pct: p.target_spread_pct,
                spread_mult,
                vol_mult,
                dir_mult,
                dynamic_spread_pct,
                half_spread,
            },
        }
    }

    fn name(&self) -> &str {
        "native"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hot::advice::{Direction, SpreadState, Volatility};
    use crate::hot::msg::Level;

    fn features() -> Features {
        Features {
            best_bid: Level::new(9_990_000_000, 100_000_000),
            best_ask: Level::new(10_010_000_000, 100_000_000),
            mid: 100.0,
            ..Features::default()
        }
    }

    fn decide(advice: Advice, position: i64) -> Decision {
        let f = features();
        let params =
            StrategyParams { target_spread_pct: 0.2, min_order_size: Qty(50_000_000), max_position: Qty(200_000_000) };
        NativeStrategy.decide(&StrategyInput {
            features: &f,
            position: Qty(position),
            advice,
            params: &params,
            scope: MarketScope::default(),
        })
    }

    #[test]
    fn every_multiplier_path() {
        let cases = [(SpreadState::Narrow, 0.7), (SpreadState::Normal, 1.0), (SpreadState::Wide, 1.3)];
        for (s, m) in cases {
            let d = decide(Advice { spread: s, ..Advice::neutral() }, 0);
            assert!((d.explain.dynamic_spread_pct - 0.2 * m).abs() < 1e-12);
        }
        for (v, m) in [(Volatility::High, 1.5), (Volatility::Medium, 1.0), (Volatility::Low, 0.7)] {
            let d = decide(Advice { volatility: v, ..Advice::neutral() }, 0);
            assert!((d.explain.dynamic_spread_pct - 0.2 * m).abs() < 1e-12);
        }
        for (dir, m) in
            [(Direction::Up, 1.1), (Direction::Down, 1.1), (Direction::Sideways, 0.9), (Direction::Neutral, 1.0)]
        {
            let d = decide(Advice { direction: dir, ..Advice::neutral() }, 0);
            assert!((d.explain.dynamic_spread_pct - 0.2 * m).abs() < 1e-12);
        }
        let all = Advice {
            spread: SpreadState::Wide,
            volatility: Volatility::High,
            direction: Direction::Up,
            ..Advice::neutral()
        };
        let d = decide(all, 0);
        assert!((d.explain.dynamic_spread_pct - 0.2 * 1.3 * 1.5 * 1.1).abs() < 1e-12);
    }

    #[test]
    fn an_applied_multiplier_sizes_the_spread_instead_of_the_labels() {
        let labels = Advice { spread: SpreadState::Wide, multiplier: 2.0, ..Advice::neutral() };
        let d = decide(labels, 100_000_000);
        assert!((d.explain.dynamic_spread_pct - 0.2 * 1.3).abs() < 1e-12, "labels only by default");
        let d = decide(Advice { apply_multiplier: true, ..labels }, 100_000_000);
        // 0.2% x 2.0 = 0.4% of mid 100 = 0.4, half = 0.2: bid 99.9 - 0.2, ask 100.1 + 0.2.
        assert!((d.explain.dynamic_spread_pct - 0.4).abs() < 1e-12);
        let (b, a) = (d.bid.unwrap(), d.ask.unwrap());
        assert!((b.price - 99.7).abs() < 1e-9 && (a.price - 100.3).abs() < 1e-9, "{b:?} {a:?}");
    }

    #[test]
    fn prices_sizes_and_position_limits() {
        // 0.2% of mid 100 = 0.2, half = 0.1: bid 99.9 - 0.1, ask 100.1 + 0.1.
        let d = decide(Advice::neutral(), 100_000_000);
        let (b, a) = (d.bid.unwrap(), d.ask.unwrap());
        assert!((b.price - 99.8).abs() < 1e-9 && (a.price - 100.2).abs() < 1e-9);
        assert_eq!((b.size, a.size), (0.5, 0.5));
        // Flat: no ask (sell only while long). At the limit: no bid.
        assert!(decide(Advice::neutral(), 0).ask.is_none());
        assert!(decide(Advice::neutral(), 200_000_000).bid.is_none());
    }
}

//! A seeded, reproducible order-flow model of one symbol's book that speaks
//! Binance's market-data formats.
//!
//! Why it exists: the loopback simulator (`mmbot sim --synthetic`) needs a
//! market that behaves like a real one, so that the feed, the sync code and a
//! strategy meet the situations they meet live: a touch that empties and
//! refills, sweeps that move the price by several ticks, bursts of activity,
//! diffs that straddle a REST snapshot, a snapshot that comes back too old.
//! A random walk of numbers exercises none of that. [`FlowModel`] keeps an
//! exact book and changes it only through order-flow events; every payload is
//! derived from that book, so the frames are consistent with each other by
//! construction, and the tests check that mmbot's own parser and sync code
//! rebuild the model's book from them exactly.
//!
//! # The model
//!
//! * **Time.** Events arrive as a Poisson process: exponential gaps drawn from
//!   the seeded generator, at `events_per_sec` in the calm regime and a
//!   multiple of it in the volatile one. Each gap is drawn when the previous
//!   event runs, and diffs are flushed at `start_ms + k * depth_interval_ms`,
//!   so the frames depend only on the seed, `start_ms` and the last time
//!   advanced to, never on how [`FlowModel::advance_to`] calls were chunked.
//! * **Regimes.** A two-state Markov switch (calm / volatile, exponential
//!   sojourns of a few seconds). Volatile flow has more and bigger market
//!   orders, more cancels near the touch, wider placement and a faster fair value.
//! * **Fair value.** A random walk in ticks whose step scales with the regime,
//!   plus part of each sweep's price impact (trades carry information). It is
//!   what the price diffuses around: limit orders are placed relative to it,
//!   the stale side of the book is cancelled more, and market orders lean
//!   towards it, so the touch follows it without ever being set directly.
//! * **Limit orders** land a power-law distance behind the fair value (most
//!   within a few ticks, some hundreds of ticks out, as on real books), so the
//!   top is dense and the depth thins out; when the spread is wide they fill
//!   it in (improving the touch), but they are clamped to never cross. Sizes
//!   are on the lot grid with a Pareto tail, often rounded to one significant
//!   digit the way people type them, scaled so the median order is worth a
//!   few hundred quote units at the start price.
//! * **Cancels** remove one order-sized quantity (the whole level if that is
//!   all it holds) from a level picked in proportion to its quantity, weighted
//!   to near the touch. Their intensity grows with the quantity resting, which
//!   keeps the book's size stationary instead of drifting to empty or huge.
//! * **Market orders** (side from a slowly drifting bias plus the pull of the
//!   fair value) take the opposite side level by level, at most ten levels,
//!   one trade per level, and move the price when a level empties.
//! * **Invariants.** Never crossed, never empty on either side (a sweep or a
//!   cancel never takes the last lot of a side, and a side below half of
//!   `levels` is replenished behind its touch), at most `levels` levels per
//!   side (a new level inside a full side prunes the farthest; pruning is a
//!   change like any other), prices at least one tick, every price on the tick
//!   grid and every quantity on the lot grid.
//!
//! With the defaults (BTCUSDT-like, 200 events/s) the spread is one tick most
//! of the time and widens by a few in bursts, the top 50 ticks are nearly all
//! occupied, and the price wanders some tens of ticks a minute: fewer than
//! real BTCUSDT moves, because a book that only changes 200 times a second
//! can only follow so fast.
//!
//! # Frames
//!
//! Every single level change (set, add, remove) is one update id. Trades and
//! bookTickers are emitted as they happen (a bookTicker whenever the best
//! price or quantity of either side changed, carrying the id at which it is
//! true); at each flush boundary with changes, one diff (`U` = first id of the
//! batch, `u` = last, each level once with its final quantity) and one top-20
//! partial. Payloads are the raw `/ws` event JSON (no combined wrapper), in
//! the spot or USD-M layout of binance/FACTS.md section 1, level order
//! included (spot lists each side best first, USD-M diffs by ascending price).
//! One simplification: USD-M ids are contiguous here (`U == pu + 1`), where
//! real futures ids are shared across symbols and jump; a client that chains
//! on `pu` as it must cannot tell the difference.

mod common;
mod payloads;

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write;

use crate::feed::synthetic::Rng;
use crate::hot::fixed::SCALE;

pub use common::CommonFactor;
use common::CommonPath;
use payloads::decimals_of;

/// Which exchange's payload layouts and id rules to produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimMarket {
    Spot,
    Usdm,
}

/// What to simulate. Out-of-range values are clamped by [`FlowModel::new`]
/// (see there) rather than refused: the simulator is a test tool, and a
/// degenerate but running market is more useful than an error.
#[derive(Debug, Clone)]
pub struct FlowConfig {
    pub seed: u64,
    pub market: SimMarket,
    /// Upper case, e.g. "BTCUSDT".
    pub symbol: String,
    /// Price tick, 1e-8 units (1_000_000 = 0.01).
    pub tick: i64,
    /// Lot step, 1e-8 units.
    pub step: i64,
    /// 1e-8 units, on the tick grid (the best bid at start).
    pub start_price: i64,
    /// Order-flow events (limit adds, cancels, market orders) per simulated
    /// second in the calm regime.
    pub events_per_sec: f64,
    /// Diff batching interval (Binance: 100).
    pub depth_interval_ms: i64,
    /// Most price levels kept per side; the model prunes beyond, and prunes
    /// are sent as quantity-0 removals.
    pub levels: usize,
    /// Keep the top of book after every update id (for tests).
    pub record_tops: bool,
    /// The market factor this symbol shares with the simulator's others
    /// (`None`: its fair value walks on its own).
    pub common: Option<CommonFactor>,
}

impl FlowConfig {
    /// BTCUSDT-like defaults: tick 0.01, step 0.00001, price 60000.00,
    /// 200 events/s, 100 ms diffs, 200 levels, no top history.
    pub fn new(symbol: &str, market: SimMarket, seed: u64) -> Self {
        Self {
            seed,
            market,
            symbol: symbol.to_ascii_uppercase(),
            tick: 1_000_000,
            step: 1_000,
            start_price: 60_000 * SCALE,
            events_per_sec: 200.0,
            depth_interval_ms: 100,
            levels: 200,
            record_tops: false,
            common: None,
        }
    }
}

/// Which stream a frame belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamKind {
    /// `<sym>@depth@<interval>`: diffs.
    Depth,
    /// `<sym>@depth20@<interval>`: top-20 partial books.
    Depth20,
    Trade,
    BookTicker,
}

/// One market-data event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimFrame {
    pub kind: StreamKind,
    /// The event JSON exactly as Binance sends it on a raw `/ws` stream.
    pub payload: String,
    /// The book's update id after this frame's changes.
    pub update_id: u64,
}

/// Top of book as of one update id; `(price, qty)` in 1e-8.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopAt {
    pub update_id: u64,
    pub bid: Option<(i64, i64)>,
    pub ask: Option<(i64, i64)>,
}

/// One side's levels, `(price, qty)` in 1e-8, best first.
pub type Levels = Vec<(i64, i64)>;

/// Best `(ticks, lots)` of each side: (bid, ask).
type Top = (Option<(i64, i64)>, Option<(i64, i64)>);

/// Highest price and quantity the model produces (1e9 units): far above any
/// real one, low enough that no product overflows and every string parses.
const MAX_FIXED: i64 = 1_000_000_000 * SCALE;
/// Size scale in quote units: `base_lots` is worth this much at the start
/// price, so a symbol at any price gets orders of a plausible value (a limit
/// order's median is about a third of it, its mean about half).
const ORDER_NOTIONAL: i64 = 1_000;
/// The book's update id before the first event (Binance ids are large).
const FIRST_UPDATE_ID: u64 = 40_000_000_000;
const FIRST_TRADE_ID: u64 = 3_000_000_000;
/// Levels in a depth20 partial.
const PARTIAL_LEVELS: usize = 20;
/// Pareto tail exponents of order sizes: market orders are heavier tailed.
const LIMIT_ALPHA: f64 = 1.6;
const MARKET_ALPHA: f64 = 1.3;
/// Largest order, in multiples of the typical one (keeps the tail finite).
const SIZE_CAP: f64 = 60.0;
/// Most levels one market order takes: real sweeps rarely go deeper.
const MAX_SWEEP: usize = 10;
/// Share of a sweep's price move that the fair value keeps (permanent impact).
const IMPACT: f64 = 0.3;
/// Pull of `mid - fair` (in ticks) on market order side and cancel side.
const MARKET_TILT: f64 = 0.06;
const CANCEL_TILT: f64 = 0.08;
/// Extra cancel weight per tick that a level lies on the wrong side of the
/// fair value: mispriced quotes are pulled first, which is how the touch
/// follows the fair value through a thick book.
const STALE_CANCEL: f64 = 3.0;
/// Order-side bias: Ornstein-Uhlenbeck with this time constant and volatility
/// (per sqrt second), clamped.
const BIAS_TAU_S: f64 = 20.0;
const BIAS_VOL: f64 = 0.04;
const BIAS_MAX: f64 = 0.2;
/// Tail exponent of the placement distance: P(distance > x) falls like
/// x^-PLACE_MU, the power law measured on real books (Bouchaud, Mezard and
/// Potters 2002 find an exponent near 0.6). It keeps levels appearing far
/// from the touch, which is what gives a book its depth.
const PLACE_MU: f64 = 0.7;
/// Book quantity at which cancels run at their nominal share, in `base_lots`
/// per level kept. Cancel intensity is proportional to the quantity
/// resting (each order is cancelled at its own rate, as in Cont, Stoikov and
/// Talreja 2010), which is what keeps the book's size stationary: a book
/// above this cancels faster than it fills, one below fills faster.
const CANCEL_LOAD: f64 = 5.0;
/// Levels added per side after one event at most when a side is thin.
const REPLENISH_PER_EVENT: usize = 4;
/// Shortest regime sojourn.
const MIN_REGIME_US: f64 = 1_000_000.0;
/// Latest time accepted, so `ms * 1000` never overflows.
const MAX_MS: i64 = i64::MAX / 4_000;

/// Volatility regime.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Regime {
    Calm,
    Volatile,
}

/// How order flow behaves in one regime.
struct Flow {
    /// Event rate relative to `events_per_sec`.
    rate_mult: f64,
    /// Event mix: shares of limit orders, cancels (at the target book
    /// quantity; see `CANCEL_LOAD`) and market orders.
    p_add: f64,
    p_cancel: f64,
    p_market: f64,
    /// Scale of the placement distance behind the fair value, ticks.
    place_scale: f64,
    /// Depth (levels from the touch) over which cancel weight halves.
    cancel_depth: f64,
    /// Market order size relative to a limit order's.
    market_mult: f64,
    /// Fair value volatility, ticks per sqrt second.
    sigma: f64,
    /// Mean time in the regime, seconds.
    mean_stay_s: f64,
}

const CALM: Flow = Flow {
    rate_mult: 1.0,
    p_add: 0.50,
    p_cancel: 0.43,
    p_market: 0.07,
    place_scale: 2.0,
    cancel_depth: 12.0,
    market_mult: 0.6,
    sigma: 2.0,
    mean_stay_s: 10.0,
};

const VOLATILE: Flow = Flow {
    rate_mult: 2.5,
    p_add: 0.48,
    p_cancel: 0.42,
    p_market: 0.10,
    place_scale: 5.0,
    cancel_depth: 5.0,
    market_mult: 1.2,
    sigma: 4.0,
    mean_stay_s: 4.0,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Bid,
    Ask,
}

/// The book at one past update id, kept for the stale snapshot.
#[derive(Debug, Clone)]
struct BookCopy {
    update_id: u64,
    /// Time of the last change it contains (USD-M `T`).
    last_change_ms: i64,
    /// `(ticks, lots)`, best first.
    bids: Vec<(i64, i64)>,
    asks: Vec<(i64, i64)>,
}

/// The order-flow model of one symbol. See the module doc.
pub struct FlowModel {
    /// The configuration after clamping.
    cfg: FlowConfig,
    rng: Rng,
    /// Price in ticks -> quantity in lots; never empty, never crossed, at most
    /// `cfg.levels` entries each.
    bids: BTreeMap<i64, i64>,
    asks: BTreeMap<i64, i64>,
    /// Id of the last change applied to `bids`/`asks`.
    update_id: u64,
    regime: Regime,
    /// When the current regime ends, microseconds.
    regime_until_us: i64,
    /// Time of the next event (already drawn), microseconds.
    next_event_us: i64,
    /// Time of the last event run, microseconds.
    last_event_us: i64,
    /// Next flush boundary, ms; always `start_ms + k * depth_interval_ms`.
    next_flush_ms: i64,
    /// Fair value in ticks, at least 1.
    fair: f64,
    /// The shared market factor's path, when the symbol follows one.
    common: Option<CommonPath>,
    /// Drifting market-order side bias, in probability, within +-BIAS_MAX.
    bias: f64,
    /// Changes since the last flush: final lots per price (0 = removed).
    batch_bids: BTreeMap<i64, i64>,
    batch_asks: BTreeMap<i64, i64>,
    /// First id of the unflushed batch; `None` when nothing changed.
    batch_first: Option<u64>,
    /// `u` of the last diff sent (the next diff's `pu`).
    last_flushed_id: u64,
    last_change_ms: i64,
    /// Top `(ticks, lots)` as last sent in a bookTicker.
    last_top: Top,
    /// The book at the last three flushes (the initial book counts as one),
    /// oldest first: the front is the stale snapshot.
    recent: VecDeque<BookCopy>,
    tops: Vec<TopAt>,
    trades: u64,
    next_trade_id: u64,
    /// Typical limit order size, lots (at least 1).
    base_lots: i64,
    /// Lots resting on both sides, and the amount at which cancels run at
    /// their nominal share (see `CANCEL_LOAD`).
    total_lots: i128,
    target_lots: f64,
    /// Largest price in ticks and quantity in lots produced.
    max_ticks: i64,
    max_lots: i64,
    /// Below this many levels a side is replenished behind its touch.
    min_levels: usize,
    /// Decimals printed for prices and quantities (8 on spot).
    price_decimals: u32,
    qty_decimals: u32,
}

/// splitmix64: spreads any seed (0 included) over the xorshift state space.
pub(super) fn mix_seed(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (z ^ (z >> 31)) | 1
}

/// Clamps a configuration into the range the model works in.
fn sanitize(mut cfg: FlowConfig) -> FlowConfig {
    // The symbol goes into JSON unescaped: keep what Binance symbols are made of.
    let symbol: String =
        cfg.symbol.chars().filter(char::is_ascii_alphanumeric).map(|c| c.to_ascii_uppercase()).collect();
    cfg.symbol = if symbol.is_empty() { "SIMUSDT".to_string() } else { symbol };
    cfg.tick = cfg.tick.clamp(1, MAX_FIXED / 1_000);
    cfg.step = cfg.step.clamp(1, MAX_FIXED / 1_000);
    cfg.start_price = (cfg.start_price.clamp(cfg.tick, MAX_FIXED / 2) / cfg.tick) * cfg.tick;
    cfg.events_per_sec =
        if cfg.events_per_sec.is_finite() { cfg.events_per_sec.clamp(0.01, 1_000_000.0) } else { 200.0 };
    cfg.depth_interval_ms = cfg.depth_interval_ms.clamp(1, 3_600_000);
    cfg.levels = cfg.levels.clamp(1, 100_000);
    cfg
}

impl FlowModel {
    /// A model with its book pre-populated (dense near the touch, sparser and
    /// larger deeper), best bid at `start_price` and best ask one tick above.
    /// Out-of-range settings are clamped: tick and step to at least 1,
    /// `start_price` down onto the tick grid and to at least one tick, the
    /// event rate into 0.01..=1e6 per second (200 if not finite), the
    /// interval to 1 ms..1 h, `levels` to 1..=100_000, the symbol to its ASCII
    /// alphanumerics.
    pub fn new(cfg: FlowConfig, start_ms: i64) -> Self {
        let cfg = sanitize(cfg);
        let start_ms = start_ms.clamp(0, MAX_MS);
        let start_ticks = cfg.start_price / cfg.tick;
        let max_ticks = MAX_FIXED / cfg.tick;
        let max_lots = (MAX_FIXED / cfg.step).max(1);
        let base_qty = (ORDER_NOTIONAL as i128 * SCALE as i128 * SCALE as i128 / cfg.start_price as i128) as i64;
        let base_lots = (base_qty / cfg.step).clamp(1, (max_lots / 1_000).max(1));
        let (price_decimals, qty_decimals) = match cfg.market {
            SimMarket::Spot => (8, 8),
            SimMarket::Usdm => (decimals_of(cfg.tick), decimals_of(cfg.step)),
        };
        let start_us = start_ms * 1_000;
        let mut m = Self {
            rng: Rng(mix_seed(cfg.seed)),
            bids: BTreeMap::new(),
            asks: BTreeMap::new(),
            update_id: FIRST_UPDATE_ID,
            regime: Regime::Calm,
            regime_until_us: start_us,
            next_event_us: start_us,
            last_event_us: start_us,
            next_flush_ms: start_ms + cfg.depth_interval_ms,
            fair: start_ticks as f64 + 0.5,
            common: cfg.common.map(|f| CommonPath::new(f, start_us)),
            bias: 0.0,
            batch_bids: BTreeMap::new(),
            batch_asks: BTreeMap::new(),
            batch_first: None,
            last_flushed_id: FIRST_UPDATE_ID,
            last_change_ms: start_ms,
            last_top: (None, None),
            recent: VecDeque::with_capacity(4),
            tops: Vec::new(),
            trades: 0,
            next_trade_id: FIRST_TRADE_ID,
            base_lots,
            total_lots: 0,
            target_lots: 2.0 * cfg.levels as f64 * CANCEL_LOAD * base_lots as f64,
            max_ticks,
            max_lots,
            min_levels: (cfg.levels / 2).max(1),
            price_decimals,
            qty_decimals,
            cfg,
        };
        m.populate(start_ticks);
        m.total_lots = m.bids.values().chain(m.asks.values()).map(|&q| q as i128).sum();
        m.last_top = m.top_ticks();
        if m.cfg.record_tops {
            m.record_top();
        }
        let copy = m.copy();
        m.recent.push_back(copy);
        m.regime_until_us = start_us.saturating_add(m.stay_us());
        let gap = m.gap_us();
        m.next_event_us = start_us.saturating_add(gap);
        m
    }

    /// Runs every event with time <= `now_ms`, pushing trades and
    /// bookTickers as they happen and, at each flush boundary
    /// (`start_ms + k * depth_interval_ms`) whose interval had changes, one
    /// `Depth` and one `Depth20` frame. Events at a boundary's exact time
    /// belong to that boundary's diff. Times before the model's clock do
    /// nothing.
    ///
    /// The work is proportional to the simulated time covered (events plus
    /// boundaries), so a far jump forward is a long call.
    pub fn advance_to(&mut self, now_ms: i64, out: &mut Vec<SimFrame>) {
        let now_ms = now_ms.min(MAX_MS);
        let now_us = now_ms * 1_000;
        // Each pass runs one event or one boundary, both strictly later than
        // the last, and both stop at `now`: bounded.
        loop {
            let flush_us = self.next_flush_ms * 1_000;
            if self.next_flush_ms <= now_ms && flush_us < self.next_event_us {
                let at = self.next_flush_ms;
                self.flush(at, out);
                self.next_flush_ms += self.cfg.depth_interval_ms;
            } else if self.next_event_us <= now_us {
                self.run_event(out);
            } else {
                break;
            }
        }
    }

    /// The book's update id: the id of the last change, flushed or not.
    pub fn update_id(&self) -> u64 {
        self.update_id
    }

    /// REST depth body for the current book (changes not yet flushed in a diff
    /// included), top `limit` levels per side: spot
    /// `{"lastUpdateId":..,"bids":[..],"asks":[..]}`, USD-M adding `E`
    /// (`now_ms`) and `T` (time of the last change).
    pub fn snapshot_json(&self, limit: usize, now_ms: i64) -> String {
        self.snapshot_body(
            self.update_id,
            self.last_change_ms,
            self.bids.iter().rev().map(|(&p, &q)| (p, q)),
            self.asks.iter().map(|(&p, &q)| (p, q)),
            limit,
            now_ms,
        )
    }

    /// A REST depth body for a past book, for the simulator's "stale
    /// snapshot" fault: the book as it was at the flush two before the last
    /// one, so its `lastUpdateId + 1` is below the `U` of the newest diff and
    /// a client whose buffer starts at the newest diff must refuse it under
    /// the spot rule as well as the USD-M one. (One flush back would not do
    /// for spot: `lastUpdateId + 1 == U` is a clean hand-over there.) The
    /// initial book counts as the flush before the first diff, so until three
    /// diffs have been flushed this is the initial book, and right after the
    /// first one only `lastUpdateId < U` holds.
    pub fn stale_snapshot_json(&self, limit: usize, now_ms: i64) -> String {
        match self.recent.front() {
            Some(c) => self.snapshot_body(
                c.update_id,
                c.last_change_ms,
                c.bids.iter().copied(),
                c.asks.iter().copied(),
                limit,
                now_ms,
            ),
            None => self.snapshot_json(limit, now_ms),
        }
    }

    /// All levels, `(price, qty)` in 1e-8: (bids best first, asks best first).
    pub fn levels(&self) -> (Levels, Levels) {
        (
            self.bids.iter().rev().map(|(&p, &q)| self.fixed(p, q)).collect(),
            self.asks.iter().map(|(&p, &q)| self.fixed(p, q)).collect(),
        )
    }

    /// With `record_tops`: the top after every update id in id order, the
    /// initial book's id first (so `top_history()[id - first id]`). Empty
    /// otherwise.
    pub fn top_history(&self) -> &[TopAt] {
        &self.tops
    }

    /// `"calm"` or `"volatile"`.
    pub fn regime(&self) -> &'static str {
        match self.regime {
            Regime::Calm => "calm",
            Regime::Volatile => "volatile",
        }
    }

    /// Trades so far (one per level a market order touched).
    pub fn trades(&self) -> u64 {
        self.trades
    }

    // ---- random draws -------------------------------------------------

    /// Uniform in (0, 1), never 0 or 1 (safe for `ln` and `powf`).
    fn uniform(&mut self) -> f64 {
        ((self.rng.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    fn exponential(&mut self) -> f64 {
        -self.uniform().ln()
    }

    /// Standard normal (Box-Muller).
    fn normal(&mut self) -> f64 {
        let (u1, u2) = (self.uniform(), self.uniform());
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// Geometric on 0, 1, 2, ... with the given mean. Finite: `uniform()`
    /// is at least 2^-54, so the result is below about 38 * (mean + 1).
    fn geometric(&mut self, mean: f64) -> i64 {
        let q = mean / (1.0 + mean);
        if q <= 0.0 {
            return 0;
        }
        (self.uniform().ln() / q.ln()).floor() as i64
    }

    /// A placement distance in ticks: power-law tailed with the given scale,
    /// at most four times `levels` (orders further out would be pruned anyway).
    fn placement(&mut self, scale: f64) -> i64 {
        let x = scale * (self.uniform().powf(-1.0 / PLACE_MU) - 1.0);
        (x.floor() as i64).clamp(0, 4 * self.cfg.levels as i64)
    }

    /// An order size in lots: Pareto-tailed, scaled by `mult` times
    /// `base_lots`, often rounded to one significant digit, at least one lot.
    fn order_lots(&mut self, mult: f64, alpha: f64) -> i64 {
        // Scale 0.2 puts the median near a third of `base_lots` and the mean
        // near half; the cap keeps the tail finite.
        let pareto = self.uniform().powf(-1.0 / alpha).min(SIZE_CAP);
        let mut lots = (self.base_lots as f64 * mult * 0.2 * pareto).round().max(1.0) as i64;
        if self.uniform() < 0.35 {
            let mut unit = 1i64;
            while unit <= lots / 10 {
                unit *= 10;
            }
            lots = (lots / unit).max(1) * unit;
        }
        lots.clamp(1, self.max_lots)
    }

    /// Time in the current regime, microseconds.
    fn stay_us(&mut self) -> i64 {
        let mean_s = self.flow().mean_stay_s;
        (self.exponential() * mean_s * 1e6).max(MIN_REGIME_US) as i64
    }

    /// Gap to the next event at the current regime's rate, microseconds.
    fn gap_us(&mut self) -> i64 {
        let rate = self.cfg.events_per_sec * self.flow().rate_mult;
        (self.exponential() / rate * 1e6).ceil().max(1.0) as i64
    }

    fn flow(&self) -> &'static Flow {
        match self.regime {
            Regime::Calm => &CALM,
            Regime::Volatile => &VOLATILE,
        }
    }

    // ---- the book ------------------------------------------------------

    fn side(&self, side: Side) -> &BTreeMap<i64, i64> {
        match side {
            Side::Bid => &self.bids,
            Side::Ask => &self.asks,
        }
    }

    /// One side's levels, `(ticks, lots)`, best first.
    fn best_first(&self, side: Side) -> Vec<(i64, i64)> {
        match side {
            Side::Bid => self.bids.iter().rev().map(|(&p, &q)| (p, q)).collect(),
            Side::Ask => self.asks.iter().map(|(&p, &q)| (p, q)).collect(),
        }
    }

    fn best(&self, side: Side) -> Option<(i64, i64)> {
        match side {
            Side::Bid => self.bids.last_key_value(),
            Side::Ask => self.asks.first_key_value(),
        }
        .map(|(&p, &q)| (p, q))
    }

    fn farthest(&self, side: Side) -> Option<i64> {
        match side {
            Side::Bid => self.bids.first_key_value(),
            Side::Ask => self.asks.last_key_value(),
        }
        .map(|(&p, _)| p)
    }

    fn top_ticks(&self) -> Top {
        (self.best(Side::Bid), self.best(Side::Ask))
    }

    /// Mid in ticks; the fair value if a side were ever empty.
    fn mid(&self) -> f64 {
        match (self.best(Side::Bid), self.best(Side::Ask)) {
            (Some((b, _)), Some((a, _))) => (b + a) as f64 / 2.0,
            _ => self.fair,
        }
    }

    /// `(ticks, lots)` to `(price, qty)` in 1e-8.
    fn fixed(&self, ticks: i64, lots: i64) -> (i64, i64) {
        (ticks.saturating_mul(self.cfg.tick), lots.saturating_mul(self.cfg.step))
    }

    fn copy(&self) -> BookCopy {
        BookCopy {
            update_id: self.update_id,
            last_change_ms: self.last_change_ms,
            bids: self.best_first(Side::Bid),
            asks: self.best_first(Side::Ask),
        }
    }

    fn record_top(&mut self) {
        let (b, a) = self.top_ticks();
        let top = TopAt {
            update_id: self.update_id,
            bid: b.map(|(p, q)| self.fixed(p, q)),
            ask: a.map(|(p, q)| self.fixed(p, q)),
        };
        self.tops.push(top);
    }

    /// The initial book: three quarters of `levels` per side, gaps between
    /// levels growing with depth, sizes growing with depth. Uses no ids.
    fn populate(&mut self, start_ticks: i64) {
        let levels = self.cfg.levels;
        let n = (levels * 3 / 4).max(1);
        for side in [Side::Bid, Side::Ask] {
            let mut price = match side {
                Side::Bid => start_ticks,
                Side::Ask => start_ticks + 1,
            };
            for i in 0..n {
                if price < 1 || price > self.max_ticks {
                    break;
                }
                let depth = i as f64 / levels as f64;
                let lots = self.order_lots(1.5 + 6.0 * depth, LIMIT_ALPHA);
                match side {
                    Side::Bid => self.bids.insert(price, lots),
                    Side::Ask => self.asks.insert(price, lots),
                };
                let gap = 1 + self.geometric(0.3 + 3.0 * depth);
                price = match side {
                    Side::Bid => price - gap,
                    Side::Ask => price + gap,
                };
            }
        }
    }

    /// One level change: one update id, recorded in the batch.
    fn change(&mut self, side: Side, ticks: i64, lots: i64, ms: i64) {
        let (book, batch) = match side {
            Side::Bid => (&mut self.bids, &mut self.batch_bids),
            Side::Ask => (&mut self.asks, &mut self.batch_asks),
        };
        let old = if lots > 0 { book.insert(ticks, lots) } else { book.remove(&ticks) };
        self.total_lots += lots.max(0) as i128 - old.unwrap_or(0) as i128;
        batch.insert(ticks, lots.max(0));
        self.update_id += 1;
        self.batch_first.get_or_insert(self.update_id);
        self.last_change_ms = ms;
        if self.cfg.record_tops {
            self.record_top();
        }
    }

    /// Adds `lots` at a price; a new level beyond the farthest of a full side
    /// is not shown (as if outside the visible depth), and a new level
    /// inside a full side pushes the farthest one out.
    fn add_lots(&mut self, side: Side, ticks: i64, lots: i64, ms: i64, out: &mut Vec<SimFrame>) {
        if ticks < 1 || ticks > self.max_ticks {
            return;
        }
        let existing = self.side(side).get(&ticks).copied();
        if existing.is_none() && self.side(side).len() >= self.cfg.levels {
            let outside = match (side, self.farthest(side)) {
                (Side::Bid, Some(far)) => ticks < far,
                (Side::Ask, Some(far)) => ticks > far,
                (_, None) => false,
            };
            if outside {
                return;
            }
        }
        let new = existing.unwrap_or(0).saturating_add(lots).min(self.max_lots);
        if Some(new) == existing {
            return;
        }
        self.change(side, ticks, new, ms);
        self.ticker_if_moved(ms, out);
        // At most one level over after one add; the bound is for safety.
        let over = self.side(side).len().saturating_sub(self.cfg.levels);
        for _ in 0..over {
            let Some(far) = self.farthest(side) else { break };
            self.change(side, far, 0, ms);
            self.ticker_if_moved(ms, out);
        }
    }

    // ---- events --------------------------------------------------------

    fn run_event(&mut self, out: &mut Vec<SimFrame>) {
        let t = self.next_event_us;
        let ms = t / 1_000;
        let dt = (t - self.last_event_us).max(0) as f64 * 1e-6;
        self.last_event_us = t;
        // A regime switch due by now. When an event gap spans several
        // sojourns (only at very low event rates) the ones in between are
        // skipped: one switch per event keeps this step O(1).
        if t >= self.regime_until_us {
            self.regime = match self.regime {
                Regime::Calm => Regime::Volatile,
                Regime::Volatile => Regime::Calm,
            };
            let stay = self.stay_us();
            self.regime_until_us = self.regime_until_us.max(t - stay).saturating_add(stay);
        }
        let flow = self.flow();
        let own = dt.sqrt() * self.normal();
        // With a shared factor the walk is part market, part own, with the
        // same variance either way.
        let moved = match self.common.as_mut() {
            Some(c) => c.shared * c.advance(t) + c.own * own,
            None => own,
        };
        let step = flow.sigma * moved;
        self.fair = (self.fair + step).clamp(1.0, self.max_ticks as f64);
        let shock = BIAS_VOL * dt.sqrt() * self.normal();
        self.bias = (self.bias * (-dt / BIAS_TAU_S).exp() + shock).clamp(-BIAS_MAX, BIAS_MAX);

        let load = (self.total_lots as f64 / self.target_lots).clamp(0.1, 10.0);
        let cancel = flow.p_cancel * load;
        let u = self.uniform() * (flow.p_add + cancel + flow.p_market);
        if u < flow.p_add {
            self.limit_order(ms, out);
        } else if u < flow.p_add + cancel {
            self.cancel(ms, out);
        } else {
            self.market_order(ms, out);
        }
        self.replenish(ms, out);
        let gap = self.gap_us();
        self.next_event_us = t.saturating_add(gap);
    }

    /// A limit order a power-law distance behind the fair value, clamped so
    /// it never crosses (it may improve the touch inside a wide spread).
    fn limit_order(&mut self, ms: i64, out: &mut Vec<SimFrame>) {
        let side = if self.uniform() < 0.5 { Side::Bid } else { Side::Ask };
        let dist = self.placement(self.flow().place_scale);
        let anchor = self.fair.floor() as i64;
        let ticks = match (side, self.best(Side::Bid), self.best(Side::Ask)) {
            (Side::Bid, _, Some((ask, _))) => (anchor - dist).min(ask - 1),
            (Side::Ask, Some((bid, _)), _) => (anchor + 1 + dist).max(bid + 1),
            (Side::Bid, _, None) => anchor - dist,
            (Side::Ask, None, _) => anchor + 1 + dist,
        };
        let lots = self.order_lots(1.0, LIMIT_ALPHA);
        self.add_lots(side, ticks, lots, ms, out);
    }

    /// Cancels one resting order: picks a level with probability
    /// proportional to its quantity times a weight that falls with depth and
    /// grows with how mispriced the level is (queues shrink in proportion to
    /// their size, as in Cont, Stoikov and Talreja's model; traders near the
    /// touch and with stale quotes cancel most), then removes
    /// an order-sized quantity, the whole level if that is all it holds.
    /// More often on the side the fair value has left behind; never the last
    /// lot of a side.
    fn cancel(&mut self, ms: i64, out: &mut Vec<SimFrame>) {
        let flow = self.flow();
        let p_bid = (0.5 + CANCEL_TILT * (self.mid() - self.fair)).clamp(0.15, 0.85);
        let side = if self.uniform() < p_bid { Side::Bid } else { Side::Ask };
        let n = self.side(side).len();
        let fair = self.fair;
        let weight = |i: usize, ticks: i64, lots: i64| {
            // Ticks on the wrong side of the fair value: a bid above it or an
            // ask below it is a quote its owner wants to pull.
            let stale = match side {
                Side::Bid => ticks as f64 - fair,
                Side::Ask => fair - ticks as f64,
            };
            lots as f64 * (1.0 + STALE_CANCEL * stale.max(0.0)) / (1.0 + i as f64 / flow.cancel_depth)
        };
        let levels = self.best_first(side);
        let total: f64 = levels.iter().enumerate().map(|(i, &(p, q))| weight(i, p, q)).sum();
        let mut pick = self.uniform() * total;
        let mut chosen = None;
        for (i, &(p, q)) in levels.iter().enumerate() {
            chosen = Some((p, q));
            pick -= weight(i, p, q);
            if pick <= 0.0 {
                break;
            }
        }
        let Some((ticks, lots)) = chosen else { return };
        let size = self.order_lots(1.0, LIMIT_ALPHA);
        let mut left = (lots - size).max(0);
        if n == 1 && left == 0 {
            if lots < 2 {
                return;
            }
            left = lots / 2;
        }
        self.change(side, ticks, left, ms);
        self.ticker_if_moved(ms, out);
    }

    /// A market order: takes the opposite side level by level, one trade per
    /// level, leaving at least one lot on that side.
    fn market_order(&mut self, ms: i64, out: &mut Vec<SimFrame>) {
        let flow = self.flow();
        let p_buy = (0.5 + self.bias - MARKET_TILT * (self.mid() - self.fair)).clamp(0.05, 0.95);
        let buy = self.uniform() < p_buy;
        let taken = if buy { Side::Ask } else { Side::Bid };
        let mut remaining = self.order_lots(flow.market_mult, MARKET_ALPHA);
        let mid_before = self.mid();
        for _ in 0..MAX_SWEEP {
            let n = self.side(taken).len();
            let Some((ticks, lots)) = self.best(taken) else { break };
            let available = if n == 1 { lots - 1 } else { lots };
            if remaining <= 0 || available <= 0 {
                break;
            }
            let fill = remaining.min(available);
            remaining -= fill;
            self.change(taken, ticks, lots - fill, ms);
            self.trade(ticks, fill, !buy, ms, out);
            self.ticker_if_moved(ms, out);
        }
        self.fair += IMPACT * (self.mid() - mid_before);
        self.fair = self.fair.clamp(1.0, self.max_ticks as f64);
    }

    /// Keeps each side at least `min_levels` deep: a thin side gets orders
    /// spread uniformly over the `2 * levels` ticks behind its touch (fresh
    /// liquidity arriving after a sweep, not a wall at the far end).
    fn replenish(&mut self, ms: i64, out: &mut Vec<SimFrame>) {
        for side in [Side::Bid, Side::Ask] {
            for _ in 0..REPLENISH_PER_EVENT {
                if self.side(side).len() >= self.min_levels {
                    break;
                }
                let dist = 1 + self.rng.below(2 * self.cfg.levels as u64) as i64;
                let anchor = self.fair.floor() as i64;
                let ticks = match (side, self.best(side)) {
                    (Side::Bid, Some((best, _))) => best - dist,
                    (Side::Ask, Some((best, _))) => best + dist,
                    (Side::Bid, None) => anchor - dist,
                    (Side::Ask, None) => anchor + dist,
                };
                let lots = self.order_lots(2.0, LIMIT_ALPHA);
                self.add_lots(side, ticks, lots, ms, out);
            }
        }
    }

    fn trade(&mut self, ticks: i64, lots: i64, buyer_maker: bool, ms: i64, out: &mut Vec<SimFrame>) {
        let id = self.next_trade_id;
        self.next_trade_id += 1;
        self.trades += 1;
        let sym = &self.cfg.symbol;
        let mut s = String::with_capacity(160);
        match self.cfg.market {
            SimMarket::Spot => {
                let _ = write!(s, "{{\"e\":\"trade\",\"E\":{ms},\"s\":\"{sym}\",\"t\":{id},\"p\":\"");
            }
            SimMarket::Usdm => {
                let _ = write!(s, "{{\"e\":\"trade\",\"E\":{ms},\"T\":{ms},\"s\":\"{sym}\",\"t\":{id},\"p\":\"");
            }
        }
        self.push_price(&mut s, ticks);
        s.push_str("\",\"q\":\"");
        self.push_qty(&mut s, lots);
        match self.cfg.market {
            SimMarket::Spot => {
                let _ = write!(s, "\",\"T\":{ms},\"m\":{buyer_maker},\"M\":true}}");
            }
            SimMarket::Usdm => {
                let _ = write!(s, "\",\"X\":\"MARKET\",\"m\":{buyer_maker}}}");
            }
        }
        out.push(SimFrame { kind: StreamKind::Trade, payload: s, update_id: self.update_id });
    }

    // ---- flushes and payloads -------------------------------------------

    /// Sends the batch of changes since the last flush, if any, as one diff
    /// and one top-20 partial, and keeps a copy of the book for the stale
    /// snapshot.
    fn flush(&mut self, at_ms: i64, out: &mut Vec<SimFrame>) {
        let Some(first) = self.batch_first.take() else { return };
        let (u, pu) = (self.update_id, self.last_flushed_id);
        let batch_bids = std::mem::take(&mut self.batch_bids);
        let batch_asks = std::mem::take(&mut self.batch_asks);
        let diff = self.depth_event((first, u, pu), at_ms, &batch_bids, &batch_asks, usize::MAX);
        out.push(SimFrame { kind: StreamKind::Depth, payload: diff, update_id: u });
        let partial = match self.cfg.market {
            SimMarket::Spot => self.snapshot_body(
                u,
                self.last_change_ms,
                self.bids.iter().rev().map(|(&p, &q)| (p, q)),
                self.asks.iter().map(|(&p, &q)| (p, q)),
                PARTIAL_LEVELS,
                at_ms,
            ),
            SimMarket::Usdm => self.depth_event((first, u, pu), at_ms, &self.bids, &self.asks, PARTIAL_LEVELS),
        };
        out.push(SimFrame { kind: StreamKind::Depth20, payload: partial, update_id: u });
        // Reuse the batch maps' allocations.
        self.batch_bids = batch_bids;
        self.batch_asks = batch_asks;
        self.batch_bids.clear();
        self.batch_asks.clear();
        self.last_flushed_id = u;
        if self.recent.len() >= 3 {
            self.recent.pop_front();
        }
        let copy = self.copy();
        self.recent.push_back(copy);
    }
}

#[cfg(test)]
mod tests;

//! Per-event market features the strategy reads: cheap, on the hot thread.
//!
//! Prices stay fixed-point in the book; features are `f64` because they are
//! ratios and estimates that feed the strategy and scripts, never book keys or
//! order prices. Volatility and trade flow decay with time (half-lives in
//! config), so they mean the same at 10 or 1000 events per second.
//!
//! The latest trades are kept in a fixed ring ([`TradeRing`], 64) that
//! strategies read newest first; nothing here allocates after construction.

use crate::hot::book::Book;
use crate::hot::fixed::{Price, Qty};
use crate::hot::msg::{Aggressor, Level, Trade};

/// Trades kept in the ring strategies read.
pub const TRADE_RING: usize = 64;

/// One trade of the traded symbol, as strategies see it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TradeTick {
    pub price: Price,
    pub qty: Qty,
    /// Trade time `T` on the exchange, ms since the epoch.
    pub time_ms: i64,
    /// +1 the taker bought, -1 the taker sold.
    pub side: i8,
}

/// The latest [`TRADE_RING`] trades, fixed-size and `Copy`: a strategy's
/// view copies it whole (a memcpy), no allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TradeRing {
    items: [TradeTick; TRADE_RING],
    /// Slot the next trade goes to.
    next: u8,
    len: u8,
    /// Trades ever pushed: a copy with the same count holds the same trades.
    pushed: u64,
}

impl Default for TradeRing {
    fn default() -> Self {
        Self { items: [TradeTick::default(); TRADE_RING], next: 0, len: 0, pushed: 0 }
    }
}

impl TradeRing {
    /// Adds the newest trade, dropping the oldest when full.
    #[inline]
    pub fn push(&mut self, t: TradeTick) {
        self.items[self.next as usize % TRADE_RING] = t;
        self.next = ((self.next as usize + 1) % TRADE_RING) as u8;
        self.len = (self.len as usize + 1).min(TRADE_RING) as u8;
        self.pushed += 1;
    }

    /// Trades ever pushed (so a copy can tell whether it is behind).
    #[inline]
    pub fn pushed(&self) -> u64 {
        self.pushed
    }

    /// Trades held (at most [`TRADE_RING`]).
    #[inline]
    pub fn len(&self) -> usize {
        self.len as usize
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The `i`-th newest trade (0 = the latest); `None` beyond [`TradeRing::len`].
    #[inline]
    pub fn get(&self, i: usize) -> Option<&TradeTick> {
        if i >= self.len as usize {
            return None;
        }
        self.items.get((self.next as usize + TRADE_RING - 1 - i) % TRADE_RING)
    }
}

/// Feature settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FeatureConfig {
    /// Levels per side in the order-book imbalance.
    pub depth_levels: usize,
    /// Half-life of the EWMA of squared mid returns, ns.
    pub vol_half_life_ns: i64,
    /// Half-life of the signed trade-flow sum, ns.
    pub flow_half_life_ns: i64,
}

impl Default for FeatureConfig {
    fn default() -> Self {
        Self { depth_levels: 5, vol_half_life_ns: 30_000_000_000, flow_half_life_ns: 10_000_000_000 }
    }
}

/// Features after one depth event.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Features {
    pub best_bid: Level,
    pub best_ask: Level,
    pub mid: f64,
    /// Size-weighted mid: leans toward the side with less quantity.
    pub microprice: f64,
    pub spread_bps: f64,
    /// (bid qty - ask qty) / (bid qty + ask qty) over the top levels, -1..1.
    pub imbalance: f64,
    /// EWMA realized volatility of the mid, per event, in bps: the square
    /// root of the time-decayed average of squared log mid returns between
    /// consecutive depth events (whatever their spacing).
    pub volatility_bps: f64,
    /// The same volatility per second, in bps: `1e4 x sqrt(V / D)`, where V
    /// is the decayed average of squared log mid returns above and D the
    /// decayed average, with the same weights, of the seconds between the
    /// events those returns span. For a random walk this is the standard
    /// deviation of the mid's log change over one second (sqrt-time
    /// scaling of the per-event figure by the mean event spacing); 0 until
    /// two events at different times have been seen.
    pub volatility_bps_per_s: f64,
    /// Decayed sum of signed trade quantity (taker buys positive), base units.
    pub trade_flow: f64,
    /// Trades per second: a count of trades decayed with the trade-flow
    /// half-life `h`, divided by its time constant `h / ln 2` (a steady
    /// rate of n trades per second reads n).
    pub trade_intensity: f64,
    pub time_ns: i64,
    pub update_id: u64,
}

/// State carried between events.
#[derive(Debug, Clone, Copy)]
pub struct FeatureState {
    cfg: FeatureConfig,
    last_mid: f64,
    last_mid_ns: i64,
    variance: f64,
    /// Decayed average of the seconds between depth events (same weights
    /// as `variance`).
    spacing_s: f64,
    flow: f64,
    /// Decayed trade count (same decay as `flow`).
    count: f64,
    flow_ns: i64,
    trades: TradeRing,
}

/// `2^(-dt/half_life)`: the weight that survives `dt`.
#[inline]
fn decay(dt_ns: i64, half_life_ns: i64) -> f64 {
    if half_life_ns <= 0 {
        return 0.0;
    }
    (-(dt_ns.max(0) as f64) / half_life_ns as f64).exp2()
}

impl FeatureState {
    pub fn new(cfg: FeatureConfig) -> Self {
        Self {
            cfg,
            last_mid: 0.0,
            last_mid_ns: 0,
            variance: 0.0,
            spacing_s: 0.0,
            flow: 0.0,
            count: 0.0,
            flow_ns: 0,
            trades: TradeRing::default(),
        }
    }

    /// The latest trades of the traded symbol.
    #[inline]
    pub fn trades(&self) -> &TradeRing {
        &self.trades
    }

    /// Forgets the mid history (after a resync the next return is meaningless).
    pub fn reset_mid(&mut self) {
        self.last_mid = 0.0;
    }

    #[inline]
    pub fn on_trade(&mut self, t: &Trade, now_ns: i64) {
        let keep = decay(now_ns.saturating_sub(self.flow_ns), self.cfg.flow_half_life_ns);
        self.flow *= keep;
        self.count = self.count * keep + 1.0;
        self.flow_ns = now_ns;
        let q = t.qty.to_f64();
        let side = match t.aggressor {
            Aggressor::Buy => 1,
            Aggressor::Sell => -1,
        };
        self.flow += side as f64 * q;
        self.trades.push(TradeTick { price: t.price, qty: t.qty, time_ms: t.trade_time, side });
    }

    /// Features of `book` after an event; `None` while a side is empty.
    // Out of line: the idle rehearsal (`HotPath::warm`) runs this same
    // code, so it is what is in cache when a diff comes.
    #[inline(never)]
    pub fn on_book(&mut self, book: &Book, now_ns: i64, update_id: u64) -> Option<Features> {
        let (bb, ba) = (book.best_bid()?, book.best_ask()?);
        let (bp, ap) = (bb.price.to_f64(), ba.price.to_f64());
        let (bq, aq) = (bb.qty.to_f64(), ba.qty.to_f64());
        let mid = (bp + ap) * 0.5;
        let microprice = if bq + aq > 0.0 { (bp * aq + ap * bq) / (bq + aq) } else { mid };
        let n = self.cfg.depth_levels;
        let bid_depth: f64 = book.bids().take(n).map(|l| l.qty.to_f64()).sum();
        let ask_depth: f64 = book.asks().take(n).map(|l| l.qty.to_f64()).sum();
        let imbalance =
            if bid_depth + ask_depth > 0.0 { (bid_depth - ask_depth) / (bid_depth + ask_depth) } else { 0.0 };
        if self.last_mid > 0.0 && mid > 0.0 {
            let r = (mid / self.last_mid).ln();
            let keep = decay(now_ns.saturating_sub(self.last_mid_ns), self.cfg.vol_half_life_ns);
            self.variance = keep * self.variance + (1.0 - keep) * r * r;
            let dt_s = now_ns.saturating_sub(self.last_mid_ns).max(0) as f64 / 1e9;
            self.spacing_s = keep * self.spacing_s + (1.0 - keep) * dt_s;
        }
        self.last_mid = mid;
        self.last_mid_ns = now_ns;
        let keep_flow = decay(now_ns.saturating_sub(self.flow_ns), self.cfg.flow_half_life_ns);
        let flow = self.flow * keep_flow;
        // A decayed count's time constant is h / ln 2 (seconds).
        let tau_s = self.cfg.flow_half_life_ns as f64 / 1e9 / std::f64::consts::LN_2;
        let trade_intensity = if tau_s > 0.0 { self.count * keep_flow / tau_s } else { 0.0 };
        Some(Features {
            best_bid: bb,
            best_ask: ba,
            mid,
            microprice,
            spread_bps: if mid > 0.0 { (ap - bp) / mid * 1e4 } else { 0.0 },
            imbalance,
            volatility_bps: self.variance.sqrt() * 1e4,
            volatility_bps_per_s: if self.spacing_s > 0.0 {
                (self.variance / self.spacing_s).sqrt() * 1e4
            } else {
                0.0
            },
            trade_flow: flow,
            trade_intensity,
            time_ns: now_ns,
            update_id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hot::fixed::{Price, Qty, SCALE};
    use crate::hot::msg::Symbol;

    fn lv(p: f64, q: f64) -> Level {
        Level::new((p * SCALE as f64) as i64, (q * SCALE as f64) as i64)
    }

    #[test]
    fn mid_microprice_spread_and_imbalance() {
        let mut b = Book::with_capacity(1024);
        b.load(&[lv(99.0, 3.0), lv(98.0, 1.0)], &[lv(101.0, 1.0), lv(102.0, 1.0)]);
        let mut s = FeatureState::new(FeatureConfig::default());
        let f = s.on_book(&b, 0, 7).unwrap();
        assert_eq!(f.mid, 100.0);
        assert_eq!(f.microprice, (99.0 * 1.0 + 101.0 * 3.0) / 4.0);
        assert!((f.spread_bps - 200.0).abs() < 1e-9);
        assert_eq!(f.imbalance, (4.0 - 2.0) / 6.0);
        assert_eq!((f.volatility_bps, f.update_id), (0.0, 7));
    }

    #[test]
    fn volatility_and_flow_decay_with_time() {
        let mut b = Book::with_capacity(1024);
        let mut s =
            FeatureState::new(FeatureConfig { vol_half_life_ns: 1_000, flow_half_life_ns: 1_000, depth_levels: 5 });
        b.load(&[lv(99.0, 1.0)], &[lv(101.0, 1.0)]);
        s.on_book(&b, 0, 1);
        b.load(&[lv(100.0, 1.0)], &[lv(102.0, 1.0)]);
        let f = s.on_book(&b, 1_000, 2).unwrap();
        let r = (101.0f64 / 100.0).ln();
        assert!((f.volatility_bps - (0.5 * r * r).sqrt() * 1e4).abs() < 1e-9);
        let t = Trade {
            symbol: Symbol::default(),
            id: 1,
            price: Price(0),
            qty: Qty(2 * SCALE),
            trade_time: 0,
            event_time: 0,
            aggressor: Aggressor::Sell,
            aggregated: false,
        };
        s.on_trade(&t, 1_000);
        let f = s.on_book(&b, 2_000, 3).unwrap();
        assert!((f.trade_flow + 1.0).abs() < 1e-12, "{}", f.trade_flow);
    }

    fn trade(i: i64, aggressor: Aggressor) -> Trade {
        Trade {
            symbol: Symbol::default(),
            id: i as u64,
            price: Price(i * SCALE),
            qty: Qty(SCALE),
            trade_time: i,
            event_time: i,
            aggressor,
            aggregated: false,
        }
    }

    #[test]
    fn the_trade_ring_keeps_the_latest_newest_first() {
        let mut s = FeatureState::new(FeatureConfig::default());
        assert!(s.trades().is_empty() && s.trades().get(0).is_none());
        for i in 1..=(TRADE_RING as i64 + 6) {
            s.on_trade(&trade(i, if i % 2 == 0 { Aggressor::Buy } else { Aggressor::Sell }), 0);
        }
        let r = s.trades();
        assert_eq!(r.len(), TRADE_RING);
        let newest = TRADE_RING as i64 + 6;
        assert_eq!((r.get(0).unwrap().price, r.get(0).unwrap().side), (Price(newest * SCALE), 1));
        assert_eq!(r.get(1).unwrap().side, -1);
        assert_eq!(r.get(TRADE_RING - 1).unwrap().time_ms, 7);
        assert!(r.get(TRADE_RING).is_none());
    }

    #[test]
    fn trade_intensity_reads_a_steady_rate_in_trades_per_second() {
        // 5 trades a second for 200 s with a 10 s half-life: ~5 per second.
        let mut s = FeatureState::new(FeatureConfig::default());
        let mut b = Book::with_capacity(1024);
        b.load(&[lv(99.0, 1.0)], &[lv(101.0, 1.0)]);
        for i in 0..1000 {
            s.on_trade(&trade(1, Aggressor::Buy), i * 200_000_000);
        }
        let f = s.on_book(&b, 999 * 200_000_000, 1).unwrap();
        // A decayed count of events 0.2 s apart sits slightly above rate x tau.
        assert!((f.trade_intensity - 5.0).abs() < 0.1, "{}", f.trade_intensity);
    }

    #[test]
    fn volatility_per_second_scales_the_per_event_figure_by_the_event_spacing() {
        // The mid alternates 100 / 100.1 every 0.25 s: every return has the
        // same size, so per second = per event x sqrt(4 events a second).
        let mut s = FeatureState::new(FeatureConfig::default());
        let mut b = Book::with_capacity(1024);
        let mut f = None;
        for i in 0..400 {
            let up = i % 2 == 1;
            let (bid, ask) = if up { (100.0, 100.2) } else { (99.9, 100.1) };
            b.load(&[lv(bid, 1.0)], &[lv(ask, 1.0)]);
            f = s.on_book(&b, i * 250_000_000, i as u64);
        }
        let f = f.unwrap();
        // The averages start at 0: after 99.75 s of a 30 s half-life they
        // hold 1 - 2^(-99.75/30) of their weight, the same in V and D, so
        // the per-second figure is unbiased.
        let r = (100.1f64 / 100.0).ln().abs() * 1e4;
        let filled = 1.0 - (-99.75f64 / 30.0).exp2();
        assert!((f.volatility_bps - r * filled.sqrt()).abs() < 1e-6 * r, "{} vs {r}", f.volatility_bps);
        assert!((f.volatility_bps_per_s - 2.0 * r).abs() < 1e-6 * r, "{}", f.volatility_bps_per_s);
    }
}

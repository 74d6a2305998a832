//! The exchange side: what the hot thread asks for ([`Quote`]), the orders
//! that carry it out, and the [`Fill`]s that come back. The paper exchange
//! ([`paper`]) serves backtests and paper trading; live Binance trading
//! plugs in behind the same types: [`live`] is the order manager
//! (configured by [`live_config`], fed fills by [`userdata`]), driven by
//! the same exec thread (`runtime.rs`). Its foundations are here: the
//! REST client in [`binance`] (signing, exchange filters, orders, errors
//! mapped to actions), the [`journal`] (every order state and fill on disk,
//! for audit and restart), the pre-trade [`risk`] checks and kill-switch
//! decisions, and the [`inventory`] check of the position against the
//! account's balances.

pub mod allocator;
pub mod binance;
pub mod handoff;
pub mod inventory;
pub mod journal;
pub mod live;
pub mod live_config;
pub mod paper;
pub mod position;
pub mod risk;
pub mod strategy_view;
pub mod userdata;

use crate::hot::fixed::{Price, Qty};
use crate::hot::msg::{Level, Symbol};
use crate::hot::strategy::MAX_LEVELS;

/// What an exchange side (paper or live) did, for reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExecCounts {
    /// New orders sent.
    pub orders: u64,
    pub cancels: u64,
    pub fills: u64,
}

/// Side of an order or fill.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    Buy,
    Sell,
}

/// Levels of a ladder behind the best quote of each side, in order from
/// the touch outwards (`[strategy] levels` > 1). Fixed arrays: a quote with
/// a ladder still crosses the ring without allocating.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Ladder {
    bids: [Level; MAX_LEVELS - 1],
    asks: [Level; MAX_LEVELS - 1],
    n_bids: u8,
    n_asks: u8,
}

impl Ladder {
    /// No levels behind the best.
    pub const NONE: Ladder =
        Ladder { bids: [Level::ZERO; MAX_LEVELS - 1], asks: [Level::ZERO; MAX_LEVELS - 1], n_bids: 0, n_asks: 0 };

    /// Adds a level behind the last one of `side`; false when the ladder is
    /// full.
    pub fn push(&mut self, side: Side, level: Level) -> bool {
        let (levels, n) = match side {
            Side::Buy => (&mut self.bids, &mut self.n_bids),
            Side::Sell => (&mut self.asks, &mut self.n_asks),
        };
        let Some(slot) = levels.get_mut(*n as usize) else { return false };
        *slot = level;
        *n += 1;
        true
    }

    /// The levels of `side` behind the best, from the touch outwards.
    pub fn side(&self, side: Side) -> &[Level] {
        match side {
            Side::Buy => &self.bids[..self.n_bids as usize],
            Side::Sell => &self.asks[..self.n_asks as usize],
        }
    }

    /// Keeps the first `n` levels of `side`.
    pub fn truncate(&mut self, side: Side, n: usize) {
        let count = match side {
            Side::Buy => &mut self.n_bids,
            Side::Sell => &mut self.n_asks,
        };
        *count = (*count).min(n as u8);
    }
}

/// A two-sided quote the hot thread wants working: the hand-off from hot to
/// exec ("latest wins"). `None` on a side means no order there; both `None`
/// means quotes are pulled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quote {
    pub symbol: Symbol,
    /// Bid price and size.
    pub bid: Option<Level>,
    /// Ask price and size.
    pub ask: Option<Level>,
    /// A ladder's further levels, only behind a best quote of their side.
    pub deeper: Ladder,
    /// When the quote was made, ns: the frame's receive time, so backtests
    /// run in simulated time.
    pub time_ns: i64,
    /// Book update id the quote was computed from.
    pub update_id: u64,
}

impl Quote {
    /// A quote with nothing on either side.
    pub fn pulled(symbol: Symbol, time_ns: i64, update_id: u64) -> Self {
        Self { symbol, bid: None, ask: None, deeper: Ladder::NONE, time_ns, update_id }
    }

    pub fn is_pulled(&self) -> bool {
        self.bid.is_none() && self.ask.is_none()
    }

    /// The best level of `side`.
    fn best(&self, side: Side) -> Option<Level> {
        match side {
            Side::Buy => self.bid,
            Side::Sell => self.ask,
        }
    }

    /// Level `i` of `side` (0 is the best); none behind a missing best.
    pub fn level(&self, side: Side, i: usize) -> Option<Level> {
        let best = self.best(side)?;
        match i {
            0 => Some(best),
            _ => self.deeper.side(side).get(i - 1).copied(),
        }
    }

    /// How many levels `side` has, the best included.
    pub fn levels(&self, side: Side) -> usize {
        self.best(side).map_or(0, |_| 1 + self.deeper.side(side).len())
    }

    /// The levels of `side`, best first, into `out`; returns how many.
    pub fn levels_into(&self, side: Side, out: &mut [Level; MAX_LEVELS]) -> usize {
        let n = self.levels(side);
        for (i, slot) in out.iter_mut().enumerate().take(n) {
            *slot = self.level(side, i).unwrap_or_default();
        }
        n
    }

    /// Level `i` of each side as a one-level quote: what the order working
    /// that level of the ladder is asked for.
    pub fn at_level(&self, i: usize) -> Quote {
        Quote { bid: self.level(Side::Buy, i), ask: self.level(Side::Sell, i), deeper: Ladder::NONE, ..*self }
    }
}

/// The asset a fill's commission was charged in, relative to the symbol.
///
/// Binance charges a BUY's commission in the asset received (the base
/// asset) and a SELL's in the quote asset, unless BNB fee payment is on, in
/// which case either side pays in BNB (binance-spot-api-docs
/// `faqs/commission_faq.md`; the execution report's `n`/`N`, FACTS.md §5).
/// The position needs to know which, because a base commission makes the
/// account hold less base than was bought.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum FeeAsset {
    /// The symbol's quote asset (USDT in BTCUSDT): what the paper exchange
    /// and backtests charge.
    #[default]
    Quote,
    /// The symbol's base asset (BTC in BTCUSDT): a live BUY without BNB
    /// fee payment.
    Base,
    /// BNB (fee payment in BNB on), when BNB is neither base nor quote.
    Bnb,
    /// Anything else (not expected on spot; counted, never priced).
    Other,
}

impl FeeAsset {
    /// Classifies a commission asset name (`N`) for a symbol trading
    /// `base` against `quote`. Base and quote win over BNB: on BNBUSDT a
    /// BNB commission is a base commission.
    pub fn classify(asset: &str, base: &str, quote: &str) -> FeeAsset {
        if asset == quote {
            FeeAsset::Quote
        } else if asset == base {
            FeeAsset::Base
        } else if asset == "BNB" {
            FeeAsset::Bnb
        } else {
            FeeAsset::Other
        }
    }

    /// A short lower-case name for reports ("quote", "base", "bnb",
    /// "other").
    pub fn as_str(self) -> &'static str {
        match self {
            FeeAsset::Quote => "quote",
            FeeAsset::Base => "base",
            FeeAsset::Bnb => "bnb",
            FeeAsset::Other => "other",
        }
    }
}

/// An execution of one of our orders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fill {
    pub symbol: Symbol,
    pub order_id: u64,
    pub side: Side,
    pub price: Price,
    pub qty: Qty,
    /// Commission in units of `fee_asset`, fixed-point 1e-8, >= 0 (a fill
    /// with a negative fee, which Binance never sends, is counted as is).
    pub fee: i64,
    /// The asset `fee` is in.
    pub fee_asset: FeeAsset,
    pub time_ns: i64,
    /// True when the order rested and was taken (mmbot only posts maker orders).
    pub maker: bool,
}

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
    /// When the quote was made, ns: the frame's receive time, so backtests
    /// run in simulated time.
    pub time_ns: i64,
    /// Book update id the quote was computed from.
    pub update_id: u64,
}

impl Quote {
    /// A quote with nothing on either side.
    pub fn pulled(symbol: Symbol, time_ns: i64, update_id: u64) -> Self {
        Self { symbol, bid: None, ask: None, time_ns, update_id }
    }

    pub fn is_pulled(&self) -> bool {
        self.bid.is_none() && self.ask.is_none()
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

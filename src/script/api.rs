//! What a script sees: [`MarketState`], registered with read-only getters.
//!
//! Units: prices in the quote asset, sizes and positions in the base asset,
//! spreads and volatility in basis points, ages in seconds; all `f64`
//! (scripts compute with floats; the guard turns results back into exact
//! fixed-point). The advisor's states are strings (`"narrow"`, `"normal"`,
//! `"wide"`; `"low"`, `"medium"`, `"high"`; `"up"`, `"down"`, `"sideways"`,
//! `"neutral"`) and also come as the original tutorial's multipliers
//! (`spread_mult`, `vol_mult`, `dir_mult`), so rules can use either.

use std::cell::Cell;

use rhai::Engine;

use crate::hot::strategy::{Decision, SideIntent};

use crate::hot::advice::{Direction, SpreadState, Volatility};
use crate::hot::strategy::StrategyInput;

/// The market as one `fn quote(m)` call sees it. `Copy`, built on the
/// stack per call (no map, no allocation of our own).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct MarketState {
    pub best_bid: f64,
    pub best_ask: f64,
    pub bid_qty: f64,
    pub ask_qty: f64,
    pub mid: f64,
    pub microprice: f64,
    pub spread_bps: f64,
    pub imbalance: f64,
    pub volatility_bps: f64,
    pub trade_flow: f64,
    pub position: f64,
    pub max_position: f64,
    pub min_order_size: f64,
    pub target_spread_pct: f64,
    pub spread_state: &'static str,
    pub volatility_state: &'static str,
    pub direction: &'static str,
    pub confidence: f64,
    pub advice_multiplier: f64,
    pub advice_age_s: f64,
    pub spread_mult: f64,
    pub vol_mult: f64,
    pub dir_mult: f64,
    pub time_s: f64,
}

impl MarketState {
    pub fn from_input(input: &StrategyInput<'_>) -> Self {
        let f = input.features;
        let a = input.advice;
        let (spread_mult, vol_mult, dir_mult) = a.multipliers();
        Self {
            best_bid: f.best_bid.price.to_f64(),
            best_ask: f.best_ask.price.to_f64(),
            bid_qty: f.best_bid.qty.to_f64(),
            ask_qty: f.best_ask.qty.to_f64(),
            mid: f.mid,
            microprice: f.microprice,
            spread_bps: f.spread_bps,
            imbalance: f.imbalance,
            volatility_bps: f.volatility_bps,
            trade_flow: f.trade_flow,
            position: input.position.to_f64(),
            max_position: input.params.max_position.to_f64(),
            min_order_size: input.params.min_order_size.to_f64(),
            target_spread_pct: input.params.target_spread_pct,
            spread_state: match a.spread {
                SpreadState::Narrow => "narrow",
                SpreadState::Normal => "normal",
                SpreadState::Wide => "wide",
            },
            volatility_state: match a.volatility {
                Volatility::Low => "low",
                Volatility::Medium => "medium",
                Volatility::High => "high",
            },
            direction: match a.direction {
                Direction::Up => "up",
                Direction::Down => "down",
                Direction::Sideways => "sideways",
                Direction::Neutral => "neutral",
            },
            confidence: a.confidence as f64,
            advice_multiplier: a.multiplier,
            advice_age_s: if a.received_ns > 0 { f.time_ns.saturating_sub(a.received_ns) as f64 / 1e9 } else { 0.0 },
            spread_mult,
            vol_mult,
            dir_mult,
            time_s: f.time_ns as f64 / 1e9,
        }
    }
}

/// Calls `$then!($($args)* ; float fields ; string fields)` with the names of
/// every getter of [`MarketState`]. The one list the engine's getters
/// ([`register`]) and the compiled fast path's field reads
/// ([`crate::script::fast`]) are both generated from, so the two cannot
/// drift apart.
macro_rules! market_fields {
    ($then:ident ! ($($args:tt)*)) => {
        $then!($($args)* ;
            best_bid, best_ask, bid_qty, ask_qty, mid, microprice, spread_bps, imbalance, volatility_bps,
            trade_flow, position, max_position, min_order_size, target_spread_pct, confidence, advice_multiplier,
            advice_age_s, spread_mult, vol_mult, dir_mult, time_s ;
            spread_state, volatility_state, direction)
    };
}
pub(crate) use market_fields;

macro_rules! getters {
    ($engine:ident ; $($f:ident),* ; $($s:ident),*) => {
        $( $engine.register_get(stringify!($f), |m: &mut MarketState| m.$f); )*
        $( $engine.register_get(stringify!($s), |m: &mut MarketState| m.$s); )*
    };
}

/// Registers [`MarketState`] and its getters.
pub fn register(engine: &mut Engine) {
    engine.register_type_with_name::<MarketState>("MarketState");
    market_fields!(getters!(engine));
    register_output(engine);
}

thread_local! {
    /// What the output functions set during one call (per thread: each
    /// thread runs its own engine, so no lock is needed).
    static OUTPUT: Cell<Option<Decision>> = const { Cell::new(None) };
}

/// Clears the output slot before a call.
pub fn reset_output() {
    OUTPUT.with(|o| o.set(None));
}

/// The decision the output functions set during the last call, if any.
pub fn take_output() -> Option<Decision> {
    OUTPUT.with(|o| o.take())
}

fn update(f: impl FnOnce(&mut Decision)) {
    OUTPUT.with(|o| {
        let mut d = o.get().unwrap_or_default();
        f(&mut d);
        o.set(Some(d));
    });
}

/// `bid(price, size)`, `ask(price, size)`, `pull()`: quote without building a map.
pub fn register_output(engine: &mut Engine) {
    engine.register_fn("bid", |price: f64, size: f64| update(|d| d.bid = Some(SideIntent { price, size })));
    engine.register_fn("ask", |price: f64, size: f64| update(|d| d.ask = Some(SideIntent { price, size })));
    engine.register_fn("pull", || update(|d| d.pull = true));
}

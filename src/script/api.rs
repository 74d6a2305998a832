//! What a script sees: [`MarketState`], registered with read-only getters.
//!
//! Units: prices in the quote asset, sizes and positions in the base asset,
//! spreads and volatility in basis points, ages in seconds; all `f64`
//! (scripts compute with floats; the guard turns results back into exact
//! fixed-point). The advisor's states are strings (`"narrow"`, `"normal"`,
//! `"wide"`; `"low"`, `"medium"`, `"high"`; `"up"`, `"down"`, `"sideways"`,
//! `"neutral"`) and also come as the original tutorial's multipliers
//! (`spread_mult`, `vol_mult`, `dir_mult`), so rules can use either.
//!
//! Beyond the scalars, `m` has indexed getters (methods with one INT
//! argument, 0.0 when out of range, never an error): the top
//! [`SCOPE_DEPTH`] levels of each side, the latest [`TRADE_RING`] trades
//! (newest first) and own working orders (innermost first). Their data is
//! held in fixed arrays inside [`MarketState`] in the exchange's own
//! fixed-point form, copied whole per call (a memcpy of about 3 KB) and
//! converted to `f64` only when a getter reads it. Both lists of getters,
//! [`market_fields`] and [`market_indexed`], are what the engine's
//! registration and the compiled fast path are generated from.

use rhai::Engine;

use crate::hot::strategy::{OwnOrder, OwnOrders};

use crate::hot::advice::{Direction, SpreadState, Volatility};
use crate::hot::features::{TradeRing, TRADE_RING};
use crate::hot::fixed::SCALE;
use crate::hot::msg::Level;
use crate::hot::peers::{Peer, MAX_PEERS};
use crate::hot::strategy::StrategyInput;

/// Levels per side in scope (`m.bid_price(i)`, ...; `i < m.depth`).
pub const SCOPE_DEPTH: usize = crate::hot::strategy::DECISION_DEPTH;

/// The market as one `fn quote(m)` call sees it. `Copy`, built on the
/// stack per call (no map, no allocation of our own).
///
/// Units of the scalars (each a getter of the same name):
/// * `best_bid`, `best_ask`, `mid`, `microprice`, `tick_size`, `avg_entry`
///   (0 when flat): quote asset per base unit;
/// * `bid_qty`, `ask_qty`, `position`, `max_position`, `min_order_size`,
///   `step_size`, `trade_flow`: base units;
/// * `spread_bps`; `volatility_bps` (per event, see
///   [`crate::hot::features::Features::volatility_bps`]);
///   `volatility_bps_per_s` (per second, see
///   [`crate::hot::features::Features::volatility_bps_per_s`]);
/// * `trade_intensity`: trades per second (decayed with the trade-flow
///   half-life);
/// * `realized_pnl` (before fees), `unrealized_pnl` (open position marked
///   at `mid`), `fees` (all commissions valued in the quote asset): quote
///   asset;
/// * `time_s` = `time_local_s` (our receive time of the event) and
///   `time_exchange_s` (the exchange's event time `E`): seconds since the
///   epoch (simulated in backtests); `advice_age_s`, `since_fill_s` (-1
///   before the first fill): seconds;
/// * `advice_expired`: 1.0 when the advice had expired (the strategy then
///   reads neutral advice), else 0.0;
/// * `advice_applied`: 1.0 when `advice_multiplier` is meant to size the
///   spread (`[ai] apply_multiplier`, see
///   [`crate::hot::advice::Advice::spread_factor`]), else 0.0 (labels only);
/// * `depth` (levels on both sides, <= 20), `trade_count` (<= 64),
///   `bid_order_count`, `ask_order_count`: counts.
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
    pub tick_size: f64,
    pub step_size: f64,
    pub volatility_bps_per_s: f64,
    pub trade_intensity: f64,
    pub avg_entry: f64,
    pub realized_pnl: f64,
    pub unrealized_pnl: f64,
    pub fees: f64,
    pub time_exchange_s: f64,
    pub time_local_s: f64,
    pub since_fill_s: f64,
    pub advice_expired: f64,
    pub advice_applied: f64,
    pub depth: f64,
    pub trade_count: f64,
    pub bid_order_count: f64,
    pub ask_order_count: f64,
    /// Top levels, best first (fixed-point); the first `bid_levels` /
    /// `ask_levels` are real, the rest zero.
    pub bids: [Level; SCOPE_DEPTH],
    pub asks: [Level; SCOPE_DEPTH],
    pub bid_levels: u8,
    pub ask_levels: u8,
    /// The latest trades (read newest first).
    pub trades: TradeRing,
    /// Own working orders, innermost first.
    pub orders: OwnOrders,
    /// The decision's time, ns (order ages are measured to it).
    pub now_ns: i64,
    /// Symbols on the run's peer board (`[[symbols]]` runs; 0 otherwise).
    pub peer_count: f64,
    /// Their last mid, volatility and publication time, in `[[symbols]]`
    /// order (the first `peer_count` are real).
    pub peers: [Peer; MAX_PEERS],
}

/// Which indexed data a script reads: building `m` copies only that
/// (copying the levels, trades and own orders it never reads is most of
/// the cost of building `m`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScopeNeeds {
    pub levels: bool,
    pub trades: bool,
    pub orders: bool,
    /// The other symbols' mids and volatilities (`m.peer_mid(i)`, ...).
    pub peers: bool,
}

impl ScopeNeeds {
    pub const ALL: Self = Self { levels: true, trades: true, orders: true, peers: true };

    /// What the script's code calls (its functions and top level), by the
    /// names of [`market_indexed`]'s getters.
    pub fn of(ast: &rhai::AST) -> Self {
        let mut needs = Self { levels: false, trades: false, orders: false, peers: false };
        ast.walk(&mut |path: &[rhai::ASTNode]| {
            if let Some(rhai::ASTNode::Expr(rhai::Expr::FnCall(call, _) | rhai::Expr::MethodCall(call, _))) =
                path.last()
            {
                let name = call.name.as_str();
                match name {
                    "bid_price" | "bid_qty" | "ask_price" | "ask_qty" => needs.levels = true,
                    _ if name.starts_with("trade_") => needs.trades = true,
                    _ if name.starts_with("bid_order_") || name.starts_with("ask_order_") => needs.orders = true,
                    _ if name.starts_with("peer_") => needs.peers = true,
                    _ => {}
                }
            }
            true
        });
        needs
    }
}

/// Fixed-point to `f64`.
#[inline]
fn fx(v: i64) -> f64 {
    v as f64 / SCALE as f64
}

/// The `i`-th of the first `n` of `list`, for an INT index from a script.
#[inline]
fn nth<T>(list: &[T], n: usize, i: i64) -> Option<&T> {
    if i < 0 || i as u64 >= n as u64 {
        return None;
    }
    list.get(i as usize)
}

impl MarketState {
    /// Copies up to [`SCOPE_DEPTH`] levels of `it` into `out`; how many.
    #[inline]
    fn levels(out: &mut [Level; SCOPE_DEPTH], it: impl Iterator<Item = Level>) -> u8 {
        let mut n = 0;
        for (slot, l) in out.iter_mut().zip(it) {
            *slot = l;
            n += 1;
        }
        n
    }

    /// `m` for one decision, with everything in scope.
    pub fn from_input(input: &StrategyInput<'_>) -> Self {
        Self::from_input_with(input, ScopeNeeds::ALL)
    }

    /// `m` for one decision, copying only the indexed data `needs` says the
    /// script reads (the rest stays zero; the counts are always right).
    #[inline]
    pub fn from_input_with(input: &StrategyInput<'_>, needs: ScopeNeeds) -> Self {
        let mut m = Self::default();
        m.update(input, needs);
        m
    }

    /// Makes `self` the `m` of one decision, in place: every scalar, and
    /// the indexed data `needs` says the script reads. Data it does not
    /// read is not copied (nor zeroed each call): its getters read 0.0.
    /// The hot path keeps one `MarketState` and updates it, so a decision
    /// neither zeroes nor rebuilds the arrays it does not use.
    #[inline]
    pub fn update(&mut self, input: &StrategyInput<'_>, needs: ScopeNeeds) {
        let f = input.features;
        let a = input.advice;
        let sc = &input.scope;
        let (spread_mult, vol_mult, dir_mult) = a.multipliers();
        (self.bid_levels, self.ask_levels) = match sc.book {
            Some(b) if needs.levels => (Self::levels(&mut self.bids, b.bids()), Self::levels(&mut self.asks, b.asks())),
            _ => (0, 0),
        };
        let book_depth = sc.book.map_or(0, |b| b.bid_depth().min(b.ask_depth()).min(SCOPE_DEPTH));
        if let (Some(t), true) = (sc.trades, needs.trades) {
            // Copied only when a trade arrived since (2 KB).
            if self.trades.pushed() != t.pushed() || self.trades.len() != t.len() {
                self.trades = *t;
            }
        } else if !self.trades.is_empty() {
            self.trades = TradeRing::default();
        }
        let trade_count = sc.trades.map_or(0, |t| t.len());
        match sc.orders {
            Some(o) if needs.orders => self.orders = *o,
            _ if self.orders.bid_count != 0 || self.orders.ask_count != 0 => self.orders = OwnOrders::default(),
            _ => {}
        }
        let (bid_orders, ask_orders) = sc.orders.map_or((0, 0), |o| (o.bids().len(), o.asks().len()));
        self.peer_count = sc.peers.map_or(0, |b| b.len()) as f64;
        if let (Some(board), true) = (sc.peers, needs.peers) {
            for (i, p) in self.peers.iter_mut().enumerate().take(board.len()) {
                *p = board.read(i);
            }
        }
        let acc = sc.account;
        let position = input.position.to_f64();
        let unrealized_pnl = if input.position.0 == 0 { 0.0 } else { position * f.mid - fx(acc.open_cost) };
        self.tick_size = fx(sc.tick_size.0);
        self.step_size = fx(sc.step_size.0);
        self.volatility_bps_per_s = f.volatility_bps_per_s;
        self.trade_intensity = f.trade_intensity;
        self.avg_entry = fx(acc.avg_entry.0);
        self.realized_pnl = fx(acc.realized);
        self.unrealized_pnl = unrealized_pnl;
        self.fees = fx(acc.fees);
        self.time_exchange_s = sc.exchange_time_ns as f64 / 1e9;
        self.time_local_s = f.time_ns as f64 / 1e9;
        self.since_fill_s = acc.last_fill_ns.map_or(-1.0, |t| f.time_ns.saturating_sub(t).max(0) as f64 / 1e9);
        self.advice_expired = if sc.advice_expired { 1.0 } else { 0.0 };
        self.advice_applied = if a.applied_multiplier().is_some() { 1.0 } else { 0.0 };
        self.depth = book_depth as f64;
        self.trade_count = trade_count as f64;
        self.bid_order_count = bid_orders as f64;
        self.ask_order_count = ask_orders as f64;
        self.now_ns = f.time_ns;
        self.best_bid = f.best_bid.price.to_f64();
        self.best_ask = f.best_ask.price.to_f64();
        self.bid_qty = f.best_bid.qty.to_f64();
        self.ask_qty = f.best_ask.qty.to_f64();
        self.mid = f.mid;
        self.microprice = f.microprice;
        self.spread_bps = f.spread_bps;
        self.imbalance = f.imbalance;
        self.volatility_bps = f.volatility_bps;
        self.trade_flow = f.trade_flow;
        self.position = input.position.to_f64();
        self.max_position = input.params.max_position.to_f64();
        self.min_order_size = input.params.min_order_size.to_f64();
        self.target_spread_pct = input.params.target_spread_pct;
        self.spread_state = match a.spread {
            SpreadState::Narrow => "narrow",
            SpreadState::Normal => "normal",
            SpreadState::Wide => "wide",
        };
        self.volatility_state = match a.volatility {
            Volatility::Low => "low",
            Volatility::Medium => "medium",
            Volatility::High => "high",
        };
        self.direction = match a.direction {
            Direction::Up => "up",
            Direction::Down => "down",
            Direction::Sideways => "sideways",
            Direction::Neutral => "neutral",
        };
        self.confidence = a.confidence as f64;
        self.advice_multiplier = a.multiplier;
        self.advice_age_s = if a.received_ns > 0 { f.time_ns.saturating_sub(a.received_ns) as f64 / 1e9 } else { 0.0 };
        self.spread_mult = spread_mult;
        self.vol_mult = vol_mult;
        self.dir_mult = dir_mult;
        self.time_s = f.time_ns as f64 / 1e9;
    }

    /// `m.bid_price(i)`: price of the `i`-th bid level (0 = best), quote asset.
    pub fn bid_price(&self, i: i64) -> f64 {
        nth(&self.bids, self.bid_levels as usize, i).map_or(0.0, |l| fx(l.price.0))
    }

    /// `m.bid_qty(i)`: quantity at the `i`-th bid level, base units.
    pub fn bid_qty(&self, i: i64) -> f64 {
        nth(&self.bids, self.bid_levels as usize, i).map_or(0.0, |l| fx(l.qty.0))
    }

    /// `m.ask_price(i)`: price of the `i`-th ask level (0 = best), quote asset.
    pub fn ask_price(&self, i: i64) -> f64 {
        nth(&self.asks, self.ask_levels as usize, i).map_or(0.0, |l| fx(l.price.0))
    }

    /// `m.ask_qty(i)`: quantity at the `i`-th ask level, base units.
    pub fn ask_qty(&self, i: i64) -> f64 {
        nth(&self.asks, self.ask_levels as usize, i).map_or(0.0, |l| fx(l.qty.0))
    }

    fn trade(&self, i: i64) -> Option<&crate::hot::features::TradeTick> {
        if i < 0 || i as u64 >= TRADE_RING as u64 {
            return None;
        }
        self.trades.get(i as usize)
    }

    /// `m.trade_price(i)`: price of the `i`-th newest trade (0 = latest), quote asset.
    pub fn trade_price(&self, i: i64) -> f64 {
        self.trade(i).map_or(0.0, |t| fx(t.price.0))
    }

    /// `m.trade_qty(i)`: its quantity, base units.
    pub fn trade_qty(&self, i: i64) -> f64 {
        self.trade(i).map_or(0.0, |t| fx(t.qty.0))
    }

    /// `m.trade_time_s(i)`: its exchange trade time `T`, seconds since the epoch.
    pub fn trade_time_s(&self, i: i64) -> f64 {
        self.trade(i).map_or(0.0, |t| t.time_ms as f64 / 1e3)
    }

    /// `m.trade_side(i)`: +1.0 the taker bought, -1.0 the taker sold.
    pub fn trade_side(&self, i: i64) -> f64 {
        self.trade(i).map_or(0.0, |t| t.side as f64)
    }

    fn bid_order(&self, i: i64) -> Option<&OwnOrder> {
        nth(self.orders.bids(), usize::MAX, i)
    }

    fn ask_order(&self, i: i64) -> Option<&OwnOrder> {
        nth(self.orders.asks(), usize::MAX, i)
    }

    fn queue(o: &OwnOrder) -> f64 {
        o.queue_ahead.map_or(-1.0, |q| fx(q.0))
    }

    fn age_s(&self, o: &OwnOrder) -> f64 {
        self.now_ns.saturating_sub(o.since_ns).max(0) as f64 / 1e9
    }

    /// `m.bid_order_price(i)`: price of our `i`-th working bid (0 = innermost), quote asset.
    pub fn bid_order_price(&self, i: i64) -> f64 {
        self.bid_order(i).map_or(0.0, |o| fx(o.price.0))
    }

    /// `m.bid_order_qty(i)`: its remaining quantity, base units.
    pub fn bid_order_qty(&self, i: i64) -> f64 {
        self.bid_order(i).map_or(0.0, |o| fx(o.qty.0))
    }

    /// `m.bid_order_queue(i)`: estimated quantity ahead of it in its price's
    /// queue, base units; -1.0 when unknown.
    pub fn bid_order_queue(&self, i: i64) -> f64 {
        self.bid_order(i).map_or(0.0, Self::queue)
    }

    /// `m.bid_order_age_s(i)`: seconds since it joined the book.
    pub fn bid_order_age_s(&self, i: i64) -> f64 {
        self.bid_order(i).map_or(0.0, |o| self.age_s(o))
    }

    /// `m.ask_order_price(i)`: price of our `i`-th working ask (0 = innermost), quote asset.
    pub fn ask_order_price(&self, i: i64) -> f64 {
        self.ask_order(i).map_or(0.0, |o| fx(o.price.0))
    }

    /// `m.ask_order_qty(i)`: its remaining quantity, base units.
    pub fn ask_order_qty(&self, i: i64) -> f64 {
        self.ask_order(i).map_or(0.0, |o| fx(o.qty.0))
    }

    /// `m.ask_order_queue(i)`: estimated quantity ahead of it, base units; -1.0 when unknown.
    pub fn ask_order_queue(&self, i: i64) -> f64 {
        self.ask_order(i).map_or(0.0, Self::queue)
    }

    /// `m.ask_order_age_s(i)`: seconds since it joined the book.
    pub fn ask_order_age_s(&self, i: i64) -> f64 {
        self.ask_order(i).map_or(0.0, |o| self.age_s(o))
    }

    /// The `i`-th symbol of the run's `[[symbols]]`, if it has published.
    fn peer(&self, i: i64) -> Option<&Peer> {
        nth(&self.peers, self.peer_count as usize, i).filter(|p| p.time_ns != 0)
    }

    /// `m.peer_mid(i)`: the mid of the `i`-th symbol of `[[symbols]]` (0 =
    /// the first; this symbol's own index included) at its last decision,
    /// its quote asset; 0.0 before it has one or out of range.
    pub fn peer_mid(&self, i: i64) -> f64 {
        self.peer(i).map_or(0.0, |p| p.mid)
    }

    /// `m.peer_volatility_bps(i)`: its volatility per event, bps.
    pub fn peer_volatility_bps(&self, i: i64) -> f64 {
        self.peer(i).map_or(0.0, |p| p.volatility_bps)
    }

    /// `m.peer_age_s(i)`: seconds since it published (-1.0 never).
    pub fn peer_age_s(&self, i: i64) -> f64 {
        self.peer(i).map_or(-1.0, |p| self.now_ns.saturating_sub(p.time_ns).max(0) as f64 / 1e9)
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
            advice_age_s, spread_mult, vol_mult, dir_mult, time_s, tick_size, step_size, volatility_bps_per_s,
            trade_intensity, avg_entry, realized_pnl, unrealized_pnl, fees, time_exchange_s, time_local_s,
            since_fill_s, advice_expired, advice_applied, depth, trade_count, bid_order_count, ask_order_count,
            peer_count ;
            spread_state, volatility_state, direction)
    };
}
pub(crate) use market_fields;

/// Calls `$then!($($args)* ; names)` with the name of every indexed getter
/// of [`MarketState`]: each is a method `fn NAME(&self, i: i64) -> f64`
/// (0.0 when `i` is out of range), called `m.NAME(i)` in scripts. The one
/// list the engine's registration ([`register`]) and the compiled fast path
/// are both generated from.
macro_rules! market_indexed {
    ($then:ident ! ($($args:tt)*)) => {
        $then!($($args)* ;
            bid_price, bid_qty, ask_price, ask_qty, trade_price, trade_qty, trade_time_s, trade_side,
            bid_order_price, bid_order_qty, bid_order_queue, bid_order_age_s, ask_order_price, ask_order_qty,
            ask_order_queue, ask_order_age_s, peer_mid, peer_volatility_bps, peer_age_s)
    };
}
#[allow(unused_imports)] // for the compiled fast path
pub(crate) use market_indexed;

macro_rules! getters {
    ($engine:ident ; $($f:ident),* ; $($s:ident),*) => {
        $( $engine.register_get(stringify!($f), |m: &mut MarketState| m.$f); )*
        $( $engine.register_get(stringify!($s), |m: &mut MarketState| m.$s); )*
    };
}

macro_rules! indexed {
    ($engine:ident ; $($f:ident),*) => {
        $( $engine.register_fn(stringify!($f), |m: &mut MarketState, i: rhai::INT| m.$f(i as i64)); )*
    };
}

/// Registers [`MarketState`] and its getters.
pub fn register(engine: &mut Engine) {
    engine.register_type_with_name::<MarketState>("MarketState");
    market_fields!(getters!(engine));
    market_indexed!(indexed!(engine));
    // bid()/ask()/pull(): crate::script::output::register.
    crate::script::state::register(engine);
}

//! Pre-trade risk checks and the kill-switch decision.
//!
//! The original tutorial's "safe order manager" checked a position limit
//! with floats. Live trading needs more, done exactly: before an order is
//! sent, [`RiskCheck::check`] asks whether the account can pay for it (a buy
//! needs `price x qty` of free quote, which is what Binance locks; its fee
//! is taken from what it receives, base or BNB, so it reserves no quote; a
//! sell needs `qty` of free base, its fee comes out of the quote proceeds),
//! whether
//! it keeps the position and the order size within limits, whether too many
//! orders are already open, and whether today's loss already exceeds the
//! daily limit. A refusal is a [`Refusal`] that names the check, the numbers
//! and what to change, and is counted per reason in [`RiskCounters`].
//!
//! All money and quantities are `i64` counts of 1e-8 (see
//! [`crate::hot::fixed`]); products go through `i128`. A buy's cost is
//! rounded up ([`notional_ceil`]) so that a balance 1e-8 short is refused
//! rather than passed; limits compare the truncated [`notional`].
//!
//! [`KillSwitch`] decides when trading must stop ([`KillReason`]): too many
//! rejects in a window, an HTTP 418 (IP ban), a stale feed, a book unsynced
//! for too long, the daily loss limit, the position drifting from the
//! account's balance ([`crate::exec::inventory::BalanceCheck`]), or a
//! signal. It only decides and
//! latches the first reason; the order manager cancels and flattens.
//!
//! This runs on the exec thread, never the hot thread.

use std::collections::VecDeque;
use std::fmt;

use crate::exec::Side;
use crate::hot::fixed::{notional, notional_ceil, Price, Qty};

/// Nanoseconds in a UTC day.
const DAY_NS: i64 = 86_400_000_000_000;

/// Pre-trade limits. Money is quote asset, 1e-8 units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RiskLimits {
    /// Largest |position| (base asset) an order may lead to if it fills.
    pub max_position: Qty,
    /// Largest `price * qty` of one order.
    pub max_order_notional: i64,
    /// Orders that may be open at once; a new order needs `open < max`.
    pub max_open_orders: u32,
    /// Largest loss allowed today (UTC), realized + unrealized, as a
    /// positive amount.
    pub daily_loss_limit: i64,
}

/// A limit that cannot be right.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RiskConfigError {
    #[error("{field} is {value}; it must be zero or more")]
    Negative { field: &'static str, value: String },
    #[error("fee rate is {0}; it must be zero or more (0.001 = 0.1%)")]
    NegativeFee(String),
    #[error("{field} is empty; name the asset (e.g. BTC, USDT)")]
    NoAsset { field: &'static str },
}

/// One asset's balance, 1e-8 units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Balance {
    pub free: i64,
    pub locked: i64,
}

/// Balances per asset, as the account reports them (`GET /api/v3/account`,
/// `outboundAccountPosition`). An asset not listed has a zero balance.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Balances {
    /// Sorted by asset name.
    assets: Vec<(String, Balance)>,
}

impl Balances {
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `asset`'s balance (replacing it).
    pub fn set(&mut self, asset: &str, balance: Balance) {
        match self.assets.binary_search_by(|(a, _)| a.as_str().cmp(asset)) {
            Ok(i) => self.assets[i].1 = balance,
            Err(i) => self.assets.insert(i, (asset.to_string(), balance)),
        }
    }

    /// `asset`'s balance; zero when unknown.
    pub fn get(&self, asset: &str) -> Balance {
        self.assets.binary_search_by(|(a, _)| a.as_str().cmp(asset)).map_or(Balance::default(), |i| self.assets[i].1)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, Balance)> {
        self.assets.iter().map(|(a, b)| (a.as_str(), *b))
    }
}

/// An order about to be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderRequest {
    pub side: Side,
    pub price: Price,
    pub qty: Qty,
    /// Wall-clock time, ns: decides which UTC day the loss limit counts.
    pub time_ns: i64,
}

fn side_index(side: Side) -> usize {
    match side {
        Side::Buy => 0,
        Side::Sell => 1,
    }
}

/// Which check refused an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RefusalReason {
    InvalidOrder,
    DailyLoss,
    OpenOrders,
    OrderNotional,
    Position,
    QuoteBalance,
    BaseBalance,
}

impl RefusalReason {
    pub const ALL: [RefusalReason; 7] = [
        RefusalReason::InvalidOrder,
        RefusalReason::DailyLoss,
        RefusalReason::OpenOrders,
        RefusalReason::OrderNotional,
        RefusalReason::Position,
        RefusalReason::QuoteBalance,
        RefusalReason::BaseBalance,
    ];

    /// A short name for counters and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            RefusalReason::InvalidOrder => "invalid_order",
            RefusalReason::DailyLoss => "daily_loss",
            RefusalReason::OpenOrders => "open_orders",
            RefusalReason::OrderNotional => "order_notional",
            RefusalReason::Position => "position",
            RefusalReason::QuoteBalance => "quote_balance",
            RefusalReason::BaseBalance => "base_balance",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// An exact fixed-point amount for messages ("0.00000001", "-12.5").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Amount(pub i64);

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        Price(self.0).fmt(f)
    }
}

/// What the side's other open orders can still fill, in a position
/// refusal: said only when there are some (a ladder's other levels).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlsoWorking(pub Qty);

impl fmt::Display for AlsoWorking {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 .0 == 0 {
            return Ok(());
        }
        write!(f, " (with {} already working on that side; quote fewer levels?)", self.0)
    }
}

/// Why an order was refused: the check, its numbers and what to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("invalid order: price {price} and quantity {qty} must both be above zero; fix the quote before sending")]
    InvalidOrder { price: Price, qty: Qty },
    #[error(
        "daily loss limit: today's PnL is {today_pnl} {asset}, a loss beyond daily_loss_limit {limit} {asset}; \
         no new orders until the UTC day turns (or raise daily_loss_limit)"
    )]
    DailyLoss { today_pnl: Amount, limit: Amount, asset: String },
    #[error(
        "open orders: {open} already open and max_open_orders is {max}; cancel one first or raise max_open_orders"
    )]
    OpenOrders { open: u32, max: u32 },
    #[error(
        "order notional: {price} x {qty} = {notional} {asset} is above max_order_notional {max} {asset}; \
         lower the size or raise max_order_notional"
    )]
    OrderNotional { price: Price, qty: Qty, notional: Amount, max: Amount, asset: String },
    #[error(
        "position: {position} after a {side:?} of {qty}{working} would be {after}, beyond max_position {max}; \
         lower the size or raise max_position"
    )]
    Position { position: Qty, side: Side, qty: Qty, working: AlsoWorking, after: Amount, max: Qty },
    /// The quote a buy locks (`price x qty`, rounded up) is not free. The
    /// fee is not part of it: Binance takes a buy's commission from the
    /// base (or BNB) received (`faqs/commission_faq.md`).
    #[error(
        "balance: buying locks {cost} {asset} (price x quantity) but {free} {asset} is free; \
         lower the size or add {short} {asset}"
    )]
    QuoteBalance { asset: String, cost: Amount, free: Amount, short: Amount },
    #[error("balance: selling {needed} {asset} but {free} {asset} is free; lower the size or add {short} {asset}")]
    BaseBalance { asset: String, needed: Amount, free: Amount, short: Amount },
}

impl Refusal {
    pub fn reason(&self) -> RefusalReason {
        match self {
            Refusal::InvalidOrder { .. } => RefusalReason::InvalidOrder,
            Refusal::DailyLoss { .. } => RefusalReason::DailyLoss,
            Refusal::OpenOrders { .. } => RefusalReason::OpenOrders,
            Refusal::OrderNotional { .. } => RefusalReason::OrderNotional,
            Refusal::Position { .. } => RefusalReason::Position,
            Refusal::QuoteBalance { .. } => RefusalReason::QuoteBalance,
            Refusal::BaseBalance { .. } => RefusalReason::BaseBalance,
        }
    }
}

/// How many orders passed, and how many each check refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RiskCounters {
    pub passed: u64,
    refused: [u64; RefusalReason::ALL.len()],
}

impl RiskCounters {
    /// Orders refused for `reason`.
    pub fn refused(&self, reason: RefusalReason) -> u64 {
        self.refused[reason.index()]
    }

    /// Orders refused for any reason.
    pub fn total_refused(&self) -> u64 {
        self.refused.iter().sum()
    }
}

/// The pre-trade checks for one symbol, with the state they need: balances,
/// position, open orders and today's PnL. The order manager keeps that state
/// current from the exchange's reports; `check` decides.
#[derive(Debug, Clone)]
pub struct RiskCheck {
    limits: RiskLimits,
    base_asset: String,
    quote_asset: String,
    /// Fee rate in fixed-point (0.001 = 100_000): for
    /// [`RiskCheck::buy_fee_estimate`] only; a buy's fee reserves no quote.
    fee_rate: i64,
    balances: Balances,
    /// Signed base position (long > 0).
    position: Qty,
    open_orders: u32,
    /// What the other open orders of each side (bid, ask) can still fill:
    /// a ladder's levels all fill in one sweep, so an order must leave
    /// room for the ones already working beside it.
    working: [Qty; 2],
    /// UTC day (days since the epoch) that `day_start_pnl` belongs to.
    day: i64,
    /// Realized + unrealized PnL when the day began; `None` until the first
    /// [`RiskCheck::on_pnl`], which then sets it.
    day_start_pnl: Option<i64>,
    /// The latest realized + unrealized PnL.
    last_pnl: Option<i64>,
    counters: RiskCounters,
}

impl RiskCheck {
    /// Checks for a symbol trading `base_asset` against `quote_asset`, with
    /// zero balances, flat position and no open orders; `now_ns` (wall
    /// clock) starts the first day.
    pub fn new(
        limits: RiskLimits,
        base_asset: &str,
        quote_asset: &str,
        fee_rate: i64,
        now_ns: i64,
    ) -> Result<RiskCheck, RiskConfigError> {
        let neg = |field, value: String| Err(RiskConfigError::Negative { field, value });
        if limits.max_position.0 < 0 {
            return neg("max_position", limits.max_position.to_string());
        }
        if limits.max_order_notional < 0 {
            return neg("max_order_notional", Amount(limits.max_order_notional).to_string());
        }
        if limits.daily_loss_limit < 0 {
            return neg("daily_loss_limit", Amount(limits.daily_loss_limit).to_string());
        }
        if fee_rate < 0 {
            return Err(RiskConfigError::NegativeFee(Amount(fee_rate).to_string()));
        }
        if base_asset.is_empty() {
            return Err(RiskConfigError::NoAsset { field: "base asset" });
        }
        if quote_asset.is_empty() {
            return Err(RiskConfigError::NoAsset { field: "quote asset" });
        }
        Ok(RiskCheck {
            limits,
            base_asset: base_asset.to_string(),
            quote_asset: quote_asset.to_string(),
            fee_rate,
            balances: Balances::new(),
            position: Qty::ZERO,
            open_orders: 0,
            working: [Qty::ZERO; 2],
            day: now_ns.div_euclid(DAY_NS),
            day_start_pnl: None,
            last_pnl: None,
            counters: RiskCounters::default(),
        })
    }

    pub fn limits(&self) -> &RiskLimits {
        &self.limits
    }

    pub fn balances(&self) -> &Balances {
        &self.balances
    }

    /// Replaces all balances (after an account snapshot).
    pub fn set_balances(&mut self, balances: Balances) {
        self.balances = balances;
    }

    /// Sets one asset's balance (after a balance update).
    pub fn set_balance(&mut self, asset: &str, balance: Balance) {
        self.balances.set(asset, balance);
    }

    pub fn position(&self) -> Qty {
        self.position
    }

    pub fn set_position(&mut self, position: Qty) {
        self.position = position;
    }

    pub fn open_orders(&self) -> u32 {
        self.open_orders
    }

    pub fn set_open_orders(&mut self, open: u32) {
        self.open_orders = open;
    }

    /// What the side's other open orders can still fill (their remaining
    /// quantity); the position check counts it as filled.
    pub fn set_working(&mut self, side: Side, qty: Qty) {
        self.working[side_index(side)] = qty;
    }

    /// Records the current PnL, quote asset: `realized` net of fees (e.g.
    /// `Position::realized() - Position::fees()`) and `unrealized` marked
    /// now. Today's PnL is the change since the day began: the last value
    /// seen before UTC midnight, or the first value ever seen.
    pub fn on_pnl(&mut self, now_ns: i64, realized: i64, unrealized: i64) {
        self.roll_day(now_ns);
        let total = realized.saturating_add(unrealized);
        if self.day_start_pnl.is_none() {
            self.day_start_pnl = Some(total);
        }
        self.last_pnl = Some(total);
    }

    /// Today's realized + unrealized PnL as of the last [`RiskCheck::on_pnl`]
    /// (0 on a new day until PnL moves).
    pub fn today_pnl(&self) -> i64 {
        match (self.last_pnl, self.day_start_pnl) {
            (Some(now), Some(start)) => now.saturating_sub(start),
            _ => 0,
        }
    }

    /// True when today's loss is beyond the daily limit as of `now_ns`: the
    /// kill switch's [`KillReason::LossLimit`].
    pub fn loss_limit_hit(&mut self, now_ns: i64) -> bool {
        self.roll_day(now_ns);
        self.today_pnl().saturating_neg() > self.limits.daily_loss_limit
    }

    pub fn counters(&self) -> RiskCounters {
        self.counters
    }

    /// The commission a buy of `qty` would pay at the account's rate, in
    /// the base asset it receives (rounded up): what the position will be
    /// short of `qty` when it fills without BNB fee payment. Not reserved
    /// from any balance (the exchange takes it from the fill).
    pub fn buy_fee_estimate(&self, qty: Qty) -> Qty {
        Qty(fee_ceil(qty.0.max(0), self.fee_rate))
    }

    /// Runs every check on `order`, counts the outcome, and returns the
    /// first refusal. Order of checks: a valid order, the daily loss, open
    /// orders, the order's notional, the position after a fill, then the
    /// balance that pays for it.
    pub fn check(&mut self, order: &OrderRequest) -> Result<(), Refusal> {
        self.roll_day(order.time_ns);
        let r = self.evaluate(order);
        match &r {
            Ok(()) => self.counters.passed += 1,
            Err(refusal) => self.counters.refused[refusal.reason().index()] += 1,
        }
        r
    }

    fn evaluate(&self, o: &OrderRequest) -> Result<(), Refusal> {
        let (price, qty) = (o.price.0, o.qty.0);
        if price <= 0 || qty <= 0 {
            return Err(Refusal::InvalidOrder { price: o.price, qty: o.qty });
        }

        let today = self.today_pnl();
        if today.saturating_neg() > self.limits.daily_loss_limit {
            return Err(Refusal::DailyLoss {
                today_pnl: Amount(today),
                limit: Amount(self.limits.daily_loss_limit),
                asset: self.quote_asset.clone(),
            });
        }

        if self.open_orders >= self.limits.max_open_orders {
            return Err(Refusal::OpenOrders { open: self.open_orders, max: self.limits.max_open_orders });
        }

        let value = notional(price, qty);
        if value > self.limits.max_order_notional {
            return Err(Refusal::OrderNotional {
                price: o.price,
                qty: o.qty,
                notional: Amount(value),
                max: Amount(self.limits.max_order_notional),
                asset: self.quote_asset.clone(),
            });
        }

        let working = self.working[side_index(o.side)];
        let reach = qty.saturating_add(working.0);
        let delta = match o.side {
            Side::Buy => reach,
            Side::Sell => -reach,
        };
        let pos = self.position.0;
        let after = pos.saturating_add(delta);
        // An order that shrinks an over-limit position is let through: it is
        // the way back under the limit.
        let within = after.unsigned_abs() <= self.limits.max_position.0.unsigned_abs();
        let shrinks = after.unsigned_abs() < pos.unsigned_abs();
        if !within && !shrinks {
            return Err(Refusal::Position {
                position: self.position,
                side: o.side,
                qty: o.qty,
                working: AlsoWorking(working),
                after: Amount(after),
                max: self.limits.max_position,
            });
        }

        match o.side {
            Side::Buy => {
                // What the exchange locks for a LIMIT buy: price x qty of
                // quote. The commission is charged on the fill, in the
                // asset received (base, or BNB with BNB fee payment on):
                // it needs no quote (faqs/commission_faq.md).
                let cost = notional_ceil(price, qty);
                let free = self.balances.get(&self.quote_asset).free;
                if free < cost {
                    return Err(Refusal::QuoteBalance {
                        asset: self.quote_asset.clone(),
                        cost: Amount(cost),
                        free: Amount(free),
                        short: Amount(cost.saturating_sub(free)),
                    });
                }
            }
            Side::Sell => {
                let free = self.balances.get(&self.base_asset).free;
                if free < qty {
                    return Err(Refusal::BaseBalance {
                        asset: self.base_asset.clone(),
                        needed: Amount(qty),
                        free: Amount(free),
                        short: Amount(qty.saturating_sub(free)),
                    });
                }
            }
        }
        Ok(())
    }

    /// Starts a new day's count when `now_ns` is past the current UTC day:
    /// the day begins at the last PnL seen. A clock stepping back never
    /// rolls the day back.
    fn roll_day(&mut self, now_ns: i64) {
        let day = now_ns.div_euclid(DAY_NS);
        if day > self.day {
            self.day = day;
            self.day_start_pnl = self.last_pnl;
        }
    }
}

/// `value * rate` like [`crate::hot::fixed::mul_rate`], rounded up instead of toward zero
/// (rate is fixed-point, so this is [`notional_ceil`]).
fn fee_ceil(value: i64, rate: i64) -> i64 {
    notional_ceil(value, rate)
}

/// Why trading must stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KillReason {
    /// No market data for longer than allowed: quotes would be stale.
    StaleFeed,
    /// The local book stayed out of sync for longer than allowed.
    UnsyncedBook,
    /// Today's loss is beyond the daily limit.
    LossLimit,
    /// HTTP 418: the IP is banned for ignoring 429s; every request now
    /// prolongs the ban.
    IpBanned,
    /// Too many order rejects in a short window: something is wrong with
    /// the orders or the account.
    RepeatedRejects,
    /// The operator asked (SIGINT/SIGTERM).
    Signal,
    /// The position (base asset, from this bot's fills) and what the
    /// account's base balance says it should be (balance now - balance at
    /// start + what earlier runs left) differ by more than `[live]
    /// balance_kill_tolerance`: someone else trades or moves the asset on
    /// this account, or fills were missed.
    BalanceDrift {
        /// The position from fills, base asset.
        position: Qty,
        /// The position the account's balance implies, base asset.
        account: Qty,
    },
}

impl fmt::Display for KillReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KillReason::StaleFeed => "stale feed",
            KillReason::UnsyncedBook => "book unsynced too long",
            KillReason::LossLimit => "daily loss limit",
            KillReason::IpBanned => "HTTP 418: IP banned",
            KillReason::RepeatedRejects => "repeated order rejects",
            KillReason::Signal => "signal",
            KillReason::BalanceDrift { position, account } => {
                return write!(
                    f,
                    "balance drift: the fills give a position of {position} base but the account's base balance \
                     implies {account} (balance now - balance at start + position carried from the journal); \
                     check for other trading, transfers or conversions of the base asset on this account and \
                     for fills missing from the journal (compare fills with GET /api/v3/myTrades)"
                )
            }
        })
    }
}

/// When the kill switch trips.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KillConfig {
    /// Trip when this many rejects fall within `reject_window_ns` (0 never
    /// trips on rejects).
    pub max_rejects: u32,
    pub reject_window_ns: i64,
    /// Trip when the newest market data is older than this.
    pub stale_feed_ns: i64,
    /// Trip when the book has been unsynced for longer than this.
    pub unsynced_ns: i64,
}

/// Decides when to stop trading; the order manager acts on the decision.
///
/// Every `on_*` method returns `Some(reason)` only on the call that trips
/// the switch; [`KillSwitch::tripped`] then keeps saying so (with the first
/// reason) until [`KillSwitch::reset`].
#[derive(Debug, Clone)]
pub struct KillSwitch {
    cfg: KillConfig,
    /// Times of the most recent rejects, oldest first, at most
    /// `max_rejects` of them (allocated once).
    rejects: VecDeque<i64>,
    tripped: Option<(KillReason, i64)>,
}

impl KillSwitch {
    pub fn new(cfg: KillConfig) -> Self {
        Self { cfg, rejects: VecDeque::with_capacity(cfg.max_rejects as usize), tripped: None }
    }

    pub fn config(&self) -> &KillConfig {
        &self.cfg
    }

    /// The reason the switch tripped, if it has.
    pub fn tripped(&self) -> Option<KillReason> {
        self.tripped.map(|(r, _)| r)
    }

    /// When it tripped, ns.
    pub fn tripped_at(&self) -> Option<i64> {
        self.tripped.map(|(_, t)| t)
    }

    /// Trips the switch for `reason` unless it already is; `Some(reason)`
    /// when this call tripped it.
    pub fn trip(&mut self, reason: KillReason, now_ns: i64) -> Option<KillReason> {
        if self.tripped.is_some() {
            return None;
        }
        self.tripped = Some((reason, now_ns));
        Some(reason)
    }

    /// Re-arms the switch (after the operator has looked) and forgets
    /// past rejects.
    pub fn reset(&mut self) {
        self.tripped = None;
        self.rejects.clear();
    }

    /// Rejects counted in the window ending at `now_ns`: those less than
    /// `reject_window_ns` old.
    pub fn rejects_in_window(&self, now_ns: i64) -> usize {
        self.rejects.iter().filter(|&&t| now_ns.saturating_sub(t) < self.cfg.reject_window_ns).count()
    }

    /// An order was rejected at `now_ns`. Trips when `max_rejects` rejects
    /// are less than `reject_window_ns` apart from first to this one.
    pub fn on_reject(&mut self, now_ns: i64) -> Option<KillReason> {
        let max = self.cfg.max_rejects as usize;
        if max == 0 {
            return None;
        }
        if self.rejects.len() == max {
            self.rejects.pop_front();
        }
        self.rejects.push_back(now_ns);
        if self.rejects_in_window(now_ns) >= max {
            return self.trip(KillReason::RepeatedRejects, now_ns);
        }
        None
    }

    /// An HTTP status from the exchange: 418 trips (the IP is banned).
    /// 429 does not: it asks to back off, which the order manager does.
    pub fn on_http_status(&mut self, status: u16, now_ns: i64) -> Option<KillReason> {
        if status == 418 {
            return self.trip(KillReason::IpBanned, now_ns);
        }
        None
    }

    /// The feed's state at `now_ns`: the newest market data's time and,
    /// when the book is unsynced, since when. Trips on data older than
    /// `stale_feed_ns` or a book unsynced longer than `unsynced_ns`
    /// (exactly the limit still passes).
    pub fn on_feed(&mut self, now_ns: i64, last_data_ns: i64, unsynced_since: Option<i64>) -> Option<KillReason> {
        if now_ns.saturating_sub(last_data_ns) > self.cfg.stale_feed_ns {
            return self.trip(KillReason::StaleFeed, now_ns);
        }
        if let Some(since) = unsynced_since {
            if now_ns.saturating_sub(since) > self.cfg.unsynced_ns {
                return self.trip(KillReason::UnsyncedBook, now_ns);
            }
        }
        None
    }

    /// Trips on the daily loss limit when `risk` says it is hit.
    pub fn on_risk(&mut self, risk: &mut RiskCheck, now_ns: i64) -> Option<KillReason> {
        if risk.loss_limit_hit(now_ns) {
            return self.trip(KillReason::LossLimit, now_ns);
        }
        None
    }

    /// SIGINT/SIGTERM arrived.
    pub fn on_signal(&mut self, now_ns: i64) -> Option<KillReason> {
        self.trip(KillReason::Signal, now_ns)
    }

    /// A balance reconciliation's outcome: trips on
    /// [`Verdict::Kill`](crate::exec::inventory::Verdict::Kill).
    pub fn on_balance(&mut self, r: &crate::exec::inventory::Reconciliation, now_ns: i64) -> Option<KillReason> {
        r.kill_reason().and_then(|reason| self.trip(reason, now_ns))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fee_rounds_up_only_when_a_remainder_is_dropped() {
        // 0.1% of 1.00000000 = 0.001 exactly.
        assert_eq!(fee_ceil(100_000_000, 100_000), 100_000);
        // 0.1% of 0.00000001 = 1e-11: truncates to 0, rounds up to 1e-8.
        assert_eq!(fee_ceil(1, 100_000), 1);
        assert_eq!(fee_ceil(0, 100_000), 0);
        assert_eq!(fee_ceil(12_345, 0), 0);
    }

    #[test]
    fn refusal_reasons_index_their_counters() {
        for (i, r) in RefusalReason::ALL.into_iter().enumerate() {
            assert_eq!(r.index(), i);
        }
    }
}

//! The exchange's rules, from `GET /api/v3/exchangeInfo`, in exact
//! fixed-point: what a symbol allows ([`SymbolRules`]) and how fast we may
//! ask ([`RateLimit`]).
//!
//! Checking an order locally ([`SymbolRules::check`]) before sending it
//! saves a round trip and request weight, and says which rule failed in our
//! own words instead of Binance's "Filter failure: LOT_SIZE". The checks are
//! the ones Binance documents for a LIMIT_MAKER order (filters.md):
//!
//! - `PRICE_FILTER`: `minPrice <= price <= maxPrice`, `price % tickSize == 0`;
//! - `LOT_SIZE`: `minQty <= qty <= maxQty`, `qty % stepSize == 0`;
//! - `NOTIONAL` (`minNotional <= price * qty <= maxNotional`) or the older
//!   `MIN_NOTIONAL` (`minNotional <= price * qty`); either is kept.
//!
//! Two more depend on state the caller has, so they are a companion check,
//! [`SymbolRules::check_market`]:
//!
//! - `MAX_NUM_ORDERS`: open orders on the symbol (per account) must stay at
//!   most `maxNumOrders`, so a new order needs `open < maxNumOrders`;
//! - `PERCENT_PRICE_BY_SIDE`: a BUY's price within `[avg x
//!   bidMultiplierDown, avg x bidMultiplierUp]`, a SELL's within `[avg x
//!   askMultiplierDown, avg x askMultiplierUp]`, where `avg` is the
//!   symbol's reference price when it has one
//!   (`faqs/price_range_execution_rules.md`), else its volume-weighted
//!   average price over `avgPriceMins` minutes (`GET /api/v3/avgPrice`;
//!   the last price when 0). Locally the caller's mid or last price
//!   stands in for that average: an approximation that can differ from the
//!   exchange's near the band's edges after a fast move, so the exchange's
//!   answer (`-1013 Filter failure: PERCENT_PRICE_BY_SIDE`) stays the final
//!   word; the local check only spares obviously outside prices a round
//!   trip.
//!
//! A field that is 0 disables its rule, as on the exchange. The parse keeps
//! every other filter type out of the way rather than failing on it, so a
//! new filter Binance adds does not stop trading; an unknown symbol status
//! is kept as [`SymbolStatus::Other`] and allows nothing.

use std::fmt;
// Only the tests time rate-limit windows here now (the types moved to ipguard).
#[cfg(test)]
use std::time::Duration;

use serde::Deserialize;

use crate::exec::Side;
use crate::hot::fixed::{notional, parse_fixed, DecimalError, Price, Qty};
use crate::hot::guard::Filters;

/// Why an exchangeInfo body could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InfoError {
    #[error("exchangeInfo is not the JSON expected: {0}")]
    Json(String),
    #[error("exchangeInfo {symbol} {filter}.{field}: {why}")]
    Field { symbol: String, filter: &'static str, field: &'static str, why: String },
    #[error("exchangeInfo lists no symbol {0}")]
    NoSuchSymbol(String),
}

/// A symbol's trading status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SymbolStatus {
    Trading,
    /// Cancels only; new orders are refused (added 2026).
    CancelOnly,
    Halt,
    Break,
    EndOfDay,
    PreTrading,
    PostTrading,
    AuctionMatch,
    /// A status this build does not know: treated as closed.
    Other(String),
}

impl SymbolStatus {
    pub fn parse(s: &str) -> Self {
        match s {
            "TRADING" => Self::Trading,
            "CANCEL_ONLY" => Self::CancelOnly,
            "HALT" => Self::Halt,
            "BREAK" => Self::Break,
            "END_OF_DAY" => Self::EndOfDay,
            "PRE_TRADING" => Self::PreTrading,
            "POST_TRADING" => Self::PostTrading,
            "AUCTION_MATCH" => Self::AuctionMatch,
            other => Self::Other(other.to_string()),
        }
    }

    /// New orders are accepted only while trading.
    pub fn allows_new_orders(&self) -> bool {
        *self == Self::Trading
    }

    /// Cancels are accepted while trading and in CANCEL_ONLY.
    pub fn allows_cancels(&self) -> bool {
        matches!(self, Self::Trading | Self::CancelOnly)
    }
}

impl fmt::Display for SymbolStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Trading => "TRADING",
            Self::CancelOnly => "CANCEL_ONLY",
            Self::Halt => "HALT",
            Self::Break => "BREAK",
            Self::EndOfDay => "END_OF_DAY",
            Self::PreTrading => "PRE_TRADING",
            Self::PostTrading => "POST_TRADING",
            Self::AuctionMatch => "AUCTION_MATCH",
            Self::Other(s) => s,
        })
    }
}

/// `PRICE_FILTER`; a zero field disables its rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PriceFilter {
    pub min: Price,
    pub max: Price,
    pub tick: Price,
}

/// `LOT_SIZE`; a zero field disables its rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LotSize {
    pub min: Qty,
    pub max: Qty,
    pub step: Qty,
}

/// Which notional filter the symbol has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NotionalKind {
    /// Neither filter is present: no notional rule.
    #[default]
    None,
    /// The current `NOTIONAL` (min and max).
    Notional,
    /// The older `MIN_NOTIONAL` (min only).
    MinNotional,
}

impl NotionalKind {
    fn name(self) -> &'static str {
        match self {
            Self::None => "NOTIONAL",
            Self::Notional => "NOTIONAL",
            Self::MinNotional => "MIN_NOTIONAL",
        }
    }
}

/// `price * qty` bounds in quote-asset fixed-point (1e-8); 0 disables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NotionalFilter {
    pub kind: NotionalKind,
    pub min: i64,
    pub max: i64,
}

/// One symbol's rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SymbolRules {
    pub symbol: String,
    pub status: SymbolStatus,
    pub base_asset: String,
    pub quote_asset: String,
    pub price: PriceFilter,
    pub lot: LotSize,
    pub notional: NotionalFilter,
    /// `POST /api/v3/order/cancelReplace` is allowed (absent in older
    /// answers, which then mean "no").
    pub cancel_replace_allowed: bool,
    /// `LIMIT_MAKER` is among the order types (absent list: assumed yes).
    pub limit_maker_allowed: bool,
    /// `MAX_NUM_ORDERS`: open orders per account on this symbol; 0 = not given.
    pub max_num_orders: u32,
    /// `PERCENT_PRICE_BY_SIDE`, when the symbol has it.
    pub percent_price_by_side: Option<PercentPriceBySide>,
}

/// `PERCENT_PRICE_BY_SIDE`: each side's price band around the weighted
/// average price, as fixed-point multipliers (1e-8: "5" = 500_000_000); a
/// zero multiplier disables its bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PercentPriceBySide {
    pub bid_up: i64,
    pub bid_down: i64,
    pub ask_up: i64,
    pub ask_down: i64,
    /// Minutes the exchange's average is taken over (0 = last price).
    pub avg_price_mins: u32,
}

/// An order the rules refuse: which filter, the value, and what is allowed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterViolation {
    #[error("{symbol} is {status}: the exchange takes no new orders until it is TRADING")]
    NotTrading { symbol: String, status: SymbolStatus },
    #[error("{symbol} does not allow LIMIT_MAKER orders")]
    LimitMakerNotAllowed { symbol: String },
    #[error("{side} price {value} is not positive")]
    PriceNotPositive { side: SideName, value: Price },
    #[error("{side} quantity {value} is not positive")]
    QtyNotPositive { side: SideName, value: Qty },
    #[error("PRICE_FILTER: {side} price {value} is below minPrice {min}")]
    PriceBelowMin { side: SideName, value: Price, min: Price },
    #[error("PRICE_FILTER: {side} price {value} is above maxPrice {max}")]
    PriceAboveMax { side: SideName, value: Price, max: Price },
    #[error("PRICE_FILTER: {side} price {value} is not a multiple of tickSize {tick}")]
    PriceOffTick { side: SideName, value: Price, tick: Price },
    #[error("LOT_SIZE: {side} quantity {value} is below minQty {min}")]
    QtyBelowMin { side: SideName, value: Qty, min: Qty },
    #[error("LOT_SIZE: {side} quantity {value} is above maxQty {max}")]
    QtyAboveMax { side: SideName, value: Qty, max: Qty },
    #[error("LOT_SIZE: {side} quantity {value} is not a multiple of stepSize {step}")]
    QtyOffStep { side: SideName, value: Qty, step: Qty },
    #[error("{filter}: {side} notional (price x quantity) {value} is below minNotional {min}")]
    NotionalBelowMin { filter: &'static str, side: SideName, value: Price, min: Price },
    #[error("{filter}: {side} notional (price x quantity) {value} is above maxNotional {max}")]
    NotionalAboveMax { filter: &'static str, side: SideName, value: Price, max: Price },
    #[error(
        "MAX_NUM_ORDERS: {open} orders already open on {symbol} and maxNumOrders is {max}; \
         cancel one before placing another"
    )]
    TooManyOrders { symbol: String, open: u32, max: u32 },
    #[error(
        "PERCENT_PRICE_BY_SIDE: {side} price {value} is above {limit} ({multiplier} x the reference price \
         {reference}, standing in for the average price); quote closer to the market"
    )]
    PriceAboveBand { side: SideName, value: Price, limit: Price, multiplier: Price, reference: Price },
    #[error(
        "PERCENT_PRICE_BY_SIDE: {side} price {value} is below {limit} ({multiplier} x the reference price \
         {reference}, standing in for the average price); quote closer to the market"
    )]
    PriceBelowBand { side: SideName, value: Price, limit: Price, multiplier: Price, reference: Price },
}

impl FilterViolation {
    /// The Binance filter name ("PRICE_FILTER", "LOT_SIZE", "NOTIONAL",
    /// "MIN_NOTIONAL"), or "STATUS" / "ORDER_TYPES" for the symbol-level rules.
    pub fn filter(&self) -> &'static str {
        match self {
            Self::NotTrading { .. } => "STATUS",
            Self::LimitMakerNotAllowed { .. } => "ORDER_TYPES",
            Self::PriceNotPositive { .. }
            | Self::PriceBelowMin { .. }
            | Self::PriceAboveMax { .. }
            | Self::PriceOffTick { .. } => "PRICE_FILTER",
            Self::QtyNotPositive { .. }
            | Self::QtyBelowMin { .. }
            | Self::QtyAboveMax { .. }
            | Self::QtyOffStep { .. } => "LOT_SIZE",
            Self::NotionalBelowMin { filter, .. } | Self::NotionalAboveMax { filter, .. } => filter,
            Self::TooManyOrders { .. } => "MAX_NUM_ORDERS",
            Self::PriceAboveBand { .. } | Self::PriceBelowBand { .. } => "PERCENT_PRICE_BY_SIDE",
        }
    }
}

/// `BUY` / `SELL`, for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SideName(pub Side);

impl fmt::Display for SideName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(side_str(self.0))
    }
}

/// Binance's spelling of a side.
pub fn side_str(side: Side) -> &'static str {
    match side {
        Side::Buy => "BUY",
        Side::Sell => "SELL",
    }
}

impl SymbolRules {
    /// Whether a LIMIT_MAKER order at `price` for `qty` passes every rule
    /// Binance would check before matching. `side` is named in messages.
    pub fn check(&self, side: Side, price: Price, qty: Qty) -> Result<(), FilterViolation> {
        let s = SideName(side);
        if !self.status.allows_new_orders() {
            return Err(FilterViolation::NotTrading { symbol: self.symbol.clone(), status: self.status.clone() });
        }
        if !self.limit_maker_allowed {
            return Err(FilterViolation::LimitMakerNotAllowed { symbol: self.symbol.clone() });
        }
        if price.0 <= 0 {
            return Err(FilterViolation::PriceNotPositive { side: s, value: price });
        }
        if qty.0 <= 0 {
            return Err(FilterViolation::QtyNotPositive { side: s, value: qty });
        }
        let p = self.price;
        if p.min.0 > 0 && price < p.min {
            return Err(FilterViolation::PriceBelowMin { side: s, value: price, min: p.min });
        }
        if p.max.0 > 0 && price > p.max {
            return Err(FilterViolation::PriceAboveMax { side: s, value: price, max: p.max });
        }
        if p.tick.0 > 0 && price.0 % p.tick.0 != 0 {
            return Err(FilterViolation::PriceOffTick { side: s, value: price, tick: p.tick });
        }
        let l = self.lot;
        if l.min.0 > 0 && qty < l.min {
            return Err(FilterViolation::QtyBelowMin { side: s, value: qty, min: l.min });
        }
        if l.max.0 > 0 && qty > l.max {
            return Err(FilterViolation::QtyAboveMax { side: s, value: qty, max: l.max });
        }
        if l.step.0 > 0 && qty.0 % l.step.0 != 0 {
            return Err(FilterViolation::QtyOffStep { side: s, value: qty, step: l.step });
        }
        let n = self.notional;
        let value = notional(price.0, qty.0);
        let filter = n.kind.name();
        if n.kind != NotionalKind::None {
            if n.min > 0 && value < n.min {
                return Err(FilterViolation::NotionalBelowMin {
                    filter,
                    side: s,
                    value: Price(value),
                    min: Price(n.min),
                });
            }
            if n.max > 0 && value > n.max {
                return Err(FilterViolation::NotionalAboveMax {
                    filter,
                    side: s,
                    value: Price(value),
                    max: Price(n.max),
                });
            }
        }
        Ok(())
    }

    /// The rules that need the caller's state: `MAX_NUM_ORDERS` against
    /// `open_orders` (this account's open orders on the symbol now), and
    /// `PERCENT_PRICE_BY_SIDE` against `reference`, the caller's mid or
    /// last price standing in for the exchange's weighted average price
    /// (`None`: not checked). See the module docs for the approximation.
    pub fn check_market(
        &self,
        side: Side,
        price: Price,
        open_orders: u32,
        reference: Option<Price>,
    ) -> Result<(), FilterViolation> {
        if self.max_num_orders > 0 && open_orders >= self.max_num_orders {
            return Err(FilterViolation::TooManyOrders {
                symbol: self.symbol.clone(),
                open: open_orders,
                max: self.max_num_orders,
            });
        }
        let (Some(band), Some(reference)) = (self.percent_price_by_side, reference) else {
            return Ok(());
        };
        if reference.0 <= 0 {
            return Ok(());
        }
        let (up, down) = match side {
            Side::Buy => (band.bid_up, band.bid_down),
            Side::Sell => (band.ask_up, band.ask_down),
        };
        // Exact: price x 1e8 against reference x multiplier, in i128.
        let scaled = price.0 as i128 * crate::hot::fixed::SCALE as i128;
        let s = SideName(side);
        if up > 0 && scaled > reference.0 as i128 * up as i128 {
            return Err(FilterViolation::PriceAboveBand {
                side: s,
                value: price,
                limit: Price(notional(reference.0, up)),
                multiplier: Price(up),
                reference,
            });
        }
        if down > 0 && scaled < reference.0 as i128 * down as i128 {
            return Err(FilterViolation::PriceBelowBand {
                side: s,
                value: price,
                limit: Price(crate::hot::fixed::notional_ceil(reference.0, down)),
                multiplier: Price(down),
                reference,
            });
        }
        Ok(())
    }

    /// The largest valid tick at or below `price` (bids round down so they
    /// never cross further than asked). Unchanged when there is no tick.
    pub fn floor_price(&self, price: Price) -> Price {
        let t = self.price.tick.0;
        if t > 0 {
            Price(price.0.div_euclid(t) * t)
        } else {
            price
        }
    }

    /// The smallest valid tick at or above `price` (asks round up).
    pub fn ceil_price(&self, price: Price) -> Price {
        let t = self.price.tick.0;
        if t > 0 {
            Price(price.0.div_euclid(t).saturating_add((price.0.rem_euclid(t) != 0) as i64).saturating_mul(t))
        } else {
            price
        }
    }

    /// `qty` rounded down to the step.
    pub fn floor_qty(&self, qty: Qty) -> Qty {
        let s = self.lot.step.0;
        if s > 0 {
            Qty(qty.0.div_euclid(s) * s)
        } else {
            qty
        }
    }

    /// The hot thread's view of these rules (its guard rounds quotes).
    pub fn guard_filters(&self) -> Filters {
        Filters {
            tick_size: self.price.tick,
            step_size: Qty(self.lot.step.0.max(1)),
            min_qty: self.lot.min,
            min_notional: self.notional.min,
        }
    }
}

// The rate-limit types live with the guard that enforces them
// (src/ipguard/rate_limit.rs); re-exported so `filters::RateLimit` still works.
pub use crate::ipguard::{RateLimit, RateLimitKind};

/// The parts of an exchangeInfo answer mmbot uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExchangeInfo {
    pub server_time_ms: i64,
    pub rate_limits: Vec<RateLimit>,
    pub symbols: Vec<SymbolRules>,
}

impl ExchangeInfo {
    /// Parses an exchangeInfo body. Never panics on any input.
    pub fn parse(body: &[u8]) -> Result<Self, InfoError> {
        let raw: RawInfo = serde_json::from_slice(body).map_err(|e| InfoError::Json(e.to_string()))?;
        let rate_limits = raw.rate_limits.into_iter().filter_map(RawLimit::into_limit).collect();
        let symbols = raw.symbols.into_iter().map(RawSymbol::into_rules).collect::<Result<_, _>>()?;
        Ok(Self { server_time_ms: raw.server_time, rate_limits, symbols })
    }

    pub fn symbol(&self, symbol: &str) -> Option<&SymbolRules> {
        self.symbols.iter().find(|s| s.symbol == symbol)
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawInfo {
    #[serde(default)]
    server_time: i64,
    #[serde(default)]
    rate_limits: Vec<RawLimit>,
    #[serde(default)]
    symbols: Vec<RawSymbol>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawLimit {
    rate_limit_type: String,
    interval: String,
    interval_num: u32,
    limit: u32,
}

impl RawLimit {
    /// `None` for an interval this build cannot time (it is then not
    /// enforced locally; the server still enforces it).
    fn into_limit(self) -> Option<RateLimit> {
        let unit = match self.interval.as_str() {
            "SECOND" => 'S',
            "MINUTE" => 'M',
            "HOUR" => 'H',
            "DAY" => 'D',
            _ => return None,
        };
        let kind = match self.rate_limit_type.as_str() {
            "REQUEST_WEIGHT" => RateLimitKind::RequestWeight,
            "ORDERS" => RateLimitKind::Orders,
            "RAW_REQUESTS" => RateLimitKind::RawRequests,
            other => RateLimitKind::Other(other.to_string()),
        };
        Some(RateLimit { kind, unit, interval_num: self.interval_num, limit: self.limit })
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawSymbol {
    symbol: String,
    status: String,
    base_asset: String,
    quote_asset: String,
    #[serde(default)]
    order_types: Option<Vec<String>>,
    #[serde(default)]
    cancel_replace_allowed: bool,
    #[serde(default)]
    filters: Vec<serde_json::Value>,
}

impl RawSymbol {
    fn into_rules(self) -> Result<SymbolRules, InfoError> {
        let mut price = PriceFilter::default();
        let mut lot = LotSize::default();
        let mut notional = NotionalFilter::default();
        let mut max_num_orders = 0;
        let mut percent_price_by_side = None;
        let sym = &self.symbol;
        for f in &self.filters {
            match f.get("filterType").and_then(|t| t.as_str()) {
                Some("PRICE_FILTER") => {
                    let n = "PRICE_FILTER";
                    price = PriceFilter {
                        min: Price(field(sym, f, n, "minPrice", false)?),
                        max: Price(field(sym, f, n, "maxPrice", true)?),
                        tick: Price(field(sym, f, n, "tickSize", false)?),
                    };
                }
                Some("LOT_SIZE") => {
                    let n = "LOT_SIZE";
                    lot = LotSize {
                        min: Qty(field(sym, f, n, "minQty", false)?),
                        max: Qty(field(sym, f, n, "maxQty", true)?),
                        step: Qty(field(sym, f, n, "stepSize", false)?),
                    };
                }
                Some("NOTIONAL") => {
                    let n = "NOTIONAL";
                    notional = NotionalFilter {
                        kind: NotionalKind::Notional,
                        min: field(sym, f, n, "minNotional", false)?,
                        // Optional: a NOTIONAL without a max has no max rule.
                        max: match f.get("maxNotional") {
                            Some(_) => field(sym, f, n, "maxNotional", true)?,
                            None => 0,
                        },
                    };
                }
                // The newer NOTIONAL wins when an answer carries both.
                Some("MIN_NOTIONAL") if notional.kind != NotionalKind::Notional => {
                    notional = NotionalFilter {
                        kind: NotionalKind::MinNotional,
                        min: field(sym, f, "MIN_NOTIONAL", "minNotional", false)?,
                        max: 0,
                    };
                }
                Some("MAX_NUM_ORDERS") => {
                    max_num_orders =
                        f.get("maxNumOrders").and_then(|v| v.as_u64()).unwrap_or(0).min(u32::MAX as u64) as u32;
                }
                Some("PERCENT_PRICE_BY_SIDE") => {
                    let n = "PERCENT_PRICE_BY_SIDE";
                    // A missing multiplier disables its bound (0) rather
                    // than the symbol: the exchange still checks.
                    let mult = |name| match f.get(name) {
                        Some(_) => field(sym, f, n, name, true),
                        None => Ok(0),
                    };
                    percent_price_by_side = Some(PercentPriceBySide {
                        bid_up: mult("bidMultiplierUp")?,
                        bid_down: mult("bidMultiplierDown")?,
                        ask_up: mult("askMultiplierUp")?,
                        ask_down: mult("askMultiplierDown")?,
                        avg_price_mins: f.get("avgPriceMins").and_then(|v| v.as_u64()).unwrap_or(0).min(u32::MAX as u64)
                            as u32,
                    });
                }
                _ => {}
            }
        }
        let limit_maker_allowed = self.order_types.as_ref().is_none_or(|t| t.iter().any(|t| t == "LIMIT_MAKER"));
        Ok(SymbolRules {
            status: SymbolStatus::parse(&self.status),
            symbol: self.symbol,
            base_asset: self.base_asset,
            quote_asset: self.quote_asset,
            price,
            lot,
            notional,
            cancel_replace_allowed: self.cancel_replace_allowed,
            limit_maker_allowed,
            max_num_orders,
            percent_price_by_side,
        })
    }
}

/// A decimal-string field of a filter. `upper_bound`: an upper limit too
/// large for fixed-point is saturated (no representable value exceeds it)
/// instead of refused.
fn field(
    symbol: &str,
    f: &serde_json::Value,
    filter: &'static str,
    name: &'static str,
    upper_bound: bool,
) -> Result<i64, InfoError> {
    let err = |why: String| InfoError::Field { symbol: symbol.to_string(), filter, field: name, why };
    let s = f.get(name).and_then(|v| v.as_str()).ok_or_else(|| err("missing, or not a decimal string".into()))?;
    match parse_fixed(s.as_bytes()) {
        Ok(v) => Ok(v),
        Err(DecimalError::Overflow | DecimalError::TooManyIntegerDigits) if upper_bound => Ok(i64::MAX),
        Err(e) => Err(err(format!("{s:?}: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> SymbolRules {
        let body = br#"{"serverTime":1,"rateLimits":[
            {"rateLimitType":"REQUEST_WEIGHT","interval":"MINUTE","intervalNum":1,"limit":6000},
            {"rateLimitType":"ORDERS","interval":"SECOND","intervalNum":10,"limit":50},
            {"rateLimitType":"ORDERS","interval":"DAY","intervalNum":1,"limit":160000},
            {"rateLimitType":"RAW_REQUESTS","interval":"MINUTE","intervalNum":5,"limit":61000}],
          "symbols":[{"symbol":"BTCUSDT","status":"TRADING","baseAsset":"BTC","quoteAsset":"USDT",
            "orderTypes":["LIMIT","LIMIT_MAKER"],"cancelReplaceAllowed":true,"filters":[
            {"filterType":"PRICE_FILTER","minPrice":"0.01000000","maxPrice":"1000000.00000000","tickSize":"0.01000000"},
            {"filterType":"LOT_SIZE","minQty":"0.00001000","maxQty":"9000.00000000","stepSize":"0.00001000"},
            {"filterType":"NOTIONAL","minNotional":"5.00000000","applyMinToMarket":true,
             "maxNotional":"9000000.00000000","applyMaxToMarket":false,"avgPriceMins":5},
            {"filterType":"PERCENT_PRICE_BY_SIDE","bidMultiplierUp":"5","bidMultiplierDown":"0.2",
             "askMultiplierUp":"5","askMultiplierDown":"0.2","avgPriceMins":5},
            {"filterType":"MAX_NUM_ORDERS","maxNumOrders":200}]}]}"#;
        let info = ExchangeInfo::parse(body).unwrap();
        assert_eq!(info.rate_limits.len(), 4);
        assert_eq!(info.rate_limits[1].header_suffix(), "10s");
        assert_eq!(info.rate_limits[1].window(), Duration::from_secs(10));
        assert_eq!(info.rate_limits[0].to_string(), "REQUEST_WEIGHT 6000 per 1M");
        info.symbol("BTCUSDT").unwrap().clone()
    }

    fn p(s: &str) -> Price {
        s.parse().unwrap()
    }
    fn q(s: &str) -> Qty {
        s.parse().unwrap()
    }

    #[test]
    fn every_rule_names_its_filter_the_value_and_the_bound() {
        let r = rules();
        assert!(r.cancel_replace_allowed && r.limit_maker_allowed);
        assert_eq!(r.max_num_orders, 200);
        assert_eq!(r.price.tick, p("0.01"));
        assert_eq!(
            r.notional,
            NotionalFilter { kind: NotionalKind::Notional, min: 500_000_000, max: 900_000_000_000_000 }
        );
        assert_eq!(r.check(Side::Buy, p("60000.01"), q("0.001")), Ok(()));
        let cases: [(&str, &str, &str, &str); 8] = [
            ("60000.015", "0.001", "PRICE_FILTER", "not a multiple of tickSize 0.01"),
            ("0.001", "0.001", "PRICE_FILTER", "below minPrice 0.01"),
            ("1000000.01", "0.001", "PRICE_FILTER", "above maxPrice 1000000"),
            ("60000", "0.000015", "LOT_SIZE", "not a multiple of stepSize 0.00001"),
            ("60000", "0.000001", "LOT_SIZE", "below minQty 0.00001"),
            ("1", "9000.00001", "LOT_SIZE", "above maxQty 9000"),
            ("100", "0.01", "NOTIONAL", "notional (price x quantity) 1 is below minNotional 5"),
            ("999999", "9000", "NOTIONAL", "above maxNotional 9000000"),
        ];
        for (price, qty, filter, text) in cases {
            let e = r.check(Side::Sell, p(price), q(qty)).unwrap_err();
            assert_eq!(e.filter(), filter, "{price} {qty}: {e}");
            assert!(e.to_string().contains(text) && e.to_string().contains("SELL"), "{price} {qty}: {e}");
        }
        assert_eq!(r.check(Side::Buy, Price(0), q("1")).unwrap_err().filter(), "PRICE_FILTER");
        assert_eq!(r.check(Side::Buy, p("1"), Qty(-1)).unwrap_err().filter(), "LOT_SIZE");
    }

    #[test]
    fn zero_fields_disable_their_rules_and_status_gates_new_orders() {
        let mut r = rules();
        r.price = PriceFilter { min: Price(0), max: Price(0), tick: Price(0) };
        r.lot = LotSize { min: Qty(0), max: Qty(0), step: Qty(0) };
        r.notional = NotionalFilter { kind: NotionalKind::MinNotional, min: 0, max: 0 };
        assert_eq!(r.check(Side::Buy, Price(1), Qty(1)), Ok(()));
        r.status = SymbolStatus::parse("CANCEL_ONLY");
        let e = r.check(Side::Buy, Price(1), Qty(1)).unwrap_err();
        assert!(e.to_string().contains("CANCEL_ONLY") && e.filter() == "STATUS", "{e}");
        assert!(r.status.allows_cancels());
        assert_eq!(SymbolStatus::parse("NEW_THING"), SymbolStatus::Other("NEW_THING".into()));
        assert!(!SymbolStatus::parse("NEW_THING").allows_new_orders());
    }

    #[test]
    fn rounding_to_tick_and_step() {
        let r = rules();
        assert_eq!(r.floor_price(p("100.019")), p("100.01"));
        assert_eq!(r.ceil_price(p("100.011")), p("100.02"));
        assert_eq!(r.ceil_price(p("100.02")), p("100.02"));
        assert_eq!(r.floor_qty(q("0.123456")), q("0.12345"));
        assert_eq!(r.guard_filters().tick_size, p("0.01"));
    }

    #[test]
    fn bad_bodies_are_errors_not_panics() {
        for body in
            [&b""[..], b"{\"symbols\":[{\"symbol\":1}]}", b"{\"symbols\":[{}]}", b"{\"symbols\":7}", b"\xff\xfe"]
        {
            assert!(ExchangeInfo::parse(body).is_err(), "{body:?}");
        }
        let bad_tick = br#"{"symbols":[{"symbol":"X","status":"TRADING","baseAsset":"A","quoteAsset":"B",
            "filters":[{"filterType":"PRICE_FILTER","minPrice":"0","maxPrice":"0","tickSize":"-1"}]}]}"#;
        let e = ExchangeInfo::parse(bad_tick).unwrap_err().to_string();
        assert!(e.contains("PRICE_FILTER.tickSize") && e.contains("X"), "{e}");
        let huge_max = br#"{"symbols":[{"symbol":"X","status":"BREAK","baseAsset":"A","quoteAsset":"B",
            "filters":[{"filterType":"LOT_SIZE","minQty":"0","maxQty":"900000000000000","stepSize":"1"},
            {"filterType":"MIN_NOTIONAL","minNotional":"0.001"}]}]}"#;
        let info = ExchangeInfo::parse(huge_max).unwrap();
        assert_eq!(info.symbols[0].lot.max, Qty(i64::MAX));
        assert_eq!(info.symbols[0].notional.kind, NotionalKind::MinNotional);
        assert!(!info.symbols[0].cancel_replace_allowed);
    }

    #[test]
    fn max_num_orders_and_percent_price_by_side_need_the_callers_state() {
        let r = rules();
        assert_eq!(
            r.percent_price_by_side,
            Some(PercentPriceBySide {
                bid_up: 500_000_000,
                bid_down: 20_000_000,
                ask_up: 500_000_000,
                ask_down: 20_000_000,
                avg_price_mins: 5
            })
        );
        let mid = Some(p("100"));
        assert_eq!(r.check_market(Side::Buy, p("100"), 199, mid), Ok(()));
        let e = r.check_market(Side::Buy, p("100"), 200, mid).unwrap_err();
        assert_eq!(e.filter(), "MAX_NUM_ORDERS");
        assert!(e.to_string().contains("200 orders already open on BTCUSDT"), "{e}");
        // Exactly on the band passes: 5 x 100 = 500, 0.2 x 100 = 20.
        assert_eq!(r.check_market(Side::Buy, p("500"), 0, mid), Ok(()));
        assert_eq!(r.check_market(Side::Sell, p("20"), 0, mid), Ok(()));
        let e = r.check_market(Side::Buy, p("500.01"), 0, mid).unwrap_err();
        assert_eq!(e.filter(), "PERCENT_PRICE_BY_SIDE");
        assert!(e.to_string().contains("BUY price 500.01 is above 500 (5 x the reference price 100"), "{e}");
        let e = r.check_market(Side::Sell, p("19.99"), 0, mid).unwrap_err();
        assert!(e.to_string().contains("SELL price 19.99 is below 20 (0.2 x"), "{e}");
        // No reference price: the band is not checked.
        assert_eq!(r.check_market(Side::Sell, p("1"), 0, None), Ok(()));
        // A symbol without the filters checks nothing.
        let mut bare = r.clone();
        bare.max_num_orders = 0;
        bare.percent_price_by_side = None;
        assert_eq!(bare.check_market(Side::Buy, p("1"), 10_000, mid), Ok(()));
    }
}

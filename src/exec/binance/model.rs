//! What Binance answers, in exact fixed-point: orders ([`Order`]), the
//! account ([`Account`]), and the two halves of a cancelReplace
//! ([`ReplaceHalf`]).
//!
//! Bodies are read with serde into raw string fields, then every price and
//! quantity goes through [`parse_fixed`]: never `f64`, so a quantity read
//! back is the quantity sent. Unknown fields are ignored (Binance adds them
//! often); a missing or malformed field the caller relies on is an error,
//! never a guess and never a panic.

use serde::Deserialize;

use crate::exec::Side;
use crate::hot::fixed::{parse_fixed, DecimalError, Price, Qty};

/// Why a body could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what}: {why}")]
pub struct ModelError {
    pub what: &'static str,
    pub why: String,
}

/// An order's status (Binance enums.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderStatus {
    New,
    PendingNew,
    PartiallyFilled,
    Filled,
    Canceled,
    PendingCancel,
    Rejected,
    Expired,
    ExpiredInMatch,
    Other(String),
}

impl OrderStatus {
    pub fn parse(s: &str) -> Self {
        match s {
            "NEW" => Self::New,
            "PENDING_NEW" => Self::PendingNew,
            "PARTIALLY_FILLED" => Self::PartiallyFilled,
            "FILLED" => Self::Filled,
            "CANCELED" => Self::Canceled,
            "PENDING_CANCEL" => Self::PendingCancel,
            "REJECTED" => Self::Rejected,
            "EXPIRED" => Self::Expired,
            "EXPIRED_IN_MATCH" => Self::ExpiredInMatch,
            other => Self::Other(other.to_string()),
        }
    }

    /// Still working on the book (may fill). An unknown status counts as
    /// open: assuming an order is gone when it is not is the costly mistake.
    pub fn is_open(&self) -> bool {
        matches!(self, Self::New | Self::PendingNew | Self::PartiallyFilled | Self::PendingCancel | Self::Other(_))
    }
}

/// One order as Binance reports it (order placement with
/// `newOrderRespType=RESULT`, cancel, query, open orders).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    pub symbol: String,
    pub order_id: u64,
    /// For a cancel answer this is the cancel request's own id; the order's
    /// is then [`Order::orig_client_order_id`].
    pub client_order_id: String,
    pub orig_client_order_id: Option<String>,
    pub side: Side,
    pub order_type: String,
    pub status: OrderStatus,
    pub price: Price,
    pub orig_qty: Qty,
    pub executed_qty: Qty,
    /// Sum of price x quantity filled, quote-asset fixed-point.
    pub cumulative_quote_qty: i64,
    /// `transactTime`, else `updateTime`, else `time` (ms), when present.
    pub time_ms: Option<i64>,
}

impl Order {
    /// The id the order was placed with (cancel answers carry it as
    /// `origClientOrderId`).
    pub fn placed_client_order_id(&self) -> &str {
        self.orig_client_order_id.as_deref().unwrap_or(&self.client_order_id)
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawOrder {
    symbol: String,
    order_id: u64,
    client_order_id: String,
    #[serde(default)]
    orig_client_order_id: Option<String>,
    side: String,
    #[serde(rename = "type")]
    order_type: String,
    status: String,
    price: String,
    orig_qty: String,
    executed_qty: String,
    #[serde(default)]
    cummulative_quote_qty: Option<String>,
    #[serde(default)]
    transact_time: Option<i64>,
    #[serde(default)]
    update_time: Option<i64>,
    #[serde(default)]
    time: Option<i64>,
}

impl Order {
    /// Parses one order object.
    pub fn parse(body: &[u8]) -> Result<Self, ModelError> {
        let raw: RawOrder = serde_json::from_slice(body).map_err(|e| err("order", e))?;
        Self::from_raw(raw)
    }

    /// Parses a JSON value holding one order object.
    pub fn from_value(v: serde_json::Value) -> Result<Self, ModelError> {
        let raw: RawOrder = serde_json::from_value(v).map_err(|e| err("order", e))?;
        Self::from_raw(raw)
    }

    /// Parses a JSON array of orders; entries that are not single orders
    /// (an order list's report has no `orderId`) are skipped.
    pub fn parse_list(body: &[u8]) -> Result<Vec<Self>, ModelError> {
        let items: Vec<serde_json::Value> = serde_json::from_slice(body).map_err(|e| err("order list", e))?;
        items.into_iter().filter(|v| v.get("orderId").is_some()).map(Self::from_value).collect()
    }

    fn from_raw(r: RawOrder) -> Result<Self, ModelError> {
        let side = match r.side.as_str() {
            "BUY" => Side::Buy,
            "SELL" => Side::Sell,
            other => return Err(ModelError { what: "order side", why: format!("{other:?} is not BUY or SELL") }),
        };
        Ok(Self {
            order_id: r.order_id,
            side,
            order_type: r.order_type,
            status: OrderStatus::parse(&r.status),
            price: Price(dec("order price", &r.price)?),
            orig_qty: Qty(dec("order origQty", &r.orig_qty)?),
            executed_qty: Qty(dec("order executedQty", &r.executed_qty)?),
            cumulative_quote_qty: match &r.cummulative_quote_qty {
                Some(s) => dec("order cummulativeQuoteQty", s)?,
                None => 0,
            },
            time_ms: r.transact_time.or(r.update_time).or(r.time),
            symbol: r.symbol,
            client_order_id: r.client_order_id,
            orig_client_order_id: r.orig_client_order_id,
        })
    }
}

/// A fee rate in fixed-point (0.001 = 100_000).
pub type Rate = i64;

/// `commissionRates` of the account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CommissionRates {
    pub maker: Rate,
    pub taker: Rate,
    pub buyer: Rate,
    pub seller: Rate,
}

/// One asset's balance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Balance {
    pub asset: String,
    pub free: Qty,
    pub locked: Qty,
    /// The amount exceeded fixed-point's 92,233,720,368 units and was
    /// saturated. Kept rather than failing the whole account: such balances
    /// are of tokens with tiny prices that mmbot does not quote in.
    pub saturated: bool,
}

/// `GET /api/v3/account`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub can_trade: bool,
    pub account_type: String,
    pub update_time_ms: i64,
    pub commission: CommissionRates,
    pub balances: Vec<Balance>,
}

impl Account {
    /// The balance of `asset`; `None` when the account shows none (with
    /// `omitZeroBalances`, a zero balance is absent).
    pub fn balance(&self, asset: &str) -> Option<&Balance> {
        self.balances.iter().find(|b| b.asset == asset)
    }

    pub fn parse(body: &[u8]) -> Result<Self, ModelError> {
        let raw: RawAccount = serde_json::from_slice(body).map_err(|e| err("account", e))?;
        let c = &raw.commission_rates;
        let commission = CommissionRates {
            maker: dec("commissionRates.maker", &c.maker)?,
            taker: dec("commissionRates.taker", &c.taker)?,
            buyer: dec("commissionRates.buyer", &c.buyer)?,
            seller: dec("commissionRates.seller", &c.seller)?,
        };
        let mut balances = Vec::with_capacity(raw.balances.len());
        for b in raw.balances {
            let (free, s1) = amount("balance free", &b.free)?;
            let (locked, s2) = amount("balance locked", &b.locked)?;
            balances.push(Balance { asset: b.asset, free: Qty(free), locked: Qty(locked), saturated: s1 || s2 });
        }
        Ok(Self {
            can_trade: raw.can_trade,
            account_type: raw.account_type,
            update_time_ms: raw.update_time,
            commission,
            balances,
        })
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawAccount {
    can_trade: bool,
    #[serde(default)]
    account_type: String,
    #[serde(default)]
    update_time: i64,
    commission_rates: RawRates,
    balances: Vec<RawBalance>,
}

#[derive(Deserialize)]
struct RawRates {
    maker: String,
    taker: String,
    buyer: String,
    seller: String,
}

#[derive(Deserialize)]
struct RawBalance {
    asset: String,
    free: String,
    locked: String,
}

/// One half of a cancelReplace answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplaceHalf {
    /// It happened: the canceled order, or the new one.
    Success(Order),
    /// It was refused with this error.
    Failure { code: i64, msg: String },
    /// It was not tried (STOP_ON_FAILURE after a failed cancel).
    NotAttempted,
}

impl ReplaceHalf {
    /// Reads `data.cancelResult` + `data.cancelResponse` (or the newOrder
    /// pair). A `SUCCESS` whose order cannot be read is an error: the caller
    /// then does not know what happened and must look the orders up.
    pub(crate) fn from_parts(
        result: Option<&serde_json::Value>,
        response: Option<&serde_json::Value>,
    ) -> Result<Self, ModelError> {
        match result.and_then(|v| v.as_str()) {
            Some("SUCCESS") => {
                let v = response.cloned().ok_or(ModelError { what: "cancelReplace", why: "no response".into() })?;
                Order::from_value(v).map(Self::Success)
            }
            Some("FAILURE") => {
                let r = response.ok_or(ModelError { what: "cancelReplace", why: "no error response".into() })?;
                let code = r.get("code").and_then(|c| c.as_i64()).unwrap_or(0);
                let msg = r.get("msg").and_then(|m| m.as_str()).unwrap_or("").to_string();
                Ok(Self::Failure { code, msg })
            }
            Some("NOT_ATTEMPTED") => Ok(Self::NotAttempted),
            other => Err(ModelError { what: "cancelReplace result", why: format!("{other:?} is not known") }),
        }
    }
}

fn err(what: &'static str, e: serde_json::Error) -> ModelError {
    ModelError { what, why: e.to_string() }
}

fn dec(what: &'static str, s: &str) -> Result<i64, ModelError> {
    parse_fixed(s.as_bytes()).map_err(|e| ModelError { what, why: format!("{s:?}: {e}") })
}

/// A balance amount, saturated (with a flag) past fixed-point's range.
fn amount(what: &'static str, s: &str) -> Result<(i64, bool), ModelError> {
    match parse_fixed(s.as_bytes()) {
        Ok(v) => Ok((v, false)),
        Err(DecimalError::Overflow | DecimalError::TooManyIntegerDigits) => Ok((i64::MAX, true)),
        Err(e) => Err(ModelError { what, why: format!("{s:?}: {e}") }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_read_exactly_and_bad_ones_are_errors() {
        let o = Order::parse(
            br#"{"symbol":"LTCBTC","origClientOrderId":"myOrder1","orderId":4,"orderListId":-1,
            "clientOrderId":"cancelMyOrder1","transactTime":1684804350068,"price":"2.00000000","origQty":"1.00000000",
            "executedQty":"0.00000000","cummulativeQuoteQty":"0.00000000","status":"CANCELED","timeInForce":"GTC",
            "type":"LIMIT","side":"BUY","selfTradePreventionMode":"NONE"}"#,
        )
        .unwrap();
        assert_eq!(o.price, Price(200_000_000));
        assert_eq!(o.placed_client_order_id(), "myOrder1");
        assert_eq!(o.status, OrderStatus::Canceled);
        assert!(!o.status.is_open());
        assert!(Order::parse(br#"{"symbol":"X","orderId":1}"#).is_err());
        assert!(Order::parse(b"not json").is_err());
        let list = Order::parse_list(br#"[{"orderListId":3,"orders":[]}]"#).unwrap();
        assert!(list.is_empty());
    }

    #[test]
    fn huge_balances_saturate_with_a_flag() {
        let a = Account::parse(
            br#"{"canTrade":true,"commissionRates":{"maker":"0.001","taker":"0.001","buyer":"0","seller":"0"},
            "balances":[{"asset":"SHIB","free":"100000000000.5","locked":"0"},{"asset":"BTC","free":"1.5","locked":"0.25"}]}"#,
        )
        .unwrap();
        assert!(a.balance("SHIB").unwrap().saturated);
        let b = a.balance("BTC").unwrap();
        assert_eq!((b.free, b.locked, b.saturated), (Qty(150_000_000), Qty(25_000_000), false));
        assert_eq!(a.commission.maker, 100_000);
    }
}

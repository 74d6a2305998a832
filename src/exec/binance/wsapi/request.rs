//! One [`Call`] as a WebSocket API request, and its answer back as a
//! [`Reply`] or a [`BinanceError`]: the wire half of the gateway, kept apart
//! from the session thread so the mapping can be read (and tested) alone.
//!
//! Sources: web-socket-api.md §Request format, §Response format, §Status
//! codes, §SIGNED request security, §Session Authentication, and each
//! method's section (§Place new order, §Test new order, §Cancel order,
//! §Cancel and replace order, §Cancel open orders, §Account information,
//! §Query order, §Current open orders, §Account trade history) for the
//! parameters and weights. FACTS.md §3.3, §4.6.

use std::time::Duration;

use serde_json::{Map, Value};

use crate::exec::binance::errors::{self, BinanceError, Endpoint};
use crate::exec::binance::filters::side_str;
use crate::exec::binance::gateway::{Call, NewOrder, Reply, Target};
use crate::exec::binance::keys::Credentials;
use crate::exec::binance::model::{Account, Order};
use crate::exec::binance::rest::{MyTrade, Replaced};
use crate::exec::binance::sign::ws_api_payload;
use crate::ipguard::{IpGuard, Request};

/// `myTrades` page size (the documented maximum, §Account trade history).
pub const TRADES_PAGE: usize = 1000;

/// What a method is called on the wire, how it is labelled in errors,
/// whether it places or cancels (an unanswered one has an unknown fate), and
/// its weight and order count for the guard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MethodInfo {
    pub wire: &'static str,
    pub endpoint: Endpoint,
    pub weight: u32,
    pub orders: u32,
}

impl MethodInfo {
    pub fn request(&self) -> Request {
        Request { label: self.endpoint.label, weight: self.weight, orders: self.orders }
    }
}

const fn info(wire: &'static str, label: &'static str, mutating: bool, weight: u32, orders: u32) -> MethodInfo {
    MethodInfo { wire, endpoint: Endpoint { label, mutating }, weight, orders }
}

/// Weights from web-socket-api.md (each method's **Weight**), checked 2026.
pub fn method_info(call: &Call) -> MethodInfo {
    match call {
        Call::Place(_) => info("order.place", "WS-API order.place", true, 1, 1),
        Call::Test(_) => info("order.test", "WS-API order.test", false, 1, 0),
        Call::Cancel(_) => info("order.cancel", "WS-API order.cancel", true, 1, 0),
        Call::CancelReplace { .. } => info("order.cancelReplace", "WS-API order.cancelReplace", true, 1, 1),
        Call::Query { .. } => info("order.status", "WS-API order.status", false, 4, 0),
        // 6 with `symbol` (80 without; we always name the symbol).
        Call::OpenOrders => info("openOrders.status", "WS-API openOrders.status", false, 6, 0),
        Call::CancelAll => info("openOrders.cancelAll", "WS-API openOrders.cancelAll", true, 1, 0),
        Call::Account => info("account.status", "WS-API account.status", false, 20, 0),
        // 5 with `orderId` (20 without).
        Call::MyTrades { .. } => info("myTrades", "WS-API myTrades", false, 5, 0),
        Call::SyncClock => info("time", "WS-API time", false, 1, 0),
    }
}

/// `session.logon` (weight 2) and the user-data subscriptions (weight 2).
pub const LOGON: MethodInfo = info("session.logon", "WS-API session.logon", false, 2, 0);
pub const SUBSCRIBE: MethodInfo = info("userDataStream.subscribe", "WS-API userDataStream.subscribe", false, 2, 0);
pub const SUBSCRIBE_SIGNATURE: MethodInfo =
    info("userDataStream.subscribe.signature", "WS-API userDataStream.subscribe.signature", false, 2, 0);

/// A parameter value: JSON string or JSON number. Both are signed as their
/// text (web-socket-api.md §SIGNED request example (HMAC)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Param {
    Str(String),
    Int(i64),
}

impl Param {
    fn text(&self) -> String {
        match self {
            Self::Str(s) => s.clone(),
            Self::Int(n) => n.to_string(),
        }
    }

    fn json(&self) -> Value {
        match self {
            Self::Str(s) => Value::String(s.clone()),
            Self::Int(n) => Value::from(*n),
        }
    }
}

/// The method's own parameters (no timestamp, key or signature yet).
/// `from_id` is the `myTrades` page start.
pub fn call_params(call: &Call, symbol: &str, from_id: Option<i64>) -> Vec<(&'static str, Param)> {
    let s = |v: &str| Param::Str(v.to_string());
    let mut p: Vec<(&'static str, Param)> = vec![("symbol", s(symbol))];
    match call {
        Call::Place(o) | Call::Test(o) => push_order(&mut p, o),
        Call::Cancel(t) => match t {
            Target::OrderId(id) => p.push(("orderId", Param::Int(*id as i64))),
            Target::ClientId(id) => p.push(("origClientOrderId", s(id))),
        },
        Call::CancelReplace { cancel, new } => {
            p.push(("cancelReplaceMode", s("STOP_ON_FAILURE")));
            // New orders refused by the order-count limit still cancel the
            // old one (never leave a stale quote working), rest-api.md and
            // web-socket-api.md §Cancel and replace order.
            p.push(("orderRateLimitExceededMode", s("CANCEL_ONLY")));
            match cancel {
                Target::OrderId(id) => p.push(("cancelOrderId", Param::Int(*id as i64))),
                Target::ClientId(id) => p.push(("cancelOrigClientOrderId", s(id))),
            }
            push_order(&mut p, new);
        }
        Call::Query { client_id } => p.push(("origClientOrderId", s(client_id))),
        Call::OpenOrders | Call::CancelAll => {}
        Call::Account => {
            p.clear();
            p.push(("omitZeroBalances", s("true")));
        }
        Call::MyTrades { order_id } => {
            p.push(("orderId", Param::Int(*order_id as i64)));
            p.push(("limit", Param::Int(TRADES_PAGE as i64)));
            if let Some(f) = from_id {
                p.push(("fromId", Param::Int(f)));
            }
        }
        Call::SyncClock => p.clear(),
    }
    p
}

/// `LIMIT_MAKER` takes no `timeInForce` (FACTS.md §4.1).
fn push_order(p: &mut Vec<(&'static str, Param)>, o: &NewOrder) {
    let s = |v: &str| Param::Str(v.to_string());
    p.push(("side", s(side_str(o.side))));
    p.push(("type", s("LIMIT_MAKER")));
    p.push(("quantity", Param::Str(o.qty.to_string())));
    p.push(("price", Param::Str(o.price.to_string())));
    p.push(("newClientOrderId", s(o.client_id.as_str())));
    p.push(("newOrderRespType", s("RESULT")));
    p.push(("selfTradePreventionMode", s(o.stp.as_str())));
}

/// How a signed request proves who sent it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// The session is logged on (Ed25519 `session.logon`): `timestamp`
    /// only (web-socket-api.md §Session Authentication).
    LoggedOn,
    /// `apiKey`, `timestamp` and `signature` on the request itself.
    Signed,
}

/// The request frame's text, and the `timestamp` it carries (ms, server
/// clock). `params` are the method's own; `recvWindow` and `timestamp` are
/// added, and with [`Auth::Signed`] also `apiKey` and the `signature` over
/// all of them sorted by name, not percent-encoded (FACTS.md §4.6).
pub fn frame(
    id: &str,
    method: &str,
    mut params: Vec<(&'static str, Param)>,
    auth: Auth,
    creds: &Credentials,
    recv_window_ms: u64,
    server_ms: i64,
) -> String {
    params.push(("recvWindow", Param::Int(recv_window_ms as i64)));
    params.push(("timestamp", Param::Int(server_ms)));
    if auth == Auth::Signed {
        params.push(("apiKey", Param::Str(creds.api_key().to_string())));
        let texts: Vec<(&str, String)> = params.iter().map(|(k, v)| (*k, v.text())).collect();
        let pairs: Vec<(&str, &str)> = texts.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let sig = creds.signer().ws_signature(ws_api_payload(&pairs).as_bytes());
        params.push(("signature", Param::Str(sig)));
    }
    let mut obj = Map::new();
    for (k, v) in &params {
        obj.insert((*k).to_string(), v.json());
    }
    let mut req = Map::new();
    req.insert("id".into(), Value::String(id.to_string()));
    req.insert("method".into(), Value::String(method.to_string()));
    req.insert("params".into(), Value::Object(obj));
    Value::Object(req).to_string()
}

/// This machine's clock, ms since the epoch.
pub fn wall_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// A request with no parameters (`userDataStream.subscribe`).
pub fn bare_frame(id: &str, method: &str) -> String {
    serde_json::json!({ "id": id, "method": method }).to_string()
}

/// Reads a successful `result` as the call's [`Reply`].
pub fn parse_result(call: &Call, ep: Endpoint, result: &Value) -> Result<Reply, BinanceError> {
    let unreadable = |why: String| errors::unknown(ep, format!("the answer could not be read: {why}"));
    let order = |v: &Value| Order::from_value(v.clone()).map_err(|e| unreadable(e.to_string()));
    let list = |v: &Value| -> Result<Vec<Order>, BinanceError> {
        let items = v.as_array().ok_or_else(|| unreadable("expected an array of orders".into()))?;
        // An order list's report has no `orderId`: not one of ours.
        items.iter().filter(|o| o.get("orderId").is_some()).map(order).collect()
    };
    match call {
        Call::Place(_) | Call::Cancel(_) | Call::Query { .. } => order(result).map(Reply::Order),
        Call::Test(_) => Ok(Reply::Tested),
        Call::CancelReplace { .. } => {
            let half = |k: &str| result.get(k).ok_or_else(|| unreadable(format!("no {k}"))).and_then(order);
            Ok(Reply::Replaced(Replaced { canceled: half("cancelResponse")?, placed: half("newOrderResponse")? }))
        }
        Call::OpenOrders | Call::CancelAll => list(result).map(Reply::Orders),
        Call::Account => {
            Account::parse(result.to_string().as_bytes()).map(Reply::Account).map_err(|e| unreadable(e.to_string()))
        }
        Call::MyTrades { .. } => {
            MyTrade::parse_list(result.to_string().as_bytes()).map(Reply::Trades).map_err(unreadable)
        }
        Call::SyncClock => {
            // Only REST measures the clock (the gateway routes it there);
            // this reads a WS-API `time` answer the same way, roughly.
            let t =
                result.get("serverTime").and_then(Value::as_i64).ok_or_else(|| unreadable("no serverTime".into()))?;
            Ok(Reply::Clock { offset_ms: t.saturating_sub(wall_ms()) })
        }
    }
}

/// An error answer `{"status":4xx/5xx,"error":{"code","msg","data"?}}` as
/// the same [`BinanceError`] the REST client gives for the same HTTP status
/// and body: the `error` object has the REST error body's shape
/// (web-socket-api.md §Response format, §Status codes). `retryAfter` in
/// `error.data` is an epoch time in ms (§IP limits), turned into a wait
/// from `server_now_ms`.
pub fn parse_error(ep: Endpoint, status: u16, error: Option<&Value>, server_now_ms: i64) -> BinanceError {
    let body = error.map(|e| e.to_string()).unwrap_or_default();
    let retry_after = error
        .and_then(|e| e.get("data"))
        .and_then(|d| d.get("retryAfter"))
        .and_then(Value::as_i64)
        .map(|t| Duration::from_millis(t.saturating_sub(server_now_ms).max(0) as u64));
    errors::from_response(ep, status, body.as_bytes(), retry_after)
}

/// Tells the guard what the answer said about the IP's limits: each
/// `rateLimits` entry as the matching REST usage header (web-socket-api.md
/// §How to interpret rate limits), and a 429 or 418.
pub fn report_to_guard(guard: &IpGuard, answer: &Value, err: Option<&BinanceError>) {
    for l in answer.get("rateLimits").and_then(Value::as_array).into_iter().flatten() {
        let kind = l.get("rateLimitType").and_then(Value::as_str);
        let unit = match l.get("interval").and_then(Value::as_str) {
            Some("SECOND") => 'S',
            Some("MINUTE") => 'M',
            Some("HOUR") => 'H',
            Some("DAY") => 'D',
            _ => continue,
        };
        let (Some(num), Some(count)) =
            (l.get("intervalNum").and_then(Value::as_u64), l.get("count").and_then(Value::as_u64))
        else {
            continue;
        };
        let header = match kind {
            Some("REQUEST_WEIGHT") => format!("x-mbx-used-weight-{num}{unit}"),
            Some("ORDERS") => format!("x-mbx-order-count-{num}{unit}"),
            _ => continue,
        };
        guard.observe_header(&header, &count.to_string());
    }
    match err {
        Some(BinanceError::RateLimited { retry_after, api, .. }) => {
            guard.on_rate_limited(api.code == -1015, *retry_after)
        }
        Some(BinanceError::Banned { retry_after, .. }) => guard.on_banned(*retry_after),
        _ => {}
    }
}

/// A refusal by the guard as the error the caller acts on (nothing sent),
/// exactly as the REST client maps it.
pub fn refused(ep: Endpoint, r: &crate::ipguard::Refusal) -> BinanceError {
    crate::exec::binance::rest::refused(ep, r.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::binance::gateway::StpMode;
    use crate::exec::binance::rest::ClientOrderId;
    use crate::exec::Side;
    use crate::hot::fixed::Qty;

    #[test]
    fn hmac_requests_are_signed_like_the_docs_example() {
        // web-socket-api.md §SIGNED request example (HMAC): the docs' key,
        // parameters and timestamp give the docs' signature.
        let creds = Credentials::hmac(
            "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A",
            "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j",
        )
        .unwrap();
        let s = |v: &str| Param::Str(v.into());
        let params = vec![
            ("symbol", s("BTCUSDT")),
            ("side", s("SELL")),
            ("type", s("LIMIT")),
            ("timeInForce", s("GTC")),
            ("quantity", s("0.01000000")),
            ("price", s("52000.00")),
        ];
        let f = frame("1", "order.place", params, Auth::Signed, &creds, 100, 1645423376532);
        let v: Value = serde_json::from_str(&f).unwrap();
        assert_eq!(v["params"]["signature"], "aa1b5712c094bc4e57c05a1a5c1fd8d88dcd628338ea863fec7b88e59fe2db24");
        assert_eq!(v["params"]["timestamp"], 1645423376532i64);
        let f = frame("2", "order.place", vec![], Auth::LoggedOn, &creds, 100, 7);
        let v: Value = serde_json::from_str(&f).unwrap();
        assert!(v["params"].get("signature").is_none() && v["params"].get("apiKey").is_none());
    }

    #[test]
    fn order_params_are_limit_maker_with_stp() {
        let o = NewOrder {
            side: Side::Buy,
            price: "100.5".parse().unwrap(),
            qty: Qty(1),
            client_id: ClientOrderId::new("mm-1").unwrap(),
            stp: StpMode::ExpireMaker,
        };
        let p = call_params(&Call::CancelReplace { cancel: Target::OrderId(9), new: o }, "BTCUSDT", None);
        let get = |k: &str| p.iter().find(|(n, _)| *n == k).map(|(_, v)| v.text());
        assert_eq!(get("type").as_deref(), Some("LIMIT_MAKER"));
        assert_eq!(get("price").as_deref(), Some("100.5"));
        assert_eq!(get("quantity").as_deref(), Some("0.00000001"));
        assert_eq!(get("cancelOrderId").as_deref(), Some("9"));
        assert_eq!(get("selfTradePreventionMode").as_deref(), Some("EXPIRE_MAKER"));
        assert_eq!(get("orderRateLimitExceededMode").as_deref(), Some("CANCEL_ONLY"));
        assert_eq!(get("timeInForce"), None);
    }

    #[test]
    fn error_answers_map_like_rest() {
        let ep = method_info(&Call::CancelAll).endpoint;
        let e: Value =
            serde_json::json!({"code": -1003, "msg": "banned", "data": {"serverTime": 1, "retryAfter": 61_000}});
        match parse_error(ep, 418, Some(&e), 1_000) {
            BinanceError::Banned { retry_after, .. } => assert_eq!(retry_after, Duration::from_secs(60)),
            other => panic!("{other:?}"),
        }
        let e: Value = serde_json::json!({"code": -2010, "msg": "Order would immediately match and take."});
        assert!(matches!(parse_error(ep, 400, Some(&e), 0), BinanceError::WouldTake { .. }));
        assert!(parse_error(ep, 503, None, 0).fate_unknown());
    }
}

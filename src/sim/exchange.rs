//! The simulator's trading side: a Binance spot double that accepts signed
//! orders, rests them against the simulated market and fills them from its
//! trades, so the live-trading path (signing, clock sync, error actions,
//! fills, the user-data stream, the journal) can be tested without the
//! internet and without real money.
//!
//! [`Exchange`] holds the accounts ([`SimAccount`] configures one: an API
//! key with an HMAC secret or an Ed25519 public key, balances and a
//! commission rate), their orders ([`SimOrder`]) and fills ([`SimFill`]).
//! [`Exchange::handle`] answers the REST trading endpoints exactly as
//! binance/FACTS.md sections 4 and 5 describe them (codes, messages, HTTP
//! statuses, response types, rate-limit headers), `myTrades` included, so
//! fills missed on the stream can be recovered; [`WsSession`] answers the
//! WebSocket API's `userDataStream.subscribe.signature` and pushes
//! `executionReport`, `outboundAccountPosition` and `balanceUpdate`.
//!
//! Matching: only `LIMIT_MAKER` exists here (it is all mmbot sends). A
//! resting order fills when a market trade trades *through* its price (the
//! aggressor would have reached it first), or *at* its price once the
//! quantity that was on that level when the order arrived (its queue) has
//! been traded away. A trade's quantity is shared among our orders, so one
//! trade never fills more than it printed. Fills may be partial.
//!
//! Money: a BUY locks `price x qty` of quote (rounded up); a SELL locks the
//! base quantity. Each fill moves the locked amount out, credits the other
//! asset and charges `commission x notional` in the quote asset (a
//! simplification: Binance charges a buyer in the base asset). Placing a
//! BUY also needs free quote for the worst-case commission on top.
//!
//! This is a test double: it locks freely, allocates freely and answers
//! anything a client sends without panicking.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::Mutex;
use std::time::Duration;

use base64::Engine as _;

use crate::exec::binance::filters::{LotSize, NotionalFilter, NotionalKind, PriceFilter, SymbolRules, SymbolStatus};
use crate::exec::binance::model::OrderStatus;
use crate::exec::binance::sign::{ws_api_payload, HmacKey};
use crate::exec::Side;
use crate::hot::fixed::{mul_rate, notional, notional_ceil, Price, Qty, SCALE};
use crate::sim::faults::Faults;
use crate::sim::market::TrueBook;

/// How an account's requests are authenticated.
#[derive(Clone, PartialEq, Eq)]
pub enum SimKey {
    /// The HMAC secret (the signature is its hex HMAC-SHA256).
    Hmac(String),
    /// The raw 32-byte Ed25519 public key (the signature is base64).
    Ed25519(Vec<u8>),
}

impl std::fmt::Debug for SimKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Even a test secret is not printed: logs get pasted into issues.
        match self {
            Self::Hmac(_) => f.write_str("SimKey::Hmac(..)"),
            Self::Ed25519(_) => f.write_str("SimKey::Ed25519(..)"),
        }
    }
}

/// One simulated account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimAccount {
    /// What the client sends in `X-MBX-APIKEY`.
    pub api_key: String,
    pub key: SimKey,
    /// Starting free balances, e.g. `[("BTC", 1 BTC), ("USDT", 10000 USDT)]`.
    pub balances: Vec<(String, Qty)>,
    /// Maker commission rate in fixed-point (0.001 = 100_000).
    pub commission: i64,
}

impl SimAccount {
    /// An HMAC account with `balances` given as decimal strings.
    pub fn hmac(api_key: &str, secret: &str, balances: &[(&str, &str)], commission: &str) -> Self {
        Self {
            api_key: api_key.into(),
            key: SimKey::Hmac(secret.into()),
            balances: balances.iter().map(|(a, v)| ((*a).into(), v.parse().unwrap_or(Qty::ZERO))).collect(),
            commission: commission.parse::<Qty>().map(|q| q.0).unwrap_or(0),
        }
    }
}

/// One asset's balance as the exchange holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimBalance {
    pub asset: String,
    pub free: Qty,
    pub locked: Qty,
}

/// One order as the exchange holds it (open or not).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimOrder {
    pub symbol: String,
    pub order_id: u64,
    pub client_order_id: String,
    pub side: Side,
    pub price: Price,
    pub orig_qty: Qty,
    pub executed_qty: Qty,
    /// Sum of price x quantity filled (quote, 1e-8).
    pub cum_quote: i64,
    pub status: OrderStatus,
    pub time_ms: i64,
    pub update_ms: i64,
}

/// One fill of one of our orders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimFill {
    pub symbol: String,
    pub order_id: u64,
    pub client_order_id: String,
    pub side: Side,
    pub price: Price,
    pub qty: Qty,
    /// Charged in [`SimFill::commission_asset`] (the quote asset).
    pub commission: i64,
    pub commission_asset: String,
    pub trade_id: u64,
    pub time_ms: i64,
}

/// A refusal as Binance words it: HTTP status, code and message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("HTTP {status}: {code} {msg}")]
pub struct ApiError {
    pub status: u16,
    pub code: i64,
    pub msg: String,
}

impl ApiError {
    fn new(status: u16, code: i64, msg: impl Into<String>) -> Self {
        Self { status, code, msg: msg.into() }
    }

    /// The HTTP body; cancelReplace errors carry their halves after a NUL
    /// in `msg` (see `Exchange::cancel_replace`) and get them as `data`.
    pub fn body(&self) -> String {
        match self.msg.split_once('\u{0}') {
            Some((msg, data)) => format!("{{\"code\":{},\"msg\":{},\"data\":{data}}}", self.code, json_str(msg)),
            None => format!("{{\"code\":{},\"msg\":{}}}", self.code, json_str(&self.msg)),
        }
    }
}

fn bad(code: i64, msg: impl Into<String>) -> ApiError {
    ApiError::new(400, code, msg)
}

fn mandatory(name: &str) -> ApiError {
    bad(-1102, format!("Mandatory parameter '{name}' was not sent, was empty/null, or malformed."))
}

/// An HTTP request the exchange may answer.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub method: &'a str,
    /// The path without the query.
    pub route: &'a str,
    /// The raw query string (after `?`), as received.
    pub query: &'a str,
    /// The raw body (form-encoded parameters, if any).
    pub body: &'a str,
    pub api_key: Option<&'a str>,
}

/// The answer to one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub body: String,
    /// Extra header lines, each ending in `\r\n`.
    pub headers: String,
    /// Hold the answer this long (the timeout fault; the order is placed).
    pub delay: Duration,
}

/// A symbol the exchange trades.
struct Market {
    name: String,
    base: String,
    quote: String,
    rules: SymbolRules,
}

/// What an order keeps besides its public state.
struct OrderState {
    order: SimOrder,
    /// Quantity ahead of us at our price (the book's level when we arrived),
    /// consumed by trades at our price before we fill.
    queue_ahead: i64,
    /// What is still locked for this order (quote for a BUY, base for a SELL).
    locked: i64,
}

struct Account {
    cfg: SimAccount,
    /// asset -> (free, locked), 1e-8.
    balances: BTreeMap<String, (i64, i64)>,
    orders: Vec<OrderState>,
    fills: Vec<SimFill>,
    /// User-data subscribers: raw event JSON goes to each.
    subs: Vec<SyncSender<String>>,
    /// Orders placed in the current 10 s window: (window, count).
    order_count: (i64, u64),
    /// The most orders this account ever had open at once.
    max_open: usize,
}

struct Inner {
    accounts: Vec<Account>,
    next_order_id: u64,
    next_trade_id: u64,
    next_exec_id: u64,
    /// Order requests so far (the every-Nth faults count these).
    order_requests: u64,
    /// Request weight in the current minute: (minute, weight).
    weight: (i64, u64),
    /// An IP ban (the 418 fault) lasts until this exchange time, ms.
    banned_until_ms: i64,
    /// Trading requests that arrived during a ban (a client that honours
    /// `Retry-After` sends none).
    requests_during_ban: u64,
}

/// The trading side of the simulator. Shared by every connection thread
/// and the market thread; all state is under one lock.
pub struct Exchange {
    markets: Vec<Market>,
    faults: Faults,
    inner: Mutex<Inner>,
}

/// The order types offered (exchangeInfo `orderTypes`).
pub const ORDER_TYPES: &str = r#"["LIMIT_MAKER"]"#;

/// Events queued per user-data subscriber before it counts as too slow.
const SUB_QUEUE: usize = 4096;

impl Exchange {
    pub fn new(symbols: &[String], accounts: &[SimAccount], faults: Faults) -> Self {
        let markets = symbols.iter().map(|s| market_for(s)).collect();
        let accounts = accounts
            .iter()
            .map(|a| {
                let mut balances = BTreeMap::new();
                for (asset, q) in &a.balances {
                    balances.insert(asset.to_ascii_uppercase(), (q.0, 0));
                }
                Account {
                    cfg: a.clone(),
                    balances,
                    orders: Vec::new(),
                    fills: Vec::new(),
                    subs: Vec::new(),
                    order_count: (0, 0),
                    max_open: 0,
                }
            })
            .collect();
        Self {
            markets,
            faults,
            inner: Mutex::new(Inner {
                accounts,
                next_order_id: 1,
                next_trade_id: 1,
                next_exec_id: 1,
                order_requests: 0,
                weight: (0, 0),
                banned_until_ms: 0,
                requests_during_ban: 0,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The exchange's clock: the wall clock plus the clock-offset fault.
    pub fn now_ms(&self) -> i64 {
        crate::feed::snapshot::wall_ns() / 1_000_000 + self.faults.clock_offset_ms
    }

    /// Adds `weight` to the minute's request weight; the header to send.
    pub fn weigh(&self, weight: u64) -> String {
        let minute = self.now_ms().div_euclid(60_000);
        let mut g = self.lock();
        if g.weight.0 != minute {
            g.weight = (minute, 0);
        }
        g.weight.1 += weight;
        format!("X-MBX-USED-WEIGHT-1M: {}\r\n", g.weight.1)
    }

    /// Balances of the account with `api_key` (`None`: no such account).
    pub fn account(&self, api_key: &str) -> Option<Vec<SimBalance>> {
        let g = self.lock();
        let a = g.accounts.iter().find(|a| a.cfg.api_key == api_key)?;
        Some(
            a.balances
                .iter()
                .map(|(k, &(f, l))| SimBalance { asset: k.clone(), free: Qty(f), locked: Qty(l) })
                .collect(),
        )
    }

    /// Open orders of the account with `api_key`.
    pub fn orders(&self, api_key: &str) -> Vec<SimOrder> {
        let g = self.lock();
        g.accounts
            .iter()
            .find(|a| a.cfg.api_key == api_key)
            .map(|a| a.orders.iter().filter(|o| o.order.status.is_open()).map(|o| o.order.clone()).collect())
            .unwrap_or_default()
    }

    /// Every order the account with `api_key` ever placed, open or not,
    /// oldest first.
    pub fn all_orders(&self, api_key: &str) -> Vec<SimOrder> {
        let g = self.lock();
        g.accounts
            .iter()
            .find(|a| a.cfg.api_key == api_key)
            .map(|a| a.orders.iter().map(|o| o.order.clone()).collect())
            .unwrap_or_default()
    }

    /// The most orders the account with `api_key` ever had open at once.
    pub fn max_open_orders(&self, api_key: &str) -> usize {
        let g = self.lock();
        g.accounts.iter().find(|a| a.cfg.api_key == api_key).map_or(0, |a| a.max_open)
    }

    /// Trading requests that arrived while the IP was banned.
    pub fn requests_during_ban(&self) -> u64 {
        self.lock().requests_during_ban
    }

    /// Every fill of the account with `api_key`, oldest first.
    pub fn fills(&self, api_key: &str) -> Vec<SimFill> {
        let g = self.lock();
        g.accounts.iter().find(|a| a.cfg.api_key == api_key).map(|a| a.fills.clone()).unwrap_or_default()
    }

    /// Credits (or debits) `delta` of `asset` to the account, as a deposit
    /// or withdrawal would: sends `balanceUpdate` and the new position.
    pub fn adjust_balance(&self, api_key: &str, asset: &str, delta: i64) -> bool {
        let now = self.now_ms();
        let mut g = self.lock();
        let Some(a) = g.accounts.iter_mut().find(|a| a.cfg.api_key == api_key) else { return false };
        let asset = asset.to_ascii_uppercase();
        let b = a.balances.entry(asset.clone()).or_insert((0, 0));
        b.0 = b.0.saturating_add(delta);
        let ev =
            format!("{{\"e\":\"balanceUpdate\",\"E\":{now},\"a\":\"{asset}\",\"d\":\"{}\",\"T\":{now}}}", fmt8(delta));
        push(a, ev);
        position(a, &[asset.as_str()], now);
        true
    }

    /// Answers a REST trading request; `None` when `route` is not one.
    /// `book` gives the true book of a symbol (for would-take and queues).
    pub fn handle(&self, req: &Request<'_>, book: &dyn Fn(&str) -> Option<TrueBook>) -> Option<Reply> {
        let (weight, order_request) = match (req.method, req.route) {
            ("POST", "/api/v3/order") => (1, true),
            ("POST", "/api/v3/order/test") => (1, false),
            ("DELETE", "/api/v3/order") => (1, false),
            ("GET", "/api/v3/order") => (4, false),
            ("POST", "/api/v3/order/cancelReplace") => (1, true),
            ("GET", "/api/v3/openOrders") => (6, false),
            ("DELETE", "/api/v3/openOrders") => (1, false),
            ("GET", "/api/v3/account") => (20, false),
            ("GET", "/api/v3/myTrades") => (5, false),
            _ => return None,
        };
        let mut headers = self.weigh(weight);
        let mut delay = Duration::ZERO;
        let mut after = None;
        {
            let now = self.now_ms();
            let mut g = self.lock();
            if now < g.banned_until_ms {
                // Asking during a ban is what gets real IPs banned longer;
                // here it is counted, and refused like the first request.
                g.requests_during_ban += 1;
                let left_s = (g.banned_until_ms - now + 999) / 1000;
                headers.push_str(&format!("Retry-After: {left_s}\r\n"));
                let e = ApiError::new(418, -1003, "Way too much request weight used; IP banned (simulated)");
                return Some(Reply { status: 418, body: e.body(), headers, delay });
            }
        }
        if order_request {
            let n = {
                let mut g = self.lock();
                g.order_requests += 1;
                g.order_requests
            };
            let f = &self.faults;
            let every = |k: u64| k > 0 && n.is_multiple_of(k);
            // Rate limits are enforced before anything reaches the engine.
            if every(f.ban_order_every) {
                let ban = f.ban_duration();
                let until = self.now_ms() + ban.as_millis() as i64;
                self.lock().banned_until_ms = until;
                headers.push_str(&format!("Retry-After: {}\r\n", ban.as_millis().div_ceil(1000)));
                let e = ApiError::new(
                    418,
                    -1003,
                    format!("Way too much request weight used; IP banned until {until}. (simulated)"),
                );
                return Some(Reply { status: 418, body: e.body(), headers, delay });
            }
            if every(f.throttle_order_every) {
                headers.push_str("Retry-After: 1\r\n");
                let e = ApiError::new(429, -1015, "Too many new orders; current limit is 50 orders per 10 SECOND.");
                return Some(Reply { status: 429, body: e.body(), headers, delay });
            }
            if every(f.error_after_order_every) {
                after = Some(ApiError::new(
                    503,
                    -1001,
                    "Internal error; unable to process your request. Please try again.",
                ));
            }
            if every(f.delay_order_every) {
                delay = f.order_delay;
            }
        }
        let params = Params::parse(req.query, req.body);
        let result = self.authenticate(req, &params).and_then(|acct| self.route(req, &params, acct, book));
        let (status, body, extra) = match result {
            Ok((body, extra)) => (200, body, extra),
            Err(e) => (e.status, e.body(), String::new()),
        };
        headers.push_str(&extra);
        // The 5xx fault answers after the request took effect.
        let (status, body) = match after {
            Some(e) => (e.status, e.body()),
            None => (status, body),
        };
        Some(Reply { status, body, headers, delay })
    }

    /// Checks key, timestamp and signature; the account's index.
    fn authenticate(&self, req: &Request<'_>, p: &Params) -> Result<usize, ApiError> {
        let invalid_key = || ApiError::new(401, -2015, "Invalid API-key, IP, or permissions for action.");
        let key = req.api_key.ok_or_else(invalid_key)?;
        let (idx, secret) = {
            let g = self.lock();
            let i = g.accounts.iter().position(|a| a.cfg.api_key == key).ok_or_else(invalid_key)?;
            (i, g.accounts[i].cfg.key.clone())
        };
        check_time(p.get("timestamp"), p.get("recvWindow"), self.now_ms())?;
        let sig = p.get("signature").ok_or_else(|| mandatory("signature"))?;
        let payload = signed_payload(req.query, req.body);
        if !verify(&secret, payload.as_bytes(), sig) {
            return Err(bad(-1022, "Signature for this request is not valid."));
        }
        Ok(idx)
    }

    fn route(
        &self,
        req: &Request<'_>,
        p: &Params,
        acct: usize,
        book: &dyn Fn(&str) -> Option<TrueBook>,
    ) -> Result<(String, String), ApiError> {
        let now = self.now_ms();
        match (req.method, req.route) {
            ("POST", "/api/v3/order") => {
                let new = self.parse_new(p, "newClientOrderId")?;
                let top = book(&self.markets[new.market].name);
                let mut g = self.lock();
                let (body, _) = self.place(&mut g, acct, &new, top.as_ref(), now)?;
                let count = count_order(&mut g.accounts[acct], now);
                Ok((body, format!("X-MBX-ORDER-COUNT-10S: {count}\r\n")))
            }
            ("POST", "/api/v3/order/test") => {
                let new = self.parse_new(p, "newClientOrderId")?;
                let top = book(&self.markets[new.market].name);
                let g = self.lock();
                self.check_new(&g.accounts[acct], &new, top.as_ref())?;
                Ok(("{}".into(), String::new()))
            }
            ("DELETE", "/api/v3/order") => {
                let m = self.market_param(p)?;
                let target = order_ref(p, "orderId", "origClientOrderId")?;
                let mut g = self.lock();
                let body = self.cancel(&mut g, acct, m, &target, p.get("newClientOrderId"), now)?;
                Ok((body, String::new()))
            }
            ("GET", "/api/v3/order") => {
                let m = self.market_param(p)?;
                let target = order_ref(p, "orderId", "origClientOrderId")?;
                let g = self.lock();
                let a = &g.accounts[acct];
                let o = find(a, &self.markets[m].name, &target, false)
                    .ok_or_else(|| bad(-2013, "Order does not exist."))?;
                Ok((query_json(&a.orders[o].order), String::new()))
            }
            ("POST", "/api/v3/order/cancelReplace") => self.cancel_replace(p, acct, book, now),
            ("GET", "/api/v3/myTrades") => {
                let m = self.market_param(p)?;
                let order_id = match p.get("orderId") {
                    Some(v) => Some(v.parse::<u64>().map_err(|_| mandatory("orderId"))?),
                    None => None,
                };
                let limit = match p.get("limit") {
                    Some(v) => v.parse::<usize>().ok().filter(|l| (1..=1000).contains(l)).ok_or_else(|| {
                        bad(-1100, "Illegal characters found in parameter 'limit'; legal range is '1..1000'.")
                    })?,
                    None => 500,
                };
                let g = self.lock();
                let name = &self.markets[m].name;
                let list: Vec<String> = g.accounts[acct]
                    .fills
                    .iter()
                    .filter(|f| &f.symbol == name && order_id.is_none_or(|id| f.order_id == id))
                    .take(limit)
                    .map(my_trade_json)
                    .collect();
                Ok((format!("[{}]", list.join(",")), String::new()))
            }
            ("GET", "/api/v3/openOrders") => {
                let sym = match p.get("symbol") {
                    Some(_) => Some(self.markets[self.market_param(p)?].name.clone()),
                    None => None,
                };
                let g = self.lock();
                let list: Vec<String> = g.accounts[acct]
                    .orders
                    .iter()
                    .filter(|o| o.order.status.is_open() && sym.as_ref().is_none_or(|s| *s == o.order.symbol))
                    .map(|o| query_json(&o.order))
                    .collect();
                Ok((format!("[{}]", list.join(",")), String::new()))
            }
            ("DELETE", "/api/v3/openOrders") => {
                let m = self.market_param(p)?;
                let mut g = self.lock();
                let ids: Vec<u64> = g.accounts[acct]
                    .orders
                    .iter()
                    .filter(|o| o.order.status.is_open() && o.order.symbol == self.markets[m].name)
                    .map(|o| o.order.order_id)
                    .collect();
                if ids.is_empty() {
                    return Err(bad(-2011, "Unknown order sent."));
                }
                let mut out = Vec::new();
                for id in ids {
                    out.push(self.cancel(&mut g, acct, m, &OrderRef::Id(id), None, now)?);
                }
                Ok((format!("[{}]", out.join(",")), String::new()))
            }
            ("GET", "/api/v3/account") => {
                let g = self.lock();
                Ok((account_json(&g.accounts[acct], p.get("omitZeroBalances") == Some("true"), now), String::new()))
            }
            _ => Err(ApiError::new(404, -1000, "Unknown endpoint.")),
        }
    }

    fn market_param(&self, p: &Params) -> Result<usize, ApiError> {
        let s = p.get("symbol").ok_or_else(|| mandatory("symbol"))?;
        self.markets.iter().position(|m| m.name == s).ok_or_else(|| bad(-1121, "Invalid symbol."))
    }

    /// Reads a new order's parameters (`id_name`: where its client id is).
    fn parse_new(&self, p: &Params, id_name: &str) -> Result<NewOrder, ApiError> {
        let market = self.market_param(p)?;
        let side = match p.get("side").ok_or_else(|| mandatory("side"))? {
            "BUY" => Side::Buy,
            "SELL" => Side::Sell,
            _ => return Err(bad(-1102, "Invalid side.")),
        };
        match p.get("type").ok_or_else(|| mandatory("type"))? {
            "LIMIT_MAKER" => {}
            _ => return Err(bad(-1116, "Invalid orderType.")),
        }
        if p.get("timeInForce").is_some() {
            return Err(bad(-1106, "Parameter 'timeInForce' sent when not required."));
        }
        let dec = |name: &str| -> Result<i64, ApiError> {
            let v = p.get(name).ok_or_else(|| mandatory(name))?;
            v.parse::<Qty>().map(|q| q.0).map_err(|_| {
                bad(
                    -1100,
                    format!("Illegal characters found in parameter '{name}'; legal range is '^([0-9]{{1,20}})(\\.[0-9]{{1,20}})?$'."),
                )
            })
        };
        let qty = dec("quantity")?;
        let price = dec("price")?;
        let client_id = match p.get(id_name) {
            Some(id) if id.is_empty() || id.len() > 36 => {
                return Err(bad(-1100, format!("Illegal characters found in parameter '{id_name}'.")))
            }
            Some(id) => Some(id.to_string()),
            None => None,
        };
        let resp = match p.get("newOrderRespType") {
            None | Some("ACK") => RespType::Ack,
            Some("RESULT") => RespType::Result,
            Some("FULL") => RespType::Full,
            Some(_) => return Err(bad(-1100, "Illegal characters found in parameter 'newOrderRespType'.")),
        };
        Ok(NewOrder { market, side, price, qty, client_id, resp })
    }

    /// Filters, would-take, duplicate id, balance: everything that refuses
    /// an order before it rests.
    fn check_new(&self, a: &Account, n: &NewOrder, top: Option<&TrueBook>) -> Result<(), ApiError> {
        let m = &self.markets[n.market];
        if let Err(v) = m.rules.check(n.side, Price(n.price), Qty(n.qty)) {
            return Err(bad(-1013, format!("Filter failure: {}", v.filter())));
        }
        if let Some(id) = &n.client_id {
            if a.orders.iter().any(|o| o.order.status.is_open() && o.order.client_order_id == *id) {
                return Err(bad(-2010, "Duplicate order sent."));
            }
        }
        if let Some(b) = top {
            let takes = match n.side {
                Side::Buy => b.asks.first().is_some_and(|&(p, _)| n.price >= p),
                Side::Sell => b.bids.first().is_some_and(|&(p, _)| n.price <= p),
            };
            if takes {
                return Err(bad(-2010, "Order would immediately match and take."));
            }
        }
        let (asset, need) = lock_for(m, n, a.cfg.commission);
        let free = a.balances.get(asset).map_or(0, |b| b.0);
        if free < need.1 {
            return Err(bad(-2010, "Account has insufficient balance for requested action."));
        }
        Ok(())
    }

    /// Places a checked order: (answer body, the order's id).
    fn place(
        &self,
        g: &mut Inner,
        acct: usize,
        n: &NewOrder,
        top: Option<&TrueBook>,
        now: i64,
    ) -> Result<(String, u64), ApiError> {
        self.check_new(&g.accounts[acct], n, top)?;
        let m = &self.markets[n.market];
        let order_id = g.next_order_id;
        g.next_order_id += 1;
        let client_id = n.client_id.clone().unwrap_or_else(|| format!("sim-{order_id}"));
        let (asset, (lock, _)) = lock_for(m, n, g.accounts[acct].cfg.commission);
        let queue_ahead = top
            .and_then(|b| {
                let side = if n.side == Side::Buy { &b.bids } else { &b.asks };
                side.iter().find(|&&(p, _)| p == n.price).map(|&(_, q)| q)
            })
            .unwrap_or(0);
        let order = SimOrder {
            symbol: m.name.clone(),
            order_id,
            client_order_id: client_id,
            side: n.side,
            price: Price(n.price),
            orig_qty: Qty(n.qty),
            executed_qty: Qty::ZERO,
            cum_quote: 0,
            status: OrderStatus::New,
            time_ms: now,
            update_ms: now,
        };
        let exec_id = next_exec(g);
        let a = &mut g.accounts[acct];
        let b = a.balances.entry(asset.to_string()).or_insert((0, 0));
        b.0 -= lock;
        b.1 += lock;
        let body = order_json(&order, n.resp, now);
        push(a, execution_report(&order, &Exec::new("NEW", exec_id, now)));
        a.orders.push(OrderState { order, queue_ahead, locked: lock });
        let open = a.orders.iter().filter(|o| o.order.status.is_open()).count();
        a.max_open = a.max_open.max(open);
        position(a, &[asset], now);
        Ok((body, order_id))
    }

    /// Cancels one open order: the cancel answer's body.
    fn cancel(
        &self,
        g: &mut Inner,
        acct: usize,
        m: usize,
        target: &OrderRef,
        new_client_id: Option<&str>,
        now: i64,
    ) -> Result<String, ApiError> {
        let market = &self.markets[m];
        let exec_id = next_exec(g);
        let cancel_id = new_client_id.map_or_else(|| format!("sim-cancel-{exec_id}"), str::to_string);
        let a = &mut g.accounts[acct];
        let i = find(a, &market.name, target, true).ok_or_else(|| bad(-2011, "Unknown order sent."))?;
        let o = &mut a.orders[i];
        o.order.status = OrderStatus::Canceled;
        o.order.update_ms = now;
        let asset = release(&mut a.balances, market, o);
        let order = a.orders[i].order.clone();
        let mut ex = Exec::new("CANCELED", exec_id, now);
        ex.cancel_id = Some(cancel_id.clone());
        push(a, execution_report(&order, &ex));
        position(a, &[asset], now);
        Ok(cancel_json(&order, &cancel_id, now))
    }

    fn cancel_replace(
        &self,
        p: &Params,
        acct: usize,
        book: &dyn Fn(&str) -> Option<TrueBook>,
        now: i64,
    ) -> Result<(String, String), ApiError> {
        let allow_failure = match p.get("cancelReplaceMode").ok_or_else(|| mandatory("cancelReplaceMode"))? {
            "STOP_ON_FAILURE" => false,
            "ALLOW_FAILURE" => true,
            _ => return Err(bad(-1100, "Illegal characters found in parameter 'cancelReplaceMode'.")),
        };
        let target = order_ref(p, "cancelOrderId", "cancelOrigClientOrderId")?;
        let new = self.parse_new(p, "newClientOrderId")?;
        let top = book(&self.markets[new.market].name);
        let mut g = self.lock();
        let canceled = self.cancel(&mut g, acct, new.market, &target, p.get("cancelNewClientOrderId"), now);
        let placed = if canceled.is_ok() || allow_failure {
            Some(self.place(&mut g, acct, &new, top.as_ref(), now).map(|(b, _)| b))
        } else {
            None
        };
        if matches!(placed, Some(Ok(_))) {
            let count = count_order(&mut g.accounts[acct], now);
            drop(g);
            if let (Ok(c), Some(Ok(n))) = (&canceled, &placed) {
                let body = format!(
                    "{{\"cancelResult\":\"SUCCESS\",\"newOrderResult\":\"SUCCESS\",\"cancelResponse\":{c},\"newOrderResponse\":{n}}}"
                );
                return Ok((body, format!("X-MBX-ORDER-COUNT-10S: {count}\r\n")));
            }
        }
        let half = |r: &Result<String, ApiError>| match r {
            Ok(b) => ("SUCCESS", b.clone()),
            Err(e) => ("FAILURE", e.body()),
        };
        let (cr, cb) = half(&canceled);
        let (nr, nb) = match &placed {
            Some(r) => half(r),
            None => ("NOT_ATTEMPTED", "null".to_string()),
        };
        let partial = cr == "SUCCESS" || nr == "SUCCESS";
        let (status, code, msg) = if partial {
            (409, -2021, "Order cancel-replace partially failed.")
        } else {
            (400, -2022, "Order cancel-replace failed.")
        };
        // The error carries both halves under "data", so it is built here
        // rather than through ApiError::body.
        Err(ApiError {
            status,
            code,
            msg: format!(
                "{msg}\u{0}{{\"cancelResult\":\"{cr}\",\"newOrderResult\":\"{nr}\",\"cancelResponse\":{cb},\"newOrderResponse\":{nb}}}"
            ),
        })
    }

    /// Feeds one market frame to the matching engine: trades fill resting
    /// orders. `symbol` indexes the simulator's symbols.
    pub fn on_trade(&self, symbol: usize, payload: &str) {
        let Some(m) = self.markets.get(symbol) else { return };
        let Ok(v) = serde_json::from_str::<serde_json::Value>(payload) else { return };
        let field = |k: &str| v.get(k).and_then(|x| x.as_str()).and_then(|s| s.parse::<Qty>().ok()).map(|q| q.0);
        let (Some(price), Some(mut avail)) = (field("p"), field("q")) else { return };
        // Buyer is maker: the aggressor sold into the bids.
        let hits_bids = v.get("m").and_then(|x| x.as_bool()).unwrap_or(false);
        let now = self.now_ms();
        let mut g = self.lock();
        let g = &mut *g;
        for a in &mut g.accounts {
            let mut touched = false;
            for i in 0..a.orders.len() {
                if avail <= 0 {
                    break;
                }
                let o = &mut a.orders[i];
                if !o.order.status.is_open() || o.order.symbol != m.name {
                    continue;
                }
                let ours = o.order.price.0;
                let (through, at) = match (o.order.side, hits_bids) {
                    (Side::Buy, true) => (price < ours, price == ours),
                    (Side::Sell, false) => (price > ours, price == ours),
                    _ => (false, false),
                };
                let mut can = 0;
                if through {
                    can = avail;
                } else if at {
                    let ahead = o.queue_ahead.min(avail);
                    o.queue_ahead -= ahead;
                    avail -= ahead;
                    can = avail;
                }
                let qty = can.min(o.order.orig_qty.0 - o.order.executed_qty.0);
                if qty <= 0 {
                    continue;
                }
                avail -= qty;
                touched = true;
                let trade_id = g.next_trade_id;
                g.next_trade_id += 1;
                let exec_id = g.next_exec_id;
                g.next_exec_id += 1;
                let fill = fill_order(&mut a.balances, m, o, qty, a.cfg.commission, trade_id, now);
                let order = o.order.clone();
                let mut ex = Exec::new("TRADE", exec_id, now);
                ex.fill = Some(fill.clone());
                push(a, execution_report(&order, &ex));
                a.fills.push(fill);
            }
            if touched {
                position(a, &[m.base.as_str(), m.quote.as_str()], now);
            }
        }
    }

    /// Answers one WebSocket API request on `session`: the reply text.
    pub fn ws_request(&self, text: &str, session: &mut WsSession) -> String {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(text) else {
            return ws_error("null", 400, -1100, "Malformed request.");
        };
        let id = v.get("id").map_or_else(|| "null".to_string(), |i| i.to_string());
        let method = v.get("method").and_then(|m| m.as_str()).unwrap_or("");
        let params = v.get("params").and_then(|p| p.as_object());
        match method {
            "ping" => format!("{{\"id\":{id},\"status\":200,\"result\":{{}}}}"),
            "time" => format!("{{\"id\":{id},\"status\":200,\"result\":{{\"serverTime\":{}}}}}", self.now_ms()),
            "userDataStream.subscribe.signature" => {
                let Some(params) = params else {
                    return ws_error(
                        &id,
                        400,
                        -1102,
                        "Mandatory parameter 'apiKey' was not sent, was empty/null, or malformed.",
                    );
                };
                match self.ws_subscribe(params, session) {
                    Ok(sub) => format!("{{\"id\":{id},\"status\":200,\"result\":{{\"subscriptionId\":{sub}}}}}"),
                    Err(e) => ws_error(&id, e.status, e.code, &e.msg),
                }
            }
            "userDataStream.unsubscribe" => {
                session.subs.clear();
                format!("{{\"id\":{id},\"status\":200,\"result\":{{}}}}")
            }
            "session.subscriptions" => {
                let list: Vec<String> =
                    session.subs.iter().map(|(s, _)| format!("{{\"subscriptionId\":{s}}}")).collect();
                format!("{{\"id\":{id},\"status\":200,\"result\":[{}]}}", list.join(","))
            }
            _ => ws_error(&id, 400, -1100, &format!("Unknown method {method:?}.")),
        }
    }

    fn ws_subscribe(
        &self,
        params: &serde_json::Map<String, serde_json::Value>,
        session: &mut WsSession,
    ) -> Result<u64, ApiError> {
        // Values as the client sent them: strings as-is, numbers printed.
        let vals: Vec<(String, String)> =
            params.iter().map(|(k, v)| (k.clone(), v.as_str().map_or_else(|| v.to_string(), str::to_string))).collect();
        let get = |k: &str| vals.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        let key = get("apiKey").ok_or_else(|| mandatory("apiKey"))?;
        let (idx, secret) = {
            let g = self.lock();
            let i = g
                .accounts
                .iter()
                .position(|a| a.cfg.api_key == key)
                .ok_or_else(|| ApiError::new(401, -2015, "Invalid API-key, IP, or permissions for action."))?;
            (i, g.accounts[i].cfg.key.clone())
        };
        check_time(get("timestamp"), get("recvWindow"), self.now_ms())?;
        let sig = get("signature").ok_or_else(|| mandatory("signature"))?;
        let signed: Vec<(&str, &str)> =
            vals.iter().filter(|(k, _)| k != "signature").map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let payload = ws_api_payload(&signed);
        // WS-API signatures are not percent-encoded, so verify the raw value.
        if !verify_raw(&secret, payload.as_bytes(), sig) {
            return Err(bad(-1022, "Signature for this request is not valid."));
        }
        if session.subs.iter().any(|(_, acct)| *acct == idx) {
            return Err(bad(-2035, "User Data Stream subscription already active."));
        }
        let (tx, rx) = std::sync::mpsc::sync_channel(SUB_QUEUE);
        self.lock().accounts[idx].subs.push(tx);
        let sub = session.next_sub;
        session.next_sub += 1;
        session.subs.push((sub, idx));
        session.rx.push((sub, rx));
        Ok(sub)
    }
}

/// One WebSocket API connection's subscriptions.
#[derive(Default)]
pub struct WsSession {
    next_sub: u64,
    /// (subscription id, account index).
    subs: Vec<(u64, usize)>,
    rx: Vec<(u64, Receiver<String>)>,
}

impl WsSession {
    /// Events due to this connection, wrapped `{"subscriptionId":N,"event":..}`.
    pub fn drain(&mut self, out: &mut Vec<String>) {
        let live: Vec<u64> = self.subs.iter().map(|(s, _)| *s).collect();
        self.rx.retain(|(s, _)| live.contains(s));
        for (sub, rx) in &self.rx {
            while let Ok(ev) = rx.try_recv() {
                out.push(format!("{{\"subscriptionId\":{sub},\"event\":{ev}}}"));
            }
        }
    }
}

fn ws_error(id: &str, status: u16, code: i64, msg: &str) -> String {
    format!("{{\"id\":{id},\"status\":{status},\"error\":{{\"code\":{code},\"msg\":{}}}}}", json_str(msg))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum RespType {
    Ack,
    Result,
    Full,
}

struct NewOrder {
    market: usize,
    side: Side,
    price: i64,
    qty: i64,
    client_id: Option<String>,
    resp: RespType,
}

enum OrderRef {
    Id(u64),
    Client(String),
}

fn order_ref(p: &Params, id: &str, client: &str) -> Result<OrderRef, ApiError> {
    if let Some(v) = p.get(id) {
        return v
            .parse()
            .map(OrderRef::Id)
            .map_err(|_| bad(-1100, format!("Illegal characters found in parameter '{id}'.")));
    }
    match p.get(client) {
        Some(c) => Ok(OrderRef::Client(c.to_string())),
        None => Err(bad(-1102, format!("Param '{id}' or '{client}' must be sent, but both were empty/null!"))),
    }
}

/// The newest order matching `target` (open ones only when `open`).
fn find(a: &Account, symbol: &str, target: &OrderRef, open: bool) -> Option<usize> {
    a.orders.iter().rposition(|o| {
        o.order.symbol == symbol
            && (!open || o.order.status.is_open())
            && match target {
                OrderRef::Id(id) => o.order.order_id == *id,
                OrderRef::Client(c) => o.order.client_order_id == *c,
            }
    })
}

/// (asset locked, (amount locked, amount free needed)).
fn lock_for<'m>(m: &'m Market, n: &NewOrder, commission: i64) -> (&'m str, (i64, i64)) {
    match n.side {
        Side::Buy => {
            let cost = notional_ceil(n.price, n.qty);
            let fee = notional_ceil(cost, commission);
            (m.quote.as_str(), (cost, cost.saturating_add(fee)))
        }
        Side::Sell => (m.base.as_str(), (n.qty, n.qty)),
    }
}

/// Gives what an order still locks back to free; the asset.
fn release<'m>(balances: &mut BTreeMap<String, (i64, i64)>, m: &'m Market, o: &mut OrderState) -> &'m str {
    let asset = if o.order.side == Side::Buy { m.quote.as_str() } else { m.base.as_str() };
    let b = balances.entry(asset.to_string()).or_insert((0, 0));
    b.0 += o.locked;
    b.1 -= o.locked;
    o.locked = 0;
    asset
}

fn fill_order(
    balances: &mut BTreeMap<String, (i64, i64)>,
    m: &Market,
    o: &mut OrderState,
    qty: i64,
    rate: i64,
    trade_id: u64,
    now: i64,
) -> SimFill {
    let price = o.order.price.0;
    let quote = notional(price, qty);
    let commission = mul_rate(quote, rate);
    match o.order.side {
        Side::Buy => {
            let q = balances.entry(m.quote.clone()).or_insert((0, 0));
            q.1 -= quote;
            q.0 -= commission;
            o.locked -= quote;
            balances.entry(m.base.clone()).or_insert((0, 0)).0 += qty;
        }
        Side::Sell => {
            balances.entry(m.base.clone()).or_insert((0, 0)).1 -= qty;
            o.locked -= qty;
            balances.entry(m.quote.clone()).or_insert((0, 0)).0 += quote - commission;
        }
    }
    o.order.executed_qty.0 += qty;
    o.order.cum_quote += quote;
    o.order.update_ms = now;
    o.order.status =
        if o.order.executed_qty == o.order.orig_qty { OrderStatus::Filled } else { OrderStatus::PartiallyFilled };
    if o.order.status == OrderStatus::Filled {
        // A BUY locked the rounded-up cost; what rounding left goes back.
        release(balances, m, o);
    }
    SimFill {
        symbol: m.name.clone(),
        order_id: o.order.order_id,
        client_order_id: o.order.client_order_id.clone(),
        side: o.order.side,
        price: Price(price),
        qty: Qty(qty),
        commission,
        commission_asset: m.quote.clone(),
        trade_id,
        time_ms: now,
    }
}

fn next_exec(g: &mut Inner) -> u64 {
    let id = g.next_exec_id;
    g.next_exec_id += 1;
    id
}

fn count_order(a: &mut Account, now: i64) -> u64 {
    let w = now.div_euclid(10_000);
    if a.order_count.0 != w {
        a.order_count = (w, 0);
    }
    a.order_count.1 += 1;
    a.order_count.1
}

/// Sends an event to every subscriber of the account, dropping the gone.
fn push(a: &mut Account, event: String) {
    a.subs.retain(|s| match s.try_send(event.clone()) {
        Ok(()) => true,
        Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => false,
    });
}

/// Sends `outboundAccountPosition` for `assets`.
fn position(a: &mut Account, assets: &[&str], now: i64) {
    let mut b = String::new();
    for (i, asset) in assets.iter().enumerate() {
        let (f, l) = a.balances.get(*asset).copied().unwrap_or((0, 0));
        if i > 0 {
            b.push(',');
        }
        let _ = write!(b, "{{\"a\":\"{asset}\",\"f\":\"{}\",\"l\":\"{}\"}}", fmt8(f), fmt8(l));
    }
    push(a, format!("{{\"e\":\"outboundAccountPosition\",\"E\":{now},\"u\":{now},\"B\":[{b}]}}"));
}

/// What an executionReport reports besides the order.
struct Exec {
    kind: &'static str,
    id: u64,
    time: i64,
    fill: Option<SimFill>,
    /// The cancel request's client id (`c`); the order's goes in `C`.
    cancel_id: Option<String>,
}

impl Exec {
    fn new(kind: &'static str, id: u64, time: i64) -> Self {
        Self { kind, id, time, fill: None, cancel_id: None }
    }
}

fn execution_report(o: &SimOrder, ex: &Exec) -> String {
    let (c, orig) = match &ex.cancel_id {
        Some(cid) => (cid.as_str(), o.client_order_id.as_str()),
        None => (o.client_order_id.as_str(), ""),
    };
    let (l, lp, n, na, t, y) = match &ex.fill {
        Some(f) => (
            f.qty.0,
            f.price.0,
            fmt8(f.commission),
            json_str(&f.commission_asset),
            f.trade_id as i64,
            notional(f.price.0, f.qty.0),
        ),
        None => (0, 0, "0".into(), "null".into(), -1, 0),
    };
    format!(
        concat!(
            "{{\"e\":\"executionReport\",\"E\":{E},\"s\":\"{s}\",\"c\":{c},\"S\":\"{S}\",\"o\":\"LIMIT_MAKER\",",
            "\"f\":\"GTC\",\"q\":\"{q}\",\"p\":\"{p}\",\"P\":\"0.00000000\",\"F\":\"0.00000000\",\"g\":-1,",
            "\"C\":{C},\"x\":\"{x}\",\"X\":\"{X}\",\"r\":\"NONE\",\"i\":{i},\"l\":\"{l}\",\"z\":\"{z}\",",
            "\"L\":\"{L}\",\"n\":\"{n}\",\"N\":{N},\"T\":{T},\"t\":{t},\"I\":{I},\"w\":{w},\"m\":{m},",
            "\"M\":false,\"O\":{O},\"Z\":\"{Z}\",\"Y\":\"{Y}\",\"Q\":\"0.00000000\",\"W\":{O},\"V\":\"NONE\"}}"
        ),
        E = ex.time,
        s = o.symbol,
        c = json_str(c),
        S = side_name(o.side),
        q = fmt8(o.orig_qty.0),
        p = fmt8(o.price.0),
        C = json_str(orig),
        x = ex.kind,
        X = status_name(&o.status),
        i = o.order_id,
        l = fmt8(l),
        z = fmt8(o.executed_qty.0),
        L = fmt8(lp),
        n = n,
        N = na,
        T = ex.time,
        t = t,
        I = ex.id,
        w = o.status.is_open(),
        m = ex.fill.is_some(),
        O = o.time_ms,
        Z = fmt8(o.cum_quote),
        Y = fmt8(y),
    )
}

fn side_name(s: Side) -> &'static str {
    match s {
        Side::Buy => "BUY",
        Side::Sell => "SELL",
    }
}

fn status_name(s: &OrderStatus) -> &str {
    match s {
        OrderStatus::New => "NEW",
        OrderStatus::PendingNew => "PENDING_NEW",
        OrderStatus::PartiallyFilled => "PARTIALLY_FILLED",
        OrderStatus::Filled => "FILLED",
        OrderStatus::Canceled => "CANCELED",
        OrderStatus::PendingCancel => "PENDING_CANCEL",
        OrderStatus::Rejected => "REJECTED",
        OrderStatus::Expired => "EXPIRED",
        OrderStatus::ExpiredInMatch => "EXPIRED_IN_MATCH",
        OrderStatus::Other(o) => o,
    }
}

/// The fields every order answer shares after the ids.
fn order_core(o: &SimOrder) -> String {
    format!(
        concat!(
            "\"price\":\"{}\",\"origQty\":\"{}\",\"executedQty\":\"{}\",\"origQuoteOrderQty\":\"0.00000000\",",
            "\"cummulativeQuoteQty\":\"{}\",\"status\":\"{}\",\"timeInForce\":\"GTC\",\"type\":\"LIMIT_MAKER\",",
            "\"side\":\"{}\""
        ),
        fmt8(o.price.0),
        fmt8(o.orig_qty.0),
        fmt8(o.executed_qty.0),
        fmt8(o.cum_quote),
        status_name(&o.status),
        side_name(o.side)
    )
}

/// `POST /api/v3/order` answer in the asked-for type.
fn order_json(o: &SimOrder, resp: RespType, now: i64) -> String {
    let head = format!(
        "{{\"symbol\":\"{}\",\"orderId\":{},\"orderListId\":-1,\"clientOrderId\":{},\"transactTime\":{now}",
        o.symbol,
        o.order_id,
        json_str(&o.client_order_id)
    );
    match resp {
        RespType::Ack => format!("{head}}}"),
        RespType::Result => {
            format!("{head},{},\"workingTime\":{now},\"selfTradePreventionMode\":\"NONE\"}}", order_core(o))
        }
        // A post-only order never fills on arrival, so FULL has no fills.
        RespType::Full => format!(
            "{head},{},\"workingTime\":{now},\"selfTradePreventionMode\":\"NONE\",\"fills\":[]}}",
            order_core(o)
        ),
    }
}

fn cancel_json(o: &SimOrder, cancel_id: &str, now: i64) -> String {
    format!(
        "{{\"symbol\":\"{}\",\"origClientOrderId\":{},\"orderId\":{},\"orderListId\":-1,\"clientOrderId\":{},\"transactTime\":{now},{},\"selfTradePreventionMode\":\"NONE\"}}",
        o.symbol,
        json_str(&o.client_order_id),
        o.order_id,
        json_str(cancel_id),
        order_core(o)
    )
}

fn query_json(o: &SimOrder) -> String {
    format!(
        concat!(
            "{{\"symbol\":\"{}\",\"orderId\":{},\"orderListId\":-1,\"clientOrderId\":{},{},",
            "\"stopPrice\":\"0.00000000\",\"icebergQty\":\"0.00000000\",\"time\":{},\"updateTime\":{},",
            "\"isWorking\":true,\"workingTime\":{},\"selfTradePreventionMode\":\"NONE\"}}"
        ),
        o.symbol,
        o.order_id,
        json_str(&o.client_order_id),
        order_core(o),
        o.time_ms,
        o.update_ms,
        o.time_ms
    )
}

fn account_json(a: &Account, omit_zero: bool, now: i64) -> String {
    let rate = fmt8(a.cfg.commission);
    let bps = a.cfg.commission / (SCALE / 10_000);
    let balances: Vec<String> = a
        .balances
        .iter()
        .filter(|(_, &(f, l))| !omit_zero || f != 0 || l != 0)
        .map(|(k, &(f, l))| format!("{{\"asset\":\"{k}\",\"free\":\"{}\",\"locked\":\"{}\"}}", fmt8(f), fmt8(l)))
        .collect();
    format!(
        concat!(
            "{{\"makerCommission\":{bps},\"takerCommission\":{bps},\"buyerCommission\":0,\"sellerCommission\":0,",
            "\"commissionRates\":{{\"maker\":\"{rate}\",\"taker\":\"{rate}\",\"buyer\":\"0.00000000\",",
            "\"seller\":\"0.00000000\"}},\"canTrade\":true,\"canWithdraw\":false,\"canDeposit\":false,",
            "\"brokered\":false,\"requireSelfTradePrevention\":false,\"preventSor\":false,\"updateTime\":{now},",
            "\"accountType\":\"SPOT\",\"balances\":[{b}],\"permissions\":[\"SPOT\"],\"uid\":1}}"
        ),
        bps = bps,
        rate = rate,
        now = now,
        b = balances.join(",")
    )
}

/// A symbol's assets and rules, as `exchangeInfo` advertises them
/// (BTCUSDT-like: the order-flow model quotes on that grid).
fn market_for(symbol: &str) -> Market {
    let s = symbol.to_ascii_uppercase();
    let quote = ["USDT", "BTC", "ETH", "EUR", "BNB"].iter().find(|q| s.ends_with(*q)).copied().unwrap_or("USDT");
    let base = s.strip_suffix(quote).unwrap_or(&s).to_string();
    let rules = SymbolRules {
        symbol: s.clone(),
        status: SymbolStatus::Trading,
        base_asset: base.clone(),
        quote_asset: quote.into(),
        price: PriceFilter { min: Price(1_000_000), max: Price(1_000_000 * SCALE), tick: Price(1_000_000) },
        lot: LotSize { min: Qty(1_000), max: Qty(9_000 * SCALE), step: Qty(1_000) },
        notional: NotionalFilter { kind: NotionalKind::Notional, min: 5 * SCALE, max: 9_000_000 * SCALE },
        cancel_replace_allowed: true,
        limit_maker_allowed: true,
        max_num_orders: 0,
        percent_price_by_side: None,
    };
    Market { name: s, base, quote: quote.into(), rules }
}

/// `-1021` unless `timestamp` is within `recvWindow` of `now` (FACTS 4.7).
fn check_time(ts: Option<&str>, window: Option<&str>, now: i64) -> Result<(), ApiError> {
    let ts = ts.ok_or_else(|| mandatory("timestamp"))?;
    let mut ts: i64 = ts.parse().map_err(|_| bad(-1100, "Illegal characters found in parameter 'timestamp'."))?;
    // Microseconds are accepted too.
    if ts > 10_000_000_000_000 {
        ts /= 1000;
    }
    let window: f64 = match window {
        Some(w) => w.parse().map_err(|_| bad(-1100, "Illegal characters found in parameter 'recvWindow'."))?,
        None => 5000.0,
    };
    if !(0.0..=60_000.0).contains(&window) {
        return Err(bad(-1131, "recvWindow must be less than 60000"));
    }
    if ts >= now + 1000 {
        return Err(bad(-1021, "Timestamp for this request was 1000ms ahead of the server's time."));
    }
    if (now - ts) as f64 > window {
        return Err(bad(-1021, "Timestamp for this request is outside of the recvWindow."));
    }
    Ok(())
}

/// The REST payload a signature covers: the query and then the body, each
/// with its `signature` parameter taken out, byte for byte as received.
fn signed_payload(query: &str, body: &str) -> String {
    let strip = |s: &str| s.split('&').filter(|kv| !kv.starts_with("signature=")).collect::<Vec<_>>().join("&");
    let mut p = strip(query);
    p.push_str(&strip(body));
    p
}

/// Verifies a REST signature (Ed25519's arrives percent-encoded).
fn verify(key: &SimKey, payload: &[u8], sig: &str) -> bool {
    // Params already percent-decoded the value.
    verify_raw(key, payload, sig)
}

fn verify_raw(key: &SimKey, payload: &[u8], sig: &str) -> bool {
    match key {
        SimKey::Hmac(secret) => {
            HmacKey::new(secret).is_ok_and(|k| k.sign_hex(payload).eq_ignore_ascii_case(sig.trim()))
        }
        SimKey::Ed25519(public) => {
            let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(sig) else { return false };
            ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, public).verify(payload, &raw).is_ok()
        }
    }
}

/// Decoded request parameters (query then body).
struct Params(Vec<(String, String)>);

impl Params {
    fn parse(query: &str, body: &str) -> Self {
        let mut v = Vec::new();
        for part in query.split('&').chain(body.split('&')) {
            if part.is_empty() {
                continue;
            }
            let (k, val) = part.split_once('=').unwrap_or((part, ""));
            v.push((percent_decode(k), percent_decode(val)));
        }
        Self(v)
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// `%XX` and `+` decoding; invalid escapes are kept as they are.
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                let h = std::str::from_utf8(&b[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok());
                match h {
                    Some(x) => {
                        out.push(x);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Binance's 8-decimal form (`"0.10264410"`).
/// One fill as `GET /api/v3/myTrades` lists it (our orders are makers).
fn my_trade_json(f: &SimFill) -> String {
    format!(
        "{{\"symbol\":{},\"id\":{},\"orderId\":{},\"orderListId\":-1,\"price\":\"{}\",\"qty\":\"{}\",\
         \"quoteQty\":\"{}\",\"commission\":\"{}\",\"commissionAsset\":{},\"time\":{},\"isBuyer\":{},\
         \"isMaker\":true,\"isBestMatch\":true}}",
        json_str(&f.symbol),
        f.trade_id,
        f.order_id,
        fmt8(f.price.0),
        fmt8(f.qty.0),
        fmt8(notional(f.price.0, f.qty.0)),
        fmt8(f.commission),
        json_str(&f.commission_asset),
        f.time_ms,
        f.side == Side::Buy
    )
}

pub fn fmt8(v: i64) -> String {
    let sign = if v < 0 { "-" } else { "" };
    let a = v.unsigned_abs();
    let s = SCALE as u64;
    format!("{sign}{}.{:08}", a / s, a % s)
}

/// A JSON string literal.
fn json_str(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eight_decimals_and_percent_decoding() {
        assert_eq!(fmt8(-150_000_000), "-1.50000000");
        assert_eq!(fmt8(1), "0.00000001");
        assert_eq!(percent_decode("a%2Bb%3D%zz%"), "a+b=%zz%");
    }

    #[test]
    fn hmac_vector_from_the_docs_verifies() {
        let key = SimKey::Hmac("NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j".into());
        let q = "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559";
        let sig = "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71";
        let full = format!("{q}&signature={sig}");
        assert_eq!(signed_payload(&full, ""), q);
        assert!(verify(&key, q.as_bytes(), &sig.to_ascii_uppercase()));
        assert!(!verify(&key, q.as_bytes(), "00"));
    }

    #[test]
    fn timestamps_follow_the_recv_window_rule() {
        assert!(check_time(Some("10000"), None, 10_500).is_ok());
        assert_eq!(check_time(Some("11000"), None, 10_000).unwrap_err().code, -1021);
        assert_eq!(check_time(Some("1000"), Some("5000"), 10_000).unwrap_err().code, -1021);
        assert_eq!(check_time(Some("x"), None, 0).unwrap_err().code, -1100);
        assert_eq!(check_time(None, None, 0).unwrap_err().code, -1102);
    }
}

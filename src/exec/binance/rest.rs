//! The blocking Binance spot REST client the exec thread trades through:
//! [`RestClient`], plus the client order ids it places orders under
//! ([`ClientIds`], [`ClientOrderId`]).
//!
//! It runs on the exec thread, never the hot thread: every call blocks on
//! the network (a `ureq` agent, its own connection pool, no redirects).
//! What it adds over bare HTTP:
//!
//! - **Clock**: [`RestClient::sync_clock`] measures the offset to Binance's
//!   clock from `GET /api/v3/time`; every signed request's `timestamp` is our
//!   clock plus that offset, so a local clock a few seconds off does not get
//!   every order refused with -1021. `recvWindow` is the caller's.
//! - **Limits**: every request asks the process's [`IpGuard`] first (one
//!   guard for the whole process, shared per host: Binance counts weight
//!   and bans per IP, FACTS.md §4.8). Its weight and order count are counted
//!   against the limits from exchangeInfo and the server's usage headers; a
//!   request that would break one is refused locally. A 418 blocks every
//!   request, a weight 429 (-1003) every request, an order-count 429
//!   (-1015) only requests that place orders (cancels still go), each for
//!   its `Retry-After`.
//! - **Threads**: [`RestClient`] is `Clone`; clones share the guard, the
//!   credentials and the measured clock offset, so worker threads each own
//!   one. Each clone remembers the `timestamp` it signed its last request
//!   with ([`RestClient::last_timestamp_ms`]).
//! - **Filters**: once `exchange_info(symbol)` has run, orders on that
//!   symbol are checked against its rules before they are sent.
//! - **Exactness**: prices and quantities are written from fixed-point with
//!   `Display` (exact, no trailing zeros), never through `f64`.
//! - **Errors**: every failure is a [`BinanceError`] with an
//!   [`Action`](crate::exec::binance::errors::Action); order requests whose
//!   fate is unknown say so.
//!
//! Parameters go in the query string for every method (Binance accepts that
//! for POST and DELETE too), so the signed payload is exactly the query.

use std::collections::HashMap;
use std::fmt;
use std::io::Read;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::exec::binance::errors::{self, BinanceError, Endpoint, Limited};
use crate::exec::binance::filters::{side_str, ExchangeInfo, SymbolRules};
use crate::exec::binance::gateway::{NewOrder, StpMode, Target};
use crate::exec::binance::keys::Credentials;
use crate::exec::binance::model::{Account, Order, ReplaceHalf};
use crate::exec::binance::sign::push_query_value;
use crate::exec::Side;
use crate::hot::fixed::{Price, Qty};
use crate::ipguard::{IpGuard, LimitUsage, Refusal, Request};

/// Binance spot production REST.
pub const MAINNET_URL: &str = "https://api.binance.com";
/// Binance spot testnet REST.
pub const TESTNET_URL: &str = "https://testnet.binance.vision";

/// Largest answer read; exchangeInfo for every symbol is ~2 MB.
const MAX_BODY: u64 = 16 << 20;

/// Endpoint labels, whether they place or cancel, and their request weight
/// and order count (Binance rest-api.md, checked 2026; see FACTS.md §4).
mod ep {
    use super::Endpoint;
    pub const TIME: (Endpoint, u32, u32) = (Endpoint { label: "GET /api/v3/time", mutating: false }, 1, 0);
    pub const EXCHANGE_INFO: (Endpoint, u32, u32) =
        (Endpoint { label: "GET /api/v3/exchangeInfo", mutating: false }, 20, 0);
    pub const ACCOUNT: (Endpoint, u32, u32) = (Endpoint { label: "GET /api/v3/account", mutating: false }, 20, 0);
    pub const NEW_ORDER: (Endpoint, u32, u32) = (Endpoint { label: "POST /api/v3/order", mutating: true }, 1, 1);
    pub const TEST_ORDER: (Endpoint, u32, u32) = (Endpoint { label: "POST /api/v3/order/test", mutating: false }, 1, 0);
    pub const CANCEL: (Endpoint, u32, u32) = (Endpoint { label: "DELETE /api/v3/order", mutating: true }, 1, 0);
    pub const CANCEL_REPLACE: (Endpoint, u32, u32) =
        (Endpoint { label: "POST /api/v3/order/cancelReplace", mutating: true }, 1, 1);
    pub const OPEN_ORDERS: (Endpoint, u32, u32) = (Endpoint { label: "GET /api/v3/openOrders", mutating: false }, 6, 0);
    pub const CANCEL_ALL: (Endpoint, u32, u32) =
        (Endpoint { label: "DELETE /api/v3/openOrders", mutating: true }, 1, 0);
    pub const QUERY_ORDER: (Endpoint, u32, u32) = (Endpoint { label: "GET /api/v3/order", mutating: false }, 4, 0);
    pub const MY_TRADES: (Endpoint, u32, u32) = (Endpoint { label: "GET /api/v3/myTrades", mutating: false }, 5, 0);
}

/// Where and how to connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestConfig {
    /// `https://api.binance.com` ([`MAINNET_URL`]) or the testnet
    /// ([`TESTNET_URL`]); plain `http://` only to a loopback address (the
    /// API key travels in a header).
    pub base_url: String,
    /// `recvWindow` sent with every signed request (Binance: at most 60 s).
    pub recv_window: Duration,
    /// Whole-request timeout. After it, an order's fate is unknown.
    pub timeout: Duration,
    /// Connection setup timeout (nothing has been sent when it fires).
    pub connect_timeout: Duration,
}

impl RestConfig {
    /// Production, `recvWindow` 5 s (Binance's default), 5 s timeout.
    pub fn mainnet() -> Self {
        Self::with_base(MAINNET_URL)
    }

    /// The spot testnet, same timings.
    pub fn testnet() -> Self {
        Self::with_base(TESTNET_URL)
    }

    pub fn with_base(base_url: &str) -> Self {
        Self {
            base_url: base_url.to_string(),
            recv_window: Duration::from_secs(5),
            timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(3),
        }
    }
}

impl Default for RestConfig {
    fn default() -> Self {
        Self::mainnet()
    }
}

/// A client order id: 1 to 36 of `[.A-Z:/a-z0-9_-]` (Binance's pattern).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClientOrderId(String);

impl ClientOrderId {
    pub const MAX_LEN: usize = 36;

    pub fn new(id: &str) -> Result<Self, BinanceError> {
        if valid_id_chars(id) && (1..=Self::MAX_LEN).contains(&id.len()) {
            Ok(Self(id.to_string()))
        } else {
            Err(BinanceError::Invalid(format!(
                "client order id {id:?} must be 1 to 36 characters of A-Z a-z 0-9 . : / _ -"
            )))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ClientOrderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn valid_id_chars(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b':' | b'/' | b'_' | b'-'))
}

/// Client order ids for one run: `{run_prefix}-{counter}`. The per-run
/// prefix keeps ids unique across restarts (Binance only refuses a
/// duplicate among *open* orders, so a reused id could be confused with an
/// old order in lookups); the counter, within the run. The `-` before the
/// digits-only counter means no two prefixes produce the same id.
///
/// Length: Binance allows 1 to 36 of `[.A-Z:/a-z0-9_-]` (REST/WS-API
/// `newClientOrderId`; the FIX API only `[a-zA-Z0-9-_]`, fix-api.md): a
/// prefix of at most [`ClientIds::MAX_PREFIX`], `-`, and a counter of at
/// most 12 digits.
#[derive(Debug, Clone)]
pub struct ClientIds {
    prefix: String,
    next: u64,
}

impl ClientIds {
    /// Longest prefix: 36 - 1 (`-`) - 12 (counter digits).
    pub const MAX_PREFIX: usize = 23;
    /// The counter wraps back to 1 past this (10^12 orders in one run: never).
    const MAX_COUNTER: u64 = 999_999_999_999;

    pub fn new(run_prefix: &str) -> Result<Self, BinanceError> {
        if run_prefix.is_empty() || run_prefix.len() > Self::MAX_PREFIX || !valid_id_chars(run_prefix) {
            return Err(BinanceError::Invalid(format!(
                "run prefix {run_prefix:?} for client order ids must be 1 to {} characters of A-Z a-z 0-9 . : / _ -",
                Self::MAX_PREFIX
            )));
        }
        Ok(Self { prefix: run_prefix.to_string(), next: 1 })
    }

    /// A prefix from the wall clock: `mm` and [`ClientIds::clock_tag`]
    /// (15 characters, e.g. `mmmiq3k2x1a00k3f`).
    pub fn prefix_from_clock() -> String {
        format!("mm{}", Self::clock_tag())
    }

    /// What makes a run's ids its own, 13 characters of `[0-9a-z]`: the
    /// start time in Unix milliseconds (8 base-36 digits, good until 2059)
    /// and this process's id (5 base-36 digits). Two runs started in the
    /// same second, even the same millisecond, get different tags: no two
    /// living processes share an id. Append it to a configured run prefix
    /// (at most [`ClientIds::MAX_PREFIX`] − 13 = 10 characters).
    pub fn clock_tag() -> String {
        let ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
        format!("{}{}", base36(ms, 8), base36(std::process::id() as u64, 5))
    }

    /// The next id (never repeats within this `ClientIds`).
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> ClientOrderId {
        let id = format!("{}-{}", self.prefix, self.next);
        // Wraps only after 10^12 orders in one run, i.e. never.
        self.next = if self.next >= Self::MAX_COUNTER { 1 } else { self.next + 1 };
        ClientOrderId(id)
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }
}

/// `n` in base 36, exactly `width` digits (the lowest ones; zero-padded).
fn base36(mut n: u64, width: usize) -> String {
    let mut digits = vec![b'0'; width];
    for d in digits.iter_mut().rev() {
        *d = b"0123456789abcdefghijklmnopqrstuvwxyz"[(n % 36) as usize];
        n /= 36;
    }
    String::from_utf8_lossy(&digits).into_owned()
}

/// Which order a cancel names. `OrderId` is faster on Binance's side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderRef<'a> {
    OrderId(u64),
    ClientId(&'a str),
}

/// `cancelReplaceMode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplaceMode {
    /// No new order if the cancel fails (the usual choice: never two orders).
    StopOnFailure,
    /// Place the new order even if the cancel fails.
    AllowFailure,
}

/// Both halves of a successful cancelReplace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replaced {
    pub canceled: Order,
    pub placed: Order,
}

/// One clock measurement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockSample {
    /// Server clock minus ours, ms (added to every `timestamp`).
    pub offset_ms: i64,
    /// The request's round trip; the offset is good to about half of it.
    pub round_trip: Duration,
}

/// The blocking REST client. Clones share the guard, the credentials, the
/// connection pool and the clock offset: one clone per worker thread.
/// Symbol rules are copied at clone time (fetch them before cloning).
#[derive(Clone)]
pub struct RestClient {
    agent: ureq::Agent,
    base: String,
    creds: Arc<Credentials>,
    recv_window_ms: u64,
    /// Server clock minus ours, ms; shared by every clone.
    offset_ms: Arc<AtomicI64>,
    guard: IpGuard,
    rules: HashMap<String, SymbolRules>,
    /// `selfTradePreventionMode` for orders placed without one.
    stp: StpMode,
    /// The `timestamp` this clone signed its last request with.
    last_timestamp_ms: Option<i64>,
}

impl fmt::Debug for RestClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RestClient")
            .field("base", &self.base)
            .field("creds", &self.creds)
            .field("recv_window_ms", &self.recv_window_ms)
            .field("offset_ms", &self.offset_ms.load(Ordering::Relaxed))
            .field("stp", &self.stp)
            .field("symbols_with_rules", &self.rules.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// A 200 answer's body.
type Body = Vec<u8>;

/// `myTrades` page size: Binance's maximum.
pub const MY_TRADES_PAGE: usize = 1000;
/// Pages read for one order at most (an order of 100,000 fills).
pub const MY_TRADES_MAX_PAGES: usize = 100;

/// A refusal by the guard as the error the caller acts on (nothing sent);
/// the WebSocket API client maps its refusals the same way.
pub(crate) fn refused(e: Endpoint, r: Refusal) -> BinanceError {
    let request = e.label;
    match r {
        Refusal::Banned { retry_in } => BinanceError::LocalBan { request, retry_in },
        Refusal::WeightBackOff { retry_in } => BinanceError::LocalRateLimit {
            request,
            why: "Binance asked this IP to back off (HTTP 429, request weight)".into(),
            retry_in,
            limit: Limited::RequestWeight,
        },
        Refusal::OrdersBackOff { retry_in } => BinanceError::LocalRateLimit {
            request,
            why: "new orders back off (HTTP 429 -1015, too many new orders; cancels still go)".into(),
            retry_in,
            limit: Limited::Orders,
        },
        Refusal::RestBackOff { retry_in } => BinanceError::LocalRateLimit {
            request,
            why: "REST requests back off (HTTP 429 under the weight limit: RAW_REQUESTS; the WebSocket API still goes)"
                .into(),
            retry_in,
            limit: Limited::RequestWeight,
        },
        Refusal::Limit { why, retry_in } => {
            // The guard names the limit in `why` ("... of ORDERS 50 per 10S ...").
            let limit = if why.contains("of ORDERS ") { Limited::Orders } else { Limited::RequestWeight };
            BinanceError::LocalRateLimit { request, why, retry_in, limit }
        }
    }
}

impl RestClient {
    /// Checks the settings; connects lazily on the first request. Uses a
    /// guard of its own: in a process with a feed, use
    /// [`RestClient::with_guard`] with the process's guard instead.
    pub fn new(cfg: &RestConfig, creds: Credentials) -> Result<Self, BinanceError> {
        Self::with_guard(cfg, creds, IpGuard::new())
    }

    /// The same, asking `guard` (the process's) before every request.
    pub fn with_guard(cfg: &RestConfig, creds: Credentials, guard: IpGuard) -> Result<Self, BinanceError> {
        let base = validate_base(&cfg.base_url)?;
        let recv_window_ms = cfg.recv_window.as_millis() as u64;
        if !(1..=60_000).contains(&recv_window_ms) {
            return Err(BinanceError::Invalid(format!(
                "recvWindow {recv_window_ms} ms is outside 1..=60000 ms (Binance's maximum is 60 s)"
            )));
        }
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(cfg.timeout))
            .timeout_connect(Some(cfg.connect_timeout))
            .http_status_as_error(false)
            // A redirect would carry the API key to another host.
            .max_redirects(0)
            .user_agent(concat!("mmbot/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Ok(Self {
            agent,
            base,
            creds: Arc::new(creds),
            recv_window_ms,
            offset_ms: Arc::new(AtomicI64::new(0)),
            guard,
            rules: HashMap::new(),
            stp: StpMode::default(),
            last_timestamp_ms: None,
        })
    }

    /// The guard every request asks (the process's, when built with
    /// [`RestClient::with_guard`]).
    pub fn guard(&self) -> &IpGuard {
        &self.guard
    }

    /// The `timestamp` (server ms: our clock plus the offset) this client
    /// signed its last signed request with; `None` before the first. An
    /// order's fate can be settled once the server's clock is past this
    /// plus `recvWindow`: after that the request can no longer execute
    /// (rest-api.md §Timing security).
    pub fn last_timestamp_ms(&self) -> Option<i64> {
        self.last_timestamp_ms
    }

    /// The `recvWindow` sent with signed requests, ms.
    pub fn recv_window_ms(&self) -> u64 {
        self.recv_window_ms
    }

    /// `selfTradePreventionMode` sent with orders placed through
    /// [`RestClient::new_limit_maker`] and [`RestClient::cancel_replace`]
    /// (default [`StpMode::ExpireMaker`]; [`RestClient::place`] takes one
    /// per order). The symbol must allow it (exchangeInfo
    /// `allowedSelfTradePreventionModes`; enums.md §STP Modes).
    pub fn set_stp_mode(&mut self, mode: StpMode) {
        self.stp = mode;
    }

    /// The shared clock offset itself (ms), kept current by every clone's
    /// [`RestClient::sync_clock`]: hand it to threads that sign requests of
    /// their own (the user-data stream's subscription).
    pub fn clock_offset_handle(&self) -> Arc<AtomicI64> {
        self.offset_ms.clone()
    }

    /// Server clock minus ours, ms, as last measured (0 before).
    pub fn clock_offset_ms(&self) -> i64 {
        self.offset_ms.load(Ordering::Relaxed)
    }

    /// The `recvWindow` sent with signed requests.
    pub fn set_recv_window(&mut self, d: Duration) -> Result<(), BinanceError> {
        let ms = d.as_millis() as u64;
        if !(1..=60_000).contains(&ms) {
            return Err(BinanceError::Invalid(format!("recvWindow {ms} ms is outside 1..=60000 ms")));
        }
        self.recv_window_ms = ms;
        Ok(())
    }

    /// The rules of `symbol`, once [`RestClient::exchange_info`] has fetched them.
    pub fn rules(&self, symbol: &str) -> Option<&SymbolRules> {
        self.rules.get(symbol)
    }

    /// Each rate limit and its use in the current window.
    pub fn usage(&self) -> Vec<LimitUsage> {
        self.guard.usage()
    }

    /// Measures the clock offset from `GET /api/v3/time` (weight 1): the
    /// server's time against the midpoint of our send and receive.
    pub fn sync_clock(&mut self) -> Result<ClockSample, BinanceError> {
        let t0 = Instant::now();
        let wall0 = wall_ms();
        let body = self.send(ep::TIME, Method::Get, "/api/v3/time", String::new(), false)?;
        let round_trip = t0.elapsed();
        let server: serde_json::Value = serde_json::from_slice(&body).map_err(|e| unreadable(ep::TIME.0, e))?;
        let server_ms =
            server.get("serverTime").and_then(|v| v.as_i64()).ok_or_else(|| unreadable(ep::TIME.0, "no serverTime"))?;
        let mid = wall0 + round_trip.as_millis() as i64 / 2;
        let offset = server_ms.saturating_sub(mid);
        // Past a day, either the answer is wrong or this machine's clock is;
        // either way, trading on it would be guesswork.
        if offset.unsigned_abs() > 86_400_000 {
            return Err(BinanceError::Invalid(format!(
                "{}: serverTime {server_ms} is {offset} ms from this machine's clock (more than a day); check the \
                 system clock (NTP)",
                ep::TIME.0.label
            )));
        }
        self.offset_ms.store(offset, Ordering::Relaxed);
        self.guard.set_clock_offset_ms(offset);
        Ok(ClockSample { offset_ms: offset, round_trip })
    }

    /// `GET /api/v3/exchangeInfo?symbol=` (weight 20): the symbol's rules
    /// (kept for local checks) and the rate limits (installed locally).
    pub fn exchange_info(&mut self, symbol: &str) -> Result<ExchangeInfo, BinanceError> {
        let mut q = String::new();
        param(&mut q, "symbol", symbol);
        let body = self.send(ep::EXCHANGE_INFO, Method::Get, "/api/v3/exchangeInfo", q, false)?;
        let info = ExchangeInfo::parse(&body).map_err(|e| unreadable(ep::EXCHANGE_INFO.0, e))?;
        if info.symbol(symbol).is_none() {
            return Err(unreadable(ep::EXCHANGE_INFO.0, format!("no symbol {symbol} in the answer")));
        }
        if !info.rate_limits.is_empty() {
            self.guard.set_limits(&info.rate_limits);
        }
        for r in &info.symbols {
            self.rules.insert(r.symbol.clone(), r.clone());
        }
        Ok(info)
    }

    /// `GET /api/v3/account?omitZeroBalances=true` (weight 20).
    pub fn account(&mut self) -> Result<Account, BinanceError> {
        let mut q = String::new();
        param(&mut q, "omitZeroBalances", "true");
        let body = self.send(ep::ACCOUNT, Method::Get, "/api/v3/account", q, true)?;
        Account::parse(&body).map_err(|e| unreadable(ep::ACCOUNT.0, e))
    }

    /// Places a post-only `LIMIT_MAKER` order (weight 1, one order). The
    /// answer is `newOrderRespType=RESULT`: status and filled quantity, not
    /// just the id.
    pub fn new_limit_maker(
        &mut self,
        symbol: &str,
        side: Side,
        price: Price,
        qty: Qty,
        client_order_id: &ClientOrderId,
    ) -> Result<Order, BinanceError> {
        let order = NewOrder { side, price, qty, client_id: client_order_id.clone(), stp: self.stp };
        self.place(symbol, &order)
    }

    /// Places `order` (a post-only `LIMIT_MAKER`, weight 1, one order) with
    /// its own `selfTradePreventionMode` (rest-api.md §New order).
    pub fn place(&mut self, symbol: &str, order: &NewOrder) -> Result<Order, BinanceError> {
        self.check_rules(ep::NEW_ORDER.0, symbol, order.side, order.price, order.qty)?;
        let q = order_params(symbol, order);
        let body = self.send(ep::NEW_ORDER, Method::Post, "/api/v3/order", q, true)?;
        Order::parse(&body).map_err(|e| unreadable(ep::NEW_ORDER.0, e))
    }

    /// `POST /api/v3/order/test` with the same parameters: validated by
    /// Binance (signature, filters, permissions) and never placed.
    pub fn test_order(
        &mut self,
        symbol: &str,
        side: Side,
        price: Price,
        qty: Qty,
        client_order_id: &ClientOrderId,
    ) -> Result<(), BinanceError> {
        let order = NewOrder { side, price, qty, client_id: client_order_id.clone(), stp: self.stp };
        self.place_test(symbol, &order)
    }

    /// `POST /api/v3/order/test` for `order`: validated, never placed.
    pub fn place_test(&mut self, symbol: &str, order: &NewOrder) -> Result<(), BinanceError> {
        self.check_rules(ep::TEST_ORDER.0, symbol, order.side, order.price, order.qty)?;
        let q = order_params(symbol, order);
        self.send(ep::TEST_ORDER, Method::Post, "/api/v3/order/test", q, true)?;
        Ok(())
    }

    /// `DELETE /api/v3/order` (weight 1).
    pub fn cancel(&mut self, symbol: &str, order: OrderRef<'_>) -> Result<Order, BinanceError> {
        let mut q = String::new();
        param(&mut q, "symbol", symbol);
        match order {
            OrderRef::OrderId(id) => param(&mut q, "orderId", &id.to_string()),
            OrderRef::ClientId(id) => param(&mut q, "origClientOrderId", id),
        }
        let body = self.send(ep::CANCEL, Method::Delete, "/api/v3/order", q, true)?;
        Order::parse(&body).map_err(|e| unreadable(ep::CANCEL.0, e))
    }

    /// Cancels `cancel` and places a new `LIMIT_MAKER` in one request
    /// (`POST /api/v3/order/cancelReplace`, weight 1, one order). A 409
    /// (one half done) is [`BinanceError::ReplacePartial`] with both halves.
    /// Sends the client's `selfTradePreventionMode`; see
    /// [`RestClient::replace`] for the rest.
    #[allow(clippy::too_many_arguments)]
    pub fn cancel_replace(
        &mut self,
        symbol: &str,
        cancel: OrderRef<'_>,
        side: Side,
        price: Price,
        qty: Qty,
        new_client_order_id: &ClientOrderId,
        mode: ReplaceMode,
    ) -> Result<Replaced, BinanceError> {
        let new = NewOrder { side, price, qty, client_id: new_client_order_id.clone(), stp: self.stp };
        let target = match cancel {
            OrderRef::OrderId(id) => Target::OrderId(id),
            OrderRef::ClientId(id) => Target::ClientId(id.to_string()),
        };
        self.replace_with(symbol, &target, &new, mode)
    }

    /// cancelReplace with `cancelReplaceMode=STOP_ON_FAILURE` (never two
    /// orders) and `orderRateLimitExceededMode=CANCEL_ONLY`: when the
    /// unfilled order count is exceeded the cancel still happens (answered
    /// 429 with both halves: [`BinanceError::ReplacePartial`], new half
    /// -1015), so a quote is never left resting because new orders are
    /// limited (rest-api.md §Cancel an Existing Order and Send a New Order).
    pub fn replace(&mut self, symbol: &str, cancel: &Target, new: &NewOrder) -> Result<Replaced, BinanceError> {
        self.replace_with(symbol, cancel, new, ReplaceMode::StopOnFailure)
    }

    fn replace_with(
        &mut self,
        symbol: &str,
        cancel: &Target,
        new: &NewOrder,
        mode: ReplaceMode,
    ) -> Result<Replaced, BinanceError> {
        let e = ep::CANCEL_REPLACE.0;
        if let Some(r) = self.rules.get(symbol) {
            if !r.cancel_replace_allowed {
                return Err(BinanceError::Invalid(format!(
                    "{}: {symbol} does not allow cancelReplace (exchangeInfo cancelReplaceAllowed is false); cancel \
                     and place separately",
                    e.label
                )));
            }
        }
        self.check_rules(e, symbol, new.side, new.price, new.qty)?;
        let mut q = order_params(symbol, new);
        param(
            &mut q,
            "cancelReplaceMode",
            match mode {
                ReplaceMode::StopOnFailure => "STOP_ON_FAILURE",
                ReplaceMode::AllowFailure => "ALLOW_FAILURE",
            },
        );
        param(&mut q, "orderRateLimitExceededMode", "CANCEL_ONLY");
        match cancel {
            Target::OrderId(id) => param(&mut q, "cancelOrderId", &id.to_string()),
            Target::ClientId(id) => param(&mut q, "cancelOrigClientOrderId", id),
        }
        let body = self.send(ep::CANCEL_REPLACE, Method::Post, "/api/v3/order/cancelReplace", q, true)?;
        let v: serde_json::Value = serde_json::from_slice(&body).map_err(|err| unreadable(e, err))?;
        let half = |k: &str| {
            v.get(k)
                .cloned()
                .ok_or_else(|| unreadable(e, format!("no {k}")))
                .and_then(|o| Order::from_value(o).map_err(|err| unreadable(e, err)))
        };
        Ok(Replaced { canceled: half("cancelResponse")?, placed: half("newOrderResponse")? })
    }

    /// `GET /api/v3/openOrders?symbol=` (weight 6).
    pub fn open_orders(&mut self, symbol: &str) -> Result<Vec<Order>, BinanceError> {
        let mut q = String::new();
        param(&mut q, "symbol", symbol);
        let body = self.send(ep::OPEN_ORDERS, Method::Get, "/api/v3/openOrders", q, true)?;
        Order::parse_list(&body).map_err(|e| unreadable(ep::OPEN_ORDERS.0, e))
    }

    /// `DELETE /api/v3/openOrders?symbol=` (weight 1): the orders canceled.
    /// None open is an empty list, not an error (Binance answers -2011).
    pub fn cancel_all(&mut self, symbol: &str) -> Result<Vec<Order>, BinanceError> {
        let mut q = String::new();
        param(&mut q, "symbol", symbol);
        match self.send(ep::CANCEL_ALL, Method::Delete, "/api/v3/openOrders", q, true) {
            Ok(body) => Order::parse_list(&body).map_err(|e| unreadable(ep::CANCEL_ALL.0, e)),
            Err(BinanceError::UnknownOrder { .. }) => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    /// `GET /api/v3/order?origClientOrderId=` (weight 4): the way to settle
    /// an unknown fate. -2013 ("Order does not exist") means it was never
    /// placed: [`BinanceError::UnknownOrder`].
    pub fn query_order_by_client_id(&mut self, symbol: &str, client_id: &str) -> Result<Order, BinanceError> {
        let mut q = String::new();
        param(&mut q, "symbol", symbol);
        param(&mut q, "origClientOrderId", client_id);
        let body = self.send(ep::QUERY_ORDER, Method::Get, "/api/v3/order", q, true)?;
        Order::parse(&body).map_err(|e| unreadable(ep::QUERY_ORDER.0, e))
    }

    /// Every trade of one order, oldest first, with their trade ids:
    /// `GET /api/v3/myTrades?symbol=&orderId=&fromId=&limit=1000` (weight 5
    /// with `orderId`) page after page until a page is short (rest-api.md
    /// §Account trade list: `symbol` + `orderId` + `fromId` is a supported
    /// combination, `fromId` returns trades >= it, `limit` at most 1000).
    /// Reconciliation uses it to recover fills the user-data stream missed
    /// while it was down; the trade id lets the journal drop those it
    /// already has. At most [`MY_TRADES_MAX_PAGES`] pages.
    pub fn my_trades(&mut self, symbol: &str, order_id: u64) -> Result<Vec<MyTrade>, BinanceError> {
        let e = ep::MY_TRADES.0;
        let mut all: Vec<MyTrade> = Vec::new();
        // From trade id 0, not "most recent": without `fromId` Binance
        // answers the newest trades, and an order with more than a page of
        // them would lose its oldest.
        let mut from_id: i64 = 0;
        for _ in 0..MY_TRADES_MAX_PAGES {
            let mut q = String::new();
            param(&mut q, "symbol", symbol);
            param(&mut q, "orderId", &order_id.to_string());
            param(&mut q, "fromId", &from_id.to_string());
            param(&mut q, "limit", &MY_TRADES_PAGE.to_string());
            let body = self.send(ep::MY_TRADES, Method::Get, "/api/v3/myTrades", q, true)?;
            let mut page = MyTrade::parse_list(&body).map_err(|err| unreadable(e, err))?;
            page.sort_by_key(|t| t.id);
            let full = page.len() >= MY_TRADES_PAGE;
            // `fromId` is inclusive: a trade already read is not kept twice.
            let last_seen = all.last().map(|t| t.id);
            page.retain(|t| last_seen.is_none_or(|l| t.id > l));
            let Some(last) = page.last().map(|t| t.id) else { return Ok(all) };
            all.extend(page);
            if !full {
                return Ok(all);
            }
            from_id = last + 1;
        }
        Err(BinanceError::Unavailable {
            request: e.label,
            why: format!(
                "order {order_id} has more than {} trades ({MY_TRADES_MAX_PAGES} pages); not read to the end",
                all.len()
            ),
        })
    }

    fn check_rules(&self, e: Endpoint, symbol: &str, side: Side, price: Price, qty: Qty) -> Result<(), BinanceError> {
        match self.rules.get(symbol) {
            Some(r) => {
                r.check(side, price, qty).map_err(|violation| BinanceError::LocalFilter { request: e.label, violation })
            }
            None => Ok(()),
        }
    }

    /// Our clock plus the measured offset, ms.
    fn server_ms(&self) -> i64 {
        wall_ms().saturating_add(self.offset_ms.load(Ordering::Relaxed))
    }

    /// Sends one request; `Ok` only for HTTP 200. `signed` adds
    /// `recvWindow`, `timestamp`, `signature` and the API key header.
    fn send(
        &mut self,
        (e, weight, orders): (Endpoint, u32, u32),
        method: Method,
        path: &str,
        mut query: String,
        signed: bool,
    ) -> Result<Body, BinanceError> {
        self.guard.admit(Request { label: e.label, weight, orders }).map_err(|r| refused(e, r))?;
        let server_ms = self.server_ms();
        if signed {
            self.last_timestamp_ms = Some(server_ms);
            param(&mut query, "recvWindow", &self.recv_window_ms.to_string());
            param(&mut query, "timestamp", &server_ms.to_string());
            let sig = self.creds.signer().rest_signature(query.as_bytes());
            query.push_str("&signature=");
            query.push_str(&sig);
        }
        let url =
            if query.is_empty() { format!("{}{path}", self.base) } else { format!("{}{path}?{query}", self.base) };
        let result = match method {
            Method::Get => with_key(self.agent.get(&url), signed, &self.creds).call(),
            Method::Delete => with_key(self.agent.delete(&url), signed, &self.creds).call(),
            Method::Post => with_key(self.agent.post(&url), signed, &self.creds).send_empty(),
        };
        let mut resp = result.map_err(|err| self.transport(e, err))?;
        let status = resp.status().as_u16();
        let mut retry_after = None;
        let mut weight_header = false;
        for (name, value) in resp.headers() {
            let Ok(v) = value.to_str() else { continue };
            if name.as_str().eq_ignore_ascii_case("retry-after") {
                retry_after = v.trim().parse::<u64>().ok().map(Duration::from_secs);
            } else {
                weight_header |= name.as_str().eq_ignore_ascii_case("x-mbx-used-weight-1m");
                self.guard.observe_header(name.as_str(), v);
            }
        }
        let mut body = Vec::new();
        let read = resp.body_mut().as_reader().take(MAX_BODY).read_to_end(&mut body);
        if status == 200 {
            // A 200 whose body is cut off still means the request happened.
            read.map_err(|err| errors::unknown(e, format!("the answer could not be read: {}", err.kind())))?;
            return Ok(body);
        }
        let err = errors::from_response(e, status, &body, retry_after);
        // Every 429 and 418 is the whole process's (and host's) business.
        match &err {
            BinanceError::Banned { retry_after, .. } => self.guard.on_banned(*retry_after),
            BinanceError::RateLimited { retry_after, limit: Limited::Orders, .. } => {
                self.guard.on_rate_limited(true, *retry_after)
            }
            // Request weight or RAW_REQUESTS: the guard tells them apart.
            BinanceError::RateLimited { retry_after, .. } => {
                self.guard.on_rest_rate_limited(weight_header, *retry_after);
            }
            // cancelReplace with CANCEL_ONLY over the unfilled order count:
            // 429 with both halves, the new one -1015 (rest-api.md §Cancel an
            // Existing Order and Send a New Order).
            BinanceError::ReplacePartial { halves, .. } | BinanceError::ReplaceFailed { halves, .. }
                if status == 429 =>
            {
                let orders = matches!(halves.new_order, ReplaceHalf::Failure { code: -1015, .. });
                self.guard.on_rate_limited(orders, retry_after.unwrap_or(errors::DEFAULT_RETRY_AFTER));
            }
            _ if status == 429 => {
                self.guard.on_rest_rate_limited(weight_header, retry_after.unwrap_or(errors::DEFAULT_RETRY_AFTER));
            }
            _ => {}
        }
        Err(self.redacted(err))
    }

    /// Maps a transport failure: nothing sent, or fate unknown.
    fn transport(&self, e: Endpoint, err: ureq::Error) -> BinanceError {
        use std::io::ErrorKind;
        let not_sent = |why: String| BinanceError::NotSent { request: e.label, why };
        match &err {
            ureq::Error::HostNotFound => not_sent("the host name does not resolve".into()),
            ureq::Error::ConnectionFailed => not_sent("the connection failed".into()),
            ureq::Error::Timeout(ureq::Timeout::Resolve | ureq::Timeout::Connect) => {
                not_sent("connecting timed out".into())
            }
            ureq::Error::Io(io) if matches!(io.kind(), ErrorKind::ConnectionRefused | ErrorKind::AddrNotAvailable) => {
                not_sent(format!("connecting failed: {}", io.kind()))
            }
            ureq::Error::Timeout(t) => errors::unknown(e, format!("no answer within the timeout ({t:?})")),
            ureq::Error::Io(io) => errors::unknown(e, format!("the connection broke: {}", io.kind())),
            other => errors::unknown(e, self.creds.redact(&other.to_string())),
        }
    }

    /// Removes the API key from any server text the error quotes.
    fn redacted(&self, err: BinanceError) -> BinanceError {
        err.map_text(|t| self.creds.redact(t))
    }
}

/// One of our trades (`GET /api/v3/myTrades`), in fixed-point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MyTrade {
    pub id: i64,
    pub order_id: u64,
    pub price: Price,
    pub qty: Qty,
    /// Commission, 1e-8 of `commission_asset`.
    pub commission: i64,
    pub commission_asset: String,
    pub time_ms: i64,
    pub is_buyer: bool,
    pub is_maker: bool,
}

impl MyTrade {
    /// Parses the JSON array `myTrades` answers; a trade missing a field
    /// we rely on is an error, never a guess.
    pub fn parse_list(body: &[u8]) -> Result<Vec<Self>, String> {
        let items: Vec<serde_json::Value> = serde_json::from_slice(body).map_err(|e| e.to_string())?;
        items
            .iter()
            .map(|v| {
                let dec = |k: &str| {
                    v.get(k)
                        .and_then(|x| x.as_str())
                        .and_then(|x| crate::hot::fixed::parse_fixed(x.as_bytes()).ok())
                        .ok_or_else(|| format!("trade field {k} missing or not a decimal"))
                };
                Ok(Self {
                    id: v.get("id").and_then(|x| x.as_i64()).ok_or("trade id missing")?,
                    order_id: v.get("orderId").and_then(|x| x.as_u64()).ok_or("trade orderId missing")?,
                    price: Price(dec("price")?),
                    qty: Qty(dec("qty")?),
                    commission: dec("commission").unwrap_or(0),
                    commission_asset: v.get("commissionAsset").and_then(|x| x.as_str()).unwrap_or("").to_string(),
                    time_ms: v.get("time").and_then(|x| x.as_i64()).unwrap_or(0),
                    is_buyer: v.get("isBuyer").and_then(|x| x.as_bool()).ok_or("trade isBuyer missing")?,
                    is_maker: v.get("isMaker").and_then(|x| x.as_bool()).unwrap_or(false),
                })
            })
            .collect()
    }
}

#[derive(Clone, Copy)]
enum Method {
    Get,
    Post,
    Delete,
}

fn with_key<B>(req: ureq::RequestBuilder<B>, signed: bool, creds: &Credentials) -> ureq::RequestBuilder<B> {
    if signed {
        req.header("X-MBX-APIKEY", creds.api_key())
    } else {
        req
    }
}

/// The parameters of a LIMIT_MAKER order (no `timeInForce`: Binance does
/// not take one for this type), with its `selfTradePreventionMode`.
fn order_params(symbol: &str, o: &NewOrder) -> String {
    let mut q = String::with_capacity(200);
    param(&mut q, "symbol", symbol);
    param(&mut q, "side", side_str(o.side));
    param(&mut q, "type", "LIMIT_MAKER");
    param(&mut q, "quantity", &o.qty.to_string());
    param(&mut q, "price", &o.price.to_string());
    param(&mut q, "newClientOrderId", o.client_id.as_str());
    param(&mut q, "newOrderRespType", "RESULT");
    param(&mut q, "selfTradePreventionMode", o.stp.as_str());
    q
}

/// Appends `&name=value` (value percent-encoded).
fn param(q: &mut String, name: &str, value: &str) {
    if !q.is_empty() {
        q.push('&');
    }
    q.push_str(name);
    q.push('=');
    push_query_value(value, q);
}

fn wall_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// A 200 answer that does not read as expected. On an order request the
/// order may exist, so its fate is unknown.
fn unreadable(e: Endpoint, why: impl fmt::Display) -> BinanceError {
    errors::unknown(e, format!("the answer could not be read: {why}"))
}

/// `https://host[:port]`, or `http://` to loopback only; no trailing `/`.
fn validate_base(url: &str) -> Result<String, BinanceError> {
    let url = url.trim().trim_end_matches('/');
    let bad = |why: &str| BinanceError::Invalid(format!("REST base URL {url:?}: {why}"));
    let rest = if let Some(r) = url.strip_prefix("https://") {
        r
    } else if let Some(r) = url.strip_prefix("http://") {
        let host = r.split(['/', ':']).next().unwrap_or("");
        let host = if r.starts_with('[') { r.split(']').next().map_or("", |h| &h[1..]) } else { host };
        if !matches!(host, "127.0.0.1" | "localhost" | "::1") {
            return Err(bad("plain http:// is allowed only to 127.0.0.1, localhost or [::1]; use https://"));
        }
        r
    } else {
        return Err(bad("must start with https:// (e.g. https://api.binance.com)"));
    };
    if rest.is_empty() || rest.contains(['?', '#', ' ']) {
        return Err(bad("expected scheme://host[:port], e.g. https://api.binance.com"));
    }
    Ok(url.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_ids_are_unique_valid_and_prefixed() {
        let mut ids = ClientIds::new("mmRun.7:a/b_c-d").unwrap();
        let a = ids.next();
        let b = ids.next();
        assert_eq!((a.as_str(), b.as_str()), ("mmRun.7:a/b_c-d-1", "mmRun.7:a/b_c-d-2"));
        let mut big = ClientIds { prefix: "x".repeat(23), next: ClientIds::MAX_COUNTER };
        assert_eq!(big.next().as_str().len(), 36);
        assert_eq!(big.next().as_str(), format!("{}-1", "x".repeat(23)), "wraps to 1");
        for bad in ["", "twenty-four-characters-x", "has space", "ünï"] {
            assert!(ClientIds::new(bad).is_err(), "{bad}");
        }
        assert!(ClientOrderId::new(&"a".repeat(37)).is_err());
        let p = ClientIds::prefix_from_clock();
        assert_eq!(p.len(), 15, "{p}");
        assert!(p.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()), "{p}");
        // A configured prefix of up to 10 characters still fits.
        assert!(ClientIds::new(&format!("abcdefghij{}", ClientIds::clock_tag())).is_ok());
        assert_eq!(base36(35, 3), "00z");
        assert_eq!(base36(36 * 36 * 36 + 1, 3), "001", "the lowest digits");
    }

    #[test]
    fn base_urls_are_https_or_loopback() {
        assert_eq!(validate_base("https://api.binance.com/").unwrap(), "https://api.binance.com");
        assert!(validate_base(TESTNET_URL).is_ok());
        assert!(validate_base("http://127.0.0.1:8080").is_ok());
        assert!(validate_base("http://[::1]:8080").is_ok());
        assert!(validate_base("http://api.binance.com").is_err());
        assert!(validate_base("api.binance.com").is_err());
        assert!(validate_base("https://").is_err());
    }

    #[test]
    fn order_parameters_are_exact_decimals() {
        let o = NewOrder {
            side: Side::Sell,
            price: "60123.45".parse().unwrap(),
            qty: Qty(1),
            client_id: ClientOrderId::new("mm-1").unwrap(),
            stp: StpMode::ExpireMaker,
        };
        assert_eq!(
            order_params("BTCUSDT", &o),
            "symbol=BTCUSDT&side=SELL&type=LIMIT_MAKER&quantity=0.00000001&price=60123.45&newClientOrderId=mm-1\
             &newOrderRespType=RESULT&selfTradePreventionMode=EXPIRE_MAKER"
        );
    }
}

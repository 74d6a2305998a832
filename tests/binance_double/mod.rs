//! An independent test double of Binance spot's trading API (REST and WebSocket API with the
//! user data stream) for one account trading one symbol or several
//! (`DoubleConfig::rules` plus `DoubleConfig::more_symbols`), written from Binance's documentation alone
//! (binance/binance-spot-api-docs: rest-api.md, web-socket-api.md, user-data-stream.md,
//! errors.md, filters.md, enums.md, faqs/commission_faq.md, faqs/stp_faq.md) so that it does not
//! share mmbot's reading of the API.
//!
//! Include from an integration test with
//! `#[path = "binance_double/mod.rs"] mod binance_double;`.
//!
//! [`BinanceDouble::start`] listens on `127.0.0.1:0`, one thread per connection (bounded by
//! `DoubleConfig::max_connections`), and stops on drop. The test drives the market and the faults
//! with Rust methods and inspects what happened with others; nothing of that is reachable over HTTP.
//!
//! ```ignore
//! let d = BinanceDouble::start(DoubleConfig::default())?;      // BTCUSDT, the docs' HMAC key
//! d.set_market(Some((fx("100.00"), fx("5"))), Some((fx("100.10"), fx("5"))));
//! // ... point the client at d.rest_url() and d.ws_api_url(), let it quote ...
//! d.market_trade(Side::Sell, fx("100.00"), fx("0.01"));        // fills our bids at 100.00
//! assert_eq!(d.max_open_per_side(), (1, 1));
//! ```
//!
//! Several symbols: list them in `DoubleConfig::more_symbols` (e.g.
//! `SymbolRules::named("ETHUSDT", "ETH", "USDT")`). The helpers without a symbol act on the
//! default symbol (`DoubleConfig::rules`); their `_on`/`_for` twins take the symbol's name.
//! Inspection (`orders`, `open_orders`, `trades`) covers every symbol and each record carries
//! its `symbol`. Balances are the account's, shared by every symbol, and one user-data
//! subscription receives every symbol's events (see [`Shared::flush_events`]).
//!
//! Files: `config.rs` (what it starts with), `engine.rs` (orders, matching, balances, events),
//! `api.rs` (one request, either transport), `auth.rs` (signatures, timing), `limits.rs` (rate
//! limits, bans), `http.rs` / `ws.rs` (the two doors), `client.rs` / `testkit.rs` (a plain client
//! and helpers for tests), `fixed.rs` (8-decimal fixed point).
//!
//! Choices the docs leave open are marked "UNVERIFIED" or "the double's choice" where made.
#![allow(dead_code, unused_imports)]

pub mod api;
pub mod auth;
pub mod client;
pub mod config;
pub mod engine;
pub mod fixed;
pub mod http;
pub mod limits;
pub mod testkit;
pub mod ws;

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

pub use api::Transport;
pub use config::{ApiKey, Commission, DoubleConfig, KeySecret, RateLimits, SymbolRules};
pub use engine::{Balance, Level, Order, OrderStatus, Side, Sym, Trade};

/// Most request-log entries and pushed events kept.
pub const MAX_LOG: usize = 100_000;

/// One request as the double received it (signature removed).
#[derive(Clone, Debug)]
pub struct LoggedRequest {
    pub transport: Transport,
    /// `POST /api/v3/order`, or the WebSocket method (`order.place`).
    pub label: String,
    /// The WebSocket API method name both transports map to (`order.place`).
    pub method: String,
    pub params: BTreeMap<String, String>,
    /// Server time when it arrived.
    pub at_ms: i64,
    /// It arrived while the IP was banned.
    pub during_ban: bool,
}

/// Faults armed by the test.
#[derive(Default)]
pub(crate) struct Faults {
    /// Every Nth order request answers -1007 and reaches the engine after the delay.
    pub timeout_every: Option<(u64, Duration, Duration)>,
    /// Every Nth order request answers -1006 after being executed.
    pub unexpected_every: Option<u64>,
    /// Order requests seen (order.place / order.cancelReplace, both transports).
    pub order_requests: u64,
    /// HTTP (and WebSocket `status`) for -1006/-1007; 0 means [`api::UNKNOWN_STATUS_HTTP`].
    pub unknown_status: u16,
    /// Methods the -1007/-1006 faults count and hit; empty means `order.place` and `order.cancelReplace`.
    pub methods: Vec<String>,
}

/// Everything behind the one mutex.
pub(crate) struct State {
    pub engine: engine::Engine,
    pub limiter: limits::Limiter,
    pub faults: Faults,
    pub log: Vec<LoggedRequest>,
    /// Every user-data event produced, in order (pushed or not).
    pub events: Vec<Value>,
}

/// One open connection, as the double's control side sees it.
pub(crate) struct Conn {
    pub id: u64,
    pub is_ws: AtomicBool,
    /// Frames to send (WebSocket only).
    pub tx: Mutex<Option<SyncSender<String>>>,
    /// Close abruptly (TCP shutdown, no close frame).
    pub kill: AtomicBool,
    /// Send a close frame at this many ms after the double started (0: never).
    pub close_at: AtomicU64,
    /// Active user-data subscription id on this connection.
    pub subscription: Mutex<Option<i64>>,
}

/// State shared by the listener, connection threads and the test's handle.
pub(crate) struct Shared {
    pub cfg: DoubleConfig,
    pub st: Mutex<State>,
    pub shutdown: AtomicBool,
    pub conns: Mutex<Vec<Arc<Conn>>>,
    pub threads: AtomicUsize,
    pub deferred_inflight: AtomicUsize,
    pub clock_offset_ms: AtomicI64,
    pub answer_delay_ms: AtomicU64,
    pub started: Instant,
    /// Panics caught in server threads (there should be none: a bug in the double).
    pub panics: AtomicUsize,
    next_conn: AtomicU64,
}

/// `Instant::now() + d`, saturating at a year (a huge test setting must not overflow).
pub fn after(d: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(d.min(Duration::from_secs(365 * 86_400))).unwrap_or(now)
}

/// Milliseconds of `d` as i64, saturating.
pub fn ms_i64(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    pub fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.st)
    }

    /// Server time in µs (the host clock plus the test's offset).
    pub fn now_us(&self) -> i64 {
        let sys = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as i64);
        sys + self.clock_offset_ms.load(Ordering::SeqCst) * 1000
    }

    pub fn now_ms(&self) -> i64 {
        self.now_us() / 1000
    }

    pub fn since_start_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    pub fn answer_delay(&self) -> Duration {
        Duration::from_millis(self.answer_delay_ms.load(Ordering::SeqCst))
    }

    /// Pushes the engine's new events to every subscribed WebSocket connection, wrapped as
    /// web-socket-api.md §Event format shows: `{"subscriptionId": N, "event": {...}}`.
    /// Called with the state locked so events keep their order. The double serves one account,
    /// so every subscription gets every event, whatever its symbol (web-socket-api.md §User Data
    /// Stream requests: subscriptions "receive all the events related to a given account"); each
    /// `executionReport` names its symbol in `s`, each `outboundAccountPosition` lists the assets
    /// the event may have changed (user-data-stream.md §Order Update, §Account Update).
    pub fn flush_events(&self, st: &mut State) {
        let evs: Vec<Value> = std::mem::take(&mut st.engine.events);
        if evs.is_empty() {
            return;
        }
        let conns = lock(&self.conns).clone();
        for ev in evs {
            for c in &conns {
                let sub = *lock(&c.subscription);
                if let Some(id) = sub {
                    let frame = json!({"subscriptionId": id, "event": ev}).to_string();
                    self.send_to(c, frame);
                }
            }
            if st.events.len() < MAX_LOG {
                st.events.push(ev);
            }
        }
    }

    /// Queues a frame; a connection whose queue is full is dropped (bounded memory).
    pub fn send_to(&self, c: &Conn, frame: String) {
        if let Some(tx) = lock(&c.tx).as_ref() {
            if tx.try_send(frame).is_err() {
                c.kill.store(true, Ordering::SeqCst);
            }
        }
    }

    pub fn ws_conns(&self) -> Vec<Arc<Conn>> {
        lock(&self.conns).iter().filter(|c| c.is_ws.load(Ordering::SeqCst)).cloned().collect()
    }

    /// Drops every WebSocket connection (an IP ban disconnects: web-socket-api.md §IP limits).
    pub fn kill_ws(&self, only_subscribed: bool) -> usize {
        let mut n = 0;
        for c in self.ws_conns() {
            if !only_subscribed || lock(&c.subscription).is_some() {
                c.kill.store(true, Ordering::SeqCst);
                n += 1;
            }
        }
        n
    }

    fn register(&self) -> Arc<Conn> {
        let c = Arc::new(Conn {
            id: self.next_conn.fetch_add(1, Ordering::SeqCst),
            is_ws: AtomicBool::new(false),
            tx: Mutex::new(None),
            kill: AtomicBool::new(false),
            close_at: AtomicU64::new(0),
            subscription: Mutex::new(None),
        });
        lock(&self.conns).push(Arc::clone(&c));
        c
    }

    fn unregister(&self, id: u64) {
        lock(&self.conns).retain(|c| c.id != id);
    }
}

/// The running double. Dropping it stops the listener and closes every connection.
pub struct BinanceDouble {
    sh: Arc<Shared>,
    addr: SocketAddr,
    listener: Option<JoinHandle<()>>,
}

impl BinanceDouble {
    /// Starts a double on `127.0.0.1:0` with `cfg`.
    pub fn start(cfg: DoubleConfig) -> std::io::Result<BinanceDouble> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let st = State {
            engine: engine::Engine::new(&cfg),
            limiter: limits::Limiter::new(cfg.limits.clone()),
            faults: Faults::default(),
            log: Vec::new(),
            events: Vec::new(),
        };
        let sh = Arc::new(Shared {
            cfg,
            st: Mutex::new(st),
            shutdown: AtomicBool::new(false),
            conns: Mutex::new(Vec::new()),
            threads: AtomicUsize::new(0),
            deferred_inflight: AtomicUsize::new(0),
            clock_offset_ms: AtomicI64::new(0),
            answer_delay_ms: AtomicU64::new(0),
            started: Instant::now(),
            panics: AtomicUsize::new(0),
            next_conn: AtomicU64::new(1),
        });
        let sh2 = Arc::clone(&sh);
        let h = std::thread::Builder::new().name("dbl-listen".into()).spawn(move || accept_loop(sh2, listener))?;
        Ok(BinanceDouble { sh, addr, listener: Some(h) })
    }

    /// Starts with [`DoubleConfig::default`] (BTCUSDT, the docs' HMAC key, 1 BTC + 100,000 USDT).
    pub fn start_default() -> std::io::Result<BinanceDouble> {
        Self::start(DoubleConfig::default())
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT` (REST base URL).
    pub fn rest_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `ws://127.0.0.1:PORT/ws-api/v3` (WebSocket API URL).
    pub fn ws_api_url(&self) -> String {
        format!("ws://{}/ws-api/v3", self.addr)
    }

    fn with<R>(&self, f: impl FnOnce(&mut State, i64) -> R) -> R {
        let now = self.sh.now_ms();
        let mut st = self.sh.lock();
        let r = f(&mut st, now);
        self.sh.flush_events(&mut st);
        r
    }

    /// The market index of `symbol`; panics (test code) when the double does not serve it.
    fn sym(&self, symbol: &str) -> Sym {
        self.sh
            .cfg
            .all_symbols()
            .iter()
            .position(|r| r.symbol == symbol)
            .unwrap_or_else(|| panic!("the double does not serve {symbol:?}: add it to DoubleConfig::more_symbols"))
    }

    /// Every symbol served, the default first (as `exchangeInfo` lists them).
    pub fn symbols(&self) -> Vec<String> {
        self.sh.cfg.all_symbols().into_iter().map(|r| r.symbol).collect()
    }

    /// The default symbol's name (`DoubleConfig::rules.symbol`).
    pub fn default_symbol(&self) -> String {
        self.sh.cfg.rules.symbol.clone()
    }

    // ---------------- market and account control ----------------

    /// Sets the other participants' best bid and ask of the default symbol as `(price, qty)`.
    /// It does not trade: LIMIT_MAKER orders that would cross it are refused; LIMIT orders take from it.
    pub fn set_market(&self, bid: Option<(i64, i64)>, ask: Option<(i64, i64)>) {
        self.set_market_at(0, bid, ask);
    }

    /// [`Self::set_market`] on `symbol` (panics when the double does not serve it).
    pub fn set_market_for(&self, symbol: &str, bid: Option<(i64, i64)>, ask: Option<(i64, i64)>) {
        self.set_market_at(self.sym(symbol), bid, ask);
    }

    fn set_market_at(&self, s: Sym, bid: Option<(i64, i64)>, ask: Option<(i64, i64)>) {
        self.with(|st, _| {
            let m = &mut st.engine.markets[s];
            m.bid = bid.map(|(price, qty)| Level { price, qty });
            m.ask = ask.map(|(price, qty)| Level { price, qty });
        });
    }

    /// Another participant's aggressive order on the default symbol, on `taker_side`, trading
    /// through to `price` for up to `qty`: fills our crossing resting orders at their prices,
    /// price then time priority, partially where `qty` runs out. Returns how much of ours filled.
    pub fn market_trade(&self, taker_side: Side, price: i64, qty: i64) -> i64 {
        self.with(|st, now| st.engine.market_trade(0, taker_side, price, qty, now))
    }

    /// [`Self::market_trade`] on `symbol`: only that symbol's orders fill (panics when the
    /// double does not serve it).
    pub fn market_trade_on(&self, symbol: &str, taker_side: Side, price: i64, qty: i64) -> i64 {
        let s = self.sym(symbol);
        self.with(|st, now| st.engine.market_trade(s, taker_side, price, qty, now))
    }

    /// A trade printed on the default symbol at `price` for up to `qty` by others: fills our BUY
    /// orders priced at or above it (a seller hit them) and our SELL orders at or below it (a
    /// buyer lifted them). Returns how much of ours filled.
    pub fn print_trade(&self, price: i64, qty: i64) -> i64 {
        self.print_trade_at(0, price, qty)
    }

    /// [`Self::print_trade`] on `symbol`.
    pub fn print_trade_on(&self, symbol: &str, price: i64, qty: i64) -> i64 {
        self.print_trade_at(self.sym(symbol), price, qty)
    }

    fn print_trade_at(&self, s: Sym, price: i64, qty: i64) -> i64 {
        self.with(|st, now| {
            let a = st.engine.market_trade(s, Side::Sell, price, qty, now);
            a + st.engine.market_trade(s, Side::Buy, price, qty - a, now)
        })
    }

    /// The exchange expires one of our open orders on the default symbol (`EXPIRED`,
    /// `eR: EXCHANGE_CANCELED`). False when it is not open.
    pub fn expire_order(&self, order_id: i64) -> bool {
        self.with(|st, now| st.engine.expire(0, order_id, now))
    }

    /// [`Self::expire_order`] for an order of `symbol` (order ids are per symbol).
    pub fn expire_order_on(&self, symbol: &str, order_id: i64) -> bool {
        let s = self.sym(symbol);
        self.with(|st, now| st.engine.expire(s, order_id, now))
    }

    /// A deposit (positive) or withdrawal (negative): `balanceUpdate` + `outboundAccountPosition`.
    pub fn balance_delta(&self, asset: &str, delta: i64) {
        self.with(|st, now| st.engine.balance_delta(asset, delta, now));
    }

    /// Another session of the same account places a LIMIT order on the default symbol (bypassing
    /// the API's limits and faults). Used to make our resting orders meet self-trade prevention
    /// (stp_faq.md).
    pub fn place_other_session_order(
        &self,
        side: Side,
        price: i64,
        qty: i64,
        time_in_force: &str,
        stp_mode: &str,
    ) -> Result<Order, (i64, String)> {
        self.place_other_session_order_at(0, side, price, qty, time_in_force, stp_mode)
    }

    /// [`Self::place_other_session_order`] on `symbol`.
    pub fn place_other_session_order_on(
        &self,
        symbol: &str,
        side: Side,
        price: i64,
        qty: i64,
        time_in_force: &str,
        stp_mode: &str,
    ) -> Result<Order, (i64, String)> {
        self.place_other_session_order_at(self.sym(symbol), side, price, qty, time_in_force, stp_mode)
    }

    fn place_other_session_order_at(
        &self,
        s: Sym,
        side: Side,
        price: i64,
        qty: i64,
        time_in_force: &str,
        stp_mode: &str,
    ) -> Result<Order, (i64, String)> {
        self.with(|st, now| {
            let n = engine::NewOrder {
                side,
                order_type: "LIMIT".into(),
                time_in_force: time_in_force.into(),
                price,
                qty,
                client_order_id: None,
                stp_mode: stp_mode.into(),
            };
            st.engine.place(s, n, now).map(|p| p.order)
        })
    }

    /// Shifts the server clock (a client with a skewed clock sees -1021).
    pub fn set_clock_offset_ms(&self, ms: i64) {
        self.sh.clock_offset_ms.store(ms, Ordering::SeqCst);
    }

    /// The server's clock now, in ms.
    pub fn server_time_ms(&self) -> i64 {
        self.sh.now_ms()
    }

    pub fn set_can_trade(&self, can: bool) {
        self.with(|st, _| st.engine.can_trade = can);
    }

    pub fn set_commission(&self, c: Commission) {
        self.with(|st, _| st.engine.commission = c);
    }

    pub fn set_rate_limits(&self, l: RateLimits) {
        self.with(|st, _| st.limiter.cfg = l);
    }

    /// Zeroes the weight and order counters (instead of waiting for the next interval).
    pub fn reset_rate_counters(&self) {
        self.with(|st, _| st.limiter.reset_counters());
    }

    // ---------------- faults ----------------

    /// Every `n`th order request (`POST /api/v3/order`, `order.place`, cancelReplace; counted
    /// over both transports) is answered -1007 TIMEOUT at once and reaches the engine only after
    /// `engine_delay`; until then lookups answer -2013. `n == 0` turns it off.
    pub fn fault_timeout_every(&self, n: u64, engine_delay: Duration) {
        self.fault_timeout_every_answering_after(n, engine_delay, Duration::ZERO);
    }

    /// As [`Self::fault_timeout_every`], with the -1007 answer itself held `answer_after` (plus
    /// the global answer delay): Binance answers -1007 after its 10 s backend timeout
    /// (rest-api.md §General API Information), so the order may be on the book before the answer.
    pub fn fault_timeout_every_answering_after(&self, n: u64, engine_delay: Duration, answer_after: Duration) {
        self.with(|st, _| st.faults.timeout_every = (n > 0).then_some((n, engine_delay, answer_after)));
    }

    /// The status -1006/-1007 answers carry (default 503; rest-api.md §HTTP Return Codes only
    /// says "5XX ... execution status is UNKNOWN").
    pub fn set_unknown_status_http(&self, status: u16) {
        self.with(|st, _| st.faults.unknown_status = status);
    }

    /// Which methods (WebSocket names; REST maps to them, e.g. `order.cancel` for
    /// `DELETE /api/v3/order`) the -1007/-1006 faults count and hit. Default: `order.place`,
    /// `order.cancelReplace`.
    pub fn set_fault_methods(&self, methods: &[&str]) {
        self.with(|st, _| st.faults.methods = methods.iter().map(|m| m.to_string()).collect());
    }

    /// Every `n`th order request is executed and then answered -1006 UNEXPECTED_RESP.
    pub fn fault_unexpected_every(&self, n: u64) {
        self.with(|st, _| st.faults.unexpected_every = (n > 0).then_some(n));
    }

    /// Delays every answer (REST responses and WebSocket responses; not pushed events) by `d`.
    /// Requests are processed at once; only the answer waits, so answers overlap.
    pub fn set_answer_delay(&self, d: Duration) {
        self.sh.answer_delay_ms.store(u64::try_from(d.as_millis()).unwrap_or(u64::MAX), Ordering::SeqCst);
    }

    /// Bans the IP for `d`: every REST request and WebSocket connect answers 418, open WebSocket
    /// connections are dropped, and every request is counted.
    pub fn ban_ip(&self, d: Duration) {
        self.with(|st, now| st.limiter.ban(now.saturating_add(ms_i64(d))));
        self.sh.kill_ws(false);
    }

    pub fn lift_ban(&self) {
        self.with(|st, _| st.limiter.lift_ban());
    }

    /// Sends `serverShutdown` (web-socket-api.md §Server Shutdown) on every WebSocket connection
    /// and closes them `grace` later.
    pub fn server_shutdown(&self, grace: Duration) -> usize {
        let now = self.sh.now_ms();
        let at = self.sh.since_start_ms().saturating_add(u64::try_from(grace.as_millis()).unwrap_or(u64::MAX));
        let frame = json!({"event": {"e": "serverShutdown", "E": now}}).to_string();
        let conns = self.sh.ws_conns();
        for c in &conns {
            self.sh.send_to(c, frame.clone());
            c.close_at.store(at.max(1), Ordering::SeqCst);
        }
        conns.len()
    }

    /// Drops (TCP shutdown, no close frame) every connection with a user-data subscription.
    pub fn drop_user_data_connections(&self) -> usize {
        self.sh.kill_ws(true)
    }

    /// Drops every WebSocket connection.
    pub fn drop_ws_connections(&self) -> usize {
        self.sh.kill_ws(false)
    }

    // ---------------- inspection ----------------

    /// Every order ever accepted, every symbol, in placement order (orderId order within a
    /// symbol; each carries its `symbol`).
    pub fn orders(&self) -> Vec<Order> {
        self.sh.lock().engine.orders.clone()
    }

    /// The default symbol's order with this id (order ids are per symbol).
    pub fn order(&self, order_id: i64) -> Option<Order> {
        self.order_on(&self.sh.cfg.rules.symbol, order_id)
    }

    /// The order of `symbol` with this id; None also for a symbol not served.
    pub fn order_on(&self, symbol: &str, order_id: i64) -> Option<Order> {
        self.sh.lock().engine.orders.iter().find(|o| o.symbol == symbol && o.order_id == order_id).cloned()
    }

    /// The latest order, of any symbol, with this client order id.
    pub fn order_by_client_id(&self, client_order_id: &str) -> Option<Order> {
        self.sh.lock().engine.orders.iter().rev().find(|o| o.client_order_id == client_order_id).cloned()
    }

    /// Every open order, every symbol (each carries its `symbol`).
    pub fn open_orders(&self) -> Vec<Order> {
        self.sh.lock().engine.orders.iter().filter(|o| o.status.is_open()).cloned().collect()
    }

    /// The open orders of `symbol`.
    pub fn open_orders_on(&self, symbol: &str) -> Vec<Order> {
        self.sh.lock().engine.orders.iter().filter(|o| o.symbol == symbol && o.status.is_open()).cloned().collect()
    }

    /// Every fill of ours, every symbol (a self-trade gives two, one per side, with one trade
    /// id; trade ids are per symbol; each carries its `symbol`).
    pub fn trades(&self) -> Vec<Trade> {
        self.sh.lock().engine.trades.clone()
    }

    /// The fills of ours on `symbol`.
    pub fn trades_on(&self, symbol: &str) -> Vec<Trade> {
        self.sh.lock().engine.trades.iter().filter(|t| t.symbol == symbol).cloned().collect()
    }

    pub fn balance(&self, asset: &str) -> Balance {
        self.sh.lock().engine.balances.get(asset).copied().unwrap_or_default()
    }

    pub fn balances(&self) -> BTreeMap<String, Balance> {
        self.sh.lock().engine.balances.clone()
    }

    /// Most open orders ever seen at once on the default symbol: `(BUY, SELL)`.
    pub fn max_open_per_side(&self) -> (usize, usize) {
        let m = self.sh.lock().engine.markets[0].max_open;
        (m[0], m[1])
    }

    /// Most open orders ever seen at once on `symbol`: `(BUY, SELL)` (panics when not served).
    pub fn max_open_per_side_on(&self, symbol: &str) -> (usize, usize) {
        let s = self.sym(symbol);
        let m = self.sh.lock().engine.markets[s].max_open;
        (m[0], m[1])
    }

    /// Requests (REST calls, WebSocket connects and messages) that arrived while banned.
    pub fn requests_during_ban(&self) -> u64 {
        self.sh.lock().limiter.requests_during_ban
    }

    /// 429s answered: `(weight -1003, orders -1015)`.
    pub fn answered_429(&self) -> (u64, u64) {
        self.sh.lock().limiter.answered_429
    }

    pub fn answered_418(&self) -> u64 {
        self.sh.lock().limiter.answered_418
    }

    /// True while the IP is banned.
    pub fn is_banned(&self) -> bool {
        let now = self.sh.now_ms();
        self.sh.lock().limiter.ban_until(now).is_some()
    }

    /// The request log, oldest first.
    pub fn request_log(&self) -> Vec<LoggedRequest> {
        self.sh.lock().log.clone()
    }

    /// Log entries for one WebSocket-style method name (`order.place` also covers REST `POST /api/v3/order`).
    pub fn requests_for(&self, method: &str) -> Vec<LoggedRequest> {
        self.sh.lock().log.iter().filter(|r| r.method == method).cloned().collect()
    }

    /// Every user-data event produced, oldest first (unwrapped `event` objects).
    pub fn events(&self) -> Vec<Value> {
        self.sh.lock().events.clone()
    }

    /// REQUEST_WEIGHT used in the current minute, and ORDERS in the current 10 s and day.
    pub fn usage(&self) -> (u32, u32, u32) {
        let now = self.sh.now_ms();
        let mut st = self.sh.lock();
        let w = st.limiter.weight_used(now);
        let (o, d) = st.limiter.orders_used(now);
        (w, o, d)
    }

    /// Panics caught in the double's threads; a test can assert this is 0 at its end.
    pub fn server_panics(&self) -> usize {
        self.sh.panics.load(Ordering::SeqCst)
    }

    /// Connection threads running now (REST and WebSocket).
    pub fn connection_threads(&self) -> usize {
        self.sh.threads.load(Ordering::SeqCst)
    }

    /// Open WebSocket connections, and how many of them have a user-data subscription.
    pub fn ws_connections(&self) -> (usize, usize) {
        let c = self.sh.ws_conns();
        let subs = c.iter().filter(|c| lock(&c.subscription).is_some()).count();
        (c.len(), subs)
    }
}

impl Drop for BinanceDouble {
    fn drop(&mut self) {
        self.sh.shutdown.store(true, Ordering::SeqCst);
        if let Some(h) = self.listener.take() {
            let _ = h.join();
        }
        // Connection threads poll the flag every few ms; wait a bounded time for them.
        let end = Instant::now() + Duration::from_secs(3);
        while self.sh.threads.load(Ordering::SeqCst) > 0 && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

fn accept_loop(sh: Arc<Shared>, listener: TcpListener) {
    while !sh.shutdown.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, _)) => {
                if sh.threads.load(Ordering::SeqCst) >= sh.cfg.max_connections {
                    drop(stream);
                    continue;
                }
                let _ = stream.set_nonblocking(false);
                let conn = sh.register();
                sh.threads.fetch_add(1, Ordering::SeqCst);
                let sh2 = Arc::clone(&sh);
                let id = conn.id;
                let spawned = std::thread::Builder::new().name(format!("dbl-conn-{id}")).spawn(move || {
                    let served =
                        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| http::serve(&sh2, stream, &conn)));
                    if served.is_err() {
                        sh2.panics.fetch_add(1, Ordering::SeqCst);
                    }
                    sh2.unregister(id);
                    sh2.threads.fetch_sub(1, Ordering::SeqCst);
                });
                if spawned.is_err() {
                    sh.unregister(id);
                    sh.threads.fetch_sub(1, Ordering::SeqCst);
                }
            }
            Err(_) => std::thread::sleep(Duration::from_millis(2)),
        }
    }
}

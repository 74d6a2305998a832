//! Non-blocking order entry: [`OrderGateway`] takes order calls from the
//! exec thread ([`OrderGateway::submit`] returns at once with a
//! [`RequestId`]) and hands back their answers and the user-data events
//! ([`OrderGateway::poll`] never waits).
//!
//! Why: one blocking REST call per order froze both sides for a whole round
//! trip (a 5 s timeout froze quoting for 5 s). Here every side's request is
//! in flight on its own, so a slow answer on one side never delays the
//! other or the next quote's decision (DESIGN.md, Exec).
//!
//! Transport: the WebSocket API (`order.place`, `order.cancel`,
//! `order.cancelReplace`, `order.status`, ...) with requests pipelined on
//! one session and matched by id ([`crate::exec::binance::wsapi`]); REST
//! worker threads as the fallback while the WebSocket API is unavailable.
//! The user-data subscription rides on the same WebSocket API session.
//!
//! Every request asks the process's [`IpGuard`]
//! first; a refusal comes back as an answer like any other (nothing sent).
//!
//! Answers: every call gets exactly one [`Answer`]. A request whose answer
//! does not come within [`GatewayConfig::timeout`], or whose connection
//! drops while it is in flight, is answered here with
//! [`BinanceError::Unknown`] (reads: [`BinanceError::Unavailable`]), never
//! dropped and never sent again by the gateway (web-socket-api.md §Status
//! codes: an unanswered order's execution status is unknown).
//!
//! Events: [`GatewayEvent::Session`] `up: true` comes for every session
//! installed (the first, a reconnect, and each switch after a
//! `serverShutdown` or before the 24 h limit, with no `up: false` between);
//! `up: false` once when calls start going over REST. With user data on,
//! every (re)subscription is a `UserEvent::Subscribed { generation }` and
//! a lost one a `UserEvent::Disconnected`.
//!
//! Threads: the exec thread only sends on channels and reads one; the
//! session thread ([`crate::exec::binance::wsapi`]) sleeps in a `mio` poll
//! woken by a new call or a readable socket; REST workers
//! (`gateway/rest_pool.rs`) block on their own calls.

mod rest_pool;

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::exec::binance::filters::SymbolRules;
use crate::exec::binance::keys::Credentials;
use crate::exec::binance::rest::RestClient;
use crate::exec::binance::wsapi::{self, request::method_info};
use crate::feed::endpoint::Url;
use crate::ipguard::IpGuard;
use crate::stats::latency::Percentiles;

use crate::exec::binance::errors::{BinanceError, Endpoint};
use crate::exec::binance::model::{Account, Order};
use crate::exec::binance::rest::{ClientOrderId, MyTrade, Replaced};
use crate::exec::userdata::UserEvent;
use crate::exec::Side;
use crate::hot::fixed::{Price, Qty};

/// Matches an answer to its call; unique per gateway, never 0.
pub type RequestId = u64;

/// `selfTradePreventionMode` (FACTS.md §4.1; enums.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StpMode {
    None,
    #[default]
    ExpireMaker,
    ExpireTaker,
    ExpireBoth,
    Decrement,
    Transfer,
}

impl StpMode {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "NONE",
            Self::ExpireMaker => "EXPIRE_MAKER",
            Self::ExpireTaker => "EXPIRE_TAKER",
            Self::ExpireBoth => "EXPIRE_BOTH",
            Self::Decrement => "DECREMENT",
            Self::Transfer => "TRANSFER",
        }
    }

    /// Parses a wire name (as written in config).
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "NONE" => Self::None,
            "EXPIRE_MAKER" => Self::ExpireMaker,
            "EXPIRE_TAKER" => Self::ExpireTaker,
            "EXPIRE_BOTH" => Self::ExpireBoth,
            "DECREMENT" => Self::Decrement,
            "TRANSFER" => Self::Transfer,
            _ => return None,
        })
    }
}

/// Which order a cancel (or cancelReplace) names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    OrderId(u64),
    ClientId(String),
}

/// A new `LIMIT_MAKER` order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOrder {
    pub side: Side,
    pub price: Price,
    pub qty: Qty,
    pub client_id: ClientOrderId,
    pub stp: StpMode,
}

/// What the exec thread asks for. Every call names the gateway's symbol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    /// `order.place` / `POST /api/v3/order`, `newOrderRespType=RESULT`.
    Place(NewOrder),
    /// `order.test` / `POST /api/v3/order/test` (dry runs: nothing placed).
    Test(NewOrder),
    /// `order.cancel` / `DELETE /api/v3/order`.
    Cancel(Target),
    /// `order.cancelReplace` / `POST /api/v3/order/cancelReplace` with
    /// `cancelReplaceMode=STOP_ON_FAILURE` and
    /// `orderRateLimitExceededMode=CANCEL_ONLY`.
    CancelReplace { cancel: Target, new: NewOrder },
    /// `order.status` / `GET /api/v3/order` by client order id.
    Query { client_id: String },
    /// `openOrders.status` / `GET /api/v3/openOrders`.
    OpenOrders,
    /// `openOrders.cancelAll` / `DELETE /api/v3/openOrders`.
    CancelAll,
    /// `account.status` / `GET /api/v3/account`.
    Account,
    /// `myTrades` for one order, every page (`fromId`), oldest first.
    MyTrades { order_id: u64 },
    /// `GET /api/v3/time` on a REST worker: measures the clock offset
    /// (after a -1021) and installs it for every transport and the guard.
    /// Always REST: the REST clients keep their own offset, so the one that
    /// measures is one that signs.
    SyncClock,
}

impl Call {
    /// The method name for reports and the `order_rtt` stage.
    pub fn method(&self) -> &'static str {
        match self {
            Self::Place(_) => "place",
            Self::Test(_) => "test",
            Self::Cancel(_) => "cancel",
            Self::CancelReplace { .. } => "cancel_replace",
            Self::Query { .. } => "query",
            Self::OpenOrders => "open_orders",
            Self::CancelAll => "cancel_all",
            Self::Account => "account",
            Self::MyTrades { .. } => "my_trades",
            Self::SyncClock => "sync_clock",
        }
    }
}

/// A successful answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// Place, cancel, query.
    Order(Order),
    Replaced(Replaced),
    /// `order.test` accepted the order.
    Tested,
    /// Open orders, or what a cancel-all cancelled.
    Orders(Vec<Order>),
    Account(Account),
    Trades(Vec<MyTrade>),
    /// [`Call::SyncClock`]: server clock minus ours, ms (now in use).
    Clock {
        offset_ms: i64,
    },
}

/// How a call travelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    WsApi,
    Rest,
    /// Refused before sending (the guard or a local check): nothing left.
    NotSent,
}

/// The answer to one [`Call`].
#[derive(Debug, Clone)]
pub struct Answer {
    pub id: RequestId,
    /// [`Call::method`] of the call.
    pub method: &'static str,
    pub via: Transport,
    /// When the request left (or was refused).
    pub sent_at: Instant,
    /// The signed request's `timestamp` (server clock, ms); 0 when unsigned
    /// or not sent. With `recv_window` it bounds when the matching engine
    /// may still act on it (FACTS.md §4.7).
    pub timestamp_ms: i64,
    pub recv_window: Duration,
    /// Send to answer.
    pub rtt: Duration,
    pub result: Result<Reply, BinanceError>,
}

/// What [`OrderGateway::poll`] hands back.
// Each event is moved once through a channel; boxing the answer would add
// an allocation per answer to save a copy of a few hundred bytes.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum GatewayEvent {
    Answer(Answer),
    /// A user-data event (fills, order updates, balances); `Subscribed`
    /// with a generation > 1 means events may have been missed.
    User(UserEvent),
    /// The WebSocket API session changed: `up` false means calls go over
    /// REST until it is back.
    Session {
        up: bool,
        why: String,
    },
}

/// Binance spot's WebSocket API (FACTS.md §3.3).
pub const MAINNET_WS_API_URL: &str = "wss://ws-api.binance.com:443/ws-api/v3";
/// The spot testnet's WebSocket API (FACTS.md §3.5).
pub const TESTNET_WS_API_URL: &str = "wss://ws-api.testnet.binance.vision/ws-api/v3";

/// How the gateway talks to Binance.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// The WebSocket API (`wss://`, or `ws://127.0.0.1:port/ws-api/v3` for a
    /// simulator or test double); `None`: REST only.
    pub ws_api_url: Option<String>,
    /// The symbol every call trades.
    pub symbol: String,
    /// `recvWindow` of every signed WebSocket API request (at most 60 s).
    pub recv_window: Duration,
    /// How long a WebSocket API request waits for its answer before it is
    /// answered locally with "fate unknown". REST calls use the
    /// [`RestClient`]'s own timeout.
    pub timeout: Duration,
    /// TCP, TLS and handshake of a new session.
    pub connect_timeout: Duration,
    /// REST worker threads (calls while no session is up), each with a
    /// clone of the REST client.
    pub rest_workers: usize,
    /// Subscribe to the user-data stream on the session and hand its events
    /// out as [`GatewayEvent::User`].
    pub user_data: bool,
    /// Open a replacement session when the current one is this old
    /// (Binance closes connections at 24 h, web-socket-api.md §General API
    /// Information).
    pub renew_after: Duration,
    /// Reconnect back-off after a failed or dropped session: doubles from
    /// `backoff_min` up to `backoff_max`.
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    /// The symbol's exchange rules: orders that break them are answered
    /// locally (nothing sent). `None`: no local check.
    pub rules: Option<SymbolRules>,
}

impl GatewayConfig {
    /// Defaults: `recvWindow` 5 s, 5 s answer timeout, 5 s connect, 2 REST
    /// workers, user data on the session, renew after 23 h 30 min, back-off
    /// 100 ms to 5 s.
    pub fn new(symbol: &str, ws_api_url: Option<&str>) -> Self {
        Self {
            ws_api_url: ws_api_url.map(str::to_string),
            symbol: symbol.to_string(),
            recv_window: Duration::from_secs(5),
            timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(5),
            rest_workers: 2,
            user_data: true,
            renew_after: Duration::from_secs(23 * 3600 + 1800),
            backoff_min: Duration::from_millis(100),
            backoff_max: Duration::from_secs(5),
            rules: None,
        }
    }
}

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("order gateway: WebSocket API URL {url:?}: {why}")]
    Url { url: String, why: String },
    #[error("order gateway: {0}")]
    Config(String),
    #[error("order gateway: cannot start a thread: {0}")]
    Spawn(std::io::Error),
}

/// The gateway's counters (monotonic since start).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct GatewayStats {
    /// Requests written to a WebSocket API session (pages of `myTrades`
    /// count one each).
    pub sent_ws: u64,
    /// Calls run by a REST worker.
    pub sent_rest: u64,
    /// Calls refused before sending (guard, local rules).
    pub not_sent: u64,
    /// Answers handed out by [`OrderGateway::poll`].
    pub answers: u64,
    /// Calls that went over REST because no session was up (the URL was
    /// set).
    pub fallbacks: u64,
    /// WebSocket API requests answered locally after the timeout.
    pub timeouts: u64,
    /// WebSocket API requests answered locally because their connection
    /// dropped while they were in flight.
    pub dropped_in_flight: u64,
    /// Answers that came after their request had timed out (ignored).
    pub late_answers: u64,
    /// Sessions opened (the first one included).
    pub sessions_opened: u64,
    /// Sessions opened after a drop (no session up meanwhile).
    pub reconnects: u64,
    /// `serverShutdown`s handled by switching to a new session.
    pub shutdowns_handled: u64,
    /// Sessions replaced before the 24 h limit.
    pub renewals: u64,
    /// Failed attempts to open a session.
    pub connect_failures: u64,
    /// Frames that were not JSON or an event that did not parse.
    pub bad_frames: u64,
    /// User-data events handed out.
    pub user_events: u64,
    /// User-data events seen on two sessions at once (during a switch) and
    /// handed out once.
    pub duplicate_events: u64,
}

/// Counters shared by the gateway's threads.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub sent_ws: AtomicU64,
    pub sent_rest: AtomicU64,
    pub fallbacks: AtomicU64,
    pub timeouts: AtomicU64,
    pub dropped_in_flight: AtomicU64,
    pub late_answers: AtomicU64,
    pub sessions_opened: AtomicU64,
    pub reconnects: AtomicU64,
    pub shutdowns_handled: AtomicU64,
    pub renewals: AtomicU64,
    pub connect_failures: AtomicU64,
    pub bad_frames: AtomicU64,
    pub user_events: AtomicU64,
    pub duplicate_events: AtomicU64,
}

impl Counters {
    pub fn inc(c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }
}

/// State the exec thread, the session thread and the REST workers share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub stop: AtomicBool,
    pub session_up: AtomicBool,
    /// Server clock minus ours, ms.
    pub clock_offset: Arc<AtomicI64>,
    pub guard: IpGuard,
    pub counters: Counters,
    /// The `order_rtt` histograms, written by the transport threads.
    pub rtt: Mutex<BTreeMap<RttKey, Histogram<u64>>>,
}

impl Shared {
    /// Installs a measured clock offset for signing and the guard.
    pub fn set_clock_offset_ms(&self, ms: i64) {
        self.clock_offset.store(ms, Ordering::Relaxed);
        self.guard.set_clock_offset_ms(ms);
    }

    pub fn server_ms(&self) -> i64 {
        wsapi::request::wall_ms().saturating_add(self.clock_offset.load(Ordering::Relaxed))
    }

    /// Records one round trip that the exchange answered.
    pub fn record_rtt(&self, method: &'static str, via: Transport, rtt: Duration) {
        let via = match via {
            Transport::WsApi => "ws_api",
            Transport::Rest => "rest",
            Transport::NotSent => return,
        };
        let mut g = self.rtt.lock().unwrap_or_else(|p| p.into_inner());
        let h = g.entry(RttKey { method, via }).or_insert_with(|| {
            Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).expect("static histogram bounds are valid")
        });
        h.saturating_record((rtt.as_nanos() as u64).max(1));
    }
}

/// One call on its way to a transport.
#[derive(Debug)]
pub(crate) struct Job {
    pub id: RequestId,
    /// The symbol the call trades: the gateway's own, or one added with
    /// [`OrderGateway::add_symbol`].
    pub symbol: Arc<str>,
    pub call: Call,
}

/// Which round trips a histogram holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RttKey {
    /// [`Call::method`].
    pub method: &'static str,
    /// `"ws_api"` or `"rest"`.
    pub via: &'static str,
}

/// Non-blocking order entry; see the module doc.
pub struct OrderGateway {
    symbol: Arc<str>,
    rules: Option<SymbolRules>,
    /// More symbols' rules (one account trading several symbols over one
    /// session): calls for them go through [`OrderGateway::submit_for`].
    more_rules: Vec<SymbolRules>,
    recv_window: Duration,
    next_id: RequestId,
    in_flight: usize,
    answers: u64,
    not_sent: u64,
    ws_tx: Option<Sender<Job>>,
    /// Wakes the session thread after a send on `ws_tx`.
    waker: Option<Arc<mio::Waker>>,
    rest_tx: Option<Sender<Job>>,
    events: Receiver<GatewayEvent>,
    local: VecDeque<GatewayEvent>,
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for OrderGateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrderGateway")
            .field("symbol", &self.symbol)
            .field("in_flight", &self.in_flight)
            .field("session_up", &self.session_up())
            .field("stats", &self.stats())
            .finish()
    }
}

impl OrderGateway {
    /// Starts the REST workers and, with a WebSocket API URL, the session
    /// thread, which connects in the background: until its first session is
    /// up ([`GatewayEvent::Session`] `up: true`), calls go over REST.
    ///
    /// `rest` serves the REST workers: each gets a clone (sharing the guard
    /// and the measured clock offset), so a slow REST answer occupies one
    /// worker, never the others.
    pub fn start(
        cfg: GatewayConfig,
        rest: RestClient,
        creds: impl Into<Option<Credentials>>,
        guard: IpGuard,
    ) -> Result<Self, GatewayError> {
        // REST-only gateways (no WebSocket API URL) sign with the REST
        // client's own copy of the keys.
        let creds: Option<Credentials> = creds.into();
        let recv_window_ms = cfg.recv_window.as_millis() as u64;
        if !(1..=60_000).contains(&recv_window_ms) {
            return Err(GatewayError::Config(format!(
                "recv_window {recv_window_ms} ms is outside 1..=60000 ms (Binance's maximum is 60 s)"
            )));
        }
        let in_range = |d: Duration, max: Duration| !d.is_zero() && d <= max;
        for (field, d, max) in [
            ("timeout", cfg.timeout, Duration::from_secs(600)),
            ("connect_timeout", cfg.connect_timeout, Duration::from_secs(600)),
            ("backoff_min", cfg.backoff_min, Duration::from_secs(3600)),
            ("backoff_max", cfg.backoff_max, Duration::from_secs(3600)),
            ("renew_after", cfg.renew_after, Duration::from_secs(24 * 3600)),
        ] {
            if !in_range(d, max) {
                return Err(GatewayError::Config(format!(
                    "{field} {:.3} s must be more than 0 and at most {} s",
                    d.as_secs_f64(),
                    max.as_secs()
                )));
            }
        }
        if cfg.symbol.is_empty() {
            return Err(GatewayError::Config("no symbol given; name the symbol the gateway trades".into()));
        }
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            session_up: AtomicBool::new(false),
            clock_offset: rest.clock_offset_handle(),
            guard: guard.clone(),
            counters: Counters::default(),
            rtt: Mutex::new(BTreeMap::new()),
        });
        let (events_tx, events) = mpsc::channel();
        let (rest_tx, rest_rx) = mpsc::channel();
        let mut threads = rest_pool::start(
            vec![rest.clone(); cfg.rest_workers.max(1)],
            cfg.recv_window,
            rest_rx,
            events_tx.clone(),
            shared.clone(),
        )
        .map_err(GatewayError::Spawn)?;
        let mut ws_tx = None;
        let mut waker = None;
        if let Some(url) = &cfg.ws_api_url {
            let Some(creds) = creds else {
                return Err(GatewayError::Config(format!(
                    "the WebSocket API ({url}) needs the API key: pass the credentials"
                )));
            };
            let parsed = Url::parse(url).map_err(|e| GatewayError::Url { url: url.clone(), why: e.to_string() })?;
            if !parsed.websocket {
                return Err(GatewayError::Url {
                    url: url.clone(),
                    why: "must be wss:// (or ws:// to a local simulator)".into(),
                });
            }
            if !parsed.tls && !matches!(parsed.host.as_str(), "127.0.0.1" | "localhost" | "::1") {
                return Err(GatewayError::Url {
                    url: url.clone(),
                    why: "plain ws:// is allowed only to 127.0.0.1, localhost or [::1]; use wss://".into(),
                });
            }
            let setup = wsapi::conn::Setup {
                url: parsed,
                creds: Arc::new(creds),
                guard,
                recv_window_ms,
                connect_timeout: cfg.connect_timeout,
                answer_timeout: cfg.timeout,
                clock_offset: shared.clock_offset.clone(),
                user_data: cfg.user_data,
                tls: crate::feed::tls::client_config(),
            };
            let (tx, rx) = mpsc::channel();
            let poll = mio::Poll::new().map_err(GatewayError::Spawn)?;
            waker = Some(Arc::new(mio::Waker::new(poll.registry(), wsapi::WAKE).map_err(GatewayError::Spawn)?));
            let session = wsapi::SessionThread::new(&cfg, setup, rx, rest_tx.clone(), events_tx, shared.clone(), poll);
            let t = std::thread::Builder::new()
                .name("mmbot-wsapi".into())
                .spawn(move || session.run())
                .map_err(GatewayError::Spawn)?;
            threads.push(t);
            ws_tx = Some(tx);
        }
        Ok(Self {
            symbol: cfg.symbol.as_str().into(),
            rules: cfg.rules,
            more_rules: Vec::new(),
            recv_window: cfg.recv_window,
            next_id: 1,
            in_flight: 0,
            answers: 0,
            not_sent: 0,
            ws_tx,
            waker,
            rest_tx: Some(rest_tx),
            events,
            local: VecDeque::new(),
            shared,
            threads,
        })
    }

    /// Hands `call` (on the gateway's symbol) to a transport and returns at
    /// once (a channel send). Its [`Answer`] comes later from
    /// [`OrderGateway::poll`].
    pub fn submit(&mut self, call: Call) -> RequestId {
        let symbol = self.symbol.clone();
        self.submit_for(&symbol, call)
    }

    /// Serves one more symbol of the same account over the same session
    /// and workers: its calls go through [`OrderGateway::submit_for`] and
    /// its orders are checked against `rules` before sending.
    pub fn add_symbol(&mut self, rules: SymbolRules) {
        self.more_rules.retain(|r| r.symbol != rules.symbol);
        self.more_rules.push(rules);
    }

    /// [`OrderGateway::submit`] for `symbol`: the gateway's own or one
    /// added with [`OrderGateway::add_symbol`]. Account-wide calls
    /// ([`Call::Account`], [`Call::SyncClock`]) ignore it.
    pub fn submit_for(&mut self, symbol: &Arc<str>, call: Call) -> RequestId {
        let id = self.next_id;
        self.next_id += 1;
        self.in_flight += 1;
        if let Some(err) = self.local_check(symbol, &call) {
            self.refuse(id, &call, err);
            return id;
        }
        let job = Job { id, symbol: symbol.clone(), call };
        let to_ws = !matches!(job.call, Call::SyncClock) && self.shared.session_up.load(Ordering::Acquire);
        let sent = match (&self.ws_tx, &self.rest_tx) {
            (Some(ws), _) if to_ws => {
                let sent = ws.send(job);
                if let Some(w) = &self.waker {
                    // A failed wake only delays the call to the next turn (5 ms).
                    let _ = w.wake();
                }
                sent
            }
            (ws, Some(rest)) => {
                if ws.is_some() && !matches!(job.call, Call::SyncClock) {
                    Counters::inc(&self.shared.counters.fallbacks);
                }
                rest.send(job)
            }
            (_, None) => Err(mpsc::SendError(job)),
        };
        if let Err(mpsc::SendError(job)) = sent {
            let ep = Endpoint { label: method_info(&job.call).endpoint.label, mutating: false };
            let err = BinanceError::NotSent {
                request: ep.label,
                why: "the order gateway is stopped (its threads have ended); start a new one".into(),
            };
            self.refuse(id, &job.call, err);
        }
        id
    }

    /// The next answer or event, if any (never blocks).
    pub fn poll(&mut self) -> Option<GatewayEvent> {
        let ev = match self.local.pop_front() {
            Some(e) => e,
            None => self.events.try_recv().ok()?,
        };
        if matches!(ev, GatewayEvent::Answer(_)) {
            self.in_flight = self.in_flight.saturating_sub(1);
            self.answers += 1;
        }
        Some(ev)
    }

    /// Calls submitted whose answer [`OrderGateway::poll`] has not handed
    /// out yet.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// A WebSocket API session is up (new calls go over it).
    pub fn session_up(&self) -> bool {
        self.shared.session_up.load(Ordering::Acquire)
    }

    pub fn stats(&self) -> GatewayStats {
        let c = &self.shared.counters;
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        GatewayStats {
            sent_ws: g(&c.sent_ws),
            sent_rest: g(&c.sent_rest),
            not_sent: self.not_sent,
            answers: self.answers,
            fallbacks: g(&c.fallbacks),
            timeouts: g(&c.timeouts),
            dropped_in_flight: g(&c.dropped_in_flight),
            late_answers: g(&c.late_answers),
            sessions_opened: g(&c.sessions_opened),
            reconnects: g(&c.reconnects),
            shutdowns_handled: g(&c.shutdowns_handled),
            renewals: g(&c.renewals),
            connect_failures: g(&c.connect_failures),
            bad_frames: g(&c.bad_frames),
            user_events: g(&c.user_events),
            duplicate_events: g(&c.duplicate_events),
        }
    }

    /// Round trips (send to answer, ns) per method and transport: the
    /// `order_rtt` stage, for reports and the journal (a copy). Only
    /// requests the exchange answered count: a timeout, a dropped
    /// connection or a refusal before sending is no round trip.
    pub fn rtt_histograms(&self) -> BTreeMap<RttKey, Histogram<u64>> {
        self.shared.rtt.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// [`OrderGateway::rtt_histograms`] as percentiles (ns).
    pub fn rtt_percentiles(&self) -> Vec<(RttKey, Percentiles)> {
        self.shared
            .rtt
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|(_, h)| !h.is_empty())
            .map(|(k, h)| (*k, Percentiles::of(h)))
            .collect()
    }

    /// Server clock minus ours, ms, as used for signing now.
    pub fn clock_offset_ms(&self) -> i64 {
        self.shared.clock_offset.load(Ordering::Relaxed)
    }

    /// The shared offset itself (e.g. for a [`crate::exec::userdata::UserDataStream`]).
    pub fn clock_offset(&self) -> Arc<AtomicI64> {
        self.shared.clock_offset.clone()
    }

    /// Installs an offset measured elsewhere, for WebSocket API signing and
    /// the guard. ([`Call::SyncClock`] measures and installs one itself,
    /// REST workers included.)
    pub fn set_clock_offset_ms(&self, ms: i64) {
        self.shared.set_clock_offset_ms(ms);
    }

    /// Stops the threads and waits for them. Calls still in flight are
    /// answered ("fate unknown") and can still be polled.
    pub fn stop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        self.ws_tx = None;
        if let Some(w) = &self.waker {
            let _ = w.wake();
        }
        self.rest_tx = None;
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }

    /// The rules for `symbol`: the gateway's own, or an added symbol's.
    fn rules_of(&self, symbol: &str) -> Option<&SymbolRules> {
        let own = self.rules.as_ref().filter(|_| *symbol == *self.symbol);
        own.or_else(|| self.more_rules.iter().find(|r| r.symbol == symbol))
    }

    fn local_check(&self, symbol: &str, call: &Call) -> Option<BinanceError> {
        let info = method_info(call);
        let order = match call {
            Call::Place(o) | Call::Test(o) => o,
            Call::CancelReplace { new, .. } => {
                if self.rules_of(symbol).is_some_and(|r| !r.cancel_replace_allowed) {
                    return Some(BinanceError::Invalid(format!(
                        "{}: {symbol} does not allow cancelReplace (exchangeInfo cancelReplaceAllowed is false); \
                         cancel and place separately",
                        info.endpoint.label
                    )));
                }
                new
            }
            _ => return None,
        };
        let rules = self.rules_of(symbol)?;
        rules
            .check(order.side, order.price, order.qty)
            .err()
            .map(|violation| BinanceError::LocalFilter { request: info.endpoint.label, violation })
    }

    fn refuse(&mut self, id: RequestId, call: &Call, err: BinanceError) {
        self.not_sent += 1;
        self.local.push_back(GatewayEvent::Answer(Answer {
            id,
            method: call.method(),
            via: Transport::NotSent,
            sent_at: Instant::now(),
            timestamp_ms: 0,
            recv_window: self.recv_window,
            rtt: Duration::ZERO,
            result: Err(err),
        }));
    }
}

impl Drop for OrderGateway {
    fn drop(&mut self) {
        self.stop();
    }
}

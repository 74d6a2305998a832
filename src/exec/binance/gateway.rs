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
//! Every request asks the process's [`IpGuard`](crate::ipguard::IpGuard)
//! first; a refusal comes back as an answer like any other (nothing sent).
//!
//! NOTE: interface first; the implementation is being written.

use std::time::{Duration, Instant};

use crate::exec::binance::errors::BinanceError;
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
#[derive(Debug, Clone)]
pub enum GatewayEvent {
    /// Boxed: answers are far larger than the other events.
    Answer(Box<Answer>),
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

// ---------------------------------------------------------------------------
// Interim implementation: one REST worker thread. It keeps the caller
// non-blocking (calls queue on a channel, answers come back on another) but
// serializes calls; the WebSocket API session and the worker pool replace it.

use std::sync::mpsc::{channel, Receiver, Sender};
use std::thread::JoinHandle;

use crate::exec::binance::errors::Action;
use crate::exec::binance::rest::{OrderRef, ReplaceMode, RestClient};

/// Settings of an [`OrderGateway`].
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    pub symbol: String,
    pub recv_window: Duration,
    /// Server clock minus ours, ms: kept current after each resync, for
    /// other threads that sign requests (the user-data stream).
    pub clock_offset: std::sync::Arc<std::sync::atomic::AtomicI64>,
}

/// Counters of the gateway.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GatewayStats {
    pub submitted: u64,
    pub answered: u64,
    /// Clock re-measurements after -1021 answers.
    pub clock_resyncs: u64,
}

/// Non-blocking order entry (see the module docs).
pub struct OrderGateway {
    tx: Option<Sender<(RequestId, Call)>>,
    rx: Receiver<GatewayEvent>,
    next_id: RequestId,
    in_flight: usize,
    stats: GatewayStats,
    worker: Option<JoinHandle<()>>,
    resyncs: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl std::fmt::Debug for OrderGateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrderGateway").field("in_flight", &self.in_flight).field("stats", &self.stats).finish()
    }
}

fn run_call(rest: &mut RestClient, symbol: &str, call: &Call) -> Result<Reply, BinanceError> {
    let target = |t: &Target| match t {
        Target::OrderId(id) => OrderRef::OrderId(*id),
        Target::ClientId(_) => OrderRef::OrderId(0),
    };
    match call {
        Call::Place(n) => rest.new_limit_maker(symbol, n.side, n.price, n.qty, &n.client_id).map(Reply::Order),
        Call::Test(n) => rest.test_order(symbol, n.side, n.price, n.qty, &n.client_id).map(|()| Reply::Tested),
        Call::Cancel(t) => match t {
            Target::ClientId(c) => rest.cancel(symbol, OrderRef::ClientId(c)),
            t => rest.cancel(symbol, target(t)),
        }
        .map(Reply::Order),
        Call::CancelReplace { cancel, new } => {
            let r = match cancel {
                Target::ClientId(c) => OrderRef::ClientId(c),
                t => target(t),
            };
            rest.cancel_replace(symbol, r, new.side, new.price, new.qty, &new.client_id, ReplaceMode::StopOnFailure)
                .map(Reply::Replaced)
        }
        Call::Query { client_id } => rest.query_order_by_client_id(symbol, client_id).map(Reply::Order),
        Call::OpenOrders => rest.open_orders(symbol).map(Reply::Orders),
        Call::CancelAll => rest.cancel_all(symbol).map(Reply::Orders),
        Call::Account => rest.account().map(Reply::Account),
        Call::MyTrades { order_id } => rest.my_trades(symbol, *order_id).map(Reply::Trades),
    }
}

impl OrderGateway {
    /// Starts the worker with `rest` (clock synced, rules loaded).
    pub fn start(cfg: GatewayConfig, mut rest: RestClient) -> std::io::Result<Self> {
        let (tx, calls) = channel::<(RequestId, Call)>();
        let (answers, rx) = channel::<GatewayEvent>();
        let resyncs = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let counted = resyncs.clone();
        let worker = std::thread::Builder::new().name("mmbot-orders".into()).spawn(move || {
            while let Ok((id, call)) = calls.recv() {
                let sent_at = Instant::now();
                let wall = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis() as i64);
                let timestamp_ms = wall + rest.clock_offset_ms();
                let mut result = run_call(&mut rest, &cfg.symbol, &call);
                if result.as_ref().err().is_some_and(|e| e.action() == Action::ResyncClockAndRetry)
                    && counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < u64::MAX
                    && rest.sync_clock().is_ok()
                {
                    cfg.clock_offset.store(rest.clock_offset_ms(), std::sync::atomic::Ordering::Relaxed);
                    result = run_call(&mut rest, &cfg.symbol, &call);
                }
                let via = match &result {
                    Err(BinanceError::LocalRateLimit { .. } | BinanceError::LocalBan { .. })
                    | Err(BinanceError::LocalFilter { .. }) => Transport::NotSent,
                    _ => Transport::Rest,
                };
                let a = Answer {
                    id,
                    method: call.method(),
                    via,
                    sent_at,
                    timestamp_ms,
                    recv_window: cfg.recv_window,
                    rtt: sent_at.elapsed(),
                    result,
                };
                if answers.send(GatewayEvent::Answer(Box::new(a))).is_err() {
                    return;
                }
            }
        })?;
        Ok(Self {
            tx: Some(tx),
            rx,
            next_id: 1,
            in_flight: 0,
            stats: GatewayStats::default(),
            worker: Some(worker),
            resyncs,
        })
    }

    /// Queues `call`; never blocks.
    pub fn submit(&mut self, call: Call) -> RequestId {
        let id = self.next_id;
        self.next_id += 1;
        self.stats.submitted += 1;
        self.in_flight += 1;
        if let Some(tx) = &self.tx {
            let _ = tx.send((id, call));
        }
        id
    }

    /// The next answer or event, if any; never blocks.
    pub fn poll(&mut self) -> Option<GatewayEvent> {
        let ev = self.rx.try_recv().ok()?;
        if matches!(ev, GatewayEvent::Answer(_)) {
            self.in_flight = self.in_flight.saturating_sub(1);
            self.stats.answered += 1;
        }
        Some(ev)
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    pub fn stats(&self) -> GatewayStats {
        GatewayStats { clock_resyncs: self.resyncs.load(std::sync::atomic::Ordering::Relaxed), ..self.stats.clone() }
    }

    /// Stops the worker after the calls already queued.
    pub fn stop(&mut self) {
        self.tx = None;
        if let Some(w) = self.worker.take() {
            let _ = w.join();
        }
    }
}

impl Drop for OrderGateway {
    fn drop(&mut self) {
        self.stop();
    }
}

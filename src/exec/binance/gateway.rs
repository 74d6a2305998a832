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

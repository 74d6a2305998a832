//! The user-data stream: our fills, order updates and balances as Binance
//! pushes them, read on a thread of its own and handed to the exec thread
//! as `Copy` [`UserEvent`]s through a ring.
//!
//! Why a thread: the exec thread blocks on REST calls; fills must keep
//! arriving (and be buffered) meanwhile, and the exec thread must never wait
//! on a socket read. Why the WebSocket API: Binance removed the listenKey
//! endpoints in 2026 (FACTS.md §5), and `userDataStream.subscribe.signature`
//! works with any key type and needs no session logon.
//!
//! [`UserDataStream::start`] connects to the WebSocket API (`wss://` or, for
//! a simulator or test double, `ws://127.0.0.1`), subscribes with `apiKey`,
//! `timestamp` and a signature over the alphabetically sorted parameters,
//! and then parses each `{"subscriptionId":..,"event":{..}}` into:
//! - [`UserEvent::Execution`] for `executionReport`,
//! - [`UserEvent::Balance`] per asset of `outboundAccountPosition`,
//! - [`UserEvent::BalanceDelta`] for `balanceUpdate`.
//!
//! After any drop it reconnects with a growing back-off and subscribes
//! again; each successful subscription is announced as
//! [`UserEvent::Subscribed`] with a generation number, so the exec thread
//! knows events may have been missed and reconciles over REST. A full ring
//! drops the newest event and counts it ([`UserDataStream::dropped`]): the
//! exec thread treats a growing count the same way.
//!
//! Nothing from the network can panic this thread: a frame that does not
//! parse is counted and skipped.
//!
//! The event parsing ([`parse_event`], [`parse_execution`]) is shared with
//! the order gateway, whose WebSocket API session carries the same
//! subscription (`crate::exec::binance::wsapi`); [`UserDataStream`] remains
//! for a stream on a connection of its own. [`UserDataStream::start_guarded`]
//! asks the process's IP guard before every connect.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tungstenite::Message;

use crate::exec::binance::keys::Credentials;
use crate::exec::binance::sign::ws_api_payload;
use crate::exec::Side;
use crate::feed::endpoint::Url;
use crate::feed::ws::{self, Ws};
use crate::hot::fixed::{parse_fixed, Price, Qty};
use crate::hot::msg::Symbol;
use crate::ipguard::{IpGuard, Request};
use crate::ring::{ring, Consumer, Producer};

/// Events buffered between the stream thread and the exec thread.
const RING: usize = 4096;

/// A client order id stored inline (Binance ids are at most 36 bytes), so
/// events stay `Copy`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct IdBuf {
    len: u8,
    bytes: [u8; 36],
}

impl Default for IdBuf {
    fn default() -> Self {
        Self { len: 0, bytes: [0; 36] }
    }
}

impl IdBuf {
    /// `s` if it fits (else empty: no id of ours is longer).
    pub fn new(s: &str) -> Self {
        let mut b = Self::default();
        if s.len() <= 36 {
            b.bytes[..s.len()].copy_from_slice(s.as_bytes());
            b.len = s.len() as u8;
        }
        b
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes[..self.len as usize]).unwrap_or("")
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl std::fmt::Debug for IdBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

/// `x` of an execution report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecType {
    New,
    Canceled,
    Replaced,
    Rejected,
    Trade,
    Expired,
    TradePrevention,
    Other,
}

/// `X` of an execution report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportStatus {
    New,
    PartiallyFilled,
    Filled,
    Canceled,
    Rejected,
    Expired,
    Other,
}

impl ReportStatus {
    fn parse(s: &str) -> Self {
        match s {
            "NEW" | "PENDING_NEW" => Self::New,
            "PARTIALLY_FILLED" => Self::PartiallyFilled,
            "FILLED" => Self::Filled,
            "CANCELED" | "PENDING_CANCEL" => Self::Canceled,
            "REJECTED" => Self::Rejected,
            "EXPIRED" | "EXPIRED_IN_MATCH" => Self::Expired,
            _ => Self::Other,
        }
    }

    /// Still working on the book. An unknown status counts as open.
    pub fn is_open(self) -> bool {
        matches!(self, Self::New | Self::PartiallyFilled | Self::Other)
    }
}

/// One `executionReport`, in fixed-point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExecutionReport {
    pub symbol: Symbol,
    /// `c`: the id of the request (for a cancel, the cancel's own id).
    pub client_id: IdBuf,
    /// `C`: for a cancel, the id of the order canceled.
    pub orig_client_id: IdBuf,
    pub order_id: u64,
    pub side: Side,
    pub exec_type: ExecType,
    pub status: ReportStatus,
    pub price: Price,
    pub qty: Qty,
    /// `l`, `L`: this execution's quantity and price.
    pub last_qty: Qty,
    pub last_price: Price,
    /// `z`: cumulative filled quantity.
    pub cum_qty: Qty,
    /// `n`, `N`: commission of this execution and its asset.
    pub commission: i64,
    pub commission_asset: Symbol,
    /// `t`: trade id, -1 when none.
    pub trade_id: i64,
    pub maker: bool,
    /// `T`: transaction time, ms.
    pub time_ms: i64,
}

impl ExecutionReport {
    /// The id of the order this report is about (`C` on cancels, else `c`).
    pub fn order_client_id(&self) -> &str {
        if self.exec_type == ExecType::Canceled && !self.orig_client_id.is_empty() {
            self.orig_client_id.as_str()
        } else {
            self.client_id.as_str()
        }
    }
}

/// What the stream hands to the exec thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserEvent {
    /// Subscribed (again): the `n`th successful subscription. From the
    /// second on, events may have been missed: reconcile over REST.
    Subscribed {
        generation: u64,
    },
    /// The connection dropped; a reconnect follows.
    Disconnected,
    Execution(ExecutionReport),
    /// One asset of `outboundAccountPosition`: its balances now.
    Balance {
        asset: Symbol,
        free: i64,
        locked: i64,
    },
    /// `balanceUpdate`: a deposit, withdrawal or transfer changed free.
    BalanceDelta {
        asset: Symbol,
        delta: i64,
    },
}

/// Counters of the stream thread.
#[derive(Debug, Default)]
struct Counters {
    connects: AtomicU64,
    subscribed: AtomicU64,
    frames: AtomicU64,
    bad_frames: AtomicU64,
}

/// A snapshot of the stream's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StreamStats {
    pub connects: u64,
    pub subscriptions: u64,
    pub frames: u64,
    /// Frames that did not parse (skipped).
    pub bad_frames: u64,
    /// Events lost to a full ring.
    pub dropped: u64,
}

/// Why the stream could not start.
#[derive(Debug, thiserror::Error)]
pub enum UserDataError {
    #[error("user-data stream URL {url:?}: {why}")]
    Url { url: String, why: String },
    #[error("cannot start the user-data thread: {0}")]
    Spawn(io::Error),
}

/// The user-data stream thread and the ring its events arrive on.
pub struct UserDataStream {
    events: Consumer<UserEvent>,
    stop: Arc<AtomicBool>,
    counters: Arc<Counters>,
    dropped: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for UserDataStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserDataStream").field("stats", &self.stats()).finish()
    }
}

impl UserDataStream {
    /// Starts the thread: connect, subscribe, read; reconnect on any drop.
    /// `recv_window` is sent with the subscription, whose timestamp is this
    /// machine's clock plus `clock_offset` (ms; the offset the REST client
    /// measured, kept current by its owner), so a skewed local clock does
    /// not get every subscription refused with -1021.
    pub fn start(
        url: &str,
        creds: Credentials,
        recv_window: Duration,
        clock_offset: Arc<AtomicI64>,
    ) -> Result<Self, UserDataError> {
        Self::start_guarded(url, creds, recv_window, clock_offset, None)
    }

    /// As [`UserDataStream::start`], asking `guard` before every connect
    /// and subscription (so during a 418 ban this thread does not connect
    /// either, FACTS.md §4.8) and telling it about a 418/429 handshake.
    pub fn start_guarded(
        url: &str,
        creds: Credentials,
        recv_window: Duration,
        clock_offset: Arc<AtomicI64>,
        guard: Option<IpGuard>,
    ) -> Result<Self, UserDataError> {
        let parsed = Url::parse(url).map_err(|e| UserDataError::Url { url: url.into(), why: e.to_string() })?;
        if !parsed.websocket {
            return Err(UserDataError::Url { url: url.into(), why: "must be ws:// or wss://".into() });
        }
        let (tx, events) = ring::<UserEvent>(RING);
        let stop = Arc::new(AtomicBool::new(false));
        let counters = Arc::new(Counters::default());
        let dropped = Arc::new(AtomicU64::new(0));
        let worker = Worker {
            url: parsed,
            creds,
            recv_window_ms: recv_window.as_millis() as u64,
            clock_offset,
            guard,
            tx,
            stop: stop.clone(),
            counters: counters.clone(),
            dropped: dropped.clone(),
            next_id: 1,
        };
        let thread = std::thread::Builder::new()
            .name("mmbot-userdata".into())
            .spawn(move || worker.run())
            .map_err(UserDataError::Spawn)?;
        Ok(Self { events, stop, counters, dropped, thread: Some(thread) })
    }

    /// The next event, if any (never blocks).
    pub fn poll(&mut self) -> Option<UserEvent> {
        self.events.pop()
    }

    /// Events lost because the ring was full: if this grows, reconcile.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    pub fn stats(&self) -> StreamStats {
        StreamStats {
            connects: self.counters.connects.load(Ordering::Relaxed),
            subscriptions: self.counters.subscribed.load(Ordering::Relaxed),
            frames: self.counters.frames.load(Ordering::Relaxed),
            bad_frames: self.counters.bad_frames.load(Ordering::Relaxed),
            dropped: self.dropped(),
        }
    }

    /// Stops the thread and waits for it (at most one read timeout).
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for UserDataStream {
    fn drop(&mut self) {
        self.stop();
    }
}

struct Worker {
    url: Url,
    creds: Credentials,
    recv_window_ms: u64,
    /// Exchange clock minus ours, ms (shared with the REST side).
    clock_offset: Arc<AtomicI64>,
    guard: Option<IpGuard>,
    tx: Producer<UserEvent>,
    stop: Arc<AtomicBool>,
    counters: Arc<Counters>,
    dropped: Arc<AtomicU64>,
    next_id: u64,
}

/// Back-off between reconnects: doubles from 100 ms up to 5 s.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

impl Worker {
    fn run(mut self) {
        let tls = crate::feed::tls::client_config();
        let mut backoff = BACKOFF_MIN;
        while !self.stop.load(Ordering::Relaxed) {
            // Banned or backing off: wait it out (in steps, to see a stop).
            if let Some(Err(r)) = self.guard.as_ref().map(|g| g.admit_connect("user-data stream connect")) {
                self.sleep(r.retry_in().clamp(BACKOFF_MIN, Duration::from_secs(1)));
                continue;
            }
            self.counters.connects.fetch_add(1, Ordering::Relaxed);
            let session_start = Instant::now();
            let connected = ws::connect(&self.url, Duration::from_secs(10), &tls);
            if let (Err(ws::ConnectError::Refused { status, retry_after, .. }), Some(g)) = (&connected, &self.guard) {
                let wait = Duration::from_secs(retry_after.unwrap_or(if *status == 418 { 120 } else { 60 }));
                match status {
                    418 => g.on_banned(wait),
                    429 => g.on_rate_limited(false, wait),
                    _ => {}
                }
            }
            if let Ok(mut conn) = connected {
                if self.subscribe(&mut conn).is_ok() {
                    let generation = self.counters.subscribed.fetch_add(1, Ordering::Relaxed) + 1;
                    self.emit(UserEvent::Subscribed { generation });
                    self.read_until_drop(&mut conn);
                    self.emit(UserEvent::Disconnected);
                }
                let _ = conn.close(None);
                let _ = conn.flush();
            }
            // A session that lasted a while was healthy: start the back-off over.
            if session_start.elapsed() > Duration::from_secs(30) {
                backoff = BACKOFF_MIN;
            }
            self.sleep(backoff);
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
    }

    /// Sleeps in short steps so a stop is seen quickly.
    fn sleep(&self, d: Duration) {
        let end = Instant::now() + d;
        while Instant::now() < end && !self.stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn emit(&self, e: UserEvent) {
        if !self.tx.push(e) {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Sends `userDataStream.subscribe.signature` and waits (up to 10 s)
    /// for its answer; events that come first are handled as usual.
    fn subscribe(&mut self, conn: &mut Ws) -> Result<(), ()> {
        // web-socket-api.md §Subscribe to User Data Stream through signature subscription: weight 2.
        let request = Request { label: "WS-API userDataStream.subscribe.signature", weight: 2, orders: 0 };
        if let Some(Err(_)) = self.guard.as_ref().map(|g| g.admit_ws_api(request)) {
            return Err(());
        }
        let id = format!("mmbot-sub-{}", self.next_id);
        self.next_id += 1;
        let ts = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64)
            .saturating_add(self.clock_offset.load(Ordering::Relaxed))
            .to_string();
        let recv = self.recv_window_ms.to_string();
        let params = [("apiKey", self.creds.api_key()), ("recvWindow", recv.as_str()), ("timestamp", ts.as_str())];
        let payload = ws_api_payload(&params);
        let sig = self.creds.signer().ws_signature(payload.as_bytes());
        let req = serde_json::json!({
            "id": id,
            "method": "userDataStream.subscribe.signature",
            "params": {
                "apiKey": self.creds.api_key(),
                "recvWindow": self.recv_window_ms,
                "timestamp": ts.parse::<i64>().unwrap_or(0),
                "signature": sig,
            }
        });
        if send_text(conn, req.to_string()).is_err() {
            return Err(());
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline && !self.stop.load(Ordering::Relaxed) {
            match conn.read() {
                Ok(Message::Text(t)) => {
                    let Ok(v) = serde_json::from_str::<serde_json::Value>(t.as_str()) else {
                        self.counters.bad_frames.fetch_add(1, Ordering::Relaxed);
                        continue;
                    };
                    if v.get("id").and_then(|x| x.as_str()) == Some(id.as_str()) {
                        let ok = v.get("status").and_then(|s| s.as_i64()) == Some(200) && v.get("result").is_some();
                        return if ok { Ok(()) } else { Err(()) };
                    }
                    if self.handle(&v) {
                        return Err(());
                    }
                }
                Ok(_) => {}
                Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(_) => return Err(()),
            }
        }
        Err(())
    }

    fn read_until_drop(&mut self, conn: &mut Ws) {
        while !self.stop.load(Ordering::Relaxed) {
            match conn.read() {
                Ok(Message::Text(t)) => {
                    self.counters.frames.fetch_add(1, Ordering::Relaxed);
                    match serde_json::from_str::<serde_json::Value>(t.as_str()) {
                        // The server ended the subscription: subscribe again
                        // on a fresh connection.
                        Ok(v) if self.handle(&v) => return,
                        Ok(_) => {}
                        Err(_) => {
                            self.counters.bad_frames.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                // tungstenite answers pings itself on the next read/flush.
                Ok(Message::Close(_)) => return,
                Ok(_) => {}
                Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                    let _ = conn.flush();
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(_) => return,
            }
        }
    }

    /// One parsed frame: an event is handed on; anything else is ignored.
    /// True for `eventStreamTerminated` (the subscription is over).
    fn handle(&mut self, v: &serde_json::Value) -> bool {
        let Some(ev) = v.get("event") else { return false };
        let mut out = Vec::new();
        let parsed = parse_event(ev, &mut out);
        for e in out {
            self.emit(e);
        }
        match parsed {
            Parsed::Bad => {
                self.counters.bad_frames.fetch_add(1, Ordering::Relaxed);
                false
            }
            Parsed::Terminated => true,
            Parsed::Events | Parsed::Other => false,
        }
    }
}

/// What [`parse_event`] made of one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parsed {
    /// Zero or more [`UserEvent`]s were produced.
    Events,
    /// `eventStreamTerminated`: the subscription is over; subscribe again.
    Terminated,
    /// A known event with a field we rely on missing or malformed.
    Bad,
    /// An event we do not use (`listStatus`, `externalLockUpdate`, ...).
    Other,
}

/// Parses the `event` object of a WebSocket API user-data frame
/// (`{"subscriptionId":..,"event":{..}}`, web-socket-api.md §Event format;
/// user-data-stream.md) into `out`. Shared by [`UserDataStream`] and the
/// order gateway's session (`crate::exec::binance::wsapi`).
pub fn parse_event(ev: &serde_json::Value, out: &mut Vec<UserEvent>) -> Parsed {
    match ev.get("e").and_then(|e| e.as_str()) {
        Some("executionReport") => match parse_execution(ev) {
            Some(r) => {
                out.push(UserEvent::Execution(r));
                Parsed::Events
            }
            None => Parsed::Bad,
        },
        Some("outboundAccountPosition") => {
            for b in ev.get("B").and_then(|b| b.as_array()).into_iter().flatten() {
                let asset = Symbol::new(b.get("a").and_then(|a| a.as_str()).unwrap_or("").as_bytes());
                let (Some(free), Some(locked)) = (fixed(b, "f"), fixed(b, "l")) else { continue };
                if !asset.is_empty() {
                    out.push(UserEvent::Balance { asset, free, locked });
                }
            }
            Parsed::Events
        }
        Some("balanceUpdate") => {
            let asset = Symbol::new(ev.get("a").and_then(|a| a.as_str()).unwrap_or("").as_bytes());
            match (asset.is_empty(), fixed(ev, "d")) {
                (false, Some(delta)) => {
                    out.push(UserEvent::BalanceDelta { asset, delta });
                    Parsed::Events
                }
                _ => Parsed::Bad,
            }
        }
        Some("eventStreamTerminated") => Parsed::Terminated,
        _ => Parsed::Other,
    }
}

/// Sends a text frame on a non-blocking socket, flushing until it is out
/// (at most 5 s).
fn send_text(conn: &mut Ws, text: String) -> Result<(), tungstenite::Error> {
    match conn.send(Message::text(text)) {
        Ok(()) => return Ok(()),
        Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {}
        Err(e) => return Err(e),
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        match conn.flush() {
            Ok(()) => return Ok(()),
            Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(e) => return Err(e),
        }
    }
    Err(tungstenite::Error::Io(io::Error::new(io::ErrorKind::TimedOut, "send timed out")))
}

/// A decimal-string field as fixed-point.
fn fixed(v: &serde_json::Value, k: &str) -> Option<i64> {
    parse_fixed(v.get(k)?.as_str()?.as_bytes()).ok()
}

/// Reads an `executionReport`; `None` when a field we rely on is missing
/// or malformed.
pub fn parse_execution(ev: &serde_json::Value) -> Option<ExecutionReport> {
    let s = |k: &str| ev.get(k).and_then(|x| x.as_str());
    let side = match s("S")? {
        "BUY" => Side::Buy,
        "SELL" => Side::Sell,
        _ => return None,
    };
    let exec_type = match s("x")? {
        "NEW" => ExecType::New,
        "CANCELED" => ExecType::Canceled,
        "REPLACED" => ExecType::Replaced,
        "REJECTED" => ExecType::Rejected,
        "TRADE" => ExecType::Trade,
        "EXPIRED" => ExecType::Expired,
        "TRADE_PREVENTION" => ExecType::TradePrevention,
        _ => ExecType::Other,
    };
    Some(ExecutionReport {
        symbol: Symbol::new(s("s")?.as_bytes()),
        client_id: IdBuf::new(s("c")?),
        orig_client_id: IdBuf::new(s("C").unwrap_or("")),
        order_id: ev.get("i")?.as_u64()?,
        side,
        exec_type,
        status: ReportStatus::parse(s("X")?),
        price: Price(fixed(ev, "p")?),
        qty: Qty(fixed(ev, "q")?),
        last_qty: Qty(fixed(ev, "l")?),
        last_price: Price(fixed(ev, "L")?),
        cum_qty: Qty(fixed(ev, "z")?),
        commission: fixed(ev, "n").unwrap_or(0),
        commission_asset: Symbol::new(s("N").unwrap_or("").as_bytes()),
        trade_id: ev.get("t").and_then(|t| t.as_i64()).unwrap_or(-1),
        maker: ev.get("m").and_then(|m| m.as_bool()).unwrap_or(false),
        time_ms: ev.get("T").and_then(|t| t.as_i64()).unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn execution_reports_parse_and_bad_ones_are_none() {
        let v: serde_json::Value = serde_json::from_str(
            r#"{"e":"executionReport","E":1,"s":"BTCUSDT","c":"mmx-3","S":"BUY","o":"LIMIT_MAKER","f":"GTC",
            "q":"0.00100000","p":"60000.00","x":"TRADE","X":"PARTIALLY_FILLED","r":"NONE","i":7,"l":"0.0004",
            "z":"0.0004","L":"60000.00","n":"0.00000040","N":"BTC","T":5,"t":99,"m":true,"C":""}"#,
        )
        .unwrap();
        let r = parse_execution(&v).unwrap();
        assert_eq!(
            (r.order_id, r.trade_id, r.exec_type, r.status),
            (7, 99, ExecType::Trade, ReportStatus::PartiallyFilled)
        );
        assert_eq!((r.last_qty, r.commission_asset.as_str()), (Qty(40_000), "BTC"));
        assert_eq!(r.order_client_id(), "mmx-3");
        let mut bad = v.clone();
        bad["p"] = serde_json::json!("sixty");
        assert!(parse_execution(&bad).is_none());
        assert!(parse_execution(&serde_json::json!({"S": 1})).is_none());
        assert_eq!(IdBuf::new(&"x".repeat(40)).as_str(), "");
    }
}

//! The WebSocket API (web-socket-api.md): the same engine, faults and
//! limits as REST, answered as `{"id":..,"status":200,"result":..,
//! "rateLimits":[..]}` or `{"id":..,"status":4xx,"error":{"code","msg"},
//! "rateLimits":[..]}` (§Response format). Every request's weight counts
//! toward the IP's REQUEST_WEIGHT (§IP limits); `returnRateLimits` (in the
//! request or the connection URL) hides the array (§How to show/hide rate
//! limit information).
//!
//! Methods: `ping`, `time`, `exchangeInfo`, `depth` (§Market data
//! requests, Order book: weight 5/25/50/250 by limit); `order.place`, `order.test`,
//! `order.cancel`, `order.cancelReplace`, `order.status`,
//! `openOrders.status`, `openOrders.cancelAll`, `account.status`,
//! `myTrades`; `session.logon` (Ed25519 keys only, §Session
//! Authentication), `session.status`, `session.logout`;
//! `userDataStream.subscribe` (on a logged-on session),
//! `userDataStream.subscribe.signature`, `userDataStream.unsubscribe`,
//! `session.subscriptions`. Signed requests carry `apiKey` and a signature
//! over the alphabetically sorted parameters (§SIGNED request security), or
//! rely on the session's logon (they still need `timestamp`).
//!
//! An answer may be held (the slow-exchange and delay faults): the
//! connection sends answers when due, so answers to pipelined requests can
//! come out of order, matched by `id`.

use std::sync::mpsc::Receiver;
use std::time::Duration;

use crate::sim::exchange::engine::{Book, Op};
use crate::sim::exchange::limits::{Admit, Usage};
use crate::sim::exchange::wire::{check_time, invalid_key, json_str, mandatory, verify, ApiError, Params};
use crate::sim::exchange::{Exchange, SimKey, SUB_QUEUE};

/// One WebSocket API connection's state: logon and subscriptions.
#[derive(Default)]
pub struct WsSession {
    next_sub: u64,
    /// (subscription id, account index).
    subs: Vec<(u64, usize)>,
    rx: Vec<(u64, Receiver<String>)>,
    /// The logged-on account and since when (`session.logon`).
    logon: Option<(usize, i64)>,
    connected_since: i64,
    /// Whether answers carry `rateLimits` unless a request says otherwise.
    return_rate_limits: bool,
}

impl WsSession {
    /// A session opened at `connected_ms`; `url_query` is the connection
    /// URL's query (`returnRateLimits=false` hides the arrays).
    pub fn new(connected_ms: i64, url_query: &str) -> Self {
        let hide = url_query.split('&').any(|kv| kv.eq_ignore_ascii_case("returnRateLimits=false"));
        Self { connected_since: connected_ms, return_rate_limits: !hide, ..Self::default() }
    }

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

/// One answer and how long to hold it before sending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WsAnswer {
    pub text: String,
    pub hold: Duration,
}

impl Exchange {
    /// Answers one WebSocket API request on `session` (no book: orders
    /// are checked without would-take); the reply text.
    pub fn ws_request(&self, text: &str, session: &mut WsSession) -> String {
        self.ws_call(text, session, &|_| None).text
    }

    /// Answers one WebSocket API request on `session`.
    pub fn ws_call(&self, text: &str, session: &mut WsSession, book: Book<'_>) -> WsAnswer {
        self.tick(book);
        let slow = self.faults.slow_answers;
        let Ok(v) = serde_json::from_str::<serde_json::Value>(text) else {
            let e = ApiError::new(400, -1100, "Malformed request.");
            return WsAnswer { text: error_text("null", &e, None, &self.cfg.limits), hold: slow };
        };
        let id = v.get("id").map_or_else(|| "null".to_string(), |i| i.to_string());
        let method = v.get("method").and_then(|m| m.as_str()).unwrap_or("");
        let p = Params::from_json(v.get("params").and_then(|p| p.as_object()));
        let show = match p.get("returnRateLimits") {
            Some(s) => s == "true",
            None => session.return_rate_limits,
        };
        let limits = self.cfg.limits;
        let op = ws_op(method);
        let weight = match op {
            Some(op) => op.weight(&p),
            None => match method {
                "exchangeInfo" => 20,
                // web-socket-api.md §Market data requests, Order book: by limit.
                "depth" => crate::sim::server::spot_depth_weight(depth_limit(&p)),
                "session.logon"
                | "session.status"
                | "session.logout"
                | "userDataStream.subscribe"
                | "userDataStream.subscribe.signature" => 2,
                _ => 1,
            },
        };
        let mut usage = match self.admit(Admit::WsRequest(weight)) {
            Ok(u) => u,
            Err(e) => {
                let u = Usage { weight: self.used_weight(), orders: None };
                return WsAnswer { text: error_text(&id, &e, show.then_some(u), &limits), hold: slow };
            }
        };
        let (result, hold) = match op {
            Some(op) => match self.ws_account(&p, session).and_then(|acct| self.run(op, &p, acct, book)) {
                Ok(done) => {
                    usage.orders = done.orders;
                    (Ok(done.body), done.hold)
                }
                Err(e) => (Err(e), Duration::ZERO),
            },
            None if method == "depth" => (self.ws_depth(&p, book), Duration::ZERO),
            None => (self.ws_session_method(method, &p, session), Duration::ZERO),
        };
        let shown = show.then_some(usage);
        let text = match result {
            Ok(body) => {
                let rl = shown.map(|u| format!(",\"rateLimits\":{}", u.rate_limits(&limits))).unwrap_or_default();
                format!("{{\"id\":{id},\"status\":200,\"result\":{body}{rl}}}")
            }
            Err(e) => error_text(&id, &e, shown, &limits),
        };
        WsAnswer { text, hold: slow + hold }
    }

    /// The account a signed request acts for: its own `apiKey` and
    /// signature, else the session's logon (`timestamp` always needed).
    fn ws_account(&self, p: &Params, session: &WsSession) -> Result<usize, ApiError> {
        let now = self.now_ms();
        if let Some(key) = p.get("apiKey") {
            let idx = self.ws_verify(p, key, now)?;
            return Ok(idx);
        }
        let (acct, _) = session.logon.ok_or_else(|| mandatory("apiKey"))?;
        check_time(p.get("timestamp"), p.get("recvWindow"), now)?;
        Ok(acct)
    }

    /// Checks `apiKey`'s account, `timestamp` and the signature over the
    /// sorted parameters; the account's index.
    fn ws_verify(&self, p: &Params, key: &str, now: i64) -> Result<usize, ApiError> {
        let (idx, secret) = {
            let g = self.lock();
            let i = g.accounts.iter().position(|a| a.cfg.api_key == key).ok_or_else(invalid_key)?;
            (i, g.accounts[i].cfg.key.clone())
        };
        check_time(p.get("timestamp"), p.get("recvWindow"), now)?;
        let sig = p.get("signature").ok_or_else(|| mandatory("signature"))?;
        // WS-API signatures are not percent-encoded: verify the raw value.
        if !verify(&secret, p.ws_payload().as_bytes(), sig) {
            return Err(ApiError::new(400, -1022, "Signature for this request is not valid."));
        }
        Ok(idx)
    }

    /// web-socket-api.md §Market data requests, Order book (`depth`): the
    /// spot layout `{"lastUpdateId","bids","asks"}`, cut from the same true
    /// book as REST snapshots (and with the omit-level fault applied, as
    /// they are). It answers while `rest_ban_for` refuses REST.
    fn ws_depth(&self, p: &Params, book: Book<'_>) -> Result<String, ApiError> {
        let symbol = p.get("symbol").ok_or_else(|| mandatory("symbol"))?;
        if !self.markets.iter().any(|m| m.name.eq_ignore_ascii_case(symbol)) {
            return Err(ApiError::new(400, -1121, "Invalid symbol."));
        }
        let mut b = book(symbol).ok_or_else(|| {
            // A replay whose book has not synced yet: nothing true to serve.
            ApiError::new(503, -1001, "Internal error; the book is not ready yet. Retry in a second.")
        })?;
        crate::sim::faults::omit_bid(&mut b.bids, self.faults.omit_snapshot_bid);
        Ok(crate::sim::market::snapshot_body(&b, crate::sim::flow::SimMarket::Spot, depth_limit(p), self.now_ms()))
    }

    /// Methods that are about the connection, not the engine.
    fn ws_session_method(&self, method: &str, p: &Params, session: &mut WsSession) -> Result<String, ApiError> {
        let now = self.now_ms();
        match method {
            "ping" => Ok("{}".into()),
            "time" => Ok(format!("{{\"serverTime\":{now}}}")),
            "exchangeInfo" => Ok(self.exchange_info_json()),
            "session.logon" => {
                let key = p.get("apiKey").ok_or_else(|| mandatory("apiKey"))?;
                let idx = self.ws_verify(p, key, now)?;
                // web-socket-api.md §Session Authentication: "Only Ed25519
                // keys are supported for this feature."
                if !matches!(self.lock().accounts[idx].cfg.key, SimKey::Ed25519(_)) {
                    // errors.md §-1020 UNSUPPORTED_OPERATION.
                    return Err(ApiError::new(400, -1020, "This operation is not supported."));
                }
                session.logon = Some((idx, now));
                Ok(self.session_status(session, now))
            }
            "session.status" => Ok(self.session_status(session, now)),
            "session.logout" => {
                session.logon = None;
                Ok(self.session_status(session, now))
            }
            "userDataStream.subscribe" => {
                // errors.md §-1002 UNAUTHORIZED: no logon, no account.
                let (acct, _) = session
                    .logon
                    .ok_or_else(|| ApiError::new(401, -1002, "You are not authorized to execute this request."))?;
                self.subscribe(acct, session).map(|s| format!("{{\"subscriptionId\":{s}}}"))
            }
            "userDataStream.subscribe.signature" => {
                let key = p.get("apiKey").ok_or_else(|| mandatory("apiKey"))?;
                let acct = self.ws_verify(p, key, now)?;
                self.subscribe(acct, session).map(|s| format!("{{\"subscriptionId\":{s}}}"))
            }
            "userDataStream.unsubscribe" => {
                match p.get("subscriptionId").and_then(|s| s.parse::<u64>().ok()) {
                    Some(id) => session.subs.retain(|(s, _)| *s != id),
                    None => session.subs.clear(),
                }
                Ok("{}".into())
            }
            "session.subscriptions" => {
                let list: Vec<String> =
                    session.subs.iter().map(|(s, _)| format!("{{\"subscriptionId\":{s}}}")).collect();
                Ok(format!("[{}]", list.join(",")))
            }
            _ => Err(ApiError::new(400, -1100, format!("Unknown method {method:?}."))),
        }
    }

    fn session_status(&self, session: &WsSession, now: i64) -> String {
        let (key, since) = match session.logon {
            Some((acct, since)) => (json_str(&self.lock().accounts[acct].cfg.api_key), since.to_string()),
            None => ("null".into(), "null".into()),
        };
        format!(
            "{{\"apiKey\":{key},\"authorizedSince\":{since},\"connectedSince\":{},\"returnRateLimits\":{},\"serverTime\":{now},\"userDataStream\":{}}}",
            session.connected_since,
            session.return_rate_limits,
            !session.subs.is_empty()
        )
    }

    /// Subscribes the session to the account's user data ("only one per
    /// account per connection").
    fn subscribe(&self, acct: usize, session: &mut WsSession) -> Result<u64, ApiError> {
        if session.subs.iter().any(|(_, a)| *a == acct) {
            return Err(ApiError::new(400, -2035, "User Data Stream subscription already active."));
        }
        let (tx, rx) = std::sync::mpsc::sync_channel(SUB_QUEUE);
        self.lock().accounts[acct].subs.push(tx);
        let sub = session.next_sub;
        session.next_sub += 1;
        session.subs.push((sub, acct));
        session.rx.push((sub, rx));
        Ok(sub)
    }
}

/// The engine operation behind a WS-API method.
fn ws_op(method: &str) -> Option<Op> {
    Some(match method {
        "order.place" => Op::Place,
        "order.test" => Op::Test,
        "order.cancel" => Op::Cancel,
        "order.status" => Op::Query,
        "order.cancelReplace" => Op::CancelReplace,
        "openOrders.status" => Op::OpenOrders,
        "openOrders.cancelAll" => Op::CancelAll,
        "account.status" => Op::Account,
        "myTrades" => Op::MyTrades,
        _ => return None,
    })
}

/// `depth`'s `limit`: default 100, at most 5000 (web-socket-api.md §Order book).
fn depth_limit(p: &Params) -> usize {
    p.get("limit").and_then(|l| l.parse::<usize>().ok()).unwrap_or(100).clamp(1, 5000)
}

fn error_text(id: &str, e: &ApiError, usage: Option<Usage>, limits: &crate::sim::exchange::SimLimits) -> String {
    let rl = usage.map(|u| format!(",\"rateLimits\":{}", u.rate_limits(limits))).unwrap_or_default();
    format!("{{\"id\":{id},\"status\":{},\"error\":{}{rl}}}", e.status, e.body())
}

/// The `serverShutdown` event as the WebSocket API sends it
/// (web-socket-api.md §Server Shutdown).
pub fn server_shutdown_event(now_ms: i64) -> String {
    format!("{{\"event\":{{\"e\":\"serverShutdown\",\"E\":{now_ms}}}}}")
}

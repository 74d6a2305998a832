//! The REST trading endpoints (rest-api.md §Trading endpoints, §Account
//! endpoints): routing, authentication, and the HTTP shape of answers:
//! `X-MBX-USED-WEIGHT-1M` on every answer, `X-MBX-ORDER-COUNT-10S`/`-1D`
//! on placed orders, `Retry-After` on 429 and 418 (rest-api.md §LIMITS).

use std::time::Duration;

use crate::sim::exchange::engine::{Book, Op};
use crate::sim::exchange::limits::Admit;
use crate::sim::exchange::wire::{check_time, invalid_key, mandatory, signed_payload, verify, ApiError, Params};
use crate::sim::exchange::Exchange;

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
    /// Hold the answer this long (the slow-exchange and delay faults).
    pub delay: Duration,
}

impl Reply {
    /// An error answer with the weight header (and `Retry-After`).
    pub fn error(e: &ApiError, used_weight: u64, delay: Duration) -> Self {
        let mut headers = format!("X-MBX-USED-WEIGHT-1M: {used_weight}\r\n");
        if let Some(s) = e.retry_after_s {
            headers.push_str(&format!("Retry-After: {s}\r\n"));
        }
        // A REST error body is `{"code","msg"}` (errors.md); only
        // cancelReplace's carries `data`.
        let body = if matches!(e.code, -2021 | -2022) { e.body() } else { ApiError { data: None, ..e.clone() }.body() };
        Self { status: e.status, body, headers, delay }
    }
}

/// The trading operation behind a REST route.
fn rest_op(method: &str, route: &str) -> Option<Op> {
    Some(match (method, route) {
        ("POST", "/api/v3/order") => Op::Place,
        ("POST", "/api/v3/order/test") => Op::Test,
        ("DELETE", "/api/v3/order") => Op::Cancel,
        ("GET", "/api/v3/order") => Op::Query,
        ("POST", "/api/v3/order/cancelReplace") => Op::CancelReplace,
        ("GET", "/api/v3/openOrders") => Op::OpenOrders,
        ("DELETE", "/api/v3/openOrders") => Op::CancelAll,
        ("GET", "/api/v3/account") => Op::Account,
        ("GET", "/api/v3/myTrades") => Op::MyTrades,
        _ => return None,
    })
}

impl Exchange {
    /// Answers a REST trading request; `None` when `route` is not one.
    /// `book` gives the true book of a symbol (for would-take and queues).
    pub fn handle(&self, req: &Request<'_>, book: Book<'_>) -> Option<Reply> {
        let op = rest_op(req.method, req.route)?;
        self.tick(book);
        let slow = self.faults.slow_answers;
        let params = Params::parse(req.query, req.body);
        let mut usage = match self.admit(Admit::Rest(op.weight(&params))) {
            Ok(u) => u,
            Err(e) => return Some(Reply::error(&e, self.used_weight(), slow)),
        };
        let result = self.authenticate(req, &params).and_then(|acct| self.run(op, &params, acct, book));
        Some(match result {
            Ok(done) => {
                usage.orders = done.orders;
                Reply { status: 200, body: done.body, headers: usage.headers(), delay: slow + done.hold }
            }
            Err(e) => Reply::error(&e, usage.weight, slow),
        })
    }

    /// Checks key, timestamp and signature; the account's index.
    fn authenticate(&self, req: &Request<'_>, p: &Params) -> Result<usize, ApiError> {
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
            return Err(ApiError::new(400, -1022, "Signature for this request is not valid."));
        }
        Ok(idx)
    }
}

//! Depth snapshots from the WebSocket API's `depth` request, for the one
//! case where REST is refused and the WebSocket API is not: a REST 429 for
//! the RAW_REQUESTS limit, which only REST has (spot CHANGELOG 2023-08-25:
//! the WebSocket API's `RAW_REQUESTS` limit was "replaced ... with
//! `CONNECTIONS`"). Request weight is counted per IP for both ("Weight is
//! accumulated per IP address and is shared by all connections from that
//! address", web-socket-api.md §IP limits), so a weight 429 or a 418 ban
//! stops this too: the [`IpGuard`] refuses it then, and the feed falls back
//! to the depth20 stream or stays pulled.
//!
//! web-socket-api.md §Market data requests, Order book (`depth`): params
//! `symbol`, `limit` (default 100, max 5000), the same weights as REST by
//! limit; the `result` is REST's `{"lastUpdateId","bids","asks"}`, which is
//! what the books take. Connecting costs 2 weight. Each snapshot opens a
//! connection, asks once and closes it: a REST refusal lasts seconds to
//! minutes, and an idle WebSocket API connection would need pings.

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tungstenite::Message;

use crate::feed::endpoint::Url;
use crate::feed::snapshot::FetchFailure;
use crate::feed::ws;
use crate::ipguard::{IpGuard, Refusal, Request};

/// Where and how to ask.
#[derive(Debug, Clone)]
pub struct WsApiDepth {
    pub url: Url,
    pub tls: Arc<rustls::ClientConfig>,
    /// Connect, send and answer together.
    pub timeout: Duration,
}

/// Why the WebSocket API gave no snapshot.
#[derive(Debug)]
pub enum WsDepthError {
    /// The guard said no (a ban or a weight back-off): nothing was sent.
    Refused(Refusal),
    /// Sent or tried, and failed (logged).
    Failed(FetchFailure),
}

impl WsApiDepth {
    /// One `depth` request: on success `buf` holds the `result` object
    /// (REST's snapshot body). Tells the guard the answer's `rateLimits`,
    /// 429s and 418s.
    pub fn fetch(
        &self,
        guard: &IpGuard,
        symbol: &str,
        limit: u32,
        weight: u32,
        id: u64,
        buf: &mut Vec<u8>,
    ) -> Result<(), WsDepthError> {
        guard.admit_ws_api_connect().map_err(WsDepthError::Refused)?;
        guard.admit_ws_api(Request { label: "WS-API depth", weight, orders: 0 }).map_err(WsDepthError::Refused)?;
        let deadline = Instant::now() + self.timeout;
        let mut conn = ws::connect(&self.url, self.timeout, &self.tls).map_err(|e| {
            tracing::warn!(target: "mmbot::feed", "WebSocket API {} for a depth snapshot: {e}", self.url);
            if let ws::ConnectError::Refused { status: 418, retry_after, .. } = &e {
                guard.on_banned(Duration::from_secs(retry_after.unwrap_or(120)));
            }
            WsDepthError::Failed(FetchFailure::Transport)
        })?;
        let req_id = format!("mmbot-depth-{id}");
        let text = format!(r#"{{"id":"{req_id}","method":"depth","params":{{"symbol":"{symbol}","limit":{limit}}}}}"#);
        let fail = |what: String| {
            tracing::warn!(target: "mmbot::feed", "WebSocket API depth for {symbol}: {what}; asking again shortly");
            WsDepthError::Failed(FetchFailure::Transport)
        };
        conn.send(Message::text(text)).or_else(|e| match e {
            tungstenite::Error::Io(e) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(()),
            e => Err(fail(format!("sending failed: {e}"))),
        })?;
        let answer = loop {
            if Instant::now() >= deadline {
                return Err(fail(format!("no answer within {:.1} s", self.timeout.as_secs_f64())));
            }
            match conn.read() {
                Ok(Message::Text(t)) => {
                    let v: Value = serde_json::from_str(t.as_str())
                        .map_err(|e| fail(format!("an answer that is not JSON ({e})")))?;
                    if v.get("id").and_then(Value::as_str) == Some(req_id.as_str()) {
                        break v;
                    }
                }
                Ok(Message::Close(_)) => return Err(fail("the server closed the connection".into())),
                Ok(_) => {}
                Err(tungstenite::Error::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    // Flush what `send` queued, then wait a little.
                    let _ = conn.flush();
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(e) => return Err(fail(format!("reading failed: {e}"))),
            }
        };
        let _ = conn.close(None);
        let _ = conn.flush();
        if let Some(limits) = answer.get("rateLimits") {
            guard.observe_ws_rate_limits(limits);
        }
        let status = answer.get("status").and_then(Value::as_u64).unwrap_or(0);
        if status == 200 {
            let Some(result) = answer.get("result").filter(|r| r.get("lastUpdateId").is_some()) else {
                return Err(fail("status 200 without a depth `result`".into()));
            };
            buf.clear();
            return serde_json::to_writer(&mut *buf, result)
                .and_then(|()| buf.flush().map_err(serde_json::Error::io))
                .map_err(|e| fail(format!("the result could not be copied ({e})")));
        }
        // web-socket-api.md §IP limits: 429 and 418 carry `retryAfter`
        // (a server timestamp, ms) in `error.data`.
        let error = answer.get("error");
        let retry_after = error.and_then(|e| e.get("data")).and_then(|d| d.get("retryAfter")).and_then(Value::as_i64);
        match (status, retry_after) {
            (418, Some(t)) => guard.on_banned_until(t),
            (418, None) => guard.on_banned(Duration::from_secs(120)),
            (429, Some(t)) => guard.on_rate_limited_until(false, t),
            (429, None) => guard.on_rate_limited(false, Duration::from_secs(60)),
            _ => {}
        }
        let msg = error.and_then(|e| e.get("msg")).and_then(Value::as_str).unwrap_or("no message");
        tracing::warn!(target: "mmbot::feed", "WebSocket API depth for {symbol} answered {status}: {msg}");
        Err(WsDepthError::Failed(FetchFailure::Status(status.min(u16::MAX as u64) as u16)))
    }
}

//! Faults the simulator can inject, for tests and for users who want to see
//! the bot cope: each is off by default and set by a `mmbot sim` flag.
//!
//! They are the failures a live Binance feed really shows: a lost diff (a
//! gap the bot must resync from), dropped connections, late frames, garbage
//! frames, `serverShutdown`, a peer that stops answering pings, refused
//! connections, and a REST snapshot older than the stream. On the trading
//! side ([`crate::sim::exchange`]): 429 and 418 answers to order requests,
//! a 5xx answer after the order was placed (its fate unknown to the
//! client), an answer held past the client's timeout, user-data
//! connections dropped, and an exchange clock that is off (clients must
//! sync before signing).

use std::time::Duration;

/// Which faults to inject (all off by default).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Faults {
    /// Drop every Nth depth diff of each symbol (0: never).
    pub drop_diff_every: u64,
    /// Close each WebSocket connection this long after it opened.
    pub disconnect_every: Option<Duration>,
    /// Hold every frame this long before sending it.
    pub delay: Duration,
    /// Send a malformed frame after every N frames (0: never).
    pub malformed_every: u64,
    /// Send `serverShutdown` this long after each connection opened, then
    /// close it a second later (as Binance does before maintenance).
    pub shutdown_after: Option<Duration>,
    /// Never answer the client's pings (the socket is not read at all).
    pub ignore_pings: bool,
    /// Refuse WebSocket connections (HTTP 503) for this long after start.
    pub refuse_for: Duration,
    /// Serve the first N REST snapshots stale (older than the stream).
    pub stale_snapshots: u32,
    /// Answer every Nth order request (new order, cancelReplace) with HTTP
    /// 429 `-1015` (the order count), `Retry-After: 1`, before it reaches
    /// the engine (0: never).
    pub throttle_order_every: u64,
    /// Answer every Nth request (REST or WS-API) with HTTP 429 `-1003`
    /// (the request weight), `Retry-After: 1` (0: never).
    pub throttle_weight_every: u64,
    /// Answer every Nth order request with HTTP 418 (an IP ban) (0: never);
    /// until the ban ends the whole IP is refused: every REST request gets
    /// 418, every WebSocket connect is refused, open connections drop.
    pub ban_order_every: u64,
    /// Ban the IP (for `ban_for`) once this many requests arrived while a
    /// 429's `Retry-After` still ran (0: never): rest-api.md §IP Limits,
    /// "failing to back off after receiving 429s will result in an
    /// automated IP ban".
    pub ban_after_ignored_429s: u64,
    /// How long such a ban lasts (`None`: 120 s, Binance's shortest).
    pub ban_for: Option<Duration>,
    /// Place every Nth order request, then answer HTTP 503 (0: never):
    /// Binance's "execution status unknown".
    pub error_after_order_every: u64,
    /// Hold the answer to every Nth order request `order_delay` after
    /// acting on it (0: never): a client timeout with the order placed.
    pub delay_order_every: u64,
    pub order_delay: Duration,
    /// Answer every Nth new order `-1007 TIMEOUT` at once and let the
    /// order reach the engine `late_order_by` later (0: never).
    pub late_order_every: u64,
    /// How late (capped by the request's timestamp + recvWindow and 10 s).
    pub late_order_by: Duration,
    /// Place every Nth order request, then answer `-1006
    /// UNEXPECTED_RESP` (0: never).
    pub unexpected_resp_every: u64,
    /// Hold every answer (REST and WS-API) this long; concurrent requests
    /// are answered concurrently.
    pub slow_answers: Duration,
    /// Every this long, another order of the same account takes against
    /// the account's oldest resting order (self-trade prevention applies).
    pub self_trade_every: Option<Duration>,
    /// That taker's `selfTradePreventionMode` (empty: EXPIRE_MAKER, the
    /// symbol's default).
    pub self_trade_mode: String,
    /// Push `serverShutdown` to each WebSocket API session this long after
    /// it opened, ...
    pub ws_api_shutdown_after: Option<Duration>,
    /// ... keep serving it this long (`None`: 1 s), then close it.
    pub ws_api_shutdown_grace: Option<Duration>,
    /// Close each user-data (`/ws-api/v3`) connection this long after it opened.
    pub drop_user_data_every: Option<Duration>,
    /// The exchange clock minus the wall clock, ms (e.g. 3000: 3 s ahead).
    pub clock_offset_ms: i64,
}

impl Faults {
    /// The self-trade fault's taker STP mode, one of enums.md's.
    pub fn self_trade_mode(&self) -> &'static str {
        crate::sim::exchange::rules::STP_MODES
            .iter()
            .find(|m| **m == self.self_trade_mode)
            .copied()
            .unwrap_or("EXPIRE_MAKER")
    }

    /// How long a simulated IP ban lasts.
    pub fn ban_duration(&self) -> Duration {
        self.ban_for.unwrap_or(Duration::from_secs(120))
    }

    /// How long a WS-API session is served after its `serverShutdown`.
    pub fn ws_api_shutdown_grace(&self) -> Duration {
        self.ws_api_shutdown_grace.unwrap_or(Duration::from_secs(1))
    }

    /// One line naming the faults that are on, for the sim's banner.
    pub fn describe(&self) -> String {
        let mut on = Vec::new();
        if self.drop_diff_every > 0 {
            on.push(format!("drop every {}th diff", self.drop_diff_every));
        }
        if let Some(d) = self.disconnect_every {
            on.push(format!("disconnect every {:.1} s", d.as_secs_f64()));
        }
        if !self.delay.is_zero() {
            on.push(format!("delay frames {} ms", self.delay.as_millis()));
        }
        if self.malformed_every > 0 {
            on.push(format!("malformed frame every {} frames", self.malformed_every));
        }
        if let Some(d) = self.shutdown_after {
            on.push(format!("serverShutdown after {:.1} s", d.as_secs_f64()));
        }
        if self.ignore_pings {
            on.push("pings unanswered".into());
        }
        if !self.refuse_for.is_zero() {
            on.push(format!("connections refused for {:.1} s", self.refuse_for.as_secs_f64()));
        }
        if self.stale_snapshots > 0 {
            on.push(format!("first {} snapshots stale", self.stale_snapshots));
        }
        if self.throttle_order_every > 0 {
            on.push(format!("HTTP 429 -1015 every {}th order", self.throttle_order_every));
        }
        if self.throttle_weight_every > 0 {
            on.push(format!("HTTP 429 -1003 every {}th request", self.throttle_weight_every));
        }
        if self.ban_order_every > 0 {
            on.push(format!(
                "HTTP 418 every {}th order, banned {:.1} s",
                self.ban_order_every,
                self.ban_duration().as_secs_f64()
            ));
        }
        if self.ban_after_ignored_429s > 0 {
            on.push(format!("HTTP 418 after {} requests inside a 429's Retry-After", self.ban_after_ignored_429s));
        }
        if self.error_after_order_every > 0 {
            on.push(format!("HTTP 503 after placing every {}th order", self.error_after_order_every));
        }
        if self.delay_order_every > 0 {
            on.push(format!(
                "answer to every {}th order held {} ms",
                self.delay_order_every,
                self.order_delay.as_millis()
            ));
        }
        if self.late_order_every > 0 {
            on.push(format!(
                "-1007 every {}th order, engine {} ms late",
                self.late_order_every,
                self.late_order_by.as_millis()
            ));
        }
        if self.unexpected_resp_every > 0 {
            on.push(format!("-1006 after placing every {}th order", self.unexpected_resp_every));
        }
        if !self.slow_answers.is_zero() {
            on.push(format!("every answer {} ms late", self.slow_answers.as_millis()));
        }
        if let Some(d) = self.self_trade_every {
            on.push(format!("self-trade ({}) every {:.1} s", self.self_trade_mode(), d.as_secs_f64()));
        }
        if let Some(d) = self.ws_api_shutdown_after {
            on.push(format!(
                "WS-API serverShutdown after {:.1} s, closed {:.1} s later",
                d.as_secs_f64(),
                self.ws_api_shutdown_grace().as_secs_f64()
            ));
        }
        if let Some(d) = self.drop_user_data_every {
            on.push(format!("user-data connections dropped every {:.1} s", d.as_secs_f64()));
        }
        if self.clock_offset_ms != 0 {
            on.push(format!("exchange clock {:+} ms", self.clock_offset_ms));
        }
        if on.is_empty() {
            "none".into()
        } else {
            on.join(", ")
        }
    }
}

/// Malformed frames sent in turn: each is a different way a frame can be
/// wrong, and none may cost the bot its book.
pub const MALFORMED: [&str; 5] = [
    // Cut off mid-object.
    r#"{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":1,"#,
    // Not a decimal.
    r#"{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":1,"u":2,"b":[["1.2.3","1"]],"a":[]}"#,
    // Not JSON at all.
    "\u{1}\u{2}garbage\u{ff}",
    // Valid JSON, no known event.
    r#"{"hello":"world"}"#,
    // A level that is not a pair.
    r#"{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":1,"u":2,"b":[["1"]],"a":[]}"#,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describe_names_what_is_on() {
        assert_eq!(Faults::default().describe(), "none");
        let f = Faults { drop_diff_every: 50, ignore_pings: true, ..Faults::default() };
        assert_eq!(f.describe(), "drop every 50th diff, pings unanswered");
        let f = Faults {
            late_order_every: 3,
            late_order_by: Duration::from_secs(2),
            unexpected_resp_every: 4,
            throttle_weight_every: 5,
            slow_answers: Duration::from_millis(300),
            self_trade_every: Some(Duration::from_secs(1)),
            self_trade_mode: "DECREMENT".into(),
            ws_api_shutdown_after: Some(Duration::from_secs(2)),
            ..Faults::default()
        };
        assert_eq!(
            f.describe(),
            "HTTP 429 -1003 every 5th request, -1007 every 3th order, engine 2000 ms late, \
             -1006 after placing every 4th order, every answer 300 ms late, self-trade (DECREMENT) every 1.0 s, \
             WS-API serverShutdown after 2.0 s, closed 1.0 s later"
        );
    }
}

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
    /// 429, `Retry-After: 1`, before it reaches the engine (0: never).
    pub throttle_order_every: u64,
    /// Answer every Nth order request with HTTP 418 (an IP ban) (0: never);
    /// every trading request then gets 418 until the ban ends.
    pub ban_order_every: u64,
    /// How long such a ban lasts (`None`: 120 s, Binance's shortest).
    pub ban_for: Option<Duration>,
    /// Place every Nth order request, then answer HTTP 503 (0: never):
    /// Binance's "execution status unknown".
    pub error_after_order_every: u64,
    /// Hold the answer to every Nth order request `order_delay` after
    /// acting on it (0: never): a client timeout with the order placed.
    pub delay_order_every: u64,
    pub order_delay: Duration,
    /// Close each user-data (`/ws-api/v3`) connection this long after it opened.
    pub drop_user_data_every: Option<Duration>,
    /// The exchange clock minus the wall clock, ms (e.g. 3000: 3 s ahead).
    pub clock_offset_ms: i64,
}

impl Faults {
    /// How long a simulated IP ban lasts.
    pub fn ban_duration(&self) -> Duration {
        self.ban_for.unwrap_or(Duration::from_secs(120))
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
            on.push(format!("HTTP 429 every {}th order", self.throttle_order_every));
        }
        if self.ban_order_every > 0 {
            on.push(format!(
                "HTTP 418 every {}th order, banned {:.1} s",
                self.ban_order_every,
                self.ban_duration().as_secs_f64()
            ));
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
    }
}

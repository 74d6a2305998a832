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
//!
//! Market-data truth faults (issue 13): a diff whose update ids jump far
//! beyond anything plausible (or come inverted, `U > u`), a snapshot that
//! lacks one level the stream never mentions again, REST refused while the
//! WebSocket API's `depth` still answers, and a market-stream connection
//! that flaps (closed every D, the next connects refused).

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
    /// Every Nth depth diff of each symbol is preceded by a copy of itself
    /// whose `U` and `u` are raised by [`ID_JUMP`] (`pu` kept, so a USD-M
    /// client chaining on `pu` alone would take it) (0: never). The real
    /// diff follows, so a client that rejects the copy as implausible loses
    /// nothing; one that takes it as a gap must resync.
    pub id_jump_every: u64,
    /// Every Nth depth diff of each symbol is preceded by a copy of itself
    /// with `U` raised to `u` + [`ID_JUMP`], so `U > u`: malformed under
    /// any rule (0: never).
    pub inverted_ids_every: u64,
    /// Served snapshots (REST depth and WS-API `depth`, not the stale ones)
    /// lack the Nth best bid (0: never; 2: the second best). No diff
    /// mentions that level until it changes, so when the bids above it go,
    /// bookTicker shows a best bid the client's book does not have.
    pub omit_snapshot_bid: usize,
    /// For this long after start every REST request answers HTTP 429
    /// `-1003` for the REST-only RAW_REQUESTS limit, while the WebSocket
    /// API (its `depth` included) answers as usual. Why 429 and not 418:
    /// web-socket-api.md §IP limits makes an IP ban (418) cover the WS-API
    /// too ("Requests from a banned IP address fail with status 418", "you
    /// will be disconnected"; CHANGELOG: WS-API users "will now be
    /// disconnected if their IP is banned"), and REQUEST_WEIGHT is "shared
    /// by all connections from that address"; only RAW_REQUESTS is REST's
    /// alone (CHANGELOG: "For WebSocket API, removed `RAW REQUESTS` rate
    /// limit ... replaced it with `CONNECTIONS`").
    pub rest_ban_for: Duration,
    /// After each connection closed by `disconnect_every`, refuse the next
    /// N market-stream connects (HTTP 503): a flapping connection.
    pub refuse_after_disconnect: u32,
}

/// How far the id-jump faults push an update id: far beyond any real
/// stream's pace (BTCUSDT makes a few thousand ids a second).
pub const ID_JUMP: u64 = 1_000_000_000;

/// A copy of a depth diff payload with its ids jumped: `U` and `u` raised
/// by [`ID_JUMP`] or, `inverted`, `U` set to `u` + [`ID_JUMP`]; `None` when
/// the payload has no `"U"`/`"u"` numbers.
pub fn jump_ids(payload: &str, inverted: bool) -> Option<String> {
    let number_after = |key: &str| -> Option<(usize, usize, u64)> {
        let start = payload.find(key)? + key.len();
        let len = payload[start..].bytes().take_while(u8::is_ascii_digit).count();
        let v = payload[start..start + len].parse().ok()?;
        Some((start, start + len, v))
    };
    let (us, ue, big_u) = number_after("\"U\":")?;
    let (ls, le, u) = number_after("\"u\":")?;
    let (new_big_u, new_u) = if inverted {
        (u.saturating_add(ID_JUMP), u)
    } else {
        (big_u.saturating_add(ID_JUMP), u.saturating_add(ID_JUMP))
    };
    // Replace the later one first so the earlier offsets stay valid.
    let mut out = payload.to_string();
    let mut edits = [(us, ue, new_big_u), (ls, le, new_u)];
    edits.sort_by_key(|e| std::cmp::Reverse(e.0));
    for (s, e, v) in edits {
        out.replace_range(s..e, &v.to_string());
    }
    Some(out)
}

/// Removes the `nth` best bid (1-based) from a book's levels for the
/// omit-level fault; false when there is no such level.
pub fn omit_bid(bids: &mut Vec<(i64, i64)>, nth: usize) -> bool {
    if nth == 0 || nth > bids.len() {
        return false;
    }
    bids.remove(nth - 1);
    true
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
        if self.id_jump_every > 0 {
            on.push(format!("update ids +{ID_JUMP} on a copy of every {}th diff", self.id_jump_every));
        }
        if self.inverted_ids_every > 0 {
            on.push(format!("U > u on a copy of every {}th diff", self.inverted_ids_every));
        }
        if self.omit_snapshot_bid > 0 {
            on.push(format!("snapshots lack bid #{}", self.omit_snapshot_bid));
        }
        if !self.rest_ban_for.is_zero() {
            on.push(format!("REST 429 (RAW_REQUESTS) for {:.1} s, WS-API open", self.rest_ban_for.as_secs_f64()));
        }
        if self.refuse_after_disconnect > 0 {
            on.push(format!("{} market-stream connects refused after each drop", self.refuse_after_disconnect));
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
        let f = Faults {
            disconnect_every: Some(Duration::from_secs(3)),
            id_jump_every: 7,
            inverted_ids_every: 9,
            omit_snapshot_bid: 2,
            rest_ban_for: Duration::from_secs(30),
            refuse_after_disconnect: 2,
            ..Faults::default()
        };
        assert_eq!(
            f.describe(),
            "disconnect every 3.0 s, update ids +1000000000 on a copy of every 7th diff, \
             U > u on a copy of every 9th diff, snapshots lack bid #2, REST 429 (RAW_REQUESTS) for 30.0 s, WS-API open, \
             2 market-stream connects refused after each drop"
        );
    }

    #[test]
    fn jumped_ids_are_far_ahead_or_inverted_and_the_rest_is_kept() {
        let spot = r#"{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":157,"u":160,"b":[["1.0","2"]],"a":[]}"#;
        assert_eq!(
            jump_ids(spot, false).unwrap(),
            r#"{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":1000000157,"u":1000000160,"b":[["1.0","2"]],"a":[]}"#
        );
        assert_eq!(
            jump_ids(spot, true).unwrap(),
            r#"{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":1000000160,"u":160,"b":[["1.0","2"]],"a":[]}"#
        );
        let usdm = r#"{"e":"depthUpdate","E":1,"T":1,"s":"X","U":10,"u":12,"pu":9,"b":[],"a":[]}"#;
        assert_eq!(
            jump_ids(usdm, false).unwrap(),
            r#"{"e":"depthUpdate","E":1,"T":1,"s":"X","U":1000000010,"u":1000000012,"pu":9,"b":[],"a":[]}"#
        );
        assert_eq!(jump_ids(r#"{"lastUpdateId":5}"#, false), None);
    }

    #[test]
    fn the_nth_bid_is_omitted() {
        let mut bids = vec![(3, 1), (2, 1), (1, 1)];
        assert!(omit_bid(&mut bids, 2));
        assert_eq!(bids, vec![(3, 1), (1, 1)]);
        assert!(!omit_bid(&mut bids, 0) && !omit_bid(&mut bids, 3));
    }
}

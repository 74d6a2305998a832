//! Rate limits and IP bans, as rest-api.md §LIMITS and web-socket-api.md
//! §Rate limits describe them.
//!
//! Per IP (every client of the simulator is 127.0.0.1, one IP):
//! REQUEST_WEIGHT per minute (each REST endpoint's and WS-API method's
//! documented weight; connecting to the WS-API costs 2) and RAW_REQUESTS
//! per 5 minutes; going over answers HTTP 429 `-1003` with `Retry-After`.
//! Per account (rest-api.md §Unfilled Order Count: "tracked for each
//! account"): ORDERS per 10 s and per day, checked before an order reaches
//! the engine and counted when one is placed; going over answers 429
//! `-1015 "Too many new orders; current limit is %s orders per %s."`.
//! Intervals are fixed windows: "a 1 MINUTE interval starts every minute",
//! "1 DAY resets at 00:00 UTC" (web-socket-api.md §How to interpret rate
//! limits).
//!
//! An IP ban (the 418 fault) covers the whole IP: every REST endpoint
//! answers 418 with `Retry-After`, every WebSocket connect is refused and
//! open connections are dropped when it starts. What still arrives during
//! it is counted ([`BanCounts`]).

use crate::sim::exchange::wire::ApiError;
use crate::sim::exchange::{BanCounts, Exchange};

/// The limits the exchange enforces and advertises in exchangeInfo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimLimits {
    /// REQUEST_WEIGHT per 1 MINUTE, per IP.
    pub weight_per_minute: u64,
    /// RAW_REQUESTS per 5 MINUTE, per IP.
    pub raw_requests_per_5m: u64,
    /// ORDERS per 10 SECOND, per account.
    pub orders_per_10s: u64,
    /// ORDERS per 1 DAY, per account.
    pub orders_per_day: u64,
}

impl Default for SimLimits {
    /// The values in web-socket-api.md §Response format and enums.md.
    fn default() -> Self {
        Self { weight_per_minute: 6000, raw_requests_per_5m: 61_000, orders_per_10s: 50, orders_per_day: 160_000 }
    }
}

impl SimLimits {
    /// exchangeInfo `rateLimits`.
    pub fn exchange_info_json(&self) -> String {
        format!(
            concat!(
                r#"[{{"rateLimitType":"REQUEST_WEIGHT","interval":"MINUTE","intervalNum":1,"limit":{}}},"#,
                r#"{{"rateLimitType":"ORDERS","interval":"SECOND","intervalNum":10,"limit":{}}},"#,
                r#"{{"rateLimitType":"ORDERS","interval":"DAY","intervalNum":1,"limit":{}}},"#,
                r#"{{"rateLimitType":"RAW_REQUESTS","interval":"MINUTE","intervalNum":5,"limit":{}}}]"#
            ),
            self.weight_per_minute, self.orders_per_10s, self.orders_per_day, self.raw_requests_per_5m
        )
    }
}

const MINUTE: i64 = 60_000;
const TEN_S: i64 = 10_000;
const DAY: i64 = 86_400_000;
const FIVE_MIN: i64 = 300_000;

/// A count in a fixed window of `len` ms.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Window {
    index: i64,
    count: u64,
}

impl Window {
    fn roll(&mut self, now: i64, len: i64) -> &mut Self {
        let i = now.div_euclid(len);
        if self.index != i {
            *self = Self { index: i, count: 0 };
        }
        self
    }

    fn count(&mut self, now: i64, len: i64) -> u64 {
        self.roll(now, len).count
    }

    fn add(&mut self, now: i64, len: i64, n: u64) -> u64 {
        let w = self.roll(now, len);
        w.count += n;
        w.count
    }
}

/// Seconds until the window of `len` ms that holds `now` ends (at least 1).
fn seconds_left(now: i64, len: i64) -> u64 {
    let end = (now.div_euclid(len) + 1) * len;
    ((end - now + 999) / 1000).max(1) as u64
}

/// The IP's usage and ban.
#[derive(Debug, Default)]
pub(crate) struct IpUsage {
    weight: Window,
    raw: Window,
    pub(crate) banned_until_ms: i64,
    pub(crate) during_ban: BanCounts,
    /// The latest end of a 429's `Retry-After`, and the requests that came
    /// before it (the auto-ban fault counts these).
    backoff_until_ms: i64,
    ignored_429s: u64,
}

/// One account's ORDERS counters.
#[derive(Debug, Default)]
pub(crate) struct OrderCounts {
    ten_s: Window,
    day: Window,
}

/// What a request may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// A REST request of this weight.
    Rest(u64),
    /// A WebSocket connect: the WS-API (2 weight) or a market stream.
    Connect { ws_api: bool },
    /// A WS-API request of this weight on an open connection.
    WsRequest(u64),
}

/// The limits' state after a request, for headers and `rateLimits`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub weight: u64,
    /// (10 s, day) ORDERS counts, on order requests.
    pub orders: Option<(u64, u64)>,
}

impl Usage {
    /// REST headers (rest-api.md §IP Limits, §Unfilled Order Count).
    pub fn headers(&self) -> String {
        let mut h = format!("X-MBX-USED-WEIGHT-1M: {}\r\n", self.weight);
        if let Some((s, d)) = self.orders {
            h.push_str(&format!("X-MBX-ORDER-COUNT-10S: {s}\r\nX-MBX-ORDER-COUNT-1D: {d}\r\n"));
        }
        h
    }

    /// The WS-API `rateLimits` array (web-socket-api.md §Response format).
    pub fn rate_limits(&self, l: &SimLimits) -> String {
        let mut parts = Vec::new();
        if let Some((s, d)) = self.orders {
            parts.push(format!(
                r#"{{"rateLimitType":"ORDERS","interval":"SECOND","intervalNum":10,"limit":{},"count":{s}}}"#,
                l.orders_per_10s
            ));
            parts.push(format!(
                r#"{{"rateLimitType":"ORDERS","interval":"DAY","intervalNum":1,"limit":{},"count":{d}}}"#,
                l.orders_per_day
            ));
        }
        parts.push(format!(
            r#"{{"rateLimitType":"REQUEST_WEIGHT","interval":"MINUTE","intervalNum":1,"limit":{},"count":{}}}"#,
            l.weight_per_minute, self.weight
        ));
        format!("[{}]", parts.join(","))
    }
}

impl Exchange {
    /// Whether the IP is banned now.
    pub fn banned(&self) -> bool {
        self.now_ms() < self.lock().ip.banned_until_ms
    }

    /// Bans the IP for the fault's duration from now: the 418 answer.
    pub(crate) fn start_ban(&self) -> ApiError {
        let ban = self.faults.ban_duration();
        let now = self.now_ms();
        let until = now + ban.as_millis() as i64;
        self.lock().ip.banned_until_ms = until;
        ban_error(now, until)
    }

    /// Lets a request or connect in, or refuses it: 418 during a ban
    /// (counted), 429 `-1003` over the weight or raw-request limit, or the
    /// weight-throttle fault. Weight is counted even when refused, as the
    /// request did arrive.
    pub fn admit(&self, what: Admit) -> Result<Usage, ApiError> {
        let r = self.admit_inner(what);
        if let Err(e) = &r {
            self.note_429(e);
        }
        r
    }

    /// Remembers a 429's `Retry-After`, so requests that ignore it count.
    pub(crate) fn note_429(&self, e: &ApiError) {
        if let (429, Some(s)) = (e.status, e.retry_after_s) {
            let until = self.now_ms() + s as i64 * 1000;
            let mut g = self.lock();
            g.ip.backoff_until_ms = g.ip.backoff_until_ms.max(until);
        }
    }

    fn admit_inner(&self, what: Admit) -> Result<Usage, ApiError> {
        let now = self.now_ms();
        let mut g = self.lock();
        let ip = &mut g.ip;
        if now < ip.banned_until_ms {
            match what {
                Admit::Rest(_) | Admit::WsRequest(_) => ip.during_ban.requests += 1,
                Admit::Connect { .. } => ip.during_ban.connects += 1,
            }
            return Err(ban_error(now, ip.banned_until_ms));
        }
        if !matches!(what, Admit::Connect { .. }) && now < ip.backoff_until_ms {
            ip.ignored_429s += 1;
            let limit = self.faults.ban_after_ignored_429s;
            if limit > 0 && ip.ignored_429s >= limit {
                ip.ignored_429s = 0;
                ip.banned_until_ms = now + self.faults.ban_duration().as_millis() as i64;
                return Err(ban_error(now, ip.banned_until_ms));
            }
        }
        let weight = match what {
            Admit::Rest(w) | Admit::WsRequest(w) => w,
            Admit::Connect { ws_api } => {
                if ws_api {
                    2
                } else {
                    0
                }
            }
        };
        let used = ip.weight.add(now, MINUTE, weight);
        let raw = if matches!(what, Admit::Connect { .. }) {
            ip.raw.count(now, FIVE_MIN)
        } else {
            ip.raw.add(now, FIVE_MIN, 1)
        };
        let usage = Usage { weight: used, orders: None };
        let l = &self.cfg.limits;
        if used > l.weight_per_minute {
            return Err(throttled(
                -1003,
                format!(
                    "Too much request weight used; current limit is {} request weight per 1 MINUTE. Please use WebSocket Streams for live updates to avoid polling the API.",
                    l.weight_per_minute
                ),
                seconds_left(now, MINUTE),
                now,
            ));
        }
        if raw > l.raw_requests_per_5m {
            return Err(throttled(
                -1003,
                format!("Too many requests; current limit is {} requests per 5 MINUTE.", l.raw_requests_per_5m),
                seconds_left(now, FIVE_MIN),
                now,
            ));
        }
        if !matches!(what, Admit::Connect { .. }) {
            g.requests += 1;
            let every = self.faults.throttle_weight_every;
            if every > 0 && g.requests.is_multiple_of(every) {
                return Err(throttled(
                    -1003,
                    format!(
                        "Too much request weight used; current limit is {} request weight per 1 MINUTE. Please use WebSocket Streams for live updates to avoid polling the API.",
                        l.weight_per_minute
                    ),
                    1,
                    now,
                ));
            }
        }
        Ok(usage)
    }

    /// Adds `weight` to the IP's minute without checking any limit; the
    /// header line to send (the older API; [`Exchange::admit`] checks).
    pub fn weigh(&self, weight: u64) -> String {
        let now = self.now_ms();
        let used = self.lock().ip.weight.add(now, MINUTE, weight);
        format!("X-MBX-USED-WEIGHT-1M: {used}\r\n")
    }

    /// The IP's weight used this minute.
    pub fn used_weight(&self) -> u64 {
        let now = self.now_ms();
        self.lock().ip.weight.count(now, MINUTE)
    }

    /// Refuses a new order when the account's ORDERS limits are used up
    /// (checked before the engine: rest-api.md §Cancel an Existing Order
    /// "Filters and Order Count are evaluated before ...").
    pub(crate) fn order_room(&self, acct: usize, now: i64) -> Result<(u64, u64), ApiError> {
        let l = self.cfg.limits;
        let mut g = self.lock();
        let c = &mut g.accounts[acct].order_counts;
        let (s, d) = (c.ten_s.count(now, TEN_S), c.day.count(now, DAY));
        if s >= l.orders_per_10s {
            return Err(too_many_orders(l.orders_per_10s, "10 SECOND", seconds_left(now, TEN_S), now));
        }
        if d >= l.orders_per_day {
            return Err(too_many_orders(l.orders_per_day, "1 DAY", seconds_left(now, DAY), now));
        }
        Ok((s, d))
    }

    /// Counts one placed order; the (10 s, day) counts.
    pub(crate) fn order_placed(g: &mut crate::sim::exchange::Inner, acct: usize, now: i64) -> (u64, u64) {
        let c = &mut g.accounts[acct].order_counts;
        (c.ten_s.add(now, TEN_S, 1), c.day.add(now, DAY, 1))
    }
}

/// 429 `-1015` (errors.md): the throttle fault uses it too.
pub(crate) fn too_many_orders(limit: u64, per: &str, retry_after_s: u64, now: i64) -> ApiError {
    throttled(-1015, format!("Too many new orders; current limit is {limit} orders per {per}."), retry_after_s, now)
}

/// 429 with `Retry-After` (REST) and `data.retryAfter` (the WS-API's
/// "Rate-limited responses include a retryAfter field", epoch ms).
fn throttled(code: i64, msg: String, retry_after_s: u64, now: i64) -> ApiError {
    let mut e = ApiError::new(429, code, msg);
    e.retry_after_s = Some(retry_after_s);
    e.data = Some(format!("{{\"serverTime\":{now},\"retryAfter\":{}}}", now + retry_after_s as i64 * 1000));
    e
}

/// 418 `-1003` until `until` (errors.md; web-socket-api.md §IP limits gives
/// the WS-API's `data.retryAfter` as the ban's end, epoch ms).
fn ban_error(now: i64, until: i64) -> ApiError {
    let mut e = ApiError::new(
        418,
        -1003,
        format!(
            "Way too much request weight used; IP banned until {until}. Please use WebSocket Streams for live updates to avoid bans."
        ),
    );
    e.retry_after_s = Some(((until - now + 999) / 1000).max(1) as u64);
    e.data = Some(format!("{{\"serverTime\":{now},\"retryAfter\":{until}}}"));
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_reset_on_their_boundaries() {
        let mut w = Window::default();
        assert_eq!(w.add(59_999, MINUTE, 5), 5);
        assert_eq!(w.add(60_000, MINUTE, 1), 1);
        assert_eq!(seconds_left(60_500, MINUTE), 60);
        assert_eq!(seconds_left(119_999, MINUTE), 1);
    }
}

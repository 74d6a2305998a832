//! Rate limits and the IP ban, counted the way rest-api.md §LIMITS and web-socket-api.md
//! §Rate limits describe: REQUEST_WEIGHT per IP per 1 MINUTE, ORDERS (unfilled order count)
//! per account per 10 SECOND and per 1 DAY, intervals aligned to the clock ("a 1 MINUTE interval
//! starts every minute"; "10 SECOND interval resets at 00, 10, 20... seconds"). The double has
//! one client IP and one account, so one counter each.
//!
//! Not modelled: the decrement of the unfilled order count when orders fill
//! (faqs/order_count_decrement.md); every accepted new order counts 1.

use serde_json::{json, Value};

use super::config::RateLimits;

/// Why a request was refused before reaching the engine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refused {
    /// HTTP 418, -1003 "Way too much request weight used; IP banned until %s" (errors.md §-1003).
    Banned { until_ms: i64, retry_after_s: u64 },
    /// HTTP 429, -1003 "Too much request weight used; current limit is %s request weight per %s".
    Weight { retry_after_s: u64, retry_at_ms: i64 },
    /// HTTP 429, -1015 "Too many new orders; current limit is %s orders per %s." (errors.md §-1015).
    Orders { retry_after_s: u64, retry_at_ms: i64, msg: String },
}

#[derive(Default, Clone, Copy)]
struct Window {
    index: i64,
    used: u32,
}

impl Window {
    /// Moves to the interval holding `now_ms`; a new interval starts from zero unless `hold`.
    fn roll(&mut self, now_ms: i64, len_ms: i64, hold: bool) {
        let i = now_ms.div_euclid(len_ms);
        if i != self.index {
            self.index = i;
            if !hold {
                self.used = 0;
            }
        }
    }
    fn next_start(&self, len_ms: i64) -> i64 {
        (self.index + 1) * len_ms
    }
}

fn secs_until(at_ms: i64, now_ms: i64) -> u64 {
    let d = (at_ms - now_ms).max(0);
    ((d + 999) / 1000).max(1) as u64
}

const MIN: i64 = 60_000;
const TEN_S: i64 = 10_000;
const DAY: i64 = 86_400_000;

/// The counters.
pub struct Limiter {
    pub cfg: RateLimits,
    weight: Window,
    orders10: Window,
    orders_day: Window,
    consecutive_429: u32,
    ban_until_ms: Option<i64>,
    /// Every request (REST call, WebSocket connect or message) that arrived while banned.
    pub requests_during_ban: u64,
    /// 429s answered so far, by kind: (weight, orders).
    pub answered_429: (u64, u64),
    /// 418s answered so far.
    pub answered_418: u64,
}

impl Limiter {
    pub fn new(cfg: RateLimits) -> Limiter {
        Limiter {
            cfg,
            weight: Window::default(),
            orders10: Window::default(),
            orders_day: Window::default(),
            consecutive_429: 0,
            ban_until_ms: None,
            requests_during_ban: 0,
            answered_429: (0, 0),
            answered_418: 0,
        }
    }

    /// Zeroes the counters (a test's shortcut for waiting for the next interval).
    pub fn reset_counters(&mut self) {
        self.weight.used = 0;
        self.orders10.used = 0;
        self.orders_day.used = 0;
        self.consecutive_429 = 0;
    }

    pub fn ban_until(&self, now_ms: i64) -> Option<i64> {
        self.ban_until_ms.filter(|u| *u > now_ms)
    }

    pub fn ban(&mut self, until_ms: i64) {
        self.ban_until_ms = Some(until_ms);
    }

    pub fn lift_ban(&mut self) {
        self.ban_until_ms = None;
    }

    /// Counts a request during a ban and says so (rest-api.md §IP Limits: 418 with Retry-After
    /// "until the ban is over").
    pub fn check_ban(&mut self, now_ms: i64) -> Result<(), Refused> {
        if let Some(until) = self.ban_until(now_ms) {
            self.requests_during_ban += 1;
            self.answered_418 += 1;
            return Err(Refused::Banned { until_ms: until, retry_after_s: secs_until(until, now_ms) });
        }
        Ok(())
    }

    /// Adds a request's weight; refuses when the minute's limit is passed. Refused requests still
    /// count (they were requests), so a client that does not back off stays refused.
    pub fn add_weight(&mut self, w: u32, now_ms: i64) -> Result<(), Refused> {
        self.check_ban(now_ms)?;
        self.weight.roll(now_ms, MIN, self.cfg.hold_windows);
        self.weight.used = self.weight.used.saturating_add(w);
        if self.weight.used > self.cfg.weight_per_minute {
            self.answered_429.0 += 1;
            self.after_429(now_ms)?;
            let at = self.weight.next_start(MIN);
            return Err(Refused::Weight { retry_after_s: secs_until(at, now_ms), retry_at_ms: at });
        }
        self.consecutive_429 = 0;
        Ok(())
    }

    /// After a 429: too many in a row turns into a ban (rest-api.md §IP Limits).
    fn after_429(&mut self, now_ms: i64) -> Result<(), Refused> {
        self.consecutive_429 += 1;
        if let Some(n) = self.cfg.ban_after_429s {
            if self.consecutive_429 >= n {
                self.consecutive_429 = 0;
                let until = now_ms.saturating_add(super::ms_i64(self.cfg.auto_ban));
                self.ban_until_ms = Some(until);
                self.answered_418 += 1;
                return Err(Refused::Banned { until_ms: until, retry_after_s: secs_until(until, now_ms) });
            }
        }
        Ok(())
    }

    /// Would one more order pass the ORDERS limits? Does not count it.
    pub fn order_room(&mut self, now_ms: i64) -> Result<(), Refused> {
        self.orders10.roll(now_ms, TEN_S, self.cfg.hold_windows);
        self.orders_day.roll(now_ms, DAY, self.cfg.hold_windows);
        if self.orders10.used >= self.cfg.orders_per_10s {
            let at = self.orders10.next_start(TEN_S);
            return Err(Refused::Orders {
                retry_after_s: secs_until(at, now_ms),
                retry_at_ms: at,
                msg: format!("Too many new orders; current limit is {} orders per 10 SECOND.", self.cfg.orders_per_10s),
            });
        }
        if self.orders_day.used >= self.cfg.orders_per_day {
            let at = self.orders_day.next_start(DAY);
            return Err(Refused::Orders {
                retry_after_s: secs_until(at, now_ms),
                retry_at_ms: at,
                msg: format!("Too many new orders; current limit is {} orders per 1 DAY.", self.cfg.orders_per_day),
            });
        }
        Ok(())
    }

    /// Notes a 429 for an order refusal (for the auto-ban count).
    pub fn note_order_429(&mut self, now_ms: i64) -> Result<(), Refused> {
        self.answered_429.1 += 1;
        self.after_429(now_ms)
    }

    /// Counts one order (rest-api.md §New order "Unfilled Order Count: 1").
    pub fn count_order(&mut self, now_ms: i64) {
        self.orders10.roll(now_ms, TEN_S, self.cfg.hold_windows);
        self.orders_day.roll(now_ms, DAY, self.cfg.hold_windows);
        self.orders10.used += 1;
        self.orders_day.used += 1;
    }

    pub fn weight_used(&mut self, now_ms: i64) -> u32 {
        self.weight.roll(now_ms, MIN, self.cfg.hold_windows);
        self.weight.used
    }

    pub fn orders_used(&mut self, now_ms: i64) -> (u32, u32) {
        self.orders10.roll(now_ms, TEN_S, self.cfg.hold_windows);
        self.orders_day.roll(now_ms, DAY, self.cfg.hold_windows);
        (self.orders10.used, self.orders_day.used)
    }

    /// `rateLimits` of a WebSocket response (web-socket-api.md §Response format).
    pub fn ws_rate_limits(&mut self, with_orders: bool, now_ms: i64) -> Value {
        let mut v = Vec::new();
        if with_orders {
            let (o10, od) = self.orders_used(now_ms);
            v.push(json!({"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": self.cfg.orders_per_10s, "count": o10}));
            v.push(json!({"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": self.cfg.orders_per_day, "count": od}));
        }
        let w = self.weight_used(now_ms);
        v.push(json!({"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": self.cfg.weight_per_minute, "count": w}));
        Value::Array(v)
    }

    /// `rateLimits` of `exchangeInfo` (enums.md §Rate limiters).
    pub fn exchange_info_limits(&self) -> Value {
        json!([
            {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": self.cfg.weight_per_minute},
            {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": self.cfg.orders_per_10s},
            {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": self.cfg.orders_per_day},
            {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5, "limit": self.cfg.raw_requests_per_5m}
        ])
    }
}

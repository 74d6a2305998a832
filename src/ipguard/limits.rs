//! Staying under Binance's rate limits, so the exchange never has to tell
//! us: [`RateLimiter`] refuses a request locally when sending it would break
//! a limit read from exchangeInfo's `rateLimits` (REQUEST_WEIGHT, ORDERS and
//! RAW_REQUESTS, each counted on its own).
//!
//! Each limit is a fixed window aligned to the epoch in server time (the
//! used-weight header drops back at each minute). The count in a window is
//! the server's own figure when it sent one (`X-MBX-USED-WEIGHT-1M`,
//! `X-MBX-ORDER-COUNT-10S`, ...: IP-wide, so it includes the snapshot
//! thread's weight), plus what we sent since; without a header it is our own
//! count. The WebSocket API reports the same counts in its answers'
//! `rateLimits` array ([`RateLimiter::observe_count`]). Back-offs a 429 or
//! 418 asks for are the guard's business ([`crate::ipguard`]), not this
//! window arithmetic.
//!
//! Pure and clock-injected (server milliseconds), so the tests drive it
//! without sleeping.

use std::time::Duration;

use crate::ipguard::rate_limit::{RateLimit, RateLimitKind};

/// Sending would go past a limit: `why` names it and the counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverLimit {
    pub why: String,
    /// Until the limit's window turns.
    pub retry_in: Duration,
}

/// One limit's use in the current window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitUsage {
    pub limit: RateLimit,
    pub used: u64,
}

#[derive(Debug, Clone)]
struct Window {
    limit: RateLimit,
    /// Window length in ms (> 0).
    len_ms: i64,
    /// Which window `used` counts: server epoch ms / `len_ms`.
    index: i64,
    used: u64,
}

impl Window {
    fn roll(&mut self, server_ms: i64) {
        let index = server_ms.div_euclid(self.len_ms);
        if index != self.index {
            self.index = index;
            self.used = 0;
        }
    }

    /// What a request costs against this limit.
    fn cost(&self, weight: u32, orders: u32) -> u64 {
        match self.limit.kind {
            RateLimitKind::RequestWeight => weight as u64,
            RateLimitKind::Orders => orders as u64,
            RateLimitKind::RawRequests => 1,
            RateLimitKind::Other(_) => 0,
        }
    }
}

/// Local rate-limit accounting.
#[derive(Debug, Clone)]
pub struct RateLimiter {
    windows: Vec<Window>,
}

impl RateLimiter {
    /// The limits Binance's docs show for spot (REQUEST_WEIGHT 6000 per
    /// minute, ORDERS 50 per 10 s and 160000 per day; FACTS.md §4.8), used
    /// until exchangeInfo gives the real ones.
    pub fn spot_defaults() -> Self {
        let l = |kind, unit, interval_num, limit| RateLimit { kind, unit, interval_num, limit };
        Self::new(&[
            l(RateLimitKind::RequestWeight, 'M', 1, 6000),
            l(RateLimitKind::Orders, 'S', 10, 50),
            l(RateLimitKind::Orders, 'D', 1, 160_000),
        ])
    }

    pub fn new(limits: &[RateLimit]) -> Self {
        let mut r = Self { windows: Vec::new() };
        r.set_limits(limits);
        r
    }

    /// Installs the limits from exchangeInfo, keeping the counts of limits
    /// that stay the same (same kind and interval).
    pub fn set_limits(&mut self, limits: &[RateLimit]) {
        let old = std::mem::take(&mut self.windows);
        for l in limits {
            let len_ms = l.window().as_millis().min(i64::MAX as u128) as i64;
            let kept = old.iter().find(|w| w.limit.kind == l.kind && w.limit.window() == l.window());
            self.windows.push(Window {
                limit: l.clone(),
                len_ms: len_ms.max(1),
                index: kept.map_or(i64::MIN, |w| w.index),
                used: kept.map_or(0, |w| w.used),
            });
        }
    }

    /// Counts the request and lets it go, or refuses it without counting.
    pub fn admit(&mut self, server_ms: i64, weight: u32, orders: u32) -> Result<(), OverLimit> {
        for w in &mut self.windows {
            w.roll(server_ms);
            let cost = w.cost(weight, orders);
            if cost > 0 && w.used.saturating_add(cost) > w.limit.limit as u64 {
                let next = w.index.saturating_add(1).saturating_mul(w.len_ms);
                let retry_in = Duration::from_millis(next.saturating_sub(server_ms).max(1) as u64);
                return Err(OverLimit {
                    why: format!(
                        "{} used of {} this window, this request needs {cost} more",
                        w.used,
                        w.limit // Display: "REQUEST_WEIGHT 6000 per 1M"
                    ),
                    retry_in,
                });
            }
        }
        for w in &mut self.windows {
            w.used = w.used.saturating_add(w.cost(weight, orders));
        }
        Ok(())
    }

    /// The REQUEST_WEIGHT per-minute window's count and limit, if that
    /// limit is known: what tells a weight 429 from any other.
    pub fn minute_weight(&mut self, server_ms: i64) -> Option<(u64, u64)> {
        let w = self
            .windows
            .iter_mut()
            .find(|w| w.limit.kind == RateLimitKind::RequestWeight && w.limit.window() == Duration::from_secs(60))?;
        w.roll(server_ms);
        Some((w.used, w.limit.limit as u64))
    }

    /// Takes in one response header; names other than the usage headers
    /// are ignored. The server's figure replaces ours for that window.
    pub fn observe_header(&mut self, name: &str, value: &str, server_ms: i64) {
        let name = name.to_ascii_lowercase();
        let (kind, suffix) = if let Some(s) = name.strip_prefix("x-mbx-used-weight-") {
            (RateLimitKind::RequestWeight, s)
        } else if let Some(s) = name.strip_prefix("x-mbx-order-count-") {
            (RateLimitKind::Orders, s)
        } else {
            return;
        };
        let Ok(used) = value.trim().parse::<u64>() else {
            return;
        };
        self.set_used(&kind, suffix, used, server_ms);
    }

    /// The server's count for one limit, as the WebSocket API's
    /// `rateLimits` entries give it (`rateLimitType`, `interval` letter,
    /// `intervalNum`, `count`; web-socket-api.md §Rate limits).
    pub fn observe_count(&mut self, kind: &RateLimitKind, unit: char, interval_num: u32, count: u64, server_ms: i64) {
        let suffix = format!("{interval_num}{}", unit.to_ascii_lowercase());
        self.set_used(kind, &suffix, count, server_ms);
    }

    fn set_used(&mut self, kind: &RateLimitKind, suffix: &str, used: u64, server_ms: i64) {
        for w in &mut self.windows {
            if w.limit.kind == *kind && w.limit.header_suffix() == suffix {
                w.roll(server_ms);
                w.used = used;
            }
        }
    }

    /// Each limit and its count in the current window.
    pub fn usage(&self, server_ms: i64) -> Vec<LimitUsage> {
        self.windows
            .iter()
            .map(|w| {
                let current = server_ms.div_euclid(w.len_ms) == w.index;
                LimitUsage { limit: w.limit.clone(), used: if current { w.used } else { 0 } }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter() -> RateLimiter {
        RateLimiter::new(&[
            RateLimit { kind: RateLimitKind::RequestWeight, unit: 'M', interval_num: 1, limit: 100 },
            RateLimit { kind: RateLimitKind::Orders, unit: 'S', interval_num: 10, limit: 2 },
        ])
    }

    #[test]
    fn refuses_past_a_limit_until_the_window_turns() {
        let mut r = limiter();
        let ms = 1_700_000_080_000; // 40 s into a minute, 0 s into a 10 s window
        r.admit(ms, 60, 0).unwrap();
        let Err(OverLimit { why, retry_in }) = r.admit(ms + 1000, 41, 0) else { panic!() };
        assert!(why.contains("60 used of REQUEST_WEIGHT 100 per 1M") && why.contains("41 more"), "{why}");
        assert_eq!(retry_in, Duration::from_secs(19));
        r.admit(ms + 1000, 40, 1).unwrap();
        r.admit(ms + 1000, 0, 1).unwrap();
        assert!(r.admit(ms + 2000, 0, 1).is_err(), "third order in 10 s");
        r.admit(ms + 10_000, 0, 1).unwrap();
        assert!(r.admit(ms + 19_000, 1, 0).is_err());
        r.admit(ms + 20_000, 100, 0).unwrap();
    }

    #[test]
    fn the_servers_count_replaces_ours() {
        let mut r = limiter();
        let ms = 1_700_000_040_000;
        r.admit(ms, 1, 0).unwrap();
        r.observe_header("X-MBX-USED-WEIGHT-1M", "95", ms);
        r.observe_header("x-mbx-order-count-10s", "2", ms);
        r.observe_header("x-mbx-used-weight-1m", "garbage", ms);
        assert_eq!(r.usage(ms).iter().map(|u| u.used).collect::<Vec<_>>(), vec![95, 2]);
        assert!(r.admit(ms, 6, 0).is_err());
        assert!(r.admit(ms, 0, 1).is_err());
        r.admit(ms, 5, 0).unwrap();
        // The WebSocket API's `rateLimits` entry for the same window.
        r.observe_count(&RateLimitKind::RequestWeight, 'M', 1, 40, ms);
        assert_eq!(r.usage(ms)[0].used, 40);
        let later = ms + 120_000;
        r.admit(later, 1, 0).unwrap();
        r.set_limits(&[RateLimit { kind: RateLimitKind::RequestWeight, unit: 'M', interval_num: 1, limit: 6000 }]);
        assert_eq!(r.usage(later)[0].used, 1, "kept across set_limits");
    }

    #[test]
    fn raw_requests_count_one_each() {
        let mut r =
            RateLimiter::new(&[RateLimit { kind: RateLimitKind::RawRequests, unit: 'M', interval_num: 5, limit: 2 }]);
        let ms = 1_700_000_000_000;
        r.admit(ms, 50, 0).unwrap();
        r.admit(ms, 0, 0).unwrap();
        let e = r.admit(ms, 1, 0).unwrap_err();
        assert!(e.why.contains("RAW_REQUESTS 2 per 5M"), "{e:?}");
    }
}

//! One guard per process (and, through a shared file, per host) for
//! Binance's IP-wide rate limits and bans: [`IpGuard`].
//!
//! Why it exists: Binance counts request weight and bans per IP, not per
//! connection or per client (FACTS.md §4.8). A 418 ban is lengthened by
//! every request made during it, so when the order client is banned the
//! snapshot thread must not ask for depth and the user-data thread must not
//! reconnect either; and one process's 429 must stop another mmbot process
//! on the same host. Every REST request and every WebSocket connect in the
//! process asks [`IpGuard::admit`] / [`IpGuard::admit_connect`] first, and
//! reports what the exchange said ([`IpGuard::observe_header`],
//! [`IpGuard::on_rate_limited`], [`IpGuard::on_banned`]).
//!
//! The limits are tracked separately (REQUEST_WEIGHT, ORDERS, RAW_REQUESTS):
//! an order-count back-off (-1015) blocks new orders only, so cancels still
//! go out and quotes never rest unmanaged.
//!
//! NOTE: skeleton API; the host-wide file and per-limit back-off are being
//! filled in (see the issue).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::exec::binance::filters::RateLimit;
use crate::exec::binance::limits::{LimitUsage, RateLimiter, Refusal as LimiterRefusal};

/// What a request costs: its REQUEST_WEIGHT and whether it counts against
/// the ORDERS limits (a new order, or cancelReplace's new half).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request {
    /// For messages: "POST /api/v3/order", "depth snapshot", ...
    pub label: &'static str,
    pub weight: u32,
    /// New orders this request places (0 for cancels, queries, market data).
    pub orders: u32,
}

/// Why a request or a connect was not let through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The IP is banned (418) for `retry_in` more.
    Banned { retry_in: Duration },
    /// A request-weight 429 (-1003) asked everyone on this IP to wait.
    WeightBackOff { retry_in: Duration },
    /// An order-count 429 (-1015): new orders wait, cancels may go.
    OrdersBackOff { retry_in: Duration },
    /// Sending would break a limit; `why` names it.
    Limit { why: String, retry_in: Duration },
}

impl Refusal {
    /// How long until asking again makes sense.
    pub fn retry_in(&self) -> Duration {
        match self {
            Self::Banned { retry_in }
            | Self::WeightBackOff { retry_in }
            | Self::OrdersBackOff { retry_in }
            | Self::Limit { retry_in, .. } => *retry_in,
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Banned { retry_in } => {
                write!(f, "the IP is banned for {:.1} s more (HTTP 418)", retry_in.as_secs_f64())
            }
            Self::WeightBackOff { retry_in } => {
                write!(f, "request weight back-off for {:.1} s more (HTTP 429)", retry_in.as_secs_f64())
            }
            Self::OrdersBackOff { retry_in } => {
                write!(f, "new orders back off for {:.1} s more (HTTP 429, -1015)", retry_in.as_secs_f64())
            }
            Self::Limit { why, retry_in } => write!(f, "{why} (retry in {:.1} s)", retry_in.as_secs_f64()),
        }
    }
}

#[derive(Debug)]
struct Inner {
    limiter: RateLimiter,
    offset_ms: i64,
    orders_until: Option<Instant>,
}

/// The process's guard; clones share it.
#[derive(Debug, Clone)]
pub struct IpGuard {
    inner: Arc<Mutex<Inner>>,
}

impl Default for IpGuard {
    fn default() -> Self {
        Self::new()
    }
}

fn wall_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

impl IpGuard {
    /// A guard for this process only, with Binance's documented spot limits
    /// until [`IpGuard::set_limits`] installs exchangeInfo's.
    pub fn new() -> Self {
        Self {
            inner: Arc::new(Mutex::new(Inner {
                limiter: RateLimiter::spot_defaults(),
                offset_ms: 0,
                orders_until: None,
            })),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic elsewhere must not stop the guard from guarding.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts the request and lets it go, or refuses it without counting.
    pub fn admit(&self, req: Request) -> Result<(), Refusal> {
        let now = Instant::now();
        let mut g = self.lock();
        if req.orders > 0 {
            if let Some(t) = g.orders_until.filter(|t| now < *t) {
                return Err(Refusal::OrdersBackOff { retry_in: t - now });
            }
        }
        let server_ms = wall_ms() + g.offset_ms;
        g.limiter.admit(server_ms, now, req.weight, req.orders).map_err(|r| match r {
            LimiterRefusal::Limit { why, retry_in } => Refusal::Limit { why, retry_in },
            LimiterRefusal::BackingOff { retry_in } => Refusal::WeightBackOff { retry_in },
            LimiterRefusal::Banned { retry_in } => Refusal::Banned { retry_in },
        })
    }

    /// Before opening any WebSocket connection (market streams, WebSocket
    /// API): refused while the IP is banned or backing off.
    pub fn admit_connect(&self, label: &'static str) -> Result<(), Refusal> {
        self.admit(Request { label, weight: 0, orders: 0 })
    }

    /// Takes in a response header (`X-MBX-USED-WEIGHT-1M`, ...).
    pub fn observe_header(&self, name: &str, value: &str) {
        let mut g = self.lock();
        let server_ms = wall_ms() + g.offset_ms;
        g.limiter.observe_header(name, value, server_ms);
    }

    /// A 429: `orders` true for -1015 (too many new orders), false for
    /// request weight (-1003).
    pub fn on_rate_limited(&self, orders: bool, retry_after: Duration) {
        let now = Instant::now();
        let mut g = self.lock();
        if orders {
            let until = now + retry_after;
            if g.orders_until.is_none_or(|t| t < until) {
                g.orders_until = Some(until);
            }
        } else {
            g.limiter.back_off(now, retry_after, false);
        }
    }

    /// A 418: every request and connect waits out the ban.
    pub fn on_banned(&self, retry_after: Duration) {
        self.lock().limiter.back_off(Instant::now(), retry_after, true);
    }

    /// Installs exchangeInfo's `rateLimits`.
    pub fn set_limits(&self, limits: &[RateLimit]) {
        self.lock().limiter.set_limits(limits);
    }

    /// Server clock minus ours, ms (the windows are aligned in server time).
    pub fn set_clock_offset_ms(&self, offset_ms: i64) {
        self.lock().offset_ms = offset_ms;
    }

    /// Each limit and its use in the current window.
    pub fn usage(&self) -> Vec<LimitUsage> {
        let g = self.lock();
        g.limiter.usage(wall_ms() + g.offset_ms)
    }
}

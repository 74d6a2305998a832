//! What Binance rate-limits and over which window: [`RateLimit`] and
//! [`RateLimitKind`], as exchangeInfo's `rateLimits` and the WebSocket API's
//! `rateLimits` arrays name them (rest-api.md §LIMITS, enums.md §Rate
//! limiters).
//!
//! They live with the guard because the guard is what enforces them; the
//! exchangeInfo parser (`exec::binance::filters`) re-exports them.

use std::fmt;
use std::time::Duration;

/// What a rate limit counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RateLimitKind {
    /// IP request weight (`X-MBX-USED-WEIGHT-*`).
    RequestWeight,
    /// New orders per account (`X-MBX-ORDER-COUNT-*`).
    Orders,
    /// Raw requests per IP, whatever their weight.
    RawRequests,
    Other(String),
}

impl RateLimitKind {
    /// From `rateLimitType` ("REQUEST_WEIGHT", "ORDERS", "RAW_REQUESTS").
    pub fn parse(s: &str) -> Self {
        match s {
            "REQUEST_WEIGHT" => Self::RequestWeight,
            "ORDERS" => Self::Orders,
            "RAW_REQUESTS" => Self::RawRequests,
            other => Self::Other(other.to_string()),
        }
    }

    /// The wire name.
    pub fn name(&self) -> &str {
        match self {
            Self::RequestWeight => "REQUEST_WEIGHT",
            Self::Orders => "ORDERS",
            Self::RawRequests => "RAW_REQUESTS",
            Self::Other(s) => s,
        }
    }
}

/// One entry of `rateLimits`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimit {
    pub kind: RateLimitKind,
    /// Interval unit letter as the headers spell it: 'S', 'M', 'H' or 'D'.
    pub unit: char,
    pub interval_num: u32,
    pub limit: u32,
}

impl RateLimit {
    /// The header letter of an `interval` ("SECOND" → 'S', "MINUTE" → 'M',
    /// "HOUR" → 'H', "DAY" → 'D'); `None` for one this build cannot time.
    pub fn unit_of(interval: &str) -> Option<char> {
        Some(match interval {
            "SECOND" => 'S',
            "MINUTE" => 'M',
            "HOUR" => 'H',
            "DAY" => 'D',
            _ => return None,
        })
    }

    /// The window length.
    pub fn window(&self) -> Duration {
        let unit_s: u64 = match self.unit {
            'S' => 1,
            'M' => 60,
            'H' => 3600,
            _ => 86_400,
        };
        Duration::from_secs(unit_s * self.interval_num.max(1) as u64)
    }

    /// The header suffix naming this interval, lower-case ("1m", "10s", "1d").
    pub fn header_suffix(&self) -> String {
        format!("{}{}", self.interval_num, self.unit.to_ascii_lowercase())
    }
}

impl fmt::Display for RateLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} per {}{}", self.kind.name(), self.limit, self.interval_num, self.unit)
    }
}

//! Moved: local rate-limit accounting is part of the process-wide guard now
//! ([`crate::ipguard::limits`]), since Binance counts weight and bans per IP,
//! not per client (FACTS.md §4.8). Kept as a re-export so older paths work.

pub use crate::ipguard::limits::{LimitUsage, OverLimit, RateLimiter};

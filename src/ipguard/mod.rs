//! One guard per process (and, through a shared file, per host) for
//! Binance's IP-wide rate limits and bans: [`IpGuard`].
//!
//! Why it exists: Binance counts request weight and bans per IP, not per
//! connection or per client (FACTS.md §4.8; rest-api.md §LIMITS). A 418 ban
//! is lengthened by every request made during it, so when the order client
//! is banned the snapshot thread must not ask for depth and the user-data
//! thread must not reconnect either; and one process's 429 must stop another
//! mmbot process on the same host ([`host`]). Every REST request and every
//! WebSocket connect in the process asks [`IpGuard::admit`] /
//! [`IpGuard::admit_connect`] first, and reports what the exchange said
//! ([`IpGuard::observe_header`], [`IpGuard::observe_count`],
//! [`IpGuard::on_rate_limited`], [`IpGuard::on_banned`]).
//!
//! What blocks what:
//!
//! | exchange said | blocks | for |
//! |---|---|---|
//! | 418 (IP banned) | every request and every WebSocket connect | `Retry-After` |
//! | 429 -1003 (request weight) | every request, WebSocket API connects | `Retry-After` |
//! | 429 -1015 (too many new orders) | requests that place orders only: cancels, queries, market data still go | `Retry-After` |
//! | REST 429 with the minute's weight under its limit (RAW_REQUESTS) | REST requests only: the WebSocket API has no such limit | `Retry-After` |
//! | local count at a limit | requests that would break it | until its window turns |
//!
//! The limits are counted separately (REQUEST_WEIGHT, ORDERS, RAW_REQUESTS;
//! [`limits`]). Each back-off only ever grows: a ban is never shortened by a
//! later, shorter back-off, here or through the file.
//!
//! Times: back-offs are kept in Unix milliseconds of this host's clock, so
//! processes can share them; the rate-limit windows are aligned in server
//! time (our clock plus [`IpGuard::set_clock_offset_ms`]).
//!
//! Wiring (one guard per process): `Config::ip_guard()` builds it from
//! `[net] ip_guard_file` (`FeedArgs::config()` already puts it in
//! `config.feed.ip_guard`); clones go to the feed (`FeedConfig::ip_guard`),
//! the REST client (`RestClient::with_guard`) and the WebSocket API client.
//! The WebSocket API client asks [`IpGuard::admit_ws_api_connect`] before
//! connecting and [`IpGuard::admit`] before each request (its weight; one
//! order for `order.place`/`order.cancelReplace`), feeds each answer's
//! `rateLimits` to [`IpGuard::observe_ws_rate_limits`], and reports a 429
//! with [`IpGuard::on_rate_limited_until`] (`orders` true for -1015) and a
//! 418 with [`IpGuard::on_banned_until`] (its `retryAfter` is a timestamp;
//! web-socket-api.md §IP limits).

pub mod host;
pub mod limits;
pub mod rate_limit;
pub mod settings;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use host::{Blocks, HostFileError, HostFileStats};
pub use limits::{LimitUsage, OverLimit, RateLimiter};
pub use rate_limit::{RateLimit, RateLimitKind};

use host::HostFile;

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
    /// A REST 429 that was not about request weight (the RAW_REQUESTS
    /// limit, REST only): REST waits, the WebSocket API may go.
    RestBackOff { retry_in: Duration },
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
            | Self::RestBackOff { retry_in }
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
            Self::RestBackOff { retry_in } => write!(
                f,
                "REST requests back off for {:.1} s more (HTTP 429 under the weight limit: RAW_REQUESTS)",
                retry_in.as_secs_f64()
            ),
            Self::Limit { why, retry_in } => write!(f, "{why} (retry in {:.1} s)", retry_in.as_secs_f64()),
        }
    }
}

/// What the guard has done, for status lines.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GuardStats {
    pub admitted: u64,
    pub refused_banned: u64,
    pub refused_weight: u64,
    pub refused_orders: u64,
    pub refused_rest: u64,
    pub refused_limit: u64,
    /// Back-offs learnt from the host file (another process's 418/429).
    pub learnt_from_host: u64,
    /// `None` without a host file.
    pub host: Option<HostFileStats>,
}

#[derive(Debug)]
struct Inner {
    limiter: RateLimiter,
    offset_ms: i64,
    blocks: Blocks,
    host: Option<HostFile>,
    /// A back-off the file did not take (its lock stayed busy): written on
    /// a later admit, at most once per [`REPUBLISH`].
    unpublished: Option<Instant>,
    stats: GuardStats,
}

/// How often a back-off the file missed is tried again.
const REPUBLISH: Duration = Duration::from_secs(1);

impl Inner {
    /// Takes in the host file's back-offs, if it changed (and writes ours,
    /// if an earlier write missed).
    fn refresh(&mut self) {
        if self.unpublished.is_some_and(|t| t.elapsed() >= REPUBLISH) {
            self.publish();
        }
        if let Some(h) = self.host.as_mut() {
            if let Some(theirs) = h.refresh(Instant::now()) {
                if self.blocks.merge(&theirs) {
                    self.stats.learnt_from_host += 1;
                }
            }
        }
    }

    /// Records a back-off here and, when it grew, in the host file.
    fn extend(&mut self, b: Blocks) {
        if self.blocks.merge(&b) {
            self.publish();
        }
    }

    fn publish(&mut self) {
        let mine = self.blocks;
        if let Some(h) = self.host.as_mut() {
            match h.publish(&mine) {
                Some(merged) => {
                    self.unpublished = None;
                    self.blocks.merge(&merged);
                }
                None => self.unpublished = Some(Instant::now()),
            }
        }
    }

    fn ban(&self, now_ms: i64) -> Option<Refusal> {
        left(self.blocks.ban_until_ms, now_ms).map(|retry_in| Refusal::Banned { retry_in })
    }
}

/// The time left until `until_ms`, if any.
fn left(until_ms: i64, now_ms: i64) -> Option<Duration> {
    (until_ms > now_ms).then(|| Duration::from_millis((until_ms - now_ms) as u64))
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

/// A `Duration` past now in Unix ms, saturating (a 3-day ban fits easily).
fn until(now_ms: i64, d: Duration) -> i64 {
    now_ms.saturating_add(d.as_millis().min(i64::MAX as u128) as i64)
}

impl IpGuard {
    /// A guard for this process only, with Binance's documented spot limits
    /// until [`IpGuard::set_limits`] installs exchangeInfo's.
    pub fn new() -> Self {
        Self::build(None)
    }

    /// A guard that shares back-offs with every other process using the
    /// same file ([`host`]); the file is created if missing.
    pub fn with_host_file(path: &Path) -> Result<Self, HostFileError> {
        Ok(Self::build(Some(HostFile::open(path)?)))
    }

    /// The per-user default file ([`host::default_path`]).
    pub fn default_host_file() -> PathBuf {
        host::default_path()
    }

    fn build(host: Option<HostFile>) -> Self {
        let mut inner = Inner {
            limiter: RateLimiter::spot_defaults(),
            offset_ms: 0,
            blocks: Blocks::default(),
            host,
            unpublished: None,
            stats: GuardStats::default(),
        };
        inner.refresh();
        Self { inner: Arc::new(Mutex::new(inner)) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic elsewhere must not stop the guard from guarding.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts the REST request and lets it go, or refuses it without counting.
    pub fn admit(&self, req: Request) -> Result<(), Refusal> {
        self.admit_via(req, true)
    }

    /// [`IpGuard::admit`] for a WebSocket API request: the same, except a
    /// REST-only back-off (RAW_REQUESTS) does not stop it.
    pub fn admit_ws_api(&self, req: Request) -> Result<(), Refusal> {
        self.admit_via(req, false)
    }

    fn admit_via(&self, req: Request, rest: bool) -> Result<(), Refusal> {
        let mut g = self.lock();
        g.refresh();
        let now_ms = wall_ms();
        let refusal = if let Some(r) = g.ban(now_ms) {
            g.stats.refused_banned += 1;
            r
        } else if let Some(retry_in) = left(g.blocks.weight_until_ms, now_ms) {
            g.stats.refused_weight += 1;
            Refusal::WeightBackOff { retry_in }
        } else if let Some(retry_in) = left(g.blocks.rest_until_ms, now_ms).filter(|_| rest) {
            g.stats.refused_rest += 1;
            Refusal::RestBackOff { retry_in }
        } else if let Some(retry_in) = left(g.blocks.orders_until_ms, now_ms).filter(|_| req.orders > 0) {
            g.stats.refused_orders += 1;
            Refusal::OrdersBackOff { retry_in }
        } else {
            let server_ms = now_ms.saturating_add(g.offset_ms);
            match g.limiter.admit(server_ms, req.weight, req.orders) {
                Ok(()) => {
                    g.stats.admitted += 1;
                    return Ok(());
                }
                Err(OverLimit { why, retry_in }) => {
                    g.stats.refused_limit += 1;
                    Refusal::Limit { why: format!("{}: {why}", req.label), retry_in }
                }
            }
        };
        Err(refusal)
    }

    /// Before opening a market-stream WebSocket: refused only while the IP
    /// is banned (418). Stream connections cost no request weight, so a
    /// weight 429 does not stop them (web-socket-streams.md limits them by
    /// connection attempts instead; the connector counts those).
    pub fn admit_connect(&self, _label: &'static str) -> Result<(), Refusal> {
        let mut g = self.lock();
        g.refresh();
        match g.ban(wall_ms()) {
            Some(r) => {
                g.stats.refused_banned += 1;
                Err(r)
            }
            None => Ok(()),
        }
    }

    /// Before connecting to the WebSocket API, which costs 2 request weight
    /// (web-socket-api.md §IP limits): refused during a ban or a weight
    /// back-off, counted like a request.
    pub fn admit_ws_api_connect(&self) -> Result<(), Refusal> {
        self.admit_ws_api(Request { label: "WebSocket API connect", weight: 2, orders: 0 })
    }

    /// Takes in a response header (`X-MBX-USED-WEIGHT-1M`,
    /// `X-MBX-ORDER-COUNT-10S`, ...); other names are ignored.
    pub fn observe_header(&self, name: &str, value: &str) {
        let mut g = self.lock();
        let server_ms = wall_ms() + g.offset_ms;
        g.limiter.observe_header(name, value, server_ms);
    }

    /// The server's count for one limit, as a WebSocket API answer's
    /// `rateLimits` entry gives it: `kind` (`rateLimitType`), `unit` (the
    /// `interval` letter, [`RateLimit::unit_of`]), `interval_num`, `count`.
    pub fn observe_count(&self, kind: RateLimitKind, unit: char, interval_num: u32, count: u64) {
        let mut g = self.lock();
        let server_ms = wall_ms() + g.offset_ms;
        g.limiter.observe_count(&kind, unit, interval_num, count, server_ms);
    }

    /// A WebSocket API answer's whole `rateLimits` array; entries that do
    /// not read as `{rateLimitType, interval, intervalNum, count}` are
    /// skipped.
    pub fn observe_ws_rate_limits(&self, rate_limits: &serde_json::Value) {
        let Some(items) = rate_limits.as_array() else { return };
        for it in items {
            let kind = it.get("rateLimitType").and_then(|v| v.as_str()).map(RateLimitKind::parse);
            let unit = it.get("interval").and_then(|v| v.as_str()).and_then(RateLimit::unit_of);
            let num = it.get("intervalNum").and_then(|v| v.as_u64()).and_then(|n| u32::try_from(n).ok());
            let count = it.get("count").and_then(|v| v.as_u64());
            if let (Some(kind), Some(unit), Some(num), Some(count)) = (kind, unit, num, count) {
                self.observe_count(kind, unit, num, count);
            }
        }
    }

    /// A 429: `orders` true for -1015 (too many new orders: only requests
    /// that place orders wait), false for request weight (-1003: every
    /// request waits).
    pub fn on_rate_limited(&self, orders: bool, retry_after: Duration) {
        let mut g = self.lock();
        let t = until(wall_ms(), retry_after);
        g.extend(if orders {
            Blocks { orders_until_ms: t, ..Default::default() }
        } else {
            Blocks { weight_until_ms: t, ..Default::default() }
        });
    }

    /// A REST 429 that is not -1015. rest-api.md §LIMITS: "A 429 will be
    /// returned when either rate limit is violated" (REQUEST_WEIGHT or
    /// RAW_REQUESTS), and the answer does not say which. When the minute's
    /// weight, as the `X-MBX-USED-WEIGHT-1M` header of this very answer
    /// (already observed) reports it, is under the limit, it was
    /// RAW_REQUESTS, a limit only REST has (CHANGELOG 2023-08-25: the
    /// WebSocket API's RAW_REQUESTS limit was replaced by CONNECTIONS): only
    /// REST waits. Otherwise, or when the header was missing, it is taken as
    /// request weight and everything waits. Returns true for REST only.
    pub fn on_rest_rate_limited(&self, weight_header_seen: bool, retry_after: Duration) -> bool {
        let mut g = self.lock();
        let server_ms = wall_ms() + g.offset_ms;
        let raw = weight_header_seen && g.limiter.minute_weight(server_ms).is_some_and(|(used, limit)| used < limit);
        let t = until(wall_ms(), retry_after);
        g.extend(if raw {
            Blocks { rest_until_ms: t, ..Default::default() }
        } else {
            Blocks { weight_until_ms: t, ..Default::default() }
        });
        raw
    }

    /// The same, from the WebSocket API's `retryAfter` (a server timestamp, ms).
    pub fn on_rate_limited_until(&self, orders: bool, server_until_ms: i64) {
        let offset = self.lock().offset_ms;
        let d = Duration::from_millis(server_until_ms.saturating_sub(wall_ms() + offset).max(0) as u64);
        self.on_rate_limited(orders, d);
    }

    /// A 418: every request and connect waits out the ban.
    pub fn on_banned(&self, retry_after: Duration) {
        let mut g = self.lock();
        let t = until(wall_ms(), retry_after);
        g.extend(Blocks { ban_until_ms: t, ..Default::default() });
    }

    /// The same, from the WebSocket API's `retryAfter` (a server timestamp, ms).
    pub fn on_banned_until(&self, server_until_ms: i64) {
        let offset = self.lock().offset_ms;
        let d = Duration::from_millis(server_until_ms.saturating_sub(wall_ms() + offset).max(0) as u64);
        self.on_banned(d);
    }

    /// The ban or back-off in force for a REST market-data request, if
    /// any, without counting anything.
    pub fn blocked(&self) -> Option<Refusal> {
        let mut g = self.lock();
        g.refresh();
        let now = wall_ms();
        g.ban(now)
            .or_else(|| left(g.blocks.weight_until_ms, now).map(|retry_in| Refusal::WeightBackOff { retry_in }))
            .or_else(|| left(g.blocks.rest_until_ms, now).map(|retry_in| Refusal::RestBackOff { retry_in }))
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

    /// Counts of admits, refusals and host-file activity.
    pub fn stats(&self) -> GuardStats {
        let g = self.lock();
        GuardStats { host: g.host.as_ref().map(HostFile::stats), ..g.stats }
    }

    /// The shared file, if any.
    pub fn host_file(&self) -> Option<PathBuf> {
        self.lock().host.as_ref().map(|h| h.path().to_path_buf())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORDER: Request = Request { label: "POST /api/v3/order", weight: 1, orders: 1 };
    const CANCEL: Request = Request { label: "DELETE /api/v3/order", weight: 1, orders: 0 };
    const DEPTH: Request = Request { label: "depth snapshot", weight: 50, orders: 0 };

    #[test]
    fn an_orders_back_off_stops_new_orders_only() {
        let g = IpGuard::new();
        g.on_rate_limited(true, Duration::from_secs(30));
        assert!(
            matches!(g.admit(ORDER), Err(Refusal::OrdersBackOff { retry_in }) if retry_in > Duration::from_secs(29))
        );
        g.admit(CANCEL).unwrap();
        g.admit(DEPTH).unwrap();
        g.admit_connect("market streams").unwrap();
        g.admit_ws_api_connect().unwrap();
    }

    #[test]
    fn a_weight_back_off_stops_every_request_but_not_stream_connects() {
        let g = IpGuard::new();
        g.on_rate_limited(false, Duration::from_secs(30));
        for r in [ORDER, CANCEL, DEPTH] {
            assert!(matches!(g.admit(r), Err(Refusal::WeightBackOff { .. })), "{r:?}");
        }
        assert!(g.admit_ws_api_connect().is_err());
        g.admit_connect("market streams").unwrap();
        assert_eq!(g.stats().refused_weight, 4);
    }

    #[test]
    fn a_rest_429_under_the_weight_limit_stops_rest_only() {
        // rest-api.md §LIMITS: a 429 for either limit; the answer's
        // X-MBX-USED-WEIGHT-1M under the limit means RAW_REQUESTS, which the
        // WebSocket API does not have (CHANGELOG 2023-08-25).
        let g = IpGuard::new();
        g.observe_header("X-MBX-USED-WEIGHT-1M", "120");
        assert!(g.on_rest_rate_limited(true, Duration::from_secs(30)));
        assert!(matches!(g.admit(DEPTH), Err(Refusal::RestBackOff { retry_in }) if retry_in > Duration::from_secs(29)));
        assert!(matches!(g.blocked(), Some(Refusal::RestBackOff { .. })));
        g.admit_ws_api(DEPTH).unwrap();
        g.admit_ws_api(ORDER).unwrap();
        g.admit_ws_api_connect().unwrap();
        g.admit_connect("market streams").unwrap();
        assert_eq!(g.stats().refused_rest, 1);
    }

    #[test]
    fn a_rest_429_at_the_weight_limit_or_without_the_header_stops_everything() {
        for (header, used) in [(true, "6000"), (false, "10")] {
            let g = IpGuard::new();
            g.observe_header("X-MBX-USED-WEIGHT-1M", used);
            assert!(!g.on_rest_rate_limited(header, Duration::from_secs(30)));
            assert!(matches!(g.admit_ws_api(CANCEL), Err(Refusal::WeightBackOff { .. })), "{used}");
            assert!(g.admit_ws_api_connect().is_err());
        }
    }

    #[test]
    fn a_ban_blocks_connects_and_is_never_shortened() {
        let g = IpGuard::new();
        g.on_banned(Duration::from_secs(120));
        g.on_banned(Duration::from_secs(5));
        g.on_rate_limited(false, Duration::from_secs(1));
        g.on_rate_limited(true, Duration::from_secs(1));
        let Err(Refusal::Banned { retry_in }) = g.admit(CANCEL) else { panic!() };
        assert!(retry_in > Duration::from_secs(110), "{retry_in:?}");
        assert!(matches!(g.admit_connect("market streams"), Err(Refusal::Banned { .. })));
        assert!(matches!(g.blocked(), Some(Refusal::Banned { .. })));
        // A longer ban does extend it.
        g.on_banned(Duration::from_secs(600));
        assert!(g.admit(DEPTH).unwrap_err().retry_in() > Duration::from_secs(590));
    }

    #[test]
    fn back_offs_end_and_limits_are_counted_per_kind() {
        let g = IpGuard::new();
        g.on_banned(Duration::from_millis(30));
        g.on_rate_limited(true, Duration::from_millis(30));
        assert!(g.admit(DEPTH).is_err());
        // Bounded: the back-off is 30 ms; give it up to 2 s on a busy machine.
        let t0 = Instant::now();
        while g.admit(ORDER).is_err() && t0.elapsed() < Duration::from_secs(2) {
            std::thread::sleep(Duration::from_millis(10));
        }
        g.admit(ORDER).unwrap();
        g.set_limits(&[
            RateLimit { kind: RateLimitKind::RequestWeight, unit: 'H', interval_num: 1, limit: 100 },
            RateLimit { kind: RateLimitKind::Orders, unit: 'H', interval_num: 1, limit: 1 },
        ]);
        g.admit(ORDER).unwrap();
        let Err(Refusal::Limit { why, .. }) = g.admit(ORDER) else { panic!() };
        assert!(why.contains("ORDERS 1 per 1H") && why.contains("POST /api/v3/order"), "{why}");
        g.admit(CANCEL).unwrap();
        g.observe_ws_rate_limits(&serde_json::json!([
            {"rateLimitType": "REQUEST_WEIGHT", "interval": "HOUR", "intervalNum": 1, "limit": 100, "count": 99},
            {"rateLimitType": "ORDERS", "interval": "FORTNIGHT", "intervalNum": 1, "count": 0},
            "junk"
        ]));
        assert_eq!(g.usage()[0].used, 99);
        assert!(g.admit(Request { label: "x", weight: 2, orders: 0 }).is_err());
    }
}

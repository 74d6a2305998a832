//! The connector thread: opens market-data connections so the hot thread
//! never blocks on DNS, TCP, TLS or a handshake.
//!
//! The hot thread asks for a connection (saying why the last one ended and
//! how long it lived); the connector waits out the backoff, connects, and
//! hands the non-blocking socket back through a ring. Old sockets come back
//! the other way to be dropped here, so closing one costs the hot thread
//! nothing either.
//!
//! Backoff: exponential with "decorrelated jitter" between `backoff_min`
//! and `backoff_max` (each wait drawn uniformly between the minimum and
//! three times the previous wait, capped), so clients that failed together
//! do not retry together. A connection that synced a book (or lived
//! [`HEALTHY_AFTER`]) was healthy: the backoff starts over and the first
//! retry after it goes at once, planned or not, so a feed that flaps every
//! few seconds reconnects at once each time instead of backing off to
//! `backoff_max` (a connection that never synced counts as a failure).
//! Planned renewals (24-hour limit, `max_connection_age_s`,
//! `serverShutdown`) are asked for while the old connection still serves:
//! the hot thread switches over when the new one has caught up
//! ([`crate::feed::switch`]).
//! Never more than `max_attempts` attempts in any 5 minutes (Binance: 300
//! connection attempts per 5 minutes per IP), and a `Retry-After` from the
//! server is honoured.
//!
//! Before each attempt the connector asks the process's [`IpGuard`]
//! ([`IpGuard::admit_connect`]): during a 418 ban (ours, the order
//! client's, or another mmbot process's on this host) it does not connect,
//! sleeping in steps of at most [`GUARD_RECHECK`]; each wait is counted in
//! [`ConnectorStats::guard_waits`] and logged. A handshake answered 418 is
//! told to the guard, so the rest of the process stops too.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::feed::endpoint::Url;
use crate::feed::synthetic::Rng;
use crate::feed::ws::{connect, ConnectError, Ws};
use crate::ipguard::IpGuard;
use crate::ring::{ring, Consumer, Producer};

/// A connection that lived this long was healthy: backoff starts over.
pub const HEALTHY_AFTER: Duration = Duration::from_secs(30);

/// Longest sleep between two looks at the guard while it refuses.
pub const GUARD_RECHECK: Duration = Duration::from_millis(250);

/// The window of Binance's connection-attempt limit.
const ATTEMPT_WINDOW: Duration = Duration::from_secs(300);

/// Why the hot thread wants a (new) connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// The first connection.
    Start,
    /// The server closed the connection.
    Closed,
    /// A read or write failed.
    Error,
    /// No bytes for `stale_after`.
    Silence,
    /// Our ping was not answered in time.
    NoPong,
    /// The server announced `serverShutdown`.
    ServerShutdown,
    /// The connection neared Binance's 24-hour limit (`max_connection_age_s`).
    Renew,
    /// A text frame that is not valid UTF-8 (RFC 6455 §8.1: the connection
    /// must fail).
    InvalidUtf8,
}

impl Reason {
    pub fn name(self) -> &'static str {
        match self {
            Reason::Start => "start",
            Reason::Closed => "closed by server",
            Reason::Error => "read/write error",
            Reason::Silence => "read silence",
            Reason::NoPong => "ping not answered",
            Reason::ServerShutdown => "serverShutdown",
            Reason::Renew => "24-hour renewal",
            Reason::InvalidUtf8 => "invalid UTF-8 text frame",
        }
    }

    /// A short name for JSON keys (`report.json` `feed.disconnects`).
    pub fn key(self) -> &'static str {
        match self {
            Reason::Start => "start",
            Reason::Closed => "closed",
            Reason::Error => "error",
            Reason::Silence => "silence",
            Reason::NoPong => "no_pong",
            Reason::ServerShutdown => "server_shutdown",
            Reason::Renew => "renewal",
            Reason::InvalidUtf8 => "invalid_utf8",
        }
    }

    /// Renewals the feed makes before breaking the old connection.
    pub fn planned(self) -> bool {
        matches!(self, Reason::ServerShutdown | Reason::Renew)
    }
}

/// A request from the hot thread.
#[derive(Debug, Clone, Copy)]
pub struct Request {
    pub reason: Reason,
    /// How long the connection that ended lived (zero for `Start`).
    pub lived: Duration,
}

impl Request {
    /// The first connection of a run.
    pub fn start() -> Self {
        Self { reason: Reason::Start, lived: Duration::ZERO }
    }

    /// Another attempt after a failed one (no connection ended).
    pub fn retry() -> Self {
        Self { reason: Reason::Error, lived: Duration::ZERO }
    }
}

/// Connector settings.
#[derive(Debug, Clone)]
pub struct ConnectorConfig {
    pub url: Url,
    pub connect_timeout: Duration,
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    /// Attempts allowed in any 5 minutes.
    pub max_attempts: usize,
    /// Asked before every attempt (the process's, for spot).
    pub guard: IpGuard,
}

/// What the connector tells the hot thread, besides handing it sockets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConnectorStats {
    pub attempts: u64,
    pub failures: u64,
    /// Times an attempt waited for the 5-minute attempt limit.
    pub attempt_limit_waits: u64,
    /// Times an attempt waited because the IP guard refused (a 418 ban).
    pub guard_waits: u64,
}

/// The hot thread's end of the connector.
pub struct Connector {
    requests: Producer<(Request, bool)>,
    sockets: Consumer<Ws>,
    retired: Producer<Ws>,
    stop: Arc<AtomicBool>,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

/// Counters the hot thread may read without a lock; the last error text is
/// for status lines on other threads.
#[derive(Default)]
struct Shared {
    attempts: AtomicU64,
    failures: AtomicU64,
    attempt_limit_waits: AtomicU64,
    guard_waits: AtomicU64,
    last_error: std::sync::Mutex<Option<String>>,
}

impl Connector {
    /// Starts the connector thread.
    pub fn start(cfg: ConnectorConfig, tls: Arc<rustls::ClientConfig>) -> Self {
        let (requests, mut req_rx) = ring::<(Request, bool)>(16);
        let (sock_tx, sockets) = ring::<Ws>(4);
        let (retired, mut retired_rx) = ring::<Ws>(16);
        let stop = Arc::new(AtomicBool::new(false));
        let shared = Arc::new(Shared::default());
        let (stop2, sh) = (stop.clone(), shared.clone());
        let thread = std::thread::Builder::new()
            .name("mmbot-connect".into())
            .spawn(move || {
                let mut state = Backoff::new(&cfg);
                let mut pending: Option<(Request, bool)> = None;
                while !stop2.load(Ordering::Relaxed) {
                    // Dropping retired sockets here closes them off the hot thread.
                    while retired_rx.pop().is_some() {}
                    if let Some(r) = req_rx.pop() {
                        pending = Some(r);
                    }
                    let Some((req, synced)) = pending else {
                        std::thread::sleep(Duration::from_millis(1));
                        continue;
                    };
                    let wait = state.before_attempt(req, synced);
                    if !crate::wait::sleep_unless(wait, &stop2) {
                        break;
                    }
                    let limit_wait = state.attempt_limit_wait(Instant::now());
                    if !limit_wait.is_zero() {
                        sh.attempt_limit_waits.fetch_add(1, Ordering::Relaxed);
                        if !crate::wait::sleep_unless(limit_wait, &stop2) {
                            break;
                        }
                    }
                    if !wait_for_guard(&cfg.guard, &stop2, &sh) {
                        break;
                    }
                    state.record_attempt(Instant::now());
                    let result = connect(&cfg.url, cfg.connect_timeout, &tls);
                    let attempt = sh.attempts.fetch_add(1, Ordering::Relaxed) + 1;
                    match result {
                        Ok(ws) => {
                            *sh.last_error.lock().unwrap_or_else(|p| p.into_inner()) = None;
                            pending = None;
                            if !sock_tx.push(ws) {
                                // The hot thread asked for one at a time; a full
                                // ring means it stopped. Nothing to hand over.
                                break;
                            }
                        }
                        Err(e) => {
                            sh.failures.fetch_add(1, Ordering::Relaxed);
                            tracing::warn!(target: "mmbot::feed", "connection attempt {attempt} failed: {e}; retrying after the backoff");
                            *sh.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.to_string());
                            tell_guard(&cfg.guard, &e);
                            state.failed(e.retry_after());
                            // Try again after the backoff, as a failure.
                            pending = Some((Request::retry(), false));
                        }
                    }
                }
            })
            .expect("spawning the connector thread");
        Self { requests, sockets, retired, stop, shared, thread: Some(thread) }
    }

    /// Asks for a connection (never blocks; at most one is outstanding).
    pub fn request(&self, req: Request) {
        self.requests.push((req, false));
    }

    /// Asks for a connection after one that ended; `synced`: it synced a
    /// book (healthy: the backoff starts over, this attempt goes at once).
    pub fn request_after(&self, req: Request, synced: bool) {
        self.requests.push((req, synced));
    }

    /// A new connection, if one is ready.
    pub fn take(&mut self) -> Option<Ws> {
        self.sockets.pop()
    }

    /// Hands an old socket over to be closed off the hot thread.
    pub fn retire(&self, ws: Ws) {
        // A full ring drops it here instead: rare, and still correct.
        let _ = self.retired.push(ws);
    }

    /// Lock-free: the hot thread may read these.
    pub fn stats(&self) -> ConnectorStats {
        ConnectorStats {
            attempts: self.shared.attempts.load(Ordering::Relaxed),
            failures: self.shared.failures.load(Ordering::Relaxed),
            attempt_limit_waits: self.shared.attempt_limit_waits.load(Ordering::Relaxed),
            guard_waits: self.shared.guard_waits.load(Ordering::Relaxed),
        }
    }

    /// The last connection error, if the last attempt failed (takes a lock:
    /// not for the hot thread).
    pub fn last_error(&self) -> Option<String> {
        self.shared.last_error.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl Drop for Connector {
    fn drop(&mut self) {
        // Not joined: an attempt in progress may take up to its timeout, and
        // ending a run must not wait for it. The thread sees `stop` and ends.
        self.stop.store(true, Ordering::Relaxed);
        drop(self.thread.take());
    }
}

/// Waits while the guard refuses connects; false when stopped meanwhile.
fn wait_for_guard(guard: &IpGuard, stop: &AtomicBool, sh: &Shared) -> bool {
    let mut waited = false;
    while let Err(r) = guard.admit_connect("market-stream connect") {
        if !waited {
            waited = true;
            sh.guard_waits.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(target: "mmbot::feed", "not connecting: {r}; connecting now would lengthen the ban");
            *sh.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(format!("waiting: {r}"));
        }
        if !crate::wait::sleep_unless(r.retry_in().clamp(Duration::from_millis(1), GUARD_RECHECK), stop) {
            return false;
        }
    }
    true
}

/// A handshake answered 418 bans the whole IP: the guard stops the rest of
/// the process. (A 429 there is about connection attempts, which the
/// backoff and attempt limit handle; it is not request weight.)
fn tell_guard(guard: &IpGuard, e: &ConnectError) {
    if let ConnectError::Refused { status: 418, retry_after, .. } = e {
        guard.on_banned(Duration::from_secs(retry_after.unwrap_or(120)));
    }
}

/// Backoff and attempt-limit bookkeeping (pure: tested without sockets).
pub struct Backoff {
    min: Duration,
    max: Duration,
    max_attempts: usize,
    /// Consecutive failures (failed attempts or short-lived connections).
    failures: u32,
    /// The previous wait (decorrelated jitter grows from it).
    prev: Duration,
    retry_after: Option<Duration>,
    attempts: VecDeque<Instant>,
    rng: Rng,
}

impl Backoff {
    pub fn new(cfg: &ConnectorConfig) -> Self {
        let seed =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64);
        Self {
            min: cfg.backoff_min,
            max: cfg.backoff_max.max(cfg.backoff_min),
            max_attempts: cfg.max_attempts.max(1),
            failures: 0,
            prev: cfg.backoff_min,
            retry_after: None,
            attempts: VecDeque::with_capacity(cfg.max_attempts),
            rng: Rng(seed | 1),
        }
    }

    /// The wait before attempting for `req`.
    /// `synced`: the connection that ended synced a book.
    pub fn before_attempt(&mut self, req: Request, synced: bool) -> Duration {
        if req.reason == Reason::Start && self.attempts.is_empty() {
            return Duration::ZERO;
        }
        if req.reason != Reason::Error || !req.lived.is_zero() || synced {
            // A connection ended (not a failed attempt).
            if synced || req.lived >= HEALTHY_AFTER {
                // Healthy: start over, and the first retry goes at once.
                self.failures = 0;
                self.prev = self.min;
                return self.retry_after.take().unwrap_or(Duration::ZERO);
            } else {
                self.failures = self.failures.saturating_add(1);
            }
        }
        let step = self.step();
        step.max(self.retry_after.take().unwrap_or(Duration::ZERO))
    }

    /// A failed attempt (with the server's `Retry-After`, if any).
    pub fn failed(&mut self, retry_after_s: Option<u64>) {
        self.failures = self.failures.saturating_add(1);
        // Honoured in full: retrying early extends a ban.
        self.retry_after = retry_after_s.map(Duration::from_secs);
    }

    /// The next wait: uniform between `min` and three times the previous
    /// wait, capped at `max` (AWS's "decorrelated jitter").
    pub fn step(&mut self) -> Duration {
        let hi = self.prev.saturating_mul(3).min(self.max).max(self.min);
        let frac = self.rng.below(1_000_001) as f64 / 1e6;
        let wait = (self.min + (hi - self.min).mul_f64(frac)).min(self.max);
        self.prev = wait;
        wait
    }

    /// How long to wait so that this attempt stays within the limit.
    pub fn attempt_limit_wait(&mut self, now: Instant) -> Duration {
        while self.attempts.front().is_some_and(|&t| now.duration_since(t) >= ATTEMPT_WINDOW) {
            self.attempts.pop_front();
        }
        if self.attempts.len() < self.max_attempts {
            return Duration::ZERO;
        }
        let oldest = *self.attempts.front().expect("non-empty at the limit");
        ATTEMPT_WINDOW.saturating_sub(now.duration_since(oldest))
    }

    pub fn record_attempt(&mut self, now: Instant) {
        if self.attempts.len() >= self.max_attempts {
            self.attempts.pop_front();
        }
        self.attempts.push_back(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> ConnectorConfig {
        ConnectorConfig {
            url: Url::parse("ws://127.0.0.1:1/").unwrap(),
            connect_timeout: Duration::from_secs(1),
            backoff_min: Duration::from_secs(1),
            backoff_max: Duration::from_secs(30),
            max_attempts: 300,
            guard: IpGuard::new(),
        }
    }

    #[test]
    fn backoff_grows_with_jitter_between_one_and_thirty_seconds() {
        let (min, max) = (Duration::from_secs(1), Duration::from_secs(30));
        let mut first = Vec::new();
        let mut mean_by_step = [0.0f64; 8];
        for _ in 0..400 {
            let mut b = Backoff::new(&cfg());
            for (i, mean) in mean_by_step.iter_mut().enumerate() {
                let prev = b.prev;
                let s = b.step();
                assert!(s >= min && s <= max, "{s:?}");
                assert!(s <= (prev * 3).min(max), "{s:?} after {prev:?}");
                if i == 0 {
                    first.push(s);
                }
                *mean += s.as_secs_f64() / 400.0;
            }
        }
        // Even the first retry is spread out, not all at exactly `min`.
        let distinct = first.iter().filter(|&&s| s > Duration::from_millis(1500)).count();
        assert!(distinct > 100, "{distinct} of 400 first retries above 1.5 s");
        // It grows on average, then saturates near the cap.
        assert!(mean_by_step[0] < 2.5 && mean_by_step[3] > mean_by_step[0] * 2.0, "{mean_by_step:?}");
        assert!(mean_by_step[7] > 10.0, "{mean_by_step:?}");
    }

    #[test]
    fn planned_reconnects_after_a_healthy_connection_go_at_once() {
        let mut b = Backoff::new(&cfg());
        assert_eq!(b.before_attempt(Request::start(), false), Duration::ZERO);
        b.record_attempt(Instant::now());
        let renew = Request { reason: Reason::Renew, lived: Duration::from_secs(86_000) };
        assert_eq!(b.before_attempt(renew, true), Duration::ZERO);
        // A close after a short life that never synced backs off.
        let short = Request { reason: Reason::Closed, lived: Duration::from_secs(1) };
        let first = b.before_attempt(short, false);
        assert!(first >= Duration::from_secs(1) && first <= Duration::from_secs(3), "{first:?}");
        b.failed(None);
        let again = b.before_attempt(Request::retry(), false);
        assert!(again >= Duration::from_secs(1) && again <= first * 3, "{again:?}");
        // A 429 with Retry-After is honoured.
        b.failed(Some(120));
        assert!(b.before_attempt(Request::retry(), false) >= Duration::from_secs(120));
    }

    #[test]
    fn a_connection_that_synced_resets_the_backoff_and_the_first_retry_is_immediate() {
        let mut b = Backoff::new(&cfg());
        b.before_attempt(Request::start(), false);
        b.record_attempt(Instant::now());
        // Flapping: each connection syncs, then drops after 3 s.
        for _ in 0..20 {
            let drop = Request { reason: Reason::Closed, lived: Duration::from_secs(3) };
            assert_eq!(b.before_attempt(drop, true), Duration::ZERO);
            b.record_attempt(Instant::now());
        }
        // A failed attempt after it backs off from the minimum again.
        b.failed(None);
        let w = b.before_attempt(Request::retry(), false);
        assert!(w >= Duration::from_secs(1) && w <= Duration::from_secs(3), "{w:?}");
        // An unsynced short life is a failure: no reset.
        let short = Request { reason: Reason::Error, lived: Duration::from_millis(500) };
        assert!(b.before_attempt(short, false) >= Duration::from_secs(1));
    }

    #[test]
    fn the_attempt_limit_holds_over_five_minutes() {
        let mut c = cfg();
        c.max_attempts = 3;
        let mut b = Backoff::new(&c);
        let t0 = Instant::now();
        for i in 0..3 {
            assert_eq!(b.attempt_limit_wait(t0 + Duration::from_secs(i)), Duration::ZERO);
            b.record_attempt(t0 + Duration::from_secs(i));
        }
        assert_eq!(b.attempt_limit_wait(t0 + Duration::from_secs(10)), Duration::from_secs(290));
        assert_eq!(b.attempt_limit_wait(t0 + Duration::from_secs(300)), Duration::ZERO);
    }
}

//! The snapshot thread: REST depth snapshots (`ureq`, blocking) fetched off
//! the hot thread while it buffers diffs, handed over through a ring.
//!
//! Two workers fetch, so a request that hangs does not hold up the next:
//! the hot thread asks a second time after `snapshot_hedge_ms` (~1 s)
//! without an answer, instead of waiting out the 10 s timeout, and takes
//! whichever answer comes first. The second request is sent only when the
//! weight budget has room for it now ([`SnapshotRequest::hedge`]); one
//! budget is shared by both workers.
//!
//! Bodies travel in reused buffers: the hot thread gives each back once it
//! has applied it, so neither thread allocates per snapshot once warm.
//!
//! Request weight (FACTS.md 1.7, 4.8): each snapshot costs weight by its
//! `limit`. The thread keeps its own spend under `weight_per_minute` over a
//! sliding minute, also respects the IP-wide `X-MBX-USED-WEIGHT-1M` the
//! server reports (other programs on the same IP count too), and on HTTP 429
//! or 418 waits the `Retry-After` the server names before asking again.
//!
//! It also asks the process's [`IpGuard`] before every request (Binance
//! bans per IP: asking for depth while the order client is banned would
//! lengthen the ban, FACTS.md §4.8) and tells it the usage headers, 429s
//! and 418s it sees. While the guard refuses, the thread sleeps in steps of
//! at most [`GUARD_RECHECK`] (so a stop, a new connection or a lifted ban
//! is seen promptly), counts the wait once per request in
//! [`SnapshotCounters::guard_waits`] and logs why. One refusal is REST's
//! alone: a 429 for RAW_REQUESTS (the guard tells it from a weight 429 by
//! the minute's used weight). Then, with [`SnapshotConfig::ws_api`] set,
//! the snapshot is asked from the WebSocket API instead
//! ([`crate::feed::ws_api_depth`]).

use std::collections::VecDeque;
use std::io::Read;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::feed::endpoint::FeedMarket;
use crate::feed::ws_api_depth::{WsApiDepth, WsDepthError};
use crate::hot::msg::Symbol;
use crate::ipguard::{IpGuard, Refusal, Request};
use crate::ring::{ring, Consumer, Producer};

/// Longest sleep between two looks at the guard while it refuses.
pub const GUARD_RECHECK: Duration = Duration::from_millis(250);

/// A snapshot wanted for `symbol`; `generation` ties it to a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotRequest {
    pub symbol: Symbol,
    pub generation: u32,
}

/// Why a fetch failed (the text went to the log on the snapshot thread).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchFailure {
    /// Connection, timeout or body error.
    Transport,
    /// An HTTP status other than 200.
    Status(u16),
}

/// A fetched snapshot body, or why there is none.
pub struct SnapshotReply {
    pub request: SnapshotRequest,
    pub body: Result<Vec<u8>, FetchFailure>,
    /// The answer to a second request ([`SnapshotFetcher::hedge`]).
    pub hedge: bool,
    /// Wall-clock ns when the body arrived (the recording timestamp).
    pub recv_ns: i64,
}

/// Snapshot thread settings.
#[derive(Debug, Clone)]
pub struct SnapshotConfig {
    pub market: FeedMarket,
    /// Depth endpoint URL (`?symbol=..&limit=..` is appended).
    pub url: String,
    pub limit: u32,
    pub timeout: Duration,
    /// Our own weight budget per rolling minute.
    pub weight_per_minute: u32,
    /// The IP's limit per minute (spot 6000, USD-M 2400); we stop at 80% of it.
    pub ip_weight_limit: u32,
    /// Asked before every request (the process's, for spot).
    pub guard: IpGuard,
    /// The WebSocket API, asked for depth while REST alone is refused
    /// (`None`: wait for REST).
    pub ws_api: Option<WsApiDepth>,
}

/// Counters, readable from any thread without a lock.
#[derive(Debug, Default)]
pub struct SnapshotCounters {
    pub requests: AtomicU64,
    pub ok: AtomicU64,
    pub failed: AtomicU64,
    /// Waits for the weight budget or a `Retry-After`.
    pub weight_waits: AtomicU64,
    pub weight_spent: AtomicU64,
    /// Requests from an ended connection, not fetched.
    pub skipped_stale: AtomicU64,
    /// Requests that waited because the IP guard refused (a ban or a
    /// back-off, maybe another process's): counted once per request.
    pub guard_waits: AtomicU64,
    /// True while a worker waits for the guard (the hot thread then does
    /// not count its request as lost).
    pub waiting_for_guard: AtomicBool,
    /// Second requests not sent: the weight budget had no room for them.
    pub hedges_skipped: AtomicU64,
    /// Snapshots the WebSocket API answered / failed to answer while REST
    /// was refused (RAW_REQUESTS).
    pub ws_api_ok: AtomicU64,
    pub ws_api_failed: AtomicU64,
}

/// Fetching threads: one may hang on a slow answer while the other asks again.
pub const WORKERS: usize = 2;

/// One fetching thread's rings.
struct Worker {
    requests: Producer<(SnapshotRequest, bool)>,
    replies: Consumer<SnapshotReply>,
    buffers: Producer<Vec<u8>>,
    /// Requests pushed and not yet finished.
    pending: Arc<AtomicU32>,
    thread: Option<JoinHandle<()>>,
}

/// The hot thread's end.
pub struct SnapshotFetcher {
    /// The hot thread's current connection: older requests are not fetched.
    generation: Arc<AtomicU32>,
    workers: Vec<Worker>,
    /// Next worker to look at for replies and to give a buffer back to.
    next_reply: usize,
    next_buffer: usize,
    stop: Arc<AtomicBool>,
    counters: Arc<SnapshotCounters>,
}

/// Wall-clock now, ns since the Unix epoch (the recording's time base).
pub fn wall_ns() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as i64)
}

impl SnapshotFetcher {
    pub fn start(cfg: SnapshotConfig) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let counters = Arc::new(SnapshotCounters::default());
        let generation = Arc::new(AtomicU32::new(0));
        let budget = Arc::new(Mutex::new(WeightBudget::new(cfg.weight_per_minute, cfg.ip_weight_limit)));
        let workers = (0..WORKERS)
            .map(|n| {
                let (requests, req_rx) = ring::<(SnapshotRequest, bool)>(64);
                let (reply_tx, replies) = ring::<SnapshotReply>(64);
                let (buffers, buf_rx) = ring::<Vec<u8>>(64);
                let pending = Arc::new(AtomicU32::new(0));
                let ctx = WorkerCtx {
                    cfg: cfg.clone(),
                    stop: stop.clone(),
                    counters: counters.clone(),
                    current: generation.clone(),
                    budget: budget.clone(),
                    pending: pending.clone(),
                };
                let thread = std::thread::Builder::new()
                    .name(format!("mmbot-snapshot-{n}"))
                    .spawn(move || ctx.run(req_rx, reply_tx, buf_rx))
                    .expect("spawning a snapshot thread");
                Worker { requests, replies, buffers, pending, thread: Some(thread) }
            })
            .collect();
        Self { generation, workers, next_reply: 0, next_buffer: 0, stop, counters }
    }

    /// The hot thread's connection changed: requests from older ones are dropped.
    pub fn set_generation(&self, generation: u32) {
        self.generation.store(generation, Ordering::Relaxed);
    }

    /// Asks for a snapshot (never blocks; false if no worker can take it:
    /// a hedge needs an idle worker, a first request any ring with room).
    pub fn request(&self, req: SnapshotRequest) -> bool {
        self.push(req, false)
    }

    /// A second request for a snapshot already asked for, on an idle
    /// worker: sent only if the weight budget has room now, else dropped
    /// (counted in [`SnapshotCounters::hedges_skipped`]). False when no
    /// worker is idle.
    pub fn hedge(&self, req: SnapshotRequest) -> bool {
        self.push(req, true)
    }

    fn push(&self, req: SnapshotRequest, hedge: bool) -> bool {
        let load = |w: &Worker| w.pending.load(Ordering::Relaxed);
        let Some(w) = self.workers.iter().min_by_key(|w| load(w)) else { return false };
        if hedge && load(w) > 0 {
            return false;
        }
        let pushed = w.requests.push((req, hedge));
        if pushed {
            w.pending.fetch_add(1, Ordering::Relaxed);
        }
        pushed
    }

    /// Whether a worker is free for a second request now.
    pub fn has_idle_worker(&self) -> bool {
        self.workers.iter().any(|w| w.pending.load(Ordering::Relaxed) == 0)
    }

    /// The next fetched snapshot, if any.
    pub fn take(&mut self) -> Option<SnapshotReply> {
        for _ in 0..self.workers.len() {
            let i = self.next_reply;
            self.next_reply = (i + 1) % self.workers.len();
            if let Some(r) = self.workers[i].replies.pop() {
                return Some(r);
            }
        }
        None
    }

    /// Gives a body's buffer back for reuse.
    pub fn recycle(&mut self, buf: Vec<u8>) {
        let i = self.next_buffer;
        self.next_buffer = (i + 1) % self.workers.len();
        let _ = self.workers[i].buffers.push(buf);
    }

    pub fn counters(&self) -> &SnapshotCounters {
        &self.counters
    }
}

/// Counts a request finished when dropped (every `continue` and `break`).
struct Done<'a>(&'a AtomicU32);

impl Drop for Done<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What one fetching thread shares with the others.
struct WorkerCtx {
    cfg: SnapshotConfig,
    stop: Arc<AtomicBool>,
    counters: Arc<SnapshotCounters>,
    current: Arc<AtomicU32>,
    budget: Arc<Mutex<WeightBudget>>,
    pending: Arc<AtomicU32>,
}

impl WorkerCtx {
    fn run(
        self,
        mut req_rx: Consumer<(SnapshotRequest, bool)>,
        reply_tx: Producer<SnapshotReply>,
        mut buf_rx: Consumer<Vec<u8>>,
    ) {
        let (cfg, c, stop2, current) = (&self.cfg, &*self.counters, &*self.stop, &*self.current);
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(cfg.timeout))
            .http_status_as_error(false)
            .user_agent("mmbot")
            .build()
            .into();
        let weight = cfg.market.snapshot_weight(cfg.limit);
        let mut spare: Vec<Vec<u8>> = Vec::new();
        let budget = || self.budget.lock().unwrap_or_else(|p| p.into_inner());
        while !stop2.load(Ordering::Relaxed) {
            while let Some(b) = buf_rx.pop() {
                spare.push(b);
            }
            let Some((req, hedge)) = req_rx.pop() else {
                std::thread::sleep(Duration::from_millis(1));
                continue;
            };
            // However this request ends, it is no longer pending after it.
            let _done = Done(&self.pending);
            // Asked on a connection that has since ended: its books
            // were reset, so spend no weight on it.
            if req.generation != current.load(Ordering::Relaxed) {
                c.skipped_stale.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let wait = budget().wait_for(weight, Instant::now());
            if hedge && !wait.is_zero() {
                // A second request only within the budget: the first is
                // still on its way.
                c.hedges_skipped.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            if !wait.is_zero() {
                c.weight_waits.fetch_add(1, Ordering::Relaxed);
                tracing::info!(
                    target: "mmbot::feed",
                    "snapshot for {} waits {:.1} s for request weight",
                    req.symbol,
                    wait.as_secs_f64()
                );
                if !crate::wait::sleep_unless(wait, stop2) {
                    break;
                }
            }
            let ws_api = cfg.ws_api.as_ref();
            match wait_for_guard(&cfg.guard, weight, req, current, stop2, c, ws_api.is_some()) {
                GuardWait::Admitted => {}
                GuardWait::RestOnly => {
                    if let Some(ws) = ws_api {
                        let mut buf = spare.pop().unwrap_or_default();
                        let id = c.ws_api_ok.load(Ordering::Relaxed) + c.ws_api_failed.load(Ordering::Relaxed);
                        let body = match ws.fetch(&cfg.guard, req.symbol.as_str(), cfg.limit, weight, id, &mut buf) {
                            Ok(()) => {
                                c.ws_api_ok.fetch_add(1, Ordering::Relaxed);
                                budget().spend(weight, Instant::now());
                                c.weight_spent.fetch_add(weight as u64, Ordering::Relaxed);
                                Ok(buf)
                            }
                            Err(WsDepthError::Failed(f)) => {
                                c.ws_api_failed.fetch_add(1, Ordering::Relaxed);
                                spare.push(buf);
                                Err(f)
                            }
                            // Refused since the look (a weight back-off or
                            // a ban): the hot thread asks again, and this
                            // thread then waits for the guard.
                            Err(WsDepthError::Refused(_)) => {
                                spare.push(buf);
                                Err(FetchFailure::Status(429))
                            }
                        };
                        if body.is_ok() {
                            c.ok.fetch_add(1, Ordering::Relaxed);
                        } else {
                            c.failed.fetch_add(1, Ordering::Relaxed);
                        }
                        let reply = SnapshotReply { request: req, body, hedge, recv_ns: wall_ns() };
                        if !reply_tx.push(reply) {
                            tracing::warn!(target: "mmbot::feed", "snapshot reply ring full; the hot thread will ask again");
                        }
                    }
                    continue;
                }
                GuardWait::Stale => continue,
                GuardWait::Stopped => break,
            }
            budget().spend(weight, Instant::now());
            c.requests.fetch_add(1, Ordering::Relaxed);
            c.weight_spent.fetch_add(weight as u64, Ordering::Relaxed);
            let url = format!("{}?symbol={}&limit={}", cfg.url, req.symbol, cfg.limit);
            let mut buf = spare.pop().unwrap_or_default();
            buf.clear();
            let body = fetch(&agent, &url, &mut buf, &self.budget, &cfg.guard);
            match body {
                Ok(()) => {
                    c.ok.fetch_add(1, Ordering::Relaxed);
                }
                Err(f) => {
                    c.failed.fetch_add(1, Ordering::Relaxed);
                    if let FetchFailure::Status(429 | 418) = f {
                        c.weight_waits.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            let reply = SnapshotReply { request: req, body: body.map(|()| buf), hedge, recv_ns: wall_ns() };
            if !reply_tx.push(reply) {
                tracing::warn!(target: "mmbot::feed", "snapshot reply ring full; the hot thread will ask again");
            }
        }
    }
}

impl Drop for SnapshotFetcher {
    fn drop(&mut self) {
        // Not joined: a request in flight may take up to its timeout, and
        // ending a run must not wait for it. The thread sees `stop` and ends.
        self.stop.store(true, Ordering::Relaxed);
        for w in &mut self.workers {
            drop(w.thread.take());
        }
    }
}

/// How waiting for the guard ended.
enum GuardWait {
    Admitted,
    /// Only REST is refused (RAW_REQUESTS) and the WebSocket API may be asked.
    RestOnly,
    /// The request's connection ended meanwhile: not fetched.
    Stale,
    Stopped,
}

/// Asks the guard until it admits the request (counted there), the
/// request goes stale, or the thread is stopped. Sleeps, never spins.
fn wait_for_guard(
    guard: &IpGuard,
    weight: u32,
    req: SnapshotRequest,
    current: &AtomicU32,
    stop: &AtomicBool,
    c: &SnapshotCounters,
    ws_api: bool,
) -> GuardWait {
    let mut waited = false;
    let result = loop {
        match guard.admit(Request { label: "GET depth snapshot", weight, orders: 0 }) {
            Ok(()) => break GuardWait::Admitted,
            Err(Refusal::RestBackOff { .. }) if ws_api => break GuardWait::RestOnly,
            Err(r) => {
                if !waited {
                    waited = true;
                    c.guard_waits.fetch_add(1, Ordering::Relaxed);
                    c.waiting_for_guard.store(true, Ordering::Relaxed);
                    tracing::info!(
                        target: "mmbot::feed",
                        "snapshot for {} waits: {r} (the IP guard; asking now would lengthen a ban)",
                        req.symbol
                    );
                }
                let step = r.retry_in().clamp(Duration::from_millis(1), GUARD_RECHECK);
                if !crate::wait::sleep_unless(step, stop) {
                    break GuardWait::Stopped;
                }
                if req.generation != current.load(Ordering::Relaxed) {
                    c.skipped_stale.fetch_add(1, Ordering::Relaxed);
                    break GuardWait::Stale;
                }
            }
        }
    };
    c.waiting_for_guard.store(false, Ordering::Relaxed);
    result
}

/// One GET into `buf`; logs what went wrong and tells the guard what the
/// server said about the IP's limits.
fn fetch(
    agent: &ureq::Agent,
    url: &str,
    buf: &mut Vec<u8>,
    budget: &Mutex<WeightBudget>,
    guard: &IpGuard,
) -> Result<(), FetchFailure> {
    let mut resp = match agent.get(url).call() {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(target: "mmbot::feed", "snapshot request {url} failed: {e}; asking again shortly");
            return Err(FetchFailure::Transport);
        }
    };
    let status = resp.status().as_u16();
    for (name, value) in resp.headers() {
        if let Ok(v) = value.to_str() {
            guard.observe_header(name.as_str(), v);
        }
    }
    let header =
        |name: &str| resp.headers().get(name).and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<u64>().ok());
    if let Some(used) = header("x-mbx-used-weight-1m") {
        let used = used.min(u32::MAX as u64) as u32;
        budget.lock().unwrap_or_else(|p| p.into_inner()).server_reports(used, Instant::now());
    }
    if status != 200 {
        let retry_after: Option<u64> = header("retry-after");
        if matches!(status, 429 | 418) {
            // Honoured in full: a 418 ban lasts from minutes to days, and
            // asking early extends it. The guard makes every other request
            // of the process (and the host) wait too.
            let d = Duration::from_secs(retry_after.unwrap_or(if status == 418 { 120 } else { 60 }));
            let rest_only = if status == 418 {
                guard.on_banned(d);
                false
            } else {
                // Request weight, or RAW_REQUESTS (REST only): the guard
                // tells them apart by the minute's used weight just seen.
                let seen = resp.headers().contains_key("x-mbx-used-weight-1m");
                guard.on_rest_rate_limited(seen, d)
            };
            // A RAW_REQUESTS back-off is the guard's alone: the weight
            // budget stays open for the WebSocket API's depth.
            if !rest_only {
                budget.lock().unwrap_or_else(|p| p.into_inner()).back_off(d, Instant::now());
            }
        }
        tracing::warn!(
            target: "mmbot::feed",
            "snapshot request {url} answered HTTP {status}{}",
            match status {
                429 => " (request weight exceeded; waiting as asked)",
                418 => " (IP banned for ignoring 429s; waiting as asked)",
                _ => "",
            }
        );
        return Err(FetchFailure::Status(status));
    }
    match resp.body_mut().as_reader().take(64 << 20).read_to_end(buf) {
        Ok(_) => Ok(()),
        Err(e) => {
            tracing::warn!(target: "mmbot::feed", "snapshot body from {url} unreadable: {e}");
            Err(FetchFailure::Transport)
        }
    }
}

/// Request-weight accounting over a rolling minute (pure; tested alone).
pub struct WeightBudget {
    per_minute: u32,
    ip_limit: u32,
    spent: VecDeque<(Instant, u32)>,
    /// The IP-wide weight the server last reported, and when.
    server_used: Option<(Instant, u32)>,
    not_before: Option<Instant>,
}

impl WeightBudget {
    pub fn new(per_minute: u32, ip_limit: u32) -> Self {
        Self { per_minute, ip_limit, spent: VecDeque::new(), server_used: None, not_before: None }
    }

    /// How long to wait before spending `weight` now.
    pub fn wait_for(&mut self, weight: u32, now: Instant) -> Duration {
        let minute = Duration::from_secs(60);
        while self.spent.front().is_some_and(|&(t, _)| now.duration_since(t) >= minute) {
            self.spent.pop_front();
        }
        let mut wait = self.not_before.map_or(Duration::ZERO, |t| t.saturating_duration_since(now));
        let ours: u32 = self.spent.iter().map(|&(_, w)| w).sum();
        if ours + weight > self.per_minute {
            // Wait until enough of our own spend has aged out.
            let mut freed = 0;
            for &(t, w) in &self.spent {
                freed += w;
                if ours - freed + weight <= self.per_minute {
                    wait = wait.max(minute.saturating_sub(now.duration_since(t)));
                    break;
                }
            }
        }
        if let Some((t, used)) = self.server_used {
            // The server counts per calendar minute; past 80% of the IP's
            // limit, wait for the next minute.
            let age = now.duration_since(t);
            if age < minute && used + weight > self.ip_limit * 4 / 5 {
                wait = wait.max(minute.saturating_sub(age));
            }
        }
        wait
    }

    pub fn spend(&mut self, weight: u32, now: Instant) {
        self.spent.push_back((now, weight));
    }

    pub fn server_reports(&mut self, used: u32, now: Instant) {
        self.server_used = Some((now, used));
    }

    pub fn back_off(&mut self, d: Duration, now: Instant) {
        self.not_before = Some(now + d);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_own_budget_is_a_rolling_minute() {
        let mut b = WeightBudget::new(100, 6000);
        let t0 = Instant::now();
        b.spend(50, t0);
        b.spend(50, t0 + Duration::from_secs(10));
        assert_eq!(b.wait_for(50, t0 + Duration::from_secs(20)), Duration::from_secs(40));
        assert_eq!(b.wait_for(50, t0 + Duration::from_secs(60)), Duration::ZERO);
    }

    #[test]
    fn the_servers_count_and_retry_after_are_respected() {
        let mut b = WeightBudget::new(10_000, 6000);
        let t0 = Instant::now();
        b.server_reports(4790, t0);
        assert_eq!(b.wait_for(5, t0), Duration::ZERO);
        assert_eq!(b.wait_for(50, t0 + Duration::from_secs(15)), Duration::from_secs(45));
        b.back_off(Duration::from_secs(120), t0);
        assert_eq!(b.wait_for(5, t0 + Duration::from_secs(100)), Duration::from_secs(20));
    }
}

//! The ai side thread: every `[ai] interval` it takes the newest
//! [`MarketSnapshot`] the hot thread handed over (latest wins), asks the LLM
//! (or the offline rules), and hands [`Advice`] back with
//! [`Producer::push_latest`]. The hot thread never waits on any of it.
//!
//! ```text
//!  hot --MarketSnapshot (latest wins)--> scheduler ("mmbot-ai") --Advice (latest wins)--> hot
//!                                          |  ^
//!                                     job  v  | reply
//!                                   caller ("mmbot-ai-call"): blocking HTTP, retries
//! ```
//!
//! Two threads, so the schedule never blocks on the network: the scheduler
//! keeps time, counts ticks that find the caller still busy
//! (`skipped_busy`; one call in flight at a time), parses replies, keeps the
//! cost meter and the advice log, and can stop at once; the caller does the
//! blocking call. On drop the scheduler is stopped and joined; a caller
//! stuck in a request is left to finish on its own (its timeout bounds it),
//! so shutting down never waits for a slow gateway.
//!
//! Advice is stamped in the hot thread's time base: the snapshot's
//! `time_ns` plus the wall time since that snapshot arrived. Live that is
//! wall-clock time; replaying a recording at recorded pace it follows the
//! recording, so expiry (`Advice::at`) works the same in both.
//!
//! Failures (timeout, 401, 429, 5xx, garbage) leave the last valid advice in
//! place until it expires; they are counted in [`AdvisorStats`], and each new
//! kind of failure is reported once on stderr.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::ai::cost::CostMeter;
use crate::ai::key::{self, LoadedKey};
use crate::ai::llm::{Completion, LlmClient};
use crate::ai::log::{AdviceLog, LogEntry};
use crate::ai::offline::{OfflineAdvisor, OfflineConfig};
use crate::ai::prompt::{user_prompt, SYSTEM_PROMPT};
use crate::ai::reply::{parse_reply, Bounds, ParsedReply, ReplyError};
use crate::ai::{AiConfig, AiError, Provider};
use crate::hot::advice::{Advice, AdviceSource};
use crate::hot::book::Book;
use crate::hot::features::Features;
use crate::hot::fixed::Qty;
use crate::hot::msg::{Level, Symbol};
use crate::ring::{Consumer, Producer};

/// Levels per side in a snapshot.
pub const SNAPSHOT_LEVELS: usize = 10;

/// What the prompt needs, as the hot thread saw it: `Copy`, fixed size, so
/// handing it over allocates nothing.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct MarketSnapshot {
    pub symbol: Symbol,
    pub features: Features,
    /// Best first; `bid_count` of them are valid.
    pub bids: [Level; SNAPSHOT_LEVELS],
    pub asks: [Level; SNAPSHOT_LEVELS],
    pub bid_count: u8,
    pub ask_count: u8,
    pub position: Qty,
    /// The position limit (0: not given).
    pub max_position: Qty,
    /// Hot-path time of the snapshot, ns (wall clock live, the recording's
    /// time in replays).
    pub time_ns: i64,
}

impl MarketSnapshot {
    /// The top of `book` with its features: cheap enough for the hot thread
    /// (20 levels copied, no allocation).
    pub fn from_book(
        symbol: Symbol,
        book: &Book,
        features: Features,
        position: Qty,
        max_position: Qty,
        time_ns: i64,
    ) -> Self {
        let mut s = Self { symbol, features, position, max_position, time_ns, ..Self::default() };
        for (slot, l) in s.bids.iter_mut().zip(book.bids()) {
            *slot = l;
            s.bid_count += 1;
        }
        for (slot, l) in s.asks.iter_mut().zip(book.asks()) {
            *slot = l;
            s.ask_count += 1;
        }
        s
    }

    pub fn bids(&self) -> &[Level] {
        &self.bids[..self.bid_count as usize]
    }

    pub fn asks(&self) -> &[Level] {
        &self.asks[..self.ask_count as usize]
    }
}

/// A realistic snapshot (synthetic BTCUSDT diffs through the real hot path):
/// what `mmbot ai check` and `compare` send, and what tests use.
pub fn sample_snapshot() -> MarketSnapshot {
    use crate::hot::engine::{HotConfig, HotPath};
    use crate::hot::strategy::NativeStrategy;
    let clock = crate::stats::clock::Clock::instant();
    let mut hot = HotPath::new(HotConfig::default(), NativeStrategy, clock);
    let mut last_ns = 0;
    for (ts, frame) in crate::feed::synthetic::spot_frames(300, 42) {
        hot.on_frame(&frame, ts, clock.now(), &mut |_| {});
        last_ns = ts;
    }
    let symbol = hot.traded_symbol().unwrap_or_default();
    let features = hot.last_features().unwrap_or_default();
    let book = hot.market().book(symbol).map(|b| b.book());
    let position = Qty(300_000);
    let max = Qty(1_000_000);
    match book {
        Some(b) => MarketSnapshot::from_book(symbol, b, features, position, max, last_ns),
        None => {
            MarketSnapshot { symbol, features, position, max_position: max, time_ns: last_ns, ..Default::default() }
        }
    }
}

/// The advisor's counters, for status lines and reports.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AdvisorStats {
    /// Where advice comes from: `Llm`, `Offline` or `None`.
    pub source: AdviceSource,
    /// "holysheep gpt-4.1", "offline" or "none": how the source is shown.
    pub label: String,
    /// Calls answered or failed (offline: advice computed).
    pub calls: u64,
    pub ok: u64,
    /// Failed calls, unparseable replies included.
    pub failed: u64,
    /// Replies with no usable advice (counted in `failed` too).
    pub unparseable: u64,
    /// Ticks that found the previous call still running.
    pub skipped_busy: u64,
    /// Ticks inside a wait the server asked for (429 `Retry-After`) or after
    /// a rejected key.
    pub skipped_backoff: u64,
    /// Ticks whose newest snapshot was older than the advice lifetime.
    pub skipped_stale: u64,
    pub tokens_in: u64,
    pub tokens_out: u64,
    pub cost_total_usd: f64,
    pub cost_today_usd: f64,
    pub cost_per_call_usd: Option<f64>,
    /// A 30-day month at one call per interval, at the average cost so far.
    pub projected_month_usd: Option<f64>,
    /// Calls whose model has no price in `[ai.prices]`.
    pub unpriced_calls: u64,
    pub last_error: Option<String>,
    pub last_latency: Option<Duration>,
    pub last_advice: Option<Advice>,
    /// Ticks that did not call because the projected spend would pass
    /// `[ai] daily_budget_usd` (UTC day).
    pub skipped_budget: u64,
    /// `[ai] daily_budget_usd`, for display.
    pub budget_usd: Option<f64>,
    /// Replies dropped because their snapshot was older than `[ai] max_age_s`
    /// on arrival.
    pub dropped_late: u64,
    /// Ticks that did not call because regime_change saw no change.
    pub skipped_no_change: u64,
    /// Set when a provider answered `insufficient_quota`: it is not called again.
    pub quota_exhausted: bool,
    /// Calls answered by a `[[ai.fallback]]` route.
    pub fallback_calls: u64,
    /// The route that answered last ("openai gpt-5-mini").
    pub route: String,
    /// Calls charged by estimate (no `usage`, timed out, cut off).
    pub estimated_calls: u64,
    /// The part of `cost_total_usd` that is estimated.
    pub cost_estimated_usd: f64,
    /// Replies repaired by a retry with the validation error.
    pub repaired: u64,
}

impl AdvisorStats {
    /// The counters as JSON, for run reports (`"ai"` section).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "source": crate::ai::log::source_name(self.source),
            "label": self.label,
            "calls": self.calls,
            "ok": self.ok,
            "failed": self.failed,
            "unparseable": self.unparseable,
            "skipped_busy": self.skipped_busy,
            "skipped_backoff": self.skipped_backoff,
            "skipped_stale": self.skipped_stale,
            "tokens_in": self.tokens_in,
            "tokens_out": self.tokens_out,
            "cost_total_usd": self.cost_total_usd,
            "cost_today_usd": self.cost_today_usd,
            "cost_per_call_usd": self.cost_per_call_usd,
            "projected_month_usd": self.projected_month_usd,
            "unpriced_calls": self.unpriced_calls,
            "last_error": self.last_error,
            "last_latency_ms": self.last_latency.map(|d| d.as_secs_f64() * 1e3),
            "last_advice": self.last_advice.as_ref().map(crate::ai::log::advice_json),
        })
    }
}

/// How the advisor runs beside a session.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdvisorOptions {
    /// How fast hot-path time runs against the wall clock: 1 live, N for a
    /// replay at `--speed N`. Intervals and ages are measured in hot-path
    /// (recording) time.
    pub speed: f64,
    /// Print messages (failures, recoveries) on stderr as they happen;
    /// `false` when a dashboard owns the screen: it drains them instead
    /// ([`AdvisorHandle::drain_messages`]).
    pub print: bool,
}

impl Default for AdvisorOptions {
    fn default() -> Self {
        Self { speed: 1.0, print: true }
    }
}

/// The running advisor: stops and joins its thread on drop.
pub struct AdvisorHandle {
    stop: Arc<AtomicBool>,
    stats: Arc<Mutex<AdvisorStats>>,
    messages: Arc<Mutex<Vec<String>>>,
    thread: Option<JoinHandle<()>>,
}

impl AdvisorHandle {
    /// A copy of the counters now.
    pub fn stats(&self) -> AdvisorStats {
        self.stats.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// The messages not yet shown (when not printing them), oldest first.
    pub fn drain_messages(&self) -> Vec<String> {
        self.messages.lock().map(|mut m| std::mem::take(&mut *m)).unwrap_or_default()
    }
}

impl Drop for AdvisorHandle {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The key an LLM provider will use: `Ok(None)` for offline/none, for `auto`
/// without a key (it runs offline), and for a keyless Ollama.
pub fn resolve_key(ai: &AiConfig) -> Result<Option<LoadedKey>, AiError> {
    match ai.provider {
        Provider::Offline | Provider::None => Ok(None),
        Provider::Auto | Provider::Ollama => key::find(&ai.key_var, &ai.env_file),
        p => key::require(p.name(), &ai.key_var, &ai.env_file).map(Some),
    }
}

/// A chat client for `ai`, with its key (required except for Ollama). `auto`
/// without a key is a [`AiError::MissingKey`] here: a caller that wants the
/// LLM needs the key.
pub fn llm_client(ai: &AiConfig) -> Result<(LlmClient, Option<LoadedKey>), AiError> {
    let Some(llm) = ai.provider.llm() else {
        return Err(AiError::NoLlm { provider: ai.provider.name(), what: "set [ai] provider to an LLM gateway" });
    };
    let key = match resolve_key(ai)? {
        Some(k) => Some(k),
        None if llm.key_optional() => None,
        None => {
            return Err(AiError::MissingKey {
                provider: llm.name(),
                var: ai.key_var.clone(),
                env_file: ai.env_file.display().to_string(),
            })
        }
    };
    Ok((LlmClient::new(ai, key.as_ref().map(|k| k.key.clone()))?, key))
}

/// One question and its answer (`mmbot ai check` / `compare`).
#[derive(Debug, Clone)]
pub struct Answer {
    pub completion: Completion,
    pub reply: Result<ParsedReply, ReplyError>,
    pub cost_usd: Option<f64>,
}

/// Asks `ai.model` about `snapshot` once.
pub fn ask_once(ai: &AiConfig, client: &mut LlmClient, snapshot: &MarketSnapshot) -> Result<Answer, AiError> {
    let never = AtomicBool::new(false);
    let asked = crate::ai::ask::ask(client, ai, snapshot, &never)?;
    let cost_usd = asked.completions.iter().map(|c| price(ai, c)).sum::<Option<f64>>();
    let completion = asked.last().clone();
    Ok(Answer { completion, reply: asked.reply, cost_usd })
}

fn bounds(ai: &AiConfig) -> Bounds {
    Bounds { min_multiplier: ai.min_multiplier, max_multiplier: ai.max_multiplier }
}

/// The call's cost: by the model asked, else as the server named it.
fn price(ai: &AiConfig, c: &Completion) -> Option<f64> {
    ai.prices.cost(&ai.model, c.tokens_in, c.tokens_out).or_else(|| ai.prices.cost(&c.model, c.tokens_in, c.tokens_out))
}

/// Wall-clock ns since the Unix epoch.
fn wall_ns() -> i64 {
    crate::feed::snapshot::wall_ns()
}

/// How advice is made.
enum Mode {
    Llm { jobs: mpsc::Sender<String>, replies: mpsc::Receiver<Result<Completion, AiError>>, provider: &'static str },
    Offline(OfflineAdvisor),
    None,
}

/// Starts the ai thread from `[ai]` and `[ai.offline]` (`None`: the
/// offline rules' defaults). `provider = "auto"` without a key runs the
/// offline rules (said once on stderr); an LLM provider without its key is
/// an error.
pub fn start_advisor(
    ai: &AiConfig,
    offline_rules: Option<OfflineConfig>,
    market: Consumer<MarketSnapshot>,
    advice: Producer<Advice>,
    options: AdvisorOptions,
) -> Result<AdvisorHandle, AiError> {
    let _ = options;
    let messages = Arc::new(Mutex::new(Vec::new()));
    let ai = ai.clone();
    let stop = Arc::new(AtomicBool::new(false));
    let stats = Arc::new(Mutex::new(AdvisorStats::default()));
    let key = resolve_key(&ai)?;
    let offline = || OfflineAdvisor::new(OfflineConfig { ttl_ns: ai.ttl_ns(), ..offline_rules.unwrap_or_default() });
    let mut caller = None;
    let (mode, source, label) = match (ai.provider, key) {
        (Provider::None, _) => (Mode::None, AdviceSource::None, "none".to_string()),
        (Provider::Offline, _) => (Mode::Offline(offline()), AdviceSource::Offline, "offline".to_string()),
        (Provider::Auto, None) => {
            eprintln!(
                "mmbot: ai: no {} in the environment or {}: advice comes from the offline rules (shown as \
                 \"offline\"); set the key, or [ai] provider = \"offline\" to silence this",
                ai.key_var,
                ai.env_file.display()
            );
            (Mode::Offline(offline()), AdviceSource::Offline, "offline".to_string())
        }
        (p, key) => {
            if let Some(w) = key.as_ref().and_then(|k| k.warning.as_ref()) {
                eprintln!("mmbot: ai: warning: {w}");
            }
            // Without a key here the provider is one that needs none (Ollama).
            let client = LlmClient::new(&ai, key.map(|k| k.key))?;
            let (job_tx, job_rx) = mpsc::channel::<String>();
            let (reply_tx, reply_rx) = mpsc::channel();
            let (stop2, model) = (stop.clone(), ai.model.clone());
            let mut client = client;
            caller = Some(
                std::thread::Builder::new()
                    .name("mmbot-ai-call".into())
                    .spawn(move || {
                        while let Ok(user) = job_rx.recv() {
                            let msgs =
                                [crate::ai::llm::Message::system(SYSTEM_PROMPT), crate::ai::llm::Message::user(user)];
                            let _ = &model;
                            let r = client.complete(&msgs, &stop2);
                            if reply_tx.send(r).is_err() {
                                break;
                            }
                        }
                    })
                    .expect("spawning the ai caller thread"),
            );
            let provider = p.llm().unwrap_or(p).name();
            (
                Mode::Llm { jobs: job_tx, replies: reply_rx, provider },
                AdviceSource::Llm,
                format!("{provider} {}", ai.model),
            )
        }
    };
    let log = match &ai.log {
        Some(p) if !matches!(mode, Mode::None) => Some(AdviceLog::open(p)?),
        _ => None,
    };
    if let Ok(mut s) = stats.lock() {
        s.source = source;
        s.label = label;
    }
    if matches!(mode, Mode::None) {
        // Neutral advice: nothing to run.
        return Ok(AdvisorHandle { stop, stats, messages, thread: None });
    }
    let mut sched = Scheduler {
        ai,
        mode,
        market,
        advice,
        log,
        stats: stats.clone(),
        stop: stop.clone(),
        meter: CostMeter::default(),
        latest: None,
        in_flight: None,
        not_before: None,
        shown_error: None,
    };
    let thread = std::thread::Builder::new()
        .name("mmbot-ai".into())
        .spawn(move || {
            sched.run();
            // Drop the job channel first so an idle caller ends; a caller
            // inside a request ends when it returns (bounded by its timeout).
            drop(sched);
            if let Some(c) = caller {
                if c.is_finished() {
                    let _ = c.join();
                }
            }
        })
        .expect("spawning the ai thread");
    Ok(AdvisorHandle { stop, stats, messages, thread: Some(thread) })
}

struct Scheduler {
    ai: AiConfig,
    mode: Mode,
    market: Consumer<MarketSnapshot>,
    advice: Producer<Advice>,
    log: Option<AdviceLog>,
    stats: Arc<Mutex<AdvisorStats>>,
    stop: Arc<AtomicBool>,
    meter: CostMeter,
    /// The newest snapshot and when it arrived here.
    latest: Option<(MarketSnapshot, Instant)>,
    /// The snapshot of the call in flight, and when it arrived here.
    in_flight: Option<(MarketSnapshot, Instant)>,
    /// No call before this (a `Retry-After`, a rejected key).
    not_before: Option<Instant>,
    /// The last failure reported on stderr (each new kind once).
    shown_error: Option<String>,
}

/// How often the scheduler looks at its rings: snapshot arrival times and
/// replies are known to within this, and stopping takes at most this.
const STEP: Duration = Duration::from_millis(10);

impl Scheduler {
    fn run(&mut self) {
        let mut next_tick: Option<Instant> = None;
        while !self.stop.load(Ordering::Relaxed) {
            let now = Instant::now();
            if let Some(s) = self.market.latest() {
                self.latest = Some((s, now));
                // The first snapshot starts the schedule at once.
                next_tick.get_or_insert(now);
            }
            self.poll_reply();
            if let Some(t) = next_tick.filter(|t| now >= *t) {
                self.tick(now);
                let mut n = t + self.ai.interval;
                if n <= now {
                    n = now + self.ai.interval;
                }
                next_tick = Some(n);
            }
            let wait = next_tick.map_or(STEP, |t| t.saturating_duration_since(Instant::now()).min(STEP));
            std::thread::sleep(wait.max(Duration::from_millis(1)));
        }
    }

    fn with_stats(&self, f: impl FnOnce(&mut AdvisorStats)) {
        if let Ok(mut s) = self.stats.lock() {
            f(&mut s);
        }
    }

    /// The snapshot's time plus the wall time since it arrived.
    fn stamp(snap: &MarketSnapshot, arrived: Instant) -> i64 {
        snap.time_ns.saturating_add(arrived.elapsed().as_nanos().min(i64::MAX as u128) as i64)
    }

    fn tick(&mut self, now: Instant) {
        if self.in_flight.is_some() {
            return self.with_stats(|s| s.skipped_busy += 1);
        }
        if self.not_before.is_some_and(|t| now < t) {
            return self.with_stats(|s| s.skipped_backoff += 1);
        }
        let Some((snap, arrived)) = self.latest else { return };
        if now.duration_since(arrived).as_nanos() as i64 > self.ai.ttl_ns() {
            // The hot thread stopped sending: advice on an old book is worthless.
            return self.with_stats(|s| s.skipped_stale += 1);
        }
        match &mut self.mode {
            Mode::Offline(o) => {
                let a = o.advise(&snap.features, Self::stamp(&snap, arrived));
                self.advice.push_latest(a);
                self.with_stats(|s| {
                    s.calls += 1;
                    s.ok += 1;
                    s.last_advice = Some(a);
                });
                self.write_log(&snap, None, Some(a), None, None);
            }
            Mode::Llm { jobs, .. } => {
                let user = user_prompt(&snap, self.ai.min_multiplier, self.ai.max_multiplier);
                if jobs.send(user).is_ok() {
                    self.in_flight = Some((snap, arrived));
                }
            }
            Mode::None => {}
        }
    }

    fn poll_reply(&mut self) {
        let Mode::Llm { replies, .. } = &self.mode else { return };
        let Some((snap, arrived)) = self.in_flight else { return };
        let result = match replies.try_recv() {
            Ok(r) => r,
            Err(mpsc::TryRecvError::Empty) => return,
            Err(mpsc::TryRecvError::Disconnected) => {
                self.in_flight = None;
                self.with_stats(|s| s.last_error = Some("the ai caller thread ended unexpectedly".into()));
                return;
            }
        };
        self.in_flight = None;
        let wall = wall_ns();
        match result {
            Ok(c) => {
                let cost = price(&self.ai, &c);
                self.meter.add(cost, wall);
                let parsed = parse_reply(&c.content, bounds(&self.ai));
                let advice = parsed.as_ref().ok().map(|p| p.advice(Self::stamp(&snap, arrived), self.ai.ttl_ns()));
                if let Some(a) = advice {
                    self.advice.push_latest(a);
                }
                let error =
                    parsed.as_ref().err().map(|e| format!("reply unusable ({e}); keeping the last valid advice"));
                let (meter, interval_s) = (self.meter.clone(), self.ai.interval.as_secs_f64());
                self.with_stats(|s| {
                    s.calls += 1;
                    s.tokens_in += c.tokens_in;
                    s.tokens_out += c.tokens_out;
                    s.cost_total_usd = meter.total_usd;
                    s.cost_today_usd = meter.today(wall);
                    s.cost_per_call_usd = meter.per_call();
                    s.projected_month_usd = meter.projected_month(interval_s);
                    s.unpriced_calls = meter.calls_unpriced;
                    s.last_latency = Some(c.latency);
                    match advice {
                        Some(a) => {
                            s.ok += 1;
                            s.last_advice = Some(a);
                        }
                        None => {
                            s.failed += 1;
                            s.unparseable += 1;
                            s.last_error = error.clone();
                        }
                    }
                });
                self.report(error.as_deref());
                self.write_log(&snap, Some(&c), advice, parsed.as_ref().ok(), error.as_deref());
            }
            Err(e) => {
                let now = Instant::now();
                match &e {
                    AiError::RateLimited { retry_after: Some(d), .. } => self.not_before = Some(now + *d),
                    // A rejected key will not fix itself; ask again now and then.
                    AiError::KeyRejected { .. } => {
                        self.not_before = Some(now + self.ai.interval.max(Duration::from_secs(60)))
                    }
                    _ => {}
                }
                let text = e.to_string();
                self.with_stats(|s| {
                    s.calls += 1;
                    s.failed += 1;
                    s.last_error = Some(text.clone());
                });
                self.report(Some(&text));
                self.write_log(&snap, None, None, None, Some(&text));
            }
        }
    }

    /// Reports each new kind of failure once, and the recovery after one.
    fn report(&mut self, error: Option<&str>) {
        match (error, &self.shown_error) {
            (Some(e), shown) => {
                // The kind: the text up to the first digit (attempt counts and
                // waits vary between otherwise equal failures).
                let kind: String = e.chars().take_while(|c| !c.is_ascii_digit()).collect();
                if shown.as_deref() != Some(kind.as_str()) {
                    eprintln!("mmbot: ai: {e}");
                    self.shown_error = Some(kind);
                }
            }
            (None, Some(_)) => {
                eprintln!("mmbot: ai: advice is flowing again");
                self.shown_error = None;
            }
            (None, None) => {}
        }
    }

    fn write_log(
        &mut self,
        snap: &MarketSnapshot,
        c: Option<&Completion>,
        advice: Option<Advice>,
        reply: Option<&ParsedReply>,
        error: Option<&str>,
    ) {
        let Some(log) = self.log.as_mut() else { return };
        let (provider, model) = match &self.mode {
            Mode::Llm { provider, .. } => (*provider, c.map_or(self.ai.model.as_str(), |c| c.model.as_str())),
            _ => ("offline", "offline"),
        };
        let entry = LogEntry {
            wall_ns: wall_ns(),
            provider,
            model,
            latency: c.map(|c| c.latency),
            attempts: c.map_or(0, |c| c.attempts),
            tokens_in: c.map_or(0, |c| c.tokens_in),
            tokens_out: c.map_or(0, |c| c.tokens_out),
            usage_reported: c.is_some_and(|c| c.usage_reported),
            cost_usd: c.and_then(|c| price(&self.ai, c)),
            raw: c.map(|c| c.content.as_str()),
            reply,
            advice,
            error,
            market: snap,
        };
        if let Err(e) = log.write(&entry) {
            // Logging is for later study; trading goes on without it.
            eprintln!("mmbot: ai: {e}; advice logging stops");
            self.log = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_copies_the_top_of_the_book() {
        let s = sample_snapshot();
        assert_eq!((s.bids().len(), s.asks().len()), (SNAPSHOT_LEVELS, SNAPSHOT_LEVELS));
        assert_eq!(s.bids()[0], s.features.best_bid);
        assert_eq!(s.asks()[0], s.features.best_ask);
        assert!(s.bids().windows(2).all(|w| w[0].price > w[1].price));
        assert!(s.asks().windows(2).all(|w| w[0].price < w[1].price));
        assert_eq!(s.symbol.as_str(), "BTCUSDT");
    }
}

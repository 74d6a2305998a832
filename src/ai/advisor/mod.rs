//! The ai side threads: every `[ai] interval` (or on a regime change) the
//! advisor takes the newest [`MarketSnapshot`] the hot thread handed over
//! (latest wins), asks the LLM routes in order (or the offline rules), and
//! hands [`Advice`] back with [`Producer::push_latest`]. The hot thread
//! never waits on any of it.
//!
//! ```text
//!  hot --MarketSnapshot (latest wins)--> scheduler ("mmbot-ai") --Advice (latest wins)--> hot
//!                                          |  ^
//!                                 snapshot v  | outcome (every route asked)
//!                                   caller ("mmbot-ai-call"): one client per route, blocking HTTP
//! ```
//!
//! Two threads, so the schedule never blocks on the network: the scheduler
//! ([`scheduler`]) keeps the hot path's time ([`schedule`]), decides when to
//! ask ([`regime`] for `call_on = "regime_change"`), counts ticks that find
//! the caller still busy (`skipped_busy`; one job in flight at a time),
//! dates and hands over advice, keeps the cost meter and the advice log,
//! and can stop at once; the caller ([`routes`]) asks the primary route and
//! its `[[ai.fallback]]`s in order, within the daily budget ([`budget`]).
//! On drop the scheduler is stopped and joined; a caller stuck in a request
//! is left to finish on its own (its timeout bounds it), so shutting down
//! never waits for a slow gateway.
//!
//! Advice is dated from the market snapshot it describes (its `time_ns`,
//! the hot thread's time base): its lifetime runs from there, and a reply
//! older than `[ai] max_age_s` on arrival is dropped and counted. Live that
//! time is the wall clock; replaying a recording it is the recording's
//! time (at `--speed N`, [`AdvisorOptions::speed`]), so intervals, ages and
//! expiry (`Advice::at`) work the same in both.
//!
//! Failures (timeout, 401, 429, 5xx, garbage) leave the last valid advice in
//! place until it expires; they are counted in [`AdvisorStats`], and each new
//! kind of failure of a route is said once ([`messages`]: on stderr, or
//! queued for the dashboard).

pub mod budget;
pub mod messages;
pub mod regime;
pub mod routes;
pub mod schedule;
pub mod scheduler;
pub mod tuning;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::ai::key::{self, LoadedKey};
use crate::ai::llm::{Completion, LlmClient};
use crate::ai::log::AdviceLog;
use crate::ai::offline::{OfflineAdvisor, OfflineConfig};
use crate::ai::reply::{ParsedReply, ReplyError};
use crate::ai::{AiConfig, AiError, Provider};
use crate::hot::advice::{Advice, AdviceSource};
use crate::hot::book::Book;
use crate::hot::features::Features;
use crate::hot::fixed::Qty;
use crate::hot::msg::{Level, Symbol};
use crate::ring::{Consumer, Producer};

use self::budget::DailyBudget;
use self::messages::Messenger;
use self::routes::{Dispatcher, Route};
use self::scheduler::{Mode, Primary, Scheduler};

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
    /// Requests answered or failed, every route asked counted (offline:
    /// advice computed).
    pub calls: u64,
    /// Advice handed to the hot thread.
    pub ok: u64,
    /// Failed calls, unparseable replies included (a fallback may still
    /// have advised in the same tick).
    pub failed: u64,
    /// Replies with no usable advice (counted in `failed` too).
    pub unparseable: u64,
    /// Ticks that found the previous call still running.
    pub skipped_busy: u64,
    /// Ticks when every route was inside a wait its server asked for (429
    /// `Retry-After`) or after a rejected key.
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
    /// Why: the model's `reason` and `risk_signals` for the last advice
    /// taken, or the readings the offline rules used.
    pub last_reason: Option<String>,
    pub last_risk_signals: Vec<String>,
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
    /// Ticks that did not advise because an operator paused advice.
    pub skipped_paused: u64,
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
            "last_reason": self.last_reason,
            "last_risk_signals": self.last_risk_signals,
            "skipped_budget": self.skipped_budget,
            "budget_usd": self.budget_usd,
            "dropped_late": self.dropped_late,
            "skipped_no_change": self.skipped_no_change,
            "skipped_paused": self.skipped_paused,
            "quota_exhausted": self.quota_exhausted,
            "fallback_calls": self.fallback_calls,
            "route": self.route,
            "estimated_calls": self.estimated_calls,
            "cost_estimated_usd": self.cost_estimated_usd,
            "repaired": self.repaired,
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
    messages: Messenger,
    thread: Option<JoinHandle<()>>,
    tuning: Arc<tuning::Tuning>,
}

impl AdvisorHandle {
    /// A copy of the counters now.
    pub fn stats(&self) -> AdvisorStats {
        self.stats.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// The messages not yet shown (when not printing them), oldest first,
    /// without the `mmbot: ai: ` prefix stderr lines get; at most
    /// [`messages::MAX_QUEUED`], the oldest dropped first.
    pub fn drain_messages(&self) -> Vec<String> {
        self.messages.drain()
    }

    /// What an operator may change while it runs; `None` when there is no
    /// advisor to tune (`provider = "none"`).
    pub fn tuning(&self) -> Option<&tuning::Tuning> {
        self.thread.as_ref().map(|_| &*self.tuning)
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
    let cost_usd =
        asked.completions.iter().map(|c| crate::ai::cost::charge(&ai.prices, &ai.model, c).usd).sum::<Option<f64>>();
    let completion = asked.last().clone();
    Ok(Answer { completion, reply: asked.reply, cost_usd })
}

/// Starts the ai threads from `[ai]` and `[ai.offline]` (`None`: the
/// offline rules' defaults). `provider = "auto"` without a key runs the
/// offline rules (said once); a route without its key is skipped (said
/// once), and when no route is left the primary's error is returned.
pub fn start_advisor(
    ai: &AiConfig,
    offline_rules: Option<OfflineConfig>,
    market: Consumer<MarketSnapshot>,
    advice: Producer<Advice>,
    options: AdvisorOptions,
) -> Result<AdvisorHandle, AiError> {
    let messages = Messenger::new(options.print);
    let ai = ai.clone();
    let tuning = Arc::new(tuning::Tuning::new(match ai.call_on {
        crate::ai::CallOn::RegimeChange if ai.provider != Provider::Offline => ai.min_interval,
        _ => ai.interval,
    }));
    let stop = Arc::new(AtomicBool::new(false));
    let stats = Arc::new(Mutex::new(AdvisorStats { budget_usd: ai.daily_budget_usd, ..AdvisorStats::default() }));
    let rules = OfflineConfig { ttl_ns: ai.ttl_ns(), ..offline_rules.unwrap_or_default() };
    let offline = || Mode::Offline(OfflineAdvisor::new(rules));
    let offline_primary = || Primary { provider: "offline", model: "offline".into(), label: "offline".into() };
    let mut caller = None;
    let (mode, source, primary) = match ai.provider {
        Provider::None => {
            if let Ok(mut s) = stats.lock() {
                (s.source, s.label) = (AdviceSource::None, "none".into());
            }
            // Neutral advice: nothing to run.
            return Ok(AdvisorHandle { stop, stats, messages, thread: None, tuning });
        }
        Provider::Offline => (offline(), AdviceSource::Offline, offline_primary()),
        _ => match llm_routes(&ai, &messages)? {
            None => {
                messages.say(format!(
                    "no {} in the environment or {}: advice comes from the offline rules (shown as \"offline\"); \
                     set the key, or [ai] provider = \"offline\" to silence this",
                    ai.key_var,
                    ai.env_file.display()
                ));
                (offline(), AdviceSource::Offline, offline_primary())
            }
            Some(routes) => {
                let first = &routes[0];
                let primary =
                    Primary { provider: first.provider, model: first.cfg.model.clone(), label: first.label.clone() };
                let key_wait = ai.interval.max(Duration::from_secs(60));
                let dispatcher = Dispatcher::new(routes, DailyBudget::new(ai.daily_budget_usd), key_wait, wall_ns);
                if let Some(m) = dispatcher.unpriced_under_budget() {
                    messages.say(m);
                }
                let (mode, thread) = spawn_caller(dispatcher, stop.clone());
                caller = Some(thread);
                (mode, AdviceSource::Llm, primary)
            }
        },
    };
    let log = ai.log.as_deref().map(AdviceLog::open).transpose()?;
    if let Ok(mut s) = stats.lock() {
        s.source = source;
        s.label = primary.label.clone();
    }
    let mut sched = Scheduler::new(
        ai,
        mode,
        market,
        advice,
        log,
        stats.clone(),
        stop.clone(),
        messages.clone(),
        primary,
        options.speed,
        &rules,
        tuning.clone(),
    );
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
    Ok(AdvisorHandle { stop, stats, messages, thread: Some(thread), tuning })
}

/// A client per route that has its key, in order; a route without one is
/// skipped with one message. `Ok(None)`: `auto` found no key at all (it
/// runs offline); `Err`: no route is usable (the primary's error).
fn llm_routes(ai: &AiConfig, messages: &Messenger) -> Result<Option<Vec<Route<LlmClient>>>, AiError> {
    let mut routes = Vec::new();
    let mut skipped = Vec::new();
    let mut first_error = None;
    for (i, r) in ai.routes().iter().enumerate() {
        let cfg = ai.for_route(r);
        match llm_client(&cfg) {
            Ok((client, key)) => {
                if let Some(w) = key.as_ref().and_then(|k| k.warning.as_ref()) {
                    skipped.push(format!("warning: {w}"));
                }
                routes.push(Route::new(i, cfg, client));
            }
            // `auto` without a key: quietly not a route.
            Err(AiError::MissingKey { .. }) if i == 0 && ai.provider == Provider::Auto => {}
            Err(e) => {
                skipped.push(format!("{}: {e}; this route is skipped", r.label()));
                first_error.get_or_insert(e);
            }
        }
    }
    if routes.is_empty() {
        return match first_error {
            Some(e) => Err(e),
            None => Ok(None),
        };
    }
    for m in skipped {
        messages.say(m);
    }
    Ok(Some(routes))
}

/// The caller thread: asks the routes about each snapshot it is sent.
fn spawn_caller(mut dispatcher: Dispatcher<LlmClient>, stop: Arc<AtomicBool>) -> (Mode, JoinHandle<()>) {
    let (job_tx, job_rx) = mpsc::channel::<MarketSnapshot>();
    let (outcome_tx, outcome_rx) = mpsc::channel();
    let thread = std::thread::Builder::new()
        .name("mmbot-ai-call".into())
        .spawn(move || {
            while let Ok(snap) = job_rx.recv() {
                // Nothing from the network may end the advisor: a panic in a
                // call becomes a message, and the next tick asks again.
                let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| dispatcher.dispatch(&snap, &stop)));
                let outcome = run.unwrap_or_else(|p| {
                    let why = p
                        .downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| p.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "unknown".to_string());
                    routes::Outcome {
                        messages: vec![format!(
                            "an advisor call failed inside mmbot ({why}); the last valid advice stays, and the next \
                             tick asks again. Please report this"
                        )],
                        ..routes::Outcome::default()
                    }
                });
                if outcome_tx.send(outcome).is_err() {
                    break;
                }
            }
        })
        .expect("spawning the ai caller thread");
    (Mode::Llm { jobs: job_tx, outcomes: outcome_rx }, thread)
}

/// Wall-clock ns since the Unix epoch.
fn wall_ns() -> i64 {
    crate::feed::snapshot::wall_ns()
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

    #[test]
    fn every_new_counter_is_in_the_report() {
        let s = AdvisorStats { budget_usd: Some(1.5), route: "openai gpt-5-mini".into(), ..AdvisorStats::default() };
        let j = s.to_json();
        for k in [
            "skipped_budget",
            "budget_usd",
            "dropped_late",
            "skipped_no_change",
            "skipped_paused",
            "last_reason",
            "last_risk_signals",
            "quota_exhausted",
            "fallback_calls",
            "route",
            "estimated_calls",
            "cost_estimated_usd",
            "repaired",
        ] {
            assert!(j.get(k).is_some(), "{k} missing from {j}");
        }
        assert_eq!((j["budget_usd"].as_f64(), j["route"].as_str()), (Some(1.5), Some("openai gpt-5-mini")));
    }
}

//! The scheduler thread ("mmbot-ai"): keeps the hot path's time, decides
//! when to ask ([`super::schedule`], [`super::regime`]), hands each job to
//! the caller thread, and turns what comes back into advice, counters, log
//! lines and messages. It never blocks on the network, so it can stop at
//! once.
//!
//! A reply is dated from its snapshot: the advice's `received_ns` is the
//! snapshot's `time_ns`, its lifetime runs from there, and a reply whose
//! snapshot is older than `[ai] max_age_s` when it arrives (hot-path time)
//! is dropped instead of handed over: advice about a market that has moved
//! on is worse than none.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::ai::advisor::messages::Messenger;
use crate::ai::advisor::regime::RegimeWatch;
use crate::ai::advisor::routes::{Attempt, Outcome};
use crate::ai::advisor::schedule::{HotClock, Schedule, Tick};
use crate::ai::advisor::{AdvisorStats, MarketSnapshot};
use crate::ai::cost::CostMeter;
use crate::ai::log::{AdviceLog, CallMeta, Dropped, LogEntry};
use crate::ai::offline::{OfflineAdvisor, Regime};
use crate::ai::{AiConfig, AiError, CallOn};
use crate::hot::advice::Advice;
use crate::ring::{Consumer, Producer};

/// How advice is made.
pub(super) enum Mode {
    /// Jobs (snapshots) to the caller thread, outcomes back.
    Llm {
        jobs: mpsc::Sender<MarketSnapshot>,
        outcomes: mpsc::Receiver<Outcome>,
    },
    Offline(OfflineAdvisor),
}

/// The newest snapshot, when it arrived, and its regime.
#[derive(Clone, Copy)]
struct Latest {
    snap: MarketSnapshot,
    arrived: Instant,
    regime: Regime,
}

/// The first route, for lines about calls not made.
pub(super) struct Primary {
    pub provider: &'static str,
    pub model: String,
    pub label: String,
}

/// Everything the scheduler thread owns.
pub(super) struct Scheduler {
    ai: AiConfig,
    mode: Mode,
    market: Consumer<MarketSnapshot>,
    advice: Producer<Advice>,
    log: Option<AdviceLog>,
    stats: Arc<Mutex<AdvisorStats>>,
    stop: Arc<AtomicBool>,
    messages: Messenger,
    primary: Primary,
    meter: CostMeter,
    clock: HotClock,
    schedule: Schedule,
    regime: RegimeWatch,
    ttl_ns: i64,
    max_age_ns: i64,
    latest: Option<Latest>,
    /// The job in flight: its snapshot and regime.
    in_flight: Option<(MarketSnapshot, Regime)>,
    /// Every route is out of quota: no more jobs.
    quota_out: bool,
    /// The last failure said per route (each new kind once).
    shown: BTreeMap<usize, String>,
    /// The last tick gave no advice (its recovery is said).
    failing: bool,
    /// The operator's pause and interval (the control API).
    tuning: Arc<super::tuning::Tuning>,
}

/// How often the scheduler looks at its rings: snapshot arrival times and
/// replies are known to within this, and stopping takes at most this.
const STEP: Duration = Duration::from_millis(10);

/// How long advice lives, ns, from its snapshot: `ttl_intervals` x
/// `interval`; with `call_on = "regime_change"` at least until the next
/// forced call (`max_interval`) plus an interval, since an unchanged regime
/// means the advice still holds.
pub fn advice_ttl_ns(ai: &AiConfig) -> i64 {
    match ai.call_on {
        CallOn::Interval => ai.ttl_ns(),
        CallOn::RegimeChange => {
            ai.ttl_ns().max((ai.max_interval + ai.interval).as_nanos().min(i64::MAX as u128) as i64)
        }
    }
}

impl Scheduler {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        ai: AiConfig,
        mode: Mode,
        market: Consumer<MarketSnapshot>,
        advice: Producer<Advice>,
        log: Option<AdviceLog>,
        stats: Arc<Mutex<AdvisorStats>>,
        stop: Arc<AtomicBool>,
        messages: Messenger,
        primary: Primary,
        speed: f64,
        rules: &crate::ai::offline::OfflineConfig,
        tuning: Arc<super::tuning::Tuning>,
    ) -> Self {
        // The offline rules cost nothing: they advise every interval.
        let schedule = match mode {
            Mode::Offline(_) => Schedule::new(&AiConfig { call_on: CallOn::Interval, ..ai.clone() }),
            Mode::Llm { .. } => Schedule::new(&ai),
        };
        let ttl_ns = advice_ttl_ns(&ai);
        let max_age_ns = ai.max_age.as_nanos().min(i64::MAX as u128) as i64;
        Self {
            mode,
            market,
            advice,
            log,
            stats,
            stop,
            messages,
            primary,
            meter: CostMeter::default(),
            clock: HotClock::new(speed),
            schedule,
            regime: RegimeWatch::new(rules, ai.interval.as_nanos().min(i64::MAX as u128) as i64),
            ttl_ns,
            max_age_ns,
            latest: None,
            in_flight: None,
            quota_out: false,
            shown: BTreeMap::new(),
            failing: false,
            tuning,
            ai,
        }
    }

    pub(super) fn run(&mut self) {
        while !self.stop.load(Ordering::Relaxed) {
            let now = Instant::now();
            if let Some(snap) = self.market.latest() {
                self.clock.observe(snap.time_ns, now);
                let regime = self.regime.observe(&snap.features, snap.time_ns);
                self.latest = Some(Latest { snap, arrived: now, regime });
            }
            self.poll_outcome();
            self.schedule.set_step_ns(self.tuning.step_ns());
            if let Some(hot_now) = self.clock.now(now) {
                if self.schedule.tick_due(hot_now) {
                    self.tick(now, hot_now);
                }
            }
            std::thread::sleep(STEP);
        }
    }

    fn with_stats(&self, f: impl FnOnce(&mut AdvisorStats)) {
        if let Ok(mut s) = self.stats.lock() {
            f(&mut s);
        }
    }

    fn tick(&mut self, now: Instant, hot_now: i64) {
        if self.quota_out {
            return;
        }
        if self.tuning.paused() {
            return self.with_stats(|s| s.skipped_paused += 1);
        }
        if self.in_flight.is_some() {
            return self.with_stats(|s| s.skipped_busy += 1);
        }
        let Some(Latest { snap, arrived, regime }) = self.latest else { return };
        // The hot thread stopped sending: advice on an old book is worthless.
        if self.clock.stale_ns(arrived, now) > self.ai.ttl_ns() {
            return self.with_stats(|s| s.skipped_stale += 1);
        }
        match &mut self.mode {
            Mode::Offline(o) => {
                let mut a = o.advise(&snap.features, snap.time_ns);
                a.apply_multiplier = self.ai.apply_multiplier;
                self.advice.push_latest(a);
                let f = &snap.features;
                let reason = format!(
                    "offline rules on spread {:.3} bps, volatility {:.3} bps, imbalance {:+.2}, trade flow {:+.2}",
                    f.spread_bps, f.volatility_bps, f.imbalance, f.trade_flow
                );
                self.with_stats(|s| {
                    s.calls += 1;
                    s.ok += 1;
                    s.last_advice = Some(a);
                    s.last_reason = Some(reason);
                    s.last_risk_signals.clear();
                });
                let entry = offline_entry(&snap, a);
                let age_ns = hot_now.saturating_sub(snap.time_ns).max(0);
                let meta = CallMeta { route: "offline", age_ns: Some(age_ns), ..CallMeta::default() };
                write_log(&mut self.log, &self.messages, &entry, &meta);
            }
            Mode::Llm { jobs, .. } => match self.schedule.decide(hot_now, self.regime.changed()) {
                Tick::NoChange => self.with_stats(|s| s.skipped_no_change += 1),
                Tick::Call => {
                    if jobs.send(snap).is_ok() {
                        self.in_flight = Some((snap, regime));
                        self.schedule.called(hot_now);
                    } else if !self.quota_out {
                        // The caller thread is gone: say so once, stop asking.
                        self.quota_out = true;
                        let why = "the advisor's caller thread has ended: no more LLM calls this session; advice \
                                   expires and the bot quotes without it";
                        self.messages.say(why.to_string());
                        self.with_stats(|s| s.last_error = Some(why.to_string()));
                    }
                }
            },
        }
    }

    fn poll_outcome(&mut self) {
        let Mode::Llm { outcomes, .. } = &self.mode else { return };
        let Some((snap, regime)) = self.in_flight else { return };
        let outcome = match outcomes.try_recv() {
            Ok(o) => o,
            Err(mpsc::TryRecvError::Empty) => return,
            Err(mpsc::TryRecvError::Disconnected) => {
                self.in_flight = None;
                let why = "the advisor's caller thread ended unexpectedly: no more LLM calls this session";
                self.messages.say(why.to_string());
                self.with_stats(|s| {
                    s.failed += 1;
                    s.last_error = Some(why.to_string());
                });
                return;
            }
        };
        self.in_flight = None;
        for m in &outcome.messages {
            self.messages.say(m.clone());
        }
        // The reply's age on arrival, in the hot path's time.
        let hot_now = self.clock.now(Instant::now()).unwrap_or(snap.time_ns);
        let age_ns = hot_now.saturating_sub(snap.time_ns).max(0);
        if outcome.all_dead {
            self.quota_out = true;
            self.with_stats(|s| s.quota_exhausted = true);
        }
        if outcome.over_budget {
            self.with_stats(|s| s.skipped_budget += 1);
            if outcome.budget_stop_first {
                let why = outcome.messages.last().cloned().unwrap_or_default();
                let entry = LogEntry { error: Some(&why), ..unmade_entry(&self.primary, &snap) };
                let meta =
                    CallMeta { route: &self.primary.label, dropped: Some(Dropped::OverBudget), ..Default::default() };
                write_log(&mut self.log, &self.messages, &entry, &meta);
            }
        }
        if outcome.all_aside {
            self.with_stats(|s| s.skipped_backoff += 1);
        }
        if outcome.attempts.is_empty() {
            return;
        }
        let mut advised = false;
        for at in &outcome.attempts {
            advised |= self.record(at, &snap, regime, age_ns);
        }
        if advised && self.failing {
            self.messages.say("advice is flowing again");
        }
        self.failing = !advised;
    }

    /// Counts, logs and (if usable and in time) hands over one route's
    /// answer; returns whether advice reached the hot thread.
    fn record(&mut self, at: &Attempt, snap: &MarketSnapshot, regime: Regime, age_ns: i64) -> bool {
        // A failure that cost nothing is not a priced call (it would pull
        // the average cost per call down).
        if at.result.is_ok() || at.charge.usd != Some(0.0) {
            self.meter.add_charge(&at.charge, at.wall_ns);
        }
        let (meter, interval_s, wall) = (self.meter.clone(), self.ai.interval.as_secs_f64(), at.wall_ns);
        self.with_stats(|s| {
            s.calls += 1;
            s.cost_total_usd = meter.total_usd;
            s.cost_today_usd = meter.today(wall);
            s.cost_per_call_usd = meter.per_call();
            s.projected_month_usd = meter.projected_month(interval_s);
            s.unpriced_calls = meter.calls_unpriced;
            s.estimated_calls = meter.calls_estimated;
            s.cost_estimated_usd = meter.estimated_usd;
        });
        let asked = match &at.result {
            Ok(asked) => asked,
            Err(e) => {
                let text = e.to_string();
                let latency = at.info.latency;
                self.with_stats(|s| {
                    s.failed += 1;
                    s.last_error = Some(text.clone());
                    s.last_latency = Some(latency);
                });
                // A route out of quota was said by the dispatcher, with
                // what becomes of it.
                if !matches!(e, AiError::QuotaExhausted { .. }) {
                    self.report(at.route, &at.label, Some(&text));
                }
                let entry = LogEntry {
                    wall_ns: at.wall_ns,
                    provider: at.provider,
                    model: &at.model,
                    latency: Some(at.info.latency),
                    attempts: at.info.attempts,
                    cost_usd: at.charge.usd,
                    error: Some(&text),
                    ..unmade_entry(&self.primary, snap)
                };
                let meta = meta(at, 0, false, None, age_ns);
                write_log(&mut self.log, &self.messages, &entry, &meta);
                return false;
            }
        };
        let cs = &asked.completions;
        // The answer the advice was read from (the repair's, or the first
        // when that read better).
        let last = asked.read();
        let (tokens_in, tokens_out) = (cs.iter().map(|c| c.tokens_in).sum(), cs.iter().map(|c| c.tokens_out).sum());
        let cached: u64 = cs.iter().map(|c| c.cached_tokens).sum();
        let latency: Duration = cs.iter().map(|c| c.latency).sum();
        let attempts: u32 = cs.iter().map(|c| c.attempts).sum();
        let repaired = asked.repaired;
        let mut advice = asked.reply.as_ref().ok().map(|p| p.advice(snap.time_ns, self.ttl_ns));
        if let Some(a) = advice.as_mut() {
            a.apply_multiplier = self.ai.apply_multiplier;
        }
        let late = advice.is_some() && age_ns > self.max_age_ns;
        let error = match &asked.reply {
            Err(e) => Some(match &asked.repair_error {
                Some(r) => {
                    format!("the reply is unusable ({e}; the repair retry failed: {r}); keeping the last valid advice")
                }
                None => format!("the reply is unusable ({e}); keeping the last valid advice"),
            }),
            Ok(_) if late => Some(format!(
                "the reply came {:.1} s after its market snapshot, more than [ai] max_age_s ({:.1} s): dropped \
                 (raise max_age_s, lower max_tokens, or pick a faster model)",
                age_ns as f64 / 1e9,
                self.max_age_ns as f64 / 1e9
            )),
            Ok(_) => None,
        };
        let (route, label, fallback) = (at.route, at.label.clone(), at.route > 0);
        let (reason, signals) = match &asked.reply {
            Ok(p) => (p.reason.clone(), p.risk_signals.clone()),
            Err(_) => (None, Vec::new()),
        };
        self.with_stats(|s| {
            s.tokens_in += tokens_in;
            s.tokens_out += tokens_out;
            s.last_latency = Some(latency);
            s.repaired += u64::from(repaired);
            match (advice, late) {
                (Some(a), false) => {
                    s.ok += 1;
                    s.last_advice = Some(a);
                    s.last_reason = reason;
                    s.last_risk_signals = signals;
                    s.route = label;
                    s.fallback_calls += u64::from(fallback);
                }
                (Some(_), true) => {
                    s.dropped_late += 1;
                    s.route = label;
                    s.last_error = error.clone();
                }
                (None, _) => {
                    s.failed += 1;
                    s.unparseable += 1;
                    s.last_error = error.clone();
                }
            }
        });
        let handed = advice.filter(|_| !late);
        if let Some(a) = handed {
            self.advice.push_latest(a);
            self.regime.advised(regime);
        }
        self.report(route, &at.label, error.as_deref());
        let entry = LogEntry {
            wall_ns: at.wall_ns,
            provider: at.provider,
            model: &last.model,
            latency: Some(latency),
            attempts,
            tokens_in,
            tokens_out,
            usage_reported: cs.iter().all(|c| c.usage_reported),
            cost_usd: at.charge.usd,
            raw: Some(&last.content),
            reply: asked.reply.as_ref().ok(),
            advice,
            error: error.as_deref(),
            market: snap,
        };
        let meta = meta(at, cached, repaired, late.then_some(Dropped::Late), age_ns);
        write_log(&mut self.log, &self.messages, &entry, &meta);
        handed.is_some()
    }

    /// Says each new kind of failure of a route once (the kind: the text up
    /// to the first digit, as attempt counts and waits vary), and forgets it
    /// when the route answers.
    fn report(&mut self, route: usize, label: &str, error: Option<&str>) {
        match error {
            Some(e) => {
                let kind: String = e.chars().take_while(|c| !c.is_ascii_digit()).collect();
                if self.shown.get(&route) != Some(&kind) {
                    self.messages.say(format!("{label}: {e}"));
                    self.shown.insert(route, kind);
                }
            }
            None => {
                self.shown.remove(&route);
            }
        }
    }
}

/// Appends a line to the advice log, if any; a log that cannot be written
/// is said once and closed (logging is for later study; trading goes on
/// without it).
fn write_log(log: &mut Option<AdviceLog>, messages: &Messenger, entry: &LogEntry<'_>, meta: &CallMeta<'_>) {
    let Some(l) = log.as_mut() else { return };
    if let Err(e) = l.write_with(entry, meta) {
        messages.say(format!("{e}; advice logging stops"));
        *log = None;
    }
}

/// The advisor's keys of one route's line.
fn meta(at: &Attempt, cached: u64, repaired: bool, dropped: Option<Dropped>, age_ns: i64) -> CallMeta<'_> {
    CallMeta {
        route: &at.label,
        fallback: at.route,
        estimated: at.charge.estimated,
        cached_tokens: cached,
        repaired,
        dropped,
        age_ns: Some(age_ns),
    }
}

/// A log line for a call that gave no answer (the caller fills in the rest).
fn unmade_entry<'a>(primary: &'a Primary, snap: &'a MarketSnapshot) -> LogEntry<'a> {
    LogEntry {
        wall_ns: crate::feed::snapshot::wall_ns(),
        provider: primary.provider,
        model: &primary.model,
        latency: None,
        attempts: 0,
        tokens_in: 0,
        tokens_out: 0,
        usage_reported: false,
        cost_usd: None,
        raw: None,
        reply: None,
        advice: None,
        error: None,
        market: snap,
    }
}

/// The log line of one piece of offline advice.
fn offline_entry(snap: &MarketSnapshot, a: Advice) -> LogEntry<'_> {
    LogEntry {
        wall_ns: crate::feed::snapshot::wall_ns(),
        provider: "offline",
        model: "offline",
        latency: None,
        attempts: 0,
        tokens_in: 0,
        tokens_out: 0,
        usage_reported: false,
        cost_usd: None,
        raw: None,
        reply: None,
        advice: Some(a),
        error: None,
        market: snap,
    }
}

//! Running many backtests at once: one worker thread per core, each taking
//! the next job (a point, optionally over one time window) and running a
//! whole deterministic backtest on the shared in-memory lines.
//!
//! Every job is independent and the backtest depends on nothing but its
//! inputs, so results are the same whatever the number of workers or the
//! order in which they finish; they are returned in job order. Each point's
//! config is loaded and its script compiled once, up front, so a bad value
//! fails the sweep before any work starts.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crate::backtest::outputs::{Research, ResearchConfig};
use crate::backtest::{self, FillRecord, MarketSample, QuoteSeen, Report, RunObserver};
use crate::config::{load_with_params, Config, ParamError};
use crate::feed::recording::{LineChunks, MemoryLines};
use crate::hot::strategy::{Decision, NativeStrategy, Strategy, StrategyInput};
use crate::research::grid::Point;
use crate::script::ScriptStrategy;
use crate::stats::clock::Clock;

/// Why a sweep could not start.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    #[error("point {index} ({label}): {error}")]
    Config { index: usize, label: String, error: Box<ParamError> },
    #[error("point {index} ({label}): script {path}: {error}")]
    Script { index: usize, label: String, path: String, error: String },
}

/// A point made ready to run: its validated config and its script, if any.
#[derive(Debug, Clone)]
pub struct PointSetup {
    pub point: Point,
    pub config: Config,
    /// The point's script, else the config's `[strategy] script`.
    pub script: Option<PathBuf>,
}

/// Loads every point's config (`base_params` then the point's own overrides,
/// over `config_path`) and compiles its script once, so mistakes show before
/// the sweep starts.
pub fn prepare(
    config_path: Option<&Path>,
    base_params: &[String],
    points: &[Point],
) -> Result<Vec<PointSetup>, SweepError> {
    points
        .iter()
        .enumerate()
        .map(|(index, point)| {
            let mut params = base_params.to_vec();
            params.extend(point.param_args());
            let config = load_with_params(config_path, &params).map_err(|error| SweepError::Config {
                index,
                label: point.label(),
                error: Box::new(error),
            })?;
            config.one_symbol("mmbot sweep").map_err(|error| SweepError::Config {
                index,
                label: point.label(),
                error: Box::new(error.into()),
            })?;
            let script = point.script.clone().or_else(|| config.script.clone());
            if let Some(path) = &script {
                ScriptStrategy::from_file(path, &config.params, &config.script_limits).map_err(|e| {
                    SweepError::Script {
                        index,
                        label: point.label(),
                        path: path.display().to_string(),
                        error: e.to_string(),
                    }
                })?;
            }
            Ok(PointSetup { point: point.clone(), config, script })
        })
        .collect()
}

/// One backtest to run: a point over some lines, trading from a time on.
#[derive(Debug, Clone)]
pub struct Job {
    /// Index into the setups.
    pub point: usize,
    /// The lines to replay (shared buffers, cheap to clone).
    pub lines: Arc<Vec<MemoryLines>>,
    /// Quote only from this receive time on (ns); the lines before it warm
    /// the book and the features up. `None`: trade from the start.
    pub trade_from_ns: Option<i64>,
}

/// What a job produced: the backtest's report and the numbers a sweep ranks by.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub report: Report,
    pub metrics: Metrics,
}

/// The numbers of one backtest, as plain floats for tables and ranking.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Metrics {
    /// Net of fees, marked to the last mid (quote asset).
    pub pnl: f64,
    pub fees: f64,
    pub fills: u64,
    pub orders: u64,
    pub cancels: u64,
    pub quotes: u64,
    /// Traded notional (quote asset).
    pub volume: f64,
    pub max_abs_position: f64,
    /// Position at the end (base asset).
    pub position: f64,
    /// `report.stats.sharpe` (annualised, per-minute returns; see
    /// `backtest::outputs::stats`), 0 when undefined.
    pub sharpe: f64,
    /// Whole minutes the statistics are made from.
    pub minutes: usize,
    /// Every number in `report.stats` (when present), by key path.
    pub stats: std::collections::BTreeMap<String, f64>,
}

impl Metrics {
    /// The metric named by `--metric`.
    pub fn get(&self, metric: Metric) -> f64 {
        match metric {
            Metric::Pnl => self.pnl,
            Metric::Sharpe => self.sharpe,
        }
    }
}

/// What "best" means when points are ranked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Metric {
    /// Net PnL, marked to the last mid.
    Pnl,
    /// Annualised Sharpe ratio of per-minute returns (`report.stats.sharpe`).
    Sharpe,
}

impl Metric {
    pub fn name(self) -> &'static str {
        match self {
            Metric::Pnl => "pnl",
            Metric::Sharpe => "sharpe",
        }
    }
}

/// The backtest's own research observer, told only what happens from
/// `from_ns` on (a walk-forward window's events; before it the strategy
/// warms up and quotes nothing, so nothing is lost).
struct FromTime<'a> {
    inner: &'a mut Research,
    from_ns: i64,
}

impl RunObserver for FromTime<'_> {
    fn wants_progress(&self) -> bool {
        // Many backtests share the terminal: the sweep draws one bar.
        false
    }
    fn on_quote(&mut self, q: &QuoteSeen) {
        if q.quote.time_ns >= self.from_ns {
            self.inner.on_quote(q)
        }
    }
    fn on_fill(&mut self, f: &FillRecord) {
        if f.fill.time_ns >= self.from_ns {
            self.inner.on_fill(f)
        }
    }
    fn on_book(&mut self, m: &MarketSample<'_>) {
        if m.time_ns >= self.from_ns {
            self.inner.on_book(m)
        }
    }
}

/// A strategy that only quotes from `from_ns` on: before, it still sees
/// every event (so its own state warms up) but pulls everything.
pub struct TradeFrom<S> {
    pub inner: S,
    pub from_ns: i64,
}

impl<S: Strategy> Strategy for TradeFrom<S> {
    fn decide(&mut self, input: &StrategyInput<'_>) -> Decision {
        let d = self.inner.decide(input);
        if input.features.time_ns < self.from_ns {
            return Decision { pull: true, ..Decision::default() };
        }
        d
    }

    /// The inner strategy's rehearsal (its result is thrown away, so the
    /// start time does not matter).
    fn rehearse(&mut self, input: &StrategyInput<'_>) -> Option<Decision> {
        self.inner.rehearse(input)
    }

    fn on_fill(&mut self, fill: &crate::hot::strategy::StrategyFill) {
        self.inner.on_fill(fill);
    }

    fn after_call(&mut self, elapsed_ns: u64, now_ns: i64) {
        self.inner.after_call(elapsed_ns, now_ns);
    }

    fn name(&self) -> &str {
        self.inner.name()
    }

    fn health(&self) -> crate::hot::strategy::StrategyHealth {
        self.inner.health()
    }

    fn as_any(&self) -> Option<&dyn std::any::Any> {
        self.inner.as_any()
    }
}

fn decimal(s: &str) -> f64 {
    s.parse().unwrap_or(f64::NAN)
}

/// Runs one job: a whole backtest.
pub fn run_job(job: &Job, setup: &PointSetup, files: &[PathBuf], clock: Clock) -> Result<Outcome, String> {
    let config = &setup.config;
    let from_ns = job.trade_from_ns.unwrap_or(i64::MIN);
    let mut research = Research::new(ResearchConfig::from_config(config, 1_000));
    let mut observer = FromTime { inner: &mut research, from_ns };
    let chunks = || LineChunks::from_memory(job.lines.as_ref().clone());
    let (mut report, _) = match &setup.script {
        Some(path) => {
            let mut s =
                ScriptStrategy::from_file(path, &config.params, &config.script_limits).map_err(|e| e.to_string())?;
            // Counted, never acted on: a backtest's trades must not depend on the machine's speed.
            s.set_budget(config.script_budget, crate::script::budget::BudgetMode::CountOnly);
            s.set_levels(config.strategy_levels);
            backtest::run_chunks(chunks(), files, config, TradeFrom { inner: s, from_ns }, clock, &mut observer)
        }
        None => backtest::run_chunks(
            chunks(),
            files,
            config,
            TradeFrom { inner: NativeStrategy, from_ns },
            clock,
            &mut observer,
        ),
    }
    .map_err(|e| e.to_string())?;
    // The same statistics `mmbot backtest` reports, so a point reads alike in both.
    report.stats = Some(research.stats(report.trading.orders, report.trading.rejected_post_only));
    Ok(Outcome { metrics: metrics(&report), report })
}

/// Reads the numbers off a report (and `report.stats`, when it has one).
pub fn metrics(report: &Report) -> Metrics {
    let t = &report.trading;
    let mut stats = std::collections::BTreeMap::new();
    if let Ok(v) = serde_json::to_value(report) {
        if let Some(s) = v.get("stats") {
            flatten("", s, &mut stats);
        }
    }
    // Undefined (fewer than two minutes, no dispersion): 0, as no edge.
    let sharpe = stats.get("sharpe").copied().unwrap_or(0.0);
    let minutes = stats.get("minutes").map_or(0, |m| *m as usize);
    Metrics {
        pnl: decimal(&t.pnl),
        fees: decimal(&t.fees),
        fills: t.fills,
        orders: t.orders,
        cancels: t.cancels,
        quotes: t.quotes,
        volume: decimal(&t.volume),
        max_abs_position: decimal(&t.max_abs_position),
        position: decimal(&t.position),
        sharpe,
        minutes,
        stats,
    }
}

/// Numeric leaves of a JSON value, keyed `a.b.c` (numeric strings count).
fn flatten(prefix: &str, v: &serde_json::Value, out: &mut std::collections::BTreeMap<String, f64>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                flatten(&key, v, out);
            }
        }
        serde_json::Value::Number(n) => {
            if let Some(f) = n.as_f64() {
                out.insert(prefix.to_string(), f);
            }
        }
        serde_json::Value::String(s) => {
            if let Ok(f) = s.parse::<f64>() {
                out.insert(prefix.to_string(), f);
            }
        }
        _ => {}
    }
}

/// Runs every job on `workers` threads; `on_done(finished, total)` is
/// called on this thread as results come in. Results are in job order.
pub fn run_all(
    jobs: &[Job],
    setups: &[PointSetup],
    files: &[PathBuf],
    workers: usize,
    clock: Clock,
    on_done: &mut dyn FnMut(usize, usize),
) -> Vec<Result<Outcome, String>> {
    let total = jobs.len();
    let next = AtomicUsize::new(0);
    let mut results: Vec<Option<Result<Outcome, String>>> = (0..total).map(|_| None).collect();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::scope(|scope| {
        for w in 0..workers.clamp(1, total.max(1)) {
            let (tx, next) = (tx.clone(), &next);
            let spawned =
                std::thread::Builder::new().name(format!("mmbot-sweep-{w}")).spawn_scoped(scope, move || loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(job) = jobs.get(i) else { break };
                    let r = run_job(job, &setups[job.point], files, clock);
                    if tx.send((i, r)).is_err() {
                        break;
                    }
                });
            if let Err(e) = spawned {
                // Fewer workers than asked is still a sweep; none is caught below.
                tracing::warn!("could not start sweep worker {w}: {e}");
            }
        }
        drop(tx);
        let mut done = 0;
        for (i, r) in rx {
            results[i] = Some(r);
            done += 1;
            on_done(done, total);
        }
    });
    results.into_iter().map(|r| r.unwrap_or_else(|| Err("no worker ran this job".into()))).collect()
}

/// The default worker count: the cores this process may use.
pub fn available_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_stats_flatten_to_numbers() {
        let v = serde_json::json!({"sharpe": 1.5, "markouts": {"1s": "0.25", "label": "x"}, "n": 3});
        let mut out = std::collections::BTreeMap::new();
        flatten("", &v, &mut out);
        assert_eq!(out.len(), 3);
        assert_eq!((out["sharpe"], out["markouts.1s"], out["n"]), (1.5, 0.25, 3.0));
    }
}

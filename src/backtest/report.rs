//! What a backtest (and a threaded run, which reports the same way) tells
//! its user: the report structs written to `report.json`, and [`report`],
//! which reads them off the hot path and the position at the end.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::exec::position::Position;
use crate::exec::ExecCounts;
use crate::hot::engine::HotPath;
use crate::hot::fixed::{Price, Qty};
use crate::hot::msg::Symbol;
use crate::hot::strategy::Strategy;
use crate::stats::host::Host;
use crate::stats::latency::{Percentiles, Stage};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct InputReport {
    pub files: Vec<String>,
    /// Symbols whose depth the recordings carry, as far as the run saw:
    /// the books that got data, and the latest symbol ignored for having
    /// none (the traded one missing here means it quoted nothing).
    #[serde(default)]
    pub symbols: Vec<String>,
    pub frames: u64,
    pub depth_events: u64,
    pub trades: u64,
    pub rejected: u64,
    pub gaps: u64,
    pub resyncs: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TradingReport {
    pub symbol: String,
    pub strategy: String,
    pub quotes: u64,
    pub pulled: u64,
    pub orders: u64,
    pub cancels: u64,
    pub fills: u64,
    pub volume: String,
    pub position: String,
    pub max_abs_position: String,
    pub pnl: String,
    pub fees: String,
    /// Where advice came from ("offline", "none").
    pub advice: String,
    pub advice_updates: u64,
    /// The paper exchange's fill model in words (queue model, order type,
    /// latencies, clock); empty for live runs.
    #[serde(default)]
    pub fill_model: String,
    /// LIMIT_MAKER orders rejected for crossing on arrival.
    #[serde(default)]
    pub rejected_post_only: u64,
    /// Strategy calls, and those that failed (script errors, wrong-shaped
    /// outputs): each failure pulled the quote.
    #[serde(default)]
    pub strategy_calls: u64,
    #[serde(default)]
    pub strategy_errors: u64,
    #[serde(default)]
    pub strategy_bad_outputs: u64,
    /// Strategy calls that quoted at least one side (a script that never
    /// does over [`crate::script::health::NEVER_QUOTED_MIN_CALLS`] calls
    /// fails the run).
    #[serde(default)]
    pub strategy_quoted: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ClockReport {
    pub source: String,
    pub tsc_cost_ns: Option<f64>,
    pub instant_cost_ns: Option<f64>,
    /// The machine the run's latencies were measured on (absent in reports
    /// written before it was recorded).
    #[serde(default)]
    pub host: Option<Host>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PerfReport {
    pub wall_s: f64,
    pub events_per_s: f64,
    pub latency_ns: std::collections::BTreeMap<String, Percentiles>,
    /// Each stage's percentile distribution: (percentile in [0, 1), ns),
    /// enough to redraw the plot from the report alone.
    #[serde(default)]
    pub distribution: std::collections::BTreeMap<String, Vec<(f64, u64)>>,
    /// Events whose exchange time was after the local receive time (this
    /// clock behind the exchange's): `feed_delay` cannot show them.
    #[serde(default)]
    pub feed_delay_negative: u64,
    /// Per-second tick_to_quote percentiles (threaded runs).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub timeline: Vec<TimelinePoint>,
    pub clock: ClockReport,
}

/// One second of a threaded run.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct TimelinePoint {
    /// Seconds since the run started.
    pub t_s: f64,
    pub count: u64,
    pub p50_ns: u64,
    pub p99_ns: u64,
}

/// The report `mmbot backtest` writes.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Report {
    pub input: InputReport,
    pub trading: TradingReport,
    pub perf: PerfReport,
    /// The AI advisor's counters and cost (threaded runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ai: Option<serde_json::Value>,
    /// How live trading went (`mmbot run --live` only): stop reason,
    /// order-manager counters, refusals per reason, the journal run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub live: Option<serde_json::Value>,
    /// What a quant judges the run by (PnL, Sharpe, drawdown, inventory,
    /// markouts; see [`crate::backtest::outputs::stats`] for the method):
    /// backtests observed by [`crate::backtest::outputs::Research`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stats: Option<crate::backtest::outputs::Stats>,
    /// How the strategy script's calls went (script runs only): errors by
    /// message, wrong-shaped outputs by kind, reverts, reloads, the running
    /// version's hash, compiled or interpreted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub script: Option<crate::script::health::ScriptReport>,
}

pub fn report<S: Strategy>(
    files: &[PathBuf],
    hot: &HotPath<S>,
    ex: ExecCounts,
    position: &Position,
    symbol: Symbol,
    wall_s: f64,
) -> Report {
    let f = hot.market().stats();
    let s = hot.market().sync_stats();
    let hs = hot.stats();
    let health = hot.strategy().health();
    // Mark to the last mid of the traded book (integer midpoint, exact enough
    // for a report and deterministic).
    let mid = hot
        .market()
        .book(symbol)
        .and_then(|b| Some(Price((b.book().best_bid()?.price.0 + b.book().best_ask()?.price.0) / 2)))
        .or_else(|| hot.last_features().map(|f| Price((f.best_bid.price.0 + f.best_ask.price.0) / 2)))
        .unwrap_or(position.avg_entry());
    let dec = |v: i64| Price(v).to_string();
    let clock = hot.clock();
    let finite = |x: f64| x.is_finite().then_some((x * 10.0).round() / 10.0);
    Report {
        input: InputReport {
            files: files.iter().map(|p| p.display().to_string()).collect(),
            symbols: hot
                .market()
                .symbols()
                .filter(|&s| hot.market().book(s).is_some_and(|b| b.market().is_some()))
                .chain(hot.market().unknown_symbol())
                .map(|s| s.to_string())
                .collect(),
            frames: f.frames,
            depth_events: f.depth_messages,
            trades: f.trades,
            rejected: f.rejected,
            gaps: s.gaps,
            resyncs: s.resyncs,
        },
        trading: TradingReport {
            symbol: symbol.to_string(),
            strategy: hot.strategy_name().to_string(),
            quotes: hs.quotes,
            pulled: hs.pulled,
            orders: ex.orders,
            cancels: ex.cancels,
            fills: ex.fills,
            volume: dec(position.volume()),
            position: Qty(position.qty().0).to_string(),
            max_abs_position: position.max_abs().to_string(),
            pnl: dec(position.pnl(mid)),
            fees: dec(position.fees()),
            advice: "none".into(),
            advice_updates: 0,
            fill_model: String::new(),
            rejected_post_only: 0,
            strategy_calls: health.calls,
            strategy_errors: health.errors,
            strategy_bad_outputs: health.bad_outputs,
            strategy_quoted: health.quoted,
        },
        perf: PerfReport {
            wall_s,
            events_per_s: if wall_s > 0.0 { f.frames as f64 / wall_s } else { 0.0 },
            latency_ns: Stage::ALL
                .iter()
                .map(|&st| (st.name().to_string(), hot.histograms().percentiles(st)))
                .collect(),
            distribution: Stage::ALL
                .iter()
                .filter(|&&st| !hot.histograms().histogram(st).is_empty())
                .map(|&st| (st.name().to_string(), hot.histograms().distribution(st)))
                .collect(),
            feed_delay_negative: hs.feed_delay_negative,
            timeline: Vec::new(),
            clock: ClockReport {
                source: format!("{:?}", clock.source()).to_lowercase(),
                tsc_cost_ns: finite(clock.tsc_cost_ns),
                instant_cost_ns: finite(clock.instant_cost_ns),
                host: Some(Host::read(clock.tsc_ghz())),
            },
        },
        ai: None,
        live: None,
        stats: None,
        script: crate::script::health::view_of(hot.strategy()).map(|v| v.report()),
    }
}

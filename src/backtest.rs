//! Backtests: recordings replayed through exactly the live hot path, with the
//! paper exchange inline, in simulated time.
//!
//! Each frame's receive timestamp is the clock of the simulation: the hot
//! path quotes at it, the paper exchange applies latency from it, and fills
//! move the position that the hot path sees for the next frame. Nothing
//! depends on wall time or thread timing, so everything in the report except
//! `perf` is identical across runs of the same inputs and config.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::ai::offline::OfflineAdvisor;
use crate::config::Config;
use crate::exec::paper::PaperExchange;
use crate::exec::position::Position;
use crate::exec::{ExecCounts, Fill, Quote};
use crate::feed::recording::{split_line, LineChunks, Piece};
use crate::hot::engine::{HotEvent, HotPath};
use crate::hot::fixed::{Price, Qty};
use crate::hot::msg::{Level, Symbol};
use crate::hot::strategy::Strategy;
use crate::stats::clock::Clock;
use crate::stats::latency::{Percentiles, Stage, StageHistograms};

/// Why a backtest could not run.
#[derive(Debug, thiserror::Error)]
pub enum BacktestError {
    #[error("cannot read recording {path}: {error}")]
    Unreadable { path: String, error: String },
    #[error("no depth event in the recordings: nothing to trade")]
    NothingTraded,
    #[error("cannot replay the advice log {path}: {error}")]
    AdviceLog { path: String, error: String },
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct InputReport {
    pub files: Vec<String>,
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
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ClockReport {
    pub source: String,
    pub tsc_cost_ns: Option<f64>,
    pub instant_cost_ns: Option<f64>,
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
}

/// A quote as it left the hot path, with the book it was made from and the
/// position at that moment: what tests and tools check quotes against.
#[derive(Debug, Clone, Copy)]
pub struct QuoteSeen {
    pub quote: Quote,
    pub synced: bool,
    pub best_bid: Option<Level>,
    pub best_ask: Option<Level>,
    pub position: Qty,
}

/// Runs a backtest; returns the report and the stage histograms.
pub fn run<S: Strategy>(
    files: &[PathBuf],
    config: &Config,
    strategy: S,
    clock: Clock,
) -> Result<(Report, StageHistograms), BacktestError> {
    run_observed(files, config, strategy, clock, &mut |_| {})
}

/// [`run`], calling `observe` with every quote the hot path makes.
pub fn run_observed<S: Strategy>(
    files: &[PathBuf],
    config: &Config,
    strategy: S,
    clock: Clock,
    observe: &mut dyn FnMut(&QuoteSeen),
) -> Result<(Report, StageHistograms), BacktestError> {
    let mut hot = HotPath::new(config.hot, strategy, clock);
    let mut exchange: Option<PaperExchange> = None;
    let mut position = Position::new();
    let mut fills: Vec<Fill> = Vec::with_capacity(64);
    // A spinner on terminals (indicatif draws to stderr only when it is one).
    let progress = std::io::stderr().is_terminal().then(|| {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} backtest {elapsed_precise} {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        bar
    });
    let started = Instant::now();
    let mut last_progress = started;
    let mut frames = 0u64;
    // Advice in simulated time: every interval, from the newest features.
    // Or a live run's advice log, handed out when each piece arrived then.
    let mut replay = match &config.advice_replay {
        Some(p) => Some(
            crate::ai::log::AdviceReplay::load(p)
                .map_err(|e| BacktestError::AdviceLog { path: p.display().to_string(), error: e.to_string() })?,
        ),
        None => None,
    };
    let mut advisor = if replay.is_some() { None } else { config.ai_offline.map(OfflineAdvisor::new) };
    let mut next_advice_ns = i64::MIN;
    let mut advice_updates = 0u64;

    let mut chunks = LineChunks::start(files.to_vec());
    while let Some(piece) = chunks.next_piece() {
        match piece {
            Piece::Lines(buf) => {
                for raw in buf.split(|&b| b == b'\n') {
                    let Some((recv_ts, json)) = split_line(raw) else { continue };
                    let now = recv_ts as i64;
                    let t_in = hot.clock().now();
                    frames += 1;
                    let ex = &mut exchange;
                    let fills_ref = &mut fills;
                    let held = position.qty();
                    // The exchange is made for the traded symbol, as soon as an event names it.
                    let paper = config.paper;
                    let make = |s: Symbol| PaperExchange::new(s, paper);
                    hot.on_frame(json, now, t_in, &mut |ev| match ev {
                        HotEvent::Depth { symbol, book, time_ns } => {
                            ex.get_or_insert_with(|| make(symbol)).on_book(book, time_ns, &mut |f| fills_ref.push(f))
                        }
                        HotEvent::Trade(t) => {
                            ex.get_or_insert_with(|| make(t.symbol)).on_trade(&t, now, &mut |f| fills_ref.push(f))
                        }
                        HotEvent::Quote { quote, tick, synced, best_bid, best_ask } => {
                            observe(&QuoteSeen { quote, synced, best_bid, best_ask, position: held });
                            // At the quote's own time: a stale pull is stamped
                            // when the timer would have fired, before `now`.
                            ex.get_or_insert_with(|| make(quote.symbol)).on_quote(&quote, tick, quote.time_ns)
                        }
                    });
                    if !fills.is_empty() {
                        for f in fills.drain(..) {
                            position.on_fill(&f);
                        }
                        hot.set_position(position.qty());
                    }
                    if let Some(a) = replay.as_mut().and_then(|r| r.due(now)) {
                        hot.set_advice(a);
                        advice_updates += 1;
                    }
                    if let (Some(a), Some(f)) = (advisor.as_mut(), hot.last_features()) {
                        if now >= next_advice_ns {
                            hot.set_advice(a.advise(&f, now));
                            advice_updates += 1;
                            next_advice_ns = now.saturating_add(config.ai_interval_ns);
                        }
                    }
                }
                chunks.recycle(buf);
                if let Some(bar) = progress.as_ref().filter(|_| last_progress.elapsed().as_millis() >= 250) {
                    last_progress = Instant::now();
                    let rate = frames as f64 / started.elapsed().as_secs_f64();
                    bar.set_message(format!("{frames} frames, {rate:.0}/s, position {}", position.qty()));
                    bar.tick();
                }
            }
            Piece::FileError { path, error } => {
                return Err(BacktestError::Unreadable { path: path.display().to_string(), error });
            }
            Piece::Truncated { path, error } => {
                eprintln!(
                    "mmbot backtest: warning: {} ends early ({error}); used up to its last complete line",
                    path.display()
                );
            }
        }
    }
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }
    let wall_s = started.elapsed().as_secs_f64();
    let symbol = hot.traded_symbol().ok_or(BacktestError::NothingTraded)?;
    let counts = exchange.as_ref().map(|e| e.counts()).unwrap_or_default();
    let mut r = report(files, &hot, counts, &position, symbol, wall_s);
    r.trading.advice = match (&config.advice_replay, config.ai_offline.is_some()) {
        (Some(p), _) => format!("replayed log {}", p.display()),
        (None, true) => "offline".into(),
        (None, false) => "none".into(),
    };
    r.trading.advice_updates = advice_updates;
    Ok((r, hot.histograms().clone()))
}

pub(crate) fn report<S: Strategy>(
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
            },
        },
        ai: None,
        live: None,
    }
}

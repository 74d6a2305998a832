//! Backtests: recordings replayed through exactly the live hot path, with the
//! paper exchange inline, in simulated time.
//!
//! Each frame's receive timestamp is the clock of the simulation: the hot
//! path quotes at it and the paper exchange applies latency from it (market
//! events reach the exchange at it too, or at their exchange time with
//! `[paper] clock = "exchange"`). A fill moves the run's position (and is
//! told to the observer) when it happens, and reaches the strategy one
//! response latency later: before the first decision made after that, even
//! one made in the same frame (the hot path asks for the position between
//! applying a depth event and deciding; [`HotPath::on_frame_fed`]). Nothing depends on wall time or thread
//! timing, so everything in the report except `perf` is identical across
//! runs of the same inputs and config.

pub mod desk;
pub mod multi;
pub mod observe;
pub mod outputs;
pub mod report;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Instant;

use crate::config::Config;
use crate::exec::Quote;
use crate::feed::recording::{lines, split_line, LineChunks, Piece};
use crate::hot::fixed::Qty;
use crate::hot::msg::Level;
use crate::hot::strategy::Strategy;
use crate::stats::clock::Clock;
use crate::stats::latency::StageHistograms;

use desk::{Desk, Ungated};

pub use observe::{FillRecord, MarketSample, RunObserver};
pub use report::{report, ClockReport, InputReport, PerfReport, Report, TimelinePoint, TradingReport};

/// Why a backtest could not run.
#[derive(Debug, thiserror::Error)]
pub enum BacktestError {
    #[error("cannot read recording {path}: {error}")]
    Unreadable { path: String, error: String },
    #[error("no depth event in the recordings: nothing to trade")]
    NothingTraded,
    #[error("cannot replay the advice log {path}: {error}")]
    AdviceLog { path: String, error: String },
    #[error("cannot replay order latencies from {path} (`[paper] latency_from_journal`): {error}")]
    LatencyJournal { path: String, error: String },
}

/// A quote as it left the hot path, with the book it was made from and the
/// position at that moment: what tests and tools check quotes against.
#[derive(Debug, Clone, Copy)]
pub struct QuoteSeen {
    pub quote: Quote,
    pub synced: bool,
    pub best_bid: Option<Level>,
    pub best_ask: Option<Level>,
    /// The position as the strategy knew it (fills reach it one response
    /// latency after they happen).
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
    run_with(files, config, strategy, clock, &mut observe::QuotesOnly(observe))
}

/// [`run`], telling `observer` every quote, every fill (with the position
/// after it) and the market after every book event: what the research
/// outputs (fills, timeline, stats, plots) are made from.
pub fn run_with<S: Strategy>(
    files: &[PathBuf],
    config: &Config,
    strategy: S,
    clock: Clock,
    observer: &mut dyn RunObserver,
) -> Result<(Report, StageHistograms), BacktestError> {
    run_chunks(LineChunks::start(files.to_vec()), files, config, strategy, clock, observer)
}

/// [`run_with`] on recording lines from any source (files being read, or
/// lines already in memory); `files` only names them in the report.
pub fn run_chunks<S: Strategy>(
    mut chunks: LineChunks,
    files: &[PathBuf],
    config: &Config,
    strategy: S,
    clock: Clock,
    observer: &mut dyn RunObserver,
) -> Result<(Report, StageHistograms), BacktestError> {
    let mut desk = Desk::new(config, strategy, clock)?;
    // A spinner on terminals (indicatif draws to stderr only when it is one).
    let progress = (observer.wants_progress() && std::io::stderr().is_terminal()).then(|| {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} backtest {elapsed_precise} {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        bar
    });
    let started = Instant::now();
    let mut last_progress = started;
    while let Some(piece) = chunks.next_piece() {
        match piece {
            Piece::Lines(buf) => {
                for raw in lines(&buf) {
                    let Some((recv_ts, json)) = split_line(raw) else { continue };
                    desk.on_line(json, recv_ts as i64, observer, &mut Ungated);
                }
                chunks.recycle(buf);
                if let Some(bar) = progress.as_ref().filter(|_| last_progress.elapsed().as_millis() >= 250) {
                    last_progress = Instant::now();
                    let rate = desk.frames as f64 / started.elapsed().as_secs_f64();
                    bar.set_message(format!("{} frames, {rate:.0}/s, position {}", desk.frames, desk.position.qty()));
                    bar.tick();
                }
            }
            Piece::FileError { path, error } => {
                return Err(BacktestError::Unreadable { path: path.display().to_string(), error });
            }
            Piece::Truncated { path, error } => {
                crate::say!(
                    "mmbot backtest: warning: {} ends early ({error}); used up to its last complete line",
                    path.display()
                );
            }
        }
    }
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }
    desk.finish(files, started.elapsed().as_secs_f64())
}

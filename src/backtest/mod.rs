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

pub mod observe;
pub mod outputs;
pub mod report;

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Instant;

use crate::ai::offline::OfflineAdvisor;
use crate::config::Config;
use crate::exec::paper::latency::exchange_time_ms;
use crate::exec::paper::{FeedClock, LatencyModel, PaperClock, PaperExchange, RttSamples};
use crate::exec::position::Position;
use crate::exec::{Fill, Quote, Side};
use crate::feed::recording::{lines, split_line, LineChunks, Piece};
use crate::hot::advice::Advice;
use crate::hot::engine::{ExecState, HotEvent, HotPath};
use crate::hot::fixed::Qty;
use crate::hot::msg::{Level, Symbol};
use crate::hot::strategy::{Strategy, StrategyFill};
use crate::stats::clock::Clock;
use crate::stats::latency::StageHistograms;

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
    let mut hot = HotPath::new(config.hot, strategy, clock);
    // The exchange side runs inline and must see each diff's book before
    // the quote made from it: the whole diff is applied first.
    hot.set_touch_levels(0);
    // Borrowed by the hot path's event sink and, between an event and the
    // decision, by its feed (never both at once).
    let exchange: RefCell<Option<PaperExchange>> = RefCell::new(None);
    let mut position = Position::new();
    let mut fills: Vec<Fill> = Vec::with_capacity(64);
    // The fills the strategy has not heard of yet, and what it knows.
    let hearing = RefCell::new(Hearing::new());
    let latency = match &config.paper_latency_journal {
        Some(path) => Some(LatencyModel::replay(
            RttSamples::from_journal(path).map_err(|e| BacktestError::LatencyJournal {
                path: path.display().to_string(),
                error: e.to_string(),
            })?,
            config.paper.latency_seed,
        )),
        None => None,
    };
    // Market events reach the exchange when received, or (`[paper] clock =
    // "exchange"`) when they happened there, by the recording's exchange
    // times: then an order sent at receive time t meets every event that
    // happened before t + entry latency, including ones received later.
    let at_exchange = config.paper.clock == PaperClock::Exchange;
    let mut feed_clock = FeedClock::default();
    // The exchange is made for the traded symbol, as soon as an event names it.
    let paper = config.paper;
    let make = |s: Symbol| match &latency {
        Some(m) => PaperExchange::with_latency(s, paper, m.clone()),
        None => PaperExchange::new(s, paper),
    };
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

    while let Some(piece) = chunks.next_piece() {
        match piece {
            Piece::Lines(buf) => {
                for raw in lines(&buf) {
                    let Some((recv_ts, json)) = split_line(raw) else { continue };
                    let now = recv_ts as i64;
                    let happened = if at_exchange { feed_clock.at(now, exchange_time_ms(json)) } else { now };
                    let t_in = hot.clock().now();
                    frames += 1;
                    // Fills whose report has come back by now reach the
                    // strategy before this frame's events.
                    if hearing.borrow_mut().hear(now) {
                        hearing.borrow_mut().tell(&mut hot, exchange.borrow().as_ref());
                    }
                    let mut top: Option<(i64, Option<Level>, Option<Level>)> = None;
                    let mut on_event = |ev: HotEvent<'_>| {
                        let mut ex_cell = exchange.borrow_mut();
                        let ex = &mut *ex_cell;
                        let sink = &mut |f| fills.push(f);
                        match ev {
                            HotEvent::Depth { symbol, book, time_ns } => {
                                top = Some((time_ns, book.best_bid(), book.best_ask()));
                                let at = if at_exchange { happened } else { time_ns };
                                ex.get_or_insert_with(|| make(symbol)).on_book(book, at, sink)
                            }
                            HotEvent::Trade(t) => ex.get_or_insert_with(|| make(t.symbol)).on_trade(&t, happened, sink),
                            HotEvent::Quote { quote, tick, synced, best_bid, best_ask } => {
                                let known = hearing.borrow().known;
                                observer.on_quote(&QuoteSeen { quote, synced, best_bid, best_ask, position: known });
                                // At the quote's own time: a stale pull is stamped
                                // when the timer would have fired, before `now`.
                                ex.get_or_insert_with(|| make(quote.symbol)).on_quote(&quote, tick, quote.time_ns)
                            }
                        }
                        // A fill moves the position (what the run holds) at
                        // once, and reaches the strategy one response
                        // latency later.
                        let ex = ex_cell.as_ref();
                        let mut h = hearing.borrow_mut();
                        for f in fills.drain(..) {
                            position.on_fill(&f);
                            let meta = ex.and_then(|e| e.fill_meta(f.order_id));
                            observer.on_fill(&FillRecord { fill: f, meta, position_after: position.qty() });
                            let response = ex.and_then(|e| e.response_ns(f.order_id)).unwrap_or(0);
                            h.unheard.push_back((f.time_ns.saturating_add(response), f));
                        }
                        h.hear(now);
                    };
                    // Between an event and the decision: the fills heard by
                    // now go to the strategy, with the state they made.
                    let mut feed = |sink: &mut dyn FnMut(&StrategyFill)| {
                        let mut h = hearing.borrow_mut();
                        for f in h.told.drain(..) {
                            sink(&f);
                        }
                        Some(h.state(exchange.borrow().as_ref()))
                    };
                    hot.on_frame_fed(json, now, t_in, &mut on_event, &mut feed);
                    // Fills heard in a frame that made no decision.
                    hearing.borrow_mut().tell(&mut hot, exchange.borrow().as_ref());
                    if let Some((time_ns, best_bid, best_ask)) = top {
                        let exchange = exchange.borrow();
                        let e = exchange.as_ref();
                        observer.on_book(&MarketSample {
                            time_ns,
                            best_bid,
                            best_ask,
                            own_bid: e.and_then(|e| e.working_bid()),
                            own_ask: e.and_then(|e| e.working_ask()),
                            position: position.qty(),
                            position_state: &position,
                        });
                    }
                    // `[ai] apply_multiplier` of this run decides how advice
                    // sizes the spread, also for a log written without it.
                    if let Some(a) = replay.as_mut().and_then(|r| r.due(now)) {
                        hot.set_advice(Advice { apply_multiplier: config.ai.apply_multiplier, ..a });
                        advice_updates += 1;
                    }
                    // The time test first: the features are copied only
                    // when advice is due, not on every frame.
                    if let Some(a) = advisor.as_mut().filter(|_| now >= next_advice_ns) {
                        if let Some(f) = hot.last_features() {
                            let advice = a.advise(&f, now);
                            hot.set_advice(Advice { apply_multiplier: config.ai.apply_multiplier, ..advice });
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
    let exchange = exchange.into_inner();
    let counts = exchange.as_ref().map(|e| e.counts()).unwrap_or_default();
    let mut r = report(files, &hot, counts, &position, symbol, wall_s);
    r.trading.advice = match (&config.advice_replay, config.ai_offline.is_some()) {
        (Some(p), _) => format!("replayed log {}", p.display()),
        (None, true) => "offline".into(),
        (None, false) => "none".into(),
    };
    r.trading.advice_updates = advice_updates;
    if let Some(e) = exchange.as_ref() {
        r.trading.rejected_post_only = e.rejected_post_only();
        r.trading.fill_model = e.model();
    }
    Ok((r, hot.histograms().clone()))
}

/// Own fills on their way to the strategy: each reaches it one response
/// latency after it happened, as a live fill report would.
struct Hearing {
    /// Fills not heard of yet: (when they are, the fill).
    unheard: VecDeque<(i64, Fill)>,
    /// The position as the strategy knows it.
    known: Qty,
    /// The heard fills' account (average entry, PnL, fees).
    account: Position,
    last_fill_ns: Option<i64>,
    /// Heard, not yet told to the strategy ([`Strategy::on_fill`]).
    told: Vec<StrategyFill>,
}

impl Hearing {
    fn new() -> Self {
        Self {
            unheard: VecDeque::with_capacity(64),
            known: Qty::ZERO,
            account: Position::new(),
            last_fill_ns: None,
            told: Vec::with_capacity(64),
        }
    }

    /// Hears every fill whose report has come back by `now` (in the order
    /// they were made); true if there was one.
    fn hear(&mut self, now: i64) -> bool {
        let before = self.unheard.len();
        let mut i = 0;
        while i < self.unheard.len() {
            let (due, f) = self.unheard[i];
            if due > now {
                i += 1;
                continue;
            }
            self.unheard.remove(i);
            let signed = match f.side {
                Side::Buy => f.qty.0,
                Side::Sell => -f.qty.0,
            };
            self.known = Qty(self.known.0.saturating_add(signed));
            let fees_before = self.account.fees();
            self.account.on_fill(&f);
            self.last_fill_ns = Some(self.last_fill_ns.map_or(f.time_ns, |t| t.max(f.time_ns)));
            let fee = self.account.fees().saturating_sub(fees_before);
            self.told.push(StrategyFill::of(&f, fee, self.known));
        }
        self.unheard.len() != before
    }

    /// What the strategy knows now: the heard position and account, and
    /// the exchange's working orders.
    fn state(&self, exchange: Option<&PaperExchange>) -> ExecState {
        let (bid, ask) = exchange.map_or((None, None), |e| (e.working_bid(), e.working_ask()));
        ExecState { position: self.known, ..ExecState::of(&self.account, bid, ask, self.last_fill_ns) }
    }

    /// Tells the strategy of the fills heard and not told yet, then the
    /// state they made.
    fn tell<S: Strategy>(&mut self, hot: &mut HotPath<S>, exchange: Option<&PaperExchange>) {
        if self.told.is_empty() {
            return;
        }
        for f in self.told.drain(..) {
            hot.on_fill(&f);
        }
        hot.set_exec_state(self.state(exchange));
    }
}

//! Trading on threads, as it runs live: the hot path on its own pinned core,
//! the exchange side on an exec thread (the paper exchange, or with
//! [`Venue::Live`] the live order manager sending real orders), rings
//! between them.
//!
//! ```text
//!  source --frames--> hot (pinned) --top of book, trades, health, advice--> exec (paper exchange or
//!                      ^  |  <--position, working orders (latest wins)-----|  live order manager,
//!                      |  +----quotes (latest-value slot)----------------->|  position)
//!                      |  +----status (latest wins)---------> caller (status lines, dashboard)
//!  advice, params -----+ (latest wins, from side threads)
//! ```
//!
//! The hot thread never waits on the exec thread: a full market ring is
//! counted, quotes and positions are "latest wins" (quotes through a
//! slot whose writer only stores, [`crate::ring::latest`]). Unlike a backtest, this
//! is not deterministic (exec sees quotes when it gets to them), which is
//! exactly what trading against a live feed is like; backtests run the
//! same hot path and exchange inline instead. Frames come from a recording
//! (optionally paced at recorded speed) or the live WebSocket feed. The
//! exec thread may block (REST calls live); a live order manager that stops
//! by itself (kill switch, ban) ends the whole run.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::ai::advisor::MarketSnapshot;
use crate::backtest::{self, Report};
use crate::config::Config;
use crate::exec::journal::RunId;
use crate::exec::live::{LiveExchange, LiveStats, StopReason};
use crate::exec::paper::{PaperConfig, PaperLadder};
use crate::exec::position::Position;
use crate::exec::risk::RiskCounters;
use crate::exec::{ExecCounts, Fill, Quote};
use crate::feed::connector::Reason;
use crate::feed::health::{FeedCounters, FeedReport, HotCounts, SyncClock, UnsyncedCause};
use crate::feed::live::{FeedConfig, FeedHandler, LinkStats, LiveFeed};
use crate::feed::snapshot::wall_ns;
use crate::hot::advice::Advice;
use crate::hot::book::TopOfBook;
use crate::hot::engine::{ExecState, HotEvent, HotPath, StageSample};
use crate::hot::fixed::{Price, Qty};
use crate::hot::msg::{Level, Symbol, Trade};
use crate::hot::strategy::StrategyParams;
use crate::hot::strategy::{Decision, Explain};
use crate::hot::strategy::{Strategy, StrategyFill};
use crate::ring::latest::{latest, Publisher};
use crate::ring::{ring, Consumer, Producer};
use crate::stats::clock::Clock;
use crate::stats::latency::StageHistograms;

pub use crate::wait::sleep_unless;
pub use recording::{merge_by_time, PacedLatency, RecordingSource};
use warm::Warmer;

pub mod multi;
mod multi_desk;
pub mod multi_status;
mod recording;
mod warm;

/// Where the hot thread's frames come from.
pub trait FrameSource: Send {
    /// Puts the next frame in `buf` (cleared first) and returns its receive
    /// time in ns, or `None` when the source is finished.
    fn next_frame(&mut self, buf: &mut Vec<u8>) -> Option<i64>;
}

/// Market data the exec thread's fill model needs. Ring slots hold values
/// inline (no boxing: nothing is allocated per message), so the variants'
/// size difference is the price of a preallocated ring.
#[derive(Debug, Clone, Copy)]
#[allow(clippy::large_enum_variant)]
enum ToExec {
    Book {
        top: TopOfBook,
        time_ns: i64,
    },
    Trade {
        trade: Trade,
        time_ns: i64,
    },
    /// The traded book's state, every status period (~250 ms): the live
    /// order manager's kill switch trips on a book unsynced for too long.
    Health {
        synced: bool,
    },
    /// New advice as the hot thread took it (live runs journal it).
    Advice(Advice),
}

/// Wall time between [`HotStatus`] snapshots.
const STATUS_EVERY_NS: u64 = 250_000_000;

/// Own fills the exec thread can hand the hot thread between two of its
/// drains (each frame or turn) before the oldest are dropped.
const FILL_RING: usize = 1024;

/// How the threads did, beyond the report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RingStats {
    /// Market updates the exec thread never saw (its ring was full).
    pub market_dropped: u64,
    /// Quotes replaced by a newer one before exec read them (normal).
    pub quotes_superseded: u64,
    pub positions_superseded: u64,
}

/// A periodic snapshot from the hot thread (about every 250 ms of wall
/// time), for status lines and dashboards. Counters only: nothing is
/// formatted or computed on the hot thread for it.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct HotStatus {
    pub frames: u64,
    pub quotes: u64,
    pub pulled: u64,
    pub rejected: u64,
    pub gaps: u64,
    pub resyncs: u64,
    pub position: Qty,
    pub last_quote: Option<Quote>,
    /// Live feed: connected now, and connections so far.
    pub connected: bool,
    pub connects: u64,
    /// The traded book: synced, and its update id.
    pub synced: bool,
    pub update_id: u64,
    /// Its top levels, best first (for the dashboard's ladder).
    pub bids: [Option<Level>; LADDER],
    pub asks: [Option<Level>; LADDER],
    /// Own working orders as the exchange side last reported them.
    pub working: ExecState,
    /// How the last quote was made (multipliers, spread).
    pub explain: Explain,
    /// What the strategy asked for, before the guard rounded and limited it.
    pub decision: Decision,
    /// The advice in force (already expired to neutral if stale).
    pub advice: Advice,
    /// Quotes pulled because the book went stale / lost sync.
    pub pulled_stale: u64,
    pub pulled_on_sync_loss: u64,
    /// Quoting paused by the operator.
    pub paused: bool,
    /// Receive time (wall ns live) of the traded book's latest depth
    /// event; 0 before any. The control plane shows the book's age.
    pub last_depth_ns: i64,
    /// Why the traded book is unsynced (or last was), and since when (wall
    /// ns; the state's start when synced): `unsynced (gap) 2.1 s`.
    pub unsynced_cause: UnsyncedCause,
    pub sync_since_ns: i64,
    /// Counters the feed log reads ([`crate::feed::health::FeedLogger`]).
    pub feed: FeedCounters,
    /// The strategy script's running hash, path and failures (fixed size).
    pub script: crate::script::health::ScriptStatus,
}

/// Levels per side in [`HotStatus`].
pub const LADDER: usize = 10;

/// The exchange side's running totals (latest wins), for dashboards.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExecStatus {
    pub fills: u64,
    pub orders: u64,
    pub cancels: u64,
    /// Quote-asset amounts in 1e-8 units.
    pub volume: i64,
    pub fees: i64,
    /// Marked to the last mid the exchange side saw.
    pub pnl: i64,
    pub position: Qty,
    /// Live runs only: real orders are being sent.
    pub live: bool,
    /// Orders refused before sending (filters, pre-trade checks) and by
    /// the exchange; unknown fates looked up.
    pub refused: u64,
    pub rejected: u64,
    pub lookups: u64,
    /// Unknown order fates so far, and requests now in flight.
    pub unknown_fates: u64,
    pub in_flight: u64,
    /// Order round trip (new orders), ns: median and 99th percentile.
    pub place_rtt_p50: u64,
    pub place_rtt_p99: u64,
    /// Trading stopped (kill switch, ban, credentials): quotes go nowhere.
    pub stopped: bool,
}

/// Operator commands to the hot thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Pull quotes and stop quoting / quote again.
    Pause(bool),
}

/// The side-thread inputs of [`run_paper`]; each is optional.
#[derive(Default)]
pub struct SideInputs {
    /// Advice from the AI thread (latest wins).
    pub advice: Option<Consumer<Advice>>,
    /// Strategy parameters from an operator or script thread (latest wins).
    pub params: Option<Consumer<StrategyParams>>,
    /// Where the hot thread sends its [`HotStatus`] snapshots.
    pub status: Option<Producer<HotStatus>>,
    /// Where the hot thread sends each quote's stage times (a full ring
    /// drops and counts them; the hot thread's own histograms keep all).
    pub samples: Option<Producer<StageSample>>,
    /// Where every quote goes, with the book it was made from.
    pub quotes: Option<Producer<QuoteRecord>>,
    /// Where the exec thread sends its running totals.
    pub exec_status: Option<Producer<ExecStatus>>,
    /// Operator commands (pause) for the hot thread.
    pub control: Option<Consumer<Control>>,
    /// Where the hot thread sends the market as the AI advisor reads it
    /// (about every 250 ms, latest wins).
    pub market_snapshots: Option<Producer<MarketSnapshot>>,
}

/// What [`run_paper`] returns.
#[derive(Debug, Clone)]
pub struct PaperRun {
    pub report: Report,
    pub rings: RingStats,
    pub pinned_core: Option<usize>,
    pub source_errors: Vec<String>,
    /// The live feed's counters (live runs only).
    pub link: Option<LinkStats>,
    /// Every book as the run left it.
    pub books: Vec<BookState>,
    /// The hot thread's stage histograms (for `.hgrm` files and plots).
    pub histograms: StageHistograms,
    /// How live trading ended (`Venue::Live` runs only).
    pub live: Option<LiveOutcome>,
    /// `report.json` `feed` (live feed runs only).
    pub feed: Option<FeedReport>,
    /// Times the idle hot thread warmed its caches (`[feed] warm_every_us`
    /// with `poll = "busy"`; 0 when off).
    pub warms: u64,
    /// Paced replays: tick_to_quote split by whether each frame found the
    /// hot thread waiting on its core (`mmbot replay --speed`).
    pub paced: Option<PacedLatency>,
}

/// Where the exec thread sends orders.
pub enum Venue {
    /// The paper exchange (`[paper]`), made on the first quote.
    Paper,
    /// Real orders through the live order manager, started by the caller
    /// (start-up talks to the exchange and may fail: that is reported before
    /// any thread starts). `signal` is the SIGINT/SIGTERM flag: a stop it
    /// caused is journaled as the kill switch's `signal`.
    Live { exchange: Box<LiveExchange>, signal: Option<Arc<AtomicBool>> },
}

/// How a live run ended.
#[derive(Debug, Clone)]
pub struct LiveOutcome {
    pub stop: StopReason,
    pub stats: LiveStats,
    pub risk: RiskCounters,
    pub run_id: RunId,
    pub journal: PathBuf,
    /// Client order ids of this run start with it.
    pub client_prefix: String,
    /// Position from journaled fills only.
    pub position: Position,
    /// Orders went to `order/test` only.
    pub dry_run: bool,
    /// Order round-trip times per method.
    pub order_rtt: crate::exec::live::OrderRtt,
    /// The order gateway's counters (transports, sessions, timeouts).
    pub gateway: crate::exec::binance::gateway::GatewayStats,
}

impl LiveOutcome {
    /// How `ex` ended (or stands, if it has not stopped).
    pub fn of(ex: &LiveExchange) -> Self {
        Self {
            stop: ex.stopped().unwrap_or(StopReason::Requested),
            stats: ex.stats().clone(),
            risk: ex.risk_counters(),
            run_id: ex.run_id(),
            journal: ex.journal().path().to_path_buf(),
            client_prefix: ex.client_prefix().to_string(),
            position: *ex.position(),
            dry_run: ex.dry_run(),
            order_rtt: ex.order_rtt().clone(),
            gateway: ex.gateway_stats(),
        }
    }
}

/// The exec thread's exchange: paper or live, driven the same way.
#[allow(clippy::large_enum_variant)]
enum Desk {
    /// Made at the first quote, with `[strategy] levels` a side.
    Paper(Option<PaperLadder>, PaperConfig, usize),
    Live(Box<LiveExchange>),
}

impl Desk {
    fn on_book(&mut self, top: &TopOfBook, time_ns: i64, sink: &mut impl FnMut(Fill)) {
        match self {
            Desk::Paper(ex, ..) => {
                if let Some(ex) = ex {
                    ex.on_book(top, time_ns, sink)
                }
            }
            Desk::Live(ex) => ex.on_book(top, time_ns, sink),
        }
    }

    fn on_trade(&mut self, trade: &Trade, time_ns: i64, sink: &mut impl FnMut(Fill)) {
        match self {
            Desk::Paper(ex, ..) => {
                if let Some(ex) = ex {
                    ex.on_trade(trade, time_ns, sink)
                }
            }
            Desk::Live(ex) => ex.on_trade(trade, time_ns, sink),
        }
    }

    fn on_quote(&mut self, q: &Quote, tick: Price) {
        match self {
            Desk::Paper(ex, cfg, levels) => {
                ex.get_or_insert_with(|| PaperLadder::new(q.symbol, *cfg, *levels)).on_quote(q, tick, q.time_ns)
            }
            Desk::Live(ex) => ex.on_quote(q, tick, q.time_ns),
        }
    }

    /// The position and working orders, as the strategy is told them.
    fn exec_state(&self, position: &Position, last_fill_ns: Option<i64>) -> ExecState {
        match self {
            Desk::Paper(ex, ..) => ExecState::of_orders(position, ex.iter().flat_map(|e| e.working()), last_fill_ns),
            Desk::Live(ex) => ExecState::of_orders(position, ex.working_orders(), last_fill_ns),
        }
    }

    fn counts(&self) -> ExecCounts {
        match self {
            Desk::Paper(ex, ..) => ex.as_ref().map(|e| e.counts()).unwrap_or_default(),
            Desk::Live(ex) => {
                let s = ex.stats();
                ExecCounts { orders: s.orders, cancels: s.cancels, fills: s.fills }
            }
        }
    }
}

/// A book's final state, for reports and for tests that compare it with
/// the exchange's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BookState {
    pub symbol: Symbol,
    pub synced: bool,
    pub update_id: u64,
    /// Best first.
    pub bids: Vec<Level>,
    pub asks: Vec<Level>,
}

impl BookState {
    fn of<S: Strategy>(hot: &HotPath<S>, symbol: Symbol) -> Option<Self> {
        let b = hot.market().book(symbol)?;
        Some(Self {
            symbol,
            synced: b.is_synced(),
            update_id: b.update_id(),
            bids: b.book().bids().collect(),
            asks: b.book().asks().collect(),
        })
    }
}

/// Where the hot thread's frames come from.
pub enum Source {
    /// Recordings (optionally paced).
    Recording(RecordingSource),
    /// The live Binance feed (or the simulator).
    Live(FeedConfig),
}

impl From<RecordingSource> for Source {
    fn from(r: RecordingSource) -> Self {
        Source::Recording(r)
    }
}

impl From<FeedConfig> for Source {
    fn from(f: FeedConfig) -> Self {
        Source::Live(f)
    }
}

/// Every quote the hot path made, with the book it saw (for tests and
/// audits; a full ring drops and counts).
#[derive(Debug, Clone, Copy)]
pub struct QuoteRecord {
    pub quote: Quote,
    pub synced: bool,
    pub best_bid: Option<Level>,
    pub best_ask: Option<Level>,
}

/// Pins the calling thread to `core`; `None` (with a warning) when that is
/// impossible (no such core, or not allowed).
pub fn pin(core: Option<usize>) -> Option<usize> {
    let core = core?;
    // Only cores this thread may run on (read before pinning: afterwards the
    // list shrinks to the pinned core). Asking core_affinity for a core
    // outside the CPU set it can describe aborts the process instead.
    let allowed = core_affinity::get_core_ids().unwrap_or_default();
    if allowed.iter().any(|c| c.id == core) && core_affinity::set_for_current(core_affinity::CoreId { id: core }) {
        Some(core)
    } else {
        tracing::warn!(
            target: "mmbot::runtime",
            "cannot pin the hot thread to core {core} (no such core, or not allowed); running unpinned"
        );
        None
    }
}

/// The hot thread's state in [`run_paper`]: the hot path and its rings.
struct HotSide<S: Strategy> {
    hot: HotPath<S>,
    market_tx: Producer<ToExec>,
    quote_tx: Publisher<(Quote, Price)>,
    pos_rx: Consumer<ExecState>,
    /// Own fills for the strategy's `on_fill`, in order (bounded).
    fill_rx: Consumer<StrategyFill>,
    side: SideInputs,
    last_status: u64,
    last_quote: Option<Quote>,
    link: Option<(LinkStats, bool)>,
    /// Receive time of the latest frame (simulated time for recordings):
    /// the advisor's time base, so advice ages the same live and replayed.
    last_recv_ns: i64,
    max_position: Qty,
    /// The traded book's synced state over time (live feed runs).
    sync_clock: SyncClock,
    /// Warming while idle (`[feed] warm_every_us`, busy-polling only).
    warmer: Warmer,
    /// Frames handled so far (a turn that added none was idle).
    frames_in: u64,
    /// Paced replays: tick_to_quote split by whether the frame found the
    /// hot thread waiting, and the latest quote's sample, taken for it.
    paced: Option<PacedLatency>,
    sample: Option<StageSample>,
}

/// The sink for the hot path's events: market data to the exec thread,
/// quotes to it (latest wins) and to the audit ring.
fn emit<'a>(
    market_tx: &'a Producer<ToExec>,
    quote_tx: &'a Publisher<(Quote, Price)>,
    quotes: &'a Option<Producer<QuoteRecord>>,
    last_quote: &'a mut Option<Quote>,
    time_ns: i64,
) -> impl FnMut(HotEvent<'_>) + 'a {
    move |ev| match ev {
        HotEvent::Depth { book, time_ns, .. } => {
            market_tx.push(ToExec::Book { top: TopOfBook::of(book), time_ns });
        }
        HotEvent::Trade(trade) => {
            market_tx.push(ToExec::Trade { trade, time_ns });
        }
        HotEvent::Quote { quote, tick, synced, best_bid, best_ask } => {
            *last_quote = Some(quote);
            quote_tx.publish(&(quote, tick));
            if let Some(q) = quotes {
                q.push(QuoteRecord { quote, synced, best_bid, best_ask });
            }
        }
    }
}

impl<S: Strategy> HotSide<S> {
    #[inline]
    fn frame(&mut self, buf: &[u8], recv_ns: i64, t_in: u64) {
        self.last_recv_ns = recv_ns;
        self.frames_in += 1;
        self.warmer.on_frame(t_in);
        let mut out = emit(&self.market_tx, &self.quote_tx, &self.side.quotes, &mut self.last_quote, recv_ns);
        self.hot.on_frame(buf, recv_ns, t_in, &mut out);
        // After the quote is out: keep a small diff for the rehearsal.
        self.hot.keep_for_rehearsal(buf);
    }

    /// Idle work of a busy-polling hot thread, called only when the poll
    /// found no frame: once a period (`[feed] warm_every_us`) has passed
    /// since the latest frame or warming, re-reads what the next frame will
    /// use and rehearses the latest diff (`HotPath::warm`). Bounded: a fixed
    /// amount of memory near the touch, and one diff of at most
    /// `hot::engine::KEPT_FRAME` bytes.
    #[inline]
    fn warm_if_due(&mut self) {
        let now = self.hot.clock().now();
        if !self.warmer.due(self.hot.clock(), now) {
            return;
        }
        // The market ring producer's shared state (its `Arc` and drop
        // counter). The ring's head/tail and next slots would need a
        // method in src/ring/mod.rs: crossbeam's queue does not expose them.
        let rings = self.market_tx.dropped();
        let sum = self.hot.warm().wrapping_add(rings);
        self.warmer.warmed(now, sum);
    }

    /// The hot path's counters for the feed report.
    fn hot_counts(&self) -> HotCounts {
        let h = self.hot.stats();
        HotCounts {
            sync: self.hot.market().sync_stats(),
            feed: *self.hot.market().stats(),
            pulled: h.pulled,
            pulled_stale: h.pulled_stale,
            pulled_on_sync_loss: h.pulled_on_sync_loss,
            pulled_by_cause: self.hot.guard_stats().pulled_sync_lost,
        }
    }

    /// The market as the AI advisor reads it (only from a synced book).
    fn publish_snapshot(&mut self) {
        let Some(tx) = self.side.market_snapshots.as_ref() else { return };
        let Some(symbol) = self.hot.traded_symbol() else { return };
        let Some(book) = self.hot.market().book(symbol).filter(|b| b.is_synced()) else { return };
        let Some(features) = self.hot.last_features() else { return };
        tx.push_latest(MarketSnapshot::from_book(
            symbol,
            book.book(),
            features,
            self.hot.position(),
            self.max_position,
            self.last_recv_ns,
        ));
    }

    /// Notes when the traded book lost or regained sync, and why.
    #[inline]
    fn watch_sync(&mut self) {
        let synced = self.hot.traded_symbol().and_then(|t| self.hot.market().book(t)).is_some_and(|b| b.is_synced());
        if synced != self.sync_clock.synced {
            // Wall time live; the recording's time when replayed.
            let now_ns = if self.link.is_some() { wall_ns() } else { self.last_recv_ns };
            self.sync_clock.observe(synced, now_ns, &self.hot.market().sync_stats());
        }
    }

    fn housekeeping(&mut self, now: u64) {
        self.watch_sync();
        // Fills first (each told once, in order), then the state they made.
        while let Some(f) = self.fill_rx.pop() {
            self.hot.on_fill(&f);
        }
        if let Some(state) = self.pos_rx.latest() {
            self.hot.set_exec_state(state);
        }
        let sample = self.sample.take().or_else(|| self.hot.take_sample());
        if let (Some(samples), Some(sample)) = (self.side.samples.as_mut(), sample) {
            samples.push(sample);
        }
        if let Some(a) = self.side.advice.as_mut().and_then(|c| c.latest()) {
            self.hot.set_advice(a);
            self.market_tx.push(ToExec::Advice(a));
        }
        if let Some(p) = self.side.params.as_mut().and_then(|c| c.latest()) {
            self.hot.set_params(p);
        }
        if let Some(Control::Pause(on)) = self.side.control.as_mut().and_then(|c| c.latest()) {
            let now_ns = wall_ns();
            let mut out = emit(&self.market_tx, &self.quote_tx, &self.side.quotes, &mut self.last_quote, now_ns);
            self.hot.set_paused(on, now_ns, &mut out);
        }
        let clock = *self.hot.clock();
        if clock.ns(self.last_status, now) >= STATUS_EVERY_NS {
            self.last_status = now;
            self.publish_snapshot();
            let synced =
                self.hot.traded_symbol().and_then(|t| self.hot.market().book(t)).is_some_and(|b| b.is_synced());
            self.market_tx.push(ToExec::Health { synced });
            if let Some(status) = self.side.status.as_mut() {
                let (f, s, h) = (self.hot.market().stats(), self.hot.market().sync_stats(), self.hot.stats());
                let book = self.hot.traded_symbol().and_then(|t| self.hot.market().book(t));
                status.push_latest(HotStatus {
                    frames: f.frames,
                    quotes: h.quotes,
                    pulled: h.pulled,
                    rejected: f.rejected,
                    gaps: s.gaps,
                    resyncs: s.resyncs,
                    position: self.hot.position(),
                    last_quote: self.last_quote,
                    connected: self.link.is_none_or(|l| l.1),
                    connects: self.link.map_or(0, |l| l.0.connects),
                    synced: book.is_some_and(|b| b.is_synced()),
                    update_id: book.map_or(0, |b| b.update_id()),
                    bids: std::array::from_fn(|i| book.and_then(|b| b.book().bid(i))),
                    asks: std::array::from_fn(|i| book.and_then(|b| b.book().ask(i))),
                    working: self.hot.exec_state(),
                    explain: self.hot.last_explain(),
                    decision: self.hot.last_decision(),
                    advice: self.hot.advice_now(wall_ns()),
                    pulled_stale: h.pulled_stale,
                    pulled_on_sync_loss: h.pulled_on_sync_loss,
                    paused: self.hot.paused(),
                    last_depth_ns: self.hot.last_depth_ns(),
                    unsynced_cause: self.sync_clock.cause,
                    sync_since_ns: self.sync_clock.since_ns,
                    feed: FeedCounters {
                        connects: self.link.map_or(0, |l| l.0.connects),
                        disconnects: self.link.map_or(0, |l| l.0.disconnects_total()),
                        last_disconnect: self.link.and_then(|l| l.0.last_disconnect),
                        switches: self.link.map_or(0, |l| l.0.switches),
                        gaps: s.gaps,
                        resyncs: s.resyncs,
                        ticker_mismatches: f.ticker_mismatches,
                        malformed: f.rejected,
                        last_malformed: self.hot.market().last_error(),
                    },
                    script: crate::script::health::view_of(self.hot.strategy()).map(|v| v.status()).unwrap_or_default(),
                });
            }
        }
    }
}

impl<S: Strategy> FeedHandler for HotSide<S> {
    #[inline]
    fn on_frame(&mut self, frame: &[u8], recv_ns: i64, t_ready: u64, wire_ns: u64) -> bool {
        let before = self.hot.market().stats().server_shutdowns;
        self.hot.record_wire(wire_ns);
        self.frame(frame, recv_ns, t_ready);
        self.hot.market().stats().server_shutdowns != before
    }

    fn on_snapshot(&mut self, symbol: Symbol, body: &[u8], recv_ns: i64) {
        let t_in = self.hot.clock().now();
        let mut out = emit(&self.market_tx, &self.quote_tx, &self.side.quotes, &mut self.last_quote, recv_ns);
        self.hot.on_snapshot(symbol, body, recv_ns, t_in, &mut out);
    }

    fn refresh_book(&mut self, symbol: Symbol, now_ns: i64) {
        let mut out = emit(&self.market_tx, &self.quote_tx, &self.side.quotes, &mut self.last_quote, now_ns);
        self.hot.refresh_book(symbol, now_ns, &mut out);
    }

    fn on_disconnected(&mut self, reason: Reason, now_ns: i64) {
        self.sync_clock.on_disconnect(reason);
        let mut out = emit(&self.market_tx, &self.quote_tx, &self.side.quotes, &mut self.last_quote, now_ns);
        self.hot.on_disconnect(now_ns, &mut out);
    }

    /// The run ends: quotes are pulled, the books kept for the report.
    fn on_shutdown(&mut self, now_ns: i64) {
        let mut out = emit(&self.market_tx, &self.quote_tx, &self.side.quotes, &mut self.last_quote, now_ns);
        self.hot.pull_quotes(now_ns, &mut out);
    }

    #[inline]
    fn on_idle(&mut self, now_ns: i64) {
        let mut out = emit(&self.market_tx, &self.quote_tx, &self.side.quotes, &mut self.last_quote, now_ns);
        self.hot.on_idle(now_ns, &mut out);
    }

    fn wants_snapshot(&self, symbol: Symbol) -> bool {
        self.hot.wants_snapshot(symbol)
    }

    fn synced_update_id(&self, symbol: Symbol) -> Option<u64> {
        self.hot.market().book(symbol).filter(|b| b.is_synced()).map(|b| b.update_id())
    }
}

/// Runs the threaded paper trader until `source` ends or `stop` is set.
pub fn run_paper<S: Strategy + Send + 'static>(
    source: impl Into<Source>,
    files: Vec<PathBuf>,
    config: &Config,
    strategy: S,
    stop: Arc<AtomicBool>,
    side: SideInputs,
) -> PaperRun {
    run_trading(source, files, config, strategy, stop, side, Venue::Paper)
}

/// Runs the threaded trader, paper or live, until `source` ends or `stop`
/// is set. A live order manager that stops by itself (kill switch, ban,
/// refused credentials) raises `stop`, so the whole run ends with it.
pub fn run_trading<S: Strategy + Send + 'static>(
    source: impl Into<Source>,
    files: Vec<PathBuf>,
    config: &Config,
    strategy: S,
    stop: Arc<AtomicBool>,
    mut side: SideInputs,
    venue: Venue,
) -> PaperRun {
    let source = source.into();
    let exec_status = side.exec_status.take();
    let (market_tx, mut market_rx) = ring::<ToExec>(4096);
    let (quote_tx, mut quote_rx) = latest::<(Quote, Price)>();
    let (pos_tx, pos_rx) = ring::<ExecState>(8);
    // Fills beyond what the hot thread has drained are dropped (counted by
    // the ring), never waited for.
    let (fill_tx, fill_rx) = ring::<StrategyFill>(FILL_RING);
    let hot_done = Arc::new(AtomicBool::new(false));
    let started = Instant::now();

    let (mut desk, signal) = match venue {
        Venue::Paper => (Desk::Paper(None, config.paper, config.strategy_levels), None),
        Venue::Live { exchange, signal } => (Desk::Live(exchange), signal),
    };
    let done = hot_done.clone();
    let exec_stop = stop.clone();
    let exec = std::thread::Builder::new()
        .name("mmbot-exec".into())
        .spawn(move || {
            // Live: the position earlier runs left (journal) carries over.
            let mut position = match &desk {
                Desk::Live(ex) => *ex.carried_position(),
                Desk::Paper(..) => Position::new(),
            };
            let mut last_mid: Option<Price> = None;
            let mut last_fill_ns: Option<i64> = None;
            let mut fills: Vec<Fill> = Vec::with_capacity(64);
            // The feed as the kill switch sees it (wall clock, ns).
            let mut last_data_ns = wall_ns();
            let mut unsynced_since: Option<i64> = Some(last_data_ns);
            loop {
                let finished = done.load(Ordering::Acquire);
                let mut worked = false;
                while let Some(m) = market_rx.pop() {
                    worked = true;
                    match m {
                        ToExec::Book { top, time_ns } => {
                            if top.bid_len > 0 && top.ask_len > 0 {
                                last_mid = Some(Price((top.bids[0].price.0 + top.asks[0].price.0) / 2));
                            }
                            last_data_ns = wall_ns();
                            desk.on_book(&top, time_ns, &mut |f| fills.push(f))
                        }
                        ToExec::Trade { trade, time_ns } => desk.on_trade(&trade, time_ns, &mut |f| fills.push(f)),
                        ToExec::Advice(a) => {
                            if let Desk::Live(ex) = &mut desk {
                                ex.on_advice(&a);
                            }
                        }
                        ToExec::Health { synced } => {
                            unsynced_since = match (synced, unsynced_since) {
                                (true, _) => None,
                                (false, Some(t)) => Some(t),
                                (false, None) => Some(wall_ns()),
                            };
                        }
                    }
                }
                if let Some((q, tick)) = quote_rx.latest() {
                    worked = true;
                    desk.on_quote(&q, tick);
                }
                if let Desk::Live(ex) = &mut desk {
                    // Fills, reconciliation and the kill switch live here:
                    // called every pass, market data or not.
                    let now = wall_ns();
                    ex.kill_switch().on_feed(now, last_data_ns, unsynced_since);
                    let before = fills.len();
                    ex.poll(&mut |f| fills.push(f));
                    worked |= fills.len() != before;
                    if ex.stopped().is_some() {
                        // The order manager stopped (and cancelled): the
                        // whole run ends with it.
                        exec_stop.store(true, Ordering::Relaxed);
                    }
                }
                for f in fills.drain(..) {
                    let fees_before = position.fees();
                    position.on_fill(&f);
                    last_mid = Some(f.price);
                    last_fill_ns = Some(last_fill_ns.map_or(f.time_ns, |t| t.max(f.time_ns)));
                    let fee = position.fees().saturating_sub(fees_before);
                    fill_tx.push(StrategyFill::of(&f, fee, position.qty()));
                }
                if let (Some(tx), true) = (exec_status.as_ref(), worked) {
                    let c = desk.counts();
                    let mut st = ExecStatus {
                        fills: c.fills,
                        orders: c.orders,
                        cancels: c.cancels,
                        volume: position.volume(),
                        fees: position.fees(),
                        pnl: last_mid.map_or(0, |m| position.pnl(m)),
                        position: position.qty(),
                        ..ExecStatus::default()
                    };
                    if let Desk::Live(ex) = &desk {
                        let s = ex.stats();
                        st.live = true;
                        st.refused = s.refused_by_filter + s.refused_by_risk + s.refused_locally;
                        st.rejected = s.rejected;
                        st.lookups = s.lookups;
                        st.unknown_fates = s.unknown_fates;
                        st.in_flight = ex.in_flight() as u64;
                        let rtt = ex.order_rtt().percentiles("place");
                        (st.place_rtt_p50, st.place_rtt_p99) = (rtt.p50, rtt.p99);
                        st.stopped = ex.stopped().is_some();
                    }
                    tx.push_latest(st);
                }
                if worked {
                    // Position and working orders back to the hot thread.
                    pos_tx.push_latest(desk.exec_state(&position, last_fill_ns));
                }
                if finished && !worked && market_rx.is_empty() {
                    break;
                }
                if !worked {
                    // The exec thread may wait; the hot thread never does.
                    std::thread::sleep(Duration::from_micros(50));
                }
            }
            if let Desk::Live(ex) = &mut desk {
                // The run is over: cancel everything, close the journal run.
                if signal.as_ref().is_some_and(|s| s.load(Ordering::Relaxed)) {
                    ex.kill_switch().on_signal(wall_ns());
                }
                ex.poll(&mut |f| fills.push(f));
                ex.stop();
                ex.poll(&mut |f| fills.push(f));
                for f in fills.drain(..) {
                    position.on_fill(&f);
                }
            }
            (desk, position, pos_tx.dropped(), quote_rx.superseded())
        })
        .expect("spawning the exec thread");

    let hot_cfg = config.hot;
    let hot_core = config.hot_core;
    // Warming is validated to need busy polling; only a busy thread spins.
    let (warm, busy_poll) = (config.warm, config.feed.busy_poll);
    let hot = std::thread::Builder::new()
        .name("mmbot-hot".into())
        .spawn(move || {
            let pinned = pin(hot_core);
            let clock = Clock::calibrate();
            let symbols: Vec<Symbol> = match &source {
                Source::Live(f) => f.symbols.clone(),
                Source::Recording(_) => Vec::new(),
            };
            let hot = HotPath::with_symbols(hot_cfg, strategy, clock, &symbols);
            let mut h = HotSide {
                hot,
                market_tx,
                quote_tx,
                pos_rx,
                fill_rx,
                side,
                last_status: clock.now(),
                last_quote: None,
                link: None,
                last_recv_ns: 0,
                max_position: hot_cfg.params.max_position,
                sync_clock: SyncClock::new(wall_ns()),
                warmer: Warmer::new(warm.every, clock.now()),
                frames_in: 0,
                paced: None,
                sample: None,
            };
            if warm.is_on() {
                // Warming rehearses the latest diff: its buffers, made now.
                h.hot.enable_rehearsal();
            }
            let mut errors = Vec::new();
            let mut link = None;
            let mut feed_report = None;
            match source {
                Source::Recording(mut src) => {
                    let mut buf = Vec::with_capacity(1 << 20);
                    // Paced and busy-polling: spin until each frame is due,
                    // warming in the gaps, as a busy live feed waits.
                    let spin = busy_poll && src.speed().is_some();
                    h.paced = src.speed().map(|_| PacedLatency::new());
                    while !stop.load(Ordering::Relaxed) {
                        let next = if spin {
                            src.next_frame_with(&mut buf, Some(&mut || h.warm_if_due()))
                        } else {
                            src.next_frame_with(&mut buf, None)
                        };
                        let Some(recv_ns) = next else { break };
                        let t_in = h.hot.clock().now();
                        h.frame(&buf, recv_ns, t_in);
                        if let (Some(paced), Some(on_time)) = (h.paced.as_mut(), src.last_on_time()) {
                            // After the quote is out: split its latency by
                            // whether the frame found the thread waiting.
                            h.sample = h.hot.take_sample();
                            if let Some(s) = h.sample {
                                paced.record(on_time, s.tick_to_quote);
                            }
                        }
                        h.housekeeping(t_in);
                    }
                    errors = src.errors;
                }
                Source::Live(cfg) => match LiveFeed::start(cfg, clock) {
                    Ok(mut feed) => {
                        while !stop.load(Ordering::Relaxed) {
                            let frames_before = h.frames_in;
                            feed.turn(&mut h);
                            h.link = Some((feed.stats(), feed.is_connected()));
                            let now = h.hot.clock().now();
                            h.housekeeping(now);
                            if h.frames_in == frames_before {
                                // The turn read nothing: idle work only.
                                h.warm_if_due();
                            }
                        }
                        feed.shutdown(&mut h);
                        link = Some(feed.stats());
                        feed_report = Some(FeedReport::build(
                            &feed.stats(),
                            feed.snapshot_totals(),
                            &h.hot_counts(),
                            &h.sync_clock,
                            wall_ns(),
                        ));
                    }
                    Err(e) => errors.push(format!("live feed: {e}")),
                },
            }
            let rings = RingStats {
                market_dropped: h.market_tx.dropped(),
                // Counted by the exec thread, which reads the quotes.
                quotes_superseded: 0,
                positions_superseded: 0,
            };
            let (warms, paced) = (h.warmer.warms(), h.paced.take());
            (h.hot, pinned, rings, errors, link, feed_report, (warms, paced))
        })
        .expect("spawning the hot thread");

    let (hot, pinned_core, mut rings, source_errors, link, feed, (warms, paced)) =
        hot.join().expect("the hot thread panicked");
    hot_done.store(true, Ordering::Release);
    let (desk, position, pos_dropped, quotes_superseded) = exec.join().expect("the exec thread panicked");
    rings.positions_superseded = pos_dropped;
    rings.quotes_superseded = quotes_superseded;
    let wall_s = started.elapsed().as_secs_f64();
    let symbol = hot.traded_symbol().unwrap_or_default();
    let report = backtest::report(&files, &hot, desk.counts(), &position, symbol, wall_s);
    let books = hot.market().symbols().filter_map(|s| BookState::of(&hot, s)).collect();
    let histograms = hot.histograms().clone();
    let live = match &desk {
        Desk::Live(ex) => Some(LiveOutcome::of(ex)),
        Desk::Paper(..) => None,
    };
    PaperRun { report, rings, pinned_core, source_errors, link, books, histograms, live, feed, warms, paced }
}

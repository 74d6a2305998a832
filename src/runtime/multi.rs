//! Several symbols on threads: one pinned hot thread serving a symbol group
//! ([`HotGroup`]), one exec thread with a paper exchange per symbol and the
//! account allocator between every symbol's quotes and its exchange.
//!
//! The single-symbol runtime (`runtime.rs`) stays as it is: its rings,
//! status snapshots and dashboard are one symbol's. Here each symbol has
//! its own latest-wins quote ring and position ring (one symbol's quote
//! never supersedes another's), market data for the exec thread shares one
//! ring tagged with the symbol's desk, and each symbol's fills come back on
//! their own ring. The hot thread never waits on any of them.
//!
//! Sources: recordings (`mmbot replay` with `[[symbols]]`) or the live feed
//! carrying every symbol's streams on one connection (`mmbot paper` with
//! `[[symbols]]`). Orders: paper ladders, or live order managers sharing
//! the account's gateway (`run --live` with `[[symbols]]`,
//! [`run_live_multi`]). Not yet here (said in the README): the AI advisor
//! thread, script reloads and warming.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::backtest::multi::{assemble, MultiReport};
use crate::config::symbols::{SymbolEntry, Symbols};
use crate::exec::allocator::Allocator;
use crate::exec::live::LiveExchange;
use crate::exec::position::Position;
use crate::exec::{Fill, Quote};
use crate::feed::connector::Reason;
use crate::feed::live::{FeedHandler, LinkStats, LiveFeed};
use crate::hot::book::TopOfBook;
use crate::hot::engine::{ExecState, HotEvent, HotPath};
use crate::hot::fixed::Price;
use crate::hot::group::{HotGroup, Route};
use crate::hot::msg::Symbol;
use crate::hot::peers::PeerBoard;
use crate::hot::strategy::{Strategy, StrategyFill};
use crate::ring::latest::{latest, Publisher, Reader};
use crate::ring::{ring, Consumer, Producer};
use crate::stats::clock::Clock;

use super::multi_desk::DeskVenue;
use super::multi_status::{self, MultiStatus, SharedStatus, SymbolRow, SymbolState};
use super::{merge_by_time, pin, LiveOutcome, RecordingSource, RingStats, ToExec, FILL_RING};
use crate::feed::live::FeedConfig;
use crate::feed::recording::{LineChunks, MemoryLines};
use anyhow::Context;

/// What a multi-symbol threaded run returns.
#[derive(Debug, Clone)]
pub struct MultiRun {
    pub report: MultiReport,
    pub rings: RingStats,
    /// Each group's hot thread's core, in group order ([`groups`]).
    pub pinned_cores: Vec<Option<usize>>,
    pub source_errors: Vec<String>,
    /// Each group's live feed counters (live runs only).
    pub links: Vec<LinkStats>,
    /// How each symbol's live trading ended, in `[[symbols]]` order
    /// (`run --live` only; empty otherwise).
    pub live: Vec<LiveOutcome>,
}

/// One symbol's rings, hot side.
struct HotRings {
    quote_tx: Publisher<(Quote, Price)>,
    pos_rx: Consumer<ExecState>,
    fill_rx: Consumer<StrategyFill>,
}

/// One symbol's rings, exec side.
struct ExecRings {
    quote_rx: Reader<(Quote, Price)>,
    pos_tx: Producer<ExecState>,
    fill_tx: Producer<StrategyFill>,
}

/// One hot thread's state: its group, and its symbols' rings and indices
/// in `[[symbols]]` (what the exec thread knows them by).
struct GroupSide<S: Strategy> {
    group: HotGroup<S>,
    market_tx: Producer<(u16, ToExec)>,
    rings: Vec<HotRings>,
    global: Vec<u16>,
}

/// Sends the group's desk `d`'s hot-path event on: market data to the exec
/// thread (tagged with the symbol's index), quotes to the desk's own
/// latest-value slot.
#[inline]
fn emit(
    market_tx: &Producer<(u16, ToExec)>,
    rings: &[HotRings],
    global: &[u16],
    d: usize,
    ev: HotEvent<'_>,
    time_ns: i64,
) {
    match ev {
        HotEvent::Depth { book, time_ns, .. } => {
            market_tx.push((global[d], ToExec::Book { top: TopOfBook::of(book), time_ns }));
        }
        HotEvent::Trade(trade) => {
            market_tx.push((global[d], ToExec::Trade { trade, time_ns }));
        }
        HotEvent::Quote { quote, tick, .. } => rings[d].quote_tx.publish(&(quote, tick)),
    }
}

impl<S: Strategy> GroupSide<S> {
    #[inline]
    fn frame(&mut self, buf: &[u8], recv_ns: i64, t_in: u64) -> Route {
        let (tx, rings, global) = (&self.market_tx, &self.rings, &self.global);
        self.group.on_frame(buf, recv_ns, t_in, &mut |d, ev| emit(tx, rings, global, d, ev, recv_ns))
    }

    /// Every desk's fills and exec state, off the quote's path.
    fn housekeeping(&mut self) {
        for (d, r) in self.rings.iter_mut().enumerate() {
            let desk = self.group.desk_mut(d);
            while let Some(f) = r.fill_rx.pop() {
                desk.on_fill(&f);
            }
            if let Some(state) = r.pos_rx.latest() {
                desk.set_exec_state(state);
            }
        }
    }

    /// Runs `f` on every desk with its event sink.
    fn each(&mut self, now_ns: i64, f: &mut DeskFn<'_, S>) {
        let (tx, rings, global) = (&self.market_tx, &self.rings, &self.global);
        for d in 0..self.group.len() {
            f(self.group.desk_mut(d), &mut |ev| emit(tx, rings, global, d, ev, now_ns));
        }
    }
}

impl<S: Strategy> FeedHandler for GroupSide<S> {
    #[inline]
    fn on_frame(&mut self, frame: &[u8], recv_ns: i64, t_ready: u64, _wire_ns: u64) -> bool {
        // A control frame goes to every desk: the first one's count says
        // whether it was a shutdown.
        let shutdowns = |g: &HotGroup<S>| g.desks().first().map_or(0, |d| d.market().stats().server_shutdowns);
        let before = shutdowns(&self.group);
        self.frame(frame, recv_ns, t_ready);
        shutdowns(&self.group) != before
    }

    fn on_snapshot(&mut self, symbol: Symbol, body: &[u8], recv_ns: i64) {
        let Some(d) = self.group.desk_of(symbol) else { return };
        let t_in = self.group.desks()[d].clock().now();
        let (tx, rings, global) = (&self.market_tx, &self.rings, &self.global);
        self.group.on_snapshot(symbol, body, recv_ns, t_in, &mut |d, ev| emit(tx, rings, global, d, ev, recv_ns));
    }

    fn refresh_book(&mut self, symbol: Symbol, now_ns: i64) {
        let Some(d) = self.group.desk_of(symbol) else { return };
        let (tx, rings, global) = (&self.market_tx, &self.rings, &self.global);
        self.group.desk_mut(d).refresh_book(symbol, now_ns, &mut |ev| emit(tx, rings, global, d, ev, now_ns));
    }

    fn on_disconnected(&mut self, _reason: Reason, now_ns: i64) {
        self.each(now_ns, &mut |desk, out| desk.on_disconnect(now_ns, &mut |ev| out(ev)));
    }

    fn on_shutdown(&mut self, now_ns: i64) {
        self.each(now_ns, &mut |desk, out| desk.pull_quotes(now_ns, &mut |ev| out(ev)));
    }

    fn on_idle(&mut self, now_ns: i64) {
        self.each(now_ns, &mut |desk, out| desk.on_idle(now_ns, &mut |ev| out(ev)));
    }

    fn wants_snapshot(&self, symbol: Symbol) -> bool {
        self.group.desk_of(symbol).is_some_and(|d| self.group.desks()[d].wants_snapshot(symbol))
    }

    fn synced_update_id(&self, symbol: Symbol) -> Option<u64> {
        let d = self.group.desk_of(symbol)?;
        self.group.desks()[d].market().book(symbol).filter(|b| b.is_synced()).map(|b| b.update_id())
    }
}

/// Work done on each desk with its event sink ([`GroupSide::each`]).
type DeskFn<'a, S> = dyn FnMut(&mut HotPath<S>, &mut dyn FnMut(HotEvent<'_>)) + 'a;

/// One symbol on the exec thread.
struct ExecDesk {
    exchange: DeskVenue,
    position: Position,
    last_fill_ns: Option<i64>,
    rings: ExecRings,
    /// The latest book's best bid and ask.
    top: Option<(Price, Price)>,
    quotes: u64,
    /// Whether its last quote (as admitted) had any order.
    quoting: bool,
}

/// How often the exec thread publishes the symbols' rows.
const STATUS_EVERY: Duration = Duration::from_millis(250);

impl ExecDesk {
    /// Its row for the dashboard (`refused`: the allocator's count, if on).
    fn row(&self, entry: &SymbolEntry, refused: Option<u64>) -> SymbolRow {
        let counts = self.exchange.counts();
        let mid = self.top.map(|(b, a)| Price((b.0 + a.0) / 2));
        let state = match self.top {
            _ if self.exchange.stopped() => SymbolState::Killed,
            None => SymbolState::Waiting,
            Some(_) if self.quoting => SymbolState::Quoting,
            Some(_) => SymbolState::Pulled,
        };
        SymbolRow {
            symbol: entry.budget.symbol,
            quote_asset: entry.budget.quote.clone(),
            best_bid: self.top.map(|t| t.0),
            best_ask: self.top.map(|t| t.1),
            working: self.exchange.working().collect(),
            position: self.position.qty(),
            pnl: mid.map_or(self.position.realized(), |m| self.position.pnl(m)),
            fees: self.position.fees(),
            quotes: self.quotes,
            orders: counts.orders,
            fills: counts.fills,
            refused: refused.unwrap_or(0),
            state,
        }
    }
}

/// Where a multi-symbol run's frames come from. Each hot thread (one per
/// symbol group) makes its own source from it.
#[derive(Debug, Clone)]
pub enum MultiSource {
    /// Recordings (`mmbot replay`): merged in receive-time order
    /// ([`merge_by_time`]), replayed by every group's thread, each keeping
    /// its own symbols' frames; paced at `speed`, the first `seconds` of
    /// recorded time.
    Recording { files: Vec<PathBuf>, speed: Option<f64>, seconds: Option<f64> },
    /// The live feed: each group its own connection, for its symbols.
    Live(Box<FeedConfig>),
}

/// Symbol groups: (hot thread's core, indices in `[[symbols]]`) each.
pub type Groups = Vec<(Option<usize>, Vec<usize>)>;

/// One group's own source.
enum GroupSource {
    Recording(RecordingSource),
    Live(Box<FeedConfig>),
}

/// The symbol groups: (hot thread's core, indices in `[[symbols]]`), in
/// the order their first symbol is listed. A symbol's `core`, else
/// `default_core`.
pub fn groups(symbols: &Symbols, default_core: Option<usize>) -> Groups {
    let mut out: Vec<(Option<usize>, Vec<usize>)> = Vec::new();
    for (i, e) in symbols.entries.iter().enumerate() {
        let core = e.core.or(default_core);
        match out.iter_mut().find(|(c, _)| *c == core) {
            Some((_, list)) => list.push(i),
            None => out.push((core, vec![i])),
        }
    }
    out
}

/// What one hot thread hands back.
struct GroupOutcome<S: Strategy> {
    /// Its hot paths, with their indices in `[[symbols]]`.
    desks: Vec<(usize, HotPath<S>)>,
    pinned: Option<usize>,
    rings: RingStats,
    /// Frames of symbols the group does not serve.
    unrouted: u64,
    errors: Vec<String>,
    link: Option<LinkStats>,
}

/// Runs `symbols` with `strategies` (one per entry, in order) on threads
/// from `source` until it ends or `stop` is set: one hot thread per symbol
/// group ([`groups`], pinned to its core), one exec thread with a paper
/// ladder per symbol.
pub fn run_paper_multi<S: Strategy + Send + 'static>(
    source: MultiSource,
    files: Vec<PathBuf>,
    symbols: &Symbols,
    strategies: Vec<S>,
    hot_core: Option<usize>,
    stop: Arc<AtomicBool>,
    status: Option<SharedStatus>,
) -> anyhow::Result<MultiRun> {
    let ctx = RunContext { files, hot_core, stop, status };
    run_multi(source, symbols, strategies, ctx, Vec::new())
}

/// [`run_paper_multi`] trading for real: `live` holds each symbol's order
/// manager (in `[[symbols]]` order, started on one
/// [`AccountHub`](crate::exec::live::hub::AccountHub)), fed the symbol's
/// quotes as the allocator admits them. The allocator's account view
/// starts from the exchange's balances (`symbols.account`'s, as the caller
/// read them). Every manager is stopped (orders cancelled, fills settled)
/// before this returns.
pub fn run_live_multi<S: Strategy + Send + 'static>(
    source: MultiSource,
    symbols: &Symbols,
    strategies: Vec<S>,
    hot_core: Option<usize>,
    stop: Arc<AtomicBool>,
    status: Option<SharedStatus>,
    live: Vec<LiveExchange>,
) -> anyhow::Result<MultiRun> {
    anyhow::ensure!(
        live.len() == symbols.entries.len(),
        "one live order manager per symbol: {} for {} symbols",
        live.len(),
        symbols.entries.len()
    );
    let ctx = RunContext { files: Vec::new(), hot_core, stop, status };
    run_multi(source, symbols, strategies, ctx, live)
}

/// What a run needs besides its symbols and source.
struct RunContext {
    files: Vec<PathBuf>,
    hot_core: Option<usize>,
    stop: Arc<AtomicBool>,
    status: Option<SharedStatus>,
}

fn run_multi<S: Strategy + Send + 'static>(
    source: MultiSource,
    symbols: &Symbols,
    strategies: Vec<S>,
    ctx: RunContext,
    live: Vec<LiveExchange>,
) -> anyhow::Result<MultiRun> {
    let RunContext { files, hot_core, stop, status } = ctx;
    let n = symbols.entries.len();
    anyhow::ensure!(strategies.len() == n, "one strategy per symbol: {} for {n} symbols", strategies.len());
    let started = Instant::now();
    let plan = groups(symbols, hot_core);
    let (mut hot_rings, mut exec_rings): (Vec<Option<HotRings>>, Vec<ExecRings>) =
        (Vec::with_capacity(n), Vec::with_capacity(n));
    for _ in 0..n {
        let (quote_tx, quote_rx) = latest::<(Quote, Price)>();
        let (pos_tx, pos_rx) = ring::<ExecState>(8);
        let (fill_tx, fill_rx) = ring::<StrategyFill>(FILL_RING);
        hot_rings.push(Some(HotRings { quote_tx, pos_rx, fill_rx }));
        exec_rings.push(ExecRings { quote_rx, pos_tx, fill_tx });
    }
    // One market ring per group (each has one producer): room for bursts
    // of its symbols, bounded (a full ring is counted).
    let (mut market_txs, mut market_rxs) = (Vec::new(), Vec::new());
    for (_, list) in &plan {
        let (tx, rx) = ring::<(u16, ToExec)>((4096 * list.len()).min(32_768));
        market_txs.push(Some(tx));
        market_rxs.push(rx);
    }
    // Recordings: merged in time order once, replayed by every group from
    // memory.
    let merged: Option<Arc<[u8]>> = match &source {
        MultiSource::Recording { files, .. } => {
            Some(merge_by_time(files).context("reading the recordings to replay")?.into())
        }
        MultiSource::Live(_) => None,
    };
    let hot_done = Arc::new(AtomicBool::new(false));
    let done = hot_done.clone();
    let entries = symbols.entries.clone();
    let mut allocator = symbols
        .account
        .clone()
        .map(|limits| Allocator::new(entries.iter().map(|e| e.budget.clone()).collect(), limits));
    let exec_entries = entries.clone();
    let trading_live = !live.is_empty();
    let exec_stop = stop.clone();
    let mut live: Vec<Option<Box<LiveExchange>>> = live.into_iter().map(|ex| Some(Box::new(ex))).collect();
    let exec = std::thread::Builder::new().name("mmbot-exec".into()).spawn(move || {
        let mut desks: Vec<ExecDesk> = exec_rings
            .into_iter()
            .enumerate()
            .map(|(d, rings)| {
                let exchange = match live.get_mut(d).and_then(Option::take) {
                    Some(ex) => DeskVenue::Live(ex),
                    None => DeskVenue::Paper(None),
                };
                // Live: the position earlier runs left (journal) carries over.
                let position = exchange.live().map_or(Position::new(), |ex| *ex.carried_position());
                (exchange, position, rings)
            })
            .map(|(exchange, position, rings)| ExecDesk {
                exchange,
                position,
                last_fill_ns: None,
                rings,
                top: None,
                quotes: 0,
                quoting: false,
            })
            .collect();
        let mut shown = MultiStatus { allocator: allocator.is_some(), ..MultiStatus::default() };
        let mut next_status = Instant::now();
        let mut fills: Vec<(usize, Fill)> = Vec::with_capacity(64);
        let mut worked_on = vec![false; desks.len()];
        loop {
            let finished = done.load(Ordering::Acquire);
            let mut worked = false;
            for market_rx in &mut market_rxs {
                while let Some((d, m)) = market_rx.pop() {
                    let d = d as usize;
                    worked = true;
                    worked_on[d] = true;
                    let desk = &mut desks[d];
                    let sink = &mut |f| fills.push((d, f));
                    match m {
                        ToExec::Book { top, time_ns } => {
                            if top.bid_len > 0 && top.ask_len > 0 {
                                desk.top = Some((top.bids[0].price, top.asks[0].price));
                            }
                            if let (Some(a), true) = (allocator.as_mut(), top.bid_len > 0 && top.ask_len > 0) {
                                a.mark(d, Price((top.bids[0].price.0 + top.asks[0].price.0) / 2), time_ns);
                            }
                            desk.exchange.on_book(&top, time_ns, sink);
                        }
                        ToExec::Trade { trade, time_ns } => desk.exchange.on_trade(&trade, time_ns, sink),
                        ToExec::Health { .. } | ToExec::Advice(_) => {}
                    }
                }
            }
            // Live symbols' orders leave late: the allocator counts what
            // each one really has working (a cancel in flight still holds
            // its funds and its place among the open orders).
            if let Some(a) = allocator.as_mut().filter(|_| trading_live) {
                for (d, desk) in desks.iter().enumerate() {
                    if let Some(ex) = desk.exchange.live() {
                        a.set_working(d, ex.committed());
                    }
                }
            }
            for (d, desk) in desks.iter_mut().enumerate() {
                if let Some((q, tick)) = desk.rings.quote_rx.latest() {
                    worked = true;
                    worked_on[d] = true;
                    let q = match allocator.as_mut() {
                        Some(a) => a.admit_quote(d, q),
                        None => q,
                    };
                    desk.quotes += 1;
                    desk.quoting = !q.is_pulled();
                    let c = &exec_entries[d].config;
                    desk.exchange.on_quote(&q, tick, c.paper, c.strategy_levels);
                    // What it sent on (a new order, a cancel in flight)
                    // counts before the next symbol is admitted.
                    if let (Some(a), Some(ex)) = (allocator.as_mut(), desk.exchange.live()) {
                        a.set_working(d, ex.committed());
                    }
                }
            }
            // Live symbols: answers, user data and timers, whatever the
            // market does; the account's kill stops every one of them.
            let killed = allocator.as_ref().is_some_and(|a| a.killed().is_some());
            for (d, desk) in desks.iter_mut().enumerate() {
                let sink = &mut |f| fills.push((d, f));
                if killed {
                    desk.exchange.kill(crate::exec::live::wall_ns(), sink);
                }
                desk.exchange.poll(sink);
            }
            for (d, f) in fills.drain(..) {
                worked = true;
                worked_on[d] = true;
                let desk = &mut desks[d];
                let fees_before = desk.position.fees();
                desk.position.on_fill(&f);
                if let Some(a) = allocator.as_mut() {
                    a.on_fill(d, &f);
                }
                desk.last_fill_ns = Some(desk.last_fill_ns.map_or(f.time_ns, |t| t.max(f.time_ns)));
                let fee = desk.position.fees().saturating_sub(fees_before);
                desk.rings.fill_tx.push(StrategyFill::of(&f, fee, desk.position.qty()));
            }
            for (d, desk) in desks.iter_mut().enumerate() {
                if std::mem::take(&mut worked_on[d]) {
                    let working = desk.exchange.working();
                    desk.rings.pos_tx.push_latest(ExecState::of_orders(&desk.position, working, desk.last_fill_ns));
                }
            }
            if let Some(shared) = status.as_ref().filter(|_| Instant::now() >= next_status) {
                next_status = Instant::now() + STATUS_EVERY;
                shown.elapsed_s = started.elapsed().as_secs_f64();
                shown.killed = allocator.as_ref().and_then(|a| a.killed()).map(|k| k.describe());
                shown.rows = desks
                    .iter()
                    .enumerate()
                    .map(|(d, desk)| desk.row(&exec_entries[d], allocator.as_ref().map(|a| a.refused(d).total())))
                    .collect();
                if shown.killed.is_some() {
                    shown.rows.iter_mut().for_each(|r| r.state = SymbolState::Killed);
                }
                multi_status::publish(shared, &shown);
            }
            if finished && !worked && market_rxs.iter().all(|r| r.is_empty()) {
                break;
            }
            if trading_live && desks.iter().all(|d| d.exchange.stopped()) {
                // Every symbol stopped on its limits: nothing trades any
                // more, so the run ends.
                exec_stop.store(true, Ordering::Relaxed);
            }
            if !worked {
                std::thread::sleep(Duration::from_micros(50));
            }
        }
        // Live symbols cancel everything and settle their last fills.
        for (d, desk) in desks.iter_mut().enumerate() {
            desk.exchange.stop(&mut |f| fills.push((d, f)));
        }
        for (d, f) in fills.drain(..) {
            desks[d].position.on_fill(&f);
            if let Some(a) = allocator.as_mut() {
                a.on_fill(d, &f);
            }
        }
        let dropped = desks.iter().map(|d| d.rings.pos_tx.dropped()).sum::<u64>();
        let superseded = desks.iter().map(|d| d.rings.quote_rx.superseded()).sum::<u64>();
        (desks.into_iter().map(|d| (d.exchange, d.position)).collect::<Vec<_>>(), allocator, (dropped, superseded))
    })?;

    // Each symbol's mid and volatility, for the others' scripts (shared by
    // every group's thread: relaxed atomics).
    let board = Arc::new(PeerBoard::new(n));
    let mut strategies: Vec<Option<S>> = strategies.into_iter().map(Some).collect();
    let mut threads = Vec::with_capacity(plan.len());
    for (g, (core, list)) in plan.iter().enumerate() {
        let mine: Vec<(usize, crate::config::symbols::SymbolEntry, S)> = list
            .iter()
            .map(|&i| (i, entries[i].clone(), strategies[i].take().expect("each symbol in one group")))
            .collect();
        let rings: Vec<HotRings> =
            list.iter().map(|&i| hot_rings[i].take().expect("each symbol in one group")).collect();
        let market_tx = market_txs[g].take().expect("one producer per group");
        let (board, stop, core) = (board.clone(), stop.clone(), *core);
        let source = match (&source, &merged) {
            (MultiSource::Recording { speed, seconds, .. }, Some(lines)) => {
                let chunks = LineChunks::from_memory(vec![MemoryLines::whole(lines.clone())]);
                GroupSource::Recording(RecordingSource::from_chunks(chunks, *speed).limited_to(*seconds))
            }
            (MultiSource::Recording { .. }, None) => unreachable!("recordings are merged above"),
            (MultiSource::Live(cfg), _) => {
                let mut cfg = (**cfg).clone();
                cfg.symbols = mine.iter().map(|(_, e, _)| e.budget.symbol).collect();
                GroupSource::Live(Box::new(cfg))
            }
        };
        // Reading the same recordings, the other groups' symbols are theirs.
        let elsewhere: Vec<Symbol> =
            entries.iter().enumerate().filter(|(i, _)| !list.contains(i)).map(|(_, e)| e.budget.symbol).collect();
        let name = if plan.len() == 1 { "mmbot-hot".to_string() } else { format!("mmbot-hot-{g}") };
        let spawned = std::thread::Builder::new()
            .name(name)
            .spawn(move || group_thread(mine, rings, market_tx, board, core, source, elsewhere, stop))?;
        threads.push(spawned);
    }
    let mut joined = Vec::with_capacity(threads.len());
    for t in threads {
        joined.push(t.join().map_err(|_| anyhow::anyhow!("a hot thread panicked")));
    }
    hot_done.store(true, Ordering::Release);
    let (exec_desks, allocator, (pos_dropped, quotes_superseded)) =
        exec.join().map_err(|_| anyhow::anyhow!("the exec thread panicked"))?;
    let mut hot: Vec<Option<HotPath<S>>> = (0..n).map(|_| None).collect();
    let (mut rings, mut source_errors, mut links, mut pinned_cores) =
        (RingStats::default(), Vec::new(), Vec::new(), Vec::new());
    let mut unrouted = 0;
    for outcome in joined {
        let g = outcome?.map_err(|e| anyhow::anyhow!(e))?;
        for (i, d) in g.desks {
            hot[i] = Some(d);
        }
        pinned_cores.push(g.pinned);
        rings.market_dropped += g.rings.market_dropped;
        unrouted += g.unrouted;
        source_errors.extend(g.errors);
        links.extend(g.link);
    }
    rings.positions_superseded = pos_dropped;
    rings.quotes_superseded = quotes_superseded;
    let wall_s = started.elapsed().as_secs_f64();
    let hot: Vec<HotPath<S>> = hot.into_iter().map(|h| h.expect("every symbol's desk came back")).collect();
    let frames: u64 = hot.iter().map(|d| d.market().stats().frames).sum();
    let reports = hot
        .iter()
        .zip(&exec_desks)
        .zip(&symbols.entries)
        .map(|((hot, (ex, position)), e)| {
            let counts = ex.counts();
            let mut r = crate::backtest::report(&files, hot, counts, position, e.budget.symbol, wall_s);
            r.trading.advice = "none".into();
            if let Some(ex) = ex.paper() {
                r.trading.rejected_post_only = ex.rejected_post_only();
                r.trading.fill_model = ex.model();
            }
            r
        })
        .collect();
    let report = assemble(&files, frames, unrouted, wall_s, symbols, allocator.as_ref(), reports);
    let live = exec_desks.iter().filter_map(|(ex, _)| ex.live().map(LiveOutcome::of)).collect();
    Ok(MultiRun { report, rings, pinned_cores, source_errors, links, live })
}

/// One hot thread: its symbols' hot paths in a group, fed from its own
/// source until it ends or `stop` is set.
#[allow(clippy::too_many_arguments)] // the thread's whole state, moved in once
fn group_thread<S: Strategy>(
    mine: Vec<(usize, crate::config::symbols::SymbolEntry, S)>,
    rings: Vec<HotRings>,
    market_tx: Producer<(u16, ToExec)>,
    board: Arc<PeerBoard>,
    core: Option<usize>,
    source: GroupSource,
    elsewhere: Vec<Symbol>,
    stop: Arc<AtomicBool>,
) -> Result<GroupOutcome<S>, String> {
    let pinned = pin(core);
    let clock = Clock::calibrate();
    let global: Vec<u16> = mine.iter().map(|(i, _, _)| *i as u16).collect();
    let desks = mine
        .into_iter()
        .map(|(i, e, s)| {
            let mut hot = HotPath::with_symbols(e.config.hot, s, clock, &[e.budget.symbol]);
            hot.set_peers(board.clone(), i);
            hot
        })
        .collect();
    let mut group = HotGroup::new(desks).map_err(|e| e.to_string())?;
    group.served_elsewhere(&elsewhere);
    let mut h = GroupSide { group, market_tx, rings, global };
    let mut errors = Vec::new();
    let mut link = None;
    match source {
        GroupSource::Recording(mut src) => {
            let mut buf = Vec::with_capacity(1 << 20);
            while !stop.load(Ordering::Relaxed) {
                let Some(recv_ns) = src.next_frame_with(&mut buf, None) else { break };
                let t_in = clock.now();
                h.frame(&buf, recv_ns, t_in);
                h.housekeeping();
            }
            errors = src.errors;
        }
        GroupSource::Live(cfg) => match LiveFeed::start(*cfg, clock) {
            Ok(mut feed) => {
                while !stop.load(Ordering::Relaxed) {
                    feed.turn(&mut h);
                    h.housekeeping();
                }
                feed.shutdown(&mut h);
                link = Some(feed.stats());
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
    let unrouted = h.group.stats().unrouted;
    let global = h.global.clone();
    let desks = global.into_iter().map(usize::from).zip(h.group.into_desks()).collect();
    Ok(GroupOutcome { desks, pinned, rings, unrouted, errors, link })
}

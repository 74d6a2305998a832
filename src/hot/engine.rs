//! The hot path, end to end: frame bytes in, quote out, every stage timed.
//!
//! [`HotPath::on_frame`] is the one function the pinned thread calls per
//! frame, live and in backtests alike (DESIGN.md: backtest equals live):
//! parse -> book -> features -> strategy -> guard -> quote. What it produces
//! goes to a caller-supplied sink as [`HotEvent`]s: book updates and trades
//! (which the exchange side needs for its fill model) and quotes. Position
//! comes back from the exchange side through [`HotPath::set_position`];
//! advice through [`HotPath::set_advice`]. Nothing here allocates, locks,
//! blocks or formats after construction.
//!
//! One symbol is traded (`symbol` in config, or the first whose depth
//! arrives); other symbols in the same stream keep their books but get no
//! quotes.
//!
//! Book truth: every bookTicker whose `u` equals its book's update id is
//! compared with the book's best bid and ask ([`TickerCheck::Resync`]); a
//! mismatch makes the book unsynced, pulls the quotes and asks for a new
//! snapshot. Tickers are read with a cheap scan (`u` first, the four top
//! fields only when the book has not passed it), never fully parsed.

use crate::exec::Quote;
use crate::hot::advice::Advice;
use crate::hot::book::Book;
use crate::hot::features::{FeatureConfig, FeatureState, Features};
use crate::hot::fixed::{Price, Qty};
use crate::hot::guard::{BookHealth, Filters, Guard, GuardConfig, GuardStats};
use crate::hot::market::{BookSizes, Event, MarketData, TickerCheck};
use crate::hot::msg::{Level, Msg, Symbol, Trade};
use crate::hot::parse::route;
use crate::hot::peers::{Peer, PeerBoard};
use crate::hot::strategy::{
    Account, Decision, Explain, MarketScope, OwnOrders, Strategy, StrategyFill, StrategyInput, StrategyParams,
};
use crate::hot::sync::{SyncConfig, SyncLoss};
use crate::hot::touch::SideOrders;
use crate::stats::clock::Clock;
use crate::stats::latency::{Stage, StageHistograms};

/// The [`StrategyInput`] of a decision on `$book` at `$now_ns` with
/// features `$f` (the decision and the idle rehearsal build it alike). A
/// macro, not a method: it borrows `$hot`'s fields apart, so the strategy
/// can still be borrowed mutably to decide on it.
macro_rules! strategy_input {
    ($hot:ident, $f:expr, $book:expr, $filters:expr, $now_ns:expr) => {
        StrategyInput {
            features: $f,
            position: $hot.position,
            advice: $hot.advice.at($now_ns),
            params: &$hot.cfg.params,
            scope: MarketScope {
                book: Some($book),
                trades: Some($hot.features.trades()),
                orders: Some(&$hot.working.orders),
                account: $hot.working.account,
                tick_size: $filters.tick_size,
                step_size: $filters.step_size,
                exchange_time_ns: $hot.exchange_ns,
                advice_expired: $hot.advice.expired_at($now_ns),
                peers: $hot.peers.as_ref().map(|(board, _)| &**board),
            },
        }
    };
}

mod rehearse;
mod touch_first;

pub use rehearse::KEPT_FRAME;

/// Settings of the hot path.
#[derive(Debug, Clone, Copy)]
pub struct HotConfig {
    /// The traded symbol; `None` trades the first symbol whose depth arrives.
    pub symbol: Option<Symbol>,
    pub sizes: BookSizes,
    pub features: FeatureConfig,
    pub guard: GuardConfig,
    pub params: StrategyParams,
    /// Exchange filters; a zero `tick_size` means "the tick learned from the book".
    pub filters: Filters,
    /// Update-id sanity and the stale rule (`[book] max_id_jump`,
    /// `stale_resync_ms`).
    pub sync: SyncConfig,
    /// Touch-first apply of the traded book's diffs (`[book] touch_first`;
    /// see [`HotPath::set_touch_levels`]).
    pub touch_first: bool,
}

impl Default for HotConfig {
    fn default() -> Self {
        Self {
            symbol: None,
            sizes: BookSizes::default(),
            features: FeatureConfig::default(),
            guard: GuardConfig::default(),
            params: StrategyParams::default(),
            filters: Filters { tick_size: Price(0), step_size: Qty(1), min_qty: Qty(0), min_notional: 0 },
            sync: SyncConfig::default(),
            touch_first: true,
        }
    }
}

/// What the hot path hands on. A quote is the large variant (its ladder's
/// fixed arrays): it is handed to the caller's closure, never boxed, as
/// nothing may allocate here.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub enum HotEvent<'a> {
    /// The traded symbol's book after a depth event.
    Depth { symbol: Symbol, book: &'a Book, time_ns: i64 },
    /// A trade of the traded symbol.
    Trade(Trade),
    /// A new quote for the traded symbol (possibly pulled), the tick it was
    /// rounded to, and the book it was made from (for checks and displays).
    Quote { quote: Quote, tick: Price, synced: bool, best_bid: Option<Level>, best_ask: Option<Level> },
}

/// The stage times of one quote, ns: the sample the hot thread hands to a
/// stats thread so live percentiles never cost the hot thread anything.
/// 64 bits each: a stall of 12 s reads as 12 s (32 bits of ns would stop at
/// 4.29 s, hiding exactly the stalls worth seeing).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StageSample {
    pub tick_to_quote: u64,
    pub parse: u64,
    pub book: u64,
    pub strategy: u64,
    pub quote: u64,
    /// Touch-first only: after the quote, reading the whole diff (ns), then
    /// applying it (ns), and its level count (both sides): the per-level
    /// cost of the full pipeline. Zero when the diff was applied whole
    /// before the quote.
    pub rest_parse: u64,
    pub rest_apply: u64,
    pub levels: u32,
}

impl StageSample {
    /// The stages between the clock readings of one quote: bytes in memory,
    /// parsed, book applied, strategy decided, quote out.
    #[inline(always)]
    pub fn from_ticks(clock: &Clock, t_in: u64, t_parsed: u64, t_book: u64, t_strategy: u64, t_quote: u64) -> Self {
        Self {
            tick_to_quote: clock.ns(t_in, t_quote),
            parse: clock.ns(t_in, t_parsed),
            book: clock.ns(t_parsed, t_book),
            strategy: clock.ns(t_book, t_strategy),
            quote: clock.ns(t_strategy, t_quote),
            rest_parse: 0,
            rest_apply: 0,
            levels: 0,
        }
    }
}

/// Clock readings of one frame up to its book being ready: bytes in
/// memory, parsed, applied (what the quote's stage times are made of).
#[derive(Debug, Clone, Copy)]
struct Ticks {
    t_in: u64,
    t_parsed: u64,
    t_book: u64,
}

/// Own orders as the exchange side last reported them (latest wins).
/// Fixed-size and `Copy`: it crosses threads through a ring.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExecState {
    pub position: Qty,
    /// Working bid and ask: price and remaining size.
    pub bid: Option<Level>,
    pub ask: Option<Level>,
    /// Every working order with its queue estimate and age, for strategies.
    pub orders: OwnOrders,
    /// Average entry, PnL, fees and the last fill's time, for strategies.
    pub account: Account,
}

/// Counters of the hot path beyond the feed's and the guard's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HotStats {
    pub quotes: u64,
    pub pulled: u64,
    /// Quotes pulled because the traded book lost sync (any [`SyncLoss`];
    /// by cause in [`GuardStats::pulled_sync_lost`]).
    pub pulled_on_sync_loss: u64,
    /// Quotes pulled because no depth event arrived for `stale_after`.
    pub pulled_stale: u64,
    /// Events whose exchange time `E` was after our receive time (clock skew).
    pub feed_delay_negative: u64,
    /// Diffs quoted touch-first: the quote made after the levels near the
    /// touch, the rest applied after it.
    pub touch_first: u64,
    /// Levels applied before the quote in those diffs, and levels in them.
    pub touch_levels_before: u64,
    pub touch_levels_total: u64,
    /// Diffs touch-first declined after reading their header (a side not
    /// sorted or not readable by the strict reader, a crossed top, or a
    /// bookTicker for the diff's id that disagrees with the top read):
    /// applied whole before the quote instead.
    pub touch_declined: u64,
    /// Diffs whose levels past the stop reached the top after all (a side
    /// sorted where read but not beyond): quoted again on the whole diff.
    pub touch_requotes: u64,
}

/// The pinned thread's state.
pub struct HotPath<S: Strategy> {
    md: MarketData,
    strategy: S,
    guard: Guard,
    features: FeatureState,
    cfg: HotConfig,
    traded: Option<Symbol>,
    position: Qty,
    advice: Advice,
    last_depth_ns: i64,
    last_features: Option<Features>,
    last_explain: Explain,
    last_decision: Decision,
    last_sample: Option<StageSample>,
    working: ExecState,
    /// Exchange event time `E` of the traded symbol's latest depth event, ns.
    exchange_ns: i64,
    was_synced: bool,
    /// The last quote sent had a side (so a stale book must pull it).
    quoting: bool,
    /// Quoting paused by the operator: every quote is a pull.
    paused: bool,
    clock: Clock,
    hist: StageHistograms,
    stats: HotStats,
    /// Levels a side that must be exact when the strategy decides; 0: every
    /// diff is applied whole before its quote (see [`HotPath::set_touch_levels`]).
    touch_levels: usize,
    /// Levels of the diff being quoted on (whole-diff path), for its sample.
    diff_levels: u32,
    /// The traded stream's level order, as touch-first last found it.
    side_orders: SideOrders,
    /// Touch-first put some of this frame's levels into the traded book and
    /// then left the frame to the whole-diff path: if that path cannot read
    /// the same diff, the book holds part of one and must resync.
    touch_dirty: bool,
    /// The idle rehearsal's memory, when on ([`HotPath::enable_rehearsal`]).
    rehearsal: Option<Box<rehearse::Rehearsal>>,
    /// The peer board of a multi-symbol run and this symbol's slot in it
    /// ([`HotPath::set_peers`]).
    peers: Option<(std::sync::Arc<PeerBoard>, usize)>,
}

impl<S: Strategy> HotPath<S> {
    pub fn new(cfg: HotConfig, strategy: S, clock: Clock) -> Self {
        let symbols: &[Symbol] = match &cfg.symbol {
            Some(s) => std::slice::from_ref(s),
            None => &[],
        };
        Self::with_symbols(cfg, strategy, clock, symbols)
    }

    /// Books for exactly `symbols` (a live feed's subscription), created now;
    /// frames for any other symbol are counted and ignored. Empty: books are
    /// created as symbols appear (recordings).
    pub fn with_symbols(cfg: HotConfig, strategy: S, clock: Clock, symbols: &[Symbol]) -> Self {
        let mut all: Vec<Symbol> = symbols.to_vec();
        if let Some(s) = cfg.symbol {
            if !all.contains(&s) {
                all.insert(0, s);
            }
        }
        let mut md =
            if all.is_empty() { MarketData::new(cfg.sizes) } else { MarketData::with_symbols(cfg.sizes, &all) };
        md.set_ticker_check(TickerCheck::Resync);
        md.set_sync_config(cfg.sync);
        Self {
            md,
            strategy,
            guard: Guard::new(cfg.guard),
            features: FeatureState::new(cfg.features),
            traded: cfg.symbol,
            cfg,
            position: Qty::ZERO,
            advice: Advice::neutral(),
            last_depth_ns: 0,
            last_features: None,
            last_explain: Explain::default(),
            last_decision: Decision::default(),
            last_sample: None,
            working: ExecState::default(),
            exchange_ns: 0,
            was_synced: false,
            quoting: false,
            paused: false,
            clock,
            hist: StageHistograms::new(),
            stats: HotStats::default(),
            diff_levels: 0,
            side_orders: SideOrders::default(),
            touch_dirty: false,
            rehearsal: None,
            peers: None,
            touch_levels: if cfg.touch_first { cfg.features.depth_levels.max(1) } else { 0 },
        }
    }

    pub fn market(&self) -> &MarketData {
        &self.md
    }

    /// Joins a multi-symbol run's peer board as slot `index`: this symbol
    /// publishes its mid and volatility there at each decision, and its
    /// strategy reads the others' ([`MarketScope::peers`]).
    pub fn set_peers(&mut self, board: std::sync::Arc<PeerBoard>, index: usize) {
        self.peers = Some((board, index));
    }

    pub fn market_mut(&mut self) -> &mut MarketData {
        &mut self.md
    }

    /// Id-sanity and liveness limits of every book (default
    /// [`SyncConfig::default`]); call at start-up.
    pub fn set_sync_config(&mut self, cfg: SyncConfig) {
        self.md.set_sync_config(cfg);
    }

    /// What a bookTicker check does; [`TickerCheck::Resync`] unless changed.
    pub fn set_ticker_check(&mut self, check: TickerCheck) {
        self.md.set_ticker_check(check);
    }

    /// Touch-first apply ([`crate::hot::touch`]): a diff of the traded
    /// book that is next in sequence has the levels that can reach its top
    /// `levels` a side applied first; the quote is made on that book and
    /// handed off, and only then is the whole diff read and applied (book
    /// and trade events go out after the quote). The top `levels` a side
    /// are exact when the strategy decides; deeper levels may lack the
    /// current diff until it is finished. 0 applies every diff whole
    /// before its quote: the reference path, and what backtests
    /// use, since their exchange side must see a diff's book before the
    /// quote made from it. Set from `[book] touch_first` at construction
    /// to the features' depth; the strategy's [`Strategy::book_depth`]
    /// raises it per diff (up to [`DECISION_DEPTH`](crate::hot::strategy::DECISION_DEPTH)).
    pub fn set_touch_levels(&mut self, levels: usize) {
        self.touch_levels = levels;
    }

    pub fn touch_levels(&self) -> usize {
        self.touch_levels
    }

    /// The exchange filters quotes are held to on `book`: the configured
    /// ones, with the book's learned tick when the config has none.
    #[inline]
    fn filters_for(&self, book: &Book) -> Filters {
        let mut filters = self.cfg.filters;
        if filters.tick_size.0 == 0 {
            filters.tick_size = book.tick();
        }
        filters
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    pub fn histograms(&self) -> &StageHistograms {
        &self.hist
    }

    /// Keeps the hot path's memory in cache while no frame arrives (a
    /// dedicated core with `poll = "busy"`): reads the books near the touch
    /// and the state the next quote uses, and with the rehearsal on
    /// ([`HotPath::enable_rehearsal`]) runs the latest diff again through
    /// the code the next one will run. Changes nothing. Returns a checksum
    /// so the reads are not optimised away.
    pub fn warm(&mut self) -> u64 {
        let mut sum = self.md.warm();
        sum = sum.wrapping_add(self.working.position.0 as u64);
        sum = sum.wrapping_add(self.features.trades().pushed());
        // Taken out for the call (a pointer move), so it and `self` are
        // borrowed apart.
        if let Some(mut r) = self.rehearsal.take() {
            sum = sum.wrapping_add(self.rehearse(&mut r));
            self.rehearsal = Some(r);
        }
        std::hint::black_box(sum)
    }

    /// Forgets the latency samples so far (after a warm-up).
    pub fn reset_histograms(&mut self) {
        self.hist.reset();
    }

    pub fn stats(&self) -> HotStats {
        self.stats
    }

    pub fn guard_stats(&self) -> GuardStats {
        self.guard.stats()
    }

    pub fn traded_symbol(&self) -> Option<Symbol> {
        self.traded
    }

    pub fn strategy_name(&self) -> &str {
        self.strategy.name()
    }

    /// The strategy itself (for its own counters and errors).
    pub fn strategy(&self) -> &S {
        &self.strategy
    }

    /// The strategy, mutably (tests and tools reading what it noted).
    pub fn strategy_mut(&mut self) -> &mut S {
        &mut self.strategy
    }

    /// Features after the latest depth event of the traded symbol.
    pub fn last_features(&self) -> Option<Features> {
        self.last_features
    }

    pub fn last_explain(&self) -> Explain {
        self.last_explain
    }

    /// What the strategy asked for last, before the guard's rounding and limits.
    pub fn last_decision(&self) -> Decision {
        self.last_decision
    }

    /// Own position as the exchange side last reported it.
    pub fn set_position(&mut self, position: Qty) {
        self.position = position;
    }

    /// Newest advice (latest wins).
    pub fn set_advice(&mut self, advice: Advice) {
        self.advice = advice;
    }

    /// New strategy parameters (latest wins), e.g. from an operator or script thread.
    pub fn set_params(&mut self, params: StrategyParams) {
        self.cfg.params = params;
    }

    pub fn position(&self) -> Qty {
        self.position
    }

    /// Position and working orders from the exchange side (latest wins).
    pub fn set_exec_state(&mut self, state: ExecState) {
        self.position = state.position;
        self.working = state;
    }

    /// Tells the strategy of one own fill (before its next decision).
    #[inline]
    pub fn on_fill(&mut self, fill: &StrategyFill) {
        self.strategy.on_fill(fill);
    }

    /// The advice in force at `now_ns` (neutral once expired).
    pub fn advice_now(&self, now_ns: i64) -> Advice {
        self.advice.at(now_ns)
    }

    /// Pauses quoting (pulling working quotes now) or resumes it (the next
    /// depth event quotes again).
    pub fn set_paused(&mut self, paused: bool, now_ns: i64, out: &mut impl FnMut(HotEvent<'_>)) {
        self.paused = paused;
        if paused {
            self.pull(now_ns, out);
        }
    }

    pub fn paused(&self) -> bool {
        self.paused
    }

    /// Receive time of the traded book's latest depth event, ns (0: none).
    pub fn last_depth_ns(&self) -> i64 {
        self.last_depth_ns
    }

    /// Own orders as last reported by the exchange side.
    pub fn exec_state(&self) -> ExecState {
        ExecState { position: self.position, ..self.working }
    }

    /// Stage times of the latest quote made from a trustworthy book, taken
    /// (so each is handed on once).
    pub fn take_sample(&mut self) -> Option<StageSample> {
        self.last_sample.take()
    }

    /// Call when time passes without frames (a timer on the hot thread):
    /// pulls quotes once the traded book has had no depth event for
    /// `stale_after`. Frames call it themselves.
    #[inline]
    pub fn on_idle(&mut self, now_ns: i64, out: &mut impl FnMut(HotEvent<'_>)) {
        self.md.set_time(now_ns);
        self.pull_if_stale(now_ns, out);
    }

    /// Pulls working quotes once if the traded book has gone stale: trades
    /// may keep arriving while depth has stopped, and resting quotes on a
    /// book nobody updates are exactly what must not be left out.
    fn pull_if_stale(&mut self, now_ns: i64, out: &mut impl FnMut(HotEvent<'_>)) {
        let stale_at = self.last_depth_ns.saturating_add(self.cfg.guard.stale_after_ns);
        if !self.quoting || now_ns <= stale_at {
            return;
        }
        // Stamped when a timer would have fired, so that a backtest (where
        // time moves only with frames) cancels as early as live would.
        if self.pull(stale_at + 1, out) {
            self.stats.pulled_stale += 1;
        }
    }

    /// Pulls working quotes once, stamped `at_ns`, with the traded book as
    /// it is now (after an invalidation: unsynced and empty). True if a pull
    /// went out.
    fn pull(&mut self, at_ns: i64, out: &mut impl FnMut(HotEvent<'_>)) -> bool {
        if !self.quoting {
            return false;
        }
        let Some(symbol) = self.traded else { return false };
        let Some(synced) = self.md.book(symbol) else { return false };
        let book = synced.book();
        self.quoting = false;
        self.stats.quotes += 1;
        self.stats.pulled += 1;
        let tick = if self.cfg.filters.tick_size.0 == 0 { book.tick() } else { self.cfg.filters.tick_size };
        out(HotEvent::Quote {
            quote: Quote::pulled(symbol, at_ns, synced.update_id()),
            tick,
            synced: synced.is_synced(),
            best_bid: book.best_bid(),
            best_ask: book.best_ask(),
        });
        true
    }

    /// Processes one frame. `recv_ns`: its receive time (simulated time in
    /// backtests); `t_in`: clock ticks when its bytes were in memory.
    #[inline]
    pub fn on_frame(&mut self, frame: &[u8], recv_ns: i64, t_in: u64, out: &mut impl FnMut(HotEvent<'_>)) {
        self.on_frame_fed(frame, recv_ns, t_in, out, &mut |_| None);
    }

    /// [`HotPath::on_frame`] where the exchange side runs inline (backtests):
    /// after a depth event has gone to `out` (which may fill orders) and
    /// before the strategy decides, `feed` tells the strategy of the fills
    /// it hears of now (through the sink it is given, which calls
    /// [`Strategy::on_fill`]) and returns the exchange side's state those
    /// fills made (`None`: unchanged), so the quote made in this very frame
    /// sees them.
    #[inline]
    pub fn on_frame_fed(
        &mut self,
        frame: &[u8],
        recv_ns: i64,
        t_in: u64,
        out: &mut impl FnMut(HotEvent<'_>),
        feed: &mut impl FnMut(&mut dyn FnMut(&StrategyFill)) -> Option<ExecState>,
    ) {
        // Before this frame's events go out: a book that went stale since
        // the last depth event is pulled first.
        self.pull_if_stale(recv_ns, out);
        self.md.set_time(recv_ns);
        // Which stream, asked once for the ticker check and touch-first
        // (neither runs in backtests, where the split would be wasted).
        let routed =
            (self.touch_levels > 0 || self.md.ticker_check() != TickerCheck::Off).then(|| route(frame)).flatten();
        if routed.as_ref().is_some_and(|r| self.md.on_ticker_routed(r)) {
            self.after_ticker(recv_ns, out);
            return;
        }
        if self.touch_levels > 0 && self.touch_first(frame, routed.as_ref(), recv_ns, t_in, out) {
            return;
        }
        let msg = self.md.parse(frame);
        if std::mem::take(&mut self.touch_dirty) && !self.same_diff_read(&msg) {
            self.drop_partial_diff(recv_ns, out);
            return;
        }
        let Some(msg) = msg else { return };
        let t_parsed = self.clock.now();
        self.record_feed_delay(&msg, recv_ns);
        if let Msg::Reconnect { .. } = msg {
            // A recorded reconnect: replay it as the live bot lived it.
            self.hist.record(Stage::Parse, self.clock.ns(t_in, t_parsed));
            self.md.apply(msg, &mut |_| {});
            self.on_disconnect(recv_ns, out);
            return;
        }
        self.on_msg(msg, recv_ns, t_in, t_parsed, out, feed);
    }

    /// Applies a REST snapshot body fetched for `symbol` (the live feed's
    /// snapshot thread); quotes follow as for any depth event.
    pub fn on_snapshot(
        &mut self,
        symbol: Symbol,
        body: &[u8],
        recv_ns: i64,
        t_in: u64,
        out: &mut impl FnMut(HotEvent<'_>),
    ) {
        self.pull_if_stale(recv_ns, out);
        self.md.set_time(recv_ns);
        let Some(msg) = self.md.parse(body) else { return };
        let Msg::Snapshot(mut snapshot) = msg else {
            // Not a snapshot body: counted as unrecognised, nothing applied.
            self.md.reject_unrecognised();
            return;
        };
        // REST bodies name no symbol; the feed knows which it asked for.
        snapshot.symbol = symbol;
        let t_parsed = self.clock.now();
        self.on_msg(Msg::Snapshot(snapshot), recv_ns, t_in, t_parsed, out, &mut |_| None);
    }

    /// The feed lost its connection: every book is unusable until resynced,
    /// so working quotes are pulled now.
    pub fn on_disconnect(&mut self, now_ns: i64, out: &mut impl FnMut(HotEvent<'_>)) {
        self.md.set_time(now_ns);
        let symbols = self.md.symbols().count();
        for i in 0..symbols {
            self.md.invalidate_nth(i);
        }
        self.features.reset_mid();
        self.was_synced = false;
        if self.pull(now_ns, out) {
            self.stats.pulled_on_sync_loss += 1;
            self.guard.note_sync_loss(SyncLoss::Reconnect);
        }
    }

    /// `symbol`'s book was rebuilt from the top-20 partial stream while REST
    /// was refused: now that REST answers, it is rebuilt from a full
    /// snapshot (levels beyond 20 were never known). Its quotes are pulled
    /// meanwhile when it is the traded book.
    pub fn refresh_book(&mut self, symbol: Symbol, now_ns: i64, out: &mut impl FnMut(HotEvent<'_>)) {
        self.md.set_time(now_ns);
        let Some(book) = self.md.book_mut(symbol) else { return };
        if !book.is_synced() {
            return;
        }
        book.lose_sync(SyncLoss::Top20Refresh);
        if self.traded == Some(symbol) && self.was_synced {
            self.was_synced = false;
            if self.pull(now_ns, out) {
                self.stats.pulled_on_sync_loss += 1;
                self.guard.note_sync_loss(SyncLoss::Top20Refresh);
            }
        }
    }

    /// After a bookTicker was checked: a mismatch may have made the traded
    /// book unsynced, and then its quotes go now, not at the next diff.
    #[inline]
    fn after_ticker(&mut self, recv_ns: i64, out: &mut impl FnMut(HotEvent<'_>)) {
        if !self.was_synced {
            return;
        }
        let Some(symbol) = self.traded else { return };
        let Some(synced) = self.md.book(symbol) else { return };
        if synced.is_synced() {
            return;
        }
        self.was_synced = false;
        self.features.reset_mid();
        let cause = synced.unsynced_cause().unwrap_or(SyncLoss::TickerMismatch);
        let book = synced.book();
        let tick = if self.cfg.filters.tick_size.0 == 0 { book.tick() } else { self.cfg.filters.tick_size };
        let quote = Quote::pulled(symbol, recv_ns, synced.update_id());
        let (best_bid, best_ask) = (book.best_bid(), book.best_ask());
        self.guard.note_sync_loss(cause);
        self.stats.pulled_on_sync_loss += 1;
        self.stats.quotes += 1;
        self.stats.pulled += 1;
        self.quoting = false;
        out(HotEvent::Quote { quote, tick, synced: false, best_bid, best_ask });
    }

    /// Pulls working quotes (the run is ending); books stay as they are.
    pub fn pull_quotes(&mut self, now_ns: i64, out: &mut impl FnMut(HotEvent<'_>)) {
        self.pull(now_ns, out);
    }

    /// Whether `symbol`'s book waits for a REST snapshot (diffs buffered).
    pub fn wants_snapshot(&self, symbol: Symbol) -> bool {
        self.md.book(symbol).is_some_and(|b| b.wants_snapshot() && b.buffered_len() > 0)
    }

    /// Records the live feed's wire time of a frame.
    #[inline]
    pub fn record_wire(&mut self, ns: u64) {
        self.hist.record(Stage::Wire, ns);
    }

    /// Exchange event time to receive time, for messages that carry `E`.
    #[inline]
    fn record_feed_delay(&mut self, msg: &Msg, recv_ns: i64) {
        let e_ms = match msg {
            Msg::Diff(d) => d.event_time,
            Msg::Partial(p) => p.event_time,
            Msg::Trade(t) => t.event_time,
            Msg::BookTicker(t) => t.event_time,
            _ => 0,
        };
        let depth_of = match msg {
            Msg::Diff(d) => Some(d.symbol),
            Msg::Partial(p) => Some(p.symbol),
            _ => None,
        };
        self.note_exchange_time(e_ms, depth_of, recv_ns);
    }

    /// Notes an event's exchange time `e_ms` (0: none) received at
    /// `recv_ns`; `depth_of`: the book it moves, if a depth event.
    #[inline]
    fn note_exchange_time(&mut self, e_ms: i64, depth_of: Option<Symbol>, recv_ns: i64) {
        if e_ms > 0 && depth_of.is_some_and(|s| self.traded.is_none_or(|t| t == s)) {
            // The exchange's time of the depth event strategies decide on.
            self.exchange_ns = e_ms.saturating_mul(1_000_000);
        }
        if e_ms > 0 {
            let delay = recv_ns.saturating_sub(e_ms.saturating_mul(1_000_000));
            if delay < 0 {
                // This clock is behind the exchange's: counted apart, so the
                // skew shows instead of piling up in the first bucket.
                self.stats.feed_delay_negative += 1;
            } else {
                self.hist.record(Stage::FeedDelay, delay.max(1) as u64);
            }
        }
    }

    /// Applies a parsed message, handing the traded symbol's book updates
    /// and trades on. True if the traded book changed.
    #[inline]
    fn apply_msg(&mut self, msg: Msg, recv_ns: i64, out: &mut impl FnMut(HotEvent<'_>)) -> bool {
        let mut traded = self.traded;
        let mut changed = false;
        let features = &mut self.features;
        self.md.apply(msg, &mut |ev| match ev {
            Event::Depth { symbol, book, .. } => {
                if traded.is_none() {
                    traded = Some(symbol);
                }
                if traded == Some(symbol) {
                    changed = true;
                    out(HotEvent::Depth { symbol, book, time_ns: recv_ns });
                }
            }
            Event::Trade(t) if traded == Some(t.symbol) => {
                features.on_trade(&t, recv_ns);
                out(HotEvent::Trade(t));
            }
            _ => {}
        });
        self.traded = traded;
        changed
    }

    #[inline]
    fn on_msg(
        &mut self,
        msg: Msg,
        recv_ns: i64,
        t_in: u64,
        t_parsed: u64,
        out: &mut impl FnMut(HotEvent<'_>),
        feed: &mut impl FnMut(&mut dyn FnMut(&StrategyFill)) -> Option<ExecState>,
    ) {
        let is_depth = matches!(msg, Msg::Diff(_) | Msg::Partial(_) | Msg::Snapshot(_));
        let is_ticker = matches!(msg, Msg::BookTicker(_));
        if matches!(msg, Msg::Diff(_)) {
            self.diff_levels = (self.md.parser_bids().len() + self.md.parser_asks().len()) as u32;
        }
        let changed = self.apply_msg(msg, recv_ns, out);
        // Fills the depth event just made reach the strategy and the
        // position before the strategy decides on them.
        let strategy = &mut self.strategy;
        if let Some(state) = feed(&mut |f| strategy.on_fill(f)) {
            self.set_exec_state(state);
        }
        if !is_depth {
            self.hist.record(Stage::Parse, self.clock.ns(t_in, t_parsed));
            if is_ticker {
                self.after_ticker(recv_ns, out);
            }
            return;
        }
        let t_book = self.clock.now();
        let Some(symbol) = self.traded else { return };
        self.decide(symbol, recv_ns, Ticks { t_in, t_parsed, t_book }, changed, out);
        self.diff_levels = 0;
    }

    /// The quote for the traded book as it is now: features, strategy,
    /// guard, hand-off; a pull when the book cannot be trusted. `changed`:
    /// the book moved (else only a loss of sync makes a quote). Stage
    /// times are recorded after the quote is out, so recording them costs
    /// the quote nothing.
    #[inline]
    fn decide(
        &mut self,
        symbol: Symbol,
        recv_ns: i64,
        ticks: Ticks,
        changed: bool,
        out: &mut impl FnMut(HotEvent<'_>),
    ) {
        self.decide_at(symbol, None, recv_ns, ticks, changed, out);
    }

    /// [`Self::decide`]; `update_id`: the id the book is at for this quote
    /// when the book does not say it yet (touch-first, before the diff is
    /// finished: its `u`).
    #[inline]
    fn decide_at(
        &mut self,
        symbol: Symbol,
        update_id: Option<u64>,
        recv_ns: i64,
        Ticks { t_in, t_parsed, t_book }: Ticks,
        changed: bool,
        out: &mut impl FnMut(HotEvent<'_>),
    ) {
        let Some(synced) = self.md.book(symbol) else { return };
        let now_synced = synced.is_synced();
        let lost_sync = self.was_synced && !now_synced;
        self.was_synced = now_synced;
        if changed {
            self.last_depth_ns = recv_ns;
        }
        if !changed && !lost_sync {
            self.hist.record(Stage::Parse, self.clock.ns(t_in, t_parsed));
            self.hist.record(Stage::Book, self.clock.ns(t_parsed, t_book));
            return;
        }
        let book = synced.book();
        let health = BookHealth { synced: now_synced, crossed: book.is_crossed(), last_depth_ns: self.last_depth_ns };
        let update_id = update_id.unwrap_or_else(|| synced.update_id());
        let features = if now_synced { self.features.on_book(book, recv_ns, update_id) } else { None };
        if !now_synced {
            self.features.reset_mid();
        }
        if let (Some((board, slot)), Some(f)) = (&self.peers, &features) {
            board.publish(*slot, Peer { mid: f.mid, volatility_bps: f.volatility_bps, time_ns: recv_ns });
        }
        let filters = self.filters_for(book);
        let mut t_strategy = t_book;
        // The strategy call's time, for `after_call` once the quote is out.
        let mut decided = None;
        let quote = match features {
            Some(_) if self.paused => Quote::pulled(symbol, recv_ns, update_id),
            Some(f) => {
                self.last_features = Some(f);
                let input = strategy_input!(self, &f, book, filters, recv_ns);
                let decision = self.strategy.decide(&input);
                t_strategy = self.clock.now();
                decided = Some(self.clock.ns(t_book, t_strategy));
                self.last_explain = decision.explain;
                self.last_decision = decision;
                self.guard.check(symbol, &decision, &f, health, self.position, &filters, recv_ns)
            }
            None => {
                // No trustworthy book (or an empty side): pull.
                if lost_sync {
                    self.stats.pulled_on_sync_loss += 1;
                    self.guard.note_sync_loss(synced.unsynced_cause().unwrap_or(SyncLoss::Gap));
                }
                Quote::pulled(symbol, recv_ns, update_id)
            }
        };
        self.stats.quotes += 1;
        self.stats.pulled += quote.is_pulled() as u64;
        self.quoting = !quote.is_pulled();
        let (best_bid, best_ask) = (book.best_bid(), book.best_ask());
        out(HotEvent::Quote { quote, tick: filters.tick_size, synced: now_synced, best_bid, best_ask });
        let t_quote = self.clock.now();
        // The quote is out: now the bookkeeping.
        let mut sample = StageSample::from_ticks(&self.clock, t_in, t_parsed, t_book, t_strategy, t_quote);
        sample.levels = self.diff_levels;
        self.hist.record(Stage::Parse, sample.parse);
        self.hist.record(Stage::Book, sample.book);
        if let Some(spent) = decided {
            self.hist.record(Stage::Strategy, spent);
        }
        if features.is_some() {
            self.hist.record(Stage::Quote, sample.quote);
            self.hist.record(Stage::TickToQuote, sample.tick_to_quote);
            self.last_sample = Some(sample);
        }
        // What the strategy does with its call's time (a script's budget)
        // costs the quote nothing either.
        if let Some(spent) = decided {
            self.strategy.after_call(spent, recv_ns);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stall_longer_than_32_bits_of_ns_is_recorded_as_it_was() {
        // An `Instant` clock's ticks are ns: a fake clock's readings, 12 s
        // from the bytes arriving to the quote (the strategy stalled).
        let clock = Clock::instant();
        let s = StageSample::from_ticks(&clock, 0, 1_000, 3_000, 11_999_000_000, 12_000_000_000);
        assert_eq!(s.tick_to_quote, 12_000_000_000);
        assert_eq!((s.parse, s.book, s.strategy, s.quote), (1_000, 2_000, 11_998_997_000, 1_000_000));
        assert!(s.tick_to_quote > u64::from(u32::MAX), "above 4.29 s");
        let mut h = StageHistograms::new();
        h.record(Stage::TickToQuote, s.tick_to_quote);
        let max = h.percentiles(Stage::TickToQuote).max;
        // HdrHistogram at 3 significant digits: within 0.1%.
        assert!((max as f64 - 12e9).abs() < 12e6, "{max}");
    }
}

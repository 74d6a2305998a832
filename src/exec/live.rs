//! The live order manager: [`LiveExchange`], the exec-thread counterpart of
//! [`PaperExchange`](crate::exec::paper::PaperExchange) that turns the hot
//! thread's quotes into real `LIMIT_MAKER` orders on Binance spot.
//!
//! It exists so that the exec loop in `runtime.rs` can trade for real with
//! the same hand-offs as paper trading: the latest [`Quote`] in,
//! [`Fill`]s, the working bid/ask and the position out. Everything here runs
//! on the exec thread and may block on REST; nothing runs on the hot thread.
//!
//! # What it guarantees
//!
//! - **One order per side.** A side is kept, replaced (cancelReplace when
//!   the symbol allows it, else cancel then new) or cancelled by the same
//!   refresh rules as paper: price moved by `refresh_ticks` ticks, size
//!   changed, or older than `max_order_age`.
//! - **Checked before sent.** Each order is rounded to the symbol's filters
//!   (bid down, ask up, size down), checked by
//!   [`SymbolRules::check`](crate::exec::binance::SymbolRules::check) and by
//!   [`RiskCheck::check`]; a refusal is counted with its reason and nothing
//!   is sent.
//! - **Unique ids, everything journaled.** Each order gets a fresh client
//!   order id from [`ClientIds`] (per-run prefix). Its first journal row
//!   (`UNKNOWN`, "sending") is queued *before* the request leaves, so a
//!   crash mid-request leaves a row that reconciliation asks about.
//! - **Unknown fate is looked up, never resent.** A 5xx, timeout or
//!   unreadable answer ([`Action::LookUpOrder`]) is followed by a lookup by
//!   client id before anything else; until the lookup answers, the side
//!   stays occupied by that order, so no second order can go out there.
//! - **Fills are durable first.** A fill (from the user-data stream, or
//!   recovered with `myTrades` after a gap) is committed by
//!   [`Journal::record_fill`] before the in-memory [`Position`] sees it; a
//!   fill whose trade id the journal already has is ignored.
//! - **Stopping is cancelling.** An IP ban (418), bad credentials, a journal
//!   that cannot commit a fill, or the [`KillSwitch`] tripping cancels every
//!   open order on the symbol, flushes and closes the journal run, stops the
//!   stream, and refuses every later quote.
//!
//! # Other error actions
//!
//! [`Action::ResyncClockAndRetry`]: measure the clock and retry once.
//! [`Action::Wait`]: send nothing until the wait is over.
//! [`Action::Requote`] (post-only would take): nothing; the next quote
//! decides. [`Action::RefreshBalances`]: read the account. Other refusals
//! count as rejects for the kill switch.
//!
//! # Reconciliation
//!
//! At start, on every (re)subscription of the user-data stream, when the
//! stream's ring overflowed, and every `reconcile_every`: open orders and
//! the account are read over REST. A working order that is no longer open
//! is looked up for its final state, and any quantity filled beyond what we
//! saw is recovered with `myTrades` (the journal drops trades it already
//! has). Open orders we do not know are orphans: cancelled or adopted per
//! `[live] orphans`; ones with this run's own prefix are always adopted.
//!
//! # Wiring into `run_paper`'s exec loop
//!
//! See [`LiveExchange`]'s docs: the methods mirror `PaperExchange`'s.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::exec::binance::errors::{Action, BinanceError};
use crate::exec::binance::filters::SymbolRules;
use crate::exec::binance::keys::Credentials;
use crate::exec::binance::model::{Order, OrderStatus as ExOrderStatus, ReplaceHalf};
use crate::exec::binance::rest::{ClientIds, ClientOrderId, OrderRef, ReplaceMode, RestClient, RestConfig};
use crate::exec::journal::{
    FillOutcome, FillRecord, Journal, JournalError, OrderEvent, OrderStatus, PnlSnapshot, RunId, RunInfo, RunMode,
};
use crate::exec::live_config::{LiveConfig, OrphanPolicy};
use crate::exec::paper::{WorkingOrder, QUEUE_UNKNOWN};
use crate::exec::position::Position;
use crate::exec::risk::{Balance, KillReason, KillSwitch, OrderRequest, RiskCheck, RiskCounters};
use crate::exec::userdata::{ExecType, ExecutionReport, ReportStatus, UserDataError, UserDataStream, UserEvent};
use crate::exec::{Fill, Quote, Side};
use crate::hot::advice::Advice;
use crate::hot::book::BookView;
use crate::hot::fixed::{notional_ceil, Price, Qty};
use crate::hot::msg::{Level, Symbol, Trade};

/// What [`LiveExchange::start`] needs besides the config: the REST client,
/// the credentials for the user-data stream (a second copy: the stream
/// thread signs its own subscriptions), the journal, the pre-trade checks
/// and the kill switch.
pub struct LiveParts {
    pub rest: RestClient,
    pub stream_creds: Credentials,
    pub journal: Journal,
    pub risk: RiskCheck,
    pub kill: KillSwitch,
}

/// Why the order manager could not start.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    #[error("live trading: {0}")]
    Binance(#[from] BinanceError),
    #[error("live trading: {0}")]
    Journal(#[from] JournalError),
    #[error("live trading: {0}")]
    UserData(#[from] UserDataError),
    #[error("live trading: {0}")]
    Setup(String),
}

/// Why trading stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// The kill switch tripped.
    Kill(KillReason),
    /// HTTP 418 / 403: the exchange refuses us; a person has to look.
    Banned,
    /// The API key or signature was refused.
    Credentials,
    /// A fill could not be committed to the journal.
    Journal,
    /// [`LiveExchange::stop`] was called.
    Requested,
}

impl std::fmt::Display for StopReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StopReason::Kill(r) => write!(f, "killed: {r}"),
            StopReason::Banned => f.write_str("stopped: the exchange refuses us (418/403)"),
            StopReason::Credentials => f.write_str("stopped: credentials refused"),
            StopReason::Journal => f.write_str("stopped: a fill could not be journaled"),
            StopReason::Requested => f.write_str("ok"),
        }
    }
}

/// Counters of the order manager.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LiveStats {
    pub quotes: u64,
    /// New orders sent (cancelReplace's new half included).
    pub orders: u64,
    pub cancels: u64,
    /// Of `orders`, sent as cancelReplace.
    pub replaces: u64,
    pub fills: u64,
    pub duplicate_fills: u64,
    /// Orders refused by the symbol's filters (never sent).
    pub refused_by_filter: u64,
    /// Orders refused by the pre-trade checks (never sent); per reason in
    /// [`LiveExchange::risk_counters`].
    pub refused_by_risk: u64,
    /// The last refusal, in words.
    pub last_refusal: Option<String>,
    /// Requests refused by the exchange (would-take included).
    pub rejected: u64,
    pub would_take: u64,
    /// Unknown fates settled by a lookup, and how they turned out.
    pub lookups: u64,
    pub lookups_found: u64,
    pub lookups_absent: u64,
    pub clock_resyncs: u64,
    pub waits: u64,
    pub balance_refreshes: u64,
    pub reconciles: u64,
    pub resubscribes: u64,
    pub orphans_canceled: u64,
    pub orphans_adopted: u64,
    /// Fills recovered over REST that the stream had not delivered.
    pub fills_recovered: u64,
    /// Dry run: orders the exchange checked with `order/test` (never
    /// placed); `orders` counts them too.
    pub dry_run_tested: u64,
    /// Times a stop waited for an IP ban to lift before cancelling.
    pub ban_waits: u64,
    /// Orders of this run that a stop could not cancel (an IP ban longer
    /// than `ban_wait_max`, or the exchange unreachable): they may still
    /// rest, and the next start reconciles them.
    pub left_open: u64,
    pub last_error: Option<String>,
}

/// One working order as the manager tracks it.
#[derive(Debug, Clone)]
struct LiveOrder {
    client_id: String,
    /// 0 until the exchange has confirmed the order.
    order_id: u64,
    side: Side,
    price: Price,
    orig_qty: Qty,
    filled: Qty,
    since: Instant,
    since_ns: i64,
    /// False while its fate is unknown (lookup pending).
    known: bool,
}

impl LiveOrder {
    /// An order the exchange has not confirmed (order id 0), sent now;
    /// `known` false while its fate is unknown.
    fn unconfirmed(id: &ClientOrderId, side: Side, price: Price, qty: Qty, known: bool) -> Self {
        Self {
            client_id: id.as_str().to_string(),
            order_id: 0,
            side,
            price,
            orig_qty: qty,
            filled: Qty::ZERO,
            since: Instant::now(),
            since_ns: wall_ns(),
            known,
        }
    }

    fn remaining(&self) -> Qty {
        Qty((self.orig_qty.0 - self.filled.0).max(0))
    }
}

const BID: usize = 0;
const ASK: usize = 1;

/// How many earlier runs' journal entries are reconciled at start.
const EARLIER_RUNS: i64 = 50;

fn slot_of(side: Side) -> usize {
    match side {
        Side::Buy => BID,
        Side::Sell => ASK,
    }
}

fn wall_ns() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as i64)
}

/// The live order manager for one symbol. Methods mirror
/// [`PaperExchange`](crate::exec::paper::PaperExchange) so the exec loop of
/// `runtime::run_paper` can drive it.
///
/// # Wiring (for the `--live` flag)
///
/// 1. Before spawning the exec thread (start-up may fail; report it with
///    `anyhow`): `LiveConfig` from `[live]`, `Credentials::load(".env")`
///    twice (REST and stream), `RestClient::new(&RestConfig { base_url:
///    cfg.rest_url, recv_window: cfg.recv_window, ..RestConfig::mainnet() },
///    creds)`, `Journal::open(&cfg.journal)`, `RiskCheck::new(cfg.limits,
///    base, quote, maker_fee, now)` (base/quote from the symbol; balances are
///    loaded by `start`), `KillSwitch::new(..)`, then
///    `LiveExchange::start(&cfg, symbol, LiveParts { .. })`.
/// 2. In the exec loop, replace `Option<PaperExchange>` by the started
///    `LiveExchange` (move it into the thread; it is `Send`):
///    `ToExec::Book` -> `ex.on_book(&top, time_ns, &mut |f| fills.push(f))`,
///    `ToExec::Trade` -> `ex.on_trade(&trade, time_ns, ..)`, the latest
///    quote -> `ex.on_quote(&q, tick, q.time_ns)`, and when idle call
///    `ex.poll(&mut |f| fills.push(f))` (it must be called even when no
///    market data arrives: fills and reconciliation happen there). Fills
///    reach the sink only after the journal committed them; apply them to
///    the loop's `Position` as now (or use `ex.position()`).
/// 3. `ExecState` is built exactly as for paper: `working_bid()` /
///    `working_ask()` return the same `WorkingOrder` type. `ExecStatus`
///    reads `stats()` (a `&LiveStats` with the same `fills`, `orders` and
///    `cancels` fields as `PaperStats`).
/// 4. Leave the loop when `ex.stopped()` is `Some` (say why), and on the
///    way out (or on SIGINT: `ex.kill_switch().on_signal(now)`) call
///    `ex.stop()`, which cancels every order and closes the journal run.
///    Feed staleness goes to `ex.kill_switch().on_feed(..)`.
pub struct LiveExchange {
    cfg: LiveConfig,
    symbol: Symbol,
    rules: SymbolRules,
    rest: RestClient,
    journal: Journal,
    run: RunId,
    risk: RiskCheck,
    kill: KillSwitch,
    ids: ClientIds,
    stream: Option<UserDataStream>,
    /// The measured clock offset, shared with the stream's thread (its
    /// subscriptions are signed with timestamps too).
    clock_offset: Arc<AtomicI64>,
    stream_dropped: u64,
    sides: [Option<LiveOrder>; 2],
    position: Position,
    /// The position earlier runs left (from the journal), before any fill
    /// of this run.
    carried: Position,
    /// Fills committed but not yet handed to a sink.
    pending_fills: Vec<Fill>,
    last_mid: Option<Price>,
    last_reconcile: Instant,
    last_pnl_snapshot: Instant,
    /// Send nothing before this (rate limits).
    wait_until: Option<Instant>,
    /// Next retry of a pending unknown-fate lookup.
    next_lookup: Instant,
    stopped: Option<StopReason>,
    stats: LiveStats,
}

impl std::fmt::Debug for LiveExchange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveExchange")
            .field("symbol", &self.symbol)
            .field("run", &self.run)
            .field("sides", &self.sides)
            .field("position", &self.position)
            .field("stopped", &self.stopped)
            .finish()
    }
}

impl LiveExchange {
    /// Everything `mmbot run --live` needs, from the config and the keys:
    /// the REST client (base URL, `recvWindow`, timeout from `[live]`), the
    /// symbol's assets and the account's maker fee for the pre-trade
    /// checks, the kill switch, the journal; then [`LiveExchange::start`].
    /// `stream_creds` is a second copy of the keys for the user-data
    /// stream's thread.
    pub fn open(
        cfg: &LiveConfig,
        symbol: Symbol,
        rest_creds: Credentials,
        stream_creds: Credentials,
    ) -> Result<Self, LiveError> {
        let rc = RestConfig {
            base_url: cfg.rest_url.clone(),
            recv_window: cfg.recv_window,
            timeout: cfg.timeout,
            ..RestConfig::with_base(&cfg.rest_url)
        };
        let mut rest = RestClient::new(&rc, rest_creds)?;
        rest.sync_clock()?;
        let name = symbol.as_str().to_string();
        let info = rest.exchange_info(&name)?;
        let rules = info.symbol(&name).cloned().ok_or_else(|| {
            LiveError::Setup(format!("the exchange does not list {name}: check the symbol (e.g. BTCUSDT)"))
        })?;
        if !rules.limit_maker_allowed {
            return Err(LiveError::Setup(format!(
                "{name} does not take LIMIT_MAKER orders, and mmbot only sends post-only orders"
            )));
        }
        let account = rest.account()?;
        if !account.can_trade {
            return Err(LiveError::Setup(
                "the account may not trade (canTrade is false): enable spot trading for this API key".into(),
            ));
        }
        let risk =
            RiskCheck::new(cfg.limits, &rules.base_asset, &rules.quote_asset, account.commission.maker, wall_ns())
                .map_err(|e| LiveError::Setup(e.to_string()))?;
        let journal = Journal::open(&cfg.journal)?;
        let kill = KillSwitch::new(cfg.kill);
        Self::start(cfg, symbol, LiveParts { rest, stream_creds, journal, risk, kill })
    }

    /// Syncs the clock, loads the symbol's rules and the account, starts a
    /// journal run, starts the user-data stream and reconciles the
    /// exchange's open orders (orphans per `[live] orphans`).
    pub fn start(cfg: &LiveConfig, symbol: Symbol, parts: LiveParts) -> Result<Self, LiveError> {
        let LiveParts { mut rest, stream_creds, journal, risk, kill } = parts;
        let name = symbol.as_str().to_string();
        if name.is_empty() {
            return Err(LiveError::Setup("no symbol to trade".into()));
        }
        rest.set_recv_window(cfg.recv_window)?;
        rest.sync_clock()?;
        let info = rest.exchange_info(&name)?;
        let rules = info
            .symbol(&name)
            .cloned()
            .ok_or_else(|| LiveError::Setup(format!("exchangeInfo has no rules for {name}")))?;
        // The configured base plus the start time in base 36: ids stay
        // unique across restarts even with a fixed base (the counter
        // restarts at 1 every run).
        let clock = ClientIds::prefix_from_clock();
        let base = cfg.run_prefix.as_deref().unwrap_or("mm");
        let ids = ClientIds::new(&format!("{base}{}", clock.trim_start_matches("mm")))?;
        let run = journal.start_run(RunInfo {
            // A dry run trades nothing: the journal files it with paper runs.
            mode: if cfg.dry_run { RunMode::Paper } else { cfg.mode },
            symbols: vec![name.clone()],
            config_hash: config_hash(cfg),
            started_ns: wall_ns(),
        })?;
        let clock_offset = Arc::new(AtomicI64::new(rest.clock_offset_ms()));
        let stream = UserDataStream::start(&cfg.ws_api_url, stream_creds, cfg.recv_window, clock_offset.clone())?;
        let mut ex = Self {
            cfg: cfg.clone(),
            symbol,
            rules,
            rest,
            journal,
            run,
            risk,
            kill,
            ids,
            stream: Some(stream),
            clock_offset,
            stream_dropped: 0,
            sides: [None, None],
            position: Position::new(),
            carried: Position::new(),
            pending_fills: Vec::with_capacity(64),
            last_mid: None,
            last_reconcile: Instant::now(),
            last_pnl_snapshot: Instant::now(),
            wait_until: None,
            next_lookup: Instant::now(),
            stopped: None,
            stats: LiveStats::default(),
        };
        // The position carries over: every fill earlier runs journaled for
        // this symbol, so the limits count inventory a previous run left.
        let name_asset = ex.rules.quote_asset.clone();
        for f in ex.journal.fills(symbol)? {
            ex.position.on_fill(&f.to_fill(&ex.rules.base_asset, &name_asset));
        }
        ex.carried = ex.position;
        ex.risk.set_position(ex.position.qty());
        ex.refresh_account()?;
        ex.reconcile_orders()?;
        ex.reconcile_journal()?;
        Ok(ex)
    }

    pub fn symbol(&self) -> Symbol {
        self.symbol
    }

    pub fn run_id(&self) -> RunId {
        self.run
    }

    /// Orders go to `order/test` only ([`LiveConfig::dry_run`]).
    pub fn dry_run(&self) -> bool {
        self.cfg.dry_run
    }

    pub fn rules(&self) -> &SymbolRules {
        &self.rules
    }

    /// The journal (for reports and checks; the manager writes it).
    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    /// The kill switch, for the caller's own reasons (signal, stale feed).
    /// A trip is acted on at the next `poll`/`on_quote`.
    pub fn kill_switch(&mut self) -> &mut KillSwitch {
        &mut self.kill
    }

    pub fn risk_counters(&self) -> RiskCounters {
        self.risk.counters()
    }

    pub fn stats(&self) -> &LiveStats {
        &self.stats
    }

    /// Position built from journaled fills only, earlier runs' included.
    pub fn position(&self) -> &Position {
        &self.position
    }

    /// The position earlier runs left, from the journal: where this run's
    /// position starts (fills this run hands to a sink come on top).
    pub fn carried_position(&self) -> &Position {
        &self.carried
    }

    /// `Some` once trading has stopped (and everything was cancelled).
    pub fn stopped(&self) -> Option<StopReason> {
        self.stopped
    }

    /// The user-data stream's counters.
    pub fn stream_stats(&self) -> Option<crate::exec::userdata::StreamStats> {
        self.stream.as_ref().map(|s| s.stats())
    }

    /// The working bid, as paper reports it (`qty` = remaining).
    pub fn working_bid(&self) -> Option<WorkingOrder> {
        self.sides[BID].as_ref().map(working)
    }

    /// The working ask.
    pub fn working_ask(&self) -> Option<WorkingOrder> {
        self.sides[ASK].as_ref().map(working)
    }

    /// The prefix of this run's client order ids (`{prefix}-{n}`).
    pub fn client_prefix(&self) -> &str {
        self.ids.prefix()
    }

    /// The client order id of the working order on `side`.
    pub fn working_client_id(&self, side: Side) -> Option<&str> {
        self.sides[slot_of(side)].as_ref().map(|o| o.client_id.as_str())
    }

    /// Waits (up to `timeout`) until the user-data stream has subscribed
    /// at least `generation` times; for start-up and tests.
    pub fn wait_subscribed(&mut self, generation: u64, timeout: Duration) -> bool {
        let end = Instant::now() + timeout;
        loop {
            self.service();
            if self.stream.as_ref().is_some_and(|s| s.stats().subscriptions >= generation) {
                self.service();
                return true;
            }
            if Instant::now() >= end {
                return false;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Takes the latest desired quote (same contract as paper's): keeps,
    /// replaces or cancels each side. `tick` is the refresh grid (the
    /// symbol's tick when 0); `now_ns` is unused (live ages orders by the
    /// wall clock) and kept for the drop-in signature.
    pub fn on_quote(&mut self, q: &Quote, tick: Price, _now_ns: i64) {
        self.service();
        if self.stopped.is_some() || (!q.symbol.is_empty() && q.symbol != self.symbol) {
            return;
        }
        self.stats.quotes += 1;
        if self.wait_until.is_some_and(|t| Instant::now() < t) {
            return;
        }
        let tick = if tick.0 > 0 { tick } else { self.rules.price.tick };
        self.quote_side(Side::Buy, q.bid, tick);
        if self.stopped.is_none() {
            self.quote_side(Side::Sell, q.ask, tick);
        }
    }

    /// A book update: remembers the mid (for PnL and the loss limit), then
    /// [`LiveExchange::poll`]s.
    pub fn on_book(&mut self, book: &impl BookView, _now_ns: i64, sink: &mut impl FnMut(Fill)) {
        if let (Some(b), Some(a)) = (book.best_bid(), book.best_ask()) {
            self.last_mid = Some(Price((b.price.0 + a.price.0) / 2));
        }
        self.poll(sink);
    }

    /// A public trade: nothing to simulate live; [`LiveExchange::poll`]s.
    pub fn on_trade(&mut self, _t: &Trade, _now_ns: i64, sink: &mut impl FnMut(Fill)) {
        self.poll(sink);
    }

    /// Journals a piece of advice the hot path took (queued, never waits).
    pub fn on_advice(&mut self, advice: &Advice) {
        if let Err(e) = self.journal.record_advice(self.run, advice, None) {
            self.stats.last_error = Some(e.to_string());
        }
    }

    /// Time passes: handles stream events and timers (fills are kept for
    /// the next call with a sink).
    pub fn on_time(&mut self, _now_ns: i64) {
        self.service();
    }

    /// Handles what arrived on the user-data stream, runs due
    /// reconciliations and the kill switch, and hands committed fills to
    /// `sink`.
    pub fn poll(&mut self, sink: &mut impl FnMut(Fill)) {
        self.service();
        for f in self.pending_fills.drain(..) {
            sink(f);
        }
    }

    /// Stops trading: cancels every open order on the symbol, closes the
    /// journal run and the stream. Idempotent.
    pub fn stop(&mut self) {
        self.shutdown(StopReason::Requested);
    }

    // ----------------------------------------------------------------------
    // Quoting

    fn quote_side(&mut self, side: Side, want: Option<Level>, tick: Price) {
        let s = slot_of(side);
        let want = want.filter(|l| l.price.0 > 0 && l.qty.0 > 0);
        let Some(want) = want else {
            // A cancel by client id is safe even while the order's fate is
            // unknown: an order that does not exist answers -2011.
            if self.sides[s].is_some() {
                self.cancel(s, "quote pulled");
            }
            return;
        };
        // A side whose order's fate is unknown is busy until the lookup
        // answers: sending anything else there could double it.
        if self.sides[s].as_ref().is_some_and(|o| !o.known) {
            self.settle_pending_lookups();
            if self.sides[s].as_ref().is_some_and(|o| !o.known) {
                return;
            }
        }
        let price = match side {
            Side::Buy => self.rules.floor_price(want.price),
            Side::Sell => self.rules.ceil_price(want.price),
        };
        let qty = self.rules.floor_qty(want.qty);
        if let Some(o) = &self.sides[s] {
            if !self.needs_replace(o, price, qty, tick) {
                return;
            }
        }
        if !self.admit(side, price, qty) {
            // Not allowed to send what is wanted: the old order is not
            // wanted either.
            if self.sides[s].is_some() {
                self.cancel(s, "replacement refused before sending");
            }
            return;
        }
        if self.sides[s].is_some() {
            if self.rules.cancel_replace_allowed {
                self.cancel_replace(s, side, price, qty);
            } else {
                self.cancel(s, "replace");
                if self.sides[s].is_none() && self.stopped.is_none() {
                    self.send_new(s, side, price, qty);
                }
            }
        } else {
            self.send_new(s, side, price, qty);
        }
    }

    /// Paper's refresh rule, on the rounded price and size.
    fn needs_replace(&self, o: &LiveOrder, price: Price, qty: Qty, tick: Price) -> bool {
        let moved = (price.0 - o.price.0).abs();
        let tolerance = self.cfg.refresh_ticks.saturating_mul(tick.0);
        (moved != 0 && moved >= tolerance) || qty != o.orig_qty || o.since.elapsed() > self.cfg.max_order_age
    }

    /// The filters, then the pre-trade checks, with the side's current
    /// order counted as gone (it is being replaced).
    fn admit(&mut self, side: Side, price: Price, qty: Qty) -> bool {
        if let Err(v) = self.rules.check(side, price, qty) {
            self.stats.refused_by_filter += 1;
            self.stats.last_refusal = Some(v.to_string());
            return false;
        }
        let s = slot_of(side);
        let others = self.sides.iter().enumerate().filter(|(i, o)| *i != s && o.is_some()).count() as u32;
        self.risk.set_open_orders(others);
        self.risk.set_position(self.position.qty());
        // The replaced order's locked funds come back when it is cancelled.
        let (asset, back) = self.locked_by(s);
        let before = self.risk.balances().get(&asset);
        if back > 0 {
            self.risk.set_balance(&asset, Balance { free: before.free.saturating_add(back), ..before });
        }
        let r = self.risk.check(&OrderRequest { side, price, qty, time_ns: wall_ns() });
        if back > 0 {
            self.risk.set_balance(&asset, before);
        }
        match r {
            Ok(()) => true,
            Err(refusal) => {
                self.stats.refused_by_risk += 1;
                self.stats.last_refusal = Some(refusal.to_string());
                false
            }
        }
    }

    /// The asset and amount the order on slot `s` holds locked.
    fn locked_by(&self, s: usize) -> (String, i64) {
        match &self.sides[s] {
            Some(o) => self.lock_of(o.side, o.price, o.remaining()),
            None => (String::new(), 0),
        }
    }

    fn lock_of(&self, side: Side, price: Price, qty: Qty) -> (String, i64) {
        match side {
            Side::Buy => (self.rules.quote_asset.clone(), notional_ceil(price.0, qty.0)),
            Side::Sell => (self.rules.base_asset.clone(), qty.0),
        }
    }

    /// Moves `amount` of `asset` between free and locked in the risk
    /// check's copy of the balances, so the other side's check is right
    /// before the account is read again.
    fn lock(&mut self, (asset, amount): (String, i64), lock: bool) {
        if asset.is_empty() || amount == 0 {
            return;
        }
        let b = self.risk.balances().get(&asset);
        let d = if lock { amount } else { -amount };
        self.risk.set_balance(&asset, Balance { free: b.free.saturating_sub(d), locked: b.locked.saturating_add(d) });
    }

    fn send_new(&mut self, s: usize, side: Side, price: Price, qty: Qty) {
        if self.cfg.dry_run {
            self.test_new(s, side, price, qty);
            return;
        }
        let id = self.ids.next();
        self.record(&id, None, side, price, qty, Qty::ZERO, OrderStatus::Unknown, Some("sending".into()));
        self.stats.orders += 1;
        let mut resynced = false;
        loop {
            let name = self.symbol.as_str().to_string();
            match self.rest.new_limit_maker(&name, side, price, qty, &id) {
                Ok(o) => {
                    self.apply_order_answer(s, &id, &o, "placed");
                    return;
                }
                Err(e) => match e.action() {
                    Action::ResyncClockAndRetry if !resynced => {
                        resynced = true;
                        if !self.resync_clock() {
                            self.refused(&id, side, price, qty, &e);
                            return;
                        }
                    }
                    Action::LookUpOrder => {
                        // Occupy the side before looking: whatever the
                        // lookup says, no second order goes out meanwhile.
                        self.sides[s] = Some(LiveOrder::unconfirmed(&id, side, price, qty, false));
                        self.note_error(&e);
                        self.settle_unknown(s);
                        return;
                    }
                    _ => {
                        self.refused(&id, side, price, qty, &e);
                        self.act(&e);
                        return;
                    }
                },
            }
        }
    }

    /// Dry run: the exchange checks the order (`order/test`) and nothing is
    /// placed. The side then holds it as if it rested, so the refresh rules
    /// pace the checks exactly as they would pace real orders; fills never
    /// come, and nothing is journaled as an order.
    fn test_new(&mut self, s: usize, side: Side, price: Price, qty: Qty) {
        let id = self.ids.next();
        self.stats.orders += 1;
        let name = self.symbol.as_str().to_string();
        let mut resynced = false;
        loop {
            match self.rest.test_order(&name, side, price, qty, &id) {
                Ok(()) => {
                    self.stats.dry_run_tested += 1;
                    self.sides[s] = Some(LiveOrder::unconfirmed(&id, side, price, qty, true));
                    return;
                }
                Err(e) => match e.action() {
                    Action::ResyncClockAndRetry if !resynced => {
                        resynced = true;
                        if !self.resync_clock() {
                            return;
                        }
                    }
                    _ => {
                        self.stats.rejected += 1;
                        if e.action() == Action::Requote {
                            self.stats.would_take += 1;
                        }
                        self.note_error(&e);
                        self.act(&e);
                        return;
                    }
                },
            }
        }
    }

    /// An order answer from placing (or a lookup): track it if open,
    /// journal its state.
    fn apply_order_answer(&mut self, s: usize, id: &ClientOrderId, o: &Order, why: &str) {
        let status = journal_status(&o.status);
        let open = o.status.is_open();
        self.record(id, Some(o.order_id), o.side, o.price, o.orig_qty, o.executed_qty, status, Some(why.into()));
        if open {
            let lo = LiveOrder {
                client_id: id.as_str().to_string(),
                order_id: o.order_id,
                side: o.side,
                price: o.price,
                orig_qty: o.orig_qty,
                filled: o.executed_qty,
                since: Instant::now(),
                since_ns: wall_ns(),
                known: true,
            };
            self.lock(self.lock_of(lo.side, lo.price, lo.remaining()), true);
            self.sides[s] = Some(lo);
        } else {
            self.sides[s] = None;
        }
    }

    /// Looks up the unknown-fate order on slot `s` by client id.
    fn settle_unknown(&mut self, s: usize) {
        let Some(o) = self.sides[s].clone() else { return };
        self.stats.lookups += 1;
        let name = self.symbol.as_str().to_string();
        match self.rest.query_order_by_client_id(&name, &o.client_id) {
            Ok(found) => {
                self.stats.lookups_found += 1;
                let id = ClientOrderId::new(&o.client_id).unwrap_or_else(|_| self.ids.next());
                self.sides[s] = None;
                self.apply_order_answer(s, &id, &found, "found by lookup after an unknown fate");
            }
            Err(BinanceError::UnknownOrder { .. }) => {
                self.stats.lookups_absent += 1;
                self.sides[s] = None;
                self.record_raw(
                    &o.client_id,
                    None,
                    o.side,
                    o.price,
                    o.orig_qty,
                    Qty::ZERO,
                    OrderStatus::Rejected,
                    Some("not placed (lookup after an unknown fate: order does not exist)".into()),
                );
            }
            Err(e) => {
                // Still unknown: keep the side busy and ask again later.
                self.note_error(&e);
                self.next_lookup = Instant::now() + Duration::from_millis(250);
            }
        }
    }

    fn settle_pending_lookups(&mut self) {
        if Instant::now() < self.next_lookup {
            return;
        }
        for s in [BID, ASK] {
            if self.sides[s].as_ref().is_some_and(|o| !o.known) {
                self.settle_unknown(s);
            }
        }
    }

    fn cancel(&mut self, s: usize, why: &str) {
        if self.cfg.dry_run {
            // Nothing rests: forget the checked order.
            self.sides[s] = None;
            return;
        }
        let Some(o) = self.sides[s].clone() else { return };
        self.stats.cancels += 1;
        let name = self.symbol.as_str().to_string();
        let mut resynced = false;
        loop {
            let r = if o.order_id > 0 {
                self.rest.cancel(&name, OrderRef::OrderId(o.order_id))
            } else {
                self.rest.cancel(&name, OrderRef::ClientId(&o.client_id))
            };
            match r {
                Ok(c) => {
                    self.lock(self.lock_of(o.side, o.price, o.remaining()), false);
                    self.sides[s] = None;
                    let filled = c.executed_qty.max(o.filled);
                    self.record_raw(
                        &o.client_id,
                        Some(c.order_id),
                        o.side,
                        o.price,
                        o.orig_qty,
                        filled,
                        OrderStatus::Canceled,
                        Some(format!("cancel: {why}")),
                    );
                    if c.executed_qty > o.filled {
                        self.recover_fills(c.order_id, &o.client_id);
                    }
                    return;
                }
                Err(e) => match e.action() {
                    Action::ResyncClockAndRetry if !resynced => {
                        resynced = true;
                        if !self.resync_clock() {
                            self.note_error(&e);
                            return;
                        }
                    }
                    // Not open any more (filled or gone), or not known
                    // whether the cancel landed: ask for its state.
                    Action::ForgetOrder | Action::LookUpOrder => {
                        self.note_error(&e);
                        self.settle_gone(s);
                        return;
                    }
                    _ => {
                        self.note_error(&e);
                        self.act(&e);
                        return;
                    }
                },
            }
        }
    }

    fn cancel_replace(&mut self, s: usize, side: Side, price: Price, qty: Qty) {
        if self.cfg.dry_run {
            self.sides[s] = None;
            self.test_new(s, side, price, qty);
            return;
        }
        let Some(old) = self.sides[s].clone() else { return };
        let id = self.ids.next();
        self.record(&id, None, side, price, qty, Qty::ZERO, OrderStatus::Unknown, Some("sending (replace)".into()));
        self.stats.orders += 1;
        self.stats.replaces += 1;
        self.stats.cancels += 1;
        let name = self.symbol.as_str().to_string();
        let mut resynced = false;
        loop {
            let r = self.rest.cancel_replace(
                &name,
                OrderRef::OrderId(old.order_id),
                side,
                price,
                qty,
                &id,
                ReplaceMode::StopOnFailure,
            );
            match r {
                Ok(rep) => {
                    self.old_canceled(s, &old, &rep.canceled);
                    self.apply_order_answer(s, &id, &rep.placed, "placed (replace)");
                    return;
                }
                Err(e) => {
                    let action = e.action();
                    match (&e, action) {
                        (_, Action::ResyncClockAndRetry) if !resynced => {
                            resynced = true;
                            if !self.resync_clock() {
                                self.refused(&id, side, price, qty, &e);
                                return;
                            }
                        }
                        (BinanceError::ReplacePartial { halves, .. }, _) => {
                            match &halves.cancel {
                                ReplaceHalf::Success(c) => self.old_canceled(s, &old, c),
                                _ => self.settle_gone(s),
                            }
                            match &halves.new_order {
                                ReplaceHalf::Success(n) => {
                                    let n = n.clone();
                                    if self.sides[s].is_some() {
                                        // Both would rest: keep the side single.
                                        self.record_raw(
                                            id.as_str(),
                                            Some(n.order_id),
                                            side,
                                            price,
                                            qty,
                                            Qty::ZERO,
                                            OrderStatus::New,
                                            None,
                                        );
                                        self.cancel_extra(n.order_id, id.as_str());
                                    } else {
                                        self.apply_order_answer(s, &id, &n, "placed (replace, partial)");
                                    }
                                }
                                ReplaceHalf::Failure { code, msg } => {
                                    if *code == -2010 && msg.contains("would immediately match") {
                                        self.stats.would_take += 1;
                                    }
                                    self.stats.rejected += 1;
                                    self.record_raw(
                                        id.as_str(),
                                        None,
                                        side,
                                        price,
                                        qty,
                                        Qty::ZERO,
                                        OrderStatus::Rejected,
                                        Some(format!("replace: new order refused ({code} {msg})")),
                                    );
                                }
                                ReplaceHalf::NotAttempted => {
                                    self.record_raw(
                                        id.as_str(),
                                        None,
                                        side,
                                        price,
                                        qty,
                                        Qty::ZERO,
                                        OrderStatus::Rejected,
                                        Some("replace: new order not attempted".into()),
                                    );
                                }
                            }
                            return;
                        }
                        (_, Action::LookUpOrder) => {
                            // Either half may have happened: settle the old
                            // order, then look the new one up before any
                            // other request on this side.
                            self.note_error(&e);
                            self.settle_gone(s);
                            if self.sides[s].is_none() {
                                self.sides[s] = Some(LiveOrder::unconfirmed(&id, side, price, qty, false));
                                self.settle_unknown(s);
                            } else {
                                // The old order is still open, so the
                                // request failed as a whole (STOP_ON_FAILURE).
                                self.record_raw(
                                    id.as_str(),
                                    None,
                                    side,
                                    price,
                                    qty,
                                    Qty::ZERO,
                                    OrderStatus::Rejected,
                                    Some("replace: not done (old order still open)".into()),
                                );
                            }
                            return;
                        }
                        (_, Action::ForgetOrder) => {
                            // The old order was already gone: nothing placed.
                            self.refused(&id, side, price, qty, &e);
                            self.settle_gone(s);
                            return;
                        }
                        _ => {
                            self.refused(&id, side, price, qty, &e);
                            self.act(&e);
                            return;
                        }
                    }
                }
            }
        }
    }

    /// Cancels an order placed on a side that already has one (a partial
    /// cancelReplace), journaling how it ended. If the cancel fails, the
    /// next reconciliation finds it open with this run's prefix and settles
    /// it (adopted when its side is free, cancelled otherwise).
    fn cancel_extra(&mut self, order_id: u64, client_id: &str) {
        let name = self.symbol.as_str().to_string();
        match self.rest.cancel(&name, OrderRef::OrderId(order_id)) {
            Ok(c) => {
                self.record_raw(
                    client_id,
                    Some(order_id),
                    c.side,
                    c.price,
                    c.orig_qty,
                    c.executed_qty,
                    OrderStatus::Canceled,
                    Some("cancel: its side already had an order".into()),
                );
                if c.executed_qty.0 > 0 {
                    self.recover_fills(order_id, client_id);
                }
            }
            Err(e) => self.note_error(&e),
        }
    }

    fn old_canceled(&mut self, s: usize, old: &LiveOrder, c: &Order) {
        self.lock(self.lock_of(old.side, old.price, old.remaining()), false);
        self.sides[s] = None;
        self.record_raw(
            &old.client_id,
            Some(c.order_id),
            old.side,
            old.price,
            old.orig_qty,
            c.executed_qty.max(old.filled),
            OrderStatus::Canceled,
            Some("cancel: replaced".into()),
        );
        if c.executed_qty > old.filled {
            self.recover_fills(c.order_id, &old.client_id);
        }
    }

    /// The order on slot `s` may no longer be open: ask for its state,
    /// journal it, recover missed fills, and free the side if it is done.
    fn settle_gone(&mut self, s: usize) {
        let Some(o) = self.sides[s].clone() else { return };
        let name = self.symbol.as_str().to_string();
        match self.rest.query_order_by_client_id(&name, &o.client_id) {
            Ok(q) => {
                if q.executed_qty > o.filled {
                    self.recover_fills(q.order_id, &o.client_id);
                }
                if q.status.is_open() {
                    if let Some(cur) = self.sides[s].as_mut() {
                        cur.known = true;
                        cur.order_id = q.order_id;
                        cur.filled = q.executed_qty;
                    }
                } else {
                    self.lock(self.lock_of(o.side, o.price, o.remaining()), false);
                    self.sides[s] = None;
                    self.record_raw(
                        &o.client_id,
                        Some(q.order_id),
                        o.side,
                        o.price,
                        o.orig_qty,
                        q.executed_qty,
                        journal_status(&q.status),
                        Some("settled by lookup".into()),
                    );
                }
            }
            Err(BinanceError::UnknownOrder { .. }) => {
                self.sides[s] = None;
                self.record_raw(
                    &o.client_id,
                    None,
                    o.side,
                    o.price,
                    o.orig_qty,
                    o.filled,
                    OrderStatus::Rejected,
                    Some("not on the exchange (lookup)".into()),
                );
            }
            Err(e) => self.note_error(&e),
        }
    }

    // ----------------------------------------------------------------------
    // Errors

    fn resync_clock(&mut self) -> bool {
        self.stats.clock_resyncs += 1;
        match self.rest.sync_clock() {
            Ok(c) => {
                self.clock_offset.store(c.offset_ms, Ordering::Relaxed);
                true
            }
            Err(e) => {
                self.note_error(&e);
                false
            }
        }
    }

    /// The order was refused: journal it and count it.
    fn refused(&mut self, id: &ClientOrderId, side: Side, price: Price, qty: Qty, e: &BinanceError) {
        self.stats.rejected += 1;
        if e.action() == Action::Requote {
            self.stats.would_take += 1;
        }
        self.note_error(e);
        self.record(id, None, side, price, qty, Qty::ZERO, OrderStatus::Rejected, Some(e.to_string()));
    }

    fn note_error(&mut self, e: &BinanceError) {
        self.stats.last_error = Some(e.to_string());
    }

    /// What an error's action asks beyond journaling the refusal.
    fn act(&mut self, e: &BinanceError) {
        let now = wall_ns();
        match e.action() {
            Action::Wait(d) => {
                self.stats.waits += 1;
                self.wait_until = Some(Instant::now() + d);
            }
            Action::StopTrading { .. } => {
                let status =
                    if matches!(e, BinanceError::Banned { .. } | BinanceError::LocalBan { .. }) { 418 } else { 403 };
                self.kill.on_http_status(status, now);
                self.shutdown(StopReason::Banned);
            }
            Action::FixCredentials => self.shutdown(StopReason::Credentials),
            Action::RefreshBalances => {
                let _ = self.refresh_account();
            }
            Action::Requote | Action::Retry => {}
            Action::FixRequest => {
                if let Some(r) = self.kill.on_reject(now) {
                    self.shutdown(StopReason::Kill(r));
                }
            }
            Action::ForgetOrder | Action::LookUpOrder | Action::ResyncClockAndRetry | Action::ApplyBothResults => {}
        }
    }

    // ----------------------------------------------------------------------
    // Events, reconciliation, kill switch

    fn service(&mut self) {
        if self.stopped.is_some() {
            return;
        }
        let mut reconcile = false;
        while let Some(ev) = self.stream.as_mut().and_then(|s| s.poll()) {
            match ev {
                UserEvent::Subscribed { generation } => {
                    if generation > 1 {
                        self.stats.resubscribes += 1;
                    }
                    // Events between our last look and this subscription
                    // were not delivered: ask the exchange.
                    reconcile = true;
                }
                UserEvent::Disconnected => {}
                UserEvent::Execution(r) => self.on_execution(&r),
                UserEvent::Balance { asset, free, locked } => {
                    self.risk.set_balance(asset.as_str(), Balance { free, locked });
                }
                UserEvent::BalanceDelta { asset, delta } => {
                    let b = self.risk.balances().get(asset.as_str());
                    self.risk.set_balance(asset.as_str(), Balance { free: b.free.saturating_add(delta), ..b });
                }
            }
            if self.stopped.is_some() {
                return;
            }
        }
        let dropped = self.stream.as_ref().map_or(0, |s| s.dropped());
        if dropped != self.stream_dropped {
            self.stream_dropped = dropped;
            reconcile = true;
        }
        if reconcile || self.last_reconcile.elapsed() >= self.cfg.reconcile_every {
            self.reconcile();
        }
        self.settle_pending_lookups();
        let now = wall_ns();
        if let Some(mid) = self.last_mid {
            let p = &self.position;
            self.risk.on_pnl(now, p.realized().saturating_sub(p.fees()), p.unrealized(mid));
            self.kill.on_risk(&mut self.risk, now);
            if self.last_pnl_snapshot.elapsed() >= self.cfg.pnl_every {
                self.snapshot_pnl(mid, now);
            }
        }
        if let Some(r) = self.kill.tripped() {
            self.shutdown(StopReason::Kill(r));
        }
    }

    /// A PnL snapshot in the journal (queued, never waits).
    fn snapshot_pnl(&mut self, mark: Price, now_ns: i64) {
        self.last_pnl_snapshot = Instant::now();
        if let Err(e) = self.journal.record_pnl(PnlSnapshot::of(self.run, self.symbol, &self.position, mark, now_ns)) {
            self.stats.last_error = Some(e.to_string());
        }
    }

    fn on_execution(&mut self, r: &ExecutionReport) {
        // A dry run has no orders: what the stream reports is somebody
        // else's trading, not this run's.
        if r.symbol != self.symbol || self.cfg.dry_run {
            return;
        }
        let s = slot_of(r.side);
        let id = r.order_client_id().to_string();
        let ours = self.sides[s].as_ref().is_some_and(|o| o.client_id == id);
        if r.exec_type == ExecType::Trade && r.last_qty.0 > 0 {
            if !self.apply_fill(self.stream_fill(r)) {
                return;
            }
            // The side may have been emptied meanwhile (a stop cancels all).
            if let Some(o) = self.sides[s].as_mut().filter(|o| ours && o.client_id == id) {
                let done = !r.status.is_open();
                o.filled = o.filled.max(r.cum_qty);
                o.known = true;
                o.order_id = r.order_id;
                let (price, orig, filled) = (o.price, o.orig_qty, o.filled);
                // The filled part no longer locks funds as an order.
                self.lock(self.lock_of(r.side, price, r.last_qty), false);
                let status = if done { OrderStatus::Filled } else { OrderStatus::PartiallyFilled };
                if done {
                    self.sides[s] = None;
                }
                self.record_raw(&id, Some(r.order_id), r.side, price, orig, filled, status, None);
            }
            return;
        }
        match r.exec_type {
            ExecType::New => {
                if let Some(o) = self.sides[s].as_mut().filter(|o| o.client_id == id && !o.known) {
                    o.known = true;
                    o.order_id = r.order_id;
                }
            }
            ExecType::Canceled | ExecType::Expired | ExecType::Rejected | ExecType::TradePrevention if ours => {
                // Ended without our asking (expiry, STP, an operator): free
                // the side and record it.
                if let Some(o) = self.sides[s].take() {
                    self.lock(self.lock_of(o.side, o.price, o.remaining()), false);
                    let status = match r.status {
                        ReportStatus::Rejected => OrderStatus::Rejected,
                        ReportStatus::Expired => OrderStatus::Expired,
                        _ => OrderStatus::Canceled,
                    };
                    self.record_raw(
                        &id,
                        Some(r.order_id),
                        o.side,
                        o.price,
                        o.orig_qty,
                        r.cum_qty.max(o.filled),
                        status,
                        Some("ended on the exchange".into()),
                    );
                }
            }
            _ => {}
        }
    }

    /// Commits a fill, then applies it; `false` when it was a duplicate or
    /// could not be committed (then trading stops).
    fn apply_fill(&mut self, rec: FillRecord) -> bool {
        match self.journal.record_fill(rec.clone()) {
            Ok(FillOutcome::Recorded) => {
                let f = rec.to_fill(&self.rules.base_asset, &self.rules.quote_asset);
                self.position.on_fill(&f);
                self.risk.set_position(self.position.qty());
                self.pending_fills.push(f);
                self.stats.fills += 1;
                true
            }
            Ok(FillOutcome::Duplicate) => {
                self.stats.duplicate_fills += 1;
                false
            }
            Err(e) => {
                self.stats.last_error = Some(e.to_string());
                self.shutdown(StopReason::Journal);
                false
            }
        }
    }

    /// Fills of `order_id` the stream may have missed, from `myTrades`.
    fn recover_fills(&mut self, order_id: u64, client_id: &str) {
        let name = self.symbol.as_str().to_string();
        let trades = match self.rest.my_trades(&name, order_id) {
            Ok(t) => t,
            Err(e) => {
                self.note_error(&e);
                return;
            }
        };
        for t in trades {
            let rec = FillRecord {
                run: self.run,
                client_id: client_id.to_string(),
                exchange_order_id: Some(order_id as i64),
                symbol: self.symbol,
                trade_id: t.id,
                side: if t.is_buyer { Side::Buy } else { Side::Sell },
                price: t.price,
                qty: t.qty,
                fee: t.commission,
                fee_asset: t.commission_asset.clone(),
                maker: t.is_maker,
                time_ns: t.time_ms.saturating_mul(1_000_000),
            };
            if self.apply_fill(rec) {
                self.stats.fills_recovered += 1;
            }
            // A fill that cannot be committed ends the recovery (and
            // trading); a stop already under way still recovers them all.
            if self.stopped == Some(StopReason::Journal) {
                return;
            }
        }
    }

    fn refresh_account(&mut self) -> Result<(), BinanceError> {
        self.stats.balance_refreshes += 1;
        let a = self.rest.account()?;
        for asset in [self.rules.base_asset.clone(), self.rules.quote_asset.clone()] {
            let (free, locked) = a.balance(&asset).map_or((0, 0), |b| (b.free.0, b.locked.0));
            self.risk.set_balance(&asset, Balance { free, locked });
        }
        Ok(())
    }

    /// Open orders and balances against the exchange; errors are kept and
    /// the next reconciliation tries again.
    fn reconcile(&mut self) {
        self.stats.reconciles += 1;
        self.last_reconcile = Instant::now();
        if let Err(e) = self.reconcile_orders() {
            self.stats.last_error = Some(e.to_string());
        }
        if self.stopped.is_none() {
            if let Err(e) = self.refresh_account() {
                self.note_error(&e);
            }
        }
    }

    fn reconcile_orders(&mut self) -> Result<(), LiveError> {
        if self.cfg.dry_run {
            // A dry run places nothing and touches nothing it finds.
            return Ok(());
        }
        let name = self.symbol.as_str().to_string();
        let open = self.rest.open_orders(&name)?;
        for s in [BID, ASK] {
            let Some(o) = self.sides[s].clone() else { continue };
            match open.iter().find(|e| e.placed_client_order_id() == o.client_id) {
                Some(e) => {
                    if e.executed_qty > o.filled {
                        self.recover_fills(e.order_id, &o.client_id);
                    }
                    if let Some(cur) = self.sides[s].as_mut() {
                        cur.known = true;
                        cur.order_id = e.order_id;
                        cur.filled = cur.filled.max(e.executed_qty);
                    }
                }
                None => self.settle_gone(s),
            }
            if self.stopped.is_some() {
                return Ok(());
            }
        }
        let prefix = format!("{}-", self.ids.prefix());
        for e in open {
            let id = e.placed_client_order_id().to_string();
            if self.sides.iter().flatten().any(|o| o.client_id == id) {
                continue;
            }
            let s = slot_of(e.side);
            let ours = id.starts_with(&prefix);
            if (ours || self.cfg.orphans == OrphanPolicy::Adopt) && self.sides[s].is_none() {
                self.stats.orphans_adopted += 1;
                let cid = ClientOrderId::new(&id).ok();
                match cid {
                    Some(cid) => self.apply_order_answer(s, &cid, &e, "adopted at reconciliation"),
                    None => continue,
                }
            } else {
                self.stats.orphans_canceled += 1;
                match self.rest.cancel(&name, OrderRef::OrderId(e.order_id)) {
                    Ok(c) => self.record_raw(
                        &id,
                        Some(e.order_id),
                        e.side,
                        e.price,
                        e.orig_qty,
                        c.executed_qty,
                        OrderStatus::Canceled,
                        Some("orphan canceled at reconciliation".into()),
                    ),
                    Err(err) => self.note_error(&err),
                }
            }
        }
        Ok(())
    }

    /// Orders that earlier runs left open (or unknown) in the journal and
    /// that are not open on the exchange any more (those still open were
    /// handled as orphans just before): journal their final state and
    /// recover the fills they got while no run was watching.
    fn reconcile_journal(&mut self) -> Result<(), LiveError> {
        let name = self.symbol.as_str().to_string();
        let first = self.run.0.saturating_sub(EARLIER_RUNS).max(1);
        for r in first..self.run.0 {
            for st in self.journal.open_orders(RunId(r))? {
                let e = st.event;
                if e.symbol != self.symbol {
                    continue;
                }
                match self.rest.query_order_by_client_id(&name, &e.client_id) {
                    Ok(q) => {
                        if q.executed_qty > e.filled {
                            self.recover_fills(q.order_id, &e.client_id);
                        }
                        self.record_raw(
                            &e.client_id,
                            Some(q.order_id),
                            e.side,
                            e.price,
                            e.qty,
                            q.executed_qty,
                            journal_status(&q.status),
                            Some(format!("settled at start (left open by run {r})")),
                        );
                    }
                    Err(BinanceError::UnknownOrder { .. }) => self.record_raw(
                        &e.client_id,
                        None,
                        e.side,
                        e.price,
                        e.qty,
                        e.filled,
                        OrderStatus::Rejected,
                        Some(format!("not on the exchange (left {} by run {r})", e.status.as_str())),
                    ),
                    Err(err) => self.note_error(&err),
                }
            }
        }
        Ok(())
    }

    fn shutdown(&mut self, reason: StopReason) {
        if self.stopped.is_some() {
            return;
        }
        self.stopped = Some(reason);
        if self.cfg.dry_run {
            // Nothing of ours rests, and what others placed is theirs.
            self.sides = [None, None];
        } else {
            self.cancel_everything(reason);
        }
        // Fills already delivered are journaled (the journal drops those
        // recovered above); stop the stream after.
        while let Some(ev) = self.stream.as_mut().and_then(|s| s.poll()) {
            if let UserEvent::Execution(r) = ev {
                if r.exec_type == ExecType::Trade && r.symbol == self.symbol && r.last_qty.0 > 0 {
                    self.apply_fill(self.stream_fill(&r));
                }
            }
        }
        if let Some(mut s) = self.stream.take() {
            s.stop();
        }
        if let Some(mid) = self.last_mid {
            self.snapshot_pnl(mid, wall_ns());
        }
        let _ = self.journal.end_run(self.run, &reason.to_string(), wall_ns());
        if let Err(e) = self.journal.flush() {
            self.stats.last_error = Some(e.to_string());
        }
    }

    /// Cancels everything on the symbol, ours or not: a stop means nothing
    /// of this account may keep resting there. A few tries, since this is
    /// the last request that matters; during an IP ban, waits for it to
    /// lift when that is at most `ban_wait_max` away. Every order this run
    /// tracked ends with its final state journaled and its fills recovered
    /// (`myTrades`), so the journal agrees with the exchange even for fills
    /// the stream had not delivered yet.
    fn cancel_everything(&mut self, reason: StopReason) {
        let name = self.symbol.as_str().to_string();
        let prefix = format!("{}-", self.ids.prefix());
        let mut waited = false;
        let mut attempt = 0;
        loop {
            match self.rest.cancel_all(&name) {
                Ok(list) => {
                    for c in list {
                        let id = c.placed_client_order_id().to_string();
                        let s = slot_of(c.side);
                        let tracked = self.sides[s].as_ref().filter(|o| o.client_id == id).map(|o| o.filled);
                        if tracked.is_some() {
                            self.sides[s] = None;
                        }
                        let seen = tracked.unwrap_or(Qty::ZERO);
                        self.record_raw(
                            &id,
                            Some(c.order_id),
                            c.side,
                            c.price,
                            c.orig_qty,
                            c.executed_qty,
                            OrderStatus::Canceled,
                            Some(format!("cancel all: {reason}")),
                        );
                        if (tracked.is_some() || id.starts_with(&prefix)) && c.executed_qty > seen {
                            self.recover_fills(c.order_id, &id);
                        }
                    }
                    // Tracked orders the cancel did not list were no longer
                    // open (filled, or never placed): settle them by lookup.
                    for s in [BID, ASK] {
                        if self.sides[s].is_some() {
                            self.settle_gone(s);
                        }
                    }
                    self.stats.left_open = 0;
                    self.sides = [None, None];
                    return;
                }
                Err(e) => {
                    self.note_error(&e);
                    match e.action() {
                        Action::StopTrading { retry_after: Some(d) } if !waited && d <= self.cfg.ban_wait_max => {
                            // The ban lifts soon enough: wait it out rather
                            // than leave orders resting unattended.
                            waited = true;
                            self.stats.ban_waits += 1;
                            std::thread::sleep(d + Duration::from_millis(200));
                        }
                        Action::StopTrading { .. } => break,
                        _ if attempt >= 4 => break,
                        // A 429 back-off: the cancel waits its turn (a
                        // minute at most) rather than giving up.
                        Action::Wait(d) if d <= Duration::from_secs(60) => {
                            attempt += 1;
                            std::thread::sleep(d + Duration::from_millis(50));
                        }
                        _ => {
                            attempt += 1;
                            std::thread::sleep(Duration::from_millis(100 << attempt));
                        }
                    }
                }
            }
        }
        // Could not cancel: say how many of ours may still rest. The next
        // start reconciles them (orphans) before quoting.
        self.stats.left_open = self.sides.iter().flatten().count() as u64;
    }

    /// The journal record of a trade the user-data stream reported.
    fn stream_fill(&self, r: &ExecutionReport) -> FillRecord {
        FillRecord {
            run: self.run,
            client_id: r.order_client_id().to_string(),
            exchange_order_id: Some(r.order_id as i64),
            symbol: self.symbol,
            trade_id: r.trade_id,
            side: r.side,
            price: r.last_price,
            qty: r.last_qty,
            fee: r.commission,
            fee_asset: r.commission_asset.as_str().to_string(),
            maker: r.maker,
            time_ns: r.time_ms.saturating_mul(1_000_000),
        }
    }

    // ----------------------------------------------------------------------
    // Journal

    #[allow(clippy::too_many_arguments)]
    fn record(
        &mut self,
        id: &ClientOrderId,
        exchange_id: Option<u64>,
        side: Side,
        price: Price,
        qty: Qty,
        filled: Qty,
        status: OrderStatus,
        reason: Option<String>,
    ) {
        self.record_raw(id.as_str(), exchange_id, side, price, qty, filled, status, reason);
    }

    #[allow(clippy::too_many_arguments)]
    fn record_raw(
        &mut self,
        id: &str,
        exchange_id: Option<u64>,
        side: Side,
        price: Price,
        qty: Qty,
        filled: Qty,
        status: OrderStatus,
        reason: Option<String>,
    ) {
        let ev = OrderEvent {
            run: self.run,
            client_id: id.to_string(),
            exchange_id: exchange_id.map(|x| x as i64),
            symbol: self.symbol,
            side,
            price,
            qty,
            filled,
            status,
            reason,
            time_ns: wall_ns(),
        };
        // A full journal queue loses an order state, not a fill (fills wait
        // for their commit); it is counted in the journal's stats.
        if let Err(e) = self.journal.record_order(ev) {
            self.stats.last_error = Some(e.to_string());
        }
    }
}

fn working(o: &LiveOrder) -> WorkingOrder {
    WorkingOrder {
        id: o.order_id,
        side: o.side,
        price: o.price,
        qty: o.remaining(),
        orig_qty: o.orig_qty,
        queue_ahead: QUEUE_UNKNOWN,
        live_since_ns: o.since_ns,
        cancel_at_ns: None,
    }
}

fn journal_status(s: &ExOrderStatus) -> OrderStatus {
    match s {
        ExOrderStatus::New | ExOrderStatus::PendingNew | ExOrderStatus::PendingCancel => OrderStatus::New,
        ExOrderStatus::PartiallyFilled => OrderStatus::PartiallyFilled,
        ExOrderStatus::Filled => OrderStatus::Filled,
        ExOrderStatus::Canceled => OrderStatus::Canceled,
        ExOrderStatus::Rejected => OrderStatus::Rejected,
        ExOrderStatus::Expired | ExOrderStatus::ExpiredInMatch => OrderStatus::Expired,
        ExOrderStatus::Other(_) => OrderStatus::Unknown,
    }
}

/// A stable hex hash of the config's debug text (FNV-1a), for the run row.
fn config_hash(cfg: &LiveConfig) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in format!("{cfg:?}").bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

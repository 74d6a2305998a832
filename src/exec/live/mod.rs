//! The live order manager: [`LiveExchange`], the exec-thread counterpart of
//! [`PaperExchange`](crate::exec::paper::PaperExchange) that turns the hot
//! thread's quotes into real `LIMIT_MAKER` orders on Binance spot.
//!
//! It exists so that the exec loop in `runtime.rs` can trade for real with
//! the same hand-offs as paper trading: the latest [`Quote`] in,
//! [`Fill`]s, the working bid/ask and the position out.
//!
//! # Never blocking on the exchange
//!
//! Every order request goes through the
//! [`OrderGateway`](crate::exec::binance::gateway::OrderGateway): sending
//! returns at once, answers come back on [`LiveExchange::poll`]. Each side
//! is its own state machine ([`side::SideState`]: idle, sending, live,
//! replacing, cancelling, unknown until its deadline), so a slow answer on
//! one side never delays the other or the next quote's decision. A busy
//! side keeps the latest wanted quote and decides on it the moment its
//! answer arrives. Only start-up and the stop wait on answers.
//!
//! # What it guarantees
//!
//! - **One order per side and level.** Each of a ladder's levels (one by
//!   default, `[strategy] levels`) is an order slot of its own ([`side`]),
//!   kept, replaced (cancelReplace when the symbol allows it, else cancel
//!   then new) or cancelled by the same refresh rules as paper. The
//!   position check counts what the side's other levels can still fill.
//! - **Checked before sent.** Rounded to the symbol's filters, checked by
//!   [`SymbolRules::check`] and [`RiskCheck::check`]; a refusal is counted
//!   with its reason and nothing is sent.
//! - **Unknown fate blocks the side until the exchange's own deadline**
//!   ([`fate`]): -1007, -1006, 5xx, a timeout or a dropped connection leave
//!   the order's fate unknown; the side stays blocked, the user-data stream
//!   is watched for the client id and the order is looked up again until
//!   the later of `timestamp + recvWindow` and `send + 10 s`; only then is
//!   "does not exist" final.
//! - **Fills are durable first** ([`events`]): committed to the journal
//!   before the position sees them; duplicates (same trade id) ignored.
//! - **Stopping is cancelling** ([`stop`]): cancel-all, wait out every
//!   unknown-fate deadline, check the open orders once more, settle every
//!   tracked order and recover its fills.
//!
//! # Errors
//!
//! Each exchange answer maps to an [`Action`](crate::exec::binance::Action)
//! ([`answers`]): would-take waits for a new quote, a rate limit blocks new
//! orders (an order-count limit) or everything (weight) for its
//! `Retry-After`, a ban or bad credentials stop trading, other refusals
//! count towards the kill switch. The "rejected" counter counts only what
//! the exchange answered; refusals before sending have their own.
//!
//! # Reconciliation
//!
//! At start (blocking, before quoting), on every (re)subscription of the
//! user-data stream, when its ring overflowed, and every
//! `reconcile_every` ([`reconcile`]): open orders and the account over the
//! gateway. Open orders we do not track are orphans: cancelled or adopted
//! per `[live] orphans`.

mod answers;
mod balances;
mod entry;
mod events;
mod fate;
pub mod hub;
mod reconcile;
mod rtt;
mod side;
mod stats;
mod stop;

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::exec::binance::filters::SymbolRules;
use crate::exec::binance::gateway::{GatewayConfig, OrderGateway, RequestId};
use crate::exec::binance::keys::Credentials;
use crate::exec::binance::rest::{ClientIds, RestClient, RestConfig};
use crate::exec::journal::{Journal, PnlSnapshot, RunId, RunInfo, RunMode};
use crate::exec::live_config::{LiveConfig, OrderEntry};
use crate::exec::paper::WorkingOrder;
use crate::exec::position::Position;
use crate::exec::risk::{KillSwitch, RiskCheck, RiskCounters};
use crate::exec::userdata::UserDataStream;
use crate::exec::{Fill, Quote, Side};
use crate::hot::advice::Advice;
use crate::hot::book::BookView;
use crate::hot::fixed::Price;
use crate::hot::msg::{Level, Symbol, Trade};
use crate::ipguard::IpGuard;
use hub::{AccountHub, Gateway};

pub use rtt::OrderRtt;
use side::{slot, SideState};

/// The methods [`OrderRtt`] keeps apart, in report order.
pub fn rtt_methods() -> &'static [&'static str] {
    &rtt::METHODS
}
pub use stats::{LiveError, LiveStats, StopReason};

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

/// How many earlier runs' journal entries are reconciled at start.
const EARLIER_RUNS: i64 = 50;

/// Why a request was sent, so its answer goes to the right handler.
#[derive(Debug, Clone)]
enum Purpose {
    /// A slot's new order, cancelReplace, cancel or lookup: the slot's state
    /// names the request.
    Side(usize),
    /// Periodic reconciliation: the open orders as of `asked`.
    OpenOrders {
        asked: Instant,
    },
    Account,
    /// Fills of one order the stream may have missed.
    Trades {
        client_id: String,
        order_id: u64,
    },
    /// A clock re-measurement after -1021; nothing is sent meanwhile.
    Clock,
    /// An order we do not track (orphan, or a replace's extra): cancel it.
    CancelStray {
        client_id: String,
    },
}

pub(crate) fn wall_ns() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as i64)
}

/// The live order manager for one symbol. Methods mirror
/// [`PaperExchange`](crate::exec::paper::PaperExchange) so the exec loop of
/// `runtime::run_trading` can drive it: `on_book`, `on_trade`, `on_quote`,
/// `poll` (call it even when no market data arrives: answers, fills and
/// reconciliation happen there), `working_bid`/`working_ask`, `stats`, and
/// `stop` on the way out.
pub struct LiveExchange {
    cfg: LiveConfig,
    symbol: Symbol,
    rules: SymbolRules,
    gateway: Gateway,
    journal: Journal,
    run: RunId,
    risk: RiskCheck,
    kill: KillSwitch,
    ids: ClientIds,
    /// User-data subscriptions so far (the gateway's session announces
    /// each).
    subscriptions: u64,
    /// The user-data stream's own connection (`order_entry = "rest"`).
    stream: Option<UserDataStream>,
    stream_dropped: u64,
    /// One order slot per side and ladder level ([`side::slot`]): the best
    /// bid and ask first.
    slots: Vec<SideState>,
    /// The latest wanted level per slot (already filtered for zero), and
    /// the refresh grid it came with: a busy slot decides on it as soon as
    /// it is free.
    wanted: Vec<Option<Level>>,
    tick: Price,
    /// After a would-take the side waits for the next quote (the number of
    /// quotes seen when it was refused): the same price would be refused
    /// again.
    requote_after: Vec<Option<u64>>,
    /// A fill on this slot's side since the last quote: the wanted quote
    /// was made before the fill moved the position, so the side's slots
    /// wait for the next.
    filled_since_quote: Vec<bool>,
    /// A -1021 was answered on this slot since the last quote: its order
    /// was sent again once, after the clock was measured again.
    clock_retried: Vec<bool>,
    /// A clock re-measurement is in flight: no order goes out meanwhile.
    clock_syncing: bool,
    pending: HashMap<RequestId, Purpose>,
    /// Side requests whose outcome the user-data stream told before their
    /// answer came (a slow answer never holds a side up): the answer, when
    /// it comes, only times the round trip.
    superseded: std::collections::HashSet<RequestId>,
    /// Orders already counted as ended by self-trade prevention: the
    /// stream's executionReport and a later lookup (or placing answer) both
    /// tell it, and each order counts once.
    stp_counted: std::collections::HashSet<u64>,
    position: Position,
    /// The position earlier runs left (from the journal), before any fill
    /// of this run.
    carried: Position,
    /// Fills committed but not yet handed to a sink.
    pending_fills: Vec<Fill>,
    last_mid: Option<Price>,
    last_reconcile: Instant,
    reconcile_in_flight: bool,
    /// Events may have been missed (resubscribed, ring overflow).
    reconcile_due: bool,
    last_pnl_snapshot: Instant,
    /// No new order before this (an order-count 429, or any 429/418).
    orders_blocked_until: Option<Instant>,
    /// No request at all before this (a request-weight 429).
    all_blocked_until: Option<Instant>,
    stopped: Option<StopReason>,
    stats: LiveStats,
    rtt: OrderRtt,
    /// The position against the base balance (`None` in a dry run).
    balance_check: Option<crate::exec::inventory::BalanceCheck>,
}

impl std::fmt::Debug for LiveExchange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveExchange")
            .field("symbol", &self.symbol)
            .field("run", &self.run)
            .field("slots", &self.slots)
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
    /// `stream_creds` is a second copy of the keys for the WebSocket API
    /// session; `guard` is the process's IP guard (every request and
    /// connect asks it first).
    pub fn open(
        cfg: &LiveConfig,
        symbol: Symbol,
        rest_creds: Credentials,
        stream_creds: Credentials,
        guard: IpGuard,
    ) -> Result<Self, LiveError> {
        let rc = RestConfig {
            base_url: cfg.rest_url.clone(),
            recv_window: cfg.recv_window,
            timeout: cfg.timeout,
            ..RestConfig::with_base(&cfg.rest_url)
        };
        let mut rest = RestClient::with_guard(&rc, rest_creds, guard)?;
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
    /// journal run, reconciles what earlier runs left (blocking: nothing
    /// is quoted before), then hands the REST client to the order gateway
    /// and starts the user-data stream.
    pub fn start(cfg: &LiveConfig, symbol: Symbol, parts: LiveParts) -> Result<Self, LiveError> {
        Self::start_on(cfg, symbol, parts, None)
    }

    /// [`LiveExchange::start`] for one of several symbols of an account:
    /// orders and user data go through `hub`'s shared gateway (its own
    /// REST client in `parts` serves only the start-up reconciliation).
    /// `index` (the symbol's place in the run, below 1296) goes into its
    /// client order ids, so two symbols started in the same millisecond
    /// never share an id.
    pub fn start_shared(
        cfg: &LiveConfig,
        symbol: Symbol,
        parts: LiveParts,
        hub: &AccountHub,
        index: usize,
    ) -> Result<Self, LiveError> {
        Self::start_on(cfg, symbol, parts, Some((hub, index)))
    }

    fn start_on(
        cfg: &LiveConfig,
        symbol: Symbol,
        parts: LiveParts,
        hub: Option<(&AccountHub, usize)>,
    ) -> Result<Self, LiveError> {
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
        check_levels(cfg, &rules)?;
        let prefix = match hub {
            Some((_, index)) => format!("{}{}", reconcile::run_prefix(cfg), symbol_tag(index)?),
            None => reconcile::run_prefix(cfg),
        };
        let ids = ClientIds::new(&prefix)?;
        let run = journal.start_run(RunInfo {
            // A dry run trades nothing: the journal files it with paper runs.
            mode: if cfg.dry_run { RunMode::Paper } else { cfg.mode },
            symbols: vec![name.clone()],
            config_hash: config_hash(cfg),
            started_ns: wall_ns(),
        })?;
        // The position carries over: every fill earlier runs journaled for
        // this symbol, so the limits count inventory a previous run left.
        let mut position = Position::new();
        for f in journal.fills(symbol)? {
            position.on_fill(&f.to_fill(&rules.base_asset, &rules.quote_asset));
        }
        let mut risk = risk;
        risk.set_position(position.qty());
        let mut boot = reconcile::Boot { rest: &mut rest, journal: &journal, run, symbol, cfg, prefix: ids.prefix() };
        let start = boot.settle()?;
        // Orders and the user-data stream share one WebSocket API session;
        // REST serves the calls while no session is up. With `order_entry =
        // "rest"` the stream keeps a connection of its own.
        let guard = rest.guard().clone();
        let ws = cfg.order_entry == OrderEntry::WsApi;
        // Its own gateway (one symbol): the symbol's rules checked before
        // sending, user data on the session unless REST carries the orders.
        let gcfg = || GatewayConfig {
            recv_window: cfg.recv_window,
            timeout: cfg.timeout,
            rules: Some(rules.clone()),
            user_data: ws,
            ..GatewayConfig::new(&name, ws.then_some(cfg.ws_api_url.as_str()))
        };
        let (gateway, stream) = if let Some((hub, _)) = hub {
            // The hub's session carries this symbol's orders and user data
            // (AccountHub::start refuses REST-only order entry).
            (Gateway::Shared(hub.port(symbol, rules.clone())), None)
        } else if ws {
            let gateway = OrderGateway::start(gcfg(), rest, Some(stream_creds), guard)
                .map_err(|e| LiveError::Setup(format!("the order gateway could not start: {e}")))?;
            (Gateway::Own(gateway), None)
        } else {
            let s = UserDataStream::start_guarded(
                &cfg.ws_api_url,
                stream_creds,
                cfg.recv_window,
                rest.clock_offset_handle(),
                Some(guard.clone()),
            )?;
            let gateway = OrderGateway::start(gcfg(), rest, None, guard)
                .map_err(|e| LiveError::Setup(format!("the order gateway could not start: {e}")))?;
            (Gateway::Own(gateway), Some(s))
        };
        let now = Instant::now();
        let n = 2 * cfg.levels.max(1);
        let mut ex = Self {
            cfg: cfg.clone(),
            symbol,
            rules,
            gateway,
            journal,
            run,
            risk,
            kill,
            ids,
            subscriptions: 0,
            stream,
            stream_dropped: 0,
            slots: vec![SideState::Idle; n],
            wanted: vec![None; n],
            tick: Price(0),
            requote_after: vec![None; n],
            filled_since_quote: vec![false; n],
            clock_retried: vec![false; n],
            clock_syncing: false,
            pending: HashMap::new(),
            superseded: std::collections::HashSet::new(),
            stp_counted: std::collections::HashSet::new(),
            position,
            carried: position,
            pending_fills: Vec::with_capacity(64),
            last_mid: None,
            last_reconcile: now,
            reconcile_in_flight: false,
            reconcile_due: false,
            last_pnl_snapshot: now,
            orders_blocked_until: None,
            all_blocked_until: None,
            stopped: None,
            stats: LiveStats::default(),
            rtt: OrderRtt::new(),
            balance_check: None,
        };
        ex.adopt_at_start(start);
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

    /// Order round-trip times (send to answer) per method.
    pub fn order_rtt(&self) -> &OrderRtt {
        &self.rtt
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

    /// The user-data stream's counters (it rides on the gateway's
    /// WebSocket API session).
    pub fn stream_stats(&self) -> Option<crate::exec::userdata::StreamStats> {
        if let Some(s) = &self.stream {
            return Some(s.stats());
        }
        let g = self.gateway.stats();
        Some(crate::exec::userdata::StreamStats {
            connects: g.sessions_opened,
            subscriptions: self.subscriptions,
            frames: g.user_events,
            bad_frames: g.bad_frames,
            dropped: 0,
        })
    }

    /// The order gateway's counters (requests per transport, fallbacks,
    /// sessions, timeouts).
    pub fn gateway_stats(&self) -> crate::exec::binance::gateway::GatewayStats {
        self.gateway.stats()
    }

    /// The working best bid, as paper reports it (`qty` = remaining).
    pub fn working_bid(&self) -> Option<WorkingOrder> {
        self.working_at(Side::Buy, 0)
    }

    /// The working best ask.
    pub fn working_ask(&self) -> Option<WorkingOrder> {
        self.working_at(Side::Sell, 0)
    }

    /// The order working at ladder level `level` (0 = best) of `side`.
    pub fn working_at(&self, side: Side, level: usize) -> Option<WorkingOrder> {
        self.slots.get(slot(side, level))?.shown().map(|o| o.working())
    }

    /// Every working order, best levels first.
    pub fn working_orders(&self) -> impl Iterator<Item = WorkingOrder> + '_ {
        self.slots.iter().filter_map(|s| s.shown().map(|o| o.working()))
    }

    /// Per slot, the order it has out (its remaining quantity), else the
    /// level it will place when free: what the account allocator counts as
    /// this symbol's (a cancel in flight still holds funds and an open
    /// order; a wanted level waiting on a busy slot will be sent).
    pub fn committed(&self) -> impl Iterator<Item = (Side, Level)> + '_ {
        self.slots.iter().zip(&self.wanted).enumerate().filter_map(|(s, (st, want))| match st.shown() {
            Some(o) => Some((o.side, Level { price: o.price, qty: o.remaining() })),
            None => want.map(|w| (side::side_of(s), w)),
        })
    }

    /// How many levels a side works (`[strategy] levels`).
    pub fn levels(&self) -> usize {
        self.slots.len() / 2
    }

    /// The prefix of this run's client order ids (`{prefix}-{n}`).
    pub fn client_prefix(&self) -> &str {
        self.ids.prefix()
    }

    /// The client order id of the order shown as working on `side`'s
    /// best level.
    pub fn working_client_id(&self, side: Side) -> Option<&str> {
        self.slots[slot(side, 0)].shown().map(|o| o.client_id.as_str())
    }

    /// What `side`'s best level is doing: "idle", "sending", "live",
    /// "replacing", "cancelling" or "unknown".
    pub fn side_state(&self, side: Side) -> &'static str {
        self.level_state(side, 0)
    }

    /// What ladder level `level` of `side` is doing ("idle" beyond the
    /// ladder).
    pub fn level_state(&self, side: Side, level: usize) -> &'static str {
        self.slots.get(slot(side, level)).map_or("idle", SideState::name)
    }

    /// Nothing in flight and no side busy: every request sent has been
    /// answered and acted on (tests and the stop wait for this).
    pub fn is_quiet(&self) -> bool {
        self.gateway.in_flight() == 0 && self.slots.iter().all(|s| s.accepts_decision())
    }

    /// Requests sent and not answered yet.
    pub fn in_flight(&self) -> usize {
        self.gateway.in_flight()
    }

    /// Waits (up to `timeout`) until the user-data stream has subscribed
    /// at least `generation` times; for start-up and tests.
    pub fn wait_subscribed(&mut self, generation: u64, timeout: Duration) -> bool {
        let end = Instant::now() + timeout;
        loop {
            self.service();
            if self.subscriptions >= generation {
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
    /// replaces or cancels each side's levels whose state allows a decision
    /// now; a busy one decides on this quote when its answer comes. Levels
    /// beyond the quote's ladder are pulled. `tick` is
    /// the refresh grid (the symbol's tick when 0); `now_ns` is unused
    /// (live ages orders by the wall clock).
    pub fn on_quote(&mut self, q: &Quote, tick: Price, _now_ns: i64) {
        self.service();
        if self.stopped.is_some() || (!q.symbol.is_empty() && q.symbol != self.symbol) {
            return;
        }
        self.stats.quotes += 1;
        self.tick = if tick.0 > 0 { tick } else { self.rules.price.tick };
        for s in 0..self.slots.len() {
            let level = q.level(side::side_of(s), side::level_of(s));
            self.wanted[s] = level.filter(|l| l.price.0 > 0 && l.qty.0 > 0);
            self.filled_since_quote[s] = false;
            self.clock_retried[s] = false;
        }
        for s in 0..self.slots.len() {
            if self.requote_after[s].is_some_and(|n| n != self.stats.quotes) {
                self.requote_after[s] = None;
            }
            self.decide(s);
            if self.stopped.is_some() {
                return;
            }
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

    /// Time passes: handles answers, stream events and timers (fills are
    /// kept for the next call with a sink).
    pub fn on_time(&mut self, _now_ns: i64) {
        self.service();
    }

    /// Handles the gateway's answers and the user-data stream, runs due
    /// lookups, reconciliations and the kill switch, and hands committed
    /// fills to `sink`. Never blocks.
    pub fn poll(&mut self, sink: &mut impl FnMut(Fill)) {
        self.service();
        for f in self.pending_fills.drain(..) {
            sink(f);
        }
    }

    /// Stops trading: cancels every open order on the symbol, waits out
    /// unknown fates, closes the journal run and the stream. Idempotent.
    pub fn stop(&mut self) {
        self.shutdown(StopReason::Requested);
    }

    /// One pass of everything that does not wait for a quote.
    fn service(&mut self) {
        if self.stopped.is_some() {
            return;
        }
        self.drain_gateway();
        if self.stopped.is_some() {
            return;
        }
        let reconcile = self.drain_stream() || std::mem::take(&mut self.reconcile_due);
        if self.stopped.is_some() {
            return;
        }
        if reconcile || self.last_reconcile.elapsed() >= self.cfg.reconcile_every {
            self.start_reconcile();
        }
        self.run_timers();
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

    /// Timers: unknown-fate lookups, cancels waiting to be sent again, and
    /// slots that became free for the latest wanted quote.
    fn run_timers(&mut self) {
        for s in 0..self.slots.len() {
            self.fate_tick(s);
            self.cancel_retry_tick(s);
            if self.stopped.is_some() {
                return;
            }
        }
    }

    /// The slot tracking the order with client id `client_id`.
    fn slot_tracking(&self, client_id: &str) -> Option<usize> {
        self.slots.iter().position(|st| st.tracks(client_id))
    }

    /// The best idle slot of `side`, for an order taken over (adopted).
    fn free_slot(&self, side: Side) -> Option<usize> {
        (0..self.slots.len()).find(|&s| side::side_of(s) == side && matches!(self.slots[s], SideState::Idle))
    }

    /// A PnL snapshot in the journal (queued, never waits).
    fn snapshot_pnl(&mut self, mark: Price, now_ns: i64) {
        self.last_pnl_snapshot = Instant::now();
        if let Err(e) = self.journal.record_pnl(PnlSnapshot::of(self.run, self.symbol, &self.position, mark, now_ns)) {
            self.stats.last_error = Some(e.to_string());
        }
    }

    fn note_error(&mut self, e: &impl ToString) {
        self.stats.last_error = Some(e.to_string());
    }
}

/// Two base-36 characters naming a symbol's place among an account's
/// symbols, for its client order ids.
fn symbol_tag(index: usize) -> Result<String, LiveError> {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    if index >= 36 * 36 {
        return Err(LiveError::Setup(format!("symbol {index}: at most 1296 symbols trade from one process")));
    }
    Ok([DIGITS[index / 36], DIGITS[index % 36]].iter().map(|&b| b as char).collect())
}

/// A ladder needs an open order per level a side: refused at start when
/// the account's own limit (`[live] max_open_orders`) or the symbol's
/// `MAX_NUM_ORDERS` filter leaves no room for it, naming the key.
fn check_levels(cfg: &LiveConfig, rules: &SymbolRules) -> Result<(), LiveError> {
    let orders = 2 * cfg.levels.max(1) as u64;
    if orders > cfg.limits.max_open_orders as u64 {
        return Err(LiveError::Setup(format!(
            "[strategy] levels = {} works {orders} orders (both sides) but [live] max_open_orders is {}: raise \
             max_open_orders to at least {orders} or quote fewer levels",
            cfg.levels, cfg.limits.max_open_orders
        )));
    }
    if rules.max_num_orders > 0 && orders > rules.max_num_orders as u64 {
        return Err(LiveError::Setup(format!(
            "[strategy] levels = {} works {orders} orders (both sides) but {}'s MAX_NUM_ORDERS filter allows {} \
             open orders: quote at most {} levels",
            cfg.levels,
            rules.symbol,
            rules.max_num_orders,
            rules.max_num_orders / 2
        )));
    }
    Ok(())
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

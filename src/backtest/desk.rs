//! One symbol's backtest: its hot path, its paper exchange, its position and
//! the advice it gets, fed one recording line at a time.
//!
//! A single-symbol backtest is one desk fed every line ([`super::run_chunks`]);
//! a multi-symbol one ([`super::multi`]) routes each line to its symbol's
//! desk, with the account allocator between each desk's quotes and its
//! exchange (a [`Gate`]). The per-line code is the same, which is what makes
//! a symbol's result in a multi-symbol run equal its own run when budgets
//! do not bind.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::path::PathBuf;

use crate::ai::log::AdviceReplay;
use crate::ai::offline::OfflineAdvisor;
use crate::config::Config;
use crate::exec::paper::latency::exchange_time_ms;
use crate::exec::paper::{FeedClock, LatencyModel, PaperClock, PaperLadder, RttSamples};
use crate::exec::position::Position;
use crate::exec::{Fill, Quote, Side};
use crate::hot::advice::Advice;
use crate::hot::engine::{ExecState, HotEvent, HotPath};
use crate::hot::fixed::{Price, Qty};
use crate::hot::msg::{Level, Symbol};
use crate::hot::strategy::{Strategy, StrategyFill};
use crate::stats::clock::Clock;
use crate::stats::latency::StageHistograms;

use super::{report, BacktestError, FillRecord, MarketSample, QuoteSeen, Report, RunObserver};

/// What stands between a desk's quotes and its exchange: the account
/// allocator in multi-symbol runs, nothing in single-symbol ones.
pub trait Gate {
    /// The part of `quote` that may go to the exchange.
    fn admit(&mut self, quote: Quote) -> Quote;
    /// A fill of this desk.
    fn on_fill(&mut self, fill: &Fill);
    /// The desk's book has this mid now.
    fn on_mid(&mut self, mid: Price, time_ns: i64);
}

/// No gate: every quote goes to the exchange as made.
pub struct Ungated;

impl Gate for Ungated {
    fn admit(&mut self, quote: Quote) -> Quote {
        quote
    }
    fn on_fill(&mut self, _: &Fill) {}
    fn on_mid(&mut self, _: Price, _: i64) {}
}

/// One symbol's backtest state. See the module docs.
pub struct Desk<'c, S: Strategy> {
    config: &'c Config,
    pub(super) hot: HotPath<S>,
    /// Borrowed by the hot path's event sink and, between an event and the
    /// decision, by its feed (never both at once).
    exchange: RefCell<Option<PaperLadder>>,
    pub(super) position: Position,
    fills: Vec<Fill>,
    /// The fills the strategy has not heard of yet, and what it knows.
    hearing: RefCell<Hearing>,
    latency: Option<LatencyModel>,
    /// Market events reach the exchange when received, or (`[paper] clock =
    /// "exchange"`) when they happened there, by the recording's exchange
    /// times: then an order sent at receive time t meets every event that
    /// happened before t + entry latency, including ones received later.
    at_exchange: bool,
    feed_clock: FeedClock,
    /// Advice in simulated time: every interval, from the newest features.
    /// Or a live run's advice log, handed out when each piece arrived then.
    replay: Option<AdviceReplay>,
    advisor: Option<OfflineAdvisor>,
    next_advice_ns: i64,
    advice_updates: u64,
    pub(super) frames: u64,
}

impl<'c, S: Strategy> Desk<'c, S> {
    pub fn new(config: &'c Config, strategy: S, clock: Clock) -> Result<Self, BacktestError> {
        let mut hot = HotPath::new(config.hot, strategy, clock);
        // The exchange side runs inline and must see each diff's book before
        // the quote made from it: the whole diff is applied first.
        hot.set_touch_levels(0);
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
        let replay = match &config.advice_replay {
            Some(p) => Some(
                AdviceReplay::load(p)
                    .map_err(|e| BacktestError::AdviceLog { path: p.display().to_string(), error: e.to_string() })?,
            ),
            None => None,
        };
        let advisor = if replay.is_some() { None } else { config.ai_offline.map(OfflineAdvisor::new) };
        Ok(Self {
            config,
            hot,
            exchange: RefCell::new(None),
            position: Position::new(),
            fills: Vec::with_capacity(64),
            hearing: RefCell::new(Hearing::new()),
            latency,
            at_exchange: config.paper.clock == PaperClock::Exchange,
            feed_clock: FeedClock::default(),
            replay,
            advisor,
            next_advice_ns: i64::MIN,
            advice_updates: 0,
            frames: 0,
        })
    }

    /// One recording line's frame, received at `now`.
    pub fn on_line(&mut self, json: &[u8], now: i64, observer: &mut dyn RunObserver, gate: &mut dyn Gate) {
        let Self { config, hot, exchange, position, fills, hearing, latency, .. } = self;
        let happened = if self.at_exchange { self.feed_clock.at(now, exchange_time_ms(json)) } else { now };
        let at_exchange = self.at_exchange;
        // The exchange is made for the traded symbol, as soon as an event names it.
        let (paper, levels) = (config.paper, config.strategy_levels);
        let make = |s: Symbol| match &*latency {
            Some(m) => PaperLadder::with_latency(s, paper, m.clone(), levels),
            None => PaperLadder::new(s, paper, levels),
        };
        let t_in = hot.clock().now();
        self.frames += 1;
        // Fills whose report has come back by now reach the strategy before
        // this frame's events.
        if hearing.borrow_mut().hear(now) {
            hearing.borrow_mut().tell(hot, exchange.borrow().as_ref());
        }
        let mut top: Option<(i64, Option<Level>, Option<Level>)> = None;
        let mut on_event = |ev: HotEvent<'_>| {
            let mut ex_cell = exchange.borrow_mut();
            let ex = &mut *ex_cell;
            let sink = &mut |f| fills.push(f);
            match ev {
                HotEvent::Depth { symbol, book, time_ns } => {
                    top = Some((time_ns, book.best_bid(), book.best_ask()));
                    if let (Some(b), Some(a)) = (book.best_bid(), book.best_ask()) {
                        gate.on_mid(Price((b.price.0 + a.price.0) / 2), time_ns);
                    }
                    let at = if at_exchange { happened } else { time_ns };
                    ex.get_or_insert_with(|| make(symbol)).on_book(book, at, sink)
                }
                HotEvent::Trade(t) => ex.get_or_insert_with(|| make(t.symbol)).on_trade(&t, happened, sink),
                HotEvent::Quote { quote, tick, synced, best_bid, best_ask } => {
                    let known = hearing.borrow().known;
                    observer.on_quote(&QuoteSeen { quote, synced, best_bid, best_ask, position: known });
                    let quote = gate.admit(quote);
                    // At the quote's own time: a stale pull is stamped when
                    // the timer would have fired, before `now`.
                    ex.get_or_insert_with(|| make(quote.symbol)).on_quote(&quote, tick, quote.time_ns)
                }
            }
            // A fill moves the position (what the run holds) at once, and
            // reaches the strategy one response latency later.
            let ex = ex_cell.as_ref();
            let mut h = hearing.borrow_mut();
            for f in fills.drain(..) {
                position.on_fill(&f);
                gate.on_fill(&f);
                let meta = ex.and_then(|e| e.fill_meta(f.order_id));
                observer.on_fill(&FillRecord { fill: f, meta, position_after: position.qty() });
                let response = ex.and_then(|e| e.response_ns(f.order_id)).unwrap_or(0);
                h.unheard.push_back((f.time_ns.saturating_add(response), f));
            }
            h.hear(now);
        };
        // Between an event and the decision: the fills heard by now go to
        // the strategy, with the state they made.
        let mut feed = |sink: &mut dyn FnMut(&StrategyFill)| {
            let mut h = hearing.borrow_mut();
            for f in h.told.drain(..) {
                sink(&f);
            }
            Some(h.state(exchange.borrow().as_ref()))
        };
        hot.on_frame_fed(json, now, t_in, &mut on_event, &mut feed);
        // Fills heard in a frame that made no decision.
        hearing.borrow_mut().tell(hot, exchange.borrow().as_ref());
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
                position_state: position,
            });
        }
        // `[ai] apply_multiplier` of this run decides how advice sizes the
        // spread, also for a log written without it.
        if let Some(a) = self.replay.as_mut().and_then(|r| r.due(now)) {
            hot.set_advice(Advice { apply_multiplier: config.ai.apply_multiplier, ..a });
            self.advice_updates += 1;
        }
        // The time test first: the features are copied only when advice is
        // due, not on every frame.
        if let Some(a) = self.advisor.as_mut().filter(|_| now >= self.next_advice_ns) {
            if let Some(f) = hot.last_features() {
                let advice = a.advise(&f, now);
                hot.set_advice(Advice { apply_multiplier: config.ai.apply_multiplier, ..advice });
                self.advice_updates += 1;
                self.next_advice_ns = now.saturating_add(config.ai_interval_ns);
            }
        }
    }

    /// The desk's report (`files` and `wall_s` as the run's) and histograms.
    pub fn finish(self, files: &[PathBuf], wall_s: f64) -> Result<(Report, StageHistograms), BacktestError> {
        let config = self.config;
        let symbol = self.hot.traded_symbol().ok_or(BacktestError::NothingTraded)?;
        let exchange = self.exchange.into_inner();
        let counts = exchange.as_ref().map(|e| e.counts()).unwrap_or_default();
        let mut r = report(files, &self.hot, counts, &self.position, symbol, wall_s);
        r.trading.advice = match (&config.advice_replay, config.ai_offline.is_some()) {
            (Some(p), _) => format!("replayed log {}", p.display()),
            (None, true) => "offline".into(),
            (None, false) => "none".into(),
        };
        r.trading.advice_updates = self.advice_updates;
        if let Some(e) = exchange.as_ref() {
            r.trading.rejected_post_only = e.rejected_post_only();
            r.trading.fill_model = e.model();
        }
        Ok((r, self.hot.histograms().clone()))
    }
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
    fn state(&self, exchange: Option<&PaperLadder>) -> ExecState {
        let working = exchange.into_iter().flat_map(|e| e.working());
        ExecState { position: self.known, ..ExecState::of_orders(&self.account, working, self.last_fill_ns) }
    }

    /// Tells the strategy of the fills heard and not told yet, then the
    /// state they made.
    fn tell<S: Strategy>(&mut self, hot: &mut HotPath<S>, exchange: Option<&PaperLadder>) {
        if self.told.is_empty() {
            return;
        }
        for f in self.told.drain(..) {
            hot.on_fill(&f);
        }
        hot.set_exec_state(self.state(exchange));
    }
}

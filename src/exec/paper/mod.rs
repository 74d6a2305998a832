//! Paper exchange: a deterministic simulation of how the quotes the hot
//! thread wants become resting orders on Binance, and when those orders get
//! filled.
//!
//! It exists so a backtest (and paper trading) runs the same quoting code as
//! live, against recorded market data, and gets the same fills on every
//! run: no wall clock, and no randomness but a seeded one (replayed
//! latencies); every method takes the event's time in ns, and the caller
//! passes events in non-decreasing time order (a small step back, as the
//! exchange clock makes between streams, only delays what falls due).
//!
//! Files: this one (orders, fills, the public types), [`queue`] (where an
//! order stands in its price's queue: risk-averse, power, log),
//! [`latency`] (entry, cancel and response delays; replay of a live run's
//! round trips) and [`ladder`] (a ladder of `[strategy] levels` orders a
//! side: one exchange of this file per level, sharing the position).
//!
//! # Orders
//!
//! At most one order per side rests on the exchange ("live"; a ladder's
//! further levels are further exchanges, [`ladder`]), plus at most
//! one order per side in flight ("pending", sent but not yet arrived), plus
//! one "leaving" order whose cancel has not landed when its replacement
//! arrived (it can still fill). All slots are fixed fields: nothing
//! allocates after [`PaperExchange::new`]. [`PaperExchange::on_quote`]
//! compares the desired quote (latest wins) with what the side is working:
//! a pulled side cancels; an empty side sends a new order; a side whose
//! price moved by at least `refresh_ticks` ticks, whose size differs from
//! the size the order was sent with, or whose order is older than
//! `max_order_age_ns` is cancelled and replaced (the cancel and the new order
//! are sent together).
//!
//! Delays ([`latency`]): a new order goes live `entry` after it is sent, a
//! cancel takes effect `cancel` after it is sent (until then the old order
//! can still fill; a cancel that would land before its order is applied
//! when the order arrives), and the exchange's answers come back `response`
//! later. A side waits for the answer to its last new order (ack or reject)
//! before it sends another order, as a client that waits for acks does;
//! meanwhile an order no longer wanted is cancelled. An order filled
//! completely is, until its fill report comes back, still believed to work
//! by the client: kept while wanted, else cancelled (a cancel that finds
//! nothing) and replaced.
//!
//! # Fill model
//!
//! - Queue place at arrival: when an order is sent, the visible quantity at
//!   its price in the book last seen then is recorded, and every book update
//!   while it is in flight replaces it, so the order joins BEHIND the
//!   quantity visible in the book as last seen before its arrival (the book
//!   at send is remembered for its top ten levels a side, [`TOP_LEVELS`]; an
//!   order priced deeper learns its queue from the first book in flight).
//!   An order activated by a book update never queues behind what that
//!   update added.
//!   Only an order for which no book was seen at all since it was sent (and
//!   none covering its price before) takes the activating book, or, if it
//!   goes live on a trade or on time, has an unknown queue
//!   ([`QUEUE_UNKNOWN`]: it fills only through its price until a book
//!   bounds the queue).
//! - Post-only ([`OrderType::LimitMaker`], the default): an order that would
//!   cross the book as last seen before it arrives (a bid at or above the
//!   best ask, an ask at or below the best bid) is rejected, as Binance
//!   rejects a `LIMIT_MAKER` "if the order immediately matches and trades as
//!   a taker" (binance-spot-api-docs rest-api.md, "New order (TRADE)"; the
//!   answer is `-2010 NEW_ORDER_REJECTED` with "Order would immediately
//!   match and take.", errors.md), and counted in
//!   [`PaperStats::rejected_post_only`]. [`OrderType::Limit`] instead takes
//!   the crossed levels of that book, best first, at their prices and the
//!   taker fee, and rests the remainder at its price as maker.
//! - Queue models ([`queue::QueueModel`], `[paper] queue_model`): trades at
//!   our price consume the queue ahead, then fill our order (partially if
//!   need be, in whole lots of `lot_size`, rounded to the nearest as
//!   hftbacktest does); book updates move it by the model's rule.
//! - A trade through our price (a sell below our bid, a buy above our ask)
//!   fills our order completely, as does a book that has moved through it
//!   (best ask <= our bid, best bid >= our ask). Maker fills are at our own
//!   price with fee `mul_rate(notional(price, qty), maker_fee_rate)`, which
//!   may be negative (a rebate); every fee is in the quote asset
//!   ([`FeeAsset::Quote`]; Binance takes a buy's fee in base or BNB).
//!
//! # Clocks
//!
//! By default everything runs on the recording's receive clock: a market
//! event happens at the exchange when we received it, so the feed latency
//! (exchange event time `E` to receive time, the `feed_delay` stage) is not
//! modelled, and in exchange terms an order reaches the matching engine
//! about one feed delay early relative to the market events around it.
//! With `[paper] clock = "exchange"` the backtest passes market events at
//! their exchange time instead ([`latency::FeedClock`]: `T`, else `E`,
//! mapped onto the receive clock by the smallest delay seen), so an order
//! sent at receive time t meets every event that happened before t + entry,
//! including ones received later. Events still come in receive order, so
//! the times the exchange sees can step back a little between streams.
//!
//! # Known optimism
//!
//! - No market impact: our paper orders are not in the real book, so our
//!   fills remove no liquidity and the market trades on as if we were absent.
//! - A book that crosses our price fills us even when the level vanished by
//!   cancels and the other side was reposted without trading with anyone.
//! - Receive clock (the default): an order sent at receive time t meets the
//!   events we received after t + entry, which happened at the exchange one
//!   feed delay earlier; it thus beats events that in truth came before it.
//! - If the depth update reflecting a trade arrives BEFORE the trade message,
//!   the queue shrinks twice for the same volume: trade messages normally
//!   come first, but not always.
//! - No rate limits, self-trade prevention or exchange outages; a cancel
//!   that would reach the exchange before its order is applied on arrival.
//!
//! # Known pessimism
//!
//! - Risk-averse model: cancels at our price are assumed to be behind us
//!   unless the visible quantity forces otherwise.
//! - An order with an unknown queue (see above) cannot be filled at its own
//!   price until the next book update.
//! - A side waits for the answer to its last order before sending another.

pub mod ladder;
pub mod latency;
pub mod queue;

#[cfg(test)]
mod tests;

pub use ladder::PaperLadder;
pub use latency::{FeedClock, LatencyError, LatencyModel, PaperClock, RttSamples};
pub use queue::{QueueModel, QueuePlace};

use crate::exec::{FeeAsset, Fill, Quote, Side};
use crate::hot::book::{Book, BookView, TopOfBook, TOP_LEVELS};
use crate::hot::fixed::{mul_rate, notional, Price, Qty};
use crate::hot::msg::{Aggressor, Level, Symbol, Trade};

/// `queue_ahead` of an order whose place in the queue is not known yet
/// (no book seen since it was sent): nothing at its price can reach it
/// until a book update bounds the queue.
pub const QUEUE_UNKNOWN: Qty = Qty(i64::MAX);

/// How paper orders are sent (`[paper] order_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderType {
    /// `LIMIT_MAKER`: rejected when it would cross on arrival.
    LimitMaker,
    /// `LIMIT` GTC: takes what it crosses at the taker fee, rests the rest.
    Limit,
}

impl OrderType {
    pub fn name(&self) -> &'static str {
        match self {
            OrderType::LimitMaker => "limit_maker",
            OrderType::Limit => "limit",
        }
    }
}

/// How the paper exchange behaves.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PaperConfig {
    /// A new order's delay from send to the matching engine, ns.
    pub entry_latency_ns: i64,
    /// A cancel's delay from send to taking effect, ns.
    pub cancel_latency_ns: i64,
    /// The exchange's answers' (acks, rejects, fill reports) delay back, ns.
    pub response_latency_ns: i64,
    /// Seed of the draws of replayed round trips ([`LatencyModel::Replay`]).
    pub latency_seed: u64,
    /// Keep an order whose price is less than this many ticks from the
    /// desired price (and whose size is unchanged). 0 or 1: any price change
    /// replaces.
    pub refresh_ticks: i64,
    /// Replace an order live for longer than this even if unchanged
    /// (`i64::MAX` never does).
    pub max_order_age_ns: i64,
    /// Maker fee as a fixed-point rate (100_000 = 0.1%); negative is a rebate.
    pub maker_fee_rate: i64,
    /// Taker fee as a fixed-point rate, for [`OrderType::Limit`] orders that cross.
    pub taker_fee_rate: i64,
    /// Largest absolute position the exchange side lets orders reach
    /// (`None`: no limit here). The hot path limits its quotes too, but its
    /// view of the position lags the fills; this check, made when an order
    /// would go live, sees every fill and so makes the limit strict.
    pub max_position: Option<Qty>,
    pub queue_model: QueueModel,
    pub order_type: OrderType,
    /// Fills at an order's own price come in whole multiples of this
    /// (`[filters] step_size`): a trade reaching part of a lot rounds to the
    /// nearest lot, as in hftbacktest. `Qty(1)`: no rounding.
    pub lot_size: Qty,
    /// Which clock market events reach the exchange on (backtests).
    pub clock: PaperClock,
}

impl Default for PaperConfig {
    fn default() -> Self {
        Self {
            entry_latency_ns: 20_000_000,
            cancel_latency_ns: 20_000_000,
            response_latency_ns: 20_000_000,
            latency_seed: 1,
            refresh_ticks: 1,
            max_order_age_ns: 10_000_000_000,
            maker_fee_rate: 100_000,
            taker_fee_rate: 100_000,
            max_position: None,
            queue_model: QueueModel::RiskAverse,
            order_type: OrderType::LimitMaker,
            lot_size: Qty(1),
            clock: PaperClock::Receive,
        }
    }
}

impl PaperConfig {
    /// The same delay for entries, cancels and responses.
    pub fn with_latency(self, ns: i64) -> Self {
        Self { entry_latency_ns: ns, cancel_latency_ns: ns, response_latency_ns: ns, ..self }
    }

    /// The constant latency model of these settings.
    pub fn constant_latency(&self) -> LatencyModel {
        LatencyModel::Constant {
            entry_ns: self.entry_latency_ns,
            cancel_ns: self.cancel_latency_ns,
            response_ns: self.response_latency_ns,
        }
    }
}

/// A book the paper exchange can read, and copy the top of to remember the
/// book as it was when an order was sent.
pub trait PaperBook: BookView {
    fn top(&self) -> TopOfBook;
}

impl PaperBook for Book {
    fn top(&self) -> TopOfBook {
        TopOfBook::of(self)
    }
}

impl PaperBook for TopOfBook {
    fn top(&self) -> TopOfBook {
        *self
    }
}

/// An order as the exchange holds it: live, or (from the `pending_*`
/// accessors) in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkingOrder {
    pub id: u64,
    pub side: Side,
    pub price: Price,
    /// Quantity remaining.
    pub qty: Qty,
    /// Quantity the order was sent with.
    pub orig_qty: Qty,
    /// Visible quantity ahead of us at our price ([`QUEUE_UNKNOWN`] while
    /// unknown).
    pub queue_ahead: Qty,
    /// When the order joined (or, in flight, will join) the book.
    pub live_since_ns: i64,
    /// When a cancel sent for it takes effect, if one was sent.
    pub cancel_at_ns: Option<i64>,
}

/// How a filled order was placed: what fills files and research read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FillMeta {
    /// Visible quantity ahead of the order when it went live
    /// ([`QUEUE_UNKNOWN`] when it was not known then).
    pub queue_ahead_at_arrival: Qty,
    /// When the order was sent, ns.
    pub sent_ns: i64,
    /// When it went live on the exchange, ns.
    pub live_since_ns: i64,
}

/// Orders whose placement is remembered for [`PaperExchange::fill_meta`]:
/// at most three per side on the book or in flight, plus a few finished.
const REMEMBERED: usize = 16;

/// Counters of the paper exchange's activity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PaperStats {
    /// Quotes received by `on_quote`.
    pub quotes: u64,
    /// New orders sent.
    pub orders: u64,
    /// Cancels sent.
    pub cancels: u64,
    /// Fills emitted.
    pub fills: u64,
    /// Total quantity filled, both sides.
    pub filled_qty: Qty,
    /// Orders not placed because filling them could pass `max_position`.
    pub refused_by_limit: u64,
    /// `LIMIT_MAKER` orders rejected because they would have crossed.
    pub rejected_post_only: u64,
    /// Fills as taker (crossing [`OrderType::Limit`] orders).
    pub taker_fills: u64,
}

/// An order plus the exchange's private bookkeeping for it.
#[derive(Debug, Clone, Copy)]
struct Order {
    o: WorkingOrder,
    /// In flight: visible quantity at its price in the latest book seen
    /// (`None`: no book covering its price seen since it was sent).
    seen_qty: Option<i64>,
    /// Live: its place in the queue (`None`: unknown).
    place: Option<QueuePlace>,
    sent_ns: i64,
    /// Delay of the exchange's answers about this order.
    response_ns: i64,
}

impl Order {
    fn sync_queue(&mut self) {
        self.o.queue_ahead = self.place.map_or(QUEUE_UNKNOWN, |p| Qty(p.ahead_shown()));
    }
}

/// The slots of one side.
#[derive(Debug, Clone, Copy, Default)]
struct Slots {
    live: Option<Order>,
    pending: Option<Order>,
    /// A replaced order still on the book: its cancel has not landed.
    leaving: Option<Order>,
    /// Until then, the client has not heard the answer (ack or reject) to
    /// its last new order and sends no other.
    busy_until: i64,
    /// An order the exchange filled completely, and when the client hears
    /// of it: until then the client still believes it works there.
    filled: Option<(WorkingOrder, i64)>,
}

const BID: usize = 0;
const ASK: usize = 1;
/// Which order of a side: the live one or the leaving one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Live,
    Leaving,
}

/// A deterministic simulated exchange for one symbol. See the module doc for
/// the order and fill model.
#[derive(Debug, Clone)]
pub struct PaperExchange {
    symbol: Symbol,
    cfg: PaperConfig,
    latency: LatencyModel,
    next_id: u64,
    /// Added to `next_id` per order: a ladder's levels number their orders
    /// apart ([`PaperExchange::with_ids`]).
    id_stride: u64,
    /// Indexed by [`BID`] and [`ASK`].
    sides: [Slots; 2],
    stats: PaperStats,
    /// Net position from the fills this exchange made (long > 0).
    net: i64,
    /// Per side, what other orders of the symbol can still fill (a
    /// ladder's other levels, [`PaperExchange::set_reserved`]).
    reserved: [i64; 2],
    /// The top of the latest book seen (`None` before the first).
    seen: Option<TopOfBook>,
    /// Placement of the latest orders to go live, oldest overwritten first,
    /// with the delay of the answers about each.
    placed: [(u64, FillMeta, i64); REMEMBERED],
    next_placed: usize,
}

impl PaperExchange {
    /// An exchange with the constant latencies of `cfg`.
    pub fn new(symbol: Symbol, cfg: PaperConfig) -> Self {
        Self::with_latency(symbol, cfg, cfg.constant_latency())
    }

    /// An exchange whose delays come from `latency`.
    pub fn with_latency(symbol: Symbol, cfg: PaperConfig, latency: LatencyModel) -> Self {
        let none = FillMeta { queue_ahead_at_arrival: QUEUE_UNKNOWN, sent_ns: 0, live_since_ns: 0 };
        Self {
            symbol,
            cfg,
            latency,
            next_id: 1,
            id_stride: 1,
            sides: [Slots::default(); 2],
            stats: PaperStats::default(),
            net: 0,
            reserved: [0; 2],
            seen: None,
            placed: [(0, none, 0); REMEMBERED],
            next_placed: 0,
        }
    }

    /// Numbers orders `first`, `first + stride`, ... (a ladder's levels
    /// share one id space).
    pub fn with_ids(self, first: u64, stride: u64) -> Self {
        Self { next_id: first.max(1), id_stride: stride.max(1), ..self }
    }

    /// Moves the position the `max_position` check sees by `qty` (long >
    /// 0): fills made by another level of the same symbol's ladder.
    pub fn add_net(&mut self, qty: i64) {
        self.net = self.net.saturating_add(qty);
    }

    /// What other orders of the symbol (a ladder's other levels) can
    /// still fill, per side: the `max_position` check at arrival counts it.
    pub fn set_reserved(&mut self, buy: i64, sell: i64) {
        self.reserved = [buy, sell];
    }

    /// What the orders of `side` on the book (live, and a replaced one
    /// whose cancel has not landed) can still fill.
    pub fn working_qty(&self, side: Side) -> i64 {
        let slots = &self.sides[if side == Side::Buy { BID } else { ASK }];
        [slots.live, slots.leaving].iter().flatten().map(|o| o.o.qty.0).sum()
    }

    /// How order `order_id` was placed, if it is one of the latest orders
    /// to go live (ids start at 1).
    pub fn fill_meta(&self, order_id: u64) -> Option<FillMeta> {
        self.remembered(order_id).map(|(_, m, _)| m)
    }

    /// How long after an event about order `order_id` (a fill) the strategy
    /// hears of it: the response latency that order drew.
    pub fn response_ns(&self, order_id: u64) -> Option<i64> {
        self.remembered(order_id).map(|(_, _, r)| r)
    }

    fn remembered(&self, order_id: u64) -> Option<(u64, FillMeta, i64)> {
        self.placed.iter().find(|(id, _, _)| *id == order_id && order_id != 0).copied()
    }

    pub fn symbol(&self) -> Symbol {
        self.symbol
    }

    pub fn config(&self) -> &PaperConfig {
        &self.cfg
    }

    pub fn latency_model(&self) -> &LatencyModel {
        &self.latency
    }

    /// The fill model in words, for reports: queue model, order type,
    /// latencies and clock, e.g. `queue risk_averse, limit_maker, latency
    /// constant (entry 20 ms, cancel 20 ms, response 20 ms), clock receive`.
    pub fn model(&self) -> String {
        let c = &self.cfg;
        let queue = match c.queue_model {
            QueueModel::Power(n) => format!("power {n}"),
            q => q.name().to_string(),
        };
        let ms = |ns: i64| ns as f64 / 1e6;
        let latency = match &self.latency {
            LatencyModel::Constant { entry_ns, cancel_ns, response_ns } => format!(
                "constant (entry {} ms, cancel {} ms, response {} ms)",
                ms(*entry_ns),
                ms(*cancel_ns),
                ms(*response_ns)
            ),
            LatencyModel::Replay { samples, .. } => format!(
                "journal_replay ({} place and {} cancel round trips, seed {})",
                samples.place.len(),
                samples.cancel.len(),
                c.latency_seed
            ),
        };
        format!("queue {queue}, {}, latency {latency}, clock {}", c.order_type.name(), c.clock.name())
    }

    /// Takes the latest desired quote. `tick` is the symbol's price grid,
    /// for the refresh tolerance. A level with a non-positive price or size
    /// counts as a pulled side. Activates nothing: the caller passes the
    /// book and trades that make time pass.
    pub fn on_quote(&mut self, q: &Quote, tick: Price, now_ns: i64) {
        self.stats.quotes += 1;
        self.quote_side(BID, Side::Buy, q.bid, tick, now_ns);
        self.quote_side(ASK, Side::Sell, q.ask, tick, now_ns);
    }

    /// A book update: activates due actions, then moves our queue places
    /// and fills orders the book has moved through.
    pub fn on_book(&mut self, book: &impl PaperBook, now_ns: i64, sink: &mut impl FnMut(Fill)) {
        self.activate_due(now_ns, Some(book), sink);
        let model = self.cfg.queue_model;
        for s in [BID, ASK] {
            for slot in [Slot::Leaving, Slot::Live] {
                let Some(ord) = self.slot_mut(s, slot) else { continue };
                let visible = visible_qty(book, ord.o.side, ord.o.price);
                match ord.place.as_mut() {
                    Some(p) => p.on_depth(model, visible),
                    // The first book bounds an unknown queue.
                    None => ord.place = Some(QueuePlace::behind(visible)),
                }
                ord.sync_queue();
                let o = &ord.o;
                let through = match o.side {
                    Side::Buy => book.best_ask().is_some_and(|a| a.price <= o.price),
                    Side::Sell => book.best_bid().is_some_and(|b| b.price >= o.price),
                };
                if through {
                    let (qty, price) = (o.qty.0, o.price);
                    self.fill(s, slot, qty, price, true, now_ns, sink);
                }
            }
        }
        // Orders still in flight remember what they will queue behind.
        for slots in &mut self.sides {
            if let Some(p) = slots.pending.as_mut() {
                p.seen_qty = Some(visible_qty(book, p.o.side, p.o.price));
            }
        }
        self.seen = Some(book.top());
    }

    /// A public trade: activates due actions, then fills our orders on the
    /// side the taker hit.
    pub fn on_trade(&mut self, t: &Trade, now_ns: i64, sink: &mut impl FnMut(Fill)) {
        self.activate_due::<TopOfBook>(now_ns, None, sink);
        // A selling taker hits bids, a buying taker lifts asks.
        let s = match t.aggressor {
            Aggressor::Sell => BID,
            Aggressor::Buy => ASK,
        };
        let lot = self.cfg.lot_size.0;
        for slot in [Slot::Leaving, Slot::Live] {
            let Some(ord) = self.slot_mut(s, slot) else { continue };
            let o = ord.o;
            let through = match o.side {
                Side::Buy => t.price < o.price,
                Side::Sell => t.price > o.price,
            };
            let qty = if through {
                o.qty.0
            } else if t.price == o.price {
                // Each order meets the whole trade, as in hftbacktest: our
                // two orders are never both at one price for long.
                let reached = ord.place.as_mut().map_or(0, |p| p.on_trade(t.qty.0, lot));
                ord.sync_queue();
                reached.min(o.qty.0)
            } else {
                0
            };
            if qty > 0 {
                self.fill(s, slot, qty, o.price, true, now_ns, sink);
            }
        }
    }

    /// Time passes with no market event: activates due actions (an
    /// arriving [`OrderType::Limit`] order that crosses fills into `sink`).
    pub fn on_time(&mut self, now_ns: i64, sink: &mut impl FnMut(Fill)) {
        self.activate_due::<TopOfBook>(now_ns, None, sink);
    }

    /// The live bid (resting on the exchange), if any.
    pub fn working_bid(&self) -> Option<WorkingOrder> {
        self.sides[BID].live.map(|o| o.o)
    }

    /// The live ask (resting on the exchange), if any.
    pub fn working_ask(&self) -> Option<WorkingOrder> {
        self.sides[ASK].live.map(|o| o.o)
    }

    /// The bid in flight (sent, not yet live), if any.
    pub fn pending_bid(&self) -> Option<WorkingOrder> {
        self.sides[BID].pending.map(|o| o.o)
    }

    /// The ask in flight (sent, not yet live), if any.
    pub fn pending_ask(&self) -> Option<WorkingOrder> {
        self.sides[ASK].pending.map(|o| o.o)
    }

    /// The counts reports show.
    pub fn counts(&self) -> crate::exec::ExecCounts {
        let s = self.stats();
        crate::exec::ExecCounts { orders: s.orders, cancels: s.cancels, fills: s.fills }
    }

    pub fn stats(&self) -> PaperStats {
        self.stats
    }

    /// `LIMIT_MAKER` orders rejected because they would have crossed (for
    /// reports).
    pub fn rejected_post_only(&self) -> u64 {
        self.stats.rejected_post_only
    }

    fn slot_mut(&mut self, s: usize, slot: Slot) -> Option<&mut Order> {
        match slot {
            Slot::Live => self.sides[s].live.as_mut(),
            Slot::Leaving => self.sides[s].leaving.as_mut(),
        }
    }

    /// Marks `ord` cancelled (once), landing after a cancel delay.
    fn cancel(latency: &mut LatencyModel, stats: &mut PaperStats, ord: &mut Order, now: i64) {
        if ord.o.cancel_at_ns.is_none() {
            ord.o.cancel_at_ns = Some(now.saturating_add(latency.next_cancel()));
            stats.cancels += 1;
        }
    }

    fn quote_side(&mut self, s: usize, side: Side, want: Option<Level>, tick: Price, now: i64) {
        let want = want.filter(|l| l.price.0 > 0 && l.qty.0 > 0);
        let slots = &mut self.sides[s];
        let (lat, stats) = (&mut self.latency, &mut self.stats);
        // A completely filled order whose report has not come back yet: the
        // client still thinks it works (a cancel it sends for it will find
        // nothing, but counts as sent).
        let believed = slots.filled.as_mut().filter(|(o, heard)| now < *heard && o.cancel_at_ns.is_none());
        let Some(want) = want else {
            // Pulled: cancel whatever is not already being cancelled, in
            // flight or live.
            for ord in [slots.live.as_mut(), slots.pending.as_mut()].into_iter().flatten() {
                Self::cancel(lat, stats, ord, now);
            }
            if let Some((o, _)) = believed {
                o.cancel_at_ns = Some(now);
                stats.cancels += 1;
            }
            return;
        };
        if slots.pending.is_some() || now < slots.busy_until {
            // The answer to the last order has not come back: the side is
            // busy. If the order is no longer wanted, cancel it now; its
            // replacement goes out with the first quote after the answer.
            match (slots.pending.as_mut().or(slots.live.as_mut()), believed) {
                (Some(o), _) => {
                    if o.o.cancel_at_ns.is_none() && needs_replace(&o.o, want, tick, &self.cfg, now) {
                        Self::cancel(lat, stats, o, now);
                    }
                }
                (None, Some((o, _))) => {
                    if needs_replace(o, want, tick, &self.cfg, now) {
                        o.cancel_at_ns = Some(now);
                        stats.cancels += 1;
                    }
                }
                (None, None) => {}
            }
            return;
        }
        if let Some(l) = slots.live.as_mut() {
            if l.o.cancel_at_ns.is_none() {
                if !needs_replace(&l.o, want, tick, &self.cfg, now) {
                    return;
                }
                Self::cancel(lat, stats, l, now);
            }
        } else if let Some((o, _)) = believed {
            if !needs_replace(o, want, tick, &self.cfg, now) {
                return;
            }
            o.cancel_at_ns = Some(now);
            stats.cancels += 1;
        }
        // Nothing working that we keep: send a new order.
        let d = lat.next_order();
        let due = now.saturating_add(d.entry_ns);
        slots.busy_until = due.saturating_add(d.response_ns);
        slots.filled = None;
        let id = self.next_id;
        self.next_id += self.id_stride;
        stats.orders += 1;
        slots.pending = Some(Order {
            o: WorkingOrder {
                id,
                side,
                price: want.price,
                qty: want.qty,
                orig_qty: want.qty,
                queue_ahead: QUEUE_UNKNOWN,
                live_since_ns: due,
                cancel_at_ns: None,
            },
            // The book as last seen when sending: in-flight updates refine it.
            seen_qty: self.seen.as_ref().and_then(|b| seen_qty(b, side, want.price)),
            place: None,
            sent_ns: now,
            response_ns: d.response_ns,
        });
    }

    /// Applies every due action (cancel lands, new order goes live) in order
    /// of due time; at equal times cancels first (a replacement's cancel is
    /// sent before its new order), then bid before ask.
    fn activate_due<B: BookView>(&mut self, now: i64, book: Option<&B>, sink: &mut impl FnMut(Fill)) {
        loop {
            // (due, kind: 0 cancel leaving / 1 cancel live / 2 activate, side)
            let mut next: Option<(i64, u8, usize)> = None;
            for (s, slots) in self.sides.iter().enumerate() {
                let leaving = slots.leaving.and_then(|o| o.o.cancel_at_ns).map(|t| (t, 0, s));
                let cancel = slots.live.and_then(|o| o.o.cancel_at_ns).map(|t| (t, 1, s));
                let new = slots.pending.map(|o| (o.o.live_since_ns, 2, s));
                for c in [leaving, cancel, new].into_iter().flatten() {
                    if c.0 <= now && next.is_none_or(|n| c < n) {
                        next = Some(c);
                    }
                }
            }
            let Some((due, kind, s)) = next else {
                return;
            };
            match kind {
                0 => self.sides[s].leaving = None,
                1 => self.sides[s].live = None,
                _ => self.arrive(s, due, book, sink),
            }
        }
    }

    /// The pending order of side `s` reaches the matching engine at `at`.
    fn arrive<B: BookView>(&mut self, s: usize, at: i64, book: Option<&B>, sink: &mut impl FnMut(Fill)) {
        let Some(mut ord) = self.sides[s].pending.take() else { return };
        if let Some(max) = self.cfg.max_position {
            let room = match ord.o.side {
                Side::Buy => max.0 - self.net,
                Side::Sell => max.0 + self.net,
            };
            // What the side's other orders (a replaced one whose cancel has
            // not landed, a ladder's other levels) can still fill counts:
            // every order of the side filling stays within the limit.
            let others = self.working_qty(ord.o.side).saturating_add(self.reserved[s]);
            if ord.o.qty.0.saturating_add(others) > room {
                self.stats.refused_by_limit += 1;
                return;
            }
        }
        let crossed = self.seen.as_ref().is_some_and(|b| match ord.o.side {
            Side::Buy => b.best_ask().is_some_and(|a| ord.o.price >= a.price),
            Side::Sell => b.best_bid().is_some_and(|b| ord.o.price <= b.price),
        });
        if crossed && self.cfg.order_type == OrderType::LimitMaker {
            // Binance: -2010 NEW_ORDER_REJECTED, "Order would immediately
            // match and take." (errors.md).
            self.stats.rejected_post_only += 1;
            return;
        }
        // The book as last seen before arrival; only with none seen since
        // sending (and none covering the price before), the activating one.
        let level = ord.seen_qty.or_else(|| book.map(|b| visible_qty(b, ord.o.side, ord.o.price)));
        ord.place = level.map(QueuePlace::behind);
        if crossed {
            // What it crosses it takes; the rest rests first in the queue.
            ord.place = Some(QueuePlace::behind(0));
        }
        ord.sync_queue();
        self.placed[self.next_placed] = (
            ord.o.id,
            FillMeta { queue_ahead_at_arrival: ord.o.queue_ahead, sent_ns: ord.sent_ns, live_since_ns: at },
            ord.response_ns,
        );
        self.next_placed = (self.next_placed + 1) % REMEMBERED;
        let slots = &mut self.sides[s];
        // A replaced order whose cancel has not landed stays on the book
        // until it does; an older one still leaving is dropped (its cancel
        // was sent first).
        if let Some(old) = slots.live.take() {
            slots.leaving = Some(old);
        }
        slots.live = Some(ord);
        if crossed {
            self.take(s, at, sink);
        }
    }

    /// A crossing [`OrderType::Limit`] order on side `s` takes the levels of
    /// the book last seen, best first, up to its price.
    fn take(&mut self, s: usize, now: i64, sink: &mut impl FnMut(Fill)) {
        let Some(top) = self.seen else { return };
        let Some(ord) = self.sides[s].live else { return };
        let (levels, len) = match ord.o.side {
            Side::Buy => (top.asks, top.ask_len),
            Side::Sell => (top.bids, top.bid_len),
        };
        for l in &levels[..len as usize] {
            let crosses = match ord.o.side {
                Side::Buy => l.price <= ord.o.price,
                Side::Sell => l.price >= ord.o.price,
            };
            let Some(left) = self.sides[s].live.map(|o| o.o.qty.0) else { return };
            if !crosses || left == 0 {
                return;
            }
            self.fill(s, Slot::Live, left.min(l.qty.0), l.price, false, now, sink);
        }
    }

    /// Fills `qty` of order `slot` on side `s` at `price`.
    #[allow(clippy::too_many_arguments)]
    fn fill(
        &mut self,
        s: usize,
        slot: Slot,
        qty: i64,
        price: Price,
        maker: bool,
        now: i64,
        sink: &mut impl FnMut(Fill),
    ) {
        let rate = if maker { self.cfg.maker_fee_rate } else { self.cfg.taker_fee_rate };
        let symbol = self.symbol;
        let Some(ord) = self.slot_mut(s, slot) else { return };
        let qty = qty.min(ord.o.qty.0);
        if qty <= 0 {
            return;
        }
        let o = &mut ord.o;
        o.qty = Qty(o.qty.0 - qty);
        let fill = Fill {
            symbol,
            order_id: o.id,
            side: o.side,
            price,
            qty: Qty(qty),
            fee: mul_rate(notional(price.0, qty), rate),
            // Paper charges both sides in the quote asset (unlike Binance,
            // which takes a buy's fee in base or BNB).
            fee_asset: FeeAsset::Quote,
            time_ns: now,
            maker,
        };
        if o.qty.0 == 0 {
            // Done: a cancel still in flight for it will find nothing. The
            // client hears of it one response later; until then it acts as
            // if the order still worked (unless it is cancelling it).
            let heard = now.saturating_add(ord.response_ns);
            let done = *o;
            let slots = &mut self.sides[s];
            match slot {
                Slot::Live => slots.live = None,
                Slot::Leaving => slots.leaving = None,
            }
            if done.cancel_at_ns.is_none() {
                slots.filled = Some((done, heard));
            }
        }
        self.stats.fills += 1;
        self.stats.taker_fills += u64::from(!maker);
        self.stats.filled_qty = Qty(self.stats.filled_qty.0.saturating_add(qty));
        self.net += match fill.side {
            Side::Buy => qty,
            Side::Sell => -qty,
        };
        sink(fill);
    }
}

/// Whether a working order no longer matches the desired level: the price
/// moved by at least `refresh_ticks` ticks, the size differs from what it was
/// sent with, or it has been live longer than `max_order_age_ns`.
fn needs_replace(o: &WorkingOrder, want: Level, tick: Price, cfg: &PaperConfig, now: i64) -> bool {
    let moved = (want.price.0 - o.price.0).abs();
    let tolerance = cfg.refresh_ticks.saturating_mul(tick.0);
    (moved != 0 && moved >= tolerance)
        || want.qty != o.orig_qty
        || now.saturating_sub(o.live_since_ns) > cfg.max_order_age_ns
}

/// Visible quantity at `price` on the side an order of `side` rests on, 0
/// when there is no level there.
fn visible_qty(book: &impl BookView, side: Side, price: Price) -> i64 {
    match side {
        Side::Buy => book.bid_qty_at(price).0,
        Side::Sell => book.ask_qty_at(price).0,
    }
}

/// Visible quantity at `price` in a remembered top of book: exact (0 when
/// absent) if the price is within the levels it holds, `None` beyond them.
fn seen_qty(top: &TopOfBook, side: Side, price: Price) -> Option<i64> {
    let (levels, len) = match side {
        Side::Buy => (&top.bids, top.bid_len as usize),
        Side::Sell => (&top.asks, top.ask_len as usize),
    };
    let levels = &levels[..len];
    if let Some(l) = levels.iter().find(|l| l.price == price) {
        return Some(l.qty.0);
    }
    let covered = len < TOP_LEVELS
        || match side {
            Side::Buy => price > levels[len - 1].price,
            Side::Sell => price < levels[len - 1].price,
        };
    covered.then_some(0)
}

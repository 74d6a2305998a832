//! Paper exchange: a deterministic simulation of how the quotes the hot thread
//! wants become resting maker orders, and when those orders get filled.
//!
//! It exists so a backtest (and later paper trading) runs the same quoting
//! code as live, against recorded market data, and gets the same fills on
//! every run: there is no randomness and no wall clock; every method takes
//! the event's time in ns, and the caller passes events in non-decreasing
//! time order.
//!
//! # Orders
//!
//! At most one order per side rests on the exchange ("live"), plus at most
//! one order per side in flight ("pending", sent but not yet arrived). Both
//! slots are fixed fields: nothing allocates after [`PaperExchange::new`].
//! [`PaperExchange::on_quote`] compares the desired quote (latest wins) with
//! what the side is working, or will be working once in-flight messages land:
//! a pulled side cancels; an empty side sends a new order; a side whose price
//! moved by at least `refresh_ticks` ticks, whose size differs from the size
//! the order was sent with, or whose order is older than `max_order_age_ns`
//! is cancelled and replaced. Every message takes `latency_ns`: a new order
//! goes live at `now + latency`, a cancel takes effect at `now + latency`, and
//! until then the old order can still fill. While an order is in flight on a
//! side, no further order is sent on that side (an in-flight order that is no
//! longer wanted is cancelled, and its replacement is sent by the first quote
//! after it lands); this keeps one live plus one pending order per side and
//! mirrors a client that waits for its order's ack.
//!
//! # Fill model
//!
//! - A new order joins the queue at its price BEHIND the quantity visible
//!   there when it arrives: the book as last seen before its arrival time
//!   (the book only changes at [`PaperExchange::on_book`] calls), or the
//!   book passed to the `on_book` call that activates it when no book was
//!   seen while it was in flight. An order activated by `on_trade`/`on_time`
//!   with no book seen in flight has an unknown queue ([`QUEUE_UNKNOWN`]):
//!   it can only be filled through, until the next book update bounds it.
//! - On every book update, `queue_ahead = min(queue_ahead, visible qty at our
//!   price)`: we never move back on additions (they join behind us), and a
//!   drop only moves us forward as far as it must (cancels are assumed to be
//!   behind us unless the visible quantity proves otherwise).
//! - A trade at our price by a taker on the other side first consumes
//!   `queue_ahead`, then fills our order (partially if need be; a partly
//!   filled order stays live with its remaining quantity).
//! - A trade through our price (a sell below our bid, a buy above our ask)
//!   fills our order completely, as does a book that has moved through it
//!   (best ask <= our bid, best bid >= our ask). Fills are always at our own
//!   price, as maker, with fee `mul_rate(notional(price, qty), maker_fee_rate)`
//!   in the quote asset on both sides ([`FeeAsset::Quote`]; Binance takes a
//!   buy's fee in base or BNB, which paper does not model yet).
//!
//! # Known optimism
//!
//! - No market impact: our paper orders are not in the real book, so our
//!   fills remove no liquidity and the market trades on as if we were absent.
//! - A book that crosses our price fills us even when the level vanished by
//!   cancels and the other side was reposted without trading with anyone.
//! - An order that arrives when the book has already moved through its price
//!   fills as maker at its price; on Binance a `LIMIT_MAKER` order would be
//!   rejected there, and a plain limit order would take at the taker fee.
//! - If the depth update reflecting a trade arrives BEFORE the trade message,
//!   the queue shrinks twice for the same volume (once by `min`, once by the
//!   trade): trade messages normally come first, but not always.
//! - Latency is a constant, the same both ways; no rejects, rate limits,
//!   self-trade prevention or exchange outages.
//!
//! # Known pessimism
//!
//! - Cancels at our price are assumed to be behind us unless the visible
//!   quantity forces otherwise, so the queue advances slower than it would if
//!   cancels were spread evenly.
//! - An order with an unknown queue (see above) cannot be filled at its own
//!   price until the next book update.
//! - A replacement waits for the in-flight order on that side to land.

use crate::exec::{FeeAsset, Fill, Quote, Side};
use crate::hot::book::{BookView, TopOfBook};
use crate::hot::fixed::{mul_rate, notional, Price, Qty};
use crate::hot::msg::{Aggressor, Level, Symbol, Trade};

/// `queue_ahead` of an order whose place in the queue is not known yet
/// (activated with no book seen since it was sent): nothing at its price can
/// reach it until a book update bounds the queue.
pub const QUEUE_UNKNOWN: Qty = Qty(i64::MAX);

/// How the paper exchange behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PaperConfig {
    /// One-way delay of every message (new order, cancel), ns.
    pub latency_ns: i64,
    /// Keep an order whose price is less than this many ticks from the
    /// desired price (and whose size is unchanged). 0 or 1: any price change
    /// replaces.
    pub refresh_ticks: i64,
    /// Replace an order live for longer than this even if unchanged
    /// (`i64::MAX` never does).
    pub max_order_age_ns: i64,
    /// Maker fee as a fixed-point rate (100_000 = 0.1%).
    pub maker_fee_rate: i64,
    /// Largest absolute position the exchange side lets orders reach
    /// (`None`: no limit here). The hot path limits its quotes too, but its
    /// view of the position lags the fills; this check, made when an order
    /// would go live, sees every fill and so makes the limit strict.
    pub max_position: Option<Qty>,
}

impl Default for PaperConfig {
    fn default() -> Self {
        Self {
            latency_ns: 20_000_000,
            refresh_ticks: 1,
            max_order_age_ns: 10_000_000_000,
            maker_fee_rate: 100_000,
            max_position: None,
        }
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
/// at most two live and two in flight, plus a few just finished.
const REMEMBERED: usize = 8;

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
}

/// An order plus the exchange's private bookkeeping for it.
#[derive(Debug, Clone, Copy)]
struct Order {
    o: WorkingOrder,
    /// Visible quantity at its price in the latest book seen while in flight.
    seen_qty: Option<i64>,
}

/// The two slots of one side.
#[derive(Debug, Clone, Copy, Default)]
struct Slots {
    live: Option<Order>,
    pending: Option<Order>,
}

const BID: usize = 0;
const ASK: usize = 1;

/// A deterministic simulated exchange for one symbol. See the module doc for
/// the order and fill model.
#[derive(Debug, Clone)]
pub struct PaperExchange {
    symbol: Symbol,
    cfg: PaperConfig,
    next_id: u64,
    /// Indexed by [`BID`] and [`ASK`].
    sides: [Slots; 2],
    stats: PaperStats,
    /// Net position from the fills this exchange made (long > 0).
    net: i64,
    /// Placement of the latest orders to go live, oldest overwritten first.
    placed: [(u64, FillMeta); REMEMBERED],
    next_placed: usize,
}

impl PaperExchange {
    pub fn new(symbol: Symbol, cfg: PaperConfig) -> Self {
        let none = FillMeta { queue_ahead_at_arrival: QUEUE_UNKNOWN, sent_ns: 0, live_since_ns: 0 };
        Self {
            symbol,
            cfg,
            next_id: 1,
            sides: [Slots::default(); 2],
            stats: PaperStats::default(),
            net: 0,
            placed: [(0, none); REMEMBERED],
            next_placed: 0,
        }
    }

    /// How order `order_id` was placed, if it is one of the latest orders
    /// to go live (ids start at 1).
    pub fn fill_meta(&self, order_id: u64) -> Option<FillMeta> {
        self.placed.iter().find(|(id, _)| *id == order_id && order_id != 0).map(|(_, m)| *m)
    }

    pub fn symbol(&self) -> Symbol {
        self.symbol
    }

    pub fn config(&self) -> &PaperConfig {
        &self.cfg
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
    pub fn on_book(&mut self, book: &impl BookView, now_ns: i64, sink: &mut impl FnMut(Fill)) {
        self.activate_due(now_ns, Some(book));
        for s in [BID, ASK] {
            let Some(ord) = self.sides[s].live.as_mut() else {
                continue;
            };
            let o = &mut ord.o;
            let visible = visible_qty(book, o.side, o.price);
            o.queue_ahead = Qty(o.queue_ahead.0.min(visible));
            let through = match o.side {
                Side::Buy => book.best_ask().is_some_and(|a| a.price <= o.price),
                Side::Sell => book.best_bid().is_some_and(|b| b.price >= o.price),
            };
            if through {
                let qty = o.qty.0;
                self.fill(s, qty, now_ns, sink);
            }
        }
        // Orders still in flight remember what they will queue behind.
        for slots in &mut self.sides {
            if let Some(p) = slots.pending.as_mut() {
                p.seen_qty = Some(visible_qty(book, p.o.side, p.o.price));
            }
        }
    }

    /// A public trade: activates due actions, then fills our order on the
    /// side the taker hit.
    pub fn on_trade(&mut self, t: &Trade, now_ns: i64, sink: &mut impl FnMut(Fill)) {
        self.activate_due::<TopOfBook>(now_ns, None);
        // A selling taker hits bids, a buying taker lifts asks.
        let s = match t.aggressor {
            Aggressor::Sell => BID,
            Aggressor::Buy => ASK,
        };
        let Some(ord) = self.sides[s].live.as_mut() else {
            return;
        };
        let o = &mut ord.o;
        let through = match o.side {
            Side::Buy => t.price < o.price,
            Side::Sell => t.price > o.price,
        };
        let qty = if through {
            o.qty.0
        } else if t.price == o.price {
            let tq = t.qty.0.max(0);
            let eaten = o.queue_ahead.0.min(tq);
            o.queue_ahead = Qty(o.queue_ahead.0 - eaten);
            (tq - eaten).min(o.qty.0)
        } else {
            0
        };
        if qty > 0 {
            self.fill(s, qty, now_ns, sink);
        }
    }

    /// Time passes with no market event: activates due actions.
    pub fn on_time(&mut self, now_ns: i64) {
        self.activate_due::<TopOfBook>(now_ns, None);
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

    fn quote_side(&mut self, s: usize, side: Side, want: Option<Level>, tick: Price, now: i64) {
        let due = now.saturating_add(self.cfg.latency_ns);
        let want = want.filter(|l| l.price.0 > 0 && l.qty.0 > 0);
        let slots = &mut self.sides[s];
        let Some(want) = want else {
            // Pulled: cancel whatever is not already being cancelled, in
            // flight or live.
            for ord in [slots.live.as_mut(), slots.pending.as_mut()].into_iter().flatten() {
                if ord.o.cancel_at_ns.is_none() {
                    ord.o.cancel_at_ns = Some(due);
                    self.stats.cancels += 1;
                }
            }
            return;
        };
        if let Some(p) = slots.pending.as_mut() {
            // An order is in flight: the side is busy. If that order is no
            // longer wanted, cancel it now; its replacement goes out with the
            // first quote after it lands.
            if p.o.cancel_at_ns.is_none() && needs_replace(&p.o, want, tick, &self.cfg, now) {
                p.o.cancel_at_ns = Some(due);
                self.stats.cancels += 1;
            }
            return;
        }
        if let Some(l) = slots.live.as_mut() {
            if l.o.cancel_at_ns.is_none() {
                if !needs_replace(&l.o, want, tick, &self.cfg, now) {
                    return;
                }
                l.o.cancel_at_ns = Some(due);
                self.stats.cancels += 1;
            }
        }
        // Nothing working that we keep: send a new order. A cancel sent for
        // the live order lands no later than this order (same latency, sent
        // no later), so the live slot is free when it arrives.
        let id = self.next_id;
        self.next_id += 1;
        self.stats.orders += 1;
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
            seen_qty: None,
        });
    }

    /// Applies every due action (cancel lands, new order goes live) in order
    /// of due time; at equal times cancels first (a replacement's cancel is
    /// sent before its new order), then bid before ask.
    fn activate_due<B: BookView>(&mut self, now: i64, book: Option<&B>) {
        loop {
            // (due, kind: 0 cancel / 1 activate, side)
            let mut next: Option<(i64, u8, usize)> = None;
            for (s, slots) in self.sides.iter().enumerate() {
                let cancel = slots.live.and_then(|o| o.o.cancel_at_ns).map(|t| (t, 0, s));
                let new = slots.pending.map(|o| (o.o.live_since_ns, 1, s));
                for c in [cancel, new].into_iter().flatten() {
                    if c.0 <= now && next.is_none_or(|n| c < n) {
                        next = Some(c);
                    }
                }
            }
            let Some((_, kind, s)) = next else {
                return;
            };
            let slots = &mut self.sides[s];
            if kind == 0 {
                slots.live = None;
            } else if let Some(mut ord) = slots.pending.take() {
                if let Some(max) = self.cfg.max_position {
                    let room = match ord.o.side {
                        Side::Buy => max.0 - self.net,
                        Side::Sell => max.0 + self.net,
                    };
                    if ord.o.qty.0 > room {
                        self.stats.refused_by_limit += 1;
                        continue;
                    }
                }
                let queue = ord.seen_qty.or_else(|| book.map(|b| visible_qty(b, ord.o.side, ord.o.price)));
                ord.o.queue_ahead = queue.map_or(QUEUE_UNKNOWN, Qty);
                self.placed[self.next_placed] = (
                    ord.o.id,
                    FillMeta {
                        queue_ahead_at_arrival: ord.o.queue_ahead,
                        sent_ns: ord.o.live_since_ns.saturating_sub(self.cfg.latency_ns),
                        live_since_ns: ord.o.live_since_ns,
                    },
                );
                self.next_placed = (self.next_placed + 1) % REMEMBERED;
                // The live slot is empty here (see `quote_side`); were it
                // not, the newer order would win, as on the exchange the old
                // one would have been cancelled.
                debug_assert!(slots.live.is_none(), "live slot busy at activation");
                slots.live = Some(ord);
            }
        }
    }

    /// Fills `qty` of the live order on side `s` at its own price.
    fn fill(&mut self, s: usize, qty: i64, now: i64, sink: &mut impl FnMut(Fill)) {
        let slots = &mut self.sides[s];
        let Some(ord) = slots.live.as_mut() else {
            return;
        };
        let qty = qty.min(ord.o.qty.0);
        if qty <= 0 {
            return;
        }
        let o = &mut ord.o;
        o.qty = Qty(o.qty.0 - qty);
        let fill = Fill {
            symbol: self.symbol,
            order_id: o.id,
            side: o.side,
            price: o.price,
            qty: Qty(qty),
            fee: mul_rate(notional(o.price.0, qty), self.cfg.maker_fee_rate),
            // Paper charges both sides in the quote asset (unlike Binance,
            // which takes a buy's fee in base or BNB).
            fee_asset: FeeAsset::Quote,
            time_ns: now,
            maker: true,
        };
        if o.qty.0 == 0 {
            // Done: a cancel still in flight for it will find nothing.
            slots.live = None;
        }
        self.stats.fills += 1;
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
/// when there is no level there. Walks from the touch and stops at the first
/// level at or behind `price`: a few levels for a quoting order.
fn visible_qty(book: &impl BookView, side: Side, price: Price) -> i64 {
    match side {
        Side::Buy => book.bid_qty_at(price).0,
        Side::Sell => book.ask_qty_at(price).0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hot::book::Book;
    use crate::hot::fixed::SCALE;

    fn sym() -> Symbol {
        Symbol::new(b"BTCUSDT")
    }

    fn lv(p: i64, q: i64) -> Level {
        Level::new(p * SCALE, q * SCALE)
    }

    fn book(bids: &[Level], asks: &[Level]) -> Book {
        let mut b = Book::with_capacity(1024);
        b.load(bids, asks);
        b
    }

    fn quote(bid: Option<Level>, ask: Option<Level>) -> Quote {
        Quote { symbol: sym(), bid, ask, time_ns: 0, update_id: 0 }
    }

    #[test]
    fn visible_qty_finds_the_level_or_zero() {
        let b = book(&[lv(100, 5), lv(98, 2)], &[lv(101, 3), lv(103, 4)]);
        assert_eq!(visible_qty(&b, Side::Buy, Price(100 * SCALE)), 5 * SCALE);
        assert_eq!(visible_qty(&b, Side::Buy, Price(98 * SCALE)), 2 * SCALE);
        assert_eq!(visible_qty(&b, Side::Buy, Price(99 * SCALE)), 0);
        assert_eq!(visible_qty(&b, Side::Buy, Price(100 * SCALE + 1)), 0);
        assert_eq!(visible_qty(&b, Side::Sell, Price(103 * SCALE)), 4 * SCALE);
        assert_eq!(visible_qty(&b, Side::Sell, Price(102 * SCALE)), 0);
        assert_eq!(visible_qty(&b, Side::Sell, Price(200 * SCALE)), 0);
    }

    #[test]
    fn needs_replace_rules() {
        let cfg = PaperConfig { refresh_ticks: 3, max_order_age_ns: 100, ..PaperConfig::default() };
        let o = WorkingOrder {
            id: 1,
            side: Side::Buy,
            price: Price(1000),
            qty: Qty(5),
            orig_qty: Qty(10),
            queue_ahead: Qty(0),
            live_since_ns: 0,
            cancel_at_ns: None,
        };
        let tick = Price(10);
        let at = |p, q| Level::new(p, q);
        assert!(!needs_replace(&o, at(1000, 10), tick, &cfg, 0));
        assert!(!needs_replace(&o, at(1020, 10), tick, &cfg, 0));
        assert!(needs_replace(&o, at(1030, 10), tick, &cfg, 0));
        assert!(needs_replace(&o, at(970, 10), tick, &cfg, 0));
        // Compared with the size sent, not the size left after fills.
        assert!(!needs_replace(&o, at(1000, 10), tick, &cfg, 100));
        assert!(needs_replace(&o, at(1000, 5), tick, &cfg, 0));
        assert!(needs_replace(&o, at(1000, 10), tick, &cfg, 101));
    }

    #[test]
    fn replace_keeps_one_live_and_one_pending_per_side() {
        let mut x = PaperExchange::new(sym(), PaperConfig::default());
        let tick = Price(SCALE);
        let l = x.cfg.latency_ns;
        x.on_quote(&quote(Some(lv(100, 1)), None), tick, 0);
        x.on_time(l);
        assert_eq!(x.working_bid().map(|o| o.id), Some(1));
        // Replace, then change again while the replacement is in flight.
        x.on_quote(&quote(Some(lv(99, 1)), None), tick, l);
        x.on_quote(&quote(Some(lv(98, 1)), None), tick, l + 1);
        let s = x.stats();
        assert_eq!((s.orders, s.cancels), (2, 2));
        assert_eq!(x.pending_bid().unwrap().cancel_at_ns, Some(2 * l + 1));
        // Old order gone, order 2 live but being cancelled.
        x.on_time(2 * l);
        let w = x.working_bid().unwrap();
        assert_eq!((w.id, w.cancel_at_ns), (2, Some(2 * l + 1)));
        assert!(x.pending_bid().is_none());
        // The next quote sends the wanted order.
        x.on_quote(&quote(Some(lv(98, 1)), None), tick, 2 * l);
        assert_eq!(x.pending_bid().unwrap().id, 3);
        x.on_time(3 * l);
        let w = x.working_bid().unwrap();
        assert_eq!((w.id, w.price, w.cancel_at_ns), (3, Price(98 * SCALE), None));
    }
}

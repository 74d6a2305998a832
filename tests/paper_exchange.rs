//! The paper exchange's order and fill model, driven event by event with
//! hand-built books and trades, in simulated time.

use mmbot::exec::paper::{PaperConfig, PaperExchange, PaperStats, QUEUE_UNKNOWN};
use mmbot::exec::position::Position;
use mmbot::exec::{FeeAsset, Fill, Quote, Side};
use mmbot::hot::book::Book;
use mmbot::hot::fixed::{Price, Qty, SCALE};
use mmbot::hot::msg::{Aggressor, Level, Symbol, Trade};

const L: i64 = 20_000_000; // default latency

/// The default exchange with answers (acks, fill reports) back at once:
/// these tests pin the entry and cancel delays and the fill rules; the
/// response latency's effect is tested in `src/exec/paper/tests.rs`.
fn base() -> PaperConfig {
    PaperConfig { response_latency_ns: 0, ..PaperConfig::default() }
}
const TICK: Price = Price(SCALE / 100); // 0.01

fn sym() -> Symbol {
    Symbol::new(b"BTCUSDT")
}

/// Price in cents: `px(10_000)` = 100.00.
fn px(cents: i64) -> Price {
    Price(cents * SCALE / 100)
}

/// Quantity in whole units.
fn qty(units: i64) -> Qty {
    Qty(units * SCALE)
}

fn lv(cents: i64, units: i64) -> Level {
    Level { price: px(cents), qty: qty(units) }
}

fn book(bids: &[Level], asks: &[Level]) -> Book {
    let mut b = Book::with_capacity(1024);
    b.load(bids, asks);
    b
}

/// The usual market: 100.00 x 3 / 100.02 x 4, one tick of depth behind.
fn market() -> Book {
    book(&[lv(10_000, 3), lv(9_999, 7)], &[lv(10_002, 4), lv(10_003, 9)])
}

fn quote(bid: Option<Level>, ask: Option<Level>, t: i64) -> Quote {
    Quote { symbol: sym(), bid, ask, time_ns: t, update_id: 0, deeper: Default::default() }
}

fn trade(cents: i64, units: i64, aggressor: Aggressor) -> Trade {
    Trade {
        symbol: sym(),
        id: 0,
        price: px(cents),
        qty: qty(units),
        trade_time: 0,
        event_time: 0,
        aggressor,
        aggregated: false,
    }
}

/// An exchange plus the fills it emitted.
struct Sim {
    x: PaperExchange,
    fills: Vec<Fill>,
}

impl Sim {
    fn new() -> Self {
        Self::with(base())
    }

    fn with(cfg: PaperConfig) -> Self {
        Self { x: PaperExchange::new(sym(), cfg), fills: Vec::new() }
    }

    fn quote(&mut self, bid: Option<Level>, ask: Option<Level>, t: i64) {
        self.x.on_quote(&quote(bid, ask, t), TICK, t);
    }

    fn book(&mut self, b: &Book, t: i64) {
        let fills = &mut self.fills;
        self.x.on_book(b, t, &mut |f| fills.push(f));
    }

    fn trade(&mut self, tr: Trade, t: i64) {
        let fills = &mut self.fills;
        self.x.on_trade(&tr, t, &mut |f| fills.push(f));
    }

    /// Quotes a bid at t = 0 and makes it live at t = L behind the book.
    fn live_bid(b: &Book, level: Level) -> Self {
        let mut s = Self::new();
        s.book(b, 0);
        s.quote(Some(level), None, 0);
        s.book(b, L);
        assert!(s.x.working_bid().is_some());
        s
    }
}

#[test]
fn new_order_is_not_live_or_fillable_before_latency() {
    let mut s = Sim::new();
    s.quote(Some(lv(10_000, 1)), None, 0);
    assert!(s.x.working_bid().is_none());
    let p = s.x.pending_bid().unwrap();
    assert_eq!((p.id, p.live_since_ns), (1, L));
    // A trade right through our price one ns too early does nothing.
    s.trade(trade(9_990, 10, Aggressor::Sell), L - 1);
    assert!(s.fills.is_empty());
    assert!(s.x.working_bid().is_none());
    // At now + latency the order is live and the same trade fills it.
    s.trade(trade(9_990, 10, Aggressor::Sell), L);
    assert_eq!(s.fills.len(), 1);
    let f = s.fills[0];
    assert_eq!((f.order_id, f.side, f.price, f.qty, f.time_ns, f.maker), (1, Side::Buy, px(10_000), qty(1), L, true));
    assert!(s.x.working_bid().is_none());
}

#[test]
fn on_time_activates_and_book_sets_queue() {
    let b = market();
    let mut s = Sim::new();
    s.quote(Some(lv(10_000, 1)), Some(lv(10_002, 2)), 0);
    s.x.on_time(L - 1, &mut |_| {});
    assert!(s.x.working_bid().is_none());
    s.book(&b, L);
    let bid = s.x.working_bid().unwrap();
    let ask = s.x.working_ask().unwrap();
    assert_eq!((bid.id, bid.queue_ahead, bid.live_since_ns), (1, qty(3), L));
    assert_eq!((ask.id, ask.queue_ahead, ask.qty), (2, qty(4), qty(2)));
    assert_eq!(
        s.x.stats(),
        PaperStats { quotes: 1, orders: 2, cancels: 0, fills: 0, filled_qty: Qty::ZERO, ..PaperStats::default() }
    );
}

#[test]
fn cancel_is_not_effective_before_latency_so_the_old_order_can_fill() {
    let b = market();
    // Pulled at 2L: a trade through at 3L - 1 still fills the old order.
    let mut s = Sim::live_bid(&b, lv(10_000, 1));
    s.quote(None, None, 2 * L);
    assert_eq!(s.x.stats().cancels, 1);
    assert_eq!(s.x.working_bid().unwrap().cancel_at_ns, Some(3 * L));
    s.trade(trade(9_999, 5, Aggressor::Sell), 3 * L - 1);
    assert_eq!(s.fills.len(), 1);
    assert_eq!(s.fills[0].order_id, 1);

    // Same, but the trade comes when the cancel has landed: no fill.
    let mut s = Sim::live_bid(&b, lv(10_000, 1));
    s.quote(None, None, 2 * L);
    s.trade(trade(9_999, 5, Aggressor::Sell), 3 * L);
    assert!(s.fills.is_empty());
    assert!(s.x.working_bid().is_none());
}

#[test]
fn replaced_order_can_fill_until_its_cancel_lands_then_the_new_one_works() {
    let b = market();
    let mut s = Sim::live_bid(&b, lv(10_000, 1));
    s.quote(Some(lv(9_990, 1)), None, 2 * L);
    let st = s.x.stats();
    assert_eq!((st.orders, st.cancels), (2, 1));
    // Old order 1 at 100.00 still there, new order 2 in flight.
    s.trade(trade(9_995, 1, Aggressor::Sell), 2 * L + 1);
    assert_eq!(s.fills.len(), 1);
    assert_eq!(s.fills[0].order_id, 1);
    s.book(&b, 3 * L);
    let w = s.x.working_bid().unwrap();
    assert_eq!((w.id, w.price, w.queue_ahead), (2, px(9_990), Qty::ZERO));
}

#[test]
fn queue_ahead_is_consumed_by_trades_then_ours_fills_partly_then_fully() {
    let b = market(); // 3 ahead at 100.00
    let mut s = Sim::live_bid(&b, lv(10_000, 2));
    assert_eq!(s.x.working_bid().unwrap().queue_ahead, qty(3));
    // Buy-side takers never touch our bid; sells above it neither.
    s.trade(trade(10_000, 9, Aggressor::Buy), L + 1);
    s.trade(trade(10_001, 9, Aggressor::Sell), L + 2);
    assert_eq!(s.x.working_bid().unwrap().queue_ahead, qty(3));
    // 2 of the 3 ahead traded.
    s.trade(trade(10_000, 2, Aggressor::Sell), L + 3);
    assert!(s.fills.is_empty());
    assert_eq!(s.x.working_bid().unwrap().queue_ahead, qty(1));
    // 2 more: 1 finishes the queue, 1 fills us partly.
    s.trade(trade(10_000, 2, Aggressor::Sell), L + 4);
    assert_eq!(s.fills.len(), 1);
    assert_eq!(s.fills[0].qty, qty(1));
    let w = s.x.working_bid().unwrap();
    assert_eq!((w.qty, w.orig_qty, w.queue_ahead), (qty(1), qty(2), Qty::ZERO));
    // A big one fills the rest (only what is left) and the order is done.
    s.trade(trade(10_000, 5, Aggressor::Sell), L + 5);
    assert_eq!(s.fills.len(), 2);
    assert_eq!(s.fills[1].qty, qty(1));
    assert!(s.x.working_bid().is_none());
    let st = s.x.stats();
    assert_eq!((st.fills, st.filled_qty), (2, qty(2)));
}

#[test]
fn queue_ahead_shrinks_with_visible_qty_but_never_grows() {
    let mut s = Sim::live_bid(&market(), lv(10_000, 1));
    // More quantity joins at our price: it is behind us.
    s.book(&book(&[lv(10_000, 8)], &[lv(10_002, 4)]), L + 1);
    assert_eq!(s.x.working_bid().unwrap().queue_ahead, qty(3));
    // Quantity drops to 1: at most 1 can be ahead of us.
    s.book(&book(&[lv(10_000, 1)], &[lv(10_002, 4)]), L + 2);
    assert_eq!(s.x.working_bid().unwrap().queue_ahead, qty(1));
    s.book(&book(&[lv(10_000, 6)], &[lv(10_002, 4)]), L + 3);
    assert_eq!(s.x.working_bid().unwrap().queue_ahead, qty(1));
    s.trade(trade(10_000, 1, Aggressor::Sell), L + 4);
    assert!(s.fills.is_empty());
    s.trade(trade(10_000, 1, Aggressor::Sell), L + 5);
    assert_eq!(s.fills.len(), 1);
    // The level vanishing puts us first.
    let mut s = Sim::live_bid(&market(), lv(10_000, 1));
    s.book(&book(&[lv(9_999, 7)], &[lv(10_002, 4)]), L + 1);
    assert_eq!(s.x.working_bid().unwrap().queue_ahead, Qty::ZERO);
    assert!(s.fills.is_empty());
}

#[test]
fn queue_is_the_book_seen_before_arrival_not_later_additions() {
    let mut s = Sim::new();
    s.quote(Some(lv(10_000, 1)), None, 0);
    // In flight, the level shows 3; when we arrive at L it still does; by
    // the next book (L + 5) 10 more joined: behind us.
    s.book(&market(), L / 2);
    s.book(&book(&[lv(10_000, 13)], &[lv(10_002, 4)]), L + 5);
    assert_eq!(s.x.working_bid().unwrap().queue_ahead, qty(3));
}

#[test]
fn unknown_queue_fills_only_through_until_a_book_update() {
    // No book seen while in flight, activated by a trade: unknown queue.
    let mut s = Sim::new();
    s.quote(Some(lv(10_000, 1)), None, 0);
    s.trade(trade(10_000, 50, Aggressor::Sell), L);
    assert!(s.fills.is_empty());
    assert!(s.x.working_bid().unwrap().queue_ahead.0 > qty(1_000_000).0);
    s.book(&market(), L + 1);
    assert_eq!(s.x.working_bid().unwrap().queue_ahead, qty(3));

    let mut s = Sim::new();
    s.quote(Some(lv(10_000, 1)), None, 0);
    s.x.on_time(L, &mut |_| {});
    assert_eq!(s.x.working_bid().unwrap().queue_ahead, QUEUE_UNKNOWN);
    s.trade(trade(9_999, 1, Aggressor::Sell), L + 1);
    assert_eq!(s.fills.len(), 1);
}

#[test]
fn trade_through_the_price_fills_completely() {
    let b = market();
    let mut s = Sim::new();
    s.book(&b, 0);
    s.quote(None, Some(lv(10_002, 3)), 0);
    s.book(&b, L);
    assert_eq!(s.x.working_ask().unwrap().queue_ahead, qty(4));
    // A tiny buy above our ask: the whole level, us included, was taken.
    s.trade(trade(10_003, 1, Aggressor::Buy), L + 1);
    assert_eq!(s.fills.len(), 1);
    let f = s.fills[0];
    assert_eq!((f.side, f.price, f.qty), (Side::Sell, px(10_002), qty(3)));
    assert!(s.x.working_ask().is_none());
}

#[test]
fn book_moving_through_the_price_fills_at_our_price() {
    let mut s = Sim::live_bid(&market(), lv(10_000, 2));
    // Best ask comes down to our bid: we were taken, at our price.
    s.book(&book(&[lv(9_999, 7)], &[lv(10_000, 1)]), L + 1);
    assert_eq!(s.fills.len(), 1);
    let f = s.fills[0];
    assert_eq!((f.side, f.price, f.qty, f.maker), (Side::Buy, px(10_000), qty(2), true));
    // The same for an ask when the best bid rises to it.
    let mut s = Sim::new();
    s.book(&market(), 0);
    s.quote(None, Some(lv(10_002, 1)), 0);
    s.book(&market(), L);
    s.book(&book(&[lv(10_003, 1)], &[lv(10_004, 1)]), L + 1);
    assert_eq!(s.fills.len(), 1);
    assert_eq!((s.fills[0].side, s.fills[0].price), (Side::Sell, px(10_002)));
}

#[test]
fn price_moves_under_refresh_ticks_keep_the_order_larger_ones_replace() {
    let cfg = PaperConfig { refresh_ticks: 3, ..base() };
    let mut s = Sim::with(cfg);
    s.quote(Some(lv(10_000, 1)), None, 0);
    s.x.on_time(L, &mut |_| {});
    // 2 ticks: kept.
    s.quote(Some(lv(10_002, 1)), None, L + 1);
    s.quote(Some(lv(9_998, 1)), None, L + 2);
    assert_eq!((s.x.stats().orders, s.x.stats().cancels), (1, 0));
    assert!(s.x.pending_bid().is_none());
    // 3 ticks: replaced.
    s.quote(Some(lv(9_997, 1)), None, L + 3);
    assert_eq!((s.x.stats().orders, s.x.stats().cancels), (2, 1));
    assert_eq!(s.x.pending_bid().unwrap().price, px(9_997));
    assert_eq!(s.x.stats().quotes, 4);
}

#[test]
fn any_price_change_replaces_with_one_tick_tolerance() {
    let mut s = Sim::new();
    s.quote(Some(lv(10_000, 1)), None, 0);
    s.x.on_time(L, &mut |_| {});
    s.quote(Some(lv(10_000, 1)), None, L + 1);
    assert_eq!(s.x.stats().orders, 1);
    s.quote(Some(lv(10_001, 1)), None, L + 2);
    assert_eq!((s.x.stats().orders, s.x.stats().cancels), (2, 1));
}

#[test]
fn size_change_replaces() {
    let mut s = Sim::new();
    s.quote(None, Some(lv(10_002, 1)), 0);
    s.x.on_time(L, &mut |_| {});
    s.quote(None, Some(lv(10_002, 2)), L + 1);
    assert_eq!((s.x.stats().orders, s.x.stats().cancels), (2, 1));
    assert_eq!(s.x.pending_ask().unwrap().qty, qty(2));
    s.x.on_time(2 * L + 1, &mut |_| {});
    assert_eq!(s.x.working_ask().unwrap().id, 2);
}

#[test]
fn old_orders_are_replaced_after_max_age() {
    let cfg = PaperConfig { max_order_age_ns: 1_000, ..base() };
    let mut s = Sim::with(cfg);
    s.quote(Some(lv(10_000, 1)), None, 0);
    s.x.on_time(L, &mut |_| {});
    s.quote(Some(lv(10_000, 1)), None, L + 1_000);
    assert_eq!(s.x.stats().orders, 1);
    s.quote(Some(lv(10_000, 1)), None, L + 1_001);
    assert_eq!((s.x.stats().orders, s.x.stats().cancels), (2, 1));
    s.x.on_time(2 * L + 1_001, &mut |_| {});
    let w = s.x.working_bid().unwrap();
    assert_eq!((w.id, w.live_since_ns), (2, 2 * L + 1_001));
}

#[test]
fn pulled_quote_cancels_both_sides_once() {
    let mut s = Sim::new();
    s.quote(Some(lv(10_000, 1)), Some(lv(10_002, 1)), 0);
    s.x.on_time(L, &mut |_| {});
    s.quote(None, None, L + 10);
    s.quote(None, None, L + 20);
    assert_eq!(s.x.stats().cancels, 2);
    s.x.on_time(2 * L + 9, &mut |_| {});
    assert!(s.x.working_bid().is_some() && s.x.working_ask().is_some());
    s.x.on_time(2 * L + 10, &mut |_| {});
    assert!(s.x.working_bid().is_none() && s.x.working_ask().is_none());
    // One side only.
    s.quote(Some(lv(10_000, 1)), Some(lv(10_002, 1)), 3 * L);
    s.x.on_time(4 * L, &mut |_| {});
    s.quote(Some(lv(10_000, 1)), None, 4 * L);
    assert_eq!(s.x.stats().cancels, 3);
    s.x.on_time(5 * L, &mut |_| {});
    assert!(s.x.working_bid().is_some() && s.x.working_ask().is_none());
}

#[test]
fn pull_while_in_flight_cancels_the_order_after_it_lands() {
    let mut s = Sim::new();
    s.quote(Some(lv(10_000, 1)), None, 0);
    s.quote(None, None, 5);
    assert_eq!(s.x.stats().cancels, 1);
    // Live from L until the cancel lands at L + 5: it can fill in between.
    s.x.on_time(L, &mut |_| {});
    assert_eq!(s.x.working_bid().unwrap().cancel_at_ns, Some(L + 5));
    s.x.on_time(L + 5, &mut |_| {});
    assert!(s.x.working_bid().is_none() && s.x.pending_bid().is_none());
}

#[test]
fn filled_order_is_requoted_with_the_next_id() {
    let mut s = Sim::live_bid(&market(), lv(10_000, 1));
    s.trade(trade(9_999, 1, Aggressor::Sell), L + 1);
    assert_eq!(s.fills.len(), 1);
    s.quote(Some(lv(9_999, 1)), None, L + 2);
    let p = s.x.pending_bid().unwrap();
    assert_eq!((p.id, p.live_since_ns), (2, 2 * L + 2));
    assert_eq!(s.x.stats().cancels, 0);
}

#[test]
fn maker_fee_is_exactly_a_tenth_of_a_percent_of_notional() {
    // 61837.63 * 0.00123 = 76.0602849; 0.1% = 0.0760602849 -> 0.07606028.
    let price = Price::parse(b"61837.63").unwrap();
    let size = Qty::parse(b"0.00123").unwrap();
    let mut s = Sim::new();
    s.x.on_quote(&quote(None, Some(Level { price, qty: size }), 0), TICK, 0);
    let mut t = trade(0, 0, Aggressor::Buy);
    t.price = Price::parse(b"61837.64").unwrap();
    t.qty = Qty::parse(b"0.5").unwrap();
    s.trade(t, L);
    assert_eq!(s.fills.len(), 1);
    assert_eq!(s.fills[0].fee, 7_606_028);
    assert_eq!(s.fills[0].qty, size);
    // A custom rate: 0.02%.
    let mut s = Sim::with(PaperConfig { maker_fee_rate: 20_000, ..base() });
    s.x.on_quote(&quote(None, Some(Level { price, qty: size }), 0), TICK, 0);
    s.trade(t, L);
    assert_eq!(s.fills[0].fee, 1_521_205);
}

/// A little session: quotes on both sides, the market trades through both
/// at different times, quotes move. Returns the fills.
fn session() -> (Vec<Fill>, PaperStats) {
    let mut s = Sim::new();
    let mut b = market();
    s.book(&b, 0);
    s.quote(Some(lv(10_000, 2)), Some(lv(10_002, 2)), 0);
    s.book(&b, L);
    // Sellers eat the 3 ahead and 1 of ours.
    s.trade(trade(10_000, 4, Aggressor::Sell), L + 100);
    b.apply_bid(lv(10_000, 0));
    s.book(&b, L + 200);
    s.quote(Some(lv(9_999, 2)), Some(lv(10_001, 2)), L + 200);
    // The rest of the old bid fills before its cancel lands.
    s.trade(trade(9_999, 1, Aggressor::Sell), L + 300);
    s.book(&b, 2 * L + 200);
    // Buyers lift through our new ask.
    s.trade(trade(10_002, 3, Aggressor::Buy), 2 * L + 300);
    s.x.on_time(3 * L, &mut |_| {});
    (s.fills, s.x.stats())
}

#[test]
fn same_inputs_give_identical_fills() {
    let (a, sa) = session();
    let (b, sb) = session();
    assert_eq!(a, b);
    assert_eq!(sa, sb);
    assert_eq!(a.len(), 3);
}

#[test]
fn position_follows_the_exchange_fills() {
    let (fills, stats) = session();
    let mut pos = Position::new();
    for f in &fills {
        pos.on_fill(f);
    }
    // Bought 1 + 1 at 100.00, sold 2 at 100.01: flat, +0.02 before fees.
    let sides: Vec<_> = fills.iter().map(|f| (f.order_id, f.side, f.price, f.qty)).collect();
    assert_eq!(
        sides,
        vec![
            (1, Side::Buy, px(10_000), qty(1)),
            (1, Side::Buy, px(10_000), qty(1)),
            (4, Side::Sell, px(10_001), qty(2)),
        ]
    );
    assert_eq!(pos.qty(), Qty::ZERO);
    assert_eq!(pos.max_abs(), qty(2));
    assert_eq!(pos.realized(), 2_000_000);
    // Fees: 0.1% of 100 + 100 + 200.02 = 0.40002.
    assert_eq!(pos.fees(), 40_002_000);
    assert_eq!(pos.fees(), fills.iter().map(|f| f.fee).sum::<i64>());
    // Paper charges both sides in the quote asset (Binance would take the
    // buys' fee in base or BNB): the position's quote change pays them all.
    assert!(fills.iter().all(|f| f.fee_asset == FeeAsset::Quote));
    assert_eq!(pos.fees_by_asset().quote, 40_002_000);
    assert_eq!(pos.quote_delta(), 2_000_000 - 40_002_000);
    assert_eq!(pos.volume(), 40_002_000_000);
    assert_eq!(pos.fills(), 3);
    assert_eq!(stats.filled_qty, qty(4));
    assert_eq!(pos.pnl(px(10_000)), 2_000_000 - 40_002_000);
}

/// The exchange side enforces the position limit with every fill in view:
/// an order whose full size could pass it does not go live (counted).
#[test]
fn orders_that_could_pass_the_position_limit_are_refused_at_activation() {
    let cfg = PaperConfig { max_position: Some(qty(1)), ..base() };
    let mut ex = PaperExchange::new(sym(), cfg);
    let mut fills: Vec<Fill> = Vec::new();
    let b = market();
    let best_bid = b.best_bid().unwrap().price.0;
    let bid_cents = best_bid / (SCALE / 100);
    // A one-unit bid at the touch, filled by a trade through it.
    ex.on_quote(&quote(Some(lv(bid_cents, 1)), None, 0), TICK, 0);
    ex.on_book(&b, L, &mut |f| fills.push(f));
    ex.on_trade(&trade(bid_cents - 1, 5, Aggressor::Sell), L + 1, &mut |f| fills.push(f));
    assert_eq!(fills.len(), 1);
    // Long 1 of max 1: a new bid cannot go live; an ask can.
    ex.on_quote(&quote(Some(lv(bid_cents - 1, 1)), Some(lv(bid_cents + 50, 1)), L + 2), TICK, L + 2);
    ex.on_time(3 * L, &mut |_| {});
    assert!(ex.working_bid().is_none());
    assert!(ex.working_ask().is_some());
    assert_eq!(ex.stats().refused_by_limit, 1);
}

//! Unit tests of the paper exchange: queue place at arrival, post-only
//! rejects, taker fills of plain limit orders, separate latencies, fees.
//! The broader order/fill behaviour is in `tests/paper_exchange.rs`.

use super::*;
use crate::hot::book::Book;
use crate::hot::fixed::SCALE;

const L: i64 = 20_000_000;

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
    Quote { symbol: sym(), bid, ask, time_ns: 0, update_id: 0, deeper: Default::default() }
}

fn sell(p: i64, q: i64) -> Trade {
    Trade {
        symbol: sym(),
        id: 0,
        price: Price(p * SCALE),
        qty: Qty(q * SCALE),
        trade_time: 0,
        event_time: 0,
        aggressor: Aggressor::Sell,
        aggregated: false,
    }
}

/// An exchange plus what it filled.
struct X {
    x: PaperExchange,
    fills: Vec<Fill>,
}

impl X {
    fn new(cfg: PaperConfig) -> Self {
        Self { x: PaperExchange::new(sym(), cfg), fills: Vec::new() }
    }
    fn book(&mut self, b: &Book, t: i64) {
        let f = &mut self.fills;
        self.x.on_book(b, t, &mut |x| f.push(x));
    }
    fn trade(&mut self, tr: Trade, t: i64) {
        let f = &mut self.fills;
        self.x.on_trade(&tr, t, &mut |x| f.push(x));
    }
    fn time(&mut self, t: i64) {
        let f = &mut self.fills;
        self.x.on_time(t, &mut |x| f.push(x));
    }
    fn quote(&mut self, bid: Option<Level>, ask: Option<Level>, t: i64) {
        self.x.on_quote(&quote(bid, ask), Price(SCALE), t);
    }
}

#[test]
fn visible_qty_finds_the_level_or_zero() {
    let b = book(&[lv(100, 5), lv(98, 2)], &[lv(101, 3), lv(103, 4)]);
    assert_eq!(visible_qty(&b, Side::Buy, Price(100 * SCALE)), 5 * SCALE);
    assert_eq!(visible_qty(&b, Side::Buy, Price(99 * SCALE)), 0);
    assert_eq!(visible_qty(&b, Side::Sell, Price(103 * SCALE)), 4 * SCALE);
    assert_eq!(visible_qty(&b, Side::Sell, Price(200 * SCALE)), 0);
}

#[test]
fn seen_qty_is_exact_within_the_remembered_levels_only() {
    let bids: Vec<Level> = (0..12).map(|i| lv(100 - i, 1 + i)).collect();
    let top = book(&bids, &[lv(101, 3)]).top();
    assert_eq!(seen_qty(&top, Side::Buy, Price(100 * SCALE)), Some(SCALE));
    assert_eq!(seen_qty(&top, Side::Buy, Price(91 * SCALE)), Some(10 * SCALE));
    // Above the best bid (inside the spread): nothing there.
    assert_eq!(seen_qty(&top, Side::Buy, Price(100 * SCALE + 1)), Some(0));
    // Below the tenth level: not remembered.
    assert_eq!(seen_qty(&top, Side::Buy, Price(90 * SCALE)), None);
    // The ask side holds one level: all of it is known.
    assert_eq!(seen_qty(&top, Side::Sell, Price(150 * SCALE)), Some(0));
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

/// The queue recorded when the quote is sent holds when the order goes live
/// on a trade: no unknown queue once any book was seen.
#[test]
fn an_order_live_on_a_trade_queues_behind_the_book_seen_at_send() {
    let mut x = X::new(PaperConfig::default());
    x.book(&book(&[lv(100, 3)], &[lv(101, 4)]), 0);
    x.quote(Some(lv(100, 1)), None, 0);
    // Goes live on this trade: 3 ahead (the book at send), 2 of them traded.
    x.trade(sell(100, 2), L);
    let w = x.x.working_bid().unwrap();
    assert_eq!(w.queue_ahead, Qty(SCALE));
    assert!(x.fills.is_empty());
    assert_eq!(x.x.fill_meta(1).unwrap().queue_ahead_at_arrival, Qty(3 * SCALE));
    x.trade(sell(100, 2), L + 1);
    assert_eq!(x.fills.len(), 1);
}

/// An order activated by a book update queues behind the book seen before
/// it arrived, not behind what joined in that update.
#[test]
fn an_order_live_on_a_book_update_ignores_what_that_update_added() {
    let mut x = X::new(PaperConfig::default());
    x.book(&book(&[lv(100, 3)], &[lv(101, 4)]), 0);
    x.quote(Some(lv(100, 1)), None, 0);
    x.book(&book(&[lv(100, 2)], &[lv(101, 4)]), L / 2);
    // At L + 5 the level shows 9: 7 joined after we arrived at L.
    x.book(&book(&[lv(100, 9)], &[lv(101, 4)]), L + 5);
    assert_eq!(x.x.working_bid().unwrap().queue_ahead, Qty(2 * SCALE));
    assert_eq!(x.x.fill_meta(1).unwrap().queue_ahead_at_arrival, Qty(2 * SCALE));
}

#[test]
fn a_limit_maker_that_would_cross_on_arrival_is_rejected() {
    let mut x = X::new(PaperConfig::default());
    x.book(&book(&[lv(100, 3)], &[lv(101, 4)]), 0);
    // A bid at 100 (fine when sent); the ask comes down to 100 in flight.
    x.quote(Some(lv(100, 1)), Some(lv(101, 1)), 0);
    x.book(&book(&[lv(99, 3)], &[lv(100, 4)]), L / 2);
    x.time(L);
    assert!(x.x.working_bid().is_none());
    // The ask at 101 does not cross 99 and rests behind nothing at 101.
    assert_eq!(x.x.working_ask().unwrap().queue_ahead, Qty::ZERO);
    assert_eq!(x.x.stats().rejected_post_only, 1);
    assert_eq!(x.x.rejected_post_only(), 1);
    assert!(x.fills.is_empty());
    // The client hears of the reject one response later: no new bid before.
    x.quote(Some(lv(98, 1)), Some(lv(101, 1)), 2 * L - 1);
    assert!(x.x.pending_bid().is_none());
    x.quote(Some(lv(98, 1)), Some(lv(101, 1)), 2 * L);
    assert_eq!(x.x.pending_bid().unwrap().id, 3);
}

#[test]
fn a_plain_limit_that_crosses_takes_at_the_touch_and_the_taker_fee() {
    let cfg = PaperConfig { order_type: OrderType::Limit, taker_fee_rate: 200_000, ..PaperConfig::default() };
    let mut x = X::new(cfg);
    x.book(&book(&[lv(99, 3)], &[lv(100, 1), lv(101, 2), lv(103, 5)]), 0);
    x.quote(Some(lv(101, 5)), None, 0);
    x.time(L);
    // 1 at 100, 2 at 101, as taker; 2 rest at 101 first in the queue.
    let got: Vec<_> = x.fills.iter().map(|f| (f.price.0 / SCALE, f.qty.0 / SCALE, f.maker)).collect();
    assert_eq!(got, vec![(100, 1, false), (101, 2, false)]);
    assert_eq!(x.fills[0].fee, mul_rate(100 * SCALE, 200_000));
    let w = x.x.working_bid().unwrap();
    assert_eq!((w.qty, w.queue_ahead), (Qty(2 * SCALE), Qty::ZERO));
    assert_eq!((x.x.stats().taker_fills, x.x.stats().rejected_post_only), (2, 0));
}

#[test]
fn negative_maker_fee_is_a_rebate() {
    let cfg = PaperConfig { maker_fee_rate: -10_000, ..PaperConfig::default() };
    let mut x = X::new(cfg);
    x.book(&book(&[lv(100, 3)], &[lv(101, 4)]), 0);
    x.quote(Some(lv(100, 2)), None, 0);
    x.trade(sell(99, 1), L);
    assert_eq!(x.fills.len(), 1);
    // 0.01% of 200 back: -0.02.
    assert_eq!(x.fills[0].fee, -2_000_000);
    assert!(x.fills[0].maker);
}

#[test]
fn entry_cancel_and_response_latencies_apply_separately() {
    let cfg =
        PaperConfig { entry_latency_ns: 10, cancel_latency_ns: 3, response_latency_ns: 100, ..PaperConfig::default() };
    let mut x = X::new(cfg);
    x.book(&book(&[lv(100, 3)], &[lv(101, 4)]), 0);
    x.quote(Some(lv(100, 1)), None, 0);
    assert_eq!(x.x.pending_bid().unwrap().live_since_ns, 10);
    x.time(10);
    assert!(x.x.working_bid().is_some());
    // Acked at 110: a new price before then cancels (effective 3 later) but
    // sends nothing.
    x.quote(Some(lv(99, 1)), None, 50);
    assert_eq!(x.x.working_bid().unwrap().cancel_at_ns, Some(53));
    assert!(x.x.pending_bid().is_none());
    x.time(53);
    assert!(x.x.working_bid().is_none());
    x.quote(Some(lv(99, 1)), None, 109);
    assert!(x.x.pending_bid().is_none());
    x.quote(Some(lv(99, 1)), None, 110);
    let p = x.x.pending_bid().unwrap();
    assert_eq!((p.id, p.live_since_ns), (2, 120));
    assert_eq!(x.x.fill_meta(1).unwrap().sent_ns, 0);
    assert_eq!(x.x.response_ns(1), Some(100));
    let s = x.x.stats();
    assert_eq!((s.orders, s.cancels), (2, 1));
}

/// A replacement that arrives before its predecessor's cancel lands: both
/// rest until the cancel does, and the old one can still fill.
#[test]
fn a_slow_cancel_leaves_the_old_order_fillable_beside_its_replacement() {
    let cfg =
        PaperConfig { entry_latency_ns: 10, cancel_latency_ns: 50, response_latency_ns: 0, ..PaperConfig::default() };
    let mut x = X::new(cfg);
    x.book(&book(&[lv(100, 3)], &[lv(101, 4)]), 0);
    x.quote(Some(lv(100, 1)), None, 0);
    x.time(10);
    x.quote(Some(lv(99, 1)), None, 20);
    x.time(30);
    assert_eq!(x.x.working_bid().unwrap().id, 2);
    // A sell at 99 goes through the old bid at 100, and meets the new one
    // at 99 with nothing ahead (99 was empty when it was sent).
    x.trade(sell(99, 1), 40);
    let ids: Vec<u64> = x.fills.iter().map(|f| f.order_id).collect();
    assert_eq!(ids, vec![1, 2]);
    x.time(70);
    assert!(x.x.working_bid().is_none());
}

#[test]
fn replayed_latency_draws_the_same_delays_for_the_same_seed() {
    let samples = RttSamples::from_rows([("place", 40), ("place", 80), ("cancel", 10)]).unwrap();
    let run = |seed| {
        let mut x =
            PaperExchange::with_latency(sym(), PaperConfig::default(), LatencyModel::replay(samples.clone(), seed));
        let mut out = Vec::new();
        for i in 0..20 {
            let t = i * 1_000;
            x.on_quote(&quote(Some(lv(100 - i % 2, 1)), None), Price(SCALE), t);
            out.push(x.pending_bid().map(|p| p.live_since_ns - t));
            x.on_time(t + 500, &mut |_| {});
        }
        out
    };
    let a = run(3);
    assert_eq!(a, run(3));
    assert!(a.iter().flatten().all(|d| *d == 20 || *d == 40), "{a:?}");
}

#[test]
fn queue_models_move_the_place_on_cancels_ahead() {
    // front 6, back 12, 12 cancelled: risk-averse keeps 6; power n = 1 takes
    // 1/3 of 12 off the front (2 left), n = 2 takes 1/5 (3.6 left), log
    // takes ln 7 / (ln 13 + ln 7) = 0.431 of it (0.82 left).
    for (model, ahead) in
        [(QueueModel::RiskAverse, 6), (QueueModel::Power(1.0), 2), (QueueModel::Power(2.0), 4), (QueueModel::Log, 1)]
    {
        let cfg = PaperConfig { queue_model: model, ..PaperConfig::default() };
        let mut x = X::new(cfg);
        x.book(&book(&[lv(100, 6)], &[lv(101, 4)]), 0);
        x.quote(Some(lv(100, 1)), None, 0);
        x.time(L);
        // 6 ahead; 12 more join behind us, then 12 are cancelled.
        x.book(&book(&[lv(100, 18)], &[lv(101, 4)]), L + 1);
        x.book(&book(&[lv(100, 6)], &[lv(101, 4)]), L + 2);
        let q = x.x.working_bid().unwrap().queue_ahead.0;
        assert_eq!((q + SCALE / 2) / SCALE, ahead, "{}", model.name());
    }
}

#[test]
fn the_model_is_named_for_reports() {
    let x = PaperExchange::new(sym(), PaperConfig { queue_model: QueueModel::Power(2.0), ..PaperConfig::default() });
    assert_eq!(
        x.model(),
        "queue power 2, limit_maker, latency constant (entry 20 ms, cancel 20 ms, response 20 ms), clock receive"
    );
    let samples = RttSamples::from_rows([("place", 4)]).unwrap();
    let x = PaperExchange::with_latency(sym(), PaperConfig::default(), LatencyModel::replay(samples, 1));
    assert!(x.model().contains("journal_replay (1 place and 1 cancel round trips, seed 1)"), "{}", x.model());
}

/// A three-level ladder: bids 100/99/98 (1 each), asks 101/102/103.
fn ladder_quote() -> Quote {
    let mut q = quote(Some(lv(100, 1)), Some(lv(101, 1)));
    for i in 1..3 {
        q.deeper.push(Side::Buy, lv(100 - i, 1));
        q.deeper.push(Side::Sell, lv(101 + i, 1));
    }
    q
}

#[test]
fn a_ladder_works_each_level_with_its_own_order_and_queue_place() {
    let mut x = PaperLadder::new(sym(), PaperConfig::default(), 3);
    let mut fills = Vec::new();
    let b = book(&[lv(100, 5), lv(99, 2), lv(98, 7)], &[lv(101, 3), lv(102, 4), lv(103, 1)]);
    x.on_book(&b, 0, &mut |f| fills.push(f));
    x.on_quote(&ladder_quote(), Price(SCALE), 0);
    x.on_time(L, &mut |f| fills.push(f));
    let bids: Vec<_> = (0..3).map(|i| x.working_at(Side::Buy, i).unwrap()).collect();
    // Ids never collide across levels, and each knows its own place.
    let ids: Vec<u64> = x.working().map(|o| o.id).collect();
    assert_eq!(ids, [1, 4, 2, 5, 3, 6]);
    let ahead: Vec<i64> = bids.iter().map(|o| o.queue_ahead.0 / SCALE).collect();
    assert_eq!(ahead, [5, 2, 7]);
    assert_eq!(x.stats().orders, 6);
    // A sell of 4 at 99: through 100 (filled whole), at 99 behind 2 (fills 1 of 2 left).
    x.on_trade(&sell(99, 4), L + 1, &mut |f| fills.push(f));
    let got: Vec<(u64, i64, i64)> = fills.iter().map(|f| (f.order_id, f.price.0 / SCALE, f.qty.0 / SCALE)).collect();
    assert_eq!(got, [(1, 100, 1), (2, 99, 1)]);
    assert_eq!(x.fill_meta(2).unwrap().queue_ahead_at_arrival, Qty(2 * SCALE));
    assert_eq!(x.working_at(Side::Buy, 2).unwrap().qty, Qty(SCALE), "level 3 untouched");
    // A quote with one level a side pulls the deeper orders.
    x.on_quote(&quote(Some(lv(100, 1)), Some(lv(101, 1))), Price(SCALE), L + 2);
    x.on_time(3 * L, &mut |f| fills.push(f));
    assert!(x.working_at(Side::Buy, 2).is_none() && x.working_at(Side::Sell, 1).is_none());
    // Level 0's ask works on; its bid filled and waits for the next quote.
    assert_eq!(x.working().map(|o| o.id).collect::<Vec<_>>(), [4]);
}

#[test]
fn a_ladders_levels_share_the_position_limit() {
    // Long 2 from two levels: level 0's next bid of 1 would reach 3 > 2.5.
    let cfg = PaperConfig { max_position: Some(Qty(5 * SCALE / 2)), ..PaperConfig::default() };
    let mut x = PaperLadder::new(sym(), cfg, 3);
    let mut fills = Vec::new();
    let b = book(&[lv(100, 0), lv(99, 0), lv(98, 9)], &[lv(101, 3)]);
    x.on_book(&b, 0, &mut |f| fills.push(f));
    let mut q = quote(Some(lv(100, 1)), None);
    q.deeper.push(Side::Buy, lv(99, 1));
    x.on_quote(&q, Price(SCALE), 0);
    x.on_time(L, &mut |f| fills.push(f));
    x.on_trade(&sell(98, 5), L + 1, &mut |f| fills.push(f));
    assert_eq!(fills.len(), 2);
    // Once the fills are heard, the same ladder is sent again.
    x.on_time(3 * L, &mut |f| fills.push(f));
    x.on_quote(&q, Price(SCALE), 3 * L);
    x.on_time(5 * L, &mut |f| fills.push(f));
    assert_eq!(x.stats().orders, 4);
    assert!(x.working().next().is_none(), "{:?}", x.working().collect::<Vec<_>>());
    assert_eq!(x.stats().refused_by_limit, 2);
}

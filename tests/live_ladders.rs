//! Live ladders: the order manager ([`LiveExchange`]) working several orders a side
//! (`[strategy] levels`) on the independent Binance double (tests/binance_double/, written from
//! binance-spot-api-docs alone).
//!
//! Each test cites the doc section it relies on. Every test has its own double (127.0.0.1,
//! ephemeral port) and temp dir; every loop is bounded in count and time.

mod common;

#[path = "binance_double/mod.rs"]
mod binance_double;

#[path = "conformance/rig.rs"]
mod rig;

use std::time::Duration;

use binance_double::Side as DSide;
use mmbot::exec::journal::OrderStatus;
use mmbot::exec::{Ladder, Quote, Side};
use mmbot::hot::fixed::Price;
use mmbot::hot::msg::Level;
use rig::*;

/// A quote of several levels a side, best first: `(price, qty)` each.
fn ladder(bids: &[(&str, &str)], asks: &[(&str, &str)]) -> Quote {
    let lv = |&(p, q): &(&str, &str)| Level::new(fx(p), fx(q));
    let mut deeper = Ladder::NONE;
    for l in bids.iter().skip(1) {
        assert!(deeper.push(Side::Buy, lv(l)));
    }
    for l in asks.iter().skip(1) {
        assert!(deeper.push(Side::Sell, lv(l)));
    }
    Quote { symbol: sym(), bid: bids.first().map(lv), ask: asks.first().map(lv), time_ns: 0, update_id: 0, deeper }
}

impl Rig {
    /// Hands a ladder over and polls until everything it caused is answered (15 s at most).
    fn ladder(&mut self, bids: &[(&str, &str)], asks: &[(&str, &str)]) {
        self.ex.on_quote(&ladder(bids, asks), Price(fx("0.01")), 0);
        self.poll_until("the ladder's requests to be answered", Duration::from_secs(15), |r| {
            r.ex.is_quiet() || r.ex.stopped().is_some()
        });
    }

    /// The double's open orders of `side` as `(price, orig qty, client id)`, best first.
    fn resting(&self, side: DSide) -> Vec<(i64, i64, String)> {
        let mut v: Vec<_> = self
            .d
            .open_orders()
            .into_iter()
            .filter(|o| o.side == side)
            .map(|o| (o.price, o.orig_qty, o.client_order_id))
            .collect();
        v.sort_by_key(|o| if side == DSide::Buy { -o.0 } else { o.0 });
        v
    }
}

const BIDS: [(&str, &str); 3] = [("100.00", "0.1"), ("99.90", "0.15"), ("99.80", "0.2")];
const ASKS: [(&str, &str); 3] = [("100.50", "0.1"), ("100.60", "0.15"), ("100.70", "0.2")];

/// rest-api.md §New order (LIMIT_MAKER) and §Cancel an Existing Order and Send a New Order
/// (cancelReplace); filters.md §MAX_NUM_ORDERS (open orders per account on a symbol); user-data-
/// stream.md §Order Update (TRADE: `l`, `L`, `z`). Three levels a side rest as six orders; a level
/// that moves is replaced alone; a sweep through three bids fills each level as its own order;
/// a shorter ladder pulls the levels it no longer has; the stop cancels them all.
#[test]
fn a_ladder_rests_an_order_per_level_and_each_level_is_kept_replaced_and_filled_on_its_own() {
    let d = start_double(double_cfg());
    let mut r = start_levels("ladder", d, 3, |raw| raw.max_open_orders = Some(6));
    assert_eq!(r.ex.levels(), 3);
    r.ladder(&BIDS, &ASKS);
    let bids = r.resting(DSide::Buy);
    let asks = r.resting(DSide::Sell);
    let prices = |v: &[(i64, i64, String)]| v.iter().map(|o| (o.0, o.1)).collect::<Vec<_>>();
    let want = |l: &[(&str, &str)]| l.iter().map(|(p, q)| (fx(p), fx(q))).collect::<Vec<_>>();
    assert_eq!(prices(&bids), want(&BIDS));
    assert_eq!(prices(&asks), want(&ASKS));
    assert_eq!(r.ex.working_orders().count(), 6);
    for (level, (price, qty)) in BIDS.iter().enumerate() {
        assert_eq!((r.ex.level_state(Side::Buy, level), r.ex.level_state(Side::Sell, level)), ("live", "live"));
        let w = r.ex.working_at(Side::Buy, level).unwrap();
        assert_eq!((w.price.0, w.qty.0), (fx(price), fx(qty)));
    }
    assert_eq!(r.ex.level_state(Side::Buy, 3), "idle", "beyond the ladder");
    assert_eq!(r.d.max_open_per_side(), (3, 3));

    // Only the second bid moves: one cancelReplace, the other five orders untouched.
    let before = (r.order_requests("BUY"), r.order_requests("SELL"));
    let moved = [BIDS[0], ("99.95", "0.15"), BIDS[2]];
    r.ladder(&moved, &ASKS);
    assert_eq!((r.order_requests("BUY"), r.order_requests("SELL")), (before.0 + 1, before.1));
    let now = r.resting(DSide::Buy);
    assert_eq!(prices(&now), want(&moved));
    assert_eq!((&now[0].2, &now[2].2), (&bids[0].2, &bids[2].2), "untouched levels keep their orders");
    assert_ne!(now[1].2, bids[1].2);
    assert_eq!(r.resting(DSide::Sell), asks);

    // A seller sweeps 0.3 down to 99.80: level 0 (0.1) and level 1 (0.15) fill, level 2 fills
    // 0.05 and keeps resting.
    let filled = r.d.market_trade(DSide::Sell, fx("99.80"), fx("0.3"));
    assert_eq!(filled, fx("0.3"));
    r.poll_until("three fills", Duration::from_secs(10), |r| r.ex.stats().fills == 3 && r.ex.is_quiet());
    let mut got: Vec<_> = r.fills.iter().map(|f| (f.side, f.price.0, f.qty.0)).collect();
    got.sort_by_key(|f| -f.1);
    assert_eq!(
        got,
        vec![
            (Side::Buy, fx("100.00"), fx("0.1")),
            (Side::Buy, fx("99.95"), fx("0.15")),
            (Side::Buy, fx("99.80"), fx("0.05"))
        ]
    );
    assert_eq!(r.ex.position().qty().0, fx("0.3"));
    assert_eq!(r.last_status(&now[0].2), OrderStatus::Filled);
    assert_eq!(r.last_status(&now[1].2), OrderStatus::Filled);
    assert_eq!(r.last_status(&now[2].2), OrderStatus::PartiallyFilled);
    assert_eq!(r.ex.level_state(Side::Buy, 2), "live");
    assert_eq!(r.ex.working_at(Side::Buy, 2).unwrap().qty.0, fx("0.15"), "the remaining quantity");

    // Two levels a side now: the third of each side is pulled, the filled ones placed again.
    r.ladder(&BIDS[..2], &ASKS[..2]);
    assert_eq!(prices(&r.resting(DSide::Buy)), want(&BIDS[..2]));
    assert_eq!(prices(&r.resting(DSide::Sell)), want(&ASKS[..2]));
    assert_eq!(r.last_status(&now[2].2), OrderStatus::Canceled);
    assert_eq!((r.ex.level_state(Side::Buy, 2), r.ex.level_state(Side::Sell, 2)), ("idle", "idle"));

    r.stop_clean();
    r.fills_match_trades();
    assert_eq!(r.ex.position().qty().0, r.double_net());
    assert!(r.d.max_open_per_side().0 <= 3 && r.d.max_open_per_side().1 <= 3);
}

/// filters.md §MAX_NUM_ORDERS, rest-api.md §Exchange information: a ladder that needs more open
/// orders than the symbol allows is refused at start, naming `[strategy] levels`, before any
/// order is sent.
#[test]
fn a_ladder_beyond_max_num_orders_is_refused_at_start() {
    let mut cfg = double_cfg();
    cfg.rules.max_num_orders = 4;
    let d = start_double(cfg);
    let err = match try_start_levels("ladder-max-num", d, 3, |raw| raw.max_open_orders = Some(6)) {
        Ok(_) => panic!("a 3-level ladder started on a symbol allowing 4 open orders"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("[strategy] levels = 3") && err.contains("MAX_NUM_ORDERS"), "{err}");
    assert!(err.contains("at most 2 levels"), "{err}");
}

/// The position check counts what the side's other levels can still fill (one sweep can fill
/// them all): with max_position 0.25, two levels of 0.1 fit, the third would reach 0.3 and is
/// refused before sending, on both sides; nothing beyond the limit ever rests.
#[test]
fn the_position_limit_counts_the_other_levels_of_the_side() {
    let d = start_double(double_cfg());
    let mut r = start_levels("ladder-position", d, 3, |raw| {
        raw.max_open_orders = Some(6);
        raw.max_position = Some(toml::Value::String("0.25".into()));
    });
    let bids = [("100.00", "0.1"), ("99.90", "0.1"), ("99.80", "0.1")];
    let asks = [("100.50", "0.1"), ("100.60", "0.1"), ("100.70", "0.1")];
    r.ladder(&bids, &asks);
    assert_eq!(r.resting(DSide::Buy).len(), 2, "{:?}", r.resting(DSide::Buy));
    assert_eq!(r.resting(DSide::Sell).len(), 2, "{:?}", r.resting(DSide::Sell));
    assert_eq!(r.ex.stats().refused_by_risk, 2);
    let why = r.ex.stats().last_refusal.clone().unwrap_or_default();
    assert!(why.contains("max_position") && why.contains("already working on that side"), "{why}");

    // After 0.1 is bought the bids have 0.15 of room: one level of 0.1 is all that may rest
    // (the filled level's next order would reach 0.3 with the one still working).
    assert_eq!(r.d.market_trade(DSide::Sell, fx("100.00"), fx("0.1")), fx("0.1"));
    r.poll_until("the fill", Duration::from_secs(10), |r| r.ex.stats().fills == 1 && r.ex.is_quiet());
    r.ladder(&bids, &asks);
    assert_eq!(r.resting(DSide::Buy).len(), 1, "{:?}", r.resting(DSide::Buy));
    r.stop_clean();
    r.fills_match_trades();
}

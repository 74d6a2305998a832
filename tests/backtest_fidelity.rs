//! The backtester's fill model checked against a queue walk done by hand: a
//! fixed-half-spread strategy quoting one lot at the touch, and one tick
//! behind it, on a small hand-written recording (tick 1, prices 998-1003).
//!
//! The recording (times in ms after the first line; `sell@P xQ` is a trade
//! whose taker sold, `m: true`):
//!
//! ```text
//!  t  event                                   book after (bids | asks)
//!  0  diff u=1 (before the snapshot: dropped)
//!  1  snapshot id 1                           1000x5 999x3 998x2 | 1001x4 1002x6 1003x5
//!  2  diff u=2 (no change): synced, quote 1   same
//!  5  diff u=3: 1000 -> 7, 1001 -> 2          1000x7 999x3 998x2 | 1001x2 1002x6 1003x5
//! 15  trade sell@1000 x4
//! 16  diff u=4: 1000 -> 3, 999 -> 1           1000x3 999x1 998x2 | 1001x2 1002x6 1003x5
//! 20  trade buy@1001 x3
//! 22  diff u=5: 1001 -> 1                     1000x3 999x1 998x2 | 1001x1 1002x6 1003x5
//! 25  trade sell@1000 x4
//! 26  diff u=6: 1000 and 1001 gone            999x1 998x2 | 1002x6 1003x5
//! 30  trade sell@999 x2
//! 31  trade buy@1003 x1
//! 40  trade sell@998 x3
//! 41  trade buy@1003 x4
//! ```
//!
//! Latency 10 ms each way (entry, cancel, response); risk-averse queue;
//! `LIMIT_MAKER` orders of 1. Each depth event makes a quote. The walks are
//! written out above each test.

mod common;

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use mmbot::backtest::{run_with, FillRecord, QuoteSeen, RunObserver};
use mmbot::config::Config;
use mmbot::exec::Side;
use mmbot::hot::fixed::{Qty, SCALE};
use mmbot::hot::strategy::{Decision, SideIntent, Strategy, StrategyInput};
use mmbot::stats::clock::Clock;

/// First line's receive time, ms since the epoch.
const T0_MS: i64 = 1_700_000_000_000;

/// Quotes one lot `ticks` ticks (of 1) outside the touch on both sides,
/// whatever the position.
struct FixedHalfSpread {
    ticks: f64,
}

impl Strategy for FixedHalfSpread {
    fn decide(&mut self, input: &StrategyInput<'_>) -> Decision {
        let f = input.features;
        Decision {
            bid: Some(SideIntent { price: f.best_bid.price.to_f64() - self.ticks, size: 1.0 }),
            ask: Some(SideIntent { price: f.best_ask.price.to_f64() + self.ticks, size: 1.0 }),
            ..Decision::default()
        }
    }

    fn name(&self) -> &str {
        "fixed_half_spread"
    }
}

fn line(t_ms: i64, stream: &str, data: String) -> String {
    let recv_ns = (T0_MS + t_ms) * 1_000_000;
    if stream.is_empty() {
        format!("{recv_ns} {data}\n")
    } else {
        format!("{recv_ns} {{\"stream\":\"{stream}\",\"data\":{data}}}\n")
    }
}

fn diff(t: i64, u: u64, bids: &str, asks: &str) -> String {
    let e = T0_MS + t;
    let data = format!(r#"{{"e":"depthUpdate","E":{e},"s":"TESTUSDT","U":{u},"u":{u},"b":[{bids}],"a":[{asks}]}}"#);
    line(t, "testusdt@depth@100ms", data)
}

fn trade(t: i64, id: u64, price: &str, qty: &str, taker_sold: bool) -> String {
    trade_at(t, t, id, price, qty, taker_sold)
}

/// A trade received at `t` that happened at the exchange at `happened`.
fn trade_at(t: i64, happened: i64, id: u64, price: &str, qty: &str, taker_sold: bool) -> String {
    let e = T0_MS + happened;
    let data = format!(
        r#"{{"e":"trade","E":{e},"s":"TESTUSDT","t":{id},"p":"{price}","q":"{qty}","T":{e},"m":{taker_sold},"M":true}}"#
    );
    line(t, "testusdt@trade", data)
}

/// The recording in the module doc.
fn recording() -> String {
    recording_with(false)
}

/// The recording in the module doc, or (`early_buy`) with the trade
/// buy@1001 x3 received at t=14 instead of t=20, having happened at the
/// exchange at t=11 (3 ms of feed latency where the rest has none).
fn recording_with(early_buy: bool) -> String {
    let snapshot = r#"{"lastUpdateId":1,"bids":[["1000","5"],["999","3"],["998","2"]],"asks":[["1001","4"],["1002","6"],["1003","5"]]}"#;
    [
        diff(0, 1, r#"["1000","5"]"#, ""),
        line(1, "", snapshot.to_string()),
        diff(2, 2, r#"["1000","5"]"#, ""),
        diff(5, 3, r#"["1000","7"]"#, r#"["1001","2"]"#),
        if early_buy { trade_at(14, 11, 2, "1001", "3", false) } else { String::new() },
        trade(15, 1, "1000", "4", true),
        diff(16, 4, r#"["1000","3"],["999","1"]"#, ""),
        if early_buy { String::new() } else { trade(20, 2, "1001", "3", false) },
        diff(22, 5, "", r#"["1001","1"]"#),
        trade(25, 3, "1000", "4", true),
        diff(26, 6, r#"["1000","0"]"#, r#"["1001","0"]"#),
        trade(30, 4, "999", "2", true),
        trade(31, 5, "1003", "1", false),
        trade(40, 6, "998", "3", true),
        trade(41, 7, "1003", "4", false),
    ]
    .concat()
}

fn config(extra: &str) -> Config {
    let toml = format!(
        "[market]\nsymbol = \"TESTUSDT\"\n[strategy]\nmin_order_size = \"1\"\nmax_position = \"10\"\n\
         [filters]\ntick_size = \"1\"\nstep_size = \"1\"\n[risk]\nmin_spread_bps = 0.0\nmax_spread_bps = 10000.0\n\
         [paper]\nlatency_ms = 10\nmaker_fee = 0\n{extra}"
    );
    Config::from_toml(&toml, "fidelity").unwrap()
}

#[derive(Default)]
struct Seen {
    quotes: Vec<QuoteSeen>,
    fills: Vec<FillRecord>,
}

impl RunObserver for Seen {
    fn on_quote(&mut self, q: &QuoteSeen) {
        self.quotes.push(*q);
    }
    fn on_fill(&mut self, f: &FillRecord) {
        self.fills.push(*f);
    }
}

fn run(ticks: f64, extra: &str) -> (Seen, mmbot::backtest::Report) {
    run_on(&recording(), ticks, extra)
}

fn run_on(recording: &str, ticks: f64, extra: &str) -> (Seen, mmbot::backtest::Report) {
    // One directory per run: tests run in parallel.
    static RUNS: AtomicUsize = AtomicUsize::new(0);
    let dir = common::temp_dir(&format!("fidelity-run-{}", RUNS.fetch_add(1, Ordering::Relaxed)));
    std::fs::create_dir_all(&dir).unwrap();
    let path: PathBuf = dir.join("walk.rec");
    std::fs::write(&path, recording).unwrap();
    let mut seen = Seen::default();
    let (report, _) = run_with(&[path], &config(extra), FixedHalfSpread { ticks }, Clock::instant(), &mut seen)
        .expect("backtest runs");
    let _ = std::fs::remove_dir_all(&dir);
    (seen, report)
}

/// (ms after T0, side, price, queue ahead at arrival) of each fill.
fn walk(seen: &Seen) -> Vec<(i64, Side, i64, i64)> {
    seen.fills
        .iter()
        .map(|r| {
            let f = &r.fill;
            let q = r.meta.map_or(-1, |m| m.queue_ahead_at_arrival.0 / SCALE);
            (f.time_ns / 1_000_000 - T0_MS, f.side, f.price.0 / SCALE, q)
        })
        .collect()
}

/// Position the strategy saw at the quote made at `t_ms`.
fn position_at(seen: &Seen, t_ms: i64) -> i64 {
    let q = seen.quotes.iter().find(|q| q.quote.time_ns / 1_000_000 - T0_MS == t_ms).expect("a quote at that time");
    q.position.0 / SCALE
}

/// At the touch (bid 1000, ask 1001 while the book is 1000 | 1001):
///
/// - t=2: quote 1 sends bid 1000 (5 visible there) and ask 1001 (4
///   visible); they arrive at t=12, their acks come back at t=22.
/// - t=5: in flight, 1000 grows to 7 (2 joined before we arrive: ahead of
///   us) and 1001 falls to 2. Queue at arrival: bid 7, ask 2.
/// - t=15: the bid goes live on the trade sell@1000 x4: 7 -> 3 ahead.
/// - t=16: 1000 shows 3: min(3, 3) = 3 ahead, unchanged.
/// - t=20: buy@1001 x3: the 2 ahead of our ask, then 1 for us: SELL 1 @1001.
///   The strategy hears of it at t=30.
/// - t=22: quote 4 still sees position 0 (the fill report is in flight),
///   and as far as the client knows its ask still rests at 1001, as wanted.
/// - t=25: sell@1000 x4: 3 ahead, then 1 for us: BUY 1 @1000 (heard t=35).
/// - t=26: the touch is 999 | 1002. The client still believes in its bid
///   1000 and ask 1001: it cancels them (those cancels find nothing) and
///   sends bid 999 (1 visible in this book) and ask 1002 (6 visible), live
///   at t=36.
/// - t=30, t=31: trades at 999 and 1003 come before our orders arrive.
/// - t=40: sell@998 x3 goes through the bid at 999: BUY 1 @999.
/// - t=41: buy@1003 x4 goes through the ask at 1002: SELL 1 @1002.
///
/// 4 fills, flat, sold 1001 + 1002, bought 1000 + 999: +4 gross.
#[test]
fn at_the_touch_fills_follow_the_hand_computed_queue_walk() {
    let (seen, report) = run(0.0, "");
    assert_eq!(
        walk(&seen),
        vec![(20, Side::Sell, 1001, 2), (25, Side::Buy, 1000, 7), (40, Side::Buy, 999, 1), (41, Side::Sell, 1002, 6)]
    );
    assert_eq!(position_at(&seen, 22), 0);
    assert_eq!((report.trading.orders, report.trading.cancels, report.trading.fills), (4, 2, 4));
    assert_eq!(report.trading.position, "0");
    assert_eq!(report.trading.pnl, "4");
    // The first two orders were sent at t=2 and went live at t=12.
    for r in &seen.fills[..2] {
        let m = r.meta.unwrap();
        assert_eq!((m.sent_ns / 1_000_000 - T0_MS, m.live_since_ns / 1_000_000 - T0_MS), (2, 12));
    }
}

/// One tick behind (bid 999, ask 1002 while the book is 1000 | 1001):
///
/// - t=2: bid 999 (3 visible), ask 1002 (6 visible), live at t=12.
/// - t=16: 999 falls to 1: 1 ahead of the bid.
/// - t=26: the touch is now 999 | 1002, so the strategy wants 998 / 1003:
///   both orders are cancelled (effective t=36) and replacements sent (live
///   t=36), recording 2 visible at 998 and 5 at 1003 in the book of t=26.
/// - t=30: sell@999 x2: 1 ahead, then 1 for us: BUY 1 @999 (the old bid,
///   its cancel still in flight).
/// - t=31: buy@1003 x1 goes through the old ask at 1002: SELL 1 @1002.
/// - t=40: the new bid goes live on the trade sell@998 x3, queued behind
///   the 2 seen when it was sent (no book came while it was in flight):
///   2 ahead, then 1 for us: BUY 1 @998.
/// - t=41: buy@1003 x4 eats 4 of the 5 ahead of the new ask: no fill.
#[test]
fn one_tick_behind_fills_follow_the_hand_computed_queue_walk() {
    let (seen, report) = run(1.0, "");
    assert_eq!(walk(&seen), vec![(30, Side::Buy, 999, 3), (31, Side::Sell, 1002, 6), (40, Side::Buy, 998, 2)]);
    assert_eq!((report.trading.orders, report.trading.cancels, report.trading.fills), (4, 2, 3));
    assert_eq!(report.trading.position, "1");
}

/// With answers back at once (`response_latency_ms = 0`), the strategy sees
/// each fill at the next decision, even one made in the same frame:
///
/// - t=20: SELL 1 @1001 as above, heard at once.
/// - t=22: quote 4 sees position -1, and the empty ask side re-quotes 1001
///   (1 visible there, live t=32).
/// - t=25: BUY 1 @1000 (heard at once).
/// - t=26: the touch is 999 | 1002: the bid side sends 999 (1 visible, live
///   t=36); the ask in flight at 1001 is cancelled (effective t=36).
/// - t=40: sell@998 x3 goes through the bid at 999: BUY 1 @999.
#[test]
fn fills_reach_the_strategy_before_its_next_decision() {
    let (seen, report) = run(0.0, "response_latency_ms = 0\n");
    assert_eq!(position_at(&seen, 22), -1);
    assert_eq!(position_at(&seen, 26), 0);
    assert_eq!(walk(&seen), vec![(20, Side::Sell, 1001, 2), (25, Side::Buy, 1000, 7), (40, Side::Buy, 999, 1)]);
    assert_eq!((report.trading.orders, report.trading.cancels, report.trading.fills), (4, 1, 3));
    // Every fill is applied before the report: the position is the
    // exchange's.
    assert_eq!(seen.fills.last().unwrap().position_after, Qty(SCALE));
}

/// The same walk under `queue_model = "power"`: at t=16 the level 1000 fell
/// from 7 to 3 by exactly the 4 traded at t=15, so no cancel is inferred,
/// the bid stays 3 behind, and the fills are the same.
#[test]
fn a_decrease_explained_by_trades_moves_no_probabilistic_queue() {
    let (seen, _) = run(0.0, "queue_model = \"power\"\n");
    assert_eq!(walk(&seen)[..2], [(20, Side::Sell, 1001, 2), (25, Side::Buy, 1000, 7)]);
}

/// Latencies replayed from a live run's journal: every recorded round trip
/// is 20 ms (place and cancel), taken as 10 ms out and 10 ms back, so the
/// walk at the touch is exactly the constant-latency one.
#[test]
fn journal_round_trips_replay_as_latencies() {
    let dir = common::temp_dir("fidelity-journal");
    std::fs::create_dir_all(&dir).unwrap();
    let journal = dir.join("live.sqlite");
    let db = rusqlite::Connection::open(&journal).unwrap();
    db.execute_batch(
        "CREATE TABLE order_rtt (id INTEGER PRIMARY KEY, run INTEGER NOT NULL, time_ns INTEGER NOT NULL,
                                 method TEXT NOT NULL, via TEXT NOT NULL, rtt_ns INTEGER NOT NULL);
         INSERT INTO order_rtt (run, time_ns, method, via, rtt_ns) VALUES
           (1, 0, 'place', 'ws_api', 20000000), (1, 1, 'cancel', 'ws_api', 20000000),
           (1, 2, 'place', 'rest', 20000000), (1, 3, 'query', 'rest', 90000000);",
    )
    .unwrap();
    drop(db);
    let extra = format!("latency_from_journal = {:?}\nlatency_seed = 7\n", journal.display().to_string());
    let (seen, report) = run(0.0, &extra);
    assert_eq!(
        walk(&seen),
        vec![(20, Side::Sell, 1001, 2), (25, Side::Buy, 1000, 7), (40, Side::Buy, 999, 1), (41, Side::Sell, 1002, 6)]
    );
    assert_eq!(report.trading.fills, 4);

    // A journal that is not there is refused, naming the key.
    let missing = format!("latency_from_journal = {:?}\n", dir.join("none.sqlite").display().to_string());
    let path = dir.join("walk.rec");
    std::fs::write(&path, recording()).unwrap();
    let err =
        run_with(&[path], &config(&missing), FixedHalfSpread { ticks: 0.0 }, Clock::instant(), &mut Seen::default())
            .unwrap_err()
            .to_string();
    assert!(err.contains("latency_from_journal") && err.contains("none.sqlite"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Feed latency: the buy@1001 x3 that fills the ask at the touch is
/// received at t=14, after the ask arrived (t=12), but happened at t=11.
///
/// - Receive clock: it meets the live ask (2 ahead): SELL 1 @1001 at t=14;
///   the rest of the walk is the constant-latency one from t=25 on.
/// - `clock = "exchange"`: it happened before the ask arrived, so it fills
///   nothing. The ask rests at 1001 (2 ahead, 1 after t=22, 0 after t=26);
///   at t=26 it is cancelled (effective t=36) for 1002, and the buy@1003 at
///   t=31 goes through it first: SELL 1 @1001 at t=31. The bid's fills are
///   unchanged, and the new ask at 1002 fills at t=41 as before.
#[test]
fn the_exchange_clock_puts_a_late_received_trade_before_the_order() {
    let rec = recording_with(true);
    let (seen, _) = run_on(&rec, 0.0, "");
    assert_eq!(
        walk(&seen),
        vec![(14, Side::Sell, 1001, 2), (25, Side::Buy, 1000, 7), (40, Side::Buy, 999, 1), (41, Side::Sell, 1002, 6)]
    );
    let (seen, _) = run_on(&rec, 0.0, "clock = \"exchange\"\n");
    assert_eq!(
        walk(&seen),
        vec![(25, Side::Buy, 1000, 7), (31, Side::Sell, 1001, 2), (40, Side::Buy, 999, 1), (41, Side::Sell, 1002, 6)]
    );
    // Without feed latency in the recording, both clocks agree.
    let (a, _) = run(1.0, "clock = \"exchange\"\n");
    let (b, _) = run(1.0, "");
    assert_eq!(walk(&a), walk(&b));
}

//! Live book truth on the trading hot path: the exchange's bookTicker is
//! compared with the rebuilt book, update ids are sanity-checked, and every
//! loss of sync is counted by cause and timed.
//!
//! Driven through `HotPath::on_frame`/`on_snapshot` with hand-made frames in
//! Binance's spot layout (binance/FACTS.md sections 1-2: diffs `U`/`u`, REST
//! snapshot `lastUpdateId`, bookTicker `u` = the order-book update id).

use mmbot::hot::engine::{HotConfig, HotEvent, HotPath};
use mmbot::hot::msg::Symbol;
use mmbot::hot::strategy::NativeStrategy;
use mmbot::hot::sync::{SyncConfig, SyncLoss};
use mmbot::stats::clock::Clock;

const SEC: i64 = 1_000_000_000;

fn sym() -> Symbol {
    Symbol::new(b"BTCUSDT")
}

fn diff(big_u: u64, u: u64, bids: &str, asks: &str) -> Vec<u8> {
    format!(
        r#"{{"stream":"btcusdt@depth@100ms","data":{{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":{big_u},"u":{u},"b":[{bids}],"a":[{asks}]}}}}"#
    )
    .into_bytes()
}

fn ticker(u: u64, b: &str, bq: &str, a: &str, aq: &str) -> Vec<u8> {
    format!(r#"{{"stream":"btcusdt@bookTicker","data":{{"u":{u},"s":"BTCUSDT","b":"{b}","B":"{bq}","a":"{a}","A":"{aq}"}}}}"#)
        .into_bytes()
}

fn snapshot(id: u64, bids: &str, asks: &str) -> Vec<u8> {
    format!(r#"{{"lastUpdateId":{id},"bids":[{bids}],"asks":[{asks}]}}"#).into_bytes()
}

/// The hot path plus what it sent: quotes (pulled or not), in order.
struct Bot {
    hot: HotPath<NativeStrategy>,
    quotes: Vec<bool>,
}

impl Bot {
    fn new() -> Self {
        let cfg = HotConfig { symbol: Some(sym()), ..HotConfig::default() };
        Self { hot: HotPath::new(cfg, NativeStrategy, Clock::instant()), quotes: Vec::new() }
    }

    fn frame(&mut self, f: &[u8], recv_ns: i64) {
        let t = self.hot.clock().now();
        let quotes = &mut self.quotes;
        self.hot.on_frame(f, recv_ns, t, &mut |e| {
            if let HotEvent::Quote { quote, .. } = e {
                quotes.push(quote.is_pulled());
            }
        });
    }

    fn snapshot(&mut self, body: &[u8], recv_ns: i64) {
        let t = self.hot.clock().now();
        let quotes = &mut self.quotes;
        self.hot.on_snapshot(sym(), body, recv_ns, t, &mut |e| {
            if let HotEvent::Quote { quote, .. } = e {
                quotes.push(quote.is_pulled());
            }
        });
    }

    fn synced(&self) -> bool {
        self.hot.market().book(sym()).is_some_and(|b| b.is_synced())
    }

    /// Buffers a first diff, then loads the snapshot (the live order).
    fn start(&mut self, id: u64, bids: &str, asks: &str) {
        self.frame(&diff(id - 5, id + 1, "", ""), SEC);
        assert!(self.hot.wants_snapshot(sym()));
        self.snapshot(&snapshot(id, bids, asks), SEC);
        assert!(self.synced());
    }
}

/// The exchange's book holds a bid at 100.50 that the snapshot omitted.
const SNAP_BIDS: &str = r#"["100.00","1.00"],["99.00","3.00"]"#;
const SNAP_ASKS: &str = r#"["101.00","1.00"],["102.00","3.00"]"#;

#[test]
fn a_level_the_snapshot_omitted_is_caught_by_the_next_matching_book_ticker() {
    let mut bot = Bot::new();
    bot.start(1000, SNAP_BIDS, SNAP_ASKS);
    // Every diff chains; none touches 100.50, so the book shows 100.00 as
    // best. The exchange's ticker for the book's id says 100.50.
    bot.frame(&diff(1002, 1005, r#"["100.00","2.00"]"#, ""), 2 * SEC);
    bot.frame(&ticker(1005, "100.50", "4.00", "101.00", "1.00"), 2 * SEC);
    let s = bot.hot.market().stats();
    assert_eq!((s.ticker_checks, s.ticker_mismatches), (1, 1));
    assert!(!bot.synced(), "a contradicted book is not trusted");
    assert_eq!(bot.quotes.last(), Some(&true), "quotes pulled at once");
    assert_eq!(bot.hot.guard_stats().pulled_on(SyncLoss::TickerMismatch), 1);
    assert_eq!(bot.hot.stats().pulled_on_sync_loss, 1);
    let sync = bot.hot.market().sync_stats();
    assert_eq!(sync.lost_by(SyncLoss::TickerMismatch), 1);
    assert_eq!(sync.unsynced_cause, Some(SyncLoss::TickerMismatch));
    // The next diff is buffered and a snapshot is asked for, as after a gap.
    bot.frame(&diff(1006, 1008, "", ""), 3 * SEC);
    assert!(bot.hot.wants_snapshot(sym()));
    let full_bids = r#"["100.50","4.00"],["100.00","2.00"],["99.00","3.00"]"#;
    bot.snapshot(&snapshot(1007, full_bids, SNAP_ASKS), 4 * SEC);
    assert!(bot.synced());
    bot.frame(&ticker(1008, "100.50", "4.00", "101.00", "1.00"), 4 * SEC);
    let s = bot.hot.market().stats();
    assert_eq!((s.ticker_checks, s.ticker_mismatches), (2, 1));
    assert!(bot.synced());
    let sync = bot.hot.market().sync_stats();
    assert_eq!((sync.resyncs, sync.unsynced_ns_total, sync.unsynced_cause), (1, 2 * SEC as u64, None));
}

#[test]
fn a_ticker_ahead_of_the_book_is_compared_when_the_diff_arrives() {
    let mut bot = Bot::new();
    bot.start(1000, SNAP_BIDS, SNAP_ASKS);
    bot.frame(&diff(1002, 1003, "", ""), 2 * SEC);
    assert_eq!(bot.quotes.last(), Some(&false), "quoting from a synced book");
    // The ticker stream is real-time, depth is batched: the ticker for 1005
    // comes first. The diff removes 100.00; the real best is the omitted 100.50.
    bot.frame(&ticker(1004, "100.50", "4.00", "101.00", "1.00"), 2 * SEC);
    bot.frame(&ticker(1005, "100.50", "4.00", "101.00", "1.00"), 2 * SEC);
    assert!(bot.synced());
    bot.frame(&diff(1004, 1005, r#"["100.00","0"]"#, ""), 2 * SEC);
    let s = bot.hot.market().stats();
    assert_eq!((s.ticker_checks, s.ticker_mismatches), (1, 1), "1004 fell inside the diff: not compared");
    assert!(!bot.synced());
    assert_eq!(bot.quotes.last(), Some(&true));
    assert_eq!(bot.hot.guard_stats().pulled_on(SyncLoss::TickerMismatch), 1);
}

#[test]
fn agreeing_and_passed_tickers_change_nothing() {
    let mut bot = Bot::new();
    bot.start(1000, SNAP_BIDS, SNAP_ASKS);
    bot.frame(&diff(1002, 1005, r#"["100.00","2.00"]"#, ""), 2 * SEC);
    bot.frame(&ticker(1005, "100.00", "2.00", "101.00", "1.00"), 2 * SEC);
    bot.frame(&ticker(990, "1.00", "1.00", "2.00", "1.00"), 2 * SEC);
    // A quantity differing is a mismatch too (price and quantity are compared).
    let s = bot.hot.market().stats();
    assert_eq!((s.ticker_checks, s.ticker_mismatches, s.tickers_skipped, s.tickers), (1, 0, 1, 2));
    assert!(bot.synced());
    bot.frame(&ticker(1005, "100.00", "2.50", "101.00", "1.00"), 2 * SEC);
    assert_eq!(bot.hot.market().stats().ticker_mismatches, 1);
    assert!(!bot.synced());
}

#[test]
fn a_diff_with_first_id_above_last_id_is_rejected() {
    let mut bot = Bot::new();
    bot.start(1000, SNAP_BIDS, SNAP_ASKS);
    bot.frame(&diff(1010, 1002, r#"["100.90","1.00"]"#, ""), 2 * SEC);
    let sync = bot.hot.market().sync_stats();
    assert_eq!((sync.malformed_ids, sync.gaps), (1, 0));
    assert!(bot.synced());
    let best = bot.hot.market().book(sym()).unwrap().book().best_bid().unwrap();
    assert_eq!(best.price.0, 10_000_000_000, "never applied");
}

#[test]
fn an_id_jump_of_a_billion_is_rejected_and_the_book_keeps_applying() {
    let mut bot = Bot::new();
    bot.start(1000, SNAP_BIDS, SNAP_ASKS);
    bot.frame(&diff(1002, 1003, "", ""), 2 * SEC);
    bot.frame(&diff(1004, 1_000_001_004, r#"["100.90","1.00"]"#, ""), 2 * SEC);
    bot.frame(&diff(1004, 1006, r#"["100.20","1.00"]"#, ""), 3 * SEC);
    let synced = bot.hot.market().book(sym()).unwrap();
    assert!(synced.is_synced());
    assert_eq!(synced.update_id(), 1006);
    assert_eq!(synced.book().best_bid().unwrap().price.0, 10_020_000_000);
    let sync = bot.hot.market().sync_stats();
    assert_eq!((sync.id_jumps, sync.gaps, sync.stale), (1, 0, 0));
    // A tighter limit, configured.
    let mut bot = Bot::new();
    bot.hot.set_sync_config(SyncConfig { max_id_jump: 100, ..SyncConfig::default() });
    bot.start(1000, SNAP_BIDS, SNAP_ASKS);
    bot.frame(&diff(1002, 1200, "", ""), 2 * SEC);
    assert_eq!(bot.hot.market().sync_stats().id_jumps, 1);
}

#[test]
fn a_book_receiving_only_stale_diffs_for_five_seconds_resyncs() {
    let mut bot = Bot::new();
    bot.start(1000, SNAP_BIDS, SNAP_ASKS);
    bot.frame(&diff(1002, 1003, "", ""), SEC);
    for k in 0..=50 {
        bot.frame(&diff(900, 950, "", ""), 2 * SEC + k * SEC / 10);
    }
    assert!(!bot.synced());
    let sync = bot.hot.market().sync_stats();
    assert_eq!((sync.lost_by(SyncLoss::Stale), sync.unsynced_cause), (1, Some(SyncLoss::Stale)));
    assert_eq!(bot.quotes.last(), Some(&true));
    assert_eq!(bot.hot.guard_stats().pulled_on(SyncLoss::Stale), 1);
}

#[test]
fn a_crossed_snapshot_is_counted_as_such_and_not_as_a_resync() {
    let mut bot = Bot::new();
    bot.frame(&diff(995, 1001, "", ""), SEC);
    bot.snapshot(&snapshot(1000, r#"["101.50","1.00"]"#, SNAP_ASKS), SEC);
    assert!(!bot.synced());
    let sync = bot.hot.market().sync_stats();
    assert_eq!(sync.lost_by(SyncLoss::CrossedSnapshot), 1);
    assert_eq!((sync.resyncs, sync.snapshots, sync.lost_by(SyncLoss::CrossedBook)), (0, 0, 0));
}

#[test]
fn unsynced_time_is_accounted_from_the_gap_to_the_resync() {
    let mut bot = Bot::new();
    bot.start(1000, SNAP_BIDS, SNAP_ASKS);
    bot.frame(&diff(1002, 1003, "", ""), 2 * SEC);
    bot.frame(&diff(1010, 1012, "", ""), 3 * SEC); // 1004..1009 missing
    assert!(!bot.synced());
    bot.frame(&diff(1013, 1015, "", ""), 4 * SEC);
    let sync = bot.hot.market().sync_stats();
    assert_eq!((sync.unsynced_ns_current, sync.unsynced_cause), (SEC as u64, Some(SyncLoss::Gap)));
    bot.snapshot(&snapshot(1011, SNAP_BIDS, SNAP_ASKS), 5 * SEC + 500);
    assert!(bot.synced());
    let sync = bot.hot.market().sync_stats();
    assert_eq!((sync.unsynced_ns_total, sync.unsynced_ns_longest), (2 * SEC as u64 + 500, 2 * SEC as u64 + 500));
    assert_eq!((sync.lost_by(SyncLoss::Gap), sync.resyncs, sync.unsynced_ns_current), (1, 1, 0));
    assert_eq!(bot.hot.guard_stats().pulled_on(SyncLoss::Gap), 1);
}

/// Feeds a recording (`<recv_ts_ns> <frame>` lines) through the hot path.
fn replay(bot: &mut Bot, text: &str) {
    for line in text.lines() {
        let Some((ts, frame)) = line.split_once(' ') else { continue };
        let ts: i64 = ts.parse().expect("recording timestamp");
        bot.frame(frame.as_bytes(), ts);
    }
}

#[test]
fn a_real_capture_passes_the_live_check_on_every_matching_ticker() {
    // Real spot BTCUSDT frames (tests/data): diffs, the REST snapshot and
    // bookTickers, several of which carry the book's exact `u`.
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/sample_spot_btcusdt.rec"))
        .expect("tests/data/sample_spot_btcusdt.rec");
    let mut bot = Bot::new();
    replay(&mut bot, &text);
    let s = bot.hot.market().stats();
    assert!(s.ticker_checks > 0, "the capture has matching tickers: {s:?}");
    assert_eq!((s.ticker_mismatches, s.rejected), (0, 0), "{s:?}");
    assert!(bot.synced());
    let sync = bot.hot.market().sync_stats();
    assert_eq!(sync.lost, [0; SyncLoss::COUNT], "{sync:?}");
    assert_eq!((sync.malformed_ids, sync.id_jumps), (0, 0));
}

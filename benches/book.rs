//! Book apply on a 1000-level book with realistic updates: most land within a
//! few levels of the touch, some deeper; a third insert or remove levels so the
//! top keeps moving. Baselines fed the same stream in the same run: a
//! `BTreeMap` book, and the sorted array (best level at the end, search from
//! the touch, shift on insert/remove) that mmbot's ladder replaced.
//!
//! Also here (group `book_ticker_frame`): the live bookTicker check's cost per
//! ticker frame on the hot path (`HotPath::on_frame`), against the same frame
//! with the check off (the full simd-json parse the hot path paid before, to
//! then ignore the ticker). Frames have the shape of the real spot captures
//! (`tests/data/sample_spot_btcusdt.rec`):
//! * `check_off`: check off, full parse;
//! * `skip_passed_u`: check on, `u` behind the book (the usual case once the
//!   diff that reached it has arrived): only `u` is read;
//! * `match_u`: check on, `u` equal to the book's id: `u` and the four top
//!   fields read and compared with the book (they agree);
//! * `ahead_u`: check on, `u` ahead of the book (tickers arrive before the
//!   diff that reaches them): read and held until the book gets there.
//!
//! And (group `idle_warm`) one warming of an idle hot thread
//! (`HotPath::warm`) on a BTCUSDT-shaped book after its stream: the reads
//! alone, and with the rehearsal of the latest diff
//! (`HotPath::enable_rehearsal`). Cache-warm figures: what one warming costs
//! a frame that arrives during it.

use std::collections::BTreeMap;
use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};

mod common;

use mmbot::feed::synthetic::Rng;
use mmbot::hot::book::Book;
use mmbot::hot::engine::{HotConfig, HotPath};
use mmbot::hot::market::TickerCheck;
use mmbot::hot::msg::Level;
use mmbot::hot::msg::Symbol;
use mmbot::hot::strategy::NativeStrategy;
use mmbot::stats::clock::Clock;

const TICK: i64 = 1_000_000; // 0.01 in fixed-point
const LEVELS: usize = 1000;
const UPDATES: usize = 100_000;

/// The sorted-array side mmbot used before the ladder: keys ascending with
/// the best at the end (bids: price, asks: -price), quantities alongside.
#[derive(Clone)]
struct SortedSide {
    keys: Vec<i64>,
    qtys: Vec<i64>,
    sign: i64,
}

impl SortedSide {
    fn new(levels: &[Level], sign: i64) -> Self {
        let mut v: Vec<(i64, i64)> = levels.iter().map(|l| (l.price.0 * sign, l.qty.0)).collect();
        v.sort();
        let mut keys = Vec::with_capacity(5000);
        let mut qtys = Vec::with_capacity(5000);
        keys.extend(v.iter().map(|x| x.0));
        qtys.extend(v.iter().map(|x| x.1));
        Self { keys, qtys, sign }
    }

    #[inline]
    fn apply(&mut self, price: i64, qty: i64) {
        let key = price * self.sign;
        let n = self.keys.len();
        let floor = n.saturating_sub(16);
        let mut i = n;
        while i > floor && self.keys[i - 1] >= key {
            i -= 1;
        }
        if i == floor && i > 0 {
            i = self.keys[..floor].partition_point(|&k| k < key);
        }
        if i < n && self.keys[i] == key {
            if qty == 0 {
                self.keys.remove(i);
                self.qtys.remove(i);
            } else {
                self.qtys[i] = qty;
            }
        } else if qty != 0 {
            self.keys.insert(i, key);
            self.qtys.insert(i, qty);
        }
    }
}

/// Depth from the touch: 70% in the top 5, 20% in 5..50, 10% in 50..1000.
fn depth(r: &mut Rng) -> usize {
    match r.below(100) {
        0..=69 => r.below(5) as usize,
        70..=89 => 5 + r.below(45) as usize,
        _ => 50 + r.below(950) as usize,
    }
}

/// Initial 1000+1000 levels two ticks apart (so inserts have room) and a
/// stream of updates generated against a model of the evolving book.
fn workload() -> (Vec<Level>, Vec<Level>, Vec<(bool, Level)>) {
    let mid = 6_183_763 * TICK;
    let bids: Vec<Level> = (0..LEVELS as i64).map(|i| Level::new(mid - (1 + 2 * i) * TICK, 100_000_000 + i)).collect();
    let asks: Vec<Level> = (0..LEVELS as i64).map(|i| Level::new(mid + (1 + 2 * i) * TICK, 100_000_000 + i)).collect();
    // Models keyed so that iteration goes from the touch outwards.
    let mut mb: BTreeMap<i64, i64> = bids.iter().map(|l| (-l.price.0, l.qty.0)).collect();
    let mut ma: BTreeMap<i64, i64> = asks.iter().map(|l| (l.price.0, l.qty.0)).collect();
    let mut r = Rng(0x9E37_79B9_7F4A_7C15);
    let mut ops = Vec::with_capacity(UPDATES);
    while ops.len() < UPDATES {
        let is_bid = r.below(2) == 0;
        let (m, sign) = if is_bid { (&mut mb, -1) } else { (&mut ma, 1) };
        let d = depth(&mut r).min(m.len() - 1);
        let key = *m.keys().nth(d).unwrap();
        let qty = 1 + r.below(1_000_000_000) as i64;
        let op = r.below(100);
        let (k, q) = if op < 66 {
            (key, qty) // change the quantity of a level
        } else if op < 83 || m.len() < LEVELS - 50 {
            // insert one tick better or worse, if free
            let k = if r.below(2) == 0 { key - TICK } else { key + TICK };
            if m.contains_key(&k) {
                continue;
            }
            (k, qty)
        } else {
            (key, 0) // remove
        };
        if q == 0 {
            m.remove(&k);
        } else {
            m.insert(k, q);
        }
        ops.push((is_bid, Level::new(k * sign, q)));
    }
    (bids, asks, ops)
}

fn bench_apply(c: &mut Criterion) {
    let (bids, asks, ops) = workload();
    let mut book = Book::with_capacity(65536);
    book.load(&bids, &asks);

    let mut g = c.benchmark_group("book_apply_1000_levels");
    g.throughput(Throughput::Elements(UPDATES as u64));
    g.bench_function("mmbot_price_ladder", |b| {
        b.iter_batched_ref(
            || book.clone(),
            |bk| {
                for &(is_bid, l) in &ops {
                    if is_bid {
                        bk.apply_bid(black_box(l));
                    } else {
                        bk.apply_ask(black_box(l));
                    }
                }
                black_box(bk.best_bid())
            },
            BatchSize::LargeInput,
        )
    });
    let sorted = (SortedSide::new(&bids, 1), SortedSide::new(&asks, -1));
    g.bench_function("sorted_array_baseline", |b| {
        b.iter_batched_ref(
            || sorted.clone(),
            |(sb, sa)| {
                for &(is_bid, l) in &ops {
                    let side = if is_bid { &mut *sb } else { &mut *sa };
                    side.apply(black_box(l).price.0, l.qty.0);
                }
                black_box(sb.keys.last().copied())
            },
            BatchSize::LargeInput,
        )
    });
    let tree: (BTreeMap<i64, i64>, BTreeMap<i64, i64>) =
        (bids.iter().map(|l| (l.price.0, l.qty.0)).collect(), asks.iter().map(|l| (l.price.0, l.qty.0)).collect());
    g.bench_function("btreemap_baseline", |b| {
        b.iter_batched_ref(
            || tree.clone(),
            |(tb, ta)| {
                for &(is_bid, l) in &ops {
                    let m = if is_bid { &mut *tb } else { &mut *ta };
                    if l.qty.0 == 0 {
                        m.remove(&black_box(l).price.0);
                    } else {
                        m.insert(black_box(l).price.0, l.qty.0);
                    }
                }
                black_box(tb.last_key_value().map(|(k, _)| *k))
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

/// The book's id after the common 10+10 diff.
const BOOK_ID: u64 = 50093239224;

fn ticker(u: u64) -> Vec<u8> {
    // The best bid and ask of `common::spot_diff_10x10`, price and quantity.
    format!(
        r#"{{"stream":"btcusdt@bookTicker","data":{{"u":{u},"s":"BTCUSDT","b":"61837.63000000","B":"3.78826000","a":"61837.64000000","A":"1.54520000"}}}}"#
    )
    .into_bytes()
}

/// A hot path whose BTCUSDT book is synced at [`BOOK_ID`].
fn synced_hot(check: TickerCheck) -> HotPath<NativeStrategy> {
    let symbol = Symbol::new(b"BTCUSDT");
    let cfg = HotConfig { symbol: Some(symbol), ..HotConfig::default() };
    let mut hot = HotPath::new(cfg, NativeStrategy, Clock::instant());
    hot.set_ticker_check(check);
    let diff = common::spot_diff_10x10_combined();
    let t = hot.clock().now();
    hot.on_frame(&diff, 1, t, &mut |_| {});
    // Levels a cent apart (the symbol's tick), all behind the diff's top.
    let snapshot = br#"{"lastUpdateId":50093239210,"bids":[["61837.00000000","1.00000000"],["61836.99000000","1.00000000"]],"asks":[["61838.00000000","1.00000000"],["61838.01000000","1.00000000"]]}"#;
    hot.on_snapshot(symbol, snapshot, 1, t, &mut |_| {});
    let book = hot.market().book(symbol).expect("book");
    assert!(book.is_synced() && book.update_id() == BOOK_ID, "bench setup: book not synced at {BOOK_ID}");
    hot
}

fn bench_ticker(c: &mut Criterion) {
    let mut g = c.benchmark_group("book_ticker_frame");
    let cases: [(&str, TickerCheck, u64); 4] = [
        ("check_off", TickerCheck::Off, BOOK_ID),
        ("skip_passed_u", TickerCheck::Resync, BOOK_ID - 7),
        ("match_u", TickerCheck::Resync, BOOK_ID),
        ("ahead_u", TickerCheck::Resync, BOOK_ID + 7),
    ];
    for (name, check, u) in cases {
        let mut hot = synced_hot(check);
        let frame = ticker(u);
        g.bench_function(name, |b| {
            b.iter(|| {
                let t = hot.clock().now();
                hot.on_frame(black_box(&frame), 2, t, &mut |_| {});
            })
        });
        let s = hot.market().stats();
        assert_eq!(s.ticker_mismatches, 0, "{name}: the frame must agree with the book");
        assert!(hot.market().book(Symbol::new(b"BTCUSDT")).is_some_and(|b| b.is_synced()), "{name}");
    }
    g.finish();
}

fn bench_warm(c: &mut Criterion) {
    let mut g = c.benchmark_group("idle_warm");
    let stream = mmbot::feed::synthetic_busy::busy_frames(2_000, 7);
    for (name, rehearse) in [("reads_only", false), ("with_rehearsal", true)] {
        let mut hot = HotPath::new(HotConfig::default(), NativeStrategy, Clock::instant());
        if rehearse {
            hot.enable_rehearsal();
        }
        for (ts, f) in &stream.frames {
            hot.on_frame(f, *ts, 0, &mut |_| {});
            hot.keep_for_rehearsal(f);
        }
        let before = hot.rehearsed_levels();
        g.bench_function(name, |b| b.iter(|| black_box(hot.warm())));
        assert_eq!(hot.rehearsed_levels() > before, rehearse, "{name}: the rehearsal must walk the book");
    }
    g.finish();
}

criterion_group!(benches, bench_apply, bench_ticker, bench_warm);
criterion_main!(benches);

//! A model-based check of mmbot's book sync (`SyncedBook`, src/hot/sync.rs),
//! shared by the `sync_model` fuzz target and the `tests/sync_model.rs`
//! proptest (both include this file by path, so CI exercises it on stable).
//!
//! Why: the sync rules are where a market maker silently goes wrong. A book
//! that says "synced" while one level differs from the exchange's quotes
//! off a price that is not there. Unit tests check the rules one case at a
//! time; this drives a true market and a faulty delivery from arbitrary
//! bytes and checks the one property that matters: **whenever the book says
//! it is synced, it equals the true book at the update id it claims,
//! level by level** (a `BTreeMap` per side is the model). It also checks
//! liveness: after the faults stop, one diff and a snapshot inside it bring
//! the book back in sync, and it then follows two more diffs exactly.
//!
//! The true market: one symbol whose levels are added, changed and removed,
//! one update id per change, grouped into events (diffs carry `U`, `u`, each
//! touched level once with its final quantity, as Binance sends them). Spot
//! ids are contiguous; USD-M ids jump between events (ids are shared across
//! symbols) and each diff carries `pu`, the previous event's `u`
//! (binance/FACTS.md section 2). Two anchor levels that never change keep
//! the learned tick fixed and the prices inside the book's window.
//!
//! The faulty delivery: diffs are queued in order and the bytes choose to
//! deliver, drop, duplicate or swap the next ones; REST snapshots are taken
//! at the newest id, at any older id, or strictly inside an event (the
//! "mid-event" snapshot whose id the next diff straddles); the connection
//! can be lost (the book invalidated).

use std::collections::{BTreeMap, VecDeque};

use mmbot::hot::msg::{DepthDiff, Level, Market, Snapshot, Symbol};
use mmbot::hot::sync::SyncedBook;

/// Price grid of the model (0.01 in 1e-8 units).
const TICK: i64 = 1_000_000;
/// Bids live in ticks [LOW, MID), asks in [MID, HIGH]: never crossed.
const LOW: i64 = 1000;
const MID: i64 = 1032;
const HIGH: i64 = 1063;
/// Quantity unit (1e-8 units) of the model's lots.
const LOT: i64 = 1_000;
/// The first update id (Binance's are large).
const START_ID: u64 = 5_000_000;
/// Bounds on one input, so every run is short.
const MAX_OPS: usize = 2_000;
const MAX_EVENTS: usize = 300;

/// One side's levels: price -> quantity (no zero quantities).
type Side = BTreeMap<i64, i64>;

/// The true book at one update id.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct TrueBook {
    bids: Side,
    asks: Side,
}

/// A diff as the exchange sends it.
#[derive(Clone, Debug)]
struct Diff {
    first: u64,
    last: u64,
    prev: Option<u64>,
    bids: Vec<Level>,
    asks: Vec<Level>,
}

/// What one run saw, for callers that want to assert coverage.
#[derive(Debug, Default, Clone, Copy)]
pub struct Outcome {
    /// Times the book said it was synced and was compared.
    pub checks: u64,
    pub events: u64,
    pub snapshots: u64,
}

/// Reads the input a byte at a time; 0 once it is used up.
struct Bytes<'a> {
    data: &'a [u8],
    at: usize,
}

impl Bytes<'_> {
    fn next(&mut self) -> u8 {
        let b = self.data.get(self.at).copied().unwrap_or(0);
        self.at += 1;
        b
    }

    fn done(&self) -> bool {
        self.at >= self.data.len()
    }
}

/// The true market and its history: the book at every id of this symbol.
struct Truth {
    market: Market,
    book: TrueBook,
    id: u64,
    /// The last event's `u` (its `pu` for the next USD-M diff).
    last_u: u64,
    history: BTreeMap<u64, TrueBook>,
    /// `(U, u)` of every event, oldest first.
    events: Vec<(u64, u64)>,
}

impl Truth {
    fn new(market: Market) -> Self {
        let mut book = TrueBook::default();
        // Anchors: gcd(LOW, HIGH) == 1, so the learned tick is TICK; never changed.
        book.bids.insert(LOW * TICK, 7 * LOT);
        book.asks.insert(HIGH * TICK, 7 * LOT);
        for t in [LOW + 10, LOW + 20, MID - 1] {
            book.bids.insert(t * TICK, 3 * LOT);
        }
        for t in [MID, MID + 10, HIGH - 5] {
            book.asks.insert(t * TICK, 3 * LOT);
        }
        let mut history = BTreeMap::new();
        history.insert(START_ID, book.clone());
        Self { market, book, id: START_ID, last_u: START_ID, history, events: Vec::new() }
    }

    /// Runs one event of 1..=4 level changes (one id each) and returns its diff.
    fn event(&mut self, input: &mut Bytes) -> Diff {
        if self.market == Market::UsdM {
            // Ids of other symbols pass between this symbol's events.
            self.id += u64::from(input.next() % 4);
        }
        let changes = 1 + input.next() % 4;
        let first = self.id + 1;
        let mut touched_bids = BTreeMap::new();
        let mut touched_asks = BTreeMap::new();
        for _ in 0..changes {
            let b = input.next();
            let bid = b & 1 == 0;
            // Anchors excluded: offsets 1..=30 inside each half.
            let offset = 1 + i64::from((b >> 1) % 30);
            let qty = i64::from(input.next() % 6) * LOT;
            let (side, touched, price) = if bid {
                (&mut self.book.bids, &mut touched_bids, (LOW + offset) * TICK)
            } else {
                (&mut self.book.asks, &mut touched_asks, (MID - 1 + offset) * TICK)
            };
            if qty == 0 {
                side.remove(&price);
            } else {
                side.insert(price, qty);
            }
            touched.insert(price, qty);
            self.id += 1;
            self.history.insert(self.id, self.book.clone());
        }
        let level = |(&p, &q): (&i64, &i64)| Level::new(p, q);
        let diff = Diff {
            first,
            last: self.id,
            prev: (self.market == Market::UsdM).then_some(self.last_u),
            // Spot lists bids best first; order does not matter to the book.
            bids: touched_bids.iter().rev().map(level).collect(),
            asks: touched_asks.iter().map(level).collect(),
        };
        self.last_u = self.id;
        self.events.push((first, self.id));
        diff
    }
}

fn levels(side: &Side, descending: bool) -> Vec<Level> {
    let it = side.iter().map(|(&p, &q)| Level::new(p, q));
    if descending {
        it.rev().collect()
    } else {
        it.collect()
    }
}

fn symbol() -> Symbol {
    Symbol::new(b"MODELUSDT")
}

fn deliver(book: &mut SyncedBook, d: &Diff) {
    let diff = DepthDiff {
        symbol: symbol(),
        event_time: 0,
        transact_time: 0,
        first_id: d.first,
        last_id: d.last,
        prev_last_id: d.prev,
    };
    book.on_diff(&diff, &d.bids, &d.asks, &mut |_, _| {});
}

fn snapshot(book: &mut SyncedBook, truth: &Truth, id: u64) {
    let t = truth.history.get(&id).expect("snapshots are taken at ids of the symbol");
    let snap = Snapshot { symbol: symbol(), last_update_id: id, event_time: 0, transact_time: 0 };
    book.on_snapshot(&snap, &levels(&t.bids, true), &levels(&t.asks, false), &mut |_, _| {});
}

/// If the book says it is synced, it must equal the true book at its id.
fn check(book: &SyncedBook, truth: &Truth, step: usize, out: &mut Outcome) {
    if !book.is_synced() {
        return;
    }
    out.checks += 1;
    let id = book.update_id();
    let Some(t) = truth.history.get(&id) else {
        panic!("step {step}: the book says synced at update id {id}, which this symbol never had");
    };
    let bids: Vec<(i64, i64)> = book.book().bids().map(|l| (l.price.0, l.qty.0)).collect();
    let asks: Vec<(i64, i64)> = book.book().asks().map(|l| (l.price.0, l.qty.0)).collect();
    let want_bids: Vec<(i64, i64)> = t.bids.iter().rev().map(|(&p, &q)| (p, q)).collect();
    let want_asks: Vec<(i64, i64)> = t.asks.iter().map(|(&p, &q)| (p, q)).collect();
    assert_eq!(bids, want_bids, "step {step}: bids differ from the true book at update id {id}");
    assert_eq!(asks, want_asks, "step {step}: asks differ from the true book at update id {id}");
}

/// Runs the bytes against a fresh `SyncedBook`; panics on a wrong synced
/// book or one that cannot be brought back in sync.
pub fn run(market: Market, data: &[u8]) -> Outcome {
    // A small pre-snapshot buffer, so overflow is exercised too.
    let mut book = SyncedBook::new(256, 8, 64);
    let mut truth = Truth::new(market);
    let mut queue: VecDeque<Diff> = VecDeque::new();
    let mut input = Bytes { data, at: 0 };
    let mut out = Outcome::default();
    for step in 0..MAX_OPS {
        if input.done() {
            break;
        }
        match input.next() % 10 {
            0 | 1 if truth.events.len() < MAX_EVENTS => {
                queue.push_back(truth.event(&mut input));
                out.events += 1;
            }
            0..=3 => {
                if let Some(d) = queue.pop_front() {
                    deliver(&mut book, &d);
                }
            }
            4 => {
                queue.pop_front();
            }
            5 => {
                if let Some(d) = queue.front().cloned() {
                    deliver(&mut book, &d);
                }
            }
            6 => {
                if queue.len() >= 2 {
                    queue.swap(0, 1);
                }
            }
            7 => {
                snapshot(&mut book, &truth, truth.last_u);
                out.snapshots += 1;
            }
            8 => {
                // Any older id of the symbol, or strictly inside an event.
                let pick = usize::from(input.next());
                let ids: Vec<u64> = truth.history.keys().copied().collect();
                let id = ids[ids.len() - 1 - pick % ids.len()];
                snapshot(&mut book, &truth, id);
                out.snapshots += 1;
            }
            _ => {
                if input.next().is_multiple_of(4) {
                    // The connection was lost: start over.
                    book.invalidate();
                    queue.clear();
                } else if let Some(&(first, last)) = truth.events.iter().rev().nth(usize::from(input.next() % 4)) {
                    if last > first {
                        let id = first + u64::from(input.next()) % (last - first);
                        snapshot(&mut book, &truth, id);
                        out.snapshots += 1;
                    }
                }
            }
        }
        check(&book, &truth, step, &mut out);
    }
    // Liveness: the faults stop. Deliver what is queued, then one fresh event
    // with a snapshot strictly inside it (valid for both markets' rules).
    while let Some(d) = queue.pop_front() {
        deliver(&mut book, &d);
        check(&book, &truth, MAX_OPS, &mut out);
    }
    let mut calm = Bytes { data: &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15], at: 0 };
    let d = loop {
        let d = truth.event(&mut calm);
        if d.last > d.first {
            break d;
        }
    };
    deliver(&mut book, &d);
    if !book.is_synced() {
        snapshot(&mut book, &truth, d.first);
    }
    check(&book, &truth, MAX_OPS + 1, &mut out);
    assert!(book.is_synced(), "a snapshot inside the newest diff did not resync the book: {:?}", book.stats());
    for k in 0..2 {
        let d = truth.event(&mut calm);
        deliver(&mut book, &d);
        assert!(book.is_synced(), "an in-order diff after the resync lost sync: {:?}", book.stats());
        check(&book, &truth, MAX_OPS + 2 + k, &mut out);
        assert_eq!(book.update_id(), truth.last_u, "the book did not reach the newest update id");
    }
    out
}

//! A synthetic combined stream with the shape of a real spot BTCUSDT capture,
//! for `mmbot bench --profile busy` (issue 19).
//!
//! Why: the 10+10-level frames of [`super::synthetic`] are the size of a
//! quiet diff, and the hot path meets its goals on them while it does not on
//! busy symbols, where cost grows with the levels per diff and with how far
//! from the touch they land (a cold ladder). This profile reproduces what a
//! real capture measured, so the levers of issue 19 can be benchmarked on
//! every machine without data files:
//!
//! - levels per side per diff: median 22, p90 100, p99 490, max 1,076 (the
//!   inverse of that empirical distribution, log-linear between the knots);
//! - where they land: about a fifth within 32 ticks of the touch, the rest an
//!   exponential tail, so the median level is ~2,592 ticks (0.01 each, BTC at
//!   ~60,000) from the touch and none beyond 30,000;
//! - about 11 `bookTicker` and 3 `trade` frames per diff, interleaved as the
//!   combined stream sends them: real-time tickers and trades first, then the
//!   diff that brings the book to the last ticker's `u` (100 ms batches).
//!
//! The book stays consistent, so the real hot path applies every frame
//! without a gap or a ticker mismatch: update ids chain (`U` = previous `u` +
//! 1), removals name levels that exist, the book never crosses, the last
//! ticker before each diff carries that diff's `u` and the book's exact top
//! after it. Levels come sorted as spot sends them (bids best-first, asks
//! best-first: ascending). Prices are 8-decimal strings; quantities are in
//! BTC's 0.00001 lot with trailing zeros trimmed to at least 3 decimals
//! (`"0.010"`, `"0.00012"`, removals `"0.000"`), the short numbers lever 2 is
//! about. Deterministic for a seed; generated before any timing, so it
//! allocates freely.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::synthetic::Rng;

/// Knots of the levels-per-side distribution: (quantile, levels).
const SIZE_KNOTS: [(f64, f64); 5] = [(0.0, 1.0), (0.5, 22.0), (0.9, 100.0), (0.99, 490.0), (1.0, 1076.0)];
/// Share of levels within [`NEAR_TICKS`] of the touch.
const NEAR_SHARE: u64 = 20;
const NEAR_TICKS: u64 = 32;
/// Mean of the exponential tail beyond [`NEAR_TICKS`], in ticks: puts the
/// overall median at ~2,592 ticks: 0.2 + 0.8 * (1 - e^(-2560/m)) = 0.5 gives
/// m = 5,447, less a sixth because updates of existing levels snap deeper.
const TAIL_MEAN_TICKS: f64 = 4_540.0;
/// Deepest level drawn, in ticks: inside the ladder's window (7/8 of 65,536).
pub const MAX_TICKS: i64 = 30_000;
/// A side never shrinks below this many levels (the touch stays near).
const MIN_SIDE_LEVELS: usize = 500;
/// One lot, BTCUSDT's quantity step 0.00001, in 1e-8 units.
const LOT: i64 = 1_000;
const FIRST_UPDATE_ID: u64 = 50_093_239_000;
const MID_CENTS: i64 = 6_000_000;

/// What kind of frame, for counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BusyKind {
    Snapshot,
    Depth,
    BookTicker,
    Trade,
}

/// The generated stream: timed frames in arrival order (the snapshot after
/// the first diff, where a recorder writes it) and their kinds.
pub struct BusyStream {
    pub frames: Vec<(i64, Vec<u8>)>,
    pub kinds: Vec<BusyKind>,
}

impl BusyStream {
    /// Frames of one kind.
    pub fn count(&self, kind: BusyKind) -> usize {
        self.kinds.iter().filter(|&&k| k == kind).count()
    }
}

/// One line saying what the profile reproduces (bench headers).
pub fn shape_line() -> String {
    format!(
        "levels/side/diff p50 22 p90 100 p99 490 max 1076; median level ~2592 ticks from the touch (max {MAX_TICKS}); \
         ~11 bookTicker + ~3 trade frames per diff"
    )
}

/// Levels on one side of one diff: the inverse of the empirical distribution.
fn diff_size(r: &mut Rng) -> usize {
    let u = r.below(1 << 30) as f64 / (1u64 << 30) as f64;
    let mut n = SIZE_KNOTS[0].1;
    for w in SIZE_KNOTS.windows(2) {
        let ((q0, n0), (q1, n1)) = (w[0], w[1]);
        if u <= q1 {
            n = (n0.ln() + (u - q0) / (q1 - q0) * (n1.ln() - n0.ln())).exp();
            break;
        }
    }
    (n.round() as usize).clamp(1, SIZE_KNOTS[4].1 as usize)
}

/// Ticks from the touch (0 = at it).
fn distance(r: &mut Rng) -> i64 {
    if r.below(100) < NEAR_SHARE {
        return r.below(NEAR_TICKS) as i64;
    }
    loop {
        let u = (1 + r.below(1 << 30)) as f64 / (1u64 << 30) as f64;
        let d = NEAR_TICKS as i64 + (-u.ln() * TAIL_MEAN_TICKS) as i64;
        if d <= MAX_TICKS {
            return d;
        }
    }
}

/// A resting quantity in 1e-8 units: dust, odd lots, round lots, a few BTC.
fn quantity(r: &mut Rng) -> i64 {
    LOT * match r.below(4) {
        0 => 1 + r.below(50) as i64,
        1 => 100 + r.below(1_900) as i64,
        2 => 1_000 * (1 + r.below(20) as i64),
        _ => 1 + r.below(300_000) as i64,
    }
}

/// `"0.010"`, `"0.00012"`, `"1.500"`: the lot's 5 decimals, trailing zeros
/// trimmed to at least 3.
fn write_qty(out: &mut String, qty: i64) {
    let lots = qty / LOT;
    let mut frac = format!("{:05}", lots % 100_000);
    while frac.len() > 3 && frac.ends_with('0') {
        frac.pop();
    }
    let _ = write!(out, "{}.{frac}", lots / 100_000);
}

fn write_price(out: &mut String, cents: i64) {
    let _ = write!(out, "{}.{:02}000000", cents / 100, cents % 100);
}

fn write_level(out: &mut String, cents: i64, qty: i64) {
    out.push_str("[\"");
    write_price(out, cents);
    out.push_str("\",\"");
    write_qty(out, qty);
    out.push_str("\"]");
}

/// One side of the book, keyed by price in cents; `bid` orders it.
struct Side {
    levels: BTreeMap<i64, i64>,
    bid: bool,
}

impl Side {
    fn best(&self) -> i64 {
        let k = if self.bid { self.levels.keys().next_back() } else { self.levels.keys().next() };
        *k.expect("a side keeps MIN_SIDE_LEVELS levels")
    }
    /// The price `d` ticks behind `from` (deeper).
    fn behind(&self, from: i64, d: i64) -> i64 {
        if self.bid {
            from - d
        } else {
            from + d
        }
    }
    /// The first existing level at `p` or deeper.
    fn existing_from(&self, p: i64) -> Option<i64> {
        if self.bid {
            self.levels.range(..=p).next_back().map(|(&k, _)| k)
        } else {
            self.levels.range(p..).next().map(|(&k, _)| k)
        }
    }
    fn apply(&mut self, updates: &BTreeMap<i64, i64>) {
        for (&p, &q) in updates {
            if q == 0 {
                self.levels.remove(&p);
            } else {
                self.levels.insert(p, q);
            }
        }
    }
    /// Levels best-first, as spot sends them.
    fn write(&self, out: &mut String, updates: &BTreeMap<i64, i64>) {
        let mut first = true;
        let mut put = |(&p, &q): (&i64, &i64)| {
            if !std::mem::take(&mut first) {
                out.push(',');
            }
            write_level(out, p, q);
        };
        if self.bid {
            updates.iter().rev().for_each(&mut put);
        } else {
            updates.iter().for_each(&mut put);
        }
    }
}

/// The levels of one side of one diff. `limit` is the other side's best: no
/// level may reach it.
fn side_updates(r: &mut Rng, side: &Side, limit: i64) -> BTreeMap<i64, i64> {
    let best = side.best();
    let spread = (limit - best).abs();
    let mut out = BTreeMap::new();
    // Into the spread: often when it is wide, so it stays near one tick.
    if spread > 1 && r.below(if spread > 3 { 1 } else { 3 }) == 0 {
        let p = side.behind(best, -(1 + r.below(spread as u64 - 1) as i64));
        out.insert(p, quantity(r));
    }
    let n = diff_size(r);
    let mut removals = 0usize;
    let mut tries = 0;
    while out.len() < n && tries < 4 * n {
        tries += 1;
        let mut p = side.behind(best, distance(r));
        let existing = r.below(5) < 2;
        if existing {
            match side.existing_from(p) {
                Some(e) => p = e,
                None => continue,
            }
        }
        if out.contains_key(&p) {
            continue;
        }
        let exists = side.levels.contains_key(&p);
        let remove = exists
            && r.below(2) == 0
            && side.levels.len() > MIN_SIDE_LEVELS + removals
            && (p != best || r.below(4) == 0);
        removals += remove as usize;
        out.insert(p, if remove { 0 } else { quantity(r) });
    }
    out
}

/// A snapshot side: levels drawn from the same distances as the diffs.
fn initial_side(r: &mut Rng, touch: i64, bid: bool) -> Side {
    let mut side = Side { levels: BTreeMap::new(), bid };
    side.levels.insert(touch, quantity(r));
    for d in 1..=NEAR_TICKS as i64 {
        side.levels.insert(side.behind(touch, d), quantity(r));
    }
    while side.levels.len() < 5_000 {
        let p = side.behind(touch, distance(r).max(1));
        side.levels.insert(p, quantity(r));
    }
    side
}

fn snapshot_body(last_update_id: u64, bids: &Side, asks: &Side) -> String {
    let mut s = format!("{{\"lastUpdateId\":{last_update_id},\"bids\":[");
    let all = |side: &Side| side.levels.clone();
    bids.write(&mut s, &all(bids));
    s.push_str("],\"asks\":[");
    asks.write(&mut s, &all(asks));
    s.push_str("]}");
    s
}

fn ticker_frame(u: u64, bids: &Side, asks: &Side) -> String {
    let (b, a) = (bids.best(), asks.best());
    let mut f = format!("{{\"stream\":\"btcusdt@bookTicker\",\"data\":{{\"u\":{u},\"s\":\"BTCUSDT\",\"b\":\"");
    write_price(&mut f, b);
    f.push_str("\",\"B\":\"");
    write_qty(&mut f, bids.levels[&b]);
    f.push_str("\",\"a\":\"");
    write_price(&mut f, a);
    f.push_str("\",\"A\":\"");
    write_qty(&mut f, asks.levels[&a]);
    f.push_str("\"}}");
    f
}

fn trade_frame(r: &mut Rng, id: u64, ms: i64, bids: &Side, asks: &Side) -> String {
    let buyer_maker = r.below(2) == 0;
    let price = if buyer_maker { bids.best() } else { asks.best() };
    let mut f = format!(
        "{{\"stream\":\"btcusdt@trade\",\"data\":{{\"e\":\"trade\",\"E\":{ms},\"s\":\"BTCUSDT\",\"t\":{id},\"p\":\""
    );
    write_price(&mut f, price);
    f.push_str("\",\"q\":\"");
    write_qty(&mut f, LOT * (1 + r.below(2_000) as i64));
    let _ = write!(f, "\",\"T\":{},\"m\":{buyer_maker},\"M\":true}}}}", ms - 1);
    f
}

/// `diffs` depth diffs with their bookTickers and trades and the snapshot,
/// as timed frames (receive times 100 ms per diff, the others spread
/// between) in arrival order.
pub fn busy_frames(diffs: usize, seed: u64) -> BusyStream {
    let mut r = Rng(seed | 1);
    let mut bids = initial_side(&mut r, MID_CENTS - 1, true);
    let mut asks = initial_side(&mut r, MID_CENTS, false);
    let snapshot = snapshot_body(FIRST_UPDATE_ID, &bids, &asks);
    let mut out = BusyStream { frames: Vec::with_capacity(diffs * 15 + 1), kinds: Vec::with_capacity(diffs * 15 + 1) };
    let mut id = FIRST_UPDATE_ID;
    let mut trade_id = 3_700_000_000u64;
    let mut ms = 1_723_161_255_000i64;
    for i in 0..diffs {
        let b = side_updates(&mut r, &bids, asks.best());
        bids.apply(&b);
        let a = side_updates(&mut r, &asks, bids.best());
        asks.apply(&a);
        let first = id + 1;
        id = first + (b.len() + a.len()) as u64 + r.below(1 + (b.len() + a.len()) as u64);
        let tickers = 6 + r.below(11) as usize;
        let trades = r.below(7) as usize;
        let base = 1 + i as i64 * 100_000_000;
        let step = 100_000_000 / (tickers + trades + 1) as i64;
        // Tickers' ids rise through the diff's range; the last is the diff's
        // `u` and shows the top after it (the one the hot path checks).
        let mut ticker_ids: Vec<u64> = (0..tickers - 1).map(|_| first + r.below(id - first + 1)).collect();
        ticker_ids.sort_unstable();
        ticker_ids.push(id);
        let (mut t_left, mut tr_left, mut k) = (ticker_ids.iter(), trades, 0i64);
        let push = |out: &mut BusyStream, k: &mut i64, frame: String, kind| {
            *k += 1;
            out.frames.push((base + *k * step, frame.into_bytes()));
            out.kinds.push(kind);
        };
        for j in 0..tickers + trades {
            let trade_now = tr_left > 0 && r.below((tickers + trades - j) as u64) < tr_left as u64;
            if trade_now {
                tr_left -= 1;
                trade_id += 1;
                let f = trade_frame(&mut r, trade_id, ms + (j as i64 * 100) / (tickers + trades) as i64, &bids, &asks);
                push(&mut out, &mut k, f, BusyKind::Trade);
            } else if let Some(&u) = t_left.next() {
                push(&mut out, &mut k, ticker_frame(u, &bids, &asks), BusyKind::BookTicker);
            }
        }
        for &u in t_left {
            push(&mut out, &mut k, ticker_frame(u, &bids, &asks), BusyKind::BookTicker);
        }
        ms += 100;
        let mut f = String::with_capacity(64 + 24 * (b.len() + a.len()));
        let _ = write!(
            f,
            "{{\"stream\":\"btcusdt@depth@100ms\",\"data\":{{\"e\":\"depthUpdate\",\"E\":{ms},\"s\":\"BTCUSDT\",\"U\":{first},\"u\":{id},\"b\":["
        );
        bids.write(&mut f, &b);
        f.push_str("],\"a\":[");
        asks.write(&mut f, &a);
        f.push_str("]}}");
        out.frames.push((base + 100_000_000 - 1, f.into_bytes()));
        out.kinds.push(BusyKind::Depth);
        if i == 0 {
            out.frames.push((base + 100_000_000, snapshot.clone().into_bytes()));
            out.kinds.push(BusyKind::Snapshot);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hot::engine::{HotConfig, HotPath};
    use crate::hot::msg::Symbol;
    use crate::hot::strategy::NativeStrategy;

    const TICK: i64 = 1_000_000; // 0.01 in 1e-8 units

    fn pct(sorted: &[i64], q: f64) -> i64 {
        sorted[((sorted.len() - 1) as f64 * q).round() as usize]
    }

    fn cents(s: &serde_json::Value) -> i64 {
        let s = s.as_str().unwrap();
        let (int, frac) = s.split_once('.').unwrap();
        assert_eq!(frac.len(), 8, "prices have 8 decimals: {s}");
        int.parse::<i64>().unwrap() * 100 + frac[..2].parse::<i64>().unwrap()
    }

    #[test]
    fn quantities_are_short_and_trimmed() {
        let w = |q| {
            let mut s = String::new();
            write_qty(&mut s, q);
            s
        };
        assert_eq!(
            (w(1_000_000), w(12_000), w(150_000_000), w(0), w(12_345_000)),
            ("0.010".into(), "0.00012".into(), "1.500".into(), "0.000".into(), "0.12345".into())
        );
    }

    #[test]
    fn deterministic_for_a_seed() {
        let (a, b, c) = (busy_frames(50, 9), busy_frames(50, 9), busy_frames(50, 10));
        assert!(a.frames == b.frames && a.kinds == b.kinds);
        assert!(a.frames != c.frames);
    }

    /// Levels per side per diff (parsed back from the frames) follow the
    /// capture's percentiles, spot's order, and the frame mix is ~11 + 3.
    #[test]
    fn diff_sizes_order_and_mix_match_the_capture() {
        let s = busy_frames(4_000, 42);
        let mut sizes = Vec::new();
        for (i, (_, f)) in s.frames.iter().enumerate().filter(|(i, _)| s.kinds[*i] == BusyKind::Depth) {
            let v: serde_json::Value = serde_json::from_slice(f).unwrap_or_else(|e| panic!("frame {i}: {e}"));
            for (key, desc) in [("b", true), ("a", false)] {
                let levels = v["data"][key].as_array().unwrap();
                let prices: Vec<i64> = levels.iter().map(|l| cents(&l[0])).collect();
                assert!(prices.windows(2).all(|w| if desc { w[0] > w[1] } else { w[0] < w[1] }), "frame {i} {key}");
                sizes.push(levels.len() as i64);
            }
        }
        sizes.sort_unstable();
        let (p50, p90, p99, max) = (pct(&sizes, 0.5), pct(&sizes, 0.9), pct(&sizes, 0.99), *sizes.last().unwrap());
        println!("levels per side: p50 {p50} p90 {p90} p99 {p99} max {max}");
        assert!((18..=27).contains(&p50), "p50 {p50}");
        assert!((80..=125).contains(&p90), "p90 {p90}");
        assert!((390..=600).contains(&p99), "p99 {p99}");
        assert!((800..=1076).contains(&max), "max {max}");
        let diffs = s.count(BusyKind::Depth) as f64;
        let tickers = s.count(BusyKind::BookTicker) as f64 / diffs;
        let trades = s.count(BusyKind::Trade) as f64 / diffs;
        assert!((10.0..=12.0).contains(&tickers) && (2.5..=3.5).contains(&trades), "{tickers} {trades}");
        assert_eq!(s.count(BusyKind::Snapshot), 1);
    }

    /// The real hot path takes the whole stream: no gap, no rejected frame,
    /// every ticker at a diff's id matches the book, no level dropped; and
    /// the median level lands ~2,592 ticks from the touch it finds.
    #[test]
    fn the_hot_path_applies_it_without_gaps_and_levels_spread_like_btc() {
        let s = busy_frames(2_000, 7);
        let clock = crate::stats::clock::Clock::instant();
        let mut hot = HotPath::new(HotConfig::default(), NativeStrategy, clock);
        let sym = Symbol::new(b"BTCUSDT");
        let mut distances = Vec::new();
        for (i, (ts, f)) in s.frames.iter().enumerate() {
            let touch = hot.market().book(sym).filter(|b| b.is_synced()).and_then(|b| {
                let book = b.book();
                Some((book.best_bid()?.price.0, book.best_ask()?.price.0))
            });
            if let (BusyKind::Depth, Some((bid, ask))) = (s.kinds[i], touch) {
                let v: serde_json::Value = serde_json::from_slice(f).unwrap();
                for (key, touch, sign) in [("b", bid, 1), ("a", ask, -1)] {
                    for l in v["data"][key].as_array().unwrap() {
                        let p = cents(&l[0]) * TICK;
                        distances.push(((touch - p) * sign).max(0) / TICK);
                    }
                }
            }
            hot.on_frame(f, *ts, clock.now(), &mut |_| {});
        }
        let md = hot.market();
        let (st, sync) = (md.stats(), md.sync_stats());
        assert_eq!((st.rejected, sync.gaps, sync.crossed, sync.resyncs, md.dropped_levels()), (0, 0, 0, 0, 0));
        assert_eq!(st.ticker_mismatches, 0);
        assert!(st.ticker_checks >= 1_990, "{} ticker checks", st.ticker_checks);
        assert_eq!(sync.applied, 2_000);
        assert!(md.book(sym).unwrap().is_synced());
        distances.sort_unstable();
        let median = pct(&distances, 0.5);
        println!("levels measured {}, median {median} ticks from the touch", distances.len());
        assert!((2_200..=3_000).contains(&median), "median {median} ticks");
        assert!(*distances.last().unwrap() <= MAX_TICKS);
    }
}

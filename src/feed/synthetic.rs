//! Built-in synthetic market data: a REST snapshot followed by chained spot
//! `depthUpdate` frames of 10 bid and 10 ask levels with 8-decimal strings,
//! the size and shape of a live BTCUSDT diff (~735 bytes), over a book that
//! stays consistent and uncrossed. Deterministic for a seed.
//!
//! `mmbot bench` measures the hot path on these when no recording is given,
//! so its numbers mean the same on every machine and need no data files.

use std::collections::BTreeMap;
use std::fmt::Write;

/// xorshift64*: reproducible without a dependency (also used by benches).
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// Appends `["61837.63000000","3.78826000"]`: price in cents (tick 0.01),
/// quantity in 1e-8 units, both with Binance spot's 8 decimals.
fn level(out: &mut String, price_cents: i64, qty: i64) {
    let _ = write!(
        out,
        "[\"{}.{:02}000000\",\"{}.{:08}\"]",
        price_cents / 100,
        price_cents % 100,
        qty / 100_000_000,
        qty % 100_000_000
    );
}

/// Generates `n` spot diff frames (combined-stream wrapped) after a snapshot.
/// Returns the snapshot body and the frames.
pub fn spot_diffs(n: usize, seed: u64) -> (String, Vec<String>) {
    let mut r = Rng(seed | 1);
    let mid = 6_183_763i64; // cents
    let mut bids: BTreeMap<i64, i64> = (1..=200).map(|i| (mid - i, 1 + r.below(500_000_000) as i64)).collect();
    let mut asks: BTreeMap<i64, i64> = (0..200).map(|i| (mid + i, 1 + r.below(500_000_000) as i64)).collect();
    let mut snapshot = String::from("{\"lastUpdateId\":50093239000,\"bids\":[");
    for (i, (&p, &q)) in bids.iter().rev().enumerate() {
        if i > 0 {
            snapshot.push(',');
        }
        level(&mut snapshot, p, q);
    }
    snapshot.push_str("],\"asks\":[");
    for (i, (&p, &q)) in asks.iter().enumerate() {
        if i > 0 {
            snapshot.push(',');
        }
        level(&mut snapshot, p, q);
    }
    snapshot.push_str("]}");

    let mut frames = Vec::with_capacity(n);
    // The snapshot's lastUpdateId; the first diff starts right after it.
    let mut id = 50_093_239_000u64;
    let mut time = 1_723_161_255_000i64;
    for _ in 0..n {
        let (best_bid, best_ask) =
            (*bids.keys().next_back().unwrap_or(&(mid - 1)), *asks.keys().next().unwrap_or(&mid));
        let mut f = String::with_capacity(800);
        let first = id + 1;
        id = first + r.below(20);
        time += 100;
        let _ = write!(
            f,
            "{{\"stream\":\"btcusdt@depth@100ms\",\"data\":{{\"e\":\"depthUpdate\",\"E\":{time},\"s\":\"BTCUSDT\",\"U\":{first},\"u\":{id},\"b\":["
        );
        // Ten bid levels within ~20 ticks of the touch: mostly new
        // quantities, some removals, never at or above the best ask. Sent
        // as Binance sends them: one level per price, best first (a price
        // is drawn again until ten differ; bounded, as 20 prices are open).
        let mut side: Vec<(i64, i64)> = Vec::with_capacity(10);
        for _ in 0..200 {
            if side.len() == 10 {
                break;
            }
            let p = (best_bid - r.below(20) as i64).min(best_ask - 1);
            if side.iter().any(|l| l.0 == p) {
                continue;
            }
            let q = if r.below(6) == 0 && bids.len() > 50 { 0 } else { 1 + r.below(500_000_000) as i64 };
            if q == 0 {
                bids.remove(&p);
            } else {
                bids.insert(p, q);
            }
            side.push((p, q));
        }
        side.sort_by_key(|l| std::cmp::Reverse(l.0));
        for (i, &(p, q)) in side.iter().enumerate() {
            if i > 0 {
                f.push(',');
            }
            level(&mut f, p, q);
        }
        f.push_str("],\"a\":[");
        let best_bid = *bids.keys().next_back().unwrap_or(&(mid - 1));
        side.clear();
        for _ in 0..200 {
            if side.len() == 10 {
                break;
            }
            let p = (best_ask + r.below(20) as i64).max(best_bid + 1);
            if side.iter().any(|l| l.0 == p) {
                continue;
            }
            let q = if r.below(6) == 0 && asks.len() > 50 { 0 } else { 1 + r.below(500_000_000) as i64 };
            if q == 0 {
                asks.remove(&p);
            } else {
                asks.insert(p, q);
            }
            side.push((p, q));
        }
        side.sort_by_key(|l| l.0);
        for (i, &(p, q)) in side.iter().enumerate() {
            if i > 0 {
                f.push(',');
            }
            level(&mut f, p, q);
        }
        f.push_str("]}}");
        frames.push(f);
    }
    (snapshot, frames)
}

/// `n` diffs and their snapshot as timed frames, in the order a recorder
/// writes them: the first diff, then the snapshot, then the rest, 100 ms
/// apart.
pub fn spot_frames(n: usize, seed: u64) -> Vec<(i64, Vec<u8>)> {
    let (snapshot, diffs) = spot_diffs(n, seed);
    let mut frames = Vec::with_capacity(diffs.len() + 1);
    for (i, d) in diffs.into_iter().enumerate() {
        frames.push((1 + i as i64 * 100_000_000, d.into_bytes()));
        if i == 0 {
            frames.push((2, snapshot.as_bytes().to_vec()));
        }
    }
    frames
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hot::market::{BookSizes, Event, MarketData};

    #[test]
    fn frames_chain_apply_and_never_cross() {
        let (snap, frames) = spot_diffs(2_000, 7);
        let mut md = MarketData::new(BookSizes::default());
        let mut applied = 0;
        md.on_frame(frames[0].as_bytes(), &mut |_| {});
        md.on_frame(snap.as_bytes(), &mut |_| {});
        for f in &frames[1..] {
            md.on_frame(f.as_bytes(), &mut |ev| {
                if let Event::Depth { book, .. } = ev {
                    assert!(!book.is_crossed());
                    applied += 1;
                }
            });
        }
        assert_eq!((md.stats().rejected, md.sync_stats().gaps), (0, 0));
        assert_eq!(applied, 1_999);
        let payload = &frames[10][frames[10].find("\"data\":").unwrap() + 7..frames[10].len() - 1];
        assert!((700..=780).contains(&payload.len()), "{} bytes", payload.len());
    }
}

//! The compact-diff fast path must agree exactly with the simd-json path:
//! same message, same levels, same error, on every real frame and on
//! thousands of mutated diffs. (When it declines, the simd-json path runs, so
//! agreement there is by construction; what this pins is that whatever the
//! fast path accepts, it reads as simd-json would.)

mod common;

use mmbot::hot::parse::Parser;
use proptest::prelude::*;

fn both(frame: &[u8]) {
    let mut fast = Parser::new(5000, 1 << 16);
    let mut tape = Parser::new(5000, 1 << 16);
    tape.set_compact_diffs(false);
    let (a, b) = (fast.parse(frame), tape.parse(frame));
    assert_eq!(a, b, "paths disagree on {}", String::from_utf8_lossy(frame));
    if a.is_ok() {
        assert_eq!(fast.bids(), tape.bids());
        assert_eq!(fast.asks(), tape.asks());
    }
}

/// Real diff frames (combined wrapper stripped and kept) from the captures.
fn real_frames() -> Vec<Vec<u8>> {
    let Some(files) = common::recordings("compact_differential") else {
        return vec![];
    };
    let mut out = Vec::new();
    for f in files {
        for line in common::lines(&f) {
            let json = line.splitn(2, |&b| b == b' ').nth(1).unwrap().to_vec();
            out.push(json);
        }
    }
    out
}

#[test]
fn every_real_frame_reads_the_same_both_ways() {
    let frames = real_frames();
    for f in &frames {
        both(f);
        // The bare payload of a combined frame takes the raw-frame route.
        if let Some(at) = f.windows(8).position(|w| w == b",\"data\":") {
            both(&f[at + 8..f.len() - 1]);
        }
    }
}

/// Read once: every proptest case draws from the same payloads.
fn diff_payloads() -> &'static [Vec<u8>] {
    static PAYLOADS: std::sync::OnceLock<Vec<Vec<u8>>> = std::sync::OnceLock::new();
    PAYLOADS.get_or_init(load_diff_payloads)
}

fn load_diff_payloads() -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = real_frames()
        .into_iter()
        .filter_map(|f| {
            let at = f.windows(8).position(|w| w == b",\"data\":")?;
            let p = f[at + 8..f.len() - 1].to_vec();
            p.starts_with(b"{\"e\":\"depthUpdate\"").then_some(p)
        })
        .take(200)
        .collect();
    v.push(br#"{"e":"depthUpdate","E":1723161255408,"s":"BTCUSDT","U":50093239208,"u":50093239224,"b":[["61837.63000000","3.78826000"]],"a":[["61837.64000000","1.54520000"]]}"#.to_vec());
    v
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    #[test]
    fn mutated_diffs_read_the_same_both_ways(
        pick in any::<prop::sample::Index>(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..4), 1..4),
        wrap in any::<bool>(),
    ) {
        let payloads = diff_payloads();
        let mut f = payloads[pick.index(payloads.len())].clone();
        for (at, byte, op) in edits {
            let i = at.index(f.len().max(1)).min(f.len().saturating_sub(1));
            // Bytes that matter to the grammar, often enough to hit edges.
            let b = [b'"', b',', b'[', b']', b'0', b'9', b'.', b'-', b'e', b' ', b'\\', byte][byte as usize % 12];
            match op {
                0 if !f.is_empty() => f[i] = b,
                1 => f.insert(i, b),
                2 if !f.is_empty() => { f.remove(i); }
                _ => f.truncate(i),
            }
        }
        if wrap {
            let mut w = b"{\"stream\":\"btcusdt@depth@100ms\",\"data\":".to_vec();
            w.extend_from_slice(&f);
            w.push(b'}');
            f = w;
        }
        both(&f);
    }
}

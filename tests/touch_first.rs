//! Touch-first apply against the reference path (the whole diff applied
//! before the quote), on real captures and on the BTCUSDT-shaped synthetic
//! stream: every quote the same, the top levels the strategy saw the same
//! at every decision, the final books the same. Then the cases where it
//! must not skip anything: a side sent in an unexpected order (Binance
//! promises none, FACTS.md "Do not assume an ordering inside `b`"), a side
//! sorted only where it was read, and a frame whose far levels are corrupt.

mod common;

use mmbot::exec::Quote;
use mmbot::feed::synthetic_busy::busy_frames;
use mmbot::hot::engine::{HotConfig, HotEvent, HotPath, HotStats};
use mmbot::hot::msg::Level;
use mmbot::hot::strategy::{Decision, NativeStrategy, Strategy, StrategyInput, DECISION_DEPTH};
use mmbot::stats::clock::Clock;

/// The native strategy, noting the top of the book at every decision.
#[derive(Default)]
struct Watching {
    inner: NativeStrategy,
    seen: Vec<(Vec<Level>, Vec<Level>)>,
}

impl Strategy for Watching {
    fn decide(&mut self, input: &StrategyInput<'_>) -> Decision {
        let book = input.scope.book.expect("the hot path hands the book");
        self.seen.push((book.bids().take(DECISION_DEPTH).collect(), book.asks().take(DECISION_DEPTH).collect()));
        self.inner.decide(input)
    }
    fn name(&self) -> &str {
        "watching"
    }
}

struct Run {
    quotes: Vec<(Quote, bool, Option<Level>, Option<Level>)>,
    seen: Vec<(Vec<Level>, Vec<Level>)>,
    stats: HotStats,
    rejected: u64,
    books: Vec<(Vec<Level>, Vec<Level>, bool, u64)>,
}

fn run(frames: &[(i64, Vec<u8>)], touch_first: bool) -> Run {
    run_with(frames, HotConfig { touch_first, ..HotConfig::default() })
}

fn run_with(frames: &[(i64, Vec<u8>)], cfg: HotConfig) -> Run {
    let touch_first = cfg.touch_first;
    let mut hot = HotPath::new(cfg, Watching::default(), Clock::instant());
    assert_eq!(hot.touch_levels() > 0, touch_first);
    let mut quotes = Vec::new();
    for (ts, f) in frames {
        hot.on_frame(f, *ts, 0, &mut |ev| {
            if let HotEvent::Quote { quote, synced, best_bid, best_ask, .. } = ev {
                quotes.push((quote, synced, best_bid, best_ask));
            }
        });
    }
    let md = hot.market();
    let books = md
        .symbols()
        .map(|s| {
            let b = md.book(s).unwrap();
            (b.book().bids().collect(), b.book().asks().collect(), b.is_synced(), b.update_id())
        })
        .collect();
    let rejected = md.stats().rejected;
    Run { quotes, stats: hot.stats(), rejected, books, seen: std::mem::take(&mut hot.strategy_mut().seen) }
}

/// Both paths over `frames`: identical quotes, tops and books.
fn same_as_reference(name: &str, frames: &[(i64, Vec<u8>)]) -> HotStats {
    let (touch, whole) = (run(frames, true), run(frames, false));
    assert!(!whole.quotes.is_empty(), "{name}: no quotes");
    assert_eq!(touch.quotes.len(), whole.quotes.len(), "{name}: quote count");
    for (i, (a, b)) in touch.quotes.iter().zip(&whole.quotes).enumerate() {
        assert_eq!(a, b, "{name}: quote {i} differs");
    }
    assert_eq!(touch.seen.len(), whole.seen.len(), "{name}: decisions");
    for (i, (a, b)) in touch.seen.iter().zip(&whole.seen).enumerate() {
        assert_eq!(a, b, "{name}: the top {DECISION_DEPTH} levels at decision {i} differ");
    }
    assert_eq!(touch.books, whole.books, "{name}: final books differ");
    assert_eq!(touch.rejected, whole.rejected, "{name}");
    assert_eq!(touch.stats.touch_requotes, 0, "{name}: a sorted stream never needs a second quote");
    touch.stats
}

#[test]
fn real_captures_quote_exactly_as_the_whole_diff_path() {
    let Some(files) = common::recordings("real_captures_quote_exactly_as_the_whole_diff_path") else { return };
    let mut touched = 0;
    for path in &files {
        let frames = common::timed_lines(&common::lines(path), usize::MAX);
        let stats = same_as_reference(&path.display().to_string(), &frames);
        touched += stats.touch_first;
    }
    assert!(touched > 100, "touch-first quoted {touched} diffs of the captures");
}

#[test]
fn the_busy_usdm_capture_quotes_exactly_as_the_whole_diff_path() {
    let path = common::shared_data().join("busy/usdm_ethusdt_20240808.gz");
    if !path.exists() {
        common::skip(format_args!("busy capture test: {} is absent", path.display()));
        return;
    }
    // USD-M sends bids worst-first: they are read from the end.
    let frames = common::timed_lines(&common::lines(&path), 30_000);
    let stats = same_as_reference("busy ETHUSDT capture", &frames);
    assert!(stats.touch_first > 1_000, "{stats:?}");
    assert_eq!(stats.touch_declined, 0, "{stats:?}");
    assert!(stats.touch_levels_before < stats.touch_levels_total / 2, "{stats:?}");
}

#[test]
fn the_btcusdt_shaped_stream_quotes_exactly_as_the_whole_diff_path() {
    let stream = busy_frames(1_500, 7);
    let stats = same_as_reference("busy synthetic", &stream.frames);
    assert!(stats.touch_first > 1_000, "{stats:?}");
    assert!(stats.touch_levels_before * 4 < stats.touch_levels_total, "{stats:?}");
}

/// Rewrites the `"b":[...]` array of every spot diff with `f` applied to
/// its levels (as raw JSON strings).
fn rewrite_bids(frames: &[(i64, Vec<u8>)], f: impl Fn(&mut Vec<String>)) -> Vec<(i64, Vec<u8>)> {
    frames
        .iter()
        .map(|(ts, frame)| {
            let text = String::from_utf8(frame.clone()).unwrap();
            let (Some(b), Some(a)) = (text.find("\"b\":[["), text.find("],\"a\":[")) else {
                return (*ts, frame.clone());
            };
            let inner = &text[b + 6..a - 1];
            let mut levels: Vec<String> = inner.split("],[").map(str::to_string).collect();
            f(&mut levels);
            let out = format!("{}{}{}", &text[..b + 6], levels.join("],["), &text[a - 1..]);
            (*ts, out.into_bytes())
        })
        .collect()
}

/// The quotes of a run, keeping only the last one made for each diff (a
/// requote replaces the one made on an inexact top).
fn last_per_diff(r: &Run) -> Vec<Quote> {
    let mut out: Vec<Quote> = Vec::new();
    for q in &r.quotes {
        match out.last_mut() {
            Some(prev) if prev.update_id == q.0.update_id && prev.time_ns == q.0.time_ns => *prev = q.0,
            _ => out.push(q.0),
        }
    }
    out
}

#[test]
fn a_side_in_another_order_is_still_exact() {
    // Bids sent worst-first (as USD-M does): read from the end, exact.
    let stream = busy_frames(400, 11);
    let reversed = rewrite_bids(&stream.frames, |l| l.reverse());
    let stats = same_as_reference("reversed bids", &reversed);
    assert!(stats.touch_first > 300, "{stats:?}");
    // Scrambled: the walk finds the order broken (declines, the whole diff
    // goes first) or the check after it does (quotes again).
    let scrambled = rewrite_bids(&stream.frames, |l| {
        if l.len() > 3 {
            l.swap(0, 2);
        }
    });
    let (touch, whole) = (run(&scrambled, true), run(&scrambled, false));
    assert!(touch.stats.touch_declined + touch.stats.touch_requotes > 0, "{:?}", touch.stats);
    assert_eq!(last_per_diff(&touch), last_per_diff(&whole));
    assert_eq!(touch.books, whole.books);
}

#[test]
fn a_side_sorted_only_where_read_is_quoted_again_on_the_whole_diff() {
    // The best bid moved next to the end of a best-first list: the ends
    // still say "best first", the walk stops before reaching it, and the
    // check after the whole diff finds it above the stop.
    let stream = busy_frames(400, 13);
    let moved = rewrite_bids(&stream.frames, |l| {
        if l.len() > 3 {
            let best = l.remove(0);
            let n = l.len();
            l.insert(n - 1, best);
        }
    });
    let (touch, whole) = (run(&moved, true), run(&moved, false));
    assert!(touch.stats.touch_requotes > 0, "{:?}", touch.stats);
    assert_eq!(touch.books, whole.books);
    assert_eq!(last_per_diff(&touch), last_per_diff(&whole));
}

#[test]
fn corrupt_far_levels_make_the_book_resync_and_pull_the_quote() {
    let stream = busy_frames(60, 17);
    let mut frames = stream.frames.clone();
    // Corrupt the last bid of the 30th diff with many levels: its head
    // reads (the far end is never reached before the quote), the whole
    // frame does not.
    let mut seen = 0;
    let target = frames
        .iter()
        .position(|(_, f)| {
            let t = String::from_utf8_lossy(f);
            let is_big_diff = t.contains("depthUpdate") && t.matches("],[").count() > 40;
            seen += is_big_diff as usize;
            is_big_diff && seen == 30
        })
        .expect("a diff with many levels");
    // A quantity digit of a bid in the middle of the list: the walk reads
    // the two ends and stops near the best, never reaching it.
    let text = String::from_utf8(frames[target].1.clone()).unwrap();
    let (b, a) = (text.find("\"b\":[[").unwrap(), text.find("],\"a\":[").unwrap());
    let joins: Vec<usize> = text[b..a].match_indices("],[").map(|(i, _)| b + i).collect();
    let at = joins[joins.len() / 2] - 2; // the last digit before `"],[`
    let bad = format!("{}x{}", &text[..at], &text[at + 1..]);
    frames[target].1 = bad.into_bytes();
    let touch = run(&frames[..=target], true);
    assert_eq!(touch.rejected, 1, "the corrupt frame is counted");
    let (last, synced, ..) = touch.quotes.last().unwrap();
    assert!(last.bid.is_none() && last.ask.is_none() && !synced, "pulled on the untrustworthy book: {last:?}");
    assert!(!touch.books[0].2, "the book waits for a new snapshot");
}

#[test]
fn the_projects_own_spot_sample_quotes_exactly_as_the_whole_diff_path() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/sample_spot_btcusdt.rec");
    let frames = common::timed_lines(&common::lines(&path), usize::MAX);
    let stats = same_as_reference("sample_spot_btcusdt.rec", &frames);
    assert!(stats.touch_first > 0, "{stats:?}");
    // As `run` and `replay` configure it: the traded symbol named.
    let symbol = Some(mmbot::hot::msg::Symbol::new(b"BTCUSDT"));
    let touch = run_with(&frames, HotConfig { symbol, touch_first: true, ..HotConfig::default() });
    let whole = run_with(&frames, HotConfig { symbol, touch_first: false, ..HotConfig::default() });
    assert_eq!(touch.quotes, whole.quotes, "{:?}", touch.stats);
}

/// A small synced spot book (snapshot at id 100) and the frames after it.
fn small_book_then(diffs: &[&str]) -> Vec<(i64, Vec<u8>)> {
    let mut frames = vec![(
        1,
        br#"{"lastUpdateId":100,"bids":[["100.00","1"],["99.00","1"],["98.00","1"],["97.00","1"],["96.00","1"],["95.00","1"],["94.00","1"]],"asks":[["101.00","1"],["102.00","1"],["103.00","1"],["104.00","1"],["105.00","1"],["106.00","1"],["107.00","1"]]}"#.to_vec(),
    )];
    // The diff that names the symbol first, then the snapshot it needs.
    frames.insert(
        0,
        (0, br#"{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":100,"u":100,"b":[],"a":[]}}"#.to_vec()),
    );
    // One good diff, so the book is the traded one and quoted on.
    frames.push((
        2,
        br#"{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":2,"s":"BTCUSDT","U":101,"u":101,"b":[["99.50","1"]],"a":[]}}"#.to_vec(),
    ));
    for (i, d) in diffs.iter().enumerate() {
        frames.push((3 + i as i64, d.as_bytes().to_vec()));
    }
    frames
}

#[test]
fn a_diff_left_half_applied_is_never_trusted() {
    // Reviewed cases where touch-first has put levels in the book and the
    // whole frame then does not confirm them:
    // - the asks do not read (after the bids were applied);
    // - a repeated `b` key that only simd-json accepts (it takes the last);
    // - the top crossed by the head.
    let cases = [
        r#"{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":2,"s":"BTCUSDT","U":102,"u":102,"b":[["100.50","5"]],"a":[["101.00","2"],["10x.00","1"]]}}"#,
        r#"{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":2,"s":"BTCUSDT","U":102,"u":102,"b":[["100.50","5"]],"a":[["101.00","2"],["150.00","1"]],"b":[["99.50","2"]]}}"#,
    ];
    for (i, case) in cases.iter().enumerate() {
        let frames = small_book_then(&[case]);
        let touch = run(&frames, true);
        let whole = run(&frames, false);
        assert!(
            touch.stats.touch_declined + touch.stats.touch_first > 0,
            "case {i}: touch-first never read it: {:?} {:?} rejected {}",
            touch.stats,
            whole.books,
            whole.rejected
        );
        let (bids, _, synced, _) = &touch.books[0];
        // Never a synced book holding part of a diff.
        assert!(!synced || whole.books[0].2 && touch.books == whole.books, "case {i}: {bids:?} {:?}", touch.stats);
        if !synced {
            let (last, ..) = touch.quotes.last().expect("a quote");
            assert!(last.is_pulled(), "case {i}: quotes pulled on the untrustworthy book");
        }
    }
    // A head that crosses the book: handled as the whole-diff path does.
    let crossing = r#"{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":2,"s":"BTCUSDT","U":102,"u":102,"b":[["101.50","5"]],"a":[]}}"#;
    let frames = small_book_then(&[crossing]);
    let (touch, whole) = (run(&frames, true), run(&frames, false));
    assert_eq!(touch.quotes, whole.quotes);
    assert_eq!(touch.books, whole.books);
    assert_eq!(touch.stats.touch_declined, 1, "{:?}", touch.stats);
    assert_eq!(touch.seen, whole.seen, "the strategy never sees the crossed book");
}

//! The warm hot thread's rehearsal (`HotPath::enable_rehearsal`, run by
//! `HotPath::warm` while idle) changes nothing: on real captures, the busy
//! USD-M capture and the BTCUSDT-shaped stream, a hot path that rehearses
//! the latest diff after every frame emits exactly the events of one that
//! does not, and ends with the same books, counters, features and
//! decisions. The rehearsal must also actually read levels into the book
//! (not decline everything), or these tests would prove nothing.

mod common;

use mmbot::exec::Quote;
use mmbot::feed::synthetic_busy::busy_frames;
use mmbot::hot::book::TopOfBook;
use mmbot::hot::engine::{HotConfig, HotEvent, HotPath, HotStats};
use mmbot::hot::features::Features;
use mmbot::hot::fixed::Price;
use mmbot::hot::guard::GuardStats;
use mmbot::hot::market::FeedStats;
use mmbot::hot::msg::{Level, Symbol};
use mmbot::hot::strategy::{Decision, NativeStrategy, Strategy, StrategyInput};
use mmbot::hot::sync::SyncStats;
use mmbot::stats::clock::Clock;
use mmbot::stats::latency::Stage;

/// A book at the end: symbol, bids, asks, synced, update id, levels
/// dropped, tick.
type FinalBook = (Symbol, Vec<Level>, Vec<Level>, bool, u64, u64, Price);

/// Everything a run shows the rest of the bot.
#[derive(Debug, PartialEq)]
#[allow(clippy::large_enum_variant)]
enum Seen {
    Depth(Symbol, Box<TopOfBook>, i64),
    Trade(String),
    Quote(Quote, bool, Option<Level>, Option<Level>),
}

struct Run {
    events: Vec<Seen>,
    stats: HotStats,
    guard: GuardStats,
    market: FeedStats,
    sync: SyncStats,
    /// Samples per stage (their values are times, which differ).
    samples: Vec<u64>,
    features: Option<Features>,
    decision: Decision,
    books: Vec<FinalBook>,
    decisions: u64,
}

/// The native strategy, counting its decisions (a rehearsal must not make
/// one through `decide`).
#[derive(Default)]
struct Counting {
    inner: NativeStrategy,
    decisions: u64,
}

impl Strategy for Counting {
    fn decide(&mut self, input: &StrategyInput<'_>) -> Decision {
        self.decisions += 1;
        self.inner.decide(input)
    }
    fn rehearse(&mut self, input: &StrategyInput<'_>) -> Option<Decision> {
        self.inner.rehearse(input)
    }
    fn name(&self) -> &str {
        "counting"
    }
}

/// Runs `frames`; with `rehearse`, the rehearsal runs before the first
/// frame and twice after every frame. Returns the run and the levels the
/// rehearsals read again into the book.
fn run(frames: &[(i64, Vec<u8>)], cfg: HotConfig, rehearse: bool) -> (Run, u64) {
    let mut hot = HotPath::new(cfg, Counting::default(), Clock::instant());
    if rehearse {
        hot.enable_rehearsal();
        hot.warm();
    }
    let mut events = Vec::new();
    for (ts, f) in frames {
        hot.on_frame(f, *ts, 0, &mut |ev| {
            events.push(match ev {
                HotEvent::Depth { symbol, book, time_ns } => {
                    Seen::Depth(symbol, Box::new(TopOfBook::of(book)), time_ns)
                }
                HotEvent::Trade(t) => Seen::Trade(format!("{t:?}")),
                HotEvent::Quote { quote, synced, best_bid, best_ask, .. } => {
                    Seen::Quote(quote, synced, best_bid, best_ask)
                }
            })
        });
        if rehearse {
            hot.keep_for_rehearsal(f);
            hot.warm();
            hot.warm();
        }
    }
    let md = hot.market();
    let books = md
        .symbols()
        .map(|s| {
            let b = md.book(s).unwrap();
            let book = b.book();
            let (bids, asks) = (book.bids().collect(), book.asks().collect());
            (s, bids, asks, b.is_synced(), b.update_id(), book.dropped_levels(), book.tick())
        })
        .collect();
    let run = Run {
        events,
        stats: hot.stats(),
        guard: hot.guard_stats(),
        market: *md.stats(),
        sync: md.sync_stats(),
        samples: Stage::ALL.iter().map(|&s| hot.histograms().percentiles(s).count).collect(),
        features: hot.last_features(),
        decision: hot.last_decision(),
        books,
        decisions: hot.strategy().decisions,
    };
    (run, hot.rehearsed_levels())
}

/// Rehearsing changes nothing over `frames`; returns the levels the
/// rehearsals read again into the book.
fn rehearsing_changes_nothing(name: &str, frames: &[(i64, Vec<u8>)], cfg: HotConfig) -> u64 {
    let (plain, none) = run(frames, cfg, false);
    let (rehearsed, levels) = run(frames, cfg, true);
    assert_eq!(none, 0, "{name}: rehearsals without enable_rehearsal");
    assert!(plain.events.iter().any(|e| matches!(e, Seen::Quote(..))), "{name}: no quotes");
    assert_eq!(plain.events.len(), rehearsed.events.len(), "{name}: event count");
    for (i, (a, b)) in plain.events.iter().zip(&rehearsed.events).enumerate() {
        assert_eq!(a, b, "{name}: event {i} differs");
    }
    // Field by field, so a failure names what moved without printing books.
    assert_eq!(plain.stats, rehearsed.stats, "{name}: hot path counters");
    assert_eq!(plain.guard, rehearsed.guard, "{name}: guard counters");
    assert_eq!(plain.market, rehearsed.market, "{name}: feed counters");
    assert_eq!(plain.sync, rehearsed.sync, "{name}: sync counters");
    assert_eq!(plain.samples, rehearsed.samples, "{name}: latency samples per stage");
    assert_eq!(plain.features, rehearsed.features, "{name}: features");
    assert_eq!(plain.decision, rehearsed.decision, "{name}: last decision");
    assert_eq!(plain.decisions, rehearsed.decisions, "{name}: strategy decisions");
    assert_eq!(plain.books.len(), rehearsed.books.len(), "{name}: books");
    for (a, b) in plain.books.iter().zip(&rehearsed.books) {
        assert!(a == b, "{name}: the final book of {:?} differs", a.0);
    }
    levels
}

#[test]
fn rehearsing_real_captures_changes_nothing() {
    let sample = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/sample_spot_btcusdt.rec");
    let mut files = vec![sample];
    files.extend(common::recordings("rehearsing_real_captures_changes_nothing").unwrap_or_default());
    for path in &files {
        let frames = common::timed_lines(&common::lines(path), usize::MAX);
        for touch_first in [true, false] {
            let cfg = HotConfig { touch_first, ..HotConfig::default() };
            let levels = rehearsing_changes_nothing(&path.display().to_string(), &frames, cfg);
            // The walk is touch-first's: off, the rehearsal reads no level.
            assert_eq!(levels > 0, touch_first, "{}: {levels} levels rehearsed", path.display());
        }
    }
}

#[test]
fn rehearsing_the_busy_usdm_capture_changes_nothing() {
    let path = common::shared_data().join("busy/usdm_ethusdt_20240808.gz");
    if !path.exists() {
        common::skip(format_args!("busy capture test: {} is absent", path.display()));
        return;
    }
    // USD-M sends bids worst-first: the walk reads them from the end.
    let frames = common::timed_lines(&common::lines(&path), 20_000);
    let levels = rehearsing_changes_nothing("busy ETHUSDT capture", &frames, HotConfig::default());
    assert!(levels > 1_000, "{levels} levels rehearsed");
}

#[test]
fn rehearsing_the_btcusdt_shaped_stream_changes_nothing() {
    let stream = busy_frames(1_500, 7);
    let levels = rehearsing_changes_nothing("busy synthetic", &stream.frames, HotConfig::default());
    assert!(levels > 1_000, "{levels} levels rehearsed");
}

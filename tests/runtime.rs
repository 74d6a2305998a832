//! The threaded paper trader (pinned hot thread, exec thread, rings) sees the
//! same market as a backtest of the same recording, keeps positions within
//! limits, survives a pinning request it cannot honour, and paces by the
//! recorded clock when asked to.

mod common;

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use mmbot::backtest;
use mmbot::config::Config;
use mmbot::hot::advice::{Advice, SpreadState};
use mmbot::hot::strategy::NativeStrategy;
use mmbot::ring::ring;
use mmbot::runtime::{run_paper, RecordingSource, SideInputs};
use mmbot::stats::clock::Clock;

const TIGHT: &str = "[strategy]\ntarget_spread_pct = 0.0\nmin_order_size = \"1\"\nmax_position = \"3\"\n[risk]\nmin_spread_bps = 0.0\n[paper]\nlatency_ms = 1\n";

#[test]
fn threads_see_what_the_backtest_sees_and_stay_within_limits() {
    let Some(files) = common::recordings("threads_see_what_the_backtest_sees_and_stay_within_limits") else { return };
    let config = Config::from_toml(TIGHT, "tight").unwrap();
    for f in &files {
        let one = vec![f.clone()];
        let run = run_paper(
            RecordingSource::new(one.clone(), None),
            one.clone(),
            &config,
            NativeStrategy,
            Arc::new(AtomicBool::new(false)),
            SideInputs::default(),
        );
        let (bt, _) = backtest::run(&one, &config, NativeStrategy, Clock::instant()).unwrap();
        let name = f.display();
        assert_eq!(run.report.input, bt.input, "{name}");
        assert_eq!(run.report.trading.quotes, bt.trading.quotes, "{name}: one quote per depth event either way");
        assert_eq!(run.rings.market_dropped, 0, "{name}");
        let max_abs: f64 = run.report.trading.max_abs_position.parse().unwrap();
        assert!(max_abs <= 3.0, "{name}: position {max_abs} over the limit");
        assert!(run.source_errors.is_empty());
    }
}

#[test]
fn an_impossible_core_is_a_warning_and_speed_paces_the_replay() {
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/sample_spot_btcusdt.rec");
    // The hand-made sample's levels are not sorted: touch-first apply would
    // quote two of its diffs twice (tests/touch_first.rs covers that), so
    // these counts are of the whole-diff path.
    let config = Config::from_toml("[cores]\nhot = 4000\n[book]\ntouch_first = false\n", "t").unwrap();
    let files = vec![sample];
    let speed = 20.0;
    let run = run_paper(
        RecordingSource::new(files.clone(), Some(speed)),
        files.clone(),
        &config,
        NativeStrategy,
        Arc::new(AtomicBool::new(false)),
        SideInputs::default(),
    );
    assert_eq!(run.pinned_core, None);
    assert_eq!(run.report.input.frames, 42);
    assert_eq!(run.report.trading.quotes, 25);
    // The sample spans ~0.9 s of recorded time: at 20x that is >= ~45 ms.
    let text = std::fs::read_to_string(&files[0]).unwrap();
    let ts: Vec<u64> = text.lines().map(|l| l.split(' ').next().unwrap().parse().unwrap()).collect();
    let span_s = (ts.last().unwrap() - ts[0]) as f64 / 1e9;
    assert!(
        run.report.perf.wall_s >= span_s / speed * 0.9,
        "{} s for a {span_s} s recording at {speed}x",
        run.report.perf.wall_s
    );
}

/// Advice handed in from a side thread reaches the strategy (a wide spread
/// moves the bid out), and the hot thread reports status through its ring.
#[test]
fn side_thread_advice_reaches_the_hot_path_and_status_comes_back() {
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/sample_spot_btcusdt.rec");
    let last_bid = |advice: Option<Advice>| {
        let files = vec![sample.clone()];
        let (advice_tx, advice_rx) = ring::<Advice>(4);
        let (status_tx, mut status_rx) = ring(4);
        if let Some(a) = advice {
            advice_tx.push_latest(a);
        }
        let side = SideInputs { advice: Some(advice_rx), status: Some(status_tx), ..SideInputs::default() };
        let stop = Arc::new(AtomicBool::new(false));
        let run = run_paper(
            RecordingSource::new(files.clone(), Some(2.0)),
            files,
            &whole_diff_config(),
            NativeStrategy,
            stop,
            side,
        );
        assert_eq!(run.report.trading.quotes, 25);
        let status = status_rx.latest().expect("at least one status snapshot in ~0.5 s");
        assert!(status.frames > 0 && status.quotes > 0);
        status.last_quote.expect("a quote was made").bid.expect("the native strategy bids when flat").price
    };
    let neutral = last_bid(None);
    let wide = last_bid(Some(Advice { spread: SpreadState::Wide, ..Advice::neutral() }));
    assert!(wide < neutral, "wide-spread advice did not move the bid out: {wide} vs {neutral}");
}

/// Every quote's stage times reach a stats consumer through their ring, and
/// add up: the stages lie inside tick_to_quote.
#[test]
fn latency_samples_reach_the_stats_side() {
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/sample_spot_btcusdt.rec");
    let files = vec![sample];
    let (samples_tx, mut samples_rx) = ring(1024);
    let side = SideInputs { samples: Some(samples_tx), ..SideInputs::default() };
    let run = run_paper(
        RecordingSource::new(files.clone(), None),
        files,
        &whole_diff_config(),
        NativeStrategy,
        Arc::new(AtomicBool::new(false)),
        side,
    );
    let mut n = 0;
    while let Some(s) = samples_rx.pop() {
        n += 1;
        assert!(s.tick_to_quote > 0);
        let parts = s.parse + s.book + s.strategy + s.quote;
        assert!(parts <= s.tick_to_quote + 4, "{s:?}");
    }
    assert_eq!(n, run.report.perf.latency_ns["tick_to_quote"].count);
    assert_eq!(n, 25);
}

/// Defaults, but every diff applied whole before its quote: the hand-made
/// sample's unsorted levels would make touch-first quote two diffs twice.
fn whole_diff_config() -> Config {
    Config::from_toml("[book]\ntouch_first = false\n", "whole").unwrap()
}

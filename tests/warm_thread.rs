//! The warm hot thread (`[feed] poll = "busy"`, `warm_every_us`) changes
//! nothing but timing: a paced, busy-polling run with warming on makes the
//! same quotes from the same books as with it off, and as an unpaced run.
//! No timing is asserted (the machines are shared); every run is bounded by
//! a short recording and a fast pace.

mod common;

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use mmbot::config::Config;
use mmbot::hot::strategy::NativeStrategy;
use mmbot::ring::ring;
use mmbot::runtime::{run_paper, PaperRun, QuoteRecord, RecordingSource, SideInputs};

/// Quotes far from the touch (a 10% spread) so nothing fills: fills reach
/// the hot thread from the exec thread whenever it gets to them, which
/// would make two threaded runs differ for reasons other than warming.
const NO_FILLS: &str = "[strategy]\ntarget_spread_pct = 10.0\n[risk]\nmin_spread_bps = 0.0\nmax_spread_bps = 10000.0\n";

fn config(poll: &str, warm_every_us: Option<u32>) -> Config {
    let warm = warm_every_us.map_or(String::new(), |us| format!("warm_every_us = {us}\n"));
    Config::from_toml(&format!("{NO_FILLS}[feed]\npoll = \"{poll}\"\n{warm}"), "test").unwrap()
}

/// One threaded run; every quote with the book it was made from.
fn run(files: &[PathBuf], speed: Option<f64>, config: &Config) -> (PaperRun, Vec<QuoteRecord>) {
    let (tx, mut rx) = ring::<QuoteRecord>(100_000);
    let side = SideInputs { quotes: Some(tx), ..SideInputs::default() };
    let run = run_paper(
        RecordingSource::new(files.to_vec(), speed),
        files.to_vec(),
        config,
        NativeStrategy,
        Arc::new(AtomicBool::new(false)),
        side,
    );
    let mut quotes = Vec::new();
    while let Some(q) = rx.pop() {
        quotes.push(q);
    }
    (run, quotes)
}

/// What a quote is, leaving out nothing the strategy decided.
fn key(q: &QuoteRecord) -> String {
    format!("{:?} {:?} {:?} {}", q.quote, q.best_bid, q.best_ask, q.synced)
}

fn assert_same_quotes(files: &[PathBuf], speed: f64) {
    let name = files[0].display().to_string();
    let (off, off_quotes) = run(files, Some(speed), &config("busy", Some(0)));
    let (on, on_quotes) = run(files, Some(speed), &config("busy", Some(1)));
    let (fast, fast_quotes) = run(files, None, &config("poll", None));
    assert!(!off_quotes.is_empty(), "{name}: no quotes to compare");
    for r in [&off, &on, &fast] {
        assert_eq!(r.report.trading.fills, 0, "{name}: the comparison needs a run without fills");
        assert_eq!(r.rings.market_dropped, 0, "{name}");
        assert!(r.source_errors.is_empty(), "{name}: {:?}", r.source_errors);
    }
    assert_eq!(off.warms, 0, "{name}: warm_every_us = 0 is off");
    assert!(on.warms > 0, "{name}: a paced busy run with warming on warmed in the gaps");
    assert_eq!(fast.warms, 0, "{name}: an unpaced run is never idle");
    let keys = |qs: &[QuoteRecord]| qs.iter().map(key).collect::<Vec<_>>();
    assert_eq!(keys(&on_quotes), keys(&off_quotes), "{name}: warming changed the quotes");
    assert_eq!(keys(&off_quotes), keys(&fast_quotes), "{name}: pacing changed the quotes");
    assert_eq!(on.report.input, off.report.input, "{name}");
    assert_eq!(on.report.trading.quotes, off.report.trading.quotes, "{name}");
    assert_eq!(on.books, off.books, "{name}: the books ended differently");
}

#[test]
fn warming_a_busy_paced_run_changes_no_quote() {
    // ~0.9 s of recorded time at 20x: ~45 ms per run.
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/sample_spot_btcusdt.rec");
    assert_same_quotes(&[sample], 20.0);
}

#[test]
fn warming_a_busy_paced_run_of_real_captures_changes_no_quote() {
    let Some(files) = common::recordings("warming_a_busy_paced_run_of_real_captures_changes_no_quote") else {
        return;
    };
    // ~30 s of recorded time each at 300x: ~0.1 s per run.
    for f in files.iter().filter(|f| f.to_string_lossy().contains("nknusdt") || f.to_string_lossy().contains("sushi")) {
        assert_same_quotes(std::slice::from_ref(f), 300.0);
    }
}

#[test]
fn a_limited_replay_stops_after_its_recorded_seconds() {
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/sample_spot_btcusdt.rec");
    let files = vec![sample];
    let cfg = config("busy", None);
    let whole = run(&files, Some(20.0), &cfg).0;
    let part = run_paper(
        RecordingSource::new(files.clone(), Some(20.0)).limited_to(Some(0.3)),
        files.clone(),
        &cfg,
        NativeStrategy,
        Arc::new(AtomicBool::new(false)),
        SideInputs::default(),
    );
    assert!(part.report.input.frames > 0 && part.report.input.frames < whole.report.input.frames);
}

//! `mmbot sweep` and the research pieces behind it: a sweep's results are
//! exactly the single backtests of its points, whatever the worker count;
//! the event cache is rebuilt when its recording changes; `--param` errors
//! name the parameter; walk-forward windows cut a synthetic recording where
//! they should and trade only inside them.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use mmbot::backtest::{self, run_observed};
use mmbot::config::{load_with_params, Config};
use mmbot::hot::strategy::NativeStrategy;
use mmbot::research::cache::{CacheOptions, CacheOrigin, EventCache};
use mmbot::research::grid::{expand, Axis, Point};
use mmbot::research::sweep::{self, Job, Metric, TradeFrom};
use mmbot::research::walk_forward::{self, WindowSpec};
use mmbot::script::ScriptStrategy;
use mmbot::stats::clock::Clock;

/// Quotes at the touch with small sizes and no fee: fills in short captures,
/// and the synthetic tape's spread is earned.
const TIGHT: [&str; 6] = [
    "strategy.min_order_size=\"1\"",
    "strategy.max_position=\"3\"",
    "risk.min_spread_bps=0",
    "risk.stale_after_ms=5000",
    "paper.latency_ms=1",
    "paper.maker_fee=0",
];

fn tight() -> Vec<String> {
    TIGHT.iter().map(|s| s.to_string()).collect()
}

fn sample() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/sample_spot_btcusdt.rec")
}

fn grid() -> Vec<Point> {
    let axes =
        [Axis::parse("strategy.target_spread_pct=0,0.05").unwrap(), Axis::parse("paper.latency_ms=1,20").unwrap()];
    expand(&axes, &[])
}

fn memory_cache(files: &[PathBuf]) -> EventCache {
    EventCache::load(files, &CacheOptions { dir: None, memory_only: true }).unwrap()
}

fn whole_jobs(cache: &EventCache, n: usize) -> Vec<Job> {
    let lines = Arc::new(cache.parts());
    (0..n).map(|point| Job { point, lines: lines.clone(), trade_from_ns: None }).collect()
}

/// Every capture beside the project (when present) plus the one in tests/data.
fn inputs() -> Vec<Vec<PathBuf>> {
    let mut all = vec![vec![sample()]];
    if let Some(files) = common::recordings("sweep_results_are_the_single_backtests") {
        all.extend(files.iter().map(|f| vec![f.clone()]));
        // Several files as one stream, too.
        all.push(files.iter().filter(|f| f.to_string_lossy().contains("spot_")).cloned().collect());
    }
    all
}

#[test]
fn sweep_results_are_the_single_backtests_of_their_points() {
    let points = grid();
    for files in inputs() {
        let setups = sweep::prepare(None, &tight(), &points).unwrap();
        let cache = memory_cache(&files);
        let results =
            sweep::run_all(&whole_jobs(&cache, points.len()), &setups, &files, 2, Clock::instant(), &mut |_, _| {});
        for (p, r) in points.iter().zip(&results) {
            let mut params = tight();
            params.extend(p.param_args());
            let config = load_with_params(None, &params).unwrap();
            let single = backtest::run(&files, &config, NativeStrategy, Clock::instant());
            let name = format!("{files:?} {}", p.label());
            match (single, r) {
                (Ok((single, _)), Ok(o)) => {
                    assert_eq!(o.report.input, single.input, "{name}");
                    assert_eq!(o.report.trading, single.trading, "{name}");
                    assert_eq!(o.metrics.pnl, single.trading.pnl.parse::<f64>().unwrap(), "{name}");
                }
                // A capture with nothing to trade fails the same way in both.
                (Err(e), Err(s)) => assert_eq!(e.to_string(), *s, "{name}"),
                (a, b) => panic!("{name}: single {:?} vs sweep {:?}", a.map(|r| r.0.trading), b.as_ref().err()),
            }
        }
    }
}

#[test]
fn a_script_point_matches_the_script_backtest() {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/inventory_skew.rhai");
    let points = expand(&[Axis::parse("skew_bps=0,25").unwrap()], std::slice::from_ref(&script));
    let files = vec![sample()];
    let setups = sweep::prepare(None, &tight(), &points).unwrap();
    let cache = memory_cache(&files);
    let results =
        sweep::run_all(&whole_jobs(&cache, points.len()), &setups, &files, 2, Clock::instant(), &mut |_, _| {});
    for (p, r) in points.iter().zip(&results) {
        let mut params = tight();
        params.extend(p.param_args());
        let config = load_with_params(None, &params).unwrap();
        let s = ScriptStrategy::from_file(&script, &config.params, &config.script_limits).unwrap();
        let (single, _) = backtest::run(&files, &config, s, Clock::instant()).unwrap();
        let o = r.as_ref().unwrap();
        assert_eq!(o.report.trading, single.trading, "{}", p.label());
    }
}

#[test]
fn one_worker_and_two_give_the_same_results() {
    let files = vec![sample()];
    let axes = [
        Axis::parse("strategy.target_spread_pct=0,0.01,0.05").unwrap(),
        Axis::parse("paper.latency_ms=1,5,20").unwrap(),
    ];
    let points = expand(&axes, &[]);
    let setups = sweep::prepare(None, &tight(), &points).unwrap();
    let cache = memory_cache(&files);
    let jobs = whole_jobs(&cache, points.len());
    let run = |w: usize| sweep::run_all(&jobs, &setups, &files, w, Clock::instant(), &mut |_, _| {});
    let (one, two) = (run(1), run(2));
    assert_eq!(one.len(), points.len());
    for (a, b) in one.iter().zip(&two) {
        let (a, b) = (a.as_ref().unwrap(), b.as_ref().unwrap());
        assert_eq!((&a.report.input, &a.report.trading), (&b.report.input, &b.report.trading));
        assert_eq!(a.metrics, b.metrics);
    }
}

#[test]
fn the_cache_is_rebuilt_when_the_recording_changes() {
    let dir = common::temp_dir("sweep-cache");
    let rec = dir.join("copy.rec");
    let text = std::fs::read(sample()).unwrap();
    std::fs::write(&rec, &text).unwrap();
    let opts = CacheOptions { dir: Some(dir.join("cache")), memory_only: false };
    let load = || EventCache::load(std::slice::from_ref(&rec), &opts).unwrap().recordings.remove(0);
    let first = load();
    assert!(matches!(first.origin, CacheOrigin::Built(_)), "{:?}", first.origin);
    assert_eq!(&*first.lines, &text[..]);
    let second = load();
    assert!(matches!(second.origin, CacheOrigin::Hit(_)), "{:?}", second.origin);
    // One line fewer: a new hash, a new cache.
    let shorter: Vec<u8> = text.split_inclusive(|&b| b == b'\n').skip(1).flatten().copied().collect();
    std::fs::write(&rec, &shorter).unwrap();
    let third = load();
    assert!(matches!(third.origin, CacheOrigin::Built(_)), "{:?}", third.origin);
    assert_eq!(&*third.lines, &shorter[..]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn param_errors_say_which_param_and_what_is_allowed() {
    let e = load_with_params(None, &["paper.latency_ms=-5".into()]).unwrap_err().to_string();
    assert_eq!(
        e,
        "--param paper.latency_ms=-5: config key `paper.latency_ms` = -5 is invalid: must be a number from 0 to 60000"
    );
    let e = load_with_params(None, &["gamma=fast".into()]).unwrap_err().to_string();
    assert!(e.contains("strategy parameter `gamma` must be a number"), "{e}");
    // The same through `mmbot sweep`, before any backtest runs.
    let o = Command::new(env!("CARGO_BIN_EXE_mmbot"))
        .args(["sweep", sample().to_str().unwrap(), "--grid", "paper.latency_ms=5,-5", "--no-cache", "--out"])
        .arg(common::temp_dir("sweep-bad-param"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(
        stderr.contains(
            "point 1 (paper.latency_ms=-5): --param paper.latency_ms=-5: config key `paper.latency_ms` = -5 is invalid"
        ),
        "{stderr}"
    );
}

#[test]
fn cli_writes_csv_json_and_a_heatmap_for_two_parameters() {
    let dir = common::temp_dir("sweep-cli");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mmbot"));
    cmd.args(["sweep", sample().to_str().unwrap(), "--workers", "2", "--no-cache", "--out", dir.to_str().unwrap()]);
    cmd.args(["--grid", "strategy.target_spread_pct=0,0.05", "--grid", "paper.latency_ms=1,20"]);
    for p in TIGHT {
        cmd.args(["--param", p]);
    }
    let o = cmd.output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let csv = std::fs::read_to_string(dir.join("sweep.csv")).unwrap();
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows.len(), 5, "{csv}");
    assert!(rows[0].starts_with("point,strategy.target_spread_pct,paper.latency_ms,script,pnl,fees,fills,orders"));
    assert!(rows[4].starts_with("3,0.05,20,,"), "{}", rows[4]);
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("sweep.json")).unwrap()).unwrap();
    let points = json["points"].as_array().unwrap();
    assert_eq!(points.len(), 4);
    assert_eq!(points[1]["params"]["paper.latency_ms"], "20");
    assert_eq!(points[1]["report"]["input"]["frames"], 42);
    assert!(points[1]["report"]["trading"]["pnl"].is_string());
    assert_eq!(json["sweep"]["workers"], 2);
    let svg = std::fs::read_to_string(dir.join("heatmap_pnl.svg")).unwrap();
    assert!(
        svg.contains(">strategy.target_spread_pct<") && svg.contains(">paper.latency_ms<") && svg.contains("4 points")
    );
    let _ = std::fs::remove_dir_all(&dir);
}

const T0: u64 = 1_700_000_000_000_000_000;
const SEC: u64 = 1_000_000_000;

/// `minutes` of a quiet spot book (bid 100.00, ask 100.10), a diff every
/// 500 ms, and every 2 s a trade that alternately sells into the bid and
/// buys at the ask: a maker at the touch fills both ways.
fn synthetic_recording(minutes: u64) -> String {
    let mut s = String::new();
    let diff = |ts: u64, id: u64, qty: &str| {
        format!(
            "{ts} {{\"stream\":\"btcusdt@depth@100ms\",\"data\":{{\"e\":\"depthUpdate\",\"E\":{},\"s\":\"BTCUSDT\",\"U\":{id},\"u\":{id},\"b\":[[\"100.00000000\",\"{qty}\"]],\"a\":[[\"100.10000000\",\"{qty}\"]]}}}}\n",
            ts / 1_000_000
        )
    };
    s.push_str(&diff(T0, 100, "5.00000000"));
    s.push_str(&format!(
        "{} {{\"lastUpdateId\":100,\"bids\":[[\"100.00000000\",\"5.00000000\"]],\"asks\":[[\"100.10000000\",\"5.00000000\"]]}}\n",
        T0 + 1_000_000
    ));
    let steps = minutes * 120;
    for i in 1..=steps {
        let ts = T0 + i * SEC / 2;
        s.push_str(&diff(ts, 100 + i, if i % 2 == 0 { "5.00000000" } else { "6.00000000" }));
        if i % 4 == 0 {
            let (price, buyer_maker) = if i % 8 == 0 { ("100.00000000", true) } else { ("100.10000000", false) };
            s.push_str(&format!(
                "{} {{\"stream\":\"btcusdt@trade\",\"data\":{{\"e\":\"trade\",\"E\":{},\"s\":\"BTCUSDT\",\"t\":{i},\"p\":\"{price}\",\"q\":\"20.00000000\",\"T\":{},\"m\":{buyer_maker}}}}}\n",
                ts + 1000,
                ts / 1_000_000,
                ts / 1_000_000
            ));
        }
    }
    s
}

#[test]
fn walk_forward_windows_cut_a_synthetic_recording_and_trade_only_inside() {
    let dir = common::temp_dir("sweep-walk");
    let rec = dir.join("synthetic.rec");
    std::fs::write(&rec, synthetic_recording(8)).unwrap();
    let files = vec![rec.clone()];
    let cache = memory_cache(&files);
    let parts = cache.parts();
    let range = walk_forward::time_range(&parts).unwrap();
    assert_eq!(range.start, T0 as i64);
    assert_eq!(range.end, (T0 + 8 * 60 * SEC + 1000) as i64 + 1);
    let spec = WindowSpec::Durations { train_ns: 120 * SEC as i64, test_ns: 60 * SEC as i64 };
    let windows = walk_forward::split(range.clone(), spec).unwrap();
    assert_eq!(windows.len(), 6);
    for (k, w) in windows.iter().enumerate() {
        let start = T0 as i64 + k as i64 * 60 * SEC as i64;
        assert_eq!(
            (w.train.start, w.train.end, w.test.start),
            (start, start + 120 * SEC as i64, start + 120 * SEC as i64)
        );
    }
    assert_eq!(windows[5].test.end, (T0 + 480 * SEC) as i64);

    // The lines of a window end before its end; quoting starts at its start.
    let w = &windows[1];
    let lines = walk_forward::lines_before(&parts, w.test.end);
    let last = lines.last().unwrap();
    let text = std::str::from_utf8(&last.data[last.range.clone()]).unwrap();
    let last_ts: i64 = text.lines().last().unwrap().split(' ').next().unwrap().parse().unwrap();
    assert!(last_ts < w.test.end && last_ts >= w.test.end - SEC as i64, "{last_ts}");
    let mut config = load_with_params(None, &tight()).unwrap();
    config.hot.params.target_spread_pct = 0.0;
    let mut seen = Vec::new();
    let gated = TradeFrom { inner: NativeStrategy, from_ns: w.test.start };
    let (report, _) = run_observed(&files, &config, gated, Clock::instant(), &mut |q| seen.push(*q)).unwrap();
    assert!(report.trading.fills > 0, "the touch should fill on the synthetic tape");
    assert!(seen.iter().filter(|q| q.quote.time_ns < w.test.start).all(|q| q.quote.is_pulled()));
    assert!(seen.iter().any(|q| q.quote.time_ns >= w.test.start && !q.quote.is_pulled()));

    // The whole walk-forward through the command line.
    let out = dir.join("out");
    let o = Command::new(env!("CARGO_BIN_EXE_mmbot"))
        .args(["sweep", rec.to_str().unwrap(), "--no-cache", "--workers", "2", "--out", out.to_str().unwrap()])
        .args(["--grid", "strategy.target_spread_pct=0,1", "--walk-forward", "--train", "2m", "--test", "1m"])
        .args(TIGHT.iter().flat_map(|p| ["--param", p]))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}\n{}", stdout, String::from_utf8_lossy(&o.stderr));
    assert!(stdout.contains("out of sample over 6 windows"), "{stdout}");
    let csv = std::fs::read_to_string(out.join("walk_forward.csv")).unwrap();
    assert_eq!(csv.lines().count(), 7, "{csv}");
    // At the touch fills and earns the spread; 1% away never fills: the
    // touch is chosen on every training window.
    for row in csv.lines().skip(1) {
        assert!(row.contains(",0,strategy.target_spread_pct=0,"), "{row}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--metric sharpe` ranks by the Sharpe estimate and says so.
#[test]
fn the_metric_is_named_in_the_outputs() {
    let files = vec![sample()];
    let points = grid();
    let setups = sweep::prepare(None, &tight(), &points).unwrap();
    let cache = memory_cache(&files);
    let results =
        sweep::run_all(&whole_jobs(&cache, points.len()), &setups, &files, 1, Clock::instant(), &mut |_, _| {});
    for r in &results {
        let m = &r.as_ref().unwrap().metrics;
        assert_eq!(m.get(Metric::Pnl), m.pnl);
        assert_eq!(m.get(Metric::Sharpe), m.sharpe);
        assert!(m.sharpe.is_finite());
    }
    assert_eq!(Config::default().paper.entry_latency_ns, load_with_params(None, &[]).unwrap().paper.entry_latency_ns);
}

/// `mmbot bench` reads several files as one stream, like `mmbot book`.
#[test]
fn bench_takes_several_files_as_one_stream() {
    let o = Command::new(env!("CARGO_BIN_EXE_mmbot"))
        .args(["bench", sample().to_str().unwrap(), sample().to_str().unwrap(), "--json"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["frames"], 84, "two 42-frame files");
    assert!(v["input"].as_str().unwrap().contains(" + "), "{}", v["input"]);
}

//! The research outputs of a backtest (`fills.csv`, `timeline.csv`, the
//! stats in `report.json`, `equity.svg`): statistics and markouts against
//! hand computations on a made-up run, file shapes and row counts on real
//! recordings, and `mmbot backtest --out` end to end.

mod common;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use mmbot::backtest::outputs::{fills, timeline, Research, ResearchConfig, Stats};
use mmbot::backtest::{run_with, FillRecord, MarketSample, RunObserver};
use mmbot::config::Config;
use mmbot::exec::position::Position;
use mmbot::exec::{FeeAsset, Fill, Side};
use mmbot::hot::fixed::{Price, Qty, SCALE};
use mmbot::hot::msg::{Level, Symbol};
use mmbot::hot::strategy::NativeStrategy;
use mmbot::stats::clock::Clock;

const S: i64 = 1_000_000_000;

fn px(v: f64) -> i64 {
    (v * SCALE as f64).round() as i64
}

fn book(r: &mut Research, t: i64, bid: f64, ask: f64, position: f64) {
    let state = Position::new();
    r.on_book(&MarketSample {
        time_ns: t,
        best_bid: Some(Level::new(px(bid), SCALE)),
        best_ask: Some(Level::new(px(ask), SCALE)),
        own_bid: None,
        own_ask: None,
        position: Qty(px(position)),
        position_state: &state,
    });
}

fn fill(r: &mut Research, t: i64, order_id: u64, side: Side, price: f64, fee: f64, position_after: f64) {
    let f = Fill {
        symbol: Symbol::new(b"TESTUSDT"),
        order_id,
        side,
        price: Price(px(price)),
        qty: Qty(SCALE),
        fee: px(fee),
        fee_asset: FeeAsset::Quote,
        time_ns: t,
        maker: true,
    };
    r.on_fill(&FillRecord { fill: f, meta: None, position_after: Qty(px(position_after)) });
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9 * (1.0 + b.abs())
}

/// One unit bought at 99 and sold at 99, 0.01 fee each, the mid moving
/// 100 -> 102 -> 98 -> 100; max_position 1, so the capital base is 100.
fn made_up_run() -> Stats {
    let cfg = ResearchConfig { timeline_ns: S, max_position: Qty(SCALE) };
    let mut r = Research::new(cfg);
    book(&mut r, 0, 99.0, 101.0, 0.0); // mid 100
    fill(&mut r, 10 * S, 1, Side::Buy, 99.0, 0.01, 1.0); // equity 100 - 99 - 0.01 = 0.99
    book(&mut r, 30 * S, 101.0, 103.0, 1.0); // mid 102: equity 2.99
    book(&mut r, 70 * S, 97.0, 99.0, 1.0); // mid 98: equity -1.01
    fill(&mut r, 100 * S, 2, Side::Sell, 99.0, 0.01, 0.0); // flat: equity -0.02
    book(&mut r, 130 * S, 99.0, 101.0, 0.0); // mid 100
    book(&mut r, 190 * S, 99.0, 101.0, 0.0); // end
    r.stats(4, 0)
}

#[test]
fn stats_on_a_made_up_run_match_the_hand_computation() {
    let s = made_up_run();
    assert_eq!(s.capital_base, 100.0);
    assert!(close(s.pnl_net, -0.02) && close(s.pnl_gross, 0.0) && close(s.fees, 0.02), "{s:?}");
    assert_eq!((s.fills, s.orders, s.filled_orders), (2, 4, 2));
    assert_eq!((s.fill_ratio, s.order_to_fill), (Some(0.5), Some(2.0)));
    assert!(close(s.return_per_trade.unwrap(), -0.01));
    // Volume 99 + 99 = 198: -0.02 / 198 x 1e4 bps.
    assert!(close(s.return_per_trade_bps.unwrap(), -0.02 / 198.0 * 1e4));

    // Equity in force at 60 s, 120 s, 180 s: 2.99, -0.02, -0.02 (from 0):
    // per-minute returns 0.0299, -0.0301, 0 (on base 100).
    assert_eq!(s.minutes, 3);
    let r = [0.0299, -0.0301, 0.0];
    let mean: f64 = (0.0299 - 0.0301 + 0.0) / 3.0;
    let var = ((0.0299 - mean) * (0.0299 - mean) + (-0.0301 - mean) * (-0.0301 - mean) + mean * mean) / 2.0;
    let down = (0.0301f64 * 0.0301 / 3.0).sqrt();
    let ann = 525_600f64.sqrt();
    assert!(close(s.sharpe.unwrap(), mean / var.sqrt() * ann), "{:?} for {r:?}", s.sharpe);
    assert!(close(s.sortino.unwrap(), mean / down * ann), "{:?}", s.sortino);
    assert!(close(s.pnl_per_minute_mean.unwrap(), mean * 100.0));

    // Peak 2.99 at 30 s, trough -1.01 at 70 s.
    assert!(close(s.max_drawdown, 4.0));
    assert!(close(s.max_drawdown_pct.unwrap(), 4.0 / 102.99 * 100.0));

    // Long 1 from 10 s to 100 s of 190 s, at the limit of 1 all that time.
    assert!(close(s.inventory_mean, 90.0 / 190.0) && close(s.inventory_abs_mean, 90.0 / 190.0));
    assert!(close(s.time_at_limit, 90.0 / 190.0));
    assert_eq!((s.inventory_max, s.max_position, s.duration_s), (1.0, 1.0, 190.0));

    // Rows: book events due at 0, 30, 70, 130, 190 s plus the 2 fills.
    assert_eq!(s.timeline_samples, 7);
    assert_eq!(s.rejected_post_only, 0);
    assert!(s.method.contains("sqrt(525600)") && s.method.contains("max_position x first mid"));
}

#[test]
fn markouts_on_a_made_up_run_match_the_hand_computation() {
    let s = made_up_run();
    let [m1, m10, m60] = [&s.markouts[0], &s.markouts[1], &s.markouts[2]];
    assert_eq!((m1.horizon_s, m10.horizon_s, m60.horizon_s), (1.0, 10.0, 60.0));
    // 1 s and 10 s: the buy at 99 sees mid 100 (+1), the sell at 99 sees
    // mid 98 (+1); the mid did not move from the fill (0).
    for m in [m1, m10] {
        assert_eq!(m.fills, 2);
        assert!(close(m.per_unit.unwrap(), 1.0));
        assert!(close(m.bps.unwrap(), 1.0 / 99.0 * 1e4));
        assert!(close(m.mid_move_per_unit.unwrap(), 0.0));
    }
    // 60 s: the buy's horizon (70 s) is exactly when the mid became 98
    // (98 - 99 = -1); the sell's (160 s) sees 100 (-(100 - 99) = -1).
    // Mid moves: 98 - 100 = -2 and -(100 - 98) = -2.
    assert_eq!(m60.fills, 2);
    assert!(close(m60.per_unit.unwrap(), -1.0));
    assert!(close(m60.mid_move_per_unit.unwrap(), -2.0));
    assert!(close(m60.mid_move_bps.unwrap(), -2.0 / 99.0 * 1e4));
}

/// A CSV file's header and its data rows, each checked to have as many
/// fields as the header.
fn read_csv(path: &Path) -> (String, Vec<Vec<String>>) {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let mut lines = text.lines();
    let header = lines.next().expect("a header").to_string();
    let n = header.split(',').count();
    let rows: Vec<Vec<String>> = lines.map(|l| l.split(',').map(str::to_string).collect()).collect();
    for r in &rows {
        assert_eq!(r.len(), n, "{}: row {r:?} against header {header}", path.display());
    }
    (header, rows)
}

/// Book event times and fill count of a run, seen by a second observer.
#[derive(Default)]
struct Seen {
    book_times: Vec<i64>,
    fills: u64,
}

impl RunObserver for Seen {
    fn on_fill(&mut self, _f: &FillRecord) {
        self.fills += 1;
    }
    fn on_book(&mut self, s: &MarketSample<'_>) {
        self.book_times.push(s.time_ns);
    }
}

/// Runs `files` with [`Research`] writing into a fresh folder and checks the
/// CSVs against what a plain observer saw; returns the stats.
fn check_files(name: &str, files: &[PathBuf], config: &Config, timeline_ms: u64) -> Stats {
    let dir = common::temp_dir(name);
    let mut research = Research::with_files(ResearchConfig::from_config(config, timeline_ms), &dir).unwrap();
    let (report, _) = run_with(files, config, NativeStrategy, Clock::instant(), &mut research).unwrap();
    let stats = research.stats(report.trading.orders, 0);
    research.close().unwrap();
    let mut seen = Seen::default();
    run_with(files, config, NativeStrategy, Clock::instant(), &mut seen).unwrap();

    let (header, fill_rows) = read_csv(&dir.join("fills.csv"));
    assert_eq!(header, fills::HEADER);
    assert_eq!(fill_rows.len() as u64, report.trading.fills, "{name}: one row per fill");
    assert_eq!(seen.fills, report.trading.fills);
    let (header, rows) = read_csv(&dir.join("timeline.csv"));
    assert_eq!(header, timeline::HEADER);
    // One row in each N ms interval that has a book event, plus one per fill.
    let n = timeline_ms as i64 * 1_000_000;
    let intervals: HashSet<i64> = seen.book_times.iter().map(|t| t.div_euclid(n)).collect();
    let samples = rows.iter().filter(|r| r[2] == "sample").count();
    assert_eq!(samples, intervals.len(), "{name}");
    assert_eq!(rows.iter().filter(|r| r[2] == "fill").count() as u64, report.trading.fills);
    assert_eq!(stats.timeline_samples, rows.len() as u64);
    assert_eq!(stats.fills, report.trading.fills);
    // The stats' PnL is the report's, to the float.
    let pnl: f64 = report.trading.pnl.parse().unwrap();
    assert!(close(stats.pnl_net, pnl), "{name}: {} vs {pnl}", stats.pnl_net);
    let _ = std::fs::remove_dir_all(&dir);
    stats
}

#[test]
fn csv_headers_and_row_counts_on_the_sample_recording() {
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/sample_spot_btcusdt.rec");
    // 100 ms: several rows over the sample's second of book events.
    let s = check_files("outputs-sample", &[sample], &Config::default(), 100);
    assert!(s.timeline_samples > 1, "{s:?}");
}

/// Quotes at the touch with little latency: fills on the busy capture.
const TIGHT: &str = "
[strategy]
target_spread_pct = 0.0
min_order_size = \"1\"
max_position = \"3\"
[risk]
min_spread_bps = 0.0
[paper]
latency_ms = 1
";

#[test]
fn fills_and_timeline_rows_on_a_busy_capture() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/busy/usdm_ethusdt_20240808.gz");
    if !file.exists() {
        common::skip(format_args!(
            "fills_and_timeline_rows_on_a_busy_capture: {} is absent (real captures live in ../shared/data)",
            file.display()
        ));
        return;
    }
    let config = Config::from_toml(TIGHT, "tight").unwrap();
    let s = check_files("outputs-busy", &[file], &config, 1000);
    assert!(s.fills > 0 && s.minutes >= 2, "{s:?}");
    assert!(s.sharpe.is_some() && s.max_drawdown > 0.0);
    assert!(s.markouts.iter().all(|m| m.fills > 0 && m.bps.is_some()));
    assert!(s.inventory_max <= 3.0 && s.time_at_limit > 0.0);
}

#[test]
fn cli_out_writes_report_csvs_and_the_plot() {
    let dir = common::temp_dir("outputs-cli").join("run"); // created by the CLI
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/sample_spot_btcusdt.rec");
    let o = Command::new(env!("CARGO_BIN_EXE_mmbot"))
        .args(["backtest", sample.to_str().unwrap(), "--out", dir.to_str().unwrap(), "--timeline-ms", "100"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    assert!(o.stdout.is_empty(), "the report goes to the folder, not stdout");
    assert!(stderr.contains("stats: pnl net") && stderr.contains("sharpe"), "{stderr}");
    assert!(stderr.contains("equity.svg") && stderr.contains("fills.csv"), "where files went: {stderr}");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).unwrap()).unwrap();
    let st = &v["stats"];
    for key in ["pnl_net", "pnl_gross", "fees", "max_drawdown", "inventory_mean", "time_at_limit", "capital_base"] {
        assert!(st[key].is_f64(), "stats.{key}: {st}");
    }
    assert!(st["method"].as_str().unwrap().contains("525600"));
    assert_eq!(st["markouts"].as_array().unwrap().len(), 3);
    assert_eq!(st["rejected_post_only"], 0);
    assert!(dir.join("report.tick_to_quote.hgrm").exists());
    let (_, rows) = read_csv(&dir.join("timeline.csv"));
    assert_eq!(st["timeline_samples"], rows.len() as u64);
    let svg = std::fs::read_to_string(dir.join("equity.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    // XML-ish: every opened element closes (self-closing or with its tag).
    let (lt, end_tags, self_closed) = (svg.matches('<').count(), svg.matches("</").count(), svg.matches("/>").count());
    assert_eq!(lt, 2 * end_tags + self_closed, "every element closes");
    for t in ["price (quote per base)", "position (base)", "equity (quote, net of fees)", "time since start (s)"] {
        assert!(svg.contains(t), "axis title {t}");
    }
    assert!(svg.contains(&format!("{} timeline samples", rows.len())), "sample count in the caption");
    assert!(!svg.contains("<script") && !svg.contains("@font-face") && !svg.contains("href="));
    let _ = std::fs::remove_dir_all(dir.parent().unwrap());
}

#[test]
fn cli_report_alone_keeps_working_and_carries_the_stats() {
    let dir = common::temp_dir("outputs-cli-report");
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/sample_spot_btcusdt.rec");
    let report = dir.join("r.json");
    let o = Command::new(env!("CARGO_BIN_EXE_mmbot"))
        .args(["backtest", sample.to_str().unwrap(), "--report", report.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(v["input"]["frames"], 42);
    assert!(v["stats"]["method"].is_string());
    assert!(dir.join("r.tick_to_quote.hgrm").exists() && !dir.join("fills.csv").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

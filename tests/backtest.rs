//! Backtests over the real captures: deterministic, never quoting from a bad
//! book or through it, positions within limits, and fills when quotes are
//! tight enough to be hit. Plus `mmbot backtest` end to end.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use mmbot::backtest::{run_observed, QuoteSeen, Report};
use mmbot::config::Config;
use mmbot::hot::fixed::Qty;
use mmbot::hot::strategy::NativeStrategy;
use mmbot::stats::clock::Clock;

/// Quotes at the touch, small sizes, little latency: enough to be filled in
/// 30-second captures.
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

fn backtest(files: &[PathBuf], config: &Config) -> (Report, Vec<QuoteSeen>) {
    let mut seen = Vec::new();
    let (report, _) =
        run_observed(files, config, NativeStrategy, Clock::instant(), &mut |q| seen.push(*q)).expect("backtest runs");
    (report, seen)
}

fn check_quotes(name: &str, seen: &[QuoteSeen], max_position: Qty) {
    for s in seen {
        let q = &s.quote;
        assert!(s.position.0.abs() <= max_position.0, "{name}: position {} over the limit", s.position);
        if q.is_pulled() {
            continue;
        }
        assert!(s.synced, "{name}: quoted from an unsynced book at u={}", q.update_id);
        let (bb, ba) = (s.best_bid.unwrap().price, s.best_ask.unwrap().price);
        if let Some(b) = q.bid {
            assert!(b.price < ba, "{name}: bid {} at or through best ask {}", b.price, ba);
        }
        if let Some(a) = q.ask {
            assert!(a.price > bb, "{name}: ask {} at or through best bid {}", a.price, bb);
        }
        if let (Some(b), Some(a)) = (q.bid, q.ask) {
            assert!(b.price < a.price, "{name}: crossed quote");
        }
    }
}

#[test]
fn every_capture_backtests_sanely_and_deterministically() {
    let Some(files) = common::recordings("every_capture_backtests_sanely_and_deterministically") else { return };
    let config = Config::from_toml(TIGHT, "tight").unwrap();
    let mut fills = 0;
    for f in &files {
        let name = f.display().to_string();
        let one = std::slice::from_ref(f);
        let (a, seen) = backtest(one, &config);
        let (b, _) = backtest(one, &config);
        assert_eq!(a.input, b.input, "{name}: input differs between runs");
        assert_eq!(a.trading, b.trading, "{name}: trading differs between runs");
        assert_eq!((a.input.rejected, a.input.gaps), (0, 0), "{name}");
        assert!(a.trading.quotes > 0, "{name}: no quotes");
        assert_eq!(a.trading.quotes as usize, seen.len());
        check_quotes(&name, &seen, config.hot.params.max_position);
        fills += a.trading.fills;
        let tick_to_quote = &a.perf.latency_ns["tick_to_quote"];
        assert!(tick_to_quote.count > 0 && tick_to_quote.p50 > 0, "{name}: no latency recorded");
    }
    assert!(fills > 0, "quotes at the touch were never filled across all captures");
}

#[test]
fn default_config_quotes_outside_the_touch_on_every_capture() {
    let Some(files) = common::recordings("default_config_quotes_outside_the_touch_on_every_capture") else { return };
    let config = Config::default();
    for f in &files {
        let (r, seen) = backtest(std::slice::from_ref(f), &config);
        check_quotes(&f.display().to_string(), &seen, config.hot.params.max_position);
        assert_eq!(r.trading.strategy, "native");
    }
}

#[test]
fn cli_writes_the_report_and_one_hgrm_per_stage() {
    let dir = common::temp_dir("backtest-cli");
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/sample_spot_btcusdt.rec");
    let report = dir.join("run.json");
    let o = Command::new(env!("CARGO_BIN_EXE_mmbot"))
        .args(["backtest", sample.to_str().unwrap(), "--report", report.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(v["input"]["frames"], 42);
    assert_eq!(v["trading"]["symbol"], "BTCUSDT");
    assert!(v["trading"]["quotes"].as_u64().unwrap() > 0);
    for key in ["volume", "position", "max_abs_position", "pnl", "fees"] {
        assert!(v["trading"][key].is_string(), "{key}");
    }
    for stage in ["tick_to_quote", "parse", "book", "strategy", "quote"] {
        let s = &v["perf"]["latency_ns"][stage];
        for k in ["count", "p50", "p90", "p99", "p999", "max"] {
            assert!(s[k].is_u64(), "{stage}.{k}");
        }
        let hgrm = std::fs::read_to_string(dir.join(format!("run.{stage}.hgrm"))).unwrap();
        assert!(hgrm.contains("Percentile") && hgrm.contains("#[Max"), "{stage}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Backtests use the offline advisor by default (labelled so in the report),
/// and its advice moves the quotes; `provider = "none"` keeps advice neutral.
#[test]
fn offline_advice_reaches_the_quotes_in_backtests() {
    let Some(files) = common::recordings("offline_advice_reaches_the_quotes_in_backtests") else { return };
    let one = vec![files.iter().find(|p| p.ends_with("usdm_sushiusdt.gz")).unwrap().clone()];
    let (with, seen_with) = backtest(&one, &Config::default());
    let (without, seen_without) = backtest(&one, &Config::from_toml("[ai]\nprovider = \"none\"\n", "t").unwrap());
    assert_eq!((with.trading.advice.as_str(), without.trading.advice.as_str()), ("offline", "none"));
    assert!(with.trading.advice_updates >= 5, "{}", with.trading.advice_updates);
    assert_eq!(without.trading.advice_updates, 0);
    assert_eq!(seen_with.len(), seen_without.len());
    assert!(seen_with.iter().zip(&seen_without).any(|(a, b)| a.quote != b.quote), "advice never changed a quote");
}

/// Depth stops but trades keep coming: the quotes are pulled as of the
/// moment the book went stale, so trades through the old bid 30 s later
/// fill nothing.
#[test]
fn a_stale_book_is_pulled_before_late_trades_can_fill() {
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/sample_spot_btcusdt.rec");
    let text = std::fs::read_to_string(&sample).unwrap();
    let last: u64 = text.lines().last().unwrap().split(' ').next().unwrap().parse().unwrap();
    let mut late = text.clone();
    for i in 0..3u64 {
        let ts = last + 30_000_000_000 + i * 1_000_000_000;
        late.push_str(&format!(
            "{ts} {{\"stream\":\"btcusdt@trade\",\"data\":{{\"e\":\"trade\",\"E\":1,\"s\":\"BTCUSDT\",\"t\":{i},\"p\":\"61000.00000000\",\"q\":\"1.00000000\",\"T\":1,\"m\":true}}}}\n"
        ));
    }
    let dir = common::temp_dir("stale");
    let path = dir.join("stale.rec");
    std::fs::write(&path, late).unwrap();
    let config = Config::from_toml("[risk]\nstale_after_ms = 1000\n", "t").unwrap();
    let (report, seen) = backtest(&[path], &config);
    assert!(seen.last().unwrap().quote.is_pulled(), "the last quote should be the stale pull");
    assert_eq!(report.trading.fills, 0, "trades through a pulled bid filled it");
    assert_eq!(report.trading.position, "0");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A live run's advice log replays in simulated time: advice that arrived at
/// a given moment governs the quotes from that moment, deterministically.
#[test]
fn an_advice_log_replays_in_simulated_time() {
    use mmbot::ai::advisor::sample_snapshot;
    use mmbot::ai::log::{AdviceLog, LogEntry};
    use mmbot::hot::advice::{Advice, AdviceSource, Direction, SpreadState, Volatility};

    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/sample_spot_btcusdt.rec");
    let text = std::fs::read_to_string(&sample).unwrap();
    let times: Vec<i64> = text.lines().filter_map(|l| l.split(' ').next()?.parse().ok()).collect();
    let (first, last) = (times[0], *times.last().unwrap());
    let dir = std::env::temp_dir().join(format!("mmbot-advice-replay-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let log_path = dir.join("advice.jsonl");
    let _ = std::fs::remove_file(&log_path);
    // Wide, volatile advice from the very start of the recording.
    let advice = Advice {
        spread: SpreadState::Wide,
        volatility: Volatility::High,
        direction: Direction::Sideways,
        confidence: 90,
        multiplier: 2.0,
        source: AdviceSource::Llm,
        received_ns: first,
        ttl_ns: last - first + 1_000_000_000,
        apply_multiplier: false,
    };
    let market = sample_snapshot();
    let mut log = AdviceLog::open(&log_path).unwrap();
    log.write(&LogEntry {
        wall_ns: first,
        provider: "holysheep",
        model: "gpt-4.1",
        latency: None,
        attempts: 1,
        tokens_in: 500,
        tokens_out: 90,
        usage_reported: true,
        cost_usd: Some(0.0026),
        raw: None,
        reply: None,
        advice: Some(advice),
        error: None,
        market: &market,
    })
    .unwrap();
    drop(log);

    let files = vec![sample];
    let offline = Config::default();
    let replayed = Config { advice_replay: Some(log_path.clone()), ..Config::default() };
    let (r1, q1) = backtest(&files, &offline);
    let (r2, q2) = backtest(&files, &replayed);
    let (r3, q3) = backtest(&files, &replayed);
    assert_eq!(r2.trading.advice, format!("replayed log {}", log_path.display()));
    assert_eq!(r2.trading.advice_updates, 1);
    assert_eq!(r2.trading, r3.trading, "replaying a log is deterministic");
    assert_eq!(q2.len(), q3.len());
    // Wide and volatile: the bid sits further from the touch than offline's.
    let bid_gap = |q: &[QuoteSeen]| {
        q.iter().find_map(|s| Some(s.best_bid?.price.0 - s.quote.bid?.price.0)).expect("a bid was quoted")
    };
    assert!(bid_gap(&q2) > bid_gap(&q1), "{} vs {}", bid_gap(&q2), bid_gap(&q1));
    assert_eq!(r1.trading.advice, "offline");
    let _ = std::fs::remove_dir_all(&dir);
}

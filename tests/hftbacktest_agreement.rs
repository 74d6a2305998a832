//! mmbot's backtester against hftbacktest 2.4.4's own numbers on the shared
//! USD-M ETHUSDT capture (docs/hftbacktest_comparison.md has the commands
//! that produced them, running both tools). hftbacktest cannot run in CI (a
//! Python package with compiled parts), so its results are pinned here: if
//! the paper exchange's fill model drifts, this fails. Same strategy and
//! settings as the comparison: one lot each side, at the touch or one tick
//! behind, 20 ms each way, post-only, no fees, on the receive clock.

mod common;

use std::path::{Path, PathBuf};

use mmbot::backtest;
use mmbot::config::load_with_params;
use mmbot::script::ScriptStrategy;
use mmbot::stats::clock::Clock;

fn capture() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/busy/usdm_ethusdt_20240808.gz");
    if p.exists() {
        Some(p)
    } else {
        common::skip(format_args!("hftbacktest_agreement: {} is absent (shared data)", p.display()));
        None
    }
}

/// (queue model, ticks behind the touch) -> hftbacktest's orders, cancels,
/// fills, volume, position, PnL (docs/hftbacktest_comparison.md, Results).
type Row = (&'static str, u32, u64, u64, u64, &'static str, &'static str, &'static str);
const HFTBACKTEST: [Row; 4] = [
    ("risk_averse", 0, 1237, 867, 664, "1780.43215", "0.03", "-0.04484"),
    ("risk_averse", 1, 1128, 912, 531, "1423.79831", "0.023", "-0.062555"),
    ("power", 0, 1271, 864, 698, "1871.62179", "0.034", "-0.03722"),
    ("log", 0, 1309, 864, 736, "1973.49747", "0.026", "-0.03184"),
];

#[test]
fn fills_agree_with_hftbacktest_on_the_ethusdt_capture() {
    let Some(cap) = capture() else { return };
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/hftbacktest_compare");
    let cfg = dir.join("mmbot.toml");
    let script = dir.join("fixed_half_spread.rhai");
    let dec = |s: &str| s.parse::<f64>().unwrap();
    for (model, ticks, orders, cancels, fills, volume, position, pnl) in HFTBACKTEST {
        let params = [format!("paper.queue_model={model}"), format!("ticks={ticks}")];
        let config = load_with_params(Some(&cfg), &params).unwrap();
        let s = ScriptStrategy::from_file(&script, &config.params, &config.script_limits).unwrap();
        let (r, _) = backtest::run(std::slice::from_ref(&cap), &config, s, Clock::instant()).unwrap();
        let t = &r.trading;
        let got = (t.orders, t.cancels, t.fills);
        assert_eq!(got, (orders, cancels, fills), "{model} ticks {ticks}: orders, cancels, fills vs hftbacktest");
        assert!((dec(&t.volume) - dec(volume)).abs() < 1e-6, "{model} {ticks}: volume {} vs {volume}", t.volume);
        assert!((dec(&t.position) - dec(position)).abs() < 1e-9, "{model} {ticks}: position {}", t.position);
        assert!((dec(&t.pnl) - dec(pnl)).abs() < 1e-6, "{model} {ticks}: pnl {} vs {pnl}", t.pnl);
    }
}

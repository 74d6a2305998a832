//! The strategy scripts shipped in scripts/: each compiles (to the fast path),
//! quotes both sides, and does what its comments say: GLFT's online A/k fit
//! converges on a synthetic trade ring of known intensity, the imbalance
//! z-score moves obi_zscore's fair value the right way, Avellaneda-Stoikov's
//! BTC defaults quote a few bps wide on a BTC book, and each one trades both
//! sides in a backtest of a real capture. scripts/README.md's getter table
//! names exactly what the engine registers.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use mmbot::backtest::{run_with, FillRecord, RunObserver};
use mmbot::config::Config;
use mmbot::exec::Side;
use mmbot::hot::features::{TradeRing, TradeTick};
use mmbot::hot::fixed::{Price, Qty, SCALE};
use mmbot::hot::msg::Level;
use mmbot::hot::strategy::Decision;
use mmbot::script::{engine, MarketState, Params, ScriptLimits, ScriptStrategy};
use mmbot::stats::clock::Clock;

fn scripts_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts")
}

/// Every `scripts/*.rhai`, sorted.
fn shipped() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(scripts_dir())
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "rhai"))
        .collect();
    v.sort();
    assert!(v.len() >= 5, "scripts/ lost its scripts: {v:?}");
    v
}

fn load(name: &str, params: &[(&str, f64)]) -> ScriptStrategy {
    let params: Params = params.iter().map(|(k, v)| (k.to_string(), *v)).collect();
    ScriptStrategy::from_file(&scripts_dir().join(name), &params, &ScriptLimits::default()).unwrap()
}

fn fx(v: f64) -> i64 {
    (v * SCALE as f64).round() as i64
}

/// A BTCUSDT-like market: one-tick spread at 60,000, 20 levels a side of
/// 0.5 BTC each, 1 bps per sqrt(s) of volatility, the default sizes.
fn btc_state(time_s: f64) -> MarketState {
    let tick = 0.01;
    let (bb, ba) = (60_000.0 - tick / 2.0, 60_000.0 + tick / 2.0);
    let mut m = MarketState {
        best_bid: bb,
        best_ask: ba,
        bid_qty: 0.5,
        ask_qty: 0.5,
        mid: 60_000.0,
        microprice: 60_000.0,
        spread_bps: tick / 60_000.0 * 1e4,
        volatility_bps: 0.3,
        volatility_bps_per_s: 1.0,
        max_position: 0.01,
        min_order_size: 0.001,
        target_spread_pct: 0.1,
        spread_state: "normal",
        volatility_state: "medium",
        direction: "neutral",
        advice_multiplier: 1.0,
        spread_mult: 1.0,
        vol_mult: 1.0,
        dir_mult: 1.0,
        time_s,
        time_local_s: time_s,
        time_exchange_s: time_s,
        tick_size: tick,
        step_size: 0.00001,
        since_fill_s: -1.0,
        depth: 20.0,
        bid_levels: 20,
        ask_levels: 20,
        ..MarketState::default()
    };
    for i in 0..20 {
        m.bids[i] = Level { price: Price(fx(bb - i as f64 * tick)), qty: Qty(fx(0.5)) };
        m.asks[i] = Level { price: Price(fx(ba + i as f64 * tick)), qty: Qty(fx(0.5)) };
    }
    m
}

fn sides(d: &Decision) -> (f64, f64) {
    let (Some(b), Some(a)) = (d.bid, d.ask) else { panic!("not two-sided: {d:?}") };
    (b.price, a.price)
}

/// A small deterministic generator (xorshift64*), uniform in (0, 1).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        ((self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }
}

#[test]
fn every_shipped_script_compiles_to_the_fast_path_and_quotes_both_sides() {
    for path in shipped() {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let mut s = ScriptStrategy::from_file(&path, &Default::default(), &ScriptLimits::default())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(s.fast_path(), "{name} runs interpreted: {:?}", s.script().not_compiled());
        // Half long, so the tutorial's rules (sell only what was bought) quote both sides too.
        let mut m = btc_state(1_700_000_000.0);
        m.position = 0.005;
        let d = s.decide_market(m);
        let (bid, ask) = sides(&d);
        assert!(bid.is_finite() && ask.is_finite() && bid < ask, "{name}: {d:?}");
        assert!(bid > 50_000.0 && ask < 70_000.0, "{name}: quotes far off a 60,000 mid: {d:?}");
        assert_eq!(s.stats().errors, 0, "{name}: {:?}", s.last_error());
    }
}

/// GLFT's own formulas (hftbacktest's compute_coeff), in ticks.
fn glft_quotes(a: f64, k: f64, gamma: f64, sigma_ticks: f64) -> (f64, f64) {
    let c1 = (1.0 + gamma / k).ln() / gamma;
    let c2 = (gamma / (2.0 * a * k) * (1.0 + gamma / k).powf(k / gamma + 1.0)).sqrt();
    (c1 + 0.5 * sigma_ticks * c2, sigma_ticks * c2)
}

/// Trades arrive at a known intensity lambda(d) = A exp(-k d): in each
/// 0.1 s step, with probability A * 0.1 a market order reaches depth
/// Exp(k) from the mid. After 30 simulated minutes the quotes must be the
/// ones GLFT gives for the true A and k (the prior, 1/k of 0.8 bps and
/// A = 0.6, is far from both).
#[test]
fn glft_fits_a_and_k_from_the_trade_ring() {
    let (a_true, k_usd) = (1.5_f64, 0.5_f64); // per s; per USD (1/k = 2 USD = 0.33 bps)
    let tick = 0.01;
    let mut s = load("glft.rhai", &[]);
    assert!(s.fast_path(), "{:?}", s.script().not_compiled());
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut ring = TradeRing::default();
    let t0 = 1_700_000_000.0;
    let steps = 18_000; // 1,800 s of 0.1 s: three fit windows
    let mut last = Decision::default();
    for n in 0..steps {
        let now = t0 + n as f64 * 0.1;
        if rng.next() < a_true * 0.1 {
            let depth = -rng.next().ln() / k_usd;
            let side: i8 = if rng.next() < 0.5 { 1 } else { -1 };
            let price = 60_000.0 + side as f64 * (depth / tick).round() * tick;
            let time_ms = ((now + 0.05) * 1e3).round() as i64;
            ring.push(TradeTick { price: Price(fx(price)), qty: Qty(fx(0.01)), time_ms, side });
        }
        let mut m = btc_state(now + 0.1);
        m.trades = ring;
        m.trade_count = ring.len() as f64;
        last = s.decide_market(m);
    }
    assert_eq!(s.stats().errors, 0, "{:?}", s.last_error());
    let (bid, ask) = sides(&last);
    let half_ticks = (ask - bid) / 2.0 / tick;
    let sigma_ticks = 1.0 * 60_000.0 / 1e4 / tick; // volatility_bps_per_s 1.0
    let (want_half, want_skew) = glft_quotes(a_true, k_usd * tick, 0.000005, sigma_ticks);
    eprintln!("glft fit: half spread {half_ticks:.1} ticks (true A, k: {want_half:.1})");
    assert!((half_ticks / want_half - 1.0).abs() < 0.10, "half spread {half_ticks} ticks, want {want_half}");
    // The skew, at a position of 10 order sizes, on the same fitted state
    // (the same time: no step closes, no trade is new).
    let mut m = btc_state(t0 + steps as f64 * 0.1);
    m.trades = ring;
    m.trade_count = ring.len() as f64;
    m.position = 0.01;
    let (bid_q, ask_q) = sides(&s.decide_market(m));
    let skew = ((bid + ask) / 2.0 - (bid_q + ask_q) / 2.0) / tick / 10.0;
    eprintln!("glft fit: skew {skew:.2} ticks per order size (true A, k: {want_skew:.2})");
    assert!((skew / want_skew - 1.0).abs() < 0.12, "skew {skew} ticks per order size, want {want_skew}");
}

/// Feeds obi_zscore `n` states of a balanced book with a little noise.
fn obi_history(s: &mut ScriptStrategy, n: usize) -> f64 {
    let mut rng = Rng(7);
    let mut t = 1_700_000_000.0;
    for _ in 0..n {
        let mut m = btc_state(t);
        for i in 0..20 {
            m.bids[i].qty = Qty(fx(0.4 + 0.2 * rng.next()));
            m.asks[i].qty = Qty(fx(0.4 + 0.2 * rng.next()));
        }
        s.decide_market(m);
        t += 0.1;
    }
    t
}

#[test]
fn obi_zscore_leans_toward_the_heavier_side_and_against_inventory() {
    let centre = |bid_heavy: Option<bool>, position: f64| {
        let mut s = load("obi_zscore.rhai", &[]);
        assert!(s.fast_path(), "{:?}", s.script().not_compiled());
        let t = obi_history(&mut s, 1_000);
        let mut m = btc_state(t);
        m.position = position;
        if let Some(heavy_bids) = bid_heavy {
            let side = if heavy_bids { &mut m.bids } else { &mut m.asks };
            for l in side.iter_mut() {
                l.qty = Qty(fx(2.0));
            }
        }
        let (b, a) = sides(&s.decide_market(m));
        assert_eq!(s.stats().errors, 0, "{:?}", s.last_error());
        (b + a) / 2.0
    };
    let flat = centre(None, 0.0);
    let up = centre(Some(true), 0.0);
    let down = centre(Some(false), 0.0);
    assert!(up > flat + 0.5, "bid-heavy book: centre {up} not above {flat}");
    assert!(down < flat - 0.5, "ask-heavy book: centre {down} not below {flat}");
    // The shift is capped at max_z (3) x alpha_bps (0.3 bps of 60,000 = 1.8 USD each).
    assert!(up - flat <= 3.0 * 1.8 + 0.01 && flat - down <= 3.0 * 1.8 + 0.01, "{down} {flat} {up}");
    let long = centre(None, 0.01);
    assert!(long < flat - 1.0, "a full long position must lower the quotes: {long} vs {flat}");
}

#[test]
fn avellaneda_stoikov_btc_defaults_quote_a_few_bps_wide() {
    let mut s = load("avellaneda_stoikov.rhai", &[]);
    for vol in [0.0, 0.5, 1.1, 3.0] {
        let mut m = btc_state(1_700_000_000.0);
        m.volatility_bps_per_s = vol;
        let (bid, ask) = sides(&s.decide_market(m));
        let width_bps = (ask - bid) / m.mid * 1e4;
        assert!((0.5..10.0).contains(&width_bps), "vol {vol} bps/sqrt(s): {width_bps} bps wide");
    }
    // Inventory: a full long position lowers the reservation price by about one half spread.
    let m = btc_state(1_700_000_000.0);
    let (b0, a0) = sides(&s.decide_market(m));
    let (b1, a1) = sides(&s.decide_market(MarketState { position: 0.01, ..m }));
    let shift = (b0 + a0) / 2.0 - (b1 + a1) / 2.0;
    assert!(shift > 0.3 * (a0 - b0) / 2.0 && shift < 2.0 * (a0 - b0) / 2.0, "shift {shift}, width {}", a0 - b0);
}

/// Counts fills per side.
#[derive(Default)]
struct Fills {
    buys: u64,
    sells: u64,
}

impl RunObserver for Fills {
    fn wants_progress(&self) -> bool {
        false
    }
    fn on_fill(&mut self, f: &FillRecord) {
        if f.fill.side == Side::Buy {
            self.buys += 1;
        } else {
            self.sells += 1;
        }
    }
}

/// Each new script, backtested on the real USD-M ETHUSDT capture (345 s,
/// 14,000 trades), fills on both sides without an error. AS's k is per
/// price unit: the BTC default does not fit ETH, so this uses the k that
/// scripts/calibrate_as.py measures on that capture (scripts/README.md,
/// Calibration).
#[test]
fn each_script_trades_both_sides_in_a_backtest_of_a_real_capture() {
    let file = common::shared_data().join("busy/usdm_ethusdt_20240808.gz");
    if !file.exists() {
        common::skip(format_args!("each_script_trades_both_sides: {} is absent", file.display()));
        return;
    }
    for (name, params) in
        [("glft.rhai", vec![]), ("obi_zscore.rhai", vec![]), ("avellaneda_stoikov.rhai", vec![("k", 4.46)])]
    {
        let s = load(name, &params);
        let mut fills = Fills::default();
        let (report, _) = run_with(std::slice::from_ref(&file), &Config::default(), s, Clock::instant(), &mut fills)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let t = &report.trading;
        assert_eq!(t.strategy_errors, 0, "{name}: {t:?}");
        assert_eq!(t.strategy_bad_outputs, 0, "{name}: {t:?}");
        eprintln!(
            "{name}: {} buys, {} sells, pnl {}, max |position| {}",
            fills.buys, fills.sells, t.pnl, t.max_abs_position
        );
        assert!(fills.buys > 0 && fills.sells > 0, "{name}: {} buys, {} sells", fills.buys, fills.sells);
    }
}

/// The top-level field names of `MarketState`, from its `Debug` form.
fn state_fields() -> Vec<String> {
    let text = format!("{:?}", btc_state(0.0));
    let (mut depth, mut out, mut word, mut at_name) = (0, Vec::new(), String::new(), false);
    for c in text.chars() {
        match c {
            '{' | '[' | '(' => {
                depth += 1;
                at_name = depth == 1;
                word.clear();
            }
            '}' | ']' | ')' => depth -= 1,
            ',' if depth == 1 => {
                at_name = true;
                word.clear();
            }
            ':' if depth == 1 && at_name => {
                out.push(word.trim().to_string());
                at_name = false;
            }
            c if at_name => word.push(c),
            _ => {}
        }
    }
    out
}

/// The indexed getters SPEC17 section 1 names.
const INDEXED: [&str; 19] = [
    "bid_price",
    "bid_qty",
    "ask_price",
    "ask_qty",
    "trade_price",
    "trade_qty",
    "trade_time_s",
    "trade_side",
    "bid_order_price",
    "bid_order_qty",
    "bid_order_queue",
    "bid_order_age_s",
    "ask_order_price",
    "ask_order_qty",
    "ask_order_queue",
    "ask_order_age_s",
    // Issue 20: the other symbols of a [[symbols]] run.
    "peer_mid",
    "peer_volatility_bps",
    "peer_age_s",
];

/// The getter tables in scripts/README.md name exactly the getters the
/// engine has on `m`: every scalar field of `MarketState` that `m.NAME`
/// reads, and every indexed getter `m.NAME(i)`.
#[test]
fn the_readme_getter_table_matches_the_engine() {
    let e = engine(&ScriptLimits::default(), &Default::default(), None);
    let works = |expr: &str| {
        let mut scope = rhai::Scope::new();
        scope.push("m", btc_state(1.0));
        e.eval_with_scope::<rhai::Dynamic>(&mut scope, expr).is_ok()
    };
    assert!(!works("m.no_such_getter"), "the engine accepts unknown getters: this test cannot tell");
    let scalar: BTreeSet<String> = state_fields().into_iter().filter(|f| works(&format!("m.{f}"))).collect();
    assert!(scalar.len() >= 40 && scalar.contains("volatility_bps_per_s"), "{scalar:?}");
    for name in INDEXED {
        assert!(works(&format!("m.{name}(0)")), "m.{name}(i) is not registered");
    }
    let readme = std::fs::read_to_string(scripts_dir().join("README.md")).unwrap();
    // Rows of the getter tables: lines starting with "| `m." .
    let mut doc_scalar = BTreeSet::new();
    let mut doc_indexed = BTreeSet::new();
    for line in readme.lines().filter(|l| l.starts_with("| `m.")) {
        let cell = line.split('|').nth(1).unwrap();
        for name in cell.split('`').filter_map(|c| c.strip_prefix("m.")) {
            match name.strip_suffix("(i)") {
                Some(n) => doc_indexed.insert(n.to_string()),
                None => doc_scalar.insert(name.to_string()),
            };
        }
    }
    assert_eq!(doc_scalar, scalar, "scalar getters: scripts/README.md vs the engine");
    let indexed: BTreeSet<String> = INDEXED.iter().map(|s| s.to_string()).collect();
    assert_eq!(doc_indexed, indexed, "indexed getters: scripts/README.md vs SPEC17");
}

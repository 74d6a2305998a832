//! The compiled fast path against the Rhai interpreter: the shipped scripts
//! and scripts exercising every accepted construct and its edge cases
//! (integer overflow, integer division by zero, mixed INT/FLOAT, Rhai's
//! epsilon float comparisons, string comparisons, early returns, pulls,
//! returns of the wrong shape) give the same decisions, bit for bit, and
//! the same errors with the same messages, on thousands of generated market
//! states. Scripts outside the subset fall back to the interpreter and
//! still quote. The operation bound the fast path relies on is checked
//! against Rhai's own count.

mod common;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use mmbot::backtest::{run_observed, QuoteSeen};
use mmbot::config::Config;
use mmbot::feed::synthetic::Rng;
use mmbot::hot::fixed::{Price, Qty};
use mmbot::hot::msg::Level;
use mmbot::script::fast::{Frame, OPS_BASE, OPS_PER_NODE};
use mmbot::script::{
    compile, engine, interpret, same_decision, same_intent, MarketState, Params, Quoted, ScriptError, ScriptLimits,
    ScriptStrategy,
};
use mmbot::stats::clock::Clock;

fn shipped(name: &str) -> (String, String) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts").join(name);
    (name.to_string(), std::fs::read_to_string(path).unwrap())
}

/// Values that break naive arithmetic: zeros of both signs, tiny and huge
/// magnitudes, the edges of i64 as floats, infinities and NaN.
const SPECIAL: [f64; 24] = [
    0.0,
    -0.0,
    1.0,
    -1.0,
    0.5,
    2.0,
    3.0,
    100.0,
    0.1,
    1e-300,
    -1e-300,
    1e300,
    -1e300,
    9.3e18,
    -9.3e18,
    i64::MAX as f64,
    i64::MIN as f64,
    f64::MAX,
    f64::MIN_POSITIVE,
    f64::EPSILON,
    f64::INFINITY,
    f64::NEG_INFINITY,
    f64::NAN,
    61837.64,
];

fn unit(r: &mut Rng) -> f64 {
    (r.next_u64() >> 11) as f64 / (1u64 << 53) as f64
}

/// One number: special, a small integer, a realistic magnitude or anything
/// on a log scale.
fn number(r: &mut Rng) -> f64 {
    match r.below(6) {
        0 => SPECIAL[r.below(SPECIAL.len() as u64) as usize],
        1 => r.below(21) as f64 - 10.0,
        2 => unit(r) * 20.0 - 10.0,
        3 => 61_837.0 + unit(r) * 2.0,
        _ => {
            let mag = 10f64.powf(unit(r) * 40.0 - 20.0);
            if r.below(2) == 0 {
                mag
            } else {
                -mag
            }
        }
    }
}

fn pick(r: &mut Rng, of: &[&'static str]) -> &'static str {
    of[r.below(of.len() as u64) as usize]
}

/// A market state: half of them a plausible book, half anything at all;
/// positions often exactly at (or one ulp off) the limits.
fn state(r: &mut Rng) -> MarketState {
    let mut m = MarketState {
        best_bid: number(r),
        best_ask: number(r),
        bid_qty: number(r),
        ask_qty: number(r),
        mid: number(r),
        microprice: number(r),
        spread_bps: number(r),
        imbalance: number(r),
        volatility_bps: number(r),
        trade_flow: number(r),
        position: number(r),
        max_position: number(r),
        min_order_size: number(r),
        target_spread_pct: number(r),
        spread_state: pick(r, &["narrow", "normal", "wide", ""]),
        volatility_state: pick(r, &["low", "medium", "high", ""]),
        direction: pick(r, &["up", "down", "sideways", "neutral", ""]),
        confidence: number(r),
        advice_multiplier: number(r),
        advice_age_s: number(r),
        spread_mult: number(r),
        vol_mult: number(r),
        dir_mult: number(r),
        time_s: number(r),
        ..MarketState::default()
    };
    if r.below(2) == 0 {
        let bid = 61_837.63 + (r.below(200) as f64 - 100.0) * 0.01;
        let ask = bid + (1 + r.below(5)) as f64 * 0.01;
        m.best_bid = bid;
        m.best_ask = ask;
        m.mid = (bid + ask) / 2.0;
        m.spread_bps = (ask - bid) / m.mid * 1e4;
        m.bid_qty = unit(r) * 5.0;
        m.ask_qty = unit(r) * 5.0;
        m.min_order_size = [0.001, 0.01, 1.0][r.below(3) as usize];
        m.max_position = [0.0, 0.003, 1.0, 3.0][r.below(4) as usize];
        m.target_spread_pct = [0.02, 0.1, 0.25][r.below(3) as usize];
        m.spread_mult = [0.7, 1.0, 1.3][r.below(3) as usize];
        m.vol_mult = [0.7, 1.0, 1.5][r.below(3) as usize];
        m.dir_mult = [0.9, 1.0, 1.1][r.below(3) as usize];
    }
    m.position = match r.below(6) {
        0 => m.max_position,
        1 => -m.max_position,
        2 => f64::from_bits(m.max_position.to_bits().wrapping_add(1)),
        3 => f64::from_bits(m.max_position.to_bits().wrapping_sub(1)),
        4 => r.below(9) as f64 - 4.0,
        _ => m.position,
    };
    // Book levels for the indexed getters: 0 to 20 a side, often fewer
    // than `depth` says on one side (out-of-range reads give 0.0).
    let (nb, na) = (r.below(21) as usize, r.below(21) as usize);
    let touch = 6_183_763_000_000 + r.below(200) as i64 * 1_000_000;
    for i in 0..nb {
        m.bids[i] = Level {
            price: Price::from_raw(touch - i as i64 * 1_000_000),
            qty: Qty::from_raw(r.below(500_000_000) as i64),
        };
    }
    for i in 0..na {
        m.asks[i] = Level {
            price: Price::from_raw(touch + (1 + i as i64) * 1_000_000),
            qty: Qty::from_raw(r.below(500_000_000) as i64),
        };
    }
    m.bid_levels = nb as u8;
    m.ask_levels = na as u8;
    if r.below(4) != 0 {
        m.depth = nb.max(na) as f64;
    }
    m
}

/// What one script did over the states.
#[derive(Debug, Default)]
struct Tally {
    decisions: u64,
    pulls: u64,
    bids: u64,
    errors: u64,
    bad_outputs: u64,
    /// Calls the fast form handed to the interpreter (operation cap near).
    interpreted: u64,
    /// Error messages up to their first `:` (the kind, without operands).
    kinds: std::collections::BTreeSet<String>,
}

fn error_message(e: &ScriptError) -> String {
    format!("{}:{}: {}", e.line, e.column, e.message)
}

/// Runs `src` on `n` generated states through the fast path and through
/// the interpreter, at two levels: one call (every error's message and
/// position compared) and the strategy (decisions and counters).
fn differential(name: &str, src: &str, params: &Params, n: usize) -> Tally {
    let limits = ScriptLimits::default();
    let mut e = engine(&limits, params, None);
    // Rhai's operation count per call, against the fast form's bound.
    let seen = Arc::new(AtomicU64::new(0));
    let counter = seen.clone();
    e.on_progress(move |ops| {
        counter.fetch_max(ops, Ordering::Relaxed);
        None
    });
    let script = compile(&e, name, src).unwrap_or_else(|err| panic!("{name}: {err}"));
    let fast = script
        .fast()
        .unwrap_or_else(|| panic!("{name} should compile to the fast path: {}", script.not_compiled().unwrap()));
    let mut frame = Frame::boxed();

    let mut quick = ScriptStrategy::new(engine(&limits, params, None), script.clone());
    let mut slow = ScriptStrategy::new(engine(&limits, params, None), script.clone());
    slow.set_fast_path(false);
    assert!(quick.fast_path() && !slow.fast_path(), "{name}");
    assert!(quick.name_contains("compiled") && slow.name_contains("interpreted"), "{name}");

    let mut r = Rng(0x5eed ^ mmbot::script::fnv1a(src.as_bytes()) | 1);
    let mut t = Tally::default();
    for i in 0..n {
        let m = state(&mut r);
        // One call: same decision or same error, message and position included.
        seen.store(0, Ordering::Relaxed);
        let want = interpret(&e, script.ast(), m);
        let rhai_ops = seen.load(Ordering::Relaxed);
        let (got, bound) = fast.run_counted(&m, &mut frame);
        if !matches!(got, Ok(Quoted::Interpret)) {
            assert!(rhai_ops <= bound, "{name}: state {i}: Rhai counted {rhai_ops} operations, the bound is {bound}");
        }
        match (&want, &got) {
            (Ok(Some(a)), Ok(Quoted::Quote(b))) => {
                assert!(same_intent(a, b), "{name}: state {i} {m:?}\n interpreted {a:?}\n compiled    {b:?}");
                t.decisions += 1;
                t.pulls += a.decision.pull as u64;
                t.bids += a.decision.bid.is_some() as u64;
            }
            (Ok(None), Ok(Quoted::NotAQuote)) => t.bad_outputs += 1,
            (_, Ok(Quoted::Interpret)) => t.interpreted += 1,
            (Err(a), Err(b)) => {
                let b = ScriptError::runtime("", &b.to_rhai());
                assert_eq!(error_message(a), error_message(&b), "{name}: state {i} {m:?}");
                t.errors += 1;
                t.kinds.insert(a.message.split(':').next().unwrap_or("").to_string());
            }
            _ => panic!("{name}: state {i} {m:?}\n interpreted {want:?}\n compiled    {got:?}"),
        }
        // The strategy: decisions, error and output counters, first errors.
        let (a, b) = (slow.decide_market(m), quick.decide_market(m));
        assert!(same_decision(&a, &b), "{name}: state {i} {m:?}\n interpreted {a:?}\n compiled    {b:?}");
        assert_eq!(slow.stats(), quick.stats(), "{name}: state {i}");
        assert_eq!(slow.last_error(), quick.last_error(), "{name}: state {i}");
    }
    t
}

trait NameContains {
    fn name_contains(&self, s: &str) -> bool;
}

impl NameContains for ScriptStrategy {
    fn name_contains(&self, s: &str) -> bool {
        use mmbot::hot::strategy::Strategy;
        self.name().contains(s)
    }
}

const STATES: usize = 3_000;

#[test]
fn shipped_scripts_compile_and_match_the_interpreter() {
    let mut params = Params::new();
    for (name, src) in [shipped("tutorial.rhai"), shipped("inventory_skew.rhai"), shipped("avellaneda_stoikov.rhai")] {
        let t = differential(&name, &src, &params, STATES);
        assert!(t.decisions > STATES as u64 / 2, "{name}: {t:?}");
        assert!(t.bids > 0, "{name}: {t:?}");
    }
    // Configured parameters, resolved when compiled.
    params.insert("skew_bps".into(), 25.0);
    params.insert("gamma".into(), 0.3);
    params.insert("k".into(), 40.0);
    for (name, src) in [shipped("inventory_skew.rhai"), shipped("avellaneda_stoikov.rhai")] {
        differential(&name, &src, &params, STATES / 3);
    }
}

const ARITHMETIC: &str = r#"
fn quote(m) {
    let i = 7;
    let j = -3;
    let f = 2.5;
    let a = i / j;
    let b = i % j;
    let c = i * j + 4 - 1;
    let d = f * i;
    let e = i / 2.0;
    let g = 10 % 3.5;
    let h = m.mid % 7.0;
    let k = -m.mid + +f - -i;
    c += 5; c -= 2; c *= 3; c /= 2; c %= 7;
    let x = m.best_bid;
    x += 1; x -= 0.5; x *= 2; x /= 3; x %= 1000.0;
    x += m.imbalance;
    let q = (m.mid - m.best_bid) * (m.best_ask - m.mid) / (m.spread_bps + 1.0);
    #{ bid: x + a + b + c, ask: d + e + g + h + k + q, bid_size: m.min_order_size * i, ask_size: f }
}
"#;

const INT_FAULTS: &str = r#"
fn quote(m) {
    let p = to_int(m.position);
    let big = 9223372036854775807;
    let u = -9223372036854775807 - 1;
    let o = 0;
    if p == 1 { o = big + p; }
    if p == 2 { o = u - p; }
    if p == 3 { o = big * p; }
    if p == 4 { o = p / (p - 4); }
    if p == 5 { o = u / -1; }
    if p == 6 { o = p % (p - 6); }
    if p == 7 { o = -u; }
    if p == 8 { o = abs(u); }
    if p == -1 { o = big; o += 1; }
    if p == -2 { o = u; o -= 1; }
    if p == -3 { o = big; o *= 2; }
    if p == -4 { o /= 0; }
    if p == -5 { o %= 0; }
    if p == -6 { o = u % -1; }
    let q = 1000 / (p + 10) + 7 % (p - 9) - 100 / 7 * -3;
    bid(m.mid + o + q, 1.0);
}
"#;

const STRINGS_AND_LOGIC: &str = r#"
fn quote(m) {
    let d = m.direction;
    let up = d == "up" || d == "sideways" && m.volatility_state != "high";
    let wide = m.spread_state >= "wide" || m.spread_state < "n";
    let odd = !(m.volatility_state <= "low") && d > "down";
    let eq = m.position == m.max_position;
    let ne = m.position != 0.0;
    let le = m.position <= m.max_position;
    let ge = to_int(m.confidence) >= m.imbalance;
    let lt = 3 < m.mid;
    let gt = m.mid > 3;
    let ieq = to_int(m.trade_flow) == 2;
    let bools = (up == wide) != (odd > eq);
    if up && !wide { bid(m.best_bid, 1.0); }
    if odd || bools { ask(m.best_ask, 2.0); }
    if eq && ne { pull(); }
    if le == ge { bid(m.best_bid - 1.0, 3.0); }
    if lt != gt || ieq { ask(m.best_ask + 1.0, 4.0); }
    if "up" == d || "" == m.spread_state { bid(m.best_bid - 2.0, 5.0); }
}
"#;

const SHORT_CIRCUIT: &str = r#"
fn quote(m) {
    let p = to_int(m.position);
    if p != 0 && 100 / p > 3 { bid(m.best_bid, 1.0); }
    if p == 0 || 100 / p < -3 { ask(m.best_ask, 1.0); }
    let safe = p > 0 && (p * 2 > 4 || 1 / (p - p) > 0);
    if safe { pull(); }
}
"#;

const RETURNS: &str = r#"
fn quote(m) {
    let p = m.position;
    if p > 10.0 { return; }
    if p > 5.0 { return (); }
    if p > 2.0 { return "pull"; }
    if p > 1.0 { return "nope"; }
    if p > 0.5 { return 42; }
    if p > 0.25 { return 1.5; }
    if p > 0.0 { return true; }
    if p < -10.0 { return #{ bid_spread: 1.0, ask_spread: 2 }; }
    if p < -5.0 { return #{ bid: m.best_bid, ask_spread: m.spread_bps, bid_size: 3 }; }
    if p < -2.0 { return #{ bid: true, ask: (), ask_size: 2.0, other: 5 }; }
    if p < -1.0 { return #{ bid: 1.0, ask: 2.0 }; }
    if m.direction == "up" { "pull" } else if m.direction == "down" { #{ ask: m.best_ask } } else { () }
}
"#;

const OUTPUTS: &str = r#"
fn quote(m) {
    if m.imbalance > 0.5 { bid(m.best_bid, m.min_order_size); pull(); return #{ bid: 1.0 }; }
    if m.imbalance < -0.5 { ask(m.best_ask, 1.0); return "bad"; }
    if m.imbalance > 0.0 { pull(); }
    if m.imbalance < -0.25 { bid(m.best_bid, 1.0); bid(m.best_bid - 1.0, 2.0); }
    #{ bid_spread: m.spread_bps, ask: m.best_ask }
}
"#;

const MATH: &str = r#"
fn quote(m) {
    let a = abs(m.imbalance) + m.trade_flow.abs() + abs(to_int(m.confidence));
    let s = sign(m.imbalance) + sign(to_int(m.trade_flow)) + m.mid.sign();
    let lo = min(m.mid, m.best_bid) + max(m.best_ask, 3) + min(2, m.spread_bps) + max(4, 5) + min(-1, 2);
    let r = sqrt(m.mid) + exp(m.imbalance) + ln(m.mid) + log(m.mid) + log(m.mid, 2.0) + m.spread_bps.log(10.0);
    let g = floor(m.mid) + ceiling(m.mid) + round(m.mid) + int(m.mid) + fraction(m.mid) + m.mid.floor + m.mid.round;
    let t = to_float(to_int(m.best_bid)) + to_float(m.mid) + to_int(7) + m.time_s.to_int();
    let b = is_nan(m.imbalance) || m.imbalance.is_infinite || !is_finite(m.mid) || m.position.is_zero;
    let c = PI() * E();
    let clamp = m.imbalance.max(-0.5).min(0.5);
    let chain = (m.mid + 1.0).abs().sqrt().max(m.best_bid).floor;
    let ints = max(to_int(m.position), -3).min(3).abs();
    if b { pull(); } else { bid(a + s + lo + r, 1.0); ask(g + t + c + clamp + chain + ints, 1.0); }
}
"#;

const BLOCKS: &str = r#"
fn quote(m) {
    const K = 2.0;
    let x = if m.position > 0.0 { let h = m.mid * K; h - 1.0 } else if m.position < 0.0 { m.mid / K } else { m.mid };
    let x = x + 1.0;
    let n = if m.spread_state == "wide" { 3 } else { 1 };
    {
        let x = 5.0;
        n += 1;
        if x > m.mid { n -= 3; }
    }
    let label = if n > 2 { "w" } else { m.direction };
    let flag = { let t = m.imbalance > 0.0; t && n > 1 };
    if label == "w" || flag { return #{ bid: x - n, ask: x + n }; }
    let nothing = if m.mid > 0.0 { };
    bid(x - 2.0, 1.0);
}
"#;

const PARAMS_AND_MIXED: &str = r#"
fn quote(m) {
    let edge = param("edge_bps", 2.0);
    let skew = param("skew", -0.5);
    // An INT default is read as FLOAT, in the interpreter and compiled.
    let levels = param("levels", 3);
    let unset_int = param("edge_bps", 1) + levels;
    let lots = to_int(m.position / 0.001);
    let limit = 3;
    if lots >= limit { return "pull"; }
    if m.max_position == 1 { bid(m.mid * (1.0 - edge / 10000.0), 1.0); }
    let c = if lots < -limit { skew } else { 0.0 };
    if lots * 2 <= m.max_position { ask(m.mid + c, 1.0); }
    #{ bid: m.mid - edge + c - unset_int * 0.0, ask: m.mid + edge + c + levels * 0.001 }
}
"#;

/// Script functions: typed per call (INT and FLOAT), `m` passed on,
/// early returns, a function of the script's own (`clamp`, which Rhai
/// does not have), quotes set from inside a function, a fault inside one.
const USER_FUNCTIONS: &str = r#"
fn clamp(x, lo, hi) { if x < lo { lo } else if x > hi { hi } else { x } }
fn skew(m, k) { let q = m.position / max(m.max_position, 1e-9); clamp(q * k, -1.0, 1.0) }
fn half(x) { x / 2 }
fn pick(x) { if x > 0.0 { return 1.0; } -1.0 }
fn fault(p) { let big = 9223372036854775807; if p == 3 { return big + p; } p * 2 }
fn place(m, off) { bid(m.best_bid - off, m.min_order_size); ask(m.best_ask + off, m.min_order_size); }
fn nothing() { }
fn twice(x) { let y = x; y += x; y }
fn quote(m) {
    let p = to_int(m.position);
    let s = skew(m, 2.0) + half(7) + half(7.0) + pick(m.imbalance) + fault(p) + twice(twice(1.5));
    nothing();
    if m.imbalance > 0.5 { place(m, 1.0); }
    if m.imbalance < -0.5 { return place(m, 2.0); }
    #{ bid: m.mid - s, ask: m.mid + s }
}
"#;

/// `**` and `**=`: FLOAT and mixed powers (powf), INT powers (checked,
/// with Rhai's two errors).
const POWER: &str = r#"
fn quote(m) {
    let p = to_int(m.position);
    let a = m.mid ** 2.0 + m.imbalance ** 3 + 2 ** m.imbalance + 10.0 ** -2;
    let i = 0;
    if p >= 0 { i = 10 ** (p * 5); }
    if p == -2 { i = 3 ** -1; }
    if p == -3 { i = 2 ** 9999999999; }
    let x = m.spread_bps;
    x **= 2;
    x **= 0.5;
    let j = 3;
    j **= 2;
    bid(a + i + x + j, 1.0);
}
"#;

const TRIG: &str = r#"
fn quote(m) {
    let z = tanh(m.imbalance) + sin(m.mid) + cos(m.mid) + tan(m.imbalance) + sinh(m.imbalance) + cosh(m.imbalance)
        + asin(m.imbalance) + acos(m.imbalance) + atan(m.imbalance) + atan(m.mid, m.imbalance) + asinh(m.mid)
        + acosh(m.mid) + atanh(m.imbalance) + hypot(m.mid, m.imbalance) + to_radians(m.mid)
        + to_degrees(m.imbalance) + m.imbalance.tanh() + exp(-m.mid) + abs(m.mid - 1.0);
    bid(m.mid + z * 0.001, 1.0);
}
"#;

/// Loops over the book levels: ranges of each kind, empty and reversed
/// ones, `continue`, `break`, nested loops, `while`, `loop`, a return
/// from inside a loop.
const LOOPS: &str = r#"
fn depth_qty(m, n) { let v = 0.0; for i in 0..n { v += m.bid_qty(i) + m.ask_qty(i); } v }
fn quote(m) {
    let n = to_int(m.depth);
    let vb = 0.0;
    let va = 0.0;
    for i in 0..n { vb += m.bid_qty(i); va += m.ask_qty(i); }
    let w = 0.0;
    for i in range(0, 5) {
        if m.bid_price(i) == 0.0 { continue; }
        w += m.bid_price(i) * m.bid_qty(i);
        if i == 3 { break; }
    }
    let k = 0;
    while k < 3 { k += 1; }
    let t = 0.0;
    loop { t += 1.0; if t > 4.0 { break; } }
    let c = 0;
    for i in 0..=n { for j in 0..i { c += 1; if j > 2 { break; } } }
    for i in 10..0 { c -= 100; }
    let imb = if vb + va > 0.0 { (vb - va) / (vb + va) } else { 0.0 };
    for i in 0..n { if m.bid_qty(i) > 4.9 { return #{ bid: m.bid_price(i), ask: m.ask_price(0) }; } }
    bid(m.mid * (1.0 - imb * 0.001) + w * 0.0 + c + k + t + depth_qty(m, 3) * 0.0, 1.0);
    for i in 0..n { if i < 3 { ask(m.ask_price(i) + 0.01, m.ask_qty(i)); } }
    ask(m.ask_price(-1) + m.ask_price(25) + m.best_ask, 1.0);
}
"#;

/// Top-level constants `quote!(m)` sees (the strategy's persistent scope),
/// `keep_state()`, a literal top-level `let` that quote does not read.
const TOP_CONSTS: &str = r#"
keep_state();
const EDGE = 2.5;
const LEVELS = 3;
const SIDE = "up";
let unused = 1.0;
fn quote(m) {
    let e = if m.direction == SIDE { EDGE * 2.0 } else { EDGE };
    for i in 0..LEVELS { bid(m.best_bid - e - i, 1.0); }
}
"#;

/// Several levels a side through repeated bid()/ask() calls.
const LADDER: &str = r#"
fn quote(m) {
    let n = if m.position.abs() < 20.0 { to_int(m.position) + 2 } else { 11 };
    for i in 0..n { bid(m.best_bid - i * 0.01, 1.0); }
    for i in 0..(n - 1) { ask(m.best_ask + i * 0.01, m.min_order_size * (i + 1)); }
}
"#;

/// Other functions, not called from quote, may use anything.
const OTHER_FUNCTIONS: &str = r#"
fn unused(x) { for i in 0..3 { print(i); } x }
fn quote(m) { if m.position < m.max_position { bid(m.best_bid - 1.0, m.min_order_size); } }
fn after(y) { [y, y * 2] }
"#;

const EMPTY: &str = "fn quote(m) { }";
const LETS_ONLY: &str = "fn quote(m) { let x = m.mid; }";

#[test]
fn every_construct_matches_the_interpreter() {
    let mut params = Params::new();
    params.insert("edge_bps".into(), 3.5);
    let cases = [
        ("arithmetic", ARITHMETIC),
        ("int_faults", INT_FAULTS),
        ("strings_and_logic", STRINGS_AND_LOGIC),
        ("short_circuit", SHORT_CIRCUIT),
        ("returns", RETURNS),
        ("outputs", OUTPUTS),
        ("math", MATH),
        ("blocks", BLOCKS),
        ("params_and_mixed", PARAMS_AND_MIXED),
        ("other_functions", OTHER_FUNCTIONS),
        ("user_functions", USER_FUNCTIONS),
        ("power", POWER),
        ("trig", TRIG),
        ("loops", LOOPS),
        ("ladder", LADDER),
        ("bench", include_str!("data/fast_path_bench.rhai")),
        ("top_consts", TOP_CONSTS),
        ("empty", EMPTY),
        ("lets_only", LETS_ONLY),
    ];
    for (name, src) in cases {
        let started = std::time::Instant::now();
        let t = differential(name, src, &params, STATES);
        eprintln!("{name}: {t:?} ({:?})", started.elapsed());
        if name == "int_faults" {
            // Every kind of integer fault, each with its own message.
            for kind in [
                "Addition overflow",
                "Subtraction overflow",
                "Multiplication overflow",
                "Division by zero",
                "Division overflow",
                "Modulo division by zero or overflow",
                "integer overflow",
                "Negation overflow",
                "Integer overflow",
            ] {
                assert!(t.kinds.iter().any(|k| k.starts_with(kind)), "{kind} never raised: {t:?}");
            }
            assert!(t.decisions > 500, "{t:?}");
        }
        match name {
            // The edge cases are really reached: both errors and decisions.
            "short_circuit" | "math" | "strings_and_logic" => {
                assert!(t.errors > 50 && t.decisions > 50, "{name}: {t:?}")
            }
            "int_faults" => {}
            "power" => {
                for kind in ["Exponential overflow", "Integer raised to a negative power"] {
                    assert!(t.kinds.iter().any(|k| k.starts_with(kind)), "{kind} never raised: {t:?}");
                }
                assert!(t.decisions > 500, "{t:?}");
            }
            "user_functions" => {
                assert!(t.kinds.iter().any(|k| k.starts_with("Addition overflow")), "{t:?}");
                assert!(t.decisions > 500 && t.bids > 100, "{t:?}");
            }
            "returns" => assert!(t.bad_outputs > 50 && t.pulls > 50 && t.decisions > t.pulls, "{name}: {t:?}"),
            "empty" | "lets_only" => assert_eq!(t.pulls, STATES as u64, "{name}: {t:?}"),
            _ => assert!(t.decisions > 50, "{name}: {t:?}"),
        }
    }
}

/// Each fault kind, with the interpreter's message and position.
#[test]
fn faults_carry_rhai_messages_and_positions() {
    let e = engine(&ScriptLimits::default(), &Default::default(), None);
    let cases = [
        ("fn quote(m) {\n  let x = 9223372036854775807;\n  let y = x + to_int(m.mid + 1.0);\n}", "Addition overflow"),
        ("fn quote(m) {\n  let x = to_int(m.mid);\n  let y = 5 / x;\n}", "Division by zero"),
        ("fn quote(m) {\n  let x = to_int(m.mid);\n  x %= 0;\n}", "Modulo division by zero"),
        ("fn quote(m) {\n  let x = -9223372036854775807 - 1 + to_int(m.mid);\n  let y = -x;\n}", "integer overflow"),
        (
            "fn quote(m) {\n  let x = -9223372036854775807 - 1 + to_int(m.mid);\n  let y = x.abs();\n}",
            "Negation overflow",
        ),
        ("fn quote(m) {\n  let y = (m.mid / m.mid).sign();\n}", "Sign of NaN"),
        ("fn quote(m) {\n  let y = to_int(1e300 + m.mid);\n}", "Integer overflow: to_int"),
    ];
    for (src, want) in cases {
        let script = compile(&e, "f.rhai", src).unwrap();
        let fast = script.fast().unwrap_or_else(|| panic!("{src}: {}", script.not_compiled().unwrap()));
        let m = MarketState::default();
        let slow = interpret(&e, script.ast(), m).expect_err(src);
        let quick = ScriptError::runtime("", &fast.run(&m, &mut Frame::boxed()).expect_err(src).to_rhai());
        assert!(slow.message.contains(want), "{src}: {slow}");
        assert_eq!(error_message(&slow), error_message(&quick), "{src}");
        assert!(slow.line >= 2, "{src}: {slow}");
    }
}

#[test]
fn unsupported_scripts_fall_back_to_the_interpreter() {
    let cases = [
        ("do loop", "fn quote(m) { let s = 0.0; do { s += m.mid; } while s < 3.0; bid(s, 1.0); }", "do loops"),
        (
            "recursion",
            "fn f(x) { if x > 1.0 { f(x / 2.0) } else { x } }\nfn quote(m) { bid(f(m.mid), 1.0); }",
            "calls itself",
        ),
        (
            "stepped range",
            "fn quote(m) { let s = 0.0; for i in range(0, 9, 2) { s += m.mid; } bid(s, 1.0); }",
            "stepped",
        ),
        ("float range", "fn quote(m) { let s = 0.0; for x in [1.0, 2.0] { s += x; } bid(s, 1.0); }", "for loop over"),
        ("break value", "fn quote(m) { let x = loop { break 1.0; }; bid(m.mid, 1.0); }", "break with a value"),
        (
            "mixed returns",
            "fn f(x) { if x > 1.0 { return 1; } 2.0 }\nfn quote(m) { bid(m.mid * f(m.mid), 1.0); }",
            "different types",
        ),
        ("other arity", "fn f(x, y) { x + y }\nfn quote(m) { bid(f(m.mid), 1.0); }", "another number of parameters"),
        ("method on fn", "fn f() { this * 2.0 }\nfn quote(m) { let x = m.mid; bid(x.f(), 1.0); }", "script defines"),
        ("levels", "fn quote(m) { #{ bids: [[m.mid, 1.0]] } }", "bids/asks"),
        ("state", "fn quote(m) { state.n = 1; bid(m.mid, 1.0); }", "only FLOAT"),
        ("top let", "let n = 0.0;\nfn quote(m) { n += 1.0; bid(m.mid + n, 1.0); }", "top-level let"),
        ("top code", "let n = sqrt(2.0);\nfn quote(m) { bid(m.mid, 1.0); }", "when the script loads"),
        ("top print", "print(\"hi\");\nfn quote(m) { bid(m.mid, 1.0); }", "top-level statement"),
        ("bang call", "fn f() { 1.0 }\nfn quote(m) { bid(m.mid + f!(), 1.0); }", "with !"),
        ("array", "fn quote(m) { let a = [1.0, m.mid]; bid(a[1], 1.0); }", "arrays"),
        ("print", "fn quote(m) { print(\"x\"); bid(m.mid, 1.0); }", "print"),
        ("type change", "fn quote(m) { let x = 0; x = m.mid; bid(x, 1.0); }", "changes type"),
        ("undefined", "fn quote(m) { bid(m.mid + nope, 1.0); }", "undefined variable"),
        ("concat", "fn quote(m) { let s = m.direction + \"x\"; if s == \"upx\" { pull(); } }", "string"),
        ("int size", "fn quote(m) { bid(m.mid, 1); }", "not a FLOAT"),
        ("getter", "fn quote(m) { bid(m.nope, 1.0); }", "no such getter"),
        ("switch", "fn quote(m) { switch m.direction { \"up\" => pull(), _ => bid(m.mid, 1.0) } }", "switch"),
        ("mixed if", "fn quote(m) { let x = if m.mid > 1.0 { 1 } else { 2.0 }; bid(m.mid, 1.0); }", "different types"),
        ("bool power", "fn quote(m) { bid(m.mid ** true, 1.0); }", "Pow"),
        ("int sqrt", "fn quote(m) { bid(sqrt(4), 1.0); }", "sqrt"),
        ("throw", "fn quote(m) { if m.mid > 1.0 { throw \"no\"; } }", "throw"),
        ("condition", "fn quote(m) { if m.mid { pull(); } }", "condition"),
    ];
    let limits = ScriptLimits::default();
    let mut r = Rng(77);
    for (name, src, reason) in cases {
        let e = engine(&limits, &Default::default(), None);
        let script = compile(&e, name, src).unwrap_or_else(|err| panic!("{name}: {err}"));
        let why = script.not_compiled().unwrap_or_else(|| panic!("{name} should not compile")).to_string();
        assert!(why.contains(reason), "{name}: {why}");
        let mut s = ScriptStrategy::new(e, script.clone());
        assert!(!s.fast_path(), "{name}");
        assert!(s.name_contains("interpreted"), "{name}");
        // Still quotes, exactly as the interpreter does.
        let mut slow = ScriptStrategy::new(engine(&limits, &Default::default(), None), script);
        slow.set_fast_path(false);
        for _ in 0..50 {
            let m = state(&mut r);
            assert!(same_decision(&s.decide_market(m), &slow.decide_market(m)), "{name}");
        }
        assert_eq!(s.stats(), slow.stats(), "{name}");
    }
}

/// Rhai counts operations; the fast path has none to count, so it is only
/// used where the bound on the count is under the cap. The bound holds
/// against Rhai's own count, and a cap below it sends the script to the
/// interpreter.
#[test]
fn the_operation_bound_covers_rhai_and_the_cap_is_respected() {
    let mut scripts: Vec<(String, String)> =
        vec![shipped("tutorial.rhai"), shipped("inventory_skew.rhai"), shipped("avellaneda_stoikov.rhai")];
    for (n, s) in [("math", MATH), ("int_faults", INT_FAULTS), ("returns", RETURNS), ("blocks", BLOCKS)] {
        scripts.push((n.to_string(), s.to_string()));
    }
    let mut r = Rng(99);
    for (name, src) in &scripts {
        let mut e = engine(&ScriptLimits::default(), &Default::default(), None);
        let most = Arc::new(AtomicU64::new(0));
        let seen = most.clone();
        e.on_progress(move |ops| {
            seen.fetch_max(ops, Ordering::Relaxed);
            None
        });
        let script = compile(&e, name, src).unwrap();
        let nodes = script.fast().unwrap_or_else(|| panic!("{name}: {:?}", script.not_compiled())).nodes() as u64;
        for _ in 0..500 {
            let _ = interpret(&e, script.ast(), state(&mut r));
        }
        let ops = most.load(Ordering::Relaxed);
        eprintln!(
            "{name}: {nodes} nodes, at most {ops} Rhai operations per call (bound {})",
            OPS_PER_NODE * nodes + OPS_BASE
        );
        // Half the bound: a margin of 2x on Rhai's count per node.
        assert!(ops <= OPS_PER_NODE / 2 * nodes + OPS_BASE / 2, "{name}: {ops} operations for {nodes} nodes");
    }
    // tutorial.rhai: 73 nodes, bound 648 operations.
    let (_, src) = shipped("tutorial.rhai");
    for (cap, compiled) in [(100, false), (647, false), (648, true), (0, true)] {
        let limits = ScriptLimits { max_operations: cap, ..ScriptLimits::default() };
        let e = engine(&limits, &Default::default(), None);
        let script = compile(&e, "tutorial.rhai", &src).unwrap();
        assert_eq!(script.fast().is_some(), compiled, "cap {cap}: {:?}", script.not_compiled());
        if !compiled {
            assert!(script.not_compiled().unwrap().reason.contains("operations"), "{:?}", script.not_compiled());
        }
    }
    // A zero call-depth cap: the interpreter cannot even call quote, so neither may the fast path.
    let limits = ScriptLimits { max_call_levels: 0, ..ScriptLimits::default() };
    let e = engine(&limits, &Default::default(), None);
    assert!(compile(&e, "tutorial.rhai", &src).unwrap().fast().is_none());
}

/// The strategy rebuilds the fast form for its own engine: its parameters
/// apply even when another engine compiled the script.
#[test]
fn parameters_bind_to_the_running_engine() {
    let src = "fn quote(m) { #{ bid: m.mid - param(\"edge\", 1.0), ask: m.mid + param(\"other\", 1.0) } }";
    let plain = engine(&ScriptLimits::default(), &Default::default(), None);
    let script = compile(&plain, "p.rhai", src).unwrap();
    let mut params = Params::new();
    params.insert("edge".into(), 2.5);
    let mut s = ScriptStrategy::new(engine(&ScriptLimits::default(), &params, None), script.clone());
    assert!(s.fast_path());
    let d = s.decide_market(MarketState { mid: 100.0, min_order_size: 1.0, ..Default::default() });
    assert_eq!((d.bid.unwrap().price, d.ask.unwrap().price), (97.5, 101.0));
    // replace() binds too.
    s.replace(script);
    assert!(s.fast_path());
    let d = s.decide_market(MarketState { mid: 100.0, min_order_size: 1.0, ..Default::default() });
    assert_eq!(d.bid.unwrap().price, 97.5);
}

fn quotes(files: &[PathBuf], config: &Config, s: ScriptStrategy) -> Vec<QuoteSeen> {
    let mut seen = Vec::new();
    run_observed(files, config, s, Clock::instant(), &mut |q| seen.push(*q)).unwrap();
    seen
}

/// Through the whole hot path on recordings: the sample, and every real
/// capture when ../shared/data is present.
#[test]
fn shipped_scripts_quote_the_same_on_recordings() {
    let mut files = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/sample_spot_btcusdt.rec")];
    if let Some(real) = common::recordings("shipped_scripts_quote_the_same_on_recordings") {
        files.extend(real);
    }
    let config = Config::default();
    for name in ["tutorial.rhai", "inventory_skew.rhai", "avellaneda_stoikov.rhai"] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts").join(name);
        for f in &files {
            let one = std::slice::from_ref(f);
            let fast = ScriptStrategy::from_file(&path, &Default::default(), &ScriptLimits::default()).unwrap();
            assert!(fast.fast_path(), "{name}");
            let mut slow = ScriptStrategy::from_file(&path, &Default::default(), &ScriptLimits::default()).unwrap();
            slow.set_fast_path(false);
            let (a, b) = (quotes(one, &config, fast), quotes(one, &config, slow));
            assert_eq!(a.len(), b.len(), "{name} {}", f.display());
            for (x, y) in a.iter().zip(&b) {
                assert_eq!(x.quote, y.quote, "{name} {}", f.display());
            }
        }
    }
}

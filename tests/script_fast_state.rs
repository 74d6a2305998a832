//! The persistent `state` map on the compiled fast path: a stateful
//! script (EWMAs kept in `state`, as `obi_zscore.rhai` does) gives the same
//! decisions, counters and state, call after call, compiled and
//! interpreted, including calls handed to the interpreter midway (a key
//! not there) and calls that fault after writing.

use mmbot::script::fast::Frame;
use mmbot::script::{compile, engine, same_decision, MarketState, Quoted, ScriptLimits, ScriptStrategy};

const EWMA: &str = r#"
const HALF = 30.0;
fn quote(m) {
    if state.len() == 1 {
        state.mean = m.imbalance;
        state.variance = 0.0;
        state.last_t = m.time_s;
    }
    let dt = max(m.time_s - state.last_t, 0.0);
    let w = 1.0 - exp(-dt / HALF);
    let d = m.imbalance - state.mean;
    state.mean += w * d;
    state.variance = (1.0 - w) * (state.variance + w * d * d);
    state.last_t = m.time_s;
    state.calls += 1;
    if m.imbalance > 0.9 { let q = state.never; }
    if to_int(m.position) == 3 { let x = 9223372036854775807 + to_int(m.position); }
    let z = if state.variance > 0.0 { (m.imbalance - state.mean) / sqrt(state.variance) } else { 0.0 };
    bid(m.mid - 1.0 + z * 0.01, 1.0);
}
"#;

#[test]
fn state_is_kept_the_same_way_compiled_and_interpreted() {
    let limits = ScriptLimits::default();
    // `state.calls += 1` needs the key first: set at top level.
    let src = format!("state.calls = 0.0;\n{EWMA}");
    let e = engine(&limits, &Default::default(), None);
    let script = compile(&e, "ewma.rhai", &src).unwrap();
    let fast = script.fast().unwrap_or_else(|| panic!("{:?}", script.not_compiled()));
    assert!(fast.uses_state());
    let mut quick = ScriptStrategy::new(engine(&limits, &Default::default(), None), script.clone());
    let mut slow = ScriptStrategy::new(engine(&limits, &Default::default(), None), script.clone());
    slow.set_fast_path(false);
    assert!(quick.fast_path());
    let mut r = mmbot::feed::synthetic::Rng(7);
    for i in 0..2_000u64 {
        let u = (r.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        let m = MarketState {
            mid: 100.0 + u,
            imbalance: u * 2.0 - 1.0,
            time_s: i as f64 * 0.25,
            position: (r.below(5)) as f64,
            ..MarketState::default()
        };
        let (a, b) = (slow.decide_market(m), quick.decide_market(m));
        assert!(same_decision(&a, &b), "call {i}: {a:?} vs {b:?}");
        assert_eq!(slow.stats(), quick.stats(), "call {i}");
        assert_eq!(slow.last_error(), quick.last_error(), "call {i}");
        let show = |s: &ScriptStrategy| format!("{:?}", s.state_var("state"));
        assert_eq!(show(&slow), show(&quick), "call {i}");
    }
    let s = quick.stats();
    assert!(s.errors > 100 && s.calls == 2_000, "{s:?}");
    // The EWMAs really moved, and every call counted (faulted ones too).
    let state = format!("{:?}", quick.state_var("state"));
    assert!(state.contains("\"calls\": 2000.0"), "{state}");
    // The compiled form itself ran those calls: on a fresh map it quotes
    // and writes, and hands over a call that reads a key not there.
    let mut map = rhai::Map::new();
    map.insert("calls".into(), rhai::Dynamic::from_float(0.0));
    let m = MarketState { mid: 100.0, imbalance: 0.5, time_s: 1.0, ..MarketState::default() };
    let r = fast.run_with_state(&m, &mut Frame::boxed(), Some(&mut map));
    assert!(matches!(r, Ok(Quoted::Quote(_))), "{r:?}");
    assert_eq!(map.len(), 4, "{map:?}");
    let before = format!("{map:?}");
    let m = MarketState { imbalance: 0.95, ..m };
    let r = fast.run_with_state(&m, &mut Frame::boxed(), Some(&mut map));
    assert!(matches!(r, Ok(Quoted::Interpret)), "{r:?}");
    assert_eq!(before, format!("{map:?}"), "a handed-over call writes nothing");
}

#[test]
fn state_outside_quote_bang_or_not_float_stays_interpreted() {
    let limits = ScriptLimits::default();
    let cases = [
        ("fn quote(m) { state.n = 1; bid(m.mid, 1.0); }", "only FLOAT"),
        ("fn f() { state.x }\nfn quote(m) { bid(m.mid + f(), 1.0); }", "persistent script state"),
        ("fn quote(m) { let s = state; bid(m.mid, 1.0); }", "persistent script state"),
        ("fn quote(m) { state.a.b = 1.0; bid(m.mid, 1.0); }", "state"),
    ];
    for (src, why) in cases {
        let e = engine(&limits, &Default::default(), None);
        let script = compile(&e, "s.rhai", src).unwrap();
        let reason = script.not_compiled().unwrap_or_else(|| panic!("{src} should not compile")).to_string();
        assert!(reason.contains(why), "{src}: {reason}");
    }
}

/// The fast path keeps `state` values between its calls (not in the map):
/// an interpreted `on_fill`, a reload that keeps the state, and a revert
/// must all see every value it wrote, exactly as with the interpreter.
#[test]
fn on_fill_and_reloads_see_what_the_fast_path_kept() {
    use mmbot::hot::strategy::{Strategy, StrategyFill};
    let limits = ScriptLimits::default();
    let first = r#"
state.fills = 0.0;
state.seen = 0.0;
fn quote(m) { state.seen += 1.0; bid(m.mid - 1.0 - state.fills * 0.001, 1.0); }
fn on_fill(f) { state.fills += state.seen; }
"#;
    let second = r#"
keep_state();
state.fills = 0.0;
state.seen = 0.0;
fn quote(m) { state.seen += 2.0; ask(m.mid + 1.0 + state.seen * 0.001, 1.0); }
fn on_fill(f) { state.fills += 1.0; }
"#;
    let e = engine(&limits, &Default::default(), None);
    let v1 = compile(&e, "v1.rhai", first).unwrap();
    let v2 = compile(&e, "v2.rhai", second).unwrap();
    assert!(v1.fast().is_some() && v2.fast().is_some(), "{:?} {:?}", v1.not_compiled(), v2.not_compiled());
    let mut quick = ScriptStrategy::new(engine(&limits, &Default::default(), None), v1.clone());
    let mut slow = ScriptStrategy::new(engine(&limits, &Default::default(), None), v1);
    slow.set_fast_path(false);
    let show = |s: &ScriptStrategy| format!("{:?}", s.state_var("state"));
    let fill = StrategyFill { price: 100.0, qty: 1.0, side: 1.0, ..StrategyFill::default() };
    for i in 0..600u64 {
        if i == 300 {
            quick.replace(v2.clone());
            slow.replace(v2.clone());
        }
        let m = MarketState { mid: 100.0 + (i % 3) as f64, time_s: i as f64, ..MarketState::default() };
        let (a, b) = (slow.decide_market(m), quick.decide_market(m));
        assert!(same_decision(&a, &b), "call {i}: {a:?} vs {b:?}");
        if i % 7 == 3 {
            slow.on_fill(&fill);
            quick.on_fill(&fill);
        }
        assert_eq!(show(&slow), show(&quick), "call {i}");
    }
    assert!(quick.fast_path());
    // 300 calls of v1 (+1 each) then 300 of v2 (+2 each), carried over.
    assert!(show(&quick).contains("\"seen\": 900.0"), "{}", show(&quick));
}

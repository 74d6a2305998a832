//! The compiled fast path at Rhai's limits and the outputs' checks: the
//! operation cap (calls near it are handed to the interpreter, so the
//! error comes where Rhai raises it), the call-depth cap, multi-level
//! intent and every bad-output kind, the same through both paths.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use mmbot::script::fast::Frame;
use mmbot::script::{
    compile, engine, interpret, same_decision, same_intent, MarketState, Quoted, ScriptLimits, ScriptStrategy,
};

/// Near the operation cap the fast form hands the call to the
/// interpreter, so "too many operations" is raised exactly where Rhai
/// raises it (same message, same position, same counters), while calls
/// well under the cap stay compiled. The bound the fast form charges per
/// iteration and call is at least Rhai's own count.
#[test]
fn the_operation_cap_triggers_where_the_interpreter_does() {
    let src = r#"
fn weigh(m, i) { m.bid_qty(i) * (i + 1) }
fn quote(m) {
    let n = to_int(m.position.abs() * 40.0) % 400;
    let s = 0.0;
    for i in 0..n { s += weigh(m, i % 20); }
    let k = 0;
    while k < n { k += 3; }
    bid(m.mid - s * 1e-9 - k, 1.0);
}
"#;
    let limits = ScriptLimits { max_operations: 3_000, ..ScriptLimits::default() };
    let mut e = engine(&limits, &Default::default(), None);
    let seen = Arc::new(AtomicU64::new(0));
    let counter = seen.clone();
    e.on_progress(move |ops| {
        counter.fetch_max(ops, Ordering::Relaxed);
        None
    });
    let script = compile(&e, "cap.rhai", src).unwrap();
    let fast = script.fast().unwrap_or_else(|| panic!("{:?}", script.not_compiled()));
    let mut quick = ScriptStrategy::new(engine(&limits, &Default::default(), None), script.clone());
    let mut slow = ScriptStrategy::new(engine(&limits, &Default::default(), None), script.clone());
    slow.set_fast_path(false);
    let (mut compiled, mut handed, mut capped) = (0, 0, 0);
    let mut frame = Frame::boxed();
    for n in 0..160u32 {
        let m = MarketState { position: n as f64 * 0.0625, mid: 100.0, max_position: 10.0, ..MarketState::default() };
        seen.store(0, Ordering::Relaxed);
        let want = interpret(&e, script.ast(), m);
        let rhai_ops = seen.load(Ordering::Relaxed);
        let (got, bound) = fast.run_counted(&m, &mut frame);
        match (&want, got) {
            (Ok(Some(a)), Ok(Quoted::Quote(b))) => {
                assert!(same_intent(a, &b), "n {n}");
                assert!(rhai_ops <= bound, "n {n}: Rhai counted {rhai_ops}, the bound is {bound}");
                compiled += 1;
            }
            (_, Ok(Quoted::Interpret)) => handed += 1,
            other => panic!("n {n}: {other:?}"),
        }
        if let Err(err) = &want {
            assert!(err.message.contains("Too many operations"), "{err}");
            capped += 1;
        }
        let (a, b) = (slow.decide_market(m), quick.decide_market(m));
        assert!(same_decision(&a, &b), "n {n}");
        assert_eq!(slow.stats(), quick.stats(), "n {n}");
        assert_eq!(slow.last_error(), quick.last_error(), "n {n}");
    }
    assert!(compiled > 10 && handed > 10 && capped > 10, "{compiled} compiled, {handed} handed over, {capped} capped");
    // Only calls near the cap are handed over: the bound is at most a few
    // times Rhai's count.
    assert!(handed < capped * 4, "{handed} handed over for {capped} over the cap");
    let last = quick.last_error().expect("an error");
    assert!(last.message.contains("Too many operations"), "{last}");
}

/// Rhai's call-depth cap: a chain of calls deeper than `max_call_levels`
/// stays interpreted (where Rhai raises its stack overflow); within it,
/// compiled.
#[test]
fn call_depth_follows_max_call_levels() {
    let src = "fn a(x) { b(x) + 1.0 }\nfn b(x) { x * 2.0 }\nfn quote(m) { bid(a(m.mid), 1.0); }";
    for (levels, compiled) in [(2, false), (3, true)] {
        let limits = ScriptLimits { max_call_levels: levels, ..ScriptLimits::default() };
        let e = engine(&limits, &Default::default(), None);
        let script = compile(&e, "depth.rhai", src).unwrap();
        assert_eq!(script.fast().is_some(), compiled, "{levels}: {:?}", script.not_compiled());
        let m = MarketState { mid: 10.0, ..MarketState::default() };
        let r = interpret(&e, script.ast(), m);
        if compiled {
            let d = r.unwrap().unwrap();
            assert_eq!(d.decision.bid.unwrap().price, 21.0);
        } else {
            assert!(script.not_compiled().unwrap().reason.contains("max_call_levels"));
            assert!(r.is_err(), "{r:?}");
        }
    }
}

/// Multi-level intent (SPEC17 §3): levels in call order, the map's
/// `bids`/`asks`, the `[strategy] levels` cap, and every bad-output kind,
/// the same through both paths.
#[test]
fn levels_and_bad_outputs_are_classified_the_same_way() {
    use mmbot::script::BadOutput;
    let src = r#"
fn quote(m) {
    let k = to_int(m.imbalance);
    if k == 1 { return #{ bid: m.mid - 1.0, bids: [[m.mid - 2.0, 1.0], [m.mid - 3.0, 2]], asks: [[m.mid + 1.0, 1.0]] }; }
    if k == 2 { return #{ bids: 5 }; }
    if k == 3 { return 42; }
    if k == 4 { bid(m.mid / 0.0 * 0.0, 1.0); return; }
    if k == 5 { bid(m.mid / 0.0, 1.0); return; }
    if k == 6 { bid(-m.mid, 1.0); return; }
    if k == 7 { ask(m.mid, -1.0); return; }
    if k == 8 { ask(m.mid, 2e9); return; }
    if k == 9 { ask(m.mid, m.max_position * 1001.0); return; }
    for i in 0..k { bid(m.mid - i - 1, 1.0); ask(m.mid + i + 1, 1.0); }
}
"#;
    let limits = ScriptLimits::default();
    let mut strategies = Vec::new();
    for fast in [true, false] {
        let e = engine(&limits, &Default::default(), None);
        let script = compile(&e, "levels.rhai", src).unwrap();
        let mut s = ScriptStrategy::new(e, script);
        s.set_fast_path(fast);
        s.set_levels(3);
        strategies.push(s);
    }
    assert!(!strategies[0].fast_path(), "arrays in the map keep it interpreted");
    let base = MarketState { mid: 100.0, max_position: 1.0, min_order_size: 0.5, ..MarketState::default() };
    let mut ds = Vec::new();
    for k in [1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 10, 12] {
        let m = MarketState { imbalance: k as f64 + 0.5, ..base };
        let a = strategies[0].decide_market(m);
        let b = strategies[1].decide_market(m);
        assert!(same_decision(&a, &b), "{k}");
        ds.push((k, a));
    }
    let s = strategies[0].stats();
    assert_eq!(s, strategies[1].stats());
    let by = |k: BadOutput| s.bad_by_kind[k.index()];
    assert_eq!(by(BadOutput::NotAQuote), 2, "{s:?}");
    assert_eq!(by(BadOutput::Nan), 1, "{s:?}");
    assert_eq!(by(BadOutput::Infinite), 1, "{s:?}");
    assert_eq!(by(BadOutput::NegativePrice), 1, "{s:?}");
    assert_eq!(by(BadOutput::NegativeSize), 1, "{s:?}");
    assert_eq!(by(BadOutput::AbsurdSize), 2, "{s:?}");
    assert_eq!(by(BadOutput::TooManyLevels), 2, "{s:?}");
    // Pulled kinds count as bad outputs; too many levels still quotes.
    assert_eq!(s.bad_outputs, 8, "{s:?}");
    let names: Vec<_> = BadOutput::ALL.iter().map(|k| k.as_str()).collect();
    assert_eq!(
        names,
        ["not_a_quote", "nan", "infinite", "negative_price", "negative_size", "absurd_size", "too_many_levels"]
    );
    // The map's levels come behind `bid`, in order, INT sizes read as FLOAT.
    let d = ds[0].1;
    assert_eq!(d.bid.unwrap().price, 99.0);
    assert_eq!(d.deeper.bids[0].unwrap().price, 98.0);
    assert_eq!((d.deeper.bids[1].unwrap().price, d.deeper.bids[1].unwrap().size), (97.0, 2.0));
    assert_eq!(d.ask.unwrap().price, 101.0);
    assert!(d.deeper.bids[2].is_none() && d.deeper.asks[0].is_none());
    // Ten levels asked for a side: three kept, best first.
    let d = ds[10].1;
    assert!(!d.pull);
    assert_eq!(d.bid.unwrap().price, 99.0);
    assert_eq!(d.deeper.bids[1].unwrap().price, 97.0);
    assert!(d.deeper.bids[2].is_none() && d.deeper.asks[2].is_none());
    assert_eq!(d.deeper.count(), 4);
    // A pulled kind pulls.
    assert!(ds[3].1.pull && ds[3].1.bid.is_none());
}

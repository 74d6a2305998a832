//! The shipped Rhai scripts: tutorial.rhai quotes exactly as the native
//! strategy over every capture; every script runs clean; the sandbox stops
//! runaway scripts; errors carry their line and column.

mod common;

use std::path::{Path, PathBuf};

use mmbot::backtest::{run_observed, QuoteSeen};
use mmbot::config::Config;
use mmbot::hot::strategy::{NativeStrategy, Strategy};
use mmbot::script::{compile, engine, ScriptLimits, ScriptStrategy};
use mmbot::stats::clock::Clock;

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts").join(name)
}

fn quotes<S: Strategy>(files: &[PathBuf], config: &Config, s: S) -> Vec<QuoteSeen> {
    let mut seen = Vec::new();
    run_observed(files, config, s, Clock::instant(), &mut |q| seen.push(*q)).unwrap();
    seen
}

const TIGHT: &str = "[strategy]\ntarget_spread_pct = 0.02\nmin_order_size = \"1\"\nmax_position = \"3\"\n[risk]\nmin_spread_bps = 0.0\n[paper]\nlatency_ms = 1\n";

#[test]
fn tutorial_rhai_quotes_exactly_as_the_native_strategy() {
    let Some(files) = common::recordings("tutorial_rhai_quotes_exactly_as_the_native_strategy") else { return };
    for config in [Config::default(), Config::from_toml(TIGHT, "tight").unwrap()] {
        for f in &files {
            let one = std::slice::from_ref(f);
            let native = quotes(one, &config, NativeStrategy);
            let s = ScriptStrategy::from_file(&script("tutorial.rhai"), &Default::default(), &ScriptLimits::default())
                .unwrap();
            // On the compiled fast path (tests/script_fast.rs compares it with the interpreter).
            assert!(s.fast_path(), "{:?}", s.script().not_compiled());
            let scripted = quotes(one, &config, s);
            assert_eq!(native.len(), scripted.len(), "{}", f.display());
            for (a, b) in native.iter().zip(&scripted) {
                assert_eq!(a.quote, b.quote, "{}: quotes differ", f.display());
            }
        }
    }
}

#[test]
fn every_shipped_script_runs_clean_on_the_sample() {
    let sample = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/sample_spot_btcusdt.rec")];
    let config = Config::from_toml(TIGHT, "tight").unwrap();
    for name in ["tutorial.rhai", "inventory_skew.rhai", "avellaneda_stoikov.rhai"] {
        let s = ScriptStrategy::from_file(&script(name), &Default::default(), &ScriptLimits::default()).unwrap();
        let seen = quotes(&sample, &config, s);
        assert_eq!(seen.len(), 25, "{name}");
        assert!(seen.iter().any(|q| q.quote.bid.is_some()), "{name}: never bid");
        if name != "tutorial.rhai" {
            assert!(seen.iter().any(|q| q.quote.ask.is_some()), "{name}: never offered");
        }
    }
}

#[test]
fn errors_carry_line_and_column() {
    let e = engine(&ScriptLimits::default(), &Default::default(), None);
    let err = compile(&e, "bad.rhai", "fn quote(m) {\n    let x = ;\n}\n").err().unwrap();
    assert_eq!((err.file.as_str(), err.line), ("bad.rhai", 2), "{err}");
    assert!(err.to_string().starts_with("bad.rhai:2:"), "{err}");
    let err = compile(&e, "none.rhai", "fn other(m) { 1 }").err().unwrap();
    assert!(err.message.contains("fn quote(m)"), "{err}");
    // A runtime error: its position, and quotes pulled for that event.
    let script = compile(&e, "rt.rhai", "fn quote(m) {\n  let q = #{};\n  q.bid = m.no_such_field;\n  q\n}\n").unwrap();
    let mut s = ScriptStrategy::new(e, script);
    let err = s.eval(Default::default()).err().unwrap();
    assert_eq!(err.line, 3, "{err}");
}

#[test]
fn the_operation_cap_stops_an_infinite_loop() {
    let limits = ScriptLimits { max_operations: 10_000, ..ScriptLimits::default() };
    let e = engine(&limits, &Default::default(), None);
    let script = compile(&e, "loop.rhai", "fn quote(m) {\n  loop { }\n}\n").unwrap();
    let mut s = ScriptStrategy::new(e, script);
    let t = std::time::Instant::now();
    let err = s.eval(Default::default()).err().unwrap();
    assert!(err.message.to_lowercase().contains("too many operations"), "{err}");
    assert!(t.elapsed().as_secs() < 5);
    // Strings and arrays are capped too.
    let e = engine(&limits, &Default::default(), None);
    let big = compile(&e, "big.rhai", "fn quote(m) { let s = \"x\"; for i in 0..20 { s += s; } s }").unwrap();
    assert!(ScriptStrategy::new(e, big).eval(Default::default()).is_err());
}

#[test]
fn parameters_come_from_the_config_table() {
    let mut params = mmbot::script::Params::new();
    params.insert("edge".into(), 2.5);
    let e = engine(&ScriptLimits::default(), &params, None);
    let src = "fn quote(m) { #{ bid: m.mid - param(\"edge\", 1.0), ask: m.mid + param(\"other\", 1.0) } }";
    let mut s = ScriptStrategy::new(e, compile(&e_dummy(), "p.rhai", src).unwrap());
    let m = mmbot::script::MarketState { mid: 100.0, ..Default::default() };
    let out = s.eval(m).unwrap();
    let map = out.cast::<rhai::Map>();
    assert_eq!(map["bid"].as_float().unwrap(), 97.5);
    assert_eq!(map["ask"].as_float().unwrap(), 101.0);
}

fn e_dummy() -> rhai::Engine {
    engine(&ScriptLimits::default(), &Default::default(), None)
}

/// The operation cap applies to each call, not to the sum of calls (the
/// runtime state is reused between calls).
#[test]
fn the_operation_cap_is_per_call() {
    let limits = ScriptLimits { max_operations: 2_000, ..ScriptLimits::default() };
    let e = engine(&limits, &Default::default(), None);
    let script =
        compile(&e, "work.rhai", "fn quote(m) { let s = 0.0; for i in 0..100 { s += 1.0; } bid(m.mid - s, 1.0); }")
            .unwrap();
    let mut s = ScriptStrategy::new(e, script);
    for _ in 0..200 {
        let _ = s
            .eval(mmbot::script::MarketState { mid: 1000.0, ..Default::default() })
            .expect("each call is under the cap");
    }
}

#[test]
fn script_check_reports_ranges_or_the_error_position() {
    let run = |path: &Path| {
        std::process::Command::new(env!("CARGO_BIN_EXE_mmbot")).args(["script", "check"]).arg(path).output().unwrap()
    };
    let o = run(&script("tutorial.rhai"));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("runtime errors 0") && out.contains("cost per call: p50"), "{out}");
    assert!(out.contains("compiled to the fast path"), "{out}");
    let dir = common::temp_dir("script-check");
    let bad = dir.join("bad.rhai");
    std::fs::write(&bad, "fn quote(m) {\n  let x = 1 +;\n}\n").unwrap();
    let o = run(&bad);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("bad.rhai:2:"), "{}", String::from_utf8_lossy(&o.stderr));
    let rt = dir.join("rt.rhai");
    std::fs::write(&rt, "fn quote(m) {\n  bid(m.mid, m.nope);\n}\n").unwrap();
    let o = run(&rt);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("rt.rhai:2:16"), "{}", String::from_utf8_lossy(&o.stderr));
    // Says why it is not compiled.
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("interpreted (not compiled: m.nope (no such getter)"), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Hot reload while quoting: good -> bad -> good -> failing at run time.
/// A version that does not compile is refused (with its position) and the
/// last good one keeps quoting; a good one is active well under a second
/// after it is saved; one that compiles but keeps failing on live data is
/// reverted to the one before it.
#[test]
fn hot_reload_good_bad_good_and_revert() {
    use mmbot::hot::advice::Advice;
    use mmbot::hot::features::Features;
    use mmbot::hot::fixed::{Qty, SCALE};
    use mmbot::hot::msg::Level;
    use mmbot::hot::strategy::{StrategyInput, StrategyParams};
    use mmbot::script::reload::{watch, ReloadEvent};
    use std::time::{Duration, Instant};

    let dir = common::temp_dir("reload");
    let path = dir.join("live.rhai");
    std::fs::write(&path, "fn quote(m) { bid(m.mid - 1.0, 1.0); }").unwrap();
    let limits = ScriptLimits::default();
    let mut s = ScriptStrategy::from_file(&path, &Default::default(), &limits).unwrap();
    let (events_tx, events) = std::sync::mpsc::channel();
    let (_watcher, reloadable) = watch(path.clone(), s.script().hash, limits, Default::default(), move |ev| {
        let _ = events_tx.send(ev);
    });
    s.attach_reload(reloadable);

    // Live data around 2000 (the test-run sample sits at 100).
    let f = Features {
        best_bid: Level::new(1999 * SCALE, SCALE),
        best_ask: Level::new(2001 * SCALE, SCALE),
        mid: 2000.0,
        ..Features::default()
    };
    let params = StrategyParams { target_spread_pct: 0.1, min_order_size: Qty(SCALE), max_position: Qty(10 * SCALE) };
    let input = StrategyInput {
        features: &f,
        position: Qty(0),
        advice: Advice::neutral(),
        params: &params,
        scope: Default::default(),
    };
    let bid = |s: &mut ScriptStrategy| s.decide(&input).bid.map(|b| b.price);
    assert_eq!(bid(&mut s), Some(1999.0));

    // Bad: refused with file:line:col, the old version keeps quoting.
    std::fs::write(&path, "fn quote(m) {\n  bid(m.mid - ;\n}\n").unwrap();
    match events.recv_timeout(Duration::from_secs(5)).expect("a reload event") {
        ReloadEvent::Refused(e) => assert!(e.to_string().contains("live.rhai:2:"), "{e}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(bid(&mut s), Some(1999.0));

    // An infinite loop: stopped by the operation cap in the test run, refused.
    std::fs::write(&path, "fn quote(m) {\n  loop { }\n}\n").unwrap();
    match events.recv_timeout(Duration::from_secs(5)).expect("a reload event") {
        ReloadEvent::Refused(e) => assert!(e.message.to_lowercase().contains("too many operations"), "{e}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(bid(&mut s), Some(1999.0));

    // Good again: active in well under a second.
    let saved = Instant::now();
    std::fs::write(&path, "fn quote(m) { bid(m.mid - 3.0, 1.0); }").unwrap();
    while bid(&mut s) != Some(1997.0) {
        assert!(saved.elapsed() < Duration::from_secs(5), "the new version never became active");
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(saved.elapsed() < Duration::from_secs(1), "save to active took {:?}", saved.elapsed());

    // Passes the test run, fails on live data: pulled per event, then reverted.
    std::fs::write(&path, "fn quote(m) { if m.best_bid > 1000.0 { bid(m.nope, 1.0); } else { bid(m.mid, 1.0); } }")
        .unwrap();
    let swapped = Instant::now();
    while s.stats().reloads < 2 {
        assert!(swapped.elapsed() < Duration::from_secs(5));
        let _ = bid(&mut s);
        std::thread::sleep(Duration::from_millis(5));
    }
    for _ in 0..mmbot::script::REVERT_AFTER {
        let _ = bid(&mut s);
    }
    assert_eq!(s.stats().reverts, 1);
    assert_eq!(bid(&mut s), Some(1997.0));
    // The failing version (m.nope) ran interpreted; the one reverted to is compiled.
    assert!(s.fast_path());
    let _ = std::fs::remove_dir_all(&dir);
}

/// Reload while a paced paper run is live (threads): good -> bad -> good.
/// The run finishes on the last good version, and says so.
#[test]
fn reload_during_a_live_paper_run() {
    use std::time::Duration;
    let dir = common::temp_dir("reload-live");
    let path = dir.join("live.rhai");
    std::fs::write(&path, "fn quote(m) { print(\"hello from the script\"); bid(m.best_bid - 1.0, m.min_order_size); }")
        .unwrap();
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/sample_spot_btcusdt.rec");
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_mmbot"))
        .args(["replay", sample.to_str().unwrap(), "--speed", "0.5", "--script", path.to_str().unwrap()])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(400));
    std::fs::write(&path, "fn quote(m) {\n  bid(m.best_bid - ;\n}\n").unwrap();
    std::thread::sleep(Duration::from_millis(400));
    let good = "fn quote(m) { bid(m.best_bid - 2.0, m.min_order_size); }";
    std::fs::write(&path, good).unwrap();
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("refused") && err.contains("live.rhai:2:"), "{err}");
    assert!(err.contains("script: hello from the script"), "{err}");
    let hash = mmbot::script::fnv1a(good.as_bytes());
    assert!(err.contains(&format!("reloaded (fnv1a {hash:016x}), compiled")), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Several versions saved while no event arrives (e.g. the book is
/// unsynced): the next event runs the newest, not the oldest queued.
#[test]
fn the_newest_saved_version_wins() {
    use mmbot::hot::advice::Advice;
    use mmbot::hot::features::Features;
    use mmbot::hot::fixed::{Qty, SCALE};
    use mmbot::hot::msg::Level;
    use mmbot::hot::strategy::{StrategyInput, StrategyParams};
    use mmbot::script::reload::{watch, ReloadEvent};
    use std::time::Duration;

    let dir = common::temp_dir("reload-newest");
    let path = dir.join("v.rhai");
    let version = |n: u32| format!("fn quote(m) {{ bid(m.mid - {n}.0, 1.0); }}");
    std::fs::write(&path, version(0)).unwrap();
    let limits = ScriptLimits::default();
    let mut s = ScriptStrategy::from_file(&path, &Default::default(), &limits).unwrap();
    let (events_tx, events) = std::sync::mpsc::channel();
    let (_w, reloadable) = watch(path.clone(), s.script().hash, limits, Default::default(), move |ev| {
        let _ = events_tx.send(ev);
    });
    s.attach_reload(reloadable);
    for n in 1..=6 {
        std::fs::write(&path, version(n)).unwrap();
        // Wait for the watcher to take this version before saving the next.
        match events.recv_timeout(Duration::from_secs(5)).unwrap() {
            ReloadEvent::Loaded { .. } => {}
            other => panic!("{other:?}"),
        }
    }
    let f = Features {
        best_bid: Level::new(99 * SCALE, SCALE),
        best_ask: Level::new(101 * SCALE, SCALE),
        mid: 100.0,
        ..Features::default()
    };
    let params = StrategyParams { target_spread_pct: 0.1, min_order_size: Qty(SCALE), max_position: Qty(10 * SCALE) };
    let input = StrategyInput {
        features: &f,
        position: Qty(0),
        advice: Advice::neutral(),
        params: &params,
        scope: Default::default(),
    };
    assert_eq!(s.decide(&input).bid.map(|b| b.price), Some(94.0), "not the newest version");
    let _ = std::fs::remove_dir_all(&dir);
}

//! `mmbot script test FILE`: a script's own tests, run in the interpreter.
//!
//! A test is a script function `fn test_*()` with no parameters. Inside it,
//! besides everything a strategy script has, the runner registers:
//! * `assert(cond)` and `assert(cond, "message")`;
//! * `assert_eq(a, b)` (numbers compare by value, INT or FLOAT alike;
//!   anything else by its printed form) and `assert_near(a, b, tol)`;
//! * `quote_at(state)`: calls the script's own `quote(m)` on a hand-built
//!   [`MarketState`] and returns what `quote` returned (a map, `"pull"` or
//!   `()`; quotes set with `bid()`/`ask()`/`pull()` come back as the same
//!   map, with `bids`/`asks` arrays of `[price, size]` when there are
//!   several levels). `state` is a map whose keys are getter names of `m`; keys left
//!   out take the values of [`reload::sample_state`] (the state a reload is
//!   test-run on), except that `mid`, `spread_bps` and `microprice` follow
//!   `best_bid`/`best_ask`/`bid_qty`/`ask_qty` when those are given and
//!   they are not. An unknown key, or a value of the wrong type, is an error
//!   naming the key.
//!
//! The runner ([`run_tests`]) compiles the file as a strategy first (it
//! must define `fn quote(m)`), then runs each test in a fresh scope, in the
//! order they appear in the file, and returns one [`TestOutcome`] each: a
//! failing assert or a runtime error keeps its file:line:col. It prints
//! nothing itself (the CLI does), so other tools can run it too.
//!
//! A test may loop and call `quote_at` many times, so its operation cap is
//! 1000 times the hot path's `[script] max_operations` (still finite: a
//! test that never ends is stopped and reported, not waited on).

use std::path::Path;
use std::sync::{Arc, Mutex};

use rhai::{Dynamic, EvalAltResult, Map, NativeCallContext, Position, Scope};

use crate::hot::strategy::{Decision, SideIntent};
use crate::script::{api, compile, engine, reload, MarketState, Params, ScriptError, ScriptLimits};

/// How one test ended.
#[derive(Debug, Clone, PartialEq)]
pub struct TestOutcome {
    /// The function's name (`test_...`).
    pub name: String,
    /// Where it is defined (1-based line of its `fn`).
    pub line: usize,
    /// `Err`: the failing assert or runtime error, with file:line:col.
    pub result: Result<(), ScriptError>,
    /// What it printed (`print`/`debug`), in order.
    pub printed: Vec<String>,
}

/// Every test of one file.
#[derive(Debug, Clone, PartialEq)]
pub struct TestRun {
    pub file: String,
    pub outcomes: Vec<TestOutcome>,
}

impl TestRun {
    pub fn passed(&self) -> usize {
        self.outcomes.iter().filter(|o| o.result.is_ok()).count()
    }

    pub fn failed(&self) -> usize {
        self.outcomes.len() - self.passed()
    }
}

/// Why tests could not run at all.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TestError {
    /// The file does not compile as a strategy script.
    #[error("{0}")]
    Script(#[from] ScriptError),
    #[error("{file}: no tests: define functions named test_*() with no parameters (README, Strategy scripts)")]
    NoTests { file: String },
}

/// Runs every `fn test_*()` of the script at `path` with `params` as
/// `[strategy.params]` and `limits` as the sandbox caps.
pub fn run_tests(path: &Path, params: &Params, limits: &ScriptLimits) -> Result<TestRun, TestError> {
    let file = path.display().to_string();
    let source = std::fs::read_to_string(path)
        .map_err(|e| ScriptError::new(&file, Position::NONE, format!("cannot read the script: {e}")))?;
    run_tests_in(&file, &source, params, limits)
}

/// [`run_tests`] on source text (`file` names it in messages).
pub fn run_tests_in(file: &str, source: &str, params: &Params, limits: &ScriptLimits) -> Result<TestRun, TestError> {
    let test_limits = ScriptLimits { max_operations: limits.max_operations.saturating_mul(1000), ..*limits };
    let mut engine = engine(&test_limits, params, None);
    // As a strategy first: the same refusal `script check` and a reload give.
    compile(&engine, file, source)?;
    let printed = Arc::new(Mutex::new(Vec::<String>::new()));
    let (p1, p2) = (printed.clone(), printed.clone());
    engine.on_print(move |s| p1.lock().unwrap_or_else(|p| p.into_inner()).push(s.to_string()));
    engine.on_debug(move |s, _, _| p2.lock().unwrap_or_else(|p| p.into_inner()).push(s.to_string()));
    register(&mut engine);
    let ast = engine.compile(source).map_err(|e| ScriptError::new(file, e.position(), e.err_type().to_string()))?;

    let mut tests: Vec<(usize, String)> = ast
        .iter_functions()
        .filter(|f| f.name.starts_with("test_") && f.params.is_empty())
        .map(|f| (defined_at(source, f.name), f.name.to_string()))
        .collect();
    tests.sort();
    if tests.is_empty() {
        return Err(TestError::NoTests { file: file.to_string() });
    }
    let outcomes = tests
        .into_iter()
        .map(|(offset, name)| {
            printed.lock().unwrap_or_else(|p| p.into_inner()).clear();
            let mut scope = Scope::new();
            crate::script::output::reset();
            let result =
                engine.call_fn::<Dynamic>(&mut scope, &ast, &name, ()).map(|_| ()).map_err(|e| runtime(file, &e));
            crate::script::output::reset();
            let printed = std::mem::take(&mut *printed.lock().unwrap_or_else(|p| p.into_inner()));
            TestOutcome { name, line: source[..offset.min(source.len())].lines().count().max(1), result, printed }
        })
        .collect();
    Ok(TestRun { file: file.to_string(), outcomes })
}

/// A runtime error placed where it happened (inside the test, or inside
/// `quote` when `quote_at` called it), not at the outer call.
fn runtime(file: &str, e: &EvalAltResult) -> ScriptError {
    let mut inner = e;
    while let EvalAltResult::ErrorInFunctionCall(_, _, next, _) = inner {
        inner = next;
    }
    match inner {
        // A failed assert (or quote_at refusing a state): its own words,
        // without Rhai's "Runtime error: ... (line, position)" around them.
        EvalAltResult::ErrorRuntime(message, pos) => ScriptError::new(file, *pos, message.to_string()),
        _ => ScriptError::runtime(file, e),
    }
}

/// Byte offset of `fn name(` in the source (its end when not found, so
/// such a test sorts last).
fn defined_at(source: &str, name: &str) -> usize {
    let mut from = 0;
    while let Some(i) = source[from..].find(name) {
        let at = from + i;
        let before = source[..at].trim_end();
        let after = source[at + name.len()..].trim_start();
        if before.ends_with("fn") && after.starts_with('(') {
            return at;
        }
        from = at + name.len();
    }
    source.len()
}

fn fail(ctx: &NativeCallContext, message: String) -> Box<EvalAltResult> {
    Box::new(EvalAltResult::ErrorRuntime(message.into(), ctx.call_position()))
}

/// A number as f64 (INT or FLOAT), else `None`.
fn number(v: &Dynamic) -> Option<f64> {
    v.as_float().ok().or_else(|| v.as_int().ok().map(|i| i as f64))
}

/// The test helpers: assert, assert_eq, assert_near, quote_at.
fn register(engine: &mut rhai::Engine) {
    engine.register_fn("assert", |ctx: NativeCallContext, cond: bool| -> Result<(), Box<EvalAltResult>> {
        if cond {
            Ok(())
        } else {
            Err(fail(&ctx, "assertion failed".into()))
        }
    });
    engine.register_fn(
        "assert",
        |ctx: NativeCallContext, cond: bool, message: &str| -> Result<(), Box<EvalAltResult>> {
            if cond {
                Ok(())
            } else {
                Err(fail(&ctx, format!("assertion failed: {message}")))
            }
        },
    );
    engine.register_fn("assert_eq", |ctx: NativeCallContext, a: Dynamic, b: Dynamic| {
        let same = match (number(&a), number(&b)) {
            (Some(x), Some(y)) => x == y,
            _ => a.type_name() == b.type_name() && a.to_string() == b.to_string(),
        };
        if same {
            Ok(())
        } else {
            Err(fail(&ctx, format!("assert_eq failed: left {a:?}, right {b:?}")))
        }
    });
    engine.register_fn("assert_near", |ctx: NativeCallContext, a: Dynamic, b: Dynamic, tol: Dynamic| {
        let (Some(x), Some(y), Some(t)) = (number(&a), number(&b), number(&tol)) else {
            return Err(fail(&ctx, format!("assert_near takes three numbers, got {a:?}, {b:?}, {tol:?}")));
        };
        if (x - y).abs() <= t {
            Ok(())
        } else {
            Err(fail(&ctx, format!("assert_near failed: {x} and {y} differ by {} (more than {t})", (x - y).abs())))
        }
    });
    engine.register_fn("quote_at", |ctx: NativeCallContext, state: Map| -> Result<Dynamic, Box<EvalAltResult>> {
        let m = state_from(&state).map_err(|message| fail(&ctx, message))?;
        crate::script::output::reset();
        let out = ctx.call_fn::<Dynamic>("quote", (m,));
        let set = crate::script::output::take().map(|i| i.decision);
        let out = out?;
        Ok(match set {
            Some(d) => decision_map(&d),
            None => out,
        })
    });
}

/// Quotes set with bid()/ask()/pull() as the map (or "pull") quote_at returns.
fn decision_map(d: &Decision) -> Dynamic {
    if d.pull {
        return Dynamic::from("pull");
    }
    let mut map = Map::new();
    if let Some(b) = d.bid {
        map.insert("bid".into(), Dynamic::from_float(b.price));
        map.insert("bid_size".into(), Dynamic::from_float(b.size));
    }
    if let Some(a) = d.ask {
        map.insert("ask".into(), Dynamic::from_float(a.price));
        map.insert("ask_size".into(), Dynamic::from_float(a.size));
    }
    // A ladder (bid()/ask() called more than once): every level, best
    // first, as the `bids`/`asks` output form has them.
    if d.deeper.count() > 0 {
        let ladder = |best: Option<SideIntent>, deeper: &[Option<SideIntent>]| {
            let levels = best.into_iter().chain(deeper.iter().flatten().copied());
            Dynamic::from_array(
                levels
                    .map(|l| Dynamic::from_array(vec![Dynamic::from_float(l.price), Dynamic::from_float(l.size)]))
                    .collect(),
            )
        };
        map.insert("bids".into(), ladder(d.bid, &d.deeper.bids));
        map.insert("asks".into(), ladder(d.ask, &d.deeper.asks));
    }
    Dynamic::from_map(map)
}

/// Words a string getter can hold (the advisor's states).
fn words(key: &str) -> &'static [&'static str] {
    match key {
        "spread_state" => &["narrow", "normal", "wide"],
        "volatility_state" => &["low", "medium", "high"],
        "direction" => &["up", "down", "sideways", "neutral"],
        _ => &[],
    }
}

/// Sets one float getter from a map value.
fn float_of(key: &str, v: &Dynamic) -> Result<f64, String> {
    if let Some(x) = number(v) {
        return Ok(x);
    }
    if let Ok(b) = v.as_bool() {
        return Ok(if b { 1.0 } else { 0.0 });
    }
    Err(format!("quote_at: `{key}` must be a number, not {} ({v})", v.type_name()))
}

/// Sets one string getter from a map value (one of its known words).
fn word_of(key: &str, v: &Dynamic) -> Result<&'static str, String> {
    let allowed = words(key);
    let text = v.clone().into_immutable_string().map_err(|t| format!("quote_at: `{key}` must be a string, not {t}"))?;
    allowed
        .iter()
        .copied()
        .find(|w| *w == text.as_str())
        .ok_or_else(|| format!("quote_at: `{key}` = {:?} is not one of {}", text.as_str(), allowed.join(", ")))
}

/// Generated from `market_fields!`: one arm per getter, so a getter added
/// to that list is settable from quote_at with no change here.
macro_rules! set_field {
    ($m:ident, $key:ident, $v:ident ; $($f:ident),* ; $($s:ident),*) => {
        match $key {
            $( stringify!($f) => $m.$f = float_of($key, $v)?, )*
            $( stringify!($s) => $m.$s = word_of($key, $v)?, )*
            _ => return Err(unknown_key($key)),
        }
    };
}

macro_rules! field_names {
    (; $($f:ident),* ; $($s:ident),*) => {
        vec![$(stringify!($f),)* $(stringify!($s),)*]
    };
}

/// Every key quote_at accepts (the getters of `m`), in the API's order.
pub fn state_keys() -> Vec<&'static str> {
    api::market_fields!(field_names!())
}

fn unknown_key(key: &str) -> String {
    format!("quote_at: unknown key `{key}`: the state's keys are the getters of m ({})", state_keys().join(", "))
}

/// The state quote_at passes to quote: the sample state with `state`'s
/// keys set (see the module docs for what follows best_bid/best_ask).
pub fn state_from(state: &Map) -> Result<MarketState, String> {
    let mut m = reload::sample_state();
    for (key, v) in state {
        let key = key.as_str();
        api::market_fields!(set_field!(m, key, v));
    }
    let given = |k: &str| state.contains_key(k);
    if given("best_bid") || given("best_ask") || given("bid_qty") || given("ask_qty") {
        let (bb, ba) = (m.best_bid, m.best_ask);
        if !given("mid") {
            m.mid = (bb + ba) / 2.0;
        }
        if !given("spread_bps") && m.mid != 0.0 {
            m.spread_bps = (ba - bb) / m.mid * 1e4;
        }
        if !given("microprice") {
            let q = m.bid_qty + m.ask_qty;
            m.microprice = if q > 0.0 { (bb * m.ask_qty + ba * m.bid_qty) / q } else { m.mid };
        }
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(source: &str) -> Result<TestRun, TestError> {
        run_tests_in("t.rhai", source, &Params::new(), &ScriptLimits::default())
    }

    const QUOTE: &str = "fn quote(m) { #{ bid: m.mid - param(\"half\", 1.0), ask: m.mid + 1.0 } }\n";

    #[test]
    fn passing_and_failing_tests_keep_their_order_and_places() {
        let src = format!(
            "{QUOTE}fn test_b() {{\n  let q = quote_at(#{{ mid: 50.0 }});\n  assert_eq(q.bid, 49);\n}}\n\
             fn test_a() {{\n  assert(1 > 2, \"one is not above two\");\n}}\n"
        );
        let r = run(&src).unwrap();
        let names: Vec<_> = r.outcomes.iter().map(|o| o.name.as_str()).collect();
        assert_eq!(names, ["test_b", "test_a"]);
        assert_eq!((r.passed(), r.failed()), (1, 1));
        let e = r.outcomes[1].result.clone().unwrap_err();
        assert_eq!((e.line, e.column), (7, 3), "{e}");
        assert_eq!(e.message, "assertion failed: one is not above two");
        assert_eq!(r.outcomes[1].line, 6);
    }

    #[test]
    fn quote_at_names_an_unknown_key_and_derives_the_mid() {
        let m = state_from(&Map::from_iter([("best_bid".into(), Dynamic::from(10.0)), ("best_ask".into(), 12.into())]))
            .unwrap();
        assert_eq!((m.mid, m.spread_bps), (11.0, 2.0 / 11.0 * 1e4));
        let e = state_from(&Map::from_iter([("bestbid".into(), Dynamic::from(1.0))])).unwrap_err();
        assert!(e.contains("unknown key `bestbid`") && e.contains("best_bid"), "{e}");
        let e = state_from(&Map::from_iter([("direction".into(), Dynamic::from("north"))])).unwrap_err();
        assert!(e.contains("`direction`") && e.contains("sideways"), "{e}");
        assert!(state_keys().contains(&"time_s"));
    }

    #[test]
    fn a_ladder_comes_back_as_bids_and_asks_arrays() {
        let level = |price, size| Some(SideIntent { price, size });
        let mut d = Decision { bid: level(99.0, 1.0), ask: level(101.0, 1.0), ..Decision::default() };
        d.deeper.bids[0] = level(98.0, 2.0);
        let out = decision_map(&d);
        let map = out.read_lock::<Map>().unwrap();
        assert_eq!(map["bid"].as_float(), Ok(99.0));
        assert_eq!(map["bids"].to_string(), "[[99.0, 1.0], [98.0, 2.0]]");
        assert_eq!(map["asks"].to_string(), "[[101.0, 1.0]]");
        assert_eq!(decision_map(&Decision { pull: true, ..d }).to_string(), "pull");
    }

    #[test]
    fn a_file_without_tests_or_quote_is_refused() {
        assert!(matches!(run(QUOTE), Err(TestError::NoTests { .. })));
        assert!(matches!(run("fn test_x() {}"), Err(TestError::Script(_))));
    }
}

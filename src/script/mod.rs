//! Rhai strategy scripts: spread rules users edit without recompiling.
//!
//! A script defines `fn quote(m)`. `m` is a [`MarketState`] (a registered
//! type with getters, not a map built per call, so a call costs what the
//! script does). The function returns one of:
//! * a map with prices: `#{ bid: .., ask: .., bid_size: .., ask_size: .. }`;
//! * a map with distances from the mid instead of prices: `bid_spread`,
//!   `ask_spread`;
//! * `"pull"` or `()` to pull quotes.
//!
//! A side left out of the map is not quoted. Whatever it returns goes through
//! the same fixed-point guard as the native strategy, so a script can only
//! narrow what the limits allow.
//!
//! Sandbox: Rhai scripts have no file, network or process access (no such
//! functions are registered; `import` is compiled out with `no_module`).
//! Operations, call depth, string, array and map sizes are capped from
//! config; `print`/`debug` go to a ring the caller drains to its log, never
//! written from the hot thread. A runtime error, or a cap hit, pulls quotes
//! for that event and is counted; the error keeps its line and column.
//!
//! Evaluation follows the measured pitfalls in DESIGN.md:
//! * the script's functions are merged with a `quote(m)` call and evaluated
//!   with `eval_ast_with_scope`, cheaper than `call_fn`;
//! * the scope is rewound to its base length before each call, so variables
//!   cannot pile up;
//! * `[strategy.params]` is read with `param("name", default)`, a registered
//!   function (Rhai functions cannot see the caller's scope, so a scope
//!   constant would be invisible inside `fn quote`).
//!
//! Most scripts never reach the interpreter on the hot path: [`compile`]
//! also turns `fn quote(m)` into closures ([`fast`]), with the same results
//! to the bit, and [`ScriptStrategy`] runs that form when there is one. A
//! script using anything the fast path does not cover runs interpreted, as
//! before; [`ScriptStrategy::fast_path`] and the strategy's name
//! (`..., compiled)` or `..., interpreted)`) say which.

pub mod api;
pub mod fast;
pub mod reload;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rhai::{Dynamic, Engine, Map, Scope, AST};

use crate::hot::strategy::{Decision, Explain, SideIntent, Strategy, StrategyInput};
use crate::ring::{ring, Consumer, Producer};

pub use api::MarketState;
pub use fast::{FastQuote, Fault, NotCompiled, Quoted};

/// Sandbox caps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScriptLimits {
    pub max_operations: u64,
    pub max_call_levels: usize,
    pub max_string_size: usize,
    pub max_array_size: usize,
    pub max_map_size: usize,
}

impl Default for ScriptLimits {
    fn default() -> Self {
        Self {
            max_operations: 50_000,
            max_call_levels: 16,
            max_string_size: 1024,
            max_array_size: 256,
            max_map_size: 64,
        }
    }
}

/// A script problem, with its place in the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}:{column}: {message}")]
pub struct ScriptError {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl ScriptError {
    fn new(file: &str, pos: rhai::Position, message: impl Into<String>) -> Self {
        Self {
            file: file.to_string(),
            line: pos.line().unwrap_or(0),
            column: pos.position().unwrap_or(0),
            message: message.into(),
        }
    }

    /// A runtime error, placed where it happened inside the script rather
    /// than at the `quote(m)` call that Rhai wraps it in.
    pub fn runtime(file: &str, e: &rhai::EvalAltResult) -> Self {
        let mut inner = e;
        while let rhai::EvalAltResult::ErrorInFunctionCall(_, _, next, _) = inner {
            inner = next;
        }
        Self::new(file, inner.position(), inner.to_string())
    }
}

/// One line a script printed (`print` or `debug`), for the log.
#[derive(Debug, Clone, Copy)]
pub struct ScriptLine {
    pub len: u8,
    pub bytes: [u8; 120],
}

impl ScriptLine {
    fn new(s: &str) -> Self {
        let mut line = Self { len: 0, bytes: [0; 120] };
        let n = s.len().min(line.bytes.len());
        // Cut on a char boundary so the text stays valid UTF-8.
        let n = (0..=n).rev().find(|&i| s.is_char_boundary(i)).unwrap_or(0);
        line.bytes[..n].copy_from_slice(&s.as_bytes()[..n]);
        line.len = n as u8;
        line
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes[..self.len as usize]).unwrap_or("")
    }
}

/// Consecutive runtime errors after which a reloaded version is reverted.
pub const REVERT_AFTER: u32 = 10;

/// Script counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScriptStats {
    pub calls: u64,
    pub errors: u64,
    /// New versions swapped in.
    pub reloads: u64,
    /// Times a failing version was replaced by the one before it.
    pub reverts: u64,
    /// Outputs of the wrong shape (not a map, "pull" or ()).
    pub bad_outputs: u64,
}

/// User parameters from `[strategy.params]`.
pub type Params = std::collections::BTreeMap<String, f64>;

/// Builds the sandboxed engine: caps set, `param(name, default)` reading
/// `params`, output routed to `out`.
pub fn engine(limits: &ScriptLimits, params: &Params, out: Option<Producer<ScriptLine>>) -> Engine {
    let mut engine = Engine::new();
    engine
        .set_max_operations(limits.max_operations)
        .set_max_call_levels(limits.max_call_levels)
        .set_max_string_size(limits.max_string_size)
        .set_max_array_size(limits.max_array_size)
        .set_max_map_size(limits.max_map_size)
        .set_max_expr_depths(64, 32);
    api::register(&mut engine);
    let params = std::sync::Arc::new(params.clone());
    let int_params = params.clone();
    engine
        .register_fn("param", move |name: &str, default: f64| -> f64 { params.get(name).copied().unwrap_or(default) });
    // `param("levels", 3)`: an integer default is taken as a FLOAT (every
    // parameter is a number in [strategy.params]; the value is always FLOAT).
    engine.register_fn("param", move |name: &str, default: i64| -> f64 {
        int_params.get(name).copied().unwrap_or(default as f64)
    });
    // print/debug push to a lock-free ring (never blocking, drops counted);
    // a side thread drains it to the log.
    let out = out.map(std::sync::Arc::new);
    let (o1, o2) = (out.clone(), out);
    engine.on_print(move |s| {
        if let Some(p) = &o1 {
            p.push(ScriptLine::new(s));
        }
    });
    engine.on_debug(move |s, _, _| {
        if let Some(p) = &o2 {
            p.push(ScriptLine::new(s));
        }
    });
    engine
}

/// A compiled script: its functions merged with the `quote(m)` call, and
/// `fn quote(m)` compiled to the fast path when it can be.
#[derive(Clone)]
pub struct CompiledScript {
    pub path: PathBuf,
    /// FNV-1a 64 of the source, for reports.
    pub hash: u64,
    ast: AST,
    /// The fast form, or why the script runs interpreted. Built where the
    /// script is compiled (start-up, or the reload thread), never on the
    /// hot thread.
    fast: Result<Arc<FastQuote>, NotCompiled>,
    /// The strategy's name for each path, made here so that a swap on the
    /// hot thread formats nothing.
    names: [String; 2],
}

impl CompiledScript {
    /// Runs `quote(m)` once in a fresh scope (the reload test run), in the interpreter.
    pub fn try_run(&self, engine: &Engine, m: MarketState) -> Result<Dynamic, ScriptError> {
        let mut scope = Scope::new();
        scope.push("m", m);
        api::reset_output();
        let r = engine.eval_ast_with_scope::<Dynamic>(&mut scope, &self.ast);
        api::reset_output();
        r.map_err(|e| ScriptError::runtime(&self.path.display().to_string(), &e))
    }

    /// The script's AST (its functions and the `quote(m)` call).
    pub fn ast(&self) -> &AST {
        &self.ast
    }

    /// The compiled form of `fn quote(m)`, if the script has one.
    pub fn fast(&self) -> Option<&FastQuote> {
        self.fast.as_deref().ok()
    }

    /// Why the script runs interpreted (`None` when it is compiled).
    pub fn not_compiled(&self) -> Option<&NotCompiled> {
        self.fast.as_ref().err()
    }

    /// The name reports use: path, content hash and which path runs it.
    pub fn name(&self, fast: bool) -> &str {
        &self.names[(fast && self.fast.is_ok()) as usize]
    }

    /// (Re)builds the fast form for `engine`: its caps decide what is
    /// accepted and its `param()` gives the parameter values.
    fn bind(&mut self, engine: &Engine) {
        self.fast = fast::compile(engine, &self.ast).and_then(|f| agree(engine, &self.ast, &f).map(|()| Arc::new(f)));
        let base = format!("{} (fnv1a {:016x}", self.path.display(), self.hash);
        self.names = [format!("{base}, interpreted)"), format!("{base}, compiled)")];
    }
}

/// States the fast form is checked on against the interpreter before it is
/// used: the reload sample, long at the limit, short, and all zeros.
fn check_states() -> [MarketState; 4] {
    let s = reload::sample_state();
    [
        s,
        MarketState { position: s.max_position, ..s },
        MarketState { position: -s.max_position, spread_state: "wide", direction: "up", ..s },
        MarketState::default(),
    ]
}

/// What the interpreter decides for one state: `Ok(None)` for an output of
/// the wrong shape, `Err` with the message of a runtime error.
pub fn interpret(engine: &Engine, ast: &AST, m: MarketState) -> Result<Option<Decision>, ScriptError> {
    let mut scope = Scope::new();
    scope.push("m", m);
    api::reset_output();
    let r = engine.eval_ast_with_scope::<Dynamic>(&mut scope, ast);
    let out = api::take_output();
    r.map(|v| out.or_else(|| decision_from(&v, &m, m.min_order_size))).map_err(|e| ScriptError::runtime("", &e))
}

/// Both paths, bit for bit, on [`check_states`]: a last guard against a
/// fast-path bug reaching the market (the tests compare far more states).
/// Only scripts that compiled run here, so this cannot loop or print.
fn agree(engine: &Engine, ast: &AST, f: &FastQuote) -> Result<(), NotCompiled> {
    let mut frame = fast::Frame::boxed();
    for m in check_states() {
        let slow = interpret(engine, ast, m);
        let quick = f.run(&m, &mut frame);
        let same = match (&slow, &quick) {
            (Ok(Some(a)), Ok(Quoted::Decision(b))) => same_decision(a, b),
            (Ok(None), Ok(Quoted::BadOutput)) => true,
            (Err(a), Err(b)) => a.message == ScriptError::runtime("", &b.to_rhai()).message,
            _ => false,
        };
        if !same {
            return Err(NotCompiled {
                reason: format!("the compiled form disagreed with the interpreter ({slow:?} vs {quick:?})"),
                pos: rhai::Position::NONE,
            });
        }
    }
    Ok(())
}

/// Equal decisions, prices and sizes compared bit for bit (NaN included).
pub fn same_decision(a: &Decision, b: &Decision) -> bool {
    let side = |x: &Option<SideIntent>, y: &Option<SideIntent>| match (x, y) {
        (None, None) => true,
        (Some(x), Some(y)) => x.price.to_bits() == y.price.to_bits() && x.size.to_bits() == y.size.to_bits(),
        _ => false,
    };
    a.pull == b.pull && side(&a.bid, &b.bid) && side(&a.ask, &b.ask) && a.explain == b.explain
}

/// FNV-1a 64: a stable content hash with no dependency.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3))
}

/// Compiles `source` (named `file` in messages) into a runnable script,
/// with the fast form of `fn quote(m)` when it has one.
pub fn compile(engine: &Engine, file: &str, source: &str) -> Result<CompiledScript, ScriptError> {
    let ast = engine.compile(source).map_err(|e| ScriptError::new(file, e.position(), e.err_type().to_string()))?;
    if !ast.iter_functions().any(|f| f.name == "quote" && f.params.len() == 1) {
        return Err(ScriptError::new(file, rhai::Position::new(1, 1), "the script must define fn quote(m)"));
    }
    let call = engine.compile("quote(m)").map_err(|e| ScriptError::new(file, e.position(), e.to_string()))?;
    let mut script = CompiledScript {
        path: PathBuf::from(file),
        hash: fnv1a(source.as_bytes()),
        ast: ast.clone_functions_only().merge(&call),
        fast: Err(NotCompiled { reason: String::new(), pos: rhai::Position::NONE }),
        names: Default::default(),
    };
    script.bind(engine);
    Ok(script)
}

/// Reads and compiles a script file.
pub fn compile_file(engine: &Engine, path: &Path) -> Result<CompiledScript, ScriptError> {
    let file = path.display().to_string();
    let source = std::fs::read_to_string(path)
        .map_err(|e| ScriptError::new(&file, rhai::Position::NONE, format!("cannot read the script: {e}")))?;
    compile(engine, &file, &source)
}

/// A [`Strategy`] that runs a Rhai script: its compiled fast form when it
/// has one, the interpreter otherwise.
pub struct ScriptStrategy {
    engine: Engine,
    script: Box<CompiledScript>,
    /// The version before the current one, to revert to.
    previous: Option<Box<CompiledScript>>,
    reload: Option<reload::Reloadable>,
    /// Consecutive runtime errors of the current version.
    failing: u32,
    scope: Scope<'static>,
    /// Scope length with only the constants pushed.
    base: usize,
    stats: ScriptStats,
    last_error: Option<ScriptError>,
    /// Runtime state and caches kept warm between calls (reset on reload).
    warm: Option<(rhai::GlobalRuntimeState, rhai::Caches)>,
    /// Use the fast form when the script has one (off only in tests and
    /// benches, to measure or compare the interpreter).
    fast_enabled: bool,
    /// Locals of the fast form, allocated once (fits every compiled script).
    frame: Box<fast::Frame>,
}

impl ScriptStrategy {
    /// `engine` from [`engine`] (its limits and parameters), `script` compiled
    /// by it or by one with the same settings. The fast form is rebuilt for
    /// `engine`, so its caps and parameters are the ones that apply.
    pub fn new(engine: Engine, mut script: CompiledScript) -> Self {
        script.bind(&engine);
        let scope = Scope::new();
        let base = scope.len();
        Self {
            engine,
            script: Box::new(script),
            previous: None,
            reload: None,
            failing: 0,
            scope,
            base,
            stats: ScriptStats::default(),
            last_error: None,
            warm: None,
            fast_enabled: true,
            frame: fast::Frame::boxed(),
        }
    }

    /// Loads a script file (its print/debug output is discarded).
    pub fn from_file(path: &Path, params: &Params, limits: &ScriptLimits) -> Result<Self, ScriptError> {
        Self::from_file_with_output(path, params, limits, None)
    }

    /// Loads a script file; its print/debug lines go to `out` (drain it on
    /// a side thread).
    pub fn from_file_with_output(
        path: &Path,
        params: &Params,
        limits: &ScriptLimits,
        out: Option<Producer<ScriptLine>>,
    ) -> Result<Self, ScriptError> {
        let engine = engine(limits, params, out);
        let script = compile_file(&engine, path)?;
        Ok(Self::new(engine, script))
    }

    /// Takes new versions from a watcher ([`reload::watch`]) between events.
    pub fn attach_reload(&mut self, reload: reload::Reloadable) {
        self.reload = Some(reload);
    }

    /// Swaps in `script`, keeping the current version to revert to. Runs
    /// on the hot thread: the fast form and the names came built.
    fn swap(&mut self, script: Box<CompiledScript>) {
        let old = std::mem::replace(&mut self.script, script);
        if let Some(gone) = self.previous.replace(old) {
            match &self.reload {
                Some(r) => r.retire(gone),
                None => drop(gone),
            }
        }
        // The warm caches belong to the old version's functions. (Freed here:
        // a reload is an operator's edit, not a per-event cost.)
        self.warm = None;
        self.failing = 0;
    }

    /// Swaps in a newly compiled version directly (tests, tools; not the
    /// hot path: the fast form is rebuilt for this strategy's engine).
    pub fn replace(&mut self, mut script: CompiledScript) {
        script.bind(&self.engine);
        self.swap(Box::new(script));
        self.stats.reloads += 1;
    }

    pub fn script(&self) -> &CompiledScript {
        &self.script
    }

    /// Whether calls run the compiled fast form (else the interpreter).
    pub fn fast_path(&self) -> bool {
        self.fast_enabled && self.script.fast().is_some()
    }

    /// Turns the fast form off (`false`: every call interpreted) or back
    /// on. For tests and benches that compare the two paths.
    pub fn set_fast_path(&mut self, enabled: bool) {
        self.fast_enabled = enabled;
    }

    pub fn stats(&self) -> ScriptStats {
        self.stats
    }

    pub fn last_error(&self) -> Option<&ScriptError> {
        self.last_error.as_ref()
    }

    /// Runs `quote(m)` once in the interpreter; errors keep their line and column.
    pub fn eval(&mut self, m: MarketState) -> Result<Dynamic, ScriptError> {
        self.eval_raw(m).map_err(|e| ScriptError::runtime(&self.script.path.display().to_string(), &e))
    }

    /// Runs `quote(m)` once, leaving the error unformatted (the hot path
    /// formats only the first error of a run).
    fn eval_raw(&mut self, m: MarketState) -> Result<Dynamic, Box<rhai::EvalAltResult>> {
        self.scope.rewind(self.base);
        // `m` stays in the scope and is overwritten in place: pushing it anew
        // would box the struct into a fresh Dynamic on every call.
        match self.scope.get_mut("m").and_then(|d| d.write_lock::<MarketState>().map(|mut w| *w = m)) {
            Some(()) => {}
            None => {
                self.scope.push("m", m);
                self.base = self.scope.len();
            }
        }
        api::reset_output();
        // Reuse the runtime state and function-resolution caches across
        // calls (a fresh eval starts cold).
        let warm = self.warm.get_or_insert_with(|| {
            let mut global = self.engine.new_global_runtime_state();
            global.lib.push(self.script.ast.shared_lib().clone());
            (global, rhai::Caches::new())
        });
        warm.0.num_operations = 0;
        #[allow(deprecated)]
        self.engine.eval_statements_raw(&mut warm.0, &mut warm.1, &mut self.scope, self.script.ast.statements())
    }

    /// One decision for `m` (what [`Strategy::decide`] does after building
    /// `m`): the fast form or the interpreter, with the same bookkeeping.
    /// A missing size defaults to `m.min_order_size`.
    pub fn decide_market(&mut self, m: MarketState) -> Decision {
        self.stats.calls += 1;
        let pull = Decision { pull: true, ..Decision::default() };
        if self.fast_enabled {
            if let Ok(fast) = &self.script.fast {
                return match fast.run(&m, &mut self.frame) {
                    Ok(Quoted::Decision(d)) => {
                        self.failing = 0;
                        d
                    }
                    Ok(Quoted::BadOutput) => {
                        self.failing = 0;
                        self.stats.bad_outputs += 1;
                        pull
                    }
                    Err(fault) => {
                        if self.failing == 0 {
                            let file = self.script.path.display().to_string();
                            self.last_error = Some(ScriptError::runtime(&file, &fault.to_rhai()));
                        }
                        self.failed();
                        pull
                    }
                };
            }
        }
        let out = match self.eval_raw(m) {
            Ok(v) => v,
            Err(e) => {
                // Format the first error of a run; later ones are counted only.
                if self.failing == 0 {
                    self.last_error = Some(ScriptError::runtime(&self.script.path.display().to_string(), &e));
                }
                self.failed();
                return pull;
            }
        };
        self.failing = 0;
        // Quotes set with bid()/ask()/pull() win over the return value.
        if let Some(d) = api::take_output() {
            return d;
        }
        match decision_from(&out, &m, m.min_order_size) {
            Some(d) => d,
            None => {
                self.stats.bad_outputs += 1;
                pull
            }
        }
    }

    /// Counts a runtime error; a version that keeps failing goes back to
    /// the one before it.
    fn failed(&mut self) {
        self.stats.errors += 1;
        self.failing += 1;
        if self.failing >= REVERT_AFTER {
            if let Some(prev) = self.previous.take() {
                let bad = std::mem::replace(&mut self.script, prev);
                self.warm = None;
                self.failing = 0;
                self.stats.reverts += 1;
                match &self.reload {
                    Some(r) => r.retire(bad),
                    None => drop(bad),
                }
            }
        }
    }
}

fn num(map: &Map, key: &str) -> Option<f64> {
    let v = map.get(key)?;
    v.as_float().ok().or_else(|| v.as_int().ok().map(|i| i as f64)).or(Some(f64::NAN))
}

/// Turns the script's return value into a decision (`None`: wrong shape).
pub fn decision_from(out: &Dynamic, m: &MarketState, default_size: f64) -> Option<Decision> {
    let pull = out.is_unit() || out.read_lock::<rhai::ImmutableString>().is_some_and(|s| s.as_str() == "pull");
    if pull {
        return Some(Decision { pull: true, ..Decision::default() });
    }
    let map = out.read_lock::<Map>()?;
    // A price, or a distance from the mid.
    let bid = num(&map, "bid").or_else(|| num(&map, "bid_spread").map(|d| m.mid - d));
    let ask = num(&map, "ask").or_else(|| num(&map, "ask_spread").map(|d| m.mid + d));
    let size = |key| num(&map, key).unwrap_or(default_size);
    Some(Decision {
        bid: bid.map(|price| SideIntent { price, size: size("bid_size") }),
        ask: ask.map(|price| SideIntent { price, size: size("ask_size") }),
        pull: false,
        explain: Explain::default(),
    })
}

impl Strategy for ScriptStrategy {
    fn decide(&mut self, input: &StrategyInput<'_>) -> Decision {
        if let Some(new) = self.reload.as_mut().and_then(|r| r.poll()) {
            self.swap(new);
            self.stats.reloads += 1;
        }
        // `m.min_order_size` is `params.min_order_size`: the default size.
        self.decide_market(MarketState::from_input(input))
    }

    fn name(&self) -> &str {
        self.script.name(self.fast_enabled)
    }

    fn health(&self) -> crate::hot::strategy::StrategyHealth {
        let s = self.stats();
        crate::hot::strategy::StrategyHealth { calls: s.calls, errors: s.errors, bad_outputs: s.bad_outputs }
    }
}

/// A ring for script output lines (drain it on a side thread).
pub fn print_ring() -> (Producer<ScriptLine>, Consumer<ScriptLine>) {
    ring(256)
}

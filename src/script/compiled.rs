//! A script compiled for running: `let state = #{}`, its own statements
//! and functions, and the `quote!(m)` call; its content hash; and the fast
//! form of `fn quote(m)`, checked against the interpreter before it is
//! trusted.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rhai::{Dynamic, Engine, Scope, AST};

use crate::script::{
    fast, fnv1a, intent_from, output, reload, same_intent, state, FastQuote, Intent, MarketState, NotCompiled, Quoted,
    ScriptError,
};

/// A compiled script: its statements and functions with the `quote!(m)`
/// call, and `fn quote(m)` compiled to the fast path when it can be.
#[derive(Clone)]
pub struct CompiledScript {
    pub path: PathBuf,
    /// FNV-1a 64 of the source, for reports.
    pub hash: u64,
    pub(super) ast: AST,
    /// The fast form, or why the script runs interpreted. Built where the
    /// script is compiled (start-up, or the reload thread), never on the
    /// hot thread.
    pub(super) fast: Result<Arc<FastQuote>, NotCompiled>,
    /// The strategy's name for each path, made here so that a swap on the
    /// hot thread formats nothing.
    names: [String; 2],
    /// The `[strategy.params]` this version was bound with (its engine's;
    /// the hot thread's interpreter reads them from the run's tag, so a
    /// live parameter change travels with the version: `params.rs`).
    pub(super) params: Option<Arc<crate::script::Params>>,
    /// The indexed data (levels, trades, own orders) the script reads,
    /// found here so the hot thread never walks the AST.
    pub(super) needs: crate::script::api::ScopeNeeds,
}

impl CompiledScript {
    /// Runs `quote(m)` once in a fresh scope (the reload test run), in the interpreter.
    pub fn try_run(&self, engine: &Engine, m: MarketState) -> Result<Dynamic, ScriptError> {
        let mut scope = Scope::new();
        scope.push("m", m);
        output::reset();
        let r = engine.eval_ast_with_scope::<Dynamic>(&mut scope, &self.ast);
        output::reset();
        r.map_err(|e| ScriptError::runtime(&self.path.display().to_string(), &e))
    }

    /// The script's AST (`state`, its statements and functions, `quote!(m)`).
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
    pub(super) fn bind(&mut self, engine: &Engine) {
        self.params = crate::script::params::of_engine(engine);
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

/// What the interpreter asks for on one state (before [`crate::script::check`]):
/// `Ok(None)` for an output that is not a quote, `Err` with the message of
/// a runtime error.
pub fn interpret(engine: &Engine, ast: &AST, m: MarketState) -> Result<Option<Intent>, ScriptError> {
    let mut scope = Scope::new();
    scope.push("m", m);
    output::reset();
    let r = engine.eval_ast_with_scope::<Dynamic>(&mut scope, ast);
    let out = output::take();
    r.map(|v| out.or_else(|| intent_from(&v, &m, m.min_order_size))).map_err(|e| ScriptError::runtime("", &e))
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
            (Ok(Some(a)), Ok(Quoted::Quote(b))) => same_intent(a, b),
            (Ok(None), Ok(Quoted::NotAQuote)) => true,
            // Near the operation cap: the interpreter decides such calls.
            (_, Ok(Quoted::Interpret)) => true,
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

/// Compiles `source` (named `file` in messages) into a runnable script,
/// with the fast form of `fn quote(m)` when it has one.
pub fn compile(engine: &Engine, file: &str, source: &str) -> Result<CompiledScript, ScriptError> {
    let ast = engine.compile(source).map_err(|e| ScriptError::new(file, e.position(), e.err_type().to_string()))?;
    if !ast.iter_functions().any(|f| f.name == "quote" && f.params.len() == 1) {
        return Err(ScriptError::new(file, rhai::Position::new(1, 1), "the script must define fn quote(m)"));
    }
    // `let state = #{};`, the script's top-level statements, then the call
    // in the caller's scope: see `state` (persistent script state).
    let call = engine.compile(state::QUOTE_CALL).map_err(|e| ScriptError::new(file, e.position(), e.to_string()))?;
    let init = engine.compile(state::STATE_INIT).map_err(|e| ScriptError::new(file, e.position(), e.to_string()))?;
    let mut script = CompiledScript {
        path: PathBuf::from(file),
        hash: fnv1a(source.as_bytes()),
        ast: init.merge(&ast).merge(&call),
        fast: Err(NotCompiled { reason: String::new(), pos: rhai::Position::NONE }),
        names: Default::default(),
        params: None,
        needs: crate::script::api::ScopeNeeds::ALL,
    };
    script.needs = crate::script::api::ScopeNeeds::of(&script.ast);
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

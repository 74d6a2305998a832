//! State a script keeps between calls: its top-level `let`/`const` values
//! and the `state` map, carried across a reload on request.
//!
//! How: a compiled script's AST is `let state = #{};`, the script's own
//! top-level statements, then the call `quote!(m)` ([`crate::script::compile`]).
//! [`load`] evaluates everything but the call once, into the strategy's
//! scope, when a version starts running; each decision then evaluates only
//! the call. `quote!(m)` is Rhai's call "in the caller's scope": the
//! function sees the scope's variables by name and its assignments to them
//! stay. So persistent state costs nothing per call beyond the call itself
//! (no resolver callback per variable read, no copying in and out). The
//! same holds for `on_fill!(f)` ([`call_on_fill`]) and for helpers a script
//! calls as `helper!(x)`; a helper called plainly, `helper(x)`, runs in a
//! scope of its own (Rhai's rule) and sees only its arguments.
//!
//! Rejected: `Engine::on_var` (called before every variable lookup, and
//! what it returns is read-only), binding `this` (scripts would write
//! `this.x`), global constants (read-only, and gone with `no_module`), and
//! closures' shared values (`no_closure`).
//!
//! `keep_state()` called at top level carries `state` and every top-level
//! `let` that exists in both the old and the new version (as variables,
//! not constants) into the new one; `reset_state()` makes the next call
//! start from fresh state (the top-level statements run again).

use std::cell::Cell;

use rhai::{Dynamic, Engine, EvalAltResult, Scope, AST};

use crate::hot::strategy::StrategyFill;

thread_local! {
    /// `keep_state()` was called while the top-level statements ran.
    static KEEP: Cell<bool> = const { Cell::new(false) };
    /// `reset_state()` was called: fresh state at the next call.
    static RESET: Cell<bool> = const { Cell::new(false) };
}

/// The statement that starts a script's AST: the `state` map every
/// script function called in the caller's scope sees.
pub const STATE_INIT: &str = "let state = #{};";

/// The call each decision evaluates (in the scope [`load`] filled).
pub const QUOTE_CALL: &str = "quote!(m)";

/// Registers `keep_state()`, `reset_state()` and the fill type of
/// `fn on_fill(f)` with its getters.
pub fn register(engine: &mut Engine) {
    engine.register_fn("keep_state", || KEEP.with(|k| k.set(true)));
    engine.register_fn("reset_state", || RESET.with(|r| r.set(true)));
    engine.register_type_with_name::<StrategyFill>("Fill");
    engine.register_get("price", |f: &mut StrategyFill| f.price);
    engine.register_get("qty", |f: &mut StrategyFill| f.qty);
    engine.register_get("side", |f: &mut StrategyFill| f.side);
    engine.register_get("fee", |f: &mut StrategyFill| f.fee);
    engine.register_get("time_s", |f: &mut StrategyFill| f.time_s);
    engine.register_get("maker", |f: &mut StrategyFill| f.maker);
    engine.register_get("position", |f: &mut StrategyFill| f.position);
}

/// Whether `reset_state()` was called since the last check (clears it).
#[inline]
pub fn take_reset() -> bool {
    RESET.with(|r| r.replace(false))
}

/// The statements a decision evaluates: the final `quote!(m)` call.
#[inline]
pub fn call_statements(ast: &AST) -> &[rhai::Stmt] {
    let all = ast.statements();
    &all[all.len().saturating_sub(1)..]
}

/// The top-level statements: everything before the call.
fn init_statements(ast: &AST) -> &[rhai::Stmt] {
    let all = ast.statements();
    &all[..all.len().saturating_sub(1)]
}

/// Fills `scope` with the state of the version `ast` starts with: runs its
/// top-level statements (with `global`, whose lib holds its functions),
/// then, if they called `keep_state()` and `keep` allows, carries the
/// values of `state` and of the top-level `let`s both versions have from
/// what `scope` held before. `m` is pushed last, as a placeholder the
/// call overwrites. Returns the scope's base length (with `m`). On an
/// error the old scope is put back (so a later attempt can still keep it).
pub fn load(
    engine: &Engine,
    global: &mut rhai::GlobalRuntimeState,
    caches: &mut rhai::Caches,
    scope: &mut Scope<'static>,
    ast: &AST,
    keep: bool,
    m: Dynamic,
) -> Result<usize, Box<EvalAltResult>> {
    let old = std::mem::take(scope);
    KEEP.with(|k| k.set(false));
    RESET.with(|r| r.set(false));
    global.num_operations = 0;
    #[allow(deprecated)]
    let run = engine.eval_statements_raw(global, caches, scope, init_statements(ast));
    if let Err(e) = run {
        *scope = old;
        return Err(e);
    }
    if keep && KEEP.with(|k| k.replace(false)) {
        carry(&old, scope);
    }
    // Left over from the old scope (it is rebuilt below) or the init.
    RESET.with(|r| r.set(false));
    scope.push_dynamic("m", m);
    Ok(scope.len())
}

/// Copies into `new` the values of `old`'s variables that `new` also has
/// as variables (constants on either side are left alone).
fn carry(old: &Scope<'static>, new: &mut Scope<'static>) {
    for (name, constant, value) in old.iter_raw() {
        if constant || name == "m" {
            continue;
        }
        if let Some(slot) = new.get_mut(name) {
            *slot = value.clone();
        }
    }
}

/// Runs `on_fill!(f)` (`call`) in the strategy's scope (its state loaded)
/// with `global`, whose lib holds a script defining `fn on_fill(f)`
/// ([`has_on_fill`]).
pub fn call_on_fill(
    engine: &Engine,
    global: &mut rhai::GlobalRuntimeState,
    caches: &mut rhai::Caches,
    scope: &mut Scope<'static>,
    base: usize,
    call: &AST,
    fill: &StrategyFill,
) -> Result<(), Box<EvalAltResult>> {
    scope.rewind(base);
    scope.push("f", *fill);
    global.num_operations = 0;
    #[allow(deprecated)]
    let r = engine.eval_statements_raw(global, caches, scope, call.statements());
    scope.rewind(base);
    r.map(|_| ())
}

/// Whether the script defines `fn on_fill(f)`.
#[inline]
pub fn has_on_fill(script: &AST) -> bool {
    script.shared_lib().get_script_fn("on_fill", 1).is_some()
}

/// The `on_fill!(f)` call, compiled once per strategy.
pub fn on_fill_call(engine: &Engine) -> AST {
    // A fixed, valid statement: compiling it cannot fail.
    engine.compile("on_fill!(f)").unwrap_or_default()
}

//! Where a resource-limit error really happened.
//!
//! Why this exists: Rhai raises "Too many operations", "Stack overflow" and
//! "... too large" at the statement that hit the cap, but every script
//! function the error leaves overwrites its position with the call's
//! (`call_script_fn`: system exceptions are "passed straight-through" with
//! `set_position(pos)`), so out of `quote(m)` it always reads `1:1`, the
//! position of the merged `quote(m)` call. Nothing else on the error keeps
//! the real place.
//!
//! So the failing call is run once more, on a copy of its scope, in an
//! engine with Rhai's debugger stepping into every node: the debugger sees
//! each node's position before it runs. The place reported, per cap (the
//! compiled fast path must report the same, see `fast`):
//! * operations: the node whose operation went over `max_operations` (the
//!   step hook counts them itself);
//! * call depth: the function call that went one level too deep;
//! * string, array, map size (and variables): the last expression
//!   evaluated before the value outgrew its cap (its line is the
//!   statement's; statements that are bare expressions, like `a.push(x);`,
//!   are not stepped on by Rhai's debugger, their expressions are).
//!
//! The hot path runs this once per version and kind of limit (the result
//! is kept in [`crate::script::health::Health`]); it costs about what the
//! failing call cost, a few ms at the default caps.
//!
//! The copy of the scope keeps the rerun from changing what the next call
//! sees; `bid`/`ask`/`pull` output of the rerun is dropped.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use rhai::debugger::{DebuggerCommand, DebuggerEvent};
use rhai::{ASTNode, Engine, EvalAltResult, Expr, Position, Scope, Stmt};

use crate::script::health::ErrorKind;
use crate::script::{CompiledScript, MarketState, Params, ScriptLimits};

/// A position packed in a u64 (line high, column low; 0 = none).
fn pack(p: Position) -> u64 {
    match (p.line(), p.position()) {
        (Some(l), Some(c)) => ((l as u64) << 32) | c as u64,
        (Some(l), None) => (l as u64) << 32,
        _ => 0,
    }
}

fn unpack(v: u64) -> Option<Position> {
    let (line, col) = ((v >> 32) as usize, (v & 0xffff_ffff) as usize);
    (line > 0).then(|| Position::new(line as u16, col.max(1) as u16))
}

/// The engine reruns go through, built on first use with the script's
/// caps and parameters.
#[derive(Default)]
pub struct Locator {
    params: Params,
    engine: Option<(Engine, Arc<Seen>)>,
}

impl Locator {
    /// `params`: the strategy's `[strategy.params]` (so the rerun takes the
    /// same branches).
    pub fn new(params: Params) -> Self {
        Self { params, engine: None }
    }

    /// Where the resource-limit error of `kind` that `quote(m)` just raised
    /// happened, or `None` when the rerun does not raise it again.
    pub fn place(
        &mut self,
        hot: &Engine,
        script: &CompiledScript,
        scope: &Scope<'static>,
        m: MarketState,
        kind: ErrorKind,
    ) -> Option<Position> {
        let limits = ScriptLimits {
            max_operations: hot.max_operations(),
            max_call_levels: hot.max_call_levels(),
            max_string_size: hot.max_string_size(),
            max_array_size: hot.max_array_size(),
            max_map_size: hot.max_map_size(),
        };
        let params = &self.params;
        let (engine, seen) = self.engine.get_or_insert_with(|| stepping_engine(&limits, params));
        seen.clear();
        let mut scope = scope.clone();
        match scope.get_mut("m").and_then(|d| d.write_lock::<MarketState>().map(|mut w| *w = m)) {
            Some(()) => {}
            None => {
                scope.push("m", m);
            }
        }
        let mut global = engine.new_global_runtime_state();
        global.lib.push(script.ast.shared_lib().clone());
        let mut caches = rhai::Caches::new();
        crate::script::output::reset();
        #[allow(deprecated)]
        let r = engine.eval_statements_raw(&mut global, &mut caches, &mut scope, script.ast.statements());
        crate::script::output::reset();
        match r {
            Err(e) if ErrorKind::of(&e) == kind => {
                let at = match kind {
                    ErrorKind::StackOverflow => &seen.call,
                    _ => &seen.node,
                };
                unpack(at.load(Ordering::Relaxed)).or_else(|| unpack(seen.node.load(Ordering::Relaxed)))
            }
            _ => None,
        }
    }
}

/// The last places the stepping debugger saw (packed positions).
#[derive(Default)]
struct Seen {
    /// Any node.
    node: AtomicU64,
    /// A function call by name.
    call: AtomicU64,
}

impl Seen {
    fn clear(&self) {
        for a in [&self.node, &self.call] {
            a.store(0, Ordering::Relaxed);
        }
    }
}

/// The sandboxed engine with a debugger that steps into every node,
/// noting its position, and stops at the first node over the operation cap.
fn stepping_engine(limits: &ScriptLimits, params: &Params) -> (Engine, Arc<Seen>) {
    let cap = limits.max_operations;
    // Rhai's own cap stays as a backstop (a loop with an empty body counts
    // operations without a node to step on), well above the hook's.
    let mut engine = crate::script::engine(
        &ScriptLimits {
            max_operations: if cap == 0 { 0 } else { cap.saturating_mul(2).saturating_add(1000) },
            ..*limits
        },
        params,
        None,
    );
    let last = Arc::new(Seen::default());
    let seen = last.clone();
    // Marked deprecated only as "volatile" (Rhai's words), not going away.
    #[allow(deprecated)]
    engine.register_debugger(
        |_, dbg| dbg,
        move |ctx, event, node, _source, pos| {
            // Only steps onto nodes: a function's exit reports its closing
            // brace, which is no place an error happens.
            if !matches!(event, DebuggerEvent::Step | DebuggerEvent::Start) {
                return Ok(DebuggerCommand::StepInto);
            }
            if !pos.is_none() {
                let p = pack(pos);
                seen.node.store(p, Ordering::Relaxed);
                // A call by name, not an operator (`n + 1` is a call too).
                let call = match node {
                    ASTNode::Expr(Expr::FnCall(f, _)) | ASTNode::Stmt(Stmt::FnCall(f, _)) => !f.is_operator_call(),
                    _ => false,
                };
                if call {
                    seen.call.store(p, Ordering::Relaxed);
                }
            }
            if cap > 0 && ctx.global_runtime_state().num_operations > cap {
                return Err(EvalAltResult::ErrorTooManyOperations(pos).into());
            }
            Ok(DebuggerCommand::StepInto)
        },
    );
    (engine, last)
}

#[cfg(test)]
mod tests {
    use crate::script::{compile, engine, MarketState, ScriptLimits, ScriptStrategy};

    fn first_error(src: &str) -> String {
        let e = engine(&ScriptLimits::default(), &Default::default(), None);
        let script = compile(&e, "s.rhai", src).unwrap();
        let mut s = ScriptStrategy::new(e, script);
        s.decide_market(MarketState::default());
        s.last_error().map(|e| e.to_string()).unwrap_or_default()
    }

    #[test]
    fn resource_limit_errors_point_at_the_line_that_hit_them() {
        let ops = first_error("fn quote(m) {\n  let x = 0;\n  loop {\n    x += 1;\n  }\n}\n");
        assert!(ops.starts_with("s.rhai:4:"), "{ops}");
        assert!(ops.contains("Too many operations"), "{ops}");
        let nested = first_error(
            "fn spin() {\n  let x = 0;\n  while true {\n    x += 1;\n  }\n}\nfn quote(m) {\n  let a = 1;\n  spin();\n}\n",
        );
        assert!(nested.starts_with("s.rhai:4:"), "{nested}");
        // The call that went one level too deep.
        let stack = first_error("fn r(n) {\n  r(n + 1)\n}\nfn quote(m) {\n  r(0);\n}\n");
        assert!(stack.starts_with("s.rhai:2:3: Stack overflow (line 2, position 3)"), "{stack}");
        let string = first_error("fn quote(m) {\n  let s = \"x\";\n  for i in 0..20 {\n    s += s;\n  }\n}\n");
        // In the statement that grew it.
        assert!(string.starts_with("s.rhai:4:") && string.contains("Length of string too large"), "{string}");
        let array = first_error("fn quote(m) {\n  let a = [];\n  for i in 0..1000 {\n    a.push(i);\n  }\n}\n");
        assert!(array.starts_with("s.rhai:4:") && array.contains("array"), "{array}");
        // An error in the body itself keeps the place Rhai gives it.
        let plain = first_error("fn quote(m) {\n  let a = 1;\n  bid(m.nope, 1.0);\n}\n");
        assert!(plain.starts_with("s.rhai:3:9: Unknown property"), "{plain}");
        // The message names the same place.
        assert!(stack.contains("(line 2,"), "{stack}");
    }
}

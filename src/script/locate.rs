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
//! each node's position before it runs, so the last one seen when the cap
//! is hit is where it was hit. For the operation cap the step hook itself
//! counts: the first node whose operation goes over `max_operations` is
//! the place. The hot path runs this once per version and kind of limit
//! (the result is kept in [`crate::script::health::Health`]); it costs about
//! what the failing call cost, a few ms at the default caps.
//!
//! The copy of the scope keeps the rerun from changing what the next call
//! sees; `bid`/`ask`/`pull` output of the rerun is dropped.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use rhai::debugger::{DebuggerCommand, DebuggerEvent};
use rhai::{Engine, EvalAltResult, Position, Scope};

use crate::script::health::ErrorKind;
use crate::script::{api, CompiledScript, MarketState, Params, ScriptLimits};

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
    engine: Option<(Engine, Arc<AtomicU64>)>,
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
        let (engine, last) = self.engine.get_or_insert_with(|| stepping_engine(&limits, params));
        last.store(0, Ordering::Relaxed);
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
        api::reset_output();
        #[allow(deprecated)]
        let r = engine.eval_statements_raw(&mut global, &mut caches, &mut scope, script.ast.statements());
        api::reset_output();
        match r {
            Err(e) if ErrorKind::of(&e) == kind => unpack(last.load(Ordering::Relaxed)),
            _ => None,
        }
    }
}

/// The sandboxed engine with a debugger that steps into every node,
/// noting its position, and stops at the first node over the operation cap.
fn stepping_engine(limits: &ScriptLimits, params: &Params) -> (Engine, Arc<AtomicU64>) {
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
    let last = Arc::new(AtomicU64::new(0));
    let seen = last.clone();
    // Marked deprecated only as "volatile" (Rhai's words), not going away.
    #[allow(deprecated)]
    engine.register_debugger(
        |_, dbg| dbg,
        move |ctx, event, _node, _source, pos| {
            // Only steps onto nodes: a function's exit reports its closing
            // brace, which is no place an error happens.
            if !matches!(event, DebuggerEvent::Step | DebuggerEvent::Start) {
                return Ok(DebuggerCommand::StepInto);
            }
            if !pos.is_none() {
                seen.store(pack(pos), Ordering::Relaxed);
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
        assert!(ops.starts_with("s.rhai:4:") || ops.starts_with("s.rhai:3:"), "{ops}");
        assert!(ops.contains("Too many operations"), "{ops}");
        let nested = first_error(
            "fn spin() {\n  let x = 0;\n  while true {\n    x += 1;\n  }\n}\nfn quote(m) {\n  let a = 1;\n  spin();\n}\n",
        );
        assert!(nested.starts_with("s.rhai:4:") || nested.starts_with("s.rhai:3:"), "{nested}");
        let stack = first_error("fn r(n) {\n  r(n + 1)\n}\nfn quote(m) {\n  r(0);\n}\n");
        assert!(stack.starts_with("s.rhai:2:") && stack.contains("Stack overflow"), "{stack}");
        let string = first_error("fn quote(m) {\n  let s = \"x\";\n  for i in 0..20 {\n    s += s;\n  }\n}\n");
        assert!(string.starts_with("s.rhai:4:") && string.contains("string too large"), "{string}");
        let array = first_error("fn quote(m) {\n  let a = [];\n  for i in 0..1000 {\n    a.push(i);\n  }\n}\n");
        assert!(array.starts_with("s.rhai:4:") && array.contains("array"), "{array}");
        // The message names the same place.
        assert!(stack.contains("(line 2,"), "{stack}");
    }
}

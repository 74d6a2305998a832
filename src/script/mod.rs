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
//! * the script's top-level statements run once when a version loads (its
//!   `let`/`const` values and `state` then live in the strategy's scope,
//!   [`state`]); each decision evaluates only `quote!(m)` in that scope,
//!   with warm runtime state and caches, cheaper than `call_fn`;
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
pub mod budget;
mod compiled;
pub mod fast;
pub mod health;
mod locate;
mod output;
pub mod params;
pub mod reload;
pub mod samples;
mod state;
mod strategy;
pub mod testing;
pub mod trial;

use rhai::Engine;

use crate::ring::{ring, Consumer, Producer};

pub use api::MarketState;
pub use budget::ScriptBudget;
pub use compiled::{compile, compile_file, interpret, CompiledScript};
pub use fast::{FastQuote, Fault, NotCompiled, Outcome, Quoted};
pub use output::{check, intent_from, same_decision, same_intent, BadOutput, Intent};
pub use strategy::{ScriptStats, ScriptStrategy, REVERT_AFTER};

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
        Self::runtime_at(file, e, None)
    }

    /// [`Self::runtime`], placed at `at` when given: a resource-limit error
    /// (operations, call depth, data size) comes out of Rhai placed at the
    /// outermost call, `1:1`, and its real place is looked up apart
    /// ([`locate`]); the message then names that place too.
    pub fn runtime_at(file: &str, e: &rhai::EvalAltResult, at: Option<rhai::Position>) -> Self {
        let inner = health::innermost(e);
        match at {
            Some(pos) if pos != inner.position() => {
                // Rhai's message ends with ` (line L, position C)`: the place
                // it was wrongly given, replaced by the real one.
                let text = inner.to_string();
                let old = format!(" ({})", inner.position());
                let base = text.strip_suffix(&old).unwrap_or(&text);
                Self::new(file, pos, format!("{base} ({pos})"))
            }
            _ => Self::new(file, inner.position(), inner.to_string()),
        }
    }
}

/// One line a script printed (`print` or `debug`), for the log.
#[derive(Debug, Clone, Copy)]
pub struct ScriptLine {
    pub len: u8,
    pub bytes: [u8; 120],
}

impl ScriptLine {
    /// `s`, cut to 120 bytes on a character boundary.
    pub fn new(s: &str) -> Self {
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
    // Multi-level bid()/ask(), replacing api's single-level ones.
    output::register(&mut engine);
    // The values live in the run's tag (`params::ParamsTag`), not in the
    // closure: a version compiled after a live change of [strategy.params]
    // carries its own values and the hot thread's interpreter reads them
    // from there (`params.rs`). The engine's default tag holds `params`.
    engine.set_default_tag(rhai::Dynamic::from(params::ParamsTag(std::sync::Arc::new(params.clone()))));
    engine.register_fn("param", |ctx: rhai::NativeCallContext, name: &str, default: f64| -> f64 {
        params::lookup(&ctx, name).unwrap_or(default)
    });
    // `param("levels", 3)`: an integer default is taken as a FLOAT (every
    // parameter is a number in [strategy.params]; the value is always FLOAT).
    engine.register_fn("param", |ctx: rhai::NativeCallContext, name: &str, default: i64| -> f64 {
        params::lookup(&ctx, name).unwrap_or(default as f64)
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

/// FNV-1a 64: a stable content hash with no dependency.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3))
}

/// A ring for script output lines (drain it on a side thread).
pub fn print_ring() -> (Producer<ScriptLine>, Consumer<ScriptLine>) {
    ring(256)
}

//! [`ScriptStrategy`]: a Rhai script behind the [`Strategy`] boundary,
//! running its compiled fast form when it has one and the interpreter
//! otherwise, taking reloaded versions between events and reverting a
//! version that keeps failing.

use std::path::Path;

use rhai::{Dynamic, Engine, Scope};

use crate::hot::strategy::{Decision, Strategy, StrategyFill, StrategyInput};
use crate::ring::Producer;
use crate::script::budget::{Budget, BudgetEvent, BudgetMode};
use crate::script::{
    api, compile_file, engine, fast, health, output, reload, state, BadOutput, CompiledScript, Intent, MarketState,
    Outcome, Params, ScriptBudget, ScriptError, ScriptLimits, ScriptLine,
};

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
    /// Calls pulled for a bad output (every kind but too_many_levels).
    pub bad_outputs: u64,
    /// Bad outputs by kind, [`BadOutput::index`] order (too_many_levels
    /// included: those calls still quote their first levels).
    pub bad_by_kind: [u64; BadOutput::COUNT],
    /// Calls over `[script] max_call_us` ([`crate::script::budget`]).
    pub over_budget: u64,
    /// Versions reverted, and times quotes were pulled, for going over budget.
    pub budget_reverts: u64,
    pub budget_pulls: u64,
    /// Distinct runtime errors by place and kind, with counts (messages in
    /// [`health::Health`]); `errors_other` counts errors past its 16 keys.
    pub error_table: health::ErrorTable,
    pub errors_other: u64,
    /// Calls whose decision quoted at least one side.
    pub quoted: u64,
}

impl ScriptStats {
    /// Enough calls ([`health::NEVER_QUOTED_MIN_CALLS`]) and not one quoted a side.
    pub fn never_quoted(&self) -> bool {
        self.calls >= health::NEVER_QUOTED_MIN_CALLS && self.quoted == 0
    }
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
    /// The time budget: counts calls over it, says when to revert or pull.
    budget: Budget,
    /// A call's state kept for the reload check, handed over in
    /// `after_call`, once the quote is out.
    sample: Option<MarketState>,
    /// Error messages, log events, resource-limit places ([`health`]).
    health: health::Health,
    /// `[strategy] levels`: quotes per side kept from one call.
    levels: usize,
    /// `reset_state()` was called: the next load starts fresh.
    reset: bool,
    /// Bumped whenever anything but the fast form may touch the `state`
    /// map (the fast form keeps its values between calls while it stays:
    /// `fast::state::Mirror`); [`ScriptStrategy::sync_state`].
    state_epoch: u64,
    /// `on_fill!(f)`, compiled once.
    on_fill_call: rhai::AST,
    /// `m`, updated in place per decision ([`MarketState::update`]); boxed
    /// so a decision can hold it apart from `self` without copying it.
    /// Always `Some` between decisions.
    m: Option<Box<MarketState>>,
}

impl ScriptStrategy {
    /// `engine` from [`engine`] (its limits and parameters), `script` compiled
    /// by it or by one with the same settings. The fast form is rebuilt for
    /// `engine`, so its caps and parameters are the ones that apply.
    pub fn new(engine: Engine, mut script: CompiledScript) -> Self {
        script.bind(&engine);
        let scope = Scope::new();
        let base = scope.len();
        let on_fill_call = state::on_fill_call(&engine);
        Self {
            on_fill_call,
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
            budget: Budget::default(),
            sample: None,
            health: health::Health::new(),
            levels: 1,
            reset: false,
            state_epoch: 0,
            m: Some(Box::default()),
        }
    }

    /// `[strategy] levels` (`Config::strategy_levels`): quotes per side a
    /// call may ask for; more are dropped and counted (default 1).
    pub fn set_levels(&mut self, levels: usize) {
        self.levels = levels;
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
        let mut s = Self::new(engine, script);
        s.health.set_params(params);
        Ok(s)
    }

    /// The time budget per call and what a tripped one does (default: the
    /// default budget, [`BudgetMode::CountOnly`]). When enforced, the reload
    /// check holds new versions to the same budget.
    pub fn set_budget(&mut self, budget: ScriptBudget, mode: BudgetMode) {
        self.budget = Budget::new(budget, mode);
        if let Some(r) = &self.reload {
            r.set_max_call_ns(self.budget.reload_limit_ns());
        }
    }

    /// The latest time the budget tripped, for the log (also counted in
    /// [`ScriptStats::budget_reverts`] and [`ScriptStats::budget_pulls`]).
    pub fn budget_event(&self) -> Option<BudgetEvent> {
        self.budget.last_event()
    }

    /// Quotes pulled by the budget until a new version is loaded.
    pub fn pulled_by_budget(&self) -> bool {
        self.budget.pulled()
    }

    /// Takes new versions from a watcher ([`reload::watch`]) between events.
    pub fn attach_reload(&mut self, reload: reload::Reloadable) {
        reload.set_max_call_ns(self.budget.reload_limit_ns());
        self.reload = Some(reload);
    }

    /// Swaps in `script`, keeping the current version to revert to. Runs
    /// on the hot thread: the fast form and the names came built.
    fn swap(&mut self, script: Box<CompiledScript>) {
        // The new version may carry the state over (`keep_state()`).
        self.sync_state();
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
        self.budget.new_version();
        self.health.on_version();
        self.health.on_event(health::EventKind::Reload, self.script.hash, 0, "");
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

    /// A script variable as it stands between calls (a top-level `let` or
    /// `const`, or `state`); `None` before the first call. For tests and tools.
    pub fn state_var(&self, name: &str) -> Option<Dynamic> {
        let v = self.scope.get(name)?;
        // Values the fast form keeps between calls count too.
        match (name, self.script.fast(), v.read_lock::<rhai::Map>()) {
            ("state", Some(fast), Some(map)) if fast.uses_state() => {
                Some(Dynamic::from_map(fast.merged_state(&self.frame, &map)))
            }
            _ => Some(v.clone()),
        }
    }

    /// Before anything but the fast form reads or changes the `state` map
    /// (an interpreted call, `on_fill`, a version change): the values the
    /// fast form kept go into the map, and it starts again from the map.
    fn sync_state(&mut self) {
        if let Some(fast) = self.script.fast.as_ref().ok().filter(|f| f.uses_state()) {
            if let Some(mut map) = self.scope.get_mut("state").and_then(|d| d.write_lock::<rhai::Map>()) {
                fast.flush_state(&mut self.frame, &mut map);
            }
        }
        self.state_epoch = self.state_epoch.wrapping_add(1);
    }

    pub fn last_error(&self) -> Option<&ScriptError> {
        self.last_error.as_ref()
    }

    /// Where errors, wrong-shaped outputs, reverts and reloads are told,
    /// as they happen (drain with [`health::spawn_logger`]).
    pub fn attach_events(&mut self, events: Producer<health::ScriptEvent>) {
        self.health.attach_events(events);
    }

    /// How the calls went, for reports and the dashboard (off the hot path).
    pub fn view(&self) -> health::ScriptView<'_> {
        health::ScriptView {
            path: &self.script.path,
            hash: self.script.hash,
            compiled: self.fast_path(),
            not_compiled: self.script.not_compiled(),
            stats: self.stats,
            messages: self.health.messages(),
            last_slot: self.health.last_slot(),
        }
    }

    /// Runs `quote(m)` once in the interpreter; errors keep their line and column.
    pub fn eval(&mut self, m: MarketState) -> Result<Dynamic, ScriptError> {
        self.eval_raw(m).map_err(|e| ScriptError::runtime(&self.script.path.display().to_string(), &e))
    }

    /// Runs `quote(m)` once, leaving the error unformatted (the hot path
    /// formats only the first error of a run).
    fn eval_raw(&mut self, m: MarketState) -> Result<Dynamic, Box<rhai::EvalAltResult>> {
        self.ready()?;
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
        output::reset();
        // Reuse the runtime state and function-resolution caches across
        // calls (a fresh eval starts cold); `ready` made them.
        let Some(warm) = self.warm.as_mut() else { unreachable!("ready() leaves the runtime state warm") };
        warm.0.num_operations = 0;
        #[allow(deprecated)]
        let r = self.engine.eval_statements_raw(
            &mut warm.0,
            &mut warm.1,
            &mut self.scope,
            state::call_statements(&self.script.ast),
        );
        if state::take_reset() {
            self.warm = None;
            self.reset = true;
        }
        r
    }

    /// Loads the running version's state (top-level values and `state`)
    /// when it starts, or again after `reset_state()`; see [`state`].
    fn ready(&mut self) -> Result<(), Box<rhai::EvalAltResult>> {
        if self.warm.is_some() {
            return Ok(());
        }
        let mut global = self.engine.new_global_runtime_state();
        global.lib.push(self.script.ast.shared_lib().clone());
        // This version's [strategy.params] (a live change comes with a new version).
        if let Some(p) = &self.script.params {
            global.tag = Dynamic::from(crate::script::params::ParamsTag(p.clone()));
        }
        let mut caches = rhai::Caches::new();
        let (engine, ast) = (&self.engine, &self.script.ast);
        let m = Dynamic::from(MarketState::default());
        // A (re)load: values kept by the fast form are flushed already, or
        // were reset.
        self.frame.forget_state();
        self.state_epoch = self.state_epoch.wrapping_add(1);
        self.base = state::load(engine, &mut global, &mut caches, &mut self.scope, ast, !self.reset, m)?;
        self.reset = false;
        self.warm = Some((global, caches));
        Ok(())
    }

    /// Runs the script's `fn on_fill(f)`, if it has one; an error counts
    /// like a `quote` error.
    fn fill(&mut self, fill: &StrategyFill) {
        if !state::has_on_fill(&self.script.ast) {
            return;
        }
        self.sync_state();
        let r = self.ready().and_then(|()| {
            let Some(warm) = self.warm.as_mut() else { unreachable!("ready() leaves the runtime state warm") };
            let (engine, call) = (&self.engine, &self.on_fill_call);
            state::call_on_fill(engine, &mut warm.0, &mut warm.1, &mut self.scope, self.base, call, fill)
        });
        // Quotes are not set from `on_fill`.
        output::reset();
        if state::take_reset() {
            self.warm = None;
            self.reset = true;
        }
        if let Err(e) = r {
            if self.failing == 0 {
                self.last_error = Some(ScriptError::runtime(&self.script.path.display().to_string(), &e));
            }
            self.failed();
        }
    }

    /// One decision for `m` (what [`Strategy::decide`] does after building
    /// `m`): the fast form or the interpreter, with the same bookkeeping.
    /// A missing size defaults to `m.min_order_size`.
    pub fn decide_market(&mut self, m: MarketState) -> Decision {
        self.decide_state(&m)
    }

    /// [`ScriptStrategy::decide_market`] on a state the caller keeps: the
    /// 3.7 KB state is read in place, not copied per call.
    fn decide_state(&mut self, m: &MarketState) -> Decision {
        let d = self.decide_once(m);
        self.stats.quoted += (!d.pull && (d.bid.is_some() || d.ask.is_some())) as u64;
        d
    }

    fn decide_once(&mut self, m: &MarketState) -> Decision {
        self.stats.calls += 1;
        let pull = Decision { pull: true, ..Decision::default() };
        if self.fast_enabled {
            if self.script.fast.as_ref().is_ok_and(|f| f.uses_state()) {
                // The version's state must be loaded first (as for the
                // interpreter); a failure there is the interpreter's to report.
                if self.ready().is_err() {
                    return self.interpreted(m);
                }
            }
            if let Ok(fast) = &self.script.fast {
                let r = if fast.uses_state() {
                    let mut map = self.scope.get_mut("state").and_then(|d| d.write_lock::<rhai::Map>());
                    fast.run_mirrored(m, &mut self.frame, map.as_deref_mut(), self.state_epoch)
                } else {
                    fast.run_in_place(m, &mut self.frame)
                };
                // The intent is read where the call left it, in the frame:
                // it is ~450 bytes, and each move of it on the way out was a
                // copy (perf: a fifth of the samples).
                match r {
                    Ok(Outcome::Quote) => {
                        let mut bad = None;
                        // `checked` with the intent borrowed from the frame.
                        let d = output::check(self.frame.intent(), m, self.levels, &mut bad);
                        self.count_bad(bad);
                        return d;
                    }
                    Ok(Outcome::NotAQuote) => return self.checked(None, m),
                    Err(fault) => {
                        self.fault(&fault);
                        self.failed();
                        return pull;
                    }
                    // Near the operation cap: this call is the interpreter's.
                    Ok(Outcome::Interpret) => {}
                }
            }
        }
        self.interpreted(m)
    }

    /// One call in the interpreter, with the same bookkeeping.
    fn interpreted(&mut self, m: &MarketState) -> Decision {
        self.sync_state();
        let pull = Decision { pull: true, ..Decision::default() };
        let out = match self.eval_raw(*m) {
            Ok(v) => v,
            Err(e) => {
                // Formatted only the first time its place and kind are seen.
                let at = self.locate(&e, *m);
                self.error(&e, at);
                self.failed();
                return pull;
            }
        };
        // Quotes set with bid()/ask()/pull() win over the return value.
        let intent = output::take().or_else(|| output::intent_from(&out, m, m.min_order_size));
        self.checked(intent.as_ref(), m)
    }

    /// The call went through: checks its output ([`output::check`], the
    /// same for both paths) and counts a bad one by kind.
    fn checked(&mut self, intent: Option<&Intent>, m: &MarketState) -> Decision {
        let mut bad = Some(BadOutput::NotAQuote);
        let d = match intent {
            Some(i) => output::check(i, m, self.levels, &mut bad),
            None => Decision { pull: true, ..Decision::default() },
        };
        self.count_bad(bad);
        d
    }

    /// [`ScriptStrategy::checked`]'s bookkeeping, after the check.
    #[inline]
    fn count_bad(&mut self, bad: Option<BadOutput>) {
        self.failing = 0;
        if let Some(kind) = bad {
            self.stats.bad_by_kind[kind.index()] += 1;
            self.stats.bad_outputs += kind.pulls() as u64;
            self.health.on_event(health::EventKind::BadOutput, self.script.hash, kind.index() as u64, "");
        }
    }

    /// Counts a runtime error in the table (a new place and kind formats
    /// its message once, and becomes `last_error`).
    fn error(&mut self, e: &rhai::EvalAltResult, at: Option<rhai::Position>) {
        let file = self.script.path.to_string_lossy();
        if let Some(first) = self.health.on_error(&mut self.stats, &file, self.script.hash, e, at) {
            self.last_error = Some(first);
        }
    }

    /// A fault of the compiled form, counted as Rhai's error would be
    /// (formats only at a new place).
    #[cold]
    fn fault(&mut self, fault: &fast::Fault) {
        let file = self.script.path.to_string_lossy();
        if let Some(first) = self.health.on_fault(&mut self.stats, &file, self.script.hash, fault) {
            self.last_error = Some(first);
        }
    }

    /// Where a resource-limit error really happened: Rhai reports it at the
    /// outermost `quote(m)` call (`1:1`), so the call is run again once per
    /// version and kind, off the warm state, to find the place
    /// ([`crate::script::locate`]).
    fn locate(&mut self, e: &rhai::EvalAltResult, m: MarketState) -> Option<rhai::Position> {
        self.health.locate(e, &self.engine, &self.script, &self.scope, m)
    }

    /// Counts a runtime error; a version that keeps failing goes back to
    /// the one before it.
    fn failed(&mut self) {
        self.stats.errors += 1;
        self.failing += 1;
        if self.failing >= REVERT_AFTER {
            if let Some(prev) = self.previous.take() {
                self.sync_state();
                let bad = std::mem::replace(&mut self.script, prev);
                self.warm = None;
                self.failing = 0;
                self.budget.new_version();
                self.stats.reverts += 1;
                self.health.on_version();
                let last = self.last_error.as_ref().map(|e| e.to_string()).unwrap_or_default();
                self.health.on_event(health::EventKind::Revert, self.script.hash, 0, &last);
                match &self.reload {
                    Some(r) => r.retire(bad),
                    None => drop(bad),
                }
            }
        }
    }

    /// The budget tripped ([`crate::script::budget`]): back to the version
    /// before, or, with none, pull until a new one is loaded.
    fn over_budget(&mut self, at_ns: i64, elapsed_ns: u64) {
        let hash = self.script.hash;
        self.sync_state();
        let to = self.previous.take().map(|prev| {
            let slow = std::mem::replace(&mut self.script, prev);
            self.warm = None;
            self.failing = 0;
            match &self.reload {
                Some(r) => r.retire(slow),
                None => drop(slow),
            }
            self.script.hash
        });
        let s = &mut self.stats;
        self.budget.tripped(hash, to, at_ns, elapsed_ns, &mut s.budget_reverts, &mut s.budget_pulls);
    }
}

impl Strategy for ScriptStrategy {
    fn decide(&mut self, input: &StrategyInput<'_>) -> Decision {
        if let Some(new) = self.reload.as_mut().and_then(|r| r.poll()) {
            self.swap(new);
            self.stats.reloads += 1;
        }
        if self.budget.pulled() {
            return Decision { pull: true, ..Decision::default() };
        }
        // `m.min_order_size` is `params.min_order_size`: the default size.
        // Taken out of `self` for the call (a pointer move), so the call
        // reads it in place while the strategy's other fields change.
        let Some(mut m) = self.m.take() else { return Decision { pull: true, ..Decision::default() } };
        m.update(input, self.script.needs);
        if self.reload.as_mut().is_some_and(|r| r.sample_due()) {
            // The reload check runs new versions on these states: they may
            // read levels, trades or orders this version does not.
            let mut all = *m;
            all.update(input, api::ScopeNeeds::ALL);
            self.sample = Some(all);
        }
        let d = self.decide_state(&m);
        self.m = Some(m);
        d
    }

    fn on_fill(&mut self, fill: &StrategyFill) {
        self.fill(fill);
    }

    #[inline]
    fn after_call(&mut self, elapsed_ns: u64, now_ns: i64) {
        if let (Some(m), Some(r)) = (&self.sample, &self.reload) {
            r.sample(m);
            self.sample = None;
        }
        let before = self.stats.over_budget;
        let tripped = self.budget.record(elapsed_ns, now_ns, &mut self.stats.over_budget);
        if self.stats.over_budget > before {
            self.health.on_event(health::EventKind::OverBudget, self.script.hash, elapsed_ns, "");
        }
        if tripped {
            let slow = self.script.hash;
            self.over_budget(now_ns, elapsed_ns);
            // The version now running, or 0 when quotes were pulled instead.
            let to = if self.budget.pulled() { 0 } else { self.script.hash };
            self.health.on_event(health::EventKind::BudgetTrip, slow, to, "");
        }
    }

    fn name(&self) -> &str {
        self.script.name(self.fast_enabled)
    }

    /// The levels in scope when the script reads any (or when a reload
    /// check may sample them for a new version); else the features only.
    fn book_depth(&self) -> usize {
        if self.script.needs.levels || self.reload.is_some() {
            api::SCOPE_DEPTH
        } else {
            0
        }
    }

    fn health(&self) -> crate::hot::strategy::StrategyHealth {
        let s = self.stats();
        crate::hot::strategy::StrategyHealth {
            calls: s.calls,
            errors: s.errors,
            bad_outputs: s.bad_outputs,
            quoted: s.quoted,
        }
    }

    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
}

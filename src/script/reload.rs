//! Hot reload: edit the script while the bot runs.
//!
//! A watcher thread reads the file every 100 ms and compares a content hash
//! (robust where modification times are coarse). On a change it compiles the
//! new version with its own engine (same caps and parameters), including
//! its compiled fast form ([`crate::script::fast`]), test-runs it
//! ([`crate::script::trial`]: on a sample state, edge states and the last
//! ~1000 real states the hot thread saw, checking the outputs' shape and,
//! where the strategy enforces its time budget, the time per call against
//! `[script] max_call_us`), and only then hands it to
//! the hot thread through a ring. A version that fails to compile or the
//! check is reported (file:line:col, or the state and value it failed on)
//! and never sent: the last good version keeps running. The real states
//! come from the hot thread through a ring of their own
//! ([`crate::script::samples`], [`Reloadable::sample`]). The
//! hot thread swaps between two events ([`Reloadable::poll`]) and returns
//! the replaced version through a second ring, so it is freed here, not on
//! the hot thread. From save to active takes at most one poll period plus
//! one event.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::ring::{ring, Consumer, Producer};
use crate::script::params::SharedParams;
use crate::script::samples::{sampler, Sampler, SAMPLE_EVERY};
use crate::script::{
    compile, engine, fnv1a, trial, CompiledScript, MarketState, NotCompiled, Params, ScriptError, ScriptLimits,
};

/// How often the file is read.
pub const POLL: Duration = Duration::from_millis(100);

/// What the watcher reports (to the log or dashboard).
#[derive(Debug, Clone, PartialEq)]
pub enum ReloadEvent {
    /// A new version compiled, passed its test run and was handed over;
    /// `not_compiled` says why it runs interpreted (`None`: on the fast path).
    Loaded { path: PathBuf, hash: u64, not_compiled: Option<NotCompiled> },
    /// A new version was refused; the last good one keeps running.
    Refused(ScriptError),
}

/// The hot thread's end: new versions in, old versions out, and the states
/// calls saw out to the reload check.
pub struct Reloadable {
    incoming: Consumer<Box<CompiledScript>>,
    retired: Producer<Box<CompiledScript>>,
    samples: Sampler,
    /// `[script] max_call_us` (ns) the reload check holds new versions to,
    /// shared with the watcher thread.
    max_call_ns: Arc<AtomicU64>,
}

impl Reloadable {
    /// The time per call new versions are held to (the strategy's budget;
    /// [`crate::script::ScriptStrategy::set_budget`] keeps it in step).
    pub fn set_max_call_ns(&self, max_call_ns: u64) {
        self.max_call_ns.store(max_call_ns, Ordering::Relaxed);
    }

    /// Whether this call's state is one to hand to the reload check (one
    /// call in [`SAMPLE_EVERY`]).
    #[inline]
    pub fn sample_due(&mut self) -> bool {
        self.samples.due()
    }

    /// Hands a call's state to the reload check (never blocks or allocates).
    #[inline]
    pub fn sample(&self, m: &MarketState) {
        self.samples.push(m);
    }

    /// The newest handed-over version, if any (call between events). Older
    /// ones still queued are skipped and handed back to be freed.
    #[inline]
    pub fn poll(&mut self) -> Option<Box<CompiledScript>> {
        let mut newest = self.incoming.pop()?;
        while let Some(next) = self.incoming.pop() {
            self.retire(std::mem::replace(&mut newest, next));
        }
        Some(newest)
    }

    /// Hands a replaced version back to be freed off the hot thread.
    #[inline]
    pub fn retire(&self, old: Box<CompiledScript>) {
        // A full ring (it holds 16) would drop it here instead: counted, harmless.
        let _ = self.retired.push(old);
    }
}

/// The watcher thread; stops when dropped.
pub struct Watcher {
    stop: Arc<AtomicBool>,
    force: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Watcher {
    /// Compiles, test-runs and hands over the file again on the next poll
    /// even if it has not changed (the dashboard's `r`).
    pub fn reload_now(&self) {
        self.force.store(true, Ordering::Relaxed);
    }

    /// A handle that can ask for a reload from another thread.
    pub fn reload_handle(&self) -> Arc<AtomicBool> {
        self.force.clone()
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A state to test-run new versions on: a plausible book, flat position.
pub fn sample_state() -> MarketState {
    MarketState {
        best_bid: 99.99,
        best_ask: 100.01,
        bid_qty: 1.0,
        ask_qty: 1.0,
        mid: 100.0,
        microprice: 100.0,
        spread_bps: 2.0,
        max_position: 1.0,
        min_order_size: 0.01,
        target_spread_pct: 0.1,
        spread_state: "normal",
        volatility_state: "medium",
        direction: "neutral",
        advice_multiplier: 1.0,
        spread_mult: 1.0,
        vol_mult: 1.0,
        dir_mult: 1.0,
        ..MarketState::default()
    }
}

/// Starts watching `path` (whose current version, with content hash
/// `current_hash`, is already running). `report` receives every event.
/// New versions are held to the time budget of the strategy the
/// [`Reloadable`] is attached to, when it enforces one
/// ([`Reloadable::set_max_call_ns`]).
pub fn watch(
    path: PathBuf,
    current_hash: u64,
    limits: ScriptLimits,
    params: Params,
    report: impl FnMut(ReloadEvent) + Send + 'static,
) -> (Watcher, Reloadable) {
    watch_shared(path, current_hash, limits, SharedParams::new(params), report)
}

/// [`watch`] with `[strategy.params]` that may change while running
/// ([`crate::script::params`]): a change rebuilds the script with the new
/// values and hands it over like a reload.
pub fn watch_shared(
    path: PathBuf,
    current_hash: u64,
    limits: ScriptLimits,
    params: SharedParams,
    mut report: impl FnMut(ReloadEvent) + Send + 'static,
) -> (Watcher, Reloadable) {
    let (to_hot, incoming) = ring::<Box<CompiledScript>>(4);
    let (retired, mut from_hot) = ring::<Box<CompiledScript>>(16);
    let (samples, mut real) = sampler(SAMPLE_EVERY);
    // No time limit until a strategy enforcing a budget is attached.
    let max_call_ns = Arc::new(AtomicU64::new(u64::MAX));
    let budget = max_call_ns.clone();
    let stop = Arc::new(AtomicBool::new(false));
    let force = Arc::new(AtomicBool::new(false));
    let (stop_flag, force_flag) = (stop.clone(), force.clone());
    // The values the running version was built with: read here, not on the
    // thread, so a change made before the thread first runs still counts.
    let (mut generation, mut values) = params.current();
    let thread = std::thread::Builder::new()
        .name("mmbot-script".into())
        .spawn(move || {
            let mut engine = engine(&limits, &values, None);
            let mut seen = current_hash;
            let file = path.display().to_string();
            while !stop_flag.load(Ordering::Relaxed) {
                std::thread::sleep(POLL);
                // Versions the hot thread replaced are freed here.
                while from_hot.pop().is_some() {}
                real.drain();
                let Ok(source) = std::fs::read_to_string(&path) else { continue };
                let hash = fnv1a(source.as_bytes());
                // Live [strategy.params] (params.rs): a new engine, and the
                // script rebuilt with the new values even if unchanged.
                let retune = params.generation() != generation;
                if retune {
                    (generation, values) = params.current();
                    engine = crate::script::engine(&limits, &values, None);
                }
                if hash == seen && !retune && !force_flag.swap(false, Ordering::Relaxed) {
                    continue;
                }
                seen = hash;
                let checked = compile(&engine, &file, &source).and_then(|script| {
                    let max_call_ns = budget.load(Ordering::Relaxed);
                    trial::check(&script, &limits, &values, max_call_ns, real.as_slice())?;
                    Ok(script)
                });
                match checked {
                    Ok(script) => {
                        // The fast form was built with the script, here:
                        // the hot thread only swaps.
                        let not_compiled = script.not_compiled().cloned();
                        // Latest wins: a version the hot thread has not
                        // taken yet is displaced (and freed here).
                        to_hot.push_latest(Box::new(script));
                        report(ReloadEvent::Loaded { path: path.clone(), hash, not_compiled });
                    }
                    Err(e) => report(ReloadEvent::Refused(e)),
                }
            }
        })
        .expect("spawning the script thread");
    (Watcher { stop, force, thread: Some(thread) }, Reloadable { incoming, retired, samples, max_call_ns })
}

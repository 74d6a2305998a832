//! The time budget of one script call on the hot path: `[script]
//! max_call_us`, and how many calls over it in a window revert the script
//! (or pull, with no version to revert to).
//!
//! How a call is measured: the hot path already stamps the strategy stage
//! with its calibrated clock ([`crate::stats::clock::Clock`], the TSC where
//! it is invariant); [`crate::hot::strategy::Strategy::after_call`] hands
//! that same number to the strategy once the quote is out, so the budget
//! reads no clock of its own and adds nothing before the quote: after it, one
//! comparison per call, and a store of the event time on a call over budget.
//! The stage is what the hot path waits for between the book being ready and
//! the decision: this event's features (a few hundred ns in a release
//! build), building `m`, taking a reloaded version and running `quote(m)`.
//! So a budget under ~1 us leaves the script little; the default, 50 us, is
//! ~25x a typical compiled decision.
//!
//! The rule ([`BudgetWatch`]): a call over `max_call_us` is counted
//! (`over_budget`); when `over_budget_calls` calls over budget fall within
//! `over_budget_window_s` of each other (a sliding window, in event time:
//! the receive time of the events, simulated in backtests), the version is
//! tripped. One slow call, or a few scattered ones (the OS taking the core
//! away in the middle of a call looks exactly like a slow call), never trip
//! it; a version slow on most calls trips after exactly `over_budget_calls`
//! of them.
//!
//! What a trip does ([`BudgetMode::Enforce`]: live, paper and demo runs of
//! an optimized build):
//! * with a version to go back to (the one before the last reload), the
//!   script reverts to it (`budget_reverts`), as a version that keeps failing
//!   does;
//! * with none, quotes are pulled (`budget_pulls`) and `quote(m)` is not
//!   called any more, until a new version is loaded: saving the file (or
//!   `r` on the dashboard, which reloads the same file) hands a version over
//!   after the reload check ([`crate::script::reload`]) and clears the
//!   pulled state. Nothing else clears it: a version that stalled the hot
//!   path does not get to try again on its own.
//!
//! Either way the strategy keeps a [`BudgetEvent`] (the latest) that the log
//! side formats off the hot thread, and the counters tell it a new one came.
//!
//! The reload check holds a new version to the same `max_call_us` (its
//! median call over the real states) when the budget is enforced.
//!
//! [`BudgetMode::CountOnly`] counts calls over budget for the report and
//! does nothing else (no revert, no pull, no refusal of a reload for its
//! time). It is the mode of
//! * backtests, sweeps, `bench` and `script check`: wall time depends on the
//!   machine and its load, and two runs of the same backtest must give the
//!   same trades (DESIGN.md: "backtest equals live");
//! * live, paper and demo runs of a debug (unoptimized) build: the budget
//!   is a release-build figure, and a debug build's hot path is 10-50x
//!   slower (measured in the demo: 10-15 us of features and 25-90 us of
//!   `decide` per event in debug, against ~1-3 us in all in release), so
//!   it would pull every script.

use std::fmt;
use std::time::Duration;

/// `[script]` time-budget settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScriptBudget {
    /// Wall time one call may take, ns (`max_call_us`, default 50 us).
    pub max_call_ns: u64,
    /// Calls over budget within `window` that revert the version
    /// (`over_budget_calls`, default 5).
    pub strikes: u32,
    /// The window the strikes are counted in (`over_budget_window_s`,
    /// default 10 s).
    pub window: Duration,
}

impl Default for ScriptBudget {
    fn default() -> Self {
        Self { max_call_ns: 50_000, strikes: 5, window: Duration::from_secs(10) }
    }
}

impl fmt::Display for ScriptBudget {
    /// `5 calls over 50 us within 10 s`, in the config's own units.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} call{} over {} us within {} s",
            self.strikes,
            if self.strikes == 1 { "" } else { "s" },
            self.max_call_ns as f64 / 1e3,
            self.window.as_secs_f64()
        )
    }
}

/// Whether a tripped budget acts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BudgetMode {
    /// Revert to the previous version, or pull until a new one is loaded;
    /// the reload check refuses a version over budget (live, paper and demo
    /// runs of an optimized build).
    Enforce,
    /// Count calls over budget, never act (backtests, sweeps, benches,
    /// `script check`, debug builds; and a strategy nobody set a budget on).
    #[default]
    CountOnly,
}

impl BudgetMode {
    /// [`BudgetMode::Enforce`] in an optimized build, else
    /// [`BudgetMode::CountOnly`] (the mode of live, paper and demo runs).
    pub fn for_build() -> Self {
        if cfg!(debug_assertions) {
            BudgetMode::CountOnly
        } else {
            BudgetMode::Enforce
        }
    }
}

/// What one call's time meant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Within,
    /// Over budget, counted; not (yet) enough of them in the window.
    Over,
    /// Over budget, and the `strikes`-th within the window: act.
    Tripped,
}

/// The sliding window: the event times of the latest `strikes` calls over
/// budget, in a circular buffer allocated once (here, not on the hot path).
#[derive(Debug, Clone)]
pub struct BudgetWatch {
    budget: ScriptBudget,
    window_ns: i64,
    /// Event times (ns) of calls over budget; `times[next]` is the oldest
    /// once `filled == times.len()`.
    times: Box<[i64]>,
    next: usize,
    filled: usize,
}

impl BudgetWatch {
    pub fn new(budget: ScriptBudget) -> Self {
        let budget = ScriptBudget { strikes: budget.strikes.max(1), ..budget };
        Self {
            budget,
            window_ns: budget.window.as_nanos().min(i64::MAX as u128) as i64,
            times: vec![0; budget.strikes as usize].into_boxed_slice(),
            next: 0,
            filled: 0,
        }
    }

    pub fn budget(&self) -> ScriptBudget {
        self.budget
    }

    /// One call took `elapsed_ns`, at event time `now_ns`. A trip clears
    /// the window (the next version starts with none).
    #[inline]
    pub fn record(&mut self, elapsed_ns: u64, now_ns: i64) -> Verdict {
        if elapsed_ns <= self.budget.max_call_ns {
            return Verdict::Within;
        }
        let n = self.times.len();
        self.times[self.next] = now_ns;
        self.next = (self.next + 1) % n;
        self.filled = (self.filled + 1).min(n);
        // Full: `times[next]` is the oldest of the last `strikes`. (Event
        // times going backwards, a clock step, count as within.)
        if self.filled == n && now_ns.saturating_sub(self.times[self.next]) <= self.window_ns {
            self.clear();
            return Verdict::Tripped;
        }
        Verdict::Over
    }

    /// Forgets the calls over budget so far (a new version runs).
    #[inline]
    pub fn clear(&mut self) {
        self.filled = 0;
        self.next = 0;
    }

    /// Calls over budget now in the buffer (at most `strikes`).
    pub fn pending(&self) -> usize {
        self.filled
    }
}

/// What a trip did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BudgetAction {
    /// Went back to the version with content hash `to`.
    Reverted { to: u64 },
    /// No version to go back to: quotes pulled until a new one is loaded.
    Pulled,
}

/// One trip of the budget, kept by the strategy for the log side (a `Copy`
/// value: the hot thread formats nothing; [`fmt::Display`] is for the log).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BudgetEvent {
    pub action: BudgetAction,
    /// Content hash (FNV-1a 64) of the version that went over budget.
    pub hash: u64,
    /// Event time of the call that tripped it, ns.
    pub at_ns: i64,
    /// That call's time, ns.
    pub elapsed_ns: u64,
    pub budget: ScriptBudget,
}

impl fmt::Display for BudgetEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "version fnv1a {:016x} went over its time budget ({}; the last call took {:.1} us): ",
            self.hash,
            self.budget,
            self.elapsed_ns as f64 / 1e3
        )?;
        match self.action {
            BudgetAction::Reverted { to } => write!(f, "reverted to the previous version, fnv1a {to:016x}"),
            BudgetAction::Pulled => write!(
                f,
                "no previous version to revert to, so quotes are pulled until a new version is loaded (save the \
                 script, or press r on the dashboard); make quote(m) cheaper or raise [script] max_call_us"
            ),
        }
    }
}

/// The budget as a [`crate::script::ScriptStrategy`] keeps it: the window,
/// the mode, whether quotes are pulled by it, and the latest trip.
#[derive(Debug, Clone)]
pub struct Budget {
    watch: BudgetWatch,
    mode: BudgetMode,
    pulled: bool,
    last: Option<BudgetEvent>,
}

impl Default for Budget {
    fn default() -> Self {
        Self::new(ScriptBudget::default(), BudgetMode::default())
    }
}

impl Budget {
    pub fn new(budget: ScriptBudget, mode: BudgetMode) -> Self {
        Self { watch: BudgetWatch::new(budget), mode, pulled: false, last: None }
    }

    pub fn settings(&self) -> ScriptBudget {
        self.watch.budget()
    }

    pub fn mode(&self) -> BudgetMode {
        self.mode
    }

    /// The time per call the reload check holds new versions to: the
    /// budget when enforced, none (`u64::MAX`) when only counting.
    pub fn reload_limit_ns(&self) -> u64 {
        match self.mode {
            BudgetMode::Enforce => self.watch.budget().max_call_ns,
            BudgetMode::CountOnly => u64::MAX,
        }
    }

    /// Quotes are pulled by the budget (and `quote(m)` not called) until a
    /// new version is loaded.
    #[inline]
    pub fn pulled(&self) -> bool {
        self.pulled
    }

    /// The latest trip, if any.
    pub fn last_event(&self) -> Option<BudgetEvent> {
        self.last
    }

    /// One call's time: `over_budget` counts a call over budget; true when
    /// the caller must act (revert, or pull with [`Budget::tripped`]).
    /// Calls made while pulled are not the script's: ignored.
    #[inline]
    pub fn record(&mut self, elapsed_ns: u64, now_ns: i64, over_budget: &mut u64) -> bool {
        if self.pulled {
            return false;
        }
        match self.watch.record(elapsed_ns, now_ns) {
            Verdict::Within => false,
            Verdict::Over => {
                *over_budget += 1;
                false
            }
            Verdict::Tripped => {
                *over_budget += 1;
                self.mode == BudgetMode::Enforce
            }
        }
    }

    /// A trip was acted on: `reverted_to` the previous version's hash, or
    /// `None` (pulled). Counts it in `reverts` or `pulls` and keeps the event.
    pub fn tripped(
        &mut self,
        hash: u64,
        reverted_to: Option<u64>,
        at_ns: i64,
        elapsed_ns: u64,
        reverts: &mut u64,
        pulls: &mut u64,
    ) {
        let action = match reverted_to {
            Some(to) => {
                *reverts += 1;
                BudgetAction::Reverted { to }
            }
            None => {
                *pulls += 1;
                self.pulled = true;
                BudgetAction::Pulled
            }
        };
        self.last = Some(BudgetEvent { action, hash, at_ns, elapsed_ns, budget: self.watch.budget() });
    }

    /// A new version runs (reloaded, replaced or reverted to): no calls
    /// over budget so far, and not pulled.
    #[inline]
    pub fn new_version(&mut self) {
        self.watch.clear();
        self.pulled = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;

    fn watch(strikes: u32, window_s: u64) -> BudgetWatch {
        BudgetWatch::new(ScriptBudget { max_call_ns: 1_000, strikes, window: Duration::from_secs(window_s) })
    }

    #[test]
    fn calls_within_budget_never_count() {
        let mut w = watch(2, 10);
        for t in 0..100 {
            assert_eq!(w.record(1_000, t), Verdict::Within);
        }
        assert_eq!(w.pending(), 0);
    }

    #[test]
    fn strikes_within_the_window_trip_and_clear() {
        let mut w = watch(3, 10);
        assert_eq!(w.record(1_001, 0), Verdict::Over);
        assert_eq!(w.record(5_000, 4 * S), Verdict::Over);
        assert_eq!(w.record(9_999_999, 10 * S), Verdict::Tripped, "first and third exactly 10 s apart");
        assert_eq!(w.pending(), 0);
        // After a trip the count starts again.
        assert_eq!(w.record(2_000, 10 * S + 1), Verdict::Over);
        assert_eq!(w.record(2_000, 10 * S + 2), Verdict::Over);
        assert_eq!(w.record(2_000, 10 * S + 3), Verdict::Tripped);
    }

    #[test]
    fn strikes_spread_wider_than_the_window_slide_out() {
        let mut w = watch(3, 10);
        // One strike every 6 s: any three span 12 s, never within 10 s.
        for i in 0..20 {
            assert_eq!(w.record(2_000, i * 6 * S), Verdict::Over, "strike {i}");
        }
        // Then a quick one: the last three (108 s, 114 s, 114 s + 1 ns)
        // span 6 s.
        assert_eq!(w.record(2_000, 19 * 6 * S + 1), Verdict::Tripped);
    }

    #[test]
    fn one_strike_trips_at_once_and_time_going_back_counts_as_within() {
        let mut w = watch(1, 10);
        assert_eq!(w.record(1_001, 5 * S), Verdict::Tripped);
        let mut w = watch(2, 1);
        assert_eq!(w.record(1_001, 5 * S), Verdict::Over);
        assert_eq!(w.record(1_001, 0), Verdict::Tripped);
        // A zero-strike setting is taken as one.
        assert_eq!(watch(0, 1).record(1_001, 0), Verdict::Tripped);
    }

    #[test]
    fn count_only_counts_and_enforce_acts_once_then_pulls_until_a_new_version() {
        let budget = ScriptBudget { max_call_ns: 1_000, strikes: 2, window: Duration::from_secs(10) };
        let mut count = Budget::new(budget, BudgetMode::CountOnly);
        let mut over = 0;
        for t in 0..10 {
            assert!(!count.record(5_000, t, &mut over));
        }
        assert_eq!(over, 10);

        let mut b = Budget::new(budget, BudgetMode::Enforce);
        let (mut over, mut reverts, mut pulls) = (0, 0, 0);
        assert!(!b.record(5_000, 0, &mut over));
        assert!(b.record(5_000, 1, &mut over));
        b.tripped(0xaa, Some(0xbb), 1, 5_000, &mut reverts, &mut pulls);
        assert_eq!((over, reverts, pulls, b.pulled()), (2, 1, 0, false));
        assert_eq!(b.last_event().unwrap().action, BudgetAction::Reverted { to: 0xbb });
        assert!(!b.record(5_000, 2, &mut over));
        assert!(b.record(5_000, 3, &mut over));
        b.tripped(0xbb, None, 3, 5_000, &mut reverts, &mut pulls);
        assert_eq!((over, reverts, pulls, b.pulled()), (4, 1, 1, true));
        // Pulled: calls are not the script's, nothing counts.
        for t in 4..10 {
            assert!(!b.record(5_000, t, &mut over));
        }
        assert_eq!(over, 4);
        b.new_version();
        assert!(!b.pulled());
        assert!(!b.record(5_000, 20, &mut over));
        assert_eq!(over, 5);
    }

    #[test]
    fn the_event_says_what_happened_and_what_to_do() {
        let budget = ScriptBudget::default();
        let ev = |action| BudgetEvent { action, hash: 0xabc, at_ns: 0, elapsed_ns: 812_345, budget };
        let reverted = ev(BudgetAction::Reverted { to: 0xdef }).to_string();
        assert_eq!(
            reverted,
            "version fnv1a 0000000000000abc went over its time budget (5 calls over 50 us within 10 s; the last \
             call took 812.3 us): reverted to the previous version, fnv1a 0000000000000def"
        );
        let pulled = ev(BudgetAction::Pulled).to_string();
        assert!(pulled.contains("quotes are pulled until a new version is loaded"), "{pulled}");
        assert!(pulled.contains("raise [script] max_call_us"), "{pulled}");
    }
}

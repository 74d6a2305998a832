//! The time budget of one script call on the hot path: `[script]
//! max_call_us`, and how many calls over it in a window revert the script
//! (or pull, with no version to revert to).

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

//! What an operator may change while the advisor runs (the control API's
//! `POST /api/ai`): pause advice (no calls, paid or offline; the advice in
//! force expires as it would), and the time between calls. Atomics the
//! scheduler thread reads each step: nothing waits on the operator.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

/// Shared between the scheduler thread and the control plane.
#[derive(Debug)]
pub struct Tuning {
    paused: AtomicBool,
    /// The step between ticks, ns, as configured.
    configured_ns: i64,
    /// The step in force, ns.
    step_ns: AtomicI64,
}

impl Tuning {
    /// `step`: `[ai] interval` (or `min_interval` with regime_change).
    pub fn new(step: Duration) -> Self {
        let ns = step.as_nanos().min(i64::MAX as u128) as i64;
        Self { paused: AtomicBool::new(false), configured_ns: ns, step_ns: AtomicI64::new(ns) }
    }

    pub fn paused(&self) -> bool {
        self.paused.load(Ordering::Relaxed)
    }

    pub fn set_paused(&self, on: bool) {
        self.paused.store(on, Ordering::Relaxed);
    }

    pub fn step(&self) -> Duration {
        Duration::from_nanos(self.step_ns.load(Ordering::Relaxed).max(0) as u64)
    }

    pub(super) fn step_ns(&self) -> i64 {
        self.step_ns.load(Ordering::Relaxed)
    }

    /// The step as configured (the bounds of a change are set around it).
    pub fn configured(&self) -> Duration {
        Duration::from_nanos(self.configured_ns.max(0) as u64)
    }

    /// Sets the step; the caller has checked it against its bounds.
    pub fn set_step(&self, step: Duration) {
        self.step_ns.store(step.as_nanos().min(i64::MAX as u128) as i64, Ordering::Relaxed);
    }
}

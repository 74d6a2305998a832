//! When the advisor asks, in the hot path's time.
//!
//! [`HotClock`] is the advisor's idea of the hot thread's "now": the newest
//! snapshot's `time_ns` plus the wall time since it arrived, times the
//! replay speed (1 live; N for `mmbot replay --speed N`). Live that is the
//! wall clock; in a replay it is the recording's time, so every interval,
//! every age and every lifetime is recording time, as the strategy sees it.
//!
//! [`Schedule`] turns that time into ticks: every `interval` for
//! `call_on = "interval"`; every `min_interval` for `call_on =
//! "regime_change"`, where a tick calls only when the regime moved since
//! the advice in force, or when `max_interval` has passed since the last
//! call (so advice never goes unrefreshed for long).

use std::time::Instant;

use crate::ai::{AiConfig, CallOn};

/// The hot path's time as the advisor reckons it.
#[derive(Debug, Clone, Copy)]
pub struct HotClock {
    speed: f64,
    /// The newest snapshot's time and when that time first arrived here.
    newest: Option<(i64, Instant)>,
}

impl HotClock {
    /// `speed`: hot-path ns per wall ns (0: hot time moves only with
    /// snapshots; a value that is not a finite number >= 0 reads as 1).
    pub fn new(speed: f64) -> Self {
        let speed = if speed.is_finite() && speed >= 0.0 { speed } else { 1.0 };
        Self { speed, newest: None }
    }

    /// A snapshot stamped `time_ns` arrived at `arrived`. A snapshot with
    /// the time of the one before (a quiet market: the hot thread hands
    /// over its last event's time again) moves nothing: hot time runs on
    /// from when that time first arrived.
    pub fn observe(&mut self, time_ns: i64, arrived: Instant) {
        if self.newest.map(|(t, _)| t) != Some(time_ns) {
            self.newest = Some((time_ns, arrived));
        }
    }

    /// Hot-path ns that pass in the wall time from `since` to `at`.
    pub fn elapsed_ns(&self, since: Instant, at: Instant) -> i64 {
        let wall = at.saturating_duration_since(since).as_nanos().min(i64::MAX as u128) as f64;
        (wall * self.speed).min(i64::MAX as f64) as i64
    }

    /// How old a snapshot that arrived at `since` is at `at`, hot-path ns
    /// (wall ns at speed 0, where hot time stands still between snapshots).
    pub fn stale_ns(&self, since: Instant, at: Instant) -> i64 {
        if self.speed > 0.0 {
            self.elapsed_ns(since, at)
        } else {
            at.saturating_duration_since(since).as_nanos().min(i64::MAX as u128) as i64
        }
    }

    /// The hot path's time at `at`, once a snapshot has arrived.
    pub fn now(&self, at: Instant) -> Option<i64> {
        self.newest.map(|(t, arrived)| t.saturating_add(self.elapsed_ns(arrived, at)))
    }
}

/// What a due tick does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tick {
    Call,
    /// `regime_change`: the regime has not moved and `max_interval` has not
    /// passed.
    NoChange,
}

/// Ticks and calls in hot-path ns.
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    call_on: CallOn,
    /// Between ticks: `interval`, or `min_interval` for regime_change.
    step_ns: i64,
    max_ns: i64,
    next_ns: Option<i64>,
    last_call_ns: Option<i64>,
}

fn ns(d: std::time::Duration) -> i64 {
    d.as_nanos().min(i64::MAX as u128) as i64
}

impl Schedule {
    pub fn new(ai: &AiConfig) -> Self {
        let step = match ai.call_on {
            CallOn::Interval => ai.interval,
            CallOn::RegimeChange => ai.min_interval,
        };
        Self {
            call_on: ai.call_on,
            // A zero interval would tick on every look: one ms at least.
            step_ns: ns(step).max(1_000_000),
            max_ns: ns(ai.max_interval).max(1_000_000),
            next_ns: None,
            last_call_ns: None,
        }
    }

    /// Changes the step between ticks (an operator's `POST /api/ai`); the
    /// next tick keeps its time when the step grows, and comes sooner when
    /// it shrinks.
    pub fn set_step_ns(&mut self, step_ns: i64) {
        let step_ns = step_ns.max(1_000_000);
        if step_ns != self.step_ns {
            if let Some(t) = self.next_ns {
                self.next_ns = Some(t.saturating_sub(self.step_ns).saturating_add(step_ns));
            }
            self.step_ns = step_ns;
        }
    }

    /// Whether a tick is due at `now_ns` (the first one is due at once);
    /// moves the next one an interval on. A clock that went back more than
    /// an interval (another recording) starts the schedule again.
    pub fn tick_due(&mut self, now_ns: i64) -> bool {
        match self.next_ns {
            Some(t) if now_ns < t.saturating_sub(self.step_ns) => {
                self.next_ns = Some(now_ns.saturating_add(self.step_ns));
                self.last_call_ns = None;
                true
            }
            Some(t) if now_ns < t => false,
            Some(t) => {
                let mut n = t.saturating_add(self.step_ns);
                if n <= now_ns {
                    n = now_ns.saturating_add(self.step_ns);
                }
                self.next_ns = Some(n);
                true
            }
            None => {
                self.next_ns = Some(now_ns.saturating_add(self.step_ns));
                true
            }
        }
    }

    /// On a due tick: call or not. `changed`: the regime moved since the
    /// advice in force (or there is none).
    pub fn decide(&self, now_ns: i64, changed: bool) -> Tick {
        match self.call_on {
            CallOn::Interval => Tick::Call,
            CallOn::RegimeChange => {
                let overdue = self.last_call_ns.is_none_or(|t| now_ns.saturating_sub(t) >= self.max_ns);
                if changed || overdue {
                    Tick::Call
                } else {
                    Tick::NoChange
                }
            }
        }
    }

    /// A call was made at `now_ns`.
    pub fn called(&mut self, now_ns: i64) {
        self.last_call_ns = Some(now_ns);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const S: i64 = 1_000_000_000;

    #[test]
    fn hot_time_is_the_snapshot_plus_wall_time_at_speed() {
        let t0 = Instant::now();
        let mut c = HotClock::new(10.0);
        assert_eq!(c.now(t0), None);
        c.observe(100 * S, t0);
        assert_eq!(c.now(t0 + Duration::from_millis(250)), Some(100 * S + 2_500_000_000));
        c.observe(103 * S, t0 + Duration::from_millis(300));
        assert_eq!(c.now(t0 + Duration::from_millis(300)), Some(103 * S));
        // The same time again: the clock runs on from its first arrival.
        c.observe(103 * S, t0 + Duration::from_millis(400));
        assert_eq!(c.now(t0 + Duration::from_millis(400)), Some(104 * S));
        // Speed 0: time moves only with snapshots.
        let mut c = HotClock::new(0.0);
        c.observe(7, t0);
        assert_eq!(c.now(t0 + Duration::from_secs(5)), Some(7));
        assert_eq!(HotClock::new(f64::NAN).speed, 1.0);
    }

    #[test]
    fn interval_ticks_keep_their_cadence() {
        let ai = AiConfig { interval: Duration::from_secs(5), ..AiConfig::default() };
        let mut s = Schedule::new(&ai);
        assert!(s.tick_due(0), "the first snapshot starts the schedule");
        assert!(!s.tick_due(4 * S));
        assert!(s.tick_due(5 * S + 10));
        assert!(!s.tick_due(9 * S), "the next tick is at 10 s, not 10 s + 10 ns");
        assert!(s.tick_due(10 * S));
        // Far behind: the next tick is an interval from now.
        assert!(s.tick_due(60 * S));
        assert!(!s.tick_due(64 * S));
        assert!(s.tick_due(65 * S));
        assert_eq!(s.decide(65 * S, false), Tick::Call);
        // Back in time (another recording): starts again.
        assert!(s.tick_due(S));
        assert!(!s.tick_due(2 * S));
    }

    #[test]
    fn regime_change_calls_on_a_change_and_at_max_interval() {
        let ai = AiConfig {
            interval: Duration::from_secs(5),
            call_on: CallOn::RegimeChange,
            min_interval: Duration::from_secs(2),
            max_interval: Duration::from_secs(10),
            ..AiConfig::default()
        };
        let mut s = Schedule::new(&ai);
        assert!(s.tick_due(0));
        assert_eq!(s.decide(0, false), Tick::Call, "no call yet: overdue");
        s.called(0);
        assert!(!s.tick_due(S), "ticks every min_interval");
        assert!(s.tick_due(2 * S));
        assert_eq!(s.decide(2 * S, false), Tick::NoChange);
        assert_eq!(s.decide(2 * S, true), Tick::Call);
        assert!(s.tick_due(10 * S));
        assert_eq!(s.decide(10 * S, false), Tick::Call, "max_interval passed");
    }
}

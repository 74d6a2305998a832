//! The clock the hot path stamps stages with: the CPU's time-stamp counter
//! where it is invariant and cheaper, else `Instant`.
//!
//! Why measure instead of assume: `Instant::now()` costs ~20-25 ns on the dev
//! VM and `rdtsc` ~10 ns, and five stamps per event make that difference a
//! visible share of a ~1 us tick-to-quote. [`Clock::calibrate`] measures both
//! (and the TSC's rate against `Instant`) once at start-up, picks the cheaper,
//! and reports both costs so latency figures can be read net of the clock.

use std::time::{Duration, Instant};

/// Which source [`Clock::now`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClockSource {
    Tsc,
    Instant,
}

/// A calibrated clock. `now()` returns raw ticks; `ns(a, b)` converts.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    source: ClockSource,
    origin: Instant,
    /// TSC ticks per ns (1.0 for `Instant`, whose ticks are ns).
    ticks_per_ns: f64,
    /// Measured cost of one reading, ns, for each source (TSC: NaN if unusable).
    pub tsc_cost_ns: f64,
    pub instant_cost_ns: f64,
}

#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn rdtsc() -> u64 {
    // SAFETY: `rdtsc` has no preconditions on x86_64 (every x86_64 CPU has
    // the TSC); it only reads a counter. Justified by `Clock::calibrate`'s
    // measured cost versus `Instant::now`, reported in every perf report.
    unsafe { core::arch::x86_64::_rdtsc() }
}

#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
fn rdtsc() -> u64 {
    0
}

/// The TSC counts at a constant rate through frequency changes and sleep
/// states only when the CPU says so; otherwise its ticks are not time.
fn tsc_is_invariant() -> bool {
    cfg!(target_arch = "x86_64")
        && std::fs::read_to_string("/proc/cpuinfo")
            .map(|s| s.contains(" constant_tsc") && s.contains(" nonstop_tsc"))
            .unwrap_or(false)
}

/// Average cost of one call of `f`, ns, over a tight loop.
fn cost_of(mut f: impl FnMut() -> u64) -> f64 {
    const N: u32 = 200_000;
    let mut sink = 0u64;
    let t = Instant::now();
    for _ in 0..N {
        sink = sink.wrapping_add(f());
    }
    std::hint::black_box(sink);
    t.elapsed().as_nanos() as f64 / N as f64
}

impl Clock {
    /// An `Instant`-based clock without calibration (tests, tools).
    pub fn instant() -> Self {
        Self {
            source: ClockSource::Instant,
            origin: Instant::now(),
            ticks_per_ns: 1.0,
            tsc_cost_ns: f64::NAN,
            instant_cost_ns: f64::NAN,
        }
    }

    /// Measures both sources (~30 ms) and picks the cheaper usable one.
    pub fn calibrate() -> Self {
        let origin = Instant::now();
        let instant_cost_ns = cost_of(|| origin.elapsed().as_nanos() as u64);
        if !tsc_is_invariant() {
            return Self { instant_cost_ns, ..Self::instant() };
        }
        let tsc_cost_ns = cost_of(rdtsc);
        // TSC rate against the monotonic clock over ~20 ms.
        let (t0, c0) = (Instant::now(), rdtsc());
        while t0.elapsed() < Duration::from_millis(20) {}
        let (c1, dt) = (rdtsc(), t0.elapsed().as_nanos() as f64);
        let ticks_per_ns = (c1.wrapping_sub(c0)) as f64 / dt;
        let source =
            if ticks_per_ns > 0.05 && tsc_cost_ns < instant_cost_ns { ClockSource::Tsc } else { ClockSource::Instant };
        Self {
            source,
            origin,
            ticks_per_ns: if source == ClockSource::Tsc { ticks_per_ns } else { 1.0 },
            tsc_cost_ns,
            instant_cost_ns,
        }
    }

    pub fn source(&self) -> ClockSource {
        self.source
    }

    /// The TSC's measured rate in GHz, when it is the clock's source.
    pub fn tsc_ghz(&self) -> Option<f64> {
        (self.source == ClockSource::Tsc).then_some(self.ticks_per_ns)
    }

    /// Raw ticks now.
    #[inline(always)]
    pub fn now(&self) -> u64 {
        match self.source {
            ClockSource::Tsc => rdtsc(),
            ClockSource::Instant => self.origin.elapsed().as_nanos() as u64,
        }
    }

    /// Nanoseconds from tick `a` to tick `b` (0 if `b` is not after `a`).
    #[inline(always)]
    pub fn ns(&self, a: u64, b: u64) -> u64 {
        let d = b.saturating_sub(a);
        match self.source {
            ClockSource::Tsc => (d as f64 / self.ticks_per_ns) as u64,
            ClockSource::Instant => d,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calibrated_clock_measures_time_forward() {
        let c = Clock::calibrate();
        assert!(c.instant_cost_ns > 0.0);
        let a = c.now();
        std::thread::sleep(Duration::from_millis(5));
        let ns = c.ns(a, c.now());
        assert!((4_000_000..1_000_000_000).contains(&ns), "{ns} ns for a 5 ms sleep ({:?})", c.source());
    }
}

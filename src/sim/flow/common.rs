//! The market factor several simulated symbols share: one Brownian path,
//! generated identically by every symbol's model from the same seed, that
//! moves each symbol's fair value together with the others by the chosen
//! correlation.
//!
//! Why a regenerated path instead of a shared object: each symbol's model
//! runs its own events at its own times, on whichever thread serves it;
//! a path that is a pure function of (seed, start, time) needs no sharing
//! and stays deterministic per seed. The path is sampled on a fixed grid
//! (`GRID_US`); a symbol reads it at its event times, so two symbols'
//! fair-value moves over any interval longer than the grid have the
//! correlation asked for.

use crate::feed::synthetic::Rng;

/// The path's time grid, microseconds.
const GRID_US: i64 = 10_000;

/// How strongly symbols move together (`mmbot sim --correlation`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CommonFactor {
    /// Seeds the shared path: the same for every symbol of a simulator.
    pub seed: u64,
    /// Correlation of any two symbols' fair-value moves, 0 (independent)
    /// to 1 (one path).
    pub correlation: f64,
}

/// One symbol's copy of the shared path, read forward in time.
pub(super) struct CommonPath {
    rng: Rng,
    /// Weight of the shared increment and of the symbol's own one:
    /// sqrt(rho) and sqrt(1 - rho), so each step keeps unit variance.
    pub shared: f64,
    pub own: f64,
    /// The grid point reached, microseconds, and the path's value there.
    at_us: i64,
    value: f64,
    /// The value when the symbol last read it.
    last_read: f64,
}

impl CommonPath {
    pub fn new(factor: CommonFactor, start_us: i64) -> Self {
        let rho = if factor.correlation.is_finite() { factor.correlation.clamp(0.0, 1.0) } else { 0.0 };
        Self {
            rng: Rng(super::mix_seed(factor.seed ^ 0xC0FF_EE00_D15E_A5E5)),
            shared: rho.sqrt(),
            own: (1.0 - rho).sqrt(),
            at_us: start_us,
            value: 0.0,
            last_read: 0.0,
        }
    }

    /// The path's move since the last read, in standard Brownian units
    /// (variance = seconds), as of `t_us` (rounded down to the grid).
    pub fn advance(&mut self, t_us: i64) -> f64 {
        let step_sd = (GRID_US as f64 * 1e-6).sqrt();
        // Bounded: a read far in the future (a clock jump) walks at most a
        // day of grid points at once; the rest is skipped.
        let target = t_us.min(self.at_us.saturating_add(86_400_000_000));
        while self.at_us + GRID_US <= target {
            self.at_us += GRID_US;
            self.value += step_sd * self.normal();
        }
        let moved = self.value - self.last_read;
        self.last_read = self.value;
        moved
    }

    fn normal(&mut self) -> f64 {
        let mut uniform = || ((self.rng.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
        let (u1, u2) = (uniform(), uniform());
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

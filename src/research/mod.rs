//! Research at scale: many backtests of one strategy over the same
//! recordings, to find good parameters and to see whether they hold up.
//!
//! * [`grid`]: the points of a sweep (a cartesian `--grid`, a `--list`, scripts).
//! * [`cache`]: recordings decompressed once, shared in memory by every
//!   worker and kept on disk (checked by content hash) for the next sweep.
//! * [`sweep`]: one worker per core, each running whole deterministic
//!   backtests ([`crate::backtest::run_chunks`] over the cached lines).
//! * [`walk_forward`]: best point on each training window, reported on the
//!   next window beside the best in hindsight.
//! * [`heatmap`] and [`output`]: what a sweep leaves behind (`sweep.csv`,
//!   `sweep.json`, `heatmap.svg`, `walk_forward.csv`).
//!
//! `mmbot sweep` (src/cli/sweep.rs) puts these together.

pub mod cache;
pub mod grid;
pub mod heatmap;
pub mod output;
pub mod sweep;
pub mod walk_forward;

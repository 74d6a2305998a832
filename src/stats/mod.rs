//! Measurements: the clock the hot path stamps with and the latency
//! histograms it records into.

pub mod baseline;
pub mod clock;
pub mod latency;

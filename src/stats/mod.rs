//! Measurements: the clock the hot path stamps with and the latency
//! histograms it records into, and the SVG plots drawn from them.

pub mod baseline;
pub mod calendar;
pub mod clock;
pub mod latency;
pub mod plot;

//! Measurements: the clock the hot path stamps with, the latency
//! histograms it records into, the machine they were made on, and the SVG
//! plots drawn from them.

pub mod baseline;
pub mod calendar;
pub mod clock;
pub mod host;
pub mod latency;
pub mod plot;

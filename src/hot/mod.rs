//! Everything that runs on the pinned hot thread, and nothing else.
//!
//! Rules for code in here (DESIGN.md): no allocation after start-up, no locks,
//! no blocking calls, no log formatting, no panics on anything from the
//! network; prices and quantities are fixed-point `i64`.

pub mod advice;
pub mod book;
pub mod compact;
pub mod engine;
pub mod features;
pub mod fixed;
pub mod group;
pub mod guard;
pub mod market;
pub mod msg;
pub mod parse;
pub mod peers;
pub mod strategy;
pub mod sync;
pub mod touch;

/// A seeded xorshift64 for the hot modules' randomized tests: the next
/// value below `n` on each call (reproducible, no dependency).
#[cfg(test)]
pub(crate) fn test_rng(mut seed: u64) -> impl FnMut(u64) -> u64 {
    move |n| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    }
}

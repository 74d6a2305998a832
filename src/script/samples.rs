//! Real market states for the reload check: the hot thread offers the
//! state each call saw ([`Sampler::offer`]); the reload thread keeps the
//! latest [`KEEP`] of them ([`RealStates`]) and test-runs a new version on
//! them before it may reach the hot thread ([`crate::script::reload`]).
//!
//! The hand-off is the project's lock-free ring ([`crate::ring`]): a push
//! never blocks, never allocates (the ring's slots were allocated when it
//! was made), and a full ring displaces its oldest state ("latest wins"),
//! counted. The reload thread drains it every poll into its own `VecDeque`.
//!
//! Cost on the hot thread. Measured with crossbeam's `ArrayQueue` (the
//! ring) in a release build (fat LTO) on the 2-core dev machine, under load:
//! one push costs ~25-70 ns for today's ~220-byte state and ~200-550 ns for
//! a ~3 KB one (the whole book, trades and own orders in scope): the value
//! is moved by value into the queue, into a slot cold in cache. So
//! * one call in [`SAMPLE_EVERY`] is kept: ~25-70 ns a call on average at
//!   3 KB, ~3-10 ns at 220 bytes; between samples, one decrement;
//! * the push happens after the quote is out
//!   ([`crate::hot::strategy::Strategy::after_call`]): on a sampled call the
//!   decision only copies the state aside, so the tick-to-quote path pays a
//!   copy to hot memory, not the ring push.
//!
//! Callers that call `decide` without `after_call` (tools, some tests) feed
//! no states; the hot path does.

use std::collections::VecDeque;

use crate::ring::{ring, Consumer, Producer};
use crate::script::MarketState;

/// States kept for the reload check.
pub const KEEP: usize = 1000;

/// Every how many calls one state is kept: the last [`KEEP`] then span the
/// last ~8,000 calls (at Binance's 10 depth events a second, ~13 minutes;
/// on a busy stream, seconds).
pub const SAMPLE_EVERY: u32 = 8;

/// Ring slots between two drains (the reload thread drains every 100 ms;
/// more than 256 x 8 calls in 100 ms displaces the oldest, harmlessly).
const RING: usize = 256;

/// The hot thread's end.
pub struct Sampler {
    tx: Producer<MarketState>,
    every: u32,
    /// Calls until the next state is offered.
    countdown: u32,
}

impl Sampler {
    /// Whether this call's state is to be kept (one call in `every`).
    #[inline]
    pub fn due(&mut self) -> bool {
        if self.countdown > 0 {
            self.countdown -= 1;
            return false;
        }
        self.countdown = self.every - 1;
        true
    }

    /// Pushes `m` (never blocks or allocates; a full ring displaces its oldest).
    #[inline]
    pub fn push(&self, m: &MarketState) {
        self.tx.push_latest(*m);
    }

    /// [`Sampler::due`], then [`Sampler::push`].
    #[inline]
    pub fn offer(&mut self, m: &MarketState) {
        if self.due() {
            self.push(m);
        }
    }

    /// States displaced before the reload thread drained them.
    pub fn displaced(&self) -> u64 {
        self.tx.dropped()
    }
}

/// The reload thread's end: the latest [`KEEP`] states, oldest first.
pub struct RealStates {
    rx: Consumer<MarketState>,
    kept: VecDeque<MarketState>,
}

impl RealStates {
    /// Takes what the hot thread offered since the last drain.
    pub fn drain(&mut self) {
        while let Some(m) = self.rx.pop() {
            if self.kept.len() == KEEP {
                self.kept.pop_front();
            }
            self.kept.push_back(m);
        }
    }

    /// The kept states, oldest first.
    pub fn states(&self) -> &VecDeque<MarketState> {
        &self.kept
    }

    /// The kept states, oldest first, as one slice.
    pub fn as_slice(&mut self) -> &[MarketState] {
        self.kept.make_contiguous()
    }

    /// The newest kept state.
    pub fn latest(&self) -> Option<&MarketState> {
        self.kept.back()
    }

    pub fn len(&self) -> usize {
        self.kept.len()
    }

    pub fn is_empty(&self) -> bool {
        self.kept.is_empty()
    }
}

/// A sampler offering one call's state in `every` (at least 1), and the
/// reload thread's end.
pub fn sampler(every: u32) -> (Sampler, RealStates) {
    let (tx, rx) = ring(RING);
    let every = every.max(1);
    (Sampler { tx, every, countdown: 0 }, RealStates { rx, kept: VecDeque::with_capacity(KEEP) })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(i: usize) -> MarketState {
        MarketState { mid: i as f64, ..MarketState::default() }
    }

    #[test]
    fn every_nth_call_is_kept_and_only_the_latest_thousand() {
        let (mut s, mut real) = sampler(4);
        for i in 0..40 {
            s.offer(&state(i));
        }
        real.drain();
        let mids: Vec<f64> = real.states().iter().map(|m| m.mid).collect();
        assert_eq!(mids, (0..40).step_by(4).map(|i| i as f64).collect::<Vec<_>>());

        let (mut s, mut real) = sampler(1);
        for round in 0..5 {
            for i in 0..250 {
                s.offer(&state(round * 250 + i));
            }
            real.drain();
        }
        assert_eq!(real.len(), KEEP);
        assert_eq!(real.states().front().unwrap().mid, 250.0);
        assert_eq!(real.latest().unwrap().mid, 1249.0);
        assert_eq!(s.displaced(), 0);
    }

    #[test]
    fn a_full_ring_displaces_its_oldest_and_counts() {
        let (mut s, mut real) = sampler(1);
        for i in 0..RING + 10 {
            s.offer(&state(i));
        }
        assert_eq!(s.displaced(), 10);
        real.drain();
        assert_eq!(real.len(), RING);
        assert_eq!(real.latest().unwrap().mid, (RING + 9) as f64);
    }

    /// The cost of offering a state (printed, not asserted: run with
    /// `cargo test --release --lib samples -- --ignored --nocapture`).
    /// A stand-in of 3 KB shows the cost once the whole book is in scope.
    #[test]
    #[ignore]
    fn ring_push() {
        use std::time::Instant;
        // Pushes timed a ring-full at a time; the drain (the reload
        // thread's work) is not timed.
        fn cost<T: Copy + Send + Default>(every: u32) -> f64 {
            let (tx, mut rx) = ring::<T>(RING);
            let v = T::default();
            let (mut countdown, mut calls, mut spent) = (0, 0u64, 0u128);
            for _ in 0..2_000 {
                let t = Instant::now();
                for _ in 0..RING as u32 * every {
                    if countdown > 0 {
                        countdown -= 1;
                    } else {
                        countdown = every - 1;
                        tx.push_latest(std::hint::black_box(v));
                    }
                }
                spent += t.elapsed().as_nanos();
                calls += (RING as u32 * every) as u64;
                while rx.pop().is_some() {}
            }
            spent as f64 / calls as f64
        }
        #[derive(Clone, Copy)]
        struct Big(#[allow(dead_code)] [u64; 384]);
        impl Default for Big {
            fn default() -> Self {
                Big([1; 384])
            }
        }
        for every in [1, 8] {
            println!(
                "every {every}: MarketState ({} B) {:.1} ns/call; 3 KB state {:.1} ns/call",
                std::mem::size_of::<MarketState>(),
                cost::<MarketState>(every),
                cost::<Big>(every)
            );
        }
    }
}

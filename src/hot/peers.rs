//! The peer board: what each symbol of a multi-symbol run last saw of its
//! own market (mid, volatility, when), for the other symbols' strategies to
//! read: a script on an altcoin can skew on BTC's move (`m.peer_mid(i)`).
//!
//! One slot per symbol, in `[[symbols]]` order; each symbol's hot path
//! writes only its own slot, after its features are computed, and reads the
//! others' when it decides. Slots are relaxed atomics holding `f64` bits:
//! no locks and no allocation after [`PeerBoard::new`]. A board shared by
//! one hot thread's symbols is read in the order events were processed
//! (backtests stay deterministic); across threads a reader may see a slot
//! one update old, never a torn value.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// Most symbols a board (and a script's `m`) holds.
pub const MAX_PEERS: usize = 32;

/// One symbol's last published view.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Peer {
    /// Mid price, quote asset; 0.0 before the first synced book.
    pub mid: f64,
    /// Volatility per event, basis points (the features' `volatility_bps`).
    pub volatility_bps: f64,
    /// When it was published (the run's clock), ns; 0 never.
    pub time_ns: i64,
}

#[derive(Debug, Default)]
struct Slot {
    mid: AtomicU64,
    volatility_bps: AtomicU64,
    time_ns: AtomicI64,
}

/// The board. See the module docs.
#[derive(Debug)]
pub struct PeerBoard {
    slots: Box<[Slot]>,
}

impl PeerBoard {
    /// A board of `n` slots (at most [`MAX_PEERS`]).
    pub fn new(n: usize) -> Self {
        Self { slots: (0..n.min(MAX_PEERS)).map(|_| Slot::default()).collect() }
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Symbol `i` publishes its view (ignored past the board's end).
    #[inline]
    pub fn publish(&self, i: usize, peer: Peer) {
        if let Some(s) = self.slots.get(i) {
            s.mid.store(peer.mid.to_bits(), Ordering::Relaxed);
            s.volatility_bps.store(peer.volatility_bps.to_bits(), Ordering::Relaxed);
            s.time_ns.store(peer.time_ns, Ordering::Relaxed);
        }
    }

    /// Symbol `i`'s last view (all zero when never published or out of range).
    #[inline]
    pub fn read(&self, i: usize) -> Peer {
        self.slots.get(i).map_or(Peer::default(), |s| Peer {
            mid: f64::from_bits(s.mid.load(Ordering::Relaxed)),
            volatility_bps: f64::from_bits(s.volatility_bps.load(Ordering::Relaxed)),
            time_ns: s.time_ns.load(Ordering::Relaxed),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_hold_what_their_symbol_published() {
        let b = PeerBoard::new(3);
        assert_eq!(b.read(1), Peer::default());
        b.publish(1, Peer { mid: 61_000.5, volatility_bps: 1.25, time_ns: 7 });
        assert_eq!(b.read(1), Peer { mid: 61_000.5, volatility_bps: 1.25, time_ns: 7 });
        assert_eq!(b.read(0), Peer::default());
        b.publish(9, Peer { mid: 1.0, ..Peer::default() });
        assert_eq!(b.read(9), Peer::default(), "out of range is ignored");
        assert_eq!(PeerBoard::new(100).len(), MAX_PEERS);
    }
}

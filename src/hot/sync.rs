//! Keeps a [`Book`] exact by Binance's sync rules, and says when it is not.
//!
//! The procedure is the one Binance documents (binance/FACTS.md section 2):
//! diffs that arrive before the REST snapshot are buffered; the snapshot
//! replaces the book; buffered and later diffs are applied only while their
//! update ids chain. The chain rule differs by market and is read off each
//! diff (USD-M diffs carry `pu`, spot diffs never do):
//!
//! * spot: drop `u <= id`; the next must have `U <= id + 1 <= u`, which after
//!   the snapshot is the straddle `U <= lastUpdateId + 1 <= u` and afterwards is
//!   normally `U == prev u + 1`;
//! * USD-M: first drop `u < lastUpdateId`, the first applied event must have
//!   `U <= lastUpdateId <= u`, then every event must have `pu == prev u`
//!   (futures `U` is not contiguous).
//!
//! Anything else is a gap: the book is cleared and marked unsynced, the event
//! that revealed the gap starts a new buffer, and [`SyncedBook::wants_snapshot`]
//! turns true so the feed fetches a fresh snapshot. A book that ends up crossed
//! after an event is treated the same way. Quotes must never be made from a
//! book for which [`SyncedBook::is_synced`] is false.
//!
//! Partial-depth messages carry a whole top-N book and simply replace it.
//!
//! All buffers are sized at construction; nothing allocates per event.

use crate::hot::book::Book;
use crate::hot::msg::{DepthDiff, Level, Market, PartialDepth, Snapshot};

/// Sync counters, `Copy` so reports and stats threads can take a copy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncStats {
    /// Diffs applied to a synced book.
    pub applied: u64,
    /// Diffs held while waiting for a snapshot.
    pub buffered: u64,
    /// Diffs already contained in the book (`u` at or below its id).
    pub stale: u64,
    /// Missing updates detected.
    pub gaps: u64,
    /// Books found crossed after an event (also forces a resync).
    pub crossed: u64,
    /// Times the book became synced again after having been synced.
    pub resyncs: u64,
    /// Snapshots (REST or partial depth) loaded into the book.
    pub snapshots: u64,
    /// Snapshots older than the first buffered diff; another is needed.
    pub snapshots_too_old: u64,
    /// Snapshots that arrived while already synced, not needed.
    pub snapshots_unused: u64,
    /// Events accepted although they overlap ids already applied
    /// (`U <= id < u`): safe, quantities are absolute, but unusual.
    pub overlaps: u64,
    /// Buffered diffs discarded because the pre-snapshot buffer was full.
    pub buffer_overflows: u64,
}

/// The book's sync state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncState {
    /// No usable book: diffs are buffered until a snapshot arrives.
    AwaitingSnapshot,
    /// Book loaded; `first` is true until the first diff after the snapshot.
    Synced { first: bool },
}

/// A depth event that changed the book, reported to the caller after it is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Applied {
    /// The book's update id after the event.
    pub update_id: u64,
    /// The event's exchange time in ms (0 when the message has none).
    pub event_time: i64,
}

/// A diff held before the snapshot, its levels in [`DiffBuffer::levels`].
#[derive(Clone, Copy)]
struct Pending {
    diff: DepthDiff,
    start: usize,
    bids: usize,
    asks: usize,
}

/// Preallocated buffer of diffs received before a snapshot.
struct DiffBuffer {
    events: Vec<Pending>,
    levels: Vec<Level>,
    max_events: usize,
    max_levels: usize,
}

impl DiffBuffer {
    fn new(max_events: usize, max_levels: usize) -> Self {
        Self { events: Vec::with_capacity(max_events), levels: Vec::with_capacity(max_levels), max_events, max_levels }
    }

    fn clear(&mut self) {
        self.events.clear();
        self.levels.clear();
    }

    /// Buffers a diff, dropping the oldest ones when full. Returns how many
    /// events were dropped. Never grows past the preallocated capacity.
    fn push(&mut self, diff: DepthDiff, bids: &[Level], asks: &[Level]) -> u64 {
        let need = bids.len() + asks.len();
        if need > self.max_levels {
            return 1;
        }
        let mut dropped = 0;
        if self.events.len() == self.max_events || self.levels.len() + need > self.max_levels {
            // Rare: the snapshot is late. The oldest diffs are the ones a
            // snapshot would discard first, so they go: the older half at
            // once (or more, until the new one fits), so a long wait costs
            // O(1) per diff amortized rather than a shift per diff.
            let mut keep_from = self.events.len() / 2;
            while keep_from < self.events.len() {
                let first_kept = self.events[keep_from].start;
                if self.levels.len() - first_kept + need <= self.max_levels {
                    break;
                }
                keep_from += 1;
            }
            let cut = self.events.get(keep_from).map_or(self.levels.len(), |e| e.start);
            self.events.drain(..keep_from);
            self.levels.drain(..cut);
            for e in &mut self.events {
                e.start -= cut;
            }
            dropped = keep_from as u64;
        }
        let start = self.levels.len();
        self.levels.extend_from_slice(bids);
        self.levels.extend_from_slice(asks);
        self.events.push(Pending { diff, start, bids: bids.len(), asks: asks.len() });
        dropped
    }
}

/// A book plus the state that says whether it can be trusted.
pub struct SyncedBook {
    book: Book,
    state: SyncState,
    /// The book's update id (`lastUpdateId`, then each applied `u`).
    update_id: u64,
    market: Option<Market>,
    ever_synced: bool,
    buffer: DiffBuffer,
    /// Second buffer of the same size, swapped in while the first is replayed.
    spare: DiffBuffer,
    stats: SyncStats,
}

impl SyncedBook {
    /// `capacity` levels per side; the pre-snapshot buffer holds up to
    /// `buffer_events` diffs with `buffer_levels` levels in all.
    pub fn new(capacity: usize, buffer_events: usize, buffer_levels: usize) -> Self {
        Self {
            book: Book::with_capacity(capacity),
            state: SyncState::AwaitingSnapshot,
            update_id: 0,
            market: None,
            ever_synced: false,
            buffer: DiffBuffer::new(buffer_events, buffer_levels),
            spare: DiffBuffer::new(buffer_events, buffer_levels),
            stats: SyncStats::default(),
        }
    }

    pub fn book(&self) -> &Book {
        &self.book
    }

    pub fn state(&self) -> SyncState {
        self.state
    }

    /// True when the book matches the exchange's as of [`Self::update_id`].
    pub fn is_synced(&self) -> bool {
        matches!(self.state, SyncState::Synced { .. })
    }

    /// True while a REST snapshot is needed to (re)build the book.
    pub fn wants_snapshot(&self) -> bool {
        self.state == SyncState::AwaitingSnapshot
    }

    pub fn update_id(&self) -> u64 {
        self.update_id
    }

    /// The market whose rules the diffs follow, once a diff has been seen.
    pub fn market(&self) -> Option<Market> {
        self.market
    }

    pub fn stats(&self) -> SyncStats {
        self.stats
    }

    /// Number of diffs waiting for a snapshot.
    pub fn buffered_len(&self) -> usize {
        self.buffer.events.len()
    }

    /// Marks the book unusable (gap, crossed book, reconnect) and starts
    /// buffering for a new snapshot.
    pub fn invalidate(&mut self) {
        self.state = SyncState::AwaitingSnapshot;
        self.book.clear();
        self.buffer.clear();
    }

    /// Feeds one diff. `on_applied` is called if it changed a synced book.
    #[inline]
    pub fn on_diff(
        &mut self,
        diff: &DepthDiff,
        bids: &[Level],
        asks: &[Level],
        on_applied: &mut impl FnMut(Applied, &Book),
    ) {
        self.market = Some(diff.market());
        match self.state {
            SyncState::AwaitingSnapshot => {
                self.stats.buffer_overflows += self.buffer.push(*diff, bids, asks);
                self.stats.buffered += 1;
            }
            SyncState::Synced { first } => self.apply_synced(diff, bids, asks, first, on_applied),
        }
    }

    fn apply_synced(
        &mut self,
        diff: &DepthDiff,
        bids: &[Level],
        asks: &[Level],
        first: bool,
        on_applied: &mut impl FnMut(Applied, &Book),
    ) {
        let id = self.update_id;
        let (big_u, u) = (diff.first_id, diff.last_id);
        let verdict = match (diff.prev_last_id, first) {
            // USD-M, first event after the snapshot: U <= id <= u.
            (Some(_), true) if u < id => Verdict::Stale,
            (Some(_), true) if big_u <= id => Verdict::Apply,
            // USD-M afterwards: pu must equal the previous u.
            (Some(pu), false) if pu == id => Verdict::Apply,
            (Some(_), false) if u <= id => Verdict::Stale,
            (Some(_), _) => Verdict::Gap,
            // Spot: U <= id + 1 <= u.
            (None, _) if u <= id => Verdict::Stale,
            (None, _) if big_u <= id + 1 => {
                if !first && big_u != id + 1 {
                    self.stats.overlaps += 1;
                }
                Verdict::Apply
            }
            (None, _) => Verdict::Gap,
        };
        match verdict {
            Verdict::Stale => self.stats.stale += 1,
            Verdict::Gap => {
                self.stats.gaps += 1;
                self.invalidate();
                // The event that showed the gap is the first of the next sync.
                self.on_diff(diff, bids, asks, on_applied);
            }
            Verdict::Apply => {
                for &l in bids {
                    self.book.apply_bid(l);
                }
                for &l in asks {
                    self.book.apply_ask(l);
                }
                self.update_id = u;
                self.state = SyncState::Synced { first: false };
                if self.book.is_crossed() {
                    self.stats.crossed += 1;
                    self.invalidate();
                    return;
                }
                self.stats.applied += 1;
                on_applied(Applied { update_id: u, event_time: diff.event_time }, &self.book);
            }
        }
    }

    /// Feeds a REST snapshot: loads it if a book is needed, then replays the
    /// buffered diffs through the normal rules.
    pub fn on_snapshot(
        &mut self,
        snap: &Snapshot,
        bids: &[Level],
        asks: &[Level],
        on_applied: &mut impl FnMut(Applied, &Book),
    ) {
        if self.is_synced() {
            self.stats.snapshots_unused += 1;
            return;
        }
        let l = snap.last_update_id;
        if let Some(first) = self.buffer.events.first() {
            // A snapshot older than the first buffered event leaves a hole no
            // diff can fill (spot step 4). Spot applies an event with
            // U <= L + 1, so L = U - 1 is a clean hand-over, not a hole (the
            // doc's "L < U" read literally would refuse it); USD-M needs the
            // first event to contain L itself.
            let hole = match first.diff.prev_last_id {
                Some(_) => l < first.diff.first_id,
                None => l.saturating_add(1) < first.diff.first_id,
            };
            if hole {
                self.stats.snapshots_too_old += 1;
                return;
            }
        }
        self.load(l, bids, asks);
        if self.book.is_crossed() {
            // A crossed snapshot is wrong (or torn): never trust it.
            self.stats.crossed += 1;
            self.invalidate();
            return;
        }
        // Replay the buffer through the normal rules. It is swapped with the
        // spare (same capacity, empty) so that a gap among the buffered diffs
        // can start a new buffer while the old one is still being read.
        std::mem::swap(&mut self.buffer, &mut self.spare);
        let pending = std::mem::replace(&mut self.spare, DiffBuffer::new(0, 0));
        for p in &pending.events {
            let levels = &pending.levels[p.start..p.start + p.bids + p.asks];
            let (b, a) = levels.split_at(p.bids);
            self.on_diff(&p.diff, b, a, on_applied);
        }
        self.spare = pending;
        self.spare.clear();
    }

    /// Feeds a partial-depth message (a whole top-N book).
    pub fn on_partial(
        &mut self,
        msg: &PartialDepth,
        bids: &[Level],
        asks: &[Level],
        on_applied: &mut impl FnMut(Applied, &Book),
    ) {
        self.buffer.clear();
        self.load(msg.update_id, bids, asks);
        if self.book.is_crossed() {
            self.stats.crossed += 1;
            self.invalidate();
            return;
        }
        self.stats.applied += 1;
        on_applied(Applied { update_id: msg.update_id, event_time: msg.event_time }, &self.book);
    }

    fn load(&mut self, update_id: u64, bids: &[Level], asks: &[Level]) {
        let was_synced = self.is_synced();
        self.book.load(bids, asks);
        self.update_id = update_id;
        self.state = SyncState::Synced { first: true };
        self.stats.snapshots += 1;
        // A resync is becoming synced again after losing it, not every
        // partial-depth message replacing a synced book.
        if self.ever_synced && !was_synced {
            self.stats.resyncs += 1;
        }
        self.ever_synced = true;
    }

    /// `(first U, last u)` of the diffs buffered while waiting, if any.
    pub fn buffered_range(&self) -> Option<(u64, u64)> {
        let first = self.buffer.events.first()?;
        let last = self.buffer.events.last()?;
        Some((first.diff.first_id, last.diff.last_id))
    }
}

enum Verdict {
    Apply,
    Stale,
    Gap,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hot::msg::Symbol;

    fn diff(big_u: u64, u: u64, pu: Option<u64>) -> DepthDiff {
        DepthDiff {
            symbol: Symbol::new(b"btcusdt"),
            event_time: u as i64,
            transact_time: 0,
            first_id: big_u,
            last_id: u,
            prev_last_id: pu,
        }
    }

    fn snap(id: u64) -> Snapshot {
        Snapshot { symbol: Symbol::default(), last_update_id: id, event_time: 0, transact_time: 0 }
    }

    fn l(p: i64, q: i64) -> Level {
        Level::new(p, q)
    }

    /// Feeds events and returns the update ids reported as applied.
    struct Run {
        b: SyncedBook,
        applied: Vec<u64>,
    }

    impl Run {
        fn new() -> Self {
            Self { b: SyncedBook::new(100, 16, 256), applied: vec![] }
        }
        fn diff(&mut self, d: DepthDiff, bids: &[Level]) {
            let applied = &mut self.applied;
            self.b.on_diff(&d, bids, &[l(1000, 1)], &mut |a, _| applied.push(a.update_id));
        }
        fn snap(&mut self, id: u64) {
            let applied = &mut self.applied;
            self.b.on_snapshot(&snap(id), &[l(10, 1)], &[l(1000, 1)], &mut |a, _| applied.push(a.update_id));
        }
    }

    #[test]
    fn spot_buffers_then_syncs_on_the_straddling_event() {
        let mut r = Run::new();
        r.diff(diff(90, 100, None), &[l(11, 1)]);
        r.diff(diff(101, 110, None), &[l(12, 1)]);
        r.diff(diff(111, 120, None), &[l(13, 1)]);
        assert!(r.b.wants_snapshot());
        r.snap(105);
        // 90..100 dropped (u <= 105), 101..110 straddles 106, then 111..120.
        assert_eq!(r.applied, vec![110, 120]);
        assert_eq!(r.b.update_id(), 120);
        assert_eq!(r.b.book().best_bid(), Some(l(13, 1)));
        r.diff(diff(121, 125, None), &[]);
        assert_eq!(r.applied.last(), Some(&125));
        assert_eq!(r.b.stats().gaps, 0);
    }

    #[test]
    fn spot_gap_unsyncs_and_the_next_snapshot_resyncs() {
        let mut r = Run::new();
        r.snap(100);
        r.diff(diff(95, 105, None), &[]);
        r.diff(diff(107, 110, None), &[]); // 106 missing
        assert!(!r.b.is_synced());
        assert_eq!(r.b.stats().gaps, 1);
        assert_eq!(r.b.buffered_len(), 1);
        r.diff(diff(111, 115, None), &[]);
        r.snap(112);
        assert!(r.b.is_synced());
        assert_eq!(r.applied, vec![105, 115]);
        assert_eq!(r.b.stats().resyncs, 1);
    }

    #[test]
    fn snapshot_older_than_the_buffer_is_refused() {
        let mut r = Run::new();
        r.diff(diff(200, 210, None), &[]);
        r.snap(150);
        assert!(r.b.wants_snapshot());
        assert_eq!(r.b.stats().snapshots_too_old, 1);
        r.snap(205);
        assert_eq!(r.applied, vec![210]);
    }

    #[test]
    fn spot_snapshot_just_before_the_first_buffered_event_is_a_clean_hand_over() {
        let mut r = Run::new();
        r.diff(diff(101, 110, None), &[l(11, 1)]);
        r.snap(100);
        assert_eq!((r.applied.clone(), r.b.stats().snapshots_too_old), (vec![110], 0));
        // USD-M needs the first event to contain L itself.
        let mut r = Run::new();
        r.diff(diff(101, 110, Some(99)), &[l(11, 1)]);
        r.snap(100);
        assert_eq!(r.b.stats().snapshots_too_old, 1);
    }

    #[test]
    fn first_event_must_straddle() {
        let mut r = Run::new();
        r.snap(100);
        r.diff(diff(102, 110, None), &[]);
        assert_eq!(r.b.stats().gaps, 1);
        assert!(r.applied.is_empty());
    }

    #[test]
    fn usdm_chains_on_pu_not_on_u() {
        let mut r = Run::new();
        r.diff(diff(50, 60, Some(40)), &[]);
        r.diff(diff(70, 99, Some(60)), &[]);
        r.diff(diff(130, 150, Some(99)), &[]);
        r.snap(95);
        // 50..60 dropped (u < 95); 70..99 straddles 95; 130..150 chains by pu.
        assert_eq!(r.applied, vec![99, 150]);
        r.diff(diff(170, 180, Some(150)), &[]);
        assert_eq!(r.applied.last(), Some(&180));
        r.diff(diff(190, 200, Some(185)), &[]);
        assert_eq!(r.b.stats().gaps, 1);
        assert!(!r.b.is_synced());
    }

    #[test]
    fn usdm_first_event_equal_to_snapshot_id_is_kept() {
        let mut r = Run::new();
        r.snap(100);
        r.diff(diff(90, 100, Some(80)), &[]);
        assert_eq!(r.applied, vec![100]);
    }

    #[test]
    fn crossed_book_forces_resync() {
        let mut r = Run::new();
        r.snap(100);
        r.diff(diff(101, 101, None), &[l(2000, 1)]);
        assert!(!r.b.is_synced());
        assert_eq!(r.b.stats().crossed, 1);
        assert!(r.applied.is_empty());
    }

    #[test]
    fn partial_depth_messages_are_not_resyncs() {
        let mut b = SyncedBook::new(100, 16, 256);
        let mut noop = |_: Applied, _: &Book| {};
        for id in 1..=5 {
            let p = PartialDepth { symbol: Symbol::default(), update_id: id, event_time: 0 };
            b.on_partial(&p, &[l(10, 1)], &[l(20, 1)], &mut noop);
        }
        assert_eq!((b.stats().snapshots, b.stats().resyncs, b.stats().applied), (5, 0, 5));
    }

    #[test]
    fn full_buffer_drops_the_oldest() {
        let mut b = SyncedBook::new(10, 2, 100);
        let mut noop = |_: Applied, _: &Book| {};
        for i in 0..4u64 {
            b.on_diff(&diff(i * 10 + 1, i * 10 + 10, None), &[], &[], &mut noop);
        }
        assert_eq!(b.stats().buffer_overflows, 2);
        assert_eq!(b.buffered_len(), 2);
    }
}

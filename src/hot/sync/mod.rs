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
//! after an event is treated the same way; a crossed snapshot is refused.
//! Quotes must never be made from a book for which [`SyncedBook::is_synced`]
//! is false.
//!
//! Id sanity (not in Binance's procedure, but what keeps one corrupt frame
//! from freezing the book): a diff with `U > u` (or USD-M `pu > u`) is
//! malformed and dropped; a diff whose `u` lies more than
//! [`SyncConfig::max_id_jump`] past the book's id is dropped too (applied, it
//! would make every later diff look stale: no gap, no resync, a frozen book),
//! unless [`JUMPS_BEFORE_RESYNC`] arrive in a row; and a synced book whose
//! diffs apply nothing for [`SyncConfig::stale_resync_ns`] resyncs. Every
//! loss of sync is counted by cause ([`SyncLoss`]) and timed until the book
//! is synced again ([`SyncStats`]).
//!
//! Partial-depth messages carry a whole top-N book and simply replace it.
//!
//! All buffers are sized at construction; nothing allocates per event.

use crate::hot::book::Book;
use crate::hot::msg::{DepthDiff, Level, Market, PartialDepth, Snapshot};

mod stats;
#[cfg(test)]
mod tests;

pub use stats::{SyncConfig, SyncLoss, SyncStats, JUMPS_BEFORE_RESYNC, USDM_IDS_PER_SECOND};

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
    cfg: SyncConfig,
    /// Receive time of the frame being applied ([`Self::set_time`]).
    now_ns: i64,
    /// When the book's id last moved (a diff applied, a snapshot loaded):
    /// the USD-M id-jump allowance grows with the time since.
    last_moved_ns: i64,
    /// Receive time of the first diff of the current run of diffs that
    /// applied nothing (stale or rejected); `None` after progress.
    idle_since: Option<i64>,
    /// Start of the current unsynced spell, if the book had been synced.
    unsynced_since: Option<i64>,
    /// Id-jump diffs rejected in a row.
    jump_run: u32,
}

impl SyncedBook {
    /// `capacity` levels per side; the pre-snapshot buffer holds up to
    /// `buffer_events` diffs with `buffer_levels` levels in all. Default
    /// [`SyncConfig`].
    pub fn new(capacity: usize, buffer_events: usize, buffer_levels: usize) -> Self {
        Self::with_config(capacity, buffer_events, buffer_levels, SyncConfig::default())
    }

    /// As [`Self::new`], with explicit id-sanity and liveness limits.
    pub fn with_config(capacity: usize, buffer_events: usize, buffer_levels: usize, cfg: SyncConfig) -> Self {
        Self {
            book: Book::with_capacity(capacity),
            state: SyncState::AwaitingSnapshot,
            update_id: 0,
            market: None,
            ever_synced: false,
            buffer: DiffBuffer::new(buffer_events, buffer_levels),
            spare: DiffBuffer::new(buffer_events, buffer_levels),
            stats: SyncStats::default(),
            cfg,
            now_ns: 0,
            last_moved_ns: 0,
            idle_since: None,
            unsynced_since: None,
            jump_run: 0,
        }
    }

    /// Replaces the limits (takes effect from the next event).
    pub fn set_config(&mut self, cfg: SyncConfig) {
        self.cfg = cfg;
    }

    pub fn config(&self) -> SyncConfig {
        self.cfg
    }

    /// Sets the receive time (ns) of the frame about to be fed: it times
    /// unsynced spells and the stale rule. Time never goes back here.
    #[inline]
    pub fn set_time(&mut self, now_ns: i64) {
        self.now_ns = self.now_ns.max(now_ns);
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

    /// The counters, with the current unsynced spell measured up to the
    /// latest time given.
    pub fn stats(&self) -> SyncStats {
        self.stats_at(self.now_ns)
    }

    /// The counters, with the current unsynced spell measured up to `now_ns`
    /// (or the latest time given, if later): a book that receives nothing
    /// while unsynced still shows its spell growing.
    pub fn stats_at(&self, now_ns: i64) -> SyncStats {
        let mut s = self.stats;
        if let Some(t0) = self.unsynced_since {
            let current = now_ns.max(self.now_ns).saturating_sub(t0).max(0) as u64;
            s.unsynced_ns_current = current;
            s.unsynced_ns_longest = s.unsynced_ns_longest.max(current);
        }
        s
    }

    /// Why the book is unsynced now (see [`SyncStats::unsynced_cause`]).
    pub fn unsynced_cause(&self) -> Option<SyncLoss> {
        self.stats.unsynced_cause
    }

    /// Number of diffs waiting for a snapshot.
    pub fn buffered_len(&self) -> usize {
        self.buffer.events.len()
    }

    /// Marks the book unusable after a reconnect and starts buffering for a
    /// new snapshot (cause [`SyncLoss::Reconnect`]).
    pub fn invalidate(&mut self) {
        self.lose_sync(SyncLoss::Reconnect);
    }

    /// Marks the book unusable for `cause`: cleared, buffering diffs, and
    /// [`Self::wants_snapshot`] true. Counted by cause; the unsynced spell
    /// starts now if the book was synced.
    pub fn lose_sync(&mut self, cause: SyncLoss) {
        self.stats.lost[cause.index()] += 1;
        match cause {
            SyncLoss::Gap => self.stats.gaps += 1,
            SyncLoss::CrossedBook | SyncLoss::CrossedSnapshot => self.stats.crossed += 1,
            _ => {}
        }
        if self.is_synced() && self.unsynced_since.is_none() {
            self.unsynced_since = Some(self.now_ns);
        }
        self.stats.unsynced_cause = Some(cause);
        self.state = SyncState::AwaitingSnapshot;
        self.jump_run = 0;
        self.idle_since = None;
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
        // Ids that contradict each other cannot be placed in any chain:
        // malformed, whatever the state (`pu`, the previous `u`, is below `u`).
        if diff.first_id > diff.last_id || diff.prev_last_id.is_some_and(|pu| pu > diff.last_id) {
            self.stats.malformed_ids += 1;
            return;
        }
        self.market = Some(diff.market());
        match self.state {
            SyncState::AwaitingSnapshot => {
                self.stats.buffer_overflows += self.buffer.push(*diff, bids, asks);
                self.stats.buffered += 1;
            }
            SyncState::Synced { first } => self.apply_synced(diff, bids, asks, first, on_applied),
        }
    }

    /// What the synced rules say about `diff` now, changing nothing.
    #[inline]
    fn verdict(&self, diff: &DepthDiff, first: bool) -> Verdict {
        let id = self.update_id;
        let (big_u, u) = (diff.first_id, diff.last_id);
        // USD-M ids are shared by every contract and keep moving while this
        // one is quiet (28k-80k ids a second in the captures): allow for the
        // time since this book last moved, at a generous 10^6 ids a second,
        // so a contract quiet for minutes is not taken for a jump.
        let allowance = match diff.prev_last_id {
            Some(_) => {
                let quiet_s = self.now_ns.saturating_sub(self.last_moved_ns).max(0) as u64 / 1_000_000_000 + 1;
                quiet_s.saturating_mul(USDM_IDS_PER_SECOND)
            }
            None => 0,
        };
        if u > id.saturating_add(self.cfg.max_id_jump).saturating_add(allowance) {
            // Checked first: a diff that jumps far ahead would otherwise
            // straddle (spot U <= id + 1 <= u) or chain (USD-M pu == id),
            // be applied, and make every later diff stale.
            return Verdict::Jump;
        }
        match (diff.prev_last_id, first) {
            // USD-M, first event after the snapshot: U <= id <= u.
            (Some(_), true) if u < id => Verdict::Stale,
            (Some(_), true) if big_u <= id => Verdict::Apply,
            // USD-M afterwards: pu must equal the previous u.
            (Some(pu), false) if pu == id => Verdict::Apply,
            (Some(_), false) if u <= id => Verdict::Stale,
            (Some(_), _) => Verdict::Gap,
            // Spot: U <= id + 1 <= u.
            (None, _) if u <= id => Verdict::Stale,
            (None, _) if big_u <= id + 1 => Verdict::Apply,
            (None, _) => Verdict::Gap,
        }
    }

    /// Whether `diff` is the next event of a synced book: [`Self::on_diff`]
    /// would apply it now. Touch-first apply asks before reading a level.
    // Out of line: the idle rehearsal (`HotPath::warm`) runs this same
    // code, so it is what is in cache when a diff comes.
    #[inline(never)]
    pub fn would_apply(&self, diff: &DepthDiff) -> bool {
        if diff.first_id > diff.last_id || diff.prev_last_id.is_some_and(|pu| pu > diff.last_id) {
            return false;
        }
        match self.state {
            SyncState::Synced { first } => matches!(self.verdict(diff, first), Verdict::Apply),
            SyncState::AwaitingSnapshot => false,
        }
    }

    /// The book, for touch-first apply to put a diff's near-touch levels in
    /// ahead of the diff itself. Only after [`Self::would_apply`] said yes,
    /// and the whole diff must follow through [`Self::on_diff`] before the
    /// book is read for anything but the quote: applying a level twice is
    /// applying it once, so the diff then leaves the book exactly as a
    /// plain apply would.
    #[inline]
    pub fn touch_book(&mut self) -> &mut Book {
        &mut self.book
    }

    fn apply_synced(
        &mut self,
        diff: &DepthDiff,
        bids: &[Level],
        asks: &[Level],
        first: bool,
        on_applied: &mut impl FnMut(Applied, &Book),
    ) {
        let (id, big_u, u) = (self.update_id, diff.first_id, diff.last_id);
        let verdict = self.verdict(diff, first);
        if matches!(verdict, Verdict::Apply) && diff.prev_last_id.is_none() && !first && big_u != id + 1 {
            self.stats.overlaps += 1;
        }
        match verdict {
            Verdict::Stale => {
                self.stats.stale += 1;
                self.resync_if_no_progress(diff, bids, asks, on_applied);
            }
            Verdict::Jump => {
                self.stats.id_jumps += 1;
                self.jump_run += 1;
                if self.jump_run >= JUMPS_BEFORE_RESYNC {
                    self.lose_sync(SyncLoss::IdJump);
                    // The jumped ids are the exchange's now: they start the next sync.
                    self.on_diff(diff, bids, asks, on_applied);
                } else {
                    self.resync_if_no_progress(diff, bids, asks, on_applied);
                }
            }
            Verdict::Gap => {
                self.lose_sync(SyncLoss::Gap);
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
                self.last_moved_ns = self.now_ns;
                self.state = SyncState::Synced { first: false };
                self.jump_run = 0;
                self.idle_since = None;
                if self.book.is_crossed() {
                    self.lose_sync(SyncLoss::CrossedBook);
                    return;
                }
                self.stats.applied += 1;
                on_applied(Applied { update_id: u, event_time: diff.event_time }, &self.book);
            }
        }
    }

    /// The stale rule: a synced book whose diffs have applied nothing for
    /// [`SyncConfig::stale_resync_ns`] is not following the stream any more
    /// (e.g. its id was pushed ahead by a corrupt event): resync, the diff
    /// at hand starting the next buffer.
    fn resync_if_no_progress(
        &mut self,
        diff: &DepthDiff,
        bids: &[Level],
        asks: &[Level],
        on_applied: &mut impl FnMut(Applied, &Book),
    ) {
        let since = *self.idle_since.get_or_insert(self.now_ns);
        let limit = self.cfg.stale_resync_ns;
        if limit > 0 && self.now_ns.saturating_sub(since) >= limit {
            self.lose_sync(SyncLoss::Stale);
            self.on_diff(diff, bids, asks, on_applied);
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
        if !self.load(l, bids, asks) {
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
        if !self.load(msg.update_id, bids, asks) {
            return;
        }
        self.stats.applied += 1;
        on_applied(Applied { update_id: msg.update_id, event_time: msg.event_time }, &self.book);
    }

    /// Loads a whole book. A crossed one is wrong (or torn) and never
    /// trusted: refused, counted as [`SyncLoss::CrossedSnapshot`] (not as a
    /// snapshot nor a resync), and false is returned.
    fn load(&mut self, update_id: u64, bids: &[Level], asks: &[Level]) -> bool {
        self.book.load(bids, asks);
        if self.book.is_crossed() {
            self.lose_sync(SyncLoss::CrossedSnapshot);
            return false;
        }
        let was_synced = self.is_synced();
        self.update_id = update_id;
        self.last_moved_ns = self.now_ns;
        self.state = SyncState::Synced { first: true };
        self.stats.snapshots += 1;
        self.jump_run = 0;
        self.idle_since = None;
        // A resync is becoming synced again after losing it, not every
        // partial-depth message replacing a synced book.
        if self.ever_synced && !was_synced {
            self.stats.resyncs += 1;
        }
        if let Some(t0) = self.unsynced_since.take() {
            let spell = self.now_ns.saturating_sub(t0).max(0) as u64;
            self.stats.unsynced_ns_total += spell;
            self.stats.unsynced_ns_longest = self.stats.unsynced_ns_longest.max(spell);
        }
        self.stats.unsynced_cause = None;
        self.ever_synced = true;
        true
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
    /// `u` implausibly far past the book's id.
    Jump,
}

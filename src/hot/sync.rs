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

/// Why a book lost sync (or a snapshot could not be used): the causes of
/// resyncs, counted in [`SyncStats::lost`] and named in reports by
/// [`SyncLoss::as_str`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SyncLoss {
    /// A diff did not chain on the book's id (missing updates).
    Gap,
    /// A bookTicker with the book's update id showed another best bid or ask:
    /// the book is wrong although every diff chained (e.g. a snapshot that
    /// omitted a level).
    TickerMismatch,
    /// Diffs kept jumping implausibly far past the book's id
    /// ([`SyncConfig::max_id_jump`], [`JUMPS_BEFORE_RESYNC`] in a row): the
    /// exchange's ids moved, so only a new snapshot can tell where they are.
    IdJump,
    /// Diffs kept arriving but none applied for [`SyncConfig::stale_resync_ns`].
    Stale,
    /// A snapshot (REST or partial depth) was crossed as loaded: refused.
    CrossedSnapshot,
    /// The book was crossed after applying a diff.
    CrossedBook,
    /// The connection was lost (or a recorded reconnect replayed).
    Reconnect,
    /// The book was rebuilt from the top-20 partial stream while REST was
    /// refused; once REST answers again it is rebuilt from a full snapshot
    /// (levels beyond 20 were never known).
    Top20Refresh,
}

impl SyncLoss {
    /// Number of causes, for per-cause counters.
    pub const COUNT: usize = 8;
    /// Every cause, in [`SyncLoss::index`] order.
    pub const ALL: [SyncLoss; Self::COUNT] = [
        Self::Gap,
        Self::TickerMismatch,
        Self::IdJump,
        Self::Stale,
        Self::CrossedSnapshot,
        Self::CrossedBook,
        Self::Reconnect,
        Self::Top20Refresh,
    ];

    /// Index into [`SyncStats::lost`].
    pub const fn index(self) -> usize {
        self as usize
    }

    /// The snake_case name used in reports, metrics and the dashboard.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Gap => "gap",
            Self::TickerMismatch => "ticker_mismatch",
            Self::IdJump => "id_jump",
            Self::Stale => "stale",
            Self::CrossedSnapshot => "crossed_snapshot",
            Self::CrossedBook => "crossed_book",
            Self::Reconnect => "reconnect",
            Self::Top20Refresh => "top20_refresh",
        }
    }
}

/// Id-sanity and liveness limits of a synced book, fixed at start-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncConfig {
    /// Largest advance of a diff's `u` past the book's update id that is
    /// believed. Binance spot ids advance by well under 10^5 per second on
    /// the busiest symbols, so a diff `u` more than this past the book is
    /// corrupt: it is rejected (counted in [`SyncStats::id_jumps`]) instead
    /// of being applied, which would make every later diff look stale and
    /// freeze the book. Default 10^7. Applies to spot and USD-M alike.
    pub max_id_jump: u64,
    /// A synced book that keeps receiving diffs but applies none of them
    /// (all stale or rejected) for this long, in frame receive time, has lost
    /// sync (cause [`SyncLoss::Stale`]). Default 5 s; 0 turns the rule off.
    pub stale_resync_ns: i64,
}

impl Default for SyncConfig {
    fn default() -> Self {
        Self { max_id_jump: 10_000_000, stale_resync_ns: 5_000_000_000 }
    }
}

/// Consecutive id-jump diffs after which the jump is believed to be the
/// exchange's (ids reset) and the book is rebuilt from a new snapshot.
/// One or two are dropped as corrupt and the book keeps applying good diffs.
pub const JUMPS_BEFORE_RESYNC: u32 = 3;

/// USD-M: global update ids a second allowed on top of
/// [`SyncConfig::max_id_jump`] for each second a book has not moved (the
/// captures show 28k-80k; ids are shared by every contract).
pub const USDM_IDS_PER_SECOND: u64 = 1_000_000;

/// Sync counters, `Copy` so reports and stats threads can take a copy.
///
/// Times are nanoseconds of frame receive time, as given to
/// [`SyncedBook::set_time`] (the hot path gives every frame's receive time);
/// a caller that never sets it sees zero durations and no stale resyncs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncStats {
    /// Diffs applied to a synced book.
    pub applied: u64,
    /// Diffs held while waiting for a snapshot.
    pub buffered: u64,
    /// Diffs already contained in the book (`u` at or below its id).
    pub stale: u64,
    /// Missing updates detected (same as `lost[SyncLoss::Gap]`).
    pub gaps: u64,
    /// Books found crossed, after an event or as loaded from a snapshot
    /// (`lost[CrossedBook] + lost[CrossedSnapshot]`).
    pub crossed: u64,
    /// Times the book became synced again after having been synced. A
    /// refused (crossed) snapshot is not one.
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
    /// Diffs rejected because their ids contradict each other (`U > u`, or
    /// USD-M `pu > u`): malformed, never applied nor buffered.
    pub malformed_ids: u64,
    /// Diffs rejected because `u` lies more than [`SyncConfig::max_id_jump`]
    /// past the book's id.
    pub id_jumps: u64,
    /// Times the book lost sync (or refused a snapshot), by cause, indexed
    /// by [`SyncLoss::index`]; see [`SyncStats::lost_by`].
    pub lost: [u64; SyncLoss::COUNT],
    /// Total time spent unsynced after having been synced (from losing sync
    /// to synced again; the wait for the very first snapshot is not counted).
    pub unsynced_ns_total: u64,
    /// Longest single unsynced spell, finished ones and the current one.
    pub unsynced_ns_longest: u64,
    /// Length of the current unsynced spell so far (0 when synced), as of the
    /// latest time given.
    pub unsynced_ns_current: u64,
    /// Why the book is unsynced now; `None` while synced or before the
    /// first snapshot was ever loaded (unless that snapshot was refused).
    pub unsynced_cause: Option<SyncLoss>,
}

impl SyncStats {
    /// Times the book lost sync for `cause`.
    pub fn lost_by(&self, cause: SyncLoss) -> u64 {
        self.lost[cause.index()]
    }

    /// Adds another book's counters (sums; longest and current spell: the
    /// maximum; cause: this one's, else the other's).
    pub fn add(&mut self, o: &SyncStats) {
        self.applied += o.applied;
        self.buffered += o.buffered;
        self.stale += o.stale;
        self.gaps += o.gaps;
        self.crossed += o.crossed;
        self.resyncs += o.resyncs;
        self.snapshots += o.snapshots;
        self.snapshots_too_old += o.snapshots_too_old;
        self.snapshots_unused += o.snapshots_unused;
        self.overlaps += o.overlaps;
        self.buffer_overflows += o.buffer_overflows;
        self.malformed_ids += o.malformed_ids;
        self.id_jumps += o.id_jumps;
        for (a, b) in self.lost.iter_mut().zip(o.lost) {
            *a += b;
        }
        self.unsynced_ns_total += o.unsynced_ns_total;
        self.unsynced_ns_longest = self.unsynced_ns_longest.max(o.unsynced_ns_longest);
        self.unsynced_ns_current = self.unsynced_ns_current.max(o.unsynced_ns_current);
        self.unsynced_cause = self.unsynced_cause.or(o.unsynced_cause);
    }
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
        let verdict = if u > id.saturating_add(self.cfg.max_id_jump).saturating_add(allowance) {
            // Checked first: a diff that jumps far ahead would otherwise
            // straddle (spot U <= id + 1 <= u) or chain (USD-M pu == id),
            // be applied, and make every later diff stale.
            Verdict::Jump
        } else {
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
                (None, _) if big_u <= id + 1 => {
                    if !first && big_u != id + 1 {
                        self.stats.overlaps += 1;
                    }
                    Verdict::Apply
                }
                (None, _) => Verdict::Gap,
            }
        };
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

    #[test]
    fn contradictory_ids_are_malformed_and_never_applied_nor_buffered() {
        let mut r = Run::new();
        r.diff(diff(120, 110, None), &[l(11, 1)]);
        assert_eq!((r.b.stats().malformed_ids, r.b.buffered_len()), (1, 0));
        r.snap(100);
        r.diff(diff(105, 101, None), &[l(11, 1)]);
        r.diff(diff(101, 110, Some(120)), &[l(11, 1)]);
        assert_eq!(r.b.stats().malformed_ids, 3);
        assert!(r.applied.is_empty());
        assert!(r.b.is_synced(), "a malformed diff is not a gap");
        r.diff(diff(101, 105, None), &[l(12, 1)]);
        assert_eq!(r.applied, vec![105]);
    }

    #[test]
    fn an_implausible_id_jump_is_rejected_and_later_diffs_still_apply() {
        let mut r = Run::new();
        r.snap(100);
        r.diff(diff(101, 105, None), &[]);
        // u raised by 10^9: applied, it would make every later diff stale.
        r.diff(diff(106, 1_000_000_106, None), &[l(50, 1)]);
        assert_eq!((r.b.stats().id_jumps, r.b.update_id()), (1, 105));
        assert!(r.b.is_synced());
        r.diff(diff(106, 110, None), &[]);
        assert_eq!(r.applied, vec![105, 110]);
        // Within the limit is fine (a busy second on a busy symbol).
        r.diff(diff(111, 5_000_110, None), &[]);
        assert_eq!(r.applied.last(), Some(&5_000_110));
        // USD-M: the same rule, although pu chains.
        let mut r = Run::new();
        r.snap(100);
        r.diff(diff(90, 105, Some(80)), &[]);
        r.diff(diff(106, 2_000_000_000, Some(105)), &[]);
        r.diff(diff(107, 109, Some(105)), &[]);
        assert_eq!((r.applied.clone(), r.b.stats().id_jumps), (vec![105, 109], 1));
    }

    #[test]
    fn a_quiet_usdm_contract_is_not_taken_for_a_jump() {
        // USD-M ids are global: after 10 minutes without a change on this
        // contract, its next diff is ~5e7 ids ahead (80k a second), far past
        // max_id_jump, yet pu chains: it applies. A 10^9 jump one second
        // after the book moved is still refused.
        let mut r = Run::new();
        r.b.set_time(1_000_000_000);
        r.snap(100);
        r.diff(diff(90, 105, Some(80)), &[]);
        r.b.set_time(601_000_000_000);
        r.diff(diff(48_000_000, 48_000_010, Some(105)), &[]);
        assert_eq!((r.applied.clone(), r.b.stats().id_jumps), (vec![105, 48_000_010], 0));
        r.b.set_time(602_000_000_000);
        r.diff(diff(1_048_000_011, 1_048_000_020, Some(48_000_010)), &[]);
        assert_eq!(r.b.stats().id_jumps, 1);
        assert_eq!(r.b.update_id(), 48_000_010);
    }

    #[test]
    fn jumps_in_a_row_mean_the_ids_really_moved_and_force_a_resync() {
        let mut r = Run::new();
        r.snap(100);
        let base = 1_000_000_000;
        for i in 0..JUMPS_BEFORE_RESYNC as u64 {
            r.diff(diff(base + i * 10, base + i * 10 + 9, None), &[]);
        }
        assert!(r.b.wants_snapshot());
        assert_eq!(r.b.stats().lost_by(SyncLoss::IdJump), 1);
        assert_eq!(r.b.unsynced_cause(), Some(SyncLoss::IdJump));
        assert_eq!(r.b.buffered_len(), 1, "the last jumped diff starts the next sync");
    }

    #[test]
    fn a_book_applying_nothing_for_stale_resync_resyncs() {
        let mut b = SyncedBook::new(100, 16, 256);
        let mut noop = |_: Applied, _: &Book| {};
        b.set_time(1_000);
        b.on_snapshot(&snap(1_000), &[l(10, 1)], &[l(20, 1)], &mut noop);
        // Frames keep coming, all older than the book: 4.9 s is tolerated.
        for k in 0..50 {
            b.set_time(2_000 + k * 100_000_000);
            b.on_diff(&diff(500, 600, None), &[], &[], &mut noop);
        }
        assert!(b.is_synced());
        b.set_time(2_000 + 5_000_000_000);
        b.on_diff(&diff(500, 600, None), &[], &[], &mut noop);
        assert!(b.wants_snapshot());
        let s = b.stats();
        assert_eq!((s.lost_by(SyncLoss::Stale), s.unsynced_cause), (1, Some(SyncLoss::Stale)));
        assert_eq!(s.stale, 51);
        // Without times the rule never fires (replays that give none).
        let mut b = SyncedBook::new(100, 16, 256);
        b.on_snapshot(&snap(1_000), &[l(10, 1)], &[l(20, 1)], &mut noop);
        for _ in 0..100 {
            b.on_diff(&diff(500, 600, None), &[], &[], &mut noop);
        }
        assert!(b.is_synced());
    }

    #[test]
    fn a_crossed_snapshot_is_refused_and_counted_as_such_not_as_a_resync() {
        let mut b = SyncedBook::new(100, 16, 256);
        let mut noop = |_: Applied, _: &Book| {};
        b.on_snapshot(&snap(100), &[l(10, 1)], &[l(20, 1)], &mut noop);
        b.set_time(1_000);
        b.invalidate();
        b.set_time(2_000);
        b.on_snapshot(&snap(200), &[l(30, 1)], &[l(20, 1)], &mut noop);
        let s = b.stats();
        assert!(b.wants_snapshot());
        assert_eq!(s.lost_by(SyncLoss::CrossedSnapshot), 1);
        assert_eq!(s.lost_by(SyncLoss::CrossedBook), 0);
        assert_eq!((s.resyncs, s.snapshots, s.crossed), (0, 1, 1));
        assert_eq!(s.unsynced_cause, Some(SyncLoss::CrossedSnapshot));
        assert_eq!(s.unsynced_ns_current, 1_000, "the spell began at the reconnect");
        b.set_time(4_000);
        b.on_snapshot(&snap(300), &[l(10, 1)], &[l(20, 1)], &mut noop);
        let s = b.stats();
        assert_eq!((s.resyncs, s.snapshots), (1, 2));
        assert_eq!((s.unsynced_ns_total, s.unsynced_ns_longest, s.unsynced_ns_current), (3_000, 3_000, 0));
        assert_eq!(s.unsynced_cause, None);
        assert_eq!(s.lost_by(SyncLoss::Reconnect), 1);
    }

    #[test]
    fn unsynced_time_runs_from_losing_sync_to_synced_again() {
        let mut r = Run::new();
        r.b.set_time(10);
        r.snap(100); // the first sync is not a spell
        assert_eq!(r.b.stats().unsynced_ns_total, 0);
        r.b.set_time(1_000);
        r.diff(diff(101, 105, None), &[]);
        r.b.set_time(2_000);
        r.diff(diff(110, 115, None), &[]); // gap
        r.b.set_time(2_500);
        assert_eq!(r.b.stats().unsynced_ns_current, 500);
        r.b.set_time(7_000);
        r.snap(112);
        r.b.set_time(8_000);
        r.diff(diff(120, 125, None), &[]); // gap again
        r.b.set_time(8_100);
        r.snap(125);
        let s = r.b.stats();
        assert_eq!((s.unsynced_ns_total, s.unsynced_ns_longest), (5_100, 5_000));
        assert_eq!((s.gaps, s.lost_by(SyncLoss::Gap), s.resyncs), (2, 2, 2));
        let mut sum = SyncStats::default();
        sum.add(&s);
        sum.add(&s);
        assert_eq!((sum.unsynced_ns_total, sum.unsynced_ns_longest, sum.lost_by(SyncLoss::Gap)), (10_200, 5_000, 4));
    }

    #[test]
    fn loss_causes_have_distinct_names() {
        let names: Vec<&str> = SyncLoss::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(
            names,
            [
                "gap",
                "ticker_mismatch",
                "id_jump",
                "stale",
                "crossed_snapshot",
                "crossed_book",
                "reconnect",
                "top20_refresh"
            ]
        );
        assert!(SyncLoss::ALL.iter().enumerate().all(|(i, c)| c.index() == i));
    }
}

//! What a synced book reports about itself: why it lost sync
//! ([`SyncLoss`]), its id-sanity and liveness limits ([`SyncConfig`]) and
//! its counters ([`SyncStats`]). Kept apart from the sync rules so reports,
//! the feed and the config read them without the book's internals.

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

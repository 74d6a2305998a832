//! The feed's health as an operator reads it: whether the traded book is
//! synced, since when it is not and why ([`SyncClock`], kept on the hot
//! thread with integers only), the `feed` section of `report.json`
//! ([`FeedReport`]), and one log line per disconnect, gap, resync and
//! ticker mismatch written off the hot thread ([`FeedLogger`], from the
//! status snapshots).
//!
//! Causes come from what the feed and the book's counters show today: a
//! disconnect (with its reason), a gap, a crossed book. The hot path's own
//! per-cause resync counters (id jump, ticker mismatch, stale), when it has
//! them, belong in [`FeedReport::resyncs_by_cause`] and
//! [`UnsyncedCause`]: see `FeedReport::build`.

use serde::Serialize;

use crate::feed::connector::Reason;
use crate::feed::live::{LinkStats, REASONS};
use crate::hot::market::FeedStats;
use crate::hot::sync::{SyncLoss, SyncStats};

/// Why the traded book is (or last was) unsynced.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum UnsyncedCause {
    /// Not synced yet since the start.
    #[default]
    Start,
    /// The connection ended (unplanned).
    Disconnect(Reason),
    /// A missing update id (gap).
    Gap,
    /// The book was crossed after an event.
    Crossed,
    /// The hot path's own cause (ticker mismatch, id jump, stale, ...).
    Lost(SyncLoss),
    /// Something the counters here do not tell apart (see the module doc).
    Other,
}

impl UnsyncedCause {
    /// For status lines: `unsynced (gap)`.
    pub fn name(self) -> &'static str {
        match self {
            UnsyncedCause::Start => "starting",
            UnsyncedCause::Disconnect(r) => r.name(),
            UnsyncedCause::Gap => "gap",
            UnsyncedCause::Crossed => "crossed book",
            UnsyncedCause::Lost(c) => c.as_str(),
            UnsyncedCause::Other => "resync",
        }
    }

    /// JSON key in `feed.resyncs_by_cause`.
    pub fn key(self) -> &'static str {
        match self {
            UnsyncedCause::Start => "start",
            UnsyncedCause::Disconnect(_) => "disconnect",
            UnsyncedCause::Gap => "gap",
            UnsyncedCause::Crossed => "crossed",
            UnsyncedCause::Lost(c) => c.as_str(),
            UnsyncedCause::Other => "other",
        }
    }
}

/// The traded book's synced state over time. Hot thread: integer work only.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncClock {
    pub synced: bool,
    /// Wall ns when the current state began.
    pub since_ns: i64,
    /// Why the book is unsynced now, or was last.
    pub cause: UnsyncedCause,
    /// Finished unsynced spells after the first sync: total and longest, ns.
    pub unsynced_total_ns: u64,
    pub unsynced_longest_ns: u64,
    /// Times the book lost sync, by cause.
    pub lost_on_disconnect: u64,
    pub lost_on_gap: u64,
    pub lost_on_crossed: u64,
    pub lost_other: u64,
    ever_synced: bool,
    pending_disconnect: Option<Reason>,
    last_gaps: u64,
    last_crossed: u64,
}

impl SyncClock {
    pub fn new(now_ns: i64) -> Self {
        Self { since_ns: now_ns, ..Self::default() }
    }

    /// The feed dropped its connection (unplanned): the next loss of sync
    /// is its doing.
    pub fn on_disconnect(&mut self, reason: Reason) {
        self.pending_disconnect = Some(reason);
    }

    /// Looks at the traded book (after every frame or turn).
    #[inline]
    pub fn observe(&mut self, synced: bool, now_ns: i64, stats: &SyncStats) {
        if synced == self.synced {
            return;
        }
        if synced {
            if self.ever_synced {
                let d = now_ns.saturating_sub(self.since_ns).max(0) as u64;
                self.unsynced_total_ns += d;
                self.unsynced_longest_ns = self.unsynced_longest_ns.max(d);
            }
            self.ever_synced = true;
            self.pending_disconnect = None;
        } else {
            self.cause = match self.pending_disconnect.take() {
                Some(r) => UnsyncedCause::Disconnect(r),
                // The hot path names its own cause when it has one.
                None if stats.unsynced_cause.is_some_and(|c| c != SyncLoss::Reconnect) => {
                    UnsyncedCause::Lost(stats.unsynced_cause.unwrap_or(SyncLoss::Gap))
                }
                None if stats.gaps > self.last_gaps => UnsyncedCause::Gap,
                None if stats.crossed > self.last_crossed => UnsyncedCause::Crossed,
                None => UnsyncedCause::Other,
            };
            match self.cause {
                UnsyncedCause::Disconnect(_) => self.lost_on_disconnect += 1,
                UnsyncedCause::Gap => self.lost_on_gap += 1,
                UnsyncedCause::Crossed => self.lost_on_crossed += 1,
                _ => self.lost_other += 1,
            }
        }
        self.last_gaps = stats.gaps;
        self.last_crossed = stats.crossed;
        self.synced = synced;
        self.since_ns = now_ns;
    }

    /// Unsynced time total and longest, the current spell included.
    pub fn unsynced_ns(&self, now_ns: i64) -> (u64, u64) {
        let current =
            if self.synced || !self.ever_synced { 0 } else { now_ns.saturating_sub(self.since_ns).max(0) as u64 };
        (self.unsynced_total_ns + current, self.unsynced_longest_ns.max(current))
    }
}

/// Snapshot counters of the fetching threads, at the end of a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SnapshotTotals {
    /// Requests sent to the server / second requests skipped for weight.
    pub sent: u64,
    pub hedges_skipped: u64,
    pub weight_waits: u64,
    pub guard_waits: u64,
    /// Snapshots the WebSocket API answered / failed while REST alone was
    /// refused (RAW_REQUESTS).
    pub ws_api_ok: u64,
    pub ws_api_failed: u64,
}

/// `report.json` `feed`: how the live feed went.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct FeedReport {
    pub connections: u64,
    /// Whether the traded book was ever in sync (a run that never was
    /// quoted nothing and exits with the feed's status).
    pub synced_once: bool,
    /// Disconnects by reason (`closed`, `server_shutdown`, `renewal`, ...),
    /// planned renewals included.
    pub disconnects: std::collections::BTreeMap<&'static str, u64>,
    /// Planned renewals made before break (books kept), forced ones, the
    /// longest wait for the new connection to catch up.
    pub switches: u64,
    pub switches_forced: u64,
    pub switch_wait_ms_max: f64,
    pub standby_failures: u64,
    /// Unplanned disconnect to the next connection.
    pub reconnect_wait_ms_total: f64,
    pub reconnect_wait_ms_max: f64,
    pub snapshots: SnapshotSection,
    pub gaps: u64,
    pub resyncs: u64,
    /// Losses of sync of the traded book by cause.
    pub resyncs_by_cause: std::collections::BTreeMap<&'static str, u64>,
    pub unsynced_ms_total: f64,
    pub unsynced_ms_longest: f64,
    pub quotes_pulled: PulledSection,
    pub book_ticker_checked: u64,
    pub book_ticker_mismatched: u64,
    /// bookTickers the book had already passed (only `u` read).
    pub book_ticker_skipped: u64,
    /// Diffs refused for their ids: `U > u` (or `pu > u`), and `u` more
    /// than `[book] max_id_jump` past the book.
    pub malformed_ids: u64,
    pub id_jumps: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct SnapshotSection {
    /// Asked by the hot thread (second requests included).
    pub asked: u64,
    pub hedged: u64,
    /// Bodies handed to the books / failed (HTTP error, timeout) / refused
    /// by the book (older than the buffered diffs).
    pub answered: u64,
    pub failed: u64,
    pub refused_too_old: u64,
    /// Second answers not applied, lost, from an ended connection.
    pub duplicates: u64,
    pub lost: u64,
    pub discarded: u64,
    pub sent: u64,
    pub hedges_skipped: u64,
    pub weight_waits: u64,
    pub guard_waits: u64,
    /// Snapshots taken from the WebSocket API's `depth` while REST alone
    /// was refused (a RAW_REQUESTS 429) / asked there and not answered.
    pub ws_api: u64,
    pub ws_api_failed: u64,
    /// Books rebuilt from the depth20 stream while REST was refused: TOP-20
    /// BOOKS, exact in their best 20 levels only until the next REST snapshot.
    pub top20_rebuilds: u64,
    /// Of those, books a full REST snapshot replaced once REST answered.
    pub top20_refreshes: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PulledSection {
    pub total: u64,
    pub stale: u64,
    pub sync_loss: u64,
    /// Pulls on losing sync, by the hot path's cause.
    pub by_cause: std::collections::BTreeMap<&'static str, u64>,
}

/// The hot path's counters the report reads, at the end of a run.
#[derive(Debug, Clone, Copy, Default)]
pub struct HotCounts {
    pub sync: SyncStats,
    pub feed: FeedStats,
    pub pulled: u64,
    pub pulled_stale: u64,
    pub pulled_on_sync_loss: u64,
    /// Quotes pulled on losing sync, by [`SyncLoss`] (the guard's count).
    pub pulled_by_cause: [u64; SyncLoss::COUNT],
}

fn ms(ns: u64) -> f64 {
    (ns as f64 / 1e4).round() / 100.0
}

impl FeedReport {
    /// Where the hot path's per-cause counters plug in: `resyncs_by_cause`
    /// takes `SyncStats`'s resyncs by cause (id jump, ticker mismatch,
    /// stale) next to the causes seen here, `unsynced_ms_*` its own
    /// unsynced time, and `quotes_pulled` the guard's pulls by cause.
    pub fn build(link: &LinkStats, snap: SnapshotTotals, hot: &HotCounts, clock: &SyncClock, now_ns: i64) -> Self {
        let disconnects =
            REASONS.iter().filter(|r| **r != Reason::Start).map(|&r| (r.key(), link.disconnects[r as usize])).collect();
        // Losses of sync by cause as the books counted them (every book,
        // not only the traded one), plus the connection drops seen here.
        let mut by_cause = std::collections::BTreeMap::new();
        by_cause.insert("disconnect", clock.lost_on_disconnect);
        for c in SyncLoss::ALL.into_iter().filter(|c| *c != SyncLoss::Reconnect) {
            by_cause.insert(c.as_str(), hot.sync.lost_by(c));
        }
        let pulled_by_cause = SyncLoss::ALL.into_iter().map(|c| (c.as_str(), hot.pulled_by_cause[c.index()])).collect();
        let (total, longest) = clock.unsynced_ns(now_ns);
        Self {
            connections: link.connects,
            synced_once: clock.ever_synced,
            disconnects,
            switches: link.switches,
            switches_forced: link.switches_forced,
            switch_wait_ms_max: ms(link.switch_wait_ns_max),
            standby_failures: link.standby_failures,
            reconnect_wait_ms_total: ms(link.reconnect_ns_total),
            reconnect_wait_ms_max: ms(link.reconnect_ns_max),
            snapshots: SnapshotSection {
                asked: link.snapshots_requested,
                hedged: link.snapshots_hedged,
                answered: link.snapshots_received,
                failed: link.snapshots_failed,
                refused_too_old: hot.sync.snapshots_too_old,
                duplicates: link.snapshots_duplicate,
                lost: link.snapshots_lost,
                discarded: link.snapshots_discarded,
                sent: snap.sent,
                hedges_skipped: snap.hedges_skipped,
                weight_waits: snap.weight_waits,
                guard_waits: snap.guard_waits,
                ws_api: snap.ws_api_ok,
                ws_api_failed: snap.ws_api_failed,
                top20_rebuilds: link.top20_rebuilds,
                top20_refreshes: link.top20_refreshes,
            },
            gaps: hot.sync.gaps,
            resyncs: hot.sync.resyncs,
            resyncs_by_cause: by_cause,
            unsynced_ms_total: ms(total),
            unsynced_ms_longest: ms(longest),
            quotes_pulled: PulledSection {
                total: hot.pulled,
                stale: hot.pulled_stale,
                sync_loss: hot.pulled_on_sync_loss,
                by_cause: pulled_by_cause,
            },
            malformed_ids: hot.sync.malformed_ids,
            id_jumps: hot.sync.id_jumps,
            book_ticker_skipped: hot.feed.tickers_skipped,
            book_ticker_checked: hot.feed.ticker_checks,
            book_ticker_mismatched: hot.feed.ticker_mismatches,
        }
    }
}

/// What the status snapshots carry for the log (counters only).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FeedCounters {
    pub connects: u64,
    pub disconnects: u64,
    pub last_disconnect: Option<Reason>,
    pub switches: u64,
    pub gaps: u64,
    pub resyncs: u64,
    pub ticker_mismatches: u64,
    /// Frames refused as malformed, and why the latest was.
    pub malformed: u64,
    pub last_malformed: Option<crate::hot::parse::ParseError>,
}

/// Writes one line per disconnect, switch, gap, resync and ticker mismatch
/// seen between two status snapshots (a burst inside one ~250 ms snapshot
/// becomes one line with its count). Runs on the thread that reads the
/// status, never on the hot thread.
#[derive(Debug, Default)]
pub struct FeedLogger {
    prev: FeedCounters,
}

impl FeedLogger {
    /// The lines for the change since the last call (also logged).
    pub fn update(&mut self, now: FeedCounters, synced: bool) -> Vec<String> {
        let p = std::mem::replace(&mut self.prev, now);
        let mut lines = Vec::new();
        let mut say = |n: u64, what: &str| {
            if n == 1 {
                lines.push(what.to_string());
            } else if n > 1 {
                lines.push(format!("{n} x {what}"));
            }
        };
        let planned = now.switches.saturating_sub(p.switches);
        say(planned, "feed renewed: switched to the new connection, books kept (make before break)");
        let dropped = now.disconnects.saturating_sub(p.disconnects).saturating_sub(planned);
        let reason = now.last_disconnect.map_or("unknown", |r| r.name());
        say(dropped, &format!("feed disconnected ({reason}); reconnecting, books resync from a snapshot"));
        say(now.gaps.saturating_sub(p.gaps), "book gap: an update id is missing; quotes pulled, resyncing");
        say(now.ticker_mismatches.saturating_sub(p.ticker_mismatches), "bookTicker differs from the book");
        if let Some(e) = now.last_malformed {
            let what = format!("malformed frame refused (the latest: {e}); the book keeps its last good state");
            say(now.malformed.saturating_sub(p.malformed), &what);
        }
        let resynced = now.resyncs.saturating_sub(p.resyncs);
        say(resynced, &format!("book resynced{}", if synced { "" } else { "; unsynced again" }));
        for l in &lines {
            tracing::warn!(target: "mmbot::feed", "{l}");
        }
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsynced_time_and_causes_are_counted() {
        let mut c = SyncClock::new(0);
        let mut s = SyncStats::default();
        c.observe(true, 1_000, &s);
        assert_eq!(c.unsynced_ns(1_000), (0, 0), "the start is not an unsynced spell");
        s.gaps = 1;
        c.observe(false, 2_000, &s);
        assert_eq!(c.cause, UnsyncedCause::Gap);
        c.observe(true, 5_000, &s);
        c.on_disconnect(Reason::Closed);
        c.observe(false, 6_000, &s);
        assert_eq!(c.cause, UnsyncedCause::Disconnect(Reason::Closed));
        assert_eq!(c.unsynced_ns(7_000), (4_000, 3_000));
        assert_eq!((c.lost_on_gap, c.lost_on_disconnect), (1, 1));
    }

    #[test]
    fn malformed_frames_are_logged_with_the_latest_reason() {
        let mut l = FeedLogger::default();
        let e = crate::hot::parse::ParseError::Empty;
        let now = FeedCounters { malformed: 3, last_malformed: Some(e), ..FeedCounters::default() };
        let lines = l.update(now, true);
        assert_eq!(
            lines,
            vec![format!("3 x malformed frame refused (the latest: {e}); the book keeps its last good state")]
        );
        assert!(l.update(now, true).is_empty(), "nothing new, nothing said");
    }

    #[test]
    fn the_logger_says_each_kind_once_per_change() {
        let mut l = FeedLogger::default();
        let mut n = FeedCounters { connects: 1, ..FeedCounters::default() };
        assert!(l.update(n, true).is_empty());
        n.disconnects = 1;
        n.last_disconnect = Some(Reason::InvalidUtf8);
        n.gaps = 2;
        let lines = l.update(n, false);
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(lines[0].contains("invalid UTF-8 text frame"), "{lines:?}");
        assert!(lines[1].starts_with("2 x book gap"), "{lines:?}");
        n.switches = 1;
        n.disconnects = 2;
        let lines = l.update(n, true);
        assert_eq!(lines, vec!["feed renewed: switched to the new connection, books kept (make before break)"]);
    }
}

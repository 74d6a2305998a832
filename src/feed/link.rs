//! The live feed's counters ([`LinkStats`]): connections, disconnects by
//! reason, planned renewals, reconnect waits and snapshots, copied out of
//! the hot thread for status lines and the report's `feed` section.

use crate::feed::connector::Reason;

/// Counters of the live feed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkStats {
    pub connects: u64,
    /// Disconnects by [`Reason`] (index = `Reason as usize`); a planned
    /// renewal's old connection counts under its reason when it is closed.
    pub disconnects: [u64; REASON_COUNT],
    /// The last disconnect's reason (status lines, the log).
    pub last_disconnect: Option<Reason>,
    /// Planned renewals switched over with the books kept (make before
    /// break), and of those the ones forced before the new connection had
    /// caught up (the old one closed first, or [`crate::feed::switch::SWITCH_TIMEOUT`]).
    pub switches: u64,
    pub switches_forced: u64,
    /// Longest time from a new connection's arrival to the switch, ns.
    pub switch_wait_ns_max: u64,
    /// New connections of a renewal that failed before the switch.
    pub standby_failures: u64,
    /// Unplanned disconnects to the next connection: total and longest, ns.
    pub reconnect_ns_total: u64,
    pub reconnect_ns_max: u64,
    pub frames: u64,
    pub bytes: u64,
    pub pings_received: u64,
    pub pings_sent: u64,
    pub pongs_received: u64,
    pub snapshots_requested: u64,
    /// Bodies handed to the books (some may still be refused as too old).
    pub snapshots_received: u64,
    pub snapshots_failed: u64,
    /// Requests whose reply never came (asked again).
    pub snapshots_lost: u64,
    /// Second requests after `snapshot_hedge_after` without an answer.
    pub snapshots_hedged: u64,
    /// Answers that came after another answer for the same request (not applied).
    pub snapshots_duplicate: u64,
    /// Books rebuilt from the depth20 stream while REST was refused: exact
    /// in their top 20 levels only.
    pub top20_rebuilds: u64,
    /// Books rebuilt from depth20 that a full REST snapshot replaced once
    /// REST answered again.
    pub top20_refreshes: u64,
    /// depth20 frames not needed (REST answered, or the book was synced).
    pub top20_frames_skipped: u64,
    /// Replies to a request made on an earlier connection.
    pub snapshots_discarded: u64,
    /// Snapshot requests refused because the ring to the fetcher was full.
    pub snapshot_ring_full: u64,
    /// New sockets mio could not register (each leads to a reconnect).
    pub register_failures: u64,
}

impl LinkStats {
    pub fn disconnects_total(&self) -> u64 {
        self.disconnects.iter().sum()
    }
}

/// How many [`Reason`]s there are.
pub const REASON_COUNT: usize = 8;

/// All reasons, in `LinkStats::disconnects` order.
pub const REASONS: [Reason; REASON_COUNT] = [
    Reason::Start,
    Reason::Closed,
    Reason::Error,
    Reason::Silence,
    Reason::NoPong,
    Reason::ServerShutdown,
    Reason::Renew,
    Reason::InvalidUtf8,
];

/// The reason's name for counters and status lines.
pub fn reason_names() -> impl Iterator<Item = (&'static str, usize)> {
    REASONS.iter().map(|&r| (r.name(), r as usize))
}

//! What the live order manager tells its caller: why it could not start
//! ([`LiveError`]), why it stopped ([`StopReason`]) and what it did
//! ([`LiveStats`]). Kept apart so reports and the runtime read them without
//! the manager's internals.

use crate::exec::binance::errors::BinanceError;
use crate::exec::journal::JournalError;
use crate::exec::risk::KillReason;
use crate::exec::userdata::UserDataError;

/// Why the order manager could not start.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    #[error("live trading: {0}")]
    Binance(#[from] BinanceError),
    #[error("live trading: {0}")]
    Journal(#[from] JournalError),
    #[error("live trading: {0}")]
    UserData(#[from] UserDataError),
    #[error("live trading: {0}")]
    Setup(String),
}

/// Why trading stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// The kill switch tripped.
    Kill(KillReason),
    /// HTTP 418 / 403: the exchange refuses us; a person has to look.
    Banned,
    /// The API key or signature was refused.
    Credentials,
    /// A fill could not be committed to the journal.
    Journal,
    /// [`LiveExchange::stop`](super::LiveExchange::stop) was called.
    Requested,
}

impl std::fmt::Display for StopReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StopReason::Kill(r) => write!(f, "killed: {r}"),
            StopReason::Banned => f.write_str("stopped: the exchange refuses us (418/403)"),
            StopReason::Credentials => f.write_str("stopped: credentials refused"),
            StopReason::Journal => f.write_str("stopped: a fill could not be journaled"),
            StopReason::Requested => f.write_str("ok"),
        }
    }
}

/// Counters of the order manager.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LiveStats {
    pub quotes: u64,
    /// New orders sent (cancelReplace's new half included).
    pub orders: u64,
    pub cancels: u64,
    /// Of `orders`, sent as cancelReplace.
    pub replaces: u64,
    pub fills: u64,
    pub duplicate_fills: u64,
    /// Orders refused by the symbol's filters (never sent).
    pub refused_by_filter: u64,
    /// Orders refused by the pre-trade checks (never sent); per reason in
    /// [`LiveExchange::risk_counters`](super::LiveExchange::risk_counters).
    pub refused_by_risk: u64,
    /// Requests refused on this side before sending: a rate-limit back-off
    /// or ban the process's IP guard holds, or a local filter check. The
    /// exchange never saw them.
    pub refused_locally: u64,
    /// The last refusal, in words.
    pub last_refusal: Option<String>,
    /// Requests the exchange answered with a refusal (would-take included).
    pub rejected: u64,
    pub would_take: u64,
    /// Order requests whose fate was unknown when answered (timeout, 5xx,
    /// -1006, -1007, a dropped connection).
    pub unknown_fates: u64,
    /// Unknown fates settled by a lookup or the user-data stream, and how
    /// they turned out.
    pub lookups: u64,
    pub lookups_found: u64,
    pub lookups_absent: u64,
    /// Lookups that answered "does not exist" before the deadline: the
    /// order could still reach the matching engine, so the side stayed
    /// blocked.
    pub lookups_too_early: u64,
    pub clock_resyncs: u64,
    pub waits: u64,
    pub balance_refreshes: u64,
    pub reconciles: u64,
    pub resubscribes: u64,
    pub orphans_canceled: u64,
    pub orphans_adopted: u64,
    /// Requests whose outcome the user-data stream told before their answer
    /// came (the side moved on without waiting for a slow answer).
    pub overtaken_by_stream: u64,
    /// Orders that ended on the exchange by self-trade prevention.
    pub stp_expired: u64,
    /// Fills recovered over REST that the stream had not delivered.
    pub fills_recovered: u64,
    /// Trade or end reports whose cumulative filled quantity showed an
    /// earlier trade of the order missing (each asks `myTrades` for it).
    pub stream_fill_gaps: u64,
    /// Dry run: orders the exchange checked with `order/test` (never
    /// placed); `orders` counts them too.
    pub dry_run_tested: u64,
    /// Times a stop waited for an IP ban to lift before cancelling.
    pub ban_waits: u64,
    /// Orders of this run that a stop could not cancel (an IP ban longer
    /// than `ban_wait_max`, or the exchange unreachable): they may still
    /// rest, and the next start reconciles them.
    pub left_open: u64,
    /// Comparisons of the position with the base balance, and those beyond
    /// `[live] balance_tolerance`.
    pub balance_checks: u64,
    pub balance_drifts: u64,
    /// Most requests in flight at once.
    pub max_in_flight: u64,
    pub last_error: Option<String>,
}

//! One side's order as a state machine ([`SideState`]): idle, sending,
//! live, replacing, cancelling, or of unknown fate until its deadline.
//!
//! Why a state machine: requests are answered asynchronously
//! ([`OrderGateway`](crate::exec::binance::gateway::OrderGateway)), so a
//! side must remember what it is waiting for. The rule that keeps a side
//! to one order at a time lives here: only [`SideState::Idle`] and
//! [`SideState::Live`] accept a new decision; every other state is busy
//! until its answer (or, for an unknown fate, its deadline) comes.

use std::time::{Duration, Instant};

use crate::exec::binance::gateway::RequestId;
use crate::exec::paper::{WorkingOrder, QUEUE_UNKNOWN};
use crate::exec::Side;
use crate::hot::fixed::{Price, Qty};

/// Binance may take up to 10 s to answer -1007 and the order can still
/// reach the matching engine after that answer (FACTS.md §3.4, errors.md
/// -1007 "execution status unknown"); an unknown fate is final only after
/// the later of `timestamp + recvWindow` and `send + 10 s`.
pub const ENGINE_TIMEOUT: Duration = Duration::from_secs(10);

/// Slack for the clock offset's error when turning a server-time deadline
/// into a local one.
pub const DEADLINE_SLACK: Duration = Duration::from_millis(500);

/// One order as the manager tracks it.
#[derive(Debug, Clone)]
pub struct LiveOrder {
    pub client_id: String,
    /// 0 until the exchange has confirmed the order.
    pub order_id: u64,
    pub side: Side,
    pub price: Price,
    pub orig_qty: Qty,
    pub filled: Qty,
    /// When it was sent (or adopted).
    pub since: Instant,
    pub since_ns: i64,
}

impl LiveOrder {
    pub fn new(client_id: &str, side: Side, price: Price, qty: Qty, now_ns: i64) -> Self {
        Self {
            client_id: client_id.to_string(),
            order_id: 0,
            side,
            price,
            orig_qty: qty,
            filled: Qty::ZERO,
            since: Instant::now(),
            since_ns: now_ns,
        }
    }

    pub fn remaining(&self) -> Qty {
        Qty((self.orig_qty.0 - self.filled.0).max(0))
    }

    /// As paper reports a working order (`qty` = remaining).
    pub fn working(&self) -> WorkingOrder {
        WorkingOrder {
            id: self.order_id,
            side: self.side,
            price: self.price,
            qty: self.remaining(),
            orig_qty: self.orig_qty,
            queue_ahead: QUEUE_UNKNOWN,
            live_since_ns: self.since_ns,
            cancel_at_ns: None,
        }
    }
}

/// An order whose fate is not known yet.
#[derive(Debug, Clone)]
pub struct Unknown {
    pub order: LiveOrder,
    /// A cancelReplace of unknown fate: the order it was replacing, which
    /// may or may not have been cancelled.
    pub old: Option<LiveOrder>,
    /// Until then "does not exist" is not final (the order may still reach
    /// the engine). `None`: the order surely existed (it was confirmed);
    /// only its current state is unknown.
    pub deadline: Option<Instant>,
    /// The lookup in flight.
    pub query: Option<RequestId>,
    /// When to look again.
    pub next_query: Instant,
}

/// What one side is doing.
#[derive(Debug, Clone, Default)]
pub enum SideState {
    #[default]
    Idle,
    /// A new order is in flight.
    Placing { req: RequestId, order: LiveOrder },
    /// Resting on the book (as far as we know).
    Live(LiveOrder),
    /// A cancelReplace is in flight.
    Replacing { req: RequestId, old: LiveOrder, new: LiveOrder },
    /// A cancel is in flight (`req`), or waits to be sent again at
    /// `retry_at` (a back-off, or its first try's fate was unknown: a
    /// cancel is safe to repeat).
    Cancelling { req: Option<RequestId>, order: LiveOrder, retry_at: Instant, why: &'static str },
    /// Fate unknown: blocked until the exchange tells, or the deadline.
    Unknown(Unknown),
}

impl SideState {
    /// May a new decision be taken (send, replace, cancel)?
    pub fn accepts_decision(&self) -> bool {
        matches!(self, Self::Idle | Self::Live(_))
    }

    /// Every order this side tracks (at most two: a replace's old and new).
    pub fn orders(&self) -> impl Iterator<Item = &LiveOrder> {
        let (a, b) = match self {
            Self::Idle => (None, None),
            Self::Placing { order, .. } | Self::Live(order) | Self::Cancelling { order, .. } => (Some(order), None),
            Self::Replacing { old, new, .. } => (Some(old), Some(new)),
            Self::Unknown(u) => (Some(&u.order), u.old.as_ref()),
        };
        a.into_iter().chain(b)
    }

    pub fn orders_mut(&mut self) -> impl Iterator<Item = &mut LiveOrder> {
        let (a, b) = match self {
            Self::Idle => (None, None),
            Self::Placing { order, .. } | Self::Live(order) | Self::Cancelling { order, .. } => (Some(order), None),
            Self::Replacing { old, new, .. } => (Some(old), Some(new)),
            Self::Unknown(u) => (Some(&mut u.order), u.old.as_mut()),
        };
        a.into_iter().chain(b)
    }

    pub fn tracks(&self, client_id: &str) -> bool {
        self.orders().any(|o| o.client_id == client_id)
    }

    /// The order to show as working: the live one, or the one being
    /// placed, replaced or cancelled.
    pub fn shown(&self) -> Option<&LiveOrder> {
        match self {
            Self::Idle => None,
            Self::Placing { order, .. } | Self::Live(order) | Self::Cancelling { order, .. } => Some(order),
            Self::Replacing { old, .. } => Some(old),
            Self::Unknown(u) => Some(&u.order),
        }
    }

    /// The request this side waits on, if any.
    pub fn waits_on(&self, id: RequestId) -> bool {
        match self {
            Self::Placing { req, .. } | Self::Replacing { req, .. } => *req == id,
            Self::Cancelling { req, .. } => *req == Some(id),
            Self::Unknown(u) => u.query == Some(id),
            _ => false,
        }
    }

    /// A short name for logs and tests.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Idle => "idle",
            Self::Placing { .. } => "sending",
            Self::Live(_) => "live",
            Self::Replacing { .. } => "replacing",
            Self::Cancelling { .. } => "cancelling",
            Self::Unknown(_) => "unknown",
        }
    }
}

/// The unknown-fate deadline of a request sent at `sent_at` with
/// `timestamp` and `recvWindow`: the later of the two bounds, plus slack.
pub fn fate_deadline(sent_at: Instant, recv_window: Duration) -> Instant {
    // `timestamp` is the server clock at sending (our clock plus the
    // measured offset), so `timestamp + recvWindow` is `sent_at +
    // recvWindow` on our clock, to within the offset's error.
    sent_at + recv_window.max(ENGINE_TIMEOUT) + DEADLINE_SLACK
}

/// Slot `s` holds level `s / 2` of the bid (`s` even) or the ask (odd):
/// the best bid and ask are slots 0 and 1, a ladder's deeper levels
/// follow in pairs, so one symbol's orders are a short array the manager
/// walks in order of importance.
pub fn slot(side: Side, level: usize) -> usize {
    level * 2
        + match side {
            Side::Buy => 0,
            Side::Sell => 1,
        }
}

/// The side of slot `s`.
pub fn side_of(s: usize) -> Side {
    if s.is_multiple_of(2) {
        Side::Buy
    } else {
        Side::Sell
    }
}

/// The ladder level of slot `s` (0 = best).
pub fn level_of(s: usize) -> usize {
    s / 2
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(id: &str) -> LiveOrder {
        LiveOrder::new(id, Side::Buy, Price(100), Qty(5), 0)
    }

    #[test]
    fn only_idle_and_live_take_decisions() {
        let now = Instant::now();
        assert!(SideState::Idle.accepts_decision());
        assert!(SideState::Live(order("a")).accepts_decision());
        assert!(!SideState::Placing { req: 1, order: order("a") }.accepts_decision());
        assert!(!SideState::Replacing { req: 1, old: order("a"), new: order("b") }.accepts_decision());
        assert!(!SideState::Cancelling { req: None, order: order("a"), retry_at: now, why: "x" }.accepts_decision());
        let u = Unknown { order: order("a"), old: None, deadline: Some(now), query: None, next_query: now };
        assert!(!SideState::Unknown(u).accepts_decision());
    }

    #[test]
    fn a_replace_tracks_both_orders() {
        let s = SideState::Replacing { req: 7, old: order("a"), new: order("b") };
        assert!(s.tracks("a") && s.tracks("b") && !s.tracks("c"));
        assert!(s.waits_on(7) && !s.waits_on(8));
        assert_eq!(s.shown().unwrap().client_id, "a");
    }

    #[test]
    fn slots_pair_the_sides_level_by_level() {
        assert_eq!((slot(Side::Buy, 0), slot(Side::Sell, 0), slot(Side::Buy, 2), slot(Side::Sell, 2)), (0, 1, 4, 5));
        for s in 0..16 {
            assert_eq!(slot(side_of(s), level_of(s)), s);
        }
    }

    #[test]
    fn the_deadline_is_the_later_bound() {
        let t = Instant::now();
        assert_eq!(fate_deadline(t, Duration::from_secs(5)), t + Duration::from_secs(10) + DEADLINE_SLACK);
        assert_eq!(fate_deadline(t, Duration::from_secs(30)), t + Duration::from_secs(30) + DEADLINE_SLACK);
    }
}

//! Orders of unknown fate. Binance may answer -1007 after waiting up to
//! 10 s for the matching engine, and the order can still reach the engine
//! after that answer; -1006, a 5xx, a client timeout or a dropped
//! connection leave the fate unknown too (errors.md; FACTS.md §3.4, §4.8).
//! So a side whose order's fate is unknown stays blocked until the later
//! of `timestamp + recvWindow` and `send + 10 s`
//! ([`super::side::fate_deadline`]). Until then the user-data stream is
//! watched for the client id ([`LiveExchange::found_on_stream`]) and the
//! order is looked up again; a lookup saying "does not exist" is final only
//! when it was *sent* after the deadline.

use std::time::{Duration, Instant};

use crate::exec::binance::errors::{Action, BinanceError};
use crate::exec::binance::gateway::{Answer, Call, Reply};
use crate::exec::journal::OrderStatus;

use super::side::{LiveOrder, SideState, Unknown};
use super::{LiveExchange, Purpose};

/// How often an unknown fate is looked up again.
const LOOKUP_EVERY: Duration = Duration::from_millis(500);

impl LiveExchange {
    /// Sends the side's lookup when one is due.
    pub(super) fn fate_tick(&mut self, s: usize) {
        let now = Instant::now();
        if self.all_blocked_until.is_some_and(|t| now < t) {
            return;
        }
        let due = match &self.slots[s] {
            SideState::Unknown(u) if u.query.is_none() && now >= u.next_query => u.order.client_id.clone(),
            _ => return,
        };
        self.stats.lookups += 1;
        let req = self.submit(Call::Query { client_id: due }, Purpose::Side(s));
        if let SideState::Unknown(u) = &mut self.slots[s] {
            u.query = Some(req);
        }
    }

    pub(super) fn on_lookup(&mut self, s: usize, mut u: Unknown, a: Answer) {
        u.query = None;
        let now = Instant::now();
        match a.result {
            Ok(Reply::Order(o)) => {
                self.stats.lookups_found += 1;
                if let Some(old) = u.old.take() {
                    // cancelReplace with STOP_ON_FAILURE places the new
                    // order only after the cancel succeeded.
                    self.old_gone(&old, "cancel: replaced (found by lookup)");
                }
                let why =
                    if u.deadline.is_some() { "found by lookup after an unknown fate" } else { "settled by lookup" };
                self.apply_order(s, u.order, &o, why);
            }
            Ok(_) => self.slots[s] = SideState::Unknown(u),
            Err(BinanceError::UnknownOrder { .. }) => match u.deadline {
                Some(d) if a.sent_at < d => {
                    // Not in the engine yet, but it may still get there.
                    self.stats.lookups_too_early += 1;
                    u.next_query = now + LOOKUP_EVERY;
                    self.slots[s] = SideState::Unknown(u);
                }
                _ => {
                    self.stats.lookups_absent += 1;
                    let why = if u.deadline.is_some() {
                        "not placed (not found after its unknown-fate deadline)"
                    } else {
                        "not on the exchange (lookup)"
                    };
                    self.record(&u.order, OrderStatus::Rejected, Some(why.into()));
                    match u.old.take() {
                        // The replace did nothing we can see: what about the
                        // order it was replacing?
                        Some(old) => self.settle(s, old),
                        None => self.slots[s] = SideState::Idle,
                    }
                }
            },
            Err(e) => {
                self.note_error(&e);
                let wait = match e.action() {
                    Action::Wait(d) => d,
                    _ => LOOKUP_EVERY,
                };
                u.next_query = now + wait;
                self.slots[s] = SideState::Unknown(u);
                self.act(&e, a.via);
            }
        }
    }

    /// The user-data stream named an order of unknown fate: it is on the
    /// exchange. Returns true when it resolved slot `s`.
    pub(super) fn found_on_stream(&mut self, s: usize, client_id: &str, order_id: u64) -> bool {
        let SideState::Unknown(u) = &self.slots[s] else { return false };
        if u.order.client_id != client_id {
            return false;
        }
        let SideState::Unknown(mut u) = std::mem::take(&mut self.slots[s]) else { return false };
        self.stats.lookups_found += 1;
        if let Some(old) = u.old.take() {
            self.old_gone(&old, "cancel: replaced (new order seen on the stream)");
        }
        u.order.order_id = order_id;
        self.record(&u.order, OrderStatus::New, Some("seen on the user-data stream after an unknown fate".into()));
        self.lock(self.lock_of(u.order.side, u.order.price, u.order.remaining()), true);
        self.slots[s] = SideState::Live(u.order);
        true
    }

    /// A replaced order that is gone: its final state comes from the
    /// stream; its fills the journal recovers with `myTrades`.
    fn old_gone(&mut self, old: &LiveOrder, why: &str) {
        self.lock(self.lock_of(old.side, old.price, old.remaining()), false);
        self.record(old, OrderStatus::Canceled, Some(why.into()));
        if old.order_id > 0 {
            self.recover_fills(old.order_id, &old.client_id.clone());
        }
    }
}

//! Order entry: deciding what a free side does with the latest wanted
//! quote, checking it, and sending it (new order, cancelReplace, cancel,
//! or `order/test` in a dry run). Sending never waits: the side moves to a
//! busy state and [`super::answers`] takes the answer.

use std::time::{Duration, Instant};

use crate::exec::binance::gateway::{Call, NewOrder, StpMode, Target};
use crate::exec::journal::{OrderEvent, OrderStatus};
use crate::exec::risk::{Balance, OrderRequest};
use crate::exec::Side;
use crate::hot::fixed::{notional_ceil, Price, Qty};

use super::side::{side_of, LiveOrder, SideState};
use super::{wall_ns, LiveExchange, Purpose};

impl LiveExchange {
    /// Takes a decision on slot `s` (a side's level) if its state allows
    /// one: place, keep, replace or cancel, from the latest wanted quote.
    pub(super) fn decide(&mut self, s: usize) {
        if self.stopped.is_some() || self.clock_syncing || !self.slots[s].accepts_decision() {
            return;
        }
        let now = Instant::now();
        if self.all_blocked_until.is_some_and(|t| now < t) {
            return;
        }
        let side = side_of(s);
        let Some(want) = self.wanted[s] else {
            if matches!(self.slots[s], SideState::Live(_)) {
                self.send_cancel(s, "quote pulled");
            }
            return;
        };
        let price = match side {
            Side::Buy => self.rules.floor_price(want.price),
            Side::Sell => self.rules.ceil_price(want.price),
        };
        let qty = self.rules.floor_qty(want.qty);
        if let SideState::Live(o) = &self.slots[s] {
            if !self.needs_replace(o, price, qty) {
                return;
            }
        }
        if self.orders_blocked_until.is_some_and(|t| now < t) {
            // New orders are on hold (an order-count limit) but cancels
            // still go: an order at a price we no longer want must not rest
            // unmanaged.
            if matches!(self.slots[s], SideState::Live(_)) {
                self.send_cancel(s, "new orders on hold (order rate limit)");
            }
            return;
        }
        // After a refusal the same order would be refused again, and after
        // a fill the wanted quote is stale: wait for the next quote.
        if self.requote_after[s].is_some() || self.filled_since_quote[s] {
            return;
        }
        if !self.admit(s, price, qty) {
            // Not allowed to send what is wanted: the old order is not
            // wanted either.
            if matches!(self.slots[s], SideState::Live(_)) {
                self.send_cancel(s, "replacement refused before sending");
            }
            return;
        }
        if self.cfg.dry_run {
            // Nothing rests in a dry run: forget the checked order.
            self.slots[s] = SideState::Idle;
            self.send_new(s, side, price, qty);
            return;
        }
        if matches!(self.slots[s], SideState::Live(_)) {
            if self.rules.cancel_replace_allowed {
                self.send_replace(s, side, price, qty);
            } else {
                // Cancel first; the side decides again (and places) when
                // the cancel is answered.
                self.send_cancel(s, "replace");
            }
        } else {
            self.send_new(s, side, price, qty);
        }
    }

    /// Paper's refresh rule, on the rounded price and size.
    fn needs_replace(&self, o: &LiveOrder, price: Price, qty: Qty) -> bool {
        let moved = (price.0 - o.price.0).abs();
        let tolerance = self.cfg.refresh_ticks.saturating_mul(self.tick.0);
        (moved != 0 && moved >= tolerance) || qty != o.orig_qty || o.since.elapsed() > self.cfg.max_order_age
    }

    /// The filters, then the pre-trade checks, with slot `s`'s current
    /// order counted as gone (it is being replaced) and what the side's
    /// other levels can still fill counted as filled.
    fn admit(&mut self, s: usize, price: Price, qty: Qty) -> bool {
        let side = side_of(s);
        let others = self.slots.iter().enumerate().filter(|(i, st)| *i != s && st.shown().is_some()).count() as u32;
        // Every order the side's other slots track can fill, a replace's
        // old one included until its cancel lands.
        let working = self
            .slots
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != s && side_of(*i) == side)
            .flat_map(|(_, st)| st.orders())
            .fold(0i64, |sum, o| sum.saturating_add(o.remaining().0));
        // MAX_NUM_ORDERS counts the account's open orders on the symbol (the
        // side's own order is being replaced); PERCENT_PRICE_BY_SIDE is
        // checked against the last mid standing in for Binance's average.
        let checked = self
            .rules
            .check(side, price, qty)
            .and_then(|()| self.rules.check_market(side, price, others, self.last_mid));
        if let Err(v) = checked {
            self.stats.refused_by_filter += 1;
            self.stats.last_refusal = Some(v.to_string());
            return false;
        }
        self.risk.set_open_orders(others);
        self.risk.set_position(self.position.qty());
        self.risk.set_working(side, Qty(working));
        // The replaced order's locked funds come back when it is cancelled.
        let (asset, back) = match &self.slots[s] {
            SideState::Live(o) => self.lock_of(o.side, o.price, o.remaining()),
            _ => (String::new(), 0),
        };
        let before = self.risk.balances().get(&asset);
        if back > 0 {
            self.risk.set_balance(&asset, Balance { free: before.free.saturating_add(back), ..before });
        }
        let r = self.risk.check(&OrderRequest { side, price, qty, time_ns: wall_ns() });
        if back > 0 {
            self.risk.set_balance(&asset, before);
        }
        match r {
            Ok(()) => true,
            Err(refusal) => {
                self.stats.refused_by_risk += 1;
                self.stats.last_refusal = Some(refusal.to_string());
                false
            }
        }
    }

    /// What an order locks on the exchange: a BUY locks price x qty of
    /// quote (rounded up), a SELL its base quantity.
    pub(super) fn lock_of(&self, side: Side, price: Price, qty: Qty) -> (String, i64) {
        match side {
            Side::Buy => (self.rules.quote_asset.clone(), notional_ceil(price.0, qty.0)),
            Side::Sell => (self.rules.base_asset.clone(), qty.0),
        }
    }

    /// Moves `amount` of `asset` between free and locked in the risk
    /// check's copy of the balances, so checks are right before the account
    /// is read again (the stream's balance events then replace the copy).
    pub(super) fn lock(&mut self, (asset, amount): (String, i64), lock: bool) {
        if asset.is_empty() || amount == 0 {
            return;
        }
        let b = self.risk.balances().get(&asset);
        let d = if lock { amount } else { -amount };
        self.risk.set_balance(&asset, Balance { free: b.free.saturating_sub(d), locked: b.locked.saturating_add(d) });
    }

    fn stp(&self) -> StpMode {
        self.cfg.stp_mode
    }

    fn new_order(&mut self, side: Side, price: Price, qty: Qty) -> (NewOrder, LiveOrder) {
        let id = self.ids.next();
        let order = LiveOrder::new(id.as_str(), side, price, qty, wall_ns());
        (NewOrder { side, price, qty, client_id: id, stp: self.stp() }, order)
    }

    fn send_new(&mut self, s: usize, side: Side, price: Price, qty: Qty) {
        let (new, order) = self.new_order(side, price, qty);
        self.stats.orders += 1;
        let call = if self.cfg.dry_run {
            Call::Test(new)
        } else {
            // Journaled before it leaves: a crash mid-request leaves a row
            // the next start asks the exchange about.
            self.record(&order, OrderStatus::Unknown, Some("sending".into()));
            Call::Place(new)
        };
        let req = self.submit(call, Purpose::Side(s));
        self.slots[s] = SideState::Placing { req, order };
    }

    fn send_replace(&mut self, s: usize, side: Side, price: Price, qty: Qty) {
        let SideState::Live(old) = std::mem::take(&mut self.slots[s]) else { return };
        let (new, order) = self.new_order(side, price, qty);
        self.record(&order, OrderStatus::Unknown, Some("sending (replace)".into()));
        self.stats.orders += 1;
        self.stats.replaces += 1;
        self.stats.cancels += 1;
        let cancel = target_of(&old);
        let req = self.submit(Call::CancelReplace { cancel, new }, Purpose::Side(s));
        self.slots[s] = SideState::Replacing { req, old, new: order };
    }

    /// Cancels the side's live order (or sends a waiting cancel again).
    pub(super) fn send_cancel(&mut self, s: usize, why: &'static str) {
        let order = match std::mem::take(&mut self.slots[s]) {
            SideState::Live(o) | SideState::Cancelling { order: o, .. } => o,
            other => {
                self.slots[s] = other;
                return;
            }
        };
        if self.cfg.dry_run {
            return;
        }
        self.stats.cancels += 1;
        let req = self.submit(Call::Cancel(target_of(&order)), Purpose::Side(s));
        self.slots[s] = SideState::Cancelling { req: Some(req), order, retry_at: Instant::now(), why };
    }

    /// A cancel that waits (back-off, or an unknown first try) goes again
    /// when its time comes.
    pub(super) fn cancel_retry_tick(&mut self, s: usize) {
        let now = Instant::now();
        if self.all_blocked_until.is_some_and(|t| now < t) {
            return;
        }
        if let SideState::Cancelling { req: None, retry_at, why, .. } = &self.slots[s] {
            if now >= *retry_at {
                let why = *why;
                self.send_cancel(s, why);
            }
        }
    }

    /// Sends `call`, remembering why.
    pub(super) fn submit(&mut self, call: Call, purpose: Purpose) -> u64 {
        let id = self.gateway.submit(call);
        self.pending.insert(id, purpose);
        self.stats.max_in_flight = self.stats.max_in_flight.max(self.gateway.in_flight() as u64);
        id
    }

    /// Puts a cancel on hold for `d`.
    pub(super) fn cancel_later(&mut self, s: usize, order: LiveOrder, d: Duration, why: &'static str) {
        self.slots[s] = SideState::Cancelling { req: None, order, retry_at: Instant::now() + d, why };
    }

    // ----------------------------------------------------------------------
    // Journal

    pub(super) fn record(&mut self, o: &LiveOrder, status: OrderStatus, reason: Option<String>) {
        let (id, ex, side, price, qty, filled) =
            (o.client_id.clone(), (o.order_id > 0).then_some(o.order_id), o.side, o.price, o.orig_qty, o.filled);
        self.record_raw(&id, ex, side, price, qty, filled, status, reason);
    }

    /// Journals an order the exchange reported cancelled (its answer `c`)
    /// under client id `id`.
    pub(super) fn record_canceled(&mut self, id: &str, c: &crate::exec::binance::model::Order, why: String) {
        self.record_raw(
            id,
            Some(c.order_id),
            c.side,
            c.price,
            c.orig_qty,
            c.executed_qty,
            OrderStatus::Canceled,
            Some(why),
        );
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn record_raw(
        &mut self,
        id: &str,
        exchange_id: Option<u64>,
        side: Side,
        price: Price,
        qty: Qty,
        filled: Qty,
        status: OrderStatus,
        reason: Option<String>,
    ) {
        if self.cfg.dry_run {
            return;
        }
        let ev = OrderEvent {
            run: self.run,
            client_id: id.to_string(),
            exchange_id: exchange_id.map(|x| x as i64),
            symbol: self.symbol,
            side,
            price,
            qty,
            filled,
            status,
            reason,
            time_ns: wall_ns(),
        };
        // A full journal queue loses an order state, not a fill (fills wait
        // for their commit); it is counted in the journal's stats.
        if let Err(e) = self.journal.record_order(ev) {
            self.stats.last_error = Some(e.to_string());
        }
    }
}

/// Cancels name the exchange's order id when known (faster on Binance's
/// side), else the client id.
pub(super) fn target_of(o: &LiveOrder) -> Target {
    if o.order_id > 0 {
        Target::OrderId(o.order_id)
    } else {
        Target::ClientId(o.client_id.clone())
    }
}

//! Answers from the order gateway, each to the state that waits for it:
//! a new order's, a cancelReplace's, a cancel's (a lookup's is in
//! [`super::fate`]), and the reconciliation's. Errors are turned into what
//! the manager does next ([`LiveExchange::act`]).

use std::time::{Duration, Instant};

use crate::exec::binance::errors::{Action, BinanceError};
use crate::exec::binance::gateway::{Answer, GatewayEvent, Reply, Transport};
use crate::exec::binance::model::{Order, OrderStatus as ExOrderStatus, ReplaceHalf};
use crate::exec::journal::{OrderStatus, RttSample};

use super::side::{fate_deadline, LiveOrder, SideState, Unknown};
use super::{LiveExchange, Purpose, StopReason};

/// How soon an unknown fate is first looked up: the order often reaches
/// the engine within a few hundred ms of a timeout.
pub(super) const FIRST_LOOKUP: Duration = Duration::from_millis(200);

impl LiveExchange {
    /// Handles every answer and event the gateway has (never waits).
    pub(super) fn drain_gateway(&mut self) {
        while let Some(ev) = self.gateway.poll() {
            self.on_gateway_event(ev);
        }
    }

    pub(super) fn on_gateway_event(&mut self, ev: GatewayEvent) {
        match ev {
            GatewayEvent::Answer(a) => self.on_answer(a),
            GatewayEvent::User(u) => self.reconcile_due |= self.on_user_event(u),
            GatewayEvent::Session { .. } => {}
        }
    }

    fn on_answer(&mut self, a: Answer) {
        self.time_answer(&a);
        let Some(purpose) = self.pending.remove(&a.id) else { return };
        if self.superseded.remove(&a.id) {
            // The stream already told how it ended.
            return;
        }
        match purpose {
            Purpose::Side(s) => {
                if !self.slots[s].waits_on(a.id) {
                    self.stray_answer(a);
                    return;
                }
                match std::mem::take(&mut self.slots[s]) {
                    SideState::Placing { order, .. } => self.on_placed(s, order, a),
                    SideState::Replacing { old, new, .. } => self.on_replaced(s, old, new, a),
                    SideState::Cancelling { order, why, .. } => self.on_canceled(s, order, why, a),
                    SideState::Unknown(u) => self.on_lookup(s, u, a),
                    other => self.slots[s] = other,
                }
                self.decide(s);
            }
            Purpose::OpenOrders { asked } => {
                self.reconcile_in_flight = false;
                match a.result {
                    Ok(Reply::Orders(list)) => self.on_open_orders(asked, list),
                    Ok(_) => {}
                    Err(e) => self.failed(&e, a.via),
                }
            }
            Purpose::Clock => {
                self.clock_syncing = false;
                if let Err(e) = &a.result {
                    self.note_error(e);
                }
                self.decide(0);
                self.decide(1);
            }
            Purpose::Account => match a.result {
                Ok(Reply::Account(acc)) => self.on_account(&acc),
                Ok(_) => {}
                Err(e) => self.failed(&e, a.via),
            },
            Purpose::Trades { client_id, order_id } => match a.result {
                Ok(Reply::Trades(t)) => self.on_trades(&client_id, order_id, t),
                Ok(_) => {}
                Err(e) => self.failed(&e, a.via),
            },
            Purpose::CancelStray { client_id } => match a.result {
                Ok(Reply::Order(c)) => {
                    self.record_canceled(
                        &client_id,
                        &c,
                        "canceled: not an order of this side (orphan or extra)".into(),
                    );
                    if c.executed_qty.0 > 0 {
                        self.recover_fills(c.order_id, &client_id);
                    }
                }
                Ok(_) => {}
                Err(e) => self.failed(&e, a.via),
            },
        }
    }

    /// Records a round trip the exchange answered: the `order_rtt`
    /// histograms and the journal (so backtests can replay it).
    pub(super) fn time_answer(&mut self, a: &Answer) {
        let via = match a.via {
            Transport::WsApi => "ws_api",
            Transport::Rest => "rest",
            Transport::NotSent => return,
        };
        let ns = a.rtt.as_nanos().min(i64::MAX as u128) as i64;
        self.rtt.record(a.method, ns as u64);
        if self.cfg.dry_run {
            return;
        }
        let sample = RttSample { run: self.run, time_ns: super::wall_ns(), method: a.method, via, rtt_ns: ns };
        if let Err(e) = self.journal.record_rtt(sample) {
            self.stats.last_error = Some(e.to_string());
        }
    }

    /// An answer no state waits for any more (the stop cleared the sides):
    /// an order it reports open must not rest unwatched.
    fn stray_answer(&mut self, a: Answer) {
        let placed = match a.result {
            Ok(Reply::Order(o)) => Some(o),
            Ok(Reply::Replaced(r)) => Some(r.placed),
            _ => None,
        };
        if let Some(o) = placed.filter(|o| o.status.is_open()) {
            let id = o.placed_client_order_id().to_string();
            self.submit(
                crate::exec::binance::gateway::Call::Cancel(crate::exec::binance::gateway::Target::OrderId(o.order_id)),
                Purpose::CancelStray { client_id: id },
            );
        }
    }

    // ----------------------------------------------------------------------
    // New orders

    fn on_placed(&mut self, s: usize, order: LiveOrder, a: Answer) {
        match a.result {
            Ok(Reply::Order(o)) => self.apply_order(s, order, &o, "placed"),
            Ok(Reply::Tested) => {
                self.stats.dry_run_tested += 1;
                self.slots[s] = SideState::Live(order);
            }
            Ok(_) => self.slots[s] = SideState::Live(order),
            Err(e) if e.action() == Action::LookUpOrder => {
                self.stats.unknown_fates += 1;
                self.note_error(&e);
                self.slots[s] = SideState::Unknown(Unknown {
                    order,
                    old: None,
                    deadline: Some(fate_deadline(a.sent_at, a.recv_window)),
                    query: None,
                    next_query: Instant::now() + FIRST_LOOKUP,
                });
            }
            Err(e) if e.action() == Action::ResyncClockAndRetry && !self.clock_retried[s] => {
                // Our clock is off from the exchange's: measure it again,
                // then send the order once more (FACTS.md §4.7).
                self.clock_retried[s] = true;
                self.note_error(&e);
                self.record(&order, OrderStatus::Rejected, Some(format!("{e}; clock measured again, sent anew")));
                self.resync_clock();
            }
            Err(e) => {
                self.refused(s, &order, &e, a.via);
                self.act(&e, a.via);
            }
        }
    }

    /// Measures the clock offset again (`GET /api/v3/time`); orders wait
    /// for it.
    pub(super) fn resync_clock(&mut self) {
        if self.clock_syncing {
            return;
        }
        self.clock_syncing = true;
        self.stats.clock_resyncs += 1;
        self.submit(crate::exec::binance::gateway::Call::SyncClock, Purpose::Clock);
    }

    /// An order the exchange reported (placing, lookup): track it if open,
    /// journal its state, recover fills the stream may not have brought.
    pub(super) fn apply_order(&mut self, s: usize, mut order: LiveOrder, o: &Order, why: &str) {
        order.order_id = o.order_id;
        let seen = order.filled;
        order.filled = order.filled.max(o.executed_qty);
        let status = journal_status(&o.status);
        self.record(&order, status, Some(why.into()));
        if o.executed_qty > seen {
            // Its fills are being recovered: the wanted quote predates them.
            self.filled_since_quote[s] = true;
            self.recover_fills(o.order_id, &order.client_id.clone());
        }
        if o.status.is_open() {
            self.lock(self.lock_of(order.side, order.price, order.remaining()), true);
            self.slots[s] = SideState::Live(order);
        } else {
            if o.status == ExOrderStatus::ExpiredInMatch {
                self.count_stp(o.order_id);
            }
            self.slots[s] = SideState::Idle;
        }
    }

    /// Counts an order ended by self-trade prevention once, however many
    /// ways (stream, lookup, placing answer) it is told.
    pub(super) fn count_stp(&mut self, order_id: u64) {
        if self.stp_counted.insert(order_id) {
            self.stats.stp_expired += 1;
        }
    }

    /// The order was refused: journal it and count it (by the exchange, or
    /// locally before sending).
    fn refused(&mut self, s: usize, order: &LiveOrder, e: &BinanceError, via: Transport) {
        // The same order would be refused again: wait for the next quote.
        self.requote_after[s] = Some(self.stats.quotes);
        if via == Transport::NotSent {
            self.stats.refused_locally += 1;
            self.stats.last_refusal = Some(e.to_string());
        } else {
            self.stats.rejected += 1;
            if e.action() == Action::Requote {
                self.stats.would_take += 1;
            }
        }
        self.note_error(e);
        self.record(order, OrderStatus::Rejected, Some(e.to_string()));
    }

    // ----------------------------------------------------------------------
    // cancelReplace

    fn on_replaced(&mut self, s: usize, old: LiveOrder, new: LiveOrder, a: Answer) {
        let e = match a.result {
            Ok(Reply::Replaced(r)) => {
                self.old_canceled(&old, &r.canceled);
                self.apply_order(s, new, &r.placed, "placed (replace)");
                return;
            }
            Ok(_) => {
                self.slots[s] = SideState::Live(old);
                return;
            }
            Err(e) => e,
        };
        match &e {
            BinanceError::ReplacePartial { halves, .. } | BinanceError::ReplaceFailed { halves, .. } => {
                self.stats.rejected += 1;
                let old_gone = match &halves.cancel {
                    ReplaceHalf::Success(c) => {
                        self.old_canceled(&old, c);
                        true
                    }
                    _ => false,
                };
                match &halves.new_order {
                    ReplaceHalf::Success(n) if old_gone => {
                        self.apply_order(s, new, n, "placed (replace, partial)");
                        return;
                    }
                    ReplaceHalf::Success(n) => {
                        // Both would rest: keep the slot to one order.
                        let id = new.client_id.clone();
                        self.record(&new, OrderStatus::New, None);
                        self.submit(
                            crate::exec::binance::gateway::Call::Cancel(
                                crate::exec::binance::gateway::Target::OrderId(n.order_id),
                            ),
                            Purpose::CancelStray { client_id: id },
                        );
                    }
                    ReplaceHalf::Failure { code, msg } => {
                        if *code == -2010 && msg.contains("would immediately match") {
                            self.stats.would_take += 1;
                            self.requote_after[s] = Some(self.stats.quotes);
                        }
                        if *code == -1015 {
                            // CANCEL_ONLY: the cancel went, new orders wait.
                            self.hold_orders(Duration::from_secs(1));
                        }
                        self.record(
                            &new,
                            OrderStatus::Rejected,
                            Some(format!("replace: new order refused ({code} {msg})")),
                        );
                    }
                    ReplaceHalf::NotAttempted => {
                        self.record(&new, OrderStatus::Rejected, Some("replace: new order not attempted".into()));
                    }
                }
                self.note_error(&e);
                if old_gone {
                    self.slots[s] = SideState::Idle;
                } else {
                    // The cancel half failed: the old order may have filled
                    // or be gone; ask before deciding.
                    self.settle(s, old);
                }
            }
            _ if e.action() == Action::LookUpOrder => {
                // Either half may have happened: the side waits for both.
                self.stats.unknown_fates += 1;
                self.note_error(&e);
                self.slots[s] = SideState::Unknown(Unknown {
                    order: new,
                    old: Some(old),
                    deadline: Some(fate_deadline(a.sent_at, a.recv_window)),
                    query: None,
                    next_query: Instant::now() + FIRST_LOOKUP,
                });
            }
            _ if e.action() == Action::ForgetOrder => {
                // The old order was gone already: nothing placed.
                self.refused(s, &new, &e, a.via);
                self.settle(s, old);
            }
            _ => {
                // Refused as a whole: the old order still rests.
                self.refused(s, &new, &e, a.via);
                self.slots[s] = SideState::Live(old);
                self.act(&e, a.via);
            }
        }
    }

    fn old_canceled(&mut self, old: &LiveOrder, c: &Order) {
        self.lock(self.lock_of(old.side, old.price, old.remaining()), false);
        let mut o = old.clone();
        o.order_id = c.order_id.max(o.order_id);
        let seen = o.filled;
        o.filled = o.filled.max(c.executed_qty);
        self.record(&o, OrderStatus::Canceled, Some("cancel: replaced".into()));
        if c.executed_qty > seen {
            self.recover_fills(o.order_id, &o.client_id);
        }
    }

    // ----------------------------------------------------------------------
    // Cancels

    fn on_canceled(&mut self, s: usize, mut order: LiveOrder, why: &'static str, a: Answer) {
        match a.result {
            Ok(Reply::Order(c)) => {
                self.lock(self.lock_of(order.side, order.price, order.remaining()), false);
                let seen = order.filled;
                order.order_id = c.order_id.max(order.order_id);
                order.filled = c.executed_qty.max(order.filled);
                self.record(&order, OrderStatus::Canceled, Some(format!("cancel: {why}")));
                if c.executed_qty > seen {
                    self.recover_fills(order.order_id, &order.client_id);
                }
                self.slots[s] = SideState::Idle;
            }
            Ok(_) => self.slots[s] = SideState::Idle,
            Err(e) => match e.action() {
                // Not open any more (filled, expired) or never there: ask
                // how it ended.
                Action::ForgetOrder | Action::FixRequest => {
                    self.note_error(&e);
                    self.settle(s, order);
                }
                // A cancel is safe to send again.
                Action::LookUpOrder | Action::Retry | Action::ResyncClockAndRetry => {
                    self.note_error(&e);
                    if e.action() == Action::ResyncClockAndRetry {
                        self.resync_clock();
                    }
                    self.cancel_later(s, order, Duration::from_millis(100), why);
                }
                Action::Wait(d) => {
                    if a.via == Transport::NotSent {
                        self.stats.refused_locally += 1;
                    }
                    self.cancel_later(s, order, d, why);
                    self.act(&e, a.via);
                }
                _ => {
                    self.cancel_later(s, order, Duration::from_millis(500), why);
                    self.act(&e, a.via);
                }
            },
        }
    }

    /// The order may no longer be open: look it up before deciding.
    pub(super) fn settle(&mut self, s: usize, order: LiveOrder) {
        self.slots[s] =
            SideState::Unknown(Unknown { order, old: None, deadline: None, query: None, next_query: Instant::now() });
    }

    // ----------------------------------------------------------------------
    // Errors

    /// A non-order request failed (reconciliation, account, trades).
    fn failed(&mut self, e: &BinanceError, via: Transport) {
        self.note_error(e);
        match e.action() {
            Action::StopTrading { .. } | Action::FixCredentials | Action::Wait(_) => self.act(e, via),
            _ => {}
        }
    }

    /// What an error's action asks beyond journaling the refusal.
    pub(super) fn act(&mut self, e: &BinanceError, via: Transport) {
        let now = super::wall_ns();
        match e.action() {
            Action::Wait(d) => {
                self.stats.waits += 1;
                if is_order_count_limit(e) {
                    self.hold_orders(d);
                } else {
                    let until = Instant::now() + d;
                    self.all_blocked_until = Some(self.all_blocked_until.map_or(until, |t| t.max(until)));
                }
            }
            Action::StopTrading { .. } => {
                let status =
                    if matches!(e, BinanceError::Banned { .. } | BinanceError::LocalBan { .. }) { 418 } else { 403 };
                self.kill.on_http_status(status, now);
                self.shutdown(StopReason::Banned);
            }
            Action::FixCredentials => self.shutdown(StopReason::Credentials),
            Action::ResyncClockAndRetry => self.resync_clock(),
            Action::RefreshBalances => {
                self.stats.balance_refreshes += 1;
                self.submit(crate::exec::binance::gateway::Call::Account, Purpose::Account);
            }
            Action::FixRequest if via != Transport::NotSent => {
                if let Some(r) = self.kill.on_reject(now) {
                    self.shutdown(StopReason::Kill(r));
                }
            }
            _ => {}
        }
    }

    /// No new order for `d` (cancels still go).
    pub(super) fn hold_orders(&mut self, d: Duration) {
        let until = Instant::now() + d;
        self.orders_blocked_until = Some(self.orders_blocked_until.map_or(until, |t| t.max(until)));
    }
}

/// An order-count limit (-1015 "Too many new orders") blocks new orders
/// only; a request-weight limit blocks everything.
fn is_order_count_limit(e: &BinanceError) -> bool {
    e.limited() == Some(crate::exec::binance::errors::Limited::Orders)
}

pub(super) fn journal_status(s: &ExOrderStatus) -> OrderStatus {
    match s {
        ExOrderStatus::New | ExOrderStatus::PendingNew | ExOrderStatus::PendingCancel => OrderStatus::New,
        ExOrderStatus::PartiallyFilled => OrderStatus::PartiallyFilled,
        ExOrderStatus::Filled => OrderStatus::Filled,
        ExOrderStatus::Canceled => OrderStatus::Canceled,
        ExOrderStatus::Rejected => OrderStatus::Rejected,
        ExOrderStatus::Expired | ExOrderStatus::ExpiredInMatch => OrderStatus::Expired,
        ExOrderStatus::Other(_) => OrderStatus::Unknown,
    }
}

//! What the user-data stream reports (executions, balances,
//! resubscriptions) and fills: every fill is committed to the journal
//! before the position sees it, whether it came from the stream or was
//! recovered with `myTrades`; a trade id the journal already has is a
//! duplicate and ignored.

use crate::exec::binance::gateway::Call;
use crate::exec::binance::rest::MyTrade;
use crate::exec::inventory::BalanceSource;
use crate::exec::journal::{FillOutcome, FillRecord, OrderStatus, RunId};
use crate::exec::risk::Balance;
use crate::exec::userdata::{ExecType, ExecutionReport, ReportStatus, UserEvent};
use crate::exec::Side;
use crate::hot::fixed::Qty;
use crate::hot::msg::Symbol;

use super::side::{side_of, slot, LiveOrder, SideState};
use super::{LiveExchange, Purpose, StopReason};

impl LiveExchange {
    /// Handles what the stream's own connection delivered (`order_entry =
    /// "rest"`); true when events may have been missed (resubscribed, ring
    /// overflow) and a reconciliation is due.
    pub(super) fn drain_stream(&mut self) -> bool {
        let mut reconcile = false;
        while let Some(ev) = self.stream.as_mut().and_then(|s| s.poll()) {
            reconcile |= self.on_user_event(ev);
        }
        let dropped = self.stream.as_ref().map_or(0, |s| s.dropped());
        if dropped != self.stream_dropped {
            self.stream_dropped = dropped;
            reconcile = true;
        }
        reconcile
    }

    /// One user-data event; true when a reconciliation is due.
    pub(super) fn on_user_event(&mut self, ev: UserEvent) -> bool {
        match ev {
            UserEvent::Subscribed { generation } => {
                self.subscriptions += 1;
                if generation > 1 {
                    self.stats.resubscribes += 1;
                }
                // Events between our last look and this subscription were
                // not delivered: ask the exchange.
                return true;
            }
            UserEvent::Disconnected => {}
            UserEvent::Execution(r) => self.on_execution(&r),
            UserEvent::Balance { asset, free, locked } => {
                self.on_balance(asset.as_str(), Balance { free, locked }, BalanceSource::Stream);
            }
            UserEvent::BalanceDelta { asset, delta } => self.on_transfer(asset.as_str(), delta),
        }
        false
    }

    fn on_execution(&mut self, r: &ExecutionReport) {
        // A dry run has no orders: what the stream reports is somebody
        // else's trading, not this run's.
        if r.symbol != self.symbol || self.cfg.dry_run {
            return;
        }
        let id = r.order_client_id().to_string();
        // The slot tracking the order; an order no slot tracks is judged
        // against the side's best (every handler below checks the id).
        let s = self.slot_tracking(&id).unwrap_or(slot(r.side, 0));
        if r.exec_type == ExecType::Trade && r.last_qty.0 > 0 {
            // A live run owns its symbol on the account: every fill there
            // counts, tracked order or not.
            // What we knew of the order before this report: fills the
            // stream brought, or an answer's executedQty (whose fills are
            // then being recovered already); nothing for an order no side
            // tracks.
            let known = self.slots[s].orders().find(|o| o.client_id == id).map_or(Qty(0), |o| o.filled);
            if !self.apply_fill(self.stream_fill(r)) {
                return;
            }
            // `z` (cumulative filled) beyond what we knew plus `l` (this
            // trade) means an earlier trade of this order never reached us
            // (a dropped connection, an event lost): ask for its trades now,
            // as a reconciliation may never look at an order that is done.
            if r.cum_qty.0 > known.0.saturating_add(r.last_qty.0) {
                self.stats.stream_fill_gaps += 1;
                self.recover_fills(r.order_id, &id);
            }
            self.found_on_stream(s, &id, r.order_id);
            let done = !r.status.is_open();
            let mut update = None;
            for o in self.slots[s].orders_mut().filter(|o| o.client_id == id) {
                o.filled = o.filled.max(r.cum_qty);
                o.order_id = r.order_id;
                update = Some(o.clone());
            }
            let Some(o) = update else { return };
            // The filled part no longer locks funds as an order.
            self.lock(self.lock_of(r.side, o.price, r.last_qty), false);
            let status = if done { OrderStatus::Filled } else { OrderStatus::PartiallyFilled };
            self.record(&o, status, None);
            // A filled side stays empty until the next quote: the wanted
            // quote was made before this fill moved the position.
            if done && matches!(&self.slots[s], SideState::Live(l) if l.client_id == id) {
                self.slots[s] = SideState::Idle;
            }
            return;
        }
        match r.exec_type {
            ExecType::New
                if !self.found_on_stream(s, &id, r.order_id) && !self.placed_on_stream(s, &id, r.order_id) =>
            {
                for o in self.slots[s].orders_mut().filter(|o| o.client_id == id && o.order_id == 0) {
                    o.order_id = r.order_id;
                }
            }
            ExecType::Canceled if self.canceled_on_stream(s, &id, r) => {}
            ExecType::Canceled | ExecType::Expired | ExecType::Rejected | ExecType::TradePrevention => {
                if r.status.is_open() {
                    // Self-trade prevention with DECREMENT: the order stays
                    // live with less quantity.
                    return;
                }
                if r.exec_type == ExecType::TradePrevention {
                    self.count_stp(r.order_id);
                }
                // Ended without our asking (expiry, STP, an operator): free
                // the side and record it. A side waiting on its own request
                // (cancel, replace) learns it from that answer.
                let ended = match &self.slots[s] {
                    SideState::Live(o) if o.client_id == id => true,
                    SideState::Unknown(u) if u.order.client_id == id && u.old.is_none() => true,
                    _ => false,
                };
                if ended {
                    let mut o = match std::mem::take(&mut self.slots[s]) {
                        SideState::Live(o) => o,
                        SideState::Unknown(u) => u.order,
                        _ => return,
                    };
                    self.lock(self.lock_of(o.side, o.price, o.remaining()), false);
                    o.order_id = r.order_id;
                    self.recover_unseen(&o, r);
                    o.filled = o.filled.max(r.cum_qty);
                    let status = match r.status {
                        ReportStatus::Rejected => OrderStatus::Rejected,
                        ReportStatus::Expired => OrderStatus::Expired,
                        _ => OrderStatus::Canceled,
                    };
                    self.record(&o, status, Some("ended on the exchange".into()));
                }
            }
            _ => {}
        }
    }

    /// The stream says an order being placed (or a replace's new order) is
    /// on the book: the side is live now, whenever the answer comes.
    /// Returns true when it advanced slot `s`.
    fn placed_on_stream(&mut self, s: usize, client_id: &str, order_id: u64) -> bool {
        let req = match &self.slots[s] {
            SideState::Placing { req, order } if order.client_id == client_id => *req,
            SideState::Replacing { req, new, .. } if new.client_id == client_id => *req,
            _ => return false,
        };
        let mut order = match std::mem::take(&mut self.slots[s]) {
            SideState::Placing { order, .. } => order,
            SideState::Replacing { old, new, .. } => {
                // STOP_ON_FAILURE places the new order only once the old
                // one is cancelled; its own report (and fills) come too.
                self.lock(self.lock_of(old.side, old.price, old.remaining()), false);
                self.record(&old, OrderStatus::Canceled, Some("cancel: replaced (seen on the stream)".into()));
                new
            }
            _ => return false,
        };
        self.superseded.insert(req);
        self.stats.overtaken_by_stream += 1;
        order.order_id = order_id;
        self.record(&order, OrderStatus::New, Some("placed (seen on the stream before the answer)".into()));
        self.lock(self.lock_of(order.side, order.price, order.remaining()), true);
        self.slots[s] = SideState::Live(order);
        self.decide(s);
        true
    }

    /// The stream says the order being cancelled is cancelled: the side is
    /// free now, whenever the answer comes.
    fn canceled_on_stream(&mut self, s: usize, client_id: &str, r: &ExecutionReport) -> bool {
        let req = match &self.slots[s] {
            SideState::Cancelling { req: Some(req), order, .. } if order.client_id == client_id => *req,
            _ => return false,
        };
        let SideState::Cancelling { mut order, why, .. } = std::mem::take(&mut self.slots[s]) else { return false };
        self.superseded.insert(req);
        self.stats.overtaken_by_stream += 1;
        self.lock(self.lock_of(order.side, order.price, order.remaining()), false);
        order.order_id = r.order_id;
        self.recover_unseen(&order, r);
        order.filled = order.filled.max(r.cum_qty);
        self.record(&order, OrderStatus::Canceled, Some(format!("cancel: {why} (seen on the stream)")));
        self.decide(s);
        true
    }

    /// An order's end reported with more filled (`z`) than we knew: the
    /// trades in between never reached us, and nothing else will ask.
    fn recover_unseen(&mut self, known: &LiveOrder, r: &ExecutionReport) {
        if r.cum_qty > known.filled {
            self.stats.stream_fill_gaps += 1;
            self.recover_fills(r.order_id, &known.client_id);
        }
    }

    /// Commits a fill, then applies it; `false` when it was a duplicate or
    /// could not be committed (then trading stops).
    pub(super) fn apply_fill(&mut self, rec: FillRecord) -> bool {
        match self.journal.record_fill(rec.clone()) {
            Ok(FillOutcome::Recorded) => {
                let f = rec.to_fill(&self.rules.base_asset, &self.rules.quote_asset);
                for s in 0..self.slots.len() {
                    if side_of(s) == f.side {
                        self.filled_since_quote[s] = true;
                    }
                }
                self.position.on_fill(&f);
                self.risk.set_position(self.position.qty());
                self.pending_fills.push(f);
                self.stats.fills += 1;
                true
            }
            Ok(FillOutcome::Duplicate) => {
                self.stats.duplicate_fills += 1;
                false
            }
            Err(e) => {
                self.stats.last_error = Some(e.to_string());
                self.shutdown(StopReason::Journal);
                false
            }
        }
    }

    /// Asks for the fills of `order_id` the stream may have missed
    /// (`myTrades`); they are applied when the answer comes.
    pub(super) fn recover_fills(&mut self, order_id: u64, client_id: &str) {
        if order_id == 0 || self.cfg.dry_run {
            return;
        }
        self.submit(Call::MyTrades { order_id }, Purpose::Trades { client_id: client_id.to_string(), order_id });
    }

    pub(super) fn on_trades(&mut self, client_id: &str, order_id: u64, trades: Vec<MyTrade>) {
        for t in trades {
            let rec = trade_record(self.run, self.symbol, client_id, order_id, &t);
            if self.apply_fill(rec) {
                self.stats.fills_recovered += 1;
            }
            if self.stopped == Some(StopReason::Journal) {
                return;
            }
        }
    }

    /// The journal record of a trade the user-data stream reported.
    pub(super) fn stream_fill(&self, r: &ExecutionReport) -> FillRecord {
        FillRecord {
            run: self.run,
            client_id: r.order_client_id().to_string(),
            exchange_order_id: Some(r.order_id as i64),
            symbol: self.symbol,
            trade_id: r.trade_id,
            side: r.side,
            price: r.last_price,
            qty: r.last_qty,
            fee: r.commission,
            fee_asset: r.commission_asset.as_str().to_string(),
            maker: r.maker,
            time_ns: r.time_ms.saturating_mul(1_000_000),
        }
    }
}

/// The journal record of one of our trades as `myTrades` lists it.
pub(super) fn trade_record(run: RunId, symbol: Symbol, client_id: &str, order_id: u64, t: &MyTrade) -> FillRecord {
    FillRecord {
        run,
        client_id: client_id.to_string(),
        exchange_order_id: Some(order_id as i64),
        symbol,
        trade_id: t.id,
        side: if t.is_buyer { Side::Buy } else { Side::Sell },
        price: t.price,
        qty: t.qty,
        fee: t.commission,
        fee_asset: t.commission_asset.clone(),
        maker: t.is_maker,
        time_ns: t.time_ms.saturating_mul(1_000_000),
    }
}

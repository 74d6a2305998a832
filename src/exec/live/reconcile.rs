//! Comparing what we track with what the exchange says.
//!
//! At start ([`Boot`], blocking: nothing is quoted before it is done):
//! the symbol's open orders (ours from earlier runs and others' orphans,
//! cancelled or adopted per `[live] orphans`), the journal's orders that
//! earlier runs left open or unknown (settled by lookup, fills recovered),
//! and the account's balances.
//!
//! While running ([`LiveExchange::start_reconcile`], through the gateway,
//! never blocking): open orders and the account. A live order that is no
//! longer open is settled by lookup; fills beyond what we saw are
//! recovered; an open order we do not track is an orphan.

use std::time::Instant;

use crate::exec::binance::errors::BinanceError;
use crate::exec::binance::gateway::{Call, Target};
use crate::exec::binance::model::{Account, Order};
use crate::exec::binance::rest::{ClientIds, OrderRef, RestClient};
use crate::exec::inventory::BalanceSource;
use crate::exec::journal::{FillRecord, Journal, OrderEvent, OrderStatus, RunId};
use crate::exec::live_config::{LiveConfig, OrphanPolicy};
use crate::exec::risk::Balance;
use crate::hot::fixed::Qty;
use crate::hot::msg::Symbol;

use super::answers::journal_status;
use super::side::{LiveOrder, SideState};
use super::{wall_ns, LiveError, LiveExchange, Purpose, EARLIER_RUNS};

/// This run's client-id prefix: the configured base (or `mm`) plus the
/// start time in ms and the process id, so ids never repeat across
/// restarts, even two within the same second.
pub(super) fn run_prefix(cfg: &LiveConfig) -> String {
    let base = cfg.run_prefix.as_deref().unwrap_or("mm");
    format!("{base}{}", ClientIds::clock_tag())
}

/// What start-up found: orders to adopt, fills to apply, the account.
pub(super) struct StartState {
    adopted: Vec<Order>,
    canceled: u64,
    recovered: Vec<FillRecord>,
    account: Option<Account>,
}

/// Start-up reconciliation over blocking REST (before any thread starts).
pub(super) struct Boot<'a> {
    pub rest: &'a mut RestClient,
    pub journal: &'a Journal,
    pub run: RunId,
    pub symbol: Symbol,
    pub cfg: &'a LiveConfig,
    pub prefix: &'a str,
}

impl Boot<'_> {
    pub fn settle(&mut self) -> Result<StartState, LiveError> {
        let mut st = StartState { adopted: Vec::new(), canceled: 0, recovered: Vec::new(), account: None };
        if !self.cfg.dry_run {
            self.open_orders(&mut st)?;
            self.earlier_runs(&mut st)?;
        }
        st.account = Some(self.rest.account()?);
        Ok(st)
    }

    fn name(&self) -> String {
        self.symbol.as_str().to_string()
    }

    /// Open orders at start: one per side and level may be adopted (per
    /// policy), the rest are cancelled.
    fn open_orders(&mut self, st: &mut StartState) -> Result<(), LiveError> {
        let name = self.name();
        let open = self.rest.open_orders(&name)?;
        let mut taken = [0usize; 2];
        for e in open {
            let s = super::side::slot(e.side, 0);
            let id = e.placed_client_order_id().to_string();
            if self.cfg.orphans == OrphanPolicy::Adopt && taken[s] < self.cfg.levels.max(1) {
                taken[s] += 1;
                st.adopted.push(e);
                continue;
            }
            match self.rest.cancel(&name, OrderRef::OrderId(e.order_id)) {
                Ok(c) => {
                    st.canceled += 1;
                    self.record(&id, &e, c.executed_qty, OrderStatus::Canceled, "orphan canceled at start".into());
                    if c.executed_qty.0 > 0 && id.starts_with(self.prefix) {
                        self.trades(&id, e.order_id, st);
                    }
                }
                Err(err) => return Err(err.into()),
            }
        }
        Ok(())
    }

    /// Orders that earlier runs left open or unknown in the journal and
    /// that are not open any more: their final state, and the fills they
    /// got while no run was watching.
    fn earlier_runs(&mut self, st: &mut StartState) -> Result<(), LiveError> {
        let name = self.name();
        let first = self.run.0.saturating_sub(EARLIER_RUNS).max(1);
        for r in first..self.run.0 {
            for state in self.journal.open_orders(RunId(r))? {
                let e = state.event;
                if e.symbol != self.symbol || st.adopted.iter().any(|a| a.placed_client_order_id() == e.client_id) {
                    continue;
                }
                match self.rest.query_order_by_client_id(&name, &e.client_id) {
                    Ok(q) => {
                        if q.executed_qty > e.filled {
                            self.trades(&e.client_id, q.order_id, st);
                        }
                        let why = format!("settled at start (left open by run {r})");
                        self.record(&e.client_id, &q, q.executed_qty, journal_status(&q.status), why);
                    }
                    Err(BinanceError::UnknownOrder { .. }) => {
                        let ev = OrderEvent {
                            run: self.run,
                            status: OrderStatus::Rejected,
                            reason: Some(format!("not on the exchange (left {} by run {r})", e.status.as_str())),
                            time_ns: wall_ns(),
                            ..e
                        };
                        self.journal.record_order(ev)?;
                    }
                    Err(err) => return Err(err.into()),
                }
            }
        }
        Ok(())
    }

    fn trades(&mut self, client_id: &str, order_id: u64, st: &mut StartState) {
        let name = self.name();
        if let Ok(list) = self.rest.my_trades(&name, order_id) {
            for t in list {
                st.recovered.push(super::events::trade_record(self.run, self.symbol, client_id, order_id, &t));
            }
        }
    }

    fn record(&self, id: &str, o: &Order, filled: Qty, status: OrderStatus, why: String) {
        let _ = self.journal.record_order(OrderEvent {
            run: self.run,
            client_id: id.to_string(),
            exchange_id: Some(o.order_id as i64),
            symbol: self.symbol,
            side: o.side,
            price: o.price,
            qty: o.orig_qty,
            filled,
            status,
            reason: Some(why),
            time_ns: wall_ns(),
        });
    }
}

impl LiveExchange {
    /// Applies what start-up found: fills first, then adopted orders and
    /// the balances.
    pub(super) fn adopt_at_start(&mut self, st: StartState) {
        self.stats.orphans_canceled += st.canceled;
        for rec in st.recovered {
            if self.apply_fill(rec) {
                self.stats.fills_recovered += 1;
            }
        }
        for e in st.adopted {
            let id = e.placed_client_order_id().to_string();
            // At most one per slot was adopted at start; a slot taken
            // meanwhile leaves the order to the first reconciliation,
            // which cancels it as a stray.
            let Some(s) = self.free_slot(e.side) else { continue };
            self.stats.orphans_adopted += 1;
            let o = LiveOrder::new(&id, e.side, e.price, e.orig_qty, wall_ns());
            self.apply_order(s, o, &e, "adopted at start");
        }
        if let Some(a) = st.account {
            let base = a
                .balance(&self.rules.base_asset)
                .map_or(Balance::default(), |b| Balance { free: b.free.0, locked: b.locked.0 });
            self.start_balance_check(base);
            self.on_account(&a);
        }
    }

    /// Asks for the open orders and the account (answers come later).
    pub(super) fn start_reconcile(&mut self) {
        self.last_reconcile = Instant::now();
        if self.reconcile_in_flight || self.all_blocked_until.is_some_and(|t| Instant::now() < t) {
            return;
        }
        self.stats.reconciles += 1;
        if !self.cfg.dry_run {
            self.reconcile_in_flight = true;
            self.submit(Call::OpenOrders, Purpose::OpenOrders { asked: Instant::now() });
        }
        self.stats.balance_refreshes += 1;
        self.submit(Call::Account, Purpose::Account);
    }

    /// The open orders as of `asked`, against what the sides track.
    pub(super) fn on_open_orders(&mut self, asked: Instant, open: Vec<Order>) {
        for s in 0..self.slots.len() {
            // Only a slot that was live before the question can be judged
            // by the answer (an order placed since may not be listed yet).
            let SideState::Live(o) = &self.slots[s] else { continue };
            if o.since > asked {
                continue;
            }
            match open.iter().find(|e| e.placed_client_order_id() == o.client_id) {
                Some(e) => {
                    let (id, seen) = (o.client_id.clone(), o.filled);
                    if e.executed_qty > seen {
                        self.recover_fills(e.order_id, &id);
                    }
                    if let SideState::Live(cur) = &mut self.slots[s] {
                        cur.order_id = e.order_id;
                        cur.filled = cur.filled.max(e.executed_qty);
                    }
                }
                None => {
                    let SideState::Live(o) = std::mem::take(&mut self.slots[s]) else { continue };
                    self.settle(s, o);
                }
            }
        }
        for e in open {
            let id = e.placed_client_order_id().to_string();
            if self.slots.iter().any(|st| st.tracks(&id)) {
                continue;
            }
            let ours = id.starts_with(&format!("{}-", self.ids.prefix()));
            let free = self.free_slot(e.side).filter(|_| !ours && self.cfg.orphans == OrphanPolicy::Adopt);
            if let Some(s) = free {
                self.stats.orphans_adopted += 1;
                let o = LiveOrder::new(&id, e.side, e.price, e.orig_qty, wall_ns());
                self.apply_order(s, o, &e, "adopted at reconciliation");
            } else {
                // Ours but untracked (an extra), or someone else's: a live
                // run owns its symbol, and a slot holds one order.
                self.stats.orphans_canceled += 1;
                self.submit(Call::Cancel(Target::OrderId(e.order_id)), Purpose::CancelStray { client_id: id });
            }
        }
    }

    pub(super) fn on_account(&mut self, a: &Account) {
        for asset in [self.rules.base_asset.clone(), self.rules.quote_asset.clone()] {
            let (free, locked) = a.balance(&asset).map_or((0, 0), |b| (b.free.0, b.locked.0));
            self.on_balance(&asset, Balance { free, locked }, BalanceSource::Rest);
            if self.stopped.is_some() {
                return;
            }
        }
    }
}

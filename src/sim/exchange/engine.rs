//! The trading operations both APIs share (REST in [`super::rest`], the
//! WebSocket API in [`super::ws_api`]): place, test, cancel, query,
//! cancelReplace, open orders, cancel all, account, myTrades; and the
//! faults that strike order requests.
//!
//! Order faults, every Nth order request (new order or cancelReplace),
//! in this order: the 418 ban; the 429 `-1015` throttle; the late engine
//! (`-1007 TIMEOUT` answered at once, the order reaching the engine
//! `late_order_by` later, never after the request's timestamp+recvWindow,
//! errors.md §-1007, rest-api.md §General API Information "APIs have a
//! timeout of 10 seconds"); `-1006 UNEXPECTED_RESP` after placing; a 503
//! after placing; an answer held past the client's timeout.

use std::time::Duration;

use crate::exec::binance::model::OrderStatus;
use crate::exec::Side;
use crate::hot::fixed::{Price, Qty};
use crate::sim::exchange::answers::{self, Exec, RespType};
use crate::sim::exchange::limits::too_many_orders;
use crate::sim::exchange::money::{lock_for, relock};
use crate::sim::exchange::wire::{bad, illegal, mandatory, ApiError, Params};
use crate::sim::exchange::{Account, Exchange, Inner, LateOrder, OrderState, SimOrder};
use crate::sim::market::TrueBook;

/// What a request asks the engine to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Place,
    Test,
    Cancel,
    Query,
    CancelReplace,
    OpenOrders,
    CancelAll,
    Account,
    MyTrades,
}

impl Op {
    /// The documented request weight (rest-api.md and web-socket-api.md,
    /// each endpoint's **Weight**).
    pub fn weight(self, p: &Params) -> u64 {
        match self {
            Op::Place | Op::Cancel | Op::CancelReplace | Op::CancelAll => 1,
            Op::Test => {
                if p.get("computeCommissionRates") == Some("true") {
                    20
                } else {
                    1
                }
            }
            Op::Query => 4,
            Op::OpenOrders => {
                if p.get("symbol").is_some() {
                    6
                } else {
                    80
                }
            }
            Op::Account => 20,
            Op::MyTrades => {
                if p.get("orderId").is_some() {
                    5
                } else {
                    20
                }
            }
        }
    }

    /// Counts toward the every-Nth order faults and the ORDERS limits.
    pub fn is_order(self) -> bool {
        matches!(self, Op::Place | Op::CancelReplace)
    }
}

/// A done operation: the `result` JSON and, for orders, the ORDERS counts.
#[derive(Debug, Clone, Default)]
pub struct Done {
    pub body: String,
    pub orders: Option<(u64, u64)>,
    /// Hold the answer this long (the delayed-answer fault).
    pub hold: Duration,
}

/// A new order's parameters, checked for form.
#[derive(Debug, Clone)]
pub(crate) struct NewOrder {
    pub market: usize,
    pub side: Side,
    pub price: i64,
    pub qty: i64,
    pub client_id: Option<String>,
    pub resp: RespType,
    pub stp: &'static str,
}

pub(crate) enum OrderRef {
    Id(u64),
    Client(String),
}

pub(crate) type Book<'a> = &'a dyn Fn(&str) -> Option<TrueBook>;

impl Exchange {
    /// Runs `op` for account `acct`, order faults included.
    pub(crate) fn run(&self, op: Op, p: &Params, acct: usize, book: Book<'_>) -> Result<Done, ApiError> {
        let now = self.now_ms();
        let mut hold = Duration::ZERO;
        let mut after: Option<ApiError> = None;
        if op.is_order() {
            let n = {
                let mut g = self.lock();
                g.order_requests += 1;
                g.order_requests
            };
            let f = &self.faults;
            let every = |k: u64| k > 0 && n.is_multiple_of(k);
            if every(f.ban_order_every) {
                return Err(self.start_ban());
            }
            let limited = if every(f.throttle_order_every) {
                Err(too_many_orders(self.cfg.limits.orders_per_10s, "10 SECOND", 1, now))
            } else {
                self.order_room(acct, now).map(|_| ())
            };
            if let Err(e) = limited {
                self.note_429(&e);
                if op == Op::CancelReplace && p.get("orderRateLimitExceededMode") == Some("CANCEL_ONLY") {
                    return self.cancel_only(p, acct, &e);
                }
                return Err(e);
            }
            if op == Op::Place && every(f.late_order_every) {
                let new = self.parse_new(p, "newClientOrderId")?;
                let (ts, window) =
                    crate::sim::exchange::wire::check_time(p.get("timestamp"), p.get("recvWindow"), now)?;
                // Within the window Binance checks again before the engine
                // (rest-api.md §Timing security) and the API's 10 s timeout,
                // both counted from when the client sent it.
                let due = (now + f.late_order_by.as_millis() as i64).min(ts + window).min(ts + 10_000).max(now);
                self.lock().late.push(LateOrder { due_ms: due, acct, new });
                return Err(ApiError::new(
                    503,
                    -1007,
                    "Timeout waiting for response from backend server. Send status unknown; execution status unknown.",
                ));
            }
            if every(f.unexpected_resp_every) {
                after = Some(ApiError::new(
                    503,
                    -1006,
                    "An unexpected response was received from the message bus. Execution status unknown.",
                ));
            } else if every(f.error_after_order_every) {
                after = Some(ApiError::new(
                    503,
                    -1001,
                    "Internal error; unable to process your request. Please try again.",
                ));
            }
            if every(f.delay_order_every) {
                hold = f.order_delay;
            }
        }
        let mut done = self.op(op, p, acct, book, now)?;
        done.hold = hold;
        match after {
            // The order took effect; the answer says nothing of it.
            Some(e) => Err(e),
            None => Ok(done),
        }
    }

    fn op(&self, op: Op, p: &Params, acct: usize, book: Book<'_>, now: i64) -> Result<Done, ApiError> {
        let ok = |body: String| Ok(Done { body, ..Done::default() });
        match op {
            Op::Place => {
                let new = self.parse_new(p, "newClientOrderId")?;
                let top = book(&self.markets[new.market].name);
                let mut g = self.lock();
                let (body, _) = self.place(&mut g, acct, &new, top.as_ref(), now)?;
                let counts = Exchange::order_placed(&mut g, acct, now);
                Ok(Done { body, orders: Some(counts), ..Done::default() })
            }
            Op::Test => {
                let new = self.parse_new(p, "newClientOrderId")?;
                let top = book(&self.markets[new.market].name);
                let g = self.lock();
                self.check_new(&g, acct, &new, top.as_ref())?;
                ok("{}".into())
            }
            Op::Cancel => {
                let m = self.market_param(p)?;
                let target = order_ref(p, "orderId", "origClientOrderId")?;
                let mut g = self.lock();
                ok(self.cancel(&mut g, acct, m, &target, p.get("newClientOrderId"), now)?)
            }
            Op::Query => {
                let m = self.market_param(p)?;
                let target = order_ref(p, "orderId", "origClientOrderId")?;
                let g = self.lock();
                let a = &g.accounts[acct];
                let o = find(a, &self.markets[m].name, &target, false)
                    .ok_or_else(|| bad(-2013, "Order does not exist."))?;
                ok(answers::query_json(&a.orders[o].order))
            }
            Op::CancelReplace => self.cancel_replace(p, acct, book, now),
            Op::OpenOrders => {
                let sym = match p.get("symbol") {
                    Some(_) => Some(self.markets[self.market_param(p)?].name.clone()),
                    None => None,
                };
                let g = self.lock();
                let list: Vec<String> = g.accounts[acct]
                    .orders
                    .iter()
                    .filter(|o| o.order.status.is_open() && sym.as_ref().is_none_or(|s| *s == o.order.symbol))
                    .map(|o| answers::query_json(&o.order))
                    .collect();
                ok(format!("[{}]", list.join(",")))
            }
            Op::CancelAll => {
                let m = self.market_param(p)?;
                let mut g = self.lock();
                let ids: Vec<u64> = g.accounts[acct]
                    .orders
                    .iter()
                    .filter(|o| o.order.status.is_open() && o.order.symbol == self.markets[m].name)
                    .map(|o| o.order.order_id)
                    .collect();
                if ids.is_empty() {
                    return Err(bad(-2011, "Unknown order sent."));
                }
                let mut out = Vec::new();
                for id in ids {
                    out.push(self.cancel(&mut g, acct, m, &OrderRef::Id(id), None, now)?);
                }
                ok(format!("[{}]", out.join(",")))
            }
            Op::Account => {
                let g = self.lock();
                ok(answers::account_json(&g.accounts[acct], p.get("omitZeroBalances") == Some("true"), now))
            }
            Op::MyTrades => self.my_trades(p, acct),
        }
    }

    /// rest-api.md §Account trade list: `limit` default 500, max 1000;
    /// with `fromId`, trades with id >= it, oldest first; otherwise the
    /// most recent `limit` trades; `orderId` narrows to one order.
    fn my_trades(&self, p: &Params, acct: usize) -> Result<Done, ApiError> {
        let m = self.market_param(p)?;
        let num = |name: &str| -> Result<Option<u64>, ApiError> {
            p.get(name).map(|v| v.parse::<u64>().map_err(|_| illegal(name))).transpose()
        };
        let order_id = num("orderId")?;
        let from_id = num("fromId")?;
        let limit = match p.get("limit") {
            Some(v) => v.parse::<usize>().ok().filter(|l| (1..=1000).contains(l)).ok_or_else(|| {
                bad(-1100, "Illegal characters found in parameter 'limit'; legal range is '1..1000'.")
            })?,
            None => 500,
        };
        let g = self.lock();
        let name = &self.markets[m].name;
        let matching: Vec<&crate::sim::exchange::SimFill> = g.accounts[acct]
            .fills
            .iter()
            .filter(|f| &f.symbol == name && order_id.is_none_or(|id| f.order_id == id))
            .filter(|f| from_id.is_none_or(|id| f.trade_id >= id))
            .collect();
        let picked = if from_id.is_some() {
            &matching[..matching.len().min(limit)]
        } else {
            &matching[matching.len().saturating_sub(limit)..]
        };
        let list: Vec<String> = picked.iter().map(|f| answers::my_trade_json(f)).collect();
        Ok(Done { body: format!("[{}]", list.join(",")), ..Done::default() })
    }

    pub(crate) fn market_param(&self, p: &Params) -> Result<usize, ApiError> {
        let s = p.get("symbol").ok_or_else(|| mandatory("symbol"))?;
        self.markets.iter().position(|m| m.name == s).ok_or_else(|| bad(-1121, "Invalid symbol."))
    }

    /// Reads a new order's parameters (`id_name`: where its client id is).
    pub(crate) fn parse_new(&self, p: &Params, id_name: &str) -> Result<NewOrder, ApiError> {
        let market = self.market_param(p)?;
        let side = match p.get("side").ok_or_else(|| mandatory("side"))? {
            "BUY" => Side::Buy,
            "SELL" => Side::Sell,
            _ => return Err(bad(-1102, "Invalid side.")),
        };
        match p.get("type").ok_or_else(|| mandatory("type"))? {
            "LIMIT_MAKER" => {}
            _ => return Err(bad(-1116, "Invalid orderType.")),
        }
        if p.get("timeInForce").is_some() {
            return Err(bad(-1106, "Parameter 'timeInForce' sent when not required."));
        }
        let qty = p.decimal("quantity")?;
        let price = p.decimal("price")?;
        let client_id = match p.get(id_name) {
            Some(id) if id.is_empty() || id.len() > 36 => return Err(illegal(id_name)),
            Some(id) => Some(id.to_string()),
            None => None,
        };
        let resp = match p.get("newOrderRespType") {
            None | Some("ACK") => RespType::Ack,
            Some("RESULT") => RespType::Result,
            Some("FULL") => RespType::Full,
            Some(_) => return Err(illegal("newOrderRespType")),
        };
        let stp = self.markets[market].stp_mode(p.get("selfTradePreventionMode"))?;
        Ok(NewOrder { market, side, price, qty, client_id, resp, stp })
    }

    /// The last trade price of market `m` (PERCENT_PRICE_BY_SIDE's
    /// reference), else the book's mid.
    fn reference_price(g: &Inner, m: usize, top: Option<&TrueBook>) -> Option<i64> {
        g.last_price.get(m).copied().flatten().or_else(|| {
            let b = top?;
            Some((b.bids.first()?.0 + b.asks.first()?.0) / 2)
        })
    }

    /// Filters, would-take, duplicate id, balance: everything that refuses
    /// an order before it rests.
    pub(crate) fn check_new(
        &self,
        g: &Inner,
        acct: usize,
        n: &NewOrder,
        top: Option<&TrueBook>,
    ) -> Result<(), ApiError> {
        let m = &self.markets[n.market];
        let a = &g.accounts[acct];
        let open = a.orders.iter().filter(|o| o.order.status.is_open() && o.order.symbol == m.name).count();
        m.check(n.side, n.price, n.qty, open, Self::reference_price(g, n.market, top))?;
        if let Some(id) = &n.client_id {
            if a.orders.iter().any(|o| o.order.status.is_open() && o.order.client_order_id == *id) {
                return Err(bad(-2010, "Duplicate order sent."));
            }
        }
        if let Some(b) = top {
            let takes = match n.side {
                Side::Buy => b.asks.first().is_some_and(|&(p, _)| n.price >= p),
                Side::Sell => b.bids.first().is_some_and(|&(p, _)| n.price <= p),
            };
            if takes {
                return Err(bad(-2010, "Order would immediately match and take."));
            }
        }
        let (asset, need) = lock_for(m, n.side, n.price, n.qty);
        if a.balances.get(asset).map_or(0, |b| b.0) < need {
            return Err(bad(-2010, "Account has insufficient balance for requested action."));
        }
        Ok(())
    }

    /// Places a checked order: (answer body, the order's id).
    pub(crate) fn place(
        &self,
        g: &mut Inner,
        acct: usize,
        n: &NewOrder,
        top: Option<&TrueBook>,
        now: i64,
    ) -> Result<(String, u64), ApiError> {
        self.check_new(g, acct, n, top)?;
        let m = &self.markets[n.market];
        let order_id = g.next_order_id;
        g.next_order_id += 1;
        let client_id = n.client_id.clone().unwrap_or_else(|| format!("sim-{order_id}"));
        let queue_ahead = top
            .and_then(|b| {
                let side = if n.side == Side::Buy { &b.bids } else { &b.asks };
                side.iter().find(|&&(p, _)| p == n.price).map(|&(_, q)| q)
            })
            .unwrap_or(0);
        let order = SimOrder {
            symbol: m.name.clone(),
            order_id,
            client_order_id: client_id,
            side: n.side,
            price: Price(n.price),
            orig_qty: Qty(n.qty),
            executed_qty: Qty::ZERO,
            cum_quote: 0,
            status: OrderStatus::New,
            time_ms: now,
            update_ms: now,
            order_type: "LIMIT_MAKER",
            time_in_force: "GTC",
            stp_mode: n.stp,
            prevented_qty: Qty::ZERO,
            prevented_match_id: None,
        };
        let exec_id = next_exec(g);
        let a = &mut g.accounts[acct];
        let body = answers::order_json(&order, n.resp, now);
        answers::push(a, answers::execution_report(&order, &Exec::new("NEW", exec_id, now)));
        let mut st = OrderState { order, queue_ahead, locked: 0 };
        let asset = relock(&mut a.balances, m, &mut st);
        a.orders.push(st);
        let open = a.orders.iter().filter(|o| o.order.status.is_open()).count();
        a.max_open = a.max_open.max(open);
        let side = a.orders.last().map(|o| o.order.side);
        let same_side = a.orders.iter().filter(|o| o.order.status.is_open() && Some(o.order.side) == side).count();
        let slot = if side == Some(crate::exec::Side::Buy) { 0 } else { 1 };
        a.max_open_per_side[slot] = a.max_open_per_side[slot].max(same_side);
        answers::position(a, &[asset], now);
        Ok((body, order_id))
    }

    /// Cancels one open order: the cancel answer's body.
    pub(crate) fn cancel(
        &self,
        g: &mut Inner,
        acct: usize,
        m: usize,
        target: &OrderRef,
        new_client_id: Option<&str>,
        now: i64,
    ) -> Result<String, ApiError> {
        let market = &self.markets[m];
        let exec_id = next_exec(g);
        let cancel_id = new_client_id.map_or_else(|| format!("sim-cancel-{exec_id}"), str::to_string);
        let a = &mut g.accounts[acct];
        let i = find(a, &market.name, target, true).ok_or_else(|| bad(-2011, "Unknown order sent."))?;
        let o = &mut a.orders[i];
        o.order.status = OrderStatus::Canceled;
        o.order.update_ms = now;
        let asset = relock(&mut a.balances, market, o);
        let order = a.orders[i].order.clone();
        let mut ex = Exec::new("CANCELED", exec_id, now);
        ex.cancel_id = Some(cancel_id.clone());
        answers::push(a, answers::execution_report(&order, &ex));
        answers::position(a, &[asset], now);
        Ok(answers::cancel_json(&order, &cancel_id, now))
    }

    /// rest-api.md §Cancel an Existing Order and Send a New Order.
    fn cancel_replace(&self, p: &Params, acct: usize, book: Book<'_>, now: i64) -> Result<Done, ApiError> {
        let allow_failure = match p.get("cancelReplaceMode").ok_or_else(|| mandatory("cancelReplaceMode"))? {
            "STOP_ON_FAILURE" => false,
            "ALLOW_FAILURE" => true,
            _ => return Err(illegal("cancelReplaceMode")),
        };
        match p.get("orderRateLimitExceededMode") {
            None | Some("DO_NOTHING") | Some("CANCEL_ONLY") => {}
            Some(_) => return Err(illegal("orderRateLimitExceededMode")),
        }
        let target = order_ref(p, "cancelOrderId", "cancelOrigClientOrderId")?;
        let new = self.parse_new(p, "newClientOrderId")?;
        let top = book(&self.markets[new.market].name);
        let mut g = self.lock();
        let canceled = self.cancel(&mut g, acct, new.market, &target, p.get("cancelNewClientOrderId"), now);
        let placed = if canceled.is_ok() || allow_failure {
            Some(self.place(&mut g, acct, &new, top.as_ref(), now).map(|(b, _)| b))
        } else {
            None
        };
        // "A new order that was not attempted ... will still increase the
        // unfilled order count by 1."
        let counts = Exchange::order_placed(&mut g, acct, now);
        drop(g);
        if let (Ok(c), Some(Ok(n))) = (&canceled, &placed) {
            let body = format!(
                "{{\"cancelResult\":\"SUCCESS\",\"newOrderResult\":\"SUCCESS\",\"cancelResponse\":{c},\"newOrderResponse\":{n}}}"
            );
            return Ok(Done { body, orders: Some(counts), ..Done::default() });
        }
        Err(replace_error(&canceled, placed.as_ref()))
    }

    /// cancelReplace when the ORDERS limit is used up, with
    /// `orderRateLimitExceededMode=CANCEL_ONLY` (rest-api.md §Cancel an
    /// Existing Order and Send a New Order: the cancel goes ahead, the new
    /// order is refused with the rate-limit error).
    pub(crate) fn cancel_only(&self, p: &Params, acct: usize, limit: &ApiError) -> Result<Done, ApiError> {
        let now = self.now_ms();
        let m = self.market_param(p)?;
        let target = order_ref(p, "cancelOrderId", "cancelOrigClientOrderId")?;
        let mut g = self.lock();
        let canceled = self.cancel(&mut g, acct, m, &target, p.get("cancelNewClientOrderId"), now);
        drop(g);
        // The refused half is `{"code","msg"}` as rest-api.md shows it.
        let refused = ApiError { data: None, ..limit.clone() };
        Err(replace_error(&canceled, Some(&Err(refused))))
    }
}

/// The -2021 / -2022 error with both halves under `data`.
fn replace_error(canceled: &Result<String, ApiError>, placed: Option<&Result<String, ApiError>>) -> ApiError {
    let half = |r: &Result<String, ApiError>| match r {
        Ok(b) => ("SUCCESS", b.clone()),
        Err(e) => ("FAILURE", e.body()),
    };
    let (cr, cb) = half(canceled);
    let (nr, nb) = match placed {
        Some(r) => half(r),
        None => ("NOT_ATTEMPTED", "null".to_string()),
    };
    let partial = cr == "SUCCESS" || nr == "SUCCESS";
    let (status, code, msg) = if partial {
        (409, -2021, "Order cancel-replace partially failed.")
    } else {
        (400, -2022, "Order cancel-replace failed.")
    };
    let mut e = ApiError::new(status, code, msg);
    e.data = Some(format!(
        "{{\"cancelResult\":\"{cr}\",\"newOrderResult\":\"{nr}\",\"cancelResponse\":{cb},\"newOrderResponse\":{nb}}}"
    ));
    e
}

pub(crate) fn next_exec(g: &mut Inner) -> u64 {
    let id = g.next_exec_id;
    g.next_exec_id += 1;
    id
}

pub(crate) fn order_ref(p: &Params, id: &str, client: &str) -> Result<OrderRef, ApiError> {
    if let Some(v) = p.get(id) {
        return v.parse().map(OrderRef::Id).map_err(|_| illegal(id));
    }
    match p.get(client) {
        Some(c) => Ok(OrderRef::Client(c.to_string())),
        None => Err(bad(-1102, format!("Param '{id}' or '{client}' must be sent, but both were empty/null!"))),
    }
}

/// The newest order matching `target` (open ones only when `open`).
pub(crate) fn find(a: &Account, symbol: &str, target: &OrderRef, open: bool) -> Option<usize> {
    a.orders.iter().rposition(|o| {
        o.order.symbol == symbol
            && (!open || o.order.status.is_open())
            && match target {
                OrderRef::Id(id) => o.order.order_id == *id,
                OrderRef::Client(c) => o.order.client_order_id == *c,
            }
    })
}

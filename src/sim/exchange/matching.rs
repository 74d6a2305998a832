//! The matching engine's own moves, driven by the market thread: market
//! trades fill resting orders ([`Exchange::on_trade`]); late order requests
//! reach the engine and the self-trade fault strikes ([`Exchange::tick`]).
//!
//! Self-trades (faqs/stp_faq.md): the fault sends, from the same account,
//! a taker (`LIMIT IOC`, as another program of the user would) against the
//! account's oldest resting order, for half its available quantity (at
//! least one step). "STP behavior is typically determined by the STP mode
//! of the taker order only" (TRANSFER needs both, else DECREMENT; on one
//! account TRANSFER behaves as DECREMENT):
//! - `NONE`: the orders trade (a self-trade fill on both);
//! - `EXPIRE_MAKER`: the maker's remaining quantity expires
//!   (`EXPIRED_IN_MATCH`, execution type `TRADE_PREVENTION`);
//! - `EXPIRE_TAKER`: the taker expires, the maker is untouched;
//! - `EXPIRE_BOTH`: both expire;
//! - `DECREMENT`: both orders' prevented quantity grows by the match; the
//!   smaller expires (both when equal), the other stays live with less.
//!
//! An IOC taker that is left with quantity expires (`EXPIRED`): it meets
//! nothing else here.

use crate::exec::binance::model::OrderStatus;
use crate::exec::Side;
use crate::hot::fixed::{notional, notional_ceil, Price, Qty};
use crate::sim::exchange::answers::{self, execution_report, Exec, Prevention};
use crate::sim::exchange::engine::Book;
use crate::sim::exchange::money::{relock, settle_fill};
use crate::sim::exchange::rules::SymbolSpec;
use crate::sim::exchange::{Exchange, OrderState, SimFill, SimOrder};

impl Exchange {
    /// Feeds one market trade to the matching engine: trades fill resting
    /// orders. `symbol` indexes the simulator's symbols.
    pub fn on_trade(&self, symbol: usize, payload: &str) {
        let Some(m) = self.markets.get(symbol) else { return };
        let Ok(v) = serde_json::from_str::<serde_json::Value>(payload) else { return };
        let field = |k: &str| v.get(k).and_then(|x| x.as_str()).and_then(|s| s.parse::<Qty>().ok()).map(|q| q.0);
        let (Some(price), Some(mut avail)) = (field("p"), field("q")) else { return };
        // Buyer is maker: the aggressor sold into the bids.
        let hits_bids = v.get("m").and_then(|x| x.as_bool()).unwrap_or(false);
        let now = self.now_ms();
        let bnb = self.cfg.bnb_fees;
        let mut g = self.lock();
        let g = &mut *g;
        if let Some(p) = g.last_price.get_mut(symbol) {
            *p = Some(price);
        }
        for a in &mut g.accounts {
            let mut touched = false;
            for i in 0..a.orders.len() {
                if avail <= 0 {
                    break;
                }
                let o = &mut a.orders[i];
                if !o.order.status.is_open() || o.order.symbol != m.name {
                    continue;
                }
                let ours = o.order.price.0;
                let (through, at) = match (o.order.side, hits_bids) {
                    (Side::Buy, true) => (price < ours, price == ours),
                    (Side::Sell, false) => (price > ours, price == ours),
                    _ => (false, false),
                };
                let mut can = 0;
                if through {
                    can = avail;
                } else if at {
                    let ahead = o.queue_ahead.min(avail);
                    o.queue_ahead -= ahead;
                    avail -= ahead;
                    can = avail;
                }
                let qty = can.min(o.order.available());
                if qty <= 0 {
                    continue;
                }
                avail -= qty;
                touched = true;
                let trade_id = g.next_trade_id;
                g.next_trade_id += 1;
                let exec_id = g.next_exec_id;
                g.next_exec_id += 1;
                let fill = fill(&mut a.balances, m, o, qty, a.cfg.commission, bnb.as_ref(), trade_id, now, true);
                let mut ex = Exec::new("TRADE", exec_id, now);
                ex.fill = Some(fill.clone());
                let report = execution_report(&o.order, &ex);
                answers::push(a, report);
                a.fills.push(fill);
            }
            if touched {
                let bnb_asset = if bnb.is_some() { "BNB" } else { m.quote.as_str() };
                answers::position(a, &[m.base.as_str(), m.quote.as_str(), bnb_asset], now);
            }
        }
    }

    /// Time-driven engine work: late orders that are due reach the engine;
    /// the self-trade fault strikes when its period is up.
    pub fn tick(&self, book: Book<'_>) {
        let now = self.now_ms();
        let due: Vec<_> = {
            let mut g = self.lock();
            if g.late.iter().all(|l| l.due_ms > now) {
                Vec::new()
            } else {
                let (due, later) = std::mem::take(&mut g.late).into_iter().partition(|l| l.due_ms <= now);
                g.late = later;
                due
            }
        };
        for l in due {
            let top = book(&self.markets[l.new.market].name);
            let mut g = self.lock();
            // Refused in the engine (would take, duplicate, balance): the
            // client only ever learns it by looking the order up.
            if self.place(&mut g, l.acct, &l.new, top.as_ref(), now).is_ok() {
                Exchange::order_placed(&mut g, l.acct, now);
            }
        }
        if let Some(every) = self.faults.self_trade_every {
            let mut g = self.lock();
            if now - g.last_self_trade_ms >= every.as_millis() as i64 {
                g.last_self_trade_ms = now;
                drop(g);
                self.self_trade(now);
            }
        }
    }

    /// One strike of the self-trade fault on every account.
    fn self_trade(&self, now: i64) {
        let taker_mode = self.faults.self_trade_mode();
        let bnb = self.cfg.bnb_fees;
        let mut g = self.lock();
        let g = &mut *g;
        for a in &mut g.accounts {
            let Some(mi) =
                a.orders.iter().position(|o| o.order.status.is_open() && o.order.order_type == "LIMIT_MAKER")
            else {
                continue;
            };
            let Some(m) = self.markets.iter().find(|m| m.name == a.orders[mi].order.symbol) else { continue };
            let maker = &a.orders[mi].order;
            let step = m.rules.lot.step.0.max(1);
            let avail = maker.available();
            let qty = ((avail / 2) / step * step).max(step).min(avail);
            if qty <= 0 {
                continue;
            }
            let side = if maker.side == Side::Buy { Side::Sell } else { Side::Buy };
            let price = maker.price.0;
            // The other program's order needs the money too, or it is refused.
            let (asset, need) = match side {
                Side::Buy => (m.quote.as_str(), notional_ceil(price, qty)),
                Side::Sell => (m.base.as_str(), qty),
            };
            if a.balances.get(asset).map_or(0, |b| b.0) < need {
                continue;
            }
            // stp_faq.md's table: TRANSFER only when both say so; on one
            // account TRANSFER is DECREMENT.
            let effective = match taker_mode {
                "TRANSFER" => "DECREMENT",
                other => other,
            };
            let taker_id = g.next_order_id;
            g.next_order_id += 1;
            let taker = SimOrder {
                symbol: m.name.clone(),
                order_id: taker_id,
                client_order_id: format!("other-program-{taker_id}"),
                side,
                price: Price(price),
                orig_qty: Qty(qty),
                executed_qty: Qty::ZERO,
                cum_quote: 0,
                status: OrderStatus::New,
                time_ms: now,
                update_ms: now,
                order_type: "LIMIT",
                time_in_force: "IOC",
                stp_mode: taker_mode,
                prevented_qty: Qty::ZERO,
                prevented_match_id: None,
            };
            let mut t = OrderState { order: taker, queue_ahead: 0, locked: 0 };
            relock(&mut a.balances, m, &mut t);
            let id = g.next_exec_id;
            g.next_exec_id += 1;
            answers::push(a, execution_report(&t.order, &Exec::new("NEW", id, now)));
            a.orders.push(t);
            let ti = a.orders.len() - 1;
            if effective == "NONE" {
                let trade_id = g.next_trade_id;
                g.next_trade_id += 1;
                for (i, is_maker) in [(mi, true), (ti, false)] {
                    let exec_id = g.next_exec_id;
                    g.next_exec_id += 1;
                    let o = &mut a.orders[i];
                    let f = fill(&mut a.balances, m, o, qty, a.cfg.commission, bnb.as_ref(), trade_id, now, is_maker);
                    let mut ex = Exec::new("TRADE", exec_id, now);
                    ex.fill = Some(f.clone());
                    let report = execution_report(&o.order, &ex);
                    answers::push(a, report);
                    a.fills.push(f);
                }
            } else {
                let match_id = g.next_prevented_id;
                g.next_prevented_id += 1;
                let (expire_maker, expire_taker) = match effective {
                    "EXPIRE_MAKER" => (true, false),
                    "EXPIRE_TAKER" => (false, true),
                    "EXPIRE_BOTH" => (true, true),
                    // DECREMENT: the match's quantity, from both; the
                    // smaller (the taker, or both when equal) expires.
                    _ => (avail <= qty, true),
                };
                let decrement = effective == "DECREMENT";
                let touch_maker = expire_maker || decrement;
                for (i, counter, expire, last) in [
                    (mi, taker_id, expire_maker, if decrement { qty } else { avail }),
                    (ti, a.orders[mi].order.order_id, expire_taker, qty),
                ] {
                    if (i == mi && !touch_maker) || (i == ti && !(expire_taker || decrement)) {
                        continue;
                    }
                    let exec_id = next_exec_in(&mut g.next_exec_id);
                    let o = &mut a.orders[i];
                    let last = last.min(o.order.available());
                    o.order.prevented_qty.0 += last;
                    o.order.prevented_match_id = Some(match_id);
                    o.order.update_ms = now;
                    if expire || o.order.available() <= 0 {
                        o.order.status = OrderStatus::ExpiredInMatch;
                    }
                    relock(&mut a.balances, m, o);
                    let mut ex = Exec::new("TRADE_PREVENTION", exec_id, now);
                    ex.prevention = Some(Prevention { match_id, last_qty: last, counter_order_id: counter, price });
                    let report = execution_report(&o.order, &ex);
                    answers::push(a, report);
                }
            }
            // An IOC taker never rests: what is left of it expires.
            let t = &mut a.orders[ti];
            if t.order.status.is_open() {
                t.order.status = OrderStatus::Expired;
                t.order.update_ms = now;
                relock(&mut a.balances, m, t);
                let exec_id = next_exec_in(&mut g.next_exec_id);
                let report = execution_report(&a.orders[ti].order, &Exec::new("EXPIRED", exec_id, now));
                answers::push(a, report);
            }
            let bnb_asset = if bnb.is_some() { "BNB" } else { m.quote.as_str() };
            answers::position(a, &[m.base.as_str(), m.quote.as_str(), bnb_asset], now);
        }
    }
}

fn next_exec_in(next: &mut u64) -> u64 {
    let id = *next;
    *next += 1;
    id
}

/// One fill of `qty` on order `o`: money, the order's state, the record.
#[allow(clippy::too_many_arguments)]
fn fill(
    balances: &mut crate::sim::exchange::money::Balances,
    m: &SymbolSpec,
    o: &mut OrderState,
    qty: i64,
    rate: i64,
    bnb: Option<&crate::sim::exchange::BnbFees>,
    trade_id: u64,
    now: i64,
    is_maker: bool,
) -> SimFill {
    let price = o.order.price.0;
    let (commission, commission_asset) = settle_fill(balances, m, o, qty, rate, bnb, true);
    o.order.executed_qty.0 += qty;
    o.order.cum_quote += notional(price, qty);
    o.order.update_ms = now;
    o.order.status = if o.order.available() <= 0 {
        if o.order.prevented_qty.0 > 0 && o.order.executed_qty != o.order.orig_qty {
            OrderStatus::ExpiredInMatch
        } else {
            OrderStatus::Filled
        }
    } else {
        OrderStatus::PartiallyFilled
    };
    // A BUY locked the rounded-up cost; what rounding left goes back.
    relock(balances, m, o);
    SimFill {
        symbol: m.name.clone(),
        order_id: o.order.order_id,
        client_order_id: o.order.client_order_id.clone(),
        side: o.order.side,
        price: Price(price),
        qty: Qty(qty),
        commission,
        commission_asset,
        trade_id,
        time_ms: now,
        is_maker,
    }
}

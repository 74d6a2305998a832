//! What the exchange side tells the strategy, built from its own types: the
//! [`ExecState`] (position, working orders, account) it hands the hot thread,
//! the [`Account`] and each [`StrategyFill`]. Here rather than in `hot`, so
//! the hot path's types know nothing of positions, fills or the paper
//! exchange (imports flow down: exec -> hot).

use crate::exec::paper::{WorkingOrder, QUEUE_UNKNOWN};
use crate::exec::position::Position;
use crate::exec::{Fill, Side};
use crate::hot::engine::ExecState;
use crate::hot::fixed::{Qty, SCALE};
use crate::hot::msg::Level;
use crate::hot::strategy::{Account, OwnOrder, OwnOrders, StrategyFill};

impl ExecState {
    /// The state an exchange side reports: `position`'s quantity and
    /// account, the working orders (`None`: no order on that side) with
    /// their queue estimates and ages.
    pub fn of(
        position: &Position,
        bid: Option<WorkingOrder>,
        ask: Option<WorkingOrder>,
        last_fill_ns: Option<i64>,
    ) -> Self {
        Self::of_orders(position, bid.into_iter().chain(ask), last_fill_ns)
    }

    /// [`ExecState::of`] with any number of working orders (a ladder's),
    /// each side's best first: the first of a side is its `bid`/`ask`.
    pub fn of_orders(
        position: &Position,
        working: impl IntoIterator<Item = WorkingOrder>,
        last_fill_ns: Option<i64>,
    ) -> Self {
        let mut orders = OwnOrders::default();
        let (mut bid, mut ask) = (None, None);
        for o in working {
            let buy = o.side == Side::Buy;
            let best = if buy { &mut bid } else { &mut ask };
            best.get_or_insert(Level { price: o.price, qty: o.qty });
            let queue_ahead = (o.queue_ahead != QUEUE_UNKNOWN).then_some(o.queue_ahead);
            orders.push(buy, OwnOrder { price: o.price, qty: o.qty, queue_ahead, since_ns: o.live_since_ns });
        }
        Self { position: position.qty(), bid, ask, orders, account: Account::of(position, last_fill_ns) }
    }
}

impl Account {
    /// The account after `position`'s fills; `last_fill_ns` as given.
    pub fn of(position: &Position, last_fill_ns: Option<i64>) -> Self {
        Self {
            avg_entry: position.avg_entry(),
            open_cost: position.open_cost(),
            realized: position.realized(),
            fees: position.fees(),
            last_fill_ns,
        }
    }
}

impl StrategyFill {
    /// `fill` as a strategy sees it: `fee` its commission valued in the
    /// quote asset (1e-8), `position` the position after it.
    pub fn of(fill: &Fill, fee: i64, position: Qty) -> Self {
        Self {
            price: fill.price.to_f64(),
            qty: fill.qty.to_f64(),
            side: match fill.side {
                Side::Buy => 1.0,
                Side::Sell => -1.0,
            },
            fee: fee as f64 / SCALE as f64,
            time_s: fill.time_ns as f64 / 1e9,
            maker: fill.maker,
            position: position.to_f64(),
        }
    }
}

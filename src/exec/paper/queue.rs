//! Queue models: where a resting paper order stands in the queue at its
//! price, and how that place moves as the market trades and cancels.
//!
//! An L2 feed shows only the total quantity at a price, never the orders in
//! it, so the quantity ahead of ours is an estimate. Three estimates, chosen
//! by `[paper] queue_model`, all taken from hftbacktest 2.4.4
//! (`hftbacktest/src/backtest/models/queue.rs`, MIT, nkaz001) so that runs
//! can be compared with it:
//!
//! - [`QueueModel::RiskAverse`] (`RiskAdverseQueueModel` there): only trades
//!   at our price advance us; a drop of the visible quantity moves us forward
//!   only as far as it must (`ahead = min(ahead, visible)`): cancels are
//!   assumed to be behind us. The most pessimistic of the three.
//! - [`QueueModel::Power`] and [`QueueModel::Log`] (`ProbQueueModel` with
//!   `PowerProbQueueFunc(n)` / `LogProbQueueFunc`): a decrease of the visible
//!   quantity not explained by trades is split between the part ahead of us
//!   and the part behind, with `p = f(back) / (f(back) + f(front))` and
//!   `f(x) = x^n` or `f(x) = ln(1 + x)`: the part ahead shrinks by
//!   `(1 - p) * decrease`, and whatever the part behind cannot absorb
//!   (`min(back - p * decrease, 0)`) comes off the front too. This is
//!   Rigtorp's estimate ("Estimating order queue position", 2013): the
//!   nearer we are to the front, the likelier a cancel is behind us.
//!
//! Quantities are the feed's base-asset units as `f64` inside the formula
//! (as in hftbacktest, where `ln(1 + x)` depends on the unit), fixed-point
//! outside it. Everything is deterministic: no random draws.

use crate::hot::fixed::SCALE;

/// How cancels at our price move our place in the queue.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum QueueModel {
    /// Only trades advance the queue (hftbacktest `RiskAdverseQueueModel`).
    RiskAverse,
    /// Cancels advance it with `f(x) = x^n` (`PowerProbQueueFunc(n)`).
    Power(f64),
    /// Cancels advance it with `f(x) = ln(1 + x)` (`LogProbQueueFunc`).
    Log,
}

impl QueueModel {
    /// The name `[paper] queue_model` takes and reports show.
    pub fn name(&self) -> &'static str {
        match self {
            QueueModel::RiskAverse => "risk_averse",
            QueueModel::Power(_) => "power",
            QueueModel::Log => "log",
        }
    }

    /// `p`: the share of a decrease that is behind us, exactly as
    /// hftbacktest computes it (`front` may be a little below 0 after a
    /// trade that reached us by less than half a lot; an infinite ratio
    /// counts as 1, and a NaN is left to the caller's `min`).
    fn behind_share(&self, front: f64, back: f64) -> f64 {
        let (fb, ff) = match *self {
            QueueModel::RiskAverse => return 1.0,
            QueueModel::Power(n) => (back.powf(n), front.powf(n)),
            QueueModel::Log => ((1.0 + back).ln(), (1.0 + front).ln()),
        };
        let p = fb / (fb + ff);
        if p.is_infinite() {
            1.0
        } else {
            p
        }
    }
}

/// An order's place in its price's queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueuePlace {
    /// Quantity ahead of us (fixed-point).
    pub ahead: i64,
    /// Visible quantity at our price in the latest book seen.
    pub level: i64,
    /// Traded at our price since that book (hftbacktest's `cum_trade_qty`),
    /// so a decrease the trades explain is not counted again as cancels.
    pub traded: i64,
}

impl QueuePlace {
    /// Joining behind everything visible at our price.
    pub fn behind(level: i64) -> Self {
        Self { ahead: level.max(0), level: level.max(0), traded: 0 }
    }

    /// A trade of `qty` at our price: the queue ahead is consumed first;
    /// returns what reaches us, in whole lots of `lot` (the nearest number,
    /// as hftbacktest's `is_filled` rounds `-front / lot_size`). A part of a
    /// lot that reaches us but rounds to none stays as a credit (`ahead`
    /// below 0) for the next trade.
    pub fn on_trade(&mut self, qty: i64, lot: i64) -> i64 {
        let qty = qty.max(0);
        let lot = lot.max(1);
        self.traded = self.traded.saturating_add(qty);
        self.ahead = self.ahead.saturating_sub(qty);
        if self.ahead >= 0 {
            return 0;
        }
        let over = -self.ahead;
        let lots = (over + lot / 2) / lot;
        if lots == 0 {
            return 0;
        }
        self.ahead = 0;
        lots.saturating_mul(lot)
    }

    /// The quantity ahead as reports show it (never below 0).
    pub fn ahead_shown(&self) -> i64 {
        self.ahead.max(0)
    }

    /// A book in which `visible` rests at our price (hftbacktest
    /// `QueueModel::depth(prev_qty, new_qty)`).
    pub fn on_depth(&mut self, model: QueueModel, visible: i64) {
        let visible = visible.max(0);
        let prev = self.level;
        if visible == prev {
            // Not our level's update: trades since the last one stay to be
            // matched with it.
            return;
        }
        self.level = visible;
        let traded = std::mem::take(&mut self.traded);
        let chg = prev - visible - traded;
        if matches!(model, QueueModel::RiskAverse) || chg <= 0 {
            // An increase joins behind us; a decrease explained by trades
            // has already moved us.
            self.ahead = self.ahead.min(visible);
            return;
        }
        let units = SCALE as f64;
        let front = self.ahead as f64 / units;
        let back = (prev - self.ahead) as f64 / units;
        let chg = chg as f64 / units;
        let p = model.behind_share(front, back);
        let est = front - (1.0 - p) * chg + (back - p * chg).min(0.0);
        // `f64::min` ignores a NaN estimate, as in hftbacktest.
        let est = est.min(visible as f64 / units);
        self.ahead = (est * units).round().clamp(i64::MIN as f64, i64::MAX as f64) as i64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const U: i64 = SCALE;

    fn place(ahead: i64, level: i64) -> QueuePlace {
        QueuePlace { ahead: ahead * U, level: level * U, traded: 0 }
    }

    #[test]
    fn risk_averse_moves_only_as_far_as_the_visible_quantity_forces() {
        let mut q = place(3, 10);
        q.on_depth(QueueModel::RiskAverse, 6 * U);
        assert_eq!(q.ahead, 3 * U);
        q.on_depth(QueueModel::RiskAverse, 2 * U);
        assert_eq!(q.ahead, 2 * U);
        // Growth joins behind us.
        q.on_depth(QueueModel::RiskAverse, 9 * U);
        assert_eq!((q.ahead, q.level), (2 * U, 9 * U));
    }

    #[test]
    fn trades_consume_the_queue_then_reach_us() {
        let mut q = place(3, 5);
        assert_eq!(q.on_trade(2 * U, 1), 0);
        assert_eq!(q.ahead, U);
        assert_eq!(q.on_trade(3 * U, 1), 2 * U);
        assert_eq!((q.ahead, q.traded), (0, 5 * U));
    }

    /// As hftbacktest: what reaches us is rounded to the nearest lot; less
    /// than half a lot waits for the next trade.
    #[test]
    fn fills_come_in_whole_lots() {
        let lot = U / 1000;
        let mut q = QueuePlace { ahead: lot * 4 / 10, level: U, traded: 0 };
        // 1 lot traded, 0.4 of it ahead: 0.6 reaches us, rounded to 1 lot.
        assert_eq!(q.on_trade(lot, lot), lot);
        assert_eq!(q.ahead, 0);
        let mut q = QueuePlace { ahead: lot * 7 / 10, level: U, traded: 0 };
        // 0.3 of a lot: none yet, kept as a credit; the next lot makes 1.3: 1.
        assert_eq!(q.on_trade(lot, lot), 0);
        assert_eq!((q.ahead, q.ahead_shown()), (-lot * 3 / 10, 0));
        assert_eq!(q.on_trade(lot, lot), lot);
    }

    /// hftbacktest's formula by hand: front 2, back 8, 4 cancelled.
    /// power n = 2: p = 64 / (64 + 4) = 0.941176..; front = 2 - 0.058823 * 4
    /// = 1.764705..; log: p = ln 9 / (ln 9 + ln 3) = 2/3; front = 2 - 4/3.
    #[test]
    fn probabilistic_models_split_cancels_by_queue_shares() {
        let mut q = place(2, 10);
        q.on_depth(QueueModel::Power(2.0), 6 * U);
        assert_eq!(q.ahead, 176_470_588);
        let mut q = place(2, 10);
        q.on_depth(QueueModel::Log, 6 * U);
        assert_eq!(q.ahead, 66_666_667);
        // n = 1: cancels spread evenly, 2/10 of 4 ahead.
        let mut q = place(2, 10);
        q.on_depth(QueueModel::Power(1.0), 6 * U);
        assert_eq!(q.ahead, 120_000_000);
    }

    #[test]
    fn a_decrease_the_trades_explain_is_not_counted_as_cancels() {
        // 3 traded at our price (2 of them ahead), then the book shows the
        // level down by exactly those 3: nothing more moves.
        let mut q = place(2, 10);
        assert_eq!(q.on_trade(U, 1), 0);
        assert_eq!(q.on_trade(2 * U, 1), U);
        assert_eq!(q.ahead, 0);
        q.ahead = U; // pretend one still ahead
        q.traded = 3 * U;
        q.on_depth(QueueModel::Power(2.0), 7 * U);
        assert_eq!((q.ahead, q.traded), (U, 0));
    }

    #[test]
    fn more_cancelled_than_behind_us_comes_off_the_front() {
        // front 5, back 1, 4 cancelled: p(back=1) is small under n = 2
        // (1 / 26), so most comes off the front.
        let mut q = place(5, 6);
        q.on_depth(QueueModel::Power(2.0), 2 * U);
        // est = 5 - (25/26) * 4 + min(1 - 4/26, 0) = 1.153846..; min with 2.
        assert_eq!(q.ahead, 115_384_615);
        // Nothing ahead, 1 behind, 1 cancelled: it was behind us.
        let mut q = place(0, 1);
        q.on_depth(QueueModel::Log, 0);
        assert_eq!(q.ahead, 0);
    }

    #[test]
    fn names() {
        assert_eq!(QueueModel::RiskAverse.name(), "risk_averse");
        assert_eq!(QueueModel::Power(3.0).name(), "power");
        assert_eq!(QueueModel::Log.name(), "log");
    }
}

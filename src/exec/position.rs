//! Position accounting for one symbol, built from [`Fill`]s.
//!
//! The strategy needs its inventory (to skew and to respect limits) and the
//! reports need PnL, fees and volume; both must come out identical in a
//! backtest and its rerun, so everything here is exact fixed-point integer
//! math (`i64` counts of 1e-8, products through `i128`), never `f64`.
//!
//! Conventions:
//! - the position is signed base quantity: long > 0, short < 0;
//! - money (realized, unrealized, fees, volume) is in quote-asset units of
//!   1e-8;
//! - the average entry price is that of the open position only: adding to it
//!   takes the quantity-weighted average, rounded half away from zero to the
//!   nearest 1e-8 (prices are positive, so this is "half up"); reducing leaves
//!   it unchanged; flipping restarts it at the fill price; flat resets it to 0;
//! - realized PnL on a reducing fill is `(fill price - avg entry) * closed
//!   qty` for a long (the negation for a short), computed with
//!   [`notional`], which rounds toward zero. The rounding of the average is
//!   therefore carried into realized PnL, at most 1e-8 of a price unit per
//!   unit of quantity closed.

use crate::exec::{Fill, Side};
use crate::hot::fixed::{notional, Price, Qty};

/// One symbol's position, PnL and trading totals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Position {
    /// Signed base quantity (long > 0).
    qty: i64,
    /// Average entry price of the open position; 0 when flat.
    avg_entry: i64,
    /// Realized PnL, quote asset, before fees.
    realized: i64,
    /// Fees paid, quote asset (positive = paid).
    fees: i64,
    /// Sum of |price * qty| over fills, quote asset.
    volume: i64,
    fills: u64,
    /// Largest |qty| the position has reached.
    max_abs: i64,
}

impl Position {
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies one fill. Fills of zero or negative quantity are ignored
    /// (the exchange never emits them; ignoring keeps the counts honest).
    pub fn on_fill(&mut self, f: &Fill) {
        let q = f.qty.0;
        if q <= 0 {
            return;
        }
        let price = f.price.0;
        let delta = match f.side {
            Side::Buy => q,
            Side::Sell => -q,
        };

        self.fills += 1;
        self.fees = self.fees.saturating_add(f.fee);
        self.volume = self.volume.saturating_add(notional(price, q).abs());

        let old = self.qty;
        if old == 0 || (old > 0) == (delta > 0) {
            // Opening or adding: weighted average of the old entry and this
            // fill.
            let new = old + delta;
            self.avg_entry = weighted_avg(old.abs(), self.avg_entry, q, price);
            self.qty = new;
        } else {
            // Reducing, closing or flipping: realize on the closed part.
            let closed = q.min(old.abs());
            // For a long, profit when selling above entry; for a short, when
            // buying below it.
            let per_unit = if old > 0 { price - self.avg_entry } else { self.avg_entry - price };
            self.realized = self.realized.saturating_add(notional(per_unit, closed));
            let new = old + delta;
            self.qty = new;
            if new == 0 {
                self.avg_entry = 0;
            } else if (new > 0) != (old > 0) {
                // Flipped: the remainder opens at the fill price.
                self.avg_entry = price;
            }
        }
        self.max_abs = self.max_abs.max(self.qty.abs());
    }

    /// Signed base quantity (long > 0).
    pub fn qty(&self) -> Qty {
        Qty(self.qty)
    }

    /// Average entry price of the open position (0 when flat).
    pub fn avg_entry(&self) -> Price {
        Price(self.avg_entry)
    }

    /// Realized PnL before fees, quote asset, 1e-8 units.
    pub fn realized(&self) -> i64 {
        self.realized
    }

    /// Fees paid, quote asset, 1e-8 units.
    pub fn fees(&self) -> i64 {
        self.fees
    }

    /// Traded quote notional, sum of |price * qty|, 1e-8 units.
    pub fn volume(&self) -> i64 {
        self.volume
    }

    /// Number of fills applied.
    pub fn fills(&self) -> u64 {
        self.fills
    }

    /// Largest absolute position reached.
    pub fn max_abs(&self) -> Qty {
        Qty(self.max_abs)
    }

    /// Open position marked to `mid`: `(mid - avg entry) * qty`, signed so
    /// that a short gains when the mid falls. 0 when flat.
    pub fn unrealized(&self, mid: Price) -> i64 {
        if self.qty == 0 {
            return 0;
        }
        notional(mid.0 - self.avg_entry, self.qty)
    }

    /// Total PnL marked to `mid`: realized + unrealized - fees.
    pub fn pnl(&self, mid: Price) -> i64 {
        self.realized.saturating_add(self.unrealized(mid)).saturating_sub(self.fees)
    }
}

/// `(q1 * p1 + q2 * p2) / (q1 + q2)` for non-negative quantities, exact in
/// `i128`, rounded half away from zero.
fn weighted_avg(q1: i64, p1: i64, q2: i64, p2: i64) -> i64 {
    let num = q1 as i128 * p1 as i128 + q2 as i128 * p2 as i128;
    let den = q1 as i128 + q2 as i128;
    if den == 0 {
        return 0;
    }
    let half = den / 2;
    // den > 0; shift the numerator by half the denominator away from zero
    // before the truncating division.
    let v = if num >= 0 { (num + half) / den } else { (num - half) / den };
    v.clamp(i64::MIN as i128, i64::MAX as i128) as i64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hot::fixed::SCALE;
    use crate::hot::msg::Symbol;

    fn fill(side: Side, price: i64, qty: i64, fee: i64) -> Fill {
        Fill {
            symbol: Symbol::new(b"BTCUSDT"),
            order_id: 1,
            side,
            price: Price(price * SCALE),
            qty: Qty(qty * SCALE / 100),
            fee,
            time_ns: 0,
            maker: true,
        }
    }

    /// Quantities below are in hundredths of a unit: `qty(150)` = 1.5.
    fn qty(hundredths: i64) -> Qty {
        Qty(hundredths * SCALE / 100)
    }

    fn money(units: i64) -> i64 {
        units * SCALE
    }

    #[test]
    fn open_long_and_add_averages_entry() {
        let mut p = Position::new();
        p.on_fill(&fill(Side::Buy, 100, 100, 0));
        assert_eq!(p.qty(), qty(100));
        assert_eq!(p.avg_entry(), Price(100 * SCALE));
        // 1 @ 100 + 3 @ 104 -> 4 @ 103.
        p.on_fill(&fill(Side::Buy, 104, 300, 0));
        assert_eq!(p.qty(), qty(400));
        assert_eq!(p.avg_entry(), Price(103 * SCALE));
        assert_eq!(p.realized(), 0);
        assert_eq!(p.unrealized(Price(105 * SCALE)), money(8));
    }

    #[test]
    fn average_rounds_half_away_from_zero() {
        // 1 @ 0.00000001 + 1 @ 0.00000002 -> 1.5e-8 -> 2e-8 (half up).
        assert_eq!(weighted_avg(SCALE, 1, SCALE, 2), 2);
        // 2 @ 1e-8 + 1 @ 2e-8 -> 1.333e-8 -> 1e-8.
        assert_eq!(weighted_avg(2 * SCALE, 1, SCALE, 2), 1);
        assert_eq!(weighted_avg(0, 0, 5, 7), 7);
    }

    #[test]
    fn reduce_long_realizes_on_closed_part_only() {
        let mut p = Position::new();
        p.on_fill(&fill(Side::Buy, 100, 200, 0));
        p.on_fill(&fill(Side::Sell, 110, 50, 0));
        assert_eq!(p.qty(), qty(150));
        assert_eq!(p.avg_entry(), Price(100 * SCALE));
        // 0.5 * (110 - 100) = 5.
        assert_eq!(p.realized(), money(5));
        assert_eq!(p.unrealized(Price(90 * SCALE)), -money(15));
    }

    #[test]
    fn short_open_add_reduce() {
        let mut p = Position::new();
        p.on_fill(&fill(Side::Sell, 100, 100, 0));
        p.on_fill(&fill(Side::Sell, 96, 100, 0));
        assert_eq!(p.qty(), qty(-200));
        assert_eq!(p.avg_entry(), Price(98 * SCALE));
        // Short gains when the mid falls: 2 * (98 - 90) = 16.
        assert_eq!(p.unrealized(Price(90 * SCALE)), money(16));
        // Buy back 1 at 95: 1 * (98 - 95) = 3.
        p.on_fill(&fill(Side::Buy, 95, 100, 0));
        assert_eq!(p.qty(), qty(-100));
        assert_eq!(p.realized(), money(3));
        assert_eq!(p.avg_entry(), Price(98 * SCALE));
    }

    #[test]
    fn flip_realizes_then_opens_remainder_at_fill_price() {
        let mut p = Position::new();
        p.on_fill(&fill(Side::Buy, 100, 100, 0));
        // Sell 3 at 90: close 1 (loss 10), open short 2 at 90.
        p.on_fill(&fill(Side::Sell, 90, 300, 0));
        assert_eq!(p.qty(), qty(-200));
        assert_eq!(p.realized(), -money(10));
        assert_eq!(p.avg_entry(), Price(90 * SCALE));
        // Flip back: buy 3 at 80 closes 2 (gain 20), opens 1 long at 80.
        p.on_fill(&fill(Side::Buy, 80, 300, 0));
        assert_eq!(p.qty(), qty(100));
        assert_eq!(p.realized(), money(10));
        assert_eq!(p.avg_entry(), Price(80 * SCALE));
        assert_eq!(p.max_abs(), qty(200));
    }

    #[test]
    fn close_goes_flat_and_resets_entry() {
        let mut p = Position::new();
        p.on_fill(&fill(Side::Buy, 100, 100, 0));
        p.on_fill(&fill(Side::Sell, 101, 100, 0));
        assert_eq!(p.qty(), Qty::ZERO);
        assert_eq!(p.avg_entry(), Price::ZERO);
        assert_eq!(p.realized(), money(1));
        assert_eq!(p.unrealized(Price(500 * SCALE)), 0);
        assert_eq!(p.pnl(Price(500 * SCALE)), money(1));
    }

    #[test]
    fn fees_volume_fills_and_max_abs() {
        let mut p = Position::new();
        p.on_fill(&fill(Side::Buy, 100, 100, 10_000_000)); // fee 0.1
        p.on_fill(&fill(Side::Buy, 100, 150, 15_000_000)); // fee 0.15
        p.on_fill(&fill(Side::Sell, 102, 250, 25_500_000)); // fee 0.255
        assert_eq!(p.fills(), 3);
        assert_eq!(p.fees(), 50_500_000);
        // 100 + 150 + 255 = 505.
        assert_eq!(p.volume(), money(505));
        assert_eq!(p.max_abs(), qty(250));
        assert_eq!(p.qty(), Qty::ZERO);
        // Realized 2.5 * 2 = 5, less 0.505 of fees.
        assert_eq!(p.realized(), money(5));
        assert_eq!(p.pnl(Price(1)), money(5) - 50_500_000);
    }

    #[test]
    fn zero_qty_fill_is_ignored() {
        let mut p = Position::new();
        p.on_fill(&fill(Side::Buy, 100, 0, 5));
        assert_eq!(p, Position::new());
    }
}

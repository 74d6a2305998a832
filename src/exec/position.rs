//! Position accounting for one symbol, built from [`Fill`]s: the change in
//! the account's balances this symbol's trading made, and the PnL, fees
//! and volume reports need.
//!
//! The strategy needs its inventory (to skew and to respect limits) and the
//! reports need PnL, fees and volume; both must come out identical in a
//! backtest and its rerun, so everything here is exact fixed-point integer
//! math (`i64` counts of 1e-8, products through `i128`), never `f64`.
//!
//! # Inventory per asset
//!
//! Binance charges a BUY's commission in the base asset it delivers (or in
//! BNB with BNB fee payment on) and a SELL's in the quote asset
//! (binance-spot-api-docs `faqs/commission_faq.md`; FACTS.md §5, the
//! execution report's `n`/`N`). So a buy of `q` with a base commission `f`
//! adds `q - f` to the account's base balance, not `q`. The position keeps
//! what each fill did to each balance:
//!
//! - [`Position::qty`] (= [`Position::base_delta`]): base received net of
//!   base commissions: a buy of `q` with base fee `f` adds `q - f`, a sell
//!   of `q` removes `q` (and a base fee on a sell, which Binance does not
//!   charge, would remove `q + f`). Signed: long > 0. This is what the
//!   account's base balance moved by, and what
//!   [`crate::exec::inventory::BalanceCheck`] compares with it;
//! - [`Position::quote_delta`]: quote paid (buys, `notional(price, qty)`
//!   rounded toward zero) and received (sells), less quote commissions;
//! - [`Position::bnb_delta`]: minus the BNB commissions;
//! - [`Position::fees_by_asset`]: commissions per asset kind, in that
//!   asset's units (other assets are summed unpriced).
//!
//! # PnL (all quote asset, 1e-8)
//!
//! Exact identities, for any mark (tested with proptest):
//!
//! - **net** [`Position::pnl`]`(mark)` = `quote_delta + base_delta x mark +
//!   bnb_delta x bnb_price` ([`Position::equity_change`]): the account's
//!   equity change from its balances. `x` is [`notional`] (rounded toward
//!   zero); the BNB term is 0 while no BNB price is known;
//! - **fee value** [`Position::fees`] = quote fees + base fees valued at
//!   their own fill's price (rounded toward zero, per fill) + BNB fees x
//!   the BNB price ([`Position::set_bnb_price`]: the last BNB/quote mid, or
//!   `[live] bnb_price`, with its [`BnbPriceSource`] for reports; 0 while
//!   none is known, see
//!   [`Position::has_unpriced_fees`]); other assets' fees are not priced;
//! - **gross** [`Position::gross`]`(mark)` = net + fee value
//!   = [`Position::realized`] + [`Position::unrealized`]`(mark)`.
//!
//! The realized/unrealized split is average cost, kept as the exact cost
//! basis of the open position ([`Position::open_cost`], signed like the
//! position) rather than as a rounded price, so the identities hold to the
//! last 1e-8:
//! - a fill's *gross cash* is its notional (paid: negative, received:
//!   positive) plus the value of a base fee at the fill's price: a buy of
//!   `q` at `p` with base fee `f` is a buy of `q - f` costing `p (q - f)`
//!   plus a fee worth `p f`;
//! - opening or adding: the gross cash goes into the cost basis;
//! - reducing: the closed part (`min(|fill|, |position|)`) takes its share
//!   of the cost basis and of the fill's gross cash (pro rata, rounded half
//!   away from zero); realized += cash share - cost share; a flip opens the
//!   rest at the rest of the cash; reaching flat folds any rounding residue
//!   of the cost basis into realized, so flat means unrealized = 0;
//! - unrealized(mark) = `mark x qty - open_cost`;
//! - [`Position::avg_entry`] = `|open_cost| / |qty|`, rounded half away
//!   from zero to 1e-8 (reporting only; nothing is computed from it).

use crate::exec::{FeeAsset, Fill, Side};
use crate::hot::fixed::{notional, Price, Qty, SCALE};

/// Commissions paid, per asset kind, each in its own asset's units (1e-8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FeesByAsset {
    /// Quote-asset commissions (SELLs; every paper/backtest fill).
    pub quote: i64,
    /// Base-asset commissions (live BUYs without BNB fee payment), in base.
    pub base: i64,
    /// `base` valued at each fill's own price, quote asset.
    pub base_value: i64,
    /// BNB commissions (BNB fee payment on), in BNB.
    pub bnb: i64,
    /// Commissions in any other asset, summed as they came (unpriced).
    pub other: i64,
}

/// Where the BNB price that values BNB commissions came from (reports
/// name it beside the price).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BnbPriceSource {
    /// The last BNB/quote mid the bot saw (e.g. BNBUSDT's for a USDT
    /// symbol).
    Mid,
    /// `[live] bnb_price`, until a mid is known.
    Config,
}

impl BnbPriceSource {
    /// `mid` or `config` (the journal's `pnl.bnb_price_source`).
    pub fn as_str(self) -> &'static str {
        match self {
            BnbPriceSource::Mid => "mid",
            BnbPriceSource::Config => "config",
        }
    }
}

/// The price of 1 BNB in the symbol's quote asset, and where it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BnbPrice {
    pub price: Price,
    pub source: BnbPriceSource,
}

/// One symbol's position, PnL and trading totals. See the module docs for
/// the conventions and identities.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Position {
    /// Base balance change, net of base commissions (long > 0).
    qty: i64,
    /// Cost basis of the open position, quote: what it cost (long, > 0) or
    /// minus what it brought in (short, < 0); 0 when flat.
    cost: i64,
    /// Realized PnL, quote asset, before fees.
    realized: i64,
    /// Quote balance change: notionals and quote commissions.
    quote: i64,
    /// Commissions per asset.
    fees: FeesByAsset,
    /// Price of one BNB in the quote asset, for valuing BNB commissions.
    bnb_price: Option<BnbPrice>,
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
        let value = notional(price, q);
        let (mut delta, paid) = match f.side {
            Side::Buy => (q as i128, -(value as i128)),
            Side::Sell => (-(q as i128), value as i128),
        };
        let mut quote_change = paid;
        // The fill's gross cash: its notional, plus the value of a base
        // commission (which the balance pays in base, not quote).
        let mut cash = paid;
        match f.fee_asset {
            FeeAsset::Quote => {
                quote_change -= f.fee as i128;
                self.fees.quote = self.fees.quote.saturating_add(f.fee);
            }
            FeeAsset::Base => {
                delta -= f.fee as i128;
                let v = notional(price, f.fee);
                cash += v as i128;
                self.fees.base = self.fees.base.saturating_add(f.fee);
                self.fees.base_value = self.fees.base_value.saturating_add(v);
            }
            FeeAsset::Bnb => self.fees.bnb = self.fees.bnb.saturating_add(f.fee),
            FeeAsset::Other => self.fees.other = self.fees.other.saturating_add(f.fee),
        }

        self.fills += 1;
        self.volume = self.volume.saturating_add(value.abs());
        self.quote = clamp(self.quote as i128 + quote_change);

        let old = self.qty as i128;
        let mut cost = self.cost as i128;
        let mut realized = self.realized as i128;
        if delta == 0 || old == 0 || (old > 0) == (delta > 0) {
            // Opening or adding (or a fill that moved no base): its cash
            // goes into the cost basis.
            cost -= cash;
        } else {
            // Reducing, closing or flipping: the closed part realizes.
            let closed = delta.abs().min(old.abs());
            let cost_share = div_round(cost * closed, old.abs());
            let cash_share = div_round(cash * closed, delta.abs());
            realized += cash_share - cost_share;
            // What is left of the cost basis, plus what a flip opened.
            cost = cost - cost_share - (cash - cash_share);
        }
        let new = old + delta;
        if new == 0 {
            // Flat: nothing is open, so any residue of rounding is realized.
            realized -= cost;
            cost = 0;
        }
        self.qty = clamp(new);
        self.cost = clamp(cost);
        self.realized = clamp(realized);
        self.max_abs = self.max_abs.max(self.qty.saturating_abs());
    }

    /// Signed base position (long > 0): base received net of base
    /// commissions, i.e. the change in the account's base balance.
    pub fn qty(&self) -> Qty {
        Qty(self.qty)
    }

    /// The change in the account's base balance these fills made (the
    /// same number as [`Position::qty`]).
    pub fn base_delta(&self) -> Qty {
        Qty(self.qty)
    }

    /// The change in the account's quote balance: notionals paid and
    /// received, less quote commissions, 1e-8 units.
    pub fn quote_delta(&self) -> i64 {
        self.quote
    }

    /// The change in the account's BNB balance: minus the BNB commissions
    /// (0 on a symbol where BNB is the base or quote: those count there).
    pub fn bnb_delta(&self) -> i64 {
        self.fees.bnb.saturating_neg()
    }

    /// Average entry price of the open position, `|open cost| / |qty|`
    /// rounded half away from zero; 0 when flat.
    pub fn avg_entry(&self) -> Price {
        if self.qty == 0 {
            return Price::ZERO;
        }
        Price(clamp(div_round(self.cost.unsigned_abs() as i128 * SCALE as i128, self.qty.unsigned_abs() as i128)))
    }

    /// Cost basis of the open position, quote asset, signed like the
    /// position (a short's is minus what selling it brought in).
    pub fn open_cost(&self) -> i64 {
        self.cost
    }

    /// Realized PnL before fees, quote asset, 1e-8 units (average cost; see
    /// the module docs).
    pub fn realized(&self) -> i64 {
        self.realized
    }

    /// Value of the commissions paid, quote asset, 1e-8 units: quote fees,
    /// base fees at their fills' prices, BNB fees at the current BNB price
    /// (0 while none is known). Other assets' fees are not included.
    pub fn fees(&self) -> i64 {
        self.fees.quote.saturating_add(self.fees.base_value).saturating_add(self.bnb_fee_value())
    }

    /// Commissions per asset kind, each in its own units.
    pub fn fees_by_asset(&self) -> FeesByAsset {
        self.fees
    }

    /// BNB commissions at the current BNB price, quote asset (0 while no
    /// price is known).
    pub fn bnb_fee_value(&self) -> i64 {
        self.bnb_price.map_or(0, |b| notional(b.price.0, self.fees.bnb))
    }

    /// The price of one BNB in this symbol's quote asset used to value BNB
    /// commissions: the last BNB/quote mid the caller has, or the configured
    /// `[live] bnb_price`. `None` (or a price not above zero) leaves BNB
    /// fees unpriced (valued 0).
    pub fn set_bnb_price(&mut self, price: Option<BnbPrice>) {
        self.bnb_price = price.filter(|b| b.price.0 > 0);
    }

    /// The BNB price [`Position::fees`] uses now, and its source.
    pub fn bnb_price(&self) -> Option<BnbPrice> {
        self.bnb_price
    }

    /// True when some commissions are left out of [`Position::fees`]: BNB
    /// fees with no BNB price, or fees in another asset. PnL then
    /// overstates by their value; reports should say so.
    pub fn has_unpriced_fees(&self) -> bool {
        self.fees.other != 0 || (self.fees.bnb != 0 && self.bnb_price.is_none())
    }

    /// Traded quote notional, sum of |price * qty|, 1e-8 units.
    pub fn volume(&self) -> i64 {
        self.volume
    }

    /// Number of fills applied.
    pub fn fills(&self) -> u64 {
        self.fills
    }

    /// Largest absolute position ([`Position::qty`]) reached.
    pub fn max_abs(&self) -> Qty {
        Qty(self.max_abs)
    }

    /// Open position marked to `mid`: `mid x qty - open cost`, so that a
    /// short gains when the mid falls. 0 when flat.
    pub fn unrealized(&self, mid: Price) -> i64 {
        if self.qty == 0 {
            return 0;
        }
        clamp(notional(mid.0, self.qty) as i128 - self.cost as i128)
    }

    /// PnL before fees: realized + unrealized = net + fee value.
    pub fn gross(&self, mid: Price) -> i64 {
        self.realized.saturating_add(self.unrealized(mid))
    }

    /// Net PnL marked to `mid`: realized + unrealized - fees, which equals
    /// [`Position::equity_change`] (the balances' view) exactly.
    pub fn pnl(&self, mid: Price) -> i64 {
        self.gross(mid).saturating_sub(self.fees())
    }

    /// The account's equity change from its balance changes, marked to
    /// `mid`: `quote_delta + base_delta x mid + bnb_delta x bnb_price`.
    pub fn equity_change(&self, mid: Price) -> i64 {
        let bnb = self.bnb_price.map_or(0, |b| notional(b.price.0, self.bnb_delta()));
        clamp(self.quote as i128 + notional(mid.0, self.qty) as i128 + bnb as i128)
    }
}

/// Saturates an `i128` into `i64`.
fn clamp(v: i128) -> i64 {
    v.clamp(i64::MIN as i128, i64::MAX as i128) as i64
}

/// `num / den` for `den > 0`, rounded half away from zero.
fn div_round(num: i128, den: i128) -> i128 {
    if den <= 0 {
        return 0;
    }
    let half = den / 2;
    if num >= 0 {
        (num + half) / den
    } else {
        (num - half) / den
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hot::fixed::SCALE;
    use crate::hot::msg::Symbol;

    fn fill(side: Side, price: i64, qty: i64, fee: i64) -> Fill {
        fill_in(side, price, qty, fee, FeeAsset::Quote)
    }

    fn fill_in(side: Side, price: i64, qty: i64, fee: i64, fee_asset: FeeAsset) -> Fill {
        Fill {
            symbol: Symbol::new(b"BTCUSDT"),
            order_id: 1,
            side,
            price: Price(price * SCALE),
            qty: Qty(qty * SCALE / 100),
            fee,
            fee_asset,
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
    fn division_rounds_half_away_from_zero() {
        assert_eq!(div_round(3, 2), 2);
        assert_eq!(div_round(-3, 2), -2);
        assert_eq!(div_round(4, 3), 1);
        assert_eq!(div_round(5, 0), 0);
        // 1 @ 0.00000001 + 1 @ 0.00000002: cost 0.00000003 for 2 units, an
        // average of 1.5e-8 that rounds half up to 2e-8.
        let mut p = Position::new();
        p.on_fill(&Fill { price: Price(1), qty: Qty(SCALE), ..fill(Side::Buy, 0, 0, 0) });
        p.on_fill(&Fill { price: Price(2), qty: Qty(SCALE), ..fill(Side::Buy, 0, 0, 0) });
        assert_eq!(p.open_cost(), 3);
        assert_eq!(p.avg_entry(), Price(2));
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

    /// The bug this accounting fixes: a day of buys with base commissions
    /// left the position larger than the account's base balance.
    #[test]
    fn base_commission_on_a_buy_is_not_inventory() {
        let mut p = Position::new();
        // Buy 1 @ 100, fee 0.001 BTC (0.1%): the account got 0.999 BTC.
        p.on_fill(&fill_in(Side::Buy, 100, 100, 100_000, FeeAsset::Base));
        assert_eq!(p.qty(), Qty(99_900_000));
        assert_eq!(p.base_delta(), p.qty());
        assert_eq!(p.quote_delta(), -money(100));
        assert_eq!(p.fees_by_asset().base, 100_000);
        // Valued at the fill's price: 0.001 x 100 = 0.1 USDT.
        assert_eq!(p.fees(), 10_000_000);
        assert_eq!(p.avg_entry(), Price(100 * SCALE));
        // Marked at 100: net -0.1 (the fee), gross 0.
        assert_eq!(p.pnl(Price(100 * SCALE)), -10_000_000);
        assert_eq!(p.gross(Price(100 * SCALE)), 0);
        // Sell what the account holds at 110, quote fee 0.10989.
        p.on_fill(&Fill { qty: Qty(99_900_000), ..fill_in(Side::Sell, 110, 0, 10_989_000, FeeAsset::Quote) });
        assert_eq!(p.qty(), Qty::ZERO);
        assert_eq!(p.realized(), 999_000_000);
        assert_eq!(p.quote_delta(), money(100) * 999 / 1000 + money(10) * 999 / 1000 - money(100) - 10_989_000);
        assert_eq!(p.pnl(Price(1)), p.quote_delta());
    }

    #[test]
    fn bnb_commissions_are_priced_at_the_bnb_price() {
        let mut p = Position::new();
        p.on_fill(&fill_in(Side::Buy, 100, 100, 50_000, FeeAsset::Bnb));
        assert_eq!(p.qty(), qty(100));
        assert_eq!(p.bnb_delta(), -50_000);
        assert!(p.has_unpriced_fees());
        assert_eq!(p.fees(), 0);
        p.set_bnb_price(Some(BnbPrice { price: Price(600 * SCALE), source: BnbPriceSource::Config }));
        assert_eq!(p.bnb_price().map(|b| b.source.as_str()), Some("config"));
        assert!(!p.has_unpriced_fees());
        // 0.0005 BNB x 600 = 0.3.
        assert_eq!(p.fees(), 30_000_000);
        assert_eq!(p.pnl(Price(100 * SCALE)), -30_000_000);
        assert_eq!(p.equity_change(Price(100 * SCALE)), -30_000_000);
        p.on_fill(&fill_in(Side::Buy, 100, 100, 7, FeeAsset::Other));
        assert!(p.has_unpriced_fees());
        assert_eq!(p.fees_by_asset().other, 7);
    }

    #[test]
    fn classify_prefers_base_and_quote_over_bnb() {
        assert_eq!(FeeAsset::classify("BTC", "BTC", "USDT"), FeeAsset::Base);
        assert_eq!(FeeAsset::classify("USDT", "BTC", "USDT"), FeeAsset::Quote);
        assert_eq!(FeeAsset::classify("BNB", "BTC", "USDT"), FeeAsset::Bnb);
        assert_eq!(FeeAsset::classify("BNB", "BNB", "USDT"), FeeAsset::Base);
        assert_eq!(FeeAsset::classify("BNB", "ETH", "BNB"), FeeAsset::Quote);
        assert_eq!(FeeAsset::classify("XYZ", "BTC", "USDT"), FeeAsset::Other);
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        /// One fill: side, price (1e-8, 0.01 to 1e6), qty (1e-8, up to
        /// 100), fee kind and fee (up to ~1% of the qty or notional).
        fn arb_fill() -> impl Strategy<Value = Fill> {
            (any::<bool>(), 1_000_000i64..100_000_000_000_000, 1i64..10_000_000_000, 0usize..4, 0i64..1000).prop_map(
                |(buy, price, q, kind, permille)| {
                    let side = if buy { Side::Buy } else { Side::Sell };
                    let fee_asset = [FeeAsset::Quote, FeeAsset::Base, FeeAsset::Bnb, FeeAsset::Other][kind];
                    let fee = match fee_asset {
                        FeeAsset::Quote => notional(price, q) / 100_000 * permille / 10,
                        _ => q / 100_000 * permille / 10,
                    };
                    Fill { price: Price(price), qty: Qty(q), fee, fee_asset, ..fill(side, 0, 0, 0) }
                },
            )
        }

        proptest! {
            /// net = equity from balances; gross = net + fee value =
            /// realized + unrealized; flat means unrealized 0.
            #[test]
            fn pnl_is_equity_from_balances(
                fills in proptest::collection::vec(arb_fill(), 1..40),
                mark in 1_000_000i64..100_000_000_000_000,
                bnb in proptest::option::of(1_000_000i64..10_000_000_000_000),
            ) {
                let mut p = Position::new();
                p.set_bnb_price(bnb.map(|b| BnbPrice { price: Price(b), source: BnbPriceSource::Mid }));
                // An independent ledger of the balances.
                let (mut base, mut quote, mut bnb_bal) = (0i128, 0i128, 0i128);
                for f in &fills {
                    p.on_fill(f);
                    let v = notional(f.price.0, f.qty.0) as i128;
                    let (db, dq) = if f.side == Side::Buy { (f.qty.0 as i128, -v) } else { (-(f.qty.0 as i128), v) };
                    base += db;
                    quote += dq;
                    match f.fee_asset {
                        FeeAsset::Quote => quote -= f.fee as i128,
                        FeeAsset::Base => base -= f.fee as i128,
                        FeeAsset::Bnb => bnb_bal -= f.fee as i128,
                        FeeAsset::Other => {}
                    }
                }
                prop_assert_eq!(p.qty().0 as i128, base);
                prop_assert_eq!(p.quote_delta() as i128, quote);
                prop_assert_eq!(p.bnb_delta() as i128, bnb_bal);
                let bnb_value = bnb.map_or(0, |b| notional(b, bnb_bal as i64));
                let equity = quote + notional(mark, base as i64) as i128 + bnb_value as i128;
                let m = Price(mark);
                prop_assert_eq!(p.pnl(m) as i128, equity);
                prop_assert_eq!(p.equity_change(m) as i128, equity);
                prop_assert_eq!(p.gross(m), p.pnl(m) + p.fees());
                prop_assert_eq!(p.gross(m), p.realized() + p.unrealized(m));
                let fb = p.fees_by_asset();
                let expect_fees = fb.quote + fb.base_value + bnb.map_or(0, |b| notional(b, fb.bnb));
                prop_assert_eq!(p.fees(), expect_fees);
                if p.qty().is_zero() {
                    prop_assert_eq!(p.unrealized(m), 0);
                    prop_assert_eq!(p.open_cost(), 0);
                }
                // Realized does not depend on the mark.
                prop_assert_eq!(p.gross(Price(mark + 1)) - p.unrealized(Price(mark + 1)), p.realized());
            }

            /// With quote fees only and whole prices, a round trip realizes
            /// exactly the price difference times the quantity.
            #[test]
            fn round_trip_realizes_the_spread(
                buy in 1i64..100_000, sell in 1i64..100_000, q in 1i64..1_000,
            ) {
                let mut p = Position::new();
                p.on_fill(&fill(Side::Buy, buy, q, 0));
                p.on_fill(&fill(Side::Sell, sell, q, 0));
                prop_assert_eq!(p.realized(), notional((sell - buy) * SCALE, q * SCALE / 100));
                prop_assert_eq!(p.qty(), Qty::ZERO);
            }
        }
    }
}

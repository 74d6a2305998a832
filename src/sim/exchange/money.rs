//! Balances: what an order locks, what a fill moves, what commission costs.
//!
//! faqs/commission_faq.md §How is the commission calculated?: commission is
//! the received amount times the rate; "For orders on the BUY side, the
//! received amount would be quantity", on the SELL side the notional. It is
//! deducted from the received asset, unless BNB pays it: "the standard
//! commission will be reduced based on the discount. First the standard
//! commission ... converted into BNB based on the exchange rate ...
//! `(Standard commission * BNB exchange rate) * discount`", and "If you do
//! not have enough BNB to pay the discounted commission, the full
//! commission will be taken out of your received amount". This simulator
//! implements that formula literally: BNB paid = commission's value in the
//! quote asset / BNB price x discount, rounded toward zero to 1e-8. (The
//! FAQ's example multiplies by `discount` = 0.25, i.e. one pays a quarter;
//! Binance's site calls BNB burn "25% off". The FAQ's formula is what is
//! modelled, and `--bnb-discount` sets the factor.)
//!
//! Locks (rest-api.md §New order: a BUY spends quote, a SELL base): a BUY
//! locks `price x available qty` rounded up, a SELL the available base
//! quantity; nothing extra for fees, since fees come out of what is
//! received.

use std::collections::BTreeMap;

use crate::exec::Side;
use crate::hot::fixed::{mul_rate, notional, notional_ceil, SCALE};
use crate::sim::exchange::rules::SymbolSpec;
use crate::sim::exchange::OrderState;

/// Commission paid in BNB (BNB burn on), for every account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BnbFees {
    /// One BNB in the symbol's quote asset (1e-8), e.g. 600 USDT.
    pub price: i64,
    /// The factor the BNB amount is multiplied by (1e-8; 0.25 as in the FAQ).
    pub discount: i64,
}

pub(crate) type Balances = BTreeMap<String, (i64, i64)>;

/// What an order locks: (asset, amount) for `qty` available at `price`.
pub(crate) fn lock_for(m: &SymbolSpec, side: Side, price: i64, qty: i64) -> (&str, i64) {
    match side {
        Side::Buy => (m.quote.as_str(), notional_ceil(price, qty)),
        Side::Sell => (m.base.as_str(), qty),
    }
}

/// Moves between free and locked so the order locks exactly what its
/// available quantity needs (nothing once it is closed); the asset.
pub(crate) fn relock<'m>(balances: &mut Balances, m: &'m SymbolSpec, o: &mut OrderState) -> &'m str {
    let avail = if o.order.status.is_open() { o.order.available().max(0) } else { 0 };
    let (asset, want) = lock_for(m, o.order.side, o.order.price.0, avail);
    let back = o.locked - want;
    let b = balances.entry(asset.to_string()).or_insert((0, 0));
    b.0 += back;
    b.1 -= back;
    o.locked = want;
    asset
}

/// Moves the money of one fill of `qty` at the order's price: pays from
/// the order's lock (a maker) or from free (the fault's taker), credits the
/// received asset less commission; (commission, its asset).
pub(crate) fn settle_fill(
    balances: &mut Balances,
    m: &SymbolSpec,
    o: &mut OrderState,
    qty: i64,
    rate: i64,
    bnb: Option<&BnbFees>,
    from_lock: bool,
) -> (i64, String) {
    let price = o.order.price.0;
    let quote = notional(price, qty);
    // Received: (asset, amount); the standard commission is in it.
    let (paid_asset, paid, got_asset, got) = match o.order.side {
        Side::Buy => (&m.quote, quote, &m.base, qty),
        Side::Sell => (&m.base, qty, &m.quote, quote),
    };
    let commission = mul_rate(got, rate);
    // Its value in quote, for the BNB conversion.
    let value = if o.order.side == Side::Buy { notional(price, commission) } else { commission };
    let in_bnb = bnb.filter(|b| b.price > 0 && commission > 0).map(|b| {
        let bnb = (value as i128 * SCALE as i128 / b.price as i128) as i64;
        mul_rate(bnb, b.discount)
    });
    let p = balances.entry(paid_asset.clone()).or_insert((0, 0));
    if from_lock {
        p.1 -= paid;
        o.locked -= paid;
    } else {
        p.0 -= paid;
    }
    let bnb_free = balances.get("BNB").map_or(0, |b| b.0);
    let (fee, fee_asset) = match in_bnb {
        Some(f) if bnb_free >= f && got_asset != "BNB" => {
            balances.entry("BNB".into()).or_insert((0, 0)).0 -= f;
            balances.entry(got_asset.clone()).or_insert((0, 0)).0 += got;
            (f, "BNB".to_string())
        }
        _ => {
            balances.entry(got_asset.clone()).or_insert((0, 0)).0 += got - commission;
            (commission, got_asset.clone())
        }
    };
    (fee, fee_asset)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::binance::model::OrderStatus;
    use crate::hot::fixed::{Price, Qty};
    use crate::sim::exchange::SimOrder;

    fn order(side: Side, price: i64, qty: i64) -> OrderState {
        OrderState {
            order: SimOrder {
                symbol: "BTCUSDT".into(),
                order_id: 1,
                client_order_id: "x".into(),
                side,
                price: Price(price),
                orig_qty: Qty(qty),
                executed_qty: Qty(0),
                cum_quote: 0,
                status: OrderStatus::New,
                time_ms: 0,
                update_ms: 0,
                order_type: "LIMIT_MAKER",
                time_in_force: "GTC",
                stp_mode: "NONE",
                prevented_qty: Qty(0),
                prevented_match_id: None,
            },
            queue_ahead: 0,
            locked: 0,
        }
    }

    #[test]
    fn the_faq_example_sell_commission_and_bnb_discount() {
        // commission_faq.md: SELL 0.49975 BTC at 35000, rate 0.0000006:
        // 0.01049475 USDT; in BNB at 260 with discount 0.25: 0.000010091.
        let m = SymbolSpec::for_symbol("BTCUSDT", 0);
        let mut b = Balances::new();
        b.insert("BTC".into(), (49_975_000, 0));
        let mut o = order(Side::Sell, 35_000 * SCALE, 49_975_000);
        relock(&mut b, &m, &mut o);
        let (fee, asset) = settle_fill(&mut b, &m, &mut o, 49_975_000, 60, None, true);
        assert_eq!((fee, asset.as_str()), (1_049_475, "USDT"));
        let mut b = Balances::new();
        b.insert("BTC".into(), (49_975_000, 0));
        b.insert("BNB".into(), (SCALE, 0));
        let mut o = order(Side::Sell, 35_000 * SCALE, 49_975_000);
        relock(&mut b, &m, &mut o);
        let bnb = BnbFees { price: 260 * SCALE, discount: SCALE / 4 };
        let (fee, asset) = settle_fill(&mut b, &m, &mut o, 49_975_000, 60, Some(&bnb), true);
        assert_eq!((fee, asset.as_str()), (1_009, "BNB"));
        assert_eq!(b["USDT"].0, notional(35_000 * SCALE, 49_975_000));
        assert_eq!(b["BNB"].0, SCALE - 1_009);
    }

    #[test]
    fn a_buy_pays_commission_in_base_and_unlocks_exactly() {
        let m = SymbolSpec::for_symbol("BTCUSDT", 0);
        let mut b = Balances::new();
        b.insert("USDT".into(), (1000 * SCALE, 0));
        let mut o = order(Side::Buy, 30_000 * SCALE, 200_000);
        relock(&mut b, &m, &mut o);
        assert_eq!(b["USDT"], (940 * SCALE, 60 * SCALE));
        let (fee, asset) = settle_fill(&mut b, &m, &mut o, 100_000, 100_000, None, true);
        o.order.executed_qty = Qty(100_000);
        relock(&mut b, &m, &mut o);
        assert_eq!((fee, asset.as_str()), (100, "BTC"));
        assert_eq!(b["BTC"].0, 100_000 - 100);
        assert_eq!(b["USDT"], (940 * SCALE, 30 * SCALE));
    }
}

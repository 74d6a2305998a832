//! The allocator's own contract (module docs of `allocator.rs`): budgets per
//! symbol, the account's balances and limits across symbols. No exchange
//! behaviour is modelled here beyond spot's balance arithmetic (a buy locks
//! `price x qty` of quote, a sell locks `qty` of base; FACTS.md §4).

use super::*;
use crate::exec::FeeAsset;

const ONE: i64 = 100_000_000;

fn px(units: i64) -> Price {
    Price(units * ONE)
}

/// `hundredths` / 100 of a unit.
fn q(hundredths: i64) -> Qty {
    Qty(hundredths * ONE / 100)
}

fn lv(price: i64, hundredths: i64) -> Level {
    Level { price: px(price), qty: q(hundredths) }
}

fn budget(symbol: &str, base: &str, quote: &str, quote_budget: i64, base_budget: i64) -> SymbolBudget {
    SymbolBudget {
        symbol: Symbol::new(symbol.as_bytes()),
        base: base.into(),
        quote: quote.into(),
        quote_budget: quote_budget * ONE,
        base_budget: base_budget * ONE,
    }
}

fn balances(list: &[(&str, i64)]) -> Vec<(String, i64)> {
    list.iter().map(|(a, v)| (a.to_string(), v * ONE)).collect()
}

fn fill(side: Side, price: i64, hundredths: i64, time_ns: i64) -> Fill {
    Fill {
        symbol: Symbol::new(b"X"),
        order_id: 1,
        side,
        price: px(price),
        qty: q(hundredths),
        fee: 0,
        fee_asset: FeeAsset::Quote,
        time_ns,
        maker: true,
    }
}

/// Two USDT symbols with 1,000 USDT each, the account holding 2,000.
fn two_usdt() -> Allocator {
    Allocator::new(
        vec![budget("BTCUSDT", "BTC", "USDT", 1_000, 0), budget("ETHUSDT", "ETH", "USDT", 1_000, 0)],
        AccountLimits { balances: balances(&[("USDT", 2_000)]), ..Default::default() },
    )
}

#[test]
fn a_bid_beyond_its_symbols_budget_is_refused_though_the_account_could_pay() {
    let mut a = two_usdt();
    // 15 x 100 = 1,500 USDT: the account holds 2,000, the symbol 1,000.
    assert_eq!(a.admit(0, &[lv(100, 1_500)], &[], 0), Admitted { bids: 0, asks: 0 });
    assert_eq!(a.refused(0).get(Refusal::SymbolQuoteBudget), 1);
    assert_eq!(a.admit(0, &[lv(100, 1_000)], &[], 0), Admitted { bids: 1, asks: 0 });
    // The other symbol still has its whole budget.
    assert_eq!(a.admit(1, &[lv(100, 1_000)], &[], 0), Admitted { bids: 1, asks: 0 });
    assert_eq!(a.free("USDT"), 0);
}

#[test]
fn a_new_quote_replaces_the_symbols_old_one_in_the_sums() {
    let mut a = two_usdt();
    assert_eq!(a.admit(0, &[lv(100, 900)], &[], 0).bids, 1);
    assert_eq!(a.admit(0, &[lv(100, 900)], &[], 1).bids, 1, "the old bid is cancelled first");
    assert_eq!(a.budget_free(0).0, 100 * ONE);
    a.admit(0, &[], &[], 2);
    assert_eq!(a.budget_free(0).0, 1_000 * ONE, "a pull frees the budget");
}

#[test]
fn an_ask_needs_base_the_symbol_bought_or_was_given() {
    let mut a = two_usdt();
    assert_eq!(a.admit(0, &[], &[lv(100, 1)], 0).asks, 0, "no base budget and nothing bought");
    assert_eq!(a.refused(0).get(Refusal::SymbolBaseBudget), 1);
    a.admit(0, &[lv(100, 5)], &[], 1);
    a.on_fill(0, &fill(Side::Buy, 100, 5, 2));
    assert_eq!(a.admit(0, &[], &[lv(101, 5)], 3).asks, 1);
    assert_eq!(a.admit(0, &[], &[lv(101, 6)], 4).asks, 0, "only what was bought");
}

#[test]
fn fills_turn_locked_quote_into_base_and_back() {
    let mut a = two_usdt();
    a.admit(0, &[lv(100, 500)], &[], 0);
    a.on_fill(0, &fill(Side::Buy, 100, 200, 1));
    // 200 USDT spent, 300 still locked by what is left of the bid.
    assert_eq!(a.budget_free(0), (500 * ONE, 2 * ONE));
    assert_eq!(a.free("USDT"), 1_500 * ONE);
    a.admit(0, &[], &[lv(110, 200)], 2);
    a.on_fill(0, &fill(Side::Sell, 110, 200, 3));
    assert_eq!(a.budget_free(0), (1_020 * ONE, 0), "the profit is the symbol's to use");
    assert_eq!(a.free("USDT"), 2_020 * ONE);
}

#[test]
fn the_accounts_free_balance_binds_when_budgets_overlap_it() {
    let mut a = Allocator::new(
        vec![budget("BTCUSDT", "BTC", "USDT", 1_000, 0), budget("ETHUSDT", "ETH", "USDT", 1_000, 0)],
        AccountLimits { balances: balances(&[("USDT", 100)]), ..Default::default() },
    );
    assert_eq!(a.admit(0, &[lv(60, 100)], &[], 0).bids, 1);
    assert_eq!(a.admit(1, &[lv(60, 100)], &[], 0).bids, 0);
    assert_eq!(a.refused(1).get(Refusal::AccountBalance), 1);
}

#[test]
fn symbols_sharing_a_base_asset_share_its_inventory_limit() {
    let mut a = Allocator::new(
        vec![budget("BTCUSDT", "BTC", "USDT", 1_000_000, 0), budget("BTCFDUSD", "BTC", "FDUSD", 1_000_000, 0)],
        AccountLimits {
            balances: balances(&[("USDT", 1_000_000), ("FDUSD", 1_000_000)]),
            max_inventory: balances(&[("BTC", 1)]),
            ..Default::default()
        },
    );
    a.admit(0, &[lv(100, 80)], &[], 0);
    a.on_fill(0, &fill(Side::Buy, 100, 80, 1));
    a.admit(0, &[], &[], 2);
    assert_eq!(a.admit(1, &[lv(100, 30)], &[], 3).bids, 0, "0.8 held on BTCUSDT + 0.3 > 1 BTC");
    assert_eq!(a.refused(1).get(Refusal::Inventory), 1);
    assert_eq!(a.admit(1, &[lv(100, 20)], &[], 4).bids, 1);
    // Working bids count too: BTCUSDT may not add another 0.1.
    assert_eq!(a.admit(0, &[lv(100, 10)], &[], 5).bids, 0);
}

#[test]
fn open_orders_are_counted_across_symbols_and_ladders_stay_contiguous() {
    let mut a = two_usdt();
    a.limits.max_open_orders = Some(3);
    a.admit(1, &[lv(1, 100)], &[], 0);
    // Best bid, best ask, second bid...: the ask has no base, so it and
    // its deeper level are refused for that; the third bid would be the
    // fourth order.
    a.on_fill(0, &fill(Side::Buy, 100, 1, 0));
    let got = a.admit(0, &[lv(99, 1), lv(98, 1), lv(97, 1)], &[lv(101, 1), lv(102, 1)], 1);
    assert_eq!(got, Admitted { bids: 1, asks: 1 });
    let r = a.refused(0);
    assert_eq!((r.get(Refusal::OpenOrders), r.get(Refusal::SymbolBaseBudget)), (2, 1));
}

#[test]
fn a_refused_level_takes_the_deeper_ones_of_its_side_with_it() {
    let mut a = two_usdt();
    // 400 + 700 > 1,000; the third (100) would fit alone but is deeper.
    let got = a.admit(0, &[lv(100, 400), lv(99, 707), lv(98, 100)], &[], 0);
    assert_eq!(got.bids, 1);
    assert_eq!(a.refused(0).get(Refusal::SymbolQuoteBudget), 2);
}

#[test]
fn gross_notional_counts_positions_at_mid_and_working_orders_per_quote_asset() {
    let mut a = two_usdt();
    a.limits.max_gross_notional = balances(&[("USDT", 500)]);
    a.admit(0, &[lv(100, 300)], &[], 0);
    a.on_fill(0, &fill(Side::Buy, 100, 300, 1));
    a.mark(0, px(100), 1);
    assert_eq!(a.admit(1, &[lv(100, 250)], &[], 2).bids, 0, "300 held + 250 > 500");
    assert_eq!(a.refused(1).get(Refusal::GrossNotional), 1);
    assert_eq!(a.admit(1, &[lv(100, 200)], &[], 3).bids, 1);
}

#[test]
fn the_days_loss_across_symbols_stops_every_symbol_and_stays_stopped() {
    let mut a = two_usdt();
    a.limits.daily_loss_limit = balances(&[("USDT", 50)]);
    a.mark(0, px(100), 0);
    a.mark(1, px(100), 0);
    for d in 0..2 {
        a.admit(d, &[lv(100, 300)], &[], 1);
        a.on_fill(d, &fill(Side::Buy, 100, 300, 2));
    }
    a.mark(0, px(92), 3);
    assert!(a.killed().is_none(), "-24 USDT is within the limit");
    a.mark(1, px(91), 4);
    let kill = a.killed().cloned().expect("-24 - 27 = -51 USDT");
    assert_eq!((kill.asset.as_str(), kill.pnl, kill.time_ns), ("USDT", -51 * ONE, 4));
    assert_eq!(a.admit(1, &[lv(90, 1)], &[], 5), Admitted { bids: 0, asks: 0 });
    assert_eq!(a.refused(1).get(Refusal::Killed), 1);
    a.mark(1, px(100), DAY_NS + 1);
    assert!(a.killed().is_some(), "latched across the day's end");
}

#[test]
fn the_daily_loss_counts_from_the_start_of_the_utc_day() {
    let mut a = two_usdt();
    a.limits.daily_loss_limit = balances(&[("USDT", 50)]);
    a.admit(0, &[lv(100, 300)], &[], 0);
    a.on_fill(0, &fill(Side::Buy, 100, 300, 1));
    assert!(a.killed().is_none(), "no mid yet: the position counts at its cost");
    a.mark(0, px(85), 2);
    assert_eq!(a.day_pnl("USDT"), -45 * ONE);
    assert!(a.killed().is_none());
    // The next day starts at -45: another -45 is within the limit, -51 not.
    a.mark(0, px(85), DAY_NS + 1);
    a.mark(0, px(70), DAY_NS + 2);
    assert_eq!(a.day_pnl("USDT"), -45 * ONE);
    assert!(a.killed().is_none());
    a.mark(0, px(68), DAY_NS + 3);
    assert_eq!(a.killed().map(|k| k.pnl), Some(-51 * ONE));
}

/// Random quotes and fills across three symbols that share USDT and BTC:
/// no symbol's working orders ever exceed its own budget, and no asset of
/// the account goes below zero.
#[test]
fn no_symbol_ever_uses_another_symbols_budget() {
    let mut a = Allocator::new(
        vec![
            budget("BTCUSDT", "BTC", "USDT", 3_000, 1),
            budget("BTCFDUSD", "BTC", "FDUSD", 2_000, 1),
            budget("ETHUSDT", "ETH", "USDT", 1_000, 0),
        ],
        AccountLimits { balances: balances(&[("USDT", 4_000), ("FDUSD", 2_000), ("BTC", 2)]), ..Default::default() },
    );
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = |n: i64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % n as u64) as i64
    };
    for t in 0..20_000i64 {
        let desk = next(3) as usize;
        if next(3) == 0 {
            // A fill of part of a working level.
            let d = &a.desks[desk];
            let side = if next(2) == 0 { Side::Buy } else { Side::Sell };
            if let Some(l) = d.working(side).first().copied().filter(|l| l.qty.0 > 0) {
                let part = Qty(1 + next(l.qty.0));
                a.on_fill(desk, &Fill { side, price: l.price, qty: part, time_ns: t, ..fill(side, 0, 0, t) });
            }
        } else {
            let mid = 50 + next(100);
            let bids: Vec<Level> = (0..next(4)).map(|i| lv(mid - 1 - i, 1 + next(2_000))).collect();
            let asks: Vec<Level> = (0..next(4)).map(|i| lv(mid + 1 + i, 1 + next(150))).collect();
            a.admit(desk, &bids, &asks, t);
        }
        for d in 0..3 {
            let (quote, base) = a.budget_free(d);
            assert!(quote >= 0 && base >= 0, "step {t}: desk {d} is over its budget: {quote} quote, {base} base free");
        }
        for asset in ["USDT", "FDUSD", "BTC", "ETH"] {
            assert!(a.free(asset) >= 0, "step {t}: the account's {asset} is overdrawn");
        }
    }
    assert!(a.desks.iter().all(|d| d.refused.total() > 0 && d.position.fills() > 0), "the test made budgets bind");
}

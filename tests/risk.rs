//! Pre-trade checks at their boundaries (exactly at the limit passes, one
//! 1e-8 step past refuses, and the refusal names the numbers), exact 8-decimal
//! arithmetic checked against rust_decimal, the daily loss reset at UTC
//! midnight, and the kill switch's windows.

use mmbot::exec::risk::{
    Balance, Balances, KillConfig, KillReason, KillSwitch, OrderRequest, Refusal, RefusalReason, RiskCheck,
    RiskConfigError, RiskLimits,
};
use mmbot::exec::Side;
use mmbot::hot::fixed::{Price, Qty, SCALE};
use rust_decimal::prelude::*;

const DAY_NS: i64 = 86_400_000_000_000;
/// 2026-01-01 00:00:00 UTC plus 12 hours.
const NOON: i64 = 20_454 * DAY_NS + DAY_NS / 2;
/// 0.1%.
const FEE: i64 = 100_000;

fn px(s: &str) -> Price {
    s.parse().unwrap()
}

/// Signed decimals (the exchange parser takes unsigned ones only).
fn signed(s: &str) -> i64 {
    match s.strip_prefix('-') {
        Some(abs) => -abs.parse::<Price>().unwrap().0,
        None => s.parse::<Price>().unwrap().0,
    }
}

fn q(s: &str) -> Qty {
    Qty(signed(s))
}

fn money(s: &str) -> i64 {
    signed(s)
}

fn limits() -> RiskLimits {
    RiskLimits {
        max_position: q("0.01"),
        max_order_notional: money("1000"),
        max_open_orders: 3,
        daily_loss_limit: money("50"),
    }
}

/// Checks with plenty of both assets, flat, no open orders.
fn rich(limits: RiskLimits) -> RiskCheck {
    let mut r = RiskCheck::new(limits, "BTC", "USDT", FEE, NOON).unwrap();
    r.set_balance("USDT", Balance { free: money("1000000"), locked: 0 });
    r.set_balance("BTC", Balance { free: money("100"), locked: 0 });
    r
}

fn buy(price: &str, qty: &str) -> OrderRequest {
    OrderRequest { side: Side::Buy, price: px(price), qty: q(qty), time_ns: NOON }
}

fn sell(price: &str, qty: &str) -> OrderRequest {
    OrderRequest { side: Side::Sell, price: px(price), qty: q(qty), time_ns: NOON }
}

/// The refusal, and its message containing every one of `words`.
fn refused(r: &mut RiskCheck, o: &OrderRequest, reason: RefusalReason, words: &[&str]) -> Refusal {
    let e = r.check(o).expect_err("passed");
    assert_eq!(e.reason(), reason, "{e}");
    let msg = e.to_string();
    for w in words {
        assert!(msg.contains(w), "{msg:?} does not name {w:?}");
    }
    e
}

/// A buy locks price x qty of quote, which is what Binance locks; its fee
/// is taken from the base (or BNB) received, so it needs no quote
/// (faqs/commission_faq.md). The old check demanded cost + fee and refused
/// buys the exchange would take.
#[test]
fn buy_needs_free_quote_for_price_times_qty_only() {
    let mut r = rich(limits());
    // 61837.63 x 0.01 = 618.3763; the 0.1% fee (0.00001 BTC) is not quote.
    let o = buy("61837.63", "0.01");
    r.set_balance("USDT", Balance { free: money("618.3763"), locked: money("5") });
    assert_eq!(r.check(&o), Ok(()));
    r.set_balance("USDT", Balance { free: money("618.37629999"), locked: money("5") });
    let e = refused(
        &mut r,
        &o,
        RefusalReason::QuoteBalance,
        &["locks 618.3763 USDT", "618.37629999 USDT is free", "add 0.00000001"],
    );
    assert!(!e.to_string().contains("fee"), "{e}");
    // The fee the buy will pay, in the base it receives: 0.1% of 0.01.
    assert_eq!(r.buy_fee_estimate(q("0.01")), q("0.00001"));
    // Locked quote does not pay for anything.
    r.set_balance("USDT", Balance { free: 0, locked: money("10000") });
    refused(&mut r, &o, RefusalReason::QuoteBalance, &["but 0 USDT is free"]);
}

#[test]
fn sell_needs_free_base_for_the_quantity() {
    let mut r = rich(limits());
    let o = sell("61837.63", "0.01");
    r.set_balance("BTC", Balance { free: money("0.01"), locked: 0 });
    assert_eq!(r.check(&o), Ok(()));
    r.set_balance("BTC", Balance { free: money("0.00999999"), locked: money("1") });
    refused(&mut r, &o, RefusalReason::BaseBalance, &["selling 0.01 BTC", "0.00999999 BTC is free", "add 0.00000001"]);
    // A sell needs no quote, a buy no base.
    let mut r = RiskCheck::new(limits(), "BTC", "USDT", FEE, NOON).unwrap();
    r.set_balance("BTC", Balance { free: money("1"), locked: 0 });
    assert_eq!(r.check(&o), Ok(()));
}

#[test]
fn position_after_the_fill_stays_within_the_max() {
    let mut r = rich(limits());
    r.set_position(q("0.005"));
    assert_eq!(r.check(&buy("100", "0.005")), Ok(()));
    refused(
        &mut r,
        &buy("100", "0.00500001"),
        RefusalReason::Position,
        &["0.005 after a Buy of 0.00500001 would be 0.01000001", "max_position 0.01"],
    );
    // Selling from a long down through flat to the short limit.
    assert_eq!(r.check(&sell("100", "0.015")), Ok(()));
    refused(&mut r, &sell("100", "0.01500001"), RefusalReason::Position, &["-0.01000001"]);
    // Short side mirrors it.
    r.set_position(q("-0.005"));
    assert_eq!(r.check(&sell("100", "0.005")), Ok(()));
    refused(&mut r, &sell("100", "0.00500001"), RefusalReason::Position, &["-0.01000001"]);
    // Already over the limit (limits lowered, or a fill raced): an order
    // that shrinks the position is the way back and passes; one that grows
    // it does not.
    r.set_position(q("0.02"));
    assert_eq!(r.check(&sell("100", "0.001")), Ok(()));
    refused(&mut r, &buy("100", "0.00000001"), RefusalReason::Position, &["0.02000001"]);
}

/// A ladder's levels can all fill in one sweep: what the side's other open
/// orders can still fill counts as filled, that side only.
#[test]
fn the_position_check_counts_the_sides_other_working_orders() {
    let mut r = rich(limits());
    r.set_position(q("0.002"));
    r.set_working(Side::Buy, q("0.004"));
    assert_eq!(r.check(&buy("100", "0.004")), Ok(()));
    refused(
        &mut r,
        &buy("100", "0.00400001"),
        RefusalReason::Position,
        &["0.002 after a Buy of 0.00400001 (with 0.004 already working on that side", "would be 0.01000001"],
    );
    // The asks are not the bids' business: a sell of the whole room passes.
    assert_eq!(r.check(&sell("100", "0.012")), Ok(()));
    r.set_working(Side::Sell, q("0.002"));
    refused(&mut r, &sell("100", "0.012"), RefusalReason::Position, &["would be -0.012"]);
}

#[test]
fn order_notional_within_the_max() {
    let mut r = rich(RiskLimits { max_position: q("1"), ..limits() });
    // 100000 x 0.01 = 1000 exactly.
    assert_eq!(r.check(&buy("100000", "0.01")), Ok(()));
    refused(
        &mut r,
        &buy("100000", "0.01000001"),
        RefusalReason::OrderNotional,
        &["100000 x 0.01000001 = 1000.001 USDT", "max_order_notional 1000 USDT"],
    );
    // A price 1e-8 higher adds 1e-10 to the notional, which truncates away;
    // 1e-6 higher is the first price that adds 1e-8.
    assert_eq!(r.check(&sell("100000.00000001", "0.01")), Ok(()));
    refused(&mut r, &sell("100000.000001", "0.01"), RefusalReason::OrderNotional, &["= 1000.00000001 USDT"]);
}

#[test]
fn open_orders_under_the_max() {
    let mut r = rich(limits());
    r.set_open_orders(2);
    assert_eq!(r.check(&buy("100", "0.001")), Ok(()));
    r.set_open_orders(3);
    refused(&mut r, &buy("100", "0.001"), RefusalReason::OpenOrders, &["3 already open", "max_open_orders is 3"]);
}

#[test]
fn daily_loss_within_the_limit_and_a_new_utc_day_resets_it() {
    let mut r = rich(limits());
    let o = buy("100", "0.001");
    r.on_pnl(NOON, 0, 0);
    // Realized -30, unrealized -20: a loss of exactly 50 passes.
    r.on_pnl(NOON + 1, money("-30"), money("-20"));
    assert_eq!(r.today_pnl(), money("-50"));
    assert_eq!(r.check(&o), Ok(()));
    assert!(!r.loss_limit_hit(NOON + 1));
    r.on_pnl(NOON + 2, money("-30"), money("-20.00000001"));
    refused(&mut r, &o, RefusalReason::DailyLoss, &["-50.00000001 USDT", "daily_loss_limit 50 USDT"]);
    assert!(r.loss_limit_hit(NOON + 2));
    // Gains put it back under.
    r.on_pnl(NOON + 3, money("-29"), money("-20"));
    assert_eq!(r.check(&o), Ok(()));
    r.on_pnl(NOON + 4, money("-30"), money("-21"));

    // Just before midnight: still today.
    let midnight = NOON - NOON % DAY_NS + DAY_NS;
    let at = |t: i64| OrderRequest { time_ns: t, ..o };
    refused(&mut r, &at(midnight - 1), RefusalReason::DailyLoss, &["-51"]);
    // Midnight: the day starts at the last PnL seen (-51), so today is 0.
    assert_eq!(r.check(&at(midnight)), Ok(()));
    assert_eq!(r.today_pnl(), 0);
    // The new day has its own 50.
    r.on_pnl(midnight + 10, money("-101"), 0);
    assert_eq!(r.check(&at(midnight + 10)), Ok(()));
    r.on_pnl(midnight + 11, money("-101.00000001"), 0);
    refused(&mut r, &at(midnight + 11), RefusalReason::DailyLoss, &["-50.00000001"]);
    // A clock stepping back does not bring yesterday back.
    refused(&mut r, &at(midnight - 5), RefusalReason::DailyLoss, &["-50.00000001"]);
}

#[test]
fn invalid_orders_and_counters_per_reason() {
    let mut r = rich(limits());
    refused(&mut r, &buy("100", "0"), RefusalReason::InvalidOrder, &["quantity 0"]);
    refused(&mut r, &sell("0", "1"), RefusalReason::InvalidOrder, &["price 0"]);
    assert_eq!(r.check(&buy("100", "0.001")), Ok(()));
    r.set_open_orders(3);
    refused(&mut r, &buy("100", "0.001"), RefusalReason::OpenOrders, &[]);
    let c = r.counters();
    assert_eq!(c.passed, 1);
    assert_eq!(c.refused(RefusalReason::InvalidOrder), 2);
    assert_eq!(c.refused(RefusalReason::OpenOrders), 1);
    assert_eq!(c.refused(RefusalReason::QuoteBalance), 0);
    assert_eq!(c.total_refused(), 3);
}

#[test]
fn impossible_limits_are_refused_at_start() {
    let bad = RiskLimits { daily_loss_limit: -1, ..limits() };
    let e = RiskCheck::new(bad, "BTC", "USDT", FEE, NOON).unwrap_err();
    assert_eq!(e, RiskConfigError::Negative { field: "daily_loss_limit", value: "-0.00000001".into() });
    assert!(RiskCheck::new(limits(), "BTC", "USDT", -1, NOON).is_err());
    assert!(RiskCheck::new(limits(), "", "USDT", FEE, NOON).is_err());
}

/// `price * qty`, exactly, rounded up to 8 decimals, by rust_decimal: what
/// the quote-balance check must demand (the fee is not quote).
fn needed_by_decimal(price: &str, qty: &str) -> i64 {
    let d = |s: &str| Decimal::from_str(s).unwrap();
    let up = |v: Decimal| v.round_dp_with_strategy(8, RoundingStrategy::AwayFromZero);
    let cost = up(d(price) * d(qty));
    (cost * Decimal::from(SCALE)).to_i64().unwrap()
}

#[test]
fn buy_cost_is_exact_at_8_decimals_and_rounds_up() {
    for (price, qty) in [
        ("1.23456789", "0.87654321"),
        ("0.00000001", "0.5"),
        ("0.5", "0.00000001"),
        ("61837.63", "0.00123"),
        ("99999.99999999", "0.00000003"),
        ("0.00001234", "12345.6789"),
        ("3", "0.33333333"),
    ] {
        let needed = needed_by_decimal(price, qty);
        let limits = RiskLimits { max_position: q("100000"), max_order_notional: money("1000000"), ..limits() };
        let mut r = rich(limits);
        r.set_balance("USDT", Balance { free: needed, locked: 0 });
        assert_eq!(r.check(&buy(price, qty)), Ok(()), "{price} x {qty}");
        r.set_balance("USDT", Balance { free: needed - 1, locked: 0 });
        match r.check(&buy(price, qty)) {
            Err(Refusal::QuoteBalance { cost, short, .. }) => {
                assert_eq!((cost.0, short.0), (needed, 1), "{price} x {qty}");
            }
            other => panic!("{price} x {qty}: {other:?}"),
        }
    }
    // 1.23456789 x 0.87654321 = 1.0821521028958... -> 1.08215211 to pay;
    // the notional limit compares the truncated 1.0821521.
    assert_eq!(needed_by_decimal("1.23456789", "0.87654321"), money("1.08215211"));
    let at_max = RiskLimits { max_position: q("1"), max_order_notional: money("1.0821521"), ..limits() };
    assert_eq!(rich(at_max).check(&buy("1.23456789", "0.87654321")), Ok(()));
    let below = RiskLimits { max_order_notional: money("1.08215209"), ..at_max };
    assert_eq!(rich(below).check(&buy("1.23456789", "0.87654321")).unwrap_err().reason(), RefusalReason::OrderNotional);
}

#[test]
fn balances_default_to_zero_and_stay_sorted() {
    let mut b = Balances::new();
    b.set("USDT", Balance { free: 5, locked: 1 });
    b.set("BTC", Balance { free: 2, locked: 0 });
    b.set("USDT", Balance { free: 7, locked: 0 });
    assert_eq!(b.get("USDT"), Balance { free: 7, locked: 0 });
    assert_eq!(b.get("ETH"), Balance::default());
    assert_eq!(b.iter().map(|(a, _)| a).collect::<Vec<_>>(), ["BTC", "USDT"]);
}

const SEC: i64 = 1_000_000_000;

fn kill() -> KillSwitch {
    KillSwitch::new(KillConfig { max_rejects: 3, reject_window_ns: SEC, stale_feed_ns: 5 * SEC, unsynced_ns: 2 * SEC })
}

#[test]
fn rejects_trip_only_when_max_fall_within_the_window() {
    let mut k = kill();
    assert_eq!(k.on_reject(0), None);
    assert_eq!(k.on_reject(SEC / 2), None);
    // Third reject less than a second after the first: trips.
    assert_eq!(k.on_reject(SEC - 1), Some(KillReason::RepeatedRejects));
    assert_eq!(k.tripped(), Some(KillReason::RepeatedRejects));
    assert_eq!(k.tripped_at(), Some(SEC - 1));
    // Latched: later events say nothing new, the first reason stays.
    assert_eq!(k.on_reject(SEC), None);
    assert_eq!(k.on_signal(SEC), None);
    assert_eq!(k.tripped(), Some(KillReason::RepeatedRejects));

    k.reset();
    assert_eq!(k.tripped(), None);
    assert_eq!(k.on_reject(0), None);
    assert_eq!(k.on_reject(SEC / 2), None);
    // Exactly a window after the first: the first has aged out.
    assert_eq!(k.on_reject(SEC), None);
    assert_eq!(k.rejects_in_window(SEC), 2);
    // 0.5 s, 1 s and 1.2 s are within one window.
    assert_eq!(k.on_reject(SEC + SEC / 5), Some(KillReason::RepeatedRejects));

    // Spread-out rejects never trip.
    let mut k = kill();
    for i in 0..100 {
        assert_eq!(k.on_reject(i * SEC / 2), None);
    }
    // max_rejects 0 turns the reject rule off.
    let mut k = KillSwitch::new(KillConfig { max_rejects: 0, ..*kill().config() });
    for _ in 0..10 {
        assert_eq!(k.on_reject(0), None);
    }
}

#[test]
fn feed_ban_loss_and_signal_trip_with_their_reason() {
    let mut k = kill();
    // Data exactly 5 s old passes; older trips.
    assert_eq!(k.on_feed(10 * SEC, 5 * SEC, None), None);
    assert_eq!(k.on_feed(10 * SEC + 1, 5 * SEC, None), Some(KillReason::StaleFeed));

    let mut k = kill();
    assert_eq!(k.on_feed(10 * SEC, 10 * SEC, Some(8 * SEC)), None);
    assert_eq!(k.on_feed(10 * SEC + 1, 10 * SEC, Some(8 * SEC)), Some(KillReason::UnsyncedBook));

    let mut k = kill();
    assert_eq!(k.on_http_status(429, 0), None);
    assert_eq!(k.on_http_status(500, 0), None);
    assert_eq!(k.on_http_status(418, 1), Some(KillReason::IpBanned));

    let mut k = kill();
    let mut r = rich(limits());
    r.on_pnl(NOON, 0, 0);
    r.on_pnl(NOON, money("-50"), 0);
    assert_eq!(k.on_risk(&mut r, NOON), None);
    r.on_pnl(NOON, money("-50.00000001"), 0);
    assert_eq!(k.on_risk(&mut r, NOON), Some(KillReason::LossLimit));

    let mut k = kill();
    assert_eq!(k.on_signal(3), Some(KillReason::Signal));
    assert_eq!(KillReason::IpBanned.to_string(), "HTTP 418: IP banned");
}

/// The daily loss limit sees commissions paid in the base asset: 50 buys
/// of 0.01 @ 60000 with a 0.1% base commission, marked at the buy price,
/// lost exactly the commissions' value (50 x 0.6 = 30 USDT), which the old
/// accounting (base fees zeroed) reported as 0.
#[test]
fn daily_loss_counts_commissions_paid_in_base() {
    use mmbot::exec::position::Position;
    use mmbot::exec::{FeeAsset, Fill};
    use mmbot::hot::msg::Symbol;
    let mut p = Position::new();
    for i in 0..50 {
        p.on_fill(&Fill {
            symbol: Symbol::new(b"BTCUSDT"),
            order_id: i,
            side: Side::Buy,
            price: px("60000"),
            qty: q("0.01"),
            fee: q("0.00001").0,
            fee_asset: FeeAsset::Base,
            time_ns: NOON,
            maker: true,
        });
    }
    // The account holds 0.4995 BTC, not 0.5.
    assert_eq!(p.qty(), q("0.4995"));
    let mid = px("60000");
    let mut r = rich(RiskLimits { daily_loss_limit: money("29.99999999"), ..limits() });
    r.on_pnl(NOON, 0, 0);
    r.on_pnl(NOON, p.realized() - p.fees(), p.unrealized(mid));
    assert_eq!(r.today_pnl(), money("-30"));
    assert_eq!(r.today_pnl(), p.equity_change(mid));
    assert_eq!(kill().on_risk(&mut r, NOON), Some(KillReason::LossLimit));
}

/// A drift between the position and the base balance beyond
/// balance_kill_tolerance, seen twice in a row, trips the kill switch, and
/// the reason names both numbers and what to check.
#[test]
fn balance_drift_trips_the_kill_switch_with_both_numbers() {
    use mmbot::exec::inventory::{BalanceCheck, BalanceSource, BalanceTolerance, Verdict};
    let tol = BalanceTolerance { warn: q("0.0001"), kill: q("0.001") };
    let mut c = BalanceCheck::new("BTC", tol, Balance { free: money("1"), locked: 0 }, q("0.25"));
    let mut k = kill();
    // Position 0.3 (0.25 carried + 0.05 this run); the account moved +0.05.
    let ok = c.observe(q("0.3"), Balance { free: money("1.02"), locked: money("0.03") }, BalanceSource::Stream, 1);
    assert_eq!((ok.verdict, ok.drift), (Verdict::Ok, 0));
    assert_eq!(k.on_balance(&ok, 1), None);
    // Somebody sold 0.002 BTC on the same account.
    let gone = Balance { free: money("1.018"), locked: money("0.03") };
    let first = c.observe(q("0.3"), gone, BalanceSource::Stream, 2);
    assert_eq!((first.verdict, first.drift), (Verdict::Drift, money("0.002")));
    assert_eq!(k.on_balance(&first, 2), None);
    let second = c.observe(q("0.3"), gone, BalanceSource::Rest, 3);
    let reason = k.on_balance(&second, 3).expect("trips");
    assert_eq!(reason, KillReason::BalanceDrift { position: q("0.3"), account: q("0.298") });
    let text = reason.to_string();
    for w in ["0.3 base", "implies 0.298", "balance at start", "carried", "transfers", "myTrades"] {
        assert!(text.contains(w), "{text:?} does not name {w:?}");
    }
}

//! The Binance spot REST client's order flows against the loopback double in
//! tests/rest_double/: orders placed, listed, replaced and canceled exactly;
//! unknown fates (a 500, a timeout, a -1006 after placing) settled by
//! lookup; cancelReplace's two halves; `myTrades` paging; self-trade
//! prevention and `CANCEL_ONLY` over the order count. Signing, errors and
//! limits are in tests/binance_rest.rs.

mod rest_double;

use std::time::{Duration, Instant};

use mmbot::exec::binance::errors::Limited;
use mmbot::exec::binance::filters::{NotionalKind, RateLimitKind};
use mmbot::exec::binance::gateway::{NewOrder, StpMode, Target};
use mmbot::exec::binance::rest::MY_TRADES_PAGE;
use mmbot::exec::binance::{
    Action, BinanceError, ClientIds, OrderRef, OrderStatus, ReplaceHalf, ReplaceMode, SymbolStatus,
};
use mmbot::exec::Side;
use rest_double::{expect_err, p, q, Double, Inject, SPOT_LIMITS, T};

#[test]
fn orders_are_placed_listed_replaced_and_canceled_exactly() {
    let d = Double::start(SPOT_LIMITS);
    let mut c = d.client(5000, T);
    c.sync_clock().unwrap();
    let info = c.exchange_info("BTCUSDT").unwrap();
    assert_eq!(info.rate_limits.len(), 3);
    let rules = c.rules("BTCUSDT").unwrap();
    assert!(rules.cancel_replace_allowed && rules.status == SymbolStatus::Trading);
    assert_eq!(rules.notional.kind, NotionalKind::Notional);
    let mut ids = ClientIds::new("mmTest.1").unwrap();

    c.test_order("BTCUSDT", Side::Buy, p("59999.5"), q("0.001"), &ids.next()).unwrap();
    assert!(d.open_orders().is_empty(), "a test order is never placed");

    let id = ids.next();
    let o = c.new_limit_maker("BTCUSDT", Side::Buy, p("59999.99"), q("0.00123"), &id).unwrap();
    assert_eq!(
        (o.price, o.orig_qty, o.status.clone(), o.side),
        (p("59999.99"), q("0.00123"), OrderStatus::New, Side::Buy)
    );
    assert_eq!(o.client_order_id, id.as_str());
    let on_book = d.open_orders();
    assert_eq!((on_book[0].price, on_book[0].qty), (p("59999.99").0, q("0.00123").0), "sent exactly");
    let sell = c.new_limit_maker("BTCUSDT", Side::Sell, p("60100"), q("0.5"), &ids.next()).unwrap();

    let open = c.open_orders("BTCUSDT").unwrap();
    assert_eq!(open.len(), 2);
    let found = c.query_order_by_client_id("BTCUSDT", id.as_str()).unwrap();
    assert_eq!(found.order_id, o.order_id);

    let canceled = c.cancel("BTCUSDT", OrderRef::ClientId(id.as_str())).unwrap();
    assert_eq!((canceled.status.clone(), canceled.placed_client_order_id()), (OrderStatus::Canceled, id.as_str()));
    let e = expect_err(c.cancel("BTCUSDT", OrderRef::OrderId(o.order_id)));
    assert!(matches!(e, BinanceError::UnknownOrder { .. }), "{e:?}");
    assert_eq!(e.action(), Action::ForgetOrder);
    let e = expect_err(c.query_order_by_client_id("BTCUSDT", "mmTest.1-999"));
    assert_eq!((e.code(), e.action()), (Some(-2013), Action::ForgetOrder));

    let new_id = ids.next();
    let r = c
        .cancel_replace(
            "BTCUSDT",
            OrderRef::OrderId(sell.order_id),
            Side::Sell,
            p("60050.5"),
            q("0.25"),
            &new_id,
            ReplaceMode::StopOnFailure,
        )
        .unwrap();
    assert_eq!(r.canceled.order_id, sell.order_id);
    assert_eq!((r.placed.price, r.placed.orig_qty), (p("60050.5"), q("0.25")));
    assert_eq!(r.placed.client_order_id, new_id.as_str());

    let all = c.cancel_all("BTCUSDT").unwrap();
    assert_eq!(all.len(), 1);
    assert!(c.cancel_all("BTCUSDT").unwrap().is_empty(), "nothing open is not an error");
    assert!(d.open_orders().is_empty());
    let weight = c.usage().into_iter().find(|u| u.limit.kind == RateLimitKind::RequestWeight).unwrap();
    assert!(weight.used >= 40, "the server's usage header is tracked: {weight:?}");
}

#[test]
fn a_500_after_placing_is_an_unknown_fate_settled_by_lookup() {
    let d = Double::start(SPOT_LIMITS);
    let mut c = d.client(5000, T);
    c.sync_clock().unwrap();
    let mut ids = ClientIds::new("mm500").unwrap();
    let id = ids.next();
    d.inject("POST /api/v3/order", Inject::FailAfter);
    let e = expect_err(c.new_limit_maker("BTCUSDT", Side::Buy, p("59000"), q("0.002"), &id));
    assert!(e.fate_unknown(), "{e:?}");
    assert_eq!(e.action(), Action::LookUpOrder);
    assert!(e.to_string().contains("HTTP 500") && e.to_string().contains("client order id"), "{e}");
    let o = c.query_order_by_client_id("BTCUSDT", id.as_str()).unwrap();
    assert_eq!((o.status, o.price, o.orig_qty), (OrderStatus::New, p("59000"), q("0.002")));

    // A cancel's fate is unknown the same way.
    d.inject("DELETE /api/v3/order", Inject::FailAfter);
    let e = expect_err(c.cancel("BTCUSDT", OrderRef::ClientId(id.as_str())));
    assert_eq!(e.action(), Action::LookUpOrder);
    assert_eq!(c.query_order_by_client_id("BTCUSDT", id.as_str()).unwrap().status, OrderStatus::Canceled);

    // On a read, the same 500 is just "ask again".
    d.inject("GET /api/v3/account", Inject::FailAfter);
    assert_eq!(expect_err(c.account()).action(), Action::Retry);
}

#[test]
fn a_timeout_after_placing_is_an_unknown_fate_settled_by_lookup() {
    let d = Double::start(SPOT_LIMITS);
    let mut c = d.client(5000, Duration::from_millis(400));
    c.sync_clock().unwrap();
    let id = ClientIds::new("mmLate").unwrap().next();
    d.inject("POST /api/v3/order", Inject::LateAfter(Duration::from_millis(1500)));
    let t0 = Instant::now();
    let e = expect_err(c.new_limit_maker("BTCUSDT", Side::Sell, p("61000"), q("0.003"), &id));
    assert!(t0.elapsed() < Duration::from_millis(1400), "the client's timeout cut the wait");
    assert!(matches!(e, BinanceError::Unknown { .. }), "{e:?}");
    assert_eq!(e.action(), Action::LookUpOrder);
    let o = c.query_order_by_client_id("BTCUSDT", id.as_str()).unwrap();
    assert_eq!((o.status, o.side), (OrderStatus::New, Side::Sell));
}

#[test]
fn a_409_from_cancel_replace_reports_both_halves() {
    let d = Double::start(SPOT_LIMITS);
    let mut c = d.client(5000, T);
    c.sync_clock().unwrap();
    c.exchange_info("BTCUSDT").unwrap();
    let mut ids = ClientIds::new("mm409").unwrap();
    let old = c.new_limit_maker("BTCUSDT", Side::Buy, p("59990"), q("0.001"), &ids.next()).unwrap();
    d.inject("POST /api/v3/order/cancelReplace", Inject::ReplaceNewFails);
    let e = expect_err(c.cancel_replace(
        "BTCUSDT",
        OrderRef::OrderId(old.order_id),
        Side::Buy,
        p("59995"),
        q("0.001"),
        &ids.next(),
        ReplaceMode::StopOnFailure,
    ));
    assert_eq!(e.action(), Action::ApplyBothResults);
    let BinanceError::ReplacePartial { halves, .. } = &e else { panic!("{e:?}") };
    assert!(
        matches!(&halves.cancel, ReplaceHalf::Success(o) if o.order_id == old.order_id && o.status == OrderStatus::Canceled)
    );
    assert!(
        matches!(&halves.new_order, ReplaceHalf::Failure { code: -2010, msg } if msg.contains("would immediately"))
    );
    assert!(d.open_orders().is_empty(), "the cancel half happened, the new order did not");

    // The same answer arises naturally when the new price crosses the book.
    let old = c.new_limit_maker("BTCUSDT", Side::Sell, p("60010"), q("0.001"), &ids.next()).unwrap();
    let e = expect_err(c.cancel_replace(
        "BTCUSDT",
        OrderRef::ClientId(&old.client_order_id),
        Side::Sell,
        p("59999"),
        q("0.001"),
        &ids.next(),
        ReplaceMode::StopOnFailure,
    ));
    assert_eq!(e.action(), Action::ApplyBothResults);
    // Cancelling an order that is gone: -2022, nothing happened.
    let e = expect_err(c.cancel_replace(
        "BTCUSDT",
        OrderRef::OrderId(old.order_id),
        Side::Sell,
        p("60020"),
        q("0.001"),
        &ids.next(),
        ReplaceMode::StopOnFailure,
    ));
    assert!(matches!(e, BinanceError::ReplaceFailed { .. }), "{e:?}");
    assert_eq!(e.action(), Action::ForgetOrder);
}

// ---------------------------------------------------------------------------
// Issue 13: unknown fates, paging, STP, CANCEL_ONLY

#[test]
fn a_1006_is_an_unknown_fate_whatever_the_status() {
    // errors.md: -1006 UNEXPECTED_RESP "Execution status unknown".
    for status in [400, 408, 503] {
        let d = Double::start(SPOT_LIMITS);
        let mut c = d.client(5000, T);
        c.sync_clock().unwrap();
        let mut ids = ClientIds::new("mm1006").unwrap();
        let id = ids.next();
        d.inject("POST /api/v3/order", Inject::UnexpectedAfter(status));
        let e = expect_err(c.new_limit_maker("BTCUSDT", Side::Buy, p("50000"), q("0.001"), &id));
        assert!(e.fate_unknown() && e.to_string().contains("-1006"), "HTTP {status}: {e:?}");
        assert_eq!(e.action(), Action::LookUpOrder);
        // It did land: the lookup settles it.
        assert_eq!(c.query_order_by_client_id("BTCUSDT", id.as_str()).unwrap().status, OrderStatus::New);
        // On a read it only means "ask again".
        d.inject("GET /api/v3/account", Inject::UnexpectedAfter(status));
        assert_eq!(expect_err(c.account()).action(), Action::Retry);
    }
}

#[test]
fn my_trades_reads_every_page_by_from_id() {
    let d = Double::start(SPOT_LIMITS);
    let mut c = d.client(5000, T);
    c.sync_clock().unwrap();
    d.add_trades(7, 2500, 100);
    d.add_trades(8, 3, 101);
    let trades = c.my_trades("BTCUSDT", 7).unwrap();
    assert_eq!(trades.len(), 2500);
    assert!(trades.iter().all(|t| t.order_id == 7));
    assert!(trades.windows(2).all(|w| w[0].id < w[1].id), "oldest first, no repeats");
    assert_eq!((trades[0].id, trades[2499].id), (100, 100 + 2 * 2499));
    let pages = d.params_of("GET /api/v3/myTrades");
    assert_eq!(pages.len(), 3, "{pages:?}");
    assert!(pages.iter().all(|p| p["orderId"] == "7" && p["limit"] == MY_TRADES_PAGE.to_string()));
    assert_eq!(pages[0]["fromId"], "0", "from the oldest, not the most recent");
    assert_eq!(pages[1]["fromId"], (trades[999].id + 1).to_string());
    assert_eq!(pages[2]["fromId"], (trades[1999].id + 1).to_string());
    // Exactly one full page: one more (empty) page says it is the end.
    d.add_trades(9, 1000, 10_000);
    assert_eq!(c.my_trades("BTCUSDT", 9).unwrap().len(), 1000);
    assert_eq!(c.my_trades("BTCUSDT", 8).unwrap().len(), 3);
    assert!(c.my_trades("BTCUSDT", 10).unwrap().is_empty());
    assert_eq!(d.params_of("GET /api/v3/myTrades").len(), 3 + 2 + 1 + 1);
}

#[test]
fn orders_carry_self_trade_prevention_and_replaces_cancel_only_over_the_order_count() {
    let d = Double::start(SPOT_LIMITS);
    let mut c = d.client(5000, T);
    c.sync_clock().unwrap();
    c.exchange_info("BTCUSDT").unwrap();
    let mut ids = ClientIds::new("mmStp").unwrap();
    let first = c.new_limit_maker("BTCUSDT", Side::Buy, p("50000"), q("0.001"), &ids.next()).unwrap();
    c.set_stp_mode(StpMode::ExpireBoth);
    c.test_order("BTCUSDT", Side::Buy, p("50000"), q("0.001"), &ids.next()).unwrap();
    let order =
        NewOrder { side: Side::Sell, price: p("61000"), qty: q("0.001"), client_id: ids.next(), stp: StpMode::None };
    c.place("BTCUSDT", &order).unwrap();
    let stp: Vec<String> = d
        .params_of("POST /api/v3/order")
        .iter()
        .chain(&d.params_of("POST /api/v3/order/test"))
        .map(|p| p["selfTradePreventionMode"].clone())
        .collect();
    assert_eq!(stp, ["EXPIRE_MAKER", "NONE", "EXPIRE_BOTH"]);

    let new = NewOrder {
        side: Side::Buy,
        price: p("50001"),
        qty: q("0.001"),
        client_id: ids.next(),
        stp: StpMode::ExpireMaker,
    };
    let r = c.replace("BTCUSDT", &Target::OrderId(first.order_id), &new).unwrap();
    let sent = d.params_of("POST /api/v3/order/cancelReplace").pop().unwrap();
    assert_eq!(sent["orderRateLimitExceededMode"], "CANCEL_ONLY");
    assert_eq!(sent["cancelReplaceMode"], "STOP_ON_FAILURE");
    assert_eq!(sent["selfTradePreventionMode"], "EXPIRE_MAKER");

    // Over the unfilled order count the cancel still happens: the quote
    // does not rest unmanaged (rest-api.md §Cancel an Existing Order and
    // Send a New Order, orderRateLimitExceededMode).
    d.inject("POST /api/v3/order/cancelReplace", Inject::OverOrderCount);
    let e = expect_err(c.cancel_replace(
        "BTCUSDT",
        OrderRef::OrderId(r.placed.order_id),
        Side::Buy,
        p("50002"),
        q("0.001"),
        &ids.next(),
        ReplaceMode::StopOnFailure,
    ));
    assert_eq!(e.action(), Action::ApplyBothResults, "{e:?}");
    let BinanceError::ReplacePartial { halves, .. } = &e else { panic!("{e:?}") };
    assert!(matches!(&halves.cancel, ReplaceHalf::Success(o) if o.order_id == r.placed.order_id));
    assert!(matches!(halves.new_order, ReplaceHalf::Failure { code: -1015, .. }));
    assert!(d.open_orders().iter().all(|o| o.id != r.placed.order_id), "canceled on the exchange");
    // And new orders now wait, cancels do not.
    let before = d.requests();
    let e = expect_err(c.new_limit_maker("BTCUSDT", Side::Buy, p("50000"), q("0.001"), &ids.next()));
    assert_eq!(e.limited(), Some(Limited::Orders), "{e:?}");
    assert_eq!(d.requests(), before);
    c.cancel_all("BTCUSDT").unwrap();
}

//! Self-tests of the Binance spot test double (tests/binance_double/), its trading: signing,
//! public and account data, orders, fills and commission, cancelReplace, self-trade prevention
//! and the other order types and endpoints, each checked through its HTTP and WebSocket doors,
//! with the docs' own examples where they exist. Rate limits, bans, faults and the WebSocket API's
//! sessions are in tests/binance_double_selftest_transport.rs.
//! Every wait is bounded; no test asserts how fast anything is.

#[path = "binance_double/mod.rs"]
mod binance_double;

use std::collections::BTreeMap;

use binance_double::client::{new_ed25519_key, Rest, RestResponse, Signer, WsClient};
use binance_double::config::{DOC_HMAC_KEY, DOC_HMAC_SECRET};
use binance_double::fixed::ONE;
use binance_double::{ApiKey, BinanceDouble, DoubleConfig, KeySecret, OrderStatus, RateLimits, Side};
use serde_json::json;

use binance_double::testkit::{
    doc_hmac as hmac, doc_rest as rest, fx, int_of as i, next_event_of as next_of, place_maker as maker,
    place_maker_on as maker_on, str_of as s,
};

// ---------------------------------------------------------------- signing

#[test]
fn docs_hmac_vectors_verify() {
    // rest-api.md §SIGNED Endpoint Examples → HMAC Keys.
    let key = ApiKey { key: DOC_HMAC_KEY.into(), secret: KeySecret::Hmac(DOC_HMAC_SECRET.as_bytes().to_vec()) };
    let payload = "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559";
    let sig = "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71";
    assert!(binance_double::auth::verify(&key, payload.as_bytes(), sig).is_ok());
    // "HMAC signatures are not case-sensitive".
    assert!(binance_double::auth::verify(&key, payload.as_bytes(), &sig.to_uppercase()).is_ok());
    assert_eq!(binance_double::auth::verify(&key, b"symbol=LTCBTC", sig).unwrap_err().0, -1022);
    // web-socket-api.md §SIGNED request example (HMAC): sorted params, no percent-encoding.
    let mut p = BTreeMap::new();
    for (k, v) in [
        ("symbol", "BTCUSDT"),
        ("side", "SELL"),
        ("type", "LIMIT"),
        ("timeInForce", "GTC"),
        ("quantity", "0.01000000"),
        ("price", "52000.00"),
        ("recvWindow", "100"),
        ("timestamp", "1645423376532"),
        ("apiKey", DOC_HMAC_KEY),
        ("signature", "x"),
    ] {
        p.insert(k.to_string(), v.to_string());
    }
    let payload = binance_double::auth::ws_payload(&p);
    assert_eq!(payload, format!("apiKey={DOC_HMAC_KEY}&price=52000.00&quantity=0.01000000&recvWindow=100&side=SELL&symbol=BTCUSDT&timeInForce=GTC&timestamp=1645423376532&type=LIMIT"));
    assert!(binance_double::auth::verify(
        &key,
        payload.as_bytes(),
        "aa1b5712c094bc4e57c05a1a5c1fd8d88dcd628338ea863fec7b88e59fe2db24"
    )
    .is_ok());
}

#[test]
fn signed_rest_rules() {
    let d = BinanceDouble::start_default().unwrap();
    let r = rest(&d);
    assert_eq!(r.call("GET", "/api/v3/account", &[], true).status, 200);
    // Signature over query + body (rest-api.md §SIGNED Endpoint Examples: "query string concatenated without separator to the HTTP body").
    let split = r.call_split(
        "POST",
        "/api/v3/order",
        &[("symbol", "BTCUSDT"), ("side", "BUY")],
        &[("type", "LIMIT_MAKER"), ("price", "100.00"), ("quantity", "0.1")],
        true,
    );
    assert_eq!(split.status, 200, "{:?}", split.body);
    // Wrong secret: -1022.
    let bad = Rest::new(&d.rest_url(), DOC_HMAC_KEY, Signer::Hmac(b"wrong".to_vec()));
    let b = bad.call("GET", "/api/v3/account", &[], true);
    assert_eq!((b.status, b.code()), (400, Some(-1022)));
    // No key header: -2014; unknown key: -2015 (errors.md).
    let nokey = r.raw(
        "GET",
        "/api/v3/account",
        &format!("timestamp={}&signature=00", binance_double::client::now_ms()),
        "",
        None,
    );
    assert_eq!(nokey.code(), Some(-2014));
    let unknown = Rest::new(&d.rest_url(), "nobody", hmac()).call("GET", "/api/v3/account", &[], true);
    assert_eq!((unknown.status, unknown.code()), (401, Some(-2015)));
    // Timing security: ahead by more than 1 s, or older than recvWindow: -1021.
    let mut skewed = rest(&d);
    skewed.clock_skew_ms = 2_000;
    let ahead = skewed.call("GET", "/api/v3/account", &[], true);
    assert_eq!(ahead.code(), Some(-1021));
    assert!(s(&ahead.body, "msg").contains("ahead"));
    skewed.clock_skew_ms = -6_000;
    assert_eq!(skewed.call("GET", "/api/v3/account", &[], true).code(), Some(-1021));
    assert_eq!(skewed.call("GET", "/api/v3/account", &[("recvWindow", "10000")], true).status, 200);
    assert_eq!(skewed.call("GET", "/api/v3/account", &[("recvWindow", "60001")], true).code(), Some(-1130));
    // The server's clock can be moved instead.
    d.set_clock_offset_ms(-3_000);
    assert_eq!(r.call("GET", "/api/v3/account", &[], true).code(), Some(-1021));
    d.set_clock_offset_ms(0);
    // Microsecond timestamps are accepted (rest-api.md §Timing security).
    let ts = (binance_double::client::now_ms() * 1000).to_string();
    let q = format!("timestamp={ts}");
    let sig = hmac().sign(&q);
    assert_eq!(r.raw("GET", "/api/v3/account", &format!("{q}&signature={sig}"), "", Some(DOC_HMAC_KEY)).status, 200);
    // Duplicate parameter: -1101; the same name in query and body: the query's value counts.
    let dup = r.raw("GET", "/api/v3/time", "a=1&a=2", "", None);
    assert_eq!(dup.code(), Some(-1101));
    let ts = binance_double::client::now_ms().to_string();
    let q = format!("symbol=BTCUSDT&side=BUY&type=LIMIT_MAKER&price=100.00&quantity=0.2&timestamp={ts}");
    let body = "quantity=0.3";
    let sig = hmac().sign(&format!("{q}{body}"));
    let both = r.raw("POST", "/api/v3/order", &format!("{q}&signature={sig}"), body, Some(DOC_HMAC_KEY));
    assert_eq!(both.status, 200, "{:?}", both.body);
    assert_eq!(d.order(i(&both.body, "orderId")).unwrap().orig_qty, fx("0.2"));
    // Missing timestamp: -1102.
    let sig = hmac().sign("omitZeroBalances=true");
    assert_eq!(
        r.raw("GET", "/api/v3/account", &format!("omitZeroBalances=true&signature={sig}"), "", Some(DOC_HMAC_KEY))
            .code(),
        Some(-1102)
    );
}

#[test]
fn ed25519_signed_rest() {
    let (signer, key) = new_ed25519_key("ed-key");
    let cfg = DoubleConfig { keys: vec![key], ..Default::default() };
    let d = BinanceDouble::start(cfg).unwrap();
    let r = Rest::new(&d.rest_url(), "ed-key", signer);
    let a = r.call("GET", "/api/v3/account", &[], true);
    assert_eq!(a.status, 200, "{:?}", a.body);
    // A PEM private key (as a client's key file holds it) gives the double the public half.
    let (pem, _) = binance_double::client::new_ed25519_pem("pem-key");
    let kp_key = ApiKey::ed25519_from_private_pem("pem-key", &pem).unwrap();
    assert!(matches!(kp_key.secret, KeySecret::Ed25519Public(ref p) if p.len() == 32));
    assert!(
        ApiKey::ed25519_from_private_pem("x", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----").is_none()
    );
    let (other, _) = new_ed25519_key("x");
    let bad = Rest::new(&d.rest_url(), "ed-key", other).call("GET", "/api/v3/account", &[], true);
    assert_eq!(bad.code(), Some(-1022));
}

// ---------------------------------------------------------------- public and account data

#[test]
fn exchange_info_and_account() {
    let d = BinanceDouble::start_default().unwrap();
    let r = rest(&d);
    let t = r.call("GET", "/api/v3/time", &[], false);
    assert!(i(&t.body, "serverTime") > 0);
    let e = r.call("GET", "/api/v3/exchangeInfo", &[("symbol", "BTCUSDT")], false);
    assert_eq!(e.status, 200);
    let sym = &e.body["symbols"][0];
    assert_eq!(s(sym, "symbol"), "BTCUSDT");
    assert_eq!(sym["cancelReplaceAllowed"], json!(true));
    assert!(sym["allowedSelfTradePreventionModes"].as_array().unwrap().len() >= 2);
    let kinds: Vec<String> = sym["filters"].as_array().unwrap().iter().map(|f| s(f, "filterType")).collect();
    for k in ["PRICE_FILTER", "LOT_SIZE", "NOTIONAL", "PERCENT_PRICE_BY_SIDE", "MAX_NUM_ORDERS"] {
        assert!(kinds.contains(&k.to_string()), "{k} missing");
    }
    assert_eq!(s(&sym["filters"][0], "tickSize"), "0.01000000");
    let limits = e.body["rateLimits"].as_array().unwrap();
    assert!(limits.iter().any(|l| s(l, "rateLimitType") == "REQUEST_WEIGHT" && i(l, "limit") == 6000));
    assert!(limits
        .iter()
        .any(|l| s(l, "rateLimitType") == "ORDERS" && s(l, "interval") == "SECOND" && i(l, "intervalNum") == 10));
    assert_eq!(r.call("GET", "/api/v3/exchangeInfo", &[("symbol", "ETHBTC")], false).code(), Some(-1121));
    // Header on every response (rest-api.md §IP Limits).
    assert!(e.header("X-MBX-USED-WEIGHT-1M").is_some());

    let a = r.call("GET", "/api/v3/account", &[("omitZeroBalances", "true")], true);
    assert_eq!(a.body["canTrade"], json!(true));
    assert_eq!(s(&a.body["commissionRates"], "maker"), "0.00100000");
    let bals = a.body["balances"].as_array().unwrap();
    assert!(bals
        .iter()
        .any(|b| s(b, "asset") == "USDT" && s(b, "free") == "100000.00000000" && s(b, "locked") == "0.00000000"));
    assert!(!bals.iter().any(|b| s(b, "asset") == "BNB"), "omitZeroBalances leaves zero balances out");
    d.set_can_trade(false);
    let a = r.call("GET", "/api/v3/account", &[], true);
    assert_eq!(a.body["canTrade"], json!(false));
    let refused = maker(&r, "BUY", "100.00", "0.1", &[]);
    assert_eq!(refused.code(), Some(-2010));
}

// ---------------------------------------------------------------- orders

#[test]
fn limit_maker_places_locks_and_answers_by_resp_type() {
    let d = BinanceDouble::start_default().unwrap();
    let r = rest(&d);
    d.set_market(Some((fx("100.00"), fx("5"))), Some((fx("101.00"), fx("5"))));
    // LIMIT_MAKER defaults to ACK (rest-api.md §New order `newOrderRespType`).
    let ack = maker(&r, "BUY", "100.00", "0.5", &[("newClientOrderId", "b1")]);
    assert_eq!(ack.status, 200, "{:?}", ack.body);
    assert_eq!(s(&ack.body, "clientOrderId"), "b1");
    assert!(ack.body.get("status").is_none());
    assert!(ack.header("X-MBX-ORDER-COUNT-10S").is_some());
    assert_eq!(d.balance("USDT").locked, fx("50"));
    assert_eq!(d.balance("USDT").free, fx("99950"));
    let res = maker(&r, "SELL", "102.00", "0.25", &[("newOrderRespType", "RESULT")]);
    assert_eq!(s(&res.body, "status"), "NEW");
    assert_eq!(s(&res.body, "type"), "LIMIT_MAKER");
    assert_eq!(d.balance("BTC").locked, fx("0.25"));
    let full = maker(&r, "SELL", "103.00", "0.1", &[("newOrderRespType", "FULL")]);
    assert_eq!(full.body["fills"], json!([]));
    // Would take: against the market's ask and against our own resting SELL (errors.md §-2010 messages).
    let take = maker(&r, "BUY", "101.00", "0.1", &[]);
    assert_eq!((take.status, take.code()), (400, Some(-2010)));
    assert_eq!(s(&take.body, "msg"), "Order would immediately match and take.");
    d.set_market(Some((fx("100.00"), fx("5"))), None);
    assert_eq!(maker(&r, "BUY", "102.00", "0.1", &[]).code(), Some(-2010), "our own SELL at 102 is on the book");
    assert_eq!(maker(&r, "SELL", "100.00", "0.1", &[]).code(), Some(-2010), "our own BUY at 100 is on the book");
    // Duplicate client id among open orders; insufficient balance; timeInForce not allowed.
    assert_eq!(
        s(&maker(&r, "BUY", "99.00", "0.1", &[("newClientOrderId", "b1")]).body, "msg"),
        "Duplicate order sent."
    );
    assert_eq!(
        s(&maker(&r, "SELL", "120.00", "5", &[]).body, "msg"),
        "Account has insufficient balance for requested action."
    );
    assert_eq!(maker(&r, "BUY", "99.00", "0.1", &[("timeInForce", "GTC")]).code(), Some(-1114));
    assert_eq!(d.open_orders().len(), 3);
    assert_eq!(d.max_open_per_side(), (1, 2));
}

#[test]
fn filters_and_parameter_errors() {
    let cfg = DoubleConfig {
        rules: binance_double::SymbolRules { max_num_orders: 2, ..Default::default() },
        ..Default::default()
    };
    let d = BinanceDouble::start(cfg).unwrap();
    let r = rest(&d);
    let msg = |x: RestResponse| (x.code().unwrap_or(0), s(&x.body, "msg"));
    assert_eq!(msg(maker(&r, "BUY", "100.001", "0.1", &[])), (-1013, "Filter failure: PRICE_FILTER".into()));
    assert_eq!(msg(maker(&r, "BUY", "100.00", "0.000001", &[])), (-1013, "Filter failure: LOT_SIZE".into()));
    assert_eq!(msg(maker(&r, "BUY", "10.00", "0.1", &[])), (-1013, "Filter failure: NOTIONAL".into()));
    assert_eq!(msg(maker(&r, "BUY", "100.123456789", "0.1", &[])).0, -1111);
    assert_eq!(msg(maker(&r, "BUY", "1e5", "0.1", &[])).0, -1100);
    assert_eq!(msg(maker(&r, "BUY", "100.00", "0.1", &[("selfTradePreventionMode", "BOGUS")])).0, -1013);
    assert_eq!(msg(maker(&r, "UP", "100.00", "0.1", &[])).0, -1117);
    let no_symbol = r.call(
        "POST",
        "/api/v3/order",
        &[("side", "BUY"), ("type", "LIMIT_MAKER"), ("price", "1"), ("quantity", "1")],
        true,
    );
    assert_eq!(no_symbol.code(), Some(-1102));
    let bad_symbol = r.call(
        "POST",
        "/api/v3/order",
        &[("symbol", "ETHBTC"), ("side", "BUY"), ("type", "LIMIT_MAKER"), ("price", "1"), ("quantity", "1")],
        true,
    );
    assert_eq!(bad_symbol.code(), Some(-1121));
    // PERCENT_PRICE_BY_SIDE against the market mid (filters.md).
    d.set_market(Some((fx("100.00"), ONE)), Some((fx("100.10"), ONE)));
    assert_eq!(msg(maker(&r, "SELL", "900.00", "0.1", &[])), (-1013, "Filter failure: PERCENT_PRICE_BY_SIDE".into()));
    // MAX_NUM_ORDERS.
    assert_eq!(maker(&r, "BUY", "99.00", "0.1", &[]).status, 200);
    assert_eq!(maker(&r, "BUY", "98.00", "0.1", &[]).status, 200);
    assert_eq!(msg(maker(&r, "BUY", "97.00", "0.1", &[])), (-1013, "Filter failure: MAX_NUM_ORDERS".into()));
    // order/test validates without placing (rest-api.md §Test new order).
    let t = r.call(
        "POST",
        "/api/v3/order/test",
        &[("symbol", "BTCUSDT"), ("side", "BUY"), ("type", "LIMIT_MAKER"), ("price", "99.00"), ("quantity", "0.1")],
        true,
    );
    assert_eq!((t.status, t.body.clone()), (200, json!({})));
    let t = r.call(
        "POST",
        "/api/v3/order/test",
        &[
            ("symbol", "BTCUSDT"),
            ("side", "BUY"),
            ("type", "LIMIT_MAKER"),
            ("price", "99.00"),
            ("quantity", "0.1"),
            ("computeCommissionRates", "true"),
        ],
        true,
    );
    assert_eq!(s(&t.body["standardCommissionForOrder"], "maker"), "0.00100000");
    assert_eq!(d.orders().len(), 2);
}

#[test]
fn cancel_query_open_orders() {
    let d = BinanceDouble::start_default().unwrap();
    let r = rest(&d);
    let a = maker(&r, "BUY", "100.00", "0.5", &[("newClientOrderId", "a")]);
    let id = i(&a.body, "orderId").to_string();
    maker(&r, "BUY", "99.00", "0.5", &[("newClientOrderId", "b")]);
    maker(&r, "SELL", "110.00", "0.5", &[("newClientOrderId", "c")]);
    let q = r.call("GET", "/api/v3/order", &[("symbol", "BTCUSDT"), ("orderId", &id)], true);
    assert_eq!((s(&q.body, "status"), s(&q.body, "clientOrderId")), ("NEW".into(), "a".into()));
    assert_eq!(q.body["isWorking"], json!(true));
    assert_eq!(r.call("GET", "/api/v3/order", &[("symbol", "BTCUSDT"), ("orderId", "999")], true).code(), Some(-2013));
    // orderId and origClientOrderId must agree (rest-api.md §Cancel order Notes).
    assert_eq!(
        r.call("GET", "/api/v3/order", &[("symbol", "BTCUSDT"), ("orderId", &id), ("origClientOrderId", "b")], true)
            .code(),
        Some(-2013)
    );
    let open = r.call("GET", "/api/v3/openOrders", &[("symbol", "BTCUSDT")], true);
    assert_eq!(open.body.as_array().unwrap().len(), 3);
    // cancelRestrictions (rest-api.md §Regarding cancelRestrictions).
    let c = r.call(
        "DELETE",
        "/api/v3/order",
        &[("symbol", "BTCUSDT"), ("orderId", &id), ("cancelRestrictions", "ONLY_PARTIALLY_FILLED")],
        true,
    );
    assert_eq!(
        (c.code(), s(&c.body, "msg")),
        (Some(-2011), "Order was not canceled due to cancel restrictions.".into())
    );
    assert_eq!(
        r.call(
            "DELETE",
            "/api/v3/order",
            &[("symbol", "BTCUSDT"), ("orderId", &id), ("cancelRestrictions", "NOPE")],
            true
        )
        .code(),
        Some(-1145)
    );
    let c =
        r.call("DELETE", "/api/v3/order", &[("symbol", "BTCUSDT"), ("orderId", &id), ("newClientOrderId", "cx")], true);
    assert_eq!(
        (s(&c.body, "status"), s(&c.body, "origClientOrderId"), s(&c.body, "clientOrderId")),
        ("CANCELED".into(), "a".into(), "cx".into())
    );
    assert_eq!(d.balance("USDT").locked, fx("49.5"));
    let again = r.call("DELETE", "/api/v3/order", &[("symbol", "BTCUSDT"), ("orderId", &id)], true);
    assert_eq!((again.code(), s(&again.body, "msg")), (Some(-2011), "Unknown order sent.".into()));
    let c = r.call("DELETE", "/api/v3/order", &[("symbol", "BTCUSDT"), ("origClientOrderId", "b")], true);
    assert_eq!(s(&c.body, "status"), "CANCELED");
    let all = r.call("DELETE", "/api/v3/openOrders", &[("symbol", "BTCUSDT")], true);
    assert_eq!(all.body.as_array().unwrap().len(), 1);
    assert_eq!(d.balance("USDT"), binance_double::Balance { free: fx("100000"), locked: 0 });
    assert_eq!(d.balance("BTC"), binance_double::Balance { free: ONE, locked: 0 });
    assert!(d.orders().iter().all(|o| o.status == OrderStatus::Canceled));
    assert_eq!(r.call("DELETE", "/api/v3/openOrders", &[("symbol", "BTCUSDT")], true).code(), Some(-2011));
}

#[test]
fn market_trades_fill_price_time_with_commission() {
    let d = BinanceDouble::start_default().unwrap();
    let r = rest(&d);
    let b1 = i(&maker(&r, "BUY", "100.00", "0.3", &[]).body, "orderId");
    let b2 = i(&maker(&r, "BUY", "100.00", "0.3", &[]).body, "orderId");
    let b3 = i(&maker(&r, "BUY", "101.00", "0.2", &[]).body, "orderId");
    // A seller trades down to 100 for 0.4: 101 first (price), then the older 100 (time).
    assert_eq!(d.market_trade(Side::Sell, fx("100.00"), fx("0.4")), fx("0.4"));
    assert_eq!(d.order(b3).unwrap().status, OrderStatus::Filled);
    let o1 = d.order(b1).unwrap();
    assert_eq!((o1.status, o1.executed_qty), (OrderStatus::PartiallyFilled, fx("0.2")));
    assert_eq!(d.order(b2).unwrap().executed_qty, 0);
    // Buy: commission in the base asset (commission_faq.md): 0.4 BTC * 0.001 = 0.0004.
    assert_eq!(d.balance("BTC").free, ONE + fx("0.4") - fx("0.0004"));
    // Locked: 0.1 @100 + 0.3 @100 left; spent 0.2*101 + 0.2*100.
    assert_eq!(d.balance("USDT").locked, fx("40"));
    assert_eq!(d.balance("USDT").free, fx("100000") - fx("40") - fx("20.2") - fx("20"));
    // A sell fill pays commission in the quote asset.
    let s1 = i(&maker(&r, "SELL", "110.00", "0.5", &[]).body, "orderId");
    assert_eq!(d.market_trade(Side::Buy, fx("120.00"), fx("1")), fx("0.5"));
    assert_eq!(d.order(s1).unwrap().status, OrderStatus::Filled);
    assert_eq!(d.balance("USDT").free, fx("100000") - fx("40") - fx("20.2") - fx("20") + fx("55") - fx("0.055"));
    let trades = d.trades();
    assert_eq!(trades.len(), 3);
    assert!(trades.iter().all(|t| t.is_maker));
    // myTrades: most recent up to limit; fromId pages forward (rest-api.md §Account trade list).
    let mt = r.call("GET", "/api/v3/myTrades", &[("symbol", "BTCUSDT"), ("limit", "2")], true);
    let ids: Vec<i64> = mt.body.as_array().unwrap().iter().map(|t| i(t, "id")).collect();
    assert_eq!(ids, vec![trades[1].id, trades[2].id]);
    let first = trades[0].id.to_string();
    let page = r.call("GET", "/api/v3/myTrades", &[("symbol", "BTCUSDT"), ("fromId", &first), ("limit", "2")], true);
    let ids: Vec<i64> = page.body.as_array().unwrap().iter().map(|t| i(t, "id")).collect();
    assert_eq!(ids, vec![trades[0].id, trades[1].id]);
    let t0 = &page.body[0];
    assert_eq!(
        (s(t0, "price"), s(t0, "commissionAsset"), t0["isBuyer"].clone(), t0["isMaker"].clone()),
        ("101.00000000".into(), "BTC".into(), json!(true), json!(true))
    );
    let by_order = r.call("GET", "/api/v3/myTrades", &[("symbol", "BTCUSDT"), ("orderId", &s1.to_string())], true);
    assert_eq!(by_order.body.as_array().unwrap().len(), 1);
    assert_eq!(s(&by_order.body[0], "commission"), "0.05500000");
}

#[test]
fn printed_trades_and_exchange_expiry() {
    let d = BinanceDouble::start_default().unwrap();
    let r = rest(&d);
    let b = i(&maker(&r, "BUY", "100.00", "0.1", &[]).body, "orderId");
    let a = i(&maker(&r, "SELL", "101.00", "0.1", &[]).body, "orderId");
    assert_eq!(d.print_trade(fx("100.50"), ONE), 0, "between our prices: nothing of ours trades");
    assert_eq!(d.print_trade(fx("100.00"), fx("0.04")), fx("0.04"));
    assert_eq!(d.order(b).unwrap().executed_qty, fx("0.04"));
    assert!(d.expire_order(a));
    assert!(!d.expire_order(a));
    let ev = d.events().into_iter().rev().find(|e| s(e, "e") == "executionReport").unwrap();
    assert_eq!(
        (s(&ev, "x"), s(&ev, "X"), s(&ev, "eR")),
        ("EXPIRED".into(), "EXPIRED".into(), "EXCHANGE_CANCELED".into())
    );
    assert_eq!(d.balance("BTC").locked, 0);
}

#[test]
fn commission_in_bnb_when_enabled_and_held() {
    let cfg = DoubleConfig {
        balances: vec![("BTC".into(), ONE), ("USDT".into(), 10_000 * ONE), ("BNB".into(), ONE)],
        commission: binance_double::Commission {
            pay_in_bnb: true,
            bnb_price_in_quote: 500 * ONE,
            bnb_discount_multiplier: ONE * 3 / 4,
            ..Default::default()
        },
        ..Default::default()
    };
    let d = BinanceDouble::start(cfg).unwrap();
    let r = rest(&d);
    maker(&r, "SELL", "1000.00", "0.5", &[]);
    d.market_trade(Side::Buy, fx("1000.00"), fx("0.5"));
    // 500 USDT notional * 0.001 = 0.5 USDT, * 0.75 = 0.375 USDT, / 500 = 0.00075 BNB.
    let t = &d.trades()[0];
    assert_eq!((t.commission, t.commission_asset.as_str()), (fx("0.00075"), "BNB"));
    assert_eq!(d.balance("BNB").free, ONE - fx("0.00075"));
    assert_eq!(d.balance("USDT").free, fx("10500"));
}

// ---------------------------------------------------------------- cancelReplace

fn cancel_replace(r: &Rest, cancel_id: &str, price: &str, extra: &[(&str, &str)]) -> RestResponse {
    let mut p = vec![
        ("symbol", "BTCUSDT"),
        ("side", "BUY"),
        ("type", "LIMIT_MAKER"),
        ("price", price),
        ("quantity", "0.1"),
        ("cancelReplaceMode", "STOP_ON_FAILURE"),
        ("cancelOrderId", cancel_id),
    ];
    for (k, v) in extra {
        p.retain(|(n, _)| n != k);
        p.push((k, v));
    }
    r.call("POST", "/api/v3/order/cancelReplace", &p, true)
}

#[test]
fn cancel_replace_modes_and_statuses() {
    // rest-api.md §Cancel an Existing Order and Send a New Order (the mode/status table).
    let d = BinanceDouble::start_default().unwrap();
    let r = rest(&d);
    d.set_market(None, Some((fx("105.00"), ONE)));
    let id = i(&maker(&r, "BUY", "100.00", "0.1", &[]).body, "orderId").to_string();
    let ok = cancel_replace(&r, &id, "101.00", &[("newOrderRespType", "RESULT")]);
    assert_eq!(ok.status, 200, "{:?}", ok.body);
    assert_eq!((s(&ok.body, "cancelResult"), s(&ok.body, "newOrderResult")), ("SUCCESS".into(), "SUCCESS".into()));
    assert_eq!(s(&ok.body["cancelResponse"], "status"), "CANCELED");
    assert_eq!(s(&ok.body["newOrderResponse"], "status"), "NEW");
    let new_id = i(&ok.body["newOrderResponse"], "orderId").to_string();
    // STOP_ON_FAILURE with an unknown order: 400 -2022, NOT_ATTEMPTED.
    let f = cancel_replace(&r, "999", "101.00", &[]);
    assert_eq!((f.status, f.code()), (400, Some(-2022)));
    assert_eq!(s(&f.body["data"], "newOrderResult"), "NOT_ATTEMPTED");
    assert_eq!(i(&f.body["data"]["cancelResponse"], "code"), -2011);
    // Cancel succeeds, the new order would take: 409 -2021, and a REJECTED execution report.
    let p = cancel_replace(&r, &new_id, "106.00", &[]);
    assert_eq!((p.status, p.code()), (409, Some(-2021)));
    assert_eq!(
        (s(&p.body["data"], "cancelResult"), s(&p.body["data"], "newOrderResult")),
        ("SUCCESS".into(), "FAILURE".into())
    );
    assert_eq!(s(&p.body["data"]["newOrderResponse"], "msg"), "Order would immediately match and take.");
    assert!(d.events().iter().any(|e| s(e, "x") == "REJECTED" && s(e, "r") == "WOULD_MATCH_IMMEDIATELY"));
    // ALLOW_FAILURE: cancel fails, new succeeds → 409; both fail → 400 -2022.
    let a = cancel_replace(&r, "999", "101.00", &[("cancelReplaceMode", "ALLOW_FAILURE")]);
    assert_eq!((a.status, a.code()), (409, Some(-2021)));
    assert_eq!(s(&a.body["data"], "newOrderResult"), "SUCCESS");
    let b = cancel_replace(&r, "999", "106.00", &[("cancelReplaceMode", "ALLOW_FAILURE")]);
    assert_eq!((b.status, b.code()), (400, Some(-2022)));
    // Unfilled order count exceeded: DO_NOTHING → 429 -1015 and nothing done; CANCEL_ONLY → 429 with the cancel done.
    d.set_rate_limits(RateLimits { orders_per_10s: 0, hold_windows: true, ..Default::default() });
    let open_id = d.open_orders()[0].order_id.to_string();
    let dn = cancel_replace(&r, &open_id, "101.00", &[]);
    assert_eq!((dn.status, dn.code()), (429, Some(-1015)));
    assert!(dn.header("Retry-After").is_some());
    assert_eq!(d.open_orders().len(), 1);
    let co = cancel_replace(&r, &open_id, "101.00", &[("orderRateLimitExceededMode", "CANCEL_ONLY")]);
    assert_eq!((co.status, co.code()), (429, Some(-2021)));
    assert_eq!(i(&co.body["data"]["newOrderResponse"], "code"), -1015);
    assert_eq!(d.open_orders().len(), 0);
    // Not allowed on the symbol.
    let cfg = DoubleConfig {
        rules: binance_double::SymbolRules { cancel_replace_allowed: false, ..Default::default() },
        ..Default::default()
    };
    let d2 = BinanceDouble::start(cfg).unwrap();
    let r2 = rest(&d2);
    let id = i(&maker(&r2, "BUY", "100.00", "0.1", &[]).body, "orderId").to_string();
    assert_eq!(cancel_replace(&r2, &id, "101.00", &[]).code(), Some(-2010));
}

// ---------------------------------------------------------------- self-trade prevention

#[test]
fn self_trade_prevention_per_mode() {
    // stp_faq.md §What happens when STP is triggered?, scenarios B, C, D, G.
    let d = BinanceDouble::start_default().unwrap();
    let r = rest(&d);
    let mut ws = WsClient::connect(&d.ws_api_url()).unwrap();
    ws.signed("userDataStream.subscribe.signature", json!({}), DOC_HMAC_KEY, &hmac()).unwrap();
    // EXPIRE_MAKER: our resting order expires, the other session's order rests.
    let ours = i(&maker(&r, "BUY", "100.00", "0.2", &[("selfTradePreventionMode", "NONE")]).body, "orderId");
    let taker = d.place_other_session_order(Side::Sell, fx("100.00"), fx("0.1"), "GTC", "EXPIRE_MAKER").unwrap();
    let o = d.order(ours).unwrap();
    assert_eq!((o.status, o.prevented_qty), (OrderStatus::ExpiredInMatch, fx("0.2")));
    assert_eq!(taker.status, OrderStatus::New);
    // Our BUY's lock is released; the other session's SELL locks its BTC.
    assert_eq!((d.balance("USDT").locked, d.balance("BTC").locked), (0, fx("0.1")));
    next_of(&mut ws, "executionReport");
    let tp = d.events().into_iter().find(|e| s(e, "x") == "TRADE_PREVENTION").unwrap();
    assert_eq!(
        (s(&tp, "X"), s(&tp, "A"), s(&tp, "B")),
        ("EXPIRED_IN_MATCH".into(), "0.20000000".into(), "0.20000000".into())
    );
    let q = r.call("GET", "/api/v3/order", &[("symbol", "BTCUSDT"), ("orderId", &ours.to_string())], true);
    assert_eq!(
        (s(&q.body, "status"), s(&q.body, "preventedQuantity")),
        ("EXPIRED_IN_MATCH".into(), "0.20000000".into())
    );
    assert!(q.body.get("preventedMatchId").is_some());
    r.call("DELETE", "/api/v3/openOrders", &[("symbol", "BTCUSDT")], true);
    // EXPIRE_TAKER: ours stays, the taker expires.
    let ours = i(&maker(&r, "BUY", "100.00", "0.2", &[]).body, "orderId");
    let t = d.place_other_session_order(Side::Sell, fx("100.00"), fx("0.1"), "GTC", "EXPIRE_TAKER").unwrap();
    assert_eq!(t.status, OrderStatus::ExpiredInMatch);
    assert_eq!(d.order(ours).unwrap().status, OrderStatus::New);
    // EXPIRE_BOTH.
    let t = d.place_other_session_order(Side::Sell, fx("100.00"), fx("0.1"), "GTC", "EXPIRE_BOTH").unwrap();
    assert_eq!((t.status, d.order(ours).unwrap().status), (OrderStatus::ExpiredInMatch, OrderStatus::ExpiredInMatch));
    // DECREMENT: both lose the smaller quantity; the smaller expires, the larger works on.
    let ours = i(&maker(&r, "BUY", "100.00", "0.3", &[]).body, "orderId");
    let t = d.place_other_session_order(Side::Sell, fx("100.00"), fx("0.1"), "GTC", "DECREMENT").unwrap();
    let o = d.order(ours).unwrap();
    assert_eq!(
        (t.status, o.status, o.prevented_qty, o.available()),
        (OrderStatus::ExpiredInMatch, OrderStatus::New, fx("0.1"), fx("0.2"))
    );
    // NONE: a self-trade, two fills with one trade id.
    let t = d.place_other_session_order(Side::Sell, fx("100.00"), fx("0.05"), "IOC", "NONE").unwrap();
    assert_eq!(t.status, OrderStatus::Filled);
    let tr = d.trades();
    assert_eq!(tr.len(), 2);
    assert_eq!(tr[0].id, tr[1].id);
    assert_eq!(d.order(ours).unwrap().executed_qty, fx("0.05"));
}

// ---------------------------------------------------------------- more order types and endpoints

#[test]
fn limit_orders_take_from_the_market_level() {
    let d = BinanceDouble::start_default().unwrap();
    let r = rest(&d);
    d.set_market(Some((fx("99.00"), fx("1"))), Some((fx("100.00"), fx("0.3"))));
    let lim = |tif: &str, qty: &str| {
        r.call(
            "POST",
            "/api/v3/order",
            &[
                ("symbol", "BTCUSDT"),
                ("side", "BUY"),
                ("type", "LIMIT"),
                ("timeInForce", tif),
                ("price", "100.50"),
                ("quantity", qty),
            ],
            true,
        )
    };
    // FOK that cannot fill fully expires without trading.
    let fok = lim("FOK", "0.5");
    assert_eq!((s(&fok.body, "status"), fok.body["fills"].clone()), ("EXPIRED".into(), json!([])));
    // IOC takes 0.3 at 100.00 (the level's price) and expires the rest; LIMIT defaults to FULL.
    let ioc = lim("IOC", "0.5");
    assert_eq!((s(&ioc.body, "status"), s(&ioc.body, "executedQty")), ("EXPIRED".into(), "0.30000000".into()));
    let f = &ioc.body["fills"][0];
    assert_eq!(
        (s(f, "price"), s(f, "qty"), s(f, "commission"), s(f, "commissionAsset")),
        ("100.00000000".into(), "0.30000000".into(), "0.00030000".into(), "BTC".into())
    );
    assert!(!d.trades()[0].is_maker);
    // Price improvement returns the excess lock: paid 30 USDT, nothing left locked.
    assert_eq!(d.balance("USDT"), binance_double::Balance { free: fx("99970"), locked: 0 });
    // GTC with the level used up rests on the book.
    let gtc = lim("GTC", "0.1");
    assert_eq!(s(&gtc.body, "status"), "NEW");
    assert_eq!(d.balance("USDT").locked, fx("10.05"));
    let bad = r.call(
        "POST",
        "/api/v3/order",
        &[("symbol", "BTCUSDT"), ("side", "BUY"), ("type", "LIMIT"), ("price", "100.50"), ("quantity", "0.1")],
        true,
    );
    assert_eq!(bad.code(), Some(-1102), "LIMIT needs timeInForce");
    let market = r.call(
        "POST",
        "/api/v3/order",
        &[("symbol", "BTCUSDT"), ("side", "BUY"), ("type", "MARKET"), ("quantity", "0.1")],
        true,
    );
    assert_eq!(market.code(), Some(-1020), "the double serves LIMIT and LIMIT_MAKER only");
}

#[test]
fn unfilled_order_count_and_commission_endpoints() {
    let d = BinanceDouble::start(DoubleConfig {
        limits: RateLimits { hold_windows: true, ..Default::default() },
        ..Default::default()
    })
    .unwrap();
    let r = rest(&d);
    maker(&r, "BUY", "100.00", "0.1", &[]);
    let c = r.call("GET", "/api/v3/rateLimit/order", &[], true);
    assert_eq!(i(&c.body[0], "count"), 1);
    let cm = r.call("GET", "/api/v3/account/commission", &[("symbol", "BTCUSDT")], true);
    assert_eq!(s(&cm.body["standardCommission"], "maker"), "0.00100000");
    d.set_unknown_status_http(500);
    d.fault_unexpected_every(1);
    assert_eq!(maker(&r, "BUY", "99.00", "0.1", &[]).status, 500);
    // Faults can hit cancels too.
    d.set_fault_methods(&["order.cancel"]);
    let id = d.open_orders()[0].order_id.to_string();
    let c = r.call("DELETE", "/api/v3/order", &[("symbol", "BTCUSDT"), ("orderId", &id)], true);
    assert_eq!((c.status, c.code()), (500, Some(-1006)));
    assert_eq!(d.order(id.parse().unwrap()).unwrap().status, OrderStatus::Canceled);
    let (w, o10, _) = d.usage();
    assert!(w > 0 && o10 == 2);
}

// ---------------------------------------------------------------- several symbols

/// One account trading two symbols (DoubleConfig::more_symbols): exchangeInfo lists both
/// (rest-api.md §Exchange information, `symbol`/`symbols`); orders, lookups, cancels,
/// cancelAll, cancelReplace, myTrades and MAX_NUM_ORDERS act on the named symbol, with ids per
/// symbol; openOrders without `symbol` returns every symbol's (rest-api.md §Current open orders);
/// an unknown symbol is -1121 (errors.md); the balances are shared (a BTCUSDT buy and an ETHUSDT
/// buy both lock USDT); one user-data subscription gets both symbols' events, each
/// outboundAccountPosition with the assets of the symbol that changed (user-data-stream.md).
#[test]
fn two_symbols_on_one_account() {
    use serde_json::Value;
    use std::time::Duration;

    let eth = binance_double::SymbolRules {
        max_num_orders: 2,
        ..binance_double::SymbolRules::named("ETHUSDT", "ETH", "USDT")
    };
    let cfg = DoubleConfig {
        more_symbols: vec![eth],
        balances: vec![("BTC".into(), ONE), ("USDT".into(), fx("100000")), ("ETH".into(), fx("2")), ("BNB".into(), 0)],
        ..Default::default()
    };
    let d = BinanceDouble::start(cfg).unwrap();
    assert_eq!(d.symbols(), vec!["BTCUSDT".to_string(), "ETHUSDT".to_string()]);
    assert_eq!(d.default_symbol(), "BTCUSDT");
    let r = rest(&d);
    let mut ws = WsClient::connect(&d.ws_api_url()).unwrap();
    let sub = ws.signed("userDataStream.subscribe.signature", json!({}), DOC_HMAC_KEY, &hmac()).unwrap();
    assert_eq!(i(&sub, "status"), 200, "{sub}");

    // exchangeInfo: all, one, several; unknown → -1121.
    let names = |v: &Value| -> Vec<String> {
        v["symbols"].as_array().unwrap().iter().map(|x| s(x, "symbol")).collect::<Vec<_>>()
    };
    let all = r.call("GET", "/api/v3/exchangeInfo", &[], false);
    assert_eq!(names(&all.body), vec!["BTCUSDT", "ETHUSDT"]);
    let max_orders = |v: &Value, sym: &str| -> i64 {
        let e = v["symbols"].as_array().unwrap().iter().find(|x| s(x, "symbol") == sym).unwrap().clone();
        let f =
            e["filters"].as_array().unwrap().iter().find(|f| s(f, "filterType") == "MAX_NUM_ORDERS").unwrap().clone();
        i(&f, "maxNumOrders")
    };
    assert_eq!((max_orders(&all.body, "BTCUSDT"), max_orders(&all.body, "ETHUSDT")), (200, 2));
    let one = r.call("GET", "/api/v3/exchangeInfo", &[("symbol", "ETHUSDT")], false);
    assert_eq!(names(&one.body), vec!["ETHUSDT"]);
    assert_eq!(
        (s(&one.body["symbols"][0], "baseAsset"), s(&one.body["symbols"][0], "quoteAsset")),
        ("ETH".into(), "USDT".into())
    );
    let both = r.call("GET", "/api/v3/exchangeInfo", &[("symbols", r#"["ETHUSDT","BTCUSDT"]"#)], false);
    let mut got = names(&both.body);
    got.sort();
    assert_eq!(got, vec!["BTCUSDT", "ETHUSDT"]);
    assert_eq!(r.call("GET", "/api/v3/exchangeInfo", &[("symbol", "XRPUSDT")], false).code(), Some(-1121));
    assert_eq!(
        r.call("GET", "/api/v3/exchangeInfo", &[("symbols", r#"["ETHUSDT","XRPUSDT"]"#)], false).code(),
        Some(-1121)
    );
    assert_eq!(r.call("GET", "/api/v3/exchangeInfo", &[("symbols", "ETHUSDT")], false).code(), Some(-1100));
    assert_eq!(
        r.call("GET", "/api/v3/exchangeInfo", &[("symbol", "ETHUSDT"), ("symbols", r#"["ETHUSDT"]"#)], false).code(),
        Some(-1128)
    );
    let wi = ws.request("exchangeInfo", json!({"symbols": ["ETHUSDT"]})).unwrap();
    assert_eq!(names(&wi["result"]), vec!["ETHUSDT"]);

    // Orders on both symbols; ids count per symbol; both buys lock the shared USDT.
    let b1 = maker_on(&r, "BTCUSDT", "BUY", "100.00", "0.5", &[("newClientOrderId", "b1")]);
    assert_eq!((b1.status, s(&b1.body, "symbol"), i(&b1.body, "orderId")), (200, "BTCUSDT".into(), 1), "{:?}", b1.body);
    let e1 = maker_on(&r, "ETHUSDT", "BUY", "10.00", "1", &[("newClientOrderId", "e1")]);
    assert_eq!((e1.status, s(&e1.body, "symbol"), i(&e1.body, "orderId")), (200, "ETHUSDT".into(), 1), "{:?}", e1.body);
    assert_eq!(d.balance("USDT"), binance_double::Balance { free: fx("99940"), locked: fx("60") });
    // Each symbol has its own market: ETHUSDT's ask refuses a crossing maker there only.
    d.set_market_for("ETHUSDT", Some((fx("9.99"), fx("5"))), Some((fx("10.01"), fx("5"))));
    assert_eq!(
        s(&maker_on(&r, "ETHUSDT", "BUY", "10.01", "1", &[]).body, "msg"),
        "Order would immediately match and take."
    );
    let e2 = maker_on(&r, "ETHUSDT", "SELL", "12.00", "0.5", &[("newClientOrderId", "e2")]);
    assert_eq!(i(&e2.body, "orderId"), 2, "{:?}", e2.body);
    assert_eq!(d.balance("ETH"), binance_double::Balance { free: fx("1.5"), locked: fx("0.5") });
    // MAX_NUM_ORDERS is per symbol (filters.md: "open on a symbol"): ETHUSDT's 2 are used, BTCUSDT still takes orders.
    assert_eq!(s(&maker_on(&r, "ETHUSDT", "BUY", "9.00", "1", &[]).body, "msg"), "Filter failure: MAX_NUM_ORDERS");
    let b2 = maker_on(&r, "BTCUSDT", "BUY", "99.00", "0.1", &[("newClientOrderId", "b2")]);
    assert_eq!(i(&b2.body, "orderId"), 2, "{:?}", b2.body);
    // The same orderId names a different order on each symbol.
    let q = |sym: &str, id: &str| r.call("GET", "/api/v3/order", &[("symbol", sym), ("orderId", id)], true);
    assert_eq!(s(&q("BTCUSDT", "2").body, "price"), "99.00000000");
    assert_eq!(s(&q("ETHUSDT", "2").body, "price"), "12.00000000");
    assert_eq!(q("BTCUSDT", "3").code(), Some(-2013));
    let c = r.call("DELETE", "/api/v3/order", &[("symbol", "BTCUSDT"), ("orderId", "2")], true);
    assert_eq!((s(&c.body, "symbol"), s(&c.body, "status")), ("BTCUSDT".into(), "CANCELED".into()));
    assert_eq!(d.order_on("ETHUSDT", 2).unwrap().status, OrderStatus::New);
    // A client id is looked up on the named symbol only.
    let wrong = r.call("DELETE", "/api/v3/order", &[("symbol", "ETHUSDT"), ("origClientOrderId", "b1")], true);
    assert_eq!(wrong.code(), Some(-2011));

    // openOrders with and without symbol.
    let oo = |p: &[(&str, &str)]| r.call("GET", "/api/v3/openOrders", p, true);
    let every = oo(&[]);
    let mut syms: Vec<String> = every.body.as_array().unwrap().iter().map(|o| s(o, "symbol")).collect();
    syms.sort();
    assert_eq!(syms, vec!["BTCUSDT", "ETHUSDT", "ETHUSDT"]);
    assert_eq!(oo(&[("symbol", "ETHUSDT")]).body.as_array().unwrap().len(), 2);
    assert_eq!(oo(&[("symbol", "BTCUSDT")]).body.as_array().unwrap().len(), 1);
    assert_eq!(oo(&[("symbol", "XRPUSDT")]).code(), Some(-1121));
    let wo = ws.signed("openOrders.status", json!({}), DOC_HMAC_KEY, &hmac()).unwrap();
    assert_eq!(wo["result"].as_array().unwrap().len(), 3, "{wo}");
    assert_eq!(d.open_orders().len(), 3);
    assert_eq!(
        d.open_orders_on("ETHUSDT").iter().map(|o| o.client_order_id.clone()).collect::<Vec<_>>(),
        vec!["e1", "e2"]
    );

    // A trade on each symbol. The ETHUSDT sell-through to 10.00 would cross the BTCUSDT bid at
    // 100.00 too, but fills only ETHUSDT's orders.
    assert_eq!(d.market_trade_on("ETHUSDT", Side::Sell, fx("10.00"), ONE), ONE);
    assert_eq!(d.order(1).unwrap().executed_qty, 0);
    assert_eq!(d.market_trade(Side::Sell, fx("100.00"), fx("0.2")), fx("0.2"));
    assert_eq!(d.order_on("BTCUSDT", 1).unwrap().executed_qty, fx("0.2"));
    assert_eq!(d.order_on("ETHUSDT", 1).unwrap().status, OrderStatus::Filled);
    let tr: Vec<(String, i64)> = d.trades().iter().map(|t| (t.symbol.clone(), t.id)).collect();
    assert_eq!(tr, vec![("ETHUSDT".to_string(), 1), ("BTCUSDT".to_string(), 1)]);
    assert_eq!(d.trades_on("ETHUSDT")[0].qty, ONE);
    assert_eq!(d.max_open_per_side(), (2, 0));
    assert_eq!(d.max_open_per_side_on("ETHUSDT"), (1, 1));
    // Shared balances: ETH 1.5 + 1 - 0.001 commission free, 0.5 locked; USDT 50 - 20 locked;
    // BTC 1 + 0.2 - 0.0002.
    assert_eq!(d.balance("ETH"), binance_double::Balance { free: fx("2.499"), locked: fx("0.5") });
    assert_eq!(d.balance("USDT"), binance_double::Balance { free: fx("99940"), locked: fx("30") });
    assert_eq!(d.balance("BTC").free, fx("1.1998"));
    let acct = r.call("GET", "/api/v3/account", &[], true);
    let bal = |a: &str| {
        let b = acct.body["balances"].as_array().unwrap().iter().find(|b| s(b, "asset") == a).unwrap().clone();
        (s(&b, "free"), s(&b, "locked"))
    };
    assert_eq!(bal("ETH"), ("2.49900000".into(), "0.50000000".into()));
    assert_eq!(bal("USDT"), ("99940.00000000".into(), "30.00000000".into()));

    // myTrades per symbol (symbol mandatory).
    let mt = |p: &[(&str, &str)]| r.call("GET", "/api/v3/myTrades", p, true);
    let et = mt(&[("symbol", "ETHUSDT")]);
    assert_eq!(et.body.as_array().unwrap().len(), 1);
    assert_eq!(
        (s(&et.body[0], "symbol"), s(&et.body[0], "price"), i(&et.body[0], "id")),
        ("ETHUSDT".into(), "10.00000000".into(), 1)
    );
    let bt = mt(&[("symbol", "BTCUSDT")]);
    assert_eq!((bt.body.as_array().unwrap().len(), s(&bt.body[0], "qty")), (1, "0.20000000".into()));
    assert_eq!(mt(&[]).code(), Some(-1102));
    assert_eq!(mt(&[("symbol", "XRPUSDT")]).code(), Some(-1121));
    let ws_st = ws.signed("order.status", json!({"symbol": "ETHUSDT", "orderId": 1}), DOC_HMAC_KEY, &hmac()).unwrap();
    assert_eq!(s(&ws_st["result"], "status"), "FILLED");

    // cancelReplace looks up the order on its symbol: ETHUSDT's order 1 is filled (BTCUSDT's is open).
    let cr = r.call(
        "POST",
        "/api/v3/order/cancelReplace",
        &[
            ("symbol", "ETHUSDT"),
            ("side", "BUY"),
            ("type", "LIMIT_MAKER"),
            ("price", "9.00"),
            ("quantity", "1"),
            ("cancelReplaceMode", "STOP_ON_FAILURE"),
            ("cancelOrderId", "1"),
        ],
        true,
    );
    assert_eq!(cr.code(), Some(-2022), "{:?}", cr.body);
    // cancelAll is per symbol.
    let ca = r.call("DELETE", "/api/v3/openOrders", &[("symbol", "ETHUSDT")], true);
    assert_eq!(ca.body.as_array().unwrap().iter().map(|o| s(o, "origClientOrderId")).collect::<Vec<_>>(), vec!["e2"]);
    assert_eq!(d.balance("ETH"), binance_double::Balance { free: fx("2.999"), locked: 0 });
    assert_eq!(r.call("DELETE", "/api/v3/openOrders", &[("symbol", "ETHUSDT")], true).code(), Some(-2011));
    let left: Vec<(String, String)> =
        d.open_orders().iter().map(|o| (o.symbol.clone(), o.client_order_id.clone())).collect();
    assert_eq!(left, vec![("BTCUSDT".to_string(), "b1".to_string())]);

    // Unknown symbols: -1121 everywhere.
    assert_eq!(maker_on(&r, "XRPUSDT", "BUY", "1.00", "10", &[]).code(), Some(-1121));
    assert_eq!(q("XRPUSDT", "1").code(), Some(-1121));
    assert_eq!(r.call("DELETE", "/api/v3/order", &[("symbol", "XRPUSDT"), ("orderId", "1")], true).code(), Some(-1121));
    assert_eq!(r.call("DELETE", "/api/v3/openOrders", &[("symbol", "XRPUSDT")], true).code(), Some(-1121));
    assert_eq!(r.call("GET", "/api/v3/account/commission", &[("symbol", "XRPUSDT")], true).code(), Some(-1121));
    let cm = r.call("GET", "/api/v3/account/commission", &[("symbol", "ETHUSDT")], true);
    assert_eq!(s(&cm.body, "symbol"), "ETHUSDT");

    // The one subscription got both symbols' events, in order, each position with the assets
    // of the symbol that changed.
    let mut evs: Vec<Value> = Vec::new();
    for _ in 0..1000 {
        match ws.next_event(Duration::from_millis(300)) {
            Ok(Some(v)) => evs.push(v["event"].clone()),
            _ => break,
        }
    }
    let reports: Vec<(String, String, String)> = evs
        .iter()
        .filter(|e| s(e, "e") == "executionReport")
        .map(|e| (s(e, "s"), s(e, "x"), if s(e, "x") == "CANCELED" { s(e, "C") } else { s(e, "c") }))
        .collect();
    let want: Vec<(String, String, String)> = [
        ("BTCUSDT", "NEW", "b1"),
        ("ETHUSDT", "NEW", "e1"),
        ("ETHUSDT", "NEW", "e2"),
        ("BTCUSDT", "NEW", "b2"),
        ("BTCUSDT", "CANCELED", "b2"),
        ("ETHUSDT", "TRADE", "e1"),
        ("BTCUSDT", "TRADE", "b1"),
        ("ETHUSDT", "CANCELED", "e2"),
    ]
    .iter()
    .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
    .collect();
    assert_eq!(reports, want);
    let mut positions = 0;
    for w in evs.windows(2) {
        if s(&w[1], "e") != "outboundAccountPosition" {
            continue;
        }
        positions += 1;
        assert_eq!(s(&w[0], "e"), "executionReport", "{w:?}");
        let mut assets: Vec<String> = w[1]["B"].as_array().unwrap().iter().map(|b| s(b, "a")).collect();
        assets.sort();
        let want = if s(&w[0], "s") == "ETHUSDT" { ["BNB", "ETH", "USDT"] } else { ["BNB", "BTC", "USDT"] };
        assert_eq!(assets, want, "{w:?}");
    }
    assert_eq!(positions, want.len());
    assert_eq!(d.server_panics(), 0);
}

//! Self-tests of the Binance spot test double (tests/binance_double/), its transport: request
//! weight and order-count limits, bans, injected faults and answer delays, and the WebSocket API
//! (logon, user data events, subscriptions, pings, serverShutdown), each checked through its
//! HTTP and WebSocket doors, with the docs' own examples where they exist. Trading behaviour is in
//! tests/binance_double_selftest.rs.
//! Every wait is bounded; no test asserts how fast anything is.

#[path = "binance_double/mod.rs"]
mod binance_double;

use std::time::{Duration, Instant};

use binance_double::client::{new_ed25519_key, Rest, Signer, WsClient};
use binance_double::config::DOC_HMAC_KEY;
use binance_double::fixed::ONE;
use binance_double::{BinanceDouble, DoubleConfig, OrderStatus, RateLimits, Side};
use serde_json::{json, Value};

use binance_double::testkit::{
    doc_hmac as hmac, doc_rest as rest, fx, int_of as i, next_event_of as next_of, place_maker as maker, str_of as s,
};

// ---------------------------------------------------------------- rate limits and bans

#[test]
fn weight_and_order_limits_answer_429_with_headers() {
    let d = BinanceDouble::start(DoubleConfig {
        limits: RateLimits { weight_per_minute: 30, orders_per_10s: 2, hold_windows: true, ..Default::default() },
        ..Default::default()
    })
    .unwrap();
    let r = rest(&d);
    let a = maker(&r, "BUY", "100.00", "0.1", &[]);
    assert_eq!(a.header("X-MBX-ORDER-COUNT-10S"), Some("1"));
    assert_eq!(a.header("X-MBX-USED-WEIGHT-1M"), Some("1"));
    maker(&r, "BUY", "99.00", "0.1", &[]);
    let c = maker(&r, "BUY", "98.00", "0.1", &[]);
    assert_eq!((c.status, c.code()), (429, Some(-1015)));
    assert_eq!(s(&c.body, "msg"), "Too many new orders; current limit is 2 orders per 10 SECOND.");
    assert!(c.header("Retry-After").unwrap().parse::<u64>().unwrap() <= 10);
    // exchangeInfo weighs 20: the second one passes 30.
    assert_eq!(r.call("GET", "/api/v3/exchangeInfo", &[], false).status, 200);
    let w = r.call("GET", "/api/v3/exchangeInfo", &[], false);
    assert_eq!((w.status, w.code()), (429, Some(-1003)));
    assert!(
        s(&w.body, "msg").starts_with("Too much request weight used; current limit is 30 request weight per 1 MINUTE.")
    );
    assert!(w.header("Retry-After").unwrap().parse::<u64>().unwrap() <= 60);
    assert!(w.header("X-MBX-USED-WEIGHT-1M").unwrap().parse::<u32>().unwrap() > 30);
    assert_eq!(d.answered_429(), (1, 1));
    d.reset_rate_counters();
    assert_eq!(r.call("GET", "/api/v3/time", &[], false).status, 200);
}

#[test]
fn repeated_429s_become_a_ban_over_rest_and_ws() {
    let d = BinanceDouble::start(DoubleConfig {
        limits: RateLimits {
            weight_per_minute: 5,
            ban_after_429s: Some(3),
            auto_ban: Duration::from_secs(30),
            ..Default::default()
        },
        ..Default::default()
    })
    .unwrap();
    let r = rest(&d);
    let mut statuses = Vec::new();
    for _ in 0..9 {
        statuses.push(r.call("GET", "/api/v3/time", &[], false).status);
    }
    // 2 for connect would not fit; the time calls: 5 pass, 2 are 429, the 3rd 429 becomes 418.
    assert_eq!(statuses, vec![200, 200, 200, 200, 200, 429, 429, 418, 418]);
    assert!(d.is_banned());
    assert_eq!(d.requests_during_ban(), 1, "the request that started the ban is not counted as during it");
    let b = r.call("GET", "/api/v3/account", &[], true);
    assert_eq!((b.status, b.code()), (418, Some(-1003)));
    assert!(s(&b.body, "msg").contains("IP banned until"));
    assert!(b.header("Retry-After").unwrap().parse::<u64>().unwrap() <= 30);
    assert!(WsClient::connect(&d.ws_api_url()).is_err(), "WS connect is refused during a ban");
    assert_eq!(d.requests_during_ban(), 3);
    d.lift_ban();
    d.reset_rate_counters();
    assert_eq!(r.call("GET", "/api/v3/time", &[], false).status, 200);
}

#[test]
fn manual_ban_covers_every_endpoint_and_drops_connections() {
    let d = BinanceDouble::start_default().unwrap();
    let r = rest(&d);
    let mut ws = WsClient::connect(&d.ws_api_url()).unwrap();
    assert_eq!(i(&ws.request("time", Value::Null).unwrap(), "status"), 200);
    d.ban_ip(Duration::from_secs(60));
    // The open connection is dropped.
    let mut gone = false;
    for _ in 0..100 {
        if ws.recv(Duration::from_millis(20)).is_err() {
            gone = true;
            break;
        }
    }
    assert!(gone, "WebSocket connection dropped by the ban");
    for (verb, path) in [
        ("GET", "/api/v3/time"),
        ("GET", "/api/v3/exchangeInfo"),
        ("POST", "/api/v3/order"),
        ("DELETE", "/api/v3/openOrders"),
        ("GET", "/api/v3/nothing"),
    ] {
        let x = r.call(verb, path, &[], false);
        assert_eq!(x.status, 418, "{verb} {path}");
    }
    assert!(WsClient::connect(&d.ws_api_url()).is_err());
    assert_eq!(d.requests_during_ban(), 6);
    assert!(d.request_log().iter().filter(|l| l.during_ban).count() >= 4);
    d.lift_ban();
    assert_eq!(r.call("GET", "/api/v3/time", &[], false).status, 200);
}

// ---------------------------------------------------------------- faults

#[test]
fn timeout_fault_answers_1007_and_places_late() {
    let d = BinanceDouble::start_default().unwrap();
    let r = rest(&d);
    d.fault_timeout_every(2, Duration::from_millis(300));
    assert_eq!(maker(&r, "BUY", "100.00", "0.1", &[("newClientOrderId", "one")]).status, 200);
    let t = maker(&r, "BUY", "99.00", "0.1", &[("newClientOrderId", "two")]);
    assert_eq!((t.status, t.code()), (503, Some(-1007)));
    // Until the engine gets it, lookups say -2013 (errors.md §-2013 NO_SUCH_ORDER).
    let q = r.call("GET", "/api/v3/order", &[("symbol", "BTCUSDT"), ("origClientOrderId", "two")], true);
    assert_eq!(q.code(), Some(-2013));
    let end = Instant::now() + Duration::from_secs(5);
    let mut found = false;
    while Instant::now() < end {
        if d.order_by_client_id("two").is_some() {
            found = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(found, "the timed-out order reached the engine later");
    let q = r.call("GET", "/api/v3/order", &[("symbol", "BTCUSDT"), ("origClientOrderId", "two")], true);
    assert_eq!(s(&q.body, "status"), "NEW");
    // The -1007 answer can itself be late, after the order is already working.
    d.fault_timeout_every_answering_after(1, Duration::from_millis(20), Duration::from_millis(300));
    let asked = Instant::now();
    let late = maker(&r, "BUY", "97.00", "0.1", &[("newClientOrderId", "late")]);
    assert_eq!(late.code(), Some(-1007));
    assert!(asked.elapsed() >= Duration::from_millis(300));
    // Over the WebSocket API too.
    let mut ws = WsClient::connect(&d.ws_api_url()).unwrap();
    let w = ws
        .signed(
            "order.place",
            json!({"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT_MAKER", "price": "96.00", "quantity": "0.1"}),
            DOC_HMAC_KEY,
            &hmac(),
        )
        .unwrap();
    assert_eq!((i(&w, "status"), i(&w["error"], "code")), (503, -1007));
    let end = Instant::now() + Duration::from_secs(5);
    while d.order_by_client_id("late").is_none() && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(d.order_by_client_id("late").is_some());
    d.fault_timeout_every(0, Duration::ZERO);
    d.fault_unexpected_every(1);
    let u = maker(&r, "BUY", "98.00", "0.1", &[("newClientOrderId", "three")]);
    assert_eq!((u.status, u.code()), (503, Some(-1006)));
    assert_eq!(d.order_by_client_id("three").map(|o| o.status), Some(OrderStatus::New), "-1006 with the order placed");
}

#[test]
fn answer_delay_holds_answers_not_processing() {
    let d = BinanceDouble::start_default().unwrap();
    d.set_answer_delay(Duration::from_millis(300));
    let url = d.rest_url();
    let started = Instant::now();
    let hs: Vec<_> = (0..3)
        .map(|k| {
            let url = url.clone();
            std::thread::spawn(move || {
                let r = Rest::new(&url, DOC_HMAC_KEY, hmac());
                let price = format!("{}.00", 90 + k);
                maker(&r, "BUY", &price, "0.1", &[]).status
            })
        })
        .collect();
    // Processed at once: all three orders are in the engine while their answers still wait.
    let end = Instant::now() + Duration::from_secs(5);
    while d.orders().len() < 3 && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(d.orders().len(), 3);
    for h in hs {
        assert_eq!(h.join().unwrap(), 200);
    }
    assert!(started.elapsed() >= Duration::from_millis(300));
    // WebSocket answers are delayed too; events are not.
    let mut ws = WsClient::connect(&d.ws_api_url()).unwrap();
    let before = Instant::now();
    assert_eq!(i(&ws.request("time", Value::Null).unwrap(), "status"), 200);
    assert!(before.elapsed() >= Duration::from_millis(300));
}

// ---------------------------------------------------------------- WebSocket API and user data

fn ws_order(side: &str, price: &str, qty: &str) -> Value {
    json!({"symbol": "BTCUSDT", "side": side, "type": "LIMIT_MAKER", "price": price, "quantity": qty})
}

#[test]
fn ws_api_logon_orders_and_user_data_events() {
    let (signer, key) = new_ed25519_key("ed-key");
    let mut cfg = DoubleConfig::default();
    cfg.keys.push(key);
    let d = BinanceDouble::start(cfg).unwrap();
    let mut ws = WsClient::connect(&d.ws_api_url()).unwrap();
    // HMAC-signed request without a session (web-socket-api.md §SIGNED request example (HMAC)).
    let placed = ws.signed("order.place", ws_order("BUY", "100.00", "0.1"), DOC_HMAC_KEY, &hmac()).unwrap();
    assert_eq!(i(&placed, "status"), 200, "{placed}");
    let rl = placed["rateLimits"].as_array().unwrap();
    assert!(rl.iter().any(|l| s(l, "rateLimitType") == "ORDERS" && i(l, "count") == 1));
    // HMAC keys cannot log on; Ed25519 keys can (web-socket-api.md §Session Authentication).
    let no = ws.signed("session.logon", json!({}), DOC_HMAC_KEY, &hmac()).unwrap();
    assert_eq!(i(&no, "status"), 400);
    let on = ws.signed("session.logon", json!({}), "ed-key", &signer).unwrap();
    assert_eq!(on["result"]["apiKey"], json!("ed-key"), "{on}");
    let sub = ws.request("userDataStream.subscribe", Value::Null).unwrap();
    assert_eq!(sub["result"]["subscriptionId"], json!(0));
    assert_eq!(i(&ws.request("userDataStream.subscribe", Value::Null).unwrap()["error"], "code"), -2035);
    // After logon, no apiKey/signature, only timestamp.
    let o = ws.request("order.place", json!({"symbol": "BTCUSDT", "side": "SELL", "type": "LIMIT_MAKER", "price": "110.00", "quantity": "0.2", "newClientOrderId": "s1", "timestamp": binance_double::client::now_ms()})).unwrap();
    assert_eq!(i(&o, "status"), 200, "{o}");
    let er = next_of(&mut ws, "executionReport");
    assert_eq!(er["subscriptionId"], json!(0));
    let e = &er["event"];
    assert_eq!(
        (s(e, "x"), s(e, "X"), s(e, "c"), s(e, "S"), s(e, "o")),
        ("NEW".into(), "NEW".into(), "s1".into(), "SELL".into(), "LIMIT_MAKER".into())
    );
    assert_eq!(e["w"], json!(true));
    let pos = next_of(&mut ws, "outboundAccountPosition");
    let btc = pos["event"]["B"].as_array().unwrap().iter().find(|b| s(b, "a") == "BTC").unwrap().clone();
    assert_eq!((s(&btc, "f"), s(&btc, "l")), ("0.80000000".into(), "0.20000000".into()));
    // A partial then full fill → TRADE reports with l, z, L, n, N, t, m.
    d.market_trade(Side::Buy, fx("110.00"), fx("0.05"));
    let t = next_of(&mut ws, "executionReport");
    let t = &t["event"];
    assert_eq!(
        (s(t, "x"), s(t, "X"), s(t, "l"), s(t, "z"), s(t, "L")),
        ("TRADE".into(), "PARTIALLY_FILLED".into(), "0.05000000".into(), "0.05000000".into(), "110.00000000".into())
    );
    assert_eq!((s(t, "n"), s(t, "N"), t["m"].clone()), ("0.00550000".into(), "USDT".into(), json!(true)));
    assert!(i(t, "t") > 0);
    // Status, open orders, cancel, cancelAll, account, myTrades and order.test over WS.
    let st = ws
        .request(
            "order.status",
            json!({"symbol": "BTCUSDT", "origClientOrderId": "s1", "timestamp": binance_double::client::now_ms()}),
        )
        .unwrap();
    assert_eq!(s(&st["result"], "status"), "PARTIALLY_FILLED");
    let oo = ws
        .request("openOrders.status", json!({"symbol": "BTCUSDT", "timestamp": binance_double::client::now_ms()}))
        .unwrap();
    assert_eq!(oo["result"].as_array().unwrap().len(), 2);
    let c = ws
        .request(
            "order.cancel",
            json!({"symbol": "BTCUSDT", "origClientOrderId": "s1", "timestamp": binance_double::client::now_ms()}),
        )
        .unwrap();
    assert_eq!(s(&c["result"], "status"), "CANCELED");
    let ce = next_of(&mut ws, "executionReport");
    assert_eq!((s(&ce["event"], "x"), s(&ce["event"], "C")), ("CANCELED".into(), "s1".into()));
    let ca = ws
        .request("openOrders.cancelAll", json!({"symbol": "BTCUSDT", "timestamp": binance_double::client::now_ms()}))
        .unwrap();
    assert_eq!(ca["result"].as_array().unwrap().len(), 1);
    let acct = ws.request("account.status", json!({"timestamp": binance_double::client::now_ms()})).unwrap();
    assert_eq!(acct["result"]["canTrade"], json!(true));
    let mt =
        ws.request("myTrades", json!({"symbol": "BTCUSDT", "timestamp": binance_double::client::now_ms()})).unwrap();
    assert_eq!(mt["result"].as_array().unwrap().len(), 1);
    let ot = ws.request("order.test", json!({"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT_MAKER", "price": "100.00", "quantity": "0.1", "timestamp": binance_double::client::now_ms()})).unwrap();
    assert_eq!(ot["result"], json!({}));
    let cr = ws.request("order.cancelReplace", json!({"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT_MAKER", "price": "100.00", "quantity": "0.1", "cancelReplaceMode": "STOP_ON_FAILURE", "cancelOrderId": 999, "timestamp": binance_double::client::now_ms()})).unwrap();
    assert_eq!((i(&cr, "status"), i(&cr["error"], "code")), (400, -2022));
    // A deposit → balanceUpdate.
    d.balance_delta("USDT", 5 * ONE);
    let bu = next_of(&mut ws, "balanceUpdate");
    assert_eq!(s(&bu["event"], "d"), "5.00000000");
    // Bad signature, missing key.
    let bad = ws.signed("account.status", json!({}), DOC_HMAC_KEY, &Signer::Hmac(b"nope".to_vec())).unwrap();
    assert_eq!(i(&bad["error"], "code"), -1022);
    ws.request("session.logout", Value::Null).unwrap();
    let nokey = ws.request("account.status", json!({"timestamp": binance_double::client::now_ms()})).unwrap();
    assert_eq!(i(&nokey["error"], "code"), -1102);
    // The log shows method and params, both transports under one name.
    let log = d.requests_for("order.place");
    assert_eq!(log.len(), 2);
    assert_eq!(log[1].params.get("newClientOrderId").map(String::as_str), Some("s1"));
    assert!(!log[0].params.contains_key("signature"));
}

#[test]
fn ws_signature_subscription_rate_limits_and_shutdown() {
    let d = BinanceDouble::start_default().unwrap();
    let mut ws = WsClient::connect(&format!("{}?returnRateLimits=false", d.ws_api_url())).unwrap();
    let t = ws.request("time", Value::Null).unwrap();
    assert!(t.get("rateLimits").is_none());
    let t = ws.request("time", json!({"returnRateLimits": true})).unwrap();
    assert!(t.get("rateLimits").is_some());
    // userDataStream.subscribe.signature works with any key type (HMAC here).
    let sub = ws.signed("userDataStream.subscribe.signature", json!({}), DOC_HMAC_KEY, &hmac()).unwrap();
    assert_eq!(i(&sub, "status"), 200, "{sub}");
    assert_eq!(d.ws_connections(), (1, 1));
    let mut other = WsClient::connect(&d.ws_api_url()).unwrap();
    other.request("time", Value::Null).unwrap();
    assert_eq!(d.ws_connections(), (2, 1));
    // serverShutdown, then the close after the grace period (web-socket-api.md §Server Shutdown).
    assert_eq!(d.server_shutdown(Duration::from_millis(200)), 2);
    let ev = ws.next_event(Duration::from_secs(5)).unwrap().expect("serverShutdown event");
    assert_eq!(s(&ev["event"], "e"), "serverShutdown");
    let mut closed = false;
    for _ in 0..200 {
        if ws.recv(Duration::from_millis(20)).is_err() {
            closed = true;
            break;
        }
    }
    assert!(closed, "closed after the grace period");
    // Dropping user-data connections leaves others alone.
    let mut a = WsClient::connect(&d.ws_api_url()).unwrap();
    let mut b = WsClient::connect(&d.ws_api_url()).unwrap();
    a.signed("userDataStream.subscribe.signature", json!({}), DOC_HMAC_KEY, &hmac()).unwrap();
    b.request("time", Value::Null).unwrap();
    assert_eq!(d.drop_user_data_connections(), 1);
    let mut a_gone = false;
    for _ in 0..200 {
        if a.recv(Duration::from_millis(20)).is_err() {
            a_gone = true;
            break;
        }
    }
    assert!(a_gone);
    assert_eq!(i(&b.request("time", Value::Null).unwrap(), "status"), 200);
}

#[test]
fn ws_pings_close_silent_clients_and_logout_ends_the_stream() {
    let (signer, key) = new_ed25519_key("ed-key");
    let cfg = DoubleConfig {
        keys: vec![key],
        ws_ping_interval: Some(Duration::from_millis(50)),
        ws_pong_timeout: Duration::from_millis(300),
        ..Default::default()
    };
    let d = BinanceDouble::start(cfg).unwrap();
    // A client that reads answers pings (tungstenite pongs automatically) and stays.
    let mut live = WsClient::connect(&d.ws_api_url()).unwrap();
    let mut silent = WsClient::connect(&d.ws_api_url()).unwrap();
    let end = Instant::now() + Duration::from_millis(800);
    while Instant::now() < end {
        let _ = live.recv(Duration::from_millis(20));
    }
    assert_eq!(i(&live.request("time", Value::Null).unwrap(), "status"), 200);
    let mut closed = false;
    for _ in 0..100 {
        if silent.recv(Duration::from_millis(20)).is_err() {
            closed = true;
            break;
        }
    }
    assert!(closed, "no pong within the timeout closes the connection");
    // session.logout ends a logon subscription with eventStreamTerminated.
    live.signed("session.logon", json!({}), "ed-key", &signer).unwrap();
    live.request("userDataStream.subscribe", Value::Null).unwrap();
    let sl = live.request("session.status", Value::Null).unwrap();
    assert_eq!(sl["result"]["userDataStream"], json!(true));
    live.request("session.logout", Value::Null).unwrap();
    let t = next_of(&mut live, "eventStreamTerminated");
    assert_eq!(t["subscriptionId"], json!(0));
    assert_eq!(d.ws_connections().1, 0);
}

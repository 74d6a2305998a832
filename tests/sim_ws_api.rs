//! The simulator's WebSocket API against web-socket-api.md and
//! user-data-stream.md, with a plain tungstenite client: order methods with
//! `rateLimits`, session logon (Ed25519), pipelined answers out of order,
//! `serverShutdown`, `orderRateLimitExceededMode`, and self-trade
//! prevention pushed as executionReports (faqs/stp_faq.md). Loopback only,
//! every wait bounded.

mod sim_support;

use std::time::Duration;

use mmbot::sim::exchange::{ExchangeConfig, SimAccount, SimKey, SimLimits};
use mmbot::sim::faults::Faults;
use mmbot::sim::{Sim, SimConfig, SimSource};
use serde_json::json;
use sim_support::*;

fn sim(faults: Faults, cfg: ExchangeConfig) -> Sim {
    Sim::start_with(
        SimConfig {
            symbols: vec![SYMBOL.into()],
            source: SimSource::Synthetic { seed: 11, events_per_sec: 200.0 },
            faults,
            accounts: vec![SimAccount::hmac(KEY, SECRET, &[("BTC", "1"), ("USDT", "100000")], "0.001")],
            ..SimConfig::default()
        },
        cfg,
    )
    .expect("the simulator starts on an ephemeral port")
}

fn far_buy(sim: &Sim, client_id: &str, qty: &str) -> serde_json::Value {
    let (bid, _) = top(sim);
    json!({"symbol": SYMBOL, "side": "BUY", "type": "LIMIT_MAKER", "quantity": qty,
           "price": px(bid - 500 * DOLLAR), "newClientOrderId": client_id})
}

#[test]
fn order_methods_answer_as_documented_with_rate_limits() {
    // web-socket-api.md §Response format, §Place new order, §Query order,
    // §Current open orders, §Cancel and replace order, §Cancel open orders,
    // §Account information, §Account trade history, §Test new order.
    let s = sim(Faults::default(), ExchangeConfig::default());
    let mut ws = ws_connect(&s, "/ws-api/v3");
    ws_send(&mut ws, "p1", "order.place", ws_signed(far_buy(&s, "ws-1", "0.001")));
    let a = answer(&mut ws, "p1");
    assert_eq!(a["status"], 200, "{a}");
    assert_eq!(a["result"]["clientOrderId"], "ws-1");
    let rl = a["rateLimits"].as_array().unwrap();
    let kinds: Vec<(String, String)> = rl
        .iter()
        .map(|r| (r["rateLimitType"].as_str().unwrap().into(), r["interval"].as_str().unwrap().into()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("ORDERS".into(), "SECOND".into()),
            ("ORDERS".into(), "DAY".into()),
            ("REQUEST_WEIGHT".into(), "MINUTE".into())
        ]
    );
    assert_eq!((rl[0]["count"].as_u64(), rl[0]["limit"].as_u64()), (Some(1), Some(50)));
    // Connecting cost 2, the order 1 (web-socket-api.md §IP limits).
    assert!(rl[2]["count"].as_u64().unwrap() >= 3);
    let id = a["result"]["orderId"].clone();

    ws_send(&mut ws, "s1", "order.status", ws_signed(json!({"symbol": SYMBOL, "origClientOrderId": "ws-1"})));
    let a = answer(&mut ws, "s1");
    assert_eq!((a["status"].as_u64(), a["result"]["orderId"].clone()), (Some(200), id.clone()), "{a}");
    assert_eq!(a["rateLimits"].as_array().unwrap().len(), 1, "not an order request: weight only");

    ws_send(&mut ws, "o1", "openOrders.status", ws_signed(json!({"symbol": SYMBOL})));
    assert_eq!(answer(&mut ws, "o1")["result"].as_array().unwrap().len(), 1);

    let mut repl = far_buy(&s, "ws-2", "0.001");
    let o = repl.as_object_mut().unwrap();
    o.insert("cancelReplaceMode".into(), "STOP_ON_FAILURE".into());
    o.insert("cancelOrigClientOrderId".into(), "ws-1".into());
    ws_send(&mut ws, "r1", "order.cancelReplace", ws_signed(repl));
    let a = answer(&mut ws, "r1");
    assert_eq!(
        (a["result"]["cancelResult"].as_str(), a["result"]["newOrderResult"].as_str()),
        (Some("SUCCESS"), Some("SUCCESS")),
        "{a}"
    );

    ws_send(&mut ws, "t1", "order.test", ws_signed(far_buy(&s, "ws-t", "0.001")));
    assert_eq!(answer(&mut ws, "t1")["result"], json!({}));
    ws_send(&mut ws, "a1", "account.status", ws_signed(json!({})));
    let a = answer(&mut ws, "a1");
    assert!(a["result"]["balances"].as_array().is_some_and(|b| !b.is_empty()), "{a}");
    ws_send(&mut ws, "m1", "myTrades", ws_signed(json!({"symbol": SYMBOL})));
    assert_eq!(answer(&mut ws, "m1")["result"], json!([]));

    ws_send(&mut ws, "c1", "order.cancel", ws_signed(json!({"symbol": SYMBOL, "origClientOrderId": "ws-2"})));
    assert_eq!(answer(&mut ws, "c1")["result"]["status"], "CANCELED");
    ws_send(&mut ws, "c2", "order.cancel", ws_signed(json!({"symbol": SYMBOL, "origClientOrderId": "ws-2"})));
    let e = answer(&mut ws, "c2");
    assert_eq!((e["status"].as_u64(), e["error"]["code"].as_i64()), (Some(400), Some(-2011)), "{e}");
    assert_eq!(e["error"]["msg"], "Unknown order sent.");
    assert!(e["rateLimits"].is_array());

    ws_send(&mut ws, "p2", "order.place", ws_signed(far_buy(&s, "ws-3", "0.001")));
    answer(&mut ws, "p2");
    ws_send(&mut ws, "x1", "openOrders.cancelAll", ws_signed(json!({"symbol": SYMBOL})));
    assert_eq!(answer(&mut ws, "x1")["result"].as_array().unwrap().len(), 1);
    assert!(s.orders(KEY).is_empty());

    // A bad signature and an unsigned request without a logon.
    let mut p = ws_signed(json!({"symbol": SYMBOL}));
    p["signature"] = "00".into();
    ws_send(&mut ws, "b1", "openOrders.status", p);
    assert_eq!(answer(&mut ws, "b1")["error"]["code"], -1022);
    ws_send(&mut ws, "b2", "openOrders.status", json!({"symbol": SYMBOL, "timestamp": now_ms()}));
    assert_eq!(answer(&mut ws, "b2")["error"]["code"], -1102);
    // returnRateLimits=false hides the array (§How to show/hide rate limit information).
    ws_send(&mut ws, "h1", "time", json!({"returnRateLimits": false}));
    assert!(answer(&mut ws, "h1")["rateLimits"].is_null());
}

#[test]
fn session_logon_is_ed25519_only_and_signs_for_later_requests() {
    // web-socket-api.md §Session Authentication, §Log in with API key,
    // §Query session status, §Log out of the session, §Subscribe to User
    // Data Stream.
    let pem = "-----BEGIN PRIVATE KEY-----\n\
               MC4CAQAwBQYDK2VwBCIEINTuctv5E1hK1bbY8fdp+K06/nwoy/HU++CXqI9EdVhC\n\
               -----END PRIVATE KEY-----\n";
    let key = mmbot::exec::binance::sign::Ed25519Key::from_pem(pem, "RFC 8410").unwrap();
    let ed = SimAccount {
        api_key: "edKey0123456789".into(),
        key: SimKey::Ed25519(key.public_key().to_vec()),
        balances: vec![("USDT".into(), "1000".parse().unwrap())],
        commission: 0,
    };
    let s = Sim::start(SimConfig {
        accounts: vec![ed, SimAccount::hmac(KEY, SECRET, &[("USDT", "1000")], "0")],
        ..SimConfig::default()
    })
    .unwrap();
    let mut ws = ws_connect(&s, "/ws-api/v3");
    // An HMAC key cannot log on.
    ws_send(&mut ws, "l0", "session.logon", ws_signed(json!({})));
    assert_eq!(answer(&mut ws, "l0")["error"]["code"], -1020);
    // userDataStream.subscribe needs a logged-on session.
    ws_send(&mut ws, "u0", "userDataStream.subscribe", json!({}));
    assert_eq!(answer(&mut ws, "u0")["error"]["code"], -1002);
    let ts = now_ms().to_string();
    let payload = mmbot::exec::binance::sign::ws_api_payload(&[("apiKey", "edKey0123456789"), ("timestamp", &ts)]);
    let sig = key.sign_base64(payload.as_bytes());
    ws_send(
        &mut ws,
        "l1",
        "session.logon",
        json!({"apiKey": "edKey0123456789", "timestamp": ts.parse::<i64>().unwrap(), "signature": sig}),
    );
    let a = answer(&mut ws, "l1");
    assert_eq!((a["status"].as_u64(), a["result"]["apiKey"].as_str()), (Some(200), Some("edKey0123456789")), "{a}");
    for k in ["authorizedSince", "connectedSince", "returnRateLimits", "serverTime", "userDataStream"] {
        assert!(!a["result"][k].is_null(), "{k}: {a}");
    }
    // Logged on: no apiKey, no signature, still a timestamp.
    ws_send(&mut ws, "q1", "account.status", json!({"timestamp": now_ms()}));
    let a = answer(&mut ws, "q1");
    assert_eq!(a["status"], 200, "{a}");
    ws_send(&mut ws, "u1", "userDataStream.subscribe", json!({}));
    assert_eq!(answer(&mut ws, "u1")["result"]["subscriptionId"], 0);
    ws_send(&mut ws, "st", "session.status", json!({}));
    assert_eq!(answer(&mut ws, "st")["result"]["userDataStream"], true);
    assert!(s.adjust_balance("edKey0123456789", "USDT", DOLLAR));
    let mut seen = Vec::new();
    let ev = wait_for(&mut ws, 5, &mut seen, |v| v["event"]["e"] == "balanceUpdate");
    assert_eq!(ev["subscriptionId"], 0);
    ws_send(&mut ws, "lo", "session.logout", json!({}));
    assert!(answer(&mut ws, "lo")["result"]["apiKey"].is_null());
    ws_send(&mut ws, "q2", "account.status", json!({"timestamp": now_ms()}));
    assert_eq!(answer(&mut ws, "q2")["status"], 400);
}

#[test]
fn pipelined_requests_are_answered_when_ready_matched_by_id() {
    // web-socket-api.md §Request format: answers carry the request's id.
    let faults = Faults { delay_order_every: 1, order_delay: Duration::from_millis(1500), ..Faults::default() };
    let s = sim(faults, ExchangeConfig::default());
    let mut ws = ws_connect(&s, "/ws-api/v3");
    ws_send(&mut ws, "slow", "order.place", ws_signed(far_buy(&s, "pipe-1", "0.001")));
    ws_send(&mut ws, "fast", "time", json!({}));
    let mut seen = Vec::new();
    wait_for(&mut ws, 10, &mut seen, |v| v["id"] == "slow");
    let order: Vec<String> = seen.iter().filter_map(|v| v["id"].as_str().map(str::to_string)).collect();
    assert_eq!(order, ["fast", "slow"], "the held answer did not hold up the next one");
}

#[test]
fn server_shutdown_is_pushed_then_the_session_closes_after_the_grace() {
    // web-socket-api.md §Server Shutdown.
    let faults = Faults {
        ws_api_shutdown_after: Some(Duration::from_millis(300)),
        ws_api_shutdown_grace: Some(Duration::from_millis(1500)),
        ..Faults::default()
    };
    let s = sim(faults, ExchangeConfig::default());
    let mut ws = ws_connect(&s, "/ws-api/v3");
    let mut seen = Vec::new();
    let ev = wait_for(&mut ws, 5, &mut seen, |v| v["event"]["e"] == "serverShutdown");
    assert!(ev["event"]["E"].as_i64().is_some(), "{ev}");
    assert!(ev["subscriptionId"].is_null(), "a connection event, not a subscription's: {ev}");
    // Still served during the grace.
    ws_send(&mut ws, "g1", "ping", json!({}));
    assert_eq!(answer(&mut ws, "g1")["status"], 200);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        assert!(std::time::Instant::now() < deadline, "the session was not closed");
        if next_json(&mut ws).is_err() {
            break;
        }
    }
}

#[test]
fn cancel_only_cancels_when_the_order_limit_is_used_up() {
    // web-socket-api.md §Cancel and replace order: orderRateLimitExceededMode
    // CANCEL_ONLY; DO_NOTHING answers the rate limit alone.
    away_from_window_edge(10_000, 5_000);
    let limits = SimLimits { orders_per_10s: 1, ..SimLimits::default() };
    let s = sim(Faults::default(), ExchangeConfig { limits, ..ExchangeConfig::default() });
    let mut ws = ws_connect(&s, "/ws-api/v3");
    ws_send(&mut ws, "p1", "order.place", ws_signed(far_buy(&s, "co-1", "0.001")));
    assert_eq!(answer(&mut ws, "p1")["status"], 200);
    let replace = |mode: &str| {
        let mut r = far_buy(&s, "co-2", "0.001");
        let o = r.as_object_mut().unwrap();
        o.insert("cancelReplaceMode".into(), "STOP_ON_FAILURE".into());
        o.insert("cancelOrigClientOrderId".into(), "co-1".into());
        o.insert("orderRateLimitExceededMode".into(), mode.into());
        ws_signed(r)
    };
    ws_send(&mut ws, "r0", "order.cancelReplace", replace("DO_NOTHING"));
    let a = answer(&mut ws, "r0");
    assert_eq!((a["status"].as_u64(), a["error"]["code"].as_i64()), (Some(429), Some(-1015)), "{a}");
    assert_eq!(s.orders(KEY).len(), 1);
    ws_send(&mut ws, "r1", "order.cancelReplace", replace("CANCEL_ONLY"));
    let a = answer(&mut ws, "r1");
    assert_eq!((a["status"].as_u64(), a["error"]["code"].as_i64()), (Some(409), Some(-2021)), "{a}");
    assert_eq!(a["error"]["data"]["cancelResult"], "SUCCESS");
    assert_eq!(a["error"]["data"]["newOrderResult"], "FAILURE");
    // rest-api.md §Cancel an Existing Order and Send a New Order, the
    // CANCEL_ONLY example.
    assert_eq!(
        a["error"]["data"]["newOrderResponse"],
        json!({"code": -1015, "msg": "Too many new orders; current limit is 1 orders per 10 SECOND."})
    );
    assert!(s.orders(KEY).is_empty());
}

/// Subscribes `KEY`'s user data, rests a far BUY of `qty`, waits for the
/// self-trade fault, and returns the executionReports it caused.
fn self_trade(mode: &str, qty: &str) -> (Sim, Vec<serde_json::Value>) {
    let (s, reports, _) = self_trade_events(mode, qty);
    (s, reports)
}

/// [`self_trade`], plus the `outboundAccountPosition` events.
fn self_trade_events(mode: &str, qty: &str) -> (Sim, Vec<serde_json::Value>, Vec<serde_json::Value>) {
    let faults = Faults {
        self_trade_every: Some(Duration::from_millis(400)),
        self_trade_mode: mode.into(),
        ..Faults::default()
    };
    let s = sim(faults, ExchangeConfig::default());
    let mut ws = ws_connect(&s, "/ws-api/v3");
    ws_send(&mut ws, "u", "userDataStream.subscribe.signature", ws_signed(json!({})));
    assert_eq!(answer(&mut ws, "u")["status"], 200);
    ws_send(&mut ws, "p", "order.place", ws_signed(far_buy(&s, "maker-1", qty)));
    assert_eq!(answer(&mut ws, "p")["status"], 200);
    let mut seen = Vec::new();
    // The taker's end: expired (IOC) or filled.
    wait_for(&mut ws, 10, &mut seen, |v| {
        let e = &v["event"];
        e["e"] == "executionReport"
            && e["c"].as_str().is_some_and(|c| c.starts_with("other-program-"))
            && e["X"] != "NEW"
    });
    // What follows the taker's last report in the same strike.
    std::thread::sleep(Duration::from_millis(50));
    while let Ok(Some(v)) = next_json(&mut ws) {
        seen.push(v);
    }
    let events =
        |kind: &str| seen.iter().filter(|v| v["event"]["e"] == kind).map(|v| v["event"].clone()).collect::<Vec<_>>();
    (s, events("executionReport"), events("outboundAccountPosition"))
}

fn of<'a>(reports: &'a [serde_json::Value], client: &str) -> Vec<&'a serde_json::Value> {
    reports.iter().filter(|r| r["c"].as_str().is_some_and(|c| c.starts_with(client))).collect()
}

#[test]
fn self_trade_expire_maker_expires_the_resting_order() {
    // stp_faq.md §What happens when STP is triggered? (EXPIRE_MAKER);
    // user-data-stream.md §Conditional Fields in Execution Report.
    let (s, reports) = self_trade("EXPIRE_MAKER", "0.002");
    let maker = of(&reports, "maker-1");
    let prevented = maker.iter().find(|r| r["x"] == "TRADE_PREVENTION").expect("the maker's TRADE_PREVENTION report");
    assert_eq!(prevented["X"], "EXPIRED_IN_MATCH");
    assert_eq!((fx(&prevented["A"]), fx(&prevented["B"])), (200_000, 200_000));
    for k in ["v", "u", "U", "Cs", "pl", "pL", "pY"] {
        assert!(!prevented[k].is_null(), "{k} missing: {prevented}");
    }
    let taker = of(&reports, "other-program-");
    assert_eq!(prevented["U"], taker[0]["i"], "the counter order");
    assert_eq!(taker.last().unwrap()["X"], "EXPIRED");
    assert!(s.orders(KEY).is_empty());
    assert!(s.fills(KEY).is_empty());
    let usdt = s.account(KEY).unwrap().into_iter().find(|b| b.asset == "USDT").unwrap();
    assert_eq!((usdt.free.0, usdt.locked.0), (100_000 * DOLLAR, 0), "everything unlocked");
}

#[test]
fn self_trade_decrement_keeps_the_larger_order_live() {
    // stp_faq.md: DECREMENT "increases the prevented quantity of both orders
    // by the amount of the prevented match. The smaller of the two orders
    // will expire".
    let (s, reports) = self_trade("DECREMENT", "0.002");
    let maker = of(&reports, "maker-1");
    let p = maker.iter().find(|r| r["x"] == "TRADE_PREVENTION").expect("the maker's TRADE_PREVENTION report");
    assert_eq!(p["X"], "NEW", "the maker stays live: {p}");
    assert_eq!((fx(&p["A"]), fx(&p["B"])), (100_000, 100_000));
    let taker = of(&reports, "other-program-");
    let tp = taker.iter().find(|r| r["x"] == "TRADE_PREVENTION").unwrap();
    assert_eq!(tp["X"], "EXPIRED_IN_MATCH");
    let open = s.orders(KEY);
    let o = open.iter().find(|o| o.client_order_id == "maker-1").unwrap();
    assert_eq!((o.prevented_qty.0, o.available()), (100_000, 100_000));
    // stp_faq.md: preventedQuantity on the order's query.
    let mut ws = ws_connect(&s, "/ws-api/v3");
    ws_send(&mut ws, "q", "order.status", ws_signed(json!({"symbol": SYMBOL, "origClientOrderId": "maker-1"})));
    let q = answer(&mut ws, "q");
    assert_eq!(fx(&q["result"]["preventedQuantity"]), 100_000, "{q}");
}

#[test]
fn self_trade_expire_taker_leaves_the_maker_alone() {
    // stp_faq.md: EXPIRE_TAKER "prevents a trade by immediately expiring the
    // taker order's remaining quantity".
    let (s, reports) = self_trade("EXPIRE_TAKER", "0.002");
    assert!(of(&reports, "maker-1").iter().all(|r| r["x"] == "NEW"), "{reports:?}");
    let taker = of(&reports, "other-program-");
    let tp = taker.iter().find(|r| r["x"] == "TRADE_PREVENTION").expect("the taker's TRADE_PREVENTION report");
    assert_eq!(tp["X"], "EXPIRED_IN_MATCH");
    assert_eq!(s.orders(KEY).iter().filter(|o| o.client_order_id == "maker-1").count(), 1);
}

#[test]
fn self_trade_none_trades_with_itself() {
    // stp_faq.md Scenario A: "No STP is triggered and the orders will match."
    let (s, reports, positions) = self_trade_events("NONE", "0.002");
    let maker = of(&reports, "maker-1");
    let t = maker.iter().find(|r| r["x"] == "TRADE").expect("the maker's fill");
    assert_eq!((t["m"].as_bool(), fx(&t["l"])), (Some(true), 100_000));
    // A BUY pays commission in the base asset (commission_faq.md).
    assert_eq!(t["N"], "BTC");
    let taker = of(&reports, "other-program-");
    let tt = taker.iter().find(|r| r["x"] == "TRADE").expect("the taker's fill");
    assert_eq!((tt["m"].as_bool(), tt["t"].clone(), tt["N"].as_str()), (Some(false), t["t"].clone(), Some("USDT")));
    let fills = s.fills(KEY);
    assert_eq!(fills.len(), 2);
    // executionReport n/N = the fills; the last outboundAccountPosition =
    // the account, to the 1e-8 (user-data-stream.md §Account Update).
    for (r, f) in [(t, &fills[0]), (tt, &fills[1])] {
        assert_eq!((fx(&r["n"]), r["N"].as_str()), (f.commission, Some(f.commission_asset.as_str())));
    }
    let last = positions.last().expect("an outboundAccountPosition after the trade");
    let account = s.account(KEY).unwrap();
    for b in last["B"].as_array().unwrap() {
        let want = account.iter().find(|x| b["a"] == x.asset.as_str()).unwrap();
        assert_eq!((fx(&b["f"]), fx(&b["l"])), (want.free.0, want.locked.0), "{b}");
    }
    let btc = account.iter().find(|x| x.asset == "BTC").unwrap();
    // Bought 0.001 less 0.1% in BTC, sold 0.001: 1 BTC less the BUY's fee.
    assert_eq!(btc.free.0 + btc.locked.0, DOLLAR - fills[0].commission);
}

#[test]
fn the_ws_api_shares_the_engine_faults_and_the_ip_weight() {
    // web-socket-api.md §IP limits: "Weight is accumulated per IP address and
    // is shared by all connections"; 429s "include a retryAfter field";
    // errors.md §-1007 on the WS-API too.
    away_from_window_edge(60_000, 10_000);
    let limits = SimLimits { weight_per_minute: 30, ..SimLimits::default() };
    let faults = Faults { late_order_every: 1, late_order_by: Duration::from_millis(800), ..Faults::default() };
    let s = sim(faults, ExchangeConfig { limits, ..ExchangeConfig::default() });
    let mut ws = ws_connect(&s, "/ws-api/v3"); // 2
    ws_send(&mut ws, "p1", "order.place", ws_signed(far_buy(&s, "wl-1", "0.001"))); // 3
    let a = answer(&mut ws, "p1");
    assert_eq!((a["status"].as_u64().map(|s| s / 100), a["error"]["code"].as_i64()), (Some(5), Some(-1007)), "{a}");
    ws_send(&mut ws, "q1", "order.status", ws_signed(json!({"symbol": SYMBOL, "origClientOrderId": "wl-1"}))); // 7
    assert_eq!(answer(&mut ws, "q1")["error"]["code"], -2013);
    std::thread::sleep(Duration::from_millis(1200));
    ws_send(&mut ws, "q2", "order.status", ws_signed(json!({"symbol": SYMBOL, "origClientOrderId": "wl-1"}))); // 11
    let q = answer(&mut ws, "q2");
    assert_eq!(q["result"]["status"], "NEW", "the late order reached the engine: {q}");
    // REST sees the same IP weight: 11 + 1.
    let t = http(&s, "GET", "/api/v3/time", None);
    assert_eq!(t.header("X-MBX-USED-WEIGHT-1M"), Some("12"));
    ws_send(&mut ws, "a1", "account.status", ws_signed(json!({}))); // 32 > 30
    let e = answer(&mut ws, "a1");
    assert_eq!((e["status"].as_u64(), e["error"]["code"].as_i64()), (Some(429), Some(-1003)), "{e}");
    assert!(e["error"]["data"]["retryAfter"].as_i64().is_some_and(|t| t > now_ms() - 1000), "{e}");
    assert_eq!(e["rateLimits"][0]["count"], 32);
}

#[test]
fn a_ban_struck_over_the_ws_api_is_answered_then_the_connection_drops() {
    // web-socket-api.md §IP limits: "automated IP ban and you will be
    // disconnected"; the 418's data.retryAfter is when the ban ends.
    let faults = Faults { ban_order_every: 1, ban_for: Some(Duration::from_secs(2)), ..Faults::default() };
    let s = sim(faults, ExchangeConfig::default());
    let mut ws = ws_connect(&s, "/ws-api/v3");
    ws_send(&mut ws, "p1", "order.place", ws_signed(far_buy(&s, "wb-1", "0.001")));
    let a = answer(&mut ws, "p1");
    assert_eq!((a["status"].as_u64(), a["error"]["code"].as_i64()), (Some(418), Some(-1003)), "{a}");
    assert!(a["error"]["data"]["retryAfter"].as_i64().is_some(), "{a}");
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        assert!(std::time::Instant::now() < deadline, "the WS-API connection outlived the ban's start");
        if next_json(&mut ws).is_err() {
            break;
        }
    }
    assert!(tungstenite::connect(format!("{}/ws-api/v3", s.ws_base())).is_err());
    assert_eq!(s.ban_counts().connects, 1);
}

//! The simulator's exchange against Binance's documents, over plain HTTP:
//! exchangeInfo, rate limits and their headers, whole-IP bans, the late
//! engine (-1007), -1006, a slow exchange, filters, STP modes, myTrades
//! paging and commission (in the received asset or BNB). Each test names
//! the doc section it checks. Loopback only, every wait bounded.

mod sim_support;

use std::time::{Duration, Instant};

use mmbot::hot::fixed::{mul_rate, notional, notional_ceil};
use mmbot::sim::exchange::{BnbFees, ExchangeConfig, SimAccount, SimLimits};
use mmbot::sim::faults::Faults;
use mmbot::sim::{Sim, SimConfig, SimSource};
use sim_support::*;

fn sim(faults: Faults, cfg: ExchangeConfig, events_per_sec: f64) -> Sim {
    Sim::start_with(
        SimConfig {
            symbols: vec![SYMBOL.into()],
            source: SimSource::Synthetic { seed: 11, events_per_sec },
            faults,
            accounts: vec![SimAccount::hmac(KEY, SECRET, &[("BTC", "1"), ("USDT", "100000"), ("BNB", "10")], "0.001")],
            ..SimConfig::default()
        },
        cfg,
    )
    .expect("the simulator starts on an ephemeral port")
}

fn plain(faults: Faults) -> Sim {
    sim(faults, ExchangeConfig::default(), 200.0)
}

/// A far-from-the-touch BUY's parameters (rests, never fills soon).
fn far_buy(sim: &Sim, client_id: &str) -> String {
    let (bid, _) = top(sim);
    format!(
        "symbol={SYMBOL}&side=BUY&type=LIMIT_MAKER&quantity=0.001&price={}&newClientOrderId={client_id}",
        px(bid - 500 * DOLLAR)
    )
}

#[test]
fn exchange_info_lists_limits_filters_and_stp_modes() {
    // rest-api.md §Exchange information; enums.md §Rate limiters; filters.md
    // §PERCENT_PRICE_BY_SIDE, §MAX_NUM_ORDERS; stp_faq.md §How do I know which
    // symbol uses STP?
    let limits = SimLimits { weight_per_minute: 1234, raw_requests_per_5m: 999, orders_per_10s: 7, orders_per_day: 77 };
    let s = sim(Faults::default(), ExchangeConfig { limits, max_num_orders: 9, ..ExchangeConfig::default() }, 200.0);
    let a = http(&s, "GET", "/api/v3/exchangeInfo", None);
    assert_eq!(a.status, 200);
    let rl = a.json["rateLimits"].as_array().unwrap();
    let find =
        |t: &str, i: &str| rl.iter().find(|r| r["rateLimitType"] == t && r["interval"] == i).unwrap()["limit"].clone();
    assert_eq!(find("REQUEST_WEIGHT", "MINUTE"), 1234);
    assert_eq!(find("RAW_REQUESTS", "MINUTE"), 999);
    assert_eq!(find("ORDERS", "SECOND"), 7);
    assert_eq!(find("ORDERS", "DAY"), 77);
    let sym = &a.json["symbols"][0];
    let filter = |t: &str| sym["filters"].as_array().unwrap().iter().find(|f| f["filterType"] == t).cloned().unwrap();
    assert_eq!(filter("MAX_NUM_ORDERS")["maxNumOrders"], 9);
    let pps = filter("PERCENT_PRICE_BY_SIDE");
    for k in ["bidMultiplierUp", "bidMultiplierDown", "askMultiplierUp", "askMultiplierDown", "avgPriceMins"] {
        assert!(!pps[k].is_null(), "{k} missing: {pps}");
    }
    assert_eq!(sym["defaultSelfTradePreventionMode"], "EXPIRE_MAKER");
    assert_eq!(sym["allowedSelfTradePreventionModes"].as_array().unwrap().len(), 6);
    // rest-api.md §Exchange information: weight 20, reported in the header.
    assert_eq!(a.header("X-MBX-USED-WEIGHT-1M"), Some("20"));
}

#[test]
fn every_answer_carries_the_ip_weight_and_going_over_is_429_1003() {
    // rest-api.md §IP Limits: "Every request will contain
    // X-MBX-USED-WEIGHT-(intervalNum)(intervalLetter)"; 429 with Retry-After.
    away_from_window_edge(60_000, 15_000);
    let limits = SimLimits { weight_per_minute: 60, ..SimLimits::default() };
    let s = sim(Faults::default(), ExchangeConfig { limits, ..ExchangeConfig::default() }, 200.0);
    top(&s);
    assert_eq!(http(&s, "GET", "/api/v3/time", None).header("X-MBX-USED-WEIGHT-1M"), Some("1"));
    // rest-api.md §Order book: limit 100 weighs 5.
    let d = http(&s, "GET", &format!("/api/v3/depth?symbol={SYMBOL}&limit=100"), None);
    assert_eq!((d.status, d.header("X-MBX-USED-WEIGHT-1M")), (200, Some("6")));
    // rest-api.md §Account information: 20.
    let a = call(&s, "GET", "/api/v3/account", "");
    assert_eq!((a.status, a.header("X-MBX-USED-WEIGHT-1M")), (200, Some("26")));
    let e = http(&s, "GET", "/api/v3/nowhere", None);
    assert_eq!((e.status, e.header("X-MBX-USED-WEIGHT-1M")), (404, Some("27")));
    assert_eq!(http(&s, "GET", "/api/v3/exchangeInfo", None).status, 200); // 47
    let over = http(&s, "GET", "/api/v3/exchangeInfo", None); // 67 > 60
    assert_eq!((over.status, over.code()), (429, -1003), "{over:?}");
    assert!(over.json["msg"].as_str().unwrap().starts_with("Too much request weight used; current limit is 60"));
    let retry: u64 = over.header("Retry-After").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert_eq!(s.used_weight(), 67);
}

#[test]
fn the_orders_limit_answers_429_1015_and_order_answers_carry_counts() {
    // rest-api.md §Unfilled Order Count: X-MBX-ORDER-COUNT-10S/-1D on
    // successful orders; over the limit, 429 with Retry-After; errors.md -1015.
    away_from_window_edge(10_000, 6_000);
    let limits = SimLimits { orders_per_10s: 2, ..SimLimits::default() };
    let s = sim(Faults::default(), ExchangeConfig { limits, ..ExchangeConfig::default() }, 200.0);
    for (i, want) in [(1, "1"), (2, "2")] {
        let a = call(&s, "POST", "/api/v3/order", &far_buy(&s, &format!("oc-{i}")));
        assert_eq!(a.status, 200, "{a:?}");
        assert_eq!(a.header("X-MBX-ORDER-COUNT-10S"), Some(want));
        assert_eq!(a.header("X-MBX-ORDER-COUNT-1D"), Some(want));
        assert!(a.header("X-MBX-USED-WEIGHT-1M").is_some());
    }
    let a = call(&s, "POST", "/api/v3/order", &far_buy(&s, "oc-3"));
    assert_eq!((a.status, a.code()), (429, -1015), "{a:?}");
    assert_eq!(a.json["msg"], "Too many new orders; current limit is 2 orders per 10 SECOND.");
    assert!(a.header("Retry-After").is_some());
    assert_eq!(s.orders(KEY).len(), 2);
}

#[test]
fn throttle_faults_give_1015_for_orders_and_1003_for_weight() {
    // errors.md §-1015 TOO_MANY_ORDERS, §-1003 TOO_MANY_REQUESTS; rest-api.md
    // §LIMITS (429 with Retry-After).
    let s = plain(Faults { throttle_order_every: 1, ..Faults::default() });
    let a = call(&s, "POST", "/api/v3/order", &far_buy(&s, "th-1"));
    assert_eq!((a.status, a.code(), a.header("Retry-After")), (429, -1015, Some("1")), "{a:?}");
    assert!(s.orders(KEY).is_empty());
    let s = plain(Faults { throttle_weight_every: 2, ..Faults::default() });
    assert_eq!(http(&s, "GET", "/api/v3/time", None).status, 200);
    let a = http(&s, "GET", "/api/v3/time", None);
    assert_eq!((a.status, a.code(), a.header("Retry-After")), (429, -1003, Some("1")), "{a:?}");
}

#[test]
fn a_ban_covers_the_whole_ip_and_drops_open_connections() {
    // rest-api.md §IP Limits (418, Retry-After "until the ban is over");
    // web-socket-api.md §IP limits ("IP ban and you will be disconnected").
    let s = plain(Faults { ban_order_every: 1, ban_for: Some(Duration::from_secs(3)), ..Faults::default() });
    let mut stream = ws_connect(&s, &format!("/ws/{}@trade", SYMBOL.to_ascii_lowercase()));
    let mut api = ws_connect(&s, "/ws-api/v3");
    let a = call(&s, "POST", "/api/v3/order", &far_buy(&s, "ban-1"));
    assert_eq!((a.status, a.code()), (418, -1003), "{a:?}");
    assert!(a.json["msg"].as_str().unwrap().starts_with("Way too much request weight used; IP banned until"));
    assert_eq!(a.header("Retry-After"), Some("3"));
    assert_eq!(s.requests_during_ban(), 0);
    for (name, ws) in [("market stream", &mut stream), ("WS-API", &mut api)] {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            assert!(Instant::now() < deadline, "the {name} connection outlived the ban's start");
            if next_json(ws).is_err() {
                break;
            }
        }
    }
    for path in [format!("/api/v3/depth?symbol={SYMBOL}"), "/api/v3/exchangeInfo".into(), "/api/v3/time".into()] {
        let a = http(&s, "GET", &path, None);
        assert_eq!((a.status, a.code()), (418, -1003), "{path}: {a:?}");
        assert!(a.header("Retry-After").is_some(), "{path}");
    }
    for path in ["/ws-api/v3".to_string(), format!("/ws/{}@depth", SYMBOL.to_ascii_lowercase())] {
        assert!(tungstenite::connect(format!("{}{path}", s.ws_base())).is_err(), "{path} connected during the ban");
    }
    let c = s.ban_counts();
    assert_eq!((c.requests, c.connects), (3, 2));
    assert_eq!(s.requests_during_ban(), 5);
    // Over: everything answers again.
    let deadline = Instant::now() + Duration::from_secs(8);
    while s.banned() {
        assert!(Instant::now() < deadline, "the ban never ended");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(http(&s, "GET", "/api/v3/time", None).status, 200);
}

#[test]
fn a_late_engine_answers_1007_and_the_order_appears_later() {
    // errors.md §-1007 TIMEOUT; rest-api.md §General API Information ("If
    // the status of the request has not appeared ..., please perform an API
    // query for its status").
    let faults = Faults { late_order_every: 1, late_order_by: Duration::from_millis(1500), ..Faults::default() };
    let s = plain(faults);
    let a = call(&s, "POST", "/api/v3/order", &far_buy(&s, "late-1"));
    assert_eq!((a.status / 100, a.code()), (5, -1007), "{a:?}");
    assert_eq!(
        a.json["msg"],
        "Timeout waiting for response from backend server. Send status unknown; execution status unknown."
    );
    let q = call(&s, "GET", "/api/v3/order", &format!("symbol={SYMBOL}&origClientOrderId=late-1"));
    assert_eq!((q.status, q.code(), q.json["msg"].as_str()), (400, -2013, Some("Order does not exist.")));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        assert!(Instant::now() < deadline, "the late order never reached the engine");
        let q = call(&s, "GET", "/api/v3/order", &format!("symbol={SYMBOL}&origClientOrderId=late-1"));
        if q.status == 200 {
            assert_eq!(q.json["status"], "NEW");
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn unexpected_resp_1006_places_the_order() {
    // errors.md §-1006 UNEXPECTED_RESP: "Execution status unknown."
    let s = plain(Faults { unexpected_resp_every: 1, ..Faults::default() });
    let a = call(&s, "POST", "/api/v3/order", &far_buy(&s, "u-1"));
    assert_eq!((a.status / 100, a.code()), (5, -1006), "{a:?}");
    let q = call(&s, "GET", "/api/v3/order", &format!("symbol={SYMBOL}&origClientOrderId=u-1"));
    assert_eq!((q.status, q.json["status"].as_str()), (200, Some("NEW")));
}

#[test]
fn a_slow_exchange_answers_concurrent_requests_concurrently() {
    // DESIGN.md: "a slow answer on one order must not delay another order";
    // Binance answers each request on its own (rest-api.md §General API
    // Information: each request has its own 10 s timeout).
    let s = plain(Faults { slow_answers: Duration::from_millis(1500), ..Faults::default() });
    top(&s);
    let spans: Vec<(Instant, Instant, u16)> = std::thread::scope(|sc| {
        let hs: Vec<_> = (0..4)
            .map(|i| {
                let s = &s;
                sc.spawn(move || {
                    let t0 = Instant::now();
                    let a = if i % 2 == 0 {
                        http(s, "GET", "/api/v3/time", None)
                    } else {
                        call(s, "GET", "/api/v3/account", "")
                    };
                    (t0, Instant::now(), a.status)
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(spans.iter().all(|(_, _, st)| *st == 200), "{spans:?}");
    // Every answer was outstanding at the same moment: none waited for another's.
    let last_start = spans.iter().map(|s| s.0).max().unwrap();
    let first_end = spans.iter().map(|s| s.1).min().unwrap();
    assert!(last_start < first_end, "answers were serialized");
}

#[test]
fn filters_refuse_with_their_names_and_stp_modes_are_validated() {
    // filters.md §PERCENT_PRICE_BY_SIDE, §MAX_NUM_ORDERS; errors.md §Filter
    // failures; enums.md §STP Modes.
    let s = sim(Faults::default(), ExchangeConfig { max_num_orders: 2, ..ExchangeConfig::default() }, 200.0);
    let (bid, ask) = top(&s);
    let order = |side: &str, price: i64, id: &str, extra: &str| {
        call(
            &s,
            "POST",
            "/api/v3/order",
            &format!(
                "symbol={SYMBOL}&side={side}&type=LIMIT_MAKER&quantity=0.001&price={}&newClientOrderId={id}{extra}",
                px(price)
            ),
        )
    };
    // bidMultiplierDown 0.2 and askMultiplierUp 5 around the last price.
    let a = order("BUY", (bid / 6) / 1_000_000 * 1_000_000, "f-1", "");
    assert_eq!((a.code(), a.json["msg"].as_str()), (-1013, Some("Filter failure: PERCENT_PRICE_BY_SIDE")), "{a:?}");
    let a = order("SELL", ask * 6, "f-2", "");
    assert_eq!((a.code(), a.json["msg"].as_str()), (-1013, Some("Filter failure: PERCENT_PRICE_BY_SIDE")), "{a:?}");
    let a = order("BUY", bid - 500 * DOLLAR, "f-3", "&selfTradePreventionMode=BOGUS");
    assert_eq!(a.code(), -1100, "{a:?}");
    let a = order("BUY", bid - 500 * DOLLAR, "f-4", "&selfTradePreventionMode=DECREMENT&newOrderRespType=RESULT");
    assert_eq!((a.status, a.json["selfTradePreventionMode"].as_str()), (200, Some("DECREMENT")), "{a:?}");
    let a = order("BUY", bid - 501 * DOLLAR, "f-5", "&newOrderRespType=RESULT");
    assert_eq!(a.json["selfTradePreventionMode"], "EXPIRE_MAKER", "the symbol's default");
    let a = order("BUY", bid - 502 * DOLLAR, "f-6", "");
    assert_eq!((a.code(), a.json["msg"].as_str()), (-1013, Some("Filter failure: MAX_NUM_ORDERS")), "{a:?}");
    assert_eq!(s.orders(KEY).len(), 2);
}

#[test]
fn my_trades_pages_by_limit_and_from_id() {
    // rest-api.md §Account trade list: limit default 500, max 1000; "If
    // fromId is set, it will get trades >= that fromId. Otherwise most
    // recent trades are returned." Self-trades (STP NONE) make the fills.
    let faults = Faults {
        self_trade_every: Some(Duration::from_millis(50)),
        self_trade_mode: "NONE".into(),
        ..Faults::default()
    };
    let s = plain(faults);
    let (bid, _) = top(&s);
    let a = call(
        &s,
        "POST",
        "/api/v3/order",
        &format!("symbol={SYMBOL}&side=BUY&type=LIMIT_MAKER&quantity=0.5&price={}", px(bid - 500 * DOLLAR)),
    );
    assert_eq!(a.status, 200, "{a:?}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while s.fills(KEY).len() < 8 {
        assert!(Instant::now() < deadline, "too few self-trade fills: {}", s.fills(KEY).len());
        std::thread::sleep(Duration::from_millis(20));
    }
    away_from_window_edge(60_000, 3_000);
    let before = s.used_weight();
    let all = call(&s, "GET", "/api/v3/myTrades", &format!("symbol={SYMBOL}"));
    let after: u64 = all.header("X-MBX-USED-WEIGHT-1M").unwrap().parse().unwrap();
    assert_eq!(after, before + 20, "weight 20 without orderId");
    let all = all.json.as_array().unwrap().clone();
    assert!(all.len() >= 8);
    let ids: Vec<i64> = all.iter().map(|t| t["id"].as_i64().unwrap()).collect();
    // A self-trade lists both sides under one trade id.
    assert!(ids.windows(2).all(|w| w[0] <= w[1]), "oldest first: {ids:?}");
    let recent = call(&s, "GET", "/api/v3/myTrades", &format!("symbol={SYMBOL}&limit=3")).json;
    let recent: Vec<i64> = recent.as_array().unwrap().iter().map(|t| t["id"].as_i64().unwrap()).collect();
    assert_eq!(recent.len(), 3);
    assert!(recent[0] >= ids[ids.len() - 3], "the most recent trades: {recent:?} of {ids:?}");
    let x = ids[3];
    let from = call(&s, "GET", "/api/v3/myTrades", &format!("symbol={SYMBOL}&fromId={x}&limit=3")).json;
    let from: Vec<i64> = from.as_array().unwrap().iter().map(|t| t["id"].as_i64().unwrap()).collect();
    let want: Vec<i64> = ids.iter().copied().filter(|i| *i >= x).take(3).collect();
    assert_eq!(from, want);
    let bad = call(&s, "GET", "/api/v3/myTrades", &format!("symbol={SYMBOL}&limit=1001"));
    assert_eq!(bad.code(), -1100);
}

#[test]
fn bnb_fees_and_money_agree_to_the_satoshi() {
    // commission_faq.md §How is the commission calculated?: in BNB,
    // (commission in quote / BNB price) x discount; the received asset is
    // credited whole. rest-api.md §New order: a BUY locks price x qty only.
    let bnb = BnbFees { price: 600 * DOLLAR, discount: DOLLAR / 4 };
    let s = sim(Faults::default(), ExchangeConfig { bnb_fees: Some(bnb), ..ExchangeConfig::default() }, 3000.0);
    let (bid, ask) = top(&s);
    let qty = 200_000; // 0.002
    let buy = call(
        &s,
        "POST",
        "/api/v3/order",
        &format!("symbol={SYMBOL}&side=BUY&type=LIMIT_MAKER&quantity=0.002&price={}&newClientOrderId=bnb-buy", px(bid)),
    );
    assert_eq!(buy.status, 200, "{buy:?}");
    let usdt = s.account(KEY).unwrap().into_iter().find(|b| b.asset == "USDT").unwrap();
    assert_eq!(usdt.locked.0, notional_ceil(bid, qty), "a BUY locks price x qty, nothing for fees");
    let sell = call(
        &s,
        "POST",
        "/api/v3/order",
        &format!(
            "symbol={SYMBOL}&side=SELL&type=LIMIT_MAKER&quantity=0.002&price={}&newClientOrderId=bnb-sell",
            px(ask)
        ),
    );
    assert_eq!(sell.status, 200, "{sell:?}");
    let deadline = Instant::now() + Duration::from_secs(60);
    while s.fills(KEY).is_empty() {
        assert!(Instant::now() < deadline, "no fill within 60 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = call(&s, "DELETE", "/api/v3/openOrders", &format!("symbol={SYMBOL}"));
    let fills = s.fills(KEY);
    let (mut usdt, mut btc, mut bnb_left) = (100_000 * DOLLAR, DOLLAR, 10 * DOLLAR);
    for f in &fills {
        let value = notional(f.price.0, f.qty.0);
        let standard_in_quote = match f.side {
            mmbot::exec::Side::Buy => notional(f.price.0, mul_rate(f.qty.0, 100_000)),
            mmbot::exec::Side::Sell => mul_rate(value, 100_000),
        };
        let want = mul_rate((standard_in_quote as i128 * DOLLAR as i128 / bnb.price as i128) as i64, bnb.discount);
        assert_eq!((f.commission, f.commission_asset.as_str()), (want, "BNB"), "{f:?}");
        bnb_left -= f.commission;
        match f.side {
            mmbot::exec::Side::Buy => {
                usdt -= value;
                btc += f.qty.0;
            }
            mmbot::exec::Side::Sell => {
                usdt += value;
                btc -= f.qty.0;
            }
        }
    }
    let acct = call(&s, "GET", "/api/v3/account", "").json;
    let bal = |a: &str| {
        let b = acct["balances"].as_array().unwrap().iter().find(|b| b["asset"] == a).cloned().unwrap();
        (fx(&b["free"]), fx(&b["locked"]))
    };
    assert_eq!(bal("USDT"), (usdt, 0));
    assert_eq!(bal("BTC"), (btc, 0));
    assert_eq!(bal("BNB"), (bnb_left, 0));
    let trades = call(&s, "GET", "/api/v3/myTrades", &format!("symbol={SYMBOL}")).json;
    for (t, f) in trades.as_array().unwrap().iter().zip(&fills) {
        assert_eq!((fx(&t["commission"]), t["commissionAsset"].as_str()), (f.commission, Some("BNB")));
    }
}

#[test]
fn ignoring_429s_gets_the_ip_banned_on_the_fault() {
    // rest-api.md §IP Limits: "Repeatedly violating rate limits and/or
    // failing to back off after receiving 429s will result in an automated
    // IP ban (HTTP status 418)."
    let faults = Faults {
        throttle_weight_every: 1,
        ban_after_ignored_429s: 2,
        ban_for: Some(Duration::from_secs(2)),
        ..Faults::default()
    };
    let s = plain(faults);
    let a = http(&s, "GET", "/api/v3/time", None);
    assert_eq!((a.status, a.header("Retry-After")), (429, Some("1")));
    assert_eq!(http(&s, "GET", "/api/v3/time", None).status, 429, "one ignored");
    let a = http(&s, "GET", "/api/v3/time", None);
    assert_eq!((a.status, a.code()), (418, -1003), "two ignored: banned: {a:?}");
    assert!(s.banned());
}

/// Several symbols' own dynamics: `--price` starts a symbol where asked (the rest at 60,000),
/// on the one grid every symbol trades on.
#[test]
fn symbols_start_where_asked_and_the_rest_at_60000() {
    let s = Sim::start(SimConfig {
        symbols: vec!["BTCUSDT".into(), "ETHUSDT".into()],
        dynamics: mmbot::sim::Dynamics {
            correlation: 0.5,
            start_prices: vec![("ETHUSDT".into(), 3_000 * 100_000_000)],
        },
        ..SimConfig::default()
    })
    .unwrap();
    let best_bid = |symbol: &str| -> f64 {
        let d = http(&s, "GET", &format!("/api/v3/depth?symbol={symbol}&limit=5"), None);
        d.json["bids"][0][0].as_str().unwrap().parse().unwrap()
    };
    let (btc, eth) = (best_bid("BTCUSDT"), best_bid("ETHUSDT"));
    assert!((59_000.0..61_000.0).contains(&btc), "BTCUSDT at {btc}");
    assert!((2_950.0..3_050.0).contains(&eth), "ETHUSDT at {eth}");
}

/// `mmbot sim --correlation` and `--price` refuse what they cannot do, saying why.
#[test]
fn bad_dynamics_flags_are_refused_with_the_fix() {
    for (args, needle) in [
        (&["--correlation", "1.5"][..], "--correlation 1.5: give a correlation from 0"),
        (&["--price", "ETHUSDT=3000"][..], "ETHUSDT is not simulated; add --symbol ETHUSDT"),
        (&["--price", "BTCUSDT=0.001"][..], "start at 0.01 or more"),
        (&["--price", "BTCUSDT"][..], "use SYMBOL=PRICE"),
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_mmbot"))
            .args(["sim", "--listen", "127.0.0.1:0", "--duration", "1s"])
            .args(args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains(needle), "{args:?}: {err}");
    }
}

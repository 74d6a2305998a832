//! The simulator's trading side against mmbot's own Binance REST client:
//! every answer the client must understand (orders, cancels, cancelReplace,
//! refusals, signatures, clock, faults) and the fills the simulated market
//! produces, down to the 1e-8 in the balances and the executionReport on the
//! user-data stream. Loopback only, ephemeral ports, every wait bounded.

use std::net::TcpStream;
use std::time::{Duration, Instant};

use mmbot::exec::binance::sign::{ws_api_payload, HmacKey};
use mmbot::exec::binance::{
    Action, BinanceError, ClientOrderId, Credentials, OrderRef, OrderStatus, ReplaceMode, RestClient, RestConfig,
};
use mmbot::exec::Side;
use mmbot::hot::fixed::{mul_rate, notional, Price, Qty};
use mmbot::sim::exchange::SimAccount;
use mmbot::sim::faults::Faults;
use mmbot::sim::{Sim, SimConfig, SimSource};
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

const SYMBOL: &str = "BTCUSDT";
const KEY: &str = "simKey0123456789";
const SECRET: &str = "simSecret0123456789";
/// A second account with almost no money.
const POOR: &str = "poorKey0123456789";
const RATE: &str = "0.001";

fn sim_with(faults: Faults, events_per_sec: f64) -> Sim {
    Sim::start(SimConfig {
        symbols: vec![SYMBOL.into()],
        source: SimSource::Synthetic { seed: 11, events_per_sec },
        faults,
        accounts: vec![
            SimAccount::hmac(KEY, SECRET, &[("BTC", "1"), ("USDT", "100000")], RATE),
            SimAccount::hmac(POOR, SECRET, &[("BTC", "0"), ("USDT", "1")], RATE),
        ],
        ..SimConfig::default()
    })
    .expect("the simulator starts on an ephemeral port")
}

fn client(sim: &Sim, key: &str, secret: &str, recv_window_ms: u64, timeout: Duration) -> RestClient {
    let mut cfg = RestConfig::with_base(&sim.http_base());
    cfg.recv_window = Duration::from_millis(recv_window_ms);
    cfg.timeout = timeout;
    cfg.connect_timeout = Duration::from_secs(2);
    RestClient::new(&cfg, Credentials::hmac(key, secret).unwrap()).unwrap()
}

fn good_client(sim: &Sim) -> RestClient {
    client(sim, KEY, SECRET, 5000, Duration::from_secs(5))
}

fn id(s: &str) -> ClientOrderId {
    ClientOrderId::new(s).unwrap()
}

fn q(s: &str) -> Qty {
    s.parse().unwrap()
}

/// Best bid and ask now (waits for the model's first book).
fn top(sim: &Sim) -> (i64, i64) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(b) = sim.true_book(SYMBOL) {
            if let (Some(bid), Some(ask)) = (b.bids.first(), b.asks.first()) {
                return (bid.0, ask.0);
            }
        }
        assert!(Instant::now() < deadline, "the simulated book never filled");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn balance(sim: &Sim, asset: &str) -> (i64, i64) {
    sim.account(KEY).unwrap().iter().find(|b| b.asset == asset).map(|b| (b.free.0, b.locked.0)).unwrap_or((0, 0))
}

const DOLLAR: i64 = 100_000_000;

#[test]
fn place_query_cancel_and_cancel_replace() {
    let sim = sim_with(Faults::default(), 200.0);
    let mut c = good_client(&sim);
    let info = c.exchange_info(SYMBOL).unwrap();
    let rules = info.symbol(SYMBOL).unwrap();
    assert!(rules.cancel_replace_allowed && rules.limit_maker_allowed);
    let (bid, _) = top(&sim);
    // Far below the touch: rests and will not fill during the test.
    let price = Price(bid - 500 * DOLLAR);
    let qty = q("0.001");
    c.test_order(SYMBOL, Side::Buy, price, qty, &id("t-0")).unwrap();
    assert!(sim.orders(KEY).is_empty(), "a test order is never placed");

    let placed = c.new_limit_maker(SYMBOL, Side::Buy, price, qty, &id("t-1")).unwrap();
    assert_eq!((placed.status.clone(), placed.price, placed.orig_qty), (OrderStatus::New, price, qty));
    let cost = notional(price.0, qty.0);
    assert_eq!(balance(&sim, "USDT"), (100_000 * DOLLAR - cost, cost));
    let looked = c.query_order_by_client_id(SYMBOL, "t-1").unwrap();
    assert_eq!((looked.order_id, looked.status), (placed.order_id, OrderStatus::New));

    let price2 = Price(price.0 - DOLLAR);
    let r = c
        .cancel_replace(
            SYMBOL,
            OrderRef::ClientId("t-1"),
            Side::Buy,
            price2,
            qty,
            &id("t-2"),
            ReplaceMode::StopOnFailure,
        )
        .unwrap();
    assert_eq!((r.canceled.status.clone(), r.canceled.placed_client_order_id()), (OrderStatus::Canceled, "t-1"));
    assert_eq!((r.placed.status.clone(), r.placed.price), (OrderStatus::New, price2));
    let open = c.open_orders(SYMBOL).unwrap();
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].client_order_id, "t-2");
    assert_eq!(sim.orders(KEY).len(), 1);

    // A canceled order is still found by its client id, as on Binance.
    assert_eq!(c.query_order_by_client_id(SYMBOL, "t-1").unwrap().status, OrderStatus::Canceled);
    let e = c.query_order_by_client_id(SYMBOL, "never-sent").unwrap_err();
    assert_eq!((e.code(), e.action()), (Some(-2013), Action::ForgetOrder));

    // Replacing an order that is not open: STOP_ON_FAILURE places nothing.
    let e = c
        .cancel_replace(
            SYMBOL,
            OrderRef::ClientId("t-1"),
            Side::Buy,
            price2,
            qty,
            &id("t-3"),
            ReplaceMode::StopOnFailure,
        )
        .unwrap_err();
    assert!(matches!(e, BinanceError::ReplaceFailed { .. }), "{e:?}");
    assert_eq!(e.code(), Some(-2022));
    // ALLOW_FAILURE places the new order anyway: 409, -2021.
    let e = c
        .cancel_replace(
            SYMBOL,
            OrderRef::ClientId("t-1"),
            Side::Buy,
            price2,
            qty,
            &id("t-4"),
            ReplaceMode::AllowFailure,
        )
        .unwrap_err();
    assert!(matches!(e, BinanceError::ReplacePartial { .. }), "{e:?}");
    assert_eq!((e.code(), e.action()), (Some(-2021), Action::ApplyBothResults));
    assert_eq!(sim.orders(KEY).len(), 2);

    let canceled = c.cancel(SYMBOL, OrderRef::OrderId(r.placed.order_id)).unwrap();
    assert_eq!(canceled.status, OrderStatus::Canceled);
    let e = c.cancel(SYMBOL, OrderRef::OrderId(r.placed.order_id)).unwrap_err();
    assert_eq!((e.code(), e.action()), (Some(-2011), Action::ForgetOrder));
    let all = c.cancel_all(SYMBOL).unwrap();
    assert_eq!(all.len(), 1);
    assert!(c.cancel_all(SYMBOL).unwrap().is_empty());
    assert!(sim.orders(KEY).is_empty());
    // Everything unlocked: back where it started, to the 1e-8.
    assert_eq!(balance(&sim, "USDT"), (100_000 * DOLLAR, 0));
    let acct = c.account().unwrap();
    assert_eq!(acct.balance("USDT").unwrap().free, Qty(100_000 * DOLLAR));
    assert_eq!(acct.commission.maker, 100_000);
}

#[test]
fn refusals_come_back_as_binance_words_them() {
    let sim = sim_with(Faults::default(), 200.0);
    let mut c = good_client(&sim);
    let (bid, ask) = top(&sim);
    let qty = q("0.001");

    let e = c.new_limit_maker(SYMBOL, Side::Buy, Price(ask + DOLLAR), qty, &id("r-1")).unwrap_err();
    assert!(matches!(e, BinanceError::WouldTake { .. }), "{e:?}");
    assert_eq!(e.action(), Action::Requote);
    let e = c.new_limit_maker(SYMBOL, Side::Sell, Price(bid - DOLLAR), qty, &id("r-2")).unwrap_err();
    assert_eq!(e.action(), Action::Requote);

    let mut poor = client(&sim, POOR, SECRET, 5000, Duration::from_secs(5));
    let e = poor.new_limit_maker(SYMBOL, Side::Buy, Price(bid - 500 * DOLLAR), qty, &id("r-3")).unwrap_err();
    assert!(matches!(e, BinanceError::InsufficientBalance { .. }), "{e:?}");
    assert_eq!(e.action(), Action::RefreshBalances);
    let e = poor.new_limit_maker(SYMBOL, Side::Sell, Price(ask + 500 * DOLLAR), qty, &id("r-4")).unwrap_err();
    assert_eq!(e.action(), Action::RefreshBalances);

    let far = Price(bid - 500 * DOLLAR);
    c.new_limit_maker(SYMBOL, Side::Buy, far, qty, &id("dup")).unwrap();
    let e = c.new_limit_maker(SYMBOL, Side::Buy, far, qty, &id("dup")).unwrap_err();
    assert!(matches!(e, BinanceError::DuplicateOrder { .. }), "{e:?}");
    assert_eq!(sim.orders(KEY).len(), 1);

    // No exchange_info() on this client: the filters are the exchange's to check.
    for (price, qty, filter) in [
        (Price(far.0 + 100_000), qty, "PRICE_FILTER"),
        (far, q("0.0010001"), "LOT_SIZE"),
        (far, q("0.00001"), "NOTIONAL"),
    ] {
        let e = c.new_limit_maker(SYMBOL, Side::Buy, price, qty, &id("f-1")).unwrap_err();
        match &e {
            BinanceError::Filter { filter: f, api, .. } => {
                assert_eq!((f.as_str(), api.code), (filter, -1013));
                assert_eq!(api.msg, format!("Filter failure: {filter}"));
            }
            other => panic!("{filter}: {other:?}"),
        }
        assert_eq!(e.action(), Action::FixRequest);
    }
    assert_eq!(sim.orders(KEY).len(), 1);
}

#[test]
fn bad_signature_bad_timestamp_then_success_after_sync() {
    // The exchange clock runs 3 s ahead and the client allows 1 s.
    let sim = sim_with(Faults { clock_offset_ms: 3000, ..Faults::default() }, 200.0);
    let mut wrong = client(&sim, KEY, "not-the-secret", 1000, Duration::from_secs(5));
    wrong.sync_clock().unwrap();
    let e = wrong.account().unwrap_err();
    assert_eq!((e.code(), e.action()), (Some(-1022), Action::FixCredentials));
    let mut stranger = client(&sim, "nobody-0123456789", SECRET, 1000, Duration::from_secs(5));
    let e = stranger.account().unwrap_err();
    assert_eq!((e.code(), e.action()), (Some(-2015), Action::FixCredentials));

    let mut c = client(&sim, KEY, SECRET, 1000, Duration::from_secs(5));
    let e = c.account().unwrap_err();
    assert!(matches!(e, BinanceError::Timestamp { .. }), "{e:?}");
    assert_eq!(e.action(), Action::ResyncClockAndRetry);
    let s = c.sync_clock().unwrap();
    assert!((2500..3500).contains(&s.offset_ms), "{s:?}");
    assert!(c.account().is_ok());

    // Behind instead: a client that does not sync is "ahead of the server".
    let sim = sim_with(Faults { clock_offset_ms: -3000, ..Faults::default() }, 200.0);
    let mut c = good_client(&sim);
    let e = c.account().unwrap_err();
    assert_eq!(e.action(), Action::ResyncClockAndRetry);
    c.sync_clock().unwrap();
    assert!(c.account().is_ok());
}

#[test]
fn order_faults_give_the_client_the_right_action() {
    let qty = q("0.001");
    let sim = sim_with(Faults { throttle_order_every: 1, ..Faults::default() }, 200.0);
    let far = Price(top(&sim).0 - 500 * DOLLAR);
    let e = good_client(&sim).new_limit_maker(SYMBOL, Side::Buy, far, qty, &id("x-1")).unwrap_err();
    assert_eq!(e.action(), Action::Wait(Duration::from_secs(1)), "{e:?}");
    assert!(sim.orders(KEY).is_empty());

    let sim = sim_with(Faults { ban_order_every: 2, ..Faults::default() }, 200.0);
    let mut c = good_client(&sim);
    c.new_limit_maker(SYMBOL, Side::Buy, far, qty, &id("b-1")).unwrap();
    let e = c.new_limit_maker(SYMBOL, Side::Buy, far, qty, &id("b-2")).unwrap_err();
    assert!(
        matches!(e.action(), Action::StopTrading { retry_after: Some(d) } if d == Duration::from_secs(120)),
        "{e:?}"
    );
    assert_eq!(sim.orders(KEY).len(), 1);
    // The ban holds for every trading request, from any client; the one
    // that was told keeps it locally and sends nothing.
    assert!(c.open_orders(SYMBOL).is_err());
    assert_eq!(sim.requests_during_ban(), 0, "the banned client asked again");
    let e = good_client(&sim).open_orders(SYMBOL).unwrap_err();
    assert!(matches!(e.action(), Action::StopTrading { .. }), "{e:?}");
    assert_eq!(sim.requests_during_ban(), 1);

    // 5xx after placing: the fate is unknown, and the lookup settles it.
    let sim = sim_with(Faults { error_after_order_every: 1, ..Faults::default() }, 200.0);
    let mut c = good_client(&sim);
    let e = c.new_limit_maker(SYMBOL, Side::Buy, far, qty, &id("u-1")).unwrap_err();
    assert!(e.fate_unknown(), "{e:?}");
    assert_eq!(e.action(), Action::LookUpOrder);
    let found = c.query_order_by_client_id(SYMBOL, "u-1").unwrap();
    assert_eq!((found.status, found.price), (OrderStatus::New, far));

    // The answer held past the client's timeout: same story.
    let faults = Faults { delay_order_every: 1, order_delay: Duration::from_millis(1500), ..Faults::default() };
    let sim = sim_with(faults, 200.0);
    let mut c = client(&sim, KEY, SECRET, 5000, Duration::from_millis(400));
    let e = c.new_limit_maker(SYMBOL, Side::Buy, far, qty, &id("d-1")).unwrap_err();
    assert_eq!(e.action(), Action::LookUpOrder, "{e:?}");
    let found = c.query_order_by_client_id(SYMBOL, "d-1").unwrap();
    assert_eq!(found.status, OrderStatus::New);
}

type Ws = WebSocket<MaybeTlsStream<TcpStream>>;

/// Connects to `/ws-api/v3` and subscribes to the user data of `KEY`.
fn user_data(sim: &Sim) -> Ws {
    let (mut ws, _) = tungstenite::connect(format!("{}/ws-api/v3", sim.ws_base())).unwrap();
    if let MaybeTlsStream::Plain(s) = ws.get_mut() {
        s.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    }
    // The sim's clock is the wall clock here (no offset fault).
    let ts = (std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis()).to_string();
    let sig = HmacKey::new(SECRET).unwrap().sign_hex(ws_api_payload(&[("apiKey", KEY), ("timestamp", &ts)]).as_bytes());
    ws.send(Message::text(r#"{"id":"p1","method":"ping"}"#)).unwrap();
    ws.send(Message::text(format!(
        r#"{{"id":"s1","method":"userDataStream.subscribe.signature","params":{{"apiKey":"{KEY}","timestamp":{ts},"signature":"{sig}"}}}}"#
    )))
    .unwrap();
    let (mut pong, mut subscribed) = (false, false);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !(pong && subscribed) {
        assert!(Instant::now() < deadline, "no answer to ping and subscribe");
        if let Some(v) = next_json(&mut ws) {
            if v["id"] == "p1" {
                assert_eq!(v["status"], 200);
                pong = true;
            }
            if v["id"] == "s1" {
                assert_eq!(v["status"], 200, "{v}");
                assert_eq!(v["result"]["subscriptionId"], 0);
                subscribed = true;
            }
        }
    }
    ws
}

/// The next text frame as JSON, or `None` after the read timeout.
fn next_json(ws: &mut Ws) -> Option<serde_json::Value> {
    match ws.read() {
        Ok(Message::Text(t)) => serde_json::from_str(t.as_str()).ok(),
        Ok(_) => None,
        Err(tungstenite::Error::Io(e))
            if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) =>
        {
            None
        }
        Err(e) => panic!("user-data connection failed: {e}"),
    }
}

#[test]
fn the_market_fills_resting_orders_and_balances_move_exactly() {
    // A fast market, so the price reaches one of the two quotes soon.
    let sim = sim_with(Faults::default(), 3000.0);
    let mut ws = user_data(&sim);
    let mut c = good_client(&sim);
    let (bid, ask) = top(&sim);
    let qty = q("0.002");
    let buy = c.new_limit_maker(SYMBOL, Side::Buy, Price(bid), qty, &id("m-buy")).unwrap();
    let sell = c.new_limit_maker(SYMBOL, Side::Sell, Price(ask), qty, &id("m-sell")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while sim.fills(KEY).is_empty() {
        assert!(Instant::now() < deadline, "no fill within 60 s; book now {:?}", top(&sim));
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = c.cancel_all(SYMBOL).unwrap();
    assert!(sim.orders(KEY).is_empty());
    let fills = sim.fills(KEY);
    let rate = 100_000;
    let (mut usdt, mut btc) = (100_000 * DOLLAR, DOLLAR);
    // commission_faq.md §How is the commission calculated?: charged on the
    // received amount, in the received asset (base for a BUY, quote for a SELL).
    for f in &fills {
        assert!(f.order_id == buy.order_id || f.order_id == sell.order_id);
        let value = notional(f.price.0, f.qty.0);
        match f.side {
            Side::Buy => {
                assert_eq!(f.price, Price(bid));
                assert_eq!((f.commission, f.commission_asset.as_str()), (mul_rate(f.qty.0, rate), "BTC"));
                usdt -= value;
                btc += f.qty.0 - f.commission;
            }
            Side::Sell => {
                assert_eq!(f.price, Price(ask));
                assert_eq!((f.commission, f.commission_asset.as_str()), (mul_rate(value, rate), "USDT"));
                usdt += value - f.commission;
                btc -= f.qty.0;
            }
        }
    }
    assert_eq!(balance(&sim, "USDT"), (usdt, 0));
    assert_eq!(balance(&sim, "BTC"), (btc, 0));
    let acct = c.account().unwrap();
    assert_eq!(acct.balance("USDT").unwrap().free, Qty(usdt));
    assert_eq!(acct.balance("BTC").unwrap().free, Qty(btc));
    // The orders agree with the fills, and myTrades lists each fill.
    for o in [&buy, &sell] {
        let got = c.query_order_by_client_id(SYMBOL, &o.client_order_id).unwrap();
        let filled: i64 = fills.iter().filter(|f| f.order_id == o.order_id).map(|f| f.qty.0).sum();
        assert_eq!(got.executed_qty, Qty(filled));
        let trades = c.my_trades(SYMBOL, o.order_id).unwrap();
        let want: Vec<_> = fills.iter().filter(|f| f.order_id == o.order_id).collect();
        assert_eq!(trades.len(), want.len());
        for (t, f) in trades.iter().zip(want) {
            assert_eq!((t.id, t.order_id, t.price, t.qty), (f.trade_id as i64, f.order_id, f.price, f.qty));
            assert_eq!((t.commission, t.commission_asset.as_str()), (f.commission, f.commission_asset.as_str()));
            assert_eq!((t.is_buyer, t.is_maker), (f.side == Side::Buy, true));
        }
    }

    // The user-data stream carried each fill's executionReport.
    let first = &fills[0];
    let deadline = Instant::now() + Duration::from_secs(5);
    let report = loop {
        assert!(Instant::now() < deadline, "no executionReport for the fill");
        let Some(v) = next_json(&mut ws) else { continue };
        assert_eq!(v["subscriptionId"], 0, "{v}");
        let e = &v["event"];
        if e["e"] == "executionReport" && e["x"] == "TRADE" && e["i"] == first.order_id {
            break e.clone();
        }
    };
    assert_eq!(report["c"], first.client_order_id.as_str());
    assert_eq!(report["s"], SYMBOL);
    assert_eq!(report["o"], "LIMIT_MAKER");
    assert_eq!(report["l"].as_str().unwrap().parse::<Qty>().unwrap(), first.qty);
    assert_eq!(report["L"].as_str().unwrap().parse::<Price>().unwrap(), first.price);
    assert_eq!(report["n"].as_str().unwrap().parse::<Qty>().unwrap(), Qty(first.commission));
    assert_eq!(report["N"], first.commission_asset.as_str());
    assert_eq!(report["t"], first.trade_id);
    assert_eq!(report["m"], true);
    for k in ["E", "S", "q", "p", "X", "r", "z", "T", "w", "O", "Z", "Y", "C"] {
        assert!(!report[k].is_null(), "executionReport lacks {k}: {report}");
    }
}

#[test]
fn user_data_connections_are_dropped_on_the_fault() {
    let sim = sim_with(Faults { drop_user_data_every: Some(Duration::from_millis(800)), ..Faults::default() }, 200.0);
    let mut ws = user_data(&sim);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        assert!(Instant::now() < deadline, "the user-data connection was never dropped");
        match ws.read() {
            Ok(_) => {}
            Err(tungstenite::Error::Io(e))
                if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
    }
    // A new connection subscribes again (the bot's reconnect path).
    let mut ws = user_data(&sim);
    assert!(sim.adjust_balance(KEY, "USDT", DOLLAR));
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        assert!(Instant::now() < deadline, "no balanceUpdate");
        if let Some(v) = next_json(&mut ws) {
            if v["event"]["e"] == "balanceUpdate" {
                assert_eq!(v["event"]["d"], "1.00000000");
                break;
            }
        }
    }
}

#[test]
fn ed25519_keys_sign_rest_requests() {
    // RFC 8410 section 10.3's example key (not a secret anywhere).
    let pem = "-----BEGIN PRIVATE KEY-----\n\
               MC4CAQAwBQYDK2VwBCIEINTuctv5E1hK1bbY8fdp+K06/nwoy/HU++CXqI9EdVhC\n\
               -----END PRIVATE KEY-----\n";
    let key = mmbot::exec::binance::sign::Ed25519Key::from_pem(pem, "RFC 8410").unwrap();
    let account = SimAccount {
        api_key: "edKey0123456789".into(),
        key: mmbot::sim::exchange::SimKey::Ed25519(key.public_key().to_vec()),
        balances: vec![("USDT".into(), q("1000"))],
        commission: 0,
    };
    let sim = Sim::start(SimConfig { accounts: vec![account], ..SimConfig::default() }).unwrap();
    let mut cfg = RestConfig::with_base(&sim.http_base());
    cfg.timeout = Duration::from_secs(5);
    let mut c = RestClient::new(&cfg, Credentials::ed25519("edKey0123456789", key).unwrap()).unwrap();
    let acct = c.account().unwrap();
    assert_eq!(acct.balance("USDT").unwrap().free, q("1000"));
    // The same key id with another key's signature is refused.
    let other = mmbot::exec::binance::sign::Ed25519Key::from_pkcs8_der(
        ring::signature::Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new()).unwrap().as_ref(),
        "generated",
    )
    .unwrap();
    let mut bad = RestClient::new(&cfg, Credentials::ed25519("edKey0123456789", other).unwrap()).unwrap();
    assert_eq!(bad.account().unwrap_err().code(), Some(-1022));
}

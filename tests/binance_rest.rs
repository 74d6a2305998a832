//! The Binance spot REST client's signing, parsing, errors and limits:
//! the signing vectors and example payloads from ../shared/binance/examples,
//! then the client against the loopback double in tests/rest_double/ (clock
//! offset, rejections and the actions they map to, 429/418, local limits,
//! secrets, the shared IP guard). Order flows are in
//! tests/binance_rest_orders.rs.

mod common;
mod rest_double;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::Duration;

use mmbot::exec::binance::errors::{from_response, Endpoint, Limited};
use mmbot::exec::binance::filters::{NotionalKind, RateLimitKind};
use mmbot::exec::binance::keys::{Credentials, API_KEY_VAR, ED25519_KEY_FILE_VAR};
use mmbot::exec::binance::sign::{ws_api_payload, Ed25519Key, HmacKey, KeyKind, Signer};
use mmbot::exec::binance::{
    Account, Action, BinanceError, ClientIds, ExchangeInfo, OrderRef, OrderStatus, ReplaceHalf, ReplaceMode,
    RestClient, RestConfig, SymbolStatus,
};
use mmbot::exec::Side;
use mmbot::hot::fixed::{parse_fixed, Qty};
use mmbot::ipguard::IpGuard;
use rest_double::{
    decode, expect_err, no_secret, p, q, wall_ms, Double, Inject, Limits, AHEAD_MS, API_KEY, SECRET, SPOT_LIMITS, T,
};

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/binance/examples")
}

/// An example file's JSON, or `None` (with a visible skip message).
fn example(test: &str, name: &str) -> Option<serde_json::Value> {
    let path = examples().join(name);
    match std::fs::read(&path) {
        Ok(bytes) => Some(serde_json::from_slice(&bytes).unwrap()),
        Err(_) => {
            common::skip(format_args!("{test}: {} is absent (Binance examples live in ../shared)", path.display()));
            None
        }
    }
}

// ---------------------------------------------------------------------------
// Signing vectors and example payloads

#[test]
fn hmac_vectors_from_binances_docs() {
    let Some(v) = example("hmac_sha256_test_vectors", "hmac_sha256_test_vectors.json") else { return };
    let key = HmacKey::new(v["secretKey"].as_str().unwrap()).unwrap();
    let vectors = v["vectors"].as_array().unwrap();
    assert_eq!(vectors.len(), 4);
    for t in vectors {
        let payload = t["payload"].as_str().unwrap();
        assert_eq!(key.sign_hex(payload.as_bytes()), t["signature"].as_str().unwrap(), "{}", t["name"]);
    }
    // The WS-API payload is built by sorting the parameters, apiKey included.
    let api = v["apiKey"].as_str().unwrap();
    let built = ws_api_payload(&[
        ("symbol", "BTCUSDT"),
        ("side", "SELL"),
        ("type", "LIMIT"),
        ("timeInForce", "GTC"),
        ("quantity", "0.01000000"),
        ("price", "52000.00"),
        ("recvWindow", "100"),
        ("timestamp", "1645423376532"),
        ("apiKey", api),
    ]);
    assert_eq!(built, vectors[2]["payload"].as_str().unwrap());
    let signer = Signer::Hmac(key);
    assert_eq!(signer.ws_signature(built.as_bytes()), vectors[2]["signature"].as_str().unwrap());
}

/// A fresh Ed25519 key as openssl would store it: PKCS#8 PEM.
fn generated_pem() -> (String, Vec<u8>) {
    use base64::Engine as _;
    use ring::signature::KeyPair as _;
    let rng = ring::rand::SystemRandom::new();
    let der = ring::signature::Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
    let pair = ring::signature::Ed25519KeyPair::from_pkcs8(der.as_ref()).unwrap();
    let b64 = base64::engine::general_purpose::STANDARD.encode(der.as_ref());
    let lines: Vec<&str> = b64.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap()).collect();
    let pem = format!("-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n", lines.join("\n"));
    (pem, pair.public_key().as_ref().to_vec())
}

#[test]
fn ed25519_sign_verify_round_trip_from_a_pem_file() {
    use base64::Engine as _;
    let dir = common::temp_dir("binance-ed25519");
    let (pem, public) = generated_pem();
    let file = dir.join("binance-ed25519.pem");
    std::fs::write(&file, &pem).unwrap();
    let key = Ed25519Key::from_pem_file(&file).unwrap();
    assert_eq!(key.public_key(), &public[..]);
    let signer = Signer::Ed25519(key);
    let payload = "symbol=BTCUSDT&side=SELL&type=LIMIT_MAKER&quantity=0.001&price=65000&timestamp=1700000000000";
    let ws = signer.ws_signature(payload.as_bytes());
    let sig = base64::engine::general_purpose::STANDARD.decode(&ws).unwrap();
    assert_eq!(sig.len(), 64);
    ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, &public)
        .verify(payload.as_bytes(), &sig)
        .unwrap();
    assert!(ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, &public)
        .verify(b"symbol=BTCUSDT&side=BUY", &sig)
        .is_err());
    // The REST form is the same signature, percent-encoded.
    let rest = signer.rest_signature(payload.as_bytes());
    assert!(!rest.contains(['+', '/', '=']), "{rest}");
    assert_eq!(decode(&rest), ws);

    // Loaded through the environment variables, relative to the .env file.
    let env_file = dir.join(".env");
    std::fs::write(&env_file, format!("{ED25519_KEY_FILE_VAR}=binance-ed25519.pem\n")).unwrap();
    let creds = Credentials::load_with(|v| (v == API_KEY_VAR).then(|| API_KEY.to_string()), &env_file).unwrap();
    assert_eq!(creds.kind(), KeyKind::Ed25519);
    let shown = format!("{creds:?}");
    assert!(!shown.contains(&API_KEY[4..]) && !shown.contains(&pem[30..60]), "{shown}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn exchange_info_2021_parses_into_exact_rules() {
    let path = examples().join("spot_exchangeInfo_2021.json");
    let Ok(body) = std::fs::read(&path) else {
        common::skip(format_args!("exchange_info_2021: {} is absent", path.display()));
        return;
    };
    let info = ExchangeInfo::parse(&body).unwrap();
    assert_eq!(info.symbols.len(), 1695);
    assert_eq!(info.symbols.iter().filter(|s| s.status == SymbolStatus::Break).count(), 433);
    assert!(info.symbols.iter().all(|s| s.notional.kind == NotionalKind::MinNotional && !s.cancel_replace_allowed));
    let weight = &info.rate_limits[0];
    assert_eq!(
        (weight.kind.clone(), weight.limit, weight.header_suffix()),
        (RateLimitKind::RequestWeight, 1200, "1m".into())
    );
    assert_eq!(info.rate_limits.iter().filter(|l| l.kind == RateLimitKind::Orders).count(), 2);
    let btc = info.symbol("BTCUSDT").unwrap();
    assert_eq!((btc.base_asset.as_str(), btc.quote_asset.as_str()), ("BTC", "USDT"));
    assert_eq!((btc.price.min, btc.price.max, btc.price.tick), (p("0.01"), p("1000000"), p("0.01")));
    assert_eq!((btc.lot.min, btc.lot.max, btc.lot.step), (q("0.00001"), q("9000"), q("0.00001")));
    assert_eq!(btc.notional.min, parse_fixed(b"10").unwrap());
    assert_eq!(btc.max_num_orders, 200);
    assert_eq!(btc.check(Side::Buy, p("57000.01"), q("0.00018")), Ok(()));
    let e = btc.check(Side::Buy, p("57000.01"), q("0.00017")).unwrap_err();
    assert_eq!(e.filter(), "MIN_NOTIONAL");
    assert!(e.to_string().contains("9.6900017") && e.to_string().contains("minNotional 10"), "{e}");
    assert_eq!(btc.check(Side::Sell, p("57000.001"), q("1")).unwrap_err().filter(), "PRICE_FILTER");
    let eth = info.symbol("ETHBTC").unwrap();
    assert_eq!(eth.price.tick, p("0.000001"));
    let broken = info.symbols.iter().find(|s| s.status == SymbolStatus::Break).unwrap();
    assert_eq!(broken.check(Side::Buy, broken.price.min.max(p("1")), broken.lot.min).unwrap_err().filter(), "STATUS");
}

#[test]
fn example_account_and_cancel_replace_payloads() {
    if let Some(v) = example("example_account", "spot_rest_account_response.json") {
        let a = Account::parse(v.to_string().as_bytes()).unwrap();
        assert_eq!(a.balance("BTC").unwrap().free, q("4723846.89208129"));
        assert_eq!(a.balance("LTC").unwrap().locked, Qty(0));
        assert_eq!(a.commission.maker, parse_fixed(b"0.0015").unwrap());
        assert!(a.can_trade);
    }
    let ep = Endpoint { label: "POST /api/v3/order/cancelReplace", mutating: true };
    if let Some(v) = example("example_replace", "spot_rest_cancelReplace_new_order_failed.json") {
        let e = from_response(ep, 409, v.to_string().as_bytes(), None);
        assert_eq!(e.action(), Action::ApplyBothResults);
        let BinanceError::ReplacePartial { halves, .. } = &e else { panic!("{e:?}") };
        assert!(matches!(&halves.cancel, ReplaceHalf::Success(o) if o.status == OrderStatus::Canceled));
        assert!(matches!(halves.new_order, ReplaceHalf::Failure { code: -2010, .. }));
    }
    if let Some(v) = example("example_replace", "spot_rest_cancelReplace_stop_on_failure_cancel_failed.json") {
        let e = from_response(ep, 400, v.to_string().as_bytes(), None);
        assert!(matches!(e, BinanceError::ReplaceFailed { .. }), "{e:?}");
        assert_eq!(e.action(), Action::ForgetOrder);
    }
    if let Some(v) = example("example_error", "spot_rest_error_example.json") {
        let e = from_response(ep, 400, v.to_string().as_bytes(), None);
        assert_eq!((e.code(), e.action()), (Some(-1121), Action::FixRequest));
    }
}

// ---------------------------------------------------------------------------
// The client against the double

#[test]
fn the_clock_offset_is_measured_and_applied() {
    let d = Double::start(SPOT_LIMITS);
    // recvWindow 1 s: our raw clock, 3 s behind the double's, is refused.
    let mut c = d.client(1000, T);
    let e = expect_err(c.account());
    assert!(matches!(e, BinanceError::Timestamp { .. }), "{e:?}");
    assert_eq!(e.action(), Action::ResyncClockAndRetry);
    assert!(e.to_string().contains("recvWindow"), "{e}");
    let sample = c.sync_clock().unwrap();
    assert!((AHEAD_MS - 300..=AHEAD_MS + 300).contains(&sample.offset_ms), "{sample:?}");
    assert_eq!(c.clock_offset_ms(), sample.offset_ms);
    let a = c.account().unwrap();
    assert_eq!(a.balance("BTC").unwrap().free, q("0.12345678"));
    assert_eq!(a.balance("USDT").unwrap().free, q("1000"));
    assert_eq!(a.commission.maker, parse_fixed(b"0.001").unwrap());
    assert!(a.can_trade);
}

#[test]
fn rejections_map_to_actions() {
    let d = Double::start(SPOT_LIMITS);
    let mut c = d.client(5000, T);
    c.sync_clock().unwrap();
    let mut ids = ClientIds::new("mmRej").unwrap();

    // Before exchange_info the client has no rules: the double's filter refuses.
    let e = expect_err(c.new_limit_maker("BTCUSDT", Side::Buy, p("100.001"), q("0.001"), &ids.next()));
    assert!(matches!(&e, BinanceError::Filter { filter, .. } if filter == "PRICE_FILTER"), "{e:?}");
    assert_eq!(e.action(), Action::FixRequest);

    let e = expect_err(c.new_limit_maker("BTCUSDT", Side::Buy, p("60000.01"), q("0.001"), &ids.next()));
    assert!(matches!(e, BinanceError::WouldTake { .. }), "{e:?}");
    assert_eq!(e.action(), Action::Requote);
    let e = expect_err(c.new_limit_maker("BTCUSDT", Side::Sell, p("59000"), q("0.001"), &ids.next()));
    assert_eq!(e.action(), Action::Requote);

    let e = expect_err(c.new_limit_maker("BTCUSDT", Side::Buy, p("50000"), q("1"), &ids.next()));
    assert!(matches!(e, BinanceError::InsufficientBalance { .. }), "{e:?}");
    assert_eq!(e.action(), Action::RefreshBalances);

    let id = ids.next();
    c.new_limit_maker("BTCUSDT", Side::Buy, p("50000"), q("0.001"), &id).unwrap();
    let e = expect_err(c.new_limit_maker("BTCUSDT", Side::Buy, p("50000"), q("0.001"), &id));
    assert!(matches!(e, BinanceError::DuplicateOrder { .. }), "{e:?}");
    assert_eq!(e.action(), Action::LookUpOrder);

    // With the rules loaded, a bad order never leaves.
    c.exchange_info("BTCUSDT").unwrap();
    let before = d.requests();
    let e = expect_err(c.new_limit_maker("BTCUSDT", Side::Buy, p("100.001"), q("0.001"), &ids.next()));
    assert!(matches!(&e, BinanceError::LocalFilter { violation, .. } if violation.filter() == "PRICE_FILTER"), "{e:?}");
    assert!(e.to_string().contains("tickSize 0.01"), "{e}");
    let e = expect_err(c.new_limit_maker("BTCUSDT", Side::Buy, p("100"), q("0.01"), &ids.next()));
    assert!(e.to_string().contains("NOTIONAL") && e.to_string().contains("minNotional 5"), "{e}");
    assert_eq!(e.action(), Action::FixRequest);
    assert_eq!(d.requests(), before, "refused locally, nothing sent");

    // Wrong secret, wrong API key.
    let mut bad = d.client_with(Credentials::hmac(API_KEY, "not-the-secret-0123456789").unwrap(), 5000, T);
    bad.sync_clock().unwrap();
    let e = expect_err(bad.account());
    assert_eq!((e.code(), e.action()), (Some(-1022), Action::FixCredentials));
    let mut bad = d.client_with(Credentials::hmac("someone-elses-key-0123456789", SECRET).unwrap(), 5000, T);
    bad.sync_clock().unwrap();
    let e = expect_err(bad.account());
    assert_eq!((e.code(), e.action()), (Some(-2015), Action::FixCredentials));
    assert!(e.to_string().contains("BINANCE_API_KEY"), "{e}");
}

#[test]
fn a_429_or_418_stops_the_client_locally() {
    let d = Double::start(SPOT_LIMITS);
    let mut c = d.client(5000, T);
    c.sync_clock().unwrap();
    d.inject("GET /api/v3/account", Inject::TooMany(7));
    let e = expect_err(c.account());
    assert!(matches!(e, BinanceError::RateLimited { status: 429, .. }), "{e:?}");
    assert_eq!(e.action(), Action::Wait(Duration::from_secs(7)));
    let before = d.requests();
    let e = expect_err(c.open_orders("BTCUSDT"));
    let Action::Wait(w) = e.action() else { panic!("{e:?}") };
    assert!(w > Duration::from_secs(6) && w <= Duration::from_secs(7), "{w:?}");
    assert!(matches!(e, BinanceError::LocalRateLimit { .. }) && e.to_string().contains("429"), "{e}");
    assert_eq!(d.requests(), before, "nothing sent while Retry-After runs");

    let d = Double::start(SPOT_LIMITS);
    let mut c = d.client(5000, T);
    c.sync_clock().unwrap();
    d.inject("POST /api/v3/order", Inject::Banned(300));
    let id = ClientIds::new("mmBan").unwrap().next();
    let e = expect_err(c.new_limit_maker("BTCUSDT", Side::Buy, p("50000"), q("0.001"), &id));
    assert!(matches!(e, BinanceError::Banned { .. }), "{e:?}");
    assert_eq!(e.action(), Action::StopTrading { retry_after: Some(Duration::from_secs(300)) });
    assert!(d.open_orders().is_empty());
    let before = d.requests();
    let e = expect_err(c.cancel_all("BTCUSDT"));
    assert!(matches!(e, BinanceError::LocalBan { .. }), "{e:?}");
    assert!(matches!(e.action(), Action::StopTrading { retry_after: Some(_) }));
    assert_eq!(d.requests(), before);
}

/// Waits while the double's day is about to turn (the local limits below
/// are per day, and a test straddling midnight UTC would see them reset).
fn clear_of_day_boundary() {
    let to_midnight = 86_400_000 - (wall_ms() + AHEAD_MS).rem_euclid(86_400_000);
    if to_midnight < 10_000 {
        std::thread::sleep(Duration::from_millis(to_midnight as u64 + 100));
    }
}

#[test]
fn limits_from_exchange_info_are_kept_locally() {
    const TIGHT: Limits = &[("REQUEST_WEIGHT", "DAY", 1, 50), ("ORDERS", "DAY", 1, 2)];
    clear_of_day_boundary();
    let d = Double::start(TIGHT);
    let mut c = d.client(5000, T);
    c.sync_clock().unwrap(); // 1
    c.exchange_info("BTCUSDT").unwrap(); // 21, and the limits above are installed
    c.account().unwrap(); // 41
    let before = d.requests();
    let e = expect_err(c.account());
    assert!(matches!(e, BinanceError::LocalRateLimit { .. }), "{e:?}");
    assert!(e.to_string().contains("41 used of REQUEST_WEIGHT 50 per 1D"), "{e}");
    assert!(matches!(e.action(), Action::Wait(w) if w <= Duration::from_secs(86_400)));
    assert_eq!(d.requests(), before, "refused locally, nothing sent");

    let mut ids = ClientIds::new("mmLim").unwrap();
    c.new_limit_maker("BTCUSDT", Side::Buy, p("50000"), q("0.001"), &ids.next()).unwrap();
    c.new_limit_maker("BTCUSDT", Side::Buy, p("50000.01"), q("0.001"), &ids.next()).unwrap();
    let e = expect_err(c.new_limit_maker("BTCUSDT", Side::Buy, p("50000.02"), q("0.001"), &ids.next()));
    assert!(e.to_string().contains("2 used of ORDERS 2 per 1D"), "{e}");
    assert_eq!(d.requests(), before + 2);
    // A cancel is no new order and weighs 1: still allowed.
    c.cancel_all("BTCUSDT").unwrap();
    let usage = c.usage();
    assert!(usage.iter().any(|u| u.limit.kind == RateLimitKind::Orders && u.used == 2), "{usage:?}");
}

#[test]
fn secrets_never_show() {
    let d = Double::start(SPOT_LIMITS);
    let c = d.client(5000, T);
    let shown = format!("{c:?}");
    assert!(!shown.contains(SECRET) && !shown.contains(&API_KEY[4..]), "{shown}");
    assert!(shown.contains("HMAC-SHA256") && shown.contains("starts \"dblA\""), "{shown}");
    // An error body that echoes the API key loses the key, not its meaning.
    let mut c = d.client(5000, T);
    d.inject("GET /api/v3/openOrders", Inject::EchoKey);
    let e = expect_err(c.open_orders("BTCUSDT"));
    assert!(e.to_string().contains("[api key]") && e.code() == Some(-1100), "{e}");
    assert_eq!(e.action(), Action::FixRequest);
    // Bad settings never echo keys either.
    let e = RestClient::new(&RestConfig::with_base("http://example.com"), Credentials::hmac(API_KEY, SECRET).unwrap())
        .unwrap_err();
    assert!(e.to_string().contains("https://"), "{e}");
    no_secret(&e);
}

#[test]
fn a_refused_connection_is_not_sent_and_safe_to_retry() {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    // The listener is dropped: nothing listens on the port any more.
    let mut cfg = RestConfig::with_base(&format!("http://127.0.0.1:{port}"));
    cfg.connect_timeout = Duration::from_secs(2);
    let mut c = RestClient::new(&cfg, Credentials::hmac(API_KEY, SECRET).unwrap()).unwrap();
    let id = ClientIds::new("mmRefused").unwrap().next();
    let e = expect_err(c.new_limit_maker("BTCUSDT", Side::Buy, p("50000"), q("0.001"), &id));
    assert!(matches!(e, BinanceError::NotSent { .. }), "{e:?}");
    assert_eq!(e.action(), Action::Retry);
}

#[test]
fn an_order_count_429_stops_new_orders_only_and_a_weight_429_everything() {
    let d = Double::start(SPOT_LIMITS);
    let mut c = d.client(5000, T);
    c.sync_clock().unwrap();
    let mut ids = ClientIds::new("mm1015").unwrap();
    c.new_limit_maker("BTCUSDT", Side::Buy, p("50000"), q("0.001"), &ids.next()).unwrap();
    d.inject("POST /api/v3/order", Inject::TooManyOrders(30));
    let e = expect_err(c.new_limit_maker("BTCUSDT", Side::Buy, p("50000.01"), q("0.001"), &ids.next()));
    assert!(matches!(e, BinanceError::RateLimited { status: 429, .. }), "{e:?}");
    assert_eq!((e.limited(), e.action()), (Some(Limited::Orders), Action::Wait(Duration::from_secs(30))));
    // New orders are refused locally while it runs ...
    let before = d.requests();
    let e = expect_err(c.new_limit_maker("BTCUSDT", Side::Buy, p("50000.02"), q("0.001"), &ids.next()));
    assert!(matches!(e, BinanceError::LocalRateLimit { limit: Limited::Orders, .. }), "{e:?}");
    assert!(matches!(e.action(), Action::Wait(w) if w > Duration::from_secs(25)), "{e:?}");
    assert_eq!(d.requests(), before);
    // ... and so is cancelReplace (it places one) ...
    let open = d.open_orders()[0].id;
    let e = expect_err(c.cancel_replace(
        "BTCUSDT",
        OrderRef::OrderId(open),
        Side::Buy,
        p("50000.03"),
        q("0.001"),
        &ids.next(),
        ReplaceMode::StopOnFailure,
    ));
    assert_eq!(e.limited(), Some(Limited::Orders), "{e:?}");
    assert_eq!(d.requests(), before);
    // ... but cancels, queries and reads still go.
    assert_eq!(c.open_orders("BTCUSDT").unwrap().len(), 1);
    assert_eq!(c.cancel_all("BTCUSDT").unwrap().len(), 1);
    c.account().unwrap();
    assert_eq!(d.requests(), before + 3);

    // A weight 429 (-1003) stops every request, cancels too.
    let d = Double::start(SPOT_LIMITS);
    let mut c = d.client(5000, T);
    c.sync_clock().unwrap();
    d.inject("GET /api/v3/account", Inject::TooMany(20));
    let e = expect_err(c.account());
    assert_eq!(e.limited(), Some(Limited::RequestWeight), "{e:?}");
    let before = d.requests();
    let e = expect_err(c.cancel_all("BTCUSDT"));
    assert!(matches!(e, BinanceError::LocalRateLimit { limit: Limited::RequestWeight, .. }), "{e:?}");
    assert_eq!(d.requests(), before);
}

#[test]
fn clients_share_one_guard_and_clones_share_the_clock() {
    let d = Double::start(SPOT_LIMITS);
    let guard = IpGuard::new();
    let mut cfg = RestConfig::with_base(&d.url);
    cfg.timeout = T;
    let mut a = RestClient::with_guard(&cfg, Credentials::hmac(API_KEY, SECRET).unwrap(), guard.clone()).unwrap();
    a.sync_clock().unwrap();
    let mut b = a.clone();
    assert_eq!(b.clock_offset_ms(), a.clock_offset_ms());
    let handle = a.clock_offset_handle();
    assert_eq!(handle.load(std::sync::atomic::Ordering::Relaxed), a.clock_offset_ms());
    assert!((AHEAD_MS - 1000..=AHEAD_MS + 1000).contains(&b.clock_offset_ms()), "{}", b.clock_offset_ms());
    assert_eq!(b.last_timestamp_ms(), None, "time is not signed");
    b.account().unwrap();
    let signed = b.last_timestamp_ms().unwrap();
    let sent: i64 = d.params_of("GET /api/v3/account")[0]["timestamp"].parse().unwrap();
    assert_eq!(signed, sent, "the timestamp the request was signed with");
    // A clone in another thread works on its own.
    let mut t = a.clone();
    std::thread::spawn(move || t.open_orders("BTCUSDT").map(|o| o.len())).join().unwrap().unwrap();
    // One client's 418 stops the other, and the feed's guard too.
    d.inject("GET /api/v3/openOrders", Inject::Banned(120));
    assert!(matches!(expect_err(a.open_orders("BTCUSDT")), BinanceError::Banned { .. }));
    let before = d.requests();
    assert!(matches!(expect_err(b.account()), BinanceError::LocalBan { .. }));
    assert_eq!(d.requests(), before);
    assert!(guard.admit_connect("market streams").is_err());
}

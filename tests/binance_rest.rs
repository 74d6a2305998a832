//! The Binance spot REST client against a loopback test double of Binance
//! (127.0.0.1, ephemeral port, bounded loops, no internet), plus the
//! signing vectors and example payloads from ../shared/binance/examples.
//!
//! The double checks what Binance checks before anything else: the API key
//! header, the HMAC signature (-1022), and the timestamp against its own
//! clock, which runs 3 s ahead of ours, and `recvWindow` (-1021). It keeps a
//! book (best bid/ask) and a balance, so post-only orders that would cross
//! are refused (-2010) as on Binance. Faults are injected per request: 429
//! with Retry-After, 418, a 500 after the order was placed, an answer late
//! past the client's timeout (also after placing), a 409 from
//! cancelReplace, a -1006 after placing, an order-count 429 (-1015), and
//! cancelReplace over the order count under `CANCEL_ONLY` (429, cancel
//! done). It logs every signed request's parameters and serves `myTrades`
//! by `orderId`/`fromId`/`limit` like Binance.

mod common;

use std::collections::{HashMap, VecDeque};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mmbot::exec::binance::errors::{from_response, Endpoint, Limited};
use mmbot::exec::binance::filters::{NotionalKind, RateLimitKind};
use mmbot::exec::binance::gateway::{NewOrder, StpMode, Target};
use mmbot::exec::binance::keys::{Credentials, API_KEY_VAR, ED25519_KEY_FILE_VAR};
use mmbot::exec::binance::rest::MY_TRADES_PAGE;
use mmbot::exec::binance::sign::{ws_api_payload, Ed25519Key, HmacKey, KeyKind, Signer};
use mmbot::exec::binance::{
    Account, Action, BinanceError, ClientIds, ExchangeInfo, OrderRef, OrderStatus, ReplaceHalf, ReplaceMode,
    RestClient, RestConfig, SymbolStatus,
};
use mmbot::exec::Side;
use mmbot::hot::fixed::{notional, parse_fixed, Price, Qty};
use mmbot::ipguard::IpGuard;

const API_KEY: &str = "dblApiKey0123456789ABCDEFghijklmnopqrstuv";
const SECRET: &str = "dblSecret9876543210ZYXWVUtsrqponmlkjihgf";
/// The double's clock runs this far ahead of ours.
const AHEAD_MS: i64 = 3000;

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

fn p(s: &str) -> Price {
    s.parse().unwrap()
}

fn q(s: &str) -> Qty {
    s.parse().unwrap()
}

fn wall_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

/// Fails if an error's text or Debug shows a secret.
fn no_secret(e: &BinanceError) {
    let shown = format!("{e} {e:?}");
    for secret in [API_KEY, &API_KEY[4..20], SECRET, &SECRET[4..20]] {
        assert!(!shown.contains(secret), "secret in error: {shown}");
    }
}

#[track_caller]
fn expect_err<T: std::fmt::Debug>(r: Result<T, BinanceError>) -> BinanceError {
    let e = r.expect_err("expected an error");
    no_secret(&e);
    e
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
// The test double

/// A fault for the next matching request.
#[derive(Debug, Clone)]
enum Inject {
    /// 429 with `Retry-After` (seconds), before anything else.
    TooMany(u64),
    /// 418 with `Retry-After`.
    Banned(u64),
    /// Do the request, then answer 500 with an HTML page.
    FailAfter,
    /// Do the request, then answer only after this delay.
    LateAfter(Duration),
    /// cancelReplace: cancel, then refuse the new order (409 -2021).
    ReplaceNewFails,
    /// Refuse with a message quoting the API key the request carried.
    EchoKey,
    /// 429 -1015 "Too many new orders" with `Retry-After`, before anything else.
    TooManyOrders(u64),
    /// Do the request, then answer -1006 UNEXPECTED_RESP with this status.
    UnexpectedAfter(u16),
    /// cancelReplace over the unfilled order count: with
    /// `orderRateLimitExceededMode=CANCEL_ONLY` cancel and answer 429 -2021
    /// (new order -1015); without it, 429 -1015 and nothing done.
    OverOrderCount,
}

#[derive(Debug, Clone)]
struct DOrder {
    id: u64,
    client_id: String,
    side: &'static str,
    price: i64,
    qty: i64,
    status: &'static str,
}

struct State {
    /// "METHOD /path" of every request received.
    log: Vec<String>,
    orders: Vec<DOrder>,
    next_id: u64,
    best_bid: i64,
    best_ask: i64,
    free_usdt: i64,
    injections: VecDeque<(String, Inject)>,
    /// Per usage header suffix: (window index, used).
    weight: HashMap<String, (i64, u64)>,
    order_count: HashMap<String, (i64, u64)>,
    /// Every signed request: its label and decoded parameters.
    params: Vec<(String, HashMap<String, String>)>,
    /// `(trade id, order id)` of the account's trades.
    trades: Vec<(i64, u64)>,
}

struct Double {
    url: String,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// `(kind, interval, intervalNum, limit)` rows of `rateLimits`.
type Limits = &'static [(&'static str, &'static str, u32, u64)];

const SPOT_LIMITS: Limits =
    &[("REQUEST_WEIGHT", "MINUTE", 1, 6000), ("ORDERS", "SECOND", 10, 50), ("ORDERS", "DAY", 1, 160_000)];

impl Double {
    fn start(limits: Limits) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(State {
            log: Vec::new(),
            orders: Vec::new(),
            next_id: 1,
            best_bid: parse_fixed(b"60000").unwrap(),
            best_ask: parse_fixed(b"60000.01").unwrap(),
            free_usdt: parse_fixed(b"1000").unwrap(),
            injections: VecDeque::new(),
            weight: HashMap::new(),
            order_count: HashMap::new(),
            params: Vec::new(),
            trades: Vec::new(),
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let (st, sp) = (state.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(120);
            let mut conns = Vec::new();
            while !sp.load(Ordering::Relaxed) && Instant::now() < deadline {
                match listener.accept() {
                    Ok((s, _)) => {
                        let (st, sp) = (st.clone(), sp.clone());
                        conns.push(std::thread::spawn(move || serve(s, &st, &sp, limits)));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
            sp.store(true, Ordering::Relaxed);
            for c in conns {
                let _ = c.join();
            }
        });
        Self { url, state, stop, thread: Some(thread) }
    }

    fn inject(&self, request: &str, what: Inject) {
        self.state.lock().unwrap().injections.push_back((request.to_string(), what));
    }

    fn requests(&self) -> usize {
        self.state.lock().unwrap().log.len()
    }

    /// The parameters of every signed `label` request so far.
    fn params_of(&self, label: &str) -> Vec<HashMap<String, String>> {
        self.state.lock().unwrap().params.iter().filter(|(l, _)| l == label).map(|(_, p)| p.clone()).collect()
    }

    /// `n` trades of `order_id`, ids from `first_id` up in steps of 2
    /// (other orders' trades fall between them on Binance).
    fn add_trades(&self, order_id: u64, n: i64, first_id: i64) {
        let mut st = self.state.lock().unwrap();
        st.trades.extend((0..n).map(|i| (first_id + 2 * i, order_id)));
        st.trades.sort_unstable();
    }

    fn open_orders(&self) -> Vec<DOrder> {
        self.state.lock().unwrap().orders.iter().filter(|o| o.status == "NEW").cloned().collect()
    }

    fn client(&self, recv_window_ms: u64, timeout: Duration) -> RestClient {
        self.client_with(Credentials::hmac(API_KEY, SECRET).unwrap(), recv_window_ms, timeout)
    }

    fn client_with(&self, creds: Credentials, recv_window_ms: u64, timeout: Duration) -> RestClient {
        let mut cfg = RestConfig::with_base(&self.url);
        cfg.recv_window = Duration::from_millis(recv_window_ms);
        cfg.timeout = timeout;
        cfg.connect_timeout = Duration::from_secs(2);
        RestClient::new(&cfg, creds).unwrap()
    }
}

impl Drop for Double {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One connection: keep-alive requests until the client closes it, the
/// double stops, or 30 s pass.
fn serve(mut s: TcpStream, state: &Mutex<State>, stop: &AtomicBool, limits: Limits) {
    let _ = s.set_nonblocking(false);
    let _ = s.set_read_timeout(Some(Duration::from_millis(20)));
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = [0u8; 8192];
    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
        // A whole request in `buf`?
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut req = httparse::Request::new(&mut headers);
        if let Ok(httparse::Status::Complete(head_len)) = req.parse(&buf) {
            let method = req.method.unwrap_or("").to_string();
            let target = req.path.unwrap_or("").to_string();
            let mut key = None;
            let mut content_len = 0usize;
            for h in req.headers.iter() {
                if h.name.eq_ignore_ascii_case("x-mbx-apikey") {
                    key = Some(String::from_utf8_lossy(h.value).into_owned());
                } else if h.name.eq_ignore_ascii_case("content-length") {
                    content_len = std::str::from_utf8(h.value).ok().and_then(|v| v.parse().ok()).unwrap_or(0);
                }
            }
            if buf.len() >= head_len + content_len {
                let body = String::from_utf8_lossy(&buf[head_len..head_len + content_len]).into_owned();
                buf.drain(..head_len + content_len);
                let reply = handle(state, limits, &method, &target, key.as_deref(), &body);
                if !reply.delay.is_zero() {
                    std::thread::sleep(reply.delay);
                }
                let mut out = format!("HTTP/1.1 {} X\r\nContent-Type: application/json\r\n", reply.status);
                for (k, v) in &reply.headers {
                    out.push_str(&format!("{k}: {v}\r\n"));
                }
                out.push_str(&format!("Content-Length: {}\r\n\r\n{}", reply.body.len(), reply.body));
                if s.write_all(out.as_bytes()).is_err() {
                    return;
                }
                continue;
            }
        }
        match s.read(&mut chunk) {
            Ok(0) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(_) => return,
        }
    }
}

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
    delay: Duration,
}

fn reply(status: u16, body: impl Into<String>) -> Reply {
    Reply { status, headers: Vec::new(), body: body.into(), delay: Duration::ZERO }
}

fn api_error(status: u16, code: i64, msg: &str) -> Reply {
    reply(status, format!("{{\"code\":{code},\"msg\":\"{msg}\"}}"))
}

fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match (b[i], b.get(i + 1..i + 3)) {
            (b'%', Some(hex)) => {
                out.push(u8::from_str_radix(std::str::from_utf8(hex).unwrap_or("zz"), 16).unwrap_or(b'?'));
                i += 3;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn order_json(o: &DOrder, symbol: &str) -> String {
    format!(
        "{{\"symbol\":\"{symbol}\",\"orderId\":{},\"orderListId\":-1,\"clientOrderId\":\"{}\",\"transactTime\":{},\
         \"price\":\"{}\",\"origQty\":\"{}\",\"executedQty\":\"0.00000000\",\"origQuoteOrderQty\":\"0.00000000\",\
         \"cummulativeQuoteQty\":\"0.00000000\",\"status\":\"{}\",\"timeInForce\":\"GTC\",\"type\":\"LIMIT_MAKER\",\
         \"side\":\"{}\",\"workingTime\":1,\"selfTradePreventionMode\":\"EXPIRE_MAKER\"}}",
        o.id,
        o.client_id,
        wall_ms() + AHEAD_MS,
        Price(o.price),
        Qty(o.qty),
        o.status,
        o.side
    )
}

fn canceled_json(o: &DOrder, symbol: &str) -> String {
    // A cancel answer: the order's own id moves to origClientOrderId.
    let mut j = order_json(o, symbol);
    j = j.replacen(
        &format!("\"clientOrderId\":\"{}\"", o.client_id),
        &format!("\"origClientOrderId\":\"{}\",\"clientOrderId\":\"cancel{}\"", o.client_id, o.id),
        1,
    );
    j
}

fn interval_ms(interval: &str, num: u32) -> i64 {
    let unit = match interval {
        "SECOND" => 1000,
        "MINUTE" => 60_000,
        "HOUR" => 3_600_000,
        _ => 86_400_000,
    };
    unit * num as i64
}

/// The double's request handling, under its lock (never sleeps there).
fn handle(state: &Mutex<State>, limits: Limits, method: &str, target: &str, key: Option<&str>, body: &str) -> Reply {
    let mut st = state.lock().unwrap();
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let label = format!("{method} {path}");
    st.log.push(label.clone());
    let now = wall_ms() + AHEAD_MS;
    let injected = st.injections.iter().position(|(r, _)| *r == label).and_then(|i| st.injections.remove(i));
    let inject = injected.map(|(_, i)| i);
    match inject {
        Some(Inject::TooMany(s)) => {
            let mut r = api_error(
                429,
                -1003,
                "Too much request weight used; current limit is 6000 request weight per 1 MINUTE.",
            );
            r.headers.push(("Retry-After".into(), s.to_string()));
            return r;
        }
        Some(Inject::TooManyOrders(s)) => {
            let mut r = api_error(429, -1015, "Too many new orders; current limit is 50 orders per 10 SECOND.");
            r.headers.push(("Retry-After".into(), s.to_string()));
            return r;
        }
        Some(Inject::Banned(s)) => {
            let mut r = api_error(418, -1003, "Way too much request weight used; IP banned until 1700000000000.");
            r.headers.push(("Retry-After".into(), s.to_string()));
            return r;
        }
        _ => {}
    }
    let weight: u64 = match label.as_str() {
        "GET /api/v3/exchangeInfo" | "GET /api/v3/account" => 20,
        "GET /api/v3/openOrders" => 6,
        "GET /api/v3/order" => 4,
        _ => 1,
    };
    let counts_order = matches!(label.as_str(), "POST /api/v3/order" | "POST /api/v3/order/cancelReplace");
    // Usage headers, counted per fixed window like Binance's.
    let mut headers = Vec::new();
    for &(kind, interval, num, limit) in limits {
        let len = interval_ms(interval, num);
        let suffix = format!("{num}{}", &interval[..1]);
        let (map, cost, header) = match kind {
            "REQUEST_WEIGHT" => (&mut st.weight, weight, "X-MBX-USED-WEIGHT-"),
            "ORDERS" if counts_order => (&mut st.order_count, 1, "X-MBX-ORDER-COUNT-"),
            _ => continue,
        };
        let e = map.entry(suffix.clone()).or_insert((now / len, 0));
        if e.0 != now / len {
            *e = (now / len, 0);
        }
        e.1 += cost;
        if e.1 > limit {
            let mut r = api_error(429, -1003, "Too much request weight used.");
            r.headers.push(("Retry-After".into(), "10".into()));
            return r;
        }
        headers.push((format!("{header}{suffix}"), e.1.to_string()));
    }
    let mut r = route(&mut st, limits, &label, query, key, body, now, inject);
    r.headers.extend(headers);
    r
}

#[allow(clippy::too_many_arguments)]
fn route(
    st: &mut State,
    limits: Limits,
    label: &str,
    query: &str,
    key: Option<&str>,
    body: &str,
    now: i64,
    inject: Option<Inject>,
) -> Reply {
    match label {
        "GET /api/v3/time" => return reply(200, format!("{{\"serverTime\":{now}}}")),
        "GET /api/v3/exchangeInfo" if query.contains("symbol=BTCUSDT") => {
            return reply(200, exchange_info_body(limits, true));
        }
        "GET /api/v3/exchangeInfo" => return api_error(400, -1121, "Invalid symbol."),
        _ => {}
    }
    if let (Some(Inject::EchoKey), Some(k)) = (&inject, key) {
        return api_error(400, -1100, &format!("Illegal characters found in parameter 'apiKey' ({k})."));
    }
    // Signed endpoints: API key, signature, then timestamp, as Binance does.
    if key != Some(API_KEY) {
        return api_error(401, -2015, "Invalid API-key, IP, or permissions for action.");
    }
    let Some(at) = query.find("&signature=") else {
        return api_error(400, -1102, "Mandatory parameter 'signature' was not sent, was empty/null, or malformed.");
    };
    let (signed, sig) = (&query[..at], &query[at + "&signature=".len()..]);
    let expect = HmacKey::new(SECRET).unwrap().sign_hex(format!("{signed}{body}").as_bytes());
    if !sig.eq_ignore_ascii_case(&expect) {
        return api_error(400, -1022, "Signature for this request is not valid.");
    }
    let params: HashMap<String, String> =
        signed.split('&').filter_map(|kv| kv.split_once('=')).map(|(k, v)| (k.to_string(), decode(v))).collect();
    let get = |k: &str| params.get(k).map(String::as_str).unwrap_or("");
    let ts: i64 = get("timestamp").parse().unwrap_or(0);
    let window: i64 = get("recvWindow").parse().unwrap_or(5000);
    if ts >= now + 1000 || now - ts > window {
        return api_error(400, -1021, "Timestamp for this request is outside of the recvWindow.");
    }
    let symbol = get("symbol").to_string();
    st.params.push((label.to_string(), params.clone()));
    match label {
        "GET /api/v3/account" => after(
            inject,
            reply(
                200,
                format!(
                    "{{\"makerCommission\":10,\"takerCommission\":10,\"buyerCommission\":0,\"sellerCommission\":0,\
                 \"commissionRates\":{{\"maker\":\"0.00100000\",\"taker\":\"0.00100000\",\"buyer\":\"0.00000000\",\
                 \"seller\":\"0.00000000\"}},\"canTrade\":true,\"canWithdraw\":false,\"canDeposit\":true,\
                 \"updateTime\":{now},\"accountType\":\"SPOT\",\"balances\":[{{\"asset\":\"BTC\",\
                 \"free\":\"0.12345678\",\"locked\":\"0.00000000\"}},{{\"asset\":\"USDT\",\"free\":\"{}\",\
                 \"locked\":\"0.00000000\"}}],\"permissions\":[\"SPOT\"],\"uid\":1}}",
                    Price(st.free_usdt)
                ),
            ),
        ),
        "POST /api/v3/order" | "POST /api/v3/order/test" => {
            let test = label.ends_with("/test");
            match new_order(st, &params, !test) {
                Err(r) => r,
                Ok(_) if test => reply(200, "{}"),
                Ok(o) => after(inject, reply(200, order_json(&o, &symbol))),
            }
        }
        "DELETE /api/v3/order" => match cancel(st, &params, "orderId", "origClientOrderId") {
            Some(o) => after(inject, reply(200, canceled_json(&o, &symbol))),
            None => api_error(400, -2011, "Unknown order sent."),
        },
        "POST /api/v3/order/cancelReplace" => {
            let Some(old) = cancel(st, &params, "cancelOrderId", "cancelOrigClientOrderId") else {
                return reply(
                    400,
                    "{\"code\":-2022,\"msg\":\"Order cancel-replace failed.\",\"data\":{\"cancelResult\":\"FAILURE\",\
                     \"newOrderResult\":\"NOT_ATTEMPTED\",\"cancelResponse\":{\"code\":-2011,\
                     \"msg\":\"Unknown order sent.\"},\"newOrderResponse\":null}}",
                );
            };
            if matches!(inject, Some(Inject::OverOrderCount)) {
                let refused =
                    "{\"code\":-1015,\"msg\":\"Too many new orders; current limit is 1 orders per 10 SECOND.\"}";
                if get("orderRateLimitExceededMode") != "CANCEL_ONLY" {
                    // DO_NOTHING: not even the cancel is attempted.
                    st.orders.iter_mut().filter(|o| o.id == old.id).for_each(|o| o.status = "NEW");
                    return api_error(429, -1015, "Too many new orders; current limit is 1 orders per 10 SECOND.");
                }
                let mut r = reply(
                    429,
                    format!(
                        "{{\"code\":-2021,\"msg\":\"Order cancel-replace partially failed.\",\"data\":{{\
                         \"cancelResult\":\"SUCCESS\",\"newOrderResult\":\"FAILURE\",\"cancelResponse\":{},\
                         \"newOrderResponse\":{refused}}}}}",
                        canceled_json(&old, &symbol)
                    ),
                );
                r.headers.push(("Retry-After".into(), "9".into()));
                return r;
            }
            let placed = if matches!(inject, Some(Inject::ReplaceNewFails)) {
                Err(api_error(400, -2010, "Order would immediately match and take."))
            } else {
                new_order(st, &params, true)
            };
            match placed {
                Ok(new) => reply(
                    200,
                    format!(
                        "{{\"cancelResult\":\"SUCCESS\",\"newOrderResult\":\"SUCCESS\",\"cancelResponse\":{},\
                         \"newOrderResponse\":{}}}",
                        canceled_json(&old, &symbol),
                        order_json(&new, &symbol)
                    ),
                ),
                Err(refused) => reply(
                    409,
                    format!(
                        "{{\"code\":-2021,\"msg\":\"Order cancel-replace partially failed.\",\"data\":{{\
                         \"cancelResult\":\"SUCCESS\",\"newOrderResult\":\"FAILURE\",\"cancelResponse\":{},\
                         \"newOrderResponse\":{}}}}}",
                        canceled_json(&old, &symbol),
                        refused.body
                    ),
                ),
            }
        }
        "GET /api/v3/openOrders" => {
            let open: Vec<String> =
                st.orders.iter().filter(|o| o.status == "NEW").map(|o| order_json(o, &symbol)).collect();
            reply(200, format!("[{}]", open.join(",")))
        }
        "DELETE /api/v3/openOrders" => {
            let mut canceled = Vec::new();
            for o in st.orders.iter_mut().filter(|o| o.status == "NEW") {
                o.status = "CANCELED";
                canceled.push(canceled_json(o, &symbol));
            }
            if canceled.is_empty() {
                api_error(400, -2011, "Unknown order sent.")
            } else {
                reply(200, format!("[{}]", canceled.join(",")))
            }
        }
        "GET /api/v3/myTrades" => {
            // rest-api.md §Account trade list: trades >= fromId, ascending,
            // limit default 500, at most 1000.
            let order: u64 = get("orderId").parse().unwrap_or(0);
            let from: i64 = get("fromId").parse().unwrap_or(0);
            let limit: usize = get("limit").parse().unwrap_or(500).min(1000);
            let rows: Vec<String> = st
                .trades
                .iter()
                .filter(|&&(id, o)| o == order && id >= from)
                .take(limit)
                .map(|&(id, o)| {
                    format!(
                        "{{\"symbol\":\"{symbol}\",\"id\":{id},\"orderId\":{o},\"orderListId\":-1,\"price\":\"60000.00\",\
                         \"qty\":\"0.00001000\",\"quoteQty\":\"0.60000000\",\"commission\":\"0.00000001\",\
                         \"commissionAsset\":\"BTC\",\"time\":{now},\"isBuyer\":true,\"isMaker\":true,\"isBestMatch\":true}}"
                    )
                })
                .collect();
            reply(200, format!("[{}]", rows.join(",")))
        }
        "GET /api/v3/order" => match st.orders.iter().find(|o| o.client_id == get("origClientOrderId")) {
            Some(o) => reply(200, order_json(o, &symbol)),
            None => api_error(400, -2013, "Order does not exist."),
        },
        _ => api_error(404, -1000, "Unknown endpoint."),
    }
}

/// The fault that strikes after the request took effect.
fn after(inject: Option<Inject>, ok: Reply) -> Reply {
    match inject {
        Some(Inject::FailAfter) => reply(500, "<html><body>Internal Server Error</body></html>"),
        Some(Inject::LateAfter(d)) => Reply { delay: d, ..ok },
        Some(Inject::UnexpectedAfter(status)) => api_error(
            status,
            -1006,
            "An unexpected response was received from the message bus. Execution status unknown.",
        ),
        _ => ok,
    }
}

/// Validates and (when `place`) books a LIMIT_MAKER order.
fn new_order(st: &mut State, params: &HashMap<String, String>, place: bool) -> Result<DOrder, Reply> {
    let get = |k: &str| params.get(k).map(String::as_str).unwrap_or("");
    if get("type") != "LIMIT_MAKER" || params.contains_key("timeInForce") {
        return Err(api_error(400, -1106, "Parameter 'timeInForce' sent when not required."));
    }
    let (Ok(price), Ok(qty)) = (parse_fixed(get("price").as_bytes()), parse_fixed(get("quantity").as_bytes())) else {
        return Err(api_error(400, -1100, "Illegal characters found in a parameter."));
    };
    if price % parse_fixed(b"0.01").unwrap() != 0 {
        return Err(api_error(400, -1013, "Filter failure: PRICE_FILTER"));
    }
    let side = if get("side") == "BUY" { "BUY" } else { "SELL" };
    let crosses = if side == "BUY" { price >= st.best_ask } else { price <= st.best_bid };
    if crosses {
        return Err(api_error(400, -2010, "Order would immediately match and take."));
    }
    if side == "BUY" && notional(price, qty) > st.free_usdt {
        return Err(api_error(400, -2010, "Account has insufficient balance for requested action."));
    }
    let client_id = get("newClientOrderId").to_string();
    if st.orders.iter().any(|o| o.client_id == client_id && o.status == "NEW") {
        return Err(api_error(400, -2010, "Duplicate order sent."));
    }
    let o = DOrder { id: st.next_id, client_id, side, price, qty, status: "NEW" };
    if place {
        st.next_id += 1;
        st.orders.push(o.clone());
    }
    Ok(o)
}

fn cancel(st: &mut State, params: &HashMap<String, String>, id_key: &str, client_key: &str) -> Option<DOrder> {
    let id: Option<u64> = params.get(id_key).and_then(|v| v.parse().ok());
    let client = params.get(client_key);
    let o = st.orders.iter_mut().find(|o| o.status == "NEW" && (Some(o.id) == id || Some(&o.client_id) == client))?;
    o.status = "CANCELED";
    Some(o.clone())
}

fn exchange_info_body(limits: Limits, cancel_replace: bool) -> String {
    let rows: Vec<String> = limits
        .iter()
        .map(|(k, i, n, l)| {
            format!("{{\"rateLimitType\":\"{k}\",\"interval\":\"{i}\",\"intervalNum\":{n},\"limit\":{l}}}")
        })
        .collect();
    format!(
        "{{\"timezone\":\"UTC\",\"serverTime\":{},\"rateLimits\":[{}],\"exchangeFilters\":[],\"symbols\":[{{\
         \"symbol\":\"BTCUSDT\",\"status\":\"TRADING\",\"baseAsset\":\"BTC\",\"baseAssetPrecision\":8,\
         \"quoteAsset\":\"USDT\",\"quotePrecision\":8,\"quoteAssetPrecision\":8,\
         \"orderTypes\":[\"LIMIT\",\"LIMIT_MAKER\",\"MARKET\"],\"cancelReplaceAllowed\":{cancel_replace},\
         \"filters\":[{{\"filterType\":\"PRICE_FILTER\",\"minPrice\":\"0.01000000\",\"maxPrice\":\"1000000.00000000\",\
         \"tickSize\":\"0.01000000\"}},{{\"filterType\":\"LOT_SIZE\",\"minQty\":\"0.00001000\",\
         \"maxQty\":\"9000.00000000\",\"stepSize\":\"0.00001000\"}},{{\"filterType\":\"NOTIONAL\",\
         \"minNotional\":\"5.00000000\",\"applyMinToMarket\":true,\"maxNotional\":\"9000000.00000000\",\
         \"applyMaxToMarket\":false,\"avgPriceMins\":5}},{{\"filterType\":\"MAX_NUM_ORDERS\",\"maxNumOrders\":200}}]}}]}}",
        wall_ms() + AHEAD_MS,
        rows.join(",")
    )
}

// ---------------------------------------------------------------------------
// The client against the double

const T: Duration = Duration::from_secs(5);

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

// ---------------------------------------------------------------------------
// Issue 13: limits per kind, unknown fates, paging, STP, CANCEL_ONLY

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

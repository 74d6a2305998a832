//! A loopback test double of Binance spot's REST API for the REST client's
//! tests (tests/binance_rest.rs, tests/binance_rest_orders.rs): 127.0.0.1,
//! an ephemeral port, bounded loops, no internet. Include it with
//! `mod rest_double;`.
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
//!
//! It also holds what both test files share: the credentials, the clock
//! lead, and the small helpers that check every error for secrets.

// Each test file uses a different part of it.
#![allow(dead_code)]

use std::collections::{HashMap, VecDeque};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mmbot::exec::binance::keys::Credentials;
use mmbot::exec::binance::sign::HmacKey;
use mmbot::exec::binance::{BinanceError, RestClient, RestConfig};
use mmbot::hot::fixed::{notional, parse_fixed, Price, Qty};

pub const API_KEY: &str = "dblApiKey0123456789ABCDEFghijklmnopqrstuv";
pub const SECRET: &str = "dblSecret9876543210ZYXWVUtsrqponmlkjihgf";
/// The double's clock runs this far ahead of ours.
pub const AHEAD_MS: i64 = 3000;
/// The client's request timeout in most tests.
pub const T: Duration = Duration::from_secs(5);

pub fn p(s: &str) -> Price {
    s.parse().unwrap()
}

pub fn q(s: &str) -> Qty {
    s.parse().unwrap()
}

pub fn wall_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

/// Fails if an error's text or Debug shows a secret.
pub fn no_secret(e: &BinanceError) {
    let shown = format!("{e} {e:?}");
    for secret in [API_KEY, &API_KEY[4..20], SECRET, &SECRET[4..20]] {
        assert!(!shown.contains(secret), "secret in error: {shown}");
    }
}

#[track_caller]
pub fn expect_err<T: std::fmt::Debug>(r: Result<T, BinanceError>) -> BinanceError {
    let e = r.expect_err("expected an error");
    no_secret(&e);
    e
}

// ---------------------------------------------------------------------------
// The test double

/// A fault for the next matching request.
#[derive(Debug, Clone)]
pub enum Inject {
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
pub struct DOrder {
    pub id: u64,
    pub client_id: String,
    pub side: &'static str,
    pub price: i64,
    pub qty: i64,
    pub status: &'static str,
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

pub struct Double {
    pub url: String,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// `(kind, interval, intervalNum, limit)` rows of `rateLimits`.
pub type Limits = &'static [(&'static str, &'static str, u32, u64)];

pub const SPOT_LIMITS: Limits =
    &[("REQUEST_WEIGHT", "MINUTE", 1, 6000), ("ORDERS", "SECOND", 10, 50), ("ORDERS", "DAY", 1, 160_000)];

impl Double {
    pub fn start(limits: Limits) -> Self {
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

    pub fn inject(&self, request: &str, what: Inject) {
        self.state.lock().unwrap().injections.push_back((request.to_string(), what));
    }

    pub fn requests(&self) -> usize {
        self.state.lock().unwrap().log.len()
    }

    /// The parameters of every signed `label` request so far.
    pub fn params_of(&self, label: &str) -> Vec<HashMap<String, String>> {
        self.state.lock().unwrap().params.iter().filter(|(l, _)| l == label).map(|(_, p)| p.clone()).collect()
    }

    /// `n` trades of `order_id`, ids from `first_id` up in steps of 2
    /// (other orders' trades fall between them on Binance).
    pub fn add_trades(&self, order_id: u64, n: i64, first_id: i64) {
        let mut st = self.state.lock().unwrap();
        st.trades.extend((0..n).map(|i| (first_id + 2 * i, order_id)));
        st.trades.sort_unstable();
    }

    pub fn open_orders(&self) -> Vec<DOrder> {
        self.state.lock().unwrap().orders.iter().filter(|o| o.status == "NEW").cloned().collect()
    }

    pub fn client(&self, recv_window_ms: u64, timeout: Duration) -> RestClient {
        self.client_with(Credentials::hmac(API_KEY, SECRET).unwrap(), recv_window_ms, timeout)
    }

    pub fn client_with(&self, creds: Credentials, recv_window_ms: u64, timeout: Duration) -> RestClient {
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

pub fn decode(s: &str) -> String {
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

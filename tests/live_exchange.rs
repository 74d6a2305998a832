//! The live order manager ([`LiveExchange`]) against an in-test double of
//! Binance spot: REST (time, exchangeInfo, account, order, cancel,
//! cancelReplace, openOrders, query, myTrades) and the WebSocket API's
//! user-data stream (`userDataStream.subscribe.signature`, then pushed
//! `executionReport`s). Everything is on 127.0.0.1 with ephemeral ports and
//! bounded loops; nothing reaches the internet.
//!
//! The double checks the API key and HMAC signatures (REST and WS-API),
//! keeps orders with their filled quantity and trades, refuses post-only
//! orders that would cross, and can: answer 500 after placing an order,
//! drop every user-data connection and refuse new ones for a while, and
//! push any event again (a duplicate).

mod common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mmbot::exec::binance::sign::{ws_api_payload, HmacKey};
use mmbot::exec::binance::{Credentials, RestClient, RestConfig};
use mmbot::exec::journal::Journal;
use mmbot::exec::live::{LiveExchange, LiveParts, StopReason};
use mmbot::exec::live_config::{LiveConfig, RawLiveConfig};
use mmbot::exec::risk::{KillConfig, KillReason, KillSwitch, RefusalReason, RiskCheck};
use mmbot::exec::{Fill, Quote, Side};
use mmbot::hot::fixed::{notional, parse_fixed, Price, Qty};
use mmbot::hot::msg::{Level, Symbol};

const API_KEY: &str = "dblApiKey0123456789ABCDEFghijklmnopqrstuv";
const SECRET: &str = "dblSecret9876543210ZYXWVUtsrqponmlkjihgf";

fn fx(s: &str) -> i64 {
    parse_fixed(s.as_bytes()).unwrap()
}

fn wall_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

fn sym() -> Symbol {
    Symbol::new(b"BTCUSDT")
}

// ---------------------------------------------------------------------------
// The double

#[derive(Debug, Clone)]
struct DOrder {
    id: u64,
    client_id: String,
    side: &'static str,
    price: i64,
    qty: i64,
    executed: i64,
    status: &'static str,
}

#[derive(Debug, Clone)]
struct DTrade {
    id: i64,
    order_id: u64,
    side: &'static str,
    price: i64,
    qty: i64,
}

#[derive(Default)]
struct State {
    /// "METHOD /path" of every REST request.
    log: Vec<String>,
    orders: Vec<DOrder>,
    trades: Vec<DTrade>,
    next_id: u64,
    next_trade: i64,
    best_bid: i64,
    best_ask: i64,
    free_usdt: i64,
    free_btc: i64,
    cancel_replace: bool,
    /// Faults for the next matching request: "METHOD /path" -> 500 after doing it.
    fail_after: Vec<String>,
    /// Error answers for the next matching request, before doing anything:
    /// (label, status, code, msg, Retry-After seconds).
    errors: Vec<(String, u16, i64, String, Option<u64>)>,
    /// Every user-data event pushed, in order; a connection sends those
    /// pushed after it subscribed.
    events: Vec<String>,
    /// Bumped to drop every user-data connection.
    ws_epoch: u64,
    /// New user-data connections are closed at once while set.
    ws_refuse: bool,
    subscriptions: u64,
}

struct Double {
    url: String,
    ws_url: String,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Double {
    fn start(cancel_replace: bool) -> Self {
        let state = Arc::new(Mutex::new(State {
            next_id: 1,
            next_trade: 1000,
            best_bid: fx("60000"),
            best_ask: fx("60000.01"),
            free_usdt: fx("1000"),
            free_btc: fx("0.5"),
            cancel_replace,
            ..State::default()
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let rest = TcpListener::bind("127.0.0.1:0").unwrap();
        let ws = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", rest.local_addr().unwrap());
        let ws_url = format!("ws://{}/ws-api/v3", ws.local_addr().unwrap());
        let mut threads = Vec::new();
        for (listener, is_ws) in [(rest, false), (ws, true)] {
            listener.set_nonblocking(true).unwrap();
            let (st, sp) = (state.clone(), stop.clone());
            threads.push(std::thread::spawn(move || {
                let deadline = Instant::now() + Duration::from_secs(120);
                let mut conns = Vec::new();
                while !sp.load(Ordering::Relaxed) && Instant::now() < deadline {
                    match listener.accept() {
                        Ok((s, _)) => {
                            let (st, sp) = (st.clone(), sp.clone());
                            conns.push(std::thread::spawn(move || {
                                if is_ws {
                                    serve_ws(s, &st, &sp)
                                } else {
                                    serve_rest(s, &st, &sp)
                                }
                            }));
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(2)),
                    }
                }
                sp.store(true, Ordering::Relaxed);
                for c in conns {
                    let _ = c.join();
                }
            }));
        }
        Self { url, ws_url, state, stop, threads }
    }

    fn st(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap()
    }

    fn open_orders(&self) -> Vec<DOrder> {
        self.st().orders.iter().filter(|o| is_open(o)).cloned().collect()
    }

    fn count(&self, label: &str) -> usize {
        self.st().log.iter().filter(|l| *l == label).count()
    }

    /// Fills `qty` of the order with `client_id` and pushes its
    /// executionReport; returns the event text.
    fn fill(&self, client_id: &str, qty: i64) -> String {
        let mut st = self.st();
        let tid = st.next_trade;
        st.next_trade += 1;
        let o = st.orders.iter_mut().find(|o| o.client_id == client_id).expect("no such order in the double");
        let qty = qty.min(o.qty - o.executed);
        o.executed += qty;
        o.status = if o.executed == o.qty { "FILLED" } else { "PARTIALLY_FILLED" };
        let o = o.clone();
        st.trades.push(DTrade { id: tid, order_id: o.id, side: o.side, price: o.price, qty });
        let ev = exec_report(&o, "TRADE", qty, tid);
        st.events.push(ev.clone());
        ev
    }

    /// Fills `qty` of the order like [`Double::fill`], but the event never
    /// reaches any connection (lost in transit).
    fn fill_unreported(&self, client_id: &str, qty: i64) {
        let ev = self.fill(client_id, qty);
        let mut st = self.st();
        let at = st.events.iter().rposition(|e| *e == ev).unwrap();
        st.events.remove(at);
    }

    fn push(&self, event: &str) {
        self.st().events.push(event.to_string());
    }

    /// Net base position from the double's trades (long > 0).
    fn net(&self) -> i64 {
        self.st().trades.iter().map(|t| if t.side == "BUY" { t.qty } else { -t.qty }).sum()
    }

    fn inject(&self, label: &str, status: u16, code: i64, msg: &str, retry_after: Option<u64>) {
        self.st().errors.push((label.into(), status, code, msg.into(), retry_after));
    }

    fn subscriptions(&self) -> u64 {
        self.st().subscriptions
    }
}

impl Drop for Double {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn is_open(o: &DOrder) -> bool {
    matches!(o.status, "NEW" | "PARTIALLY_FILLED")
}

fn exec_report(o: &DOrder, x: &str, last: i64, trade_id: i64) -> String {
    serde_json::json!({
        "subscriptionId": 0,
        "event": {
            "e": "executionReport", "E": wall_ms(), "s": "BTCUSDT", "c": o.client_id, "S": o.side,
            "o": "LIMIT_MAKER", "f": "GTC", "q": Qty(o.qty).to_string(), "p": Price(o.price).to_string(),
            "P": "0", "F": "0", "g": -1, "C": "", "x": x, "X": o.status, "r": "NONE", "i": o.id,
            "l": Qty(last).to_string(), "z": Qty(o.executed).to_string(), "L": Price(o.price).to_string(),
            "n": "0", "N": null, "T": wall_ms(), "t": trade_id, "w": false, "m": true, "M": false,
            "O": wall_ms(), "Z": "0", "Y": "0", "Q": "0"
        }
    })
    .to_string()
}

/// One user-data connection: a subscription request, then events.
fn serve_ws(s: TcpStream, state: &Mutex<State>, stop: &AtomicBool) {
    let (epoch, refuse) = {
        let st = state.lock().unwrap();
        (st.ws_epoch, st.ws_refuse)
    };
    if refuse {
        return;
    }
    let _ = s.set_nonblocking(false);
    let Ok(mut ws) = tungstenite::accept(s) else { return };
    let _ = ws.get_mut().set_read_timeout(Some(Duration::from_millis(5)));
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut cursor: Option<usize> = None;
    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
        if state.lock().unwrap().ws_epoch != epoch {
            // Dropped without a close frame, as a network failure would.
            return;
        }
        match ws.read() {
            Ok(tungstenite::Message::Text(t)) => {
                let v: serde_json::Value = serde_json::from_str(t.as_str()).unwrap_or_default();
                let id = v["id"].clone();
                let ok = v["method"] == "userDataStream.subscribe.signature" && ws_signature_ok(&v["params"]);
                let reply = if ok {
                    let mut st = state.lock().unwrap();
                    st.subscriptions += 1;
                    cursor = Some(st.events.len());
                    serde_json::json!({"id": id, "status": 200, "result": {"subscriptionId": 0}})
                } else {
                    serde_json::json!({"id": id, "status": 400, "error": {"code": -1022, "msg": "Signature for this request is not valid."}})
                };
                if ws.send(tungstenite::Message::text(reply.to_string())).is_err() {
                    return;
                }
            }
            Ok(_) => {}
            Err(tungstenite::Error::Io(e))
                if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(_) => return,
        }
        if let Some(c) = cursor.as_mut() {
            let out: Vec<String> = state.lock().unwrap().events[*c..].to_vec();
            *c += out.len();
            for e in out {
                if ws.send(tungstenite::Message::text(e)).is_err() {
                    return;
                }
            }
        }
    }
}

fn ws_signature_ok(p: &serde_json::Value) -> bool {
    let api = p["apiKey"].as_str().unwrap_or("");
    let ts = p["timestamp"].as_i64().unwrap_or(0).to_string();
    let rw = p["recvWindow"].as_u64().map(|r| r.to_string());
    let mut params = vec![("apiKey", api), ("timestamp", ts.as_str())];
    if let Some(rw) = &rw {
        params.push(("recvWindow", rw.as_str()));
    }
    let expect = HmacKey::new(SECRET).unwrap().sign_hex(ws_api_payload(&params).as_bytes());
    api == API_KEY && p["signature"].as_str() == Some(expect.as_str())
}

/// One REST connection: keep-alive requests until closed or stopped.
fn serve_rest(mut s: TcpStream, state: &Mutex<State>, stop: &AtomicBool) {
    let _ = s.set_nonblocking(false);
    let _ = s.set_read_timeout(Some(Duration::from_millis(20)));
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = [0u8; 8192];
    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut req = httparse::Request::new(&mut headers);
        if let Ok(httparse::Status::Complete(head_len)) = req.parse(&buf) {
            let method = req.method.unwrap_or("").to_string();
            let target = req.path.unwrap_or("").to_string();
            let key = req
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("x-mbx-apikey"))
                .map(|h| String::from_utf8_lossy(h.value).into_owned());
            buf.drain(..head_len);
            let (status, body, retry) = handle(state, &method, &target, key.as_deref());
            let retry = retry.map_or(String::new(), |r| format!("Retry-After: {r}\r\n"));
            let out = format!(
                "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n{retry}Content-Length: {}\r\n\r\n{body}",
                body.len()
            );
            if s.write_all(out.as_bytes()).is_err() {
                return;
            }
            continue;
        }
        match s.read(&mut chunk) {
            Ok(0) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(_) => return,
        }
    }
}

fn err(status: u16, code: i64, msg: &str) -> (u16, String) {
    (status, format!("{{\"code\":{code},\"msg\":\"{msg}\"}}"))
}

fn order_json(o: &DOrder) -> String {
    format!(
        "{{\"symbol\":\"BTCUSDT\",\"orderId\":{},\"orderListId\":-1,\"clientOrderId\":\"{}\",\"transactTime\":{},\
         \"price\":\"{}\",\"origQty\":\"{}\",\"executedQty\":\"{}\",\"cummulativeQuoteQty\":\"{}\",\"status\":\"{}\",\
         \"timeInForce\":\"GTC\",\"type\":\"LIMIT_MAKER\",\"side\":\"{}\"}}",
        o.id,
        o.client_id,
        wall_ms(),
        Price(o.price),
        Qty(o.qty),
        Qty(o.executed),
        Price(notional(o.price, o.executed)),
        o.status,
        o.side
    )
}

fn canceled_json(o: &DOrder) -> String {
    order_json(o).replacen(
        &format!("\"clientOrderId\":\"{}\"", o.client_id),
        &format!("\"origClientOrderId\":\"{}\",\"clientOrderId\":\"cancel{}\"", o.client_id, o.id),
        1,
    )
}

fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() + 1 && i + 3 <= b.len() {
            out.push(u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("3F"), 16).unwrap_or(b'?'));
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn exchange_info(cancel_replace: bool) -> String {
    format!(
        "{{\"timezone\":\"UTC\",\"serverTime\":{},\"rateLimits\":[{{\"rateLimitType\":\"REQUEST_WEIGHT\",\
         \"interval\":\"MINUTE\",\"intervalNum\":1,\"limit\":6000}},{{\"rateLimitType\":\"ORDERS\",\"interval\":\"SECOND\",\
         \"intervalNum\":10,\"limit\":50}}],\"exchangeFilters\":[],\"symbols\":[{{\"symbol\":\"BTCUSDT\",\
         \"status\":\"TRADING\",\"baseAsset\":\"BTC\",\"quoteAsset\":\"USDT\",\
         \"orderTypes\":[\"LIMIT\",\"LIMIT_MAKER\",\"MARKET\"],\"cancelReplaceAllowed\":{cancel_replace},\
         \"filters\":[{{\"filterType\":\"PRICE_FILTER\",\"minPrice\":\"0.01\",\"maxPrice\":\"1000000\",\
         \"tickSize\":\"0.01\"}},{{\"filterType\":\"LOT_SIZE\",\"minQty\":\"0.00001\",\"maxQty\":\"9000\",\
         \"stepSize\":\"0.00001\"}},{{\"filterType\":\"NOTIONAL\",\"minNotional\":\"5\",\"applyMinToMarket\":true,\
         \"maxNotional\":\"9000000\",\"applyMaxToMarket\":false,\"avgPriceMins\":5}}]}}]}}",
        wall_ms()
    )
}

/// An answer: status, body, and a `Retry-After` header when set.
type Answer = (u16, String, Option<u64>);

fn handle(state: &Mutex<State>, method: &str, target: &str, key: Option<&str>) -> Answer {
    let mut st = state.lock().unwrap();
    let (path, _) = target.split_once('?').unwrap_or((target, ""));
    let label = format!("{method} {path}");
    if let Some(i) = st.errors.iter().position(|e| e.0 == label) {
        st.log.push(label.clone());
        let (_, status, code, msg, retry) = st.errors.remove(i);
        return (status, format!("{{\"code\":{code},\"msg\":\"{msg}\"}}"), retry);
    }
    drop(st);
    let (status, body) = route(state, method, target, key);
    (status, body, None)
}

fn route(state: &Mutex<State>, method: &str, target: &str, key: Option<&str>) -> (u16, String) {
    let mut st = state.lock().unwrap();
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let label = format!("{method} {path}");
    st.log.push(label.clone());
    match label.as_str() {
        "GET /api/v3/time" => return (200, format!("{{\"serverTime\":{}}}", wall_ms())),
        "GET /api/v3/exchangeInfo" => return (200, exchange_info(st.cancel_replace)),
        _ => {}
    }
    if key != Some(API_KEY) {
        return err(401, -2015, "Invalid API-key, IP, or permissions for action.");
    }
    let Some(at) = query.find("&signature=") else { return err(400, -1102, "no signature") };
    let (signed, sig) = (&query[..at], &query[at + "&signature=".len()..]);
    if !sig.eq_ignore_ascii_case(&HmacKey::new(SECRET).unwrap().sign_hex(signed.as_bytes())) {
        return err(400, -1022, "Signature for this request is not valid.");
    }
    let params: HashMap<String, String> =
        signed.split('&').filter_map(|kv| kv.split_once('=')).map(|(k, v)| (k.to_string(), decode(v))).collect();
    let get = |k: &str| params.get(k).cloned().unwrap_or_default();
    let fail = st.fail_after.iter().position(|l| *l == label).map(|i| st.fail_after.remove(i)).is_some();
    let (status, body) = match label.as_str() {
        "GET /api/v3/account" => (
            200,
            format!(
                "{{\"canTrade\":true,\"accountType\":\"SPOT\",\"updateTime\":{},\"commissionRates\":{{\"maker\":\"0.001\",\
                 \"taker\":\"0.001\",\"buyer\":\"0\",\"seller\":\"0\"}},\"balances\":[{{\"asset\":\"BTC\",\"free\":\"{}\",\
                 \"locked\":\"0\"}},{{\"asset\":\"USDT\",\"free\":\"{}\",\"locked\":\"0\"}}]}}",
                wall_ms(),
                Qty(st.free_btc),
                Price(st.free_usdt)
            ),
        ),
        "POST /api/v3/order" => match new_order(&mut st, &get) {
            Ok(o) => (200, order_json(&o)),
            Err(e) => e,
        },
        "DELETE /api/v3/order" => match cancel(&mut st, get("orderId").parse().ok(), &get("origClientOrderId")) {
            Some(o) => (200, canceled_json(&o)),
            None => err(400, -2011, "Unknown order sent."),
        },
        "POST /api/v3/order/cancelReplace" => {
            match cancel(&mut st, get("cancelOrderId").parse().ok(), &get("cancelOrigClientOrderId")) {
                None => (
                    400,
                    "{\"code\":-2022,\"msg\":\"Order cancel-replace failed.\",\"data\":{\"cancelResult\":\"FAILURE\",\
                     \"newOrderResult\":\"NOT_ATTEMPTED\",\"cancelResponse\":{\"code\":-2011,\
                     \"msg\":\"Unknown order sent.\"},\"newOrderResponse\":null}}"
                        .to_string(),
                ),
                Some(old) => match new_order(&mut st, &get) {
                    Ok(n) => (
                        200,
                        format!(
                            "{{\"cancelResult\":\"SUCCESS\",\"newOrderResult\":\"SUCCESS\",\"cancelResponse\":{},\
                             \"newOrderResponse\":{}}}",
                            canceled_json(&old),
                            order_json(&n)
                        ),
                    ),
                    Err((_, b)) => (
                        409,
                        format!(
                            "{{\"code\":-2021,\"msg\":\"Order cancel-replace partially failed.\",\"data\":{{\
                             \"cancelResult\":\"SUCCESS\",\"newOrderResult\":\"FAILURE\",\"cancelResponse\":{},\
                             \"newOrderResponse\":{b}}}}}",
                            canceled_json(&old)
                        ),
                    ),
                },
            }
        }
        "GET /api/v3/openOrders" => {
            let open: Vec<String> = st.orders.iter().filter(|o| is_open(o)).map(order_json).collect();
            (200, format!("[{}]", open.join(",")))
        }
        "DELETE /api/v3/openOrders" => {
            let mut out = Vec::new();
            for o in st.orders.iter_mut().filter(|o| is_open(o)) {
                o.status = "CANCELED";
                out.push(canceled_json(o));
            }
            if out.is_empty() {
                err(400, -2011, "Unknown order sent.")
            } else {
                (200, format!("[{}]", out.join(",")))
            }
        }
        "GET /api/v3/order" => match st.orders.iter().find(|o| o.client_id == get("origClientOrderId")) {
            Some(o) => (200, order_json(o)),
            None => err(400, -2013, "Order does not exist."),
        },
        "GET /api/v3/myTrades" => {
            let id: u64 = get("orderId").parse().unwrap_or(0);
            let rows: Vec<String> = st
                .trades
                .iter()
                .filter(|t| t.order_id == id)
                .map(|t| {
                    format!(
                        "{{\"symbol\":\"BTCUSDT\",\"id\":{},\"orderId\":{},\"orderListId\":-1,\"price\":\"{}\",\
                         \"qty\":\"{}\",\"quoteQty\":\"0\",\"commission\":\"0\",\"commissionAsset\":\"USDT\",\
                         \"time\":{},\"isBuyer\":{},\"isMaker\":true,\"isBestMatch\":true}}",
                        t.id,
                        t.order_id,
                        Price(t.price),
                        Qty(t.qty),
                        wall_ms(),
                        t.side == "BUY"
                    )
                })
                .collect();
            (200, format!("[{}]", rows.join(",")))
        }
        _ => err(404, -1000, "Unknown endpoint."),
    };
    if fail && status == 200 {
        return (500, "<html><body>Internal Server Error</body></html>".into());
    }
    (status, body)
}

fn new_order(st: &mut State, get: &dyn Fn(&str) -> String) -> Result<DOrder, (u16, String)> {
    if get("type") != "LIMIT_MAKER" {
        return Err(err(400, -1116, "Invalid orderType."));
    }
    let (Ok(price), Ok(qty)) = (parse_fixed(get("price").as_bytes()), parse_fixed(get("quantity").as_bytes())) else {
        return Err(err(400, -1100, "Illegal characters found in a parameter."));
    };
    if price % fx("0.01") != 0 || qty % fx("0.00001") != 0 {
        return Err(err(400, -1013, "Filter failure: PRICE_FILTER"));
    }
    let side = if get("side") == "BUY" { "BUY" } else { "SELL" };
    let crosses = if side == "BUY" { price >= st.best_ask } else { price <= st.best_bid };
    if crosses {
        return Err(err(400, -2010, "Order would immediately match and take."));
    }
    let client_id = get("newClientOrderId");
    if st.orders.iter().any(|o| o.client_id == client_id && is_open(o)) {
        return Err(err(400, -2010, "Duplicate order sent."));
    }
    let o = DOrder { id: st.next_id, client_id, side, price, qty, executed: 0, status: "NEW" };
    st.next_id += 1;
    st.orders.push(o.clone());
    Ok(o)
}

fn cancel(st: &mut State, id: Option<u64>, client: &str) -> Option<DOrder> {
    let o = st
        .orders
        .iter_mut()
        .find(|o| is_open(o) && (Some(o.id) == id || (!client.is_empty() && o.client_id == client)))?;
    o.status = "CANCELED";
    Some(o.clone())
}

// ---------------------------------------------------------------------------
// The manager against the double

struct Setup {
    dbl: Double,
    ex: LiveExchange,
    journal_path: PathBuf,
    fills: Vec<Fill>,
}

fn config(dbl: &Double, dir: &std::path::Path, max_order_notional: &str, orphans: &str) -> LiveConfig {
    LiveConfig::from_raw(RawLiveConfig {
        base_url: Some(dbl.url.clone()),
        ws_api_url: Some(dbl.ws_url.clone()),
        recv_window_ms: Some(5000),
        max_position: Some(toml::Value::String("0.1".into())),
        max_order_notional: Some(toml::Value::String(max_order_notional.into())),
        max_open_orders: Some(4),
        daily_loss_limit: Some(toml::Value::String("100".into())),
        orphans: Some(orphans.into()),
        reconcile_every_s: Some(3600.0),
        journal: Some(dir.join("journal.sqlite")),
        refresh_ticks: Some(1),
        max_order_age_ms: Some(3_600_000),
        run_prefix: Some("t1".into()),
        // This double serves orders over REST and only the user-data
        // stream over the WebSocket API.
        order_entry: Some("rest".into()),
        ..RawLiveConfig::default()
    })
    .unwrap()
}

fn start(name: &str, cancel_replace: bool, max_order_notional: &str) -> Setup {
    let dbl = Double::start(cancel_replace);
    start_with(name, dbl, max_order_notional, "cancel")
}

fn start_with(name: &str, dbl: Double, max_order_notional: &str, orphans: &str) -> Setup {
    let dir = common::temp_dir(&format!("live-{name}"));
    start_in(&dir, dbl, max_order_notional, orphans)
}

fn start_in(dir: &std::path::Path, dbl: Double, max_order_notional: &str, orphans: &str) -> Setup {
    let cfg = config(&dbl, dir, max_order_notional, orphans);
    let mut rc = RestConfig::with_base(&cfg.rest_url);
    rc.timeout = Duration::from_secs(3);
    let rest = RestClient::new(&rc, Credentials::hmac(API_KEY, SECRET).unwrap()).unwrap();
    let journal = Journal::open(&cfg.journal).unwrap();
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as i64;
    let risk = RiskCheck::new(cfg.limits, "BTC", "USDT", 100_000, now).unwrap();
    let kill = KillSwitch::new(KillConfig {
        max_rejects: 10,
        reject_window_ns: 1_000_000_000,
        stale_feed_ns: i64::MAX,
        unsynced_ns: i64::MAX,
    });
    let parts = LiveParts { rest, stream_creds: Credentials::hmac(API_KEY, SECRET).unwrap(), journal, risk, kill };
    let mut ex = LiveExchange::start(&cfg, sym(), parts).unwrap();
    assert!(ex.wait_subscribed(1, Duration::from_secs(5)), "the user-data stream never subscribed");
    Setup { dbl, ex, journal_path: cfg.journal.clone(), fills: Vec::new() }
}

fn quote(bid: Option<(&str, &str)>, ask: Option<(&str, &str)>) -> Quote {
    let lv = |(p, q): (&str, &str)| Level::new(fx(p), fx(q));
    Quote { symbol: sym(), bid: bid.map(lv), ask: ask.map(lv), time_ns: 0, update_id: 0, deeper: Default::default() }
}

impl Setup {
    /// Sends a quote and waits until every request it caused is answered
    /// and acted on (order entry is asynchronous).
    fn quote(&mut self, bid: Option<(&str, &str)>, ask: Option<(&str, &str)>) {
        self.ex.on_quote(&quote(bid, ask), Price(fx("0.01")), 0);
        self.poll_until("the quote's requests to be answered", |ex| ex.is_quiet() || ex.stopped().is_some());
    }

    /// Polls until `done` or 5 s.
    fn poll_until(&mut self, what: &str, done: impl Fn(&LiveExchange) -> bool) {
        let end = Instant::now() + Duration::from_secs(5);
        loop {
            let fills = &mut self.fills;
            self.ex.poll(&mut |f| fills.push(f));
            if done(&self.ex) {
                return;
            }
            assert!(Instant::now() < end, "timed out waiting for {what}: {:?}", self.ex.stats());
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Fills committed in the journal file, read with a separate connection.
    fn journal_fill_count(path: &std::path::Path, trade_id: i64) -> i64 {
        let c = rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
        c.query_row("SELECT COUNT(*) FROM fills WHERE trade_id = ?1", [trade_id], |r| r.get(0)).unwrap()
    }

    /// The journal, the double and the manager agree on the position, and
    /// the journal's latest order states match the double's open orders.
    fn agree(&mut self) {
        let fills = &mut self.fills;
        self.ex.poll(&mut |f| fills.push(f));
        let pos = self.ex.position().qty().0;
        let from_journal = self.ex.journal().position_from_fills(sym()).unwrap().position.qty().0;
        assert_eq!((pos, from_journal), (self.dbl.net(), self.dbl.net()), "positions disagree");
        let from_sink: i64 = self.fills.iter().map(|f| if f.side == Side::Buy { f.qty.0 } else { -f.qty.0 }).sum();
        assert_eq!(from_sink, pos, "fills handed to the sink disagree");
        let open = self.ex.journal().open_orders(self.ex.run_id()).unwrap();
        let mut journal_open: Vec<String> = open.into_iter().map(|o| o.event.client_id).collect();
        let mut dbl_open: Vec<String> = self.dbl.open_orders().into_iter().map(|o| o.client_id).collect();
        journal_open.sort();
        dbl_open.sort();
        assert_eq!(journal_open, dbl_open, "journal and exchange disagree on open orders");
    }
}

#[test]
fn quotes_become_rounded_limit_maker_orders_replaced_and_canceled() {
    for cancel_replace in [true, false] {
        let mut t = start(&format!("quotes-{cancel_replace}"), cancel_replace, "1000");
        t.quote(Some(("59999.987", "0.0012345")), Some(("60010.003", "0.001")));
        let open = t.dbl.open_orders();
        assert_eq!(open.len(), 2, "{open:?}");
        let bid = open.iter().find(|o| o.side == "BUY").unwrap();
        let ask = open.iter().find(|o| o.side == "SELL").unwrap();
        // Bid rounded down, ask up, size down to the step.
        assert_eq!((bid.price, bid.qty), (fx("59999.98"), fx("0.00123")));
        assert_eq!((ask.price, ask.qty), (fx("60010.01"), fx("0.001")));
        let prefix = format!("{}-", t.ex.client_prefix());
        assert!(prefix.starts_with("t1") && bid.client_id.starts_with(&prefix) && ask.client_id.starts_with(&prefix));
        assert_eq!(t.ex.working_bid().unwrap().price, Price(fx("59999.98")));
        // Same quote (after rounding): kept, nothing sent.
        let before = t.dbl.st().log.len();
        t.quote(Some(("59999.981", "0.0012399")), Some(("60010.01", "0.001")));
        assert_eq!(t.dbl.st().log.len(), before, "an unchanged quote sent something");
        // Bid moved: replaced (one order per side stays open).
        t.quote(Some(("59990", "0.00123")), Some(("60010.01", "0.001")));
        let open = t.dbl.open_orders();
        assert_eq!(open.len(), 2);
        assert_eq!(open.iter().find(|o| o.side == "BUY").unwrap().price, fx("59990"));
        let replaced = t.dbl.count("POST /api/v3/order/cancelReplace");
        assert_eq!(replaced, usize::from(cancel_replace));
        assert_eq!(t.dbl.count("DELETE /api/v3/order"), usize::from(!cancel_replace));
        // Pulled: both cancelled.
        t.quote(None, None);
        assert!(t.dbl.open_orders().is_empty());
        assert!(t.ex.working_bid().is_none() && t.ex.working_ask().is_none());
        assert_eq!(t.ex.stats().orders, 3);
        t.agree();
        t.ex.stop();
    }
}

#[test]
fn a_risk_refusal_is_counted_and_not_sent() {
    // 0.001 x 60000 = 60 USDT is over max_order_notional 50.
    let mut t = start("risk", true, "50");
    t.quote(Some(("59999.98", "0.001")), None);
    assert_eq!(t.dbl.count("POST /api/v3/order"), 0);
    assert!(t.dbl.open_orders().is_empty());
    assert_eq!(t.ex.stats().refused_by_risk, 1);
    assert_eq!(t.ex.risk_counters().refused(RefusalReason::OrderNotional), 1);
    assert!(t.ex.stats().last_refusal.as_deref().unwrap_or("").contains("max_order_notional"));
    // A filter refusal (below minNotional 5) is counted too.
    t.quote(Some(("59999.98", "0.00001")), None);
    assert_eq!(t.ex.stats().refused_by_filter, 1);
    assert_eq!(t.dbl.count("POST /api/v3/order"), 0);
    // Within limits: sent.
    t.quote(Some(("59999.98", "0.0008")), None);
    assert_eq!(t.dbl.count("POST /api/v3/order"), 1);
    t.agree();
    t.ex.stop();
}

#[test]
fn a_500_after_placing_is_looked_up_and_never_duplicated() {
    let mut t = start("5xx", true, "1000");
    t.dbl.st().fail_after.push("POST /api/v3/order".into());
    t.quote(Some(("59999.98", "0.001")), None);
    assert_eq!(t.dbl.count("POST /api/v3/order"), 1);
    assert_eq!(t.dbl.count("GET /api/v3/order"), 1, "the unknown fate was not looked up");
    let open = t.dbl.open_orders();
    assert_eq!(open.len(), 1);
    assert_eq!(t.ex.working_bid().unwrap().id, open[0].id);
    assert_eq!((t.ex.stats().lookups, t.ex.stats().lookups_found), (1, 1));
    // The same quote again: the found order is kept, nothing resent.
    t.quote(Some(("59999.98", "0.001")), None);
    assert_eq!(t.dbl.count("POST /api/v3/order"), 1);
    assert_eq!(t.dbl.open_orders().len(), 1);
    t.agree();
    t.ex.stop();
}

#[test]
fn a_fill_is_journaled_before_the_position_moves_and_a_duplicate_is_ignored() {
    let mut t = start("fill", true, "1000");
    t.quote(Some(("59999.98", "0.002")), None);
    let id = t.ex.working_client_id(Side::Buy).unwrap().to_string();
    // Garbage first: skipped and counted, never a panic.
    t.dbl.push("not json at all");
    t.dbl.push(r#"{"subscriptionId":0,"event":{"e":"executionReport","S":"BUY","p":"sixty"}}"#);
    let event = t.dbl.fill(&id, fx("0.0005"));
    let trade_id: i64 = serde_json::from_str::<serde_json::Value>(&event).unwrap()["event"]["t"].as_i64().unwrap();
    // The sink sees the fill only once it is in the journal file.
    let path = t.journal_path.clone();
    let end = Instant::now() + Duration::from_secs(5);
    let mut seen = Vec::new();
    while seen.is_empty() && Instant::now() < end {
        t.ex.poll(&mut |f| {
            assert_eq!(Setup::journal_fill_count(&path, trade_id), 1, "fill applied before it was journaled");
            seen.push(f);
        });
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(seen.len(), 1);
    t.fills.extend(seen);
    assert_eq!(t.ex.position().qty(), Qty(fx("0.0005")));
    assert_eq!(t.ex.working_bid().unwrap().qty, Qty(fx("0.0015")));
    // The same event again: ignored.
    t.dbl.push(&event);
    t.poll_until("the duplicate", |ex| ex.stats().duplicate_fills == 1);
    assert_eq!(t.ex.position().qty(), Qty(fx("0.0005")));
    assert_eq!(t.ex.stats().fills, 1);
    assert_eq!(Setup::journal_fill_count(&path, trade_id), 1);
    // The rest fills: the side is free again.
    t.dbl.fill(&id, fx("0.0015"));
    t.poll_until("the second fill", |ex| ex.stats().fills == 2);
    assert!(t.ex.working_bid().is_none());
    assert_eq!(t.ex.stream_stats().unwrap().bad_frames, 2);
    t.agree();
    t.ex.stop();
}

/// An executionReport's `z` is the order's cumulative filled quantity and
/// `l` this trade's (SPOT user-data-stream.md, "Order Update"): `z` beyond
/// the fills received plus `l` means an earlier trade never arrived. The
/// order is done, so no reconciliation would look at it again: the report
/// itself must bring the missing trade back (`myTrades`).
#[test]
fn a_trade_missing_from_the_stream_is_recovered_from_the_next_reports_cumulative_qty() {
    let mut t = start("gap", true, "1000");
    t.quote(Some(("59999.98", "0.002")), None);
    let id = t.ex.working_client_id(Side::Buy).unwrap().to_string();
    t.dbl.fill_unreported(&id, fx("0.0007"));
    t.dbl.fill(&id, fx("0.0013"));
    t.poll_until("the missing trade", |ex| ex.stats().fills == 2 && ex.is_quiet());
    assert_eq!(t.ex.stats().stream_fill_gaps, 1);
    assert_eq!(t.ex.stats().fills_recovered, 1);
    assert_eq!(t.dbl.count("GET /api/v3/myTrades"), 1);
    assert_eq!(t.ex.position().qty(), Qty(fx("0.002")));
    assert!(t.ex.working_bid().is_none());
    // An order ended by someone else (an operator's cancel) after a trade
    // the stream lost: the CANCELED report's `z` tells.
    t.quote(None, Some(("60010", "0.002")));
    let id = t.ex.working_client_id(Side::Sell).unwrap().to_string();
    t.dbl.fill_unreported(&id, fx("0.0004"));
    let ev = {
        let mut st = t.dbl.st();
        let o = st.orders.iter_mut().find(|o| o.client_id == id).unwrap();
        o.status = "CANCELED";
        exec_report(o, "CANCELED", 0, -1)
    };
    t.dbl.push(&ev);
    t.poll_until("the trade before the cancel", |ex| ex.stats().fills == 3 && ex.is_quiet());
    assert_eq!(t.ex.stats().stream_fill_gaps, 2);
    assert_eq!(t.ex.position().qty(), Qty(fx("0.0016")));
    assert!(t.ex.working_ask().is_none());
    t.agree();
    t.ex.stop();
}

#[test]
fn a_dropped_user_data_connection_is_resubscribed_and_reconciled() {
    let mut t = start("drop", true, "1000");
    t.quote(Some(("59999.98", "0.001")), Some(("60010", "0.001")));
    let bid = t.ex.working_client_id(Side::Buy).unwrap().to_string();
    let ask = t.ex.working_client_id(Side::Sell).unwrap().to_string();
    {
        let mut st = t.dbl.st();
        st.ws_refuse = true;
        st.ws_epoch += 1;
    }
    // Wait until the manager has seen the drop, then trade while it is
    // away: these events reach nobody.
    std::thread::sleep(Duration::from_millis(100));
    t.dbl.fill(&bid, fx("0.001"));
    t.dbl.fill(&ask, fx("0.0004"));
    let subs = t.dbl.subscriptions();
    t.dbl.st().ws_refuse = false;
    t.poll_until("a resubscription", |ex| ex.stats().resubscribes >= 1);
    assert!(t.dbl.subscriptions() > subs);
    t.poll_until("the missed fills", |ex| ex.stats().fills_recovered == 2 && ex.is_quiet());
    assert_eq!(t.ex.position().qty(), Qty(fx("0.0006")));
    assert!(t.ex.working_bid().is_none(), "the filled bid is still tracked");
    assert_eq!(t.ex.working_ask().unwrap().qty, Qty(fx("0.0006")));
    t.agree();
    t.ex.stop();
}

#[test]
fn the_kill_switch_cancels_everything_and_stops() {
    let dbl = Double::start(true);
    // An order nobody manages, placed before the start (kept: orphans = adopt).
    dbl.st().orders.push(DOrder {
        id: 999,
        client_id: "manual-1".into(),
        side: "SELL",
        price: fx("61000"),
        qty: fx("0.001"),
        executed: 0,
        status: "NEW",
    });
    let mut t = start_with("kill", dbl, "1000", "adopt");
    assert_eq!(t.ex.working_client_id(Side::Sell), Some("manual-1"), "the orphan was not adopted");
    t.quote(Some(("59999.98", "0.001")), Some(("61000", "0.001")));
    assert_eq!(t.dbl.open_orders().len(), 2);
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as i64;
    t.ex.kill_switch().on_signal(now);
    t.poll_until("the stop", |ex| ex.stopped().is_some());
    assert_eq!(t.ex.stopped(), Some(StopReason::Kill(KillReason::Signal)));
    assert!(t.dbl.open_orders().is_empty(), "orders left resting: {:?}", t.dbl.open_orders());
    assert!(t.ex.working_bid().is_none() && t.ex.working_ask().is_none());
    // Stopped means stopped: quotes send nothing.
    let posts = t.dbl.count("POST /api/v3/order");
    t.quote(Some(("59999.98", "0.001")), None);
    assert_eq!(t.dbl.count("POST /api/v3/order"), posts);
    // The run is closed in the journal with the reason.
    let c = rusqlite::Connection::open_with_flags(&t.journal_path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let status: String =
        c.query_row("SELECT exit_status FROM runs ORDER BY id DESC LIMIT 1", [], |r| r.get(0)).unwrap();
    assert!(status.contains("signal"), "{status}");
    t.agree();
}

#[test]
fn a_timestamp_error_resyncs_the_clock_and_retries_once() {
    let mut t = start("resync", true, "1000");
    let times = t.dbl.count("GET /api/v3/time");
    t.dbl.inject("POST /api/v3/order", 400, -1021, "Timestamp for this request is outside of the recvWindow.", None);
    t.quote(Some(("59999.98", "0.001")), None);
    assert_eq!(t.dbl.count("GET /api/v3/time"), times + 1);
    assert_eq!(t.dbl.count("POST /api/v3/order"), 2);
    assert_eq!(t.dbl.open_orders().len(), 1);
    assert_eq!(t.ex.stats().clock_resyncs, 1);
    // Twice in a row: retried once only, then refused and journaled.
    t.dbl.inject("POST /api/v3/order", 400, -1021, "Timestamp for this request is outside of the recvWindow.", None);
    t.dbl.inject("POST /api/v3/order", 400, -1021, "Timestamp for this request is outside of the recvWindow.", None);
    t.quote(Some(("59999.98", "0.001")), Some(("60010", "0.001")));
    assert_eq!(t.dbl.count("POST /api/v3/order"), 4);
    assert!(t.ex.working_ask().is_none());
    assert_eq!(t.ex.stats().rejected, 1);
    t.agree();
    t.ex.stop();
}

#[test]
fn would_take_waits_for_the_next_quote_and_429_backs_off() {
    let mut t = start("requote", true, "1000");
    // A bid at the best ask would take: refused by the exchange, not retried.
    t.quote(Some(("60000.01", "0.001")), None);
    assert_eq!((t.ex.stats().would_take, t.dbl.count("POST /api/v3/order")), (1, 1));
    assert!(t.ex.working_bid().is_none());
    t.quote(Some(("59999.98", "0.001")), None);
    assert_eq!(t.dbl.count("POST /api/v3/order"), 2);
    assert!(t.ex.working_bid().is_some());
    // 429 with Retry-After: nothing is sent until it has passed.
    t.dbl.inject("POST /api/v3/order", 429, -1003, "Too much request weight used.", Some(1));
    t.quote(Some(("59999.98", "0.001")), Some(("60010", "0.001")));
    assert_eq!(t.ex.stats().waits, 1);
    let posts = t.dbl.count("POST /api/v3/order");
    t.quote(Some(("59999.98", "0.001")), Some(("60010", "0.001")));
    assert_eq!(t.dbl.count("POST /api/v3/order"), posts, "sent during the back-off");
    std::thread::sleep(Duration::from_millis(1100));
    t.quote(Some(("59999.98", "0.001")), Some(("60010", "0.001")));
    assert!(t.ex.working_ask().is_some());
    t.agree();
    t.ex.stop();
}

#[test]
fn an_ip_ban_stops_trading() {
    let mut t = start("ban", true, "1000");
    t.dbl.inject("POST /api/v3/order", 418, -1003, "Way too much request weight used; IP banned.", Some(1));
    t.quote(Some(("59999.98", "0.001")), None);
    assert_eq!(t.ex.stopped(), Some(StopReason::Banned));
    let posts = t.dbl.count("POST /api/v3/order");
    t.quote(Some(("59999.98", "0.001")), None);
    assert_eq!(t.dbl.count("POST /api/v3/order"), posts);
    t.agree();
}

#[test]
fn the_manager_can_move_to_the_exec_thread() {
    fn send<T: Send>() {}
    send::<LiveExchange>();
}

#[test]
fn a_restart_settles_what_the_last_run_left_open_and_recovers_its_fills() {
    let mut t = start("restart", true, "1000");
    t.quote(Some(("59999.98", "0.001")), None);
    let id = t.ex.working_client_id(Side::Buy).unwrap().to_string();
    // The process dies (no stop: nothing cancelled), and the order fills
    // while nobody watches.
    let Setup { dbl, ex, journal_path, .. } = t;
    drop(ex);
    dbl.st().ws_epoch += 1;
    dbl.fill(&id, fx("0.001"));
    let mut t = start_in(journal_path.parent().unwrap(), dbl, "1000", "cancel");
    assert_eq!(t.journal_path, journal_path);
    assert_eq!(t.ex.stats().fills_recovered, 1);
    assert_eq!(t.ex.position().qty(), Qty(fx("0.001")));
    let last = t.ex.journal().last_state(&id).unwrap().unwrap();
    assert_eq!(last.event.status, mmbot::exec::journal::OrderStatus::Filled);
    t.agree();
    t.ex.stop();
}

#[test]
fn orphans_are_canceled_at_start_by_default() {
    let dbl = Double::start(false);
    dbl.st().orders.push(DOrder {
        id: 500,
        client_id: "someone-else".into(),
        side: "BUY",
        price: fx("50000"),
        qty: fx("0.001"),
        executed: 0,
        status: "NEW",
    });
    let mut t = start_with("orphan-cancel", dbl, "1000", "cancel");
    assert!(t.dbl.open_orders().is_empty());
    assert_eq!(t.ex.stats().orphans_canceled, 1);
    assert!(t.ex.working_bid().is_none());
    t.agree();
    t.ex.stop();
}

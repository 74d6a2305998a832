//! Plain clients for the simulator's tests: HTTP/1.1 over a `TcpStream`
//! (the simulator answers one request per connection, `Connection: close`),
//! HMAC signing as rest-api.md and web-socket-api.md describe it, and a
//! tungstenite WebSocket client with bounded waits. Loopback only.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use mmbot::exec::binance::sign::{ws_api_payload, HmacKey};
use mmbot::sim::Sim;
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

pub const SYMBOL: &str = "BTCUSDT";
pub const KEY: &str = "simKey0123456789";
pub const SECRET: &str = "simSecret0123456789";
pub const DOLLAR: i64 = 100_000_000;

/// One HTTP answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub json: serde_json::Value,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn code(&self) -> i64 {
        self.json["code"].as_i64().unwrap_or(0)
    }
}

/// Sends one request and reads the whole answer (bounded by a 20 s timeout).
pub fn http(sim: &Sim, method: &str, path: &str, api_key: Option<&str>) -> Answer {
    let mut s = TcpStream::connect(sim.addr()).expect("connect to the simulator");
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let key = api_key.map(|k| format!("X-MBX-APIKEY: {k}\r\n")).unwrap_or_default();
    let req =
        format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{key}Content-Length: 0\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines.next().and_then(|l| l.split(' ').nth(1)).and_then(|c| c.parse().ok()).unwrap_or(0);
    let headers =
        lines.filter_map(|l| l.split_once(':')).map(|(k, v)| (k.trim().to_string(), v.trim().to_string())).collect();
    let json = serde_json::from_str(body).unwrap_or(serde_json::Value::Null);
    Answer { status, headers, json }
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

/// `params` plus `timestamp` and the HMAC `signature` (rest-api.md §SIGNED
/// Endpoint Examples: the query string is what is signed).
pub fn signed(params: &str) -> String {
    let q =
        if params.is_empty() { format!("timestamp={}", now_ms()) } else { format!("{params}&timestamp={}", now_ms()) };
    let sig = HmacKey::new(SECRET).unwrap().sign_hex(q.as_bytes());
    format!("{q}&signature={sig}")
}

/// A signed REST request for `KEY`.
pub fn call(sim: &Sim, method: &str, route: &str, params: &str) -> Answer {
    http(sim, method, &format!("{route}?{}", signed(params)), Some(KEY))
}

/// Best bid and ask now (waits for the model's first book).
pub fn top(sim: &Sim) -> (i64, i64) {
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

/// A price as Binance writes it.
pub fn px(v: i64) -> String {
    mmbot::sim::exchange::fmt8(v)
}

/// Waits (at most 12 s) until `now` is at least `margin_ms` from the end
/// of its `window_ms` window, so a fixed-window count is not reset mid-test.
pub fn away_from_window_edge(window_ms: i64, margin_ms: i64) {
    let deadline = Instant::now() + Duration::from_secs(12);
    while window_ms - now_ms().rem_euclid(window_ms) < margin_ms && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub type Ws = WebSocket<MaybeTlsStream<TcpStream>>;

pub fn ws_connect(sim: &Sim, path: &str) -> Ws {
    let (mut ws, _) = tungstenite::connect(format!("{}{path}", sim.ws_base())).expect("WebSocket connect");
    if let MaybeTlsStream::Plain(s) = ws.get_mut() {
        s.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
    }
    ws
}

/// The next text frame as JSON; `None` after the read timeout; `Err` once
/// the connection is gone.
pub fn next_json(ws: &mut Ws) -> Result<Option<serde_json::Value>, String> {
    match ws.read() {
        Ok(Message::Text(t)) => Ok(serde_json::from_str(t.as_str()).ok()),
        Ok(Message::Close(_)) => Err("closed".into()),
        Ok(_) => Ok(None),
        Err(tungstenite::Error::Io(e))
            if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) =>
        {
            Ok(None)
        }
        Err(e) => Err(e.to_string()),
    }
}

/// Reads frames until one satisfies `want` (at most `secs` seconds);
/// frames read on the way are kept in `seen`.
pub fn wait_for(
    ws: &mut Ws,
    secs: u64,
    seen: &mut Vec<serde_json::Value>,
    want: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        assert!(Instant::now() < deadline, "no matching frame within {secs} s; seen: {seen:?}");
        match next_json(ws) {
            Ok(Some(v)) => {
                seen.push(v.clone());
                if want(&v) {
                    return v;
                }
            }
            Ok(None) => {}
            Err(e) => panic!("connection failed while waiting: {e}; seen: {seen:?}"),
        }
    }
}

/// The answer to request `id`.
pub fn answer(ws: &mut Ws, id: &str) -> serde_json::Value {
    let mut seen = Vec::new();
    wait_for(ws, 10, &mut seen, |v| v["id"] == id)
}

/// `params` (a JSON object) with `apiKey`, `timestamp` and the HMAC
/// signature over the sorted parameters (web-socket-api.md §SIGNED
/// request example (HMAC)).
pub fn ws_signed(params: serde_json::Value) -> serde_json::Value {
    let mut p = params.as_object().cloned().unwrap_or_default();
    p.insert("apiKey".into(), KEY.into());
    p.insert("timestamp".into(), now_ms().into());
    let vals: Vec<(String, String)> =
        p.iter().map(|(k, v)| (k.clone(), v.as_str().map_or_else(|| v.to_string(), str::to_string))).collect();
    let pairs: Vec<(&str, &str)> = vals.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let sig = HmacKey::new(SECRET).unwrap().sign_hex(ws_api_payload(&pairs).as_bytes());
    p.insert("signature".into(), sig.into());
    serde_json::Value::Object(p)
}

pub fn ws_send(ws: &mut Ws, id: &str, method: &str, params: serde_json::Value) {
    let msg = serde_json::json!({"id": id, "method": method, "params": params});
    ws.send(Message::text(msg.to_string())).expect("send a WS-API request");
}

/// A decimal string field in 1e-8 units.
pub fn fx(v: &serde_json::Value) -> i64 {
    v.as_str().and_then(|s| s.parse::<mmbot::hot::fixed::Qty>().ok()).map(|q| q.0).unwrap_or(i64::MIN)
}

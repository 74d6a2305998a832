//! Robustness self-tests of the Binance spot test double (tests/binance_double/): malformed and
//! random input over HTTP and WebSocket never panics it or stops it serving, and dropping it
//! stops it. Split from binance_double_selftest.rs to keep files short.

#[path = "binance_double/mod.rs"]
mod binance_double;

use std::time::{Duration, Instant};

use binance_double::client::WsClient;
use binance_double::testkit::{doc_rest as rest, int_of as i};
use binance_double::BinanceDouble;
use serde_json::{json, Value};

// ---------------------------------------------------------------- robustness

#[test]
fn malformed_input_never_breaks_the_double() {
    use std::io::{Read, Write};
    let d = BinanceDouble::start_default().unwrap();
    for junk in [
        &b"GARBAGE\r\n\r\n"[..],
        b"GET / HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n",
        b"\x00\xff\xfe\r\n\r\n",
        b"POST /api/v3/order?%zz=1 HTTP/1.1\r\nContent-Length: 3\r\n\r\n%%%",
    ] {
        let mut s = std::net::TcpStream::connect(d.addr()).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        s.write_all(junk).unwrap();
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf);
    }
    let mut ws = WsClient::connect(&d.ws_api_url()).unwrap();
    ws.send_text("{not json").unwrap();
    ws.send_text("[1,2,3]").unwrap();
    ws.send_text(r#"{"id":1,"method":"order.place","params":{"price":{"x":1},"quantity":[1]}}"#).unwrap();
    ws.send_text(r#"{"id":2,"method":"no.such.method"}"#).unwrap();
    let r = rest(&d);
    assert_eq!(
        r.call(
            "POST",
            "/api/v3/order",
            &[
                ("symbol", "BTCUSDT"),
                ("side", "BUY"),
                ("type", "LIMIT_MAKER"),
                ("price", "-1"),
                ("quantity", "99999999999999999999999")
            ],
            true
        )
        .code(),
        Some(-1100)
    );
    assert_eq!(i(&ws.request("time", Value::Null).unwrap(), "status"), 200);
    assert_eq!(r.call("GET", "/api/v3/time", &[], false).status, 200);
}

#[test]
fn dropping_the_double_stops_it() {
    let d = BinanceDouble::start_default().unwrap();
    let addr = d.addr();
    let _ws = WsClient::connect(&d.ws_api_url()).unwrap();
    drop(d);
    assert!(std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_err());
}

#[test]
fn random_bytes_and_random_json_never_panic_the_double() {
    use std::io::{Read, Write};
    let d = BinanceDouble::start_default().unwrap();
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let pieces = [
        "GET ",
        "POST ",
        "DELETE ",
        "/api/v3/order",
        "/api/v3/openOrders",
        "/ws-api/v3",
        "?",
        "&",
        "=",
        "symbol",
        "BTCUSDT",
        "price",
        "-1",
        "1e9",
        "%",
        "%ZZ",
        "signature",
        " HTTP/1.1\r\n",
        "Content-Length: 5\r\n",
        "Upgrade: websocket\r\n",
        "X-MBX-APIKEY: k\r\n",
        "\r\n",
        "\u{0}",
        "é",
    ];
    for _ in 0..60 {
        let mut req = String::new();
        for _ in 0..(next() % 12) {
            req.push_str(pieces[(next() % pieces.len() as u64) as usize]);
        }
        req.push_str("\r\n\r\n");
        if let Ok(mut s) = std::net::TcpStream::connect(d.addr()) {
            let _ = s.set_read_timeout(Some(Duration::from_millis(300)));
            let _ = s.write_all(req.as_bytes());
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
        }
    }
    let mut ws = WsClient::connect(&d.ws_api_url()).unwrap();
    let methods = [
        "order.place",
        "order.cancel",
        "order.cancelReplace",
        "order.status",
        "myTrades",
        "session.logon",
        "userDataStream.unsubscribe",
        "openOrders.cancelAll",
        "account.status",
    ];
    let values = [
        json!(null),
        json!(-1),
        json!("x"),
        json!(1e300),
        json!([1]),
        json!({"a": 1}),
        json!("100.00"),
        json!(true),
        json!(i64::MAX),
    ];
    let names = [
        "symbol",
        "side",
        "type",
        "price",
        "quantity",
        "orderId",
        "timestamp",
        "apiKey",
        "signature",
        "cancelReplaceMode",
        "limit",
        "fromId",
        "recvWindow",
        "subscriptionId",
    ];
    for _ in 0..150 {
        let mut p = serde_json::Map::new();
        for _ in 0..(next() % 8) {
            p.insert(
                names[(next() % names.len() as u64) as usize].into(),
                values[(next() % values.len() as u64) as usize].clone(),
            );
        }
        let m = methods[(next() % methods.len() as u64) as usize];
        let r = ws.request(m, Value::Object(p)).unwrap();
        assert!(r.get("status").is_some());
    }
    assert_eq!(i(&ws.request("time", Value::Null).unwrap(), "status"), 200);
    drop(ws);
    let end = Instant::now() + Duration::from_secs(5);
    while d.connection_threads() > 0 && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!((d.server_panics(), d.connection_threads()), (0, 0));
}

//! Self-test of the webhook / Slack / Telegram test double
//! (tests/webhook_double/mod.rs), driven by a raw std TcpStream HTTP/1.1
//! client -- no project code. Every test is bounded in time: sockets have
//! 10 s timeouts and all waits have explicit deadlines.

#[path = "webhook_double/mod.rs"]
mod webhook_double;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use webhook_double::{DoubleConfig, Fault, Receiver, WebhookDouble};

const TOKEN: &str = "4242:AAbbCCdd-test";
const CHAT: i64 = 1001;
const GROUP: i64 = -100_123_456_789;

struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }
}

/// One request over a fresh connection; reads until the server closes.
fn raw(addr: SocketAddr, request: &[u8]) -> Option<Resp> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(request).expect("write request");
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    if buf.is_empty() {
        return None;
    }
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").expect("response head");
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    let status: u16 = status_line.split(' ').nth(1).unwrap().parse().unwrap();
    let headers =
        lines.filter_map(|l| l.split_once(':')).map(|(k, v)| (k.trim().to_string(), v.trim().to_string())).collect();
    Some(Resp { status, headers, body: body.to_string() })
}

fn send(addr: SocketAddr, method: &str, path: &str, content_type: Option<&str>, body: &[u8]) -> Resp {
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: selftest\r\n");
    if let Some(ct) = content_type {
        req.push_str(&format!("Content-Type: {ct}\r\n"));
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut bytes = req.into_bytes();
    bytes.extend_from_slice(body);
    raw(addr, &bytes).expect("a response")
}

fn post_json(addr: SocketAddr, path: &str, v: &Value) -> Resp {
    send(addr, "POST", path, Some("application/json"), v.to_string().as_bytes())
}

fn double() -> WebhookDouble {
    WebhookDouble::start(DoubleConfig::new(TOKEN, &[CHAT, GROUP]))
}

const SLACK: &str = "/services/T000/B000/XXXX";

fn tg(method: &str) -> String {
    format!("/bot{TOKEN}/{method}")
}

// --- generic JSON -------------------------------------------------------------

#[test]
fn generic_json_accepts_objects_and_records_them() {
    let d = double();
    let r = post_json(d.addr(), "/hook/json", &json!({"event": "fill", "qty": 1.5}));
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), json!({"ok": true}));
    assert!(r.header("content-type").unwrap().starts_with("application/json"));
    assert_eq!(r.header("connection"), Some("close"));

    let got = d.wait_for(1, Duration::from_secs(2));
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].receiver, Receiver::Json);
    assert_eq!(got[0].path, "/hook/json");
    assert_eq!(got[0].method, "POST");
    assert_eq!(got[0].json.as_ref().unwrap()["event"], "fill");
    assert_eq!(got[0].header("user-agent"), Some("selftest"));
    assert_eq!(got[0].content_type.as_deref(), Some("application/json"));

    // Not JSON / not an object / wrong content type / wrong method.
    assert_eq!(send(d.addr(), "POST", "/hook/json", Some("application/json"), b"{nope").status, 400);
    assert_eq!(post_json(d.addr(), "/hook/json", &json!([1, 2])).status, 400);
    assert_eq!(send(d.addr(), "POST", "/hook/json", Some("text/plain"), b"{}").status, 415);
    assert_eq!(send(d.addr(), "GET", "/hook/json", None, b"").status, 405);
    assert_eq!(d.accepted().len(), 1);
    assert_eq!(d.requests().len(), 5);
}

#[test]
fn unknown_path_is_404() {
    let d = double();
    assert_eq!(post_json(d.addr(), "/elsewhere", &json!({})).status, 404);
    assert_eq!(d.requests()[0].receiver, Receiver::Unknown);
}

// --- Slack ---------------------------------------------------------------------

#[test]
fn slack_ok_no_text_invalid_payload() {
    let d = double();
    let ok = post_json(d.addr(), SLACK, &json!({"text": "Hello, World!"}));
    assert_eq!((ok.status, ok.body.as_str()), (200, "ok"));

    let blocks = json!({"blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "hi"}}]});
    assert_eq!(post_json(d.addr(), SLACK, &blocks).status, 200);

    let no_text = post_json(d.addr(), SLACK, &json!({"username": "bot"}));
    assert_eq!((no_text.status, no_text.body.as_str()), (400, "no_text"));
    let empty = post_json(d.addr(), SLACK, &json!({"text": ""}));
    assert_eq!((empty.status, empty.body.as_str()), (400, "no_text"));

    let bad = send(d.addr(), "POST", SLACK, Some("application/json"), b"text=hi");
    assert_eq!((bad.status, bad.body.as_str()), (400, "invalid_payload"));
    let not_obj = post_json(d.addr(), SLACK, &json!("hi"));
    assert_eq!((not_obj.status, not_obj.body.as_str()), (400, "invalid_payload"));
    // Body doesn't match the content type.
    let mismatch = send(d.addr(), "POST", SLACK, Some("text/plain"), br#"{"text":"x"}"#);
    assert_eq!((mismatch.status, mismatch.body.as_str()), (400, "invalid_payload"));
    let bad_blocks = post_json(d.addr(), SLACK, &json!({"text": "x", "blocks": "nope"}));
    assert_eq!((bad_blocks.status, bad_blocks.body.as_str()), (400, "invalid_blocks"));

    // Legacy form encoding: payload=<json>.
    let form = send(
        d.addr(),
        "POST",
        SLACK,
        Some("application/x-www-form-urlencoded"),
        b"payload=%7B%22text%22%3A%22from+form%22%7D",
    );
    assert_eq!((form.status, form.body.as_str()), (200, "ok"));

    // Not a webhook URL.
    assert_eq!(post_json(d.addr(), "/services/T000", &json!({"text": "x"})).status, 404);

    let acc = d.accepted_by(Receiver::Slack);
    assert_eq!(acc.len(), 3);
    assert_eq!(acc[0].text().as_deref(), Some("Hello, World!"));
    assert_eq!(acc[2].text().as_deref(), Some("from form"));
}

#[test]
fn slack_rate_limit_429_with_retry_after() {
    let d = WebhookDouble::start(DoubleConfig {
        slack_rate_per_s: Some(1.0),
        slack_burst: 2,
        ..DoubleConfig::new(TOKEN, &[CHAT])
    });
    let msg = json!({"text": "tick"});
    assert_eq!(post_json(d.addr(), SLACK, &msg).status, 200);
    assert_eq!(post_json(d.addr(), SLACK, &msg).status, 200);
    let limited = post_json(d.addr(), SLACK, &msg);
    assert_eq!(limited.status, 429);
    let retry: u64 = limited.header("retry-after").expect("Retry-After").parse().unwrap();
    assert!((1..=2).contains(&retry), "retry-after {retry}");
    // Per webhook: another webhook URL has its own budget.
    assert_eq!(post_json(d.addr(), "/services/T1/B1/Y", &msg).status, 200);
    // After waiting as told, it goes through again.
    std::thread::sleep(Duration::from_millis(1050));
    assert_eq!(post_json(d.addr(), SLACK, &msg).status, 200);
    assert_eq!(d.accepted_for("/services/T000/").len(), 3);
}

#[test]
fn slack_scripted_faults() {
    let d = double();
    d.fail_next("/services/", 1, Fault::SlackRateLimited { retry_after_s: 1 });
    d.fail_next("/services/", 1, Fault::Status(500));
    d.fail_next("/services/", 1, Fault::Status(404));
    let msg = json!({"text": "x"});
    let r = post_json(d.addr(), SLACK, &msg);
    assert_eq!((r.status, r.body.as_str(), r.header("retry-after")), (429, "rate_limited", Some("1")));
    let r = post_json(d.addr(), SLACK, &msg);
    assert_eq!((r.status, r.body.as_str()), (500, "rollup_error"));
    let r = post_json(d.addr(), SLACK, &msg);
    assert_eq!((r.status, r.body.as_str()), (404, "channel_not_found"));
    assert_eq!(post_json(d.addr(), SLACK, &msg).status, 200);
    let all = d.requests();
    assert_eq!(all.len(), 4);
    assert_eq!(all[0].fault, Some(Fault::SlackRateLimited { retry_after_s: 1 }));
    assert_eq!(all[3].fault, None);
    // The fault did not leak to other receivers.
    assert_eq!(post_json(d.addr(), "/hook/json", &msg).status, 200);
}

// --- Telegram -------------------------------------------------------------------

#[test]
fn telegram_send_message_success_shape() {
    let d = double();
    let r = post_json(
        d.addr(),
        &tg("sendMessage"),
        &json!({"chat_id": CHAT, "text": "fill: BTCUSDT 0.01 @ 65000", "disable_notification": true}),
    );
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_eq!(v["ok"], true);
    let m = &v["result"];
    assert!(m["message_id"].as_i64().unwrap() >= 1);
    assert!(m["date"].as_u64().unwrap() > 1_600_000_000);
    assert_eq!(m["chat"]["id"], CHAT);
    assert_eq!(m["chat"]["type"], "private");
    assert_eq!(m["text"], "fill: BTCUSDT 0.01 @ 65000");
    assert_eq!(m["from"]["is_bot"], true);

    // chat_id as a String; method name case-insensitive; a second id.
    let r2 = post_json(d.addr(), &tg("sendmessage"), &json!({"chat_id": GROUP.to_string(), "text": "two"}));
    assert_eq!(r2.status, 200);
    assert_eq!(r2.json()["result"]["chat"]["id"], GROUP);
    assert!(r2.json()["result"]["message_id"].as_i64() > m["message_id"].as_i64());

    // Form-encoded and query-string parameters.
    let r3 = send(
        d.addr(),
        "POST",
        &tg("sendMessage"),
        Some("application/x-www-form-urlencoded"),
        format!("chat_id={CHAT}&text=a+b%21").as_bytes(),
    );
    assert_eq!(r3.status, 200, "{}", r3.body);
    assert_eq!(r3.json()["result"]["text"], "a b!");
    let r4 = send(d.addr(), "GET", &format!("{}?chat_id={CHAT}&text=q", tg("sendMessage")), None, b"");
    assert_eq!(r4.status, 200, "{}", r4.body);

    let got = d.wait_for(4, Duration::from_secs(2));
    assert_eq!(got.len(), 4);
    assert_eq!(got[0].receiver, Receiver::Telegram);
    assert_eq!(got[0].text().as_deref(), Some("fill: BTCUSDT 0.01 @ 65000"));
    assert_eq!(got[2].params.as_ref().unwrap()["chat_id"], CHAT.to_string());

    let me = send(d.addr(), "GET", &tg("getMe"), None, b"");
    assert_eq!(me.json()["result"]["id"], 4242);
}

fn assert_tg_error(r: &Resp, status: u16, description: &str) {
    assert_eq!(r.status, status, "{}", r.body);
    let v = r.json();
    assert_eq!(v["ok"], false);
    assert_eq!(v["error_code"], status);
    assert_eq!(v["description"], description);
}

#[test]
fn telegram_errors() {
    let d = double();
    let unknown = post_json(d.addr(), &tg("sendMessage"), &json!({"chat_id": 7, "text": "x"}));
    assert_tg_error(&unknown, 400, "Bad Request: chat not found");
    let username = post_json(d.addr(), &tg("sendMessage"), &json!({"chat_id": "@nobody", "text": "x"}));
    assert_tg_error(&username, 400, "Bad Request: chat not found");

    let wrong_token = post_json(d.addr(), "/bot999:WRONG/sendMessage", &json!({"chat_id": CHAT, "text": "x"}));
    assert_tg_error(&wrong_token, 401, "Unauthorized");

    let empty = post_json(d.addr(), &tg("sendMessage"), &json!({"chat_id": CHAT, "text": ""}));
    assert_tg_error(&empty, 400, "Bad Request: message text is empty");
    let blank = post_json(d.addr(), &tg("sendMessage"), &json!({"chat_id": CHAT, "text": "  \n "}));
    assert_tg_error(&blank, 400, "Bad Request: message text is empty");
    let missing = post_json(d.addr(), &tg("sendMessage"), &json!({"chat_id": CHAT}));
    assert_tg_error(&missing, 400, "Bad Request: message text is empty");
    let no_chat = post_json(d.addr(), &tg("sendMessage"), &json!({"text": "x"}));
    assert_tg_error(&no_chat, 400, "Bad Request: chat_id is empty");

    let max = "x".repeat(4096);
    assert_eq!(post_json(d.addr(), &tg("sendMessage"), &json!({"chat_id": CHAT, "text": max})).status, 200);
    let long = "x".repeat(4097);
    let too_long = post_json(d.addr(), &tg("sendMessage"), &json!({"chat_id": CHAT, "text": long}));
    assert_tg_error(&too_long, 400, "Bad Request: message is too long");

    let mode = post_json(d.addr(), &tg("sendMessage"), &json!({"chat_id": CHAT, "text": "x", "parse_mode": "RTF"}));
    assert_tg_error(&mode, 400, "Bad Request: unsupported parse_mode");

    let method = post_json(d.addr(), &tg("sendTelepathy"), &json!({}));
    assert_tg_error(&method, 404, "Not Found");

    assert_eq!(d.accepted().len(), 1);
}

#[test]
fn telegram_parse_modes() {
    let d = double();
    let sendm = |text: &str, mode: &str| {
        post_json(d.addr(), &tg("sendMessage"), &json!({"chat_id": CHAT, "text": text, "parse_mode": mode}))
    };
    // MarkdownV2: '.', '-', '(' ... must be escaped.
    let r = sendm("*PnL* 1.5", "MarkdownV2");
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json()["description"],
        "Bad Request: can't parse entities: Character '.' is reserved and must be escaped with the preceding '\\'"
    );
    let r = sendm("*PnL* \\-1\\.5 `a.b` [link](http://x/\\))", "MarkdownV2");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["result"]["text"], "PnL -1.5 a.b link");
    let r = sendm("*bold", "MarkdownV2");
    assert_eq!(r.status, 400);
    assert!(r.json()["description"].as_str().unwrap().contains("Can't find end"));
    // Markup alone is "empty after entities parsing".
    let r = sendm("**", "MarkdownV2");
    assert_eq!(r.json()["description"], "Bad Request: message text is empty");

    // HTML.
    let r = sendm("<b>PnL</b> &lt;1.5&gt; &amp; <a href=\"http://x\">x</a>", "HTML");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["result"]["text"], "PnL <1.5> & x");
    let r = sendm("line<br>two", "HTML");
    assert_eq!(r.status, 400);
    assert!(r.json()["description"].as_str().unwrap().contains("Unsupported start tag \"br\""));
    let r = sendm("<b>open", "HTML");
    assert_eq!(r.status, 400);

    // Legacy Markdown.
    let r = sendm("*bold* 1.5 _it_", "Markdown");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["result"]["text"], "bold 1.5 it");
    assert_eq!(sendm("snake_case", "Markdown").status, 400);
    assert_eq!(sendm("snake\\_case", "Markdown").status, 200);
}

#[test]
fn telegram_flood_fault_and_rate_limit() {
    let d = WebhookDouble::start(DoubleConfig {
        telegram_rate_per_chat_per_s: Some(1.0),
        telegram_burst: 1,
        ..DoubleConfig::new(TOKEN, &[CHAT, GROUP])
    });
    d.fail_next("/bot", 1, Fault::TelegramFlood { retry_after_s: 7 });
    let msg = json!({"chat_id": CHAT, "text": "x"});
    let r = post_json(d.addr(), &tg("sendMessage"), &msg);
    assert_tg_error(&r, 429, "Too Many Requests: retry after 7");
    assert_eq!(r.json()["parameters"]["retry_after"], 7);

    // Per-chat flood control: 1/s with burst 1.
    assert_eq!(post_json(d.addr(), &tg("sendMessage"), &msg).status, 200);
    let r = post_json(d.addr(), &tg("sendMessage"), &msg);
    assert_eq!(r.status, 429);
    assert_eq!(r.json()["parameters"]["retry_after"], 1);
    assert_eq!(r.json()["description"], "Too Many Requests: retry after 1");
    // Another chat is independent.
    assert_eq!(post_json(d.addr(), &tg("sendMessage"), &json!({"chat_id": GROUP, "text": "y"})).status, 200);

    d.fail_next(&tg(""), 1, Fault::Status(429));
    let r = post_json(d.addr(), &tg("sendMessage"), &msg);
    assert_eq!(r.json()["parameters"]["retry_after"], 1);

    d.fail_next(&tg(""), 1, Fault::Status(502));
    let r = post_json(d.addr(), &tg("sendMessage"), &msg);
    assert_tg_error(&r, 502, "Bad Gateway");
}

// --- transport and control -----------------------------------------------------

#[test]
fn hangup_and_delay_faults() {
    let d = double();
    d.fail_next("/hook/", 1, Fault::Hangup);
    d.fail_next("/hook/", 1, Fault::Delay(Duration::from_millis(300)));
    let body = br#"{"a":1}"#;
    let req = format!(
        "POST /hook/json HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{}",
        body.len(),
        std::str::from_utf8(body).unwrap()
    );
    assert!(raw(d.addr(), req.as_bytes()).is_none(), "hung up without an answer");
    let t0 = Instant::now();
    let r = raw(d.addr(), req.as_bytes()).expect("delayed answer");
    assert_eq!(r.status, 200);
    assert!(t0.elapsed() >= Duration::from_millis(290));
    let all = d.requests();
    assert_eq!(all[0].status, 0);
    assert_eq!(all[1].status, 200);
}

#[test]
fn chunked_expect_continue_and_size_limit() {
    let d = double();
    let req = "POST /hook/json HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
               Transfer-Encoding: chunked\r\n\r\n4\r\n{\"a\"\r\n3\r\n:1}\r\n0\r\n\r\n";
    let r = raw(d.addr(), req.as_bytes()).unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(d.requests()[0].json, Some(json!({"a": 1})));

    // Expect: 100-continue -> interim 100, then the final answer.
    let mut s = TcpStream::connect(d.addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(
        b"POST /hook/json HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n",
    )
    .unwrap();
    let mut interim = [0u8; 25];
    s.read_exact(&mut interim).unwrap();
    assert!(interim.starts_with(b"HTTP/1.1 100 Continue\r\n\r\n"));
    s.write_all(b"{}").unwrap();
    let mut rest = String::new();
    let _ = s.read_to_string(&mut rest);
    assert!(rest.starts_with("HTTP/1.1 200"), "{rest}");

    let big = vec![b'x'; webhook_double::MAX_BODY + 1];
    let r = send(d.addr(), "POST", "/hook/json", Some("application/json"), &big);
    assert_eq!(r.status, 413);
}

#[test]
fn wait_for_is_bounded_and_drop_stops_server() {
    let d = double();
    let t0 = Instant::now();
    assert!(d.wait_for(1, Duration::from_millis(200)).is_empty());
    assert!(t0.elapsed() < Duration::from_secs(2));

    // A sender on another thread; wait_for wakes as it lands.
    let addr = d.addr();
    let h = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        post_json(addr, "/hook/json", &json!({"n": 1}));
        post_json(addr, "/hook/json", &json!({"n": 2}));
    });
    let got = d.wait_for(2, Duration::from_secs(5));
    assert_eq!(got.len(), 2);
    h.join().unwrap();
    assert!(d.base_url().starts_with("http://127.0.0.1:"));

    drop(d);
    std::thread::sleep(Duration::from_millis(50));
    assert!(TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err());
}

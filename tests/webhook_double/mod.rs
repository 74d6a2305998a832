#![allow(dead_code)]
//! A test double of three outside notification receivers, served over plain
//! HTTP/1.1 on `127.0.0.1:<ephemeral>`, written from the services' public
//! documentation only (no project code was consulted):
//!
//! 1. A generic JSON webhook, `POST /hook/...` (no spec: any JSON object with
//!    `Content-Type: application/json` is answered 200 `{"ok":true}`).
//! 2. A Slack incoming webhook, `POST /services/<T>/<B>/<X>`, modelled on
//!    * "Sending messages using incoming webhooks"
//!      (<https://api.slack.com/messaging/webhooks>): a JSON body with
//!      `Content-type: application/json`, carrying `text` and/or `blocks`;
//!      success is HTTP 200 with the plain-text body `ok`;
//!    * "Handling errors" of the same page and the changelog "Improving error
//!      conditions for Incoming Webhooks" (2016-05-17,
//!      <https://api.slack.com/changelog/2016-05-17-changes-to-errors-for-incoming-webhooks>):
//!      400 `invalid_payload` ("cannot be understood as presented; verify your
//!      content body matches your content type and is structurally valid"),
//!      400 `no_text`, 403 `action_prohibited`, 404 `channel_not_found`,
//!      410 `channel_is_archived`, 500 `rollup_error` -- plain-text bodies;
//!    * "Rate limits" (<https://api.slack.com/docs/rate-limits>, section
//!      "Incoming webhooks"): 1 message per second per webhook, short bursts
//!      allowed, beyond that HTTP 429 with a `Retry-After` header in seconds.
//!    * The legacy `application/x-www-form-urlencoded` form with a
//!      `payload=<json>` field (older "incoming webhooks" examples) is accepted
//!      too.
//! 3. The Telegram Bot API, `GET|POST /bot<token>/<method>`, modelled on
//!    <https://core.telegram.org/bots/api>:
//!    * "Making requests": `https://api.telegram.org/bot<token>/METHOD_NAME`, GET
//!      and POST, parameters in the query string, `application/json` or
//!      `application/x-www-form-urlencoded`; method names are case-insensitive;
//!      every response is a JSON object with a Boolean `ok`; on success the
//!      value is in `result`, on failure there are `description` and an integer
//!      `error_code`, and some errors carry `parameters` (ResponseParameters);
//!    * "sendMessage": `chat_id` (Integer or String), `text` (1-4096 characters
//!      after entities parsing), optional `parse_mode`; returns the sent Message;
//!    * "Formatting options" (MarkdownV2 style, HTML style, Markdown style):
//!      how `parse_mode` text is parsed into plain text + entities;
//!    * "ResponseParameters": `retry_after`, "in case of exceeding flood control,
//!      the number of seconds left to wait before the request can be repeated";
//!    * "Message", "Chat", "User" for the shape of the returned `result`;
//!    * "getMe" (a cheap way for a client to check its token).
//!    * Bot FAQ "My bot is hitting limits" (<https://core.telegram.org/bots/faq>)
//!      gives "about one message per second" per chat; the optional per-chat
//!      rate limit models that with 429 + `parameters.retry_after`.
//!
//! Exact error *descriptions* for Telegram are the ones the service is widely
//! observed to send ("Bad Request: chat not found", "Unauthorized", ...); the
//! docs say only that `description` is human-readable and `error_code` "may
//! change in the future", so a client should key on `ok`, the HTTP status and
//! `parameters.retry_after`, never on the text.
//!
//! Transport: one accept thread (non-blocking listener polled every 2 ms, so it
//! stops promptly once the handle is dropped), one thread per connection, one
//! request per connection answered with `Connection: close`. Bodies may come
//! with `Content-Length` or `Transfer-Encoding: chunked`, up to 1 MiB (larger:
//! 413). `Expect: 100-continue` is honoured. Sockets have read/write timeouts
//! (5 s by default) so a stuck client never hangs a test.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value};

/// Largest request body the double accepts (bigger ones get 413).
pub const MAX_BODY: usize = 1 << 20;
/// Largest request head (request line + headers); bigger ones get 431.
const MAX_HEAD: usize = 64 * 1024;
/// Telegram "sendMessage": `text` is 1-4096 characters after entities parsing.
pub const TELEGRAM_MAX_TEXT: usize = 4096;
/// Upper bound on a scripted `Fault::Delay`, so no test can hang on it.
const MAX_DELAY: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------

/// How the double behaves.
#[derive(Clone, Debug)]
pub struct DoubleConfig {
    /// The one valid bot token (`/bot<token>/...`); any other gets 401.
    pub telegram_token: String,
    /// Chats the bot can write to; any other `chat_id` gets
    /// 400 "Bad Request: chat not found".
    pub telegram_chats: Vec<i64>,
    /// Slack per-webhook rate: `None` = unlimited; `Some(1.0)` = the documented
    /// one message per second, with `slack_burst` messages of burst.
    pub slack_rate_per_s: Option<f64>,
    /// Token-bucket capacity for the Slack limiter. Slack documents that
    /// "bursts" are allowed but not their size; 3 is this double's choice.
    pub slack_burst: u32,
    /// Telegram per-chat rate (Bot FAQ: about one message per second per
    /// chat): `None` = unlimited; beyond it 429 with `parameters.retry_after`.
    pub telegram_rate_per_chat_per_s: Option<f64>,
    /// Token-bucket capacity for the Telegram per-chat limiter.
    pub telegram_burst: u32,
    /// Socket read/write timeout for each connection.
    pub io_timeout: Duration,
}

impl Default for DoubleConfig {
    fn default() -> Self {
        DoubleConfig {
            telegram_token: "123456789:TEST-double-token".to_string(),
            telegram_chats: Vec::new(),
            slack_rate_per_s: None,
            slack_burst: 3,
            telegram_rate_per_chat_per_s: None,
            telegram_burst: 3,
            io_timeout: Duration::from_secs(5),
        }
    }
}

impl DoubleConfig {
    /// A config with a bot token and the chats it may write to; no rate limits.
    pub fn new(telegram_token: &str, telegram_chats: &[i64]) -> Self {
        DoubleConfig {
            telegram_token: telegram_token.to_string(),
            telegram_chats: telegram_chats.to_vec(),
            ..DoubleConfig::default()
        }
    }
}

/// Which of the doubled services a path belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Receiver {
    /// `/hook/...`: the generic JSON webhook.
    Json,
    /// `/services/...`: a Slack incoming webhook.
    Slack,
    /// `/bot...`: the Telegram Bot API.
    Telegram,
    /// Anything else (answered 404).
    Unknown,
}

impl Receiver {
    pub fn of_path(path: &str) -> Receiver {
        if path.starts_with("/hook/") {
            Receiver::Json
        } else if path.starts_with("/services/") {
            Receiver::Slack
        } else if path.starts_with("/bot") {
            Receiver::Telegram
        } else {
            Receiver::Unknown
        }
    }
}

/// A scripted answer for the next requests to a path prefix (see
/// [`WebhookDouble::fail_next`]). The request is still read and recorded.
#[derive(Clone, Debug, PartialEq)]
pub enum Fault {
    /// Answer this HTTP status with the receiver's error shape: Slack plain
    /// text (`invalid_payload`, `action_prohibited`, `channel_not_found`,
    /// `channel_is_archived`, `rollup_error`, ...), Telegram
    /// `{"ok":false,"error_code":N,"description":...}`, generic
    /// `{"ok":false,"error":...}`.
    Status(u16),
    /// Slack rate limit: 429, `Retry-After: <s>`, body `rate_limited`.
    SlackRateLimited { retry_after_s: u64 },
    /// Telegram flood control: 429 with
    /// `"description":"Too Many Requests: retry after N"` and
    /// `"parameters":{"retry_after":N}`.
    TelegramFlood { retry_after_s: u64 },
    /// Wait this long (at most 60 s), then answer normally.
    Delay(Duration),
    /// Read the request, then close the connection without answering
    /// (recorded with `status == 0`).
    Hangup,
}

/// One request as the double saw it, and what it answered.
#[derive(Clone, Debug)]
pub struct Received {
    pub receiver: Receiver,
    pub method: String,
    /// Path without the query string.
    pub path: String,
    pub query: Option<String>,
    /// Headers as sent (names in the client's spelling).
    pub headers: Vec<(String, String)>,
    pub content_type: Option<String>,
    /// The body, UTF-8 (lossy).
    pub body: String,
    /// The body parsed as JSON, when it parses.
    pub json: Option<Value>,
    /// The parameters the receiver acted on, as a JSON object: the Slack
    /// payload (also from a form `payload=` field), the Telegram parameters
    /// (query string + JSON or form body; form values are strings), the
    /// generic webhook's JSON object. `None` when none could be read.
    pub params: Option<Value>,
    /// HTTP status the double answered; 0 when it hung up (`Fault::Hangup`).
    pub status: u16,
    pub response_body: String,
    /// The scripted fault that answered this request, if any.
    pub fault: Option<Fault>,
    /// When the request had been fully read.
    pub at: Instant,
}

impl Received {
    /// Case-insensitive header lookup.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// Whether the double answered 2xx.
    pub fn is_accepted(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The `text` parameter (Slack / Telegram message text) as sent.
    pub fn text(&self) -> Option<String> {
        let v = self.params.as_ref()?.get("text")?;
        match v {
            Value::String(s) => Some(s.clone()),
            Value::Null => None,
            other => Some(other.to_string()),
        }
    }

    /// The response body parsed as JSON (Telegram and generic answers).
    pub fn response_json(&self) -> Option<Value> {
        serde_json::from_str(&self.response_body).ok()
    }
}

/// The running double. Dropping it stops the server.
pub struct WebhookDouble {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

impl WebhookDouble {
    /// Binds `127.0.0.1:0` and starts serving.
    pub fn start(cfg: DoubleConfig) -> WebhookDouble {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        listener.set_nonblocking(true).expect("non-blocking listener");
        let addr = listener.local_addr().expect("local addr");
        let shared = Arc::new(Shared {
            cfg,
            state: Mutex::new(State {
                received: Vec::new(),
                faults: Vec::new(),
                buckets: HashMap::new(),
                next_message_id: 1,
            }),
            changed: Condvar::new(),
            stop: AtomicBool::new(false),
        });
        let sh = Arc::clone(&shared);
        let accept = thread::Builder::new()
            .name("webhook-double-accept".into())
            .spawn(move || accept_loop(listener, sh))
            .expect("spawn accept thread");
        WebhookDouble { addr, shared, accept: Some(accept) }
    }

    /// `http://127.0.0.1:PORT`
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `base_url()/hook/json`
    pub fn json_url(&self) -> String {
        format!("{}/hook/json", self.base_url())
    }

    /// `base_url()/services/T000/B000/XXXX`
    pub fn slack_url(&self) -> String {
        format!("{}/services/T000/B000/XXXX", self.base_url())
    }

    /// The Telegram API base a client appends `/bot<token>/sendMessage` to
    /// (same as `base_url()`).
    pub fn telegram_api_base(&self) -> String {
        self.base_url()
    }

    /// `base_url()/bot<valid token>/sendMessage`
    pub fn telegram_send_url(&self) -> String {
        format!("{}/bot{}/sendMessage", self.base_url(), self.shared.cfg.telegram_token)
    }

    pub fn config(&self) -> &DoubleConfig {
        &self.shared.cfg
    }

    /// Everything received, in arrival order (including rejected requests).
    pub fn requests(&self) -> Vec<Received> {
        self.shared.lock().received.clone()
    }

    /// Only the requests answered 2xx.
    pub fn accepted(&self) -> Vec<Received> {
        accepted_of(&self.shared.lock().received)
    }

    /// Accepted requests whose path starts with `path_prefix`.
    pub fn accepted_for(&self, path_prefix: &str) -> Vec<Received> {
        self.shared
            .lock()
            .received
            .iter()
            .filter(|r| r.is_accepted() && r.path.starts_with(path_prefix))
            .cloned()
            .collect()
    }

    /// Accepted requests to one receiver.
    pub fn accepted_by(&self, receiver: Receiver) -> Vec<Received> {
        self.shared.lock().received.iter().filter(|r| r.is_accepted() && r.receiver == receiver).cloned().collect()
    }

    /// Waits (at most `timeout`) until at least `n` requests were answered
    /// 2xx; returns the accepted requests (possibly fewer than `n`).
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Received> {
        let st = self.wait_until(timeout, |st| st.received.iter().filter(|r| r.is_accepted()).count() >= n);
        accepted_of(&st.received)
    }

    /// Waits (at most `timeout`) until at least `n` requests of any outcome
    /// were received; returns all requests (possibly fewer than `n`).
    pub fn wait_for_requests(&self, n: usize, timeout: Duration) -> Vec<Received> {
        let st = self.wait_until(timeout, |st| st.received.len() >= n);
        st.received.clone()
    }

    /// Scripts the next `n` requests whose path starts with `path_prefix`
    /// to be answered with `fault`. Scripts are consumed first-registered
    /// first; a request takes from the first script that matches it.
    pub fn fail_next(&self, path_prefix: &str, n: usize, fault: Fault) {
        if n > 0 {
            self.shared.lock().faults.push((path_prefix.to_string(), n, fault));
        }
    }

    /// Drops all pending scripted faults.
    pub fn clear_faults(&self) {
        self.shared.lock().faults.clear();
    }

    /// Forgets recorded requests (faults and rate-limit state stay).
    pub fn clear_requests(&self) {
        self.shared.lock().received.clear();
    }

    fn wait_until(&self, timeout: Duration, done: impl Fn(&State) -> bool) -> MutexGuard<'_, State> {
        let deadline = Instant::now() + timeout;
        let mut st = self.shared.lock();
        loop {
            if done(&st) {
                return st;
            }
            let now = Instant::now();
            if now >= deadline {
                return st;
            }
            st = self.shared.changed.wait_timeout(st, deadline - now).unwrap_or_else(|e| e.into_inner()).0;
        }
    }
}

impl Drop for WebhookDouble {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
    }
}

fn accepted_of(all: &[Received]) -> Vec<Received> {
    all.iter().filter(|r| r.is_accepted()).cloned().collect()
}

// ---------------------------------------------------------------------------
// Shared state
// ---------------------------------------------------------------------------

struct Shared {
    cfg: DoubleConfig,
    state: Mutex<State>,
    changed: Condvar,
    stop: AtomicBool,
}

struct State {
    received: Vec<Received>,
    faults: Vec<(String, usize, Fault)>,
    buckets: HashMap<String, Bucket>,
    next_message_id: i64,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn take_fault(&self, path: &str) -> Option<Fault> {
        let mut st = self.lock();
        let idx = st.faults.iter().position(|(p, n, _)| *n > 0 && path.starts_with(p.as_str()))?;
        let entry = &mut st.faults[idx];
        entry.1 -= 1;
        let fault = entry.2.clone();
        if entry.1 == 0 {
            st.faults.remove(idx);
        }
        Some(fault)
    }

    /// Token bucket keyed by `key`; `Err(seconds until a token is available)`.
    fn take_token(&self, key: &str, rate: f64, burst: u32) -> Result<(), f64> {
        let rate = if rate > 0.0 { rate } else { f64::MIN_POSITIVE };
        let burst = f64::from(burst.max(1));
        let now = Instant::now();
        let mut st = self.lock();
        let b = st.buckets.entry(key.to_string()).or_insert(Bucket { tokens: burst, last: now });
        b.tokens = (b.tokens + now.duration_since(b.last).as_secs_f64() * rate).min(burst);
        b.last = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err((1.0 - b.tokens) / rate)
        }
    }

    fn record(&self, r: Received) {
        self.lock().received.push(r);
        self.changed.notify_all();
    }
}

struct Bucket {
    tokens: f64,
    last: Instant,
}

/// Seconds for a `Retry-After` / `retry_after`: rounded up, at least 1.
fn retry_secs(wait: f64) -> u64 {
    (wait.ceil() as u64).max(1)
}

// ---------------------------------------------------------------------------
// Transport
// ---------------------------------------------------------------------------

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    // Bounded: ends as soon as the handle is dropped (stop flag).
    while !shared.stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, _)) => {
                let sh = Arc::clone(&shared);
                let _ = thread::Builder::new()
                    .name("webhook-double-conn".into())
                    .spawn(move || serve_connection(&sh, stream));
            }
            Err(_) => thread::sleep(Duration::from_millis(2)),
        }
    }
}

struct RawRequest {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl RawRequest {
    fn header(&self, name: &str) -> Option<&str> {
        header_in(&self.headers, name)
    }
}

fn header_in<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
}

enum ReadOutcome {
    Request(RawRequest),
    /// A protocol error after the head was parsed (411/413/400 on the body).
    BadBody(RawRequest, u16, &'static str),
    /// Unparsable head: answer and close, nothing recorded.
    BadHead(u16, &'static str),
    Closed,
}

struct Reply {
    status: u16,
    content_type: &'static str,
    body: String,
    headers: Vec<(String, String)>,
}

impl Reply {
    fn text(status: u16, body: &str) -> Reply {
        Reply { status, content_type: "text/plain; charset=utf-8", body: body.to_string(), headers: Vec::new() }
    }

    fn json(status: u16, v: Value) -> Reply {
        Reply { status, content_type: "application/json", body: v.to_string(), headers: Vec::new() }
    }

    fn with_header(mut self, k: &str, v: String) -> Reply {
        self.headers.push((k.to_string(), v));
        self
    }
}

fn serve_connection(shared: &Shared, mut stream: TcpStream) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(shared.cfg.io_timeout));
    let _ = stream.set_write_timeout(Some(shared.cfg.io_timeout));
    let _ = stream.set_nodelay(true);

    let (req, protocol_error) = match read_request(&mut stream) {
        ReadOutcome::Closed => return,
        ReadOutcome::BadHead(status, msg) => {
            let _ = write_reply(&mut stream, &Reply::text(status, msg));
            let _ = stream.shutdown(Shutdown::Both);
            return;
        }
        ReadOutcome::BadBody(req, status, msg) => (req, Some(Reply::text(status, msg))),
        ReadOutcome::Request(req) => (req, None),
    };
    let at = Instant::now();
    let (path, query) = match req.target.split_once('?') {
        Some((p, q)) => (p.to_string(), Some(q.to_string())),
        None => (req.target.clone(), None),
    };
    let receiver = Receiver::of_path(&path);
    let content_type = req.header("content-type").map(str::to_string);
    let body = String::from_utf8_lossy(&req.body).into_owned();
    let json = serde_json::from_slice::<Value>(&req.body).ok();

    let fault = if protocol_error.is_some() { None } else { shared.take_fault(&path) };
    let ctx = Ctx {
        shared,
        method: &req.method,
        path: &path,
        query: query.as_deref(),
        content_type: content_type.as_deref(),
        body: &req.body,
    };
    let (reply, params) = if let Some(reply) = protocol_error {
        (Some(reply), None)
    } else {
        match &fault {
            Some(Fault::Hangup) => (None, None),
            Some(Fault::Delay(d)) => {
                sleep_bounded(shared, (*d).min(MAX_DELAY));
                let (r, p) = handle(&ctx, receiver);
                (Some(r), p)
            }
            Some(f) => (Some(fault_reply(receiver, f)), None),
            None => {
                let (r, p) = handle(&ctx, receiver);
                (Some(r), p)
            }
        }
    };

    // Record before answering, so a client that has seen the answer also
    // finds the request in `requests()`.
    shared.record(Received {
        receiver,
        method: req.method.clone(),
        path,
        query,
        headers: req.headers.clone(),
        content_type,
        body,
        json,
        params,
        status: reply.as_ref().map_or(0, |r| r.status),
        response_body: reply.as_ref().map_or_else(String::new, |r| r.body.clone()),
        fault,
        at,
    });
    if let Some(reply) = reply {
        let _ = write_reply(&mut stream, &reply);
        let _ = stream.flush();
        let _ = stream.shutdown(Shutdown::Write);
    }
    let _ = stream.shutdown(Shutdown::Both);
}

fn sleep_bounded(shared: &Shared, d: Duration) {
    let deadline = Instant::now() + d;
    while !shared.stop.load(Ordering::SeqCst) {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        thread::sleep((deadline - now).min(Duration::from_millis(10)));
    }
}

/// Buffered input over the connection (head leftovers first).
struct Input<'a> {
    stream: &'a mut TcpStream,
    buf: Vec<u8>,
    pos: usize,
}

impl Input<'_> {
    fn available(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Reads more bytes; false on EOF, error or timeout.
    fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 16 * 1024];
        match self.stream.read(&mut chunk) {
            Ok(0) | Err(_) => false,
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                true
            }
        }
    }

    fn take(&mut self, n: usize) -> Option<Vec<u8>> {
        // Bounded: every iteration adds at least one byte or returns.
        while self.available() < n {
            if !self.fill() {
                return None;
            }
        }
        let v = self.buf[self.pos..self.pos + n].to_vec();
        self.pos += n;
        Some(v)
    }

    /// One CRLF-terminated line (without the CRLF), at most `max` bytes.
    fn line(&mut self, max: usize) -> Option<String> {
        loop {
            if let Some(i) = self.buf[self.pos..].windows(2).position(|w| w == b"\r\n") {
                let line = String::from_utf8_lossy(&self.buf[self.pos..self.pos + i]).into_owned();
                self.pos += i + 2;
                return Some(line);
            }
            if self.available() > max || !self.fill() {
                return None;
            }
        }
    }
}

fn read_request(stream: &mut TcpStream) -> ReadOutcome {
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    let mut chunk = [0u8; 8192];
    // Bounded: every iteration reads at least one byte, and the head is
    // limited to MAX_HEAD.
    let (head_len, method, target, headers) = loop {
        if !buf.is_empty() {
            let mut hs = [httparse::EMPTY_HEADER; 100];
            let mut parsed = httparse::Request::new(&mut hs);
            match parsed.parse(&buf) {
                Ok(httparse::Status::Complete(n)) => {
                    let method = parsed.method.unwrap_or("").to_string();
                    let target = parsed.path.unwrap_or("").to_string();
                    let headers: Vec<(String, String)> = parsed
                        .headers
                        .iter()
                        .map(|h| (h.name.to_string(), String::from_utf8_lossy(h.value).trim().to_string()))
                        .collect();
                    break (n, method, target, headers);
                }
                Ok(httparse::Status::Partial) => {}
                Err(httparse::Error::TooManyHeaders) => return ReadOutcome::BadHead(431, "too many headers"),
                Err(_) => return ReadOutcome::BadHead(400, "malformed request head"),
            }
        }
        if buf.len() > MAX_HEAD {
            return ReadOutcome::BadHead(431, "request head too large");
        }
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return ReadOutcome::Closed,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };

    let mut req = RawRequest { method, target, headers, body: Vec::new() };
    let chunked = req.header("transfer-encoding").is_some_and(|te| te.to_ascii_lowercase().contains("chunked"));
    let content_length = req.header("content-length").map(str::to_string);
    let expects_continue = req.header("expect").is_some_and(|e| e.eq_ignore_ascii_case("100-continue"));

    let mut input = Input { stream, buf, pos: head_len };

    if chunked {
        if expects_continue && input.available() == 0 {
            let _ = input.stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n");
        }
        return match read_chunked(&mut input) {
            Ok(body) => {
                req.body = body;
                ReadOutcome::Request(req)
            }
            Err((status, msg)) => ReadOutcome::BadBody(req, status, msg),
        };
    }
    let len = match content_length {
        None => 0, // RFC 9112 6.3: a request without CL/TE has no body.
        Some(v) => match v.parse::<usize>() {
            Ok(n) => n,
            Err(_) => return ReadOutcome::BadBody(req, 400, "invalid Content-Length"),
        },
    };
    if len > MAX_BODY {
        if !expects_continue {
            drain(&mut input, len);
        }
        return ReadOutcome::BadBody(req, 413, "request body too large");
    }
    if len > 0 && expects_continue && input.available() < len {
        let _ = input.stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n");
    }
    match input.take(len) {
        Some(body) => {
            req.body = body;
            ReadOutcome::Request(req)
        }
        None => ReadOutcome::Closed,
    }
}

/// Reads and discards an oversized body (bounded in size and time) so the
/// 413 answer is not lost to a connection reset.
fn drain(input: &mut Input<'_>, len: usize) {
    let _ = input.stream.set_read_timeout(Some(Duration::from_millis(500)));
    let mut left = len.min(8 * MAX_BODY).saturating_sub(input.available());
    let mut chunk = [0u8; 64 * 1024];
    while left > 0 {
        match input.stream.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => left = left.saturating_sub(n),
        }
    }
}

fn read_chunked(input: &mut Input<'_>) -> Result<Vec<u8>, (u16, &'static str)> {
    let mut body = Vec::new();
    // Bounded: at most MAX_BODY bytes of non-empty chunks, and at most this
    // many chunk headers.
    for _ in 0..100_000 {
        let line = input.line(1024).ok_or((400, "bad chunk size line"))?;
        let size_hex = line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_hex, 16).map_err(|_| (400, "bad chunk size"))?;
        if size == 0 {
            for _ in 0..64 {
                let trailer = input.line(8192).ok_or((400, "bad chunked trailer"))?;
                if trailer.is_empty() {
                    return Ok(body);
                }
            }
            return Err((400, "too many trailers"));
        }
        if body.len() + size > MAX_BODY {
            return Err((413, "request body too large"));
        }
        body.extend(input.take(size).ok_or((400, "truncated chunk"))?);
        if input.take(2).as_deref() != Some(b"\r\n") {
            return Err((400, "chunk not followed by CRLF"));
        }
    }
    Err((400, "too many chunks"))
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}

fn write_reply(stream: &mut TcpStream, r: &Reply) -> std::io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n",
        r.status,
        reason(r.status),
        r.content_type,
        r.body.len()
    );
    for (k, v) in &r.headers {
        head.push_str(k);
        head.push_str(": ");
        head.push_str(v);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    let mut out = head.into_bytes();
    out.extend_from_slice(r.body.as_bytes());
    stream.write_all(&out)
}

// ---------------------------------------------------------------------------
// Receivers
// ---------------------------------------------------------------------------

struct Ctx<'a> {
    shared: &'a Shared,
    method: &'a str,
    path: &'a str,
    query: Option<&'a str>,
    content_type: Option<&'a str>,
    body: &'a [u8],
}

impl Ctx<'_> {
    /// The media type without parameters, lower-cased.
    fn media_type(&self) -> Option<String> {
        self.content_type.map(|ct| ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
    }
}

fn handle(ctx: &Ctx<'_>, receiver: Receiver) -> (Reply, Option<Value>) {
    match receiver {
        Receiver::Json => generic_json(ctx),
        Receiver::Slack => slack(ctx),
        Receiver::Telegram => telegram(ctx),
        Receiver::Unknown => (Reply::text(404, "not found"), None),
    }
}

/// Answer for a scripted fault, shaped like the receiver's own errors.
fn fault_reply(receiver: Receiver, fault: &Fault) -> Reply {
    match *fault {
        Fault::SlackRateLimited { retry_after_s } => {
            // Slack "Rate limits": HTTP 429 + Retry-After (seconds).
            Reply::text(429, "rate_limited").with_header("Retry-After", retry_after_s.to_string())
        }
        Fault::TelegramFlood { retry_after_s } => telegram_flood(retry_after_s),
        Fault::Status(code) => match receiver {
            Receiver::Slack if code == 429 => fault_reply(receiver, &Fault::SlackRateLimited { retry_after_s: 1 }),
            Receiver::Slack => Reply::text(code, slack_error_for(code)),
            Receiver::Telegram if code == 429 => telegram_flood(1),
            Receiver::Telegram => telegram_error(code, telegram_description_for(code)),
            _ => Reply::json(code, json!({"ok": false, "error": format!("injected {code}")})),
        },
        // Handled by the caller.
        Fault::Delay(_) | Fault::Hangup => Reply::text(500, "unexpected fault"),
    }
}

// --- Generic JSON webhook ----------------------------------------------------

fn generic_json(ctx: &Ctx<'_>) -> (Reply, Option<Value>) {
    if ctx.method != "POST" {
        return (
            Reply::json(405, json!({"ok": false, "error": "method not allowed"})).with_header("Allow", "POST".into()),
            None,
        );
    }
    if ctx.media_type().as_deref() != Some("application/json") {
        return (Reply::json(415, json!({"ok": false, "error": "Content-Type must be application/json"})), None);
    }
    match serde_json::from_slice::<Value>(ctx.body) {
        Ok(v @ Value::Object(_)) => (Reply::json(200, json!({"ok": true})), Some(v)),
        _ => (Reply::json(400, json!({"ok": false, "error": "body is not a JSON object"})), None),
    }
}

// --- Slack incoming webhook --------------------------------------------------

/// Plain-text error strings by status, from the 2016-05-17 changelog
/// "Improving error conditions for Incoming Webhooks".
fn slack_error_for(code: u16) -> &'static str {
    match code {
        400 => "invalid_payload",
        403 => "action_prohibited",
        404 => "channel_not_found",
        410 => "channel_is_archived",
        429 => "rate_limited",
        500 => "rollup_error",
        _ => "rollup_error",
    }
}

fn slack(ctx: &Ctx<'_>) -> (Reply, Option<Value>) {
    if ctx.method != "POST" {
        return (Reply::text(405, "invalid_method").with_header("Allow", "POST".into()), None);
    }
    // A webhook URL is /services/<team>/<bot>/<secret>.
    let segs: Vec<&str> = ctx.path["/services/".len()..].split('/').collect();
    if segs.len() != 3 || segs.iter().any(|s| s.is_empty()) {
        return (Reply::text(404, "no_service"), None);
    }

    // "Rate limits" -> Incoming webhooks: 1 message per second per webhook,
    // bursts allowed; HTTP 429 with Retry-After (seconds) beyond.
    if let Some(rate) = ctx.shared.cfg.slack_rate_per_s {
        let key = format!("slack:{}", ctx.path);
        if let Err(wait) = ctx.shared.take_token(&key, rate, ctx.shared.cfg.slack_burst) {
            return (Reply::text(429, "rate_limited").with_header("Retry-After", retry_secs(wait).to_string()), None);
        }
    }

    // "invalid_payload - the data sent in your request cannot be understood as
    // presented; verify your content body matches your content type and is
    // structurally valid."
    let payload: Option<Value> = match ctx.media_type().as_deref() {
        Some("application/json") => serde_json::from_slice(ctx.body).ok(),
        Some("application/x-www-form-urlencoded") => {
            let body = String::from_utf8_lossy(ctx.body);
            form_decode(&body)
                .into_iter()
                .find(|(k, _)| k == "payload")
                .and_then(|(_, v)| serde_json::from_str(&v).ok())
        }
        _ => None,
    };
    let Some(Value::Object(obj)) = payload else {
        return (Reply::text(400, "invalid_payload"), None);
    };
    let params = Value::Object(obj.clone());

    // Blocks (Block Kit): an array of block objects, each with a `type`.
    let blocks = obj.get("blocks");
    if let Some(b) = blocks {
        let valid =
            b.as_array().is_some_and(|arr| arr.iter().all(|blk| blk.get("type").and_then(Value::as_str).is_some()));
        if !valid {
            return (Reply::text(400, "invalid_blocks"), Some(params));
        }
    }
    if let Some(t) = obj.get("text") {
        if !t.is_string() {
            return (Reply::text(400, "invalid_payload"), Some(params));
        }
    }

    // `text` is required unless `blocks` (or legacy `attachments`) carry the
    // message; otherwise Slack answers 400 `no_text`.
    let has_text = obj.get("text").and_then(Value::as_str).is_some_and(|s| !s.trim().is_empty());
    let non_empty = |k: &str| obj.get(k).and_then(Value::as_array).is_some_and(|a| !a.is_empty());
    if !(has_text || non_empty("blocks") || non_empty("attachments")) {
        return (Reply::text(400, "no_text"), Some(params));
    }
    (Reply::text(200, "ok"), Some(params))
}

// --- Telegram Bot API -------------------------------------------------------

/// "Making requests": `{"ok":false,"error_code":N,"description":...}`.
fn telegram_error(code: u16, description: &str) -> Reply {
    Reply::json(code, json!({"ok": false, "error_code": code, "description": description}))
}

/// Flood control: 429 with ResponseParameters.retry_after.
fn telegram_flood(retry_after_s: u64) -> Reply {
    Reply::json(
        429,
        json!({
            "ok": false,
            "error_code": 429,
            "description": format!("Too Many Requests: retry after {retry_after_s}"),
            "parameters": {"retry_after": retry_after_s},
        }),
    )
}

fn telegram_description_for(code: u16) -> &'static str {
    match code {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden: bot was blocked by the user",
        404 => "Not Found",
        409 => "Conflict",
        429 => "Too Many Requests: retry after 1",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        _ => "Error",
    }
}

fn bad_request(what: &str) -> Reply {
    telegram_error(400, &format!("Bad Request: {what}"))
}

fn telegram(ctx: &Ctx<'_>) -> (Reply, Option<Value>) {
    let cfg = &ctx.shared.cfg;
    let Some((token, api_method)) = ctx.path["/bot".len()..].split_once('/') else {
        return (telegram_error(404, "Not Found"), None);
    };
    if token != cfg.telegram_token {
        return (telegram_error(401, "Unauthorized"), None);
    }
    // "We support GET and POST HTTP methods."
    if ctx.method != "GET" && ctx.method != "POST" {
        return (telegram_error(404, "Not Found"), None);
    }

    // Parameters: query string, then the body by its content type.
    let mut params = Map::new();
    if let Some(q) = ctx.query {
        for (k, v) in form_decode(q) {
            params.insert(k, Value::String(v));
        }
    }
    match ctx.media_type().as_deref() {
        Some("application/json") if !ctx.body.is_empty() => {
            match serde_json::from_slice::<Value>(ctx.body) {
                Ok(Value::Object(obj)) => params.extend(obj),
                // Not from the docs: the double's answer to an unparsable
                // JSON body (a client must never send one).
                _ => return (bad_request("can't parse JSON object"), None),
            }
        }
        Some("application/x-www-form-urlencoded") => {
            for (k, v) in form_decode(&String::from_utf8_lossy(ctx.body)) {
                params.insert(k, Value::String(v));
            }
        }
        _ => {}
    }
    let params_v = Value::Object(params.clone());

    // "All methods in the Bot API are case-insensitive."
    let reply = match api_method.to_ascii_lowercase().as_str() {
        "sendmessage" => send_message(ctx.shared, &params),
        "getme" => Reply::json(200, json!({"ok": true, "result": bot_user(cfg)})),
        _ => telegram_error(404, "Not Found"),
    };
    (reply, Some(params_v))
}

fn bot_user(cfg: &DoubleConfig) -> Value {
    let id: i64 = cfg.telegram_token.split(':').next().and_then(|s| s.parse().ok()).unwrap_or(1);
    json!({"id": id, "is_bot": true, "first_name": "Double", "username": "double_bot"})
}

fn chat_type(id: i64) -> &'static str {
    if id > 0 {
        "private"
    } else if id <= -1_000_000_000_000 {
        "supergroup"
    } else {
        "group"
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ParseMode {
    Plain,
    MarkdownV2,
    Html,
    Markdown,
}

/// "sendMessage".
fn send_message(shared: &Shared, params: &Map<String, Value>) -> Reply {
    let cfg = &shared.cfg;

    // chat_id: Integer or String ("@channelusername" or the numeric id).
    let chat_id: Option<i64> = match params.get("chat_id") {
        None | Some(Value::Null) => return bad_request("chat_id is empty"),
        Some(Value::String(s)) if s.trim().is_empty() => return bad_request("chat_id is empty"),
        Some(Value::String(s)) => s.trim().parse::<i64>().ok(),
        Some(Value::Number(n)) => n.as_i64(),
        Some(_) => None,
    };

    let text = match params.get("text") {
        None | Some(Value::Null) => return bad_request("message text is empty"),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::Bool(b)) => b.to_string(),
        Some(_) => return bad_request("message text is empty"),
    };

    // parse_mode: "MarkdownV2", "HTML" or "Markdown" (legacy).
    let mode = match params.get("parse_mode") {
        None | Some(Value::Null) => ParseMode::Plain,
        Some(Value::String(s)) => match s.to_ascii_lowercase().as_str() {
            "" => ParseMode::Plain,
            "markdownv2" => ParseMode::MarkdownV2,
            "html" => ParseMode::Html,
            "markdown" => ParseMode::Markdown,
            _ => return bad_request("unsupported parse_mode"),
        },
        Some(_) => return bad_request("unsupported parse_mode"),
    };
    let parsed = match mode {
        ParseMode::Plain => Ok(text.clone()),
        ParseMode::MarkdownV2 => parse_markdown_v2(&text),
        ParseMode::Html => parse_html(&text),
        ParseMode::Markdown => parse_markdown_legacy(&text),
    };
    let plain = match parsed {
        Ok(p) => p,
        Err(e) => return bad_request(&format!("can't parse entities: {e}")),
    };
    // "text: 1-4096 characters after entities parsing". Counted in UTF-16
    // code units (the unit Telegram's entity offsets use), which is never
    // fewer than Unicode characters, so the double errs on the strict side.
    if plain.trim().is_empty() {
        return bad_request("message text is empty");
    }
    if plain.encode_utf16().count() > TELEGRAM_MAX_TEXT {
        return bad_request("message is too long");
    }

    let Some(chat_id) = chat_id.filter(|id| cfg.telegram_chats.contains(id)) else {
        return bad_request("chat not found");
    };

    if let Some(rate) = cfg.telegram_rate_per_chat_per_s {
        let key = format!("telegram:{chat_id}");
        if let Err(wait) = shared.take_token(&key, rate, cfg.telegram_burst) {
            return telegram_flood(retry_secs(wait));
        }
    }

    let message_id = {
        let mut st = shared.lock();
        let id = st.next_message_id;
        st.next_message_id += 1;
        id
    };
    let date = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    Reply::json(
        200,
        json!({
            "ok": true,
            "result": {
                "message_id": message_id,
                "from": bot_user(cfg),
                "chat": {"id": chat_id, "type": chat_type(chat_id)},
                "date": date,
                "text": plain,
            }
        }),
    )
}

// --- Formatting options -------------------------------------------------------

fn reserved_err(c: char) -> String {
    format!("Character '{c}' is reserved and must be escaped with the preceding '\\'")
}

/// "MarkdownV2 style": `*bold*`, `_italic_`, `__underline__`, `~strike~`,
/// `||spoiler||`, `[text](url)`, `![emoji](tg://emoji?id=..)`, `` `code` ``,
/// ```` ```lang\npre``` ````, `>` block quotes at line start (`**>` expandable).
/// * "Any character with code between 1 and 126 inclusively can be escaped
///   anywhere with a preceding '\' character".
/// * "Inside pre and code entities, all '`' and '\' characters must be escaped".
/// * "Inside the (...) part of the inline link ... all ')' and '\' must be
///   escaped".
/// * "In all other places characters '_', '*', '[', ']', '(', ')', '~', '`',
///   '>', '#', '+', '-', '=', '|', '{', '}', '.', '!' must be escaped".
///
/// Returns the plain text (markup removed) or a parse error.
fn parse_markdown_v2(s: &str) -> Result<String, String> {
    const RESERVED: &str = "_*[]()~`>#+-=|{}.!";
    let chars: Vec<(usize, char)> = s.char_indices().collect();
    let at = |i: usize| chars.get(i).map(|&(_, c)| c);
    let mut out = String::new();
    let mut stack: Vec<(&'static str, usize)> = Vec::new();
    let mut i = 0;
    let mut line_start = true;

    fn toggle(stack: &mut Vec<(&'static str, usize)>, marker: &'static str, off: usize) -> Result<(), String> {
        match stack.last() {
            Some(&(m, _)) if m == marker => {
                stack.pop();
                Ok(())
            }
            _ if stack.iter().any(|&(m, _)| m == marker) => Err(format!(
                "Can't find end of the entity starting at byte offset {}",
                stack.last().map_or(off, |&(_, o)| o)
            )),
            _ => {
                stack.push((marker, off));
                Ok(())
            }
        }
    }

    while i < chars.len() {
        let (off, c) = chars[i];
        let was_line_start = line_start;
        line_start = false;
        match c {
            '\\' => match at(i + 1) {
                Some(n) if (1..=126).contains(&(n as u32)) => {
                    out.push(n);
                    i += 2;
                    continue;
                }
                _ => return Err(reserved_err('\\')),
            },
            '\n' => {
                out.push('\n');
                line_start = true;
            }
            '>' if was_line_start => {}
            '*' if was_line_start && at(i + 1) == Some('*') && at(i + 2) == Some('>') => {
                i += 3;
                continue;
            }
            '`' => {
                let pre = at(i + 1) == Some('`') && at(i + 2) == Some('`');
                let start = if pre { i + 3 } else { i + 1 };
                let mut j = start;
                let mut content = String::new();
                let mut closed = None;
                while j < chars.len() {
                    let cj = chars[j].1;
                    if cj == '\\' {
                        match at(j + 1) {
                            Some(n) => {
                                content.push(n);
                                j += 2;
                                continue;
                            }
                            None => break,
                        }
                    }
                    if cj == '`' {
                        if !pre {
                            closed = Some(j + 1);
                            break;
                        }
                        if at(j + 1) == Some('`') && at(j + 2) == Some('`') {
                            closed = Some(j + 3);
                            break;
                        }
                        // An unescaped '`' inside pre must be escaped.
                        return Err(reserved_err('`'));
                    }
                    content.push(cj);
                    j += 1;
                }
                let Some(next) = closed else {
                    let kind = if pre { "Pre" } else { "Code" };
                    return Err(format!("Can't find end of {kind} entity at byte offset {off}"));
                };
                if pre {
                    // ```language\n...```: the first line names the language.
                    if let Some((_, rest)) = content.split_once('\n') {
                        content = rest.to_string();
                    }
                }
                out.push_str(&content);
                i = next;
                continue;
            }
            '*' => toggle(&mut stack, "*", off)?,
            '_' if at(i + 1) == Some('_') => {
                toggle(&mut stack, "__", off)?;
                i += 2;
                continue;
            }
            '_' => toggle(&mut stack, "_", off)?,
            '~' => toggle(&mut stack, "~", off)?,
            '|' if at(i + 1) == Some('|') => {
                toggle(&mut stack, "||", off)?;
                i += 2;
                continue;
            }
            '[' => stack.push(("[", off)),
            '!' if at(i + 1) == Some('[') => {
                stack.push(("![", off));
                i += 2;
                continue;
            }
            ']' if matches!(stack.last(), Some(&("[", _)) | Some(&("![", _))) => {
                let (_, open_off) = stack.pop().unwrap_or(("[", off));
                if at(i + 1) != Some('(') {
                    return Err(reserved_err(']'));
                }
                // The URL part: ')' and '\' must be escaped inside.
                let mut j = i + 2;
                let mut closed = None;
                while j < chars.len() {
                    match chars[j].1 {
                        '\\' => j += 2,
                        ')' => {
                            closed = Some(j + 1);
                            break;
                        }
                        _ => j += 1,
                    }
                }
                let Some(next) = closed else {
                    return Err(format!("Can't find end of a url at byte offset {open_off}"));
                };
                i = next;
                continue;
            }
            c if RESERVED.contains(c) => return Err(reserved_err(c)),
            c => out.push(c),
        }
        i += 1;
    }
    if let Some(&(_, off)) = stack.first() {
        return Err(format!("Can't find end of the entity starting at byte offset {off}"));
    }
    Ok(out)
}

/// "HTML style": tags b, strong, i, em, u, ins, s, strike, del,
/// span class="tg-spoiler", tg-spoiler, a href, tg-emoji, code, pre,
/// blockquote; "All <, > and & symbols that are not a part of a tag or an
/// HTML entity must be replaced with the corresponding HTML entities";
/// named entities &lt; &gt; &amp; &quot; and all numerical entities.
/// (A stray '&' or '>' is passed through, as the service tolerates them.)
fn parse_html(s: &str) -> Result<String, String> {
    const TAGS: &[&str] = &[
        "b",
        "strong",
        "i",
        "em",
        "u",
        "ins",
        "s",
        "strike",
        "del",
        "span",
        "tg-spoiler",
        "a",
        "tg-emoji",
        "code",
        "pre",
        "blockquote",
    ];
    let mut out = String::new();
    let mut stack: Vec<String> = Vec::new();
    let mut rest = s;
    let mut base = 0usize;
    // Bounded: every iteration consumes at least one character.
    while let Some(c) = rest.chars().next() {
        let off = base;
        let step;
        if c == '<' {
            let Some(gt) = rest.find('>') else {
                return Err(format!("Unclosed start tag at byte offset {off}"));
            };
            let inner = &rest[1..gt];
            if let Some(name) = inner.strip_prefix('/') {
                let name = name.trim().to_ascii_lowercase();
                match stack.pop() {
                    Some(open) if open == name => {}
                    Some(open) => {
                        return Err(format!(
                            "Unmatched end tag at byte offset {off}, expected \"</{open}>\", found \"</{name}>\""
                        ))
                    }
                    None => return Err(format!("Unexpected end tag at byte offset {off}")),
                }
            } else {
                let name: String = inner
                    .chars()
                    .take_while(|ch| !ch.is_whitespace() && *ch != '/')
                    .collect::<String>()
                    .to_ascii_lowercase();
                if !TAGS.contains(&name.as_str()) {
                    return Err(format!("Unsupported start tag \"{name}\" at byte offset {off}"));
                }
                if name == "span" && !inner.contains("tg-spoiler") {
                    return Err(format!("Tag \"span\" must have class \"tg-spoiler\" at byte offset {off}"));
                }
                stack.push(name);
            }
            step = gt + 1;
        } else if c == '&' {
            let semi = rest[..rest.len().min(12)].find(';');
            let decoded = semi.and_then(|semi| {
                let ent = &rest[1..semi];
                let ch = match ent {
                    "lt" => Some('<'),
                    "gt" => Some('>'),
                    "amp" => Some('&'),
                    "quot" => Some('"'),
                    _ => {
                        if let Some(hex) = ent.strip_prefix("#x").or_else(|| ent.strip_prefix("#X")) {
                            u32::from_str_radix(hex, 16).ok().and_then(char::from_u32)
                        } else if let Some(dec) = ent.strip_prefix('#') {
                            dec.parse::<u32>().ok().and_then(char::from_u32)
                        } else {
                            None
                        }
                    }
                };
                ch.map(|ch| (ch, semi + 1))
            });
            match decoded {
                Some((ch, len)) => {
                    out.push(ch);
                    step = len;
                }
                None => {
                    out.push('&');
                    step = 1;
                }
            }
        } else {
            out.push(c);
            step = c.len_utf8();
        }
        rest = &rest[step..];
        base += step;
    }
    if let Some(open) = stack.pop() {
        return Err(format!("Can't find end tag corresponding to start tag \"{open}\""));
    }
    Ok(out)
}

/// "Markdown style" (legacy): `*bold*`, `_italic_`, `[text](url)`,
/// `` `code` ``, ```` ```pre``` ````; "To escape characters '_', '*', '`',
/// '[' outside of an entity, prepend the characters '\' before them";
/// "Escaping inside entities is not allowed"; entities cannot be nested.
fn parse_markdown_legacy(s: &str) -> Result<String, String> {
    let chars: Vec<(usize, char)> = s.char_indices().collect();
    let at = |i: usize| chars.get(i).map(|&(_, c)| c);
    let find = |from: usize, pat: &[char]| -> Option<usize> {
        (from..chars.len())
            .find(|&j| pat.iter().enumerate().all(|(k, p)| chars.get(j + k).map(|&(_, c)| c) == Some(*p)))
    };
    let slice = |a: usize, b: usize| -> String { chars[a..b].iter().map(|&(_, c)| c).collect() };
    let unterminated = |off: usize| format!("Can't find end of the entity starting at byte offset {off}");
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let (off, c) = chars[i];
        match c {
            '\\' if matches!(at(i + 1), Some('_' | '*' | '`' | '[')) => {
                out.push(at(i + 1).unwrap_or('\\'));
                i += 2;
            }
            '*' | '_' => {
                let end = find(i + 1, &[c]).ok_or_else(|| unterminated(off))?;
                out.push_str(&slice(i + 1, end));
                i = end + 1;
            }
            '`' if at(i + 1) == Some('`') && at(i + 2) == Some('`') => {
                let end = find(i + 3, &['`', '`', '`']).ok_or_else(|| unterminated(off))?;
                let content = slice(i + 3, end);
                let content = match content.split_once('\n') {
                    Some((_, rest)) => rest.to_string(),
                    None => content,
                };
                out.push_str(&content);
                i = end + 3;
            }
            '`' => {
                let end = find(i + 1, &['`']).ok_or_else(|| unterminated(off))?;
                out.push_str(&slice(i + 1, end));
                i = end + 1;
            }
            '[' => {
                let close = find(i + 1, &[']']).ok_or_else(|| unterminated(off))?;
                if at(close + 1) != Some('(') {
                    return Err(unterminated(off));
                }
                let url_end = find(close + 2, &[')']).ok_or_else(|| unterminated(off))?;
                out.push_str(&slice(i + 1, close));
                i = url_end + 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    Ok(out)
}

// --- application/x-www-form-urlencoded ---------------------------------------

/// Splits `a=1&b=x+y%21` into decoded pairs ('+' is a space).
pub fn form_decode(s: &str) -> Vec<(String, String)> {
    s.split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (pct_decode(k), pct_decode(v))
        })
        .collect()
}

fn pct_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(v) => {
                        out.push(v);
                        i += 3;
                    }
                    Err(_) => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

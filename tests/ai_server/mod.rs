//! A loopback OpenAI-compatible chat server for the AI tests: listens on
//! 127.0.0.1 with an ephemeral port, records every request, and answers
//! each with what the test's handler says (status, headers, body, delay).
//! Nothing here touches the internet.
//!
//! Reply helpers follow the providers' documented shapes: OpenAI's chat
//! completion object and model list, Anthropic's Messages response, model
//! list and error body (`{"type":"error","error":{"type","message"}}`).

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A request as received.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    /// Header names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// When the request was read (for retry-wait bounds).
    pub at: Instant,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// What to answer.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// Held this long before answering.
    pub delay: Duration,
    /// Send no Content-Length (the body ends when the connection closes).
    pub no_length: bool,
}

impl Reply {
    /// A chat completion whose assistant message is `content`, with usage
    /// 480 prompt / 90 completion tokens.
    pub fn chat(content: &str) -> Self {
        let body = serde_json::json!({
            "id": "chatcmpl-test",
            "object": "chat.completion",
            "model": "gpt-4.1",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 480, "completion_tokens": 90, "total_tokens": 570},
        });
        Self::status(200, &body.to_string())
    }

    pub fn status(status: u16, body: &str) -> Self {
        Self { status, headers: Vec::new(), body: body.to_string(), delay: Duration::ZERO, no_length: false }
    }

    /// A chat completion with `usage` as given (`None`: no usage at all).
    pub fn chat_usage(content: &str, finish: &str, usage: Option<serde_json::Value>) -> Self {
        let mut body = serde_json::json!({
            "id": "chatcmpl-test",
            "object": "chat.completion",
            "model": "gpt-4.1",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": finish}],
        });
        if let Some(u) = usage {
            body["usage"] = u;
        }
        Self::status(200, &body.to_string())
    }

    /// An Anthropic Messages response whose text is `content`.
    pub fn anthropic(content: &str, stop_reason: &str, usage: serde_json::Value) -> Self {
        let body = serde_json::json!({
            "id": "msg_test",
            "type": "message",
            "role": "assistant",
            "model": "claude-haiku-4-5-20251001",
            "content": [{"type": "text", "text": content}],
            "stop_reason": stop_reason,
            "stop_sequence": null,
            "usage": usage,
        });
        Self::status(200, &body.to_string())
    }

    /// An Anthropic error body.
    pub fn anthropic_error(status: u16, kind: &str, message: &str) -> Self {
        let body =
            serde_json::json!({"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_test"});
        Self::status(status, &body.to_string())
    }

    /// An OpenAI error body.
    pub fn openai_error(status: u16, message: &str, kind: &str, code: Option<&str>) -> Self {
        let body = serde_json::json!({"error": {"message": message, "type": kind, "param": null, "code": code}});
        Self::status(status, &body.to_string())
    }

    /// A model list (`data[].id`, as OpenAI and Anthropic send it).
    pub fn models(ids: &[&str]) -> Self {
        let data: Vec<serde_json::Value> =
            ids.iter().map(|id| serde_json::json!({"id": id, "object": "model", "type": "model"})).collect();
        Self::status(200, &serde_json::json!({"object": "list", "data": data, "has_more": false}).to_string())
    }

    /// A proxy's HTML error page.
    pub fn html(status: u16, title: &str) -> Self {
        let body = format!(
            "<!DOCTYPE html>\n<html><head><title>{title}</title></head><body><h1>{title}</h1>{}</body></html>",
            "<p>The upstream server did not answer.</p>".repeat(20)
        );
        Self::status(status, &body).header("Content-Type", "text/html; charset=utf-8")
    }

    /// A body of `n` bytes (`x` repeated).
    pub fn huge(status: u16, n: usize) -> Self {
        Self::status(status, &"x".repeat(n))
    }

    pub fn without_length(mut self) -> Self {
        self.no_length = true;
        self
    }

    pub fn header(mut self, k: &str, v: &str) -> Self {
        self.headers.push((k.to_string(), v.to_string()));
        self
    }

    pub fn delayed(mut self, d: Duration) -> Self {
        self.delay = d;
        self
    }
}

type Handler = dyn Fn(usize, &Request) -> Reply + Send + Sync;

/// The running server; stops accepting on drop.
pub struct Server {
    pub addr: SocketAddr,
    requests: Arc<Mutex<Vec<Request>>>,
    stop: Arc<AtomicBool>,
}

impl Server {
    /// `handler(n, request)` answers the n-th request (0-based).
    pub fn start(handler: impl Fn(usize, &Request) -> Reply + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let handler: Arc<Handler> = Arc::new(handler);
        let counter = Arc::new(AtomicUsize::new(0));
        let (reqs, stop2) = (requests.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop2.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let (h, reqs, n, stop3) = (handler.clone(), reqs.clone(), counter.clone(), stop2.clone());
                        std::thread::spawn(move || serve(stream, &*h, &reqs, &n, &stop3));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
        });
        Self { addr, requests, stop }
    }

    /// Always the same reply.
    pub fn always(reply: Reply) -> Self {
        Self::start(move |_, _| reply.clone())
    }

    /// `http://127.0.0.1:PORT/v1`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }

    pub fn count(&self) -> usize {
        self.requests.lock().unwrap().len()
    }

    /// Requests whose path ends with `suffix` (e.g. "/chat/completions").
    pub fn requests_to(&self, suffix: &str) -> Vec<Request> {
        self.requests().into_iter().filter(|r| r.path.split('?').next().unwrap_or("").ends_with(suffix)).collect()
    }

    /// POSTs (chat or messages calls), not model-list GETs.
    pub fn calls(&self) -> usize {
        self.requests().iter().filter(|r| r.method == "POST").count()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// A base URL where nothing listens (connection refused).
pub fn refused_base_url() -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    format!("http://{addr}/v1")
}

fn serve(mut s: TcpStream, h: &Handler, reqs: &Mutex<Vec<Request>>, n: &AtomicUsize, stop: &AtomicBool) {
    s.set_nonblocking(false).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    // One request per connection (we answer Connection: close).
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(k) => buf.extend_from_slice(&chunk[..k]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or("").split(' ');
    let (method, path) = (first.next().unwrap_or("").to_string(), first.next().unwrap_or("").to_string());
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let len: usize = headers.iter().find(|(k, _)| k == "content-length").and_then(|(_, v)| v.parse().ok()).unwrap_or(0);
    while buf.len() < head_end + len {
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(k) => buf.extend_from_slice(&chunk[..k]),
        }
    }
    let body = String::from_utf8_lossy(&buf[head_end..head_end + len]).into_owned();
    let req = Request { method, path, headers, body, at: Instant::now() };
    let idx = n.fetch_add(1, Ordering::SeqCst);
    reqs.lock().unwrap().push(req.clone());
    let reply = h(idx, &req);
    let end = Instant::now() + reply.delay;
    while Instant::now() < end {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let reason = match reply.status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        413 => "Payload Too Large",
        422 => "Unprocessable Entity",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        529 => "Overloaded",
        _ => "Status",
    };
    let mut out = format!("HTTP/1.1 {} {reason}\r\nConnection: close\r\n", reply.status);
    if !reply.headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("content-type")) {
        out.push_str("Content-Type: application/json\r\n");
    }
    if !reply.no_length {
        out.push_str(&format!("Content-Length: {}\r\n", reply.body.len()));
    }
    for (k, v) in &reply.headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    out.push_str(&reply.body);
    let _ = s.write_all(out.as_bytes());
    let _ = s.flush();
}

/// The advice the tests' "clean" reply carries.
pub const CLEAN: &str = r#"{"spread_state":"wide","volatility":"high","direction":"up","confidence":80,"spread_multiplier":1.4,"liquidity_concentration":"bid","risk_signals":["thin asks"],"reason":"bids stack up under the touch"}"#;

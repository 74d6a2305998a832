//! The REST side: a small HTTP/1.1 server on the connection's thread (keep-alive, bounded request
//! size), which hands a WebSocket upgrade of `/ws-api/v3` over to `ws.rs`.
//! Parameters: rest-api.md §General Information on Endpoints (query string and/or
//! `application/x-www-form-urlencoded` body; "If a parameter sent in both the query string and
//! request body, the query string parameter will be used").

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use super::api::{self, Auth, Call, Reply, Transport};
use super::auth;
use super::{Conn, Shared};

/// Largest head or body accepted.
const MAX_HEAD: usize = 16 * 1024;
const MAX_BODY: usize = 64 * 1024;

/// A parsed HTTP request.
pub struct Request {
    pub method: String,
    /// Path without the query.
    pub path: String,
    /// Raw query string, as sent.
    pub query: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

enum ReadOutcome {
    Request(Request),
    Closed,
    Bad(&'static str),
}

fn read_request(sh: &Shared, conn: &Conn, stream: &mut TcpStream, buf: &mut Vec<u8>) -> ReadOutcome {
    let mut chunk = [0u8; 4096];
    loop {
        if sh.shutdown.load(Ordering::SeqCst) || conn.kill.load(Ordering::SeqCst) {
            return ReadOutcome::Closed;
        }
        let mut headers = [httparse::EMPTY_HEADER; 48];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(buf) {
            Ok(httparse::Status::Complete(head_len)) => {
                let method = req.method.unwrap_or("").to_string();
                let target = req.path.unwrap_or("").to_string();
                let hs: Vec<(String, String)> = req
                    .headers
                    .iter()
                    .map(|h| (h.name.to_string(), String::from_utf8_lossy(h.value).into_owned()))
                    .collect();
                let len = hs
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
                    .map(|(_, v)| v.trim().parse::<usize>());
                let len = match len {
                    None => 0,
                    Some(Ok(l)) if l <= MAX_BODY => l,
                    _ => return ReadOutcome::Bad("bad or too large Content-Length"),
                };
                if buf.len() >= head_len + len {
                    let body = buf[head_len..head_len + len].to_vec();
                    buf.drain(..head_len + len);
                    let (path, query) = match target.split_once('?') {
                        Some((p, q)) => (p.to_string(), q.to_string()),
                        None => (target.clone(), String::new()),
                    };
                    return ReadOutcome::Request(Request { method, path, query, headers: hs, body });
                }
            }
            Ok(httparse::Status::Partial) => {
                if buf.len() > MAX_HEAD + MAX_BODY {
                    return ReadOutcome::Bad("request too large");
                }
            }
            Err(_) => return ReadOutcome::Bad("malformed HTTP request"),
        }
        match stream.read(&mut chunk) {
            Ok(0) => return ReadOutcome::Closed,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut | std::io::ErrorKind::Interrupted
                ) => {}
            Err(_) => return ReadOutcome::Closed,
        }
    }
}

/// Serves one connection until it closes, the double stops, or it is upgraded to WebSocket.
pub fn serve(sh: &Arc<Shared>, mut stream: TcpStream, conn: &Arc<Conn>) {
    let _ = stream.set_read_timeout(Some(Duration::from_millis(20)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(5)));
    let _ = stream.set_nodelay(true);
    let mut buf = Vec::new();
    for _ in 0..1_000_000 {
        let req = match read_request(sh, conn, &mut stream, &mut buf) {
            ReadOutcome::Request(r) => r,
            ReadOutcome::Closed => break,
            ReadOutcome::Bad(why) => {
                let _ = write_response(
                    &mut stream,
                    400,
                    &[],
                    &json!({"code": -1000, "msg": format!("The double could not read the request: {why}.")})
                        .to_string(),
                    true,
                );
                break;
            }
        };
        if req.header("upgrade").is_some_and(|u| u.eq_ignore_ascii_case("websocket")) {
            super::ws::serve(sh, stream, conn, &req, std::mem::take(&mut buf));
            return;
        }
        let close = req.header("connection").is_some_and(|c| c.eq_ignore_ascii_case("close"));
        let (status, headers, body, extra) = answer(sh, &req);
        wait(sh, sh.answer_delay().saturating_add(extra));
        if write_response(&mut stream, status, &headers, &body, close).is_err() || close {
            break;
        }
    }
    let _ = stream.shutdown(Shutdown::Both);
}

/// Sleeps `d`, waking early when the double stops.
pub fn wait(sh: &Shared, d: Duration) {
    let end = super::after(d);
    while Instant::now() < end && !sh.shutdown.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(2).min(end.saturating_duration_since(Instant::now())));
    }
}

/// Decodes `a=1&b=2` into pairs; `None` when a component is not valid percent-encoding.
pub fn parse_form(raw: &str) -> Option<Vec<(String, String)>> {
    raw.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            Some((auth::url_decode(k)?, auth::url_decode(v)?))
        })
        .collect()
}

fn answer(sh: &Arc<Shared>, req: &Request) -> (u16, Vec<(String, String)>, String, Duration) {
    let Some(method) = api::rest_method(&req.method, &req.path) else {
        // Every REST endpoint is covered by a ban, including unknown ones.
        let now = sh.now_ms();
        let banned = sh.lock().limiter.check_ban(now).is_err();
        let status = if banned { 418 } else { 404 };
        return (
            status,
            vec![],
            json!({"code": -1000, "msg": format!("The double does not serve {} {}.", req.method, req.path)})
                .to_string(),
            Duration::ZERO,
        );
    };
    let body = String::from_utf8_lossy(&req.body).into_owned();
    let (Some(q), Some(b)) = (parse_form(&req.query), parse_form(&body)) else {
        return (
            400,
            vec![],
            json!({"code": -1100, "msg": "Illegal characters found in a parameter."}).to_string(),
            Duration::ZERO,
        );
    };
    // errors.md §-1101: "Duplicate values for a parameter detected." (within one of query or body;
    // between them the query wins, rest-api.md §General Information on Endpoints).
    for part in [&q, &b] {
        let mut seen = std::collections::BTreeSet::new();
        if part.iter().any(|(k, _)| !seen.insert(k.as_str())) {
            return (
                400,
                vec![],
                json!({"code": -1101, "msg": "Duplicate values for a parameter detected."}).to_string(),
                Duration::ZERO,
            );
        }
    }
    let mut params = BTreeMap::new();
    for (k, v) in b.into_iter().chain(q) {
        params.insert(k, v); // query inserted last wins
    }
    let (q_rest, q_sig) = auth::split_signature(&req.query);
    let (b_rest, b_sig) = auth::split_signature(&body);
    let payload = format!("{q_rest}{b_rest}").into_bytes();
    let call = Call {
        transport: Transport::Rest,
        method: method.to_string(),
        label: format!("{} {}", req.method, req.path),
        params,
        auth: Auth::Rest {
            api_key: req.header("x-mbx-apikey").map(str::to_string),
            payload,
            signature: q_sig.or(b_sig),
        },
    };
    let rep = api::handle(sh, call);
    if rep.ban_started {
        sh.kill_ws(false);
    }
    let extra = rep.extra_delay;
    let (status, headers, body) = frame(sh, rep);
    (status, headers, body, extra)
}

/// Status, rate-limit headers (rest-api.md §IP Limits, §Unfilled Order Count) and body.
fn frame(sh: &Shared, rep: Reply) -> (u16, Vec<(String, String)>, String) {
    let now = sh.now_ms();
    let mut h = Vec::new();
    {
        let mut st = sh.lock();
        h.push(("X-MBX-USED-WEIGHT-1M".to_string(), st.limiter.weight_used(now).to_string()));
        if rep.ok && rep.order_request {
            let (o10, od) = st.limiter.orders_used(now);
            h.push(("X-MBX-ORDER-COUNT-10S".to_string(), o10.to_string()));
            h.push(("X-MBX-ORDER-COUNT-1D".to_string(), od.to_string()));
        }
    }
    if let Some(s) = rep.retry_after_s {
        h.push(("Retry-After".to_string(), s.to_string()));
    }
    (rep.status, h, rep.body.to_string())
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        409 => "Conflict",
        418 => "I'm a teapot",
        429 => "Too Many Requests",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

pub fn write_response(
    stream: &mut TcpStream,
    status: u16,
    headers: &[(String, String)],
    body: &str,
    close: bool,
) -> std::io::Result<()> {
    let mut out = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: application/json;charset=UTF-8\r\nContent-Length: {}\r\n",
        reason(status),
        body.len()
    );
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str(if close { "Connection: close\r\n\r\n" } else { "Connection: keep-alive\r\n\r\n" });
    out.push_str(body);
    stream.write_all(out.as_bytes())?;
    stream.flush()
}

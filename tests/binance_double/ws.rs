//! The WebSocket API at `/ws-api/v3` (web-socket-api.md): JSON requests in text frames,
//! `{"id","status","result"|"error","rateLimits"}` responses, `session.logon` (Ed25519 only),
//! user-data subscriptions whose events arrive as `{"subscriptionId": N, "event": {...}}`, and the
//! `serverShutdown` connection event. Each connection runs on its own thread; pushed frames come
//! through a bounded channel.

use std::collections::BTreeMap;
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::Ordering;
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Map, Value};
use tungstenite::protocol::{Role, WebSocketConfig};
use tungstenite::{Message, WebSocket};

use super::api::{self, Auth, Call, Reply, Transport};
use super::config::KeySecret;
use super::http::{parse_form, write_response, Request};
use super::{Conn, Shared};

/// Frames queued per connection before it is dropped as too slow.
const QUEUE: usize = 4096;
/// Answers waiting for their delay, per connection.
const MAX_PENDING: usize = 1024;

/// Per-connection session state (web-socket-api.md §Session Authentication).
struct Session {
    key: Option<String>,
    authorized_since: Option<i64>,
    connected_since: i64,
    return_rate_limits: bool,
    next_subscription: i64,
    /// The subscription made with `userDataStream.subscribe` (ended by `session.logout`).
    logon_subscription: Option<i64>,
}

/// Ends the connection's subscription with `eventStreamTerminated` (user-data-stream.md §Event Stream Terminated).
fn terminate(sh: &Shared, conn: &Conn) {
    let id = lock(&conn.subscription).take();
    if let Some(id) = id {
        let frame =
            json!({"subscriptionId": id, "event": {"e": "eventStreamTerminated", "E": sh.now_ms()}}).to_string();
        sh.send_to(conn, frame);
    }
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Completes the upgrade and serves the connection.
/// `early` holds bytes the client sent after the upgrade request.
pub fn serve(sh: &Arc<Shared>, mut stream: TcpStream, conn: &Arc<Conn>, req: &Request, early: Vec<u8>) {
    if req.path != "/ws-api/v3" {
        let _ = write_response(&mut stream, 404, &[], &json!({"code": -1000, "msg": format!("The double serves the WebSocket API at /ws-api/v3, not {}.", req.path)}).to_string(), true);
        return;
    }
    // web-socket-api.md §IP limits: "Connecting to WebSocket API costs 2 weight"; a banned IP is
    // refused at connect, and the attempt is counted.
    let now = sh.now_ms();
    let refused = {
        let mut st = sh.lock();
        st.limiter.add_weight(2, now).err()
    };
    if let Some(r) = refused {
        let (status, retry, msg) = match r {
            super::limits::Refused::Banned { until_ms, retry_after_s } => {
                (418, retry_after_s, format!("Way too much request weight used; IP banned until {until_ms}. Please use WebSocket Streams for live updates to avoid bans."))
            }
            super::limits::Refused::Weight { retry_after_s, .. } | super::limits::Refused::Orders { retry_after_s, .. } => (429, retry_after_s, "Too much request weight used.".to_string()),
        };
        let _ = write_response(
            &mut stream,
            status,
            &[("Retry-After".into(), retry.to_string())],
            &json!({"code": -1003, "msg": msg}).to_string(),
            true,
        );
        return;
    }
    let Some(key) = req.header("sec-websocket-key") else {
        let _ = write_response(
            &mut stream,
            400,
            &[],
            &json!({"code": -1000, "msg": "WebSocket upgrade without Sec-WebSocket-Key."}).to_string(),
            true,
        );
        return;
    };
    // RFC 6455 §4.2.2: accept = base64(SHA-1(key + GUID)).
    let digest = ring::digest::digest(
        &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
        format!("{}258EAFA5-E914-47DA-95CA-C5AB0DC85B11", key.trim()).as_bytes(),
    );
    let accept = base64::engine::general_purpose::STANDARD.encode(digest.as_ref());
    let head = format!("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n");
    if std::io::Write::write_all(&mut stream, head.as_bytes()).is_err() {
        return;
    }
    let _ = stream.set_read_timeout(Some(Duration::from_millis(5)));
    let return_rate_limits = parse_form(&req.query)
        .and_then(|q| q.into_iter().find(|(k, _)| k == "returnRateLimits"))
        .is_none_or(|(_, v)| v != "false");
    let (tx, rx) = sync_channel::<String>(QUEUE);
    *lock(&conn.tx) = Some(tx);
    conn.is_ws.store(true, Ordering::SeqCst);
    let cfg = WebSocketConfig::default().max_message_size(Some(64 * 1024)).max_frame_size(Some(64 * 1024));
    let mut ws = WebSocket::from_partially_read(stream, early, Role::Server, Some(cfg));
    let mut session = Session {
        key: None,
        authorized_since: None,
        connected_since: now,
        return_rate_limits,
        next_subscription: 0,
        logon_subscription: None,
    };
    run(sh, conn, &mut ws, &rx, &mut session);
    *lock(&conn.tx) = None;
    *lock(&conn.subscription) = None;
    let _ = ws.get_mut().shutdown(Shutdown::Both);
}

fn run(
    sh: &Arc<Shared>,
    conn: &Arc<Conn>,
    ws: &mut WebSocket<TcpStream>,
    rx: &Receiver<String>,
    session: &mut Session,
) {
    let mut pending: Vec<(Instant, String)> = Vec::new();
    let mut last_ping = Instant::now();
    let mut awaiting_pong_since: Option<Instant> = None;
    for _ in 0..100_000_000u64 {
        // web-socket-api.md §General API Information: server pings; no pong within the timeout closes.
        if let Some(every) = sh.cfg.ws_ping_interval {
            if last_ping.elapsed() >= every {
                last_ping = Instant::now();
                if ws.send(Message::Ping(b"dbl".to_vec().into())).is_err() {
                    return;
                }
                awaiting_pong_since.get_or_insert(last_ping);
            }
        }
        if awaiting_pong_since.is_some_and(|t| t.elapsed() >= sh.cfg.ws_pong_timeout) {
            let _ = ws.close(None);
            let _ = ws.flush();
            return;
        }
        if conn.kill.load(Ordering::SeqCst) {
            return; // dropped: no close frame
        }
        if sh.shutdown.load(Ordering::SeqCst) {
            let _ = ws.close(None);
            let _ = ws.flush();
            return;
        }
        let close_at = conn.close_at.load(Ordering::SeqCst);
        if close_at > 0 && sh.since_start_ms() >= close_at {
            let _ = ws.close(None);
            let _ = ws.flush();
            return;
        }
        while let Ok(frame) = rx.try_recv() {
            if ws.send(Message::text(frame)).is_err() {
                return;
            }
        }
        let now = Instant::now();
        let mut i = 0;
        while i < pending.len() {
            if pending[i].0 <= now {
                let (_, f) = pending.remove(i);
                if ws.send(Message::text(f)).is_err() {
                    return;
                }
            } else {
                i += 1;
            }
        }
        match ws.read() {
            Ok(Message::Text(t)) => {
                let (frame, rep_ban, extra) = answer(sh, conn, session, t.as_str());
                if rep_ban {
                    let _ = ws.send(Message::text(frame));
                    sh.kill_ws(false);
                    return;
                }
                let delay = sh.answer_delay().saturating_add(extra);
                if delay.is_zero() {
                    if ws.send(Message::text(frame)).is_err() {
                        return;
                    }
                } else if pending.len() < MAX_PENDING {
                    pending.push((super::after(delay), frame));
                }
            }
            Ok(Message::Binary(_)) => {
                let f = json!({"id": null, "status": 400, "error": {"code": -1135, "msg": "Invalid JSON Request"}})
                    .to_string();
                if ws.send(Message::text(f)).is_err() {
                    return;
                }
            }
            Ok(Message::Close(_)) => {
                let _ = ws.flush();
                return;
            }
            Ok(Message::Pong(_)) => awaiting_pong_since = None,
            Ok(_) => {
                let _ = ws.flush(); // sends the automatic pong
            }
            Err(tungstenite::Error::Io(e))
                if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) =>
            {
                let _ = ws.flush();
            }
            Err(_) => return,
        }
    }
}

/// JSON value → the string used in the signature payload and as the parameter.
fn param_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        other => Some(other.to_string()),
    }
}

/// Answers one text frame; returns the response frame and whether a ban began.
fn answer(sh: &Arc<Shared>, conn: &Arc<Conn>, session: &mut Session, text: &str) -> (String, bool, Duration) {
    let parsed: Option<Map<String, Value>> = serde_json::from_str::<Value>(text).ok().and_then(|v| match v {
        Value::Object(m) => Some(m),
        _ => None,
    });
    let Some(obj) = parsed else {
        return (
            json!({"id": null, "status": 400, "error": {"code": -1135, "msg": "Invalid JSON Request"}}).to_string(),
            false,
            Duration::ZERO,
        );
    };
    let id = obj.get("id").cloned().unwrap_or(Value::Null);
    let Some(method) = obj.get("method").and_then(Value::as_str) else {
        return (json!({"id": id, "status": 400, "error": {"code": -1102, "msg": "Mandatory parameter 'method' was not sent, was empty/null, or malformed."}}).to_string(), false, Duration::ZERO);
    };
    // web-socket-api.md §Request format: "method names may be prefixed with explicit version".
    let method = method.strip_prefix("v3/").unwrap_or(method).to_string();
    let mut params = BTreeMap::new();
    match obj.get("params") {
        None | Some(Value::Null) => {}
        Some(Value::Object(p)) => {
            for (k, v) in p {
                if let Some(s) = param_string(v) {
                    params.insert(k.clone(), s);
                }
            }
        }
        Some(_) => {
            return (
                json!({"id": id, "status": 400, "error": {"code": -1135, "msg": "Invalid JSON Request"}}).to_string(),
                false,
                Duration::ZERO,
            )
        }
    }
    let show_limits = params.get("returnRateLimits").map_or(session.return_rate_limits, |v| v != "false");
    let call = Call {
        transport: Transport::Ws,
        method: method.clone(),
        label: method.clone(),
        params,
        auth: Auth::Ws { session_key: session.key.clone() },
    };
    let rep = if method.starts_with("session.") || method.starts_with("userDataStream.") {
        session_method(sh, conn, session, call)
    } else {
        api::handle(sh, call)
    };
    let now = sh.now_ms();
    let mut out = Map::new();
    out.insert("id".into(), id);
    out.insert("status".into(), json!(rep.status));
    if rep.ok {
        out.insert("result".into(), rep.body);
    } else {
        let mut err = rep.body;
        if let (Some(at), Some(m)) = (rep.retry_at_ms, err.as_object_mut()) {
            // web-socket-api.md §IP limits: `error.data` carries `serverTime` and `retryAfter`.
            m.entry("data").or_insert(json!({"serverTime": now, "retryAfter": at}));
        }
        out.insert("error".into(), err);
    }
    if show_limits {
        let mut st = sh.lock();
        out.insert("rateLimits".into(), st.limiter.ws_rate_limits(rep.order_request, now));
    }
    (Value::Object(out).to_string(), rep.ban_started, rep.extra_delay)
}

fn status_json(sh: &Shared, conn: &Conn, s: &Session) -> Value {
    json!({"apiKey": s.key, "authorizedSince": s.authorized_since, "connectedSince": s.connected_since,
        "returnRateLimits": s.return_rate_limits, "serverTime": sh.now_ms(),
        "userDataStream": lock(&conn.subscription).is_some()})
}

/// web-socket-api.md §Authentication requests and §User Data Stream requests.
fn session_method(sh: &Arc<Shared>, conn: &Arc<Conn>, s: &mut Session, call: Call) -> Reply {
    let now = sh.now_ms();
    {
        let mut st = sh.lock();
        if let Some(rep) = api::admit(sh, &mut st, &call, now) {
            return rep;
        }
    }
    let p = &call.params;
    let key_of = |k: &str| sh.cfg.keys.iter().find(|x| x.key == k).cloned();
    let subscribe = |s: &mut Session| -> Reply {
        let mut sub = lock(&conn.subscription);
        if sub.is_some() {
            // "You can have only one active subscription for a given account on a given connection."
            return Reply::err(400, -2035, "User Data Stream subscription already active.");
        }
        let id = s.next_subscription;
        s.next_subscription += 1;
        *sub = Some(id);
        Reply::ok(json!({"subscriptionId": id}))
    };
    match call.method.as_str() {
        "session.logon" => {
            let Some(k) = p.get("apiKey").and_then(|k| key_of(k)) else {
                return Reply::err(401, -2015, "Invalid API-key, IP, or permissions for action.");
            };
            // "Only Ed25519 keys are supported for this feature." The code is UNVERIFIED (-1002 is the double's choice).
            if !matches!(k.secret, KeySecret::Ed25519Public(_)) {
                return Reply::err(
                    400,
                    -1002,
                    "You are not authorized to execute this request. (session.logon needs an Ed25519 key)",
                );
            }
            s.key = Some(k.key.clone());
            s.authorized_since = Some(now);
            Reply::ok(status_json(sh, conn, s))
        }
        "session.status" => Reply::ok(status_json(sh, conn, s)),
        "session.logout" => {
            // user-data-stream.md §Event Stream Terminated: a logon subscription ends on logout.
            if s.key.is_some() && s.logon_subscription.is_some() && *lock(&conn.subscription) == s.logon_subscription {
                terminate(sh, conn);
            }
            s.key = None;
            s.authorized_since = None;
            s.logon_subscription = None;
            Reply::ok(status_json(sh, conn, s))
        }
        "session.subscriptions" => {
            let v: Vec<Value> = lock(&conn.subscription).iter().map(|id| json!({"subscriptionId": id})).collect();
            Reply::ok(Value::Array(v))
        }
        "userDataStream.subscribe" => {
            // "This method requires an authenticated WebSocket connection using Ed25519 keys."
            // The code is UNVERIFIED (-1002 is the double's choice).
            if s.key.is_none() {
                return Reply::err(400, -1002, "You are not authorized to execute this request. (userDataStream.subscribe needs session.logon first)");
            }
            let rep = subscribe(s);
            if rep.ok {
                s.logon_subscription = *lock(&conn.subscription);
            }
            rep
        }
        "userDataStream.subscribe.signature" => {
            if !p.contains_key("apiKey") {
                return Reply::err(
                    400,
                    -1102,
                    "Mandatory parameter 'apiKey' was not sent, was empty/null, or malformed.",
                );
            }
            subscribe(s)
        }
        "userDataStream.unsubscribe" => {
            let want = p.get("subscriptionId").and_then(|v| v.parse::<i64>().ok());
            let current = *lock(&conn.subscription);
            if current.is_some() && (want.is_none() || current == want) {
                terminate(sh, conn);
            }
            Reply::ok(json!({}))
        }
        other => {
            Reply::err(400, -1020, &format!("This operation is not supported. (the double does not serve '{other}')"))
        }
    }
}

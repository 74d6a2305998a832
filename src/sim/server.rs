//! The simulator's network side: one listener serving Binance-compatible
//! WebSocket streams and REST endpoints on the same port, one thread per
//! connection (a test double, not a production server).
//!
//! WebSocket: `/ws/<stream>/<stream>...` (raw payloads) and
//! `/stream?streams=a/b` (combined wrapper `{"stream":..,"data":..}`), with
//! optional `/public` or `/market` prefixes as on USD-M. Streams:
//! `<symbol>@depth[@100ms]`, `@depth20[@100ms]`, `@trade`, `@bookTicker`.
//! The server pings every `ping_every` and checks each pong carries the
//! ping's payload, as Binance does.
//!
//! REST: `/api/v3/depth`, `/fapi/v1/depth` (snapshots consistent with the
//! streams: the book at its current update id, which the next diff
//! straddles), `/api/v3/exchangeInfo` (printed from the exchange's symbol
//! specs), `/api/v3/time`, `/fapi/v1/time`; and the signed trading
//! endpoints of [`crate::sim::exchange`] (orders, cancels, cancelReplace,
//! queries, account, myTrades). The WebSocket API is on `/ws-api/v3`: the
//! same engine's methods, the `depth` market-data request (answered while
//! the `rest_ban_for` fault refuses REST), user-data subscriptions,
//! answers held by the delay faults sent when due (out of order when so),
//! and `serverShutdown`.
//!
//! Every REST answer carries the IP's `X-MBX-USED-WEIGHT-1M`. An IP ban
//! (the 418 fault) covers everything: REST answers 418, WebSocket connects
//! are refused, open connections are dropped. Each connection has its own
//! thread, so a slow answer to one request never holds up another's.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tungstenite::protocol::Role;
use tungstenite::{Message, WebSocket};

use crate::sim::exchange::limits::Admit;
use crate::sim::exchange::ws_api::server_shutdown_event;
use crate::sim::exchange::{Exchange, Reply, Request, WsSession};
use crate::sim::faults::{Faults, MALFORMED};
use crate::sim::flow::{SimMarket, StreamKind};
use crate::sim::market::{parse_stream_name, MarketState, Outgoing};

/// Counters of the simulator, readable while it runs.
#[derive(Debug, Default)]
pub struct SimCounters {
    pub ws_connections: AtomicU64,
    pub ws_refused: AtomicU64,
    pub frames_sent: AtomicU64,
    pub diffs_dropped: AtomicU64,
    pub malformed_sent: AtomicU64,
    pub shutdowns_sent: AtomicU64,
    pub forced_disconnects: AtomicU64,
    pub snapshots_served: AtomicU64,
    pub stale_snapshots_served: AtomicU64,
    pub pings_sent: AtomicU64,
    /// Pongs that carried our ping's payload / that did not.
    pub pongs_ok: AtomicU64,
    pub pongs_bad: AtomicU64,
    /// Pings from clients (answered unless `ignore_pings`).
    pub client_pings: AtomicU64,
    pub rest_requests: AtomicU64,
    pub bad_requests: AtomicU64,
    /// Clients dropped for not keeping up.
    pub slow_clients: AtomicU64,
    /// Diff copies sent with jumped or inverted update ids.
    pub ids_jumped: AtomicU64,
    /// REST snapshots served without a level (the omit-level fault).
    pub snapshot_levels_omitted: AtomicU64,
    /// REST requests refused while the WS-API stayed open (`rest_ban_for`).
    pub rest_refused: AtomicU64,
}

/// What every connection thread shares.
pub struct Shared {
    pub market: Arc<Mutex<MarketState>>,
    pub faults: Faults,
    pub ping_every: Duration,
    pub started: Instant,
    pub counters: SimCounters,
    pub stop: AtomicBool,
    /// The market is frozen (tests compare books): the connection faults
    /// that are timed (disconnect, serverShutdown, unanswered pings) wait
    /// too, so a frozen market is a quiet, healthy one.
    pub paused: AtomicBool,
    /// Broadcast: one bounded queue per live WebSocket client; a client that
    /// falls this far behind is dropped, as an exchange drops slow readers.
    pub clients: Mutex<Vec<SyncSender<Arc<Outgoing>>>>,
    /// Market-stream connects still to refuse after a flap (the
    /// `refuse_after_disconnect` fault).
    pub refusals_owed: AtomicU64,
    /// The trading side: accounts, orders, the matching engine.
    pub exchange: Exchange,
}

/// Frames queued per client before it counts as too slow.
pub const CLIENT_QUEUE: usize = 1 << 16;

/// Accepts connections until `stop`.
pub fn serve(listener: TcpListener, shared: Arc<Shared>) {
    let _ = listener.set_nonblocking(true);
    while !shared.stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((sock, _)) => {
                // Accepted sockets may inherit the listener's non-blocking
                // mode (BSDs do); the handlers want blocking with timeouts.
                let _ = sock.set_nonblocking(false);
                let sh = shared.clone();
                let _ = std::thread::Builder::new().name("mmbot-sim-conn".into()).spawn(move || {
                    let _ = handle(sock, &sh);
                });
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::sleep(Duration::from_millis(2)),
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}

/// Reads one HTTP request head (up to 16 KiB).
fn read_head(sock: &mut TcpStream) -> io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    let deadline = Instant::now() + Duration::from_secs(5);
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        if head.len() > 16 << 10 || Instant::now() > deadline {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "request head too long or too slow"));
        }
        let n = sock.read(&mut buf)?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "closed before the request head"));
        }
        head.extend_from_slice(&buf[..n]);
    }
    Ok(head)
}

fn respond(sock: &mut TcpStream, status: &str, body: &str, extra: &str) -> io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json;charset=UTF-8\r\nContent-Length: {}\r\n{extra}Connection: close\r\n\r\n",
        body.len()
    );
    sock.write_all(head.as_bytes())?;
    sock.write_all(body.as_bytes())?;
    sock.flush()
}

fn handle(mut sock: TcpStream, sh: &Shared) -> io::Result<()> {
    sock.set_read_timeout(Some(Duration::from_secs(5)))?;
    let _ = sock.set_nodelay(true);
    let head = read_head(&mut sock)?;
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut req = httparse::Request::new(&mut headers);
    if !matches!(req.parse(&head), Ok(httparse::Status::Complete(_))) {
        sh.counters.bad_requests.fetch_add(1, Ordering::Relaxed);
        return respond(&mut sock, "400 Bad Request", r#"{"code":-1100,"msg":"Malformed request."}"#, "");
    }
    let path = req.path.unwrap_or("/").to_string();
    let method = req.method.unwrap_or("GET").to_string();
    let head_len = match req.parse(&head) {
        Ok(httparse::Status::Complete(n)) => n,
        _ => head.len(),
    };
    let header = |name: &str| {
        req.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .and_then(|h| std::str::from_utf8(h.value).ok())
            .map(str::to_string)
    };
    if header("upgrade").is_some_and(|u| u.eq_ignore_ascii_case("websocket")) {
        let key = header("sec-websocket-key").unwrap_or_default();
        return websocket(sock, sh, &path, &key);
    }
    let api_key = header("x-mbx-apikey");
    let body_len = header("content-length").and_then(|v| v.trim().parse::<usize>().ok()).unwrap_or(0);
    if body_len > MAX_BODY {
        sh.counters.bad_requests.fetch_add(1, Ordering::Relaxed);
        return respond(&mut sock, "413 Payload Too Large", r#"{"code":-1100,"msg":"Request body too large."}"#, "");
    }
    let mut body = head.get(head_len..).unwrap_or_default().to_vec();
    let mut buf = [0u8; 1024];
    while body.len() < body_len {
        let n = sock.read(&mut buf)?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&buf[..n]);
    }
    body.truncate(body_len);
    let body = String::from_utf8_lossy(&body).into_owned();
    rest(sock, sh, &method, &path, api_key.as_deref(), &body)
}

/// Largest request body read (Binance parameters are a few hundred bytes).
const MAX_BODY: usize = 64 << 10;

/// Splits `/path?a=1&b=2` and finds a query parameter.
fn query<'a>(path: &'a str, name: &str) -> Option<&'a str> {
    let (_, q) = path.split_once('?')?;
    q.split('&').find_map(|kv| kv.split_once('=').filter(|(k, _)| *k == name).map(|(_, v)| v))
}

fn rest(
    mut sock: TcpStream,
    sh: &Shared,
    method: &str,
    path: &str,
    api_key: Option<&str>,
    body: &str,
) -> io::Result<()> {
    sh.counters.rest_requests.fetch_add(1, Ordering::Relaxed);
    if let Some(left) = sh.faults.rest_ban_for.checked_sub(sh.started.elapsed()).filter(|d| !d.is_zero()) {
        if !sh.exchange.banned() {
            return rest_refused(&mut sock, sh, left);
        }
    }
    let (route, raw_query) = path.split_once('?').unwrap_or((path, ""));
    // The exchange's clock (the clock-offset fault shifts it).
    let now_ms = sh.exchange.now_ms();
    let req = Request { method, route, query: raw_query, body, api_key };
    let book = |symbol: &str| {
        let m = sh.market.lock().unwrap_or_else(|p| p.into_inner());
        m.symbol_index(symbol).and_then(|i| m.true_book(i))
    };
    if let Some(reply) = sh.exchange.handle(&req, &book) {
        if !reply.delay.is_zero() {
            std::thread::sleep(reply.delay);
        }
        return respond(&mut sock, &status_line(reply.status), &reply.body, &reply.headers);
    }
    // Public endpoints count toward the IP's weight and are banned with
    // it (rest-api.md §LIMITS: "The limits on the API are based on the IPs").
    let limit = query(path, "limit").and_then(|l| l.parse::<usize>().ok()).unwrap_or(100).clamp(1, 5000);
    let weight = match route {
        "/api/v3/depth" => spot_depth_weight(limit),
        "/fapi/v1/depth" => usdm_depth_weight(limit),
        "/api/v3/exchangeInfo" | "/fapi/v1/exchangeInfo" => 20,
        _ => 1,
    };
    let slow = sh.faults.slow_answers;
    let w = match sh.exchange.admit(Admit::Rest(weight)) {
        Ok(usage) => usage.headers(),
        Err(e) => {
            let r = Reply::error(&e, sh.exchange.used_weight(), slow);
            std::thread::sleep(r.delay);
            return respond(&mut sock, &status_line(r.status), &r.body, &r.headers);
        }
    };
    if !slow.is_zero() {
        std::thread::sleep(slow);
    }
    match route {
        "/api/v3/depth" | "/fapi/v1/depth" => {
            let Some(symbol) = query(path, "symbol") else {
                return respond(
                    &mut sock,
                    "400 Bad Request",
                    r#"{"code":-1102,"msg":"Mandatory parameter 'symbol' was not sent, was empty/null, or malformed."}"#,
                    &w,
                );
            };
            let market = sh.market.lock().unwrap_or_else(|p| p.into_inner());
            let Some(i) = market.symbol_index(symbol) else {
                drop(market);
                return respond(&mut sock, "400 Bad Request", r#"{"code":-1121,"msg":"Invalid symbol."}"#, &w);
            };
            let served = sh.counters.snapshots_served.fetch_add(1, Ordering::Relaxed);
            let stale = served < sh.faults.stale_snapshots as u64;
            let body = if !stale && sh.faults.omit_snapshot_bid > 0 {
                market.snapshot_without_bid(i, limit, sh.faults.omit_snapshot_bid).map(|(b, omitted)| {
                    if omitted {
                        sh.counters.snapshot_levels_omitted.fetch_add(1, Ordering::Relaxed);
                    }
                    b
                })
            } else {
                market.snapshot(i, limit, stale)
            };
            drop(market);
            match body {
                Some(b) => {
                    if stale {
                        sh.counters.stale_snapshots_served.fetch_add(1, Ordering::Relaxed);
                    }
                    respond(&mut sock, "200 OK", &b, &w)
                }
                None => respond(
                    &mut sock,
                    "503 Service Unavailable",
                    r#"{"code":-1001,"msg":"Internal error; the book is not ready yet."}"#,
                    &w,
                ),
            }
        }
        "/api/v3/time" | "/fapi/v1/time" => respond(&mut sock, "200 OK", &format!("{{\"serverTime\":{now_ms}}}"), &w),
        "/api/v3/exchangeInfo" | "/fapi/v1/exchangeInfo" => {
            respond(&mut sock, "200 OK", &sh.exchange.exchange_info_json(), &w)
        }
        _ => {
            sh.counters.bad_requests.fetch_add(1, Ordering::Relaxed);
            respond(&mut sock, "404 Not Found", r#"{"code":-1000,"msg":"Unknown endpoint."}"#, &w)
        }
    }
}

/// rest-api.md §Order book and web-socket-api.md §Market data requests,
/// Order book (`depth`): the same weight by limit on both.
pub(crate) fn spot_depth_weight(limit: usize) -> u64 {
    match limit {
        0..=100 => 5,
        101..=500 => 25,
        501..=1000 => 50,
        _ => 250,
    }
}

/// The `rest_ban_for` fault: HTTP 429 `-1003` for the RAW_REQUESTS limit,
/// which only REST has (CHANGELOG: the WS-API "removed `RAW REQUESTS` rate
/// limit ... replaced it with `CONNECTIONS`"), with `Retry-After` for the
/// time left (rest-api.md §LIMITS: 429s carry it).
fn rest_refused(sock: &mut TcpStream, sh: &Shared, left: Duration) -> io::Result<()> {
    sh.counters.rest_refused.fetch_add(1, Ordering::Relaxed);
    let body = format!(
        "{{\"code\":-1003,\"msg\":\"Too many requests; current limit is {} requests per 5 MINUTE.\"}}",
        sh.exchange.cfg.limits.raw_requests_per_5m
    );
    let headers = format!(
        "X-MBX-USED-WEIGHT-1M: {}\r\nRetry-After: {}\r\n",
        sh.exchange.used_weight(),
        left.as_secs() + u64::from(left.subsec_nanos() > 0)
    );
    respond(sock, "429 Too Many Requests", &body, &headers)
}

/// USD-M `GET /fapi/v1/depth` (FACTS 1.7): weight by limit.
fn usdm_depth_weight(limit: usize) -> u64 {
    match limit {
        0..=50 => 2,
        51..=100 => 5,
        101..=500 => 10,
        _ => 20,
    }
}

fn status_line(code: u16) -> String {
    let text = match code {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        409 => "Conflict",
        418 => "I'm a teapot",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Error",
    };
    format!("{code} {text}")
}

/// A client's subscription: (symbol index, kind, the name it asked for).
type Subscription = Vec<(usize, StreamKind, String)>;

fn subscription(sh: &Shared, path: &str) -> Option<(Subscription, bool)> {
    let path = path.strip_prefix("/public").or_else(|| path.strip_prefix("/market")).unwrap_or(path);
    let (names, combined) = if let Some(rest) = path.strip_prefix("/ws/") {
        (rest.to_string(), false)
    } else if path.starts_with("/stream") {
        (query(path, "streams")?.to_string(), true)
    } else {
        return None;
    };
    let market = sh.market.lock().unwrap_or_else(|p| p.into_inner());
    let subs: Subscription = names
        .split('/')
        .filter_map(|n| {
            let (sym, kind) = parse_stream_name(n)?;
            Some((market.symbol_index(sym)?, kind, n.to_string()))
        })
        .collect();
    Some((subs, combined))
}

fn websocket(mut sock: TcpStream, sh: &Shared, path: &str, key: &str) -> io::Result<()> {
    let ws_api_path = path.split('?').next() == Some("/ws-api/v3");
    // A banned IP connects nowhere (and connecting to the WS-API costs
    // 2 weight, web-socket-api.md §IP limits).
    if let Err(e) = sh.exchange.admit(Admit::Connect { ws_api: ws_api_path }) {
        sh.counters.ws_refused.fetch_add(1, Ordering::Relaxed);
        let r = Reply::error(&e, sh.exchange.used_weight(), Duration::ZERO);
        return respond(&mut sock, &status_line(r.status), &r.body, &r.headers);
    }
    if sh.started.elapsed() < sh.faults.refuse_for {
        sh.counters.ws_refused.fetch_add(1, Ordering::Relaxed);
        return respond(&mut sock, "503 Service Unavailable", r#"{"code":-1,"msg":"simulated refusal"}"#, "");
    }
    if ws_api_path {
        return ws_api(sock, sh, key, path.split_once('?').map_or("", |(_, q)| q));
    }
    // A flapping connection: the connects right after a drop are refused.
    if sh.refusals_owed.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1)).is_ok() {
        sh.counters.ws_refused.fetch_add(1, Ordering::Relaxed);
        return respond(
            &mut sock,
            "503 Service Unavailable",
            r#"{"code":-1,"msg":"simulated refusal after a drop"}"#,
            "",
        );
    }
    let Some((subs, combined)) = subscription(sh, path) else {
        sh.counters.bad_requests.fetch_add(1, Ordering::Relaxed);
        return respond(&mut sock, "404 Not Found", r#"{"code":-1,"msg":"no such stream path"}"#, "");
    };
    let mut ws = upgrade(sock, key)?;
    let (tx, rx) = std::sync::mpsc::sync_channel::<Arc<Outgoing>>(CLIENT_QUEUE);
    sh.clients.lock().unwrap_or_else(|p| p.into_inner()).push(tx);
    sh.counters.ws_connections.fetch_add(1, Ordering::Relaxed);
    let result = pump(&mut ws, sh, &subs, combined, &rx);
    let _ = ws.close(None);
    let _ = ws.flush();
    result
}

/// Sends frames and pings, reads pongs and client pings, applies the
/// per-connection faults, until the client leaves or a fault ends it.
fn pump(
    ws: &mut WebSocket<TcpStream>,
    sh: &Shared,
    subs: &Subscription,
    combined: bool,
    rx: &Receiver<Arc<Outgoing>>,
) -> io::Result<()> {
    let opened = Instant::now();
    let mut last_ping = Instant::now();
    let mut ping_seq = 0u64;
    let mut ping_payload = Vec::new();
    let mut held: VecDeque<(Instant, String)> = VecDeque::new();
    let mut frames = 0u64;
    let mut malformed = 0usize;
    let mut shutdown_sent: Option<Instant> = None;
    let io_err = |e: tungstenite::Error| io::Error::other(e.to_string());
    loop {
        if sh.stop.load(Ordering::Relaxed) {
            return Ok(());
        }
        if sh.exchange.banned() {
            // An IP ban drops every open connection of the IP.
            sh.counters.forced_disconnects.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        }
        let age = opened.elapsed();
        let paused = sh.paused.load(Ordering::Relaxed);
        if !paused && sh.faults.disconnect_every.is_some_and(|d| age >= d) {
            sh.counters.forced_disconnects.fetch_add(1, Ordering::Relaxed);
            sh.refusals_owed.fetch_add(u64::from(sh.faults.refuse_after_disconnect), Ordering::Relaxed);
            return Ok(());
        }
        if let Some(after) = sh.faults.shutdown_after.filter(|_| !paused) {
            match shutdown_sent {
                None if age >= after => {
                    let now_ms = crate::feed::snapshot::wall_ns() / 1_000_000;
                    let event = format!("{{\"e\":\"serverShutdown\",\"E\":{now_ms}}}");
                    // Combined streams carry it under `!serverShutdown`, as Binance does.
                    let body =
                        if combined { format!("{{\"stream\":\"!serverShutdown\",\"data\":{event}}}") } else { event };
                    ws.send(Message::text(body)).map_err(io_err)?;
                    sh.counters.shutdowns_sent.fetch_add(1, Ordering::Relaxed);
                    shutdown_sent = Some(Instant::now());
                }
                Some(t) if t.elapsed() >= Duration::from_secs(1) => return Ok(()),
                _ => {}
            }
        }
        // Frames from the market, filtered and wrapped for this client.
        let mut got = 0;
        loop {
            let out = match rx.recv_timeout(if got == 0 { Duration::from_millis(1) } else { Duration::ZERO }) {
                Ok(out) => out,
                Err(RecvTimeoutError::Timeout) => break,
                // Dropped by the broadcaster for falling behind.
                Err(RecvTimeoutError::Disconnected) => return Ok(()),
            };
            got += 1;
            let Some((_, _, name)) = subs.iter().find(|(i, k, _)| *i == out.symbol && *k == out.kind) else {
                continue;
            };
            let text = if combined {
                format!("{{\"stream\":\"{name}\",\"data\":{}}}", out.payload)
            } else {
                out.payload.clone()
            };
            held.push_back((Instant::now() + sh.faults.delay, text));
            if got >= 256 {
                break;
            }
        }
        while held.front().is_some_and(|(due, _)| *due <= Instant::now()) {
            let (_, text) = held.pop_front().expect("checked non-empty");
            ws.write(Message::text(text)).map_err(io_err)?;
            frames += 1;
            sh.counters.frames_sent.fetch_add(1, Ordering::Relaxed);
            if sh.faults.malformed_every > 0 && frames.is_multiple_of(sh.faults.malformed_every) {
                ws.write(Message::text(MALFORMED[malformed % MALFORMED.len()])).map_err(io_err)?;
                malformed += 1;
                sh.counters.malformed_sent.fetch_add(1, Ordering::Relaxed);
            }
        }
        if last_ping.elapsed() >= sh.ping_every {
            last_ping = Instant::now();
            ping_seq += 1;
            ping_payload = ping_seq.to_string().into_bytes();
            ws.write(Message::Ping(ping_payload.clone().into())).map_err(io_err)?;
            sh.counters.pings_sent.fetch_add(1, Ordering::Relaxed);
        }
        ws.flush().map_err(io_err)?;
        if sh.faults.ignore_pings && !paused {
            // Not reading at all: the client's pings are never answered.
            continue;
        }
        match ws.read() {
            Ok(Message::Pong(p)) => {
                if p.as_ref() == ping_payload.as_slice() {
                    sh.counters.pongs_ok.fetch_add(1, Ordering::Relaxed);
                } else {
                    sh.counters.pongs_bad.fetch_add(1, Ordering::Relaxed);
                }
            }
            Ok(Message::Ping(_)) => {
                // tungstenite queued the pong; the next flush sends it.
                sh.counters.client_pings.fetch_add(1, Ordering::Relaxed);
            }
            Ok(Message::Close(_)) => return Ok(()),
            Ok(_) => {}
            Err(tungstenite::Error::Io(e))
                if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {}
            Err(e) => return Err(io_err(e)),
        }
    }
}

/// Answers the upgrade (the request head was already read) and wraps the
/// socket. Short reads, so one thread both sends frames and reads the
/// client's; a write timeout, so a client that stops reading cannot block
/// the thread forever.
fn upgrade(mut sock: TcpStream, key: &str) -> io::Result<WebSocket<TcpStream>> {
    let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
    let head = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
    );
    sock.write_all(head.as_bytes())?;
    sock.set_read_timeout(Some(Duration::from_millis(2)))?;
    sock.set_write_timeout(Some(Duration::from_secs(5)))?;
    Ok(WebSocket::from_raw_socket(sock, Role::Server, None))
}

/// The WebSocket API: requests answered by the exchange (held answers
/// sent when due, so pipelined requests may be answered out of order),
/// user-data events pushed as they happen, pings both ways as on the
/// market streams; dropped when the IP is banned; `serverShutdown` then a
/// close on the fault.
fn ws_api(sock: TcpStream, sh: &Shared, key: &str, url_query: &str) -> io::Result<()> {
    let mut ws = upgrade(sock, key)?;
    sh.counters.ws_connections.fetch_add(1, Ordering::Relaxed);
    let io_err = |e: tungstenite::Error| io::Error::other(e.to_string());
    let opened = Instant::now();
    let mut last_ping = Instant::now();
    let mut session = WsSession::new(sh.exchange.now_ms(), url_query);
    let mut events = Vec::new();
    let mut held: Vec<(Instant, String)> = Vec::new();
    let mut shutdown_sent: Option<Instant> = None;
    let book = |symbol: &str| {
        let m = sh.market.lock().unwrap_or_else(|p| p.into_inner());
        m.symbol_index(symbol).and_then(|i| m.true_book(i))
    };
    let result = loop {
        if sh.stop.load(Ordering::Relaxed) {
            break Ok(());
        }
        if sh.faults.drop_user_data_every.is_some_and(|d| opened.elapsed() >= d) || sh.exchange.banned() {
            sh.counters.forced_disconnects.fetch_add(1, Ordering::Relaxed);
            // Dropped without a close frame, as a broken connection is.
            let _ = ws.flush();
            return Ok(());
        }
        if let Some(after) = sh.faults.ws_api_shutdown_after {
            match shutdown_sent {
                None if opened.elapsed() >= after => {
                    ws.write(Message::text(server_shutdown_event(sh.exchange.now_ms()))).map_err(io_err)?;
                    sh.counters.shutdowns_sent.fetch_add(1, Ordering::Relaxed);
                    shutdown_sent = Some(Instant::now());
                }
                Some(t) if t.elapsed() >= sh.faults.ws_api_shutdown_grace() => break Ok(()),
                _ => {}
            }
        }
        session.drain(&mut events);
        for e in events.drain(..) {
            if let Err(e) = ws.write(Message::text(e)) {
                return Err(io_err(e));
            }
            sh.counters.frames_sent.fetch_add(1, Ordering::Relaxed);
        }
        let now = Instant::now();
        let mut i = 0;
        while i < held.len() {
            if held[i].0 <= now {
                let (_, text) = held.swap_remove(i);
                ws.write(Message::text(text)).map_err(io_err)?;
            } else {
                i += 1;
            }
        }
        if last_ping.elapsed() >= sh.ping_every {
            last_ping = Instant::now();
            ws.write(Message::Ping(Vec::new().into())).map_err(io_err)?;
            sh.counters.pings_sent.fetch_add(1, Ordering::Relaxed);
        }
        ws.flush().map_err(io_err)?;
        match ws.read() {
            Ok(Message::Text(t)) => {
                let answer = sh.exchange.ws_call(t.as_str(), &mut session, &book);
                if answer.hold.is_zero() {
                    ws.write(Message::text(answer.text)).map_err(io_err)?;
                } else {
                    held.push((Instant::now() + answer.hold, answer.text));
                }
            }
            Ok(Message::Ping(_)) => {
                sh.counters.client_pings.fetch_add(1, Ordering::Relaxed);
            }
            Ok(Message::Pong(_)) => {
                sh.counters.pongs_ok.fetch_add(1, Ordering::Relaxed);
            }
            Ok(Message::Close(_)) => break Ok(()),
            Ok(_) => {}
            Err(tungstenite::Error::Io(e))
                if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {}
            Err(e) => break Err(io_err(e)),
        }
    };
    let _ = ws.close(None);
    let _ = ws.flush();
    result
}

/// Sends `frames` to every client (dropping clients that left).
pub fn broadcast(sh: &Shared, frames: Vec<Outgoing>) {
    if frames.is_empty() {
        return;
    }
    let mut clients = sh.clients.lock().unwrap_or_else(|p| p.into_inner());
    for f in frames {
        let f = Arc::new(f);
        clients.retain(|c| match c.try_send(f.clone()) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) => {
                // Its pump sees the channel closed and ends the connection.
                sh.counters.slow_clients.fetch_add(1, Ordering::Relaxed);
                false
            }
            Err(TrySendError::Disconnected(_)) => false,
        });
    }
}

/// Whether the market is a USD-M one (for REST paths in banners).
pub fn depth_path(market: SimMarket) -> &'static str {
    match market {
        SimMarket::Spot => "/api/v3/depth",
        SimMarket::Usdm => "/fapi/v1/depth",
    }
}

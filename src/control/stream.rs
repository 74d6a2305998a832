//! `GET /api/stream`: a WebSocket of what the dashboard shows. Each client
//! has a thread of its own that composes its messages from the board (the
//! latest state of each kind, and the log entries it has not had yet) and
//! writes them with a deadline. Nothing else ever waits on a client: the
//! board's writers never touch its socket, and a client that falls
//! `stream_buffer` entries behind, or whose socket does not take a write
//! within [`WRITE_DEADLINE`], is dropped (close code 1008, "too slow").

use std::io;
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::{CloseFrame, Role, WebSocket};
use tungstenite::Message;

use super::board::Board;
use super::http::{Request, Response};

/// A write that takes longer than this drops the client.
pub const WRITE_DEADLINE: Duration = Duration::from_secs(2);
/// The kernel's send buffer per client: what a client that stops reading
/// can hold of the server's memory, and how soon it is found out.
const SEND_BUFFER: usize = 64 * 1024;

/// How the stream runs.
#[derive(Debug, Clone, Copy)]
pub struct StreamSettings {
    pub interval: Duration,
    /// Entries a client may fall behind before it is dropped.
    pub buffer: usize,
}

/// Why a client's stream ended.
#[derive(Debug, PartialEq, Eq)]
enum End {
    /// It closed, or the connection went.
    Gone,
    /// Too slow: dropped.
    Dropped(&'static str),
    /// The server stops.
    Shutdown,
}

/// Answers the upgrade (or refuses it) and runs the client until it ends.
pub fn serve(mut stream: TcpStream, req: &Request, board: &Board, cfg: StreamSettings, stop: &AtomicBool) {
    let key = match upgrade_key(req) {
        Ok(k) => k,
        Err(why) => {
            let _ = Response::error(400, why, None).write_to(&mut stream);
            return;
        }
    };
    let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
    let head = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
    );
    let _ = rustix::net::sockopt::set_socket_send_buffer_size(&stream, SEND_BUFFER);
    if io::Write::write_all(&mut stream, head.as_bytes()).is_err() {
        return;
    }
    // Reads only look for a close or a ping between sends.
    let _ = stream.set_read_timeout(Some(Duration::from_millis(1)));
    let _ = stream.set_write_timeout(Some(WRITE_DEADLINE));
    let mut ws = WebSocket::from_raw_socket(stream, Role::Server, None);
    board.counters.stream_clients.fetch_add(1, Ordering::Relaxed);
    let end = run(&mut ws, board, cfg, stop);
    board.counters.stream_clients.fetch_sub(1, Ordering::Relaxed);
    match end {
        End::Dropped(why) => {
            board.counters.stream_dropped.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(target: "mmbot::control", "control: a stream client was dropped: {why}");
            // Best effort: its socket may be full.
            let _ = ws.close(Some(CloseFrame { code: CloseCode::Policy, reason: "too slow".into() }));
            let _ = ws.flush();
        }
        End::Shutdown => {
            let _ = ws.close(Some(CloseFrame { code: CloseCode::Away, reason: "mmbot stops".into() }));
            let _ = ws.flush();
        }
        End::Gone => {}
    }
}

fn upgrade_key(req: &Request) -> Result<String, String> {
    if req.method != "GET" {
        return Err("the stream is a WebSocket: GET with Upgrade: websocket".into());
    }
    let has = |name: &str, word: &str| {
        req.header(name).is_some_and(|v| v.split(',').any(|p| p.trim().eq_ignore_ascii_case(word)))
    };
    if !has("upgrade", "websocket") || !has("connection", "upgrade") {
        return Err("the stream is a WebSocket: send Upgrade: websocket and Connection: Upgrade".into());
    }
    if req.header("sec-websocket-version").map(str::trim) != Some("13") {
        return Err("Sec-WebSocket-Version must be 13".into());
    }
    req.header("sec-websocket-key")
        .map(|k| k.trim().to_string())
        .filter(|k| !k.is_empty())
        .ok_or_else(|| "Sec-WebSocket-Key is missing".into())
}

fn run(ws: &mut WebSocket<TcpStream>, board: &Board, cfg: StreamSettings, stop: &AtomicBool) -> End {
    // A new client starts with the last few entries, not the whole log.
    let mut cursor = board.next_seq().saturating_sub(50).saturating_sub(1);
    let mut next_state = Instant::now();
    loop {
        if stop.load(Ordering::Relaxed) {
            return End::Shutdown;
        }
        match ws.read() {
            Ok(Message::Close(_)) => return End::Gone,
            Ok(_) => {}
            Err(tungstenite::Error::Io(e))
                if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {}
            Err(_) => return End::Gone,
        }
        let mut out: Vec<Value> = Vec::new();
        let now = Instant::now();
        if now >= next_state {
            next_state = now + cfg.interval;
            out.extend(state_messages(board));
        }
        let (entries, oldest) = board.entries_after(cursor, cfg.buffer + 1);
        if oldest > cursor + 1 || entries.len() > cfg.buffer {
            return End::Dropped("it fell more than stream_buffer entries behind");
        }
        for e in entries {
            cursor = e.seq;
            out.push(json!({"kind": e.kind, "seq": e.seq, "t_s": e.t_s, "data": e.data}));
        }
        let idle = out.is_empty();
        for m in out {
            match ws.send(Message::text(m.to_string())) {
                Ok(()) => {}
                Err(tungstenite::Error::Io(e))
                    if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) =>
                {
                    return End::Dropped("a write waited more than 2 s");
                }
                Err(_) => return End::Gone,
            }
        }
        if idle {
            std::thread::sleep(Duration::from_millis(10).min(cfg.interval));
        }
    }
}

/// The latest-wins kinds: status, book, quote, latency, advice.
fn state_messages(board: &Board) -> Vec<Value> {
    let t_s = (board.uptime_s() * 1e3).round() / 1e3;
    let status = board.status();
    let msg = |kind: &str, data: Value| json!({"kind": kind, "seq": 0, "t_s": t_s, "data": data});
    vec![
        msg("book", status["book"].clone()),
        msg("quote", status["quote"].clone()),
        msg("latency", status["latency"].clone()),
        msg("advice", status["advice"].clone()),
        msg("status", status),
    ]
}

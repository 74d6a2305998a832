//! One WebSocket API connection: opening it (guard, connect, `session.logon`
//! with an Ed25519 key, the user-data subscription) and reading and writing
//! its frames without blocking.
//!
//! Opening blocks (DNS, TCP, TLS, the handshake, waiting for the logon and
//! subscribe answers), so it runs on a short-lived thread of its own
//! ([`spawn_open`]): the session thread keeps serving the old connection
//! meanwhile, which is what lets a `serverShutdown` be handled with no gap
//! (web-socket-api.md §Server Shutdown).

use std::io;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tungstenite::Message;

use crate::exec::binance::errors::BinanceError;
use crate::exec::binance::keys::Credentials;
use crate::exec::binance::sign::KeyKind;
use crate::exec::binance::wsapi::request::{self, Auth, MethodInfo};
use crate::feed::endpoint::Url;
use crate::feed::ws::{self, ConnectError, Ws};
use crate::ipguard::{IpGuard, Refusal};

/// What opening a session needs; shared by every attempt.
pub struct Setup {
    pub url: Url,
    pub creds: Arc<Credentials>,
    pub guard: IpGuard,
    pub recv_window_ms: u64,
    /// TCP + TLS + handshake.
    pub connect_timeout: Duration,
    /// Each of the logon and subscribe answers.
    pub answer_timeout: Duration,
    /// Server clock minus ours, ms.
    pub clock_offset: Arc<AtomicI64>,
    /// Subscribe to the user-data stream on the session.
    pub user_data: bool,
    pub tls: Arc<rustls::ClientConfig>,
}

impl Setup {
    pub fn server_ms(&self) -> i64 {
        request::wall_ms().saturating_add(self.clock_offset.load(Ordering::Relaxed))
    }
}

/// Why a session could not be opened.
#[derive(Debug, Clone, thiserror::Error)]
pub enum OpenError {
    #[error("the IP guard refused to connect: {0}")]
    Guard(Refusal),
    #[error("connecting failed: {0}")]
    Connect(String),
    #[error("session.logon failed: {0}")]
    Logon(BinanceError),
    #[error("the user-data subscription failed: {0}")]
    Subscribe(BinanceError),
    #[error("the connection closed while the session was being set up: {0}")]
    Closed(String),
}

/// A connected (and, with an Ed25519 key, logged-on) session.
pub struct Conn {
    ws: Ws,
    /// 1 for the first session of the gateway, then 2, 3, ...
    pub number: u64,
    pub opened: Instant,
    /// How its requests are authenticated.
    pub auth: Auth,
    /// The user-data subscription is active on it.
    pub subscribed: bool,
}

impl Conn {
    /// Queues a text frame and pushes out what the socket takes now; the
    /// rest goes with later flushes. Err means the connection is gone.
    pub fn send(&mut self, text: String) -> Result<(), String> {
        match self.ws.send(Message::text(text)) {
            Ok(()) => Ok(()),
            Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Pushes out queued frames (and pongs to the server's pings).
    pub fn flush(&mut self) -> Result<(), String> {
        match self.ws.flush() {
            Ok(()) => Ok(()),
            Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
            Err(e) => Err(e.to_string()),
        }
    }

    /// The next JSON text frame, `Ok(None)` when nothing is waiting, Err
    /// when the connection is closed or broken. Frames that are not JSON
    /// come back as `Value::Null` (counted by the caller).
    pub fn read(&mut self) -> Result<Option<Value>, String> {
        loop {
            match self.ws.read() {
                Ok(Message::Text(t)) => return Ok(Some(serde_json::from_str(t.as_str()).unwrap_or(Value::Null))),
                Ok(Message::Close(c)) => {
                    return Err(c.map_or_else(
                        || "the server closed the connection".to_string(),
                        |c| format!("the server closed the connection ({} {})", c.code, c.reason),
                    ))
                }
                // tungstenite queues the pong itself; the next flush sends it.
                Ok(_) => continue,
                Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
                Err(e) => return Err(e.to_string()),
            }
        }
    }

    /// The socket, to register with the session thread's poller.
    pub fn raw_fd(&self) -> std::os::fd::RawFd {
        use std::os::fd::AsRawFd;
        self.ws.get_ref().tcp().as_raw_fd()
    }

    /// Sends a close frame (best effort) and drops the connection.
    pub fn close(mut self) {
        let _ = self.ws.close(None);
        let _ = self.ws.flush();
    }
}

/// Opens a session on a thread of its own; the answer arrives on the
/// returned channel (nothing, if the thread could not start: the caller
/// sees a disconnected channel and retries).
pub fn spawn_open(setup: Arc<Setup>, number: u64) -> Receiver<Result<Conn, OpenError>> {
    let (tx, rx) = mpsc::channel();
    let _ = std::thread::Builder::new().name("mmbot-wsapi-open".into()).spawn(move || {
        let _ = tx.send(open(&setup, number));
    });
    rx
}

/// Guard, connect, logon (Ed25519), subscribe (if asked). Blocking.
pub fn open(setup: &Setup, number: u64) -> Result<Conn, OpenError> {
    setup.guard.admit_connect("WebSocket API connect").map_err(OpenError::Guard)?;
    let ws = ws::connect(&setup.url, setup.connect_timeout, &setup.tls).map_err(|e| {
        // A 418/429 on the handshake is the IP's limit speaking: everyone waits.
        if let ConnectError::Refused { status, retry_after, .. } = &e {
            let wait = Duration::from_secs(retry_after.unwrap_or(if *status == 418 { 120 } else { 60 }));
            match status {
                418 => setup.guard.on_banned(wait),
                429 => setup.guard.on_rate_limited(false, wait),
                _ => {}
            }
        }
        OpenError::Connect(e.to_string())
    })?;
    let mut conn = Conn { ws, number, opened: Instant::now(), auth: Auth::Signed, subscribed: false };
    // Only Ed25519 keys can log a session on (web-socket-api.md §Session
    // Authentication); HMAC requests are each signed instead.
    if setup.creds.kind() == KeyKind::Ed25519 {
        let id = format!("logon-{number}");
        let text = request::frame(
            &id,
            request::LOGON.wire,
            vec![],
            Auth::Signed,
            &setup.creds,
            setup.recv_window_ms,
            setup.server_ms(),
        );
        call(setup, &mut conn, &id, request::LOGON, text).map_err(|e| match e {
            Step::Refused(r) => OpenError::Guard(r),
            Step::Failed(e) => OpenError::Logon(e),
            Step::Closed(w) => OpenError::Closed(w),
        })?;
        conn.auth = Auth::LoggedOn;
    }
    if setup.user_data {
        let id = format!("subscribe-{number}");
        // Logged on: `userDataStream.subscribe`; otherwise the signature
        // form, which works with any key (web-socket-api.md §User Data
        // Stream requests).
        let (method, text) = if conn.auth == Auth::LoggedOn {
            (request::SUBSCRIBE, request::bare_frame(&id, request::SUBSCRIBE.wire))
        } else {
            let text = request::frame(
                &id,
                request::SUBSCRIBE_SIGNATURE.wire,
                vec![],
                Auth::Signed,
                &setup.creds,
                setup.recv_window_ms,
                setup.server_ms(),
            );
            (request::SUBSCRIBE_SIGNATURE, text)
        };
        call(setup, &mut conn, &id, method, text).map_err(|e| match e {
            Step::Refused(r) => OpenError::Guard(r),
            Step::Failed(e) => OpenError::Subscribe(e),
            Step::Closed(w) => OpenError::Closed(w),
        })?;
        conn.subscribed = true;
    }
    Ok(conn)
}

enum Step {
    Refused(Refusal),
    Failed(BinanceError),
    Closed(String),
}

/// Sends one setup request and waits for its answer. Other frames before
/// it are not ours yet (no subscription, no orders) and are skipped.
fn call(setup: &Setup, conn: &mut Conn, id: &str, m: MethodInfo, text: String) -> Result<Value, Step> {
    setup.guard.admit_ws_api(m.request()).map_err(Step::Refused)?;
    // The request may still sit in the buffer after `send`; flush below.
    conn.send(text).map_err(Step::Closed)?;
    let deadline = Instant::now() + setup.answer_timeout;
    while Instant::now() < deadline {
        conn.flush().map_err(Step::Closed)?;
        match conn.read().map_err(Step::Closed)? {
            Some(v) if v.get("id").and_then(Value::as_str) == Some(id) => {
                let status = v.get("status").and_then(Value::as_u64).unwrap_or(0) as u16;
                let err = (status != 200)
                    .then(|| request::parse_error(m.endpoint, status, v.get("error"), setup.server_ms()))
                    .map(|e| e.map_text(|t| setup.creds.redact(t)));
                request::report_to_guard(&setup.guard, &v, err.as_ref());
                return match err {
                    Some(e) => Err(Step::Failed(e)),
                    None => Ok(v.get("result").cloned().unwrap_or(Value::Null)),
                };
            }
            Some(_) => {}
            None => std::thread::sleep(Duration::from_millis(1)),
        }
    }
    Err(Step::Failed(BinanceError::Unavailable {
        request: m.endpoint.label,
        why: format!("no answer within {:.1} s", setup.answer_timeout.as_secs_f64()),
    }))
}

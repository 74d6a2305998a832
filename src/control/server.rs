//! The control plane's HTTP server: one accepting thread, one thread per
//! connection (at most `[control] max_clients`), the bearer token checked
//! before any route, and the static web page. Plain HTTP: a bind beyond
//! loopback needs `[control] insecure = true` (docs/control.md says how to
//! put TLS in front).

use std::io::{self, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use super::api::{self, Commands};
use super::board::{Board, ServerCounters};
use super::http::{read_request, ReadError, Request, Response};
use super::stream::{self, StreamSettings};
use super::symbols::SymbolsPanel;
use super::token::Token;
use crate::config::control::ControlConfig;

/// The web page, embedded: nothing to build or fetch.
const INDEX_HTML: &str = include_str!("web/index.html");
const APP_JS: &str = include_str!("web/app.js");
const STYLE_CSS: &str = include_str!("web/style.css");
const OPENAPI: &str = include_str!("../../docs/control-api.yaml");

/// How long a connection may take to send its request.
const READ_DEADLINE: Duration = Duration::from_secs(5);

/// What the server needs from `[control]`.
#[derive(Debug, Clone, Copy)]
pub struct ServerSettings {
    pub listen: SocketAddr,
    pub insecure: bool,
    pub max_clients: usize,
    pub stream: StreamSettings,
    /// Take a free port when `listen`'s is in use.
    pub any_port_if_taken: bool,
}

impl ServerSettings {
    pub fn from_config(c: &ControlConfig, listen: SocketAddr) -> Self {
        Self {
            listen,
            insecure: c.insecure,
            max_clients: c.max_clients,
            stream: StreamSettings { interval: Duration::from_millis(c.stream_interval_ms), buffer: c.stream_buffer },
            any_port_if_taken: c.any_port_if_taken,
        }
    }
}

/// Why the server did not start.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error(
        "control: refusing to listen on {0} without TLS: the token and the account's state would cross the \
         network in the clear. Listen on 127.0.0.1 behind a TLS reverse proxy (docs/control.md), or set \
         [control] insecure = true (--control-insecure) to accept the risk"
    )]
    NotLoopback(SocketAddr),
    #[error(
        "control: cannot listen on {addr}: {source}; pick another [control] listen address or port (0: any free one)"
    )]
    Bind { addr: SocketAddr, source: io::Error },
    #[error(transparent)]
    Token(#[from] super::token::TokenError),
}

/// The running server; stops (and joins its threads) when dropped.
pub struct ControlServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// What a server serves: a one-symbol session's board and commands, or a
/// run of several symbols' panel.
enum Served {
    Session { board: Arc<Board>, commands: Commands },
    Symbols(Arc<SymbolsPanel>),
}

impl ControlServer {
    /// Binds and starts serving a one-symbol session.
    pub fn start(
        settings: ServerSettings,
        token: Token,
        board: Arc<Board>,
        commands: Commands,
    ) -> Result<Self, ControlError> {
        let counters = board.counters.clone();
        Self::start_served(settings, token, Served::Session { board, commands }, counters)
    }

    /// Binds and starts serving a run of several symbols.
    pub fn start_symbols(
        settings: ServerSettings,
        token: Token,
        panel: Arc<SymbolsPanel>,
    ) -> Result<Self, ControlError> {
        Self::start_served(settings, token, Served::Symbols(panel), Arc::default())
    }

    fn start_served(
        settings: ServerSettings,
        token: Token,
        served: Served,
        counters: Arc<ServerCounters>,
    ) -> Result<Self, ControlError> {
        if !settings.listen.ip().is_loopback() && !settings.insecure {
            return Err(ControlError::NotLoopback(settings.listen));
        }
        let listener = match TcpListener::bind(settings.listen) {
            Err(e) if e.kind() == io::ErrorKind::AddrInUse && settings.any_port_if_taken => {
                crate::say!("mmbot: control: {} is taken; serving on a free port instead", settings.listen);
                TcpListener::bind(SocketAddr::new(settings.listen.ip(), 0))
            }
            other => other,
        }
        .map_err(|source| ControlError::Bind { addr: settings.listen, source })?;
        let addr = listener.local_addr().map_err(|source| ControlError::Bind { addr: settings.listen, source })?;
        listener.set_nonblocking(true).map_err(|source| ControlError::Bind { addr, source })?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("mmbot-control".into())
            .spawn(move || accept_loop(listener, settings, token, served, counters, flag))
            .map_err(|source| ControlError::Bind { addr, source })?;
        Ok(Self { addr, stop, thread: Some(thread) })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Shared {
    token: Token,
    served: Served,
    counters: Arc<ServerCounters>,
    settings: ServerSettings,
    stop: Arc<AtomicBool>,
    active: AtomicUsize,
}

fn accept_loop(
    listener: TcpListener,
    settings: ServerSettings,
    token: Token,
    served: Served,
    counters: Arc<ServerCounters>,
    stop: Arc<AtomicBool>,
) {
    let shared = Arc::new(Shared { token, served, counters, settings, stop, active: AtomicUsize::new(0) });
    let mut handles: Vec<JoinHandle<()>> = Vec::new();
    while !shared.stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((mut stream, _)) => {
                let _ = stream.set_nonblocking(false);
                let _ = stream.set_nodelay(true);
                shared.counters.requests.fetch_add(1, Ordering::Relaxed);
                if shared.active.load(Ordering::Relaxed) >= settings.max_clients {
                    shared.counters.busy.fetch_add(1, Ordering::Relaxed);
                    let _ = stream.set_write_timeout(Some(Duration::from_millis(200)));
                    let msg = format!("too many connections (the most is {}); try again", settings.max_clients);
                    let _ = Response::error(503, msg, None).with_header("Retry-After", "1").write_to(&mut stream);
                    linger_close(&mut stream, Duration::from_millis(50));
                    continue;
                }
                shared.active.fetch_add(1, Ordering::Relaxed);
                let s = shared.clone();
                let spawned = std::thread::Builder::new().name("mmbot-control-conn".into()).spawn(move || {
                    connection(stream, &s);
                    s.active.fetch_sub(1, Ordering::Relaxed);
                });
                match spawned {
                    Ok(h) => handles.push(h),
                    Err(_) => {
                        shared.active.fetch_sub(1, Ordering::Relaxed);
                    }
                }
                handles.retain(|h| !h.is_finished());
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::sleep(Duration::from_millis(10)),
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
    // Connections end within their deadlines; streams see the stop flag.
    for h in handles {
        let _ = h.join();
    }
}

fn connection(mut stream: TcpStream, s: &Shared) {
    let _ = stream.set_read_timeout(Some(READ_DEADLINE));
    let _ = stream.set_write_timeout(Some(READ_DEADLINE));
    let req = match read_request(&mut stream) {
        Ok(r) => r,
        Err(ReadError::Closed) | Err(ReadError::Io(_)) => return,
        Err(e @ ReadError::TooLarge(_)) => {
            let _ = Response::error(413, e.to_string(), None).write_to(&mut stream);
            linger_close(&mut stream, Duration::from_millis(500));
            return;
        }
        Err(e @ ReadError::Malformed(_)) => {
            let _ = Response::error(400, e.to_string(), None).write_to(&mut stream);
            linger_close(&mut stream, Duration::from_millis(500));
            return;
        }
    };
    let answer = match public(&req, &s.served) {
        Some(r) => r,
        None => {
            if !authorized(&req, &s.token) {
                s.counters.unauthorized.fetch_add(1, Ordering::Relaxed);
                let why = if req.header("authorization").is_some() || req.query_param("token").is_some() {
                    "wrong token"
                } else {
                    "no token: send Authorization: Bearer TOKEN (the token is in $MMBOT_CONTROL_TOKEN or was printed at start)"
                };
                Response::error(401, why, None).with_header("WWW-Authenticate", "Bearer realm=\"mmbot\"")
            } else {
                match &s.served {
                    Served::Symbols(panel) => panel.route(&req),
                    Served::Session { board, .. } if req.path == "/api/stream" => {
                        return stream::serve(stream, &req, board, s.settings.stream, &s.stop);
                    }
                    Served::Session { board, .. } if req.path == "/metrics" => metrics(&req, board),
                    Served::Session { board, commands } => api::route(&req, board, commands),
                }
            }
        }
    };
    let _ = answer.write_to(&mut stream);
    let _ = stream.flush();
}

/// Closes after an answer sent before the request was read whole: stops
/// writing, then reads (and drops) what the client still sends, for at
/// most `wait` and 1 MiB. Closing with unread input would reset the
/// connection, and the client could lose the answer.
fn linger_close(stream: &mut TcpStream, wait: Duration) {
    use std::io::Read;
    let _ = stream.flush();
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(20)));
    let deadline = std::time::Instant::now() + wait;
    let mut buf = [0u8; 8192];
    let mut total = 0usize;
    while std::time::Instant::now() < deadline && total < (1 << 20) {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => total += n,
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
    }
}

/// The page and the API's description: no token needed (they hold no
/// state of the run).
fn public(req: &Request, served: &Served) -> Option<Response> {
    let index = match served {
        Served::Session { .. } => INDEX_HTML,
        Served::Symbols(_) => super::symbols::PAGE,
    };
    let (ct, body) = match req.path.as_str() {
        "/" | "/index.html" => ("text/html; charset=utf-8", index),
        "/app.js" => ("text/javascript; charset=utf-8", APP_JS),
        "/style.css" => ("text/css; charset=utf-8", STYLE_CSS),
        "/api/openapi.yaml" => ("application/yaml", OPENAPI),
        "/favicon.ico" => return Some(Response::bytes(404, "text/plain", "")),
        _ => return None,
    };
    if req.method != "GET" && req.method != "HEAD" {
        return Some(Response::error(405, format!("{} takes GET only", req.path), None).with_header("Allow", "GET"));
    }
    Some(Response::bytes(200, ct, body))
}

fn authorized(req: &Request, token: &Token) -> bool {
    if let Some(v) = req.header("authorization") {
        let v = v.trim();
        return v.len() > 7 && v[..7].eq_ignore_ascii_case("bearer ") && token.matches(v[7..].trim());
    }
    // Browsers cannot set headers on a WebSocket.
    req.path == "/api/stream" && req.query_param("token").is_some_and(|t| token.matches(&t))
}

fn metrics(req: &Request, board: &Board) -> Response {
    if req.method != "GET" {
        return Response::error(405, "/metrics takes GET only", None).with_header("Allow", "GET");
    }
    let (hot, exec) = board.snapshots();
    let src = &board.sources;
    let advisor = src.advisor.as_ref().map(|a| a.stats());
    let now = crate::feed::snapshot::wall_ns();
    let mut out = String::with_capacity(16 * 1024);
    {
        let h = src.histograms.lock().unwrap_or_else(|p| p.into_inner());
        let m = super::metrics::MetricsInputs {
            symbol: &src.symbol,
            hot: hot.as_ref(),
            exec: &exec,
            histograms: &h,
            advisor: advisor.as_ref(),
            max_position: src.max_position,
            book_age_ns: hot.filter(|h| h.last_depth_ns > 0).map(|h| (now - h.last_depth_ns).max(0)),
            uptime_s: board.uptime_s(),
            paused: hot.is_some_and(|h| h.paused),
        };
        super::metrics::render(&mut out, &m);
    }
    Response::bytes(200, super::metrics::CONTENT_TYPE, out)
}
